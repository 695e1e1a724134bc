package hooks_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/benchconn"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"github.com/gosoccr/gosoccr/internal/stream"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// Stream directions of a tcpPair.
const (
	up   = 0 // client to server
	down = 1 // server to client
)

// tcpPair is a loopback TCP connection in a test's namespace: cli is the
// socket that goes through the hooks, srv its peer, which stays. Each
// direction carries stream's bytes; the counters say how many were written
// and how many the reader verified.
type tcpPair struct {
	tb       testing.TB
	ns       *netnstest.NetNS
	cli, srv int
	written  [2]int64
	verified [2]int64
}

func sockaddrOf(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// newTCPPair connects a client of the family of addr (127.0.0.1 or ::1)
// to a listener whose receive buffer is srvRcvBuf (0: the default; small
// closes the server's window soon).
func newTCPPair(tb testing.TB, ns *netnstest.NetNS, addr string, srvRcvBuf int) *tcpPair {
	tb.Helper()
	p := &tcpPair{tb: tb, ns: ns, cli: -1, srv: -1}
	tb.Cleanup(p.close)
	ap := netip.AddrPortFrom(netip.MustParseAddr(addr), 0)
	fam := unix.AF_INET
	if ap.Addr().Is6() {
		fam = unix.AF_INET6
	}
	ns.MustDo(tb, func() error {
		l, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(l)
		if srvRcvBuf > 0 {
			if err := unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_RCVBUF, srvRcvBuf); err != nil {
				return err
			}
		}
		if err := unix.Bind(l, sockaddrOf(ap)); err != nil {
			return err
		}
		if err := unix.Listen(l, 8); err != nil {
			return err
		}
		sa, _ := unix.Getsockname(l)
		if p.cli, err = unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := unix.Connect(p.cli, sa); err != nil {
			return err
		}
		p.srv, _, err = unix.Accept4(l, unix.SOCK_CLOEXEC)
		return err
	})
	return p
}

func (p *tcpPair) close() {
	for _, fd := range []*int{&p.cli, &p.srv} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

func (p *tcpPair) fd(dir int, writer bool) int {
	if (dir == up) == writer {
		return p.cli
	}
	return p.srv
}

// write writes up to n more bytes of direction dir without blocking.
func (p *tcpPair) write(dir, n int) int {
	p.tb.Helper()
	buf := make([]byte, min(n, 64<<10))
	done := 0
	for done < n {
		b := buf[:min(len(buf), n-done)]
		stream.Fill(uint8(dir), p.written[dir], b)
		w, err := unix.SendmsgN(p.fd(dir, true), b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			p.tb.Fatalf("write direction %d: %v", dir, err)
		}
		p.written[dir] += int64(w)
		done += w
	}
	return done
}

// read reads what direction dir has ready within d and verifies it. It
// returns false at end of stream.
func (p *tcpPair) read(dir int, d time.Duration) bool {
	p.tb.Helper()
	fd := p.fd(dir, false)
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(d/time.Millisecond))
	buf := make([]byte, 256<<10)
	n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
	if errors.Is(err, unix.EAGAIN) {
		return true
	}
	if err != nil {
		p.tb.Fatalf("read direction %d after %d bytes: %v", dir, p.verified[dir], err)
	}
	if n == 0 {
		return false
	}
	if err := stream.Check(uint8(dir), p.verified[dir], buf[:n]); err != nil {
		p.tb.Fatal(err)
	}
	p.verified[dir] += int64(n)
	if p.verified[dir] > p.written[dir] {
		p.tb.Fatalf("direction %d: %d bytes arrived, %d were written", dir, p.verified[dir], p.written[dir])
	}
	return true
}

// pump writes extra more bytes in direction dir while the reader reads,
// and checks that every byte ever written arrives once and in order, then
// end of stream if eof.
func (p *tcpPair) pump(dir, extra int, eof bool) {
	p.tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for extra > 0 {
		extra -= p.write(dir, extra)
		p.read(dir, 5*time.Millisecond)
		if time.Now().After(deadline) {
			p.tb.Fatalf("direction %d: %d bytes left to write at timeout", dir, extra)
		}
	}
	for p.verified[dir] < p.written[dir] || eof {
		if time.Now().After(deadline) {
			p.tb.Fatalf("direction %d: verified %d of %d bytes (eof wanted: %v) at timeout", dir, p.verified[dir], p.written[dir], eof)
		}
		if !p.read(dir, 50*time.Millisecond) {
			if p.verified[dir] < p.written[dir] || !eof {
				p.tb.Fatalf("direction %d: end of stream after %d of %d bytes", dir, p.verified[dir], p.written[dir])
			}
			return
		}
	}
}

// fillWindow writes from the client until the server's window is closed
// and at least n bytes wait unsent in the client's send queue.
func (p *tcpPair) fillWindow(n int) {
	p.tb.Helper()
	waitFor(p.tb, "unsent bytes in the client's send queue", func() bool {
		p.write(up, 16<<10)
		v, _ := unix.IoctlGetInt(p.cli, unix.SIOCOUTQNSD)
		return v >= n
	})
}

// unacked queues n more bytes of the client's stream as sent but never
// acknowledged, as if their packets were lost: in repair mode the kernel
// queues them as sent without sending them.
func (p *tcpPair) unacked(n int) {
	p.tb.Helper()
	must(p.tb, unix.SetsockoptInt(p.cli, unix.SOL_TCP, unix.TCP_REPAIR, 1))
	must(p.tb, unix.SetsockoptInt(p.cli, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, 2))
	b := make([]byte, n)
	stream.Fill(up, p.written[up], b)
	for len(b) > 0 {
		w, err := unix.SendmsgN(p.cli, b, nil, nil, unix.MSG_DONTWAIT)
		must(p.tb, err)
		p.written[up] += int64(w)
		b = b[w:]
	}
	must(p.tb, unix.SetsockoptInt(p.cli, unix.SOL_TCP, unix.TCP_REPAIR, -1)) // off, no window probe
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func tcpState(fd int) soccr.TCPState {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	if err != nil {
		return 0
	}
	return soccr.TCPState(ti.State)
}

func inRepair(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR)
	return err == nil && v != 0
}

// setupQueues leaves data queued both ways: bytes the client has not read,
// bytes it sent that the server has not acknowledged, bytes it could not
// send yet. With peerFIN the server has shut down its side (CLOSE_WAIT).
func (p *tcpPair) setupQueues(peerFIN bool) {
	p.tb.Helper()
	p.write(down, 32<<10)
	waitFor(p.tb, "the client's receive queue", func() bool {
		v, _ := unix.IoctlGetInt(p.cli, unix.SIOCINQ)
		return int64(v) == p.written[down]
	})
	want := soccr.Established
	if peerFIN {
		must(p.tb, unix.Shutdown(p.srv, unix.SHUT_WR))
		want = soccr.CloseWait
	}
	waitFor(p.tb, "TCP state "+want.String(), func() bool { return tcpState(p.cli) == want })
	p.fillWindow(8 << 10)
	p.unacked(4 << 10)
	p.write(up, 4<<10)
}

// dumpClient locks the namespace's network and dumps the client through
// the hooks, then closes it in repair mode.
func (p *tcpPair) dumpClient(dirfd int, id uint32) *soccr.State {
	p.tb.Helper()
	p.ns.Lock(p.tb)
	st, err := hooks.DumpTCP(dirfd, p.cli, id, hooks.TCPOptions{})
	if err != nil {
		p.tb.Fatal(err)
	}
	if !inRepair(p.cli) {
		p.tb.Error("the dumped socket is not left in repair mode")
	}
	unix.Close(p.cli)
	p.cli = -1
	return st
}

// restoreClient restores the client from the images, paused, lifts the
// network lock, and resumes it.
func (p *tcpPair) restoreClient(dirfd int, id uint32, want soccr.TCPState) {
	p.tb.Helper()
	var c *soccr.Conn
	p.ns.MustDo(p.tb, func() error {
		var err error
		c, _, err = hooks.RestoreTCPPaused(dirfd, id)
		if err != nil {
			return err
		}
		p.cli = c.FD()
		if got := tcpState(p.cli); got != want {
			p.tb.Errorf("restored socket is %s, want %s", got, want)
		}
		return nil
	})
	p.ns.Unlock(p.tb)
	must(p.tb, c.Resume())
}

// TestIntegrationTCPDumpRestore dumps the client of a connection through
// the hooks into images, closes it, restores it from the images into a new
// socket of the same process, and checks both byte streams end to end.
func TestIntegrationTCPDumpRestore(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		peerFIN    bool
	}{
		{"ESTABLISHED/ipv4", "127.0.0.1", false},
		{"ESTABLISHED/ipv6", "::1", false},
		{"CLOSE_WAIT/ipv4", "127.0.0.1", true},
		{"CLOSE_WAIT/ipv6", "::1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netnstest.CheckFDs(t)
			ns := netnstest.New(t)
			dir, dirfd := imagesDir(t)
			p := newTCPPair(t, ns, tc.addr, 4096)
			p.setupQueues(tc.peerFIN)
			const id = 4242
			st := p.dumpClient(dirfd, id)
			t.Logf("dumped: %s", st)
			if st.Unsent == 0 || int(st.Unsent) >= len(st.SendQueue) || len(st.RecvQueue) == 0 {
				t.Errorf("want received, sent-unacked and unsent bytes: %s", st)
			}
			for _, name := range []string{hooks.TCPStreamImageName(id), hooks.InetImageName(id)} {
				if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
					t.Error(err)
				}
			}
			p.restoreClient(dirfd, id, st.State)
			p.pump(up, 64<<10, false)
			p.pump(down, map[bool]int{false: 64 << 10, true: 0}[tc.peerFIN], tc.peerFIN)
			t.Logf("verified %d bytes up, %d bytes down", p.verified[up], p.verified[down])
		})
	}
}

// TestIntegrationTCPDumpResume: with TCPOptions.Resume the connection goes
// on after its images are written; a dump that fails resumes it too.
func TestIntegrationTCPDumpResume(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	_, dirfd := imagesDir(t)
	p := newTCPPair(t, ns, "127.0.0.1", 0)
	p.write(down, 8<<10)
	p.write(up, 8<<10)
	if _, err := hooks.DumpTCP(dirfd, p.cli, 1, hooks.TCPOptions{Resume: true}); err != nil {
		t.Fatal(err)
	}
	if inRepair(p.cli) {
		t.Error("still in repair mode after a dump with Resume")
	}
	p.pump(up, 16<<10, false)
	p.pump(down, 16<<10, false)

	// A directory descriptor that is no directory: writing fails.
	f, err := os.CreateTemp(t.TempDir(), "notadir")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.write(up, 8<<10)
	_, err = hooks.DumpTCP(int(f.Fd()), p.cli, 2, hooks.TCPOptions{})
	if !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("dump into a file: %v, want ENOTDIR", err)
	}
	if inRepair(p.cli) {
		t.Error("a failed dump left the socket in repair mode")
	}
	p.pump(up, 16<<10, false)
	p.pump(down, 16<<10, false)
}

// TestIntegrationDumpSocketDispatch: unix and TCP sockets dumped by
// DumpSocket into one directory come back through RestoreSocket, each as
// its own kind.
func TestIntegrationDumpSocketDispatch(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	tmp := t.TempDir()
	_, dirfd := imagesDir(t)

	l := server(t, unix.SOCK_STREAM, tmp+"/srv.sock")
	us := client(t, unix.SOCK_STREAM, tmp+"/cli.sock", tmp+"/srv.sock")
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	must(t, err)
	defer unix.Close(a) // open until the dump: a closed peer is a shutdown
	logSrv := server(t, unix.SOCK_DGRAM, tmp+"/log")
	ud := client(t, unix.SOCK_DGRAM, "", tmp+"/log")
	p := newTCPPair(t, ns, "::1", 0)
	p.write(down, 16<<10)
	p.write(up, 16<<10)
	waitFor(t, "quiet connection", func() bool {
		in, _ := unix.IoctlGetInt(p.cli, unix.SIOCINQ)
		out, _ := unix.IoctlGetInt(p.cli, unix.SIOCOUTQ)
		return in == 16<<10 && out == 0
	})

	ids := map[string]uint32{"stream": inode(t, us), "dgram": inode(t, ud), "tcp": 7}
	ns.Lock(t)
	for kind, fd := range map[string]int{"stream": us, "dgram": ud, "tcp": p.cli} {
		s, err := hooks.DumpSocket(dirfd, fd, ids[kind], nil)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if (s.TCP != nil) != (kind == "tcp") || (s.Unix != nil) == (kind == "tcp") {
			t.Errorf("%s dumped as %s", kind, s)
		}
		t.Logf("dumped %s", s)
	}
	unix.Close(p.cli)
	p.cli = -1

	var fds = map[string]int{}
	ns.MustDo(t, func() error {
		for kind, id := range ids {
			fd, err := hooks.RestoreSocket(dirfd, id, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}
			fds[kind] = fd
		}
		return nil
	})
	ns.Unlock(t)
	p.cli = fds["tcp"]
	defer unix.Close(fds["stream"])
	defer unix.Close(fds["dgram"])

	// The stream socket is a new connection to the same server, from our
	// old name.
	a2, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	must(t, err)
	defer unix.Close(a2)
	if sa, err := unix.Getpeername(a2); err != nil || sa.(*unix.SockaddrUnix).Name != tmp+"/cli.sock" {
		t.Errorf("the server's new peer is %v (%v), want %s", sa, err, tmp+"/cli.sock")
	}
	expectMsg(t, fds["stream"], a2, "hello stream")
	expectMsg(t, fds["dgram"], logSrv, "hello dgram")
	p.pump(up, 32<<10, false)
	p.pump(down, 32<<10, false)
}

func expectMsg(t *testing.T, from, to int, msg string) {
	t.Helper()
	if _, err := unix.Write(from, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	b := make([]byte, 64)
	n, err := unix.Read(to, b)
	if err != nil || string(b[:n]) != msg {
		t.Errorf("read %q (%v), want %q", b[:max(n, 0)], err, msg)
	}
}

// TestIntegrationNotMine: what is not an external unix socket or a TCP
// connection is left to others.
func TestIntegrationNotMine(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	_, dirfd := imagesDir(t)
	ns.MustDo(t, func() error {
		for _, kind := range []struct {
			name            string
			fam, typ, proto int
		}{
			{"udp4", unix.AF_INET, unix.SOCK_DGRAM, 0},
			{"udp6", unix.AF_INET6, unix.SOCK_DGRAM, 0},
			{"sctp-less raw", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_UDP},
			{"packet", unix.AF_PACKET, unix.SOCK_DGRAM, 0},
		} {
			fd, err := unix.Socket(kind.fam, kind.typ|unix.SOCK_CLOEXEC, kind.proto)
			if err != nil {
				return fmt.Errorf("%s: %w", kind.name, err)
			}
			if _, err := hooks.DumpSocket(dirfd, fd, 1, nil); !errors.Is(err, hooks.ErrNotMine) {
				t.Errorf("DumpSocket %s: %v, want ErrNotMine", kind.name, err)
			}
			if _, err := hooks.DumpTCP(dirfd, fd, 1, hooks.TCPOptions{}); !errors.Is(err, hooks.ErrNotMine) {
				t.Errorf("DumpTCP %s: %v, want ErrNotMine", kind.name, err)
			}
			unix.Close(fd)
		}
		var pipe [2]int
		if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
			return err
		}
		defer unix.Close(pipe[0])
		defer unix.Close(pipe[1])
		if _, err := hooks.DumpSocket(dirfd, pipe[0], 1, nil); !errors.Is(err, hooks.ErrNotMine) {
			t.Errorf("DumpSocket of a pipe: %v, want ErrNotMine", err)
		}
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(sp[0])
		defer unix.Close(sp[1])
		if _, err := hooks.DumpTCP(dirfd, sp[0], 1, hooks.TCPOptions{}); !errors.Is(err, hooks.ErrNotMine) {
			t.Errorf("DumpTCP of a unix socket: %v, want ErrNotMine", err)
		}
		// A TCP socket in a state that cannot be dumped: an error, and
		// the socket is not changed.
		l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(l)
		must(t, unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
		must(t, unix.Listen(l, 1))
		if _, err := hooks.DumpTCP(dirfd, l, 1, hooks.TCPOptions{}); !errors.Is(err, soccr.ErrUnsupportedState) {
			t.Errorf("DumpTCP of a listener: %v, want ErrUnsupportedState", err)
		}
		if tcpState(l) != soccr.Listen {
			t.Errorf("the listener is %s after a refused dump", tcpState(l))
		}
		return nil
	})
	if _, err := hooks.RestoreSocket(dirfd, 99, nil); !errors.Is(err, hooks.ErrNotMine) {
		t.Errorf("RestoreSocket without images: %v, want ErrNotMine", err)
	}
	if _, err := hooks.RestoreTCP(dirfd, 99); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RestoreTCP without images: %v, want ErrNotExist", err)
	}
}

// dumpedImages makes a connection with data queued both ways, dumps its
// client with Resume into dirfd as id, and returns the state.
func dumpedImages(t *testing.T, ns *netnstest.NetNS, dirfd int, id uint32, addr string) *soccr.State {
	t.Helper()
	p := newTCPPair(t, ns, addr, 4096)
	p.setupQueues(false)
	st, err := hooks.DumpTCP(dirfd, p.cli, id, hooks.TCPOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestIntegrationRestoreTCPDamaged: a damaged or missing image, or one
// that the kernel refuses, fails the restore and leaves no descriptor
// behind.
func TestIntegrationRestoreTCPDamaged(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	dir, dirfd := imagesDir(t)
	const good = 1
	dumpedImages(t, ns, dirfd, good, "127.0.0.1")
	stream, err := os.ReadFile(filepath.Join(dir, hooks.TCPStreamImageName(good)))
	must(t, err)
	inet, err := os.ReadFile(filepath.Join(dir, hooks.InetImageName(good)))
	must(t, err)

	type damage struct {
		name          string
		stream, inet  []byte // nil: no such file
		symlinkStream bool
	}
	cut := func(b []byte, n int) []byte { return append([]byte(nil), b[:n]...) }
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 0xff; return c }
	cases := []damage{
		{name: "no inetsk", stream: stream},
		{name: "no tcp-stream", inet: inet},
		{name: "empty tcp-stream", stream: []byte{}, inet: inet},
		{name: "tcp-stream magic", stream: flip(stream, 5), inet: inet},
		{name: "inetsk magic", stream: stream, inet: flip(inet, 4)},
		{name: "entry length", stream: flip(stream, 11), inet: inet},
		{name: "inetsk entry length", stream: stream, inet: flip(inet, 8)},
		{name: "symlink", inet: inet, symlinkStream: true},
	}
	for _, n := range []int{4, 8, 10, 12, 20, len(stream) / 2, len(stream) - 1} {
		cases = append(cases, damage{name: fmt.Sprintf("tcp-stream cut at %d", n), stream: cut(stream, n), inet: inet})
	}
	for _, n := range []int{9, len(inet) - 1} {
		cases = append(cases, damage{name: fmt.Sprintf("inetsk cut at %d", n), stream: stream, inet: cut(inet, n)})
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			netnstest.CheckFDs(t)
			id := uint32(100 + i)
			if c.stream != nil {
				must(t, os.WriteFile(filepath.Join(dir, hooks.TCPStreamImageName(id)), c.stream, 0o600))
			}
			if c.inet != nil {
				must(t, os.WriteFile(filepath.Join(dir, hooks.InetImageName(id)), c.inet, 0o600))
			}
			if c.symlinkStream {
				must(t, os.Symlink(hooks.TCPStreamImageName(good), filepath.Join(dir, hooks.TCPStreamImageName(id))))
			}
			ns.MustDo(t, func() error {
				if fd, err := hooks.RestoreTCP(dirfd, id); err == nil {
					unix.Close(fd)
					t.Errorf("restored from a damaged image")
				} else {
					t.Logf("%v", err)
				}
				if fd, err := hooks.RestoreSocket(dirfd, id, nil); err == nil {
					unix.Close(fd)
					t.Errorf("RestoreSocket restored from a damaged image")
				}
				return nil
			})
		})
	}

	// Well-formed images that the kernel refuses: an address that is not
	// this host's. The socket made for it is closed again.
	t.Run("foreign address", func(t *testing.T) {
		netnstest.CheckFDs(t)
		st := sampleStates()[0]
		must(t, hooks.WriteTCPImages(dirfd, 200, st))
		ns.MustDo(t, func() error {
			_, err := hooks.RestoreTCP(dirfd, 200)
			if !errors.Is(err, unix.EADDRNOTAVAIL) {
				t.Errorf("restore of %s: %v, want EADDRNOTAVAIL", st.Local, err)
			}
			return nil
		})
	})
}

// TestIntegrationImagesReencode: the images the hooks write for real
// sockets decode and encode again to the same bytes.
func TestIntegrationImagesReencode(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	dir, dirfd := imagesDir(t)
	dumpedImages(t, ns, dirfd, 1, "127.0.0.1")
	dumpedImages(t, ns, dirfd, 2, "::1")
	uid := dumpedUnix(t, dirfd)
	names := []string{hooks.TCPStreamImageName(1), hooks.InetImageName(1), hooks.TCPStreamImageName(2), hooks.InetImageName(2), hooks.UnixImageName(uid)}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		must(t, err)
		if re := reencodeAny(t, name, b); !bytesEqual(re, b) {
			t.Errorf("%s: decode then encode changed the bytes", name)
		}
	}
}

// TestIntegrationCrit: Debian's crit decodes every image the hooks write.
func TestIntegrationCrit(t *testing.T) {
	crit, err := exec.LookPath("crit")
	if err != nil {
		if os.Getenv("GOSOCCR_REQUIRE_ROOT") == "1" {
			t.Fatalf("crit not found (Debian: apt-get install criu; make deps installs it): %v", err)
		}
		t.Skip("skipped: crit not found (Debian: apt-get install criu)")
	}
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	dir, dirfd := imagesDir(t)
	st := dumpedImages(t, ns, dirfd, 1, "::1")
	uid := dumpedUnix(t, dirfd)
	for _, c := range []struct {
		name string
		want []string
	}{
		{hooks.TCPStreamImageName(1), []string{`"magic": "TCP_STREAM"`, fmt.Sprintf(`"inq_len": %d`, len(st.RecvQueue)), fmt.Sprintf(`"unsq_len": %d`, st.Unsent), `"extra"`}},
		{hooks.InetImageName(1), []string{`"magic": "INETSK"`, `"family": "INET6"`, `"proto": "TCP"`, fmt.Sprintf(`"src_port": %d`, st.Local.Port())}},
		{hooks.UnixImageName(uid), []string{`"magic": "UNIXSK"`, `"type": "STREAM"`}},
	} {
		out, err := exec.Command(crit, "decode", "-i", filepath.Join(dir, c.name), "--pretty").CombinedOutput()
		if err != nil {
			t.Errorf("crit decode %s: %v\n%s", c.name, err, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("crit decode %s: no %s in\n%s", c.name, w, out)
			}
		}
	}
}

// dumpedUnix dumps a connected unix stream socket into dirfd and returns
// its id.
func dumpedUnix(t *testing.T, dirfd int) uint32 {
	t.Helper()
	tmp := t.TempDir()
	server(t, unix.SOCK_STREAM, tmp+"/srv.sock")
	c := client(t, unix.SOCK_STREAM, tmp+"/cli.sock", tmp+"/srv.sock")
	id := inode(t, c)
	if _, err := hooks.DumpUnix(dirfd, c, id, nil); err != nil {
		t.Fatal(err)
	}
	return id
}

// BenchmarkDumpRestoreTCP dumps n loopback connections with 16 KiB queued
// each way through the hooks (pause, save, both images written, close in
// repair mode), then restores them (images read, socket, restore,
// resume), with the images directory on tmpfs (/dev/shm) and on the disk
// that holds the temporary directory; "engine" is the same work without
// images (soccr alone), for comparison. It reports microseconds per
// connection for each phase.
func BenchmarkDumpRestoreTCP(b *testing.B) {
	const n, queue = 1000, 16 << 10
	for _, mode := range []string{"engine", "images=shm", "images=disk"} {
		b.Run(fmt.Sprintf("n=%d/queue=%d/%s", n, queue, mode), func(b *testing.B) {
			ns := netnstest.New(b)
			must(b, benchRaiseNoFile())
			dirfd := -1
			if mode != "engine" {
				parent := ""
				if mode == "images=shm" {
					parent = "/dev/shm"
				}
				dir, err := os.MkdirTemp(parent, "gosoccr-bench-")
				must(b, err)
				defer os.RemoveAll(dir)
				dirfd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				must(b, err)
				defer unix.Close(dirfd)
			}
			b.ReportAllocs()
			var dump, restore time.Duration
			for b.Loop() {
				b.StopTimer()
				ns.MustDo(b, func() error {
					conns, err := benchconn.Setup(benchconn.Options{N: n, Queue: queue})
					if err != nil {
						return err
					}
					defer func() { benchconn.Close(conns) }()
					states := make([]*soccr.State, n)
					b.StartTimer()
					t0 := time.Now()
					for i := range conns {
						if dirfd >= 0 {
							_, err = hooks.DumpTCP(dirfd, conns[i].Client, uint32(i+1), hooks.TCPOptions{})
						} else {
							states[i], err = benchSave(conns[i].Client)
						}
						if err != nil {
							return err
						}
						unix.Close(conns[i].Client)
						conns[i].Client = -1
					}
					t1 := time.Now()
					for i := range conns {
						var fd int
						if dirfd >= 0 {
							fd, err = hooks.RestoreTCP(dirfd, uint32(i+1))
						} else {
							fd, err = soccr.Restore(states[i])
						}
						if err != nil {
							return err
						}
						conns[i].Client = fd
					}
					t2 := time.Now()
					b.StopTimer()
					dump += t1.Sub(t0)
					restore += t2.Sub(t1)
					return nil
				})
				if dirfd >= 0 {
					for i := range n { // a dump writes new files: start afresh
						unix.Unlinkat(dirfd, hooks.TCPStreamImageName(uint32(i+1)), 0)
						unix.Unlinkat(dirfd, hooks.InetImageName(uint32(i+1)), 0)
					}
				}
				b.StartTimer()
			}
			per := float64(b.N * n)
			b.ReportMetric(float64(dump.Microseconds())/per, "µs-dump/conn")
			b.ReportMetric(float64(restore.Microseconds())/per, "µs-restore/conn")
		})
	}
}

// benchSave is what DumpTCP does without images.
func benchSave(fd int) (*soccr.State, error) {
	c, err := soccr.Pause(fd)
	if err != nil {
		return nil, err
	}
	st, err := c.SaveWith(soccr.SaveOptions{})
	if err != nil {
		return nil, err
	}
	c.Release()
	return st, nil
}

func benchRaiseNoFile() error { return benchconn.RaiseNoFile() }

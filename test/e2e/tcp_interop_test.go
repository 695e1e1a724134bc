package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/stream"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Interop with CRIU's own TCP dumps. A client process (tcpclient/) holds a
// loopback TCP connection to the test (the peer), with bytes queued both
// ways: the peer's bytes wait unread in the client's receive queue, the
// client's wait in the peer's receive queue and, since the peer's window
// is closed, unsent in the client's send queue. Real CRIU dumps the
// client with --tcp-established.

// The two directions of the byte stream (internal/stream).
const (
	toClient   = 0 // written by the peer
	fromClient = 1 // written by the client
)

const (
	peerSent    = 48 << 10  // the peer's bytes queued in the client before the dump
	clientMax   = 256 << 10 // at most this many bytes written by the client
	afterResume = 64 << 10  // new bytes each way after the restore
	peerRcvBuf  = 4096      // SO_RCVBUF of the peer: a small window, so the client keeps unsent bytes
)

// tcpPeer is the test's end of the connection and the client task.
type tcpPeer struct {
	conn   net.Conn
	fd     int // conn's descriptor, for ioctls
	addr   netip.AddrPort
	client *task
	wrote  int64 // bytes the client wrote
	inq    int   // of which in the peer's receive queue at the dump
}

// buildTCPClient compiles tcpclient.c into dir.
func buildTCPClient(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tcpclient")
	src := filepath.Join(root, "test/e2e/tcpclient/tcpclient.c")
	if out, err := exec.Command("cc", "-Wall", "-Werror", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("building tcpclient: %v\n%s", err, out)
	}
	return bin
}

// newTCPPeer listens in the namespace, starts the client, accepts its
// connection, fills the client's receive queue and waits until the client
// has written all it could.
func (e *env) newTCPPeer(t *testing.T) *tcpPeer {
	t.Helper()
	bin := buildTCPClient(t, e.dir)
	var l int
	e.ns.MustDo(t, func() error {
		var err error
		if l, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		// Before listen, so that the accepted socket has it and its
		// window scale is chosen for it.
		if err := unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_RCVBUF, peerRcvBuf); err != nil {
			return err
		}
		if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		return unix.Listen(l, 1)
	})
	defer unix.Close(l)
	sa, err := unix.Getsockname(l)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port

	logPath := filepath.Join(e.dir, "tcpclient.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, strconv.Itoa(port), strconv.Itoa(clientMax))
	cmd.Stdout, cmd.Stderr = out, out // stdin is /dev/null, nothing else is inherited
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	err = e.ns.Do(cmd.Start)
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpPeer{client: &task{pid: cmd.Process.Pid, cmd: cmd}}
	t.Cleanup(func() { p.client.kill() })

	pfd := []unix.PollFd{{Fd: int32(l), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 5000); n != 1 {
		t.Fatalf("the client did not connect: %v (log: %s)", err, readFile(logPath))
	}
	fd, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "peer")
	p.conn, err = net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.conn.Close() })
	p.addr = p.conn.LocalAddr().(*net.TCPAddr).AddrPort()
	raw, _ := p.conn.(*net.TCPConn).SyscallConn()
	raw.Control(func(fd uintptr) { p.fd = int(fd) })

	// The peer's bytes, all acknowledged: they are in the client's
	// receive queue, nothing is in flight.
	if err := writeStream(p.conn, toClient, 0, peerSent); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the peer's bytes acknowledged", func() bool {
		n, err := unix.IoctlGetInt(p.fd, unix.SIOCOUTQ)
		return err == nil && n == 0
	})
	re := regexp.MustCompile(`wrote (\d+)`)
	waitFor(t, "the client's writes", func() bool {
		m := re.FindStringSubmatch(readFile(logPath))
		if m == nil {
			return false
		}
		p.wrote, _ = strconv.ParseInt(m[1], 10, 64)
		return true
	})
	// The peer's receive queue stops growing once its window is closed.
	last := -1
	waitFor(t, "the peer's receive queue to settle", func() bool {
		n, _ := unix.IoctlGetInt(p.fd, unix.SIOCINQ)
		settled := n == last && n > 0
		last = n
		return settled
	})
	p.inq = last
	t.Logf("client -> peer %s: the client wrote %d bytes (%d in the peer's receive queue); %d bytes of the peer wait in the client",
		p.addr, p.wrote, p.inq, peerSent)
	return p
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// dumpTCP dumps the client with real CRIU, which keeps its network lock.
func (e *env) dumpTCP(p *tcpPeer) string {
	e.t.Helper()
	images, _ := e.mustDump(p.client, nil, "--tcp-established", "--network-lock", "nftables")
	return images
}

// nft runs the nft command in the namespace.
func (e *env) nft(args ...string) (string, error) {
	var out []byte
	err := e.ns.Do(func() error {
		var err error
		out, err = exec.Command("nft", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	})
	return string(out), err
}

// criuLockTables returns the tables of CRIU's nftables network lock
// ("inet CRIU-<part of the dump's id>").
func (e *env) criuLockTables(t *testing.T) []string {
	t.Helper()
	out, err := e.nft("list", "tables")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "table" && f[1] == "inet" && strings.HasPrefix(f[2], "CRIU-") {
			tables = append(tables, f[2])
		}
	}
	return tables
}

// lockConn drops the connection's packets both ways (but those marked
// soccr.Mark), as netnstest's Lock does for all TCP: that one would also
// stop the loopback connection that CRIU makes to probe the kernel when
// it starts (connect() hangs in kerndat).
func (e *env) lockConn(t *testing.T, p *tcpPeer) {
	t.Helper()
	cl := p.conn.RemoteAddr().(*net.TCPAddr).Port
	script := fmt.Sprintf(`add table inet gosoccr_conn
add chain inet gosoccr_conn out { type filter hook output priority 0; policy accept; }
add rule inet gosoccr_conn out meta mark != %#x tcp sport %d tcp dport %d drop
add rule inet gosoccr_conn out meta mark != %#x tcp sport %d tcp dport %d drop
`, soccr.Mark, p.addr.Port(), cl, soccr.Mark, cl, p.addr.Port())
	if err := e.ns.Do(func() error {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft: %v: %s", err, out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// openDir opens an images directory.
func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestIntegrationCRIUTCPInterop: real CRIU dumps a process with an
// established TCP connection; hooks.RestoreFromCRIU restores that one
// connection in the test process from CRIU's images, the test lifts
// CRIU's network lock, and the byte stream with the peer, which stayed
// alive, goes on both ways: every byte once, in order.
func TestIntegrationCRIUTCPInterop(t *testing.T) {
	e := newEnv(t)
	testInterop(t, e, func(dirfd int, ino uint32) (int, error) {
		var fd int
		err := e.ns.Do(func() error {
			var err error
			fd, err = hooks.RestoreFromCRIU(dirfd, ino)
			return err
		})
		return fd, err
	})
}

// TestIntegrationCRIUTCPInteropC: the same through the C call
// gosoccr_restore_tcp_from_criu of libgosoccr.so, in a C tool
// (criutcprestore/) that hands the restored socket to the test.
func TestIntegrationCRIUTCPInteropC(t *testing.T) {
	e := newEnv(t)
	bin := filepath.Join(e.dir, "criutcprestore")
	out, err := exec.Command("cc", "-Wall", "-Werror", "-O2", "-I", filepath.Join(root, "include"),
		"-o", bin, filepath.Join(root, "test/e2e/criutcprestore/criutcprestore.c"),
		"-L", filepath.Join(root, "build"), "-lgosoccr", "-Wl,-rpath,"+filepath.Join(root, "build")).CombinedOutput()
	if err != nil {
		t.Fatalf("building criutcprestore: %v\n%s", err, out)
	}
	testInterop(t, e, func(dirfd int, ino uint32) (int, error) {
		images, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", dirfd))
		if err != nil {
			return -1, err
		}
		// A socket no connection has: -ENOENT, and a log line.
		if out, err := e.runTool(bin, nil, images, "1"); err == nil || !strings.Contains(out, "No such file") {
			return -1, fmt.Errorf("inode 1: %v: %s", err, out)
		}
		return e.runToolFD(bin, images, strconv.FormatUint(uint64(ino), 10))
	})
}

// runTool runs a tool in the namespace, with extra files as fds 3, ...,
// under a timeout, and returns its output.
func (e *env) runTool(bin string, extra []*os.File, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []byte
	err := e.ns.Do(func() error {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.ExtraFiles = extra
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	return string(out), err
}

// runToolFD runs a tool that sends a descriptor over its fd 3 and
// returns that descriptor.
func (e *env) runToolFD(bin string, args ...string) (int, error) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(sp[0])
	theirs := os.NewFile(uintptr(sp[1]), "fdpass")
	out, err := e.runTool(bin, []*os.File{theirs}, args...)
	theirs.Close()
	if err != nil {
		return -1, fmt.Errorf("%s: %v: %s", filepath.Base(bin), err, out)
	}
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sp[0], buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("receiving the restored socket: %w (%s)", err, out)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("receiving the restored socket: %d messages, %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("receiving the restored socket: %v, %v", fds, err)
	}
	return fds[0], nil
}

// testInterop dumps a client's connection with CRIU, restores it with
// restore, lifts CRIU's lock and checks the byte stream.
func testInterop(t *testing.T, e *env, restore func(dirfd int, ino uint32) (int, error)) {
	p := e.newTCPPeer(t)
	images := e.dumpTCP(p)

	// What CRIU leaves behind: its lock table, dropping the
	// connection's packets both ways until a restore lifts it.
	rules, err := e.nft("list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	tables := e.criuLockTables(t)
	if len(tables) != 1 || !strings.Contains(rules, p.addr.Addr().String()+" . "+strconv.Itoa(int(p.addr.Port()))) {
		t.Fatalf("CRIU's network lock after the dump: tables %v, ruleset:\n%s", tables, rules)
	}
	t.Logf("CRIU's network lock after the dump: table inet %s", tables[0])

	dirfd := openDir(t, images)
	conns, err := hooks.ListCRIUTCP(dirfd)
	if err != nil {
		t.Fatal(err)
	}
	var found *hooks.CRIUConn
	for i, c := range conns {
		if c.Remote == p.addr {
			found = &conns[i]
		}
	}
	if found == nil {
		t.Fatalf("no connection to %s in the images: %v", p.addr, conns)
	}
	if _, err := os.Stat(filepath.Join(images, fmt.Sprintf("tcp-stream-%x.img", found.Ino))); err != nil {
		t.Fatalf("CRIU's stream image is not named by the inode in hex: %v", err)
	}
	st, err := hooks.FindCRIUTCP(dirfd, found.Ino)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("in the images: %s; %s", found, st)
	if len(st.RecvQueue) != peerSent || int64(len(st.SendQueue)+p.inq) != p.wrote || st.Unsent == 0 {
		t.Fatalf("CRIU saved %d bytes received (want %d) and %d to send, %d unsent (want %d = %d written - %d at the peer, some unsent)",
			len(st.RecvQueue), peerSent, len(st.SendQueue), st.Unsent, p.wrote-int64(p.inq), p.wrote, p.inq)
	}

	fd, err := restore(dirfd, found.Ino)
	if err != nil {
		t.Fatal(err)
	}
	restored := fileConn(t, fd)
	if _, err := e.nft("delete", "table", "inet", tables[0]); err != nil {
		t.Fatal(err)
	}
	checkStreams(t, restored, p)
}

func fileConn(t *testing.T, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "restored")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkStreams checks that the restored socket and the peer go on: every
// byte of the peer queued before the dump arrives at the restored socket,
// every byte the client wrote arrives at the peer, then new bytes both
// ways, each once and in order.
func checkStreams(t *testing.T, restored net.Conn, p *tcpPeer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	restored.SetDeadline(deadline)
	p.conn.SetDeadline(deadline)
	errs := make(chan error, 4)
	go func() { errs <- readStream(restored, toClient, 0, peerSent+afterResume) }()
	go func() { errs <- readStream(p.conn, fromClient, 0, p.wrote+afterResume) }()
	go func() { errs <- writeStream(restored, fromClient, p.wrote, p.wrote+afterResume) }()
	go func() { errs <- writeStream(p.conn, toClient, peerSent, peerSent+afterResume) }()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Nothing more: no byte came twice.
	for _, c := range []net.Conn{restored, p.conn} {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("unexpected after the stream: %d bytes, %v", n, err)
		}
	}
	t.Logf("verified: %d+%d bytes to the client, %d+%d bytes from it", peerSent, afterResume, p.wrote, afterResume)
}

func writeStream(c net.Conn, dir uint8, from, to int64) error {
	buf := make([]byte, 16<<10)
	for off := from; off < to; {
		n := min(int64(len(buf)), to-off)
		stream.Fill(dir, off, buf[:n])
		w, err := c.Write(buf[:n])
		off += int64(w)
		if err != nil {
			return fmt.Errorf("writing stream %d at %d: %w", dir, off, err)
		}
	}
	return nil
}

func readStream(c net.Conn, dir uint8, from, to int64) error {
	buf := make([]byte, 16<<10)
	for off := from; off < to; {
		n, err := c.Read(buf[:min(int64(len(buf)), to-off)])
		if cerr := stream.Check(dir, off, buf[:n]); cerr != nil {
			return cerr
		}
		off += int64(n)
		if err != nil {
			return fmt.Errorf("reading stream %d at %d of %d: %w", dir, off, to, err)
		}
	}
	return nil
}

// TestIntegrationCRIUTCPFields: for one quiet connection, the entries that
// hooks builds from the engine's State carry the same facts as those real
// CRIU writes for it. The connection is saved with soccr (and goes on),
// then CRIU dumps the same process; both see the connection under the
// test's network lock, so nothing moves in between but the clock.
func TestIntegrationCRIUTCPFields(t *testing.T) {
	e := newEnv(t)
	p := e.newTCPPeer(t)
	e.lockConn(t, p)

	// Our save, through a duplicate of the client's socket (its fd 3).
	pidfd, err := unix.PidfdOpen(p.client.pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	sfd, err := unix.PidfdGetfd(pidfd, 3, 0)
	unix.Close(pidfd)
	if err != nil {
		t.Fatal(err)
	}
	var sst unix.Stat_t
	if err := unix.Fstat(sfd, &sst); err != nil {
		t.Fatal(err)
	}
	ino := uint32(sst.Ino)
	c, err := soccr.Pause(sfd)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.SaveWith(soccr.SaveOptions{})
	saved := time.Now()
	if rerr := c.Resume(); err == nil {
		err = rerr
	}
	unix.Close(sfd)
	if err != nil {
		t.Fatal(err)
	}
	ourTSE, ourISE := hooks.TCPStreamEntry(st), hooks.InetSkEntry(st, ino)

	images := e.dumpTCP(p)
	elapsed := time.Since(saved)
	dirfd := openDir(t, images)
	tse, rq, sq, err := hooks.ReadTCPStream(dirfd, hooks.CRIUTCPStreamImageName(ino))
	if err != nil {
		t.Fatal(err)
	}
	ise, err := hooks.FindCRIUInetSk(dirfd, ino)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ours: %s", st)

	f := fieldCheck{t: t}
	// tcp-stream: the connection.
	f.eq("inq_len", ourTSE.GetInqLen(), tse.GetInqLen())
	f.eq("inq_seq", ourTSE.GetInqSeq(), tse.GetInqSeq())
	f.eq("outq_len", ourTSE.GetOutqLen(), tse.GetOutqLen())
	f.eq("outq_seq", ourTSE.GetOutqSeq(), tse.GetOutqSeq())
	f.eq("unsq_len", ourTSE.GetUnsqLen(), tse.GetUnsqLen())
	f.eq("opt_mask", ourTSE.GetOptMask(), tse.GetOptMask())
	f.eq("snd_wscale", ourTSE.GetSndWscale(), tse.GetSndWscale())
	f.eq("rcv_wscale", ourTSE.GetRcvWscale(), tse.GetRcvWscale())
	f.eq("mss_clamp", ourTSE.GetMssClamp(), tse.GetMssClamp())
	f.eq("cork", ourTSE.GetCork(), tse.GetCork())
	f.eq("nodelay", ourTSE.GetNodelay(), tse.GetNodelay())
	f.eq("snd_wnd", ourTSE.GetSndWnd(), tse.GetSndWnd())
	f.eq("max_window", ourTSE.GetMaxWindow(), tse.GetMaxWindow())
	f.eq("rcv_wnd", ourTSE.GetRcvWnd(), tse.GetRcvWnd())
	f.eq("rcv_wup", ourTSE.GetRcvWup(), tse.GetRcvWup())
	f.eq("window present", ourTSE.SndWl1 != nil, tse.SndWl1 != nil)
	f.eq("timestamp present", ourTSE.Timestamp != nil, tse.Timestamp != nil)
	// snd_wl1: Resume takes the socket out of repair mode, and the kernel
	// then sends a window probe (tcp_send_window_probe), which sets
	// snd_wl1 to rcv_nxt - 1. CRIU saw the socket after that.
	if ourTSE.GetSndWl1() != tse.GetSndWl1() && tse.GetSndWl1() != tse.GetInqSeq()-1 {
		f.t.Errorf("snd_wl1: ours %d, CRIU's %d (neither equal nor rcv_nxt-1 = %d)", ourTSE.GetSndWl1(), tse.GetSndWl1(), tse.GetInqSeq()-1)
	}
	t.Logf("snd_wl1: ours %d, CRIU's %d (rcv_nxt %d); timestamp: ours %d, CRIU's %d, saves %s apart",
		ourTSE.GetSndWl1(), tse.GetSndWl1(), tse.GetInqSeq(), ourTSE.GetTimestamp(), tse.GetTimestamp(), elapsed.Round(time.Millisecond))
	// The TCP timestamp clock runs in milliseconds between the two saves.
	if d := tse.GetTimestamp() - ourTSE.GetTimestamp(); int32(d) < 0 || time.Duration(d)*time.Millisecond > elapsed+time.Second {
		t.Errorf("timestamp: ours %d, CRIU's %d: %d ms apart, the saves %s apart", ourTSE.GetTimestamp(), tse.GetTimestamp(), int32(d), elapsed)
	}
	if !bytes.Equal(rq, st.RecvQueue) || !bytes.Equal(sq, st.SendQueue) {
		t.Errorf("queue bytes differ: receive %d/%d equal %v, send %d/%d equal %v",
			len(st.RecvQueue), len(rq), bytes.Equal(rq, st.RecvQueue), len(st.SendQueue), len(sq), bytes.Equal(sq, st.SendQueue))
	}
	if err := stream.Check(toClient, 0, rq); err != nil || len(rq) != peerSent {
		t.Errorf("CRIU's receive queue: %d bytes, %v", len(rq), err)
	}

	// inetsk: the socket.
	f.eq("ino", ourISE.GetIno(), ise.GetIno())
	f.eq("family", ourISE.GetFamily(), ise.GetFamily())
	f.eq("type", ourISE.GetType(), ise.GetType())
	f.eq("proto", ourISE.GetProto(), ise.GetProto())
	f.eq("state", ourISE.GetState(), ise.GetState())
	f.eq("src_port", ourISE.GetSrcPort(), ise.GetSrcPort())
	f.eq("dst_port", ourISE.GetDstPort(), ise.GetDstPort())
	f.eq("src_addr", fmt.Sprint(ourISE.GetSrcAddr()), fmt.Sprint(ise.GetSrcAddr()))
	f.eq("dst_addr", fmt.Sprint(ourISE.GetDstAddr()), fmt.Sprint(ise.GetDstAddr()))
	f.eq("v6only", ourISE.GetV6Only(), ise.GetV6Only())
	f.eq("shutdown", ourISE.GetShutdown(), ise.GetShutdown())
	f.eq("fown", proto.Equal(ourISE.GetFown(), ise.GetFown()), true)
	f.eq("so_keepalive", ourISE.GetOpts().GetSoKeepalive(), ise.GetOpts().GetSoKeepalive())
	f.eq("tcp_keepcnt", ourISE.GetOpts().GetTcpKeepcnt(), ise.GetOpts().GetTcpKeepcnt())
	f.eq("tcp_keepidle", ourISE.GetOpts().GetTcpKeepidle(), ise.GetOpts().GetTcpKeepidle())
	f.eq("tcp_keepintvl", ourISE.GetOpts().GetTcpKeepintvl(), ise.GetOpts().GetTcpKeepintvl())
	// Legitimately different: id is CRIU's file id (ours: the inode);
	// flags are the file status flags of the task's descriptor (the
	// client's is O_NONBLOCK; the engine knows sockets, not descriptors);
	// backlog is the diag queue length CRIU reads for every socket (it
	// matters for listening sockets only); CRIU also records the generic
	// socket options (buffers, timeouts, priority, ...), ip_opts and
	// ns_id, which the engine leaves to the socket's owner.
	t.Logf("not compared: id ours %d CRIU %d; flags ours %#x CRIU %#x; backlog ours %d CRIU %d; CRIU's so_sndbuf %d so_rcvbuf %d ns_id %d",
		ourISE.GetId(), ise.GetId(), ourISE.GetFlags(), ise.GetFlags(), ourISE.GetBacklog(), ise.GetBacklog(),
		ise.GetOpts().GetSoSndbuf(), ise.GetOpts().GetSoRcvbuf(), ise.GetNsId())
	f.eq("flags without O_NONBLOCK", ourISE.GetFlags(), ise.GetFlags()&^unix.O_NONBLOCK)
}

type fieldCheck struct{ t *testing.T }

func (f fieldCheck) eq(name string, ours, criu any) {
	f.t.Helper()
	if ours != criu {
		f.t.Errorf("%s: ours %v, CRIU's %v", name, ours, criu)
	}
}

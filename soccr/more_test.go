package soccr_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/internal/netnstest"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// TestIntegrationSynSent checkpoints a connection whose SYN the server
// drops (its accept queue is full), restores it, and lets the handshake
// finish once the server makes room.
func TestIntegrationSynSent(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	var l, first, c int
	var laddr netip.AddrPort
	ns.MustDo(t, func() error {
		var err error
		// backlog 0: one connection waits for accept, the next SYN is dropped.
		if l, laddr, err = listen(unix.AF_INET, 0, 0); err != nil {
			return err
		}
		if first, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.Connect(first, sockaddr(laddr)); err != nil {
			return err
		}
		if c, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0); err != nil {
			return err
		}
		if err = unix.Connect(c, sockaddr(laddr)); !errors.Is(err, unix.EINPROGRESS) {
			return err
		}
		return nil
	})
	defer unix.Close(l)
	defer unix.Close(first)
	time.Sleep(50 * time.Millisecond)
	if s := soccr.TCPState(tcpState(c)); s != soccr.SynSent {
		unix.Close(c)
		t.Fatalf("client is %s, want SYN_SENT", s)
	}
	p := &pair{tb: t, ns: ns, cli: c, srv: -1}
	t.Cleanup(p.close)
	st := p.checkpoint()
	t.Logf("saved: %s", st)
	if st.State != soccr.SynSent || st.Remote != laddr {
		t.Fatalf("saved %s to %s, want SYN_SENT to %s", st.State, st.Remote, laddr)
	}
	p.restore(st)

	// Make room in the accept queue: the restored client's next SYN gets in.
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(a)
	ns.MustDo(t, func() error {
		pollFD(l, unix.POLLIN, 10*time.Second)
		s, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		p.srv = s
		return err
	})
	waitState(t, p.cli, soccr.Established)
	p.pump(up, 32<<10, false, 10*time.Second)
	p.pump(down, 32<<10, false, 10*time.Second)
}

// TestIntegrationLargeQueues restores 4 MiB in each queue: the receive
// queue, and a send queue half sent-unacknowledged, half unsent.
func TestIntegrationLargeQueues(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	const mib4 = 4 << 20
	p := newPair(t, ns, pairOpts{network: "tcp4", srvRcvBuf: 4096, cliRcvBuf: 16 << 20, cliSndBuf: 16 << 20})
	if err := unix.SetsockoptInt(p.srv, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 16<<20); err != nil {
		t.Fatal(err)
	}
	p.writeAll(down, mib4)
	waitInq(t, p.cli, mib4)
	p.fillWindow(1)
	p.unacked(mib4/2 - int(p.written[up]))
	p.writeAll(up, mib4/2)
	st := p.checkpoint()
	t.Logf("saved: %s", st)
	if len(st.RecvQueue) != mib4 || len(st.SendQueue) < mib4-64<<10 || st.Unsent < mib4/2-64<<10 {
		t.Fatalf("queues: receive %d, send %d (unsent %d): want 4 MiB each, half unsent", len(st.RecvQueue), len(st.SendQueue), st.Unsent)
	}
	p.restore(st)
	var ri, si int
	ri, _ = unix.GetsockoptInt(p.cli, unix.SOL_SOCKET, unix.SO_RCVBUF)
	si, _ = unix.GetsockoptInt(p.cli, unix.SOL_SOCKET, unix.SO_SNDBUF)
	t.Logf("restored socket buffers: rcv %d snd %d", ri, si)
	p.pump(up, 64<<10, false, 60*time.Second)
	p.pump(down, 64<<10, false, 60*time.Second)
}

// TestIntegrationFromNothing builds both ends of a connection from chosen
// values, without any handshake, and carries data both ways on it.
func TestIntegrationFromNothing(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	a := netip.MustParseAddrPort("127.0.0.1:40001")
	b := netip.MustParseAddrPort("127.0.0.1:40002")
	const seqA, seqB = 0xfffff000, 123456 // A's numbers wrap around 2^32 soon
	win := func(rcvNxt uint32) *soccr.Window {
		return &soccr.Window{SndWl1: rcvNxt, SndWnd: 65535 << 7, MaxWindow: 65535 << 7, RcvWnd: 65535 << 7, RcvWup: rcvNxt}
	}
	// B already received "hello " from A (unread), A has "world" unsent.
	hello, world := []byte("hello "), []byte("world")
	stA := &soccr.State{State: soccr.Established, Local: a, Remote: b,
		SendSeq: seqA + uint32(len(hello)) + uint32(len(world)), RecvSeq: seqB,
		SendQueue: world, Unsent: uint32(len(world)),
		MSSClamp: 1460, Options: soccr.OptWscale | soccr.OptSACK | soccr.OptTimestamps, SndWscale: 7, RcvWscale: 7,
		Timestamp: 1000, Window: win(seqB), Sockopts: &soccr.Sockopts{NoDelay: true}}
	stB := &soccr.State{State: soccr.Established, Local: b, Remote: a,
		SendSeq: seqB, RecvSeq: seqA + uint32(len(hello)), RecvQueue: hello,
		MSSClamp: 1460, Options: soccr.OptWscale | soccr.OptSACK | soccr.OptTimestamps, SndWscale: 7, RcvWscale: 7,
		Timestamp: 5000, Window: win(seqA + uint32(len(hello)))}
	// Both ends are restored before either resumes: a resumed end probes
	// its peer at once, and a missing peer would answer with a reset.
	fa, fb := -1, -1
	ns.MustDo(t, func() error {
		var conns []*soccr.Conn
		for _, st := range []*soccr.State{stA, stB} {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if fa < 0 {
				fa = fd
			} else {
				fb = fd
			}
			c, err := soccr.Pause(fd)
			if err != nil {
				return err
			}
			if err := c.Restore(st); err != nil {
				return err
			}
			// Nothing may leave before Resume: the peer may not exist yet.
			if n := tcpOutSegs(t); n != 0 {
				t.Errorf("restoring %s sent %d segments before Resume", st.Local, n)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			if err := c.Resume(); err != nil {
				return err
			}
		}
		return nil
	})
	defer unix.Close(fa)
	defer unix.Close(fb)
	got := make([]byte, 0, 64)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len("hello world") && time.Now().Before(deadline) {
		pollFD(fb, unix.POLLIN, 100*time.Millisecond)
		buf := make([]byte, 64)
		n, _, _ := unix.Recvfrom(fb, buf, unix.MSG_DONTWAIT)
		if n > 0 {
			got = append(got, buf[:n]...)
		}
	}
	if string(got) != "hello world" {
		t.Fatalf("B read %q, want %q", got, "hello world")
	}
	p := &pair{tb: t, ns: ns, cli: fa, srv: fb}
	p.written[up] = 0
	p.pump(up, 256<<10, false, 10*time.Second)
	p.pump(down, 256<<10, false, 10*time.Second)
	if v, _ := unix.GetsockoptInt(fa, unix.SOL_TCP, unix.TCP_NODELAY); v != 1 {
		t.Errorf("TCP_NODELAY on A is %d, want 1", v)
	}
	p.cli, p.srv = -1, -1
}

// TestIntegrationSockopts saves and restores the options libsoccr leaves to
// its caller.
func TestIntegrationSockopts(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	p := newPair(t, ns, pairOpts{network: "tcp4"})
	set := map[[2]int]int{
		{unix.SOL_TCP, unix.TCP_NODELAY}:      1,
		{unix.SOL_TCP, unix.TCP_CORK}:         1,
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE}:  1,
		{unix.SOL_TCP, unix.TCP_KEEPIDLE}:     77,
		{unix.SOL_TCP, unix.TCP_KEEPINTVL}:    11,
		{unix.SOL_TCP, unix.TCP_KEEPCNT}:      5,
		{unix.SOL_TCP, unix.TCP_USER_TIMEOUT}: 4321,
	}
	for k, v := range set {
		if err := unix.SetsockoptInt(p.cli, k[0], k[1], v); err != nil {
			t.Fatal(err)
		}
	}
	st := p.checkpoint()
	want := soccr.Sockopts{NoDelay: true, Cork: true, KeepAlive: true, KeepIdle: 77, KeepIntvl: 11, KeepCnt: 5, UserTimeout: 4321}
	if st.Sockopts == nil || *st.Sockopts != want {
		t.Fatalf("saved %+v, want %+v", st.Sockopts, want)
	}
	p.restore(st)
	for k, v := range set {
		if got, err := unix.GetsockoptInt(p.cli, k[0], k[1]); err != nil || got != v {
			t.Errorf("option %v: %d (%v), want %d", k, got, err, v)
		}
	}
	unix.SetsockoptInt(p.cli, unix.SOL_TCP, unix.TCP_CORK, 0)
	p.pump(up, 16<<10, false, 5*time.Second)
	p.pump(down, 16<<10, false, 5*time.Second)
}

// TestIntegrationErrors checks the errors of Pause and Save: they name the
// socket and work with errors.Is for both the sentinel and the errno.
func TestIntegrationErrors(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	ns.MustDo(t, func() error {
		udp, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(udp)
		_, err := soccr.Pause(udp)
		expectErr(t, "UDP socket", err, soccr.ErrNotTCP, unix.ENOPROTOOPT)

		us, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(us)
		_, err = soccr.Pause(us)
		expectErr(t, "unix socket", err, soccr.ErrNotTCP, nil)

		f, _ := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		defer unix.Close(f)
		_, err = soccr.Pause(f)
		expectErr(t, "/dev/null", err, soccr.ErrNotTCP, unix.ENOTSOCK)

		l, _, _ := listen(unix.AF_INET, 0, 1)
		defer unix.Close(l)
		_, err = soccr.Pause(l)
		expectErr(t, "listening socket", err, soccr.ErrUnsupportedState, unix.EPERM)

		closed, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		unix.Close(closed)
		_, err = soccr.Pause(closed)
		expectErr(t, "closed descriptor", err, nil, unix.EBADF)

		// A socket that was never connected cannot be checkpointed.
		fresh, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(fresh)
		c, err := soccr.Pause(fresh)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Save()
		expectErr(t, "unconnected socket", err, soccr.ErrUnsupportedState, unix.ENOTCONN)
		c.Release()

		// Without CAP_NET_ADMIN (capabilities are per thread).
		tcp, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(tcp)
		err = withoutNetAdmin(func() error { _, err := soccr.Pause(tcp); return err })
		expectErr(t, "no CAP_NET_ADMIN", err, soccr.ErrNoRepair, unix.EPERM)
		return nil
	})

	_, err := soccr.Restore(&soccr.State{State: soccr.Listen})
	expectErr(t, "restore LISTEN", err, soccr.ErrUnsupportedState, nil)
	_, err = soccr.Restore(&soccr.State{State: soccr.TimeWait})
	expectErr(t, "restore TIME_WAIT", err, soccr.ErrUnsupportedState, nil)
	_, err = soccr.Restore(&soccr.State{State: soccr.Established,
		Local: netip.MustParseAddrPort("127.0.0.1:1"), Remote: netip.MustParseAddrPort("[::1]:2")})
	expectErr(t, "restore mixed families", err, soccr.ErrBadState, nil)
}

func expectErr(t *testing.T, what string, err error, sentinel, errno error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	var oe *soccr.OpError
	if !errors.As(err, &oe) {
		t.Errorf("%s: %T is not an *OpError: %v", what, err, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("%s: %v is not %v", what, err, sentinel)
	}
	if errno != nil && !errors.Is(err, errno) {
		t.Errorf("%s: %v is not %v", what, err, errno)
	}
	t.Logf("%s: %v", what, err)
}

// withoutNetAdmin runs fn on a thread whose effective capabilities lack
// CAP_NET_ADMIN; the thread dies afterwards.
func withoutNetAdmin(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			ch <- err
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// TestIntegrationFailedCheckpointResumes: a Save that fails leaves the
// connection able to go on after Resume.
func TestIntegrationFailedCheckpointResumes(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	p := newPair(t, ns, pairOpts{network: "tcp4"})
	p.writeAll(down, 8<<10)
	waitInq(t, p.cli, 8<<10)
	c, err := soccr.Pause(p.cli)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SaveWith(soccr.SaveOptions{Alloc: func(n int) []byte { return make([]byte, n/2) }})
	if err == nil {
		t.Fatal("Save with a short buffer did not fail")
	}
	t.Logf("failed as wanted: %v", err)
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(); !errors.Is(err, soccr.ErrReleased) {
		t.Errorf("second Resume: %v, want ErrReleased", err)
	}
	p.pump(up, 64<<10, false, 5*time.Second)
	p.pump(down, 64<<10, false, 5*time.Second)
}

// TestIntegrationFailedRestoreCleansUp: a Restore that fails closes the
// socket it made, and a failed Conn.Restore leaves a socket in repair mode
// that closes silently.
func TestIntegrationFailedRestoreCleansUp(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	p := newPair(t, ns, pairOpts{network: "tcp4"})
	p.writeAll(down, 8<<10)
	waitInq(t, p.cli, 8<<10)
	st := p.checkpoint()
	bad := *st
	bad.Local = netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), st.Local.Port()) // not ours
	ns.MustDo(t, func() error {
		_, err := soccr.Restore(&bad)
		expectErr(t, "restore to a foreign address", err, nil, unix.EADDRNOTAVAIL)
		return nil
	})
	// The real restore still works and the peer noticed nothing.
	p.restore(st)
	p.pump(up, 16<<10, false, 5*time.Second)
	p.pump(down, 16<<10, false, 5*time.Second)
}

// tcpOutSegs reads the OutSegs counter of the calling thread's network
// namespace.
func tcpOutSegs(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Tcp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "OutSegs" {
				v, _ := strconv.Atoi(f[i])
				return v
			}
		}
	}
	t.Fatal("no Tcp OutSegs in /proc/thread-self/net/snmp")
	return 0
}

// TestIntegrationAdopt: a socket put in repair mode by its caller (as the C
// API's libsoccr_pause does) is saved through Adopt and resumed; the
// connection goes on. Adopted without repair mode, Save fails and changes
// nothing.
func TestIntegrationAdopt(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	p := newPair(t, ns, pairOpts{network: "tcp4"})
	p.writeAll(down, 1000)
	waitInq(t, p.cli, 1000)
	if _, err := soccr.Adopt(p.cli).Save(); err == nil {
		t.Fatal("Save of an adopted socket not in repair mode succeeded")
	}
	if err := unix.SetsockoptInt(p.cli, unix.SOL_TCP, unix.TCP_REPAIR, 1); err != nil {
		t.Fatal(err)
	}
	c := soccr.Adopt(p.cli)
	st, err := c.Save()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.RecvQueue) != 1000 || st.State != soccr.Established {
		t.Errorf("saved %s, want ESTABLISHED with 1000 bytes to read", st)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	p.pump(up, 64<<10, false, 10*time.Second)
	p.pump(down, 64<<10, false, 10*time.Second)
}

// TestIntegrationResendWindowEdge: the bytes sent but not acknowledged
// fill the peer's window exactly, more wait unsent behind them, and the
// peer holds them all (only its ACKs were lost). Resume pushes the sent
// bytes again; it must push every one of them, or the peer's ACK, beyond
// the restored socket's snd_nxt, is discarded and the connection stalls
// for good. It did: the last segment of those bytes took unsent bytes on
// behind, reached past the window and was held back.
func TestIntegrationResendWindowEdge(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	p := newPair(t, ns, pairOpts{network: "tcp4", srvRcvBuf: 64 << 10})
	local, _ := unix.Getsockname(p.cli)
	peer, _ := unix.Getpeername(p.cli)
	ns.Nft(t, fmt.Sprintf("table inet acks { chain in { type filter hook input priority 0; tcp sport %d tcp dport %d drop; }; }",
		addrPort(peer).Port(), addrPort(local).Port()))
	p.write(up, 1<<20)
	waitFor(t, "the server's window to close", 5*time.Second, func() bool {
		v, _ := unix.IoctlGetInt(p.srv, unix.SIOCINQ)
		return v > 32<<10 && notsent(p.cli) > 0
	})
	time.Sleep(20 * time.Millisecond)
	st := p.checkpoint()
	if sent := len(st.SendQueue) - int(st.Unsent); sent == 0 || st.Unsent == 0 {
		t.Fatalf("saved %s: want bytes both sent and unsent", st)
	}
	ns.Nft(t, "delete table inet acks")
	p.restore(st)
	p.expect(up, p.written[up], false, 10*time.Second)
	p.pump(up, 256<<10, false, 10*time.Second)
	p.pump(down, 64<<10, false, 10*time.Second)
}

// netstat reads the TcpExt counters of the calling thread's network
// namespace (/proc/thread-self/net/netstat).
func netstat(t *testing.T) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/net/netstat")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j := 1; j < len(names) && j < len(values); j++ {
			v, _ := strconv.ParseInt(values[j], 10, 64)
			m[strings.TrimSuffix(names[0], ":")+names[j]] = v
		}
	}
	return m
}

// TestIntegrationPacedTimestamps: a paced socket (here SO_MAX_PACING_RATE;
// BBR and fq pace too) stamps its segments with their departure time,
// ahead of the clock that Save reads. Restored with the clock as read,
// its segments were older than what the peer had seen, and the peer's
// PAWS dropped them (the window probe, then the data) until a 1 s
// retransmission timeout. The peer must drop nothing for PAWS.
func TestIntegrationPacedTimestamps(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	p := newPair(t, ns, pairOpts{network: "tcp4", cliSndBuf: 4 << 20, cliMSS: 1460})
	if err := unix.SetsockoptInt(p.cli, unix.SOL_SOCKET, unix.SO_MAX_PACING_RATE, 100000); err != nil {
		t.Fatal(err)
	}
	p.write(up, 2<<20)
	for range 5 { // the client acknowledges these with stamps of its pacing clock
		p.writeAll(down, 1000)
		time.Sleep(2 * time.Millisecond)
	}
	st := p.checkpoint()
	if st.Options&soccr.OptTimestamps == 0 {
		t.Fatal("no timestamps on the connection")
	}
	var before map[string]int64
	ns.MustDo(t, func() error { before = netstat(t); return nil })
	p.restore(st)
	p.expect(up, p.written[up], false, 20*time.Second)
	p.expect(down, p.written[down], false, 10*time.Second)
	ns.MustDo(t, func() error {
		after := netstat(t)
		t.Logf("PAWS %d/%d -> %d/%d; saved %s", before["TcpExtPAWSEstab"], before["TcpExtPAWSOldAck"], after["TcpExtPAWSEstab"], after["TcpExtPAWSOldAck"], st)
		for _, k := range []string{"TcpExtPAWSEstab", "TcpExtPAWSOldAck"} {
			if d := after[k] - before[k]; d != 0 {
				t.Errorf("%s went up by %d: the peer dropped segments of the restored socket for their timestamps", k, d)
			}
		}
		return nil
	})
}

// TestIntegrationFinWait1Push: the peer holds our FIN, only its ACK was
// lost, and the restore queues the FIN again, unsent. The peer then
// acknowledges beyond the restored socket's snd_nxt, and in FIN_WAIT1 the
// kernel discards such segments, data included, answering with challenge
// ACKs, until a timer sends the FIN (seconds). Resume pushes the FIN: no
// challenge ACK may be needed.
func TestIntegrationFinWait1Push(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	p := newPair(t, ns, pairOpts{network: "tcp4"})
	local, _ := unix.Getsockname(p.cli)
	peer, _ := unix.Getpeername(p.cli)
	ns.Nft(t, fmt.Sprintf("table inet acks { chain in { type filter hook input priority 0; tcp sport %d tcp dport %d drop; }; }",
		addrPort(peer).Port(), addrPort(local).Port()))
	if err := unix.Shutdown(p.cli, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.srv, soccr.CloseWait)
	st := p.checkpoint()
	if st.State != soccr.FinWait1 {
		t.Fatalf("saved %s, want FIN_WAIT1", st)
	}
	ns.Nft(t, "delete table inet acks")
	var before map[string]int64
	ns.MustDo(t, func() error { before = netstat(t); return nil })
	p.restore(st)
	p.pump(down, 64<<10, false, 20*time.Second)
	ns.MustDo(t, func() error {
		if d := netstat(t)["TcpExtTCPChallengeACK"] - before["TcpExtTCPChallengeACK"]; d != 0 {
			t.Errorf("%d challenge ACKs: the peer's segments were discarded while our FIN was not sent", d)
		}
		return nil
	})
}

// TestIntegrationResumeKick: unsent bytes behind a window the peer had
// closed, restored twice within half a second while the peer reads in
// between (its window updates dropped by the lock). The peer answers the
// window probe of the first Resume, but ignores that of the second, within
// net.ipv4.tcp_invalid_ratelimit of the first; the bytes then waited for
// the zero-window probe timer, seconds. Resume pushes unsent bytes, so no
// probe beyond the one of each Resume may be needed.
func TestIntegrationResumeKick(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	p := newPair(t, ns, pairOpts{network: "tcp4", srvRcvBuf: 64 << 10})
	var before map[string]int64
	ns.MustDo(t, func() error { before = netstat(t); return nil })
	for round := range 2 {
		p.write(up, 1<<20) // the server does not read: its window closes
		waitFor(t, "the server's window to close, all sent bytes acknowledged", 5*time.Second, func() bool {
			outq, _ := unix.IoctlGetInt(p.cli, unix.SIOCOUTQ)
			return notsent(p.cli) > 0 && outq == notsent(p.cli)
		})
		st := p.checkpoint()
		if st.Unsent == 0 || int(st.Unsent) != len(st.SendQueue) || st.Window == nil || st.Window.SndWnd >= st.MSSClamp {
			t.Fatalf("round %d: saved %s (window %+v): want only unsent bytes, behind a closed window", round, st, st.Window)
		}
		p.readSome(up, 10*time.Millisecond) // window update dropped by the lock
		p.restore(st)
		p.expect(up, p.written[up], false, 20*time.Second)
	}
	ns.MustDo(t, func() error {
		if d := netstat(t)["TcpExtTCPWinProbe"] - before["TcpExtTCPWinProbe"]; d > 2 {
			t.Errorf("%d window probes for 2 resumes: unsent bytes waited for the zero-window probe timer", d)
		}
		return nil
	})
}

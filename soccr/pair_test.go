package soccr_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/gosoccr/gosoccr/internal/netnstest"
	"github.com/gosoccr/gosoccr/internal/stream"
	"golang.org/x/sys/unix"
)

// Stream directions.
const (
	up   = 0 // client to server
	down = 1 // server to client
)

// pair is a TCP connection inside a test's network namespace: cli is the
// socket that gets checkpointed, srv its peer. The counters say how many
// bytes each side wrote and how many of the other side's it verified.
type pair struct {
	tb       testing.TB
	ns       *netnstest.NetNS
	cli, srv int
	written  [2]int64 // by direction
	verified [2]int64 // by direction
}

type pairOpts struct {
	network   string // "tcp4", "tcp6", "tcp4in6" (AF_INET6 client, IPv4 server)
	srvRcvBuf int    // SO_RCVBUF of the server before listen: small closes its window soon
	cliRcvBuf int    // SO_RCVBUFFORCE of the client
	cliSndBuf int    // SO_SNDBUFFORCE of the client
	cliMSS    int    // TCP_MAXSEG of the client before connect
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// listen makes a listening socket on loopback of the given family.
func listen(family int, rcvbuf, backlog int) (int, netip.AddrPort, error) {
	l, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	if rcvbuf > 0 {
		if err := unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			unix.Close(l)
			return -1, netip.AddrPort{}, err
		}
	}
	addr := netip.MustParseAddrPort("127.0.0.1:0")
	if family == unix.AF_INET6 {
		addr = netip.MustParseAddrPort("[::1]:0")
	}
	if err := unix.Bind(l, sockaddr(addr)); err != nil {
		unix.Close(l)
		return -1, netip.AddrPort{}, err
	}
	if err := unix.Listen(l, backlog); err != nil {
		unix.Close(l)
		return -1, netip.AddrPort{}, err
	}
	sa, _ := unix.Getsockname(l)
	return l, addrPort(sa), nil
}

func newPair(tb testing.TB, ns *netnstest.NetNS, o pairOpts) *pair {
	tb.Helper()
	p := &pair{tb: tb, ns: ns, cli: -1, srv: -1}
	ns.MustDo(tb, func() error {
		lfam, cfam := unix.AF_INET, unix.AF_INET
		switch o.network {
		case "tcp6":
			lfam, cfam = unix.AF_INET6, unix.AF_INET6
		case "tcp4in6":
			cfam = unix.AF_INET6
		}
		l, laddr, err := listen(lfam, o.srvRcvBuf, 8)
		if err != nil {
			return err
		}
		defer unix.Close(l)
		c, err := unix.Socket(cfam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		p.cli = c
		if o.cliRcvBuf > 0 {
			if err := unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, o.cliRcvBuf); err != nil {
				return err
			}
		}
		if o.cliMSS > 0 {
			if err := unix.SetsockoptInt(c, unix.SOL_TCP, unix.TCP_MAXSEG, o.cliMSS); err != nil {
				return err
			}
		}
		if o.cliSndBuf > 0 {
			if err := unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, o.cliSndBuf); err != nil {
				return err
			}
		}
		dst := laddr
		if o.network == "tcp4in6" {
			dst = netip.AddrPortFrom(netip.AddrFrom16(laddr.Addr().As16()), laddr.Port())
		}
		if err := unix.Connect(c, sockaddr(dst)); err != nil {
			return fmt.Errorf("connect %s: %w", dst, err)
		}
		s, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		if err != nil {
			return err
		}
		p.srv = s
		return nil
	})
	tb.Cleanup(p.close)
	return p
}

func (p *pair) close() {
	if p.cli >= 0 {
		unix.Close(p.cli)
		p.cli = -1
	}
	if p.srv >= 0 {
		unix.Close(p.srv)
		p.srv = -1
	}
}

func (p *pair) fd(dir int, writer bool) int {
	if (dir == up) == writer {
		return p.cli
	}
	return p.srv
}

// write writes up to n more bytes of direction dir without blocking and
// returns how many it wrote.
func (p *pair) write(dir int, n int) int {
	p.tb.Helper()
	fd := p.fd(dir, true)
	buf := make([]byte, 64<<10)
	done := 0
	for done < n {
		b := buf[:min(len(buf), n-done)]
		stream.Fill(uint8(dir), p.written[dir], b)
		w, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			p.tb.Fatalf("write %d: %v", dir, err)
		}
		p.written[dir] += int64(w)
		done += w
	}
	return done
}

// writeAll writes exactly n bytes of direction dir, waiting for room.
func (p *pair) writeAll(dir int, n int) {
	p.tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n > 0 {
		w := p.write(dir, n)
		n -= w
		if n > 0 {
			if time.Now().After(deadline) {
				p.tb.Fatalf("write %d: %d bytes still not written", dir, n)
			}
			pollFD(p.fd(dir, true), unix.POLLOUT, 100*time.Millisecond)
		}
	}
}

func pollFD(fd int, ev int16, d time.Duration) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: ev}}
	unix.Poll(fds, int(d/time.Millisecond))
}

// expect reads direction dir until the reader has verified total bytes; with
// eof it then requires end of stream. It fails after timeout.
func (p *pair) expect(dir int, total int64, eof bool, timeout time.Duration) {
	p.tb.Helper()
	fd := p.fd(dir, false)
	buf := make([]byte, 256<<10)
	deadline := time.Now().Add(timeout)
	for p.verified[dir] < total || eof {
		if time.Now().After(deadline) {
			p.tb.Fatalf("direction %d: verified %d of %d bytes (eof wanted: %v) before timeout",
				dir, p.verified[dir], total, eof)
		}
		pollFD(fd, unix.POLLIN, 50*time.Millisecond)
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			p.tb.Fatalf("direction %d: read after %d bytes: %v", dir, p.verified[dir], err)
		}
		if n == 0 {
			if !eof || p.verified[dir] < total {
				p.tb.Fatalf("direction %d: end of stream after %d bytes, want %d", dir, p.verified[dir], total)
			}
			return
		}
		if err := stream.Check(uint8(dir), p.verified[dir], buf[:n]); err != nil {
			p.tb.Fatal(err)
		}
		p.verified[dir] += int64(n)
		if p.verified[dir] > total {
			p.tb.Fatalf("direction %d: %d bytes arrived, only %d were written", dir, p.verified[dir], total)
		}
	}
}

// readSome reads what direction dir has ready within d and verifies it.
func (p *pair) readSome(dir int, d time.Duration) {
	p.tb.Helper()
	fd := p.fd(dir, false)
	pollFD(fd, unix.POLLIN, d)
	buf := make([]byte, 256<<10)
	n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
	if err != nil || n == 0 {
		return
	}
	if err := stream.Check(uint8(dir), p.verified[dir], buf[:n]); err != nil {
		p.tb.Fatal(err)
	}
	p.verified[dir] += int64(n)
}

type tcpInfoHead struct {
	State, CAState, Retransmits, Probes, Backoff, Options, Wscale, Flags uint8
}

func tcpState(fd int) uint8 {
	var ti [232]byte
	n := uint32(len(ti))
	unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_TCP, unix.TCP_INFO, uintptr(unsafe.Pointer(&ti[0])), uintptr(unsafe.Pointer(&n)), 0)
	return ti[0]
}

func notsent(fd int) int {
	v, _ := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
	return v
}

// waitFor polls cond until it holds or fails the test after timeout.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fillWindow writes from the client until the server's window is closed and
// at least minUnsent bytes wait unsent in the client's send queue.
func (p *pair) fillWindow(minUnsent int) {
	p.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for notsent(p.cli) < minUnsent {
		if time.Now().After(deadline) {
			p.tb.Fatalf("client's send queue: %d unsent bytes, want %d", notsent(p.cli), minUnsent)
		}
		p.write(up, 16<<10)
		time.Sleep(5 * time.Millisecond)
	}
}

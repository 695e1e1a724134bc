package soccr_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/gosoccr/gosoccr/internal/benchconn"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"github.com/gosoccr/gosoccr/internal/stream"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// soNetnsCookie is SO_NETNS_COOKIE (Linux 5.14): the cookie of the network
// namespace a socket lives in.
const soNetnsCookie = 71

func netnsCookie(t *testing.T, fd int) uint64 {
	t.Helper()
	var c uint64
	n := uint32(8)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, soNetnsCookie,
		uintptr(unsafe.Pointer(&c)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		t.Fatalf("getsockopt SO_NETNS_COOKIE fd %d: %v", fd, e)
	}
	return c
}

// queueBytes is what benchconn.Setup queues in each direction.
func queueBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// addUnacked writes b into fd's send queue in repair mode: sent as far as
// the socket knows, never transmitted, as if the packets had been lost.
func addUnacked(fd int, b []byte) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, 1); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, 2); err != nil {
		return err
	}
	for len(b) > 0 {
		w, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_DONTWAIT)
		if err != nil {
			return err
		}
		b = b[w:]
	}
	return unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, -1) // no window probe
}

// readExactly reads len(want) bytes from fd within d and compares them.
func readExactly(fd int, want []byte, d time.Duration) error {
	got := make([]byte, 0, len(want))
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(d)
	for len(got) < len(want) {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("fd %d: %d of %d bytes at timeout", fd, len(got), len(want))
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		unix.Poll(pfd, int(left.Milliseconds())+1)
		n, err := unix.Read(fd, buf[:min(len(buf), len(want)-len(got))])
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("fd %d: read: %w", fd, err)
		}
		if n == 0 {
			return fmt.Errorf("fd %d: EOF after %d of %d bytes", fd, len(got), len(want))
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		return fmt.Errorf("fd %d: byte %d is %#02x, want %#02x", fd, i, got[i], want[i])
	}
	return nil
}

// TestIntegrationBulkRoundTrip checkpoints 200 connections with bytes
// queued both ways and bytes sent but never acknowledged, restores them
// all from a thread locked in the test's namespace (the workers run on
// other threads and must join it), and checks the byte streams of a sample.
func TestIntegrationBulkRoundTrip(t *testing.T) {
	t.Run("CheckpointAll", func(t *testing.T) { bulkRoundTrip(t, soccr.CheckpointAll, false) })
	// The same, each socket closed by the thread that checkpointed it.
	t.Run("CheckpointCloseAll", func(t *testing.T) { bulkRoundTrip(t, soccr.CheckpointCloseAll, true) })
}

func bulkRoundTrip(t *testing.T, checkpointAll func([]int, soccr.SaveOptions) []soccr.Result, closes bool) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	const n, queue, lost = 200, 4 << 10, 2 << 10
	ns.MustDo(t, func() error {
		conns, err := benchconn.Setup(benchconn.Options{N: n, Queue: queue})
		if err != nil {
			return err
		}
		defer func() { benchconn.Close(conns) }()
		extra := make([]byte, lost)
		stream.Fill(up, 0, extra)
		fds := make([]int, n)
		for i, c := range conns {
			if err := addUnacked(c.Client, extra); err != nil {
				return err
			}
			fds[i] = c.Client
		}
		cookie := netnsCookie(t, conns[0].Server)

		ck := checkpointAll(fds, soccr.SaveOptions{NoSockopts: true})
		states := make([]*soccr.State, n)
		for i, r := range ck {
			if r.Err != nil {
				return fmt.Errorf("checkpoint %d: %w", i, r.Err)
			}
			if len(r.State.RecvQueue) != queue || len(r.State.SendQueue) != lost || r.State.Unsent != 0 {
				return fmt.Errorf("checkpoint %d: %s: want %d bytes received, %d sent and unacknowledged", i, r.State, queue, lost)
			}
			states[i] = r.State
			if closes {
				if r.FD != -1 {
					return fmt.Errorf("checkpoint %d: FD %d, want -1 for a closed socket", i, r.FD)
				}
				if _, err := unix.FcntlInt(uintptr(fds[i]), unix.F_GETFD, 0); err != unix.EBADF {
					return fmt.Errorf("checkpoint %d: fd %d still open (%v)", i, fds[i], err)
				}
			} else {
				unix.Close(conns[i].Client)
			}
			conns[i].Client = -1
		}

		t0 := time.Now()
		rs := soccr.RestoreAll(states)
		t.Logf("restored %d connections in %v", n, time.Since(t0))
		for i, r := range rs {
			if r.Err != nil {
				return fmt.Errorf("restore %d: %w", i, r.Err)
			}
			if r.Conn != nil {
				return fmt.Errorf("restore %d: RestoreAll left a paused handle", i)
			}
			conns[i].Client = r.FD
			if c := netnsCookie(t, r.FD); c != cookie {
				return fmt.Errorf("restore %d: socket in namespace %d, want the caller's %d", i, c, cookie)
			}
		}
		want := append(queueBytes(queue), extra...)
		for i := 0; i < n; i += 19 {
			c := conns[i]
			// The lost bytes were resent at once: well before the 1 s
			// of a retransmission timeout (not timed here).
			if err := readExactly(c.Server, want, 10*time.Second); err != nil {
				return fmt.Errorf("connection %d, client to server: %w", i, err)
			}
			if err := readExactly(c.Client, queueBytes(queue), 10*time.Second); err != nil {
				return fmt.Errorf("connection %d, server to client: %w", i, err)
			}
			more := []byte(fmt.Sprintf("connection %d goes on", i))
			for _, d := range [][2]int{{c.Client, c.Server}, {c.Server, c.Client}} {
				if _, err := unix.Write(d[0], more); err != nil {
					return err
				}
				if err := readExactly(d[1], more, 10*time.Second); err != nil {
					return fmt.Errorf("connection %d after restore: %w", i, err)
				}
			}
		}
		return nil
	})
}

// TestIntegrationBulkOneBad: a descriptor that is no TCP socket, a closed
// one, a nil state and a state that cannot be restored among good ones
// fail alone, each with an *OpError naming it; the others go through.
func TestIntegrationBulkOneBad(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t)
	const n, queue = 100, 1 << 10
	ns.MustDo(t, func() error {
		conns, err := benchconn.Setup(benchconn.Options{N: n, Queue: queue})
		if err != nil {
			return err
		}
		defer func() { benchconn.Close(conns) }()
		udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(udp)
		fds := make([]int, n)
		for i, c := range conns {
			fds[i] = c.Client
		}
		const notTCP, closed = 17, 60
		fds[notTCP], fds[closed] = udp, 1<<20 // no such descriptor
		ck := soccr.CheckpointAll(fds, soccr.SaveOptions{})
		states := make([]*soccr.State, n)
		for i, r := range ck {
			var oe *soccr.OpError
			switch i {
			case notTCP, closed:
				if !errors.As(r.Err, &oe) || oe.FD != fds[i] || r.State != nil {
					return fmt.Errorf("checkpoint %d (fd %d): got %v, want an *OpError for it", i, fds[i], r.Err)
				}
				t.Logf("checkpoint %d: %v", i, r.Err)
				continue
			}
			if r.Err != nil {
				return fmt.Errorf("checkpoint %d: %w", i, r.Err)
			}
			states[i] = r.State
		}
		if !errors.Is(ck[notTCP].Err, soccr.ErrNotTCP) || !errors.Is(ck[closed].Err, unix.EBADF) {
			return fmt.Errorf("errors: %v; %v: want ErrNotTCP and EBADF", ck[notTCP].Err, ck[closed].Err)
		}
		// The failed descriptors were never paused; the good ones were
		// saved and are closed now, in repair mode.
		for i := range conns {
			if states[i] != nil {
				unix.Close(conns[i].Client)
				conns[i].Client = -1
			}
		}

		const foreign = 33
		bad := *states[foreign]
		bad.Local = netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), bad.Local.Port()) // not ours
		states[foreign] = &bad
		rs := soccr.RestoreAll(states) // states[notTCP], states[closed] are nil
		for i, r := range rs {
			var oe *soccr.OpError
			switch i {
			case notTCP, closed, foreign:
				if !errors.As(r.Err, &oe) || r.FD != -1 {
					return fmt.Errorf("restore %d: got fd %d, %v: want an *OpError", i, r.FD, r.Err)
				}
				t.Logf("restore %d: %v", i, r.Err)
				continue
			}
			if r.Err != nil {
				return fmt.Errorf("restore %d: %w", i, r.Err)
			}
			conns[i].Client = r.FD
		}
		if !errors.Is(rs[foreign].Err, unix.EADDRNOTAVAIL) || !errors.Is(rs[notTCP].Err, soccr.ErrBadState) {
			return fmt.Errorf("errors: %v; %v: want EADDRNOTAVAIL and ErrBadState", rs[foreign].Err, rs[notTCP].Err)
		}
		for _, i := range []int{0, foreign - 1, foreign + 1, n - 1} {
			if err := readExactly(conns[i].Client, queueBytes(queue), 10*time.Second); err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			if err := readExactly(conns[i].Server, queueBytes(queue), 10*time.Second); err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
		return nil
	})
}

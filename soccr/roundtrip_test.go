package soccr_test

import (
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/internal/netnstest"
	"github.com/gosoccr/gosoccr/internal/stream"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// unacked puts n more bytes of the client's stream into its send queue as
// sent but unacknowledged, as if the packets carrying them had been lost:
// in repair mode the kernel queues them as sent without transmitting them.
// Everything still unsent in the queue becomes "sent" too.
func (p *pair) unacked(n int) {
	p.tb.Helper()
	fd := p.cli
	must := func(err error) {
		p.tb.Helper()
		if err != nil {
			p.tb.Fatal(err)
		}
	}
	must(unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, 1))
	must(unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, 2))
	b := make([]byte, n)
	stream.Fill(up, p.written[up], b)
	for len(b) > 0 {
		w, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_DONTWAIT)
		must(err)
		p.written[up] += int64(w)
		b = b[w:]
	}
	// Leave repair mode without a window probe, so nothing is sent now.
	must(unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, -1))
}

// checkpoint isolates the connection (the network lock stays until
// restore), pauses and saves the client socket, then closes it in repair
// mode: the peer sees nothing.
func (p *pair) checkpoint() *soccr.State {
	p.tb.Helper()
	p.ns.Lock(p.tb)
	c, err := soccr.Pause(p.cli)
	if err != nil {
		p.tb.Fatal(err)
	}
	st, err := c.Save()
	if err != nil {
		p.tb.Fatal(err)
	}
	c.Release()
	unix.Close(p.cli)
	p.cli = -1
	return st
}

// restore restores st into a new client socket, checks the restored TCP
// state, lifts the network lock and resumes the connection.
func (p *pair) restore(st *soccr.State) {
	p.tb.Helper()
	var c *soccr.Conn
	p.ns.MustDo(p.tb, func() error {
		fd, err := unix.Socket(st.Family(), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		p.cli = fd
		if c, err = soccr.Pause(fd); err != nil {
			return err
		}
		if err := c.Restore(st); err != nil {
			return err
		}
		if got := soccr.TCPState(tcpState(fd)); got != st.State {
			p.tb.Errorf("restored socket is %s, want %s", got, st.State)
		}
		return nil
	})
	p.ns.Unlock(p.tb)
	if err := c.Resume(); err != nil {
		p.tb.Fatal(err)
	}
}

// pump writes extra more bytes in direction dir (unless the writer shut
// down) while the reader reads, and checks that the reader gets every byte
// ever written in that direction, once and in order, then EOF if eof.
func (p *pair) pump(dir int, extra int, eof bool, timeout time.Duration) {
	p.tb.Helper()
	deadline := time.Now().Add(timeout)
	for extra > 0 {
		extra -= p.write(dir, extra)
		p.readSome(dir, 10*time.Millisecond)
		if time.Now().After(deadline) {
			p.tb.Fatalf("direction %d: %d bytes still to write at timeout", dir, extra)
		}
	}
	p.expect(dir, p.written[dir], eof, time.Until(deadline))
}

type stateCase struct {
	name  string
	opts  pairOpts
	setup func(t *testing.T, p *pair)
	want  soccr.TCPState
	check func(t *testing.T, st *soccr.State)
}

func waitState(t *testing.T, fd int, s soccr.TCPState) {
	t.Helper()
	waitFor(t, "TCP state "+s.String(), 5*time.Second, func() bool { return soccr.TCPState(tcpState(fd)) == s })
}

func waitInq(t *testing.T, fd int, n int) {
	t.Helper()
	waitFor(t, "receive queue to fill", 5*time.Second, func() bool {
		v, _ := unix.IoctlGetInt(fd, unix.SIOCINQ)
		return v >= n
	})
}

func waitAcked(t *testing.T, fd int) {
	t.Helper()
	waitFor(t, "send queue to drain", 5*time.Second, func() bool {
		v, _ := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		return v == 0
	})
}

func hasUnsentAndUnacked(t *testing.T, st *soccr.State) {
	t.Helper()
	if st.Unsent == 0 || int(st.Unsent) >= len(st.SendQueue) {
		t.Errorf("send queue %d bytes with %d unsent: want both sent-unacked and unsent bytes", len(st.SendQueue), st.Unsent)
	}
	if len(st.RecvQueue) == 0 {
		t.Errorf("receive queue empty")
	}
}

var small = pairOpts{network: "tcp4", srvRcvBuf: 4096}

func stateCases() []stateCase {
	established := func(t *testing.T, p *pair) {
		p.writeAll(down, 32<<10)
		waitInq(t, p.cli, 32<<10)
		p.fillWindow(8 << 10)
		p.unacked(8 << 10)
		p.write(up, 8<<10)
	}
	closeWait := func(t *testing.T, p *pair) {
		p.writeAll(down, 16<<10)
		unix.Shutdown(p.srv, unix.SHUT_WR)
		waitState(t, p.cli, soccr.CloseWait)
		p.fillWindow(8 << 10)
		p.unacked(4 << 10)
		p.write(up, 4<<10)
	}
	closed := func(t *testing.T, p *pair) {
		p.writeAll(down, 16<<10)
		p.writeAll(up, 16<<10)
		waitAcked(t, p.cli)
		unix.Shutdown(p.srv, unix.SHUT_WR)
		waitState(t, p.cli, soccr.CloseWait)
		unix.Shutdown(p.cli, unix.SHUT_WR)
		waitState(t, p.cli, soccr.Close)
	}
	finWait2 := func(t *testing.T, p *pair) {
		p.writeAll(down, 16<<10)
		waitInq(t, p.cli, 16<<10)
		p.writeAll(up, 16<<10)
		waitAcked(t, p.cli)
		unix.Shutdown(p.cli, unix.SHUT_WR)
		waitState(t, p.cli, soccr.FinWait2)
	}
	return []stateCase{
		{name: "CLOSE_WAIT/ipv6", opts: pairOpts{network: "tcp6", srvRcvBuf: 4096}, want: soccr.CloseWait, setup: closeWait, check: hasUnsentAndUnacked},
		{name: "CLOSE_WAIT/v4-mapped", opts: pairOpts{network: "tcp4in6", srvRcvBuf: 4096}, want: soccr.CloseWait, setup: closeWait, check: hasUnsentAndUnacked},
		{name: "CLOSE/ipv6", opts: pairOpts{network: "tcp6"}, want: soccr.Close, setup: closed},
		{name: "FIN_WAIT2/ipv6", opts: pairOpts{network: "tcp6"}, want: soccr.FinWait2, setup: finWait2},
		{name: "ESTABLISHED/ipv4", opts: small, setup: established, want: soccr.Established, check: hasUnsentAndUnacked},
		{name: "ESTABLISHED/ipv6", opts: pairOpts{network: "tcp6", srvRcvBuf: 4096}, setup: established, want: soccr.Established, check: hasUnsentAndUnacked},
		{name: "ESTABLISHED/v4-mapped", opts: pairOpts{network: "tcp4in6", srvRcvBuf: 4096}, setup: established, want: soccr.Established, check: hasUnsentAndUnacked},
		{name: "FIN_WAIT1", opts: small, want: soccr.FinWait1, setup: func(t *testing.T, p *pair) {
			p.writeAll(down, 16<<10)
			waitInq(t, p.cli, 16<<10)
			p.fillWindow(8 << 10)
			p.unacked(4 << 10)
			p.write(up, 4<<10)
			unix.Shutdown(p.cli, unix.SHUT_WR)
		}, check: hasUnsentAndUnacked},
		{name: "FIN_WAIT2", opts: pairOpts{network: "tcp4"}, want: soccr.FinWait2, setup: finWait2},
		{name: "CLOSE_WAIT", opts: small, want: soccr.CloseWait, setup: closeWait, check: hasUnsentAndUnacked},
		{name: "LAST_ACK", opts: small, want: soccr.LastAck, setup: func(t *testing.T, p *pair) {
			p.writeAll(down, 16<<10)
			unix.Shutdown(p.srv, unix.SHUT_WR)
			waitState(t, p.cli, soccr.CloseWait)
			p.fillWindow(8 << 10)
			p.unacked(4 << 10)
			p.write(up, 4<<10)
			unix.Shutdown(p.cli, unix.SHUT_WR)
		}, check: hasUnsentAndUnacked},
		{name: "CLOSING", opts: small, want: soccr.Closing, setup: func(t *testing.T, p *pair) {
			p.writeAll(down, 16<<10)
			waitInq(t, p.cli, 16<<10)
			p.fillWindow(8 << 10)
			unix.Shutdown(p.cli, unix.SHUT_WR)
			unix.Shutdown(p.srv, unix.SHUT_WR)
			waitState(t, p.cli, soccr.Closing)
		}},
		{name: "CLOSE", opts: pairOpts{network: "tcp4"}, want: soccr.Close, setup: closed},
	}
}

// TestIntegrationRoundTrip checkpoints the client of a loopback connection
// in every supported state with data queued both ways, closes it, restores
// it into a new socket, and checks both byte streams end to end.
func TestIntegrationRoundTrip(t *testing.T) {
	for _, tc := range stateCases() {
		t.Run(tc.name, func(t *testing.T) {
			netnstest.CheckFDs(t)
			ns := netnstest.New(t)
			p := newPair(t, ns, tc.opts)
			tc.setup(t, p)
			if got := soccr.TCPState(tcpState(p.cli)); got != tc.want {
				t.Fatalf("setup left the client in %s, want %s", got, tc.want)
			}
			st := p.checkpoint()
			t.Logf("saved: %s", st)
			if st.State != tc.want {
				t.Fatalf("saved state %s, want %s", st.State, tc.want)
			}
			if tc.check != nil {
				tc.check(t, st)
			}
			p.restore(st)

			cliShut, srvShut := tc.want.SentFIN(), tc.want.ReceivedFIN()
			extraUp, extraDown := 64<<10, 64<<10
			if cliShut {
				extraUp = 0
			}
			if srvShut {
				extraDown = 0
			}
			p.pump(up, extraUp, cliShut, 15*time.Second)
			p.pump(down, extraDown, srvShut, 15*time.Second)
			t.Logf("verified %d bytes up, %d bytes down", p.verified[up], p.verified[down])
		})
	}
}

package flows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/internal/flows"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"golang.org/x/sys/unix"
)

// pair makes a loopback TCP connection in the current namespace: the
// peer's end and the client's.
func pair(t *testing.T) (peer, client int) {
	t.Helper()
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 8); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(l)
	if client, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(client, sa); err != nil {
		t.Fatal(err)
	}
	if peer, _, err = unix.Accept4(l, unix.SOCK_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return peer, client
}

func newSet(t *testing.T, n int) (*flows.Set, []*flows.Conn) {
	t.Helper()
	s, err := flows.New(flows.Options{Tick: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	conns := make([]*flows.Conn, n)
	for i := range conns {
		p, c := pair(t)
		if conns[i], err = s.Add(p, c); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	return s, conns
}

// A client taken out and given back (as a checkpoint and restore that
// change nothing would) streams on; every byte checks out.
func TestDetachAttach(t *testing.T) {
	netnstest.CheckFDs(t)
	s, conns := newSet(t, 3)
	fds := s.Detach(conns[1:])
	time.Sleep(30 * time.Millisecond)
	if err := s.Attach(conns[1:], fds); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	st, err := s.Finish(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes[flows.Up] == 0 || st.Bytes[flows.Down] == 0 || st.AfterRestore[flows.Up] == 0 || st.AfterRestore[flows.Down] == 0 {
		t.Errorf("stats %+v: something did not flow", st)
	}
}

// A reset, and a byte taken out of a stream, each fail their connection,
// and only theirs.
func TestDetectsResetAndLoss(t *testing.T) {
	netnstest.CheckFDs(t)
	s, conns := newSet(t, 3)
	fds := s.Detach(conns[:2])
	// Connection 0: the client resets it (SO_LINGER 0, close).
	if err := unix.SetsockoptLinger(fds[0], unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[0])
	// Connection 1: a byte of the peer's stream disappears.
	var b [1]byte
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := unix.Read(fds[1], b[:])
		if n == 1 {
			break
		}
		if err != unix.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("read: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Attach(conns[1:2], fds[1:]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	_, err := s.Finish(5 * time.Second)
	if err == nil {
		t.Fatal("Finish found nothing wrong")
	}
	msg := err.Error()
	// The peer sees the reset in a read or a write, whichever comes first.
	if !strings.Contains(msg, "connection 0: ") || !strings.Contains(msg, "reset by peer") && !strings.Contains(msg, "broken pipe") {
		t.Errorf("Finish: %v; want connection 0's reset", err)
	}
	if want := "connection 1: direction 1: stream 1: byte at offset"; !strings.Contains(msg, want) {
		t.Errorf("Finish: %v; want it to say %q", err, want)
	}
	if strings.Contains(msg, "connection 2") {
		t.Errorf("Finish: %v; connection 2 was fine", err)
	}
}

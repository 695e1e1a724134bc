// Package benchconn sets up many loopback TCP connections with data queued
// in them, for benchmarks of checkpoint and restore. The caller's thread
// must already be in the network namespace it wants.
package benchconn

import (
	"errors"
	"fmt"
	"time"

	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// Conn is one connection: Client gets checkpointed, Server is its peer.
type Conn struct {
	Client, Server int
}

// Options describe the connections.
type Options struct {
	N      int  // connections
	Queue  int  // bytes unread in each direction
	Unsent bool // the client's send queue also holds Queue bytes it could not send yet
}

// Setup makes o.N connections to one listener. Each client has o.Queue
// unread bytes from its server and each server o.Queue unread bytes from
// its client; with o.Unsent each client also holds o.Queue bytes it could
// not send because its server's window is closed.
func Setup(o Options) ([]Conn, error) {
	rcvbuf := 0
	if o.Unsent {
		rcvbuf = max(2048, o.Queue/2) // the window closes before o.Queue more bytes fit
	}
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(l)
	if rcvbuf > 0 {
		if err := unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return nil, err
		}
	} else if o.Queue > 64<<10 {
		if err := unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4*o.Queue); err != nil {
			return nil, err
		}
	}
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return nil, err
	}
	if err := unix.Listen(l, 4096); err != nil {
		return nil, err
	}
	sa, _ := unix.Getsockname(l)
	conns := make([]Conn, 0, o.N)
	fail := func(err error) ([]Conn, error) {
		Close(conns)
		return nil, err
	}
	buf := make([]byte, o.Queue)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	for range o.N {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		if o.Queue > 64<<10 {
			// Room for the whole queue, whatever the autotuning does.
			for _, opt := range []int{unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE} {
				if err := unix.SetsockoptInt(c, unix.SOL_SOCKET, opt, 4*o.Queue); err != nil {
					unix.Close(c)
					return fail(err)
				}
			}
		}
		if err := unix.Connect(c, sa); err != nil {
			unix.Close(c)
			return fail(err)
		}
		s, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		if err != nil {
			unix.Close(c)
			return fail(err)
		}
		if o.Queue > 64<<10 {
			if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4*o.Queue); err != nil {
				unix.Close(c)
				unix.Close(s)
				return fail(err)
			}
		}
		conns = append(conns, Conn{Client: c, Server: s})
		if o.Queue == 0 {
			continue
		}
		if err := writeAll(s, buf); err != nil {
			return fail(err)
		}
		if err := writeAll(c, buf); err != nil {
			return fail(err)
		}
		if o.Unsent {
			if _, err := unix.SendmsgN(c, buf, nil, nil, unix.MSG_DONTWAIT); err != nil && !errors.Is(err, unix.EAGAIN) {
				return fail(err)
			}
		}
	}
	// Wait until the connections are quiet: every client's receive queue
	// holds its bytes, and nothing it sent is still unacknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for _, cn := range conns {
		for o.Queue > 0 {
			inq, err1 := unix.IoctlGetInt(cn.Client, unix.SIOCINQ)
			outq, err2 := unix.IoctlGetInt(cn.Client, unix.SIOCOUTQ)
			unsent, err3 := unix.IoctlGetInt(cn.Client, unix.SIOCOUTQNSD)
			if err := errors.Join(err1, err2, err3); err != nil {
				return fail(err)
			}
			if inq >= o.Queue && outq == unsent {
				break
			}
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("receive queue holds %d of %d bytes, %d bytes in flight", inq, o.Queue, outq-unsent))
			}
			time.Sleep(time.Millisecond)
		}
	}
	return conns, nil
}

func writeAll(fd int, b []byte) error {
	deadline := time.Now().Add(10 * time.Second)
	for len(b) > 0 {
		n, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			if time.Now().After(deadline) {
				return fmt.Errorf("write: %d bytes left: %w", len(b), err)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Close closes every socket of conns that is still open (>= 0), with a
// reset rather than a FIN: no TIME_WAIT is left to hold local ports when a
// benchmark makes thousands of connections one round after another.
func Close(conns []Conn) {
	abort := unix.Linger{Onoff: 1, Linger: 0}
	for _, c := range conns {
		for _, fd := range []int{c.Client, c.Server} {
			if fd >= 0 {
				unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &abort)
				unix.Close(fd)
			}
		}
	}
}

// RaiseNoFile raises RLIMIT_NOFILE to its hard limit.
func RaiseNoFile() error {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return err
	}
	r.Cur = r.Max
	return unix.Setrlimit(unix.RLIMIT_NOFILE, &r)
}

// Checkpoint checkpoints every client socket as a checkpointing tool does
// (pause, save without socket options, close in repair mode) and returns
// their states. The clients are marked closed (-1).
func Checkpoint(conns []Conn) ([]*soccr.State, error) {
	states := make([]*soccr.State, len(conns))
	for i := range conns {
		c, err := soccr.Pause(conns[i].Client)
		if err != nil {
			return nil, err
		}
		if states[i], err = c.SaveWith(soccr.SaveOptions{NoSockopts: true}); err != nil {
			return nil, err
		}
		c.Release()
		unix.Close(conns[i].Client)
		conns[i].Client = -1
	}
	return states, nil
}

// Restore restores every state into a new socket, which becomes the
// connection's client again.
func Restore(conns []Conn, states []*soccr.State) error {
	for i, st := range states {
		fd, err := soccr.Restore(st)
		if err != nil {
			return err
		}
		conns[i].Client = fd
	}
	return nil
}

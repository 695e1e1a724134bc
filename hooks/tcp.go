package hooks

import (
	"errors"
	"fmt"

	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// TCPOptions tune DumpTCP.
type TCPOptions struct {
	// Resume lets the connection go on after its images are written. By
	// default the socket is left in repair mode and released, as a
	// checkpoint wants it: closing it then sends nothing to the peer, and
	// the connection lives on in the images.
	Resume bool
	// Lock puts the connection under the network lock (see Lock): DumpTCP
	// locks its 4-tuple before the pause and leaves it locked, so that the
	// checkpointed connection stays isolated until its restore (a failed
	// dump, or one with Resume, unlocks it again); RestoreTCPWith lifts
	// the lock of the restored connection before it resumes it. The lock
	// applies in the calling thread's network namespace.
	Lock bool
	// Locker, when not nil, is the Locker that Lock uses (and the network
	// namespace it applies in), rather than a netlink socket opened for
	// the call: cheaper for a caller that dumps or restores connections
	// one by one (see Unlock).
	Locker *Locker
}

// lockFuncs are the lock and unlock of o.
func (o TCPOptions) lockFuncs() (lock, unlock func(...Tuple) error) {
	if o.Locker != nil {
		return o.Locker.Lock, o.Locker.Unlock
	}
	return Lock, Unlock
}

// sockKind reads the family, type and protocol of the socket fd. A
// descriptor that is not a socket is ErrNotMine.
func sockKind(fd int) (family, typ, proto int, err error) {
	if family, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil {
		if errors.Is(err, unix.ENOTSOCK) {
			return 0, 0, 0, ErrNotMine
		}
		return 0, 0, 0, fmt.Errorf("fd %d: getsockopt SO_DOMAIN: %w", fd, err)
	}
	if typ, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
		return 0, 0, 0, fmt.Errorf("fd %d: getsockopt SO_TYPE: %w", fd, err)
	}
	if proto, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil {
		return 0, 0, 0, fmt.Errorf("fd %d: getsockopt SO_PROTOCOL: %w", fd, err)
	}
	return family, typ, proto, nil
}

func isTCP(family, typ, proto int) bool {
	return (family == unix.AF_INET || family == unix.AF_INET6) && typ == unix.SOCK_STREAM && proto == unix.IPPROTO_TCP
}

// DumpTCP checkpoints the TCP connection of socket fd into the images of
// id (its inode, as CRIU names sockets) in the directory dirfd: pause,
// save (queues, addresses, socket options), then WriteTCPImages. It
// returns the saved State.
//
// On success the socket is left in repair mode and released, so that the
// caller closes it silently; with o.Resume it goes on instead. A failed
// dump always resumes the socket and removes what it wrote: nothing is
// lost, the connection goes on.
//
// Errors: ErrNotMine for a descriptor that is not an AF_INET or AF_INET6
// TCP socket; the *soccr.OpError of a pause or save that failed (with its
// sentinel, such as soccr.ErrUnsupportedState for a listening socket, and
// errno); an image error.
func DumpTCP(dirfd, fd int, id uint32, o TCPOptions) (*soccr.State, error) {
	fam, typ, proto, err := sockKind(fd)
	if err != nil {
		return nil, err
	}
	if !isTCP(fam, typ, proto) {
		return nil, ErrNotMine
	}
	var locked []Tuple
	lock, unlock := o.lockFuncs()
	if o.Lock {
		// A socket whose peer is gone (CLOSE) has no peer name: it is
		// locked after Save, from the saved addresses; paused, it sends
		// nothing meanwhile.
		if t, err := SocketTuple(fd); err == nil {
			if err := lock(t); err != nil {
				return nil, fmt.Errorf("tcp socket %d: %w", id, err)
			}
			locked = []Tuple{t}
		}
	}
	c, err := soccr.Pause(fd)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("tcp socket %d: %w", id, err), unlock(locked...))
	}
	st, err := c.SaveWith(soccr.SaveOptions{})
	if err == nil && o.Lock && locked == nil {
		if err = lock(TupleOf(st)); err == nil {
			locked = []Tuple{TupleOf(st)}
		}
	}
	if err == nil {
		if err = WriteTCPImages(dirfd, id, st); err != nil {
			removeTCPImages(dirfd, id)
			err = fmt.Errorf("tcp socket %d (%s): %w", id, st, err)
		}
	} else {
		err = fmt.Errorf("tcp socket %d: %w", id, err)
	}
	if err != nil || o.Resume {
		// Unlock first, so that the window probe Resume sends gets out.
		uerr := unlock(locked...)
		if rerr := c.Resume(); rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("tcp socket %d: %w", id, rerr), uerr)
		}
		if err = errors.Join(err, uerr); err != nil {
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	c.Release()
	return st, nil
}

func removeTCPImages(dirfd int, id uint32) {
	unix.Unlinkat(dirfd, TCPStreamImageName(id), 0)
	unix.Unlinkat(dirfd, InetImageName(id), 0)
}

// RestoreTCP restores the TCP connection id from the images in dirfd into
// a new socket (close-on-exec, blocking) and returns its descriptor, which
// belongs to the caller. The connection goes on at once: the caller must
// have kept the connection's packets away since the dump (see package
// soccr) and lets them through when RestoreTCP returns. On failure
// nothing is left behind.
//
// Errors: an image error (os.ErrNotExist for a missing image, ErrBadImage
// or image.ErrCorrupt for a damaged one), or the *soccr.OpError of the
// restore.
func RestoreTCP(dirfd int, id uint32) (int, error) {
	return RestoreTCPWith(dirfd, id, TCPOptions{})
}

// RestoreTCPWith is RestoreTCP with options: with o.Lock, the connection
// was locked by its dump (TCPOptions.Lock) and RestoreTCPWith unlocks it
// between the restore and the resume. That order lets the window probe
// that Resume sends reach the peer, which answers at once; resumed under
// the lock, the probe is dropped and the connection waits for a
// retransmission timeout. If the unlock fails, the new socket is closed
// (silently, in repair mode) and the lock stays: retry, or RemoveLock.
// The lock applies in the calling thread's network namespace; o.Resume is
// ignored.
func RestoreTCPWith(dirfd int, id uint32, o TCPOptions) (int, error) {
	c, st, err := RestoreTCPPaused(dirfd, id)
	if err != nil {
		return -1, err
	}
	fd := c.FD()
	if o.Lock {
		_, unlock := o.lockFuncs()
		if err := unlock(TupleOf(st)); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("tcp socket %d: %w", id, err)
		}
	}
	if err := c.Resume(); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("tcp socket %d: %w", id, err)
	}
	return fd, nil
}

// RestoreTCPPaused is RestoreTCP without the final resume: the connection
// is rebuilt in a new socket that stays in repair mode, sending nothing,
// so that the caller can lift its network lock first and then call
// Resume, or resume several connections together. The socket, c.FD(),
// belongs to the caller: closing it without Resume drops the connection
// silently. It also returns the State read from the images.
func RestoreTCPPaused(dirfd int, id uint32) (*soccr.Conn, *soccr.State, error) {
	st, err := ReadTCPImages(dirfd, id)
	if err != nil {
		return nil, nil, fmt.Errorf("tcp socket %d: %w", id, err)
	}
	c, err := soccr.RestorePaused(st)
	if err != nil {
		return nil, nil, fmt.Errorf("tcp socket %d: %w", id, err)
	}
	return c, st, nil
}

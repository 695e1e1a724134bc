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
	c, err := soccr.Pause(fd)
	if err != nil {
		return nil, fmt.Errorf("tcp socket %d: %w", id, err)
	}
	st, err := c.SaveWith(soccr.SaveOptions{})
	if err == nil {
		if err = WriteTCPImages(dirfd, id, st); err != nil {
			removeTCPImages(dirfd, id)
			err = fmt.Errorf("tcp socket %d (%s): %w", id, st, err)
		}
	} else {
		err = fmt.Errorf("tcp socket %d: %w", id, err)
	}
	if err != nil || o.Resume {
		if rerr := c.Resume(); rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("tcp socket %d: %w", id, rerr))
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
	c, _, err := RestoreTCPPaused(dirfd, id)
	if err != nil {
		return -1, err
	}
	fd := c.FD()
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

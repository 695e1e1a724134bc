package hooks

import (
	"errors"
	"fmt"

	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// Socket is a socket that DumpSocket recorded: exactly one of Unix and
// TCP is set.
type Socket struct {
	ID   uint32
	Unix *UnixSocket  // an external unix socket (DumpUnix)
	TCP  *soccr.State // a TCP connection (DumpTCP)
}

func (s *Socket) String() string {
	if s.Unix != nil {
		return s.Unix.String()
	}
	return fmt.Sprintf("tcp socket %d (%s)", s.ID, s.TCP)
}

// DumpSocket records the socket fd under id in the directory dirfd,
// whatever its family: a unix socket as DumpUnix does under pol, an
// AF_INET or AF_INET6 TCP socket as DumpTCP does for a checkpoint (left
// paused and released: the caller closes it, or takes it out of repair
// mode to let it go on). Anything else is ErrNotMine.
func DumpSocket(dirfd, fd int, id uint32, pol *Policy) (*Socket, error) {
	fam, typ, proto, err := sockKind(fd)
	if err != nil {
		return nil, err
	}
	switch {
	case fam == unix.AF_UNIX:
		u, err := DumpUnix(dirfd, fd, id, pol)
		if err != nil {
			return nil, err
		}
		return &Socket{ID: id, Unix: u}, nil
	case isTCP(fam, typ, proto):
		st, err := DumpTCP(dirfd, fd, id, TCPOptions{})
		if err != nil {
			return nil, err
		}
		return &Socket{ID: id, TCP: st}, nil
	}
	return nil, ErrNotMine
}

// RestoreSocket restores the socket id from the images that DumpSocket
// wrote in dirfd (RestoreUnix with pol's renames, or RestoreTCP) and
// returns the new descriptor, which belongs to the caller. It returns
// ErrNotMine when dirfd holds no image of ours for id, and ErrBadImage
// when it holds both kinds.
func RestoreSocket(dirfd int, id uint32, pol *Policy) (int, error) {
	isUnix, err := haveImage(dirfd, UnixImageName(id))
	if err != nil {
		return -1, err
	}
	isTCP, err := haveImage(dirfd, TCPStreamImageName(id))
	if err != nil {
		return -1, err
	}
	switch {
	case isUnix && isTCP:
		return -1, fmt.Errorf("socket %d: %w: both %s and %s exist", id, ErrBadImage, UnixImageName(id), TCPStreamImageName(id))
	case isUnix:
		return RestoreUnix(dirfd, id, pol)
	case isTCP:
		return RestoreTCP(dirfd, id)
	}
	return -1, ErrNotMine
}

// haveImage reports whether dirfd holds an entry called name (a
// symbolic link counts: opening it later fails).
func haveImage(dirfd int, name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("image %s: fstatat: %w", name, err)
	}
	return true, nil
}

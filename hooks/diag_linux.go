package hooks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"github.com/gosoccr/gosoccr/internal/netns"
	"golang.org/x/sys/unix"
)

// unixDiag is what sock_diag tells of a unix socket that its descriptor
// does not.
type unixDiag struct {
	state    uint8
	peerIno  uint32
	shutdown uint8 // RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2
}

const (
	udiagShowPeer = 0x4 // UDIAG_SHOW_PEER
	unixDiagPeer  = 2   // UNIX_DIAG_PEER
	unixDiagShut  = 6   // UNIX_DIAG_SHUTDOWN, always sent
)

// diagUnix asks sock_diag about the unix socket with inode ino. The socket
// may live in another network namespace than the caller (CRIU dumps tasks
// of other namespaces): fd names it, and the query is made from there.
func diagUnix(fd int, ino uint32) (*unixDiag, error) {
	d, err := diagUnixIn(-1, ino)
	if !errors.Is(err, unix.ENOENT) {
		return d, err
	}
	nsfd, e := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if e != nil {
		return nil, err
	}
	defer unix.Close(nsfd)
	return diagUnixIn(nsfd, ino)
}

// diagUnixIn queries from the network namespace nsfd (-1: the caller's).
func diagUnixIn(nsfd int, ino uint32) (*unixDiag, error) {
	s, err := netlinkIn(nsfd)
	if err != nil {
		return nil, err
	}
	defer unix.Close(s)

	// struct nlmsghdr + struct unix_diag_req
	req := make([]byte, 16+24)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], 1)
	r := req[16:]
	r[0] = unix.AF_UNIX
	binary.NativeEndian.PutUint32(r[4:], 0xffffffff) // all states
	binary.NativeEndian.PutUint32(r[8:], ino)
	binary.NativeEndian.PutUint32(r[12:], udiagShowPeer)
	binary.NativeEndian.PutUint32(r[16:], 0xffffffff) // no cookie
	binary.NativeEndian.PutUint32(r[20:], 0xffffffff)
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("sendto sock_diag", err)
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(s, buf, 0)
	if err != nil {
		return nil, os.NewSyscallError("recvfrom sock_diag", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(m.Data)); e < 0 {
					return nil, os.NewSyscallError("sock_diag", unix.Errno(-e))
				}
			}
			continue
		case unix.SOCK_DIAG_BY_FAMILY:
		default:
			continue
		}
		// struct unix_diag_msg: family, type, state, pad, ino, cookie[2]
		if len(m.Data) < 16 || binary.NativeEndian.Uint32(m.Data[4:]) != ino {
			continue
		}
		d := &unixDiag{state: m.Data[2]}
		attrs := m.Data[16:]
		for len(attrs) >= 4 {
			l := int(binary.NativeEndian.Uint16(attrs))
			t := binary.NativeEndian.Uint16(attrs[2:])
			if l < 4 || l > len(attrs) {
				break
			}
			v := attrs[4:l]
			switch {
			case t == unixDiagPeer && len(v) >= 4:
				d.peerIno = binary.NativeEndian.Uint32(v)
			case t == unixDiagShut && len(v) >= 1:
				d.shutdown = v[0]
			}
			attrs = attrs[min(len(attrs), (l+3)&^3):]
		}
		return d, nil
	}
	return nil, os.NewSyscallError("sock_diag", unix.ENOENT)
}

// netlinkIn opens a sock_diag socket in the network namespace nsfd.
func netlinkIn(nsfd int) (int, error) {
	open := func() (int, error) {
		s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			return -1, os.NewSyscallError("socket NETLINK_SOCK_DIAG", err)
		}
		return s, nil
	}
	if nsfd < 0 {
		return open()
	}
	s := -1
	err := netns.Do(nsfd, func() error {
		var err error
		s, err = open()
		return err
	})
	return s, err
}

// sockName reads our bound name (peer false) or the peer's (peer true) as
// the kernel holds it: nil for none, a leading NUL for an abstract name.
func sockName(fd int, peer bool) ([]byte, error) {
	var sa unix.RawSockaddrUnix
	n := uint32(unsafe.Sizeof(sa))
	nr, name := uintptr(unix.SYS_GETSOCKNAME), "getsockname"
	if peer {
		nr, name = unix.SYS_GETPEERNAME, "getpeername"
	}
	_, _, e := unix.RawSyscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return nil, os.NewSyscallError(name, e)
	}
	if sa.Family != unix.AF_UNIX {
		return nil, errNotUnix
	}
	if n <= 2 {
		return nil, nil
	}
	l := int(n) - 2
	b := make([]byte, 0, l)
	for i := 0; i < l && i < len(sa.Path); i++ {
		b = append(b, byte(sa.Path[i]))
	}
	if len(b) > 0 && b[0] != 0 {
		// A path: the kernel may count its terminating NUL.
		for len(b) > 0 && b[len(b)-1] == 0 {
			b = b[:len(b)-1]
		}
	}
	return b, nil
}

var errNotUnix = errors.New("not a unix socket")

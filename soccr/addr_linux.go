package soccr

import (
	"encoding/binary"
	"net/netip"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSockaddr holds a struct sockaddr_in or sockaddr_in6.
type rawSockaddr [unix.SizeofSockaddrInet6]byte

// toAddrPort decodes a sockaddr_in or sockaddr_in6. An IPv4-mapped IPv6
// address stays in its 16-byte form.
func (r *rawSockaddr) toAddrPort() (netip.AddrPort, bool) {
	fam := binary.NativeEndian.Uint16(r[0:2])
	port := binary.BigEndian.Uint16(r[2:4])
	switch fam {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[4:8])), port), true
	case unix.AF_INET6:
		a := netip.AddrFrom16([16]byte(r[8:24]))
		if scope := binary.NativeEndian.Uint32(r[24:28]); scope != 0 && a.IsLinkLocalUnicast() {
			a = a.WithZone(strconv.FormatUint(uint64(scope), 10))
		}
		return netip.AddrPortFrom(a, port), true
	}
	return netip.AddrPort{}, false
}

// fromAddrPort encodes ap as a sockaddr of the family of its address and
// returns the length to pass to the kernel.
func (r *rawSockaddr) fromAddrPort(ap netip.AddrPort) uintptr {
	*r = rawSockaddr{}
	a := ap.Addr()
	binary.BigEndian.PutUint16(r[2:4], ap.Port())
	if a.Is4() {
		binary.NativeEndian.PutUint16(r[0:2], unix.AF_INET)
		b := a.As4()
		copy(r[4:8], b[:])
		return unix.SizeofSockaddrInet4
	}
	binary.NativeEndian.PutUint16(r[0:2], unix.AF_INET6)
	b := a.As16()
	copy(r[8:24], b[:])
	if z := a.Zone(); z != "" {
		// Zones come from toAddrPort and are interface indexes.
		if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			binary.NativeEndian.PutUint32(r[24:28], uint32(id))
		}
	}
	return unix.SizeofSockaddrInet6
}

// sockAddrCall wraps getsockname(2) (self) and getsockopt SO_PEERNAME
// (peer). SO_PEERNAME answers in SYN_SENT and CLOSE too, where
// getpeername(2) says ENOTCONN; it wants the exact length of the family's
// sockaddr, so the peer's family is taken from v6.
func sockAddrCall(fd int, self, v6 bool) (netip.AddrPort, error) {
	var r rawSockaddr
	n := uint32(len(r))
	if !v6 {
		n = unix.SizeofSockaddrInet4
	}
	if self {
		for {
			_, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&r[0])), uintptr(unsafe.Pointer(&n)))
			if e == unix.EINTR {
				continue
			}
			if e != 0 {
				return netip.AddrPort{}, os.NewSyscallError("getsockname", e)
			}
			break
		}
	} else if err := getsockopt(fd, unix.SOL_SOCKET, unix.SO_PEERNAME, unsafe.Pointer(&r[0]), &n, "SO_PEERNAME"); err != nil {
		return netip.AddrPort{}, err
	}
	ap, ok := r.toAddrPort()
	if !ok {
		return netip.AddrPort{}, os.NewSyscallError("getsockname", unix.EAFNOSUPPORT)
	}
	return ap, nil
}

// bindOrConnect wraps bind(2) and connect(2).
func bindOrConnect(fd int, ap netip.AddrPort, connect bool) error {
	var r rawSockaddr
	n := r.fromAddrPort(ap)
	nr, name := uintptr(unix.SYS_BIND), "bind"
	if connect {
		nr, name = unix.SYS_CONNECT, "connect"
	}
	for {
		_, _, e := unix.Syscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&r[0])), n)
		if e == unix.EINTR && !connect {
			continue
		}
		if e != 0 {
			return os.NewSyscallError(name, e)
		}
		return nil
	}
}

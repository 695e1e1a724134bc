package soccr

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	tcpFlagFIN = 0x01
	tcpFlagACK = 0x10
)

// segment is a TCP segment without payload or options that the peer could
// have sent.
type segment struct {
	from, to netip.AddrPort
	seq, ack uint32
	flags    uint8
	window   uint32 // unscaled; clamped to 16 bits
}

// inject sends seg from a raw IP socket, marked with Mark so that a network
// lock lets it through. It reaches the one socket of its 4-tuple.
func inject(seg *segment) error {
	pkt, family := seg.packet()
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("raw socket for the peer's %s: %w", seg.name(), err)
	}
	defer unix.Close(fd)
	if err := setInt(fd, unix.SOL_SOCKET, unix.SO_MARK, Mark, "SO_MARK"); err != nil {
		return err
	}
	if family == unix.AF_INET6 {
		// IPPROTO_RAW implies the header is ours; say it for kernels that
		// do not imply it for IPv6.
		if err := setInt(fd, unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1, "IPV6_HDRINCL"); err != nil {
			return err
		}
	}
	var sa rawSockaddr
	to := seg.to
	if to.Addr().Is4In6() {
		to = netip.AddrPortFrom(to.Addr().Unmap(), 0)
	}
	n := sa.fromAddrPort(netip.AddrPortFrom(to.Addr(), 0))
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
			0, uintptr(unsafe.Pointer(&sa[0])), n)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("sending the peer's %s: sendto: %w", seg.name(), e)
		}
		return nil
	}
}

func (seg *segment) name() string {
	if seg.flags&tcpFlagFIN != 0 {
		return "FIN"
	}
	return "ACK"
}

// packet builds the IP packet of seg: IPv4 for IPv4 and IPv4-mapped
// addresses, IPv6 otherwise.
func (seg *segment) packet() ([]byte, int) {
	src, dst := seg.from.Addr().Unmap(), seg.to.Addr().Unmap()
	var tcp [20]byte
	binary.BigEndian.PutUint16(tcp[0:], seg.from.Port())
	binary.BigEndian.PutUint16(tcp[2:], seg.to.Port())
	binary.BigEndian.PutUint32(tcp[4:], seg.seq)
	binary.BigEndian.PutUint32(tcp[8:], seg.ack)
	tcp[12] = 5 << 4 // data offset: 5 words, no options
	tcp[13] = seg.flags
	binary.BigEndian.PutUint16(tcp[14:], uint16(min(seg.window, 0xffff)))

	if src.Is4() {
		pkt := make([]byte, 20+len(tcp))
		ip := pkt[:20]
		ip[0] = 0x45 // version 4, 5 words
		binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
		ip[8] = 64
		ip[9] = unix.IPPROTO_TCP
		s4, d4 := src.As4(), dst.As4()
		copy(ip[12:16], s4[:])
		copy(ip[16:20], d4[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip, 0)))
		binary.BigEndian.PutUint16(tcp[16:], tcpChecksum(s4[:], d4[:], tcp[:]))
		copy(pkt[20:], tcp[:])
		return pkt, unix.AF_INET
	}
	pkt := make([]byte, 40+len(tcp))
	ip := pkt[:40]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
	ip[6] = unix.IPPROTO_TCP
	ip[7] = 64
	s16, d16 := src.As16(), dst.As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], d16[:])
	binary.BigEndian.PutUint16(tcp[16:], tcpChecksum(s16[:], d16[:], tcp[:]))
	copy(pkt[40:], tcp[:])
	return pkt, unix.AF_INET6
}

// tcpChecksum is the Internet checksum of a TCP segment and its pseudo
// header (RFC 793, RFC 8200 section 8.1).
func tcpChecksum(src, dst, tcp []byte) uint16 {
	s := sum(src, 0)
	s = sum(dst, s)
	s += uint32(unix.IPPROTO_TCP) + uint32(len(tcp))
	s = sum(tcp, s)
	c := ^fold(s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

func sum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

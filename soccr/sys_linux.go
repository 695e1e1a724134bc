package soccr

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Constants of the kernel's TCP repair interface (include/uapi/linux/tcp.h).
const (
	afInet  = unix.AF_INET
	afInet6 = unix.AF_INET6

	tcpRepairOff     = 0
	tcpRepairOn      = 1
	tcpRepairOffNoWP = -1 // leave repair mode without sending a window probe

	tcpNoQueue   = 0
	tcpRecvQueue = 1
	tcpSendQueue = 2

	tcpoptMSS       = 2
	tcpoptWindow    = 3
	tcpoptSACKPerm  = 4
	tcpoptTimestamp = 8

	sizeofRepairWindow = 20 // struct tcp_repair_window: five u32

	// SOCCR_MARK: packets with this mark pass a network lock.
	Mark = 0xC114
)

// The calls below are the only way this package enters the kernel for a
// socket option or ioctl: each names the option it handles, retries EINTR,
// and wraps errno in an *os.SyscallError. None of these calls can block, so
// they use RawSyscall and cost no scheduler round trip.

// getsockopt wraps getsockopt(2). n is the buffer's length in, the
// kernel's length out.
func getsockopt(fd, level, opt int, p unsafe.Pointer, n *uint32, name string) error {
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
			uintptr(p), uintptr(unsafe.Pointer(n)), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return os.NewSyscallError("getsockopt "+name, e)
		}
		return nil
	}
}

// setsockopt wraps setsockopt(2).
func setsockopt(fd, level, opt int, p unsafe.Pointer, n uintptr, name string) error {
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
			uintptr(p), n, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return os.NewSyscallError("setsockopt "+name, e)
		}
		return nil
	}
}

func getInt(fd, level, opt int, name string) (int32, error) {
	var v int32
	n := uint32(4)
	err := getsockopt(fd, level, opt, unsafe.Pointer(&v), &n, name)
	return v, err
}

func setInt(fd, level, opt int, v int32, name string) error {
	return setsockopt(fd, level, opt, unsafe.Pointer(&v), 4, name)
}

// ioctlInt wraps ioctl(2) for the queue-size requests.
func ioctlInt(fd int, req uint, name string) (int32, error) {
	var v int32
	for {
		_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&v)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, os.NewSyscallError("ioctl "+name, e)
		}
		return v, nil
	}
}

// peek reads the queue under repair into b without taking it (recvmsg(2)
// with MSG_PEEK|MSG_DONTWAIT), and one byte more into a spare byte of its
// own: it returns len(b)+1 when the queue holds more than b.
func peek(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var spare byte
	iov := [2]unix.Iovec{{Base: &b[0]}, {Base: &spare}}
	iov[0].SetLen(len(b))
	iov[1].SetLen(1)
	msg := unix.Msghdr{Iov: &iov[0]}
	msg.SetIovlen(len(iov))
	for {
		r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, os.NewSyscallError("recvmsg MSG_PEEK", e)
		}
		return int(r), nil
	}
}

func sendNB(fd int, b []byte, flags int) (int, error) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			uintptr(unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL|flags), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, os.NewSyscallError("send", e)
		}
		return int(r), nil
	}
}

// tcpInfo is the head of struct tcp_info, up to tcpi_notsent_bytes.
// tcpiOptUsecTS is TCPI_OPT_USEC_TS: the connection's timestamps count
// microseconds (Linux 6.7, a route's tcp_usec_ts feature).
const tcpiOptUsecTS = 64

type tcpInfo struct {
	State       uint8
	CAState     uint8
	Retransmits uint8
	Probes      uint8
	Backoff     uint8
	Options     uint8
	Wscale      uint8 // snd_wscale:4, rcv_wscale:4
	Flags       uint8 // delivery_rate_app_limited:1, fastopen_client_fail:2

	RTO, ATO, SndMSS, RcvMSS uint32

	Unacked, Sacked, Lost, Retrans, Fackets uint32

	LastDataSent, LastAckSent, LastDataRecv, LastAckRecv uint32

	PMTU, RcvSsthresh, RTT, RTTVar, SndSsthresh, SndCwnd, AdvMSS, Reordering uint32

	RcvRTT, RcvSpace uint32

	TotalRetrans uint32

	PacingRate, MaxPacingRate uint64
	BytesAcked, BytesReceived uint64
	SegsOut, SegsIn           uint32

	NotsentBytes uint32
}

// sizeofTCPInfoNotsent is how much of tcp_info a kernel must return for
// NotsentBytes to be valid (Linux 4.6 and later).
const sizeofTCPInfoNotsent = uint32(unsafe.Offsetof(tcpInfo{}.NotsentBytes) + 4)

func getTCPInfo(fd int, ti *tcpInfo) (uint32, error) {
	n := uint32(unsafe.Sizeof(*ti))
	err := getsockopt(fd, unix.SOL_TCP, unix.TCP_INFO, unsafe.Pointer(ti), &n, "TCP_INFO")
	return n, err
}

package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -Wall -Werror -O2
#include <stdlib.h>
#include "soccr_abi.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime/cgo"
	"strconv"
	"unsafe"

	"github.com/gosoccr/gosoccr/soccr"
)

// This file is the Go half of the libsoccr API: the C functions of
// soccr_abi.c check their arguments, own the handle and its buffers, and
// call these for the work on the connection.

// logf sends one line to the libsoccr_set_log callback, if any.
func logf(level C.uint, format string, args ...any) {
	if C.gosoccr_log_enabled(level) == 0 {
		return
	}
	// One line, ended with a newline as libsoccr's and CRIU's are.
	msg := C.CString("gosoccr: " + fmt.Sprintf(format, args...) + "\n")
	C.gosoccr_log_str(level, msg)
	C.free(unsafe.Pointer(msg))
}

func logErr(err error) { logf(C.SOCCR_LOG_ERR, "%v", err) }

// recoverTo turns a panic into an error line and the error value *ret, so
// that no panic crosses into C.
func recoverTo(fn string, fd C.int, ret *C.int, val C.int) {
	if r := recover(); r != nil {
		logf(C.SOCCR_LOG_ERR, "%s fd %d: internal error: %v", fn, int(fd), r)
		*ret = val
	}
}

func connOf(sk *C.struct_libsoccr_sk) *soccr.Conn {
	if sk.conn == 0 {
		return nil
	}
	c, _ := cgo.Handle(sk.conn).Value().(*soccr.Conn)
	return c
}

// gosoccrPause pauses sk.fd and stores the connection in sk.conn. The C
// libsoccr_pause calls it only when its own TCP_REPAIR failed: it tries
// again, and tells why in the log. Returns 0, or -1 (logged).
//
//export gosoccrPause
func gosoccrPause(sk *C.struct_libsoccr_sk) (ret C.int) {
	defer recoverTo("libsoccr_pause", sk.fd, &ret, -1)
	c, err := soccr.Pause(int(sk.fd))
	if err != nil {
		logErr(err)
		return -1
	}
	sk.conn = C.uintptr_t(cgo.NewHandle(c))
	return 0
}

// gosoccrDone ends the connection handle: Resume (resume != 0) or Release.
//
//export gosoccrDone
func gosoccrDone(sk *C.struct_libsoccr_sk, resume C.int) {
	var ret C.int
	defer recoverTo("libsoccr_resume", sk.fd, &ret, -1)
	c := connOf(sk)
	if c == nil {
		return
	}
	cgo.Handle(sk.conn).Delete()
	sk.conn = 0
	if resume == 0 {
		c.Release()
		return
	}
	if err := c.Resume(); err != nil {
		logErr(err)
	}
}

// gosoccrSave fills data (already zeroed) and the queue pointers of sk,
// whose buffers are malloc()-ed here and owned by sk. Returns
// libsoccr_save's codes.
//
//export gosoccrSave
func gosoccrSave(sk *C.struct_libsoccr_sk, data *C.struct_libsoccr_sk_data) (ret C.int) {
	defer recoverTo("libsoccr_save", sk.fd, &ret, -2)
	c := connOf(sk)
	if c == nil {
		c = soccr.Adopt(int(sk.fd)) // libsoccr_pause set TCP_REPAIR
	}
	// The queues go straight from the kernel into C memory.
	var bufs [2]unsafe.Pointer
	nbufs := 0
	alloc := func(n int) []byte {
		if nbufs == len(bufs) {
			return nil
		}
		p := C.malloc(C.size_t(n))
		if p == nil {
			return nil // the engine reports ENOMEM
		}
		bufs[nbufs] = p
		nbufs++
		return unsafe.Slice((*byte)(p), n)
	}
	st, err := c.SaveWith(soccr.SaveOptions{Alloc: alloc, NoAddrs: true, NoSockopts: true})
	if err != nil {
		for _, p := range bufs[:nbufs] {
			C.free(p)
		}
		logErr(err)
		return saveCode(err)
	}
	sk.recv_queue, sk.send_queue = (*C.char)(bufPtr(st.RecvQueue)), (*C.char)(bufPtr(st.SendQueue))
	sk.own |= C.GOSOCCR_OWN_RQ | C.GOSOCCR_OWN_SQ

	fillData(data, st)
	return C.int(C.sizeof_struct_libsoccr_sk_data)
}

func bufPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// saveCode maps a failed save to libsoccr's stage codes: -2 state and
// queue sizes, -3 stream options, -4 window, -5/-6 receive/send queue,
// from the step the engine's *OpError names.
func saveCode(err error) C.int {
	var oe *soccr.OpError
	if !errors.As(err, &oe) {
		return -2
	}
	switch oe.Step {
	case soccr.StepOptions:
		return -3
	case soccr.StepWindow:
		return -4
	case soccr.StepRecvQueue:
		return -5
	case soccr.StepSendQueue:
		return -6
	}
	return -2
}

// gosoccrRestore restores data, the queues and addresses of sk into the
// paused socket. Returns 0, -1 for bad input, -2 for a failed restore.
//
//export gosoccrRestore
func gosoccrRestore(sk *C.struct_libsoccr_sk, data *C.struct_libsoccr_sk_data) (ret C.int) {
	defer recoverTo("libsoccr_restore", sk.fd, &ret, -2)
	fd := int(sk.fd)
	st, err := stateOf(sk, data)
	if err != nil {
		logf(C.SOCCR_LOG_ERR, "libsoccr_restore fd %d: %v", fd, err)
		return -1
	}
	c := connOf(sk)
	if c == nil {
		// libsoccr_pause set TCP_REPAIR. A handle keeps what Resume
		// needs, when there are bytes to push at once; otherwise
		// libsoccr_resume leaves repair mode in C, without entering Go.
		c = soccr.Adopt(fd)
		if err := c.Restore(st); err != nil {
			logErr(err)
			return -2
		}
		if !c.PlainResume() {
			sk.conn = C.uintptr_t(cgo.NewHandle(c))
		}
		return 0
	}
	if err := c.Restore(st); err != nil {
		logErr(err)
		return -2
	}
	return 0
}

// stateOf builds the engine's State over the C memory of sk (no copy).
func stateOf(sk *C.struct_libsoccr_sk, d *C.struct_libsoccr_sk_data) (*soccr.State, error) {
	if d.state > 0xff || d.snd_wscale > 0xff || d.rcv_wscale > 0xff || d.opt_mask > 0xff {
		return nil, fmt.Errorf("data out of range (state %d, opt_mask %#x, wscale %d/%d)",
			d.state, d.opt_mask, d.snd_wscale, d.rcv_wscale)
	}
	st := &soccr.State{
		State:     soccr.TCPState(d.state),
		RecvSeq:   uint32(d.inq_seq),
		SendSeq:   uint32(d.outq_seq),
		Unsent:    uint32(d.unsq_len),
		MSSClamp:  uint32(d.mss_clamp),
		Options:   soccr.Options(d.opt_mask),
		SndWscale: uint8(d.snd_wscale),
		RcvWscale: uint8(d.rcv_wscale),
		Timestamp: uint32(d.timestamp),
	}
	var err error
	if st.RecvQueue, err = queueOf(sk.recv_queue, d.inq_len, "receive"); err != nil {
		return nil, err
	}
	if st.SendQueue, err = queueOf(sk.send_queue, d.outq_len, "send"); err != nil {
		return nil, err
	}
	if d.flags&C.SOCCR_FLAGS_WINDOW != 0 {
		st.Window = &soccr.Window{
			SndWl1:    uint32(d.snd_wl1),
			SndWnd:    uint32(d.snd_wnd),
			MaxWindow: uint32(d.max_window),
			RcvWnd:    uint32(d.rcv_wnd),
			RcvWup:    uint32(d.rcv_wup),
		}
	}
	if st.Local, err = addrOf(sk.src_addr, "own"); err != nil {
		return nil, err
	}
	if st.Remote, err = addrOf(sk.dst_addr, "peer"); err != nil {
		return nil, err
	}
	return st, nil
}

func queueOf(p *C.char, n C.uint32_t, name string) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if p == nil {
		return nil, fmt.Errorf("no %s queue given for %d bytes (libsoccr_set_queue_bytes)", name, n)
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), nil
}

// addrOf decodes a union libsoccr_addr. An IPv4-mapped IPv6 address keeps
// its 16-byte form, so that the socket stays AF_INET6.
func addrOf(a *C.union_libsoccr_addr, name string) (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, fmt.Errorf("no %s address given (libsoccr_set_addr)", name)
	}
	p := unsafe.Pointer(a)
	head := unsafe.Slice((*byte)(p), C.sizeof_struct_sockaddr_in)
	port := binary.BigEndian.Uint16(head[2:4])
	switch fam := *(*C.sa_family_t)(p); fam {
	case C.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(head[4:8])), port), nil
	case C.AF_INET6:
		b := unsafe.Slice((*byte)(p), C.sizeof_struct_sockaddr_in6)
		ip := netip.AddrFrom16([16]byte(b[8:24]))
		if scope := binary.NativeEndian.Uint32(b[24:28]); scope != 0 && ip.IsLinkLocalUnicast() {
			ip = ip.WithZone(strconv.FormatUint(uint64(scope), 10))
		}
		return netip.AddrPortFrom(ip, port), nil
	default:
		return netip.AddrPort{}, fmt.Errorf("%s address of family %d, want AF_INET or AF_INET6", name, fam)
	}
}

// gosoccrRepause makes sk's connection handle refer to the socket now at
// sk.fd (after the older API's staged restore replaced it): the new socket
// is paused and the old handle released. Returns 0 or -1 (logged).
//
//export gosoccrRepause
func gosoccrRepause(sk *C.struct_libsoccr_sk) (ret C.int) {
	defer recoverTo("libsoccr_set_sk_data", sk.fd, &ret, -1)
	c, err := soccr.Pause(int(sk.fd))
	if err != nil {
		logErr(err)
		return -1
	}
	if old := connOf(sk); old != nil {
		old.Release()
		cgo.Handle(sk.conn).Delete()
	}
	sk.conn = C.uintptr_t(cgo.NewHandle(c))
	return 0
}

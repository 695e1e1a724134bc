package main

/*
#include <stdlib.h>
#include "gosoccr.h"
#include "soccr_abi.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/soccr"
)

// This file holds gosoccr_checkpoint_all and gosoccr_restore_all
// (include/gosoccr.h): many TCP connections at once, over
// soccr.CheckpointAll and soccr.RestoreAll, in libsoccr's data layout.

// connsOf views the caller's array; nil for a NULL array or n == 0.
func connsOf(p *C.struct_gosoccr_tcp_conn, n C.size_t) []C.struct_gosoccr_tcp_conn {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice(p, int(n))
}

// bulkErrno is the result code of one connection: -EOPNOTSUPP for a state
// that cannot be checkpointed, -EINVAL for inconsistent data, -EAGAIN for a
// queue that changed (no network lock), else -errno of the cause.
func bulkErrno(err error) C.int {
	var e syscall.Errno
	switch {
	case errors.Is(err, soccr.ErrUnsupportedState):
		return -C.int(syscall.EOPNOTSUPP)
	case errors.Is(err, soccr.ErrBadState):
		return -C.int(syscall.EINVAL)
	case errors.Is(err, soccr.ErrQueueChanged):
		return -C.int(syscall.EAGAIN)
	case errors.As(err, &e):
		return -C.int(e)
	case errors.Is(err, soccr.ErrNotTCP):
		return -C.int(syscall.ENOTSOCK)
	case errors.Is(err, soccr.ErrNoRepair):
		return -C.int(syscall.EPERM)
	}
	return -C.int(syscall.EIO)
}

// gosoccrCheckpointAll is gosoccr_checkpoint_all: it checkpoints
// conns[i].fd for every i, filling data, the addresses and the queues
// (malloc()-ed here, free()-d by the caller). Returns how many failed, or
// -EINVAL for a NULL array.
//
//export gosoccrCheckpointAll
func gosoccrCheckpointAll(p *C.struct_gosoccr_tcp_conn, n C.size_t) (ret C.int) {
	defer recoverErrno("checkpoint all", &ret)
	conns := connsOf(p, n)
	if conns == nil && n > 0 {
		criuLog(logError, "gosoccr_checkpoint_all: NULL array for %d connections", uint64(n))
		return -C.int(syscall.EINVAL)
	}
	fds := make([]int, len(conns))
	for i := range conns {
		fds[i] = int(conns[i].fd)
		conns[i].data = C.struct_libsoccr_sk_data{}
		conns[i].recv_queue, conns[i].send_queue = nil, nil
		conns[i].src = C.union_libsoccr_addr{}
		conns[i].dst = C.union_libsoccr_addr{}
	}
	// Queue bytes go straight from the kernel into C memory. A failed save
	// may leave a buffer behind: whatever no result holds is freed.
	var mu sync.Mutex
	bufs := make(map[unsafe.Pointer]bool)
	alloc := func(n int) []byte {
		q := C.malloc(C.size_t(n))
		if q == nil {
			return nil // the engine reports ENOMEM
		}
		mu.Lock()
		bufs[q] = true
		mu.Unlock()
		return unsafe.Slice((*byte)(q), n)
	}
	res := soccr.CheckpointAll(fds, soccr.SaveOptions{Alloc: alloc, NoSockopts: true})
	failed := 0
	for i, r := range res {
		c := &conns[i]
		if r.Err != nil {
			criuLog(logError, "%v", r.Err)
			c.result = bulkErrno(r.Err)
			failed++
			continue
		}
		st := r.State
		fillData(&c.data, st)
		c.recv_queue = (*C.char)(bufPtr(st.RecvQueue))
		c.send_queue = (*C.char)(bufPtr(st.SendQueue))
		delete(bufs, unsafe.Pointer(c.recv_queue))
		delete(bufs, unsafe.Pointer(c.send_queue))
		putAddr(&c.src, st.Local)
		putAddr(&c.dst, st.Remote)
		c.result = 0
	}
	for q := range bufs {
		C.free(q)
	}
	return C.int(failed)
}

// fillData writes st into d as libsoccr_save does.
func fillData(d *C.struct_libsoccr_sk_data, st *soccr.State) {
	d.state = C.uint32_t(st.State)
	d.inq_len = C.uint32_t(len(st.RecvQueue))
	d.inq_seq = C.uint32_t(st.RecvSeq)
	d.outq_len = C.uint32_t(len(st.SendQueue))
	d.outq_seq = C.uint32_t(st.SendSeq)
	d.unsq_len = C.uint32_t(st.Unsent)
	d.opt_mask = C.uint32_t(st.Options)
	d.mss_clamp = C.uint32_t(st.MSSClamp)
	d.snd_wscale = C.uint32_t(st.SndWscale)
	d.rcv_wscale = C.uint32_t(st.RcvWscale)
	d.timestamp = C.uint32_t(st.Timestamp)
	if w := st.Window; w != nil {
		d.flags |= C.SOCCR_FLAGS_WINDOW
		d.snd_wl1 = C.uint32_t(w.SndWl1)
		d.snd_wnd = C.uint32_t(w.SndWnd)
		d.max_window = C.uint32_t(w.MaxWindow)
		d.rcv_wnd = C.uint32_t(w.RcvWnd)
		d.rcv_wup = C.uint32_t(w.RcvWup)
	}
}

// gosoccrRestoreAll is gosoccr_restore_all (unlock 0) and
// gosoccr_restore_unlock_all: it restores every conns[i] into a new
// socket, resumed, and sets fd and result; with unlock, the restored
// connections are lifted from the network lock (one transaction) between
// their restore and their resume. Returns how many failed, or -EINVAL for
// a NULL array.
//
//export gosoccrRestoreAll
func gosoccrRestoreAll(p *C.struct_gosoccr_tcp_conn, n C.size_t, unlock C.int) (ret C.int) {
	what := "gosoccr_restore_all"
	if unlock != 0 {
		what = "gosoccr_restore_unlock_all"
	}
	defer recoverErrno(what, &ret)
	conns := connsOf(p, n)
	if conns == nil && n > 0 {
		criuLog(logError, "%s: NULL array for %d connections", what, uint64(n))
		return -C.int(syscall.EINVAL)
	}
	states := make([]*soccr.State, len(conns))
	bad := make([]error, len(conns))
	for i := range conns {
		c := &conns[i]
		c.fd, c.result = -1, 0
		// stateOf reads the queues and addresses from a handle: lend it
		// this connection's, in Go memory for the length of the call.
		var sk C.struct_libsoccr_sk
		sk.fd = -1
		sk.recv_queue, sk.send_queue = c.recv_queue, c.send_queue
		sk.src_addr, sk.dst_addr = &c.src, &c.dst
		states[i], bad[i] = stateOf(&sk, &c.data)
	}
	res := soccr.RestorePausedAll(states)
	handles := make([]*soccr.Conn, len(res))
	var tuples []hooks.Tuple
	for i, r := range res {
		if r.Err == nil && bad[i] == nil {
			handles[i] = r.Conn
			tuples = append(tuples, hooks.TupleOf(states[i]))
		}
	}
	if unlock != 0 && len(tuples) > 0 {
		if err := hooks.Unlock(tuples...); err != nil {
			// Resumed under the lock, they would send into it: close
			// them (in repair mode, silently), and the lock stays.
			criuLog(logError, "%s: %v", what, err)
			for i, h := range handles {
				if h != nil {
					syscall.Close(h.FD())
					handles[i] = nil
					res[i] = soccr.Result{FD: -1, Err: err}
				}
			}
		}
	}
	for i, err := range soccr.ResumeAll(handles) {
		if handles[i] != nil && err != nil {
			syscall.Close(handles[i].FD()) // still in repair mode: nothing reaches the peer
			res[i] = soccr.Result{FD: -1, Err: err}
		}
	}
	failed := 0
	for i, r := range res {
		c := &conns[i]
		switch {
		case bad[i] != nil:
			criuLog(logError, "%s: connection %d: %v", what, i, bad[i])
			c.result = -C.int(syscall.EINVAL)
		case r.Err != nil:
			criuLog(logError, "%s: connection %d: %v", what, i, r.Err)
			c.result = bulkErrno(r.Err)
		default:
			c.fd = C.int(r.FD)
			continue
		}
		failed++
	}
	return C.int(failed)
}

// putAddr writes ap into a (zeroed) as a sockaddr_in, or a sockaddr_in6
// for IPv6 and IPv4-mapped addresses, the reverse of addrOf.
func putAddr(a *C.union_libsoccr_addr, ap netip.AddrPort) {
	p := unsafe.Pointer(a)
	ip := ap.Addr()
	if ip.Is4() {
		b := unsafe.Slice((*byte)(p), C.sizeof_struct_sockaddr_in)
		*(*C.sa_family_t)(p) = C.AF_INET
		binary.BigEndian.PutUint16(b[2:4], ap.Port())
		v4 := ip.As4()
		copy(b[4:8], v4[:])
		return
	}
	b := unsafe.Slice((*byte)(p), C.sizeof_struct_sockaddr_in6)
	*(*C.sa_family_t)(p) = C.AF_INET6
	binary.BigEndian.PutUint16(b[2:4], ap.Port())
	v6 := ip.As16()
	copy(b[8:24], v6[:])
	if z := ip.Zone(); z != "" {
		if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			binary.NativeEndian.PutUint32(b[24:28], uint32(id))
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			binary.NativeEndian.PutUint32(b[24:28], uint32(ifi.Index))
		}
	}
}

package main

/*
#include <stdlib.h>
#include "gosoccr.h"
#include "soccr_abi.h"
#include "bulk_entry.h"
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

// gosoccrCheckpointAll is gosoccr_checkpoint_all (closeDone 0) and
// gosoccr_checkpoint_close_all: it checkpoints conns[i].fd for every i,
// filling data, the addresses and the queues (carved by a qarena, given
// back with gosoccr_free_queues); with closeDone, each socket checkpointed
// is closed and its fd set to -1. Returns how many failed, or -EINVAL for a NULL array.
//
//export gosoccrCheckpointAll
func gosoccrCheckpointAll(p *C.struct_gosoccr_tcp_conn, n C.size_t, closeDone C.int) (ret C.int) {
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
	// Queue bytes go straight from the kernel into C memory, carved from
	// blocks shared by the connections of this call.
	qa := &qarena{}
	defer qa.close()
	o := soccr.SaveOptions{Alloc: qa.alloc, NoSockopts: true}
	var res []soccr.Result
	if closeDone != 0 {
		res = soccr.CheckpointCloseAll(fds, o)
	} else {
		res = soccr.CheckpointAll(fds, o)
	}
	failed := 0
	for i, r := range res {
		c := &conns[i]
		if r.Err != nil {
			criuLog(logError, "%v", r.Err)
			c.result = bulkErrno(r.Err)
			failed++
			continue
		}
		c.fd = C.int(r.FD) // -1 once closed
		st := r.State
		fillData(&c.data, st)
		c.recv_queue = (*C.char)(qa.hold(st.RecvQueue))
		c.send_queue = (*C.char)(qa.hold(st.SendQueue))
		putAddr(&c.src, st.Local)
		putAddr(&c.dst, st.Remote)
		c.result = 0
	}
	return C.int(failed)
}

// qarena carves the queues of one gosoccr_checkpoint_all call out of
// blocks of bulk_entry.c (struct qblock): one mapping of qblockSize bytes
// for many connections instead of a malloc() per queue, whose arenas grow
// by mprotect() calls that serialize the threads of the call. A queue
// larger than a quarter of a block gets a block of its own.
type qarena struct {
	mu     sync.Mutex
	cur    unsafe.Pointer // the block being carved, nil at first
	off    uintptr        // the next free byte of cur
	blocks []unsafe.Pointer
}

const (
	qblockSize   = 4 << 20
	qblockPrefix = C.QBLOCK_PREFIX
	qblockHead   = (C.sizeof_struct_qblock + qblockPrefix - 1) &^ (qblockPrefix - 1)
)

// alloc returns n bytes of C memory for a queue (nil when out of memory:
// the engine then reports ENOMEM). Safe for concurrent use.
func (a *qarena) alloc(n int) []byte {
	need := qblockPrefix + (uintptr(n)+qblockPrefix-1)&^(qblockPrefix-1)
	a.mu.Lock()
	defer a.mu.Unlock()
	blk, off := a.cur, a.off
	if need > qblockSize/4 {
		blk, off = a.newBlock(qblockHead + need)
	} else if blk == nil || off+need > qblockSize {
		blk, off = a.newBlock(qblockSize)
		a.cur = blk
	}
	if blk == nil {
		return nil
	}
	*(*unsafe.Pointer)(unsafe.Add(blk, off)) = blk
	q := unsafe.Add(blk, off+qblockPrefix)
	if blk == a.cur {
		a.off = off + need
	}
	return unsafe.Slice((*byte)(q), n)
}

// newBlock maps a block of size bytes and returns it with the offset of its
// first queue slot; nil when the mapping fails.
func (a *qarena) newBlock(size uintptr) (unsafe.Pointer, uintptr) {
	blk := C.gosoccr_qblock_new(C.size_t(size))
	if blk == nil {
		return nil, 0
	}
	a.blocks = append(a.blocks, blk)
	return blk, qblockHead
}

// hold counts q, a queue handed to the caller, in its block's refs, and
// returns its address (nil for an empty queue).
func (a *qarena) hold(q []byte) unsafe.Pointer {
	if len(q) == 0 {
		return nil
	}
	p := unsafe.Pointer(unsafe.SliceData(q))
	blk := (*C.struct_qblock)(*(*unsafe.Pointer)(unsafe.Add(p, -qblockPrefix)))
	(*(*int64)(unsafe.Pointer(&blk.refs)))++ // before the caller sees any queue
	return p
}

// close unmaps the blocks no queue was handed out of (every save that used
// them failed).
func (a *qarena) close() {
	for _, blk := range a.blocks {
		if (*C.struct_qblock)(blk).refs == 0 {
			C.gosoccr_qblock_unmap(blk)
		}
	}
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
	var res []soccr.Result
	if unlock == 0 {
		res = soccr.RestoreAll(states) // each resumed right after its restore
	} else {
		res = restoreUnlockAll(states, what)
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

// restoreUnlockAll restores states paused, lifts the network lock of those
// restored in one transaction, and resumes them. If the unlock fails, the
// restored sockets are closed (in repair mode, silently) and get its error.
func restoreUnlockAll(states []*soccr.State, what string) []soccr.Result {
	res := soccr.RestorePausedAll(states)
	handles := make([]*soccr.Conn, len(res))
	var tuples []hooks.Tuple
	for i, r := range res {
		if r.Err == nil {
			handles[i] = r.Conn
			tuples = append(tuples, hooks.TupleOf(states[i]))
		}
	}
	if len(tuples) > 0 {
		if err := hooks.Unlock(tuples...); err != nil {
			// Resumed under the lock, they would send into it: close
			// them, and the lock stays.
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
	return res
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

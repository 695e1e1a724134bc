package main

/*
#include "gosoccr.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime/cgo"
	"syscall"
	"unsafe"

	"github.com/gosoccr/gosoccr/hooks"
)

// The network lock for tools: gosoccr_lock, gosoccr_unlock and
// gosoccr_lock_cleanup (include/gosoccr.h) over hooks.Lock, hooks.Unlock
// and hooks.RemoveLock, and gosoccr_locker_* over a hooks.Locker, which C
// holds as a cgo.Handle. lock_entry.c gives them their C names.

// addrPortOfC reads a union libsoccr_addr of family AF_INET or AF_INET6.
func addrPortOfC(a *C.union_libsoccr_addr) (netip.AddrPort, error) {
	b := (*[unsafe.Sizeof(*a)]byte)(unsafe.Pointer(a))
	switch fam := *(*uint16)(unsafe.Pointer(a)); fam {
	case syscall.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), uint16(b[2])<<8|uint16(b[3])), nil
	case syscall.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), uint16(b[2])<<8|uint16(b[3])), nil
	default:
		return netip.AddrPort{}, fmt.Errorf("address family %d: %w", fam, syscall.EINVAL)
	}
}

func tuplesOfC(t *C.struct_gosoccr_tuple, n C.uint) ([]hooks.Tuple, error) {
	if n == 0 {
		return nil, nil
	}
	if t == nil {
		return nil, fmt.Errorf("NULL array of %d connections: %w", n, syscall.EINVAL)
	}
	cs := unsafe.Slice(t, int(n))
	ts := make([]hooks.Tuple, len(cs))
	for i := range cs {
		l, err := addrPortOfC(&cs[i].local)
		if err != nil {
			return nil, fmt.Errorf("connection %d: local %w", i, err)
		}
		r, err := addrPortOfC(&cs[i].remote)
		if err != nil {
			return nil, fmt.Errorf("connection %d: remote %w", i, err)
		}
		ts[i] = hooks.Tuple{Local: l, Remote: r}
	}
	return ts, nil
}

func lockErrno(err error) C.int {
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		return -C.int(e)
	}
	return -C.int(syscall.EIO)
}

func lockEntry(what string, t *C.struct_gosoccr_tuple, n C.uint, op func(...hooks.Tuple) error) C.int {
	ts, err := tuplesOfC(t, n)
	if err == nil {
		err = op(ts...)
	}
	if err != nil {
		criuLog(logError, "%s: %v", what, err)
		return lockErrno(err)
	}
	return 0
}

// gosoccrLock is gosoccr_lock(t, n). Returns 0 or -errno with a log line.
//
//export gosoccrLock
func gosoccrLock(t *C.struct_gosoccr_tuple, n C.uint) (ret C.int) {
	defer recoverErrno("lock", &ret)
	return lockEntry("lock", t, n, hooks.Lock)
}

// gosoccrUnlock is gosoccr_unlock(t, n). Returns 0 or -errno with a log
// line.
//
//export gosoccrUnlock
func gosoccrUnlock(t *C.struct_gosoccr_tuple, n C.uint) (ret C.int) {
	defer recoverErrno("unlock", &ret)
	return lockEntry("unlock", t, n, hooks.Unlock)
}

// gosoccrLockCleanup is gosoccr_lock_cleanup(). Returns 0 or -errno with
// a log line.
//
//export gosoccrLockCleanup
func gosoccrLockCleanup() (ret C.int) {
	defer recoverErrno("lock cleanup", &ret)
	if err := hooks.RemoveLock(); err != nil {
		criuLog(logError, "%v", err)
		return lockErrno(err)
	}
	return 0
}

// gosoccrLockerOpen makes a hooks.Locker in the calling thread's network
// namespace and sets *h to its handle. Returns 0 or -errno with a log line.
//
//export gosoccrLockerOpen
func gosoccrLockerOpen(h *C.uintptr_t) (ret C.int) {
	defer recoverErrno("locker open", &ret)
	l, err := hooks.NewLocker()
	if err != nil {
		criuLog(logError, "%v", err)
		return lockErrno(err)
	}
	*h = C.uintptr_t(cgo.NewHandle(l))
	return 0
}

// gosoccrLockerOp is gosoccr_locker_lock (lock != 0) or
// gosoccr_locker_unlock over the Locker of handle h.
//
//export gosoccrLockerOp
func gosoccrLockerOp(h C.uintptr_t, lock C.int, t *C.struct_gosoccr_tuple, n C.uint) (ret C.int) {
	what, op := "unlock", (*hooks.Locker).Unlock
	if lock != 0 {
		what, op = "lock", (*hooks.Locker).Lock
	}
	defer recoverErrno(what, &ret)
	l := cgo.Handle(h).Value().(*hooks.Locker)
	return lockEntry(what, t, n, func(ts ...hooks.Tuple) error { return op(l, ts...) })
}

// gosoccrLockerClose closes the Locker of handle h and frees the handle.
//
//export gosoccrLockerClose
func gosoccrLockerClose(h C.uintptr_t) (ret C.int) {
	defer recoverErrno("locker close", &ret)
	hd := cgo.Handle(h)
	l := hd.Value().(*hooks.Locker)
	hd.Delete()
	if err := l.Close(); err != nil {
		criuLog(logError, "locker close: %v", err)
		return lockErrno(err)
	}
	return 0
}

package main

/*
#include <stdint.h>
#include "criu_entry.h"
*/
import "C"

import (
	"errors"
	"syscall"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/image"
)

// Interop with CRIU's own dumps: one TCP connection out of a directory
// written by `criu dump --tcp-established`, restored in the calling
// process. criu_interop.c gives it its C name,
// gosoccr_restore_tcp_from_criu (include/gosoccr.h).

// gosoccrRestoreTCPFromCRIU restores the TCP connection of the socket ino
// from the CRIU images directory dirfd (which the caller keeps) into a new
// connected socket. Returns the socket's descriptor, which belongs to the
// caller, or -errno with a log line: -ENOENT when the images hold no such
// TCP connection, -EBADMSG for a damaged image, another -errno from the
// kernel for a failed restore; -EFAULT after an internal error.
//
//export gosoccrRestoreTCPFromCRIU
func gosoccrRestoreTCPFromCRIU(dirfd C.int, ino C.uint32_t) (ret C.int) {
	defer recoverErrno("restore tcp from criu", &ret)
	if dirfd < 0 {
		criuLog(logError, "restore tcp socket %d from criu images: bad directory descriptor %d", uint32(ino), int(dirfd))
		return -C.int(syscall.EBADF)
	}
	fd, err := hooks.RestoreFromCRIU(int(dirfd), uint32(ino))
	if err != nil {
		criuLog(logError, "restore tcp socket %d from criu images: %v", uint32(ino), err)
		return interopErrno(err)
	}
	criuLog(logDebug, "restored tcp socket %d from criu images as fd %d", uint32(ino), fd)
	return C.int(fd)
}

func interopErrno(err error) C.int {
	var e syscall.Errno
	switch {
	case errors.Is(err, hooks.ErrBadImage), errors.Is(err, image.ErrCorrupt):
		return -C.int(syscall.EBADMSG)
	case errors.As(err, &e) && e != 0:
		return -C.int(e)
	}
	return -C.int(syscall.EIO)
}

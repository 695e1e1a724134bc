package main

/*
#include "criu_entry.h"
*/
import "C"

import (
	"errors"
	"os"
	"syscall"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/image"
)

// This file holds the socket entry points for tools that load
// libgosoccr.so the way CRIU loads a plugin: gosoccr_dump_sk and
// gosoccr_restore_sk (include/gosoccr.h) over hooks.DumpSocket and
// hooks.RestoreSocket. They dispatch on the socket's family: external unix
// sockets as the plugin's DUMP_UNIX_SK does, TCP connections over IPv4
// and IPv6 through soccr.

// skErrno maps an error of hooks.DumpSocket or RestoreSocket to -errno:
// damaged images are -EBADMSG, a missing one -ENOENT, then as errno().
func skErrno(err error) C.int {
	switch {
	case errors.Is(err, hooks.ErrNotMine):
		return -C.int(syscall.ENOTSUP)
	case errors.Is(err, hooks.ErrBadImage), errors.Is(err, image.ErrCorrupt):
		return -C.int(syscall.EBADMSG)
	case errors.Is(err, os.ErrNotExist):
		return -C.int(syscall.ENOENT)
	}
	return errno(err)
}

// currentPolicy returns the policy of the current stage, or the one named by
// GOSOCCR_POLICY now.
func currentPolicy() (*hooks.Policy, error) {
	plugin.Lock()
	pol := plugin.policy
	plugin.Unlock()
	if pol != nil {
		return pol, nil
	}
	return loadPolicy()
}

// gosoccrDumpSk is gosoccr_dump_sk(fd, id): it records the socket fd (a
// unix socket with an outside peer, or a TCP connection) as images named
// by id. A TCP socket is left in repair mode. Returns 0, -ENOTSUP (not
// ours), or -errno (the log says why; a TCP socket goes on unharmed).
//
//export gosoccrDumpSk
func gosoccrDumpSk(fd, id C.int) (ret C.int) {
	defer recoverErrno("dump socket", &ret)
	dirfd := int(C.gosoccr_images_dir())
	if dirfd < 0 {
		criuLog(logError, "dump socket %d: no images directory (not in criu, and gosoccr_set_images_dir was not called)", uint32(id))
		return -C.int(syscall.EBADF)
	}
	pol, err := currentPolicy()
	if err != nil {
		criuLog(logError, "%v", err)
		return -C.int(syscall.EINVAL)
	}
	s, err := hooks.DumpSocket(dirfd, int(fd), uint32(id), pol)
	switch {
	case errors.Is(err, hooks.ErrNotMine):
		criuLog(logDebug, "socket %d (fd %d): not ours", uint32(id), int(fd))
		return -C.int(syscall.ENOTSUP)
	case err != nil:
		criuLog(logError, "%v", err)
		return skErrno(err)
	}
	if s.Unix != nil && s.Unix.Dropped > 0 {
		criuLog(logWarn, "%s: %d unread bytes dropped (allow-data-loss), kept in %s", s, s.Unix.Dropped, hooks.QueueImageName(s.ID))
	}
	criuLog(logInfo, "dumped %s", s)
	return 0
}

// gosoccrRestoreSk is gosoccr_restore_sk(id): it restores the socket id
// from its images into a new descriptor. Returns the descriptor (the
// caller's), -ENOTSUP when no image of ours names id, or -errno.
//
//export gosoccrRestoreSk
func gosoccrRestoreSk(id C.int) (ret C.int) {
	defer recoverErrno("restore socket", &ret)
	dirfd := int(C.gosoccr_images_dir())
	if dirfd < 0 {
		criuLog(logError, "restore socket %d: no images directory (not in criu, and gosoccr_set_images_dir was not called)", uint32(id))
		return -C.int(syscall.EBADF)
	}
	pol, err := currentPolicy()
	if err != nil {
		criuLog(logError, "%v", err)
		return -C.int(syscall.EINVAL)
	}
	fd, err := hooks.RestoreSocket(dirfd, uint32(id), pol)
	switch {
	case errors.Is(err, hooks.ErrNotMine):
		criuLog(logDebug, "socket %d: no image of ours", uint32(id))
		return -C.int(syscall.ENOTSUP)
	case err != nil:
		criuLog(logError, "restore socket %d: %v", uint32(id), err)
		return skErrno(err)
	}
	criuLog(logInfo, "socket %d restored as fd %d", uint32(id), fd)
	return C.int(fd)
}

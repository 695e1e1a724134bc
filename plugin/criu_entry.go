package main

/*
#include <stdlib.h>
#include "criu_entry.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"github.com/gosoccr/gosoccr/hooks"
)

// This file holds the plugin entry points: CRIU's hooks as the small C
// plugin (plugin/criu) forwards them at dump, and as custom tools call
// them. Each converts its arguments, calls hooks/, maps the error to
// -errno, logs a line to CRIU's log, and never lets a panic through.

// CRIU's log levels.
const (
	logError = 1
	logWarn  = 2
	logInfo  = 3
	logDebug = 4
)

func criuLog(level int, format string, args ...any) {
	msg := C.CString(fmt.Sprintf(format, args...))
	C.gosoccr_criu_log(C.uint(level), msg)
	C.free(unsafe.Pointer(msg))
}

var plugin struct {
	sync.Mutex
	policy *hooks.Policy
	stage  int
}

// recoverErrno turns a panic into a log line and -EFAULT.
func recoverErrno(what string, ret *C.int) {
	if r := recover(); r != nil {
		criuLog(logError, "%s: internal error: %v", what, r)
		*ret = -C.int(syscall.EFAULT)
	}
}

func errno(err error) C.int {
	var e syscall.Errno
	switch {
	case errors.Is(err, hooks.ErrNotMine):
		return -C.int(syscall.ENOTSUP)
	case errors.Is(err, hooks.ErrRefused):
		return -C.int(syscall.EINVAL)
	case errors.As(err, &e):
		return -C.int(e)
	}
	return -C.int(syscall.EIO)
}

// loadPolicy reads the policy named by GOSOCCR_POLICY in the C
// environment: a library loaded into a running process sees variables set
// after the process started there, and not in os.Getenv.
func loadPolicy() (*hooks.Policy, error) {
	name := C.CString(hooks.PolicyEnv)
	defer C.free(unsafe.Pointer(name))
	var path string
	if v := C.getenv(name); v != nil {
		path = C.GoString(v)
	}
	return hooks.LoadPolicyFile(path)
}

// gosoccrPluginInit is criu_plugin__init(stage): it loads the policy.
// Returns 0, or -errno with a log line.
//
//export gosoccrPluginInit
func gosoccrPluginInit(stage C.int) (ret C.int) {
	defer recoverErrno("init", &ret)
	pol, err := loadPolicy()
	if err != nil {
		criuLog(logError, "%v", err)
		return -C.int(syscall.EINVAL)
	}
	plugin.Lock()
	plugin.policy, plugin.stage = pol, int(stage)
	plugin.Unlock()
	criuLog(logInfo, "Go library loaded for stage %d", int(stage))
	return 0
}

// gosoccrPluginFini is criu_plugin__fini(stage, ret).
//
//export gosoccrPluginFini
func gosoccrPluginFini(stage, result C.int) {
	var ret C.int
	defer recoverErrno("fini", &ret)
	plugin.Lock()
	plugin.policy = nil
	plugin.Unlock()
	criuLog(logDebug, "stage %d done (%d)", int(stage), int(result))
}

// gosoccrDumpUnixSk is DUMP_UNIX_SK(fd, id): it records the external unix
// socket fd as images named by id. Returns 0, -ENOTSUP (not ours), or
// -errno (the dump fails; the log says why).
//
//export gosoccrDumpUnixSk
func gosoccrDumpUnixSk(fd, id C.int) (ret C.int) {
	defer recoverErrno("dump unix socket", &ret)
	criuLog(logDebug, "dump unix socket %d: start", uint32(id))
	dirfd := int(C.gosoccr_images_dir())
	if dirfd < 0 {
		criuLog(logError, "dump unix socket %d: no images directory (not in criu, and gosoccr_set_images_dir was not called)", uint32(id))
		return -C.int(syscall.EBADF)
	}
	plugin.Lock()
	pol := plugin.policy
	plugin.Unlock()
	if pol == nil {
		var err error
		if pol, err = loadPolicy(); err != nil {
			criuLog(logError, "%v", err)
			return -C.int(syscall.EINVAL)
		}
	}
	u, err := hooks.DumpUnix(dirfd, int(fd), uint32(id), pol)
	switch {
	case errors.Is(err, hooks.ErrNotMine):
		criuLog(logDebug, "unix socket %d: not ours", uint32(id))
		return -C.int(syscall.ENOTSUP)
	case err != nil:
		criuLog(logError, "%v", err)
		return errno(err)
	}
	if u.Dropped > 0 {
		criuLog(logWarn, "%s: %d unread bytes dropped (allow-data-loss), kept in %s", u, u.Dropped, hooks.QueueImageName(u.ID))
	}
	criuLog(logInfo, "dumped %s", u)
	return 0
}

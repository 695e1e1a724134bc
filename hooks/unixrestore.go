package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"unsafe"

	sk_unix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/gosoccr/gosoccr/internal/image"
	"golang.org/x/sys/unix"
)

// Restore of an external unix socket in Go, for tools that restore outside
// CRIU. It does what the C plugin does inside `criu restore`
// (plugin/criu/unixsk.c), step by step: read and check the image, rename
// the peer by the policy, create a socket of the dumped type, set its
// options, bind our name and connect to the peer's with the owner's uid and
// gid, then shutdown and file status flags.

const (
	maxUnixEntries = 64 // a unixsk image of ours holds two
	unixPathMax    = 108
	connectTimeout = 10 // seconds: a server that never accepts must not hang the restore
)

// DecodeUnixSk decodes a unixsk image: every UnixSkEntry in it, at most
// 64. Damage anywhere in the file is an error (image.ErrCorrupt).
func DecodeUnixSk(img *image.Image) ([]*sk_unix.UnixSkEntry, error) {
	if img.Magic != image.MagicUnixSk {
		return nil, fmt.Errorf("image %s: %w: magic %#x is not UNIXSK", img.Name, image.ErrCorrupt, img.Magic)
	}
	var es []*sk_unix.UnixSkEntry
	for {
		e := &sk_unix.UnixSkEntry{}
		err := img.Next(e)
		if errors.Is(err, io.EOF) {
			return es, nil
		}
		if err != nil {
			return nil, err
		}
		if len(es) == maxUnixEntries {
			return nil, fmt.Errorf("image %s: %w: more than %d entries", img.Name, image.ErrCorrupt, maxUnixEntries)
		}
		es = append(es, e)
	}
}

// ReadUnixImage reads gosoccr-unixsk-<id>.img from dirfd and returns the
// entry of socket id and the entry of its peer, which follows it.
func ReadUnixImage(dirfd int, id uint32) (ours, peer *sk_unix.UnixSkEntry, err error) {
	img, err := image.Open(dirfd, UnixImageName(id))
	if err != nil {
		return nil, nil, err
	}
	es, err := DecodeUnixSk(img)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range es {
		switch {
		case ours == nil && e.GetId() == id:
			ours = e
		case ours != nil && peer == nil && e.GetId() == ours.GetPeer():
			peer = e
		}
	}
	if ours == nil || peer == nil {
		what := "no entry for this socket"
		if ours != nil {
			what = "no entry for its peer"
		}
		return nil, nil, fmt.Errorf("image %s: %w: %s", img.Name, ErrBadImage, what)
	}
	return ours, peer, nil
}

// cleanName makes a name from an image usable: a path loses the NULs that
// may follow it and must hold no NUL; an abstract name is kept as is.
func cleanName(b []byte) ([]byte, error) {
	if len(b) > unixPathMax {
		return nil, fmt.Errorf("%w: a name of %d bytes, longer than sun_path", ErrBadImage, len(b))
	}
	if len(b) > 0 && b[0] != 0 {
		b = bytes.TrimRight(b, "\x00")
		if bytes.IndexByte(b, 0) >= 0 {
			return nil, fmt.Errorf("%w: a path name with a NUL inside", ErrBadImage)
		}
	}
	return b, nil
}

// policyName turns a name as the policy writes it (@ for abstract) into
// the kernel's form.
func policyName(s string) []byte {
	if len(s) > 0 && s[0] == '@' {
		return append([]byte{0}, s[1:]...)
	}
	return []byte(s)
}

// checkUnixEntry refuses, before anything is created, what no socket can
// be.
func checkUnixEntry(e *sk_unix.UnixSkEntry, peer []byte) error {
	o := e.GetOpts()
	switch t := e.GetType(); {
	case t != unix.SOCK_STREAM && t != unix.SOCK_DGRAM && t != unix.SOCK_SEQPACKET:
		return fmt.Errorf("%w: socket type %d, not stream, dgram or seqpacket", ErrBadImage, t)
	case len(peer) == 0:
		return fmt.Errorf("%w: the peer has no name, it cannot be reached again", ErrBadImage)
	case e.GetShutdown() > 3:
		return fmt.Errorf("%w: shutdown state %d", ErrBadImage, e.GetShutdown())
	case o.GetSoSndTmoUsec() >= 1e6 || o.GetSoRcvTmoUsec() >= 1e6 || o.GetSoSndTmoSec() > 1<<31-1 || o.GetSoRcvTmoSec() > 1<<31-1:
		return fmt.Errorf("%w: a timeout out of range", ErrBadImage)
	case o.GetSoSndbuf() > 1<<31-1 || o.GetSoRcvbuf() > 1<<31-1:
		return fmt.Errorf("%w: a buffer size out of range", ErrBadImage)
	case e.GetFilePerms() == nil:
		return fmt.Errorf("%w: no owner (file_perms)", ErrBadImage)
	}
	return nil
}

// RestoreUnix restores the external unix socket id from its image in dirfd
// and returns the new socket's descriptor (close-on-exec), which belongs to
// the caller: a socket of the dumped type, bound to our old name where we
// had one (a socket file left at that path is removed first; anything else
// there is an error), connected to the peer's name as renamed by pol (nil:
// no renames) with the uid and gid of the socket's owner, then shut down
// and made non-blocking as it was. On failure nothing is left behind.
//
// The unread bytes that DumpUnix may have dropped under allow-data-loss
// are not put back: a new connection starts empty.
func RestoreUnix(dirfd int, id uint32, pol *Policy) (int, error) {
	if pol == nil {
		pol = &Policy{}
	}
	ours, peerEntry, err := ReadUnixImage(dirfd, id)
	if err != nil {
		return -1, fmt.Errorf("unix socket %d: %w", id, err)
	}
	u := &UnixSocket{ID: id, Type: int(ours.GetType()), Shutdown: uint32(ours.GetShutdown()),
		UID: ours.GetFilePerms().GetUid(), GID: ours.GetFilePerms().GetGid(), PeerIno: ours.GetPeer()}
	fail := func(step string, err error) (int, error) {
		return -1, fmt.Errorf("%s: %s: %w", u, step, err)
	}
	if u.Name, err = cleanName(ours.GetName()); err != nil {
		return fail("image", err)
	}
	if u.Peer, err = cleanName(peerEntry.GetName()); err != nil {
		return fail("image", err)
	}
	if err := checkUnixEntry(ours, u.Peer); err != nil {
		return fail("image", err)
	}
	if to := policyName(pol.Renamed(DisplayName(u.Peer))); !bytes.Equal(to, u.Peer) {
		if len(to) > unixPathMax || len(to) == 0 {
			return fail("policy", fmt.Errorf("rename to %q: not a socket name", DisplayName(to)))
		}
		u.Peer = to
	}

	fd, err := unix.Socket(unix.AF_UNIX, u.Type|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	o := ours.GetOpts()
	for _, b := range []struct {
		opt  int
		v    uint32
		name string
	}{{unix.SO_SNDBUF, o.GetSoSndbuf(), "SO_SNDBUF"}, {unix.SO_RCVBUF, o.GetSoRcvbuf(), "SO_RCVBUF"}} {
		// The kernel doubles a size on the way in and reports it doubled.
		if b.v != 0 {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, b.opt, int(b.v/2)); err != nil {
				return fail(b.name, err)
			}
		}
	}
	rcvTmo := unix.Timeval{Sec: int64(o.GetSoRcvTmoSec()), Usec: int64(o.GetSoRcvTmoUsec())}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &rcvTmo); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	if o.SoPasscred != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, boolInt(o.GetSoPasscred())); err != nil {
			return fail("SO_PASSCRED", err)
		}
	}
	if step, err := asOwner(u.UID, u.GID, func() (string, error) { return bindAndConnect(fd, u) }); err != nil {
		return fail(step, err)
	}
	sndTmo := unix.Timeval{Sec: int64(o.GetSoSndTmoSec()), Usec: int64(o.GetSoSndTmoUsec())}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &sndTmo); err != nil {
		return fail("SO_SNDTIMEO", err)
	}
	if how := [...]int{-1, unix.SHUT_RD, unix.SHUT_WR, unix.SHUT_RDWR}[u.Shutdown]; how >= 0 {
		if err := unix.Shutdown(fd, how); err != nil {
			return fail("shutdown", err)
		}
	}
	if ours.GetFlags()&unix.O_NONBLOCK != 0 {
		if err := unix.SetNonblock(fd, true); err != nil {
			return fail("O_NONBLOCK", err)
		}
	}
	ok = true
	return fd, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bindAndConnect binds our own name, removing a stale socket file first,
// and connects to the peer. It returns the step that failed.
func bindAndConnect(fd int, u *UnixSocket) (string, error) {
	if len(u.Name) > 0 {
		if u.Name[0] != 0 {
			var st unix.Stat_t
			if err := unix.Lstat(string(u.Name), &st); err == nil {
				if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
					return "bind", fmt.Errorf("%s exists and is not a socket: %w", u.Name, unix.EADDRINUSE)
				}
				if err := unix.Unlink(string(u.Name)); err != nil && !errors.Is(err, unix.ENOENT) {
					return "bind: remove the stale socket file", err
				}
			}
		}
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: nameArg(u.Name)}); err != nil {
			return "bind", err
		}
	}
	// A full backlog makes connect wait, as long as SO_SNDTIMEO says.
	tmo := unix.Timeval{Sec: connectTimeout}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tmo); err != nil {
		return "connect: SO_SNDTIMEO", err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: nameArg(u.Peer)}); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return "connect: the server does not accept", err
		}
		return "connect", err
	}
	return "", nil
}

// nameArg is a kernel name as x/sys/unix's SockaddrUnix takes it: an
// abstract name with a leading @.
func nameArg(b []byte) string {
	if len(b) > 0 && b[0] == 0 {
		return "@" + string(b[1:])
	}
	return string(b)
}

// asOwner runs fn on a thread of its own whose ids are uid and gid (and
// no supplementary group but gid), so that bind and connect get the
// socket owner's rights, not the restorer's. The thread's ids are switched
// with raw system calls, which change that thread only; if they cannot be
// switched back, the thread is never unlocked and dies with its goroutine.
func asOwner(uid, gid uint32, fn func() (string, error)) (string, error) {
	type result struct {
		step string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		r := result{}
		back := true
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.step, r.err = "owner", fmt.Errorf("panic: %v", p)
				}
			}()
			var ids threadIDs
			if err := ids.switchTo(uid, gid); err != nil {
				r.step, r.err = fmt.Sprintf("owner: switch to uid %d gid %d", uid, gid), err
			} else {
				r.step, r.err = fn()
			}
			if err := ids.restore(); err != nil {
				back = false
				r.step, r.err = "ids: cannot switch back to the restorer's ids", err
			}
		}()
		if back {
			runtime.UnlockOSThread()
		}
		ch <- r
	}()
	r := <-ch
	return r.step, r.err
}

// threadIDs are the ids of the calling thread, saved to be put back.
type threadIDs struct {
	ruid, euid, suid, rgid, egid, sgid uintptr
	groups                             []uint32
	switched                           bool
}

// sysErr runs a raw system call of the calling thread only (glibc's and
// Go's own wrappers change every thread of the process).
func sysErr(r, _ uintptr, e unix.Errno) (uintptr, error) {
	if e != 0 {
		return r, e
	}
	return r, nil
}

func (s *threadIDs) switchTo(uid, gid uint32) error {
	var u, g [3]uint32
	if _, err := sysErr(unix.RawSyscall(unix.SYS_GETRESUID, uintptr(unsafe.Pointer(&u[0])), uintptr(unsafe.Pointer(&u[1])), uintptr(unsafe.Pointer(&u[2])))); err != nil {
		return err
	}
	if _, err := sysErr(unix.RawSyscall(unix.SYS_GETRESGID, uintptr(unsafe.Pointer(&g[0])), uintptr(unsafe.Pointer(&g[1])), uintptr(unsafe.Pointer(&g[2])))); err != nil {
		return err
	}
	s.ruid, s.euid, s.suid = uintptr(u[0]), uintptr(u[1]), uintptr(u[2])
	s.rgid, s.egid, s.sgid = uintptr(g[0]), uintptr(g[1]), uintptr(g[2])
	if u[1] == uid && g[1] == gid {
		return nil // fsuid and fsgid follow the effective ids
	}
	n, err := sysErr(unix.RawSyscall(unix.SYS_GETGROUPS, 0, 0, 0))
	if err != nil {
		return err
	}
	s.groups = make([]uint32, n+1)
	if n > 0 {
		if n, err = sysErr(unix.RawSyscall(unix.SYS_GETGROUPS, n, uintptr(unsafe.Pointer(&s.groups[0])), 0)); err != nil {
			return err
		}
	}
	s.groups = s.groups[:n]
	s.switched = true
	// Groups first: once the uid is not root any more, they cannot change.
	if _, err := sysErr(unix.RawSyscall(unix.SYS_SETGROUPS, 1, uintptr(unsafe.Pointer(&gid)), 0)); err != nil {
		return err
	}
	if _, err := sysErr(unix.RawSyscall(unix.SYS_SETRESGID, ^uintptr(0), uintptr(gid), ^uintptr(0))); err != nil {
		return err
	}
	_, err = sysErr(unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)))
	return err
}

func (s *threadIDs) restore() error {
	if !s.switched {
		return nil
	}
	if _, err := sysErr(unix.RawSyscall(unix.SYS_SETRESUID, s.ruid, s.euid, s.suid)); err != nil {
		return err
	}
	if _, err := sysErr(unix.RawSyscall(unix.SYS_SETRESGID, s.rgid, s.egid, s.sgid)); err != nil {
		return err
	}
	groups := append(s.groups, 0) // never empty, for the pointer
	_, err := sysErr(unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(s.groups)), uintptr(unsafe.Pointer(&groups[0])), 0))
	return err
}

package hooks

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fown"
	sk_opts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	sk_packet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	sk_unix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/gosoccr/gosoccr/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Errors of the hooks. A hook returns -ENOTSUP for ErrNotMine, so that CRIU
// or another plugin handles the socket, and fails the dump for ErrRefused.
var (
	ErrNotMine = errors.New("not a socket for gosoccr")
	ErrRefused = errors.New("refused")
)

// Image names.
const (
	unixImagePrefix  = "gosoccr-unixsk-"
	queueImagePrefix = "gosoccr-skqueues-"
)

// UnixImageName is the name of the image that holds the external unix
// socket id.
func UnixImageName(id uint32) string {
	return unixImagePrefix + strconv.FormatUint(uint64(id), 10) + ".img"
}

// QueueImageName is the name of the image that holds the bytes dropped
// from socket id's receive queue.
func QueueImageName(id uint32) string {
	return queueImagePrefix + strconv.FormatUint(uint64(id), 10) + ".img"
}

// The uflags of CRIU's unix socket entries.
const (
	uskExtern   = 0x1 // USK_EXTERN: the peer is outside the dump
	uskCallback = 0x4 // USK_CALLBACK: a plugin handles the socket
)

// UnixSocket is an external unix socket as DumpUnix recorded it.
type UnixSocket struct {
	ID       uint32
	Type     int    // SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET
	Name     []byte // our bound name: nil for none, a leading NUL for abstract
	Peer     []byte // the peer's name
	PeerIno  uint32
	Shutdown uint32 // SkShutdown: 1 read, 2 write, 3 both
	UID, GID uint32 // the socket's owner
	Dropped  int    // unread bytes dropped under the policy
}

// DisplayName renders a unix socket name for people and for policy
// patterns: a path as is, an abstract name with a leading @, none as "".
func DisplayName(name []byte) string {
	if len(name) > 0 && name[0] == 0 {
		return "@" + string(name[1:])
	}
	return string(name)
}

func (u *UnixSocket) String() string {
	return fmt.Sprintf("unix socket %d (%s %q -> %q)", u.ID, typeName(u.Type), DisplayName(u.Name), DisplayName(u.Peer))
}

func typeName(t int) string {
	switch t {
	case unix.SOCK_STREAM:
		return "stream"
	case unix.SOCK_DGRAM:
		return "dgram"
	case unix.SOCK_SEQPACKET:
		return "seqpacket"
	}
	return "type " + strconv.Itoa(t)
}

// DumpUnix records the external unix socket fd, whose id (its inode, as
// CRIU gives it) names its images in the directory dirfd. It returns
// ErrNotMine for a socket that is not a connected unix socket or whose peer
// the policy does not take, and ErrRefused for one that cannot be restored
// faithfully: a nameless peer, or unread data the policy does not let go.
func DumpUnix(dirfd, fd int, id uint32, pol *Policy) (*UnixSocket, error) {
	if pol == nil {
		pol = &Policy{}
	}
	u := &UnixSocket{ID: id}
	fail := func(step string, err error) (*UnixSocket, error) {
		return u, fmt.Errorf("%s: %s: %w", u, step, err)
	}
	name, err := sockName(fd, false)
	if err != nil {
		if errors.Is(err, errNotUnix) || errors.Is(err, unix.ENOTSOCK) {
			return nil, ErrNotMine
		}
		return fail("getsockname", err)
	}
	u.Name = name
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fail("SO_TYPE", err)
	}
	u.Type = typ
	peer, err := sockName(fd, true)
	if errors.Is(err, unix.ENOTCONN) {
		return nil, ErrNotMine // no peer: not an external connection
	}
	if err != nil {
		return fail("getpeername", err)
	}
	u.Peer = peer
	if len(peer) == 0 {
		return fail("peer", fmt.Errorf("%w: the peer has no name (a socketpair, or a client that never bound), so nothing could connect to it again", ErrRefused))
	}
	if !pol.Handles(DisplayName(peer)) {
		return nil, ErrNotMine
	}

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail("fstat", err)
	}
	u.UID, u.GID = st.Uid, st.Gid
	state := uint32(1) // TCP_ESTABLISHED: connected
	u.PeerIno = ^uint32(0)
	if d, err := diagUnix(fd, uint32(st.Ino)); err == nil {
		state, u.PeerIno, u.Shutdown = uint32(d.state), d.peerIno, uint32(d.shutdown&3)
	} else {
		return fail("sock_diag", err)
	}

	unread, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return fail("SIOCINQ", err)
	}
	if unread > 0 {
		if !pol.AllowDataLoss {
			return fail("receive queue", fmt.Errorf("%w: %d unread bytes in its receive queue would be lost (a new connection starts empty); set allow-data-loss in the policy ($%s) to drop them", ErrRefused, unread, PolicyEnv))
		}
		n, err := saveQueue(dirfd, fd, u)
		if err != nil {
			return fail("receive queue", err)
		}
		u.Dropped = n
	}

	opts, err := unixOpts(fd)
	if err != nil {
		return fail("socket options", err)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fail("fcntl", err)
	}
	shut := sk_opts.SkShutdown(u.Shutdown)
	ours := &sk_unix.UnixSkEntry{
		Id: proto.Uint32(id), Ino: proto.Uint32(id),
		Type: proto.Uint32(uint32(typ)), State: proto.Uint32(state),
		Flags: proto.Uint32(uint32(flags)), Uflags: proto.Uint32(uskExtern | uskCallback),
		Backlog: proto.Uint32(0), Peer: proto.Uint32(u.PeerIno),
		Fown: zeroFown(), Opts: opts, Name: nonNil(u.Name), Shutdown: &shut,
		FilePerms: &sk_unix.FilePermsEntry{Mode: proto.Uint32(st.Mode), Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid)},
	}
	theirs := &sk_unix.UnixSkEntry{
		Id: proto.Uint32(u.PeerIno), Ino: proto.Uint32(u.PeerIno),
		Type: proto.Uint32(uint32(typ)), State: proto.Uint32(state),
		Flags: proto.Uint32(0), Uflags: proto.Uint32(uskExtern),
		Backlog: proto.Uint32(0), Peer: proto.Uint32(id),
		Fown: zeroFown(), Opts: zeroOpts(), Name: u.Peer,
	}
	w := image.NewWriter(UnixImageName(id), image.MagicUnixSk)
	if err := w.Entry(ours); err != nil {
		return fail("image", err)
	}
	if err := w.Entry(theirs); err != nil {
		return fail("image", err)
	}
	if err := w.Commit(dirfd); err != nil {
		return fail("image", err)
	}
	return u, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func zeroFown() *fown.FownEntry {
	z := proto.Uint32(0)
	return &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z}
}

func zeroOpts() *sk_opts.SkOptsEntry {
	return &sk_opts.SkOptsEntry{SoSndbuf: proto.Uint32(0), SoRcvbuf: proto.Uint32(0),
		SoSndTmoSec: proto.Uint64(0), SoSndTmoUsec: proto.Uint64(0), SoRcvTmoSec: proto.Uint64(0), SoRcvTmoUsec: proto.Uint64(0)}
}

// unixOpts reads the socket options a restored socket gets back. Buffer
// sizes are as getsockopt reports them (twice what setsockopt was given).
func unixOpts(fd int) (*sk_opts.SkOptsEntry, error) {
	o := zeroOpts()
	for _, x := range []struct {
		opt int
		dst *uint32
	}{{unix.SO_SNDBUF, o.SoSndbuf}, {unix.SO_RCVBUF, o.SoRcvbuf}} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, x.opt)
		if err != nil {
			return nil, err
		}
		*x.dst = uint32(v)
	}
	for _, x := range []struct {
		opt       int
		sec, usec *uint64
	}{{unix.SO_SNDTIMEO, o.SoSndTmoSec, o.SoSndTmoUsec}, {unix.SO_RCVTIMEO, o.SoRcvTmoSec, o.SoRcvTmoUsec}} {
		tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, x.opt)
		if err != nil {
			return nil, err
		}
		*x.sec, *x.usec = uint64(tv.Sec), uint64(tv.Usec)
	}
	for _, x := range []struct {
		opt int
		dst **bool
	}{{unix.SO_PASSCRED, &o.SoPasscred}, {unix.SO_PASSSEC, &o.SoPasssec}} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, x.opt)
		if err != nil {
			return nil, err
		}
		*x.dst = proto.Bool(v != 0)
	}
	return o, nil
}

// saveQueue copies the unread bytes of fd, without taking them, into the
// sk-queues image: one entry per datagram, or one for a stream's bytes.
func saveQueue(dirfd, fd int, u *UnixSocket) (int, error) {
	var chunks [][]byte
	const max = image.MaxFile / 2
	total := 0
	if u.Type == unix.SOCK_STREAM {
		n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		if err != nil {
			return 0, err
		}
		b := make([]byte, min(n, max))
		got, _, err := unix.Recvfrom(fd, b, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err != nil {
			return 0, os.NewSyscallError("recvfrom MSG_PEEK", err)
		}
		chunks, total = append(chunks, b[:got]), got
	} else {
		// Datagrams are peeked one after another with a peek offset,
		// which is put back afterwards.
		orig, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF)
		if err != nil {
			return 0, err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, 0); err != nil {
			return 0, err
		}
		defer unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, orig)
		buf := make([]byte, 1<<16)
		for total < max {
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_TRUNC)
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if err != nil {
				return 0, os.NewSyscallError("recvfrom MSG_PEEK", err)
			}
			n = min(n, len(buf))
			chunks = append(chunks, append([]byte(nil), buf[:n]...))
			total += n
		}
	}
	w := image.NewWriter(QueueImageName(u.ID), image.MagicSkQueues)
	for _, c := range chunks {
		if err := w.Entry(&sk_packet.SkPacketEntry{IdFor: proto.Uint32(u.ID), Length: proto.Uint32(uint32(len(c)))}); err != nil {
			return 0, err
		}
		w.Raw(c)
	}
	return total, w.Commit(dirfd)
}

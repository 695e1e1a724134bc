package soccr

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a TCP socket in repair mode: a socket being checkpointed, or a
// new socket being restored. It does not own the descriptor. A Conn is not
// safe for concurrent use.
type Conn struct {
	fd     int
	state  TCPState
	local  netip.AddrPort
	remote netip.AddrPort
	done   bool
	resend resend // set by Restore: how Resume sends the restored bytes
}

// Pause puts the TCP socket fd in repair mode and returns its handle. From
// now on the socket neither sends nor acknowledges anything on its own
// (packets that reach it are still processed: the caller must keep them
// away, see the package documentation). Close a paused socket to drop it
// silently, or call Resume to let it go on.
//
// Errors: ErrNotTCP for a descriptor that is not a TCP socket,
// ErrUnsupportedState for a listening socket, ErrNoRepair without
// CAP_NET_ADMIN, and the errno (EBADF for a closed descriptor).
func Pause(fd int) (*Conn, error) {
	c := &Conn{fd: fd}
	if err := setInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, tcpRepairOn, "TCP_REPAIR"); err != nil {
		return nil, c.opErr("pause", StepRepair, c.classifyRepairErr(err))
	}
	return c, nil
}

// Adopt returns the handle of socket fd, which is already in repair mode:
// its caller set TCP_REPAIR itself (as the C API's libsoccr_pause does,
// without entering Go), or received it so from another process. It makes
// no system call; a socket that is not in repair mode makes the next step
// fail.
func Adopt(fd int) *Conn { return &Conn{fd: fd} }

// classifyRepairErr gives a refused TCP_REPAIR its sentinel.
func (c *Conn) classifyRepairErr(err error) error {
	switch {
	case errors.Is(err, unix.ENOPROTOOPT), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTSOCK):
		return withCause(ErrNotTCP, err)
	case errors.Is(err, unix.EPERM):
		var ti tcpInfo
		if _, e := getTCPInfo(c.fd, &ti); e == nil && TCPState(ti.State) == Listen {
			c.state = Listen
			return withCause(ErrUnsupportedState, err)
		}
		return withCause(ErrNoRepair, err)
	}
	return err
}

// FD returns the socket's descriptor.
func (c *Conn) FD() int { return c.fd }

func (c *Conn) opErr(op, step string, err error) error {
	return &OpError{Op: op, Step: step, FD: c.fd, State: c.state, Local: c.local, Remote: c.remote, Err: err}
}

// Resume takes the socket out of repair mode: the connection goes on from
// where it is, and the kernel sends a window probe so that the peer
// answers at once. On a socket that Restore filled with bytes sent but not
// acknowledged, Resume sends those bytes at once instead (see Restore).
// After Resume the Conn must not be used.
func (c *Conn) Resume() error {
	if c.done {
		return c.opErr("resume", StepRepair, ErrReleased)
	}
	c.done = true
	if c.resend.push || c.resend.kick {
		return c.resumePush()
	}
	if err := setInt(c.fd, unix.SOL_TCP, unix.TCP_REPAIR, tcpRepairOff, "TCP_REPAIR"); err != nil {
		return c.opErr("resume", StepRepair, err)
	}
	return nil
}

// PlainResume reports whether Resume would only take the socket out of
// repair mode (setsockopt TCP_REPAIR 0), with nothing of its own to push:
// a caller that knows it can do that itself and drop the Conn.
func (c *Conn) PlainResume() bool { return !c.resend.push && !c.resend.kick }

// Release forgets the socket and leaves it in repair mode, so that closing
// it sends nothing to the peer. After Release the Conn must not be used.
func (c *Conn) Release() { c.done = true }

// SaveOptions tune Conn.SaveWith.
type SaveOptions struct {
	// Alloc returns a buffer of n bytes for a queue's contents (n is the
	// queue's length). Nil means make([]byte, n). A C caller
	// passes memory of its own here, so that queue bytes are copied once,
	// from the kernel into the caller's buffer.
	Alloc func(n int) []byte
	// NoAddrs skips reading the local and remote addresses.
	NoAddrs bool
	// NoSockopts skips reading Sockopts (State.Sockopts stays nil).
	NoSockopts bool
}

// Save reads the whole state of the paused connection, queued bytes
// included. The socket is not changed: after a failed Save, Resume lets the
// connection go on.
func (c *Conn) Save() (*State, error) { return c.SaveWith(SaveOptions{}) }

// SaveWith is Save with options.
func (c *Conn) SaveWith(o SaveOptions) (*State, error) {
	st := &State{}
	if err := c.save(st, &o); err != nil {
		return nil, err
	}
	return st, nil
}

var repairWindowMissing atomic.Bool // probed once: kernel lacks TCP_REPAIR_WINDOW

func (c *Conn) save(st *State, o *SaveOptions) error {
	const op = "save"
	if c.done {
		return c.opErr(op, StepRepair, ErrReleased)
	}
	fd := c.fd
	var ti tcpInfo
	n, err := getTCPInfo(fd, &ti)
	if err != nil {
		return c.opErr(op, StepState, err)
	}
	st.State = TCPState(ti.State)
	c.state = st.State
	if !o.NoAddrs {
		if st.Local, err = sockAddrCall(fd, true, true); err != nil {
			return c.opErr(op, StepAddrs, err)
		}
		c.local = st.Local
		if st.Remote, err = sockAddrCall(fd, false, !st.Local.Addr().Is4()); err != nil {
			if errors.Is(err, unix.ENOTCONN) {
				err = withCause(ErrUnsupportedState, err)
			}
			return c.opErr(op, StepAddrs, err)
		}
		c.remote = st.Remote
	} else if st.State == Close {
		// Only the peer's address tells a closed connection from a
		// socket that was never connected.
		if _, err := sockAddrCall(fd, false, true); errors.Is(err, unix.ENOTCONN) {
			return c.opErr(op, StepState, withCause(ErrUnsupportedState, err))
		}
	}
	if !st.State.Supported() {
		return c.opErr(op, StepState, ErrUnsupportedState)
	}

	var inq, outq, unsq int32
	if st.State != SynSent {
		if inq, err = ioctlInt(fd, unix.SIOCINQ, "SIOCINQ"); err != nil {
			return c.opErr(op, StepState, err)
		}
		if st.State != Close {
			// A closed socket may still hold data that a reset left
			// behind; nobody will ever read it.
			if outq, err = ioctlInt(fd, unix.SIOCOUTQ, "SIOCOUTQ"); err != nil {
				return c.opErr(op, StepState, err)
			}
			if n >= sizeofTCPInfoNotsent {
				unsq = int32(ti.NotsentBytes)
			} else if unsq, err = ioctlInt(fd, unix.SIOCOUTQNSD, "SIOCOUTQNSD"); err != nil {
				return c.opErr(op, StepState, err)
			}
		}
	}
	if st.State.mask()&finSent != 0 {
		// The FIN takes a sequence number but is no byte of the queue.
		if outq > 0 {
			outq--
		}
		if unsq > 0 {
			unsq--
		}
	}
	if inq < 0 || outq < 0 || unsq < 0 || unsq > outq {
		return c.opErr(op, StepState, fmt.Errorf("%w: inq %d outq %d unsent %d", ErrQueueChanged, inq, outq, unsq))
	}
	st.Unsent = uint32(unsq)

	alloc := o.Alloc
	if alloc == nil && inq > 0 && outq > 0 {
		// One allocation for both queues.
		both := make([]byte, int(inq)+int(outq)+2)
		alloc = func(n int) []byte {
			b := both[:n:n]
			both = both[n:]
			return b
		}
	}
	if st.State != SynSent {
		if st.RecvSeq, st.RecvQueue, err = c.readQueue(tcpRecvQueue, int(inq), alloc); err != nil {
			return c.opErr(op, StepRecvQueue, err)
		}
	}
	if st.SendSeq, st.SendQueue, err = c.readQueue(tcpSendQueue, int(outq), alloc); err != nil {
		return c.opErr(op, StepSendQueue, err)
	}

	if st.State != SynSent {
		st.Options = Options(ti.Options) & (OptTimestamps | OptSACK | OptWscale)
		if st.Options&OptWscale != 0 {
			st.SndWscale = ti.Wscale & 0xf
			st.RcvWscale = ti.Wscale >> 4
		}
		mss, err := getInt(fd, unix.SOL_TCP, unix.TCP_MAXSEG, "TCP_MAXSEG")
		if err != nil {
			return c.opErr(op, StepOptions, err)
		}
		st.MSSClamp = uint32(mss)
		if st.Options&OptTimestamps != 0 {
			ts, err := getInt(fd, unix.SOL_TCP, unix.TCP_TIMESTAMP, "TCP_TIMESTAMP")
			if err != nil {
				return c.opErr(op, StepOptions, err)
			}
			st.Timestamp = uint32(ts) + pacedLead(&ti)
		}
		if st.Window, err = getWindow(fd); err != nil {
			return c.opErr(op, StepWindow, err)
		}
	}
	if !o.NoSockopts {
		if st.Sockopts, err = getSockopts(fd); err != nil {
			return c.opErr(op, StepOptions, err)
		}
	}
	return nil
}

// pacedLead is how far ahead of the TCP timestamp clock a paced socket may
// have stamped its last segments, in clock ticks: a pacing socket (BBR, the
// fq qdisc) stamps a segment with its departure time, up to one 64 KiB
// burst at the pacing rate ahead. Save records the clock that much ahead:
// a peer that saw such a stamp drops anything older (PAWS), the window
// probe of Resume included, until a retransmission timeout. Timestamps may
// jump forward (RFC 7323), but the first round-trip time the restored
// socket measures grows by the lead, so it is kept to what pacing needs:
// 1 ms at the rates of a LAN, up to a second for a slow paced connection.
func pacedLead(ti *tcpInfo) uint32 {
	const burst, maxLeadMs = 64 << 10, 1000
	lead := uint64(1)
	if r := ti.PacingRate; r > 0 && r != ^uint64(0) {
		lead = min(maxLeadMs, burst*1000/r+1)
	}
	if ti.Options&tcpiOptUsecTS != 0 {
		lead *= 1000 // microsecond timestamps
	}
	return uint32(lead)
}

// readQueue selects a queue, reads its sequence number and peeks its n
// bytes into a buffer of exactly n, with one byte more asked into a spare
// byte of its own (a second iovec), to be sure that n is all there is.
func (c *Conn) readQueue(q int, n int, alloc func(int) []byte) (uint32, []byte, error) {
	name := "TCP_REPAIR_QUEUE"
	if err := setInt(c.fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, int32(q), name); err != nil {
		return 0, nil, err
	}
	seq, err := getInt(c.fd, unix.SOL_TCP, unix.TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ")
	if err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return uint32(seq), nil, nil
	}
	var buf []byte
	if alloc != nil {
		buf = alloc(n)
	} else {
		buf = make([]byte, n)
	}
	if len(buf) < n {
		return 0, nil, fmt.Errorf("queue buffer of %d bytes for %d: %w", len(buf), n, unix.ENOMEM)
	}
	got, err := peek(c.fd, buf[:n])
	if err != nil {
		return 0, nil, err
	}
	if got != n {
		return 0, nil, fmt.Errorf("%w: %s queue holds %d bytes, kernel said %d", ErrQueueChanged, queueName(q), got, n)
	}
	return uint32(seq), buf[:n:n], nil
}

func queueName(q int) string {
	if q == tcpRecvQueue {
		return "receive"
	}
	return "send"
}

// getWindow reads TCP_REPAIR_WINDOW, or returns nil where the kernel lacks
// it (before Linux 4.8). The length is passed and checked explicitly.
func getWindow(fd int) (*Window, error) {
	if repairWindowMissing.Load() {
		return nil, nil
	}
	var w Window
	n := uint32(sizeofRepairWindow)
	if err := getsockopt(fd, unix.SOL_TCP, unix.TCP_REPAIR_WINDOW, unsafe.Pointer(&w), &n, "TCP_REPAIR_WINDOW"); err != nil {
		if errors.Is(err, unix.ENOPROTOOPT) {
			repairWindowMissing.Store(true)
			return nil, nil
		}
		return nil, err
	}
	if n != sizeofRepairWindow {
		return nil, fmt.Errorf("getsockopt TCP_REPAIR_WINDOW returned %d bytes, want %d: %w", n, sizeofRepairWindow, unix.EINVAL)
	}
	return &w, nil
}

type sockoptDesc struct {
	level, opt int
	name       string
}

var sockoptList = [...]sockoptDesc{
	{unix.SOL_TCP, unix.TCP_NODELAY, "TCP_NODELAY"},
	{unix.SOL_TCP, unix.TCP_CORK, "TCP_CORK"},
	{unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SO_KEEPALIVE"},
	{unix.SOL_TCP, unix.TCP_KEEPIDLE, "TCP_KEEPIDLE"},
	{unix.SOL_TCP, unix.TCP_KEEPINTVL, "TCP_KEEPINTVL"},
	{unix.SOL_TCP, unix.TCP_KEEPCNT, "TCP_KEEPCNT"},
	{unix.SOL_TCP, unix.TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT"},
}

func (s *Sockopts) fields() [len(sockoptList)]*uint32 {
	return [...]*uint32{nil, nil, nil, &s.KeepIdle, &s.KeepIntvl, &s.KeepCnt, &s.UserTimeout}
}

func (s *Sockopts) flags() [3]*bool { return [3]*bool{&s.NoDelay, &s.Cork, &s.KeepAlive} }

func getSockopts(fd int) (*Sockopts, error) {
	s := &Sockopts{}
	f, b := s.fields(), s.flags()
	for i, d := range sockoptList {
		v, err := getInt(fd, d.level, d.opt, d.name)
		if err != nil {
			return nil, err
		}
		if i < len(b) {
			*b[i] = v != 0
		} else {
			*f[i] = uint32(v)
		}
	}
	return s, nil
}

// setSockopts sets the options of s that differ from a new socket's.
// Keepalive timings are always set when present, since their defaults
// come from sysctls that may differ between hosts.
func setSockopts(fd int, s *Sockopts) error {
	f, b := s.fields(), s.flags()
	for i, d := range sockoptList {
		var v int32
		if i < len(b) {
			if !*b[i] {
				continue
			}
			v = 1
		} else {
			if *f[i] == 0 {
				continue
			}
			v = int32(*f[i])
		}
		if err := setInt(fd, d.level, d.opt, v, d.name); err != nil {
			return err
		}
	}
	return nil
}

package soccr

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Restore creates a TCP socket and restores st into it: the connection
// goes on where it was checkpointed. It returns the new socket's
// descriptor (close-on-exec, blocking). On failure nothing is left behind.
//
// The caller must keep packets of the connection away from the host until
// Restore returns (see the package documentation); the peer then sees the
// same connection as before.
func Restore(st *State) (int, error) {
	c, err := RestorePaused(st)
	if err != nil {
		return -1, err
	}
	if err := c.Resume(); err != nil {
		unix.Close(c.fd) // in repair mode: nothing reaches the peer
		return -1, err
	}
	return c.fd, nil
}

// RestorePaused is Restore without the final Resume: the connection is
// rebuilt in a new socket (close-on-exec, blocking) that stays in repair
// mode and sends nothing, so that the caller can lift a network lock first,
// or resume several connections together. The socket, c.FD(), belongs to
// the caller; closing it without Resume drops the connection silently. On
// failure nothing is left behind.
func RestorePaused(st *State) (*Conn, error) {
	if err := st.validate(); err != nil {
		return nil, &OpError{Op: "restore", Step: StepCheck, FD: -1, State: st.State, Local: st.Local, Remote: st.Remote, Err: err}
	}
	fd, err := unix.Socket(st.Family(), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, &OpError{Op: "restore", Step: StepBind, FD: -1, State: st.State, Local: st.Local, Remote: st.Remote,
			Err: fmt.Errorf("socket: %w", err)}
	}
	c, err := Pause(fd)
	if err == nil {
		err = c.Restore(st)
	}
	if err != nil {
		unix.Close(fd) // in repair mode: nothing reaches the peer
		return nil, err
	}
	return c, nil
}

// Restore puts st into the paused socket c, which must be new (created,
// neither bound nor connected). Afterwards the socket is still in repair
// mode: call Resume to let the connection go on, or close it. On failure the
// caller closes the socket; since it is in repair mode, the peer sees
// nothing.
//
// Restore never blocks and needs no preparation: where a queue does not fit
// the socket's buffers, it raises them for the time it refills the queue
// and puts them back afterwards (the kernel then keeps the buffer sizes as
// if set by the application, as they are after a restore by CRIU).
func (c *Conn) Restore(st *State) error {
	const op = "restore"
	if c.done {
		return c.opErr(op, StepRepair, ErrReleased)
	}
	c.state, c.local, c.remote = st.State, st.Local, st.Remote
	if err := st.validate(); err != nil {
		return c.opErr(op, StepCheck, err)
	}
	if err := bindOrConnect(c.fd, st.Local, false); err != nil {
		return c.opErr(op, StepBind, err)
	}
	var err error
	if st.State == SynSent {
		err = c.restoreSynSent(st)
	} else {
		err = c.restoreEstablished(st)
	}
	if err != nil {
		var se *stepErr
		if errors.As(err, &se) {
			return c.opErr(op, se.step, se.err)
		}
		return c.opErr(op, "", err)
	}
	return nil
}

// stepErr tags an error of Restore with the step that failed.
type stepErr struct {
	step string
	err  error
}

func (e *stepErr) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepErr) Unwrap() error { return e.err }

func step(name string, err error) error {
	if err == nil {
		return nil
	}
	return &stepErr{name, err}
}

// restoreSynSent connects again for real, with the original initial
// sequence number: the peer never answered, so there is nothing to repair.
func (c *Conn) restoreSynSent(st *State) error {
	fd := c.fd
	// SendSeq is the ISN plus one, for the SYN.
	if err := c.setQueueSeq(tcpSendQueue, st.SendSeq-1); err != nil {
		return step(StepSendQueue, err)
	}
	if err := setInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, tcpRepairOffNoWP, "TCP_REPAIR"); err != nil {
		return step(StepRepair, err)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return step(StepConnect, fmt.Errorf("fcntl F_GETFL: %w", err))
	}
	if fl&unix.O_NONBLOCK == 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl|unix.O_NONBLOCK); err != nil {
			return step(StepConnect, fmt.Errorf("fcntl F_SETFL: %w", err))
		}
	}
	err = bindOrConnect(fd, st.Remote, true)
	if errors.Is(err, unix.EINPROGRESS) {
		err = nil
	}
	if fl&unix.O_NONBLOCK == 0 {
		if _, e := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl); e != nil && err == nil {
			err = fmt.Errorf("fcntl F_SETFL: %w", e)
		}
	}
	if err != nil {
		return step(StepConnect, err)
	}
	if err := setInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, tcpRepairOn, "TCP_REPAIR"); err != nil {
		return step(StepRepair, err)
	}
	if st.Sockopts != nil {
		return step(StepOptions, setSockopts(fd, st.Sockopts))
	}
	return nil
}

func (c *Conn) setQueueSeq(q int, seq uint32) error {
	if err := setInt(c.fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, int32(q), "TCP_REPAIR_QUEUE"); err != nil {
		return err
	}
	return setInt(c.fd, unix.SOL_TCP, unix.TCP_QUEUE_SEQ, int32(seq), "TCP_QUEUE_SEQ")
}

// restoreEstablished restores every state but SYN_SENT: the connection is
// rebuilt as ESTABLISHED, and FINs are added to reach the saved state.
func (c *Conn) restoreEstablished(st *State) error {
	fd := c.fd
	mask := st.State.mask()
	// A FIN counts in the sequence numbers but is restored separately.
	sndSeq, rcvSeq := st.SendSeq, st.RecvSeq
	if mask&finSent != 0 {
		sndSeq--
	}
	if mask&finRecv != 0 {
		rcvSeq--
	}
	sndUna := sndSeq - uint32(len(st.SendQueue))

	// The receive queue is selected last, so that it is still selected
	// when its bytes go in after connect.
	if err := c.setQueueSeq(tcpSendQueue, sndUna); err != nil {
		return step(StepSendQueue, err)
	}
	if err := c.setQueueSeq(tcpRecvQueue, rcvSeq-uint32(len(st.RecvQueue))); err != nil {
		return step(StepRecvQueue, err)
	}
	// In repair mode connect sends nothing: the socket is ESTABLISHED at once.
	// The MSS goes in before connect too: connect computes the socket's
	// sending MSS (mss_cache) once, from the clamp and the path MTU, and
	// TCP_REPAIR_OPTIONS later changes the clamp but not that MSS, which
	// would stay at 536 less options. As the kernel bounds the MSS by half
	// the largest window the peer offered (tcp_bound_to_half_wnd), so does
	// this; TCP_MAXSEG takes at most 32767 (MAX_TCP_WINDOW).
	if mss := connectMSS(st); mss != 0 {
		if err := setInt(fd, unix.SOL_TCP, unix.TCP_MAXSEG, int32(mss), "TCP_MAXSEG"); err != nil {
			return step(StepOptions, err)
		}
	}
	if err := bindOrConnect(fd, st.Remote, true); err != nil {
		return step(StepConnect, err)
	}
	if err := setRepairOptions(fd, st); err != nil {
		return step(StepOptions, err)
	}
	if st.Options&OptTimestamps != 0 {
		if err := setInt(fd, unix.SOL_TCP, unix.TCP_TIMESTAMP, int32(st.Timestamp), "TCP_TIMESTAMP"); err != nil {
			return step(StepOptions, err)
		}
	}

	// Options before queued bytes: TCP_NODELAY pushes what is queued when
	// it is set, and TCP_CORK holds what it should hold.
	if st.Sockopts != nil {
		if err := setSockopts(fd, st.Sockopts); err != nil {
			return step(StepOptions, err)
		}
	}

	var bufs bufGuard
	if err := c.fill(tcpRecvQueue, st.RecvQueue, &bufs); err != nil {
		bufs.putBack(fd)
		return step(StepRecvQueue, err)
	}
	sent := st.SendQueue[:len(st.SendQueue)-int(st.Unsent)]
	unsent := st.SendQueue[len(sent):]
	var pushed []byte
	if c.resend = resendPlan(st, len(sent)); c.resend.push {
		// The bytes the peer has not acknowledged go in as unsent: Resume
		// sends them at once rather than after a retransmission timeout.
		sent, pushed = nil, sent
	} else if st.Window != nil && (len(unsent) > 0 && (st.State == Established || st.State == CloseWait) ||
		mask&finSent != 0 && mask&finSentAcked == 0) {
		// Unsent bytes, or our FIN not acknowledged: Resume pushes them
		// (see resend).
		c.resend = resend{kick: true, nodelay: st.Sockopts != nil && st.Sockopts.NoDelay}
	}
	if len(sent) > 0 {
		if err := setInt(fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, tcpSendQueue, "TCP_REPAIR_QUEUE"); err != nil {
			return step(StepSendQueue, err)
		}
		// In repair mode these bytes count as sent, unacknowledged.
		if err := c.fill(tcpSendQueue, sent, &bufs); err != nil {
			bufs.putBack(fd)
			return step(StepSendQueue, err)
		}
	}
	if len(pushed)+len(unsent) > 0 {
		// Bytes never sent go in as an ordinary write, with the peer's
		// window closed for the moment: they wait in the queue until the
		// peer answers the window probe of Resume, rather than leave now,
		// get dropped by the network lock, and wait for a retransmission
		// timeout.
		if st.Window != nil {
			closed := *st.Window
			closed.SndWnd = 0
			if err := c.setWindow(&closed, mask); err != nil {
				return step(StepWindow, err)
			}
		}
		if err := setInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, tcpRepairOffNoWP, "TCP_REPAIR"); err != nil {
			return step(StepRepair, err)
		}
		// The pushed bytes end their own buffer (MSG_EOR): the unsent
		// bytes behind them are not appended to its last segment, which
		// would then be a full one reaching past the peer's window, held
		// back by the push; an ACK of the peer for the bytes it already
		// had would then be beyond snd_nxt, discarded, and the connection
		// stuck.
		var err error
		if len(pushed) > 0 {
			err = c.fillFlags(tcpNoQueue, pushed, &bufs, unix.MSG_EOR)
		}
		if err == nil && len(unsent) > 0 {
			err = c.fill(tcpNoQueue, unsent, &bufs)
		}
		if e := setInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, tcpRepairOn, "TCP_REPAIR"); err == nil {
			err = e
		}
		if err != nil {
			bufs.putBack(fd)
			return step(StepSendQueue, err)
		}
	}
	if err := bufs.putBack(fd); err != nil {
		return step(StepOptions, err)
	}

	if st.Window != nil {
		w := *st.Window
		if c.resend.kick {
			// A window of at least one segment, so that the push sends
			// one: a peer whose window is still closed drops it and
			// answers at once with its window, as to a zero-window probe.
			w.SndWnd = max(w.SndWnd, connectMSS(st))
		}
		if err := c.setWindow(&w, mask); err != nil {
			return step(StepWindow, err)
		}
	}

	return step(StepFIN, c.restoreFINs(st, sndUna, rcvSeq))
}

// setWindow sets TCP_REPAIR_WINDOW, where the kernel has it.
func (c *Conn) setWindow(w *Window, mask uint32) error {
	if repairWindowMissing.Load() {
		return nil
	}
	win := *w
	if mask&finRecv != 0 {
		// The peer's FIN is not in the receive stream yet.
		win.RcvWup--
		win.RcvWnd++
	}
	err := setsockopt(c.fd, unix.SOL_TCP, unix.TCP_REPAIR_WINDOW, unsafe.Pointer(&win), sizeofRepairWindow, "TCP_REPAIR_WINDOW")
	if errors.Is(err, unix.ENOPROTOOPT) {
		repairWindowMissing.Store(true)
		return nil
	}
	return err
}

// maxTCPWindow is the largest value TCP_MAXSEG takes.
const maxTCPWindow = 32767

// connectMSS is the MSS to give the socket before connect: the clamp,
// bounded as the kernel bounds a sending MSS; 0 to leave the default.
func connectMSS(st *State) uint32 {
	mss := min(st.MSSClamp, maxTCPWindow)
	if w := st.Window; w != nil && w.MaxWindow/2 > 68 {
		mss = min(mss, w.MaxWindow/2)
	}
	if mss < 88 { // TCP_MIN_MSS
		return 0
	}
	return mss
}

// restoreFINs brings an ESTABLISHED socket to the saved state. Our FIN is
// queued with shutdown(SHUT_WR); the peer's FIN, and the peer's
// acknowledgement of ours, are injected as packets from the peer.
func (c *Conn) restoreFINs(st *State, sndUna, rcvSeq uint32) error {
	mask := st.State.mask()
	if mask&(finSent|finRecv) == 0 {
		return nil
	}
	ourFIN := func() error {
		// An acknowledged FIN is queued as sent, so that it is never
		// transmitted again.
		acked := mask&finSentAcked != 0
		if acked {
			if err := setInt(c.fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, tcpSendQueue, "TCP_REPAIR_QUEUE"); err != nil {
				return err
			}
		}
		if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		if acked {
			return setInt(c.fd, unix.SOL_TCP, unix.TCP_REPAIR_QUEUE, tcpNoQueue, "TCP_REPAIR_QUEUE")
		}
		return nil
	}
	win := uint32(0xffff)
	if st.Window != nil {
		win = st.Window.SndWnd >> st.SndWscale
	}
	peer := segment{from: st.Remote, to: st.Local, seq: rcvSeq, ack: sndUna, window: win}

	switch st.State {
	case FinWait1, FinWait2, Closing:
		// Our FIN first: CLOSING is FIN_WAIT1 that then got the peer's FIN.
		if err := ourFIN(); err != nil {
			return err
		}
		if st.State == Closing {
			peer.flags = tcpFlagFIN | tcpFlagACK
			if err := inject(&peer); err != nil {
				return err
			}
		}
	case CloseWait, LastAck, Close:
		// The peer's FIN first: LAST_ACK is CLOSE_WAIT that then closed.
		peer.flags = tcpFlagFIN | tcpFlagACK
		if err := inject(&peer); err != nil {
			return err
		}
		if st.State != CloseWait {
			if err := ourFIN(); err != nil {
				return err
			}
		}
	}
	if mask&finSentAcked != 0 {
		// The peer acknowledges our FIN: FIN_WAIT2, or CLOSE from LAST_ACK.
		peer.flags = tcpFlagACK
		peer.seq = st.RecvSeq
		peer.ack = st.SendSeq
		if err := inject(&peer); err != nil {
			return err
		}
	}
	return nil
}

func setRepairOptions(fd int, st *State) error {
	type repairOpt struct{ code, val uint32 }
	var opts [4]repairOpt
	n := 0
	if st.Options&OptSACK != 0 {
		opts[n] = repairOpt{tcpoptSACKPerm, 0}
		n++
	}
	if st.Options&OptWscale != 0 {
		opts[n] = repairOpt{tcpoptWindow, uint32(st.SndWscale) | uint32(st.RcvWscale)<<16}
		n++
	}
	if st.Options&OptTimestamps != 0 {
		opts[n] = repairOpt{tcpoptTimestamp, 0}
		n++
	}
	opts[n] = repairOpt{tcpoptMSS, st.MSSClamp}
	n++
	return setsockopt(fd, unix.SOL_TCP, unix.TCP_REPAIR_OPTIONS, unsafe.Pointer(&opts[0]), uintptr(n)*8, "TCP_REPAIR_OPTIONS")
}

// bufGuard remembers socket buffer sizes that fill raised, to put them back.
type bufGuard struct {
	sndOrig, rcvOrig int32 // 0: not raised
	raises           int
}

const (
	minChunk  = 4096
	maxRaises = 16
)

// fill writes b into queue q (tcpNoQueue: an ordinary write) without ever
// blocking. When the socket's buffer is full it raises the buffer to fit
// what is left; when the kernel still refuses, it halves the chunk.
func (c *Conn) fill(q int, b []byte, g *bufGuard) error { return c.fillFlags(q, b, g, 0) }

// fillFlags is fill with more send(2) flags.
func (c *Conn) fillFlags(q int, b []byte, g *bufGuard, flags int) error {
	chunk := len(b)
	for len(b) > 0 {
		n, err := sendNB(c.fd, b[:min(chunk, len(b))], flags)
		if err == nil {
			if n <= 0 {
				return fmt.Errorf("restoring the %s queue: send wrote nothing: %w", queueName(q), unix.EIO)
			}
			b = b[n:]
			continue
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.ENOMEM) {
			return fmt.Errorf("restoring the %s queue (%d bytes left): %w", queueName(q), len(b), err)
		}
		raised, rerr := g.raise(c.fd, q, len(b))
		if rerr != nil {
			return rerr
		}
		if raised {
			continue
		}
		if chunk > minChunk {
			chunk = max(minChunk, min(chunk, len(b))/2)
			continue
		}
		return fmt.Errorf("restoring the %s queue (%d bytes left): %w", queueName(q), len(b), err)
	}
	return nil
}

// raise grows the buffer that queue q fills by enough for left more bytes,
// remembering its first size. It reports whether the buffer grew.
func (g *bufGuard) raise(fd, q, left int) (bool, error) {
	opt, force, orig := unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, &g.sndOrig
	getName, setName := "SO_SNDBUF", "SO_SNDBUFFORCE"
	if q == tcpRecvQueue {
		opt, force, orig = unix.SO_RCVBUF, unix.SO_RCVBUFFORCE, &g.rcvOrig
		getName, setName = "SO_RCVBUF", "SO_RCVBUFFORCE"
	}
	if g.raises >= maxRaises {
		return false, nil
	}
	cur, err := getInt(fd, unix.SOL_SOCKET, opt, getName)
	if err != nil {
		return false, err
	}
	// The kernel doubles the value it is given, for its bookkeeping
	// overhead: ask for the current size plus twice what is left.
	want := min(int64(cur)+2*int64(left)+64<<10, 1<<30) / 2
	if want*2 <= int64(cur) {
		return false, nil
	}
	if err := setBuf(fd, force, opt, int32(want), setName); err != nil {
		return false, err
	}
	if *orig == 0 {
		*orig = cur
	}
	g.raises++
	return true, nil
}

// putBack restores the buffer sizes that raise changed.
func (g *bufGuard) putBack(fd int) error {
	var err error
	if g.sndOrig != 0 {
		err = setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, g.sndOrig/2, "SO_SNDBUFFORCE")
		g.sndOrig = 0
	}
	if g.rcvOrig != 0 {
		if e := setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, g.rcvOrig/2, "SO_RCVBUFFORCE"); err == nil {
			err = e
		}
		g.rcvOrig = 0
	}
	return err
}

// setBuf sets a socket buffer size with the FORCE option, which passes the
// sysctl limits but needs CAP_NET_ADMIN in the initial user namespace; in a
// user namespace it falls back to the plain option, within net.core.*mem_max.
func setBuf(fd, force, plain int, v int32, name string) error {
	err := setInt(fd, unix.SOL_SOCKET, force, v, name)
	if errors.Is(err, unix.EPERM) {
		err = setInt(fd, unix.SOL_SOCKET, plain, v, strings.TrimSuffix(name, "FORCE"))
	}
	return err
}

// resend says how Resume lets the bytes of a restored send queue go.
//
// The kernel, read for Linux 6.x: bytes written in repair mode to the send
// queue count as sent (tcp_write_xmit skips the transmission and advances
// snd_nxt), and the only thing that sends them again is a timer: the tail
// loss probe (TCP_TIMEOUT_INIT, 1 s, as a repaired socket has no RTT sample)
// or the retransmission timeout (icsk_rto: 1 s, or 3 s, TCP_TIMEOUT_FALLBACK,
// where tcp_init_metrics has no cached RTT). No socket option lowers them
// before a first RTT sample (TCP_RTO_MIN_US only bounds later estimates,
// TCP_RTO_MAX_MS is at least 1 s), the window probe of TCP_REPAIR_OFF is a
// zero-length segment whose answer updates the window and counts as no
// duplicate ACK, and with RACK one duplicate ACK marks nothing lost.
//
// Bytes written as ordinary data (repair off, with the peer's window closed
// for the moment) are unsent instead: snd_nxt == snd_una, and any push
// transmits them. Resume leaves repair mode without the probe and pushes. Bytes the peer had already
// received arrive twice and are acknowledged as duplicates. The push goes
// through TCP_NODELAY (__tcp_sock_set_nodelay sets TCP_NAGLE_PUSH and calls
// tcp_push_pending_frames), which Nagle and TCP_CORK do not hold back, and
// is then set back to the saved value.
//
// This is only safe when the push sends every one of those bytes at once:
// an ACK beyond snd_nxt is discarded by tcp_ack ("ack of unsent data"), so a
// peer that already holds more than the first push carried would stall the
// connection. The push is bounded by the peer's window (the saved one, which
// covered the bytes when they were sent) and by the initial congestion
// window of a repaired socket (10 segments, tcp_init_transfer). So the bytes
// go in as unsent only in ESTABLISHED (in the FIN states the FIN and the
// injected segments would push them before Resume), with TCP_REPAIR_WINDOW,
// and when they fit the window and resendMaxSegs segments; otherwise they
// are queued as sent and wait for the timer, as with libsoccr.
//
// Our FIN, when the peer had not acknowledged it, goes into the queue unsent
// (shutdown in repair mode): a peer that had it acknowledges beyond
// snd_nxt, and in FIN_WAIT1 the kernel then discards its segments, data
// included, until a timer sends the FIN (seconds). Resume pushes it (kick).
//
// Bytes that were never sent are pushed at Resume as well (kick), after the
// window probe: otherwise they would wait for the answer to the probe, and
// a peer that answered another out-of-window segment in the last 500 ms
// (net.ipv4.tcp_invalid_ratelimit, as after an earlier restore) does not
// answer it, leaving them to the zero-window probe timer, seconds later.
// For that push to send something, the restored window is at least one
// segment: a peer whose window is really closed drops that segment and
// answers with its window at once (not rate-limited), as to a zero-window
// probe; new bytes cannot be acknowledged beyond snd_nxt.
type resend struct {
	push    bool // Resume pushes the queue instead of sending a window probe
	kick    bool // Resume sends the window probe, then pushes the unsent bytes
	nodelay bool // TCP_NODELAY was set: leave it set after the push
}

// resendMaxSegs is how many segments of sent bytes Resume may push: below
// the initial congestion window of 10, with room for a short last segment.
const resendMaxSegs = 8

// fastResend can be turned off by tests, to measure the timer path.
var fastResend = true

func resendPlan(st *State, sent int) resend {
	if !fastResend || sent == 0 || st.State != Established || st.Window == nil || repairWindowMissing.Load() {
		return resend{}
	}
	// A segment carries at most the MSS the restore gives the socket
	// (connectMSS: the clamp, bounded as the kernel bounds it) less TCP
	// options (timestamps 12 bytes, SACK blocks): count 64 bytes less.
	mss := connectMSS(st)
	if mss < 536+64 || uint64(sent) > uint64(st.Window.SndWnd) ||
		uint64(sent) > resendMaxSegs*uint64(mss-64) {
		return resend{}
	}
	return resend{push: true, nodelay: st.Sockopts != nil && st.Sockopts.NoDelay}
}

// resumePush is Resume for a socket whose unacknowledged bytes Restore
// queued as unsent (push): it leaves repair mode without a window probe and
// pushes the queue, so that the bytes leave now; the peer's
// acknowledgements of them update the window as the probe's answer would
// have. With kick (unsent bytes only) it leaves repair mode with the probe,
// then pushes.
func (c *Conn) resumePush() error {
	mode := int32(tcpRepairOffNoWP)
	if c.resend.kick {
		mode = tcpRepairOff
	}
	if err := setInt(c.fd, unix.SOL_TCP, unix.TCP_REPAIR, mode, "TCP_REPAIR"); err != nil {
		return c.opErr("resume", StepRepair, err)
	}
	err := setInt(c.fd, unix.SOL_TCP, unix.TCP_NODELAY, 1, "TCP_NODELAY")
	if err == nil && !c.resend.nodelay {
		err = setInt(c.fd, unix.SOL_TCP, unix.TCP_NODELAY, 0, "TCP_NODELAY")
	}
	if err != nil {
		return c.opErr("resume", StepOptions, err)
	}
	return nil
}

package soccr

import (
	"fmt"
	"net/netip"
)

// TCPState is a TCP state in the kernel's numbering (include/net/tcp_states.h),
// the same values that TCP_INFO reports and that libsoccr_sk_data.state and
// CRIU's images carry.
type TCPState uint8

// The TCP states. Only some can be checkpointed: see State.
const (
	Established TCPState = 1
	SynSent     TCPState = 2
	SynRecv     TCPState = 3
	FinWait1    TCPState = 4
	FinWait2    TCPState = 5
	TimeWait    TCPState = 6
	Close       TCPState = 7
	CloseWait   TCPState = 8
	LastAck     TCPState = 9
	Listen      TCPState = 10
	Closing     TCPState = 11
)

var stateNames = [...]string{
	Established: "ESTABLISHED", SynSent: "SYN_SENT", SynRecv: "SYN_RECV",
	FinWait1: "FIN_WAIT1", FinWait2: "FIN_WAIT2", TimeWait: "TIME_WAIT",
	Close: "CLOSE", CloseWait: "CLOSE_WAIT", LastAck: "LAST_ACK",
	Listen: "LISTEN", Closing: "CLOSING",
}

func (s TCPState) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("TCPState(%d)", uint8(s))
}

// Supported reports whether a socket in state s can be checkpointed and
// restored by this package.
func (s TCPState) Supported() bool { return s.mask()&supportedStates != 0 }

// SentFIN reports whether a socket in state s has shut down its sending
// side: its FIN is queued or sent.
func (s TCPState) SentFIN() bool { return s.mask()&finSent != 0 }

// ReceivedFIN reports whether the peer of a socket in state s has shut
// down its sending side: the peer's FIN is in the receive stream.
func (s TCPState) ReceivedFIN() bool { return s.mask()&finRecv != 0 }

func (s TCPState) mask() uint32 { return 1 << s }

const (
	supportedStates = 1<<Established | 1<<SynSent | 1<<FinWait1 | 1<<FinWait2 |
		1<<CloseWait | 1<<LastAck | 1<<Closing | 1<<Close

	// States whose send queue ends with a FIN we sent. Its sequence number
	// counts in SendSeq but it is no byte of SendQueue.
	finSent = 1<<FinWait1 | 1<<FinWait2 | 1<<LastAck | 1<<Closing | 1<<Close
	// Of those, the states where the peer acknowledged our FIN.
	finSentAcked = 1<<FinWait2 | 1<<Close
	// States where the peer's FIN is in our receive stream; it counts in
	// RecvSeq but is no byte of RecvQueue.
	finRecv = 1<<CloseWait | 1<<LastAck | 1<<Closing | 1<<Close
)

// Options are the TCP options that the connection negotiated, as the
// TCPI_OPT_* bits of TCP_INFO (libsoccr_sk_data.opt_mask).
type Options uint8

// The option bits.
const (
	OptTimestamps Options = 1 // TCPI_OPT_TIMESTAMPS
	OptSACK       Options = 2 // TCPI_OPT_SACK
	OptWscale     Options = 4 // TCPI_OPT_WSCALE
)

// Window is the state of both TCP windows (struct tcp_repair_window,
// Linux 4.8 and later).
type Window struct {
	SndWl1    uint32 // sequence number of the segment that last updated SndWnd
	SndWnd    uint32 // the peer's receive window, in bytes
	MaxWindow uint32 // largest window the peer ever offered
	RcvWnd    uint32 // our receive window, in bytes
	RcvWup    uint32 // RecvSeq at our last window update
}

// Sockopts are the per-socket options that libsoccr leaves to its caller.
// A zero field is the kernel's default.
type Sockopts struct {
	NoDelay     bool   // TCP_NODELAY
	Cork        bool   // TCP_CORK
	KeepAlive   bool   // SO_KEEPALIVE
	KeepIdle    uint32 // TCP_KEEPIDLE, seconds
	KeepIntvl   uint32 // TCP_KEEPINTVL, seconds
	KeepCnt     uint32 // TCP_KEEPCNT
	UserTimeout uint32 // TCP_USER_TIMEOUT, milliseconds
}

// State is everything needed to re-create a TCP connection in a new socket:
// a plain value that can be stored, sent to another host or compared.
//
// The sequence numbers are the kernel's: RecvSeq is rcv_nxt and SendSeq is
// write_seq, so a FIN counts in them (see the finSent and finRecv states),
// exactly as in libsoccr_sk_data and CRIU's tcp-stream image.
type State struct {
	State  TCPState
	Local  netip.AddrPort // our address; an IPv4-mapped IPv6 address for a v4 peer of an AF_INET6 socket
	Remote netip.AddrPort // the peer's address

	RecvSeq   uint32 // inq_seq: sequence number after the last byte of RecvQueue
	SendSeq   uint32 // outq_seq: sequence number after the last byte of SendQueue
	RecvQueue []byte // received, not yet read by the application
	SendQueue []byte // written by the application, not yet acknowledged by the peer
	Unsent    uint32 // how many bytes at the end of SendQueue were never sent

	MSSClamp  uint32
	Options   Options
	SndWscale uint8
	RcvWscale uint8
	Timestamp uint32 // TCP timestamp clock (TCP_TIMESTAMP) to restore, when OptTimestamps is set: the clock at Save, plus what a paced socket may have stamped ahead

	Window   *Window   // nil where the kernel lacks TCP_REPAIR_WINDOW
	Sockopts *Sockopts // nil: not saved, the new socket keeps its defaults
}

// Family returns AF_INET or AF_INET6: the family of a socket that can hold
// this connection.
func (s *State) Family() int {
	if s.Local.Addr().Is4() {
		return afInet
	}
	return afInet6
}

func (s *State) String() string {
	return fmt.Sprintf("%s %s->%s snd_seq=%d rcv_seq=%d sndq=%d (unsent %d) rcvq=%d",
		s.State, s.Local, s.Remote, s.SendSeq, s.RecvSeq, len(s.SendQueue), s.Unsent, len(s.RecvQueue))
}

// validate checks that the state can be restored before anything is done to
// a socket.
func (s *State) validate() error {
	if !s.State.Supported() {
		return fmt.Errorf("%w: %s", ErrUnsupportedState, s.State)
	}
	if !s.Local.IsValid() || !s.Remote.IsValid() || s.Remote.Port() == 0 {
		return fmt.Errorf("%w: local %s remote %s", ErrBadState, s.Local, s.Remote)
	}
	l, r := s.Local.Addr(), s.Remote.Addr()
	if l.Is4() != r.Is4() || l.Is4In6() != r.Is4In6() {
		return fmt.Errorf("%w: address families differ (local %s remote %s)", ErrBadState, l, r)
	}
	if uint64(s.Unsent) > uint64(len(s.SendQueue)) {
		return fmt.Errorf("%w: %d unsent bytes in a send queue of %d", ErrBadState, s.Unsent, len(s.SendQueue))
	}
	if s.State == SynSent && (len(s.SendQueue) != 0 || len(s.RecvQueue) != 0) {
		return fmt.Errorf("%w: queued data in SYN_SENT", ErrBadState)
	}
	if s.Window != nil && s.Window.MaxWindow < s.Window.SndWnd {
		return fmt.Errorf("%w: window max %d < snd_wnd %d", ErrBadState, s.Window.MaxWindow, s.Window.SndWnd)
	}
	return nil
}

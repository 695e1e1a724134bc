package soccr

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors. An *OpError wraps one of them together with the errno
// that caused it, so that errors.Is works for both.
var (
	// ErrNotTCP: the descriptor is not a TCP socket.
	ErrNotTCP = errors.New("not a TCP socket")
	// ErrNoRepair: the kernel refused TCP repair mode, most often for
	// lack of CAP_NET_ADMIN in the socket's network namespace.
	ErrNoRepair = errors.New("TCP repair mode refused (CAP_NET_ADMIN needed)")
	// ErrUnsupportedState: the socket is in a state that cannot be
	// checkpointed or restored (LISTEN, SYN_RECV, TIME_WAIT, or a socket
	// that was never connected).
	ErrUnsupportedState = errors.New("unsupported TCP state")
	// ErrBadState: a State given to Restore is inconsistent.
	ErrBadState = errors.New("inconsistent connection state")
	// ErrQueueChanged: a queue held a different number of bytes than the
	// kernel reported a moment before; the socket was not isolated.
	ErrQueueChanged = errors.New("queue changed during checkpoint")
	// ErrReleased: the Conn was already resumed or released.
	ErrReleased = errors.New("connection handle already resumed or released")
)

// The steps that OpError.Step names: which part of a checkpoint or restore
// failed. A C caller maps them to libsoccr's stage codes.
const (
	StepRepair    = "repair mode"      // TCP_REPAIR on or off
	StepState     = "connection state" // TCP_INFO and the queue sizes
	StepAddrs     = "addresses"
	StepRecvQueue = "receive queue" // sequence number and bytes
	StepSendQueue = "send queue"    // sequence number and bytes
	StepOptions   = "options"       // MSS, window scales, timestamps, socket options
	StepWindow    = "window"        // TCP_REPAIR_WINDOW
	StepBind      = "bind"
	StepConnect   = "connect"
	StepFIN       = "FIN"   // shutdown, or the peer's FIN or ACK injected
	StepCheck     = "check" // the State given to Restore
)

// OpError is the error of every operation of this package. It names the
// socket and the step that failed.
type OpError struct {
	Op     string         // the step: "pause", "save", "restore", "resume", ...
	Step   string         // the part of Op that failed: one of the Step constants
	FD     int            // the socket's descriptor
	State  TCPState       // the TCP state, where known
	Local  netip.AddrPort // where known
	Remote netip.AddrPort // where known
	Err    error          // the cause: a sentinel, an *os.SyscallError, or both
}

func (e *OpError) Error() string {
	s := fmt.Sprintf("soccr: %s fd %d", e.Op, e.FD)
	if e.Local.IsValid() || e.Remote.IsValid() {
		s += fmt.Sprintf(" (%s->%s", e.Local, e.Remote)
		if e.State != 0 {
			s += " " + e.State.String()
		}
		s += ")"
	} else if e.State != 0 {
		s += " (" + e.State.String() + ")"
	}
	if e.Step != "" {
		s += ": " + e.Step
	}
	return s + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// both is an error with two identities: a sentinel and its cause.
type both struct{ sentinel, cause error }

func (b *both) Error() string   { return b.sentinel.Error() + ": " + b.cause.Error() }
func (b *both) Unwrap() []error { return []error{b.sentinel, b.cause} }

func withCause(sentinel, cause error) error { return &both{sentinel, cause} }

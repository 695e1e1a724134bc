// Package soccr checkpoints and restores TCP connections with the kernel's
// TCP repair mode: it reads everything a connection is (sequence numbers,
// both queues, negotiated options, windows, socket options) out of a socket
// into a plain State value, and puts a State into a new socket, on this host
// or another, so that the connection goes on where it stopped and the peer
// notices nothing.
//
// It does what CRIU's libsoccr does, in Go, and what libsoccr leaves to its
// caller: the addresses, TCP_NODELAY, TCP_CORK, keepalive and
// TCP_USER_TIMEOUT, SYN_SENT and the half-closed states without libnet, and
// restoring queues of any size without blocking.
//
// # Checkpoint
//
//	c, err := soccr.Pause(fd) // repair mode: the socket stops sending and acknowledging
//	st, err := c.Save()       // state, queued bytes, addresses, options
//	c.Release()               // keep repair mode...
//	unix.Close(fd)            // ...so that closing sends nothing to the peer
//
// or c.Resume() instead of Release to let the connection go on (a failed
// Save leaves the socket as it was: Resume always works after it).
//
// # Restore
//
//	fd, err := soccr.Restore(st) // socket, bind, repair, queues, FINs, resume
//
// or, step by step, for a socket of your own or to resume several
// connections together:
//
//	c, err := soccr.Pause(newfd) // a new, unbound TCP socket of st.Family()
//	err = c.Restore(st)          // nothing is sent yet
//	err = c.Resume()             // the socket probes its peer's window and goes on
//
// # Isolating the connection
//
// Between Pause and the end of the restore, no packet of the connection may
// reach either socket or leave the host: a packet that reaches a closed
// port is answered with a reset, and one that reaches a paused socket
// changes it. Use a firewall rule (hooks.Lock locks single connections
// with nftables), and let packets with the mark Mark (0xC114) through:
// Restore injects the peer's FIN and ACK for half-closed states with that
// mark.
//
// # Many connections
//
// CheckpointAll, RestoreAll, RestorePausedAll and ResumeAll do the same for
// many connections, spread over GOMAXPROCS threads, with one Result per
// connection; CheckpointCloseAll also closes each socket it checkpointed,
// in the thread that did, for sockets that move elsewhere. A restored
// connection that held bytes sent but not
// acknowledged sends them at once on Resume rather than after its first
// retransmission timeout.
//
// # States
//
// ESTABLISHED, SYN_SENT, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK,
// CLOSING, and CLOSE after both FINs were exchanged. A FIN we sent is
// restored with shutdown(2); a FIN the peer sent, and the peer's
// acknowledgement of ours, are injected from a raw socket to the
// connection's own 4-tuple. SYN_SENT is restored by a real connect(2) with
// the original initial sequence number. LISTEN, SYN_RECV, TIME_WAIT and
// sockets that were never connected are refused with ErrUnsupportedState.
//
// # Errors
//
// Every error is an *OpError that names the operation, the socket
// (descriptor, addresses, state) and the kernel call that failed. It wraps
// a sentinel (ErrNotTCP, ErrNoRepair, ErrUnsupportedState, ErrBadState,
// ErrQueueChanged, ErrReleased) and the errno, so errors.Is works for both:
//
//	errors.Is(err, soccr.ErrNoRepair) && errors.Is(err, unix.EPERM)
//
// # Kernel
//
// TCP repair needs CAP_NET_ADMIN in the socket's network namespace, and
// injecting packets CAP_NET_RAW. Half-closed states need Linux 4.10;
// TCP_REPAIR_WINDOW needs 4.8 (without it State.Window is nil and the
// windows start afresh); everything here was tested on Linux 6.18. Kernel
// features are probed once and the result is kept.
//
// # Cost
//
// From Pause to the end of Save, a connection with bytes queued both ways
// takes 13 system calls, plus 2 for the addresses and 7 for the socket
// options (SaveOptions can skip both); queue bytes are copied once, from
// the kernel into the State's buffers (or the caller's, see
// SaveOptions.Alloc). Restore takes 13 system calls from socket(2) to the
// final resume for a connection with a receive queue, a few more for sent
// and unsent bytes, and sends nothing before Resume. test/syscalls.sh
// counts them.
package soccr

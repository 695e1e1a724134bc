// Package flows drives many TCP byte streams at once from one event loop,
// for tests that checkpoint and restore connections while their peers go
// on streaming. Each connection has two ends: the peer, which streams from
// Add to Finish without a pause, and the client, which the test detaches
// (to checkpoint it), and attaches again as a new descriptor (restored).
// Both directions carry internal/stream's bytes and are checked on
// arrival, so a lost, repeated or reordered byte fails the connection, as
// does a reset (ECONNRESET, EPIPE) at either end.
//
// One goroutine serves every connection over epoll, and writes are paced:
// up to a thousand non-blocking writes per tick, in turn, so that a thousand
// connections streaming both ways cost a fraction of one core rather than
// all the machine has (four goroutines per connection writing as fast as
// they can did not fit in a test's time on two cores).
package flows

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gosoccr/gosoccr/internal/stream"
	"golang.org/x/sys/unix"
)

// Directions of the byte streams.
const (
	Up   = 0 // client to peer
	Down = 1 // peer to client
)

// The two ends of a connection.
const (
	peer   = 0 // writes Down, reads Up
	client = 1 // writes Up, reads Down
)

// Options pace the streams; zero values take the defaults.
type Options struct {
	Tick          time.Duration // how often writes are made (20 ms)
	WritesPerTick int           // at most this many writes per tick, over all ends (1024)
	Chunk         int           // bytes per write (2 KiB)
}

// Set is a set of streaming connections and the loop that serves them.
type Set struct {
	opt   Options
	epfd  int
	evfd  int // wakes the loop
	mu    sync.Mutex
	conns []*Conn
	byFD  map[int]*end
	next  int // the next end to write, in turn
	state int // running, finishing, closed
	done  chan struct{}
	buf   []byte
	// loopErr ends the loop: epoll_wait failed
	loopErr error
}

const (
	running = iota
	finishing
	closed
)

// Conn is one connection of a Set.
type Conn struct {
	ends     [2]end
	written  [2]int64 // bytes written, by direction
	verified [2]int64 // bytes read and checked, by direction
	mark     [2]int64 // verified when the client was attached again
	restored bool
	err      error
	// the peer's longest time without a byte received
	lastPeer time.Time
	maxGap   time.Duration
}

type end struct {
	c    *Conn
	side int
	fd   int // -1 when detached
	shut bool
	eof  bool
}

// New starts the loop of an empty set.
func New(o Options) (*Set, error) {
	if o.Tick <= 0 {
		o.Tick = 20 * time.Millisecond
	}
	if o.WritesPerTick <= 0 {
		o.WritesPerTick = 1024
	}
	if o.Chunk <= 0 {
		o.Chunk = 2 << 10
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("flows: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("flows: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("flows: epoll_ctl eventfd: %w", err)
	}
	s := &Set{opt: o, epfd: epfd, evfd: evfd, byFD: map[int]*end{}, done: make(chan struct{}), buf: make([]byte, 64<<10)}
	go s.loop()
	return s, nil
}

// Add adds a connection: peerFD and clientFD are its two ends, connected
// to each other, with nothing sent yet. The set owns both descriptors from
// now on (it makes them non-blocking), also when Add fails.
func (s *Set) Add(peerFD, clientFD int) (*Conn, error) {
	c := &Conn{lastPeer: time.Now()}
	c.ends[peer] = end{c: c, side: peer, fd: -1}
	c.ends[client] = end{c: c, side: client, fd: -1}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, c)
	err := s.attach(&c.ends[peer], peerFD)
	if err2 := s.attach(&c.ends[client], clientFD); err == nil {
		err = err2
	}
	return c, err
}

func (s *Set) attach(e *end, fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("flows: fd %d: O_NONBLOCK: %w", fd, err)
	}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("flows: fd %d: epoll_ctl: %w", fd, err)
	}
	e.fd = fd
	s.byFD[fd] = e
	return nil
}

func (s *Set) detach(e *end) int {
	fd := e.fd
	if fd < 0 {
		return -1
	}
	unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	delete(s.byFD, fd)
	e.fd = -1
	return fd
}

// Detach takes the clients of conns out of the set and hands their
// descriptors to the caller (for a checkpoint); the peers go on streaming.
// Nothing of the set touches the descriptors once it returns.
func (s *Set) Detach(conns []*Conn) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	fds := make([]int, len(conns))
	for i, c := range conns {
		fds[i] = s.detach(&c.ends[client])
	}
	return fds
}

// Attach gives the clients of conns their descriptors again, fds[i] for
// conns[i] (restored sockets); the set owns them from now on.
func (s *Set) Attach(conns []*Conn, fds []int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i, c := range conns {
		c.mark = c.verified
		c.restored = true
		if err := s.attach(&c.ends[client], fds[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Conn) fail(format string, a ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, a...)
	}
}

func (s *Set) loop() {
	defer close(s.done)
	events := make([]unix.EpollEvent, 512)
	nextTick := time.Now()
	for {
		wait := time.Until(nextTick)
		n, err := unix.EpollWait(s.epfd, events, max(0, int(wait/time.Millisecond)))
		s.mu.Lock()
		if err != nil && err != unix.EINTR {
			s.loopErr = fmt.Errorf("flows: epoll_wait: %w", err)
			s.mu.Unlock()
			return
		}
		if s.state == closed {
			s.mu.Unlock()
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == s.evfd {
				var b [8]byte
				unix.Read(s.evfd, b[:])
				continue
			}
			if e := s.byFD[int(ev.Fd)]; e != nil {
				s.read(e)
			}
		}
		if now := time.Now(); !now.Before(nextTick) {
			s.tick(now)
			nextTick = now.Add(s.opt.Tick)
		}
		s.mu.Unlock()
	}
}

// read reads what end e has, once, and checks it.
func (s *Set) read(e *end) {
	c := e.c
	dir := Up
	if e.side == client {
		dir = Down
	}
	for range 4 {
		n, err := unix.Read(e.fd, s.buf)
		if n > 0 {
			if cerr := stream.Check(uint8(dir), c.verified[dir], s.buf[:n]); cerr != nil {
				c.fail("direction %d: %w", dir, cerr)
			}
			c.verified[dir] += int64(n)
			if e.side == peer {
				c.progress(time.Now())
			}
			if n == len(s.buf) {
				continue
			}
			return
		}
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil:
			c.fail("direction %d: read after %d bytes: %w", dir, c.verified[dir], err)
			s.detachEOF(e)
		case s.state != finishing:
			c.fail("direction %d: end of stream after %d bytes, before the test ended", dir, c.verified[dir])
			s.detachEOF(e)
		default:
			if w := c.written[dir]; c.verified[dir] != w {
				c.fail("direction %d: end of stream after %d of %d bytes", dir, c.verified[dir], w)
			}
			s.stopReading(e)
			s.wake()
		}
		return
	}
}

// detachEOF ends both ways of a failed end.
func (s *Set) detachEOF(e *end) {
	e.shut = true
	s.stopReading(e)
}

// stopReading marks end e at its end of stream and stops its events (a
// readable end of stream would wake the loop for ever).
func (s *Set) stopReading(e *end) {
	e.eof = true
	unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, e.fd, &unix.EpollEvent{Fd: int32(e.fd)})
}

func (c *Conn) progress(now time.Time) {
	if g := now.Sub(c.lastPeer); g > c.maxGap {
		c.maxGap = g
	}
	c.lastPeer = now
}

// tick makes the writes of one tick: the next ends in turn, or, when
// finishing, shuts every attached end's writing down.
func (s *Set) tick(now time.Time) {
	ends := 2 * len(s.conns)
	if ends == 0 {
		return
	}
	if s.state == finishing {
		for _, c := range s.conns {
			for i := range c.ends {
				if e := &c.ends[i]; e.fd >= 0 && !e.shut {
					e.shut = true
					if err := unix.Shutdown(e.fd, unix.SHUT_WR); err != nil {
						c.fail("end %d: shutdown: %w", e.side, err)
					}
				}
			}
		}
		return
	}
	var chunk [1 << 16]byte
	b := chunk[:min(s.opt.Chunk, len(chunk))]
	for range min(s.opt.WritesPerTick, ends) {
		i := s.next % ends
		s.next++
		c := s.conns[i/2]
		e := &c.ends[i%2]
		if e.fd < 0 || e.shut {
			continue
		}
		dir := Down
		if e.side == client {
			dir = Up
		}
		stream.Fill(uint8(dir), c.written[dir], b)
		n, err := unix.Write(e.fd, b)
		if n > 0 {
			c.written[dir] += int64(n)
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			c.fail("direction %d: write after %d bytes: %w", dir, c.written[dir], err)
			s.detachEOF(e)
		}
	}
}

func (s *Set) wake() {
	var one = [8]byte{1}
	unix.Write(s.evfd, one[:])
}

// Stats are what the set saw.
type Stats struct {
	Bytes        [2]int64      // bytes checked, by direction
	AfterRestore [2]int64      // of which after Attach
	MaxPeerGap   time.Duration // the longest time a peer received nothing
}

// Finish ends the streams: both ends of every attached connection stop
// writing and shut down, and each reads the other to the end, within
// timeout. It returns what flowed and an error naming every connection
// that lost, repeated or reordered a byte, saw a reset, did not reach the
// end, or (restored) had nothing flow after its restore in a direction.
func (s *Set) Finish(timeout time.Duration) (Stats, error) {
	s.mu.Lock()
	s.state = finishing
	s.mu.Unlock()
	s.wake()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		all := true
		for _, c := range s.conns {
			for i := range c.ends {
				if e := &c.ends[i]; e.fd >= 0 && !e.eof && c.err == nil {
					all = false
				}
			}
		}
		if all || s.loopErr != nil || time.Now().After(deadline) {
			break
		}
		s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	defer s.mu.Unlock()
	var st Stats
	var errs []error
	if s.loopErr != nil {
		errs = append(errs, s.loopErr)
	}
	for i, c := range s.conns {
		for d := range 2 {
			st.Bytes[d] += c.verified[d]
			if c.restored {
				st.AfterRestore[d] += c.verified[d] - c.mark[d]
			}
		}
		st.MaxPeerGap = max(st.MaxPeerGap, c.maxGap)
		err := c.err
		for j := range c.ends {
			if e := &c.ends[j]; err == nil && e.fd >= 0 && !e.eof {
				d := Up
				if e.side == client {
					d = Down
				}
				err = fmt.Errorf("direction %d: not at its end after %v: %d of %d bytes", d, timeout, c.verified[d], c.written[d])
			}
		}
		if err == nil && c.restored {
			for d := range 2 {
				if c.verified[d] == c.mark[d] {
					err = fmt.Errorf("direction %d: nothing flowed after the restore", d)
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("connection %d: %w", i, err))
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more connections", len(errs)-10))
	}
	return st, errors.Join(errs...)
}

// Close stops the loop and closes every descriptor the set holds.
func (s *Set) Close() {
	s.mu.Lock()
	if s.state == closed {
		s.mu.Unlock()
		return
	}
	s.state = closed
	s.mu.Unlock()
	s.wake()
	<-s.done
	for fd := range s.byFD {
		unix.Close(fd)
	}
	s.byFD = nil
	unix.Close(s.evfd)
	unix.Close(s.epfd)
}

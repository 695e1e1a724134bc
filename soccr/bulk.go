package soccr

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Result is the outcome of a bulk operation for one connection, at the
// same index as its input. Err is nil or an *OpError that names the socket
// and the step that failed; one connection's failure changes nothing for
// the others.
type Result struct {
	State *State // CheckpointAll: the saved connection
	FD    int    // RestoreAll: the new socket (the caller's), -1 on failure
	Conn  *Conn  // RestorePausedAll: the paused handle, nil on failure
	Err   error
}

// CheckpointAll checkpoints every socket of fds as Pause, SaveWith and
// Release do for one, spread over GOMAXPROCS threads. Each checkpointed
// socket is left in repair mode for the caller to close (the peer then sees
// nothing); a socket whose checkpoint failed is resumed, as after a failed
// Save, and its Result says why. o.Alloc, if set, is called from several
// goroutines at once; if nil, the queues are carved from shared blocks.
func CheckpointAll(fds []int, o SaveOptions) []Result {
	return checkpointAll(fds, o, false)
}

// CheckpointCloseAll is CheckpointAll for sockets the caller is done with,
// as when they move to another host: each socket checkpointed is closed by
// the thread that checkpointed it (in repair mode: the peer sees nothing),
// so that the closes are spread over the cores too, and its Result.FD is
// -1. A socket whose checkpoint failed stays open and goes on.
func CheckpointCloseAll(fds []int, o SaveOptions) []Result {
	return checkpointAll(fds, o, true)
}

func checkpointAll(fds []int, o SaveOptions, closeDone bool) []Result {
	res := make([]Result, len(fds))
	for i := range res {
		res[i].FD = fds[i]
	}
	if o.Alloc == nil {
		a := &arena{}
		o.Alloc = a.alloc
	}
	parallel(len(fds), func(i int) {
		r := &res[i]
		r.State, r.Err = checkpointOne(fds[i], &o)
		if closeDone && r.Err == nil {
			unix.Close(fds[i])
			r.FD = -1
		}
	})
	return res
}

// arena hands out the queue buffers of CheckpointAll from blocks of
// arenaBlock bytes: one small allocation per queue would round each up to
// a size class (a queue of 4,097 bytes takes 4,864).
// The states of one call share blocks, so a block lives as long as any
// state carved from it.
type arena struct {
	mu  sync.Mutex
	buf []byte
}

const arenaBlock = 1 << 20

func (a *arena) alloc(n int) []byte {
	if n > arenaBlock/8 {
		return make([]byte, n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.buf) < n {
		a.buf = make([]byte, arenaBlock)
	}
	b := a.buf[:n:n]
	a.buf = a.buf[n:]
	return b
}

func checkpointOne(fd int, o *SaveOptions) (*State, error) {
	c, err := Pause(fd)
	if err != nil {
		return nil, err
	}
	st, err := c.SaveWith(*o)
	if err != nil {
		c.Resume() // the connection goes on; the save error is the one to report
		return nil, err
	}
	c.Release()
	return st, nil
}

// RestoreAll restores every state into a new socket, as Restore does for
// one, spread over GOMAXPROCS threads, each connection resumed by the
// thread that restored it, right after its restore (see ResumeAll for how
// the sending paces itself). Result.FD is the new socket, which the caller
// owns. The sockets are made in the network namespace of the calling
// thread, whichever threads do the work. On failure a connection's Result
// holds the error and nothing of it is left open.
func RestoreAll(states []*State) []Result {
	return restoreAll(states, true)
}

// RestorePausedAll is RestoreAll without the resume: every restored socket
// stays paused (see RestorePaused), so that the caller can lift a network
// lock first and then call ResumeAll. Result.Conn is the paused handle and
// Result.FD its socket, which the caller owns.
func RestorePausedAll(states []*State) []Result {
	return restoreAll(states, false)
}

// restoreAll is RestoreAll (resume) and RestorePausedAll. Resuming each
// connection as soon as it is restored finds its socket still in the CPU's
// caches; a second pass over thousands of sockets would not.
func restoreAll(states []*State, resume bool) []Result {
	res := make([]Result, len(states))
	err := inCallerNetns(len(states), func(i int) {
		r := &res[i]
		r.FD = -1
		if states[i] == nil {
			r.Err = &OpError{Op: "restore", Step: StepCheck, FD: -1, Err: fmt.Errorf("%w: nil state", ErrBadState)}
			return
		}
		if resume {
			r.FD, r.Err = Restore(states[i])
			return
		}
		c, err := RestorePaused(states[i])
		if err != nil {
			r.Err = err
			return
		}
		r.Conn, r.FD = c, c.FD()
	})
	if err != nil {
		for i := range res {
			res[i] = Result{FD: -1, Err: &OpError{Op: "restore", Step: StepBind, FD: -1, Err: err}}
		}
	}
	return res
}

// ResumeAll resumes every non-nil handle of conns over GOMAXPROCS
// threads and returns one error per handle (nil for a nil handle). A handle
// whose Resume failed is still in repair mode: the caller closes its socket.
//
// Resuming sends each connection's unacknowledged bytes at once (see
// Restore). Thousands of sockets sending together from timers overflow the
// loopback input backlog (net.core.netdev_max_backlog) and the dropped
// segments wait for another timeout; here each send happens in the
// resuming thread's system call, whose softirq delivers it before the next
// one starts, so the sending paces itself to what the kernel can take (no
// retransmission for 5,000 connections at once in BenchmarkTimeToResume).
func ResumeAll(conns []*Conn) []error {
	errs := make([]error, len(conns))
	parallel(len(conns), func(i int) {
		if conns[i] != nil {
			errs[i] = conns[i].Resume()
		}
	})
	return errs
}

// workers returns how many goroutines to use for n connections: one for
// small counts, where starting threads would cost more than it saves.
func workers(n int) int {
	const minPerWorker = 32
	return max(1, min(runtime.GOMAXPROCS(0), n/minPerWorker))
}

// parallel calls fn(i) for every i < n over workers(n) goroutines, which
// take the indices in small chunks. With one worker it runs on the calling
// goroutine. Otherwise each worker calls setup first, if set: when setup
// fails the worker takes no index; it calls the function setup returns
// when it is done.
func parallel(n int, fn func(i int)) { parallelSetup(n, nil, fn) }

func parallelSetup(n int, setup func() (func(), error), fn func(i int)) {
	w := workers(n)
	if w == 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	const chunk = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if setup != nil {
				done, err := setup()
				if err != nil {
					return // the other workers take its share
				}
				defer done()
			}
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+chunk, n); i++ {
					fn(i)
				}
			}
		}()
	}
	wg.Wait()
}

// inCallerNetns is parallel for work that creates sockets: every worker
// runs on a thread in the network namespace of the calling thread. A
// goroutine may run on any thread, and a caller that locked its thread into
// another namespace (as netns.Do does) would otherwise get sockets in the
// wrong one. Each worker locks its thread, enters the caller's namespace if
// it is not there already, and goes back afterwards; a thread that cannot
// go back stays locked and exits with its goroutine. A worker that cannot
// enter takes no work; if none can, the work runs on the calling thread.
func inCallerNetns(n int, fn func(i int)) error {
	if workers(n) == 1 {
		parallel(n, fn) // on the calling goroutine, so the caller's thread
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nsfd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the caller's network namespace: %w", err)
	}
	defer unix.Close(nsfd)
	var want unix.Stat_t
	if err := unix.Fstat(nsfd, &want); err != nil {
		return fmt.Errorf("fstat the caller's network namespace: %w", err)
	}
	var entered atomic.Int32
	setup := func() (func(), error) {
		runtime.LockOSThread()
		var own unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &own); err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		if own.Ino == want.Ino && own.Dev == want.Dev {
			entered.Add(1)
			return runtime.UnlockOSThread, nil
		}
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			unix.Close(orig)
			runtime.UnlockOSThread()
			return nil, err
		}
		entered.Add(1)
		return func() {
			if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			} // else: the thread stays locked and exits with the goroutine
			unix.Close(orig)
		}, nil
	}
	done := make([]bool, n)
	parallelSetup(n, setup, func(i int) { fn(i); done[i] = true })
	if entered.Load() == 0 {
		// No worker could enter the namespace: do it all here, on the
		// caller's own thread.
		for i := range n {
			if !done[i] {
				fn(i)
			}
		}
	}
	return nil
}

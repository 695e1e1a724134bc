package soccr_test

import (
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/internal/benchconn"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// resetPeakRSS makes the kernel forget the process's peak RSS (VmHWM), so
// that peakRSS reports the peak of what follows only.
func resetPeakRSS() {
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns VmHWM of /proc/self/status in MiB.
func peakRSS() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkBulk checkpoints and restores n=9,000 loopback connections with
// 4 KiB unread each way (2 descriptors per connection, plus one for each
// restored socket while its old one is closed: 18,000 at the peak, under
// the hard limit of 20,000), one by one (single) and with
// CheckpointCloseAll and RestoreAll (bulk). It reports microseconds per connection for each
// phase, the total, and the peak RSS of the phases (base-RSS: the process
// before them) next to the queue bytes the saved states hold.
func BenchmarkBulk(b *testing.B) {
	const n, queue = 9000, 4 << 10
	for _, mode := range []string{"single", "bulk"} {
		b.Run(fmt.Sprintf("n=%d/queue=%d/%s", n, queue, mode), func(b *testing.B) {
			ns := netnstest.New(b)
			if err := benchconn.RaiseNoFile(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var ckpt, rst time.Duration
			var peak, base, held float64
			for b.Loop() {
				b.StopTimer()
				ns.MustDo(b, func() error {
					conns, err := benchconn.Setup(benchconn.Options{N: n, Queue: queue})
					if err != nil {
						return err
					}
					defer func() { benchconn.Close(conns) }()
					resetPeakRSS()
					base = max(base, peakRSS())
					b.StartTimer()
					t0 := time.Now()
					var states []*soccr.State
					if mode == "single" {
						if states, err = benchconn.Checkpoint(conns); err != nil {
							return err
						}
					} else {
						fds := make([]int, len(conns))
						for i, c := range conns {
							fds[i] = c.Client
						}
						states = make([]*soccr.State, len(conns))
						// Closed by the workers, as the single mode
						// closes each socket after its checkpoint.
						for i, r := range soccr.CheckpointCloseAll(fds, soccr.SaveOptions{NoSockopts: true}) {
							if r.Err != nil {
								return r.Err
							}
							states[i] = r.State
							conns[i].Client = -1
						}
					}
					t1 := time.Now()
					bytes := 0
					for _, st := range states {
						bytes += len(st.RecvQueue) + len(st.SendQueue)
					}
					held = float64(bytes) / (1 << 20)
					if mode == "single" {
						if err := benchconn.Restore(conns, states); err != nil {
							return err
						}
					} else {
						for i, r := range soccr.RestoreAll(states) {
							if r.Err != nil {
								return r.Err
							}
							conns[i].Client = r.FD
						}
					}
					t2 := time.Now()
					b.StopTimer()
					peak = max(peak, peakRSS())
					ckpt += t1.Sub(t0)
					rst += t2.Sub(t1)
					return nil
				})
				b.StartTimer()
			}
			per := float64(b.N * n)
			b.ReportMetric(float64(ckpt.Microseconds())/per, "µs-checkpoint/conn")
			b.ReportMetric(float64(rst.Microseconds())/per, "µs-restore/conn")
			b.ReportMetric(float64((ckpt+rst).Milliseconds())/float64(b.N), "ms-total")
			b.ReportMetric(peak, "peak-RSS-MiB")
			b.ReportMetric(base, "base-RSS-MiB")
			b.ReportMetric(held, "saved-queues-MiB")
		})
	}
}

// BenchmarkTimeToResume measures how long bytes that were sent but never
// acknowledged at checkpoint take to reach the peer after the restored
// connections are resumed all at once: n connections each get 4 KiB
// written in repair mode (sent as far as the socket knows, as if lost),
// are checkpointed, restored paused, then resumed with ResumeAll; an epoll
// on the peers records when each first has bytes to read. It reports the
// median and the largest delay, and the TCP retransmissions (RetransSegs)
// and loss probes (TCPLossProbes) of the namespace. mode=push is the
// engine's resend at Resume; mode=timer the timer path it replaces (what
// libsoccr does), run only with GOSOCCR_BENCH_TIMER=1 since it takes
// seconds.
func BenchmarkTimeToResume(b *testing.B) {
	modes := []string{"push"}
	if os.Getenv("GOSOCCR_BENCH_TIMER") == "1" {
		modes = append(modes, "timer")
	}
	for _, mode := range modes {
		for _, n := range []int{1, 1000, 5000} {
			b.Run(fmt.Sprintf("n=%d/%s", n, mode), func(b *testing.B) {
				ns := netnstest.New(b)
				if err := benchconn.RaiseNoFile(); err != nil {
					b.Fatal(err)
				}
				defer soccr.SetFastResend(soccr.SetFastResend(mode == "push"))
				var p50, pmax, call, retrans, probes float64
				for b.Loop() {
					ns.MustDo(b, func() error {
						d, r, p, err := timeToResume(n)
						if err != nil {
							return err
						}
						p50 += float64(d[len(d)/2].Microseconds()) / 1000
						pmax += float64(d[len(d)-1].Microseconds()) / 1000
						call += float64(resumeCall.Microseconds()) / 1000
						retrans += float64(r)
						probes += float64(p)
						return nil
					})
				}
				k := float64(b.N)
				b.ReportMetric(p50/k, "ms-first-byte-p50")
				b.ReportMetric(pmax/k, "ms-first-byte-max")
				b.ReportMetric(call/k, "ms-ResumeAll")
				b.ReportMetric(retrans/k, "retrans-segs")
				b.ReportMetric(probes/k, "loss-probes")
			})
		}
	}
}

// resumeCall is how long the last ResumeAll of timeToResume took.
var resumeCall time.Duration

// timeToResume runs one round of BenchmarkTimeToResume in the calling
// thread's namespace and returns the sorted delays.
func timeToResume(n int) ([]time.Duration, int, int, error) {
	conns, err := benchconn.Setup(benchconn.Options{N: n})
	if err != nil {
		return nil, 0, 0, err
	}
	defer func() { benchconn.Close(conns) }()
	lost := queueBytes(4 << 10)
	fds := make([]int, n)
	for i, c := range conns {
		if err := addUnacked(c.Client, lost); err != nil {
			return nil, 0, 0, err
		}
		fds[i] = c.Client
	}
	states := make([]*soccr.State, n)
	for i, r := range soccr.CheckpointAll(fds, soccr.SaveOptions{NoSockopts: true}) {
		if r.Err != nil {
			return nil, 0, 0, r.Err
		}
		states[i] = r.State
		unix.Close(conns[i].Client)
		conns[i].Client = -1
	}
	paused := make([]*soccr.Conn, n)
	for i, r := range soccr.RestorePausedAll(states) {
		if r.Err != nil {
			return nil, 0, 0, r.Err
		}
		paused[i], conns[i].Client = r.Conn, r.FD
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, 0, 0, err
	}
	defer unix.Close(ep)
	for i, c := range conns {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(i)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, c.Server, &ev); err != nil {
			return nil, 0, 0, err
		}
	}
	// The peers are watched from another goroutine while ResumeAll runs,
	// so that each delay is when its bytes arrived, not when ResumeAll
	// returned.
	type watched struct {
		delays []time.Duration
		err    error
	}
	start := make(chan time.Time, 1)
	done := make(chan watched, 1)
	go func() {
		t0 := <-start
		delays := make([]time.Duration, 0, n)
		evs := make([]unix.EpollEvent, 1024)
		deadline := t0.Add(120 * time.Second)
		for len(delays) < n {
			k, err := unix.EpollWait(ep, evs, 100)
			if err != nil && err != unix.EINTR {
				done <- watched{err: err}
				return
			}
			now := time.Now()
			for range max(k, 0) {
				delays = append(delays, now.Sub(t0))
			}
			if now.After(deadline) {
				done <- watched{err: fmt.Errorf("%d of %d peers got nothing in %v", n-len(delays), n, now.Sub(t0))}
				return
			}
		}
		done <- watched{delays: delays}
	}()
	r0, p0 := tcpCounters()
	t0 := time.Now()
	start <- t0
	errs := soccr.ResumeAll(paused)
	resumeCall = time.Since(t0)
	w := <-done
	for i, err := range errs {
		if err != nil {
			return nil, 0, 0, fmt.Errorf("resume %d: %w", i, err)
		}
	}
	if w.err != nil {
		return nil, 0, 0, w.err
	}
	delays := w.delays
	r1, p1 := tcpCounters()
	slices.Sort(delays)
	return delays, r1 - r0, p1 - p0, nil
}

// tcpCounters reads RetransSegs (Tcp) and TCPLossProbes (TcpExt) of the
// calling thread's namespace.
func tcpCounters() (retrans, probes int) {
	get := func(file, prefix, name string) int {
		b, _ := os.ReadFile(file)
		var names []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, prefix) {
				continue
			}
			f := strings.Fields(l)[1:]
			if names == nil {
				names = f
				continue
			}
			if i := slices.Index(names, name); i >= 0 && i < len(f) {
				v, _ := strconv.Atoi(f[i])
				return v
			}
		}
		return 0
	}
	return get("/proc/thread-self/net/snmp", "Tcp: ", "RetransSegs"),
		get("/proc/thread-self/net/netstat", "TcpExt: ", "TCPLossProbes")
}

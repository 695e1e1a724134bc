package soccr_test

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/internal/benchconn"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// BenchmarkCost says how the cost of checkpoint and restore grows with the
// number of connections n and the bytes queued in each: for every cell of
// n × queue it checkpoints n loopback connections and restores them, one
// by one (single: Pause, SaveWith, Release, close; then Restore) or with
// CheckpointAll and RestoreAll (bulk). It reports microseconds per
// connection for each phase (ckpt-µs/conn, restore-µs/conn), the time of
// both phases for all n (total-ms), the peak RSS of the phases (VmHWM,
// reset before them) next to the bytes the saved states hold (queued-MiB),
// and whether the queue was filled both ways or one way (ways). The freed
// heap goes back to the kernel before each round (resetPeakRSS), so that
// the saved queues land in pages never touched before, as in a process's
// first checkpoint: on a 2-core VM (Linux 6.18) the page faults cost more
// than the copy (64 KiB: 23-30 µs into touched buffers, 57-63 µs into new
// ones).
//
// Only n=100/queue=0 runs by default, so that `make test` stays fast;
// GOSOCCR_COST=1 runs the whole grid (test/cost.sh, `make cost`). A cell
// that this machine cannot hold is skipped with the reason (see costPlan).
func BenchmarkCost(b *testing.B) {
	ns, qs := []int{100}, []int{0}
	if os.Getenv("GOSOCCR_COST") == "1" {
		ns = []int{100, 1000, 9000}
		qs = []int{0, 4 << 10, 64 << 10, 4 << 20}
	}
	for _, n := range ns {
		for _, q := range qs {
			for _, mode := range []string{"single", "bulk"} {
				b.Run(fmt.Sprintf("n=%d/queue=%d/%s", n, q, mode), func(b *testing.B) {
					benchCost(b, n, q, mode == "bulk")
				})
			}
		}
	}
}

func benchCost(b *testing.B, n, q int, bulk bool) {
	ns := netnstest.New(b)
	if err := benchconn.RaiseNoFile(); err != nil {
		b.Fatal(err)
	}
	ways, why := costPlan(n, q)
	if ways == 0 {
		b.Skipf("n/a (%s)", why)
	}
	b.ReportAllocs()
	var ckpt, rst time.Duration
	var peak, held float64
	for b.Loop() {
		b.StopTimer()
		if why := tcpMemBusy(int64(ways) * int64(n) * queueCharge(q)); why != "" {
			b.Skipf("n/a (%s)", why)
		}
		ns.MustDo(b, func() error {
			conns, err := costSetup(n, q, ways)
			if err != nil {
				return err
			}
			defer func() { benchconn.Close(conns) }()
			resetPeakRSS()
			b.StartTimer()
			t0 := time.Now()
			states, err := costCheckpoint(conns, bulk)
			if err != nil {
				return err
			}
			t1 := time.Now()
			if err := costRestore(conns, states, bulk); err != nil {
				return err
			}
			t2 := time.Now()
			b.StopTimer()
			peak = max(peak, peakRSS())
			ckpt += t1.Sub(t0)
			rst += t2.Sub(t1)
			bytes := 0
			for _, st := range states {
				bytes += len(st.RecvQueue) + len(st.SendQueue)
			}
			held = float64(bytes) / (1 << 20)
			// A restore that lost bytes would look cheap: check that
			// every client has its queue back.
			for i, c := range conns {
				inq, err := unix.IoctlGetInt(c.Client, unix.SIOCINQ)
				if err != nil {
					return err
				}
				if inq != q {
					return fmt.Errorf("connection %d: %d bytes queued after restore, want %d", i, inq, q)
				}
			}
			return nil
		})
		b.StartTimer()
	}
	per := float64(b.N * n)
	b.ReportMetric(float64(ckpt.Nanoseconds())/1e3/per, "ckpt-µs/conn")
	b.ReportMetric(float64(rst.Nanoseconds())/1e3/per, "restore-µs/conn")
	b.ReportMetric(float64((ckpt+rst).Nanoseconds())/1e6/float64(b.N), "total-ms")
	b.ReportMetric(peak, "peak-RSS-MiB")
	b.ReportMetric(held, "queued-MiB")
	b.ReportMetric(float64(ways), "ways")
}

// queueCharge estimates the TCP memory that the kernel charges for q
// bytes in one socket's queue: the payload, the skbs around it (measured
// on loopback: 6% over the payload at 64 KiB, 1% at 4 MiB; each socket's
// charge is rounded up to pages, so that a 4 KiB queue costs 8 KiB), with
// room to spare.
func queueCharge(q int) int64 {
	if q == 0 {
		return 0
	}
	page := int64(os.Getpagesize())
	return (int64(q) + int64(q)/8 + 1024 + page - 1) / page * page
}

// costPlan says how a cell runs: with its queue filled both ways (2),
// only from the server to the client (1), or not at all (0, and why).
//
// The limit is the host's TCP memory, net.ipv4.tcp_mem (pages, shared by
// every socket of every namespace): under its first value the kernel does
// not regulate TCP memory; over its second it shrinks windows and collapses
// queues (the cost would be the kernel's, not ours, and other processes'
// connections would suffer); at its third it drops what arrives. A cell
// runs when its queues stay under the first value.
//
// The bytes that the server holds unread are not part of the client's
// checkpoint (the client's send queue is empty once they are acknowledged),
// so a cell that fits only one way keeps the direction that is saved, and
// its saved states are the same as with two ways. One way is used only for
// queues that the default buffers hold (64 KiB): larger ones need buffers
// raised before connect, which benchconn.Setup does for two ways only.
func costPlan(n, q int) (ways int, why string) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && uint64(2*n+64) > rl.Max {
		return 0, fmt.Sprintf("%d connections need %d descriptors, RLIMIT_NOFILE allows %d", n, 2*n, rl.Max)
	}
	low, _, high, err := tcpMem()
	if err != nil {
		return 0, err.Error()
	}
	need := func(ways int) int64 { return int64(ways) * int64(n) * queueCharge(q) }
	oneWay := float64(n) * float64(q)
	avail := memAvailable()
	switch {
	case need(2) <= low:
		return 2, ""
	case need(1) <= low && q <= 64<<10:
		return 1, ""
	case avail > 0 && int64(oneWay) > avail:
		// The saved states alone would hold n×queue in the process.
		return 0, fmt.Sprintf("n×queue = %s: over net.ipv4.tcp_mem max %s and available RAM %s",
			mib(oneWay), mib(float64(high)), mib(float64(avail)))
	case need(1) > high:
		return 0, fmt.Sprintf("n×queue = %s one way: over net.ipv4.tcp_mem max %s", mib(oneWay), mib(float64(high)))
	case q > 64<<10:
		return 0, fmt.Sprintf("n×queue = %s: two ways over net.ipv4.tcp_mem low %s, one way needs buffers raised before connect", mib(oneWay), mib(float64(low)))
	default:
		return 0, fmt.Sprintf("n×queue = %s one way: over net.ipv4.tcp_mem low %s", mib(oneWay), mib(float64(low)))
	}
}

// tcpMemBusy says why a cell whose queues need bytes of TCP memory should
// not run now: the sockets of other processes already hold so much that
// the cell would bring the host under TCP memory pressure. Empty if it can
// run.
func tcpMemBusy(bytes int64) string {
	_, pressure, _, err := tcpMem()
	if err != nil {
		return err.Error()
	}
	if used := tcpMemUsed(); used+bytes > pressure {
		return fmt.Sprintf("other sockets hold %s of TCP memory: %s more is over net.ipv4.tcp_mem pressure %s",
			mib(float64(used)), mib(float64(bytes)), mib(float64(pressure)))
	}
	return ""
}

// tcpMem returns net.ipv4.tcp_mem in bytes.
func tcpMem() (low, pressure, high int64, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_mem")
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0, 0, 0, fmt.Errorf("net.ipv4.tcp_mem: %q", b)
	}
	var v [3]int64
	for i := range v {
		p, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("net.ipv4.tcp_mem: %w", err)
		}
		v[i] = p * int64(os.Getpagesize())
	}
	return v[0], v[1], v[2], nil
}

// tcpMemUsed returns the TCP memory of the host in bytes ("TCP: ... mem"
// of /proc/net/sockstat, in pages).
func tcpMemUsed() int64 {
	b, _ := os.ReadFile("/proc/net/sockstat")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] == "mem" {
				p, _ := strconv.ParseInt(f[i+1], 10, 64)
				return p * int64(os.Getpagesize())
			}
		}
	}
	return 0
}

// memAvailable returns MemAvailable of /proc/meminfo in bytes, 0 if unknown.
func memAvailable() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(bytes float64) string {
	if bytes >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", bytes/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", bytes/(1<<20))
}

// costSetup makes n connections with q unread bytes in each client's
// receive queue and, for ways = 2, q in each server's (see benchconn.Setup).
func costSetup(n, q, ways int) ([]benchconn.Conn, error) {
	if ways == 2 || q == 0 {
		return benchconn.Setup(benchconn.Options{N: n, Queue: q})
	}
	conns, err := benchconn.Setup(benchconn.Options{N: n})
	if err != nil {
		return nil, err
	}
	buf := make([]byte, q)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range conns {
		for b := buf; len(b) > 0; {
			k, err := unix.SendmsgN(c.Server, b, nil, nil, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				benchconn.Close(conns)
				return nil, fmt.Errorf("write: %d bytes left: %w", len(b), err)
			}
			b = b[k:]
		}
	}
	// Every byte in the client's receive queue.
	for _, c := range conns {
		for {
			inq, err := unix.IoctlGetInt(c.Client, unix.SIOCINQ)
			if err != nil {
				benchconn.Close(conns)
				return nil, err
			}
			if inq >= q {
				break
			}
			if time.Now().After(deadline) {
				benchconn.Close(conns)
				return nil, fmt.Errorf("receive queue holds %d of %d bytes", inq, q)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return conns, nil
}

// costCheckpoint checkpoints every client and closes it in repair mode.
func costCheckpoint(conns []benchconn.Conn, bulk bool) ([]*soccr.State, error) {
	if !bulk {
		return benchconn.Checkpoint(conns)
	}
	fds := make([]int, len(conns))
	for i, c := range conns {
		fds[i] = c.Client
	}
	states := make([]*soccr.State, len(conns))
	var errs []error
	for i, r := range soccr.CheckpointAll(fds, soccr.SaveOptions{NoSockopts: true}) {
		if r.Err != nil {
			errs = append(errs, r.Err)
			continue
		}
		states[i] = r.State
		unix.Close(conns[i].Client)
		conns[i].Client = -1
	}
	return states, errors.Join(errs...)
}

// costRestore restores every state into a new client socket.
func costRestore(conns []benchconn.Conn, states []*soccr.State, bulk bool) error {
	if !bulk {
		return benchconn.Restore(conns, states)
	}
	var errs []error
	for i, r := range soccr.RestoreAll(states) {
		if r.Err != nil {
			errs = append(errs, r.Err)
			continue
		}
		conns[i].Client = r.FD
	}
	return errors.Join(errs...)
}

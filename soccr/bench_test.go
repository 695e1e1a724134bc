package soccr_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/internal/benchconn"
	"github.com/gosoccr/gosoccr/internal/netnstest"
)

// BenchmarkCheckpointRestore checkpoints n connections one by one (pause,
// save with queues and addresses, close in repair mode), then restores them
// one by one (socket, pause, restore, resume). It reports microseconds per
// connection for each phase and the peak RSS of the process.
func BenchmarkCheckpointRestore(b *testing.B) {
	for _, bc := range []struct {
		n      int
		queue  int
		unsent bool
	}{
		{1000, 16 << 10, false},
		{1000, 16 << 10, true},
		{100, 0, false},
		{100, 4 << 10, false},
		{100, 64 << 10, false},
		{10, 4 << 20, false},
	} {
		name := fmt.Sprintf("n=%d/queue=%d", bc.n, bc.queue)
		if bc.unsent {
			name += "/unsent"
		}
		b.Run(name, func(b *testing.B) {
			ns := netnstest.New(b)
			if err := benchconn.RaiseNoFile(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var ckpt, rst time.Duration
			for b.Loop() {
				b.StopTimer()
				ns.MustDo(b, func() error {
					conns, err := benchconn.Setup(benchconn.Options{N: bc.n, Queue: bc.queue, Unsent: bc.unsent})
					if err != nil {
						return err
					}
					defer func() { benchconn.Close(conns) }()
					b.StartTimer()
					t0 := time.Now()
					states, err := benchconn.Checkpoint(conns)
					if err != nil {
						return err
					}
					t1 := time.Now()
					if err := benchconn.Restore(conns, states); err != nil {
						return err
					}
					t2 := time.Now()
					b.StopTimer()
					ckpt += t1.Sub(t0)
					rst += t2.Sub(t1)
					return nil
				})
				b.StartTimer()
			}
			per := float64(b.N * bc.n)
			b.ReportMetric(float64(ckpt.Microseconds())/per, "µs-checkpoint/conn")
			b.ReportMetric(float64(rst.Microseconds())/per, "µs-restore/conn")
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
		})
	}
}

// Command soccrbench checkpoints and restores many loopback connections
// with the Go engine, in a network namespace of its own, and prints the
// time per connection and the peak RSS. test/syscalls.sh runs it under
// strace once per phase to count the system calls per connection.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/gosoccr/gosoccr/internal/benchconn"
	"github.com/gosoccr/gosoccr/internal/netns"
	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 1000, "connections")
	queue := flag.Int("queue", 16<<10, "bytes unread in each direction")
	unsent := flag.Bool("unsent", false, "the client's send queue also holds bytes not sent yet")
	phase := flag.String("phase", "restore", "stop after this phase: setup, checkpoint, restore")
	flag.Parse()
	if err := run(*n, *queue, *unsent, *phase); err != nil {
		fmt.Fprintln(os.Stderr, "soccrbench:", err)
		os.Exit(1)
	}
}

func run(n, queue int, unsent bool, phase string) error {
	// Everything runs on this thread, which gets a network namespace of
	// its own.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w (run as root)", err)
	}
	if err := netns.LoopbackUp(); err != nil {
		return err
	}
	if err := benchconn.RaiseNoFile(); err != nil {
		return err
	}
	conns, err := benchconn.Setup(benchconn.Options{N: n, Queue: queue, Unsent: unsent})
	if err != nil {
		return err
	}
	fmt.Printf("connections: %d, %d bytes unread each way, unsent data: %v\n", n, queue, unsent)
	if phase == "setup" {
		return nil
	}
	t0 := time.Now()
	states, err := benchconn.Checkpoint(conns)
	if err != nil {
		return err
	}
	d := time.Since(t0)
	fmt.Printf("checkpoint: %.2f µs per connection\n", float64(d.Nanoseconds())/1e3/float64(n))
	if phase == "checkpoint" {
		return nil
	}
	t0 = time.Now()
	if err := benchconn.Restore(conns, states); err != nil {
		return err
	}
	d = time.Since(t0)
	fmt.Printf("restore: %.2f µs per connection\n", float64(d.Nanoseconds())/1e3/float64(n))
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("peak RSS: %.1f MiB\n", float64(ru.Maxrss)/1024)
	return nil
}

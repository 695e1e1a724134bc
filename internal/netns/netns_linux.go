// Package netns runs code in another network namespace on a thread of its
// own, and brings a namespace's loopback device up.
package netns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a thread that has entered the network namespace nsfd and
// returns fn's error. The thread goes back to its own namespace afterwards;
// if it cannot, it stays locked and exits with its goroutine, so no other
// goroutine ever runs in the wrong namespace. A panic in fn is returned as
// an error. Every descriptor Do opens is closed before it returns.
func Do(nsfd int, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("open own netns: %w", err)
			return
		}
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			unix.Close(orig)
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		var ferr error
		func() {
			defer func() {
				if r := recover(); r != nil {
					ferr = fmt.Errorf("panic in netns: %v", r)
				}
			}()
			ferr = fn()
		}()
		back := unix.Setns(orig, unix.CLONE_NEWNET) == nil
		unix.Close(orig)
		if back {
			runtime.UnlockOSThread()
		}
		ch <- ferr
	}()
	return <-ch
}

// LoopbackUp brings up the loopback device of the calling thread's network
// namespace.
func LoopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %w", err)
	}
	return nil
}

package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/gosoccr/gosoccr/internal/netns"
	"golang.org/x/sys/unix"
)

// NetNS is a network namespace made for one test.
type NetNS struct {
	fd int // an open /proc/thread-self/ns/net of the namespace
}

// RequireRoot skips tb with a reason when the process cannot create network
// namespaces or use TCP repair, or fails it under GOSOCCR_REQUIRE_ROOT=1.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if reason := missingPrivilege(); reason != "" {
		if os.Getenv("GOSOCCR_REQUIRE_ROOT") == "1" {
			tb.Fatalf("GOSOCCR_REQUIRE_ROOT=1 but %s", reason)
		}
		tb.Skipf("skipped: %s (run as root, or with CAP_SYS_ADMIN and CAP_NET_ADMIN)", reason)
	}
}

func missingPrivilege() string {
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return "capget: " + err.Error()
	}
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {unix.CAP_NET_RAW, "CAP_NET_RAW"}} {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			return "the process lacks " + c.name
		}
	}
	return ""
}

// New creates a network namespace for tb with the loopback device up. It is
// removed when tb ends.
func New(tb testing.TB) *NetNS {
	tb.Helper()
	RequireRoot(tb)
	ns, err := create()
	if err != nil {
		tb.Fatalf("netnstest: %v", err)
	}
	tb.Cleanup(func() { unix.Close(ns.fd) })
	return ns
}

func create() (*NetNS, error) {
	type result struct {
		ns  *NetNS
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// This thread's namespace is changed for good: never unlock it,
		// so that it exits with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare(CLONE_NEWNET): %w", err)}
			return
		}
		if err := netns.LoopbackUp(); err != nil {
			ch <- result{err: err}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("open own netns: %w", err)}
			return
		}
		ch <- result{ns: &NetNS{fd: fd}}
	}()
	r := <-ch
	return r.ns, r.err
}

// Do runs fn on a thread inside the namespace and returns its error (see
// netns.Do).
func (ns *NetNS) Do(fn func() error) error { return netns.Do(ns.fd, fn) }

// MustDo is Do that fails tb on error.
func (ns *NetNS) MustDo(tb testing.TB, fn func() error) {
	tb.Helper()
	if err := ns.Do(fn); err != nil {
		tb.Fatal(err)
	}
}

// Lock drops every TCP packet that a socket of the namespace sends, except
// packets marked 0xC114 (soccr.Mark), as a user isolates a connection
// between checkpoint and restore; all traffic of a test stays inside its
// namespace, so nothing arrives either. It uses the nft command.
func (ns *NetNS) Lock(tb testing.TB) {
	tb.Helper()
	ns.nft(tb, `add table inet gosoccr_test
add chain inet gosoccr_test out { type filter hook output priority 0; policy accept; }
add rule inet gosoccr_test out meta l4proto tcp meta mark != 0xc114 drop
`)
}

// Unlock removes the rule of Lock.
func (ns *NetNS) Unlock(tb testing.TB) {
	tb.Helper()
	ns.nft(tb, "delete table inet gosoccr_test\n")
}

// Nft runs an nft script in the namespace (for rules of a test's own).
func (ns *NetNS) Nft(tb testing.TB, script string) {
	tb.Helper()
	ns.nft(tb, script)
}

func (ns *NetNS) nft(tb testing.TB, script string) {
	tb.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		nft = "/usr/sbin/nft"
	}
	err = ns.Do(func() error {
		// The command is forked from this thread: it runs in the namespace.
		cmd := exec.Command(nft, "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft: %v: %s", err, out)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// Path names the namespace for tools that take a namespace file, such as
// nsenter --net=PATH, while the test runs.
func (ns *NetNS) Path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.fd) }

// CheckFDs fails tb if it ends with more open descriptors than it started
// with. Call it first in a test.
func CheckFDs(tb testing.TB) {
	tb.Helper()
	// The runtime opens its poller's descriptors on first use and keeps
	// them: make sure they exist before counting.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := openFDs()
	tb.Cleanup(func() {
		after := openFDs()
		var leaked []string
		for fd, target := range after {
			if _, ok := before[fd]; !ok {
				leaked = append(leaked, fmt.Sprintf("%s -> %s", fd, target))
			}
		}
		if len(leaked) > 0 {
			tb.Errorf("leaked %d descriptors: %s", len(leaked), strings.Join(leaked, ", "))
		}
	})
}

func openFDs() map[string]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	m := make(map[string]string, len(ents))
	for _, e := range ents {
		t, _ := os.Readlink("/proc/self/fd/" + e.Name())
		m[e.Name()] = t
	}
	return m
}

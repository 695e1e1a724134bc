package hooks_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/benchconn"
	"github.com/gosoccr/gosoccr/internal/netns"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// host is a named network namespace made for a test: one simulated host.
type host struct {
	name string
	fd   int
}

func (h *host) do(t *testing.T, fn func() error) {
	t.Helper()
	if err := netns.Do(h.fd, fn); err != nil {
		t.Fatal(err)
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newHost(t *testing.T, name string) *host {
	t.Helper()
	name = fmt.Sprintf("gosoccr-%s-%d", name, os.Getpid())
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	fd, err := unix.Open("/var/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ipCmd(t, "-n", name, "link", "set", "lo", "up")
	return &host{name: name, fd: fd}
}

// TestIntegrationMigrate moves connections to another host, as users of
// gosoccr do: hosts A and C sit on one side of a bridge, B (the peer) on
// the other. Connections between A and B are locked and checkpointed on A,
// the service address moves from A to C, and they are restored on C and
// unlocked. B streams all the time and must notice nothing: no reset, no
// byte lost or repeated, in either direction. It runs the 1,000
// connections (GOSOCCR_MIGRATE_N sets another count).
func TestIntegrationMigrate(t *testing.T) {
	netnstest.RequireRoot(t)
	if err := benchconn.RaiseNoFile(); err != nil {
		t.Fatal(err)
	}
	netnstest.CheckFDs(t)
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("GOSOCCR_MIGRATE_N")); err == nil {
		n = v
	}
	a, b, c := newHost(t, "A"), newHost(t, "B"), newHost(t, "C")
	// B: a bridge with the peer's address; A and C: one veth each into it,
	// with the same MAC address, so that B's neighbour entry for the
	// service address stays right when the address moves.
	ipCmd(t, "-n", b.name, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "-n", b.name, "addr", "add", "10.99.0.2/24", "dev", "br0")
	ipCmd(t, "-n", b.name, "link", "set", "br0", "up")
	for _, h := range []*host{a, c} {
		port := "p" + h.name[len("gosoccr-"):len("gosoccr-")+1]
		ipCmd(t, "-n", b.name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.name)
		ipCmd(t, "-n", b.name, "link", "set", port, "master", "br0", "up")
		ipCmd(t, "-n", h.name, "link", "set", "eth0", "address", "02:00:00:00:99:01", "up")
	}
	ipCmd(t, "-n", a.name, "addr", "add", "10.99.0.1/24", "dev", "eth0")

	// n connections from A (the service) to a listener on B.
	var l int
	var laddr unix.Sockaddr
	b.do(t, func() (err error) {
		if l, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{10, 99, 0, 2}}); err != nil {
			return err
		}
		if err = unix.Listen(l, 4096); err != nil {
			return err
		}
		laddr, err = unix.Getsockname(l)
		return err
	})
	defer unix.Close(l)
	conns := make([]benchconn.Conn, n)
	a.do(t, func() error {
		for i := range conns {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := unix.Connect(fd, laddr); err != nil {
				unix.Close(fd)
				return err
			}
			s, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
			if err != nil {
				unix.Close(fd)
				return err
			}
			conns[i] = benchconn.Conn{Client: fd, Server: s}
		}
		return nil
	})

	var tuples []hooks.Tuple
	streamConns(t, conns, func(fds []int) any {
		tuples = make([]hooks.Tuple, len(fds))
		for i, fd := range fds {
			tuples[i] = tupleOf(t, fd)
		}
		// On A: lock, then checkpoint every connection and close it.
		a.do(t, func() error { return hooks.Lock(tuples...) })
		states := make([]*soccr.State, len(fds))
		for i, r := range soccr.CheckpointAll(fds, soccr.SaveOptions{}) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			states[i] = r.State
			unix.Close(fds[i])
		}
		// C locks the connections before the address reaches it, so
		// that B's segments meet no closed port there.
		c.do(t, func() error { return hooks.Lock(tuples...) })
		ipCmd(t, "-n", a.name, "addr", "flush", "dev", "eth0")
		ipCmd(t, "-n", a.name, "link", "set", "eth0", "down")
		ipCmd(t, "-n", c.name, "addr", "add", "10.99.0.1/24", "dev", "eth0")
		a.do(t, hooks.RemoveLock)
		return states
	}, func(saved any) []int {
		// On C: restore (paused), unlock, resume.
		states := saved.([]*soccr.State)
		fds := make([]int, len(states))
		var cs []*soccr.Conn
		c.do(t, func() error {
			for i, r := range soccr.RestorePausedAll(states) {
				if r.Err != nil {
					return r.Err
				}
				fds[i] = r.Conn.FD()
				cs = append(cs, r.Conn)
			}
			return hooks.Unlock(tuples...)
		})
		for _, err := range soccr.ResumeAll(cs) {
			if err != nil {
				t.Fatal(err)
			}
		}
		c.do(t, hooks.RemoveLock)
		return fds
	})
}

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/internal/criurun"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"golang.org/x/sys/unix"
)

var (
	root     string // the repository
	usclient string // the built client
)

func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	root = filepath.Clean(filepath.Join(wd, "../.."))
	// Restored tasks outlive criu: as a subreaper this process inherits
	// them and can end them.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	dir, err := os.MkdirTemp("", "gosoccr-e2e-")
	if err == nil {
		usclient = filepath.Join(dir, "usclient")
		out, cerr := exec.Command("cc", "-Wall", "-Werror", "-O2", "-o", usclient, filepath.Join(wd, "usclient", "usclient.c")).CombinedOutput()
		if cerr != nil {
			fmt.Fprintf(os.Stderr, "building usclient: %v\n%s", cerr, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's world: a network namespace, a work folder, criu.
type env struct {
	t    *testing.T
	ns   *netnstest.NetNS
	dir  string
	criu string
	lib  string // the folder given to --lib
	n    int    // images folders made so far
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ns := netnstest.New(t)
	criu := os.Getenv("GOSOCCR_CRIU")
	if criu == "" {
		if os.Getenv("GOSOCCR_REQUIRE_ROOT") == "1" {
			t.Fatal("GOSOCCR_CRIU is not set (make test sets it from test/install-criu.sh)")
		}
		t.Skip("skipped: GOSOCCR_CRIU does not name a criu >= 4.2 (see test/install-criu.sh)")
	}
	lib := filepath.Join(root, "build/criu")
	for _, f := range []string{filepath.Join(lib, "gosoccr.so"), filepath.Join(root, "build/libgosoccr.so")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s is missing: run make build", f)
		}
	}
	dir, err := os.MkdirTemp("", "gosoccr-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("work folder kept: %s", dir)
		}
	})
	return &env{t: t, ns: ns, dir: dir, criu: criu, lib: lib}
}

// task is a running usclient.
type task struct {
	pid int
	cmd *exec.Cmd // nil once restored: the task is then our child as a subreaper
}

// start runs usclient with args in the namespace, in a session of its own,
// with nothing inherited but the extra files given (as fds 3, 4, ...).
func (e *env) start(extra []*os.File, args ...string) *task {
	e.t.Helper()
	out, err := os.OpenFile(filepath.Join(e.dir, "usclient.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(usclient, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	e.ns.MustDo(e.t, cmd.Start)
	tk := &task{pid: cmd.Process.Pid, cmd: cmd}
	e.t.Cleanup(func() { tk.kill() })
	return tk
}

func (tk *task) kill() {
	if tk.pid > 0 {
		unix.Kill(tk.pid, unix.SIGKILL)
		tk.reap()
	}
}

// waitGone waits until the dumped task has exited, as restore needs.
func (tk *task) waitGone(t *testing.T) { tk.reap() }

// reap waits for the task: our child, either started by us or inherited as
// a subreaper once criu restore exited.
func (tk *task) reap() {
	if tk.cmd != nil {
		tk.cmd.Wait()
	} else {
		var ws unix.WaitStatus
		unix.Wait4(tk.pid, &ws, 0, nil)
	}
	tk.pid = 0
}

// runCRIU runs criu with args inside the namespace (criurun.Run) and
// returns its log.
func (e *env) runCRIU(logName string, envv []string, args ...string) (string, error) {
	c := &criurun.CRIU{Path: e.criu, Lib: e.lib}
	var log string
	err := e.ns.Do(func() error {
		var err error
		log, err = c.Run(filepath.Join(e.dir, logName), envv, args...)
		return err
	})
	return log, err
}

// dump checkpoints tk into a new images folder and returns it.
func (e *env) dump(tk *task, envv []string, extra ...string) (string, string, error) {
	e.n++
	images := filepath.Join(e.dir, "images"+strconv.Itoa(e.n))
	if err := os.Mkdir(images, 0o700); err != nil {
		e.t.Fatal(err)
	}
	args := append([]string{"dump", "-t", strconv.Itoa(tk.pid), "-D", images}, extra...)
	log, err := e.runCRIU(fmt.Sprintf("dump%d.log", e.n), envv, args...)
	return images, log, err
}

func (e *env) mustDump(tk *task, envv []string, extra ...string) (string, string) {
	e.t.Helper()
	images, log, err := e.dump(tk, envv, extra...)
	if err != nil {
		e.t.Fatalf("%v\n%s", err, tail(log, 30))
	}
	tk.waitGone(e.t)
	return images, log
}

// restore restores the images and returns the restored task.
func (e *env) mustRestore(images string, envv []string, extra ...string) (*task, string) {
	e.t.Helper()
	pidfile := filepath.Join(images, "restored.pid")
	args := append([]string{"restore", "-D", images, "-d", "--pidfile", pidfile}, extra...)
	log, err := e.runCRIU("restore"+strconv.Itoa(e.n)+".log", envv, args...)
	if err != nil {
		e.t.Fatalf("%v\n%s", err, tail(log, 30))
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		e.t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	tk := &task{pid: pid}
	e.t.Cleanup(func() { tk.kill() })
	return tk, log
}

func tail(s string, n int) string { return criurun.Tail(s, n) }

// grepLog fails the test unless the criu log has a line matching re.
func grepLog(t *testing.T, log, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindString(log)
	if m == "" {
		t.Fatalf("criu's log has no line matching %q:\n%s", re, tail(log, 40))
	}
	return m
}

// listener is a server socket in the namespace: a stream or seqpacket
// listener, or a bound datagram socket.
func (e *env) listen(typ int, name string) int {
	e.t.Helper()
	var s int
	e.ns.MustDo(e.t, func() error {
		var err error
		if s, err = unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := unix.Bind(s, &unix.SockaddrUnix{Name: name}); err != nil {
			return err
		}
		if typ != unix.SOCK_DGRAM {
			return unix.Listen(s, 8)
		}
		return nil
	})
	e.t.Cleanup(func() { unix.Close(s) })
	return s
}

// accept waits for the next connection on l.
func accept(t *testing.T, l int) *conn {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(l), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 10000); n != 1 {
		t.Fatal("no connection within 10 s")
	}
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{fd: a, f: os.NewFile(uintptr(a), "conn")}
	t.Cleanup(func() { c.f.Close() })
	c.r = bufio.NewReader(c.f)
	return c
}

type conn struct {
	fd int
	f  *os.File
	r  *bufio.Reader
}

// ping asks for n and checks the answer.
func (c *conn) ping(t *testing.T, n int) {
	t.Helper()
	if _, err := fmt.Fprintf(c.f, "ping %d\n", n); err != nil {
		t.Fatalf("ping %d: %v", n, err)
	}
	c.f.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("pong %d: %v", n, err)
	}
	if want := fmt.Sprintf("pong %d\n", n); line != want {
		t.Fatalf("got %q, want %q", line, want)
	}
}

// recvLog reads datagrams "log N" from s until one with N > after comes,
// and returns that N.
func recvLog(t *testing.T, s int, after int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 256)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(s), Events: unix.POLLIN}}
		unix.Poll(fds, 200)
		n, _, err := unix.Recvfrom(s, buf, unix.MSG_DONTWAIT)
		if err != nil {
			continue
		}
		v, err := strconv.Atoi(strings.TrimPrefix(string(buf[:n]), "log "))
		if err != nil {
			t.Fatalf("datagram %q", buf[:n])
		}
		if v > after {
			return v
		}
	}
	t.Fatalf("no datagram after log %d within 10 s", after)
	return 0
}

// drain reads the datagrams waiting on s.
func drain(s int) {
	buf := make([]byte, 256)
	for {
		if _, _, err := unix.Recvfrom(s, buf, unix.MSG_DONTWAIT); err != nil {
			return
		}
	}
}

func writePolicy(t *testing.T, e *env, text string) []string {
	t.Helper()
	p := filepath.Join(e.dir, "policy")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"GOSOCCR_POLICY=" + p}
}

func crit(t *testing.T, images, name string) {
	t.Helper()
	path, err := exec.LookPath("crit")
	if err != nil {
		if os.Getenv("GOSOCCR_REQUIRE_ROOT") == "1" {
			t.Fatal("crit is missing (Debian 12's criu package; make deps installs it)")
		}
		t.Log("crit is missing: images not decoded")
		return
	}
	out, err := exec.Command(path, "decode", "-i", filepath.Join(images, name), "--pretty").CombinedOutput()
	if err != nil {
		t.Fatalf("crit decode %s: %v\n%s", name, err, out)
	}
	if !strings.Contains(string(out), `"magic": "UNIXSK"`) {
		t.Fatalf("crit decode %s:\n%s", name, out)
	}
}

func imageNames(t *testing.T, images string) []string {
	ents, err := os.ReadDir(images)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "gosoccr-") {
			names = append(names, e.Name())
		}
	}
	return names
}

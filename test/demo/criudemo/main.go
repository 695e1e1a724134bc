// Command criudemo is the second part of `make demo`: a process with a unix
// socket to a server outside the dump is checkpointed and restored by real
// CRIU with the gosoccr plugin, and its conversation with the server goes
// on. It prints what happens and exits 0 only if every answer was right.
//
// Run it as root in a private network namespace (make demo does), with
// GOSOCCR_CRIU naming a criu >= 4.2 and -usclient naming the client built
// from test/e2e/usclient.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gosoccr/gosoccr/internal/criurun"
	"golang.org/x/sys/unix"
)

func main() {
	lib := flag.String("lib", "build/criu", "the plugin folder given to criu --lib")
	client := flag.String("usclient", "build/usclient", "the client program")
	flag.Parse()
	if err := run(*lib, *client); err != nil {
		fmt.Fprintln(os.Stderr, "criudemo: FAILED:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func run(lib, client string) error {
	criuPath := os.Getenv("GOSOCCR_CRIU")
	if criuPath == "" {
		return fmt.Errorf("GOSOCCR_CRIU does not name a criu >= 4.2 (test/install-criu.sh prints one)")
	}
	lib, _ = filepath.Abs(lib)
	criu := &criurun.CRIU{Path: criuPath, Lib: lib}
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) // the restored task becomes ours
	dir, err := os.MkdirTemp("", "gosoccr-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	srv := filepath.Join(dir, "server.sock")
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: srv}); err != nil {
		return err
	}
	if err := unix.Listen(l, 4); err != nil {
		return err
	}
	say("part 3: a process with an external unix socket, checkpointed and restored by CRIU (%s)", criuPath)
	say("  server (outside the dump) listens on %s", srv)

	logf, err := os.Create(filepath.Join(dir, "usclient.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(client, "stream", srv)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	logf.Close()
	pid := cmd.Process.Pid
	defer func() { unix.Kill(pid, unix.SIGKILL) }()
	say("  client: pid %d, one unix stream socket connected to the server", pid)

	c, err := accept(l)
	if err != nil {
		return err
	}
	for i := 1; i <= 3; i++ {
		if err := c.ping(i); err != nil {
			return err
		}
	}
	say("  server <-> client: ping 1..3, pong 1..3")

	images := filepath.Join(dir, "images")
	t0 := time.Now()
	dlog, err := criu.Dump(pid, images, filepath.Join(dir, "dump.log"), nil)
	if err != nil {
		return fmt.Errorf("%v\n%s", err, criurun.Tail(dlog, 20))
	}
	cmd.Wait()
	say("  criu dump --lib %s: %s; the client is gone", lib, time.Since(t0).Round(time.Millisecond))
	pluginLines(dlog)
	load, per := criurun.PluginTimes(dlog)
	say("    (plugin: Go library loaded in %s; the socket took %v)", load.Round(10*time.Microsecond), per)
	ents, _ := os.ReadDir(images)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "gosoccr-") {
			fi, _ := e.Info()
			say("  image written: %s (%d bytes)", e.Name(), fi.Size())
			critBrief(filepath.Join(images, e.Name()))
		}
	}
	c.close()

	t0 = time.Now()
	rpid, rlog, err := criu.Restore(images, filepath.Join(dir, "restore.log"), nil)
	if err != nil {
		return fmt.Errorf("%v\n%s", err, criurun.Tail(rlog, 20))
	}
	pid = rpid
	say("  criu restore -d --lib %s: %s; the client runs again as pid %d", lib, time.Since(t0).Round(time.Millisecond), rpid)
	pluginLines(rlog)

	c, err = accept(l)
	if err != nil {
		return err
	}
	for i := 4; i <= 6; i++ {
		if err := c.ping(i); err != nil {
			return err
		}
	}
	say("  server accepted the restored client's new connection: ping 4..6, pong 4..6")
	say("part 3: OK: the conversation went on after the restore")
	return nil
}

func pluginLines(log string) {
	for _, l := range criurun.Lines(log) {
		if i := strings.Index(l.Text, "gosoccr: "); i >= 0 {
			say("    criu log %8.3f ms  %s", float64(l.At.Microseconds())/1000, l.Text[i:])
		}
	}
}

// critBrief shows the first entry of an image as crit decodes it.
func critBrief(path string) {
	crit, err := exec.LookPath("crit")
	if err != nil {
		say("    (crit not installed: not decoded)")
		return
	}
	out, err := exec.Command(crit, "show", path).CombinedOutput()
	if err != nil {
		say("    crit: %v", err)
		return
	}
	for _, l := range strings.Split(string(out), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, `"magic"`) || strings.HasPrefix(t, `"name"`) || strings.HasPrefix(t, `"type"`) || strings.HasPrefix(t, `"peer"`) {
			say("    crit: %s", t)
		}
	}
}

type conn struct {
	f *os.File
	r *bufio.Reader
}

func accept(l int) (*conn, error) {
	fds := []unix.PollFd{{Fd: int32(l), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 10000); n != 1 {
		return nil, fmt.Errorf("no connection within 10 s")
	}
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(a), "conn")
	return &conn{f: f, r: bufio.NewReader(f)}, nil
}

func (c *conn) close() { c.f.Close() }

func (c *conn) ping(n int) error {
	if _, err := fmt.Fprintf(c.f, "ping %d\n", n); err != nil {
		return err
	}
	c.f.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("waiting for pong %d: %w", n, err)
	}
	if want := fmt.Sprintf("pong %d\n", n); line != want {
		return fmt.Errorf("got %q, want %q", line, want)
	}
	return nil
}

// Package criurun runs CRIU for the end-to-end tests and the demo: dump a
// task, restore it detached, each run under a timeout with a log file of
// its own, and read what the plugin said from CRIU's timestamped log.
// Commands run in the network namespace of the calling thread.
package criurun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Timeout bounds every CRIU run.
const Timeout = 60 * time.Second

// CRIU is a criu binary (>= 4.2) and the plugin folder given to --lib.
type CRIU struct {
	Path string
	Lib  string
	Env  []string // added to the environment of every run
}

// Run runs criu with args, -v4 and a log file, and returns the log. The
// error carries criu's own output.
func (c *CRIU) Run(logPath string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	args = append(args, "-v4", "-o", logPath, "--lib", c.Lib)
	cmd := exec.CommandContext(ctx, c.Path, args...)
	cmd.Env = append(append(os.Environ(), c.Env...), env...)
	out, err := cmd.CombinedOutput()
	b, _ := os.ReadFile(logPath)
	if ctx.Err() != nil {
		return string(b), fmt.Errorf("criu %s: timed out after %s", args[0], Timeout)
	}
	if err != nil {
		return string(b), fmt.Errorf("criu %s: %v: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return string(b), nil
}

// Dump checkpoints the task pid into images (created if missing).
func (c *CRIU) Dump(pid int, images, logPath string, env []string, extra ...string) (string, error) {
	if err := os.MkdirAll(images, 0o700); err != nil {
		return "", err
	}
	args := append([]string{"dump", "-t", strconv.Itoa(pid), "-D", images}, extra...)
	return c.Run(logPath, env, args...)
}

// Restore restores images detached and returns the restored task's pid.
func (c *CRIU) Restore(images, logPath string, env []string, extra ...string) (int, string, error) {
	pidfile := filepath.Join(images, "restored.pid")
	os.Remove(pidfile)
	args := append([]string{"restore", "-D", images, "-d", "--pidfile", pidfile}, extra...)
	log, err := c.Run(logPath, env, args...)
	if err != nil {
		return 0, log, err
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return 0, log, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, log, err
}

// Tail returns the last n lines of a log.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Line is one line of a CRIU log with its timestamp.
type Line struct {
	At   time.Duration // since criu started
	Text string
}

var stamp = regexp.MustCompile(`^\((\d+)\.(\d+)\)\s*(.*)$`)

// Lines parses the timestamped lines of a CRIU log.
func Lines(log string) []Line {
	var out []Line
	for _, l := range strings.Split(log, "\n") {
		m := stamp.FindStringSubmatch(strings.TrimLeft(l, " "))
		if m == nil {
			continue
		}
		s, _ := strconv.Atoi(m[1])
		us, _ := strconv.Atoi((m[2] + "000000")[:6])
		out = append(out, Line{time.Duration(s)*time.Second + time.Duration(us)*time.Microsecond, m[3]})
	}
	return out
}

// PluginTimes reads from a dump log what the plugin added: loading the Go
// library (from CRIU's line that it loaded the plugin, where CRIU calls its
// init at once, to the Go library's first line), and each
// socket dumped (from the hook's "start" line to its "dumped" line).
func PluginTimes(log string) (load time.Duration, perSocket []time.Duration) {
	var first, loaded, start time.Duration = -1, -1, -1
	for _, l := range Lines(log) {
		if first < 0 && strings.HasPrefix(l.Text, `Plugin "gosoccr"`) {
			first = l.At
		}
		if !strings.Contains(l.Text, "gosoccr: ") {
			continue
		}
		switch {
		case loaded < 0 && strings.Contains(l.Text, "Go library loaded"):
			loaded = l.At
		case strings.Contains(l.Text, ": start"):
			start = l.At
		case strings.Contains(l.Text, "gosoccr: dumped ") && start >= 0:
			perSocket = append(perSocket, l.At-start)
			start = -1
		}
	}
	if first >= 0 && loaded >= 0 {
		load = loaded - first
	}
	return load, perSocket
}

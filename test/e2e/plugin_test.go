package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/gosoccr/gosoccr/internal/criurun"
	"golang.org/x/sys/unix"
)

// TestIntegrationCRIUStream: a client talking to a server over a unix
// stream socket is dumped and restored; the conversation goes on over a
// new connection to the same server.
func TestIntegrationCRIUStream(t *testing.T) {
	e := newEnv(t)
	srv := filepath.Join(e.dir, "server.sock")
	l := e.listen(unix.SOCK_STREAM, srv)
	tk := e.start(nil, "stream", srv)
	c := accept(t, l)
	c.ping(t, 1)
	images, dlog := e.mustDump(tk, nil)
	grepLog(t, dlog, `gosoccr: dumped unix socket \d+ \(stream "" -> "`+regexp.QuoteMeta(srv)+`"\)`)
	names := imageNames(t, images)
	if len(names) != 1 {
		t.Fatalf("images of ours: %v", names)
	}
	crit(t, images, names[0])
	tk, rlog := e.mustRestore(images, nil)
	grepLog(t, rlog, `gosoccr: unix socket \d+ .*connected to `+regexp.QuoteMeta(srv))
	c = accept(t, l)
	for i := 2; i < 5; i++ {
		c.ping(t, i)
	}
	reportTimes(t, dlog)
}

// TestIntegrationCRIUDgram: a client logging to a /dev/log-like datagram
// socket goes on logging after restore.
func TestIntegrationCRIUDgram(t *testing.T) {
	e := newEnv(t)
	logsock := filepath.Join(e.dir, "log")
	s := e.listen(unix.SOCK_DGRAM, logsock)
	tk := e.start(nil, "dgram", logsock)
	n := recvLog(t, s, -1)
	images, dlog := e.mustDump(tk, nil)
	grepLog(t, dlog, `gosoccr: dumped unix socket \d+ \(dgram`)
	drain(s)
	e.mustRestore(images, nil)
	m := recvLog(t, s, n)
	t.Logf("log %d before the dump, log %d after the restore", n, m)
}

// TestIntegrationCRIUAbstractSeqpacket: abstract names on both ends, and a
// seqpacket socket; our own name is bound again.
func TestIntegrationCRIUAbstractSeqpacket(t *testing.T) {
	e := newEnv(t)
	srv, own := "@gosoccr-e2e-srv", "@gosoccr-e2e-cli"
	l := e.listen(unix.SOCK_SEQPACKET, srv)
	tk := e.start(nil, "seqpacket", srv, own)
	c := accept(t, l)
	c.ping(t, 1)
	images, dlog := e.mustDump(tk, nil)
	grepLog(t, dlog, `gosoccr: dumped unix socket \d+ \(seqpacket "@gosoccr-e2e-cli" -> "@gosoccr-e2e-srv"\)`)
	e.mustRestore(images, nil)
	c = accept(t, l)
	c.ping(t, 2)
	sa, err := unix.Getpeername(c.fd)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := sa.(*unix.SockaddrUnix); !ok || u.Name != own {
		t.Fatalf("the restored client is %#v, want bound to %s", sa, own)
	}
}

// TestIntegrationCRIUUnreadData: a socket with unread bytes is refused
// with a message that names it and the byte count; the task goes on; a
// policy that allows the loss lets the dump through.
func TestIntegrationCRIUUnreadData(t *testing.T) {
	e := newEnv(t)
	srv := filepath.Join(e.dir, "server.sock")
	l := e.listen(unix.SOCK_STREAM, srv)
	tk := e.start(nil, "stream", srv)
	c := accept(t, l)
	c.ping(t, 1)
	fmt.Fprintf(c.f, "hold\n") // the client sleeps 5 s...
	time.Sleep(200 * time.Millisecond)
	fmt.Fprintf(c.f, "unread data\n") // ...and this stays queued
	time.Sleep(50 * time.Millisecond)
	_, dlog, err := e.dump(tk, nil)
	if err == nil {
		t.Fatal("criu dumped a socket with unread data")
	}
	grepLog(t, dlog, `gosoccr: .*12 unread bytes in its receive queue would be lost`)
	if unix.Kill(tk.pid, 0) != nil {
		t.Fatal("the task did not survive the failed dump")
	}
	pol := writePolicy(t, e, "allow-data-loss\n")
	images, dlog := e.mustDump(tk, pol)
	grepLog(t, dlog, `gosoccr: .*12 unread bytes dropped`)
	e.mustRestore(images, pol)
	c = accept(t, l)
	c.ping(t, 2) // answered once the client's hold ends
}

// TestIntegrationCRIUExcluded: a socket the policy excludes is left to
// CRIU, which refuses it as usual.
func TestIntegrationCRIUExcluded(t *testing.T) {
	e := newEnv(t)
	srv := filepath.Join(e.dir, "server.sock")
	l := e.listen(unix.SOCK_STREAM, srv)
	tk := e.start(nil, "stream", srv)
	accept(t, l).ping(t, 1)
	pol := writePolicy(t, e, "exclude "+srv+"\n")
	_, dlog, err := e.dump(tk, pol)
	if err == nil {
		t.Fatal("criu dumped an excluded external socket")
	}
	if regexp.MustCompile(`gosoccr: dumped`).MatchString(dlog) {
		t.Fatal("the plugin handled an excluded socket")
	}
	t.Logf("criu said: %s", grepLog(t, dlog, `(?i)Error.*(unix|external|sock)[^\n]*`))
}

// TestIntegrationCRIUNamelessPeer: one end of a socketpair whose other end
// stays outside cannot be reconnected: refused with a clear message.
func TestIntegrationCRIUNamelessPeer(t *testing.T) {
	e := newEnv(t)
	var sp [2]int
	e.ns.MustDo(t, func() error {
		var err error
		sp, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	ours := os.NewFile(uintptr(sp[0]), "pair0")
	theirs := os.NewFile(uintptr(sp[1]), "pair1")
	defer theirs.Close()
	tk := e.start([]*os.File{ours}, "stream", "fd:3")
	ours.Close()
	_, dlog, err := e.dump(tk, nil)
	if err == nil {
		t.Fatal("criu dumped a socket with a nameless external peer")
	}
	grepLog(t, dlog, `gosoccr: .*the peer has no name`)
}

// TestIntegrationCRIURename: the server moved between dump and restore (as
// on another host); a rename in the restore's policy follows it.
func TestIntegrationCRIURename(t *testing.T) {
	e := newEnv(t)
	old := filepath.Join(e.dir, "old.sock")
	moved := filepath.Join(e.dir, "new.sock")
	l := e.listen(unix.SOCK_STREAM, old)
	tk := e.start(nil, "stream", old)
	accept(t, l).ping(t, 1)
	images, _ := e.mustDump(tk, nil)
	unix.Close(l)
	os.Remove(old)
	l2 := e.listen(unix.SOCK_STREAM, moved)
	pol := writePolicy(t, e, "rename "+old+" "+moved+"\n")
	e.mustRestore(images, pol)
	accept(t, l2).ping(t, 2)
}

// TestIntegrationCRIUCycles: 20 dump/restore cycles in a row, with action
// scripts on both sides, every CRIU run under a timeout: no hang, no crash.
func TestIntegrationCRIUCycles(t *testing.T) {
	e := newEnv(t)
	srv := filepath.Join(e.dir, "server.sock")
	l := e.listen(unix.SOCK_STREAM, srv)
	script := filepath.Join(e.dir, "action.sh")
	actions := filepath.Join(e.dir, "actions.log")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$CRTOOLS_SCRIPT_ACTION\" >> "+actions+"\n"), 0o755)
	tk := e.start(nil, "stream", srv)
	c := accept(t, l)
	c.ping(t, 0)
	cycles := 20
	if testing.Short() {
		cycles = 3
	}
	for i := 1; i <= cycles; i++ {
		images, _ := e.mustDump(tk, nil, "--action-script", script)
		tk, _ = e.mustRestore(images, nil, "--action-script", script)
		c = accept(t, l)
		c.ping(t, i)
	}
	b, _ := os.ReadFile(actions)
	t.Logf("%d cycles; action script ran %d times", cycles, len(regexp.MustCompile(`\n`).FindAll(b, -1)))
}

// reportTimes logs what the plugin added to the dump, from CRIU's own
// timestamps: loading the Go library, and each socket.
func reportTimes(t *testing.T, log string) {
	load, per := criurun.PluginTimes(log)
	t.Logf("plugin: loading the Go library %s, per socket %v", load, per)
}

// TestIntegrationCRIUExtUnixSk: a socket the policy excludes goes to CRIU's
// own --ext-unix-sk handling, which still works next to the plugin.
func TestIntegrationCRIUExtUnixSk(t *testing.T) {
	e := newEnv(t)
	logsock := filepath.Join(e.dir, "log")
	s := e.listen(unix.SOCK_DGRAM, logsock)
	tk := e.start(nil, "dgram", logsock)
	n := recvLog(t, s, -1)
	pol := writePolicy(t, e, "exclude "+logsock+"\n")
	images, dlog := e.mustDump(tk, pol, "--ext-unix-sk")
	if regexp.MustCompile(`gosoccr: dumped`).MatchString(dlog) {
		t.Fatal("the plugin handled an excluded socket")
	}
	drain(s)
	e.mustRestore(images, pol, "--ext-unix-sk")
	m := recvLog(t, s, n)
	t.Logf("CRIU's own --ext-unix-sk: log %d before, log %d after", n, m)
}

// Command tcpdemo is a part of `make demo`: a TCP connection carrying a
// checked byte stream both ways is checkpointed through the hooks into an
// images directory (CRIU's format), its socket closed in repair mode, and a
// second process restores it from the images and carries the client's side
// of the stream on to the end. The server never waits: it writes and reads
// from the first byte to the last, through the checkpoint and the restore.
//
// The network lock keeps the connection's packets away meanwhile:
// hooks.DumpTCP with TCPOptions{Lock: true} locks the connection before it
// pauses the socket, and hooks.RestoreTCPWith with the same option lifts
// the lock between the restore and the resume. Each process does that
// through a hooks.Locker it opened in the namespace beforehand
// (TCPOptions.Locker), which keeps its netlink socket: the unlock then
// takes a fraction of a millisecond rather than the ~10 ms that closing a
// socket after a removal costs (see hooks.Unlock). The server's segments
// that the lock dropped are sent again by its TCP after the unlock; the
// demo prints how long the server saw no progress. It exits 0 only if
// every byte was verified, once and in order, both ways, and nobody saw a
// reset. Both ends write as fast as the connection takes it.
//
// Run it as root in a private network namespace with lo up (make demo
// does). With -restore it is the second process.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/stream"
	"golang.org/x/sys/unix"
)

const (
	up   = 0 // client to server
	down = 1 // server to client

	stallTimeout = 10 * time.Second
	chunk        = 64 << 10
	serverRcvbuf = 1 << 20
)

var total = flag.Int64("bytes", 8<<20, "bytes to stream in each direction")

func main() {
	restore := flag.Bool("restore", false, "be the second process: restore the client's connection and finish its streams")
	images := flag.String("images", "", "with -restore: the images directory")
	id := flag.Uint("id", 0, "with -restore: the connection's id")
	upOff := flag.Int64("up", 0, "with -restore: bytes the client had written")
	downOff := flag.Int64("down", 0, "with -restore: bytes the client had read")
	flag.Parse()
	var err error
	if *restore {
		err = second(*images, uint32(*id), *upOff, *downOff)
	} else {
		err = first()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpdemo: FAILED:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// mono reads CLOCK_MONOTONIC, which both processes share, in nanoseconds.
func mono() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// after says when t was, relative to ref.
func after(t, ref int64) string {
	if t <= ref {
		return "already before"
	}
	return fmt.Sprintf("%.1f ms after", ms(t-ref))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// side is one end's position in both streams.
type side struct {
	fd      int
	written int64 // of its outgoing direction
	read    int64 // of its incoming direction, verified
	shut    bool  // its outgoing direction is shut down
	eof     bool  // its incoming direction ended
	calls   int   // successful sends and receives
	out, in uint8
}

// step writes up to a chunk and reads up to a chunk, as far as it can
// without blocking: the two directions move at the same pace. Any error
// ends the demo: a reset would show here as ECONNRESET or EPIPE.
func (s *side) step(buf []byte) error {
	if s.written < *total {
		b := buf[:min(int64(len(buf)), *total-s.written)]
		stream.Fill(s.out, s.written, b)
		n, err := unix.SendmsgN(s.fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			return fmt.Errorf("write at offset %d: %w", s.written, err)
		}
		if n > 0 {
			s.written += int64(n)
			s.calls++
		}
	}
	if s.written == *total && !s.shut {
		if err := unix.Shutdown(s.fd, unix.SHUT_WR); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		s.shut = true
	}
	for left := len(buf); left > 0 && !s.eof; {
		n, _, err := unix.Recvfrom(s.fd, buf[:left], unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil
		case err != nil:
			return fmt.Errorf("read at offset %d: %w", s.read, err)
		case n == 0:
			if s.read != *total {
				return fmt.Errorf("end of stream after %d of %d bytes", s.read, *total)
			}
			s.eof = true
			return nil
		case s.read+int64(n) > *total:
			return fmt.Errorf("%d bytes read, more than the %d written", s.read+int64(n), *total)
		}
		if err := stream.Check(s.in, s.read, buf[:n]); err != nil {
			return err
		}
		s.read += int64(n)
		s.calls++
		left -= n
	}
	return nil
}

func (s *side) done() bool { return s.shut && s.eof }

// wait polls for what s can do, at most timeout.
func (s *side) wait(timeout time.Duration) {
	ev := int16(unix.POLLIN)
	if s.written < *total {
		ev |= unix.POLLOUT
	}
	unix.Poll([]unix.PollFd{{Fd: int32(s.fd), Events: ev}}, int(timeout/time.Millisecond))
}

// sample is a position of a stream at a time.
type sample struct{ t, n int64 }

// history is what one direction of the server did: a sample at each
// progress.
type history []sample

func (h *history) note(t, n int64) {
	if len(*h) == 0 || n > (*h)[len(*h)-1].n {
		*h = append(*h, sample{t, n})
	}
}

// reached returns when the position first reached n (0: never).
func (h history) reached(n int64) int64 {
	for _, s := range h {
		if s.n >= n {
			return s.t
		}
	}
	return 0
}

// at returns the position at time t.
func (h history) at(t int64) int64 {
	var n int64
	for _, s := range h {
		if s.t > t {
			break
		}
		n = s.n
	}
	return n
}

// longestGap returns the longest time without progress that overlaps
// [from, to].
func (h history) longestGap(from, to int64) int64 {
	var max int64
	for i := 1; i < len(h); i++ {
		a, b := h[i-1].t, h[i].t
		if b > from && a < to && b-a > max {
			max = b - a
		}
	}
	return max
}

// server is the peer: it streams both ways and records what it saw.
type server struct {
	side
	writes, reads, acks history // bytes written, read, acknowledged by the client
	longestTurn         int64   // longest time between two turns of its loop
	retrans             uint32  // segments its TCP sent again (tcpi_total_retrans)
}

// run streams until both directions ended, never waiting for the client.
func (sv *server) run() error {
	buf := make([]byte, chunk)
	t0 := mono()
	sv.writes.note(t0, 0)
	sv.reads.note(t0, 0)
	sv.acks.note(t0, 0)
	prev, moved := t0, t0
	for !sv.done() {
		if err := sv.step(buf); err != nil {
			return fmt.Errorf("server: %w", err)
		}
		now := mono()
		sv.longestTurn = max(sv.longestTurn, now-prev)
		prev = now
		outq, err := unix.IoctlGetInt(sv.fd, unix.SIOCOUTQ)
		if err != nil {
			return fmt.Errorf("server: SIOCOUTQ: %w", err)
		}
		// The send queue counts the FIN once sent.
		acked := min(sv.written, max(0, sv.written-int64(outq)))
		if sv.read > sv.reads[len(sv.reads)-1].n || acked > sv.acks[len(sv.acks)-1].n {
			moved = now
		}
		sv.writes.note(now, sv.written)
		sv.reads.note(now, sv.read)
		sv.acks.note(now, acked)
		if time.Duration(now-moved) > stallTimeout {
			return fmt.Errorf("server: no progress for %s (read %d, written %d, acknowledged %d)", stallTimeout, sv.read, sv.written, acked)
		}
		// A short timeout: the loop also samples its ACKs.
		sv.wait(time.Millisecond)
	}
	if e, err := unix.GetsockoptInt(sv.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
		return fmt.Errorf("server: socket error %v %v", unix.Errno(e), err)
	}
	ti, err := unix.GetsockoptTCPInfo(sv.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return fmt.Errorf("server: TCP_INFO: %w", err)
	}
	sv.retrans = ti.Total_retrans
	return nil
}

// counter reads one counter of this network namespace from a file of
// /proc/net laid out as "Prefix: names" then "Prefix: values"; -1 when
// absent.
func counter(file, prefix, name string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return -1
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != prefix || len(values) != len(names) || values[0] != prefix {
			continue
		}
		for j, n := range names {
			if n == name {
				v, _ := strconv.ParseInt(values[j], 10, 64)
				return v
			}
		}
	}
	return -1
}

func first() (err error) {
	// The lock lives in this namespace: remove it however the demo ends.
	cleaned := false
	defer func() {
		if !cleaned {
			if rerr := hooks.RemoveLock(); rerr != nil {
				err = errors.Join(err, rerr)
			} else {
				fmt.Fprintln(os.Stderr, "tcpdemo: network lock removed at exit (hooks.RemoveLock)")
			}
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		hooks.RemoveLock()
		fmt.Fprintf(os.Stderr, "tcpdemo: %v: network lock removed\n", s)
		os.Exit(1)
	}()
	rsts0 := counter("/proc/net/snmp", "Tcp:", "OutRsts")

	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(l)
	if err := unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, serverRcvbuf); err != nil {
		unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_RCVBUF, serverRcvbuf)
	}
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	unix.Listen(l, 1)
	sa, _ := unix.Getsockname(l)
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// The server runs at most a receive buffer ahead of the client's
	// reading: both directions still stream at the checkpoint.
	unix.SetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_RCVBUF, 512<<10)
	if err := unix.Connect(cfd, sa); err != nil {
		return err
	}
	sfd, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		return err
	}
	sfdOpen := true
	defer func() {
		if sfdOpen {
			unix.Close(sfd)
		}
	}()
	say("part 2: a TCP connection checkpointed through the hooks into CRIU-format images and restored by a")
	say("        second process, %d MiB each way, every byte checked; the server streams both ways throughout,", *total>>20)
	say("        under the network lock: hooks.DumpTCP locks it before the pause, hooks.RestoreTCPWith unlocks")
	say("        it between the restore and the resume (TCPOptions{Lock: true, Locker: l}, each process with")
	say("        a hooks.Locker of its own)")

	sv := &server{side: side{fd: sfd, out: down, in: up}}
	served := make(chan error, 1)
	go func() { served <- sv.run() }()

	// The client streams until it has written and read a third of the way
	// each, then stops for its checkpoint.
	cli := &side{fd: cfd, out: up, in: down}
	buf := make([]byte, chunk)
	for min(cli.written, cli.read) < *total/3 {
		if err := cli.step(buf); err != nil {
			return fmt.Errorf("client: %w", err)
		}
		select {
		case err := <-served:
			return fmt.Errorf("the server ended before the checkpoint: %v", err)
		default:
		}
		cli.wait(stallTimeout)
	}

	dir, err := os.MkdirTemp("", "gosoccr-tcpdemo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	var fst unix.Stat_t
	unix.Fstat(cfd, &fst)
	id := uint32(fst.Ino)

	// The locker acts on this namespace, the connection's.
	lk, err := hooks.NewLocker()
	if err != nil {
		return err
	}
	defer lk.Close()
	t0 := mono()
	st, err := hooks.DumpTCP(dirfd, cfd, id, hooks.TCPOptions{Lock: true, Locker: lk})
	if err != nil {
		return err
	}
	tDumped := mono()
	unix.Close(cfd) // in repair mode: the server sees nothing
	tClosed := mono()
	say("after %.2f MiB written and %.2f MiB read by the client: %s %s -> %s", mib(cli.written), mib(cli.read), st.State, st.Local, st.Remote)
	say("  t=0 hooks.DumpTCP (lock, pause, save, write the images) -> %.2f ms, close in repair mode -> %.2f ms", ms(tDumped-t0), ms(tClosed-t0))
	window := "not saved (kernel without TCP_REPAIR_WINDOW)"
	if st.Window != nil {
		window = "saved"
	}
	say("    %d bytes unread, %d unacknowledged (%d unsent), mss %d, wscale %d/%d, window %s",
		len(st.RecvQueue), len(st.SendQueue), st.Unsent, st.MSSClamp, st.SndWscale, st.RcvWscale, window)
	ents, _ := os.ReadDir(dir)
	var imgs []string
	for _, e := range ents {
		fi, _ := e.Info()
		imgs = append(imgs, fmt.Sprintf("%s (%d bytes)", e.Name(), fi.Size()))
	}
	say("    images: %s", strings.Join(imgs, ", "))

	self, _ := os.Executable()
	cmd := exec.Command(self, "-restore", "-images", dir, "-id", strconv.FormatUint(uint64(id), 10),
		"-up", strconv.FormatInt(cli.written, 10), "-down", strconv.FormatInt(cli.read, 10),
		"-bytes", strconv.FormatInt(*total, 10))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // it ends with this process
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	tStart := mono()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	// The second process reports its restore as "restored FD LOCKER START
	// END" (CLOCK_MONOTONIC; LOCKER: when it began to open its locker), then
	// its lines for the reader.
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	var rfd, tLocker, tRestore, tRestored int64
	if _, serr := fmt.Sscanf(line, "restored %d %d %d %d", &rfd, &tLocker, &tRestore, &tRestored); err != nil || serr != nil {
		return fmt.Errorf("the second process did not restore the connection: %q %v", line, err)
	}
	say("  second process (pid %d) started at %.2f ms: hooks.NewLocker %.2f -> %.2f ms,", cmd.Process.Pid, ms(tStart-t0), ms(tLocker-t0), ms(tRestore-t0))
	say("    hooks.RestoreTCPWith (restore, unlock, resume) %.2f -> %.2f ms (%.2f ms), socket %d",
		ms(tRestore-t0), ms(tRestored-t0), ms(tRestored-tRestore), rfd)
	var later []string
	for {
		l, err := r.ReadString('\n')
		if l != "" {
			later = append(later, strings.TrimSpace(l))
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		select {
		case serr := <-served:
			return fmt.Errorf("second process: %w (server: %v)", err, serr)
		default:
			return fmt.Errorf("second process: %w (the server still streams)", err)
		}
	}
	select {
	case err := <-served:
		if err != nil {
			return err
		}
	case <-time.After(stallTimeout):
		return fmt.Errorf("the server did not finish %s after the second process", stallTimeout)
	}
	unix.Close(sfd)
	sfdOpen = false

	// What the server saw, from the lock until it had caught up: all the
	// client had written read, all it had written by the unlock (at the
	// latest when RestoreTCPWith returned) acknowledged.
	readDone := sv.reads.reached(cli.written)
	ackDone := sv.acks.reached(sv.writes.at(tRestored))
	end := max(readDone, ackDone, tRestored)
	say("  server reading: nothing for %6.1f ms; all the client had written read %s RestoreTCPWith returned",
		ms(sv.reads.longestGap(t0, end)), after(readDone, tRestored))
	say("  server sending: no ACK for  %6.1f ms; all it had written by then acknowledged %s it",
		ms(sv.acks.longestGap(t0, end)), after(ackDone, tRestored))
	rsts := counter("/proc/net/snmp", "Tcp:", "OutRsts") - rsts0
	say("  (the server's segments that the lock dropped go again when a timer of its TCP fires: a tail loss")
	say("   probe within milliseconds, or the retransmission timeout, 200 ms or more; %d segments in all)", sv.retrans)
	for _, l := range later {
		say("  second process: %s", l)
	}
	say("client -> server: %d bytes, all read and verified by the server", sv.read)
	say("no reset: the server's %d sends and receives all succeeded (no ECONNRESET, no EPIPE, SO_ERROR 0),", sv.calls)
	say("  the longest turn of its loop took %.1f ms; TCP resets sent in this namespace: %d", ms(sv.longestTurn), rsts)
	if rsts != 0 {
		return fmt.Errorf("%d TCP resets were sent", rsts)
	}
	if err := hooks.RemoveLock(); err != nil {
		return err
	}
	cleaned = true
	say("network lock removed (hooks.RemoveLock)")
	for _, e := range ents {
		critBrief(e.Name(), filepath.Join(dir, e.Name()))
	}
	say("part 2: OK: every byte verified, once and in order, both ways")
	return nil
}

// second restores the client's connection and finishes its streams.
func second(dir string, id uint32, upOff, downOff int64) error {
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// The locker acts on this process's namespace, the connection's; the
	// first process left the connection locked.
	tl := mono()
	lk, err := hooks.NewLocker()
	if err != nil {
		return err
	}
	defer lk.Close()
	t0 := mono()
	fd, err := hooks.RestoreTCPWith(dirfd, id, hooks.TCPOptions{Lock: true, Locker: lk})
	if err != nil {
		return err
	}
	t1 := mono()
	unix.Close(dirfd)
	say("restored %d %d %d %d", fd, tl, t0, t1)
	cli := &side{fd: fd, out: up, in: down, written: upOff, read: downOff}
	buf := make([]byte, chunk)
	moved, pos := time.Now(), int64(0)
	for !cli.done() {
		if err := cli.step(buf); err != nil {
			return err
		}
		if p := cli.written + cli.read; p != pos {
			moved, pos = time.Now(), p
		}
		if time.Since(moved) > stallTimeout {
			return fmt.Errorf("the restored connection stalled for %s: wrote %d, read %d of %d", stallTimeout, cli.written, cli.read, *total)
		}
		cli.wait(stallTimeout)
	}
	if e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
		return fmt.Errorf("socket error %v %v", unix.Errno(e), err)
	}
	unix.Close(fd)
	say("server -> client: %d bytes, the last %d read and verified here", cli.read, cli.read-downOff)
	return nil
}

// critBrief shows a few fields of an image as crit decodes it.
func critBrief(name, path string) {
	crit, err := exec.LookPath("crit")
	if err != nil {
		say("    (crit not installed: not decoded)")
		return
	}
	out, err := exec.Command(crit, "decode", "-i", path, "--pretty").CombinedOutput()
	if err != nil {
		say("    crit: %v: %s", err, strings.TrimSpace(string(out)))
		return
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		t := strings.TrimSuffix(strings.TrimSpace(l), ",")
		for _, k := range []string{`"magic"`, `"inq_len"`, `"outq_len"`, `"unsq_len"`, `"state"`, `"src_port"`, `"dst_port"`, `"mss_clamp"`} {
			if strings.HasPrefix(t, k) {
				keep = append(keep, t)
			}
		}
	}
	say("crit decode -i %s: %s", name, strings.Join(keep, ", "))
}

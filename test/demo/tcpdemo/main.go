// Command tcpdemo is a part of `make demo`: a TCP connection carrying a
// checked byte stream both ways is checkpointed through the hooks into an
// images directory (CRIU's format), its socket closed in repair mode, and a
// second process restores it from the images and carries the client's side
// of the stream on to the end. It prints what happens and exits 0 only if
// every byte was verified, once and in order, both ways.
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
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/stream"
	"golang.org/x/sys/unix"
)

const (
	up   = 0 // client to server
	down = 1 // server to client
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

// side is one end's position in both streams.
type side struct {
	fd      int
	written int64 // of its outgoing direction
	read    int64 // of its incoming direction, verified
	out, in uint8
}

// step writes (up to limit) and reads what it can without blocking.
func (s *side) step(buf []byte, limit int64) (bool, error) {
	moved := false
	if s.written < limit {
		b := buf[:min(int64(len(buf)), limit-s.written)]
		stream.Fill(s.out, s.written, b)
		n, err := unix.SendmsgN(s.fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			return false, fmt.Errorf("write: %w", err)
		}
		if n > 0 {
			s.written += int64(n)
			moved = true
		}
	}
	for s.read < *total {
		n, _, err := unix.Recvfrom(s.fd, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return false, fmt.Errorf("end of stream after %d bytes", s.read)
		}
		if err := stream.Check(s.in, s.read, buf[:n]); err != nil {
			return false, err
		}
		s.read += int64(n)
		moved = true
	}
	return moved, nil
}

func wait(fds ...int) {
	p := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		p[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT}
	}
	unix.Poll(p, 2)
}

// quiet waits until nothing is in flight on fd: all it sent is acked.
func quiet(fd int) {
	for i := 0; i < 2000; i++ {
		outq, _ := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		unsent, _ := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
		if outq == unsent {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func first() error {
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(l)
	unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<10) // the window closes: unsent bytes
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	unix.Listen(l, 1)
	sa, _ := unix.Getsockname(l)
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(cfd, sa); err != nil {
		return err
	}
	sfd, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	cli := &side{fd: cfd, out: up, in: down}
	srv := &side{fd: sfd, out: down, in: up}
	say("part 2: a TCP connection checkpointed through the hooks into CRIU-format images,")
	say("        restored by a second process from the images; %d MiB each way, every byte checked", *total>>20)
	say("        (no network lock yet: around the checkpoint the server holds its sending and reading)")

	buf := make([]byte, 64<<10)
	// Stream a third of the way.
	third := *total / 3
	for cli.read < third || srv.read < third {
		if _, err := srv.step(buf, third); err != nil {
			return fmt.Errorf("server: %w", err)
		}
		if _, err := cli.step(buf, third); err != nil {
			return fmt.Errorf("client: %w", err)
		}
		wait(cfd, sfd)
	}
	// Each side writes on while the other stops reading: bytes wait in
	// the client's receive queue, and unsent in its send queue.
	for _, s := range []*side{srv, cli} {
		for i := 0; i < 16; i++ {
			b := buf[:32<<10]
			stream.Fill(s.out, s.written, b)
			if n, err := unix.SendmsgN(s.fd, b, nil, nil, unix.MSG_DONTWAIT); err == nil {
				s.written += int64(n)
			}
		}
	}
	say("after %d bytes written by the client and %d read by it: both sides hold; checkpoint", cli.written, cli.read)
	quiet(sfd)
	quiet(cfd)

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

	t0 := time.Now()
	st, err := hooks.DumpTCP(dirfd, cfd, id, hooks.TCPOptions{})
	if err != nil {
		return err
	}
	dumped := time.Since(t0)
	unix.Close(cfd) // in repair mode: the server sees nothing
	closed := time.Since(t0)
	say("  hooks.DumpTCP: %s in %s (close in repair mode at %s)", st.State, dumped.Round(time.Microsecond), closed.Round(time.Microsecond))
	say("    %s -> %s, send seq %d, receive seq %d", st.Local, st.Remote, st.SendSeq, st.RecvSeq)
	say("    receive queue %d bytes (unread by the client), send queue %d bytes (%d of them unsent)", len(st.RecvQueue), len(st.SendQueue), st.Unsent)
	say("    mss %d, wscale %d/%d, options %#x, window %+v", st.MSSClamp, st.SndWscale, st.RcvWscale, uint8(st.Options), *st.Window)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := e.Info()
		say("  image written: %s (%d bytes)", e.Name(), fi.Size())
	}

	self, _ := os.Executable()
	cmd := exec.Command(self, "-restore", "-images", dir, "-id", strconv.FormatUint(uint64(id), 10),
		"-up", strconv.FormatInt(cli.written, 10), "-down", strconv.FormatInt(cli.read, 10),
		"-bytes", strconv.FormatInt(*total, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	t1 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "restored") {
		cmd.Wait()
		return fmt.Errorf("the second process did not restore the connection: %q %v", line, err)
	}
	say("  second process (pid %d): %s", cmd.Process.Pid, strings.TrimSpace(line))
	say("  the connection had no socket for %s; the server goes on", time.Since(t0).Round(time.Microsecond))
	_ = t1

	// The server finishes both its streams while the second process
	// carries the client's.
	done := make(chan error, 1)
	go func() {
		for srv.written < *total || srv.read < *total {
			if _, err := srv.step(buf, *total); err != nil {
				done <- fmt.Errorf("server: %w", err)
				return
			}
			wait(sfd)
		}
		done <- nil
	}()
	for {
		l, err := r.ReadString('\n')
		if l != "" {
			say("  second process: %s", strings.TrimSpace(l))
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("second process: %w", err)
	}
	if err := <-done; err != nil {
		return err
	}
	say("client -> server: %d bytes, all read and verified by the server", srv.read)
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
	t0 := time.Now()
	fd, err := hooks.RestoreTCP(dirfd, id)
	if err != nil {
		return err
	}
	unix.Close(dirfd)
	say("restored connection %d from the images in %s (socket %d)", id, time.Since(t0).Round(time.Microsecond), fd)
	cli := &side{fd: fd, out: up, in: down, written: upOff, read: downOff}
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(60 * time.Second)
	for cli.written < *total || cli.read < *total {
		if _, err := cli.step(buf, *total); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout: wrote %d, read %d of %d", cli.written, cli.read, *total)
		}
		wait(fd)
	}
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

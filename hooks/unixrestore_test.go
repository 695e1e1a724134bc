package hooks_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fown"
	sk_opts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	sk_unix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/image"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// unixEntries are the two entries of a unixsk image, as DumpUnix writes
// them, for a test to change.
func unixEntries(id uint32, typ int, name, peer string, uid, gid uint32) (ours, theirs *sk_unix.UnixSkEntry) {
	z := proto.Uint32(0)
	fo := func() *fown.FownEntry { return &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z} }
	opts := func() *sk_opts.SkOptsEntry {
		return &sk_opts.SkOptsEntry{SoSndbuf: z, SoRcvbuf: z, SoSndTmoSec: proto.Uint64(0), SoSndTmoUsec: proto.Uint64(0),
			SoRcvTmoSec: proto.Uint64(0), SoRcvTmoUsec: proto.Uint64(0)}
	}
	kname := func(s string) []byte {
		if strings.HasPrefix(s, "@") {
			return append([]byte{0}, s[1:]...)
		}
		return []byte(s)
	}
	ours = &sk_unix.UnixSkEntry{Id: proto.Uint32(id), Ino: proto.Uint32(id), Type: proto.Uint32(uint32(typ)), State: proto.Uint32(1),
		Flags: z, Uflags: proto.Uint32(5), Backlog: z, Peer: proto.Uint32(id + 1), Fown: fo(), Opts: opts(), Name: kname(name),
		FilePerms: &sk_unix.FilePermsEntry{Mode: proto.Uint32(0o140777), Uid: proto.Uint32(uid), Gid: proto.Uint32(gid)}}
	theirs = &sk_unix.UnixSkEntry{Id: proto.Uint32(id + 1), Ino: proto.Uint32(id + 1), Type: proto.Uint32(uint32(typ)), State: proto.Uint32(1),
		Flags: z, Uflags: proto.Uint32(1), Backlog: z, Peer: proto.Uint32(id), Fown: fo(), Opts: opts(), Name: kname(peer)}
	return ours, theirs
}

func unixImage(es ...*sk_unix.UnixSkEntry) []byte {
	w := image.NewWriter("u", image.MagicUnixSk)
	for _, e := range es {
		if err := w.Entry(e); err != nil {
			panic(err)
		}
	}
	return w.Bytes()
}

func unixSeed() []byte {
	return unixImage(unixEntries(1, unix.SOCK_STREAM, "/run/a.sock", "@srv", 0, 0))
}

func writeUnixImage(t *testing.T, dir string, id uint32, es ...*sk_unix.UnixSkEntry) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, hooks.UnixImageName(id)), unixImage(es...), 0o600))
}

// TestIntegrationRestoreUnix: the Go restore of an external unix socket
// binds our name, connects to the peer (renamed by the policy), puts the
// shutdown state and the flags back, and connects with the owner's ids.
func TestIntegrationRestoreUnix(t *testing.T) {
	netnstest.CheckFDs(t)
	ns := netnstest.New(t) // abstract names are per network namespace
	tmp := t.TempDir()
	dir, dirfd := imagesDir(t)
	ns.MustDo(t, func() error {
		l := server(t, unix.SOCK_SEQPACKET, "@gosoccr-hooks-test-srv")
		ours, theirs := unixEntries(10, unix.SOCK_SEQPACKET, "@gosoccr-hooks-test-cli", "@gosoccr-hooks-test-old", 0, 0)
		shut := sk_opts.SkShutdown_WRITE
		ours.Shutdown = &shut
		ours.Flags = proto.Uint32(unix.O_NONBLOCK)
		ours.Opts.SoRcvbuf = proto.Uint32(65536)
		writeUnixImage(t, dir, 10, ours, theirs)
		pol, err := hooks.ParsePolicy([]byte("rename @gosoccr-hooks-test-old @gosoccr-hooks-test-srv\n"))
		must(t, err)
		fd, err := hooks.RestoreUnix(dirfd, 10, pol)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		must(t, err)
		defer unix.Close(a)
		if sa, _ := unix.Getpeername(a); sa.(*unix.SockaddrUnix).Name != "@gosoccr-hooks-test-cli" {
			t.Errorf("the server's peer is %q", sa.(*unix.SockaddrUnix).Name)
		}
		if _, err := unix.Write(fd, []byte("x")); !errors.Is(err, unix.EPIPE) {
			t.Errorf("write after SHUT_WR: %v, want EPIPE", err)
		}
		if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
			t.Error("O_NONBLOCK not restored")
		}
		if v, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); v != 65536 {
			t.Errorf("SO_RCVBUF %d, want 65536", v)
		}
		return nil
	})

	// A path that exists and is no socket is not ours to remove.
	server(t, unix.SOCK_DGRAM, tmp+"/log")
	must(t, os.WriteFile(tmp+"/file", nil, 0o600))
	writeUnixImage(t, dir, 20, must2(unixEntries(20, unix.SOCK_DGRAM, tmp+"/file", tmp+"/log", 0, 0))...)
	if _, err := hooks.RestoreUnix(dirfd, 20, nil); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind over a regular file: %v, want EADDRINUSE", err)
	}
	if _, err := os.Stat(tmp + "/file"); err != nil {
		t.Errorf("the regular file is gone: %v", err)
	}

	// The owner's ids: a server in a directory only root may enter is
	// out of reach for uid 65534, as it was for the dumped task.
	priv := filepath.Join(tmp, "private")
	must(t, os.Mkdir(priv, 0o700))
	server(t, unix.SOCK_DGRAM, priv+"/srv")
	writeUnixImage(t, dir, 30, must2(unixEntries(30, unix.SOCK_DGRAM, "", priv+"/srv", 65534, 65534))...)
	if _, err := hooks.RestoreUnix(dirfd, 30, nil); !errors.Is(err, unix.EACCES) {
		t.Errorf("connect as uid 65534 into a 0700 root directory: %v, want EACCES", err)
	}
	writeUnixImage(t, dir, 31, must2(unixEntries(31, unix.SOCK_DGRAM, "", priv+"/srv", 0, 0))...)
	fd, err := hooks.RestoreUnix(dirfd, 31, nil)
	if err != nil {
		t.Errorf("connect as root: %v", err)
	} else {
		unix.Close(fd)
	}
	if os.Getuid() != 0 || os.Geteuid() != 0 {
		t.Errorf("the process's ids changed: uid %d euid %d", os.Getuid(), os.Geteuid())
	}
}

func must2(a, b *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry { return []*sk_unix.UnixSkEntry{a, b} }

// TestRestoreUnixBadImages: images no socket can be made from are refused
// before anything is created.
func TestRestoreUnixBadImages(t *testing.T) {
	netnstest.CheckFDs(t)
	dir, dirfd := imagesDir(t)
	for i, c := range []struct {
		name   string
		change func(ours, theirs *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry
	}{
		{"raw type", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry {
			o.Type = proto.Uint32(unix.SOCK_RAW)
			return must2(o, p)
		}},
		{"nameless peer", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry { p.Name = []byte{}; return must2(o, p) }},
		{"no peer entry", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry { return []*sk_unix.UnixSkEntry{o} }},
		{"peer first", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry { return must2(p, o) }},
		{"no owner", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry { o.FilePerms = nil; return must2(o, p) }},
		{"NUL in path", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry { p.Name = []byte("/a\x00b"); return must2(o, p) }},
		{"long name", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry {
			p.Name = []byte("/" + strings.Repeat("x", 200))
			return must2(o, p)
		}},
		{"shutdown 7", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry {
			s := sk_opts.SkShutdown(7)
			o.Shutdown = &s
			return must2(o, p)
		}},
		{"timeout", func(o, p *sk_unix.UnixSkEntry) []*sk_unix.UnixSkEntry {
			o.Opts.SoRcvTmoUsec = proto.Uint64(2e6)
			return must2(o, p)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := uint32(100 + 2*i)
			writeUnixImage(t, dir, id, c.change(unixEntries(id, unix.SOCK_STREAM, "", "/nonexistent/srv", 0, 0))...)
			_, err := hooks.RestoreUnix(dirfd, id, nil)
			if !errors.Is(err, hooks.ErrBadImage) {
				t.Errorf("%v, want ErrBadImage", err)
			}
		})
	}
	must(t, os.WriteFile(filepath.Join(dir, hooks.UnixImageName(1)), []byte("garbage!garbage"), 0o600))
	if _, err := hooks.RestoreSocket(dirfd, 1, nil); !errors.Is(err, image.ErrCorrupt) {
		t.Errorf("garbage: %v, want ErrCorrupt", err)
	}
}

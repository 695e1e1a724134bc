package hooks_test

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	sk_packet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	sk_unix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/image"
	"github.com/gosoccr/gosoccr/internal/netnstest"
	"golang.org/x/sys/unix"
)

func imagesDir(t *testing.T) (string, int) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return dir, fd
}

// server makes a listening (or, for dgram, bound) unix socket at name.
func server(t *testing.T, typ int, name string) int {
	t.Helper()
	s, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(s) })
	if err := unix.Bind(s, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	if typ != unix.SOCK_DGRAM {
		if err := unix.Listen(s, 8); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func client(t *testing.T, typ int, bind, peer string) int {
	t.Helper()
	c, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(c) })
	if bind != "" {
		if err := unix.Bind(c, &unix.SockaddrUnix{Name: bind}); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: peer}); err != nil {
		t.Fatal(err)
	}
	return c
}

func inode(t *testing.T, fd int) uint32 {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

func readUnixImage(t *testing.T, dirfd int, id uint32) (ours, peer *sk_unix.UnixSkEntry) {
	t.Helper()
	img, err := image.Open(dirfd, hooks.UnixImageName(id))
	if err != nil {
		t.Fatal(err)
	}
	if img.Magic != image.MagicUnixSk {
		t.Fatalf("magic %#x", img.Magic)
	}
	ours, peer = &sk_unix.UnixSkEntry{}, &sk_unix.UnixSkEntry{}
	if err := img.Next(ours); err != nil {
		t.Fatal(err)
	}
	if err := img.Next(peer); err != nil {
		t.Fatal(err)
	}
	if err := img.Next(&sk_unix.UnixSkEntry{}); !errors.Is(err, io.EOF) {
		t.Fatalf("a third entry: %v", err)
	}
	return ours, peer
}

func TestDumpUnixKinds(t *testing.T) {
	netnstest.CheckFDs(t)
	tmp := t.TempDir()
	abs := "@gosoccr-test-" + strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name               string
		typ                int
		srv, bind          string
		wantName, wantPeer string
	}{
		{"stream/path", unix.SOCK_STREAM, tmp + "/s1.sock", "", "", tmp + "/s1.sock"},
		{"stream/bound-client", unix.SOCK_STREAM, tmp + "/s2.sock", tmp + "/c2.sock", tmp + "/c2.sock", tmp + "/s2.sock"},
		{"dgram/devlog", unix.SOCK_DGRAM, tmp + "/log", "", "", tmp + "/log"},
		{"seqpacket/abstract", unix.SOCK_SEQPACKET, abs + "-srv", abs + "-cli", abs + "-cli", abs + "-srv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dirfd := imagesDir(t)
			server(t, tc.typ, tc.srv)
			c := client(t, tc.typ, tc.bind, tc.srv)
			id := inode(t, c)
			u, err := hooks.DumpUnix(dirfd, c, id, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("dumped %s", u)
			ours, peer := readUnixImage(t, dirfd, id)
			if got := hooks.DisplayName(ours.GetName()); got != tc.wantName {
				t.Errorf("our name %q, want %q", got, tc.wantName)
			}
			if got := hooks.DisplayName(peer.GetName()); got != tc.wantPeer {
				t.Errorf("peer name %q, want %q", got, tc.wantPeer)
			}
			if ours.GetType() != uint32(tc.typ) || ours.GetPeer() != peer.GetId() || ours.GetId() != id {
				t.Errorf("entries do not link: ours %v, peer %v", ours, peer)
			}
			if ours.GetFilePerms().GetUid() != uint32(os.Getuid()) {
				t.Errorf("owner uid %d, want %d", ours.GetFilePerms().GetUid(), os.Getuid())
			}
		})
	}
}

func TestDumpUnixRefusals(t *testing.T) {
	netnstest.CheckFDs(t)
	tmp := t.TempDir()
	_, dirfd := imagesDir(t)

	// A nameless peer.
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	_, err = hooks.DumpUnix(dirfd, sp[0], inode(t, sp[0]), nil)
	if !errors.Is(err, hooks.ErrRefused) || !strings.Contains(err.Error(), "no name") {
		t.Errorf("socketpair: %v, want a refusal naming the nameless peer", err)
	}

	// Not a unix socket, not connected: not ours.
	udp, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(udp)
	if _, err := hooks.DumpUnix(dirfd, udp, 1, nil); !errors.Is(err, hooks.ErrNotMine) {
		t.Errorf("UDP socket: %v, want ErrNotMine", err)
	}

	// Excluded by the policy: not ours.
	server(t, unix.SOCK_DGRAM, tmp+"/log")
	c := client(t, unix.SOCK_DGRAM, "", tmp+"/log")
	pol, err := hooks.ParsePolicy([]byte("exclude " + tmp + "/lo?\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hooks.DumpUnix(dirfd, c, inode(t, c), pol); !errors.Is(err, hooks.ErrNotMine) {
		t.Errorf("excluded peer: %v, want ErrNotMine", err)
	}

	// Unread data: refused, then dropped and recorded under the policy.
	l := server(t, unix.SOCK_STREAM, tmp+"/srv.sock")
	c2 := client(t, unix.SOCK_STREAM, "", tmp+"/srv.sock")
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a)
	unix.Write(a, []byte("unread bytes"))
	id := inode(t, c2)
	_, err = hooks.DumpUnix(dirfd, c2, id, nil)
	if !errors.Is(err, hooks.ErrRefused) || !strings.Contains(err.Error(), "12 unread bytes") {
		t.Errorf("unread data: %v, want a refusal with the byte count", err)
	}
	allow, _ := hooks.ParsePolicy([]byte("allow-data-loss\n"))
	u, err := hooks.DumpUnix(dirfd, c2, id, allow)
	if err != nil || u.Dropped != 12 {
		t.Fatalf("with allow-data-loss: %v, dropped %v", err, u)
	}
	img, err := image.Open(dirfd, hooks.QueueImageName(id))
	if err != nil {
		t.Fatal(err)
	}
	var pe sk_packet.SkPacketEntry
	if err := img.Next(&pe); err != nil || pe.GetLength() != 12 {
		t.Fatalf("sk-queues entry: %v %v", &pe, err)
	}
	if b, err := img.Raw(uint64(pe.GetLength())); err != nil || string(b) != "unread bytes" {
		t.Fatalf("sk-queues bytes %q %v", b, err)
	}
	// The bytes are still there for the task.
	buf := make([]byte, 64)
	if n, _ := unix.Read(c2, buf); string(buf[:n]) != "unread bytes" {
		t.Errorf("the dump took the bytes: read %q", buf[:n])
	}
}

func TestParsePolicy(t *testing.T) {
	pol, err := hooks.ParsePolicy([]byte(`# comment
handle /run/*.sock
handle @app-*
exclude /run/private.sock  # not this one
rename /run/a.sock /run/b.sock
allow-data-loss
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"/run/x.sock": true, "/run/private.sock": false, "@app-1": true, "/dev/log": false} {
		if pol.Handles(name) != want {
			t.Errorf("Handles(%q) = %v, want %v", name, !want, want)
		}
	}
	if pol.Renamed("/run/a.sock") != "/run/b.sock" || pol.Renamed("/x") != "/x" || !pol.AllowDataLoss {
		t.Errorf("policy %+v", pol)
	}
	for _, bad := range []string{"handle", "rename a", "frobnicate x", "handle [", "allow-data-loss yes"} {
		if _, err := hooks.ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if (&hooks.Policy{}).Handles("/anything") != true {
		t.Error("the zero policy does not handle everything")
	}
}

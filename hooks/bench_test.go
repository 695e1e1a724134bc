package hooks_test

import (
	"testing"

	"github.com/gosoccr/gosoccr/hooks"
	"golang.org/x/sys/unix"
)

// BenchmarkDumpUnix measures the dump of one external unix socket, its
// image written included (a new file each time, as in a dump).
func BenchmarkDumpUnix(b *testing.B) {
	tmp := b.TempDir()
	dirfd, err := unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(dirfd)
	l, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(l)
	unix.Bind(l, &unix.SockaddrUnix{Name: tmp + "/srv"})
	unix.Listen(l, 8)
	c, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(c)
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: tmp + "/srv"}); err != nil {
		b.Fatal(err)
	}
	var st unix.Stat_t
	unix.Fstat(c, &st)
	b.ReportAllocs()
	id := uint32(st.Ino)
	for b.Loop() {
		id++
		if _, err := hooks.DumpUnix(dirfd, c, id, nil); err != nil {
			b.Fatal(err)
		}
	}
}

package hooks_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// writeCRIUDir writes what `criu dump --tcp-established` would for the
// sample states: a files.img (or, old style, inetsk.img) with a regular
// file first, then one INETSK entry per state, and tcp-stream-<ino in
// hex>.img for each; ino starts at 0xabc00.
func writeCRIUDir(t *testing.T, dirfd int, oldStyle bool) []uint32 {
	t.Helper()
	var files *image.Writer
	if oldStyle {
		files = image.NewWriter("inetsk.img", image.MagicInetSk)
	} else {
		files = image.NewWriter("files.img", 0x56303138)
		reg := &fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Id: proto.Uint32(1),
			Reg: &regfile.RegFileEntry{Id: proto.Uint32(1), Flags: proto.Uint32(0), Pos: proto.Uint64(0), Name: proto.String("/bin/x"),
				Fown: hooks.InetSkEntry(sampleStates()[0], 1).Fown}}
		if err := files.Entry(reg); err != nil {
			t.Fatal(err)
		}
	}
	var inos []uint32
	for i, st := range sampleStates() {
		ino := uint32(0xabc00 + i)
		inos = append(inos, ino)
		ise := hooks.InetSkEntry(st, ino)
		ise.Id = proto.Uint32(uint32(10 + i)) // CRIU's file id, not the inode
		var err error
		if oldStyle {
			err = files.Entry(ise)
		} else {
			err = files.Entry(&fdinfo.FileEntry{Type: fdinfo.FdTypes_INETSK.Enum(), Id: ise.Id, Isk: ise})
		}
		if err != nil {
			t.Fatal(err)
		}
		w := image.NewWriter(hooks.CRIUTCPStreamImageName(ino), image.MagicTCPStream)
		if err := w.Entry(hooks.TCPStreamEntry(st)); err != nil {
			t.Fatal(err)
		}
		w.Raw(st.RecvQueue)
		w.Raw(st.SendQueue)
		if err := w.Commit(dirfd); err != nil {
			t.Fatal(err)
		}
	}
	if err := files.Commit(dirfd); err != nil {
		t.Fatal(err)
	}
	return inos
}

// TestFindCRIUTCP: connections are found by inode in files.img and in an
// old inetsk.img, and read back as they were.
func TestFindCRIUTCP(t *testing.T) {
	if hooks.CRIUTCPStreamImageName(0xe5046) != "tcp-stream-e5046.img" {
		t.Fatalf("name: %s", hooks.CRIUTCPStreamImageName(0xe5046))
	}
	for _, old := range []bool{false, true} {
		_, dirfd := imagesDir(t)
		inos := writeCRIUDir(t, dirfd, old)
		list, err := hooks.ListCRIUTCP(dirfd)
		if err != nil || len(list) != len(inos) {
			t.Fatalf("old=%v: list %v, %v", old, list, err)
		}
		for i, st := range sampleStates() {
			if c := list[i]; c.Ino != inos[i] || c.Local != st.Local || c.Remote != st.Remote || c.State != st.State {
				t.Errorf("old=%v: listed %s for %s", old, c, st)
			}
			got, err := hooks.FindCRIUTCP(dirfd, inos[i])
			if err != nil {
				t.Fatalf("old=%v: %v", old, err)
			}
			if got.String() != st.String() || !reflect.DeepEqual(got.Window, st.Window) ||
				string(got.RecvQueue) != string(st.RecvQueue) || string(got.SendQueue) != string(st.SendQueue) {
				t.Errorf("old=%v: read %s, wrote %s", old, got, st)
			}
		}
		if _, err := hooks.FindCRIUTCP(dirfd, 12345); !errors.Is(err, os.ErrNotExist) || !errors.Is(err, unix.ENOENT) {
			t.Errorf("old=%v: unknown inode: %v", old, err)
		}
	}
}

// TestFindCRIUTCPDamaged: a missing or damaged image is an error, never a
// panic or a huge allocation.
func TestFindCRIUTCPDamaged(t *testing.T) {
	dir, dirfd := imagesDir(t)
	if _, err := hooks.ListCRIUTCP(dirfd); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty directory: %v", err)
	}
	inos := writeCRIUDir(t, dirfd, false)
	stream := filepath.Join(dir, hooks.CRIUTCPStreamImageName(inos[0]))
	b, err := os.ReadFile(stream)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n += 7 {
		os.WriteFile(stream, b[:n], 0o600)
		if _, err := hooks.FindCRIUTCP(dirfd, inos[0]); err == nil {
			t.Fatalf("stream image cut at %d: no error", n)
		}
	}
	os.WriteFile(filepath.Join(dir, "files.img"), []byte{0x19, 0x43, 0x56, 0x54, 0x38, 0x31, 0x30, 0x56, 0xff, 0xff, 0xff, 0x7f}, 0o600)
	if _, err := hooks.FindCRIUTCP(dirfd, inos[1]); !errors.Is(err, image.ErrCorrupt) {
		t.Errorf("files.img with a huge entry: %v", err)
	}
}

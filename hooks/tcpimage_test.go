package hooks_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/image"
	"github.com/gosoccr/gosoccr/soccr"
)

func sampleStates() []*soccr.State {
	return []*soccr.State{
		{State: soccr.Established, Local: netip.MustParseAddrPort("10.1.2.3:4567"), Remote: netip.MustParseAddrPort("192.0.2.9:80"),
			RecvSeq: 0xfffffff0, SendSeq: 17, RecvQueue: []byte("received"), SendQueue: []byte("sent, unsent"), Unsent: 6,
			MSSClamp: 1460, Options: soccr.OptWscale | soccr.OptSACK | soccr.OptTimestamps, SndWscale: 7, RcvWscale: 9, Timestamp: 123456,
			Window:   &soccr.Window{SndWl1: 1, SndWnd: 2, MaxWindow: 3, RcvWnd: 4, RcvWup: 5},
			Sockopts: &soccr.Sockopts{NoDelay: true, KeepAlive: true, KeepIdle: 60, KeepIntvl: 10, KeepCnt: 3}},
		{State: soccr.CloseWait, Local: netip.MustParseAddrPort("[2001:db8::1]:443"), Remote: netip.MustParseAddrPort("[2001:db8::2]:50000"),
			RecvSeq: 1, SendSeq: 2, MSSClamp: 1440, Sockopts: &soccr.Sockopts{}},
		{State: soccr.FinWait2, Local: netip.MustParseAddrPort("[::ffff:127.0.0.1]:1"), Remote: netip.MustParseAddrPort("[::ffff:127.0.0.1]:2"),
			RecvSeq: 5, SendSeq: 6, MSSClamp: 65483, Sockopts: &soccr.Sockopts{Cork: true}},
	}
}

// TestTCPImagesRoundTrip: a State written as images reads back equal, and
// the images decode and encode again to the same bytes.
func TestTCPImagesRoundTrip(t *testing.T) {
	dir, dirfd := imagesDir(t)
	for i, st := range sampleStates() {
		id := uint32(100 + i)
		if err := hooks.WriteTCPImages(dirfd, id, st); err != nil {
			t.Fatal(err)
		}
		got, err := hooks.ReadTCPImages(dirfd, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.RecvQueue == nil {
			got.RecvQueue = st.RecvQueue
		}
		if got.SendQueue == nil {
			got.SendQueue = st.SendQueue
		}
		if !reflect.DeepEqual(normal(got), normal(st)) {
			t.Errorf("state %d came back as\n%+v\nwant\n%+v", i, got, st)
		}
		for _, name := range []string{hooks.TCPStreamImageName(id), hooks.InetImageName(id)} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if re := reencode(t, name, b); !bytes.Equal(re, b) {
				t.Errorf("%s: decode then encode changed the bytes", name)
			}
		}
	}
}

func normal(st *soccr.State) soccr.State {
	s := *st
	if len(s.RecvQueue) == 0 {
		s.RecvQueue = nil
	}
	if len(s.SendQueue) == 0 {
		s.SendQueue = nil
	}
	return s
}

// reencode decodes an image entry by entry and writes it again.
func reencode(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	img, err := image.Parse(name, b)
	if err != nil {
		t.Fatal(err)
	}
	w := image.NewWriter(name, img.Magic)
	switch img.Magic {
	case image.MagicTCPStream:
		tse, rq, sq, err := hooks.DecodeTCPStream(img)
		if err != nil {
			t.Fatal(err)
		}
		w.Entry(tse)
		w.Raw(rq)
		w.Raw(sq)
	case image.MagicInetSk:
		ise, err := hooks.DecodeInetSk(img)
		if err != nil {
			t.Fatal(err)
		}
		w.Entry(ise)
	}
	return w.Bytes()
}

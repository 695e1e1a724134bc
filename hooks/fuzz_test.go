package hooks_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	sk_inet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	tcp_stream "github.com/checkpoint-restore/go-criu/v7/crit/images/tcp-stream"
	"github.com/gosoccr/gosoccr/hooks"
	"github.com/gosoccr/gosoccr/internal/image"
	"google.golang.org/protobuf/proto"
)

// decoded is an image taken apart by the hooks' decoders.
type decoded struct {
	magic   uint32
	entries []proto.Message
	raw     [][]byte // the queue bytes of a tcp-stream image
}

// decodeImage decodes b as one of the images the hooks write.
func decodeImage(name string, b []byte) (*decoded, error) {
	img, err := image.Parse(name, b)
	if err != nil {
		return nil, err
	}
	d := &decoded{magic: img.Magic}
	switch img.Magic {
	case image.MagicTCPStream:
		tse, rq, sq, err := hooks.DecodeTCPStream(img)
		if err != nil {
			return nil, err
		}
		d.entries, d.raw = []proto.Message{tse}, [][]byte{rq, sq}
	case image.MagicInetSk:
		ise, err := hooks.DecodeInetSk(img)
		if err != nil {
			return nil, err
		}
		d.entries = []proto.Message{ise}
	case image.MagicUnixSk:
		es, err := hooks.DecodeUnixSk(img)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			d.entries = append(d.entries, e)
		}
	default:
		return nil, fmt.Errorf("magic %#x: %w", img.Magic, image.ErrCorrupt)
	}
	return d, nil
}

// encode writes d again as an image.
func (d *decoded) encode(name string) ([]byte, error) {
	w := image.NewWriter(name, d.magic)
	for _, e := range d.entries {
		if err := w.Entry(e); err != nil {
			return nil, err
		}
	}
	for _, r := range d.raw {
		w.Raw(r)
	}
	return w.Bytes(), nil
}

func (d *decoded) equal(o *decoded) bool {
	if d.magic != o.magic || len(d.entries) != len(o.entries) || len(d.raw) != len(o.raw) {
		return false
	}
	for i := range d.entries {
		if !proto.Equal(d.entries[i], o.entries[i]) {
			return false
		}
	}
	for i := range d.raw {
		if !bytes.Equal(d.raw[i], o.raw[i]) {
			return false
		}
	}
	return true
}

// reencodeAny decodes an image written by the hooks and encodes it again.
func reencodeAny(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	d, err := decodeImage(name, b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	re, err := d.encode(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return re
}

func bytesEqual(a, b []byte) bool { return bytes.Equal(a, b) }

// checkImage is the property the fuzz tests check: decoding never panics,
// an image that decodes encodes again to the same entries, and the State
// rebuilt from a tcp-stream entry is consistent or refused.
func checkImage(t *testing.T, b []byte) {
	d, err := decodeImage("fuzz.img", b)
	if err != nil {
		// An image without its entry is io.EOF (image.Next's end).
		if !errors.Is(err, image.ErrCorrupt) && !errors.Is(err, io.EOF) {
			t.Fatalf("an error that is not ErrCorrupt: %v", err)
		}
		return
	}
	re, err := d.encode("fuzz.img")
	if err != nil {
		// A decoded message always encodes: required fields were there.
		t.Fatalf("decoded, but does not encode: %v", err)
	}
	d2, err := decodeImage("fuzz.img", re)
	if err != nil {
		t.Fatalf("re-encoded image does not decode: %v", err)
	}
	if !d.equal(d2) {
		t.Fatalf("entries changed through encode and decode")
	}
	if re2, _ := d2.encode("fuzz.img"); !bytes.Equal(re, re2) {
		t.Fatalf("encoding is not stable")
	}
	if d.magic == image.MagicTCPStream {
		tse := d.entries[0].(*tcp_stream.TcpStreamEntry)
		for _, fam := range []uint32{2, 10} {
			ise := hooks.InetSkEntry(sampleStates()[0], 1)
			ise.Family = proto.Uint32(fam)
			ise.SrcAddr, ise.DstAddr = make([]uint32, fam/2-1), make([]uint32, fam/2-1)
			if st, err := hooks.StateFromImages(tse, ise, d.raw[0], d.raw[1]); err == nil {
				if got := hooks.TCPStreamEntry(st); got.GetInqLen() != tse.GetInqLen() || got.GetOutqLen() != tse.GetOutqLen() || got.GetUnsqLen() != tse.GetUnsqLen() {
					t.Fatalf("state %s from entry %v", st, tse)
				}
			}
		}
	}
	if d.magic == image.MagicInetSk {
		ise := d.entries[0].(*sk_inet.InetSkEntry)
		hooks.StateFromImages(&tcp_stream.TcpStreamEntry{}, ise, nil, nil)
	}
}

// seedImages are images written by the hooks for sample states.
func seedImages(f *testing.F) [][]byte {
	var out [][]byte
	for i, st := range sampleStates() {
		w := image.NewWriter("s", image.MagicTCPStream)
		w.Entry(hooks.TCPStreamEntry(st))
		w.Raw(st.RecvQueue)
		w.Raw(st.SendQueue)
		out = append(out, w.Bytes())
		w = image.NewWriter("s", image.MagicInetSk)
		w.Entry(hooks.InetSkEntry(st, uint32(i)))
		out = append(out, w.Bytes())
	}
	return out
}

// crashers are inputs that once broke a decoder or the property; they
// stay as a regression table.
var crashers = [][]byte{
	// Empty, magics only, a length without bytes.
	{},
	{0x19, 0x43, 0x56, 0x54, 0x06, 0x55, 0x46, 0x51},
	{0x19, 0x43, 0x56, 0x54, 0x06, 0x55, 0x46, 0x51, 0xff, 0xff, 0xff, 0xff},
	// A tcp-stream entry whose queue lengths exceed the file.
	append([]byte{0x19, 0x43, 0x56, 0x54, 0x06, 0x55, 0x46, 0x51, 12, 0, 0, 0},
		0x08, 0xff, 0xff, 0x03, 0x10, 0x01, 0x18, 0xff, 0xff, 0x03, 0x20, 0x01),
	// A unixsk image of empty entries: required fields missing.
	{0x19, 0x43, 0x56, 0x54, 0x43, 0x39, 0x37, 0x54, 0, 0, 0, 0},
}

func TestImageCrashers(t *testing.T) {
	for i, b := range crashers {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkImage(t, b) })
	}
}

func FuzzDecodeTCPStream(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b)
	}
	for _, b := range crashers {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 8 {
			b[4], b[5], b[6], b[7] = 0x06, 0x55, 0x46, 0x51 // TCP_STREAM
		}
		checkImage(t, b)
	})
}

func FuzzDecodeInetSk(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 8 {
			b[4], b[5], b[6], b[7] = 0x51, 0x38, 0x44, 0x56 // INETSK
		}
		checkImage(t, b)
	})
}

func FuzzDecodeUnixSk(f *testing.F) {
	f.Add(unixSeed())
	for _, b := range crashers {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 8 {
			b[4], b[5], b[6], b[7] = 0x43, 0x39, 0x37, 0x54 // UNIXSK
		}
		checkImage(t, b)
	})
}

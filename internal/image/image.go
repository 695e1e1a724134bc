// Package image reads and writes files in CRIU's image framing: the magic
// IMG_COMMON, the image's own magic, then entries, each a little-endian
// u32 length and that many bytes of protobuf, optionally followed by raw
// bytes whose length the entry gives (tcp-stream, sk-queues). Files are
// opened relative to the images directory's descriptor with O_NOFOLLOW;
// every length read is bounded before anything is allocated.
package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Magics of the images gosoccr writes (CRIU's criu/include/magic.h).
const (
	MagicCommon    = 0x54564319
	MagicUnixSk    = 0x54373943
	MagicSkQueues  = 0x56264026
	MagicInetSk    = 0x56443851
	MagicTCPStream = 0x51465506
)

// Limits on what a reader accepts.
const (
	MaxFile  = 64 << 20 // a whole image file
	MaxEntry = 1 << 20  // one protobuf entry
)

// ErrCorrupt: the file is not a well-formed image.
var ErrCorrupt = errors.New("corrupt image")

// Writer builds an image in memory; Commit writes it out in one go.
type Writer struct {
	name string
	buf  []byte
}

// NewWriter starts an image called name with the given magic.
func NewWriter(name string, magic uint32) *Writer {
	w := &Writer{name: name, buf: make([]byte, 0, 256)}
	w.buf = binary.LittleEndian.AppendUint32(w.buf, MagicCommon)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, magic)
	return w
}

// Entry appends one protobuf entry.
func (w *Writer) Entry(m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("image %s: encoding %T: %w", w.name, m, err)
	}
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(b)))
	w.buf = append(w.buf, b...)
	return nil
}

// Raw appends bytes that follow an entry (the entry says how many).
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }

// Bytes returns the image as built so far.
func (w *Writer) Bytes() []byte { return w.buf }

// Commit writes the image into the directory dirfd, replacing a file of the
// same name, never following a symbolic link.
func (w *Writer) Commit(dirfd int) error {
	fd, err := unix.Openat(dirfd, w.name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("image %s: %w", w.name, os.NewSyscallError("openat", err))
	}
	f := os.NewFile(uintptr(fd), w.name)
	_, err = f.Write(w.buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", w.name, err)
	}
	return nil
}

// Image is an image read back: its magic and its bytes after the magics.
type Image struct {
	Name  string
	Magic uint32
	rest  []byte
}

// Open reads the image name from the directory dirfd. A missing file is
// an error for which errors.Is(err, os.ErrNotExist) holds.
func Open(dirfd int, name string) (*Image, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, os.NewSyscallError("openat", err))
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	if len(b) > MaxFile {
		return nil, fmt.Errorf("image %s: %w: larger than %d bytes", name, ErrCorrupt, MaxFile)
	}
	return Parse(name, b)
}

// Parse checks the magics of an image held in b.
func Parse(name string, b []byte) (*Image, error) {
	if len(b) < 8 || binary.LittleEndian.Uint32(b) != MagicCommon {
		return nil, fmt.Errorf("image %s: %w: no IMG_COMMON magic", name, ErrCorrupt)
	}
	return &Image{Name: name, Magic: binary.LittleEndian.Uint32(b[4:]), rest: b[8:]}, nil
}

// Next decodes the next entry into m. It returns io.EOF after the last one.
func (img *Image) Next(m proto.Message) error {
	if len(img.rest) == 0 {
		return io.EOF
	}
	if len(img.rest) < 4 {
		return fmt.Errorf("image %s: %w: truncated entry length", img.Name, ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(img.rest)
	if n > MaxEntry || uint64(n) > uint64(len(img.rest)-4) {
		return fmt.Errorf("image %s: %w: entry of %d bytes, %d left", img.Name, ErrCorrupt, n, len(img.rest)-4)
	}
	if err := proto.Unmarshal(img.rest[4:4+n], m); err != nil {
		return fmt.Errorf("image %s: %w: %v", img.Name, ErrCorrupt, err)
	}
	img.rest = img.rest[4+n:]
	return nil
}

// Raw takes the n raw bytes that follow the last entry.
func (img *Image) Raw(n uint64) ([]byte, error) {
	if n > uint64(len(img.rest)) {
		return nil, fmt.Errorf("image %s: %w: %d raw bytes wanted, %d left", img.Name, ErrCorrupt, n, len(img.rest))
	}
	b := img.rest[:n:n]
	img.rest = img.rest[n:]
	return b, nil
}

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

// Writer builds an image in memory; Commit writes it out in one go. Raw
// bytes (queues) are not copied: the Writer refers to them until Commit.
type Writer struct {
	name  string
	parts [][]byte // written in order; the last one is where entries go
}

// NewWriter starts an image called name with the given magic.
func NewWriter(name string, magic uint32) *Writer {
	b := make([]byte, 0, 256)
	b = binary.LittleEndian.AppendUint32(b, MagicCommon)
	b = binary.LittleEndian.AppendUint32(b, magic)
	return &Writer{name: name, parts: [][]byte{b}}
}

// Entry appends one protobuf entry.
func (w *Writer) Entry(m proto.Message) error {
	last := &w.parts[len(w.parts)-1]
	*last = binary.LittleEndian.AppendUint32(*last, 0)
	n := len(*last)
	b, err := proto.MarshalOptions{}.MarshalAppend(*last, m)
	if err != nil {
		*last = (*last)[:n-4]
		return fmt.Errorf("image %s: encoding %T: %w", w.name, m, err)
	}
	binary.LittleEndian.PutUint32(b[n-4:], uint32(len(b)-n))
	*last = b
	return nil
}

// Raw appends bytes that follow an entry (the entry says how many). b must
// not change before Commit.
func (w *Writer) Raw(b []byte) {
	if len(b) > 0 {
		w.parts = append(w.parts, b, nil)
	}
}

// Bytes returns the image as built so far, in one slice.
func (w *Writer) Bytes() []byte {
	var out []byte
	for _, p := range w.parts {
		out = append(out, p...)
	}
	return out
}

// Commit writes the image into the directory dirfd, replacing a file of the
// same name, never following a symbolic link.
func (w *Writer) Commit(dirfd int) error {
	fd, err := unix.Openat(dirfd, w.name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("image %s: %w", w.name, os.NewSyscallError("openat", err))
	}
	err = writeAll(fd, w.parts)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = os.NewSyscallError("close", cerr)
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", w.name, err)
	}
	return nil
}

// writeAll writes parts with writev(2), going on after short writes.
func writeAll(fd int, parts [][]byte) error {
	var iov [][]byte
	for _, p := range parts {
		if len(p) > 0 {
			iov = append(iov, p)
		}
	}
	for len(iov) > 0 {
		n, err := unix.Writev(fd, iov)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("writev", err)
		}
		for n > 0 && len(iov) > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
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
	// Read in one go where the size is known.
	var b []byte
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.Size() <= MaxFile {
		b = make([]byte, 0, fi.Size()+1)
	}
	b, err = readAll(f, b)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	if len(b) > MaxFile {
		return nil, fmt.Errorf("image %s: %w: larger than %d bytes", name, ErrCorrupt, MaxFile)
	}
	return Parse(name, b)
}

// readAll reads f to its end, or to one byte past MaxFile, into b's
// spare capacity first.
func readAll(f *os.File, b []byte) ([]byte, error) {
	if cap(b) == 0 {
		b = make([]byte, 0, 4096)
	}
	for len(b) <= MaxFile {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):min(cap(b), MaxFile+1)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
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

package hooks

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	sk_inet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	"github.com/gosoccr/gosoccr/internal/image"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// Interop with CRIU's own dumps. `criu dump --tcp-established` keeps every
// TCP socket of the dumped tasks as an InetSkEntry: CRIU 4.x puts it in
// files.img (a FileEntry of type INETSK, the entry in its isk field), CRIU
// before 3.x in inetsk.img (one InetSkEntry per socket). The connection
// itself is in tcp-stream-<ino>.img, the socket's inode in hexadecimal
// (CRIU's "tcp-stream-%x", checked against CRIU 4.2.1's dumps), in the
// format of TCPStreamImageName's images. CRIU keeps its network lock after
// the dump (with --network-lock nftables, an nftables table "inet CRIU-..."
// that drops the connection's packets both ways): a tool that restores a
// connection itself lifts it when the socket is restored.

// The images CRIU keeps sockets in.
const (
	criuFilesImage = "files.img"  // CRIU >= 3.x: FileEntry messages
	criuInetImage  = "inetsk.img" // older CRIU: InetSkEntry messages
	magicFiles     = 0x56303138   // FILES_MAGIC of CRIU's magic.h
)

// CRIUTCPStreamImageName names the tcp-stream image that CRIU writes for
// the TCP socket whose inode is ino.
func CRIUTCPStreamImageName(ino uint32) string {
	return "tcp-stream-" + strconv.FormatUint(uint64(ino), 16) + ".img"
}

// CRIUConn is a TCP connection found in a CRIU images directory.
type CRIUConn struct {
	Ino    uint32 // the socket's inode, as CRIU names it
	State  soccr.TCPState
	Local  netip.AddrPort
	Remote netip.AddrPort
}

func (c CRIUConn) String() string {
	return fmt.Sprintf("inode %d (%#x) %s %s->%s", c.Ino, c.Ino, c.State, c.Local, c.Remote)
}

// ListCRIUTCP lists the TCP connections that a `criu dump
// --tcp-established` wrote in the images directory dirfd: the TCP sockets
// that have a tcp-stream image, in the order CRIU recorded them.
func ListCRIUTCP(dirfd int) ([]CRIUConn, error) {
	sks, err := criuInetSockets(dirfd)
	if err != nil {
		return nil, err
	}
	var out []CRIUConn
	for _, ise := range sks {
		if !isTCPEntry(ise) || !criuImageExists(dirfd, CRIUTCPStreamImageName(ise.GetIno())) {
			continue
		}
		c := CRIUConn{Ino: ise.GetIno(), State: soccr.TCPState(ise.GetState())}
		if src, err := wordsAddr(ise.GetFamily(), ise.GetSrcAddr()); err == nil {
			c.Local = netip.AddrPortFrom(src, uint16(ise.GetSrcPort()))
		}
		if dst, err := wordsAddr(ise.GetFamily(), ise.GetDstAddr()); err == nil {
			c.Remote = netip.AddrPortFrom(dst, uint16(ise.GetDstPort()))
		}
		out = append(out, c)
	}
	return out, nil
}

// FindCRIUTCP reads the TCP connection of the socket whose inode is ino
// from the images directory dirfd written by `criu dump
// --tcp-established`, and returns its State.
//
// Errors: an error for which errors.Is(err, os.ErrNotExist) holds (and
// unix.ENOENT) when the directory has no such TCP socket or no tcp-stream
// image for it; ErrBadImage or image.ErrCorrupt for a damaged image.
func FindCRIUTCP(dirfd int, ino uint32) (*soccr.State, error) {
	ise, err := FindCRIUInetSk(dirfd, ino)
	if err != nil {
		return nil, err
	}
	tse, rq, sq, err := ReadTCPStream(dirfd, CRIUTCPStreamImageName(ino))
	if err != nil {
		return nil, fmt.Errorf("criu tcp socket %d: %w", ino, err)
	}
	st, err := StateFromImages(tse, ise, rq, sq)
	if err != nil {
		return nil, fmt.Errorf("criu tcp socket %d: %w", ino, err)
	}
	return st, nil
}

// RestoreFromCRIU restores the TCP connection of the socket ino, found in
// a directory written by `criu dump --tcp-established` (see FindCRIUTCP),
// into a new socket (close-on-exec, blocking), connected and out of repair
// mode, and returns its descriptor, which belongs to the caller. The
// connection goes on at once: CRIU's network lock must be lifted right
// after (use RestoreFromCRIUPaused to lift it before the socket sends
// anything). On failure nothing is left behind.
func RestoreFromCRIU(dirfd int, ino uint32) (int, error) {
	c, _, err := RestoreFromCRIUPaused(dirfd, ino)
	if err != nil {
		return -1, err
	}
	fd := c.FD()
	if err := c.Resume(); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("criu tcp socket %d: %w", ino, err)
	}
	return fd, nil
}

// RestoreFromCRIUPaused is RestoreFromCRIU without the final resume: the
// new socket, c.FD(), holds the connection in repair mode and sends
// nothing, so that the caller can lift CRIU's network lock, then call
// c.Resume. The socket belongs to the caller; closing it without Resume
// drops the connection silently. It also returns the State read from the
// images.
func RestoreFromCRIUPaused(dirfd int, ino uint32) (*soccr.Conn, *soccr.State, error) {
	st, err := FindCRIUTCP(dirfd, ino)
	if err != nil {
		return nil, nil, err
	}
	c, err := soccr.RestorePaused(st)
	if err != nil {
		return nil, nil, fmt.Errorf("criu tcp socket %d: %w", ino, err)
	}
	return c, st, nil
}

// FindCRIUInetSk returns CRIU's InetSkEntry of the TCP socket ino in the
// images directory dirfd (errors as FindCRIUTCP's).
func FindCRIUInetSk(dirfd int, ino uint32) (*sk_inet.InetSkEntry, error) {
	sks, err := criuInetSockets(dirfd)
	if err != nil {
		return nil, err
	}
	for _, ise := range sks {
		if ise.GetIno() == ino && isTCPEntry(ise) {
			return ise, nil
		}
	}
	return nil, fmt.Errorf("criu images: no TCP socket with inode %d (%#x): %w", ino, ino, unix.ENOENT)
}

func isTCPEntry(ise *sk_inet.InetSkEntry) bool {
	return ise.GetProto() == unix.IPPROTO_TCP && ise.GetType() == unix.SOCK_STREAM
}

// criuInetSockets reads every InetSkEntry of the images directory: those
// of files.img, else those of inetsk.img.
func criuInetSockets(dirfd int) ([]*sk_inet.InetSkEntry, error) {
	img, err := image.Open(dirfd, criuFilesImage)
	if err == nil {
		return inetFromFiles(img)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	img, err = image.Open(dirfd, criuInetImage)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("criu images: neither %s nor %s: %w", criuFilesImage, criuInetImage, unix.ENOENT)
		}
		return nil, err
	}
	if img.Magic != image.MagicInetSk {
		return nil, fmt.Errorf("image %s: %w: magic %#x is not INETSK", img.Name, image.ErrCorrupt, img.Magic)
	}
	var out []*sk_inet.InetSkEntry
	for {
		ise := &sk_inet.InetSkEntry{}
		switch err := img.Next(ise); {
		case err == io.EOF:
			return out, nil
		case err != nil:
			return nil, err
		}
		out = append(out, ise)
	}
}

// inetFromFiles takes the InetSkEntry of every INETSK file of files.img.
func inetFromFiles(img *image.Image) ([]*sk_inet.InetSkEntry, error) {
	if img.Magic != magicFiles {
		return nil, fmt.Errorf("image %s: %w: magic %#x is not FILES", img.Name, image.ErrCorrupt, img.Magic)
	}
	var out []*sk_inet.InetSkEntry
	for {
		fe := &fdinfo.FileEntry{}
		switch err := img.Next(fe); {
		case err == io.EOF:
			return out, nil
		case err != nil:
			return nil, err
		}
		if fe.GetType() == fdinfo.FdTypes_INETSK && fe.GetIsk() != nil {
			out = append(out, fe.GetIsk())
		}
	}
}

// criuImageExists reports whether dirfd holds a regular file called name.
func criuImageExists(dirfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
}

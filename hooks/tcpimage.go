package hooks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	sk_inet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	sk_opts "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-opts"
	tcp_stream "github.com/checkpoint-restore/go-criu/v7/crit/images/tcp-stream"
	"github.com/gosoccr/gosoccr/internal/image"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// A TCP connection is kept as CRIU keeps it: an InetSkEntry for the socket
// and a tcp-stream image, a TcpStreamEntry followed by the receive queue's
// bytes, then the send queue's, the unsent part last. The values of a
// TcpStreamEntry are libsoccr's, as CRIU writes them.

// TCPStreamImageName and InetImageName name the images of the TCP
// connection id written by the hooks.
func TCPStreamImageName(id uint32) string {
	return "gosoccr-tcp-stream-" + strconv.FormatUint(uint64(id), 10) + ".img"
}

// InetImageName names the InetSkEntry image of the TCP connection id.
func InetImageName(id uint32) string {
	return "gosoccr-inetsk-" + strconv.FormatUint(uint64(id), 10) + ".img"
}

// MaxQueue bounds the queue bytes read back from an image.
const MaxQueue = image.MaxFile / 2

// ErrBadImage: an image does not describe a connection that can be
// restored.
var ErrBadImage = errors.New("bad TCP image")

// TCPStreamEntry returns the tcp-stream entry of st, as CRIU fills it from
// libsoccr's data.
func TCPStreamEntry(st *soccr.State) *tcp_stream.TcpStreamEntry {
	e := &tcp_stream.TcpStreamEntry{
		InqLen: proto.Uint32(uint32(len(st.RecvQueue))), InqSeq: proto.Uint32(st.RecvSeq),
		OutqLen: proto.Uint32(uint32(len(st.SendQueue))), OutqSeq: proto.Uint32(st.SendSeq),
		OptMask: proto.Uint32(uint32(st.Options)), SndWscale: proto.Uint32(0), MssClamp: proto.Uint32(st.MSSClamp),
		UnsqLen: proto.Uint32(st.Unsent),
	}
	if st.Options&soccr.OptWscale != 0 {
		e.SndWscale = proto.Uint32(uint32(st.SndWscale))
		e.RcvWscale = proto.Uint32(uint32(st.RcvWscale))
	}
	if st.Options&soccr.OptTimestamps != 0 {
		e.Timestamp = proto.Uint32(st.Timestamp)
	}
	if w := st.Window; w != nil {
		e.SndWl1, e.SndWnd, e.MaxWindow = proto.Uint32(w.SndWl1), proto.Uint32(w.SndWnd), proto.Uint32(w.MaxWindow)
		e.RcvWnd, e.RcvWup = proto.Uint32(w.RcvWnd), proto.Uint32(w.RcvWup)
	}
	if o := st.Sockopts; o != nil {
		if o.NoDelay {
			e.Nodelay = proto.Bool(true)
		}
		if o.Cork {
			e.Cork = proto.Bool(true)
		}
	}
	return e
}

// InetSkEntry returns the inet socket entry of st for the socket id (its
// inode).
func InetSkEntry(st *soccr.State, id uint32) *sk_inet.InetSkEntry {
	fam := uint32(st.Family())
	e := &sk_inet.InetSkEntry{
		Id: proto.Uint32(id), Ino: proto.Uint32(id),
		Family: proto.Uint32(fam), Type: proto.Uint32(unix.SOCK_STREAM), Proto: proto.Uint32(unix.IPPROTO_TCP),
		State:   proto.Uint32(uint32(st.State)),
		SrcPort: proto.Uint32(uint32(st.Local.Port())), DstPort: proto.Uint32(uint32(st.Remote.Port())),
		Flags: proto.Uint32(unix.O_RDWR), Backlog: proto.Uint32(0),
		SrcAddr: addrWords(st.Local.Addr()), DstAddr: addrWords(st.Remote.Addr()),
		Fown: zeroFown(), Opts: zeroOpts(),
	}
	if o := st.Sockopts; o != nil {
		e.Opts.SoKeepalive = proto.Bool(o.KeepAlive)
		if o.KeepAlive {
			e.Opts.TcpKeepcnt = proto.Uint32(o.KeepCnt)
			e.Opts.TcpKeepidle = proto.Uint32(o.KeepIdle)
			e.Opts.TcpKeepintvl = proto.Uint32(o.KeepIntvl)
		}
	}
	if fam == unix.AF_INET6 {
		e.V6Only = proto.Bool(false)
	}
	shut := sk_opts.SkShutdown_NONE
	switch {
	case st.State.SentFIN() && st.State.ReceivedFIN():
		shut = sk_opts.SkShutdown_BOTH
	case st.State.SentFIN():
		shut = sk_opts.SkShutdown_WRITE
	case st.State.ReceivedFIN():
		shut = sk_opts.SkShutdown_READ
	}
	if shut != sk_opts.SkShutdown_NONE {
		e.Shutdown = &shut
	}
	return e
}

// addrWords is an address as CRIU stores it: the bytes of the address read
// as native-endian 32-bit words, one for IPv4, four for IPv6.
func addrWords(a netip.Addr) []uint32 {
	b := a.AsSlice()
	w := make([]uint32, len(b)/4)
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[i*4:])
	}
	return w
}

func wordsAddr(fam uint32, w []uint32) (netip.Addr, error) {
	switch {
	case fam == unix.AF_INET && len(w) >= 1:
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], w[0])
		return netip.AddrFrom4(b), nil
	case fam == unix.AF_INET6 && len(w) >= 4:
		var b [16]byte
		for i := range 4 {
			binary.NativeEndian.PutUint32(b[i*4:], w[i])
		}
		return netip.AddrFrom16(b), nil
	}
	return netip.Addr{}, fmt.Errorf("%w: family %d with %d address words", ErrBadImage, fam, len(w))
}

// StateFromImages rebuilds the State of a connection from its entries and
// queue bytes (the receive queue's, then the send queue's).
func StateFromImages(tse *tcp_stream.TcpStreamEntry, ise *sk_inet.InetSkEntry, rq, sq []byte) (*soccr.State, error) {
	if ise.GetProto() != unix.IPPROTO_TCP || ise.GetType() != unix.SOCK_STREAM {
		return nil, fmt.Errorf("%w: socket %d is not TCP (type %d proto %d)", ErrBadImage, ise.GetId(), ise.GetType(), ise.GetProto())
	}
	src, err := wordsAddr(ise.GetFamily(), ise.GetSrcAddr())
	if err != nil {
		return nil, err
	}
	dst, err := wordsAddr(ise.GetFamily(), ise.GetDstAddr())
	if err != nil {
		return nil, err
	}
	if uint64(len(rq)) != uint64(tse.GetInqLen()) || uint64(len(sq)) != uint64(tse.GetOutqLen()) || tse.GetUnsqLen() > tse.GetOutqLen() {
		return nil, fmt.Errorf("%w: queue lengths %d/%d (unsent %d) for %d/%d bytes", ErrBadImage,
			tse.GetInqLen(), tse.GetOutqLen(), tse.GetUnsqLen(), len(rq), len(sq))
	}
	st := &soccr.State{
		State: soccr.TCPState(ise.GetState()),
		Local: netip.AddrPortFrom(src, uint16(ise.GetSrcPort())), Remote: netip.AddrPortFrom(dst, uint16(ise.GetDstPort())),
		RecvSeq: tse.GetInqSeq(), SendSeq: tse.GetOutqSeq(),
		RecvQueue: rq, SendQueue: sq, Unsent: tse.GetUnsqLen(),
		MSSClamp: tse.GetMssClamp(), Options: soccr.Options(tse.GetOptMask()),
		SndWscale: uint8(tse.GetSndWscale()), RcvWscale: uint8(tse.GetRcvWscale()),
		Timestamp: tse.GetTimestamp(),
	}
	if tse.SndWl1 != nil {
		st.Window = &soccr.Window{SndWl1: tse.GetSndWl1(), SndWnd: tse.GetSndWnd(), MaxWindow: tse.GetMaxWindow(),
			RcvWnd: tse.GetRcvWnd(), RcvWup: tse.GetRcvWup()}
	}
	o := ise.GetOpts()
	st.Sockopts = &soccr.Sockopts{NoDelay: tse.GetNodelay(), Cork: tse.GetCork(), KeepAlive: o.GetSoKeepalive()}
	if o.GetSoKeepalive() {
		st.Sockopts.KeepCnt, st.Sockopts.KeepIdle, st.Sockopts.KeepIntvl = o.GetTcpKeepcnt(), o.GetTcpKeepidle(), o.GetTcpKeepintvl()
	}
	return st, nil
}

// WriteTCPImages writes the images of connection id: the tcp-stream image
// (entry and queue bytes) and the inetsk image.
func WriteTCPImages(dirfd int, id uint32, st *soccr.State) error {
	w := image.NewWriter(TCPStreamImageName(id), image.MagicTCPStream)
	if err := w.Entry(TCPStreamEntry(st)); err != nil {
		return err
	}
	w.Raw(st.RecvQueue)
	w.Raw(st.SendQueue)
	if err := w.Commit(dirfd); err != nil {
		return err
	}
	w = image.NewWriter(InetImageName(id), image.MagicInetSk)
	if err := w.Entry(InetSkEntry(st, id)); err != nil {
		return err
	}
	return w.Commit(dirfd)
}

// ReadTCPStream reads a tcp-stream image (ours or CRIU's) and its queues.
func ReadTCPStream(dirfd int, name string) (*tcp_stream.TcpStreamEntry, []byte, []byte, error) {
	img, err := image.Open(dirfd, name)
	if err != nil {
		return nil, nil, nil, err
	}
	return DecodeTCPStream(img)
}

// DecodeTCPStream decodes a tcp-stream image: its entry, then the receive
// and send queues' bytes, every length bounded before use.
func DecodeTCPStream(img *image.Image) (*tcp_stream.TcpStreamEntry, []byte, []byte, error) {
	name := img.Name
	if img.Magic != image.MagicTCPStream {
		return nil, nil, nil, fmt.Errorf("image %s: %w: magic %#x is not TCP_STREAM", name, image.ErrCorrupt, img.Magic)
	}
	tse := &tcp_stream.TcpStreamEntry{}
	if err := img.Next(tse); err != nil {
		return nil, nil, nil, noEOF(img, err)
	}
	if tse.GetInqLen() > MaxQueue || tse.GetOutqLen() > MaxQueue {
		return nil, nil, nil, fmt.Errorf("image %s: %w: queues of %d and %d bytes", name, image.ErrCorrupt, tse.GetInqLen(), tse.GetOutqLen())
	}
	rq, err := img.Raw(uint64(tse.GetInqLen()))
	if err != nil {
		return nil, nil, nil, err
	}
	sq, err := img.Raw(uint64(tse.GetOutqLen()))
	if err != nil {
		return nil, nil, nil, err
	}
	return tse, rq, sq, nil
}

// ReadTCPImages reads back the images that WriteTCPImages wrote.
func ReadTCPImages(dirfd int, id uint32) (*soccr.State, error) {
	tse, rq, sq, err := ReadTCPStream(dirfd, TCPStreamImageName(id))
	if err != nil {
		return nil, err
	}
	img, err := image.Open(dirfd, InetImageName(id))
	if err != nil {
		return nil, err
	}
	ise, err := DecodeInetSk(img)
	if err != nil {
		return nil, err
	}
	return StateFromImages(tse, ise, rq, sq)
}

// DecodeInetSk decodes an inetsk image of one entry.
func DecodeInetSk(img *image.Image) (*sk_inet.InetSkEntry, error) {
	if img.Magic != image.MagicInetSk {
		return nil, fmt.Errorf("image %s: %w: magic %#x is not INETSK", img.Name, image.ErrCorrupt, img.Magic)
	}
	ise := &sk_inet.InetSkEntry{}
	if err := img.Next(ise); err != nil {
		return nil, noEOF(img, err)
	}
	return ise, nil
}

// noEOF makes the end of an image where an entry must be a corrupt image.
func noEOF(img *image.Image, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("image %s: %w: no entry", img.Name, image.ErrCorrupt)
	}
	return err
}

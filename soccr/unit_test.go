package soccr

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpErrorIs(t *testing.T) {
	err := error(&OpError{Op: "pause", Step: StepRepair, FD: 7,
		Err: withCause(ErrNoRepair, os.NewSyscallError("setsockopt TCP_REPAIR", unix.EPERM))})
	if !errors.Is(err, ErrNoRepair) || !errors.Is(err, unix.EPERM) {
		t.Fatalf("errors.Is fails for the sentinel or the errno: %v", err)
	}
	if errors.Is(err, ErrNotTCP) {
		t.Fatal("errors.Is matches a foreign sentinel")
	}
	want := "soccr: pause fd 7: repair mode: TCP repair mode refused (CAP_NET_ADMIN needed): setsockopt TCP_REPAIR: operation not permitted"
	if err.Error() != want {
		t.Fatalf("message\n%q\nwant\n%q", err.Error(), want)
	}
}

func TestStateNames(t *testing.T) {
	for s, want := range map[TCPState]string{Established: "ESTABLISHED", Closing: "CLOSING", 0: "TCPState(0)", 42: "TCPState(42)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
	for _, s := range []TCPState{Listen, SynRecv, TimeWait, 0, 12} {
		if s.Supported() {
			t.Errorf("%s is supported", s)
		}
	}
	if !LastAck.SentFIN() || !LastAck.ReceivedFIN() || FinWait2.ReceivedFIN() || CloseWait.SentFIN() {
		t.Error("FIN predicates are wrong")
	}
}

func TestValidate(t *testing.T) {
	l := netip.MustParseAddrPort("127.0.0.1:1")
	r := netip.MustParseAddrPort("127.0.0.1:2")
	m := netip.MustParseAddrPort("[::ffff:127.0.0.1]:2")
	for _, tc := range []struct {
		st   State
		want error
	}{
		{State{State: Established, Local: l, Remote: r}, nil},
		{State{State: Listen, Local: l, Remote: r}, ErrUnsupportedState},
		{State{State: Established, Local: l}, ErrBadState},
		{State{State: Established, Local: l, Remote: m}, ErrBadState},
		{State{State: Established, Local: l, Remote: r, Unsent: 1}, ErrBadState},
		{State{State: SynSent, Local: l, Remote: r, SendQueue: []byte("x")}, ErrBadState},
		{State{State: Established, Local: l, Remote: r, Window: &Window{SndWnd: 2, MaxWindow: 1}}, ErrBadState},
	} {
		if err := tc.st.validate(); !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("%s: %v, want %v", &tc.st, err, tc.want)
		}
	}
}

// TestPacket checks the injected segments against independently computed
// checksums: a correct packet sums to 0xffff over header and pseudo header.
func TestPacket(t *testing.T) {
	for _, tc := range []struct{ from, to string }{
		{"127.0.0.1:80", "127.0.0.1:40000"},
		{"[::ffff:10.1.2.3]:80", "[::ffff:10.1.2.4]:40000"},
		{"[2001:db8::1]:443", "[2001:db8::2]:50000"},
	} {
		seg := segment{from: netip.MustParseAddrPort(tc.from), to: netip.MustParseAddrPort(tc.to),
			seq: 0xdeadbeef, ack: 0x01020304, flags: tcpFlagFIN | tcpFlagACK, window: 1 << 20}
		pkt, fam := seg.packet()
		var src, dst, tcp []byte
		if fam == unix.AF_INET {
			if len(pkt) != 40 || fold(sum(pkt[:20], 0)) != 0xffff {
				t.Fatalf("%s: bad IPv4 header checksum", tc.from)
			}
			src, dst, tcp = pkt[12:16], pkt[16:20], pkt[20:]
		} else {
			if len(pkt) != 60 || pkt[0]>>4 != 6 || binary.BigEndian.Uint16(pkt[4:]) != 20 {
				t.Fatalf("%s: bad IPv6 header", tc.from)
			}
			src, dst, tcp = pkt[8:24], pkt[24:40], pkt[40:]
		}
		s := sum(src, 0)
		s = sum(dst, s)
		s += unix.IPPROTO_TCP + uint32(len(tcp))
		if fold(sum(tcp, s)) != 0xffff {
			t.Errorf("%s: bad TCP checksum", tc.from)
		}
		if binary.BigEndian.Uint16(tcp[14:]) != 0xffff {
			t.Errorf("%s: window not clamped to 16 bits", tc.from)
		}
		if binary.BigEndian.Uint32(tcp[4:]) != 0xdeadbeef || tcp[13] != tcpFlagFIN|tcpFlagACK {
			t.Errorf("%s: bad sequence number or flags", tc.from)
		}
	}
}

func TestSockaddrRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:1", "[::1]:2", "[::ffff:1.2.3.4]:3", "[fe80::1%3]:4"} {
		ap := netip.MustParseAddrPort(s)
		var r rawSockaddr
		r.fromAddrPort(ap)
		got, ok := r.toAddrPort()
		if !ok || got != ap {
			t.Errorf("%s came back as %s", ap, got)
		}
	}
}

func TestPacedLead(t *testing.T) {
	for _, c := range []struct {
		rate    uint64
		options uint8
		want    uint32
	}{
		{0, 0, 1},            // no pacing rate known
		{^uint64(0), 0, 1},   // unlimited
		{10 << 30, 0, 1},     // loopback: under a millisecond
		{100000, 0, 656},     // 64 KiB at 100 kB/s
		{1000, 0, 1000},      // capped at a second
		{100000, 64, 656000}, // microsecond timestamps
	} {
		ti := tcpInfo{PacingRate: c.rate, Options: c.options}
		if got := pacedLead(&ti); got != c.want {
			t.Errorf("pacedLead(rate %d, options %#x) = %d, want %d", c.rate, c.options, got, c.want)
		}
	}
}

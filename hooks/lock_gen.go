package hooks

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// genConn asks nf_tables for its ruleset generation (NFT_MSG_GETGEN), which
// every transaction that changes anything moves on by one. A Locker keeps
// one so that it reads its chains only when the ruleset moved by more than
// its own transactions: google/nftables has no call for it, and its raw
// netlink socket is private, so this is a second socket, opened with the
// Locker's in the same namespace.
type genConn struct {
	fd  int
	seq uint32
	buf []byte // the answers, read into the same buffer each time
}

func newGenConn() (*genConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &genConn{fd: fd, buf: make([]byte, 512)}, nil
}

func (g *genConn) close() error { return unix.Close(g.fd) }

// nfgenmsgLen is the length of struct nfgenmsg, which follows the netlink
// header of every nfnetlink message.
const nfgenmsgLen = 4

// generation returns the ruleset generation of the socket's namespace.
func (g *genConn) generation() (uint32, error) {
	g.seq++
	req := make([]byte, unix.NLMSG_HDRLEN+nfgenmsgLen)
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:12], g.seq)
	req[16] = unix.AF_UNSPEC
	req[17] = unix.NFNETLINK_V0
	if err := unix.Sendto(g.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("GETGEN: send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(g.fd, g.buf, 0)
		if err != nil {
			return 0, fmt.Errorf("GETGEN: receive: %w", err)
		}
		for b := g.buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return 0, fmt.Errorf("GETGEN: a message of %d bytes in %d", l, len(b))
			}
			typ, seq := binary.NativeEndian.Uint16(b[4:6]), binary.NativeEndian.Uint32(b[8:12])
			data := b[unix.NLMSG_HDRLEN:l]
			b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
			if seq != g.seq {
				continue // the answer to an earlier request that failed half way
			}
			switch typ {
			case unix.NLMSG_ERROR:
				if len(data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(data)); e != 0 {
						return 0, fmt.Errorf("GETGEN: %w", unix.Errno(-e))
					}
				}
				return 0, fmt.Errorf("GETGEN: an acknowledgement without the generation")
			case unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN:
				return genID(data)
			}
		}
	}
}

// genID reads NFTA_GEN_ID from the payload of an NFT_MSG_NEWGEN message.
func genID(b []byte) (uint32, error) {
	if len(b) < nfgenmsgLen {
		return 0, fmt.Errorf("GETGEN: answer of %d bytes", len(b))
	}
	for b = b[nfgenmsgLen:]; len(b) >= unix.SizeofNlAttr; {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < unix.SizeofNlAttr || l > len(b) {
			break
		}
		if typ == unix.NFTA_GEN_ID && l >= unix.SizeofNlAttr+4 {
			return binary.BigEndian.Uint32(b[4:8]), nil
		}
		b = b[min(len(b), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return 0, fmt.Errorf("GETGEN: no NFTA_GEN_ID in the answer")
}

// Package hooks turns one socket into CRIU-format images and back: the
// logic behind the CRIU plugin's hooks for sockets whose peer is outside
// the dump, usable from Go tools as well.
//
// # External unix sockets
//
// CRIU cannot dump one end of a unix connection whose other end lives
// outside the dump (a daemon's socket, /dev/log). DumpUnix records what it
// takes to re-create our end: the socket's type, its own bound name, the
// peer's name, the shutdown state, socket options, and the socket's owner.
// On restore, a socket of the same type is created, bound to our name where
// we had one, and connected to the peer's name again with the owner's uid
// and gid: a datagram socket simply reconnects, a stream or seqpacket
// socket becomes a new connection to the same server. Data the peer had not
// read lived in the peer. Unread data in our own receive queue cannot be
// put back into a new connection: DumpUnix refuses such a socket unless the
// policy allows dropping it (the bytes are then kept in an sk-queues image,
// for the record). A peer without a name cannot be reached again: refused.
//
// # TCP connections and the network lock
//
// DumpTCP and RestoreTCP carry one TCP connection through the images below
// (soccr does the repair); with TCPOptions.Lock the connection is kept
// under the network lock (Lock, Unlock, Locker: an nftables table of
// locked 4-tuples) from before its checkpoint until just before its
// resume. Locked and RemoveLock find and clear a lock that a crashed tool
// left behind.
//
// # Images
//
// Every file is written in the images directory with openat(2) relative to
// the directory's descriptor, O_NOFOLLOW, in CRIU's framing: the magic
// IMG_COMMON (0x54564319), the image's own magic, then entries, each a
// little-endian u32 length followed by that many bytes of protobuf
// (go-criu v7's types, CRIU's own .proto files). crit decodes them.
//
// gosoccr-unixsk-<id>.img (magic UNIXSK, 0x54373943) holds two
// UnixSkEntry messages: ours first (id and ino = the id the hook was given,
// the socket's inode; type; state; flags = file status flags; uflags =
// USK_EXTERN|USK_CALLBACK; peer = the peer's inode; name = our bound name,
// empty if none, a leading NUL for an abstract name; shutdown; opts;
// file_perms = mode, uid and gid of the socket's owner), then the peer's
// (id and ino = the peer's inode; same type; name = the peer's name as the
// kernel reports it, which is the name of the socket the peer is bound to;
// uflags = USK_EXTERN).
//
// gosoccr-skqueues-<id>.img (magic SK_QUEUES, 0x56264026) exists only when
// the policy allowed dropping unread bytes: one SkPacketEntry per datagram
// (one for all bytes of a stream), id_for = id, length, followed by the
// bytes.
//
// # Policy
//
// The policy is a text file whose path is in the environment variable
// GOSOCCR_POLICY; without it every external unix socket with a named peer
// is handled and unread data is refused. One directive a line, # starts a
// comment:
//
//	handle PATTERN      handle only peers whose name matches one such pattern
//	exclude PATTERN     never handle these peers (CRIU then reports them as usual)
//	rename FROM TO      on restore, connect to TO where the peer was FROM
//	allow-data-loss     dump sockets with unread data, dropping it
//
// Patterns are path.Match patterns on the peer's name; an abstract name is
// written with a leading @. Restore reads rename lines from the policy of
// the host it runs on.
package hooks

/*
 * gosoccr.h: the plugin and tool entry points of libgosoccr.so.
 *
 * CRIU does not load libgosoccr.so itself. It loads the small C plugin
 * build/criu/gosoccr.so (criu dump|restore --lib build/criu), which
 * dlopen()s libgosoccr.so on dump and pre-dump only and forwards to the
 * functions below; restore is done by the C plugin alone, from the images
 * that the dump wrote, and never loads the Go runtime (a Go runtime inside
 * `criu restore` hangs or aborts it). A program that links libgosoccr.so
 * must not fork() without exec() once the library is loaded.
 *
 * Conventions: every function returns 0 (or a non-negative value) on
 * success and a negative errno value on failure; failures are logged with
 * the prefix "gosoccr: " through CRIU's print_on_level() when the process
 * has one (looked up with dlsym(RTLD_DEFAULT)), else on stderr. No function
 * takes over a descriptor it is given: the caller keeps and closes it.
 *
 * Images: everything is written in CRIU's images directory, in CRIU's
 * framing (see hooks/doc.go): the magic GOSOCCR_IMG_COMMON_MAGIC, the
 * image's own magic, then entries, each a little-endian u32 length and that
 * many bytes of protobuf. The names carry the prefix GOSOCCR_IMG_PREFIX and
 * the socket's id (its inode number), e.g. "gosoccr-unixsk-12345.img".
 *
 * Policy: the environment variable GOSOCCR_POLICY names a text file, one
 * directive a line ("#" starts a comment):
 *     handle PATTERN      handle only peers whose name matches a pattern
 *     exclude PATTERN     never handle these peers (CRIU reports them)
 *     rename FROM TO      on restore, connect to TO where the peer was FROM
 *     allow-data-loss     dump sockets with unread data, dropping it
 * Patterns are path.Match patterns; an abstract name is written with a
 * leading "@". Without the variable, every external unix socket with a
 * named peer is handled and unread data is refused. When the variable is
 * set, a missing or unreadable file is an error (dump and restore fail).
 */
#ifndef GOSOCCR_GOSOCCR_H
#define GOSOCCR_GOSOCCR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The environment variable that names the policy file. */
#define GOSOCCR_POLICY_ENV "GOSOCCR_POLICY"
/* The environment variable the C plugin checks first for the path of
 * libgosoccr.so (else: its own folder, its parent folder, the loader's
 * search path). */
#define GOSOCCR_LIBRARY_ENV "GOSOCCR_LIBRARY"

/* CRIU's stage numbers, as passed to criu_plugin__init/fini. */
#define GOSOCCR_STAGE_DUMP     0
#define GOSOCCR_STAGE_PRE_DUMP 1
#define GOSOCCR_STAGE_RESTORE  2

/* Image names: printf formats taking the socket's id (unsigned). */
#define GOSOCCR_IMG_PREFIX      "gosoccr-"
#define GOSOCCR_IMG_UNIXSK_FMT  "gosoccr-unixsk-%u.img"
#define GOSOCCR_IMG_SKQUEUE_FMT "gosoccr-skqueues-%u.img"

/* Image magics (little-endian u32 at the start of a file). */
#define GOSOCCR_IMG_COMMON_MAGIC  0x54564319u /* first word of every image */
#define GOSOCCR_IMG_UNIXSK_MAGIC  0x54373943u /* UnixSkEntry messages */
#define GOSOCCR_IMG_SKQUEUE_MAGIC 0x56264026u /* SkPacketEntry + bytes */

/*
 * criu_plugin__init prepares the library for one CRIU stage: it loads the
 * policy (GOSOCCR_POLICY). stage is GOSOCCR_STAGE_DUMP or
 * GOSOCCR_STAGE_PRE_DUMP; the restore stage is not done in Go.
 *
 * Returns: 0; a negative errno value (logged) when the policy cannot be
 * read or parsed, or the stage is not supported.
 */
int criu_plugin__init(int stage);

/*
 * criu_plugin__fini ends the stage begun by criu_plugin__init. ret is
 * CRIU's result of the stage (0 for success). The library stays loaded:
 * a Go runtime cannot be unloaded, never dlclose() it.
 *
 * Returns: nothing.
 */
void criu_plugin__fini(int stage, int ret);

/*
 * gosoccr_dump_unix_sk is CRIU's DUMP_UNIX_SK hook: fd is a unix socket of
 * the dumped task whose peer is outside the dump (the caller keeps fd), id
 * its inode. When the socket is ours under the policy, it writes
 * gosoccr-unixsk-<id>.img (and gosoccr-skqueues-<id>.img when unread data
 * is dropped) in the images directory.
 *
 * Returns: 0 when the socket is handled and its images are written;
 * -ENOTSUP when it is not ours (policy, not a unix socket), so that CRIU
 * or another plugin handles it; another negative errno value (logged with
 * the reason: unread bytes, a nameless peer, ...) to make the dump fail.
 */
int gosoccr_dump_unix_sk(int fd, int id);

/*
 * gosoccr_set_images_dir sets the images directory for hosts without
 * CRIU (tools, tests). dirfd is an open directory. The library does not
 * take it over: the caller keeps dirfd open until criu_plugin__fini and
 * closes it. Inside CRIU it is not needed: the library asks
 * criu_get_image_dir() itself.
 *
 * Returns: 0; a negative errno value when dirfd is not a directory.
 */
int gosoccr_set_images_dir(int dirfd);

/* ---- One socket to and from images, for tools (hooks/tcp.go, socket.go) ---- */

/* Image names and magics of a TCP connection, as CRIU writes them (a
 * TcpStreamEntry followed by the receive queue's bytes, then the send
 * queue's; an InetSkEntry). */
#define GOSOCCR_IMG_TCP_STREAM_FMT   "gosoccr-tcp-stream-%u.img"
#define GOSOCCR_IMG_INETSK_FMT       "gosoccr-inetsk-%u.img"
#define GOSOCCR_IMG_TCP_STREAM_MAGIC 0x51465506u
#define GOSOCCR_IMG_INETSK_MAGIC     0x56443851u

/*
 * gosoccr_dump_sk records the socket fd under id (its inode, by CRIU's
 * convention) in the images directory (gosoccr_set_images_dir, or
 * criu_get_image_dir() inside criu), whatever its family:
 *  - a unix socket whose peer is outside, as gosoccr_dump_unix_sk does
 *    (gosoccr-unixsk-<id>.img, under the policy);
 *  - an AF_INET or AF_INET6 TCP socket: its connection, queued bytes
 *    included (gosoccr-tcp-stream-<id>.img and gosoccr-inetsk-<id>.img).
 *    On success the socket is left in TCP repair mode: close it and the
 *    peer sees nothing (a checkpoint), or setsockopt(fd, SOL_TCP,
 *    TCP_REPAIR, 0) to let the connection go on. On failure the socket is
 *    taken out of repair mode again: nothing is lost.
 * The caller keeps fd and must keep the connection's packets away (a
 * firewall rule) from the dump until the restore. Needs CAP_NET_ADMIN
 * for TCP.
 *
 * Returns: 0 when the images are written; -ENOTSUP for a socket that is
 * not ours (another family, UDP, a unix socket the policy excludes, not a
 * socket); -EBADF without an images directory; another negative errno
 * value (logged) when the dump fails.
 */
int gosoccr_dump_sk(int fd, int id);

/*
 * gosoccr_restore_sk restores the socket id from the images that
 * gosoccr_dump_sk wrote in the images directory, into a new socket: a
 * unix socket bound and connected again (peer renamed by the policy), or
 * the TCP connection, resumed. The images directory's descriptor stays
 * the caller's. The packets of a TCP connection may be let through once
 * this returns. Do not call it inside `criu restore` (the C plugin
 * restores there, without Go).
 *
 * Returns: the new descriptor (close-on-exec), which the caller owns and
 * closes; -ENOTSUP when the directory holds no image of ours for id;
 * -EBADMSG for a damaged image; -EBADF without an images directory;
 * another negative errno value (logged). On failure nothing is left open
 * and no socket stays in repair mode.
 */
int gosoccr_restore_sk(int id);

/*
 * gosoccr_restore_tcp_from_criu restores one TCP connection out of an
 * images directory written by CRIU itself (`criu dump --tcp-established`,
 * CRIU 4.x: the socket's InetSkEntry in files.img, or inetsk.img of older
 * versions, and the stream in tcp-stream-<ino in hex>.img) into a new
 * socket of the calling process, connected and out of repair mode. dirfd
 * is an open descriptor of the images directory, which stays the
 * caller's; ino is the socket's inode as CRIU recorded it. The images are
 * only read. CRIU keeps its network lock after the dump (with
 * --network-lock nftables, a table "inet CRIU-..." dropping the
 * connection's packets): the caller lifts it right after this returns.
 *
 * Returns: the new descriptor (close-on-exec, blocking), which the caller
 * owns and closes; -ENOENT when the directory holds no TCP connection of
 * that inode; -EBADMSG for a damaged image; -EBADF for a negative dirfd;
 * another negative errno value from the kernel for a failed restore. Every
 * failure is logged; on failure nothing is left open.
 */
int gosoccr_restore_tcp_from_criu(int dirfd, uint32_t ino);

/* ---- Many TCP connections at once, for tools (soccr/bulk.go) ---- */

#ifdef __cplusplus
}
#endif
#include <stddef.h> /* size_t */
#include "soccr.h"  /* struct libsoccr_sk_data, union libsoccr_addr */
#ifdef __cplusplus
extern "C" {
#endif

/*
 * One TCP connection of gosoccr_checkpoint_all and gosoccr_restore_all, in
 * libsoccr's terms: data, the two addresses and the two queues are what
 * libsoccr_save, libsoccr_get_addr and the queue buffers of a libsoccr
 * handle give, and what libsoccr_restore takes.
 */
struct gosoccr_tcp_conn {
	int fd;     /* checkpoint: the socket (in, the caller's; -1 out once
	             * gosoccr_checkpoint_close_all closed it);
	             * restore: the new socket (out, the caller's), -1 on failure */
	int result; /* out: 0, or a negative errno value for this connection */
	struct libsoccr_sk_data data; /* checkpoint: out; restore: in */
	union libsoccr_addr src;      /* our address: checkpoint out, restore in */
	union libsoccr_addr dst;      /* the peer's address: the same */
	char *recv_queue; /* data.inq_len bytes received, not read; NULL if 0
	                   * (after a checkpoint: the library's, see below) */
	char *send_queue; /* data.outq_len bytes written, not acknowledged; NULL if 0 */
};

/*
 * gosoccr_checkpoint_all checkpoints conns[0..n-1] at once, spread over
 * the machine's cores: for each, as libsoccr_pause, libsoccr_save,
 * libsoccr_get_addr (both) and libsoccr_release do for one. It reads fd and
 * sets every other field. On success the socket stays in TCP repair mode:
 * close it, and the peer sees nothing. A connection that fails gets its
 * negative errno in result (and a log line naming fd and the step), is
 * taken out of repair mode again so that it goes on, and holds no buffer;
 * the others are not affected. The caller keeps every fd, must keep the
 * connections' packets away (a network lock) from the checkpoint until the
 * restore, and needs CAP_NET_ADMIN.
 *
 * Ownership: recv_queue and send_queue of each successful connection are
 * the library's memory, lent to the caller until it gives them back with
 * gosoccr_free_queues (or gosoccr_free_queue): they are carved from
 * mappings shared by the connections of one call, not malloc()-ed, so they
 * must not be passed to free(). They may be given back in any order, from
 * any thread; a mapping goes when its last queue does.
 *
 * States checkpointed: SYN_SENT, ESTABLISHED, FIN_WAIT1, FIN_WAIT2,
 * CLOSE_WAIT, LAST_ACK, CLOSING, and CLOSE after both FINs.
 *
 * Results: -EOPNOTSUPP for a socket that is not a TCP stream of a
 * checkpointable state (LISTEN, SYN_RECV, TIME_WAIT, never connected, or
 * a stream socket of another family, such as AF_UNIX); -ENOTSOCK for a
 * descriptor that is not a socket, -ENOPROTOOPT for a socket that is not
 * a stream (UDP); -EAGAIN when a queue changed during the checkpoint (the
 * connection was not isolated); -EPERM without CAP_NET_ADMIN; -EBADF; or
 * the errno of the failed step.
 *
 * Returns: how many connections failed (0 to n); -EINVAL when conns is
 * NULL and n > 0.
 */
int gosoccr_checkpoint_all(struct gosoccr_tcp_conn *conns, size_t n);

/*
 * gosoccr_checkpoint_close_all is gosoccr_checkpoint_all for sockets the
 * caller is done with, as when the connections move to another host: each
 * socket checkpointed is closed by the thread that checkpointed it (in
 * repair mode: the peer sees nothing), so that the closes are spread over
 * the cores too, and its fd is set to -1. A connection that fails keeps its
 * fd, open and out of repair mode, as in gosoccr_checkpoint_all.
 *
 * Ownership and returns: as gosoccr_checkpoint_all.
 */
int gosoccr_checkpoint_close_all(struct gosoccr_tcp_conn *conns, size_t n);

/*
 * gosoccr_free_queues gives back the queues that gosoccr_checkpoint_all or
 * gosoccr_checkpoint_close_all lent to conns[0..n-1] and sets recv_queue
 * and send_queue to NULL; NULL queues are skipped. Only for queues of those
 * calls: a buffer of the caller's own (say, read from an image for
 * gosoccr_restore_all) is the caller's to free.
 */
void gosoccr_free_queues(struct gosoccr_tcp_conn *conns, size_t n);

/* gosoccr_free_queue gives back one such queue; NULL is ignored. */
void gosoccr_free_queue(char *queue);

/*
 * gosoccr_restore_all restores conns[0..n-1] at once, spread over the
 * machine's cores, each into a new socket of the calling thread's network
 * namespace, as libsoccr_pause, libsoccr_set_addr (both), libsoccr_restore
 * and libsoccr_resume do for one: it reads data, src, dst and the queues
 * (data.inq_len and data.outq_len bytes; they stay the caller's and are
 * not kept) and sets fd and result. The connections go on at once: bytes
 * that were sent but not acknowledged at checkpoint are sent again on
 * resume rather than after a retransmission timeout, so they must not be
 * locked any more: under gosoccr_lock, call gosoccr_restore_unlock_all,
 * which lifts the lock between the restore and the resume. (Unlocked
 * before this call, a retransmission of the peer that arrives before the
 * socket exists meets a closed port and resets the connection.) A connection that fails gets fd -1 and its
 * negative errno in result (-EINVAL for inconsistent data), with a log
 * line; nothing of it is left open, and the others are not affected.
 * -EINVAL: inconsistent data (unsq_len above outq_len, a queue length
 * without its buffer, an address that is not AF_INET or AF_INET6, mixed
 * families, port 0, a value out of range); -EOPNOTSUPP: a state that
 * cannot be restored (LISTEN, SYN_RECV, TIME_WAIT); otherwise the errno of
 * the failed step (for example -EADDRNOTAVAIL from connect).
 *
 * Returns: how many connections failed (0 to n); -EINVAL when conns is
 * NULL and n > 0.
 */
int gosoccr_restore_all(struct gosoccr_tcp_conn *conns, size_t n);

/*
 * gosoccr_restore_unlock_all is gosoccr_restore_all for connections under
 * the network lock (gosoccr_lock): it restores them all, still paused,
 * lifts the lock of those restored in one transaction (as gosoccr_unlock),
 * then resumes them, so that no packet of the peer finds either a closed
 * port or a lock. If the unlock fails, the restored sockets are closed
 * silently, every connection gets the unlock's error, and the lock stays:
 * retry, or gosoccr_lock_cleanup. A connection whose restore failed stays
 * locked. Needs CAP_NET_ADMIN in the calling thread's network namespace.
 *
 * Ownership and returns: as gosoccr_restore_all.
 */
int gosoccr_restore_unlock_all(struct gosoccr_tcp_conn *conns, size_t n);

/* ---- Network lock of single TCP connections (hooks/lock.go) ---- */

/*
 * One TCP connection for the network lock: our address and port, and the
 * peer's, both AF_INET or both AF_INET6 (an IPv4-mapped IPv6 address is
 * locked as the IPv4 address it maps). The caller's arrays are only read
 * and stay the caller's.
 */
struct gosoccr_tuple {
	union libsoccr_addr local;
	union libsoccr_addr remote;
};

/*
 * gosoccr_lock puts the connections t[0..n-1] under the network lock of
 * the calling thread's network namespace: until gosoccr_unlock, no packet
 * of theirs, either way, reaches or leaves the host, except packets
 * marked 0xC114 (the FINs a restore injects). The lock is an nftables
 * table "inet gosoccr" made over netlink on first use; up to a few
 * thousand connections go in one transaction. Locking a locked connection
 * is harmless. Needs CAP_NET_ADMIN.
 *
 * Returns: 0; -EINVAL for a bad address (logged, nothing locked); another
 * negative errno value from netlink (logged).
 */
int gosoccr_lock(const struct gosoccr_tuple *t, unsigned n);

/*
 * gosoccr_unlock lifts the lock of t[0..n-1]; unlocking a connection that
 * is not locked is harmless. Call it after the restore, before resuming
 * the sockets (libsoccr_resume), so that their first packet gets out.
 *
 * Returns: as gosoccr_lock.
 */
int gosoccr_unlock(const struct gosoccr_tuple *t, unsigned n);

/*
 * gosoccr_lock_cleanup deletes the lock's table from the calling thread's
 * network namespace: every connection locked there, by any process, flows
 * again. It is the call that clears a lock left behind by a process that
 * crashed between checkpoint and restore.
 *
 * Returns: 0 (also when there was no lock); a negative errno value
 * (logged).
 */
int gosoccr_lock_cleanup(void);

/*
 * A locker does what gosoccr_lock and gosoccr_unlock do over one netlink
 * socket that it keeps until gosoccr_locker_close, for a tool that locks
 * and unlocks connections a few at a time. gosoccr_lock and gosoccr_unlock
 * open and close a socket each call, and the close after an unlock waits
 * in the kernel for the removal's RCU grace period (about 10 ms here); a
 * locker pays that once, at its close. A locker also reads the lock's
 * chains back (to repair them if someone changed them) only when the
 * ruleset changed since its own last transaction: one lock plus one unlock
 * of a connection costs about 0.3 ms with a locker.
 *
 * gosoccr_locker_open opens one in the calling thread's network namespace,
 * which it then acts on whatever thread calls it. Returns NULL with errno
 * set on failure (logged). The locker is the caller's: close it with
 * gosoccr_locker_close, once. A locker may be used from several threads.
 */
struct gosoccr_locker;
struct gosoccr_locker *gosoccr_locker_open(void);

/*
 * gosoccr_locker_lock and gosoccr_locker_unlock: as gosoccr_lock and
 * gosoccr_unlock, over locker l. Return as gosoccr_lock; -EINVAL for a
 * NULL l.
 */
int gosoccr_locker_lock(struct gosoccr_locker *l, const struct gosoccr_tuple *t, unsigned n);
int gosoccr_locker_unlock(struct gosoccr_locker *l, const struct gosoccr_tuple *t, unsigned n);

/*
 * gosoccr_locker_close closes locker l's socket and frees l; it leaves the
 * lock as it is. NULL does nothing.
 */
void gosoccr_locker_close(struct gosoccr_locker *l);

#ifdef __cplusplus
}
#endif

#endif

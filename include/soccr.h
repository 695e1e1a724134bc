/*
 * soccr.h: the libsoccr C API of gosoccr.
 *
 * This header is ABI-compatible with CRIU's libsoccr (criu/soccr/soccr.h):
 * a program written against libsoccr builds against it unchanged and links
 * with -lgosoccr instead. The implementation is the Go TCP-repair engine
 * (package soccr) inside libgosoccr.so.
 *
 * Requirements: Linux, CAP_NET_ADMIN in the socket's network namespace.
 * TCP_REPAIR_WINDOW needs Linux 4.8; half-closed sockets need Linux 4.10.
 *
 * All functions are safe to call with a NULL handle or NULL buffers: they
 * log a line (see libsoccr_set_log) and return the error value. A handle is
 * not safe for concurrent use; distinct handles are independent.
 */
#ifndef GOSOCCR_SOCCR_H
#define GOSOCCR_SOCCR_H

#include <stdint.h>       /* uint32_t */
#include <netinet/in.h>   /* struct sockaddr_in, struct sockaddr_in6 */
#include <netinet/tcp.h>  /* TCP_REPAIR*, and on most libcs the structs below */
#include <sys/socket.h>   /* struct sockaddr */

#ifdef __cplusplus
extern "C" {
#endif

/* Packets with this mark (SO_MARK) must pass a network lock: the library
 * sends them to restore a FIN the peer had sent. */
#define SOCCR_MARK 0xC114

/*
 * struct tcp_repair_window, struct tcp_repair_opt and the TCP_*_QUEUE
 * enum come from the C library where it has them, else from here.
 *
 * A CRIU-style caller states what its headers hold by defining
 * CONFIG_HAS_TCP_REPAIR (struct tcp_repair_opt and the queue enum) and
 * CONFIG_HAS_TCP_REPAIR_WINDOW (struct tcp_repair_window) before including
 * this file. Otherwise the header decides:
 *   - glibc 2.26 and later declare all three, in the __USE_MISC part of
 *     <netinet/tcp.h> (the default; not with a strict -std=c99/c11);
 *   - a <netinet/tcp.h> that includes the kernel's <linux/tcp.h> (bionic)
 *     has the enum and tcp_repair_opt, and tcp_repair_window where it
 *     defines TCP_REPAIR_WINDOW;
 *   - musl (1.2) declares tcp_repair_window, next to TCP_REPAIR_OFF_NO_WP,
 *     under _GNU_SOURCE, and neither tcp_repair_opt nor the enum;
 *   - anything else gets the definitions below.
 * On a C library this gets wrong, define the two CONFIG_HAS_ macros.
 */
#if !defined(CONFIG_HAS_TCP_REPAIR) || !defined(CONFIG_HAS_TCP_REPAIR_WINDOW)
# if defined(__GLIBC__) && defined(__USE_MISC) && \
     (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 26))
#  define SOCCR_SYS_HAS_REPAIR_OPT_ 1
#  define SOCCR_SYS_HAS_REPAIR_WINDOW_ 1
# elif defined(_UAPI_LINUX_TCP_H) || defined(_LINUX_TCP_H)
#  define SOCCR_SYS_HAS_REPAIR_OPT_ 1
#  if defined(TCP_REPAIR_WINDOW)
#   define SOCCR_SYS_HAS_REPAIR_WINDOW_ 1
#  endif
# elif !defined(__GLIBC__) && defined(_GNU_SOURCE) && defined(TCP_REPAIR_OFF_NO_WP)
#  define SOCCR_SYS_HAS_REPAIR_WINDOW_ 1
# endif
#endif

#if !defined(CONFIG_HAS_TCP_REPAIR_WINDOW) && !defined(SOCCR_SYS_HAS_REPAIR_WINDOW_)
/* Argument of TCP_REPAIR_WINDOW (Linux 4.8). */
struct tcp_repair_window {
	uint32_t snd_wl1;
	uint32_t snd_wnd;
	uint32_t max_window;
	uint32_t rcv_wnd;
	uint32_t rcv_wup;
};
#endif

#if !defined(CONFIG_HAS_TCP_REPAIR) && !defined(SOCCR_SYS_HAS_REPAIR_OPT_)
/* One element of the TCP_REPAIR_OPTIONS array. */
struct tcp_repair_opt {
	uint32_t opt_code;
	uint32_t opt_val;
};

/* Values of TCP_REPAIR_QUEUE; also the queue_id arguments below. */
enum {
	TCP_NO_QUEUE,
	TCP_RECV_QUEUE,
	TCP_SEND_QUEUE,
	TCP_QUEUES_NR,
};
#endif

#undef SOCCR_SYS_HAS_REPAIR_OPT_
#undef SOCCR_SYS_HAS_REPAIR_WINDOW_

#ifndef TCP_TIMESTAMP
#define TCP_TIMESTAMP 24
#endif
#ifndef TCP_REPAIR_WINDOW
#define TCP_REPAIR_WINDOW 29
#endif

/*
 * Logging. The library reports every failure, naming the socket's fd and
 * the step, through fn(level, fmt, ...); fn is called only for messages of
 * a level at most the given one (SOCCR_LOG_ERR: errors only; SOCCR_LOG_DBG:
 * also debug lines). fn == NULL (the default) disables logging. fn may be
 * called from any function of this API, on the calling thread, and must not
 * call back into the library. The messages end without a newline.
 * Not thread-safe with respect to concurrent calls of the library: set it
 * once, before the first socket.
 */
void libsoccr_set_log(unsigned int level, void (*fn)(unsigned int level, const char *fmt, ...));

#define SOCCR_LOG_ERR 1
#define SOCCR_LOG_DBG 2

/* A TCP socket in repair mode, from libsoccr_pause to libsoccr_resume or
 * libsoccr_release. Opaque. */
struct libsoccr_sk;

/* A socket address as the library takes and gives it: sa.sa_family says
 * which member is valid. An AF_INET6 socket connected to an IPv4 peer has
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d). */
union libsoccr_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/*
 * The state of a connection: filled in by libsoccr_save, given back as is
 * to libsoccr_restore. Seventeen 32-bit fields (68 bytes); store it whole,
 * or drop what flags mark as absent.
 *
 * Sequence numbers are the kernel's: inq_seq is the next sequence number
 * expected from the peer, outq_seq the next one we would send. A FIN, ours
 * or the peer's, counts in them but is no byte of a queue.
 */
struct libsoccr_sk_data {
	uint32_t state;      /* TCP state, kernel numbering (TCP_ESTABLISHED = 1, ...) */
	uint32_t inq_len;    /* bytes in the receive queue: received, not read */
	uint32_t inq_seq;
	uint32_t outq_len;   /* bytes in the send queue: written, not acknowledged */
	uint32_t outq_seq;
	uint32_t unsq_len;   /* of outq_len, bytes never sent */
	uint32_t opt_mask;   /* TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE */
	uint32_t mss_clamp;
	uint32_t snd_wscale;
	uint32_t rcv_wscale;
	uint32_t timestamp;  /* TCP_TIMESTAMP to restore, when opt_mask has TCPI_OPT_TIMESTAMPS: the clock
	                      * at save, ahead by what a paced socket may have stamped (at most 1 s) */
	uint32_t flags;      /* SOCCR_FLAGS_* below */
	uint32_t snd_wl1;    /* the window, when flags has SOCCR_FLAGS_WINDOW */
	uint32_t snd_wnd;
	uint32_t max_window;
	uint32_t rcv_wnd;
	uint32_t rcv_wup;
};

/* flags: snd_wl1, snd_wnd, max_window, rcv_wnd and rcv_wup hold the window
 * (the kernel has TCP_REPAIR_WINDOW). Fields a flag does not mark are zero. */
#define SOCCR_FLAGS_WINDOW 0x1

/*
 * CHECKPOINT, in this order:
 *
 *	h = libsoccr_pause(fd);                  // repair mode: the socket is silent
 *	libsoccr_save(h, &data, sizeof(data));   // reads the state and both queues
 *	inq  = libsoccr_get_queue_bytes(h, TCP_RECV_QUEUE, SOCCR_MEM_EXCL);  // data.inq_len bytes
 *	outq = libsoccr_get_queue_bytes(h, TCP_SEND_QUEUE, SOCCR_MEM_EXCL);  // data.outq_len bytes
 *	src  = libsoccr_get_addr(h, 1, SOCCR_MEM_EXCL);
 *	dst  = libsoccr_get_addr(h, 0, SOCCR_MEM_EXCL);
 *	store(data, inq, outq, src, dst); free() the four buffers;
 *	close(fd); libsoccr_release(h);          // the peer sees nothing, or
 *	libsoccr_resume(h);                      // the connection goes on
 *
 * RESTORE, in this order:
 *
 *	load(&data, &inq, &outq, &src, &dst);    // malloc()-ed buffers
 *	fd = socket(src->sa.sa_family, SOCK_STREAM, IPPROTO_TCP);
 *	h = libsoccr_pause(fd);
 *	libsoccr_set_queue_bytes(h, TCP_RECV_QUEUE, inq, SOCCR_MEM_EXCL);
 *	libsoccr_set_queue_bytes(h, TCP_SEND_QUEUE, outq, SOCCR_MEM_EXCL);
 *	libsoccr_set_addr(h, 1, src, SOCCR_MEM_EXCL);
 *	libsoccr_set_addr(h, 0, dst, SOCCR_MEM_EXCL);
 *	libsoccr_restore(h, &data, sizeof(data)); // binds, connects, refills
 *	libsoccr_resume(h);                      // frees inq, outq, src, dst
 *
 * Between pause and resume no packet of the connection may reach the host
 * or leave it (a netfilter DROP rule that lets SOCCR_MARK through, or a
 * network namespace whose interfaces are down); the caller sets this up.
 */

/*
 * libsoccr_pause puts the TCP socket fd in repair mode. The socket must be
 * a connected TCP socket (checkpoint), or a new one, neither bound nor
 * connected (restore). The library does not own fd: the caller closes it.
 * Returns: a handle, or NULL (logged) when fd is not a TCP socket, is a
 *   listening socket, is not open, when repair mode is refused (no
 *   CAP_NET_ADMIN), or on allocation failure.
 */
struct libsoccr_sk *libsoccr_pause(int fd);

/*
 * libsoccr_resume takes the socket out of repair mode (the connection goes
 * on), frees every buffer the library still owns and frees sk. sk must not
 * be used afterwards. NULL is logged and ignored.
 * Returns: nothing; a failure to leave repair mode is logged.
 */
void libsoccr_resume(struct libsoccr_sk *sk);

/*
 * libsoccr_release is libsoccr_resume without leaving repair mode: use it
 * after close(fd), or before it, so that the peer sees nothing.
 * Returns: nothing.
 */
void libsoccr_release(struct libsoccr_sk *sk);

/*
 * Buffer ownership, for the flags arguments below. With SOCCR_MEM_EXCL the
 * buffer changes owner: a buffer taken from the library is the caller's to
 * free(); a buffer given to the library is the library's to free() (at
 * libsoccr_resume or libsoccr_release). Without it the owner stays the
 * same, and the buffer must live until libsoccr_resume or
 * libsoccr_release. All buffers come from and go to malloc()/free().
 */
#define SOCCR_MEM_EXCL 0x1

/*
 * libsoccr_save reads the paused connection into data (data_size bytes,
 * at least sizeof(struct libsoccr_sk_data)), and its two queues into
 * buffers that libsoccr_get_queue_bytes returns. The first data_size bytes
 * of data are zeroed first. Queue buffers of an earlier save that the
 * caller did not take are freed. After a failure the socket is unchanged:
 * resume it and the connection goes on.
 * Returns: the number of bytes filled in (sizeof(struct libsoccr_sk_data),
 *   68); -1 for a NULL sk or data or a short data_size; -2 when the state or
 *   queue sizes cannot be read (also: unsupported state, queues moving);
 *   -3 for the stream options; -4 for the window; -5 for the receive queue;
 *   -6 for the send queue. Every failure is logged.
 */
int libsoccr_save(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size);

/*
 * libsoccr_get_queue_bytes gives the bytes of a queue that libsoccr_save
 * read: data.inq_len bytes for TCP_RECV_QUEUE, data.outq_len bytes for
 * TCP_SEND_QUEUE. With SOCCR_MEM_EXCL the caller takes the buffer (and must
 * free() it) and the library forgets it; otherwise the library keeps owning
 * it, a later call returns it again, and resume/release free it.
 * Returns: the buffer; NULL for an empty queue, an unknown queue_id, flags
 *   other than SOCCR_MEM_EXCL (logged), a NULL sk (logged), or a buffer
 *   already taken.
 */
char *libsoccr_get_queue_bytes(struct libsoccr_sk *sk, int queue_id, unsigned flags);

/*
 * libsoccr_get_addr gives the socket's own address (self != 0) or its
 * peer's (self == 0): the one set with libsoccr_set_addr, else read from
 * the socket on the first call (getsockname(2); getpeername(2), or
 * getsockopt SO_PEERNAME in SYN_SENT and CLOSE), so that libsoccr_save
 * costs no system call for it. Ownership as for
 * libsoccr_get_queue_bytes: with SOCCR_MEM_EXCL the caller free()s it.
 * Returns: a malloc()-ed address; NULL (logged) for a NULL sk, flags other
 *   than SOCCR_MEM_EXCL, a socket without that address, or no memory.
 */
union libsoccr_addr *libsoccr_get_addr(struct libsoccr_sk *sk, int self, unsigned flags);

/*
 * libsoccr_set_queue_bytes gives the bytes of a queue for libsoccr_restore
 * (TCP_RECV_QUEUE: data.inq_len bytes, TCP_SEND_QUEUE: data.outq_len
 * bytes; NULL for an empty queue). The library keeps the pointer, it does
 * not copy: with SOCCR_MEM_EXCL it free()s bytes at resume/release (and
 * also when another buffer replaces it), otherwise the caller keeps it
 * alive until then.
 * Returns: 0; -1 (logged) for a NULL sk, an unknown queue_id or unknown
 *   flags (then ownership does not change).
 */
int libsoccr_set_queue_bytes(struct libsoccr_sk *sk, int queue_id, char *bytes, unsigned flags);

/*
 * libsoccr_set_addr gives the socket's own address (self != 0) or its
 * peer's (self == 0) for libsoccr_restore. Pointer and ownership as for
 * libsoccr_set_queue_bytes.
 * Returns: 0; -1 (logged) for a NULL sk or addr, unknown flags, or an
 *   address that is neither AF_INET nor AF_INET6.
 */
int libsoccr_set_addr(struct libsoccr_sk *sk, int self, union libsoccr_addr *addr, unsigned flags);

/*
 * libsoccr_restore puts the connection of data, the queues and the two
 * addresses given above into the paused new socket: it binds and connects
 * it (nothing is sent in repair mode), refills both queues, restores the
 * options, the window (where data.flags has SOCCR_FLAGS_WINDOW) and any
 * FIN. It never blocks, even for queues larger than the socket's buffers.
 * The socket stays in repair mode: call libsoccr_resume next.
 * Returns: 0; -1 (logged) for a NULL sk or data, a short data_size, a
 *   missing address or queue; -2 (logged) when the kernel refused a step.
 *   After a failure close the socket: in repair mode the peer sees nothing.
 */
int libsoccr_restore(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size);

/*
 * The older libsoccr API, kept for programs written against it.
 *
 * libsoccr_get_sk_data is libsoccr_save.
 *
 * The staged restore of the older API becomes, here:
 *
 *	h = libsoccr_pause(fd);
 *	libsoccr_set_sk_data_unbound(h, &data, sizeof(data));
 *	bind(fd, src); connect(fd, dst);      // in repair mode: nothing is sent
 *	libsoccr_set_sk_data_noq(h, &data, sizeof(data));
 *	libsoccr_set_queue_bytes(h, TCP_RECV_QUEUE, inq, flags);  // current signature
 *	libsoccr_set_queue_bytes(h, TCP_SEND_QUEUE, outq, flags);
 *	libsoccr_set_sk_data(h, &data, sizeof(data));
 *	libsoccr_resume(h);
 *
 * The engine restores a connection in one step, binding and connecting the
 * socket itself. So the first two stages check data and keep a copy of it,
 * and libsoccr_set_sk_data does the whole restore: it takes the addresses
 * from libsoccr_set_addr, or else from the socket that the caller bound and
 * connected, then replaces that socket with a new one at the same fd number
 * (dup3(2): the old one, in repair mode, goes away without a packet; the
 * close-on-exec flag and O_NONBLOCK carry over, other socket options do
 * not) and restores into it. Other descriptors that share the old socket
 * (dup, fork) keep the old one. libsoccr_set_sk_data_unbound and _noq may
 * be skipped. The older libsoccr_set_queue_bytes(sk, data, size, queue,
 * buf) shares its name with the current function and is not provided.
 *
 * Returns (all three): 0; -1 (logged) for a NULL sk or data or a short
 *   data_size; libsoccr_set_sk_data also -2 (logged) when the restore fails.
 */
int libsoccr_get_sk_data(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size);
int libsoccr_set_sk_data_unbound(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size);
int libsoccr_set_sk_data_noq(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size);
int libsoccr_set_sk_data(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size);

#ifdef __cplusplus
}
#endif

#endif /* GOSOCCR_SOCCR_H */

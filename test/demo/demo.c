/*
 * demo: checkpoint and restore a live TCP connection through gosoccr's
 * libsoccr C ABI (include/soccr.h) under its network lock
 * (include/gosoccr.h), while the peer streams on.
 *
 * A server thread and the client (the main thread) stream data both ways
 * over 127.0.0.1, each writing as fast as the connection takes it. Byte i
 * of a direction is a function of i and of the direction, so each receiver
 * checks every byte as it arrives: a byte lost, repeated or reordered
 * shows as a mismatch at the first wrong offset.
 *
 * The server never waits for the client: from the first byte to the last
 * it writes and reads whenever the connection lets it. At a few points the
 * client moves its end of the connection to a new socket, in the order
 * include/gosoccr.h gives:
 *
 *   gosoccr_locker_lock(4-tuple)    the connection's packets are dropped, both ways
 *   libsoccr_pause, _save, _get_queue_bytes, _get_addr, _release; close()
 *   socket(), libsoccr_pause, _set_queue_bytes, _set_addr, _restore
 *   gosoccr_locker_unlock(4-tuple)  its packets flow again
 *   libsoccr_resume                 its unacknowledged bytes go out at once
 *
 * One locker (gosoccr_locker_open), opened at the start, serves every lock
 * and unlock: it keeps its netlink socket, where gosoccr_lock and
 * gosoccr_unlock open one and close it each call (and the close after an
 * unlock waits ~10 ms for the kernel's RCU grace period).
 *
 * The segments the server sends meanwhile are dropped by the lock; the
 * server's TCP sends them again on its retransmission timeout (200 ms or
 * more), after the unlock. The demo measures and prints what the server
 * saw around each checkpoint: how long it read nothing, how long its bytes
 * went unacknowledged, and when it caught up.
 *
 * Nobody may see a reset: every send and receive of both ends must
 * succeed (no ECONNRESET, no EPIPE), and the namespace's count of resets
 * sent (OutRsts in /proc/net/snmp) must stay 0. The lock's table is removed
 * at exit, also when the demo fails (gosoccr_lock_cleanup).
 *
 * Run it in a network namespace of its own with lo up, as root or with
 * CAP_NET_ADMIN there (`make demo` does). Usage: demo [checkpoints [MiB]].
 * Exit status 0 only if every byte was verified both ways.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gosoccr.h" /* and soccr.h */

enum { C2S, S2C }; /* directions */

#define CHUNK (64 << 10)
#define MSS 1460 /* the client's: segments of an Ethernet path, not loopback's 64 KiB */
#define SERVER_RCVBUF (1 << 20)
#define SERVER_SNDBUF (64 << 10)
#define CLIENT_SNDBUF (64 << 10)
#define CLIENT_RCVBUF (256 << 10) /* bounds how far the server runs ahead of the client's reading */
#define STEP_TIMEOUT_MS 20000
#define MAX_CHECKPOINTS 64
#define GAP_NS 100000 /* the server logs every wait for progress of 0.1 ms or more */
#define MAX_GAPS (1 << 16)

static uint64_t total = 8 << 20; /* bytes each way */

static struct gosoccr_locker *locker; /* every lock and unlock goes through it */
static int lock_used;	   /* the lock was taken: clean up at exit */
static int lock_cleaned;   /* main removed the lock itself */

/* cleanup_lock removes the lock's table at exit; the socket of a locker
 * still open is closed with the process. */
static void cleanup_lock(void)
{
	if (lock_used && !lock_cleaned) {
		int rc = gosoccr_lock_cleanup();
		if (rc < 0)
			fprintf(stderr, "demo: gosoccr_lock_cleanup at exit: %s\n", strerror(-rc));
		else
			fprintf(stderr, "demo: network lock removed at exit (gosoccr_lock_cleanup)\n");
	}
}

static void die(const char *fmt, ...)
{
	/* The first thread to fail reports and exits; any other waits. */
	static int dying;
	if (__atomic_exchange_n(&dying, 1, __ATOMIC_SEQ_CST))
		for (;;)
			pause();
	va_list ap;
	va_start(ap, fmt);
	fputs("demo: FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1); /* runs cleanup_lock */
}

#define CHECK(cond, what) \
	do { \
		if (!(cond)) \
			die("%s: %s", what, strerror(errno)); \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* ---- the byte pattern ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* pattern_byte is byte off of direction dir. */
static inline uint8_t pattern_byte(uint64_t off, int dir)
{
	uint64_t w = mix64((off >> 3) ^ (dir == C2S ? 0x6f736f6363722d63ULL : 0x6f736f6363722d73ULL));
	return (uint8_t)(w >> ((off & 7) * 8));
}

/* A stream end: what it sent and what it received and checked. sent and
 * received are written by the end's own thread only and read by the other
 * thread with __atomic loads. */
struct stream {
	int dir_out;	    /* direction of the bytes this end sends */
	uint64_t sent;	    /* bytes written */
	uint64_t received;  /* bytes read and verified */
	uint64_t fnv_sent;  /* FNV-1a of the bytes written */
	uint64_t fnv_recv;  /* FNV-1a of the bytes read */
	uint64_t calls;	    /* successful sends and receives */
	uint8_t buf[CHUNK];
};

#define FNV_INIT 0xcbf29ce484222325ULL

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void stream_init(struct stream *s, int dir_out)
{
	memset(s, 0, sizeof(*s));
	s->dir_out = dir_out;
	s->fnv_sent = s->fnv_recv = FNV_INIT;
}

static const char *who(const struct stream *s)
{
	return s->dir_out == C2S ? "client" : "server";
}

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/*
 * stream_write writes up to a chunk of the next bytes of the pattern,
 * without blocking. Any error fails the demo: a reset would show here as
 * ECONNRESET or EPIPE. Returns the count written, 0 when the socket is
 * full or all is written.
 */
static size_t stream_write(struct stream *s, int fd)
{
	if (s->sent >= total)
		return 0;
	size_t n = total - s->sent;
	if (n > CHUNK)
		n = CHUNK;
	for (size_t i = 0; i < n; i++)
		s->buf[i] = pattern_byte(s->sent + i, s->dir_out);
	ssize_t w = send(fd, s->buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0) {
		if (errno == EAGAIN)
			return 0;
		die("%s: send at offset %" PRIu64 ": %s", who(s), s->sent, strerror(errno));
	}
	s->fnv_sent = fnv(s->fnv_sent, s->buf, (size_t)w);
	store(&s->sent, s->sent + (uint64_t)w);
	s->calls++;
	if (s->sent == total && shutdown(fd, SHUT_WR) < 0)
		die("%s: shutdown: %s", who(s), strerror(errno));
	return (size_t)w;
}

/*
 * stream_read reads at most max bytes of what waits, without blocking, and
 * checks every byte. Returns the count read; -1 at the end of the stream;
 * 0 when nothing waits.
 */
static ssize_t stream_read(struct stream *s, int fd, size_t max)
{
	if (max > sizeof(s->buf))
		max = sizeof(s->buf);
	ssize_t r = recv(fd, s->buf, max, MSG_DONTWAIT);
	if (r < 0) {
		if (errno == EAGAIN)
			return 0;
		die("%s: recv at offset %" PRIu64 ": %s", who(s), s->received, strerror(errno));
	}
	if (r == 0) {
		if (s->received != total)
			die("%s: end of stream after %" PRIu64 " of %" PRIu64 " bytes", who(s), s->received, total);
		return -1;
	}
	int dir_in = !s->dir_out;
	for (ssize_t i = 0; i < r; i++) {
		if (s->buf[i] != pattern_byte(s->received + (uint64_t)i, dir_in))
			die("%s: byte %" PRIu64 " is 0x%02x, want 0x%02x", who(s), s->received + (uint64_t)i,
			    s->buf[i], pattern_byte(s->received + (uint64_t)i, dir_in));
	}
	if (s->received + (uint64_t)r > total)
		die("%s: %" PRIu64 " bytes received, more than the %" PRIu64 " sent", who(s),
		    s->received + (uint64_t)r, total);
	s->fnv_recv = fnv(s->fnv_recv, s->buf, (size_t)r);
	store(&s->received, s->received + (uint64_t)r);
	s->calls++;
	return r;
}

static int ioctl_int(int fd, unsigned long req, const char *name)
{
	int n;
	CHECK(ioctl(fd, req, &n) == 0, name);
	return n;
}

/*
 * stream_turn is one turn of an end: it writes up to a chunk and reads up
 * to a chunk, so that both directions move at the same pace. Returns
 * whether anything moved; sets *eof at the end of the incoming stream.
 */
static int stream_turn(struct stream *s, int fd, short revents, int *eof)
{
	int moved = 0;
	if ((revents & (POLLOUT | POLLERR | POLLHUP)) && s->sent < total)
		moved |= stream_write(s, fd) > 0;
	for (size_t left = CHUNK; left > 0 && !*eof && (revents & (POLLIN | POLLERR | POLLHUP));) {
		ssize_t r = stream_read(s, fd, left);
		if (r < 0)
			*eof = 1;
		if (r <= 0)
			break;
		left -= (size_t)r;
		moved = 1;
	}
	return moved;
}

/* ---- what the server saw: its waits for progress ---- */

/* A wait of one direction: no progress from `from` to `to`. */
struct gap {
	uint64_t from, to;
};

struct gaps {
	uint64_t last; /* time of the last progress */
	int n;
	struct gap g[MAX_GAPS];
};

static void progress(struct gaps *g, uint64_t now)
{
	if (g->last && now - g->last >= GAP_NS) {
		if (g->n == MAX_GAPS)
			die("server: more than %d waits logged", MAX_GAPS);
		g->g[g->n++] = (struct gap){g->last, now};
	}
	g->last = now;
}

/* longest returns the longest wait that overlaps [from, to]. */
static uint64_t longest(const struct gaps *g, uint64_t from, uint64_t to)
{
	uint64_t max = 0;
	for (int i = 0; i < g->n; i++)
		if (g->g[i].to > from && g->g[i].from < to && g->g[i].to - g->g[i].from > max)
			max = g->g[i].to - g->g[i].from;
	return max;
}

/* ---- the checkpoints ---- */

/* The times of one checkpoint, in the order they happen. */
enum { T_LOCK, T_LOCKED, T_CLOSED, T_RESTORED, T_UNLOCKED, T_RESUMED, NT };

struct ckpt {
	/* Set by the client. */
	uint64_t t[NT];
	uint64_t up, down; /* client's bytes written and read at the checkpoint */
	struct libsoccr_sk_data data;
	int filled, addr_fallback;
	char src[64], dst[64];
	/* Set by the client after the unlock, read by the server: the
	 * bytes the server must have read (all the client wrote) and got
	 * acknowledged (all it had written by the unlock) to have caught up. */
	uint64_t read_target, ack_target;
	/* Set by the server: when it reached them. */
	uint64_t read_done, ack_done;
};

static struct ckpt ck[MAX_CHECKPOINTS];

/* ---- the server thread ---- */

struct server {
	int lfd;
	struct stream st;
	struct gaps rx, ack; /* waits for bytes to read, for ACKs of its bytes */
	uint64_t longest_turn; /* longest time between two turns of its loop */
	uint32_t retrans;      /* segments its TCP sent again (tcpi_total_retrans) */
	pthread_t thread;
};

/* server_main streams both ways as fast as the connection goes, never
 * waiting for the client, and logs its waits for progress. */
static void *server_main(void *arg)
{
	struct server *sv = arg;
	struct stream *s = &sv->st;
	int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(fd >= 0, "server: accept");
	close(sv->lfd);

	uint64_t acked = 0, prev_rx = 0, t = now_ns(), moved = t;
	int eof = 0, next = 0; /* next: first checkpoint not yet caught up */
	sv->rx.last = sv->ack.last = t;
	while (!eof || s->sent < total) {
		struct pollfd p = {.fd = fd};
		if (!eof)
			p.events |= POLLIN;
		if (s->sent < total)
			p.events |= POLLOUT;
		/* A short timeout: the loop also samples its ACKs. */
		CHECK(poll(&p, 1, 1) >= 0, "server: poll");
		stream_turn(s, fd, p.revents, &eof);
		uint64_t now = now_ns();
		if (now - t > sv->longest_turn)
			sv->longest_turn = now - t;
		t = now;
		if (s->received > prev_rx) {
			progress(&sv->rx, now);
			prev_rx = s->received;
			moved = now;
		}
		/* Acknowledged: written, less what is still in the send queue
		 * (which counts the FIN once sent). */
		uint64_t q = (uint64_t)ioctl_int(fd, SIOCOUTQ, "server: ioctl SIOCOUTQ");
		if (q < s->sent && s->sent - q > acked) {
			acked = s->sent - q;
			progress(&sv->ack, now);
			moved = now;
		}
		for (; next < MAX_CHECKPOINTS; next++) {
			struct ckpt *c = &ck[next];
			uint64_t at = load(&c->ack_target); /* stored last */
			if (!at)
				break;
			uint64_t rt = load(&c->read_target);
			if (!c->read_done && s->received >= rt)
				store(&c->read_done, now);
			if (!c->ack_done && acked >= at)
				store(&c->ack_done, now);
			if (!c->read_done || !c->ack_done)
				break;
		}
		if (now - moved > (uint64_t)STEP_TIMEOUT_MS * 1000000)
			die("server: no progress for %d ms (received %" PRIu64 ", sent %" PRIu64 ", acknowledged %" PRIu64 ")",
			    STEP_TIMEOUT_MS, s->received, s->sent, acked);
	}
	int err = 0;
	socklen_t len = sizeof(err);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0, "server: SO_ERROR");
	if (err)
		die("server: socket error %s", strerror(err));
	struct tcp_info ti;
	len = sizeof(ti);
	CHECK(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0, "server: TCP_INFO");
	sv->retrans = ti.tcpi_total_retrans;
	close(fd);
	return NULL;
}

/* ---- the checkpoint and the restore, through libsoccr ---- */

static const char *tcp_state_name(uint32_t st)
{
	static const char *names[] = {
	    [1] = "ESTABLISHED", [2] = "SYN_SENT",  [3] = "SYN_RECV",	[4] = "FIN_WAIT1",
	    [5] = "FIN_WAIT2",	 [6] = "TIME_WAIT", [7] = "CLOSE",	[8] = "CLOSE_WAIT",
	    [9] = "LAST_ACK",	 [10] = "LISTEN",   [11] = "CLOSING",
	};
	if (st < sizeof(names) / sizeof(names[0]) && names[st])
		return names[st];
	return "?";
}

static const char *addr_str(const union libsoccr_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->v4.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(a->v4.sin_port));
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->v6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(a->v6.sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", a->sa.sa_family);
	}
	return buf;
}

static void soccr_log(unsigned int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t n = strlen(msg);
	fprintf(stderr, "  libsoccr %s: %s%s", level == SOCCR_LOG_ERR ? "error" : "debug", msg,
		n && msg[n - 1] == '\n' ? "" : "\n");
}

static void set_int(int fd, int level, int opt, int v, const char *name)
{
	CHECK(setsockopt(fd, level, opt, &v, sizeof(v)) == 0, name);
}

/* own_addr returns a malloc'd copy of the socket's own or peer address. */
static union libsoccr_addr *own_addr(int fd, int self)
{
	union libsoccr_addr *a = calloc(1, sizeof(*a));
	socklen_t len = sizeof(*a);
	CHECK(a != NULL, "calloc");
	CHECK((self ? getsockname(fd, &a->sa, &len) : getpeername(fd, &a->sa, &len)) == 0,
	      self ? "getsockname" : "getpeername");
	return a;
}

/*
 * checkpoint_restore moves the client's end of the connection from socket
 * fd to a new socket, under the network lock, and returns the new
 * descriptor. cs is the client's stream; c gets the account. Nothing is
 * printed here: the server streams on meanwhile.
 */
static int checkpoint_restore(int fd, const struct stream *cs, const struct server *sv, struct ckpt *c)
{
	struct gosoccr_tuple tu;
	memset(&tu, 0, sizeof(tu));
	socklen_t len = sizeof(tu.local);
	CHECK(getsockname(fd, &tu.local.sa, &len) == 0, "getsockname");
	len = sizeof(tu.remote);
	CHECK(getpeername(fd, &tu.remote.sa, &len) == 0, "getpeername");

	/* Lock first: from here no packet of the connection moves. */
	c->t[T_LOCK] = now_ns();
	int rc = gosoccr_locker_lock(locker, &tu, 1);
	if (rc < 0)
		die("gosoccr_locker_lock: %s", strerror(-rc));
	c->t[T_LOCKED] = now_ns();

	/* Checkpoint. */
	struct libsoccr_sk *sk = libsoccr_pause(fd);
	if (!sk)
		die("libsoccr_pause(%d) failed", fd);
	c->filled = libsoccr_save(sk, &c->data, sizeof(c->data));
	if (c->filled < 0)
		die("libsoccr_save: %d", c->filled);
	/* SOCCR_MEM_EXCL: the buffers are ours now, malloc'd. */
	char *inq = libsoccr_get_queue_bytes(sk, TCP_RECV_QUEUE, SOCCR_MEM_EXCL);
	char *outq = libsoccr_get_queue_bytes(sk, TCP_SEND_QUEUE, SOCCR_MEM_EXCL);
	if ((c->data.inq_len && !inq) || (c->data.outq_len && !outq))
		die("libsoccr_get_queue_bytes returned NULL for a queue of %u/%u bytes", c->data.inq_len,
		    c->data.outq_len);
	union libsoccr_addr *src = libsoccr_get_addr(sk, 1, SOCCR_MEM_EXCL);
	union libsoccr_addr *dst = libsoccr_get_addr(sk, 0, SOCCR_MEM_EXCL);
	if (!src || !dst) {
		/* CRIU's libsoccr returns NULL here; gosoccr returns them. */
		c->addr_fallback = 1;
		free(src);
		free(dst);
		src = own_addr(fd, 1);
		dst = own_addr(fd, 0);
	}
	libsoccr_release(sk);
	CHECK(close(fd) == 0, "close"); /* in repair mode: the peer sees nothing */
	c->t[T_CLOSED] = now_ns();
	addr_str(src, c->src, sizeof(c->src));
	addr_str(dst, c->dst, sizeof(c->dst));

	/* Restore, still locked. */
	int nfd = socket(src->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	CHECK(nfd >= 0, "socket");
	sk = libsoccr_pause(nfd);
	if (!sk)
		die("libsoccr_pause(%d) of the new socket failed", nfd);
	/* SOCCR_MEM_EXCL: the library takes the buffers and frees them. */
	if (libsoccr_set_queue_bytes(sk, TCP_SEND_QUEUE, outq, SOCCR_MEM_EXCL) < 0 ||
	    libsoccr_set_queue_bytes(sk, TCP_RECV_QUEUE, inq, SOCCR_MEM_EXCL) < 0)
		die("libsoccr_set_queue_bytes failed");
	if (libsoccr_set_addr(sk, 1, src, SOCCR_MEM_EXCL) < 0 || libsoccr_set_addr(sk, 0, dst, SOCCR_MEM_EXCL) < 0)
		die("libsoccr_set_addr failed");
	rc = libsoccr_restore(sk, &c->data, sizeof(c->data));
	if (rc < 0)
		die("libsoccr_restore: %d", rc);
	c->t[T_RESTORED] = now_ns();

	/* Unlock before the resume, so that the first packets of the
	 * resume get out (include/gosoccr.h). */
	rc = gosoccr_locker_unlock(locker, &tu, 1);
	if (rc < 0)
		die("gosoccr_locker_unlock: %s", strerror(-rc));
	c->t[T_UNLOCKED] = now_ns();
	store(&c->read_target, cs->sent);
	store(&c->ack_target, load(&sv->st.sent));
	libsoccr_resume(sk);
	c->t[T_RESUMED] = now_ns();
	/* Like CRIU, the caller restores the socket options that libsoccr
	 * leaves to it: here the buffer sizes. */
	set_int(nfd, SOL_SOCKET, SO_SNDBUF, CLIENT_SNDBUF, "SO_SNDBUF");
	set_int(nfd, SOL_SOCKET, SO_RCVBUF, CLIENT_RCVBUF, "SO_RCVBUF");
	return nfd;
}

static void report(int n, int of, const struct ckpt *c, const struct server *sv)
{
	const struct libsoccr_sk_data *d = &c->data;
	uint64_t t0 = c->t[T_LOCK];
	printf("\ncheckpoint %d of %d, after %.2f MiB written and %.2f MiB read by the client: %s %s -> %s\n", n, of,
	       (double)c->up / (1 << 20), (double)c->down / (1 << 20), tcp_state_name(d->state), c->src, c->dst);
	printf("  t=0 lock -> %.2f ms, checkpoint and close -> %.2f, libsoccr_restore -> %.2f,"
	       " unlock -> %.2f, libsoccr_resume -> %.2f ms; the unlock took %.2f ms\n",
	       ms(c->t[T_LOCKED] - t0), ms(c->t[T_CLOSED] - t0), ms(c->t[T_RESTORED] - t0), ms(c->t[T_UNLOCKED] - t0),
	       ms(c->t[T_RESUMED] - t0), ms(c->t[T_UNLOCKED] - c->t[T_RESTORED]));
	printf("  libsoccr_save: %d bytes; %u bytes unread, %u unacknowledged (%u unsent), mss %u, wscale %u/%u, window %s\n",
	       c->filled, d->inq_len, d->outq_len, d->unsq_len, d->mss_clamp, d->snd_wscale, d->rcv_wscale,
	       d->flags & SOCCR_FLAGS_WINDOW ? "saved" : "not saved (kernel without TCP_REPAIR_WINDOW)");
	if (c->addr_fallback)
		printf("  (libsoccr_get_addr returned NULL: addresses from getsockname/getpeername)\n");
	uint64_t unlock = c->t[T_UNLOCKED], end = c->read_done > c->ack_done ? c->read_done : c->ack_done;
	if (!c->read_done || !c->ack_done)
		end = UINT64_MAX;
	printf("  server reading: nothing for %6.1f ms; ", ms(longest(&sv->rx, t0, end)));
	if (c->read_done)
		printf("all the client had written read %.1f ms after the unlock\n", ms(c->read_done - unlock));
	else
		printf("had not read all the client had written by the end\n");
	printf("  server sending: no ACK for %6.1f ms; ", ms(longest(&sv->ack, t0, end)));
	if (c->ack_done)
		printf("all it had written by the unlock acknowledged %.1f ms after it\n", ms(c->ack_done - unlock));
	else
		printf("what it had written by the unlock was not all acknowledged by the end\n");
}

/* counter reads a counter of this network namespace from a file of
 * /proc/net in the "Prefix: names\nPrefix: values" layout; -1 if absent. */
static long long counter(const char *file, const char *prefix, const char *name)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return -1;
	char names[4096], values[4096];
	long long v = -1;
	size_t plen = strlen(prefix);
	while (v < 0 && fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
		if (strncmp(names, prefix, plen) || strncmp(values, prefix, plen))
			continue;
		char *sn, *sv;
		char *n = strtok_r(names + plen, " \n", &sn), *val = strtok_r(values + plen, " \n", &sv);
		for (; n && val; n = strtok_r(NULL, " \n", &sn), val = strtok_r(NULL, " \n", &sv))
			if (!strcmp(n, name)) {
				v = atoll(val);
				break;
			}
	}
	fclose(f);
	return v;
}

/* ---- the client ---- */

int main(int argc, char **argv)
{
	int checkpoints = argc > 1 ? atoi(argv[1]) : 3;
	if (argc > 2)
		total = (uint64_t)strtoull(argv[2], NULL, 10) << 20;
	if (checkpoints < 0 || checkpoints > MAX_CHECKPOINTS || total == 0 || argc > 3) {
		fprintf(stderr, "usage: demo [checkpoints (0..%d) [MiB each way]]\n", MAX_CHECKPOINTS);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	libsoccr_set_log(SOCCR_LOG_ERR, soccr_log);
	CHECK(atexit(cleanup_lock) == 0, "atexit");
	long long rsts0 = counter("/proc/net/snmp", "Tcp:", "OutRsts");
	uint64_t t = now_ns();
	locker = gosoccr_locker_open(); /* in this thread's namespace, the demo's */
	CHECK(locker != NULL, "gosoccr_locker_open");
	double open_ms = ms(now_ns() - t);

	static struct server sv;
	static struct stream cs;
	stream_init(&sv.st, S2C);
	stream_init(&cs, C2S);

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t salen = sizeof(sa);
	sv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(sv.lfd >= 0, "socket");
	if (setsockopt(sv.lfd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){SERVER_RCVBUF}, sizeof(int)) < 0)
		set_int(sv.lfd, SOL_SOCKET, SO_RCVBUF, SERVER_RCVBUF, "SO_RCVBUF");
	set_int(sv.lfd, SOL_SOCKET, SO_SNDBUF, SERVER_SNDBUF, "SO_SNDBUF");
	CHECK(bind(sv.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind");
	CHECK(listen(sv.lfd, 1) == 0, "listen");
	CHECK(getsockname(sv.lfd, (struct sockaddr *)&sa, &salen) == 0, "getsockname");
	CHECK(pthread_create(&sv.thread, NULL, server_main, &sv) == 0, "pthread_create");

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0, "socket");
	set_int(fd, IPPROTO_TCP, TCP_MAXSEG, MSS, "TCP_MAXSEG");
	set_int(fd, SOL_SOCKET, SO_SNDBUF, CLIENT_SNDBUF, "SO_SNDBUF");
	set_int(fd, SOL_SOCKET, SO_RCVBUF, CLIENT_RCVBUF, "SO_RCVBUF");
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect");

	printf("part 1, the libsoccr C ABI: %" PRIu64 " MiB each way over 127.0.0.1:%u in a private network namespace;\n"
	       "        both ends stream both ways throughout while the client's socket is checkpointed and\n"
	       "        restored %d times, under the network lock of include/gosoccr.h, through one locker:\n"
	       "        gosoccr_locker_lock, checkpoint, close, restore, gosoccr_locker_unlock, libsoccr_resume\n"
	       "        (gosoccr_locker_open took %.2f ms)\n",
	       total >> 20, ntohs(sa.sin_port), checkpoints, open_ms);

	int done = 0, eof = 0;
	uint64_t start = now_ns(), moved = start;
	while (!eof || cs.sent < total) {
		/* Checkpoint k once one direction carried k/(checkpoints+1) of
		 * its bytes, and the server caught up after the checkpoint
		 * before. The server runs at most a receive buffer ahead of the
		 * client's reading, so that, unless there are many checkpoints,
		 * both directions still stream. */
		uint64_t far = cs.sent > cs.received ? cs.sent : cs.received;
		int ready = done == 0 || (load(&ck[done - 1].read_done) && load(&ck[done - 1].ack_done));
		if (done < checkpoints && ready && far >= total / (uint64_t)(checkpoints + 1) * (uint64_t)(done + 1)) {
			struct ckpt *c = &ck[done++];
			c->up = cs.sent;
			c->down = cs.received;
			lock_used = 1;
			fd = checkpoint_restore(fd, &cs, &sv, c);
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (cs.sent < total)
			p.events |= POLLOUT;
		/* While a checkpoint waits for the server to catch up, look
		 * again every millisecond. */
		int n = poll(&p, 1, done < checkpoints ? 1 : STEP_TIMEOUT_MS);
		CHECK(n >= 0, "client: poll");
		if (now_ns() - moved > (uint64_t)STEP_TIMEOUT_MS * 1000000)
			die("client: stalled for %d ms (sent %" PRIu64 ", received %" PRIu64 ")", STEP_TIMEOUT_MS, cs.sent,
			    cs.received);
		if (stream_turn(&cs, fd, p.revents, &eof))
			moved = now_ns();
	}
	CHECK(pthread_join(sv.thread, NULL) == 0, "pthread_join");
	int err = 0;
	socklen_t len = sizeof(err);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0, "client: SO_ERROR");
	if (err)
		die("client: socket error %s", strerror(err));
	close(fd);
	double secs = (double)(now_ns() - start) / 1e9;

	for (int i = 0; i < done; i++)
		report(i + 1, checkpoints, &ck[i], &sv);
	long long rsts = counter("/proc/net/snmp", "Tcp:", "OutRsts") - rsts0;
	printf("  (the server's segments that the lock dropped go again when a timer of its TCP fires: a tail loss\n"
	       "   probe within milliseconds, or the retransmission timeout, 200 ms or more; %u segments in all)\n",
	       sv.retrans);

	printf("\nclient -> server: %" PRIu64 " bytes sent, %" PRIu64 " received and verified, fnv64 %016" PRIx64
	       " %s %016" PRIx64 "\n",
	       cs.sent, sv.st.received, cs.fnv_sent, cs.fnv_sent == sv.st.fnv_recv ? "==" : "!=", sv.st.fnv_recv);
	printf("server -> client: %" PRIu64 " bytes sent, %" PRIu64 " received and verified, fnv64 %016" PRIx64
	       " %s %016" PRIx64 "\n",
	       sv.st.sent, cs.received, sv.st.fnv_sent, sv.st.fnv_sent == cs.fnv_recv ? "==" : "!=", cs.fnv_recv);
	printf("no reset: the server's %" PRIu64 " sends and receives all succeeded (no ECONNRESET, no EPIPE, SO_ERROR 0),\n"
	       "  the longest turn of its loop took %.1f ms; TCP resets sent in this namespace: %lld\n",
	       sv.st.calls, ms(sv.longest_turn), rsts);
	if (cs.sent != total || sv.st.received != total || sv.st.sent != total || cs.received != total ||
	    cs.fnv_sent != sv.st.fnv_recv || sv.st.fnv_sent != cs.fnv_recv)
		die("byte counts or checksums differ");
	if (rsts != 0)
		die("%lld TCP resets were sent", rsts);
	if (done != checkpoints)
		die("only %d of %d checkpoints taken before the streams ended", done, checkpoints);
	t = now_ns();
	gosoccr_locker_close(locker);
	locker = NULL;
	double close_ms = ms(now_ns() - t);
	int rc = gosoccr_lock_cleanup();
	if (rc < 0)
		die("gosoccr_lock_cleanup: %s", strerror(-rc));
	lock_cleaned = 1;
	printf("locker closed (gosoccr_locker_close, %.2f ms), network lock removed (gosoccr_lock_cleanup)\n", close_ms);
	printf("part 1: OK: every byte verified, once and in order, both ways, across %d checkpoint%s (%.2f s)\n",
	       checkpoints, checkpoints == 1 ? "" : "s", secs);
	return 0;
}

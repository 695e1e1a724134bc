/*
 * demo: checkpoint and restore a live TCP connection through gosoccr's
 * libsoccr C ABI (include/soccr.h, build/libgosoccr.so).
 *
 * A server thread and the client (the main thread) stream data both ways
 * over 127.0.0.1. Byte i of a direction is a function of i and of the
 * direction, so each receiver checks every byte as it arrives: a byte lost,
 * repeated or reordered shows as a mismatch at the first wrong offset.
 *
 * While the stream runs, the client's socket is checkpointed (pause, save,
 * take both queues and both addresses), closed in repair mode, and a new
 * socket is restored from what was saved (pause, set queues and addresses,
 * restore, resume). The stream goes on over the new socket.
 *
 * There is no network lock here: between checkpoint and restore nothing
 * may reach the client's port, or its kernel would answer with a reset.
 * So the server goes quiet first, on request, at a point both sides agree
 * on: it stops reading (its window closes, and the client's unsent bytes
 * stay in the client's send queue), sends a last burst that stays unread in
 * the client's receive queue, waits until the client acknowledged all of
 * it, and says so. The client then waits until the server acknowledged all
 * that was sent to it. Only then is the connection checkpointed.
 *
 * Run it in a network namespace of its own with lo up, as root or with
 * CAP_NET_ADMIN there (`make demo` does). Usage: demo [checkpoints [MiB]].
 * Exit status 0 only if every byte was verified both ways.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#include "soccr.h"

enum { C2S, S2C }; /* directions */

#define CHUNK (64 << 10)
#define MSS 1460
#define SERVER_RCVBUF (32 << 10) /* small, so that the client gets unsent bytes */
#define SERVER_SNDBUF (64 << 10) /* bounds what is in flight when the client stops reading */
#define CLIENT_SNDBUF (64 << 10)
#define CLIENT_RCVBUF (1 << 20)	 /* room for the last burst */
#define BURST (32 << 10)	 /* what the server sends after it stopped reading */
#define LEAD (256 << 10)	 /* how far the server's sending may run ahead of its receiving */
#define STEP_TIMEOUT_MS 20000

static uint64_t total = 8 << 20; /* bytes each way */

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("demo: FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
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

/* A stream end: what it sent and what it received and checked. */
struct stream {
	int dir_out;	    /* direction of the bytes this end sends */
	uint64_t sent;	    /* bytes written */
	uint64_t received;  /* bytes read and verified */
	uint64_t fnv_sent;  /* FNV-1a of the bytes written */
	uint64_t fnv_recv;  /* FNV-1a of the bytes read */
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

/*
 * stream_write writes the next bytes of the pattern, at most max, without
 * blocking. Returns the count written, 0 when the socket is full.
 */
static size_t stream_write(struct stream *s, int fd, size_t max)
{
	size_t n = total - s->sent;
	if (n > CHUNK)
		n = CHUNK;
	if (n > max)
		n = max;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		s->buf[i] = pattern_byte(s->sent + i, s->dir_out);
	ssize_t w = send(fd, s->buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0) {
		if (errno == EAGAIN)
			return 0;
		die("%s: send at offset %" PRIu64 ": %s", who(s), s->sent, strerror(errno));
	}
	s->fnv_sent = fnv(s->fnv_sent, s->buf, (size_t)w);
	s->sent += (uint64_t)w;
	if (s->sent == total && shutdown(fd, SHUT_WR) < 0)
		die("%s: shutdown: %s", who(s), strerror(errno));
	return (size_t)w;
}

/*
 * stream_read reads at most max bytes without blocking and checks every
 * byte. Returns the count read; -1 at the end of the stream; 0 when nothing
 * waits.
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
	s->received += (uint64_t)r;
	return r;
}

static int outq(int fd)
{
	int n;
	CHECK(ioctl(fd, SIOCOUTQ, &n) == 0, "ioctl SIOCOUTQ");
	return n;
}

static int unsent(int fd)
{
	int n;
	CHECK(ioctl(fd, SIOCOUTQNSD, &n) == 0, "ioctl SIOCOUTQNSD");
	return n;
}

/* ---- the server thread ---- */

/*
 * The client drives the server through a pipe: 'P' asks it to go quiet
 * (stop reading, send the last burst, wait until the client acknowledged
 * everything, answer 'Q'), 'G' lets it go on. The server answers on a
 * second pipe.
 */
struct server {
	int lfd;
	int cmd;   /* read end: commands from the client */
	int reply; /* write end: replies to the client */
	struct stream st;
	pthread_t thread;
};

static void server_reply(struct server *sv, char c)
{
	CHECK(write(sv->reply, &c, 1) == 1, "server: write reply");
}

static void *server_main(void *arg)
{
	struct server *sv = arg;
	struct stream *s = &sv->st;
	int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(fd >= 0, "server: accept");
	close(sv->lfd);

	enum { RUN, BURSTING, QUIET } mode = RUN;
	uint64_t burst_end = 0;
	int eof = 0;
	while (!eof || s->sent < total) {
		struct pollfd p[2] = {{.fd = fd}, {.fd = sv->cmd, .events = POLLIN}};
		if (mode == RUN && !eof)
			p[0].events |= POLLIN;
		/* Sending runs at most LEAD ahead of receiving, so that neither
		 * direction ends long before the other. */
		uint64_t limit = mode == BURSTING ? burst_end : mode == RUN ? s->received + LEAD : 0;
		if (limit > total)
			limit = total;
		if (s->sent < limit)
			p[0].events |= POLLOUT;
		int timeout = mode == BURSTING ? 1 : STEP_TIMEOUT_MS;
		int n = poll(p, 2, timeout);
		CHECK(n >= 0, "server: poll");
		if (n == 0 && mode != BURSTING)
			die("server: stalled for %d ms (received %" PRIu64 ", sent %" PRIu64 ")", STEP_TIMEOUT_MS,
			    s->received, s->sent);
		if (p[1].revents & POLLIN) {
			char c;
			CHECK(read(sv->cmd, &c, 1) == 1, "server: read command");
			if (c == 'P') {
				mode = BURSTING;
				burst_end = s->sent + BURST;
			} else if (c == 'G') {
				mode = RUN;
			}
		}
		if ((p[0].revents & POLLIN) && mode == RUN) {
			if (stream_read(s, fd, CHUNK) < 0)
				eof = 1;
		}
		if ((p[0].revents & (POLLOUT | POLLERR | POLLHUP)) && (p[0].events & POLLOUT))
			stream_write(s, fd, (size_t)(limit - s->sent));
		/* Quiet once the burst is out and acknowledged: then no timer of
		 * ours can send anything to the client. */
		if (mode == BURSTING && (s->sent >= burst_end || s->sent == total) && outq(fd) == 0) {
			mode = QUIET;
			server_reply(sv, 'Q');
		}
	}
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
	unsigned port = 0;
	if (!a) {
		snprintf(buf, len, "(none)");
	} else if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->v4.sin_addr, ip, sizeof(ip));
		port = ntohs(a->v4.sin_port);
		snprintf(buf, len, "%s:%u", ip, port);
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->v6.sin6_addr, ip, sizeof(ip));
		port = ntohs(a->v6.sin6_port);
		snprintf(buf, len, "[%s]:%u", ip, port);
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

/* A step's duration, for the account. */
struct step {
	const char *name;
	uint64_t ns;
};

static struct step steps[16];
static int nsteps;
static uint64_t step_start;

static void step_begin(void) { step_start = now_ns(); }

static void step_end(const char *name)
{
	uint64_t t = now_ns();
	if (nsteps < (int)(sizeof(steps) / sizeof(steps[0])))
		steps[nsteps++] = (struct step){name, t - step_start};
	step_start = t;
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
 * checkpoint_restore replaces the client's socket fd by a new socket that
 * carries on the same connection, and returns the new descriptor. Nothing
 * is printed between the checkpoint and the restore, while the connection
 * has no socket.
 */
static int checkpoint_restore(int fd, int n)
{
	struct libsoccr_sk_data data;
	char a1[64], a2[64];
	int addr_fallback = 0;
	nsteps = 0;

	/* Checkpoint. */
	uint64_t t0 = now_ns();
	step_begin();
	struct libsoccr_sk *sk = libsoccr_pause(fd);
	if (!sk)
		die("libsoccr_pause(%d) failed", fd);
	step_end("libsoccr_pause");
	int filled = libsoccr_save(sk, &data, sizeof(data));
	if (filled < 0)
		die("libsoccr_save: %d", filled);
	step_end("libsoccr_save");
	/* SOCCR_MEM_EXCL: the buffers are ours now, malloc'd. */
	char *inq = libsoccr_get_queue_bytes(sk, TCP_RECV_QUEUE, SOCCR_MEM_EXCL);
	char *outq = libsoccr_get_queue_bytes(sk, TCP_SEND_QUEUE, SOCCR_MEM_EXCL);
	if ((data.inq_len && !inq) || (data.outq_len && !outq))
		die("libsoccr_get_queue_bytes returned NULL for a queue of %u/%u bytes", data.inq_len, data.outq_len);
	step_end("libsoccr_get_queue_bytes x2");
	union libsoccr_addr *src = libsoccr_get_addr(sk, 1, SOCCR_MEM_EXCL);
	union libsoccr_addr *dst = libsoccr_get_addr(sk, 0, SOCCR_MEM_EXCL);
	step_end("libsoccr_get_addr x2");
	if (!src || !dst) {
		/* CRIU's libsoccr returns NULL here; gosoccr returns them. */
		addr_fallback = 1;
		free(src);
		free(dst);
		src = own_addr(fd, 1);
		dst = own_addr(fd, 0);
		step_begin();
	}
	libsoccr_release(sk);
	step_end("libsoccr_release");
	CHECK(close(fd) == 0, "close"); /* in repair mode: the peer sees nothing */
	step_end("close (in repair mode)");
	uint64_t t_ckpt = now_ns();
	addr_str(src, a1, sizeof(a1));
	addr_str(dst, a2, sizeof(a2));

	/* Restore. */
	step_begin();
	uint64_t t_restore = step_start;
	int nfd = socket(src->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	CHECK(nfd >= 0, "socket");
	step_end("socket");
	sk = libsoccr_pause(nfd);
	if (!sk)
		die("libsoccr_pause(%d) of the new socket failed", nfd);
	step_end("libsoccr_pause (new socket)");
	/* SOCCR_MEM_EXCL: the library takes the buffers and frees them. */
	if (libsoccr_set_queue_bytes(sk, TCP_SEND_QUEUE, outq, SOCCR_MEM_EXCL) < 0 ||
	    libsoccr_set_queue_bytes(sk, TCP_RECV_QUEUE, inq, SOCCR_MEM_EXCL) < 0)
		die("libsoccr_set_queue_bytes failed");
	step_end("libsoccr_set_queue_bytes x2");
	if (libsoccr_set_addr(sk, 1, src, SOCCR_MEM_EXCL) < 0 || libsoccr_set_addr(sk, 0, dst, SOCCR_MEM_EXCL) < 0)
		die("libsoccr_set_addr failed");
	step_end("libsoccr_set_addr x2");
	int rc = libsoccr_restore(sk, &data, sizeof(data));
	if (rc < 0)
		die("libsoccr_restore: %d", rc);
	step_end("libsoccr_restore");
	libsoccr_resume(sk);
	step_end("libsoccr_resume");
	uint64_t t_end = now_ns();
	/* Like CRIU, the caller restores the socket options that libsoccr
	 * leaves to it: here the buffer sizes. */
	set_int(nfd, SOL_SOCKET, SO_SNDBUF, CLIENT_SNDBUF, "SO_SNDBUF");
	set_int(nfd, SOL_SOCKET, SO_RCVBUF, CLIENT_RCVBUF, "SO_RCVBUF");

	printf("checkpoint %d: libsoccr_save filled %d bytes: %s %s -> %s\n", n, filled, tcp_state_name(data.state),
	       a1, a2);
	if (addr_fallback)
		printf("  (libsoccr_get_addr returned NULL: addresses from getsockname/getpeername)\n");
	printf("  receive queue: %7u bytes unread by the client,     inq_seq  %10u\n", data.inq_len, data.inq_seq);
	printf("  send queue:    %7u bytes (%7u of them unsent), outq_seq %10u\n", data.outq_len, data.unsq_len,
	       data.outq_seq);
	printf("  mss_clamp %u, wscale snd %u rcv %u, options%s%s%s, timestamp %u\n", data.mss_clamp,
	       data.snd_wscale, data.rcv_wscale, data.opt_mask & 1 ? " timestamps" : "",
	       data.opt_mask & 2 ? " sack" : "", data.opt_mask & 4 ? " wscale" : "", data.timestamp);
	if (data.flags & SOCCR_FLAGS_WINDOW)
		printf("  window: snd_wnd %u, rcv_wnd %u, max_window %u, snd_wl1 %u, rcv_wup %u\n", data.snd_wnd,
		       data.rcv_wnd, data.max_window, data.snd_wl1, data.rcv_wup);
	else
		printf("  window: not saved (kernel without TCP_REPAIR_WINDOW)\n");
	for (int i = 0; i < nsteps; i++)
		printf("  %-30s %8.1f us\n", steps[i].name, (double)steps[i].ns / 1e3);
	printf("  checkpoint %.1f us, restore %.1f us; the connection had no socket for %.1f us\n",
	       (double)(t_ckpt - t0) / 1e3, (double)(t_end - t_restore) / 1e3, (double)(t_end - t_ckpt) / 1e3);
	return nfd;
}

/* ---- the client ---- */

static void client_send_cmd(int cmd_wr, char c)
{
	CHECK(write(cmd_wr, &c, 1) == 1, "client: write command");
}

/* wait_quiet waits until the server went quiet and the client's own bytes
 * in flight are all acknowledged, writing what the server lets through. */
static void wait_quiet(struct stream *s, int fd, int reply_rd)
{
	int quiet = 0;
	uint64_t deadline = now_ns() + (uint64_t)STEP_TIMEOUT_MS * 1000000;
	for (;;) {
		int full = stream_write(s, fd, CHUNK) == 0;
		if (!quiet) {
			struct pollfd p = {.fd = reply_rd, .events = POLLIN};
			CHECK(poll(&p, 1, 1) >= 0, "client: poll");
			if (p.revents & POLLIN) {
				char c;
				CHECK(read(reply_rd, &c, 1) == 1 && c == 'Q', "client: read reply");
				quiet = 1;
			}
		} else if (full && outq(fd) == unsent(fd)) {
			return;
		} else {
			usleep(200);
		}
		if (now_ns() > deadline)
			die("client: the server did not go quiet within %d ms", STEP_TIMEOUT_MS);
	}
}

int main(int argc, char **argv)
{
	int checkpoints = argc > 1 ? atoi(argv[1]) : 3;
	if (argc > 2)
		total = (uint64_t)strtoull(argv[2], NULL, 10) << 20;
	if (checkpoints < 0 || total == 0 || argc > 3) {
		fprintf(stderr, "usage: demo [checkpoints [MiB each way]]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	libsoccr_set_log(SOCCR_LOG_ERR, soccr_log);

	static struct server sv;
	static struct stream cs;
	stream_init(&sv.st, S2C);
	stream_init(&cs, C2S);
	int cmd[2], reply[2];
	CHECK(pipe2(cmd, O_CLOEXEC) == 0 && pipe2(reply, O_CLOEXEC) == 0, "pipe");
	sv.cmd = cmd[0];
	sv.reply = reply[1];

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t salen = sizeof(sa);
	sv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(sv.lfd >= 0, "socket");
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

	printf("part 1, the libsoccr C ABI: streaming %" PRIu64 " MiB each way over 127.0.0.1:%u in a private network namespace,\n"
	       "      checkpointing and restoring the client's socket %d times through libsoccr\n",
	       total >> 20, ntohs(sa.sin_port), checkpoints);
	printf("      (no network lock: the server goes quiet on request around each checkpoint)\n");

	int done = 0, eof = 0;
	uint64_t start = now_ns();
	while (!eof || cs.sent < total) {
		/* Checkpoint k once the client sent k/(checkpoints+1) of its bytes. */
		if (done < checkpoints && cs.sent >= total / (uint64_t)(checkpoints + 1) * (uint64_t)(done + 1)) {
			printf("\nafter %" PRIu64 " bytes sent and %" PRIu64 " received by the client:\n", cs.sent,
			       cs.received);
			printf("  client stops reading; server goes quiet (stops reading, sends %d KiB, waits for acks)\n",
			       BURST >> 10);
			/* Read what is there first: the client's receive queue
			 * then holds what was in flight and the burst. */
			int inq;
			CHECK(ioctl(fd, SIOCINQ, &inq) == 0, "ioctl SIOCINQ");
			for (ssize_t r = 1; inq > 0 && r > 0; inq -= (int)r)
				r = stream_read(&cs, fd, (size_t)inq);
			client_send_cmd(cmd[1], 'P');
			wait_quiet(&cs, fd, reply[0]);
			fd = checkpoint_restore(fd, ++done);
			client_send_cmd(cmd[1], 'G');
			printf("  server and client go on\n");
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (cs.sent < total)
			p.events |= POLLOUT;
		int n = poll(&p, 1, STEP_TIMEOUT_MS);
		CHECK(n >= 0, "client: poll");
		if (n == 0)
			die("client: stalled for %d ms (sent %" PRIu64 ", received %" PRIu64 ")", STEP_TIMEOUT_MS, cs.sent,
			    cs.received);
		if (p.revents & POLLOUT)
			stream_write(&cs, fd, CHUNK);
		if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
			if (stream_read(&cs, fd, CHUNK) < 0)
				eof = 1;
		}
	}
	CHECK(pthread_join(sv.thread, NULL) == 0, "pthread_join");
	close(fd);
	double secs = (double)(now_ns() - start) / 1e9;

	printf("\nclient -> server: %" PRIu64 " bytes sent, %" PRIu64 " received and verified, fnv64 %016" PRIx64
	       " %s %016" PRIx64 "\n",
	       cs.sent, sv.st.received, cs.fnv_sent, cs.fnv_sent == sv.st.fnv_recv ? "==" : "!=", sv.st.fnv_recv);
	printf("server -> client: %" PRIu64 " bytes sent, %" PRIu64 " received and verified, fnv64 %016" PRIx64
	       " %s %016" PRIx64 "\n",
	       sv.st.sent, cs.received, sv.st.fnv_sent, sv.st.fnv_sent == cs.fnv_recv ? "==" : "!=", cs.fnv_recv);
	if (cs.sent != total || sv.st.received != total || sv.st.sent != total || cs.received != total ||
	    cs.fnv_sent != sv.st.fnv_recv || sv.st.fnv_sent != cs.fnv_recv)
		die("byte counts or checksums differ");
	printf("part 1: OK: every byte verified, once and in order, both ways, across %d checkpoint%s (%.2f s)\n",
	       checkpoints, checkpoints == 1 ? "" : "s", secs);
	return 0;
}

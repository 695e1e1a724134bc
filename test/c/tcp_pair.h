/*
 * tcp_pair.h: a loopback TCP connection for the tests and the benchmark,
 * and the checkpoint/restore sequence of soccr.h's pseudo-code.
 */
#ifndef GOSOCCR_TEST_TCP_PAIR_H
#define GOSOCCR_TEST_TCP_PAIR_H

#include "harness.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include "soccr.h"

enum pair_kind { PAIR_V4, PAIR_V6, PAIR_MAPPED };

struct pair_opts {
	enum pair_kind kind;
	int srv_rcvbuf;   /* > 0: SO_RCVBUF of the listener, before listen() */
	int cli_bufs;     /* > 0: SO_RCVBUFFORCE/SO_SNDBUFFORCE of the client, before connect() */
};

struct pair {
	int lfd, cli, srv;
};

/* pair_listen makes the listening socket, bound to port 0 of the kind's
 * loopback address. Returns its port. */
static inline int pair_listen(struct pair *p, const struct pair_opts *o)
{
	union libsoccr_addr a = { 0 };
	socklen_t len;
	int one = 1;

	if (o->kind == PAIR_V6) {
		p->lfd = H_SYS(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
		a.v6.sin6_family = AF_INET6;
		a.v6.sin6_addr = in6addr_loopback;
		len = sizeof(a.v6);
	} else {
		p->lfd = H_SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
		a.v4.sin_family = AF_INET;
		a.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(a.v4);
	}
	H_SYS(setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	if (o->srv_rcvbuf > 0)
		H_SYS(setsockopt(p->lfd, SOL_SOCKET, SO_RCVBUF, &o->srv_rcvbuf, sizeof(int)));
	H_SYS(bind(p->lfd, &a.sa, len));
	H_SYS(listen(p->lfd, 4096));
	H_SYS(getsockname(p->lfd, &a.sa, &len));
	return ntohs(o->kind == PAIR_V6 ? a.v6.sin6_port : a.v4.sin_port);
}

/* pair_connect connects a new client to the listener of p and accepts it. */
static inline void pair_connect(struct pair *p, const struct pair_opts *o, int port)
{
	union libsoccr_addr a = { 0 };
	socklen_t len;

	if (o->kind == PAIR_V4) {
		p->cli = H_SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
		a.v4.sin_family = AF_INET;
		a.v4.sin_port = htons(port);
		a.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(a.v4);
	} else {
		p->cli = H_SYS(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
		a.v6.sin6_family = AF_INET6;
		a.v6.sin6_port = htons(port);
		if (o->kind == PAIR_V6)
			a.v6.sin6_addr = in6addr_loopback;
		else
			inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.v6.sin6_addr);
		len = sizeof(a.v6);
	}
	if (o->cli_bufs > 0) {
		H_SYS(setsockopt(p->cli, SOL_SOCKET, SO_RCVBUFFORCE, &o->cli_bufs, sizeof(int)));
		H_SYS(setsockopt(p->cli, SOL_SOCKET, SO_SNDBUFFORCE, &o->cli_bufs, sizeof(int)));
	}
	H_SYS(connect(p->cli, &a.sa, len));
	p->srv = H_SYS(accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC));
}

static inline int tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	H_SYS(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len));
	return ti.tcpi_state;
}

static inline int ioctl_int(int fd, unsigned long req)
{
	int v;

	H_SYS(ioctl(fd, req, &v));
	return v;
}

/* write_pattern writes n bytes of direction dir from offset off, without
 * blocking for longer than timeout_ms in all. Returns the bytes written. */
static inline size_t write_pattern(int fd, int dir, uint64_t off, size_t n, int timeout_ms)
{
	uint8_t buf[65536];
	size_t done = 0;
	double end = h_now_us() + timeout_ms * 1000.0;

	while (done < n) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		ssize_t w;

		h_fill(buf, k, dir, off + done);
		w = send(fd, buf, k, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			done += w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			h_fail("send: %s", strerror(errno));
		if (h_now_us() > end)
			break;
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		poll(&pfd, 1, 10);
	}
	return done;
}

/* A checkpointed connection, as the caller of libsoccr stores it. */
struct ckpt {
	struct libsoccr_sk_data data;
	char *inq, *outq;
	union libsoccr_addr *src, *dst;
};

/* pause_save takes fd through pause, save, get_queue_bytes and get_addr
 * (c->src and c->dst stay NULL where the library gives no address) and
 * returns the handle, still paused. */
static inline struct libsoccr_sk *pause_save(int fd, struct ckpt *c)
{
	struct libsoccr_sk *h = libsoccr_pause(fd);
	int ret;

	H_CHECK(h, "libsoccr_pause(%d) failed", fd);
	ret = libsoccr_save(h, &c->data, sizeof(c->data));
	H_CHECK(ret == (int)sizeof(c->data), "libsoccr_save: %d", ret);
	c->inq = libsoccr_get_queue_bytes(h, TCP_RECV_QUEUE, SOCCR_MEM_EXCL);
	c->outq = libsoccr_get_queue_bytes(h, TCP_SEND_QUEUE, SOCCR_MEM_EXCL);
	H_CHECK(!c->inq == !c->data.inq_len, "receive queue %p for %u bytes", c->inq, c->data.inq_len);
	H_CHECK(!c->outq == !c->data.outq_len, "send queue %p for %u bytes", c->outq, c->data.outq_len);
	c->src = libsoccr_get_addr(h, 1, SOCCR_MEM_EXCL);
	c->dst = libsoccr_get_addr(h, 0, SOCCR_MEM_EXCL);
	return h;
}

/* checkpoint takes fd through pause_save, then closes it in repair mode. */
static inline void checkpoint(int fd, struct ckpt *c)
{
	struct libsoccr_sk *h = pause_save(fd, c);

	H_CHECK(c->src && c->dst, "libsoccr_get_addr: %p %p", (void *)c->src, (void *)c->dst);
	libsoccr_release(h);
	close(fd);
}

/* restore creates a socket and restores c into it, giving every buffer to
 * the library. Returns the new socket. */
static inline int restore(struct ckpt *c)
{
	int fd = H_SYS(socket(c->src->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
	struct libsoccr_sk *h = libsoccr_pause(fd);
	int ret;

	H_CHECK(h, "libsoccr_pause(new socket %d) failed", fd);
	H_CHECK(libsoccr_set_queue_bytes(h, TCP_RECV_QUEUE, c->inq, SOCCR_MEM_EXCL) == 0, "set recv queue");
	H_CHECK(libsoccr_set_queue_bytes(h, TCP_SEND_QUEUE, c->outq, SOCCR_MEM_EXCL) == 0, "set send queue");
	H_CHECK(libsoccr_set_addr(h, 1, c->src, SOCCR_MEM_EXCL) == 0, "set src");
	H_CHECK(libsoccr_set_addr(h, 0, c->dst, SOCCR_MEM_EXCL) == 0, "set dst");
	ret = libsoccr_restore(h, &c->data, sizeof(c->data));
	H_CHECK(ret == 0, "libsoccr_restore: %d", ret);
	libsoccr_resume(h);
	c->inq = c->outq = NULL;
	c->src = c->dst = NULL;
	return fd;
}

#endif

/*
 * test_bulk: the bulk entry points of libgosoccr.so (include/gosoccr.h),
 * gosoccr_checkpoint_all, gosoccr_checkpoint_close_all, gosoccr_free_queues,
 * gosoccr_restore_all and
 * gosoccr_restore_unlock_all, with the network lock (gosoccr_lock,
 * gosoccr_unlock, gosoccr_lock_cleanup, the locker) around them as the
 * header orders it: lock, checkpoint, close, then restore and unlock
 * together (or unlock, restore). After a
 * restore every byte stream goes on: each byte once, in order, both ways,
 * and each reader sees EOF right after the last one.
 *
 * Usage: test_bulk CASE (test_bulk list prints the cases).
 */
#include "tcp_pair.h"
#include "gosoccr.h"
#include <pthread.h>

#ifndef TCP_REPAIR_OFF_NO_WP
#define TCP_REPAIR_OFF_NO_WP -1
#endif

enum { ST_ESTABLISHED = 1 };

static void log_line(unsigned level, const char *fmt, ...)
{
	va_list ap;

	printf("  log(%u): ", level);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* One direction of a connection: the writer's offset and end, the
 * reader's offset. Each stream has a pattern of its own (dir), so that
 * bytes that cross into another connection show up as well. */
struct stream {
	int dir;
	size_t sent, total, got;
	int shut, eof;
};

/* A loopback connection: the client is the side that is checkpointed. */
struct conn {
	enum pair_kind kind;
	int cli, srv;
	struct stream down, up; /* server to client, client to server */
};

static const char *kind_name[] = { "v4", "v6", "v4-mapped" };

/* A listener per kind, one with the default receive buffer and one with a
 * small one (its connections' window closes, the client keeps unsent
 * bytes). */
struct listeners {
	struct pair p[3][2];
	int port[3][2];
};

static void listeners_open(struct listeners *l)
{
	for (int k = 0; k < 3; k++)
		for (int s = 0; s < 2; s++) {
			struct pair_opts o = { .kind = (enum pair_kind)k, .srv_rcvbuf = s ? 4096 : 0 };

			l->port[k][s] = pair_listen(&l->p[k][s], &o);
		}
}

static void listeners_close(struct listeners *l)
{
	for (int k = 0; k < 3; k++)
		for (int s = 0; s < 2; s++)
			close(l->p[k][s].lfd);
}

/* conn_open connects connection number i of kind k; small: through the
 * small-buffer listener, with large client buffers. */
static void conn_open(struct listeners *l, struct conn *c, int i, enum pair_kind k, int small)
{
	struct pair_opts o = { .kind = k, .cli_bufs = small ? 1 << 20 : 0 };
	struct pair p = l->p[k][small];

	pair_connect(&p, &o, l->port[k][small]);
	c->kind = k;
	c->cli = p.cli;
	c->srv = p.srv;
	c->down = (struct stream){ .dir = 2 * i };
	c->up = (struct stream){ .dir = 2 * i + 1 };
}

/* put writes n more bytes of stream s into fd, within 10 s. */
static void put(int fd, struct stream *s, size_t n)
{
	size_t w = write_pattern(fd, s->dir, s->sent, n, 10000);

	H_CHECK(w == n, "stream %d: %zu of %zu bytes written", s->dir, w, n);
	s->sent += n;
}

/* put_unacked writes n more bytes of stream s into the send queue of fd as
 * sent and never acknowledged, as if every packet had been lost: in repair
 * mode, into TCP_SEND_QUEUE, then out of repair without a window probe. */
static void put_unacked(int fd, struct stream *s, size_t n)
{
	int on = 1, q = TCP_SEND_QUEUE, off = TCP_REPAIR_OFF_NO_WP;
	uint8_t buf[8192];

	H_CHECK(n <= sizeof(buf), "put_unacked: %zu bytes", n);
	h_fill(buf, n, s->dir, s->sent);
	H_SYS(setsockopt(fd, SOL_TCP, TCP_REPAIR, &on, sizeof(on)));
	H_SYS(setsockopt(fd, SOL_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)));
	H_CHECK(send(fd, buf, n, MSG_DONTWAIT) == (ssize_t)n, "repair send: %s", strerror(errno));
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR, &off, sizeof(off)) < 0) {
		off = 0;
		H_SYS(setsockopt(fd, SOL_TCP, TCP_REPAIR, &off, sizeof(off)));
	}
	s->sent += n;
}

/* settle waits until every client holds all the bytes its server wrote and
 * no queue moves any more. */
static void settle(struct conn *c, size_t n)
{
	double end = h_now_us() + 20e6;
	int stable = 0;
	int *last = calloc(3 * n, sizeof(int)), *cur = calloc(3 * n, sizeof(int));

	H_CHECK(last && cur, "calloc");
	memset(last, 0xff, 3 * n * sizeof(int));
	while (stable < 5) {
		int ready = 1;

		for (size_t i = 0; i < n; i++) {
			cur[3 * i] = ioctl_int(c[i].cli, SIOCINQ);
			cur[3 * i + 1] = ioctl_int(c[i].cli, SIOCOUTQ);
			cur[3 * i + 2] = ioctl_int(c[i].srv, SIOCINQ);
			ready &= (size_t)cur[3 * i] == c[i].down.sent;
		}
		if (ready && memcmp(cur, last, 3 * n * sizeof(int)) == 0)
			stable++;
		else
			stable = 0;
		memcpy(last, cur, 3 * n * sizeof(int));
		if (h_now_us() > end)
			h_fail("no steady state before the checkpoint");
		usleep(10000);
	}
	free(last);
	free(cur);
}

/* tuple_of fills t with fd's addresses, as a caller of the lock does. */
static void tuple_of(int fd, struct gosoccr_tuple *t)
{
	socklen_t len = sizeof(t->local);

	memset(t, 0, sizeof(*t));
	H_SYS(getsockname(fd, &t->local.sa, &len));
	len = sizeof(t->remote);
	H_SYS(getpeername(fd, &t->remote.sa, &len));
}

/* addr_eq compares family, port and address. */
static int addr_eq(const union libsoccr_addr *a, const union libsoccr_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return 0;
	if (a->sa.sa_family == AF_INET)
		return a->v4.sin_port == b->v4.sin_port && a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return a->v6.sin6_port == b->v6.sin6_port &&
		       memcmp(&a->v6.sin6_addr, &b->v6.sin6_addr, sizeof(a->v6.sin6_addr)) == 0;
	return 0;
}

static int port_of(const union libsoccr_addr *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->v4.sin_port : a->v6.sin6_port);
}

static int repair_mode(int fd)
{
	int v = -1;
	socklen_t len = sizeof(v);

	H_SYS(getsockopt(fd, SOL_TCP, TCP_REPAIR, &v, &len));
	return v;
}

/* pump moves every stream of c[0..n-1] to its total: writers write and
 * then shut their side down, readers check each byte and must see EOF
 * right after the last. */
static void pump(const char *name, struct conn *c, size_t n)
{
	static uint8_t buf[1 << 16];
	double end = h_now_us() + 60e6;
	size_t open = 2 * n;
	struct pollfd *pfd = calloc(2 * n, sizeof(*pfd));

	H_CHECK(pfd, "calloc");
	for (size_t i = 0; i < n; i++) {
		c[i].down.shut = c[i].up.shut = 0;
		c[i].down.eof = c[i].up.eof = 0;
	}
	while (open > 0) {
		int moved = 0;

		for (size_t i = 0; i < 2 * n; i++) {
			struct conn *k = &c[i / 2];
			struct stream *s = i % 2 ? &k->up : &k->down;
			int wfd = i % 2 ? k->cli : k->srv, rfd = i % 2 ? k->srv : k->cli;

			if (s->sent < s->total) {
				size_t w = write_pattern(wfd, s->dir, s->sent, s->total - s->sent, 0);

				s->sent += w;
				moved |= w > 0;
			}
			if (s->sent == s->total && !s->shut) {
				H_SYS(shutdown(wfd, SHUT_WR));
				s->shut = 1;
			}
			while (!s->eof) {
				ssize_t r = recv(rfd, buf, sizeof(buf), MSG_DONTWAIT);
				long long bad;

				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				if (r < 0)
					h_fail("%s: conn %zu (%s) stream %d: recv after %zu bytes: %s", name, i / 2,
					       kind_name[k->kind], s->dir, s->got, strerror(errno));
				if (r == 0) {
					H_CHECK(s->got == s->total, "%s: conn %zu (%s) stream %d: EOF after %zu bytes, want %zu",
						name, i / 2, kind_name[k->kind], s->dir, s->got, s->total);
					s->eof = 1;
					open--;
					break;
				}
				H_CHECK(s->got + r <= s->total, "%s: conn %zu stream %d: %zu bytes, more than the %zu sent",
					name, i / 2, s->dir, s->got + r, s->total);
				bad = h_check_pattern(buf, r, s->dir, s->got);
				H_CHECK(bad < 0, "%s: conn %zu (%s) stream %d: wrong byte at offset %lld", name, i / 2,
					kind_name[k->kind], s->dir, bad);
				s->got += r;
				moved = 1;
			}
		}
		if (h_now_us() > end) {
			for (size_t i = 0; i < n; i++)
				if (!c[i].down.eof || !c[i].up.eof)
					printf("  conn %zu (%s): down %zu/%zu eof %d, up %zu/%zu eof %d\n", i,
					       kind_name[c[i].kind], c[i].down.got, c[i].down.total, c[i].down.eof,
					       c[i].up.got, c[i].up.total, c[i].up.eof);
			h_fail("%s: timeout, %zu streams not at EOF", name, open);
		}
		if (!moved) {
			for (size_t i = 0; i < n; i++) {
				pfd[2 * i] = (struct pollfd){ .fd = c[i].down.eof ? -1 : c[i].cli, .events = POLLIN };
				pfd[2 * i + 1] = (struct pollfd){ .fd = c[i].up.eof ? -1 : c[i].srv, .events = POLLIN };
			}
			poll(pfd, 2 * n, 5);
		}
	}
	free(pfd);
}

/* lock_clients puts the clients of c[0..n-1] under the network lock (or
 * lifts it); t receives their tuples. */
static int lock_table(void);

static void lock_clients(struct conn *c, size_t n, struct gosoccr_tuple *t, int lock)
{
	int ret;

	if (lock)
		for (size_t i = 0; i < n; i++)
			tuple_of(c[i].cli, &t[i]);
	ret = lock ? gosoccr_lock(t, n) : gosoccr_unlock(t, n);
	H_CHECK(ret == 0, "gosoccr_%s of %zu connections: %d", lock ? "lock" : "unlock", n, ret);
}

/* check_saved checks what gosoccr_checkpoint_all said of c against the
 * socket it came from (still open, in repair mode) and its peer; or, where
 * gosoccr_checkpoint_close_all closed it, against closed, its addresses
 * read before. */
static void check_saved(const struct gosoccr_tcp_conn *t, const struct conn *c, const struct gosoccr_tuple *closed,
			size_t i)
{
	union libsoccr_addr a;
	socklen_t len = sizeof(a);
	int srv_inq = ioctl_int(c->srv, SIOCINQ);

	H_CHECK(t->result == 0, "conn %zu (%s): result %d (%s)", i, kind_name[c->kind], t->result, strerror(-t->result));
	if (closed)
		H_CHECK(t->fd == -1, "conn %zu: fd %d after gosoccr_checkpoint_close_all, want -1", i, t->fd);
	else
		H_CHECK(t->fd == c->cli, "conn %zu: fd %d changed to %d", i, c->cli, t->fd);
	H_CHECK(t->data.state == ST_ESTABLISHED, "conn %zu: state %u", i, t->data.state);
	H_CHECK(t->data.inq_len == c->down.sent, "conn %zu: inq_len %u, the client holds %zu unread", i,
		t->data.inq_len, c->down.sent);
	H_CHECK(t->data.outq_len + (size_t)srv_inq == c->up.sent,
		"conn %zu: outq_len %u + server's %d unread != %zu written", i, t->data.outq_len, srv_inq, c->up.sent);
	H_CHECK(t->data.unsq_len <= t->data.outq_len, "conn %zu: unsq_len %u > outq_len %u", i, t->data.unsq_len,
		t->data.outq_len);
	H_CHECK(!t->recv_queue == !t->data.inq_len, "conn %zu: recv_queue %p for %u bytes", i, t->recv_queue,
		t->data.inq_len);
	H_CHECK(!t->send_queue == !t->data.outq_len, "conn %zu: send_queue %p for %u bytes", i, t->send_queue,
		t->data.outq_len);
	if (t->data.inq_len) {
		long long bad = h_check_pattern((const uint8_t *)t->recv_queue, t->data.inq_len, c->down.dir, 0);

		H_CHECK(bad < 0, "conn %zu: saved receive queue wrong at offset %lld", i, bad);
	}
	if (t->data.outq_len) {
		long long bad = h_check_pattern((const uint8_t *)t->send_queue, t->data.outq_len, c->up.dir,
						c->up.sent - t->data.outq_len);

		H_CHECK(bad < 0, "conn %zu: saved send queue wrong at offset %lld", i, bad);
	}
	H_CHECK(t->src.sa.sa_family == (c->kind == PAIR_V4 ? AF_INET : AF_INET6), "conn %zu (%s): src family %d", i,
		kind_name[c->kind], t->src.sa.sa_family);
	if (closed) {
		H_CHECK(addr_eq(&closed->local, &t->src), "conn %zu: src is not the socket's own address", i);
		H_CHECK(addr_eq(&closed->remote, &t->dst), "conn %zu: dst is not the socket's peer", i);
		return;
	}
	H_SYS(getsockname(c->cli, &a.sa, &len));
	H_CHECK(addr_eq(&a, &t->src), "conn %zu: src is not the socket's own address", i);
	len = sizeof(a);
	H_SYS(getpeername(c->cli, &a.sa, &len));
	H_CHECK(addr_eq(&a, &t->dst), "conn %zu: dst is not the socket's peer", i);
	H_CHECK(repair_mode(c->cli) == 1, "conn %zu: checkpointed socket not in repair mode", i);
}

/* take_restored checks the restored socket of t and makes it c's client. */
static void take_restored(const struct gosoccr_tcp_conn *t, struct conn *c, size_t i)
{
	union libsoccr_addr a;
	socklen_t len = sizeof(a);

	H_CHECK(t->result == 0 && t->fd >= 0, "conn %zu (%s): restore result %d (%s), fd %d", i, kind_name[c->kind],
		t->result, strerror(-t->result), t->fd);
	H_SYS(getsockname(t->fd, &a.sa, &len));
	H_CHECK(addr_eq(&a, &t->src), "conn %zu: restored socket bound elsewhere", i);
	H_CHECK(tcp_state(t->fd) == ST_ESTABLISHED, "conn %zu: restored in state %d", i, tcp_state(t->fd));
	H_CHECK(repair_mode(t->fd) == 0, "conn %zu: restored socket still in repair mode", i);
	c->cli = t->fd;
}

/* drop_queues overwrites the queue buffers the library lent and gives them
 * back: a library that kept them would send garbage. */
static void drop_queues(struct gosoccr_tcp_conn *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (t[i].recv_queue)
			memset(t[i].recv_queue, 0xa5, t[i].data.inq_len);
		if (t[i].send_queue)
			memset(t[i].send_queue, 0x5a, t[i].data.outq_len);
	}
	gosoccr_free_queues(t, n);
	for (size_t i = 0; i < n; i++)
		H_CHECK(!t[i].recv_queue && !t[i].send_queue, "conn %zu: queues left after gosoccr_free_queues", i);
}

/* queue_sum is a checksum of the queues of t. */
static uint64_t queue_sum(const struct gosoccr_tcp_conn *t)
{
	uint64_t h = 1469598103934665603ull;

	for (uint32_t k = 0; k < t->data.inq_len; k++)
		h = (h ^ (uint8_t)t->recv_queue[k]) * 1099511628211ull;
	for (uint32_t k = 0; k < t->data.outq_len; k++)
		h = (h ^ (uint8_t)t->send_queue[k]) * 1099511628211ull;
	return h;
}

/* free_odd_queues gives back the queues of the odd entries of t, one by
 * one with gosoccr_free_queue, and checks that those of the even entries,
 * which share their mappings, keep their bytes. */
static void free_odd_queues(struct gosoccr_tcp_conn *t, size_t n)
{
	uint64_t *sum = calloc(n, sizeof(*sum));

	H_CHECK(sum, "out of memory");
	for (size_t i = 0; i < n; i += 2)
		sum[i] = queue_sum(&t[i]);
	for (size_t i = 1; i < n; i += 2) {
		gosoccr_free_queue(t[i].recv_queue);
		gosoccr_free_queue(t[i].send_queue);
		t[i].recv_queue = t[i].send_queue = NULL;
	}
	gosoccr_free_queue(NULL);
	for (size_t i = 0; i < n; i += 2)
		H_CHECK(queue_sum(&t[i]) == sum[i], "conn %zu: its queues changed when others were given back", i);
	free(sum);
}

static void close_conns(struct conn *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		close(c[i].cli);
		close(c[i].srv);
	}
}

/*
 * many_mixed: 200 connections, IPv4, IPv6 and IPv4-mapped, in five
 * profiles: empty queues; unread bytes at the client; a closed window
 * (the client holds unsent bytes); unread bytes both ways and writes
 * under the lock (the server's are sent and dropped, the client's
 * stay queued); bytes the client sent that were never acknowledged.
 * Checkpointed and closed by gosoccr_checkpoint_close_all, restored by
 * gosoccr_restore_unlock_all; their queues are given back half one by one,
 * half at once.
 */
static void many_mixed(void)
{
	enum { N = 200 };
	struct listeners l;
	struct conn *c = calloc(N, sizeof(*c));
	struct gosoccr_tcp_conn *t = calloc(N, sizeof(*t));
	struct gosoccr_tuple *tu = calloc(N, sizeof(*tu));
	size_t unsent = 0, unacked = 0, fam[3] = { 0 };
	double t0;
	int ret, fds;

	H_CHECK(c && t && tu, "calloc");
	listeners_open(&l);
	for (int i = 0; i < N; i++) {
		int prof = (i / 3) % 5;

		conn_open(&l, &c[i], i, (enum pair_kind)(i % 3), prof == 2);
		switch (prof) {
		case 1:
			put(c[i].srv, &c[i].down, 20000 + i);
			break;
		case 2:
			put(c[i].srv, &c[i].down, 3000);
			put(c[i].cli, &c[i].up, 100000);
			break;
		case 3:
			put(c[i].srv, &c[i].down, 50000);
			put(c[i].cli, &c[i].up, 50000 + i);
			break;
		case 4:
			put(c[i].srv, &c[i].down, 1000);
			put(c[i].cli, &c[i].up, 2000);
			break;
		}
	}
	listeners_close(&l);
	settle(c, N);

	lock_clients(c, N, tu, 1);
	for (int i = 0; i < N; i++) {
		int prof = (i / 3) % 5;

		if (prof == 3) {
			put(c[i].srv, &c[i].down, 7000);
			put(c[i].cli, &c[i].up, 9000);
		} else if (prof == 4) {
			put(c[i].srv, &c[i].down, 3000);
			put_unacked(c[i].cli, &c[i].up, 5000);
		}
	}
	for (int i = 0; i < N; i++)
		t[i] = (struct gosoccr_tcp_conn){ .fd = c[i].cli, .result = 12345 };

	fds = h_count_fds();
	t0 = h_now_us();
	ret = gosoccr_checkpoint_close_all(t, N);
	printf("  checkpoint_close_all of %d: %d failed, %.1f ms\n", N, ret, (h_now_us() - t0) / 1e3);
	H_CHECK(ret == 0, "gosoccr_checkpoint_close_all: %d failed", ret);
	/* In repair mode when closed: the server sees nothing. */
	H_CHECK(h_count_fds() == fds - N, "%d fds open after gosoccr_checkpoint_close_all, want %d", h_count_fds(),
		fds - N);
	for (int i = 0; i < N; i++) {
		/* The server's bytes written under the lock never arrived. */
		size_t late = (i / 3) % 5 == 3 ? 7000 : (i / 3) % 5 == 4 ? 3000 : 0;

		c[i].down.sent -= late;
		check_saved(&t[i], &c[i], &tu[i], i);
		c[i].down.sent += late;
		fam[c[i].kind]++;
		unsent += t[i].data.unsq_len > 0;
		unacked += t[i].data.outq_len > t[i].data.unsq_len;
		if ((i / 3) % 5 == 2)
			H_CHECK(t[i].data.unsq_len > 0, "conn %d: closed window, no unsent bytes", i);
		if ((i / 3) % 5 == 4)
			H_CHECK(t[i].data.outq_len - t[i].data.unsq_len >= 5000,
				"conn %d: %u bytes sent and not acknowledged, want 5000", i,
				t[i].data.outq_len - t[i].data.unsq_len);
	}
	printf("  saved: %zu v4, %zu v6, %zu v4-mapped; %zu with unsent bytes, %zu with unacknowledged bytes\n",
	       fam[0], fam[1], fam[2], unsent, unacked);

	/* Restored paused, unlocked, resumed: gosoccr_restore_unlock_all. */
	for (int i = 0; i < N; i++)
		t[i].fd = 12345;
	t0 = h_now_us();
	ret = gosoccr_restore_unlock_all(t, N);
	printf("  restore_unlock_all of %d: %d failed, %.1f ms\n", N, ret, (h_now_us() - t0) / 1e3);
	free_odd_queues(t, N);
	drop_queues(t, N);
	H_CHECK(ret == 0, "gosoccr_restore_unlock_all: %d failed", ret);
	H_CHECK(lock_table() != 1 || system("nft list set inet gosoccr v4 | grep -q '127.0.0.1'") != 0,
		"connections still locked after gosoccr_restore_unlock_all");
	for (int i = 0; i < N; i++) {
		take_restored(&t[i], &c[i], i);
		c[i].down.total = c[i].down.sent + 10000 + i;
		c[i].up.total = c[i].up.sent + 10000 + 2 * i;
	}
	pump("many_mixed", c, N);
	close_conns(c, N);
	free(c);
	free(t);
	free(tu);
}

/*
 * checkpoint_failures: good connections among descriptors that cannot be
 * checkpointed. The good ones are saved; each bad one has its negative
 * errno in result and no buffer, the return value counts them, and every
 * socket among them is out of repair mode and still works.
 */
static void checkpoint_failures(void)
{
	struct listeners l;
	struct conn c[3];
	struct gosoccr_tuple tu[3];
	struct gosoccr_tcp_conn t[10];
	union libsoccr_addr a = { 0 };
	socklen_t len = sizeof(a);
	int nul, udp, lfd, lport, fresh, closed, us[2], ret, x;
	char ch;
	static const char *what[] = { "good v4", "/dev/null", "UDP socket", "good v6", "listening socket",
				      "closed fd", "never connected TCP socket", "good v4-mapped",
				      "unix socket", "fd -1" };

	listeners_open(&l);
	for (int i = 0; i < 3; i++) {
		conn_open(&l, &c[i], i, (enum pair_kind)i, i == 0);
		put(c[i].srv, &c[i].down, 5000);
		put(c[i].cli, &c[i].up, i == 0 ? 60000 : 7000);
	}
	settle(c, 3);

	nul = H_SYS(open("/dev/null", O_RDWR | O_CLOEXEC));
	udp = H_SYS(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
	a.v4.sin_family = AF_INET;
	a.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	H_SYS(bind(udp, &a.sa, sizeof(a.v4)));
	H_SYS(getsockname(udp, &a.sa, &len));
	lfd = l.p[PAIR_V4][0].lfd;
	lport = l.port[PAIR_V4][0];
	fresh = H_SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	closed = H_SYS(fcntl(nul, F_DUPFD_CLOEXEC, 900));
	close(closed);
	H_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, us));

	lock_clients(c, 3, tu, 1);
	memset(t, 0x6b, sizeof(t)); /* every field but fd is the library's to set */
	t[0].fd = c[0].cli;
	t[1].fd = nul;
	t[2].fd = udp;
	t[3].fd = c[1].cli;
	t[4].fd = lfd;
	t[5].fd = closed;
	t[6].fd = fresh;
	t[7].fd = c[2].cli;
	t[8].fd = us[0];
	t[9].fd = -1;
	ret = gosoccr_checkpoint_all(t, 10);
	for (int i = 0; i < 10; i++)
		printf("  [%d] %s: fd %d result %d (%s)\n", i, what[i], t[i].fd, t[i].result,
		       t[i].result ? strerror(-t[i].result) : "ok");
	H_CHECK(ret == 7, "gosoccr_checkpoint_all: %d failed, want 7", ret);
	check_saved(&t[0], &c[0], NULL, 0);
	check_saved(&t[3], &c[1], NULL, 3);
	check_saved(&t[7], &c[2], NULL, 7);
	for (int i = 0; i < 10; i++) {
		if (i == 0 || i == 3 || i == 7)
			continue;
		H_CHECK(t[i].result < 0, "[%d] %s: result %d", i, what[i], t[i].result);
		H_CHECK(!t[i].recv_queue && !t[i].send_queue, "[%d] %s: holds queue buffers", i, what[i]);
		H_CHECK(t[i].data.inq_len == 0 && t[i].data.outq_len == 0, "[%d] %s: queue lengths %u %u", i, what[i],
			t[i].data.inq_len, t[i].data.outq_len);
	}
	/* What the header promises by name. */
	H_CHECK(t[4].result == -EOPNOTSUPP, "listening socket: %d, want -EOPNOTSUPP", t[4].result);
	H_CHECK(t[5].result == -EBADF, "closed fd: %d, want -EBADF", t[5].result);
	H_CHECK(t[6].result == -EOPNOTSUPP, "never connected: %d, want -EOPNOTSUPP", t[6].result);
	H_CHECK(t[9].result == -EBADF, "fd -1: %d, want -EBADF", t[9].result);
	H_CHECK(t[1].result == -ENOTSOCK, "/dev/null: %d, want -ENOTSOCK", t[1].result);

	/* The failed sockets work as before. The listener accepts. */
	H_CHECK(repair_mode(lfd) == 0, "listening socket left in repair mode");
	{
		struct pair p = { .lfd = lfd };
		struct pair_opts o = { .kind = PAIR_V4 };

		pair_connect(&p, &o, lport);
		H_SYS(send(p.cli, "x", 1, 0));
		H_CHECK(recv(p.srv, &ch, 1, 0) == 1 && ch == 'x', "connection through the listener");
		close(p.cli);
		close(p.srv);
	}
	/* The never-connected socket connects normally (not a repair connect:
	 * the listener must accept it and bytes must flow). */
	H_CHECK(repair_mode(fresh) == 0, "never-connected socket left in repair mode");
	{
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(lport),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int srv;

		H_SYS(connect(fresh, (struct sockaddr *)&sa, sizeof(sa)));
		srv = H_SYS(accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
		H_SYS(send(srv, "y", 1, 0));
		H_CHECK(recv(fresh, &ch, 1, 0) == 1 && ch == 'y', "the never-connected socket after connect");
		close(srv);
	}
	/* The UDP socket sends to itself, the unix pair talks. */
	H_SYS(sendto(udp, "u", 1, 0, &a.sa, sizeof(a.v4)));
	H_CHECK(recv(udp, &ch, 1, 0) == 1 && ch == 'u', "UDP socket after the failed checkpoint");
	H_SYS(send(us[0], "z", 1, 0));
	H_CHECK(recv(us[1], &ch, 1, 0) == 1 && ch == 'z', "unix socket after the failed checkpoint");
	H_SYS(read(nul, &x, 0));

	/* The good ones go through the restore. */
	for (int i = 0; i < 3; i++)
		close(c[i].cli);
	lock_clients(c, 3, tu, 0);
	{
		struct gosoccr_tcp_conn r[3] = { t[0], t[3], t[7] };

		ret = gosoccr_restore_all(r, 3);
		drop_queues(r, 3);
		H_CHECK(ret == 0, "gosoccr_restore_all: %d failed", ret);
		for (int i = 0; i < 3; i++) {
			take_restored(&r[i], &c[i], i);
			c[i].down.total = c[i].down.sent + 20000;
			c[i].up.total = c[i].up.sent + 20000;
		}
	}
	pump("checkpoint_failures", c, 3);
	close_conns(c, 3);
	close(nul);
	close(udp);
	close(fresh);
	close(us[0]);
	close(us[1]);
	listeners_close(&l);
}

/* port_free says whether a new socket can bind a's address and port:
 * false while any socket (a leaked one) holds it. */
static int port_free(const union libsoccr_addr *a)
{
	int fd = H_SYS(socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
	int ok = bind(fd, &a->sa, a->sa.sa_family == AF_INET ? sizeof(a->v4) : sizeof(a->v6)) == 0;

	close(fd);
	return ok;
}

/* dup_conn copies a checkpointed connection with queues of its own. */
static struct gosoccr_tcp_conn dup_conn(const struct gosoccr_tcp_conn *t)
{
	struct gosoccr_tcp_conn d = *t;

	d.recv_queue = d.send_queue = NULL;
	if (t->recv_queue) {
		d.recv_queue = malloc(t->data.inq_len);
		H_CHECK(d.recv_queue, "malloc");
		memcpy(d.recv_queue, t->recv_queue, t->data.inq_len);
	}
	if (t->send_queue) {
		d.send_queue = malloc(t->data.outq_len);
		H_CHECK(d.send_queue, "malloc");
		memcpy(d.send_queue, t->send_queue, t->data.outq_len);
	}
	return d;
}

/*
 * restore_bad_data: among good connections, entries whose data cannot be
 * restored: each gets -EINVAL and fd -1, and leaves no socket behind (its
 * address is free to bind, no descriptor stays open). A connection given
 * twice fails once, in the kernel's connect (its 4-tuple is taken), with
 * nothing left of it either. The good ones are restored and go on.
 */
static void restore_bad_data(void)
{
	enum { N = 9, DUP = N, GOOD = 3 };
	struct listeners l;
	struct conn c[N], g[GOOD];
	struct gosoccr_tuple tu[N];
	struct gosoccr_tcp_conn t[N + 1];
	static const char *what[N + 1] = {
		"good", "unsq_len > outq_len", "good", "src family AF_UNIX", "inq_len without recv_queue",
		"v4-mapped src, IPv6 dst", "state out of range", "good", "dst port 0", "a copy of [0]",
	};
	static const int good[N] = { 1, 0, 1, 0, 0, 0, 0, 1, 0 };
	int ret, fds, k = 0;

	listeners_open(&l);
	for (int i = 0; i < N; i++) {
		conn_open(&l, &c[i], i, (enum pair_kind)(i % 3), i == 1);
		put(c[i].srv, &c[i].down, 4000 + i);
		put(c[i].cli, &c[i].up, i == 1 ? 60000 : 3000);
	}
	listeners_close(&l);
	settle(c, N);
	lock_clients(c, N, tu, 1);
	for (int i = 0; i < N; i++)
		t[i] = (struct gosoccr_tcp_conn){ .fd = c[i].cli };
	ret = gosoccr_checkpoint_all(t, N);
	H_CHECK(ret == 0, "gosoccr_checkpoint_all: %d failed", ret);
	for (int i = 0; i < N; i++) {
		check_saved(&t[i], &c[i], NULL, i);
		close(c[i].cli);
	}
	lock_clients(c, N, tu, 0);

	H_CHECK(t[1].data.unsq_len > 0, "no unsent bytes to damage");
	t[1].data.unsq_len = t[1].data.outq_len + 1;
	t[3].src.sa.sa_family = AF_UNIX;
	H_CHECK(t[4].data.inq_len > 0, "no receive queue to drop");
	gosoccr_free_queue(t[4].recv_queue);
	t[4].recv_queue = NULL;
	H_CHECK(c[5].kind == PAIR_MAPPED && IN6_IS_ADDR_V4MAPPED(&t[5].dst.v6.sin6_addr), "conn 5 is not v4-mapped");
	t[5].dst.v6.sin6_addr = in6addr_loopback; /* a v4-mapped source, an IPv6 peer */
	t[6].data.state = 0x1001;
	if (t[8].dst.sa.sa_family == AF_INET)
		t[8].dst.v4.sin_port = 0;
	else
		t[8].dst.v6.sin6_port = 0;
	t[DUP] = dup_conn(&t[0]);

	fds = h_count_fds();
	ret = gosoccr_restore_all(t, N + 1);
	for (int i = 0; i <= N; i++)
		printf("  [%d] %s: fd %d result %d (%s)\n", i, what[i], t[i].fd, t[i].result,
		       t[i].result ? strerror(-t[i].result) : "ok");
	free(t[DUP].recv_queue); /* the copy's queues are this test's own */
	free(t[DUP].send_queue);
	t[DUP].recv_queue = t[DUP].send_queue = NULL;
	drop_queues(t, N);
	H_CHECK(ret == N - GOOD + 1, "gosoccr_restore_all: %d failed, want %d", ret, N - GOOD + 1);
	H_CHECK(h_count_fds() == fds + GOOD, "%d fds open after the restore, want %d", h_count_fds(), fds + GOOD);
	for (int i = 0; i < N; i++) {
		if (good[i])
			continue;
		H_CHECK(t[i].fd == -1, "[%d] %s: fd %d, want -1", i, what[i], t[i].fd);
		H_CHECK(t[i].result == -EINVAL, "[%d] %s: result %d (%s), want -EINVAL", i, what[i], t[i].result,
			strerror(-t[i].result));
		if (i != 3)
			H_CHECK(port_free(&t[i].src), "[%d] %s: its address is still bound", i, what[i]);
		close(c[i].srv);
		c[i].srv = -1;
	}
	/* One of the two copies of connection 0 wins. */
	if (t[0].fd < 0) {
		struct gosoccr_tcp_conn x = t[0];

		t[0] = t[DUP];
		t[DUP] = x;
	}
	H_CHECK(t[DUP].fd == -1 && t[DUP].result < 0, "connection 0 restored twice: fds %d and %d", t[0].fd,
		t[DUP].fd);
	for (int i = 0; i < N; i++) {
		if (!good[i])
			continue;
		take_restored(&t[i], &c[i], i);
		g[k] = c[i];
		g[k].down.total = g[k].down.sent + 30000;
		g[k].up.total = g[k].up.sent + 30000;
		k++;
	}
	pump("restore_bad_data", g, GOOD);
	close_conns(g, GOOD);
}

/*
 * syn_sent: connections whose handshake the lock holds (SYN_SENT) are
 * checkpointed and restored like the others; once restored they connect,
 * the listener accepts them, and bytes flow.
 */
static void syn_sent(void)
{
	enum { N = 6 };
	struct listeners l;
	struct conn c[N];
	struct gosoccr_tuple tu[N];
	struct gosoccr_tcp_conn t[N];
	int ret;

	listeners_open(&l);
	for (int i = 0; i < N; i++) {
		enum pair_kind k = (enum pair_kind)(i % 3);
		int fam = k == PAIR_V4 ? AF_INET : AF_INET6;
		socklen_t len = sizeof(tu[i].local);

		memset(&tu[i], 0, sizeof(tu[i]));
		c[i] = (struct conn){ .kind = k, .srv = -1, .down = { .dir = 2 * i }, .up = { .dir = 2 * i + 1 } };
		c[i].cli = H_SYS(socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0));
		/* The peer: the listener's address. */
		H_SYS(getsockname(l.p[k][0].lfd, &tu[i].remote.sa, &len));
		if (k == PAIR_MAPPED) {
			struct sockaddr_in6 m = { .sin6_family = AF_INET6, .sin6_port = tu[i].remote.v4.sin_port };

			inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
			tu[i].remote.v6 = m;
		}
		/* Ours: bound first, so that the lock can name it before the SYN. */
		tu[i].local = tu[i].remote;
		if (fam == AF_INET)
			tu[i].local.v4.sin_port = 0;
		else
			tu[i].local.v6.sin6_port = 0;
		H_SYS(bind(c[i].cli, &tu[i].local.sa, fam == AF_INET ? sizeof(tu[i].local.v4) : sizeof(tu[i].local.v6)));
		len = sizeof(tu[i].local);
		H_SYS(getsockname(c[i].cli, &tu[i].local.sa, &len));
	}
	H_CHECK(gosoccr_lock(tu, N) == 0, "gosoccr_lock");
	for (int i = 0; i < N; i++) {
		h_nonblock(c[i].cli, 1);
		H_CHECK(connect(c[i].cli, &tu[i].remote.sa,
				tu[i].remote.sa.sa_family == AF_INET ? sizeof(tu[i].remote.v4) : sizeof(tu[i].remote.v6)) < 0 &&
			errno == EINPROGRESS, "connect under the lock: %s", strerror(errno));
		H_CHECK(tcp_state(c[i].cli) == 2, "conn %d: state %d, want SYN_SENT", i, tcp_state(c[i].cli));
		t[i] = (struct gosoccr_tcp_conn){ .fd = c[i].cli };
	}
	ret = gosoccr_checkpoint_all(t, N);
	H_CHECK(ret == 0, "gosoccr_checkpoint_all: %d failed", ret);
	for (int i = 0; i < N; i++) {
		H_CHECK(t[i].result == 0 && t[i].data.state == 2, "conn %d: result %d state %u", i, t[i].result,
			t[i].data.state);
		H_CHECK(!t[i].data.inq_len && !t[i].data.outq_len && !t[i].recv_queue && !t[i].send_queue,
			"conn %d: queues in SYN_SENT", i);
		H_CHECK(addr_eq(&t[i].src, &tu[i].local) && addr_eq(&t[i].dst, &tu[i].remote), "conn %d: addresses", i);
		close(c[i].cli);
	}
	H_CHECK(gosoccr_unlock(tu, N) == 0, "gosoccr_unlock");
	ret = gosoccr_restore_all(t, N);
	H_CHECK(ret == 0, "gosoccr_restore_all: %d failed", ret);
	for (int i = 0; i < N; i++) {
		H_CHECK(t[i].result == 0 && t[i].fd >= 0, "conn %d: restore result %d fd %d", i, t[i].result, t[i].fd);
		c[i].cli = t[i].fd;
	}
	/* Each listener accepts its connections; the peer's port names the
	 * client (the v4-mapped ones reach an IPv4 listener). */
	for (int n = 0; n < N; n++) {
		union libsoccr_addr peer;
		socklen_t len = sizeof(peer);
		int k = n % 3, srv, found = 0;
		struct pollfd pfd = { .fd = l.p[k][0].lfd, .events = POLLIN };

		H_CHECK(poll(&pfd, 1, 10000) == 1, "listener %s: no connection within 10 s", kind_name[k]);
		srv = H_SYS(accept4(l.p[k][0].lfd, &peer.sa, &len, SOCK_CLOEXEC));
		for (int i = 0; i < N; i++)
			if (c[i].srv < 0 && port_of(&peer) == port_of(&tu[i].local)) {
				c[i].srv = srv;
				found = 1;
			}
		H_CHECK(found, "listener %s accepted a connection of nobody", kind_name[k]);
	}
	for (int i = 0; i < N; i++) {
		H_CHECK(tcp_state(c[i].cli) == ST_ESTABLISHED, "conn %d: state %d after the restore", i,
			tcp_state(c[i].cli));
		c[i].down.total = 20000;
		c[i].up.total = 30000;
	}
	listeners_close(&l);
	pump("syn_sent", c, N);
	close_conns(c, N);
}

/*
 * empty_and_null: n == 0 does nothing and succeeds, with or without an
 * array; a NULL array with n > 0 is -EINVAL.
 */
static void empty_and_null(void)
{
	struct gosoccr_tcp_conn t[2], before[2];

	memset(t, 0x3c, sizeof(t));
	memcpy(before, t, sizeof(t));
	H_CHECK(gosoccr_checkpoint_all(NULL, 0) == 0, "checkpoint_all(NULL, 0)");
	H_CHECK(gosoccr_restore_all(NULL, 0) == 0, "restore_all(NULL, 0)");
	H_CHECK(gosoccr_checkpoint_all(t, 0) == 0, "checkpoint_all(t, 0)");
	H_CHECK(gosoccr_restore_all(t, 0) == 0, "restore_all(t, 0)");
	H_CHECK(memcmp(t, before, sizeof(t)) == 0, "an array of 0 connections was written");
	H_CHECK(gosoccr_checkpoint_all(NULL, 3) == -EINVAL, "checkpoint_all(NULL, 3) is not -EINVAL");
	H_CHECK(gosoccr_restore_all(NULL, 3) == -EINVAL, "restore_all(NULL, 3) is not -EINVAL");
}

/* lock_table says whether the netns holds the lock's nftables table,
 * asked to the nft tool: 1, 0, or -1 without nft. */
static int lock_table(void)
{
	FILE *f;
	char line[256];
	int found = 0, st;

	if (system("command -v nft >/dev/null 2>&1") != 0)
		return -1;
	f = popen("nft list tables 2>&1", "r");
	H_CHECK(f, "popen nft: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		found |= strstr(line, "table inet gosoccr") != NULL;
	st = pclose(f);
	H_CHECK(st == 0, "nft list tables: status %d", st);
	return found;
}

/* expect_blocked waits 300 ms, then checks that neither end of any
 * connection received a byte (both ends read everything before). */
static void expect_blocked(struct conn *c, size_t n, const char *when)
{
	usleep(300000);
	for (size_t i = 0; i < n; i++) {
		H_CHECK(ioctl_int(c[i].cli, SIOCINQ) == 0, "%s: conn %zu (%s): %d bytes reached the client", when, i,
			kind_name[c[i].kind], ioctl_int(c[i].cli, SIOCINQ));
		H_CHECK(ioctl_int(c[i].srv, SIOCINQ) == 0, "%s: conn %zu (%s): %d bytes reached the server", when, i,
			kind_name[c[i].kind], ioctl_int(c[i].srv, SIOCINQ));
	}
}

/* expect_flowing reads what each side wrote, within 15 s, and checks it. */
static void expect_flowing(struct conn *c, size_t n, const char *when)
{
	static uint8_t buf[1 << 16];
	double end = h_now_us() + 15e6;

	for (size_t i = 0; i < 2 * n; i++) {
		struct stream *s = i % 2 ? &c[i / 2].up : &c[i / 2].down;
		int rfd = i % 2 ? c[i / 2].srv : c[i / 2].cli;

		while (s->got < s->sent) {
			struct pollfd pfd = { .fd = rfd, .events = POLLIN };
			ssize_t r;

			H_CHECK(h_now_us() < end, "%s: conn %zu stream %d: %zu of %zu bytes at timeout", when, i / 2,
				s->dir, s->got, s->sent);
			poll(&pfd, 1, 50);
			r = recv(rfd, buf, s->sent - s->got, MSG_DONTWAIT);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			H_CHECK(r > 0, "%s: recv: %s", when, r ? strerror(errno) : "EOF");
			H_CHECK(h_check_pattern(buf, r, s->dir, s->got) < 0, "%s: wrong bytes", when);
			s->got += r;
		}
	}
}

/*
 * lock_idempotent: locking twice and unlocking twice are harmless; while
 * locked nothing passes either way (IPv4, IPv6, IPv4-mapped), once
 * unlocked the lost bytes are retransmitted and arrive; unlocking what is
 * not locked, and empty lists, succeed; a bad address locks nothing; the
 * cleanup removes the lock's table and everything it held.
 */
static void lock_idempotent(void)
{
	enum { N = 3 };
	struct listeners l;
	struct conn c[N];
	struct gosoccr_tuple tu[N], bad[2];
	int has;

	listeners_open(&l);
	for (int i = 0; i < N; i++)
		conn_open(&l, &c[i], i, (enum pair_kind)i, 0);
	listeners_close(&l);
	for (int i = 0; i < N; i++)
		tuple_of(c[i].cli, &tu[i]);

	H_CHECK(gosoccr_lock(NULL, 0) == 0, "gosoccr_lock(NULL, 0)");
	H_CHECK(gosoccr_unlock(NULL, 0) == 0, "gosoccr_unlock(NULL, 0)");
	H_CHECK(gosoccr_lock(NULL, 2) == -EINVAL, "gosoccr_lock(NULL, 2) is not -EINVAL");
	H_CHECK(gosoccr_unlock(NULL, 2) == -EINVAL, "gosoccr_unlock(NULL, 2) is not -EINVAL");
	H_CHECK(gosoccr_unlock(tu, N) == 0, "unlock of connections never locked");

	/* A bad address: -EINVAL, and the good tuple next to it is not locked. */
	bad[0] = tu[0];
	bad[1] = tu[1];
	bad[1].remote.sa.sa_family = AF_UNIX;
	H_CHECK(gosoccr_lock(bad, 2) == -EINVAL, "gosoccr_lock with an AF_UNIX address is not -EINVAL");
	put(c[0].srv, &c[0].down, 100);
	expect_flowing(c, 1, "after a refused lock");

	H_CHECK(gosoccr_lock(tu, N) == 0, "first gosoccr_lock");
	H_CHECK(gosoccr_lock(tu, N) == 0, "second gosoccr_lock");
	has = lock_table();
	H_CHECK(has != 0, "no table inet gosoccr while locked");
	for (int i = 0; i < N; i++) {
		put(c[i].srv, &c[i].down, 1000);
		put(c[i].cli, &c[i].up, 1000);
	}
	expect_blocked(c, N, "locked twice");
	H_CHECK(gosoccr_unlock(tu, N) == 0, "first gosoccr_unlock");
	H_CHECK(gosoccr_unlock(tu, N) == 0, "second gosoccr_unlock");
	expect_flowing(c, N, "unlocked");

	/* Locked again, then the cleanup lifts it. */
	H_CHECK(gosoccr_lock(tu, N) == 0, "gosoccr_lock after unlock");
	for (int i = 0; i < N; i++) {
		put(c[i].srv, &c[i].down, 2000);
		put(c[i].cli, &c[i].up, 2000);
	}
	expect_blocked(c, N, "locked again");
	H_CHECK(gosoccr_lock_cleanup() == 0, "gosoccr_lock_cleanup");
	H_CHECK(lock_table() <= 0, "table inet gosoccr still there after gosoccr_lock_cleanup");
	expect_flowing(c, N, "after the cleanup");
	H_CHECK(gosoccr_lock_cleanup() == 0, "gosoccr_lock_cleanup without a lock");
	if (has < 0)
		printf("  nft not installed: the table itself was not looked at\n");

	for (int i = 0; i < N; i++) {
		c[i].down.total = c[i].down.sent + 5000;
		c[i].up.total = c[i].up.sent + 5000;
	}
	pump("lock_idempotent", c, N);
	close_conns(c, N);
}

/*
 * locker: a gosoccr_locker opened in the test's namespace locks and
 * unlocks as gosoccr_lock and gosoccr_unlock do, from another thread too
 * (it acts on the namespace it was opened in), many times over one
 * socket; NULL is refused; closing it leaves the lock as it is.
 */
static void *locker_thread(void *arg)
{
	void **a = arg;

	return (void *)(intptr_t)gosoccr_locker_unlock(a[0], a[1], 3);
}

static void locker(void)
{
	enum { N = 3 };
	struct listeners l;
	struct conn c[N];
	struct gosoccr_tuple tu[N];
	struct gosoccr_locker *lk;
	pthread_t th;
	void *args[2], *ret;

	listeners_open(&l);
	for (int i = 0; i < N; i++)
		conn_open(&l, &c[i], i, (enum pair_kind)i, 0);
	listeners_close(&l);
	for (int i = 0; i < N; i++)
		tuple_of(c[i].cli, &tu[i]);

	H_CHECK(gosoccr_locker_lock(NULL, tu, N) == -EINVAL, "gosoccr_locker_lock(NULL) is not -EINVAL");
	H_CHECK(gosoccr_locker_unlock(NULL, tu, N) == -EINVAL, "gosoccr_locker_unlock(NULL) is not -EINVAL");
	gosoccr_locker_close(NULL);
	lk = gosoccr_locker_open();
	H_CHECK(lk, "gosoccr_locker_open: %s", strerror(errno));
	for (int round = 0; round < 50; round++) {
		H_CHECK(gosoccr_locker_lock(lk, tu, N) == 0, "round %d: lock", round);
		H_CHECK(gosoccr_locker_unlock(lk, tu, N) == 0, "round %d: unlock", round);
	}
	H_CHECK(gosoccr_locker_lock(lk, tu, N) == 0, "lock");
	for (int i = 0; i < N; i++) {
		put(c[i].srv, &c[i].down, 1000);
		put(c[i].cli, &c[i].up, 1000);
	}
	expect_blocked(c, N, "locked by a locker");
	args[0] = lk;
	args[1] = tu;
	H_CHECK(pthread_create(&th, NULL, locker_thread, args) == 0, "pthread_create");
	H_CHECK(pthread_join(th, &ret) == 0, "pthread_join");
	H_CHECK(ret == NULL, "unlock from another thread: %d", (int)(intptr_t)ret);
	expect_flowing(c, N, "unlocked by a locker from another thread");

	/* Closing the locker leaves the lock as it is. */
	H_CHECK(gosoccr_locker_lock(lk, tu, 1) == 0, "lock one");
	gosoccr_locker_close(lk);
	put(c[0].srv, &c[0].down, 500);
	expect_blocked(c, 1, "after the locker's close");
	H_CHECK(gosoccr_unlock(tu, 1) == 0, "gosoccr_unlock after the locker's close");
	expect_flowing(c, 1, "unlocked");
	H_CHECK(gosoccr_lock_cleanup() == 0, "gosoccr_lock_cleanup");

	for (int i = 0; i < N; i++) {
		c[i].down.total = c[i].down.sent + 5000;
		c[i].up.total = c[i].up.sent + 5000;
	}
	pump("locker", c, N);
	close_conns(c, N);
}

static const struct {
	const char *name;
	void (*fn)(void);
	int privileged;
} cases[] = {
	{ "many_mixed", many_mixed, 1 },
	{ "checkpoint_failures", checkpoint_failures, 1 },
	{ "restore_bad_data", restore_bad_data, 1 },
	{ "syn_sent", syn_sent, 1 },
	{ "empty_and_null", empty_and_null, 0 },
	{ "lock_idempotent", lock_idempotent, 1 },
	{ "locker", locker, 1 },
};

int main(int argc, char **argv)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);

	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s CASE|list\n", argv[0]);
		return 2;
	}
	alarm(150);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[1], cases[i].name))
			continue;
		h_begin(cases[i].privileged);
		libsoccr_set_log(SOCCR_LOG_ERR, log_line);
		cases[i].fn();
		h_end();
		printf("ok: %s\n", cases[i].name);
		return 0;
	}
	fprintf(stderr, "unknown case %s\n", argv[1]);
	return 2;
}

/*
 * test_roundtrip: a loopback connection with data queued both ways is
 * checkpointed and restored through the libsoccr C API, exactly in the
 * order of soccr.h; every byte must then arrive once, in order, both ways,
 * and each reader must see EOF right after the last byte.
 *
 * Usage: test_roundtrip CASE (test_roundtrip list prints the cases).
 */
#include "tcp_pair.h"

/* The kernel's TCP states (include/net/tcp_states.h). */
enum {
	ST_ESTABLISHED = 1, ST_FIN_WAIT1 = 4, ST_FIN_WAIT2 = 5, ST_CLOSE = 7,
	ST_CLOSE_WAIT = 8, ST_LAST_ACK = 9, ST_CLOSING = 11,
};

struct scenario {
	const char *name;
	enum pair_kind kind;
	size_t s1, c1;    /* queued before the checkpoint: server->client, client->server */
	size_t s2, c2;    /* written after the restore */
	int srv_rcvbuf;   /* small: the server's window closes, the client keeps unsent bytes */
	int cli_bufs;     /* large client buffers for large queues */
	int srv_fin;      /* the server shuts down its side before the checkpoint:
			     1 before the client writes, 2 after the client shut down */
	int cli_fin;      /* the client shuts down its side before the checkpoint */
	int legacy;       /* restore with the older staged API */
	int state;        /* TCP state at the checkpoint and after the restore */
	int unsent;       /* the client's send queue must hold unsent bytes */
};

#define MiB (1 << 20)

static const struct scenario scenarios[] = {
	{ "established_v4", PAIR_V4, 100000, 300000, 50000, 50000, 4096, 1 << 20, 0, 0, 0, ST_ESTABLISHED, 1 },
	{ "established_v6", PAIR_V6, 100000, 300000, 50000, 50000, 4096, 1 << 20, 0, 0, 0, ST_ESTABLISHED, 1 },
	{ "established_v4mapped", PAIR_MAPPED, 100000, 300000, 50000, 50000, 4096, 1 << 20, 0, 0, 0, ST_ESTABLISHED, 1 },
	{ "established_empty_queues", PAIR_V4, 0, 0, 50000, 50000, 0, 0, 0, 0, 0, ST_ESTABLISHED, 0 },
	{ "established_4MiB_queues", PAIR_V4, 4 * MiB, 4 * MiB, 65536, 65536, 4096, 32 * MiB, 0, 0, 0, ST_ESTABLISHED, 1 },
	{ "close_wait", PAIR_V4, 30000, 100000, 0, 50000, 4096, 1 << 20, 1, 0, 0, ST_CLOSE_WAIT, 1 },
	{ "fin_wait2", PAIR_V4, 30000, 20000, 50000, 0, 0, 1 << 20, 0, 1, 0, ST_FIN_WAIT2, 0 },
	{ "last_ack", PAIR_V4, 30000, 100000, 0, 0, 4096, 1 << 20, 1, 1, 0, ST_LAST_ACK, 1 },
	{ "fin_wait1", PAIR_V4, 30000, 100000, 50000, 0, 4096, 1 << 20, 0, 1, 0, ST_FIN_WAIT1, 1 },
	{ "closing", PAIR_V4, 30000, 100000, 0, 0, 4096, 1 << 20, 2, 1, 0, ST_CLOSING, 1 },
	{ "close", PAIR_V4, 30000, 20000, 0, 0, 0, 1 << 20, 1, 1, 0, ST_CLOSE, 0 },
	{ "close_wait_v6", PAIR_V6, 30000, 100000, 0, 50000, 4096, 1 << 20, 1, 0, 0, ST_CLOSE_WAIT, 1 },
	{ "legacy_staged_v4", PAIR_V4, 100000, 300000, 50000, 50000, 4096, 1 << 20, 0, 0, 1, ST_ESTABLISHED, 1 },
	{ "legacy_staged_v6", PAIR_V6, 100000, 300000, 50000, 50000, 4096, 1 << 20, 0, 0, 1, ST_ESTABLISHED, 1 },
};

static void log_line(unsigned level, const char *fmt, ...)
{
	va_list ap;

	printf("  log(%u): ", level);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* settle waits until the client holds s1 unread bytes, is in state, and
 * the queues stop moving. */
static void settle(const struct pair *p, const struct scenario *s)
{
	int last[3] = { -1, -1, -1 }, stable = 0;
	double end = h_now_us() + 10e6;

	while (stable < 5) {
		int cur[3] = { ioctl_int(p->cli, SIOCINQ), ioctl_int(p->cli, SIOCOUTQ), ioctl_int(p->srv, SIOCINQ) };

		if (h_now_us() > end)
			h_fail("%s: no steady state: client inq %d (want %zu) outq %d state %d (want %d), server inq %d",
			       s->name, cur[0], s->s1, cur[1], tcp_state(p->cli), s->state, cur[2]);
		if ((size_t)cur[0] == s->s1 && tcp_state(p->cli) == s->state && memcmp(cur, last, sizeof(cur)) == 0)
			stable++;
		else
			stable = 0;
		memcpy(last, cur, sizeof(cur));
		usleep(10000);
	}
}

/* restore_legacy is restore() through the older staged API: the caller
 * binds and connects between the stages. */
static int restore_legacy(struct ckpt *c)
{
	int fd = H_SYS(socket(c->src->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
	socklen_t len = c->src->sa.sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	struct libsoccr_sk *h = libsoccr_pause(fd);
	int ret;

	H_CHECK(h, "libsoccr_pause(new socket %d) failed", fd);
	H_CHECK(libsoccr_set_sk_data_unbound(h, &c->data, sizeof(c->data)) == 0, "set_sk_data_unbound");
	H_SYS(bind(fd, &c->src->sa, len));
	H_SYS(connect(fd, &c->dst->sa, len));
	H_CHECK(libsoccr_set_sk_data_noq(h, &c->data, sizeof(c->data)) == 0, "set_sk_data_noq");
	H_CHECK(libsoccr_set_queue_bytes(h, TCP_RECV_QUEUE, c->inq, SOCCR_MEM_EXCL) == 0, "set recv queue");
	H_CHECK(libsoccr_set_queue_bytes(h, TCP_SEND_QUEUE, c->outq, SOCCR_MEM_EXCL) == 0, "set send queue");
	ret = libsoccr_set_sk_data(h, &c->data, sizeof(c->data));
	H_CHECK(ret == 0, "libsoccr_set_sk_data: %d", ret);
	libsoccr_resume(h);
	free(c->src);
	free(c->dst);
	c->inq = c->outq = NULL;
	c->src = c->dst = NULL;
	return fd;
}

struct stream {
	int dir;
	size_t sent, total;   /* writer side */
	size_t got, expect;   /* reader side */
	int writer_done, eof;
};

/* pump moves both streams to their ends: each writer writes up to total
 * and shuts down its side (unless it already did), each reader checks
 * every byte and must see EOF right after expect bytes. */
static void pump(const char *name, int cli, int srv, struct stream *down, struct stream *up,
		 int srv_shut, int cli_shut)
{
	double end = h_now_us() + 30e6;
	static uint8_t buf[1 << 16];

	h_nonblock(cli, 1);
	h_nonblock(srv, 1);
	while (!down->eof || !up->eof) {
		struct { int wfd, rfd; struct stream *s; int *shut; } sides[2] = {
			{ srv, cli, down, &srv_shut }, { cli, srv, up, &cli_shut },
		};
		int moved = 0;

		for (int i = 0; i < 2; i++) {
			struct stream *s = sides[i].s;

			if (s->sent < s->total) {
				size_t w = write_pattern(sides[i].wfd, s->dir, s->sent, s->total - s->sent, 0);
				s->sent += w;
				moved |= w > 0;
			}
			if (s->sent == s->total && !*sides[i].shut) {
				H_SYS(shutdown(sides[i].wfd, SHUT_WR));
				*sides[i].shut = 1;
			}
			while (!s->eof) {
				ssize_t r = recv(sides[i].rfd, buf, sizeof(buf), 0);
				long long bad;

				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				if (r < 0)
					h_fail("%s: recv (dir %d) after %zu bytes: %s", name, s->dir, s->got, strerror(errno));
				if (r == 0) {
					s->eof = 1;
					H_CHECK(s->got == s->expect, "%s: dir %d: EOF after %zu bytes, want %zu",
						name, s->dir, s->got, s->expect);
					break;
				}
				H_CHECK(s->got + r <= s->expect, "%s: dir %d: %zu bytes, more than the %zu sent",
					name, s->dir, s->got + r, s->expect);
				bad = h_check_pattern(buf, r, s->dir, s->got);
				H_CHECK(bad < 0, "%s: dir %d: wrong byte at offset %lld", name, s->dir, bad);
				s->got += r;
				moved = 1;
			}
		}
		if (h_now_us() > end)
			h_fail("%s: timeout: server->client %zu/%zu bytes (eof %d), client->server %zu/%zu (eof %d)",
			       name, down->got, down->expect, down->eof, up->got, up->expect, up->eof);
		if (!moved) {
			struct pollfd pfd[2] = { { .fd = cli, .events = POLLIN }, { .fd = srv, .events = POLLIN } };
			poll(pfd, 2, 5);
		}
	}
}

static void run(const struct scenario *s)
{
	struct pair_opts o = { .kind = s->kind, .srv_rcvbuf = s->srv_rcvbuf, .cli_bufs = s->cli_bufs };
	struct stream down = { .dir = 0 }, up = { .dir = 1 };
	struct pair p;
	struct ckpt c;
	int port, srv_inq, st;

	port = pair_listen(&p, &o);
	pair_connect(&p, &o, port);
	close(p.lfd);

	/* Before the checkpoint: s1 bytes to the client, which does not read. */
	H_CHECK(write_pattern(p.srv, 0, 0, s->s1, 10000) == s->s1, "%s: server could not queue %zu bytes",
		s->name, s->s1);
	if (s->srv_fin == 1)
		H_SYS(shutdown(p.srv, SHUT_WR));
	/* c1 bytes to the server, which does not read either. */
	H_CHECK(write_pattern(p.cli, 1, 0, s->c1, 10000) == s->c1, "%s: client could not queue %zu bytes",
		s->name, s->c1);
	if (s->cli_fin)
		H_SYS(shutdown(p.cli, SHUT_WR));
	if (s->srv_fin == 2)
		H_SYS(shutdown(p.srv, SHUT_WR));
	settle(&p, s);

	checkpoint(p.cli, &c);
	srv_inq = ioctl_int(p.srv, SIOCINQ);
	H_CHECK(c.data.state == (uint32_t)s->state, "%s: saved state %u, want %d", s->name, c.data.state, s->state);
	H_CHECK(c.data.inq_len == s->s1, "%s: inq_len %u, want %zu", s->name, c.data.inq_len, s->s1);
	H_CHECK(c.data.outq_len + (size_t)srv_inq == s->c1, "%s: outq_len %u + server's %d unread != %zu written",
		s->name, c.data.outq_len, srv_inq, s->c1);
	H_CHECK(!s->unsent || c.data.unsq_len > 0, "%s: want unsent bytes, unsq_len 0", s->name);
	H_CHECK(c.data.flags & SOCCR_FLAGS_WINDOW, "%s: no window saved", s->name);
	printf("  saved: state %u inq %u outq %u (unsent %u) server holds %d\n", c.data.state, c.data.inq_len,
	       c.data.outq_len, c.data.unsq_len, srv_inq);

	p.cli = s->legacy ? restore_legacy(&c) : restore(&c);
	st = tcp_state(p.cli);
	H_CHECK(st == s->state, "%s: restored state %d, want %d", s->name, st, s->state);

	down.total = s->srv_fin ? s->s1 : s->s1 + s->s2;
	down.sent = s->s1;
	down.expect = down.total;
	up.total = s->cli_fin ? s->c1 : s->c1 + s->c2;
	up.sent = s->c1;
	up.expect = up.total;
	pump(s->name, p.cli, p.srv, &down, &up, s->srv_fin, s->cli_fin);
	close(p.cli);
	close(p.srv);
}

int main(int argc, char **argv)
{
	size_t n = sizeof(scenarios) / sizeof(scenarios[0]);

	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", scenarios[i].name);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s CASE|list\n", argv[0]);
		return 2;
	}
	alarm(120);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[1], scenarios[i].name))
			continue;
		h_begin(1);
		libsoccr_set_log(SOCCR_LOG_ERR, log_line);
		run(&scenarios[i]);
		h_end();
		printf("ok: %s\n", scenarios[i].name);
		return 0;
	}
	fprintf(stderr, "unknown case %s\n", argv[1]);
	return 2;
}

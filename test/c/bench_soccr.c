/*
 * bench_soccr: cost of checkpoint and restore through the libsoccr C API,
 * per connection, over n loopback connections with q bytes unread each way
 * (16 KiB by default).
 *
 * Usage: bench_soccr [-n N] [-q BYTES] [-u] [-p setup|checkpoint|restore|all]
 *   -n N      connections (default 1000)
 *   -q BYTES  unread bytes in each direction of each connection (default
 *             16384): the client, which is checkpointed, has them in its
 *             receive queue; the ones it sent wait in the server's (its
 *             own send queue is empty once they are acknowledged, unless -u)
 *   -u        the client's send queue holds unsent bytes (the server's
 *             receive buffer is small, its window closes)
 *   -p        stop after a phase, to count system calls per phase with
 *             strace -c -f: the count of "restore" minus that of "checkpoint",
 *             divided by the n printed, is the restore's calls per connection.
 *
 * Checkpoint: pause, save, get_queue_bytes x2, get_addr x2, release, close.
 * Restore: socket, pause, set_queue_bytes x2, set_addr x2, restore, resume.
 *
 * The same source builds against any library of the libsoccr ABI: against
 * libgosoccr.so with include/soccr.h, and against CRIU's own libsoccr with
 * CRIU's soccr.h (test/bench-vs-libsoccr.sh). CRIU's libsoccr_get_addr
 * returns NULL and leaves the addresses to the caller: then the checkpoint
 * reads them with getsockname/getpeername, inside the timed span, as a
 * caller of that library must (ours does the same two calls inside
 * libsoccr_get_addr), and says so in a line of its own.
 *
 * Before the timed phases one more connection is checkpointed and restored,
 * and its bytes checked: the first calls into a library pay for what the
 * later ones reuse (for libgosoccr.so, the Go runtime's threads and heap),
 * and the figures are for the steady state. It belongs to the setup phase.
 *
 * Runs in a network namespace of its own; needs root.
 */
#include "tcp_pair.h"
#include <getopt.h>
#if __has_include("gosoccr.h")
#include "gosoccr.h" /* -b: the bulk calls, gosoccr only */
#define HAVE_BULK 1
#endif
#include <sys/resource.h>

static void raise_nofile(void)
{
	struct rlimit r;

	H_SYS(getrlimit(RLIMIT_NOFILE, &r));
	r.rlim_cur = r.rlim_max;
	H_SYS(setrlimit(RLIMIT_NOFILE, &r));
}

static void log_line(unsigned level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* sock_addr reads the socket's own address (self) or its peer's into a
 * malloc()-ed union, for a library whose libsoccr_get_addr gives none. */
static union libsoccr_addr *sock_addr(int fd, int self)
{
	union libsoccr_addr *a = calloc(1, sizeof(*a));
	socklen_t len = sizeof(*a);

	H_CHECK(a, "out of memory");
	if (self)
		H_SYS(getsockname(fd, &a->sa, &len));
	else
		H_SYS(getpeername(fd, &a->sa, &len));
	return a;
}

/* Set when the library's libsoccr_get_addr returned NULL (CRIU's does). */
static int addr_by_caller;

/* bench_checkpoint is tcp_pair.h's checkpoint, except that where
 * libsoccr_get_addr gives no address the caller reads it from the socket
 * before closing it. */
static void bench_checkpoint(int fd, struct ckpt *c)
{
	struct libsoccr_sk *h = pause_save(fd, c);

	if (!c->src && !c->dst) {
		addr_by_caller = 1;
		c->src = sock_addr(fd, 1);
		c->dst = sock_addr(fd, 0);
	}
	H_CHECK(c->src && c->dst, "libsoccr_get_addr: %p %p", (void *)c->src, (void *)c->dst);
	libsoccr_release(h);
	close(fd);
}

#ifdef HAVE_BULK
/* bulk_checkpoint checkpoints the clients of p[0..n-1] in one call, which
 * also closes them, as n bench_checkpoint calls do one by one; the results
 * go to c (queues lent by the library until bulk_restore gives them back). */
static struct gosoccr_tcp_conn *bulk_checkpoint(struct pair *p, struct ckpt *c, int n)
{
	struct gosoccr_tcp_conn *t = calloc(n, sizeof(*t));
	int failed;

	H_CHECK(t, "out of memory");
	for (int i = 0; i < n; i++)
		t[i].fd = p[i].cli;
	failed = gosoccr_checkpoint_close_all(t, n);
	H_CHECK(failed == 0, "gosoccr_checkpoint_close_all: %d failed (first result %d)", failed, t[0].result);
	for (int i = 0; i < n; i++) {
		H_CHECK(t[i].fd == -1, "connection %d: fd %d left open", i, t[i].fd);
		c[i].data = t[i].data;
		c[i].inq = t[i].recv_queue;
		c[i].outq = t[i].send_queue;
	}
	return t;
}

/* bulk_restore restores all n in one call into p[i].cli. */
static void bulk_restore(struct pair *p, struct gosoccr_tcp_conn *t, int n)
{
	int failed = gosoccr_restore_all(t, n);

	H_CHECK(failed == 0, "gosoccr_restore_all: %d failed (first result %d)", failed, t[0].result);
	for (int i = 0; i < n; i++)
		p[i].cli = t[i].fd;
	gosoccr_free_queues(t, n);
}
#endif

/* check_back: the q unread bytes are back in the restored socket fd. */
static void check_back(int fd, uint8_t *buf, int qlen, int i)
{
	ssize_t r = recv(fd, buf, qlen, MSG_DONTWAIT | MSG_WAITALL);

	H_CHECK(r == qlen, "connection %d: %zd bytes back, want %d", i, r, qlen);
	H_CHECK(h_check_pattern(buf, qlen, 0, 0) < 0, "connection %d: wrong bytes", i);
}

int main(int argc, char **argv)
{
	int n = 1000, qlen = 16 << 10, unsent = 0, bulk = 0, opt, port;
	const char *phase = "all";
	struct pair_opts o = { .kind = PAIR_V4 };
	struct pair *p;
	struct ckpt *c;
	double t0, t_ckpt, t_rest, t_warm;
	struct rusage ru;
	uint8_t *buf;

	while ((opt = getopt(argc, argv, "n:q:ubp:")) != -1) {
		switch (opt) {
		case 'b': bulk = 1; break;
		case 'n': n = atoi(optarg); break;
		case 'q': qlen = atoi(optarg); break;
		case 'u': unsent = 1; break;
		case 'p': phase = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-n N] [-q BYTES] [-u] [-b] [-p setup|checkpoint|restore|all]\n", argv[0]);
			return 2;
		}
	}
#ifndef HAVE_BULK
	if (bulk) {
		fprintf(stderr, "%s: -b needs gosoccr.h's bulk calls\n", argv[0]);
		return 2;
	}
#endif
	if (n < 1 || qlen < 1) {
		fprintf(stderr, "%s: -n and -q must be at least 1\n", argv[0]);
		return 2;
	}
	h_begin(1);
	libsoccr_set_log(SOCCR_LOG_ERR, log_line);
	raise_nofile();
	/* n connections and the warm-up's at index n. */
	p = calloc(n + 1, sizeof(*p));
	c = calloc(n + 1, sizeof(*c));
	buf = malloc(qlen);
	H_CHECK(p && c && buf, "out of memory");

	/* Setup: n connections, qlen bytes unread in each direction. */
	o.srv_rcvbuf = unsent ? 4096 : 0;
	port = pair_listen(&p[0], &o);
	for (int i = 0; i <= n; i++) {
		p[i].lfd = p[0].lfd;
		pair_connect(&p[i], &o, port);
		H_CHECK(write_pattern(p[i].srv, 0, 0, qlen, 5000) == (size_t)qlen, "server write %d", i);
		H_CHECK(write_pattern(p[i].cli, 1, 0, qlen, 5000) == (size_t)qlen, "client write %d", i);
	}
	for (int i = 0; i <= n; i++) {
		double end = h_now_us() + 5e6;

		while (ioctl_int(p[i].cli, SIOCINQ) != qlen)
			H_CHECK(h_now_us() < end, "connection %d: client inq %d", i, ioctl_int(p[i].cli, SIOCINQ));
	}
	usleep(100000);

	/* Warm-up: the extra connection through both sequences. */
	t0 = h_now_us();
	bench_checkpoint(p[n].cli, &c[n]);
	p[n].cli = restore(&c[n]);
	t_warm = h_now_us() - t0;
	check_back(p[n].cli, buf, qlen, n);
	close(p[n].cli);
	close(p[n].srv);

	printf("setup: %d connections, %d bytes unread each way%s\n", n, qlen,
	       unsent ? ", client send queue mostly unsent" : "");
	printf("warm-up: 1 more connection checkpointed and restored before timing, %.1f us\n", t_warm);
	if (addr_by_caller)
		printf("addresses: libsoccr_get_addr gave none; the checkpoint reads them with getsockname and getpeername\n");
	if (strcmp(phase, "setup") == 0)
		goto out;

#ifdef HAVE_BULK
	struct gosoccr_tcp_conn *bt = NULL;
#endif
	t0 = h_now_us();
#ifdef HAVE_BULK
	if (bulk)
		bt = bulk_checkpoint(p, c, n);
	else
#endif
		for (int i = 0; i < n; i++)
			bench_checkpoint(p[i].cli, &c[i]);
	t_ckpt = h_now_us() - t0;
	if (bulk)
		printf("bulk: gosoccr_checkpoint_close_all and gosoccr_restore_all over all %d at once\n", n);
	printf("checkpoint: %d connections, %.1f us per connection (unsent %u bytes in the first)\n", n,
	       t_ckpt / n, c[0].data.unsq_len);
	if (strcmp(phase, "checkpoint") == 0)
		goto out;

	/* The restore of tcp_pair.h, timed step by step. */
	double t_step[4] = { 0 };
	t0 = h_now_us();
#ifdef HAVE_BULK
	if (bulk) {
		bulk_restore(p, bt, n);
		free(bt);
	}
#endif
	for (int i = 0; i < n && !bulk; i++) {
		double t1 = h_now_us(), t2, t3, t4;
		int fd = H_SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
		struct libsoccr_sk *h = libsoccr_pause(fd);

		H_CHECK(h, "pause %d", i);
		t2 = h_now_us();
		libsoccr_set_queue_bytes(h, TCP_RECV_QUEUE, c[i].inq, SOCCR_MEM_EXCL);
		libsoccr_set_queue_bytes(h, TCP_SEND_QUEUE, c[i].outq, SOCCR_MEM_EXCL);
		libsoccr_set_addr(h, 1, c[i].src, SOCCR_MEM_EXCL);
		libsoccr_set_addr(h, 0, c[i].dst, SOCCR_MEM_EXCL);
		H_CHECK(libsoccr_restore(h, &c[i].data, sizeof(c[i].data)) == 0, "restore %d", i);
		t3 = h_now_us();
		libsoccr_resume(h);
		t4 = h_now_us();
		t_step[0] += t2 - t1;
		t_step[1] += t3 - t2;
		t_step[2] += t4 - t3;
		p[i].cli = fd;
	}
	t_rest = h_now_us() - t0;
	printf("restore: %d connections, %.1f us per connection (socket+pause %.1f, restore %.1f, resume %.1f)\n",
	       n, t_rest / n, t_step[0] / n, t_step[1] / n, t_step[2] / n);
	if (strcmp(phase, "restore") == 0)
		goto out;

	/* Check: the unread bytes are back in every restored socket. */
	for (int i = 0; i < n; i++)
		check_back(p[i].cli, buf, qlen, i);
	printf("verified: %d connections hold their %d unread bytes\n", n, qlen);
out:
	getrusage(RUSAGE_SELF, &ru);
	printf("peak RSS: %ld KiB\n", ru.ru_maxrss);
	return 0;
}

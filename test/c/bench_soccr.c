/*
 * bench_soccr: cost of checkpoint and restore through the libsoccr C API,
 * per connection, over n loopback connections with 16 KiB unread each way.
 *
 * Usage: bench_soccr [-n N] [-u] [-p setup|checkpoint|restore|all]
 *   -n N   connections (default 1000)
 *   -u     the client's send queue holds unsent bytes (the server's
 *          receive buffer is small, its window closes)
 *   -p     stop after a phase, to count system calls per phase with
 *          strace -c -f: the count of "restore" minus that of "checkpoint",
 *          divided by the n printed, is the restore's calls per connection.
 *
 * Checkpoint: pause, save, get_queue_bytes x2, get_addr x2, release, close.
 * Restore: socket, pause, set_queue_bytes x2, set_addr x2, restore, resume.
 * Runs in a network namespace of its own; needs root.
 */
#include "tcp_pair.h"
#include <getopt.h>
#include <sys/resource.h>

#define QLEN (16 << 10)

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

int main(int argc, char **argv)
{
	int n = 1000, unsent = 0, opt, port;
	const char *phase = "all";
	struct pair_opts o = { .kind = PAIR_V4 };
	struct pair *p;
	struct ckpt *c;
	double t0, t_ckpt, t_rest;
	struct rusage ru;

	while ((opt = getopt(argc, argv, "n:up:")) != -1) {
		switch (opt) {
		case 'n': n = atoi(optarg); break;
		case 'u': unsent = 1; break;
		case 'p': phase = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-n N] [-u] [-p setup|checkpoint|restore|all]\n", argv[0]);
			return 2;
		}
	}
	h_begin(1);
	libsoccr_set_log(SOCCR_LOG_ERR, log_line);
	raise_nofile();
	p = calloc(n, sizeof(*p));
	c = calloc(n, sizeof(*c));
	H_CHECK(p && c, "out of memory");

	/* Setup: n connections, 16 KiB unread in each direction. */
	o.srv_rcvbuf = unsent ? 4096 : 0;
	port = pair_listen(&p[0], &o);
	for (int i = 0; i < n; i++) {
		p[i].lfd = p[0].lfd;
		pair_connect(&p[i], &o, port);
		H_CHECK(write_pattern(p[i].srv, 0, 0, QLEN, 5000) == QLEN, "server write %d", i);
		H_CHECK(write_pattern(p[i].cli, 1, 0, QLEN, 5000) == QLEN, "client write %d", i);
	}
	for (int i = 0; i < n; i++) {
		double end = h_now_us() + 5e6;

		while (ioctl_int(p[i].cli, SIOCINQ) != QLEN)
			H_CHECK(h_now_us() < end, "connection %d: client inq %d", i, ioctl_int(p[i].cli, SIOCINQ));
	}
	usleep(100000);
	printf("setup: %d connections, %d bytes unread each way%s\n", n, QLEN,
	       unsent ? ", client send queue mostly unsent" : "");
	if (strcmp(phase, "setup") == 0)
		goto out;

	t0 = h_now_us();
	for (int i = 0; i < n; i++)
		checkpoint(p[i].cli, &c[i]); /* tcp_pair.h: the sequence of soccr.h */
	t_ckpt = h_now_us() - t0;
	printf("checkpoint: %d connections, %.1f us per connection (unsent %u bytes in the first)\n", n,
	       t_ckpt / n, c[0].data.unsq_len);
	if (strcmp(phase, "checkpoint") == 0)
		goto out;

	/* The restore of tcp_pair.h, timed step by step. */
	double t_step[4] = { 0 };
	t0 = h_now_us();
	for (int i = 0; i < n; i++) {
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
	for (int i = 0; i < n; i++) {
		static uint8_t buf[QLEN];
		ssize_t r = recv(p[i].cli, buf, sizeof(buf), MSG_DONTWAIT | MSG_WAITALL);

		H_CHECK(r == QLEN, "connection %d: %zd bytes back, want %d", i, r, QLEN);
		H_CHECK(h_check_pattern(buf, QLEN, 0, 0) < 0, "connection %d: wrong bytes", i);
	}
	printf("verified: %d connections hold their %d unread bytes\n", n, QLEN);
out:
	getrusage(RUSAGE_SELF, &ru);
	printf("peak RSS: %ld KiB\n", ru.ru_maxrss);
	return 0;
}

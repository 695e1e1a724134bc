/*
 * test_misuse: every libsoccr function given a NULL handle, NULL or short
 * data, a bad queue id or unknown flags, and libsoccr_pause given sockets
 * it cannot pause. Each must return its error value, log a line through
 * the variadic callback, and not crash.
 */
#include "harness.h"
#include <netinet/in.h>
#include <sys/un.h>

static int lines;
static char last[512];

static void record(unsigned level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last, sizeof(last), fmt, ap);
	va_end(ap);
	H_CHECK(level == SOCCR_LOG_ERR, "log level %u for \"%s\"", level, last);
	lines++;
}

/* LOGGED runs expr, which must log at least one line. */
#define LOGGED(what, expr) do {                                            \
		int before_ = lines;                                       \
		expr;                                                      \
		H_CHECK(lines > before_, "%s: nothing logged", what);      \
		printf("  %-44s -> %s\n", what, last);                     \
	} while (0)

static void null_handle(void)
{
	struct libsoccr_sk_data d;
	union libsoccr_addr a = { .sa.sa_family = AF_INET };
	char q[4];

	LOGGED("save(NULL)", H_CHECK(libsoccr_save(NULL, &d, sizeof(d)) == -1, "save"));
	LOGGED("get_sk_data(NULL)", H_CHECK(libsoccr_get_sk_data(NULL, &d, sizeof(d)) == -1, "get_sk_data"));
	LOGGED("get_queue_bytes(NULL)", H_CHECK(!libsoccr_get_queue_bytes(NULL, TCP_RECV_QUEUE, 0), "gq"));
	LOGGED("get_addr(NULL)", H_CHECK(!libsoccr_get_addr(NULL, 1, 0), "get_addr"));
	LOGGED("set_queue_bytes(NULL)", H_CHECK(libsoccr_set_queue_bytes(NULL, TCP_RECV_QUEUE, q, 0) == -1, "sq"));
	LOGGED("set_addr(NULL)", H_CHECK(libsoccr_set_addr(NULL, 1, &a, 0) == -1, "set_addr"));
	LOGGED("restore(NULL)", H_CHECK(libsoccr_restore(NULL, &d, sizeof(d)) == -1, "restore"));
	LOGGED("set_sk_data_unbound(NULL)", H_CHECK(libsoccr_set_sk_data_unbound(NULL, &d, sizeof(d)) == -1, "u"));
	LOGGED("set_sk_data_noq(NULL)", H_CHECK(libsoccr_set_sk_data_noq(NULL, &d, sizeof(d)) == -1, "noq"));
	LOGGED("set_sk_data(NULL)", H_CHECK(libsoccr_set_sk_data(NULL, &d, sizeof(d)) == -1, "set_sk_data"));
	LOGGED("resume(NULL)", libsoccr_resume(NULL));
	LOGGED("release(NULL)", libsoccr_release(NULL));
}

/* pause_fails: libsoccr_pause must refuse fd. */
static void pause_fails(const char *what, int fd)
{
	struct libsoccr_sk *h;

	LOGGED(what, h = libsoccr_pause(fd));
	if (h) {
		libsoccr_release(h);
		h_fail("libsoccr_pause accepted %s", what);
	}
}

static void bad_sockets(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd;

	fd = H_SYS(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
	pause_fails("pause(UDP socket)", fd);
	close(fd);
	fd = H_SYS(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	pause_fails("pause(unix socket)", fd);
	close(fd);
	fd = H_SYS(open("/dev/null", O_RDONLY | O_CLOEXEC));
	pause_fails("pause(/dev/null)", fd);
	close(fd);
	pause_fails("pause(closed fd)", fd);
	pause_fails("pause(-1)", -1);
	fd = H_SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	H_SYS(bind(fd, (struct sockaddr *)&a, sizeof(a)));
	H_SYS(listen(fd, 1));
	pause_fails("pause(listening socket)", fd);
	close(fd);
}

/* bad_arguments: a real paused socket (new, unconnected) given bad input. */
static void bad_arguments(void)
{
	struct libsoccr_sk_data d;
	union libsoccr_addr *a, bad = { .sa.sa_family = AF_UNIX };
	char big[80];
	int fd = H_SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	struct libsoccr_sk *h = libsoccr_pause(fd);
	char *q;
	int ret;

	H_CHECK(h, "libsoccr_pause of a new TCP socket failed");
	LOGGED("save(data NULL)", H_CHECK(libsoccr_save(h, NULL, sizeof(d)) == -1, "save NULL"));
	LOGGED("save(size 0)", H_CHECK(libsoccr_save(h, &d, 0) == -1, "save 0"));
	LOGGED("save(size 67)", H_CHECK(libsoccr_save(h, &d, 67) == -1, "save 67"));
	memset(big, 0x5a, sizeof(big));
	/* A socket that was never connected is refused at the state stage
	 * (-2); the data_size bytes given were zeroed first all the same. */
	ret = libsoccr_save(h, (void *)big, sizeof(big));
	H_CHECK(ret == -2, "save of a never-connected socket: %d, want -2", ret);
	for (size_t i = sizeof(d); i < sizeof(big); i++)
		H_CHECK(big[i] == 0, "save did not zero byte %zu of data", i);
	LOGGED("get_queue_bytes(queue 7)", H_CHECK(!libsoccr_get_queue_bytes(h, 7, 0), "queue 7"));
	LOGGED("get_queue_bytes(TCP_NO_QUEUE)", H_CHECK(!libsoccr_get_queue_bytes(h, TCP_NO_QUEUE, 0), "q 0"));
	LOGGED("get_queue_bytes(flags 0x6)", H_CHECK(!libsoccr_get_queue_bytes(h, TCP_RECV_QUEUE, 6), "flags"));
	LOGGED("get_addr(flags 0x2)", H_CHECK(!libsoccr_get_addr(h, 1, 2), "addr flags"));
	LOGGED("get_addr(peer of unconnected)", H_CHECK(!libsoccr_get_addr(h, 0, 0), "peer"));
	LOGGED("set_queue_bytes(queue 7)", H_CHECK(libsoccr_set_queue_bytes(h, 7, big, 0) == -1, "sq 7"));
	LOGGED("set_queue_bytes(flags 0x2)", H_CHECK(libsoccr_set_queue_bytes(h, TCP_SEND_QUEUE, big, 2) == -1, "f"));
	LOGGED("set_addr(NULL)", H_CHECK(libsoccr_set_addr(h, 1, NULL, 0) == -1, "set_addr NULL"));
	LOGGED("set_addr(AF_UNIX)", H_CHECK(libsoccr_set_addr(h, 0, &bad, 0) == -1, "set_addr AF_UNIX"));
	LOGGED("restore(data NULL)", H_CHECK(libsoccr_restore(h, NULL, sizeof(d)) == -1, "restore NULL"));
	LOGGED("restore(size 67)", H_CHECK(libsoccr_restore(h, &d, 67) == -1, "restore 67"));
	memset(&d, 0, sizeof(d));
	d.state = 1;
	LOGGED("restore(no addresses)", H_CHECK(libsoccr_restore(h, &d, sizeof(d)) == -1, "no addrs"));
	/* The own address of an unconnected socket exists (0.0.0.0:0), the
	 * peer's is missing: still refused. The queue given with MEM_EXCL is
	 * the library's to free at release. */
	a = libsoccr_get_addr(h, 1, 0);
	H_CHECK(a, "own address of a new socket");
	q = malloc(16);
	H_CHECK(libsoccr_set_queue_bytes(h, TCP_RECV_QUEUE, q, SOCCR_MEM_EXCL) == 0, "set queue");
	d.inq_len = 16;
	LOGGED("restore(peer address missing)", H_CHECK(libsoccr_restore(h, &d, sizeof(d)) == -1, "no peer"));
	d.state = 10; /* LISTEN */
	H_CHECK(libsoccr_set_addr(h, 0, a, 0) == 0, "set_addr");
	d.inq_len = 0;
	LOGGED("restore(LISTEN state)", H_CHECK(libsoccr_restore(h, &d, sizeof(d)) < 0, "listen"));
	d.state = 300;
	LOGGED("restore(state 300)", H_CHECK(libsoccr_restore(h, &d, sizeof(d)) == -1, "state 300"));
	libsoccr_release(h);
	close(fd);
}

int main(void)
{
	alarm(60);
	h_begin(1);
	libsoccr_set_log(SOCCR_LOG_DBG, record);
	null_handle();
	bad_sockets();
	bad_arguments();
	/* Logging off: errors are still returned, nothing is called. */
	libsoccr_set_log(0, NULL);
	H_CHECK(libsoccr_save(NULL, NULL, 0) == -1, "save without a logger");
	h_end();
	printf("ok: misuse (%d lines logged)\n", lines);
	return 0;
}

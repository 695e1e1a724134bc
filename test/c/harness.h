/*
 * harness.h: helpers shared by the C tests of libgosoccr (static, header
 * only). Each test program calls h_begin() first and h_end() last.
 *
 * Exit codes: 0 pass, 1 fail, 77 skip (the reason on stdout, prefixed
 * "SKIP: "). Without root the privileged tests skip, unless
 * GOSOCCR_REQUIRE_ROOT=1, which turns the skip into a failure.
 */
#ifndef GOSOCCR_TEST_HARNESS_H
#define GOSOCCR_TEST_HARNESS_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "soccr.h"

#define H_SKIP 77

static int h_fds_at_start = -1;

__attribute__((format(printf, 1, 2), noreturn))
static inline void h_fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

#define H_CHECK(cond, ...) do { if (!(cond)) h_fail(__VA_ARGS__); } while (0)
/* H_SYS fails the test when a system call returns a negative value. */
#define H_SYS(expr) h_sys((long)(expr), #expr, __FILE__, __LINE__)

static inline long h_sys(long ret, const char *what, const char *file, int line)
{
	if (ret < 0)
		h_fail("%s:%d: %s: %s", file, line, what, strerror(errno));
	return ret;
}

__attribute__((noreturn))
static inline void h_skip(const char *reason)
{
	const char *req = getenv("GOSOCCR_REQUIRE_ROOT");

	if (req && strcmp(req, "1") == 0)
		h_fail("GOSOCCR_REQUIRE_ROOT=1 but the test would skip: %s", reason);
	printf("SKIP: %s\n", reason);
	fflush(stdout);
	exit(H_SKIP);
}

/* h_count_fds counts the entries of /proc/self/fd. */
static inline int h_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		h_fail("opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* h_netns moves the process into a new network namespace with lo up. */
static inline void h_netns(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (geteuid() != 0)
		h_skip("needs root (CAP_NET_ADMIN for TCP_REPAIR and a network namespace)");
	if (unshare(CLONE_NEWNET))
		h_skip("unshare(CLONE_NEWNET) refused");
	fd = H_SYS(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
	strcpy(ifr.ifr_name, "lo");
	H_SYS(ioctl(fd, SIOCGIFFLAGS, &ifr));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	H_SYS(ioctl(fd, SIOCSIFFLAGS, &ifr));
	close(fd);
}

/* h_begin: privileged tests get their own network namespace. The fd
 * count is taken after it, and after the Go runtime of the library has
 * started (it does so in the background from the library's constructor,
 * and keeps a few files open, such as its cgroup CPU limits): the first
 * call into Go waits for it, and pausing fd -1 fails harmlessly. */
static inline void h_begin(int privileged)
{
	if (privileged)
		h_netns();
	H_CHECK(libsoccr_pause(-1) == NULL, "libsoccr_pause(-1) succeeded");
	h_fds_at_start = h_count_fds();
}

static inline void h_end(void)
{
	int n = h_count_fds();

	if (n > h_fds_at_start) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *e;
		char path[300], link[256];

		while (d && (e = readdir(d))) {
			ssize_t k;

			snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
			k = readlink(path, link, sizeof(link) - 1);
			if (k > 0) {
				link[k] = 0;
				printf("  fd %s -> %s\n", e->d_name, link);
			}
		}
		if (d)
			closedir(d);
		h_fail("fd leak: %d open at start, %d at end", h_fds_at_start, n);
	}
}

static inline double h_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* h_pattern is the byte at offset off of the stream in direction dir:
 * a byte lost, doubled or moved shows up at once. */
static inline uint8_t h_pattern(int dir, uint64_t off)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull + (uint64_t)dir * 0xD1B54A32D192ED03ull;

	x ^= x >> 29;
	return (uint8_t)(x ^ (x >> 17));
}

static inline void h_fill(uint8_t *b, size_t n, int dir, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		b[i] = h_pattern(dir, off + i);
}

/* h_check_pattern returns the first offset that differs, or -1. */
static inline long long h_check_pattern(const uint8_t *b, size_t n, int dir, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != h_pattern(dir, off + i))
			return (long long)(off + i);
	return -1;
}

static inline void h_nonblock(int fd, int on)
{
	int fl = H_SYS(fcntl(fd, F_GETFL));

	H_SYS(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK));
}

#endif

/*
 * The libsoccr C API of include/soccr.h. These functions own the handle
 * and every buffer, check their arguments, and forward the work on the
 * connection to the Go exports of soccr_abi.go (CamelCase gosoccr*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "soccr_abi.h"
#include "_cgo_export.h"

static void (*log_fn)(unsigned int level, const char *fmt, ...);
static unsigned int log_level;

void libsoccr_set_log(unsigned int level, void (*fn)(unsigned int level, const char *fmt, ...))
{
	log_level = level;
	log_fn = fn;
}

int gosoccr_log_enabled(unsigned level)
{
	return log_fn != NULL && level <= log_level;
}

void gosoccr_log_str(unsigned level, const char *msg)
{
	if (gosoccr_log_enabled(level))
		log_fn(level, "%s", msg);
}

__attribute__((format(printf, 2, 3)))
static void logf_(unsigned level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (!gosoccr_log_enabled(level))
		return;
	n = snprintf(buf, sizeof(buf), "gosoccr: ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	log_fn(level, "%s", buf);
}

#define loge(...) logf_(SOCCR_LOG_ERR, __VA_ARGS__)

static int check_sk(const struct libsoccr_sk *sk, const char *fn)
{
	if (sk)
		return 0;
	loge("%s: NULL handle", fn);
	return -1;
}

static int check_data(const struct libsoccr_sk *sk, const struct libsoccr_sk_data *data,
		      unsigned size, const char *fn)
{
	if (check_sk(sk, fn))
		return -1;
	if (!data) {
		loge("%s fd %d: data is NULL", fn, sk->fd);
		return -1;
	}
	if (size < sizeof(*data)) {
		loge("%s fd %d: data_size %u, need at least %zu", fn, sk->fd, size, sizeof(*data));
		return -1;
	}
	return 0;
}

/*
 * libsoccr_pause sets TCP_REPAIR here, in C: the Go side makes the
 * connection's handle (sk->conn) only when it needs one, at save or
 * restore, so that a checkpoint enters Go once. A refused TCP_REPAIR is
 * left to the Go side, which tells why and logs it.
 */
struct libsoccr_sk *libsoccr_pause(int fd)
{
	struct libsoccr_sk *sk = calloc(1, sizeof(*sk));
	int on = 1;

	if (!sk) {
		loge("libsoccr_pause fd %d: out of memory", fd);
		return NULL;
	}
	sk->fd = fd;
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR, &on, sizeof(on)) && gosoccrPause(sk)) {
		free(sk);
		return NULL;
	}
	return sk;
}

static void free_owned(struct libsoccr_sk *sk)
{
	if (sk->own & GOSOCCR_OWN_RQ)
		free(sk->recv_queue);
	if (sk->own & GOSOCCR_OWN_SQ)
		free(sk->send_queue);
	if (sk->own & GOSOCCR_OWN_SRC)
		free(sk->src_addr);
	if (sk->own & GOSOCCR_OWN_DST)
		free(sk->dst_addr);
	sk->own = 0;
}

/*
 * done ends handle sk. Without a Go handle (nothing restored into the
 * socket, or a restore that left nothing to push on resume), resuming is
 * leaving repair mode, and releasing is nothing.
 */
static void done(struct libsoccr_sk *sk, int resume, const char *fn)
{
	int off = 0;

	if (check_sk(sk, fn))
		return;
	if (sk->conn)
		gosoccrDone(sk, resume);
	else if (resume && setsockopt(sk->fd, SOL_TCP, TCP_REPAIR, &off, sizeof(off)))
		loge("%s fd %d: setsockopt TCP_REPAIR off: %s", fn, sk->fd, strerror(errno));
	free_owned(sk);
	free(sk);
}

void libsoccr_resume(struct libsoccr_sk *sk)
{
	done(sk, 1, "libsoccr_resume");
}

void libsoccr_release(struct libsoccr_sk *sk)
{
	done(sk, 0, "libsoccr_release");
}

int libsoccr_save(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size)
{
	if (check_data(sk, data, data_size, "libsoccr_save"))
		return -1;
	memset(data, 0, data_size);
	/* Queues of an earlier save that nobody took. */
	if (sk->own & GOSOCCR_OWN_RQ)
		free(sk->recv_queue);
	if (sk->own & GOSOCCR_OWN_SQ)
		free(sk->send_queue);
	sk->recv_queue = sk->send_queue = NULL;
	sk->own &= ~(GOSOCCR_OWN_RQ | GOSOCCR_OWN_SQ);
	return gosoccrSave(sk, data);
}

int libsoccr_get_sk_data(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size)
{
	return libsoccr_save(sk, data, data_size);
}

/* queue_slot returns the slot and ownership bit of a queue, or NULL. */
static char **queue_slot(struct libsoccr_sk *sk, int queue_id, unsigned *bit)
{
	switch (queue_id) {
	case TCP_RECV_QUEUE:
		*bit = GOSOCCR_OWN_RQ;
		return &sk->recv_queue;
	case TCP_SEND_QUEUE:
		*bit = GOSOCCR_OWN_SQ;
		return &sk->send_queue;
	}
	return NULL;
}

static union libsoccr_addr **addr_slot(struct libsoccr_sk *sk, int self, unsigned *bit)
{
	*bit = self ? GOSOCCR_OWN_SRC : GOSOCCR_OWN_DST;
	return self ? &sk->src_addr : &sk->dst_addr;
}

/* take hands out *slot; with SOCCR_MEM_EXCL the library forgets it. */
static void *take(struct libsoccr_sk *sk, void **slot, unsigned bit, unsigned flags)
{
	void *p = *slot;

	if (flags & SOCCR_MEM_EXCL) {
		*slot = NULL;
		sk->own &= ~bit;
	}
	return p;
}

/* put stores p in *slot, freeing a buffer of the library's it replaces. */
static void put(struct libsoccr_sk *sk, void **slot, unsigned bit, void *p, unsigned flags)
{
	if ((sk->own & bit) && *slot != p)
		free(*slot);
	*slot = p;
	if (flags & SOCCR_MEM_EXCL)
		sk->own |= bit;
	else
		sk->own &= ~bit;
}

char *libsoccr_get_queue_bytes(struct libsoccr_sk *sk, int queue_id, unsigned flags)
{
	unsigned bit;
	char **slot;

	if (check_sk(sk, "libsoccr_get_queue_bytes"))
		return NULL;
	slot = queue_slot(sk, queue_id, &bit);
	if (!slot || (flags & ~SOCCR_MEM_EXCL)) {
		loge("libsoccr_get_queue_bytes fd %d: bad queue %d or flags %#x", sk->fd, queue_id, flags);
		return NULL;
	}
	return take(sk, (void **)slot, bit, flags);
}

int libsoccr_set_queue_bytes(struct libsoccr_sk *sk, int queue_id, char *bytes, unsigned flags)
{
	unsigned bit;
	char **slot;

	if (check_sk(sk, "libsoccr_set_queue_bytes"))
		return -1;
	slot = queue_slot(sk, queue_id, &bit);
	if (!slot || (flags & ~SOCCR_MEM_EXCL)) {
		loge("libsoccr_set_queue_bytes fd %d: bad queue %d or flags %#x", sk->fd, queue_id, flags);
		return -1;
	}
	put(sk, (void **)slot, bit, bytes, flags);
	return 0;
}

/* read_addr reads the socket's own or peer's address into a new buffer.
 * Where getpeername(2) says ENOTCONN although the peer is known (SYN_SENT,
 * CLOSE), getsockopt SO_PEERNAME answers; it wants a length no larger than
 * the address's, so it is asked for an IPv6 address, then an IPv4 one. */
static union libsoccr_addr *read_addr(int fd, int self)
{
	union libsoccr_addr *a = calloc(1, sizeof(*a));
	socklen_t len = sizeof(*a);
	const char *call = self ? "getsockname" : "getpeername";
	int ret;

	if (!a) {
		loge("libsoccr_get_addr fd %d: out of memory", fd);
		return NULL;
	}
	ret = self ? getsockname(fd, &a->sa, &len) : getpeername(fd, &a->sa, &len);
	if (ret && !self && errno == ENOTCONN) {
		call = "getsockopt SO_PEERNAME";
		len = sizeof(a->v6);
		ret = getsockopt(fd, SOL_SOCKET, SO_PEERNAME, a, &len);
		if (ret && errno == EINVAL) {
			len = sizeof(a->v4);
			ret = getsockopt(fd, SOL_SOCKET, SO_PEERNAME, a, &len);
		}
	}
	if (ret) {
		loge("libsoccr_get_addr fd %d: %s: %s", fd, call, strerror(errno));
		free(a);
		return NULL;
	}
	if (a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6) {
		loge("libsoccr_get_addr fd %d: address family %d", fd, a->sa.sa_family);
		free(a);
		return NULL;
	}
	return a;
}

union libsoccr_addr *libsoccr_get_addr(struct libsoccr_sk *sk, int self, unsigned flags)
{
	union libsoccr_addr **slot;
	unsigned bit;

	if (check_sk(sk, "libsoccr_get_addr"))
		return NULL;
	if (flags & ~SOCCR_MEM_EXCL) {
		loge("libsoccr_get_addr fd %d: bad flags %#x", sk->fd, flags);
		return NULL;
	}
	slot = addr_slot(sk, self, &bit);
	if (!*slot) {
		*slot = read_addr(sk->fd, self);
		if (!*slot)
			return NULL;
		sk->own |= bit;
	}
	return take(sk, (void **)slot, bit, flags);
}

int libsoccr_set_addr(struct libsoccr_sk *sk, int self, union libsoccr_addr *addr, unsigned flags)
{
	union libsoccr_addr **slot;
	unsigned bit;

	if (check_sk(sk, "libsoccr_set_addr"))
		return -1;
	if (!addr || (flags & ~SOCCR_MEM_EXCL) ||
	    (addr->sa.sa_family != AF_INET && addr->sa.sa_family != AF_INET6)) {
		loge("libsoccr_set_addr fd %d: bad address %p (family %d) or flags %#x", sk->fd, (void *)addr,
		     addr ? addr->sa.sa_family : -1, flags);
		return -1;
	}
	slot = addr_slot(sk, self, &bit);
	put(sk, (void **)slot, bit, addr, flags);
	return 0;
}

int libsoccr_restore(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size)
{
	if (check_data(sk, data, data_size, "libsoccr_restore"))
		return -1;
	return gosoccrRestore(sk, data);
}

/*
 * The older, staged restore (see soccr.h). The first two stages only check
 * data; libsoccr_set_sk_data does the whole restore.
 */
int libsoccr_set_sk_data_unbound(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size)
{
	if (check_data(sk, data, data_size, "libsoccr_set_sk_data_unbound"))
		return -1;
	sk->staged = 1;
	return 0;
}

int libsoccr_set_sk_data_noq(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size)
{
	if (check_data(sk, data, data_size, "libsoccr_set_sk_data_noq"))
		return -1;
	sk->staged = 1;
	return 0;
}

/* bound reports whether the caller bound or connected sk's socket. */
static int bound(const struct libsoccr_sk *sk)
{
	union libsoccr_addr a;
	socklen_t len = sizeof(a);

	if (getpeername(sk->fd, &a.sa, &len) == 0)
		return 1;
	len = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getsockname(sk->fd, &a.sa, &len))
		return 0;
	return (a.sa.sa_family == AF_INET && a.v4.sin_port) || (a.sa.sa_family == AF_INET6 && a.v6.sin6_port);
}

/*
 * replace_socket puts a new, paused socket of the same family at sk->fd,
 * closing the caller's bound/connected one (in repair mode: silently).
 * The addresses are read from the old socket first, where not set.
 */
static int replace_socket(struct libsoccr_sk *sk)
{
	int fd = sk->fd, domain, fdfl, fl, nfd;
	socklen_t len = sizeof(domain);

	if ((!sk->src_addr && !libsoccr_get_addr(sk, 1, 0)) || (!sk->dst_addr && !libsoccr_get_addr(sk, 0, 0)))
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) ||
	    (fdfl = fcntl(fd, F_GETFD)) < 0 || (fl = fcntl(fd, F_GETFL)) < 0) {
		loge("libsoccr_set_sk_data fd %d: reading the socket's flags: %s", fd, strerror(errno));
		return -1;
	}
	nfd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC | (fl & O_NONBLOCK ? SOCK_NONBLOCK : 0), IPPROTO_TCP);
	if (nfd < 0) {
		loge("libsoccr_set_sk_data fd %d: socket: %s", fd, strerror(errno));
		return -1;
	}
	if (dup3(nfd, fd, fdfl & FD_CLOEXEC ? O_CLOEXEC : 0) < 0) {
		loge("libsoccr_set_sk_data fd %d: dup3: %s", fd, strerror(errno));
		close(nfd);
		return -1;
	}
	close(nfd);
	return gosoccrRepause(sk);
}

int libsoccr_set_sk_data(struct libsoccr_sk *sk, struct libsoccr_sk_data *data, unsigned data_size)
{
	if (check_data(sk, data, data_size, "libsoccr_set_sk_data"))
		return -1;
	if (bound(sk) && replace_socket(sk))
		return -2;
	sk->staged = 0;
	return gosoccrRestore(sk, data);
}

/*
 * plugin_harness: tests of the CRIU plugin build/criu/gosoccr.so without
 * CRIU. It loads the plugin exactly as CRIU 4.x does (plugin_criu.h:
 * dlopen, CR_PLUGIN_DESC, version and max_hooks checks, init, hooks, exit,
 * dlclose) and plays CRIU's part: its own criu_get_image_dir() and
 * print_on_level(), which collects the plugin's log lines.
 *
 * Cases come in two families:
 *   dump/...     the dump hook runs the Go library (loaded by the plugin),
 *                then the restore hook re-creates the socket in C;
 *   restore/...  the same scenarios with the images written by this file
 *                from the live socket (per hooks/doc.go), so that the C
 *                restore path is tested on its own, Go never loaded.
 * A scenario: a server outside "the task", a client socket connected to
 * it; dump the client, close it (the task is gone), restore it, and the
 * server must see the new connection and bytes flow both ways.
 *
 * Each case runs in a network namespace of its own (abstract names are
 * per namespace) with a private folder for socket files and one for the
 * images, and fails on a leaked descriptor.
 *
 * Usage: plugin_harness PLUGIN CASE     (plugin_harness PLUGIN list)
 */
#include "harness.h"

#include <dlfcn.h>
#include <ftw.h>
#include <grp.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "gosoccr.h"
#include "plugin_criu.h"

#define NOBODY 65534

static const char *plugin_path;
static struct criu_plugin plug;
static int go_mode; /* 1: dump/ cases, the images come from Go */
static char sock_dir[64], img_dir[64], policy_file[128];

/* ---- small helpers ---- */

/* sun_of fills sa with a name in the policy's notation ("@x" abstract). */
static socklen_t sun_of(const char *name, struct sockaddr_un *sa)
{
	size_t n = strlen(name);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	H_CHECK(n > 0 && n < sizeof(sa->sun_path), "name %s too long", name);
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@')
		sa->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* name_of shows a sockaddr_un in the policy's notation. */
static const char *name_of(const struct sockaddr_un *sa, socklen_t len, char *out, size_t size)
{
	size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;

	if (n == 0) {
		out[0] = '\0';
		return out;
	}
	if (sa->sun_path[0] == '\0') {
		snprintf(out, size, "@%.*s", (int)(n - 1), sa->sun_path + 1);
		return out;
	}
	snprintf(out, size, "%.*s", (int)strnlen(sa->sun_path, n), sa->sun_path);
	return out;
}

static const char *sock_name(int fd, int peer, char *out, size_t size)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	if (peer)
		H_SYS(getpeername(fd, (struct sockaddr *)&sa, &len));
	else
		H_SYS(getsockname(fd, (struct sockaddr *)&sa, &len));
	return name_of(&sa, len, out, size);
}

static void path_in(char *out, size_t size, const char *leaf)
{
	snprintf(out, size, "%s/%s", sock_dir, leaf);
}

static void abstract_name(char *out, size_t size, const char *leaf)
{
	snprintf(out, size, "@gosoccr-test-%d-%s", (int)getpid(), leaf);
}

static int server(int type, const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = sun_of(name, &sa);
	int fd = (int)H_SYS(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
	struct timeval tv = { 5, 0 };

	H_SYS(bind(fd, (struct sockaddr *)&sa, len));
	if (name[0] == '/')
		H_SYS(chmod(name, 0777));
	if (type != SOCK_DGRAM)
		H_SYS(listen(fd, 64));
	H_SYS(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	return fd;
}

/* client makes the socket of "the task": bound to own if not NULL, then
 * connected to peer. No CLOEXEC: as a task's socket would be. */
static int client(int type, const char *own, const char *peer)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd = (int)H_SYS(socket(AF_UNIX, type, 0));

	if (own) {
		len = sun_of(own, &sa);
		H_SYS(bind(fd, (struct sockaddr *)&sa, len));
	}
	len = sun_of(peer, &sa);
	H_SYS(connect(fd, (struct sockaddr *)&sa, len));
	return fd;
}

static int accept_one(int lfd)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	int fd;
	struct timeval tv = { 5, 0 };

	H_CHECK(poll(&p, 1, 5000) == 1, "no connection to accept within 5 s");
	fd = (int)H_SYS(accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
	H_SYS(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	return fd;
}

static int pending(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, 0) == 1;
}

static void send_all(int fd, const void *b, size_t n)
{
	H_CHECK(send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n, "send %zu bytes: %s", n, strerror(errno));
}

static void recv_exact(int fd, void *b, size_t n, const char *what)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t k;

		H_CHECK(poll(&p, 1, 5000) == 1, "%s: nothing to read within 5 s (%zu of %zu bytes)", what, got, n);
		k = recv(fd, (char *)b + got, n - got, 0);
		H_CHECK(k > 0, "%s: recv: %s", what, k == 0 ? "EOF" : strerror(errno));
		got += (size_t)k;
	}
}

/* converse checks that bytes flow both ways between a restored client
 * and the server's end of its new connection. */
static void converse(int cli, int srv, const char *what)
{
	char up[64], down[64], buf[64];

	snprintf(up, sizeof(up), "%s: client to server after restore", what);
	snprintf(down, sizeof(down), "%s: server to client after restore", what);
	send_all(cli, up, strlen(up));
	recv_exact(srv, buf, strlen(up), "server");
	H_CHECK(memcmp(buf, up, strlen(up)) == 0, "%s: the server read other bytes", what);
	send_all(srv, down, strlen(down));
	recv_exact(cli, buf, strlen(down), "client");
	H_CHECK(memcmp(buf, down, strlen(down)) == 0, "%s: the client read other bytes", what);
}

static ino_t ino_of(int fd)
{
	struct stat st;

	H_SYS(fstat(fd, &st));
	return st.st_ino;
}

static int image_exists(const char *fmt, unsigned int id)
{
	char name[64];

	snprintf(name, sizeof(name), fmt, id);
	return faccessat(criu_images_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* write_policy rewrites the policy file. Its path is in GOSOCCR_POLICY
 * from the start of the process (main), because the Go library sees only
 * the environment the process was started with, not setenv(). */
static void write_policy(const char *text)
{
	FILE *f = fopen(policy_file, "w");

	H_CHECK(f, "fopen %s: %s", policy_file, strerror(errno));
	fputs(text, f);
	fclose(f);
	setenv(GOSOCCR_POLICY_ENV, policy_file, 1);
}

static void send_fd(int via, int fd)
{
	char c = 'f';
	struct iovec iov = { &c, 1 };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	H_CHECK(sendmsg(via, &m, 0) == 1, "sendmsg SCM_RIGHTS: %s", strerror(errno));
}

static int recv_fd(int via)
{
	char c;
	struct iovec iov = { &c, 1 };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	struct cmsghdr *h;
	int fd;

	H_CHECK(recvmsg(via, &m, 0) == 1, "recvmsg SCM_RIGHTS: %s", strerror(errno));
	h = CMSG_FIRSTHDR(&m);
	H_CHECK(h && h->cmsg_type == SCM_RIGHTS, "no descriptor received");
	memcpy(&fd, CMSG_DATA(h), sizeof(int));
	return fd;
}

/* client_as makes the task's socket in a child running as uid:gid and
 * hands it back (the socket's owner is its creator). It forks, so it
 * must run before the Go library is loaded. */
static int client_as(uid_t uid, gid_t gid, int type, const char *peer)
{
	int sp[2], fd, st;
	pid_t pid;

	H_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	pid = (pid_t)H_SYS(fork());
	if (pid == 0) {
		close(sp[0]);
		if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
			_exit(3);
		send_fd(sp[1], client(type, NULL, peer));
		_exit(0);
	}
	close(sp[1]);
	fd = recv_fd(sp[0]);
	close(sp[0]);
	H_SYS(waitpid(pid, &st, 0));
	H_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child running as %u failed (%d)", uid, st);
	return fd;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int go_loaded(void)
{
	void *h = dlopen("libgosoccr.so", RTLD_NOW | RTLD_NOLOAD);
	FILE *f;
	char line[512];
	int found = 0;

	if (h) {
		dlclose(h);
		return 1;
	}
	f = fopen("/proc/self/maps", "r");
	H_CHECK(f, "open /proc/self/maps");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "libgosoccr"))
			found = 1;
	fclose(f);
	return found;
}

/* ---- images written from C (restore/ cases), per hooks/doc.go ---- */

struct pbw {
	uint8_t b[4096];
	size_t n;
};

static void pbw_raw(struct pbw *w, const void *p, size_t n)
{
	H_CHECK(w->n + n <= sizeof(w->b), "image buffer full");
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void pbw_varint(struct pbw *w, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;

		v >>= 7;
		if (v)
			c |= 0x80;
		pbw_raw(w, &c, 1);
	} while (v);
}

static void pbw_u(struct pbw *w, unsigned int field, uint64_t v)
{
	pbw_varint(w, (uint64_t)field << 3);
	pbw_varint(w, v);
}

static void pbw_bytes(struct pbw *w, unsigned int field, const void *p, size_t n)
{
	pbw_varint(w, (uint64_t)field << 3 | 2);
	pbw_varint(w, n);
	pbw_raw(w, p, n);
}

static void pbw_le32(struct pbw *w, uint32_t v)
{
	uint8_t b[4] = { v, v >> 8, v >> 16, v >> 24 };

	pbw_raw(w, b, 4);
}

struct entry {
	uint32_t id, type, state, flags, uflags, peer, shutdown;
	uint8_t name[108];
	size_t name_len;
	int perms;
	uint32_t mode, uid, gid;
	uint32_t sndbuf, rcvbuf;
	uint64_t snd_sec, snd_usec, rcv_sec, rcv_usec;
	int passcred;
};

/* encode_entry appends a UnixSkEntry, fields in CRIU's numbering. */
static void encode_entry(struct pbw *w, const struct entry *e)
{
	struct pbw fown = { .n = 0 }, opts = { .n = 0 }, perms = { .n = 0 };

	for (unsigned int f = 1; f <= 5; f++)
		pbw_u(&fown, f, 0);
	pbw_u(&opts, 1, e->sndbuf);
	pbw_u(&opts, 2, e->rcvbuf);
	pbw_u(&opts, 3, e->snd_sec);
	pbw_u(&opts, 4, e->snd_usec);
	pbw_u(&opts, 5, e->rcv_sec);
	pbw_u(&opts, 6, e->rcv_usec);
	pbw_u(&opts, 11, e->passcred);
	pbw_u(&perms, 1, e->mode);
	pbw_u(&perms, 2, e->uid);
	pbw_u(&perms, 3, e->gid);

	pbw_u(w, 1, e->id);
	pbw_u(w, 2, e->id);
	pbw_u(w, 3, e->type);
	pbw_u(w, 4, e->state);
	pbw_u(w, 5, e->flags);
	pbw_u(w, 6, e->uflags);
	pbw_u(w, 7, 0);
	pbw_u(w, 8, e->peer);
	pbw_bytes(w, 9, fown.b, fown.n);
	pbw_bytes(w, 10, opts.b, opts.n);
	pbw_bytes(w, 11, e->name, e->name_len);
	pbw_u(w, 12, e->shutdown);
	if (e->perms)
		pbw_bytes(w, 13, perms.b, perms.n);
}

static void encode_image(struct pbw *w, const struct entry *ours, const struct entry *peer)
{
	struct pbw one;

	w->n = 0;
	pbw_le32(w, GOSOCCR_IMG_COMMON_MAGIC);
	pbw_le32(w, GOSOCCR_IMG_UNIXSK_MAGIC);
	one.n = 0;
	encode_entry(&one, ours);
	pbw_le32(w, (uint32_t)one.n);
	pbw_raw(w, one.b, one.n);
	one.n = 0;
	encode_entry(&one, peer);
	pbw_le32(w, (uint32_t)one.n);
	pbw_raw(w, one.b, one.n);
}

static void write_file(const char *name, const void *b, size_t n)
{
	int fd = (int)H_SYS(openat(criu_images_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));

	H_CHECK(write(fd, b, n) == (ssize_t)n, "write %s", name);
	close(fd);
}

static void raw_name(int fd, int peer, struct entry *e)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	if (peer)
		H_SYS(getpeername(fd, (struct sockaddr *)&sa, &len));
	else
		H_SYS(getsockname(fd, (struct sockaddr *)&sa, &len));
	e->name_len = len - offsetof(struct sockaddr_un, sun_path);
	memcpy(e->name, sa.sun_path, e->name_len);
	if (e->name_len && e->name[0])
		e->name_len = strnlen((char *)e->name, e->name_len);
}

/* entries_of describes a live client socket the way the dump does. The
 * shutdown state is the caller's: only sock_diag tells it. */
static void entries_of(int fd, uint32_t id, uint32_t shutdown, struct entry *ours, struct entry *peer)
{
	struct stat st;
	struct timeval tv;
	socklen_t len;
	int v;

	memset(ours, 0, sizeof(*ours));
	memset(peer, 0, sizeof(*peer));
	H_SYS(fstat(fd, &st));
	len = sizeof(v);
	H_SYS(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len));
	ours->type = peer->type = (uint32_t)v;
	ours->id = id;
	ours->peer = id + 1;
	peer->id = id + 1;
	peer->peer = id;
	ours->state = peer->state = 1;
	ours->flags = (uint32_t)H_SYS(fcntl(fd, F_GETFL));
	ours->uflags = 0x5;
	peer->uflags = 0x1;
	ours->shutdown = shutdown;
	ours->perms = 1;
	ours->mode = st.st_mode;
	ours->uid = st.st_uid;
	ours->gid = st.st_gid;
	len = sizeof(v);
	H_SYS(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len));
	ours->sndbuf = (uint32_t)v;
	H_SYS(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len));
	ours->rcvbuf = (uint32_t)v;
	H_SYS(getsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, &len));
	ours->passcred = v;
	len = sizeof(tv);
	H_SYS(getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len));
	ours->snd_sec = (uint64_t)tv.tv_sec;
	ours->snd_usec = (uint64_t)tv.tv_usec;
	H_SYS(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
	ours->rcv_sec = (uint64_t)tv.tv_sec;
	ours->rcv_usec = (uint64_t)tv.tv_usec;
	raw_name(fd, 0, ours);
	raw_name(fd, 1, peer);
}

/* ---- the stages ---- */

/* begin makes the case's folders and loads the plugin for stage; in the
 * Go family a dump stage that cannot load Go skips the case. */
static void load(int stage)
{
	char why[512];
	int ret;

	H_CHECK(criu_plugin_load(&plug, plugin_path, why, sizeof(why)) == 0, "CRIU would refuse the plugin: %s", why);
	ret = criu_plugin_init(&plug, stage);
	if (ret && stage != CRIU_STAGE_RESTORE && criu_log_find(1, "older than this plugin", NULL))
		h_skip("the Go library lacks the plugin entry points");
	H_CHECK(ret == 0, "init(%d) = %d", stage, ret);
}

static void unload(int stage, int ret)
{
	criu_plugin_exit(&plug, stage, ret);
}

static void setup(void)
{
	h_netns();
	snprintf(sock_dir, sizeof(sock_dir), "/tmp/gosoccr-sk-XXXXXX");
	snprintf(img_dir, sizeof(img_dir), "/tmp/gosoccr-img-XXXXXX");
	H_CHECK(mkdtemp(sock_dir) && mkdtemp(img_dir), "mkdtemp: %s", strerror(errno));
	H_SYS(chmod(sock_dir, 0777 | S_ISVTX));
	criu_images_fd = (int)H_SYS(open(img_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	write_policy("# empty: every named peer, no data loss\n");
}

static void cleanup(void)
{
	unlink(policy_file);
	close(criu_images_fd);
	criu_images_fd = -1;
	rm_tree(sock_dir);
	if (getenv("GOSOCCR_TEST_KEEP")) /* to look at the images: crit decode */
		printf("images kept in %s\n", img_dir);
	else
		rm_tree(img_dir);
}

/* warm_up runs one dump stage on a throwaway socket, so that what the Go
 * runtime opens once for good (its poller's descriptors) is open before
 * tests count descriptors. It does not fork: the Go runtime is loaded. */
static void warm_up(void)
{
	static int done;
	char srv[96], name[64];
	int l, c, s, ret;

	if (done)
		return;
	done = 1;
	path_in(srv, sizeof(srv), "warm-up.sock");
	l = server(SOCK_STREAM, srv);
	c = client(SOCK_STREAM, NULL, srv);
	s = accept_one(l);
	load(CRIU_STAGE_DUMP);
	ret = criu_dump_unix_sk(&plug, c, (int)ino_of(c));
	H_CHECK(ret == 0 || ret == -ENOTSUP, "warm-up dump = %d", ret); /* -ENOTSUP: the policy excludes it */
	snprintf(name, sizeof(name), GOSOCCR_IMG_UNIXSK_FMT, (unsigned int)ino_of(c));
	unlinkat(criu_images_fd, name, 0);
	unload(CRIU_STAGE_DUMP, 0);
	close(c);
	close(s);
	close(l);
	H_SYS(unlink(srv));
	criu_log_clear();
}

/* dump runs the dump stage on fd, whose inode is its id: through the
 * plugin and Go, or (restore/ cases) by writing the image here. */
static int dump(int fd, uint32_t shutdown)
{
	uint32_t id = (uint32_t)ino_of(fd);
	int ret, before;

	if (!go_mode) {
		struct entry ours, peer;
		struct pbw w;
		char name[64];

		entries_of(fd, id, shutdown, &ours, &peer);
		encode_image(&w, &ours, &peer);
		snprintf(name, sizeof(name), GOSOCCR_IMG_UNIXSK_FMT, id);
		write_file(name, w.b, w.n);
		return 0;
	}
	warm_up();
	before = h_count_fds();
	load(CRIU_STAGE_DUMP);
	ret = criu_dump_unix_sk(&plug, fd, (int)id);
	unload(CRIU_STAGE_DUMP, ret);
	H_CHECK(h_count_fds() == before, "the dump stage left %d descriptors open", h_count_fds() - before);
	return ret;
}

/* restore runs the restore stage for id and returns the hook's result. */
static int restore(uint32_t id)
{
	int ret;

	load(CRIU_STAGE_RESTORE);
	ret = criu_restore_unix_sk(&plug, (int)id);
	unload(CRIU_STAGE_RESTORE, ret < 0 ? ret : 0);
	return ret;
}

/* ---- scenarios ---- */

/* connected: a client of a server, dumped, closed, restored; the server
 * accepts the new connection and both talk. own may be NULL. */
static void connected(int type, const char *srv_name, const char *own)
{
	char got[128], want_peer[128];
	int l, c, s, c2, s2, ret;
	uint32_t id;
	struct ucred cr;
	socklen_t len = sizeof(cr);

	l = server(type, srv_name);
	c = client(type, own, srv_name);
	s = accept_one(l);
	converse(c, s, "before the dump");
	id = (uint32_t)ino_of(c);

	ret = dump(c, 0);
	H_CHECK(ret == 0, "dump hook = %d, want 0", ret);
	H_CHECK(image_exists(GOSOCCR_IMG_UNIXSK_FMT, id), "no unixsk image after the dump");
	H_CHECK(!image_exists(GOSOCCR_IMG_SKQUEUE_FMT, id), "a skqueues image without unread data");

	close(c); /* the task is gone */
	H_CHECK(recv(s, got, 1, 0) == 0, "the server did not see the old connection end");
	close(s);

	h_fds_at_start = h_count_fds();
	c2 = restore(id);
	H_CHECK(c2 >= 0, "restore hook = %d", c2);
	s2 = accept_one(l);
	if (own)
		H_CHECK(strcmp(sock_name(c2, 0, got, sizeof(got)), own) == 0, "restored name %s, want %s", got, own);
	H_CHECK(strcmp(sock_name(c2, 1, got, sizeof(got)), srv_name) == 0, "restored peer %s, want %s", got, srv_name);
	snprintf(want_peer, sizeof(want_peer), "%s", own ? own : "");
	H_CHECK(strcmp(sock_name(s2, 1, got, sizeof(got)), want_peer) == 0, "the server sees %s, want %s", got, want_peer);
	H_SYS(getsockopt(s2, SOL_SOCKET, SO_PEERCRED, &cr, &len));
	H_CHECK(cr.uid == 0 && cr.gid == 0, "SO_PEERCRED %u:%u, want 0:0", cr.uid, cr.gid);
	converse(c2, s2, "restored");
	if (type == SOCK_SEQPACKET) {
		char b[16];

		send_all(c2, "one", 3);
		send_all(c2, "two", 3);
		H_CHECK(recv(s2, b, sizeof(b), 0) == 3 && recv(s2, b, sizeof(b), 0) == 3, "record boundaries lost");
	}
	H_CHECK(criu_log_find(3, "connected", NULL), "no log line for the restored socket");
	close(c2);
	close(s2);
	h_end();
	close(l);
}

static void case_stream_path(void)
{
	char srv[96], own[96];

	path_in(srv, sizeof(srv), "server.sock");
	path_in(own, sizeof(own), "client.sock");
	connected(SOCK_STREAM, srv, own);
}

static void case_stream_unbound(void)
{
	char srv[96];

	path_in(srv, sizeof(srv), "server.sock");
	connected(SOCK_STREAM, srv, NULL);
}

static void case_stream_abstract(void)
{
	char srv[96], own[96];

	abstract_name(srv, sizeof(srv), "server");
	abstract_name(own, sizeof(own), "client");
	connected(SOCK_STREAM, srv, own);
}

static void case_seqpacket(void)
{
	char srv[96], own[96];

	path_in(srv, sizeof(srv), "seq.sock");
	abstract_name(own, sizeof(own), "seq-client");
	connected(SOCK_SEQPACKET, srv, own);
}

/* dgram: a client logging to a /dev/log-like socket, optionally bound. */
static void dgram(const char *srv_name, const char *own)
{
	struct sockaddr_un from;
	socklen_t flen = sizeof(from);
	char buf[128], shown[128];
	int l, c, c2, ret;
	ssize_t n;
	uint32_t id;

	l = server(SOCK_DGRAM, srv_name);
	c = client(SOCK_DGRAM, own, srv_name);
	send_all(c, "<14>before", 10);
	H_CHECK(recv(l, buf, sizeof(buf), 0) == 10, "the log server missed a datagram");
	id = (uint32_t)ino_of(c);

	ret = dump(c, 0);
	H_CHECK(ret == 0, "dump hook = %d, want 0", ret);
	close(c);
	h_fds_at_start = h_count_fds();
	c2 = restore(id);
	H_CHECK(c2 >= 0, "restore hook = %d", c2);
	send_all(c2, "<14>after restore", 17);
	n = recvfrom(l, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	H_CHECK(n == 17 && memcmp(buf, "<14>after restore", 17) == 0, "the datagram sent after restore did not arrive (%zd)", n);
	if (own) {
		H_CHECK(strcmp(name_of(&from, flen, shown, sizeof(shown)), own) == 0, "the datagram came from %s, want %s",
			shown, own);
		H_CHECK(strcmp(sock_name(c2, 0, buf, sizeof(buf)), own) == 0, "restored name %s, want %s", buf, own);
	}
	close(c2);
	h_end();
	close(l);
}

static void case_dgram_devlog(void)
{
	char srv[96];

	path_in(srv, sizeof(srv), "log");
	dgram(srv, NULL);
}

static void case_dgram_abstract(void)
{
	char srv[96], own[96];

	abstract_name(srv, sizeof(srv), "log");
	abstract_name(own, sizeof(own), "logger");
	dgram(srv, own);
}

static void case_dgram_path_bound(void)
{
	char srv[96], own[96];

	path_in(srv, sizeof(srv), "log");
	path_in(own, sizeof(own), "logger.sock");
	dgram(srv, own);
}

/* shutdown: a client that had shut down its sending side; the restored
 * one has too, and still receives. */
static void case_shutdown_write(void)
{
	char srv[96], b[8];
	int l, c, s, c2, s2;
	uint32_t id;

	path_in(srv, sizeof(srv), "server.sock");
	l = server(SOCK_STREAM, srv);
	c = client(SOCK_STREAM, NULL, srv);
	s = accept_one(l);
	H_SYS(shutdown(c, SHUT_WR));
	H_CHECK(recv(s, b, 1, 0) == 0, "no EOF before the dump");
	id = (uint32_t)ino_of(c);
	H_CHECK(dump(c, 2) == 0, "dump failed");
	close(c);
	close(s);
	h_fds_at_start = h_count_fds();
	c2 = restore(id);
	H_CHECK(c2 >= 0, "restore hook = %d", c2);
	s2 = accept_one(l);
	H_CHECK(recv(s2, b, 1, 0) == 0, "the restored client has not shut down its sending side");
	send_all(s2, "down", 4);
	recv_exact(c2, b, 4, "client");
	H_CHECK(send(c2, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "the restored client can still send");
	close(c2);
	close(s2);
	h_end();
	close(l);
}

/* options: buffer sizes, timeouts, SO_PASSCRED and O_NONBLOCK come back. */
static void case_options(void)
{
	struct timeval snd = { 1, 500000 }, rcv = { 2, 500000 }, tv, want_sndto, want_rcvto;
	char srv[96];
	int l, c, s, c2, s2, v, want_snd, want_rcv, on = 1, sz = 65536;
	socklen_t len;
	uint32_t id;

	path_in(srv, sizeof(srv), "server.sock");
	l = server(SOCK_STREAM, srv);
	c = (int)H_SYS(socket(AF_UNIX, SOCK_STREAM, 0));
	H_SYS(setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd)));
	H_SYS(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv)));
	H_SYS(setsockopt(c, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)));
	H_SYS(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)));
	H_SYS(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)));
	{
		struct sockaddr_un sa;
		socklen_t sl = sun_of(srv, &sa);

		H_SYS(connect(c, (struct sockaddr *)&sa, sl));
	}
	h_nonblock(c, 1);
	len = sizeof(v);
	H_SYS(getsockopt(c, SOL_SOCKET, SO_SNDBUF, &want_snd, &len));
	H_SYS(getsockopt(c, SOL_SOCKET, SO_RCVBUF, &want_rcv, &len));
	len = sizeof(tv); /* the kernel keeps timeouts in jiffies */
	H_SYS(getsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &want_sndto, &len));
	H_SYS(getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &want_rcvto, &len));
	s = accept_one(l);
	id = (uint32_t)ino_of(c);
	H_CHECK(dump(c, 0) == 0, "dump failed");
	close(c);
	close(s);
	h_fds_at_start = h_count_fds();
	c2 = restore(id);
	H_CHECK(c2 >= 0, "restore hook = %d", c2);
	s2 = accept_one(l);
	len = sizeof(tv);
	H_SYS(getsockopt(c2, SOL_SOCKET, SO_SNDTIMEO, &tv, &len));
	H_CHECK(tv.tv_sec == want_sndto.tv_sec && tv.tv_usec == want_sndto.tv_usec, "SO_SNDTIMEO %ld.%06ld, want %ld.%06ld",
		(long)tv.tv_sec, (long)tv.tv_usec, (long)want_sndto.tv_sec, (long)want_sndto.tv_usec);
	H_SYS(getsockopt(c2, SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
	H_CHECK(tv.tv_sec == want_rcvto.tv_sec && tv.tv_usec == want_rcvto.tv_usec, "SO_RCVTIMEO %ld.%06ld, want %ld.%06ld",
		(long)tv.tv_sec, (long)tv.tv_usec, (long)want_rcvto.tv_sec, (long)want_rcvto.tv_usec);
	len = sizeof(v);
	H_SYS(getsockopt(c2, SOL_SOCKET, SO_PASSCRED, &v, &len));
	H_CHECK(v == 1, "SO_PASSCRED %d, want 1", v);
	H_SYS(getsockopt(c2, SOL_SOCKET, SO_SNDBUF, &v, &len));
	H_CHECK(v == want_snd, "SO_SNDBUF %d, want %d", v, want_snd);
	H_SYS(getsockopt(c2, SOL_SOCKET, SO_RCVBUF, &v, &len));
	H_CHECK(v == want_rcv, "SO_RCVBUF %d, want %d", v, want_rcv);
	H_CHECK(H_SYS(fcntl(c2, F_GETFL)) & O_NONBLOCK, "O_NONBLOCK lost");
	converse(c2, s2, "options");
	close(c2);
	close(s2);
	h_end();
	close(l);
}

/* rename: the peer moved (migration); the policy of the restoring host
 * sends the new connection to the new path. */
static void case_rename(void)
{
	char a[96], b[96], text[256];
	int la, lb, c, s, c2, s2;
	uint32_t id;

	path_in(a, sizeof(a), "a.sock");
	path_in(b, sizeof(b), "b.sock");
	la = server(SOCK_STREAM, a);
	lb = server(SOCK_STREAM, b);
	c = client(SOCK_STREAM, NULL, a);
	s = accept_one(la);
	id = (uint32_t)ino_of(c);
	H_CHECK(dump(c, 0) == 0, "dump failed");
	close(c);
	close(s);
	snprintf(text, sizeof(text), "# migration\nrename %s %s\n", a, b);
	write_policy(text);
	h_fds_at_start = h_count_fds();
	c2 = restore(id);
	H_CHECK(c2 >= 0, "restore hook = %d", c2);
	H_CHECK(!pending(la), "the old path got a connection");
	s2 = accept_one(lb);
	converse(c2, s2, "renamed");
	H_CHECK(criu_log_find(3, "renamed", a, b, NULL), "no log line for the rename");
	close(c2);
	close(s2);
	h_end();
	close(la);
	close(lb);
}

/* owner: the socket of a task running as nobody is restored with nobody's
 * ids: the server sees them in SO_PEERCRED. Then the same where nobody may
 * not connect: the restore fails, though the restorer is root. */
static void owner(int denied)
{
	char srv[96];
	int l, c, c2, s, s2;
	uint32_t id;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uid_t r, e, sv;
	gid_t gr, ge, gs, groups[64], groups_after[64];
	int ngroups;

	path_in(srv, sizeof(srv), "server.sock");
	l = server(SOCK_STREAM, srv);
	c = client_as(NOBODY, NOBODY, SOCK_STREAM, srv);
	s = accept_one(l);
	H_SYS(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len));
	H_CHECK(cr.uid == NOBODY, "the client runs as %u", cr.uid);
	id = (uint32_t)ino_of(c);
	H_CHECK(dump(c, 0) == 0, "dump failed");
	close(c);
	close(s);
	if (denied)
		H_SYS(chmod(srv, 0700));
	h_fds_at_start = h_count_fds();
	ngroups = (int)H_SYS(getgroups(64, groups));
	c2 = restore(id);
	H_CHECK(getgroups(64, groups_after) == ngroups && memcmp(groups, groups_after, (size_t)ngroups * sizeof(gid_t)) == 0,
		"the restorer's supplementary groups were not put back");
	H_SYS(getresuid(&r, &e, &sv));
	H_SYS(getresgid(&gr, &ge, &gs));
	H_CHECK(r == 0 && e == 0 && sv == 0 && gr == 0 && ge == 0 && gs == 0,
		"the restorer's ids were not switched back: uid %u/%u/%u gid %u/%u/%u", r, e, sv, gr, ge, gs);
	H_CHECK(syscall(SYS_setfsuid, -1) == 0 && syscall(SYS_setfsgid, -1) == 0, "fsuid/fsgid not switched back");
	if (denied) {
		H_CHECK(c2 == -EACCES, "restore hook = %d, want -EACCES", c2);
		H_CHECK(criu_log_find(1, "connect", srv, NULL), "no error line naming the step and the peer");
		H_CHECK(!pending(l), "a connection reached the server");
	} else {
		H_CHECK(c2 >= 0, "restore hook = %d", c2);
		s2 = accept_one(l);
		len = sizeof(cr);
		H_SYS(getsockopt(s2, SOL_SOCKET, SO_PEERCRED, &cr, &len));
		H_CHECK(cr.uid == NOBODY && cr.gid == NOBODY, "SO_PEERCRED %u:%u, want %u:%u", cr.uid, cr.gid, NOBODY, NOBODY);
		converse(c2, s2, "owner");
		close(c2);
		close(s2);
	}
	h_end();
	close(l);
}

static void case_owner(void)
{
	owner(0);
}

static void case_owner_denied(void)
{
	owner(1);
}

/* unread data in our receive queue: refused by default, named in the log;
 * dropped (and kept in an skqueues image) under allow-data-loss. */
static void unread(int allow)
{
	char srv[96], idstr[16], big[1234];
	int l, c, s, c2, s2, ret;
	uint32_t id;

	path_in(srv, sizeof(srv), "server.sock");
	l = server(SOCK_STREAM, srv);
	c = client(SOCK_STREAM, NULL, srv);
	s = accept_one(l);
	memset(big, 'q', sizeof(big));
	send_all(s, big, sizeof(big));
	id = (uint32_t)ino_of(c);
	snprintf(idstr, sizeof(idstr), "%u", id);
	if (allow)
		write_policy("allow-data-loss\n");
	ret = dump(c, 0);
	if (!allow) {
		H_CHECK(ret < 0 && ret != -ENOTSUP, "dump hook = %d, want a refusal", ret);
		H_CHECK(criu_log_find(1, idstr, "1234", NULL), "no error line naming socket %s and 1234 bytes", idstr);
		H_CHECK(!image_exists(GOSOCCR_IMG_UNIXSK_FMT, id), "an image of a refused socket");
		H_CHECK(recv(c, big, sizeof(big), MSG_DONTWAIT) == (ssize_t)sizeof(big), "the refused dump took bytes");
		close(c);
		close(s);
		close(l);
		return;
	}
	H_CHECK(ret == 0, "dump hook = %d under allow-data-loss", ret);
	H_CHECK(image_exists(GOSOCCR_IMG_SKQUEUE_FMT, id), "no skqueues image");
	H_CHECK(criu_log_find(2, idstr, "1234", NULL), "no warning naming socket %s and 1234 bytes", idstr);
	close(c);
	close(s);
	h_fds_at_start = h_count_fds();
	c2 = restore(id);
	H_CHECK(c2 >= 0, "restore hook = %d", c2);
	s2 = accept_one(l);
	H_CHECK(!pending(c2), "the restored connection holds bytes");
	converse(c2, s2, "after data loss");
	close(c2);
	close(s2);
	h_end();
	close(l);
}

static void case_unread_refused(void)
{
	unread(0);
}

static void case_unread_allowed(void)
{
	unread(1);
}

static void case_excluded(void)
{
	char srv[96], text[160];
	int l, c, s, ret;

	path_in(srv, sizeof(srv), "server.sock");
	l = server(SOCK_STREAM, srv);
	c = client(SOCK_STREAM, NULL, srv);
	s = accept_one(l);
	snprintf(text, sizeof(text), "exclude %s/*\n", sock_dir);
	write_policy(text);
	ret = dump(c, 0);
	H_CHECK(ret == -ENOTSUP, "dump hook = %d, want -ENOTSUP (left to CRIU)", ret);
	H_CHECK(!image_exists(GOSOCCR_IMG_UNIXSK_FMT, (uint32_t)ino_of(c)), "an image of an excluded socket");
	close(c);
	close(s);
	close(l);
}

static void case_nameless_peer(void)
{
	char idstr[16];
	int sp[2], ret;

	H_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
	snprintf(idstr, sizeof(idstr), "%u", (unsigned int)ino_of(sp[0]));
	ret = dump(sp[0], 0);
	H_CHECK(ret < 0 && ret != -ENOTSUP, "dump hook = %d, want a refusal", ret);
	H_CHECK(criu_log_find(1, idstr, "no name", NULL), "no error line saying socket %s's peer has no name", idstr);
	H_CHECK(!image_exists(GOSOCCR_IMG_UNIXSK_FMT, (uint32_t)ino_of(sp[0])), "an image of a refused socket");
	close(sp[0]);
	close(sp[1]);
}

/* ---- cases about the plugin itself ---- */

static void case_descriptor(void)
{
	char why[256];

	H_CHECK(criu_plugin_load(&plug, plugin_path, why, sizeof(why)) == 0, "CRIU would refuse the plugin: %s", why);
	H_CHECK(strcmp(plug.d->name, "gosoccr") == 0, "name %s, want gosoccr", plug.d->name);
	H_CHECK(plug.d->version == 0x200, "version %#x, want 0.2.0 (0x200)", plug.d->version);
	H_CHECK(plug.d->max_hooks == 2, "max_hooks %u, want 2", plug.d->max_hooks);
	H_CHECK(plug.d->init && plug.d->exit, "init or exit missing");
	H_CHECK(plug.d->hooks[0] && plug.d->hooks[1], "DUMP_UNIX_SK or RESTORE_UNIX_SK missing");
	H_CHECK(!dlsym(plug.dl, "cr_plugin_init") && !dlsym(plug.dl, "gs_log") && !dlsym(plug.dl, "gs_restore_unix_sk"),
		"the plugin exports more than CR_PLUGIN_DESC");
	H_CHECK(!go_loaded(), "loading the plugin loaded Go");
	dlclose(plug.dl);
}

/* restore_no_go: a whole restore stage, and Go is never in the process. */
static void case_restore_no_go(void)
{
	char srv[96];
	int l, c, s, c2, s2;
	uint32_t id;

	path_in(srv, sizeof(srv), "server.sock");
	l = server(SOCK_STREAM, srv);
	c = client(SOCK_STREAM, NULL, srv);
	s = accept_one(l);
	id = (uint32_t)ino_of(c);
	H_CHECK(dump(c, 0) == 0, "dump failed"); /* restore/ family: written in C */
	close(c);
	close(s);
	load(CRIU_STAGE_RESTORE);
	H_CHECK(!go_loaded(), "init(RESTORE) loaded Go");
	c2 = criu_restore_unix_sk(&plug, (int)id);
	H_CHECK(c2 >= 0, "restore hook = %d", c2);
	H_CHECK(!go_loaded(), "the restore hook loaded Go");
	H_CHECK(criu_restore_unix_sk(&plug, (int)id + 12345) == -ENOTSUP, "a socket without an image is not -ENOTSUP");
	unload(CRIU_STAGE_RESTORE, 0);
	H_CHECK(!go_loaded(), "exit(RESTORE) loaded Go");
	s2 = accept_one(l);
	converse(c2, s2, "no Go");
	close(c2);
	close(s2);
	close(l);
}

/* no_library: a plugin with no libgosoccr.so anywhere near disables
 * itself on dump with a warning, as CRIU's cuda and amdgpu plugins do. */
static void case_no_library(void)
{
	char dir[128], path[160], cmd[400];
	int sp[2], ret;

	snprintf(dir, sizeof(dir), "%s/lib/criu", img_dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s' '%s/gosoccr.so'", dir, plugin_path, dir);
	H_CHECK(system(cmd) == 0, "%s failed", cmd);
	snprintf(path, sizeof(path), "%s/gosoccr.so", dir);
	plugin_path = path;
	unsetenv("GOSOCCR_LIBRARY");
	load(CRIU_STAGE_DUMP);
	H_CHECK(criu_log_find(2, "not found", NULL), "no warning about the missing library");
	H_CHECK(!go_loaded(), "Go was loaded");
	H_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
	ret = criu_dump_unix_sk(&plug, sp[0], (int)ino_of(sp[0]));
	H_CHECK(ret == -ENOTSUP, "dump hook = %d, want -ENOTSUP when disabled", ret);
	unload(CRIU_STAGE_DUMP, 0);
	close(sp[0]);
	close(sp[1]);

	/* A library named explicitly that does not load is an error. */
	setenv("GOSOCCR_LIBRARY", "/nonexistent/libgosoccr.so", 1);
	H_CHECK(criu_plugin_load(&plug, plugin_path, cmd, sizeof(cmd)) == 0, "%s", cmd);
	ret = criu_plugin_init(&plug, CRIU_STAGE_DUMP);
	H_CHECK(ret < 0, "init(DUMP) = %d with a GOSOCCR_LIBRARY that does not exist", ret);
	H_CHECK(criu_log_find(1, "GOSOCCR_LIBRARY", NULL), "no error line naming GOSOCCR_LIBRARY");
	dlclose(plug.dl);
	unsetenv("GOSOCCR_LIBRARY");
}

static void case_policy_errors(void)
{
	char why[256];
	int ret;

	setenv(GOSOCCR_POLICY_ENV, "/nonexistent/policy", 1);
	H_CHECK(criu_plugin_load(&plug, plugin_path, why, sizeof(why)) == 0, "%s", why);
	ret = criu_plugin_init(&plug, CRIU_STAGE_RESTORE);
	H_CHECK(ret == -ENOENT, "init(RESTORE) = %d with a missing policy file, want -ENOENT", ret);
	H_CHECK(criu_log_find(1, "/nonexistent/policy", NULL), "no error line naming the policy");
	dlclose(plug.dl);

	write_policy("handle /run/*\nrename /only-one-name\n");
	H_CHECK(criu_plugin_load(&plug, plugin_path, why, sizeof(why)) == 0, "%s", why);
	ret = criu_plugin_init(&plug, CRIU_STAGE_RESTORE);
	H_CHECK(ret == -EINVAL, "init(RESTORE) = %d with a bad rename line, want -EINVAL", ret);
	H_CHECK(criu_log_find(1, ":2:", "rename", NULL), "no error line naming line 2");
	dlclose(plug.dl);
}

static const char *const damages[] = {
	"bad common magic", "bad unixsk magic", "only the magics", "truncated length",
	"huge entry length", "entry cut short", "empty file", "varint of 11 bytes",
	"field number 0", "a group (wire type 3)", "name longer than sun_path",
	"no peer entry", "socket type 99", "nameless peer", "shutdown 7",
	"timeout usec 2000000", "no owner (file_perms)", "a path with a NUL inside",
	"uint32 field above 32 bits", "bytes field length past the entry", NULL,
};

/* damage spoils image w (of entries o and p) in the i-th way of damages. */
static void damage(int i, struct pbw *w, struct entry *o, struct entry *p)
{
	struct pbw one = { .n = 0 };
	uint8_t long_name[200];

	switch (i) {
	case 0: w->b[0] ^= 1; break;
	case 1: w->b[5] ^= 1; break;
	case 2: w->n = 8; break;
	case 3: w->n = 10; break;
	case 4: memset(w->b + 8, 0xff, 4); break;
	case 5: w->n -= 3; break;
	case 6: w->n = 0; break;
	case 7:
		w->n = 8;
		pbw_le32(w, 12);
		pbw_varint(w, 1 << 3);
		memset(w->b + w->n, 0xff, 11);
		w->n += 11;
		break;
	case 8:
		w->n = 8;
		pbw_le32(w, 2);
		pbw_u(w, 0, 1);
		break;
	case 9:
		w->n = 8;
		pbw_le32(w, 1);
		pbw_varint(w, 1 << 3 | 3);
		break;
	case 10: /* a second name field, which protobuf says wins */
		memset(long_name, 'n', sizeof(long_name));
		encode_entry(&one, o);
		pbw_bytes(&one, 11, long_name, sizeof(long_name));
		w->n = 8;
		pbw_le32(w, (uint32_t)one.n);
		pbw_raw(w, one.b, one.n);
		break;
	case 11:
		encode_entry(&one, o);
		w->n = 8;
		pbw_le32(w, (uint32_t)one.n);
		pbw_raw(w, one.b, one.n);
		break;
	case 12: o->type = 99; encode_image(w, o, p); break;
	case 13: p->name_len = 0; encode_image(w, o, p); break;
	case 14: o->shutdown = 7; encode_image(w, o, p); break;
	case 15: o->rcv_usec = 2000000; encode_image(w, o, p); break;
	case 16: o->perms = 0; encode_image(w, o, p); break;
	case 17:
		memcpy(p->name, "/tmp\0x", 6);
		p->name_len = 6;
		encode_image(w, o, p);
		break;
	case 18:
		w->n = 8;
		pbw_le32(w, 7);
		pbw_u(w, 1, 1ull << 40);
		break;
	case 19:
		w->n = 8;
		pbw_le32(w, 3);
		pbw_varint(w, 11 << 3 | 2);
		pbw_varint(w, 100);
		pbw_raw(w, "x", 1);
		break;
	}
}

/* corrupt: damaged images fail the restore cleanly: an error, a log line
 * naming the socket, no crash, nothing left open. */
static void case_corrupt(void)
{
	struct entry ours, peer;
	struct pbw good, bad;
	char srv[96], name[64], idstr[16];
	int l, c, s, ret;
	uint32_t id;
	int i;

	path_in(srv, sizeof(srv), "server.sock");
	l = server(SOCK_STREAM, srv);
	c = client(SOCK_STREAM, NULL, srv);
	s = accept_one(l);
	id = (uint32_t)ino_of(c);
	snprintf(idstr, sizeof(idstr), "%u", id);
	snprintf(name, sizeof(name), GOSOCCR_IMG_UNIXSK_FMT, id);
	entries_of(c, id, 0, &ours, &peer);
	encode_image(&good, &ours, &peer);
	load(CRIU_STAGE_RESTORE);
	h_fds_at_start = h_count_fds();

	for (i = 0; damages[i]; i++) {
		struct entry o = ours, p = peer;

		bad = good;
		damage(i, &bad, &o, &p);
		write_file(name, bad.b, bad.n);
		criu_log_clear();
		ret = criu_restore_unix_sk(&plug, (int)id);
		printf("  %s: %d\n", damages[i], ret);
		H_CHECK(ret < 0 && ret != -ENOTSUP, "%s: restore hook = %d, want an error", damages[i], ret);
		H_CHECK(criu_log_find(1, idstr, NULL), "%s: no error line naming socket %s", damages[i], idstr);
		H_CHECK(h_count_fds() == h_fds_at_start, "%s: a descriptor left open", damages[i]);
		H_CHECK(!pending(l), "%s: a connection reached the server", damages[i]);
	}

	/* A file too large to be an image, and a symlink, are not read. */
	{
		static uint8_t huge[(1 << 20) + 1];

		memcpy(huge, good.b, good.n);
		write_file(name, huge, sizeof(huge));
		H_CHECK(criu_restore_unix_sk(&plug, (int)id) == -EINVAL, "a 1 MiB + 1 image was read");
		H_SYS(unlinkat(criu_images_fd, name, 0));
		write_file("elsewhere.img", good.b, good.n);
		H_SYS(symlinkat("elsewhere.img", criu_images_fd, name));
		ret = criu_restore_unix_sk(&plug, (int)id);
		H_CHECK(ret == -ELOOP, "a symlinked image: %d, want -ELOOP", ret);
	}
	/* And the good image still works. */
	H_SYS(unlinkat(criu_images_fd, name, 0));
	write_file(name, good.b, good.n);
	close(c);
	close(s);
	ret = criu_restore_unix_sk(&plug, (int)id);
	H_CHECK(ret >= 0, "the undamaged image: %d", ret);
	close(ret);
	close(accept_one(l));
	unload(CRIU_STAGE_RESTORE, 0);
	h_end();
	close(l);
}

/* timing: the time the plugin adds, per stage and per socket. The
 * server keeps its ends open (a peer that is gone is another case) and
 * accepts each restored connection as it comes, as a server would. */
static void case_timing(void)
{
	enum { N = 200 };
	static int cli[N], srvs[N];
	char srv[96];
	double t0, t_init = 0, t_dump = 0, t_exit = 0, t_rinit, t_restore = 0;
	uint32_t ids[N];
	int l, i;

	path_in(srv, sizeof(srv), "server.sock");
	l = server(SOCK_STREAM, srv);
	for (i = 0; i < N; i++) {
		char own[96], leaf[32];

		snprintf(leaf, sizeof(leaf), "c%d.sock", i);
		path_in(own, sizeof(own), leaf);
		cli[i] = client(SOCK_STREAM, own, srv);
		srvs[i] = accept_one(l);
		ids[i] = (uint32_t)ino_of(cli[i]);
	}
	if (go_mode) {
		warm_up();
		t0 = h_now_us();
		load(CRIU_STAGE_DUMP);
		t_init = h_now_us() - t0;
		t0 = h_now_us();
		for (i = 0; i < N; i++)
			H_CHECK(criu_dump_unix_sk(&plug, cli[i], (int)ids[i]) == 0, "dump %d failed", i);
		t_dump = h_now_us() - t0;
		t0 = h_now_us();
		unload(CRIU_STAGE_DUMP, 0);
		t_exit = h_now_us() - t0;
	} else {
		t0 = h_now_us();
		for (i = 0; i < N; i++)
			dump(cli[i], 0);
		t_dump = h_now_us() - t0;
	}
	for (i = 0; i < N; i++) {
		close(cli[i]);
		close(srvs[i]);
	}
	t0 = h_now_us();
	load(CRIU_STAGE_RESTORE);
	t_rinit = h_now_us() - t0;
	for (i = 0; i < N; i++) {
		t0 = h_now_us();
		cli[i] = criu_restore_unix_sk(&plug, (int)ids[i]);
		t_restore += h_now_us() - t0;
		H_CHECK(cli[i] >= 0, "restore %d failed", i);
		srvs[i] = accept_one(l);
	}
	unload(CRIU_STAGE_RESTORE, 0);
	for (i = 0; i < N; i++) {
		close(cli[i]);
		close(srvs[i]);
	}
	if (go_mode)
		printf("timing: dump: init %.2f ms (Go already loaded by a warm-up), %.1f us/socket, exit %.3f ms; "
		       "restore: init %.1f us, %.1f us/socket (%d bound stream sockets)\n",
		       t_init / 1e3, t_dump / N, t_exit / 1e3, t_rinit, t_restore / N, N);
	else
		printf("timing: restore: init %.1f us, %.1f us/socket (%d bound stream sockets; images written in C)\n",
		       t_rinit, t_restore / N, N);
	close(l);
}

/* go_load_time: the first init(DUMP) of a process, which loads and starts
 * the Go runtime. */
static void case_go_load_time(void)
{
	double t0 = h_now_us(), t1;

	load(CRIU_STAGE_DUMP);
	t1 = h_now_us();
	unload(CRIU_STAGE_DUMP, 0);
	printf("timing: first init(DUMP), loading libgosoccr.so and starting Go: %.1f ms\n", (t1 - t0) / 1e3);
}

struct tcase {
	const char *name;
	void (*fn)(void);
	int go;   /* 1: dump/ family, 0: restore/, -1: neither (about the plugin) */
};

static const struct tcase cases[] = {
	{ "plugin/descriptor", case_descriptor, -1 },
	{ "plugin/no-library", case_no_library, -1 },
	{ "plugin/policy-errors", case_policy_errors, -1 },
	{ "restore/no-go", case_restore_no_go, 0 },
	{ "restore/corrupt", case_corrupt, 0 },
	{ "restore/stream-path", case_stream_path, 0 },
	{ "restore/stream-unbound", case_stream_unbound, 0 },
	{ "restore/stream-abstract", case_stream_abstract, 0 },
	{ "restore/seqpacket", case_seqpacket, 0 },
	{ "restore/dgram-devlog", case_dgram_devlog, 0 },
	{ "restore/dgram-abstract", case_dgram_abstract, 0 },
	{ "restore/dgram-path-bound", case_dgram_path_bound, 0 },
	{ "restore/shutdown-write", case_shutdown_write, 0 },
	{ "restore/options", case_options, 0 },
	{ "restore/rename", case_rename, 0 },
	{ "restore/owner", case_owner, 0 },
	{ "restore/owner-denied", case_owner_denied, 0 },
	{ "restore/timing", case_timing, 0 },
	{ "dump/stream-path", case_stream_path, 1 },
	{ "dump/stream-unbound", case_stream_unbound, 1 },
	{ "dump/stream-abstract", case_stream_abstract, 1 },
	{ "dump/seqpacket", case_seqpacket, 1 },
	{ "dump/dgram-devlog", case_dgram_devlog, 1 },
	{ "dump/dgram-abstract", case_dgram_abstract, 1 },
	{ "dump/dgram-path-bound", case_dgram_path_bound, 1 },
	{ "dump/shutdown-write", case_shutdown_write, 1 },
	{ "dump/options", case_options, 1 },
	{ "dump/rename", case_rename, 1 },
	{ "dump/owner", case_owner, 1 },
	{ "dump/owner-denied", case_owner_denied, 1 },
	{ "dump/unread-refused", case_unread_refused, 1 },
	{ "dump/unread-allowed", case_unread_allowed, 1 },
	{ "dump/excluded", case_excluded, 1 },
	{ "dump/nameless-peer", case_nameless_peer, 1 },
	{ "dump/timing", case_timing, 1 },
	{ "dump/go-load-time", case_go_load_time, 1 },
};

int main(int argc, char **argv)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[2], "list") == 0) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: %s PLUGIN CASE|list\n", argv[0]);
		return 2;
	}
	plugin_path = argv[1];
	snprintf(policy_file, sizeof(policy_file), "/tmp/gosoccr-policy-%d", (int)getpid());
	if (!getenv(GOSOCCR_POLICY_ENV) || strcmp(getenv(GOSOCCR_POLICY_ENV), policy_file) != 0) {
		setenv(GOSOCCR_POLICY_ENV, policy_file, 1);
		execv("/proc/self/exe", argv);
		h_fail("re-exec with %s=%s: %s", GOSOCCR_POLICY_ENV, policy_file, strerror(errno));
	}
	alarm(120);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[2], cases[i].name))
			continue;
		go_mode = cases[i].go == 1;
		setup();
		cases[i].fn();
		cleanup();
		printf("ok: %s\n", cases[i].name);
		return 0;
	}
	fprintf(stderr, "unknown case %s\n", argv[2]);
	return 2;
}

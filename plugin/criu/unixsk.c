/*
 * unixsk.c: restore of an external unix socket, in plain C, from the
 * gosoccr-unixsk-<id>.img that the dump wrote (format: hooks/doc.go).
 *
 * This runs inside the child that CRIU forks to become the restored task,
 * so it allocates little, starts no thread and never calls into Go. The
 * steps, each named in the log line of its failure:
 *   image   read the file (at most GS_IMG_MAX bytes) and decode our
 *           UnixSkEntry and the peer's; every length is checked first;
 *   policy  rename the peer's name by the host's policy ($GOSOCCR_POLICY);
 *   socket  a socket of the dumped type; then its options;
 *   owner   switch this thread's ids to the socket owner's uid and gid, so
 *           that bind and connect get the owner's rights, not root's;
 *   bind    our own name where we had one (a stale socket file is removed);
 *   connect to the peer's name: a new connection to the same server, or
 *           a datagram socket's default destination;
 *   ids     switch back; if that fails the restore fails (fail closed);
 *   shutdown the dumped shutdown state, then the file status flags.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "plugin.h"
#include "gosoccr.h"

#define GS_IMG_MAX (1u << 20)       /* an unixsk image is a few hundred bytes */
#define GS_POLICY_MAX (64u << 10)
#define GS_NAME_MAX ((size_t)sizeof(((struct sockaddr_un *)0)->sun_path))
#define GS_CONNECT_TIMEOUT_SEC 10   /* a server that never accepts must not hang the restore */

/* ---- protobuf wire format: just what a UnixSkEntry needs ---- */

struct pb {
	const uint8_t *p, *end;
};

struct pb_field {
	uint32_t num;
	unsigned int wire;   /* 0 varint, 1 fixed64, 2 bytes, 5 fixed32 */
	uint64_t v;          /* wire 0, 1, 5 */
	const uint8_t *data; /* wire 2 */
	size_t len;
};

static int pb_varint(struct pb *b, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int shift;

	for (shift = 0; shift < 64; shift += 7) {
		uint8_t c;

		if (b->p >= b->end)
			return -1;
		c = *b->p++;
		if (shift == 63 && c > 1)
			return -1; /* more than 64 bits */
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

static uint64_t le_bytes(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* pb_next reads the next field of a message. Returns 1 and the field,
 * 0 at the end of the message, -1 when the bytes are not protobuf. Groups
 * (wire types 3 and 4) are refused: CRIU's messages have none. */
static int pb_next(struct pb *b, struct pb_field *f)
{
	uint64_t key, n;

	if (b->p == b->end)
		return 0;
	if (pb_varint(b, &key) || key >> 3 == 0 || key >> 3 > 0x1fffffff)
		return -1;
	f->num = (uint32_t)(key >> 3);
	f->wire = (unsigned int)(key & 7);
	switch (f->wire) {
	case 0:
		return pb_varint(b, &f->v) ? -1 : 1;
	case 1:
	case 5:
		n = f->wire == 1 ? 8 : 4;
		if ((uint64_t)(b->end - b->p) < n)
			return -1;
		f->v = le_bytes(b->p, (unsigned int)n);
		b->p += n;
		return 1;
	case 2:
		if (pb_varint(b, &n) || n > (uint64_t)(b->end - b->p))
			return -1;
		f->data = b->p;
		f->len = (size_t)n;
		b->p += n;
		return 1;
	default:
		return -1;
	}
}

/* pb_u32 checks that a field is a varint that fits a uint32. */
static int pb_u32(const struct pb_field *f, uint32_t *out)
{
	if (f->wire != 0 || f->v > UINT32_MAX)
		return -1;
	*out = (uint32_t)f->v;
	return 0;
}

/* ---- the entries of gosoccr-unixsk-<id>.img ---- */

struct usk_opts {
	uint32_t sndbuf, rcvbuf;
	uint64_t snd_sec, snd_usec, rcv_sec, rcv_usec;
	int passcred; /* -1: not recorded */
};

struct usk {
	uint32_t id, ino, type, state, flags, uflags, backlog, peer, shutdown;
	struct usk_opts opts;
	const uint8_t *name; /* into the image buffer; a leading NUL: abstract */
	size_t name_len;
	int have_perms;
	uint32_t mode, uid, gid;
	unsigned int seen; /* bit n: field n was present */
};

enum {
	F_ID = 1, F_INO = 2, F_TYPE = 3, F_STATE = 4, F_FLAGS = 5, F_UFLAGS = 6,
	F_BACKLOG = 7, F_PEER = 8, F_FOWN = 9, F_OPTS = 10, F_NAME = 11,
	F_SHUTDOWN = 12, F_FILE_PERMS = 13,
};

static int decode_opts(const uint8_t *p, size_t len, struct usk_opts *o)
{
	struct pb b = { p, p + len };
	struct pb_field f;
	int r;

	while ((r = pb_next(&b, &f)) > 0) {
		uint64_t *u64 = NULL;

		switch (f.num) {
		case 1:
			if (pb_u32(&f, &o->sndbuf))
				return -1;
			break;
		case 2:
			if (pb_u32(&f, &o->rcvbuf))
				return -1;
			break;
		case 3: u64 = &o->snd_sec; break;
		case 4: u64 = &o->snd_usec; break;
		case 5: u64 = &o->rcv_sec; break;
		case 6: u64 = &o->rcv_usec; break;
		case 11:
			if (f.wire != 0)
				return -1;
			o->passcred = f.v != 0;
			break;
		default:
			break; /* options restore leaves to CRIU */
		}
		if (u64) {
			if (f.wire != 0)
				return -1;
			*u64 = f.v;
		}
	}
	return r;
}

static int decode_perms(const uint8_t *p, size_t len, struct usk *e)
{
	struct pb b = { p, p + len };
	struct pb_field f;
	unsigned int seen = 0;
	int r;

	while ((r = pb_next(&b, &f)) > 0) {
		uint32_t *dst = f.num == 1 ? &e->mode : f.num == 2 ? &e->uid : f.num == 3 ? &e->gid : NULL;

		if (!dst)
			continue;
		if (pb_u32(&f, dst))
			return -1;
		seen |= 1u << f.num;
	}
	if (r < 0 || (seen & 0xc) != 0xc) /* uid and gid are required */
		return -1;
	e->have_perms = 1;
	return 0;
}

/* decode_usk decodes one UnixSkEntry. Returns 0 or -1 (not a valid entry;
 * *why says what is wrong). */
static int decode_usk(const uint8_t *p, size_t len, struct usk *e, const char **why)
{
	struct pb b = { p, p + len };
	struct pb_field f;
	int r;

	memset(e, 0, sizeof(*e));
	e->opts.passcred = -1;
	*why = "not protobuf";
	while ((r = pb_next(&b, &f)) > 0) {
		uint32_t *u32 = NULL;

		if (f.num < 32)
			e->seen |= 1u << f.num;
		switch (f.num) {
		case F_ID: u32 = &e->id; break;
		case F_INO: u32 = &e->ino; break;
		case F_TYPE: u32 = &e->type; break;
		case F_STATE: u32 = &e->state; break;
		case F_FLAGS: u32 = &e->flags; break;
		case F_UFLAGS: u32 = &e->uflags; break;
		case F_BACKLOG: u32 = &e->backlog; break;
		case F_PEER: u32 = &e->peer; break;
		case F_SHUTDOWN: u32 = &e->shutdown; break;
		case F_OPTS:
			if (f.wire != 2 || decode_opts(f.data, f.len, &e->opts) < 0) {
				*why = "bad socket options (field 10)";
				return -1;
			}
			break;
		case F_NAME:
			if (f.wire != 2 || f.len > GS_NAME_MAX) {
				*why = "name longer than sun_path (field 11)";
				return -1;
			}
			e->name = f.data;
			e->name_len = f.len;
			break;
		case F_FILE_PERMS:
			if (f.wire != 2 || decode_perms(f.data, f.len, e) < 0) {
				*why = "bad file_perms (field 13)";
				return -1;
			}
			break;
		default:
			if (f.num == F_FOWN && f.wire != 2) {
				*why = "bad fown (field 9)";
				return -1;
			}
			break; /* unknown fields are skipped */
		}
		if (u32 && pb_u32(&f, u32)) {
			*why = "a uint32 field that is not a 32-bit varint";
			return -1;
		}
	}
	if (r < 0)
		return -1;
	if (!(e->seen & (1u << F_ID)) || !(e->seen & (1u << F_TYPE))) {
		*why = "id or type missing";
		return -1;
	}
	return 0;
}

/* ---- names ---- */

/* A unix socket name as the kernel reports it: a path, possibly followed
 * by NULs, or a NUL and an abstract name of any bytes. */
struct sk_name {
	uint8_t b[GS_NAME_MAX];
	size_t len; /* 0: no name */
};

/* name_set copies a name from an image and trims the NULs that may
 * follow a path. Returns 0, or -1 for a path with a NUL inside. */
static int name_set(struct sk_name *n, const uint8_t *p, size_t len)
{
	if (len > GS_NAME_MAX)
		return -1;
	if (len && p[0] != 0) {
		while (len && p[len - 1] == 0)
			len--;
		if (memchr(p, 0, len))
			return -1;
	}
	memcpy(n->b, p, len);
	n->len = len;
	return 0;
}

/* name_show writes a name for a log line: "@" for an abstract name's NUL,
 * other bytes outside printable ASCII as \xNN. */
static const char *name_show(const struct sk_name *n, char *out, size_t size)
{
	size_t i, o = 0;

	if (n->len == 0) {
		snprintf(out, size, "(none)");
		return out;
	}
	for (i = 0; i < n->len && o + 5 < size; i++) {
		uint8_t c = n->b[i];

		if (i == 0 && c == 0)
			out[o++] = '@';
		else if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

static socklen_t name_addr(const struct sk_name *n, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, n->b, n->len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n->len);
}

/* ---- policy: rename lines ---- */

struct rename {
	struct sk_name from, to;
};

static struct {
	int loaded;
	struct rename *r;
	size_t n;
} policy;

/* policy_name parses a name as the policy writes it: "@x" is abstract. */
static int policy_name(const char *tok, struct sk_name *n)
{
	size_t len = strlen(tok);

	if (len == 0 || len > GS_NAME_MAX)
		return -1;
	if (tok[0] == '@') {
		n->b[0] = 0;
		memcpy(n->b + 1, tok + 1, len - 1);
	} else {
		memcpy(n->b, tok, len);
	}
	n->len = len;
	return 0;
}

static int policy_parse(const char *path, char *text)
{
	char *line, *next;
	int lineno = 0;

	for (line = text; line; line = next) {
		char *tok[4], *save = NULL, *t, *hash;
		int ntok = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		for (t = strtok_r(line, " \t\r", &save); t && ntok < 4; t = strtok_r(NULL, " \t\r", &save))
			tok[ntok++] = t;
		if (ntok == 0 || strcmp(tok[0], "rename") != 0)
			continue; /* the other directives matter on dump only */
		if (ntok != 3) {
			gs_err("policy %s:%d: rename wants two names: rename FROM TO", path, lineno);
			return -EINVAL;
		}
		{
			struct rename r, *grown;

			if (policy_name(tok[1], &r.from) || policy_name(tok[2], &r.to)) {
				gs_err("policy %s:%d: a name is empty or longer than %zu bytes", path, lineno, GS_NAME_MAX);
				return -EINVAL;
			}
			grown = realloc(policy.r, (policy.n + 1) * sizeof(*grown));
			if (!grown)
				return -ENOMEM;
			policy.r = grown;
			policy.r[policy.n++] = r;
		}
	}
	return 0;
}

int gs_policy_load(void)
{
	const char *path = getenv(GOSOCCR_POLICY_ENV);
	struct stat st;
	char *text;
	ssize_t got;
	int fd, ret;

	if (policy.loaded)
		return 0;
	if (!path || !path[0]) {
		policy.loaded = 1;
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		gs_err("policy %s (from $%s): %s", path, GOSOCCR_POLICY_ENV, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > GS_POLICY_MAX) {
		gs_err("policy %s: not a regular file of at most %u bytes", path, GS_POLICY_MAX);
		close(fd);
		return -EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		return -ENOMEM;
	}
	got = pread(fd, text, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		gs_err("policy %s: short read", path);
		free(text);
		return -EIO;
	}
	text[got] = '\0';
	ret = policy_parse(path, text);
	free(text);
	if (ret < 0) {
		gs_policy_free();
		return ret;
	}
	policy.loaded = 1;
	gs_debug("policy %s: %zu rename lines", path, policy.n);
	return 0;
}

void gs_policy_free(void)
{
	free(policy.r);
	policy.r = NULL;
	policy.n = 0;
	policy.loaded = 0;
}

static const struct sk_name *policy_rename(const struct sk_name *peer)
{
	size_t i;

	for (i = 0; i < policy.n; i++)
		if (policy.r[i].from.len == peer->len && memcmp(policy.r[i].from.b, peer->b, peer->len) == 0)
			return &policy.r[i].to;
	return peer;
}

/* ---- the image ---- */

struct image {
	uint8_t *buf;
	size_t len;
	struct usk self, peer;
};

/* read_image reads gosoccr-unixsk-<id>.img. Returns 0, -ENOTSUP when
 * there is none, or -errno (logged). */
static int read_image(unsigned int id, struct image *img)
{
	crp_get_image_dir_fn *get_dir;
	char name[64];
	struct stat st;
	size_t off;
	int dfd, fd, found = 0;
	ssize_t got;

	get_dir = (crp_get_image_dir_fn *)dlsym(RTLD_DEFAULT, "criu_get_image_dir");
	if (!get_dir) {
		gs_err("unix socket %u: image: criu_get_image_dir is not in this process", id);
		return -ENOSYS;
	}
	dfd = get_dir();
	if (dfd < 0) {
		gs_err("unix socket %u: image: no images directory (%d)", id, dfd);
		return -EBADF;
	}
	snprintf(name, sizeof(name), GOSOCCR_IMG_UNIXSK_FMT, id);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		if (err == ENOENT) {
			gs_debug("unix socket %u: no %s: not ours", id, name);
			return -ENOTSUP;
		}
		gs_err("unix socket %u: image: open %s: %s", id, name, strerror(err));
		return -err;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 8 || st.st_size > GS_IMG_MAX) {
		gs_err("unix socket %u: image: %s is not a regular file of 8 to %u bytes", id, name, GS_IMG_MAX);
		close(fd);
		return -EINVAL;
	}
	img->buf = malloc((size_t)st.st_size);
	if (!img->buf) {
		close(fd);
		return -ENOMEM;
	}
	got = pread(fd, img->buf, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		gs_err("unix socket %u: image: %s: short read", id, name);
		return -EIO;
	}
	img->len = (size_t)got;

	if (le_bytes(img->buf, 4) != GOSOCCR_IMG_COMMON_MAGIC || le_bytes(img->buf + 4, 4) != GOSOCCR_IMG_UNIXSK_MAGIC) {
		gs_err("unix socket %u: image: %s: bad magic %#x %#x", id, name,
		       (unsigned int)le_bytes(img->buf, 4), (unsigned int)le_bytes(img->buf + 4, 4));
		return -EINVAL;
	}
	/* Every entry is decoded, so damage anywhere is found; ours is the one
	 * whose id is the hook's, the peer's comes after. */
	for (off = 8; off < img->len;) {
		struct usk e;
		const char *why;
		size_t n;

		if (img->len - off < 4) {
			gs_err("unix socket %u: image: %s: truncated length at offset %zu", id, name, off);
			return -EINVAL;
		}
		n = (size_t)le_bytes(img->buf + off, 4);
		off += 4;
		if (n > img->len - off) {
			gs_err("unix socket %u: image: %s: entry of %zu bytes at offset %zu, past the end (%zu bytes)",
			       id, name, n, off, img->len);
			return -EINVAL;
		}
		if (decode_usk(img->buf + off, n, &e, &why)) {
			gs_err("unix socket %u: image: %s: entry at offset %zu: %s", id, name, off, why);
			return -EINVAL;
		}
		off += n;
		if (!(found & 1) && e.id == id) {
			img->self = e;
			found |= 1;
		} else if ((found & 1) && !(found & 2) && e.id == img->self.peer) {
			img->peer = e;
			found |= 2;
		}
	}
	if (found != 3) {
		gs_err("unix socket %u: image: %s: %s", id, name,
		       !(found & 1) ? "no entry for this socket" : "no entry for its peer");
		return -EINVAL;
	}
	return 0;
}

/* ---- credentials of this thread ---- */

/* The raw system calls change the calling thread only; glibc's wrappers
 * would change every thread of the process. */
struct ids {
	uid_t ruid, euid, suid, fsuid;
	gid_t rgid, egid, sgid, fsgid;
	int ngroups;
	gid_t *groups;
	int switched;
};

static int ids_switch(struct ids *s, uid_t uid, gid_t gid)
{
	memset(s, 0, sizeof(*s));
	if (syscall(SYS_getresuid, &s->ruid, &s->euid, &s->suid) || syscall(SYS_getresgid, &s->rgid, &s->egid, &s->sgid))
		return -errno;
	/* setfsuid(-1) changes nothing and returns the current value. */
	s->fsuid = (uid_t)syscall(SYS_setfsuid, (uid_t)-1);
	s->fsgid = (gid_t)syscall(SYS_setfsgid, (gid_t)-1);
	if (s->euid == uid && s->egid == gid && s->fsuid == uid && s->fsgid == gid)
		return 0;

	s->ngroups = (int)syscall(SYS_getgroups, 0, NULL);
	if (s->ngroups < 0)
		return -errno;
	if (s->ngroups) {
		s->groups = calloc((size_t)s->ngroups, sizeof(gid_t));
		if (!s->groups)
			return -ENOMEM;
		if (syscall(SYS_getgroups, s->ngroups, s->groups) != s->ngroups) {
			free(s->groups);
			s->groups = NULL;
			return -EIO;
		}
	}
	s->switched = 1;
	/* Groups first: once the uid is not root any more, they cannot change. */
	if (syscall(SYS_setgroups, 1, &gid) || syscall(SYS_setresgid, (gid_t)-1, gid, (gid_t)-1) ||
	    syscall(SYS_setresuid, (uid_t)-1, uid, (uid_t)-1))
		return -errno;
	return 0;
}

/* ids_restore switches back. Returns 0, or -errno: the thread then has
 * the wrong ids and the restore must fail. */
static int ids_restore(struct ids *s)
{
	int ret = 0;

	if (!s->switched)
		return 0;
	if (syscall(SYS_setresuid, s->ruid, s->euid, s->suid) ||
	    syscall(SYS_setresgid, s->rgid, s->egid, s->sgid) ||
	    syscall(SYS_setgroups, s->ngroups, s->groups))
		ret = -errno;
	if (!ret) {
		syscall(SYS_setfsuid, s->fsuid);
		syscall(SYS_setfsgid, s->fsgid);
		if ((uid_t)syscall(SYS_setfsuid, (uid_t)-1) != s->fsuid ||
		    (gid_t)syscall(SYS_setfsgid, (gid_t)-1) != s->fsgid)
			ret = -EPERM;
	}
	free(s->groups);
	s->groups = NULL;
	s->switched = 0;
	return ret;
}

/* ---- the socket ---- */

struct restore {
	unsigned int id;
	const struct usk *self;
	struct sk_name ours, peer;
	char ours_s[GS_NAME_MAX * 4 + 2], peer_s[GS_NAME_MAX * 4 + 2];
	int sk;
};

#define rs_err(rs, step, err)                                                                  \
	gs_err("unix socket %u (name %s, peer %s): %s: %s", (rs)->id, (rs)->ours_s, (rs)->peer_s, \
	       (step), strerror(err))

static int set_int(int sk, int opt, int v)
{
	return setsockopt(sk, SOL_SOCKET, opt, &v, sizeof(v)) ? -errno : 0;
}

static int set_timeout(int sk, int opt, uint64_t sec, uint64_t usec)
{
	struct timeval tv;

	if (usec >= 1000000 || sec > INT32_MAX)
		return -EINVAL;
	tv.tv_sec = (time_t)sec;
	tv.tv_usec = (suseconds_t)usec;
	return setsockopt(sk, SOL_SOCKET, opt, &tv, sizeof(tv)) ? -errno : 0;
}

/* apply_opts sets the options that CRIU's image records. The kernel
 * doubles a buffer size on the way in and reports the doubled value, so
 * half of what was dumped is set. */
static int apply_opts(struct restore *rs)
{
	const struct usk_opts *o = &rs->self->opts;
	int ret = 0;

	if (o->sndbuf && (ret = set_int(rs->sk, SO_SNDBUF, (int)(o->sndbuf / 2))))
		rs_err(rs, "SO_SNDBUF", -ret);
	else if (o->rcvbuf && (ret = set_int(rs->sk, SO_RCVBUF, (int)(o->rcvbuf / 2))))
		rs_err(rs, "SO_RCVBUF", -ret);
	else if ((ret = set_timeout(rs->sk, SO_RCVTIMEO, o->rcv_sec, o->rcv_usec)))
		rs_err(rs, "SO_RCVTIMEO", -ret);
	else if (o->passcred >= 0 && (ret = set_int(rs->sk, SO_PASSCRED, o->passcred)))
		rs_err(rs, "SO_PASSCRED", -ret);
	return ret;
}

/* bind_ours binds our own name. A socket file left at a path name by the
 * dumped task is removed first; anything else there is left alone. */
static int bind_ours(struct restore *rs)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct stat st;

	if (rs->ours.len == 0)
		return 0;
	len = name_addr(&rs->ours, &sa);
	if (rs->ours.b[0] != 0) {
		char path[GS_NAME_MAX + 1];

		memcpy(path, rs->ours.b, rs->ours.len);
		path[rs->ours.len] = '\0';
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				rs_err(rs, "bind: the path exists and is not a socket", EADDRINUSE);
				return -EADDRINUSE;
			}
			if (unlink(path) && errno != ENOENT) {
				int err = errno;

				rs_err(rs, "bind: remove the stale socket file", err);
				return -err;
			}
		}
	}
	if (bind(rs->sk, (struct sockaddr *)&sa, len)) {
		int err = errno;

		rs_err(rs, "bind", err);
		return -err;
	}
	return 0;
}

static int connect_peer(struct restore *rs)
{
	struct sockaddr_un sa;
	socklen_t len = name_addr(&rs->peer, &sa);
	int ret;

	/* A full backlog makes connect() wait, as long as SO_SNDTIMEO says. */
	ret = set_timeout(rs->sk, SO_SNDTIMEO, GS_CONNECT_TIMEOUT_SEC, 0);
	if (ret) {
		rs_err(rs, "connect: SO_SNDTIMEO", -ret);
		return ret;
	}
	if (connect(rs->sk, (struct sockaddr *)&sa, len)) {
		int err = errno;

		rs_err(rs, err == EAGAIN ? "connect: the server does not accept" : "connect", err);
		return -err;
	}
	return 0;
}

/* bind_and_connect runs with the owner's ids. */
static int bind_and_connect(struct restore *rs)
{
	struct ids ids;
	int ret, back;

	ret = ids_switch(&ids, rs->self->uid, rs->self->gid);
	if (ret) {
		char step[64];

		snprintf(step, sizeof(step), "owner: switch to uid %u gid %u", rs->self->uid, rs->self->gid);
		rs_err(rs, step, -ret);
	} else {
		ret = bind_ours(rs);
		if (!ret)
			ret = connect_peer(rs);
	}
	back = ids_restore(&ids);
	if (back) {
		rs_err(rs, "ids: cannot switch back to the restorer's ids, the restore must stop", -back);
		return back;
	}
	return ret;
}

static int finish(struct restore *rs)
{
	static const int how[] = { -1, SHUT_RD, SHUT_WR, SHUT_RDWR };
	const struct usk *e = rs->self;
	int ret, fl;

	ret = set_timeout(rs->sk, SO_SNDTIMEO, e->opts.snd_sec, e->opts.snd_usec);
	if (ret) {
		rs_err(rs, "SO_SNDTIMEO", -ret);
		return ret;
	}
	if (e->shutdown && shutdown(rs->sk, how[e->shutdown])) {
		ret = -errno;
		rs_err(rs, "shutdown", -ret);
		return ret;
	}
	if (e->flags & O_NONBLOCK) {
		fl = fcntl(rs->sk, F_GETFL);
		if (fl < 0 || fcntl(rs->sk, F_SETFL, fl | O_NONBLOCK)) {
			ret = -errno;
			rs_err(rs, "O_NONBLOCK", -ret);
			return ret;
		}
	}
	return 0;
}

/* check_entry refuses, before anything is created, what the image asks
 * for and no socket can be: every later step may then assume sane values. */
static int check_entry(struct restore *rs)
{
	const struct usk *e = rs->self;
	const char *why = NULL;
	char step[96];

	if (e->type != SOCK_STREAM && e->type != SOCK_DGRAM && e->type != SOCK_SEQPACKET)
		why = "a socket type other than stream, dgram or seqpacket";
	else if (rs->peer.len == 0)
		why = "the peer has no name, it cannot be reached again";
	else if (e->shutdown > 3)
		why = "an unknown shutdown state";
	else if (e->opts.snd_usec >= 1000000 || e->opts.rcv_usec >= 1000000 ||
		 e->opts.snd_sec > INT32_MAX || e->opts.rcv_sec > INT32_MAX)
		why = "a timeout out of range";
	else if (!e->have_perms)
		why = "no owner (file_perms)";
	if (!why)
		return 0;
	snprintf(step, sizeof(step), "image: %s (type %u, shutdown %u)", why, e->type, e->shutdown);
	rs_err(rs, step, EINVAL);
	return -EINVAL;
}

int gs_restore_unix_sk(unsigned int id)
{
	struct image img = { 0 };
	struct restore rs = { .id = id, .sk = -1 };
	const struct sk_name *to;
	int ret;

	snprintf(rs.ours_s, sizeof(rs.ours_s), "?");
	snprintf(rs.peer_s, sizeof(rs.peer_s), "?");
	ret = read_image(id, &img);
	if (ret)
		goto out;
	rs.self = &img.self;
	if (name_set(&rs.ours, img.self.name, img.self.name_len) ||
	    name_set(&rs.peer, img.peer.name, img.peer.name_len)) {
		gs_err("unix socket %u: image: a path name with a NUL inside", id);
		ret = -EINVAL;
		goto out;
	}
	name_show(&rs.ours, rs.ours_s, sizeof(rs.ours_s));
	name_show(&rs.peer, rs.peer_s, sizeof(rs.peer_s));
	ret = check_entry(&rs);
	if (ret)
		goto out;

	ret = gs_policy_load();
	if (ret)
		goto out;
	to = policy_rename(&rs.peer);
	if (to != &rs.peer) {
		char was[sizeof(rs.peer_s)];

		memcpy(was, rs.peer_s, sizeof(was));
		rs.peer = *to;
		name_show(&rs.peer, rs.peer_s, sizeof(rs.peer_s));
		gs_info("unix socket %u: peer %s renamed to %s by the policy", id, was, rs.peer_s);
	}

	rs.sk = socket(AF_UNIX, (int)img.self.type, 0);
	if (rs.sk < 0) {
		ret = -errno;
		rs_err(&rs, "socket", -ret);
		goto out;
	}
	ret = apply_opts(&rs);
	if (!ret)
		ret = bind_and_connect(&rs);
	if (!ret)
		ret = finish(&rs);
	if (ret)
		goto out;
	gs_info("unix socket %u (name %s): connected to %s", id, rs.ours_s, rs.peer_s);
	ret = rs.sk;
	rs.sk = -1;
out:
	if (rs.sk >= 0)
		close(rs.sk);
	free(img.buf);
	return ret;
}

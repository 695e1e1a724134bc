/*
 * usclient: the process that the end-to-end tests checkpoint with CRIU. It
 * holds one unix socket connected to a server outside the dump and talks
 * with it until killed:
 *
 *   usclient stream|seqpacket|dgram PEER [OWN]
 *
 * PEER and OWN are socket names, "@name" for an abstract one; OWN, if
 * given, is bound before connecting. PEER "fd:N" uses the already
 * connected socket N instead (one end of a socketpair, say). stream and seqpacket: every line
 * "ping N" read is answered "pong N" on the same socket; a line "hold"
 * makes the client stop reading for 5 seconds. dgram: "log N" is sent
 * every 20 ms, N counting up. Errors are written to stderr and the client
 * goes on: after a restore its socket is a new one.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static socklen_t fill(struct sockaddr_un *a, const char *name)
{
	size_t n = strlen(name);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (n >= sizeof(a->sun_path)) {
		fprintf(stderr, "usclient: name too long: %s\n", name);
		exit(2);
	}
	memcpy(a->sun_path, name, n);
	if (name[0] == '@')
		a->sun_path[0] = '\0';
	else
		n++;
	return offsetof(struct sockaddr_un, sun_path) + n;
}

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	struct sockaddr_un a;
	socklen_t len;
	int type, fd;

	if (argc < 3) {
		fprintf(stderr, "usage: usclient stream|seqpacket|dgram PEER [OWN]\n");
		return 2;
	}
	if (!strcmp(argv[1], "stream"))
		type = SOCK_STREAM;
	else if (!strcmp(argv[1], "seqpacket"))
		type = SOCK_SEQPACKET;
	else
		type = SOCK_DGRAM;
	if (!strncmp(argv[2], "fd:", 3)) {
		fd = atoi(argv[2] + 3);
		goto connected;
	}
	fd = socket(AF_UNIX, type, 0);
	if (fd < 0) {
		perror("usclient: socket");
		return 1;
	}
	if (argc > 3) {
		len = fill(&a, argv[3]);
		if (bind(fd, (struct sockaddr *)&a, len)) {
			perror("usclient: bind");
			return 1;
		}
	}
	len = fill(&a, argv[2]);
	if (connect(fd, (struct sockaddr *)&a, len)) {
		perror("usclient: connect");
		return 1;
	}
connected:
	printf("usclient: connected\n");
	fflush(stdout);

	if (type == SOCK_DGRAM) {
		for (unsigned long n = 0;; n++) {
			char msg[64];
			int l = snprintf(msg, sizeof(msg), "log %lu", n);

			if (send(fd, msg, l, 0) < 0)
				fprintf(stderr, "usclient: send: %s\n", strerror(errno));
			nap(20);
		}
	}

	char buf[4096];
	size_t have = 0;
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (r <= 0) {
			/* The server closed this connection (it is a new one
			 * after a restore, or the peer went away): wait. */
			nap(50);
			continue;
		}
		have += r;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = memchr(line, '\n', buf + have - line))) {
			*nl = '\0';
			if (!strncmp(line, "ping ", 5)) {
				char out[80];
				int l = snprintf(out, sizeof(out), "pong %s\n", line + 5);

				if (write(fd, out, l) != l)
					fprintf(stderr, "usclient: write: %s\n", strerror(errno));
			} else if (!strcmp(line, "hold")) {
				nap(5000);
			}
			line = nl + 1;
		}
		have = buf + have - line;
		memmove(buf, line, have);
	}
}

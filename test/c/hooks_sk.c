/*
 * hooks_sk: a tool's use of libgosoccr.so's socket entry points
 * (include/gosoccr.h): gosoccr_dump_sk writes the images of a TCP
 * connection with data queued both ways and of an external unix socket,
 * the originals are closed, gosoccr_restore_sk brings both back in the
 * same process, and the byte streams go on: every byte once, in order.
 * Sockets that are not ours, and ids without images, are -ENOTSUP.
 */
#include "tcp_pair.h"
#include "gosoccr.h"
#include <sys/stat.h>
#include <sys/un.h>

/* drain reads direction dir from fd until want bytes (in all) arrived and
 * checks each against the pattern. */
static void drain(int fd, int dir, size_t *got, size_t want)
{
	uint8_t buf[65536];
	double end = h_now_us() + 15e6;

	while (*got < want) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;
		long long bad;

		H_CHECK(h_now_us() < end, "dir %d: %zu of %zu bytes at timeout", dir, *got, want);
		poll(&pfd, 1, 50);
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		H_CHECK(r > 0, "dir %d: recv after %zu bytes: %s", dir, *got, r ? strerror(errno) : "EOF");
		bad = h_check_pattern(buf, (size_t)r, dir, *got);
		H_CHECK(bad < 0, "dir %d: wrong byte at offset %lld", dir, bad);
		*got += (size_t)r;
		H_CHECK(*got <= want, "dir %d: %zu bytes, more than the %zu sent", dir, *got, want);
	}
}

int main(void)
{
	struct pair_opts o = { .kind = PAIR_V4, .srv_rcvbuf = 4096 };
	struct pair p;
	struct sockaddr_un su = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/gosoccr-hooks-sk-XXXXXX";
	size_t up = 0, down = 0, got_up = 0, got_down = 0;
	int dirfd, port, fd, udp, ul, uc, ua;
	struct stat st;

	h_begin(1);
	H_CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	dirfd = H_SYS(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	H_CHECK(gosoccr_set_images_dir(dirfd) == 0, "gosoccr_set_images_dir");

	/* Not ours: a UDP socket, an id without images. */
	udp = H_SYS(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
	H_CHECK(gosoccr_dump_sk(udp, 1) == -ENOTSUP, "dump of a UDP socket is not -ENOTSUP");
	close(udp);
	H_CHECK(gosoccr_restore_sk(1) == -ENOTSUP, "restore without images is not -ENOTSUP");

	/* TCP: bytes unread by the client, and bytes it could not send. */
	port = pair_listen(&p, &o);
	pair_connect(&p, &o, port);
	down += write_pattern(p.srv, 1, down, 30000, 5000);
	up += write_pattern(p.cli, 0, up, 60000, 200);
	for (int i = 0; ioctl_int(p.cli, SIOCINQ) < (int)down; i++) {
		H_CHECK(i < 5000, "the client's receive queue does not fill");
		usleep(1000);
	}
	H_CHECK(ioctl_int(p.cli, SIOCOUTQNSD) > 0, "no unsent bytes in the client's send queue");
	H_CHECK(gosoccr_dump_sk(p.cli, 4242) == 0, "gosoccr_dump_sk of the TCP client failed");
	close(p.cli); /* in repair mode: the server sees nothing */
	fd = gosoccr_restore_sk(4242);
	H_CHECK(fd >= 0, "gosoccr_restore_sk: %s", strerror(-fd));
	H_CHECK(tcp_state(fd) == 1, "restored socket in state %d", tcp_state(fd));
	p.cli = fd;
	up += write_pattern(p.cli, 0, up, 20000, 0);
	down += write_pattern(p.srv, 1, down, 20000, 0);
	drain(p.srv, 0, &got_up, up);
	drain(p.cli, 1, &got_down, down);
	close(p.cli);
	close(p.srv);
	close(p.lfd);

	/* An external unix socket: a new connection to the same server. */
	snprintf(su.sun_path, sizeof(su.sun_path), "%s/srv.sock", dir);
	ul = H_SYS(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	H_SYS(bind(ul, (struct sockaddr *)&su, sizeof(su)));
	H_SYS(listen(ul, 4));
	uc = H_SYS(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	H_SYS(connect(uc, (struct sockaddr *)&su, sizeof(su)));
	ua = H_SYS(accept4(ul, NULL, NULL, SOCK_CLOEXEC));
	H_SYS(fstat(uc, &st));
	H_CHECK(gosoccr_dump_sk(uc, (int)st.st_ino) == 0, "gosoccr_dump_sk of the unix socket failed");
	close(uc);
	close(ua);
	fd = gosoccr_restore_sk((int)st.st_ino);
	H_CHECK(fd >= 0, "gosoccr_restore_sk of the unix socket: %s", strerror(-fd));
	ua = H_SYS(accept4(ul, NULL, NULL, SOCK_CLOEXEC));
	H_SYS(write(fd, "hi", 2));
	{
		char b[4] = { 0 };

		H_CHECK(read(ua, b, sizeof(b)) == 2 && !memcmp(b, "hi", 2), "the server did not get the bytes");
	}
	close(fd);
	close(ua);
	close(ul);

	/* A damaged image: -EBADMSG, nothing left open. */
	{
		int bad = H_SYS(openat(dirfd, "gosoccr-tcp-stream-7.img", O_WRONLY | O_CREAT | O_CLOEXEC, 0600));

		H_SYS(write(bad, "\x19\x43\x56\x54\x06\x55\x46\x51\xff", 9));
		close(bad);
		H_CHECK(gosoccr_restore_sk(7) == -EBADMSG, "a damaged image is not -EBADMSG");
	}

	close(dirfd);
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		H_CHECK(system(cmd) == 0, "rm %s", dir);
	}
	printf("verified %zu bytes up, %zu down\n", got_up, got_down);
	h_end();
	return 0;
}

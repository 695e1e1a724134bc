/*
 * criutcprestore: a custom restore tool in C over libgosoccr.so. It
 * restores one TCP connection out of a directory written by `criu dump
 * --tcp-established` with gosoccr_restore_tcp_from_criu() and hands the new
 * socket to the test over the unix socket it inherited as fd 3
 * (SCM_RIGHTS), then exits.
 *
 * Usage: criutcprestore IMAGES-DIR INODE
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gosoccr.h"

static int send_fd(int via, int fd)
{
	char byte = 'f';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	memset(&u, 0, sizeof(u));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(via, &msg, 0) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	int dirfd, fd;

	if (argc != 3) {
		fprintf(stderr, "usage: criutcprestore IMAGES-DIR INODE\n");
		return 2;
	}
	dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		perror("criutcprestore: open");
		return 1;
	}
	fd = gosoccr_restore_tcp_from_criu(dirfd, (uint32_t)strtoul(argv[2], NULL, 0));
	close(dirfd);
	if (fd < 0) {
		fprintf(stderr, "criutcprestore: gosoccr_restore_tcp_from_criu: %s\n", strerror(-fd));
		return 1;
	}
	if (send_fd(3, fd) < 0) {
		perror("criutcprestore: sendmsg");
		return 1;
	}
	close(fd);
	return 0;
}

/*
 * tcpclient: the process whose TCP connection the interop tests dump with
 * real CRIU. It connects to 127.0.0.1:PORT, writes up to MAX bytes of the
 * client's stream (direction 1 of internal/stream: every byte a function of
 * its offset) without blocking, until the peer's window and its own send
 * buffer are full, prints "wrote N" on stdout, and then sleeps without ever
 * reading: whatever the peer sends stays in its receive queue.
 *
 * Usage: tcpclient PORT MAX
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

/* stream_byte is internal/stream.Byte. */
static unsigned char stream_byte(uint8_t dir, int64_t off)
{
	uint64_t x = (uint64_t)(off >> 3) * 0x9E3779B97F4A7C15ull + (uint64_t)dir * 0xBF58476D1CE4E5B9ull;

	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 29;
	return (unsigned char)(x >> (8 * (off & 7)));
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned char buf[4096];
	long long max, off = 0;
	int fd, idle = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: tcpclient PORT MAX\n");
		return 2;
	}
	sin.sin_port = htons(atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	max = atoll(argv[2]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		perror("tcpclient: connect");
		return 1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* Write until MAX, or until nothing more goes for 300 ms. */
	while (off < max && idle < 3) {
		size_t n = sizeof(buf);
		ssize_t w;

		if ((long long)n > max - off)
			n = max - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = stream_byte(1, off + i);
		w = write(fd, buf, n);
		if (w > 0) {
			off += w;
			idle = 0;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, 100) == 0)
				idle++;
		} else {
			perror("tcpclient: write");
			return 1;
		}
	}
	printf("wrote %lld\n", off);
	fflush(stdout);
	for (;;)
		pause();
}

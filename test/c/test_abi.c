/*
 * test_abi: the layout of every type and the value of every constant of
 * soccr.h, checked at compile time against CRIU's libsoccr ABI, and every
 * prototype checked by assigning the function to a pointer of libsoccr's
 * exact type (-Werror turns a mismatch into a build failure).
 *
 * The runner compiles this file several ways: with glibc's headers (which
 * declare the repair structs), with -std=c11 (glibc hides them), against
 * test/c/fakeinc (a <netinet/tcp.h> without any of them), with the caller
 * defining CONFIG_HAS_TCP_REPAIR{,_WINDOW}, with musl-gcc where present
 * (compile only), and as C++ where g++ is present (compile only).
 */
#include <stddef.h>
#include <stdio.h>
#include "soccr.h"

#ifdef __cplusplus
#define SA static_assert
#else
#define SA _Static_assert
#endif

#define FIELD(T, f, off) SA(offsetof(T, f) == (off), #T "." #f " at " #off); \
	SA(sizeof(((T *)0)->f) == 4, #T "." #f " is 32-bit")

SA(sizeof(struct libsoccr_sk_data) == 68, "libsoccr_sk_data is 17 u32");
FIELD(struct libsoccr_sk_data, state, 0);
FIELD(struct libsoccr_sk_data, inq_len, 4);
FIELD(struct libsoccr_sk_data, inq_seq, 8);
FIELD(struct libsoccr_sk_data, outq_len, 12);
FIELD(struct libsoccr_sk_data, outq_seq, 16);
FIELD(struct libsoccr_sk_data, unsq_len, 20);
FIELD(struct libsoccr_sk_data, opt_mask, 24);
FIELD(struct libsoccr_sk_data, mss_clamp, 28);
FIELD(struct libsoccr_sk_data, snd_wscale, 32);
FIELD(struct libsoccr_sk_data, rcv_wscale, 36);
FIELD(struct libsoccr_sk_data, timestamp, 40);
FIELD(struct libsoccr_sk_data, flags, 44);
FIELD(struct libsoccr_sk_data, snd_wl1, 48);
FIELD(struct libsoccr_sk_data, snd_wnd, 52);
FIELD(struct libsoccr_sk_data, max_window, 56);
FIELD(struct libsoccr_sk_data, rcv_wnd, 60);
FIELD(struct libsoccr_sk_data, rcv_wup, 64);

SA(sizeof(union libsoccr_addr) == sizeof(struct sockaddr_in6), "libsoccr_addr is a sockaddr_in6");
SA(sizeof(union libsoccr_addr) == 28, "libsoccr_addr is 28 bytes");
SA(offsetof(union libsoccr_addr, sa) == 0, "sa at 0");
SA(offsetof(union libsoccr_addr, v4) == 0, "v4 at 0");
SA(offsetof(union libsoccr_addr, v6) == 0, "v6 at 0");

SA(sizeof(struct tcp_repair_window) == 20, "tcp_repair_window is 5 u32");
FIELD(struct tcp_repair_window, snd_wl1, 0);
FIELD(struct tcp_repair_window, snd_wnd, 4);
FIELD(struct tcp_repair_window, max_window, 8);
FIELD(struct tcp_repair_window, rcv_wnd, 12);
FIELD(struct tcp_repair_window, rcv_wup, 16);

SA(sizeof(struct tcp_repair_opt) == 8, "tcp_repair_opt is 2 u32");
FIELD(struct tcp_repair_opt, opt_code, 0);
FIELD(struct tcp_repair_opt, opt_val, 4);

SA(TCP_NO_QUEUE == 0 && TCP_RECV_QUEUE == 1 && TCP_SEND_QUEUE == 2 && TCP_QUEUES_NR == 3, "queue ids");
SA(TCP_TIMESTAMP == 24, "TCP_TIMESTAMP");
SA(TCP_REPAIR_WINDOW == 29, "TCP_REPAIR_WINDOW");
SA(SOCCR_MARK == 0xC114, "SOCCR_MARK");
SA(SOCCR_LOG_ERR == 1 && SOCCR_LOG_DBG == 2, "log levels");
SA(SOCCR_FLAGS_WINDOW == 0x1, "SOCCR_FLAGS_WINDOW");
SA(SOCCR_MEM_EXCL == 0x1, "SOCCR_MEM_EXCL");

/* libsoccr's prototypes, spelled out: a mismatch fails the build. */
static void (*const p_set_log)(unsigned int, void (*)(unsigned int, const char *, ...)) = libsoccr_set_log;
static struct libsoccr_sk *(*const p_pause)(int) = libsoccr_pause;
static void (*const p_resume)(struct libsoccr_sk *) = libsoccr_resume;
static void (*const p_release)(struct libsoccr_sk *) = libsoccr_release;
static int (*const p_save)(struct libsoccr_sk *, struct libsoccr_sk_data *, unsigned) = libsoccr_save;
static char *(*const p_get_queue_bytes)(struct libsoccr_sk *, int, unsigned) = libsoccr_get_queue_bytes;
static union libsoccr_addr *(*const p_get_addr)(struct libsoccr_sk *, int, unsigned) = libsoccr_get_addr;
static int (*const p_set_queue_bytes)(struct libsoccr_sk *, int, char *, unsigned) = libsoccr_set_queue_bytes;
static int (*const p_set_addr)(struct libsoccr_sk *, int, union libsoccr_addr *, unsigned) = libsoccr_set_addr;
static int (*const p_restore)(struct libsoccr_sk *, struct libsoccr_sk_data *, unsigned) = libsoccr_restore;
static int (*const p_get_sk_data)(struct libsoccr_sk *, struct libsoccr_sk_data *, unsigned) = libsoccr_get_sk_data;
static int (*const p_unbound)(struct libsoccr_sk *, struct libsoccr_sk_data *, unsigned) = libsoccr_set_sk_data_unbound;
static int (*const p_noq)(struct libsoccr_sk *, struct libsoccr_sk_data *, unsigned) = libsoccr_set_sk_data_noq;
static int (*const p_set_sk_data)(struct libsoccr_sk *, struct libsoccr_sk_data *, unsigned) = libsoccr_set_sk_data;

int main(void)
{
	/* Linked: every symbol resolves in libgosoccr.so. */
	const void *fns[] = {
		(const void *)p_set_log, (const void *)p_pause, (const void *)p_resume, (const void *)p_release,
		(const void *)p_save, (const void *)p_get_queue_bytes, (const void *)p_get_addr,
		(const void *)p_set_queue_bytes, (const void *)p_set_addr, (const void *)p_restore,
		(const void *)p_get_sk_data, (const void *)p_unbound, (const void *)p_noq, (const void *)p_set_sk_data,
	};

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (!fns[i])
			return 1;
	printf("ok: abi\n");
	return 0;
}

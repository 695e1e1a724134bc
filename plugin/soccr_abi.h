/*
 * Private to plugin/: the layout of the libsoccr handle, shared by the C
 * shims (soccr_abi.c) and the Go exports (soccr_abi.go).
 */
#ifndef GOSOCCR_PLUGIN_SOCCR_ABI_H
#define GOSOCCR_PLUGIN_SOCCR_ABI_H

#include <stdint.h>
#include "soccr.h"

/* Bits of libsoccr_sk.own: which buffers the library must free(). */
enum {
	GOSOCCR_OWN_RQ  = 1 << 0, /* recv_queue */
	GOSOCCR_OWN_SQ  = 1 << 1, /* send_queue */
	GOSOCCR_OWN_SRC = 1 << 2, /* src_addr */
	GOSOCCR_OWN_DST = 1 << 3, /* dst_addr */
};

/* The opaque handle of soccr.h. malloc()-ed by libsoccr_pause, free()-d by
 * libsoccr_resume and libsoccr_release. */
struct libsoccr_sk {
	int fd;
	unsigned own;                  /* GOSOCCR_OWN_* */
	char *recv_queue;              /* from save, or set_queue_bytes */
	char *send_queue;
	union libsoccr_addr *src_addr; /* from get_addr, or set_addr */
	union libsoccr_addr *dst_addr;
	uintptr_t conn;                /* runtime/cgo.Handle of the *soccr.Conn; 0: none */
	int staged;                    /* older API: set_sk_data_unbound/_noq seen */
};

/* Logging for the Go side: whether level is logged, and one line. */
__attribute__((visibility("hidden"))) int gosoccr_log_enabled(unsigned level);
__attribute__((visibility("hidden"))) void gosoccr_log_str(unsigned level, const char *msg);

#endif

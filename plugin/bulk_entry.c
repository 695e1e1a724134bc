/*
 * The bulk TCP entry points of libgosoccr.so (include/gosoccr.h): C names
 * that forward to the Go exports of bulk_entry.go, and the blocks that hold
 * the queue bytes of gosoccr_checkpoint_all.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <sys/mman.h>

#include "_cgo_export.h"
#include "bulk_entry.h"

int gosoccr_checkpoint_all(struct gosoccr_tcp_conn *conns, size_t n)
{
	return gosoccrCheckpointAll(conns, n, 0);
}

int gosoccr_checkpoint_close_all(struct gosoccr_tcp_conn *conns, size_t n)
{
	return gosoccrCheckpointAll(conns, n, 1);
}

int gosoccr_restore_all(struct gosoccr_tcp_conn *conns, size_t n)
{
	return gosoccrRestoreAll(conns, n, 0);
}

int gosoccr_restore_unlock_all(struct gosoccr_tcp_conn *conns, size_t n)
{
	return gosoccrRestoreAll(conns, n, 1);
}

/*
 * A queue block is one anonymous mapping: struct qblock, then queues, each
 * after a QBLOCK_PREFIX-byte slot holding the address of its block. Its
 * pages are the kernel's 4 KiB ones: transparent huge pages were tried, and
 * on these virtual machines the first touch of a huge page stalls every
 * thread writing into it for up to milliseconds (the checkpoint of 1,000
 * connections with 16 KiB queues took 12 to 37 us each, against 14 to 17
 * with 4 KiB pages).
 */
void *gosoccr_qblock_new(size_t size)
{
	struct qblock *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED)
		return NULL;
	atomic_init(&b->refs, 0);
	b->size = size;
	return b;
}

void gosoccr_qblock_unmap(void *blk)
{
	struct qblock *b = blk;

	munmap(b, b->size);
}

void gosoccr_free_queue(char *q)
{
	struct qblock *b;

	if (!q)
		return;
	b = *(struct qblock **)(q - QBLOCK_PREFIX);
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		munmap(b, b->size);
}

void gosoccr_free_queues(struct gosoccr_tcp_conn *conns, size_t n)
{
	for (size_t i = 0; conns && i < n; i++) {
		gosoccr_free_queue(conns[i].recv_queue);
		gosoccr_free_queue(conns[i].send_queue);
		conns[i].recv_queue = conns[i].send_queue = NULL;
	}
}

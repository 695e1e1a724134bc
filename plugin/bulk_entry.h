/*
 * Private to plugin/: the queue blocks of gosoccr_checkpoint_all, shared
 * by bulk_entry.c (mapping, freeing) and bulk_entry.go (carving).
 */
#ifndef GOSOCCR_PLUGIN_BULK_ENTRY_H
#define GOSOCCR_PLUGIN_BULK_ENTRY_H

#include <stdatomic.h>
#include <stddef.h>

/* The head of a block. refs counts the queues handed out of it (set by the
 * Go side before gosoccr_checkpoint_all returns); the queue that drops it
 * to 0 unmaps the block. */
struct qblock {
	atomic_long refs;
	size_t size; /* of the whole mapping */
};

/* Each queue is preceded by this many bytes, the first of them the address
 * of its struct qblock; it keeps the queues 16-byte aligned. */
#define QBLOCK_PREFIX 16

/* A new block of size bytes (refs 0), or NULL. */
__attribute__((visibility("hidden"))) void *gosoccr_qblock_new(size_t size);
/* Unmaps a block no queue was handed out of. */
__attribute__((visibility("hidden"))) void gosoccr_qblock_unmap(void *blk);

#endif

/*
 * The bulk TCP entry points of libgosoccr.so (include/gosoccr.h): C names
 * that forward to the Go exports of bulk_entry.go.
 */
#include "_cgo_export.h"

int gosoccr_checkpoint_all(struct gosoccr_tcp_conn *conns, size_t n)
{
	return gosoccrCheckpointAll(conns, n);
}

int gosoccr_restore_all(struct gosoccr_tcp_conn *conns, size_t n)
{
	return gosoccrRestoreAll(conns, n, 0);
}

int gosoccr_restore_unlock_all(struct gosoccr_tcp_conn *conns, size_t n)
{
	return gosoccrRestoreAll(conns, n, 1);
}

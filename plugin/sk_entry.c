/*
 * The socket entry points of libgosoccr.so for tools (include/gosoccr.h):
 * C names that forward to the Go exports of sk_entry.go.
 */
#include "_cgo_export.h"

int gosoccr_dump_sk(int fd, int id)
{
	return gosoccrDumpSk(fd, id);
}

int gosoccr_restore_sk(int id)
{
	return gosoccrRestoreSk(id);
}

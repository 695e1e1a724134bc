/*
 * The C name of the interop call of criu_interop.go (include/gosoccr.h).
 */
#include <stdint.h>

#include "_cgo_export.h"

int gosoccr_restore_tcp_from_criu(int dirfd, uint32_t ino)
{
	return gosoccrRestoreTCPFromCRIU(dirfd, ino);
}

/*
 * The C names of the network lock calls of lock_entry.go
 * (include/gosoccr.h).
 */
#include "_cgo_export.h"

int gosoccr_lock(const struct gosoccr_tuple *t, unsigned n)
{
	return gosoccrLock((struct gosoccr_tuple *)t, n);
}

int gosoccr_unlock(const struct gosoccr_tuple *t, unsigned n)
{
	return gosoccrUnlock((struct gosoccr_tuple *)t, n);
}

int gosoccr_lock_cleanup(void)
{
	return gosoccrLockCleanup();
}

/*
 * The C names of the network lock calls of lock_entry.go
 * (include/gosoccr.h).
 */
#include "_cgo_export.h"
#include <errno.h>
#include <stdlib.h>

/* What a struct gosoccr_locker is: the cgo.Handle of a hooks.Locker. */
struct gosoccr_locker {
	uintptr_t handle;
};

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

struct gosoccr_locker *gosoccr_locker_open(void)
{
	struct gosoccr_locker *l = malloc(sizeof(*l));
	int ret;

	if (!l) {
		errno = ENOMEM;
		return NULL;
	}
	ret = gosoccrLockerOpen(&l->handle);
	if (ret < 0) {
		free(l);
		errno = -ret;
		return NULL;
	}
	return l;
}

int gosoccr_locker_lock(struct gosoccr_locker *l, const struct gosoccr_tuple *t, unsigned n)
{
	if (!l)
		return -EINVAL;
	return gosoccrLockerOp(l->handle, 1, (struct gosoccr_tuple *)t, n);
}

int gosoccr_locker_unlock(struct gosoccr_locker *l, const struct gosoccr_tuple *t, unsigned n)
{
	if (!l)
		return -EINVAL;
	return gosoccrLockerOp(l->handle, 0, (struct gosoccr_tuple *)t, n);
}

void gosoccr_locker_close(struct gosoccr_locker *l)
{
	if (!l)
		return;
	gosoccrLockerClose(l->handle);
	free(l);
}

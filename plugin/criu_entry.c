/*
 * The plugin entry points of libgosoccr.so (include/gosoccr.h): C names
 * that forward to the Go exports of criu_entry.go, and the two services
 * Go needs from the criu process, found at run time.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

#include "criu_entry.h"
#include "_cgo_export.h"

int criu_plugin__init(int stage)
{
	return gosoccrPluginInit(stage);
}

void criu_plugin__fini(int stage, int ret)
{
	gosoccrPluginFini(stage, ret);
}

int gosoccr_dump_unix_sk(int fd, int id)
{
	return gosoccrDumpUnixSk(fd, id);
}

static int images_dirfd = -1;

int gosoccr_set_images_dir(int dirfd)
{
	if (dirfd < 0)
		return -9; /* -EBADF */
	images_dirfd = dirfd;
	return 0;
}

int gosoccr_images_dir(void)
{
	int (*get)(void);

	if (images_dirfd >= 0)
		return images_dirfd;
	get = (int (*)(void))dlsym(RTLD_DEFAULT, "criu_get_image_dir");
	return get ? get() : -1;
}

typedef void (*print_fn)(unsigned int, const char *, ...);

void gosoccr_criu_log(unsigned level, const char *msg)
{
	static print_fn print;
	static int looked;

	if (!looked) {
		print = (print_fn)dlsym(RTLD_DEFAULT, "print_on_level");
		looked = 1;
	}
	if (print)
		print(level, "gosoccr: %s\n", msg);
	else
		fprintf(stderr, "gosoccr: %s\n", msg);
}

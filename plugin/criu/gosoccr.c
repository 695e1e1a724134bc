/*
 * gosoccr.c: the CRIU plugin that `criu dump|restore --lib DIR` loads.
 *
 * It holds CRIU's descriptor and two hooks for unix sockets whose peer is
 * outside the dump:
 *   - on dump (and pre-dump) init() loads libgosoccr.so, the Go library,
 *     and DUMP_UNIX_SK forwards to it: Go decides and writes the images;
 *   - on restore the Go runtime is never loaded (inside `criu restore` it
 *     hangs or aborts CRIU, see DESIGN.md), and RESTORE_UNIX_SK re-creates
 *     the socket in plain C from those images (unixsk.c).
 *
 * Where libgosoccr.so is looked for, first found wins:
 *   1. $GOSOCCR_LIBRARY, a path;
 *   2. next to this plugin's file;
 *   3. in the plugin's parent folder: build/criu/gosoccr.so next to
 *      build/libgosoccr.so, or lib/criu/gosoccr.so and lib/libgosoccr.so;
 *   4. "libgosoccr.so" through the dynamic loader's search path.
 * A library that is found but does not load is an error. When none is
 * found the plugin disables itself for the dump with a warning (its hooks
 * say -ENOTSUP), so that CRIU's own handling goes on.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin.h"

#define GOSOCCR_LIB_NAME "libgosoccr.so"

static int gs_init(int stage);
static void gs_exit(int stage, int ret);

/* The hooks are filled in right under their functions, at the end. */
__attribute__((visibility("default")))
struct crp_desc CR_PLUGIN_DESC = {
	.name = "gosoccr", /* recorded in the dump's inventory: keep it */
	.init = gs_init,
	.exit = gs_exit,
	.version = CRP_VERSION(0, 2, 0),
	.max_hooks = CRP_HOOK_COUNT_USED,
};

/* Logging. */

static crp_print_on_level_fn *print_fn;
static int print_looked_up;

void gs_log(int level, const char *fmt, ...)
{
	int saved = errno;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (!print_looked_up) {
		print_fn = (crp_print_on_level_fn *)dlsym(RTLD_DEFAULT, "print_on_level");
		print_looked_up = 1;
	}
	if (print_fn)
		print_fn((unsigned int)level, "gosoccr: %s\n", msg);
	else if (level <= CRP_LOG_INFO)
		fprintf(stderr, "gosoccr: %s\n", msg);
	errno = saved;
}

/* The Go library, loaded on dump only. */

static struct {
	int (*init)(int stage);
	void (*fini)(int stage, int ret);
	int (*dump_unix_sk)(int fd, int id);
	int (*set_images_dir)(int dirfd);
	int active; /* criu_plugin__init succeeded and fini is not called yet */
} go;

/* plugin_dir fills dir with the absolute folder of this plugin's file. */
static int plugin_dir(char *dir, size_t size)
{
	char real[PATH_MAX];
	Dl_info info;
	char *slash;

	if (!dladdr((void *)&CR_PLUGIN_DESC, &info) || !info.dli_fname)
		return -ENOENT;
	if (!realpath(info.dli_fname, real))
		return -errno;
	slash = strrchr(real, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if (snprintf(dir, size, "%s", real[0] ? real : "/") >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* open_go_at dlopen()s the library at path when the file exists.
 * Returns 1 and the handle, 0 when there is no such file, -errno when the
 * file exists but cannot be loaded (logged). */
static int open_go_at(const char *path, void **handle)
{
	if (access(path, F_OK) != 0)
		return 0;
	*handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!*handle) {
		gs_err("cannot load %s: %s", path, dlerror());
		return -ELIBBAD;
	}
	return 1;
}

/* find_go loads libgosoccr.so (see the order at the top of this file).
 * Returns 1 and the handle, 0 when it is nowhere to be found, -errno. */
static int find_go(void **handle, char *where, size_t size)
{
	const char *env = getenv("GOSOCCR_LIBRARY");
	char dir[PATH_MAX];
	int ret;

	if (env && env[0]) {
		snprintf(where, size, "%s", env);
		*handle = dlopen(env, RTLD_NOW | RTLD_LOCAL);
		if (!*handle) {
			gs_err("GOSOCCR_LIBRARY=%s cannot be loaded: %s", env, dlerror());
			return -ELIBACC;
		}
		return 1;
	}

	ret = plugin_dir(dir, sizeof(dir));
	if (ret < 0) {
		gs_debug("cannot tell the plugin's own folder: %s", strerror(-ret));
	} else {
		char *slash;

		if (snprintf(where, size, "%s/%s", dir, GOSOCCR_LIB_NAME) < (int)size) {
			ret = open_go_at(where, handle);
			if (ret)
				return ret;
		}
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			if (snprintf(where, size, "%s/%s", dir, GOSOCCR_LIB_NAME) < (int)size) {
				ret = open_go_at(where, handle);
				if (ret)
					return ret;
			}
		}
	}

	snprintf(where, size, "%s", GOSOCCR_LIB_NAME);
	*handle = dlopen(GOSOCCR_LIB_NAME, RTLD_NOW | RTLD_LOCAL);
	if (!*handle) {
		gs_warn("%s not found (%s): external unix sockets are left to CRIU", GOSOCCR_LIB_NAME, dlerror());
		return 0;
	}
	return 1;
}

/* load_go loads the Go library and starts the stage in it. Returns 0
 * (also when the library is missing: the plugin is then inactive) or
 * -errno. The library is never unloaded: a Go runtime cannot be. */
static int load_go(int stage)
{
	char where[PATH_MAX];
	void *h = NULL;
	int ret;

	ret = find_go(&h, where, sizeof(where));
	if (ret <= 0)
		return ret;

#define GS_RESOLVE(field, sym)                                                           \
	do {                                                                             \
		*(void **)&go.field = dlsym(h, sym);                                     \
		if (!go.field) {                                                         \
			gs_err("%s has no %s: it is older than this plugin", where, sym); \
			return -ENOSYS;                                                  \
		}                                                                        \
	} while (0)
	GS_RESOLVE(init, "criu_plugin__init");
	GS_RESOLVE(fini, "criu_plugin__fini");
	GS_RESOLVE(dump_unix_sk, "gosoccr_dump_unix_sk");
	GS_RESOLVE(set_images_dir, "gosoccr_set_images_dir");
#undef GS_RESOLVE

	ret = go.init(stage);
	if (ret < 0) {
		gs_err("criu_plugin__init(%d) of %s failed: %s", stage, where, strerror(-ret));
		return ret;
	}
	go.active = 1;
	gs_info("loaded %s for stage %d", where, stage);
	return 0;
}

static int gs_init(int stage)
{
	switch (stage) {
	case CRP_STAGE_DUMP:
	case CRP_STAGE_PRE_DUMP:
		return load_go(stage);
	case CRP_STAGE_RESTORE:
		/* Read the policy now, in the criu process, so that a broken
		 * one fails the restore before any task is created. */
		return gs_policy_load();
	default:
		gs_warn("unknown stage %d: the plugin stays inactive", stage);
		return 0;
	}
}

static void gs_exit(int stage, int ret)
{
	if (go.active) {
		go.active = 0;
		go.fini(stage, ret);
	}
	gs_policy_free();
}

static int dump_unix_sk(int fd, int id)
{
	if (!go.active)
		return -ENOTSUP;
	return go.dump_unix_sk(fd, id);
}
CRP_REGISTER_HOOK(CRP_HOOK_DUMP_UNIX_SK, dump_unix_sk)

static int restore_unix_sk(int id)
{
	return gs_restore_unix_sk((unsigned int)id);
}
CRP_REGISTER_HOOK(CRP_HOOK_RESTORE_UNIX_SK, restore_unix_sk)

/*
 * plugin_criu.h: the part of CRIU that a plugin sees, for the plugin
 * harness (static, header only): loading a plugin as CRIU 4.x does, and
 * the two functions of the criu binary that plugins call,
 * criu_get_image_dir() and print_on_level(). The harness is linked with
 * -rdynamic so that the plugin, and the Go library it loads, find these
 * with dlsym(RTLD_DEFAULT).
 *
 * Declared independently of plugin/criu/criu-plugin-abi.h on purpose: the
 * harness checks the plugin against CRIU's layout, not against itself.
 */
#ifndef GOSOCCR_TEST_PLUGIN_CRIU_H
#define GOSOCCR_TEST_PLUGIN_CRIU_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What CRIU 4.0 to 4.2 accept (criu/plugin.c, verify_plugin). */
#define CRIU_PLUGIN_VERSION_MAX ((0 << 16) + (2 << 8) + 0)
#define CRIU_HOOKS_MAX 12 /* CRIU 4.1.1 */
#define CRIU_HOOK_DUMP_UNIX_SK 0
#define CRIU_HOOK_RESTORE_UNIX_SK 1
#define CRIU_STAGE_DUMP 0
#define CRIU_STAGE_PRE_DUMP 1
#define CRIU_STAGE_RESTORE 2

/* cr_plugin_desc_t as CRIU reads it; the hooks array is as long as
 * max_hooks says. */
struct criu_desc {
	const char *name;
	int (*init)(int stage);
	void (*exit)(int stage, int ret);
	unsigned int version;
	unsigned int max_hooks;
	void *hooks[];
};

/* ---- the criu binary's side ---- */

static int criu_images_fd = -1;

int criu_get_image_dir(void)
{
	return criu_images_fd;
}

#define CRIU_LOG_MAX 512
static struct {
	unsigned int level;
	char text[512];
} criu_log[CRIU_LOG_MAX];
static int criu_nlog;

/* print_on_level collects the lines so that tests can look for them, and
 * echoes them for the test's log. */
__attribute__((format(printf, 2, 3)))
void print_on_level(unsigned int level, const char *fmt, ...)
{
	char line[512];
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	if (n == 0 || line[n - 1] != '\n')
		printf("  criu-log: line without a trailing newline\n");
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	printf("  criu-log[%u]: %s\n", level, line);
	if (criu_nlog < CRIU_LOG_MAX) {
		criu_log[criu_nlog].level = level;
		snprintf(criu_log[criu_nlog].text, sizeof(criu_log[0].text), "%s", line);
		criu_nlog++;
	}
}

/* criu_log_find returns the first line at level max_level or more severe
 * (a smaller number) that holds every one of the NULL-terminated strings,
 * or NULL. */
static const char *criu_log_find(unsigned int max_level, ...)
{
	for (int i = 0; i < criu_nlog; i++) {
		const char *s;
		int all = 1;
		va_list ap;

		if (criu_log[i].level > max_level)
			continue;
		va_start(ap, max_level);
		while ((s = va_arg(ap, const char *)))
			if (!strstr(criu_log[i].text, s))
				all = 0;
		va_end(ap);
		if (all)
			return criu_log[i].text;
	}
	return NULL;
}

static void criu_log_clear(void)
{
	criu_nlog = 0;
}

/* ---- loading, as criu/plugin.c does ---- */

struct criu_plugin {
	void *dl;
	struct criu_desc *d;
};

/* criu_plugin_load returns NULL and a reason in why when CRIU would refuse
 * the plugin. */
static int criu_plugin_load(struct criu_plugin *p, const char *path, char *why, size_t size)
{
	p->dl = dlopen(path, RTLD_LAZY);
	if (!p->dl) {
		snprintf(why, size, "dlopen %s: %s", path, dlerror());
		return -1;
	}
	p->d = dlsym(p->dl, "CR_PLUGIN_DESC");
	if (!p->d)
		snprintf(why, size, "no CR_PLUGIN_DESC: CRIU would fall back to legacy names");
	else if (p->d->version > CRIU_PLUGIN_VERSION_MAX)
		snprintf(why, size, "version %#x above CRIU's %#x", p->d->version, CRIU_PLUGIN_VERSION_MAX);
	else if (p->d->max_hooks > CRIU_HOOKS_MAX)
		snprintf(why, size, "max_hooks %u above CRIU's %u", p->d->max_hooks, CRIU_HOOKS_MAX);
	else
		return 0;
	dlclose(p->dl);
	p->dl = NULL;
	return -1;
}

static int criu_plugin_init(struct criu_plugin *p, int stage)
{
	return p->d->init ? p->d->init(stage) : 0;
}

/* criu_plugin_exit calls exit() and unloads the plugin, as CRIU does. */
static void criu_plugin_exit(struct criu_plugin *p, int stage, int ret)
{
	if (p->d->exit)
		p->d->exit(stage, ret);
	dlclose(p->dl);
	p->dl = NULL;
	p->d = NULL;
}

/* run_plugins for one plugin: -ENOTSUP when it has no such hook. */
static int criu_dump_unix_sk(struct criu_plugin *p, int fd, int id)
{
	int (*hook)(int, int);

	if (p->d->max_hooks <= CRIU_HOOK_DUMP_UNIX_SK || !p->d->hooks[CRIU_HOOK_DUMP_UNIX_SK])
		return -95; /* -ENOTSUP */
	*(void **)&hook = p->d->hooks[CRIU_HOOK_DUMP_UNIX_SK];
	return hook(fd, id);
}

static int criu_restore_unix_sk(struct criu_plugin *p, int id)
{
	int (*hook)(int);

	if (p->d->max_hooks <= CRIU_HOOK_RESTORE_UNIX_SK || !p->d->hooks[CRIU_HOOK_RESTORE_UNIX_SK])
		return -95;
	*(void **)&hook = p->d->hooks[CRIU_HOOK_RESTORE_UNIX_SK];
	return hook(id);
}

#endif

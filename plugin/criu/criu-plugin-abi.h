/*
 * criu-plugin-abi.h: the part of CRIU's plugin interface that the gosoccr
 * plugin uses, declared by hand from what CRIU 4.x does at run time (it is
 * not CRIU's header, and includes nothing of CRIU's).
 *
 * How CRIU uses a plugin (criu/plugin.c in CRIU 4.0 to 4.2):
 *   - it dlopen()s every *.so in the --lib folder and looks up the data
 *     symbol CR_PLUGIN_DESC;
 *   - it refuses the plugin ("Corrupted plugin") when desc.version is above
 *     its own plugin version (0.2.0 up to CRIU 4.2) or desc.max_hooks above
 *     its own number of hooks (12 in 4.1.1);
 *   - it calls init(stage), then, for each hook point, the entries
 *     hooks[0 .. max_hooks-1] that are not NULL; it never reads an entry at
 *     or beyond max_hooks, so the array below only needs max_hooks slots;
 *   - a hook that returns -ENOTSUP passes the object on to the next plugin,
 *     and in the end to CRIU's own handling;
 *   - at the end it calls exit(stage, ret) and dlclose()s the plugin.
 *   - The plugin's name is written into the dump's inventory; restore
 *     refuses to run unless a plugin of that name is loaded.
 *
 * Functions of the criu binary that a plugin may call (resolve them with
 * dlsym(RTLD_DEFAULT, ...) so that the plugin also loads outside CRIU):
 *   int  criu_get_image_dir(void);   an fd of the images directory
 *   void print_on_level(unsigned int level, const char *fmt, ...);
 *        a line into CRIU's log; fmt ends with "\n".
 */
#ifndef GOSOCCR_CRIU_PLUGIN_ABI_H
#define GOSOCCR_CRIU_PLUGIN_ABI_H

/* The version is encoded as major << 16 | minor << 8 | sublevel. */
#define CRP_VERSION(major, minor, sub) (((major) << 16) + ((minor) << 8) + (sub))

/* Stages passed to init() and exit(). */
enum {
	CRP_STAGE_DUMP = 0,
	CRP_STAGE_PRE_DUMP = 1,
	CRP_STAGE_RESTORE = 2,
};

/* Hook points: an index into desc.hooks. */
enum {
	CRP_HOOK_DUMP_UNIX_SK = 0,    /* int hook(int fd, int id): 0 handled, -ENOTSUP not ours */
	CRP_HOOK_RESTORE_UNIX_SK = 1, /* int hook(int id): a socket fd, -ENOTSUP not ours */
	CRP_HOOK_COUNT_USED = 2,      /* the hooks gosoccr declares */
};

/* Log levels of print_on_level. */
enum {
	CRP_LOG_MSG = 0,
	CRP_LOG_ERROR = 1,
	CRP_LOG_WARN = 2,
	CRP_LOG_INFO = 3,
	CRP_LOG_DEBUG = 4,
};

typedef int crp_dump_unix_sk_fn(int fd, int id);
typedef int crp_restore_unix_sk_fn(int id);
typedef int crp_get_image_dir_fn(void);
typedef void crp_print_on_level_fn(unsigned int level, const char *fmt, ...);

/* The descriptor, laid out as CRIU reads it: the hooks array is the last
 * member, and CRIU reads only its first max_hooks entries. */
struct crp_desc {
	const char *name;
	int (*init)(int stage);
	void (*exit)(int stage, int ret);
	unsigned int version;
	unsigned int max_hooks;
	void *hooks[CRP_HOOK_COUNT_USED];
};

/* CRIU looks the descriptor up by this exact symbol name. */
extern struct crp_desc CR_PLUGIN_DESC;

/* CRP_REGISTER_HOOK fills hooks[hook] with fn when the plugin is loaded,
 * before dlopen() returns to CRIU: put it right under the hook's function. */
#define CRP_REGISTER_HOOK(hook, fn)                                        \
	static void __attribute__((constructor)) crp_register_##fn(void)   \
	{                                                                  \
		_Static_assert((hook) < CRP_HOOK_COUNT_USED, "hook index"); \
		CR_PLUGIN_DESC.hooks[hook] = (void *)(fn);                 \
	}

#endif

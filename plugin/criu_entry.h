/*
 * Private to plugin/: what the Go exports of criu_entry.go need from C.
 */
#ifndef GOSOCCR_PLUGIN_CRIU_ENTRY_H
#define GOSOCCR_PLUGIN_CRIU_ENTRY_H

/* One line to CRIU's log (print_on_level, found at run time) with the
 * prefix "gosoccr: ", or to stderr outside CRIU. Levels are CRIU's:
 * 1 error, 2 warning, 3 info, 4 debug. */
__attribute__((visibility("hidden"))) void gosoccr_criu_log(unsigned level, const char *msg);

/* The images directory: the descriptor set by gosoccr_set_images_dir, or
 * else CRIU's criu_get_image_dir() where the process is criu; -1 if none.
 * The caller does not close it. */
__attribute__((visibility("hidden"))) int gosoccr_images_dir(void);

#endif

/*
 * plugin.h: what the files of the gosoccr CRIU plugin share. Nothing here
 * is exported from gosoccr.so: the only symbol CRIU sees is CR_PLUGIN_DESC.
 */
#ifndef GOSOCCR_PLUGIN_CRIU_PLUGIN_H
#define GOSOCCR_PLUGIN_CRIU_PLUGIN_H

#include "criu-plugin-abi.h"

#pragma GCC visibility push(hidden)

/* gs_log writes one line into CRIU's log (print_on_level, looked up at run
 * time) with the prefix "gosoccr: ", or on stderr outside CRIU. fmt has no
 * trailing newline. errno is preserved. */
void gs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define gs_err(...)   gs_log(CRP_LOG_ERROR, __VA_ARGS__)
#define gs_warn(...)  gs_log(CRP_LOG_WARN, __VA_ARGS__)
#define gs_info(...)  gs_log(CRP_LOG_INFO, __VA_ARGS__)
#define gs_debug(...) gs_log(CRP_LOG_DEBUG, __VA_ARGS__)

/* gs_policy_load reads the rename lines of the policy named by
 * $GOSOCCR_POLICY (nothing when the variable is unset or empty). A second
 * call does nothing. Returns 0 or -errno (logged). */
int gs_policy_load(void);
/* gs_policy_free forgets what gs_policy_load read. */
void gs_policy_free(void);

/* gs_restore_unix_sk is the RESTORE_UNIX_SK hook: it re-creates the
 * external unix socket whose inode was id from gosoccr-unixsk-<id>.img.
 * Returns the new socket's fd, -ENOTSUP when there is no image of ours
 * for id, or -errno (logged). */
int gs_restore_unix_sk(unsigned int id);

#pragma GCC visibility pop

#endif

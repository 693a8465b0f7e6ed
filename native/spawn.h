/* Spawning children without forking the daemon; see spawn.c. All return 0 or an errno. */
#ifndef BERTH_SPAWN_H
#define BERTH_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/* Called once on the child's waiter thread with its wait status, after it was reaped. */
typedef void (*spawn_exit_fn)(void *ctx, int status);

/*
 * execvpe(file, argv, envp) in a vfork child: the child's fd i is slots[i] (an fd of ours, dup'ed) or
 * /dev/null (slots[i] < 0); every other fd of ours is close-on-exec. Signal dispositions
 * default, mask empty; a new session when `new_session`. `cwd` may be NULL.
 */
int spawn_child(const char *file, char *const argv[], char *const envp[], const char *cwd, const int *slots,
                int nslots, bool new_session, spawn_exit_fn on_exit, void *ctx, pid_t *pid_out);

/* kill(pid, sig) if `pid` is a child of spawn_child not yet reaped; ESRCH otherwise. */
int spawn_kill(pid_t pid, int sig);

#endif

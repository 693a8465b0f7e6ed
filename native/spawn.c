/*
 * Process spawning without fork(2) of the whole daemon: vfork (the child borrows the parent's
 * memory until it execs, so nothing of the parent's ~100 MB is copied, as glibc's posix_spawn;
 * its signal handling is libuv's: every handler default, nothing blocked) and a waiter thread
 * per child that reaps it.
 *
 * libuv reaps only the pids it spawned (waitpid on each of its own), so the children
 * started here must be reaped here. The waiter waits with WNOWAIT first and reaps under
 * the table lock: a kill() under the same lock never reaches a reused pid.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct child {
  pid_t pid;
  bool reaped;
  spawn_exit_fn on_exit;
  void *ctx;
  struct child *next;
} child;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static child *table = NULL;

static void table_remove(child *c) {
  for (child **p = &table; *p != NULL; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      return;
    }
  }
}

static void *waiter_main(void *arg) {
  child *c = arg;
  siginfo_t info;
  int rc;
  do {
    rc = waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOWAIT);
  } while (rc != 0 && errno == EINTR);
  int status = 0;
  pthread_mutex_lock(&table_lock);
  while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
  }
  c->reaped = true;
  table_remove(c);
  pthread_mutex_unlock(&table_lock);
  c->on_exit(c->ctx, status);
  free(c);
  return NULL;
}

/* A copy of `fd` at or above `min`, close-on-exec: dup2 into the child's low slots can then
 * never overwrite a source another slot still needs. */
static int high_dup(int fd, int min) {
  return fcntl(fd, F_DUPFD_CLOEXEC, min);
}

/* The kernel's struct sigaction (x86-64 / arm64 layout, 8-byte mask). */
struct ksigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  unsigned long mask;
};

/* Runs in the vfork child, on the parent's stack and memory: raw syscalls and exec only,
 * no allocation, no glibc locks; the outcome goes back through *err (shared memory). */
static void exec_child(const char *file, char *const argv[], char *const envp[], const char *cwd, const int *src,
                       int nslots, bool new_session, volatile int *err) {
  /* Every handler back to default, 1..64 (glibc's own sigaction refuses its internal
   * signals 32 and 33, and posix_spawn leaves those ignored: they would reach the container). */
  struct ksigaction dfl = {SIG_DFL, 0, NULL, 0};
  for (int sig = 1; sig <= 64; sig++) {
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
  }
  for (int i = 0; i < nslots; i++) {
    int fd = src[i];
    if (fd < 0 && (fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) goto fail;
    if (dup2(fd, i) < 0) goto fail;
  }
  if (new_session && setsid() < 0) goto fail;
  if (cwd != NULL && chdir(cwd) != 0) goto fail;
  unsigned long none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
  execvpe(file, argv, envp);
fail:
  *err = errno != 0 ? errno : EINVAL;
  _exit(127);
}

/* vfork + exec_child in a frame of its own, so no variable of the caller's lives across vfork. */
__attribute__((noinline)) static pid_t vfork_exec(const char *file, char *const argv[], char *const envp[],
                                                  const char *cwd, const int *src, int nslots, bool new_session,
                                                  volatile int *child_err) {
  pid_t pid = vfork();
  if (pid == 0) exec_child(file, argv, envp, cwd, src, nslots, new_session, child_err);
  return pid;
}

int spawn_child(const char *file, char *const argv[], char *const envp[], const char *cwd, const int *slots,
                int nslots, bool new_session, spawn_exit_fn on_exit, void *ctx, pid_t *pid_out) {
  int err = 0;
  int min = nslots < 3 ? 3 : nslots;
  int *src = calloc((size_t)(nslots > 0 ? nslots : 1), sizeof(int));
  child *c = calloc(1, sizeof(child));
  if (src == NULL || c == NULL) err = ENOMEM;
  for (int i = 0; i < nslots && err == 0; i++) src[i] = -1;
  for (int i = 0; i < nslots && err == 0; i++) {
    if (slots[i] >= 0 && (src[i] = high_dup(slots[i], min)) < 0) err = errno;
  }

  if (err == 0) {
    c->on_exit = on_exit;
    c->ctx = ctx;
    /* No handler of ours may run in the child before it has reset them (libuv does the same). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    volatile int child_err = 0;
    pthread_mutex_lock(&table_lock);
    pid_t pid = vfork_exec(file, argv, envp, cwd, src, nslots, new_session, &child_err);
    if (pid < 0) {
      err = errno;
    } else if (child_err != 0) {
      /* It never ran: reap it now (the exec failed, it has _exit'ed). */
      err = child_err;
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
      }
    } else {
      c->pid = pid;
      c->next = table;
      table = c;
    }
    pthread_mutex_unlock(&table_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (err == 0) {
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&ta, 64 * 1024);
    pthread_t t;
    int terr = pthread_create(&t, &ta, waiter_main, c);
    pthread_attr_destroy(&ta);
    if (terr != 0) {
      /* No waiter: kill and reap it here, so no zombie and no callback is left behind. */
      pthread_mutex_lock(&table_lock);
      kill(c->pid, SIGKILL);
      while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {
      }
      table_remove(c);
      pthread_mutex_unlock(&table_lock);
      err = terr;
    } else {
      *pid_out = c->pid;
      c = NULL;
    }
  }
  free(c);
  for (int i = 0; i < nslots && src != NULL; i++) {
    if (src[i] >= 0) close(src[i]);
  }
  free(src);
  return err;
}

int spawn_kill(pid_t pid, int sig) {
  int err = ESRCH;
  pthread_mutex_lock(&table_lock);
  for (child *c = table; c != NULL; c = c->next) {
    if (c->pid == pid && !c->reaped) {
      err = kill(pid, sig) == 0 ? 0 : errno;
      break;
    }
  }
  pthread_mutex_unlock(&table_lock);
  return err;
}

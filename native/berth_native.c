/*
 * berth_native: a small N-API addon for the Linux syscalls Node lacks
 * (mknod, xattrs, mount/umount2, non-blocking flock), the terminal/attach
 * socket plumbing for exec and attach (stdio_relay.c) and ISA-L's gzip
 * inflater for image layers (gunzip.c).
 *
 * Every call that touches the filesystem runs on libuv's thread pool through
 * napi_create_async_work and settles a promise; only tryLockExclusive (flock
 * with LOCK_NB, which never blocks) is synchronous. Failures reject with a
 * Node-style Error: message "CODE: description, syscall 'path'" and
 * properties code, errno (negative), syscall and path.
 *
 * The TypeScript contract lives in src/common/native.ts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#include "gunzip.h"
#include "log_ndjson.h"
#include "spawn.h"
#include "stdio_relay.h"

/* ---------------------------------------------------------------- errors */

typedef struct {
  int num;
  const char *name;
  const char *desc; /* libuv's wording, so messages match Node's own fs errors */
} errno_entry;

/* First match wins: ENOTSUP precedes EOPNOTSUPP and EAGAIN precedes
 * EWOULDBLOCK because they share a value on Linux (Node reports the first). */
static const errno_entry errno_table[] = {
    {EPERM, "EPERM", "operation not permitted"},
    {ENOENT, "ENOENT", "no such file or directory"},
    {EINTR, "EINTR", "interrupted system call"},
    {EIO, "EIO", "i/o error"},
    {ENXIO, "ENXIO", "no such device or address"},
    {E2BIG, "E2BIG", "argument list too long"},
    {EBADF, "EBADF", "bad file descriptor"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {ENOMEM, "ENOMEM", "not enough memory"},
    {EACCES, "EACCES", "permission denied"},
    {EFAULT, "EFAULT", "bad address in system call argument"},
    {ENOTBLK, "ENOTBLK", "block device required"},
    {EBUSY, "EBUSY", "resource busy or locked"},
    {EEXIST, "EEXIST", "file already exists"},
    {EXDEV, "EXDEV", "cross-device link not permitted"},
    {ENODEV, "ENODEV", "no such device"},
    {ENOTDIR, "ENOTDIR", "not a directory"},
    {EISDIR, "EISDIR", "illegal operation on a directory"},
    {EINVAL, "EINVAL", "invalid argument"},
    {ENFILE, "ENFILE", "file table overflow"},
    {EMFILE, "EMFILE", "too many open files"},
    {EFBIG, "EFBIG", "file too large"},
    {ENOSPC, "ENOSPC", "no space left on device"},
    {EROFS, "EROFS", "read-only file system"},
    {ERANGE, "ERANGE", "result too large"},
    {ENAMETOOLONG, "ENAMETOOLONG", "name too long"},
    {ENOSYS, "ENOSYS", "function not implemented"},
    {ENOTEMPTY, "ENOTEMPTY", "directory not empty"},
    {ELOOP, "ELOOP", "too many symbolic links encountered"},
    {ENODATA, "ENODATA", "no data available"},
    {ENOTSUP, "ENOTSUP", "operation not supported on socket"},
    {EOPNOTSUPP, "EOPNOTSUPP", "operation not supported"},
    {EDQUOT, "EDQUOT", "disk quota exceeded"},
    {ESTALE, "ESTALE", "stale file handle"},
};

static const errno_entry *errno_lookup(int err) {
  for (size_t i = 0; i < sizeof(errno_table) / sizeof(errno_table[0]); i++) {
    if (errno_table[i].num == err) return &errno_table[i];
  }
  return NULL;
}

/* Builds Error{message, code, errno, syscall[, path]}; returns NULL if N-API failed. */
static napi_value make_errno_error(napi_env env, int err, const char *syscall, const char *path) {
  const errno_entry *e = errno_lookup(err);
  char namebuf[24];
  char descbuf[128];
  const char *name;
  const char *desc;
  if (e != NULL) {
    name = e->name;
    desc = e->desc;
  } else {
    snprintf(namebuf, sizeof(namebuf), "E%d", err);
    name = namebuf;
    /* strerror_r (GNU variant) is thread-safe; we are on the JS thread anyway. */
    const char *s = strerror_r(err, descbuf, sizeof(descbuf));
    if (s != descbuf) snprintf(descbuf, sizeof(descbuf), "%s", s);
    if (descbuf[0] >= 'A' && descbuf[0] <= 'Z') descbuf[0] = (char)(descbuf[0] - 'A' + 'a');
    desc = descbuf;
  }

  size_t msglen = strlen(name) + strlen(desc) + strlen(syscall) + (path ? strlen(path) : 0) + 16;
  char *msg = malloc(msglen);
  if (msg == NULL) return NULL;
  if (path != NULL) {
    snprintf(msg, msglen, "%s: %s, %s '%s'", name, desc, syscall, path);
  } else {
    snprintf(msg, msglen, "%s: %s, %s", name, desc, syscall);
  }

  napi_value code_v, msg_v, error, errno_v, syscall_v, path_v;
  napi_status st = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_v);
  if (st == napi_ok) st = napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v);
  free(msg);
  if (st == napi_ok) st = napi_create_error(env, code_v, msg_v, &error);
  if (st == napi_ok) st = napi_create_int32(env, -err, &errno_v);
  if (st == napi_ok) st = napi_set_named_property(env, error, "errno", errno_v);
  if (st == napi_ok) st = napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v);
  if (st == napi_ok) st = napi_set_named_property(env, error, "syscall", syscall_v);
  if (st == napi_ok && path != NULL) {
    st = napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_v);
    if (st == napi_ok) st = napi_set_named_property(env, error, "path", path_v);
  }
  return st == napi_ok ? error : NULL;
}

/* Throws an Error for an N-API failure unless an exception is already pending. */
static void throw_napi_failure(napi_env env, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info *info = NULL;
  char msg[256];
  napi_get_last_error_info(env, &info);
  snprintf(msg, sizeof(msg), "berth_native: %s failed: %s", what,
           info != NULL && info->error_message != NULL ? info->error_message : "unknown N-API error");
  napi_throw_error(env, NULL, msg);
}

#define NAPI_CALL(env, call, ret)           \
  do {                                      \
    if ((call) != napi_ok) {                \
      throw_napi_failure((env), #call);     \
      return (ret);                         \
    }                                       \
  } while (0)

/* --------------------------------------------------------- argument parsing */

static void throw_arg_type(napi_env env, const char *arg, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof(msg), "The \"%s\" argument must be %s", arg, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

/* Copies a JS string into a fresh malloc'd NUL-terminated buffer. Rejects
 * strings with embedded NULs (the kernel would silently truncate them). */
static bool get_string(napi_env env, napi_value v, const char *arg, char **out) {
  napi_valuetype t;
  *out = NULL;
  NAPI_CALL(env, napi_typeof(env, v, &t), false);
  if (t != napi_string) {
    throw_arg_type(env, arg, "of type string");
    return false;
  }
  size_t len = 0;
  NAPI_CALL(env, napi_get_value_string_utf8(env, v, NULL, 0, &len), false);
  char *s = malloc(len + 1);
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "berth_native: out of memory");
    return false;
  }
  size_t copied = 0;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &copied) != napi_ok) {
    free(s);
    throw_napi_failure(env, "napi_get_value_string_utf8");
    return false;
  }
  if (strlen(s) != copied) {
    free(s);
    char msg[160];
    snprintf(msg, sizeof(msg), "The \"%s\" argument must be a string without null bytes", arg);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return false;
  }
  *out = s;
  return true;
}

/* A non-negative integral number no larger than max. */
static bool get_uint(napi_env env, napi_value v, const char *arg, double max, double *out) {
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, v, &t), false);
  if (t != napi_number) {
    throw_arg_type(env, arg, "of type number");
    return false;
  }
  double d;
  NAPI_CALL(env, napi_get_value_double(env, v, &d), false);
  if (!isfinite(d) || d != floor(d) || d < 0 || d > max) {
    char msg[160];
    snprintf(msg, sizeof(msg), "The \"%s\" argument must be an integer between 0 and %.0f", arg, max);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = d;
  return true;
}

/* A Buffer argument's bytes; false (with a TypeError thrown) for anything else. */
static bool get_buffer(napi_env env, napi_value v, const char *arg, void **data, size_t *len) {
  bool is_buffer = false;
  NAPI_CALL(env, napi_is_buffer(env, v, &is_buffer), false);
  if (!is_buffer) {
    throw_arg_type(env, arg, "a Buffer");
    return false;
  }
  NAPI_CALL(env, napi_get_buffer_info(env, v, data, len), false);
  return true;
}

/* A Float64Array argument of at least `n` elements, for results; NULL (TypeError thrown) else. */
static double *get_f64_array(napi_env env, napi_value v, const char *arg, size_t n) {
  bool is_typed = false;
  NAPI_CALL(env, napi_is_typedarray(env, v, &is_typed), NULL);
  napi_typedarray_type type = napi_int8_array;
  size_t len = 0;
  void *data = NULL;
  if (is_typed) NAPI_CALL(env, napi_get_typedarray_info(env, v, &type, &len, &data, NULL, NULL), NULL);
  if (!is_typed || type != napi_float64_array || len < n) {
    char expected[40];
    snprintf(expected, sizeof(expected), "a Float64Array of %zu", n);
    throw_arg_type(env, arg, expected);
    return NULL;
  }
  return data;
}

/* ------------------------------------------------------------ async requests */

typedef enum { OP_MKNOD, OP_LSETXATTR, OP_LGETXATTR, OP_LLISTXATTR, OP_MOUNT, OP_UMOUNT2, OP_CREATE_FILE, OP_SEQPACKET_CONNECT } op_kind;

typedef struct {
  op_kind op;
  const char *syscall;
  napi_async_work work;
  napi_deferred deferred;

  /* inputs (owned, freed in complete) */
  char *path; /* mount: the target */
  char *name;
  char *source;
  char *fstype;
  char *data;
  mode_t mode;
  unsigned int major;
  unsigned int minor;
  unsigned long mount_flags;
  int umount_flags;
  uid_t uid;
  gid_t gid;
  struct timespec times[2]; /* create_file: atime, mtime */

  /* in: lsetxattr value (a copy); out: lgetxattr value / llistxattr list */
  char *buf;
  size_t buf_len;

  /* result */
  int err;     /* errno, 0 on success */
  bool absent; /* lgetxattr: ENODATA */
  int fd;      /* seqpacket connect: the socket */
} request;

static void request_free(request *r) {
  free(r->path);
  free(r->name);
  free(r->source);
  free(r->fstype);
  free(r->data);
  free(r->buf);
  free(r);
}

static request *request_new(napi_env env, op_kind op, const char *syscall) {
  request *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    napi_throw_error(env, "ENOMEM", "berth_native: out of memory");
    return NULL;
  }
  r->op = op;
  r->syscall = syscall;
  return r;
}

/* Reads a variable-sized xattr value or list: size query, then fetch, retrying
 * if the attribute grew in between (ERANGE). */
static void fetch_sized(request *r) {
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t n = r->op == OP_LGETXATTR ? lgetxattr(r->path, r->name, NULL, 0) : llistxattr(r->path, NULL, 0);
    if (n < 0) {
      r->err = errno;
      return;
    }
    if (n == 0) {
      r->buf_len = 0;
      return;
    }
    char *b = malloc((size_t)n);
    if (b == NULL) {
      r->err = ENOMEM;
      return;
    }
    ssize_t m = r->op == OP_LGETXATTR ? lgetxattr(r->path, r->name, b, (size_t)n) : llistxattr(r->path, b, (size_t)n);
    if (m >= 0) {
      r->buf = b;
      r->buf_len = (size_t)m;
      return;
    }
    int e = errno;
    free(b);
    if (e != ERANGE) {
      r->err = e;
      return;
    }
  }
  r->err = ERANGE;
}

/* Creates a new file (never through a symlink, never over an existing entry) with its
 * data, owner, mode and times in one thread-pool job: what costs six round trips in Node. */
static int create_file(request *r) {
  int fd = open(r->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, r->mode & 0777);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < r->buf_len) {
    ssize_t n = write(fd, r->buf + off, r->buf_len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      goto fail;
    }
    off += (size_t)n;
  }
  /* chown first: it clears setuid/setgid, which fchmod then sets. */
  if (fchown(fd, r->uid, r->gid) != 0) goto fail;
  if (fchmod(fd, r->mode & 07777) != 0) goto fail;
  if (futimens(fd, r->times) != 0) goto fail;
  return close(fd);
fail:;
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

/* Runs on a libuv thread pool thread: no N-API calls here. */
static void execute(napi_env env, void *data) {
  (void)env;
  request *r = data;
  int rc = 0;
  switch (r->op) {
    case OP_MKNOD:
      rc = mknod(r->path, r->mode, makedev(r->major, r->minor));
      break;
    case OP_LSETXATTR:
      rc = lsetxattr(r->path, r->name, r->buf, r->buf_len, 0);
      break;
    case OP_LGETXATTR:
    case OP_LLISTXATTR:
      fetch_sized(r);
      if (r->op == OP_LGETXATTR && r->err == ENODATA) {
        r->err = 0;
        r->absent = true;
      }
      return;
    case OP_MOUNT:
      rc = mount(r->source, r->path, r->fstype, r->mount_flags, r->data);
      break;
    case OP_UMOUNT2:
      rc = umount2(r->path, r->umount_flags);
      break;
    case OP_CREATE_FILE:
      rc = create_file(r);
      break;
    case OP_SEQPACKET_CONNECT:
      r->err = seqpacket_connect(r->path, r->name, &r->fd);
      return;
  }
  r->err = rc == 0 ? 0 : errno;
}

/* Builds the resolution value; returns NULL on N-API failure. */
static napi_value result_value(napi_env env, request *r) {
  napi_value v = NULL;
  switch (r->op) {
    case OP_LGETXATTR:
      if (r->absent) {
        if (napi_get_null(env, &v) != napi_ok) return NULL;
      } else if (r->buf_len == 0) {
        if (napi_create_buffer(env, 0, NULL, &v) != napi_ok) return NULL;
      } else if (napi_create_buffer_copy(env, r->buf_len, r->buf, NULL, &v) != napi_ok) {
        return NULL;
      }
      return v;
    case OP_LLISTXATTR: {
      if (napi_create_array(env, &v) != napi_ok) return NULL;
      uint32_t idx = 0;
      size_t pos = 0;
      while (pos < r->buf_len) {
        const char *start = r->buf + pos;
        const char *nul = memchr(start, '\0', r->buf_len - pos);
        size_t len = nul != NULL ? (size_t)(nul - start) : r->buf_len - pos;
        if (len > 0) {
          napi_value s;
          if (napi_create_string_utf8(env, start, len, &s) != napi_ok) return NULL;
          if (napi_set_element(env, v, idx++, s) != napi_ok) return NULL;
        }
        pos += len + 1;
      }
      return v;
    }
    case OP_SEQPACKET_CONNECT:
      if (napi_create_int32(env, r->fd, &v) != napi_ok) return NULL;
      return v;
    default:
      if (napi_get_undefined(env, &v) != napi_ok) return NULL;
      return v;
  }
}

static void reject_plain(napi_env env, napi_deferred d, const char *msg) {
  napi_value m, e;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) == napi_ok &&
      napi_create_error(env, NULL, m, &e) == napi_ok) {
    napi_reject_deferred(env, d, e);
  }
}

/* Runs on the JS thread: settle the promise and free everything. */
static void complete(napi_env env, napi_status status, void *data) {
  request *r = data;
  if (status != napi_ok) {
    reject_plain(env, r->deferred, "berth_native: async work was cancelled or failed");
  } else if (r->err != 0) {
    napi_value e = make_errno_error(env, r->err, r->syscall, r->path);
    if (e != NULL) {
      napi_reject_deferred(env, r->deferred, e);
    } else {
      reject_plain(env, r->deferred, "berth_native: failed to build error object");
    }
  } else {
    napi_value v = result_value(env, r);
    if (v != NULL) {
      napi_resolve_deferred(env, r->deferred, v);
    } else {
      reject_plain(env, r->deferred, "berth_native: failed to build result");
    }
  }
  napi_delete_async_work(env, r->work);
  request_free(r);
}

/* Queues the request and returns its promise; frees r on failure. */
static napi_value queue(napi_env env, request *r) {
  napi_value promise, resource_name;
  char namebuf[64];
  snprintf(namebuf, sizeof(namebuf), "berth_native:%s", r->syscall);
  if (napi_create_string_utf8(env, namebuf, NAPI_AUTO_LENGTH, &resource_name) != napi_ok) {
    request_free(r);
    throw_napi_failure(env, "napi_create_string_utf8");
    return NULL;
  }
  if (napi_create_async_work(env, NULL, resource_name, execute, complete, r, &r->work) != napi_ok) {
    request_free(r);
    throw_napi_failure(env, "napi_create_async_work");
    return NULL;
  }
  if (napi_create_promise(env, &r->deferred, &promise) != napi_ok) {
    napi_delete_async_work(env, r->work);
    request_free(r);
    throw_napi_failure(env, "napi_create_promise");
    return NULL;
  }
  if (napi_queue_async_work(env, r->work) != napi_ok) {
    /* Settle the (unreachable) promise so its deferred is released; the caller sees the throw. */
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, r->deferred, undef);
    napi_delete_async_work(env, r->work);
    request_free(r);
    throw_napi_failure(env, "napi_queue_async_work");
    return NULL;
  }
  return promise;
}

#define GET_ARGS(env, info, n)                                                    \
  size_t argc = (n);                                                              \
  napi_value argv[(n)];                                                           \
  NAPI_CALL((env), napi_get_cb_info((env), (info), &argc, argv, NULL, NULL), NULL)

/* mknod(path, mode, major, minor) */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 4);
  request *r = request_new(env, OP_MKNOD, "mknod");
  if (r == NULL) return NULL;
  double mode, major, minor;
  if (!get_string(env, argv[0], "path", &r->path) || !get_uint(env, argv[1], "mode", 4294967295.0, &mode) ||
      !get_uint(env, argv[2], "major", 4095.0, &major) || !get_uint(env, argv[3], "minor", 1048575.0, &minor)) {
    request_free(r);
    return NULL;
  }
  r->mode = (mode_t)mode;
  r->major = (unsigned int)major;
  r->minor = (unsigned int)minor;
  return queue(env, r);
}

/* Copies a Buffer argument into r->buf, so the caller may reuse or drop the Buffer while the
 * work is pending. Throws (and returns false) on a wrong type or no memory. */
static bool copy_buffer_arg(napi_env env, napi_value v, const char *arg, request *r) {
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer) {
    throw_arg_type(env, arg, "an instance of Buffer");
    return false;
  }
  void *bdata = NULL;
  size_t blen = 0;
  if (napi_get_buffer_info(env, v, &bdata, &blen) != napi_ok) {
    throw_napi_failure(env, "napi_get_buffer_info");
    return false;
  }
  r->buf = malloc(blen > 0 ? blen : 1);
  if (r->buf == NULL) {
    napi_throw_error(env, "ENOMEM", "berth_native: out of memory");
    return false;
  }
  if (blen > 0) memcpy(r->buf, bdata, blen);
  r->buf_len = blen;
  return true;
}

/* lsetxattr(path, name, value: Buffer) */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 3);
  request *r = request_new(env, OP_LSETXATTR, "lsetxattr");
  if (r == NULL) return NULL;
  if (!get_string(env, argv[0], "path", &r->path) || !get_string(env, argv[1], "name", &r->name)) {
    request_free(r);
    return NULL;
  }
  if (!copy_buffer_arg(env, argv[2], "value", r)) {
    request_free(r);
    return NULL;
  }
  return queue(env, r);
}

static bool get_timespec(napi_env env, napi_value v, const char *arg, struct timespec *out) {
  double ms;
  if (!get_uint(env, v, arg, 253402300799000.0, &ms)) return false;
  double sec = floor(ms / 1000.0);
  out->tv_sec = (time_t)sec;
  out->tv_nsec = (long)((ms - sec * 1000.0) * 1e6);
  if (out->tv_nsec < 0) out->tv_nsec = 0;
  if (out->tv_nsec > 999999999) out->tv_nsec = 999999999;
  return true;
}

/* createFile(path, data: Buffer, mode, uid, gid, atimeMs, mtimeMs) */
static napi_value js_create_file(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 7);
  request *r = request_new(env, OP_CREATE_FILE, "open");
  if (r == NULL) return NULL;
  double mode, uid, gid;
  if (!get_string(env, argv[0], "path", &r->path)) {
    request_free(r);
    return NULL;
  }
  if (!copy_buffer_arg(env, argv[1], "data", r)) {
    request_free(r);
    return NULL;
  }
  if (!get_uint(env, argv[2], "mode", 65535.0, &mode) || !get_uint(env, argv[3], "uid", 4294967294.0, &uid) ||
      !get_uint(env, argv[4], "gid", 4294967294.0, &gid) || !get_timespec(env, argv[5], "atimeMs", &r->times[0]) ||
      !get_timespec(env, argv[6], "mtimeMs", &r->times[1])) {
    request_free(r);
    return NULL;
  }
  r->mode = (mode_t)mode;
  r->uid = (uid_t)uid;
  r->gid = (gid_t)gid;
  return queue(env, r);
}

/* lgetxattr(path, name) -> Buffer | null */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 2);
  request *r = request_new(env, OP_LGETXATTR, "lgetxattr");
  if (r == NULL) return NULL;
  if (!get_string(env, argv[0], "path", &r->path) || !get_string(env, argv[1], "name", &r->name)) {
    request_free(r);
    return NULL;
  }
  return queue(env, r);
}

/* llistxattr(path) -> string[] */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 1);
  request *r = request_new(env, OP_LLISTXATTR, "llistxattr");
  if (r == NULL) return NULL;
  if (!get_string(env, argv[0], "path", &r->path)) {
    request_free(r);
    return NULL;
  }
  return queue(env, r);
}

/* Frees *s and sets it to NULL when empty, so mount(2) gets NULL. */
static void empty_to_null(char **s) {
  if (*s != NULL && (*s)[0] == '\0') {
    free(*s);
    *s = NULL;
  }
}

/* mount(source, target, fstype, flags, data) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 5);
  request *r = request_new(env, OP_MOUNT, "mount");
  if (r == NULL) return NULL;
  double flags;
  if (!get_string(env, argv[0], "source", &r->source) || !get_string(env, argv[1], "target", &r->path) ||
      !get_string(env, argv[2], "fstype", &r->fstype) ||
      !get_uint(env, argv[3], "flags", 4294967295.0, &flags) || !get_string(env, argv[4], "data", &r->data)) {
    request_free(r);
    return NULL;
  }
  r->mount_flags = (unsigned long)flags;
  empty_to_null(&r->source);
  empty_to_null(&r->fstype);
  empty_to_null(&r->data);
  return queue(env, r);
}

/* umount2(target, flags) */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 2);
  request *r = request_new(env, OP_UMOUNT2, "umount2");
  if (r == NULL) return NULL;
  double flags;
  if (!get_string(env, argv[0], "target", &r->path) || !get_uint(env, argv[1], "flags", (double)INT_MAX, &flags)) {
    request_free(r);
    return NULL;
  }
  r->umount_flags = (int)flags;
  return queue(env, r);
}

/* tryLockExclusive(fd) -> boolean, synchronous (LOCK_NB never blocks). */
static napi_value js_try_lock_exclusive(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 1);
  double fdd;
  if (!get_uint(env, argv[0], "fd", (double)INT_MAX, &fdd)) return NULL;
  int rc;
  do {
    rc = flock((int)fdd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  int err = rc == 0 ? 0 : errno;
  if (err == EWOULDBLOCK || err == EAGAIN) {
    napi_value f;
    NAPI_CALL(env, napi_get_boolean(env, false, &f), NULL);
    return f;
  }
  if (err != 0) {
    napi_value e = make_errno_error(env, err, "flock", NULL);
    if (e != NULL) {
      napi_throw(env, e);
    } else {
      throw_napi_failure(env, "make_errno_error");
    }
    return NULL;
  }
  napi_value t;
  NAPI_CALL(env, napi_get_boolean(env, true, &t), NULL);
  return t;
}

/* ------------------------------------------------- terminals and relays */

static bool throw_if_errno(napi_env env, int err, const char *syscall, const char *path) {
  if (err == 0) return false;
  napi_value e = make_errno_error(env, err, syscall, path);
  if (e != NULL) {
    napi_throw(env, e);
  } else {
    throw_napi_failure(env, "make_errno_error");
  }
  return true;
}

/* openPty(rows, cols) -> { master, slave }, synchronous (no I/O that can block). */
static napi_value js_open_pty(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 2);
  double rows, cols;
  if (!get_uint(env, argv[0], "rows", 65535, &rows) || !get_uint(env, argv[1], "cols", 65535, &cols)) return NULL;
  int m, s;
  if (throw_if_errno(env, pty_open((unsigned short)rows, (unsigned short)cols, &m, &s), "openpty", NULL)) return NULL;
  napi_value o, mv, sv;
  NAPI_CALL(env, napi_create_object(env, &o), NULL);
  NAPI_CALL(env, napi_create_int32(env, m, &mv), NULL);
  NAPI_CALL(env, napi_create_int32(env, s, &sv), NULL);
  NAPI_CALL(env, napi_set_named_property(env, o, "master", mv), NULL);
  NAPI_CALL(env, napi_set_named_property(env, o, "slave", sv), NULL);
  return o;
}

/* resizePty(fd, rows, cols), synchronous. */
static napi_value js_resize_pty(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 3);
  double fd, rows, cols;
  if (!get_uint(env, argv[0], "fd", (double)INT_MAX, &fd) || !get_uint(env, argv[1], "rows", 65535, &rows) ||
      !get_uint(env, argv[2], "cols", 65535, &cols))
    return NULL;
  if (throw_if_errno(env, pty_resize((int)fd, (unsigned short)rows, (unsigned short)cols), "ioctl", NULL)) return NULL;
  return NULL;
}

/* pendingBytes(fd) -> bytes not yet read from the pipe or FIFO `fd` (either end), synchronous. */
static napi_value js_pending_bytes(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 1);
  double fd;
  if (!get_uint(env, argv[0], "fd", (double)INT_MAX, &fd)) return NULL;
  int n = 0;
  if (throw_if_errno(env, ioctl((int)fd, FIONREAD, &n) == 0 ? 0 : errno, "ioctl", NULL)) return NULL;
  napi_value v;
  NAPI_CALL(env, napi_create_int32(env, n, &v), NULL);
  return v;
}

/* startRelay(fd, packets) -> stream socket fd; the relay thread owns `fd` from here on. */
static napi_value js_start_relay(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 2);
  double fd;
  bool packets;
  if (!get_uint(env, argv[0], "fd", (double)INT_MAX, &fd)) return NULL;
  if (napi_get_value_bool(env, argv[1], &packets) != napi_ok) {
    throw_arg_type(env, "packets", "a boolean");
    return NULL;
  }
  int node_fd;
  if (throw_if_errno(env, relay_start((int)fd, packets, &node_fd), "relay", NULL)) return NULL;
  napi_value v;
  NAPI_CALL(env, napi_create_int32(env, node_fd, &v), NULL);
  return v;
}

/* connectSeqpacket(dir, name) -> Promise<fd>. */
static napi_value js_connect_seqpacket(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 2);
  request *r = request_new(env, OP_SEQPACKET_CONNECT, "connect");
  if (r == NULL) return NULL;
  if (!get_string(env, argv[0], "dir", &r->path) || !get_string(env, argv[1], "name", &r->name)) {
    request_free(r);
    return NULL;
  }
  return queue(env, r);
}

/* ------------------------------------------------------------ child processes */

/* stdio slot codes of spawn(): an fd of ours (>= 0) or one of these. */
enum { SLOT_NULL = -1, SLOT_PIPE_IN = -2, SLOT_PIPE_OUT = -3, SLOT_PAIR = -4 };

typedef struct {
  napi_ref cb;
  int status;
} exit_rec;

static napi_threadsafe_function exit_tsfn = NULL;
static size_t live_children = 0; /* touched on the JS thread only */

static void exit_call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)context;
  exit_rec *r = data;
  if (env != NULL) {
    napi_value cb, undef, status;
    if (napi_get_reference_value(env, r->cb, &cb) == napi_ok && napi_get_undefined(env, &undef) == napi_ok &&
        napi_create_int32(env, r->status, &status) == napi_ok) {
      napi_call_function(env, undef, cb, 1, &status, NULL);
    }
    napi_delete_reference(env, r->cb);
    if (--live_children == 0) napi_unref_threadsafe_function(env, exit_tsfn);
  }
  free(r);
}

static void on_child_exit(void *ctx, int status) {
  exit_rec *r = ctx;
  r->status = status;
  napi_call_threadsafe_function(exit_tsfn, r, napi_tsfn_blocking);
}

static void free_strv(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p != NULL; p++) free(*p);
  free(v);
}

/* A JS array of strings as a NULL-terminated, malloc'd vector. */
static bool get_strv(napi_env env, napi_value arr, const char *arg, char ***out) {
  *out = NULL;
  uint32_t n = 0;
  bool is_array = false;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) {
    throw_arg_type(env, arg, "an array of strings");
    return false;
  }
  NAPI_CALL(env, napi_get_array_length(env, arr, &n), false);
  char **v = calloc((size_t)n + 1, sizeof(char *));
  if (v == NULL) {
    napi_throw_error(env, "ENOMEM", "berth_native: out of memory");
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    if (napi_get_element(env, arr, i, &e) != napi_ok) {
      free_strv(v);
      throw_napi_failure(env, "napi_get_element");
      return false;
    }
    if (!get_string(env, e, arg, &v[i])) {
      free_strv(v);
      return false;
    }
  }
  *out = v;
  return true;
}

/* spawn(file, argv, env, cwd|null, stdio[], newSession, onExit(status)) -> { pid, fds[] }.
 * fds[i] is our end of slot i's pipe or socket pair, or -1. */
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 7);
  napi_value result = NULL;
  char *file = NULL, *cwd = NULL;
  char **args = NULL, **envp = NULL;
  int slots[16], ours[16], theirs[16];
  uint32_t nslots = 0;
  bool new_session = false;
  napi_valuetype t;
  exit_rec *rec = NULL;
  for (int i = 0; i < 16; i++) ours[i] = theirs[i] = -1;

  if (!get_string(env, argv[0], "file", &file) || !get_strv(env, argv[1], "argv", &args) ||
      !get_strv(env, argv[2], "env", &envp))
    goto out;
  if (napi_typeof(env, argv[3], &t) != napi_ok) goto out;
  if (t != napi_null && !get_string(env, argv[3], "cwd", &cwd)) goto out;
  bool is_array = false;
  if (napi_is_array(env, argv[4], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[4], &nslots) != napi_ok || nslots > 16) {
    throw_arg_type(env, "stdio", "an array of at most 16 numbers");
    goto out;
  }
  if (napi_get_value_bool(env, argv[5], &new_session) != napi_ok) {
    throw_arg_type(env, "newSession", "a boolean");
    goto out;
  }
  if (napi_typeof(env, argv[6], &t) != napi_ok || t != napi_function) {
    throw_arg_type(env, "onExit", "a function");
    goto out;
  }
  int err = 0;
  for (uint32_t i = 0; i < nslots && err == 0; i++) {
    napi_value e;
    int32_t code;
    if (napi_get_element(env, argv[4], i, &e) != napi_ok || napi_get_value_int32(env, e, &code) != napi_ok) {
      throw_arg_type(env, "stdio", "an array of numbers");
      goto out;
    }
    int fds[2];
    if (code >= 0 || code == SLOT_NULL) {
      slots[i] = code;
    } else if (code == SLOT_PIPE_IN || code == SLOT_PIPE_OUT) {
      if (pipe2(fds, O_CLOEXEC) != 0) {
        err = errno;
        break;
      }
      bool in = code == SLOT_PIPE_IN; /* the child reads fds[0] */
      theirs[i] = slots[i] = in ? fds[0] : fds[1];
      ours[i] = in ? fds[1] : fds[0];
    } else if (code == SLOT_PAIR) {
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        err = errno;
        break;
      }
      theirs[i] = slots[i] = fds[1];
      ours[i] = fds[0];
    } else {
      throw_arg_type(env, "stdio", "fds or slot codes -1..-4");
      goto out;
    }
  }
  if (err == 0 && exit_tsfn == NULL) {
    napi_value name;
    if (napi_create_string_utf8(env, "berth_native.spawn", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, exit_call_js, &exit_tsfn) !=
            napi_ok) {
      throw_napi_failure(env, "napi_create_threadsafe_function");
      goto out;
    }
    napi_unref_threadsafe_function(env, exit_tsfn);
  }
  if (err == 0 && (rec = calloc(1, sizeof(exit_rec))) == NULL) err = ENOMEM;
  if (err == 0 && napi_create_reference(env, argv[6], 1, &rec->cb) != napi_ok) {
    throw_napi_failure(env, "napi_create_reference");
    goto out;
  }
  pid_t pid = 0;
  if (err == 0) {
    /* Counted before the waiter can report, and kept alive while any child runs (as libuv does). */
    if (live_children++ == 0) napi_ref_threadsafe_function(env, exit_tsfn);
    err = spawn_child(file, args, envp, cwd, slots, (int)nslots, new_session, on_child_exit, rec, &pid);
    if (err != 0) {
      if (--live_children == 0) napi_unref_threadsafe_function(env, exit_tsfn);
      napi_delete_reference(env, rec->cb);
    } else {
      rec = NULL; /* the waiter owns it */
    }
  }
  if (throw_if_errno(env, err, "spawn", file)) goto out;
  napi_value o, pidv, fdsv;
  if (napi_create_object(env, &o) != napi_ok || napi_create_int32(env, pid, &pidv) != napi_ok ||
      napi_create_array_with_length(env, nslots, &fdsv) != napi_ok) {
    throw_napi_failure(env, "napi_create_object");
    goto out;
  }
  for (uint32_t i = 0; i < nslots; i++) {
    napi_value fv;
    if (napi_create_int32(env, ours[i], &fv) != napi_ok || napi_set_element(env, fdsv, i, fv) != napi_ok) {
      throw_napi_failure(env, "napi_set_element");
      goto out;
    }
  }
  napi_set_named_property(env, o, "pid", pidv);
  napi_set_named_property(env, o, "fds", fdsv);
  result = o;
  for (int i = 0; i < 16; i++) ours[i] = -1; /* handed to JS */
out:
  for (int i = 0; i < 16; i++) {
    if (theirs[i] >= 0) close(theirs[i]);
    if (ours[i] >= 0) close(ours[i]);
  }
  free(rec);
  free(file);
  free(cwd);
  free_strv(args);
  free_strv(envp);
  return result;
}

/* killChild(pid, signal) -> false when `pid` is not a live child of spawn(). */
static napi_value js_kill_child(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 2);
  double pid, sig;
  if (!get_uint(env, argv[0], "pid", (double)INT_MAX, &pid) || !get_uint(env, argv[1], "signal", 64, &sig)) return NULL;
  int err = spawn_kill((pid_t)pid, (int)sig);
  if (err != ESRCH && throw_if_errno(env, err, "kill", NULL)) return NULL;
  napi_value v;
  NAPI_CALL(env, napi_get_boolean(env, err == 0, &v), NULL);
  return v;
}

void berth_low_memory_notification(void); /* memory.cc */

/*
 * releaseMemory(): V8's memory-reducing full collection (memory.cc), then malloc_trim(0), handing
 * the freed malloc heap back to the kernel. Synchronous.
 */
static napi_value js_release_memory(napi_env env, napi_callback_info info) {
  (void)info;
  berth_low_memory_notification();
  napi_value v;
  NAPI_CALL(env, napi_get_boolean(env, malloc_trim(0) == 1, &v), NULL);
  return v;
}

/* ---------------------------------------------------------------- gunzip */

static void gunzip_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  berth_gunzip_free(data);
}

/* gunzipCreate(digests) -> an external holding one ISA-L inflate state (freed with it). */
static napi_value js_gunzip_create(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 1);
  bool digests = false;
  NAPI_CALL(env, napi_get_value_bool(env, argv[0], &digests), NULL);
  berth_gunzip *g = berth_gunzip_new(digests);
  if (g == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_value ext;
  if (napi_create_external(env, g, gunzip_finalize, NULL, &ext) != napi_ok) {
    berth_gunzip_free(g);
    throw_napi_failure(env, "napi_create_external");
    return NULL;
  }
  return ext;
}

static berth_gunzip *get_gunzip(napi_env env, napi_value v) {
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, v, &t), NULL);
  if (t != napi_external) {
    throw_arg_type(env, "handle", "a gunzip handle");
    return NULL;
  }
  void *g = NULL;
  NAPI_CALL(env, napi_get_value_external(env, v, &g), NULL);
  return g;
}

#define GUNZIP_MAX_INPUTS 64

/* One gunzipRun: the inputs, the output, and references keeping them alive while it runs. */
typedef struct {
  napi_async_work work;
  berth_gunzip *g;
  /* handle, inputs array, output, info, callback */
  napi_ref refs[5];
  struct {
    const uint8_t *data;
    size_t len;
  } in[GUNZIP_MAX_INPUTS];
  size_t n_in;
  uint8_t *out;
  size_t out_len;
  double *info;
  size_t consumed;
  size_t produced;
  int ret;
} gunzip_job;

static void gunzip_execute(napi_env env, void *data) {
  (void)env;
  gunzip_job *j = data;
  for (size_t i = 0; i < j->n_in || i == 0; i++) {
    const uint8_t *in = i < j->n_in ? j->in[i].data : NULL;
    size_t in_len = i < j->n_in ? j->in[i].len : 0;
    size_t took = 0, gave = 0;
    j->ret = berth_gunzip_stream(j->g, in, in_len, j->out + j->produced, j->out_len - j->produced, &took, &gave);
    j->consumed += took;
    j->produced += gave;
    if (j->ret < 0 || took < in_len) break;
  }
}

static void gunzip_complete(napi_env env, napi_status status, void *data) {
  gunzip_job *j = data;
  napi_value cb = NULL, global = NULL, arg = NULL;
  if (napi_get_reference_value(env, j->refs[4], &cb) == napi_ok && napi_get_global(env, &global) == napi_ok) {
    if (status != napi_ok) {
      napi_value msg;
      if (napi_create_string_utf8(env, "berth_native: gunzip job cancelled", NAPI_AUTO_LENGTH, &msg) == napi_ok)
        napi_create_error(env, NULL, msg, &arg);
    } else if (j->ret < 0) {
      napi_value code, msg;
      if (napi_create_string_utf8(env, "Z_DATA_ERROR", NAPI_AUTO_LENGTH, &code) == napi_ok &&
          napi_create_string_utf8(env, berth_gunzip_error(j->ret), NAPI_AUTO_LENGTH, &msg) == napi_ok)
        napi_create_error(env, code, msg, &arg);
    } else {
      j->info[0] = (double)j->consumed;
      j->info[1] = (double)j->produced;
      napi_get_null(env, &arg);
    }
    if (arg != NULL) napi_call_function(env, global, cb, 1, &arg, NULL);
  }
  for (size_t i = 0; i < 5; i++) napi_delete_reference(env, j->refs[i]);
  napi_delete_async_work(env, j->work);
  free(j);
}

/*
 * gunzipRun(handle, inputs, output, outOffset, info, callback): on the thread pool, inflates
 * the Buffers in `inputs` (at most 64) one after another into `output` from `outOffset`,
 * hashing both sides when the handle digests; stops early when `output` is full. Then
 * callback(null) with `info` (a Float64Array of 2) holding the input bytes consumed and the
 * output bytes produced, or callback(Error with code Z_DATA_ERROR). None of the arguments
 * may be touched, nor another run started on the handle, until the callback.
 */
static napi_value js_gunzip_run(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 6);
  berth_gunzip *g = get_gunzip(env, argv[0]);
  if (g == NULL) return NULL;
  gunzip_job *j = calloc(1, sizeof(*j));
  if (j == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  j->g = g;
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &n) != napi_ok || n > GUNZIP_MAX_INPUTS) {
    free(j);
    throw_arg_type(env, "inputs", "an array of at most 64 Buffers");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    void *d = NULL;
    size_t len = 0;
    if (napi_get_element(env, argv[1], i, &el) != napi_ok || !get_buffer(env, el, "inputs[i]", &d, &len)) {
      free(j);
      return NULL;
    }
    j->in[i].data = d;
    j->in[i].len = len;
  }
  j->n_in = n;
  void *out = NULL;
  double out_off = 0;
  if (!get_buffer(env, argv[2], "output", &out, &j->out_len) ||
      !get_uint(env, argv[3], "outOffset", (double)j->out_len, &out_off) ||
      (j->info = get_f64_array(env, argv[4], "info", 2)) == NULL) {
    free(j);
    return NULL;
  }
  napi_valuetype cb_type = napi_undefined;
  if (napi_typeof(env, argv[5], &cb_type) != napi_ok || cb_type != napi_function) {
    free(j);
    throw_arg_type(env, "callback", "a function");
    return NULL;
  }
  j->out = (uint8_t *)out + (size_t)out_off;
  j->out_len -= (size_t)out_off;
  napi_value resource_name;
  const size_t ref_args[5] = {0, 1, 2, 4, 5};
  size_t made = 0;
  for (; made < 5; made++) {
    if (napi_create_reference(env, argv[ref_args[made]], 1, &j->refs[made]) != napi_ok) break;
  }
  if (made < 5 || napi_create_string_utf8(env, "berth_native:gunzip", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, gunzip_execute, gunzip_complete, j, &j->work) != napi_ok) {
    for (size_t i = 0; i < made; i++) napi_delete_reference(env, j->refs[i]);
    free(j);
    throw_napi_failure(env, "napi_create_async_work");
    return NULL;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    for (size_t i = 0; i < 5; i++) napi_delete_reference(env, j->refs[i]);
    napi_delete_async_work(env, j->work);
    free(j);
    throw_napi_failure(env, "napi_queue_async_work");
    return NULL;
  }
  return NULL;
}

/* gunzipEnded(handle) -> whether the stream so far ends cleanly (a whole member last). */
static napi_value js_gunzip_ended(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 1);
  berth_gunzip *g = get_gunzip(env, argv[0]);
  if (g == NULL) return NULL;
  napi_value v;
  NAPI_CALL(env, napi_get_boolean(env, berth_gunzip_ended(g), &v), NULL);
  return v;
}

/* gunzipDigests(handle) -> [input sha256 hex, output sha256 hex]; finishes both hashes. */
static napi_value js_gunzip_digests(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 1);
  berth_gunzip *g = get_gunzip(env, argv[0]);
  if (g == NULL) return NULL;
  uint8_t sums[2][32];
  if (berth_gunzip_digests(g, sums[0], sums[1]) != 0) {
    napi_throw_error(env, "ERR_INVALID_STATE", "berth_native: the gunzip handle has no digests to give");
    return NULL;
  }
  napi_value arr;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &arr), NULL);
  for (uint32_t k = 0; k < 2; k++) {
    char hex[65];
    for (size_t i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", sums[k][i]);
    napi_value s;
    NAPI_CALL(env, napi_create_string_utf8(env, hex, 64, &s), NULL);
    NAPI_CALL(env, napi_set_element(env, arr, k, s), NULL);
  }
  return arr;
}

/*
 * logNdjson(chunk, format, force, maxRecordBytes, tagsSuffix, skip, nowMs, info) -> Buffer of
 * NDJSON records, or null when the chunk must take the JS path (log_ndjson.c). `info` (a
 * Float64Array of 4) gets consumed bytes, records, content UTF-16 length, pending (0/1).
 * Synchronous: it is the parsing the JS thread would otherwise do itself.
 */
static napi_value js_log_ndjson(napi_env env, napi_callback_info info) {
  GET_ARGS(env, info, 8);
  void *chunk = NULL, *suffix = NULL;
  size_t chunk_len = 0, suffix_len = 0;
  if (!get_buffer(env, argv[0], "chunk", &chunk, &chunk_len) || !get_buffer(env, argv[4], "tagsSuffix", &suffix, &suffix_len))
    return NULL;
  double format, max_record, skip, now_ms;
  bool force;
  if (!get_uint(env, argv[1], "format", 1, &format) || !get_uint(env, argv[3], "maxRecordBytes", 1e12, &max_record) ||
      !get_uint(env, argv[5], "skip", 3, &skip) || !get_uint(env, argv[6], "nowMs", 9e15, &now_ms))
    return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[2], &force), NULL);
  double *inf = get_f64_array(env, argv[7], "info", 4);
  if (inf == NULL) return NULL;
  ndjson_in in = {
      .chunk = chunk,
      .len = chunk_len,
      .format = (int)format,
      .force = force,
      .max_record_bytes = (size_t)max_record,
      .suffix = suffix,
      .suffix_len = suffix_len,
      .skip = (int)skip,
      .now_ms = (int64_t)now_ms,
  };
  ndjson_out out;
  napi_value v;
  ndjson_status st = log_ndjson(&in, &out);
  if (st == NDJSON_NOMEM) {
    napi_throw_error(env, "ENOMEM", "berth_native: out of memory");
    return NULL;
  }
  if (st == NDJSON_BAIL) {
    NAPI_CALL(env, napi_get_null(env, &v), NULL);
    return v;
  }
  inf[0] = (double)out.consumed;
  inf[1] = (double)out.count;
  inf[2] = (double)out.units;
  inf[3] = out.pending ? 1 : 0;
  NAPI_CALL(env, napi_create_buffer_copy(env, out.len, out.data, NULL, &v), NULL);
  return v;
}

/* ------------------------------------------------------------------- init */

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tryLockExclusive", NULL, js_try_lock_exclusive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"createFile", NULL, js_create_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openPty", NULL, js_open_pty, NULL, NULL, NULL, napi_enumerable, NULL},
      {"resizePty", NULL, js_resize_pty, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pendingBytes", NULL, js_pending_bytes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"startRelay", NULL, js_start_relay, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connectSeqpacket", NULL, js_connect_seqpacket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawn", NULL, js_spawn, NULL, NULL, NULL, napi_enumerable, NULL},
      {"killChild", NULL, js_kill_child, NULL, NULL, NULL, napi_enumerable, NULL},
      {"releaseMemory", NULL, js_release_memory, NULL, NULL, NULL, napi_enumerable, NULL},
      {"logNdjson", NULL, js_log_ndjson, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gunzipCreate", NULL, js_gunzip_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gunzipRun", NULL, js_gunzip_run, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gunzipEnded", NULL, js_gunzip_ended, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gunzipDigests", NULL, js_gunzip_digests, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props), NULL);
  return exports;
}

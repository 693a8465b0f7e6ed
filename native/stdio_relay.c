/*
 * Terminals and the conmon attach socket, for exec/attach streaming.
 *
 * Node can neither open a SOCK_SEQPACKET socket (conmon's attach socket) nor
 * read a pty master as a stream without blocking writes. So both are handed to
 * a relay thread that copies between that fd and one end of a stream
 * socketpair; Node gets the other end, an ordinary net.Socket.
 *
 *  - raw mode (pty master): bytes both ways, unchanged;
 *  - packet mode (attach socket): every packet read becomes a 4-byte
 *    big-endian length + the packet on the stream (conmon prefixes each with
 *    its stream: 2 stdout, 3 stderr); stream data is sent as packets of at most
 *    8 KiB (conmon's read size), and end of stream becomes shutdown(SHUT_WR).
 *
 * The thread owns both fds and closes them when it ends: once the Node side
 * has closed its end (POLLHUP), or once both directions have finished. It never
 * blocks on one side while the other has data: both fds are non-blocking and
 * each direction holds at most one buffer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "stdio_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define RELAY_BUF (64 * 1024)
#define PACKET_WRITE_MAX 8192

typedef struct {
  int ext;  /* pty master or attach socket */
  int sock; /* our end of the socketpair */
  bool packets;
} relay_args;

static void *relay_main(void *p) {
  relay_args a = *(relay_args *)p;
  free(p);
  char *in = malloc(RELAY_BUF + 4); /* ext -> sock */
  char *out = malloc(RELAY_BUF);    /* sock -> ext */
  if (in == NULL || out == NULL) goto done;

  size_t in_len = 0, in_off = 0, out_len = 0, out_off = 0;
  bool ext_rd = true, ext_wr = true, sock_rd = true, sock_shut = false, ext_shut = false;

  for (;;) {
    if (!ext_rd && in_len == 0 && !sock_shut) {
      shutdown(a.sock, SHUT_WR);
      sock_shut = true;
    }
    if (!sock_rd && out_len == 0 && !ext_shut) {
      if (a.packets && ext_wr) shutdown(a.ext, SHUT_WR);
      ext_shut = true;
    }
    if (sock_shut && !sock_rd) break;

    struct pollfd fds[2];
    short ext_events = 0;
    if (ext_rd && in_len == 0) ext_events |= POLLIN;
    if (out_len > 0) ext_events |= POLLOUT;
    /* No interest: leave it out, or a hung-up pty would wake us forever. */
    fds[0].fd = ext_events != 0 ? a.ext : -1;
    fds[0].events = ext_events;
    fds[0].revents = 0;
    fds[1].fd = a.sock;
    fds[1].events = (short)((sock_rd && out_len == 0 ? POLLIN : 0) | (in_len > 0 ? POLLOUT : 0));
    fds[1].revents = 0;
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }

    short er = fds[0].revents, sr = fds[1].revents;
    if ((ext_events & POLLIN) && (er & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = a.packets ? recv(a.ext, in + 4, RELAY_BUF, 0) : read(a.ext, in, RELAY_BUF);
      if (n > 0) {
        if (a.packets) {
          uint32_t len = (uint32_t)n;
          in[0] = (char)(len >> 24);
          in[1] = (char)(len >> 16);
          in[2] = (char)(len >> 8);
          in[3] = (char)len;
          in_len = (size_t)n + 4;
        } else {
          in_len = (size_t)n;
        }
        in_off = 0;
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        ext_rd = false; /* EOF, or EIO from a pty master whose slave side is all closed */
      }
    }
    if ((ext_events & POLLOUT) && (er & (POLLOUT | POLLHUP | POLLERR))) {
      ssize_t n = a.packets ? send(a.ext, out + out_off, out_len - out_off, MSG_NOSIGNAL)
                            : write(a.ext, out + out_off, out_len - out_off);
      if (n > 0) {
        out_off += (size_t)n;
        if (out_off >= out_len) out_len = out_off = 0;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        ext_wr = false; /* the process is gone: drop its input from now on */
        out_len = out_off = 0;
      }
    }
    if (in_len > 0 && (sr & (POLLOUT | POLLHUP | POLLERR))) {
      ssize_t n = send(a.sock, in + in_off, in_len - in_off, MSG_NOSIGNAL);
      if (n > 0) {
        in_off += (size_t)n;
        if (in_off >= in_len) in_len = in_off = 0;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        break; /* Node closed its end */
      }
    }
    if (sock_rd && out_len == 0 && (sr & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(a.sock, out, a.packets ? PACKET_WRITE_MAX : RELAY_BUF);
      if (n > 0) {
        if (ext_wr) {
          out_len = (size_t)n;
          out_off = 0;
        }
      } else if (n == 0) {
        sock_rd = false;
      } else if (errno != EAGAIN && errno != EINTR) {
        break;
      }
    }
    /* Both ends shut down: Node closed its end, or both directions are over. Any stdin still
     * held is dropped: Node only closes when it abandons the session. */
    if (sr & (POLLHUP | POLLERR)) break;
  }
done:
  free(in);
  free(out);
  close(a.ext);
  close(a.sock);
  return NULL;
}

int relay_start(int ext, bool packets, int *node_fd) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return errno;
  int flags = fcntl(ext, F_GETFL);
  if (flags < 0 || fcntl(ext, F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(sv[1], F_SETFL, O_NONBLOCK) != 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return e;
  }
  relay_args *a = malloc(sizeof(*a));
  if (a == NULL) {
    close(sv[0]);
    close(sv[1]);
    return ENOMEM;
  }
  a->ext = ext;
  a->sock = sv[1];
  a->packets = packets;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t t;
  int rc = pthread_create(&t, &attr, relay_main, a);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    free(a);
    close(sv[0]);
    close(sv[1]);
    return rc;
  }
  *node_fd = sv[0];
  return 0;
}

int pty_open(unsigned short rows, unsigned short cols, int *master, int *slave) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return errno;
  char name[128];
  if (grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, name, sizeof(name)) != 0) {
    int e = errno;
    close(m);
    return e;
  }
  int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) {
    int e = errno;
    close(m);
    return e;
  }
  /* Raw from the start: runc makes it raw too, but input arriving before that would be echoed
   * (and cooked) by this outer terminal as well as by the container's own. */
  struct termios t;
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  if (tcgetattr(s, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(s, TCSANOW, &t);
  }
  if (ioctl(m, TIOCSWINSZ, &ws) != 0) {
    int e = errno;
    close(m);
    close(s);
    return e;
  }
  *master = m;
  *slave = s;
  return 0;
}

int pty_resize(int fd, unsigned short rows, unsigned short cols) {
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  return ioctl(fd, TIOCSWINSZ, &ws) == 0 ? 0 : errno;
}

int seqpacket_connect(const char *dir, const char *name, int *out) {
  /* Through /proc/self/fd/N so that a long directory path never hits sun_path's 108 bytes. */
  int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  int len = snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", dfd, name);
  if (len < 0 || (size_t)len >= sizeof(addr.sun_path)) {
    close(dfd);
    return ENAMETOOLONG;
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    close(dfd);
    return e;
  }
  int rc;
  do {
    rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  int e = rc == 0 ? 0 : errno;
  close(dfd);
  if (e != 0) {
    close(fd);
    return e;
  }
  *out = fd;
  return 0;
}

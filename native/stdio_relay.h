/* Terminals and the conmon attach socket; see stdio_relay.c. All return 0 or an errno. */
#ifndef BERTH_STDIO_RELAY_H
#define BERTH_STDIO_RELAY_H

#include <stdbool.h>
#include <stdint.h>

/* Starts a relay thread that owns `ext`; *node_fd is the stream socket for Node. */
int relay_start(int ext, bool packets, int *node_fd);
/* A new raw pty pair (both O_CLOEXEC, O_NOCTTY) with the given size. */
int pty_open(unsigned short rows, unsigned short cols, int *master, int *slave);
/* TIOCSWINSZ on either side of a pty. */
int pty_resize(int fd, unsigned short rows, unsigned short cols);
/* Connects a SOCK_SEQPACKET socket to `dir`/`name`. Blocking (run it off the JS thread). */
int seqpacket_connect(const char *dir, const char *name, int *out);

#endif

// The floor of a cold pull on this machine: the work no pull can skip, in C with nothing else
// around it. Each layer is fetched over plain HTTP/1.1 (or read from a file), its compressed
// bytes are hashed (SHA-256, OpenSSL) and stored (fsynced, renamed into place, as a content store
// does), inflated by ISA-L, the tar hashed (the diff id) and its regular files and directories
// written out. Left out, as a floor should: auth, redirects, chunked bodies, path checks, whiteouts,
// links, modes, owners, times, xattrs, metadata. Prints each layer's two digests (to compare with
// the manifest and the config's diff ids) and the wall time.
//
// Build (Debian: libisal-dev, libssl-dev): cc -O2 -o pull-floor scripts/pull-floor.c -lisal -lcrypto -lpthread
// Usage: pull-floor THREADS OUTDIR (http://HOST:PORT/PATH | FILE)...   (npm run bench runs it: src/bench/floor.ts)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IN_BYTES (512 * 1024)
#define OUT_BYTES (256 * 1024)
#define MAX_THREADS 64

static char **sources;
static int nsources;
static const char *outdir;
static atomic_int next_source;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void write_all(int fd, const unsigned char *p, size_t n, const char *what) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) die(what);
    p += w, n -= (size_t)w;
  }
}

/* A file, or http://HOST:PORT/PATH: a GET whose body is what then comes from the socket. */
static int open_source(const char *what) {
  if (strncmp(what, "http://", 7) != 0) {
    int fd = open(what, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(what);
    return fd;
  }
  const char *h = what + 7, *slash = strchr(h, '/');
  if (!slash) die("url without a path");
  const char *colon = memchr(h, ':', (size_t)(slash - h));
  char host[256], port[16] = "80";
  snprintf(host, sizeof host, "%.*s", (int)((colon ? colon : slash) - h), h);
  if (colon) snprintf(port, sizeof port, "%.*s", (int)(slash - colon - 1), colon + 1);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
  if (getaddrinfo(host, port, &hints, &ai) != 0) die("getaddrinfo");
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) die("connect");
  freeaddrinfo(ai);
  char req[4096];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", slash,
                   host, port);
  write_all(fd, (const unsigned char *)req, (size_t)n, "send");
  /* The head byte by byte up to its blank line (a few hundred bytes): the body starts after it. */
  const char *end = "\r\n\r\n";
  int matched = 0;
  while (matched < 4) {
    char c;
    if (read(fd, &c, 1) != 1) die("response head");
    matched = c == end[matched] ? matched + 1 : (c == '\r' ? 1 : 0);
  }
  return fd;
}

struct untar {
  char root[4096];
  char hdr[512];
  size_t hdr_have;
  unsigned long long left; /* content bytes of the current entry still to come */
  unsigned long long pad;  /* then this many bytes of padding */
  int fd;                  /* the regular file being written, or -1 */
};

static unsigned long long octal(const char *p, size_t n) {
  unsigned long long v = 0;
  for (size_t i = 0; i < n && p[i]; i++)
    if (p[i] >= '0' && p[i] <= '7') v = v * 8 + (unsigned)(p[i] - '0');
  return v;
}

static void untar_header(struct untar *u) {
  if (u->hdr[0] == 0) return; /* end-of-archive blocks */
  char path[8192];
  if (u->hdr[345])
    snprintf(path, sizeof path, "%s/%.155s/%.100s", u->root, u->hdr + 345, u->hdr);
  else
    snprintf(path, sizeof path, "%s/%.100s", u->root, u->hdr);
  unsigned long long size = octal(u->hdr + 124, 12);
  char type = u->hdr[156];
  if (type == '5') {
    size_t l = strlen(path);
    if (l > 0 && path[l - 1] == '/') path[l - 1] = 0;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die(path);
  } else if (type == '0' || type == 0) {
    u->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (u->fd < 0) die(path);
  }
  u->left = size;
  u->pad = (512 - size % 512) % 512;
  if (size == 0 && u->fd >= 0) close(u->fd), u->fd = -1;
}

static void untar_feed(struct untar *u, const unsigned char *p, size_t n) {
  while (n > 0) {
    size_t k;
    if (u->left > 0) {
      k = n < u->left ? n : (size_t)u->left;
      if (u->fd >= 0) write_all(u->fd, p, k, "write file");
      u->left -= k;
      if (u->left == 0 && u->fd >= 0) close(u->fd), u->fd = -1;
    } else if (u->pad > 0) {
      k = n < u->pad ? n : (size_t)u->pad;
      u->pad -= k;
    } else {
      k = 512 - u->hdr_have < n ? 512 - u->hdr_have : n;
      memcpy(u->hdr + u->hdr_have, p, k);
      u->hdr_have += k;
      if (u->hdr_have == 512) {
        u->hdr_have = 0;
        untar_header(u);
      }
    }
    p += k, n -= k;
  }
}

static void hex(const unsigned char *d, char *out) {
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void pull_layer(int i, unsigned char *in, unsigned char *out) {
  int src = open_source(sources[i]);
  char tmp[4096], dst[4096];
  snprintf(tmp, sizeof tmp, "%s/blob-%d.tmp", outdir, i);
  snprintf(dst, sizeof dst, "%s/blob-%d", outdir, i);
  int blob = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (blob < 0) die(tmp);
  struct untar u = {.fd = -1};
  snprintf(u.root, sizeof u.root, "%s/snapshot-%d", outdir, i);
  if (mkdir(u.root, 0755) != 0) die(u.root);
  EVP_MD_CTX *compressed = EVP_MD_CTX_new(), *tar = EVP_MD_CTX_new();
  EVP_DigestInit_ex(compressed, EVP_sha256(), NULL);
  EVP_DigestInit_ex(tar, EVP_sha256(), NULL);
  struct inflate_state st;
  isal_inflate_init(&st);
  st.crc_flag = ISAL_GZIP;
  for (int more = 1; more;) {
    ssize_t r = read(src, in, IN_BYTES);
    if (r < 0) die("read");
    more = r > 0;
    EVP_DigestUpdate(compressed, in, (size_t)r);
    write_all(blob, in, (size_t)r, "write blob");
    st.next_in = in;
    st.avail_in = (uint32_t)r;
    /* Until this input is used up (or, at the end, until ISA-L has nothing more to give). */
    for (;;) {
      st.next_out = out;
      st.avail_out = OUT_BYTES;
      if (isal_inflate(&st) != ISAL_DECOMP_OK) {
        fprintf(stderr, "layer %d: not a valid gzip stream\n", i);
        exit(1);
      }
      size_t got = OUT_BYTES - st.avail_out;
      EVP_DigestUpdate(tar, out, got);
      untar_feed(&u, out, got);
      if (st.avail_in == 0 && (more || got == 0)) break;
      if (st.block_state == ISAL_BLOCK_FINISH && got == 0) break; /* bytes after the stream */
    }
  }
  unsigned char d1[32], d2[32];
  EVP_DigestFinal_ex(compressed, d1, NULL);
  EVP_DigestFinal_ex(tar, d2, NULL);
  EVP_MD_CTX_free(compressed);
  EVP_MD_CTX_free(tar);
  if (fsync(blob) != 0) die("fsync");
  close(blob);
  if (rename(tmp, dst) != 0) die("rename");
  close(src);
  char h1[65], h2[65];
  hex(d1, h1);
  hex(d2, h2);
  printf("layer %d sha256:%s diff sha256:%s\n", i, h1, h2);
}

static void *worker(void *arg) {
  (void)arg;
  unsigned char *in = malloc(IN_BYTES), *out = malloc(OUT_BYTES);
  if (!in || !out) die("malloc");
  for (int i; (i = atomic_fetch_add(&next_source, 1)) < nsources;) pull_layer(i, in, out);
  free(in);
  free(out);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: pull-floor THREADS OUTDIR (http://HOST:PORT/PATH | FILE)...\n");
    return 2;
  }
  int threads = atoi(argv[1]);
  if (threads < 1 || threads > MAX_THREADS) threads = 1;
  outdir = argv[2];
  sources = argv + 3;
  nsources = argc - 3;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (mkdir(outdir, 0755) != 0) die(outdir);
  pthread_t th[MAX_THREADS];
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("wall %.0f ms\n", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  return 0;
}

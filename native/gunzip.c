/* See gunzip.h. ISA-L inflates ~6x faster than zlib here (a 54 MB layer: 0.03 s vs 0.21 s). */
#include "gunzip.h"

#include <isa-l/igzip_lib.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Not one of ISA-L's codes (those are > -100). */
#define BERTH_NO_PROGRESS (-100)
#define BERTH_DIGEST_FAILED (-101)

struct berth_gunzip {
  struct inflate_state st;
  /* A member ended: only zero padding or another member may follow. */
  bool between;
  /* Bytes taken in that come after the member that ended: ISA-L had read them ahead. */
  uint8_t pend[16];
  size_t pend_len;
  size_t pend_off;
  EVP_MD_CTX *in_sha;
  EVP_MD_CTX *out_sha;
};

static void start_member(berth_gunzip *g) {
  isal_inflate_init(&g->st);
  g->st.crc_flag = ISAL_GZIP;
  g->between = false;
}

berth_gunzip *berth_gunzip_new(bool digests) {
  berth_gunzip *g = calloc(1, sizeof(*g));
  if (g == NULL) return NULL;
  start_member(g);
  if (digests) {
    g->in_sha = EVP_MD_CTX_new();
    g->out_sha = EVP_MD_CTX_new();
    if (g->in_sha == NULL || g->out_sha == NULL || EVP_DigestInit_ex(g->in_sha, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(g->out_sha, EVP_sha256(), NULL) != 1) {
      berth_gunzip_free(g);
      return NULL;
    }
  }
  return g;
}

void berth_gunzip_free(berth_gunzip *g) {
  if (g == NULL) return;
  EVP_MD_CTX_free(g->in_sha);
  EVP_MD_CTX_free(g->out_sha);
  free(g);
}

/* One isal_inflate call; at a member's end, keeps the bytes it had read past the trailer. */
static int run(berth_gunzip *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, size_t *consumed,
               size_t *produced) {
  /* ISA-L counts in uint32_t. */
  if (in_len > UINT32_MAX) in_len = UINT32_MAX;
  if (out_len > UINT32_MAX) out_len = UINT32_MAX;
  g->st.next_in = (uint8_t *)in;
  g->st.avail_in = (uint32_t)in_len;
  g->st.next_out = out;
  g->st.avail_out = (uint32_t)out_len;
  int ret = isal_inflate(&g->st);
  *consumed = in_len - g->st.avail_in;
  *produced = out_len - g->st.avail_out;
  if (ret < 0) return ret;
  if (g->st.block_state == ISAL_BLOCK_FINISH) {
    size_t n = g->st.read_in_length / 8;
    if (n > 8) n = 8;
    for (size_t i = 0; i < n; i++) g->pend[i] = (uint8_t)(g->st.read_in >> (8 * i));
    g->pend_len = n;
    g->pend_off = 0;
    g->st.read_in = 0;
    g->st.read_in_length = 0;
    g->between = true;
  }
  return 0;
}

int berth_gunzip_stream(berth_gunzip *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                        size_t *consumed, size_t *produced) {
  size_t ip = 0, op = 0;
  int ret = 0;
  for (;;) {
    if (g->between) {
      while (g->pend_off < g->pend_len && g->pend[g->pend_off] == 0) g->pend_off++;
      if (g->pend_off == g->pend_len) {
        while (ip < in_len && in[ip] == 0) ip++;
        if (ip == in_len) break;
      }
      start_member(g);
    }
    if (op == out_len) break;
    size_t took = 0, gave = 0;
    size_t avail;
    if (g->pend_off < g->pend_len) {
      /* Bytes read ahead of the last member's end go first. run() may refill pend with a
         read-ahead of its own, which comes before what this call does not take. */
      uint8_t ahead[sizeof(g->pend)];
      avail = g->pend_len - g->pend_off;
      memcpy(ahead, g->pend + g->pend_off, avail);
      g->pend_len = g->pend_off = 0;
      ret = run(g, ahead, avail, out + op, out_len - op, &took, &gave);
      memcpy(g->pend + g->pend_len, ahead + took, avail - took);
      g->pend_len += avail - took;
    } else {
      g->pend_len = g->pend_off = 0;
      avail = in_len - ip;
      ret = run(g, in + ip, avail, out + op, out_len - op, &took, &gave);
      ip += took;
    }
    op += gave;
    if (ret < 0) break;
    if (took == 0 && gave == 0 && !g->between) {
      if (avail > 0) ret = BERTH_NO_PROGRESS;
      break;
    }
  }
  *consumed = ip;
  *produced = op;
  if (g->in_sha != NULL && (EVP_DigestUpdate(g->in_sha, in, ip) != 1 || EVP_DigestUpdate(g->out_sha, out, op) != 1))
    return ret < 0 ? ret : BERTH_DIGEST_FAILED;
  return ret;
}

bool berth_gunzip_ended(const berth_gunzip *g) {
  if (!g->between) return false;
  for (size_t i = g->pend_off; i < g->pend_len; i++) {
    if (g->pend[i] != 0) return false;
  }
  return true;
}

int berth_gunzip_digests(berth_gunzip *g, uint8_t in_sha[32], uint8_t out_sha[32]) {
  if (g->in_sha == NULL) return BERTH_DIGEST_FAILED;
  unsigned int n = 0, m = 0;
  if (EVP_DigestFinal_ex(g->in_sha, in_sha, &n) != 1 || EVP_DigestFinal_ex(g->out_sha, out_sha, &m) != 1 || n != 32 ||
      m != 32)
    return BERTH_DIGEST_FAILED;
  return 0;
}

const char *berth_gunzip_error(int code) {
  switch (code) {
    case ISAL_INVALID_BLOCK:
      return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
      return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
      return "invalid distance too far back";
    case ISAL_INVALID_WRAPPER:
      return "incorrect header check";
    case ISAL_UNSUPPORTED_METHOD:
      return "unknown compression method";
    case ISAL_INCORRECT_CHECKSUM:
      return "incorrect data check";
    case BERTH_NO_PROGRESS:
      return "the inflater made no progress";
    case BERTH_DIGEST_FAILED:
      return "SHA-256 failed";
    default:
      return "invalid gzip data";
  }
}

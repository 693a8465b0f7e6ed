/* See gunzip.h. ISA-L inflates ~6x faster than zlib here (a 54 MB layer: 0.03 s vs 0.21 s). */
#include "gunzip.h"

#include <isa-l/igzip_lib.h>
#include <stdlib.h>

struct berth_gunzip {
  struct inflate_state st;
};

static void start_member(berth_gunzip *g) {
  isal_inflate_init(&g->st);
  g->st.crc_flag = ISAL_GZIP;
}

berth_gunzip *berth_gunzip_new(void) {
  berth_gunzip *g = malloc(sizeof(*g));
  if (g != NULL) start_member(g);
  return g;
}

void berth_gunzip_free(berth_gunzip *g) { free(g); }

void berth_gunzip_reset(berth_gunzip *g) { start_member(g); }

int berth_gunzip_run(berth_gunzip *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                     berth_gunzip_result *r) {
  /* ISA-L counts in uint32_t. */
  if (in_len > UINT32_MAX) in_len = UINT32_MAX;
  if (out_len > UINT32_MAX) out_len = UINT32_MAX;
  g->st.next_in = (uint8_t *)in;
  g->st.avail_in = (uint32_t)in_len;
  g->st.next_out = out;
  g->st.avail_out = (uint32_t)out_len;
  int ret = isal_inflate(&g->st);
  r->consumed = in_len - g->st.avail_in;
  r->produced = out_len - g->st.avail_out;
  r->finished = g->st.block_state == ISAL_BLOCK_FINISH;
  r->leftover_len = 0;
  if (ret < 0) return ret;
  if (r->finished) {
    /* Input ISA-L took into its bit buffer beyond the trailer: the next member's first bytes. */
    size_t n = g->st.read_in_length / 8;
    if (n > sizeof(r->leftover)) n = sizeof(r->leftover);
    for (size_t i = 0; i < n; i++) r->leftover[i] = (uint8_t)(g->st.read_in >> (8 * i));
    r->leftover_len = n;
    g->st.read_in = 0;
    g->st.read_in_length = 0;
  }
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
    default:
      return "invalid gzip data";
  }
}

/*
 * Streaming gzip decompression with ISA-L's igzip (gunzip.c): one member at a time, the gzip
 * header parsed and the CRC-32 and length in its trailer checked by ISA-L. Multi-member streams
 * are the caller's to continue: at a member's end, the bytes ISA-L had already read past it are
 * handed back (`leftover`), then berth_gunzip_reset starts the next member.
 */
#ifndef BERTH_GUNZIP_H
#define BERTH_GUNZIP_H

#include <stddef.h>
#include <stdint.h>

typedef struct berth_gunzip berth_gunzip;

typedef struct {
  size_t consumed;
  size_t produced;
  int finished; /* the member (trailer included) is complete */
  uint8_t leftover[8];
  size_t leftover_len;
} berth_gunzip_result;

berth_gunzip *berth_gunzip_new(void);
void berth_gunzip_free(berth_gunzip *g);
void berth_gunzip_reset(berth_gunzip *g);
/* 0, or ISA-L's (negative) error for data that is not valid gzip. */
int berth_gunzip_run(berth_gunzip *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                     berth_gunzip_result *r);
const char *berth_gunzip_error(int code);

#endif

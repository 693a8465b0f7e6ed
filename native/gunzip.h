/*
 * Streaming gzip decompression with ISA-L's igzip (gunzip.c) for image layers: members one
 * after another, zero bytes between or after them skipped as padding (as zlib's gunzip does),
 * the gzip header parsed and each member's CRC-32 and length checked by ISA-L. Optionally
 * SHA-256 of the bytes taken in and of the bytes given out, so a layer's digest and diff id
 * are computed on the same (thread pool) thread that inflates it.
 */
#ifndef BERTH_GUNZIP_H
#define BERTH_GUNZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct berth_gunzip berth_gunzip;

/* NULL when out of memory. */
berth_gunzip *berth_gunzip_new(bool digests);
void berth_gunzip_free(berth_gunzip *g);
/*
 * Inflates from `in` into `out`, continuing the stream: stops when `in` is used up (and ISA-L
 * holds no more output) or `out` is full. `*consumed`/`*produced` get the bytes taken and
 * given; both are hashed when digests are on. 0, or a negative error for data that is not
 * gzip (berth_gunzip_error names it).
 */
int berth_gunzip_stream(berth_gunzip *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                        size_t *consumed, size_t *produced);
/* The stream so far ends cleanly: at least one member, the last one complete. */
bool berth_gunzip_ended(const berth_gunzip *g);
/* The SHA-256 of the input and of the output so far (digests on); finishes both hashes. */
int berth_gunzip_digests(berth_gunzip *g, uint8_t in_sha[32], uint8_t out_sha[32]);
const char *berth_gunzip_error(int code);

#endif

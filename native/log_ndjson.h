/*
 * berth-collector's hot path in one pass (log_ndjson.c): a chunk of a CRI log (or of a raw
 * text file) -> NDJSON records, doing what src/collector/assembler.ts + line-format.ts +
 * ndjson.ts do for a pipeline without processors or multiline, byte for byte.
 */
#ifndef BERTH_LOG_NDJSON_H
#define BERTH_LOG_NDJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { NDJSON_CRI = 0, NDJSON_RAW = 1 };
/* skip bits: records of these streams are consumed but not written (IgnoringStdout/Stderr). */
enum { NDJSON_SKIP_STDOUT = 1, NDJSON_SKIP_STDERR = 2 };

typedef struct {
  const uint8_t *chunk;
  size_t len;
  int format;
  /* Close what is open at the end of the chunk (what the JS assembler's `force` does). */
  bool force;
  size_t max_record_bytes;
  /* The tags' JSON: `"` + `,"k":"v"`… + `}\n` (ndjson.ts's tagsSuffix). */
  const uint8_t *suffix;
  size_t suffix_len;
  int skip;
  /* The time of lines without their own (raw lines, lines not in the CRI format). */
  int64_t now_ms;
} ndjson_in;

typedef struct {
  /* The records: a thread-local buffer, valid until the next call. */
  const uint8_t *data;
  size_t len;
  /* Bytes of the chunk up to the last clean point (nothing open in any stream). */
  size_t consumed;
  size_t count;
  /* UTF-16 length of the records' content (the pipeline's bytes metric). */
  uint64_t units;
  bool pending;
} ndjson_out;

typedef enum {
  NDJSON_OK = 0,
  /* Something whose JS result this code does not reproduce (a time JS's Date.parse reads
   * loosely, a year outside 0000-9999): the caller takes the JS path for this chunk. */
  NDJSON_BAIL = 1,
  NDJSON_NOMEM = 2,
} ndjson_status;

ndjson_status log_ndjson(const ndjson_in *in, ndjson_out *out);

#endif

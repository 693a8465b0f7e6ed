/*
 * A chunk of a CRI log (`<RFC3339Nano> <stream> <P|F> <content>` lines) or of a raw text
 * file -> NDJSON records, in one pass and with no per-line allocation: lines split, the CRI
 * prefix read, P parts joined per stream, and each record written as
 *   {"content":<JSON string>,"_source_":"stdout","_time_":"<RFC 3339, 9 digits>Z"<tags>
 * exactly as the JS path writes it (assembler.ts, line-format.ts, ndjson.ts): content bytes
 * decoded as Buffer.toString("utf8") does (WHATWG UTF-8, an ill-formed subsequence becomes
 * one U+FFFD) and escaped as JSON.stringify does; clean points and the records before the last
 * one as assemble() reports them. Times JS reads in ways not reproduced here (Date.parse's
 * leniency, years outside 0000-9999) make the whole chunk BAIL to the JS path.
 */
#include "log_ndjson.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------ output */

typedef struct {
  uint8_t *p;
  size_t len;
  size_t cap;
} obuf;

static __thread obuf out_buf;
static __thread obuf part_buf[2];

static bool room(obuf *b, size_t n) {
  if (b->p && b->len + n <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 64 * 1024;
  while (cap < b->len + n) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) return false;
  b->p = p;
  b->cap = cap;
  return true;
}

/* Scratch buffers grown by an odd huge chunk are given back rather than kept per thread. */
static void shrink(obuf *b) {
  if (b->cap > 4 * 1024 * 1024) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
  }
  b->len = 0;
}

static inline void put(obuf *b, const void *s, size_t n) {
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

/* ------------------------------------------------------------------- time */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned month_days(int64_t y, unsigned m) {
  static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what toISOString writes with a 4-digit year. */
#define MIN_SEC (-62167219200LL)
#define MAX_SEC (253402300799LL)

typedef struct {
  int64_t sec;
  uint32_t nsec;
} ts;

static __thread int64_t fmt_sec = INT64_MIN;
static __thread char fmt_text[19];

/* `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (30 bytes), UTC; the seconds text is kept for the next. */
static void put_time(obuf *b, ts t) {
  if (t.sec != fmt_sec) {
    int64_t days = t.sec >= 0 ? t.sec / 86400 : -((-t.sec + 86399) / 86400);
    int64_t rem = t.sec - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned hh = (unsigned)(rem / 3600), mi = (unsigned)(rem / 60 % 60), ss = (unsigned)(rem % 60);
    char *s = fmt_text;
    s[0] = (char)('0' + y / 1000 % 10);
    s[1] = (char)('0' + y / 100 % 10);
    s[2] = (char)('0' + y / 10 % 10);
    s[3] = (char)('0' + y % 10);
    s[4] = '-';
    s[5] = (char)('0' + m / 10);
    s[6] = (char)('0' + m % 10);
    s[7] = '-';
    s[8] = (char)('0' + d / 10);
    s[9] = (char)('0' + d % 10);
    s[10] = 'T';
    s[11] = (char)('0' + hh / 10);
    s[12] = (char)('0' + hh % 10);
    s[13] = ':';
    s[14] = (char)('0' + mi / 10);
    s[15] = (char)('0' + mi % 10);
    s[16] = ':';
    s[17] = (char)('0' + ss / 10);
    s[18] = (char)('0' + ss % 10);
    fmt_sec = t.sec;
  }
  uint8_t *o = b->p + b->len;
  memcpy(o, fmt_text, 19);
  o[19] = '.';
  uint32_t n = t.nsec;
  for (int i = 28; i >= 20; i--) {
    o[i] = (uint8_t)('0' + n % 10);
    n /= 10;
  }
  o[29] = 'Z';
  b->len += 30;
}

static inline bool digit(uint8_t c) { return c >= '0' && c <= '9'; }
static inline unsigned d2(const uint8_t *p) { return (unsigned)(p[0] - '0') * 10 + (p[1] - '0'); }

enum { T_NOT = 0, T_OK = 1, T_BAIL = 2 };

/*
 * criTime(): `YYYY-MM-DDTHH:MM:SS[.f…](Z|±hh:mm)` at [p, e). T_NOT where the JS decoder's
 * checks or its RFC 3339 regex fail (the line is then not a CRI line), T_BAIL where
 * Date.parse would have the last word.
 */
static int cri_time(const uint8_t *p, const uint8_t *e, ts *out) {
  if (e - p < 20) return T_NOT;
  const uint8_t *zs = p + 19;
  uint32_t frac = 0;
  int digits = 0;
  if (*zs == '.') {
    zs++;
    while (zs < e && digit(*zs)) {
      if (digits < 9) {
        frac = frac * 10 + (uint32_t)(*zs - '0');
        digits++;
      }
      zs++;
    }
    if (digits == 0) return T_NOT;
  }
  const ptrdiff_t zone_len = e - zs;
  if (zone_len != 1 && zone_len != 6) return T_NOT;
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  for (int i = 0; i < 19; i++) {
    if (shape[i] == 'd' ? !digit(p[i]) : p[i] != (uint8_t)shape[i]) return T_NOT;
  }
  int64_t offset = 0;
  if (zone_len == 1) {
    if (*zs != 'Z') return T_NOT;
  } else {
    if ((zs[0] != '+' && zs[0] != '-') || !digit(zs[1]) || !digit(zs[2]) || zs[3] != ':' || !digit(zs[4]) ||
        !digit(zs[5]))
      return T_NOT;
    unsigned oh = d2(zs + 1), om = d2(zs + 4);
    if (oh > 23 || om > 59) return T_BAIL;
    offset = (int64_t)(oh * 3600 + om * 60) * (zs[0] == '+' ? 1 : -1);
  }
  const int64_t y = d2(p) * 100 + d2(p + 2);
  const unsigned mo = d2(p + 5), d = d2(p + 8), hh = d2(p + 11), mi = d2(p + 14), ss = d2(p + 17);
  if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || hh > 23 || mi > 59 || ss > 59) return T_BAIL;
  const int64_t sec = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - offset;
  if (sec < MIN_SEC || sec > MAX_SEC) return T_BAIL;
  for (int i = digits; i < 9; i++) frac *= 10;
  out->sec = sec;
  out->nsec = frac;
  return T_OK;
}

/* ---------------------------------------------------------------- escaping */

static const char HEX[] = "0123456789abcdef";

/*
 * Content bytes -> a JSON string body: Buffer.toString("utf8") then JSON.stringify, in one
 * pass. Needs room for 6 bytes per input byte + 16. Returns the string's UTF-16 length.
 */
static uint64_t put_escaped(obuf *b, const uint8_t *s, size_t n) {
  uint8_t *o = b->p + b->len;
  uint64_t units = 0;
  size_t i = 0;
  while (i < n) {
#if defined(__SSE2__)
    /* Runs of printable ASCII other than `"` and `\`, 16 bytes at a time (signed compare:
     * bytes >= 0x80 are negative, so `< 0x20` catches them with the control characters). */
    const __m128i lim = _mm_set1_epi8(0x20), q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    while (i + 16 <= n) {
      __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
      _mm_storeu_si128((__m128i *)o, v);
      __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, lim), _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)));
      unsigned mask = (unsigned)_mm_movemask_epi8(bad);
      if (mask) {
        unsigned k = (unsigned)__builtin_ctz(mask);
        o += k;
        i += k;
        units += k;
        break;
      }
      o += 16;
      i += 16;
      units += 16;
    }
    if (i >= n) break;
#endif
    uint8_t c = s[i];
    if (c < 0x80) {
      units++;
      i++;
      if (c >= 0x20 && c != '"' && c != '\\') {
        *o++ = c;
        continue;
      }
      *o++ = '\\';
      switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
          o[0] = 'u';
          o[1] = '0';
          o[2] = '0';
          o[3] = (uint8_t)HEX[c >> 4];
          o[4] = (uint8_t)HEX[c & 15];
          o += 5;
      }
      continue;
    }
    /* WHATWG UTF-8 decoding: the bytes of a well-formed sequence are kept, a maximal
     * ill-formed subpart becomes one U+FFFD and the byte that ended it is read again. */
    int need;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c == 0xe0) lo = 0xa0;
      else if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c == 0xf0) lo = 0x90;
      else if (c == 0xf4) hi = 0x8f;
    } else need = 0;
    size_t j = i + 1;
    int got = 0;
    if (need) {
      while (got < need && j < n && s[j] >= lo && s[j] <= hi) {
        lo = 0x80;
        hi = 0xbf;
        j++;
        got++;
      }
    }
    if (need && got == need) {
      memcpy(o, s + i, j - i);
      o += j - i;
      units += need == 3 ? 2 : 1;
    } else {
      o[0] = 0xef;
      o[1] = 0xbf;
      o[2] = 0xbd;
      o += 3;
      units++;
    }
    i = j;
  }
  b->len = (size_t)(o - b->p);
  return units;
}

/* ---------------------------------------------------------------- assembly */

typedef struct {
  bool open;
  uint64_t seq; /* opening order: what the JS Map's insertion order gives at a forced end */
  ts time;
} partial;

typedef struct {
  const ndjson_in *in;
  obuf *out;
  uint64_t count;
  uint64_t units;
  partial parts[2];
  uint64_t seq;
} state;

static const char HEAD[] = "{\"content\":\"";
static const char *const SOURCE_TIME[] = {"\",\"_source_\":\"stdout\",\"_time_\":\"",
                                          "\",\"_source_\":\"stderr\",\"_time_\":\""};
static const char NO_SOURCE_TIME[] = "\",\"_time_\":\"";

/* stream: 0 stdout, 1 stderr, -1 none (raw lines). */
static bool emit(state *st, int stream, ts time, const uint8_t *s, size_t n) {
  if (stream >= 0 && (st->in->skip & (1 << stream))) return true;
  obuf *b = st->out;
  if (!room(b, n * 6 + 16 + sizeof(HEAD) + 40 + 30 + st->in->suffix_len)) return false;
  put(b, HEAD, sizeof(HEAD) - 1);
  st->units += put_escaped(b, s, n);
  if (stream >= 0) put(b, SOURCE_TIME[stream], strlen(SOURCE_TIME[stream]));
  else put(b, NO_SOURCE_TIME, sizeof(NO_SOURCE_TIME) - 1);
  put_time(b, time);
  /* The suffix begins with the time's closing quote. */
  put(b, st->in->suffix, st->in->suffix_len);
  st->count++;
  return true;
}

static bool finish_partial(state *st, int stream) {
  partial *p = &st->parts[stream];
  p->open = false;
  obuf *pb = &part_buf[stream];
  bool ok = emit(st, stream, p->time, pb->p, pb->len);
  pb->len = 0;
  return ok;
}

static ts now_ts(int64_t ms) {
  int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  return (ts){sec, (uint32_t)(ms - sec * 1000) * 1000000u};
}

/* One physical line [ls, le) (without its newline): decodeCriLine, then assemble()'s physicalLine. */
static int physical_line(state *st, const uint8_t *ls, const uint8_t *le) {
  const ndjson_in *in = st->in;
  int stream = in->format == NDJSON_RAW ? -1 : 0;
  bool is_partial = false;
  const uint8_t *cs = ls;
  ts time;
  bool decoded = false;
  if (in->format == NDJSON_CRI) {
    const uint8_t *s1 = memchr(ls, ' ', (size_t)(le - ls));
    if (s1 && s1 + 9 <= le && s1[1] == 's' && s1[2] == 't' && s1[3] == 'd' && s1[7] == ' ' &&
        (s1[8] == 'P' || s1[8] == 'F') && (s1 + 9 == le || s1[9] == ' ')) {
      int which = s1[4] == 'o' && s1[5] == 'u' && s1[6] == 't'   ? 0
                  : s1[4] == 'e' && s1[5] == 'r' && s1[6] == 'r' ? 1
                                                                 : -1;
      if (which >= 0) {
        int r = cri_time(ls, s1, &time);
        if (r == T_BAIL) return NDJSON_BAIL;
        if (r == T_OK) {
          decoded = true;
          stream = which;
          is_partial = s1[8] == 'P';
          cs = s1 + 10 < le ? s1 + 10 : le;
        }
      }
    }
  }
  if (!decoded) time = now_ts(in->now_ms);
  const size_t n = (size_t)(le - cs);
  if (stream < 0) return emit(st, stream, time, cs, n) ? NDJSON_OK : NDJSON_NOMEM;
  partial *p = &st->parts[stream];
  obuf *pb = &part_buf[stream];
  if (is_partial) {
    if (!room(pb, n)) return NDJSON_NOMEM;
    put(pb, cs, n);
    if (p->open) {
      if (pb->len >= in->max_record_bytes && !finish_partial(st, stream)) return NDJSON_NOMEM;
    } else {
      p->open = true;
      p->seq = st->seq++;
      p->time = time;
    }
    return NDJSON_OK;
  }
  if (p->open) {
    if (!room(pb, n)) return NDJSON_NOMEM;
    put(pb, cs, n);
    return finish_partial(st, stream) ? NDJSON_OK : NDJSON_NOMEM;
  }
  return emit(st, stream, time, cs, n) ? NDJSON_OK : NDJSON_NOMEM;
}

ndjson_status log_ndjson(const ndjson_in *in, ndjson_out *out) {
  shrink(&out_buf);
  shrink(&part_buf[0]);
  shrink(&part_buf[1]);
  state st = {.in = in, .out = &out_buf};
  const uint8_t *c = in->chunk, *end = in->chunk + in->len;
  size_t pos = 0, clean = 0, clean_len = 0;
  uint64_t clean_count = 0, clean_units = 0;
  while (pos < in->len) {
    const uint8_t *nl = memchr(c + pos, '\n', in->len - pos);
    int r;
    if (!nl) {
      if (!in->force) break;
      r = physical_line(&st, c + pos, end);
      pos = in->len;
    } else {
      r = physical_line(&st, c + pos, nl);
      pos = (size_t)(nl - c) + 1;
    }
    if (r != NDJSON_OK) return (ndjson_status)r;
    if (!st.parts[0].open && !st.parts[1].open) {
      clean = pos;
      clean_len = out_buf.len;
      clean_count = st.count;
      clean_units = st.units;
    }
  }
  if (in->force) {
    if (st.parts[0].open && st.parts[1].open) {
      int first = st.parts[0].seq < st.parts[1].seq ? 0 : 1;
      if (!finish_partial(&st, first) || !finish_partial(&st, 1 - first)) return NDJSON_NOMEM;
    } else
      for (int s = 0; s < 2; s++)
        if (st.parts[s].open && !finish_partial(&st, s)) return NDJSON_NOMEM;
    clean = pos;
    clean_len = out_buf.len;
    clean_count = st.count;
    clean_units = st.units;
  }
  out->pending = st.parts[0].open || st.parts[1].open || pos < in->len;
  part_buf[0].len = part_buf[1].len = 0;
  out->data = out_buf.p;
  out->len = clean_len;
  out->consumed = clean;
  out->count = clean_count;
  out->units = clean_units;
  return NDJSON_OK;
}

/*
 * A JSON reader that builds jansson values straight from the bytes.
 *
 * jansson's json_loadb reads through a character stream with a get/unget
 * call per byte and copies every token into a growing buffer; for the
 * small payloads of a cache read that is most of the client's CPU. This
 * reader scans the buffer in place, hands strings without escapes to
 * jansson as slices and keys with their lengths, and accepts exactly what
 * json_loadb(buf, len, JSON_DECODE_ANY) accepts (tests/unit/test_codec.c
 * compares the two on valid and invalid inputs):
 *   - RFC 8259 grammar, any value at the top, whitespace " \t\n\r";
 *   - strings valid UTF-8, no control bytes, escapes incl. surrogate
 *     pairs, no \u0000 (in values or keys);
 *   - integers that fit json_int_t (else an error, as jansson), other
 *     numbers as reals (overflow to infinity is an error);
 *   - duplicate keys: the last one wins; nesting at most
 *     JSON_PARSER_MAX_DEPTH; nothing after the value but whitespace.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/payload.h"

typedef struct {
  const unsigned char *p, *end, *start;
  char *err;
  size_t errlen;
  int depth;
  char *scratch; /* unescaped strings */
  size_t cap;
} reader_t;

static json_t *fail(reader_t *r, const char *what) {
  if (r->err && r->errlen && !r->err[0])
    snprintf(r->err, r->errlen, "invalid JSON at byte %zu: %s",
             (size_t)(r->p - r->start), what);
  return NULL;
}

static void skip_ws(reader_t *r) {
  while (r->p < r->end &&
         (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
    r->p++;
}

/* Length of one valid UTF-8 sequence at p (non-ASCII lead), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  size_t n;
  unsigned min;
  if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000;
  else return 0;
  if ((size_t)(end - p) < n) return 0;
  unsigned v = c & (0xFF >> (n + 1));
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  return n;
}

static int hex4(const unsigned char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int c = p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

static bool reserve(reader_t *r, size_t n) {
  if (n <= r->cap) return true;
  size_t cap = r->cap ? r->cap : 256;
  while (cap < n) cap *= 2;
  char *s = realloc(r->scratch, cap);
  if (!s) return false;
  r->scratch = s;
  r->cap = cap;
  return true;
}

/* A string at r->p (after the quote): out and len point into the buffer or
 * into r->scratch (valid until the next string). false on error. */
static bool read_string(reader_t *r, const char **out, size_t *len) {
  const unsigned char *s = r->p;
  /* fast path: no escapes */
  while (r->p < r->end) {
    unsigned c = *r->p;
    if (c == '"') {
      *out = (const char *)s;
      *len = (size_t)(r->p - s);
      r->p++;
      return true;
    }
    if (c == '\\') break;
    if (c < 0x20) return fail(r, "control character in a string"), false;
    if (c < 0x80) {
      r->p++;
    } else {
      size_t n = utf8_seq(r->p, r->end);
      if (!n) return fail(r, "invalid UTF-8 in a string"), false;
      r->p += n;
    }
  }
  if (r->p >= r->end) return fail(r, "unterminated string"), false;
  /* escapes: copy what was scanned, then unescape into scratch */
  size_t used = (size_t)(r->p - s);
  if (!reserve(r, used + 64)) return fail(r, "out of memory"), false;
  memcpy(r->scratch, s, used);
  while (r->p < r->end) {
    unsigned c = *r->p;
    if (!reserve(r, used + 8)) return fail(r, "out of memory"), false;
    if (c == '"') {
      r->p++;
      *out = r->scratch;
      *len = used;
      return true;
    }
    if (c < 0x20) return fail(r, "control character in a string"), false;
    if (c >= 0x80) {
      size_t n = utf8_seq(r->p, r->end);
      if (!n) return fail(r, "invalid UTF-8 in a string"), false;
      memcpy(r->scratch + used, r->p, n);
      used += n;
      r->p += n;
      continue;
    }
    if (c != '\\') {
      r->scratch[used++] = (char)c;
      r->p++;
      continue;
    }
    if (r->end - r->p < 2) break;
    unsigned e = r->p[1];
    r->p += 2;
    char simple = e == '"' ? '"' : e == '\\' ? '\\' : e == '/' ? '/'
                : e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n'
                : e == 'r' ? '\r' : e == 't' ? '\t' : 0;
    if (simple) {
      r->scratch[used++] = simple;
      continue;
    }
    if (e != 'u') return fail(r, "invalid escape"), false;
    if (r->end - r->p < 4) break;
    int v = hex4(r->p);
    if (v < 0) return fail(r, "invalid \\u escape"), false;
    r->p += 4;
    long cp = v;
    if (v >= 0xD800 && v <= 0xDBFF) { /* a high surrogate needs its low half */
      if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u')
        return fail(r, "invalid Unicode: lone surrogate"), false;
      int lo = hex4(r->p + 2);
      if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(r, "invalid Unicode: bad surrogate pair"), false;
      r->p += 6;
      cp = 0x10000 + (((long)v - 0xD800) << 10) + (lo - 0xDC00);
    } else if (v >= 0xDC00 && v <= 0xDFFF) {
      return fail(r, "invalid Unicode: lone surrogate"), false;
    } else if (v == 0) {
      return fail(r, "\\u0000 is not allowed"), false;
    }
    char *o = r->scratch + used;
    if (cp < 0x80) {
      o[0] = (char)cp, used += 1;
    } else if (cp < 0x800) {
      o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F));
      used += 2;
    } else if (cp < 0x10000) {
      o[0] = (char)(0xE0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
      o[2] = (char)(0x80 | (cp & 0x3F));
      used += 3;
    } else {
      o[0] = (char)(0xF0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
      o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F));
      used += 4;
    }
  }
  return fail(r, "unterminated string"), false;
}

/* A number token: *is_int with its value in *ival, or a real in *dval.
 * false (message set) when it is not a number jansson accepts. */
static bool scan_number(reader_t *r, bool *is_int, long long *ival,
                        double *dval) {
  const unsigned char *s = r->p;
  bool real = false;
  if (r->p < r->end && *r->p == '-') r->p++;
  if (r->p >= r->end) return fail(r, "invalid number"), false;
  if (*r->p == '0') {
    r->p++;
    if (r->p < r->end && *r->p >= '0' && *r->p <= '9')
      return fail(r, "invalid number: leading zero"), false;
  } else if (*r->p >= '1' && *r->p <= '9') {
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  } else {
    return fail(r, "invalid number"), false;
  }
  if (r->p < r->end && *r->p == '.') {
    real = true;
    r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
      return fail(r, "invalid number"), false;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    real = true;
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
      return fail(r, "invalid number"), false;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  }
  size_t n = (size_t)(r->p - s);
  *is_int = !real;
  if (!real && n <= 18) { /* fits: no strtoll */
    long long v = 0;
    const unsigned char *q = s + (*s == '-');
    while (q < r->p) v = v * 10 + (*q++ - '0');
    *ival = *s == '-' ? -v : v;
    return true;
  }
  char buf[64], *num = n < sizeof buf ? buf : malloc(n + 1);
  if (!num) return fail(r, "out of memory"), false;
  memcpy(num, s, n);
  num[n] = 0;
  bool ok = true;
  errno = 0;
  if (!real) {
    *ival = strtoll(num, NULL, 10);
    if (errno == ERANGE) {
      fail(r, *ival < 0 ? "too big negative integer" : "too big integer");
      ok = false;
    }
  } else {
    /* strtod follows the locale's decimal point */
    const char *dp = localeconv()->decimal_point;
    char *dot = dp && dp[0] && dp[0] != '.' && !dp[1] ? strchr(num, '.') : NULL;
    if (dot) *dot = dp[0];
    *dval = strtod(num, NULL);
    if (errno == ERANGE && (*dval == HUGE_VAL || *dval == -HUGE_VAL)) {
      fail(r, "real number overflow");
      ok = false;
    }
  }
  if (num != buf) free(num);
  return ok;
}

static json_t *read_number(reader_t *r) {
  bool is_int;
  long long i;
  double d;
  if (!scan_number(r, &is_int, &i, &d)) return NULL;
  json_t *v = is_int ? json_integer(i) : json_real(d);
  return v ? v : fail(r, "out of memory");
}

static json_t *read_value(reader_t *r);

static json_t *read_object(reader_t *r) {
  json_t *obj = json_object();
  if (!obj) return fail(r, "out of memory");
  r->p++; /* { */
  skip_ws(r);
  if (r->p < r->end && *r->p == '}') {
    r->p++;
    return obj;
  }
  for (;;) {
    if (r->p >= r->end || *r->p != '"') {
      json_decref(obj);
      return fail(r, "string or '}' expected");
    }
    r->p++;
    const char *k;
    size_t klen;
    if (!read_string(r, &k, &klen)) {
      json_decref(obj);
      return NULL;
    }
    /* the value may reuse the scratch buffer: keep the key */
    char kbuf[64], *key = klen < sizeof kbuf ? kbuf : malloc(klen + 1);
    if (!key) {
      json_decref(obj);
      return fail(r, "out of memory");
    }
    memcpy(key, k, klen);
    key[klen] = 0;
    skip_ws(r);
    json_t *v = NULL;
    if (r->p >= r->end || *r->p != ':') {
      fail(r, "':' expected");
    } else {
      r->p++;
      skip_ws(r);
      v = read_value(r);
    }
    if (!v || json_object_setn_new_nocheck(obj, key, klen, v)) {
      if (v) fail(r, "out of memory");
      if (key != kbuf) free(key);
      json_decref(obj);
      return NULL;
    }
    if (key != kbuf) free(key);
    skip_ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      skip_ws(r);
      continue;
    }
    if (r->p < r->end && *r->p == '}') {
      r->p++;
      return obj;
    }
    json_decref(obj);
    return fail(r, "',' or '}' expected");
  }
}

static json_t *read_array(reader_t *r) {
  json_t *arr = json_array();
  if (!arr) return fail(r, "out of memory");
  r->p++; /* [ */
  skip_ws(r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    return arr;
  }
  for (;;) {
    json_t *v = read_value(r);
    if (!v || json_array_append_new(arr, v)) {
      if (v) fail(r, "out of memory");
      json_decref(arr);
      return NULL;
    }
    skip_ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      skip_ws(r);
      continue;
    }
    if (r->p < r->end && *r->p == ']') {
      r->p++;
      return arr;
    }
    json_decref(arr);
    return fail(r, "',' or ']' expected");
  }
}

static bool literal(reader_t *r, const char *word, size_t n) {
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return false;
  r->p += n;
  return true;
}

static json_t *read_value(reader_t *r) {
  if (r->p >= r->end) return fail(r, "unexpected end of input");
  switch (*r->p) {
  case '{':
  case '[': {
    if (++r->depth > JSON_PARSER_MAX_DEPTH) return fail(r, "maximum parsing depth reached");
    json_t *v = *r->p == '{' ? read_object(r) : read_array(r);
    r->depth--;
    return v;
  }
  case '"': {
    r->p++;
    const char *s;
    size_t len;
    if (!read_string(r, &s, &len)) return NULL;
    json_t *v = json_stringn_nocheck(s, len);
    return v ? v : fail(r, "out of memory");
  }
  case 't':
    if (literal(r, "true", 4)) return json_true();
    break;
  case 'f':
    if (literal(r, "false", 5)) return json_false();
    break;
  case 'n':
    if (literal(r, "null", 4)) return json_null();
    break;
  default:
    if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) return read_number(r);
  }
  return fail(r, "invalid token");
}

json_t *miscache__json_parse(const char *buf, size_t len, char *err,
                             size_t errlen) {
  if (err && errlen) err[0] = 0;
  reader_t r = {.p = (const unsigned char *)buf,
                .end = (const unsigned char *)buf + len,
                .start = (const unsigned char *)buf,
                .err = err,
                .errlen = errlen};
  if (!buf) {
    fail(&r, "no input");
    return NULL;
  }
  skip_ws(&r);
  json_t *v = read_value(&r);
  if (v) {
    skip_ws(&r);
    if (r.p != r.end) {
      json_decref(v);
      v = fail(&r, "end of input expected");
    }
  }
  free(r.scratch);
  return v;
}

/* ---- payload structs straight from the bytes ------------------------------- */

/* One member's value into the struct field f; false: not simple enough (or
 * not valid), the caller falls back to the tree. */
static bool direct_field(reader_t *r, const miscache__field_t *f, void *st) {
  char *at = (char *)st + f->offset;
  unsigned c = r->p < r->end ? *r->p : 0;
  switch (f->type) {
  case MISCACHE__F_INT:
  case MISCACHE__F_DOUBLE: {
    if (c != '-' && (c < '0' || c > '9')) return false;
    bool is_int;
    long long i;
    double d;
    if (!scan_number(r, &is_int, &i, &d)) return false;
    if (f->type == MISCACHE__F_INT) {
      if (!is_int) return false; /* the tree path says "not an integer" */
      *(int64_t *)at = i;
    } else {
      *(double *)at = is_int ? (double)i : d;
    }
    return true;
  }
  case MISCACHE__F_BOOL:
    if (literal(r, "true", 4)) return *(bool *)at = true, true;
    if (literal(r, "false", 5)) return *(bool *)at = false, true;
    return false;
  case MISCACHE__F_STRING: {
    if (c == 'n') return !f->required && literal(r, "null", 4);
    if (c != '"') return false;
    r->p++;
    const char *v;
    size_t len;
    if (!read_string(r, &v, &len)) return false;
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, v, len);
    copy[len] = 0;
    *(char **)at = copy;
    return true;
  }
  case MISCACHE__F_STRINGS: {
    if (c != '[') return false;
    miscache_strings_t *a = (miscache_strings_t *)at;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') return r->p++, true;
    for (;;) {
      if (r->p >= r->end || *r->p != '"') return false;
      r->p++;
      const char *v;
      size_t len;
      if (!read_string(r, &v, &len) || memchr(v, 0, len)) return false;
      char *items = NULL; /* push a terminated copy */
      char buf[256], *copy = len < sizeof buf ? buf : (items = malloc(len + 1));
      if (!copy) return false;
      memcpy(copy, v, len);
      copy[len] = 0;
      miscache_status_t ps = miscache_strings_push(a, copy);
      free(items);
      if (ps != MISCACHE_OK) return false;
      skip_ws(r);
      if (r->p < r->end && *r->p == ',') {
        r->p++;
        skip_ws(r);
        continue;
      }
      if (r->p < r->end && *r->p == ']') return r->p++, true;
      return false;
    }
  }
  case MISCACHE__F_JSON: {
    json_t *v = read_value(r);
    if (!v) return false;
    *(json_t **)at = v;
    return true;
  }
  case MISCACHE__F_OBJECT:
    return false; /* its unknown members live in the parent's extra */
  }
  return false;
}

miscache_status_t miscache__json_decode_struct(const miscache__payload_t *d,
                                               const char *buf, size_t len,
                                               void *st) {
  /* no message: a value this path refuses goes to the tree path, which
   * says why */
  reader_t r = {.p = (const unsigned char *)buf,
                .end = (const unsigned char *)buf + len,
                .start = (const unsigned char *)buf};
  uint64_t seen = 0;
  size_t next = 0; /* the field expected next */
  bool ok = d->nfields <= 64 && buf && d->nfields;
  if (ok) {
    skip_ws(&r);
    ok = r.p < r.end && *r.p == '{';
  }
  if (ok) {
    r.p++;
    skip_ws(&r);
    if (r.p < r.end && *r.p == '}') {
      r.p++;
    } else {
      for (;;) {
        if (r.p >= r.end || *r.p != '"') {
          ok = false;
          break;
        }
        r.p++;
        const char *k;
        size_t klen;
        size_t fi = d->nfields;
        if (read_string(&r, &k, &klen))
          /* members usually come in table order: start after the last */
          for (size_t t = 0; t < d->nfields; t++) {
            size_t c = (next + t) % d->nfields;
            const char *name = d->fields[c].name;
            /* k holds no NUL (the reader refuses one), so a match of
             * klen bytes stays inside name */
            if (klen && name[0] == k[0] && strncmp(name, k, klen) == 0 &&
                name[klen] == 0) {
              fi = c;
              next = c + 1;
              break;
            }
          }
        /* an unknown member (or a repeated one): the tree keeps it */
        if (fi == d->nfields || (seen >> fi) & 1u) {
          ok = false;
          break;
        }
        seen |= UINT64_C(1) << fi;
        skip_ws(&r);
        if (r.p >= r.end || *r.p != ':') {
          ok = false;
          break;
        }
        r.p++;
        skip_ws(&r);
        if (!direct_field(&r, &d->fields[fi], st)) {
          ok = false;
          break;
        }
        skip_ws(&r);
        if (r.p < r.end && *r.p == ',') {
          r.p++;
          skip_ws(&r);
          continue;
        }
        if (r.p < r.end && *r.p == '}') {
          r.p++;
          break;
        }
        ok = false;
        break;
      }
    }
  }
  if (ok) {
    skip_ws(&r);
    ok = r.p == r.end;
  }
  for (size_t i = 0; ok && i < d->nfields; i++)
    if (d->fields[i].required && !((seen >> i) & 1u)) ok = false;
  free(r.scratch);
  return ok ? MISCACHE_OK : MISCACHE_MISS; /* the caller clears the struct */
}

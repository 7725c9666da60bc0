/* Table-driven encode/decode of the fixed payloads (see payload.h). */
#include "base/payload.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(st, f, T) ((T *)((char *)(st) + (f)->offset))
#define CAT(st, f, T) ((const T *)((const char *)(st) + (f)->offset))

static json_t *encode_obj(const miscache__payload_t *d, const void *st,
                          const json_t *base, char *err, size_t errlen);

static json_t *encode_field(const miscache__field_t *f, const void *st,
                            const json_t *base, char *err, size_t errlen) {
  switch (f->type) {
  case MISCACHE__F_INT: return json_integer(*CAT(st, f, int64_t));
  case MISCACHE__F_DOUBLE: return json_real(*CAT(st, f, double));
  case MISCACHE__F_BOOL: return json_boolean(*CAT(st, f, bool));
  case MISCACHE__F_STRING: {
    const char *s = *CAT(st, f, char *);
    return s ? json_string(s) : json_null();
  }
  case MISCACHE__F_STRINGS: {
    const miscache_strings_t *a = CAT(st, f, miscache_strings_t);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < a->count; i++)
      if (!a->items[i] || json_array_append_new(arr, json_string(a->items[i]))) {
        json_decref(arr);
        arr = NULL;
      }
    return arr;
  }
  case MISCACHE__F_OBJECT:
    return encode_obj(f->sub, CAT(st, f, char),
                      json_object_get(base, f->name), err, errlen);
  case MISCACHE__F_JSON: {
    json_t *v = *(json_t *const *)((const char *)st + f->offset);
    return v ? json_incref(v) : json_null();
  }
  }
  return NULL;
}

static json_t *encode_obj(const miscache__payload_t *d, const void *st,
                          const json_t *base, char *err, size_t errlen) {
  json_t *obj = json_is_object(base) ? json_deep_copy(base) : json_object();
  if (!obj) {
    snprintf(err, errlen, "out of memory encoding %s", d->name);
    return NULL;
  }
  for (size_t i = 0; i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    json_t *v = encode_field(f, st, base, err, errlen);
    if (!v || json_object_set_new(obj, f->name, v)) {
      if (f->type != MISCACHE__F_OBJECT) /* a nested object said why */
        snprintf(err, errlen, "%s.%s cannot be encoded (invalid UTF-8?)",
                 d->name, f->name);
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

static json_t **extra_of(const miscache__payload_t *d, const void *st) {
  return d->extra_offset == MISCACHE__NO_EXTRA
             ? NULL
             : (json_t **)((char *)st + d->extra_offset);
}

json_t *miscache__payload_encode(const miscache__payload_t *d, const void *st,
                                 char *err, size_t errlen) {
  json_t **extra = extra_of(d, st);
  return encode_obj(d, st, extra ? *extra : NULL, err, errlen);
}

static miscache_status_t decode_field(const miscache__payload_t *d,
                                      const miscache__field_t *f,
                                      const json_t *v, void *st, char *err,
                                      size_t errlen) {
  const char *want = NULL;
  switch (f->type) {
  case MISCACHE__F_INT:
    if (!json_is_integer(v)) {
      want = "an integer";
      break;
    }
    *AT(st, f, int64_t) = json_integer_value(v);
    return MISCACHE_OK;
  case MISCACHE__F_DOUBLE:
    if (!json_is_number(v)) {
      want = "a number";
      break;
    }
    *AT(st, f, double) = json_number_value(v);
    return MISCACHE_OK;
  case MISCACHE__F_BOOL:
    if (!json_is_boolean(v)) {
      want = "true or false";
      break;
    }
    *AT(st, f, bool) = json_is_true(v);
    return MISCACHE_OK;
  case MISCACHE__F_STRING:
    if (json_is_null(v) && f->required) {
      want = "a string (it is required, and null)";
      break;
    }
    if (json_is_null(v)) return MISCACHE_OK;
    if (!json_is_string(v)) {
      want = "a string";
      break;
    }
    return (*AT(st, f, char *) = strdup(json_string_value(v)))
               ? MISCACHE_OK
               : MISCACHE_ERR_NOMEM;
  case MISCACHE__F_STRINGS: {
    if (!json_is_array(v)) {
      want = "an array of strings";
      break;
    }
    miscache_strings_t *a = AT(st, f, miscache_strings_t);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
      if (!json_is_string(e)) {
        want = "an array of strings";
        break;
      }
      if (miscache_strings_push(a, json_string_value(e)) != MISCACHE_OK)
        return MISCACHE_ERR_NOMEM;
    }
    if (want) break;
    return MISCACHE_OK;
  }
  case MISCACHE__F_OBJECT:
    if (!json_is_object(v)) {
      want = "an object";
      break;
    }
    return miscache__payload_decode(f->sub, v, AT(st, f, char), err, errlen);
  case MISCACHE__F_JSON:
    *AT(st, f, json_t *) = json_incref((json_t *)v);
    return MISCACHE_OK;
  }
  snprintf(err, errlen, "%s.%s is not %s", d->name, f->name, want);
  return MISCACHE_ERR_DECODE;
}

miscache_status_t miscache__payload_decode(const miscache__payload_t *d,
                                           const json_t *obj, void *st,
                                           char *err, size_t errlen) {
  if (!json_is_object(obj)) {
    snprintf(err, errlen, "%s is not a JSON object", d->name);
    return MISCACHE_ERR_DECODE;
  }
  for (size_t i = 0; i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    const json_t *v = json_object_get(obj, f->name);
    miscache_status_t st2 = MISCACHE_OK;
    if (!v) {
      if (f->required) {
        snprintf(err, errlen, "%s has no field %s", d->name, f->name);
        st2 = MISCACHE_ERR_DECODE;
      }
    } else {
      st2 = decode_field(d, f, v, st, err, errlen);
    }
    if (st2 != MISCACHE_OK) {
      if (st2 == MISCACHE_ERR_NOMEM) snprintf(err, errlen, "out of memory");
      miscache__payload_clear(d, st);
      return st2;
    }
  }
  json_t **extra = extra_of(d, st);
  if (extra) *extra = json_incref((json_t *)obj);
  return MISCACHE_OK;
}

void miscache__payload_clear(const miscache__payload_t *d, void *st) {
  json_t **extra = extra_of(d, st);
  if (extra) {
    json_decref(*extra);
    *extra = NULL;
  }
  for (size_t i = 0; i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    switch (f->type) {
    case MISCACHE__F_STRING:
      free(*AT(st, f, char *));
      *AT(st, f, char *) = NULL;
      break;
    case MISCACHE__F_STRINGS: miscache_strings_clear(AT(st, f, miscache_strings_t)); break;
    case MISCACHE__F_OBJECT: miscache__payload_clear(f->sub, AT(st, f, char)); break;
    case MISCACHE__F_JSON:
      json_decref(*AT(st, f, json_t *));
      *AT(st, f, json_t *) = NULL;
      break;
    case MISCACHE__F_INT: *AT(st, f, int64_t) = 0; break;
    case MISCACHE__F_DOUBLE: *AT(st, f, double) = 0; break;
    case MISCACHE__F_BOOL: *AT(st, f, bool) = false; break;
    }
  }
}

/* ---- the struct as text, without a tree ------------------------------------ */

typedef struct {
  char *s;
  size_t len, cap;
  bool failed;
} out_t;

/* Room for n more bytes and a terminator; false (failed set) if none. */
static bool reserve_out(out_t *o, size_t n) {
  if (o->failed) return false;
  if (o->len + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n + 1) cap *= 2;
    char *s = realloc(o->s, cap);
    if (!s) {
      o->failed = true;
      return false;
    }
    o->s = s;
    o->cap = cap;
  }
  return true;
}

static void put(out_t *o, const char *p, size_t n) {
  if (!reserve_out(o, n)) return;
  memcpy(o->s + o->len, p, n);
  o->len += n;
  o->s[o->len] = 0;
}

static void puts_lit(out_t *o, const char *p) { put(o, p, strlen(p)); }

/* Whether none of w's 8 bytes needs escaping or checking: each is
 * printable ASCII other than '"' and '\\'. (A byte below 0x20 sets its
 * high bit in w - 0x20..; the lowest '"' or '\\' is caught by the zero-byte
 * test; the borrows can only add false alarms, which the byte loop then
 * settles.) */
static inline bool plain8(uint64_t w) {
  const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  uint64_t bad = w | (w - ones * 0x20) | ((q - ones) & ~q) | ((b - ones) & ~b);
  return (bad & high) == 0;
}

static inline bool plain1(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* A JSON string as jansson writes it (UTF-8 kept, \uXXXX upper case for
 * the other control bytes); false for invalid UTF-8, which jansson
 * refuses to hold. */
static bool put_string(out_t *o, const char *str) {
  size_t len = strlen(str);
  /* worst case: every byte as \u00XX, plus the quotes */
  if (len > (SIZE_MAX - 8) / 6) return o->failed = true, true;
  if (!reserve_out(o, 6 * len + 2)) return true; /* failed: out of memory */
  const unsigned char *p = (const unsigned char *)str, *end = p + len;
  char *d = o->s + o->len;
  *d++ = '"';
  static const char hexd[] = "0123456789ABCDEF";
  for (;;) {
    /* what is written as it is, eight bytes a step, then byte by byte */
    while (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      if (!plain8(w)) break;
      memcpy(d, &w, 8);
      p += 8, d += 8;
    }
    while (p < end && plain1(*p)) *d++ = (char)*p++;
    if (p == end) break;
    unsigned c = *p;
    if (c < 0x80) {
      char e = c == '"' ? '"' : c == '\\' ? '\\' : c == '\b' ? 'b'
             : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r'
             : c == '\t' ? 't' : 0;
      *d++ = '\\';
      if (e) {
        *d++ = e;
      } else { /* another control byte */
        *d++ = 'u', *d++ = '0', *d++ = '0';
        *d++ = hexd[c >> 4], *d++ = hexd[c & 15];
      }
      p++;
      continue;
    }
    /* one whole, valid UTF-8 sequence (the string's NUL ends a short one) */
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!n) return false;
    unsigned v = c & (0xFFu >> (n + 1));
    for (size_t i = 1; i < n; i++) {
      if ((p[i] & 0xC0) != 0x80) return false;
      v = (v << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
      return false;
    for (size_t i = 0; i < n; i++) *d++ = (char)*p++;
  }
  *d++ = '"';
  *d = 0;
  o->len = (size_t)(d - o->s);
  return true;
}

/* A real as jansson writes it: %.17g, a ".0" when it looks like an
 * integer, no '+' or leading zeros in the exponent, '.' whatever the
 * locale. false for NaN and infinities (jansson refuses them). */
static bool put_real(out_t *o, double d) {
  if (!isfinite(d)) return false;
  char b[64];
  if (d == (double)(int64_t)d && fabs(d) < 1e15 && !(d == 0 && signbit(d))) {
    /* a whole number: %.17g prints its digits, jansson adds ".0" */
    size_t n = miscache__i64toa(b, (int64_t)d);
    memcpy(b + n, ".0", 3);
    puts_lit(o, b);
    return true;
  }
  snprintf(b, sizeof b, "%.17g", d);
  const char *dp = localeconv()->decimal_point;
  if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
    char *at = strchr(b, dp[0]);
    if (at) *at = '.';
  }
  if (!strchr(b, '.') && !strchr(b, 'e')) strcat(b, ".0");
  char *e = strchr(b, 'e');
  if (e) {
    char *start = e + 1, *end = start + 1;
    if (*start == '-') start++;
    while (*end == '0') end++;
    if (end != start) memmove(start, end, strlen(end) + 1);
  }
  puts_lit(o, b);
  return true;
}

static bool put_field(out_t *o, const miscache__field_t *f, const void *st) {
  char num[32];
  switch (f->type) {
  case MISCACHE__F_INT:
    put(o, num, miscache__i64toa(num, *CAT(st, f, int64_t)));
    return true;
  case MISCACHE__F_DOUBLE: return put_real(o, *CAT(st, f, double));
  case MISCACHE__F_BOOL:
    puts_lit(o, *CAT(st, f, bool) ? "true" : "false");
    return true;
  case MISCACHE__F_STRING: {
    const char *v = *CAT(st, f, char *);
    if (!v) return puts_lit(o, "null"), true;
    return put_string(o, v);
  }
  case MISCACHE__F_STRINGS: {
    const miscache_strings_t *a = CAT(st, f, miscache_strings_t);
    put(o, "[", 1);
    for (size_t i = 0; i < a->count; i++) {
      if (i) put(o, ",", 1);
      if (!a->items[i] || !put_string(o, a->items[i])) return false;
    }
    put(o, "]", 1);
    return true;
  }
  case MISCACHE__F_JSON: {
    json_t *v = *(json_t *const *)((const char *)st + f->offset);
    if (!v) return puts_lit(o, "null"), true;
    size_t n = 0;
    char *t = miscache__encode(v, &n);
    if (!t) return false;
    put(o, t, n);
    free(t);
    return true;
  }
  case MISCACHE__F_OBJECT: return false; /* not reached: the tree path */
  }
  return false;
}

char *miscache__payload_encode_text(const miscache__payload_t *d,
                                    const void *st, size_t *len, bool *tree,
                                    char *err, size_t errlen) {
  json_t **extra = extra_of(d, st);
  *tree = (extra && *extra) || d->nfields > 64;
  for (size_t i = 0; !*tree && i < d->nfields; i++)
    *tree = d->fields[i].type == MISCACHE__F_OBJECT;
  if (*tree) return NULL;
  out_t o = {0};
  reserve_out(&o, 511); /* one allocation for most records */
  put(&o, "{", 1);
  for (size_t i = 0; i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    if (i) put(&o, ",", 1);
    if (!put_string(&o, f->name)) o.failed = true;
    put(&o, ":", 1);
    if (!o.failed && !put_field(&o, f, st)) {
      snprintf(err, errlen, "%s.%s cannot be encoded (invalid UTF-8?)",
               d->name, f->name);
      free(o.s);
      return NULL;
    }
  }
  put(&o, "}", 1);
  if (o.failed) {
    snprintf(err, errlen, "out of memory encoding %s", d->name);
    free(o.s);
    return NULL;
  }
  *len = o.len;
  return o.s;
}

miscache_status_t miscache__payload_decode_text(const miscache__payload_t *d,
                                                const char *buf, size_t len,
                                                void *st) {
  miscache_status_t st_ = miscache__json_decode_struct(d, buf, len, st);
  if (st_ != MISCACHE_OK) miscache__payload_clear(d, st);
  return st_;
}

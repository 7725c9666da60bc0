/*
 * Replies and the RESP2 reader that makes them.
 *
 * The reader is ours (hiredis 0.14's has no limits: "*2147483647" made it
 * allocate 16 GiB of pointers, "$9999999999" was buffered until the
 * timeout). Every reply is bounded (miscache__limits_t): elements per
 * array, bytes per bulk string and per line, memory of the whole reply,
 * and nesting depth. An array's slots grow as its elements arrive, never
 * from the count a header announces, and a bulk string is refused at its
 * header; so the memory a server can make a connection take is what it
 * really sent, up to the limit. A reply over a limit fails the read (the
 * connection is then dropped by the node layer).
 *
 * The accessors accept NULL and any shape: a missing element reads as
 * MISCACHE__R_OTHER with "" and 0, so a caller that checks types never
 * dereferences what a server did not send.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/conn.h"
#include "reply_reader.h"

struct miscache__reply {
  miscache__rtype_t type;
  size_t len;                       /* string bytes, or elements */
  long long integer;                /* INTEGER */
  char *str;                        /* STRING, STATUS, ERROR: NUL ended */
  struct miscache__reply **element; /* ARRAY: len of them (may be NULL) */
  size_t cap;                       /* ARRAY: slots allocated */
};

/* ---- accessors ------------------------------------------------------------
 */

miscache__rtype_t miscache__reply_type(const miscache__reply_t *r) {
  return r ? r->type : MISCACHE__R_OTHER;
}

const char *miscache__reply_str(const miscache__reply_t *r, size_t *len) {
  bool s = r && r->str;
  if (len) *len = s ? r->len : 0;
  return s ? r->str : "";
}

long long miscache__reply_int(const miscache__reply_t *r) {
  return r && r->type == MISCACHE__R_INTEGER ? r->integer : 0;
}

size_t miscache__reply_count(const miscache__reply_t *r) {
  return r && r->type == MISCACHE__R_ARRAY ? r->len : 0;
}

const miscache__reply_t *miscache__reply_at(const miscache__reply_t *r,
                                            size_t i) {
  if (!r || r->type != MISCACHE__R_ARRAY || i >= r->len) return NULL;
  return r->element[i];
}

bool miscache__reply_is(const miscache__reply_t *r, miscache__rtype_t type) {
  return r && r->type == type;
}

void miscache__reply_free(miscache__reply_t *r) {
  if (!r) return;
  if (r->type == MISCACHE__R_ARRAY) {
    for (size_t i = 0; i < r->len; i++)
      miscache__reply_free(r->element[i]);
    free(r->element);
  }
  free(r); /* a string's bytes live in the same block */
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}


const char *miscache__reply_text(const miscache__reply_t *r, char *buf,
                                 size_t buflen) {
  size_t len;
  const char *s = miscache__reply_str(r, &len);
  miscache__escape(buf, buflen, s, len);
  return buf;
}

miscache_status_t miscache__reply_error(const miscache__reply_t *r,
                                        const char *what, char *err,
                                        size_t errlen) {
  const char *text = miscache__reply_str(r, NULL);
  char safe[MISCACHE_ERRMSG_SIZE];
  snprintf(err, errlen, "%s: %s", what,
           miscache__reply_text(r, safe, sizeof safe));
  if (starts_with(text, "NOAUTH") || starts_with(text, "WRONGPASS"))
    return MISCACHE_ERR_AUTH;
  if (starts_with(text, "WRONGTYPE")) return MISCACHE_ERR_DECODE;
  if (starts_with(text, "LOADING") || starts_with(text, "BUSY") ||
      starts_with(text, "MASTERDOWN") || starts_with(text, "TRYAGAIN") ||
      starts_with(text, "READONLY") || starts_with(text, "MOVED ") ||
      starts_with(text, "ASK ") || starts_with(text, "CLUSTERDOWN"))
    return MISCACHE_ERR_UNAVAILABLE;
  return MISCACHE_ERR_SERVER;
}

/* ---- replies the dispatcher puts together (Cluster: a split command) ---- */

miscache__reply_t *miscache__reply_new_array(size_t n) {
  miscache__reply_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->type = MISCACHE__R_ARRAY;
  r->len = r->cap = n;
  r->element = n ? calloc(n, sizeof *r->element) : NULL;
  if (n && !r->element) {
    free(r);
    return NULL;
  }
  return r;
}

miscache__reply_t *miscache__reply_new_int(long long v) {
  miscache__reply_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->type = MISCACHE__R_INTEGER;
  r->integer = v;
  return r;
}

miscache__reply_t *miscache__reply_take(miscache__reply_t *array, size_t i) {
  if (!array || array->type != MISCACHE__R_ARRAY || i >= array->len)
    return NULL;
  miscache__reply_t *e = array->element[i];
  array->element[i] = NULL;
  return e;
}

void miscache__reply_put(miscache__reply_t *array, size_t i,
                         miscache__reply_t *e) {
  if (!array || array->type != MISCACHE__R_ARRAY || i >= array->len) {
    miscache__reply_free(e);
    return;
  }
  miscache__reply_free(array->element[i]);
  array->element[i] = e;
}

/* ---- the reader ------------------------------------------------------------
 */

#define MAX_DEPTH 16       /* Redis's replies to this library nest 4 deep */
#define BUF_MIN 16384      /* read space offered at least */
#define BUF_KEEP 65536     /* largest buffer kept between replies */
#define DIRECT_MIN 4096    /* a bulk body this long is read in place */
#define MAX_LINE (1 << 20) /* a status, error or header line */

struct miscache__reader {
  miscache__limits_t lim;
  char *buf;
  size_t pos, len, cap; /* unparsed bytes: buf[pos, len) */
  /* the reply in progress */
  miscache__reply_t *stack[MAX_DEPTH]; /* open arrays, outermost first */
  int depth;
  miscache__reply_t *bulk; /* a bulk string whose body is being read */
  size_t bulk_have;        /* body bytes (plus CRLF) copied so far */
  size_t charged;          /* memory of the reply so far */
  bool direct;             /* the last space offered was the bulk body */
  bool failed;
  bool oom; /* the failure was out of memory, not the server's bytes */
  char errstr[160];
};


miscache__reader_t *miscache__reader_new(const miscache__limits_t *lim) {
  miscache__reader_t *rd = calloc(1, sizeof *rd);
  if (!rd) return NULL;
  if (lim)
    rd->lim = *lim;
  else
    miscache__limits_default(&rd->lim);
  return rd;
}

static void drop_partial(miscache__reader_t *rd) {
  /* open arrays are not in their parents until they close */
  for (int i = 0; i < rd->depth; i++)
    miscache__reply_free(rd->stack[i]);
  miscache__reply_free(rd->bulk);
  rd->depth = 0;
  rd->bulk = NULL;
  rd->bulk_have = 0;
  rd->charged = 0;
}

void miscache__reader_free(miscache__reader_t *rd) {
  if (!rd) return;
  drop_partial(rd);
  free(rd->buf);
  free(rd);
}

const char *miscache__reader_errstr(const miscache__reader_t *rd) {
  return rd->errstr;
}

bool miscache__reader_oom(const miscache__reader_t *rd) { return rd->oom; }

size_t miscache__reader_pending(const miscache__reader_t *rd) {
  size_t partial = rd->depth > 0 || rd->bulk ? 1 : 0;
  return rd->len - rd->pos + partial;
}

static int fail(miscache__reader_t *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(miscache__reader_t *rd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rd->errstr, sizeof rd->errstr, fmt, ap);
  va_end(ap);
  rd->failed = true;
  drop_partial(rd);
  return -1;
}

static int oom(miscache__reader_t *rd, const char *what) {
  rd->oom = true;
  return fail(rd, "out of memory for %s", what);
}

/* Adds n bytes of memory to the reply in progress; -1 over the limit. */
static int charge(miscache__reader_t *rd, size_t n) {
  if (n > rd->lim.max_bytes || rd->charged > rd->lim.max_bytes - n)
    return fail(rd, "reply over the limit of %zu bytes", rd->lim.max_bytes);
  rd->charged += n;
  return 0;
}

char *miscache__reader_space(miscache__reader_t *rd, size_t *avail) {
  rd->direct = false;
  if (rd->failed) return NULL;
  if (rd->pos == rd->len) rd->pos = rd->len = 0;
  /* a long bulk body goes straight into its string */
  if (rd->bulk && rd->pos == rd->len) {
    size_t left = rd->bulk->len - rd->bulk_have;
    if (rd->bulk_have < rd->bulk->len && left >= DIRECT_MIN) {
      rd->direct = true;
      *avail = left;
      return rd->bulk->str + rd->bulk_have;
    }
  }
  if (rd->cap - rd->len < BUF_MIN && rd->pos > 0) {
    memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
    rd->len -= rd->pos;
    rd->pos = 0;
  }
  if (rd->cap - rd->len < BUF_MIN) {
    size_t cap = rd->cap ? rd->cap * 2 : BUF_MIN * 4;
    while (cap - rd->len < BUF_MIN)
      cap *= 2;
    char *b = realloc(rd->buf, cap);
    if (!b) {
      oom(rd, "the reply buffer");
      return NULL;
    }
    rd->buf = b;
    rd->cap = cap;
  }
  *avail = rd->cap - rd->len;
  return rd->buf + rd->len;
}

void miscache__reader_commit(miscache__reader_t *rd, size_t n) {
  if (rd->direct)
    rd->bulk_have += n;
  else
    rd->len += n;
  rd->direct = false;
}

/* Strict decimal (optional '-'), no overflow. */
static bool parse_ll(const char *p, size_t n, long long *out) {
  bool neg = n > 0 && p[0] == '-';
  size_t i = neg ? 1 : 0;
  if (i == n || n - i > 19) return false;
  unsigned long long v = 0;
  for (; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return false;
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  if (v > (unsigned long long)LLONG_MAX + (neg ? 1u : 0u)) return false;
  *out = neg ? (long long)(0 - v) : (long long)v;
  return true;
}

/* The length of a $ or * header: -1 (nil) .. limit. */
static int header_len(miscache__reader_t *rd, const char *p, size_t n,
                      size_t limit, const char *what, const char *unit,
                      long long *v) {
  if (!parse_ll(p, n, v) || *v < -1)
    return fail(rd, "protocol error: bad %s length", what);
  if (*v > 0 && (unsigned long long)*v > limit)
    return fail(rd, "%s of %lld %s over the limit of %zu", what, *v, unit,
                limit);
  return 0;
}

static miscache__reply_t *new_str(miscache__rtype_t type, const char *p,
                                  size_t n) {
  miscache__reply_t *r = malloc(sizeof *r + n + 1);
  if (!r) return NULL;
  memset(r, 0, sizeof *r);
  r->type = type;
  r->len = n;
  r->str = (char *)(r + 1);
  if (p) memcpy(r->str, p, n);
  r->str[n] = 0;
  return r;
}

/* A finished value r: the reply itself (returned, 1) or the next element
 * of the innermost open array (0, or 1 when that closed the reply). */
static int place(miscache__reader_t *rd, miscache__reply_t *r,
                 miscache__reply_t **out) {
  for (;;) {
    if (rd->depth == 0) {
      *out = r;
      rd->charged = 0;
      return 1;
    }
    miscache__reply_t *a = rd->stack[rd->depth - 1];
    if (a->len == a->cap) { /* grow as elements come, never from the header */
      size_t cap = a->cap ? a->cap * 2 : 8;
      if (cap > (size_t)a->integer) cap = (size_t)a->integer;
      miscache__reply_t **e =
          miscache__realloc_array(a->element, cap, sizeof *e);
      if (!e) {
        miscache__reply_free(r);
        return oom(rd, "an array reply");
      }
      a->element = e;
      a->cap = cap;
    }
    a->element[a->len++] = r;
    if (a->len < (size_t)a->integer) return 0;
    a->integer = 0; /* the announced count served while filling */
    rd->depth--;
    r = a;
  }
}

/* Reads the body of the open bulk string and its CRLF: 1 when it is
 * complete (rd->bulk closed, the string in *done), 0 for more bytes, -1. */
static int bulk_body(miscache__reader_t *rd, miscache__reply_t **done) {
  miscache__reply_t *b = rd->bulk;
  size_t have = rd->len - rd->pos;
  if (rd->bulk_have < b->len && have) {
    size_t k = b->len - rd->bulk_have < have ? b->len - rd->bulk_have : have;
    memcpy(b->str + rd->bulk_have, rd->buf + rd->pos, k);
    rd->pos += k;
    rd->bulk_have += k;
    have -= k;
  }
  for (; have && rd->bulk_have >= b->len && rd->bulk_have < b->len + 2;
       have--) {
    char want = rd->bulk_have == b->len ? '\r' : '\n';
    if (rd->buf[rd->pos] != want)
      return fail(rd,
                  "protocol error: bulk string of %zu bytes not followed by "
                  "CRLF",
                  b->len);
    rd->pos++;
    rd->bulk_have++;
  }
  if (rd->bulk_have < b->len + 2) return 0;
  b->str[b->len] = 0;
  rd->bulk = NULL;
  rd->bulk_have = 0;
  *done = b;
  return 1;
}

/* The reply a header line of this type starts (body: n bytes after the
 * type byte): 1 with *r a whole reply (NULL: out of memory), 0 when it
 * opened a bulk string or an array whose rest is still to come, -1. */
static int line_reply(miscache__reader_t *rd, char type, const char *body,
                      size_t n, miscache__reply_t **r) {
  long long v = 0;
  *r = NULL;
  switch (type) {
  case '+':
  case '-':
    if (charge(rd, sizeof **r + n + 1)) return -1;
    *r = new_str(type == '+' ? MISCACHE__R_STATUS : MISCACHE__R_ERROR, body,
                 n);
    return 1;
  case ':':
    if (!parse_ll(body, n, &v))
      return fail(rd, "protocol error: bad integer reply");
    if (charge(rd, sizeof **r)) return -1;
    *r = miscache__reply_new_int(v);
    return 1;
  case '$':
    if (header_len(rd, body, n, rd->lim.max_bulk, "bulk string", "bytes", &v))
      return -1;
    if (charge(rd, sizeof **r + (v > 0 ? (size_t)v : 0) + 1)) return -1;
    if (v == -1) {
      *r = calloc(1, sizeof **r);
      if (*r) (*r)->type = MISCACHE__R_NIL;
      return 1;
    }
    rd->bulk = new_str(MISCACHE__R_STRING, NULL, (size_t)v);
    if (!rd->bulk) return oom(rd, "a bulk string reply");
    rd->bulk_have = 0;
    return 0;
  case '*':
    if (header_len(rd, body, n, rd->lim.max_elements, "array", "elements", &v))
      return -1;
    /* the slots it would need count at once (each element adds its own) */
    if (v > 0 && (unsigned long long)v > rd->lim.max_bytes / sizeof *r)
      return fail(rd, "reply over the limit of %zu bytes", rd->lim.max_bytes);
    if (charge(rd, sizeof **r + (v > 0 ? (size_t)v * sizeof *r : 0)))
      return -1;
    *r = calloc(1, sizeof **r);
    if (!*r) return 1;
    (*r)->type = v == -1 ? MISCACHE__R_NIL : MISCACHE__R_ARRAY;
    if (v <= 0) return 1;
    if (rd->depth == MAX_DEPTH) {
      free(*r);
      *r = NULL;
      return fail(rd, "protocol error: arrays nested over %d deep", MAX_DEPTH);
    }
    (*r)->integer = v; /* elements still to come, while open */
    rd->stack[rd->depth++] = *r;
    *r = NULL;
    return 0;
  default:
    return fail(rd, "protocol error: unexpected byte 0x%02x",
                (unsigned char)type);
  }
}

int miscache__reader_get(miscache__reader_t *rd, miscache__reply_t **out) {
  *out = NULL;
  if (rd->failed) return -1;
  for (;;) {
    miscache__reply_t *r = NULL;
    if (rd->bulk) { /* the body, then CRLF */
      int k = bulk_body(rd, &r);
      if (k <= 0) return k;
      k = place(rd, r, out);
      if (k != 0) return k;
      continue;
    }
    size_t have = rd->len - rd->pos;
    if (have == 0) return 0; /* (buf may still be NULL) */
    const char *p = rd->buf + rd->pos;
    const char *cr = memchr(p, '\r', have);
    if (!cr || (size_t)(cr - p) + 1 >= have) { /* no complete line yet */
      size_t line = cr ? (size_t)(cr - p) : have;
      if (line > MAX_LINE)
        return fail(rd, "protocol error: a line longer than %d bytes",
                    MAX_LINE);
      if (have > 0 && rd->charged + have > rd->lim.max_bytes)
        return fail(rd, "reply over the limit of %zu bytes", rd->lim.max_bytes);
      return 0;
    }
    if (cr[1] != '\n') return fail(rd, "protocol error: CR without LF");
    rd->pos += (size_t)(cr - p) + 2;
    int k = line_reply(rd, p[0], p + 1, (size_t)(cr - p) - 1, &r);
    if (k < 0) return -1;
    if (k == 0) continue; /* a bulk string or an array is open */
    if (!r) return oom(rd, "a reply");
    k = place(rd, r, out);
    if (k != 0) return k;
  }
}

void miscache__reader_trim(miscache__reader_t *rd) {
  if (rd->pos == rd->len && rd->cap > BUF_KEEP && !rd->bulk && !rd->depth) {
    free(rd->buf);
    rd->buf = NULL;
    rd->cap = rd->pos = rd->len = 0;
  }
}

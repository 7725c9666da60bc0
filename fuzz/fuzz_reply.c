/*
 * libFuzzer target for the RESP reader (reply.c), under small limits.
 * The input's first byte picks a chunk size; the rest is the bytes a
 * server sent. Properties:
 *   - nothing crashes, leaks or reads out of bounds, whatever the bytes;
 *   - fed whole or in chunks (as reads cut it), the reader gives the same
 *     replies (compared re-encoded) and fails at the same point;
 *   - no reply is over a limit: arrays of at most 64 elements, strings of
 *     at most 1024 bytes, at most 16 deep;
 *   - after a failure the reader gives nothing more.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "conn/conn.h"
#include "conn/reply_reader.h"

typedef struct {
  char *p;
  size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  if (o->len + n + 1 > o->cap) {
    size_t cap = (o->len + n + 1) * 2;
    char *p = realloc(o->p, cap);
    if (!p) FAIL("out of memory");
    o->p = p;
    o->cap = cap;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

/* r as RESP again, checking the limits on the way. */
static void encode(out_t *o, const miscache__reply_t *r, int depth) {
  char head[48];
  size_t n;
  const char *s = miscache__reply_str(r, &n);
  if (depth > 16) FAIL("nested %d deep", depth);
  switch (miscache__reply_type(r)) {
  case MISCACHE__R_STRING:
    if (n > 1024) FAIL("a string of %zu bytes", n);
    put(o, head, (size_t)snprintf(head, sizeof head, "$%zu\r\n", n));
    put(o, s, n);
    put(o, "\r\n", 2);
    break;
  case MISCACHE__R_STATUS:
  case MISCACHE__R_ERROR:
    put(o, miscache__reply_is(r, MISCACHE__R_STATUS) ? "+" : "-", 1);
    put(o, s, n);
    put(o, "\r\n", 2);
    break;
  case MISCACHE__R_INTEGER:
    put(o, head,
        (size_t)snprintf(head, sizeof head, ":%lld\r\n",
                         miscache__reply_int(r)));
    break;
  case MISCACHE__R_NIL: put(o, "_\r\n", 3); break;
  case MISCACHE__R_ARRAY: {
    size_t k = miscache__reply_count(r);
    if (k > 64) FAIL("an array of %zu elements", k);
    put(o, head, (size_t)snprintf(head, sizeof head, "*%zu\r\n", k));
    for (size_t i = 0; i < k; i++) {
      const miscache__reply_t *e = miscache__reply_at(r, i);
      if (!e) FAIL("a missing element");
      encode(o, e, depth + 1);
    }
    break;
  }
  case MISCACHE__R_OTHER: FAIL("a reply of no type");
  }
}

/* Feeds data in chunks of step bytes (0: all at once) into a fresh
 * reader; the replies re-encoded into o, and whether it failed. */
static bool run(const uint8_t *data, size_t size, size_t step, out_t *o) {
  miscache__limits_t lim = {.max_elements = 64, .max_bulk = 1024,
                            .max_bytes = 8192};
  miscache__reader_t *rd = miscache__reader_new(&lim);
  if (!rd) FAIL("reader_new");
  size_t at = 0;
  bool failed = false;
  while (!failed) {
    miscache__reply_t *r = NULL;
    int k = miscache__reader_get(rd, &r);
    if (k < 0) {
      failed = true;
      if (r) FAIL("a reply with a failure");
      if (!miscache__reader_errstr(rd)[0]) FAIL("failed without a reason");
      if (miscache__reader_get(rd, &r) != -1 || r) FAIL("went on after");
      break;
    }
    if (k > 0) {
      encode(o, r, 0);
      put(o, "|", 1);
      miscache__reply_free(r);
      continue;
    }
    if (at == size) break;
    size_t avail = 0;
    char *space = miscache__reader_space(rd, &avail);
    if (!space) FAIL("no space: %s", miscache__reader_errstr(rd));
    size_t n = size - at;
    if (step && n > step) n = step;
    if (n > avail) n = avail;
    memcpy(space, data + at, n);
    miscache__reader_commit(rd, n);
    at += n;
  }
  miscache__reader_free(rd);
  return failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t step = 1 + data[0] % 17;
  out_t whole = {0}, cut = {0};
  bool f1 = run(data + 1, size - 1, 0, &whole);
  bool f2 = run(data + 1, size - 1, step, &cut);
  if (f1 != f2) FAIL("failed %s whole, %s in chunks of %zu", f1 ? "" : "not",
                     f2 ? "" : "not", step);
  if (whole.len != cut.len ||
      (whole.len && memcmp(whole.p, cut.p, whole.len) != 0))
    FAIL("other replies in chunks of %zu", step);
  free(whole.p);
  free(cut.p);
  return 0;
}

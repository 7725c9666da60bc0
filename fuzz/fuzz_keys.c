/*
 * libFuzzer target for the key builder. The input is split at NUL bytes
 * into a prefix and up to 7 identifiers; the first byte picks the buffer
 * size. Properties of every key the builder accepts:
 *   - it fits the buffer and MISCACHE_KEY_MAX, and len_out = strlen;
 *   - it is prefix ":" id1 ":" id2 ...; each id segment holds no ':' and
 *     no glob character, and decodes back to the identifier exactly;
 *   - a refused key leaves buf "" with ERR_KEY or ERR_INVALID.
 * Also: id_encode/id_decode round-trip both ways, and a pattern with some
 * ids left as wildcards has one '*' per wildcard and nothing else of glob.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "miscache/miscache.h"

enum { MAX_IDS = 7 };

static void check_refused(miscache_status_t st, const char *buf) {
  if (st != MISCACHE_ERR_KEY && st != MISCACHE_ERR_INVALID)
    FAIL("status %d", (int)st);
  if (buf[0]) FAIL("refused key left \"%s\"", buf);
}

static void check_id_round_trip(const char *id) {
  char enc[4 * MISCACHE_KEY_BUFSIZE], dec[4 * MISCACHE_KEY_BUFSIZE];
  size_t el = 0, dl = 0;
  if (miscache_id_encode(enc, sizeof enc, id, &el) != MISCACHE_OK) return;
  if (strlen(enc) != el || strpbrk(enc, ":*?[]\\{}"))
    FAIL("encoded id \"%s\"", enc);
  if (miscache_id_decode(dec, sizeof dec, enc, &dl) != MISCACHE_OK ||
      strcmp(dec, id) != 0 || dl != strlen(id))
    FAIL("id does not decode back");
}

/* Any segment the decoder accepts is the encoding of what it decodes to. */
static void check_segment(const char *seg) {
  char dec[MISCACHE_KEY_BUFSIZE], enc[4 * MISCACHE_KEY_BUFSIZE];
  if (miscache_id_decode(dec, sizeof dec, seg, NULL) != MISCACHE_OK) return;
  if (miscache_id_encode(enc, sizeof enc, dec, NULL) != MISCACHE_OK ||
      strcmp(enc, seg) != 0)
    FAIL("segment \"%s\" decodes to an id that encodes as \"%s\"", seg, enc);
}

static void check_key(const char *buf, size_t len, size_t size,
                      const char *prefix, size_t nids,
                      const char *const ids[]) {
  if (len != strlen(buf) || len >= size || len > MISCACHE_KEY_MAX)
    FAIL("length %zu, size %zu", len, size);
  size_t pl = strlen(prefix);
  if (strncmp(buf, prefix, pl) != 0) FAIL("key does not start with prefix");
  const char *p = buf + pl;
  for (size_t i = 0; i < nids; i++) {
    if (*p != ':') FAIL("no separator before id %zu", i);
    p++;
    size_t sl = strcspn(p, ":");
    char seg[MISCACHE_KEY_BUFSIZE], dec[MISCACHE_KEY_BUFSIZE];
    memcpy(seg, p, sl);
    seg[sl] = 0;
    if (strpbrk(seg, "*?[]\\")) FAIL("glob character in a segment");
    if (miscache_id_decode(dec, sizeof dec, seg, NULL) != MISCACHE_OK ||
        strcmp(dec, ids[i]) != 0)
      FAIL("segment %zu does not decode to its id", i);
    p += sl;
  }
  if (*p) FAIL("trailing \"%s\"", p);
}

static void check_pattern(const char *prefix, size_t nids,
                          const char *const ids[], unsigned wild_mask) {
  const char *pids[MAX_IDS];
  size_t wild = 0;
  for (size_t i = 0; i < nids; i++) {
    bool w = wild_mask >> i & 1;
    pids[i] = w ? NULL : ids[i];
    wild += w;
  }
  char buf[MISCACHE_KEY_BUFSIZE];
  size_t len = 0;
  miscache_status_t st =
      miscache_pattern_build(buf, sizeof buf, prefix, nids, pids, &len);
  if (st != MISCACHE_OK) {
    check_refused(st, buf);
    return;
  }
  size_t stars = 0;
  for (const char *p = buf; *p; p++) {
    if (*p == '*') stars++;
    if (*p == '?' || *p == '[' || *p == ']' || *p == '\\')
      FAIL("glob character in pattern \"%s\"", buf);
  }
  if (stars != wild) FAIL("%zu stars for %zu wildcards", stars, wild);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t bufsize = 1 + data[0] * 5; /* 1 .. 1276 */
  unsigned wild_mask = data[1];
  char *copy = malloc(size - 1);
  if (!copy) return 0;
  memcpy(copy, data + 2, size - 2);
  copy[size - 2] = 0;
  /* split at NUL: prefix, then ids */
  const char *parts[1 + MAX_IDS];
  size_t n = 0;
  for (size_t at = 0; n < 1 + MAX_IDS && at <= size - 2;) {
    parts[n++] = copy + at;
    at += strlen(copy + at) + 1;
  }
  const char *prefix = parts[0];
  const char *const *ids = parts + 1;
  size_t nids = n - 1;

  char *buf = malloc(bufsize);
  if (!buf) FAIL("malloc");
  size_t len = 12345;
  miscache_status_t st =
      miscache_key_build(buf, bufsize, prefix, nids, ids, &len);
  if (st == MISCACHE_OK)
    check_key(buf, len, bufsize, prefix, nids, ids);
  else
    check_refused(st, buf);
  for (size_t i = 0; i < nids; i++) {
    check_id_round_trip(ids[i]);
    check_segment(ids[i]);
  }
  check_pattern(prefix, nids, ids, wild_mask);
  char esc[4 * MISCACHE_KEY_BUFSIZE];
  size_t el = 0;
  if (miscache_glob_escape(esc, sizeof esc, prefix, &el) == MISCACHE_OK &&
      (el != strlen(esc) || el < strlen(prefix)))
    FAIL("glob escape length");
  free(buf);
  free(copy);
  return 0;
}

/*
 * libFuzzer target for the payload decoders. Built once per decoder, with
 * FUZZ_PAYLOAD naming it (see fuzz/CMakeLists.txt):
 *   json           miscache__decode alone: every value the library reads
 *                  (lock values, permissions, master lists, analytics,
 *                  counters) goes through it
 *   session ... upload   miscache__decode, then the typed decoder of that
 *                  payload (miscache__payload_decode with its table)
 *   gift_master    the gift master list (an array of entries)
 * Besides "no crash, no leak, no UB", each input checks properties:
 *   - a failed decode leaves the struct all zero (nothing to free, no
 *     half-filled output);
 *   - a decoded struct encodes again, and decode(encode(x)) encodes to
 *     the same JSON (the codec round-trips what it accepts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "domain/domain.h"

/* Storage big enough and aligned for any payload struct. */
typedef union {
  miscache_session_t session;
  miscache_batch_config_t batch_config;
  miscache_batch_status_t batch_status;
  miscache_batch_history_t batch_history;
  miscache_gift_rules_t gift_rules;
  miscache_gift_classification_t gift_class;
  miscache_daily_sales_t daily_sales;
  miscache_temp_upload_t upload;
} any_payload_t;

static void check_json(const json_t *v) {
  size_t len = 0;
  char *s = miscache__encode(v, &len);
  if (!s) FAIL("decoded JSON does not encode");
  char why[256];
  json_t *again = miscache__decode(s, len, why, sizeof why);
  if (!again) FAIL("encoded JSON does not decode: %s", why);
  if (!json_equal(v, again)) FAIL("JSON round trip changed the value");
  json_decref(again);
  free(s);
}

static bool all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return false;
  return true;
}

/* decode -> encode -> decode -> encode: the two encodings are equal. */
static void check_struct(const miscache__payload_t *d, const json_t *v) {
  any_payload_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  char why[256];
  miscache_status_t st = miscache__payload_decode(d, v, &a, why, sizeof why);
  if (st != MISCACHE_OK) {
    if (st != MISCACHE_ERR_DECODE) FAIL("%s: status %d", d->name, (int)st);
    if (!all_zero(&a, sizeof a)) FAIL("%s: failed decode left output", d->name);
    return;
  }
  json_t *e1 = miscache__payload_encode(d, &a, why, sizeof why);
  if (!e1) FAIL("%s: decoded struct does not encode: %s", d->name, why);
  if (miscache__payload_decode(d, e1, &b, why, sizeof why) != MISCACHE_OK)
    FAIL("%s: own encoding does not decode: %s", d->name, why);
  json_t *e2 = miscache__payload_encode(d, &b, why, sizeof why);
  if (!e2 || !json_equal(e1, e2)) FAIL("%s: round trip differs", d->name);
  json_decref(e1);
  json_decref(e2);
  miscache__payload_clear(d, &a);
  miscache__payload_clear(d, &b);
  if (!all_zero(&a, sizeof a)) FAIL("%s: clear left data", d->name);
}

static void check_gift_master(const json_t *v) {
  miscache_gift_master_entry_t *e = NULL;
  size_t n = 0;
  char why[256];
  miscache_status_t st =
      miscache__gift_master_decode(v, &e, &n, why, sizeof why);
  if (st != MISCACHE_OK) {
    if (st != MISCACHE_ERR_DECODE || e || n) FAIL("gift master: bad failure");
    return;
  }
  if (n != json_array_size(v)) FAIL("gift master: %zu entries", n);
  json_t *arr = miscache__gift_master_encode(e, n, why, sizeof why);
  if (!arr) FAIL("gift master list does not encode: %s", why);
  miscache_gift_master_entry_t *e2 = NULL;
  size_t n2 = 0;
  if (miscache__gift_master_decode(arr, &e2, &n2, why, sizeof why) !=
          MISCACHE_OK ||
      n2 != n)
    FAIL("gift master: own encoding does not decode");
  json_t *again = miscache__gift_master_encode(e2, n2, why, sizeof why);
  if (!again || !json_equal(arr, again))
    FAIL("gift master: round trip differs");
  json_decref(again);
  json_decref(arr);
  miscache_gift_master_free(e, n);
  miscache_gift_master_free(e2, n2);
}

static const struct {
  const char *name;
  const miscache__payload_t *d;
} payloads[] = {
    {"session", &miscache__session_payload},
    {"batch_config", &miscache__batch_config_payload},
    {"batch_status", &miscache__batch_status_payload},
    {"batch_history", &miscache__batch_history_payload},
    {"gift_rules", &miscache__gift_rules_payload},
    {"gift_classification", &miscache__gift_class_payload},
    {"daily_sales", &miscache__daily_sales_payload},
    {"upload", &miscache__upload_payload},
};

#define STR2(x) #x
#define STR(x) STR2(x)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char why[256];
  json_t *v = miscache__decode((const char *)data, size, why, sizeof why);
  if (!v) return 0;
  const char *which = STR(FUZZ_PAYLOAD);
  if (strcmp(which, "json") == 0) {
    check_json(v);
  } else if (strcmp(which, "gift_master") == 0) {
    check_gift_master(v);
  } else {
    size_t i = 0, n = sizeof payloads / sizeof payloads[0];
    while (i < n && strcmp(payloads[i].name, which) != 0)
      i++;
    if (i == n) FAIL("unknown FUZZ_PAYLOAD %s", which);
    check_struct(payloads[i].d, v);
  }
  json_decref(v);
  return 0;
}

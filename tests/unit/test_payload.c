/* The table-driven payload codec, every field kind: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "domain/domain.h"

typedef struct {
  int64_t total_pages, processed_pages;
} progress_t;

typedef struct {
  char *status;
  int64_t count;
  double rate;
  bool enabled;
  miscache_strings_t errors;
  progress_t progress;
  json_t *blob;
  json_t *extra; /* the object as read */
} status_t;

static const miscache__field_t progress_fields[] = {
    MISCACHE__FIELD(progress_t, total_pages, MISCACHE__F_INT),
    MISCACHE__FIELD(progress_t, processed_pages, MISCACHE__F_INT),
};
static const miscache__payload_t progress_payload =
    MISCACHE__PAYLOAD_NESTED("progress", progress_fields);
static const miscache__field_t status_fields[] = {
    MISCACHE__FIELD_REQ(status_t, status, MISCACHE__F_STRING),
    MISCACHE__FIELD(status_t, count, MISCACHE__F_INT),
    MISCACHE__FIELD(status_t, rate, MISCACHE__F_DOUBLE),
    MISCACHE__FIELD(status_t, enabled, MISCACHE__F_BOOL),
    MISCACHE__FIELD(status_t, errors, MISCACHE__F_STRINGS),
    MISCACHE__FIELD_OBJ(status_t, progress, progress_payload),
    MISCACHE__FIELD(status_t, blob, MISCACHE__F_JSON),
};
static const miscache__payload_t status_payload =
    MISCACHE__PAYLOAD("status", status_t, status_fields);

static char err[256];

static void test_round_trip(void **state) {
  (void)state;
  status_t s = {0};
  s.status = strdup("running");
  s.count = 1500;
  s.rate = 56.5; /* exact in binary: jansson writes reals with 17 digits */
  s.enabled = true;
  miscache_strings_push(&s.errors, "page 3: timeout");
  miscache_strings_push(&s.errors, "\xec\x83\x98\xed\x94\x8c"); /* 샘플 */
  s.progress.total_pages = 50;
  s.progress.processed_pages = 23;
  s.blob = json_pack("{s:i}", "REAN", 3);
  json_t *j = miscache__payload_encode(&status_payload, &s, err, sizeof err);
  assert_non_null(j);
  char *text = json_dumps(j, JSON_COMPACT);
  assert_string_equal(text,
                      "{\"status\":\"running\",\"count\":1500,\"rate\":56.5,"
                      "\"enabled\":true,\"errors\":[\"page 3: timeout\","
                      "\"\xec\x83\x98\xed\x94\x8c\"],\"progress\":{"
                      "\"total_pages\":50,\"processed_pages\":23},"
                      "\"blob\":{\"REAN\":3}}");
  free(text);
  status_t back = {0};
  assert_int_equal(miscache__payload_decode(&status_payload, j, &back, err,
                                            sizeof err),
                   MISCACHE_OK);
  assert_string_equal(back.status, "running");
  assert_int_equal(back.count, 1500);
  assert_true(back.rate == 56.5);
  assert_true(back.enabled);
  assert_int_equal(back.errors.count, 2);
  assert_string_equal(back.errors.items[1], s.errors.items[1]);
  assert_int_equal(back.progress.processed_pages, 23);
  assert_true(json_equal(back.blob, s.blob));
  json_decref(j);
  miscache__payload_clear(&status_payload, &back);
  miscache__payload_clear(&status_payload, &s);
  assert_null(s.status);
  assert_int_equal(s.errors.count, 0);
}

static void test_decode_rules(void **state) {
  (void)state;
  static const struct {
    const char *json;
    miscache_status_t want;
    const char *field; /* named in the message */
  } cases[] = {
      {"{\"status\":\"ok\"}", MISCACHE_OK, NULL},
      /* a required field that is null is missing */
      {"{\"status\":null,\"unknown\":1}", MISCACHE_ERR_DECODE, "status"},
      {"{\"status\":\"ok\",\"unknown\":1}", MISCACHE_OK, NULL},
      {"{\"status\":\"ok\",\"rate\":3}", MISCACHE_OK, NULL}, /* int as double */
      {"{}", MISCACHE_ERR_DECODE, "status"},
      {"[]", MISCACHE_ERR_DECODE, "object"},
      {"{\"status\":1}", MISCACHE_ERR_DECODE, "status"},
      {"{\"status\":\"x\",\"count\":\"1\"}", MISCACHE_ERR_DECODE, "count"},
      {"{\"status\":\"x\",\"count\":1.5}", MISCACHE_ERR_DECODE, "count"},
      {"{\"status\":\"x\",\"enabled\":1}", MISCACHE_ERR_DECODE, "enabled"},
      {"{\"status\":\"x\",\"errors\":[\"a\",2]}", MISCACHE_ERR_DECODE, "errors"},
      {"{\"status\":\"x\",\"errors\":\"a\"}", MISCACHE_ERR_DECODE, "errors"},
      {"{\"status\":\"x\",\"progress\":[]}", MISCACHE_ERR_DECODE, "progress"},
      {"{\"status\":\"x\",\"progress\":{\"total_pages\":true}}",
       MISCACHE_ERR_DECODE, "total_pages"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *j = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    status_t s = {0};
    err[0] = 0;
    miscache_status_t st =
        miscache__payload_decode(&status_payload, j, &s, err, sizeof err);
    if (st != cases[i].want) fail_msg("%s: status %d", cases[i].json, st);
    if (cases[i].field && !strstr(err, cases[i].field))
      fail_msg("%s: message \"%s\"", cases[i].json, err);
    if (st != MISCACHE_OK) { /* cleared on failure: nothing to free */
      assert_null(s.status);
      assert_null(s.errors.items);
    }
    miscache__payload_clear(&status_payload, &s);
    json_decref(j);
  }
}

static void test_encode_rejects_bad_utf8(void **state) {
  (void)state;
  status_t s = {0};
  s.status = "ok";
  char bad[] = "\xc3\x28";
  char *items[] = {bad};
  s.errors.items = items;
  s.errors.count = 1;
  err[0] = 0;
  assert_null(miscache__payload_encode(&status_payload, &s, err, sizeof err));
  assert_non_null(strstr(err, "errors"));
}


/* Members the struct does not name survive decode + encode, nested ones
 * included. */
static void test_unknown_members_kept(void **state) {
  (void)state;
  json_t *in = json_loads("{\"status\":\"ok\",\"csrf\":\"t\",\"count\":1,"
                          "\"progress\":{\"total_pages\":3,\"eta\":9},"
                          "\"roles\":[\"a\"]}",
                          0, NULL);
  assert_non_null(in);
  status_t s = {0};
  assert_int_equal(
      miscache__payload_decode(&status_payload, in, &s, err, sizeof err),
      MISCACHE_OK);
  s.count = 2;
  s.progress.total_pages = 4;
  json_t *out = miscache__payload_encode(&status_payload, &s, err, sizeof err);
  assert_non_null(out);
  assert_string_equal(json_string_value(json_object_get(out, "csrf")), "t");
  assert_int_equal(json_array_size(json_object_get(out, "roles")), 1);
  assert_int_equal(json_integer_value(json_object_get(out, "count")), 2);
  json_t *p = json_object_get(out, "progress");
  assert_int_equal(json_integer_value(json_object_get(p, "eta")), 9);
  assert_int_equal(json_integer_value(json_object_get(p, "total_pages")), 4);
  /* the object read is not changed by the encode */
  assert_int_equal(json_integer_value(json_object_get(in, "count")), 1);
  json_decref(out);
  miscache__payload_clear(&status_payload, &s);
  assert_null(s.extra);
  json_decref(in);
}

/* ---- the fast pair against the tree path ---------------------------------- */

static uint64_t rng = 0x2545F4914F6CDD1Dull;

/* Runs of plain bytes of every length 1..9 too, so that the encoder's
 * eight-bytes-a-step path meets each special byte at each offset. */
static const char *const pieces[] = {
    "a",  "Z",  " ",  "\"",  "\\",  "/",  "\n",  "\t",  "\x01",  "\x1f",
    "\x7f", "\xc3\xa9", "\xea\xb4\x80", "\xf0\x9f\x98\x80", "0",
    "bc", "def", "ghij", "klmno", "pqrstu", "vwxyz01", "23456789", "~!@#$%^&*"};
/* Not UTF-8 (both paths must refuse); one string in twenty holds one. */
static const char *const broken[] = {"\xe0\x80", "\x85", "\x9f", "\xff"};

static char *random_string(void) {
  char *s = malloc(256);
  s[0] = 0;
  int n = (int)(miscache__xorshift(&rng) % 16);
  int bad = -1; /* where the broken piece goes, if any */
  if (miscache__xorshift(&rng) % 20 == 0)
    bad = (int)(miscache__xorshift(&rng) % 16);
  size_t nbroken = sizeof broken / sizeof *broken;
  size_t npieces = sizeof pieces / sizeof *pieces;
  for (int i = 0; i < n || i == bad; i++) {
    if (i == bad) strcat(s, broken[miscache__xorshift(&rng) % nbroken]);
    strcat(s, pieces[miscache__xorshift(&rng) % npieces]);
  }
  return s;
}

static void random_fill(const miscache__payload_t *d, void *st) {
  for (size_t i = 0; i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    char *at = (char *)st + f->offset;
    uint64_t r = miscache__xorshift(&rng);
    switch (f->type) {
    case MISCACHE__F_INT:
      *(int64_t *)at = r % 3 == 0 ? (int64_t)r : (int64_t)(r % 2000) - 1000;
      break;
    case MISCACHE__F_DOUBLE: {
      static const double ds[] = {0.0, -0.0, 1.0, 0.1, 12000.0, 1e20, 1.5e-7,
                                  -3.25, 123456789012345678.0, 1e300};
      *(double *)at = r % 4 == 0 ? (double)(int64_t)(r % 100000) / 7.0
                                 : ds[r % (sizeof ds / sizeof *ds)];
      break;
    }
    case MISCACHE__F_BOOL: *(bool *)at = r & 1; break;
    case MISCACHE__F_STRING:
      *(char **)at = r % 5 == 0 ? NULL : random_string();
      break;
    case MISCACHE__F_STRINGS: {
      miscache_strings_t *a = (miscache_strings_t *)at;
      for (int k = 0; k < (int)(r % 4); k++) {
        char *x = random_string();
        miscache_strings_push(a, x);
        free(x);
      }
      break;
    }
    case MISCACHE__F_JSON:
      *(json_t **)at = r % 3 == 0 ? NULL
                       : json_pack("{s:{s:b,s:b},s:[i,f,s]}", "m", "read", 1,
                                   "delete", 0, "x", (int)(r % 10), 0.5, "y");
      break;
    case MISCACHE__F_OBJECT: random_fill(f->sub, at); break;
    }
  }
}

static char *tree_text(const miscache__payload_t *d, const void *st) {
  char why[256];
  json_t *v = miscache__payload_encode(d, st, why, sizeof why);
  if (!v) return NULL;
  char *t = miscache__encode(v, NULL);
  json_decref(v);
  return t;
}

static void test_fast_pair_matches_tree(void **state) {
  (void)state;
  const miscache__payload_t *all[] = {
      &miscache__session_payload,      &miscache__batch_config_payload,
      &miscache__batch_status_payload, &miscache__batch_history_payload,
      &miscache__gift_rules_payload,   &miscache__gift_master_payload,
      &miscache__gift_class_payload,   &miscache__daily_sales_payload,
      &miscache__upload_payload};
  int fast = 0, mutants_fast = 0;
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) {
    const miscache__payload_t *d = all[k];
    for (int round = 0; round < 300; round++) {
      void *st = calloc(1, d->size);
      random_fill(d, st);
      char *want = tree_text(d, st);
      size_t len = 0;
      bool tree = false;
      char why[256];
      char *got = miscache__payload_encode_text(d, st, &len, &tree, why,
                                                sizeof why);
      if (!tree) {
        /* byte for byte what the tree path writes, or refused alike */
        if (!want != !got) fail_msg("%s: tree %s, text %s", d->name,
                                    want ? "encodes" : "refuses",
                                    got ? "encodes" : "refuses");
        if (got) {
          assert_string_equal(got, want);
          assert_int_equal(len, strlen(want));
          fast++;
        }
      }
      miscache__payload_clear(d, st);
      if (want) {
        /* decoding: the text path gives the struct the tree path gives */
        for (int m = 0; m < 20; m++) {
          char buf[4096];
          size_t n = strlen(want);
          if (n >= sizeof buf) break;
          memcpy(buf, want, n);
          if (m > 0) { /* a mutant: one byte changed */
            size_t at = miscache__xorshift(&rng) % n;
            static const char alphabet[] = "{}[]\":,\\0123456789.eE-tfnul \x80";
            buf[at] = alphabet[miscache__xorshift(&rng) % (sizeof alphabet - 1)];
          }
          void *a = calloc(1, d->size), *b = calloc(1, d->size);
          miscache_status_t sa = miscache__payload_decode_text(d, buf, n, a);
          json_t *v = json_loadb(buf, n, JSON_DECODE_ANY, NULL);
          miscache_status_t sb =
              v ? miscache__payload_decode(d, v, b, why, sizeof why)
                : MISCACHE_ERR_DECODE;
          json_decref(v);
          if (sa == MISCACHE_OK) {
            if (sb != MISCACHE_OK)
              fail_msg("%s: text decodes what the tree refuses: %.*s",
                       d->name, (int)n, buf);
            /* extra is NULL on the text path: compare the members */
            json_decref(*(json_t **)((char *)b + d->extra_offset));
            *(json_t **)((char *)b + d->extra_offset) = NULL;
            char *ta = tree_text(d, a), *tb = tree_text(d, b);
            assert_non_null(ta);
            assert_string_equal(ta, tb);
            free(ta);
            free(tb);
            if (m == 0) fast++;
            else mutants_fast++;
          } else {
            assert_int_equal(sa, MISCACHE_MISS);
            if (m == 0 && sb == MISCACHE_OK && d->extra_offset != MISCACHE__NO_EXTRA) {
              /* the unmutated text of a flat payload must take the fast path */
              bool nested = false;
              for (size_t i = 0; i < d->nfields; i++)
                nested = nested || d->fields[i].type == MISCACHE__F_OBJECT;
              if (!nested) fail_msg("%s: text path refused %.*s", d->name, (int)n, buf);
            }
          }
          miscache__payload_clear(d, a);
          miscache__payload_clear(d, b);
          free(a);
          free(b);
        }
      }
      free(want);
      free(got);
      free(st);
    }
  }
  printf("  fast pair: %d values equal to the tree path, %d mutants decoded "
         "alike\n", fast, mutants_fast);
  assert_true(fast > 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_decode_rules),
      cmocka_unit_test(test_unknown_members_kept),
      cmocka_unit_test(test_encode_rejects_bad_utf8),
      cmocka_unit_test(test_fast_pair_matches_tree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The table-driven payload codec, every field kind: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "payload.h"

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
      /* a required field that is null is missing (issue 9, item 16) */
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
 * included (issue 9, item 1). */
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_decode_rules),
      cmocka_unit_test(test_unknown_members_kept),
      cmocka_unit_test(test_encode_rejects_bad_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

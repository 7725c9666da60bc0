/* JSON codec: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static char err[256];

static void test_round_trip_compact_utf8(void **state) {
  (void)state;
  json_t *v = json_pack("{s:i,s:s,s:{s:b},s:[]}", "user_id", 123, "username",
                        "\xEA\xB4\x80\xEB\xA6\xAC\xEC\x9E\x90", "perm",
                        "read", 1, "errors");
  size_t len = 0;
  char *s = miscache__encode(v, &len);
  assert_non_null(s);
  assert_string_equal(s, "{\"user_id\":123,\"username\":\"\xEA\xB4\x80\xEB\xA6"
                         "\xAC\xEC\x9E\x90\",\"perm\":{\"read\":true},"
                         "\"errors\":[]}");
  assert_int_equal(len, strlen(s));
  json_t *back = miscache__decode(s, len, err, sizeof err);
  assert_non_null(back);
  assert_true(json_equal(v, back));
  free(s);
  json_decref(v);
  json_decref(back);
}

static void test_empty_and_scalars_decode(void **state) {
  (void)state;
  const char *ok[] = {"{}", "[]", "0", "1250", "\"x\"", "null", "true"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    json_t *v = miscache__decode(ok[i], strlen(ok[i]), err, sizeof err);
    if (!v) fail_msg("%s: %s", ok[i], err);
    json_decref(v);
  }
}

static void test_malformed_rejected(void **state) {
  (void)state;
  static const struct {
    const char *s;
    size_t n;
  } bad[] = {
      {"", 0},
      {"{", 1},
      {"{\"a\":}", 6},
      {"not json", 8},
      {"\x80\x81", 2},               /* invalid UTF-8 */
      {"\"\xC3\x28\"", 4},           /* invalid UTF-8 in a string */
      {"\"a\\u0000b\"", 10},         /* NUL escape */
      {"{\"a\":1}\0trailing", 16},   /* embedded NUL */
      {"{\"a\":1} {}", 10},          /* two values */
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = 0;
    json_t *v = miscache__decode(bad[i].s, bad[i].n, err, sizeof err);
    if (v) fail_msg("case %zu decoded", i);
    assert_true(err[0] != 0);
  }
}

static void test_deep_nesting_rejected(void **state) {
  (void)state;
  size_t depth = 100000;
  char *s = malloc(2 * depth);
  assert_non_null(s);
  memset(s, '[', depth);
  memset(s + depth, ']', depth);
  json_t *v = miscache__decode(s, 2 * depth, err, sizeof err);
  assert_null(v);
  free(s);
}

static void test_unencodable(void **state) {
  (void)state;
  /* jansson refuses a NaN real at creation; an invalid UTF-8 string too */
  assert_null(json_string("\xff"));
  json_t *v = json_object();
  json_t *s = json_stringn("a\0b", 3); /* NUL inside: encoded as \u0000 */
  json_object_set_new(v, "k", s);
  char *out = miscache__encode(v, NULL);
  assert_non_null(out);
  assert_string_equal(out, "{\"k\":\"a\\u0000b\"}");
  free(out);
  json_decref(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_compact_utf8),
      cmocka_unit_test(test_empty_and_scalars_decode),
      cmocka_unit_test(test_malformed_rejected),
      cmocka_unit_test(test_deep_nesting_rejected),
      cmocka_unit_test(test_unencodable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

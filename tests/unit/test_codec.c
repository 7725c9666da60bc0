/* JSON codec: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

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

/* Our reader and jansson's json_loadb(JSON_DECODE_ANY) on one input: both
 * refuse it, or both build equal values (same types, same numbers). */
static void same_as_jansson(const char *s, size_t n) {
  json_error_t je;
  json_t *want = json_loadb(s, n, JSON_DECODE_ANY, &je);
  json_t *got = miscache__decode(s, n, err, sizeof err);
  if (!want != !got)
    fail_msg("input %.*s (%zu bytes): jansson %s (%s), ours %s (%s)",
             (int)(n < 80 ? n : 80), s, n, want ? "accepts" : "refuses",
             want ? "" : je.text, got ? "accepts" : "refuses", got ? "" : err);
  if (want && !json_equal(want, got))
    fail_msg("input %.*s: different values", (int)(n < 80 ? n : 80), s);
  /* json_equal treats 1 and 1.0 alike: compare the dumps too */
  if (want) {
    char *a = json_dumps(want, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    char *b = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (!a || !b || strcmp(a, b) != 0)
      fail_msg("input %.*s: %s vs %s", (int)(n < 80 ? n : 80), s, a, b);
    free(a);
    free(b);
  }
  json_decref(want);
  json_decref(got);
}

static void test_reader_matches_jansson(void **state) {
  (void)state;
  static const char *const cases[] = {
      "{}", "[]", " \t\r\n{ } ", "0", "-0", "1", "-1", "01", "-", "--1",
      "1.", ".5", "1.5", "-1.5e3", "1E+2", "1e-2", "1e", "1e+", "0.0",
      "9223372036854775807", "9223372036854775808", "-9223372036854775808",
      "-9223372036854775809", "1e308", "1e309", "-1e309", "1e-400",
      "123456789012345678901234567890.5", "true", "false", "null", "tru",
      "nul", "True", "\"\"", "\"abc\"", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
      "\"\\u00e9\\u20AC\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"",
      "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\\u0000\"", "\"\\u00\"",
      "\"\\x\"", "\"tab\there\"", "\"\xc3\xa9\"", "\"\xc3\"", "\"\xe0\x80\xaf\"",
      "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xf0\x9f\x98\x80\"",
      "\"unterminated", "{\"a\":1,\"a\":2}", "{\"a\":1,}", "[1,]", "[,1]",
      "{\"a\" 1}", "{1:2}", "{\"a\":1}}", "[[[]]]", "[1 2]", "{\"\\u0000\":1}",
      "{\"k\\u00e9y\":[true,false,null,{\"x\":-0.5}]}", "\"\\uD834\\uDD1E\"",
      "[\"a\",\"b\\n\",1e2,{}]", "{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}",
      "1 2", "[1] x", "\xef\xbb\xbf{}", "{\"a\":\"\xff\"}", "\x7f",
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    same_as_jansson(cases[i], strlen(cases[i]));
  same_as_jansson("\"a\0b\"", 5); /* a raw NUL byte */
  /* mutations of a session payload: 20,000 inputs with 1 to 3 bytes
   * changed, inserted or cut */
  const char *seed =
      "{\"user_id\":123,\"username\":\"\xea\xb4\x80\\u00e9\",\"dept_id\":1,"
      "\"permissions\":{\"admin\":{\"read\":true,\"delete\":false}},"
      "\"last\":\"2026-11-24T10:00:00Z\",\"ratio\":-1.25e-3,\"x\":[null]}";
  const char alphabet[] = "{}[]\":,\\u0123456789.eE+-tfnrl \t\xc3\xa9\x80\xff";
  size_t n = strlen(seed);
  char buf[512];
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  for (int k = 0; k < 20000; k++) {
    memcpy(buf, seed, n);
    size_t len = n;
    int edits = 1 + (int)(miscache__xorshift(&rng) % 3);
    for (int e = 0; e < edits; e++) {
      size_t at = miscache__xorshift(&rng) % len;
      char c = alphabet[miscache__xorshift(&rng) % (sizeof alphabet - 1)];
      switch (miscache__xorshift(&rng) % 3) {
      case 0: buf[at] = c; break;
      case 1: /* insert */
        if (len + 1 < sizeof buf) {
          memmove(buf + at + 1, buf + at, len - at);
          buf[at] = c;
          len++;
        }
        break;
      default: /* cut */
        memmove(buf + at, buf + at + 1, len - at - 1);
        len--;
      }
    }
    same_as_jansson(buf, len);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_compact_utf8),
      cmocka_unit_test(test_empty_and_scalars_decode),
      cmocka_unit_test(test_malformed_rejected),
      cmocka_unit_test(test_deep_nesting_rejected),
      cmocka_unit_test(test_unencodable),
      cmocka_unit_test(test_reader_matches_jansson),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

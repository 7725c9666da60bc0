/* Key builder, id encoding and pattern building: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "miscache/miscache.h"

static char buf[MISCACHE_KEY_BUFSIZE];

/* Encoding equals Python's urllib.parse.quote(id, safe="") (values taken
 * from Python 3.11), so the Flask app builds the same keys. */
static void test_encoding_matches_python_quote(void **state) {
  (void)state;
  static const struct {
    const char *id, *enc;
  } cases[] = {
      {"123", "123"},
      {"P-001", "P-001"},
      {"~a.b-c_d", "~a.b-c_d"},
      {"\xEC\x82\xAC\xEC\x9D\x80\xED\x92\x88", "%EC%82%AC%EC%9D%80%ED%92%88"},
      {"P*", "P%2A"},
      {"a:b", "a%3Ab"},
      {"x y", "x%20y"},
      {"a?[b]\\c", "a%3F%5Bb%5D%5Cc"},
      {"100%", "100%25"},
      {"\t\x7f", "%09%7F"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = 0;
    assert_int_equal(miscache_id_encode(buf, sizeof buf, cases[i].id, &len),
                     MISCACHE_OK);
    assert_string_equal(buf, cases[i].enc);
    assert_int_equal(len, strlen(cases[i].enc));
    char back[MISCACHE_KEY_BUFSIZE];
    assert_int_equal(miscache_id_decode(back, sizeof back, buf, NULL),
                     MISCACHE_OK);
    assert_string_equal(back, cases[i].id);
  }
}

static void test_key_shapes(void **state) {
  (void)state;
  assert_int_equal(miscache_key(buf, sizeof buf, "session:user", "123", NULL),
                   MISCACHE_OK);
  assert_string_equal(buf, "session:user:123");
  assert_int_equal(miscache_key(buf, sizeof buf, "master:departments", NULL),
                   MISCACHE_OK);
  assert_string_equal(buf, "master:departments");
  assert_int_equal(miscache_key(buf, sizeof buf, "gift:classification", "P*",
                                "1", NULL),
                   MISCACHE_OK);
  assert_string_equal(buf, "gift:classification:P%2A:1");
  const char *ids[] = {"REAN", "20261124"};
  size_t len = 0;
  assert_int_equal(
      miscache_key_build(buf, sizeof buf, "stats:serial_count", 2, ids, &len),
      MISCACHE_OK);
  assert_string_equal(buf, "stats:serial_count:REAN:20261124");
  assert_int_equal(len, strlen(buf));
}

/* An identifier holding ":" can never add a segment. */
static void test_colon_never_adds_segment(void **state) {
  (void)state;
  assert_int_equal(miscache_key(buf, sizeof buf, "batch:history", "1:20261124",
                                NULL),
                   MISCACHE_OK);
  assert_string_equal(buf, "batch:history:1%3A20261124");
  char other[MISCACHE_KEY_BUFSIZE];
  assert_int_equal(miscache_key(other, sizeof other, "batch:history", "1",
                                "20261124", NULL),
                   MISCACHE_OK);
  assert_string_not_equal(buf, other);
}

static void test_rejects(void **state) {
  (void)state;
  /* empty identifier */
  assert_int_equal(miscache_key(buf, sizeof buf, "session:user", "", NULL),
                   MISCACHE_ERR_KEY);
  assert_string_equal(buf, "");
  /* bad prefixes */
  const char *bad_prefixes[] = {"", ":a", "a:", "a::b", "a b", "a*", "ses?",
                                "a[1]", "x\\y", "k\n"};
  for (size_t i = 0; i < sizeof bad_prefixes / sizeof *bad_prefixes; i++)
    assert_int_equal(miscache_key(buf, sizeof buf, bad_prefixes[i], "1", NULL),
                     MISCACHE_ERR_KEY);
  /* NULL arguments */
  assert_int_equal(miscache_key(NULL, 10, "a", "1", NULL), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_key(buf, 0, "a", "1", NULL), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_key(buf, sizeof buf, NULL, "1", NULL),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_key_build(buf, sizeof buf, "a", 1, NULL, NULL),
                   MISCACHE_ERR_INVALID);
  const char *null_id[] = {NULL};
  assert_int_equal(miscache_key_build(buf, sizeof buf, "a", 1, null_id, NULL),
                   MISCACHE_ERR_KEY);
  /* too long for the buffer: error and empty buffer, never a cut key */
  char small[12];
  assert_int_equal(miscache_key(small, sizeof small, "session:user", "1", NULL),
                   MISCACHE_ERR_KEY);
  assert_string_equal(small, "");
  /* exactly fitting */
  char fit[17];
  assert_int_equal(miscache_key(fit, sizeof fit, "session:user", "123", NULL),
                   MISCACHE_OK);
  /* over MISCACHE_KEY_MAX even with a large buffer */
  static char big_id[MISCACHE_KEY_MAX + 1];
  memset(big_id, 'a', MISCACHE_KEY_MAX);
  static char big[4 * MISCACHE_KEY_MAX];
  assert_int_equal(miscache_key(big, sizeof big, "p", big_id, NULL),
                   MISCACHE_ERR_KEY);
}

static void test_patterns(void **state) {
  (void)state;
  const char *cls[] = {NULL, "1"};
  assert_int_equal(miscache_pattern_build(buf, sizeof buf,
                                          "gift:classification", 2, cls, NULL),
                   MISCACHE_OK);
  assert_string_equal(buf, "gift:classification:*:1");
  const char *an[] = {"1", NULL};
  assert_int_equal(
      miscache_pattern_build(buf, sizeof buf, "gift:analytics", 2, an, NULL),
      MISCACHE_OK);
  assert_string_equal(buf, "gift:analytics:1:*");
  /* glob characters in ids are encoded, so they match only themselves */
  const char *glob[] = {"P*?[x]\\", NULL};
  assert_int_equal(miscache_pattern_build(buf, sizeof buf,
                                          "gift:classification", 2, glob, NULL),
                   MISCACHE_OK);
  assert_string_equal(buf, "gift:classification:P%2A%3F%5Bx%5D%5C:*");
  /* a key builder refuses the NULL wildcard */
  assert_int_equal(miscache_key_build(buf, sizeof buf, "gift:analytics", 2, an,
                                      NULL),
                   MISCACHE_ERR_KEY);
}

static void test_decode_rejects(void **state) {
  (void)state;
  const char *bad[] = {"", "a:b", "a b", "%2", "%zz", "%41" /* 'A' verbatim */,
                       "%00", "%2a" /* lower case never emitted */, "P*"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(miscache_id_decode(buf, sizeof buf, bad[i], NULL),
                     MISCACHE_ERR_KEY);
}

static void test_glob_escape(void **state) {
  (void)state;
  assert_int_equal(miscache_glob_escape(buf, sizeof buf, "a*b?[c]\\d", NULL),
                   MISCACHE_OK);
  assert_string_equal(buf, "a\\*b\\?\\[c\\]\\\\d");
  char small[4];
  assert_int_equal(miscache_glob_escape(small, sizeof small, "a**", NULL),
                   MISCACHE_ERR_KEY);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encoding_matches_python_quote),
      cmocka_unit_test(test_key_shapes),
      cmocka_unit_test(test_colon_never_adds_segment),
      cmocka_unit_test(test_rejects),
      cmocka_unit_test(test_patterns),
      cmocka_unit_test(test_decode_rejects),
      cmocka_unit_test(test_glob_escape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

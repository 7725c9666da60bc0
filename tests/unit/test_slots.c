/* Cluster key slots (the specification's CRC16 and hash-tag rules) and the
 * hash-tagged key format. No server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conn/cluster.h"
#include "core/core.h"

static unsigned slot(const char *k) {
  return miscache__key_slot(k, strlen(k));
}

static void test_crc16_and_tags(void **state) {
  (void)state;
  /* CRC16/XMODEM("123456789") = 0x31C3, the specification's test vector */
  assert_int_equal(slot("123456789"), 0x31C3 % 16384);
  /* values redis-cli CLUSTER KEYSLOT gives */
  assert_int_equal(slot("foo"), 12182);
  assert_int_equal(slot("bar"), 5061);
  assert_int_equal(slot("hello"), 866);
  /* hash tags: the first {...} that is not empty */
  assert_int_equal(slot("{user1000}.following"), slot("{user1000}.followers"));
  assert_int_equal(slot("{user1000}.following"), slot("user1000"));
  assert_int_equal(slot("foo{}{bar}"), miscache__key_slot("foo{}{bar}", 10));
  assert_int_not_equal(slot("foo{}{bar}"), slot("bar"));
  assert_int_equal(slot("foo{{bar}}zap"), slot("{bar"));
  assert_int_equal(slot("foo{bar}{zap}"), slot("bar"));
  assert_int_equal(slot("batch:lock:{7}"), slot("batch:fence:{7}"));
  assert_int_equal(slot("batch:lock:{7}"), slot("gift:classification:P-1:{7}"));
  /* binary-safe: a NUL inside the key counts */
  assert_int_not_equal(miscache__key_slot("a\0b", 3), slot("a"));
  for (int i = 0; i < 1000; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    assert_true(slot(k) < 16384);
  }
}

static void test_hash_tag_key_format(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, "redis://127.0.0.1:1"),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_lazy_connect(o, true), MISCACHE_OK);
  assert_int_equal(miscache_options_set_hash_tags(o, true), MISCACHE_OK);
  miscache_t *mc = NULL;
  assert_int_equal(miscache_open(o, &mc, NULL, 0), MISCACHE_OK);
  char k[MISCACHE_KEY_BUFSIZE];
  assert_int_equal(miscache__kf_key(mc, MISCACHE_KF_BATCH_LOCK, k, "7"),
                   MISCACHE_OK);
  assert_string_equal(k, "batch:lock:{7}");
  assert_int_equal(
      miscache__kf_key(mc, MISCACHE_KF_BATCH_HISTORY, k, "7", "20261125"),
      MISCACHE_OK);
  assert_string_equal(k, "batch:history:{7}:20261125");
  assert_int_equal(
      miscache__kf_key(mc, MISCACHE_KF_GIFT_CLASSIFICATION, k, "P 1", "7"),
      MISCACHE_OK);
  assert_string_equal(k, "gift:classification:P%201:{7}");
  /* not company-scoped: unchanged */
  assert_int_equal(miscache__kf_key(mc, MISCACHE_KF_SESSION, k, "7"),
                   MISCACHE_OK);
  assert_string_equal(k, "session:user:7");
  /* patterns: the company's keys of a family, in one slot */
  const char *ids[2] = {NULL, "7"};
  assert_int_equal(miscache__kf_build(mc, MISCACHE_KF_GIFT_CLASSIFICATION, k,
                                      true, ids),
                   MISCACHE_OK);
  assert_string_equal(k, "gift:classification:*:{7}");
  miscache_free(mc);
  miscache_options_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc16_and_tags),
      cmocka_unit_test(test_hash_tag_key_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Each invalidation helper removes exactly its keys: seed keys of other
 * companies, users, dates and brands stay. */
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static const struct seed {
  miscache_db_t db;
  const char *key;
} seeds[] = {
    {MISCACHE_DB_SESSION, "session:user:7"},
    {MISCACHE_DB_SESSION, "session:user:70"},
    {MISCACHE_DB_CACHE, "permissions:user:7"},
    {MISCACHE_DB_CACHE, "permissions:user:70"},
    {MISCACHE_DB_CACHE, "master:brands"},
    {MISCACHE_DB_CACHE, "master:departments"},
    {MISCACHE_DB_CACHE, "stats:serial_count:REAN:20261124"},
    {MISCACHE_DB_CACHE, "stats:serial_count:REAN:20261123"},
    {MISCACHE_DB_CACHE, "stats:serial_count:JOY:20261124"},
    {MISCACHE_DB_CACHE, "stats:daily_sales:20261123"},
    {MISCACHE_DB_CACHE, "stats:daily_sales:20261124"},
    {MISCACHE_DB_BATCH, "batch:config:1"},
    {MISCACHE_DB_BATCH, "batch:config:10"},
    {MISCACHE_DB_BATCH, "batch:status:1"},
    {MISCACHE_DB_BATCH, "batch:status:11"},
    {MISCACHE_DB_BATCH, "batch:history:1:20261124"},
    {MISCACHE_DB_BATCH, "batch:history:10:20261124"},
    {MISCACHE_DB_BATCH, "batch:lock:1"},
    {MISCACHE_DB_GIFT, "gift:rules:1"},
    {MISCACHE_DB_GIFT, "gift:rules:11"},
    {MISCACHE_DB_GIFT, "gift:master:1"},
    {MISCACHE_DB_GIFT, "gift:classification:P1:1"},
    {MISCACHE_DB_GIFT, "gift:classification:P2:1"},
    {MISCACHE_DB_GIFT, "gift:classification:P1:10"},
    {MISCACHE_DB_GIFT, "gift:classification:1:11"},
    {MISCACHE_DB_GIFT, "gift:analytics:1:20261124"},
    {MISCACHE_DB_GIFT, "gift:analytics:1:20261123"},
    {MISCACHE_DB_GIFT, "gift:analytics:10:20261124"},
    {MISCACHE_DB_GIFT, "gift:analytics:11:20261123"},
};
enum { NSEEDS = sizeof seeds / sizeof seeds[0] };

static miscache_t *seeded(void) {
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_object();
  for (int i = 0; i < NSEEDS; i++)
    assert_int_equal(
        miscache_set(mc, seeds[i].db, seeds[i].key, v, MISCACHE_TTL_LOCK),
        MISCACHE_OK);
  json_decref(v);
  return mc;
}

/* gone: NULL-terminated keys the helper must have removed; all others stay */
static void expect(miscache_t *mc, miscache_status_t st, uint64_t removed,
                   const char *const *gone) {
  assert_int_equal(st, MISCACHE_OK);
  size_t n_gone = 0;
  while (gone[n_gone]) n_gone++;
  if (removed != n_gone)
    fail_msg("removed %llu, want %zu", (unsigned long long)removed, n_gone);
  for (int i = 0; i < NSEEDS; i++) {
    bool should_go = false;
    for (size_t g = 0; g < n_gone; g++)
      should_go = should_go || strcmp(gone[g], seeds[i].key) == 0;
    bool exists = false;
    assert_int_equal(miscache_exists(mc, seeds[i].db, seeds[i].key, &exists),
                     MISCACHE_OK);
    if (exists == should_go)
      fail_msg("%s: %s", seeds[i].key, exists ? "still there" : "removed");
  }
  miscache_free(mc);
}

static void test_permissions(void **state) {
  (void)state;
  miscache_t *mc = seeded();
  uint64_t n = 0;
  miscache_status_t st = miscache_invalidate_permissions(mc, 7, &n);
  const char *gone[] = {"permissions:user:7", "session:user:7", NULL};
  expect(mc, st, n, gone);
}

static void test_batch_config(void **state) {
  (void)state;
  miscache_t *mc = seeded();
  uint64_t n = 0;
  miscache_status_t st = miscache_invalidate_batch_config(mc, 1, &n);
  const char *gone[] = {"batch:config:1", "batch:status:1", NULL};
  expect(mc, st, n, gone);
}

static void test_gift_rules(void **state) {
  (void)state;
  miscache_t *mc = seeded();
  uint64_t n = 0;
  miscache_status_t st = miscache_invalidate_gift_rules(mc, 1, &n);
  const char *gone[] = {"gift:rules:1", "gift:classification:P1:1",
                        "gift:classification:P2:1", "gift:analytics:1:20261124",
                        "gift:analytics:1:20261123", NULL};
  expect(mc, st, n, gone);
}

static void test_brand(void **state) {
  (void)state;
  miscache_t *mc = seeded();
  uint64_t n = 0;
  miscache_status_t st = miscache_invalidate_brand(mc, "REAN", &n);
  const char *gone[] = {"master:brands",
                        "stats:serial_count:REAN:20261124",
                        "stats:serial_count:REAN:20261123",
                        "gift:analytics:1:20261124",
                        "gift:analytics:1:20261123",
                        "gift:analytics:10:20261124",
                        "gift:analytics:11:20261123",
                        NULL};
  expect(mc, st, n, gone);
}

static void test_company(void **state) {
  (void)state;
  miscache_t *mc = seeded();
  uint64_t n = 0;
  miscache_status_t st = miscache_invalidate_company(mc, 1, &n);
  const char *gone[] = {"batch:config:1",
                        "batch:status:1",
                        "batch:history:1:20261124",
                        "gift:rules:1",
                        "gift:master:1",
                        "gift:classification:P1:1",
                        "gift:classification:P2:1",
                        "gift:analytics:1:20261124",
                        "gift:analytics:1:20261123",
                        NULL};
  expect(mc, st, n, gone);
}

static void test_daily(void **state) {
  (void)state;
  miscache_t *mc = seeded();
  uint64_t n = 0;
  miscache_status_t st = miscache_invalidate_daily(mc, "20261123", &n);
  const char *gone[] = {"stats:daily_sales:20261123",
                        "gift:analytics:1:20261123",
                        "gift:analytics:11:20261123", NULL};
  expect(mc, st, n, gone);
}

static void test_post_batch(void **state) {
  (void)state;
  miscache_t *mc = seeded();
  uint64_t n = 0;
  const int64_t active[] = {1, 11};
  miscache_status_t st =
      miscache_invalidate_post_batch(mc, active, 2, "20261124", &n);
  const char *gone[] = {"batch:status:1", "batch:status:11",
                        "gift:analytics:1:20261124", NULL};
  expect(mc, st, n, gone);
}

static int listed;
static int list_key(void *ud, miscache_db_t db, const char *key) {
  (void)ud;
  assert_int_equal(db, MISCACHE_DB_GIFT);
  assert_int_equal(strncmp(key, "gift:", 5), 0);
  listed++;
  return 0;
}

/* A dry run lists the same keys and deletes none. */
static void test_dry_run(void **state) {
  (void)state;
  miscache_t *mc = seeded();
  uint64_t n = 0;
  listed = 0;
  assert_int_equal(miscache_invalidate_dry_run(mc, list_key, NULL), MISCACHE_OK);
  assert_int_equal(miscache_invalidate_gift_rules(mc, 1, &n), MISCACHE_OK);
  assert_int_equal(n, 5);
  assert_int_equal(listed, 5);
  assert_int_equal(miscache_invalidate_dry_run(mc, NULL, NULL), MISCACHE_OK);
  const char *gone[] = {NULL}; /* nothing removed */
  expect(mc, MISCACHE_OK, 0, gone);
}

static void test_bad_input(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  uint64_t n = 9;
  assert_int_equal(miscache_invalidate_daily(mc, "2026-11-23", &n),
                   MISCACHE_ERR_KEY);
  assert_int_equal(n, 0);
  assert_int_equal(miscache_invalidate_brand(mc, NULL, &n), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_invalidate_brand(mc, "", &n), MISCACHE_ERR_KEY);
  assert_int_equal(miscache_invalidate_post_batch(mc, NULL, 2, "20261124", &n),
                   MISCACHE_ERR_INVALID);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_permissions), cmocka_unit_test(test_batch_config),
      cmocka_unit_test(test_gift_rules),  cmocka_unit_test(test_brand),
      cmocka_unit_test(test_company),     cmocka_unit_test(test_daily),
      cmocka_unit_test(test_post_batch),  cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_dry_run),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

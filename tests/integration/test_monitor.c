/* Monitoring: category counters, INFO figures per logical db, health. */
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static void test_category_counters(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_object(), *out = NULL;
  miscache_get(mc, MISCACHE_DB_SESSION, "session:user:1", &out); /* miss */
  miscache_set(mc, MISCACHE_DB_SESSION, "session:user:1", v, MISCACHE_TTL_SESSION);
  miscache_get(mc, MISCACHE_DB_SESSION, "session:user:1", &out); /* hit */
  json_decref(out);
  miscache_set(mc, MISCACHE_DB_CACHE, "permissions:user:1", v,
               MISCACHE_TTL_PERMISSIONS);
  miscache_get(mc, MISCACHE_DB_CACHE, "permissions:user:1", &out);
  json_decref(out);
  miscache_get(mc, MISCACHE_DB_CACHE, "custom:thing", &out); /* other: miss */
  json_decref(v);
  miscache_counters_t c;
  assert_int_equal(miscache_counters_category(mc, MISCACHE_CAT_SESSION, &c),
                   MISCACHE_OK);
  assert_int_equal(c.hits, 1);
  assert_int_equal(c.misses, 1);
  miscache_counters_category(mc, MISCACHE_CAT_PERMISSIONS, &c);
  assert_int_equal(c.hits, 1);
  assert_int_equal(c.misses, 0);
  miscache_counters_category(mc, MISCACHE_CAT_OTHER, &c);
  assert_int_equal(c.misses, 1);
  miscache_counters_category(mc, MISCACHE_CAT_GIFT, &c);
  assert_int_equal(c.hits + c.misses + c.errors, 0);
  assert_string_equal(miscache_category_name(MISCACHE_CAT_STATS), "stats");
  assert_int_equal(miscache_counters_category(mc, (miscache_category_t)9, &c),
                   MISCACHE_ERR_INVALID);
  miscache_counters_reset(mc);
  miscache_counters_category(mc, MISCACHE_CAT_SESSION, &c);
  assert_int_equal(c.hits + c.misses, 0);
  miscache_free(mc);
}

static void test_server_info(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_server_info_t before, after;
  assert_int_equal(miscache_server_info(mc, &before), MISCACHE_OK);
  json_t *v = json_object(), *out = NULL;
  for (int i = 0; i < 3; i++) {
    char key[32];
    snprintf(key, sizeof key, "gift:rules:%d", 900 + i);
    miscache_set(mc, MISCACHE_DB_GIFT, key, v, MISCACHE_TTL_GIFT_RULES);
  }
  miscache_get(mc, MISCACHE_DB_GIFT, "gift:rules:900", &out);
  json_decref(out);
  json_decref(v);
  assert_int_equal(miscache_server_info(mc, &after), MISCACHE_OK);
  assert_int_equal(after.keys[MISCACHE_DB_GIFT] - before.keys[MISCACHE_DB_GIFT], 3);
  assert_int_equal(
      after.expires[MISCACHE_DB_GIFT] - before.expires[MISCACHE_DB_GIFT], 3);
  assert_true(after.keyspace_hits > before.keyspace_hits);
  assert_true(after.used_memory > 0);
  assert_true(after.maxmemory_policy[0] != 0);
  assert_true(after.hit_rate > 0 && after.hit_rate <= 1);
  miscache_free(mc);
}

static void test_company_health(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_company_health_t h;
  assert_int_equal(miscache_company_health(mc, 9, "20261124", &h), MISCACHE_OK);
  assert_int_equal(h.batch, MISCACHE_HEALTH_MISSING);
  assert_int_equal(h.gift, MISCACHE_HEALTH_MISSING);
  assert_int_equal(miscache_company_health_overall(&h), MISCACHE_HEALTH_MISSING);

  miscache_batch_config_t cfg = {.batch_enabled = true, .page_size = 30};
  assert_int_equal(miscache_batch_config_set(mc, 9, &cfg), MISCACHE_OK);
  miscache_company_health(mc, 9, "20261124", &h);
  assert_int_equal(h.batch, MISCACHE_HEALTH_PARTIAL);
  miscache_batch_status_t s = {.status = "completed",
                               .start_time = "2026-11-24T02:00:00Z"};
  assert_int_equal(miscache_batch_status_set(mc, 9, &s), MISCACHE_OK);
  miscache_gift_rules_t r = {.auto_classify = true};
  miscache_strings_push(&r.keywords, "a");
  miscache_strings_push(&r.keywords, "b");
  assert_int_equal(miscache_gift_rules_set(mc, 9, &r), MISCACHE_OK);
  miscache_gift_rules_clear(&r);
  json_t *an = json_object();
  miscache_gift_analytics_set(mc, 9, "20261124", an);
  json_decref(an);
  miscache_counters_reset(mc);
  assert_int_equal(miscache_company_health(mc, 9, "20261124", &h), MISCACHE_OK);
  assert_true(h.config_cached && h.status_cached);
  assert_string_equal(h.last_batch_time, "2026-11-24T02:00:00Z");
  assert_string_equal(h.last_batch_status, "completed");
  assert_false(h.batch_locked);
  assert_int_equal(h.batch, MISCACHE_HEALTH_HEALTHY);
  assert_true(h.rules_cached && h.auto_classify);
  assert_int_equal(h.keyword_count, 2);
  assert_true(h.analytics_cached);
  assert_int_equal(h.gift, MISCACHE_HEALTH_HEALTHY);
  assert_string_equal(miscache_health_name(miscache_company_health_overall(&h)),
                      "healthy");
  /* the health check did not count as cache reads */
  miscache_counters_t c;
  miscache_counters_total(mc, &c);
  assert_int_equal(c.hits + c.misses, 0);
  /* company 90 shares no key with 9 */
  miscache_company_health(mc, 90, "20261124", &h);
  assert_int_equal(miscache_company_health_overall(&h), MISCACHE_HEALTH_MISSING);
  assert_int_equal(miscache_company_health(mc, 9, "bad", &h), MISCACHE_ERR_KEY);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_category_counters),
      cmocka_unit_test(test_server_info),
      cmocka_unit_test(test_company_health),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

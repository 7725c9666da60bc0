/* Master data, statistics and temp job status against a real server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static void assert_pttl(miscache_t *mc, miscache_db_t db, const char *key,
                        long long seconds) {
  long long p = mt_raw_pttl(mc, db, key);
  if (p > seconds * 1000 || p < seconds * 1000 - 5000)
    fail_msg("%s: PTTL %lld, want about %lld s", key, p, seconds);
}

static int loads;
static miscache_status_t load_brands(void *ud, const char *key, json_t **out) {
  (void)ud;
  (void)key;
  loads++;
  *out = json_pack("[{s:i,s:s,s:s}]", "id", 1, "name", "REAN", "code", "REAN");
  return MISCACHE_OK;
}
static miscache_status_t load_object(void *ud, const char *key, json_t **out) {
  (void)ud;
  (void)key;
  *out = json_object();
  return MISCACHE_OK;
}

static void test_master_lists(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  static const struct {
    miscache_master_list_t l;
    const char *key;
    long long ttl;
  } lists[] = {{MISCACHE_MASTER_DEPARTMENTS, "master:departments", 21600},
               {MISCACHE_MASTER_BRANDS, "master:brands", 21600},
               {MISCACHE_MASTER_COMPANIES, "master:companies", 43200}};
  json_t *v = json_pack("[{s:i,s:s,s:s},{s:i,s:s,s:s}]", "id", 1, "code",
                        "AONE", "name", "\xec\x97\x90\xec\x9d\xb4\xec\x9b\x90",
                        "id", 2, "code", "AONE_WORLD", "name", "x");
  for (int i = 0; i < 3; i++) {
    assert_int_equal(miscache_master_set(mc, lists[i].l, v), MISCACHE_OK);
    assert_int_equal(mt_raw_exists_in(mc, 1, lists[i].key), 1);
    assert_pttl(mc, MISCACHE_DB_CACHE, lists[i].key, lists[i].ttl);
    json_t *out = NULL;
    assert_int_equal(miscache_master_get(mc, lists[i].l, &out), MISCACHE_OK);
    assert_true(json_equal(out, v));
    json_decref(out);
  }
  /* [] is a hit; a non-array is refused; a stored non-array is DECODE */
  json_t *empty = json_array(), *obj = json_object(), *out = NULL;
  assert_int_equal(miscache_master_set(mc, MISCACHE_MASTER_BRANDS, empty),
                   MISCACHE_OK);
  assert_int_equal(miscache_master_get(mc, MISCACHE_MASTER_BRANDS, &out),
                   MISCACHE_OK);
  assert_int_equal(json_array_size(out), 0);
  json_decref(out);
  assert_int_equal(miscache_master_set(mc, MISCACHE_MASTER_BRANDS, obj),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "master:departments",
                                obj, MISCACHE_TTL_MASTER_DATA),
                   MISCACHE_OK);
  assert_int_equal(miscache_master_get(mc, MISCACHE_MASTER_DEPARTMENTS, &out),
                   MISCACHE_ERR_DECODE);
  assert_null(out);
  assert_int_equal(miscache_master_get(mc, (miscache_master_list_t)3, &out),
                   MISCACHE_ERR_INVALID);
  json_decref(empty);
  json_decref(obj);
  json_decref(v);
  miscache_free(mc);
}

static void test_master_get_or_load_and_products(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *out = NULL;
  miscache_source_t src;
  loads = 0;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(miscache_master_get_or_load(mc, MISCACHE_MASTER_COMPANIES,
                                                 load_brands, NULL, &out, &src),
                     MISCACHE_OK);
    assert_int_equal(src, i ? MISCACHE_SOURCE_CACHE : MISCACHE_SOURCE_LOADED);
    json_decref(out);
  }
  assert_int_equal(loads, 1);
  assert_pttl(mc, MISCACHE_DB_CACHE, "master:companies", 43200);
  assert_int_equal(miscache_master_get_or_load(mc, MISCACHE_MASTER_BRANDS,
                                               load_object, NULL, &out, &src),
                   MISCACHE_ERR_LOADER);
  assert_int_equal(mt_raw_exists_in(mc, 1, "master:brands"), 0);

  json_t *products = json_pack("[{s:s}]", "code", "P001");
  assert_int_equal(miscache_master_products_set(mc, 17, products), MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(mc, 1, "master:products:category:17"), 1);
  assert_pttl(mc, MISCACHE_DB_CACHE, "master:products:category:17", 21600);
  assert_int_equal(miscache_master_products_get(mc, 17, &out), MISCACHE_OK);
  assert_true(json_equal(out, products));
  json_decref(out);
  assert_int_equal(miscache_master_products_get(mc, 18, &out), MISCACHE_MISS);
  assert_int_equal(miscache_master_products_get_or_load(mc, 18, load_brands,
                                                        NULL, &out, &src),
                   MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  json_decref(out);
  json_decref(products);
  miscache_free(mc);
}

static void test_daily_sales(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_daily_sales_t s = {0};
  s.total_amount = 1000000;
  s.order_count = 150;
  s.brand_stats = json_pack("{s:{s:i}}", "REAN", "amount", 500000);
  s.channel_stats = json_pack("{s:i}", "online", 90);
  s.gift_stats.gift_order_count = 85;
  s.gift_stats.gift_attachment_rate = 56.5;
  s.gift_stats.total_gift_cost = 125000;
  assert_int_equal(miscache_stats_daily_sales_set(mc, "20261124", &s),
                   MISCACHE_OK);
  assert_pttl(mc, MISCACHE_DB_CACHE, "stats:daily_sales:20261124", 43200);
  char *raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "stats:daily_sales:20261124");
  assert_non_null(strstr(raw, "\"gift_stats\":{\"gift_order_count\":85,"
                              "\"gift_attachment_rate\":56.5,"
                              "\"total_gift_cost\":125000"));
  free(raw);
  miscache_daily_sales_t back;
  assert_int_equal(miscache_stats_daily_sales_get(mc, "20261124", &back),
                   MISCACHE_OK);
  assert_true(back.total_amount == 1000000);
  assert_int_equal(back.order_count, 150);
  assert_true(json_equal(back.brand_stats, s.brand_stats));
  assert_true(json_equal(back.channel_stats, s.channel_stats));
  assert_int_equal(back.gift_stats.gift_order_count, 85);
  assert_true(back.gift_stats.gift_attachment_rate == 56.5);
  assert_true(back.gift_stats.total_gift_cost == 125000);
  miscache_daily_sales_clear(&back);
  miscache_daily_sales_clear(&s);
  assert_int_equal(miscache_stats_daily_sales_get(mc, "20261123", &back),
                   MISCACHE_MISS);
  const char *bad[] = {"20261301", "2026112", "2026112a", "20261100",
                       "202611240", "", "2026-11-24", "20261132"};
  for (int i = 0; i < 8; i++)
    assert_int_equal(miscache_stats_daily_sales_get(mc, bad[i], &back),
                     MISCACHE_ERR_KEY);
  assert_int_equal(miscache_stats_daily_sales_get(mc, NULL, &back),
                   MISCACHE_ERR_INVALID);

  json_t *rev = json_pack("{s:f}", "total", 12345.5);
  assert_int_equal(miscache_stats_monthly_revenue_set(mc, "202611", rev),
                   MISCACHE_OK);
  assert_pttl(mc, MISCACHE_DB_CACHE, "stats:monthly_revenue:202611", 43200);
  json_t *out = NULL;
  assert_int_equal(miscache_stats_monthly_revenue_get(mc, "202611", &out),
                   MISCACHE_OK);
  assert_true(json_equal(out, rev));
  json_decref(out);
  json_decref(rev);
  assert_int_equal(miscache_stats_monthly_revenue_get(mc, "202613", &out),
                   MISCACHE_ERR_KEY);
  miscache_free(mc);
}

static void test_serial_count(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  int64_t v = 0;
  assert_int_equal(miscache_stats_serial_get(mc, "REAN", "20261124", &v),
                   MISCACHE_MISS);
  for (int i = 1; i <= 3; i++) {
    assert_int_equal(miscache_stats_serial_incr(mc, "REAN", "20261124", 1, &v),
                     MISCACHE_OK);
    assert_int_equal(v, i);
  }
  const char *key = "stats:serial_count:REAN:20261124";
  assert_pttl(mc, MISCACHE_DB_CACHE, key, 86400);
  /* later increments keep the TTL the first one set */
  char full[128];
  snprintf(full, sizeof full, "%s%s", miscache_namespace(mc), key);
  mt_raw_int(mt_rc, 1, "PEXPIRE %s 50000", full);
  assert_int_equal(miscache_stats_serial_incr(mc, "REAN", "20261124", 10, &v),
                   MISCACHE_OK);
  assert_int_equal(v, 13);
  assert_true(mt_raw_pttl(mc, MISCACHE_DB_CACHE, key) <= 50000);
  assert_int_equal(miscache_stats_serial_get(mc, "REAN", "20261124", &v),
                   MISCACHE_OK);
  assert_int_equal(v, 13);
  /* other brand and day are separate counters */
  assert_int_equal(miscache_stats_serial_incr(mc, "JOY", "20261124", 1, &v),
                   MISCACHE_OK);
  assert_int_equal(v, 1);
  assert_int_equal(miscache_stats_serial_incr(mc, "REAN", "20261125", 1, &v),
                   MISCACHE_OK);
  assert_int_equal(v, 1);
  /* a brand code with ':' cannot collide with another key */
  assert_int_equal(miscache_stats_serial_incr(mc, "RE:AN", "20261124", 1, &v),
                   MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(mc, 1, "stats:serial_count:RE%3AAN:20261124"),
                   1);
  assert_int_equal(miscache_stats_serial_incr(mc, "", "20261124", 1, &v),
                   MISCACHE_ERR_KEY);
  json_t *obj = json_object();
  miscache_set(mc, MISCACHE_DB_CACHE, "stats:serial_count:NUNA:20261124", obj,
               MISCACHE_TTL_LOCK);
  json_decref(obj);
  assert_int_equal(miscache_stats_serial_get(mc, "NUNA", "20261124", &v),
                   MISCACHE_ERR_DECODE);
  assert_int_equal(miscache_stats_serial_incr(mc, "NUNA", "20261124", 1, &v),
                   MISCACHE_ERR_SERVER); /* INCRBY on a non-integer */
  miscache_free(mc);
}

static void test_temp(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  const char *id = "6f1c2d3e-upload";
  assert_int_equal(miscache_upload_create(mc, id, 1000), MISCACHE_OK);
  char key[128];
  snprintf(key, sizeof key, "temp:excel_upload:%s", id);
  assert_int_equal(mt_raw_exists_in(mc, 2, key), 1);
  assert_pttl(mc, MISCACHE_DB_TEMP, key, 3600);
  assert_int_equal(miscache_upload_advance(mc, id, 300, 2), MISCACHE_OK);
  assert_int_equal(miscache_upload_advance(mc, id, 200, 3), MISCACHE_OK);
  miscache_upload_t u;
  assert_int_equal(miscache_upload_get(mc, id, &u), MISCACHE_OK);
  assert_string_equal(u.status, "processing");
  assert_int_equal(u.total_rows, 1000);
  assert_int_equal(u.processed_rows, 500);
  assert_int_equal(u.error_count, 5);
  assert_non_null(u.start_time);
  miscache_upload_clear(&u);
  assert_int_equal(miscache_upload_finish(mc, id, "completed"), MISCACHE_OK);
  assert_int_equal(miscache_upload_get(mc, id, &u), MISCACHE_OK);
  assert_string_equal(u.status, "completed");
  assert_int_equal(u.processed_rows, 500);
  miscache_upload_clear(&u);
  assert_int_equal(miscache_upload_advance(mc, "nope", 1, 0), MISCACHE_MISS);
  assert_int_equal(miscache_upload_finish(mc, id, ""), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_upload_create(mc, "", 1), MISCACHE_ERR_KEY);

  json_t *r = json_pack("{s:s,s:s}", "status", "completed", "file_path",
                        "/tmp/reports/sales_20261124.xlsx");
  assert_int_equal(miscache_report_set(mc, "r1", r), MISCACHE_OK);
  assert_pttl(mc, MISCACHE_DB_TEMP, "temp:report:r1", 1800);
  json_t *out = NULL;
  assert_int_equal(miscache_report_get(mc, "r1", &out), MISCACHE_OK);
  assert_true(json_equal(out, r));
  json_decref(out);
  json_decref(r);
  miscache_free(mc);
}

/* The names that match temp.h and stats.h reach the same keys as the old
 * ones: a value written through one name is read through the other. */
static void test_temp_and_stats_new_names(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  const char *id = "names-upload";
  assert_int_equal(miscache_temp_upload_create(mc, id, 10), MISCACHE_OK);
  assert_pttl(mc, MISCACHE_DB_TEMP, "temp:excel_upload:names-upload", 3600);
  assert_int_equal(miscache_temp_upload_advance(mc, id, 4, 1), MISCACHE_OK);
  assert_int_equal(miscache_temp_upload_finish(mc, id, "failed"), MISCACHE_OK);
  miscache_upload_t old;
  assert_int_equal(miscache_upload_get(mc, id, &old), MISCACHE_OK);
  assert_string_equal(old.status, "failed");
  assert_int_equal(old.processed_rows, 4);
  assert_int_equal(old.error_count, 1);
  miscache_upload_clear(&old);
  miscache_temp_upload_t u;
  assert_int_equal(miscache_temp_upload_get(mc, id, &u), MISCACHE_OK);
  assert_int_equal(u.total_rows, 10);
  miscache_temp_upload_clear(&u);
  assert_null(u.status);

  json_t *r = json_pack("{s:s}", "status", "completed");
  assert_int_equal(miscache_temp_report_set(mc, "names-r", r), MISCACHE_OK);
  assert_pttl(mc, MISCACHE_DB_TEMP, "temp:report:names-r", 1800);
  json_t *out = NULL;
  assert_int_equal(miscache_report_get(mc, "names-r", &out), MISCACHE_OK);
  assert_true(json_equal(out, r));
  json_decref(out);
  assert_int_equal(miscache_temp_report_get(mc, "names-r", &out), MISCACHE_OK);
  assert_true(json_equal(out, r));
  json_decref(out);
  json_decref(r);

  miscache_daily_sales_t d = {.total_amount = 12.5, .order_count = 3};
  d.gift_stats = (miscache_stats_gift_t){.gift_order_count = 2};
  assert_int_equal(miscache_stats_daily_sales_set(mc, "20261202", &d),
                   MISCACHE_OK);
  miscache_daily_sales_t back;
  assert_int_equal(miscache_stats_daily_sales_get(mc, "20261202", &back),
                   MISCACHE_OK);
  assert_int_equal(back.gift_stats.gift_order_count, 2);
  miscache_stats_daily_sales_clear(&back);
  assert_null(back.brand_stats);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_master_lists),
      cmocka_unit_test(test_master_get_or_load_and_products),
      cmocka_unit_test(test_daily_sales),
      cmocka_unit_test(test_serial_count),
      cmocka_unit_test(test_temp),
      cmocka_unit_test(test_temp_and_stats_new_names),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

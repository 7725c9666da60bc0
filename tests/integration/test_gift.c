/* Gift rules, master, classification through the cache (single and bulk)
 * and analytics against a real server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#define SAEUNPUM "\xec\x82\xac\xec\x9d\x80\xed\x92\x88"

static void assert_pttl(miscache_t *mc, const char *key, long long s) {
  long long p = mt_raw_pttl(mc, MISCACHE_DB_GIFT, key);
  if (p > s * 1000 || p < s * 1000 - 5000)
    fail_msg("%s: PTTL %lld, want about %lld s", key, p, s);
}

static int rules_loads;
static miscache_status_t load_rules(void *ud, int64_t company,
                                    miscache_gift_rules_t *out) {
  (void)ud;
  (void)company;
  rules_loads++;
  out->auto_classify = true;
  out->zero_price_rule = true;
  out->exclude_from_revenue = true;
  miscache_strings_push(&out->keywords, SAEUNPUM);
  miscache_strings_push(&out->master_products, "MP-1");
  return MISCACHE_OK;
}

static miscache_gift_engine_t *engine_for(miscache_t *mc, int64_t company) {
  miscache_gift_rules_t r;
  miscache_source_t src;
  assert_int_equal(
      miscache_gift_rules_get_or_load(mc, company, load_rules, NULL, &r, &src),
      MISCACHE_OK);
  miscache_gift_master_entry_t *m = NULL;
  size_t n = 0;
  miscache_status_t st = miscache_gift_master_get(mc, company, &m, &n);
  assert_true(st == MISCACHE_OK || st == MISCACHE_MISS);
  miscache_gift_engine_t *e = NULL;
  assert_int_equal(miscache_gift_engine_new(&r, m, n, &e), MISCACHE_OK);
  miscache_gift_master_free(m, n);
  miscache_gift_rules_clear(&r);
  return e;
}

static void test_rules_and_master(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_gift_rules_t r;
  miscache_source_t src;
  rules_loads = 0;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(
        miscache_gift_rules_get_or_load(mc, 1, load_rules, NULL, &r, &src),
        MISCACHE_OK);
    assert_int_equal(src, i ? MISCACHE_SOURCE_CACHE : MISCACHE_SOURCE_LOADED);
    assert_true(r.zero_price_rule);
    assert_string_equal(r.keywords.items[0], SAEUNPUM);
    miscache_gift_rules_clear(&r);
  }
  assert_int_equal(rules_loads, 1);
  assert_int_equal(mt_raw_exists_in(mc, 5, "gift:rules:1"), 1);
  assert_pttl(mc, "gift:rules:1", 21600);

  miscache_gift_master_entry_t m[2] = {
      {.product_code = "GM-1", .product_name = "\xed\x8c\x8c\xec\x9a\xb0\xec\xb9\x98",
       .brand_code = "REAN", .category = "pouch", .standard_cost = 1200,
       .is_active = true},
      {.product_code = "GM-2", .is_active = false}};
  assert_int_equal(miscache_gift_master_set(mc, 1, m, 2), MISCACHE_OK);
  assert_pttl(mc, "gift:master:1", 21600);
  miscache_gift_master_entry_t *back = NULL;
  size_t n = 0;
  assert_int_equal(miscache_gift_master_get(mc, 1, &back, &n), MISCACHE_OK);
  assert_int_equal(n, 2);
  assert_string_equal(back[0].product_name, m[0].product_name);
  assert_true(back[0].standard_cost == 1200);
  assert_true(back[0].is_active);
  assert_false(back[1].is_active);
  miscache_gift_master_free(back, n);
  assert_int_equal(miscache_gift_master_get(mc, 2, &back, &n), MISCACHE_MISS);
  miscache_free(mc);
}

static void test_single_classify(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_gift_engine_t *e = engine_for(mc, 1);
  miscache_gift_product_t p = {.product_code = "P*1",
                               .product_name = "[" SAEUNPUM "] wipes",
                               .supply_price = 3000};
  miscache_gift_classification_t c;
  miscache_source_t src;
  assert_int_equal(miscache_gift_classify(mc, 1, e, &p, &c, &src), MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  assert_string_equal(c.gift_type, "KEYWORD");
  miscache_gift_classification_clear(&c);
  assert_int_equal(miscache_gift_classify(mc, 1, e, &p, &c, &src), MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_CACHE);
  assert_string_equal(c.product_type, "GIFT");
  assert_false(c.is_revenue);
  miscache_gift_classification_clear(&c);
  /* the key encodes the product code; db gift; class TTL 4 h */
  assert_int_equal(mt_raw_exists_in(mc, 5, "gift:classification:P%2A1:1"), 1);
  assert_pttl(mc, "gift:classification:P%2A1:1", 14400);
  char *raw = mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:classification:P%2A1:1");
  assert_non_null(strstr(raw, "\"product_type\":\"GIFT\",\"gift_type\":"
                              "\"KEYWORD\""));
  assert_non_null(strstr(raw, "\"is_revenue\":false,\"revenue_impact\":0"));
  free(raw);
  miscache_gift_engine_free(e);
  miscache_free(mc);
}

static void same(const miscache_gift_classification_t *a,
                 const miscache_gift_classification_t *b) {
  assert_string_equal(a->product_type, b->product_type);
  assert_true((a->gift_type == NULL) == (b->gift_type == NULL));
  if (a->gift_type) assert_string_equal(a->gift_type, b->gift_type);
  assert_string_equal(a->classification_reason, b->classification_reason);
  assert_int_equal(a->is_revenue, b->is_revenue);
  assert_true(a->revenue_impact == b->revenue_impact);
}

/* Bulk equals one-by-one, half of the page cached beforehand. */
static void test_bulk_equals_single(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_gift_engine_t *e = engine_for(mc, 1);
  enum { N = 200 };
  static char codes[N][16], names[N][64];
  miscache_gift_product_t p[N];
  for (int i = 0; i < N; i++) {
    snprintf(codes[i], sizeof codes[i], "%s%d", i % 17 == 0 ? "MP-" : "C",
             i % 17 == 0 ? 1 : i);
    snprintf(names[i], sizeof names[i], "%s item %d",
             i % 5 == 0 ? SAEUNPUM : "plain", i);
    p[i] = (miscache_gift_product_t){.product_code = codes[i],
                                     .product_name = names[i],
                                     .supply_price = i % 7 == 0 ? 0 : 100 + i};
  }
  for (int i = 0; i < N; i += 2) { /* pre-cache the even ones */
    miscache_gift_classification_t c;
    assert_int_equal(miscache_gift_classify(mc, 1, e, &p[i], &c, NULL),
                     MISCACHE_OK);
    miscache_gift_classification_clear(&c);
  }
  static miscache_gift_classification_t bulk[N];
  size_t cached = 0;
  mt_raw_cmd("CONFIG RESETSTAT");
  assert_int_equal(miscache_gift_classify_bulk(mc, 1, e, p, N, bulk, NULL, &cached),
                   MISCACHE_OK);
  assert_true(cached >= N / 2); /* MP-1 repeats: later copies hit too */
  /* one MGET; on a cluster one read per slot the keys fall in (a lone
   * key's as GET), none per key beyond that */
  if (mt_is_cluster()) {
    long long reads = mt_cmdstat_calls(mt_rc, "mget") +
                      mt_cmdstat_calls(mt_rc, "get");
    assert_true(reads >= 1 && reads <= N);
  } else {
    assert_int_equal(mt_cmdstat_calls(mt_rc, "mget"), 1);
    assert_int_equal(mt_cmdstat_calls(mt_rc, "get"), 0);
  }
  for (int i = 0; i < N; i++) {
    miscache_gift_classification_t one;
    miscache_source_t src;
    assert_int_equal(miscache_gift_classify(mc, 1, e, &p[i], &one, &src),
                     MISCACHE_OK);
    assert_int_equal(src, MISCACHE_SOURCE_CACHE); /* bulk stored the rest */
    same(&bulk[i], &one);
    miscache_gift_classification_clear(&one);
    miscache_gift_classification_clear(&bulk[i]);
  }
  /* a second bulk run is all cache */
  assert_int_equal(miscache_gift_classify_bulk(mc, 1, e, p, N, bulk, NULL, &cached),
                   MISCACHE_OK);
  assert_int_equal(cached, N);
  for (int i = 0; i < N; i++) miscache_gift_classification_clear(&bulk[i]);
  miscache_gift_engine_free(e);
  miscache_free(mc);
}

/* Pages pipelined: the same results and statuses as bulk page by page, one
 * MGET per page, every new result stored with its TTL. */
static void test_pages_equal_bulk(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_gift_engine_t *e = engine_for(mc, 1);
  enum { N = 1000, PAGE = 30 };
  static char codes[N][16], names[N][64];
  static miscache_gift_product_t p[N];
  for (int i = 0; i < N; i++) {
    snprintf(codes[i], sizeof codes[i], "PG%d", i);
    snprintf(names[i], sizeof names[i], "%s item %d",
             i % 5 == 0 ? SAEUNPUM : "plain", i);
    p[i] = (miscache_gift_product_t){.product_code = codes[i],
                                     .product_name = names[i],
                                     .supply_price = i % 7 == 0 ? 0 : 100 + i};
  }
  p[77].product_code = ""; /* a bad line: its own status, the rest go on */
  for (int i = 0; i < N; i += 3) { /* pre-cache every third */
    miscache_gift_classification_t c;
    if (i == 77) continue;
    assert_int_equal(miscache_gift_classify(mc, 1, e, &p[i], &c, NULL),
                     MISCACHE_OK);
    miscache_gift_classification_clear(&c);
  }
  static miscache_gift_classification_t pages[N];
  static miscache_status_t sts[N];
  size_t cached = 0;
  mt_raw_cmd("CONFIG RESETSTAT");
  assert_int_equal(miscache_gift_classify_pages(mc, 1, e, p, N, PAGE, pages,
                                                sts, &cached),
                   MISCACHE_ERR_KEY); /* the first bad line's status */
  assert_int_equal(cached, (N + 2) / 3); /* 0, 3, ... 999 */
  assert_int_equal(sts[77], MISCACHE_ERR_KEY);
  if (!mt_is_cluster()) {
    assert_int_equal(mt_cmdstat_calls(mt_rc, "mget"), (N + PAGE - 1) / PAGE);
    assert_int_equal(mt_cmdstat_calls(mt_rc, "set"), N - cached - 1);
  }
  for (int i = 0; i < N; i++) {
    if (i == 77) continue;
    assert_int_equal(sts[i], MISCACHE_OK);
    miscache_gift_classification_t one;
    miscache_source_t src;
    assert_int_equal(miscache_gift_classify(mc, 1, e, &p[i], &one, &src),
                     MISCACHE_OK);
    assert_int_equal(src, MISCACHE_SOURCE_CACHE); /* pages stored the rest */
    same(&pages[i], &one);
    miscache_gift_classification_clear(&one);
    miscache_gift_classification_clear(&pages[i]);
  }
  char key[64];
  snprintf(key, sizeof key, "gift:classification:%s:1", codes[N - 1]);
  long long pttl = mt_raw_pttl(mc, MISCACHE_DB_GIFT, key); /* the last page too */
  assert_true(pttl > 0);
  /* a second run is all cache; a page size of 0 is refused */
  assert_int_equal(miscache_gift_classify_pages(mc, 1, e, p, N, 7, pages, sts,
                                                &cached),
                   MISCACHE_ERR_KEY);
  assert_int_equal(cached, N - 1);
  for (int i = 0; i < N; i++) miscache_gift_classification_clear(&pages[i]);
  assert_int_equal(miscache_gift_classify_pages(mc, 1, e, p, N, 0, pages, sts,
                                                &cached),
                   MISCACHE_ERR_INVALID);
  miscache_gift_engine_free(e);
  miscache_free(mc);
}

static miscache_status_t load_analytics(void *ud, const char *key,
                                        json_t **out) {
  (void)key;
  ++*(int *)ud;
  *out = json_pack("{s:i,s:i,s:f,s:{s:{s:i,s:s}}}", "total_orders", 150,
                   "orders_with_gifts", 85, "gift_attachment_rate", 56.5,
                   "gift_products", "GM-1", "count", 85, "name", "pouch");
  return MISCACHE_OK;
}

static void test_analytics(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  int loads = 0;
  json_t *a = NULL;
  miscache_source_t src;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(miscache_gift_analytics_get_or_load(
                         mc, 1, "20261124", load_analytics, &loads, &a, &src),
                     MISCACHE_OK);
    assert_int_equal(json_integer_value(json_object_get(a, "total_orders")),
                     150);
    json_decref(a);
  }
  assert_int_equal(loads, 1);
  assert_pttl(mc, "gift:analytics:1:20261124", 28800);
  assert_int_equal(miscache_gift_analytics_get(mc, 10, "20261124", &a),
                   MISCACHE_MISS);
  assert_int_equal(miscache_gift_analytics_get(mc, 1, "2026-11-24", &a),
                   MISCACHE_ERR_KEY);
  miscache_free(mc);
}

/* Every field of rules and classification through the server. */
static void test_every_field_round_trip(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_gift_rules_t r = {true, false, {0}, true, {0},
                             strdup("2026-11-24T10:00:00Z"), NULL,
                             {0}}; /* r owns it */
  miscache_strings_push(&r.keywords, "k");
  miscache_strings_push(&r.master_products, "GM-1");
  assert_int_equal(miscache_gift_rules_set(mc, 4, &r), MISCACHE_OK);
  char *raw = mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:rules:4");
  assert_string_equal(raw, "{\"auto_classify\":true,\"zero_price_rule\":false,"
                           "\"keywords\":[\"k\"],\"exclude_from_revenue\":true,"
                           "\"master_products\":[\"GM-1\"],\"last_updated\":"
                           "\"2026-11-24T10:00:00Z\"}");
  free(raw);
  miscache_gift_rules_t rb;
  assert_int_equal(miscache_gift_rules_get(mc, 4, &rb), MISCACHE_OK);
  assert_true(rb.auto_classify && !rb.zero_price_rule && rb.exclude_from_revenue);
  assert_string_equal(rb.keywords.items[0], "k");
  assert_string_equal(rb.master_products.items[0], "GM-1");
  assert_string_equal(rb.last_updated, r.last_updated);
  miscache_gift_rules_clear(&rb);
  miscache_gift_engine_t *e = NULL;
  assert_int_equal(miscache_gift_engine_new(&r, NULL, 0, &e), MISCACHE_OK);
  miscache_gift_rules_clear(&r);
  miscache_gift_product_t p = {
      .product_code = "P9", .product_name = "plain", .supply_price = 2500};
  miscache_gift_classification_t c, cb;
  assert_int_equal(miscache_gift_classify(mc, 4, e, &p, &c, NULL), MISCACHE_OK);
  raw = mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:classification:P9:4");
  char want[512];
  snprintf(want, sizeof want,
           "{\"product_type\":\"REVENUE\",\"gift_type\":null,"
           "\"classification_reason\":\"no gift rule matched\","
           "\"is_revenue\":true,\"revenue_impact\":2500.0,"
           "\"classified_at\":\"%s\"}",
           c.classified_at);
  assert_string_equal(raw, want);
  free(raw);
  miscache_source_t src;
  assert_int_equal(miscache_gift_classify(mc, 4, e, &p, &cb, &src), MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_CACHE);
  same(&c, &cb);
  assert_string_equal(cb.classified_at, c.classified_at);
  miscache_gift_classification_clear(&c);
  miscache_gift_classification_clear(&cb);
  miscache_gift_engine_free(e);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rules_and_master),
      cmocka_unit_test(test_single_classify),
      cmocka_unit_test(test_bulk_equals_single),
      cmocka_unit_test(test_pages_equal_bulk),
      cmocka_unit_test(test_analytics),
      cmocka_unit_test(test_every_field_round_trip),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

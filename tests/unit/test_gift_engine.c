/* The gift classification engine on a table of cases: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "miscache/miscache.h"

#define SAEUNPUM "\xec\x82\xac\xec\x9d\x80\xed\x92\x88" /* 사은품 */
#define JEUNGJEONG "\xec\xa6\x9d\xec\xa0\x95\xed\x92\x88" /* 증정품 */
#define MURYO "\xeb\xac\xb4\xeb\xa3\x8c"                 /* 무료 */
#define SAEMPEUL "\xec\x83\x98\xed\x94\x8c"              /* 샘플 */
#define CHEHEOM "\xec\xb2\xb4\xed\x97\x98"               /* 체험 */

static miscache_gift_engine_t *make_engine(bool zero, bool exclude) {
  miscache_gift_rules_t r = {0};
  r.zero_price_rule = zero;
  r.exclude_from_revenue = exclude;
  const char *kws[] = {SAEUNPUM, JEUNGJEONG, MURYO, SAEMPEUL, CHEHEOM, "GIFT"};
  for (int i = 0; i < 6; i++) miscache_strings_push(&r.keywords, kws[i]);
  miscache_strings_push(&r.master_products, "MP-1");
  miscache_gift_master_entry_t m[2] = {
      {.product_code = "GM-1", .is_active = true},
      {.product_code = "GM-2", .is_active = false}};
  miscache_gift_engine_t *e = NULL;
  assert_int_equal(miscache_gift_engine_new(&r, m, 2, &e), MISCACHE_OK);
  miscache_gift_rules_clear(&r);
  return e;
}

static void test_case_table(void **state) {
  (void)state;
  miscache_gift_engine_t *e = make_engine(true, true);
  static const struct {
    const char *code, *name;
    double price;
    const char *gift_type; /* NULL: revenue */
    const char *reason_has;
  } cases[] = {
      {"GM-1", "\xec\x9c\xa0\xeb\xaa\xa8\xec\xb0\xa8", 100000, "MASTER", "GM-1"},
      {"GM-2", "stroller", 5000, NULL, "no gift rule"}, /* inactive entry */
      {"MP-1", "x", 100, "MASTER", "MP-1"},             /* rules.master_products */
      {"GM-1", SAEUNPUM, 0, "MASTER", "master"},        /* master first */
      {"P1", "wipes", 0, "ZERO_PRICE", "0"},
      {"P2", "[" SAEUNPUM "] wipes", 3000, "KEYWORD", SAEUNPUM},
      {"P3", JEUNGJEONG " (" SAEMPEUL ")", 100, "KEYWORD", JEUNGJEONG},
      {"P4", MURYO "\xeb\xb0\xb0\xec\x86\xa1 stroller", 100, NULL, NULL}, /* 무료배송 */
      {"P5", SAEMPEUL "\xeb\x9f\xac set", 100, NULL, NULL},              /* 샘플러 */
      {"P6", "\xe3\x80\x90" CHEHEOM "\xe3\x80\x91 car seat", 100, "KEYWORD",
       CHEHEOM},                                                         /* 【체험】 */
      {"P7", "free gift set", 100, "KEYWORD", "GIFT"}, /* ASCII case-insensitive */
      {"P8", "giftbox", 100, NULL, NULL},
      {"P9", "stroller\xc2\xb7" MURYO, 100, "KEYWORD", MURYO}, /* · separator */
      {"P10", NULL, 100, NULL, NULL},
      {"P11", "", 100, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    miscache_gift_product_t p = {.product_code = cases[i].code,
                                 .product_name = cases[i].name,
                                 .supply_price = cases[i].price};
    miscache_gift_classification_t c;
    assert_int_equal(miscache_gift_engine_classify(e, &p, &c), MISCACHE_OK);
    bool gift = cases[i].gift_type != NULL;
    if (strcmp(c.product_type, gift ? "GIFT" : "REVENUE") != 0 ||
        (gift && strcmp(c.gift_type, cases[i].gift_type) != 0) ||
        (!gift && c.gift_type != NULL))
      fail_msg("case %zu (%s): got %s/%s (%s)", i, cases[i].code,
               c.product_type, c.gift_type ? c.gift_type : "-",
               c.classification_reason);
    if (cases[i].reason_has &&
        !strstr(c.classification_reason, cases[i].reason_has))
      fail_msg("case %zu: reason \"%s\"", i, c.classification_reason);
    /* exclude_from_revenue: a gift is no revenue */
    assert_int_equal(c.is_revenue, !gift);
    assert_true(c.revenue_impact == (gift ? 0 : cases[i].price));
    assert_non_null(c.classified_at);
    miscache_gift_classification_clear(&c);
  }
  miscache_gift_engine_free(e);
}

static void test_rule_switches(void **state) {
  (void)state;
  /* without exclude_from_revenue a gift still counts as revenue */
  miscache_gift_engine_t *e = make_engine(false, false);
  miscache_gift_product_t p = {
      .product_code = "P2", .product_name = SAEUNPUM, .supply_price = 3000};
  miscache_gift_classification_t c;
  assert_int_equal(miscache_gift_engine_classify(e, &p, &c), MISCACHE_OK);
  assert_string_equal(c.product_type, "GIFT");
  assert_true(c.is_revenue);
  assert_true(c.revenue_impact == 3000);
  miscache_gift_classification_clear(&c);
  /* without zero_price_rule a free item is revenue */
  miscache_gift_product_t z = {
      .product_code = "P1", .product_name = "wipes", .supply_price = 0};
  assert_int_equal(miscache_gift_engine_classify(e, &z, &c), MISCACHE_OK);
  assert_string_equal(c.product_type, "REVENUE");
  miscache_gift_classification_clear(&c);
  miscache_gift_engine_free(e);
  /* bad input */
  assert_int_equal(miscache_gift_engine_classify(NULL, &p, &c),
                   MISCACHE_ERR_INVALID);
  miscache_gift_rules_t r = {0};
  assert_int_equal(miscache_gift_engine_new(&r, NULL, 1, &e),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_gift_engine_new(&r, NULL, 0, &e), MISCACHE_OK);
  miscache_gift_product_t no_code = {
      .product_code = NULL, .product_name = "x", .supply_price = 1};
  assert_int_equal(miscache_gift_engine_classify(e, &no_code, &c),
                   MISCACHE_ERR_INVALID);
  miscache_gift_engine_free(e);
  miscache_gift_engine_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_case_table),
      cmocka_unit_test(test_rule_switches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

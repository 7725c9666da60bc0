/* A deterministic stand-in for the ERPia order API, shared by the examples:
 * page p of company c always holds the same order lines. */
#ifndef ERP_SIM_H
#define ERP_SIM_H

#include <stdint.h>
#include <stdio.h>

#include <miscache/miscache.h>

typedef struct {
  char order_id[24];
  char channel[16];
  char code[16];
  char name[96];
  double supply_price;
} erp_line_t;

static const char *const erp_channels[] = {"online", "offline", "coupang"};
static const struct {
  const char *name;
  double price;
} erp_catalog[] = {
    {"\xec\x9c\xa0\xeb\xaa\xa8\xec\xb0\xa8 REAN Lite", 289000},     /* 유모차 */
    {"\xec\xb9\xb4\xec\x8b\x9c\xed\x8a\xb8 NUNA Pipa", 459000},     /* 카시트 */
    {"[\xec\x82\xac\xec\x9d\x80\xed\x92\x88] \xeb\xac\xbc\xed\x8b\xb0\xec\x8a\x88", 3000}, /* [사은품] 물티슈 */
    {"\xec\xa6\x9d\xec\xa0\x95\xed\x92\x88 \xed\x8c\x8c\xec\x9a\xb0\xec\xb9\x98", 1500},   /* 증정품 파우치 */
    {"\xeb\xac\xb4\xeb\xa3\x8c\xeb\xb0\xb0\xec\x86\xa1 \xec\x9c\xa0\xeb\xaa\xa8\xec\xb0\xa8 JOY", 199000}, /* 무료배송 유모차 */
    {"\xec\x83\x98\xed\x94\x8c \xeb\xa1\x9c\xec\x85\x98", 0},      /* 샘플 로션 */
    {"\xec\x88\x98\xeb\x82\xa9\xed\x95\xa8 JOY", 39000},            /* 수납함 */
    {"\xed\x95\x98\xec\x9d\xb4\xec\xb2\x90\xec\x96\xb4 NUNA", 329000}, /* 하이체어 */
};
#define ERP_CATALOG_SIZE (sizeof erp_catalog / sizeof erp_catalog[0])

static uint32_t erp_rand(uint32_t *s) {
  *s = *s * 1664525u + 1013904223u;
  return *s >> 8;
}

/* Fills lines[0..n) for page (1-based) of company; returns n. */
static int erp_page(int64_t company, int page, int page_size,
                    erp_line_t *lines) {
  uint32_t s = (uint32_t)(company * 7919 + page * 104729);
  for (int i = 0; i < page_size; i++) {
    uint32_t item = erp_rand(&s) % 40; /* 40 product codes over 8 kinds */
    const char *name = erp_catalog[item % ERP_CATALOG_SIZE].name;
    snprintf(lines[i].order_id, sizeof lines[i].order_id, "O%lld-%d-%d",
             (long long)company, page, i / 2);
    snprintf(lines[i].channel, sizeof lines[i].channel, "%s",
             erp_channels[erp_rand(&s) % 3]);
    snprintf(lines[i].code, sizeof lines[i].code, "P%03u", item);
    snprintf(lines[i].name, sizeof lines[i].name, "%s", name);
    lines[i].supply_price = erp_catalog[item % ERP_CATALOG_SIZE].price;
  }
  return page_size;
}

/* The company's gift rules as the MIS database would give them. */
static miscache_status_t erp_load_rules(void *ud, int64_t company,
                                        miscache_gift_rules_t *out) {
  (void)ud;
  (void)company;
  out->auto_classify = true;
  out->zero_price_rule = true;
  out->exclude_from_revenue = true;
  const char *kw[] = {"\xec\x82\xac\xec\x9d\x80\xed\x92\x88", /* 사은품 */
                      "\xec\xa6\x9d\xec\xa0\x95\xed\x92\x88", /* 증정품 */
                      "\xeb\xac\xb4\xeb\xa3\x8c",             /* 무료 */
                      "\xec\x83\x98\xed\x94\x8c",             /* 샘플 */
                      "\xec\xb2\xb4\xed\x97\x98"};            /* 체험 */
  for (int i = 0; i < 5; i++)
    if (miscache_strings_push(&out->keywords, kw[i]) != MISCACHE_OK)
      return MISCACHE_ERR_NOMEM;
  return miscache_strings_push(&out->master_products, "P006");
}

/* The company's gift engine: rules through the cache (erp_load_rules on a
 * miss), compiled. Free *out with miscache_gift_engine_free. */
static miscache_status_t erp_engine(miscache_t *mc, int64_t company,
                                    miscache_gift_engine_t **out) {
  miscache_gift_rules_t rules;
  miscache_status_t st = miscache_gift_rules_get_or_load(
      mc, company, erp_load_rules, NULL, &rules, NULL);
  if (st == MISCACHE_OK) st = miscache_gift_engine_new(&rules, NULL, 0, out);
  miscache_gift_rules_clear(&rules);
  return st;
}

#endif

/*
 * gift_report: daily gift analytics of a company, computed from the
 * (simulated) ERP orders on the first call, then served from the cache.
 *
 *   gift_report [--company N] [--date YYYYMMDD] [--pages N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erp_sim.h"

typedef struct {
  int64_t company;
  int pages;
  miscache_gift_engine_t *engine;
} report_t;

/* Computes the analytics payload of docs/strategy.md from the day's orders. */
static miscache_status_t compute(void *ud, const char *key, json_t **out) {
  report_t *r = ud;
  printf("  computing %s from %d ERP pages\n", key, r->pages);
  json_t *products = json_object(), *channels = json_object();
  erp_line_t lines[30];
  int64_t orders = 0, with_gifts = 0;
  double with_sum = 0, without_sum = 0;
  for (int page = 1; page <= r->pages; page++) {
    erp_page(r->company, page, 30, lines);
    for (int o = 0; o < 30; o += 2) { /* two lines per order */
      bool gift = false;
      double amount = 0;
      for (int k = o; k < o + 2; k++) {
        miscache_gift_product_t p = {.product_code = lines[k].code,
                                     .product_name = lines[k].name,
                                     .supply_price = lines[k].supply_price};
        miscache_gift_classification_t c;
        if (miscache_gift_engine_classify(r->engine, &p, &c) != MISCACHE_OK)
          return MISCACHE_ERR_NOMEM;
        if (strcmp(c.product_type, "GIFT") == 0) {
          gift = true;
          json_t *e = json_object_get(products, lines[k].code);
          if (!e) {
            e = json_pack("{s:i,s:s}", "count", 0, "name", lines[k].name);
            json_object_set_new(products, lines[k].code, e);
          }
          json_object_set_new(e, "count",
                              json_integer(json_integer_value(
                                               json_object_get(e, "count")) + 1));
        }
        amount += c.revenue_impact;
        miscache_gift_classification_clear(&c);
      }
      orders++;
      with_gifts += gift;
      if (gift)
        with_sum += amount;
      else
        without_sum += amount;
      json_t *ch = json_object_get(channels, lines[o].channel);
      if (!ch) {
        ch = json_pack("{s:i,s:i}", "orders", 0, "gifts", 0);
        json_object_set_new(channels, lines[o].channel, ch);
      }
      json_object_set_new(ch, "orders", json_integer(json_integer_value(
                                            json_object_get(ch, "orders")) + 1));
      json_object_set_new(ch, "gifts", json_integer(json_integer_value(
                                           json_object_get(ch, "gifts")) + gift));
    }
  }
  double avg_with = with_gifts ? with_sum / (double)with_gifts : 0;
  double avg_without =
      orders - with_gifts ? without_sum / (double)(orders - with_gifts) : 0;
  *out = json_pack("{s:I,s:I,s:f,s:o,s:o,s:{s:f,s:f,s:f}}", "total_orders",
                   (json_int_t)orders, "orders_with_gifts",
                   (json_int_t)with_gifts, "gift_attachment_rate",
                   orders ? 100.0 * (double)with_gifts / (double)orders : 0.0,
                   "gift_products", products, "gift_by_channel", channels,
                   "revenue_impact", "avg_order_with_gifts", avg_with,
                   "avg_order_without_gifts", avg_without, "impact_rate",
                   avg_without ? 100.0 * (avg_with - avg_without) / avg_without
                               : 0.0);
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

int main(int argc, char **argv) {
  report_t r = {.company = 1, .pages = 100};
  const char *date = "20261124";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--company") == 0) r.company = atoll(argv[i + 1]);
    else if (strcmp(argv[i], "--date") == 0) date = argv[i + 1];
    else if (strcmp(argv[i], "--pages") == 0) r.pages = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: %s [--company N] [--date YYYYMMDD] [--pages N]\n",
              argv[0]);
      return 2;
    }
  }
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  st = erp_engine(mc, r.company, &r.engine);
  for (int round = 1; st == MISCACHE_OK && round <= 2; round++) {
    json_t *a = NULL;
    miscache_source_t src;
    st = miscache_gift_analytics_get_or_load(mc, r.company, date, compute, &r,
                                             &a, &src);
    if (st != MISCACHE_OK) break;
    printf("gift analytics, company %lld, %s (read %d: %s)\n",
           (long long)r.company, date, round,
           src == MISCACHE_SOURCE_CACHE ? "from cache" : "computed");
    printf("  %-12s %lld\n  %-12s %lld\n  %-12s %.1f %%\n", "orders",
           (long long)json_integer_value(json_object_get(a, "total_orders")),
           "with gifts",
           (long long)json_integer_value(json_object_get(a, "orders_with_gifts")),
           "attachment",
           json_number_value(json_object_get(a, "gift_attachment_rate")));
    const char *code;
    json_t *e;
    json_object_foreach(json_object_get(a, "gift_products"), code, e)
      printf("  gift %-6s x%-4lld %s\n", code,
             (long long)json_integer_value(json_object_get(e, "count")),
             json_string_value(json_object_get(e, "name")));
    json_decref(a);
  }
  if (st != MISCACHE_OK)
    fprintf(stderr, "gift report: %s (%s)\n", miscache_strerror(st),
            miscache_errmsg(mc));
  miscache_gift_engine_free(r.engine);
  miscache_free(mc);
  return st == MISCACHE_OK ? 0 : 1;
}

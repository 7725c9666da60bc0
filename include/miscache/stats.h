/*
 * libmiscache — statistics in db "cache":
 *   stats:daily_sales:{YYYYMMDD}       typed, TTL class statistics (12 h)
 *   stats:monthly_revenue:{YYYYMM}     JSON, TTL class statistics (12 h)
 *   stats:serial_count:{brand}:{YYYYMMDD}  integer, TTL class serial_count (24 h)
 * Dates are checked: 8 (or 6) digits with a month 01..12 and a day 01..31,
 * else ERR_KEY. Thread rule: one thread at a time per handle.
 */
#ifndef MISCACHE_STATS_H
#define MISCACHE_STATS_H

#include <stdint.h>

#include <jansson.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The gift figures of a day's sales (miscache_daily_sales_t.gift_stats). */
typedef struct miscache_gift_stats {
  int64_t gift_order_count;
  double gift_attachment_rate; /* percent */
  double total_gift_cost;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_stats_gift_t;
typedef miscache_stats_gift_t miscache_gift_stats_t; /* its name before 0.4 */

/* Daily sales. brand_stats and channel_stats are open-ended JSON (owned
 * references, may be NULL). Clear with miscache_stats_daily_sales_clear(). */
typedef struct miscache_daily_sales {
  double total_amount;
  int64_t order_count;
  json_t *brand_stats;
  json_t *channel_stats;
  miscache_stats_gift_t gift_stats;
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_daily_sales_t;

MISCACHE_EXPORT miscache_status_t
miscache_stats_daily_sales_set(miscache_t *mc, const char *yyyymmdd,
                               const miscache_daily_sales_t *s);
/* OK (clear *out after use), MISS, ERR_DECODE. */
MISCACHE_EXPORT miscache_status_t
miscache_stats_daily_sales_get(miscache_t *mc, const char *yyyymmdd,
                               miscache_daily_sales_t *out);
MISCACHE_EXPORT void miscache_stats_daily_sales_clear(miscache_daily_sales_t *s);
/* Its name before 0.4, kept: the same function. */
MISCACHE_EXPORT void miscache_daily_sales_clear(miscache_daily_sales_t *s);

/* Monthly revenue: any JSON value (borrowed / new reference). */
MISCACHE_EXPORT miscache_status_t
miscache_stats_monthly_revenue_set(miscache_t *mc, const char *yyyymm,
                                   const json_t *value);
MISCACHE_EXPORT miscache_status_t
miscache_stats_monthly_revenue_get(miscache_t *mc, const char *yyyymm,
                                   json_t **out);

/* Atomically add by (may be negative) to the brand's serial count of the
 * day; the first increment also sets the 24 h TTL (later ones keep it).
 * *value (optional) gets the new count. */
MISCACHE_EXPORT miscache_status_t
miscache_stats_serial_incr(miscache_t *mc, const char *brand,
                           const char *yyyymmdd, int64_t by, int64_t *value);
/* OK with *value, MISS, ERR_DECODE (not an integer). */
MISCACHE_EXPORT miscache_status_t
miscache_stats_serial_get(miscache_t *mc, const char *brand,
                          const char *yyyymmdd, int64_t *value);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_STATS_H */

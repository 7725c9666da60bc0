/*
 * libmiscache — invalidation helpers for the events of docs/strategy.md. Each
 * removes exactly the keys below (exact keys with UNLINK, patterns with
 * SCAN + UNLINK, delimited so company 1 never touches 10 or 11) and returns
 * how many it removed in *removed (optional; on failure, what was removed
 * before it).
 *
 *   permissions(user)  permissions:user:{u}, session:user:{u}
 *   batch_config(c)    batch:config:{c}, batch:status:{c}
 *   gift_rules(c)      gift:rules:{c}, gift:classification:*:{c}, gift:analytics:{c}:*
 *   brand(b)           master:brands*, stats:serial_count:{b}:*, gift:analytics:*
 *   company(c)         batch:config|status:{c}, batch:history:{c}:*,
 *                      gift:rules|master:{c}, gift:classification:*:{c},
 *                      gift:analytics:{c}:*   (not batch:lock:{c}: a running
 *                      batch keeps its lock; stats keys carry no company)
 *   daily(day)         stats:daily_sales:{day}, gift:analytics:*:{day}
 *                      (call it at 00:00 with yesterday's date)
 *   post_batch(cs, day) for each c: batch:status:{c}, gift:analytics:{c}:{day}
 * Thread rule: one thread at a time per handle.
 */
#ifndef MISCACHE_EVENTS_H
#define MISCACHE_EVENTS_H

#include <stdint.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Dry run: while fn is set on the handle, the helpers below delete nothing
 * and call fn(userdata, db, key) for each key they would remove (keys as
 * they exist now; the count in *removed is theirs). NULL turns it off.
 * fn returns 0 to go on. */
typedef int (*miscache_key_visit_fn)(void *userdata, miscache_db_t db,
                                     const char *key);
MISCACHE_EXPORT miscache_status_t
miscache_invalidate_dry_run(miscache_t *mc, miscache_key_visit_fn fn,
                            void *userdata);

MISCACHE_EXPORT miscache_status_t
miscache_invalidate_permissions(miscache_t *mc, int64_t user_id,
                                uint64_t *removed);
MISCACHE_EXPORT miscache_status_t
miscache_invalidate_batch_config(miscache_t *mc, int64_t company,
                                 uint64_t *removed);
MISCACHE_EXPORT miscache_status_t
miscache_invalidate_gift_rules(miscache_t *mc, int64_t company,
                               uint64_t *removed);
MISCACHE_EXPORT miscache_status_t
miscache_invalidate_brand(miscache_t *mc, const char *brand, uint64_t *removed);
MISCACHE_EXPORT miscache_status_t
miscache_invalidate_company(miscache_t *mc, int64_t company, uint64_t *removed);
MISCACHE_EXPORT miscache_status_t
miscache_invalidate_daily(miscache_t *mc, const char *yyyymmdd,
                          uint64_t *removed);
/* Deletes each company's batch status and the day's gift analytics. When
 * the loaders are at hand, miscache_refresh_post_batch() (patterns.h)
 * replaces them in place instead, so readers never miss. */
MISCACHE_EXPORT miscache_status_t
miscache_invalidate_post_batch(miscache_t *mc, const int64_t *companies,
                               size_t n, const char *yyyymmdd,
                               uint64_t *removed);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_EVENTS_H */

/*
 * The public invalidation calls: by pattern (kept pending when its outcome
 * is unknown), scans, and the near-cache flush of every process. Each
 * replays the pending invalidations once, then runs erase.c's step.
 */
#include <string.h>

#include "ops/ops.h"

miscache_status_t miscache_invalidate(miscache_t *mc, miscache_db_t db,
                                      const char *pattern, uint64_t *deleted) {
  if (deleted) *deleted = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache__replay_pending(mc);
  miscache_status_t st = miscache__invalidate_now(mc, db, pattern, deleted);
  return st == MISCACHE_OK ? st : miscache__pend(mc, db, pattern, true, st);
}

miscache_status_t miscache_scan(miscache_t *mc, miscache_db_t db,
                                const char *pattern, miscache_scan_fn fn,
                                void *userdata, uint64_t *count) {
  if (count) *count = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!fn) {
    miscache__set_err(mc, "miscache_scan: fn is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache__replay_pending(mc);
  return miscache__scan_now(mc, db, pattern, fn, userdata, count);
}

miscache_status_t miscache_near_flush_all(miscache_t *mc, uint64_t *receivers) {
  if (receivers) *receivers = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache__near_flush_local(mc); /* this process at once */
  const char *argv[3] = {"PUBLISH", MISCACHE_NEAR_FLUSH_CHANNEL, "all"};
  size_t lens[3] = {7, strlen(MISCACHE_NEAR_FLUSH_CHANNEL), 3};
  miscache__cmd_t cmd = {3, argv, lens};
  miscache__reply_t *r = NULL;
  miscache_status_t st =
      miscache__run(mc, MISCACHE__NO_DB, 1, &cmd, &r, 0);
  if (st != MISCACHE_OK) return st;
  if (!miscache__reply_is(r, MISCACHE__R_INTEGER))
    st = miscache__unexpected(mc, MISCACHE_DB_CACHE, NULL, r, "PUBLISH");
  else if (receivers)
    *receivers = (uint64_t)miscache__reply_int(r);
  miscache__reply_free(r);
  return st;
}

/* Invalidation helpers: each event is a table of steps run by one loop. */
#include <stdio.h>
#include <string.h>

#include "payload.h"

#define ANY NULL /* a "*" segment */

typedef struct {
  miscache_db_t db;
  const char *prefix;
  int nids;
  const char *ids[2]; /* ANY makes the step a pattern */
  bool raw;           /* prefix is a ready pattern (no ids) */
} step_t;

miscache_status_t miscache_invalidate_dry_run(miscache_t *mc,
                                              miscache_key_visit_fn fn,
                                              void *userdata) {
  if (!mc) return MISCACHE_ERR_INVALID;
  mc->dry_run = fn;
  mc->dry_run_userdata = userdata;
  return MISCACHE_OK;
}

typedef struct {
  miscache_t *mc;
  miscache_db_t db;
  char key[MISCACHE_KEY_BUFSIZE];
} visit_t;

static int visit_scanned(void *ud, const char *key, size_t len) {
  visit_t *v = ud;
  snprintf(v->key, sizeof v->key, "%.*s", (int)len, key);
  return v->mc->dry_run(v->mc->dry_run_userdata, v->db, v->key);
}

/* What a step would remove, told to the dry-run visitor. */
static miscache_status_t dry_step(miscache_t *mc, miscache_db_t db,
                                  const char *key, bool pattern,
                                  uint64_t *n) {
  visit_t v = {mc, db, ""};
  if (pattern) return miscache_scan(mc, db, key, visit_scanned, &v, n);
  bool exists = false;
  miscache_status_t st = miscache_exists(mc, db, key, &exists);
  *n = exists;
  if (st == MISCACHE_OK && exists) mc->dry_run(mc->dry_run_userdata, db, key);
  return st;
}

#define MAX_STEPS 8

/* Builds every key of the event first, so a bad id deletes nothing; then
 * runs the steps. When a step fails with an unknown outcome, it and every
 * step after it are kept pending (see miscache_pending_invalidations), so
 * no part of an event is lost. */
static miscache_status_t run_steps(miscache_t *mc, const step_t *steps,
                                   size_t n, miscache_status_t failed_before,
                                   uint64_t *removed) {
  if (removed) *removed = 0;
  char keys[MAX_STEPS][MISCACHE_KEY_BUFSIZE];
  bool pattern[MAX_STEPS];
  for (size_t i = 0; i < n; i++) {
    const step_t *s = &steps[i];
    miscache_status_t st = MISCACHE_OK;
    pattern[i] = s->raw;
    for (int k = 0; k < s->nids; k++)
      pattern[i] = pattern[i] || s->ids[k] == ANY;
    if (s->raw)
      snprintf(keys[i], sizeof keys[i], "%s", s->prefix);
    else
      st = pattern[i]
               ? miscache_pattern_build(keys[i], sizeof keys[i], s->prefix,
                                        (size_t)s->nids, s->ids, NULL)
               : miscache_key_build(keys[i], sizeof keys[i], s->prefix,
                                    (size_t)s->nids, s->ids, NULL);
    if (st != MISCACHE_OK) {
      miscache__set_err(mc, "invalidation: bad id for %s (nothing deleted)",
                        s->prefix);
      return st;
    }
  }
  uint64_t total = 0;
  miscache_status_t st = failed_before; /* not OK: only keep them pending */
  size_t i = 0;
  for (; i < n && st == MISCACHE_OK; i++) {
    uint64_t n_del = 0;
    if (mc->dry_run) {
      st = dry_step(mc, steps[i].db, keys[i], pattern[i], &n_del);
    } else if (pattern[i]) {
      st = miscache_invalidate(mc, steps[i].db, keys[i], &n_del);
    } else {
      bool gone = false;
      st = miscache_delete(mc, steps[i].db, keys[i], &gone);
      n_del = gone;
    }
    total += n_del;
  }
  /* the failed step is pending already; the ones never tried join it */
  for (miscache_status_t first = st; i < n && !mc->dry_run; i++) {
    miscache_status_t ps =
        miscache__pend(mc, steps[i].db, keys[i], pattern[i], first);
    if (ps != first) st = ps;
  }
  if (removed) *removed = total;
  return st;
}

#define RUN(mc, removed, ...)                                                  \
  do {                                                                         \
    if (removed) *removed = 0;                                                 \
    if (!mc) return MISCACHE_ERR_INVALID;                                      \
    const step_t steps_[] = {__VA_ARGS__};                                     \
    return run_steps(mc, steps_, sizeof steps_ / sizeof steps_[0],           \
                     MISCACHE_OK, removed);                                    \
  } while (0)

#define NUM(var, v)                                                            \
  char var[24];                                                                \
  snprintf(var, sizeof var, "%lld", (long long)(v))

miscache_status_t miscache_invalidate_permissions(miscache_t *mc,
                                                  int64_t user_id,
                                                  uint64_t *removed) {
  NUM(u, user_id);
  RUN(mc, removed, {MISCACHE_DB_CACHE, "permissions:user", 1, {u, NULL}, false},
      {MISCACHE_DB_SESSION, "session:user", 1, {u, NULL}, false});
}

miscache_status_t miscache_invalidate_batch_config(miscache_t *mc,
                                                   int64_t company,
                                                   uint64_t *removed) {
  NUM(c, company);
  RUN(mc, removed, {MISCACHE_DB_BATCH, "batch:config", 1, {c, NULL}, false},
      {MISCACHE_DB_BATCH, "batch:status", 1, {c, NULL}, false});
}

miscache_status_t miscache_invalidate_gift_rules(miscache_t *mc,
                                                 int64_t company,
                                                 uint64_t *removed) {
  NUM(c, company);
  RUN(mc, removed, {MISCACHE_DB_GIFT, "gift:rules", 1, {c, NULL}, false},
      {MISCACHE_DB_GIFT, "gift:classification", 2, {ANY, c}, false},
      {MISCACHE_DB_GIFT, "gift:analytics", 2, {c, ANY}, false});
}

miscache_status_t miscache_invalidate_brand(miscache_t *mc, const char *brand,
                                            uint64_t *removed) {
  if (removed) *removed = 0;
  if (!brand) {
    if (mc) miscache__set_err(mc, "brand is NULL");
    return MISCACHE_ERR_INVALID;
  }
  RUN(mc, removed, {MISCACHE_DB_CACHE, "master:brands*", 0, {NULL, NULL}, true},
      {MISCACHE_DB_CACHE, "stats:serial_count", 2, {brand, ANY}, false},
      {MISCACHE_DB_GIFT, "gift:analytics:*", 0, {NULL, NULL}, true});
}

miscache_status_t miscache_invalidate_company(miscache_t *mc, int64_t company,
                                              uint64_t *removed) {
  NUM(c, company);
  RUN(mc, removed, {MISCACHE_DB_BATCH, "batch:config", 1, {c, NULL}, false},
      {MISCACHE_DB_BATCH, "batch:status", 1, {c, NULL}, false},
      {MISCACHE_DB_BATCH, "batch:history", 2, {c, ANY}, false},
      {MISCACHE_DB_GIFT, "gift:rules", 1, {c, NULL}, false},
      {MISCACHE_DB_GIFT, "gift:master", 1, {c, NULL}, false},
      {MISCACHE_DB_GIFT, "gift:classification", 2, {ANY, c}, false},
      {MISCACHE_DB_GIFT, "gift:analytics", 2, {c, ANY}, false});
}

miscache_status_t miscache_invalidate_daily(miscache_t *mc,
                                            const char *yyyymmdd,
                                            uint64_t *removed) {
  if (removed) *removed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache_status_t st = miscache__check_date(mc, yyyymmdd, 8);
  if (st != MISCACHE_OK) return st;
  RUN(mc, removed,
      {MISCACHE_DB_CACHE, "stats:daily_sales", 1, {yyyymmdd, NULL}, false},
      {MISCACHE_DB_GIFT, "gift:analytics", 2, {ANY, yyyymmdd}, false});
}

miscache_status_t miscache_invalidate_post_batch(miscache_t *mc,
                                                 const int64_t *companies,
                                                 size_t n,
                                                 const char *yyyymmdd,
                                                 uint64_t *removed) {
  if (removed) *removed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (n && !companies) {
    miscache__set_err(mc, "companies is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache_status_t st = miscache__check_date(mc, yyyymmdd, 8);
  uint64_t total = 0;
  /* after a failure the remaining companies are kept pending, not tried */
  for (size_t i = 0; i < n && st != MISCACHE_ERR_KEY &&
                     st != MISCACHE_ERR_INVALID && st != MISCACHE_ERR_NOMEM;
       i++) {
    NUM(c, companies[i]);
    const step_t steps[] = {
        {MISCACHE_DB_BATCH, "batch:status", 1, {c, NULL}, false},
        {MISCACHE_DB_GIFT, "gift:analytics", 2, {c, yyyymmdd}, false}};
    uint64_t one = 0;
    miscache_status_t one_st = run_steps(mc, steps, 2, st, &one);
    if (st == MISCACHE_OK) st = one_st;
    total += one;
  }
  if (removed) *removed = total;
  return st;
}

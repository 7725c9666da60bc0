/* Invalidation helpers: each event is a table of steps run by one loop. */
#include <stdio.h>
#include <string.h>

#include "domain/domain.h"

#define ANY NULL /* a "*" segment */

typedef struct {
  miscache_key_family_id_t family; /* prefix, id count and db */
  const char *ids[2];              /* ANY makes the step a pattern */
  bool prefix_glob;                /* the pattern "<prefix>*" */
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
  miscache_db_t db[MAX_STEPS];
  for (size_t i = 0; i < n; i++) {
    const step_t *s = &steps[i];
    const miscache_key_family_t *kf = miscache_key_family(s->family);
    miscache_status_t st = MISCACHE_OK;
    db[i] = kf->db;
    pattern[i] = s->prefix_glob;
    for (size_t k = 0; k < kf->nids; k++)
      pattern[i] = pattern[i] || s->ids[k] == ANY;
    if (s->prefix_glob)
      snprintf(keys[i], sizeof keys[i], "%s*", kf->prefix);
    else
      st = miscache__kf_build(mc, s->family, keys[i], pattern[i], s->ids);
    if (st != MISCACHE_OK) {
      char why[MISCACHE_ERRMSG_SIZE];
      snprintf(why, sizeof why, "%s", mc->err);
      miscache__set_err(mc, "invalidation: %s (nothing deleted)", why);
      return st;
    }
  }
  uint64_t total = 0;
  miscache_status_t st = failed_before; /* not OK: only keep them pending */
  size_t i = 0;
  for (; i < n && st == MISCACHE_OK; i++) {
    uint64_t n_del = 0;
    if (mc->dry_run) {
      st = dry_step(mc, db[i], keys[i], pattern[i], &n_del);
    } else if (pattern[i]) {
      st = miscache_invalidate(mc, db[i], keys[i], &n_del);
    } else {
      bool gone = false;
      st = miscache_delete(mc, db[i], keys[i], &gone);
      n_del = gone;
    }
    total += n_del;
  }
  /* the failed step is pending already; the ones never tried join it */
  for (miscache_status_t first = st; i < n && !mc->dry_run; i++) {
    miscache_status_t ps =
        miscache__pend(mc, db[i], keys[i], pattern[i], first);
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
  RUN(mc, removed, {MISCACHE_KF_PERMISSIONS, {u, NULL}, false},
      {MISCACHE_KF_SESSION, {u, NULL}, false});
}

miscache_status_t miscache_invalidate_batch_config(miscache_t *mc,
                                                   int64_t company,
                                                   uint64_t *removed) {
  NUM(c, company);
  RUN(mc, removed, {MISCACHE_KF_BATCH_CONFIG, {c, NULL}, false},
      {MISCACHE_KF_BATCH_STATUS, {c, NULL}, false});
}

miscache_status_t miscache_invalidate_gift_rules(miscache_t *mc,
                                                 int64_t company,
                                                 uint64_t *removed) {
  NUM(c, company);
  RUN(mc, removed, {MISCACHE_KF_GIFT_RULES, {c, NULL}, false},
      {MISCACHE_KF_GIFT_CLASSIFICATION, {ANY, c}, false},
      {MISCACHE_KF_GIFT_ANALYTICS, {c, ANY}, false});
}

miscache_status_t miscache_invalidate_brand(miscache_t *mc, const char *brand,
                                            uint64_t *removed) {
  if (removed) *removed = 0;
  if (!brand) {
    if (mc) miscache__set_err(mc, "brand is NULL");
    return MISCACHE_ERR_INVALID;
  }
  RUN(mc, removed, {MISCACHE_KF_MASTER_BRANDS, {NULL, NULL}, true},
      {MISCACHE_KF_SERIAL_COUNT, {brand, ANY}, false},
      {MISCACHE_KF_GIFT_ANALYTICS, {ANY, ANY}, false});
}

miscache_status_t miscache_invalidate_company(miscache_t *mc, int64_t company,
                                              uint64_t *removed) {
  NUM(c, company);
  RUN(mc, removed, {MISCACHE_KF_BATCH_CONFIG, {c, NULL}, false},
      {MISCACHE_KF_BATCH_STATUS, {c, NULL}, false},
      {MISCACHE_KF_BATCH_HISTORY, {c, ANY}, false},
      {MISCACHE_KF_GIFT_RULES, {c, NULL}, false},
      {MISCACHE_KF_GIFT_MASTER, {c, NULL}, false},
      {MISCACHE_KF_GIFT_CLASSIFICATION, {ANY, c}, false},
      {MISCACHE_KF_GIFT_ANALYTICS, {c, ANY}, false});
}

miscache_status_t miscache_invalidate_daily(miscache_t *mc,
                                            const char *yyyymmdd,
                                            uint64_t *removed) {
  if (removed) *removed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache_status_t st = miscache__check_date(mc, yyyymmdd, 8);
  if (st != MISCACHE_OK) return st;
  RUN(mc, removed,
      {MISCACHE_KF_DAILY_SALES, {yyyymmdd, NULL}, false},
      {MISCACHE_KF_GIFT_ANALYTICS, {ANY, yyyymmdd}, false});
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
        {MISCACHE_KF_BATCH_STATUS, {c, NULL}, false},
        {MISCACHE_KF_GIFT_ANALYTICS, {c, yyyymmdd}, false}};
    uint64_t one = 0;
    miscache_status_t one_st = run_steps(mc, steps, 2, st, &one);
    if (st == MISCACHE_OK) st = one_st;
    total += one;
  }
  if (removed) *removed = total;
  return st;
}

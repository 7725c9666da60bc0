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
#define MAX_STEPS MISCACHE__EVENT_MAX_STEPS

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

/* Every event as data (the keyspace table prints it): a step's id is an
 * argument of the event (A0, A1) or ANY_ID, a "*" segment. */
#define A0 0
#define A1 1
#define ANY_ID -1
#define STEP(fam, i0, i1) {MISCACHE_KF_##fam, {i0, i1}, false}
const miscache__inval_event_t miscache__events[MISCACHE__EVENT_COUNT] = {
    {"permissions", "USER_ID", 2,
     {STEP(PERMISSIONS, A0, 0), STEP(SESSION, A0, 0)}},
    {"batch-config", "COMPANY", 2,
     {STEP(BATCH_CONFIG, A0, 0), STEP(BATCH_STATUS, A0, 0)}},
    {"gift-rules", "COMPANY", 3,
     {STEP(GIFT_RULES, A0, 0), STEP(GIFT_CLASSIFICATION, ANY_ID, A0),
      STEP(GIFT_ANALYTICS, A0, ANY_ID)}},
    {"brand", "BRAND", 3,
     {{MISCACHE_KF_MASTER_BRANDS, {0, 0}, true},
      STEP(SERIAL_COUNT, A0, ANY_ID), STEP(GIFT_ANALYTICS, ANY_ID, ANY_ID)}},
    {"company", "COMPANY", 7,
     {STEP(BATCH_CONFIG, A0, 0), STEP(BATCH_STATUS, A0, 0),
      STEP(BATCH_HISTORY, A0, ANY_ID), STEP(GIFT_RULES, A0, 0),
      STEP(GIFT_MASTER, A0, 0), STEP(GIFT_CLASSIFICATION, ANY_ID, A0),
      STEP(GIFT_ANALYTICS, A0, ANY_ID)}},
    {"daily", "YYYYMMDD", 2,
     {STEP(DAILY_SALES, A0, 0), STEP(GIFT_ANALYTICS, ANY_ID, A0)}},
    /* per company: "COMPANY..." then the day */
    {"post-batch", "COMPANY... YYYYMMDD", 2,
     {STEP(BATCH_STATUS, A0, 0), STEP(GIFT_ANALYTICS, A0, A1)}},
};
#undef STEP

/* The steps of event e with its arguments put in. */
static size_t event_steps(const miscache__inval_event_t *e, const char *const args[],
                          step_t out[MAX_STEPS]) {
  for (size_t i = 0; i < e->nsteps; i++) {
    const miscache__event_step_t *t = &e->steps[i];
    size_t nids = miscache_key_family(t->family)->nids;
    out[i].family = t->family;
    out[i].prefix_glob = t->prefix_glob;
    for (size_t k = 0; k < 2; k++)
      out[i].ids[k] = k >= nids || t->prefix_glob ? NULL
                      : t->ids[k] == ANY_ID      ? ANY
                                                 : args[t->ids[k]];
  }
  return e->nsteps;
}

static miscache_status_t run_event(miscache_t *mc, miscache__event_id_t ev,
                                   const char *const args[],
                                   miscache_status_t failed_before,
                                   uint64_t *removed) {
  step_t steps[MAX_STEPS];
  size_t n = event_steps(&miscache__events[ev], args, steps);
  return run_steps(mc, steps, n, failed_before, removed);
}

#define NUM(var, v)                                                            \
  char var[24];                                                                \
  snprintf(var, sizeof var, "%lld", (long long)(v))

/* An event of one integer argument. */
static miscache_status_t run_int(miscache_t *mc, miscache__event_id_t ev,
                                 int64_t id, uint64_t *removed) {
  if (removed) *removed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  NUM(a, id);
  const char *const args[] = {a};
  return run_event(mc, ev, args, MISCACHE_OK, removed);
}

miscache_status_t miscache_invalidate_permissions(miscache_t *mc,
                                                  int64_t user_id,
                                                  uint64_t *removed) {
  return run_int(mc, MISCACHE__EV_PERMISSIONS, user_id, removed);
}

miscache_status_t miscache_invalidate_batch_config(miscache_t *mc,
                                                   int64_t company,
                                                   uint64_t *removed) {
  return run_int(mc, MISCACHE__EV_BATCH_CONFIG, company, removed);
}

miscache_status_t miscache_invalidate_gift_rules(miscache_t *mc,
                                                 int64_t company,
                                                 uint64_t *removed) {
  return run_int(mc, MISCACHE__EV_GIFT_RULES, company, removed);
}

miscache_status_t miscache_invalidate_company(miscache_t *mc, int64_t company,
                                              uint64_t *removed) {
  return run_int(mc, MISCACHE__EV_COMPANY, company, removed);
}

miscache_status_t miscache_invalidate_brand(miscache_t *mc, const char *brand,
                                            uint64_t *removed) {
  if (removed) *removed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!brand) {
    miscache__set_err(mc, "brand is NULL");
    return MISCACHE_ERR_INVALID;
  }
  const char *const args[] = {brand};
  return run_event(mc, MISCACHE__EV_BRAND, args, MISCACHE_OK, removed);
}

miscache_status_t miscache_invalidate_daily(miscache_t *mc,
                                            const char *yyyymmdd,
                                            uint64_t *removed) {
  if (removed) *removed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache_status_t st = miscache__check_date(mc, yyyymmdd, 8);
  if (st != MISCACHE_OK) return st;
  const char *const args[] = {yyyymmdd};
  return run_event(mc, MISCACHE__EV_DAILY, args, MISCACHE_OK, removed);
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
    const char *const args[] = {c, yyyymmdd};
    uint64_t one = 0;
    miscache_status_t one_st =
        run_event(mc, MISCACHE__EV_POST_BATCH, args, st, &one);
    if (st == MISCACHE_OK) st = one_st;
    total += one;
  }
  if (removed) *removed = total;
  return st;
}

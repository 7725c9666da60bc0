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

static miscache_status_t run_steps(miscache_t *mc, const step_t *steps,
                                   size_t n, uint64_t *removed) {
  uint64_t total = 0;
  miscache_status_t st = MISCACHE_OK;
  for (size_t i = 0; i < n && st == MISCACHE_OK; i++) {
    const step_t *s = &steps[i];
    bool pattern = s->raw;
    for (int k = 0; k < s->nids; k++) pattern = pattern || s->ids[k] == ANY;
    char buf[MISCACHE_KEY_BUFSIZE];
    if (s->raw)
      snprintf(buf, sizeof buf, "%s", s->prefix);
    else
      st = pattern ? miscache_pattern_build(buf, sizeof buf, s->prefix,
                                            (size_t)s->nids, s->ids, NULL)
                   : miscache_key_build(buf, sizeof buf, s->prefix,
                                        (size_t)s->nids, s->ids, NULL);
    if (st != MISCACHE_OK) {
      miscache__set_err(mc, "invalidation: bad id for %s", s->prefix);
      break;
    }
    uint64_t n_del = 0;
    if (mc->dry_run) {
      st = dry_step(mc, s->db, buf, pattern, &n_del);
    } else if (pattern) {
      st = miscache_invalidate(mc, s->db, buf, &n_del);
    } else {
      bool gone = false;
      st = miscache_delete(mc, s->db, buf, &gone);
      n_del = gone;
    }
    total += n_del;
  }
  if (removed) *removed = total;
  return st;
}

#define RUN(mc, removed, ...)                                                  \
  do {                                                                         \
    if (removed) *removed = 0;                                                 \
    if (!mc) return MISCACHE_ERR_INVALID;                                      \
    const step_t steps_[] = {__VA_ARGS__};                                     \
    return run_steps(mc, steps_, sizeof steps_ / sizeof steps_[0], removed);   \
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
  for (size_t i = 0; i < n && st == MISCACHE_OK; i++) {
    NUM(c, companies[i]);
    const step_t steps[] = {
        {MISCACHE_DB_BATCH, "batch:status", 1, {c, NULL}, false},
        {MISCACHE_DB_GIFT, "gift:analytics", 2, {c, yyyymmdd}, false}};
    uint64_t one = 0;
    st = run_steps(mc, steps, 2, &one);
    total += one;
  }
  if (removed) *removed = total;
  return st;
}

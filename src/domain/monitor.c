/* Monitoring: INFO figures per logical db, company cache health. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

/* The integer after "name:" in an INFO text, or 0. */
static int64_t info_int(const char *info, const char *name) {
  size_t n = strlen(name);
  for (const char *p = info; (p = strstr(p, name)) != NULL; p += n)
    if ((p == info || p[-1] == '\n') && p[n] == ':')
      return strtoll(p + n + 1, NULL, 10);
  return 0;
}

/* Cluster: a key counted under the logical db of its key family (the
 * longest family prefix it starts with); keys of no family under cache. */
static int count_by_family(void *ud, const char *key, size_t len) {
  int64_t *keys = ud;
  size_t best = 0;
  miscache_db_t db = MISCACHE_DB_CACHE;
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++) {
    const miscache_key_family_t *k = miscache_key_family(f);
    size_t pl = strlen(k->prefix);
    if (pl > best && pl < len && memcmp(key, k->prefix, pl) == 0 &&
        key[pl] == ':') {
      best = pl;
      db = k->db;
    }
  }
  keys[db]++;
  return 0;
}

/* One INFO (memory, stats and, with keyspace, keyspace) on the node flags
 * name; memory, hits and misses are added to out. *rr keeps the reply
 * (the caller frees it). */
static miscache_status_t info_add(miscache_t *mc, unsigned flags,
                                  bool keyspace, miscache_server_info_t *out,
                                  miscache__reply_t **rr) {
  const char *argv[4] = {"INFO", "memory", "stats", "keyspace"};
  size_t lens[4] = {4, 6, 5, 8};
  miscache__cmd_t cmd = {keyspace ? 4 : 3, argv, lens};
  miscache__reply_t *r = NULL;
  miscache_status_t st = miscache__run(mc, MISCACHE__NO_DB, 1, &cmd, &r,
                                            MISCACHE__IDEMPOTENT | flags);
  if (st != MISCACHE_OK) return st;
  if (miscache__reply_type(r) != MISCACHE__R_STRING) {
    st = miscache__unexpected(mc, MISCACHE_DB_CACHE, NULL, r, "INFO");
    miscache__reply_free(r);
    return st;
  }
  const char *info = miscache__reply_str(r, NULL);
  out->used_memory += info_int(info, "used_memory");
  out->maxmemory += info_int(info, "maxmemory");
  const char *pol = strstr(info, "\nmaxmemory_policy:");
  if (pol && !out->maxmemory_policy[0])
    sscanf(pol + 18, "%31[^\r\n]", out->maxmemory_policy);
  out->keyspace_hits += info_int(info, "keyspace_hits");
  out->keyspace_misses += info_int(info, "keyspace_misses");
  int64_t total = out->keyspace_hits + out->keyspace_misses;
  out->hit_rate = total ? (double)out->keyspace_hits / (double)total : 0;
  *rr = r;
  return MISCACHE_OK;
}

/* On a Redis Cluster: INFO of every master, summed; keys per logical db by
 * a SCAN of every master (a cluster has db 0 only). */
static miscache_status_t cluster_info(miscache_t *mc,
                                      miscache_server_info_t *out) {
  size_t nodes = miscache__dispatch_nodes(mc);
  if (nodes == 0) return MISCACHE_ERR_UNAVAILABLE;
  for (size_t i = 0; i < nodes; i++) {
    miscache__reply_t *r = NULL;
    miscache_status_t st = info_add(mc, MISCACHE__ON_NODE(i), false, out, &r);
    miscache__reply_free(r);
    if (st != MISCACHE_OK) return st;
  }
  for (int i = 0; i < MISCACHE_DB_COUNT; i++) out->expires[i] = -1;
  bool quiet = mc->quiet;
  mc->quiet = true;
  miscache_status_t st =
      miscache_scan(mc, MISCACHE_DB_CACHE, "*", count_by_family, out->keys, NULL);
  mc->quiet = quiet;
  return st;
}

miscache_status_t miscache_server_info(miscache_t *mc,
                                       miscache_server_info_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_server_info: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  if (miscache__is_cluster(mc)) return cluster_info(mc, out);
  miscache__reply_t *r = NULL;
  miscache_status_t st = info_add(mc, 0, true, out, &r);
  if (st != MISCACHE_OK) return st;
  const char *info = miscache__reply_str(r, NULL);
  for (int i = 0; i < MISCACHE_DB_COUNT; i++) {
    /* "db4:keys=12,expires=12,avg_ttl=..." */
    char name[24];
    snprintf(name, sizeof name, "\ndb%d:keys=", mc->opts.db[i]);
    const char *p = strstr(info, name);
    if (!p) continue;
    out->keys[i] = strtoll(p + strlen(name), NULL, 10);
    const char *e = strstr(p, ",expires=");
    if (e) out->expires[i] = strtoll(e + 9, NULL, 10);
  }
  miscache__reply_free(r);
  return MISCACHE_OK;
}

const char *miscache_health_name(miscache_health_t h) {
  switch (h) {
  case MISCACHE_HEALTH_HEALTHY: return "healthy";
  case MISCACHE_HEALTH_PARTIAL: return "partial";
  case MISCACHE_HEALTH_MISSING: return "missing";
  }
  return "unknown";
}

miscache_health_t
miscache_company_health_overall(const miscache_company_health_t *h) {
  if (!h) return MISCACHE_HEALTH_MISSING;
  return h->batch > h->gift ? h->batch : h->gift;
}

/* MISS and a value of the wrong shape both mean "not cached"; anything else
 * is a failure of the check itself. */
static miscache_status_t cached_or_not(miscache_status_t st, bool *cached) {
  *cached = st == MISCACHE_OK;
  return st == MISCACHE_OK || st == MISCACHE_MISS || st == MISCACHE_ERR_DECODE
             ? MISCACHE_OK
             : st;
}

miscache_status_t miscache_company_health(miscache_t *mc, int64_t company,
                                          const char *yyyymmdd,
                                          miscache_company_health_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_company_health: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache_status_t st = miscache__check_date(mc, yyyymmdd, 8);
  if (st != MISCACHE_OK) return st;
  bool quiet = mc->quiet;
  mc->quiet = true; /* health checks are not cache reads */
  miscache_batch_config_t cfg;
  st = cached_or_not(miscache_batch_config_get(mc, company, &cfg),
                     &out->config_cached);
  miscache_batch_config_clear(&cfg);
  miscache_batch_status_t bs;
  if (st == MISCACHE_OK)
    st = cached_or_not(miscache_batch_status_get(mc, company, &bs),
                       &out->status_cached);
  if (st == MISCACHE_OK && out->status_cached) {
    snprintf(out->last_batch_time, sizeof out->last_batch_time, "%s",
             bs.start_time ? bs.start_time : "");
    snprintf(out->last_batch_status, sizeof out->last_batch_status, "%s",
             bs.status ? bs.status : "");
    out->batch_stale = bs.stale;
    miscache_batch_status_clear(&bs);
  }
  char key[MISCACHE_KEY_BUFSIZE];
  if (st == MISCACHE_OK)
    st = miscache__kf_key_int(mc, MISCACHE_KF_BATCH_LOCK, key, company);
  if (st == MISCACHE_OK)
    st = miscache_exists(mc, miscache__kf_db(MISCACHE_KF_BATCH_LOCK), key,
                         &out->batch_locked);
  miscache_gift_rules_t rules;
  if (st == MISCACHE_OK)
    st = cached_or_not(miscache_gift_rules_get(mc, company, &rules),
                       &out->rules_cached);
  if (st == MISCACHE_OK && out->rules_cached) {
    out->auto_classify = rules.auto_classify;
    out->keyword_count = rules.keywords.count;
    miscache_gift_rules_clear(&rules);
  }
  json_t *a = NULL;
  if (st == MISCACHE_OK)
    st = cached_or_not(miscache_gift_analytics_get(mc, company, yyyymmdd, &a),
                       &out->analytics_cached);
  json_decref(a);
  mc->quiet = quiet;
  out->batch = out->config_cached && out->status_cached && !out->batch_stale
                   ? MISCACHE_HEALTH_HEALTHY
               : out->config_cached || out->status_cached
                   ? MISCACHE_HEALTH_PARTIAL
                   : MISCACHE_HEALTH_MISSING;
  out->gift = out->rules_cached ? MISCACHE_HEALTH_HEALTHY
                                : MISCACHE_HEALTH_MISSING;
  return st;
}

/*
 * miscache — operator tool for the MIS v2 cache, on libmiscache's public API.
 * Exit status: 0 success, 1 negative answer (not found, unhealthy, error
 * reply), 2 usage error, 3 server unreachable or refusing us (connect,
 * AUTH or TLS: an untrusted, expired or wrong-host certificate).
 * See docs/miscache.1.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <miscache/miscache.h>

enum { EX_OK = 0, EX_NO = 1, EX_USAGE = 2, EX_DOWN = 3, EX_MISSING = 4 };

static int usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("miscache: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\n(miscache --help for usage)\n", stderr);
  va_end(ap);
  return EX_USAGE;
}

/* Reports a failed call; the exit status for it. */
static int failed(miscache_t *mc, miscache_status_t st, const char *what) {
  fprintf(stderr, "miscache: %s: %s", what, miscache_strerror(st));
  if (mc && miscache_errmsg(mc)[0]) fprintf(stderr, " (%s)", miscache_errmsg(mc));
  fputc('\n', stderr);
  if (st == MISCACHE_ERR_UNAVAILABLE || st == MISCACHE_ERR_AUTH ||
      st == MISCACHE_ERR_TLS)
    return EX_DOWN;
  if (st == MISCACHE_ERR_KEY || st == MISCACHE_ERR_INVALID ||
      st == MISCACHE_ERR_URL)
    return EX_USAGE;
  return EX_NO;
}

static bool parse_i64(const char *s, int64_t *out) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end) return false;
  *out = v;
  return true;
}

static void today(char d[9]) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(d, 9, "%Y%m%d", &tm);
}

/* The id of family k (a pointer into the library's table). */
static miscache_key_family_id_t family_id(const miscache_key_family_t *k) {
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++)
    if (miscache_key_family((miscache_key_family_id_t)f) == k)
      return (miscache_key_family_id_t)f;
  return MISCACHE_KF_SESSION; /* not reached: k came from the table */
}

/* ---- config / key / keyspace (no server) ------------------------------------ */

static miscache_options_t *g_opts; /* what main() built from the flags */

static int cmd_config(miscache_t *mc, int argc, char **argv) {
  (void)mc;
  (void)argv;
  if (argc) return usage("config takes no argument");
  size_t need = 0;
  miscache_options_describe(g_opts, NULL, 0, &need);
  char *text = malloc(need + 1);
  if (!text) return failed(NULL, MISCACHE_ERR_NOMEM, "config");
  miscache_status_t st = miscache_options_describe(g_opts, text, need + 1, NULL);
  if (st == MISCACHE_OK) fputs(text, stdout);
  else fprintf(stderr, "miscache: config: %s\n", text);
  free(text);
  return st == MISCACHE_OK ? EX_OK : EX_USAGE;
}

static int cmd_key(miscache_t *mc, int argc, char **argv) {
  if (argc < 1) return usage("key: FAMILY missing");
  const miscache_key_family_t *k = miscache_key_family_by_name(argv[0]);
  if (!k) return usage("key: unknown family \"%s\" (miscache keyspace lists them)", argv[0]);
  if ((size_t)(argc - 1) != k->nids)
    return usage("key %s takes %s", k->name, k->nids ? k->ids : "no id");
  char key[MISCACHE_KEY_BUFSIZE + 64]; /* a namespace (64 bytes at most) too */
  miscache_status_t st = miscache_family_key(
      mc, family_id(k), (const char *const *)argv + 1, key, sizeof key, NULL);
  if (st != MISCACHE_OK) return usage("key: %s", miscache_errmsg(mc));
  printf("%s\n", key);
  return EX_OK;
}

static int cmd_keyspace(miscache_t *mc, int argc, char **argv) {
  bool as_json = argc == 1 && !strcmp(argv[0], "--json");
  if (argc && !as_json) return usage("keyspace takes only --json");
  if (as_json) {
    char *text = miscache_keyspace_json();
    if (!text) return failed(NULL, MISCACHE_ERR_NOMEM, "keyspace");
    puts(text);
    free(text);
    return EX_OK;
  }
  printf("%-20s %-44s %-8s %-20s %-8s %s\n", "FAMILY", "KEY", "DB",
         "TTL CLASS", "SECONDS", "VALUE");
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++) {
    const miscache_key_family_t *k =
        miscache_key_family((miscache_key_family_id_t)f);
    char tmpl[128];
    size_t n = (size_t)snprintf(tmpl, sizeof tmpl, "%s", k->prefix);
    for (const char *p = k->ids; *p && n < sizeof tmpl;) {
      size_t w = strcspn(p, " ");
      n += (size_t)snprintf(tmpl + n, sizeof tmpl - n, ":<%.*s>", (int)w, p);
      p += w + (p[w] == ' ');
    }
    const char *cls = k->ttl_class < 0 ? "-"
                      : miscache_ttl_class_name((miscache_ttl_class_t)k->ttl_class);
    char db[24];
    snprintf(db, sizeof db, "%s/%d", miscache_db_name(k->db),
             miscache_db_number(mc, k->db));
    printf("%-20s %-44s %-8s %-20s %-8lld %s\n", k->name, tmpl, db, cls,
           (long long)(k->ttl_class < 0 ? 0
                       : miscache_ttl_seconds(mc, (miscache_ttl_class_t)k->ttl_class)),
           k->payload);
  }
  return EX_OK;
}

/* ---- get --------------------------------------------------------------------- */

/* KIND is a key family of the library's keyspace table, by its short name
 * ("batch-status"); "master X" is kept as another spelling of family X. */
static int cmd_get(miscache_t *mc, int argc, char **argv) {
  if (argc < 1) return usage("get: KIND missing");
  const char *name = argv[0];
  char **ids = argv + 1;
  if (strcmp(name, "master") == 0 && argc == 2) {
    if (strcmp(argv[1], "departments") && strcmp(argv[1], "brands") &&
        strcmp(argv[1], "companies"))
      return usage("get master takes departments|brands|companies");
    name = argv[1];
    ids = argv + 2;
    argc--;
  }
  const miscache_key_family_t *k = miscache_key_family_by_name(name);
  if (!k) return usage("get: unknown kind \"%s\"", argv[0]);
  if ((size_t)(argc - 1) != k->nids)
    return usage("get %s takes %s", k->name, k->nids ? k->ids : "no id");
  char full[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st =
      miscache_family_key(mc, family_id(k), (const char *const *)ids, full,
                          sizeof full, NULL);
  if (st != MISCACHE_OK) return usage("get: %s", miscache_errmsg(mc));
  /* the handle adds its namespace itself */
  const char *key = full + strlen(miscache_namespace(mc));
  json_t *v = NULL;
  st = miscache_get(mc, k->db, key, &v);
  if (st == MISCACHE_MISS) {
    fprintf(stderr, "miscache: %s (db %s): not in the cache\n", key,
            miscache_db_name(k->db));
    return EX_NO;
  }
  if (st != MISCACHE_OK) return failed(mc, st, key);
  int64_t ttl = -2;
  miscache_ttl_ms(mc, k->db, key, &ttl);
  json_t *env = json_pack("{s:s,s:s,s:I,s:o}", "key", key, "db",
                          miscache_db_name(k->db), "ttl_seconds",
                          (json_int_t)(ttl > 0 ? ttl / 1000 : ttl), "value", v);
  char *text = json_dumps(env, JSON_INDENT(2));
  puts(text ? text : "{}");
  free(text);
  json_decref(env);
  return EX_OK;
}

/* ---- invalidate ------------------------------------------------------------------ */

static int print_key(void *ud, miscache_db_t db, const char *key) {
  (void)ud;
  printf("would remove %s (db %s)\n", key, miscache_db_name(db));
  return 0;
}

static int cmd_invalidate(miscache_t *mc, int argc, char **argv) {
  bool dry = false;
  char *args[16];
  int n = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--dry-run") == 0) dry = true;
    else if (n < 16) args[n++] = argv[i];
    else return usage("invalidate: too many arguments");
  }
  if (n < 1) return usage("invalidate: EVENT missing");
  const char *ev = args[0];
  int64_t id = 0;
  uint64_t removed = 0;
  miscache_status_t st;
  if (dry) miscache_invalidate_dry_run(mc, print_key, NULL);
  bool one_id = !strcmp(ev, "permissions") || !strcmp(ev, "batch-config") ||
                !strcmp(ev, "gift-rules") || !strcmp(ev, "company");
  if (one_id) {
    if (n != 2 || !parse_i64(args[1], &id))
      return usage("invalidate %s takes one numeric id", ev);
    st = !strcmp(ev, "permissions")    ? miscache_invalidate_permissions(mc, id, &removed)
         : !strcmp(ev, "batch-config") ? miscache_invalidate_batch_config(mc, id, &removed)
         : !strcmp(ev, "gift-rules")   ? miscache_invalidate_gift_rules(mc, id, &removed)
                                       : miscache_invalidate_company(mc, id, &removed);
  } else if (!strcmp(ev, "brand")) {
    if (n != 2) return usage("invalidate brand takes BRAND_CODE");
    st = miscache_invalidate_brand(mc, args[1], &removed);
  } else if (!strcmp(ev, "daily")) {
    if (n != 2) return usage("invalidate daily takes YYYYMMDD");
    st = miscache_invalidate_daily(mc, args[1], &removed);
  } else if (!strcmp(ev, "post-batch")) {
    /* post-batch [--date YYYYMMDD] COMPANY... (date: today, UTC) */
    char day[9];
    today(day);
    const char *date = day;
    int64_t companies[16];
    size_t k = 0;
    for (int i = 1; i < n; i++) {
      if (!strncmp(args[i], "--date=", 7)) {
        date = args[i] + 7;
      } else if (!parse_i64(args[i], &companies[k++])) {
        return usage("invalidate post-batch takes numeric company ids");
      }
    }
    if (k == 0) return usage("invalidate post-batch takes COMPANY...");
    st = miscache_invalidate_post_batch(mc, companies, k, date, &removed);
  } else {
    return usage("invalidate: unknown event \"%s\"", ev);
  }
  if (st != MISCACHE_OK) return failed(mc, st, ev);
  printf("%s %llu keys\n", dry ? "would remove" : "removed",
         (unsigned long long)removed);
  return EX_OK;
}

/* ---- locks / unlock ---------------------------------------------------------------- */

typedef struct {
  miscache_t *mc;
  miscache_db_t db;
  int count;
} lock_list_t;

static int show_lock(void *ud, const char *key, size_t len) {
  lock_list_t *l = ud;
  char k[MISCACHE_KEY_BUFSIZE];
  snprintf(k, sizeof k, "%.*s", (int)len, key);
  json_t *v = NULL;
  int64_t ttl = -2;
  if (miscache_lock_info(l->mc, l->db, k, &v) != MISCACHE_OK) return 0;
  miscache_ttl_ms(l->mc, l->db, k, &ttl);
  const char *by = json_string_value(json_object_get(v, "locked_by"));
  const char *at = json_string_value(json_object_get(v, "locked_at"));
  const char *bid = json_string_value(json_object_get(v, "batch_id"));
  char holder[64] = "-";
  int64_t company;
  miscache_batch_lock_state_t ls;
  const char *bl = miscache_key_family(MISCACHE_KF_BATCH_LOCK)->prefix;
  size_t bn = strlen(bl);
  if (l->db == miscache_key_family(MISCACHE_KF_BATCH_LOCK)->db &&
      !strncmp(k, bl, bn) && k[bn] == ':' && parse_i64(k + bn + 1, &company) &&
      miscache_batch_lock_state(l->mc, company, &ls) == MISCACHE_OK &&
      ls.held && ls.heartbeat_age_ms >= 0)
    snprintf(holder, sizeof holder, "%s%.30s:%lld %llds", ls.stale ? "STALE " : "",
             ls.host, (long long)ls.pid,
             (long long)(ls.heartbeat_age_ms / 1000));
  printf("%-40s %-6s %-24s %-22s %-20s %-8lld %s\n", k,
         miscache_db_name(l->db), by ? by : "-", at ? at : "-",
         bid ? bid : "-", (long long)(ttl > 0 ? (ttl + 999) / 1000 : ttl),
         holder);
  json_decref(v);
  l->count++;
  return 0;
}

static int cmd_locks(miscache_t *mc, int argc, char **argv) {
  if (argc > 1) return usage("locks takes at most one COMPANY");
  int64_t company = 0;
  if (argc == 1 && !parse_i64(argv[0], &company))
    return usage("locks: COMPANY must be a number");
  printf("%-40s %-6s %-24s %-22s %-20s %-8s %s\n", "key", "db", "locked by",
         "since", "batch id", "ttl s", "holder host:pid heartbeat age");
  /* every lock family of the keyspace table; with a COMPANY, the ones
   * keyed by a company */
  lock_list_t l = {mc, MISCACHE_DB_BATCH, 0};
  const char *ids[1] = {argc ? argv[0] : NULL};
  miscache_status_t st = MISCACHE_OK;
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT && st == MISCACHE_OK; f++) {
    const miscache_key_family_t *k =
        miscache_key_family((miscache_key_family_id_t)f);
    if (strcmp(k->payload, "lock") != 0) continue;
    if (argc && strcmp(k->ids, "COMPANY") != 0) continue;
    char pat[MISCACHE_KEY_BUFSIZE];
    if (miscache_pattern_build(pat, sizeof pat, k->prefix, k->nids, ids,
                               NULL) != MISCACHE_OK)
      return usage("locks: bad COMPANY");
    l.db = k->db;
    st = miscache_scan(mc, k->db, pat, show_lock, &l, NULL);
  }
  if (st != MISCACHE_OK) return failed(mc, st, "locks");
  printf("%d lock%s held\n", l.count, l.count == 1 ? "" : "s");
  return EX_OK;
}

static int cmd_unlock(miscache_t *mc, int argc, char **argv) {
  const char *key = NULL;
  bool force = false;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--force")) force = true;
    else if (!key) key = argv[i];
    else return usage("unlock takes one KEY");
  }
  if (!key) return usage("unlock: KEY missing (as `miscache locks` prints it)");
  const miscache_key_family_t *lf = NULL;
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT && !lf; f++) {
    const miscache_key_family_t *k =
        miscache_key_family((miscache_key_family_id_t)f);
    size_t n = strlen(k->prefix);
    if (!strcmp(k->payload, "lock") && !strncmp(key, k->prefix, n) &&
        key[n] == ':')
      lf = k;
  }
  if (!lf)
    return usage("unlock: %s is not a lock key (batch:lock:* or lock:*)", key);
  miscache_db_t db = lf->db;
  if (!force)
    return usage("unlock removes a lock someone may hold: add --force");
  json_t *v = NULL;
  miscache_status_t st = miscache_lock_info(mc, db, key, &v);
  if (st == MISCACHE_MISS) {
    fprintf(stderr, "miscache: %s: no such lock\n", key);
    return EX_NO;
  }
  if (st != MISCACHE_OK) return failed(mc, st, key);
  char *text = json_dumps(v, JSON_COMPACT);
  bool deleted = false;
  st = miscache_delete(mc, db, key, &deleted);
  if (st != MISCACHE_OK) {
    free(text);
    json_decref(v);
    return failed(mc, st, key);
  }
  printf("removed %s (db %s): %s\n", key, miscache_db_name(db), text);
  free(text);
  json_decref(v);
  return deleted ? EX_OK : EX_NO;
}

/* Token-checked takeover of a dead holder's batch lock, then release: the
 * fence moves on, so the dead run can never write again. */
static int cmd_takeover(miscache_t *mc, int argc, char **argv) {
  int64_t company;
  if (argc != 2 || !parse_i64(argv[0], &company))
    return usage("takeover COMPANY TOKEN (the token `miscache get "
                 "batch-lock COMPANY` prints)");
  miscache_lock_t *l = NULL;
  miscache_status_t st =
      miscache_batch_lock_takeover(mc, company, argv[1], "miscache takeover",
                                   NULL, &l);
  if (st != MISCACHE_OK) return failed(mc, st, "takeover");
  printf("took over batch:lock:%lld (new fence %lld) and released it\n",
         (long long)company, (long long)miscache_lock_fence(l));
  st = miscache_lock_release(mc, l);
  miscache_lock_free(l);
  return st == MISCACHE_OK ? EX_OK : failed(mc, st, "release");
}

/* ---- stats / health ---------------------------------------------------------------- */

static int cmd_stats(miscache_t *mc, int argc, char **argv) {
  int fmt = 0; /* 0 table, 1 json, 2 prometheus */
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) fmt = 1;
    else if (!strcmp(argv[i], "--prometheus")) fmt = 2;
    else return usage("stats: unknown option %s", argv[i]);
  }
  miscache_server_info_t info;
  miscache_status_t st = miscache_server_info(mc, &info);
  if (st != MISCACHE_OK) return failed(mc, st, "stats");
  if (fmt == 2) {
    puts("# HELP miscache_keys Keys per logical database.\n"
         "# TYPE miscache_keys gauge");
    for (int i = 0; i < MISCACHE_DB_COUNT; i++)
      printf("miscache_keys{db=\"%s\"} %lld\n", miscache_db_name((miscache_db_t)i),
             (long long)info.keys[i]);
    puts("# HELP miscache_expiring_keys Keys with a TTL per logical database.\n"
         "# TYPE miscache_expiring_keys gauge");
    for (int i = 0; i < MISCACHE_DB_COUNT; i++)
      printf("miscache_expiring_keys{db=\"%s\"} %lld\n",
             miscache_db_name((miscache_db_t)i), (long long)info.expires[i]);
    printf("# HELP miscache_used_memory_bytes Memory used by the server.\n"
           "# TYPE miscache_used_memory_bytes gauge\n"
           "miscache_used_memory_bytes %lld\n"
           "# HELP miscache_keyspace_hits_total Server keyspace hits.\n"
           "# TYPE miscache_keyspace_hits_total counter\n"
           "miscache_keyspace_hits_total %lld\n"
           "# HELP miscache_keyspace_misses_total Server keyspace misses.\n"
           "# TYPE miscache_keyspace_misses_total counter\n"
           "miscache_keyspace_misses_total %lld\n"
           "# HELP miscache_hit_ratio Server hit ratio (hits / lookups).\n"
           "# TYPE miscache_hit_ratio gauge\n"
           "miscache_hit_ratio %.6f\n",
           (long long)info.used_memory, (long long)info.keyspace_hits,
           (long long)info.keyspace_misses, info.hit_rate);
    puts("# HELP miscache_client_reads_total Reads by this client per category.\n"
         "# TYPE miscache_client_reads_total counter");
    for (int c = 0; c < MISCACHE_CATEGORY_COUNT; c++) {
      miscache_counters_t k;
      miscache_counters_category(mc, (miscache_category_t)c, &k);
      const char *n = miscache_category_name((miscache_category_t)c);
      printf("miscache_client_reads_total{category=\"%s\",result=\"hit\"} %llu\n"
             "miscache_client_reads_total{category=\"%s\",result=\"miss\"} %llu\n"
             "miscache_client_errors_total{category=\"%s\"} %llu\n",
             n, (unsigned long long)k.hits, n, (unsigned long long)k.misses, n,
             (unsigned long long)k.errors);
    }
    /* this process's near cache (on with --near); a service prints its
     * own with miscache_near_stats() + miscache_near_prometheus() */
    miscache_near_stats_t ns;
    miscache_near_stats(mc, &ns, sizeof ns);
    char text[2048];
    miscache_near_prometheus(&ns, text, sizeof text);
    fputs(text, stdout);
    /* the tool's own calls (a service prints its handle's or pool's) */
    miscache_latency_t lat;
    miscache_latency(mc, &lat, sizeof lat);
    size_t need = miscache_latency_prometheus(&lat, NULL, 0);
    char *ltext = malloc(need + 1);
    if (ltext) {
      miscache_latency_prometheus(&lat, ltext, need + 1);
      fputs(ltext, stdout);
      free(ltext);
    }
    return EX_OK;
  }
  if (fmt == 1) {
    json_t *dbs = json_object(), *cats = json_object();
    for (int i = 0; i < MISCACHE_DB_COUNT; i++)
      json_object_set_new(dbs, miscache_db_name((miscache_db_t)i),
                          json_pack("{s:i,s:I,s:I}", "number",
                                    miscache_db_number(mc, (miscache_db_t)i),
                                    "keys", (json_int_t)info.keys[i], "expires",
                                    (json_int_t)info.expires[i]));
    for (int c = 0; c < MISCACHE_CATEGORY_COUNT; c++) {
      miscache_counters_t k;
      miscache_counters_category(mc, (miscache_category_t)c, &k);
      json_object_set_new(cats, miscache_category_name((miscache_category_t)c),
                          json_pack("{s:I,s:I,s:I}", "hits", (json_int_t)k.hits,
                                    "misses", (json_int_t)k.misses, "errors",
                                    (json_int_t)k.errors));
    }
    json_t *all = json_pack(
        "{s:o,s:I,s:I,s:s,s:I,s:I,s:f,s:o}", "dbs", dbs, "used_memory",
        (json_int_t)info.used_memory, "maxmemory", (json_int_t)info.maxmemory,
        "maxmemory_policy", info.maxmemory_policy, "keyspace_hits",
        (json_int_t)info.keyspace_hits, "keyspace_misses",
        (json_int_t)info.keyspace_misses, "hit_rate", info.hit_rate,
        "client_categories", cats);
    char *text = json_dumps(all, JSON_INDENT(2));
    puts(text ? text : "{}");
    free(text);
    json_decref(all);
    return EX_OK;
  }
  printf("%-8s %3s %10s %10s\n", "db", "no", "keys", "expires");
  for (int i = 0; i < MISCACHE_DB_COUNT; i++)
    printf("%-8s %3d %10lld %10lld\n", miscache_db_name((miscache_db_t)i),
           miscache_db_number(mc, (miscache_db_t)i), (long long)info.keys[i],
           (long long)info.expires[i]);
  printf("memory %lld bytes (maxmemory %lld, policy %s)\n"
         "server hit rate %.2f %% (%lld hits, %lld misses)\n",
         (long long)info.used_memory, (long long)info.maxmemory,
         info.maxmemory_policy, 100 * info.hit_rate,
         (long long)info.keyspace_hits, (long long)info.keyspace_misses);
  printf("%-12s %8s %8s %8s   (this client)\n", "category", "hits", "misses",
         "errors");
  for (int c = 0; c < MISCACHE_CATEGORY_COUNT; c++) {
    miscache_counters_t k;
    miscache_counters_category(mc, (miscache_category_t)c, &k);
    printf("%-12s %8llu %8llu %8llu\n",
           miscache_category_name((miscache_category_t)c),
           (unsigned long long)k.hits, (unsigned long long)k.misses,
           (unsigned long long)k.errors);
  }
  return EX_OK;
}

static int cmd_health(miscache_t *mc, int argc, char **argv) {
  char day[9];
  today(day);
  const char *date = day;
  const char *cs = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--date") && i + 1 < argc) date = argv[++i];
    else if (!cs) cs = argv[i];
    else return usage("health takes one COMPANY");
  }
  int64_t company;
  if (!cs || !parse_i64(cs, &company))
    return usage("health takes a numeric COMPANY");
  miscache_company_health_t h;
  miscache_status_t st = miscache_company_health(mc, company, date, &h);
  if (st != MISCACHE_OK) return failed(mc, st, "health");
  printf("company %lld\n"
         "batch: %s (config %s, status %s, last run %s %s, lock %s)\n"
         "gift:  %s (rules %s, auto_classify %s, %llu keywords, analytics %s "
         "%s)\n",
         (long long)company, miscache_health_name(h.batch),
         h.config_cached ? "cached" : "missing",
         h.status_cached ? "cached" : "missing",
         h.last_batch_time[0] ? h.last_batch_time : "-",
         h.last_batch_status[0] ? h.last_batch_status : "",
         h.batch_stale ? "stale: the running run is dead"
         : h.batch_locked ? "held" : "free",
         miscache_health_name(h.gift),
         h.rules_cached ? "cached" : "missing", h.auto_classify ? "on" : "off",
         (unsigned long long)h.keyword_count,
         h.analytics_cached ? "cached for" : "missing for", date);
  /* 0 healthy, 1 partial, 4 missing (2 is a usage error) */
  miscache_health_t all = miscache_company_health_overall(&h);
  return all == MISCACHE_HEALTH_HEALTHY   ? EX_OK
         : all == MISCACHE_HEALTH_PARTIAL ? EX_NO
                                          : EX_MISSING;
}

/* ---- classify ---------------------------------------------------------------------- */

static int cmd_classify(miscache_t *mc, int argc, char **argv) {
  int64_t company;
  if (argc != 2 || strcmp(argv[0], "--company") || !parse_i64(argv[1], &company))
    return usage("classify takes --company N and JSON lines on stdin");
  miscache_gift_rules_t rules;
  miscache_status_t st = miscache_gift_rules_get(mc, company, &rules);
  if (st == MISCACHE_MISS) {
    fprintf(stderr, "miscache: no gift rules cached for company %lld\n",
            (long long)company);
    return EX_NO;
  }
  if (st != MISCACHE_OK) return failed(mc, st, "gift rules");
  miscache_gift_master_entry_t *master = NULL;
  size_t n_master = 0;
  st = miscache_gift_master_get(mc, company, &master, &n_master);
  if (st != MISCACHE_OK && st != MISCACHE_MISS) {
    miscache_gift_rules_clear(&rules);
    return failed(mc, st, "gift master");
  }
  miscache_gift_engine_t *e = NULL;
  st = miscache_gift_engine_new(&rules, master, n_master, &e);
  miscache_gift_rules_clear(&rules);
  miscache_gift_master_free(master, n_master);
  if (st != MISCACHE_OK) return failed(mc, st, "engine");
  int rc = EX_OK;
  char line[65536];
  long lineno = 0;
  while (fgets(line, sizeof line, stdin)) {
    lineno++;
    if (strspn(line, " \t\r\n") == strlen(line)) continue;
    json_error_t je;
    json_t *in = json_loads(line, 0, &je);
    const char *code = json_string_value(json_object_get(in, "product_code"));
    if (!code) {
      fprintf(stderr, "miscache: line %ld: need a JSON object with "
                      "product_code (and product_name, supply_price)\n", lineno);
      json_decref(in);
      rc = EX_NO;
      continue;
    }
    miscache_gift_product_t p = {
        .product_code = code,
        .product_name = json_string_value(json_object_get(in, "product_name")),
        .supply_price = json_number_value(json_object_get(in, "supply_price"))};
    miscache_gift_classification_t c;
    miscache_source_t src;
    st = miscache_gift_classify(mc, company, e, &p, &c, &src);
    if (st != MISCACHE_OK) {
      json_decref(in);
      rc = failed(mc, st, code);
      break;
    }
    json_t *out = json_pack(
        "{s:s,s:s,s:s?,s:s,s:b,s:f,s:s,s:s}", "product_code", code,
        "product_type", c.product_type, "gift_type", c.gift_type,
        "classification_reason", c.classification_reason, "is_revenue",
        c.is_revenue, "revenue_impact", c.revenue_impact, "classified_at",
        c.classified_at, "source",
        src == MISCACHE_SOURCE_CACHE ? "cache" : "engine");
    char *text = json_dumps(out, JSON_COMPACT);
    puts(text ? text : "{}");
    free(text);
    json_decref(out);
    json_decref(in);
    miscache_gift_classification_clear(&c);
  }
  miscache_gift_engine_free(e);
  return rc;
}

/* ---- queue --------------------------------------------------------------------- */

static int cmd_queue(miscache_t *mc, int argc, char **argv) {
  const char *name = NULL, *group = NULL;
  bool dead = false;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--dead")) dead = true;
    else if (!strncmp(argv[i], "--group=", 8)) group = argv[i] + 8;
    else if (!name) name = argv[i];
    else return usage("queue takes one NAME");
  }
  if (!name) return usage("queue: NAME missing");
  if (dead) {
    enum { MAX = 100 };
    miscache_queue_msg_t m[MAX];
    char *errs[MAX];
    size_t got = 0;
    miscache_status_t st = miscache_queue_dead(mc, name, MAX, m, errs, &got);
    if (st != MISCACHE_OK) return failed(mc, st, "queue --dead");
    for (size_t i = 0; i < got; i++) {
      char *body = m[i].body ? json_dumps(m[i].body, JSON_COMPACT) : NULL;
      printf("%s  msg_id=%s  deliveries=%llu  error=%s\n  %s\n", m[i].id,
             m[i].msg_id, (unsigned long long)m[i].deliveries,
             errs[i] ? errs[i] : "-", body ? body : "(body is not JSON)");
      free(body);
      free(errs[i]);
      miscache_queue_msg_clear(&m[i]);
    }
    printf("%zu dead letter%s shown (at most %d)\n", got, got == 1 ? "" : "s",
           MAX);
    return EX_OK;
  }
  miscache_queue_info_t qi;
  miscache_status_t st = miscache_queue_info(mc, name, group, &qi);
  if (st != MISCACHE_OK) return failed(mc, st, "queue");
  printf("queue %s%s%s\n", name, group ? ", group " : "", group ? group : "");
  printf("  length         %llu\n", (unsigned long long)qi.length);
  printf("  pending        %llu\n", (unsigned long long)qi.pending);
  printf("  consumers      %llu\n", (unsigned long long)qi.consumers);
  if (qi.oldest_age_ms >= 0)
    printf("  oldest age     %.1f s\n", (double)qi.oldest_age_ms / 1000.0);
  else
    printf("  oldest age     -\n");
  printf("  dead letters   %llu\n", (unsigned long long)qi.dead);
  printf("  trimmed by cap %llu\n", (unsigned long long)qi.trimmed);
  return EX_OK;
}

/* ---- refresh ------------------------------------------------------------------- */

/* The tool has no loaders (they read the system of record): it asks the
 * services that have them, through the refresh queue. */
static int cmd_refresh(miscache_t *mc, int argc, char **argv) {
  const char *company = NULL;
  char date[9];
  today(date);
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--date") && i + 1 < argc) {
      if (strlen(argv[++i]) != 8) return usage("refresh: --date YYYYMMDD");
      snprintf(date, sizeof date, "%s", argv[i]);
    } else if (!company) {
      company = argv[i];
    } else {
      return usage("refresh takes one COMPANY");
    }
  }
  int64_t c;
  if (!company || !parse_i64(company, &c) || c < 0)
    return usage("refresh: COMPANY must be a number");
  json_t *req = json_pack("{s:s,s:I,s:s}", "op", "refresh_post_batch",
                          "company", (json_int_t)c, "date", date);
  const json_t *bodies[1] = {req};
  char id[1][MISCACHE_QUEUE_ID_SIZE];
  miscache_status_t st = miscache_queue_enqueue(mc, MISCACHE_REFRESH_QUEUE, 1,
                                                bodies, NULL, NULL, id);
  json_decref(req);
  if (st != MISCACHE_OK) return failed(mc, st, "refresh");
  printf("refresh of company %lld (%s) requested: queue %s entry %s\n",
         (long long)c, date, MISCACHE_REFRESH_QUEUE, id[0]);
  return EX_OK;
}

/* ---- near-flush ---------------------------------------------------------------- */

static int cmd_near_flush(miscache_t *mc, int argc, char **argv) {
  (void)argv;
  if (argc) return usage("near-flush takes no arguments");
  uint64_t n = 0;
  miscache_status_t st = miscache_near_flush_all(mc, &n);
  if (st != MISCACHE_OK) return failed(mc, st, "near-flush");
  printf("near caches told to drop their stores: %llu subscriber%s\n",
         (unsigned long long)n, n == 1 ? "" : "s");
  return EX_OK;
}

/* ---- main -------------------------------------------------------------------------- */

static const struct command {
  const char *name;
  int (*fn)(miscache_t *, int, char **);
  const char *synopsis;
  const char *help;
  bool offline; /* needs no server: the handle is opened lazily */
} commands[] = {
    {"config", cmd_config, "config",
     "Print the effective settings (the URL's parameters and the flags\n"
     "combined, password shown as ***), one name=value per line, as\n"
     "miscache_options_describe() gives them. Connects to nothing.", true},
    {"key", cmd_key, "key FAMILY ID...",
     "Print the full key the library uses for a family and ids (namespace\n"
     "and hash tags from the URL applied), e.g. `key batch-history 7\n"
     "20261124`. Ids are checked as the library checks them. Connects to\n"
     "nothing.", true},
    {"keyspace", cmd_keyspace, "keyspace [--json]",
     "Print the keyspace table: every key family with its key, db, TTL\n"
     "class and value; --json: the whole table (families, payload members,\n"
     "invalidation events, URL parameters, lock scripts) as JSON, as the\n"
     "Python package reads it. Connects to nothing.", true},
    {"get", cmd_get, "get KIND ID...",
     "Print a cached value as pretty JSON with its key, db and TTL left.\n"
     "KIND: a key family: session, permissions, departments, brands,\n"
     "companies (or master NAME), products, daily-sales, monthly-revenue,\n"
     "serial, upload, report, batch-config, batch-status, batch-history,\n"
     "batch-lock, batch-fence, gift-rules, gift-master, gift-classification,\n"
     "gift-analytics, serial-lock, process-lock, classification-lock.\n"
     "Exit 1 if not cached.", false},
    {"invalidate", cmd_invalidate, "invalidate EVENT ARGS [--dry-run]",
     "Run an invalidation event and print how many keys it removed:\n"
     "  permissions USER | batch-config COMPANY | gift-rules COMPANY |\n"
     "  company COMPANY | brand BRAND | daily YYYYMMDD |\n"
     "  post-batch [--date=YYYYMMDD] COMPANY...\n"
     "--dry-run lists the keys that would go and deletes nothing.", false},
    {"locks", cmd_locks, "locks [COMPANY]",
     "List held batch, serial and gift locks: holder, since, batch id, TTL.", false},
    {"unlock", cmd_unlock, "unlock KEY --force",
     "Remove a stuck lock (a key as `locks` prints it) and print what it\n"
     "held. Refuses without --force. Exit 1 if there is no such lock.", false},
    {"stats", cmd_stats, "stats [--json | --prometheus]",
     "Keys per logical db, memory, server hit rate and this client's\n"
     "per-category counters: a table, JSON, or Prometheus text format.", false},
    {"takeover", cmd_takeover, "takeover COMPANY TOKEN",
     "Take over the batch lock of a dead run (its heartbeat is older than\n"
     "the renewal period) if it still holds TOKEN, then release it. The\n"
     "fencing token moves on, so the dead run can never write again.", false},
    {"health", cmd_health, "health COMPANY [--date YYYYMMDD]",
     "Batch and gift cache health of a company. Exit 0 healthy, 1 partial,\n"
     "4 missing (2 stays the usage error).", false},
    {"queue", cmd_queue, "queue NAME [--group=G] [--dead]",
     "A work queue: length, pending (for group G, else the first group),\n"
     "consumers, age of the oldest entry, dead letters, what the length cap\n"
     "trimmed. --dead lists up to 100 dead letters with their last error.", false},
    {"refresh", cmd_refresh, "refresh COMPANY [--date YYYYMMDD]",
     "Ask for the post-batch refresh of a company (batch status and the\n"
     "day's gift analytics recomputed and replaced in place): a request on\n"
     "the \"refresh\" queue, served by the services that hold the loaders\n"
     "(miscache_refresh_post_batch).", false},
    {"near-flush", cmd_near_flush, "near-flush",
     "Make every process's near cache on this server drop its whole store\n"
     "(a message on " MISCACHE_NEAR_FLUSH_CHANNEL " that each one's\n"
     "invalidation connection receives). Needed after SWAPDB, which sends no\n"
     "invalidation, and after any bulk load made around CLIENT TRACKING.\n"
     "Prints how many subscribers the server handed the message to.", false},
    {"classify", cmd_classify, "classify --company N < products.jsonl",
     "Classify products given as JSON lines {product_code, product_name,\n"
     "supply_price} with the company's cached gift rules and master, through\n"
     "the classification cache; one JSON line out per product.", false},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void help(FILE *f) {
  fputs("usage: miscache [--url URL] [--namespace NS] [--hash-tags] [--near]\n"
        "                COMMAND [ARGS]\n"
        "       miscache COMMAND --help\n\n"
        "The server and every setting come from --url, else MISCACHE_URL, else\n"
        "redis://127.0.0.1:6379; its parameters (namespace=, hash_tags=true,\n"
        "db_cache=N, ... see docs/configuration.md) configure the tool as they\n"
        "configure a service. The flags win over the URL: --namespace NS,\n"
        "--hash-tags (company ids of company-scoped keys in {braces}), --near\n"
        "(the tool's handle uses a near cache; figures in stats --prometheus).\n"
        "Exit status: 0 success, 1 negative answer, 2 usage error, 3 server\n"
        "unreachable, 4 missing (health).\n\ncommands:\n",
        f);
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  %s\n", commands[i].synopsis);
}

int main(int argc, char **argv) {
  const char *url = NULL, *ns = NULL;
  bool near = false, hash_tags = false;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      help(stdout);
      return EX_OK;
    } else if (!strcmp(argv[i], "--version")) {
      printf("miscache %s\n", miscache_version());
      return EX_OK;
    } else if (!strcmp(argv[i], "--url") && i + 1 < argc) {
      url = argv[++i];
    } else if (!strncmp(argv[i], "--url=", 6)) {
      url = argv[i] + 6;
    } else if (!strcmp(argv[i], "--namespace") && i + 1 < argc) {
      ns = argv[++i];
    } else if (!strncmp(argv[i], "--namespace=", 12)) {
      ns = argv[i] + 12;
    } else if (!strcmp(argv[i], "--near")) {
      near = true;
    } else if (!strcmp(argv[i], "--hash-tags")) {
      hash_tags = true;
    } else {
      return usage("unknown option %s", argv[i]);
    }
  }
  if (i >= argc) {
    help(stderr);
    return EX_USAGE;
  }
  const struct command *cmd = NULL;
  for (size_t c = 0; c < NCOMMANDS; c++)
    if (!strcmp(argv[i], commands[c].name)) cmd = &commands[c];
  if (!cmd) return usage("unknown command \"%s\"", argv[i]);
  for (int j = i + 1; j < argc; j++)
    if (!strcmp(argv[j], "--help")) {
      printf("usage: miscache %s\n\n%s\n", cmd->synopsis, cmd->help);
      return EX_OK;
    }
  miscache_options_t *o = miscache_options_new();
  if (!o) return failed(NULL, MISCACHE_ERR_NOMEM, "options");
  if (url && miscache_options_set_url(o, url) != MISCACHE_OK) {
    int rc = usage("bad --url: %s", miscache_options_errmsg(o));
    miscache_options_free(o);
    return rc;
  }
  if (ns && miscache_options_set_namespace(o, ns) != MISCACHE_OK) {
    miscache_options_free(o);
    return usage("bad --namespace \"%s\": letters, digits and _-.: only, at "
                 "most 64 bytes", ns);
  }
  if (hash_tags) miscache_options_set_hash_tags(o, true);
  if (near) {
    miscache_near_t n = {.enabled = true};
    miscache_options_set_near_cache(o, &n);
  }
  g_opts = o;
  if (cmd->fn == cmd_config) { /* needs no handle; says itself what is wrong */
    int rc = cmd_config(NULL, argc - i - 1, argv + i + 1);
    miscache_options_free(o);
    return rc;
  }
  /* every command checks its arguments before anything goes to the server:
   * the handle connects on its first call (a usage error is 2, never the
   * 3 of a server that is down) */
  miscache_options_set_lazy_connect(o, true);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(o, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "miscache: %s: %s\n", miscache_strerror(st), err);
    miscache_options_free(o);
    return st == MISCACHE_ERR_URL || st == MISCACHE_ERR_INVALID ? EX_USAGE
                                                                 : EX_DOWN;
  }
  int rc = cmd->fn(mc, argc - i - 1, argv + i + 1);
  miscache_free(mc);
  miscache_options_free(o);
  return rc;
}

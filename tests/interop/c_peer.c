/* The C side of the Python package's cross-language tests
 * (tests/python/test_package.py): writes and reads values through the
 * library's typed calls and takes locks, on MISCACHE_URL. One line of
 * output per answer; exit 0 unless a call failed unexpectedly.
 *
 *   c_peer write ID           typed writes: session and permissions of user
 *                             ID, batch config/status/history and gift rules
 *                             of company ID (history day 20261124), daily
 *                             sales of 20261124, brands, serial count of
 *                             brand "B ID" (incremented by 5)
 *   c_peer read FAMILY ID...  the typed read of that family: "OK <json>",
 *                             "MISS" or "DECODE"
 *   c_peer lock-try FAMILY ID take the token lock once: "taken" (and
 *                             release it) or "locked"
 *   c_peer lock-hold FAMILY ID take it and leave it held (its TTL ends it)
 *   c_peer batch-lock-try COMPANY    "taken FENCE" (released) or "locked"
 *   c_peer batch-lock-hold COMPANY   "taken FENCE", left held */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <miscache/miscache.h>

static miscache_t *mc;

static int die(const char *what, miscache_status_t st) {
  fprintf(stderr, "c_peer: %s: %s (%s)\n", what, miscache_strerror(st),
          miscache_errmsg(mc));
  return 1;
}

static int print_json(miscache_status_t st, json_t *v) {
  if (st == MISCACHE_MISS) return puts("MISS"), 0;
  if (st == MISCACHE_ERR_DECODE) return puts("DECODE"), 0;
  if (st != MISCACHE_OK) return die("read", st);
  char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  printf("OK %s\n", t ? t : "null");
  free(t);
  json_decref(v);
  return 0;
}

static int do_write(int64_t id) {
  miscache_status_t st;
  miscache_session_t s = {.user_id = id, .username = "c-user", .dept_id = 3,
                          .current_company_id = id};
  s.permissions = json_pack("{s:{s:b,s:b}}", "sales", "read", 1, "update", 0);
  st = miscache_session_set(mc, &s);
  if (st != MISCACHE_OK) return die("session", st);
  st = miscache_permissions_set(mc, id, s.permissions);
  json_decref(s.permissions);
  if (st != MISCACHE_OK) return die("permissions", st);
  miscache_batch_config_t c = {.batch_enabled = true, .batch_hour = 2,
                               .page_size = 30};
  miscache_strings_push(&c.gift_keywords, "사은품");
  st = miscache_batch_config_set(mc, id, &c);
  miscache_strings_clear(&c.gift_keywords);
  if (st != MISCACHE_OK) return die("batch config", st);
  miscache_batch_status_t bs = {.status = "running", .batch_id = "b-1"};
  bs.progress.total_pages = 9;
  if ((st = miscache_batch_status_set(mc, id, &bs)) != MISCACHE_OK)
    return die("batch status", st);
  miscache_batch_history_t h = {.status = "completed", .duration_seconds = 42};
  if ((st = miscache_batch_history_set(mc, id, "20261124", &h)) != MISCACHE_OK)
    return die("batch history", st);
  miscache_gift_rules_t r = {.auto_classify = true};
  miscache_strings_push(&r.keywords, "증정품");
  st = miscache_gift_rules_set(mc, id, &r);
  miscache_strings_clear(&r.keywords);
  if (st != MISCACHE_OK) return die("gift rules", st);
  miscache_daily_sales_t d = {.total_amount = 1234.5, .order_count = 7};
  if ((st = miscache_stats_daily_sales_set(mc, "20261124", &d)) != MISCACHE_OK)
    return die("daily sales", st);
  json_t *brands = json_pack("[{s:s}]", "code", "B1");
  st = miscache_master_set(mc, MISCACHE_MASTER_BRANDS, brands);
  json_decref(brands);
  if (st != MISCACHE_OK) return die("brands", st);
  char brand[32];
  snprintf(brand, sizeof brand, "B %lld", (long long)id);
  int64_t n = 0;
  if ((st = miscache_stats_serial_incr(mc, brand, "20261124", 5, &n)) != MISCACHE_OK)
    return die("serial", st);
  puts("written");
  return 0;
}

/* A typed struct read back as JSON: its own members. */
#define TYPED(get, clear, type, ...)                                          \
  do {                                                                        \
    type t_ = {0};                                                            \
    st = get(mc, __VA_ARGS__, &t_);                                           \
    json_t *v_ = NULL;                                                        \
    if (st == MISCACHE_OK) v_ = typed_json(&t_, #type);                       \
    clear(&t_);                                                               \
    return print_json(st, v_);                                                \
  } while (0)

static json_t *strings_json(const miscache_strings_t *s) {
  json_t *a = json_array();
  for (size_t i = 0; i < s->count; i++)
    json_array_append_new(a, json_string(s->items[i]));
  return a;
}

static json_t *typed_json(const void *p, const char *type) {
  if (!strcmp(type, "miscache_session_t")) {
    const miscache_session_t *s = p;
    return json_pack("{s:I,s:s?,s:I,s:I,s:O?,s:s?}", "user_id",
                     (json_int_t)s->user_id, "username", s->username,
                     "dept_id", (json_int_t)s->dept_id, "current_company_id",
                     (json_int_t)s->current_company_id, "permissions",
                     s->permissions, "last_activity", s->last_activity);
  }
  if (!strcmp(type, "miscache_batch_config_t")) {
    const miscache_batch_config_t *c = p;
    return json_pack("{s:b,s:I,s:I,s:o}", "batch_enabled", c->batch_enabled,
                     "batch_hour", (json_int_t)c->batch_hour, "page_size",
                     (json_int_t)c->page_size, "gift_keywords",
                     strings_json(&c->gift_keywords));
  }
  if (!strcmp(type, "miscache_batch_status_t")) {
    const miscache_batch_status_t *s = p;
    return json_pack("{s:s?,s:s?,s:I}", "status", s->status, "batch_id",
                     s->batch_id, "total_pages",
                     (json_int_t)s->progress.total_pages);
  }
  if (!strcmp(type, "miscache_batch_history_t")) {
    const miscache_batch_history_t *h = p;
    return json_pack("{s:s?,s:I}", "status", h->status, "duration_seconds",
                     (json_int_t)h->duration_seconds);
  }
  if (!strcmp(type, "miscache_gift_rules_t")) {
    const miscache_gift_rules_t *r = p;
    return json_pack("{s:b,s:o}", "auto_classify", r->auto_classify,
                     "keywords", strings_json(&r->keywords));
  }
  if (!strcmp(type, "miscache_daily_sales_t")) {
    const miscache_daily_sales_t *d = p;
    return json_pack("{s:f,s:I}", "total_amount", d->total_amount,
                     "order_count", (json_int_t)d->order_count);
  }
  return json_null();
}

static int do_read(int argc, char **argv) {
  if (argc < 1) return 2;
  const char *f = argv[0];
  int64_t id = argc > 1 ? strtoll(argv[1], NULL, 10) : 0;
  miscache_status_t st;
  json_t *v = NULL;
  if (!strcmp(f, "session"))
    TYPED(miscache_session_get, miscache_session_clear, miscache_session_t, id);
  if (!strcmp(f, "batch-config"))
    TYPED(miscache_batch_config_get, miscache_batch_config_clear,
          miscache_batch_config_t, id);
  if (!strcmp(f, "batch-status"))
    TYPED(miscache_batch_status_get, miscache_batch_status_clear,
          miscache_batch_status_t, id);
  if (!strcmp(f, "batch-history") && argc > 2)
    TYPED(miscache_batch_history_get, miscache_batch_history_clear,
          miscache_batch_history_t, id, argv[2]);
  if (!strcmp(f, "gift-rules"))
    TYPED(miscache_gift_rules_get, miscache_gift_rules_clear,
          miscache_gift_rules_t, id);
  if (!strcmp(f, "daily-sales") && argc > 1)
    TYPED(miscache_stats_daily_sales_get, miscache_daily_sales_clear,
          miscache_daily_sales_t, argv[1]);
  if (!strcmp(f, "permissions")) {
    st = miscache_permissions_get(mc, id, &v);
    return print_json(st, v);
  }
  if (!strcmp(f, "brands")) {
    st = miscache_master_get(mc, MISCACHE_MASTER_BRANDS, &v);
    return print_json(st, v);
  }
  if (!strcmp(f, "serial") && argc > 2) {
    int64_t n = 0;
    st = miscache_stats_serial_get(mc, argv[1], argv[2], &n);
    return print_json(st, st == MISCACHE_OK ? json_integer(n) : NULL);
  }
  fprintf(stderr, "c_peer: read: unknown family %s\n", f);
  return 2;
}

/* The logical key (no namespace) of a lock family for id. */
static int lock_key(const char *family, const char *id, char *key,
                    miscache_db_t *db) {
  const miscache_key_family_t *k = miscache_key_family_by_name(family);
  if (!k) return 2;
  miscache_key_family_id_t fid = MISCACHE_KF_SESSION;
  for (int i = 0; i < MISCACHE_KEY_FAMILY_COUNT; i++)
    if (miscache_key_family((miscache_key_family_id_t)i) == k)
      fid = (miscache_key_family_id_t)i;
  const char *ids[1] = {id};
  char full[MISCACHE_KEY_BUFSIZE + 64];
  miscache_status_t st = miscache_family_key(mc, fid, ids, full, sizeof full, NULL);
  if (st != MISCACHE_OK) return die("key", st);
  snprintf(key, MISCACHE_KEY_BUFSIZE, "%s", full + strlen(miscache_namespace(mc)));
  *db = k->db;
  return 0;
}

static int do_lock(const char *family, const char *id, bool hold) {
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_db_t db = MISCACHE_DB_CACHE;
  int rc = lock_key(family, id, key, &db);
  if (rc) return rc;
  miscache_lock_t *lk = NULL;
  miscache_status_t st = miscache_lock_acquire(mc, db, key, 60000, "c_peer",
                                               NULL, &lk);
  if (st == MISCACHE_ERR_LOCKED) return puts("locked"), 0;
  if (st != MISCACHE_OK) return die("lock", st);
  puts("taken");
  if (!hold && (st = miscache_lock_release(mc, lk)) != MISCACHE_OK)
    return die("release", st);
  miscache_lock_free(lk);
  return 0;
}

static int do_batch_lock(const char *company, bool hold) {
  miscache_lock_t *lk = NULL;
  miscache_status_t st = miscache_batch_lock_acquire(
      mc, strtoll(company, NULL, 10), "c_peer", "c-batch", &lk);
  if (st == MISCACHE_ERR_LOCKED) return puts("locked"), 0;
  if (st != MISCACHE_OK) return die("batch lock", st);
  printf("taken %lld\n", (long long)miscache_lock_fence(lk));
  if (!hold && (st = miscache_lock_release(mc, lk)) != MISCACHE_OK)
    return die("release", st);
  miscache_lock_free(lk);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "c_peer: open: %s\n", err);
    return 1;
  }
  int rc = 2;
  const char *cmd = argv[1];
  if (!strcmp(cmd, "write") && argc == 3) rc = do_write(strtoll(argv[2], NULL, 10));
  else if (!strcmp(cmd, "read")) rc = do_read(argc - 2, argv + 2);
  else if (!strcmp(cmd, "lock-try") && argc == 4) rc = do_lock(argv[2], argv[3], false);
  else if (!strcmp(cmd, "lock-hold") && argc == 4) rc = do_lock(argv[2], argv[3], true);
  else if (!strcmp(cmd, "batch-lock-try") && argc == 3) rc = do_batch_lock(argv[2], false);
  else if (!strcmp(cmd, "batch-lock-hold") && argc == 3) rc = do_batch_lock(argv[2], true);
  miscache_free(mc);
  return rc;
}

/*
 * miscache_demo: the core of libmiscache end to end against the server in
 * MISCACHE_URL (scripts/demo.sh starts a private one).
 *
 *   session write/read with its TTL, cache-aside of master data, precise
 *   pattern invalidation, and the batch lock refusing a second runner.
 */
#include <stdio.h>
#include <stdlib.h>

#include <miscache/miscache.h>

#define CHECK(call)                                                            \
  do {                                                                         \
    miscache_status_t st_ = (call);                                            \
    if (st_ != MISCACHE_OK) {                                                  \
      fprintf(stderr, "%s failed: %s (%s)\n", #call, miscache_strerror(st_),   \
              miscache_errmsg(mc));                                            \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* Stands in for the ERP database: called only on a cache miss. */
static miscache_status_t load_brands(void *userdata, const char *key,
                                     json_t **out) {
  int *calls = userdata;
  (*calls)++;
  printf("  loader called for %s (system of record)\n", key);
  *out = json_pack("[{s:i,s:s,s:s},{s:i,s:s,s:s},{s:i,s:s,s:s}]", "id", 1,
                   "name", "\xeb\xa6\xac\xec\x95\x88", "code", "REAN", "id", 2,
                   "name", "\xec\xa1\xb0\xec\x9d\xb4", "code", "JOY", "id", 3,
                   "name", "\xeb\x89\xb4\xeb\x82\x98", "code", "NUNA");
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

int main(void) {
  /* everything from MISCACHE_URL (scripts/demo-steps.sh adds
   * ?namespace=demo:): nothing is set in code */
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 1;
  }
  printf("libmiscache %s connected\n", miscache_version());

  /* 1. a session, JSON readable from any language, with the session TTL */
  char key[MISCACHE_KEY_BUFSIZE];
  CHECK(miscache_key(key, sizeof key, "session:user", "123", NULL));
  json_t *session = json_pack(
      "{s:i,s:s,s:i,s:i,s:{},s:s}", "user_id", 123, "username", "admin",
      "dept_id", 1, "current_company_id", 1, "permissions", "last_activity",
      "2026-11-24T10:00:00Z");
  CHECK(miscache_set(mc, MISCACHE_DB_SESSION, key, session,
                     MISCACHE_TTL_SESSION));
  json_decref(session);
  json_t *back = NULL;
  CHECK(miscache_get(mc, MISCACHE_DB_SESSION, key, &back));
  char *text = json_dumps(back, JSON_COMPACT);
  int64_t ttl = 0;
  CHECK(miscache_ttl_ms(mc, MISCACHE_DB_SESSION, key, &ttl));
  printf("1. %s (db %d) = %s, TTL %lld s\n", key,
         miscache_db_number(mc, MISCACHE_DB_SESSION), text,
         (long long)(ttl / 1000));
  free(text);
  json_decref(back);

  /* 2. cache-aside: the loader runs once, then the cache answers */
  int calls = 0;
  for (int i = 0; i < 3; i++) {
    json_t *brands = NULL;
    miscache_source_t src;
    CHECK(miscache_master_get_or_load(mc, MISCACHE_MASTER_BRANDS, load_brands,
                                      &calls, &brands, &src));
    printf("2. master:brands read %d: %zu brands from %s\n", i + 1,
           json_array_size(brands),
           src == MISCACHE_SOURCE_CACHE ? "cache" : "loader");
    json_decref(brands);
  }

  /* 3. invalidation: company 1's classifications go, company 10's stay */
  const char *companies[] = {"1", "10"};
  const char *products[] = {"P001", "P*", "GIFT-9"};
  json_t *cls = json_pack("{s:s,s:s,s:b}", "product_type", "GIFT", "gift_type",
                          "KEYWORD", "is_revenue", 0);
  for (int c = 0; c < 2; c++)
    for (int p = 0; p < 3; p++) {
      CHECK(miscache_key(key, sizeof key, "gift:classification", products[p],
                         companies[c], NULL));
      CHECK(miscache_set(mc, MISCACHE_DB_GIFT, key, cls,
                         MISCACHE_TTL_GIFT_CLASSIFICATION));
    }
  json_decref(cls);
  const char *ids[] = {NULL, "1"};
  char pattern[MISCACHE_KEY_BUFSIZE];
  CHECK(miscache_pattern_build(pattern, sizeof pattern, "gift:classification",
                               2, ids, NULL));
  uint64_t removed = 0;
  CHECK(miscache_invalidate(mc, MISCACHE_DB_GIFT, pattern, &removed));
  printf("3. invalidate %s: %llu keys removed (company 10 keeps its 3)\n",
         pattern, (unsigned long long)removed);

  /* 4. the batch lock: a second runner is refused; release only if ours */
  miscache_lock_t *lock = NULL, *second = NULL;
  CHECK(miscache_lock_acquire(mc, MISCACHE_DB_BATCH, "batch:lock:1",
                              30 * 60 * 1000, "demo-runner", "20261124-1",
                              &lock));
  printf("4. batch lock taken, token %s\n", miscache_lock_token(lock));
  st = miscache_lock_acquire(mc, MISCACHE_DB_BATCH, "batch:lock:1", 1000,
                             "second-runner", NULL, &second);
  printf("   second runner: %s (%s)\n", miscache_strerror(st),
         miscache_errmsg(mc));
  CHECK(miscache_lock_release(mc, lock));
  printf("   released by its owner\n");
  miscache_lock_free(lock);

  /* 5. statistics and job status */
  int64_t serial = 0;
  for (int i = 0; i < 3; i++)
    CHECK(miscache_stats_serial_incr(mc, "REAN", "20261124", 1, &serial));
  miscache_daily_sales_t sales = {.total_amount = 1000000, .order_count = 150};
  sales.gift_stats.gift_order_count = 85;
  sales.gift_stats.gift_attachment_rate = 56.7;
  CHECK(miscache_stats_daily_sales_set(mc, "20261124", &sales));
  CHECK(miscache_temp_upload_create(mc, "upload-1", 1000));
  CHECK(miscache_temp_upload_advance(mc, "upload-1", 400, 2));
  miscache_temp_upload_t up;
  CHECK(miscache_temp_upload_get(mc, "upload-1", &up));
  printf("5. serial count REAN today: %lld; upload-1 %s %lld/%lld rows, "
         "%lld errors\n",
         (long long)serial, up.status, (long long)up.processed_rows,
         (long long)up.total_rows, (long long)up.error_count);
  miscache_temp_upload_clear(&up);

  miscache_counters_t c;
  CHECK(miscache_counters_total(mc, &c));
  printf("counters: %llu hits, %llu misses, %llu errors\n",
         (unsigned long long)c.hits, (unsigned long long)c.misses,
         (unsigned long long)c.errors);
  miscache_free(mc);
  return 0;
}

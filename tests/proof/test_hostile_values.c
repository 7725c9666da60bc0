/* Hostile values under the library's own keys, as another client (or an
 * attacker with write access) might leave them: other Redis types, a 10 MB
 * string, invalid UTF-8, JSON nested 100,000 deep. Every reader gives an
 * error status (ERR_DECODE), clears its output, names the key, counts an
 * error, and leaves both the stored value and the handle intact. The gift
 * classifier, which is fail-open, recomputes instead and overwrites. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

/* ---- the hostile values -------------------------------------------------- */
enum { BIG = 10 * 1024 * 1024, DEEP = 100000 };

typedef struct {
  const char *name;
  const char *redis_type; /* "hash", "list", "set" or NULL for a string */
  char *bytes;
  size_t len;
} hostile_t;

static hostile_t hostile[8];
static size_t n_hostile;

static void add(const char *name, const char *type, char *bytes, size_t len) {
  hostile[n_hostile++] = (hostile_t){name, type, bytes, len};
}

static char *dup_bytes(const char *s, size_t len) {
  char *p = malloc(len + 1);
  assert_non_null(p);
  memcpy(p, s, len);
  p[len] = 0;
  return p;
}

static void free_hostile(void);

static void make_hostile(void) {
  free_hostile(); /* a failed test longjmps past its own free_hostile() */
  add("hash", "hash", NULL, 0);
  add("list", "list", NULL, 0);
  char *big = malloc(BIG);
  assert_non_null(big);
  memset(big, 'x', BIG);
  add("10 MB of text", NULL, big, BIG);
  /* 10 MB that starts like the right object but never closes */
  char *big_obj = malloc(BIG);
  assert_non_null(big_obj);
  memset(big_obj, ' ', BIG);
  memcpy(big_obj, "{\"user_id\":1,\"x\":\"", 19);
  add("10 MB unterminated object", NULL, big_obj, BIG);
  const char utf[] =
      "{\"user_id\":1,\"username\":\"\xc3\x28\xff\",\"status\":\"\xfe\"}";
  add("invalid UTF-8 in strings", NULL, dup_bytes(utf, sizeof utf - 1),
      sizeof utf - 1);
  const char raw[] = "\xff\xfe\x00\x01{}";
  add("binary bytes", NULL, dup_bytes(raw, sizeof raw - 1), sizeof raw - 1);
  /* {"user_id":1,"permissions":[[[[ ... 100,000 ... ]]]]} */
  size_t dl = 2 * DEEP + 64;
  char *deep = malloc(dl);
  assert_non_null(deep);
  size_t n = (size_t)sprintf(deep, "{\"user_id\":1,\"permissions\":");
  memset(deep + n, '[', DEEP);
  memset(deep + n + DEEP, ']', DEEP);
  n += 2 * DEEP;
  deep[n++] = '}';
  add("JSON nested 100,000 deep", NULL, deep, n);
}

static void free_hostile(void) {
  for (size_t i = 0; i < n_hostile; i++)
    free(hostile[i].bytes);
  n_hostile = 0;
}

/* The 10 MB values take a few hundred ms to read and reject under the
 * sanitizers on a busy machine: the default 1 s whole-call deadline could
 * then answer ERR_UNAVAILABLE, which is right for the library but not what
 * this test is about. */
static miscache_t *open_patient(void) {
  miscache_options_t *o = miscache_options_new();
  assert_non_null(o);
  assert_int_equal(miscache_options_set_command_timeout(o, 30000),
                   MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  return mc;
}

/* ---- the readers -----------------------------------------------------------
 */
typedef miscache_status_t (*reader_fn)(miscache_t *mc);

#define JSON_READER(fname, call)                                               \
  static miscache_status_t fname(miscache_t *mc) {                             \
    json_t *out = (json_t *)&out;                                              \
    miscache_status_t st = call;                                               \
    if (out) fail_msg(#fname ": output not cleared");                          \
    return st;                                                                 \
  }

JSON_READER(r_permissions, miscache_permissions_get(mc, 5, &out))
JSON_READER(r_brands, miscache_master_get(mc, MISCACHE_MASTER_BRANDS, &out))
JSON_READER(r_products, miscache_master_products_get(mc, 3, &out))
JSON_READER(r_monthly, miscache_stats_monthly_revenue_get(mc, "202611", &out))
JSON_READER(r_report, miscache_report_get(mc, "r1", &out))
JSON_READER(r_analytics, miscache_gift_analytics_get(mc, 1, "20261124", &out))
JSON_READER(r_lock_info,
            miscache_lock_info(mc, MISCACHE_DB_BATCH, "batch:lock:1", &out))

#define STRUCT_READER(fname, type, call, clear, field)                         \
  static miscache_status_t fname(miscache_t *mc) {                             \
    type out;                                                                  \
    memset(&out, 0x5a, sizeof out);                                            \
    miscache_status_t st = call;                                               \
    if (out.field) fail_msg(#fname ": output not cleared");                    \
    clear(&out);                                                               \
    return st;                                                                 \
  }

STRUCT_READER(r_session, miscache_session_t, miscache_session_get(mc, 5, &out),
              miscache_session_clear, username)
STRUCT_READER(r_daily, miscache_daily_sales_t,
              miscache_stats_daily_sales_get(mc, "20261124", &out),
              miscache_daily_sales_clear, brand_stats)
STRUCT_READER(r_upload, miscache_upload_t, miscache_upload_get(mc, "u1", &out),
              miscache_upload_clear, status)
STRUCT_READER(r_batch_config, miscache_batch_config_t,
              miscache_batch_config_get(mc, 1, &out),
              miscache_batch_config_clear, last_updated)
STRUCT_READER(r_batch_status, miscache_batch_status_t,
              miscache_batch_status_get(mc, 1, &out),
              miscache_batch_status_clear, status)
STRUCT_READER(r_batch_history, miscache_batch_history_t,
              miscache_batch_history_get(mc, 1, "20261124", &out),
              miscache_batch_history_clear, status)
STRUCT_READER(r_gift_rules, miscache_gift_rules_t,
              miscache_gift_rules_get(mc, 1, &out), miscache_gift_rules_clear,
              last_updated)

static miscache_status_t r_gift_master(miscache_t *mc) {
  miscache_gift_master_entry_t *e = (miscache_gift_master_entry_t *)&e;
  size_t n = 99;
  miscache_status_t st = miscache_gift_master_get(mc, 1, &e, &n);
  if (e || n) fail_msg("gift master: output not cleared");
  return st;
}

static miscache_status_t r_serial(miscache_t *mc) {
  int64_t v = 42;
  miscache_status_t st = miscache_stats_serial_get(mc, "REAN", "20261124", &v);
  if (st != MISCACHE_OK && v != 0) fail_msg("serial: output not cleared");
  return st;
}

static miscache_status_t r_generic(miscache_t *mc) {
  json_t *out = (json_t *)&out;
  miscache_status_t st =
      miscache_get(mc, MISCACHE_DB_SESSION, "session:user:5", &out);
  if (out) fail_msg("get: output not cleared");
  return st;
}

static const struct {
  const char *name;
  miscache_db_t db;
  const char *key;
  reader_fn read;
} readers[] = {
    {"miscache_get", MISCACHE_DB_SESSION, "session:user:5", r_generic},
    {"session", MISCACHE_DB_SESSION, "session:user:5", r_session},
    {"permissions", MISCACHE_DB_CACHE, "permissions:user:5", r_permissions},
    {"master brands", MISCACHE_DB_CACHE, "master:brands", r_brands},
    {"master products", MISCACHE_DB_CACHE, "master:products:category:3",
     r_products},
    {"daily sales", MISCACHE_DB_CACHE, "stats:daily_sales:20261124", r_daily},
    {"monthly revenue", MISCACHE_DB_CACHE, "stats:monthly_revenue:202611",
     r_monthly},
    {"serial count", MISCACHE_DB_CACHE, "stats:serial_count:REAN:20261124",
     r_serial},
    {"upload", MISCACHE_DB_TEMP, "temp:excel_upload:u1", r_upload},
    {"report", MISCACHE_DB_TEMP, "temp:report:r1", r_report},
    {"batch config", MISCACHE_DB_BATCH, "batch:config:1", r_batch_config},
    {"batch status", MISCACHE_DB_BATCH, "batch:status:1", r_batch_status},
    {"batch history", MISCACHE_DB_BATCH, "batch:history:1:20261124",
     r_batch_history},
    {"lock info", MISCACHE_DB_BATCH, "batch:lock:1", r_lock_info},
    {"gift rules", MISCACHE_DB_GIFT, "gift:rules:1", r_gift_rules},
    {"gift master", MISCACHE_DB_GIFT, "gift:master:1", r_gift_master},
    {"gift analytics", MISCACHE_DB_GIFT, "gift:analytics:1:20261124",
     r_analytics},
};
#define N_READERS (sizeof readers / sizeof readers[0])

/* Store a hostile value raw under the handle's full key. */
static void plant(miscache_t *mc, miscache_db_t db, const char *key,
                  const hostile_t *h) {
  char full[256];
  snprintf(full, sizeof full, "%s%s", miscache_namespace(mc), key);
  mt_raw_int(mt_rc, miscache_db_number(mc, db), "DEL %s", full);
  redisReply *r;
  if (!h->redis_type)
    r = redisCommand(mt_rc, "SET %s %b", full, h->bytes, h->len);
  else if (strcmp(h->redis_type, "hash") == 0)
    r = redisCommand(mt_rc, "HSET %s user_id 1", full);
  else
    r = redisCommand(mt_rc, "RPUSH %s {\"user_id\":1}", full);
  assert_non_null(r);
  assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
  freeReplyObject(r);
}

/* The stored value is still there, unchanged in type and length. */
static void assert_untouched(miscache_t *mc, miscache_db_t db, const char *key,
                             const hostile_t *h) {
  if (h->redis_type) {
    assert_int_equal(mt_raw_exists_in(mc, miscache_db_number(mc, db), key), 1);
    return;
  }
  char full[256];
  snprintf(full, sizeof full, "%s%s", miscache_namespace(mc), key);
  assert_int_equal(
      mt_raw_int(mt_rc, miscache_db_number(mc, db), "STRLEN %s", full),
      (long long)h->len);
}

static void test_every_reader_rejects_every_hostile_value(void **state) {
  (void)state;
  make_hostile();
  miscache_t *mc = open_patient();
  unsigned checked = 0;
  for (size_t r = 0; r < N_READERS; r++) {
    for (size_t h = 0; h < n_hostile; h++) {
      plant(mc, readers[r].db, readers[r].key, &hostile[h]);
      miscache_counters_t before, after;
      miscache_counters_get(mc, readers[r].db, &before);
      miscache_status_t st = readers[r].read(mc);
      miscache_counters_get(mc, readers[r].db, &after);
      if (st != MISCACHE_ERR_DECODE)
        fail_msg("%s on %s: status %s, expected ERR_DECODE", readers[r].name,
                 hostile[h].name, miscache_strerror(st));
      if (!strstr(miscache_errmsg(mc), readers[r].key) &&
          !strstr(miscache_errmsg(mc), "WRONGTYPE"))
        fail_msg("%s on %s: message does not say what failed: %s",
                 readers[r].name, hostile[h].name, miscache_errmsg(mc));
      assert_int_equal(after.hits, before.hits);
      assert_true(after.errors > before.errors);
      assert_untouched(mc, readers[r].db, readers[r].key, &hostile[h]);
      assert_int_equal(miscache_ping(mc), MISCACHE_OK);
      checked++;
    }
  }
  printf("  %u reader x value pairs, every one ERR_DECODE\n", checked);
  miscache_free(mc);
  free_hostile();
}

/* The fail-open classifier answers from its engine and replaces the bad
 * cached value with a good one. */
static void test_classifier_replaces_hostile_value(void **state) {
  (void)state;
  make_hostile();
  miscache_t *mc = open_patient();
  miscache_gift_rules_t rules = {.auto_classify = true,
                                 .zero_price_rule = true};
  miscache_gift_engine_t *e = NULL;
  assert_int_equal(miscache_gift_engine_new(&rules, NULL, 0, &e), MISCACHE_OK);
  miscache_gift_product_t p = {
      .product_code = "P-1", .product_name = "free sample", .supply_price = 0.0};
  miscache_gift_classification_t want;
  assert_int_equal(miscache_gift_engine_classify(e, &p, &want), MISCACHE_OK);
  for (size_t h = 0; h < n_hostile; h++) {
    plant(mc, MISCACHE_DB_GIFT, "gift:classification:P-1:1", &hostile[h]);
    miscache_gift_classification_t got;
    miscache_source_t src = MISCACHE_SOURCE_CACHE;
    assert_int_equal(miscache_gift_classify(mc, 1, e, &p, &got, &src),
                     MISCACHE_OK);
    assert_int_not_equal(src, MISCACHE_SOURCE_CACHE);
    assert_int_equal(got.is_revenue, want.is_revenue);
    assert_string_equal(got.product_type, want.product_type);
    miscache_gift_classification_clear(&got);
    /* and the next read is a clean hit */
    assert_int_equal(miscache_gift_classify(mc, 1, e, &p, &got, &src),
                     MISCACHE_OK);
    assert_int_equal(src, MISCACHE_SOURCE_CACHE);
    assert_int_equal(got.is_revenue, want.is_revenue);
    miscache_gift_classification_clear(&got);
  }
  miscache_gift_classification_clear(&want);
  miscache_gift_engine_free(e);
  miscache_free(mc);
  free_hostile();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_reader_rejects_every_hostile_value),
      cmocka_unit_test(test_classifier_replaces_hostile_value),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

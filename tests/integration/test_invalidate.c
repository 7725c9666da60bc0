/* Pattern invalidation: precision, volume, namespace and db isolation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static void put(miscache_t *mc, miscache_db_t db, const char *prefix,
                const char *a, const char *b) {
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = b ? miscache_key(key, sizeof key, prefix, a, b, NULL)
                           : miscache_key(key, sizeof key, prefix, a, NULL);
  assert_int_equal(st, MISCACHE_OK);
  json_t *v = json_object();
  assert_int_equal(miscache_set(mc, db, key, v, MISCACHE_TTL_GIFT_ANALYTICS),
                   MISCACHE_OK);
  json_decref(v);
}

static bool has(miscache_t *mc, miscache_db_t db, const char *prefix,
                const char *a, const char *b) {
  char key[MISCACHE_KEY_BUFSIZE];
  if (b)
    miscache_key(key, sizeof key, prefix, a, b, NULL);
  else
    miscache_key(key, sizeof key, prefix, a, NULL);
  bool e = false;
  assert_int_equal(miscache_exists(mc, db, key, &e), MISCACHE_OK);
  return e;
}

static uint64_t invalidate(miscache_t *mc, miscache_db_t db, const char *prefix,
                           const char *a, const char *b) {
  const char *ids[2] = {a, b};
  char pat[MISCACHE_KEY_BUFSIZE];
  assert_int_equal(miscache_pattern_build(pat, sizeof pat, prefix, 2, ids, NULL),
                   MISCACHE_OK);
  uint64_t n = 0;
  assert_int_equal(miscache_invalidate(mc, db, pat, &n), MISCACHE_OK);
  return n;
}

/* Company 1 never takes 10 or 11 with it. */
static void test_company_precision(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  const char *companies[] = {"1", "10", "11", "21"};
  const char *products[] = {"P001", "P002", "1"};
  for (int c = 0; c < 4; c++) {
    put(mc, MISCACHE_DB_GIFT, "gift:analytics", companies[c], "20261124");
    put(mc, MISCACHE_DB_GIFT, "gift:analytics", companies[c], "20261123");
    for (int p = 0; p < 3; p++)
      put(mc, MISCACHE_DB_GIFT, "gift:classification", products[p],
          companies[c]);
  }
  assert_int_equal(
      invalidate(mc, MISCACHE_DB_GIFT, "gift:classification", NULL, "1"), 3);
  assert_int_equal(invalidate(mc, MISCACHE_DB_GIFT, "gift:analytics", "1", NULL),
                   2);
  for (int c = 0; c < 4; c++) {
    bool gone = c == 0;
    assert_int_equal(has(mc, MISCACHE_DB_GIFT, "gift:analytics", companies[c],
                         "20261124"),
                     !gone);
    for (int p = 0; p < 3; p++)
      assert_int_equal(has(mc, MISCACHE_DB_GIFT, "gift:classification",
                           products[p], companies[c]),
                       !gone);
  }
  miscache_free(mc);
}

/* A product code holding glob characters matches only itself. */
static void test_glob_product_code(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  const char *codes[] = {"P*", "P1", "PX", "P?", "P[1]", "P\\", "Q*"};
  for (int i = 0; i < 7; i++) {
    put(mc, MISCACHE_DB_GIFT, "gift:classification", codes[i], "1");
    put(mc, MISCACHE_DB_GIFT, "gift:classification", codes[i], "2");
  }
  assert_int_equal(
      invalidate(mc, MISCACHE_DB_GIFT, "gift:classification", "P*", NULL), 2);
  assert_int_equal(
      invalidate(mc, MISCACHE_DB_GIFT, "gift:classification", "P?", NULL), 2);
  assert_int_equal(
      invalidate(mc, MISCACHE_DB_GIFT, "gift:classification", "P[1]", NULL), 2);
  for (int i = 0; i < 7; i++) {
    bool gone = i == 0 || i == 3 || i == 4;
    assert_int_equal(
        has(mc, MISCACHE_DB_GIFT, "gift:classification", codes[i], "1"), !gone);
    assert_int_equal(
        has(mc, MISCACHE_DB_GIFT, "gift:classification", codes[i], "2"), !gone);
  }
  miscache_free(mc);
}

static void test_namespace_and_db_isolation(void **state) {
  (void)state;
  miscache_t *a = mt_open(NULL);
  miscache_t *b = mt_open(NULL);
  put(a, MISCACHE_DB_BATCH, "batch:status", "1", NULL);
  put(b, MISCACHE_DB_BATCH, "batch:status", "1", NULL);
  /* a cluster has one db: there the logical dbs share it */
  if (!mt_is_cluster()) put(a, MISCACHE_DB_CACHE, "batch:status", "1", NULL);
  uint64_t n = 0;
  assert_int_equal(miscache_invalidate(a, MISCACHE_DB_BATCH, "batch:*", &n),
                   MISCACHE_OK);
  assert_int_equal(n, 1);
  assert_false(has(a, MISCACHE_DB_BATCH, "batch:status", "1", NULL));
  assert_true(has(b, MISCACHE_DB_BATCH, "batch:status", "1", NULL));
  if (!mt_is_cluster())
    assert_true(has(a, MISCACHE_DB_CACHE, "batch:status", "1", NULL));
  miscache_free(a);
  miscache_free(b);
}

static int count_cb(void *ud, const char *key, size_t len) {
  int *n = ud;
  assert_int_equal(strncmp(key, "stats:daily_sales:", 18), 0);
  assert_int_equal(strlen(key), len);
  (*n)++;
  return 0;
}

static int stop_cb(void *ud, const char *key, size_t len) {
  (void)key;
  (void)len;
  int *n = ud;
  return ++(*n) >= 3;
}

/* 100,000 matching keys among others: all found, counted once, others kept. */
static void test_volume_100k(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  enum { MATCH = 100000, OTHER = 20000, BATCH = 1000 };
  static char kb[BATCH][48];
  const char *keys[BATCH];
  const json_t *vals[BATCH];
  json_t *v = json_pack("{s:i}", "total_amount", 1);
  for (int i = 0; i < BATCH; i++) {
    keys[i] = kb[i];
    vals[i] = v;
  }
  for (int base = 0; base < MATCH + OTHER; base += BATCH) {
    for (int i = 0; i < BATCH; i++) {
      int id = base + i;
      if (id < MATCH)
        snprintf(kb[i], sizeof kb[i], "stats:daily_sales:%d", id);
      else
        snprintf(kb[i], sizeof kb[i], "stats:monthly_revenue:%d", id);
    }
    assert_int_equal(miscache_mset(mc, MISCACHE_DB_CACHE, BATCH, keys, vals,
                                   MISCACHE_TTL_STATISTICS),
                     MISCACHE_OK);
  }
  json_decref(v);
  int seen = 0;
  uint64_t visited = 0;
  assert_int_equal(miscache_scan(mc, MISCACHE_DB_CACHE, "stats:daily_sales:*",
                                 count_cb, &seen, &visited),
                   MISCACHE_OK);
  assert_true(seen >= MATCH); /* SCAN may repeat a key, never skip one */
  seen = 0;
  assert_int_equal(miscache_scan(mc, MISCACHE_DB_CACHE, "stats:*", stop_cb,
                                 &seen, NULL),
                   MISCACHE_OK);
  assert_int_equal(seen, 3);

  uint64_t n = 0;
  assert_int_equal(
      miscache_invalidate(mc, MISCACHE_DB_CACHE, "stats:daily_sales:*", &n),
      MISCACHE_OK);
  assert_int_equal(n, MATCH);
  char pat[96];
  snprintf(pat, sizeof pat, "%sstats:*", miscache_namespace(mc));
  /* count what is left with a raw SCAN (of every node of a cluster) */
  long long left = 0;
  const mt_cluster_t *cl = mt_cluster_active;
  for (int i = 0; i < (cl ? cl->n : 1); i++) {
    redisContext *c = cl ? mt_raw(&cl->node[i], NULL) : mt_rc;
    redisReply *r = redisCommand(c, "SELECT %d", cl ? 0 : 1);
    freeReplyObject(r);
    char cursor[32] = "0";
    do {
      r = redisCommand(c, "SCAN %s MATCH %s COUNT 5000", cursor, pat);
      assert_int_equal(r->type, REDIS_REPLY_ARRAY);
      snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
      left += (long long)r->element[1]->elements;
      freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (cl) redisFree(c);
  }
  assert_int_equal(left, OTHER);
  /* again: nothing left to delete */
  assert_int_equal(
      miscache_invalidate(mc, MISCACHE_DB_CACHE, "stats:daily_sales:*", &n),
      MISCACHE_OK);
  assert_int_equal(n, 0);
  miscache_free(mc);
}

/* Small SCAN COUNT and UNLINK batches give the same count. */
static void test_small_batches(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_scan(o, 7, 3), MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  char id[16];
  for (int i = 0; i < 500; i++) {
    snprintf(id, sizeof id, "%d", i);
    put(mc, MISCACHE_DB_TEMP, "temp:excel_upload", id, NULL);
  }
  uint64_t n = 0;
  assert_int_equal(miscache_invalidate(mc, MISCACHE_DB_TEMP, "temp:*", &n),
                   MISCACHE_OK);
  assert_int_equal(n, 500);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_company_precision),
      cmocka_unit_test(test_glob_product_code),
      cmocka_unit_test(test_namespace_and_db_isolation),
      cmocka_unit_test(test_volume_100k),
      cmocka_unit_test(test_small_batches),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

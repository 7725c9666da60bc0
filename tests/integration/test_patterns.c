/* Write-through, write-behind and background refresh against a real
 * server: a failing writer caches nothing; a cache write that fails leaves
 * the key deleted or pending; write-behind's value and queue entry are both
 * there or both absent however the producer is SIGKILLed; the flush worker
 * coalesces, retries and dead-letters; refresh overwrites in place while a
 * reader never sees a miss. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

typedef struct {
  int calls;
  bool fail;
  char last_key[64];
  json_int_t last_value;
} sor_t;

static miscache_status_t sor_write(void *ud, miscache_db_t db, const char *key,
                                   const json_t *value, char *err,
                                   size_t errlen) {
  (void)db;
  sor_t *s = ud;
  s->calls++;
  if (s->fail) {
    snprintf(err, errlen, "database is read-only");
    return MISCACHE_ERR_UNAVAILABLE;
  }
  snprintf(s->last_key, sizeof s->last_key, "%s", key);
  s->last_value = json_integer_value(json_object_get(value, "v"));
  return MISCACHE_OK;
}

static void test_write_through(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_pack("{s:i}", "v", 1);
  sor_t s = {.fail = true};
  assert_int_equal(miscache_write_through(mc, MISCACHE_DB_CACHE,
                                          "master:brands", v,
                                          MISCACHE_TTL_MASTER_DATA, false,
                                          sor_write, &s),
                   MISCACHE_ERR_WRITER);
  assert_non_null(strstr(miscache_errmsg(mc), "read-only"));
  assert_null(mt_raw_get(mc, MISCACHE_DB_CACHE, "master:brands"));
  s.fail = false;
  assert_int_equal(miscache_write_through(mc, MISCACHE_DB_CACHE,
                                          "master:brands", v,
                                          MISCACHE_TTL_MASTER_DATA, false,
                                          sor_write, &s),
                   MISCACHE_OK);
  char *raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "master:brands");
  assert_string_equal(raw, "{\"v\":1}");
  free(raw);
  long long p = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "master:brands");
  assert_true(p > 21500000 && p <= 21600000);
  /* invalidate instead of storing */
  assert_int_equal(miscache_write_through(mc, MISCACHE_DB_CACHE,
                                          "master:brands", v,
                                          MISCACHE_TTL_MASTER_DATA, true,
                                          sor_write, &s),
                   MISCACHE_OK);
  assert_null(mt_raw_get(mc, MISCACHE_DB_CACHE, "master:brands"));
  assert_int_equal(s.calls, 3);
  /* the cache cannot take writes: the value is not left behind */
  if (!mt_is_cluster()) {
    miscache_options_t *o = miscache_options_new();
    miscache_options_set_command_timeout(o, 150);
    miscache_t *slow = mt_open(o);
    miscache_options_free(o);
    mt_raw_set(slow, MISCACHE_DB_CACHE, "master:departments", "{\"v\":0}");
    mt_raw_cmd("CLIENT PAUSE 600 WRITE");
    json_t *v2 = json_pack("{s:i}", "v", 2);
    assert_int_equal(miscache_write_through(slow, MISCACHE_DB_CACHE,
                                            "master:departments", v2,
                                            MISCACHE_TTL_MASTER_DATA, false,
                                            sor_write, &s),
                     MISCACHE_ERR_UNAVAILABLE);
    assert_non_null(strstr(miscache_errmsg(slow), "pending"));
    assert_int_equal(miscache_pending_invalidations(slow), 1);
    mt_sleep_ms(700);
    /* the next call replays the delete first */
    assert_int_equal(miscache_ping(slow), MISCACHE_OK);
    assert_int_equal(miscache_pending_invalidations(slow), 0);
    assert_null(mt_raw_get(slow, MISCACHE_DB_CACHE, "master:departments"));
    json_decref(v2);
    miscache_free(slow);
  }
  json_decref(v);
  miscache_free(mc);
}

/* ---- write-behind: all or nothing under SIGKILL ---------------------------- */

static void producer(const char *ns, int round) {
  miscache_t *mc = mt_open_in(NULL, ns);
  if (!mc) mt_child_exit(2);
  for (int i = 0;; i++) {
    char key[64];
    snprintf(key, sizeof key, "stats:serial_count:R%d:%d", round, i);
    json_t *v = json_pack("{s:i}", "v", i);
    miscache_write_behind(mc, MISCACHE_DB_CACHE, key, v,
                          MISCACHE_TTL_SERIAL_COUNT, "wb", false);
    json_decref(v);
  }
}

static void test_write_behind_atomic(void **state) {
  (void)state;
  if (mt_is_cluster()) { /* refused there, clearly */
    miscache_t *mc = mt_open(NULL);
    json_t *v = json_integer(1);
    assert_int_equal(miscache_write_behind(mc, MISCACHE_DB_CACHE,
                                           "stats:serial_count:X:1", v,
                                           MISCACHE_TTL_SERIAL_COUNT, "wb",
                                           false),
                     MISCACHE_ERR_INVALID);
    assert_non_null(strstr(miscache_errmsg(mc), "Cluster"));
    json_decref(v);
    miscache_free(mc);
    return;
  }
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  miscache_t *mc = mt_open_in(NULL, ns);
  assert_non_null(mc);
  long both = 0, checked_rounds = 0;
  for (int round = 0; round < 25; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) producer(ns, round);
    /* let it write a few (slow under valgrind), then kill it at a moment
     * that varies from round to round */
    char qk[96];
    snprintf(qk, sizeof qk, "%squeue:{wb}", ns);
    long long before = mt_raw_int(mt_rc, 3, "XLEN %s", qk);
    for (int w = 0; w < 500 && mt_raw_int(mt_rc, 3, "XLEN %s", qk) < before + 3;
         w++)
      mt_sleep_ms(10);
    mt_sleep_ms((round * 7) % 11);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    checked_rounds++;
  }
  /* every value in the cache has its queue entry, and every entry its
   * value: gather the entries' keys, then compare with the values */
  static char seen[25][20000];
  memset(seen, 0, sizeof seen);
  miscache_queue_msg_t m[1000];
  size_t got = 0;
  long entries = 0;
  do {
    assert_int_equal(
        miscache_queue_pull(mc, "wb", "check", "c", 1000, 0, m, &got),
        MISCACHE_OK);
    for (size_t i = 0; i < got; i++) {
      const char *k = json_string_value(json_object_get(m[i].body, "key"));
      int r, n;
      assert_int_equal(sscanf(k, "stats:serial_count:R%d:%d", &r, &n), 2);
      assert_true(r < 25 && n < 20000);
      seen[r][n] = 1;
      entries++;
      miscache_queue_msg_clear(&m[i]);
    }
  } while (got);
  long values = 0, orphans = 0;
  for (int r = 0; r < 25; r++)
    for (int n = 0; n < 20000; n++) {
      char key[64];
      snprintf(key, sizeof key, "stats:serial_count:R%d:%d", r, n);
      bool exists = false;
      if (!seen[r][n]) {
        /* past the last entry of the round: a value here is an orphan */
        if (n > 0 && !seen[r][n - 1]) break;
      }
      assert_int_equal(miscache_exists(mc, MISCACHE_DB_CACHE, key, &exists),
                       MISCACHE_OK);
      values += exists;
      if (exists != (bool)seen[r][n]) orphans++;
      if (exists && seen[r][n]) both++;
    }
  printf("  %ld producers SIGKILLed mid-loop: %ld queue entries, %ld cached "
         "values, %ld with only one of the two\n",
         checked_rounds, entries, values, orphans);
  assert_int_equal(orphans, 0);
  assert_int_equal(both, entries);
  assert_true(entries >= 25 * 3);
  miscache_free(mc);
}

/* ---- the flush worker --------------------------------------------------------- */

static void test_flush_coalesce_retry_dead(void **state) {
  (void)state;
  if (mt_is_cluster()) skip();
  miscache_t *mc = mt_open(NULL);
  for (int i = 0; i < 100; i++) {
    char key[48];
    snprintf(key, sizeof key, "temp:excel_upload:u%d", i % 10);
    json_t *v = json_pack("{s:i}", "v", i);
    assert_int_equal(miscache_write_behind(mc, MISCACHE_DB_TEMP, key, v,
                                           MISCACHE_TTL_EXCEL_UPLOAD, "up",
                                           true),
                     MISCACHE_OK);
    json_decref(v);
  }
  /* the database is down for the first round: nothing acked */
  sor_t s = {.fail = true};
  size_t written = 0, acked = 0;
  assert_int_equal(miscache_write_behind_flush(mc, "up", "db", "w1", 200, 0,
                                               NULL, sor_write, &s, &written,
                                               &acked),
                   MISCACHE_OK);
  assert_int_equal(written, 0);
  assert_int_equal(acked, 0);
  assert_int_equal(s.calls, 10); /* one attempt per key: coalesced */
  /* back up: the retry (reclaim after the idle limit) writes each key once,
   * with its latest value */
  s.fail = false;
  s.calls = 0;
  miscache_queue_opts_t o = {.reclaim_idle_ms = 1};
  mt_sleep_ms(5);
  assert_int_equal(miscache_write_behind_flush(mc, "up", "db", "w1", 200, 0, &o,
                                               sor_write, &s, &written,
                                               &acked),
                   MISCACHE_OK);
  assert_int_equal(written, 10);
  assert_int_equal(acked, 100);
  assert_int_equal(s.calls, 10);
  miscache_queue_info_t qi;
  assert_int_equal(miscache_queue_info(mc, "up", "db", &qi), MISCACHE_OK);
  assert_int_equal(qi.pending, 0);
  assert_int_equal(qi.length, 0);
  /* the cache had the latest values all along */
  char *raw = mt_raw_get(mc, MISCACHE_DB_TEMP, "temp:excel_upload:u3");
  assert_string_equal(raw, "{\"v\":93}");
  free(raw);
  /* a change the system of record always refuses: dead-lettered */
  json_t *v = json_pack("{s:i}", "v", -1);
  assert_int_equal(miscache_write_behind(mc, MISCACHE_DB_TEMP,
                                         "temp:excel_upload:bad", v,
                                         MISCACHE_TTL_EXCEL_UPLOAD, "up", false),
                   MISCACHE_OK);
  json_decref(v);
  s.fail = true;
  miscache_queue_opts_t o3 = {.reclaim_idle_ms = 1, .max_deliveries = 3};
  for (int i = 0; i < 6; i++) {
    mt_sleep_ms(3);
    assert_int_equal(miscache_write_behind_flush(mc, "up", "db", "w1", 10, 0,
                                                 &o3, sor_write, &s, &written,
                                                 &acked),
                     MISCACHE_OK);
  }
  assert_int_equal(miscache_queue_info(mc, "up", "db", &qi), MISCACHE_OK);
  assert_int_equal(qi.dead, 1);
  assert_int_equal(qi.pending, 0);
  miscache_free(mc);
}

/* ---- background refresh ---------------------------------------------------- */

typedef struct {
  miscache_t *mc;
  atomic_bool stop;
  long reads, misses;
} reader_t;

static void *reader(void *arg) {
  reader_t *r = arg;
  while (!atomic_load(&r->stop)) {
    json_t *out = NULL;
    miscache_status_t st =
        miscache_get(r->mc, MISCACHE_DB_BATCH, mt_key("batch:status:4"), &out);
    r->reads++;
    if (st != MISCACHE_OK) r->misses++;
    json_decref(out);
  }
  return NULL;
}

static int generation;

static miscache_status_t status_loader(void *ud, const char *key,
                                       json_t **out) {
  (void)ud, (void)key;
  *out = json_pack("{s:s,s:i}", "status", "completed", "generation",
                   ++generation);
  return MISCACHE_OK;
}

static miscache_status_t analytics_loader(void *ud, const char *key,
                                          json_t **out) {
  int *mode = ud;
  (void)key;
  if (*mode == 1) return MISCACHE_MISS;
  if (*mode == 2) return MISCACHE_ERR_UNAVAILABLE;
  *out = json_pack("{s:i}", "gift_count", 12);
  return MISCACHE_OK;
}

static void test_refresh_in_place(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL), *rd = mt_open_in(NULL, miscache_namespace(mc));
  int mode = 0;
  size_t n = 0;
  assert_int_equal(miscache_refresh_post_batch(mc, 4, "20261125", status_loader,
                                               analytics_loader, &mode, &n),
                   MISCACHE_OK);
  assert_int_equal(n, 2);
  static reader_t r;
  r.mc = rd;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, reader, &r), 0);
  for (int i = 0; i < 200; i++)
    assert_int_equal(miscache_refresh_post_batch(mc, 4, "20261125",
                                                 status_loader,
                                                 analytics_loader, &mode, &n),
                     MISCACHE_OK);
  atomic_store(&r.stop, true);
  pthread_join(t, NULL);
  printf("  200 refreshes while a reader read %ld times: %ld misses\n",
         r.reads, r.misses);
  assert_int_equal(r.misses, 0);
  assert_true(r.reads > 0);
  char *raw = mt_raw_get(mc, MISCACHE_DB_BATCH, "batch:status:4");
  assert_non_null(strstr(raw, "\"generation\":201"));
  free(raw);
  assert_true(mt_raw_pttl(mc, MISCACHE_DB_BATCH, "batch:status:4") > 3590000);
  /* the record is gone: the key goes; a failing loader leaves the value */
  mode = 2;
  assert_int_equal(miscache_refresh_post_batch(mc, 4, "20261125", status_loader,
                                               analytics_loader, &mode, &n),
                   MISCACHE_ERR_LOADER);
  assert_int_equal(n, 1);
  raw = mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:analytics:4:20261125");
  assert_string_equal(raw, "{\"gift_count\":12}");
  free(raw);
  mode = 1;
  assert_int_equal(miscache_refresh_post_batch(mc, 4, "20261125", status_loader,
                                               analytics_loader, &mode, &n),
                   MISCACHE_OK);
  assert_null(mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:analytics:4:20261125"));
  miscache_free(rd);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_through),
      cmocka_unit_test(test_write_behind_atomic),
      cmocka_unit_test(test_flush_coalesce_retry_dead),
      cmocka_unit_test(test_refresh_in_place),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

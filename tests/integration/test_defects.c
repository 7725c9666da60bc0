/* Each defect of the outside review, reproduced against a real
 * server. Every test here failed on the code before its fix. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

/* ---- item 1: members another program stored survive every update ------- */

static json_t *raw_json(miscache_t *mc, miscache_db_t db, const char *key) {
  char *s = mt_raw_get(mc, db, key);
  assert_non_null(s);
  json_t *v = json_loads(s, 0, NULL);
  free(s);
  assert_non_null(v);
  return v;
}

static void test_session_touch_keeps_flask_fields(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  mt_raw_set(mc, MISCACHE_DB_SESSION, "session:user:42",
             "{\"user_id\":42,\"username\":\"kim\",\"csrf_token\":\"t0k\","
             "\"roles\":[\"admin\",\"sales\"],\"last_activity\":"
             "\"2020-01-01T00:00:00Z\"}");
  assert_int_equal(miscache_session_touch(mc, 42), MISCACHE_OK);
  json_t *v = raw_json(mc, MISCACHE_DB_SESSION, "session:user:42");
  assert_string_equal(json_string_value(json_object_get(v, "csrf_token")),
                      "t0k");
  assert_int_equal(json_array_size(json_object_get(v, "roles")), 2);
  assert_string_not_equal(
      json_string_value(json_object_get(v, "last_activity")),
      "2020-01-01T00:00:00Z");
  json_decref(v);
  assert_true(mt_raw_pttl(mc, MISCACHE_DB_SESSION, "session:user:42") >
              86000000);

  /* a typed get + set of the value keeps them too */
  miscache_session_t s;
  assert_int_equal(miscache_session_get(mc, 42, &s), MISCACHE_OK);
  free(s.username);
  s.username = strdup("lee");
  assert_int_equal(miscache_session_set(mc, &s), MISCACHE_OK);
  miscache_session_clear(&s);
  v = raw_json(mc, MISCACHE_DB_SESSION, "session:user:42");
  assert_string_equal(json_string_value(json_object_get(v, "username")), "lee");
  assert_string_equal(json_string_value(json_object_get(v, "csrf_token")),
                      "t0k");
  json_decref(v);
  miscache_free(mc);
}

static void test_upload_and_batch_progress_keep_fields(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  mt_raw_set(
      mc, MISCACHE_DB_TEMP, "temp:excel_upload:u1",
      "{\"status\":\"processing\",\"total_rows\":10,"
      "\"processed_rows\":1,\"error_count\":0,\"file_name\":\"a.xlsx\"}");
  assert_int_equal(miscache_upload_advance(mc, "u1", 4, 1), MISCACHE_OK);
  assert_int_equal(miscache_upload_finish(mc, "u1", "completed"), MISCACHE_OK);
  json_t *v = raw_json(mc, MISCACHE_DB_TEMP, "temp:excel_upload:u1");
  assert_string_equal(json_string_value(json_object_get(v, "file_name")),
                      "a.xlsx");
  assert_int_equal(json_integer_value(json_object_get(v, "processed_rows")), 5);
  assert_int_equal(json_integer_value(json_object_get(v, "error_count")), 1);
  assert_string_equal(json_string_value(json_object_get(v, "status")),
                      "completed");
  json_decref(v);

  mt_raw_set(mc, MISCACHE_DB_BATCH, "batch:status:3",
             "{\"status\":\"running\",\"host\":\"erp-1\",\"progress\":"
             "{\"total_pages\":9,\"eta_seconds\":30}}");
  miscache_batch_progress_t p = {.total_pages = 9, .processed_pages = 2};
  assert_int_equal(miscache_batch_status_progress(mc, 3, &p, "collect"),
                   MISCACHE_OK);
  v = raw_json(mc, MISCACHE_DB_BATCH, "batch:status:3");
  assert_string_equal(json_string_value(json_object_get(v, "host")), "erp-1");
  json_t *prog = json_object_get(v, "progress");
  assert_int_equal(json_integer_value(json_object_get(prog, "eta_seconds")),
                   30);
  assert_int_equal(json_integer_value(json_object_get(prog, "processed_pages")),
                   2);
  assert_string_equal(json_string_value(json_object_get(v, "current_step")),
                      "collect");
  json_decref(v);
  miscache_free(mc);
}

/* Two processes advance the same upload 300 times each: no update is lost. */
static void test_upload_advance_two_writers(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  char ns[80];
  snprintf(ns, sizeof ns, "%s", miscache_namespace(mc));
  assert_int_equal(miscache_upload_create(mc, "race", 600), MISCACHE_OK);
  pid_t kids[2];
  for (int k = 0; k < 2; k++) {
    kids[k] = fork();
    assert_true(kids[k] >= 0);
    if (kids[k] == 0) {
      miscache_free(mc);
      miscache_t *c = mt_open_in(NULL, ns);
      int bad = !c;
      for (int i = 0; c && i < 300; i++) {
        miscache_status_t st = miscache_upload_advance(c, "race", 1, 0);
        if (st != MISCACHE_OK && !bad++)
          fprintf(stderr, "advance: %s: %s\n", miscache_strerror(st),
                  miscache_errmsg(c));
      }
      miscache_free(c);
      mt_child_exit(bad ? 1 : 0);
    }
  }
  for (int k = 0; k < 2; k++) {
    int ws = 0;
    assert_int_equal(waitpid(kids[k], &ws, 0), kids[k]);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  }
  miscache_upload_t u;
  assert_int_equal(miscache_upload_get(mc, "race", &u), MISCACHE_OK);
  assert_int_equal(u.processed_rows, 600);
  miscache_upload_clear(&u);
  miscache_free(mc);
}

/* ---- item 2: a failed invalidation is never lost ----------------------- */

static int loads;
static miscache_status_t load_denied(void *ud, const char *key, json_t **out) {
  (void)ud;
  (void)key;
  loads++;
  *out = json_pack("{s:{s:b}}", "orders", "read", 0);
  return MISCACHE_OK;
}

static miscache_t *open_short_timeout(int ms) {
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_command_timeout(o, ms), MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  return mc;
}

static void test_pending_permissions_invalidation(void **state) {
  (void)state;
  miscache_t *mc = open_short_timeout(300);
  json_t *granted = json_pack("{s:{s:b}}", "orders", "read", 1);
  assert_int_equal(miscache_permissions_set(mc, 7, granted), MISCACHE_OK);
  json_decref(granted);
  miscache_session_t s = {.user_id = 7};
  assert_int_equal(miscache_session_set(mc, &s), MISCACHE_OK);

  mt_raw_cmd("CLIENT PAUSE 5000 WRITE");
  uint64_t removed = 99;
  miscache_status_t st = miscache_invalidate_permissions(mc, 7, &removed);
  assert_int_equal(st, MISCACHE_ERR_UNAVAILABLE);
  assert_int_equal(miscache_pending_invalidations(mc), 2);

  /* the revoked permission is not served from the cache */
  bool allowed = true;
  miscache_source_t src = MISCACHE_SOURCE_NONE;
  loads = 0;
  assert_int_equal(miscache_permissions_check(mc, 7, "orders",
                                              MISCACHE_PERM_READ, load_denied,
                                              NULL, &allowed, &src),
                   MISCACHE_OK);
  assert_false(allowed);
  assert_int_equal(loads, 1);
  assert_int_equal(src, MISCACHE_SOURCE_UNCACHED);
  miscache_session_t out;
  assert_int_equal(miscache_session_get(mc, 7, &out), MISCACHE_MISS);

  mt_raw_cmd("CLIENT UNPAUSE");
  mt_sleep_ms(150); /* past the pause after a failed replay */
  assert_int_equal(miscache_ping(mc), MISCACHE_OK); /* replays first */
  assert_int_equal(miscache_pending_invalidations(mc), 0);
  assert_int_equal(mt_raw_exists_in(mc, 1, "permissions:user:7"), 0);
  assert_int_equal(mt_raw_exists_in(mc, 0, "session:user:7"), 0);
  miscache_free(mc);
}

static void test_pending_pattern_invalidation(void **state) {
  (void)state;
  miscache_t *mc = open_short_timeout(300);
  json_t *v = json_pack("{s:s}", "product_type", "GIFT");
  assert_int_equal(miscache_set(mc, MISCACHE_DB_GIFT,
                                "gift:classification:P1:1", v,
                                MISCACHE_TTL_GIFT_CLASSIFICATION),
                   MISCACHE_OK);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_GIFT,
                                "gift:classification:P1:10", v,
                                MISCACHE_TTL_GIFT_CLASSIFICATION),
                   MISCACHE_OK);
  assert_int_equal(miscache_gift_analytics_set(mc, 1, "20261124", v),
                   MISCACHE_OK);
  json_decref(v);
  mt_raw_cmd("CLIENT PAUSE 5000 WRITE");
  assert_int_equal(miscache_invalidate_gift_rules(mc, 1, NULL),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_int_equal(miscache_pending_invalidations(mc), 3);
  json_t *got = NULL;
  assert_int_equal(
      miscache_get(mc, MISCACHE_DB_GIFT, "gift:classification:P1:1", &got),
      MISCACHE_MISS);
  assert_int_equal(miscache_gift_analytics_get(mc, 1, "20261124", &got),
                   MISCACHE_MISS);
  /* company 10 is not covered */
  assert_int_equal(
      miscache_get(mc, MISCACHE_DB_GIFT, "gift:classification:P1:10", &got),
      MISCACHE_OK);
  json_decref(got);
  mt_raw_cmd("CLIENT UNPAUSE");
  mt_sleep_ms(150);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  assert_int_equal(miscache_pending_invalidations(mc), 0);
  assert_int_equal(mt_raw_exists_in(mc, 5, "gift:classification:P1:1"), 0);
  assert_int_equal(mt_raw_exists_in(mc, 5, "gift:analytics:1:20261124"), 0);
  assert_int_equal(mt_raw_exists_in(mc, 5, "gift:classification:P1:10"), 1);
  miscache_free(mc);
}

/* A full pending list says so, and the pool's handles share the list. */
static void test_pending_overflow_and_pool(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_command_timeout(o, 200), MISCACHE_OK);
  assert_int_equal(miscache_options_set_pending_max(o, 1), MISCACHE_OK);
  assert_int_equal(miscache_options_set_url(o, mt_srv.url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_namespace(o, mt_namespace()),
                   MISCACHE_OK);
  miscache_pool_t *pool = NULL;
  assert_int_equal(miscache_pool_new(o, 2, &pool, NULL, 0), MISCACHE_OK);
  miscache_options_free(o);
  miscache_t *a = NULL, *b = NULL;
  assert_int_equal(miscache_pool_acquire(pool, 0, &a), MISCACHE_OK);
  assert_int_equal(miscache_pool_acquire(pool, 0, &b), MISCACHE_OK);
  json_t *v = json_pack("{}");
  assert_int_equal(
      miscache_set(b, MISCACHE_DB_CACHE, "k1", v, MISCACHE_TTL_MASTER_DATA),
      MISCACHE_OK);
  json_decref(v);
  mt_raw_cmd("CLIENT PAUSE 5000 WRITE");
  assert_int_equal(miscache_delete(a, MISCACHE_DB_CACHE, "k1", NULL),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_int_equal(miscache_pool_pending_invalidations(pool), 1);
  assert_int_equal(miscache_delete(a, MISCACHE_DB_CACHE, "k2", NULL),
                   MISCACHE_ERR_PENDING_FULL);
  assert_non_null(strstr(miscache_errmsg(a), "could not be kept"));
  json_t *got = NULL;
  assert_int_equal(miscache_get(b, MISCACHE_DB_CACHE, "k1", &got),
                   MISCACHE_MISS); /* b sees a's pending delete */
  mt_raw_cmd("CLIENT UNPAUSE");
  mt_sleep_ms(150);
  assert_int_equal(miscache_ping(b), MISCACHE_OK);
  assert_int_equal(miscache_pool_pending_invalidations(pool), 0);
  assert_int_equal(mt_raw_exists_in(b, 1, "k1"), 0);
  assert_int_equal(miscache_pool_release(pool, a), MISCACHE_OK);
  assert_int_equal(miscache_pool_release(pool, b), MISCACHE_OK);
  miscache_pool_free(pool);
}

/* ---- item 3: a pooled handle carries nothing to the next borrower ------ */

static int visit_count(void *ud, miscache_db_t db, const char *key) {
  (void)db;
  (void)key;
  (*(int *)ud)++;
  return 0;
}

static void test_pool_resets_borrow_state(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, mt_srv.url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_namespace(o, mt_namespace()),
                   MISCACHE_OK);
  miscache_pool_t *pool = NULL;
  assert_int_equal(miscache_pool_new(o, 1, &pool, NULL, 0), MISCACHE_OK);
  miscache_options_free(o);
  miscache_t *mc = NULL;
  assert_int_equal(miscache_pool_acquire(pool, 0, &mc), MISCACHE_OK);
  json_t *map = json_pack("{s:{s:b}}", "m", "read", 1);
  assert_int_equal(miscache_permissions_set(mc, 5, map), MISCACHE_OK);
  json_decref(map);
  json_t *got = NULL;
  assert_int_equal(miscache_permissions_get(mc, 5, &got), MISCACHE_OK);
  json_decref(got);
  int seen = 0;
  assert_int_equal(miscache_invalidate_dry_run(mc, visit_count, &seen),
                   MISCACHE_OK);
  assert_int_equal(miscache_pool_release(pool, mc), MISCACHE_OK);
  assert_int_equal(miscache_pool_release(pool, mc), MISCACHE_ERR_INVALID);

  miscache_t *again = NULL;
  assert_int_equal(miscache_pool_acquire(pool, 0, &again), MISCACHE_OK);
  uint64_t removed = 0;
  assert_int_equal(miscache_invalidate_permissions(again, 5, &removed),
                   MISCACHE_OK);
  assert_int_equal(removed, 1);
  assert_int_equal(seen, 0); /* the old visitor was not called */
  assert_int_equal(mt_raw_exists_in(again, 1, "permissions:user:5"), 0);

  /* a handle the pool did not open is refused, and never freed by it */
  miscache_t *stranger = mt_open(NULL);
  assert_int_equal(miscache_pool_release(pool, stranger), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_pool_release(pool, again), MISCACHE_OK);
  miscache_counters_t c;
  assert_int_equal(
      miscache_pool_counters_category(pool, MISCACHE_CAT_PERMISSIONS, &c),
      MISCACHE_OK);
  assert_int_equal(c.hits, 1);
  miscache_pool_free(pool);
  assert_int_equal(miscache_ping(stranger), MISCACHE_OK); /* still alive */
  miscache_free(stranger);
}

/* ---- item 4: fork ------------------------------------------------------- */

static void test_fork_child_gets_its_own_connection(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *pv = json_pack("{s:s}", "who", "parent");
  json_t *cv = json_pack("{s:s}", "who", "child");
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "p", pv, 2),
                   MISCACHE_OK);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "c", cv, 2),
                   MISCACHE_OK);
  pid_t kid = fork();
  assert_true(kid >= 0);
  const char *key = kid == 0 ? "c" : "p";
  json_t *want = kid == 0 ? cv : pv;
  int wrong = 0;
  for (int i = 0; i < 2000; i++) {
    json_t *got = NULL;
    if (miscache_get(mc, MISCACHE_DB_CACHE, key, &got) != MISCACHE_OK ||
        !json_equal(got, want))
      wrong++;
    json_decref(got);
  }
  if (kid == 0) {
    miscache_free(mc);
    json_decref(pv);
    json_decref(cv);
    mt_child_exit(wrong ? 1 : 0);
  }
  int ws = 0;
  assert_int_equal(waitpid(kid, &ws, 0), kid);
  assert_int_equal(wrong, 0);
  assert_true(WIFEXITED(ws));
  assert_int_equal(WEXITSTATUS(ws), 0);
  json_decref(pv);
  json_decref(cv);
  miscache_free(mc);
}

/* ---- item 5: the command timeout bounds the whole call ------------------ */

typedef struct {
  int fd;
  volatile int stop;
} drip_t;

/* Accepts one client and answers its first command with a bulk reply, one
 * byte every 400 ms. */
static void *drip_main(void *arg) {
  drip_t *d = arg;
  int c = accept(d->fd, NULL, NULL);
  if (c < 0) return NULL;
  char buf[256];
  (void)!recv(c, buf, sizeof buf, 0);
  const char *reply = "$10\r\n{\"a\":1234}\r\n";
  for (size_t i = 0; reply[i] && !d->stop; i++) {
    if (send(c, reply + i, 1, MSG_NOSIGNAL) != 1) break;
    for (int t = 0; t < 8 && !d->stop; t++)
      mt_sleep_ms(50);
  }
  close(c);
  return NULL;
}

static void test_deadline_whole_call_drip(void **state) {
  (void)state;
  drip_t d = {.fd = -1};
  int port = mt_free_port(&d.fd);
  assert_true(port > 0 && port < 32768);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, drip_main, &d), 0);
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_tcp(o, "127.0.0.1", port), MISCACHE_OK);
  assert_int_equal(miscache_options_set_command_timeout(o, 1000), MISCACHE_OK);
  miscache_t *mc = NULL;
  assert_int_equal(miscache_open(o, &mc, NULL, 0), MISCACHE_OK);
  miscache_options_free(o);
  json_t *v = NULL;
  int64_t t0 = mt_now_ns();
  assert_int_equal(miscache_get(mc, MISCACHE_DB_SESSION, "k", &v),
                   MISCACHE_ERR_UNAVAILABLE);
  int64_t ms = (mt_now_ns() - t0) / 1000000;
  print_message("drip: GET gave up after %lld ms (timeout 1000 ms; the old "
                "per-read timeout ran 4.8 s)\n",
                (long long)ms);
  assert_true(ms < 2500); /* the whole reply would take 7.6 s */
  assert_non_null(strstr(miscache_errmsg(mc), "timed out"));
  d.stop = 1;
  pthread_join(t, NULL);
  close(d.fd);
  miscache_free(mc);
}

static void test_deadline_hung_server(void **state) {
  (void)state;
  miscache_t *mc = open_short_timeout(500);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  kill(mt_srv.pid, SIGSTOP);
  json_t *v = NULL;
  int64_t t0 = mt_now_ns();
  miscache_status_t st = miscache_get(mc, MISCACHE_DB_CACHE, "k", &v);
  int64_t ms = (mt_now_ns() - t0) / 1000000;
  kill(mt_srv.pid, SIGCONT);
  assert_int_equal(st, MISCACHE_ERR_UNAVAILABLE);
  print_message("hung server: GET gave up after %lld ms (timeout 500 ms)\n",
                (long long)ms);
  assert_true(ms < 2000);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  miscache_free(mc);
}

/* ---- item 6: typed cache-aside reads once ------------------------------ */

static int cfg_loads;
static miscache_status_t load_cfg(void *ud, int64_t company,
                                  miscache_batch_config_t *out) {
  (void)ud;
  (void)company;
  cfg_loads++;
  out->batch_enabled = true;
  out->page_size = 50;
  return MISCACHE_OK;
}

static void test_typed_get_or_load_one_get(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  mt_raw_cmd("CONFIG RESETSTAT");
  miscache_batch_config_t c;
  miscache_source_t src;
  cfg_loads = 0;
  assert_int_equal(
      miscache_batch_config_get_or_load(mc, 4, load_cfg, NULL, &c, &src),
      MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  assert_int_equal(c.page_size, 50);
  miscache_batch_config_clear(&c);
  assert_int_equal(mt_cmdstat_calls(mt_rc, "get"), 1);
  assert_int_equal(mt_cmdstat_calls(mt_rc, "set"), 1);
  miscache_counters_t n;
  assert_int_equal(miscache_counters_get(mc, MISCACHE_DB_BATCH, &n),
                   MISCACHE_OK);
  assert_int_equal(n.misses, 1);
  /* a cached value of the wrong shape: one GET, one miss, replaced */
  mt_raw_set(mc, MISCACHE_DB_BATCH, "batch:config:4", "{\"page_size\":\"x\"}");
  mt_raw_cmd("CONFIG RESETSTAT");
  miscache_counters_reset(mc);
  assert_int_equal(
      miscache_batch_config_get_or_load(mc, 4, load_cfg, NULL, &c, &src),
      MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  miscache_batch_config_clear(&c);
  assert_int_equal(mt_cmdstat_calls(mt_rc, "get"), 1);
  assert_int_equal(miscache_counters_get(mc, MISCACHE_DB_BATCH, &n),
                   MISCACHE_OK);
  assert_int_equal(n.misses, 1);
  assert_int_equal(n.hits, 0);
  assert_int_equal(cfg_loads, 2);
  miscache_free(mc);
}

/* ---- item 7 ---------------------------------------------------------- */

static void test_lock_info_null_out(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_lock_t *l = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:x", 5000,
                                         "me", NULL, &l),
                   MISCACHE_OK);
  assert_int_equal(miscache_lock_info(mc, MISCACHE_DB_CACHE, "lock:x", NULL),
                   MISCACHE_ERR_INVALID);
  assert_non_null(strstr(miscache_errmsg(mc), "out"));
  assert_int_equal(miscache_lock_release(mc, l), MISCACHE_OK);
  miscache_lock_free(l);
  miscache_free(mc);
}

/* ---- item 15: keys come from the caller's arguments ---------------------- */

static void test_touch_uses_argument_key(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  mt_raw_set(mc, MISCACHE_DB_SESSION, "session:user:42",
             "{\"user_id\":43,\"username\":\"x\"}");
  assert_int_equal(miscache_session_touch(mc, 42), MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(mc, 0, "session:user:43"), 0);
  json_t *v = raw_json(mc, MISCACHE_DB_SESSION, "session:user:42");
  assert_non_null(json_object_get(v, "last_activity"));
  assert_int_equal(json_integer_value(json_object_get(v, "user_id")), 43);
  json_decref(v);
  miscache_free(mc);
}

/* ---- item 16: null in a required string is a decode error --------------- */

static void test_required_null_is_decode_error(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  mt_raw_set(mc, MISCACHE_DB_BATCH, "batch:status:2", "{\"status\":null}");
  miscache_batch_status_t bs;
  assert_int_equal(miscache_batch_status_get(mc, 2, &bs), MISCACHE_ERR_DECODE);
  mt_raw_set(mc, MISCACHE_DB_BATCH, "batch:history:2:20261124",
             "{\"status\":null}");
  miscache_batch_history_t bh;
  assert_int_equal(miscache_batch_history_get(mc, 2, "20261124", &bh),
                   MISCACHE_ERR_DECODE);
  mt_raw_set(mc, MISCACHE_DB_TEMP, "temp:excel_upload:n", "{\"status\":null}");
  miscache_upload_t u;
  assert_int_equal(miscache_upload_get(mc, "n", &u), MISCACHE_ERR_DECODE);
  mt_raw_set(mc, MISCACHE_DB_GIFT, "gift:master:2",
             "[{\"product_code\":null}]");
  miscache_gift_master_entry_t *e = NULL;
  size_t n = 0;
  assert_int_equal(miscache_gift_master_get(mc, 2, &e, &n),
                   MISCACHE_ERR_DECODE);
  /* a typed cache-aside reloads and replaces it */
  mt_raw_set(mc, MISCACHE_DB_GIFT, "gift:classification:Q1:2",
             "{\"product_type\":null}");
  miscache_gift_rules_t rules = {0};
  miscache_gift_engine_t *eng = NULL;
  assert_int_equal(miscache_gift_engine_new(&rules, NULL, 0, &eng),
                   MISCACHE_OK);
  miscache_gift_product_t p = {
      .product_code = "Q1", .product_name = "stroller", .supply_price = 100};
  miscache_gift_classification_t out;
  miscache_source_t src;
  assert_int_equal(miscache_gift_classify(mc, 2, eng, &p, &out, &src),
                   MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  assert_string_equal(out.product_type, "REVENUE");
  miscache_gift_classification_clear(&out);
  miscache_gift_engine_free(eng);
  char *raw = mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:classification:Q1:2");
  assert_non_null(strstr(raw, "\"REVENUE\""));
  free(raw);
  miscache_free(mc);
}

/* ---- item 17: a wrong-shape permissions map is a miss ------------------- */

static void test_wrong_shape_permissions_replaced(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  mt_raw_set(mc, MISCACHE_DB_CACHE, "permissions:user:9", "{\"orders\":5}");
  bool allowed = true;
  miscache_source_t src;
  loads = 0;
  assert_int_equal(miscache_permissions_check(mc, 9, "orders",
                                              MISCACHE_PERM_READ, load_denied,
                                              NULL, &allowed, &src),
                   MISCACHE_OK);
  assert_int_equal(loads, 1);
  assert_false(allowed);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  json_t *v = raw_json(mc, MISCACHE_DB_CACHE, "permissions:user:9");
  assert_true(json_is_object(json_object_get(v, "orders")));
  json_decref(v);
  miscache_free(mc);
}

/* ---- item 20: counters never overflow ----------------------------------- */

static void test_upload_advance_overflow(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  mt_raw_set(mc, MISCACHE_DB_TEMP, "temp:excel_upload:big",
             "{\"status\":\"processing\",\"processed_rows\":"
             "9223372036854775806}");
  assert_int_equal(miscache_upload_advance(mc, "big", 1, 0), MISCACHE_OK);
  assert_int_equal(miscache_upload_advance(mc, "big", 1, 0),
                   MISCACHE_ERR_INVALID);
  assert_non_null(strstr(miscache_errmsg(mc), "overflow"));
  miscache_upload_t u;
  assert_int_equal(miscache_upload_get(mc, "big", &u), MISCACHE_OK);
  assert_true(u.processed_rows == INT64_MAX);
  miscache_upload_clear(&u);
  miscache_free(mc);
}

/* ---- item 9: every error sets the handle's message ---------------------- */

/* Leaves a known message on the handle, so a call that fails without
 * setting its own is caught returning this old one. */
static void stale_message(miscache_t *mc) {
  json_t *v = NULL;
  assert_int_equal(miscache_get(mc, (miscache_db_t)99, "k", &v),
                   MISCACHE_ERR_INVALID);
  assert_non_null(strstr(miscache_errmsg(mc), "out of range"));
}

#define EXPECT_OWN_MESSAGE(mc, call)                                           \
  do {                                                                         \
    stale_message(mc);                                                         \
    miscache_status_t st_ = (call);                                            \
    if (st_ == MISCACHE_OK || st_ == MISCACHE_MISS)                            \
      fail_msg("%s: did not fail", #call);                                     \
    if (!miscache_errmsg(mc)[0] ||                                             \
        strstr(miscache_errmsg(mc), "out of range"))                           \
      fail_msg("%s: %s with message \"%s\"", #call, miscache_strerror(st_),    \
               miscache_errmsg(mc));                                           \
  } while (0)

static void test_every_error_sets_message(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  bool b;
  int64_t i64;
  json_t *j = json_object();
  miscache_gift_rules_t rules = {0};
  miscache_gift_engine_t *eng = NULL;
  assert_int_equal(miscache_gift_engine_new(&rules, NULL, 0, &eng),
                   MISCACHE_OK);
  miscache_gift_classification_t cls;
  miscache_gift_product_t bad = {
      .product_code = NULL, .product_name = "x", .supply_price = 1};
  miscache_batch_history_t h;
  EXPECT_OWN_MESSAGE(mc, miscache_exists(mc, MISCACHE_DB_CACHE, "k", NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_ttl_ms(mc, MISCACHE_DB_CACHE, "k", NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_exists(mc, MISCACHE_DB_CACHE, "", &b));
  EXPECT_OWN_MESSAGE(mc, miscache_set(mc, MISCACHE_DB_CACHE, "k", NULL, 1));
  EXPECT_OWN_MESSAGE(mc, miscache_gift_rules_set(mc, 1, NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_gift_rules_get(mc, 1, NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_gift_master_set(mc, 1, NULL, 3));
  EXPECT_OWN_MESSAGE(mc, miscache_gift_master_get(mc, 1, NULL, NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_gift_classify(mc, 1, eng, &bad, &cls, NULL));
  EXPECT_OWN_MESSAGE(
      mc, miscache_gift_classify_bulk(mc, 1, eng, &bad, 1, &cls, NULL, NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_gift_analytics_set(mc, 1, "2026", j));
  EXPECT_OWN_MESSAGE(mc, miscache_batch_history_get(mc, 1, "20261124", NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_batch_history_set(mc, 1, "x", &h));
  EXPECT_OWN_MESSAGE(mc, miscache_batch_status_progress(mc, 1, NULL, NULL));
  EXPECT_OWN_MESSAGE(mc,
                     miscache_stats_serial_get(mc, "REAN", "20261124", NULL));
  EXPECT_OWN_MESSAGE(mc,
                     miscache_stats_serial_incr(mc, NULL, "20261124", 1, &i64));
  EXPECT_OWN_MESSAGE(mc, miscache_upload_create(mc, NULL, 1));
  EXPECT_OWN_MESSAGE(mc, miscache_upload_finish(mc, "u", NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_report_set(mc, "r", NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_permissions_set(mc, 1, NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_master_set(mc, MISCACHE_MASTER_BRANDS, j));
  EXPECT_OWN_MESSAGE(mc, miscache_invalidate_brand(mc, "", NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_invalidate_daily(mc, "2026", NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_invalidate(mc, MISCACHE_DB_CACHE, "", NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "l", 0,
                                               NULL, NULL, NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_lock_release(mc, NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_batch_lock_state(mc, 1, NULL));
  EXPECT_OWN_MESSAGE(mc, miscache_company_health(mc, 1, "x", NULL));
  miscache_gift_engine_free(eng);
  json_decref(j);
  miscache_free(mc);
}

/* ---- item 18: an event with a bad id deletes nothing ------------------- */

static void test_invalid_brand_deletes_nothing(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *list = json_pack("[{s:s}]", "code", "REAN");
  assert_int_equal(miscache_master_set(mc, MISCACHE_MASTER_BRANDS, list),
                   MISCACHE_OK);
  json_decref(list);
  uint64_t removed = 7;
  assert_int_equal(miscache_invalidate_brand(mc, "", &removed),
                   MISCACHE_ERR_KEY);
  assert_int_equal(removed, 0);
  assert_int_equal(mt_raw_exists_in(mc, 1, "master:brands"), 1);
  char big[1200];
  memset(big, 'B', sizeof big - 1);
  big[sizeof big - 1] = 0;
  assert_int_equal(miscache_invalidate_brand(mc, big, &removed),
                   MISCACHE_ERR_KEY);
  assert_int_equal(mt_raw_exists_in(mc, 1, "master:brands"), 1);
  miscache_free(mc);
}

/* ---- item 19: one bad line does not fail the page ----------------------- */

static void test_bulk_bad_line_own_status(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_gift_rules_t rules = {.zero_price_rule = true};
  miscache_gift_engine_t *eng = NULL;
  assert_int_equal(miscache_gift_engine_new(&rules, NULL, 0, &eng),
                   MISCACHE_OK);
  miscache_gift_product_t p[4] = {
      {.product_code = "A1", .product_name = "stroller", .supply_price = 100},
      {.product_code = "", .product_name = "empty code", .supply_price = 0},
      {.product_code = "A2", .product_name = "sample", .supply_price = 0},
      {.product_code = NULL, .product_name = "no code", .supply_price = 0}};
  miscache_gift_classification_t out[4];
  miscache_status_t sts[4];
  size_t cached = 9;
  miscache_status_t st =
      miscache_gift_classify_bulk(mc, 1, eng, p, 4, out, sts, &cached);
  assert_int_equal(st, MISCACHE_ERR_KEY);
  assert_non_null(strstr(miscache_errmsg(mc), "line 1"));
  assert_int_equal(sts[0], MISCACHE_OK);
  assert_int_equal(sts[1], MISCACHE_ERR_KEY);
  assert_int_equal(sts[2], MISCACHE_OK);
  assert_int_equal(sts[3], MISCACHE_ERR_INVALID);
  assert_string_equal(out[0].product_type, "REVENUE");
  assert_null(out[1].product_type);
  assert_string_equal(out[2].product_type, "GIFT");
  assert_int_equal(cached, 0);
  assert_int_equal(mt_raw_exists_in(mc, 5, "gift:classification:A2:1"), 1);
  for (int i = 0; i < 4; i++)
    miscache_gift_classification_clear(&out[i]);
  miscache_gift_engine_free(eng);
  miscache_free(mc);
}

/* ---- item 10: sizes that would overflow are refused --------------------- */

static void test_huge_counts_refused(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_gift_rules_t rules = {0};
  miscache_gift_engine_t *eng = NULL;
  assert_int_equal(miscache_gift_engine_new(&rules, NULL, 0, &eng),
                   MISCACHE_OK);
  miscache_gift_product_t p = {
      .product_code = "A", .product_name = "a", .supply_price = 1};
  miscache_gift_classification_t out;
  size_t huge = SIZE_MAX / 64;
  assert_int_equal(
      miscache_gift_classify_bulk(mc, 1, eng, &p, huge, &out, NULL, NULL),
      MISCACHE_ERR_INVALID);
  const char *k = "k";
  const json_t *v = NULL;
  assert_int_equal(miscache_mset(mc, MISCACHE_DB_CACHE, SIZE_MAX / 4, &k, &v,
                                 MISCACHE_TTL_MASTER_DATA),
                   MISCACHE_ERR_INVALID);
  miscache_gift_engine_free(eng);
  miscache_free(mc);
}

/* ---- item 11: one keyspace table; the three per-key TTLs are classes ---- */

static void test_keyspace_ttl_overrides_reach_every_key(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(
      miscache_options_set_ttl(o, MISCACHE_TTL_MASTER_COMPANIES, 100),
      MISCACHE_OK);
  assert_int_equal(miscache_options_set_ttl(o, MISCACHE_TTL_SERIAL_COUNT, 200),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_ttl(o, MISCACHE_TTL_EXCEL_UPLOAD, 300),
                   MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  json_t *list = json_pack("[]");
  assert_int_equal(miscache_master_set(mc, MISCACHE_MASTER_COMPANIES, list),
                   MISCACHE_OK);
  json_decref(list);
  int64_t v;
  assert_int_equal(miscache_stats_serial_incr(mc, "REAN", "20261124", 1, &v),
                   MISCACHE_OK);
  assert_int_equal(miscache_upload_create(mc, "u9", 10), MISCACHE_OK);
  assert_int_equal(miscache_upload_advance(mc, "u9", 1, 0), MISCACHE_OK);
  long long p1 = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "master:companies");
  long long p2 =
      mt_raw_pttl(mc, MISCACHE_DB_CACHE, "stats:serial_count:REAN:20261124");
  long long p3 = mt_raw_pttl(mc, MISCACHE_DB_TEMP, "temp:excel_upload:u9");
  assert_true(p1 > 95000 && p1 <= 100000);
  assert_true(p2 > 195000 && p2 <= 200000);
  assert_true(p3 > 295000 && p3 <= 300000);
  /* the table is the one description: every family lands where it says */
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++) {
    const miscache_key_family_t *k =
        miscache_key_family((miscache_key_family_id_t)f);
    assert_non_null(k);
    assert_ptr_equal(miscache_key_family_by_name(k->name), k);
    assert_true(k->ttl_class < MISCACHE_TTL_CLASS_COUNT);
  }
  assert_int_equal(miscache_key_family(MISCACHE_KF_SERIAL_COUNT)->ttl_class,
                   MISCACHE_TTL_SERIAL_COUNT);
  assert_null(miscache_key_family((miscache_key_family_id_t)99));
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session_touch_keeps_flask_fields),
      cmocka_unit_test(test_upload_and_batch_progress_keep_fields),
      cmocka_unit_test(test_upload_advance_two_writers),
      cmocka_unit_test(test_pending_permissions_invalidation),
      cmocka_unit_test(test_pending_pattern_invalidation),
      cmocka_unit_test(test_pending_overflow_and_pool),
      cmocka_unit_test(test_pool_resets_borrow_state),
      cmocka_unit_test(test_fork_child_gets_its_own_connection),
      cmocka_unit_test(test_deadline_whole_call_drip),
      cmocka_unit_test(test_deadline_hung_server),
      cmocka_unit_test(test_typed_get_or_load_one_get),
      cmocka_unit_test(test_lock_info_null_out),
      cmocka_unit_test(test_touch_uses_argument_key),
      cmocka_unit_test(test_required_null_is_decode_error),
      cmocka_unit_test(test_wrong_shape_permissions_replaced),
      cmocka_unit_test(test_upload_advance_overflow),
      cmocka_unit_test(test_every_error_sets_message),
      cmocka_unit_test(test_invalid_brand_deletes_nothing),
      cmocka_unit_test(test_bulk_bad_line_own_status),
      cmocka_unit_test(test_huge_counts_refused),
      cmocka_unit_test(test_keyspace_ttl_overrides_reach_every_key),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

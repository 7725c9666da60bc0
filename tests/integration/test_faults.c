/* Faults: dead server, dropped connections, restart, AUTH, timeouts,
 * a db the server refuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static int closed_port(void) {
  /* a port nobody listens on: the test server's port + 1 is not certain,
   * so use the port of a server we start and kill */
  mt_server_t s;
  if (mt_server_start(&s, NULL) != 0) return -1;
  int port = s.port;
  mt_server_stop(&s);
  return port;
}

static miscache_status_t loader(void *ud, const char *key, json_t **out) {
  (void)key;
  ++*(int *)ud;
  *out = json_pack("{s:s}", "from", "loader");
  return MISCACHE_OK;
}

static void test_dead_server(void **state) {
  (void)state;
  int port = closed_port();
  assert_true(port > 0);
  char url[64];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  miscache_t *mc = (miscache_t *)1;
  char err[MISCACHE_ERRMSG_SIZE] = "";
  assert_int_equal(miscache_open_url(url, &mc, err, sizeof err),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_null(mc);
  assert_non_null(strstr(err, "connect"));

  /* lazy handle: calls fail with UNAVAILABLE, never a crash */
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_url(o, url);
  miscache_options_set_lazy_connect(o, true);
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  json_t *v = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "k", &v),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_null(v);
  assert_non_null(strstr(miscache_errmsg(mc), "connect"));
  json_t *val = json_object();
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "k", val, MISCACHE_TTL_LOCK),
                   MISCACHE_ERR_UNAVAILABLE);
  json_decref(val);
  uint64_t n = 99;
  assert_int_equal(miscache_invalidate(mc, MISCACHE_DB_CACHE, "a:*", &n),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_int_equal(n, 0);
  miscache_lock_t *l = NULL;
  assert_int_equal(
      miscache_lock_acquire(mc, MISCACHE_DB_BATCH, "batch:lock:1", 1000, "x",
                            NULL, &l),
      MISCACHE_ERR_UNAVAILABLE);
  assert_null(l);
  /* fail-open cache-aside */
  int loads = 0;
  miscache_source_t src = MISCACHE_SOURCE_NONE;
  assert_int_equal(miscache_get_or_load(mc, MISCACHE_DB_CACHE, "master:brands",
                                        MISCACHE_TTL_MASTER_DATA, loader,
                                        &loads, &v, &src),
                   MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_UNCACHED);
  assert_int_equal(loads, 1);
  assert_string_equal(json_string_value(json_object_get(v, "from")), "loader");
  assert_non_null(strstr(miscache_errmsg(mc), "connect"));
  json_decref(v);
  miscache_counters_t c;
  miscache_counters_get(mc, MISCACHE_DB_CACHE, &c);
  assert_true(c.errors >= 4);
  assert_int_equal(c.hits, 0);
  miscache_free(mc);
}

static void test_reconnect_after_client_kill(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_pack("{s:i}", "n", 1);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_BATCH, "batch:status:1", v,
                                MISCACHE_TTL_BATCH_STATUS),
                   MISCACHE_OK);
  for (int round = 0; round < 3; round++) {
    redisReply *r = redisCommand(mt_rc, "CLIENT KILL TYPE normal SKIPME yes");
    assert_non_null(r);
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    json_t *out = NULL;
    /* the next call reconnects by itself, and selects the db again */
    assert_int_equal(miscache_get(mc, MISCACHE_DB_BATCH, "batch:status:1", &out),
                     MISCACHE_OK);
    assert_true(json_equal(v, out));
    json_decref(out);
  }
  /* a non-idempotent call right after a kill works too */
  redisReply *r = redisCommand(mt_rc, "CLIENT KILL TYPE normal SKIPME yes");
  freeReplyObject(r);
  miscache_lock_t *l = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_BATCH, "batch:lock:1",
                                         5000, "x", NULL, &l),
                   MISCACHE_OK);
  assert_int_equal(miscache_lock_release(mc, l), MISCACHE_OK);
  miscache_lock_free(l);
  json_decref(v);
  miscache_free(mc);
}

static void test_server_restart(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_command_timeout(o, 500);
  miscache_options_set_connect_timeout(o, 500);
  /* a 1 ms breaker window: the first call after the restart is the probe
   * (test_outage covers the default backoff) */
  assert_int_equal(miscache_options_set_backoff(o, 1, 1), MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  json_t *v = json_pack("{s:s}", "status", "running");
  assert_int_equal(miscache_set(mc, MISCACHE_DB_BATCH, "batch:status:2", v,
                                MISCACHE_TTL_BATCH_STATUS),
                   MISCACHE_OK);
  redisFree(mt_rc);
  mt_rc = NULL;
  mt_server_kill(&mt_srv);
  json_t *out = NULL;
  /* outage: a status the caller can tell from a miss */
  assert_int_equal(miscache_get(mc, MISCACHE_DB_BATCH, "batch:status:2", &out),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_BATCH, "batch:status:2", v,
                                MISCACHE_TTL_BATCH_STATUS),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_int_equal(mt_server_restart(&mt_srv), 0);
  mt_rc = mt_raw(&mt_srv, NULL);
  assert_non_null(mt_rc);
  /* the server came back empty (no persistence): a miss, not an error */
  assert_int_equal(miscache_get(mc, MISCACHE_DB_BATCH, "batch:status:2", &out),
                   MISCACHE_MISS);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_BATCH, "batch:status:2", v,
                                MISCACHE_TTL_BATCH_STATUS),
                   MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(mc, 4, "batch:status:2"), 1);
  json_decref(v);
  miscache_free(mc);
}

static void test_auth(void **state) {
  (void)state;
  const char *args[] = {"--requirepass", "s3cret", NULL};
  mt_server_t s;
  assert_int_equal(mt_server_start(&s, args), 0);
  char url[128];
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];

  snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", s.port);
  assert_int_equal(miscache_open_url(url, &mc, err, sizeof err),
                   MISCACHE_ERR_AUTH);
  assert_null(mc);
  assert_non_null(strstr(err, "WRONGPASS"));

  /* no password: the first command reports AUTH, not a crash or a miss */
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", s.port);
  assert_int_equal(miscache_open_url(url, &mc, err, sizeof err), MISCACHE_OK);
  json_t *v = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "k", &v),
                   MISCACHE_ERR_AUTH);
  assert_non_null(strstr(miscache_errmsg(mc), "NOAUTH"));
  miscache_free(mc);

  snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d", s.port);
  assert_int_equal(miscache_open_url(url, &mc, err, sizeof err), MISCACHE_OK);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  miscache_free(mc);

  /* ACL user */
  redisContext *rc = mt_raw(&s, "s3cret");
  redisReply *r =
      redisCommand(rc, "ACL SETUSER app on >app%%pw ~* &* +@all");
  assert_int_equal(r->type, REDIS_REPLY_STATUS);
  freeReplyObject(r);
  redisFree(rc);
  snprintf(url, sizeof url, "redis://app:app%%25pw@127.0.0.1:%d", s.port);
  assert_int_equal(miscache_open_url(url, &mc, err, sizeof err), MISCACHE_OK);
  v = json_true();
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "acl", v, MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  json_decref(v);
  miscache_free(mc);
  snprintf(url, sizeof url, "redis://app:nope@127.0.0.1:%d", s.port);
  assert_int_equal(miscache_open_url(url, &mc, err, sizeof err),
                   MISCACHE_ERR_AUTH);
  /* options credentials */
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_tcp(o, "127.0.0.1", s.port);
  miscache_options_set_auth(o, "app", "app%pw");
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  miscache_free(mc);
  miscache_options_free(o);
  mt_server_stop(&s);
}

static void test_command_timeout(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_command_timeout(o, 150);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  json_t *v = json_integer(7);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "t", v, MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  redisReply *r = redisCommand(mt_rc, "CLIENT PAUSE 700 ALL");
  freeReplyObject(r);
  json_t *out = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "t", &out),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_non_null(strstr(miscache_errmsg(mc), "timed out"));
  mt_sleep_ms(800);
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "t", &out), MISCACHE_OK);
  assert_true(json_equal(v, out));
  json_decref(out);
  json_decref(v);
  miscache_free(mc);
}

/* A db number the server refuses: an error, and nothing written elsewhere. */
static void test_refused_db(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_db(o, MISCACHE_DB_GIFT, 20); /* server has 16 */
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  json_t *v = json_true();
  /* first use a valid db, so the connection is somewhere real */
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "ok", v, MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(
        miscache_set(mc, MISCACHE_DB_GIFT, "gift:rules:1", v, MISCACHE_TTL_LOCK),
        MISCACHE_ERR_SERVER);
    assert_non_null(strstr(miscache_errmsg(mc), "out of range"));
  }
  for (int db = 0; db < 16; db++)
    assert_int_equal(mt_raw_exists_in(mc, db, "gift:rules:1"), 0);
  /* the handle still works for the other dbs */
  json_t *out = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "ok", &out), MISCACHE_OK);
  json_decref(out);
  json_decref(v);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dead_server),
      cmocka_unit_test(test_reconnect_after_client_kill),
      cmocka_unit_test(test_server_restart),
      cmocka_unit_test(test_auth),
      cmocka_unit_test(test_command_timeout),
      cmocka_unit_test(test_refused_db),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

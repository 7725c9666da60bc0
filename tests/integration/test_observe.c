/* Events and latency, on private servers this program starts: the hook
 * hears connects, an outage (disconnect, failed connect, breaker open and
 * closed), pending invalidations kept and replayed, a lost lock, slow
 * calls (command and family, never the value), the near cache confirmed
 * and flushed, a cluster's slot map and redirections; identical events are
 * rate-limited; the latency histograms count every call in its class, in
 * the handle, the pool and the Prometheus text. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

/* ---- a recording hook -------------------------------------------------- */

#define MAX_EV 4096
typedef struct {
  miscache_event_kind_t kind;
  char node[64];
  char message[320];
  int64_t duration_us;
  uint64_t count, suppressed;
} rec_t;
static rec_t recs[MAX_EV];
static int nrecs;
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;

static void hook(void *ud, const miscache_event_t *ev) {
  assert_ptr_equal(ud, &nrecs);
  assert_non_null(ev->node);
  assert_non_null(ev->message);
  pthread_mutex_lock(&rec_mu);
  if (nrecs < MAX_EV) {
    rec_t *r = &recs[nrecs++];
    r->kind = ev->kind;
    snprintf(r->node, sizeof r->node, "%s", ev->node);
    snprintf(r->message, sizeof r->message, "%s", ev->message);
    r->duration_us = ev->duration_us;
    r->count = ev->count;
    r->suppressed = ev->suppressed;
  }
  pthread_mutex_unlock(&rec_mu);
}

static void reset(void) {
  pthread_mutex_lock(&rec_mu);
  nrecs = 0;
  pthread_mutex_unlock(&rec_mu);
}

/* The first recorded event of kind (NULL: none), waiting up to wait_ms. */
static const rec_t *find(miscache_event_kind_t kind, int wait_ms) {
  for (int t = 0;; t += 10) {
    pthread_mutex_lock(&rec_mu);
    for (int i = 0; i < nrecs; i++)
      if (recs[i].kind == kind) {
        pthread_mutex_unlock(&rec_mu);
        return &recs[i];
      }
    pthread_mutex_unlock(&rec_mu);
    if (t >= wait_ms) return NULL;
    mt_sleep_ms(10);
  }
}

static int count_kind(miscache_event_kind_t kind) {
  int n = 0;
  pthread_mutex_lock(&rec_mu);
  for (int i = 0; i < nrecs; i++) n += recs[i].kind == kind;
  pthread_mutex_unlock(&rec_mu);
  return n;
}

static const rec_t *must(miscache_event_kind_t kind, int wait_ms) {
  const rec_t *r = find(kind, wait_ms);
  if (!r) fail_msg("no %s event", miscache_event_kind_name(kind));
  return r;
}

static mt_server_t srv;

static miscache_t *open_hooked(const char *url, int slow_ms) {
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_event_hook(o, hook, &nrecs), MISCACHE_OK);
  assert_int_equal(miscache_options_set_namespace(o, mt_namespace()), MISCACHE_OK);
  assert_int_equal(miscache_options_set_backoff(o, 50, 100), MISCACHE_OK);
  if (slow_ms) assert_int_equal(miscache_options_set_slow_call(o, slow_ms), MISCACHE_OK);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  return mc;
}

/* An outage as the hook tells it, and the breaker keeping the hook (and
 * the log it feeds) from hearing every failed call. */
static void test_outage_events(void **state) {
  (void)state;
  reset();
  miscache_t *mc = open_hooked(srv.url, 0);
  const rec_t *c = must(MISCACHE_EV_CONNECT, 0);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d", srv.port);
  assert_string_equal(c->node, want);
  assert_true(c->duration_us > 0);
  json_t *v = json_true();
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "k", v, MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  mt_server_kill(&srv);
  reset();
  /* a delete now has an unknown outcome: kept pending */
  assert_int_equal(miscache_delete(mc, MISCACHE_DB_CACHE, "k", NULL),
                   MISCACHE_ERR_UNAVAILABLE);
  const rec_t *p = must(MISCACHE_EV_PENDING_KEPT, 0);
  assert_int_equal(p->count, 1);
  assert_non_null(strstr(p->message, "k in db cache kept pending"));
  must(MISCACHE_EV_DISCONNECT, 0);
  const rec_t *f = find(MISCACHE_EV_CONNECT_FAILED, 0);
  const rec_t *b = must(MISCACHE_EV_BREAKER_OPEN, 0);
  assert_string_equal(b->node, want);
  assert_true(b->duration_us >= 25000 && b->duration_us <= 100000);
  (void)f;
  /* 2,000 calls in the outage: the breaker fails them without connecting,
   * and identical events are rate-limited: a handful of events, not 2,000 */
  for (int i = 0; i < 2000; i++) {
    json_t *out = NULL;
    assert_int_not_equal(miscache_get(mc, MISCACHE_DB_CACHE, "x", &out),
                         MISCACHE_OK);
  }
  int failed = count_kind(MISCACHE_EV_CONNECT_FAILED);
  assert_true(failed >= 1 && failed <= 10);
  assert_int_equal(count_kind(MISCACHE_EV_BREAKER_OPEN), 1);
  assert_int_equal(mt_server_restart(&srv), 0);
  mt_sleep_ms(150); /* past the backoff window */
  reset();
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  const rec_t *closed = must(MISCACHE_EV_BREAKER_CLOSED, 0);
  assert_true(closed->count >= 1);
  /* (its connect event is the first one's twin within a second: rate
   * limited, counted in the next one's suppressed) */
  const rec_t *rp = must(MISCACHE_EV_PENDING_REPLAYED, 0);
  assert_int_equal(rp->count, 1);
  assert_int_equal(miscache_pending_invalidations(mc), 0);
  json_decref(v);
  miscache_free(mc);
}

/* The rate limit itself: one event per second per identical content, the
 * next one says how many were dropped. */
static void test_rate_limit(void **state) {
  (void)state;
  reset();
  char url[600];
  /* a port nobody listens on, a lazy handle, no backoff worth speaking of:
   * every call tries to connect and fails the same way */
  int port = mt_free_port(NULL);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d?lazy_connect=true&"
                            "backoff_min_ms=1&backoff_max_ms=1", port);
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_event_hook(o, hook, &nrecs), MISCACHE_OK);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  int tries = 0;
  int64_t t0 = mt_now_ns();
  while (mt_now_ns() - t0 < 400 * 1000000LL) {
    if (miscache_ping(mc) == MISCACHE_ERR_UNAVAILABLE) tries++;
    mt_sleep_ms(2);
  }
  assert_true(tries > 20);
  /* the failure counter in each message differs; the breaker events are
   * identical: one delivered */
  assert_int_equal(count_kind(MISCACHE_EV_BREAKER_CLOSED), 0);
  int opens = count_kind(MISCACHE_EV_BREAKER_OPEN);
  assert_int_equal(opens, 1);
  mt_sleep_ms(1100);
  (void)miscache_ping(mc);
  pthread_mutex_lock(&rec_mu);
  uint64_t sup = 0;
  for (int i = 0; i < nrecs; i++)
    if (recs[i].kind == MISCACHE_EV_CONNECT_FAILED) sup += recs[i].suppressed;
  int nfailed = 0;
  for (int i = 0; i < nrecs; i++) nfailed += recs[i].kind == MISCACHE_EV_CONNECT_FAILED;
  pthread_mutex_unlock(&rec_mu);
  /* every failed connect was either delivered or counted as suppressed */
  assert_true(nfailed <= 4);
  assert_true(sup + (uint64_t)nfailed >= (uint64_t)tries / 2);
  miscache_free(mc);
}

/* A slow call names its command and family, never its value; the
 * histograms count each call in its class. */
static void test_slow_calls_and_latency(void **state) {
  (void)state;
  reset();
  miscache_t *mc = open_hooked(srv.url, 50);
  json_t *secret = json_pack("{s:s}", "token", "SECRET-VALUE-42");
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "permissions:user:6",
                                secret, MISCACHE_TTL_PERMISSIONS),
                   MISCACHE_OK);
  assert_int_equal(count_kind(MISCACHE_EV_SLOW_CALL), 0);
  redisContext *raw = mt_raw(&srv, NULL);
  redisReply *r = redisCommand(raw, "CLIENT PAUSE 200 WRITE");
  freeReplyObject(r);
  /* a write waits out the pause */
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "permissions:user:6",
                                secret, MISCACHE_TTL_PERMISSIONS),
                   MISCACHE_OK);
  const rec_t *s = must(MISCACHE_EV_SLOW_CALL, 0);
  assert_true(s->duration_us >= 100000);
  assert_non_null(strstr(s->message, "SET permissions"));
  assert_null(strstr(s->message, "SECRET"));
  redisFree(raw);

  miscache_latency_t l0, l;
  miscache_counters_reset(mc);
  assert_int_equal(miscache_latency(mc, &l0, sizeof l0), MISCACHE_OK);
  assert_int_equal(l0.calls[MISCACHE_CMD_READ], 0);
  for (int i = 0; i < 25; i++) {
    json_t *out = NULL;
    assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "permissions:user:6", &out),
                     MISCACHE_OK);
    json_decref(out);
  }
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "w", secret,
                                MISCACHE_TTL_LOCK), MISCACHE_OK);
  const char *keys[3] = {"w", "permissions:user:6", "nope"};
  json_t *outs[3] = {NULL};
  miscache_status_t sts[3];
  assert_int_equal(miscache_mget(mc, MISCACHE_DB_CACHE, 3, keys, outs, sts),
                   MISCACHE_OK);
  for (int i = 0; i < 3; i++) json_decref(outs[i]);
  uint64_t gone = 0;
  assert_int_equal(miscache_invalidate(mc, MISCACHE_DB_CACHE, "nothing:*", &gone),
                   MISCACHE_OK);
  miscache_lock_t *lk = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:x", 5000,
                                         NULL, NULL, &lk), MISCACHE_OK);
  assert_int_equal(miscache_lock_release(mc, lk), MISCACHE_OK);
  miscache_lock_free(lk);
  assert_int_equal(miscache_latency(mc, &l, sizeof l), MISCACHE_OK);
  assert_int_equal(l.calls[MISCACHE_CMD_READ], 25);
  assert_true(l.calls[MISCACHE_CMD_WRITE] >= 2); /* the SET, the lock's SET NX */
  assert_int_equal(l.calls[MISCACHE_CMD_MULTI], 1);
  assert_true(l.calls[MISCACHE_CMD_SCAN] >= 1);
  assert_true(l.calls[MISCACHE_CMD_SCRIPT] >= 1); /* the release */
  for (int c = 0; c < MISCACHE_CMD_CLASS_COUNT; c++) {
    uint64_t sum = 0;
    for (int b = 0; b < MISCACHE_LATENCY_BUCKETS; b++) sum += l.buckets[c][b];
    assert_int_equal(sum, l.calls[c]);
    assert_true(l.total_us[c] >= l.calls[c] ? 1 : l.calls[c] == 0);
  }
  assert_true(miscache_latency_bound(0) == 50e-6);
  assert_true(miscache_latency_bound(MISCACHE_LATENCY_BUCKETS) == -1);
  size_t need = miscache_latency_prometheus(&l, NULL, 0);
  char *text = malloc(need + 1);
  assert_int_equal(miscache_latency_prometheus(&l, text, need + 1), need);
  assert_non_null(strstr(text, "# TYPE miscache_command_duration_seconds histogram"));
  assert_non_null(strstr(text, "miscache_command_duration_seconds_bucket{class=\"read\","
                               "le=\"+Inf\"} 25\n"));
  assert_non_null(strstr(text, "miscache_command_duration_seconds_count{class=\"read\"} 25\n"));
  assert_non_null(strstr(text, "miscache_command_duration_seconds_count{class=\"multi\"} 1\n"));
  /* buckets are cumulative and never fall */
  for (int c = 0; c < MISCACHE_CMD_CLASS_COUNT; c++) {
    char pre[96];
    snprintf(pre, sizeof pre, "_bucket{class=\"%s\",le=\"",
             miscache_cmd_class_name((miscache_cmd_class_t)c));
    long long last = -1;
    for (const char *p = strstr(text, pre); p; p = strstr(p + 1, pre)) {
      long long v = atoll(strchr(p, '}') + 2);
      assert_true(v >= last);
      last = v;
    }
    assert_int_equal(last, (long long)l.calls[c]);
  }
  free(text);
  json_decref(secret);
  miscache_free(mc);

  /* a pool sums its handles' calls when they come back */
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, srv.url), MISCACHE_OK);
  miscache_pool_t *pool = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_pool_new(o, 2, &pool, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  for (int round = 0; round < 3; round++) {
    miscache_t *h = NULL;
    assert_int_equal(miscache_pool_acquire(pool, 1000, &h), MISCACHE_OK);
    assert_int_equal(miscache_ping(h), MISCACHE_OK);
    assert_int_equal(miscache_exists(h, MISCACHE_DB_CACHE, "k", &(bool){0}),
                     MISCACHE_OK);
    assert_int_equal(miscache_pool_release(pool, h), MISCACHE_OK);
  }
  miscache_latency_t pl;
  assert_int_equal(miscache_pool_latency(pool, &pl, sizeof pl), MISCACHE_OK);
  assert_int_equal(pl.calls[MISCACHE_CMD_OTHER], 3);
  assert_int_equal(pl.calls[MISCACHE_CMD_READ], 3);
  miscache_pool_free(pool);
}

/* A lock that expired under its holder. */
static void test_lock_lost(void **state) {
  (void)state;
  reset();
  miscache_t *mc = open_hooked(srv.url, 0);
  miscache_lock_t *lk = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:lost", 50,
                                         "me", NULL, &lk), MISCACHE_OK);
  mt_sleep_ms(120);
  assert_int_equal(miscache_lock_release(mc, lk), MISCACHE_ERR_NOT_OWNER);
  const rec_t *e = must(MISCACHE_EV_LOCK_LOST, 0);
  assert_non_null(strstr(e->message, "lock:lost"));
  assert_non_null(strstr(e->message, "expired"));
  miscache_lock_free(lk);
  miscache_free(mc);
}

static miscache_status_t perm_loader(void *ud, const char *key, json_t **out) {
  (void)key;
  *out = json_incref((json_t *)ud);
  return MISCACHE_OK;
}

/* The near cache's state changes. */
static void test_near_events(void **state) {
  (void)state;
  reset();
  char url[700];
  snprintf(url, sizeof url, "%s?near=on&near_ping_ms=20", srv.url);
  miscache_t *mc = open_hooked(url, 0);
  json_t *m = json_pack("{s:{s:b}}", "sales", "read", 1);
  assert_int_equal(miscache_permissions_set(mc, 1, m), MISCACHE_OK);
  bool allowed = false;
  miscache_status_t cst = miscache_permissions_check(
      mc, 1, "sales", MISCACHE_PERM_READ, perm_loader, m, &allowed, NULL);
  if (cst != MISCACHE_OK) fail_msg("check: %s: %s", miscache_strerror(cst), miscache_errmsg(mc));
  must(MISCACHE_EV_NEAR_CONFIRMED, 2000);
  /* fill it, then FLUSHALL: the server names no key, everything goes */
  for (int i = 0; i < 50 && miscache_permissions_check(mc, 1, "sales",
                        MISCACHE_PERM_READ, perm_loader, m, &allowed, NULL) ==
                        MISCACHE_OK; i++) {
    miscache_near_stats_t ns;
    miscache_near_stats(mc, &ns, sizeof ns);
    if (ns.entries) break;
    mt_sleep_ms(10);
  }
  redisContext *raw = mt_raw(&srv, NULL);
  freeReplyObject(redisCommand(raw, "FLUSHALL"));
  redisFree(raw);
  const rec_t *lost = must(MISCACHE_EV_NEAR_LOST, 2000);
  assert_non_null(strstr(lost->message, "flushed"));
  json_decref(m);
  miscache_free(mc);
}

/* A cluster: the slot map loaded, and MOVED followed after a slot moved. */
static void test_cluster_events(void **state) {
  (void)state;
  mt_cluster_t cl;
  assert_int_equal(mt_cluster_start(&cl, 3, false), 0);
  reset();
  miscache_t *mc = open_hooked(cl.url, 0);
  const rec_t *s = must(MISCACHE_EV_SLOTS_RELOADED, 0);
  assert_int_equal(s->count, 3);
  miscache_free(mc);
  /* a handle without a namespace: key "a" is in slot 15495 */
  json_t *v = json_true();
  unsigned slot = 15495;
  int a;
  json_t *out = NULL;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, cl.url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_event_hook(o, hook, &nrecs), MISCACHE_OK);
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "a", v, MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  a = mt_cluster_owner(&cl, slot);
  assert_true(a >= 0);
  assert_int_equal(mt_cluster_move_slot(&cl, a, (a + 1) % 3, slot, 0), 0);
  reset();
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "a", &out), MISCACHE_OK);
  json_decref(out);
  const rec_t *r = must(MISCACHE_EV_REDIRECT, 0);
  assert_non_null(strstr(r->message, "MOVED slot 15495"));
  json_decref(v);
  miscache_free(mc);
  mt_cluster_stop(&cl);
}

static void test_kind_names(void **state) {
  (void)state;
  for (int k = 0; k < MISCACHE_EVENT_KIND_COUNT; k++)
    assert_non_null(miscache_event_kind_name((miscache_event_kind_t)k));
  assert_null(miscache_event_kind_name(MISCACHE_EVENT_KIND_COUNT));
  assert_string_equal(miscache_event_kind_name(MISCACHE_EV_SLOW_CALL), "slow_call");
  assert_string_equal(miscache_cmd_class_name(MISCACHE_CMD_SCAN), "scan");
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_slow_call(o, -1), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_event_hook(NULL, hook, NULL),
                   MISCACHE_ERR_INVALID);
  miscache_options_free(o);
}

static int setup(void **state) {
  (void)state;
  return mt_server_start(&srv, NULL);
}

static int teardown(void **state) {
  (void)state;
  mt_server_stop(&srv);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kind_names),
      cmocka_unit_test(test_outage_events),
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test(test_slow_calls_and_latency),
      cmocka_unit_test(test_lock_lost),
      cmocka_unit_test(test_near_events),
      cmocka_unit_test(test_cluster_events),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

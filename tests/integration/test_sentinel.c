/* Sentinel: one master, one replica, three sentinels, all started by the
 * harness on loopback. A handle opened with a redis+sentinel:// URL finds
 * the master, keeps working when the first sentinel of its list is dead,
 * and follows a failover (SENTINEL FAILOVER, then a SIGKILLed master) while
 * a thread loops over typed writes and reads: only OK or ERR_UNAVAILABLE,
 * never a value that was not written to that key, and the promoted master
 * is reached within 5 s of the promotion. The switch times are printed, and
 * so are the writes lost with the old master (asynchronous replication: a
 * write it acknowledged after the promotion, before the client's next
 * check of the sentinels, is gone). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static mt_sentinels_t dep;

static int setup(void **state) {
  (void)state;
  return mt_sentinels_start(&dep);
}

static int teardown(void **state) {
  (void)state;
  mt_sentinels_stop(&dep);
  return 0;
}

static miscache_t *open_sentinel(const char *url) {
  miscache_options_t *o = miscache_options_new();
  assert_non_null(o);
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_namespace(o, mt_namespace()),
                   MISCACHE_OK);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  if (miscache_open(o, &mc, err, sizeof err) != MISCACHE_OK)
    fail_msg("open %s: %s", url, err);
  miscache_options_free(o);
  return mc;
}

static int master_port_of(miscache_t *mc) {
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(mc, &ls, sizeof ls), MISCACHE_OK);
  const char *colon = strrchr(ls.master, ':');
  return colon ? atoi(colon + 1) : -1;
}

static void test_finds_master(void **state) {
  (void)state;
  miscache_t *mc = open_sentinel(dep.url);
  assert_int_equal(master_port_of(mc), dep.master.port);
  miscache_session_t s = {.user_id = 41, .username = "lee"};
  assert_int_equal(miscache_session_set(mc, &s), MISCACHE_OK);
  miscache_session_t got;
  assert_int_equal(miscache_session_get(mc, 41, &got), MISCACHE_OK);
  assert_string_equal(got.username, "lee");
  miscache_session_clear(&got);
  miscache_free(mc);

  /* a dead first sentinel and a hostname are fine */
  int dead = mt_free_port(NULL);
  char url[600];
  snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d,localhost:%d/mymaster",
           dead, dep.port[1]);
  mc = open_sentinel(url);
  assert_int_equal(master_port_of(mc), dep.master.port);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  miscache_free(mc);

  /* an unknown master name is a clear error */
  snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d/nosuch",
           dep.port[0]);
  miscache_t *bad = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open_url(url, &bad, err, sizeof err),
                   MISCACHE_ERR_UNAVAILABLE);
  printf("  unknown master: %s\n", err);
  assert_non_null(strstr(err, "nosuch"));
}

/* Sentinel AUTH differs from the data nodes' (which have none here). */
static void test_sentinel_auth(void **state) {
  (void)state;
  assert_int_equal(mt_sentinel_add(&dep, "requirepass sentinel-pw\n"), 0);
  char url[256];
  snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d/mymaster",
           dep.port[3]);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open_url(url, &mc, err, sizeof err),
                   MISCACHE_ERR_AUTH);
  printf("  without sentinel AUTH: %s\n", err);
  /* the option */
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_sentinel_auth(o, NULL, "sentinel-pw"),
                   MISCACHE_OK);
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  assert_int_equal(master_port_of(mc), dep.master.port);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  miscache_free(mc);
  miscache_options_free(o);
  /* the URL parameter */
  snprintf(url, sizeof url,
           "redis+sentinel://127.0.0.1:%d/mymaster?sentinel_password=sentinel-pw",
           dep.port[3]);
  assert_int_equal(miscache_open_url(url, &mc, err, sizeof err), MISCACHE_OK);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  miscache_free(mc);
}

/* ---- failover under load --------------------------------------------------- */

typedef struct {
  miscache_t *mc;
  atomic_bool stop;
  long ok, unavailable, other, wrong, lost, stale;
  int64_t first_ok_on_new_ns; /* first OK write+read on the new master */
  int new_port;               /* set by the main thread once promoted */
  atomic_int promoted;
  char other_msg[MISCACHE_ERRMSG_SIZE];
} loop_t;

static void *writer(void *arg) {
  loop_t *lp = arg;
  for (long i = 0; !atomic_load(&lp->stop); i++) {
    miscache_session_t s = {.user_id = 1000 + i % 200, .username = "u"};
    char name[32];
    snprintf(name, sizeof name, "u%ld", i);
    s.username = name;
    miscache_status_t st = miscache_session_set(lp->mc, &s);
    miscache_session_t got = {0};
    if (st == MISCACHE_OK) st = miscache_session_get(lp->mc, s.user_id, &got);
    if (st == MISCACHE_OK) {
      lp->ok++;
      /* another value must be an older one of this key: a write the old
       * master acknowledged after the promotion, lost with it */
      long j = got.username[0] == 'u' ? atol(got.username + 1) : -1;
      if (strcmp(got.username, name) != 0) {
        if (j >= 0 && j < i && j % 200 == i % 200)
          lp->stale++;
        else
          lp->wrong++;
      }
      if (atomic_load(&lp->promoted) && !lp->first_ok_on_new_ns &&
          master_port_of(lp->mc) == lp->new_port)
        lp->first_ok_on_new_ns = mt_now_ns();
    } else if (st == MISCACHE_MISS) {
      lp->lost++; /* acknowledged by the old master, not replicated */
    } else if (st == MISCACHE_ERR_UNAVAILABLE) {
      lp->unavailable++;
      mt_sleep_ms(2);
    } else {
      lp->other++;
      snprintf(lp->other_msg, sizeof lp->other_msg, "%s: %s",
               miscache_strerror(st), miscache_errmsg(lp->mc));
    }
    miscache_session_clear(&got);
  }
  return NULL;
}

/* Runs the loop while trigger() moves the master; returns the switch time. */
static double failover_under_load(const char *what,
                                  void (*trigger)(void)) {
  static loop_t lp;
  memset(&lp, 0, sizeof lp);
  lp.mc = open_sentinel(dep.url);
  int old_port = master_port_of(lp.mc);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, writer, &lp), 0);
  mt_sleep_ms(300);
  long ok_before = lp.ok;
  trigger();
  /* wait until the sentinels name another master */
  int64_t t0 = mt_now_ns(), promoted = 0;
  while (mt_now_ns() - t0 < 30LL * 1000000000) {
    int p = mt_sentinel_master_port(&dep, 2);
    if (p > 0 && p != old_port) {
      promoted = mt_now_ns();
      lp.new_port = p;
      atomic_store(&lp.promoted, 1);
      break;
    }
    mt_sleep_ms(5);
  }
  assert_true(promoted != 0);
  while (!lp.first_ok_on_new_ns && mt_now_ns() - promoted < 10LL * 1000000000)
    mt_sleep_ms(5);
  mt_sleep_ms(200);
  atomic_store(&lp.stop, true);
  pthread_join(t, NULL);
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(lp.mc, &ls, sizeof ls), MISCACHE_OK);
  double sw = lp.first_ok_on_new_ns
                  ? (double)(lp.first_ok_on_new_ns - promoted) / 1e6
                  : -1;
  printf("  %s: master %d -> %d; sentinels named it %.0f ms after the "
         "trigger; the client's first OK on it %.0f ms after that\n"
         "    %ld ok, %ld unavailable, %ld other, %ld wrong; acknowledged "
         "writes lost with the old master: %ld keys gone, %ld keys back to "
         "an older value; %llu master lookups, %llu failovers, %llu "
         "resends\n",
         what, old_port, lp.new_port, (double)(promoted - t0) / 1e6, sw, lp.ok,
         lp.unavailable, lp.other, lp.wrong, lp.lost, lp.stale,
         (unsigned long long)ls.master_lookups,
         (unsigned long long)ls.failovers, (unsigned long long)ls.resends);
  if (lp.other) fail_msg("unexpected status: %s", lp.other_msg);
  assert_true(ok_before > 0);
  assert_int_equal(lp.wrong, 0);
  assert_true(lp.first_ok_on_new_ns != 0);
  assert_true(sw <= 5000.0);
  assert_int_equal(master_port_of(lp.mc), lp.new_port);
  assert_true(ls.failovers >= 1);
  miscache_free(lp.mc);
  return sw;
}

static void trigger_failover(void) {
  redisReply *r = mt_sentinel_cmd(&dep, 0, "SENTINEL FAILOVER mymaster");
  assert_non_null(r);
  assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
  freeReplyObject(r);
}

static mt_server_t *current_master(void) {
  int p = mt_sentinel_master_port(&dep, 0);
  return p == dep.master.port ? &dep.master : &dep.replica;
}

static void kill_master(void) {
  mt_server_kill(current_master());
}

/* the replica must be in sync with the master before the next failover */
static void wait_replica_synced(void) {
  for (int k = 0; k < 1500; k++) {
    long long slaves = -1;
    redisReply *r = mt_sentinel_cmd(&dep, 0, "SENTINEL MASTER mymaster");
    if (r && r->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "num-slaves") == 0)
          slaves = atoll(r->element[i + 1]->str);
    if (r) freeReplyObject(r);
    mt_server_t *m = current_master();
    redisContext *c = mt_raw(m, NULL);
    redisReply *info = c ? redisCommand(c, "INFO replication") : NULL;
    bool online = info && info->type == REDIS_REPLY_STRING &&
                  strstr(info->str, "state=online");
    if (info) freeReplyObject(info);
    if (c) redisFree(c);
    if (slaves >= 1 && online) return;
    mt_sleep_ms(10);
  }
  fail_msg("replica did not sync after the failover");
}

static void test_failover_command(void **state) {
  (void)state;
  failover_under_load("SENTINEL FAILOVER", trigger_failover);
  wait_replica_synced();
}

static void test_master_killed(void **state) {
  (void)state;
  failover_under_load("master SIGKILLed", kill_master);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_finds_master),
      cmocka_unit_test(test_sentinel_auth),
      cmocka_unit_test(test_failover_command),
      cmocka_unit_test(test_master_killed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

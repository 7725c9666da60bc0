/* Outage: the server is SIGKILLed and restarted three times while a thread
 * loops over writes and reads. No crash; every call during an outage comes
 * back ERR_UNAVAILABLE within the command timeout; calls succeed again
 * within one backoff cap (+100 ms) of each restart; a read never returns a
 * value whose write failed.
 * Then a 5 s outage with the default backoff (100 ms doubling to 5 s): at
 * most 10 connect attempts per second, calls refused in under 1 ms (99th
 * percentile; the slowest is printed) while
 * the breaker is open, the first call after the server is back succeeds
 * within 5.1 s, and get_or_load keeps answering from the loader. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

enum {
  ROUNDS = 3,
  TIMEOUT_MS = 1000, /* command and connect timeout (the defaults) */
  UP_MS = 800,      /* server up before each kill */
  CAP_MS = 500,     /* backoff cap of the first test */
  DOWN_MS = 700,    /* server down before each restart */
  MAX_EVENTS = 64
};

/* What the client thread saw: calls by status, the slowest call, and each
 * time the outcome switched between success and failure. */
typedef struct {
  miscache_t *mc;
  atomic_bool stop;
  long calls, ok, miss, unavailable, other, wrong_value;
  int64_t slowest_ns, slowest_failed_ns;
  int64_t first_ok_after[MAX_EVENTS]; /* time of first OK after a failure */
  int64_t first_fail[MAX_EVENTS];     /* time of first failure after OKs */
  int nup, ndown;
} client_log_t;

static void account(client_log_t *lg, miscache_status_t st, int64_t t0,
                    bool *up) {
  int64_t t1 = mt_now_ns(), d = t1 - t0;
  lg->calls++;
  if (d > lg->slowest_ns) lg->slowest_ns = d;
  if (st == MISCACHE_OK || st == MISCACHE_MISS) {
    st == MISCACHE_OK ? lg->ok++ : lg->miss++;
    if (!*up && lg->nup < MAX_EVENTS) lg->first_ok_after[lg->nup++] = t1;
    *up = true;
    return;
  }
  st == MISCACHE_ERR_UNAVAILABLE ? lg->unavailable++ : lg->other++;
  if (d > lg->slowest_failed_ns) lg->slowest_failed_ns = d;
  if (*up && lg->ndown < MAX_EVENTS) lg->first_fail[lg->ndown++] = t0;
  *up = false;
}

static void *client(void *arg) {
  client_log_t *lg = arg;
  bool up = true;
  for (long i = 0; !atomic_load(&lg->stop); i++) {
    char key[48];
    snprintf(key, sizeof key, "batch:status:%ld", i % 50);
    json_t *v = json_pack("{s:I}", "i", (json_int_t)i);
    int64_t t0 = mt_now_ns();
    miscache_status_t set = miscache_set(lg->mc, MISCACHE_DB_BATCH, key, v,
                                         MISCACHE_TTL_BATCH_STATUS);
    account(lg, set, t0, &up);
    json_t *out = NULL;
    t0 = mt_now_ns();
    miscache_status_t get = miscache_get(lg->mc, MISCACHE_DB_BATCH, key, &out);
    account(lg, get, t0, &up);
    /* a value read back is the one just written, and only if that write
     * succeeded (a restarted server is empty) */
    if (get == MISCACHE_OK && (set != MISCACHE_OK || !json_equal(v, out)))
      lg->wrong_value++;
    json_decref(out);
    json_decref(v);
  }
  return NULL;
}

static void test_kill_and_restart_under_load(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_command_timeout(o, TIMEOUT_MS);
  miscache_options_set_connect_timeout(o, TIMEOUT_MS);
  assert_int_equal(miscache_options_set_backoff(o, 100, CAP_MS), MISCACHE_OK);
  static client_log_t lg;
  lg.mc = mt_open(o);
  miscache_options_free(o);
  redisFree(mt_rc);
  mt_rc = NULL;

  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, client, &lg), 0);
  int64_t killed[ROUNDS], restarted[ROUNDS], back[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    mt_sleep_ms(UP_MS);
    killed[r] = mt_now_ns();
    mt_server_kill(&mt_srv);
    mt_sleep_ms(DOWN_MS);
    restarted[r] = mt_now_ns(); /* before the server even starts: strict */
    assert_int_equal(mt_server_restart(&mt_srv), 0);
    back[r] = mt_now_ns(); /* the server answers PING */
  }
  mt_sleep_ms(UP_MS);
  atomic_store(&lg.stop, true);
  pthread_join(t, NULL);
  mt_rc = mt_raw(&mt_srv, NULL);

  printf("  %ld calls: %ld ok, %ld miss, %ld unavailable, %ld other; "
         "slowest call %.1f ms, slowest failed call %.1f ms\n",
         lg.calls, lg.ok, lg.miss, lg.unavailable, lg.other,
         (double)lg.slowest_ns / 1e6, (double)lg.slowest_failed_ns / 1e6);
  assert_int_equal(lg.other, 0);
  assert_int_equal(lg.wrong_value, 0);
  assert_true(lg.slowest_failed_ns <= (int64_t)TIMEOUT_MS * 1000000);
  /* each outage was seen, and ended by the restart */
  assert_int_equal(lg.ndown, ROUNDS);
  assert_int_equal(lg.nup, ROUNDS);
  for (int r = 0; r < ROUNDS; r++) {
    double since_kill = (double)(lg.first_fail[r] - killed[r]) / 1e6;
    double after_restart = (double)(lg.first_ok_after[r] - restarted[r]) / 1e6;
    double after_back = (double)(lg.first_ok_after[r] - back[r]) / 1e6;
    printf("  round %d: first failure %.1f ms after the kill, first success "
           "%.1f ms after the restart began, %.1f ms after the server "
           "answered\n",
           r + 1, since_kill, after_restart, after_back);
    /* the failure belongs to this outage (a call in flight at the kill may
     * have started just before it) */
    assert_true(lg.first_fail[r] >= killed[r] - (int64_t)TIMEOUT_MS * 1000000);
    assert_true(lg.first_fail[r] < restarted[r]);
    assert_true(lg.first_ok_after[r] > restarted[r]);
    assert_true(after_back <= CAP_MS + 100.0);
  }
  /* and the handle is as good as new */
  json_t *v = json_true(), *out = NULL;
  assert_int_equal(miscache_set(lg.mc, MISCACHE_DB_BATCH, "batch:status:x", v,
                                MISCACHE_TTL_BATCH_STATUS),
                   MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(lg.mc, 4, "batch:status:x"), 1);
  assert_int_equal(
      miscache_get(lg.mc, MISCACHE_DB_BATCH, "batch:status:x", &out),
      MISCACHE_OK);
  assert_true(json_equal(v, out));
  json_decref(out);
  json_decref(v);
  miscache_free(lg.mc);
}

/* ---- the breaker, with the default backoff ------------------------------- */

enum { OUTAGE_MS = 5000, DEFAULT_CAP_MS = 5000 };

typedef struct {
  miscache_t *mc;
  atomic_bool stop;
  atomic_bool down; /* set by the main thread while the server is dead */
  long calls_down, loaded_down, fast_down;
  int64_t slowest_fast_ns;   /* slowest call that made no connect attempt */
  int64_t fast_ns[20000];    /* durations of those calls (the first ones) */
  int64_t first_ok_ns;       /* first OK of get after the server is back */
  atomic_llong back_ns;      /* when the server answered again */
} breaker_log_t;

static miscache_status_t loader(void *ud, const char *key, json_t **out) {
  (void)ud, (void)key;
  *out = json_pack("{s:s}", "from", "loader");
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static uint64_t connects(miscache_t *mc) {
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(mc, &ls, sizeof ls), MISCACHE_OK);
  return ls.connects;
}

static void *breaker_client(void *arg) {
  breaker_log_t *lg = arg;
  while (!atomic_load(&lg->stop)) {
    bool down = atomic_load(&lg->down);
    uint64_t c0 = connects(lg->mc);
    json_t *out = NULL;
    miscache_source_t src;
    int64_t t0 = mt_now_ns();
    miscache_status_t st =
        miscache_get_or_load(lg->mc, MISCACHE_DB_CACHE, "master:departments",
                             MISCACHE_TTL_MASTER_DATA, loader, NULL, &out, &src);
    int64_t d = mt_now_ns() - t0;
    bool probed = connects(lg->mc) != c0;
    if (down && atomic_load(&lg->down)) {
      lg->calls_down++;
      /* fails open: the loader's value, never an error */
      if (st == MISCACHE_OK && src == MISCACHE_SOURCE_UNCACHED) lg->loaded_down++;
      if (!probed) {
        if (lg->fast_down < 20000) lg->fast_ns[lg->fast_down] = d;
        lg->fast_down++;
        if (d > lg->slowest_fast_ns) lg->slowest_fast_ns = d;
      }
    }
    json_decref(out);
    long long back = atomic_load(&lg->back_ns);
    if (back && !lg->first_ok_ns && t0 >= back) {
      if (miscache_get(lg->mc, MISCACHE_DB_CACHE, "master:departments",
                       &out) != MISCACHE_ERR_UNAVAILABLE)
        lg->first_ok_ns = mt_now_ns();
      json_decref(out);
    }
    mt_sleep_ms(1); /* a busy service: about 1,000 calls a second */
  }
  return NULL;
}

static void test_breaker_during_outage(void **state) {
  (void)state;
  static breaker_log_t lg;
  lg.mc = mt_open(NULL); /* default backoff: 100 ms doubling to 5 s */
  redisFree(mt_rc);
  mt_rc = NULL;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, breaker_client, &lg), 0);
  mt_sleep_ms(200);
  uint64_t c0 = connects(lg.mc);
  atomic_store(&lg.down, true);
  mt_server_kill(&mt_srv);
  int64_t k0 = mt_now_ns();
  mt_sleep_ms(OUTAGE_MS);
  atomic_store(&lg.down, false);
  uint64_t during = connects(lg.mc) - c0;
  double secs = (double)(mt_now_ns() - k0) / 1e9;
  assert_int_equal(mt_server_restart(&mt_srv), 0);
  atomic_store(&lg.back_ns, mt_now_ns());
  int64_t until = mt_now_ns() + (int64_t)(DEFAULT_CAP_MS + 1000) * 1000000;
  while (!lg.first_ok_ns && mt_now_ns() < until) mt_sleep_ms(10);
  atomic_store(&lg.stop, true);
  pthread_join(t, NULL);
  mt_rc = mt_raw(&mt_srv, NULL);
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(lg.mc, &ls, sizeof ls), MISCACHE_OK);
  /* 99th percentile: a descheduled thread (2 cores, sanitizers, tests in
   * parallel) can make any single call slow; the breaker's cost cannot */
  long nf = lg.fast_down < 20000 ? lg.fast_down : 20000;
  qsort(lg.fast_ns, (size_t)nf, sizeof *lg.fast_ns, cmp_i64);
  int64_t p99 = nf ? lg.fast_ns[nf * 99 / 100] : 0;
  double recover = lg.first_ok_ns
                       ? (double)(lg.first_ok_ns - lg.back_ns) / 1e6
                       : -1;
  printf("  %.1f s outage: %llu connect attempts (%.1f/s); %ld calls, %ld "
         "answered by the loader, %ld refused by the breaker without a "
         "connect, 99th percentile %.3f ms, slowest %.3f ms; first success %.0f ms after the "
         "server was back; breaker opened %llu, closed %llu, fast failures "
         "%llu\n",
         secs, (unsigned long long)during, (double)during / secs,
         lg.calls_down, lg.loaded_down, lg.fast_down, (double)p99 / 1e6,
         (double)lg.slowest_fast_ns / 1e6, recover,
         (unsigned long long)ls.breaker_opens,
         (unsigned long long)ls.breaker_closes,
         (unsigned long long)ls.fast_failures);
  assert_true((double)during <= 10.0 * secs);
  assert_true(lg.calls_down > 1000);
  assert_int_equal(lg.loaded_down, lg.calls_down);
  assert_true(lg.fast_down > lg.calls_down - (long)during - 1);
  assert_true(p99 < 1000000);
  assert_true(lg.first_ok_ns != 0);
  assert_true(recover <= DEFAULT_CAP_MS + 100.0);
  assert_true(ls.breaker_opens >= 1);
  assert_true(ls.breaker_closes >= 1);
  assert_int_equal(ls.nodes_down, 0);
  miscache_free(lg.mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kill_and_restart_under_load),
      cmocka_unit_test(test_breaker_during_outage),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

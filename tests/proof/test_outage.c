/* Outage: the server is SIGKILLed and restarted three times while a thread
 * loops over writes and reads. No crash; every call during an outage comes
 * back ERR_UNAVAILABLE within the command timeout; calls succeed again
 * within 1 s of each restart; a read never returns a value whose write
 * failed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

enum {
  ROUNDS = 3,
  TIMEOUT_MS = 1000, /* command and connect timeout (the defaults) */
  UP_MS = 400,      /* server up before each kill */
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
  static client_log_t lg;
  lg.mc = mt_open(o);
  miscache_options_free(o);
  redisFree(mt_rc);
  mt_rc = NULL;

  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, client, &lg), 0);
  int64_t killed[ROUNDS], restarted[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    mt_sleep_ms(UP_MS);
    killed[r] = mt_now_ns();
    mt_server_kill(&mt_srv);
    mt_sleep_ms(DOWN_MS);
    restarted[r] = mt_now_ns(); /* before the server even starts: strict */
    assert_int_equal(mt_server_restart(&mt_srv), 0);
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
    printf("  round %d: first failure %.1f ms after the kill, first success "
           "%.1f ms after the restart began\n",
           r + 1, since_kill, after_restart);
    /* the failure belongs to this outage (a call in flight at the kill may
     * have started just before it) */
    assert_true(lg.first_fail[r] >= killed[r] - (int64_t)TIMEOUT_MS * 1000000);
    assert_true(lg.first_fail[r] < restarted[r]);
    assert_true(lg.first_ok_after[r] > restarted[r]);
    assert_true(after_restart <= 1000.0);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kill_and_restart_under_load),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

/* A stale batch run writes nothing, renewal failures
 * stop the run's writes with their real cause, a dead holder is visible and
 * can be taken over (token-checked). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "ops/ops.h"

static void today(char d[9]) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(d, 9, "%Y%m%d", &tm);
}

static miscache_status_t load_config(void *ud, int64_t company,
                                     miscache_batch_config_t *out) {
  (void)ud;
  (void)company;
  out->batch_enabled = true;
  return MISCACHE_OK;
}

static miscache_t *open_lock_ttl(const char *ns, int64_t seconds) {
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_ttl(o, MISCACHE_TTL_BATCH_LOCK, seconds);
  miscache_t *mc = mt_open_in(o, ns);
  miscache_options_free(o);
  return mc;
}

typedef struct {
  int pipe_fd;       /* write "1" once started (-1: none) */
  int sleep_ms;      /* after the first report */
  int64_t orders;    /* summary.orders_processed */
  bool pause_writes; /* CLIENT PAUSE WRITE longer than the lock TTL */
  miscache_t *rival; /* tries the lock after the pause */
  miscache_status_t rival_st, report1, report2;
} work_t;

static miscache_status_t work(void *ud, miscache_batch_run_t *run) {
  work_t *w = ud;
  miscache_batch_progress_t p = {.total_pages = 2, .processed_pages = 1};
  w->report1 = miscache_batch_run_report(run, &p, "collect");
  if (w->pipe_fd >= 0) (void)!write(w->pipe_fd, "1", 1);
  if (w->pause_writes) {
    mt_sleep_ms(300);
    mt_raw_cmd("CLIENT PAUSE 2200 WRITE");
  }
  mt_sleep_ms(w->sleep_ms);
  if (w->rival) {
    miscache_lock_t *l = NULL;
    w->rival_st = miscache_batch_lock_acquire(w->rival, 5, "rival", "r", &l);
    miscache_lock_free(l); /* left held: the rival's run */
  }
  p.processed_pages = 2;
  w->report2 = miscache_batch_run_report(run, &p, "classify");
  miscache_batch_run_summary(run)->orders_processed = w->orders;
  return MISCACHE_OK;
}

/* Forks a process that runs a batch of company 5 with work w and a lock TTL
 * of ttl_s; returns once its work has reported. The child exits 0 when its
 * run and its second report were refused (ERR_NOT_OWNER), else 1. */
static pid_t start_child_run(const char *ns, int64_t ttl_s, work_t w) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t kid = fork();
  assert_true(kid >= 0);
  if (kid == 0) {
    close(fds[0]);
    miscache_t *mc = open_lock_ttl(ns, ttl_s);
    w.pipe_fd = fds[1];
    miscache_status_t st = mc ? miscache_batch_run(mc, 5, "child", load_config,
                                                   NULL, work, &w, NULL)
                              : MISCACHE_ERR_UNAVAILABLE;
    miscache_free(mc);
    fprintf(stderr, "child run: %s, second report %s\n", miscache_strerror(st),
            miscache_strerror(w.report2));
    mt_child_exit(st == MISCACHE_ERR_NOT_OWNER &&
                          w.report2 == MISCACHE_ERR_NOT_OWNER
                      ? 0
                      : 1);
  }
  close(fds[1]);
  char c;
  assert_int_equal(read(fds[0], &c, 1), 1);
  close(fds[0]);
  return kid;
}

/* item 12: a run SIGSTOPped past its TTL, continued after a newer run
 * completed, writes neither status nor history. */
static void test_stale_run_writes_nothing(void **state) {
  (void)state;
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  work_t w0 = {.sleep_ms = 600, .orders = 999};
  pid_t kid = start_child_run(ns, 1, w0);
  kill(kid, SIGSTOP);
  mt_sleep_ms(1500); /* past the 1 s lock TTL */
  miscache_t *mc = open_lock_ttl(ns, 1);
  assert_non_null(mc);
  work_t w = {.pipe_fd = -1, .sleep_ms = 0, .orders = 111};
  assert_int_equal(
      miscache_batch_run(mc, 5, "newer", load_config, NULL, work, &w, NULL),
      MISCACHE_OK);
  kill(kid, SIGCONT);
  int ws = 0;
  assert_int_equal(waitpid(kid, &ws, 0), kid);
  assert_true(WIFEXITED(ws));
  assert_int_equal(WEXITSTATUS(ws), 0);
  char d[9];
  today(d);
  miscache_batch_history_t h;
  assert_int_equal(miscache_batch_history_get(mc, 5, d, &h), MISCACHE_OK);
  assert_string_equal(h.status, "completed");
  assert_int_equal(h.summary.orders_processed, 111);
  miscache_batch_history_clear(&h);
  miscache_batch_status_t s;
  assert_int_equal(miscache_batch_status_get(mc, 5, &s), MISCACHE_OK);
  assert_string_equal(s.status, "completed");
  assert_int_equal(s.errors.count, 0);
  miscache_batch_status_clear(&s);
  miscache_free(mc);
}

/* item 13: renewal fails for longer than the TTL (writes paused), a rival
 * takes the lock: the run's next report is refused and the run returns the
 * renewal's own failure, not "lock lost". */
static void test_renewal_failure_stops_writes(void **state) {
  (void)state;
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  miscache_t *mc = open_lock_ttl(ns, 1);
  assert_non_null(mc);
  work_t w = {.pipe_fd = -1, .sleep_ms = 2400, .pause_writes = true};
  w.rival = open_lock_ttl(ns, 1);
  miscache_status_t st =
      miscache_batch_run(mc, 5, "paused", load_config, NULL, work, &w, NULL);
  print_message("renewal outage: run %s (%s)\n", miscache_strerror(st),
                miscache_errmsg(mc));
  assert_int_equal(w.report1, MISCACHE_OK);
  assert_int_equal(w.rival_st, MISCACHE_OK); /* the TTL did run out */
  assert_int_equal(w.report2, MISCACHE_ERR_NOT_OWNER);
  assert_int_equal(st, MISCACHE_ERR_UNAVAILABLE); /* the renewal's cause */
  assert_non_null(strstr(miscache_errmsg(mc), "renewal"));
  /* the rival's lock is untouched */
  miscache_batch_lock_state_t ls;
  assert_int_equal(miscache_batch_lock_state(mc, 5, &ls), MISCACHE_OK);
  assert_true(ls.held);
  assert_string_equal(ls.locked_by, "rival");
  miscache_free(w.rival);
  miscache_free(mc);
}

/* item 14: a SIGKILLed holder shows as stale; only a token-checked takeover
 * of a stale lock succeeds. */
static void test_dead_holder_stale_and_takeover(void **state) {
  (void)state;
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  work_t w0 = {.sleep_ms = 60000};
  pid_t kid = start_child_run(ns, 6, w0);
  miscache_t *mc = open_lock_ttl(ns, 6);
  assert_non_null(mc);
  miscache_batch_status_t s;
  assert_int_equal(miscache_batch_status_get(mc, 5, &s), MISCACHE_OK);
  assert_string_equal(s.status, "running");
  assert_false(s.stale); /* alive and renewing */
  miscache_batch_status_clear(&s);
  miscache_batch_lock_state_t ls;
  assert_int_equal(miscache_batch_lock_state(mc, 5, &ls), MISCACHE_OK);
  miscache_lock_t *l = NULL;
  assert_int_equal(miscache_batch_lock_takeover(mc, 5, ls.token, "op", "x", &l),
                   MISCACHE_ERR_LOCKED); /* a live holder is not taken over */
  kill(kid, SIGKILL);
  int ws;
  waitpid(kid, &ws, 0);
  mt_sleep_ms(3500); /* past the 2 s renewal period + 1 s, inside the TTL */
  assert_int_equal(miscache_batch_status_get(mc, 5, &s), MISCACHE_OK);
  assert_string_equal(s.status, "running");
  assert_true(s.stale);
  miscache_batch_status_clear(&s);
  assert_int_equal(miscache_batch_lock_state(mc, 5, &ls), MISCACHE_OK);
  assert_true(ls.held);
  assert_true(ls.stale);
  assert_int_equal(ls.pid, kid);
  assert_true(ls.host[0] != 0);
  assert_true(ls.heartbeat_age_ms > 3000);
  print_message("dead holder: pid %lld on %s, heartbeat %lld ms old, fence "
                "%lld\n",
                (long long)ls.pid, ls.host, (long long)ls.heartbeat_age_ms,
                (long long)ls.fence);
  assert_int_equal(
      miscache_batch_lock_takeover(mc, 5, "not-the-token", "op", "x", &l),
      MISCACHE_ERR_LOCKED);
  assert_int_equal(miscache_batch_lock_takeover(mc, 5, ls.token, "op", "x", &l),
                   MISCACHE_OK);
  assert_true(miscache_lock_fence(l) > ls.fence);
  miscache_batch_lock_state_t now;
  assert_int_equal(miscache_batch_lock_state(mc, 5, &now), MISCACHE_OK);
  assert_string_equal(now.token, miscache_lock_token(l));
  assert_false(now.stale);
  assert_int_equal(miscache_lock_release(mc, l), MISCACHE_OK);
  miscache_lock_free(l);
  miscache_free(mc);
}

static void test_script_digests(void **state) {
  (void)state;
  const char *src[] = {miscache__lua_fence_acquire, miscache__lua_heartbeat,
                       miscache__lua_fenced_set, miscache__lua_takeover};
  const char *sha[] = {
      miscache__lua_fence_acquire_sha, miscache__lua_heartbeat_sha,
      miscache__lua_fenced_set_sha, miscache__lua_takeover_sha};
  for (int i = 0; i < 4; i++) {
    redisReply *r = redisCommand(mt_rc, "SCRIPT LOAD %s", src[i]);
    assert_non_null(r);
    assert_string_equal(r->str, sha[i]);
    freeReplyObject(r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_script_digests),
      cmocka_unit_test(test_stale_run_writes_nothing),
      cmocka_unit_test(test_renewal_failure_stops_writes),
      cmocka_unit_test(test_dead_holder_stale_and_takeover),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

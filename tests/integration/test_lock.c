/* Locks: exclusion, metadata, token-checked release and extend, scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "ops/ops.h"

#define KEY "batch:lock:1"

static void test_exclusion_between_handles(void **state) {
  (void)state;
  miscache_t *a = mt_open(NULL);
  /* b shares a's namespace so both compete for the same key */
  miscache_t *b = mt_open_in(NULL, miscache_namespace(a));
  assert_non_null(b);

  miscache_lock_t *la = NULL, *lb = NULL;
  assert_int_equal(miscache_lock_acquire(a, MISCACHE_DB_BATCH, KEY, 60000,
                                         "worker-a", "b-001", &la),
                   MISCACHE_OK);
  assert_int_equal(miscache_lock_acquire(b, MISCACHE_DB_BATCH, KEY, 60000,
                                         "worker-b", "b-002", &lb),
                   MISCACHE_ERR_LOCKED);
  assert_null(lb);
  assert_true(strstr(miscache_errmsg(b), "worker-a") != NULL);
  /* b cannot take it by releasing: it has no lock object; a releases */
  assert_int_equal(miscache_lock_release(a, la), MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(a, 4, KEY), 0);
  assert_int_equal(miscache_lock_acquire(b, MISCACHE_DB_BATCH, KEY, 60000,
                                         "worker-b", "b-002", &lb),
                   MISCACHE_OK);
  assert_string_not_equal(miscache_lock_token(la), miscache_lock_token(lb));
  /* a's stale lock object cannot release b's lock */
  assert_int_equal(miscache_lock_release(a, la), MISCACHE_ERR_NOT_OWNER);
  assert_int_equal(mt_raw_exists_in(a, 4, KEY), 1);
  assert_int_equal(miscache_lock_release(b, lb), MISCACHE_OK);
  miscache_lock_free(la);
  miscache_lock_free(lb);
  miscache_free(a);
  miscache_free(b);
}

static void test_value_and_ttl(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_lock_t *l = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_BATCH, KEY, 1800000,
                                         "batch-runner@host", "20261124-1", &l),
                   MISCACHE_OK);
  assert_string_equal(miscache_lock_key(l), KEY);
  char *raw = mt_raw_get(mc, MISCACHE_DB_BATCH, KEY);
  json_error_t je;
  json_t *v = json_loads(raw, 0, &je);
  assert_non_null(v);
  assert_string_equal(json_string_value(json_object_get(v, "token")),
                      miscache_lock_token(l));
  assert_int_equal(strlen(miscache_lock_token(l)), 36);
  assert_string_equal(json_string_value(json_object_get(v, "locked_by")),
                      "batch-runner@host");
  assert_string_equal(json_string_value(json_object_get(v, "batch_id")),
                      "20261124-1");
  const char *at = json_string_value(json_object_get(v, "locked_at"));
  assert_non_null(at);
  assert_int_equal(strlen(at), 20);
  assert_int_equal(at[19], 'Z');
  json_decref(v);
  free(raw);
  long long p = mt_raw_pttl(mc, MISCACHE_DB_BATCH, KEY);
  assert_true(p > 1795000 && p <= 1800000);
  json_t *info = NULL;
  assert_int_equal(miscache_lock_info(mc, MISCACHE_DB_BATCH, KEY, &info),
                   MISCACHE_OK);
  json_decref(info);
  assert_int_equal(miscache_lock_release(mc, l), MISCACHE_OK);
  assert_int_equal(miscache_lock_info(mc, MISCACHE_DB_BATCH, KEY, &info),
                   MISCACHE_MISS);
  miscache_lock_free(l);

  /* metadata may be NULL: stored as JSON null */
  assert_int_equal(
      miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:x", 1000, NULL, NULL, &l),
      MISCACHE_OK);
  raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "lock:x");
  assert_non_null(strstr(raw, "\"locked_by\":null"));
  assert_non_null(strstr(raw, "\"batch_id\":null"));
  free(raw);
  miscache_lock_release(mc, l);
  miscache_lock_free(l);
  /* bad input */
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:x", 0,
                                         NULL, NULL, &l),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:x", 10,
                                         "\xff", NULL, &l),
                   MISCACHE_ERR_ENCODE);
  assert_int_equal(mt_raw_exists_in(mc, 1, "lock:x"), 0);
  miscache_free(mc);
}

/* The old owner's late release leaves the next holder's lock in place. */
static void test_expired_release_keeps_new_holder(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_lock_t *old = NULL, *next = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_BATCH, KEY, 100, "old",
                                         NULL, &old),
                   MISCACHE_OK);
  mt_sleep_ms(250);
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_BATCH, KEY, 60000,
                                         "next", NULL, &next),
                   MISCACHE_OK);
  assert_int_equal(miscache_lock_release(mc, old), MISCACHE_ERR_NOT_OWNER);
  assert_non_null(strstr(miscache_errmsg(mc), "another owner"));
  assert_int_equal(miscache_lock_extend(mc, old, 60000), MISCACHE_ERR_NOT_OWNER);
  char *raw = mt_raw_get(mc, MISCACHE_DB_BATCH, KEY);
  assert_non_null(raw);
  assert_non_null(strstr(raw, miscache_lock_token(next)));
  free(raw);
  assert_int_equal(miscache_lock_release(mc, next), MISCACHE_OK);
  /* expired with nobody after it */
  assert_int_equal(miscache_lock_release(mc, old), MISCACHE_ERR_NOT_OWNER);
  assert_non_null(strstr(miscache_errmsg(mc), "nobody"));
  miscache_lock_free(old);
  miscache_lock_free(next);
  miscache_free(mc);
}

static void test_extend(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_lock_t *l = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_CACHE,
                                         "lock:serial_generation:REAN", 1000,
                                         "w", NULL, &l),
                   MISCACHE_OK);
  assert_int_equal(miscache_lock_extend(mc, l, 300000), MISCACHE_OK);
  long long p = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "lock:serial_generation:REAN");
  assert_true(p > 295000 && p <= 300000);
  assert_int_equal(miscache_lock_release(mc, l), MISCACHE_OK);
  miscache_lock_free(l);
  miscache_free(mc);
}

static void test_script_digests_and_noscript(void **state) {
  (void)state;
  redisReply *r = redisCommand(mt_rc, "SCRIPT LOAD %s", miscache__lua_release);
  assert_string_equal(r->str, miscache__lua_release_sha);
  freeReplyObject(r);
  r = redisCommand(mt_rc, "SCRIPT LOAD %s", miscache__lua_extend);
  assert_string_equal(r->str, miscache__lua_extend_sha);
  freeReplyObject(r);
  mt_raw_cmd("SCRIPT FLUSH"); /* on a cluster: every node forgets them */
  miscache_t *mc = mt_open(NULL);
  miscache_lock_t *l = NULL;
  assert_int_equal(
      miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:n", 5000, "w", NULL, &l),
      MISCACHE_OK);
  assert_int_equal(miscache_lock_extend(mc, l, 9000), MISCACHE_OK);
  assert_int_equal(miscache_lock_release(mc, l), MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(mc, 1, "lock:n"), 0);
  /* on the node that ran them (its reply is the key's, so EXISTS routes) */
  char full[96];
  snprintf(full, sizeof full, "%slock:n", miscache_namespace(mc));
  r = mt_cluster_active ? NULL : redisCommand(mt_rc, "SCRIPT EXISTS %s %s",
                                              miscache__lua_release_sha,
                                              miscache__lua_extend_sha);
  for (int i = 0; mt_cluster_active && !r && i < MT_CLUSTER_MAX; i++) {
    const mt_server_t *node = &mt_cluster_active->node[i];
    redisContext *c = node->pid > 0 ? mt_raw(node, NULL) : NULL;
    /* the node that serves the key answers PTTL; the others say MOVED */
    redisReply *probe = c ? redisCommand(c, "PTTL %s", full) : NULL;
    if (probe && probe->type != REDIS_REPLY_ERROR)
      r = redisCommand(c, "SCRIPT EXISTS %s %s", miscache__lua_release_sha,
                       miscache__lua_extend_sha);
    if (probe) freeReplyObject(probe);
    if (c) redisFree(c);
  }
  assert_non_null(r);
  assert_int_equal(r->element[0]->integer, 1); /* EVAL cached it */
  assert_int_equal(r->element[1]->integer, 1);
  freeReplyObject(r);
  miscache_lock_free(l);
  miscache_free(mc);
}

/* Several processes, one key: never two inside at once. The critical
 * section INCRs a raw counter and checks it reads 1. */
static void test_exclusion_across_processes(void **state) {
  (void)state;
  enum { PROCS = 4, ROUNDS = 150 };
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  char inside[96];
  snprintf(inside, sizeof inside, "%sinside", ns);
  fflush(NULL);
  pid_t kids[PROCS];
  for (int p = 0; p < PROCS; p++) {
    kids[p] = fork();
    if (kids[p] == 0) {
      miscache_t *mc = mt_open_in(NULL, ns);
      if (!mc) mt_child_exit(2);
      redisContext *rc = mt_raw(&mt_srv, NULL);
      int got = 0, bad = 0;
      while (got < ROUNDS) {
        miscache_lock_t *l = NULL;
        miscache_status_t st =
            miscache_lock_acquire(mc, MISCACHE_DB_BATCH, KEY, 10000, "p", NULL, &l);
        if (st == MISCACHE_ERR_LOCKED) continue;
        if (st != MISCACHE_OK) mt_child_exit(3);
        if (mt_raw_int(rc, 9, "INCR %s", inside) != 1) bad++;
        mt_raw_int(rc, 9, "DECR %s", inside);
        if (miscache_lock_release(mc, l) != MISCACHE_OK) bad++;
        miscache_lock_free(l);
        got++;
      }
      redisFree(rc);
      miscache_free(mc);
      mt_child_exit(bad ? 1 : 0);
    }
  }
  for (int p = 0; p < PROCS; p++) {
    int st = 0;
    assert_int_equal(waitpid(kids[p], &st, 0), kids[p]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exclusion_between_handles),
      cmocka_unit_test(test_value_and_ttl),
      cmocka_unit_test(test_expired_release_keeps_new_holder),
      cmocka_unit_test(test_extend),
      cmocka_unit_test(test_script_digests_and_noscript),
      cmocka_unit_test(test_exclusion_across_processes),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

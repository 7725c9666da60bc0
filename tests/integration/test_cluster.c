/* Redis Cluster, started by the harness on loopback: multi-key reads split
 * by slot come back in order; one company's keys spread over every master
 * are all invalidated, another's stay, the count is exact; the masters are
 * scanned at once (one paused master holds up only its own pages); the fenced batch
 * lock refuses clearly without the hash-tagged key format; slots move
 * between masters (CLUSTER SETSLOT + MIGRATE) under a read/write loop with
 * no wrong answer and no error; a SIGKILLed master is replaced by its
 * replica and writes resume (time printed). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/cluster.h"
#include "fixture.h"

static mt_cluster_t cl;

static int setup(void **state) {
  (void)state;
  if (mt_cluster_start(&cl, 3, false) != 0) return -1;
  mt_cluster_active = &cl;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  mt_cluster_active = NULL;
  mt_cluster_stop(&cl);
  return 0;
}

static miscache_t *open_on(const char *url, bool tags) {
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_namespace(o, mt_namespace()),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_hash_tags(o, tags), MISCACHE_OK);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  if (miscache_open(o, &mc, err, sizeof err) != MISCACHE_OK)
    fail_msg("open %s: %s", url, err);
  miscache_options_free(o);
  return mc;
}

static int owner_of(const mt_cluster_t *c, unsigned s) {
  int i = mt_cluster_owner(c, s);
  assert_true(i >= 0);
  return i;
}

static unsigned full_slot(miscache_t *mc, const char *key) {
  char full[512];
  snprintf(full, sizeof full, "%s%s", miscache_namespace(mc), key);
  return miscache__key_slot(full, strlen(full));
}

static void test_mget_split_in_order(void **state) {
  (void)state;
  miscache_t *mc = open_on(cl.url, false);
  enum { N = 1000 };
  static char names[N][32];
  static const char *keys[N];
  static json_t *vals[N];
  static miscache_status_t sts[N];
  bool seen[3] = {false, false, false};
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "master:products:category:%d", i);
    keys[i] = names[i];
    if (i % 3 == 0) continue; /* a third stays missing */
    json_t *v = json_integer(i);
    assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, keys[i], v,
                                  MISCACHE_TTL_MASTER_DATA),
                     MISCACHE_OK);
    json_decref(v);
    seen[owner_of(&cl, full_slot(mc, keys[i]))] = true;
  }
  assert_true(seen[0] && seen[1] && seen[2]); /* on every master */
  assert_int_equal(miscache_mget(mc, MISCACHE_DB_CACHE, N, keys, vals, sts),
                   MISCACHE_OK);
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0) {
      assert_int_equal(sts[i], MISCACHE_MISS);
      assert_null(vals[i]);
    } else {
      assert_int_equal(sts[i], MISCACHE_OK);
      assert_int_equal(json_integer_value(vals[i]), i);
    }
    json_decref(vals[i]);
  }
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(mc, &ls, sizeof ls), MISCACHE_OK);
  assert_string_equal(ls.master, "cluster");
  /* monitoring: keys per logical db by SCAN of every master */
  miscache_server_info_t si;
  assert_int_equal(miscache_server_info(mc, &si), MISCACHE_OK);
  assert_true(si.keys[MISCACHE_DB_CACHE] >= 666);
  assert_int_equal(si.expires[MISCACHE_DB_CACHE], -1);
  assert_true(si.used_memory > 0);
  printf("  1,000-key MGET over 3 masters: in order; %llu slot map loads, "
         "%llu connects\n",
         (unsigned long long)ls.master_lookups,
         (unsigned long long)ls.connects);
  miscache_free(mc);
}

static void test_company_invalidation_precise(void **state) {
  (void)state;
  miscache_t *mc = open_on(cl.url, false);
  enum { PER = 300 };
  bool on[3] = {false, false, false};
  json_t *v = json_object();
  for (int company = 1; company <= 10; company += 9)
    for (int i = 0; i < PER; i++) {
      char k[64];
      snprintf(k, sizeof k, "gift:classification:P%d:%d", i, company);
      assert_int_equal(miscache_set(mc, MISCACHE_DB_GIFT, k, v,
                                    MISCACHE_TTL_GIFT_CLASSIFICATION),
                       MISCACHE_OK);
      if (company == 1) on[owner_of(&cl, full_slot(mc, k))] = true;
    }
  json_decref(v);
  assert_true(on[0] && on[1] && on[2]);
  uint64_t n = 0;
  assert_int_equal(miscache_invalidate_gift_rules(mc, 1, &n),
                   MISCACHE_OK);
  assert_int_equal(n, PER);
  for (int i = 0; i < PER; i++) {
    char k[64];
    bool e1 = true, e10 = false;
    snprintf(k, sizeof k, "gift:classification:P%d:1", i);
    assert_int_equal(miscache_exists(mc, MISCACHE_DB_GIFT, k, &e1), MISCACHE_OK);
    snprintf(k, sizeof k, "gift:classification:P%d:10", i);
    assert_int_equal(miscache_exists(mc, MISCACHE_DB_GIFT, k, &e10),
                     MISCACHE_OK);
    assert_false(e1);
    assert_true(e10);
  }
  printf("  company 1: %d keys on all 3 masters removed (count %llu), "
         "company 10's %d kept\n",
         PER, (unsigned long long)n, PER);
  miscache_free(mc);
}

/* An invalidation in its own thread (the main one watches the masters). */
typedef struct {
  miscache_t *mc;
  uint64_t n;
  miscache_status_t st;
} inval_t;

static void *inval_run(void *arg) {
  inval_t *iv = arg;
  iv->st = miscache_invalidate(iv->mc, MISCACHE_DB_CACHE,
                               "master:products:category:*", &iv->n);
  return NULL;
}

static long long scans_on(redisContext *n) {
  return mt_info_int(n, "commandstats", "\r\ncmdstat_scan:calls=", 0);
}

/* The masters scan at once: while one master is paused (CLIENT PAUSE ALL,
 * so its SCAN waits), the two others have already been asked for their
 * pages, whichever master is the paused one (one after the other, the
 * masters after it would wait for it). The count stays exact. */
static void test_masters_scan_at_once(void **state) {
  (void)state;
  enum { PER = 600, PAUSE_MS = 2000 };
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, cl.url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_namespace(o, mt_namespace()),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_command_timeout(o, 10000),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_scan(o, 50, 100), MISCACHE_OK);
  inval_t iv = {0};
  char err[MISCACHE_ERRMSG_SIZE];
  if (miscache_open(o, &iv.mc, err, sizeof err) != MISCACHE_OK)
    fail_msg("open: %s", err);
  miscache_options_free(o);
  redisContext *raw[3];
  for (int i = 0; i < 3; i++) assert_non_null(raw[i] = mt_raw(&cl.node[i], NULL));
  json_t *v = json_integer(1);
  for (int paused = 0; paused < 3; paused++) {
    bool on[3] = {false, false, false};
    for (int i = 0; i < PER; i++) {
      char k[64];
      snprintf(k, sizeof k, "master:products:category:%d", i);
      assert_int_equal(miscache_set(iv.mc, MISCACHE_DB_CACHE, k, v,
                                    MISCACHE_TTL_MASTER_DATA),
                       MISCACHE_OK);
      on[owner_of(&cl, full_slot(iv.mc, k))] = true;
    }
    assert_true(on[0] && on[1] && on[2]);
    long long before[3];
    for (int i = 0; i < 3; i++) before[i] = scans_on(raw[i]);
    redisReply *r = redisCommand(raw[paused], "CLIENT PAUSE %d ALL", PAUSE_MS);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    int64_t until = mt_now_ns() / 1000000 + PAUSE_MS;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, inval_run, &iv), 0);
    bool others_asked = false;
    while (!others_asked && mt_now_ns() / 1000000 < until - 200) {
      others_asked = true;
      for (int i = 0; i < 3; i++)
        if (i != paused && scans_on(raw[i]) <= before[i]) others_asked = false;
      if (!others_asked) mt_sleep_ms(5);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(iv.st, MISCACHE_OK);
    assert_int_equal(iv.n, PER);
    assert_true(others_asked);
    for (int i = 0; i < 3; i++) /* several pages each */
      assert_true(scans_on(raw[i]) - before[i] >= 2);
  }
  json_decref(v);
  printf("  %d keys on 3 masters, SCAN COUNT 50: with any one master paused "
         "the two others were already scanning\n",
         PER);
  for (int i = 0; i < 3; i++) redisFree(raw[i]);
  miscache_free(iv.mc);
}

static void test_batch_lock_needs_hash_tags(void **state) {
  (void)state;
  miscache_t *mc = open_on(cl.url, false);
  miscache_lock_t *l = NULL;
  assert_int_equal(miscache_batch_lock_acquire(mc, 3, "me", NULL, &l),
                   MISCACHE_ERR_INVALID);
  assert_null(l);
  assert_non_null(strstr(miscache_errmsg(mc), "hash"));
  miscache_free(mc);
  mc = open_on(cl.url, true);
  assert_int_equal(miscache_batch_lock_acquire(mc, 3, "me", NULL, &l),
                   MISCACHE_OK);
  assert_true(miscache_lock_fence(l) > 0);
  assert_int_equal(miscache_lock_release(mc, l), MISCACHE_OK);
  miscache_lock_free(l);
  miscache_free(mc);
}

/* ---- resharding under load ------------------------------------------------- */

enum { RKEYS = 64 };

typedef struct {
  miscache_t *mc;
  char keys[RKEYS][48];
  atomic_bool stop;
  long ok, errors, wrong;
  char err[MISCACHE_ERRMSG_SIZE];
} rloop_t;

static void *rloop(void *arg) {
  rloop_t *lp = arg;
  for (long i = 0; !atomic_load(&lp->stop); i++) {
    const char *k = lp->keys[i % RKEYS];
    json_t *v = json_integer(i), *out = NULL;
    miscache_status_t st =
        miscache_set(lp->mc, MISCACHE_DB_CACHE, k, v, MISCACHE_TTL_MASTER_DATA);
    if (st == MISCACHE_OK) st = miscache_get(lp->mc, MISCACHE_DB_CACHE, k, &out);
    if (st == MISCACHE_OK) {
      lp->ok++;
      if (json_integer_value(out) != i) lp->wrong++;
    } else {
      lp->errors++;
      snprintf(lp->err, sizeof lp->err, "%s: %s", miscache_strerror(st),
               miscache_errmsg(lp->mc));
    }
    json_decref(out);
    json_decref(v);
  }
  return NULL;
}

static void move_slot(int a, int b, unsigned s) {
  assert_int_equal(mt_cluster_move_slot(&cl, a, b, s, 20), 0);
}

static void test_resharding_under_load(void **state) {
  (void)state;
  static rloop_t lp;
  memset(&lp, 0, sizeof lp);
  lp.mc = open_on(cl.url, false);
  /* keys in 4 slots of master 0, 16 keys each (hash tags pick the slot) */
  unsigned slots[4];
  int found = 0;
  for (int t = 0; found < 4 && t < 100000; t++) {
    char k[48];
    snprintf(k, sizeof k, "master:products:category:{r%d}", t);
    unsigned s = full_slot(lp.mc, k);
    if (owner_of(&cl, s) != 0) continue;
    for (int j = 0; j < 16; j++)
      snprintf(lp.keys[found * 16 + j], sizeof lp.keys[0],
               "master:products:category:{r%d}%d", t, j);
    slots[found++] = s;
  }
  assert_int_equal(found, 4);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, rloop, &lp), 0);
  mt_sleep_ms(200);
  for (int i = 0; i < 3; i++) move_slot(0, 1 + i % 2, slots[i]);
  /* the fourth finalized on the source 40 ms before the target: commands
   * of that slot bounce between the two until the target knows */
  assert_int_equal(mt_cluster_move_slot_gap(&cl, 0, 2, slots[3], 20, 40), 0);
  mt_sleep_ms(200);
  /* and two of them back */
  move_slot(1, 0, slots[0]);
  move_slot(2, 0, slots[1]);
  mt_sleep_ms(200);
  atomic_store(&lp.stop, true);
  pthread_join(th, NULL);
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(lp.mc, &ls, sizeof ls), MISCACHE_OK);
  printf("  resharding 6 slot moves under load (one finalized 40 ms apart): %ld ok, %ld errors, %ld "
         "wrong; %llu MOVED/ASK redirections followed, %llu TRYAGAIN "
         "retries, %llu slot map loads\n",
         lp.ok, lp.errors, lp.wrong, (unsigned long long)ls.redirects,
         (unsigned long long)ls.cluster_retries,
         (unsigned long long)ls.master_lookups);
  if (lp.errors) fail_msg("an error a retry could have avoided: %s", lp.err);
  assert_int_equal(lp.wrong, 0);
  assert_true(lp.ok > 100);
  assert_true(ls.redirects > 0);
  assert_int_equal(owner_of(&cl, slots[2]), 1);
  assert_int_equal(owner_of(&cl, slots[3]), 2);
  miscache_free(lp.mc);
}

/* ---- failover ----------------------------------------------------------------- */

typedef struct {
  miscache_t *mc;
  char keys[8][48]; /* keys of the master that will die */
  atomic_bool stop;
  atomic_llong first_ok_after_ns;
  long long killed_ns;
  long ok, unavailable, other, wrong;
  char err[MISCACHE_ERRMSG_SIZE];
} floop_t;

static void *floop(void *arg) {
  floop_t *lp = arg;
  for (long i = 0; !atomic_load(&lp->stop); i++) {
    const char *k = lp->keys[i % 8];
    json_t *v = json_integer(i), *out = NULL;
    miscache_status_t st =
        miscache_set(lp->mc, MISCACHE_DB_CACHE, k, v, MISCACHE_TTL_MASTER_DATA);
    if (st == MISCACHE_OK) st = miscache_get(lp->mc, MISCACHE_DB_CACHE, k, &out);
    if (st == MISCACHE_OK) {
      lp->ok++;
      if (json_integer_value(out) != i) lp->wrong++;
      long long killed = __atomic_load_n(&lp->killed_ns, __ATOMIC_SEQ_CST);
      if (killed && !atomic_load(&lp->first_ok_after_ns))
        atomic_store(&lp->first_ok_after_ns, mt_now_ns());
    } else if (st == MISCACHE_ERR_UNAVAILABLE) {
      lp->unavailable++;
      mt_sleep_ms(2);
    } else {
      lp->other++;
      snprintf(lp->err, sizeof lp->err, "%s: %s", miscache_strerror(st),
               miscache_errmsg(lp->mc));
    }
    json_decref(out);
    json_decref(v);
  }
  return NULL;
}

static void test_master_failover(void **state) {
  (void)state;
  mt_cluster_t fc;
  assert_int_equal(mt_cluster_start(&fc, 3, true), 0);
  const mt_cluster_t *saved = mt_cluster_active;
  static floop_t lp;
  memset(&lp, 0, sizeof lp);
  lp.mc = open_on(fc.url, false);
  /* the master that dies: node 0; keys of its slots */
  int found = 0;
  for (int t = 0; found < 8 && t < 100000; t++) {
    char k[48];
    snprintf(k, sizeof k, "master:products:category:f%d", t);
    if (owner_of(&fc, full_slot(lp.mc, k)) != 0) continue;
    snprintf(lp.keys[found++], sizeof lp.keys[0], "%s", k);
  }
  assert_int_equal(found, 8);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, floop, &lp), 0);
  mt_sleep_ms(300);
  long ok_before = lp.ok;
  mt_server_kill(&fc.node[0]);
  long long k0 = mt_now_ns();
  __atomic_store_n(&lp.killed_ns, k0, __ATOMIC_SEQ_CST);
  /* wait until a write of the dead master's slots succeeds again */
  while (!atomic_load(&lp.first_ok_after_ns) &&
         mt_now_ns() - k0 < 30LL * 1000000000)
    mt_sleep_ms(10);
  mt_sleep_ms(300);
  atomic_store(&lp.stop, true);
  pthread_join(th, NULL);
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(lp.mc, &ls, sizeof ls), MISCACHE_OK);
  long long back = atomic_load(&lp.first_ok_after_ns);
  printf("  master SIGKILLed: writes to its slots succeeded again %.0f ms "
         "later (cluster-node-timeout 1000 ms); %ld ok, %ld unavailable, %ld "
         "other, %ld wrong; %llu slot map loads, %llu redirections\n",
         back ? (double)(back - k0) / 1e6 : -1.0, lp.ok, lp.unavailable,
         lp.other, lp.wrong, (unsigned long long)ls.master_lookups,
         (unsigned long long)ls.redirects);
  if (lp.other) fail_msg("unexpected status: %s", lp.err);
  assert_true(ok_before > 0);
  assert_true(back != 0);
  assert_int_equal(lp.wrong, 0);
  miscache_free(lp.mc);
  mt_cluster_active = saved;
  mt_cluster_stop(&fc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mget_split_in_order),
      cmocka_unit_test(test_company_invalidation_precise),
      cmocka_unit_test(test_masters_scan_at_once),
      cmocka_unit_test(test_batch_lock_needs_hash_tags),
      cmocka_unit_test(test_resharding_under_load),
      cmocka_unit_test(test_master_failover),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

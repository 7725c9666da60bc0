/* Pool: threads share a pool; counters add up; acquire times out. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

/* 8 threads x 10,000 mixed calls through a pool of 4 handles: every call
 * gives the expected status and value, and the pool's counters add up to
 * exactly the hits and misses the calls made. */
enum { THREADS = 8, CALLS = 10000, POOL_SIZE = 4 };

static miscache_pool_t *pool;
static char ns[64];

/* One call of the mix; returns the number of wrong results (0 or 1). */
static int mixed_call(miscache_t *mc, long id, int i) {
  char key[64], absent[64];
  snprintf(key, sizeof key, "k:%ld:%d", id, i / 8);
  snprintf(absent, sizeof absent, "absent:%ld:%d", id, i);
  json_t *v = NULL;
  bool yes = false;
  int bad = 0;
  switch (i % 8) {
  case 0: { /* write */
    json_t *w = json_pack("{s:i,s:i}", "t", (int)id, "i", i / 8);
    bad = miscache_set(mc, MISCACHE_DB_CACHE, key, w, MISCACHE_TTL_LOCK) !=
          MISCACHE_OK;
    json_decref(w);
    break;
  }
  case 1: /* a hit that must be this thread's own value: 1 hit */
    bad = miscache_get(mc, MISCACHE_DB_CACHE, key, &v) != MISCACHE_OK ||
          json_integer_value(json_object_get(v, "t")) != id ||
          json_integer_value(json_object_get(v, "i")) != i / 8;
    break;
  case 2: /* 1 miss */
    bad = miscache_get(mc, MISCACHE_DB_CACHE, absent, &v) != MISCACHE_MISS;
    break;
  case 3: { /* 2 hits and 1 miss in one round trip */
    const char *keys[3] = {key, absent, key};
    json_t *vals[3];
    miscache_status_t sts[3];
    bad = miscache_mget(mc, MISCACHE_DB_CACHE, 3, keys, vals, sts) !=
              MISCACHE_OK ||
          sts[0] != MISCACHE_OK || sts[1] != MISCACHE_MISS ||
          sts[2] != MISCACHE_OK ||
          json_integer_value(json_object_get(vals[2], "t")) != id;
    for (int k = 0; k < 3; k++)
      json_decref(vals[k]);
    break;
  }
  case 4:
    bad = miscache_exists(mc, MISCACHE_DB_CACHE, key, &yes) != MISCACHE_OK ||
          !yes;
    break;
  case 5: { /* a lock of this thread's own: taken and released */
    char lk[64];
    snprintf(lk, sizeof lk, "lock:batch_process:%ld", id);
    miscache_lock_t *l = NULL;
    bad = miscache_lock_acquire(mc, MISCACHE_DB_CACHE, lk, 5000, "pool", NULL,
                                &l) != MISCACHE_OK ||
          miscache_lock_release(mc, l) != MISCACHE_OK;
    miscache_lock_free(l);
    break;
  }
  case 6: bad = miscache_ping(mc) != MISCACHE_OK; break;
  case 7:
    bad = miscache_delete(mc, MISCACHE_DB_CACHE, key, &yes) != MISCACHE_OK ||
          !yes;
    break;
  }
  json_decref(v);
  return bad;
}

static void *worker(void *arg) {
  long id = (long)arg;
  long bad = 0;
  for (int i = 0; i < CALLS; i++) {
    miscache_t *mc = NULL;
    if (miscache_pool_acquire(pool, -1, &mc) != MISCACHE_OK) {
      bad++;
      continue;
    }
    bad += mixed_call(mc, id, i);
    miscache_pool_release(pool, mc);
  }
  return (void *)bad;
}

static void test_threads(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_url(o, mt_srv.url);
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  miscache_options_set_namespace(o, ns);
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_pool_new(o, POOL_SIZE, &pool, err, sizeof err),
                   MISCACHE_OK);
  miscache_options_free(o);
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
  long wrong = 0;
  for (int i = 0; i < THREADS; i++) {
    void *bad = NULL;
    pthread_join(t[i], &bad);
    wrong += (long)bad;
  }
  assert_int_equal(wrong, 0);
  /* per 8 calls: 3 hits (get, 2 in mget) and 2 misses (get, 1 in mget) */
  miscache_counters_t c;
  assert_int_equal(miscache_pool_counters(pool, MISCACHE_DB_CACHE, &c),
                   MISCACHE_OK);
  printf("  %d calls on %d threads: %llu hits, %llu misses, %llu errors\n",
         THREADS * CALLS, THREADS, (unsigned long long)c.hits,
         (unsigned long long)c.misses, (unsigned long long)c.errors);
  assert_int_equal(c.hits, THREADS * CALLS / 8 * 3);
  assert_int_equal(c.misses, THREADS * CALLS / 8 * 2);
  assert_int_equal(c.errors, 0);
  /* every key was deleted again, and no lock is left */
  char pat[96];
  snprintf(pat, sizeof pat, "%s*", ns);
  redisReply *r = redisCommand(mt_rc, "SELECT 1");
  freeReplyObject(r);
  r = redisCommand(mt_rc, "KEYS %s", pat);
  assert_int_equal(r->elements, 0);
  freeReplyObject(r);
  miscache_pool_free(pool);
}

static void test_acquire_timeout(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_url(o, mt_srv.url);
  assert_int_equal(miscache_pool_new(o, 1, &pool, NULL, 0), MISCACHE_OK);
  miscache_options_free(o);
  miscache_t *a = NULL, *b = NULL;
  assert_int_equal(miscache_pool_acquire(pool, 0, &a), MISCACHE_OK);
  assert_int_equal(miscache_pool_acquire(pool, 0, &b), MISCACHE_ERR_BUSY);
  assert_int_equal(miscache_pool_acquire(pool, 50, &b), MISCACHE_ERR_BUSY);
  assert_null(b);
  miscache_pool_release(pool, a);
  assert_int_equal(miscache_pool_acquire(pool, 50, &b), MISCACHE_OK);
  assert_ptr_equal(a, b);
  miscache_pool_release(pool, b);
  miscache_pool_free(pool);
  assert_int_equal(miscache_pool_new(NULL, 0, &pool, NULL, 0),
                   MISCACHE_ERR_INVALID);
  miscache_pool_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_acquire_timeout),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

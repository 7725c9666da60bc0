/* Pool: threads share a pool; counters add up; acquire times out. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

enum { THREADS = 4, CALLS = 2500 };

static miscache_pool_t *pool;
static char ns[64];

static void *worker(void *arg) {
  long id = (long)arg;
  long bad = 0;
  for (int i = 0; i < CALLS; i++) {
    miscache_t *mc = NULL;
    if (miscache_pool_acquire(pool, -1, &mc) != MISCACHE_OK) {
      bad++;
      continue;
    }
    char key[64];
    snprintf(key, sizeof key, "k:%ld:%d", id, i / 2);
    json_t *v = NULL;
    if (i % 2 == 0) {
      /* a miss, then a write */
      if (miscache_get(mc, MISCACHE_DB_CACHE, key, &v) != MISCACHE_MISS) bad++;
      json_t *w = json_pack("{s:i,s:i}", "t", (int)id, "i", i);
      if (miscache_set(mc, MISCACHE_DB_CACHE, key, w, MISCACHE_TTL_LOCK) !=
          MISCACHE_OK)
        bad++;
      json_decref(w);
    } else {
      /* a hit that must be this thread's own value */
      if (miscache_get(mc, MISCACHE_DB_CACHE, key, &v) != MISCACHE_OK ||
          json_integer_value(json_object_get(v, "t")) != id)
        bad++;
      json_decref(v);
    }
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
  assert_int_equal(miscache_pool_new(o, 3, &pool, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
  for (int i = 0; i < THREADS; i++) {
    void *bad = NULL;
    pthread_join(t[i], &bad);
    assert_int_equal((long)bad, 0);
  }
  miscache_counters_t c;
  assert_int_equal(miscache_pool_counters(pool, MISCACHE_DB_CACHE, &c),
                   MISCACHE_OK);
  assert_int_equal(c.hits, THREADS * CALLS / 2);
  assert_int_equal(c.misses, THREADS * CALLS / 2);
  assert_int_equal(c.errors, 0);
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

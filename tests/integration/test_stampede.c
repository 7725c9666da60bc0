/* Stampede protection: 8 threads missing one key call a 200 ms loader
 * once; 8 processes x 8 threads with the recompute lease call it once in
 * all; with early refresh a key read in a tight loop across 3 TTL periods
 * never misses and is loaded about once per period. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static atomic_int loads;
static const char *record_path; /* cross-process: one line per load */

static miscache_status_t slow_loader(void *ud, const char *key, json_t **out) {
  (void)ud, (void)key;
  atomic_fetch_add(&loads, 1);
  if (record_path) {
    int fd = open(record_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
      if (write(fd, "L\n", 2) != 2) { /* counted by the line count */
      }
      close(fd);
    }
  }
  mt_sleep_ms(200);
  *out = json_pack("[s,s]", "sales", "hr");
  return MISCACHE_OK;
}

typedef struct {
  miscache_t *mc;
  miscache_status_t st;
  miscache_source_t src;
  bool ok_value;
} worker_t;

static void *miss_once(void *arg) {
  worker_t *w = arg;
  json_t *v = NULL;
  w->st = miscache_get_or_load(w->mc, MISCACHE_DB_CACHE, "master:departments",
                               MISCACHE_TTL_MASTER_DATA, slow_loader, NULL, &v,
                               &w->src);
  w->ok_value = v && json_array_size(v) == 2;
  json_decref(v);
  return NULL;
}

static void test_single_flight_threads(void **state) {
  (void)state;
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  worker_t w[8];
  pthread_t t[8];
  atomic_store(&loads, 0);
  for (int i = 0; i < 8; i++) {
    w[i] = (worker_t){.mc = mt_open_in(NULL, ns)};
    assert_non_null(w[i].mc);
  }
  for (int i = 0; i < 8; i++)
    assert_int_equal(pthread_create(&t[i], NULL, miss_once, &w[i]), 0);
  int loaded = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].st, MISCACHE_OK);
    assert_true(w[i].ok_value);
    loaded += w[i].src == MISCACHE_SOURCE_LOADED;
    miscache_free(w[i].mc);
  }
  printf("  8 threads missed at once: the 200 ms loader ran %d time(s)\n",
         atomic_load(&loads));
  assert_int_equal(atomic_load(&loads), 1);
  assert_int_equal(loaded, 8);
}

/* Typed: every follower gets its own struct filled, not only the leader. */
static atomic_int config_loads;
static miscache_status_t slow_config(void *ud, int64_t company,
                                     miscache_batch_config_t *out) {
  (void)ud, (void)company;
  atomic_fetch_add(&config_loads, 1);
  mt_sleep_ms(200);
  out->batch_enabled = true;
  out->page_size = 30;
  out->batch_hour = 2;
  return MISCACHE_OK;
}

typedef struct {
  miscache_t *mc;
  miscache_status_t st;
  miscache_batch_config_t c;
} typed_worker_t;

static void *typed_miss(void *arg) {
  typed_worker_t *w = arg;
  w->st = miscache_batch_config_get_or_load(w->mc, 7, slow_config, NULL, &w->c,
                                            NULL);
  return NULL;
}

static void test_single_flight_typed(void **state) {
  (void)state;
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  typed_worker_t w[8];
  pthread_t t[8];
  atomic_store(&config_loads, 0);
  for (int i = 0; i < 8; i++) {
    w[i] = (typed_worker_t){.mc = mt_open_in(NULL, ns)};
    assert_non_null(w[i].mc);
  }
  for (int i = 0; i < 8; i++)
    assert_int_equal(pthread_create(&t[i], NULL, typed_miss, &w[i]), 0);
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].st, MISCACHE_OK);
    /* each caller's own struct holds the value */
    assert_true(w[i].c.batch_enabled);
    assert_int_equal(w[i].c.page_size, 30);
    assert_int_equal(w[i].c.batch_hour, 2);
    miscache_batch_config_clear(&w[i].c);
    miscache_free(w[i].mc);
  }
  assert_int_equal(atomic_load(&config_loads), 1);
}

static void child_process(const char *ns) {
  miscache_options_t *o = miscache_options_new();
  miscache_stampede_t sp = {.single_flight = true,
                            .lease_categories = 1u << MISCACHE_CAT_MASTER,
                            .lease_ms = 3000};
  miscache_options_set_stampede(o, &sp);
  /* a slow machine (ThreadSanitizer, 64 threads on 2 cores) must not turn
   * a waiter's poll into a timeout, which loads on its own */
  miscache_options_set_command_timeout(o, 5000);
  worker_t w[8];
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    w[i] = (worker_t){.mc = mt_open_in(o, ns)};
    if (!w[i].mc) mt_child_exit(2);
  }
  miscache_options_free(o);
  for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, miss_once, &w[i]);
  int bad = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    bad += w[i].st != MISCACHE_OK || !w[i].ok_value;
    miscache_free(w[i].mc);
  }
  mt_child_exit(bad ? 1 : 0);
}

static void test_lease_across_processes(void **state) {
  (void)state;
  char ns[64], path[256];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  snprintf(path, sizeof path, "%s/loads", mt_srv.dir[0] ? mt_srv.dir : "/tmp");
  unlink(path);
  record_path = path;
  pid_t pids[8];
  for (int i = 0; i < 8; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) child_process(ns);
  }
  for (int i = 0; i < 8; i++) {
    int st;
    waitpid(pids[i], &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  FILE *f = fopen(path, "r");
  int lines = 0;
  char buf[8];
  while (f && fgets(buf, sizeof buf, f)) lines++;
  if (f) fclose(f);
  unlink(path);
  record_path = NULL;
  printf("  8 processes x 8 threads missed at once: the 200 ms loader ran %d "
         "time(s)\n",
         lines);
  assert_int_equal(lines, 1);
}

static miscache_status_t quick_loader(void *ud, const char *key,
                                      json_t **out) {
  (void)ud, (void)key;
  atomic_fetch_add(&loads, 1);
  mt_sleep_ms(20);
  *out = json_pack("[s]", "x");
  return MISCACHE_OK;
}

static void test_early_refresh(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_ttl(o, MISCACHE_TTL_MASTER_DATA, 1),
                   MISCACHE_OK);
  miscache_stampede_t sp = {.single_flight = true,
                            .early_categories = 1u << MISCACHE_CAT_MASTER,
                            .early_ms = 20}; /* the loader's duration */
  assert_int_equal(miscache_options_set_stampede(o, &sp), MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  atomic_store(&loads, 0);
  long reads = 0, misses = 0;
  int64_t end = mt_now_ns() + 3500LL * 1000000;
  bool first = true;
  while (mt_now_ns() < end) {
    json_t *v = NULL;
    miscache_source_t src;
    assert_int_equal(miscache_get_or_load(mc, MISCACHE_DB_CACHE,
                                          "master:brands",
                                          MISCACHE_TTL_MASTER_DATA,
                                          quick_loader, NULL, &v, &src),
                     MISCACHE_OK);
    reads++;
    if (!first && src != MISCACHE_SOURCE_CACHE) misses++;
    first = false;
    json_decref(v);
  }
  printf("  early refresh, 1 s TTL read for 3.5 s: %ld reads, %ld misses "
         "after the first load, %d loads\n",
         reads, misses, atomic_load(&loads));
  assert_int_equal(misses, 0);
  assert_true(atomic_load(&loads) >= 3 && atomic_load(&loads) <= 8);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_flight_threads),
      cmocka_unit_test(test_single_flight_typed),
      cmocka_unit_test(test_lease_across_processes),
      cmocka_unit_test(test_early_refresh),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

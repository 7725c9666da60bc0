/*
 * near_cache: permission checks answered from the process.
 *
 * A pool of 4 handles with the near cache on (the default families:
 * permissions, master data, batch config, gift rules and gift master).
 * 4 threads check user 123's permissions at once: the first misses of all
 * four call the loader once (single flight), every later check is a near
 * hit with no network round trip. Then another client (here a plain
 * handle, as the Flask app would be) changes the permissions in Redis: the
 * server's invalidation message reaches the near cache and the next check
 * sees the new answer. Exit status 0 when all of that happened.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <pthread.h>

#include <miscache/miscache.h>

#define THREADS 4
#define CHECKS 100000

static atomic_int loads; /* calls of the loader: the "database" */
static atomic_bool may_update = true;

static miscache_status_t load_permissions(void *ud, const char *key,
                                          json_t **out) {
  (void)ud;
  (void)key;
  atomic_fetch_add(&loads, 1);
  struct timespec slow = {0, 50 * 1000000L}; /* the database takes 50 ms */
  nanosleep(&slow, NULL);
  *out = json_pack("{s:{s:b,s:b,s:b,s:b}}", "admin_batch", "create", 0, "read",
                   1, "update", atomic_load(&may_update), "delete", 0);
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
  miscache_pool_t *pool;
  long allowed, errors;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  miscache_t *mc = NULL;
  if (miscache_pool_acquire(w->pool, 1000, &mc) != MISCACHE_OK) {
    w->errors = CHECKS;
    return NULL;
  }
  for (int i = 0; i < CHECKS; i++) {
    bool ok = false;
    if (miscache_permissions_check(mc, 123, "admin_batch", MISCACHE_PERM_UPDATE,
                                   load_permissions, NULL, &ok,
                                   NULL) != MISCACHE_OK)
      w->errors++;
    else if (ok)
      w->allowed++;
  }
  miscache_pool_release(w->pool, mc);
  return NULL;
}

static bool may(miscache_t *mc) {
  bool ok = false;
  miscache_permissions_check(mc, 123, "admin_batch", MISCACHE_PERM_UPDATE,
                             load_permissions, NULL, &ok, NULL);
  return ok;
}

int main(void) {
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_options_t *o = miscache_options_new();
  miscache_near_t n = {.enabled = true}; /* the defaults */
  if (!o || miscache_options_set_near_cache(o, &n) != MISCACHE_OK) return 1;
  miscache_pool_t *pool = NULL;
  miscache_status_t st = miscache_pool_new(o, THREADS, &pool, err, sizeof err);
  miscache_options_free(o);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "pool: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  miscache_t *mc = NULL;
  miscache_pool_acquire(pool, 1000, &mc);
  miscache_permissions_delete(mc, 123, NULL); /* start from a miss */
  /* the invalidation connection confirms itself within a few ms */
  miscache_near_stats_t s = {0};
  for (int i = 0; i < 300 && !s.connected; i++) {
    struct timespec ms10 = {0, 10 * 1000000L};
    nanosleep(&ms10, NULL);
    miscache_near_stats(mc, &s, sizeof s);
  }
  printf("near cache %s (%u invalidation connection%s)\n",
         s.connected ? "confirmed" : "NOT confirmed", (unsigned)s.links,
         s.links == 1 ? "" : "s");
  miscache_pool_release(pool, mc);

  worker_t w[THREADS] = {{0}};
  pthread_t t[THREADS];
  double t0 = now_s();
  for (int i = 0; i < THREADS; i++) {
    w[i].pool = pool;
    pthread_create(&t[i], NULL, worker, &w[i]);
  }
  long allowed = 0, errors = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    allowed += w[i].allowed, errors += w[i].errors;
  }
  double el = now_s() - t0;
  miscache_pool_acquire(pool, 1000, &mc);
  miscache_near_stats(mc, &s, sizeof s);
  printf("%d threads x %d checks in %.3f s (the first waits 50 ms for the "
         "database): %ld allowed, %ld errors; loader called %d time(s)\n",
         THREADS, CHECKS, el, allowed, errors, atomic_load(&loads));
  printf("near cache: %llu hits, %llu misses, %llu entries\n",
         (unsigned long long)s.hits, (unsigned long long)s.misses,
         (unsigned long long)s.entries);

  /* the Flask app revokes the permission: it writes Redis directly */
  miscache_t *app = NULL;
  if (miscache_open(NULL, &app, err, sizeof err) != MISCACHE_OK) {
    fprintf(stderr, "open: %s\n", err);
    return 3;
  }
  atomic_store(&may_update, false);
  json_t *map = json_pack("{s:{s:b,s:b,s:b,s:b}}", "admin_batch", "create", 0,
                          "read", 1, "update", 0, "delete", 0);
  st = miscache_permissions_set(app, 123, map);
  double acked = now_s();
  json_decref(map);
  miscache_free(app);
  int spins = 0;
  while (may(mc) && now_s() - acked < 1.0)
    spins++;
  double seen = now_s();
  bool changed = !may(mc);
  printf("another client revoked 'update' (%s): the near cache answered "
         "'no' %.0f us after the write was acknowledged (%d checks still "
         "said yes)\n",
         miscache_strerror(st), (seen - acked) * 1e6, spins);
  miscache_near_stats(mc, &s, sizeof s);
  printf("near cache: %llu invalidations received, %llu flushes\n",
         (unsigned long long)s.invalidations, (unsigned long long)s.flushes);
  miscache_permissions_delete(mc, 123, NULL);
  miscache_pool_release(pool, mc);
  miscache_pool_free(pool);
  bool ok = st == MISCACHE_OK && changed && errors == 0 &&
            atomic_load(&loads) == 1 && s.connected;
  printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

/*
 * Benchmark: the near cache.
 *  1. A permission check answered from the near cache
 *     (miscache_permissions_check on a hit) against a raw hiredis GET of the
 *     same key (no decode: the cheapest network read there is), one
 *     connection, medians of per-call times. Same for the master brands
 *     list (miscache_master_get on a hit).
 *  2. Invalidation delay: a Python process (redis-py, as the Flask app)
 *     SETs a version every 5 ms and prints when each SET was acknowledged
 *     (time.monotonic_ns, the same clock); a reader thread reads through
 *     the near cache in a loop and notes when it first sees each version.
 *     Delay = seen - acknowledged (0 when seen first), p50/p99/max.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bench.h"

#define CALLS 200000
#define BATCH 100
#define RAW_CALLS 20000
#define VERSIONS 400

static miscache_status_t no_loader(void *ud, const char *key, json_t **out) {
  (void)ud, (void)key, (void)out;
  return MISCACHE_ERR_LOADER; /* every call must be a hit */
}

static double ns_now(void) { return now_s() * 1e9; }

/* Median ns per call of fn over CALLS calls timed in batches. */
#define TIME_BATCHES(out_median, body)                                         \
  do {                                                                         \
    static double per[CALLS / BATCH];                                          \
    for (int b_ = 0; b_ < CALLS / BATCH; b_++) {                               \
      double t0_ = ns_now();                                                   \
      for (int i_ = 0; i_ < BATCH; i_++) {                                     \
        body;                                                                  \
      }                                                                        \
      per[b_] = (ns_now() - t0_) / BATCH;                                      \
    }                                                                          \
    out_median = median(per, CALLS / BATCH);                                   \
  } while (0)

static double raw_get_median(redisContext *rc, const char *key) {
  static double per[RAW_CALLS];
  for (int i = 0; i < RAW_CALLS; i++) {
    double t0 = ns_now();
    redisReply *r = redisCommand(rc, "GET %s", key);
    per[i] = ns_now() - t0;
    if (!r || r->type != REDIS_REPLY_STRING) exit(4);
    freeReplyObject(r);
  }
  return median(per, RAW_CALLS);
}

/* ---- invalidation delay ---------------------------------------------------- */

static miscache_t *reader_mc;
static atomic_int stop_reader;
static double seen_ns[VERSIONS + 2];

static void *reader(void *arg) {
  (void)arg;
  long long last = -1;
  while (!atomic_load(&stop_reader)) {
    json_t *v = NULL;
    if (miscache_get(reader_mc, MISCACHE_DB_CACHE, "permissions:user:77", &v) !=
        MISCACHE_OK)
      continue;
    long long n = json_integer_value(json_object_get(v, "v"));
    json_decref(v);
    if (n != last && n > 0 && n <= VERSIONS && seen_ns[n] == 0)
      seen_ns[n] = ns_now();
    last = n;
  }
  return NULL;
}

static int delay_run(int db, double *p50, double *p99, double *mx,
                     unsigned long long *hits) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c '\n"
           "import redis, time\n"
           "r = redis.Redis(unix_socket_path=\"%s\", db=%d)\n"
           "for v in range(1, %d + 1):\n"
           "    r.set(\"permissions:user:77\", \"{\\\"v\\\": %%d}\" %% v, ex=600)\n"
           "    print(v, time.monotonic_ns(), flush=True)\n"
           "    time.sleep(0.005)\n'",
           bench_socket(), db, VERSIONS);
  pthread_t t;
  pthread_create(&t, NULL, reader, NULL);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  static double acked[VERSIONS + 2];
  long long v;
  double ns;
  int n = 0;
  while (fscanf(p, "%lld %lf", &v, &ns) == 2)
    if (v > 0 && v <= VERSIONS) acked[v] = ns, n++;
  int rc = pclose(p);
  struct timespec ts = {0, 50000000L};
  nanosleep(&ts, NULL);
  atomic_store(&stop_reader, 1);
  pthread_join(t, NULL);
  if (rc != 0 || n != VERSIONS) return -1;
  static double d[VERSIONS];
  int m = 0;
  *mx = 0;
  for (int i = 1; i <= VERSIONS; i++) {
    if (seen_ns[i] == 0) continue; /* overtaken by the next version */
    double x = seen_ns[i] > acked[i] ? (seen_ns[i] - acked[i]) / 1e6 : 0;
    d[m++] = x;
    if (x > *mx) *mx = x;
  }
  qsort(d, (size_t)m, sizeof *d, cmp_double);
  *p50 = d[m / 2];
  *p99 = d[(m * 99) / 100 < m ? (m * 99) / 100 : m - 1];
  miscache_near_stats_t s;
  miscache_near_stats(reader_mc, &s, sizeof s);
  *hits = (unsigned long long)s.hits;
  return m;
}

int main(void) {
  miscache_t *mc = bench_open_with(true);
  redisContext *rc = bench_raw();
  json_t *perms = bench_permissions();
  json_t *brands = json_array();
  for (int i = 0; i < 20; i++)
    json_array_append_new(brands, json_pack("{s:i,s:s,s:s}", "id", i + 1,
                                            "name", "Brand name", "code",
                                            "BR-0001"));
  if (miscache_permissions_set(mc, 42, perms) != MISCACHE_OK ||
      miscache_master_set(mc, MISCACHE_MASTER_BRANDS, brands) != MISCACHE_OK)
    return 1;
  json_decref(perms);
  json_decref(brands);
  redisReply *sel = redisCommand(rc, "SELECT %d",
                                 miscache_db_number(mc, MISCACHE_DB_CACHE));
  freeReplyObject(sel);
  /* wait for the invalidation connection, then warm the two keys */
  for (int i = 0; i < 500; i++) {
    miscache_near_stats_t s;
    miscache_near_stats(mc, &s, sizeof s);
    if (s.connected) break;
    struct timespec ts = {0, 10000000L};
    nanosleep(&ts, NULL);
  }
  struct timespec settle = {0, 20000000L};
  nanosleep(&settle, NULL);
  bool allowed = false;
  json_t *out = NULL;
  for (int i = 0; i < 2; i++) {
    miscache_permissions_check(mc, 42, "admin_batch", MISCACHE_PERM_READ,
                               no_loader, NULL, &allowed, NULL);
    miscache_master_get(mc, MISCACHE_MASTER_BRANDS, &out);
    json_decref(out);
  }
  miscache_near_stats_t s0;
  miscache_near_stats(mc, &s0, sizeof s0);
  double perm_ns, brands_ns;
  TIME_BATCHES(perm_ns, {
    if (miscache_permissions_check(mc, 42, "admin_batch", MISCACHE_PERM_READ,
                                   no_loader, NULL, &allowed,
                                   NULL) != MISCACHE_OK ||
        !allowed)
      return 5;
  });
  TIME_BATCHES(brands_ns, {
    if (miscache_master_get(mc, MISCACHE_MASTER_BRANDS, &out) != MISCACHE_OK)
      return 5;
    json_decref(out);
  });
  miscache_near_stats_t s1;
  miscache_near_stats(mc, &s1, sizeof s1);
  double raw_perm = raw_get_median(rc, "permissions:user:42");
  double raw_brands = raw_get_median(rc, "master:brands");
  unsigned long long hits = (unsigned long long)(s1.hits - s0.hits),
                     misses = (unsigned long long)(s1.misses - s0.misses);
  printf("bench_near: %d calls each on near-cache hits (%llu hits, %llu "
         "misses), medians of %d-call batches; raw hiredis GET medians of "
         "%d calls\n",
         CALLS, hits, misses, BATCH, RAW_CALLS);
  printf("  permission check (hit)  %8.0f ns   raw GET %8.0f ns   %6.1fx "
         "faster (target >= 30x, < 1000 ns)\n",
         perm_ns, raw_perm, raw_perm / perm_ns);
  printf("  master brands (hit)     %8.0f ns   raw GET %8.0f ns   %6.1fx "
         "faster (20 brands, read-only value)\n",
         brands_ns, raw_brands, raw_brands / brands_ns);
  char a[64], b[64];
  snprintf(a, sizeof a, "%.0f ns/check", perm_ns);
  snprintf(b, sizeof b, "raw hiredis GET %.0f ns", raw_perm);
  bench_summary("near perm check", a, b, raw_perm / perm_ns,
                ">= 30x, < 1 us", raw_perm / perm_ns >= 30 && perm_ns < 1000);
  snprintf(a, sizeof a, "%.0f ns/read", brands_ns);
  snprintf(b, sizeof b, "raw hiredis GET %.0f ns", raw_brands);
  bench_summary("near brands", a, b, raw_brands / brands_ns, ">= 30x, < 1 us",
                raw_brands / brands_ns >= 30 && brands_ns < 1000);

  reader_mc = mc;
  double p50, p99, mx;
  unsigned long long rh = 0;
  int m = delay_run(miscache_db_number(mc, MISCACHE_DB_CACHE), &p50, &p99, &mx,
                    &rh);
  if (m < 0) {
    printf("  invalidation delay: python3 with redis-py is needed\n");
  } else {
    printf("  invalidation delay (redis-py writer, %d versions seen of %d): "
           "p50 %.3f ms, p99 %.3f ms, max %.3f ms (target p99 <= 5 ms)\n",
           m, VERSIONS, p50, p99, mx);
    snprintf(a, sizeof a, "p99 %.3f ms", p99);
    bench_summary("near invalidation", a, "redis-py SET ack", p99, "<= 5 ms",
                  p99 <= 5.0);
  }
  miscache_free(mc);
  redisFree(rc);
  return 0;
}

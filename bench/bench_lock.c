/*
 * Benchmark 4: lock acquire + release cycles per second
 *   library  miscache_lock_acquire (SET NX PX, JSON value with UUID token)
 *            + miscache_lock_release (EVALSHA compare-token-and-delete)
 *   raw      hiredis SET key token NX PX + DEL: two round trips, no safety
 */
#include "bench.h"

#define N 20000
#define ROUNDS 5

int main(void) {
  miscache_t *mc = bench_open();
  redisContext *rc = bench_raw();
  double lib[ROUNDS], raw[ROUNDS];
  for (int round = 0; round < ROUNDS; round++) {
    double t0 = now_s();
    for (int i = 0; i < N; i++) {
      miscache_lock_t *l = NULL;
      if (miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:bench", 30000,
                                "bench", NULL, &l) != MISCACHE_OK ||
          miscache_lock_release(mc, l) != MISCACHE_OK)
        return 1;
      miscache_lock_free(l);
    }
    lib[round] = N / (now_s() - t0);
    redisReply *r = redisCommand(rc, "SELECT 1");
    freeReplyObject(r);
    t0 = now_s();
    for (int i = 0; i < N; i++) {
      r = redisCommand(rc, "SET lock:raw token NX PX 30000");
      freeReplyObject(r);
      r = redisCommand(rc, "DEL lock:raw");
      freeReplyObject(r);
    }
    raw[round] = N / (now_s() - t0);
  }
  double l = median(lib, ROUNDS), w = median(raw, ROUNDS);
  printf("bench_lock: %d cycles x %d rounds (medians)\n", N, ROUNDS);
  printf("  library acquire+release   %9.0f cycles/s\n", l);
  printf("  raw SET NX PX + DEL       %9.0f cycles/s   library/raw = %.3f\n",
         w, l / w);
  char a[64], b[64];
  snprintf(a, sizeof a, "%.0f cycles/s", l);
  snprintf(b, sizeof b, "raw SET NX PX + DEL %.0f/s", w);
  bench_summary("4 lock cycle", a, b, l / w, "-", -1);
  miscache_free(mc);
  redisFree(rc);
  return 0;
}

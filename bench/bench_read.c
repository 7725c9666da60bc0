/*
 * Benchmark 1: typed read overhead. A session (the docs/strategy.md payload) read
 * N times, one connection, no pipelining:
 *   library  miscache_session_get (GET + JSON decode + struct fill)
 *   raw      hiredis GET + json_loadb of the same bytes
 *   redis-benchmark -c 1 -P 1 GET of a value of the same size
 * Each measured ROUNDS times, interleaved; medians printed with ratios.
 */
#include "bench.h"

#define N 50000
#define ROUNDS 5

int main(void) {
  miscache_t *mc = bench_open();
  redisContext *rc = bench_raw();
  bench_session_set(mc);
  redisReply *r = redisCommand(rc, "GET session:user:123");
  size_t size = r->len;
  freeReplyObject(r);
  double lib[ROUNDS], raw[ROUNDS];
  for (int round = 0; round < ROUNDS; round++) {
    double t0 = now_s();
    for (int i = 0; i < N; i++) {
      miscache_session_t out;
      if (miscache_session_get(mc, 123, &out) != MISCACHE_OK) return 1;
      miscache_session_clear(&out);
    }
    lib[round] = N / (now_s() - t0);
    t0 = now_s();
    for (int i = 0; i < N; i++) {
      r = redisCommand(rc, "GET %s", "session:user:123");
      json_error_t je;
      json_t *v = json_loadb(r->str, r->len, 0, &je);
      if (!v) return 1;
      json_decref(v);
      freeReplyObject(r);
    }
    raw[round] = N / (now_s() - t0);
  }
  double l = median(lib, ROUNDS), w = median(raw, ROUNDS);
  char args[128];
  snprintf(args, sizeof args, "-c 1 -P 1 -n %d -d %zu -t get", 2 * N, size);
  double rb = redis_benchmark(args, "GET");
  printf("bench_read: session payload %zu bytes, %d reads x %d rounds "
         "(medians)\n", size, N, ROUNDS);
  printf("  library typed get      %10.0f ops/s\n", l);
  printf("  raw hiredis + jansson  %10.0f ops/s   library/raw = %.3f "
         "(target >= 0.90)\n", w, l / w);
  printf("  redis-benchmark GET    %10.0f ops/s   library/redis-benchmark = "
         "%.3f\n", rb, rb > 0 ? l / rb : 0);
  char a[64], b[64];
  snprintf(a, sizeof a, "%.0f reads/s", l);
  snprintf(b, sizeof b, "raw hiredis+jansson %.0f/s", w);
  bench_summary("1 typed read", a, b, l / w, ">= 0.90", l / w >= 0.90);
  snprintf(b, sizeof b, "redis-benchmark -P 1 GET %.0f/s", rb);
  bench_summary("1 typed read", a, b, rb > 0 ? l / rb : 0, "-", -1);
  miscache_free(mc);
  redisFree(rc);
  return 0;
}

/*
 * Benchmark 5: commands the server executes per typed call, from INFO
 * commandstats: reads of the handle's current db must cost exactly 1;
 * alternating two dbs costs 2 (the SELECT rides in the same write).
 */
#include "bench.h"

#define N 10000

static long long total_calls(redisContext *rc) {
  redisReply *r = redisCommand(rc, "INFO commandstats");
  long long sum = 0;
  for (const char *p = r->str; (p = strstr(p, "calls=")) != NULL; p += 6)
    sum += atoll(p + 6);
  freeReplyObject(r);
  return sum;
}

static double per_call(miscache_t *mc, redisContext *rc, bool alternate) {
  redisReply *r = redisCommand(rc, "CONFIG RESETSTAT");
  freeReplyObject(r);
  for (int i = 0; i < N; i++) {
    json_t *v = NULL;
    miscache_get(mc, alternate && i % 2 ? MISCACHE_DB_GIFT : MISCACHE_DB_CACHE,
                 "k", &v);
    json_decref(v);
  }
  /* the INFO asking is itself counted once */
  return (double)(total_calls(rc) - 1) / N;
}

int main(void) {
  miscache_t *mc = bench_open();
  redisContext *rc = bench_raw();
  json_t *v = json_object();
  miscache_set(mc, MISCACHE_DB_CACHE, "k", v, MISCACHE_TTL_LOCK);
  json_decref(v);
  double same = per_call(mc, rc, false);
  double alt = per_call(mc, rc, true);
  printf("bench_select: %d typed reads each\n", N);
  printf("  same db        %.4f commands per call (target 1)\n", same);
  printf("  alternating    %.4f commands per call (GET + SELECT on each "
         "switch)\n", alt);
  char a[64];
  snprintf(a, sizeof a, "%.4f commands/call", same);
  bench_summary("5 SELECT discipline", a, "1 command per call", same, "= 1",
                same == 1.0);
  miscache_free(mc);
  redisFree(rc);
  return same == 1.0 ? 0 : 1;
}

/*
 * Benchmark 8: work-queue enqueue throughput. miscache_queue_enqueue of
 * batches of 1,000 small JSON messages (one pipeline per batch: an XADD
 * each, then a script that trims to the cap and counts what it dropped)
 * against redis-benchmark pipelining the bare XADD of a payload of the
 * same fields and sizes (msg_id, enqueued_ms, body) as deep as ours (-P 1000, the ratio) and -P 16, same server,
 * same run. Medians of ROUNDS. Goal: library / redis-benchmark
 * >= 0.7.
 */
#include "bench.h"

#define N 100000
#define BATCH 1000
#define ROUNDS 5

int main(void) {
  miscache_t *mc = bench_open();
  json_t *b = json_pack("{s:i,s:s}", "user_id", 123, "last_activity",
                        "2026-11-25T10:00:00Z");
  char *enc = json_dumps(b, JSON_COMPACT);
  size_t size = strlen(enc);
  free(enc);
  static const json_t *bs[BATCH];
  for (int i = 0; i < BATCH; i++) bs[i] = b;
  double lib[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now_s();
    for (int off = 0; off < N; off += BATCH)
      if (miscache_queue_enqueue(mc, "bench", BATCH, bs, NULL, NULL, NULL) !=
          MISCACHE_OK) {
        fprintf(stderr, "enqueue: %s\n", miscache_errmsg(mc));
        return 1;
      }
    lib[r] = N / (now_s() - t0);
  }
  double l = median(lib, ROUNDS);
  /* the reference: XADD of a value the size of ours, pipelined 16 deep */
  /* options before the command (redis-benchmark takes the rest as it);
   * the pipeline as deep as ours (1,000), and the usual 16 */
  double rb = 0, rb16 = 0;
  for (int depth = 0; depth < 2; depth++) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "redis-benchmark -s %s --csv -c 1 -P %d -n %d XADD benchq MAXLEN "
             "'~' 1000000 '*' msg_id __rand_int__%0*d enqueued_ms "
             "1764064800000 body %0*d 2>/dev/null",
             bench_socket(), depth ? 16 : BATCH, N, 24, 0, (int)size, 0);
    FILE *p = popen(cmd, "r");
    char line[512];
    while (p && fgets(line, sizeof line, p))
      if (!strncmp(line, "\"XADD", 5)) {
        const char *q = strstr(line, "\",\"");
        if (q) *(depth ? &rb16 : &rb) = atof(q + 3);
      }
    if (p) pclose(p);
  }
  printf("bench_queue: %d messages of %zu bytes, batches of %d, %d rounds "
         "(median)\n", N, size, BATCH, ROUNDS);
  printf("  library enqueue                  %10.0f msgs/s\n", l);
  printf("  redis-benchmark -P 1000 XADD     %10.0f ops/s   library/"
         "redis-benchmark = %.3f (goal >= 0.7)\n",
         rb, rb > 0 ? l / rb : 0);
  printf("  redis-benchmark -P 16 XADD       %10.0f ops/s   library/"
         "redis-benchmark = %.3f\n",
         rb16, rb16 > 0 ? l / rb16 : 0);
  char a[64], c[96];
  snprintf(a, sizeof a, "%.0f msgs/s", l);
  snprintf(c, sizeof c, "redis-benchmark -P 1000 XADD %.0f/s", rb);
  bench_summary("8 queue enqueue", a, c, rb > 0 ? l / rb : 0, ">= 0.7",
                rb > 0 && l / rb >= 0.7);
  json_decref(b);
  miscache_free(mc);
  return 0;
}

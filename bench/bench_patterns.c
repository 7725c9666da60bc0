/*
 * Benchmark 9: write-behind cost. A session update written behind
 * (miscache_write_behind: SET of the session and XADD of the change in one
 * MULTI/EXEC, one round trip) against a plain miscache_session_set of the
 * same session, one connection, no pipelining, same run. Medians of
 * ROUNDS. Goal: write-behind / session set >= 0.8.
 */
#include "bench.h"

#define N 20000
#define ROUNDS 5

int main(void) {
  miscache_t *mc = bench_open();
  miscache_session_t s = {.user_id = 123, .username = "admin", .dept_id = 1,
                          .current_company_id = 1,
                          .last_activity = "2026-11-25T10:00:00Z"};
  s.permissions = json_pack("{s:{s:b,s:b}}", "admin_batch", "read", 1,
                            "update", 1);
  json_t *v = json_pack("{s:I,s:s,s:I,s:I,s:O,s:s}", "user_id",
                        (json_int_t)123, "username", "admin", "dept_id",
                        (json_int_t)1, "current_company_id", (json_int_t)1,
                        "permissions", s.permissions, "last_activity",
                        "2026-11-25T10:00:00Z");
  double set[ROUNDS], wb[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now_s();
    for (int i = 0; i < N; i++)
      if (miscache_session_set(mc, &s) != MISCACHE_OK) return 1;
    set[r] = N / (now_s() - t0);
    t0 = now_s();
    for (int i = 0; i < N; i++)
      if (miscache_write_behind(mc, MISCACHE_DB_SESSION, "session:user:123", v,
                                MISCACHE_TTL_SESSION, "bench-sessions",
                                true) != MISCACHE_OK) {
        fprintf(stderr, "write-behind: %s\n", miscache_errmsg(mc));
        return 1;
      }
    wb[r] = N / (now_s() - t0);
  }
  double a = median(set, ROUNDS), b = median(wb, ROUNDS);
  printf("bench_patterns: session update, %d x %d rounds (medians)\n", N,
         ROUNDS);
  printf("  miscache_session_set       %10.0f updates/s\n", a);
  printf("  miscache_write_behind      %10.0f updates/s   write-behind/set = "
         "%.3f (goal >= 0.8)\n", b, b / a);
  char l[64], ref[64];
  snprintf(l, sizeof l, "%.0f write-behinds/s", b);
  snprintf(ref, sizeof ref, "session set %.0f/s", a);
  bench_summary("9 write-behind", l, ref, b / a, ">= 0.8", b / a >= 0.8);
  json_decref(v);
  json_decref(s.permissions);
  miscache_free(mc);
  return 0;
}

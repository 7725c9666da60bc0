/* Shared helpers of the benchmark programs: clock, medians, the server
 * socket from MISCACHE_URL (unix://PATH, as bench/run.sh sets it). */
#ifndef BENCH_H
#define BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <miscache/miscache.h>

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static inline double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The unix socket path of MISCACHE_URL; exits when it is not unix://. */
static inline const char *bench_socket(void) {
  const char *url = getenv("MISCACHE_URL");
  if (!url || strncmp(url, "unix://", 7) != 0) {
    fprintf(stderr, "set MISCACHE_URL=unix:///path (bench/run.sh does)\n");
    exit(2);
  }
  return url + 7;
}

/* A handle on MISCACHE_URL; with near, its near cache on (defaults). */
static inline miscache_t *bench_open_with(bool near) {
  miscache_options_t *o = miscache_options_new();
  if (near) {
    miscache_near_t n = {.enabled = true};
    miscache_options_set_near_cache(o, &n);
  }
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  if (miscache_open(o, &mc, err, sizeof err) != MISCACHE_OK) {
    fprintf(stderr, "open: %s\n", err);
    exit(3);
  }
  miscache_options_free(o);
  return mc;
}

static inline miscache_t *bench_open(void) { return bench_open_with(false); }

/* The permissions map of the benchmarks' session (2 menus); new reference. */
static inline json_t *bench_permissions(void) {
  return json_pack("{s:{s:b,s:b,s:b,s:b},s:{s:b,s:b,s:b,s:b}}", "admin_batch",
                   "create", 0, "read", 1, "update", 1, "delete", 0,
                   "trade_order", "create", 1, "read", 1, "update", 0,
                   "delete", 0);
}

/* A map of five menus (docs/benchmarks.md measures the near hit on one). */
static inline json_t *bench_permissions5(void) {
  return json_pack("{s:{s:b,s:b,s:b,s:b},s:{s:b,s:b,s:b,s:b},"
                   "s:{s:b,s:b,s:b,s:b},s:{s:b,s:b,s:b,s:b},"
                   "s:{s:b,s:b,s:b,s:b}}",
                   "admin_batch", "create", 0, "read", 1, "update", 1,
                   "delete", 0, "trade_order", "create", 1, "read", 1,
                   "update", 0, "delete", 0, "sales_report", "create", 0,
                   "read", 1, "update", 0, "delete", 0, "inventory", "create",
                   1, "read", 1, "update", 1, "delete", 0, "gift_rules",
                   "create", 0, "read", 1, "update", 0, "delete", 0);
}

/* Store the benchmarks' session (user 123, the docs/strategy.md payload); exits on
 * failure. */
static inline void bench_session_set(miscache_t *mc) {
  miscache_session_t s = {.user_id = 123, .username = "admin", .dept_id = 1,
                          .current_company_id = 1,
                          .last_activity = "2026-11-24T10:00:00Z"};
  s.permissions = bench_permissions();
  if (miscache_session_set(mc, &s) != MISCACHE_OK) exit(1);
  json_decref(s.permissions);
}

static inline redisContext *bench_raw(void) {
  redisContext *c = redisConnectUnix(bench_socket());
  if (!c || c->err) {
    fprintf(stderr, "raw connect failed\n");
    exit(3);
  }
  return c;
}

/* ops/s of redis-benchmark for one test line, e.g. "GET"; 0 if unknown. */
static inline double redis_benchmark(const char *args, const char *test) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "redis-benchmark -s %s %s --csv 2>/dev/null",
           bench_socket(), args);
  FILE *p = popen(cmd, "r");
  if (!p) return 0;
  char line[512];
  double ops = 0;
  size_t tl = strlen(test);
  while (fgets(line, sizeof line, p))
    if (line[0] == '"' && !strncmp(line + 1, test, tl) && line[1 + tl] == '"')
      ops = atof(line + tl + 4); /* "GET","123456.79",... */
  pclose(p);
  return ops;
}

/* One row of the summary table bench/run.sh prints at the end: a line
 * "@summary|benchmark|library|reference|ratio|target|verdict" (run.sh
 * takes these lines out of the program's printed output). met: 1 met,
 * 0 missed, -1 no target. */
static inline void bench_summary(const char *bench, const char *library,
                                 const char *reference, double ratio,
                                 const char *target, int met) {
  printf("@summary|%s|%s|%s|%.3f|%s|%s\n", bench, library, reference, ratio,
         target, met < 0 ? "-" : met ? "met" : "MISSED");
}

#endif

/*
 * cache_monitor: server figures per logical db and the batch/gift cache
 * health of companies, as a table.
 *
 *   cache_monitor [--date YYYYMMDD] [COMPANY...]   (default companies 1 2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <miscache/miscache.h>

int main(int argc, char **argv) {
  char today[9];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(today, sizeof today, "%Y%m%d", &tm);
  const char *date = today;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "--date") == 0) {
    date = argv[2];
    first = 3;
  }
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  miscache_server_info_t info;
  st = miscache_server_info(mc, &info);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "info: %s (%s)\n", miscache_strerror(st),
            miscache_errmsg(mc));
    miscache_free(mc);
    return 3;
  }
  printf("%-8s %3s %8s %8s\n", "db", "no", "keys", "expires");
  for (int i = 0; i < MISCACHE_DB_COUNT; i++)
    printf("%-8s %3d %8lld %8lld\n", miscache_db_name((miscache_db_t)i),
           miscache_db_number(mc, (miscache_db_t)i), (long long)info.keys[i],
           (long long)info.expires[i]);
  printf("memory %.1f MiB (max %s, policy %s), server hit rate %.1f %% "
         "(%lld hits, %lld misses)\n",
         (double)info.used_memory / 1048576.0,
         info.maxmemory ? "set" : "none", info.maxmemory_policy,
         100 * info.hit_rate, (long long)info.keyspace_hits,
         (long long)info.keyspace_misses);

  printf("\n%-8s %-8s %-8s %-22s %-10s %-8s %s\n", "company", "batch", "gift",
         "last batch", "status", "locked", "keywords");
  for (int i = first; i < argc || (first == argc && i < first + 2); i++) {
    int64_t company = i < argc ? atoll(argv[i]) : i - first + 1;
    miscache_company_health_t h;
    st = miscache_company_health(mc, company, date, &h);
    if (st != MISCACHE_OK) {
      fprintf(stderr, "health %lld: %s (%s)\n", (long long)company,
              miscache_strerror(st), miscache_errmsg(mc));
      miscache_free(mc);
      return 3;
    }
    printf("%-8lld %-8s %-8s %-22s %-10s %-8s %llu\n", (long long)company,
           miscache_health_name(h.batch), miscache_health_name(h.gift),
           h.last_batch_time[0] ? h.last_batch_time : "-",
           h.last_batch_status[0] ? h.last_batch_status : "-",
           h.batch_locked ? "yes" : "no", (unsigned long long)h.keyword_count);
  }
  miscache_free(mc);
  return 0;
}

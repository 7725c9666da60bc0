/*
 * endpoints: the same program on any deployment; only MISCACHE_URL differs.
 *
 *   MISCACHE_URL='rediss://cache.internal:6380?cacert=/etc/ssl/mis-ca.pem' endpoints
 *   MISCACHE_URL='redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster' endpoints
 *   MISCACHE_URL='redis+cluster://n1:7000,n2:7001?hash_tags=true' endpoints
 *   MISCACHE_URL='unix:///run/redis/redis.sock?namespace=mis:' endpoints
 *
 * Prints the effective settings (password as ***), opens a handle (TLS:
 * the certificate is verified against cacert and must name the host;
 * Sentinel: the master the sentinels name, followed through failovers;
 * Cluster: the slot map, MOVED/ASK followed), writes and reads back a
 * batch status and a session, takes and releases the company's fenced
 * batch lock, and prints what the link did (transport, node in use,
 * connects, redirects). Exit 0 when every step worked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <miscache/miscache.h>

static int fail(miscache_t *mc, const char *what, miscache_status_t st) {
  fprintf(stderr, "%s: %s (%s)\n", what, miscache_strerror(st),
          mc ? miscache_errmsg(mc) : "");
  return 1;
}

int main(void) {
  char text[8192];
  miscache_status_t st = miscache_url_describe(NULL, text, sizeof text, NULL);
  if (st != MISCACHE_OK) return fail(NULL, text, st);
  /* the endpoint part: the first lines, up to the first setting */
  char *cut = strstr(text, "\nnamespace=");
  char *end = cut ? strchr(cut + 1, '\n') : NULL;
  if (end) end[1] = 0;
  printf("settings (start):\n%s", text);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  miscache_batch_status_t s = {.status = "running", .batch_id = "endpoints"};
  miscache_batch_status_t back = {0};
  if ((st = miscache_batch_status_set(mc, 7, &s)) != MISCACHE_OK)
    return fail(mc, "batch status set", st);
  if ((st = miscache_batch_status_get(mc, 7, &back)) != MISCACHE_OK)
    return fail(mc, "batch status get", st);
  printf("batch status of company 7: %s (%s)\n", back.status, back.batch_id);
  miscache_batch_status_clear(&back);
  miscache_session_t u = {.user_id = 42, .username = "endpoints"};
  miscache_session_t ub = {0};
  if ((st = miscache_session_set(mc, &u)) != MISCACHE_OK ||
      (st = miscache_session_get(mc, 42, &ub)) != MISCACHE_OK)
    return fail(mc, "session", st);
  printf("session 42: %s\n", ub.username);
  miscache_session_clear(&ub);
  miscache_lock_t *lk = NULL;
  st = miscache_batch_lock_acquire(mc, 7, "endpoints", "e-1", &lk);
  if (st != MISCACHE_OK) return fail(mc, "batch lock", st);
  printf("batch lock of company 7 taken, fence %lld\n",
         (long long)miscache_lock_fence(lk));
  if ((st = miscache_lock_release(mc, lk)) != MISCACHE_OK)
    return fail(mc, "release", st);
  miscache_lock_free(lk);
  miscache_link_stats_t ls;
  miscache_link_stats(mc, &ls, sizeof ls);
  printf("link: transport %s, node %s, %llu connects, %llu slot map loads or "
         "master lookups, %llu redirects\n",
         ls.transport, ls.master, (unsigned long long)ls.connects,
         (unsigned long long)ls.master_lookups,
         (unsigned long long)ls.redirects);
  miscache_free(mc);
  return 0;
}

/*
 * session_demo: login → session and permissions → a permission check →
 * a permission change that invalidates both → the next check reloads.
 */
#include <stdio.h>
#include <stdlib.h>

#include <miscache/miscache.h>

/* The MIS user database: may user 123 update admin_batch? It changes. */
static int db_version = 1;
static int db_reads;

static miscache_status_t load_permissions(void *ud, const char *key,
                                          json_t **out) {
  (void)ud;
  db_reads++;
  printf("    (permissions loaded from the database for %s)\n", key);
  *out = json_pack("{s:{s:b,s:b,s:b,s:b},s:{s:b,s:b,s:b,s:b}}", "admin_batch",
                   "create", 0, "read", 1, "update", db_version == 1, "delete",
                   0, "trade_order", "create", 1, "read", 1, "update", 0,
                   "delete", 0);
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

static void check(miscache_t *mc, const char *menu, miscache_perm_t perm) {
  bool ok = false;
  miscache_source_t src;
  miscache_status_t st = miscache_permissions_check(
      mc, 123, menu, perm, load_permissions, NULL, &ok, &src);
  printf("  may user 123 %s %s? %s (%s, %s)\n", miscache_perm_name(perm), menu,
         ok ? "yes" : "no", miscache_strerror(st),
         src == MISCACHE_SOURCE_CACHE ? "cache" : "database");
}

int main(void) {
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  printf("login of user 123\n");
  miscache_session_t s = {.user_id = 123, .username = "admin", .dept_id = 1,
                          .current_company_id = 1};
  st = miscache_session_set(mc, &s);
  miscache_session_t got;
  if (st == MISCACHE_OK) st = miscache_session_get(mc, 123, &got);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "session: %s (%s)\n", miscache_strerror(st),
            miscache_errmsg(mc));
    miscache_free(mc);
    return 1;
  }
  printf("  session: %s, company %lld, last activity %s\n", got.username,
         (long long)got.current_company_id, got.last_activity);
  miscache_session_clear(&got);
  check(mc, "admin_batch", MISCACHE_PERM_UPDATE);
  check(mc, "admin_batch", MISCACHE_PERM_DELETE);
  check(mc, "trade_order", MISCACHE_PERM_CREATE);

  printf("admin revokes admin_batch.update of user 123\n");
  db_version = 2;
  uint64_t removed = 0;
  miscache_invalidate_permissions(mc, 123, &removed);
  printf("  invalidated %llu keys (permissions and session)\n",
         (unsigned long long)removed);
  check(mc, "admin_batch", MISCACHE_PERM_UPDATE);
  bool present = true;
  miscache_exists(mc, MISCACHE_DB_SESSION, "session:user:123", &present);
  printf("  session present after the change: %s (the user logs in again)\n",
         present ? "yes" : "no");
  printf("database reads: %d\n", db_reads);
  miscache_free(mc);
  return db_reads == 2 ? 0 : 1;
}

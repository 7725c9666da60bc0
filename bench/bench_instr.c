/*
 * Instruction counts (run under callgrind by bench/callgrind.sh): MODE
 * COUNT does COUNT operations of one kind after the same set-up, so the
 * difference between COUNT and 0 divided by COUNT is the cost of one.
 *   typed   miscache_session_get of the bench_read session
 *   raw     hiredis GET of the same key + json_loadb
 *   near    miscache_permissions_check answered by the near cache
 *   rawperm hiredis GET of the permissions key + json_loadb
 */
#include "bench.h"

static miscache_status_t no_loader(void *ud, const char *key, json_t **out) {
  (void)ud, (void)key, (void)out;
  return MISCACHE_ERR_LOADER;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: bench_instr typed|raw|near|rawperm COUNT\n");
    return 2;
  }
  const char *mode = argv[1];
  long count = atol(argv[2]);
  bool near = !strcmp(mode, "near") || !strcmp(mode, "rawperm");
  miscache_t *mc = bench_open_with(near);
  redisContext *rc = bench_raw();
  bench_session_set(mc);
  json_t *perms = bench_permissions();
  if (miscache_permissions_set(mc, 42, perms) != MISCACHE_OK) return 1;
  json_decref(perms);
  redisReply *sel = redisCommand(
      rc, "SELECT %d",
      miscache_db_number(mc, !strcmp(mode, "raw") ? MISCACHE_DB_SESSION
                                                  : MISCACHE_DB_CACHE));
  freeReplyObject(sel);
  bool allowed;
  if (near) { /* connected, and the key cached */
    for (int i = 0; i < 1000; i++) {
      miscache_near_stats_t ns;
      miscache_near_stats(mc, &ns, sizeof ns);
      if (ns.connected) break;
      struct timespec ts = {0, 10000000L};
      nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 2; i++)
      miscache_permissions_check(mc, 42, "admin_batch", MISCACHE_PERM_READ,
                                 no_loader, NULL, &allowed, NULL);
  }
  for (long i = 0; i < count; i++) {
    if (!strcmp(mode, "typed")) {
      miscache_session_t out;
      if (miscache_session_get(mc, 123, &out) != MISCACHE_OK) return 4;
      miscache_session_clear(&out);
    } else if (!strcmp(mode, "near")) {
      if (miscache_permissions_check(mc, 42, "admin_batch", MISCACHE_PERM_READ,
                                     no_loader, NULL, &allowed,
                                     NULL) != MISCACHE_OK)
        return 4;
    } else {
      const char *key = !strcmp(mode, "raw") ? "session:user:123"
                                             : "permissions:user:42";
      redisReply *r = redisCommand(rc, "GET %s", key);
      if (!r || r->type != REDIS_REPLY_STRING) return 4;
      json_error_t je;
      json_t *v = json_loadb(r->str, r->len, 0, &je);
      if (!v) return 4;
      json_decref(v);
      freeReplyObject(r);
    }
  }
  miscache_free(mc);
  redisFree(rc);
  return 0;
}

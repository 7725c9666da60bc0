/*
 * The operations' door to the handle: every command of an operation goes
 * through miscache__run (or miscache__run_key), which first replays the
 * pending invalidations (core/pending.c keeps them) and then sends on the
 * handle's dispatcher. This is the one place that replays: the erase
 * functions it replays with (erase.c) send without replaying, so a replay
 * never re-enters itself, and the handle needs no "replaying" guard.
 */
#include <string.h>

#include "ops/ops.h"

#define REPLAY_RETRY_MS                                                        \
  100 /* after a failed replay, calls go on unhindered                         \
         (covered reads skip the cache) for this long */

/* Every entry replayed on mc; each that succeeded removed. The first
 * failure stops it. */
static miscache_status_t replay(miscache_t *mc) {
  miscache__pending_entry_t *e;
  size_t n;
  miscache_status_t st = miscache__pending_snapshot(mc->pending, &e, &n);
  uint64_t done = 0;
  for (size_t i = 0; st == MISCACHE_OK && i < n; i++) {
    st = e[i].pattern
             ? miscache__invalidate_now(mc, e[i].db, e[i].key, NULL)
             : miscache__delete_now(mc, e[i].db, e[i].key, NULL);
    if (st == MISCACHE_OK) miscache__pending_done(mc->pending, e[i].id);
    done += st == MISCACHE_OK;
  }
  miscache__pending_entries_free(e, n);
  if (done)
    miscache__event(&mc->opts.hook, MISCACHE_EV_PENDING_REPLAYED,
                    miscache__master_name(mc), 0, done,
                    "%llu pending invalidation%s replayed, %zu left",
                    (unsigned long long)done, done == 1 ? "" : "s",
                    miscache__pending_count(mc->pending));
  return st;
}

void miscache__replay_pending(miscache_t *mc) {
  if (miscache__pending_count(mc->pending) == 0) return;
  int64_t now = miscache__mono_ms();
  if (now < mc->replay_after_ms) return;
  char saved[MISCACHE_ERRMSG_SIZE];
  memcpy(saved, mc->err, sizeof saved);
  bool quiet = mc->quiet;
  mc->quiet = true; /* not the caller's cache traffic */
  miscache_status_t st = replay(mc);
  mc->quiet = quiet;
  if (st != MISCACHE_OK) mc->replay_after_ms = now + REPLAY_RETRY_MS;
  memcpy(mc->err, saved, sizeof saved);
}

miscache_status_t miscache__run(miscache_t *mc, int db, size_t n,
                                const miscache__cmd_t *cmds,
                                miscache__reply_t **replies, unsigned flags) {
  if (!(flags & MISCACHE__SAME_CONN)) miscache__replay_pending(mc);
  return miscache__send(mc, db, n, cmds, replies, flags);
}

miscache_status_t miscache__run_key(miscache_t *mc, miscache_db_t db,
                                    const char *key,
                                    const miscache__cmd_t *cmd,
                                    miscache__reply_t **reply, unsigned flags) {
  if (!(flags & MISCACHE__SAME_CONN)) miscache__replay_pending(mc);
  return miscache__exec_key(mc, db, key, cmd, reply, flags);
}

/* PING: like every call, it replays first (a way to flush the pending
 * invalidations once the server is back). */
miscache_status_t miscache_ping(miscache_t *mc) {
  if (!mc) return MISCACHE_ERR_INVALID;
  const char *argv[1] = {"PING"};
  size_t lens[1] = {4};
  miscache__cmd_t cmd = {1, argv, lens};
  miscache__reply_t *r = NULL;
  miscache_status_t st =
      miscache__run(mc, MISCACHE__NO_DB, 1, &cmd, &r, MISCACHE__IDEMPOTENT);
  if (st != MISCACHE_OK) return st;
  if (miscache__reply_type(r) == MISCACHE__R_ERROR)
    st = miscache__reply_error(r, "PING", mc->err, sizeof mc->err);
  miscache__reply_free(r);
  return st;
}

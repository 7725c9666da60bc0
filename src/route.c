/*
 * The dispatcher: the one place every command of a handle goes through.
 * It replays pending invalidations before the handle sends anything else,
 * picks the node (today one standalone node with SELECT; Sentinel and
 * Cluster plug in here), and runs the batch on it. Nothing above this file
 * touches a connection.
 */
#include <string.h>
#include <time.h>

#include "internal.h"

#define REPLAY_RETRY_MS                                                        \
  100 /* after a failed replay, calls go on unhindered                         \
         (covered reads skip the cache) for this long */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void miscache__replay_pending(miscache_t *mc) {
  if (mc->replaying || miscache__pending_count(mc->pending) == 0) return;
  int64_t now = mono_ms();
  if (now < mc->replay_after_ms) return;
  char saved[MISCACHE_ERRMSG_SIZE];
  memcpy(saved, mc->err, sizeof saved);
  bool quiet = mc->quiet;
  mc->replaying = true;
  mc->quiet = true; /* not the caller's cache traffic */
  miscache_status_t st = miscache__pending_replay(mc);
  mc->quiet = quiet;
  mc->replaying = false;
  if (st != MISCACHE_OK) mc->replay_after_ms = now + REPLAY_RETRY_MS;
  memcpy(mc->err, saved, sizeof saved);
}

miscache_status_t miscache__dispatch(miscache_t *mc, int db, size_t n,
                                     const miscache__cmd_t *cmds,
                                     miscache__reply_t **replies,
                                     unsigned flags) {
  if (!(flags & MISCACHE__SAME_CONN)) miscache__replay_pending(mc);
  int physical = db < 0 ? -1 : mc->opts.db[db];
  return miscache__conn_exec(mc->nodes[0], physical, n, cmds, replies, flags);
}

/*
 * flush_worker: write-behind (patterns.h) with its flush worker.
 *
 *   flush_worker [--users N] [--updates N]
 *
 * The service side answers at cache speed: every change of a user's last
 * activity goes to the cache and, in the same script, onto the work queue
 * "wb-activity" with a sequence number (miscache_write_behind). The flush
 * worker drains that queue into the system of record (here an in-memory
 * table) with miscache_write_behind_flush_changes: one key's changes in
 * seq order under a per-key lease, coalesced ones written once, and a
 * record that stores the seq refuses an older value itself. At the end the
 * record holds, for every user, the value the cache acknowledged last.
 * Server: MISCACHE_URL alone (not a Redis Cluster: write-behind needs one
 * db for the value and its queue entry).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <miscache/miscache.h>

#define MAX_USERS 64

/* The system of record: the last value written per user and its seq. */
typedef struct {
  char value[MAX_USERS][64];
  uint64_t seq[MAX_USERS];
  int writes, refused;
} record_t;

static miscache_status_t write_record(void *ud, const miscache_wb_change_t *c,
                                      char *errbuf, size_t errlen) {
  record_t *r = ud;
  int user = -1;
  if (sscanf(c->key, "session:activity:%d", &user) != 1 || user < 0 ||
      user >= MAX_USERS) {
    snprintf(errbuf, errlen, "not a key of this record: %s", c->key);
    return MISCACHE_ERR_INVALID;
  }
  /* UPDATE ... WHERE seq < ?: an older change never overwrites a newer one */
  if (c->seq && c->seq <= r->seq[user]) {
    r->refused++;
    return MISCACHE_OK;
  }
  const char *v = json_string_value(json_object_get(c->value, "last_activity"));
  snprintf(r->value[user], sizeof r->value[user], "%s", v ? v : "?");
  r->seq[user] = c->seq;
  r->writes++;
  return MISCACHE_OK;
}

int main(int argc, char **argv) {
  int users = 8, updates = 5;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--users") && i + 1 < argc) users = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--updates") && i + 1 < argc) updates = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--users N] [--updates N]\n", argv[0]);
      return 2;
    }
  }
  if (users < 1 || users > MAX_USERS || updates < 1 || updates > 1000) return 2;
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  /* the service: updates of each user's last activity, coalescible */
  char key[64], last[MAX_USERS][64];
  for (int u = 0; u < updates * users; u++) {
    int user = u % users;
    snprintf(key, sizeof key, "session:activity:%d", user);
    snprintf(last[user], sizeof last[user], "2026-12-03T12:%02d:%02dZ",
             u / 60 % 60, u % 60);
    json_t *v = json_pack("{s:i,s:s}", "user_id", user, "last_activity",
                          last[user]);
    st = miscache_write_behind(mc, MISCACHE_DB_SESSION, key, v,
                               MISCACHE_TTL_SESSION, "wb-activity", true);
    json_decref(v);
    if (st != MISCACHE_OK) {
      fprintf(stderr, "write-behind: %s (%s)\n", miscache_strerror(st),
              miscache_errmsg(mc));
      miscache_free(mc);
      return 1;
    }
  }
  printf("%d changes of %d users queued with their values cached\n",
         updates * users, users);
  /* the flush worker: rounds until the queue is drained */
  record_t rec;
  memset(&rec, 0, sizeof rec);
  miscache_queue_opts_t qo = {.reclaim_idle_ms = 5000};
  size_t written = 0, acked = 0, total_acked = 0;
  for (int round = 0; round < 50; round++) {
    st = miscache_write_behind_flush_changes(mc, "wb-activity", "flushers",
                                             "flusher-1", 100, 50, &qo,
                                             write_record, &rec, &written,
                                             &acked);
    if (st != MISCACHE_OK) {
      fprintf(stderr, "flush: %s (%s)\n", miscache_strerror(st),
              miscache_errmsg(mc));
      break;
    }
    total_acked += acked;
    if (total_acked >= (size_t)(updates * users)) break;
  }
  int right = 0;
  for (int u = 0; u < users; u++) right += strcmp(rec.value[u], last[u]) == 0;
  printf("flushed: %zu queue entries acked, %d record writes (coalesced "
         "changes written once), %d older changes refused by seq; the record "
         "holds the latest value of %d of %d users\n",
         total_acked, rec.writes, rec.refused, right, users);
  miscache_free(mc);
  return right == users ? 0 : 1;
}

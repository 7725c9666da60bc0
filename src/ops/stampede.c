/*
 * Stampede protection for cache-aside reads (see miscache_stampede_t):
 * single flight in the process, a recompute lease across processes, and
 * early ("XFetch") refresh. Used by miscache__cache_aside in cache.c.
 */
#include <math.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/ops.h"

/* ---- single flight in the process ----------------------------------------- */

struct miscache__flight {
  struct miscache__flight *next;
  char *key; /* namespace, physical db and logical key */
  unsigned refs;
  bool done;
  json_t *value; /* the leader's result, never modified: followers copy it */
  miscache_source_t source; /* where the leader's value came from */
  pthread_cond_t cv;
};

static pthread_mutex_t flights_mu = PTHREAD_MUTEX_INITIALIZER;
static miscache__flight_t *flights;
static _Atomic uint64_t flights_done; /* flights landed so far */

uint64_t miscache__flight_epoch(void) { return atomic_load(&flights_done); }

/* fork(): the table is locked across it, and a child starts with an empty
 * one (its leaders are in the parent; what they hold is left to the
 * parent) instead of waiting for flights that will never land. */
static void fork_prepare(void) { pthread_mutex_lock(&flights_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&flights_mu); }
static void fork_child(void) {
  flights = NULL;
  pthread_mutex_unlock(&flights_mu);
}
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) {
  (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

miscache__flight_t *miscache__flight_join(miscache_t *mc, miscache_db_t db,
                                          const char *key, bool *leader) {
  *leader = false;
  pthread_once(&atfork_once, register_atfork);
  char head[96];
  int hl = snprintf(head, sizeof head, "%s\x1f%d\x1f", mc->opts.ns,
                    mc->opts.db[db]);
  size_t kl = strlen(key);
  pthread_mutex_lock(&flights_mu);
  miscache__flight_t *f = flights;
  for (; f; f = f->next)
    if (strncmp(f->key, head, (size_t)hl) == 0 && strcmp(f->key + hl, key) == 0)
      break;
  if (f && !f->done) {
    f->refs++;
    pthread_mutex_unlock(&flights_mu);
    return f; /* a follower */
  }
  f = calloc(1, sizeof *f);
  char *k = f ? malloc((size_t)hl + kl + 1) : NULL;
  if (!k) { /* no memory: no single flight, the caller just loads */
    free(f);
    pthread_mutex_unlock(&flights_mu);
    *leader = true;
    return NULL;
  }
  memcpy(k, head, (size_t)hl);
  memcpy(k + hl, key, kl + 1);
  f->key = k;
  f->refs = 1;
  miscache__cond_init_monotonic(&f->cv);
  f->next = flights;
  flights = f;
  pthread_mutex_unlock(&flights_mu);
  *leader = true;
  return f;
}

/* Drop one reference (flights_mu held); the last one unlinks and frees. */
static void flight_unref_locked(miscache__flight_t *f) {
  if (--f->refs) return;
  for (miscache__flight_t **p = &flights; *p; p = &(*p)->next)
    if (*p == f) {
      *p = f->next;
      break;
    }
  json_decref(f->value);
  pthread_cond_destroy(&f->cv);
  free(f->key);
  free(f);
}

void miscache__flight_done(miscache__flight_t *f, const json_t *value,
                           miscache_source_t source) {
  if (!f) return;
  json_t *copy = value ? json_deep_copy(value) : NULL;
  pthread_mutex_lock(&flights_mu);
  f->done = true;
  atomic_fetch_add(&flights_done, 1);
  f->value = copy;
  f->source = source;
  /* unlink now: a later miss starts a new flight */
  for (miscache__flight_t **p = &flights; *p; p = &(*p)->next)
    if (*p == f) {
      *p = f->next;
      f->next = NULL;
      break;
    }
  pthread_cond_broadcast(&f->cv);
  flight_unref_locked(f);
  pthread_mutex_unlock(&flights_mu);
}

json_t *miscache__flight_wait(miscache__flight_t *f, int wait_ms,
                              miscache_source_t *source) {
  struct timespec until;
  miscache__deadline_after(&until, wait_ms);
  pthread_mutex_lock(&flights_mu);
  while (!f->done)
    if (pthread_cond_timedwait(&f->cv, &flights_mu, &until) != 0) break;
  json_t *v = f->done && f->value ? json_deep_copy(f->value) : NULL;
  *source = f->source;
  flight_unref_locked(f); /* after a timeout the leader still holds one */
  pthread_mutex_unlock(&flights_mu);
  return v;
}

/* ---- the recompute lease across processes ---------------------------------- */

miscache_status_t miscache__lease_key_take(miscache_t *mc, miscache_db_t db,
                                           const char *lease_key, int lease_ms,
                                           char token[33], bool *taken) {
  *taken = false;
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, lease_key, &fk);
  if (st != MISCACHE_OK) return st;
  snprintf(token, 33, "%016llx%016llx", (unsigned long long)miscache__rand(mc),
           (unsigned long long)miscache__rand(mc));
  char px[24], val[64];
  int pl = snprintf(px, sizeof px, "%d", lease_ms);
  /* the shape the lock release script checks: {"token": ...} */
  int vl = snprintf(val, sizeof val, "{\"token\":\"%s\"}", token);
  const char *argv[6] = {"SET", fk.ptr, val, "NX", "PX", px};
  size_t lens[6] = {3, fk.len, (size_t)vl, 2, 2, (size_t)pl};
  miscache__cmd_t cmd = {6, argv, lens};
  miscache__reply_t *r = NULL;
  st = miscache__run_key(mc, db, lease_key, &cmd, &r, 0);
  if (st == MISCACHE_OK) {
    size_t n;
    const char *text = miscache__reply_str(r, &n);
    *taken = miscache__reply_is(r, MISCACHE__R_STATUS) && n == 2 &&
             memcmp(text, "OK", 2) == 0; /* only +OK: nil is "held" */
    if (!*taken && !miscache__reply_is(r, MISCACHE__R_NIL))
      st = miscache__unexpected(mc, db, lease_key, r, "SET NX (lease)");
    miscache__reply_free(r);
  }
  miscache__fullkey_done(&fk);
  return st;
}

void miscache__lease_key_release(miscache_t *mc, miscache_db_t db,
                                 const char *lease_key, const char *token) {
  const char *keys[1] = {lease_key};
  const char *args[1] = {token};
  long long n = 0;
  char saved[MISCACHE_ERRMSG_SIZE];
  memcpy(saved, mc->err, sizeof saved);
  /* token-checked: a lease that expired and was taken by another stays */
  (void)miscache__eval(mc, db, miscache__lua_release, miscache__lua_release_sha,
                       1, keys, 1, args, MISCACHE__IDEMPOTENT, &n);
  memcpy(mc->err, saved, sizeof saved);
}

miscache_status_t miscache__lease_take(miscache_t *mc, miscache_db_t db,
                                       const char *key, int lease_ms,
                                       char token[33], bool *taken) {
  char lk[MISCACHE_KEY_BUFSIZE + 32];
  snprintf(lk, sizeof lk, "stampede:lease:%s", key);
  return miscache__lease_key_take(mc, db, lk, lease_ms, token, taken);
}

void miscache__lease_release(miscache_t *mc, miscache_db_t db, const char *key,
                             const char *token) {
  char lk[MISCACHE_KEY_BUFSIZE + 32];
  snprintf(lk, sizeof lk, "stampede:lease:%s", key);
  miscache__lease_key_release(mc, db, lk, token);
}

/* ---- early refresh ----------------------------------------------------------- */

bool miscache__xfetch_due(miscache_t *mc, int64_t pttl_ms, int early_ms) {
  if (pttl_ms < 0) return false; /* no TTL, or gone */
  /* u in (0, 1]: -ln(u) is exponential with mean 1 */
  double u = (double)((miscache__rand(mc) >> 11) + 1) / 9007199254740992.0;
  return (double)pttl_ms < -log(u) * (double)early_ms;
}

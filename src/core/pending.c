/*
 * Pending invalidations: deletes and pattern invalidations whose outcome is
 * unknown (timeout, lost connection, server error). They are kept in memory,
 * shared by the handles of a pool, so that
 *   - reads of the keys they cover skip the cache (MISS, or the loader), and
 *   - ops/replay.c replays them before a handle sends anything else.
 * A process that dies loses them: the keys then live until their TTL.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef miscache__pending_entry_t entry_t;

struct miscache__pending {
  pthread_mutex_t mu;
  miscache__fork_guard_t guard; /* mu across fork() */
  atomic_size_t count;
  atomic_int refs;
  size_t cap;
  uint64_t next_id;
  entry_t *items;
};

miscache__pending_t *miscache__pending_new(size_t cap) {
  miscache__pending_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->items = calloc(cap ? cap : 1, sizeof *p->items);
  if (!p->items) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->mu, NULL);
  miscache__fork_guard_add(&p->guard, &p->mu, NULL);
  atomic_init(&p->count, 0);
  atomic_init(&p->refs, 1);
  p->cap = cap;
  p->next_id = 1;
  return p;
}

miscache__pending_t *miscache__pending_ref(miscache__pending_t *p) {
  if (p) atomic_fetch_add(&p->refs, 1);
  return p;
}

void miscache__pending_unref(miscache__pending_t *p) {
  if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
  size_t n = atomic_load(&p->count);
  for (size_t i = 0; i < n; i++)
    free(p->items[i].key);
  free(p->items);
  miscache__fork_guard_remove(&p->guard);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

size_t miscache__pending_count(const miscache__pending_t *p) {
  return p ? atomic_load(&((miscache__pending_t *)p)->count) : 0;
}

miscache_status_t miscache__pending_add(miscache__pending_t *p,
                                        miscache_db_t db, const char *key,
                                        bool pattern) {
  char *copy = strdup(key);
  if (!copy) return MISCACHE_ERR_NOMEM;
  pthread_mutex_lock(&p->mu);
  size_t n = atomic_load(&p->count);
  for (size_t i = 0; i < n; i++) /* already pending: nothing to add */
    if (p->items[i].db == db && p->items[i].pattern == pattern &&
        strcmp(p->items[i].key, key) == 0) {
      pthread_mutex_unlock(&p->mu);
      free(copy);
      return MISCACHE_OK;
    }
  if (n >= p->cap) {
    pthread_mutex_unlock(&p->mu);
    free(copy);
    return MISCACHE_ERR_PENDING_FULL;
  }
  p->items[n] = (entry_t){p->next_id++, db, pattern, copy};
  atomic_store(&p->count, n + 1);
  pthread_mutex_unlock(&p->mu);
  return MISCACHE_OK;
}


bool miscache__pending_covers(miscache__pending_t *p, miscache_db_t db,
                              const char *key) {
  if (!p || atomic_load(&p->count) == 0 || !key) return false;
  bool hit = false;
  pthread_mutex_lock(&p->mu);
  size_t n = atomic_load(&p->count);
  for (size_t i = 0; i < n && !hit; i++) {
    const entry_t *e = &p->items[i];
    if (e->db != db) continue;
    hit = e->pattern ? miscache__glob_match(e->key, key)
                     : strcmp(e->key, key) == 0;
  }
  pthread_mutex_unlock(&p->mu);
  return hit;
}

void miscache__pending_done(miscache__pending_t *p, uint64_t id) {
  pthread_mutex_lock(&p->mu);
  size_t n = atomic_load(&p->count);
  for (size_t i = 0; i < n; i++)
    if (p->items[i].id == id) {
      free(p->items[i].key);
      p->items[i] = p->items[n - 1];
      atomic_store(&p->count, n - 1);
      break;
    }
  pthread_mutex_unlock(&p->mu);
}

miscache_status_t miscache__pending_snapshot(miscache__pending_t *p,
                                             miscache__pending_entry_t **out,
                                             size_t *n) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&p->mu);
  size_t count = atomic_load(&p->count);
  entry_t *snap = count ? calloc(count, sizeof *snap) : NULL;
  size_t m = 0;
  for (size_t i = 0; snap && i < count; i++) {
    snap[m] = p->items[i];
    if (!(snap[m].key = strdup(p->items[i].key))) break;
    m++;
  }
  pthread_mutex_unlock(&p->mu);
  if (m < count) {
    miscache__pending_entries_free(snap, m);
    return MISCACHE_ERR_NOMEM;
  }
  *out = snap;
  *n = m;
  return MISCACHE_OK;
}

void miscache__pending_entries_free(miscache__pending_entry_t *e, size_t n) {
  for (size_t i = 0; e && i < n; i++) free(e[i].key);
  free(e);
}

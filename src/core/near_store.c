/*
 * The near cache's store: a hash table of decoded values with an LRU
 * list and byte budget, the stripe counters and epoch that make a read's
 * ticket, and the calls a reader makes (get, put, evict). No I/O and no
 * thread of its own: near.c's links keep it correct (see there).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/near_store.h"

/* ---- the store (caller holds mu) ------------------------------------------ */

static void lru_unlink(near_entry_t *e) {
  e->l.prev->next = e->l.next;
  e->l.next->prev = e->l.prev;
}

static void lru_front(miscache__near_t *s, near_entry_t *e) {
  e->l.next = s->lru.next;
  e->l.prev = &s->lru;
  s->lru.next->prev = &e->l;
  s->lru.next = &e->l;
}

/* The store's reference to a value that readers may hold too, dropped with
 * an acquire-release decrement: jansson's json_decref releases only, so a
 * store freeing a value would not be ordered after a reader's last use of
 * it (harmless on x86, not promised by C11; ThreadSanitizer reports it).
 * Readers' own json_decref stays jansson's (see docs/near-cache.md). */
static void shared_decref(json_t *v) {
  if (v && __atomic_load_n(&v->refcount, __ATOMIC_RELAXED) != (size_t)-1 &&
      __atomic_sub_fetch(&v->refcount, 1, __ATOMIC_ACQ_REL) == 0)
    json_delete(v);
}

void miscache__near_entry_remove(miscache__near_t *s, near_entry_t **link) {
  near_entry_t *e = *link;
  *link = e->hnext;
  lru_unlink(e);
  s->entries--;
  s->bytes -= e->bytes;
  if (e->view_of) e->view_of->free_view(e->view);
  shared_decref(e->v);
  free(e);
}

/* Every entry of that key name, in every db. */
size_t miscache__near_evict_name(miscache__near_t *s, const char *k,
                                 size_t len, uint64_t h) {
  size_t n = 0;
  near_entry_t **link = &s->buckets[h & (s->nbuckets - 1)];
  while (*link) {
    near_entry_t *e = *link;
    if (e->hash == h && e->klen == len && memcmp(e->key, k, len) == 0) {
      miscache__near_entry_remove(s, link);
      n++;
    } else {
      link = &e->hnext;
    }
  }
  s->stripes[h % STRIPES]++;
  return n;
}

void miscache__near_flush_locked(miscache__near_t *s) {
  for (size_t b = 0; b < s->nbuckets; b++)
    while (s->buckets[b]) miscache__near_entry_remove(s, &s->buckets[b]);
  s->epoch++;
  s->st.flushes++;
}

static near_entry_t **find(miscache__near_t *s, int db, const char *k, size_t len,
                      uint64_t h) {
  near_entry_t **link = &s->buckets[h & (s->nbuckets - 1)];
  while (*link) {
    near_entry_t *e = *link;
    if (e->hash == h && e->db == db && e->klen == len &&
        memcmp(e->key, k, len) == 0)
      return link;
    link = &e->hnext;
  }
  return NULL;
}

/* The link that points at e (e is in the table). */
static near_entry_t **link_of(miscache__near_t *s, near_entry_t *e) {
  near_entry_t **link = &s->buckets[e->hash & (s->nbuckets - 1)];
  while (*link != e)
    link = &(*link)->hnext;
  return link;
}

/* ---- reads and writes
 * -------------------------------------------------------- */

/* The store for this key, or NULL (off, another family, a forked child). */
static miscache__near_t *store_for(miscache_t *mc, const char *full,
                                   size_t len) {
  miscache__near_t *s = mc->near;
  if (!s || s->gen != miscache__fork_gen()) return NULL;
  for (size_t i = 0; i < s->nprefixes; i++) {
    const near_prefix_t *p = &s->prefixes[i];
    if (p->exact ? len == p->len && memcmp(full, p->s, len) == 0
                 : len > p->len && memcmp(full, p->s, p->len) == 0)
      return s;
  }
  return NULL;
}

/* Under s->mu: the unexpired entry of full while the store serves, moved
 * to the LRU front; an expired one is dropped (an eviction). */
static inline near_entry_t *live_entry(miscache__near_t *s, int db,
                                       const char *full, size_t len, uint64_t h,
                                       int64_t now) {
  near_entry_t **link =
      s->up && now < s->confirmed_until ? find(s, db, full, len, h) : NULL;
  if (!link) return NULL;
  near_entry_t *e = *link;
  if (e->expires_ms <= now) {
    miscache__near_entry_remove(s, link);
    s->st.evictions++;
    return NULL;
  }
  if (s->lru.next != &e->l) { /* a hot key is at the front already */
    lru_unlink(e);
    lru_front(s, e);
  }
  return e;
}

json_t *miscache__near_get(miscache_t *mc, miscache_db_t db, const char *full,
                           size_t len, miscache__near_ticket_t *t,
                           int64_t *pttl) {
  t->use = false;
  miscache__near_t *s = store_for(mc, full, len);
  if (!s) return NULL;
  uint64_t h = miscache__near_hash(full, len);
  int64_t now = miscache__mono_ms();
  json_t *v = NULL;
  pthread_mutex_lock(&s->mu);
  bool serving = s->up && now < s->confirmed_until;
  near_entry_t *e = live_entry(s, (int)db, full, len, h, now);
  if (e) {
    v = json_incref(e->v);
    if (pttl)
      *pttl = e->expires_ms == INT64_MAX ? -1 : e->expires_ms - now;
    s->st.hits++;
  } else {
    s->st.misses++;
    t->use = serving;
    t->taken_ms = now; /* the GET goes out right after this */
    t->hash = h;
    t->epoch = s->epoch;
    t->stripe = s->stripes[h % STRIPES];
  }
  pthread_mutex_unlock(&s->mu);
  if (v && s->copy) {
    json_t *c = json_deep_copy(v);
    json_decref(v);
    v = c; /* NULL when out of memory: read from Redis */
  }
  return v;
}

int miscache__near_read_view(miscache_t *mc, miscache_db_t db, int family,
                             const char *full, size_t len,
                             const miscache__near_view_t *vw, void *ud) {
  miscache__near_t *s = mc->near;
  if (!s || s->gen != miscache__fork_gen() ||
      !((s->families >> family) & 1u) || (vw->hands_out && s->copy))
    return 0;
  uint64_t h = miscache__near_hash(full, len);
  int64_t now = miscache__mono_ms();
  int answered = 0;
  pthread_mutex_lock(&s->mu);
  near_entry_t *e = live_entry(s, (int)db, full, len, h, now);
  if (e && !e->view_of) {
    void *view = NULL;
    if (vw->make(e->v, &view) == MISCACHE_OK) {
      e->view_of = vw;
      e->view = view;
    }
  }
  if (e && e->view_of == vw) {
    vw->read(e->view, ud);
    s->st.hits++;
    answered = 1;
  }
  pthread_mutex_unlock(&s->mu);
  return answered;
}

void miscache__near_put(miscache_t *mc, miscache_db_t db, const char *full,
                        size_t len, json_t *v, size_t vlen, int64_t pttl,
                        const miscache__near_ticket_t *t) {
  miscache__near_t *s = mc->near;
  if (!t->use || !v || pttl == -2 || pttl == 0) return;
  size_t bytes = len + vlen;
  if (bytes > s->max_bytes / 4) return; /* one value would crowd out the rest */
  json_t *keep = s->copy ? json_deep_copy(v) : json_incref(v);
  near_entry_t *e = keep ? malloc(sizeof *e + len + 1) : NULL;
  if (!e) {
    json_decref(keep);
    return;
  }
  e->hash = t->hash;
  e->db = (int)db;
  e->klen = len;
  e->bytes = bytes;
  e->v = keep;
  e->view_of = NULL;
  e->view = NULL;
  /* the PTTL counts from when the server answered, which is some time
   * after the ticket: counting from the ticket never outlives the key */
  e->expires_ms = pttl > 0 ? t->taken_ms + pttl : INT64_MAX;
  memcpy(e->key, full, len);
  e->key[len] = 0;
  /* behind Sentinel the value must come from the master the link is
   * subscribed to: during a failover the two can differ for a moment */
  const char *from =
      s->sentinel ? miscache__disp_master_name(mc->disp) : NULL;
  pthread_mutex_lock(&s->mu);
  if (!s->up || s->epoch != t->epoch ||
      s->stripes[t->hash % STRIPES] != t->stripe ||
      (from && strcmp(from, s->links[0]->master) != 0)) {
    /* invalidated (or the connection lost) since the GET was sent */
    pthread_mutex_unlock(&s->mu);
    json_decref(keep);
    free(e);
    return;
  }
  near_entry_t **old = find(s, (int)db, full, len, t->hash);
  if (old) miscache__near_entry_remove(s, old);
  near_entry_t **head = &s->buckets[t->hash & (s->nbuckets - 1)];
  e->hnext = *head;
  *head = e;
  lru_front(s, e);
  s->entries++;
  s->bytes += bytes;
  while (s->entries > s->max_entries || s->bytes > s->max_bytes) {
    miscache__near_entry_remove(s, link_of(s, (near_entry_t *)s->lru.prev));
    s->st.evictions++;
  }
  pthread_mutex_unlock(&s->mu);
}

void miscache__near_evict(miscache_t *mc, const char *full, size_t len) {
  miscache__near_t *s = store_for(mc, full, len);
  if (!s) return;
  uint64_t h = miscache__near_hash(full, len);
  pthread_mutex_lock(&s->mu);
  s->st.local_evictions += miscache__near_evict_name(s, full, len, h);
  pthread_mutex_unlock(&s->mu);
}

void miscache__near_evict_pattern(miscache_t *mc, const char *full_pattern) {
  miscache__near_t *s = mc->near;
  if (!s || s->gen != miscache__fork_gen()) return;
  pthread_mutex_lock(&s->mu);
  for (size_t b = 0; b < s->nbuckets; b++) {
    near_entry_t **link = &s->buckets[b];
    while (*link) {
      if (miscache__glob_match(full_pattern, (*link)->key)) {
        miscache__near_entry_remove(s, link);
        s->st.local_evictions++;
      } else {
        link = &(*link)->hnext;
      }
    }
  }
  s->epoch++; /* a read of a matching key in flight must not store */
  pthread_mutex_unlock(&s->mu);
}

void miscache__near_flush_local(miscache_t *mc) {
  miscache__near_t *s = mc->near;
  if (!s || s->gen != miscache__fork_gen()) return;
  pthread_mutex_lock(&s->mu);
  miscache__near_flush_locked(s);
  pthread_mutex_unlock(&s->mu);
}

miscache_status_t miscache_near_stats(miscache_t *mc, miscache_near_stats_t *out,
                                      size_t size) {
  if (!mc || !out) return MISCACHE_ERR_INVALID;
  miscache_near_stats_t v = {0};
  miscache__near_t *s = mc->near;
  if (s && s->gen == miscache__fork_gen()) {
    pthread_mutex_lock(&s->mu);
    v = s->st;
    v.entries = s->entries;
    v.bytes = s->bytes;
    v.connected = s->up && miscache__mono_ms() < s->confirmed_until;
    v.links = (uint32_t)s->nlinks;
    pthread_mutex_unlock(&s->mu);
  }
  memcpy(out, &v, size < sizeof v ? size : sizeof v);
  return MISCACHE_OK;
}

size_t miscache_near_prometheus(const miscache_near_stats_t *s, char *buf,
                                size_t len) {
  if (!s) {
    if (buf && len) buf[0] = 0;
    return 0;
  }
  static const char fmt[] =
      "# HELP miscache_near_reads_total Reads of near-cached families.\n"
      "# TYPE miscache_near_reads_total counter\n"
      "miscache_near_reads_total{result=\"hit\"} %llu\n"
      "miscache_near_reads_total{result=\"miss\"} %llu\n"
      "# HELP miscache_near_evictions_total Entries dropped for space or TTL.\n"
      "# TYPE miscache_near_evictions_total counter\n"
      "miscache_near_evictions_total %llu\n"
      "# HELP miscache_near_invalidations_total Keys named by the server's "
      "invalidation messages.\n"
      "# TYPE miscache_near_invalidations_total counter\n"
      "miscache_near_invalidations_total %llu\n"
      "# HELP miscache_near_local_evictions_total Entries dropped by this "
      "process's own writes.\n"
      "# TYPE miscache_near_local_evictions_total counter\n"
      "miscache_near_local_evictions_total %llu\n"
      "# HELP miscache_near_flushes_total Whole near cache dropped.\n"
      "# TYPE miscache_near_flushes_total counter\n"
      "miscache_near_flushes_total %llu\n"
      "# HELP miscache_near_reconnects_total Invalidation connection "
      "established.\n"
      "# TYPE miscache_near_reconnects_total counter\n"
      "miscache_near_reconnects_total %llu\n"
      "# HELP miscache_near_entries Entries in the near cache.\n"
      "# TYPE miscache_near_entries gauge\n"
      "miscache_near_entries %llu\n"
      "# HELP miscache_near_bytes JSON text and key bytes in the near cache.\n"
      "# TYPE miscache_near_bytes gauge\n"
      "miscache_near_bytes %llu\n"
      "# HELP miscache_near_connected 1 while entries may be served.\n"
      "# TYPE miscache_near_connected gauge\n"
      "miscache_near_connected %d\n";
  /* members added after 0.3.0's first release (flush_requests) are not
   * read here: a caller built against the shorter struct passes it */
  int n = snprintf(
      buf, buf ? len : 0, fmt, (unsigned long long)s->hits,
      (unsigned long long)s->misses, (unsigned long long)s->evictions,
      (unsigned long long)s->invalidations,
      (unsigned long long)s->local_evictions, (unsigned long long)s->flushes,
      (unsigned long long)s->reconnects, (unsigned long long)s->entries,
      (unsigned long long)s->bytes, s->connected ? 1 : 0);
  return n < 0 ? 0 : (size_t)n;
}

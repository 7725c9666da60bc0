/* The near cache's store and the state it shares with its threads: the
 * store itself (near_store.c: hash table, LRU, stripes, tickets; no I/O)
 * and the invalidation links that keep it correct (near.c). Each field
 * says which lock guards it. core's own header. */
#ifndef MISCACHE_NEAR_STORE_H
#define MISCACHE_NEAR_STORE_H

#include <stdatomic.h>
#include <string.h>

#include "core/core.h"

#define STRIPES 1024u
#define MAX_PREFIXES MISCACHE_KEY_FAMILY_COUNT

typedef struct lru {
  struct lru *prev, *next; /* most recent first */
} near_lru_t;

typedef struct entry {
  near_lru_t l;                  /* first: an near_lru_t * is its entry */
  struct entry *hnext;      /* hash chain */
  uint64_t hash;
  int db;
  size_t klen;
  size_t bytes;
  int64_t expires_ms; /* CLOCK_MONOTONIC; INT64_MAX: no TTL */
  json_t *v;          /* never changed while cached */
  /* A reader's form of v, built on the first hit that asks for it
   * (miscache__near_read_view), freed with the entry. */
  const miscache__near_view_t *view_of;
  void *view;
  char key[];         /* the namespaced key */
} near_entry_t;

typedef struct prefix {
  char *s; /* namespaced family prefix */
  size_t len;
  bool exact; /* a family without ids: the key is the prefix itself */
} near_prefix_t;

/* One invalidation connection and its thread: the server's (standalone,
 * Sentinel's master) or one master's of a cluster. */
typedef struct link {
  miscache__near_t *s;
  miscache_options_t o;        /* the endpoint (one master of a cluster) */
  miscache__dispatcher_t *sub; /* on o: the subscriber connection */
  char err[MISCACHE_ERRMSG_SIZE]; /* sub's messages */
  pthread_t thread;
  bool started;
  atomic_int stop;
  /* under s->mu */
  bool up;         /* tracking and subscription confirmed */
  int64_t until;   /* CLOCK_MONOTONIC ms: confirmed until then */
  char master[96]; /* the master it is on, when it came up */
} near_link_t;

struct miscache__near {
  pthread_mutex_t mu;
  miscache__fork_guard_t guard; /* mu across fork() */
  unsigned refs;
  unsigned gen; /* fork generation it was made in */
  /* under mu */
  near_entry_t **buckets;
  size_t nbuckets; /* a power of two */
  near_lru_t lru;       /* list head */
  size_t entries, bytes;
  uint64_t epoch;
  bool up;                 /* every link (and a cluster's map) confirmed */
  int64_t confirmed_until; /* CLOCK_MONOTONIC ms: serve until then (the
                              earliest of the links' and the map's) */
  near_link_t **links;          /* replaced by the mapper thread only */
  size_t nlinks;
  bool map_ok;       /* cluster: the masters are those of the links */
  int64_t map_until; /* cluster: the map confirmed until then */
  uint32_t stripes[STRIPES];
  miscache_near_stats_t st;
  /* fixed after creation */
  size_t max_entries, max_bytes;
  int ping_ms;
  bool copy;
  near_prefix_t prefixes[MAX_PREFIXES];
  size_t nprefixes;
  uint64_t families; /* bit (1 << f) per cached family */
  bool cluster;                 /* one link per master, and the mapper thread */
  bool sentinel;                /* the link's master must be the reader's */
  miscache_options_t link_opts; /* for the links' dispatchers */
  /* cluster: the mapper, a dispatcher that reads the slot map */
  miscache__dispatcher_t *mapper;
  char map_err[MISCACHE_ERRMSG_SIZE]; /* the mapper's messages */
  pthread_t map_thread;
  bool map_started;
  atomic_int stop;
};

static inline uint64_t miscache__near_hash(const char *k, size_t len) {
  /* eight bytes a step, each mixed by a multiply and a shift (FNV-1a's
   * byte a step cost ~4 instructions a byte, ~130 of a near hit) */
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)len;
  for (; len >= 8; k += 8, len -= 8) {
    uint64_t w;
    memcpy(&w, k, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  for (size_t i = 0; i < len; i++) w |= (uint64_t)(unsigned char)k[i] << (8 * i);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 29);
}


/* The store's part for the threads (caller holds s->mu): drop an entry;
 * every entry of a key name, in every db (its stripe counted: a read in
 * flight does not store); everything (a new epoch). */
void miscache__near_entry_remove(miscache__near_t *s, near_entry_t **link);
size_t miscache__near_evict_name(miscache__near_t *s, const char *k,
                                 size_t len, uint64_t h);
void miscache__near_flush_locked(miscache__near_t *s);

#endif /* MISCACHE_NEAR_STORE_H */

/*
 * libmiscache — monitoring: server figures per logical db, and the batch and
 * gift cache health of a company (as in docs/strategy.md). Client-side
 * hit/miss/error counters per db and per key category are in client.h.
 * Monitoring reads are not counted as cache reads.
 * Thread rule: one thread at a time per handle.
 */
#ifndef MISCACHE_MONITOR_H
#define MISCACHE_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* On a Redis Cluster (db 0 only): keys[] are counted by a SCAN of every
 * master, each key under the logical db of its key family (the keyspace
 * table; keys of no family under cache), a full pass over the keyspace;
 * expires[] is -1 (unknown); memory, hits and misses are summed over the
 * masters. */
typedef struct miscache_server_info {
  int64_t keys[MISCACHE_DB_COUNT];    /* keys per logical db (INFO keyspace) */
  int64_t expires[MISCACHE_DB_COUNT]; /* keys with a TTL per logical db */
  int64_t used_memory;       /* bytes, whole server: Redis keeps no per-db figure */
  int64_t maxmemory;         /* 0 = no limit */
  char maxmemory_policy[32]; /* e.g. "noeviction", "allkeys-lru" */
  int64_t keyspace_hits;
  int64_t keyspace_misses;
  double hit_rate; /* hits / (hits + misses), 0 when both are 0 */
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_server_info_t;

/* One INFO round trip. OK, transport statuses, ERR_REPLY. */
MISCACHE_EXPORT miscache_status_t
miscache_server_info(miscache_t *mc, miscache_server_info_t *out);

/* The handle's connections: how often it connected, how outages went. All
 * counters since miscache_open(); nodes_down is the state now. */
typedef struct miscache_link_stats {
  uint64_t connects;         /* connect attempts (each probe counts) */
  uint64_t connect_failures; /* attempts that failed (refused, timeout,
                                TLS, AUTH) */
  uint64_t breaker_opens;    /* a node went down: first failed connect */
  uint64_t breaker_closes;   /* a down node answered again */
  uint64_t fast_failures;    /* calls refused at once inside a backoff
                                window, without a system call */
  uint64_t resends;          /* idempotent requests sent again after an
                                old connection was found lost */
  uint64_t failovers;        /* Sentinel: the master moved to another
                                address */
  uint64_t master_lookups;   /* Sentinel: get-master-addr-by-name asked;
                                Cluster: slot map (CLUSTER SLOTS) loads */
  uint32_t nodes_down;       /* nodes inside a backoff window now */
  char transport[8];         /* "tcp", "unix" or "tls" */
  char master[64];           /* address in use now ("" before the first
                                connect), e.g. "10.0.0.5:6379";
                                "cluster" on a Redis Cluster */
  uint64_t redirects;        /* Cluster: MOVED and ASK followed */
  uint64_t cluster_retries;  /* Cluster: TRYAGAIN / CLUSTERDOWN retried */
  uint64_t reserved_[4];     /* room to grow without an ABI break; keep zero */
} miscache_link_stats_t;

/* Fill *out with min(size, sizeof *out) bytes of the handle's link figures
 * (pass sizeof *out: a newer library then adds fields after yours). No I/O.
 * ERR_INVALID for NULL. */
MISCACHE_EXPORT miscache_status_t miscache_link_stats(miscache_t *mc,
                                                      miscache_link_stats_t *out,
                                                      size_t size);

/* The near cache of the handle (shared by a pool's handles: the figures
 * are the pool's). All zero when it is off. */
typedef struct miscache_near_stats {
  uint64_t hits;          /* reads answered from the process */
  uint64_t misses;        /* reads of near-cached families sent to Redis */
  uint64_t evictions;     /* entries dropped for space (LRU) or expiry */
  uint64_t invalidations; /* keys named by the server's invalidation
                             messages (received) */
  uint64_t flushes;       /* the whole cache dropped: connection lost or
                             unconfirmed, FLUSHDB/FLUSHALL */
  uint64_t entries;       /* now */
  uint64_t bytes;         /* now (JSON text + key) */
  uint64_t reconnects;    /* invalidation connection (re)established */
  bool enabled;
  bool connected;         /* tracking confirmed: entries may be served */
  char error[160];        /* why the invalidation connection last failed
                             ("" while confirmed), e.g. a server refusing
                             CLIENT TRACKING or an ACL without SUBSCRIBE */
  uint64_t local_evictions; /* entries dropped by this process's own
                               writes (read your writes) */
  uint32_t links;           /* invalidation connections: 1, or one per
                               master on a Redis Cluster */
  uint64_t flush_requests;  /* miscache_near_flush_all() messages received
                               (each also counts in flushes) */
  uint64_t reserved_[4];    /* room to grow without an ABI break; keep zero */
} miscache_near_stats_t;

/* Fill *out with min(size, sizeof *out) bytes (pass sizeof *out). No I/O.
 * ERR_INVALID for NULL. */
MISCACHE_EXPORT miscache_status_t miscache_near_stats(miscache_t *mc,
                                                      miscache_near_stats_t *out,
                                                      size_t size);

/* The figures of s in the Prometheus text format (miscache_near_*
 * metrics, with HELP and TYPE lines) into buf (len bytes, always
 * terminated when len > 0). Returns the length the whole text needs, like
 * snprintf: a result >= len means it was cut. */
MISCACHE_EXPORT size_t miscache_near_prometheus(const miscache_near_stats_t *s,
                                                char *buf, size_t len);

/* The channel every near cache's invalidation connection also subscribes
 * to; a message on it makes each drop its whole store. */
#define MISCACHE_NEAR_FLUSH_CHANNEL "miscache:near-flush"

/* Makes every near cache connected to this server (every process, every
 * namespace; on a Redis Cluster, every node's subscribers) drop its whole
 * store, and this handle's own at once: after SWAPDB (which sends no
 * invalidation: Redis 7.0 tells only WATCHed keys), a restore, or any bulk
 * change made around tracking. Within two ping intervals of the call's
 * return no near hit serves a value read before it. *receivers (optional):
 * subscribers the server handed the message to (PUBLISH's count; on a
 * cluster, those of the node asked). OK, transport statuses. Also the
 * miscache tool's `near-flush`. Added in 0.3.0. */
MISCACHE_EXPORT miscache_status_t miscache_near_flush_all(miscache_t *mc,
                                                          uint64_t *receivers);

typedef enum miscache_health {
  MISCACHE_HEALTH_HEALTHY = 0,
  MISCACHE_HEALTH_PARTIAL = 1,
  MISCACHE_HEALTH_MISSING = 2
} miscache_health_t;

/* "healthy", "partial", "missing". */
MISCACHE_EXPORT const char *miscache_health_name(miscache_health_t h);

typedef struct miscache_company_health {
  /* batch: healthy with config and status cached, partial with one,
   * missing with neither */
  bool config_cached;
  bool status_cached;
  char last_batch_time[32]; /* status.start_time, "" if unknown */
  char last_batch_status[16];
  bool batch_locked;
  /* status says "running" but the run's lock is gone or its heartbeat is
   * older than the renewal period: the run died (batch is then partial) */
  bool batch_stale;
  miscache_health_t batch;
  /* gift: healthy when the rules are cached, else missing */
  bool rules_cached;
  bool analytics_cached; /* for the day asked */
  bool auto_classify;
  uint64_t keyword_count;
  miscache_health_t gift;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_company_health_t;

/* Health of company's caches; yyyymmdd is the day whose gift analytics to
 * look for (today). The worse of the two is the return value's meaning for
 * a CLI: see miscache_company_health_overall(). */
MISCACHE_EXPORT miscache_status_t
miscache_company_health(miscache_t *mc, int64_t company, const char *yyyymmdd,
                        miscache_company_health_t *out);
/* The worse of batch and gift. */
MISCACHE_EXPORT miscache_health_t
miscache_company_health_overall(const miscache_company_health_t *h);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_MONITOR_H */

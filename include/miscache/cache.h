/*
 * libmiscache — generic JSON operations, cache-aside and invalidation.
 *
 * Keys are logical keys (normally made with miscache_key()); the handle puts
 * its namespace in front. Values are JSON (jansson), stored compact, UTF-8.
 * Ownership: json_t arguments are borrowed; json_t results are new
 * references the caller must json_decref().
 * Thread rule: one thread at a time per handle (see client.h).
 * Transport failures return MISCACHE_ERR_UNAVAILABLE; the next call
 * reconnects by itself.
 */
#ifndef MISCACHE_CACHE_H
#define MISCACHE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read a JSON value. OK: *out is a new reference (an empty object or array
 * is a hit). MISS: no such key, *out NULL. ERR_DECODE: the stored value is
 * not valid JSON, or the key holds a non-string type; counted as a miss,
 * *out NULL. Also ERR_INVALID, ERR_UNAVAILABLE, ERR_AUTH, ERR_SERVER. */
MISCACHE_EXPORT miscache_status_t miscache_get(miscache_t *mc,
                                               miscache_db_t db,
                                               const char *key, json_t **out);

/* Write a JSON value (any JSON type) with the TTL of cls (plus jitter if
 * configured). ERR_ENCODE if jansson cannot encode it. */
MISCACHE_EXPORT miscache_status_t miscache_set(miscache_t *mc,
                                               miscache_db_t db,
                                               const char *key,
                                               const json_t *value,
                                               miscache_ttl_class_t cls);
/* Write with an explicit TTL in milliseconds (> 0), no jitter. */
MISCACHE_EXPORT miscache_status_t miscache_set_ttl_ms(miscache_t *mc,
                                                      miscache_db_t db,
                                                      const char *key,
                                                      const json_t *value,
                                                      int64_t ttl_ms);

/* Delete a key (UNLINK). *deleted (optional) is true if it existed. */
MISCACHE_EXPORT miscache_status_t miscache_delete(miscache_t *mc,
                                                  miscache_db_t db,
                                                  const char *key,
                                                  bool *deleted);
/* *exists = whether the key exists. */
MISCACHE_EXPORT miscache_status_t miscache_exists(miscache_t *mc,
                                                  miscache_db_t db,
                                                  const char *key,
                                                  bool *exists);
/* Remaining TTL in ms (PTTL): -2 no key, -1 no TTL. */
MISCACHE_EXPORT miscache_status_t miscache_ttl_ms(miscache_t *mc,
                                                  miscache_db_t db,
                                                  const char *key,
                                                  int64_t *ttl_ms);

/* Read n keys in one round trip. values[i] gets a new reference or NULL;
 * statuses[i] (optional array) gets OK, MISS or ERR_DECODE per key.
 * The call returns OK when the round trip worked, whatever each key was;
 * on failure every values[i] is NULL. */
MISCACHE_EXPORT miscache_status_t miscache_mget(miscache_t *mc,
                                                miscache_db_t db, size_t n,
                                                const char *const keys[],
                                                json_t *values[],
                                                miscache_status_t statuses[]);
/* Write n values, each with the TTL of cls, in one pipeline (one round
 * trip). OK if every write succeeded, else the first failure. */
MISCACHE_EXPORT miscache_status_t miscache_mset(miscache_t *mc,
                                                miscache_db_t db, size_t n,
                                                const char *const keys[],
                                                const json_t *const values[],
                                                miscache_ttl_class_t cls);

/* ------------------------------------------------------------------------
 * Cache-aside
 * ---------------------------------------------------------------------- */

/* What a loader is asked for. Every *_get_or_load_ex call (and
 * miscache_refresh, miscache_batch_run_ex) hands its loader one of these,
 * borrowed for the call. The ids are the call's own arguments, never parsed
 * back out of a key. Added in 0.4.0. */
typedef struct miscache_load_req {
  miscache_db_t db;      /* logical db of the key */
  const char *key;       /* logical key (no namespace) */
  int family;            /* a miscache_key_family_id_t (keys.h), or -1 when
                            the call names no family (miscache_get_or_load_ex,
                            miscache_refresh) */
  int64_t company;       /* the call's company id, 0 if it has none */
  int64_t id;            /* the call's other id (user, category), 0 if none */
  const char *date;      /* the call's date (YYYYMMDD), NULL if none */
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_load_req_t;

/* The one loader shape (0.4.0). Return OK with *out a new reference,
 * MISCACHE_MISS if the record does not exist (nothing is cached), or any
 * other status to report failure; errbuf (errlen bytes, starts empty) may
 * say why, and its text ends up in miscache_errmsg(). The typed calls
 * (batch config, gift rules) take the value as the JSON the library stores
 * (the same the Python side writes) and decode it as they decode a cached
 * value; a value they cannot use is ERR_LOADER, never cached. */
typedef miscache_status_t (*miscache_load_fn)(void *userdata,
                                              const miscache_load_req_t *req,
                                              json_t **out, char *errbuf,
                                              size_t errlen);

/* The loader of 0.1.0-0.3.0, still taken by the calls without _ex: the
 * same contract with only the logical key and no message. */
typedef miscache_status_t (*miscache_loader_fn)(void *userdata, const char *key,
                                                json_t **out);

typedef enum miscache_source {
  MISCACHE_SOURCE_NONE = 0,    /* no value returned */
  MISCACHE_SOURCE_CACHE = 1,   /* served from the cache */
  MISCACHE_SOURCE_LOADED = 2,  /* loaded and stored in the cache */
  MISCACHE_SOURCE_UNCACHED = 3 /* loaded, but the cache was unreachable or the
                                  store failed: not cached (fail-open) */
} miscache_source_t;

/* Cached value, else loader → store with the class TTL → return.
 * A stored value that does not decode is treated as a miss and replaced.
 * When the server fails (down, auth, error), the loader is still called and
 * its value returned with MISCACHE_SOURCE_UNCACHED; miscache_errmsg() keeps
 * the cache error. Returns OK (*out new reference), MISS (loader found
 * nothing), ERR_LOADER (loader failed; its status is in the message),
 * ERR_INVALID, ERR_NOMEM. source (optional) tells where the value came from. */
MISCACHE_EXPORT miscache_status_t
miscache_get_or_load(miscache_t *mc, miscache_db_t db, const char *key,
                     miscache_ttl_class_t cls, miscache_loader_fn loader,
                     void *userdata, json_t **out, miscache_source_t *source);
/* The same with the loader shape of 0.4.0 (req->family -1). Added in
 * 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_get_or_load_ex(
    miscache_t *mc, miscache_db_t db, const char *key, miscache_ttl_class_t cls,
    miscache_load_fn load, void *userdata, json_t **out,
    miscache_source_t *source);

/* ------------------------------------------------------------------------
 * Invalidation
 * ---------------------------------------------------------------------- */

/* Delete every key of db matching a SCAN MATCH pattern (see
 * miscache_pattern_build), using SCAN with the configured COUNT and UNLINK
 * in pipelined batches; on a Redis Cluster every master at once (each step
 * is one batch to all masters). Never KEYS. *deleted (optional) gets the
 * number of keys removed (counted by the server, so each key once). An
 * empty pattern is ERR_KEY. On a failure midway *deleted holds what was
 * removed so far. */
MISCACHE_EXPORT miscache_status_t miscache_invalidate(miscache_t *mc,
                                                      miscache_db_t db,
                                                      const char *pattern,
                                                      uint64_t *deleted);

/* Visit every key of db matching pattern (SCAN), without deleting. The key
 * passed to fn is the logical key (namespace removed), borrowed for the
 * call. fn returns 0 to go on, non-zero to stop early. *count (optional)
 * gets the number of keys visited (SCAN may report a key twice). */
typedef int (*miscache_scan_fn)(void *userdata, const char *key, size_t len);
MISCACHE_EXPORT miscache_status_t miscache_scan(miscache_t *mc,
                                                miscache_db_t db,
                                                const char *pattern,
                                                miscache_scan_fn fn,
                                                void *userdata,
                                                uint64_t *count);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_CACHE_H */

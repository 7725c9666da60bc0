/* The operations layer (src/ops): what the domain files are built of.
 * replay.c is its door to the handle: miscache__run replays pending
 * invalidations once, then sends. Cache-aside, multi-key pages,
 * invalidation by pattern, stampede protection, typed payload access,
 * scripts and locks. Not installed. */
#ifndef MISCACHE_OPS_H
#define MISCACHE_OPS_H

#include "base/payload.h"
#include "core/core.h"
#include "miscache/async.h"

/* ---- the door (replay.c) ------------------------------------------------- */
/* Replays pending invalidations, if any and not within the retry pause
 * after a failed one (mc->err kept as it was). */
void miscache__replay_pending(miscache_t *mc);
/* miscache__send after the replay (none with SAME_CONN: inside a
 * transaction). */
miscache_status_t miscache__run(miscache_t *mc, int db, size_t n,
                                const miscache__cmd_t *cmds,
                                miscache__reply_t **replies, unsigned flags);
/* miscache__exec_key after the replay. */
miscache_status_t miscache__run_key(miscache_t *mc, miscache_db_t db,
                                    const char *key,
                                    const miscache__cmd_t *cmd,
                                    miscache__reply_t **reply, unsigned flags);

/* ---- erase.c ------------------------------------------------------------- */
/* The delete / pattern invalidation themselves, without pending bookkeeping. */
/* One command "verb key" (EXISTS, PTTL, UNLINK) whose reply must be an
 * integer (*result); writes: the key leaves the near cache. */
miscache_status_t miscache__key_int_now(miscache_t *mc, miscache_db_t db,
                                        const char *verb, const char *key,
                                        bool writes, long long *result);
miscache_status_t miscache__delete_now(miscache_t *mc, miscache_db_t db,
                                       const char *key, bool *deleted);
miscache_status_t miscache__invalidate_now(miscache_t *mc, miscache_db_t db,
                                           const char *pattern,
                                           uint64_t *deleted);
/* miscache_scan without the replay. */
miscache_status_t miscache__scan_now(miscache_t *mc, miscache_db_t db,
                                     const char *pattern, miscache_scan_fn fn,
                                     void *userdata, uint64_t *count);

/* A typed read's target: a stored value simple enough is decoded straight
 * from its bytes into out (payload.h's fast pair), without a tree; done
 * says it was. */
struct miscache__payload;
typedef struct miscache__direct {
  const struct miscache__payload *d;
  void *out;
  bool done;
} miscache__direct_t;
/* The SETs of one round trip: n logical keys, their values as trees
 * (vals) or as JSON text (texts, lens), PX of class cls with jitter per
 * key; st (may be NULL) gets the first failed SET's status. */
typedef struct miscache__sets {
  size_t n;
  const char *const *keys;
  const json_t *const *vals;
  const char *const *texts;
  const size_t *lens;
  miscache_ttl_class_t cls;
  miscache_status_t *st;
} miscache__sets_t;
/* The MGET of the same round trip: n logical keys; values and statuses as
 * miscache_mget; each found value offered first to direct[i] (may be
 * NULL: its struct filled straight from the bytes, values[i] stays NULL,
 * done set). */
typedef struct miscache__gets {
  size_t n;
  const char *const *keys;
  json_t **values;
  miscache_status_t *statuses;
  miscache__direct_t *direct;
} miscache__gets_t;
/* The SETs then the MGET (either may be NULL or empty) in one round trip.
 * Returns the round trip's status (ERR_INVALID, ERR_NOMEM, ERR_ENCODE
 * before sending). Keys and values not checked for NULL here. */
miscache_status_t miscache__mset_mget(miscache_t *mc, miscache_db_t db,
                                      const miscache__sets_t *sets,
                                      const miscache__gets_t *gets);
/* The same in three steps, for a caller that sends the commands itself
 * (the async page of gift.c): build the ncmd commands (the SETs, then the
 * MGET; they point into mm), take their replies rs[0..ncmd) into sets and
 * gets (the MGET's status as miscache__mset_mget's), free mm. Build
 * leaves nothing to free when it fails. */
typedef struct miscache__keyset { /* namespaced copies of n keys */
  const char **ptrs;
  size_t *lens;
  char *store;
} miscache__keyset_t;
typedef struct miscache__mm {
  size_t ncmd, nset, nget;
  miscache__cmd_t *cmds;
  miscache__keyset_t ss, gs; /* the SETs' keys, the MGET's (argv) */
  const char **argv;
  size_t *lens;
  char **vals;
  char (*ttls)[24];
} miscache__mm_t;
miscache_status_t miscache__mm_build(miscache_t *mc, const miscache__sets_t *sets,
                                     const miscache__gets_t *gets,
                                     miscache__mm_t *mm);
miscache_status_t miscache__mm_take(miscache_t *mc, miscache_db_t db,
                                    const miscache__sets_t *sets,
                                    const miscache__gets_t *gets,
                                    miscache__reply_t *const *rs);
void miscache__mm_free(miscache__mm_t *mm);

/* A near-cache hit on fk, a key of family f (made by miscache__fullkey_int
 * or _fixed), in f's db, of category cat, answered by view vw (core.h) with
 * ud and counted as a hit: true. false: not answered (no near cache,
 * invalidations pending, early refresh on, not cached...): read the usual
 * way, which counts. */
bool miscache__near_view_get(miscache_t *mc, miscache_key_family_id_t f,
                             const miscache__fullkey_t *fk,
                             miscache_category_t cat,
                             const miscache__near_view_t *vw, void *ud);

/* miscache_get that counts no hit, miss or error (a lock's holder, a
 * cache-aside's second look): the one place that sets and restores the
 * handle's quiet flag for a read. */
miscache_status_t miscache__get_uncounted(miscache_t *mc, miscache_db_t db,
                                          const char *key, json_t **out);

/* SET key (logical) to JSON text val PX ttl_ms (> 0), as miscache_set does
 * (the near cache evicts it here at once). */
miscache_status_t miscache__set_text(miscache_t *mc, miscache_db_t db,
                                     const char *key, const char *val,
                                     size_t vlen, int64_t ttl_ms);
/* miscache_get_or_load with an explicit TTL: ms (> 0), or
 * MISCACHE__TTL_OF(cls) (core.h), resolved only if the loader's value is
 * stored. The same for the cache-aside calls below. */
miscache_status_t miscache__get_or_load_ms(miscache_t *mc, miscache_db_t db,
                                           const char *key, int64_t ttl_ms,
                                           miscache_load_fn load,
                                           void *userdata, json_t **out,
                                           miscache_source_t *source);
/* A loader of the old shape (miscache_loader_fn) as a miscache_load_fn:
 * give miscache__legacy_load with a miscache__legacy_t as its userdata. */
typedef struct miscache__legacy {
  miscache_loader_fn fn;
  void *userdata;
} miscache__legacy_t;
miscache_status_t miscache__legacy_load(void *ud,
                                        const miscache_load_req_t *req,
                                        json_t **out, char *errbuf,
                                        size_t errlen);

/* A GET's reply as a value (counted, message set): OK with *out a new
 * reference, MISS, ERR_DECODE (not JSON, WRONGTYPE), or the mapped status
 * of another reply. */
miscache_status_t miscache__value_from_reply(miscache_t *mc, miscache_db_t db,
                                            const char *key,
                                            const miscache__reply_t *r,
                                            json_t **out);

/* miscache_get of a typed payload into out (zeroed): straight from the
 * bytes when it can, else through the tree; a value that does not decode
 * into the struct is ERR_DECODE (counted as a miss). */
miscache_status_t miscache__get_payload(miscache_t *mc, miscache_db_t db,
                                        const char *key,
                                        const struct miscache__payload *d,
                                        void *out);

/* Decides whether a JSON value (cached or loaded) is usable: OK, or
 * ERR_DECODE with why filled. May keep a decoded form in ud. */
typedef miscache_status_t (*miscache__accept_fn)(void *ud, json_t *v,
                                                 char *why, size_t whylen);
/* One cache-aside read: key (logical) in db, ttl as for
 * miscache__get_or_load_ms, the loader (and what its request says besides
 * db and key: family, -1 for none, and the call's ids), and accept (NULL
 * takes any JSON). */
typedef struct miscache__aside {
  miscache_db_t db;
  const char *key;
  int64_t ttl;
  miscache_load_fn load;
  void *userdata;
  int family;
  int64_t company;
  int64_t id;
  const char *date;
  miscache__accept_fn accept;
  void *accept_ud;
} miscache__aside_t;
/* Cache-aside with one GET: a cached value accept() refuses is a miss (counted
 * as one miss and one error) that the loader replaces; the loader's value
 * must pass accept() too (else ERR_LOADER). */
miscache_status_t miscache__cache_aside(miscache_t *mc,
                                        const miscache__aside_t *a,
                                        json_t **out,
                                        miscache_source_t *source);
/* The same with a typed target (direct may be NULL): a cached value that
 * direct decodes is a hit with *out NULL and direct->done set. */
miscache_status_t miscache__cache_aside_direct(miscache_t *mc,
                                               const miscache__aside_t *a,
                                               miscache__direct_t *direct,
                                               json_t **out,
                                               miscache_source_t *source);

/* ---- stampede protection (stampede.c) ------------------------------------ */
typedef struct miscache__flight miscache__flight_t;
/* Join the in-process flight of (handle's namespace, db, key): *leader
 * true for the first caller (it loads, then miscache__flight_done), else a
 * follower (miscache__flight_wait). NULL with *leader true when out of
 * memory (load without a flight). */
miscache__flight_t *miscache__flight_join(miscache_t *mc, miscache_db_t db,
                                          const char *key, bool *leader);
/* How many flights have landed (miscache__flight_done) so far: a reader
 * that missed, then became a leader while this moved, looks at the cache
 * once more (the flight it missed may have stored the value). */
uint64_t miscache__flight_epoch(void);
/* The leader's value (copied for the followers; NULL: it failed) and
 * where it came from (a follower reports the same: UNCACHED when the
 * leader could not store it). */
void miscache__flight_done(miscache__flight_t *f, const json_t *value,
                           miscache_source_t source);
/* A follower waits at most wait_ms: a new copy of the value and its source,
 * or NULL (failed or timed out: load yourself). */
json_t *miscache__flight_wait(miscache__flight_t *f, int wait_ms,
                              miscache_source_t *source);
/* SET NX PX of a lease (logical key lease_key, value {"token": new
 * token}): *taken only on +OK (nil: held by another). Release: deleted
 * only while it still holds token (message kept as it was). */
miscache_status_t miscache__lease_key_take(miscache_t *mc, miscache_db_t db,
                                           const char *lease_key, int lease_ms,
                                           char token[33], bool *taken);
void miscache__lease_key_release(miscache_t *mc, miscache_db_t db,
                                 const char *lease_key, const char *token);
/* The same on "stampede:lease:<key>". */
miscache_status_t miscache__lease_take(miscache_t *mc, miscache_db_t db,
                                       const char *key, int lease_ms,
                                       char token[33], bool *taken);
void miscache__lease_release(miscache_t *mc, miscache_db_t db, const char *key,
                             const char *token);
/* XFetch: reload now? (remaining TTL below early_ms * -ln(random)) */
bool miscache__xfetch_due(miscache_t *mc, int64_t pttl_ms, int early_ms);

/* ---- scripts (scripts.c) and locks (lock.c) ------------------------------ */
extern const char miscache__lua_release[];
extern const char miscache__lua_release_sha[];
extern const char miscache__lua_extend[];
extern const char miscache__lua_extend_sha[];
/* scripts.c */
extern const char miscache__lua_fence_acquire[];
extern const char miscache__lua_fence_acquire_sha[];
extern const char miscache__lua_heartbeat[];
extern const char miscache__lua_heartbeat_sha[];
extern const char miscache__lua_fenced_set[];
extern const char miscache__lua_fenced_set_sha[];
extern const char miscache__lua_takeover[];
extern const char miscache__lua_takeover_sha[];

/* EVALSHA sha over nkeys logical keys (namespaced here) and nargs
 * arguments; EVAL with src on NOSCRIPT. *result gets the script's integer
 * reply. Transport and error-reply statuses as usual (message set). */
miscache_status_t miscache__eval(miscache_t *mc, miscache_db_t db,
                                 const char *src, const char *sha, int nkeys,
                                 const char *const *keys, int nargs,
                                 const char *const *args, unsigned flags,
                                 long long *result);
/* The same (at most 4 keys, 8 arguments) with the script's reply, whatever
 * its shape, in *out (the caller's); an error reply is a status (message
 * set) with *out NULL. */
miscache_status_t miscache__eval_reply(miscache_t *mc, miscache_db_t db,
                                       const char *src, const char *sha,
                                       int nkeys, const char *const *keys,
                                       int nargs, const char *const *args,
                                       unsigned flags, miscache__reply_t **out);

/* Fenced lock at key (lock.c): like miscache_lock_acquire, but the value
 * also holds host, pid, "fence" (INCR of fence_key, taken in the same
 * script) and "heartbeat_ms" (server time). With stale_token, takes over a
 * lock that still holds that token and whose heartbeat is older than
 * stale_ms (or that is gone). ERR_LOCKED when refused. */
miscache_status_t miscache__fenced_lock_acquire(
    miscache_t *mc, miscache_db_t db, const char *key, const char *fence_key,
    int64_t ttl_ms, const char *locked_by, const char *batch_id,
    const char *stale_token, int64_t stale_ms, miscache_lock_t **out);
/* Extend a fenced lock and stamp its heartbeat. OK / ERR_NOT_OWNER. */
miscache_status_t miscache__lock_heartbeat(miscache_t *mc,
                                           miscache_lock_t *lock,
                                           int64_t ttl_ms);
/* SET key value PX ttl_ms only while lock holds its token, or, with no
 * lock, while fence_key still equals the lock's fence. ERR_NOT_OWNER (and
 * nothing written) otherwise. Keys logical, all in db. */
miscache_status_t miscache__fenced_set(miscache_t *mc, miscache_db_t db,
                                       const miscache_lock_t *lock,
                                       const char *fence_key, const char *key,
                                       const char *value, int64_t ttl_ms);

/* ---- typed access shared by the domain files (typed.c) ---------------- */
/* Key "<prefix>:<company>:<YYYYMMDD>" of family f (buf of
 * MISCACHE_KEY_BUFSIZE) after checking the date (ERR_KEY if bad). */
miscache_status_t miscache__key_company_date(miscache_t *mc, char *buf,
                                             miscache_key_family_id_t f,
                                             int64_t company, const char *date);
/* Read key and decode it into a zeroed *out. A value of the wrong shape is
 * ERR_DECODE and counts as a miss, like invalid JSON. */
miscache_status_t miscache__typed_get(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d, void *out);
/* Encode *in and store it under key for ttl_ms. */
miscache_status_t miscache__typed_set(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d,
                                      const void *in, int64_t ttl_ms);
/* Changes one stored payload in place: called with the stored object (any
 * members another program added included), it changes what it must and
 * returns OK, or a status that aborts the update (nothing is written). */
typedef miscache_status_t (*miscache__modify_fn)(miscache_t *mc, void *ud,
                                                 json_t *obj);
/* Read-modify-write that is safe with concurrent writers and keeps every
 * member of the stored value: WATCH + GET, modify, then MULTI / SET PX
 * ttl_ms / EXEC on the same connection, again (at most 16 times) when
 * another client changed the key in between. The stored value must decode
 * as d (ERR_DECODE otherwise). OK, MISS (no value), ERR_DECODE, ERR_BUSY
 * (still conflicting after 16 tries), the modify function's status, or a
 * transport status. */
miscache_status_t miscache__typed_update(miscache_t *mc, miscache_db_t db,
                                         const char *key,
                                         const miscache__payload_t *d,
                                         int64_t ttl_ms, miscache__modify_fn fn,
                                         void *ud);
/* Sets obj[name] to a new integer or string; ERR_NOMEM / ERR_ENCODE. */
miscache_status_t miscache__json_set_int(json_t *obj, const char *name,
                                         int64_t v);
miscache_status_t miscache__json_set_str(json_t *obj, const char *name,
                                         const char *v);
/* Fills a zeroed struct from the system of record (the old typed shape). */
typedef miscache_status_t (*miscache__typed_loader_fn)(void *userdata,
                                                       void *out);
/* Typed cache-aside: a->key of family a->family (a->db, a->ttl and the
 * request ids filled by the caller; a->accept is set here): cached and
 * decodable, else load -> store -> out, with one GET. A cached or loaded
 * value of the wrong shape is a miss the loader replaces (loaded: ERR_LOADER).
 * With typed (not NULL) the loader of the old shape fills a struct of size
 * bytes, given as typed_ud, and a->load is ignored. */
miscache_status_t
miscache__typed_get_or_load(miscache_t *mc, miscache__aside_t *a,
                            const miscache__payload_t *d, size_t size,
                            miscache__typed_loader_fn typed, void *typed_ud,
                            void *out, miscache_source_t *source);
/* A typed struct (payload d, size bytes, zeroed first) cached under family
 * f's key of company (batch config, gift rules): the cache-aside above,
 * with load (the 0.4.0 shape) or, when typed is not NULL, the old loader
 * typed (given typed_ud). what names the call in messages. */
typedef struct miscache__company_typed {
  miscache_key_family_id_t f;
  int64_t company;
  const miscache__payload_t *d;
  size_t size;
  const char *what;
} miscache__company_typed_t;
miscache_status_t miscache__company_typed_aside(
    miscache_t *mc, const miscache__company_typed_t *t, miscache_load_fn load,
    void *userdata, miscache__typed_loader_fn typed, void *typed_ud, void *out,
    miscache_source_t *source);
/* ERR_KEY unless s is `digits` digits (8: YYYYMMDD, 6: YYYYMM) with a
 * month 01..12 and (8 digits) a day 01..31. */
miscache_status_t miscache__check_date(miscache_t *mc, const char *s,
                                       size_t digits);


/* ---- async operations on one key (async_ops.c) ------------------------------
 * One allocation: the call's state (sizeof this struct + extra bytes: a
 * struct that begins with it), then copies of the logical key and of its
 * namespaced key. NULL with the handle's refusal set. */
typedef struct miscache__async_key_op {
  miscache_db_t db;
  void (*fn)(void);
  void *ud;
  miscache__near_ticket_t nt;
  char *key;  /* logical, for counters and messages */
  char *full; /* namespaced, as sent */
  size_t flen;
} miscache__async_key_op_t;
miscache__async_key_op_t *miscache__async_key_op(miscache_async_t *a,
                                                 size_t extra,
                                                 miscache_db_t db,
                                                 const char *key,
                                                 void (*fn)(void), void *ud);

/* ---- async cache-aside (async_ops.c) -------------------------------------------
 * The read of an async call with a loader: key (logical) in db, the near
 * cache first, else GET; a value accept refuses (NULL: any JSON) is a miss
 * the loader (async.h's shape) replaces; ttl as miscache__aside_t's; fin
 * gets the outcome once (value a new reference, or NULL), ctx its own. */
typedef struct miscache__async_aside {
  miscache__aside_t base; /* its load and userdata unused */
  miscache_async_load_fn load;
  void *load_ud;
} miscache__async_aside_t;
typedef void (*miscache__async_fin_fn)(void *ctx, miscache_status_t st,
                                       json_t *value, miscache_source_t source,
                                       const char *why);
/* A fin that hands the outcome to a miscache_async_source_fn; ctx is a
 * malloc'd miscache__async_source_ctx_t, freed before fn runs. */
typedef struct {
  miscache_async_source_fn fn;
  void *ud;
} miscache__async_source_ctx_t;
void miscache__async_source_fin(void *ctx, miscache_status_t st, json_t *v,
                                miscache_source_t src, const char *why);
miscache_status_t miscache__async_aside(miscache_async_t *a,
                                        const miscache__async_aside_t *spec,
                                        miscache__async_fin_fn fin, void *ctx);

/* Typed async calls: get fills a struct of payload d (the op's, cleared
 * after fn returns) and hands it to fn (NULL unless OK); set encodes in
 * (borrowed for the call) and SETs it PX ttl_ms; update reads, checks the
 * value is one of d's, lets modify change the object and writes it back
 * by compare-and-set (retried, then ERR_BUSY; MISS when absent). */
typedef void (*miscache__async_typed_fn)(void *ctx, miscache_status_t st,
                                         void *out, const char *why);
miscache_status_t miscache__async_typed_get(miscache_async_t *a,
                                            miscache_db_t db, const char *key,
                                            const miscache__payload_t *d,
                                            miscache__async_typed_fn fn,
                                            void *ctx);
miscache_status_t miscache__async_typed_set(miscache_async_t *a,
                                            miscache_db_t db, const char *key,
                                            const miscache__payload_t *d,
                                            const void *in, int64_t ttl_ms,
                                            miscache_async_done_fn fn,
                                            void *ud);
miscache_status_t miscache__async_typed_update(
    miscache_async_t *a, miscache_db_t db, const char *key,
    const miscache__payload_t *d, int64_t ttl_ms, miscache__modify_fn modify,
    void *modify_ud, miscache_async_done_fn fn, void *ud);

#endif /* MISCACHE_OPS_H */

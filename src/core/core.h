/* The core layer (src/core): the handle (client.c, the only door to the
 * connection layer), pools, the pending-invalidation store, and the near
 * cache with its threads. Not installed. */
#ifndef MISCACHE_CORE_H
#define MISCACHE_CORE_H

#include "conn/conn.h"

/* ---- pending invalidations (pending.c): a store ------------------------ */
typedef struct miscache__pending miscache__pending_t;
/* A store for at most cap entries, one reference. NULL if out of memory. */
miscache__pending_t *miscache__pending_new(size_t cap);
miscache__pending_t *miscache__pending_ref(miscache__pending_t *p);
void miscache__pending_unref(miscache__pending_t *p); /* accepts NULL */
size_t miscache__pending_count(const miscache__pending_t *p);
/* Keep a delete (pattern false) or a pattern invalidation of a logical key
 * in db. OK (also when already there), ERR_PENDING_FULL, ERR_NOMEM. */
miscache_status_t miscache__pending_add(miscache__pending_t *p,
                                        miscache_db_t db, const char *key,
                                        bool pattern);
/* Whether a pending entry of db covers the logical key. */
bool miscache__pending_covers(miscache__pending_t *p, miscache_db_t db,
                              const char *key);
/* A copy of the entries now (*n of them, free with
 * miscache__pending_entries_free), so that other handles keep seeing them
 * as pending until each replay has succeeded. ERR_NOMEM (*out NULL). */
typedef struct miscache__pending_entry {
  uint64_t id;
  miscache_db_t db;
  bool pattern;
  char *key; /* logical key or pattern (no namespace) */
} miscache__pending_entry_t;
miscache_status_t miscache__pending_snapshot(miscache__pending_t *p,
                                             miscache__pending_entry_t **out,
                                             size_t *n);
void miscache__pending_entries_free(miscache__pending_entry_t *e, size_t n);
/* Removes the entry with this id, if still there (its replay succeeded). */
void miscache__pending_done(miscache__pending_t *p, uint64_t id);

typedef struct miscache__near miscache__near_t; /* near.c */

/* ---- handle (client.c) ------------------------------------------------ */
struct miscache {
  miscache_options_t opts;
  miscache__dispatcher_t *disp;
  size_t ns_len;
  /* made at open when it fits (len 0: build the key the usual way): the
   * whole key of a family with no id (ns + prefix), the head of one with
   * one id (ns + prefix + ":"; none for a company-scoped family with hash
   * tags on) */
  char kf_head[MISCACHE_KEY_FAMILY_COUNT][64];
  uint8_t kf_head_len[MISCACHE_KEY_FAMILY_COUNT];
  uint64_t rng;
  unsigned rng_gen; /* fork generation the generator was seeded in */
  miscache_counters_t counters[MISCACHE_DB_COUNT];
  miscache_latency_t latency;
  miscache_counters_t categories[MISCACHE_CATEGORY_COUNT];
  bool quiet; /* internal reads that are not cache reads: not counted */
  miscache_key_visit_fn dry_run; /* events: list instead of delete */
  void *dry_run_userdata;
  miscache__pending_t *pending; /* own, or shared with the pool's handles */
  miscache__near_t *near;       /* own, the pool's, or NULL (off) */
  int64_t replay_after_ms;
  miscache_pool_t *pool; /* the pool that opened it, NULL if standalone */
  unsigned borrow_gen;    /* fork generation it was last borrowed in */
  char err[MISCACHE_ERRMSG_SIZE];
};

void miscache__set_err(miscache_t *mc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* TTL in ms for a class, jitter applied. */
int64_t miscache__ttl_ms(miscache_t *mc, miscache_ttl_class_t cls);
/* A TTL resolved only when a value is stored (the cache-aside calls): > 0
 * is ms as given; MISCACHE__TTL_OF(cls) (< 0) is the class, its jitter
 * drawn then, so a read that stores nothing draws no random number. 0 is
 * no TTL (refused). */
#define MISCACHE__TTL_OF(cls) (-(int64_t)(cls)-1)
int64_t miscache__ttl_resolve(miscache_t *mc, int64_t ttl);
/* The next pseudo-random number of the handle (xorshift64*), seeded from
 * getrandom() and reseeded in a child after fork(), so a parent and its
 * child never produce the same ids. */
uint64_t miscache__rand(miscache_t *mc);

typedef enum {
  MISCACHE__HIT,
  MISCACHE__MISS,
  MISCACHE__ERROR,
  MISCACHE__UNHIT /* take back a hit */
} miscache__event_t;
/* The category of a logical key (its first segment). */
miscache_category_t miscache__category_of(const char *key);
/* The address of the node in use now ("" before a connect), for events. */
const char *miscache__master_name(const miscache_t *mc);
/* Count a read outcome or an error for db and for key's category (the
 * first segment of the logical key or pattern; NULL counts as "other"). */
void miscache__count(miscache_t *mc, miscache_db_t db, const char *key,
                     miscache__event_t ev);
/* The same for a caller that knows the category (inline: a near hit
 * counts on its way out). */
static inline void miscache__count_in(miscache_t *mc, miscache_db_t db,
                                      miscache_category_t cat,
                                      miscache__event_t ev) {
  if (mc->quiet) return;
  miscache_counters_t *d = &mc->counters[db];
  miscache_counters_t *c = &mc->categories[cat];
  switch (ev) {
  case MISCACHE__HIT: d->hits++, c->hits++; break;
  case MISCACHE__MISS: d->misses++, c->misses++; break;
  case MISCACHE__ERROR: d->errors++, c->errors++; break;
  case MISCACHE__UNHIT: d->hits--, c->hits--; break;
  }
}

/* A reply that is not what the call expected: counts an error for db and
 * returns the mapped status of an error reply (message "what: <redis
 * text>") or ERR_REPLY ("what: unexpected reply"). r may be NULL. */
miscache_status_t miscache__unexpected(miscache_t *mc, miscache_db_t db,
                                       const char *key,
                                       const miscache__reply_t *r,
                                       const char *what);

/* A read counted as a hit turned out unusable (wrong shape): count it as a
 * miss and an error instead. */
void miscache__hit_unusable(miscache_t *mc, miscache_db_t db,
                            const char *key);

/* Namespaced key: points into buf (size bytes) or into a heap copy in
 * *heap (free it). ERR_INVALID for NULL/empty, ERR_NOMEM. */
typedef struct miscache__fullkey {
  char *ptr;
  size_t len;
  char *heap;
  char buf[256];
} miscache__fullkey_t;
miscache_status_t miscache__fullkey(miscache_t *mc, const char *key,
                                    miscache__fullkey_t *fk);
void miscache__fullkey_done(miscache__fullkey_t *fk);
/* The namespaced key of family f (one integer id, no hash tag) written
 * straight into fk->buf: true. false when that does not apply (another
 * shape, hash tags on, too long): build it the usual way. Nothing to free. */
bool miscache__fullkey_int(miscache_t *mc, miscache_key_family_id_t f,
                           int64_t id, miscache__fullkey_t *fk);
/* The same for a family with no id (master lists). */
bool miscache__fullkey_fixed(miscache_t *mc, miscache_key_family_id_t f,
                             miscache__fullkey_t *fk);


/* Read your writes, in one place: with MISCACHE__WRITES in the flags of
 * miscache__exec_key or miscache__send, once the call has run (whatever it
 * returned: a write may have landed though its reply was lost) the near
 * cache drops every key the commands write: argv[1] of each command of two
 * or more arguments (SET, UNLINK, PEXPIRE...; MULTI and EXEC have none),
 * and each KEYS argument of EVAL / EVALSHA. The dispatcher never sees it. */
#define MISCACHE__WRITES 32u

/* One command on the node serving logical key (the call's, for the
 * counters), no replay: on a transport failure count an error for db.
 * *reply is the caller's to free. */
miscache_status_t miscache__exec_key(miscache_t *mc, miscache_db_t db,
                                     const char *key,
                                     const miscache__cmd_t *cmd,
                                     miscache__reply_t **reply, unsigned flags);

/* n commands on the handle's dispatcher, no replay (ops' miscache__run
 * replays first). Status and message as miscache__disp_run. */
miscache_status_t miscache__send(miscache_t *mc, int db, size_t n,
                                 const miscache__cmd_t *cmds,
                                 miscache__reply_t **replies, unsigned flags);
/* The same with a master per command for a cluster's keyless commands
 * (miscache__disp_run_on). */
miscache_status_t miscache__send_on(miscache_t *mc, int db, size_t n,
                                    const miscache__cmd_t *cmds,
                                    const unsigned *on_each,
                                    miscache__reply_t **replies,
                                    unsigned flags);
/* The dispatcher's answers for the handle (conn.h). */
size_t miscache__dispatch_nodes(miscache_t *mc);
size_t miscache__dispatch_node_count(const miscache_t *mc);
bool miscache__is_cluster(const miscache_t *mc);

/* After a failed delete or invalidation with status st: keep it pending when
 * its outcome is unknown. Returns st, or ERR_PENDING_FULL (message set) when
 * it could not be kept. */
miscache_status_t miscache__pend(miscache_t *mc, miscache_db_t db,
                                 const char *key, bool pattern,
                                 miscache_status_t st);


/* A version-4 UUID text from the handle's generator (seeded from
 * getrandom() once per handle and after fork): unique, not secret; no
 * system call. Lock tokens and queue message ids. */
void miscache__uuid(miscache_t *mc, char out[37]);

/* ---- keys of the keyspace table on a handle (family.c) ------------------ */
/* The family's TTL in ms on this handle (its class, jitter applied). */
int64_t miscache__kf_ttl_ms(miscache_t *mc, miscache_key_family_id_t f);
/* The same, resolved when stored (MISCACHE__TTL_OF its class). */
#define MISCACHE__KF_TTL(f) MISCACHE__TTL_OF(miscache__kf_class(f))
/* Key (or, with pattern, a SCAN pattern where an id is NULL) of family f
 * from its nids ids into buf (MISCACHE_KEY_BUFSIZE), hash tags as the
 * handle's options say. ERR_KEY with the handle's message (mc may be
 * NULL). */
miscache_status_t miscache__kf_build(miscache_t *mc, miscache_key_family_id_t f,
                                     char *buf, bool pattern,
                                     const char *const ids[]);
/* Key of family f from its ids given as const char * arguments (exactly
 * nids of them; NULL is ERR_INVALID). */
miscache_status_t miscache__kf_key(miscache_t *mc, miscache_key_family_id_t f,
                                   char *buf, ...);
/* Key of a family with one integer id. */
miscache_status_t miscache__kf_key_int(miscache_t *mc,
                                       miscache_key_family_id_t f, char *buf,
                                       int64_t id);

/* ---- near cache (near.c) ------------------------------------------------- */
/* A store with its invalidation threads for the options' endpoint (o->near
 * filled in). ERR_NOMEM; err set. */
miscache_status_t miscache__near_new(const miscache_options_t *o,
                                     miscache__near_t **out, char *err,
                                     size_t errlen);
miscache__near_t *miscache__near_ref(miscache__near_t *s);
void miscache__near_unref(miscache__near_t *s); /* accepts NULL */
/* What a reader saw before it sent its GET: the store takes the value only
 * if nothing invalidated that key since. */
typedef struct miscache__near_ticket {
  int64_t taken_ms; /* CLOCK_MONOTONIC, just before the GET was sent */
  uint64_t hash;
  uint64_t epoch;
  uint32_t stripe;
  bool use; /* false: do not store */
} miscache__near_ticket_t;
/* A hit on the namespaced key full of a near-cached family: a new
 * reference (read-only unless copy_values), *pttl (may be NULL) the ms
 * left (-1: no TTL). NULL on a miss, with *t filled for miscache__near_put. */
json_t *miscache__near_get(miscache_t *mc, miscache_db_t db, const char *full,
                           size_t len, miscache__near_ticket_t *t,
                           int64_t *pttl);
/* Store v (its JSON text vlen bytes) read with its PTTL under ticket t;
 * the entry expires pttl ms after the ticket was taken. */
void miscache__near_put(miscache_t *mc, miscache_db_t db, const char *full,
                        size_t len, json_t *v, size_t vlen, int64_t pttl,
                        const miscache__near_ticket_t *t);
/* A form of a cached value that a reader answers from directly (a
 * permission map as per-menu bits): make builds it from v (OK, or
 * ERR_DECODE when v is not usable; anything else: not now), once per entry
 * under the store's lock; read answers from it under the lock on every
 * hit; free_view frees it with the entry. */
typedef struct miscache__near_view {
  miscache_status_t (*make)(const json_t *v, void **view);
  void (*read)(const void *view, void *ud);
  void (*free_view)(void *view);
  /* read hands the value itself out (a new reference): not with
   * copy_values, whose hits must be copies */
  bool hands_out;
} miscache__near_view_t;
/* A hit on full, a key of family (0 .. MISCACHE_KEY_FAMILY_COUNT - 1, as
 * the caller built it), answered in place by vw->read(view, ud): no
 * reference taken, no
 * JSON walked after the first hit. 1: answered; 0: not answered (not
 * cached, not serving, or the value refused by make): read the usual
 * way. */
int miscache__near_read_view(miscache_t *mc, miscache_db_t db, int family,
                             const char *full, size_t len,
                             const miscache__near_view_t *vw, void *ud);
/* A write through this process: drop the key (every db) at once. */
void miscache__near_evict(miscache_t *mc, const char *full, size_t len);
void miscache__near_evict_pattern(miscache_t *mc, const char *full_pattern);
/* Empty this process's store at once (miscache_near_flush_all). */
void miscache__near_flush_local(miscache_t *mc);

/* What the latency figures and the slow-call event keep of a call of n
 * commands: the class, the first command's name and its first argument
 * (the key, whose family a slow call's event names; both borrowed: they
 * point into cmds, or into copies the caller keeps), and its duration recorded
 * (client.c). The family is looked up only for a slow call. */
typedef struct miscache__call {
  miscache_cmd_class_t cls;
  size_t n;
  const char *verb; /* the first command's name, at most 16 bytes of it */
  size_t vlen;
  const char *key; /* NULL: none */
  size_t klen;
} miscache__call_t;
void miscache__call_info(size_t n, const miscache__cmd_t *cmds,
                         miscache__call_t *out);
void miscache__observe_call(miscache_t *mc, const miscache__call_t *call,
                            int64_t us);

/* ---- the async engine (async.c) -------------------------------------------
 * What the async calls (ops/async_ops.c, the domain files) are built on.
 * An operation (op: the call's own state) queues one request of n
 * commands; done(a, op, st, replies, n, why) runs exactly once for it:
 * with st OK and its n replies (an error reply is a reply: see
 * miscache__async_reply_ok), or with the failure (timeout, lost
 * connection, ERR_CANCELLED at free) and replies NULL. done frees op and
 * may take a reply (set its slot to NULL); the others are freed after.
 * Everything runs on the handle's loop thread. */
typedef struct miscache_async miscache_async_t;
typedef void (*miscache__async_done_fn)(miscache_async_t *a, void *op,
                                        miscache_status_t st,
                                        miscache__reply_t **replies, size_t n,
                                        const char *why);
/* The handle's own miscache_t: namespace, keys, TTLs and jitter, the near
 * store, counters. Never used for I/O. */
miscache_t *miscache__async_mc(miscache_async_t *a);
/* OK when the handle takes a call (not being freed) and args_ok; else
 * ERR_CANCELLED or ERR_INVALID with the message set ("what: bad
 * argument"). */
miscache_status_t miscache__async_check(miscache_async_t *a, bool args_ok,
                                        const char *what);
/* Why a call refused to start (miscache_async_errmsg). */
void miscache__async_refuse(miscache_async_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Queue the request. Not OK (message set): done is never called, op is
 * the caller's. */
miscache_status_t miscache__async_send(miscache_async_t *a, miscache_db_t db,
                                       size_t n, const miscache__cmd_t *cmds,
                                       miscache__async_done_fn done, void *op);
/* OK for a reply that is not an error reply; else ERR_SERVER with why
 * ("server error: ..."). */
miscache_status_t miscache__async_reply_ok(const miscache__reply_t *r,
                                           char *why, size_t whylen);
/* Around a completion made without the loop (a near hit, a loader's
 * answer): leave frees the handle if a callback freed it. */
void miscache__async_enter(miscache_async_t *a);
void miscache__async_leave(miscache_async_t *a);
/* An operation waiting outside the request queue (on an asynchronous
 * loader): counted as outstanding, and cancel(a, w) runs at free. */
typedef struct miscache__async_wait {
  struct miscache__async_wait *prev, *next;
  void (*cancel)(miscache_async_t *a, struct miscache__async_wait *w);
} miscache__async_wait_t;
void miscache__async_wait_add(miscache_async_t *a, miscache__async_wait_t *w);
void miscache__async_wait_remove(miscache_async_t *a,
                                 miscache__async_wait_t *w);
/* The first waiting operation (then ->next), NULL when none. */
miscache__async_wait_t *miscache__async_waits(miscache_async_t *a);
/* The pool's near store (a new reference, NULL when off), pending
 * invalidations (a new reference) and options. */
miscache__near_t *miscache__pool_near(miscache_pool_t *p);
miscache__pending_t *miscache__pool_pending(miscache_pool_t *p);
const miscache_options_t *miscache__pool_options(const miscache_pool_t *p);
#endif /* MISCACHE_CORE_H */

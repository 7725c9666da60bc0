/* Internal declarations shared by the library's source files. Not installed. */
#ifndef MISCACHE_INTERNAL_H
#define MISCACHE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "miscache/miscache.h"

#define MISCACHE__NS_MAX 64

/* ---- endpoint / URL (url.c) ------------------------------------------- */
typedef enum {
  MISCACHE__EP_TCP = 0,
  MISCACHE__EP_UNIX = 1,
  MISCACHE__EP_SENTINEL = 2, /* addrs are sentinels, master names the set */
  MISCACHE__EP_CLUSTER = 3   /* addrs are seed nodes of a Redis Cluster */
} miscache__ep_kind_t;

typedef struct miscache__hostport {
  char *host; /* name or IP (no brackets) */
  int port;
} miscache__hostport_t;

/* TLS settings: files NULL = not given. */
typedef struct miscache__tls_conf {
  char *cacert; /* PEM CA bundle; NULL: the system trust store */
  char *cert;   /* client certificate (mutual TLS) */
  char *key;    /* its private key */
  bool insecure_skip_verify;
} miscache__tls_conf_t;

typedef struct miscache__endpoint {
  miscache__ep_kind_t kind;
  char *host; /* TCP: host name or IP (no brackets) */
  int port;   /* TCP */
  char *path; /* UNIX */
  char *user;     /* NULL: none */
  char *password; /* NULL: no AUTH */
  bool tls;       /* rediss:// */
  miscache__tls_conf_t tls_conf; /* from URL parameters */
  char *master;                  /* SENTINEL: the master's name */
  miscache__hostport_t *addrs;   /* SENTINEL: the sentinels; CLUSTER: seeds */
  size_t naddrs;
  char *sentinel_user;     /* AUTH for the sentinels (URL parameters) */
  char *sentinel_password;
} miscache__endpoint_t;

/* Parse url into ep (fields heap-allocated). On error ep is untouched and
 * err gets a message. */
miscache_status_t miscache__url_parse(const char *url, miscache__endpoint_t *ep,
                                      char *err, size_t errlen);
void miscache__endpoint_clear(miscache__endpoint_t *ep);
/* *dst = a copy of src (NULL stays NULL); false when out of memory. */
bool miscache__dup(char **dst, const char *src);
/* Zero n bytes so that a secret does not stay in memory (not optimised
 * away). */
void miscache__wipe(void *p, size_t n);
/* Wipe and free a secret string. Accepts NULL. */
void miscache__secret_free(char *secret);
miscache_status_t miscache__endpoint_copy(miscache__endpoint_t *dst,
                                          const miscache__endpoint_t *src);
void miscache__tls_conf_clear(miscache__tls_conf_t *t);
miscache_status_t miscache__tls_conf_copy(miscache__tls_conf_t *dst,
                                          const miscache__tls_conf_t *src);

/* ---- options (options.c) ---------------------------------------------- */
/* Limits on one reply (reply.c): elements of an array, bytes of a bulk
 * string, memory of the whole reply. */
typedef struct miscache__limits {
  size_t max_elements;
  size_t max_bulk;
  size_t max_bytes;
} miscache__limits_t;
void miscache__limits_default(miscache__limits_t *l);

struct miscache_options {
  miscache__endpoint_t ep;
  bool ep_set;
  int connect_timeout_ms;
  int command_timeout_ms;
  int db[MISCACHE_DB_COUNT];
  int64_t ttl[MISCACHE_TTL_CLASS_COUNT];
  unsigned jitter_pct;
  char ns[MISCACHE__NS_MAX + 1];
  unsigned scan_count;
  unsigned unlink_batch;
  bool lazy;
  bool hash_tags; /* company ids of company-scoped keys in {braces} */
  miscache_stampede_t stampede;
  miscache_near_t near; /* families filled in by the setter */
  bool near_external;   /* a pool's handle: the pool gives it its store */
  unsigned pending_max;
  /* set by the option setters; they win over the URL's (also MISCACHE_URL) */
  bool tls_on;
  miscache__tls_conf_t tls;
  char *sentinel_user;
  char *sentinel_password;
  int backoff_min_ms;
  int backoff_max_ms;
  miscache__limits_t limits; /* on every reply */
  int scan_timeout_ms;       /* a whole SCAN loop */
  char err[MISCACHE_ERRMSG_SIZE]; /* why the last setter refused */
};

void miscache__options_defaults(miscache_options_t *o);
/* Deep copy into an uninitialised dst. */
miscache_status_t miscache__options_copy(miscache_options_t *dst,
                                         const miscache_options_t *src);
void miscache__options_clear(miscache_options_t *o);
/* The endpoint a handle uses: o's (or url's when given) with the setters'
 * TLS and sentinel settings laid over it. */
miscache_status_t miscache__options_endpoint(const miscache_options_t *o,
                                             const char *url,
                                             miscache__endpoint_t *out,
                                             char *err, size_t errlen);

/* ---- replies (reply.c) ---------------------------------------------------
 * The layers below the dispatcher (transport.h, node.h) are not visible
 * from here: a domain file cannot reach a connection. */
typedef struct miscache__reply miscache__reply_t; /* opaque */
typedef enum {
  MISCACHE__R_STRING,
  MISCACHE__R_ARRAY,
  MISCACHE__R_INTEGER,
  MISCACHE__R_NIL,
  MISCACHE__R_STATUS,
  MISCACHE__R_ERROR,
  MISCACHE__R_OTHER
} miscache__rtype_t;

/* Every accessor accepts NULL (a missing element) and any shape: type
 * R_OTHER, "" and 0 for what is not there. */
miscache__rtype_t miscache__reply_type(const miscache__reply_t *r);
bool miscache__reply_is(const miscache__reply_t *r, miscache__rtype_t type);
const char *miscache__reply_str(const miscache__reply_t *r, size_t *len);
long long miscache__reply_int(const miscache__reply_t *r);
size_t miscache__reply_count(const miscache__reply_t *r);
const miscache__reply_t *miscache__reply_at(const miscache__reply_t *r,
                                            size_t i);
void miscache__reply_free(miscache__reply_t *r);
/* Replies made by the library (a split command's merged reply): an array
 * of n empty slots, an integer; take element i out of an array (its slot
 * becomes empty) and put one in. NULL when out of memory. */
miscache__reply_t *miscache__reply_new_array(size_t n);
miscache__reply_t *miscache__reply_new_int(long long v);
miscache__reply_t *miscache__reply_take(miscache__reply_t *array, size_t i);
void miscache__reply_put(miscache__reply_t *array, size_t i,
                         miscache__reply_t *e);
/* Bytes a server sent, as text fit for a message: control characters and
 * backslashes escaped (\n, \x1b...); cut to dstlen - 1. Its length. */
size_t miscache__escape(char *dst, size_t dstlen, const char *src, size_t len);
/* A reply's string escaped so into buf; returns buf. */
const char *miscache__reply_text(const miscache__reply_t *r, char *buf,
                                 size_t buflen);

/* Map an error reply to a status and write "what: <redis text>" to err
 * (the text escaped). */
miscache_status_t miscache__reply_error(const miscache__reply_t *r,
                                        const char *what, char *err,
                                        size_t errlen);

typedef struct miscache__cmd {
  int argc;
  const char *const *argv;
  const size_t *lens;
} miscache__cmd_t;

/* exec flags */
#define MISCACHE__IDEMPOTENT 1u /* safe to resend once on a fresh connection */
/* Only on the connection the previous call used (MULTI/EXEC after WATCH):
 * ERR_UNAVAILABLE rather than a new connection, and no replay before it. */
#define MISCACHE__SAME_CONN 2u
/* Node layer only: with no live connection, fail (nothing sent) instead of
 * connecting, so the dispatcher can first check whom it would reach. */
#define MISCACHE__NO_CONNECT 4u
/* A connection that receives pushes (the near cache's subscriber): a
 * waiting message does not make it "broken". */
#define MISCACHE__PUSH 16u
/* Cluster: commands without a key go to master i (0 .. nodes - 1, see
 * miscache__dispatch_nodes); standalone and Sentinel ignore it. */
#define MISCACHE__ON_NODE(i) (((unsigned)(i) + 1u) << 8)

/* ---- dispatcher (dispatch.c): every command of a handle goes through it - */
#define MISCACHE__NO_DB (-1) /* a command that needs no SELECT (PING, INFO) */
typedef struct miscache__dispatcher miscache__dispatcher_t;
/* The dispatcher for mc's endpoint (mc->opts.ep). ERR_TLS (certificate
 * files), ERR_NOMEM; message in mc->err. */
miscache_status_t miscache__dispatcher_new(miscache_t *mc,
                                           miscache__dispatcher_t **out);
void miscache__dispatcher_free(miscache__dispatcher_t *d); /* accepts NULL */
/* Connect now (eager open): standalone node, or Sentinel's master. */
miscache_status_t miscache__dispatcher_connect(miscache_t *mc);
/* Replays pending invalidations (if any, and not within the retry pause
 * after a failed replay), then runs n commands for logical db (or NO_DB) on
 * the node that serves them, within one command timeout. OK when every
 * reply was read (replies may be error replies; free each with
 * miscache__reply_free); else a status (message in mc->err) with every
 * replies[i] NULL. An old connection found lost is replaced and the batch
 * sent again once when flags has IDEMPOTENT. */
miscache_status_t miscache__dispatch(miscache_t *mc, int db, size_t n,
                                     const miscache__cmd_t *cmds,
                                     miscache__reply_t **replies,
                                     unsigned flags);
/* How many nodes hold the data: the masters of a cluster (the slot map is
 * loaded if needed; 0 when it cannot be, message set), else 1. A SCAN
 * must run on each (MISCACHE__ON_NODE). */
size_t miscache__dispatch_nodes(miscache_t *mc);
/* Node objects the dispatcher holds now (a cluster's: its map's masters
 * and those in use; tests check that a reload frees the others). */
size_t miscache__dispatch_node_count(const miscache_t *mc);
/* Whether the handle is on a Redis Cluster (db 0 only, no SELECT). */
bool miscache__is_cluster(const miscache_t *mc);
/* The master in use, as miscache_link_stats() names it ("host:port",
 * "cluster", or "" before Sentinel named one). Borrowed. */
const char *miscache__dispatch_master_name(const miscache_t *mc);
typedef struct miscache__master_addr {
  char host[256];
  int port;
} miscache__master_addr_t;
/* Redis Cluster: the slot map read again now, and its masters sorted by
 * host and port (malloc'd, *n of them). NULL (message set) when no node
 * gave a map, or not a cluster. */
miscache__master_addr_t *miscache__dispatch_cluster_masters(miscache_t *mc,
                                                            size_t *n);
/* The near cache's subscriber connection (standalone or Sentinel's
 * master; ERR_INVALID on a cluster, whose near cache subscribes to each
 * master with a standalone handle): send n commands without reading
 * their replies, only on the live connection (ERR_UNAVAILABLE when there
 * is none: nothing sent); read the next reply or message (MISS: none
 * within timeout_ms); close the connection. */
miscache_status_t miscache__push_send(miscache_t *mc, size_t n,
                                      const miscache__cmd_t *cmds);
miscache_status_t miscache__push_read(miscache_t *mc, int timeout_ms,
                                      miscache__reply_t **reply);
void miscache__push_drop(miscache_t *mc);
/* Sentinel: the subscriber asks the sentinels for the master every ms
 * (not every second), and when they last named the one it is on
 * (CLOCK_MONOTONIC ms at the question, 0: never). INT64_MAX elsewhere:
 * nobody else names the master. */
void miscache__push_check_every(miscache_t *mc, int ms);
int64_t miscache__push_vouched_ms(const miscache_t *mc);
/* The replay step of miscache__dispatch alone (keeps mc->err as it was). */
void miscache__replay_pending(miscache_t *mc);

/* ---- pending invalidations (pending.c) --------------------------------- */
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
/* Replays every entry on mc (which must have replaying set); removes each
 * that succeeded. The first failure stops it. */
miscache_status_t miscache__pending_replay(miscache_t *mc);
/* Redis SCAN MATCH glob semantics. */
bool miscache__glob_match(const char *pattern, const char *s);
/* The delete / pattern invalidation themselves, without pending bookkeeping. */
miscache_status_t miscache__delete_now(miscache_t *mc, miscache_db_t db,
                                       const char *key, bool *deleted);
miscache_status_t miscache__invalidate_now(miscache_t *mc, miscache_db_t db,
                                           const char *pattern,
                                           uint64_t *deleted);
/* After a failed delete or invalidation with status st: keep it pending when
 * its outcome is unknown. Returns st, or ERR_PENDING_FULL (message set) when
 * it could not be kept. */
miscache_status_t miscache__pend(miscache_t *mc, miscache_db_t db,
                                 const char *key, bool pattern,
                                 miscache_status_t st);

typedef struct miscache__near miscache__near_t; /* near.c */

/* ---- handle (client.c) ------------------------------------------------ */
struct miscache {
  miscache_options_t opts;
  miscache__dispatcher_t *disp;
  size_t ns_len;
  uint64_t rng;
  unsigned rng_gen; /* fork generation the generator was seeded in */
  miscache_counters_t counters[MISCACHE_DB_COUNT];
  miscache_counters_t categories[MISCACHE_CATEGORY_COUNT];
  bool quiet; /* internal reads that are not cache reads: not counted */
  miscache_key_visit_fn dry_run; /* events: list instead of delete */
  void *dry_run_userdata;
  miscache__pending_t *pending; /* own, or shared with the pool's handles */
  miscache__near_t *near;       /* own, the pool's, or NULL (off) */
  bool replaying;
  int64_t replay_after_ms;
  miscache_pool_t *pool; /* the pool that opened it, NULL if standalone */
  unsigned borrow_gen;    /* fork generation it was last borrowed in */
  char err[MISCACHE_ERRMSG_SIZE];
};

void miscache__set_err(miscache_t *mc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool miscache__db_valid(miscache_db_t db);
bool miscache__ttl_valid(miscache_ttl_class_t cls);
/* TTL in ms for a class, jitter applied. */
int64_t miscache__ttl_ms(miscache_t *mc, miscache_ttl_class_t cls);
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
/* Count a read outcome or an error for db and for key's category (the
 * first segment of the logical key or pattern; NULL counts as "other"). */
void miscache__count(miscache_t *mc, miscache_db_t db, const char *key,
                     miscache__event_t ev);

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

/* One command on the node serving key: route, exec, and on a transport
 * failure count an error for db. *reply is the caller's to free. */
miscache_status_t miscache__exec_key(miscache_t *mc, miscache_db_t db,
                                     const miscache__fullkey_t *fk,
                                     const miscache__cmd_t *cmd,
                                     miscache__reply_t **reply, unsigned flags);

/* A typed read's target: a stored value simple enough is decoded straight
 * from its bytes into out (payload.h's fast pair), without a tree; done
 * says it was. */
struct miscache__payload;
typedef struct miscache__direct {
  const struct miscache__payload *d;
  void *out;
  bool done;
} miscache__direct_t;
/* nset SETs (PX, class cls with jitter per key) then one MGET of nget keys
 * (logical), in one round trip; values/statuses as miscache_mget. Returns
 * the round trip's status (ERR_INVALID, ERR_NOMEM, ERR_ENCODE before
 * sending); *set_st (may be NULL) the first failed SET's. Keys and values
 * not checked for NULL here. */
miscache_status_t miscache__mset_mget(
    miscache_t *mc, miscache_db_t db, size_t nset, const char *const set_keys[],
    const json_t *const set_vals[], miscache_ttl_class_t cls,
    miscache_status_t *set_st, size_t nget, const char *const get_keys[],
    json_t *values[], miscache_status_t statuses[]);
/* The same for typed pages: the SETs' values as JSON text (set_texts,
 * set_lens), and each found value offered first to direct[i] (its struct
 * filled straight from the bytes: values[i] stays NULL, done set); the
 * others decoded into values[] as usual. direct may be NULL. */
miscache_status_t miscache__mset_mget_text(
    miscache_t *mc, miscache_db_t db, size_t nset, const char *const set_keys[],
    const char *const set_texts[], const size_t set_lens[],
    miscache_ttl_class_t cls, miscache_status_t *set_st, size_t nget,
    const char *const get_keys[], json_t *values[],
    miscache_status_t statuses[], miscache__direct_t direct[]);

/* SET key (logical) to JSON text val PX ttl_ms (> 0), as miscache_set does
 * (the near cache evicts it here at once). */
miscache_status_t miscache__set_text(miscache_t *mc, miscache_db_t db,
                                     const char *key, const char *val,
                                     size_t vlen, int64_t ttl_ms);
/* miscache_get_or_load with an explicit TTL in ms (> 0). */
miscache_status_t miscache__get_or_load_ms(miscache_t *mc, miscache_db_t db,
                                           const char *key, int64_t ttl_ms,
                                           miscache_loader_fn loader,
                                           void *userdata, json_t **out,
                                           miscache_source_t *source);

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
/* Cache-aside with one GET: a cached value accept() refuses is a miss (counted
 * as one miss and one error) that the loader replaces; the loader's value
 * must pass accept() too (else ERR_LOADER). accept NULL takes any JSON. */
miscache_status_t miscache__cache_aside(miscache_t *mc, miscache_db_t db,
                                        const char *key, int64_t ttl_ms,
                                        miscache_loader_fn loader,
                                        void *userdata,
                                        miscache__accept_fn accept,
                                        void *accept_ud, json_t **out,
                                        miscache_source_t *source);
/* The same with a typed target (direct may be NULL): a cached value that
 * direct decodes is a hit with *out NULL and direct->done set. */
miscache_status_t miscache__cache_aside_direct(
    miscache_t *mc, miscache_db_t db, const char *key, int64_t ttl_ms,
    miscache_loader_fn loader, void *userdata, miscache__accept_fn accept,
    void *accept_ud, miscache__direct_t *direct, json_t **out,
    miscache_source_t *source);

/* ---- work queues (queue.c) ---------------------------------------------- */
/* The namespaced stream key of queue NAME ("queue:{NAME}"), the name
 * checked as the queue calls check it (ERR_KEY, message set). */
miscache_status_t miscache__queue_stream_key(miscache_t *mc, const char *name,
                                             miscache__fullkey_t *fk);

/* miscache_queue_pull / miscache_queue_reclaim that also give each
 * message's "seq" field (0 without one) in seqs[] beside out[]. */
miscache_status_t miscache__queue_pull_seq(miscache_t *mc, const char *name,
                                           const char *group,
                                           const char *consumer, size_t max,
                                           int block_ms,
                                           miscache_queue_msg_t *out,
                                           uint64_t *seqs, size_t *got);
miscache_status_t miscache__queue_reclaim_seq(
    miscache_t *mc, const char *name, const char *group, const char *consumer,
    size_t max, const miscache_queue_opts_t *opts, miscache_queue_msg_t *out,
    uint64_t *seqs, size_t *got, size_t *dead);

/* Hands entries (ids[n], delivered deliveries[i] times) back to the
 * reclaim at once: still pending with consumer, idle for idle_ms, their
 * delivery count as before this delivery (XCLAIM IDLE RETRYCOUNT), so an
 * entry put aside unprocessed is not counted towards max_deliveries. */
miscache_status_t miscache__queue_defer(miscache_t *mc, const char *name,
                                       const char *group,
                                       const char *consumer, size_t n,
                                       const char *const ids[],
                                       const uint64_t deliveries[],
                                       int64_t idle_ms);

/* ---- stampede protection (stampede.c) ------------------------------------ */
typedef struct miscache__flight miscache__flight_t;
/* Join the in-process flight of (handle's namespace, db, key): *leader
 * true for the first caller (it loads, then miscache__flight_done), else a
 * follower (miscache__flight_wait). NULL with *leader true when out of
 * memory (load without a flight). */
miscache__flight_t *miscache__flight_join(miscache_t *mc, miscache_db_t db,
                                          const char *key, bool *leader);
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
/* A write through this process: drop the key (every db) at once. */
void miscache__near_evict(miscache_t *mc, const char *full, size_t len);
void miscache__near_evict_pattern(miscache_t *mc, const char *full_pattern);
/* Incremented in a child after fork() (common.c). */
unsigned miscache__fork_gen(void);
/* Registers the fork handlers (once; every object that needs them calls
 * it). */
void miscache__fork_watch(void);
/* A mutex shared between threads (and its condition variable, or NULL),
 * held across fork() and released in the child (the condition variable
 * made anew), so a child can go on using the object whatever the parent's
 * threads were doing. g lives in the object; remove before destroying. */
typedef struct miscache__fork_guard {
  struct miscache__fork_guard *next, *prev;
  pthread_mutex_t *mu;
  pthread_cond_t *cv;
} miscache__fork_guard_t;
void miscache__fork_guard_add(miscache__fork_guard_t *g, pthread_mutex_t *mu,
                              pthread_cond_t *cv);
void miscache__fork_guard_remove(miscache__fork_guard_t *g);

/* ---- codec (codec.c) --------------------------------------------------- */
/* Decode a stored value (any JSON type). NULL and a message on failure. */
json_t *miscache__decode(const char *buf, size_t len, char *err, size_t errlen);
/* json.c: the reader behind miscache__decode; accepts what
 * json_loadb(buf, len, JSON_DECODE_ANY) accepts, and builds the same value. */
json_t *miscache__json_parse(const char *buf, size_t len, char *err,
                             size_t errlen);
/* Encode compact UTF-8 JSON; free with free(). NULL if not encodable. */
char *miscache__encode(const json_t *v, size_t *len);

/* ---- lock scripts (lock.c) -------------------------------------------- */
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

/* The SHA1 of a script's text, as EVALSHA takes it (40 hex digits). */
void miscache__sha1_hex(const char *src, char out[41]);

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

/* ---- clocks (common.c) ---------------------------------------------------- */
/* Now on CLOCK_MONOTONIC, in ms. */
int64_t miscache__mono_ms(void);
/* A condition variable whose timed waits use CLOCK_MONOTONIC, and the
 * absolute time ms from now on that clock for pthread_cond_timedwait. */
void miscache__cond_init_monotonic(pthread_cond_t *cv);
void miscache__deadline_after(struct timespec *ts, int64_t ms);

/* A version-4 UUID text from the handle's generator (seeded from
 * getrandom() once per handle and after fork): unique, not secret; no
 * system call. Lock tokens and queue message ids. */
void miscache__uuid(miscache_t *mc, char out[37]);

/* A port as decimal text (n bytes): 1..65535 only. */
bool miscache__parse_port(const char *s, size_t n, int *port);
/* Whether a host and port a server named (Sentinel, CLUSTER SLOTS,
 * MOVED/ASK) may be connected to: port 1..65535, host 1..255 bytes with no
 * control character or space. false with why. */
bool miscache__peer_addr_ok(const char *host, size_t hostlen, long long port,
                            char *why, size_t whylen);

/* The next number of an xorshift64* generator (state never 0). */
uint64_t miscache__xorshift(uint64_t *state);

/* Decimal text of v into buf (>= 21 bytes, terminated); its length. No
 * locale, no printf. */
size_t miscache__i64toa(char *buf, int64_t v);

/* realloc(p, n * size), NULL (p untouched) when n * size overflows. */
void *miscache__realloc_array(void *p, size_t n, size_t size);

/* ---- the keyspace table (keyspace.c) ----------------------------------- */
miscache_db_t miscache__kf_db(miscache_key_family_id_t f);
/* The family's TTL in ms on this handle (its class, jitter applied). */
int64_t miscache__kf_ttl_ms(miscache_t *mc, miscache_key_family_id_t f);
/* Key (or, with pattern, a SCAN pattern where an id is NULL) of family f
 * from its nids ids into buf (MISCACHE_KEY_BUFSIZE). ERR_KEY with the
 * handle's message (mc may be NULL). */
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

/* ---- time (util) ------------------------------------------------------- */
/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes). */
void miscache__iso8601_now(char *buf, size_t size);

#endif /* MISCACHE_INTERNAL_H */

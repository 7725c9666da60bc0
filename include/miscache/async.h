/*
 * libmiscache — a non-blocking handle for event-loop services (0.4.0,
 * first step: see "What this step covers").
 *
 * A miscache_async_t owns its connections (one; on a Redis Cluster one
 * per master it sends to) and never waits on a call's reply:
 * each call queues its command and returns; the caller's event loop tells
 * the handle when its socket is readable or writable and when its timer
 * fires, and each call's completion callback runs from there, once: with
 * the result, a timeout (the whole call is bounded by the command timeout,
 * as in the blocking API), a lost connection, or MISCACHE_ERR_CANCELLED
 * when the handle is freed first. Calls issued before the loop turns go
 * out in one write (pipelining). A call that returns anything but OK never
 * calls its callback.
 *
 * The loop is reached through miscache_async_loop_t: add/remove read and
 * write interest on a socket, and one timer. adapters/libevent.h and
 * adapters/libuv.h fill it for those loops (a few dozen lines each; write
 * your own the same way).
 *
 * Thread rule: one loop thread per handle; every call, the loop's
 * callbacks and miscache_async_free on that thread.
 *
 * What this version covers: standalone endpoints (redis://, rediss://,
 * unix://), Sentinel (redis+sentinel://) and Redis Cluster
 * (redis+cluster://), every URL setting (namespace, db map, TTLs, timeouts, the breaker, the near
 * cache), and get, set, delete, exists, mget, get_or_load with an
 * asynchronous loader, the typed session get/set/touch, the permission
 * check, the master lists, a page of gift classification, locks and
 * queue enqueue.
 *
 * Connecting: miscache_async_open connects before it returns (its status
 * says why it could not). After a lost connection the next call starts a
 * new connect and returns at once: the loop drives the TCP connect, the
 * TLS handshake and AUTH, the calls queued meanwhile go out once it is
 * done, and the connect timeout bounds it (its calls then fail with
 * ERR_UNAVAILABLE, or ERR_AUTH / ERR_TLS when refused). A host name is
 * resolved on a short-lived thread whose end the loop hears of (an eventfd
 * it watches). Inside the breaker's backoff window calls fail
 * at once. Behind Sentinel the connect first asks the sentinels for the master (and its ROLE), and while
 * calls are made the handle asks them again once a second, as the blocking
 * API does (a forced failover leaves the old master taking writes until it
 * is demoted): that check goes out on the handle's own connection to a
 * sentinel (the next one when it does not answer within half the command
 * timeout) and never holds the loop. When they name a new master, or a
 * reply is READONLY, the calls in flight on the old one fail with
 * ERR_UNAVAILABLE and the next call connects to the new one: that
 * reconnect asks the sentinels for the master and it for its ROLE on the
 * handle's connections too, holding the calls made meanwhile (in order,
 * each within its own deadline) until it is a master; a ROLE that is not
 * master fails them with ERR_UNAVAILABLE. Only the first connect, in
 * miscache_async_open, asks with blocking requests.
 *
 * On a Redis Cluster: open loads the slot map (blocking, within the
 * command timeout); each call's commands are split by slot as the blocking
 * API splits them (an MGET over many masters becomes one MGET per master,
 * merged in order; a transaction's keys must share a slot) and sent on the
 * handle's connection to each master, made in the loop when first used.
 * MOVED and ASK (with ASKING first) are followed at once; TRYAGAIN and
 * CLUSTERDOWN are retried after the blocking API's pauses, kept by the
 * handle's timer, never slept. After a MOVED or a lost node the map is
 * loaded again by a CLUSTER SLOTS on one of the handle's connections (a
 * master's in turn, at most one load per 100 ms), never by a blocking
 * request; calls made meanwhile use the map as it is (a MOVED has
 * corrected its slot already). A call whose parts went
 * to several masters fails as a whole when one part fails (ERR_UNAVAILABLE
 * for a dead master, the first failure's message). Async handles never run
 * invalidations (they fan out over every master's keys: blocking API).
 *
 * Async handles never run
 * invalidations, so there is no pending-invalidation replay on them; batch
 * runs and invalidation events stay blocking (client.h, events.h).
 *
 * The near cache: a call whose value the near cache holds completes before
 * it returns (its callback runs inside the call); a write through the
 * handle drops the key from the store at once, so a read issued after it
 * never sees the old value. miscache_async_open_pool shares a pool's store.
 */
#ifndef MISCACHE_ASYNC_H
#define MISCACHE_ASYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cache.h"
#include "client.h"
#include "gift.h"
#include "lock.h"
#include "master.h"
#include "queue.h"
#include "permissions.h"
#include "session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct miscache_async miscache_async_t;

/* The event loop, as the handle sees it. Every function gets data. */
typedef struct miscache_async_loop {
  void *data;
  /* watch fd for readability / writability, or stop; the fd changes after
   * a reconnect (stop watching the old one first: the handle calls del_* for
   * it before it is closed); on a Redis Cluster several fds are watched at
   * once (one per master): hand each one's readiness to the _fd forms */
  void (*add_read)(void *data, int fd);
  void (*del_read)(void *data, int fd);
  void (*add_write)(void *data, int fd);
  void (*del_write)(void *data, int fd);
  /* call miscache_async_handle_timer once, ms from now (a new call
   * replaces the old); ms < 0 cancels */
  void (*set_timer)(void *data, int64_t ms);
  /* the handle is freed: release what the adapter holds */
  void (*cleanup)(void *data);
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_async_loop_t;

/* Open a handle with opts (NULL: MISCACHE_URL, else the default; the
 * options are copied) and connect it (a cluster: load its slot map). OK,
 * ERR_URL, ERR_NOMEM, ERR_UNAVAILABLE, ERR_AUTH, ERR_TLS; errbuf
 * (optional) says why. */
MISCACHE_EXPORT miscache_status_t
miscache_async_open(const miscache_options_t *opts, miscache_async_t **out,
                    char *errbuf, size_t errbuf_len);
/* The same with a pool's options, sharing its near cache store (one store
 * for the pool's blocking handles and its async handles; the pool must
 * outlive nothing: the store is reference-counted). Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_async_open_pool(miscache_pool_t *pool, miscache_async_t **out,
                         char *errbuf, size_t errbuf_len);
/* Give the handle its loop (copied). Calls made before are queued and go
 * out once the loop is attached. OK or ERR_INVALID. */
MISCACHE_EXPORT miscache_status_t
miscache_async_attach(miscache_async_t *a, const miscache_async_loop_t *loop);
/* The loop's side: socket fd (one the handle asked to watch) is readable
 * / writable, the timer fired. A handle on a Redis Cluster watches one
 * socket per node it talks to; the fd-less forms look at every socket
 * watched for that (fine for one socket, a little more work for several).
 * An fd the handle does not watch (any more) is ignored. The _fd forms
 * were added in 0.4.0 with Cluster support. */
MISCACHE_EXPORT void miscache_async_handle_read_fd(miscache_async_t *a, int fd);
MISCACHE_EXPORT void miscache_async_handle_write_fd(miscache_async_t *a,
                                                    int fd);
MISCACHE_EXPORT void miscache_async_handle_read(miscache_async_t *a);
MISCACHE_EXPORT void miscache_async_handle_write(miscache_async_t *a);
MISCACHE_EXPORT void miscache_async_handle_timer(miscache_async_t *a);
/* Complete every outstanding call with MISCACHE_ERR_CANCELLED, then free.
 * Safe from inside a completion callback (the handle goes once that
 * callback returns). Accepts NULL. */
MISCACHE_EXPORT void miscache_async_free(miscache_async_t *a);
/* Why the last call refused to start; "" if none. Borrowed. */
MISCACHE_EXPORT const char *miscache_async_errmsg(const miscache_async_t *a);
/* Calls queued or waiting for their reply. */
MISCACHE_EXPORT size_t miscache_async_outstanding(const miscache_async_t *a);
/* The handle's figures, read with client.h's functions that take a const
 * miscache_t: miscache_counters_get / _category / _total (hits, misses,
 * errors of its calls), miscache_latency (its calls by command class, from
 * the call to its last reply; a near hit is not timed) and
 * miscache_latency_prometheus. Only for those: the
 * pointer is the handle's, valid until miscache_async_free, and never a
 * handle to call the cache with. The slow-call event of the options' hook
 * fires for async calls too. An async handle's figures are not added to a
 * pool's. NULL for NULL. Added in 0.4.0. */
MISCACHE_EXPORT const miscache_t *
miscache_async_figures(const miscache_async_t *a);

/* Completions. errmsg ("" on success) and value are valid during the
 * callback; value is a new reference (json_decref it) or NULL. */
typedef void (*miscache_async_value_fn)(void *userdata, miscache_status_t st,
                                        json_t *value, const char *errmsg);
typedef void (*miscache_async_done_fn)(void *userdata, miscache_status_t st,
                                       const char *errmsg);
typedef void (*miscache_async_bool_fn)(void *userdata, miscache_status_t st,
                                       bool yes, const char *errmsg);

/* GET key in db: OK with the value, MISCACHE_MISS (value NULL), ERR_DECODE
 * (a stored value that is not JSON: a miss for the caller), or a transport
 * or server status. With the near cache on (the URL's near=...) a near hit
 * calls fn before the call returns; the value is then shared and
 * read-only, as miscache_get's. */
MISCACHE_EXPORT miscache_status_t
miscache_async_get(miscache_async_t *a, miscache_db_t db, const char *key,
                   miscache_async_value_fn fn, void *userdata);
/* SET key in db to value (compact JSON) with the TTL of cls (and the
 * handle's jitter). value is encoded now: the caller may free it at once. */
MISCACHE_EXPORT miscache_status_t
miscache_async_set(miscache_async_t *a, miscache_db_t db, const char *key,
                   const json_t *value, miscache_ttl_class_t cls,
                   miscache_async_done_fn fn, void *userdata);
/* UNLINK key: yes when it was there. */
MISCACHE_EXPORT miscache_status_t
miscache_async_delete(miscache_async_t *a, miscache_db_t db, const char *key,
                      miscache_async_bool_fn fn, void *userdata);
/* EXISTS key. */
MISCACHE_EXPORT miscache_status_t
miscache_async_exists(miscache_async_t *a, miscache_db_t db, const char *key,
                      miscache_async_bool_fn fn, void *userdata);

/* n values read by miscache_async_mget: values[i] a new reference (decref
 * each) or NULL, statuses[i] OK, MISS or ERR_DECODE; both arrays are the
 * handle's and valid during the callback. On a failure st is not OK and
 * every values[i] is NULL. */
typedef void (*miscache_async_values_fn)(void *userdata, miscache_status_t st,
                                         size_t n, json_t *const values[],
                                         const miscache_status_t statuses[],
                                         const char *errmsg);
/* MGET of n keys (1 .. 100,000) of db in one command. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_async_mget(miscache_async_t *a, miscache_db_t db, size_t n,
                    const char *const keys[], miscache_async_values_fn fn,
                    void *userdata);

/* ---- cache-aside with an asynchronous loader --------------------------
 * The loader is called with the request (borrowed for the duration of
 * that call) and a ticket; it answers later, or at once, by calling
 * miscache_async_load_done(ticket, ...) exactly once on the loop thread:
 * OK with value (the reference is taken), MISCACHE_MISS (the record does
 * not exist: nothing is cached), or a failure (ERR_LOADER for the
 * caller; errmsg, optional, says why). A loader that answers at once
 * may complete the call before the call returns. When the handle was
 * freed while the loader worked, the call already completed with
 * ERR_CANCELLED and load_done only frees the ticket (and the value). */
typedef struct miscache_async_load miscache_async_load_t;
typedef void (*miscache_async_load_fn)(void *userdata,
                                       const miscache_load_req_t *req,
                                       miscache_async_load_t *ticket);
MISCACHE_EXPORT void miscache_async_load_done(miscache_async_load_t *ticket,
                                              miscache_status_t st,
                                              json_t *value,
                                              const char *errmsg);
/* A value and where it came from (MISCACHE_SOURCE_*). */
typedef void (*miscache_async_source_fn)(void *userdata, miscache_status_t st,
                                         json_t *value,
                                         miscache_source_t source,
                                         const char *errmsg);
/* Cached value of key, else load -> store with the TTL of cls -> value,
 * as miscache_get_or_load_ex: a stored value that is not JSON is a miss
 * the loader replaces; with the server failing, the loader's value comes
 * back as MISCACHE_SOURCE_UNCACHED (fail-open). The store's reply is
 * awaited before fn runs (LOADED or UNCACHED). Calls of one handle that
 * miss the same key while its loader works share that load (the loader is
 * asked once; each call gets its own copy of the value); other handles
 * and processes are not joined (the blocking API's stampede lease is not
 * taken by async handles). Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_async_get_or_load(
    miscache_async_t *a, miscache_db_t db, const char *key,
    miscache_ttl_class_t cls, miscache_async_load_fn load, void *load_userdata,
    miscache_async_source_fn fn, void *userdata);

/* ---- typed calls ------------------------------------------------------ */

/* A session read by miscache_async_session_get: *s is the handle's during
 * the callback (cleared after it); keep it by copying the struct and
 * zeroing *s (the strings and JSON move with it). */
typedef void (*miscache_async_session_fn)(void *userdata, miscache_status_t st,
                                          miscache_session_t *s,
                                          const char *errmsg);
/* miscache_session_get / _set / _touch, asynchronously. get: OK, MISS,
 * ERR_DECODE (a value that is no session: a miss for the caller). set: s
 * is encoded now (borrowed for the call only). touch: last_activity set to
 * now and the TTL restarted, members other programs stored kept; the read
 * and the write are one compare-and-set on the server (a script that
 * writes only if the value is still the one read), retried up to 16 times
 * when another client wrote in between, then ERR_BUSY; MISS if there is
 * no session. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_async_session_get(miscache_async_t *a, int64_t user_id,
                           miscache_async_session_fn fn, void *userdata);
MISCACHE_EXPORT miscache_status_t
miscache_async_session_set(miscache_async_t *a, const miscache_session_t *s,
                           miscache_async_done_fn fn, void *userdata);
MISCACHE_EXPORT miscache_status_t
miscache_async_session_touch(miscache_async_t *a, int64_t user_id,
                             miscache_async_done_fn fn, void *userdata);

/* miscache_permissions_check_ex, asynchronously: yes = allowed. A menu
 * absent from the map denies; MISS when the loader has no permissions for
 * the user. With the near cache on and the map in it, fn runs before the
 * call returns (no server, no loop turn). Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_async_permissions_check(
    miscache_async_t *a, int64_t user_id, const char *menu,
    miscache_perm_t perm, miscache_async_load_fn load, void *load_userdata,
    miscache_async_bool_fn fn, void *userdata);

/* miscache_master_get_or_load_ex / _products_get_or_load_ex,
 * asynchronously: value a JSON array (anything else cached is a miss the
 * loader replaces; a loader value that is no array is ERR_LOADER). With
 * the near cache on, a hit completes inside the call. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_async_master_get_or_load(
    miscache_async_t *a, miscache_master_list_t l, miscache_async_load_fn load,
    void *load_userdata, miscache_async_source_fn fn, void *userdata);
MISCACHE_EXPORT miscache_status_t miscache_async_master_products_get_or_load(
    miscache_async_t *a, int64_t category_id, miscache_async_load_fn load,
    void *load_userdata, miscache_async_source_fn fn, void *userdata);

/* A lock taken by miscache_async_lock_acquire: on OK a new lock (the
 * callee's: miscache_lock_free it, after releasing), else NULL. */
typedef void (*miscache_async_lock_fn)(void *userdata, miscache_status_t st,
                                       miscache_lock_t *lock,
                                       const char *errmsg);
/* miscache_lock_acquire asynchronously: one SET NX PX (and a GET in the
 * same write); ERR_LOCKED when another owner holds it, the message naming
 * the holder and since when, as the blocking call's. When the reply is lost (timeout, connection
 * gone) the lock may have been taken: the handle then releases it (only
 * while it holds this call's token) without a callback. */
MISCACHE_EXPORT miscache_status_t miscache_async_lock_acquire(
    miscache_async_t *a, miscache_db_t db, const char *key, int64_t ttl_ms,
    const char *locked_by, const char *batch_id, miscache_async_lock_fn fn,
    void *userdata);
/* miscache_lock_release asynchronously: OK, or ERR_NOT_OWNER when it
 * expired (and maybe another owner holds it now). lock stays the
 * caller's and must live until fn ran (free it after). */
MISCACHE_EXPORT miscache_status_t
miscache_async_lock_release(miscache_async_t *a, miscache_lock_t *lock,
                            miscache_async_done_fn fn, void *userdata);
/* miscache_lock_extend asynchronously: the lock's time set to ttl_ms
 * (> 0) while it still holds its token; else ERR_NOT_OWNER. lock lives
 * until fn ran. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_async_lock_extend(miscache_async_t *a, miscache_lock_t *lock,
                           int64_t ttl_ms, miscache_async_done_fn fn,
                           void *userdata);

/* The stream entry ids of an enqueue (n of them, the handle's, valid
 * during the callback); n 0 and ids NULL on a failure. */
typedef void (*miscache_async_ids_fn)(void *userdata, miscache_status_t st,
                                      size_t n,
                                      const char (*ids)[MISCACHE_QUEUE_ID_SIZE],
                                      const char *errmsg);
/* miscache_queue_enqueue asynchronously: n (1 .. 1,000,000) messages and
 * the counted trim in one pipeline; bodies are encoded now (borrowed for
 * the call only). Refused at the call: ERR_INVALID, ERR_KEY (bad name or
 * msg id), ERR_ENCODE. Not resent after a lost connection (a message may
 * have been added: the msg ids tell consumers). Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_async_queue_enqueue(
    miscache_async_t *a, const char *name, size_t n,
    const json_t *const bodies[], const char *const msg_ids[],
    const miscache_queue_opts_t *opts, miscache_async_ids_fn fn,
    void *userdata);

/* The end of miscache_async_gift_classify_page: st as
 * miscache_gift_classify_bulk returns it, from_cache the lines answered by
 * the cache. */
typedef void (*miscache_async_classify_fn)(void *userdata, miscache_status_t st,
                                           size_t from_cache,
                                           const char *errmsg);
/* miscache_gift_classify_bulk asynchronously: one page of n products
 * (1 .. 100,000): one MGET, the engine for the lines not cached (or not
 * decodable: a miss the engine's result replaces), then one pipeline of
 * SET PX for those, awaited before fn runs. The results equal the
 * blocking call's: out[i] for products[i] (clear each), statuses
 * (optional) each line's status, a line whose product code makes no key
 * ERR_KEY / ERR_INVALID and a zeroed out[i]. Fail-open: with the read
 * failing the engine answers every line and nothing is stored; a failed
 * store leaves the results (the next run recomputes those lines). Freed
 * before the MGET's reply: ERR_CANCELLED, out cleared. e, products (and
 * their strings), out and statuses are borrowed until fn has run. When no
 * line makes a key, fn runs before the call returns. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_async_gift_classify_page(
    miscache_async_t *a, int64_t company, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *products, size_t n,
    miscache_gift_classification_t *out, miscache_status_t *statuses,
    miscache_async_classify_fn fn, void *userdata);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_ASYNC_H */

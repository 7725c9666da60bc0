/*
 * libmiscache — a non-blocking handle for event-loop services (0.4.0,
 * first step: see "What this step covers").
 *
 * A miscache_async_t owns one connection and never blocks on the server:
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
 * What this step covers: standalone endpoints (redis://, rediss://,
 * unix://; Sentinel and Cluster URLs are refused with ERR_INVALID), every
 * URL setting (namespace, db map, TTLs, timeouts, the breaker), and get,
 * set, delete and exists. A connect (at open, and again after a lost
 * connection, on the next call) still blocks the loop for at most the
 * connect timeout; inside the breaker's backoff window calls fail at once.
 * No near cache and no pending-invalidation replay on async handles yet.
 */
#ifndef MISCACHE_ASYNC_H
#define MISCACHE_ASYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct miscache_async miscache_async_t;

/* The event loop, as the handle sees it. Every function gets data. */
typedef struct miscache_async_loop {
  void *data;
  /* watch fd for readability / writability, or stop; the fd changes after
   * a reconnect (stop watching the old one first: the handle calls del_* for
   * it before it is closed) */
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
 * options are copied) and connect it. OK, ERR_INVALID (a Sentinel or
 * Cluster endpoint), ERR_URL, ERR_NOMEM, ERR_UNAVAILABLE, ERR_AUTH,
 * ERR_TLS; errbuf (optional) says why. */
MISCACHE_EXPORT miscache_status_t
miscache_async_open(const miscache_options_t *opts, miscache_async_t **out,
                    char *errbuf, size_t errbuf_len);
/* Give the handle its loop (copied). Calls made before are queued and go
 * out once the loop is attached. OK or ERR_INVALID. */
MISCACHE_EXPORT miscache_status_t
miscache_async_attach(miscache_async_t *a, const miscache_async_loop_t *loop);
/* The loop's side: the socket is readable / writable, the timer fired. */
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
 * or server status. */
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

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_ASYNC_H */

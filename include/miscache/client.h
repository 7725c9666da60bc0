/*
 * libmiscache — options, client handle, counters and the handle pool.
 *
 * Thread rule: a miscache_t is used by one thread at a time (it owns one
 * connection and a per-handle error message). Threaded services take handles
 * from a miscache_pool_t, which is the thread-safe entry point.
 *
 * fork(): each connection remembers the pid that opened it. A child that
 * uses a handle (or pool) it inherited never touches the parent's
 * connection: the child's copy is closed without any I/O and the child
 * opens its own on first use. Parent and child may both go on using the
 * handle. Pending invalidations are copied into the child like any memory. 
 */
#ifndef MISCACHE_CLIENT_H
#define MISCACHE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct miscache_options miscache_options_t;
typedef struct miscache miscache_t;
typedef struct miscache_pool miscache_pool_t;

/* Size of a buffer that always holds a full error message. */
#define MISCACHE_ERRMSG_SIZE 512

/* ------------------------------------------------------------------------
 * Options. Every setter copies its input; the options object may be freed
 * or reused right after miscache_open(). Not thread-safe.
 * ---------------------------------------------------------------------- */

/* New options with the docs/strategy.md defaults: db numbers 0..5, the 17 TTL
 * classes, no namespace, no jitter, SCAN COUNT 1000, connect and command
 * timeouts 1000 ms, eager connect, endpoint unset (see miscache_open).
 * Returns NULL only when out of memory. Free with miscache_options_free(). */
MISCACHE_EXPORT miscache_options_t *miscache_options_new(void);
/* Accepts NULL. */
MISCACHE_EXPORT void miscache_options_free(miscache_options_t *opts);

/* Server from a URL. Replaces any endpoint and credentials set before.
 * MISCACHE_ERR_URL if malformed (nothing is changed then; see
 * miscache_options_errmsg). Forms:
 *   redis://[[user]:password@]host[:port]       (IPv6 host in brackets,
 *                                                default port 6379)
 *   rediss://...                                TLS, same form
 *   redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER
 *   rediss+sentinel://...                       Sentinel, TLS to sentinels
 *                                                and data nodes
 *   redis+cluster://[[user]:password@]host[:port][,host[:port]...]
 *   rediss+cluster://...                        Redis Cluster (seed nodes)
 *   unix:///path/to/socket[?params]
 * user and password (those of the data nodes) are percent-decoded; an
 * unencoded '@' in them ends at the last '@'. Sentinels default to port
 * 26379. Query parameters (values percent-decoded, '@' written %40):
 *   cacert=FILE  CA bundle (PEM) for TLS; without it, the system trust store
 *   cert=FILE&key=FILE  client certificate and key (mutual TLS)
 *   sentinel_user=U&sentinel_password=P  AUTH for the sentinels
 * and every deployment setting (namespace=, hash_tags=, db_cache=,
 * ttl_session=, near=, ...: docs/configuration.md lists them all). The
 * option setters below win over the URL's parameters, whether called
 * before or after this. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_url(miscache_options_t *opts, const char *url);
/* The effective settings a handle opened with opts would use: the
 * endpoint (the URL set, else MISCACHE_URL, else redis://127.0.0.1:6379;
 * passwords shown as "***") and every URL parameter's value after the
 * setters and the URL are combined (docs/configuration.md), one
 * "name=value" line each, in a fixed order. opts NULL: the defaults. Writes
 * at most size bytes, always terminated; *len_out (optional) gets the
 * length the whole text needs, without the NUL (buf NULL and size 0 ask
 * only for it). OK; ERR_INVALID when it does not fit (buf then holds the
 * start); ERR_URL or ERR_INVALID when the URL or the settings are wrong
 * (buf then holds why); ERR_NOMEM. Connects to nothing. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_options_describe(const miscache_options_t *opts, char *buf,
                          size_t size, size_t *len_out);
/* The same for options holding only url (NULL: MISCACHE_URL, else the
 * default), as `miscache config` prints it. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_url_describe(const char *url,
                                                        char *buf, size_t size,
                                                        size_t *len_out);
/* Why the last miscache_options_set_url() failed; "" if it did not.
 * Borrowed, lives with opts. */
MISCACHE_EXPORT const char *
miscache_options_errmsg(const miscache_options_t *opts);
/* TCP endpoint. port 1..65535. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_tcp(miscache_options_t *opts, const char *host, int port);
/* Unix socket endpoint. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_unix(miscache_options_t *opts, const char *path);
/* AUTH credentials: password alone (user NULL or "") sends AUTH password;
 * with a user, AUTH user password (Redis 6+ ACL). password NULL clears. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_auth(miscache_options_t *opts, const char *user,
                          const char *password);
/* TLS (also turned on by a rediss:// URL): cacert a PEM CA bundle (NULL:
 * the system trust store), cert and key the client certificate and its key
 * for servers that ask for one (both or neither). Files are read by
 * miscache_open(), which fails with MISCACHE_ERR_TLS naming the file when
 * one is unreadable. The server's certificate is verified, and must name
 * the host of the endpoint (DNS name, or IP address when the host is one);
 * the host goes out as SNI. Not with a unix socket. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_tls(miscache_options_t *opts, const char *cacert,
                         const char *cert, const char *key);
/* true: do NOT verify the server's certificate or name. For tests against
 * throw-away certificates only: anyone on the path can then read and change
 * the traffic. Off by default. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_tls_insecure_skip_verify(miscache_options_t *opts,
                                              bool skip);
/* AUTH for the sentinels of a redis+sentinel:// endpoint, when it differs
 * from the data nodes' (password alone, or ACL user and password; password
 * NULL clears). */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_sentinel_auth(miscache_options_t *opts, const char *user,
                                   const char *password);
/* Key format for Redis Cluster: true writes the company id of every
 * company-scoped key (batch config, status, history, lock, fence; gift
 * rules, classification, analytics, master; the classification lock) in
 * braces, e.g. "batch:lock:{7}" and "gift:classification:P-1:{7}", so one
 * company's keys share a cluster slot: the fenced batch scripts (which
 * touch several of them at once) can run, and one company's invalidation
 * and bulk reads go to one node. Off by default; every client of the cache
 * (the Python app too) must use the same format: see docs/keys.md. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_hash_tags(miscache_options_t *opts, bool on);
/* Stampede protection for miscache_get_or_load and the typed
 * *_get_or_load calls (see docs/stampede.md). */
typedef struct miscache_stampede {
  /* In the process: threads (of a pool, or any handles) that miss the same
   * key at once call the loader once; the others wait for its value, at
   * most wait_ms, then load themselves. Default on, wait_ms 0 = the
   * command timeout. */
  bool single_flight;
  int wait_ms;
  /* Across processes, for the categories whose bit (1u << category) is
   * set: the first process to miss takes a recompute lease (SET NX PX
   * lease_ms on "stampede:lease:<key>", released with its token); the
   * others poll the value every 10 ms instead of loading, for at most
   * lease_ms, then load themselves (a crashed holder costs at most that).
   * Default: no category, lease_ms 2000. */
  uint32_t lease_categories;
  int lease_ms;
  /* Early refresh ("XFetch") for the categories whose bit is set: a hit
   * whose key expires in less than early_ms * -ln(random) is reloaded by
   * that caller (one caller: it takes the lease) and stored with a fresh
   * TTL, so a key read continuously never misses at its expiry. Costs a
   * PTTL with each GET of those categories. Set early_ms to about the
   * loader's duration: with r reads per ms the reload comes about
   * early_ms * ln(r * early_ms) ms before expiry (a larger early_ms reloads
   * sooner, so more often). Default: no category, early_ms 100. */
  uint32_t early_categories;
  int early_ms;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_stampede_t;
/* Copies s. NULL restores the defaults. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_stampede(miscache_options_t *opts,
                              const miscache_stampede_t *s);
/* Near cache (see docs/near-cache.md): an in-process copy of values of
 * chosen key families, kept correct by the server (CLIENT TRACKING in
 * broadcast mode on a dedicated connection per pool or handle, drained by
 * a background thread). A hit costs no system call. Default off. */
typedef struct miscache_near {
  bool enabled;
  /* Key families cached, bit (1ull << MISCACHE_KF_x); 0 = the default set:
   * permissions, the four master lists, batch config, gift rules and gift
   * master. Lock families and the batch fence are never cached (refused). */
  uint64_t families;
  size_t max_entries; /* 0 = 10000 */
  size_t max_bytes;   /* JSON text + key bytes; 0 = 64 MiB. The decoded
                         values take about 9 to 15 times their text
                         (docs/near-cache.md). */
  /* The invalidation connection is sent a PING every ping_ms; entries are
   * served only while a PING sent less than 2 * ping_ms ago was answered,
   * and everything is dropped when one is not. 0 = 100; 10..60000. */
  int ping_ms;
  /* false (default): a hit hands out the cached value itself (a new
   * reference): treat values of near-cached families as read-only and
   * json_decref them as usual. true: every hit is a deep copy you may
   * change (slower). */
  bool copy_values;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_near_t;
/* Copies n (NULL: off). ERR_INVALID for a lock family or bad bounds. Works
 * on standalone, Sentinel and Cluster (one invalidation link per master;
 * docs/near-cache.md). */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_near_cache(miscache_options_t *opts,
                                const miscache_near_t *n);
/* Outage breaker: after a failed connect a node is "down" for a backoff
 * window that starts at min_ms and doubles with each further failure up to
 * max_ms (each window drawn between half and all of its length). Inside it
 * calls fail at once with MISCACHE_ERR_UNAVAILABLE (or the AUTH/TLS status
 * of the last attempt) without touching the network; the first call after
 * it tries to connect. Defaults 100 and 5000; 1 <= min_ms <= max_ms <=
 * 600000. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_backoff(miscache_options_t *opts, int min_ms, int max_ms);

/* Defaults of the reply limits below. */
#define MISCACHE_DEFAULT_MAX_ELEMENTS 1048576u              /* per array */
#define MISCACHE_DEFAULT_MAX_BULK (64u * 1024 * 1024)       /* one string */
#define MISCACHE_DEFAULT_MAX_REPLY_BYTES (256u * 1024 * 1024) /* one reply */
/* Limits on every reply a server (or a proxy in front of it) sends, so that
 * none can make the library take more memory or time than it should:
 * elements of one array (1 .. 2^31; default 1,048,576), bytes of one bulk
 * string (1 KiB .. 4 GiB; default 64 MiB) and memory of one whole reply
 * (its strings plus about 48 bytes per element; 4 KiB .. 16 GiB, at least
 * max_bulk; default 256 MiB). 0 keeps a limit's default. Fixed besides:
 * arrays nest at most 16 deep, a status or error line is at most 1 MiB.
 * A reply over a limit fails the call with MISCACHE_ERR_REPLY and drops
 * the connection (its next call reconnects). Added in 0.3.0. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_reply_limits(miscache_options_t *opts,
                                  size_t max_elements, size_t max_bulk,
                                  size_t max_reply_bytes);
/* The longest one SCAN loop may take (miscache_invalidate, miscache_scan,
 * the event helpers, each master of a cluster in turn), in ms: 1 ..
 * 3,600,000, default 30,000. Each of its round trips is also bounded by
 * the command timeout. A loop past it, or a server whose cursor comes back
 * to one it gave already, fails with MISCACHE_ERR_UNAVAILABLE or
 * MISCACHE_ERR_REPLY (an invalidation then stays pending). Added in
 * 0.3.0. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_scan_timeout(miscache_options_t *opts, int ms);
/* Timeouts in milliseconds, > 0. The connect timeout bounds a connect. The
 * command timeout bounds a whole call, not each read: however slowly a
 * server sends its reply (or if it hangs), a call returns
 * MISCACHE_ERR_UNAVAILABLE once the command timeout has passed since it
 * started (plus at most one connect timeout when it had to reconnect), and
 * a signal (EINTR) does not restart the wait. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_connect_timeout(miscache_options_t *opts, int ms);
MISCACHE_EXPORT miscache_status_t
miscache_options_set_command_timeout(miscache_options_t *opts, int ms);
/* Physical db number (0..15 on a default server) for a logical database. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_db(miscache_options_t *opts, miscache_db_t db, int number);
/* TTL of a class in seconds (> 0). */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_ttl(miscache_options_t *opts, miscache_ttl_class_t cls,
                         int64_t seconds);
/* Random spread of every written TTL, +-percent (0..50; 0 = off, default). */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_ttl_jitter(miscache_options_t *opts, unsigned percent);
/* Namespace put in front of every key and pattern, e.g. "mis:" (use your own
 * separator). Letters, digits and "_-.:" only, at most 64 bytes; NULL or ""
 * clears it. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_namespace(miscache_options_t *opts, const char *ns);
/* COUNT hint for SCAN during invalidation (1..1000000, default 1000) and
 * how many keys one UNLINK carries (1..100000, default 1000). */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_scan(miscache_options_t *opts, unsigned scan_count,
                          unsigned unlink_batch);
/* Most pending invalidations a handle (or a pool, for all its handles)
 * keeps: 1..1000000, default 1024. See miscache_pending_invalidations(). */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_pending_max(miscache_options_t *opts, unsigned max);
/* true: miscache_open() does not connect; the first call does. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_lazy_connect(miscache_options_t *opts, bool lazy);

/* ------------------------------------------------------------------------
 * Events: what the library does, as it happens (docs/events.md).
 * ---------------------------------------------------------------------- */
typedef enum miscache_event_kind {
  MISCACHE_EV_CONNECT = 0,        /* a connection opened (node, duration) */
  MISCACHE_EV_CONNECT_FAILED = 1, /* a connect failed (node, message) */
  MISCACHE_EV_DISCONNECT = 2,     /* a connection was lost or dropped */
  MISCACHE_EV_BREAKER_OPEN = 3,   /* a node is down: calls fail at once for
                                     a backoff window (duration: its ms) */
  MISCACHE_EV_BREAKER_CLOSED = 4, /* a down node answered again (count:
                                     the failed connects before) */
  MISCACHE_EV_FAILOVER = 5,       /* Sentinel: the master is now node */
  MISCACHE_EV_SLOTS_RELOADED = 6, /* Cluster: slot map loaded (count:
                                     masters) */
  MISCACHE_EV_REDIRECT = 7,       /* Cluster: MOVED or ASK followed */
  MISCACHE_EV_NEAR_CONFIRMED = 8, /* near cache: tracking confirmed, entries
                                     may be served */
  MISCACHE_EV_NEAR_LOST = 9,      /* near cache: link lost or unconfirmed,
                                     or a flush: its store was dropped
                                     (count: entries dropped) */
  MISCACHE_EV_PENDING_KEPT = 10,  /* an invalidation's outcome is unknown:
                                     kept pending (count: pending now;
                                     message: its key or pattern) */
  MISCACHE_EV_PENDING_REPLAYED = 11, /* pending invalidations replayed
                                        (count) */
  MISCACHE_EV_LOCK_LOST = 12,     /* a held lock was found gone or taken
                                     (message: its key) */
  MISCACHE_EV_SLOW_CALL = 13      /* a call took longer than the slow-call
                                     threshold (message: command and key
                                     family, never a value; duration) */
} miscache_event_kind_t;
#define MISCACHE_EVENT_KIND_COUNT 14

typedef struct miscache_event {
  miscache_event_kind_t kind;
  const char *node;    /* "host:port", "unix:/path" or "" */
  int64_t duration_us; /* what the kind says; 0 when none */
  uint64_t count;      /* what the kind says; 0 when none */
  const char *message; /* never a password or a value; never NULL */
  /* Identical events (kind, node and message) are delivered at most once a
   * second per hook: how many were dropped since the last one delivered. */
  uint64_t suppressed;
  uint64_t reserved_[4]; /* room to grow without an ABI break */
} miscache_event_t;
/* Called from whichever thread the event happens on: a caller's thread, or
 * the near cache's background thread. ev and its strings are borrowed for
 * the call. The hook must be thread-safe, must not block for long and must
 * not call the library with the handle that raised it. */
typedef void (*miscache_event_fn)(void *userdata, const miscache_event_t *ev);
/* Set the event hook (NULL: none, the default). Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_event_hook(miscache_options_t *opts, miscache_event_fn fn,
                                void *userdata);
/* Calls slower than ms (0: never, the default; 0..3600000) raise
 * MISCACHE_EV_SLOW_CALL. Also the URL's slow_call_ms. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_options_set_slow_call(miscache_options_t *opts, int ms);
/* "connect", "connect_failed", ...; NULL out of range. Static. */
MISCACHE_EXPORT const char *miscache_event_kind_name(miscache_event_kind_t k);

/* ------------------------------------------------------------------------
 * Handle
 * ---------------------------------------------------------------------- */

/* Open a handle. opts may be NULL (all defaults). Endpoint: the one set in
 * opts, else the MISCACHE_URL environment variable, else
 * redis://127.0.0.1:6379. Unless lazy connect is set, connects and
 * authenticates now.
 * On success *out is a new handle (free with miscache_free()). On failure
 * *out is NULL and, when errbuf is not NULL, errbuf receives a message of at
 * most errbuf_len bytes (MISCACHE_ERRMSG_SIZE always suffices).
 * Statuses: OK, ERR_INVALID, ERR_URL (bad MISCACHE_URL), ERR_NOMEM,
 * ERR_UNAVAILABLE (connect failed or timed out), ERR_AUTH, ERR_TLS (a
 * certificate not trusted, expired or for another host, a handshake
 * refused, or a certificate file that cannot be read). */
MISCACHE_EXPORT miscache_status_t miscache_open(const miscache_options_t *opts,
                                                miscache_t **out, char *errbuf,
                                                size_t errbuf_len);
/* miscache_open() with options holding only this URL (NULL = as above). */
MISCACHE_EXPORT miscache_status_t miscache_open_url(const char *url,
                                                    miscache_t **out,
                                                    char *errbuf,
                                                    size_t errbuf_len);
/* Close the connection and free the handle. Accepts NULL. */
MISCACHE_EXPORT void miscache_free(miscache_t *mc);

/* Message describing the last failed call on this handle (names what failed
 * and carries the Redis error text where there was one); "" if none yet.
 * Borrowed: valid until the next call on the handle. */
MISCACHE_EXPORT const char *miscache_errmsg(const miscache_t *mc);

/* Pending invalidations: a delete or pattern invalidation (miscache_delete,
 * miscache_invalidate and every events.h helper) whose outcome is unknown
 * (timeout, lost connection, server error) is kept in memory, shared by the
 * handles of a pool. While it is pending, reads of the keys it covers skip
 * the cache (MISS, or the loader with MISCACHE_SOURCE_UNCACHED), and each
 * handle replays it before it sends anything else, until it succeeds. The
 * call that failed returns its error, or MISCACHE_ERR_PENDING_FULL when the
 * list was full and the invalidation could NOT be kept (then the stale keys
 * live until their TTL). Pending invalidations live in the process's
 * memory: a crash or exit loses them, and their keys then expire by TTL.
 * Returns how many are pending now (0 for NULL). Thread-safe. */
MISCACHE_EXPORT size_t miscache_pending_invalidations(const miscache_t *mc);
/* Round trip to the server (PING). OK or a transport status. */
MISCACHE_EXPORT miscache_status_t miscache_ping(miscache_t *mc);

/* Physical db number used for a logical database; -1 if out of range. */
MISCACHE_EXPORT int miscache_db_number(const miscache_t *mc, miscache_db_t db);
/* TTL seconds configured for a class on this handle; 0 if out of range. */
MISCACHE_EXPORT int64_t miscache_ttl_seconds(const miscache_t *mc,
                                             miscache_ttl_class_t cls);
/* Namespace of this handle ("" if none). Borrowed, lives with the handle. */
MISCACHE_EXPORT const char *miscache_namespace(const miscache_t *mc);

/* ------------------------------------------------------------------------
 * Counters: per handle and per logical db. A read that finds a value is a
 * hit; a read that finds nothing, or a value that does not decode, is a
 * miss; any call that fails (transport, server, decode) counts an error.
 * ---------------------------------------------------------------------- */
typedef struct miscache_counters {
  uint64_t hits;
  uint64_t misses;
  uint64_t errors;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_counters_t;

MISCACHE_EXPORT miscache_status_t
miscache_counters_get(const miscache_t *mc, miscache_db_t db,
                      miscache_counters_t *out);
/* Categories: the first segment of the logical key. */
typedef enum miscache_category {
  MISCACHE_CAT_SESSION = 0,
  MISCACHE_CAT_PERMISSIONS = 1,
  MISCACHE_CAT_MASTER = 2,
  MISCACHE_CAT_STATS = 3,
  MISCACHE_CAT_TEMP = 4,
  MISCACHE_CAT_BATCH = 5,
  MISCACHE_CAT_GIFT = 6,
  MISCACHE_CAT_LOCK = 7,
  MISCACHE_CAT_OTHER = 8
} miscache_category_t;
#define MISCACHE_CATEGORY_COUNT 9

/* "session", "permissions", ... "other"; NULL if out of range. */
MISCACHE_EXPORT const char *miscache_category_name(miscache_category_t cat);
/* Counters of one key category on this handle. */
MISCACHE_EXPORT miscache_status_t
miscache_counters_category(const miscache_t *mc, miscache_category_t cat,
                           miscache_counters_t *out);

/* ------------------------------------------------------------------------
 * Latency: every call that goes to the server, timed from the first byte
 * written to the last reply read (a near-cache hit is not timed), in
 * histograms per command class. Added in 0.4.0.
 * ---------------------------------------------------------------------- */
typedef enum miscache_cmd_class {
  MISCACHE_CMD_READ = 0,   /* GET, EXISTS, PTTL, ... one key */
  MISCACHE_CMD_WRITE = 1,  /* SET, UNLINK, INCRBY, XADD, ... one key */
  MISCACHE_CMD_MULTI = 2,  /* MGET, several keys or a pipeline of commands */
  MISCACHE_CMD_SCRIPT = 3, /* EVAL, EVALSHA: locks, fenced writes */
  MISCACHE_CMD_SCAN = 4,   /* SCAN steps of invalidations and scans */
  MISCACHE_CMD_OTHER = 5   /* PING, INFO, CLIENT, ... */
} miscache_cmd_class_t;
#define MISCACHE_CMD_CLASS_COUNT 6
/* Buckets: upper bounds 50 us, 100 us, 250 us, 500 us, 1 ms, 2.5 ms, 5 ms,
 * 10 ms, 25 ms, 50 ms, 100 ms, 250 ms, 500 ms, 1 s, 2.5 s, then +Inf. */
#define MISCACHE_LATENCY_BUCKETS 16
typedef struct miscache_latency {
  /* calls whose duration d fell in bucket i: bound(i-1) < d <= bound(i)
   * (not cumulative) */
  uint64_t buckets[MISCACHE_CMD_CLASS_COUNT][MISCACHE_LATENCY_BUCKETS];
  uint64_t calls[MISCACHE_CMD_CLASS_COUNT];
  uint64_t total_us[MISCACHE_CMD_CLASS_COUNT]; /* sum of the durations */
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_latency_t;
/* Upper bound of bucket i in seconds; INFINITY for the last; -1 out of
 * range. */
MISCACHE_EXPORT double miscache_latency_bound(unsigned i);
/* "read", "write", "multi", "script", "scan", "other"; NULL out of range. */
MISCACHE_EXPORT const char *miscache_cmd_class_name(miscache_cmd_class_t c);
/* This handle's histograms since it was opened (or reset with
 * miscache_counters_reset, or given back to its pool). Copies at most size
 * bytes (sizeof *out; an older, smaller struct gets its part). */
MISCACHE_EXPORT miscache_status_t
miscache_latency(const miscache_t *mc, miscache_latency_t *out, size_t size);
/* The pool's: every call of its handles, counted when each is released.
 * Thread-safe. */
MISCACHE_EXPORT miscache_status_t
miscache_pool_latency(miscache_pool_t *pool, miscache_latency_t *out,
                      size_t size);
/* Prometheus text of l: the histogram miscache_command_duration_seconds
 * with a label class, le buckets, _sum and _count. Writes at most len
 * bytes (always terminated when len > 0); returns the length the whole
 * text needs. */
MISCACHE_EXPORT size_t miscache_latency_prometheus(const miscache_latency_t *l,
                                                   char *buf, size_t len);

/* Sum over all dbs. */
MISCACHE_EXPORT miscache_status_t
miscache_counters_total(const miscache_t *mc, miscache_counters_t *out);
MISCACHE_EXPORT void miscache_counters_reset(miscache_t *mc);

/* ------------------------------------------------------------------------
 * Pool: a fixed-size, thread-safe set of handles for threaded services.
 * Handles are opened lazily (lazy connect) on first acquire.
 * ---------------------------------------------------------------------- */

/* New pool of at most size (1..1024) handles opened with opts (copied).
 * On failure *out is NULL and errbuf (optional) tells why. */
MISCACHE_EXPORT miscache_status_t
miscache_pool_new(const miscache_options_t *opts, unsigned size,
                  miscache_pool_t **out, char *errbuf, size_t errbuf_len);
/* Frees the pool and all handles. Every acquired handle must have been
 * released first; in a child after fork(), the handles the parent's other
 * threads had borrowed (they can never come back) are freed as well.
 * Accepts NULL. */
MISCACHE_EXPORT void miscache_pool_free(miscache_pool_t *pool);
/* Borrow a handle, waiting up to timeout_ms (0 = do not wait, <0 = forever)
 * for one to be free. The handle belongs to the caller's thread until
 * miscache_pool_release(). OK, ERR_BUSY, ERR_NOMEM. Thread-safe. */
MISCACHE_EXPORT miscache_status_t miscache_pool_acquire(miscache_pool_t *pool,
                                                        int timeout_ms,
                                                        miscache_t **out);
/* Give a handle back. Every per-borrow setting (dry run, error message)
 * is reset, so the next borrower gets a handle as new; its counters go into
 * the pool's totals. OK; ERR_INVALID (and nothing happens) for NULL, a
 * handle this pool did not open, or one already released. Thread-safe. */
MISCACHE_EXPORT miscache_status_t miscache_pool_release(miscache_pool_t *pool,
                                                        miscache_t *mc);
/* Counters for one db summed over every call made through the pool's
 * handles, counted when each handle is released. Thread-safe. */
MISCACHE_EXPORT miscache_status_t
miscache_pool_counters(miscache_pool_t *pool, miscache_db_t db,
                       miscache_counters_t *out);
/* The same per key category. Thread-safe. */
MISCACHE_EXPORT miscache_status_t
miscache_pool_counters_category(miscache_pool_t *pool, miscache_category_t cat,
                                miscache_counters_t *out);
/* Pending invalidations shared by the pool's handles (see
 * miscache_pending_invalidations). Thread-safe. */
MISCACHE_EXPORT size_t
miscache_pool_pending_invalidations(const miscache_pool_t *pool);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_CLIENT_H */

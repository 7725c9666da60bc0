/* The base layer (src/base): pure code with no handle and no I/O, on which
 * every other layer stands: URLs and endpoints, options, key building and
 * the keyspace table, the JSON reader and writer, payload tables, clocks,
 * fork guards. A base file includes this header and nothing of the layers
 * above (docs/design.md, "Layers"). Not installed. */
#ifndef MISCACHE_BASE_H
#define MISCACHE_BASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "miscache/miscache.h"

#define MISCACHE__NS_MAX 64

/* ---- deployment settings (settings.c) ---------------------------------- */
/* Every setting the URL's query can carry, one bit each: the URL parser
 * records which it saw (miscache__endpoint_t.set, values in .val), each
 * option setter which it set (miscache_options_t.set), and a setter wins. */
typedef enum {
  MISCACHE__SET_NAMESPACE,
  MISCACHE__SET_HASH_TAGS,
  MISCACHE__SET_CONNECT_TIMEOUT,
  MISCACHE__SET_COMMAND_TIMEOUT,
  MISCACHE__SET_DB_SESSION, /* .. DB_GIFT: in miscache_db_t order */
  MISCACHE__SET_DB_CACHE,
  MISCACHE__SET_DB_TEMP,
  MISCACHE__SET_DB_QUEUE,
  MISCACHE__SET_DB_BATCH,
  MISCACHE__SET_DB_GIFT,
  MISCACHE__SET_NEAR,
  MISCACHE__SET_NEAR_PING,
  MISCACHE__SET_NEAR_MAX_ENTRIES,
  MISCACHE__SET_NEAR_MAX_BYTES,
  MISCACHE__SET_NEAR_COPY,
  MISCACHE__SET_BACKOFF_MIN,
  MISCACHE__SET_BACKOFF_MAX,
  MISCACHE__SET_SLOW_CALL,
  MISCACHE__SET_JITTER,
  MISCACHE__SET_SCAN_COUNT,
  MISCACHE__SET_UNLINK_BATCH,
  MISCACHE__SET_SCAN_TIMEOUT,
  MISCACHE__SET_PENDING_MAX,
  MISCACHE__SET_LAZY,
  MISCACHE__SET_MAX_ELEMENTS,
  MISCACHE__SET_MAX_BULK,
  MISCACHE__SET_MAX_REPLY_BYTES,
  MISCACHE__SET_SINGLE_FLIGHT,
  MISCACHE__SET_STAMPEDE_WAIT,
  MISCACHE__SET_LEASE,
  MISCACHE__SET_LEASE_MS,
  MISCACHE__SET_EARLY,
  MISCACHE__SET_EARLY_MS,
  MISCACHE__SET_TLS_INSECURE,
  MISCACHE__SET_TTL_SESSION, /* .. TTL_EXCEL_UPLOAD: miscache_ttl_class_t order */
  MISCACHE__SET_TTL_LAST = MISCACHE__SET_TTL_SESSION + MISCACHE_TTL_CLASS_COUNT - 1,
  MISCACHE__SET_COUNT
} miscache__set_t;
#define MISCACHE__SET_BIT(s) (UINT64_C(1) << (s))
/* A "near" value: this bit and the family bits (none: the default set). */
#define MISCACHE__NEAR_ON (INT64_C(1) << 62)
/* The near cache's default families, and those it never caches. */
#define MISCACHE__NEAR_DEFAULT                                                 \
  ((UINT64_C(1) << MISCACHE_KF_PERMISSIONS) |                                  \
   (UINT64_C(1) << MISCACHE_KF_MASTER_DEPARTMENTS) |                           \
   (UINT64_C(1) << MISCACHE_KF_MASTER_BRANDS) |                                \
   (UINT64_C(1) << MISCACHE_KF_MASTER_COMPANIES) |                             \
   (UINT64_C(1) << MISCACHE_KF_MASTER_PRODUCTS) |                              \
   (UINT64_C(1) << MISCACHE_KF_BATCH_CONFIG) |                                 \
   (UINT64_C(1) << MISCACHE_KF_GIFT_RULES) |                                   \
   (UINT64_C(1) << MISCACHE_KF_GIFT_MASTER))
#define MISCACHE__NEAR_NEVER                                                   \
  ((UINT64_C(1) << MISCACHE_KF_BATCH_LOCK) |                                   \
   (UINT64_C(1) << MISCACHE_KF_BATCH_FENCE) |                                  \
   (UINT64_C(1) << MISCACHE_KF_LOCK_SERIAL) |                                  \
   (UINT64_C(1) << MISCACHE_KF_LOCK_BATCH_PROCESS) |                           \
   (UINT64_C(1) << MISCACHE_KF_LOCK_GIFT_CLASSIFICATION))

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
  uint64_t set; /* the settings the query gave (MISCACHE__SET_BIT) */
  int64_t val[MISCACHE__SET_COUNT];
  char ns[MISCACHE__NS_MAX + 1]; /* the namespace one, when given */
} miscache__endpoint_t;

/* One settings parameter name=value of a URL query (value decoded) into e;
 * ERR_URL with err for an unknown name, a bad value or a repeat. */
miscache_status_t miscache__setting_parse(const char *name, size_t nlen,
                                          const char *value,
                                          miscache__endpoint_t *e, char *err,
                                          size_t errlen);
/* A setting's URL name (NULL out of range), and its bounds and kind
 * ("int", "bool", "namespace", "near", "categories") for the keyspace
 * table. */
const char *miscache__setting_name(miscache__set_t s);
bool miscache__setting_range(miscache__set_t s, int64_t *lo, int64_t *hi,
                             const char **kind);

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

/* ---- the event hook (hook.c) -------------------------------------------- */
typedef struct miscache__hook {
  miscache_event_fn fn; /* NULL: no events */
  void *userdata;
} miscache__hook_t;
/* Build an event (message from fmt) and hand it to h's function, unless an
 * identical one went less than a second ago (then it is counted, and the
 * next one delivered says how many were dropped). h NULL or without a
 * function: nothing. Any thread. */
void miscache__event(const miscache__hook_t *h, miscache_event_kind_t kind,
                     const char *node, int64_t duration_us, uint64_t count,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- options (options.c) ---------------------------------------------- */
/* Limits on one reply (conn/reply.c): elements of an array, bytes of a bulk
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
  int slow_call_ms;          /* 0: no slow-call events */
  miscache__hook_t hook;     /* the event hook */
  uint64_t set;              /* settings a setter chose (MISCACHE__SET_BIT) */
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

/* Lay the settings of e's URL query under o's: each one a setter did not
 * choose takes the URL's value; then the near cache's zero fields get
 * their defaults and settings that bound each other are checked
 * (ERR_INVALID with err). */
miscache_status_t miscache__options_apply(miscache_options_t *o,
                                          const miscache__endpoint_t *e,
                                          char *err, size_t errlen);
/* Make o ready for a handle: its endpoint (the URL set, else MISCACHE_URL,
 * else redis://127.0.0.1:6379, with the setters' credentials, TLS and
 * Sentinel settings) and the URL's settings applied. Idempotent. ERR_URL,
 * ERR_INVALID, ERR_NOMEM with err ("MISCACHE_URL: " in front when the
 * environment's URL is at fault). */
miscache_status_t miscache__options_resolve(miscache_options_t *o, char *err,
                                            size_t errlen);
/* "name=value" lines of o's effective settings (password masked) into buf
 * (size bytes, always terminated when size > 0); the length the whole text
 * needs. */
size_t miscache__options_describe(const miscache_options_t *o, char *buf,
                                  size_t size);

/* ---- codec (codec.c) --------------------------------------------------- */
/* Decode a stored value (any JSON type). NULL and a message on failure. */
json_t *miscache__decode(const char *buf, size_t len, char *err, size_t errlen);
/* json.c: the reader behind miscache__decode; accepts what
 * json_loadb(buf, len, JSON_DECODE_ANY) accepts, and builds the same value. */
json_t *miscache__json_parse(const char *buf, size_t len, char *err,
                             size_t errlen);
/* Encode compact UTF-8 JSON; free with free(). NULL if not encodable. */
char *miscache__encode(const json_t *v, size_t *len);

/* ---- clocks (common.c) ---------------------------------------------------- */
/* Now on CLOCK_MONOTONIC, in ms, and in microseconds. */
int64_t miscache__mono_ms(void);
int64_t miscache__mono_us(void);
/* A condition variable whose timed waits use CLOCK_MONOTONIC, and the
 * absolute time ms from now on that clock for pthread_cond_timedwait. */
void miscache__cond_init_monotonic(pthread_cond_t *cv);
void miscache__deadline_after(struct timespec *ts, int64_t ms);

/* A port as decimal text (n bytes): 1..65535 only. */
bool miscache__parse_port(const char *s, size_t n, int *port);
/* Whether a host and port a server named (Sentinel, CLUSTER SLOTS,
 * MOVED/ASK) may be connected to: port 1..65535, host 1..255 bytes with no
 * control character or space. false with why. */
bool miscache__peer_addr_ok(const char *host, size_t hostlen, long long port,
                            char *why, size_t whylen);

/* Whether ns[0..n) may be a namespace: letters, digits and "_-.:" only,
 * at most MISCACHE__NS_MAX bytes. */
bool miscache__ns_valid(const char *ns, size_t n);

/* ms spread by +-pct percent with the random number r (at least 1). */
int64_t miscache__jittered(int64_t ms, unsigned pct, uint64_t r);

/* Append fmt's text to buf (size bytes, terminated when size > 0) at *len;
 * *len grows by what the text needs even when it does not fit. */
void miscache__appendf(char *buf, size_t size, size_t *len, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

/* The next number of an xorshift64* generator (state never 0). */
uint64_t miscache__xorshift(uint64_t *state);

/* Decimal text of v into buf (>= 21 bytes, terminated); its length. No
 * locale, no printf. */
size_t miscache__i64toa(char *buf, int64_t v);

/* realloc(p, n * size), NULL (p untouched) when n * size overflows. */
void *miscache__realloc_array(void *p, size_t n, size_t size);

/* Bytes a server sent, as text fit for a message: control characters and
 * backslashes escaped (\n, \x1b...); cut to dstlen - 1. Its length. */
size_t miscache__escape(char *dst, size_t dstlen, const char *src, size_t len);

/* The SHA1 of a script's text, as EVALSHA takes it (40 hex digits). */
void miscache__sha1_hex(const char *src, char out[41]);

/* keys.c: whether s is a date of digits 8 (YYYYMMDD: month 1..12, day
 * 1..31) or 6 (YYYYMM) digits, as the library's date ids are checked; a
 * whole decimal int64 ("-" allowed, nothing else); the kind of a family's
 * id part by its name ("integer": the C API takes an int64, "date",
 * "month", "text"). */
bool miscache__date_ok(const char *s, size_t digits);
bool miscache__parse_i64(const char *s, int64_t *out);
const char *miscache__id_kind(const char *name, size_t n);

/* Redis SCAN MATCH glob semantics (keys.c). */
bool miscache__glob_match(const char *pattern, const char *s);

/* Whether a logical db / a TTL class is in range (common.c). */
bool miscache__db_valid(miscache_db_t db);
bool miscache__ttl_valid(miscache_ttl_class_t cls);

/* ---- fork (common.c) ----------------------------------------------------- */
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

/* ---- the keyspace table (keyspace.c) ----------------------------------- */
miscache_db_t miscache__kf_db(miscache_key_family_id_t f);
miscache_ttl_class_t miscache__kf_class(miscache_key_family_id_t f);
/* The table itself (indexed by family id), for the handle's key builders
 * (core/family.c), and the company id of a key built from it put in
 * {braces} (ERR_KEY when it does not fit). */
extern const miscache_key_family_t miscache__families[MISCACHE_KEY_FAMILY_COUNT];
/* strlen of each family's prefix. */
extern const size_t miscache__family_prefix_len[MISCACHE_KEY_FAMILY_COUNT];
miscache_status_t miscache__family_hash_tag(const miscache_key_family_t *k,
                                           char *buf);
/* Which id of family k is the company (-1: none). */
int miscache__family_company_index(const miscache_key_family_t *k);

/* ---- time (util) ------------------------------------------------------- */
/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes). */
void miscache__iso8601_now(char *buf, size_t size);

#endif /* MISCACHE_BASE_H */

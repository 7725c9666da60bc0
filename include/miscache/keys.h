/*
 * libmiscache — key and pattern builder.
 *
 * A key is "prefix:id1:id2...", where prefix is a literal such as
 * "session:user" or "gift:classification" and every id is percent-encoded:
 * bytes outside the RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~) become
 * "%XX" (upper-case hex). So ":" "*" "?" "[" "]" "\\" space and control
 * bytes never reach a key verbatim, an id can never add a segment or widen a
 * pattern, and ordinary ids (numbers, codes such as P-001, dates) are
 * unchanged. Other languages get the same key with
 * Python's urllib.parse.quote(id, safe="").
 * An empty id is rejected (MISCACHE_ERR_KEY).
 * The handle's namespace is not part of these strings: the handle adds it.
 * All functions here are pure and thread-safe.
 */
#ifndef MISCACHE_KEYS_H
#define MISCACHE_KEYS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest key (or pattern) these builders produce, without the NUL. */
#define MISCACHE_KEY_MAX 1024
/* A buffer of this size holds any built key. */
#define MISCACHE_KEY_BUFSIZE (MISCACHE_KEY_MAX + 1)

/* Build prefix + ":" + encoded ids into buf (size bytes, NUL-terminated).
 * prefix: segments of [A-Za-z0-9_-] joined by ":" (e.g. "master:brands").
 * nids may be 0. *len_out (optional) gets strlen(buf).
 * Statuses: OK; ERR_INVALID (NULL buf/prefix/ids, size 0);
 * ERR_KEY (bad prefix, NULL or empty id, result longer than size-1 or than
 * MISCACHE_KEY_MAX). On error buf holds "". */
MISCACHE_EXPORT miscache_status_t
miscache_key_build(char *buf, size_t size, const char *prefix, size_t nids,
                   const char *const ids[], size_t *len_out);

/* Same as miscache_key_build with the ids as NULL-terminated arguments:
 * miscache_key(buf, sizeof buf, "gift:classification", code, company, NULL) */
MISCACHE_EXPORT miscache_status_t miscache_key(char *buf, size_t size,
                                               const char *prefix, ...);

/* Build a SCAN MATCH pattern: like miscache_key_build, but an id that is
 * NULL becomes a "*" segment (matches any one id, including ids with ":"
 * since encoded ids contain none). Encoded ids hold no glob character, so
 * only the "*" segments match more than one key:
 * {NULL, "1"} after "gift:classification" gives "gift:classification:*:1",
 * which does not match company 10 or 11. */
MISCACHE_EXPORT miscache_status_t
miscache_pattern_build(char *buf, size_t size, const char *prefix, size_t nids,
                       const char *const ids[], size_t *len_out);

/* Encode one id (as in keys) into buf. OK, ERR_INVALID, ERR_KEY. */
MISCACHE_EXPORT miscache_status_t miscache_id_encode(char *buf, size_t size,
                                                     const char *id,
                                                     size_t *len_out);
/* Decode a key segment made by miscache_id_encode. ERR_KEY if it holds a
 * byte that encoding never emits or a bad %XX. */
MISCACHE_EXPORT miscache_status_t miscache_id_decode(char *buf, size_t size,
                                                     const char *segment,
                                                     size_t *len_out);

/* Escape glob characters (* ? [ ] \) of a literal with a backslash so it can
 * stand in a hand-written SCAN pattern. OK, ERR_INVALID, ERR_KEY (too long). */
MISCACHE_EXPORT miscache_status_t miscache_glob_escape(char *buf, size_t size,
                                                       const char *literal,
                                                       size_t *len_out);

/* ------------------------------------------------------------------------
 * The keyspace: one table describes every key family the library writes
 * (prefix, id parts, logical db, TTL class, payload). The domain APIs, the
 * invalidation events, monitoring and the miscache tool all read it, so a
 * TTL override (miscache_options_set_ttl) reaches every key of a class.
 * ---------------------------------------------------------------------- */
typedef enum miscache_key_family_id {
  MISCACHE_KF_SESSION = 0,            /* session:user:{user_id} */
  MISCACHE_KF_PERMISSIONS,            /* permissions:user:{user_id} */
  MISCACHE_KF_MASTER_DEPARTMENTS,     /* master:departments */
  MISCACHE_KF_MASTER_BRANDS,          /* master:brands */
  MISCACHE_KF_MASTER_COMPANIES,       /* master:companies */
  MISCACHE_KF_MASTER_PRODUCTS,        /* master:products:category:{id} */
  MISCACHE_KF_DAILY_SALES,            /* stats:daily_sales:{YYYYMMDD} */
  MISCACHE_KF_MONTHLY_REVENUE,        /* stats:monthly_revenue:{YYYYMM} */
  MISCACHE_KF_SERIAL_COUNT,           /* stats:serial_count:{brand}:{YYYYMMDD} */
  MISCACHE_KF_EXCEL_UPLOAD,           /* temp:excel_upload:{id} */
  MISCACHE_KF_REPORT,                 /* temp:report:{id} */
  MISCACHE_KF_BATCH_CONFIG,           /* batch:config:{company} */
  MISCACHE_KF_BATCH_STATUS,           /* batch:status:{company} */
  MISCACHE_KF_BATCH_HISTORY,          /* batch:history:{company}:{YYYYMMDD} */
  MISCACHE_KF_BATCH_LOCK,             /* batch:lock:{company} */
  MISCACHE_KF_BATCH_FENCE,            /* batch:fence:{company} (no TTL) */
  MISCACHE_KF_GIFT_RULES,             /* gift:rules:{company} */
  MISCACHE_KF_GIFT_CLASSIFICATION,    /* gift:classification:{code}:{company} */
  MISCACHE_KF_GIFT_ANALYTICS,         /* gift:analytics:{company}:{YYYYMMDD} */
  MISCACHE_KF_GIFT_MASTER,            /* gift:master:{company} */
  MISCACHE_KF_LOCK_SERIAL,            /* lock:serial_generation:{brand} */
  MISCACHE_KF_LOCK_BATCH_PROCESS,     /* lock:batch_process:{name} */
  MISCACHE_KF_LOCK_GIFT_CLASSIFICATION /* lock:gift_classification:{company} */
} miscache_key_family_id_t;
#define MISCACHE_KEY_FAMILY_COUNT 23

typedef struct miscache_key_family {
  const char *name;    /* short name, as the miscache tool takes it */
  const char *prefix;  /* "batch:history" */
  size_t nids;         /* id parts after the prefix */
  const char *ids;     /* their names, e.g. "COMPANY YYYYMMDD" */
  miscache_db_t db;    /* logical db */
  int ttl_class;       /* a miscache_ttl_class_t, or -1: no TTL */
  const char *payload; /* "session", "batch status", "JSON array", ... */
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_key_family_t;

/* The description of a family; NULL if id is out of range. Static. */
MISCACHE_EXPORT const miscache_key_family_t *
miscache_key_family(miscache_key_family_id_t id);
/* The family with this short name ("batch-status"); NULL if none. */
MISCACHE_EXPORT const miscache_key_family_t *
miscache_key_family_by_name(const char *name);

/* The keyspace table as JSON text (free() it; NULL when out of memory),
 * what `miscache keyspace --json` prints and the Python package reads:
 * every family (name, prefix, id parts and their kinds, logical db and its
 * default number, TTL class and default seconds, whether it is
 * company-scoped and so hash-tagged, near-cache eligibility, the members
 * and types its stored value must have), every invalidation event with
 * the keys and patterns it removes, the URL parameters with their bounds
 * and defaults, and the lock scripts. Defaults only: a handle's own
 * settings are in miscache_options_describe(). Added in 0.4.0. */
MISCACHE_EXPORT char *miscache_keyspace_json(void);

typedef struct miscache miscache_t;
/* The full key of family f for ids (k->nids of them, in the order of
 * k->ids), byte for byte what the handle sends to the server: its
 * namespace, the prefix, each id percent-encoded, the company id in braces
 * when the handle uses hash tags. Ids are checked as the typed calls check
 * them: COMPANY, USER_ID and CATEGORY must be whole numbers (written back
 * in plain decimal: "007" gives "7"), YYYYMMDD and YYYYMM dates, the
 * others any non-empty text. mc NULL: no namespace, no hash tags. Writes
 * at most size bytes; *len_out (optional) gets the length. OK;
 * ERR_INVALID (bad f, NULL buf or id); ERR_KEY (an id refused, or the key
 * does not fit; miscache_errmsg says which). Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_family_key(miscache_t *mc, miscache_key_family_id_t f,
                    const char *const ids[], char *buf, size_t size,
                    size_t *len_out);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_KEYS_H */

/*
 * libmiscache — common definitions: export macro, status codes, logical
 * databases and TTL classes.
 *
 * Copyright (c) 2026 The libmiscache authors. MIT licence, see LICENSE.
 */
#ifndef MISCACHE_COMMON_H
#define MISCACHE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MISCACHE_STATIC)
#define MISCACHE_EXPORT
#elif defined(__GNUC__) || defined(__clang__)
#define MISCACHE_EXPORT __attribute__((visibility("default")))
#else
#define MISCACHE_EXPORT
#endif

/* ------------------------------------------------------------------------
 * Status codes
 *
 * Every fallible call returns one of these. MISCACHE_OK is 0; codes are only
 * ever added at the end, never renumbered. MISCACHE_MISS is not an error: it
 * answers "the key is not in the cache".
 * ---------------------------------------------------------------------- */
#define MISCACHE_STATUS_MAP(X)                                                 \
  X(OK, 0, "success")                                                          \
  X(MISS, 1, "key not found in the cache")                                     \
  X(ERR_INVALID, 2, "invalid argument")                                        \
  X(ERR_NOMEM, 3, "out of memory")                                             \
  X(ERR_URL, 4, "malformed or unsupported server URL")                         \
  X(ERR_KEY, 5, "invalid key, identifier or pattern")                          \
  X(ERR_UNAVAILABLE, 6, "cache server unavailable (refused, lost or timed out)") \
  X(ERR_AUTH, 7, "authentication with the cache server failed")               \
  X(ERR_SERVER, 8, "the cache server returned an error")                       \
  X(ERR_REPLY, 9, "unexpected reply from the cache server")                    \
  X(ERR_DECODE, 10, "cached value is not valid JSON of the expected shape")   \
  X(ERR_ENCODE, 11, "value cannot be encoded as JSON")                         \
  X(ERR_LOCKED, 12, "lock is held by another owner")                           \
  X(ERR_NOT_OWNER, 13, "lock is no longer held by this owner")                 \
  X(ERR_LOADER, 14, "loader callback failed")                                  \
  X(ERR_BUSY, 15, "no pooled handle became free in time")                   \
  X(ERR_PENDING_FULL, 16,                                                      \
    "invalidation failed and the pending-invalidation list is full")           \
  X(ERR_TLS, 17,                                                               \
    "TLS failed: certificate not trusted, expired or for another host, "       \
    "or handshake refused")                                                    \
  X(ERR_WRITER, 18, "writer callback (system of record) failed")            \
  X(ERR_WORK, 19, "batch work callback failed")                              \
  X(ERR_CANCELLED, 20, "call cancelled: its async handle was freed")

typedef enum miscache_status {
#define MISCACHE__STATUS_ENUM(name, code, text) MISCACHE_##name = code,
  MISCACHE_STATUS_MAP(MISCACHE__STATUS_ENUM)
#undef MISCACHE__STATUS_ENUM
} miscache_status_t;

/* Static English text for a status; never NULL (unknown codes get a generic
 * text). The string is owned by the library. Thread-safe. */
MISCACHE_EXPORT const char *miscache_strerror(miscache_status_t status);

/* ------------------------------------------------------------------------
 * Logical databases (docs/strategy.md). The number each name maps to is an option.
 * ---------------------------------------------------------------------- */
typedef enum miscache_db {
  MISCACHE_DB_SESSION = 0, /* default db 0: user sessions */
  MISCACHE_DB_CACHE = 1,   /* default db 1: permissions, master, statistics */
  MISCACHE_DB_TEMP = 2,    /* default db 2: upload / report job status */
  MISCACHE_DB_QUEUE = 3,   /* default db 3: work queues (reserved) */
  MISCACHE_DB_BATCH = 4,   /* default db 4: batch config, status, history, locks */
  MISCACHE_DB_GIFT = 5     /* default db 5: gift rules, classifications, analytics */
} miscache_db_t;
#define MISCACHE_DB_COUNT 6

/* "session", "cache", ...; NULL for a value out of range. Static string. */
MISCACHE_EXPORT const char *miscache_db_name(miscache_db_t db);
/* Parse a name as returned by miscache_db_name(). MISCACHE_ERR_INVALID if
 * unknown or NULL. */
MISCACHE_EXPORT miscache_status_t miscache_db_from_name(const char *name,
                                                        miscache_db_t *out);

/* ------------------------------------------------------------------------
 * TTL classes (docs/strategy.md). Every write names one; the seconds are options.
 * ---------------------------------------------------------------------- */
typedef enum miscache_ttl_class {
  MISCACHE_TTL_SESSION = 0,          /* 86400 */
  MISCACHE_TTL_PERMISSIONS = 1,      /* 3600 */
  MISCACHE_TTL_MASTER_DATA = 2,      /* 21600 */
  MISCACHE_TTL_STATISTICS = 3,       /* 43200 */
  MISCACHE_TTL_TEMP_DATA = 4,        /* 1800 */
  MISCACHE_TTL_LOCK = 5,             /* 300 */
  MISCACHE_TTL_BATCH_CONFIG = 6,     /* 86400 */
  MISCACHE_TTL_BATCH_STATUS = 7,     /* 3600 */
  MISCACHE_TTL_BATCH_HISTORY = 8,    /* 604800 */
  MISCACHE_TTL_BATCH_LOCK = 9,       /* 1800 */
  MISCACHE_TTL_GIFT_RULES = 10,      /* 21600 */
  MISCACHE_TTL_GIFT_CLASSIFICATION = 11, /* 14400 */
  MISCACHE_TTL_GIFT_ANALYTICS = 12,  /* 28800 */
  MISCACHE_TTL_GIFT_MASTER = 13,     /* 21600 */
  MISCACHE_TTL_MASTER_COMPANIES = 14, /* 43200: master:companies */
  MISCACHE_TTL_SERIAL_COUNT = 15,    /* 86400: stats:serial_count:* */
  MISCACHE_TTL_EXCEL_UPLOAD = 16     /* 3600: temp:excel_upload:* */
} miscache_ttl_class_t;
#define MISCACHE_TTL_CLASS_COUNT 17

/* "session", "permissions", "master_data", ...; NULL if out of range. */
MISCACHE_EXPORT const char *miscache_ttl_class_name(miscache_ttl_class_t cls);
/* Parse a class name. MISCACHE_ERR_INVALID if unknown or NULL. */
MISCACHE_EXPORT miscache_status_t
miscache_ttl_class_from_name(const char *name, miscache_ttl_class_t *out);
/* The docs/strategy.md default in seconds; 0 if out of range. */
MISCACHE_EXPORT int64_t miscache_ttl_default(miscache_ttl_class_t cls);

/* ------------------------------------------------------------------------
 * A list of owned strings, used by typed payloads (keywords, errors...).
 * ---------------------------------------------------------------------- */
typedef struct miscache_strings {
  char **items; /* count strings, each owned by the list */
  size_t count;
  /* no reserved_: a list is items and count, nothing more will come */
} miscache_strings_t;

/* Append a copy of value. OK, ERR_INVALID, ERR_NOMEM. */
MISCACHE_EXPORT miscache_status_t miscache_strings_push(miscache_strings_t *s,
                                                        const char *value);
/* Free every string and the array; leaves an empty list. Accepts NULL. */
MISCACHE_EXPORT void miscache_strings_clear(miscache_strings_t *s);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_COMMON_H */

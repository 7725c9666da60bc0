/*
 * libmiscache — distributed locks.
 *
 * Acquire: SET key value NX PX ttl. The value is JSON:
 *   {"token":"<uuid>","locked_by":...,"locked_at":"<ISO-8601 UTC>","batch_id":...}
 * Release and extend compare the token inside one Lua script on the server,
 * so a holder whose lock expired can never delete or extend the lock of the
 * holder who came after it.
 * Thread rule: a miscache_lock_t may move between threads, but each call
 * uses a handle under the handle's one-thread rule.
 */
#ifndef MISCACHE_LOCK_H
#define MISCACHE_LOCK_H

#include <stdint.h>

#include <jansson.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct miscache_lock miscache_lock_t;

/* Try once to take the lock at key in db for ttl_ms (> 0) milliseconds.
 * locked_by and batch_id are the caller's metadata (copied; NULL stores
 * JSON null). OK: *out is a new lock (free with miscache_lock_free()).
 * ERR_LOCKED: somebody holds it (the message names the holder when known).
 * Also ERR_INVALID, ERR_UNAVAILABLE, ERR_SERVER, ERR_NOMEM. */
MISCACHE_EXPORT miscache_status_t
miscache_lock_acquire(miscache_t *mc, miscache_db_t db, const char *key,
                      int64_t ttl_ms, const char *locked_by,
                      const char *batch_id, miscache_lock_t **out);

/* Release the lock if this token still holds it. OK, or ERR_NOT_OWNER when
 * it expired (and maybe was taken by someone else, whose lock stays). The
 * lock object stays valid either way; free it with miscache_lock_free(). */
MISCACHE_EXPORT miscache_status_t miscache_lock_release(miscache_t *mc,
                                                        miscache_lock_t *lock);

/* Set the lock's remaining time to ttl_ms if this token still holds it.
 * OK or ERR_NOT_OWNER. */
MISCACHE_EXPORT miscache_status_t miscache_lock_extend(miscache_t *mc,
                                                       miscache_lock_t *lock,
                                                       int64_t ttl_ms);

/* Read the current holder's value at key: OK with *out a new reference to
 * the JSON object, MISS if nobody holds it, ERR_DECODE if it is not ours. */
MISCACHE_EXPORT miscache_status_t miscache_lock_info(miscache_t *mc,
                                                     miscache_db_t db,
                                                     const char *key,
                                                     json_t **out);

/* The lock's unique token (36-char UUID). Borrowed, lives with the lock. */
MISCACHE_EXPORT const char *miscache_lock_token(const miscache_lock_t *lock);
/* The lock's logical key. Borrowed, lives with the lock. */
MISCACHE_EXPORT const char *miscache_lock_key(const miscache_lock_t *lock);
/* The lock's fencing token: a number taken from a per-lock counter when the
 * lock was taken, larger for every later holder (batch locks, see
 * batch.h); 0 for a plain lock. */
MISCACHE_EXPORT int64_t miscache_lock_fence(const miscache_lock_t *lock);
/* Frees the local object only (does not release). Accepts NULL. */
MISCACHE_EXPORT void miscache_lock_free(miscache_lock_t *lock);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_LOCK_H */

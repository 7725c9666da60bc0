/*
 * libmiscache — user sessions: session:user:{user_id} in db "session",
 * TTL class session (24 h).
 * Thread rule: one thread at a time per handle.
 */
#ifndef MISCACHE_SESSION_H
#define MISCACHE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The session payload. Strings and permissions are owned by the struct:
 * release them with miscache_session_clear(). Zero-initialise before use. */
typedef struct miscache_session {
  int64_t user_id;
  char *username;
  int64_t dept_id;
  int64_t current_company_id;
  json_t *permissions;  /* any JSON (normally the permissions map), or NULL */
  char *last_activity;  /* ISO-8601 UTC; NULL on set = now */
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_session_t;

/* Store s under session:user:{s->user_id} with the session TTL. s is
 * borrowed. ERR_ENCODE if a string is not valid UTF-8. */
MISCACHE_EXPORT miscache_status_t
miscache_session_set(miscache_t *mc, const miscache_session_t *s);
/* Read a session into *out (zeroed first; clear it after use).
 * OK, MISS, ERR_DECODE (not JSON, or a field of the wrong type), transport
 * statuses. */
MISCACHE_EXPORT miscache_status_t
miscache_session_get(miscache_t *mc, int64_t user_id, miscache_session_t *out);
/* Delete it. *deleted (optional) tells whether it existed. */
MISCACHE_EXPORT miscache_status_t
miscache_session_delete(miscache_t *mc, int64_t user_id, bool *deleted);
/* Set last_activity to now and restart the session TTL. MISS if there is no
 * session. The read and the write are one optimistic transaction (WATCH,
 * GET, MULTI/SET/EXEC, retried up to 16 times when another client wrote the
 * session in between; then ERR_BUSY), so a concurrent write is never lost,
 * and members another program stored (the Flask app's) are kept. */
MISCACHE_EXPORT miscache_status_t miscache_session_touch(miscache_t *mc,
                                                         int64_t user_id);
/* Free what s owns and zero it. Accepts NULL. */
MISCACHE_EXPORT void miscache_session_clear(miscache_session_t *s);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_SESSION_H */

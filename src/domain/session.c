/* Sessions: session:user:{id}, db session, TTL class session. */
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

static const miscache__field_t session_fields[] = {
    MISCACHE__FIELD_REQ(miscache_session_t, user_id, MISCACHE__F_INT),
    MISCACHE__FIELD(miscache_session_t, username, MISCACHE__F_STRING),
    MISCACHE__FIELD(miscache_session_t, dept_id, MISCACHE__F_INT),
    MISCACHE__FIELD(miscache_session_t, current_company_id, MISCACHE__F_INT),
    MISCACHE__FIELD(miscache_session_t, permissions, MISCACHE__F_JSON),
    MISCACHE__FIELD(miscache_session_t, last_activity, MISCACHE__F_STRING),
};
const miscache__payload_t miscache__session_payload =
    MISCACHE__PAYLOAD("session", miscache_session_t, session_fields);

void miscache_session_clear(miscache_session_t *s) {
  if (s) miscache__payload_clear(&miscache__session_payload, s);
}

/* s as stored: a shallow copy whose missing last_activity is now (in
 * now, 32 bytes). */
static void stamped(const miscache_session_t *s, miscache_session_t *copy,
                    char now[32]) {
  *copy = *s; /* shallow: only last_activity may change */
  if (!copy->last_activity) {
    miscache__iso8601_now(now, 32);
    copy->last_activity = now;
  }
}

miscache_status_t miscache_session_set(miscache_t *mc,
                                       const miscache_session_t *s) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!s) {
    miscache__set_err(mc, "miscache_session_set: session is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st =
      miscache__kf_key_int(mc, MISCACHE_KF_SESSION, key, s->user_id);
  if (st != MISCACHE_OK) return st;
  miscache_session_t copy;
  char now[32];
  stamped(s, &copy, now);
  return miscache__typed_set(mc, miscache__kf_db(MISCACHE_KF_SESSION), key,
                             &miscache__session_payload, &copy,
                             miscache__kf_ttl_ms(mc, MISCACHE_KF_SESSION));
}

miscache_status_t miscache_session_get(miscache_t *mc, int64_t user_id,
                                       miscache_session_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_session_get: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st =
      miscache__kf_key_int(mc, MISCACHE_KF_SESSION, key, user_id);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_get(mc, miscache__kf_db(MISCACHE_KF_SESSION), key,
                             &miscache__session_payload, out);
}

miscache_status_t miscache_session_delete(miscache_t *mc, int64_t user_id,
                                          bool *deleted) {
  if (deleted) *deleted = false;
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st =
      miscache__kf_key_int(mc, MISCACHE_KF_SESSION, key, user_id);
  if (st != MISCACHE_OK) return st;
  return miscache_delete(mc, miscache__kf_db(MISCACHE_KF_SESSION), key, deleted);
}

static miscache_status_t stamp_now(miscache_t *mc, void *ud, json_t *obj) {
  (void)mc;
  (void)ud;
  char now[32];
  miscache__iso8601_now(now, sizeof now);
  return miscache__json_set_str(obj, "last_activity", now);
}

miscache_status_t miscache_session_touch(miscache_t *mc, int64_t user_id) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE]; /* from the argument, never the value */
  miscache_status_t st =
      miscache__kf_key_int(mc, MISCACHE_KF_SESSION, key, user_id);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_update(mc, miscache__kf_db(MISCACHE_KF_SESSION), key,
                                &miscache__session_payload,
                                miscache__kf_ttl_ms(mc, MISCACHE_KF_SESSION),
                                stamp_now, NULL);
}

/* ---- async (async.h) ------------------------------------------------------ */

typedef struct {
  miscache_async_session_fn fn;
  void *ud;
} session_ctx_t;

static void session_read(void *p, miscache_status_t st, void *out,
                         const char *why) {
  session_ctx_t c = *(session_ctx_t *)p;
  free(p);
  c.fn(c.ud, st, out, why);
}

miscache_status_t miscache_async_session_get(miscache_async_t *a,
                                             int64_t user_id,
                                             miscache_async_session_fn fn,
                                             void *userdata) {
  miscache_status_t st =
      miscache__async_check(a, fn != NULL, "miscache_async_session_get");
  if (st != MISCACHE_OK) return st;
  miscache_t *mc = miscache__async_mc(a);
  char key[MISCACHE_KEY_BUFSIZE];
  st = miscache__kf_key_int(mc, MISCACHE_KF_SESSION, key, user_id);
  session_ctx_t *c = st == MISCACHE_OK ? malloc(sizeof *c) : NULL;
  if (st != MISCACHE_OK || !c) {
    miscache__async_refuse(a, "%s", st != MISCACHE_OK ? mc->err : "out of memory");
    return st != MISCACHE_OK ? st : MISCACHE_ERR_NOMEM;
  }
  c->fn = fn;
  c->ud = userdata;
  st = miscache__async_typed_get(a, miscache__kf_db(MISCACHE_KF_SESSION), key,
                                 &miscache__session_payload, session_read, c);
  if (st != MISCACHE_OK) free(c);
  return st;
}

miscache_status_t miscache_async_session_set(miscache_async_t *a,
                                             const miscache_session_t *s,
                                             miscache_async_done_fn fn,
                                             void *userdata) {
  miscache_status_t st = miscache__async_check(a, fn && s,
                                               "miscache_async_session_set");
  if (st != MISCACHE_OK) return st;
  miscache_t *mc = miscache__async_mc(a);
  char key[MISCACHE_KEY_BUFSIZE];
  st = miscache__kf_key_int(mc, MISCACHE_KF_SESSION, key, s->user_id);
  if (st != MISCACHE_OK) {
    miscache__async_refuse(a, "%s", mc->err);
    return st;
  }
  miscache_session_t copy;
  char now[32];
  stamped(s, &copy, now);
  return miscache__async_typed_set(a, miscache__kf_db(MISCACHE_KF_SESSION),
                                   key, &miscache__session_payload, &copy,
                                   miscache__kf_ttl_ms(mc, MISCACHE_KF_SESSION),
                                   fn, userdata);
}

miscache_status_t miscache_async_session_touch(miscache_async_t *a,
                                               int64_t user_id,
                                               miscache_async_done_fn fn,
                                               void *userdata) {
  miscache_status_t st =
      miscache__async_check(a, fn != NULL, "miscache_async_session_touch");
  if (st != MISCACHE_OK) return st;
  miscache_t *mc = miscache__async_mc(a);
  char key[MISCACHE_KEY_BUFSIZE]; /* from the argument, never the value */
  st = miscache__kf_key_int(mc, MISCACHE_KF_SESSION, key, user_id);
  if (st != MISCACHE_OK) {
    miscache__async_refuse(a, "%s", mc->err);
    return st;
  }
  return miscache__async_typed_update(
      a, miscache__kf_db(MISCACHE_KF_SESSION), key, &miscache__session_payload,
      miscache__kf_ttl_ms(mc, MISCACHE_KF_SESSION), stamp_now, NULL, fn,
      userdata);
}

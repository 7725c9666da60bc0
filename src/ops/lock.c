/*
 * Locks: SET NX PX with a JSON value carrying a UUID token; release and
 * extend check the token in a Lua script (EVALSHA, EVAL on NOSCRIPT).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>


#include "ops/ops.h"

struct miscache_lock {
  miscache_db_t db;
  char token[37];
  char *key;
  int64_t fence; /* 0: a plain lock without a fencing token */
};

int64_t miscache_lock_fence(const miscache_lock_t *lock) {
  return lock ? lock->fence : 0;
}

const char *miscache_lock_token(const miscache_lock_t *lock) {
  return lock ? lock->token : "";
}

const char *miscache_lock_key(const miscache_lock_t *lock) {
  return lock ? lock->key : "";
}

void miscache_lock_free(miscache_lock_t *lock) {
  if (!lock) return;
  free(lock->key);
  free(lock);
}

static json_t *str_or_null(const char *s) {
  return s ? json_string(s) : json_null();
}

/* "lock KEY is held by WHO since WHEN" from the lock value v (NULL, or
 * not a lock's value: "by another owner"). */
static void holder_text(char *buf, size_t len, const char *key,
                        const json_t *v) {
  const char *by = json_string_value(json_object_get(v, "locked_by"));
  const char *at = json_string_value(json_object_get(v, "locked_at"));
  if (json_is_object(v))
    snprintf(buf, len, "lock %.250s is held by %.150s since %.64s", key,
             by ? by : "(unknown)", at ? at : "(unknown)");
  else
    snprintf(buf, len, "lock %.300s is held by another owner", key);
}

/* Describes the current holder of key into mc->err after a refused SET NX. */
static void describe_holder(miscache_t *mc, miscache_db_t db, const char *key) {
  json_t *v = NULL;
  char saved[MISCACHE_ERRMSG_SIZE];
  /* not a cache read: kept out of the counters */
  miscache_status_t st = miscache__get_uncounted(mc, db, key, &v);
  holder_text(saved, sizeof saved, key, st == MISCACHE_OK ? v : NULL);
  json_decref(v);
  snprintf(mc->err, sizeof mc->err, "%s", saved);
}

static miscache_status_t run_script(miscache_t *mc, miscache_lock_t *lock,
                                    const char *src, const char *sha,
                                    const char *arg, unsigned flags,
                                    long long *result);

/* An acquire whose reply was lost (timeout, dropped connection, a reply
 * that could not be read) may have taken the lock: give it back by its
 * token, so it is not held until its TTL by nobody. The acquire's own
 * message is kept. */
static void release_if_taken(miscache_t *mc, miscache_lock_t *lock,
                             miscache_status_t st) {
  if (st != MISCACHE_ERR_UNAVAILABLE && st != MISCACHE_ERR_REPLY &&
      st != MISCACHE_ERR_NOMEM)
    return;
  char saved[MISCACHE_ERRMSG_SIZE];
  memcpy(saved, mc->err, sizeof saved);
  long long res = 0;
  (void)run_script(mc, lock, miscache__lua_release, miscache__lua_release_sha,
                   NULL, 0, &res);
  memcpy(mc->err, saved, sizeof saved);
}

/* A new lock object for key and its value's JSON text (free() it):
 * {"token","locked_by","locked_at","batch_id"}. ERR_ENCODE (metadata not
 * UTF-8) or ERR_NOMEM, message set. */
static miscache_status_t new_lock(miscache_t *mc, miscache_db_t db,
                                  const char *key, const char *locked_by,
                                  const char *batch_id, miscache_lock_t **out,
                                  char **val, size_t *vlen) {
  *out = NULL;
  *val = NULL;
  miscache_lock_t *lock = calloc(1, sizeof *lock);
  json_t *obj = NULL;
  if (!lock || !(lock->key = strdup(key))) goto nomem;
  lock->db = db;
  miscache__uuid(mc, lock->token); /* no system call per acquire */
  char now[32];
  miscache__iso8601_now(now, sizeof now);
  obj = json_object();
  if (!obj || json_object_set_new(obj, "token", json_string(lock->token)) ||
      json_object_set_new(obj, "locked_by", str_or_null(locked_by)) ||
      json_object_set_new(obj, "locked_at", json_string(now)) ||
      json_object_set_new(obj, "batch_id", str_or_null(batch_id))) {
    /* json_string() fails on invalid UTF-8 as well as on no memory */
    json_decref(obj);
    miscache_lock_free(lock);
    miscache__set_err(mc, "lock %s: metadata is not valid UTF-8", key);
    return MISCACHE_ERR_ENCODE;
  }
  *val = miscache__encode(obj, vlen);
  json_decref(obj);
  if (!*val) goto nomem;
  *out = lock;
  return MISCACHE_OK;
nomem:
  miscache_lock_free(lock);
  miscache__set_err(mc, "out of memory taking lock %s", key);
  return MISCACHE_ERR_NOMEM;
}

miscache_status_t miscache_lock_acquire(miscache_t *mc, miscache_db_t db,
                                        const char *key, int64_t ttl_ms,
                                        const char *locked_by,
                                        const char *batch_id,
                                        miscache_lock_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out || !miscache__db_valid(db) || ttl_ms <= 0) {
    miscache__set_err(mc, "miscache_lock_acquire: bad argument");
    return MISCACHE_ERR_INVALID;
  }
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, key, &fk);
  if (st != MISCACHE_OK) return st;

  miscache_lock_t *lock = NULL;
  char *val = NULL;
  size_t vlen = 0;
  st = new_lock(mc, db, key, locked_by, batch_id, &lock, &val, &vlen);
  if (st != MISCACHE_OK) {
    miscache__fullkey_done(&fk);
    return st;
  }
  char ttl[24];
  int tl = snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
  const char *argv[6] = {"SET", fk.ptr, val, "NX", "PX", ttl};
  size_t lens[6] = {3, fk.len, vlen, 2, 2, (size_t)tl};
  miscache__cmd_t cmd = {6, argv, lens};
  miscache__reply_t *r = NULL;
  /* not idempotent: a resend after a lost reply would find our own lock */
  st = miscache__run_key(mc, db, key, &cmd, &r, 0);
  if (st == MISCACHE_OK) {
    size_t rl;
    const char *rs = miscache__reply_str(r, &rl);
    if (miscache__reply_is(r, MISCACHE__R_STATUS) && rl == 2 &&
        memcmp(rs, "OK", 2) == 0) { /* only +OK is a taken lock */
      *out = lock;
      lock = NULL;
    } else if (miscache__reply_is(r, MISCACHE__R_NIL)) {
      st = MISCACHE_ERR_LOCKED;
    } else {
      char what[300];
      snprintf(what, sizeof what, "SET NX %s", key);
      st = miscache__unexpected(mc, db, key, r, what);
    }
  }
  if (lock) release_if_taken(mc, lock, st);
  miscache__reply_free(r);
  free(val);
  miscache_lock_free(lock);
  miscache__fullkey_done(&fk);
  if (st == MISCACHE_ERR_LOCKED) describe_holder(mc, db, key);
  return st;
}

/* The token script (release/extend) on the lock's key. */
static miscache_status_t run_script(miscache_t *mc, miscache_lock_t *lock,
                                    const char *src, const char *sha,
                                    const char *arg, unsigned flags,
                                    long long *result) {
  const char *keys[1] = {lock->key};
  const char *args[2] = {lock->token, arg};
  return miscache__eval(mc, lock->db, src, sha, 1, keys, arg ? 2 : 1, args,
                        flags, result);
}

static miscache_status_t owner_status(miscache_t *mc, miscache_lock_t *lock,
                                      long long res, const char *verb) {
  if (res == 1) return MISCACHE_OK;
  const char *why = res == -1 ? "it expired and nobody holds it"
                              : "it expired and another owner holds it now";
  miscache__set_err(mc, "cannot %s lock %s: %s", verb, lock->key, why);
  miscache__event(&mc->opts.hook, MISCACHE_EV_LOCK_LOST,
                  miscache__master_name(mc), 0,
                  (uint64_t)lock->fence, "%s%s (%s): %s", mc->opts.ns,
                  lock->key, verb, why);
  return MISCACHE_ERR_NOT_OWNER;
}

miscache_status_t miscache_lock_release(miscache_t *mc, miscache_lock_t *lock) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!lock) {
    miscache__set_err(mc, "miscache_lock_release: lock is NULL");
    return MISCACHE_ERR_INVALID;
  }
  long long res = 0;
  /* not idempotent: a resend after a lost reply would report "not owner" */
  miscache_status_t st = run_script(mc, lock, miscache__lua_release,
                                    miscache__lua_release_sha, NULL, 0, &res);
  return st == MISCACHE_OK ? owner_status(mc, lock, res, "release") : st;
}

miscache_status_t miscache_lock_extend(miscache_t *mc, miscache_lock_t *lock,
                                       int64_t ttl_ms) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!lock || ttl_ms <= 0) {
    miscache__set_err(mc, "miscache_lock_extend: bad argument");
    return MISCACHE_ERR_INVALID;
  }
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
  long long res = 0;
  miscache_status_t st =
      run_script(mc, lock, miscache__lua_extend, miscache__lua_extend_sha, ttl,
                 MISCACHE__IDEMPOTENT, &res);
  return st == MISCACHE_OK ? owner_status(mc, lock, res, "extend") : st;
}

miscache_status_t miscache_lock_info(miscache_t *mc, miscache_db_t db,
                                     const char *key, json_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_lock_info: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  json_t *v = NULL;
  miscache_status_t st = miscache_get(mc, db, key, &v);
  if (st != MISCACHE_OK) return st;
  if (!json_is_object(v) || !json_is_string(json_object_get(v, "token"))) {
    json_decref(v);
    miscache__set_err(mc, "%s does not hold a miscache lock value", key);
    return MISCACHE_ERR_DECODE;
  }
  *out = v;
  return MISCACHE_OK;
}

/* ---- fenced locks (the batch lock) -------------------------------------- */

/* The lock value's JSON object without its closing brace: the script adds
 * "fence" and "heartbeat_ms" (server time). NULL: not UTF-8 / no memory. */
static char *fenced_value_head(const char *token, const char *locked_by,
                               const char *batch_id) {
  char now[32], host[256] = "";
  miscache__iso8601_now(now, sizeof now);
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  json_t *obj = json_object();
  char *val = NULL;
  if (obj && !json_object_set_new(obj, "token", json_string(token)) &&
      !json_object_set_new(obj, "locked_by", str_or_null(locked_by)) &&
      !json_object_set_new(obj, "locked_at", json_string(now)) &&
      !json_object_set_new(obj, "batch_id", str_or_null(batch_id)) &&
      !json_object_set_new(obj, "host", json_string(host)) &&
      !json_object_set_new(obj, "pid", json_integer((json_int_t)getpid())))
    val = miscache__encode(obj, NULL);
  json_decref(obj);
  if (val) val[strlen(val) - 1] = 0; /* drop the closing brace */
  return val;
}

/* The fenced scripts touch a company's lock, fence and data keys at once:
 * on a Redis Cluster they must share a slot, which only the hash-tagged
 * key format guarantees. */
static bool fenced_keys_fit(miscache_t *mc, const char *key) {
  if (!miscache__is_cluster(mc) || mc->opts.hash_tags) return true;
  miscache__set_err(mc,
                    "%s: the fenced batch lock on a Redis Cluster needs the "
                    "hash-tagged key format (miscache_options_set_hash_tags; "
                    "see docs/scaling.md)",
                    key);
  return false;
}

miscache_status_t miscache__fenced_lock_acquire(
    miscache_t *mc, miscache_db_t db, const char *key, const char *fence_key,
    int64_t ttl_ms, const char *locked_by, const char *batch_id,
    const char *stale_token, int64_t stale_ms, miscache_lock_t **out) {
  *out = NULL;
  if (!fenced_keys_fit(mc, key)) return MISCACHE_ERR_INVALID;
  miscache_lock_t *lock = calloc(1, sizeof *lock);
  if (!lock || !(lock->key = strdup(key))) {
    miscache_lock_free(lock);
    miscache__set_err(mc, "out of memory taking lock %s", key);
    return MISCACHE_ERR_NOMEM;
  }
  lock->db = db;
  miscache__uuid(mc, lock->token); /* no system call per acquire */
  char *head = fenced_value_head(lock->token, locked_by, batch_id);
  if (!head) {
    miscache_lock_free(lock);
    miscache__set_err(mc, "lock %s: metadata is not valid UTF-8", key);
    return MISCACHE_ERR_ENCODE;
  }
  char ttl[24], stale[24];
  snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
  snprintf(stale, sizeof stale, "%lld", (long long)stale_ms);
  const char *keys[2] = {key, fence_key};
  long long res = 0;
  miscache_status_t st;
  if (stale_token) {
    const char *args[4] = {stale_token, head, ttl, stale};
    st = miscache__eval(mc, db, miscache__lua_takeover,
                        miscache__lua_takeover_sha, 2, keys, 4, args, 0, &res);
  } else {
    const char *args[2] = {head, ttl};
    st = miscache__eval(mc, db, miscache__lua_fence_acquire,
                        miscache__lua_fence_acquire_sha, 2, keys, 2, args, 0,
                        &res);
  }
  free(head);
  if (st == MISCACHE_OK && res > 0) {
    lock->fence = res;
    *out = lock;
    return MISCACHE_OK;
  }
  release_if_taken(mc, lock, st);
  miscache_lock_free(lock);
  if (st != MISCACHE_OK) return st;
  if (res == -2) {
    miscache__set_err(mc, "lock %s: its holder renewed it recently; not "
                          "taken over", key);
  } else {
    describe_holder(mc, db, key);
    if (stale_token)
      snprintf(mc->err + strlen(mc->err), sizeof mc->err - strlen(mc->err),
               " (not the token %.40s)", stale_token);
  }
  return MISCACHE_ERR_LOCKED;
}

miscache_status_t miscache__lock_heartbeat(miscache_t *mc,
                                           miscache_lock_t *lock,
                                           int64_t ttl_ms) {
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
  long long res = 0;
  miscache_status_t st = run_script(mc, lock, miscache__lua_heartbeat,
                                    miscache__lua_heartbeat_sha, ttl,
                                    MISCACHE__IDEMPOTENT, &res);
  return st == MISCACHE_OK ? owner_status(mc, lock, res, "renew") : st;
}

miscache_status_t miscache__fenced_set(miscache_t *mc, miscache_db_t db,
                                       const miscache_lock_t *lock,
                                       const char *fence_key, const char *key,
                                       const char *value, int64_t ttl_ms) {
  if (!fenced_keys_fit(mc, key)) return MISCACHE_ERR_INVALID;
  char fence[24], ttl[24];
  snprintf(fence, sizeof fence, "%lld", (long long)lock->fence);
  snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
  const char *keys[3] = {lock->key, fence_key, key};
  const char *args[4] = {lock->token, fence, value, ttl};
  long long res = 0;
  /* not resent: a lost reply is an unknown outcome, reported as such */
  miscache_status_t st =
      miscache__eval(mc, db, miscache__lua_fenced_set,
                     miscache__lua_fenced_set_sha, 3, keys, 4, args,
                     MISCACHE__WRITES, &res);
  if (st == MISCACHE_OK && res != 1) {
    miscache__set_err(mc, "%s not written: lock %s (fence %lld) is held by a "
                          "newer run", key, lock->key, (long long)lock->fence);
    miscache__event(&mc->opts.hook, MISCACHE_EV_LOCK_LOST,
                    miscache__master_name(mc), 0,
                    (uint64_t)lock->fence,
                    "%s%s: a newer run holds it (fenced write refused)",
                    mc->opts.ns, lock->key);
    st = MISCACHE_ERR_NOT_OWNER;
  }
  return st;
}

/* ---- async (async.h) ------------------------------------------------------ */

typedef struct {
  miscache__async_key_op_t k; /* its key and full key; fn, ud unused */
  miscache_async_lock_fn fn;  /* acquire */
  miscache_async_done_fn done; /* release */
  void *ud;
  miscache_lock_t *lock; /* acquire: the new lock; release: the caller's */
  bool discard;          /* an internal release: no callback, free lock */
  const char *verb;      /* of the token script: "release", "extend" */
} alock_op_t;

static alock_op_t *alock_op(miscache_async_t *a, miscache_db_t db,
                            const char *key) {
  return (alock_op_t *)miscache__async_key_op(
      a, sizeof(alock_op_t) - sizeof(miscache__async_key_op_t), db, key, NULL,
      NULL);
}

static void released(miscache_async_t *a, void *p, miscache_status_t st,
                     miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  alock_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  char buf[MISCACHE_ERRMSG_SIZE];
  if (st == MISCACHE_OK) {
    if (miscache__reply_type(r[0]) == MISCACHE__R_INTEGER) {
      st = owner_status(mc, op->lock, miscache__reply_int(r[0]), op->verb);
    } else {
      char what[300];
      snprintf(what, sizeof what, "%s of lock %.200s", op->verb,
               op->lock->key);
      st = miscache__unexpected(mc, op->lock->db, op->lock->key, r[0], what);
    }
    if (st != MISCACHE_OK) {
      snprintf(buf, sizeof buf, "%s", mc->err);
      why = buf;
    }
  }
  if (op->discard) miscache_lock_free(op->lock);
  else op->done(op->ud, st, why);
  free(op);
}

/* EVAL of a token script (release, or extend with arg) for op->lock (no
 * EVALSHA: its NOSCRIPT fallback would be a second round trip in the
 * middle of the pipeline). */
static miscache_status_t send_script(miscache_async_t *a, alock_op_t *op,
                                     const char *src, const char *arg) {
  const char *argv[6] = {"EVAL", src, "1", op->k.full, op->lock->token, arg};
  size_t lens[6] = {4, strlen(src), 1, op->k.flen, strlen(op->lock->token),
                    arg ? strlen(arg) : 0};
  miscache__cmd_t cmd = {arg ? 6 : 5, argv, lens};
  op->verb = arg ? "extend" : "release";
  return miscache__async_send(a, op->lock->db, 1, &cmd, released, op);
}

static miscache_status_t send_release(miscache_async_t *a, alock_op_t *op) {
  return send_script(a, op, miscache__lua_release, NULL);
}

static void acquired(miscache_async_t *a, void *p, miscache_status_t st,
                     miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  alock_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  miscache_lock_t *lock = op->lock;
  char buf[MISCACHE_ERRMSG_SIZE];
  if (st == MISCACHE_OK) {
    size_t rl = 0;
    const char *rs = miscache__reply_str(r[0], &rl);
    if (miscache__reply_is(r[0], MISCACHE__R_STATUS) && rl == 2 &&
        memcmp(rs, "OK", 2) == 0) { /* only +OK is a taken lock */
      op->lock = NULL;
    } else if (miscache__reply_is(r[0], MISCACHE__R_NIL)) {
      st = MISCACHE_ERR_LOCKED; /* the GET behind it says by whom */
      size_t hl = 0;
      const char *h = miscache__reply_is(r[1], MISCACHE__R_STRING)
                          ? miscache__reply_str(r[1], &hl)
                          : NULL;
      json_t *v = h ? miscache__decode(h, hl, NULL, 0) : NULL;
      holder_text(buf, sizeof buf, lock->key, v);
      json_decref(v);
      why = buf;
    } else {
      char what[300];
      snprintf(what, sizeof what, "SET NX %.200s", lock->key);
      st = miscache__unexpected(mc, lock->db, lock->key, r[0], what);
      snprintf(buf, sizeof buf, "%s", mc->err);
      why = buf;
    }
  }
  miscache_async_lock_fn fn = op->fn;
  void *ud = op->ud;
  if (op->lock && (st == MISCACHE_ERR_UNAVAILABLE || st == MISCACHE_ERR_REPLY)) {
    /* the SET may have landed though its reply was lost: release it
     * (only while it still holds our token), without a callback */
    op->discard = true;
    if (send_release(a, op) == MISCACHE_OK) op = NULL;
  }
  if (op) {
    miscache_lock_free(op->lock);
    free(op);
  }
  fn(ud, st, st == MISCACHE_OK ? lock : NULL, why);
}

miscache_status_t miscache_async_lock_acquire(
    miscache_async_t *a, miscache_db_t db, const char *key, int64_t ttl_ms,
    const char *locked_by, const char *batch_id, miscache_async_lock_fn fn,
    void *userdata) {
  miscache_status_t st = miscache__async_check(
      a, fn && key && key[0] && miscache__db_valid(db) && ttl_ms > 0,
      "miscache_async_lock_acquire");
  if (st != MISCACHE_OK) return st;
  miscache_t *mc = miscache__async_mc(a);
  alock_op_t *op = alock_op(a, db, key);
  if (!op) return MISCACHE_ERR_KEY;
  char *val = NULL;
  size_t vlen = 0;
  st = new_lock(mc, db, key, locked_by, batch_id, &op->lock, &val, &vlen);
  if (st != MISCACHE_OK) {
    miscache__async_refuse(a, "%s", mc->err);
    free(op);
    return st;
  }
  op->fn = fn;
  op->ud = userdata;
  char ttl[24];
  const char *argv[6] = {"SET", op->k.full, val, "NX", "PX", ttl};
  size_t lens[6] = {3, op->k.flen, vlen, 2, 2, miscache__i64toa(ttl, ttl_ms)};
  const char *gv[2] = {"GET", op->k.full};
  size_t gl[2] = {3, op->k.flen};
  /* the GET names the holder when the SET is refused (no second trip) */
  miscache__cmd_t cmds[2] = {{6, argv, lens}, {2, gv, gl}};
  st = miscache__async_send(a, db, 2, cmds, acquired, op);
  free(val);
  if (st != MISCACHE_OK) {
    miscache_lock_free(op->lock);
    free(op);
  }
  return st;
}

/* Release (ttl_ms 0) or extend the caller's lock through its token script;
 * args_ok and what for the refusal. */
static miscache_status_t token_call(miscache_async_t *a, miscache_lock_t *lock,
                                    int64_t ttl_ms, bool args_ok,
                                    const char *what,
                                    miscache_async_done_fn fn, void *ud) {
  miscache_status_t st = miscache__async_check(a, args_ok, what);
  if (st != MISCACHE_OK) return st;
  alock_op_t *op = alock_op(a, lock->db, lock->key);
  if (!op) return MISCACHE_ERR_KEY;
  op->lock = lock;
  op->done = fn;
  op->ud = ud;
  char ttl[24];
  if (ttl_ms) miscache__i64toa(ttl, ttl_ms);
  st = ttl_ms ? send_script(a, op, miscache__lua_extend, ttl)
              : send_release(a, op);
  if (st != MISCACHE_OK) free(op);
  return st;
}

miscache_status_t miscache_async_lock_release(miscache_async_t *a,
                                              miscache_lock_t *lock,
                                              miscache_async_done_fn fn,
                                              void *userdata) {
  return token_call(a, lock, 0, lock && fn, "miscache_async_lock_release", fn,
                    userdata);
}

miscache_status_t miscache_async_lock_extend(miscache_async_t *a,
                                             miscache_lock_t *lock,
                                             int64_t ttl_ms,
                                             miscache_async_done_fn fn,
                                             void *userdata) {
  return token_call(a, lock, ttl_ms, lock && fn && ttl_ms > 0,
                    "miscache_async_lock_extend", fn, userdata);
}

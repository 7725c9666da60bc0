/* Typed get/set: the codec of payload.c on top of the generic operations. */
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ops/ops.h"

miscache_status_t miscache__key_company_date(miscache_t *mc, char *buf,
                                             miscache_key_family_id_t f,
                                             int64_t company,
                                             const char *date) {
  miscache_status_t st = miscache__check_date(mc, date, 8);
  if (st != MISCACHE_OK) return st;
  char num[24];
  snprintf(num, sizeof num, "%" PRId64, company);
  return miscache__kf_key(mc, f, buf, num, date);
}

miscache_status_t miscache__typed_get(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d,
                                      void *out) {
  return miscache__get_payload(mc, db, key, d, out);
}

miscache_status_t miscache__typed_set(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d,
                                      const void *in, int64_t ttl_ms) {
  char why[256] = "";
  size_t len = 0;
  bool tree = false;
  char *text = miscache__payload_encode_text(d, in, &len, &tree, why, sizeof why);
  if (text) { /* no extra, no nested object: written straight */
    miscache_status_t st = miscache__set_text(mc, db, key, text, len, ttl_ms);
    free(text);
    return st;
  }
  json_t *v = tree ? miscache__payload_encode(d, in, why, sizeof why) : NULL;
  if (!v) {
    miscache__set_err(mc, "%s: %s", key, why);
    return MISCACHE_ERR_ENCODE;
  }
  miscache_status_t st = miscache_set_ttl_ms(mc, db, key, v, ttl_ms);
  json_decref(v);
  return st;
}

miscache_status_t miscache__check_date(miscache_t *mc, const char *s,
                                       size_t digits) {
  if (!miscache__date_ok(s, digits)) {
    miscache__set_err(mc, "date \"%.32s\" is not %s", s ? s : "(null)",
                      digits == 8 ? "YYYYMMDD" : "YYYYMM");
    return s ? MISCACHE_ERR_KEY : MISCACHE_ERR_INVALID;
  }
  return MISCACHE_OK;
}

typedef struct {
  miscache__typed_loader_fn loader;
  void *userdata;
  const miscache__payload_t *d;
  size_t size;
} typed_loader_t;

/* Runs a typed loader of the old shape and hands the cache-aside its value
 * as JSON. */
static miscache_status_t load_typed_json(void *ud,
                                         const miscache_load_req_t *req,
                                         json_t **out, char *errbuf,
                                         size_t errlen) {
  (void)req;
  typed_loader_t *tl = ud;
  void *tmp = calloc(1, tl->size);
  if (!tmp) return MISCACHE_ERR_NOMEM;
  miscache_status_t st = tl->loader(tl->userdata, tmp);
  if (st == MISCACHE_OK) {
    *out = miscache__payload_encode(tl->d, tmp, errbuf, errlen);
    if (!*out) st = MISCACHE_ERR_ENCODE;
  }
  miscache__payload_clear(tl->d, tmp);
  free(tmp);
  return st;
}

typedef struct {
  const miscache__payload_t *d;
  void *out;
} typed_accept_t;

/* Accepts a value that decodes into the caller's struct (and keeps it). */
static miscache_status_t accept_typed(void *ud, json_t *v, char *why,
                                      size_t whylen) {
  typed_accept_t *ta = ud;
  miscache__payload_clear(ta->d, ta->out);
  return miscache__payload_decode(ta->d, v, ta->out, why, whylen);
}

miscache_status_t
miscache__typed_get_or_load(miscache_t *mc, miscache__aside_t *a,
                            const miscache__payload_t *d, size_t size,
                            miscache__typed_loader_fn typed, void *typed_ud,
                            void *out, miscache_source_t *source) {
  typed_loader_t tl = {typed, typed_ud, d, size};
  typed_accept_t ta = {d, out};
  miscache__direct_t direct = {d, out, false};
  json_t *v = NULL;
  if (typed) {
    a->load = load_typed_json;
    a->userdata = &tl;
  }
  a->accept = accept_typed;
  a->accept_ud = &ta;
  miscache_status_t st =
      miscache__cache_aside_direct(mc, a, &direct, &v, source);
  json_decref(v);
  return st;
}

miscache_status_t miscache__company_typed_aside(
    miscache_t *mc, const miscache__company_typed_t *t, miscache_load_fn load,
    void *userdata, miscache__typed_loader_fn typed, void *typed_ud, void *out,
    miscache_source_t *source) {
  if (out) memset(out, 0, t->size);
  if (source) *source = MISCACHE_SOURCE_NONE;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out || (!typed && !load)) {
    miscache__set_err(mc, "%s get_or_load: out or loader is NULL", t->what);
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__kf_key_int(mc, t->f, key, t->company);
  if (st != MISCACHE_OK) return st;
  miscache__aside_t a = {.db = miscache__kf_db(t->f), .key = key,
                         .ttl = MISCACHE__KF_TTL(t->f), .load = load,
                         .userdata = userdata, .family = (int)t->f,
                         .company = t->company};
  return miscache__typed_get_or_load(mc, &a, t->d, t->size, typed, typed_ud,
                                     out, source);
}

miscache_status_t miscache__json_set_int(json_t *obj, const char *name,
                                         int64_t v) {
  return json_object_set_new(obj, name, json_integer(v)) ? MISCACHE_ERR_NOMEM
                                                         : MISCACHE_OK;
}

miscache_status_t miscache__json_set_str(json_t *obj, const char *name,
                                         const char *v) {
  json_t *s = json_string(v);
  if (!s) return MISCACHE_ERR_ENCODE; /* invalid UTF-8 (or no memory) */
  return json_object_set_new(obj, name, s) ? MISCACHE_ERR_NOMEM : MISCACHE_OK;
}

#define UPDATE_TRIES 16

/* Ends a WATCH that is not followed by EXEC (best effort). */
static void unwatch(miscache_t *mc, miscache_db_t db) {
  const char *argv[1] = {"UNWATCH"};
  size_t lens[1] = {7};
  miscache__cmd_t cmd = {1, argv, lens};
  miscache__reply_t *r = NULL;
  if (miscache__run(mc, (int)db, 1, &cmd, &r, MISCACHE__SAME_CONN) ==
      MISCACHE_OK)
    miscache__reply_free(r);
}

/* One WATCH/GET ... EXEC round. *again when another writer won. */
/* One read-modify-write of typed_update: its key and how to store. */
typedef struct {
  miscache_t *mc;
  miscache_db_t db;
  const char *key; /* logical */
  miscache__fullkey_t fk;
  const miscache__payload_t *d;
  char ttl[24];
  size_t ttl_len;
} update_t;

/* WATCH and GET: *obj the stored object, checked against the payload
 * (a value of the wrong shape is ERR_DECODE, counted as a miss). */
static miscache_status_t watch_get(const update_t *u, json_t **obj) {
  miscache_t *mc = u->mc;
  *obj = NULL;
  const char *wa[2] = {"WATCH", u->fk.ptr}, *ga[2] = {"GET", u->fk.ptr};
  size_t wl[2] = {5, u->fk.len}, gl[2] = {3, u->fk.len};
  miscache__cmd_t rd[2] = {{2, wa, wl}, {2, ga, gl}};
  miscache__reply_t *r[2] = {NULL, NULL};
  miscache_status_t st =
      miscache__run(mc, (int)u->db, 2, rd, r, MISCACHE__IDEMPOTENT);
  if (st != MISCACHE_OK) {
    miscache__count(mc, u->db, u->key, MISCACHE__ERROR);
    return st;
  }
  char why[256] = "";
  if (miscache__reply_type(r[0]) != MISCACHE__R_STATUS) {
    st = miscache__unexpected(mc, u->db, u->key, r[0], "WATCH");
  } else if (miscache__reply_type(r[1]) == MISCACHE__R_NIL) {
    miscache__count(mc, u->db, u->key, MISCACHE__MISS);
    miscache__set_err(mc, "%s: no value to update", u->key);
    st = MISCACHE_MISS;
  } else if (miscache__reply_type(r[1]) != MISCACHE__R_STRING) {
    st = miscache__unexpected(mc, u->db, u->key, r[1], "GET for update");
  } else {
    size_t len;
    const char *s = miscache__reply_str(r[1], &len);
    *obj = miscache__decode(s, len, why, sizeof why);
    void *tmp = *obj ? calloc(1, u->d->size) : NULL;
    if (*obj && !tmp) {
      st = MISCACHE_ERR_NOMEM;
      miscache__set_err(mc, "%s: out of memory (not updated)", u->key);
    } else if (!*obj || (st = miscache__payload_decode(u->d, *obj, tmp, why,
                                                       sizeof why)) !=
                            MISCACHE_OK) {
      if (st != MISCACHE_ERR_NOMEM) {
        st = MISCACHE_ERR_DECODE;
        miscache__count(mc, u->db, u->key, MISCACHE__MISS);
        miscache__count(mc, u->db, u->key, MISCACHE__ERROR);
      }
      miscache__set_err(mc, "value of %s: %s (not updated)", u->key, why);
    } else {
      miscache__count(mc, u->db, u->key, MISCACHE__HIT);
    }
    if (tmp) miscache__payload_clear(u->d, tmp);
    free(tmp);
  }
  miscache__reply_free(r[0]);
  miscache__reply_free(r[1]);
  if (st != MISCACHE_OK) {
    json_decref(*obj);
    *obj = NULL;
  }
  return st;
}

/* MULTI, SET val PX ttl, EXEC on the connection that holds the WATCH:
 * *again when another client wrote the key after our GET. */
static miscache_status_t exec_set(const update_t *u, const char *val,
                                  size_t vlen, bool *again) {
  miscache_t *mc = u->mc;
  const char *ma[1] = {"MULTI"}, *ea[1] = {"EXEC"};
  size_t ml[1] = {5}, el[1] = {4};
  const char *sa[5] = {"SET", u->fk.ptr, val, "PX", u->ttl};
  size_t sl[5] = {3, u->fk.len, vlen, 2, u->ttl_len};
  miscache__cmd_t wr[3] = {{1, ma, ml}, {5, sa, sl}, {1, ea, el}};
  miscache__reply_t *r[3] = {NULL, NULL, NULL};
  /* on the connection that holds the WATCH, never resent elsewhere */
  miscache_status_t st = miscache__run(mc, (int)u->db, 3, wr, r,
                                      MISCACHE__SAME_CONN | MISCACHE__WRITES);
  if (st != MISCACHE_OK) {
    miscache__count(mc, u->db, u->key, MISCACHE__ERROR);
    return st;
  }
  if (miscache__reply_type(r[2]) == MISCACHE__R_NIL) {
    *again = true;
  } else if (miscache__reply_type(r[2]) != MISCACHE__R_ARRAY ||
             miscache__reply_count(r[2]) != 1 ||
             miscache__reply_type(miscache__reply_at(r[2], 0)) !=
                 MISCACHE__R_STATUS) {
    const miscache__reply_t *bad =
        miscache__reply_type(r[1]) == MISCACHE__R_ERROR ? r[1]
        : miscache__reply_type(r[2]) == MISCACHE__R_ARRAY
            ? miscache__reply_at(r[2], 0)
            : r[2];
    st = miscache__unexpected(mc, u->db, u->key, bad, "SET in MULTI/EXEC");
  }
  for (int i = 0; i < 3; i++) miscache__reply_free(r[i]);
  return st;
}

static miscache_status_t update_once(const update_t *u,
                                     miscache__modify_fn fn, void *ud,
                                     bool *again) {
  miscache_t *mc = u->mc;
  *again = false;
  json_t *obj;
  miscache_status_t st = watch_get(u, &obj);
  if (st == MISCACHE_OK) {
    st = fn(mc, ud, obj);
    if (st == MISCACHE_ERR_NOMEM || st == MISCACHE_ERR_ENCODE)
      miscache__set_err(mc, "%s: %s building the new value", u->key,
                        miscache_strerror(st));
  }
  size_t vlen = 0;
  char *val = NULL;
  if (st == MISCACHE_OK && !(val = miscache__encode(obj, &vlen))) {
    st = MISCACHE_ERR_ENCODE;
    miscache__set_err(mc, "%s: the new value cannot be encoded", u->key);
  }
  json_decref(obj);
  if (st != MISCACHE_OK) {
    unwatch(mc, u->db);
    return st;
  }
  st = exec_set(u, val, vlen, again);
  free(val);
  return st;
}

miscache_status_t miscache__typed_update(miscache_t *mc, miscache_db_t db,
                                         const char *key,
                                         const miscache__payload_t *d,
                                         int64_t ttl_ms, miscache__modify_fn fn,
                                         void *ud) {
  update_t u = {.mc = mc, .db = db, .key = key, .d = d};
  miscache_status_t st = miscache__fullkey(mc, key, &u.fk);
  if (st != MISCACHE_OK) return st;
  u.ttl_len = (size_t)snprintf(u.ttl, sizeof u.ttl, "%lld", (long long)ttl_ms);
  bool again = true;
  for (int i = 0; i < UPDATE_TRIES && again && st == MISCACHE_OK; i++) {
    if (i > 0) { /* writers in lock step would collide forever: jitter */
      long max_us = 100L << (i < 7 ? i : 7);
      struct timespec ts = {0, (long)(miscache__rand(mc) % (uint64_t)max_us) *
                                   1000L};
      nanosleep(&ts, NULL);
    }
    st = update_once(&u, fn, ud, &again);
  }
  if (st == MISCACHE_OK && again) {
    miscache__set_err(mc, "%s: other writers changed it %d times in a row; "
                          "not updated", key, UPDATE_TRIES);
    st = MISCACHE_ERR_BUSY;
  }
  miscache__fullkey_done(&u.fk);
  return st;
}

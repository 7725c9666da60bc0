/* The generic async calls (async.h) on the engine of core/async.c: get,
 * set, delete, exists, mget, and cache-aside with an asynchronous loader
 * (get_or_load, and the typed calls of the domain files through
 * miscache__async_aside). Each operation is one allocation: its state and
 * the key bytes it needs after the call returned. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miscache/async.h"
#include "ops/ops.h"

/* ---- an operation on one key
 * ---------------------------------------------------- */

typedef miscache__async_key_op_t key_op_t;

miscache__async_key_op_t *miscache__async_key_op(miscache_async_t *a,
                                                 size_t extra,
                                                 miscache_db_t db,
                                                 const char *key,
                                                 void (*fn)(void), void *ud) {
  miscache_t *mc = miscache__async_mc(a);
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, key, &fk);
  if (st != MISCACHE_OK) {
    miscache__async_refuse(a, "%s", mc->err);
    return NULL;
  }
  size_t kl = strlen(key);
  size_t head = (sizeof(key_op_t) + extra + 15) & ~(size_t)15;
  key_op_t *op = calloc(1, head + kl + 1 + fk.len + 1);
  if (!op) {
    miscache__fullkey_done(&fk);
    miscache__async_refuse(a, "out of memory");
    return NULL;
  }
  op->db = db;
  op->fn = fn;
  op->ud = ud;
  op->key = (char *)op + head;
  memcpy(op->key, key, kl + 1);
  op->full = op->key + kl + 1;
  memcpy(op->full, fk.ptr, fk.len + 1);
  op->flen = fk.len;
  miscache__fullkey_done(&fk);
  return op;
}

static bool key_args(miscache_db_t db, const char *key) {
  return key && key[0] && miscache__db_valid(db);
}

/* The message of mc for a failure (copied before the next call sets it). */
static const char *mc_why(miscache_async_t *a, miscache_status_t st, char *buf,
                          size_t len) {
  if (st == MISCACHE_OK || st == MISCACHE_MISS) return "";
  snprintf(buf, len, "%s", miscache__async_mc(a)->err);
  return buf;
}

/* What the one reply of op's request says: st as the engine gave it (a
 * lost connection or a timeout counted as an error, a cancel not), or,
 * when the reply is not of type want, its mapped status, counted, with
 * *why the handle's message copied into buf. */
static miscache_status_t reply_as(miscache_async_t *a, const key_op_t *op,
                                  miscache_status_t st, miscache__reply_t **r,
                                  miscache__rtype_t want, const char *what,
                                  const char **why, char *buf, size_t len) {
  miscache_t *mc = miscache__async_mc(a);
  if (st == MISCACHE_OK && miscache__reply_type(r[0]) != want) {
    st = miscache__unexpected(mc, op->db, op->key, r[0], what);
    *why = mc_why(a, st, buf, len);
  } else if (st != MISCACHE_OK && st != MISCACHE_ERR_CANCELLED) {
    miscache__count(mc, op->db, op->key, MISCACHE__ERROR);
  }
  return st;
}

/* ---- get
 * ------------------------------------------------------------------------ */

static void get_done(miscache_async_t *a, void *p, miscache_status_t st,
                     miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  key_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  json_t *v = NULL;
  char buf[MISCACHE_ERRMSG_SIZE];
  if (st == MISCACHE_OK) {
    st = miscache__value_from_reply(mc, op->db, op->key, r[0], &v);
    why = mc_why(a, st, buf, sizeof buf);
    if (st == MISCACHE_OK && op->nt.use) {
      long long left = miscache__reply_type(r[1]) == MISCACHE__R_INTEGER
                           ? miscache__reply_int(r[1])
                           : -2;
      size_t vlen = 0;
      miscache__reply_str(r[0], &vlen);
      miscache__near_put(mc, op->db, op->full, op->flen, v, vlen, left,
                         &op->nt);
    }
  } else if (st != MISCACHE_ERR_CANCELLED) {
    miscache__count(mc, op->db, op->key, MISCACHE__ERROR);
  }
  ((miscache_async_value_fn)op->fn)(op->ud, st, v, why);
  free(op);
}

/* GET (and PTTL when the near cache will keep the value) of op's key. */
static miscache_status_t send_get(miscache_async_t *a, key_op_t *op,
                                  miscache__async_done_fn done) {
  const char *ga[2] = {"GET", op->full}, *pa[2] = {"PTTL", op->full};
  size_t gl[2] = {3, op->flen}, pl[2] = {4, op->flen};
  miscache__cmd_t cmds[2] = {{2, ga, gl}, {2, pa, pl}};
  return miscache__async_send(a, op->db, op->nt.use ? 2 : 1, cmds, done, op);
}

miscache_status_t miscache_async_get(miscache_async_t *a, miscache_db_t db,
                                     const char *key,
                                     miscache_async_value_fn fn,
                                     void *userdata) {
  miscache_status_t st =
      miscache__async_check(a, fn && key_args(db, key), "miscache_async_get");
  if (st != MISCACHE_OK) return st;
  key_op_t *op = miscache__async_key_op(a, 0, db, key, (void (*)(void))fn, userdata);
  if (!op) return MISCACHE_ERR_KEY;
  miscache_t *mc = miscache__async_mc(a);
  if (miscache__pending_covers(mc->pending, db, key)) {
    /* an invalidation of it is pending (a pool's blocking handles keep
     * it): a miss, answered now */
    miscache__count(mc, db, key, MISCACHE__MISS);
    miscache__async_enter(a);
    fn(userdata, MISCACHE_MISS, NULL, "");
    free(op);
    miscache__async_leave(a);
    return MISCACHE_OK;
  }
  if (mc->near) {
    json_t *v = miscache__near_get(mc, db, op->full, op->flen, &op->nt, NULL);
    if (v) { /* answered now, without the loop */
      miscache__count(mc, db, key, MISCACHE__HIT);
      miscache__async_enter(a);
      fn(userdata, MISCACHE_OK, v, "");
      free(op);
      miscache__async_leave(a);
      return MISCACHE_OK;
    }
  }
  st = send_get(a, op, get_done);
  if (st != MISCACHE_OK) free(op);
  return st;
}

/* ---- set, delete, exists
 * --------------------------------------------------------- */

static void set_done(miscache_async_t *a, void *p, miscache_status_t st,
                     miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  key_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  char buf[MISCACHE_ERRMSG_SIZE];
  /* read your writes: whatever came back, the write may have landed */
  miscache__near_evict(mc, op->full, op->flen);
  st = reply_as(a, op, st, r, MISCACHE__R_STATUS, "SET", &why, buf,
                sizeof buf);
  if (op->fn) ((miscache_async_done_fn)op->fn)(op->ud, st, why);
  free(op);
}

/* SET full text PX ms for op (its callback a done_fn, or none). */
static miscache_status_t send_set(miscache_async_t *a, key_op_t *op,
                                  const char *text, size_t tlen, int64_t ms,
                                  miscache__async_done_fn done) {
  char ttl[24];
  const char *argv[5] = {"SET", op->full, text, "PX", ttl};
  size_t lens[5] = {3, op->flen, tlen, 2, miscache__i64toa(ttl, ms)};
  miscache__cmd_t cmd = {5, argv, lens};
  miscache_t *mc = miscache__async_mc(a);
  miscache__near_evict(mc, op->full, op->flen); /* reads after it miss */
  return miscache__async_send(a, op->db, 1, &cmd, done, op);
}

miscache_status_t miscache_async_set(miscache_async_t *a, miscache_db_t db,
                                     const char *key, const json_t *value,
                                     miscache_ttl_class_t cls,
                                     miscache_async_done_fn fn,
                                     void *userdata) {
  miscache_status_t st = miscache__async_check(
      a, fn && key_args(db, key) && value && miscache__ttl_valid(cls),
      "miscache_async_set");
  if (st != MISCACHE_OK) return st;
  size_t vl = 0;
  char *v = miscache__encode(value, &vl);
  if (!v) {
    miscache__async_refuse(a, "miscache_async_set: value cannot be encoded "
                              "as JSON (a string that is not UTF-8?)");
    return MISCACHE_ERR_ENCODE;
  }
  key_op_t *op = miscache__async_key_op(a, 0, db, key, (void (*)(void))fn, userdata);
  if (!op) {
    free(v);
    return MISCACHE_ERR_KEY;
  }
  st = send_set(a, op, v, vl, miscache__ttl_ms(miscache__async_mc(a), cls),
                set_done);
  if (st != MISCACHE_OK) free(op);
  free(v);
  return st;
}

static void bool_done(miscache_async_t *a, void *p, miscache_status_t st,
                      miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  key_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  char buf[MISCACHE_ERRMSG_SIZE];
  long long k = 0;
  bool unlink = op->nt.use; /* (no ticket here: the flag marks UNLINK) */
  if (unlink) miscache__near_evict(mc, op->full, op->flen);
  st = reply_as(a, op, st, r, MISCACHE__R_INTEGER,
                unlink ? "UNLINK" : "EXISTS", &why, buf, sizeof buf);
  if (st == MISCACHE_OK) k = miscache__reply_int(r[0]);
  ((miscache_async_bool_fn)op->fn)(op->ud, st, k > 0, why);
  free(op);
}

static miscache_status_t one_key(miscache_async_t *a, bool unlink,
                                 miscache_db_t db, const char *key,
                                 miscache_async_bool_fn fn, void *userdata) {
  miscache_status_t st = miscache__async_check(
      a, fn && key_args(db, key),
      unlink ? "miscache_async_delete" : "miscache_async_exists");
  if (st != MISCACHE_OK) return st;
  key_op_t *op = miscache__async_key_op(a, 0, db, key, (void (*)(void))fn, userdata);
  if (!op) return MISCACHE_ERR_KEY;
  op->nt.use = unlink;
  const char *name = unlink ? "UNLINK" : "EXISTS";
  const char *argv[2] = {name, op->full};
  size_t lens[2] = {strlen(name), op->flen};
  miscache__cmd_t cmd = {2, argv, lens};
  if (unlink) miscache__near_evict(miscache__async_mc(a), op->full, op->flen);
  st = miscache__async_send(a, db, 1, &cmd, bool_done, op);
  if (st != MISCACHE_OK) free(op);
  return st;
}

miscache_status_t miscache_async_delete(miscache_async_t *a, miscache_db_t db,
                                        const char *key,
                                        miscache_async_bool_fn fn,
                                        void *userdata) {
  return one_key(a, true, db, key, fn, userdata);
}

miscache_status_t miscache_async_exists(miscache_async_t *a, miscache_db_t db,
                                        const char *key,
                                        miscache_async_bool_fn fn,
                                        void *userdata) {
  return one_key(a, false, db, key, fn, userdata);
}

/* ---- mget
 * -----------------------------------------------------------------------------
 */

#define MGET_MAX 100000

typedef struct {
  miscache_db_t db;
  miscache_async_values_fn fn;
  void *ud;
  size_t n;
  char **keys; /* logical, for counters and messages */
} mget_op_t;

static void mget_done(miscache_async_t *a, void *p, miscache_status_t st,
                      miscache__reply_t **r, size_t nr, const char *why) {
  (void)nr;
  mget_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  json_t **values = calloc(op->n ? op->n : 1, sizeof *values);
  miscache_status_t *sts = calloc(op->n ? op->n : 1, sizeof *sts);
  char buf[MISCACHE_ERRMSG_SIZE];
  if (!values || !sts) {
    st = MISCACHE_ERR_NOMEM;
    why = "out of memory reading the MGET reply";
  } else if (st == MISCACHE_OK &&
             (miscache__reply_type(r[0]) != MISCACHE__R_ARRAY ||
              miscache__reply_count(r[0]) != op->n)) {
    st = miscache__unexpected(mc, op->db, op->keys[0], r[0], "MGET");
    if (st == MISCACHE_OK || st == MISCACHE_ERR_DECODE) st = MISCACHE_ERR_REPLY;
    why = mc_why(a, st, buf, sizeof buf);
  } else if (st == MISCACHE_OK) {
    for (size_t i = 0; i < op->n; i++) {
      const miscache__reply_t *e = miscache__reply_at(r[0], i);
      miscache_status_t one =
          miscache__value_from_reply(mc, op->db, op->keys[i], e, &values[i]);
      if (one != MISCACHE_OK && one != MISCACHE_MISS &&
          one != MISCACHE_ERR_DECODE) { /* an element that is no value */
        for (size_t j = 0; j <= i; j++) {
          json_decref(values[j]);
          values[j] = NULL;
        }
        st = one;
        why = mc_why(a, st, buf, sizeof buf);
        break;
      }
      sts[i] = one;
    }
  } else if (st != MISCACHE_ERR_CANCELLED) {
    miscache__count(mc, op->db, op->keys[0], MISCACHE__ERROR);
  }
  if (st != MISCACHE_OK && sts)
    for (size_t i = 0; i < op->n; i++)
      sts[i] = st;
  static json_t *const none[1] = {NULL};
  static const miscache_status_t nomem[1] = {MISCACHE_ERR_NOMEM};
  op->fn(op->ud, st, values ? op->n : 0, values ? values : none,
         sts ? sts : nomem, why);
  free(values);
  free(sts);
  free(op);
}

miscache_status_t miscache_async_mget(miscache_async_t *a, miscache_db_t db,
                                      size_t n, const char *const keys[],
                                      miscache_async_values_fn fn,
                                      void *userdata) {
  bool ok = fn && keys && n >= 1 && n <= MGET_MAX && miscache__db_valid(db);
  for (size_t i = 0; ok && i < n; i++)
    ok = keys[i] && keys[i][0];
  miscache_status_t st = miscache__async_check(a, ok, "miscache_async_mget");
  if (st != MISCACHE_OK) return st;
  miscache_t *mc = miscache__async_mc(a);
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++)
    bytes += strlen(keys[i]) + 1;
  mget_op_t *op = calloc(1, sizeof *op + n * sizeof(char *) + bytes);
  const char **argv = calloc(n + 1, sizeof *argv);
  size_t *lens = calloc(n + 1, sizeof *lens);
  miscache__fullkey_t *fks = calloc(n, sizeof *fks);
  size_t made = 0;
  if (!op || !argv || !lens || !fks) {
    miscache__async_refuse(a, "out of memory");
    st = MISCACHE_ERR_NOMEM;
    goto out;
  }
  op->db = db;
  op->fn = fn;
  op->ud = userdata;
  op->n = n;
  op->keys = (char **)(op + 1);
  char *at = (char *)(op->keys + n);
  argv[0] = "MGET";
  lens[0] = 4;
  for (; made < n; made++) {
    size_t kl = strlen(keys[made]);
    op->keys[made] = memcpy(at, keys[made], kl + 1);
    at += kl + 1;
    st = miscache__fullkey(mc, keys[made], &fks[made]);
    if (st != MISCACHE_OK) {
      miscache__async_refuse(a, "%s", mc->err);
      goto out;
    }
    argv[made + 1] = fks[made].ptr;
    lens[made + 1] = fks[made].len;
  }
  miscache__cmd_t cmd = {(int)(n + 1), argv, lens};
  st = miscache__async_send(a, db, 1, &cmd, mget_done, op);
out:
  for (size_t i = 0; fks && i < made; i++)
    miscache__fullkey_done(&fks[i]);
  free(fks);
  free(argv);
  free(lens);
  if (st != MISCACHE_OK) free(op);
  return st;
}

/* ---- cache-aside
 * ------------------------------------------------------------------------ */

struct miscache_async_load {
  miscache_async_t *a; /* NULL once the call was cancelled */
  struct aside_op *op;
};

typedef struct aside_op {
  key_op_t k;                  /* its fn/ud unused: fin below */
  miscache__async_wait_t wait; /* while the loader works */
  miscache__async_aside_t spec;
  miscache__async_fin_fn fin;
  void *ctx;
  bool store;     /* the loader's value goes to the cache */
  json_t *loaded; /* the loader's value while it is stored */
  miscache_async_load_t *ticket;
  char why[MISCACHE_ERRMSG_SIZE]; /* the cache's failure, kept for fail-open */
  /* single flight on the handle: calls that missed the same key while
   * this one's loader works wait for its answer instead of loading */
  struct aside_op *leader;    /* a follower's leader (NULL once answered) */
  struct aside_op *followers; /* a leader's, linked by next */
  struct aside_op *next;
} aside_op_t;

static void aside_cancel(miscache_async_t *a, miscache__async_wait_t *w);
static void follower_cancel(miscache_async_t *a, miscache__async_wait_t *w);

static void aside_end(miscache_async_t *a, aside_op_t *op, miscache_status_t st,
                      json_t *v, miscache_source_t src, const char *why) {
  why = why ? why : "";
  aside_op_t *f = op->followers;
  op->followers = NULL;
  /* the followers get the leader's answer, a copy each, made before the
   * leader's fin takes v; when the leader was cancelled they stay waiting,
   * to be cancelled in their turn */
  for (aside_op_t *x = f; x; x = x->next) {
    x->leader = NULL;
    x->loaded = v && st != MISCACHE_ERR_CANCELLED ? json_deep_copy(v) : NULL;
  }
  char text[MISCACHE_ERRMSG_SIZE];
  snprintf(text, sizeof text, "%s", why);
  op->fin(op->ctx, st, v, src, text);
  free(op);
  while (st != MISCACHE_ERR_CANCELLED && f) {
    aside_op_t *next = f->next;
    json_t *c = f->loaded;
    f->loaded = NULL;
    miscache__async_wait_remove(a, &f->wait);
    if (v && !c) aside_end(a, f, MISCACHE_ERR_NOMEM, NULL, src, "out of memory");
    else aside_end(a, f, st, c, src, text);
    f = next;
  }
}

/* A leader for op: a call of the same key, loader and value check whose
 * loader works now. */
static aside_op_t *flight_of(miscache_async_t *a, const aside_op_t *op) {
  for (miscache__async_wait_t *w = miscache__async_waits(a); w; w = w->next) {
    if (w->cancel != aside_cancel) continue;
    aside_op_t *l = (aside_op_t *)((char *)w - offsetof(aside_op_t, wait));
    if (l->k.db == op->k.db && l->k.flen == op->k.flen &&
        l->spec.load == op->spec.load && l->spec.load_ud == op->spec.load_ud &&
        l->spec.base.accept == op->spec.base.accept &&
        l->spec.base.accept_ud == op->spec.base.accept_ud &&
        memcmp(l->k.full, op->k.full, op->k.flen) == 0)
      return l;
  }
  return NULL;
}

static void follower_cancel(miscache_async_t *a, miscache__async_wait_t *w) {
  aside_op_t *op = (aside_op_t *)((char *)w - offsetof(aside_op_t, wait));
  if (op->leader) { /* out of its leader's list */
    aside_op_t **pp = &op->leader->followers;
    while (*pp && *pp != op) pp = &(*pp)->next;
    if (*pp) *pp = op->next;
    op->leader = NULL;
  }
  aside_end(a, op, MISCACHE_ERR_CANCELLED, NULL, MISCACHE_SOURCE_NONE,
            "cancelled: the async handle was freed while the loader worked");
}

static bool aside_accepts(const aside_op_t *op, json_t *v, char *why,
                          size_t len) {
  return !op->spec.base.accept ||
         op->spec.base.accept(op->spec.base.accept_ud, v, why, len) ==
             MISCACHE_OK;
}

static void aside_stored(miscache_async_t *a, void *p, miscache_status_t st,
                         miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  aside_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  miscache__near_evict(mc, op->k.full, op->k.flen);
  json_t *v = op->loaded;
  op->loaded = NULL;
  if (st == MISCACHE_ERR_CANCELLED) {
    json_decref(v);
    aside_end(a, op, st, NULL, MISCACHE_SOURCE_NONE, why);
    return;
  }
  char buf[MISCACHE_ERRMSG_SIZE] = "";
  if (st == MISCACHE_OK && miscache__reply_type(r[0]) != MISCACHE__R_STATUS) {
    st = miscache__unexpected(mc, op->k.db, op->k.key, r[0], "SET");
    why = mc_why(a, st, buf, sizeof buf);
  }
  /* stored, or not (fail-open): the value either way */
  aside_end(a, op, MISCACHE_OK, v,
            st == MISCACHE_OK ? MISCACHE_SOURCE_LOADED
                              : MISCACHE_SOURCE_UNCACHED,
            st == MISCACHE_OK ? "" : why);
}

void miscache_async_load_done(miscache_async_load_t *t, miscache_status_t st,
                              json_t *value, const char *errmsg) {
  if (!t) {
    json_decref(value);
    return;
  }
  miscache_async_t *a = t->a;
  aside_op_t *op = t->op;
  free(t);
  if (!a) { /* the call was cancelled at free */
    json_decref(value);
    return;
  }
  op->ticket = NULL;
  miscache__async_wait_remove(a, &op->wait);
  miscache__async_enter(a);
  char why[MISCACHE_ERRMSG_SIZE];
  if (st == MISCACHE_OK && !value) st = MISCACHE_ERR_LOADER;
  if (st == MISCACHE_OK && !aside_accepts(op, value, why, sizeof why)) {
    char msg[MISCACHE_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "loader's value for %.200s refused: %.256s",
             op->k.key, why);
    json_decref(value);
    aside_end(a, op, MISCACHE_ERR_LOADER, NULL, MISCACHE_SOURCE_NONE, msg);
  } else if (st == MISCACHE_OK) {
    size_t vl = 0;
    char *text = op->store ? miscache__encode(value, &vl) : NULL;
    miscache_t *mc = miscache__async_mc(a);
    op->loaded = value;
    if (text && send_set(a, &op->k, text, vl,
                         miscache__ttl_resolve(mc, op->spec.base.ttl),
                         aside_stored) == MISCACHE_OK) {
      free(text); /* fin once the store answers */
    } else {
      free(text);
      op->loaded = NULL;
      aside_end(a, op, MISCACHE_OK, value, MISCACHE_SOURCE_UNCACHED,
                op->store ? miscache_async_errmsg(a) : op->why);
    }
  } else if (st == MISCACHE_MISS) {
    json_decref(value);
    aside_end(a, op, MISCACHE_MISS, NULL, MISCACHE_SOURCE_NONE, "");
  } else {
    char msg[MISCACHE_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "loader failed for %.200s (%s)%s%.256s",
             op->k.key, miscache_strerror(st), errmsg && errmsg[0] ? ": " : "",
             errmsg ? errmsg : "");
    json_decref(value);
    aside_end(a, op, MISCACHE_ERR_LOADER, NULL, MISCACHE_SOURCE_NONE, msg);
  }
  miscache__async_leave(a);
}

static void aside_cancel(miscache_async_t *a, miscache__async_wait_t *w) {
  aside_op_t *op = (aside_op_t *)((char *)w - offsetof(aside_op_t, wait));
  if (op->ticket) op->ticket->a = NULL; /* load_done only frees it now */
  aside_end(a, op, MISCACHE_ERR_CANCELLED, NULL, MISCACHE_SOURCE_NONE,
            "cancelled: the async handle was freed while the loader worked");
}

/* The loader's turn; store: what it gives goes to the cache. */
static void aside_load(miscache_async_t *a, aside_op_t *op, bool store) {
  aside_op_t *l = flight_of(a, op);
  if (l) { /* its loader is asked already: wait for the answer */
    op->leader = l;
    op->next = l->followers;
    l->followers = op;
    op->wait.cancel = follower_cancel;
    miscache__async_wait_add(a, &op->wait);
    return;
  }
  miscache_async_load_t *t = calloc(1, sizeof *t);
  if (!t) {
    aside_end(a, op, MISCACHE_ERR_NOMEM, NULL, MISCACHE_SOURCE_NONE,
              "out of memory");
    return;
  }
  t->a = a;
  t->op = op;
  op->ticket = t;
  op->store = store;
  op->wait.cancel = aside_cancel;
  miscache__async_wait_add(a, &op->wait);
  miscache_load_req_t req = {.db = op->k.db,
                             .key = op->k.key,
                             .family = op->spec.base.family,
                             .company = op->spec.base.company,
                             .id = op->spec.base.id,
                             .date = op->spec.base.date};
  op->spec.load(op->spec.load_ud, &req, t); /* may answer at once */
}

static void aside_read(miscache_async_t *a, void *p, miscache_status_t st,
                       miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  aside_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  if (st == MISCACHE_ERR_CANCELLED) {
    aside_end(a, op, st, NULL, MISCACHE_SOURCE_NONE, why);
    return;
  }
  json_t *v = NULL;
  if (st == MISCACHE_OK) {
    st = miscache__value_from_reply(mc, op->k.db, op->k.key, r[0], &v);
    why = mc_why(a, st, op->why, sizeof op->why);
  } else {
    miscache__count(mc, op->k.db, op->k.key, MISCACHE__ERROR);
    snprintf(op->why, sizeof op->why, "%s", why);
  }
  if (st == MISCACHE_OK) {
    char bad[256];
    if (aside_accepts(op, v, bad, sizeof bad)) {
      if (op->k.nt.use) {
        long long left = miscache__reply_type(r[1]) == MISCACHE__R_INTEGER
                             ? miscache__reply_int(r[1])
                             : -2;
        size_t vlen = 0;
        miscache__reply_str(r[0], &vlen);
        miscache__near_put(mc, op->k.db, op->k.full, op->k.flen, v, vlen, left,
                           &op->k.nt);
      }
      aside_end(a, op, MISCACHE_OK, v, MISCACHE_SOURCE_CACHE, "");
      return;
    }
    /* valid JSON the caller cannot use: a miss that the loader replaces */
    json_decref(v);
    miscache__hit_unusable(mc, op->k.db, op->k.key);
    st = MISCACHE_ERR_DECODE;
  }
  /* a miss or an unusable value is replaced; with the server failing the
   * loader's value is handed out uncached */
  aside_load(a, op, st == MISCACHE_MISS || st == MISCACHE_ERR_DECODE);
}

miscache_status_t miscache__async_aside(miscache_async_t *a,
                                        const miscache__async_aside_t *spec,
                                        miscache__async_fin_fn fin, void *ctx) {
  aside_op_t *op =
      (aside_op_t *)miscache__async_key_op(a, sizeof(aside_op_t) - sizeof(key_op_t),
                           spec->base.db, spec->base.key, NULL, NULL);
  if (!op) return MISCACHE_ERR_KEY;
  op->spec = *spec;
  op->spec.base.key = op->k.key;
  op->fin = fin;
  op->ctx = ctx;
  miscache_t *mc = miscache__async_mc(a);
  if (miscache__pending_covers(mc->pending, spec->base.db, spec->base.key)) {
    /* a pending invalidation covers it: load, and store nothing before
     * the invalidation has run */
    miscache__count(mc, spec->base.db, spec->base.key, MISCACHE__MISS);
    snprintf(op->why, sizeof op->why,
             "%.300s: an invalidation of it is pending; not stored",
             spec->base.key);
    miscache__async_enter(a);
    aside_load(a, op, false);
    miscache__async_leave(a);
    return MISCACHE_OK;
  }
  if (mc->near) {
    json_t *v = miscache__near_get(mc, spec->base.db, op->k.full, op->k.flen,
                                   &op->k.nt, NULL);
    char bad[256];
    if (v && aside_accepts(op, v, bad, sizeof bad)) {
      miscache__count(mc, spec->base.db, spec->base.key, MISCACHE__HIT);
      miscache__async_enter(a);
      aside_end(a, op, MISCACHE_OK, v, MISCACHE_SOURCE_CACHE, "");
      miscache__async_leave(a);
      return MISCACHE_OK;
    }
    json_decref(v);
    if (v) op->k.nt.use = false; /* refused: read it from the server */
  }
  miscache_status_t st = send_get(a, &op->k, aside_read);
  if (st != MISCACHE_OK) free(op);
  return st;
}

/* get_or_load's end: the caller's callback (ops.h). */
void miscache__async_source_fin(void *p, miscache_status_t st, json_t *v,
                                miscache_source_t src, const char *why) {
  miscache__async_source_ctx_t c = *(miscache__async_source_ctx_t *)p;
  free(p);
  c.fn(c.ud, st, v, src, why);
}

miscache_status_t
miscache_async_get_or_load(miscache_async_t *a, miscache_db_t db,
                           const char *key, miscache_ttl_class_t cls,
                           miscache_async_load_fn load, void *load_userdata,
                           miscache_async_source_fn fn, void *userdata) {
  miscache_status_t st = miscache__async_check(
      a, fn && load && key_args(db, key) && miscache__ttl_valid(cls),
      "miscache_async_get_or_load");
  if (st != MISCACHE_OK) return st;
  miscache__async_source_ctx_t *c = malloc(sizeof *c);
  if (!c) {
    miscache__async_refuse(a, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  c->fn = fn;
  c->ud = userdata;
  miscache__async_aside_t spec = {.base = {.db = db,
                                           .key = key,
                                           .ttl = MISCACHE__TTL_OF(cls),
                                           .family = -1},
                                  .load = load,
                                  .load_ud = load_userdata};
  st = miscache__async_aside(a, &spec, miscache__async_source_fin, c);
  if (st != MISCACHE_OK) free(c);
  return st;
}

/* ---- typed payloads
 * ---------------------------------------------------------------- */

typedef struct {
  key_op_t k;
  const miscache__payload_t *d;
  miscache__async_typed_fn fn;
  void *ctx;
  /* update */
  int64_t ttl_ms;
  miscache__modify_fn modify;
  void *modify_ud;
  miscache_async_done_fn done;
  void *done_ud;
  int tries;
  char *sent; /* the new value of the compare-and-set in flight */
  size_t sent_len;
} typed_op_t;

static typed_op_t *typed_op(miscache_async_t *a, miscache_db_t db,
                            const char *key, const miscache__payload_t *d) {
  typed_op_t *op = (typed_op_t *)miscache__async_key_op(
      a, sizeof(typed_op_t) - sizeof(key_op_t) + 15 + d->size, db, key, NULL,
      NULL);
  if (op) op->d = d;
  return op;
}

/* The struct of a typed op: after the op's fields, before the key bytes
 * (key_op placed those after the rounded head). */
static void *typed_out(typed_op_t *op) {
  return (char *)op + ((sizeof(typed_op_t) + 15) & ~(size_t)15);
}

static void typed_read(miscache_async_t *a, void *p, miscache_status_t st,
                       miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  typed_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  void *out = typed_out(op);
  char buf[MISCACHE_ERRMSG_SIZE];
  size_t len = 0;
  const char *text =
      st == MISCACHE_OK && miscache__reply_type(r[0]) == MISCACHE__R_STRING
          ? miscache__reply_str(r[0], &len)
          : NULL;
  if (text && miscache__payload_decode_text(op->d, text, len, out) ==
                  MISCACHE_OK) { /* straight from the bytes */
    miscache__count(mc, op->k.db, op->k.key, MISCACHE__HIT);
  } else if (st == MISCACHE_OK) {
    json_t *v = NULL;
    st = miscache__value_from_reply(mc, op->k.db, op->k.key, r[0], &v);
    if (st == MISCACHE_OK) {
      char bad[256] = "";
      st = miscache__payload_decode(op->d, v, out, bad, sizeof bad);
      if (st == MISCACHE_ERR_DECODE)
        miscache__hit_unusable(mc, op->k.db, op->k.key);
      if (st != MISCACHE_OK)
        miscache__set_err(mc, "value of %s: %s", op->k.key, bad);
      json_decref(v);
    }
    why = mc_why(a, st, buf, sizeof buf);
  } else if (st != MISCACHE_ERR_CANCELLED) {
    miscache__count(mc, op->k.db, op->k.key, MISCACHE__ERROR);
  }
  op->fn(op->ctx, st, st == MISCACHE_OK ? out : NULL, why);
  miscache__payload_clear(op->d, out);
  free(op);
}

miscache_status_t miscache__async_typed_get(miscache_async_t *a,
                                            miscache_db_t db, const char *key,
                                            const miscache__payload_t *d,
                                            miscache__async_typed_fn fn,
                                            void *ctx) {
  typed_op_t *op = typed_op(a, db, key, d);
  if (!op) return MISCACHE_ERR_KEY;
  op->fn = fn;
  op->ctx = ctx;
  miscache_status_t st = send_get(a, &op->k, typed_read);
  if (st != MISCACHE_OK) free(op);
  return st;
}

miscache_status_t miscache__async_typed_set(miscache_async_t *a,
                                            miscache_db_t db, const char *key,
                                            const miscache__payload_t *d,
                                            const void *in, int64_t ttl_ms,
                                            miscache_async_done_fn fn,
                                            void *ud) {
  char why[256] = "";
  size_t len = 0;
  bool tree = false;
  char *text =
      miscache__payload_encode_text(d, in, &len, &tree, why, sizeof why);
  if (!text && tree) {
    json_t *v = miscache__payload_encode(d, in, why, sizeof why);
    text = v ? miscache__encode(v, &len) : NULL;
    json_decref(v);
  }
  if (!text) {
    miscache__async_refuse(a, "%s: %s", key, why[0] ? why : "cannot encode");
    return MISCACHE_ERR_ENCODE;
  }
  key_op_t *op = miscache__async_key_op(a, 0, db, key, (void (*)(void))fn, ud);
  miscache_status_t st = MISCACHE_ERR_KEY;
  if (op) {
    st = send_set(a, op, text, len, ttl_ms, set_done);
    if (st != MISCACHE_OK) free(op);
  }
  free(text);
  return st;
}

/* The compare-and-set of an update: written only while the value is still
 * the one read. */
static const char cas_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end "
    "return 0";

#define UPDATE_TRIES 16

static void update_end(miscache_async_t *a, typed_op_t *op,
                       miscache_status_t st, const char *why) {
  miscache__near_evict(miscache__async_mc(a), op->k.full, op->k.flen);
  op->done(op->done_ud, st, why ? why : "");
  free(op->sent);
  free(op);
}

static void update_read(miscache_async_t *a, void *p, miscache_status_t st,
                        miscache__reply_t **r, size_t n, const char *why);

static void update_cas(miscache_async_t *a, void *p, miscache_status_t st,
                       miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  typed_op_t *op = p;
  char buf[MISCACHE_ERRMSG_SIZE];
  st = reply_as(a, &op->k, st, r, MISCACHE__R_INTEGER, "compare-and-set", &why,
                buf, sizeof buf);
  if (st != MISCACHE_OK || miscache__reply_int(r[0]) == 1) {
    update_end(a, op, st, why);
    return;
  }
  /* another client wrote in between: read again */
  free(op->sent);
  op->sent = NULL;
  if (++op->tries >= UPDATE_TRIES) {
    snprintf(buf, sizeof buf,
             "%.300s: other writers changed it %d times in a row; not updated",
             op->k.key, UPDATE_TRIES);
    update_end(a, op, MISCACHE_ERR_BUSY, buf);
    return;
  }
  op->k.nt.use = false;
  if (send_get(a, &op->k, update_read) != MISCACHE_OK)
    update_end(a, op, MISCACHE_ERR_UNAVAILABLE, miscache_async_errmsg(a));
}

static void update_read(miscache_async_t *a, void *p, miscache_status_t st,
                        miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  typed_op_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  char buf[MISCACHE_ERRMSG_SIZE];
  if (st != MISCACHE_OK) {
    if (st != MISCACHE_ERR_CANCELLED)
      miscache__count(mc, op->k.db, op->k.key, MISCACHE__ERROR);
    update_end(a, op, st, why);
    return;
  }
  if (miscache__reply_type(r[0]) == MISCACHE__R_NIL) {
    miscache__count(mc, op->k.db, op->k.key, MISCACHE__MISS);
    snprintf(buf, sizeof buf, "%.300s: no value to update", op->k.key);
    update_end(a, op, MISCACHE_MISS, buf);
    return;
  }
  json_t *obj = NULL;
  st = miscache__value_from_reply(mc, op->k.db, op->k.key, r[0], &obj);
  void *tmp = typed_out(op);
  if (st == MISCACHE_OK) { /* the value must be one of the payload's */
    char bad[256] = "";
    st = miscache__payload_decode(op->d, obj, tmp, bad, sizeof bad);
    miscache__payload_clear(op->d, tmp);
    if (st == MISCACHE_ERR_DECODE) {
      miscache__hit_unusable(mc, op->k.db, op->k.key);
      miscache__set_err(mc, "value of %s: %s (not updated)", op->k.key, bad);
    }
  }
  if (st == MISCACHE_OK) {
    st = op->modify(mc, op->modify_ud, obj);
    if (st != MISCACHE_OK)
      miscache__set_err(mc, "%s: %s building the new value", op->k.key,
                        miscache_strerror(st));
  }
  if (st == MISCACHE_OK && !(op->sent = miscache__encode(obj, &op->sent_len))) {
    st = MISCACHE_ERR_ENCODE;
    miscache__set_err(mc, "%s: the new value cannot be encoded", op->k.key);
  }
  json_decref(obj);
  if (st != MISCACHE_OK) {
    update_end(a, op, st, mc_why(a, st, buf, sizeof buf));
    return;
  }
  size_t ol = 0;
  const char *old = miscache__reply_str(r[0], &ol);
  char ttl[24];
  const char *argv[7] = {"EVAL", cas_script, "1", op->k.full,
                         old,    op->sent,   ttl};
  size_t lens[7] = {4,
                    sizeof cas_script - 1,
                    1,
                    op->k.flen,
                    ol,
                    op->sent_len,
                    miscache__i64toa(ttl, op->ttl_ms)};
  miscache__cmd_t cmd = {7, argv, lens};
  miscache__near_evict(mc, op->k.full, op->k.flen);
  if (miscache__async_send(a, op->k.db, 1, &cmd, update_cas, op) != MISCACHE_OK)
    update_end(a, op, MISCACHE_ERR_UNAVAILABLE, miscache_async_errmsg(a));
}

miscache_status_t miscache__async_typed_update(
    miscache_async_t *a, miscache_db_t db, const char *key,
    const miscache__payload_t *d, int64_t ttl_ms, miscache__modify_fn modify,
    void *modify_ud, miscache_async_done_fn fn, void *ud) {
  typed_op_t *op = typed_op(a, db, key, d);
  if (!op) return MISCACHE_ERR_KEY;
  op->ttl_ms = ttl_ms;
  op->modify = modify;
  op->modify_ud = modify_ud;
  op->done = fn;
  op->done_ud = ud;
  miscache_status_t st = send_get(a, &op->k, update_read);
  if (st != MISCACHE_OK) free(op);
  return st;
}

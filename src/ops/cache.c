/* Generic JSON operations and cache-aside on top of the routed connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/ops.h"

#define CHECK_DB(mc, db)                                                       \
  do {                                                                         \
    if (!miscache__db_valid(db)) {                                             \
      miscache__set_err(mc, "logical db %d out of range", (int)(db));          \
      return MISCACHE_ERR_INVALID;                                             \
    }                                                                          \
  } while (0)

/* Turns a GET-style reply into a value: OK, MISS or ERR_DECODE/ERR_SERVER.
 * Counts the hit or miss. */
miscache_status_t miscache__value_from_reply(miscache_t *mc, miscache_db_t db,
                                            const char *key,
                                            const miscache__reply_t *r,
                                            json_t **out) {
  *out = NULL;
  switch (miscache__reply_type(r)) {
  case MISCACHE__R_NIL:
    miscache__count(mc, db, key, MISCACHE__MISS);
    return MISCACHE_MISS;
  case MISCACHE__R_STRING: {
    size_t len;
    const char *s = miscache__reply_str(r, &len);
    char why[200];
    *out = miscache__decode(s, len, why, sizeof why);
    if (*out) {
      miscache__count(mc, db, key, MISCACHE__HIT);
      return MISCACHE_OK;
    }
    miscache__count(mc, db, key, MISCACHE__MISS);
    miscache__count(mc, db, key, MISCACHE__ERROR);
    miscache__set_err(mc, "value of %s (%zu bytes) in db %s: %s", key, len,
                      miscache_db_name(db), why);
    return MISCACHE_ERR_DECODE;
  }
  default: {
    char what[300];
    snprintf(what, sizeof what, "GET %s", key);
    miscache_status_t st = miscache__unexpected(mc, db, key, r, what);
    if (st == MISCACHE_ERR_DECODE) /* WRONGTYPE */
      miscache__count(mc, db, key, MISCACHE__MISS);
    return st;
  }
  }
}

/* A read of a key that a pending invalidation covers: a miss, whatever the
 * server holds (it may still hold the value the invalidation removes). */
static bool covered(miscache_t *mc, miscache_db_t db, const char *key) {
  if (!miscache__pending_covers(mc->pending, db, key)) return false;
  miscache__count(mc, db, key, MISCACHE__MISS);
  miscache__set_err(mc, "%s in db %s: an invalidation of it is pending; "
                        "not read from the cache", key, miscache_db_name(db));
  return true;
}

/* A string reply decoded straight into a typed struct (d->done). */
static bool direct_text(miscache__direct_t *d, const miscache__reply_t *e) {
  size_t len = 0;
  const char *text = miscache__reply_type(e) == MISCACHE__R_STRING
                         ? miscache__reply_str(e, &len)
                         : NULL;
  d->done = text &&
            miscache__payload_decode_text(d->d, text, len, d->out) == MISCACHE_OK;
  return d->done;
}

/* GET of key (and, with pttl, its PTTL in the same round trip: early
 * refresh needs the time left). */
static miscache_status_t read_key(miscache_t *mc, miscache_db_t db,
                                  const char *key, json_t **out,
                                  int64_t *pttl, miscache__direct_t *direct) {
  if (out) *out = NULL;
  if (pttl) *pttl = -1;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_get: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  CHECK_DB(mc, db);
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, key, &fk);
  if (st != MISCACHE_OK) return st;
  miscache__replay_pending(mc);
  if (covered(mc, db, key)) {
    miscache__fullkey_done(&fk);
    return MISCACHE_MISS;
  }
  miscache__near_ticket_t nt = {.use = false};
  if (mc->near) {
    *out = miscache__near_get(mc, db, fk.ptr, fk.len, &nt, pttl);
    if (*out) { /* no system call on this path */
      miscache__count(mc, db, key, MISCACHE__HIT);
      miscache__fullkey_done(&fk);
      return MISCACHE_OK;
    }
  }
  const char *ga[2] = {"GET", fk.ptr}, *pa[2] = {"PTTL", fk.ptr};
  size_t gl[2] = {3, fk.len}, pl[2] = {4, fk.len};
  miscache__cmd_t cmds[2] = {{2, ga, gl}, {2, pa, pl}};
  miscache__reply_t *r[2] = {NULL, NULL};
  /* the near cache bounds an entry by the key's TTL: it needs the PTTL */
  if (pttl || nt.use) {
    st = miscache__send(mc, (int)db, 2, cmds, r, MISCACHE__IDEMPOTENT);
    if (st != MISCACHE_OK) miscache__count(mc, db, key, MISCACHE__ERROR);
  } else { /* replayed above: once per call */
    st = miscache__exec_key(mc, db, key, &cmds[0], &r[0], MISCACHE__IDEMPOTENT);
  }
  /* typed, not for the near cache: straight into the struct if it can */
  if (st == MISCACHE_OK && direct && !nt.use && direct_text(direct, r[0])) {
    miscache__count(mc, db, key, MISCACHE__HIT);
    if (pttl && r[1] && miscache__reply_type(r[1]) == MISCACHE__R_INTEGER)
      *pttl = miscache__reply_int(r[1]);
  } else if (st == MISCACHE_OK) {
    st = miscache__value_from_reply(mc, db, key, r[0], out);
    long long left = r[1] && miscache__reply_type(r[1]) == MISCACHE__R_INTEGER
                         ? miscache__reply_int(r[1])
                         : -2;
    if (pttl) *pttl = left;
    if (st == MISCACHE_OK && nt.use) {
      size_t vlen = 0;
      miscache__reply_str(r[0], &vlen);
      miscache__near_put(mc, db, fk.ptr, fk.len, *out, vlen, left, &nt);
    }
  }
  miscache__reply_free(r[0]);
  miscache__reply_free(r[1]);
  miscache__fullkey_done(&fk);
  return st;
}

miscache_status_t miscache_get(miscache_t *mc, miscache_db_t db,
                               const char *key, json_t **out) {
  return read_key(mc, db, key, out, NULL, NULL);
}

bool miscache__near_view_get(miscache_t *mc, miscache_key_family_id_t f,
                             const miscache__fullkey_t *fk,
                             miscache_category_t cat,
                             const miscache__near_view_t *vw, void *ud) {
  miscache_db_t db = miscache__families[f].db; /* (no call on a hit) */
  /* pending invalidations (replay, "covered") and early refresh (the time
   * left) are the usual path's */
  if (!mc->near || miscache__pending_count(mc->pending) != 0 ||
      ((mc->opts.stampede.early_categories >> cat) & 1u))
    return false;
  int k = miscache__near_read_view(mc, db, (int)f, fk->ptr, fk->len, vw, ud);
  if (k) miscache__count_in(mc, db, cat, MISCACHE__HIT);
  return k != 0;
}

miscache_status_t miscache__get_uncounted(miscache_t *mc, miscache_db_t db,
                                          const char *key, json_t **out) {
  if (!mc) return MISCACHE_ERR_INVALID;
  bool quiet = mc->quiet;
  mc->quiet = true;
  miscache_status_t st = read_key(mc, db, key, out, NULL, NULL);
  mc->quiet = quiet;
  return st;
}

miscache_status_t miscache__get_payload(miscache_t *mc, miscache_db_t db,
                                        const char *key,
                                        const miscache__payload_t *d,
                                        void *out) {
  miscache__direct_t direct = {d, out, false};
  json_t *v = NULL;
  miscache_status_t st = read_key(mc, db, key, &v, NULL, &direct);
  if (st != MISCACHE_OK || direct.done) return st;
  char why[256] = "";
  st = miscache__payload_decode(d, v, out, why, sizeof why);
  json_decref(v);
  if (st == MISCACHE_ERR_DECODE) {
    /* the read was counted as a hit; a value we cannot use is a miss */
    miscache__hit_unusable(mc, db, key);
  }
  if (st != MISCACHE_OK) miscache__set_err(mc, "value of %s: %s", key, why);
  return st;
}

/* Checks a reply that must be a status "OK". */
static miscache_status_t expect_ok(miscache_t *mc, miscache_db_t db,
                                   const miscache__reply_t *r,
                                   const char *what, const char *key) {
  if (miscache__reply_type(r) == MISCACHE__R_STATUS) return MISCACHE_OK;
  char ctx[300];
  snprintf(ctx, sizeof ctx, "%s %s", what, key);
  return miscache__unexpected(mc, db, key, r, ctx);
}

/* Decimal text of v into buf (>= 21 bytes); returns its length. */
static size_t fmt_i64(char *buf, int64_t v) { return miscache__i64toa(buf, v); }

miscache_status_t miscache__set_text(miscache_t *mc, miscache_db_t db,
                                     const char *key, const char *val,
                                     size_t vlen, int64_t ttl_ms) {
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, key, &fk);
  if (st != MISCACHE_OK) return st;
  char ttl[24];
  const char *argv[5] = {"SET", fk.ptr, val, "PX", ttl};
  size_t lens[5] = {3, fk.len, vlen, 2, fmt_i64(ttl, ttl_ms)};
  miscache__cmd_t cmd = {5, argv, lens};
  miscache__reply_t *r = NULL;
  st = miscache__run_key(mc, db, key, &cmd, &r,
                         MISCACHE__IDEMPOTENT | MISCACHE__WRITES);
  if (st == MISCACHE_OK) st = expect_ok(mc, db, r, "SET", key);
  miscache__reply_free(r);
  miscache__fullkey_done(&fk);
  return st;
}

static miscache_status_t set_ms(miscache_t *mc, miscache_db_t db,
                                const char *key, const json_t *value,
                                int64_t ttl_ms) {
  if (!value) {
    miscache__set_err(mc, "value for %s is NULL", key ? key : "(null)");
    return MISCACHE_ERR_INVALID;
  }
  size_t vlen;
  char *val = miscache__encode(value, &vlen);
  if (!val) {
    miscache__set_err(mc, "value for %s cannot be encoded as JSON",
                      key ? key : "(null)");
    return MISCACHE_ERR_ENCODE;
  }
  miscache_status_t st = miscache__set_text(mc, db, key, val, vlen, ttl_ms);
  free(val);
  return st;
}

miscache_status_t miscache_set(miscache_t *mc, miscache_db_t db,
                               const char *key, const json_t *value,
                               miscache_ttl_class_t cls) {
  if (!mc) return MISCACHE_ERR_INVALID;
  CHECK_DB(mc, db);
  if (!miscache__ttl_valid(cls)) {
    miscache__set_err(mc, "TTL class %d out of range", (int)cls);
    return MISCACHE_ERR_INVALID;
  }
  return set_ms(mc, db, key, value, miscache__ttl_ms(mc, cls));
}

miscache_status_t miscache_set_ttl_ms(miscache_t *mc, miscache_db_t db,
                                      const char *key, const json_t *value,
                                      int64_t ttl_ms) {
  if (!mc) return MISCACHE_ERR_INVALID;
  CHECK_DB(mc, db);
  if (ttl_ms <= 0) {
    miscache__set_err(mc, "TTL %lld ms is not positive", (long long)ttl_ms);
    return MISCACHE_ERR_INVALID;
  }
  return set_ms(mc, db, key, value, ttl_ms);
}

/* One command on key whose reply must be an integer, after the replay. */
static miscache_status_t int_command(miscache_t *mc, miscache_db_t db,
                                     const char *verb, const char *key,
                                     long long *result) {
  if (mc && miscache__db_valid(db)) miscache__replay_pending(mc);
  return miscache__key_int_now(mc, db, verb, key, false, result);
}

miscache_status_t miscache_delete(miscache_t *mc, miscache_db_t db,
                                  const char *key, bool *deleted) {
  if (deleted) *deleted = false;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache__replay_pending(mc);
  miscache_status_t st = miscache__delete_now(mc, db, key, deleted);
  return st == MISCACHE_OK ? st : miscache__pend(mc, db, key, false, st);
}

miscache_status_t miscache_exists(miscache_t *mc, miscache_db_t db,
                                  const char *key, bool *exists) {
  if (exists) *exists = false;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!exists) {
    miscache__set_err(mc, "miscache_exists: exists is NULL");
    return MISCACHE_ERR_INVALID;
  }
  long long n = 0;
  miscache_status_t st = int_command(mc, db, "EXISTS", key, &n);
  *exists = st == MISCACHE_OK && n > 0;
  return st;
}

miscache_status_t miscache_ttl_ms(miscache_t *mc, miscache_db_t db,
                                  const char *key, int64_t *ttl_ms) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!ttl_ms) {
    miscache__set_err(mc, "miscache_ttl_ms: ttl_ms is NULL");
    return MISCACHE_ERR_INVALID;
  }
  long long n = -2;
  miscache_status_t st = int_command(mc, db, "PTTL", key, &n);
  *ttl_ms = st == MISCACHE_OK ? n : -2;
  return st;
}

/* ---- multi-key ----------------------------------------------------------- */

typedef miscache__keyset_t keyset_t;

static miscache_status_t keyset_make(miscache_t *mc, size_t n,
                                     const char *const keys[], size_t lead,
                                     keyset_t *ks) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (!keys[i] || !keys[i][0]) {
      miscache__set_err(mc, "key %zu is NULL or empty", i);
      return MISCACHE_ERR_INVALID;
    }
    total += mc->ns_len + strlen(keys[i]) + 1;
  }
  ks->ptrs = miscache__realloc_array(NULL, n + lead, sizeof *ks->ptrs);
  ks->lens = miscache__realloc_array(NULL, n + lead, sizeof *ks->lens);
  ks->store = malloc(total ? total : 1);
  if (!ks->ptrs || !ks->lens || !ks->store) {
    free(ks->ptrs);
    free(ks->lens);
    free(ks->store);
    miscache__set_err(mc, "out of memory for %zu keys", n);
    return MISCACHE_ERR_NOMEM;
  }
  char *p = ks->store;
  for (size_t i = 0; i < n; i++) {
    size_t kl = strlen(keys[i]);
    memcpy(p, mc->opts.ns, mc->ns_len);
    memcpy(p + mc->ns_len, keys[i], kl + 1);
    ks->ptrs[lead + i] = p;
    ks->lens[lead + i] = mc->ns_len + kl;
    p += mc->ns_len + kl + 1;
  }
  return MISCACHE_OK;
}

static void keyset_free(keyset_t *ks) {
  free(ks->ptrs);
  free(ks->lens);
  free(ks->store);
}

/* The core of mget and mset, and of a page of bulk classification: nset
 * SETs (PX, the class's TTL with jitter per key) and then one MGET of nget
 * keys, all in one round trip. Returns the round trip's status; *set_st
 * (when nset) the first failed SET's; values/statuses as miscache_mget. */
/* The SET commands of sets into cmds (SET key val PX ttl: argv 5 per
 * key, the keys namespaced in ss; vals[i] owns an encoded tree's text). */
static miscache_status_t set_cmds(miscache_t *mc, const miscache__sets_t *sets,
                                  const keyset_t *ss, const char **argv,
                                  size_t *lens, char **vals, char (*ttls)[24],
                                  miscache__cmd_t *cmds) {
  for (size_t i = 0; i < sets->n; i++) {
    size_t vlen = sets->texts ? sets->lens[i] : 0;
    const char *text =
        sets->texts ? sets->texts[i]
                    : (vals[i] = miscache__encode(sets->vals[i], &vlen));
    if (!text) {
      miscache__set_err(mc, "value for %s cannot be encoded as JSON",
                        sets->keys[i]);
      return MISCACHE_ERR_ENCODE;
    }
    const char **av = argv + 5 * i;
    size_t *l = lens + 5 * i;
    av[0] = "SET", l[0] = 3;
    av[1] = ss->ptrs[i], l[1] = ss->lens[i];
    av[2] = text, l[2] = vlen;
    av[3] = "PX", l[3] = 2;
    av[4] = ttls[i], l[4] = fmt_i64(ttls[i], miscache__ttl_ms(mc, sets->cls));
    cmds[i] = (miscache__cmd_t){5, av, l};
  }
  return MISCACHE_OK;
}

/* Each value of an MGET reply r into gets (values, statuses, direct). */
static miscache_status_t take_mget(miscache_t *mc, miscache_db_t db,
                                   const miscache__gets_t *gets,
                                   const miscache__reply_t *r) {
  if (miscache__reply_type(r) != MISCACHE__R_ARRAY ||
      miscache__reply_count(r) != gets->n)
    return miscache__unexpected(mc, db, gets->keys[0], r, "MGET");
  for (size_t i = 0; i < gets->n; i++) {
    const miscache__reply_t *e = miscache__reply_at(r, i);
    const char *key = gets->keys[i];
    miscache_status_t one;
    if (covered(mc, db, key)) {
      one = MISCACHE_MISS;
    } else if (gets->direct && direct_text(&gets->direct[i], e)) {
      miscache__count(mc, db, key, MISCACHE__HIT);
      one = MISCACHE_OK;
    } else {
      one = miscache__value_from_reply(mc, db, key, e, &gets->values[i]);
    }
    if (gets->statuses) gets->statuses[i] = one;
  }
  return MISCACHE_OK;
}

void miscache__mm_free(miscache__mm_t *mm) {
  if (mm->vals)
    for (size_t i = 0; i < mm->nset; i++) free(mm->vals[i]);
  free(mm->cmds);
  free(mm->ttls);
  free(mm->vals);
  free(mm->lens);
  free(mm->argv);
  if (mm->nset) keyset_free(&mm->ss);
  if (mm->nget) keyset_free(&mm->gs);
  memset(mm, 0, sizeof *mm);
}

miscache_status_t miscache__mm_build(miscache_t *mc, const miscache__sets_t *sets,
                                     const miscache__gets_t *gets,
                                     miscache__mm_t *mm) {
  static const miscache__sets_t no_sets = {0};
  static const miscache__gets_t no_gets = {0};
  if (!sets) sets = &no_sets;
  if (!gets) gets = &no_gets;
  memset(mm, 0, sizeof *mm);
  size_t nset = sets->n, nget = gets->n;
  for (size_t i = 0; i < nget; i++) gets->values[i] = NULL;
  if (sets->st) *sets->st = MISCACHE_OK;
  if (nset > (size_t)INT32_MAX / 5 || nget > (size_t)INT32_MAX - 1) {
    miscache__set_err(mc, "%zu values is too many for one call",
                      nset > nget ? nset : nget);
    return MISCACHE_ERR_INVALID;
  }
  miscache_status_t st = MISCACHE_OK;
  if (nset && (st = keyset_make(mc, nset, sets->keys, 0, &mm->ss)) != MISCACHE_OK)
    return st;
  mm->nset = nset;
  if (nget &&
      (st = keyset_make(mc, nget, gets->keys, 1, &mm->gs)) != MISCACHE_OK) {
    miscache__mm_free(mm);
    return st;
  }
  mm->nget = nget;
  mm->ncmd = nset + (nget ? 1 : 0);
  mm->argv = calloc(nset * 5 + 1, sizeof *mm->argv);
  mm->lens = calloc(nset * 5 + 1, sizeof *mm->lens);
  mm->vals = calloc(nset + 1, sizeof *mm->vals);
  mm->ttls = calloc(nset + 1, sizeof *mm->ttls);
  mm->cmds = calloc(mm->ncmd ? mm->ncmd : 1, sizeof *mm->cmds);
  if (!mm->argv || !mm->lens || !mm->vals || !mm->ttls || !mm->cmds) {
    miscache__mm_free(mm);
    miscache__set_err(mc, "out of memory for %zu values", nset + nget);
    return MISCACHE_ERR_NOMEM;
  }
  st = set_cmds(mc, sets, &mm->ss, mm->argv, mm->lens, mm->vals, mm->ttls,
                mm->cmds);
  if (st != MISCACHE_OK) {
    miscache__mm_free(mm);
    return st;
  }
  if (nget) {
    mm->gs.ptrs[0] = "MGET";
    mm->gs.lens[0] = 4;
    mm->cmds[nset] = (miscache__cmd_t){(int)(nget + 1), mm->gs.ptrs,
                                       mm->gs.lens};
  }
  return MISCACHE_OK;
}

miscache_status_t miscache__mm_take(miscache_t *mc, miscache_db_t db,
                                    const miscache__sets_t *sets,
                                    const miscache__gets_t *gets,
                                    miscache__reply_t *const *rs) {
  size_t nset = sets ? sets->n : 0;
  for (size_t i = 0; i < nset; i++) {
    miscache_status_t one = expect_ok(mc, db, rs[i], "SET", sets->keys[i]);
    if (sets->st && *sets->st == MISCACHE_OK) *sets->st = one;
  }
  return gets && gets->n ? take_mget(mc, db, gets, rs[nset]) : MISCACHE_OK;
}

miscache_status_t miscache__mset_mget(miscache_t *mc, miscache_db_t db,
                                      const miscache__sets_t *sets,
                                      const miscache__gets_t *gets) {
  miscache__mm_t mm;
  miscache_status_t st = miscache__mm_build(mc, sets, gets, &mm);
  if (st != MISCACHE_OK) return st;
  if (mm.ncmd == 0) {
    miscache__mm_free(&mm);
    return MISCACHE_OK;
  }
  miscache__reply_t **rs = calloc(mm.ncmd, sizeof *rs);
  if (!rs) {
    miscache__mm_free(&mm);
    miscache__set_err(mc, "out of memory for %zu values", mm.nset + mm.nget);
    return MISCACHE_ERR_NOMEM;
  }
  /* the SETs write (an MGET behind them loses its first key from the near
   * cache too: harmless, the next read asks the server) */
  st = miscache__run(mc, (int)db, mm.ncmd, mm.cmds, rs,
                     MISCACHE__IDEMPOTENT | (mm.nset ? MISCACHE__WRITES : 0));
  if (st != MISCACHE_OK) {
    miscache__count(mc, db, mm.nget ? gets->keys[0] : sets->keys[0],
                    MISCACHE__ERROR);
    if (sets && sets->st) *sets->st = st;
  } else {
    st = miscache__mm_take(mc, db, sets, gets, rs);
  }
  for (size_t i = 0; i < mm.ncmd; i++) miscache__reply_free(rs[i]);
  free(rs);
  miscache__mm_free(&mm);
  return st;
}

miscache_status_t miscache_mget(miscache_t *mc, miscache_db_t db, size_t n,
                                const char *const keys[], json_t *values[],
                                miscache_status_t statuses[]) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (n && (!keys || !values)) {
    miscache__set_err(mc, "miscache_mget: keys or values is NULL");
    return MISCACHE_ERR_INVALID;
  }
  for (size_t i = 0; i < n; i++) values[i] = NULL;
  CHECK_DB(mc, db);
  miscache__gets_t gets = {.n = n, .keys = keys, .values = values,
                          .statuses = statuses};
  return miscache__mset_mget(mc, db, NULL, &gets);
}

miscache_status_t miscache_mset(miscache_t *mc, miscache_db_t db, size_t n,
                                const char *const keys[],
                                const json_t *const values[],
                                miscache_ttl_class_t cls) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (n && (!keys || !values)) {
    miscache__set_err(mc, "miscache_mset: keys or values is NULL");
    return MISCACHE_ERR_INVALID;
  }
  CHECK_DB(mc, db);
  if (!miscache__ttl_valid(cls)) {
    miscache__set_err(mc, "TTL class %d out of range", (int)cls);
    return MISCACHE_ERR_INVALID;
  }
  for (size_t i = 0; i < n; i++)
    if (!values[i]) {
      miscache__set_err(mc, "value %zu is NULL", i);
      return MISCACHE_ERR_INVALID;
    }
  miscache_status_t set_st = MISCACHE_OK;
  miscache__sets_t sets = {.n = n, .keys = keys, .vals = values, .cls = cls,
                          .st = &set_st};
  miscache_status_t st = miscache__mset_mget(mc, db, &sets, NULL);
  return st != MISCACHE_OK ? st : set_st;
}

/* ---- cache-aside ----------------------------------------------------------- */

miscache_status_t miscache_get_or_load(miscache_t *mc, miscache_db_t db,
                                       const char *key,
                                       miscache_ttl_class_t cls,
                                       miscache_loader_fn loader,
                                       void *userdata, json_t **out,
                                       miscache_source_t *source) {
  miscache__legacy_t old = {loader, userdata};
  return miscache_get_or_load_ex(mc, db, key, cls,
                                 loader ? miscache__legacy_load : NULL, &old,
                                 out, source);
}

miscache_status_t miscache_get_or_load_ex(miscache_t *mc, miscache_db_t db,
                                          const char *key,
                                          miscache_ttl_class_t cls,
                                          miscache_load_fn load, void *userdata,
                                          json_t **out,
                                          miscache_source_t *source) {
  bool cls_ok = miscache__ttl_valid(cls);
  if (mc && !cls_ok) miscache__set_err(mc, "TTL class %d out of range", (int)cls);
  /* a bad class goes through as TTL 0, which the callee refuses */
  return miscache__get_or_load_ms(mc, db, key,
                                  cls_ok ? MISCACHE__TTL_OF(cls) : 0, load,
                                  userdata, out, source);
}

miscache_status_t miscache__get_or_load_ms(miscache_t *mc, miscache_db_t db,
                                           const char *key, int64_t ttl_ms,
                                           miscache_load_fn load,
                                           void *userdata, json_t **out,
                                           miscache_source_t *source) {
  miscache__aside_t a = {.db = db,
                         .key = key,
                         .ttl = ttl_ms,
                         .load = load,
                         .userdata = userdata,
                         .family = -1};
  return miscache__cache_aside_direct(mc, &a, NULL, out, source);
}

miscache_status_t miscache__legacy_load(void *ud,
                                        const miscache_load_req_t *req,
                                        json_t **out, char *errbuf,
                                        size_t errlen) {
  (void)errbuf;
  (void)errlen;
  const miscache__legacy_t *old = ud;
  return old->fn(old->userdata, req->key, out);
}

/* Whether a (its accept) takes v; why says why not. */
static bool accepted(const miscache__aside_t *a, json_t *v, char *why,
                     size_t whylen) {
  return !a->accept || a->accept(a->accept_ud, v, why, whylen) == MISCACHE_OK;
}

/* Load the key with the loader and store it (the miss path of
 * cache-aside, and the early refresh). store false: the value is not
 * cached (a pending invalidation, or the server failed; cache_err is then
 * the message left for the caller). */
static miscache_status_t load_and_store(miscache_t *mc,
                                        const miscache__aside_t *a, bool store,
                                        const char *cache_err, json_t **out,
                                        miscache_source_t *source) {
  char why[256] = "";
  json_t *v = NULL;
  miscache_load_req_t req = {.db = a->db,
                             .key = a->key,
                             .family = a->family,
                             .company = a->company,
                             .id = a->id,
                             .date = a->date};
  miscache_status_t ls = a->load(a->userdata, &req, &v, why, sizeof why);
  why[sizeof why - 1] = '\0'; /* whatever the loader left there */
  if (ls == MISCACHE_MISS) {
    json_decref(v);
    miscache__set_err(mc, "%s: the loader found no record", a->key);
    return MISCACHE_MISS;
  }
  if (ls == MISCACHE_OK && v && !accepted(a, v, why, sizeof why))
    ls = MISCACHE_ERR_DECODE;
  if (ls != MISCACHE_OK || !v) {
    json_decref(v);
    miscache__set_err(mc, "loader for %s failed: %s%s%s", a->key,
                      ls == MISCACHE_OK ? "returned no value"
                                        : miscache_strerror(ls),
                      why[0] ? ": " : "", why);
    return MISCACHE_ERR_LOADER;
  }
  miscache_source_t src = MISCACHE_SOURCE_UNCACHED;
  if (store) {
    if (miscache_set_ttl_ms(mc, a->db, a->key, v,
                            miscache__ttl_resolve(mc, a->ttl)) == MISCACHE_OK)
      src = MISCACHE_SOURCE_LOADED;
  } else {
    /* keep the cache error for the caller: the value is not cached */
    snprintf(mc->err, sizeof mc->err, "%s", cache_err);
  }
  *out = v;
  if (source) *source = src;
  return MISCACHE_OK;
}

/* Another process holds the lease: poll the value every 10 ms while it
 * lasts. OK with the value, or MISS (load yourself). */
static miscache_status_t wait_for_value(miscache_t *mc,
                                        const miscache__aside_t *a,
                                        int lease_ms, json_t **out) {
  char why[256];
  for (int waited = 0; waited < lease_ms; waited += 10) {
    struct timespec ts = {0, 10000000L};
    nanosleep(&ts, NULL);
    miscache_status_t st = miscache_get(mc, a->db, a->key, out);
    if (st == MISCACHE_OK) {
      if (accepted(a, *out, why, sizeof why)) return MISCACHE_OK;
      json_decref(*out);
      *out = NULL;
    } else if (st != MISCACHE_MISS) {
      return MISCACHE_MISS; /* the server fails: stop waiting, load */
    }
  }
  return MISCACHE_MISS;
}

/* Whether the key holds a usable value now (*out), read once more; not
 * counted (the call's miss was). */
static bool stored_since(miscache_t *mc, const miscache__aside_t *a,
                         json_t **out) {
  char why[256];
  miscache_status_t st = miscache__get_uncounted(mc, a->db, a->key, out);
  if (st != MISCACHE_OK) return false;
  if (accepted(a, *out, why, sizeof why)) return true;
  json_decref(*out);
  *out = NULL;
  return false;
}

miscache_status_t miscache__cache_aside(miscache_t *mc,
                                        const miscache__aside_t *a,
                                        json_t **out,
                                        miscache_source_t *source) {
  return miscache__cache_aside_direct(mc, a, NULL, out, source);
}

/* A hit whose TTL is running out (XFetch): reload it now, only as the
 * holder of the recompute lease; *out replaced when the reload worked. */
static void refresh_early(miscache_t *mc, const miscache__aside_t *a,
                          json_t **out) {
  const miscache_stampede_t *sp = &mc->opts.stampede;
  char token[33];
  bool taken = false;
  if (miscache__lease_take(mc, a->db, a->key, sp->lease_ms, token, &taken) !=
          MISCACHE_OK ||
      !taken)
    return;
  json_t *fresh = NULL;
  miscache_source_t s2;
  if (load_and_store(mc, a, true, "", &fresh, &s2) == MISCACHE_OK) {
    json_decref(*out);
    *out = fresh;
  }
  miscache__lease_release(mc, a->db, a->key, token);
}

/* The miss path: one loader per key in the process (single flight), one
 * across processes (the recompute lease, whose holder's value is waited
 * for), else load here. store false: do not cache what is loaded. */
static miscache_status_t load_once(miscache_t *mc, const miscache__aside_t *a,
                                   bool store, uint64_t epoch, json_t **out,
                                   miscache_source_t *source) {
  const miscache_stampede_t *sp = &mc->opts.stampede;
  char why[256] = "";
  char cache_err[MISCACHE_ERRMSG_SIZE];
  snprintf(cache_err, sizeof cache_err, "%s", mc->err);
  bool leader = true;
  miscache__flight_t *f = sp->single_flight
                              ? miscache__flight_join(mc, a->db, a->key, &leader)
                              : NULL;
  if (!leader) {
    miscache_source_t lsrc = MISCACHE_SOURCE_NONE;
    json_t *v = miscache__flight_wait(
        f, sp->wait_ms ? sp->wait_ms : mc->opts.command_timeout_ms, &lsrc);
    /* accept() also fills the caller's own typed struct */
    if (v && accepted(a, v, why, sizeof why)) {
      *out = v;
      if (source) *source = lsrc; /* the leader's: stored by it, or not */
      return MISCACHE_OK;
    }
    json_decref(v);
    /* the leader failed or took too long: load ourselves */
  } else if (f && store && miscache__flight_epoch() != epoch &&
             stored_since(mc, a, out)) {
    /* a flight landed after our read: maybe this key's, already stored */
    if (source) *source = MISCACHE_SOURCE_CACHE;
    miscache__flight_done(f, *out, MISCACHE_SOURCE_CACHE);
    return MISCACHE_OK;
  }
  unsigned cat = (unsigned)miscache__category_of(a->key);
  bool lease = (sp->lease_categories >> cat) & 1u;
  char token[33];
  bool taken = false;
  bool held = lease && store &&
              miscache__lease_take(mc, a->db, a->key, sp->lease_ms, token,
                                   &taken) == MISCACHE_OK;
  /* held by another: wait for its value; taken: the last holder may have
   * stored it between our read and our lease, so look once more */
  if ((held && !taken && wait_for_value(mc, a, sp->lease_ms, out) ==
                             MISCACHE_OK) ||
      (taken && stored_since(mc, a, out))) {
    if (taken) miscache__lease_release(mc, a->db, a->key, token);
    if (source) *source = MISCACHE_SOURCE_CACHE;
    if (leader) miscache__flight_done(f, *out, MISCACHE_SOURCE_CACHE);
    return MISCACHE_OK;
  }
  miscache_source_t src = MISCACHE_SOURCE_NONE;
  miscache_status_t st = load_and_store(mc, a, store, cache_err, out, &src);
  if (source) *source = src;
  if (taken) miscache__lease_release(mc, a->db, a->key, token);
  if (leader) miscache__flight_done(f, st == MISCACHE_OK ? *out : NULL, src);
  return st;
}

miscache_status_t miscache__cache_aside_direct(miscache_t *mc,
                                               const miscache__aside_t *a,
                                               miscache__direct_t *direct,
                                               json_t **out,
                                               miscache_source_t *source) {
  if (source) *source = MISCACHE_SOURCE_NONE;
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (a->ttl == 0) return MISCACHE_ERR_INVALID; /* message set by caller */
  if (!out || !a->load) {
    miscache__set_err(mc, "miscache_get_or_load: out or loader is NULL");
    return MISCACHE_ERR_INVALID;
  }
  const miscache_stampede_t *sp = &mc->opts.stampede;
  unsigned cat = (unsigned)miscache__category_of(a->key);
  bool early = (sp->early_categories >> cat) & 1u;
  char why[256] = "";
  int64_t pttl = -1;
  uint64_t epoch = sp->single_flight ? miscache__flight_epoch() : 0;
  miscache_status_t st =
      read_key(mc, a->db, a->key, out, early ? &pttl : NULL, direct);
  if (st == MISCACHE_OK) {
    if ((direct && direct->done) || accepted(a, *out, why, sizeof why)) {
      if (source) *source = MISCACHE_SOURCE_CACHE;
      if (early && miscache__xfetch_due(mc, pttl, sp->early_ms))
        refresh_early(mc, a, out);
      return MISCACHE_OK;
    }
    /* valid JSON the caller cannot use: a miss that the loader replaces */
    json_decref(*out);
    *out = NULL;
    miscache__hit_unusable(mc, a->db, a->key);
    miscache__set_err(mc, "value of %s: %s", a->key, why);
    st = MISCACHE_ERR_DECODE;
  }
  if (st == MISCACHE_ERR_INVALID || st == MISCACHE_ERR_NOMEM) return st;
  /* MISS, a value that does not decode, or the server failing: load. A key
   * under a pending invalidation is a MISS that must not be stored again
   * before the invalidation has run. */
  bool store = (st == MISCACHE_MISS || st == MISCACHE_ERR_DECODE) &&
               !miscache__pending_covers(mc->pending, a->db, a->key);
  return load_once(mc, a, store, epoch, out, source);
}

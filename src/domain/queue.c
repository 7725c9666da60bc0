/*
 * Work queues on Redis Streams (see queue.h for the keys and the model).
 * Enqueue is a pipeline of XADDs ended by a trim-and-count script; the
 * move of an entry to the dead-letter stream is a script too (both through
 * miscache__eval's EVALSHA, EVAL on NOSCRIPT), so each is one atomic step.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domain/domain.h"

/* ---- scripts ----------------------------------------------------------- */

/* KEYS: stream, trimmed counter. ARGV: maxlen. Trims to about maxlen and
 * counts what went. */
static const char lua_trim[] =
    "local d = redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1])\n"
    "if d > 0 then redis.call('INCRBY', KEYS[2], d) end\n"
    "return d\n";

/* KEYS: stream, dead stream, errors hash. ARGV: group, id, deliveries,
 * error when none was recorded. Moves the entry; returns 1 (0: it was
 * gone already, only acked). */
static const char lua_dead[] =
    "local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])\n"
    "local err = redis.call('HGET', KEYS[3], ARGV[2]) or ARGV[4]\n"
    "if #e == 1 then\n"
    "  local f = e[1][2]\n"
    "  table.insert(f, 'error') table.insert(f, err)\n"
    "  table.insert(f, 'deliveries') table.insert(f, ARGV[3])\n"
    "  table.insert(f, 'original_id') table.insert(f, ARGV[2])\n"
    "  redis.call('XADD', KEYS[2], '*', unpack(f))\n"
    "end\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "redis.call('HDEL', KEYS[3], ARGV[2])\n"
    "return #e\n";

/* KEYS: stream. ARGV: group, consumer, min idle ms, count. Claims the
 * entries idle that long for consumer and gives, for each, the delivery
 * count the server holds after this claim, read in the same step:
 * {entries, counts}. */
static const char lua_claim[] =
    "local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3],"
    " '0-0', 'COUNT', ARGV[4])\n"
    "local counts = {}\n"
    "for i, e in ipairs(r[2]) do\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)\n"
    "  counts[i] = p[1] and p[1][4] or 0\n"
    "end\n"
    "return {r[2], counts}\n";

static char sha_trim[41], sha_dead[41], sha_claim[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void make_shas(void) {
  miscache__sha1_hex(lua_trim, sha_trim);
  miscache__sha1_hex(lua_dead, sha_dead);
  miscache__sha1_hex(lua_claim, sha_claim);
}

/* ---- names and keys --------------------------------------------------- */

typedef struct {
  miscache__fullkey_t stream, dead, trimmed, errors;
  char lk[4][96]; /* logical keys */
} qkeys_t;

static bool name_ok(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return false;
  }
  return true;
}

static void qkeys_done(qkeys_t *k) {
  miscache__fullkey_done(&k->stream);
  miscache__fullkey_done(&k->dead);
  miscache__fullkey_done(&k->trimmed);
  miscache__fullkey_done(&k->errors);
}

/* The namespaced key of queue NAME's stream (or of one of its companions,
 * suffix ":dead"...), after checking the name. */
static miscache_status_t queue_key(miscache_t *mc, const char *name,
                                   const char *suffix, char *lk, size_t lksize,
                                   miscache__fullkey_t *fk) {
  if (!name_ok(name)) {
    miscache__set_err(mc, "queue name \"%.80s\": use 1 to 64 letters, digits "
                          "or _-.", name ? name : "(null)");
    return MISCACHE_ERR_KEY;
  }
  snprintf(lk, lksize, "queue:{%s}%s", name, suffix);
  return miscache__fullkey(mc, lk, fk);
}

miscache_status_t miscache__queue_stream_key(miscache_t *mc, const char *name,
                                             miscache__fullkey_t *fk) {
  char lk[96];
  return queue_key(mc, name, "", lk, sizeof lk, fk);
}

static miscache_status_t qkeys(miscache_t *mc, const char *name, qkeys_t *k) {
  memset(k, 0, sizeof *k);
  static const char *const suffix[4] = {"", ":dead", ":trimmed", ":errors"};
  miscache__fullkey_t *fk[4] = {&k->stream, &k->dead, &k->trimmed, &k->errors};
  for (int i = 0; i < 4; i++) {
    miscache_status_t st =
        queue_key(mc, name, suffix[i], k->lk[i], sizeof k->lk[i], fk[i]);
    if (st != MISCACHE_OK) {
      qkeys_done(k);
      return st;
    }
  }
  return MISCACHE_OK;
}

static bool word_ok(miscache_t *mc, const char *what, const char *w) {
  size_t n = w ? strlen(w) : 0;
  if (n > 0 && n < MISCACHE_QUEUE_ID_SIZE && !strpbrk(w, " \r\n")) return true;
  miscache__set_err(mc, "%s \"%.60s\": 1 to %d characters, no spaces", what,
                    w ? w : "(null)", MISCACHE_QUEUE_ID_SIZE - 1);
  return false;
}

static void opts_or_defaults(const miscache_queue_opts_t *in,
                             miscache_queue_opts_t *o) {
  memset(o, 0, sizeof *o);
  if (in) *o = *in;
  if (!o->maxlen) o->maxlen = 1000000;
  if (!o->max_deliveries) o->max_deliveries = 5;
  if (!o->reclaim_idle_ms) o->reclaim_idle_ms = 60000;
}

/* One command on the queue db; the reply is the caller's. */
static miscache_status_t cmd1(miscache_t *mc, int argc, const char *const *argv,
                              miscache__reply_t **r, unsigned flags) {
  size_t lens[16];
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  miscache__cmd_t c = {argc, argv, lens};
  return miscache__run(mc, MISCACHE_DB_QUEUE, 1, &c, r, flags);
}

static miscache_status_t err_reply(miscache_t *mc, miscache__reply_t *r,
                                   const char *what) {
  miscache_status_t st =
      miscache__reply_error(r, what, mc->err, sizeof mc->err);
  miscache__reply_free(r);
  return st;
}

/* ---- enqueue -------------------------------------------------------------- */

/* What pull says of a body it refuses, and enqueue of one it will not
 * queue: the same words. */
static void body_refused(char *out, size_t outlen, const char *why) {
  snprintf(out, outlen, "body is not JSON: %s", why);
}

/* Message i's body as JSON text (malloc'd, *len bytes). What the
 * consumer's pull would refuse (nesting too deep, a \u0000) is refused
 * here, in the same words, not dead-lettered later. */
static miscache_status_t body_text(miscache_t *mc, const char *name, size_t i,
                                   const json_t *body, char **out,
                                   size_t *len) {
  if (!body || !(*out = miscache__encode(body, len))) {
    miscache__set_err(mc, "message %zu of queue %s: %s", i, name,
                      body ? "cannot be encoded as JSON" : "NULL body");
    return body ? MISCACHE_ERR_ENCODE : MISCACHE_ERR_INVALID;
  }
  char why[160] = "";
  json_t *back = miscache__decode(*out, *len, why, sizeof why);
  if (!back) {
    char what[200];
    body_refused(what, sizeof what, why);
    miscache__set_err(mc, "message %zu of queue %s: %s", i, name, what);
    return MISCACHE_ERR_ENCODE;
  }
  json_decref(back);
  return MISCACHE_OK;
}

/* The n XADD replies: each an entry id (copied to ids_out, may be NULL),
 * else the status with its message. */
static miscache_status_t xadd_ids(miscache_t *mc, miscache__reply_t **rs,
                                  size_t n,
                                  char (*ids_out)[MISCACHE_QUEUE_ID_SIZE]) {
  for (size_t i = 0; i < n; i++) {
    if (miscache__reply_type(rs[i]) == MISCACHE__R_ERROR)
      return miscache__reply_error(rs[i], "XADD", mc->err, sizeof mc->err);
    if (miscache__reply_type(rs[i]) != MISCACHE__R_STRING) {
      miscache__set_err(mc, "XADD: bad reply");
      return MISCACHE_ERR_REPLY;
    }
    if (ids_out)
      snprintf(ids_out[i], MISCACHE_QUEUE_ID_SIZE, "%s",
               miscache__reply_str(rs[i], NULL));
  }
  return MISCACHE_OK;
}

/* An enqueue's commands: n XADDs, then the trim script (EVALSHA, or EVAL
 * with its source when eval_src). */
typedef struct {
  size_t n;
  qkeys_t k;
  const char **argv;
  size_t *lens;
  char **bufs;
  char (*uuids)[40];
  miscache__cmd_t *cmds;
  char maxlen[24], now[24];
} enq_t;

static void enq_done(enq_t *e) {
  for (size_t i = 0; e->bufs && i < e->n; i++) free(e->bufs[i]);
  free(e->cmds);
  free(e->bufs);
  free(e->uuids);
  free(e->argv);
  free(e->lens);
  qkeys_done(&e->k);
}

static miscache_status_t enq_build(miscache_t *mc, enq_t *e, const char *name,
                                   size_t n, const json_t *const bodies[],
                                   const char *const msg_ids[],
                                   const miscache_queue_opts_t *opts,
                                   bool eval_src) {
  memset(e, 0, sizeof *e);
  if (!bodies || n == 0 || n > 1000000) {
    miscache__set_err(mc, "miscache_queue_enqueue: %s",
                      !bodies ? "bodies NULL"
                      : n ? "more than 1,000,000 messages"
                          : "no messages");
    return MISCACHE_ERR_INVALID;
  }
  e->n = n;
  miscache_queue_opts_t o;
  opts_or_defaults(opts, &o);
  miscache_status_t st = qkeys(mc, name, &e->k);
  if (st != MISCACHE_OK) return st;
  pthread_once(&sha_once, make_shas);
  /* one pipeline: XADD stream * msg_id M enqueued_ms T body B, n times,
   * then the trim script (the cap's drops counted, never silent) */
  enum { XA = 9 };
  e->argv = calloc(n * XA + 6, sizeof *e->argv);
  e->lens = calloc(n * XA + 6, sizeof *e->lens);
  e->bufs = calloc(n, sizeof *e->bufs);
  e->uuids = calloc(n, sizeof *e->uuids);
  e->cmds = calloc(n + 1, sizeof *e->cmds);
  if (!e->argv || !e->lens || !e->bufs || !e->uuids || !e->cmds) {
    miscache__set_err(mc, "out of memory for %zu messages", n);
    return MISCACHE_ERR_NOMEM;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  size_t nowlen = (size_t)snprintf(
      e->now, sizeof e->now, "%lld",
      (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
  for (size_t i = 0; i < n; i++) {
    const char *mid = msg_ids ? msg_ids[i] : NULL;
    if (mid && !word_ok(mc, "msg id", mid)) return MISCACHE_ERR_KEY;
    if (!mid) {
      miscache__uuid(mc, e->uuids[i]);
      mid = e->uuids[i];
    }
    size_t blen = 0;
    st = body_text(mc, name, i, bodies[i], &e->bufs[i], &blen);
    if (st != MISCACHE_OK) return st;
    const char **a = e->argv + XA * i;
    size_t *l = e->lens + XA * i;
    a[0] = "XADD", l[0] = 4;
    a[1] = e->k.stream.ptr, l[1] = e->k.stream.len;
    a[2] = "*", l[2] = 1;
    a[3] = "msg_id", l[3] = 6;
    a[4] = mid, l[4] = strlen(mid);
    a[5] = "enqueued_ms", l[5] = 11;
    a[6] = e->now, l[6] = nowlen;
    a[7] = "body", l[7] = 4;
    a[8] = e->bufs[i], l[8] = blen;
    e->cmds[i] = (miscache__cmd_t){XA, a, l};
  }
  const char **t = e->argv + XA * n;
  size_t *tl = e->lens + XA * n;
  t[0] = eval_src ? "EVAL" : "EVALSHA", tl[0] = eval_src ? 4 : 7;
  t[1] = eval_src ? lua_trim : sha_trim;
  tl[1] = eval_src ? sizeof lua_trim - 1 : 40;
  t[2] = "2", tl[2] = 1;
  t[3] = e->k.stream.ptr, tl[3] = e->k.stream.len;
  t[4] = e->k.trimmed.ptr, tl[4] = e->k.trimmed.len;
  t[5] = e->maxlen;
  tl[5] = (size_t)snprintf(e->maxlen, sizeof e->maxlen, "%llu",
                           (unsigned long long)o.maxlen);
  e->cmds[n] = (miscache__cmd_t){6, t, tl};
  return MISCACHE_OK;
}

miscache_status_t miscache_queue_enqueue(miscache_t *mc, const char *name,
                                         size_t n, const json_t *const bodies[],
                                         const char *const msg_ids[],
                                         const miscache_queue_opts_t *opts,
                                         char (*ids_out)[MISCACHE_QUEUE_ID_SIZE]) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (n == 0) return MISCACHE_OK;
  enq_t e;
  miscache__reply_t **rs = NULL;
  miscache_status_t st = enq_build(mc, &e, name, n, bodies, msg_ids, opts,
                                   false);
  if (st == MISCACHE_OK && !(rs = calloc(n + 1, sizeof *rs))) {
    st = MISCACHE_ERR_NOMEM;
    miscache__set_err(mc, "out of memory for %zu messages", n);
  }
  if (st == MISCACHE_OK)
    st = miscache__run(mc, MISCACHE_DB_QUEUE, n + 1, e.cmds, rs, 0);
  if (st == MISCACHE_OK) st = xadd_ids(mc, rs, n, ids_out);
  if (st == MISCACHE_OK && miscache__reply_type(rs[n]) == MISCACHE__R_ERROR) {
    /* NOSCRIPT: the trim again through the usual EVALSHA-then-EVAL (the
     * messages are in) */
    const char *keys[2] = {e.k.lk[0], e.k.lk[2]};
    const char *args[1] = {e.maxlen};
    long long dropped = 0;
    st = miscache__eval(mc, MISCACHE_DB_QUEUE, lua_trim, sha_trim, 2, keys, 1,
                        args, 0, &dropped);
  }
  for (size_t i = 0; rs && i <= n; i++) miscache__reply_free(rs[i]);
  free(rs);
  enq_done(&e);
  return st;
}

/* ---- async (async.h) ------------------------------------------------------ */

typedef struct {
  miscache_async_ids_fn fn;
  void *ud;
} aenq_t;

static void enqueued(miscache_async_t *a, void *p, miscache_status_t st,
                     miscache__reply_t **r, size_t n, const char *why) {
  aenq_t c = *(aenq_t *)p;
  free(p);
  miscache_t *mc = miscache__async_mc(a);
  size_t msgs = n ? n - 1 : 0;
  char(*ids)[MISCACHE_QUEUE_ID_SIZE] =
      st == MISCACHE_OK ? calloc(msgs ? msgs : 1, sizeof *ids) : NULL;
  char buf[MISCACHE_ERRMSG_SIZE];
  if (st == MISCACHE_OK && !ids) {
    st = MISCACHE_ERR_NOMEM;
    why = "out of memory reading the XADD replies";
  } else if (st == MISCACHE_OK) {
    st = xadd_ids(mc, r, msgs, ids);
    if (st == MISCACHE_OK && miscache__reply_type(r[msgs]) == MISCACHE__R_ERROR)
      st = miscache__reply_error(r[msgs], "queue trim", mc->err,
                                 sizeof mc->err);
    if (st != MISCACHE_OK) {
      snprintf(buf, sizeof buf, "%s", mc->err);
      why = buf;
    }
  }
  c.fn(c.ud, st, st == MISCACHE_OK ? msgs : 0,
       (const char(*)[MISCACHE_QUEUE_ID_SIZE])ids, why);
  free(ids);
}

miscache_status_t miscache_async_queue_enqueue(
    miscache_async_t *a, const char *name, size_t n,
    const json_t *const bodies[], const char *const msg_ids[],
    const miscache_queue_opts_t *opts, miscache_async_ids_fn fn,
    void *userdata) {
  miscache_status_t st =
      miscache__async_check(a, fn != NULL, "miscache_async_queue_enqueue");
  if (st != MISCACHE_OK) return st;
  miscache_t *mc = miscache__async_mc(a);
  enq_t e;
  aenq_t *c = NULL;
  /* the trim by EVAL: a NOSCRIPT would need a second round trip */
  st = enq_build(mc, &e, name, n, bodies, msg_ids, opts, true);
  if (st == MISCACHE_OK && !(c = malloc(sizeof *c))) {
    st = MISCACHE_ERR_NOMEM;
    miscache__set_err(mc, "out of memory");
  }
  if (st == MISCACHE_OK) {
    c->fn = fn;
    c->ud = userdata;
    st = miscache__async_send(a, MISCACHE_DB_QUEUE, n + 1, e.cmds, enqueued, c);
    if (st != MISCACHE_OK) free(c);
  } else {
    miscache__async_refuse(a, "%s", mc->err);
  }
  enq_done(&e);
  return st;
}

/* ---- reading entries ---------------------------------------------------- */

void miscache_queue_msg_clear(miscache_queue_msg_t *m) {
  if (!m) return;
  json_decref(m->body);
  memset(m, 0, sizeof *m);
}

/* Fill m from one entry [id, [field, value, ...]], and *seq (may be NULL)
 * from its "seq" field (0 without one). false when its body is not JSON
 * (why says so). */
static bool entry_to_msg(const miscache__reply_t *e, miscache_queue_msg_t *m,
                         uint64_t *seq, char *why, size_t whylen) {
  memset(m, 0, sizeof *m);
  if (seq) *seq = 0;
  const miscache__reply_t *f = miscache__reply_at(e, 1);
  snprintf(m->id, sizeof m->id, "%s",
           miscache__reply_str(miscache__reply_at(e, 0), NULL));
  size_t nf = miscache__reply_count(f);
  for (size_t i = 0; i + 1 < nf; i += 2) {
    const char *name = miscache__reply_str(miscache__reply_at(f, i), NULL);
    size_t vlen;
    const char *v = miscache__reply_str(miscache__reply_at(f, i + 1), &vlen);
    if (strcmp(name, "msg_id") == 0)
      snprintf(m->msg_id, sizeof m->msg_id, "%s", v);
    else if (strcmp(name, "enqueued_ms") == 0)
      m->enqueued_ms = strtoll(v, NULL, 10);
    else if (strcmp(name, "deliveries") == 0)
      m->deliveries = strtoull(v, NULL, 10);
    else if (strcmp(name, "seq") == 0 && seq)
      *seq = strtoull(v, NULL, 10);
    else if (strcmp(name, "body") == 0 && !m->body)
      m->body = miscache__decode(v, vlen, why, whylen);
  }
  if (!m->body && why[0] == 0) snprintf(why, whylen, "no body field");
  return m->body != NULL;
}

static miscache_status_t dead_letter(miscache_t *mc, qkeys_t *k,
                                     const char *group, const char *id,
                                     uint64_t deliveries, const char *why) {
  pthread_once(&sha_once, make_shas);
  char d[24];
  snprintf(d, sizeof d, "%llu", (unsigned long long)deliveries);
  const char *keys[3] = {k->lk[0], k->lk[1], k->lk[3]};
  const char *args[4] = {group, id, d, why};
  long long moved = 0;
  return miscache__eval(mc, MISCACHE_DB_QUEUE, lua_dead, sha_dead, 3, keys, 4,
                        args, 0, &moved);
}

static miscache_status_t create_group(miscache_t *mc, qkeys_t *k,
                                      const char *group) {
  const char *argv[6] = {"XGROUP", "CREATE", k->stream.ptr, group, "0",
                         "MKSTREAM"};
  miscache__reply_t *r = NULL;
  miscache_status_t st = cmd1(mc, 6, argv, &r, MISCACHE__IDEMPOTENT);
  if (st != MISCACHE_OK) return st;
  if (miscache__reply_type(r) == MISCACHE__R_ERROR &&
      strncmp(miscache__reply_str(r, NULL), "BUSYGROUP", 9) != 0)
    return err_reply(mc, r, "XGROUP CREATE");
  miscache__reply_free(r);
  return MISCACHE_OK;
}

/* Where taken entries go: out[] (and seqs[], may be NULL) from *got on,
 * at most max. */
typedef struct {
  miscache_queue_msg_t *out;
  uint64_t *seqs;
  size_t max, *got;
} sink_t;

/* The entries of an XREADGROUP/XAUTOCLAIM list into the sink,
 * dead-lettering those whose body is not JSON and, with counts (the
 * server's delivery count of each, after this delivery), those delivered
 * more than max_deliveries times. Without counts each was delivered once.
 * *dead (may be NULL) counts the dead-lettered. */
static miscache_status_t take_entries(miscache_t *mc, qkeys_t *k,
                                      const char *group,
                                      const miscache__reply_t *list,
                                      const miscache__reply_t *counts,
                                      uint64_t max_deliveries, sink_t *sk,
                                      size_t *dead) {
  size_t n = miscache__reply_count(list);
  miscache_status_t st = MISCACHE_OK;
  for (size_t i = 0; i < n && *sk->got < sk->max && st == MISCACHE_OK; i++) {
    const miscache__reply_t *e = miscache__reply_at(list, i);
    /* [id, [field, value...]]; fields nil: an entry deleted while
     * pending. Another shape is no entry: it stays pending and comes back
     * through the reclaim (dead-lettered after max_deliveries) */
    if (miscache__reply_count(e) != 2 ||
        !miscache__reply_is(miscache__reply_at(e, 0), MISCACHE__R_STRING) ||
        !miscache__reply_is(miscache__reply_at(e, 1), MISCACHE__R_ARRAY))
      continue;
    uint64_t d = 1;
    if (counts) {
      const miscache__reply_t *c = miscache__reply_at(counts, i);
      if (!miscache__reply_is(c, MISCACHE__R_INTEGER) ||
          miscache__reply_int(c) < 1)
        continue; /* no longer pending: somebody acked it meanwhile */
      d = (uint64_t)miscache__reply_int(c);
    }
    char why[160] = "";
    size_t at = *sk->got;
    miscache_queue_msg_t *m = &sk->out[at];
    bool ok = entry_to_msg(e, m, sk->seqs ? &sk->seqs[at] : NULL, why,
                           sizeof why);
    if (ok && d <= max_deliveries) {
      m->deliveries = d;
      (*sk->got)++;
      continue;
    }
    char what[200];
    if (ok) /* handed over max_deliveries times (this claim not counted) */
      snprintf(what, sizeof what, "delivered max_deliveries times without "
                                  "an ack");
    else
      body_refused(what, sizeof what, why);
    char id[MISCACHE_QUEUE_ID_SIZE];
    snprintf(id, sizeof id, "%s", m->id);
    miscache_queue_msg_clear(m);
    st = dead_letter(mc, k, group, id, ok ? d - 1 : d, what);
    if (st == MISCACHE_OK && dead) (*dead)++;
  }
  return st;
}

static miscache_status_t check_args(miscache_t *mc, const char *group,
                                    const char *consumer, size_t max,
                                    miscache_queue_msg_t *out, size_t *got) {
  if (got) *got = 0;
  if (!got || !out || max == 0 || max > 100000) {
    miscache__set_err(mc, "queue: out/got NULL or max not in 1..100000");
    return MISCACHE_ERR_INVALID;
  }
  if (!word_ok(mc, "group", group) ||
      (consumer && !word_ok(mc, "consumer", consumer)))
    return MISCACHE_ERR_KEY;
  return MISCACHE_OK;
}

miscache_status_t miscache__queue_pull_seq(miscache_t *mc, const char *name,
                                           const char *group,
                                           const char *consumer, size_t max,
                                           int block_ms,
                                           miscache_queue_msg_t *out,
                                           uint64_t *seqs, size_t *got) {
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache_status_t st = check_args(mc, group, consumer, max, out, got);
  if (st == MISCACHE_OK && (!consumer || block_ms < 0)) {
    miscache__set_err(mc, "queue pull: consumer NULL or block_ms < 0");
    st = MISCACHE_ERR_INVALID;
  }
  if (st != MISCACHE_OK) return st;
  qkeys_t k;
  if ((st = qkeys(mc, name, &k)) != MISCACHE_OK) return st;
  char count[24], block[24];
  snprintf(count, sizeof count, "%zu", max);
  snprintf(block, sizeof block, "%d", block_ms);
  const char *argv[11] = {"XREADGROUP", "GROUP", group, consumer, "COUNT",
                          count, "BLOCK", block, "STREAMS", k.stream.ptr, ">"};
  if (block_ms == 0) { /* no BLOCK: answer at once */
    argv[6] = "STREAMS", argv[7] = k.stream.ptr, argv[8] = ">";
  }
  int argc = block_ms == 0 ? 9 : 11;
  miscache__reply_t *r = NULL;
  for (int attempt = 0; attempt < 2; attempt++) {
    st = cmd1(mc, argc, argv, &r, 0);
    if (st != MISCACHE_OK) break;
    if (miscache__reply_type(r) == MISCACHE__R_ERROR &&
        strncmp(miscache__reply_str(r, NULL), "NOGROUP", 7) == 0 && !attempt) {
      miscache__reply_free(r);
      r = NULL;
      if ((st = create_group(mc, &k, group)) != MISCACHE_OK) break;
      continue;
    }
    break;
  }
  if (st == MISCACHE_OK) {
    sink_t sk = {out, seqs, max, got};
    if (miscache__reply_type(r) == MISCACHE__R_ERROR) {
      st = err_reply(mc, r, "XREADGROUP");
      r = NULL;
    } else if (miscache__reply_type(r) == MISCACHE__R_ARRAY) {
      /* [[stream, [entry...]]] for the one stream asked */
      const miscache__reply_t *s0 = miscache__reply_at(r, 0);
      const miscache__reply_t *list = miscache__reply_at(s0, 1);
      if (miscache__reply_count(r) == 0) {
        /* no stream: nothing came */
      } else if (miscache__reply_count(r) != 1 ||
                 miscache__reply_count(s0) != 2 ||
                 !miscache__reply_is(list, MISCACHE__R_ARRAY)) {
        st = miscache__unexpected(mc, MISCACHE_DB_QUEUE, k.lk[0], r,
                                  "XREADGROUP");
      } else {
        st = take_entries(mc, &k, group, list, NULL, UINT64_MAX, &sk, NULL);
      }
    } else if (!miscache__reply_is(r, MISCACHE__R_NIL)) {
      st = miscache__unexpected(mc, MISCACHE_DB_QUEUE, k.lk[0], r,
                                "XREADGROUP");
    } /* nil: nothing came within block_ms */
  }
  miscache__reply_free(r);
  qkeys_done(&k);
  return st;
}

miscache_status_t miscache_queue_pull(miscache_t *mc, const char *name,
                                      const char *group, const char *consumer,
                                      size_t max, int block_ms,
                                      miscache_queue_msg_t *out, size_t *got) {
  return miscache__queue_pull_seq(mc, name, group, consumer, max, block_ms,
                                  out, NULL, got);
}

miscache_status_t miscache__queue_reclaim_seq(
    miscache_t *mc, const char *name, const char *group, const char *consumer,
    size_t max, const miscache_queue_opts_t *opts, miscache_queue_msg_t *out,
    uint64_t *seqs, size_t *got, size_t *dead) {
  if (dead) *dead = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache_status_t st = check_args(mc, group, consumer, max, out, got);
  if (st == MISCACHE_OK && !consumer) {
    miscache__set_err(mc, "queue reclaim: consumer NULL");
    st = MISCACHE_ERR_INVALID;
  }
  if (st != MISCACHE_OK) return st;
  miscache_queue_opts_t o;
  opts_or_defaults(opts, &o);
  qkeys_t k;
  if ((st = qkeys(mc, name, &k)) != MISCACHE_OK) return st;
  pthread_once(&sha_once, make_shas);
  char idle[24], count[24];
  snprintf(idle, sizeof idle, "%lld", (long long)o.reclaim_idle_ms);
  snprintf(count, sizeof count, "%zu", max);
  /* claimed, with the delivery count the server has for each after the
   * claim, in one step: a count read before (XPENDING) could be stale */
  const char *keys[1] = {k.lk[0]};
  const char *args[4] = {group, consumer, idle, count};
  miscache__reply_t *r = NULL;
  st = miscache__eval_reply(mc, MISCACHE_DB_QUEUE, lua_claim, sha_claim, 1,
                            keys, 4, args, 0, &r);
  if (st != MISCACHE_OK && strstr(mc->err, "NOGROUP")) {
    st = MISCACHE_OK; /* no group yet: nothing to reclaim */
  } else if (st == MISCACHE_OK) {
    const miscache__reply_t *list = miscache__reply_at(r, 0);
    const miscache__reply_t *counts = miscache__reply_at(r, 1);
    if (miscache__reply_count(r) != 2 ||
        !miscache__reply_is(list, MISCACHE__R_ARRAY) ||
        !miscache__reply_is(counts, MISCACHE__R_ARRAY) ||
        miscache__reply_count(list) != miscache__reply_count(counts)) {
      st = miscache__unexpected(mc, MISCACHE_DB_QUEUE, k.lk[0], r,
                                "XAUTOCLAIM");
    } else {
      sink_t sk = {out, seqs, max, got};
      st = take_entries(mc, &k, group, list, counts, o.max_deliveries, &sk,
                        dead);
    }
  }
  miscache__reply_free(r);
  qkeys_done(&k);
  return st;
}

miscache_status_t miscache_queue_reclaim(miscache_t *mc, const char *name,
                                         const char *group,
                                         const char *consumer, size_t max,
                                         const miscache_queue_opts_t *opts,
                                         miscache_queue_msg_t *out, size_t *got,
                                         size_t *dead) {
  return miscache__queue_reclaim_seq(mc, name, group, consumer, max, opts,
                                     out, NULL, got, dead);
}

miscache_status_t miscache__queue_defer(miscache_t *mc, const char *name,
                                       const char *group,
                                       const char *consumer, size_t n,
                                       const char *const ids[],
                                       const uint64_t deliveries[],
                                       int64_t idle_ms) {
  if (n == 0) return MISCACHE_OK;
  qkeys_t k;
  miscache_status_t st = qkeys(mc, name, &k);
  if (st != MISCACHE_OK) return st;
  enum { A = 10 };
  const char **argv = calloc(n * A, sizeof *argv);
  size_t *lens = calloc(n * A, sizeof *lens);
  char (*num)[2][24] = calloc(n, sizeof *num);
  miscache__cmd_t *cmds = calloc(n, sizeof *cmds);
  miscache__reply_t **rs = calloc(n, sizeof *rs);
  if (!argv || !lens || !num || !cmds || !rs) {
    st = MISCACHE_ERR_NOMEM;
    miscache__set_err(mc, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    snprintf(num[i][0], sizeof num[i][0], "%lld", (long long)idle_ms);
    snprintf(num[i][1], sizeof num[i][1], "%llu",
             (unsigned long long)(deliveries[i] ? deliveries[i] - 1 : 0));
    const char *a[A] = {"XCLAIM", k.stream.ptr, group, consumer, "0", ids[i],
                        "IDLE", num[i][0], "RETRYCOUNT", num[i][1]};
    for (int j = 0; j < A; j++) {
      argv[i * A + (size_t)j] = a[j];
      lens[i * A + (size_t)j] = strlen(a[j]);
    }
    cmds[i] = (miscache__cmd_t){A, argv + i * A, lens + i * A};
  }
  st = miscache__run(mc, MISCACHE_DB_QUEUE, n, cmds, rs,
                          MISCACHE__IDEMPOTENT);
  for (size_t i = 0; st == MISCACHE_OK && i < n; i++)
    if (miscache__reply_is(rs[i], MISCACHE__R_ERROR))
      st = miscache__reply_error(rs[i], "XCLAIM", mc->err, sizeof mc->err);
done:
  for (size_t i = 0; rs && i < n; i++) miscache__reply_free(rs[i]);
  free(argv);
  free(lens);
  free(num);
  free(cmds);
  free(rs);
  qkeys_done(&k);
  return st;
}

miscache_status_t miscache_queue_ack(miscache_t *mc, const char *name,
                                     const char *group, const char *id) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!word_ok(mc, "group", group) || !word_ok(mc, "entry id", id))
    return MISCACHE_ERR_KEY;
  qkeys_t k;
  miscache_status_t st = qkeys(mc, name, &k);
  if (st != MISCACHE_OK) return st;
  const char *a1[4] = {"XACK", k.stream.ptr, group, id};
  const char *a2[3] = {"XDEL", k.stream.ptr, id};
  const char *a3[3] = {"HDEL", k.errors.ptr, id};
  size_t l1[4], l2[3], l3[3];
  for (int i = 0; i < 4; i++) l1[i] = strlen(a1[i]);
  for (int i = 0; i < 3; i++) l2[i] = strlen(a2[i]), l3[i] = strlen(a3[i]);
  miscache__cmd_t cmds[3] = {{4, a1, l1}, {3, a2, l2}, {3, a3, l3}};
  miscache__reply_t *r[3] = {NULL, NULL, NULL};
  st = miscache__run(mc, MISCACHE_DB_QUEUE, 3, cmds, r,
                          MISCACHE__IDEMPOTENT);
  for (int i = 0; st == MISCACHE_OK && i < 3; i++)
    if (miscache__reply_type(r[i]) == MISCACHE__R_ERROR) {
      st = miscache__reply_error(r[i], a1[0], mc->err, sizeof mc->err);
    }
  for (int i = 0; i < 3; i++) miscache__reply_free(r[i]);
  qkeys_done(&k);
  return st;
}

miscache_status_t miscache_queue_fail(miscache_t *mc, const char *name,
                                      const char *id, const char *error) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!word_ok(mc, "entry id", id)) return MISCACHE_ERR_KEY;
  qkeys_t k;
  miscache_status_t st = qkeys(mc, name, &k);
  if (st != MISCACHE_OK) return st;
  const char *argv[4] = {"HSET", k.errors.ptr, id,
                         error && error[0] ? error : "failed"};
  miscache__reply_t *r = NULL;
  st = cmd1(mc, 4, argv, &r, MISCACHE__IDEMPOTENT);
  if (st == MISCACHE_OK && miscache__reply_type(r) == MISCACHE__R_ERROR) {
    st = err_reply(mc, r, "HSET");
    r = NULL;
  }
  miscache__reply_free(r);
  qkeys_done(&k);
  return st;
}

static miscache_status_t handle_all(miscache_t *mc, const char *name,
                                    const char *group, miscache_queue_msg_t *m,
                                    size_t n, miscache_queue_handler_fn handler,
                                    void *ud, size_t *handled) {
  miscache_status_t st = MISCACHE_OK;
  for (size_t i = 0; i < n; i++) {
    char err[MISCACHE_ERRMSG_SIZE] = "";
    miscache_status_t hs = handler(ud, &m[i], err, sizeof err);
    if (handled) (*handled)++;
    miscache_status_t s2 =
        hs == MISCACHE_OK
            ? miscache_queue_ack(mc, name, group, m[i].id)
            : miscache_queue_fail(mc, name, m[i].id,
                                  err[0] ? err : miscache_strerror(hs));
    if (st == MISCACHE_OK) st = s2;
    miscache_queue_msg_clear(&m[i]);
  }
  return st;
}

miscache_status_t miscache_queue_consume(miscache_t *mc, const char *name,
                                         const char *group,
                                         const char *consumer, size_t batch,
                                         int block_ms,
                                         const miscache_queue_opts_t *opts,
                                         miscache_queue_handler_fn handler,
                                         void *userdata, size_t *handled) {
  if (handled) *handled = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!handler || batch == 0 || batch > 100000) {
    miscache__set_err(mc, "queue consume: handler NULL or batch not in "
                          "1..100000");
    return MISCACHE_ERR_INVALID;
  }
  miscache_queue_msg_t *m = calloc(batch, sizeof *m);
  if (!m) {
    miscache__set_err(mc, "out of memory for a batch of %zu", batch);
    return MISCACHE_ERR_NOMEM;
  }
  size_t got = 0;
  miscache_status_t st = miscache_queue_reclaim(mc, name, group, consumer,
                                                batch, opts, m, &got, NULL);
  if (st == MISCACHE_OK && got)
    st = handle_all(mc, name, group, m, got, handler, userdata, handled);
  if (st == MISCACHE_OK) {
    got = 0;
    st = miscache_queue_pull(mc, name, group, consumer, batch, block_ms, m,
                             &got);
    if (st == MISCACHE_OK)
      st = handle_all(mc, name, group, m, got, handler, userdata, handled);
  }
  for (size_t i = 0; i < batch; i++) miscache_queue_msg_clear(&m[i]);
  free(m);
  return st;
}

/* ---- figures ----------------------------------------------------------------- */

miscache_status_t miscache_queue_info(miscache_t *mc, const char *name,
                                      const char *group,
                                      miscache_queue_info_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_queue_info: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  out->oldest_age_ms = -1;
  qkeys_t k;
  miscache_status_t st = qkeys(mc, name, &k);
  if (st != MISCACHE_OK) return st;
  const char *a[6][6] = {{"XLEN", k.stream.ptr},
                         {"XINFO", "GROUPS", k.stream.ptr},
                         {"XRANGE", k.stream.ptr, "-", "+", "COUNT", "1"},
                         {"XLEN", k.dead.ptr},
                         {"GET", k.trimmed.ptr},
                         {"TIME"}};
  int argc[6] = {2, 3, 6, 2, 2, 1};
  size_t l[6][6];
  miscache__cmd_t cmds[6];
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < argc[i]; j++) l[i][j] = strlen(a[i][j]);
    cmds[i] = (miscache__cmd_t){argc[i], a[i], l[i]};
  }
  miscache__reply_t *r[6] = {NULL};
  st = miscache__run(mc, MISCACHE_DB_QUEUE, 6, cmds, r,
                          MISCACHE__IDEMPOTENT);
  if (st != MISCACHE_OK) goto done;
  /* a key of the queue that holds another type (WRONGTYPE) is the same
   * ERR_DECODE as for every other queue call; XINFO's "no such key" is an
   * empty queue */
  static const char *const what[6] = {"XLEN", "XINFO GROUPS", "XRANGE",
                                      "XLEN", "GET", "TIME"};
  for (int i = 0; i < 6; i++) {
    if (!miscache__reply_is(r[i], MISCACHE__R_ERROR)) continue;
    if (i == 1 && !strstr(miscache__reply_str(r[i], NULL), "WRONGTYPE"))
      continue;
    char ctx[96];
    snprintf(ctx, sizeof ctx, "%s %s", what[i], a[i][1] ? a[i][1] : "");
    st = miscache__unexpected(mc, MISCACHE_DB_QUEUE, k.lk[0], r[i], ctx);
    goto done;
  }
  out->length = (uint64_t)miscache__reply_int(r[0]);
  out->dead = (uint64_t)miscache__reply_int(r[3]);
  out->trimmed = strtoull(miscache__reply_str(r[4], NULL), NULL, 10);
  /* XINFO GROUPS: [[name, g, consumers, n, pending, n, ...], ...] (an error
   * when the stream does not exist) */
  size_t ng = miscache__reply_type(r[1]) == MISCACHE__R_ARRAY
                  ? miscache__reply_count(r[1])
                  : 0;
  for (size_t gi = 0; gi < ng; gi++) {
    const miscache__reply_t *g = miscache__reply_at(r[1], gi);
    bool mine = !group;
    uint64_t consumers = 0, pending = 0;
    for (size_t f = 0; f + 1 < miscache__reply_count(g); f += 2) {
      const char *fn = miscache__reply_str(miscache__reply_at(g, f), NULL);
      const miscache__reply_t *v = miscache__reply_at(g, f + 1);
      if (strcmp(fn, "name") == 0 && group)
        mine = strcmp(miscache__reply_str(v, NULL), group) == 0;
      else if (strcmp(fn, "consumers") == 0)
        consumers = (uint64_t)miscache__reply_int(v);
      else if (strcmp(fn, "pending") == 0)
        pending = (uint64_t)miscache__reply_int(v);
    }
    if (mine) {
      out->consumers = consumers;
      out->pending = pending;
      break;
    }
  }
  const miscache__reply_t *first = miscache__reply_at(r[2], 0);
  if (first && miscache__reply_count(r[5]) == 2) {
    long long oldest =
        strtoll(miscache__reply_str(miscache__reply_at(first, 0), NULL), NULL,
                10);
    long long now_ms =
        strtoll(miscache__reply_str(miscache__reply_at(r[5], 0), NULL), NULL,
                10) * 1000 +
        strtoll(miscache__reply_str(miscache__reply_at(r[5], 1), NULL), NULL,
                10) / 1000;
    out->oldest_age_ms = now_ms - oldest;
  }
done:
  for (int i = 0; i < 6; i++) miscache__reply_free(r[i]);
  qkeys_done(&k);
  return st;
}

miscache_status_t miscache_queue_dead(miscache_t *mc, const char *name,
                                      size_t max, miscache_queue_msg_t *out,
                                      char **errors, size_t *got) {
  if (got) *got = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out || !got || max == 0 || max > 100000) {
    miscache__set_err(mc, "queue dead: out/got NULL or max not in 1..100000");
    return MISCACHE_ERR_INVALID;
  }
  qkeys_t k;
  miscache_status_t st = qkeys(mc, name, &k);
  if (st != MISCACHE_OK) return st;
  char count[24];
  snprintf(count, sizeof count, "%zu", max);
  const char *argv[6] = {"XRANGE", k.dead.ptr, "-", "+", "COUNT", count};
  miscache__reply_t *r = NULL;
  st = cmd1(mc, 6, argv, &r, MISCACHE__IDEMPOTENT);
  size_t n = st == MISCACHE_OK ? miscache__reply_count(r) : 0;
  for (size_t i = 0; i < n && *got < max; i++) {
    const miscache__reply_t *e = miscache__reply_at(r, i);
    char why[160] = "";
    miscache_queue_msg_t *m = &out[*got];
    entry_to_msg(e, m, NULL, why, sizeof why); /* its body may be bad */
    if (errors) {
      errors[*got] = NULL;
      const miscache__reply_t *f = miscache__reply_at(e, 1);
      for (size_t j = 0; j + 1 < miscache__reply_count(f); j += 2)
        if (strcmp(miscache__reply_str(miscache__reply_at(f, j), NULL),
                   "error") == 0)
          errors[*got] =
              strdup(miscache__reply_str(miscache__reply_at(f, j + 1), NULL));
    }
    (*got)++;
  }
  miscache__reply_free(r);
  qkeys_done(&k);
  return st;
}

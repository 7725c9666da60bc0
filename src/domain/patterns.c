/*
 * Write-through, write-behind (with its flush worker) and background
 * refresh: see patterns.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domain/domain.h"

/* ---- write-through ------------------------------------------------------- */

miscache_status_t miscache_write_through(miscache_t *mc, miscache_db_t db,
                                         const char *key, const json_t *value,
                                         miscache_ttl_class_t cls,
                                         bool invalidate,
                                         miscache_writer_fn writer,
                                         void *userdata) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!writer || !value || !key) {
    miscache__set_err(mc, "write-through: writer, key or value is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char why[MISCACHE_ERRMSG_SIZE] = "";
  miscache_status_t ws = writer(userdata, db, key, value, why, sizeof why);
  if (ws != MISCACHE_OK) {
    miscache__set_err(mc, "write-through %s: the writer failed (%s): %s", key,
                      miscache_strerror(ws), why[0] ? why : "no message");
    return MISCACHE_ERR_WRITER;
  }
  miscache_status_t st = invalidate ? miscache_delete(mc, db, key, NULL)
                                    : miscache_set(mc, db, key, value, cls);
  if (st == MISCACHE_OK || invalidate) return st;
  /* the cache must not keep an older value than the system of record */
  char was[MISCACHE_ERRMSG_SIZE];
  snprintf(was, sizeof was, "%s", mc->err);
  miscache_status_t ds = miscache_delete(mc, db, key, NULL);
  miscache__set_err(mc,
                    "write-through %s: written to the system of record; the "
                    "cache write failed (%s), key %s",
                    key, was,
                    ds == MISCACHE_OK ? "deleted"
                    : ds == MISCACHE_ERR_PENDING_FULL
                        ? "NOT deleted (pending list full): stale until TTL"
                        : "delete kept pending");
  return st;
}

/* ---- write-behind ------------------------------------------------------- */

/* KEYS: value key, stream, seq counter. ARGV: cache db, queue db, value,
 * ttl ms, msg id, enqueued ms, body. One atomic step: the change's number
 * (INCR of the queue's counter), its queue entry, then the value. The
 * types are checked before anything is written, so a queue key that holds
 * something else (WRONGTYPE) leaves the cache as it was. Returns the seq. */
static const char lua_write_behind[] =
    "redis.call('SELECT', ARGV[2])\n"
    "local t = redis.call('TYPE', KEYS[2]).ok\n"
    "if t ~= 'none' and t ~= 'stream' then\n"
    "  return redis.error_reply('WRONGTYPE the queue key holds a ' .. t)\n"
    "end\n"
    "local seq = redis.call('INCR', KEYS[3])\n"
    "redis.call('XADD', KEYS[2], '*', 'msg_id', ARGV[5], 'enqueued_ms', "
    "ARGV[6], 'seq', seq, 'body', ARGV[7])\n"
    "redis.call('SELECT', ARGV[1])\n"
    "redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])\n"
    "return seq\n";

/* KEYS: lease, written hash. ARGV: token, field, seq. After the writer
 * wrote change seq: recorded as written (if newer) while the lease is
 * still ours. 1, or 0 when the lease was lost (nothing recorded). */
static const char lua_wb_record[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return 0 end\n"
    "local ok, d = pcall(cjson.decode, v)\n"
    "if not (ok and type(d) == 'table' and d['token'] == ARGV[1]) then\n"
    "  return 0\n"
    "end\n"
    "local w = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')\n"
    "if tonumber(ARGV[3]) > w then redis.call('HSET', KEYS[2], ARGV[2], "
    "ARGV[3]) end\n"
    "return 1\n";

static char sha_wb[41], sha_record[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static void make_shas(void) {
  miscache__sha1_hex(lua_write_behind, sha_wb);
  miscache__sha1_hex(lua_wb_record, sha_record);
}

/* Logical keys of queue NAME's write-behind companions. */
static void wb_key(char *buf, size_t len, const char *queue,
                   const char *suffix) {
  snprintf(buf, len, "queue:{%s}:%s", queue, suffix);
}

miscache_status_t miscache_write_behind(miscache_t *mc, miscache_db_t db,
                                        const char *key, const json_t *value,
                                        miscache_ttl_class_t cls,
                                        const char *queue, bool coalesce) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!value || !key || !queue || !miscache__db_valid(db) ||
      !miscache__ttl_valid(cls)) {
    miscache__set_err(mc, "write-behind: key, value or queue NULL, or bad db "
                          "or TTL class");
    return MISCACHE_ERR_INVALID;
  }
  if (miscache__is_cluster(mc)) {
    miscache__set_err(mc, "write-behind %s: not on a Redis Cluster (one db, "
                          "and the value and the queue are in different "
                          "slots): use write-through",
                      key);
    return MISCACHE_ERR_INVALID;
  }
  miscache__fullkey_t fq;
  miscache_status_t st = miscache__queue_stream_key(mc, queue, &fq);
  if (st != MISCACHE_OK) return st;
  miscache__fullkey_done(&fq); /* the name is valid */
  char *val = miscache__encode(value, NULL);
  json_t *msg = json_pack("{s:s,s:s,s:s,s:O,s:b}", "op", "set", "db",
                          miscache_db_name(db), "key", key, "value", value,
                          "coalesce", coalesce);
  char *body = msg ? miscache__encode(msg, NULL) : NULL;
  json_decref(msg);
  if (!val || !body) {
    st = val ? MISCACHE_ERR_NOMEM : MISCACHE_ERR_ENCODE;
    miscache__set_err(mc, "write-behind %s: %s", key,
                      val ? "out of memory" : "value cannot be encoded");
    goto done;
  }
  pthread_once(&sha_once, make_shas);
  char ttl[24], cdb[16], qdb[16], now[24], mid[40];
  char sk[96], seqk[96];
  snprintf(ttl, sizeof ttl, "%lld", (long long)miscache__ttl_ms(mc, cls));
  snprintf(cdb, sizeof cdb, "%d", mc->opts.db[db]);
  snprintf(qdb, sizeof qdb, "%d", mc->opts.db[MISCACHE_DB_QUEUE]);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(now, sizeof now, "%lld",
           (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
  uint64_t r1 = miscache__rand(mc), r2 = miscache__rand(mc);
  snprintf(mid, sizeof mid, "wb-%016llx%016llx", (unsigned long long)r1,
           (unsigned long long)r2);
  wb_key(sk, sizeof sk, queue, "");
  sk[strlen(sk) - 1] = 0; /* the stream: "queue:{NAME}" */
  wb_key(seqk, sizeof seqk, queue, "seq");
  const char *keys[3] = {key, sk, seqk};
  const char *args[7] = {cdb, qdb, val, ttl, mid, now, body};
  long long seq = 0;
  st = miscache__eval(mc, MISCACHE_DB_QUEUE, lua_write_behind, sha_wb, 3, keys,
                      7, args, MISCACHE__WRITES, &seq);
  if (st == MISCACHE_OK && seq < 1) {
    miscache__set_err(mc, "write-behind %s: the script gave seq %lld", key,
                      seq);
    st = MISCACHE_ERR_REPLY;
  }
  if (st != MISCACHE_OK) miscache__count(mc, db, key, MISCACHE__ERROR);
done:
  free(val);
  free(body);
  return st;
}

/* ---- the flush worker ------------------------------------------------- */

#define WB_LEASE_MIN_MS 5000 /* the shortest per-key lease of a flush */

typedef struct {
  bool ok; /* a write-behind change */
  miscache_db_t db;
  const char *key;
  json_t *value; /* borrowed from the message */
  bool coalesce;
  uint64_t seq;
  bool done;
} change_t;

static void decode_change(const miscache_queue_msg_t *m, uint64_t seq,
                          change_t *c) {
  memset(c, 0, sizeof *c);
  const char *op = json_string_value(json_object_get(m->body, "op"));
  const char *dbn = json_string_value(json_object_get(m->body, "db"));
  c->key = json_string_value(json_object_get(m->body, "key"));
  c->value = json_object_get(m->body, "value");
  c->coalesce = json_is_true(json_object_get(m->body, "coalesce"));
  c->seq = seq;
  c->ok = op && strcmp(op, "set") == 0 && dbn && c->key && c->value &&
          miscache_db_from_name(dbn, &c->db) == MISCACHE_OK;
}

typedef struct {
  miscache_t *mc;
  const char *queue, *group, *consumer;
  const miscache_queue_opts_t *opts;
  int wait_left_ms; /* waiting for other flushers' leases, this round */
  miscache_wb_writer_fn writer;
  void *ud;
  size_t written, acked;
  char *lease, *field; /* of the key being flushed (malloc'd: any length,
                          never cut, so two keys never share them) */
  char written_key[96];
  char token[33];
} flush_t;

static miscache_status_t settle(flush_t *f, const miscache_queue_msg_t *m,
                                miscache_status_t ws, const char *why) {
  miscache_status_t qs =
      ws == MISCACHE_OK
          ? miscache_queue_ack(f->mc, f->queue, f->group, m->id)
          : miscache_queue_fail(f->mc, f->queue, m->id,
                                why[0] ? why : miscache_strerror(ws));
  if (qs == MISCACHE_OK && ws == MISCACHE_OK) f->acked++;
  return qs;
}

/* Takes the key's lease, trying again while another flusher holds it (its
 * write is usually quick), within the round's waiting budget. */
static miscache_status_t take_lease(flush_t *f, int64_t lease_ms,
                                    bool *taken) {
  int wait = 5;
  for (;;) {
    miscache_status_t st = miscache__lease_key_take(
        f->mc, MISCACHE_DB_QUEUE, f->lease, (int)lease_ms, f->token, taken);
    if (st != MISCACHE_OK || *taken || f->wait_left_ms <= 0) return st;
    int ms = wait < f->wait_left_ms ? wait : f->wait_left_ms;
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
    f->wait_left_ms -= ms;
    wait = wait < 80 ? wait * 2 : 80;
  }
}

/* idx[0..n) by the seq of their changes (stable: equal ones, e.g. two
 * without a seq, keep the order they came in). */
static void sort_by_seq(size_t *idx, size_t n, const change_t *c) {
  for (size_t i = 1; i < n; i++) {
    size_t v = idx[i], j = i;
    for (; j > 0 && c[idx[j - 1]].seq > c[v].seq; j--) idx[j] = idx[j - 1];
    idx[j] = v;
  }
}

/* HGET of a counter: 0 when absent. */
static miscache_status_t hget_u64(miscache_t *mc, const char *key,
                                  const char *field, uint64_t *out) {
  *out = 0;
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, key, &fk);
  if (st != MISCACHE_OK) return st;
  const char *argv[3] = {"HGET", fk.ptr, field};
  size_t lens[3] = {4, fk.len, strlen(field)};
  miscache__cmd_t cmd = {3, argv, lens};
  miscache__reply_t *r = NULL;
  st = miscache__run_key(mc, MISCACHE_DB_QUEUE, key, &cmd, &r,
                          MISCACHE__IDEMPOTENT);
  if (st == MISCACHE_OK && miscache__reply_is(r, MISCACHE__R_STRING))
    *out = strtoull(miscache__reply_str(r, NULL), NULL, 10);
  else if (st == MISCACHE_OK && !miscache__reply_is(r, MISCACHE__R_NIL))
    st = miscache__unexpected(mc, MISCACHE_DB_QUEUE, key, r, "HGET");
  miscache__reply_free(r);
  miscache__fullkey_done(&fk);
  return st;
}

/* The key's field in queue:{N}:written ("<db>:<key>") and its lease key,
 * at their full length (a cut could let two long keys share one). */
static miscache_status_t key_names(flush_t *f, const change_t *c0) {
  size_t fl = strlen(miscache_db_name(c0->db)) + strlen(c0->key) + 2;
  size_t ll = fl + strlen(f->queue) + 16;
  free(f->field);
  free(f->lease);
  f->field = malloc(fl);
  f->lease = malloc(ll);
  if (!f->field || !f->lease) {
    miscache__set_err(f->mc, "out of memory flushing %s", c0->key);
    return MISCACHE_ERR_NOMEM;
  }
  snprintf(f->field, fl, "%s:%s", miscache_db_name(c0->db), c0->key);
  snprintf(f->lease, ll, "queue:{%s}:lease:%s", f->queue, f->field);
  return MISCACHE_OK;
}

/* Another flusher holds the key: its n entries go back to the next
 * reclaim at once, this delivery not counted towards max_deliveries. */
static miscache_status_t defer_held(flush_t *f, const miscache_queue_msg_t *m,
                                    const size_t *idx, size_t n,
                                    const uint64_t *deliveries,
                                    int64_t lease_ms) {
  miscache_status_t st = MISCACHE_OK;
  const char **ids = calloc(n, sizeof *ids);
  uint64_t *dv = calloc(n, sizeof *dv);
  if (ids && dv) {
    for (size_t j = 0; j < n; j++) {
      ids[j] = m[idx[j]].id;
      dv[j] = deliveries[idx[j]];
    }
    st = miscache__queue_defer(f->mc, f->queue, f->group, f->consumer, n, ids,
                               dv, lease_ms);
  } /* else left pending until the reclaim: slower, still correct */
  free(ids);
  free(dv);
  return st;
}

/* After change cj was written: its seq recorded in queue:{N}:written, in
 * one script step with the check that this flush still holds the lease.
 * ERR_NOT_OWNER (entry left pending) when it does not. */
static miscache_status_t record_written(flush_t *f, const change_t *cj,
                                        int64_t lease_ms) {
  const char *keys[2] = {f->lease, f->written_key};
  char seq[24];
  snprintf(seq, sizeof seq, "%llu", (unsigned long long)cj->seq);
  const char *args[3] = {f->token, f->field, seq};
  long long kept = 0;
  miscache_status_t st =
      miscache__eval(f->mc, MISCACHE_DB_QUEUE, lua_wb_record, sha_record, 2,
                     keys, 3, args, 0, &kept);
  if (st != MISCACHE_OK || kept) return st; /* not recorded: done again */
  miscache__set_err(f->mc,
                    "write-behind %s: the flush lost the key's lease while "
                    "its writer ran (longer than %lld ms); a newer change "
                    "may have been written before this one (seq %llu): the "
                    "entry stays pending",
                    cj->key, (long long)lease_ms, (unsigned long long)cj->seq);
  return MISCACHE_ERR_NOT_OWNER;
}

/* The changes of one key (idx[0..n), seq order) under its lease: those not
 * newer than what the system of record has are acked unwritten; the rest
 * written in order (a coalesced one only if no later change follows),
 * each recorded as written before its entries are acked. */
static miscache_status_t flush_key(flush_t *f, miscache_queue_msg_t *m,
                                   change_t *c, const size_t *idx, size_t n,
                                   const uint64_t *deliveries) {
  miscache_t *mc = f->mc;
  miscache_status_t st = key_names(f, &c[idx[0]]);
  if (st != MISCACHE_OK) return st;
  /* as long as a dead flusher's entries wait before a reclaim, and never
   * so short that an ordinary write outlives it */
  int64_t lease_ms = f->opts && f->opts->reclaim_idle_ms
                         ? f->opts->reclaim_idle_ms
                         : 60000;
  if (lease_ms < WB_LEASE_MIN_MS) lease_ms = WB_LEASE_MIN_MS;
  bool taken = false;
  st = take_lease(f, lease_ms, &taken);
  if (st != MISCACHE_OK) return st;
  if (!taken) return defer_held(f, m, idx, n, deliveries, lease_ms);
  /* the newest change the system of record has (its seq) */
  uint64_t written = 0;
  st = hget_u64(mc, f->written_key, f->field, &written);
  size_t from = 0; /* superseded coalesced changes wait from here: they
                      share the outcome of the write that covers them */
  for (size_t j = 0; j < n && st == MISCACHE_OK; j++) {
    change_t *cj = &c[idx[j]];
    miscache_queue_msg_t *mj = &m[idx[j]];
    if (cj->seq && cj->seq <= written) { /* the system of record has it */
      st = settle(f, mj, MISCACHE_OK, "");
      from = j + 1;
      continue;
    }
    if (cj->coalesce && j + 1 < n) continue; /* a later change covers it */
    char why[MISCACHE_ERRMSG_SIZE] = "";
    miscache_wb_change_t ch = {.db = cj->db,
                               .key = cj->key,
                               .value = cj->value,
                               .seq = cj->seq,
                               .deliveries = deliveries[idx[j]],
                               .entry_id = mj->id};
    miscache_status_t ws = f->writer(f->ud, &ch, why, sizeof why);
    if (ws != MISCACHE_OK) {
      /* this one and the later ones wait: never a newer before an older */
      for (size_t r = from; r < n && st == MISCACHE_OK; r++)
        st = settle(f, &m[idx[r]], ws, why);
      break;
    }
    f->written++;
    if (cj->seq) {
      st = record_written(f, cj, lease_ms);
      if (st == MISCACHE_ERR_NOT_OWNER) return st;
      if (st != MISCACHE_OK) break;
      written = cj->seq;
    }
    for (size_t r = from; r <= j && st == MISCACHE_OK; r++)
      st = settle(f, &m[idx[r]], MISCACHE_OK, "");
    from = j + 1;
  }
  miscache__lease_key_release(mc, MISCACHE_DB_QUEUE, f->lease, f->token);
  return st;
}

miscache_status_t miscache_write_behind_flush_changes(
    miscache_t *mc, const char *queue, const char *group, const char *consumer,
    size_t batch, int block_ms, const miscache_queue_opts_t *opts,
    miscache_wb_writer_fn writer, void *userdata, size_t *written,
    size_t *acked) {
  if (written) *written = 0;
  if (acked) *acked = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!writer || batch == 0 || batch > 100000) {
    miscache__set_err(mc, "write-behind flush: writer NULL or batch not in "
                          "1..100000");
    return MISCACHE_ERR_INVALID;
  }
  miscache_queue_msg_t *m = calloc(batch, sizeof *m);
  uint64_t *seqs = calloc(batch, sizeof *seqs);
  uint64_t *dl = calloc(batch, sizeof *dl);
  change_t *c = calloc(batch, sizeof *c);
  size_t *idx = calloc(batch, sizeof *idx);
  if (!m || !seqs || !dl || !c || !idx) {
    free(m), free(seqs), free(dl), free(c), free(idx);
    miscache__set_err(mc, "out of memory for a batch of %zu", batch);
    return MISCACHE_ERR_NOMEM;
  }
  flush_t f = {.mc = mc,
               .queue = queue,
               .group = group,
               .consumer = consumer,
               .wait_left_ms = 500,
               .opts = opts,
               .writer = writer,
               .ud = userdata};
  wb_key(f.written_key, sizeof f.written_key, queue ? queue : "", "written");
  size_t got = 0, more = 0;
  char lost[MISCACHE_ERRMSG_SIZE] = ""; /* a key whose lease was lost */
  miscache_status_t st = miscache__queue_reclaim_seq(
      mc, queue, group, consumer, batch, opts, m, seqs, &got, NULL);
  if (st == MISCACHE_OK && got < batch) {
    st = miscache__queue_pull_seq(mc, queue, group, consumer, batch - got,
                                  got ? 0 : block_ms, m + got, seqs + got,
                                  &more);
    got += more;
  }
  for (size_t i = 0; i < got; i++) {
    decode_change(&m[i], seqs[i], &c[i]);
    dl[i] = m[i].deliveries;
  }
  for (size_t i = 0; st == MISCACHE_OK && i < got; i++) {
    if (c[i].done) continue;
    if (!c[i].ok) {
      c[i].done = true;
      st = settle(&f, &m[i], MISCACHE_ERR_DECODE, "not a write-behind change");
      continue;
    }
    /* every change of this key in the batch, oldest first */
    size_t n = 0;
    for (size_t j = i; j < got; j++)
      if (!c[j].done && c[j].ok && c[j].db == c[i].db &&
          strcmp(c[j].key, c[i].key) == 0) {
        idx[n++] = j;
        c[j].done = true;
      }
    sort_by_seq(idx, n, c);
    st = flush_key(&f, m, c, idx, n, dl);
    if (st == MISCACHE_ERR_NOT_OWNER) { /* that key only: go on */
      snprintf(lost, sizeof lost, "%s", mc->err);
      st = MISCACHE_OK;
    }
  }
  if (st == MISCACHE_OK && lost[0]) {
    miscache__set_err(mc, "%s", lost);
    st = MISCACHE_ERR_NOT_OWNER;
  }
  for (size_t i = 0; i < batch; i++) miscache_queue_msg_clear(&m[i]);
  free(m), free(seqs), free(dl), free(c), free(idx);
  free(f.field);
  free(f.lease);
  if (written) *written = f.written;
  if (acked) *acked = f.acked;
  return st;
}

/* The plain writer behind the versioned one. */
typedef struct {
  miscache_writer_fn writer;
  void *ud;
} plain_writer_t;

static miscache_status_t plain_writer(void *ud, const miscache_wb_change_t *ch,
                                      char *errbuf, size_t errlen) {
  plain_writer_t *p = ud;
  return p->writer(p->ud, ch->db, ch->key, ch->value, errbuf, errlen);
}

miscache_status_t miscache_write_behind_flush(
    miscache_t *mc, const char *queue, const char *group, const char *consumer,
    size_t batch, int block_ms, const miscache_queue_opts_t *opts,
    miscache_writer_fn writer, void *userdata, size_t *written,
    size_t *acked) {
  if (written) *written = 0;
  if (acked) *acked = 0;
  if (mc && !writer) {
    miscache__set_err(mc, "write-behind flush: writer NULL");
    return MISCACHE_ERR_INVALID;
  }
  plain_writer_t p = {writer, userdata};
  return miscache_write_behind_flush_changes(mc, queue, group, consumer, batch,
                                             block_ms, opts, plain_writer, &p,
                                             written, acked);
}

/* ---- background refresh ------------------------------------------------- */

/* What a refresh item's loader is told beyond db and key. */
typedef struct {
  int family;
  int64_t company;
  const char *date;
} refresh_req_t;

/* Loads one item (either loader shape) and writes it in place, deletes it
 * (record gone) or leaves it (loader failed). */
static miscache_status_t refresh_one(miscache_t *mc, size_t i,
                                     const miscache_refresh_item_t *it,
                                     const refresh_req_t *r) {
  if (!it->key || (!it->load && !it->loader)) {
    miscache__set_err(mc, "refresh item %zu: key or loader NULL", i);
    return MISCACHE_ERR_INVALID;
  }
  json_t *v = NULL;
  char why[256] = "";
  miscache_status_t ls, st;
  if (it->load) {
    miscache_load_req_t req = {.db = it->db, .key = it->key, .family = -1};
    if (r) {
      req.family = r->family;
      req.company = r->company;
      req.date = r->date;
    }
    ls = it->load(it->userdata, &req, &v, why, sizeof why);
    why[sizeof why - 1] = '\0';
  } else {
    ls = it->loader(it->userdata, it->key, &v);
  }
  if (ls == MISCACHE_OK && v) {
    st = miscache_set(mc, it->db, it->key, v, it->cls); /* in place */
  } else if (ls == MISCACHE_MISS) {
    st = miscache_delete(mc, it->db, it->key, NULL); /* record gone */
  } else {
    miscache__set_err(mc,
                      "refresh %s: loader failed (%s%s%s); the old value "
                      "stays until its TTL",
                      it->key, miscache_strerror(ls), why[0] ? ": " : "", why);
    st = MISCACHE_ERR_LOADER;
  }
  json_decref(v);
  return st;
}

/* miscache_refresh with each item's request (reqs NULL: family -1). */
static miscache_status_t refresh_items(miscache_t *mc,
                                       const miscache_refresh_item_t *items,
                                       const refresh_req_t *reqs, size_t n,
                                       size_t *refreshed) {
  if (refreshed) *refreshed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (n && !items) {
    miscache__set_err(mc, "miscache_refresh: items is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache_status_t first = MISCACHE_OK;
  char first_msg[MISCACHE_ERRMSG_SIZE] = "";
  for (size_t i = 0; i < n; i++) {
    miscache_status_t st =
        refresh_one(mc, i, &items[i], reqs ? &reqs[i] : NULL);
    if (st == MISCACHE_OK && refreshed) (*refreshed)++;
    if (st != MISCACHE_OK && first == MISCACHE_OK) {
      first = st;
      snprintf(first_msg, sizeof first_msg, "%s", mc->err);
    }
  }
  if (first != MISCACHE_OK) miscache__set_err(mc, "%s", first_msg);
  return first;
}

miscache_status_t miscache_refresh(miscache_t *mc,
                                   const miscache_refresh_item_t *items,
                                   size_t n, size_t *refreshed) {
  return refresh_items(mc, items, NULL, n, refreshed);
}

/* Both refresh_post_batch calls: the two items, each with a loader of one
 * shape (load set: the new one). */
static miscache_status_t post_batch(miscache_t *mc, int64_t company,
                                    const char *yyyymmdd,
                                    miscache_refresh_item_t items[2],
                                    size_t *refreshed) {
  if (refreshed) *refreshed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if ((!items[0].loader && !items[0].load) ||
      (!items[1].loader && !items[1].load) || !yyyymmdd) {
    miscache__set_err(mc, "refresh_post_batch: a loader or the date is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char sk[MISCACHE_KEY_BUFSIZE], ak[MISCACHE_KEY_BUFSIZE], cs[24];
  snprintf(cs, sizeof cs, "%lld", (long long)company);
  miscache_status_t st =
      miscache__kf_key(mc, MISCACHE_KF_BATCH_STATUS, sk, cs);
  if (st == MISCACHE_OK)
    st = miscache__kf_key(mc, MISCACHE_KF_GIFT_ANALYTICS, ak, cs, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  items[0].db = miscache__kf_db(MISCACHE_KF_BATCH_STATUS);
  items[0].key = sk;
  items[0].cls = MISCACHE_TTL_BATCH_STATUS;
  items[1].db = miscache__kf_db(MISCACHE_KF_GIFT_ANALYTICS);
  items[1].key = ak;
  items[1].cls = MISCACHE_TTL_GIFT_ANALYTICS;
  refresh_req_t reqs[2] = {{MISCACHE_KF_BATCH_STATUS, company, NULL},
                           {MISCACHE_KF_GIFT_ANALYTICS, company, yyyymmdd}};
  return refresh_items(mc, items, reqs, 2, refreshed);
}

miscache_status_t miscache_refresh_post_batch(
    miscache_t *mc, int64_t company, const char *yyyymmdd,
    miscache_loader_fn status_loader, miscache_loader_fn analytics_loader,
    void *userdata, size_t *refreshed) {
  miscache_refresh_item_t items[2] = {
      {.loader = status_loader, .userdata = userdata},
      {.loader = analytics_loader, .userdata = userdata}};
  return post_batch(mc, company, yyyymmdd, items, refreshed);
}

miscache_status_t miscache_refresh_post_batch_ex(
    miscache_t *mc, int64_t company, const char *yyyymmdd,
    miscache_load_fn status_load, miscache_load_fn analytics_load,
    void *userdata, size_t *refreshed) {
  miscache_refresh_item_t items[2] = {
      {.load = status_load, .userdata = userdata},
      {.load = analytics_load, .userdata = userdata}};
  return post_batch(mc, company, yyyymmdd, items, refreshed);
}

/*
 * Write-through, write-behind (with its flush worker) and background
 * refresh: see patterns.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

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
  miscache__fullkey_t fk, fq;
  miscache_status_t st = miscache__fullkey(mc, key, &fk);
  if (st != MISCACHE_OK) return st;
  if ((st = miscache__queue_stream_key(mc, queue, &fq)) != MISCACHE_OK) {
    miscache__fullkey_done(&fk);
    return st;
  }
  size_t vlen = 0, blen = 0;
  char *val = miscache__encode(value, &vlen);
  json_t *msg = json_pack("{s:s,s:s,s:s,s:O,s:b}", "op", "set", "db",
                          miscache_db_name(db), "key", key, "value", value,
                          "coalesce", coalesce);
  char *body = msg ? miscache__encode(msg, &blen) : NULL;
  json_decref(msg);
  if (!val || !body) {
    st = val ? MISCACHE_ERR_NOMEM : MISCACHE_ERR_ENCODE;
    miscache__set_err(mc, "write-behind %s: %s", key,
                      val ? "out of memory" : "value cannot be encoded");
    goto done;
  }
  char ttl[24], cdb[16], qdb[16], now[24], mid[40];
  size_t ttll = (size_t)snprintf(ttl, sizeof ttl, "%lld",
                                 (long long)miscache__ttl_ms(mc, cls));
  size_t cdbl = (size_t)snprintf(cdb, sizeof cdb, "%d", mc->opts.db[db]);
  size_t qdbl =
      (size_t)snprintf(qdb, sizeof qdb, "%d", mc->opts.db[MISCACHE_DB_QUEUE]);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  size_t nowl = (size_t)snprintf(now, sizeof now, "%lld",
                                 (long long)ts.tv_sec * 1000 +
                                     ts.tv_nsec / 1000000);
  uint64_t r1 = miscache__rand(mc), r2 = miscache__rand(mc);
  size_t midl = (size_t)snprintf(mid, sizeof mid, "wb-%016llx%016llx",
                                 (unsigned long long)r1,
                                 (unsigned long long)r2);
  /* MULTI; SELECT cache db; SET; SELECT queue db; XADD; EXEC: the
   * connection ends in the queue db, the db this batch is dispatched for */
  const char *a0[1] = {"MULTI"}, *a1[2] = {"SELECT", cdb},
             *a2[5] = {"SET", fk.ptr, val, "PX", ttl},
             *a3[2] = {"SELECT", qdb},
             *a4[9] = {"XADD", fq.ptr, "*", "msg_id", mid, "enqueued_ms", now,
                       "body", body},
             *a5[1] = {"EXEC"};
  size_t l0[1] = {5}, l1[2] = {6, cdbl}, l2[5] = {3, fk.len, vlen, 2, ttll},
         l3[2] = {6, qdbl}, l4[9] = {4, fq.len, 1, 6, midl, 11, nowl, 4, blen},
         l5[1] = {4};
  miscache__cmd_t cmds[6] = {{1, a0, l0}, {2, a1, l1}, {5, a2, l2},
                             {2, a3, l3}, {9, a4, l4}, {1, a5, l5}};
  miscache__reply_t *r[6] = {NULL};
  st = miscache__dispatch(mc, MISCACHE_DB_QUEUE, 6, cmds, r, 0);
  miscache__near_evict(mc, fk.ptr, fk.len); /* read your writes */
  if (st == MISCACHE_OK) {
    /* EXEC: [OK, OK, OK, id] when it ran */
    if (miscache__reply_type(r[5]) != MISCACHE__R_ARRAY ||
        miscache__reply_count(r[5]) != 4) {
      const miscache__reply_t *bad = r[5];
      for (int i = 0; i < 5; i++)
        if (miscache__reply_type(r[i]) == MISCACHE__R_ERROR) bad = r[i];
      st = miscache__unexpected(mc, db, key, bad, "write-behind MULTI/EXEC");
    }
  } else {
    miscache__count(mc, db, key, MISCACHE__ERROR);
  }
  for (int i = 0; i < 6; i++) miscache__reply_free(r[i]);
done:
  free(val);
  free(body);
  miscache__fullkey_done(&fk);
  miscache__fullkey_done(&fq);
  return st;
}

/* ---- the flush worker ------------------------------------------------- */

typedef struct {
  miscache_writer_fn writer;
  void *ud;
  size_t written;
} flush_ctx_t;

static miscache_status_t decode_change(const miscache_queue_msg_t *m,
                                       miscache_db_t *db, const char **key,
                                       json_t **value, bool *coalesce) {
  const char *op = json_string_value(json_object_get(m->body, "op"));
  const char *dbn = json_string_value(json_object_get(m->body, "db"));
  *key = json_string_value(json_object_get(m->body, "key"));
  *value = json_object_get(m->body, "value");
  *coalesce = json_is_true(json_object_get(m->body, "coalesce"));
  if (!op || strcmp(op, "set") != 0 || !dbn || !*key || !*value ||
      miscache_db_from_name(dbn, db) != MISCACHE_OK)
    return MISCACHE_ERR_DECODE;
  return MISCACHE_OK;
}

miscache_status_t miscache_write_behind_flush(
    miscache_t *mc, const char *queue, const char *group, const char *consumer,
    size_t batch, int block_ms, const miscache_queue_opts_t *opts,
    miscache_writer_fn writer, void *userdata, size_t *written,
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
  bool *done = calloc(batch, sizeof *done);
  if (!m || !done) {
    free(m);
    free(done);
    miscache__set_err(mc, "out of memory for a batch of %zu", batch);
    return MISCACHE_ERR_NOMEM;
  }
  size_t got = 0, more = 0;
  miscache_status_t st = miscache_queue_reclaim(mc, queue, group, consumer,
                                                batch, opts, m, &got, NULL);
  if (st == MISCACHE_OK && got < batch) {
    st = miscache_queue_pull(mc, queue, group, consumer, batch - got,
                             got ? 0 : block_ms, m + got, &more);
    got += more;
  }
  for (size_t i = 0; st == MISCACHE_OK && i < got; i++) {
    if (done[i]) continue;
    miscache_db_t db;
    const char *key;
    json_t *value;
    bool coalesce;
    char why[MISCACHE_ERRMSG_SIZE] = "";
    miscache_status_t ws = decode_change(&m[i], &db, &key, &value, &coalesce);
    size_t last = i; /* coalesced: the latest change of this key wins */
    if (ws == MISCACHE_OK && coalesce)
      for (size_t j = i + 1; j < got; j++) {
        miscache_db_t db2;
        const char *k2;
        json_t *v2;
        bool c2;
        if (!done[j] &&
            decode_change(&m[j], &db2, &k2, &v2, &c2) == MISCACHE_OK && c2 &&
            db2 == db && strcmp(k2, key) == 0)
          last = j;
      }
    if (ws == MISCACHE_OK) {
      if (last != i) decode_change(&m[last], &db, &key, &value, &coalesce);
      ws = writer(userdata, db, key, value, why, sizeof why);
      if (ws == MISCACHE_OK && written) (*written)++;
    } else {
      snprintf(why, sizeof why, "not a write-behind change");
    }
    /* every entry of this key up to the latest one shares the outcome */
    for (size_t j = i; j <= last; j++) {
      if (done[j]) continue;
      miscache_db_t db2;
      const char *k2;
      json_t *v2;
      bool c2;
      if (j != i && (decode_change(&m[j], &db2, &k2, &v2, &c2) != MISCACHE_OK ||
                     !c2 || db2 != db || strcmp(k2, key) != 0))
        continue;
      done[j] = true;
      miscache_status_t qs =
          ws == MISCACHE_OK
              ? miscache_queue_ack(mc, queue, group, m[j].id)
              : miscache_queue_fail(mc, queue, m[j].id,
                                    why[0] ? why : miscache_strerror(ws));
      if (qs != MISCACHE_OK) st = qs;
      else if (ws == MISCACHE_OK && acked) (*acked)++;
    }
  }
  for (size_t i = 0; i < batch; i++) miscache_queue_msg_clear(&m[i]);
  free(m);
  free(done);
  return st;
}

/* ---- background refresh ------------------------------------------------- */

miscache_status_t miscache_refresh(miscache_t *mc,
                                   const miscache_refresh_item_t *items,
                                   size_t n, size_t *refreshed) {
  if (refreshed) *refreshed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (n && !items) {
    miscache__set_err(mc, "miscache_refresh: items is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache_status_t first = MISCACHE_OK;
  char first_msg[MISCACHE_ERRMSG_SIZE] = "";
  for (size_t i = 0; i < n; i++) {
    const miscache_refresh_item_t *it = &items[i];
    miscache_status_t st;
    if (!it->key || !it->loader) {
      miscache__set_err(mc, "refresh item %zu: key or loader NULL", i);
      st = MISCACHE_ERR_INVALID;
    } else {
      json_t *v = NULL;
      miscache_status_t ls = it->loader(it->userdata, it->key, &v);
      if (ls == MISCACHE_OK && v) {
        st = miscache_set(mc, it->db, it->key, v, it->cls); /* in place */
      } else if (ls == MISCACHE_MISS) {
        st = miscache_delete(mc, it->db, it->key, NULL); /* record gone */
      } else {
        miscache__set_err(mc, "refresh %s: loader failed (%s); the old value "
                              "stays until its TTL",
                          it->key, miscache_strerror(ls));
        st = MISCACHE_ERR_LOADER;
      }
      json_decref(v);
    }
    if (st == MISCACHE_OK && refreshed) (*refreshed)++;
    if (st != MISCACHE_OK && first == MISCACHE_OK) {
      first = st;
      snprintf(first_msg, sizeof first_msg, "%s", mc->err);
    }
  }
  if (first != MISCACHE_OK) miscache__set_err(mc, "%s", first_msg);
  return first;
}

miscache_status_t miscache_refresh_post_batch(miscache_t *mc, int64_t company,
                                              const char *yyyymmdd,
                                              miscache_loader_fn status_loader,
                                              miscache_loader_fn analytics_loader,
                                              void *userdata,
                                              size_t *refreshed) {
  if (refreshed) *refreshed = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!status_loader || !analytics_loader || !yyyymmdd) {
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
  miscache_refresh_item_t items[2] = {
      {miscache__kf_db(MISCACHE_KF_BATCH_STATUS), sk, MISCACHE_TTL_BATCH_STATUS,
       status_loader, userdata},
      {miscache__kf_db(MISCACHE_KF_GIFT_ANALYTICS), ak,
       MISCACHE_TTL_GIFT_ANALYTICS, analytics_loader, userdata}};
  return miscache_refresh(mc, items, 2, refreshed);
}

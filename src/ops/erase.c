/*
 * Deletes, pattern invalidation and key scans, as they are sent: no
 * pending bookkeeping and no replay (replay.c replays with them;
 * invalidate.c and cache.c are the public calls). SCAN MATCH with a large
 * COUNT; the UNLINKs for the keys one SCAN returned travel in the same
 * write as the next SCAN, so each step is one round trip. Never KEYS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

typedef struct {
  miscache_t *mc;
  miscache_db_t db;
  const char *pattern; /* logical, for messages */
  bool unlink;
  miscache_scan_fn fn;
  void *userdata;
  uint64_t count;
  bool stopped;
  size_t node;       /* Cluster: the master this SCAN runs on */
  int64_t deadline;  /* the whole call's (scan timeout) */
  uint64_t steps;    /* round trips so far */
} scan_job_t;

/* The cursors one SCAN loop was given (open addressing, cursor + 1, 0 is
 * empty): a server whose cursor comes back to one it gave (5 -> 7 -> 5)
 * would keep the loop going for ever. */
typedef struct {
  uint64_t *slot;
  size_t cap, n;
} cursor_set_t;

/* Adds c: 1 when new, 0 when seen already, -1 when out of memory. */
static int cursor_add(cursor_set_t *s, uint64_t c) {
  if (2 * (s->n + 1) > s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 64;
    uint64_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < s->cap; i++)
      if (s->slot[i])
        for (size_t j = s->slot[i] * 0x9E3779B97F4A7C15u & (cap - 1);;
             j = (j + 1) & (cap - 1))
          if (!slot[j]) {
            slot[j] = s->slot[i];
            break;
          }
    free(s->slot);
    s->slot = slot;
    s->cap = cap;
  }
  uint64_t v = c + 1 ? c + 1 : 1; /* UINT64_MAX shares 0's stand-in */
  for (size_t j = v * 0x9E3779B97F4A7C15u & (s->cap - 1);;
       j = (j + 1) & (s->cap - 1)) {
    if (s->slot[j] == v) return 0;
    if (!s->slot[j]) {
      s->slot[j] = v;
      s->n++;
      return 1;
    }
  }
}

/* A cursor as Redis gives it: decimal digits of a 64-bit number. */
static bool parse_cursor(const char *p, size_t n, uint64_t *out) {
  if (n == 0 || n > 20) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return false;
    uint64_t d = (uint64_t)(p[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

/* Growable argv for the UNLINK commands of one step. */
typedef struct {
  const char **argv;
  size_t *lens;
  size_t cap;
} argbuf_t;

static bool argbuf_reserve(argbuf_t *a, size_t n) {
  if (n <= a->cap) return true;
  const char **av = miscache__realloc_array(a->argv, n, sizeof *av);
  if (!av) return false;
  a->argv = av;
  size_t *lv = miscache__realloc_array(a->lens, n, sizeof *lv);
  if (!lv) return false;
  a->lens = lv;
  a->cap = n;
  return true;
}

static miscache_status_t bad_reply(scan_job_t *job, const miscache__reply_t *r,
                                   const char *verb) {
  char what[300];
  snprintf(what, sizeof what, "%s %s", verb, job->pattern);
  return miscache__unexpected(job->mc, job->db, job->pattern, r, what);
}

static miscache_status_t scan_node(scan_job_t *job, const char *full,
                                   size_t full_len) {
  miscache_t *mc = job->mc;
  char count_s[16];
  int count_len = snprintf(count_s, sizeof count_s, "%u", mc->opts.scan_count);
  char cursor[32] = "0";
  size_t cursor_len = 1;
  size_t batch = mc->opts.unlink_batch;
  miscache__reply_t *pending = NULL; /* SCAN reply whose keys await UNLINK */
  argbuf_t ab = {0};
  miscache__cmd_t *cmds = NULL;
  miscache__reply_t **rs = NULL;
  size_t cmds_cap = 0;
  miscache_status_t st = MISCACHE_OK;
  bool first = true;
  cursor_set_t seen = {0};

  for (;;) {
    bool more = first || !(cursor_len == 1 && cursor[0] == '0');
    more = more && !job->stopped;
    const miscache__reply_t *keys = pending ? miscache__reply_at(pending, 1)
                                            : NULL;
    size_t nkeys = keys ? miscache__reply_count(keys) : 0;
    size_t nunlink = (nkeys + batch - 1) / batch;
    size_t ncmds = nunlink + (more ? 1 : 0);
    if (ncmds == 0) break;
    if (ncmds > cmds_cap) {
      miscache__cmd_t *c2 = miscache__realloc_array(cmds, ncmds, sizeof *c2);
      if (c2) cmds = c2;
      miscache__reply_t **r2 =
          c2 ? miscache__realloc_array(rs, ncmds, sizeof *r2) : NULL;
      if (r2) rs = r2;
      if (!c2 || !r2) goto nomem;
      cmds_cap = ncmds;
    }
    if (!argbuf_reserve(&ab, nkeys + nunlink + 6)) goto nomem;
    if (more && job->steps > 0 && miscache__mono_ms() >= job->deadline) {
      st = MISCACHE_ERR_UNAVAILABLE;
      miscache__set_err(mc, "SCAN %s: not finished within the %d ms scan "
                            "timeout (%llu round trips)",
                        job->pattern, mc->opts.scan_timeout_ms,
                        (unsigned long long)job->steps);
      more = false; /* the UNLINKs of what was found still go */
      ncmds = nunlink;
      if (ncmds == 0) break;
    }
    size_t ai = 0, ci = 0;
    for (size_t k = 0; k < nkeys; k += batch) {
      size_t m = nkeys - k < batch ? nkeys - k : batch;
      const char **argv = ab.argv + ai;
      size_t *lens = ab.lens + ai;
      argv[0] = "UNLINK";
      lens[0] = 6;
      for (size_t j = 0; j < m; j++)
        argv[1 + j] = miscache__reply_str(miscache__reply_at(keys, k + j),
                                          &lens[1 + j]);
      cmds[ci++] = (miscache__cmd_t){(int)(m + 1), argv, lens};
      ai += m + 1;
    }
    if (more) {
      const char **argv = ab.argv + ai;
      size_t *lens = ab.lens + ai;
      argv[0] = "SCAN", lens[0] = 4;
      argv[1] = cursor, lens[1] = cursor_len;
      argv[2] = "MATCH", lens[2] = 5;
      argv[3] = full, lens[3] = full_len;
      argv[4] = "COUNT", lens[4] = 5;
      argv[5] = count_s, lens[5] = (size_t)count_len;
      cmds[ci++] = (miscache__cmd_t){6, argv, lens};
    }
    miscache_status_t late = st; /* the scan timeout, if it passed */
    st = miscache__send(mc, (int)job->db, ncmds, cmds, rs,
                        MISCACHE__IDEMPOTENT | MISCACHE__ON_NODE(job->node));
    job->steps++;
    miscache__reply_free(pending); /* its strings were argv until now */
    pending = NULL;
    if (st == MISCACHE_OK && late != MISCACHE_OK) {
      for (size_t i = 0; i < nunlink; i++) {
        if (miscache__reply_is(rs[i], MISCACHE__R_INTEGER))
          job->count += (uint64_t)miscache__reply_int(rs[i]);
        miscache__reply_free(rs[i]);
      }
      st = late;
      break;
    }
    if (st != MISCACHE_OK) {
      miscache__count(mc, job->db, job->pattern, MISCACHE__ERROR);
      break;
    }
    for (size_t i = 0; i < nunlink; i++) {
      if (miscache__reply_type(rs[i]) != MISCACHE__R_INTEGER) {
        if (st == MISCACHE_OK) st = bad_reply(job, rs[i], "UNLINK");
      } else {
        job->count += (uint64_t)miscache__reply_int(rs[i]);
      }
      miscache__reply_free(rs[i]);
    }
    if (!more) break;
    miscache__reply_t *sr = rs[nunlink];
    const miscache__reply_t *cur = miscache__reply_at(sr, 0);
    const miscache__reply_t *arr = miscache__reply_at(sr, 1);
    size_t clen = 0;
    const char *cstr = cur ? miscache__reply_str(cur, &clen) : NULL;
    if (st != MISCACHE_OK || !cstr || clen == 0 || clen >= sizeof cursor ||
        !arr || miscache__reply_type(arr) != MISCACHE__R_ARRAY) {
      if (st == MISCACHE_OK) st = bad_reply(job, sr, "SCAN");
      miscache__reply_free(sr);
      break;
    }
    uint64_t cv;
    int fresh = 0;
    if (!parse_cursor(cstr, clen, &cv) ||
        (cv != 0 && (fresh = cursor_add(&seen, cv)) <= 0)) {
      if (fresh < 0) {
        miscache__reply_free(sr);
        goto nomem;
      }
      st = MISCACHE_ERR_REPLY;
      miscache__count(mc, job->db, job->pattern, MISCACHE__ERROR);
      char shown[32];
      miscache__escape(shown, sizeof shown, cstr, clen);
      miscache__set_err(mc, "SCAN %s: the server's cursor \"%s\" %s",
                        job->pattern, shown,
                        parse_cursor(cstr, clen, &cv)
                            ? "came back after it was given once (a cycle)"
                            : "is not a number");
      miscache__reply_free(sr);
      break;
    }
    memcpy(cursor, cstr, clen);
    cursor[clen] = 0;
    cursor_len = clen;
    first = false;
    if (job->unlink) {
      pending = sr;
      continue;
    }
    for (size_t i = 0; i < miscache__reply_count(arr) && !job->stopped; i++) {
      size_t len;
      const char *k = miscache__reply_str(miscache__reply_at(arr, i), &len);
      job->count++;
      if (len >= mc->ns_len && job->fn(job->userdata, k + mc->ns_len,
                                       len - mc->ns_len) != 0)
        job->stopped = true;
    }
    miscache__reply_free(sr);
  }
  goto out;
nomem:
  st = MISCACHE_ERR_NOMEM;
  miscache__set_err(mc, "out of memory scanning %s", job->pattern);
out:
  miscache__reply_free(pending);
  free(seen.slot);
  free(ab.argv);
  free(ab.lens);
  free(cmds);
  free(rs);
  return st;
}

static miscache_status_t scan_all(scan_job_t *job) {
  miscache_t *mc = job->mc;
  if (!miscache__db_valid(job->db)) {
    miscache__set_err(mc, "logical db %d out of range", (int)job->db);
    return MISCACHE_ERR_INVALID;
  }
  if (!job->pattern || !job->pattern[0]) {
    miscache__set_err(mc, "pattern is NULL or empty");
    return job->pattern ? MISCACHE_ERR_KEY : MISCACHE_ERR_INVALID;
  }
  /* The namespace holds no glob character (checked when set), so it can
   * stand in front of the pattern as it is. */
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, job->pattern, &fk);
  if (st != MISCACHE_OK) return st;
  /* a cluster: every master holds a part of the keys (a replica would
   * only repeat its master's; one node would miss the rest) */
  job->deadline = miscache__mono_ms() + mc->opts.scan_timeout_ms;
  size_t nodes = miscache__dispatch_nodes(mc);
  if (nodes == 0) st = MISCACHE_ERR_UNAVAILABLE; /* no slot map: message set */
  for (size_t i = 0; i < nodes && st == MISCACHE_OK && !job->stopped; i++) {
    job->node = i;
    st = scan_node(job, fk.ptr, fk.len);
  }
  miscache__fullkey_done(&fk);
  return st;
}

miscache_status_t miscache__invalidate_now(miscache_t *mc, miscache_db_t db,
                                           const char *pattern,
                                           uint64_t *deleted) {
  scan_job_t job = {.mc = mc, .db = db, .pattern = pattern, .unlink = true};
  miscache_status_t st = scan_all(&job);
  if (deleted) *deleted = job.count;
  if (mc->near && pattern) { /* read your writes */
    miscache__fullkey_t fk;
    if (miscache__fullkey(mc, pattern, &fk) == MISCACHE_OK) {
      miscache__near_evict_pattern(mc, fk.ptr);
      miscache__fullkey_done(&fk);
    }
  }
  return st;
}

miscache_status_t miscache__scan_now(miscache_t *mc, miscache_db_t db,
                                     const char *pattern, miscache_scan_fn fn,
                                     void *userdata, uint64_t *count) {
  scan_job_t job = {.mc = mc, .db = db, .pattern = pattern, .fn = fn,
                    .userdata = userdata};
  miscache_status_t st = scan_all(&job);
  if (count) *count = job.count;
  return st;
}

miscache_status_t miscache__delete_now(miscache_t *mc, miscache_db_t db,
                                       const char *key, bool *deleted) {
  if (deleted) *deleted = false;
  if (!miscache__db_valid(db)) {
    miscache__set_err(mc, "logical db %d out of range", (int)db);
    return MISCACHE_ERR_INVALID;
  }
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, key, &fk);
  if (st != MISCACHE_OK) return st;
  const char *argv[2] = {"UNLINK", fk.ptr};
  size_t lens[2] = {6, fk.len};
  miscache__cmd_t cmd = {2, argv, lens};
  miscache__reply_t *r = NULL;
  st = miscache__exec_key(mc, db, key, &cmd, &r, MISCACHE__IDEMPOTENT);
  miscache__near_evict(mc, fk.ptr, fk.len); /* read your writes */
  if (st == MISCACHE_OK) {
    if (miscache__reply_type(r) == MISCACHE__R_INTEGER) {
      if (deleted) *deleted = miscache__reply_int(r) > 0;
    } else {
      char what[300];
      snprintf(what, sizeof what, "UNLINK %s", key);
      st = miscache__unexpected(mc, db, key, r, what);
    }
  }
  miscache__reply_free(r);
  miscache__fullkey_done(&fk);
  return st;
}

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

/* What one SCAN loop keeps between its steps. */
typedef struct {
  const char *full; /* the namespaced pattern */
  size_t full_len;
  char count_s[16];
  size_t count_len;
  char cursor[32];
  size_t cursor_len;
  size_t batch; /* keys per UNLINK */
  argbuf_t ab;
  miscache__cmd_t *cmds;
  miscache__reply_t **rs;
  size_t cmds_cap;
  cursor_set_t seen;
} scan_state_t;

/* Room for ncmds commands over nargs arguments. */
static bool step_room(scan_state_t *s, size_t ncmds, size_t nargs) {
  if (ncmds > s->cmds_cap) {
    miscache__cmd_t *c2 = miscache__realloc_array(s->cmds, ncmds, sizeof *c2);
    if (!c2) return false;
    s->cmds = c2;
    miscache__reply_t **r2 = miscache__realloc_array(s->rs, ncmds, sizeof *r2);
    if (!r2) return false;
    s->rs = r2;
    s->cmds_cap = ncmds;
  }
  return argbuf_reserve(&s->ab, nargs);
}

/* One step's commands: UNLINKs of the keys the last SCAN gave (their
 * strings are that reply's), then the next SCAN if more. Their count. */
static size_t step_cmds(scan_state_t *s, const miscache__reply_t *keys,
                        size_t nkeys, bool more) {
  size_t ai = 0, ci = 0;
  for (size_t k = 0; k < nkeys; k += s->batch) {
    size_t m = nkeys - k < s->batch ? nkeys - k : s->batch;
    const char **argv = s->ab.argv + ai;
    size_t *lens = s->ab.lens + ai;
    argv[0] = "UNLINK";
    lens[0] = 6;
    for (size_t j = 0; j < m; j++)
      argv[1 + j] = miscache__reply_str(miscache__reply_at(keys, k + j),
                                        &lens[1 + j]);
    s->cmds[ci++] = (miscache__cmd_t){(int)(m + 1), argv, lens};
    ai += m + 1;
  }
  if (more) {
    const char **argv = s->ab.argv + ai;
    size_t *lens = s->ab.lens + ai;
    argv[0] = "SCAN", lens[0] = 4;
    argv[1] = s->cursor, lens[1] = s->cursor_len;
    argv[2] = "MATCH", lens[2] = 5;
    argv[3] = s->full, lens[3] = s->full_len;
    argv[4] = "COUNT", lens[4] = 5;
    argv[5] = s->count_s, lens[5] = s->count_len;
    s->cmds[ci++] = (miscache__cmd_t){6, argv, lens};
  }
  return ci;
}

/* Adds what the n UNLINK replies deleted and frees them; with st, the
 * first that is not an integer sets it (else such replies are skipped). */
static void count_unlinks(scan_job_t *job, miscache__reply_t **rs, size_t n,
                          miscache_status_t *st) {
  for (size_t i = 0; i < n; i++) {
    if (miscache__reply_is(rs[i], MISCACHE__R_INTEGER))
      job->count += (uint64_t)miscache__reply_int(rs[i]);
    else if (st && *st == MISCACHE_OK)
      *st = bad_reply(job, rs[i], "UNLINK");
    miscache__reply_free(rs[i]);
  }
}

/* The cursor of SCAN reply sr, checked (a number, never one given before)
 * and kept for the next step. ERR_REPLY / ERR_NOMEM with the message. */
static miscache_status_t take_cursor(scan_job_t *job, scan_state_t *s,
                                     const miscache__reply_t *sr) {
  miscache_t *mc = job->mc;
  const miscache__reply_t *cur = miscache__reply_at(sr, 0);
  const miscache__reply_t *arr = miscache__reply_at(sr, 1);
  size_t clen = 0;
  const char *cstr = cur ? miscache__reply_str(cur, &clen) : NULL;
  if (!cstr || clen == 0 || clen >= sizeof s->cursor ||
      miscache__reply_type(arr) != MISCACHE__R_ARRAY)
    return bad_reply(job, sr, "SCAN");
  uint64_t cv;
  bool number = parse_cursor(cstr, clen, &cv);
  int fresh = number && cv != 0 ? cursor_add(&s->seen, cv) : 1;
  if (fresh < 0) {
    miscache__set_err(mc, "out of memory scanning %s", job->pattern);
    return MISCACHE_ERR_NOMEM;
  }
  if (!number || fresh == 0) {
    miscache__count(mc, job->db, job->pattern, MISCACHE__ERROR);
    char shown[32];
    miscache__escape(shown, sizeof shown, cstr, clen);
    miscache__set_err(mc, "SCAN %s: the server's cursor \"%s\" %s",
                      job->pattern, shown,
                      number ? "came back after it was given once (a cycle)"
                             : "is not a number");
    return MISCACHE_ERR_REPLY;
  }
  memcpy(s->cursor, cstr, clen);
  s->cursor[clen] = 0;
  s->cursor_len = clen;
  return MISCACHE_OK;
}

/* miscache_scan: each key of a SCAN reply's array to the caller's fn. */
static void visit_keys(scan_job_t *job, const miscache__reply_t *arr) {
  size_t ns = job->mc->ns_len;
  for (size_t i = 0; i < miscache__reply_count(arr) && !job->stopped; i++) {
    size_t len;
    const char *k = miscache__reply_str(miscache__reply_at(arr, i), &len);
    job->count++;
    if (len >= ns && job->fn(job->userdata, k + ns, len - ns) != 0)
      job->stopped = true;
  }
}

/* The SCAN loop on one node: each step is one round trip that UNLINKs what
 * the previous SCAN found and asks for the next page, until the cursor is
 * 0, the caller stops, or the scan timeout passes. */
static miscache_status_t scan_node(scan_job_t *job, const char *full,
                                   size_t full_len) {
  miscache_t *mc = job->mc;
  scan_state_t s = {.full = full, .full_len = full_len, .cursor = "0",
                    .cursor_len = 1, .batch = mc->opts.unlink_batch};
  s.count_len = (size_t)snprintf(s.count_s, sizeof s.count_s, "%u",
                                 mc->opts.scan_count);
  miscache__reply_t *pending = NULL; /* SCAN reply whose keys await UNLINK */
  miscache_status_t st = MISCACHE_OK;
  for (bool first = true;; first = false) {
    bool more = (first || !(s.cursor_len == 1 && s.cursor[0] == '0')) &&
                !job->stopped;
    const miscache__reply_t *keys = miscache__reply_at(pending, 1);
    size_t nkeys = miscache__reply_count(keys);
    size_t nunlink = (nkeys + s.batch - 1) / s.batch;
    if (nunlink == 0 && !more) break;
    if (!step_room(&s, nunlink + 1, nkeys + nunlink + 6)) {
      st = MISCACHE_ERR_NOMEM;
      miscache__set_err(mc, "out of memory scanning %s", job->pattern);
      break;
    }
    if (more && job->steps > 0 && miscache__mono_ms() >= job->deadline) {
      st = MISCACHE_ERR_UNAVAILABLE;
      miscache__set_err(mc, "SCAN %s: not finished within the %d ms scan "
                            "timeout (%llu round trips)",
                        job->pattern, mc->opts.scan_timeout_ms,
                        (unsigned long long)job->steps);
      more = false; /* the UNLINKs of what was found still go */
      if (nunlink == 0) break;
    }
    size_t ncmds = step_cmds(&s, keys, nkeys, more);
    miscache_status_t late = st; /* the scan timeout, if it passed */
    st = miscache__send(mc, (int)job->db, ncmds, s.cmds, s.rs,
                        MISCACHE__IDEMPOTENT | MISCACHE__ON_NODE(job->node));
    job->steps++;
    miscache__reply_free(pending); /* its strings were argv until now */
    pending = NULL;
    if (st != MISCACHE_OK) {
      miscache__count(mc, job->db, job->pattern, MISCACHE__ERROR);
      break;
    }
    if (late != MISCACHE_OK) {
      count_unlinks(job, s.rs, nunlink, NULL);
      st = late;
      break;
    }
    count_unlinks(job, s.rs, nunlink, &st);
    if (!more) break;
    miscache__reply_t *sr = s.rs[nunlink];
    if (st == MISCACHE_OK) st = take_cursor(job, &s, sr);
    if (st == MISCACHE_OK && job->unlink) {
      pending = sr;
      continue;
    }
    if (st == MISCACHE_OK) visit_keys(job, miscache__reply_at(sr, 1));
    miscache__reply_free(sr);
    if (st != MISCACHE_OK) break;
  }
  miscache__reply_free(pending);
  free(s.seen.slot);
  free(s.ab.argv);
  free(s.ab.lens);
  free(s.cmds);
  free(s.rs);
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

miscache_status_t miscache__key_int_now(miscache_t *mc, miscache_db_t db,
                                        const char *verb, const char *key,
                                        bool writes, long long *result) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!miscache__db_valid(db)) {
    miscache__set_err(mc, "logical db %d out of range", (int)db);
    return MISCACHE_ERR_INVALID;
  }
  miscache__fullkey_t fk;
  miscache_status_t st = miscache__fullkey(mc, key, &fk);
  if (st != MISCACHE_OK) return st;
  const char *argv[2] = {verb, fk.ptr};
  size_t lens[2] = {strlen(verb), fk.len};
  miscache__cmd_t cmd = {2, argv, lens};
  miscache__reply_t *r = NULL;
  st = miscache__exec_key(mc, db, key, &cmd, &r,
                          MISCACHE__IDEMPOTENT | (writes ? MISCACHE__WRITES : 0));
  if (st == MISCACHE_OK) {
    if (miscache__reply_type(r) == MISCACHE__R_INTEGER) {
      *result = miscache__reply_int(r);
    } else {
      char what[300];
      snprintf(what, sizeof what, "%s %s", verb, key);
      st = miscache__unexpected(mc, db, key, r, what);
    }
  }
  miscache__reply_free(r);
  miscache__fullkey_done(&fk);
  return st;
}

miscache_status_t miscache__delete_now(miscache_t *mc, miscache_db_t db,
                                       const char *key, bool *deleted) {
  long long n = 0;
  miscache_status_t st =
      miscache__key_int_now(mc, db, "UNLINK", key, true, &n);
  if (deleted) *deleted = st == MISCACHE_OK && n > 0;
  return st;
}

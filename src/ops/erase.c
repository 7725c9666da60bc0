/*
 * Deletes, pattern invalidation and key scans, as they are sent: no
 * pending bookkeeping and no replay (replay.c replays with them;
 * invalidate.c and cache.c are the public calls). SCAN MATCH with a large
 * COUNT; the UNLINKs for the keys one SCAN returned travel in the same
 * write as the next SCAN, so each step is one round trip, and on a cluster
 * every master's step is in that one batch, so the masters scan at once.
 * Never KEYS.
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
  int64_t deadline;  /* the whole call's (scan timeout) */
  uint64_t steps;    /* round trips so far */
  const char *full;  /* the namespaced pattern */
  size_t full_len;
  char count_s[16];  /* SCAN's COUNT */
  size_t count_len;
  size_t batch;      /* keys per UNLINK */
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

/* What one master's SCAN loop keeps between its steps. */
typedef struct {
  size_t node; /* Cluster: the master it runs on (0 standalone) */
  char cursor[32];
  size_t cursor_len;
  bool started, finished;
  miscache__reply_t *pending; /* SCAN reply whose keys await UNLINK */
  argbuf_t ab;           /* this step's arguments */
  size_t ncmds, nunlink; /* this step's commands, its UNLINKs first */
  bool more;             /* this step asks for the next page */
  cursor_set_t seen;
} scan_state_t;

/* Whether master s still has pages to ask for: not finished, and its
 * cursor has not come back 0 (before its first SCAN it is "0" too). */
static bool pages_left(const scan_state_t *s) {
  return !s->finished &&
         (!s->started || !(s->cursor_len == 1 && s->cursor[0] == '0'));
}

/* One batch of a round: every master's step, and the master each keyless
 * command (its SCAN) goes to. */
typedef struct {
  miscache__cmd_t *cmds;
  unsigned *on;
  miscache__reply_t **rs;
  size_t cap, n;
} round_t;

/* Room in r for extra more commands. */
static bool round_room(round_t *r, size_t extra) {
  if (r->n + extra <= r->cap) return true;
  size_t cap = 2 * (r->n + extra);
  miscache__cmd_t *c2 = miscache__realloc_array(r->cmds, cap, sizeof *c2);
  if (!c2) return false;
  r->cmds = c2;
  unsigned *o2 = miscache__realloc_array(r->on, cap, sizeof *o2);
  if (!o2) return false;
  r->on = o2;
  miscache__reply_t **r2 = miscache__realloc_array(r->rs, cap, sizeof *r2);
  if (!r2) return false;
  r->rs = r2;
  r->cap = cap;
  return true;
}

/* Master s's step, added to round r: UNLINKs of the keys its last SCAN
 * gave (their strings are that reply's), then its next SCAN if more. */
static void step_cmds(scan_job_t *job, scan_state_t *s, round_t *r,
                      const miscache__reply_t *keys, size_t nkeys) {
  size_t ai = 0, ci = 0;
  miscache__cmd_t *cmds = r->cmds + r->n;
  for (size_t k = 0; k < nkeys; k += job->batch) {
    size_t m = nkeys - k < job->batch ? nkeys - k : job->batch;
    const char **argv = s->ab.argv + ai;
    size_t *lens = s->ab.lens + ai;
    argv[0] = "UNLINK";
    lens[0] = 6;
    for (size_t j = 0; j < m; j++)
      argv[1 + j] = miscache__reply_str(miscache__reply_at(keys, k + j),
                                        &lens[1 + j]);
    cmds[ci++] = (miscache__cmd_t){(int)(m + 1), argv, lens};
    ai += m + 1;
  }
  if (s->more) {
    const char **argv = s->ab.argv + ai;
    size_t *lens = s->ab.lens + ai;
    argv[0] = "SCAN", lens[0] = 4;
    argv[1] = s->cursor, lens[1] = s->cursor_len;
    argv[2] = "MATCH", lens[2] = 5;
    argv[3] = job->full, lens[3] = job->full_len;
    argv[4] = "COUNT", lens[4] = 5;
    argv[5] = job->count_s, lens[5] = job->count_len;
    cmds[ci++] = (miscache__cmd_t){6, argv, lens};
  }
  for (size_t i = 0; i < ci; i++) r->on[r->n++] = (unsigned)s->node;
  s->ncmds = ci;
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

/* Adds master s's next step to round r (sets ncmds, 0 when it has
 * finished): the UNLINKs of what its last SCAN found, and its next SCAN
 * unless its cursor came back 0, the caller stopped, or the scan timeout
 * passed (late). */
static miscache_status_t plan_step(scan_job_t *job, scan_state_t *s,
                                   round_t *r, bool late) {
  s->ncmds = 0;
  if (s->finished) return MISCACHE_OK;
  s->more = pages_left(s) && !job->stopped && !late;
  const miscache__reply_t *keys = miscache__reply_at(s->pending, 1);
  size_t nkeys = miscache__reply_count(keys);
  s->nunlink = (nkeys + job->batch - 1) / job->batch;
  if (s->nunlink == 0 && !s->more) {
    s->finished = true;
    return MISCACHE_OK;
  }
  if (!round_room(r, s->nunlink + 1) ||
      !argbuf_reserve(&s->ab, nkeys + s->nunlink + 6)) {
    miscache__set_err(job->mc, "out of memory scanning %s", job->pattern);
    return MISCACHE_ERR_NOMEM;
  }
  s->started = true;
  step_cmds(job, s, r, keys, nkeys);
  return MISCACHE_OK;
}

/* Master s's replies of the step just run: its UNLINK counts, then its
 * SCAN page (kept for the next step's UNLINKs, or shown to the caller's
 * fn). *st keeps the first error of the round. */
static void take_step(scan_job_t *job, scan_state_t *s,
                      miscache__reply_t **rs, miscache_status_t *st) {
  count_unlinks(job, rs, s->nunlink, st);
  if (!s->more) return;
  miscache__reply_t *sr = rs[s->nunlink];
  if (*st == MISCACHE_OK) *st = take_cursor(job, s, sr);
  if (*st == MISCACHE_OK && job->unlink) {
    s->pending = sr;
    return;
  }
  if (*st == MISCACHE_OK) visit_keys(job, miscache__reply_at(sr, 1));
  miscache__reply_free(sr);
}

/* The scan timeout has passed with pages still to ask for: the message,
 * and ERR_UNAVAILABLE once the UNLINKs of what was found have gone. */
static miscache_status_t timed_out(scan_job_t *job) {
  miscache__set_err(job->mc, "SCAN %s: not finished within the %d ms scan "
                             "timeout (%llu round trips)",
                    job->pattern, job->mc->opts.scan_timeout_ms,
                    (unsigned long long)job->steps);
  return MISCACHE_ERR_UNAVAILABLE;
}

/* The SCAN loops of n masters in lockstep: each round is one batch that
 * UNLINKs what every master's previous SCAN found and asks each for its
 * next page, written to all the masters before any reply is read (they
 * work at once), until every cursor is 0, the caller stops, an error, or
 * the scan timeout. */
static miscache_status_t scan_masters(scan_job_t *job, scan_state_t *ss,
                                      size_t n) {
  miscache_t *mc = job->mc;
  round_t r = {0};
  miscache_status_t st = MISCACHE_OK, late = MISCACHE_OK;
  while (st == MISCACHE_OK) {
    bool any_more = false;
    for (size_t i = 0; i < n; i++) any_more |= pages_left(&ss[i]);
    if (late == MISCACHE_OK && any_more && !job->stopped && job->steps > 0 &&
        miscache__mono_ms() >= job->deadline)
      late = timed_out(job); /* the UNLINKs of what was found still go */
    r.n = 0;
    for (size_t i = 0; i < n && st == MISCACHE_OK; i++)
      st = plan_step(job, &ss[i], &r, late != MISCACHE_OK);
    if (st != MISCACHE_OK || r.n == 0) break;
    st = miscache__send_on(mc, (int)job->db, r.n, r.cmds, r.on, r.rs,
                           MISCACHE__IDEMPOTENT);
    job->steps++;
    for (size_t i = 0; i < n; i++) { /* their strings were argv until now */
      miscache__reply_free(ss[i].pending);
      ss[i].pending = NULL;
    }
    if (st != MISCACHE_OK) {
      miscache__count(mc, job->db, job->pattern, MISCACHE__ERROR);
      break;
    }
    miscache__reply_t **rs = r.rs;
    for (size_t i = 0; i < n; i++) {
      take_step(job, &ss[i], rs, &st);
      rs += ss[i].ncmds;
    }
    if (late != MISCACHE_OK) break;
  }
  if (st == MISCACHE_OK) st = late;
  free(r.cmds);
  free(r.on);
  free(r.rs);
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
  job->full = fk.ptr;
  job->full_len = fk.len;
  job->batch = mc->opts.unlink_batch;
  job->count_len = (size_t)snprintf(job->count_s, sizeof job->count_s, "%u",
                                    mc->opts.scan_count);
  /* a cluster: every master holds a part of the keys (a replica would
   * only repeat its master's; one node would miss the rest) */
  job->deadline = miscache__mono_ms() + mc->opts.scan_timeout_ms;
  size_t nodes = miscache__dispatch_nodes(mc);
  scan_state_t *ss = nodes ? calloc(nodes, sizeof *ss) : NULL;
  if (nodes == 0) {
    st = MISCACHE_ERR_UNAVAILABLE; /* no slot map: message set */
  } else if (!ss) {
    miscache__set_err(mc, "out of memory scanning %s", job->pattern);
    st = MISCACHE_ERR_NOMEM;
  } else {
    for (size_t i = 0; i < nodes; i++) {
      ss[i].node = i;
      ss[i].cursor[0] = '0';
      ss[i].cursor_len = 1;
    }
    st = scan_masters(job, ss, nodes);
  }
  for (size_t i = 0; ss && i < nodes; i++) {
    miscache__reply_free(ss[i].pending);
    free(ss[i].seen.slot);
    free(ss[i].ab.argv);
    free(ss[i].ab.lens);
  }
  free(ss);
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

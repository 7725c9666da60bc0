/* Handle: open/free, last error, counters, namespaced keys, TTL; the door
 * to the dispatcher (miscache__send, miscache__exec_key). */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/core.h"

void miscache__set_err(miscache_t *mc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(mc->err, sizeof mc->err, fmt, ap);
  va_end(ap);
}

static void copy_err(char *errbuf, size_t errlen, const char *msg) {
  if (errbuf && errlen) snprintf(errbuf, errlen, "%s", msg);
}


static uint64_t seed_rng(const miscache_t *mc) {
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) r = 0;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t s = r ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
               ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)mc;
  return s ? s : 0x9E3779B97F4A7C15u;
}

uint64_t miscache__rand(miscache_t *mc) {
  if (mc->rng_gen != miscache__fork_gen()) { /* a child after fork() */
    mc->rng = seed_rng(mc);
    mc->rng_gen = miscache__fork_gen();
  }
  return miscache__xorshift(&mc->rng);
}

/* mc->kf_head (core.h), once the namespace is known. */
static void kf_heads(miscache_t *mc) {
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++) {
    size_t plen = miscache__family_prefix_len[f];
    size_t nids = miscache__families[f].nids;
    size_t n = mc->ns_len + plen + (nids == 1);
    mc->kf_head_len[f] = 0;
    /* hash tags put a company id in braces: not in a head */
    bool tagged = mc->opts.hash_tags &&
                  miscache__family_company_index(&miscache__families[f]) >= 0;
    if (nids > 1 || tagged || n >= sizeof mc->kf_head[f]) continue;
    memcpy(mc->kf_head[f], mc->opts.ns, mc->ns_len);
    memcpy(mc->kf_head[f] + mc->ns_len, miscache__families[f].prefix, plen);
    if (nids == 1) mc->kf_head[f][n - 1] = ':';
    mc->kf_head_len[f] = (uint8_t)n;
  }
}

miscache_status_t miscache_open(const miscache_options_t *opts,
                                miscache_t **out, char *errbuf,
                                size_t errbuf_len) {
  if (errbuf && errbuf_len) errbuf[0] = 0;
  if (!out) {
    copy_err(errbuf, errbuf_len, "miscache_open: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  *out = NULL;
  miscache_t *mc = calloc(1, sizeof *mc);
  if (!mc) {
    copy_err(errbuf, errbuf_len, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  miscache_status_t st;
  if (opts)
    st = miscache__options_copy(&mc->opts, opts);
  else {
    miscache__options_defaults(&mc->opts);
    st = MISCACHE_OK;
  }
  if (st != MISCACHE_OK) {
    free(mc);
    copy_err(errbuf, errbuf_len, "out of memory");
    return st;
  }
  /* the endpoint and the URL's settings under the setters' */
  st = miscache__options_resolve(&mc->opts, mc->err, sizeof mc->err);
  if (st != MISCACHE_OK) {
    copy_err(errbuf, errbuf_len, mc->err);
    miscache__options_clear(&mc->opts);
    free(mc);
    return st;
  }
  mc->ns_len = strlen(mc->opts.ns);
  kf_heads(mc);
  miscache__fork_watch();
  mc->rng = seed_rng(mc);
  mc->rng_gen = miscache__fork_gen();
  mc->pending = miscache__pending_new(mc->opts.pending_max);
  if (!mc->pending) {
    miscache_free(mc);
    copy_err(errbuf, errbuf_len, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  st = miscache__disp_new(&mc->opts, mc->err, sizeof mc->err, &mc->disp);
  if (st != MISCACHE_OK) {
    copy_err(errbuf, errbuf_len, mc->err);
    miscache_free(mc);
    return st;
  }
  if (mc->opts.near.enabled && !mc->opts.near_external) {
    st = miscache__near_new(&mc->opts, &mc->near, mc->err, sizeof mc->err);
    if (st != MISCACHE_OK) {
      copy_err(errbuf, errbuf_len, mc->err);
      miscache_free(mc);
      return st;
    }
  }
  if (!mc->opts.lazy) {
    st = miscache__disp_connect(mc->disp);
    if (st != MISCACHE_OK) {
      copy_err(errbuf, errbuf_len, mc->err);
      miscache_free(mc);
      return st;
    }
  }
  *out = mc;
  return MISCACHE_OK;
}

miscache_status_t miscache_open_url(const char *url, miscache_t **out,
                                    char *errbuf, size_t errbuf_len) {
  if (!url) return miscache_open(NULL, out, errbuf, errbuf_len);
  miscache_options_t o;
  miscache__options_defaults(&o);
  miscache_status_t st = miscache_options_set_url(&o, url);
  if (st != MISCACHE_OK) {
    if (out) *out = NULL;
    copy_err(errbuf, errbuf_len, o.err[0] ? o.err : miscache_strerror(st));
    return st;
  }
  st = miscache_open(&o, out, errbuf, errbuf_len);
  miscache__options_clear(&o);
  return st;
}

void miscache_free(miscache_t *mc) {
  if (!mc) return;
  miscache__disp_free(mc->disp);
  miscache__pending_unref(mc->pending);
  miscache__near_unref(mc->near);
  miscache__options_clear(&mc->opts);
  free(mc);
}

size_t miscache_pending_invalidations(const miscache_t *mc) {
  return mc ? miscache__pending_count(mc->pending) : 0;
}

miscache_status_t miscache__pend(miscache_t *mc, miscache_db_t db,
                                 const char *key, bool pattern,
                                 miscache_status_t st) {
  switch (st) {
  case MISCACHE_ERR_UNAVAILABLE:
  case MISCACHE_ERR_SERVER:
  case MISCACHE_ERR_REPLY:
  case MISCACHE_ERR_AUTH: break;
  default: return st; /* refused before anything was sent */
  }
  miscache_status_t ps = miscache__pending_add(mc->pending, db, key, pattern);
  miscache__event(&mc->opts.hook, MISCACHE_EV_PENDING_KEPT,
                  miscache__disp_master_name(mc->disp), 0,
                  miscache__pending_count(mc->pending), "%s%s in db %s%s: %s",
                  mc->opts.ns, key, miscache_db_name(db),
                  ps == MISCACHE_OK ? " kept pending"
                                    : " NOT kept (the pending list is full)",
                  miscache_strerror(st));
  if (ps == MISCACHE_OK) return st;
  char cause[MISCACHE_ERRMSG_SIZE];
  snprintf(cause, sizeof cause, "%s", mc->err);
  miscache__set_err(mc, "invalidation of %s in db %s failed and could not be "
                        "kept pending (%s): stale until its TTL; cause: %s",
                    key, miscache_db_name(db),
                    ps == MISCACHE_ERR_PENDING_FULL ? "list full"
                                                    : "out of memory",
                    cause);
  return ps == MISCACHE_ERR_PENDING_FULL ? ps : MISCACHE_ERR_NOMEM;
}

const char *miscache_errmsg(const miscache_t *mc) {
  return mc ? mc->err : "miscache handle is NULL";
}

int miscache_db_number(const miscache_t *mc, miscache_db_t db) {
  return mc && miscache__db_valid(db) ? mc->opts.db[db] : -1;
}

int64_t miscache_ttl_seconds(const miscache_t *mc, miscache_ttl_class_t cls) {
  return mc && miscache__ttl_valid(cls) ? mc->opts.ttl[cls] : 0;
}

const char *miscache_namespace(const miscache_t *mc) {
  return mc ? mc->opts.ns : "";
}

int64_t miscache__ttl_ms(miscache_t *mc, miscache_ttl_class_t cls) {
  int64_t ms = mc->opts.ttl[cls] * 1000;
  unsigned pct = mc->opts.jitter_pct;
  if (pct) ms = miscache__jittered(ms, pct, miscache__rand(mc));
  return ms;
}

int64_t miscache__ttl_resolve(miscache_t *mc, int64_t ttl) {
  if (ttl >= 0) return ttl;
  int64_t cls = -ttl - 1;
  return miscache__ttl_valid((miscache_ttl_class_t)cls)
             ? miscache__ttl_ms(mc, (miscache_ttl_class_t)cls)
             : 0;
}

/* ---- counters ------------------------------------------------------------ */

miscache_status_t miscache_counters_get(const miscache_t *mc, miscache_db_t db,
                                        miscache_counters_t *out) {
  if (!mc || !out || !miscache__db_valid(db)) return MISCACHE_ERR_INVALID;
  *out = mc->counters[db];
  return MISCACHE_OK;
}

miscache_status_t miscache_counters_total(const miscache_t *mc,
                                          miscache_counters_t *out) {
  if (!mc || !out) return MISCACHE_ERR_INVALID;
  miscache_counters_t t = {.hits = 0};
  for (int i = 0; i < MISCACHE_DB_COUNT; i++) {
    t.hits += mc->counters[i].hits;
    t.misses += mc->counters[i].misses;
    t.errors += mc->counters[i].errors;
  }
  *out = t;
  return MISCACHE_OK;
}

void miscache_counters_reset(miscache_t *mc) {
  if (!mc) return;
  memset(mc->counters, 0, sizeof mc->counters);
  memset(mc->categories, 0, sizeof mc->categories);
  memset(&mc->latency, 0, sizeof mc->latency);
}

/* ---- keys and commands --------------------------------------------------- */

miscache_status_t miscache__fullkey(miscache_t *mc, const char *key,
                                    miscache__fullkey_t *fk) {
  fk->heap = NULL;
  if (!key || !key[0]) {
    miscache__set_err(mc, "key is NULL or empty");
    return MISCACHE_ERR_INVALID;
  }
  size_t klen = strlen(key);
  size_t total = mc->ns_len + klen;
  char *dst = fk->buf;
  if (total + 1 > sizeof fk->buf) {
    dst = fk->heap = malloc(total + 1);
    if (!dst) {
      miscache__set_err(mc, "out of memory building key");
      return MISCACHE_ERR_NOMEM;
    }
  }
  memcpy(dst, mc->opts.ns, mc->ns_len);
  memcpy(dst + mc->ns_len, key, klen + 1);
  fk->ptr = dst;
  fk->len = total;
  return MISCACHE_OK;
}

void miscache__fullkey_done(miscache__fullkey_t *fk) {
  free(fk->heap);
  fk->heap = NULL;
}

/* The number of keys of EVAL/EVALSHA in argv[2] (lens, not a NUL, bound
 * it); 0 when it is not a count. */
static size_t eval_nkeys(const miscache__cmd_t *c) {
  size_t n = 0;
  if (c->lens[2] == 0 || c->lens[2] > 4) return 0;
  for (size_t i = 0; i < c->lens[2]; i++) {
    char d = c->argv[2][i];
    if (d < '0' || d > '9') return 0;
    n = n * 10 + (size_t)(d - '0');
  }
  return n;
}

/* MISCACHE__WRITES (core.h): the near cache drops what cmds write. */
static void evict_written(miscache_t *mc, size_t n,
                          const miscache__cmd_t *cmds) {
  for (size_t i = 0; i < n; i++) {
    const miscache__cmd_t *c = &cmds[i];
    if (c->argc < 2) continue;
    bool eval = (c->lens[0] == 4 && strncasecmp(c->argv[0], "EVAL", 4) == 0) ||
                (c->lens[0] == 7 &&
                 strncasecmp(c->argv[0], "EVALSHA", 7) == 0);
    if (!eval) {
      miscache__near_evict(mc, c->argv[1], c->lens[1]);
      continue;
    }
    size_t nk = c->argc > 2 ? eval_nkeys(c) : 0;
    for (size_t k = 0; k < nk && 3 + k < (size_t)c->argc; k++)
      miscache__near_evict(mc, c->argv[3 + k], c->lens[3 + k]);
  }
}

/* ---- latency and slow calls ------------------------------------------- */

static const int64_t bound_us[MISCACHE_LATENCY_BUCKETS - 1] = {
    50,    100,    250,    500,    1000,    2500,    5000,   10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

double miscache_latency_bound(unsigned i) {
  if (i >= MISCACHE_LATENCY_BUCKETS) return -1;
  return i == MISCACHE_LATENCY_BUCKETS - 1 ? INFINITY : bound_us[i] / 1e6;
}

static const char *const class_names[MISCACHE_CMD_CLASS_COUNT] = {
    "read", "write", "multi", "script", "scan", "other"};

const char *miscache_cmd_class_name(miscache_cmd_class_t c) {
  return (unsigned)c < MISCACHE_CMD_CLASS_COUNT ? class_names[c] : NULL;
}

static bool name_is(const miscache__cmd_t *c, const char *name) {
  return c->argc > 0 && c->lens[0] == strlen(name) &&
         strncasecmp(c->argv[0], name, c->lens[0]) == 0;
}

/* The class of a call of n commands. */
static miscache_cmd_class_t cmd_class(size_t n, const miscache__cmd_t *cmds) {
  static const char *const reads[] = {"GET",    "EXISTS", "PTTL",   "TTL",
                                      "STRLEN", "TYPE",   "XLEN",   "XRANGE",
                                      "XINFO",  "XPENDING"};
  static const char *const others[] = {"PING",   "INFO",     "CLIENT", "CLUSTER",
                                       "ROLE",   "SENTINEL", "CONFIG", "DBSIZE",
                                       "TIME",   "HELLO",    "AUTH",   "SELECT",
                                       "PUBLISH", "SUBSCRIBE"};
  if (n == 1 && cmds[0].argc == 2 && name_is(&cmds[0], "GET"))
    return MISCACHE_CMD_READ; /* the common call, decided at once */
  bool script = false;
  for (size_t i = 0; i < n; i++) {
    if (name_is(&cmds[i], "SCAN")) return MISCACHE_CMD_SCAN;
    script = script || name_is(&cmds[i], "EVAL") || name_is(&cmds[i], "EVALSHA");
  }
  if (script) return MISCACHE_CMD_SCRIPT;
  if (n > 1 || name_is(&cmds[0], "MGET") || name_is(&cmds[0], "MSET") ||
      ((name_is(&cmds[0], "UNLINK") || name_is(&cmds[0], "DEL") ||
        name_is(&cmds[0], "EXISTS")) && cmds[0].argc > 2))
    return MISCACHE_CMD_MULTI;
  for (size_t i = 0; i < sizeof others / sizeof *others; i++)
    if (name_is(&cmds[0], others[i])) return MISCACHE_CMD_OTHER;
  for (size_t i = 0; i < sizeof reads / sizeof *reads; i++)
    if (name_is(&cmds[0], reads[i])) return MISCACHE_CMD_READ;
  return MISCACHE_CMD_WRITE;
}

/* The key family of a full key (its namespace in front), for messages. */
static const char *family_of(const miscache_t *mc, const char *key,
                             size_t len) {
  if (len < mc->ns_len || memcmp(key, mc->opts.ns, mc->ns_len) != 0)
    return "a key outside the namespace";
  key += mc->ns_len;
  len -= mc->ns_len;
  const char *best = NULL;
  size_t best_len = 0;
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++) {
    size_t pl = miscache__family_prefix_len[f];
    if (pl > best_len && pl <= len &&
        memcmp(key, miscache__families[f].prefix, pl) == 0 &&
        (pl == len || key[pl] == ':' || key[pl] == '*')) {
      best = miscache__families[f].name;
      best_len = pl;
    }
  }
  return best ? best : "a key of no family";
}

void miscache__call_info(size_t n, const miscache__cmd_t *cmds,
                         miscache__call_t *out) {
  out->n = n;
  if (n == 0) return;
  out->cls = cmd_class(n, cmds);
  out->verb = cmds[0].argv[0];
  out->vlen = cmds[0].lens[0] < 16 ? cmds[0].lens[0] : 16;
  bool keyed = cmds[0].argc > 1;
  out->key = keyed ? cmds[0].argv[1] : NULL;
  out->klen = keyed ? cmds[0].lens[1] : 0;
}

void miscache__observe_call(miscache_t *mc, const miscache__call_t *call,
                            int64_t us) {
  if (call->n == 0 || us < 0) return;
  miscache_cmd_class_t c = call->cls;
  unsigned b = 0;
  while (b < MISCACHE_LATENCY_BUCKETS - 1 && us > bound_us[b]) b++;
  mc->latency.buckets[c][b]++;
  mc->latency.calls[c]++;
  mc->latency.total_us[c] += (uint64_t)us;
  if (!mc->opts.slow_call_ms || us < (int64_t)mc->opts.slow_call_ms * 1000)
    return;
  char what[48] = "";
  if (call->n > 1)
    snprintf(what, sizeof what, " (first of %zu commands)", call->n);
  miscache__event(&mc->opts.hook, MISCACHE_EV_SLOW_CALL,
                  miscache__disp_master_name(mc->disp), us, call->n,
                  "%.*s %s%s: %lld.%03lld ms", (int)call->vlen, call->verb,
                  call->key ? family_of(mc, call->key, call->klen) : "", what,
                  (long long)(us / 1000), (long long)(us % 1000));
}

static void observe(miscache_t *mc, size_t n, const miscache__cmd_t *cmds,
                    int64_t us) {
  if (n == 0 || us < 0) return;
  miscache__call_t call;
  miscache__call_info(n, cmds, &call);
  miscache__observe_call(mc, &call, us);
}

miscache_status_t miscache_latency(const miscache_t *mc, miscache_latency_t *out,
                                   size_t size) {
  if (!mc || !out) return MISCACHE_ERR_INVALID;
  memcpy(out, &mc->latency, size < sizeof mc->latency ? size : sizeof mc->latency);
  return MISCACHE_OK;
}

size_t miscache_latency_prometheus(const miscache_latency_t *l, char *buf,
                                   size_t len) {
  size_t n = 0;
  if (buf && len) buf[0] = 0;
#define PUT(...) miscache__appendf(buf, len, &n, __VA_ARGS__)
  PUT("# HELP miscache_command_duration_seconds Calls to the cache server by "
      "command class, from the first byte written to the last reply read.\n"
      "# TYPE miscache_command_duration_seconds histogram\n");
  for (int c = 0; l && c < MISCACHE_CMD_CLASS_COUNT; c++) {
    uint64_t cum = 0;
    for (int b = 0; b < MISCACHE_LATENCY_BUCKETS; b++) {
      cum += l->buckets[c][b];
      if (b == MISCACHE_LATENCY_BUCKETS - 1)
        PUT("miscache_command_duration_seconds_bucket{class=\"%s\",le=\"+Inf\"} "
            "%llu\n", class_names[c], (unsigned long long)cum);
      else
        PUT("miscache_command_duration_seconds_bucket{class=\"%s\",le=\"%g\"} "
            "%llu\n", class_names[c], bound_us[b] / 1e6, (unsigned long long)cum);
    }
    PUT("miscache_command_duration_seconds_sum{class=\"%s\"} %.6f\n",
        class_names[c], l->total_us[c] / 1e6);
    PUT("miscache_command_duration_seconds_count{class=\"%s\"} %llu\n",
        class_names[c], (unsigned long long)l->calls[c]);
  }
#undef PUT
  return n;
}

miscache_status_t miscache__send(miscache_t *mc, int db, size_t n,
                                 const miscache__cmd_t *cmds,
                                 miscache__reply_t **replies, unsigned flags) {
  return miscache__send_on(mc, db, n, cmds, NULL, replies, flags);
}

miscache_status_t miscache__send_on(miscache_t *mc, int db, size_t n,
                                    const miscache__cmd_t *cmds,
                                    const unsigned *on_each,
                                    miscache__reply_t **replies,
                                    unsigned flags) {
  int64_t t0 = miscache__mono_us();
  miscache_status_t st = miscache__disp_run_on(
      mc->disp, db, n, cmds, on_each, replies, flags & ~MISCACHE__WRITES);
  observe(mc, n, cmds, miscache__mono_us() - t0);
  if ((flags & MISCACHE__WRITES) && mc->near) evict_written(mc, n, cmds);
  return st;
}

miscache_status_t miscache__exec_key(miscache_t *mc, miscache_db_t db,
                                     const char *key,
                                     const miscache__cmd_t *cmd,
                                     miscache__reply_t **reply,
                                     unsigned flags) {
  int64_t t0 = miscache__mono_us();
  miscache_status_t st = miscache__disp_run(mc->disp, (int)db, 1, cmd, reply,
                                            flags & ~MISCACHE__WRITES);
  observe(mc, 1, cmd, miscache__mono_us() - t0);
  if ((flags & MISCACHE__WRITES) && mc->near) evict_written(mc, 1, cmd);
  if (st != MISCACHE_OK) miscache__count(mc, db, key, MISCACHE__ERROR);
  return st;
}

const char *miscache__master_name(const miscache_t *mc) {
  return miscache__disp_master_name(mc->disp);
}

size_t miscache__dispatch_nodes(miscache_t *mc) {
  return miscache__disp_nodes(mc->disp);
}

size_t miscache__dispatch_node_count(const miscache_t *mc) {
  return miscache__disp_node_count(mc->disp);
}

bool miscache__is_cluster(const miscache_t *mc) {
  return miscache__disp_is_cluster(mc->disp);
}

miscache_status_t miscache_link_stats(miscache_t *mc, miscache_link_stats_t *out,
                                      size_t size) {
  if (!mc || !out) return MISCACHE_ERR_INVALID;
  miscache_link_stats_t s;
  miscache__disp_stats(mc->disp, &s);
  memcpy(out, &s, size < sizeof s ? size : sizeof s);
  return MISCACHE_OK;
}

/* The category of a logical key: its first segment. */
miscache_category_t miscache__category_of(const char *key) {
  if (!key) return MISCACHE_CAT_OTHER;
  size_t n = strcspn(key, ":");
  for (int i = 0; i < MISCACHE_CAT_OTHER; i++)
    if (strlen(miscache_category_name((miscache_category_t)i)) == n &&
        strncmp(key, miscache_category_name((miscache_category_t)i), n) == 0)
      return (miscache_category_t)i;
  return MISCACHE_CAT_OTHER;
}

void miscache__count(miscache_t *mc, miscache_db_t db, const char *key,
                     miscache__event_t ev) {
  if (!mc->quiet) miscache__count_in(mc, db, miscache__category_of(key), ev);
}


void miscache__hit_unusable(miscache_t *mc, miscache_db_t db,
                            const char *key) {
  miscache__count(mc, db, key, MISCACHE__UNHIT);
  miscache__count(mc, db, key, MISCACHE__MISS);
  miscache__count(mc, db, key, MISCACHE__ERROR);
}

miscache_status_t miscache_counters_category(const miscache_t *mc,
                                             miscache_category_t cat,
                                             miscache_counters_t *out) {
  if (!mc || !out || (unsigned)cat >= MISCACHE_CATEGORY_COUNT)
    return MISCACHE_ERR_INVALID;
  *out = mc->categories[cat];
  return MISCACHE_OK;
}

miscache_status_t miscache__unexpected(miscache_t *mc, miscache_db_t db,
                                       const char *key,
                                       const miscache__reply_t *r,
                                       const char *what) {
  miscache__count(mc, db, key, MISCACHE__ERROR);
  if (r && miscache__reply_type(r) == MISCACHE__R_ERROR)
    return miscache__reply_error(r, what, mc->err, sizeof mc->err);
  miscache__set_err(mc, "%s: unexpected reply", what);
  return MISCACHE_ERR_REPLY;
}

void miscache__uuid(miscache_t *mc, char out[37]) {
  uint64_t a = miscache__rand(mc), b = miscache__rand(mc);
  a = (a & ~UINT64_C(0xF000)) | UINT64_C(0x4000);       /* version 4 */
  b = (b & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62); /* variant */
  snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
           (unsigned)(a >> 16) & 0xFFFF, (unsigned)a & 0xFFFF,
           (unsigned)(b >> 48), (unsigned long long)(b & 0xFFFFFFFFFFFFull));
}

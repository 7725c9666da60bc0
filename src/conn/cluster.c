/*
 * Redis Cluster routing, written here on top of the node layer (hiredis
 * 0.14 has no cluster support), following the Cluster specification:
 *
 * - Key slots: CRC16 (XMODEM) of the key mod 16384, or of its hash tag
 *   (the bytes between the first '{' and the first '}' after it, when that
 *   is not empty).
 * - The slot map comes from CLUSTER SLOTS, asked of any node that answers
 *   (the known masters first, then the seeds of the URL). One node object
 *   (one connection, opened on first use) per master.
 * - A batch is planned per command: its slot from its keys (a small table
 *   of the commands this library sends); MGET, DEL, UNLINK and EXISTS over
 *   keys of several slots are split into one command per slot and their
 *   replies merged back (MGET in key order, the others summed). The parts
 *   are grouped per node, written to every node first, then read: the
 *   nodes work in parallel, one round trip for the whole batch.
 * - MOVED: the slot now lives elsewhere; the map entry is fixed at once,
 *   the whole map reloaded before the next batch, and the command sent to
 *   the new owner. ASK: ASKING + the command, once, on the target.
 *   TRYAGAIN and CLUSTERDOWN: retried after 10, 20, 40... ms. Each command
 *   follows at most MAX_REDIRECTS redirections, from the third on after a
 *   pause of 1, 2, 4... 64 ms (two nodes that disagree about a slot while a
 *   migration is finalized send it to each other), and everything stays within
 *   the call's deadline: a broken cluster gives ERR_UNAVAILABLE, never a
 *   loop.
 * - A lost connection or a refused connect reloads the map (at most once
 *   per RELOAD_PAUSE_MS), which is how a promoted replica is found.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"

#define MAX_REDIRECTS 16
#define MAX_RETRIES 6     /* TRYAGAIN / CLUSTERDOWN per command */
#define RELOAD_PAUSE_MS 100
#define NO_NODE 0xFFFFu
#define ASK_MASTERS 3 /* known masters asked for the map before the seeds */

/* ---- key slots ---------------------------------------------------------- */

static uint16_t crc16_table[256];
static pthread_once_t crc16_once = PTHREAD_ONCE_INIT;

static void crc16_init(void) {
  for (unsigned i = 0; i < 256; i++) {
    uint16_t c = (uint16_t)(i << 8);
    for (int b = 0; b < 8; b++)
      c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
    crc16_table[i] = c;
  }
}

static uint16_t crc16(const char *buf, size_t len) {
  pthread_once(&crc16_once, crc16_init); /* the pool's threads share it */
  uint16_t crc = 0;
  for (size_t i = 0; i < len; i++)
    crc = (uint16_t)((crc << 8) ^
                     crc16_table[((crc >> 8) ^ (uint8_t)buf[i]) & 0xff]);
  return crc;
}

unsigned miscache__key_slot(const char *key, size_t len) {
  const char *open = memchr(key, '{', len);
  if (open) {
    size_t rest = len - (size_t)(open - key) - 1;
    const char *close = memchr(open + 1, '}', rest);
    if (close && close > open + 1)
      return crc16(open + 1, (size_t)(close - open - 1)) % MISCACHE__SLOTS;
  }
  return crc16(key, len) % MISCACHE__SLOTS;
}

/* ---- the commands this library sends, and where their keys are --------- */

typedef enum {
  KEYS_NONE,  /* PING, INFO, SCAN, MULTI, EXEC, TIME... */
  KEYS_FIRST, /* argv[1] */
  KEYS_ALL,   /* argv[1..]: splittable by slot */
  KEYS_WATCH, /* argv[1..], one slot */
  KEYS_EVAL   /* numkeys at argv[2], keys from argv[3] */
} keys_kind_t;

static bool is(const miscache__cmd_t *c, const char *name) {
  size_t n = strlen(name);
  return c->lens[0] == n && memcmp(c->argv[0], name, n) == 0;
}

static keys_kind_t keys_kind(const miscache__cmd_t *c) {
  static const char *const first[] = {
      "GET",    "SET",  "PTTL",  "TTL",    "INCRBY", "INCR",   "PEXPIRE",
      "EXPIRE", "TYPE", "STRLEN", "DECRBY", "GETDEL", "PSETEX", "SETEX",
      "XADD",   "XLEN", "HGET",  "HSET",   "PERSIST"};
  if (c->argc < 2) return KEYS_NONE;
  for (size_t i = 0; i < sizeof first / sizeof *first; i++)
    if (is(c, first[i])) return KEYS_FIRST;
  if (is(c, "MGET") || is(c, "DEL") || is(c, "UNLINK") || is(c, "EXISTS"))
    return KEYS_ALL;
  if (is(c, "WATCH")) return KEYS_WATCH;
  if ((is(c, "EVAL") || is(c, "EVALSHA")) && c->argc >= 4) return KEYS_EVAL;
  return KEYS_NONE;
}

/* The slot of a command that is not split: its first key's; -1 without a
 * key. */
static int cmd_slot(const miscache__cmd_t *c) {
  switch (keys_kind(c)) {
  case KEYS_NONE: return -1;
  case KEYS_EVAL:
    if (atoi(c->argv[2]) < 1) return -1;
    return (int)miscache__key_slot(c->argv[3], c->lens[3]);
  default: return (int)miscache__key_slot(c->argv[1], c->lens[1]);
  }
}

/* ---- the router ------------------------------------------------------------ */

struct miscache__cluster {
  const miscache__endpoint_t *ep; /* the handle's: seeds */
  miscache__node_conf_t conf;
  miscache_link_stats_t *stats;
  char *err;
  size_t errlen;
  miscache__node_t **nodes; /* the masters of the map, and nodes in use
                               (seeds asked, redirection targets); NULL
                               holes where a reload freed one */
  size_t nnodes, cap;
  uint32_t *index; /* open addressing over nodes by host:port: 1 + index */
  size_t icap;     /* a power of two, at least four times the nodes */
  size_t free_hint; /* no hole below this index */
  size_t reload_turn; /* which known master a reload asks first */
  uint16_t slots[MISCACHE__SLOTS]; /* slot -> index in nodes, NO_NODE */
  bool loaded;                     /* a map was loaded once */
  bool stale;                      /* reload before the next batch */
  int64_t next_reload_ms;          /* not before (CLOCK_MONOTONIC ms) */
  bool keep_nodes; /* the async handle's router: no node is ever freed, so
                      node numbers stay valid while calls use them */
  size_t *masters;                 /* nodes owning slots in the map */
  size_t nmasters;
};

miscache__cluster_t *miscache__cluster_new(const miscache__endpoint_t *ep,
                                           const miscache__node_conf_t *conf,
                                           miscache_link_stats_t *stats,
                                           char *err, size_t errlen) {
  miscache__cluster_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->ep = ep;
  c->conf = *conf;
  c->stats = stats;
  c->err = err;
  c->errlen = errlen;
  for (size_t i = 0; i < MISCACHE__SLOTS; i++) c->slots[i] = NO_NODE;
  return c;
}

void miscache__cluster_free(miscache__cluster_t *c) {
  if (!c) return;
  for (size_t i = 0; i < c->nnodes; i++) miscache__node_free(c->nodes[i]);
  free(c->nodes);
  free(c->index);
  free(c->masters);
  free(c);
}

static void cl_err(miscache__cluster_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cl_err(miscache__cluster_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, c->errlen, fmt, ap);
  va_end(ap);
}

static size_t addr_hash(const char *host, int port) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)port;
  for (const char *p = host; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return (size_t)(h ^ (h >> 29));
}

/* Rebuilds the index for a table of icap slots. false when out of memory
 * (the old one stays). */
static bool index_build(miscache__cluster_t *c, size_t icap) {
  uint32_t *ix = calloc(icap, sizeof *ix);
  if (!ix) return false;
  for (size_t i = 0; i < c->nnodes; i++) {
    if (!c->nodes[i]) continue;
    size_t j = addr_hash(miscache__node_host(c->nodes[i]),
                         miscache__node_port(c->nodes[i])) & (icap - 1);
    while (ix[j]) j = (j + 1) & (icap - 1);
    ix[j] = (uint32_t)i + 1;
  }
  free(c->index);
  c->index = ix;
  c->icap = icap;
  return true;
}

/* The node for host:port (valid: checked by the caller), created when new,
 * in O(1). NO_NODE when out of memory. */
static unsigned node_for(miscache__cluster_t *c, const char *host, int port) {
  if (c->icap) {
    for (size_t j = addr_hash(host, port) & (c->icap - 1); c->index[j];
         j = (j + 1) & (c->icap - 1)) {
      size_t i = c->index[j] - 1;
      if (c->nodes[i] && miscache__node_is(c->nodes[i], host, port))
        return (unsigned)i;
    }
  }
  size_t slot = c->nnodes; /* a hole a reload left, else a new one */
  for (size_t i = c->free_hint; i < c->nnodes; i++)
    if (!c->nodes[i]) {
      slot = i;
      break;
    }
  if (slot == c->nnodes) {
    if (c->nnodes >= NO_NODE - 1) return NO_NODE;
    if (c->nnodes == c->cap) {
      size_t cap = c->cap ? 2 * c->cap : 8;
      miscache__node_t **p = miscache__realloc_array(c->nodes, cap, sizeof *p);
      if (!p) return NO_NODE;
      c->nodes = p;
      c->cap = cap;
    }
  }
  if (4 * (c->nnodes + 1) > c->icap && !index_build(c, c->icap ? 2 * c->icap : 64))
    return NO_NODE;
  miscache__node_t *n = miscache__node_new(host, port, NULL, &c->conf, c->stats,
                                           c->err, c->errlen);
  if (!n) return NO_NODE;
  c->nodes[slot] = n;
  if (slot == c->nnodes) c->nnodes++;
  c->free_hint = slot + 1;
  size_t j = addr_hash(host, port) & (c->icap - 1);
  while (c->index[j]) j = (j + 1) & (c->icap - 1);
  c->index[j] = (uint32_t)slot + 1;
  return (unsigned)slot;
}

/* After a new map: frees every node that is neither one of its masters nor
 * marked busy (busy: nbusy flags by index, a batch's targets; may be
 * NULL), leaving holes so that the indices in use stay valid. */
static void prune(miscache__cluster_t *c, const bool *busy, size_t nbusy) {
  if (c->keep_nodes) return;
  bool *keep = calloc(c->nnodes ? c->nnodes : 1, sizeof *keep);
  if (!keep) return; /* keeping them is correct, only wasteful */
  for (size_t i = 0; i < c->nmasters; i++) keep[c->masters[i]] = true;
  for (size_t i = 0; busy && i < nbusy && i < c->nnodes; i++)
    keep[i] = keep[i] || busy[i];
  bool freed = false;
  for (size_t i = 0; i < c->nnodes; i++)
    if (c->nodes[i] && !keep[i]) {
      miscache__node_free(c->nodes[i]);
      c->nodes[i] = NULL;
      freed = true;
    }
  while (c->nnodes && !c->nodes[c->nnodes - 1]) c->nnodes--;
  free(keep);
  c->free_hint = 0;
  if (freed) (void)index_build(c, c->icap); /* same size: cannot grow */
}

/* "MOVED 3999 10.0.0.1:6381" (or ASK): the slot and a valid address; why
 * says what is wrong otherwise. */
static bool parse_redirect(const char *text, unsigned *slot, char *host,
                           size_t hostlen, int *port, char *why,
                           size_t whylen) {
  snprintf(why, whylen, "not \"MOVED|ASK <slot> <host>:<port>\"");
  const char *sp1 = strchr(text, ' ');
  if (!sp1) return false;
  const char *sp2 = strchr(sp1 + 1, ' ');
  if (!sp2) return false;
  unsigned long v = 0;
  for (const char *q = sp1 + 1; q < sp2; q++) {
    if (*q < '0' || *q > '9' || v >= MISCACHE__SLOTS) return false;
    v = v * 10 + (unsigned long)(*q - '0');
  }
  if (sp2 == sp1 + 1 || v >= MISCACHE__SLOTS) return false;
  *slot = (unsigned)v;
  const char *addr = sp2 + 1, *colon = strrchr(addr, ':');
  if (!colon) return false;
  size_t hl = (size_t)(colon - addr);
  if (!miscache__parse_port(colon + 1, strlen(colon + 1), port)) {
    snprintf(why, whylen, "port \"%.8s\" not in 1..65535", colon + 1);
    return false;
  }
  if (hl >= hostlen || !miscache__peer_addr_ok(addr, hl, *port, why, whylen)) {
    if (hl >= hostlen) snprintf(why, whylen, "a host name of %zu bytes", hl);
    return false;
  }
  memcpy(host, addr, hl);
  host[hl] = 0;
  return true;
}

/* Apply one CLUSTER SLOTS reply asked of node `from` (its host stands in for
 * an empty one), in O(slots + masters). false when the reply is not a slot
 * map (why says what is wrong; the map in use is kept). */
static bool apply_slots(miscache__cluster_t *c, const miscache__reply_t *r,
                        const char *from_host, char *why, size_t whylen) {
  size_t n = miscache__reply_count(r);
  snprintf(why, whylen, "not a slot map");
  if (n == 0) return false;
  uint16_t *map = malloc(sizeof c->slots);
  if (!map) {
    snprintf(why, whylen, "out of memory");
    return false;
  }
  for (size_t i = 0; i < MISCACHE__SLOTS; i++) map[i] = NO_NODE;
  bool ok = true;
  for (size_t i = 0; i < n && ok; i++) {
    const miscache__reply_t *e = miscache__reply_at(r, i);
    const miscache__reply_t *lo = miscache__reply_at(e, 0);
    const miscache__reply_t *hi = miscache__reply_at(e, 1);
    const miscache__reply_t *m = miscache__reply_at(e, 2);
    const miscache__reply_t *mh = miscache__reply_at(m, 0);
    const miscache__reply_t *mp = miscache__reply_at(m, 1);
    long long a = miscache__reply_int(lo), b = miscache__reply_int(hi);
    if (!miscache__reply_is(lo, MISCACHE__R_INTEGER) ||
        !miscache__reply_is(hi, MISCACHE__R_INTEGER) ||
        !miscache__reply_is(mh, MISCACHE__R_STRING) ||
        !miscache__reply_is(mp, MISCACHE__R_INTEGER) || a < 0 ||
        b >= MISCACHE__SLOTS || a > b) {
      ok = false;
      break;
    }
    size_t hl;
    const char *host = miscache__reply_str(mh, &hl);
    if (hl == 0 || (hl == 1 && host[0] == '?')) host = from_host, hl = strlen(host);
    char bad[96];
    if (strlen(host) != hl ||
        !miscache__peer_addr_ok(host, hl, miscache__reply_int(mp), bad,
                                sizeof bad)) {
      snprintf(why, whylen, "entry %zu names a master not to connect to: %s", i,
               strlen(host) != hl ? "a host name with a NUL byte" : bad);
      ok = false;
      break;
    }
    unsigned idx = node_for(c, host, (int)miscache__reply_int(mp));
    if (idx == NO_NODE) {
      snprintf(why, whylen, "out of memory");
      ok = false;
      break;
    }
    for (long long s = a; s <= b; s++) map[s] = (uint16_t)idx;
  }
  size_t *masters = NULL;
  bool *mark = NULL;
  if (ok) {
    masters = calloc(c->nnodes ? c->nnodes : 1, sizeof *masters);
    mark = calloc(c->nnodes ? c->nnodes : 1, sizeof *mark);
    ok = masters && mark;
    if (!ok) snprintf(why, whylen, "out of memory");
  }
  if (ok) {
    memcpy(c->slots, map, sizeof c->slots);
    size_t k = 0; /* masters in the order their first slot comes */
    for (size_t s = 0; s < MISCACHE__SLOTS; s++)
      if (c->slots[s] != NO_NODE && !mark[c->slots[s]]) {
        mark[c->slots[s]] = true;
        masters[k++] = c->slots[s];
      }
    free(c->masters);
    c->masters = masters;
    c->nmasters = k;
    masters = NULL;
  }
  free(masters);
  free(mark);
  free(map);
  return ok;
}

/* Reload the slot map from any node that answers, within deadline; then
 * free the nodes it no longer names unless busy (see prune). */
static miscache_status_t reload(miscache__cluster_t *c, int64_t deadline,
                                const bool *busy, size_t nbusy) {
  static const char *const argv[] = {"CLUSTER", "SLOTS"};
  static const size_t lens[] = {7, 5};
  miscache__cmd_t cmd = {2, argv, lens};
  c->next_reload_ms = miscache__mono_ms() + RELOAD_PAUSE_MS;
  c->stats->master_lookups++;
  char last[MISCACHE_ERRMSG_SIZE] = "no node answered";
  /* a few known masters first (in turn: not always the same one), then
   * the seeds, then every other known node: a map of many masters that
   * are gone must not keep the seeds waiting past the deadline */
  size_t nm = c->nmasters < ASK_MASTERS ? c->nmasters : ASK_MASTERS;
  size_t ns = c->ep->naddrs, nn = c->nnodes;
  size_t tries = nm + ns + nn, turn = c->reload_turn++;
  bool *tried = calloc(nn ? nn : 1, sizeof *tried);
  if (!tried) {
    cl_err(c, "cluster: out of memory loading the slot map");
    return MISCACHE_ERR_NOMEM;
  }
  for (size_t k = 0; k < tries; k++) {
    if (k > 0 && miscache__mono_ms() >= deadline) {
      snprintf(last + strlen(last), sizeof last - strlen(last),
               "; the call's deadline passed after %zu nodes", k);
      break;
    }
    size_t idx;
    if (k < nm) {
      idx = c->masters[(turn + k) % c->nmasters];
    } else if (k < nm + ns) {
      const miscache__hostport_t *s = &c->ep->addrs[k - nm];
      idx = node_for(c, s->host, s->port);
      if (idx == NO_NODE) {
        free(tried);
        cl_err(c, "cluster: out of memory loading the slot map");
        return MISCACHE_ERR_NOMEM;
      }
      if (idx < nn && tried[idx]) continue;
    } else {
      idx = k - nm - ns;
      if (idx >= c->nnodes || !c->nodes[idx] || tried[idx]) continue;
    }
    if (idx < nn) tried[idx] = true;
    miscache__node_t *n = c->nodes[idx];
    if (miscache__node_down(n)) continue;
    const char *h = miscache__node_host(n);
    miscache__reply_t *r = NULL;
    miscache_status_t st = miscache__node_ask(n, &cmd, &r, deadline);
    if (st != MISCACHE_OK) {
      snprintf(last, sizeof last, "%s", c->err);
      if (st == MISCACHE_ERR_AUTH || st == MISCACHE_ERR_TLS) {
        free(tried);
        return st;
      }
      continue;
    }
    char why[160], text[256];
    bool ok = apply_slots(c, r, h, why, sizeof why);
    if (!ok)
      snprintf(last, sizeof last, "redis %s: CLUSTER SLOTS: %s",
               miscache__node_addr(n),
               miscache__reply_type(r) == MISCACHE__R_ERROR
                   ? miscache__reply_text(r, text, sizeof text)
                   : why);
    miscache__reply_free(r);
    if (ok) {
      free(tried);
      c->loaded = true;
      c->stale = false;
      prune(c, busy, nbusy);
      miscache__event(&c->conf.hook, MISCACHE_EV_SLOTS_RELOADED,
                      miscache__node_addr(n), 0, c->nmasters,
                      "slot map loaded: %zu masters", c->nmasters);
      return MISCACHE_OK;
    }
  }
  free(tried);
  cl_err(c, "cluster: no slot map (last: %s)", last);
  return MISCACHE_ERR_UNAVAILABLE;
}

static miscache_status_t ensure_map(miscache__cluster_t *c, int64_t deadline) {
  if (c->loaded && !c->stale) return MISCACHE_OK;
  if (c->loaded && miscache__mono_ms() < c->next_reload_ms) return MISCACHE_OK;
  miscache_status_t st = reload(c, deadline, NULL, 0);
  return c->loaded && st == MISCACHE_ERR_UNAVAILABLE ? MISCACHE_OK : st;
}

miscache_status_t miscache__cluster_connect(miscache__cluster_t *c,
                                            int64_t deadline) {
  return reload(c, deadline, NULL, 0);
}

size_t miscache__cluster_masters(miscache__cluster_t *c, int64_t deadline) {
  if (ensure_map(c, deadline) != MISCACHE_OK) return 0;
  return c->nmasters;
}

size_t miscache__cluster_node_count(const miscache__cluster_t *c) {
  size_t n = 0;
  for (size_t i = 0; i < c->nnodes; i++) n += c->nodes[i] != NULL;
  return n;
}

const char *miscache__cluster_master_host(miscache__cluster_t *c, size_t i,
                                          int *port) {
  *port = i < c->nmasters ? miscache__node_port(c->nodes[c->masters[i]]) : 0;
  return i < c->nmasters ? miscache__node_host(c->nodes[c->masters[i]]) : "";
}

/* ---- planning a batch ------------------------------------------------------- */

typedef struct {
  miscache__cmd_t cmd;
  size_t origin; /* the caller's command */
  int slot;      /* -1: no key */
  unsigned node;
  size_t *pos;   /* split MGET: the result position of each key */
  miscache__reply_t *reply;
  miscache_status_t st; /* transport status of its node */
  bool resendable;
  int redirects, retries;
  bool asking;
} part_t;

typedef struct {
  part_t *parts;
  size_t nparts, cap;
  /* storage of split commands' argv/lens/pos */
  const char **argv;
  size_t *lens;
  size_t *pos;
  size_t nargs, args_cap;
  bool *split; /* per caller command: was it split */
} plan_t;

static void plan_free(plan_t *p) {
  for (size_t i = 0; i < p->nparts; i++) miscache__reply_free(p->parts[i].reply);
  free(p->parts);
  free(p->argv);
  free(p->lens);
  free(p->pos);
  free(p->split);
}

static part_t *add_part(plan_t *p) {
  if (p->nparts == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 16;
    part_t *np = miscache__realloc_array(p->parts, cap, sizeof *np);
    if (!np) return NULL;
    p->parts = np;
    p->cap = cap;
  }
  part_t *pt = &p->parts[p->nparts++];
  memset(pt, 0, sizeof *pt);
  return pt;
}

/* Sorting helper: key indices of one command by slot (qsort has no
 * context, so the slots travel with the indices). */
typedef struct {
  unsigned slot;
  size_t key; /* argv index */
} slotkey_t;

static int cmp_slotkey(const void *a, const void *b) {
  const slotkey_t *x = a, *y = b;
  if (x->slot != y->slot) return x->slot < y->slot ? -1 : 1;
  return (x->key > y->key) - (x->key < y->key);
}

/* Split command i (KEYS_ALL) by slot into parts; argv storage from p. */
static miscache_status_t split_cmd(plan_t *p, size_t i,
                                   const miscache__cmd_t *c) {
  size_t nkeys = (size_t)c->argc - 1;
  slotkey_t *sk = calloc(nkeys, sizeof *sk);
  if (!sk) return MISCACHE_ERR_NOMEM;
  for (size_t k = 0; k < nkeys; k++) {
    sk[k].key = k + 1;
    sk[k].slot = miscache__key_slot(c->argv[k + 1], c->lens[k + 1]);
  }
  qsort(sk, nkeys, sizeof *sk, cmp_slotkey);
  size_t groups = 0;
  for (size_t k = 0; k < nkeys; k++)
    groups += k == 0 || sk[k].slot != sk[k - 1].slot;
  if (groups == 1) { /* one slot: not split */
    free(sk);
    part_t *pt = add_part(p);
    if (!pt) return MISCACHE_ERR_NOMEM;
    pt->cmd = *c;
    pt->origin = i;
    pt->slot = (int)miscache__key_slot(c->argv[1], c->lens[1]);
    return MISCACHE_OK;
  }
  p->split[i] = true;
  size_t need = nkeys + groups;
  if (p->nargs + need > p->args_cap) {
    /* parts point into argv: it is sized once per batch (see plan_batch) */
    free(sk);
    return MISCACHE_ERR_NOMEM;
  }
  bool mget = is(c, "MGET");
  for (size_t k = 0; k < nkeys;) {
    size_t start = p->nargs;
    bool lone = k + 1 == nkeys || sk[k + 1].slot != sk[k].slot;
    /* a lone key of an MGET goes as GET: one reply object less */
    p->argv[p->nargs] = mget && lone ? "GET" : c->argv[0];
    p->lens[p->nargs++] = mget && lone ? 3 : c->lens[0];
    size_t m = 0;
    size_t *pos = p->pos + start;
    for (; k + m < nkeys && sk[k + m].slot == sk[k].slot; m++) {
      p->argv[p->nargs] = c->argv[sk[k + m].key];
      p->lens[p->nargs++] = c->lens[sk[k + m].key];
      pos[m] = sk[k + m].key - 1; /* result position of this key */
    }
    part_t *pt = add_part(p);
    if (!pt) {
      free(sk);
      return MISCACHE_ERR_NOMEM;
    }
    pt->cmd = (miscache__cmd_t){(int)(m + 1), p->argv + start, p->lens + start};
    pt->origin = i;
    pt->slot = (int)sk[k].slot;
    pt->pos = pos;
    k += m;
  }
  free(sk);
  return MISCACHE_OK;
}

static miscache_status_t plan_batch(miscache__cluster_t *c, plan_t *p,
                                    size_t n, const miscache__cmd_t *cmds) {
  memset(p, 0, sizeof *p);
  p->split = calloc(n, sizeof *p->split);
  bool txn = false;
  size_t args = 0;
  for (size_t i = 0; i < n; i++) {
    txn = txn || is(&cmds[i], "MULTI");
    if (keys_kind(&cmds[i]) == KEYS_ALL) args += 2 * (size_t)cmds[i].argc;
  }
  p->args_cap = args;
  p->argv = args ? calloc(args, sizeof *p->argv) : NULL;
  p->lens = args ? calloc(args, sizeof *p->lens) : NULL;
  p->pos = args ? calloc(args, sizeof *p->pos) : NULL;
  if (!p->split || (args && (!p->argv || !p->lens || !p->pos))) goto oom;
  int txn_slot = -1;
  for (size_t i = 0; i < n; i++) {
    if (!txn && keys_kind(&cmds[i]) == KEYS_ALL) {
      if (split_cmd(p, i, &cmds[i]) != MISCACHE_OK) goto oom;
      continue;
    }
    part_t *pt = add_part(p);
    if (!pt) goto oom;
    pt->cmd = cmds[i];
    pt->origin = i;
    pt->slot = cmd_slot(&cmds[i]);
    if (txn && pt->slot >= 0) {
      /* every key of a transaction, and every key of each command in it */
      bool one = txn_slot < 0 || pt->slot == txn_slot;
      keys_kind_t kk = keys_kind(&cmds[i]);
      if (kk == KEYS_ALL || kk == KEYS_WATCH)
        for (int k = 2; one && k < cmds[i].argc; k++)
          one = (int)miscache__key_slot(cmds[i].argv[k], cmds[i].lens[k]) ==
                pt->slot;
      if (!one) {
        cl_err(c, "CROSSSLOT: a transaction's keys must share one cluster "
                  "slot (use a hash tag)");
        return MISCACHE_ERR_INVALID;
      }
      txn_slot = pt->slot;
    }
  }
  return MISCACHE_OK;
oom:
  cl_err(c, "cluster: out of memory planning %zu commands", n);
  return MISCACHE_ERR_NOMEM;
}

/* ---- running it ---------------------------------------------------------- */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Master number i (0 .. nmasters - 1) as a node, or NO_NODE with the
 * message when the map no longer has it. */
static unsigned master_node(miscache__cluster_t *c, size_t i) {
  if (i < c->nmasters) return (unsigned)c->masters[i];
  cl_err(c, "cluster: master %zu is gone (the map changed)", i);
  c->stale = true;
  return NO_NODE;
}

/* Which node each part goes to: its slot's master; a part without a key
 * to master on_each[its command] when on_each is given, else on_node's,
 * else the batch's first keyed command's, else the first master. */
static miscache_status_t assign(miscache__cluster_t *c, plan_t *p,
                                int on_node, const unsigned *on_each) {
  unsigned batch_node = NO_NODE;
  if (on_node >= 0 && !on_each) {
    batch_node = master_node(c, (size_t)on_node);
    if (batch_node == NO_NODE) return MISCACHE_ERR_UNAVAILABLE;
  }
  for (size_t i = 0; i < p->nparts && batch_node == NO_NODE; i++)
    if (p->parts[i].slot >= 0) batch_node = c->slots[p->parts[i].slot];
  if (batch_node == NO_NODE && c->nmasters) batch_node = (unsigned)c->masters[0];
  for (size_t i = 0; i < p->nparts; i++) {
    part_t *pt = &p->parts[i];
    if (pt->slot >= 0) {
      pt->node = c->slots[pt->slot];
    } else if (on_each) {
      pt->node = master_node(c, on_each[pt->origin]);
      if (pt->node == NO_NODE) return MISCACHE_ERR_UNAVAILABLE;
    } else {
      pt->node = batch_node;
    }
    if (pt->node == NO_NODE) {
      c->stale = true;
      cl_err(c, "cluster: slot %d is not served by any master", pt->slot);
      return MISCACHE_ERR_UNAVAILABLE;
    }
  }
  return MISCACHE_OK;
}

/* Send every part that has no reply yet, grouped per node (a node's parts
 * in batch order), write to all nodes, then read from each. */
static void run_parts(miscache__cluster_t *c, plan_t *p, unsigned flags,
                      int64_t deadline, bool only_pending) {
  size_t nn = c->nnodes;
  miscache__pipe_t *pipes = calloc(nn, sizeof *pipes);
  size_t *count = calloc(nn, sizeof *count);
  miscache__cmd_t *cmds = calloc(p->nparts ? 2 * p->nparts : 1, sizeof *cmds);
  size_t *idx = calloc(p->nparts ? 2 * p->nparts : 1, sizeof *idx);
  miscache__reply_t **rs = calloc(p->nparts ? 2 * p->nparts : 1, sizeof *rs);
  miscache_status_t *sent = calloc(nn, sizeof *sent);
  size_t *start = calloc(nn, sizeof *start);
  if (!pipes || !count || !cmds || !idx || !rs || !sent || !start) {
    for (size_t i = 0; i < p->nparts; i++)
      if (!p->parts[i].reply) p->parts[i].st = MISCACHE_ERR_NOMEM;
    cl_err(c, "cluster: out of memory");
    goto done;
  }
  static const char *const asking_argv[] = {"ASKING"};
  static const size_t asking_len[] = {6};
  /* lay the commands out node by node */
  size_t k = 0;
  for (unsigned node = 0; node < nn; node++) {
    start[node] = k;
    for (size_t i = 0; i < p->nparts; i++) {
      part_t *pt = &p->parts[i];
      if (pt->node != node || (only_pending && (pt->reply || pt->st))) continue;
      if (pt->asking) {
        cmds[k] = (miscache__cmd_t){1, asking_argv, asking_len};
        idx[k++] = SIZE_MAX; /* the ASKING reply itself */
      }
      cmds[k] = pt->cmd;
      idx[k++] = i;
    }
    count[node] = k - start[node];
  }
  for (unsigned node = 0; node < nn; node++) {
    if (!count[node]) continue;
    pipes[node].deadline = deadline;
    sent[node] = miscache__node_send(c->nodes[node], MISCACHE__NO_DB,
                                     count[node], cmds + start[node], flags,
                                     &pipes[node]);
  }
  for (unsigned node = 0; node < nn; node++) {
    if (!count[node]) continue;
    miscache_status_t st = sent[node];
    if (st == MISCACHE_OK)
      st = miscache__node_recv(c->nodes[node], rs + start[node], &pipes[node]);
    for (size_t j = start[node]; j < start[node] + count[node]; j++) {
      if (idx[j] == SIZE_MAX) {
        miscache__reply_free(rs[j]);
        continue;
      }
      part_t *pt = &p->parts[idx[j]];
      pt->asking = false;
      if (st == MISCACHE_OK) {
        pt->reply = rs[j];
      } else {
        pt->st = st;
        pt->resendable = pipes[node].resendable;
      }
    }
    if (st != MISCACHE_OK) c->stale = true; /* a failover? reload the map */
  }
done:
  free(pipes);
  free(count);
  free(cmds);
  free(idx);
  free(rs);
  free(sent);
  free(start);
}

/* Error replies that ask for the command to go elsewhere or again: handled
 * here (the command was not executed). true when the part must run again,
 * after *wait_ms (0: now; the pause fits in the deadline). */
static bool redirect_plan(miscache__cluster_t *c, part_t *pt, int64_t deadline,
                          int *wait_ms) {
  *wait_ms = 0;
  if (!pt->reply || miscache__reply_type(pt->reply) != MISCACHE__R_ERROR)
    return false;
  const char *text = miscache__reply_str(pt->reply, NULL);
  bool moved = strncmp(text, "MOVED ", 6) == 0;
  bool ask = strncmp(text, "ASK ", 4) == 0;
  bool again = strncmp(text, "TRYAGAIN", 8) == 0 ||
               strncmp(text, "CLUSTERDOWN", 11) == 0;
  if (!moved && !ask && !again) return false;
  if (moved || ask) {
    if (pt->redirects >= MAX_REDIRECTS) return false;
    unsigned slot;
    char host[256], why[96];
    int port;
    if (!parse_redirect(text, &slot, host, sizeof host, &port, why,
                        sizeof why)) {
      char shown[128];
      cl_err(c, "cluster: a redirection not to follow (%s): %s", why,
             miscache__reply_text(pt->reply, shown, sizeof shown));
      miscache__reply_free(pt->reply);
      pt->reply = NULL;
      pt->st = MISCACHE_ERR_REPLY;
      return false;
    }
    unsigned node = node_for(c, host, port);
    if (node == NO_NODE) return false;
    if (pt->redirects >= 2) {
      /* a third redirection of one command: two nodes disagree about the
       * slot for now (a migration being finalized one node at a time, each
       * sending the command to the other); give them a moment, 1, 2, 4...
       * 64 ms, within the deadline, instead of spending the redirections
       * in a microsecond of ping-pong */
      int wait = 1 << (pt->redirects - 2 < 6 ? pt->redirects - 2 : 6);
      if (miscache__mono_ms() + wait >= deadline) return false;
      *wait_ms = wait;
    }
    pt->redirects++;
    c->stats->redirects++;
    miscache__event(&c->conf.hook, MISCACHE_EV_REDIRECT,
                    miscache__node_addr(c->nodes[node]), 0, 0, "%s slot %u",
                    moved ? "MOVED" : "ASK", (unsigned)slot);
    if (moved) {
      c->slots[slot] = (uint16_t)node;
      c->stale = true; /* reload the whole map before the next batch */
    } else {
      pt->asking = true;
    }
    pt->node = node;
  } else {
    if (pt->retries >= MAX_RETRIES) return false;
    int wait = 10 << pt->retries;
    if (miscache__mono_ms() + wait >= deadline) return false;
    pt->retries++;
    c->stats->cluster_retries++;
    *wait_ms = wait;
    if (strncmp(text, "CLUSTERDOWN", 11) == 0) c->stale = true;
  }
  miscache__reply_free(pt->reply);
  pt->reply = NULL;
  return true;
}

/* The same for a blocking batch: the pause is slept here. */
static bool redirect(miscache__cluster_t *c, part_t *pt, int64_t deadline) {
  int wait = 0;
  bool again = redirect_plan(c, pt, deadline, &wait);
  if (again && wait > 0) sleep_ms(wait);
  return again;
}

/* The caller's reply i from its parts. */
static miscache_status_t merge(miscache__cluster_t *c, plan_t *p, size_t i,
                               const miscache__cmd_t *cmd,
                               miscache__reply_t **out) {
  *out = NULL;
  bool mget = is(cmd, "MGET");
  miscache__reply_t *m = mget ? miscache__reply_new_array((size_t)cmd->argc - 1)
                              : NULL;
  if (mget && !m) goto oom;
  long long sum = 0;
  for (size_t k = 0; k < p->nparts; k++) {
    part_t *pt = &p->parts[k];
    if (pt->origin != i) continue;
    bool get = mget && is(&pt->cmd, "GET"); /* a lone key's GET */
    if (miscache__reply_type(pt->reply) == MISCACHE__R_ERROR ||
        (!mget && miscache__reply_type(pt->reply) != MISCACHE__R_INTEGER) ||
        (mget && !get &&
         miscache__reply_count(pt->reply) != (size_t)pt->cmd.argc - 1)) {
      /* an error (or a surprise) of one part is the command's reply */
      miscache__reply_free(m);
      *out = pt->reply;
      pt->reply = NULL;
      return MISCACHE_OK;
    }
    if (get) {
      miscache__reply_put(m, pt->pos[0], pt->reply);
      pt->reply = NULL;
    } else if (mget) {
      for (size_t e = 0; e + 1 < (size_t)pt->cmd.argc; e++)
        miscache__reply_put(m, pt->pos[e], miscache__reply_take(pt->reply, e));
    } else {
      sum += miscache__reply_int(pt->reply);
    }
  }
  *out = mget ? m : miscache__reply_new_int(sum);
  if (!*out) goto oom;
  return MISCACHE_OK;
oom:
  cl_err(c, "cluster: out of memory merging replies");
  return MISCACHE_ERR_NOMEM;
}

/* The caller's n replies from the parts (a part's failure: its status,
 * message in c->err, and every reply NULL). */
static miscache_status_t collect(miscache__cluster_t *c, plan_t *p, size_t n,
                                 const miscache__cmd_t *cmds,
                                 miscache__reply_t **replies) {
  miscache_status_t st = MISCACHE_OK;
  memset(replies, 0, n * sizeof *replies);
  for (size_t i = 0; i < p->nparts; i++)
    if (p->parts[i].st) {
      st = p->parts[i].st;
      break;
    }
  for (size_t i = 0; st == MISCACHE_OK && i < n; i++) {
    if (!p->split[i]) {
      for (size_t k = 0; k < p->nparts; k++)
        if (p->parts[k].origin == i) {
          replies[i] = p->parts[k].reply;
          p->parts[k].reply = NULL;
        }
    } else {
      st = merge(c, p, i, &cmds[i], &replies[i]);
    }
  }
  if (st != MISCACHE_OK)
    for (size_t i = 0; i < n; i++) {
      miscache__reply_free(replies[i]);
      replies[i] = NULL;
    }
  return st;
}

miscache_status_t miscache__cluster_exec(miscache__cluster_t *c, size_t n,
                                         const miscache__cmd_t *cmds,
                                         miscache__reply_t **replies,
                                         unsigned flags, int on_node,
                                         const unsigned *on_each,
                                         int64_t deadline) {
  memset(replies, 0, n * sizeof *replies);
  if (n == 0) return MISCACHE_OK;
  miscache_status_t st = ensure_map(c, deadline);
  if (st != MISCACHE_OK) return st;
  plan_t p;
  st = plan_batch(c, &p, n, cmds);
  if (st == MISCACHE_OK) st = assign(c, &p, on_node, on_each);
  if (st != MISCACHE_OK) {
    plan_free(&p);
    return st;
  }
  bool txn = (flags & MISCACHE__SAME_CONN) != 0;
  for (size_t i = 0; i < n && !txn; i++) txn = is(&cmds[i], "MULTI");
  run_parts(c, &p, flags, deadline, false);
  /* redirections and one resend of idempotent parts on a fresh connection,
   * all bounded (MAX_REDIRECTS, MAX_RETRIES, the deadline) */
  for (int round = 0; round < MAX_REDIRECTS + MAX_RETRIES; round++) {
    bool rerun = false;
    for (size_t i = 0; i < p.nparts; i++) {
      part_t *pt = &p.parts[i];
      if (!txn && redirect(c, pt, deadline)) rerun = true;
      if (pt->st && pt->resendable && (flags & MISCACHE__IDEMPOTENT) &&
          !txn && round == 0) {
        pt->st = MISCACHE_OK;
        pt->resendable = false;
        c->stats->resends++;
        rerun = true;
      }
    }
    if (!rerun || miscache__mono_ms() >= deadline) break;
    bool *busy = c->stale ? calloc(c->nnodes ? c->nnodes : 1, sizeof *busy)
                          : NULL;
    for (size_t i = 0; busy && i < p.nparts; i++)
      if (p.parts[i].node < c->nnodes) busy[p.parts[i].node] = true;
    size_t nbusy = c->nnodes;
    /* without the busy marks a reload would free nodes the parts use */
    if (busy && miscache__mono_ms() >= c->next_reload_ms &&
        reload(c, deadline, busy, nbusy) == MISCACHE_OK) {
      /* parts that lost their connection go to the slot's owner now */
      for (size_t i = 0; i < p.nparts; i++)
        if (!p.parts[i].reply && !p.parts[i].st && p.parts[i].slot >= 0 &&
            !p.parts[i].asking)
          p.parts[i].node = c->slots[p.parts[i].slot] == NO_NODE
                                ? p.parts[i].node
                                : c->slots[p.parts[i].slot];
    }
    free(busy);
    run_parts(c, &p, flags, deadline, true);
  }
  st = collect(c, &p, n, cmds, replies);
  plan_free(&p);
  return st;
}

/* ---- one call of the async handle (core/async.c) ---------------------------- */

struct miscache__plan {
  miscache__cluster_t *c;
  plan_t p;
  size_t n;
  miscache__cmd_t *cmds; /* the call's commands, copied: the plan's own */
};

void miscache__cluster_keep_nodes(miscache__cluster_t *c) { c->keep_nodes = true; }

miscache__cmd_t *miscache__cmds_copy(size_t n, const miscache__cmd_t *cmds) {
  size_t args = 0, bytes = 0;
  for (size_t i = 0; i < n; i++) {
    args += (size_t)cmds[i].argc;
    for (int k = 0; k < cmds[i].argc; k++) bytes += cmds[i].lens[k] + 1;
  }
  size_t head = n * sizeof(miscache__cmd_t) + args * sizeof(const char *) +
                args * sizeof(size_t);
  char *block = malloc(head + bytes + 1);
  if (!block) return NULL;
  miscache__cmd_t *out = (miscache__cmd_t *)(void *)block;
  const char **argv = (const char **)(void *)(block + n * sizeof *out);
  size_t *lens = (size_t *)(void *)(argv + args);
  char *text = block + head;
  for (size_t i = 0; i < n; i++) {
    out[i] = (miscache__cmd_t){cmds[i].argc, argv, lens};
    for (int k = 0; k < cmds[i].argc; k++) {
      memcpy(text, cmds[i].argv[k], cmds[i].lens[k]);
      text[cmds[i].lens[k]] = 0;
      *argv++ = text;
      *lens++ = cmds[i].lens[k];
      text += cmds[i].lens[k] + 1;
    }
  }
  return out;
}

miscache_status_t miscache__cluster_plan(miscache__cluster_t *c, size_t n,
                                         const miscache__cmd_t *cmds,
                                         int64_t deadline,
                                         miscache__plan_t **out) {
  *out = NULL;
  /* (once loaded, the handle reloads a stale map itself: miscache__map_*) */
  miscache_status_t st = c->loaded ? MISCACHE_OK : ensure_map(c, deadline);
  if (st != MISCACHE_OK) return st;
  miscache__plan_t *pl = calloc(1, sizeof *pl);
  miscache__cmd_t *copy = n ? miscache__cmds_copy(n, cmds) : NULL;
  if (!pl || (n && !copy)) {
    free(pl);
    free(copy);
    cl_err(c, "cluster: out of memory planning %zu commands", n);
    return MISCACHE_ERR_NOMEM;
  }
  pl->c = c;
  pl->n = n;
  pl->cmds = copy;
  st = plan_batch(c, &pl->p, n, copy);
  if (st == MISCACHE_OK) st = assign(c, &pl->p, -1, NULL);
  if (st != MISCACHE_OK) {
    miscache__plan_free(pl);
    return st;
  }
  *out = pl;
  return MISCACHE_OK;
}

size_t miscache__plan_parts(const miscache__plan_t *pl) { return pl->p.nparts; }

const miscache__cmd_t *miscache__plan_part(const miscache__plan_t *pl,
                                           size_t i, unsigned *node,
                                           bool *asking) {
  const part_t *pt = &pl->p.parts[i];
  *node = pt->node;
  *asking = pt->asking;
  return &pt->cmd;
}

const char *miscache__cluster_node_host(const miscache__cluster_t *c,
                                        unsigned node, int *port) {
  *port = 0;
  if (node >= c->nnodes || !c->nodes[node]) return NULL;
  *port = miscache__node_port(c->nodes[node]);
  return miscache__node_host(c->nodes[node]);
}

bool miscache__map_due(const miscache__cluster_t *c) {
  return c->loaded && c->stale && miscache__mono_ms() >= c->next_reload_ms;
}

size_t miscache__map_asked(miscache__cluster_t *c) {
  c->next_reload_ms = miscache__mono_ms() + RELOAD_PAUSE_MS;
  c->stats->master_lookups++;
  return c->reload_turn++;
}

size_t miscache__map_masters(const miscache__cluster_t *c) {
  return c->nmasters;
}

unsigned miscache__map_master(const miscache__cluster_t *c, size_t i) {
  return (unsigned)c->masters[i];
}

miscache_status_t miscache__map_reply(miscache__cluster_t *c, unsigned node,
                                      const miscache__reply_t *r) {
  const miscache__node_t *n = c->nodes[node];
  char why[160], text[256];
  if (!apply_slots(c, r, miscache__node_host(n), why, sizeof why)) {
    cl_err(c, "cluster: redis %s: CLUSTER SLOTS: %s", miscache__node_addr(n),
           miscache__reply_type(r) == MISCACHE__R_ERROR
               ? miscache__reply_text(r, text, sizeof text)
               : why);
    return MISCACHE_ERR_REPLY;
  }
  c->stale = false;
  miscache__event(&c->conf.hook, MISCACHE_EV_SLOTS_RELOADED,
                  miscache__node_addr(n), 0, c->nmasters,
                  "slot map loaded: %zu masters", c->nmasters);
  return MISCACHE_OK;
}

size_t miscache__cluster_node_slots(const miscache__cluster_t *c) {
  return c->nnodes;
}

bool miscache__plan_reply(miscache__plan_t *pl, size_t i,
                          miscache__reply_t *reply, int64_t deadline,
                          int *wait_ms) {
  part_t *pt = &pl->p.parts[i];
  miscache__reply_free(pt->reply);
  pt->reply = reply;
  pt->asking = false;
  return redirect_plan(pl->c, pt, deadline, wait_ms);
}

void miscache__plan_lost(miscache__plan_t *pl) { pl->c->stale = true; }

miscache_status_t miscache__plan_result(miscache__plan_t *pl,
                                        miscache__reply_t **replies) {
  return collect(pl->c, &pl->p, pl->n, pl->cmds, replies);
}

void miscache__plan_free(miscache__plan_t *pl) {
  if (!pl) return;
  plan_free(&pl->p);
  free(pl->cmds);
  free(pl);
}

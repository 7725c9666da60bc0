/*
 * The near cache: decoded values of chosen key families kept in the
 * process, shared by the handles of a pool, kept correct by the server.
 *
 * A background thread holds one connection (its own dispatcher) that runs
 * CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <family>... and
 * SUBSCRIBE __redis__:invalidate, so the server names every key of those
 * families that anybody changes; the thread evicts it (in every db: the
 * message carries none). It was chosen over draining the connection at
 * the start of each read because a hit must not make a system call, and
 * because messages and the liveness PING must be handled while nobody
 * reads.
 *
 * Correctness rests on three rules:
 *  - served only while "confirmed": tracking is on, and a PING sent less
 *    than 2 * ping_ms ago was answered (a hit checks the clock, no
 *    syscall). Losing the connection, or an unanswered PING, empties the
 *    cache and starts a new epoch.
 *  - a value read from Redis is stored only if nothing could have
 *    invalidated it in between: the reader takes a ticket (the epoch and
 *    the counter of the key's stripe) before it sends the GET; an
 *    invalidation message or a local write for any key of that stripe, or
 *    a new epoch, since then makes the store a no-op. So an invalidation
 *    that overtakes the reply it invalidates cannot be lost.
 *  - each entry also dies with the key's Redis TTL (PTTL read with the GET).
 */
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/near_store.h"

#define CHANNEL "__redis__:invalidate"
/* miscache_near_flush_all() publishes here: every near cache on the server
 * drops its store (SWAPDB, a restore: changes tracking does not report) */
#define FLUSH_CHANNEL MISCACHE_NEAR_FLUSH_CHANNEL

/* ---- the links ------------------------------------------------------------ */

/* Serving state from the links (and the map), after any of them changed. */
static void recompute_locked(miscache__near_t *s) {
  bool up = s->nlinks > 0 && (!s->cluster || s->map_ok);
  int64_t until = s->cluster ? s->map_until : INT64_MAX;
  for (size_t i = 0; i < s->nlinks; i++) {
    up = up && s->links[i]->up;
    if (s->links[i]->until < until) until = s->links[i]->until;
  }
  s->up = up;
  s->confirmed_until = until;
  if (up) s->st.error[0] = 0;
}

/* Nothing may be served until it is confirmed again: empty the store. */
static void down_locked(miscache__near_t *s) {
  if (s->up || s->entries) miscache__near_flush_locked(s);
  recompute_locked(s);
}

static void link_down(near_link_t *l, const char *why) {
  miscache__near_t *s = l->s;
  pthread_mutex_lock(&s->mu);
  if (why) snprintf(s->st.error, sizeof s->st.error, "%.159s", why);
  bool was_up = l->up;
  uint64_t dropped = s->entries;
  l->up = false;
  down_locked(s);
  pthread_mutex_unlock(&s->mu);
  if (why && (was_up || dropped)) /* why NULL: stopping, no news */
    miscache__event(&s->link_opts.hook, MISCACHE_EV_NEAR_LOST, l->master, 0,
                    dropped, "near cache not confirmed, store dropped: %s",
                    why ? why : "link stopped");
}

/* A PING sent at sent_ms was answered: this link is confirmed until
 * sent_ms + 2 * ping (behind Sentinel, counted from when the sentinels last
 * named its master if that is earlier). */
static void confirm(near_link_t *l, int64_t sent_ms, bool first) {
  miscache__near_t *s = l->s;
  int64_t vouched = miscache__push_vouched_ms(l->sub);
  int64_t from = vouched < sent_ms ? vouched : sent_ms;
  pthread_mutex_lock(&s->mu);
  if (first) {
    s->epoch++; /* nothing read before this moment is trusted */
    l->up = true;
    s->st.reconnects++;
    snprintf(l->master, sizeof l->master, "%s",
             miscache__disp_master_name(l->sub));
  }
  l->until = from + 2 * (int64_t)s->ping_ms;
  recompute_locked(s);
  pthread_mutex_unlock(&s->mu);
  if (first)
    miscache__event(&s->link_opts.hook, MISCACHE_EV_NEAR_CONFIRMED, l->master,
                    0, 0, "near cache tracking confirmed");
}

static bool is_str(const miscache__reply_t *r, const char *s) {
  size_t len;
  const char *p = miscache__reply_str(r, &len);
  return miscache__reply_is(r, MISCACHE__R_STRING) && len == strlen(s) &&
         strncasecmp(p, s, len) == 0;
}

/* A message: ["message", channel, [keys...] or nil]. Anything else on the
 * invalidation channel (a short array, keys that are not strings) says
 * something changed without saying what: everything goes. */
static void on_message(miscache__near_t *s, const miscache__reply_t *r) {
  const miscache__reply_t *ch = miscache__reply_at(r, 1);
  const miscache__reply_t *keys = miscache__reply_at(r, 2);
  bool flush_all = !is_str(ch, CHANNEL) || miscache__reply_count(r) != 3 ||
                   !miscache__reply_is(keys, MISCACHE__R_ARRAY);
  if (is_str(ch, CHANNEL) && !flush_all)
    for (size_t i = 0; i < miscache__reply_count(keys); i++)
      flush_all = flush_all || !miscache__reply_is(miscache__reply_at(keys, i),
                                                   MISCACHE__R_STRING);
  pthread_mutex_lock(&s->mu);
  if (flush_all) {
    /* nil (FLUSHDB / FLUSHALL, or the server's table overflowed), the
     * flush channel, or a shape that names nothing for sure */
    bool asked = is_str(ch, FLUSH_CHANNEL);
    if (asked) s->st.flush_requests++;
    uint64_t dropped = s->entries;
    miscache__near_flush_locked(s);
    pthread_mutex_unlock(&s->mu);
    miscache__event(&s->link_opts.hook, MISCACHE_EV_NEAR_LOST, "", 0, dropped,
                    "near cache flushed: %s",
                    asked ? "miscache_near_flush_all"
                          : "the server named no keys (FLUSHDB, FLUSHALL)");
    return;
  } else {
    for (size_t i = 0; i < miscache__reply_count(keys); i++) {
      size_t len;
      const char *k = miscache__reply_str(miscache__reply_at(keys, i), &len);
      miscache__near_evict_name(s, k, len, miscache__near_hash(k, len));
      s->st.invalidations++;
    }
  }
  pthread_mutex_unlock(&s->mu);
}

/* Sleep ms unless the store or the link (may be NULL) is stopped. */
static void pause_ms(miscache__near_t *s, near_link_t *l, int ms) {
  while (ms > 0 && !s->stop && !(l && l->stop)) {
    int step = ms < 20 ? ms : 20;
    struct timespec ts = {0, step * 1000000L};
    nanosleep(&ts, NULL);
    ms -= step;
  }
}

/* CLIENT ID, then CLIENT TRACKING ... and SUBSCRIBE in one write (the
 * server runs them back to back: no write of another client can fall
 * between them). OK once both are confirmed. */
static miscache_status_t subscribe(miscache__near_t *s, near_link_t *l) {
  miscache__dispatcher_t *d = l->sub;
  miscache__push_drop(d, false); /* always a fresh connection */
  const char *ia[2] = {"CLIENT", "ID"};
  size_t il[2] = {6, 2};
  miscache__cmd_t idc = {2, ia, il};
  miscache__reply_t *r = NULL;
  miscache_status_t st =
      miscache__disp_run(d, MISCACHE__NO_DB, 1, &idc, &r, 0);
  if (st != MISCACHE_OK) return st;
  if (miscache__reply_type(r) != MISCACHE__R_INTEGER) {
    st = miscache__reply_error(r, "CLIENT ID", l->err, sizeof l->err);
    miscache__reply_free(r);
    return st;
  }
  char id[24];
  snprintf(id, sizeof id, "%lld", miscache__reply_int(r));
  miscache__reply_free(r);
  const char *ta[6 + 2 * MAX_PREFIXES];
  size_t tl[6 + 2 * MAX_PREFIXES];
  int tc = 0;
#define ARG(x, l) (ta[tc] = (x), tl[tc] = (l), tc++)
  ARG("CLIENT", 6), ARG("TRACKING", 8), ARG("ON", 2), ARG("REDIRECT", 8);
  ARG(id, strlen(id)), ARG("BCAST", 5);
  for (size_t i = 0; i < s->nprefixes; i++)
    ARG("PREFIX", 6), ARG(s->prefixes[i].s, s->prefixes[i].len);
#undef ARG
  const char *sa[3] = {"SUBSCRIBE", CHANNEL, FLUSH_CHANNEL};
  size_t sl[3] = {9, strlen(CHANNEL), strlen(FLUSH_CHANNEL)};
  miscache__cmd_t cmds[2] = {{tc, ta, tl}, {3, sa, sl}};
  st = miscache__push_send(d, 2, cmds);
  if (st != MISCACHE_OK) return st;
  /* +OK (or an error) for TRACKING, then the subscribe confirmation */
  int64_t deadline = miscache__mono_ms() + l->o.command_timeout_ms;
  bool tracking = false;
  for (;;) {
    int left = (int)(deadline - miscache__mono_ms());
    if (left <= 0) {
      snprintf(l->err, sizeof l->err,
               "near cache: no answer to CLIENT TRACKING");
      return MISCACHE_ERR_UNAVAILABLE;
    }
    st = miscache__push_read(d, left, &r);
    if (st == MISCACHE_MISS) continue;
    if (st != MISCACHE_OK) return st;
    miscache__rtype_t t = miscache__reply_type(r);
    if (!tracking) {
      if (t != MISCACHE__R_STATUS) {
        st = miscache__reply_error(r, "CLIENT TRACKING", l->err,
                                   sizeof l->err);
        miscache__reply_free(r);
        return st == MISCACHE_OK ? MISCACHE_ERR_REPLY : st;
      }
      tracking = true;
    } else if (miscache__reply_count(r) == 3 &&
               is_str(miscache__reply_at(r, 0), "subscribe") &&
               is_str(miscache__reply_at(r, 1), CHANNEL)) {
      miscache__reply_free(r);
      return MISCACHE_OK;
    } else {
      miscache__reply_free(r);
      snprintf(l->err, sizeof l->err,
               "near cache: unexpected reply to SUBSCRIBE");
      return MISCACHE_ERR_REPLY;
    }
    miscache__reply_free(r);
  }
}

/* Reads messages and keeps the PING going until the connection fails or
 * a PING is not answered within ping_ms. */
static void serve(near_link_t *l) {
  miscache__near_t *s = l->s;
  miscache__dispatcher_t *d = l->sub;
  const char *pa[1] = {"PING"};
  size_t pl[1] = {4};
  miscache__cmd_t ping = {1, pa, pl};
  int64_t sent = 0;      /* the unanswered PING's send time; 0: none */
  int64_t next_ping = 0; /* send the next one then */
  bool first = true;
  while (!s->stop && !l->stop) {
    int64_t now = miscache__mono_ms();
    if (sent && now - sent >= s->ping_ms) { /* not answered in time */
      snprintf(l->err, sizeof l->err,
               "near cache: PING not answered within %d ms", s->ping_ms);
      return;
    }
    if (!sent && now >= next_ping) {
      if (miscache__push_send(d, 1, &ping) != MISCACHE_OK) return;
      sent = now;
      next_ping = now + s->ping_ms / 2; /* two per window: one may be late */
    }
    int64_t until = sent ? sent + s->ping_ms : next_ping;
    int wait = (int)(until - now);
    if (wait > 20) wait = 20; /* look at stop */
    if (wait < 1) wait = 1;
    miscache__reply_t *r = NULL;
    miscache_status_t st = miscache__push_read(d, wait, &r);
    if (st == MISCACHE_MISS) continue;
    if (st != MISCACHE_OK) return;
    if (miscache__reply_type(r) == MISCACHE__R_ARRAY) {
      const miscache__reply_t *kind = miscache__reply_at(r, 0);
      if (is_str(kind, "message")) {
        on_message(s, r);
      } else if (is_str(kind, "pong") && sent) {
        confirm(l, sent, first);
        first = false;
        sent = 0;
      }
    }
    miscache__reply_free(r);
  }
}

static void *link_run(void *arg) {
  near_link_t *l = arg;
  miscache__near_t *s = l->s;
  int backoff = 10;
  while (!s->stop && !l->stop) {
    if (subscribe(s, l) == MISCACHE_OK) {
      backoff = 10;
      serve(l); /* entries are served only after its first PONG */
    }
    /* why it is down, for miscache_near_stats */
    bool stopping = s->stop || l->stop;
    link_down(l, stopping ? NULL : l->err);
    miscache__push_drop(l->sub, stopping);
    pause_ms(s, l, backoff);
    backoff = backoff * 2 > s->ping_ms ? s->ping_ms : backoff * 2;
  }
  return NULL;
}

static void link_free(near_link_t *l) {
  if (!l) return;
  bool child = l->s->gen != miscache__fork_gen();
  if (l->started && !child) {
    l->stop = 1;
    pthread_join(l->thread, NULL);
  }
  miscache__disp_free(l->sub); /* a child only closes its copy of the socket */
  miscache__options_clear(&l->o);
  free(l);
}

/* A link on the options' endpoint, or (m not NULL) on that cluster master,
 * its thread started, in *out; else a status with err set. */
static miscache_status_t link_new(miscache__near_t *s,
                                  const miscache__master_addr_t *m,
                                  near_link_t **out, char *err, size_t errlen) {
  *out = NULL;
  near_link_t *l = calloc(1, sizeof *l);
  if (!l || miscache__options_copy(&l->o, &s->link_opts) != MISCACHE_OK) {
    free(l);
    snprintf(err, errlen, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  l->s = s;
  miscache_status_t st = MISCACHE_OK;
  miscache__endpoint_t *ep = &l->o.ep;
  if (m) { /* that master alone, with the cluster's credentials and TLS */
    free(ep->host);
    for (size_t i = 0; i < ep->naddrs; i++)
      free(ep->addrs[i].host);
    free(ep->addrs);
    ep->addrs = NULL;
    ep->naddrs = 0;
    ep->kind = MISCACHE__EP_TCP;
    ep->port = m->port;
    ep->host = strdup(m->host);
    if (!ep->host) st = MISCACHE_ERR_NOMEM;
  }
  if (st == MISCACHE_OK)
    st = miscache__disp_new(&l->o, l->err, sizeof l->err, &l->sub);
  if (st != MISCACHE_OK) {
    snprintf(err, errlen, "%s",
             st == MISCACHE_ERR_NOMEM ? "out of memory" : l->err);
    miscache__options_clear(&l->o);
    free(l);
    return st;
  }
  /* behind Sentinel: asked which master is in use at the ping interval */
  miscache__push_check_every(l->sub, s->ping_ms);
  if (pthread_create(&l->thread, NULL, link_run, l) != 0) {
    snprintf(err, errlen, "near cache: cannot start its thread: %s",
             strerror(errno));
    link_free(l);
    return MISCACHE_ERR_NOMEM;
  }
  l->started = true;
  *out = l;
  return MISCACHE_OK;
}

/* Stops and frees every link (the mapper thread, or the last reference). */
static void links_clear(miscache__near_t *s) {
  bool child = s->gen != miscache__fork_gen();
  if (!child) pthread_mutex_lock(&s->mu);
  near_link_t **old = s->links;
  size_t n = s->nlinks;
  s->links = NULL;
  s->nlinks = 0;
  if (!child) {
    down_locked(s);
    pthread_mutex_unlock(&s->mu);
  }
  for (size_t i = 0; i < n; i++)
    link_free(old[i]);
  free(old);
}

/* Whether the links are on exactly these masters (both sorted). */
static bool same_masters(miscache__near_t *s, const miscache__master_addr_t *m,
                         size_t n) {
  if (n != s->nlinks) return false;
  for (size_t i = 0; i < n; i++) {
    const miscache__endpoint_t *ep = &s->links[i]->o.ep;
    if (ep->port != m[i].port || strcmp(ep->host, m[i].host) != 0) return false;
  }
  return true;
}

/* Redis Cluster: every ping_ms / 2 the slot map is read again; the store
 * is served only while it names the masters the links are subscribed to
 * (a write on a master nobody here subscribed to would go unseen). A new
 * set of masters (failover, a node added) replaces every link. */
static void *map_run(void *arg) {
  miscache__near_t *s = arg;
  int backoff = 10;
  while (!s->stop) {
    int64_t sent = miscache__mono_ms();
    size_t n = 0;
    miscache__master_addr_t *m =
        miscache__disp_cluster_masters(s->mapper, &n);
    bool same = m && same_masters(s, m, n);
    if (!same) {
      pthread_mutex_lock(&s->mu);
      if (s->map_ok || !m)
        snprintf(s->st.error, sizeof s->st.error, "%.159s",
                 m ? "cluster masters changed: subscribing again"
                   : s->map_err);
      s->map_ok = false;
      down_locked(s);
      pthread_mutex_unlock(&s->mu);
    }
    if (m && !same) {
      links_clear(s);
      near_link_t **nl = calloc(n, sizeof *nl);
      size_t k = 0;
      char err[MISCACHE_ERRMSG_SIZE] = "out of memory";
      while (nl && k < n &&
             link_new(s, &m[k], &nl[k], err, sizeof err) == MISCACHE_OK)
        k++;
      pthread_mutex_lock(&s->mu);
      s->links = nl;
      s->nlinks = nl ? k : 0;
      same = nl && k == n;
      if (!same) snprintf(s->st.error, sizeof s->st.error, "%.159s", err);
      pthread_mutex_unlock(&s->mu);
      if (!same) links_clear(s); /* try again after the pause */
    }
    free(m);
    if (same) {
      pthread_mutex_lock(&s->mu);
      s->map_ok = true;
      s->map_until = sent + 2 * (int64_t)s->ping_ms;
      recompute_locked(s);
      pthread_mutex_unlock(&s->mu);
      backoff = 10;
      int left = (int)(sent + s->ping_ms / 2 - miscache__mono_ms());
      pause_ms(s, NULL, left);
    } else {
      pause_ms(s, NULL, backoff);
      backoff = backoff * 2 > s->ping_ms ? s->ping_ms : backoff * 2;
    }
  }
  return NULL;
}

/* ---- life cycle ------------------------------------------------------------ */

static void near_free(miscache__near_t *s) {
  bool child = s->gen != miscache__fork_gen();
  s->stop = 1;
  if (s->map_started && !child) pthread_join(s->map_thread, NULL);
  links_clear(s);
  miscache__disp_free(s->mapper);
  miscache__options_clear(&s->link_opts);
  if (s->buckets)
    for (size_t b = 0; b < s->nbuckets; b++)
      while (s->buckets[b]) miscache__near_entry_remove(s, &s->buckets[b]);
  free(s->buckets);
  for (size_t i = 0; i < s->nprefixes; i++) free(s->prefixes[i].s);
  miscache__fork_guard_remove(&s->guard);
  if (!child) pthread_mutex_destroy(&s->mu);
  free(s);
}

miscache_status_t miscache__near_new(const miscache_options_t *o,
                                     miscache__near_t **out, char *err,
                                     size_t errlen) {
  *out = NULL;
  miscache__near_t *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  /* readers hold the lock for a hash lookup: spin a little before
   * sleeping, so a hit on a busy pool rarely makes a futex call */
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(&s->mu, &ma);
  pthread_mutexattr_destroy(&ma);
  miscache__fork_guard_add(&s->guard, &s->mu, NULL);
  s->refs = 1;
  s->gen = miscache__fork_gen();
  s->lru.next = s->lru.prev = &s->lru;
  s->max_entries = o->near.max_entries;
  s->max_bytes = o->near.max_bytes;
  s->ping_ms = o->near.ping_ms;
  s->copy = o->near.copy_values;
  s->cluster = o->ep.kind == MISCACHE__EP_CLUSTER;
  s->sentinel = o->ep.kind == MISCACHE__EP_SENTINEL;
  s->st.enabled = true;
  s->nbuckets = 16;
  while (s->nbuckets < s->max_entries && s->nbuckets < ((size_t)1 << 24))
    s->nbuckets <<= 1;
  s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
  if (!s->buckets) goto oom;
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++) {
    if (!((o->near.families >> f) & 1u)) continue;
    const miscache_key_family_t *k = miscache_key_family(f);
    near_prefix_t *p = &s->prefixes[s->nprefixes];
    p->exact = k->nids == 0;
    p->len = strlen(o->ns) + strlen(k->prefix) + (p->exact ? 0 : 1);
    if (!(p->s = malloc(p->len + 1))) goto oom;
    snprintf(p->s, p->len + 1, "%s%s%s", o->ns, k->prefix,
             p->exact ? "" : ":");
    s->nprefixes++;
    s->families |= 1ull << f;
  }
  /* the links' dispatchers: same endpoint and settings */
  if (miscache__options_copy(&s->link_opts, o) != MISCACHE_OK) goto oom;
  miscache_status_t st;
  if (s->cluster) { /* the mapper thread makes the links */
    st = miscache__disp_new(&s->link_opts, s->map_err, sizeof s->map_err,
                            &s->mapper);
    if (st != MISCACHE_OK) snprintf(err, errlen, "%s", s->map_err);
    if (st == MISCACHE_OK && pthread_create(&s->map_thread, NULL, map_run, s)) {
      snprintf(err, errlen, "near cache: cannot start its thread: %s",
               strerror(errno));
      st = MISCACHE_ERR_NOMEM;
    }
    s->map_started = st == MISCACHE_OK;
  } else {
    near_link_t *l = NULL;
    if (!(s->links = malloc(sizeof *s->links))) goto oom;
    st = link_new(s, NULL, &l, err, errlen);
    if (st == MISCACHE_OK) {
      pthread_mutex_lock(&s->mu);
      s->links[0] = l;
      s->nlinks = 1;
      recompute_locked(s);
      pthread_mutex_unlock(&s->mu);
    }
  }
  if (st != MISCACHE_OK) {
    near_free(s);
    return st;
  }
  *out = s;
  return MISCACHE_OK;
oom:
  if (s) near_free(s);
  snprintf(err, errlen, "out of memory");
  return MISCACHE_ERR_NOMEM;
}

miscache__near_t *miscache__near_ref(miscache__near_t *s) {
  if (s) {
    pthread_mutex_lock(&s->mu);
    s->refs++;
    pthread_mutex_unlock(&s->mu);
  }
  return s;
}

void miscache__near_unref(miscache__near_t *s) {
  if (!s) return;
  if (s->gen != miscache__fork_gen()) { /* a child: never touch the lock */
    if (--s->refs == 0) near_free(s);
    return;
  }
  pthread_mutex_lock(&s->mu);
  unsigned left = --s->refs;
  pthread_mutex_unlock(&s->mu);
  if (left == 0) near_free(s);
}

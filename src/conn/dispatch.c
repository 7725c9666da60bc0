/*
 * The dispatcher: the one place every command of an endpoint goes through
 * (conn.h). It picks the node that serves the batch, runs it, and owns
 * what happens when that fails: the one resend of an idempotent batch whose
 * old connection was found lost, and, behind Sentinel, finding the master
 * again. Nothing above this folder touches a node or a connection, and
 * nothing here knows a handle: the owner gives its options and its error
 * buffer (a handle's, or a near-cache link's).
 *
 * Sentinel: the sentinels are asked in turn (the last one that answered
 * first) for get-master-addr-by-name; the address they give must answer
 * ROLE with "master". A lost connection, a READONLY reply or a ROLE that is
 * not master makes the next call ask again, at most once per
 * backoff_min_ms, so a failover costs each handle a few small requests,
 * not a storm; until then such calls fail at once rather than reconnect to
 * an address nobody vouched for (a demoted master would serve stale reads).
 * And the sentinels are asked again every MASTER_CHECK_MS even when all is
 * well: a forced failover leaves the old master accepting writes until the
 * sentinels demote it, which can take many seconds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define MASTER_CHECK_MS 1000

struct miscache__dispatcher {
  const miscache_options_t *o; /* the owner's: outlives the dispatcher */
  char *err;                   /* the owner's message buffer */
  size_t errlen;
  miscache__tls_t *tls;
  miscache__node_conf_t data_conf; /* for the data nodes */
  miscache__node_t *master;        /* standalone: the node; Sentinel: the
                                      master in use, NULL before the first */
  bool sentinel;
  miscache__node_t **sentinels;
  size_t nsentinels;
  size_t next_sentinel;    /* ask this one first */
  bool resolve;            /* ask the sentinels before the next command */
  int64_t next_resolve_ms; /* not before this (CLOCK_MONOTONIC ms) */
  int64_t check_at_ms;     /* ask again even if all is well after this */
  int check_ms;            /* that period: MASTER_CHECK_MS, or the near
                              cache's ping interval on its subscriber */
  int64_t vouched_ms;      /* when the sentinels last named the master in
                              use (asked at), 0: never */
  miscache__cluster_t *cluster; /* Redis Cluster: the router */
  bool push; /* the near cache's subscriber (miscache__push_send) */
  miscache_link_stats_t stats;
};

static void set_err(miscache__dispatcher_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_err(miscache__dispatcher_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, d->errlen, fmt, ap);
  va_end(ap);
}

/* ---- set-up ------------------------------------------------------------- */

miscache_status_t miscache__disp_new(const miscache_options_t *o, char *err,
                                     size_t errlen,
                                     miscache__dispatcher_t **out) {
  const miscache__endpoint_t *ep = &o->ep;
  *out = NULL;
  miscache__dispatcher_t *d = calloc(1, sizeof *d);
  if (!d) {
    snprintf(err, errlen, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  d->o = o;
  d->err = err;
  d->errlen = errlen;
  snprintf(d->stats.transport, sizeof d->stats.transport, "%s",
           ep->kind == MISCACHE__EP_UNIX ? "unix" : ep->tls ? "tls" : "tcp");
  if (ep->tls) {
    miscache_status_t st =
        miscache__tls_new(&ep->tls_conf, &d->tls, d->err, d->errlen);
    if (st != MISCACHE_OK) {
      free(d);
      return st;
    }
  }
  d->data_conf = (miscache__node_conf_t){
      .connect_timeout_ms = d->o->connect_timeout_ms,
      .command_timeout_ms = d->o->command_timeout_ms,
      .limits = d->o->limits,
      .backoff_min_ms = d->o->backoff_min_ms,
      .hook = d->o->hook,
      .backoff_max_ms = d->o->backoff_max_ms,
      .user = ep->user,
      .password = ep->password,
      .tls = d->tls};
  if (ep->kind == MISCACHE__EP_CLUSTER) {
    d->cluster = miscache__cluster_new(ep, &d->data_conf, &d->stats, d->err,
                                       d->errlen);
    if (!d->cluster) goto oom;
    snprintf(d->stats.master, sizeof d->stats.master, "cluster");
  } else if (ep->kind == MISCACHE__EP_SENTINEL) {
    d->sentinel = true;
    d->resolve = true;
    d->check_ms = MASTER_CHECK_MS;
    d->sentinels = calloc(ep->naddrs, sizeof *d->sentinels);
    if (!d->sentinels) goto oom;
    miscache__node_conf_t sc = d->data_conf;
    sc.user = ep->sentinel_user;
    sc.password = ep->sentinel_password;
    for (size_t i = 0; i < ep->naddrs; i++) {
      d->sentinels[i] = miscache__node_new(ep->addrs[i].host, ep->addrs[i].port,
                                           NULL, &sc, &d->stats, d->err,
                                           d->errlen);
      if (!d->sentinels[i]) goto oom;
      d->nsentinels++;
    }
  } else {
    d->master = miscache__node_new(ep->host, ep->port, ep->path, &d->data_conf,
                                   &d->stats, d->err, d->errlen);
    if (!d->master) goto oom;
    snprintf(d->stats.master, sizeof d->stats.master, "%s",
             miscache__node_addr(d->master));
  }
  *out = d;
  return MISCACHE_OK;
oom:
  miscache__disp_free(d);
  snprintf(err, errlen, "out of memory");
  return MISCACHE_ERR_NOMEM;
}

void miscache__disp_free(miscache__dispatcher_t *d) {
  if (!d) return;
  miscache__node_free(d->master);
  miscache__cluster_free(d->cluster);
  for (size_t i = 0; i < d->nsentinels; i++)
    miscache__node_free(d->sentinels[i]);
  free(d->sentinels);
  miscache__tls_free(d->tls);
  free(d);
}

void miscache__disp_stats(const miscache__dispatcher_t *d,
                          miscache_link_stats_t *out) {
  *out = d->stats;
  out->nodes_down = d->master && miscache__node_down(d->master);
  for (size_t i = 0; i < d->nsentinels; i++)
    out->nodes_down += miscache__node_down(d->sentinels[i]);
}

/* ---- Sentinel -------------------------------------------------------------- */

static miscache__cmd_t cmd_of(int argc, const char *const *argv,
                              size_t *lens) {
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  return (miscache__cmd_t){argc, argv, lens};
}

/* One command on node with one resend on a stale connection. */
static miscache_status_t ask(miscache__node_t *n, int argc,
                             const char *const *argv, int64_t deadline,
                             miscache__reply_t **r) {
  size_t lens[4];
  miscache__cmd_t c = cmd_of(argc, argv, lens);
  return miscache__node_ask(n, &c, r, deadline);
}

/* Whether n's reply r to ROLE says it is a master. Message set when not. */
static miscache_status_t role_verdict(miscache__dispatcher_t *d,
                                      const miscache__node_t *n,
                                      const miscache__reply_t *r,
                                      const char *sentinel) {
  const miscache__reply_t *role = miscache__reply_at(r, 0);
  char name[64] = "?";
  if (role) miscache__reply_text(role, name, sizeof name);
  if (role && strcmp(miscache__reply_str(role, NULL), "master") == 0)
    return MISCACHE_OK;
  set_err(d,
          "redis %s: named master of \"%s\" by sentinel %s but its ROLE is "
          "\"%s\" (a failover is under way)",
          miscache__node_addr(n), d->o->ep.master, sentinel, name);
  return MISCACHE_ERR_UNAVAILABLE;
}

/* Whether the node says it is a master (ROLE). Message set when not. */
static miscache_status_t check_role(miscache__dispatcher_t *d,
                                    miscache__node_t *n,
                                    const char *sentinel, int64_t deadline) {
  static const char *const argv[] = {"ROLE"};
  miscache__reply_t *r = NULL;
  miscache_status_t st = ask(n, 1, argv, deadline, &r);
  if (st != MISCACHE_OK) return st;
  st = role_verdict(d, n, r, sentinel);
  miscache__reply_free(r);
  if (st != MISCACHE_OK) miscache__node_drop(n);
  return st;
}

/* Sentinel s's reply r to get-master-addr-by-name: OK with the master's
 * address (*host points into r), else ERR_AUTH (it refused us) or
 * ERR_UNAVAILABLE, and why in last. */
static miscache_status_t sentinel_named(miscache__dispatcher_t *d,
                                        const miscache__node_t *s,
                                        const miscache__reply_t *r,
                                        const char **host, int *port,
                                        char *last, size_t lastlen) {
  const char *name = d->o->ep.master;
  if (miscache__reply_type(r) == MISCACHE__R_ERROR) {
    char what[96];
    snprintf(what, sizeof what, "sentinel %s", miscache__node_addr(s));
    return miscache__reply_error(r, what, last, lastlen) == MISCACHE_ERR_AUTH
               ? MISCACHE_ERR_AUTH
               : MISCACHE_ERR_UNAVAILABLE;
  }
  const miscache__reply_t *h = miscache__reply_at(r, 0);
  const miscache__reply_t *p = miscache__reply_at(r, 1);
  if (!h || !p || miscache__reply_type(h) != MISCACHE__R_STRING ||
      miscache__reply_type(p) != MISCACHE__R_STRING) {
    snprintf(last, lastlen, "sentinel %s: does not know the master \"%s\"",
             miscache__node_addr(s), name);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  size_t hlen, plen;
  *host = miscache__reply_str(h, &hlen);
  const char *ps = miscache__reply_str(p, &plen);
  *port = 0;
  char why[96] = "a host name with a NUL byte";
  if (!miscache__parse_port(ps, plen, port) || strlen(*host) != hlen ||
      !miscache__peer_addr_ok(*host, hlen, *port, why, sizeof why)) {
    char shown[48];
    miscache__escape(shown, sizeof shown, ps, plen);
    if (!*port) snprintf(why, sizeof why, "port \"%s\" not in 1..65535", shown);
    snprintf(last, lastlen,
             "sentinel %s: named for \"%s\" an address not to connect to: %s",
             miscache__node_addr(s), name, why);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  return MISCACHE_OK;
}

/* The sentinels named host:port at asked: *moved when that is not the
 * master in use (the next connect asks them again, at once). */
static void vouched(miscache__dispatcher_t *d, const char *host, int port,
                    int64_t asked, bool *moved) {
  *moved = !d->master || !miscache__node_is(d->master, host, port);
  d->vouched_ms = asked;
  d->check_at_ms = miscache__mono_ms() + d->check_ms;
}

/* host:port, named by the sentinels, becomes the master in use (a new
 * node when it moved: the old one is freed). OK or ERR_NOMEM. */
static miscache_status_t adopt_master(miscache__dispatcher_t *d,
                                      const char *host, int port) {
  if (d->master && miscache__node_is(d->master, host, port))
    return MISCACHE_OK;
  miscache__node_t *m = miscache__node_new(host, port, NULL, &d->data_conf,
                                           &d->stats, d->err, d->errlen);
  if (!m) {
    set_err(d, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  if (d->master) {
    d->stats.failovers++;
    miscache__event(&d->data_conf.hook, MISCACHE_EV_FAILOVER,
                    miscache__node_addr(m), 0, d->stats.failovers,
                    "master moved from %s", miscache__node_addr(d->master));
  }
  miscache__node_free(d->master);
  d->master = m;
  snprintf(d->stats.master, sizeof d->stats.master, "%s",
           miscache__node_addr(m));
  return MISCACHE_OK;
}

/* No sentinel named the master: the message. */
static void no_master(miscache__dispatcher_t *d, const char *last) {
  set_err(d, "no master for \"%s\" from %zu sentinel%s (last: %s)",
          d->o->ep.master, d->nsentinels, d->nsentinels == 1 ? "" : "s", last);
}

/* Ask the sentinels for the master and make it the one in use (checking
 * its ROLE when new). */
static miscache_status_t resolve_master(miscache__dispatcher_t *d,
                                        int64_t deadline) {
  const char *name = d->o->ep.master;
  d->next_resolve_ms = miscache__mono_ms() + d->o->backoff_min_ms;
  d->stats.master_lookups++;
  char last[MISCACHE_ERRMSG_SIZE] = "no sentinel answered";
  bool refused = false; /* a sentinel refused our AUTH (or its absence) */
  const char *const argv[] = {"SENTINEL", "get-master-addr-by-name", name};
  for (size_t k = 0; k < d->nsentinels; k++) {
    size_t i = (d->next_sentinel + k) % d->nsentinels;
    miscache__node_t *s = d->sentinels[i];
    /* one sentinel that hangs must leave time to ask the others */
    int64_t asked = miscache__mono_ms();
    int64_t share = asked + d->o->command_timeout_ms / 2;
    miscache__reply_t *r = NULL;
    miscache_status_t st =
        ask(s, 3, argv, share < deadline ? share : deadline, &r);
    if (st != MISCACHE_OK) {
      refused = refused || st == MISCACHE_ERR_AUTH;
      snprintf(last, sizeof last, "%s", d->err);
      continue;
    }
    const char *host = NULL;
    int port = 0;
    st = sentinel_named(d, s, r, &host, &port, last, sizeof last);
    if (st != MISCACHE_OK) {
      refused = refused || st == MISCACHE_ERR_AUTH;
      miscache__reply_free(r);
      continue;
    }
    d->next_sentinel = i;
    st = adopt_master(d, host, port);
    miscache__reply_free(r);
    if (st != MISCACHE_OK) return st;
    /* the connection we have to it proved itself already, unless lost */
    st = miscache__node_alive(d->master, d->push)
             ? MISCACHE_OK
             : check_role(d, d->master, miscache__node_addr(s), deadline);
    if (st == MISCACHE_OK) { /* (host is gone with r: the node is it) */
      d->resolve = false;
      d->vouched_ms = asked;
      d->check_at_ms = miscache__mono_ms() + d->check_ms;
      return MISCACHE_OK;
    }
    snprintf(last, sizeof last, "%s", d->err);
    if (st != MISCACHE_ERR_UNAVAILABLE) return st; /* AUTH, TLS: say so */
  }
  no_master(d, last);
  /* set the sentinels' AUTH with miscache_options_set_sentinel_auth() */
  return refused ? MISCACHE_ERR_AUTH : MISCACHE_ERR_UNAVAILABLE;
}

/* A READONLY error reply: the node was demoted to a replica. */
static bool readonly_reply(miscache__reply_t **replies, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (miscache__reply_type(replies[i]) == MISCACHE__R_ERROR &&
        strncmp(miscache__reply_str(replies[i], NULL), "READONLY", 8) == 0)
      return true;
  return false;
}

/* ---- dispatch -------------------------------------------------------------- */

/* Sentinel: make sure the master is known, and still the master, before a
 * command. */
/* Inside the pause between two lookups: the call fails at once. */
static miscache_status_t resolve_paused(miscache__dispatcher_t *d,
                                        int64_t now) {
  d->stats.fast_failures++;
  set_err(d, "master of \"%s\" %s; asking the sentinels again in %lld ms",
          d->o->ep.master, d->master ? "lost" : "unknown",
          (long long)(d->next_resolve_ms - now));
  return MISCACHE_ERR_UNAVAILABLE;
}

static miscache_status_t ensure_master(miscache__dispatcher_t *d,
                                       unsigned flags, int64_t deadline) {
  if (!d->sentinel) return MISCACHE_OK;
  if (flags & MISCACHE__SAME_CONN) { /* inside a transaction: no switching */
    if (!d->resolve && d->master) return MISCACHE_OK;
    set_err(d, "%s: the master changed during the transaction",
                      d->o->ep.master);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  int64_t now = miscache__mono_ms();
  bool periodic = !d->resolve && d->master;
  if (periodic && now < d->check_at_ms) return MISCACHE_OK;
  if (!periodic && now < d->next_resolve_ms) return resolve_paused(d, now);
  char saved[MISCACHE_ERRMSG_SIZE];
  snprintf(saved, sizeof saved, "%s", d->err);
  miscache_status_t st = resolve_master(d, deadline);
  if (st != MISCACHE_OK && periodic) {
    /* the sentinels are unreachable but the master answers: keep it */
    snprintf(d->err, d->errlen, "%s", saved);
    d->check_at_ms = now + d->check_ms;
    return MISCACHE_OK;
  }
  return st;
}

size_t miscache__disp_nodes(miscache__dispatcher_t *d) {
  if (!d->cluster) return 1;
  return miscache__cluster_masters(
      d->cluster, miscache__mono_ms() + d->o->command_timeout_ms);
}

size_t miscache__disp_node_count(const miscache__dispatcher_t *d) {
  return d->cluster ? miscache__cluster_node_count(d->cluster)
                    : 1 + d->nsentinels;
}

bool miscache__disp_is_cluster(const miscache__dispatcher_t *d) {
  return d->cluster != NULL;
}

const char *miscache__disp_master_name(const miscache__dispatcher_t *d) {
  return d->stats.master;
}

static int cmp_master(const void *a, const void *b) {
  const miscache__master_addr_t *x = a, *y = b;
  int c = strcmp(x->host, y->host);
  return c ? c : (x->port > y->port) - (x->port < y->port);
}

miscache__master_addr_t *
miscache__disp_cluster_masters(miscache__dispatcher_t *d, size_t *n) {
  *n = 0;
  if (!d->cluster) {
    set_err(d, "not a Redis Cluster");
    return NULL;
  }
  int64_t deadline = miscache__mono_ms() + d->o->command_timeout_ms;
  if (miscache__cluster_connect(d->cluster, deadline) != MISCACHE_OK)
    return NULL; /* message set */
  size_t k = miscache__cluster_masters(d->cluster, deadline);
  miscache__master_addr_t *m = k ? calloc(k, sizeof *m) : NULL;
  if (!m) {
    set_err(d, k ? "out of memory" : "cluster: no master");
    return NULL;
  }
  for (size_t i = 0; i < k; i++) {
    const char *h = miscache__cluster_master_host(d->cluster, i, &m[i].port);
    snprintf(m[i].host, sizeof m[i].host, "%s", h);
  }
  qsort(m, k, sizeof *m, cmp_master);
  *n = k;
  return m;
}

miscache_status_t miscache__disp_connect(miscache__dispatcher_t *d) {
  if (d->cluster)
    return miscache__cluster_connect(
        d->cluster, miscache__mono_ms() + d->o->command_timeout_ms);
  if (d->sentinel)
    return ensure_master(
        d, 0, miscache__mono_ms() + d->o->command_timeout_ms);
  return miscache__node_connect(d->master);
}

miscache_status_t miscache__disp_run(miscache__dispatcher_t *d, int db,
                                     size_t n, const miscache__cmd_t *cmds,
                                     miscache__reply_t **replies,
                                     unsigned flags) {
  return miscache__disp_run_on(d, db, n, cmds, NULL, replies, flags);
}

miscache_status_t miscache__disp_run_on(miscache__dispatcher_t *d, int db,
                                        size_t n, const miscache__cmd_t *cmds,
                                        const unsigned *on_each,
                                        miscache__reply_t **replies,
                                        unsigned flags) {
  int physical = db < 0 ? MISCACHE__NO_DB : d->o->db[db];
  int64_t deadline = miscache__mono_ms() + d->o->command_timeout_ms;
  if (d->cluster) /* one db: no SELECT */
    return miscache__cluster_exec(d->cluster, n, cmds, replies, flags,
                                  (int)(flags >> 8) - 1, on_each, deadline);
  int unsent = 0;
  for (int attempt = 0;; attempt++) {
    memset(replies, 0, n * sizeof *replies);
    miscache_status_t st = ensure_master(d, flags, deadline);
    if (st != MISCACHE_OK) return st;
    /* Sentinel: a lost connection (a demoted master closes its clients) is
     * not reopened blindly; the sentinels say whom to reconnect to, after
     * ROLE says master */
    miscache__pipe_t info;
    st = miscache__node_exec(d->master, physical, n, cmds, replies,
                             flags | (d->sentinel ? MISCACHE__NO_CONNECT : 0),
                             deadline, &info);
    if (st != MISCACHE_OK && info.unconnected && unsent++ < 2) {
      d->resolve = true; /* nothing was sent: ask, then send; not a try */
      attempt--;
      continue;
    }
    if (st == MISCACHE_OK) {
      if (!d->sentinel || !readonly_reply(replies, n)) return MISCACHE_OK;
      /* demoted: nothing of a refused write ran, so one command, or an
       * idempotent batch, goes again to the master the sentinels name */
      d->resolve = true;
      miscache__node_drop(d->master);
      if (attempt > 0 || (flags & MISCACHE__SAME_CONN) ||
          !(n == 1 || (flags & MISCACHE__IDEMPOTENT)))
        return MISCACHE_OK; /* the READONLY reply maps to ERR_UNAVAILABLE */
      for (size_t i = 0; i < n; i++) miscache__reply_free(replies[i]);
      d->next_resolve_ms = 0;
      d->stats.resends++;
      continue;
    }
    if (d->sentinel && st == MISCACHE_ERR_UNAVAILABLE) d->resolve = true;
    if (info.resendable && (flags & MISCACHE__IDEMPOTENT) && attempt == 0) {
      d->stats.resends++;
      continue;
    }
    return st;
  }
}

/* ---- the near cache's subscriber connection ------------------------------ */

miscache_status_t miscache__push_send(miscache__dispatcher_t *d, size_t n,
                                      const miscache__cmd_t *cmds) {
  if (d->cluster) {
    set_err(d, "push connection: not on a Redis Cluster");
    return MISCACHE_ERR_INVALID;
  }
  int64_t deadline = miscache__mono_ms() + d->o->command_timeout_ms;
  d->push = true;
  miscache_status_t st = ensure_master(d, 0, deadline);
  if (st != MISCACHE_OK) return st;
  miscache__pipe_t p = {.deadline = deadline};
  return miscache__node_send(d->master, MISCACHE__NO_DB, n, cmds,
                             MISCACHE__PUSH | MISCACHE__NO_CONNECT, &p);
}

miscache_status_t miscache__push_read(miscache__dispatcher_t *d,
                                      int timeout_ms,
                                      miscache__reply_t **reply) {
  *reply = NULL;
  if (d->cluster || !d->master) {
    set_err(d, "push connection: not connected");
    return MISCACHE_ERR_UNAVAILABLE;
  }
  miscache_status_t st = miscache__node_poll(
      d->master, miscache__mono_ms() + timeout_ms, reply);
  if (st != MISCACHE_OK && st != MISCACHE_MISS && d->sentinel)
    d->resolve = true; /* lost: ask the sentinels before reconnecting */
  return st;
}

void miscache__push_check_every(miscache__dispatcher_t *d, int ms) {
  if (d->sentinel) d->check_ms = ms;
}

int64_t miscache__push_vouched_ms(const miscache__dispatcher_t *d) {
  return d->sentinel ? d->vouched_ms : INT64_MAX;
}

void miscache__push_drop(miscache__dispatcher_t *d, bool quiet) {
  if (d->master) miscache__node_drop_quiet(d->master, quiet);
  if (d->sentinel) d->resolve = true;
}

miscache_status_t miscache__disp_async_node(miscache__dispatcher_t *d,
                                            miscache__node_t **out) {
  *out = NULL;
  if (d->cluster) { /* the handle's own connections; the map from here */
    miscache__cluster_keep_nodes(d->cluster);
    return miscache__cluster_connect(
        d->cluster, miscache__mono_ms() + d->o->command_timeout_ms);
  }
  miscache_status_t st =
      ensure_master(d, 0, miscache__mono_ms() + d->o->command_timeout_ms);
  *out = d->master; /* (a failed lookup may have replaced it too) */
  return st;
}

struct miscache__cluster *miscache__disp_cluster(miscache__dispatcher_t *d) {
  return d->cluster;
}

struct miscache__node *miscache__disp_node_new(miscache__dispatcher_t *d,
                                               const char *host, int port) {
  return miscache__node_new(host, port, NULL, &d->data_conf, &d->stats,
                            d->err, d->errlen);
}

int64_t miscache__disp_check_at(const miscache__dispatcher_t *d) {
  return d->sentinel && d->master && !d->resolve ? d->check_at_ms : 0;
}

void miscache__disp_master_lost(miscache__dispatcher_t *d) {
  if (d->sentinel) d->resolve = true;
}

bool miscache__disp_is_sentinel(const miscache__dispatcher_t *d) {
  return d->sentinel;
}

/* ---- the async handle's Sentinel check (core/async.c) --------------------- */

size_t miscache__disp_sentinel_count(const miscache__dispatcher_t *d) {
  return d->nsentinels;
}

size_t miscache__disp_sentinel_first(const miscache__dispatcher_t *d) {
  return d->next_sentinel;
}

const char *miscache__disp_sentinel_master(const miscache__dispatcher_t *d) {
  return d->o->ep.master ? d->o->ep.master : "";
}

struct miscache__node *miscache__disp_sentinel_node_new(
    miscache__dispatcher_t *d, size_t i) {
  miscache__node_conf_t sc = d->data_conf;
  sc.user = d->o->ep.sentinel_user;
  sc.password = d->o->ep.sentinel_password;
  return miscache__node_new(d->o->ep.addrs[i].host, d->o->ep.addrs[i].port,
                            NULL, &sc, &d->stats, d->err, d->errlen);
}

void miscache__disp_check_asked(miscache__dispatcher_t *d) {
  d->stats.master_lookups++;
  d->check_at_ms = miscache__mono_ms() + d->check_ms; /* (one at a time) */
}

miscache_status_t miscache__disp_check_answer(miscache__dispatcher_t *d,
                                              size_t i,
                                              const miscache__reply_t *r,
                                              int64_t asked, bool *moved) {
  *moved = false;
  const char *host = NULL;
  int port = 0;
  char last[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st =
      sentinel_named(d, d->sentinels[i], r, &host, &port, last, sizeof last);
  if (st != MISCACHE_OK) {
    set_err(d, "%s", last);
    return st;
  }
  if (!d->sentinel || !d->master || d->resolve) return MISCACHE_OK;
  d->next_sentinel = i;
  vouched(d, host, port, asked, moved);
  if (*moved) { /* the next call connects to the master they name now */
    d->resolve = true;
    d->next_resolve_ms = 0;
  }
  return MISCACHE_OK;
}

bool miscache__disp_master_unknown(const miscache__dispatcher_t *d) {
  return d->sentinel && (d->resolve || !d->master);
}

miscache_status_t miscache__disp_resolve_begin(miscache__dispatcher_t *d) {
  int64_t now = miscache__mono_ms();
  if (now < d->next_resolve_ms) return resolve_paused(d, now);
  d->next_resolve_ms = now + d->o->backoff_min_ms;
  d->stats.master_lookups++;
  return MISCACHE_OK;
}

miscache_status_t miscache__disp_resolve_answer(miscache__dispatcher_t *d,
                                                size_t i,
                                                const miscache__reply_t *r,
                                                int64_t asked,
                                                struct miscache__node **out,
                                                char *last, size_t lastlen) {
  *out = NULL;
  const char *host = NULL;
  int port = 0;
  miscache_status_t st =
      sentinel_named(d, d->sentinels[i], r, &host, &port, last, lastlen);
  if (st == MISCACHE_OK) st = adopt_master(d, host, port);
  if (st != MISCACHE_OK) return st;
  d->next_sentinel = i;
  d->vouched_ms = asked;
  *out = d->master;
  return MISCACHE_OK;
}

miscache_status_t miscache__disp_resolve_role(miscache__dispatcher_t *d,
                                              size_t i,
                                              const miscache__reply_t *r) {
  miscache_status_t st = role_verdict(d, d->master, r,
                                      miscache__node_addr(d->sentinels[i]));
  if (st != MISCACHE_OK) return st;
  d->resolve = false;
  d->check_at_ms = miscache__mono_ms() + d->check_ms;
  return MISCACHE_OK;
}

void miscache__disp_resolve_failed(miscache__dispatcher_t *d,
                                   const char *last) {
  no_master(d, last[0] ? last : "no sentinel answered");
}

/* The non-blocking handle (async.h) and the engine its calls are built on
 * (core.h, "the async engine"): a call queues its commands on the node's
 * output buffer and one request in a FIFO; the loop's readiness and timer
 * calls write, read and complete them in order. Replies come back in the
 * order the commands went out, so the FIFO's head owns the next reply; a
 * SELECT put in front of a request is answered first. The calls
 * themselves (what they send, how they read the replies) are in
 * ops/async_ops.c and the domain files. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/cluster.h"
#include "conn/node.h"
#include "core/core.h"
#include "miscache/async.h"

typedef struct creq creq_t;

/* A call as its caller made it: the completion and the latency figures. */
typedef struct {
  int64_t t0_us;           /* when it was queued: its latency starts */
  miscache__call_t call;   /* for the latency figures */
  char verb[16], key[128]; /* call's: the name, the start of the key */
  miscache__async_done_fn done;
  void *op;
} callrec_t;

/* One request on one connection: a call (standalone, Sentinel), or one
 * part of a cluster call (cr set; its reply goes to the call's plan). */
typedef struct req {
  struct req *next;
  bool select_first; /* a SELECT's reply comes before this one's */
  int64_t deadline_ms;
  callrec_t c;  /* unless cr */
  creq_t *cr;   /* the cluster call it is a part of, or NULL */
  size_t part;  /* cr's part */
  bool internal; /* the handle's own (a slot map load): not a call */
  int held_db;                /* held (Sentinel lookup): its db, and */
  miscache__cmd_t *held_cmds; /* its commands, copied (else NULL) */
  size_t n, got;                /* replies expected, in */
  miscache__reply_t *replies[]; /* n */
} req_t;

/* A cluster call: its commands split by slot into parts, each sent to the
 * node that serves it (again after a redirection); done once every part
 * has its final reply, or failed. */
struct creq {
  callrec_t c;
  miscache__plan_t *plan;
  size_t n;    /* the caller's commands (and replies) */
  size_t left; /* parts still waiting */
  int64_t deadline_ms;
  miscache_status_t st; /* the first failure of a part */
  char why[MISCACHE_ERRMSG_SIZE];
};

/* A part to send again later (TRYAGAIN, CLUSTERDOWN: the pause between
 * retries that the blocking API sleeps). */
typedef struct delay {
  struct delay *next;
  creq_t *cr;
  size_t part;
  int64_t at;
} delay_t;

/* One connection and the requests in flight on it, in order. */
typedef struct link {
  miscache__node_t *node;
  bool owned;            /* the handle's node (freed with the handle) */
  bool aside;            /* a sentinel's: asked by the handle, no calls */
  int read_fd, write_fd; /* what the loop watches now; -1: nothing */
  bool write_waits_read; /* TLS: the next write needs a readable socket */
  req_t *head, *tail;
} link_t;

struct miscache_async {
  miscache_t *mc; /* keys, TTLs, near store; its dispatcher's node is ours */
  struct miscache__cluster *cluster; /* a cluster's router, or NULL */
  bool sentinel; /* ask the dispatcher for the node on reconnect */
  /* standalone, Sentinel: links[0], on the dispatcher's node (behind
   * Sentinel the master's, replaced when it moves), then one per sentinel
   * (made when first asked); a cluster: one per router node number, made
   * when first used (NULL until then) */
  link_t **links;
  size_t nlinks;
  delay_t *delays;
  bool map_asking; /* a CLUSTER SLOTS of the handle's is in flight */
  /* Sentinel: the periodic check in flight, the sentinels asked so far */
  bool check_asking;
  size_t check_first, check_tries;
  int64_t check_asked_ms;
  /* Sentinel: the lookup of a lost master under way (ask the sentinels in
   * turn, then the ROLE of the one they name), and the calls made
   * meanwhile, held in order until it ends */
  bool resolving, resolve_refused;
  size_t resolve_first, resolve_tries, resolve_sentinel;
  int64_t resolve_asked_ms;
  char resolve_last[MISCACHE_ERRMSG_SIZE];
  req_t *held_head, *held_tail;
  char msg[MISCACHE_ERRMSG_SIZE]; /* why the last call refused to start */
  miscache_async_loop_t loop;
  bool attached;
  bool timer_set;
  miscache__async_wait_t *waits; /* operations waiting on a loader */
  size_t outstanding;
  int depth;    /* inside the handle's own callbacks */
  bool freeing; /* miscache_async_free was called */
};

miscache_t *miscache__async_mc(miscache_async_t *a) { return a->mc; }

const miscache_t *miscache_async_figures(const miscache_async_t *a) {
  return a ? a->mc : NULL;
}

void miscache__async_refuse(miscache_async_t *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->msg, sizeof a->msg, fmt, ap);
  va_end(ap);
}

miscache_status_t miscache__async_check(miscache_async_t *a, bool args_ok,
                                        const char *what) {
  if (!a) return MISCACHE_ERR_INVALID;
  if (a->freeing) {
    miscache__async_refuse(a, "%s: the handle is being freed", what);
    return MISCACHE_ERR_CANCELLED;
  }
  if (!args_ok) {
    miscache__async_refuse(a, "%s: bad argument", what);
    return MISCACHE_ERR_INVALID;
  }
  return MISCACHE_OK;
}

miscache_status_t miscache__async_reply_ok(const miscache__reply_t *r,
                                           char *why, size_t whylen) {
  if (miscache__reply_type(r) != MISCACHE__R_ERROR) return MISCACHE_OK;
  char shown[256];
  snprintf(why, whylen, "server error: %s",
           miscache__reply_text(r, shown, sizeof shown));
  return MISCACHE_ERR_SERVER;
}

static void callrec_init(callrec_t *c, size_t n, const miscache__cmd_t *cmds,
                         miscache__async_done_fn done, void *op) {
  c->t0_us = miscache__mono_us();
  miscache__call_info(n, cmds, &c->call);
  if (n) { /* (cmds are the caller's: copies for the completion) */
    memcpy(c->verb, c->call.verb, c->call.vlen);
    c->call.verb = c->verb;
  }
  if (c->call.key) { /* (the family of a slow call needs only its start) */
    c->call.klen = c->call.klen < sizeof c->key ? c->call.klen : sizeof c->key;
    memcpy(c->key, c->call.key, c->call.klen);
    c->call.key = c->key;
  }
  c->done = done;
  c->op = op;
}

/* ---- completing ------------------------------------------------------------ */

static void part_done(miscache_async_t *a, req_t *r, miscache_status_t st,
                      const char *why);

/* A caller's call (counted in outstanding), not a part or the handle's own. */
static bool counted(const req_t *r) { return !r->cr && !r->internal; }

static void complete(miscache_async_t *a, req_t *r, miscache_status_t st,
                     const char *why) {
  if (r->cr) {
    part_done(a, r, st, why);
    return;
  }
  if (st == MISCACHE_OK && !r->internal)
    miscache__observe_call(a->mc, &r->c.call, miscache__mono_us() - r->c.t0_us);
  a->depth++;
  r->c.done(a, r->c.op, st, st == MISCACHE_OK ? r->replies : NULL,
            st == MISCACHE_OK ? r->n : 0, why ? why : "");
  a->depth--;
  for (size_t i = 0; i < r->got; i++) miscache__reply_free(r->replies[i]);
  free(r->held_cmds);
  free(r);
}

static req_t *pop(miscache_async_t *a, link_t *L) {
  req_t *r = L->head;
  if (r) {
    L->head = r->next;
    if (!L->head) L->tail = NULL;
    if (counted(r)) a->outstanding--;
  }
  return r;
}

/* ---- the loop's interest ------------------------------------------------------ */

/* Sentinel: when the sentinels are to be asked again (0: not now). */
static int64_t sentinel_check_at(const miscache_async_t *a) {
  return a->sentinel ? miscache__disp_check_at(a->mc->disp) : 0;
}

/* Watch what L's state asks for: read while connected, write while bytes
 * wait (while connecting: what the connect waits for). */
static void link_interest(miscache_async_t *a, link_t *L) {
  int fd = miscache__node_fd(L->node);
  int want_read = fd;
  int want_write =
      fd >= 0 && miscache__node_unsent(L->node) && !L->write_waits_read ? fd
                                                                        : -1;
  if (miscache__node_connecting(L->node)) {
    bool w = miscache__node_connect_wants_write(L->node);
    want_read = w ? -1 : fd;
    want_write = w ? fd : -1;
  }
  if (L->read_fd >= 0 && L->read_fd != want_read) {
    a->loop.del_read(a->loop.data, L->read_fd);
    L->read_fd = -1;
  }
  if (L->write_fd >= 0 && L->write_fd != want_write) {
    a->loop.del_write(a->loop.data, L->write_fd);
    L->write_fd = -1;
  }
  if (want_read >= 0 && L->read_fd < 0) {
    a->loop.add_read(a->loop.data, want_read);
    L->read_fd = want_read;
  }
  if (want_write >= 0 && L->write_fd < 0) {
    a->loop.add_write(a->loop.data, want_write);
    L->write_fd = want_write;
  }
}

/* Every link's interest, and the timer at the first of: a request's
 * deadline, a connect's, the Sentinel check, a delayed resend. */
static void update_interest(miscache_async_t *a) {
  if (!a->attached) return;
  int64_t at = 0;
  for (size_t i = 0; i < a->nlinks; i++) {
    link_t *L = a->links[i];
    if (!L) continue;
    link_interest(a, L);
    if (!L->head) continue;
    int64_t t = L->head->deadline_ms;
    int64_t conn = miscache__node_connect_deadline(L->node);
    if (conn && conn < t) t = conn;
    if (i == 0 && !a->check_asking) { /* (handle_timer asks) */
      int64_t check = sentinel_check_at(a);
      if (check && check < t) t = check;
    }
    if (!at || t < at) at = t;
  }
  for (delay_t *d = a->delays; d; d = d->next)
    if (!at || d->at < at) at = d->at;
  if (a->held_head && (!at || a->held_head->deadline_ms < at))
    at = a->held_head->deadline_ms;
  if (at) {
    int64_t left = at - miscache__mono_ms();
    a->loop.set_timer(a->loop.data, left > 0 ? left : 0);
    a->timer_set = true;
  } else if (a->timer_set) {
    a->loop.set_timer(a->loop.data, -1);
    a->timer_set = false;
  }
}

/* Sentinel: time to ask the sentinels whether the master in use still is. */
static bool check_due(const miscache_async_t *a) {
  int64_t at = sentinel_check_at(a);
  return at && miscache__mono_ms() >= at;
}

/* Stop watching a socket about to close. */
static void unwatch(miscache_async_t *a, link_t *L) {
  if (!a->attached) return;
  if (L->read_fd >= 0) a->loop.del_read(a->loop.data, L->read_fd);
  if (L->write_fd >= 0) a->loop.del_write(a->loop.data, L->write_fd);
  L->read_fd = L->write_fd = -1;
}

/* Close the connection and what was queued on it; behind Sentinel the
 * next call asks which node is the master. */
static void drop_connection(miscache_async_t *a, link_t *L) {
  unwatch(a, L); /* before the socket closes */
  L->write_waits_read = false;
  miscache__node_async_drop(L->node);
  if (!a->cluster && !L->aside) miscache__disp_master_lost(a->mc->disp);
}

/* Every request queued on L completes with st (the connection is gone or
 * out of step: later replies could not be told apart). */
static void fail_all(miscache_async_t *a, link_t *L, miscache_status_t st,
                     const char *why) {
  drop_connection(a, L);
  char text[MISCACHE_ERRMSG_SIZE];
  snprintf(text, sizeof text, "%s", why);
  /* the requests of the lost connection only: calls the callbacks make
   * now go out on a new one */
  req_t *r = L->head;
  L->head = L->tail = NULL;
  while (r) {
    req_t *next = r->next;
    if (counted(r)) a->outstanding--;
    complete(a, r, st, text);
    r = next;
  }
}

/* ---- queueing ------------------------------------------------------------------- */

/* Queue n commands on L as one request: a call (cr NULL: done, op; with
 * internal the handle's own) or a part of cr. Not OK: nothing queued,
 * message in a->msg. */
static miscache_status_t queue_on(miscache_async_t *a, link_t *L, int db,
                                  size_t n, const miscache__cmd_t *cmds,
                                  int64_t deadline_ms,
                                  miscache__async_done_fn done, void *op,
                                  creq_t *cr, size_t part, bool internal) {
  req_t *r = calloc(1, sizeof *r + n * sizeof r->replies[0]);
  if (!r) {
    miscache__async_refuse(a, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  bool sel = false;
  miscache_status_t st = miscache__node_queue(L->node, db, n, cmds, &sel);
  if (st != MISCACHE_OK) {
    free(r);
    miscache__async_refuse(a, "%s", a->mc->err);
    return st;
  }
  r->select_first = sel;
  r->deadline_ms = deadline_ms;
  r->n = n;
  r->cr = cr;
  r->part = part;
  r->internal = internal;
  if (!cr) {
    callrec_init(&r->c, n, cmds, done, op);
    if (!internal) a->outstanding++;
  }
  if (L->tail) L->tail->next = r;
  else L->head = r;
  L->tail = r;
  /* written when the loop says the socket is writable: the calls of one
   * turn go out together */
  if (a->depth == 0) update_interest(a);
  return MISCACHE_OK;
}

/* The connection to cluster node number node (made when first used). */
static link_t *cluster_link(miscache_async_t *a, unsigned node) {
  if (node >= a->nlinks) {
    size_t n = miscache__cluster_node_slots(a->cluster);
    if (n <= node) n = node + 1;
    link_t **grown = realloc(a->links, n * sizeof *grown);
    if (!grown) return NULL;
    for (size_t i = a->nlinks; i < n; i++) grown[i] = NULL;
    a->links = grown;
    a->nlinks = n;
  }
  if (!a->links[node]) {
    link_t *L = calloc(1, sizeof *L);
    int port = 0;
    const char *host = miscache__cluster_node_host(a->cluster, node, &port);
    if (L && host) L->node = miscache__disp_node_new(a->mc->disp, host, port);
    if (!L || !L->node) {
      free(L);
      return NULL;
    }
    L->owned = true;
    L->read_fd = L->write_fd = -1;
    a->links[node] = L;
  }
  return a->links[node];
}

/* Send part of cr to the node the plan names (ASKING first after an ASK
 * redirection: its reply is dropped). */
static miscache_status_t send_part(miscache_async_t *a, creq_t *cr,
                                   size_t part) {
  static const char *const asking_argv[] = {"ASKING"};
  static const size_t asking_len[] = {6};
  unsigned node = 0;
  bool asking = false;
  const miscache__cmd_t *cmd =
      miscache__plan_part(cr->plan, part, &node, &asking);
  link_t *L = cluster_link(a, node);
  if (!L) {
    miscache__async_refuse(a, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  miscache__cmd_t cmds[2];
  size_t n = 0;
  if (asking) cmds[n++] = (miscache__cmd_t){1, asking_argv, asking_len};
  cmds[n++] = *cmd;
  return queue_on(a, L, MISCACHE__NO_DB, n, cmds, cr->deadline_ms, NULL, NULL,
                  cr, part, false);
}

/* Every part of cr has its reply, or one failed: the caller's callback. */
static void creq_finish(miscache_async_t *a, creq_t *cr) {
  miscache_status_t st = cr->st;
  miscache__reply_t **replies = NULL;
  if (st == MISCACHE_OK) {
    replies = calloc(cr->n ? cr->n : 1, sizeof *replies);
    st = replies ? miscache__plan_result(cr->plan, replies) : MISCACHE_ERR_NOMEM;
    if (st != MISCACHE_OK)
      snprintf(cr->why, sizeof cr->why, "%s",
               replies ? a->mc->err : "out of memory");
  }
  if (st == MISCACHE_OK)
    miscache__observe_call(a->mc, &cr->c.call,
                           miscache__mono_us() - cr->c.t0_us);
  a->outstanding--;
  a->depth++;
  cr->c.done(a, cr->c.op, st, st == MISCACHE_OK ? replies : NULL,
             st == MISCACHE_OK ? cr->n : 0, st == MISCACHE_OK ? "" : cr->why);
  a->depth--;
  if (replies)
    for (size_t i = 0; i < cr->n; i++) miscache__reply_free(replies[i]);
  free(replies);
  miscache__plan_free(cr->plan);
  free(cr);
}

/* A part of cr ended: with its final reply (st OK) or failed. */
static void part_end(miscache_async_t *a, creq_t *cr, miscache_status_t st,
                     const char *why) {
  if (st != MISCACHE_OK) {
    miscache__plan_lost(cr->plan); /* the map is checked before the next */
    if (cr->st == MISCACHE_OK) {
      cr->st = st;
      snprintf(cr->why, sizeof cr->why, "%s", why);
    }
  }
  if (--cr->left == 0) creq_finish(a, cr);
}

/* Send part again (after a redirection or a pause). */
static void resend(miscache_async_t *a, creq_t *cr, size_t part) {
  miscache_status_t st =
      a->freeing ? MISCACHE_ERR_CANCELLED : send_part(a, cr, part);
  if (st != MISCACHE_OK)
    part_end(a, cr, st,
             a->freeing ? "cancelled: the async handle was freed before the "
                          "reply came"
                        : a->msg);
}

static void part_done(miscache_async_t *a, req_t *r, miscache_status_t st,
                      const char *why) {
  creq_t *cr = r->cr;
  size_t part = r->part;
  miscache__reply_t *reply = NULL;
  if (st == MISCACHE_OK) { /* (after ASKING, the part's is the second) */
    reply = r->replies[r->n - 1];
    r->replies[r->n - 1] = NULL;
  }
  for (size_t i = 0; i < r->got; i++) miscache__reply_free(r->replies[i]);
  free(r);
  if (st != MISCACHE_OK) {
    part_end(a, cr, st, why);
    return;
  }
  int wait = 0;
  if (!miscache__plan_reply(cr->plan, part, reply, cr->deadline_ms, &wait)) {
    part_end(a, cr, MISCACHE_OK, NULL);
    return;
  }
  if (wait > 0 && !a->freeing) {
    delay_t *d = calloc(1, sizeof *d);
    if (d) {
      *d = (delay_t){a->delays, cr, part, miscache__mono_ms() + wait};
      a->delays = d;
      return;
    }
  }
  resend(a, cr, part);
}

/* The reply to the handle's CLUSTER SLOTS (op: the node asked). A failure
 * keeps the map in use; the next call after the pause asks again. */
static void map_done(miscache_async_t *a, void *op, miscache_status_t st,
                     miscache__reply_t **replies, size_t n, const char *why) {
  (void)n, (void)why;
  a->map_asking = false;
  if (st == MISCACHE_OK)
    (void)miscache__map_reply(a->cluster, (unsigned)(uintptr_t)op, replies[0]);
}

/* A stale slot map (a MOVED, a lost master): CLUSTER SLOTS on one of the
 * handle's connections, a master's in turn whose breaker is closed, never
 * a blocking request; the calls meanwhile use the map as it is (a MOVED
 * has corrected its slot already). */
static void map_reload(miscache_async_t *a) {
  static const char *const argv[] = {"CLUSTER", "SLOTS"};
  static const size_t lens[] = {7, 5};
  const miscache__cmd_t cmd = {2, argv, lens};
  if (a->map_asking || !miscache__map_due(a->cluster)) return;
  char saved[sizeof a->msg];
  memcpy(saved, a->msg, sizeof saved); /* (the caller's message stays) */
  size_t turn = miscache__map_asked(a->cluster);
  size_t nm = miscache__map_masters(a->cluster);
  size_t all = miscache__cluster_node_slots(a->cluster);
  for (size_t k = 0; k < nm + all && !a->map_asking; k++) {
    unsigned node = k < nm ? miscache__map_master(a->cluster, (turn + k) % nm)
                           : (unsigned)(k - nm);
    link_t *L = cluster_link(a, node);
    if (!L || miscache__node_down(L->node)) continue;
    a->map_asking =
        queue_on(a, L, MISCACHE__NO_DB, 1, &cmd,
                 miscache__mono_ms() + a->mc->opts.command_timeout_ms,
                 map_done, (void *)(uintptr_t)node, NULL, 0,
                 true) == MISCACHE_OK;
  }
  memcpy(a->msg, saved, sizeof saved);
}

/* A call on a cluster: planned, then each part queued on its node's
 * connection. The first part refused: the call is refused (nothing went
 * out); a later one: the call fails through its callback. */
static miscache_status_t cluster_send(miscache_async_t *a, size_t n,
                                      const miscache__cmd_t *cmds,
                                      miscache__async_done_fn done, void *op) {
  map_reload(a);
  int64_t deadline = miscache__mono_ms() + a->mc->opts.command_timeout_ms;
  miscache__plan_t *pl = NULL;
  miscache_status_t st =
      miscache__cluster_plan(a->cluster, n, cmds, deadline, &pl);
  if (st != MISCACHE_OK) {
    miscache__async_refuse(a, "%s", a->mc->err);
    return st;
  }
  size_t parts = miscache__plan_parts(pl);
  creq_t *cr = parts ? calloc(1, sizeof *cr) : NULL;
  if (!cr) {
    miscache__plan_free(pl);
    miscache__async_refuse(a, parts ? "out of memory" : "nothing to send");
    return parts ? MISCACHE_ERR_NOMEM : MISCACHE_ERR_INVALID;
  }
  callrec_init(&cr->c, n, cmds, done, op);
  cr->plan = pl;
  cr->n = n;
  cr->left = parts;
  cr->deadline_ms = deadline;
  a->outstanding++;
  for (size_t i = 0; i < parts; i++) {
    st = send_part(a, cr, i);
    if (st == MISCACHE_OK) continue;
    if (i == 0) {
      a->outstanding--;
      miscache__plan_free(pl);
      free(cr);
      return st;
    }
    cr->st = st;
    snprintf(cr->why, sizeof cr->why, "%s", a->msg);
    cr->left -= parts - i; /* (the queued ones finish it) */
    break;
  }
  a->msg[0] = 0;
  return MISCACHE_OK;
}

/* ---- the Sentinel check ------------------------------------------------------
 * Once a second while calls are made the sentinels are asked whether the
 * master in use still is (a forced failover leaves the old one taking
 * writes until they demote it): on the handle's own connection to each
 * sentinel, in turn until one answers, never a blocking request. */

static void check_ask(miscache_async_t *a);

static void check_done(miscache_async_t *a, void *op, miscache_status_t st,
                       miscache__reply_t **replies, size_t n,
                       const char *why) {
  (void)n, (void)why;
  a->check_asking = false;
  if (st == MISCACHE_ERR_CANCELLED || a->freeing) return;
  char saved[MISCACHE_ERRMSG_SIZE]; /* (a call's message stays) */
  snprintf(saved, sizeof saved, "%s", a->mc->err);
  bool moved = false;
  if (st == MISCACHE_OK)
    st = miscache__disp_check_answer(a->mc->disp, (size_t)(uintptr_t)op,
                                     replies[0], a->check_asked_ms, &moved);
  snprintf(a->mc->err, MISCACHE_ERRMSG_SIZE, "%s", saved);
  if (st != MISCACHE_OK) { /* no answer: the next sentinel */
    check_ask(a);
    return;
  }
  if (!moved) return;
  link_t *L0 = a->links[0];
  if (!L0->head) { /* nothing in flight: the next call connects anew */
    drop_connection(a, L0);
    return;
  }
  /* a forced failover: the old master takes writes until demoted */
  char text[MISCACHE_ERRMSG_SIZE];
  snprintf(text, sizeof text,
           "redis %s: the sentinels name another master now (a failover); "
           "the calls sent to this one are failed",
           miscache__node_addr(L0->node));
  fail_all(a, L0, MISCACHE_ERR_UNAVAILABLE, text);
}

/* The connection to sentinel i (made when first asked). */
static link_t *sentinel_link(miscache_async_t *a, size_t i) {
  if (1 + i >= a->nlinks) return NULL;
  if (!a->links[1 + i]) {
    link_t *L = calloc(1, sizeof *L);
    if (L) L->node = miscache__disp_sentinel_node_new(a->mc->disp, i);
    if (!L || !L->node) {
      free(L);
      return NULL;
    }
    L->owned = L->aside = true;
    L->read_fd = L->write_fd = -1;
    a->links[1 + i] = L;
  }
  return a->links[1 + i];
}

/* Ask the next sentinel not tried yet (from first; *tries so far) for the
 * master, done to get its reply; one that hangs has half the command
 * timeout, as in the blocking API. OK when one was asked (at *asked);
 * else none is left (last, when given: why the last could not be). */
static miscache_status_t ask_sentinel(miscache_async_t *a, size_t first,
                                      size_t *tries, int64_t *asked,
                                      miscache__async_done_fn done,
                                      char *last) {
  const char *argv[3] = {"SENTINEL", "get-master-addr-by-name",
                         miscache__disp_sentinel_master(a->mc->disp)};
  size_t lens[3] = {8, 23, strlen(argv[2])};
  const miscache__cmd_t cmd = {3, argv, lens};
  size_t n = miscache__disp_sentinel_count(a->mc->disp);
  char saved[sizeof a->msg];
  memcpy(saved, a->msg, sizeof saved); /* (the caller's message stays) */
  miscache_status_t st = MISCACHE_ERR_UNAVAILABLE;
  while (st != MISCACHE_OK && !a->freeing && *tries < n) {
    size_t i = (first + (*tries)++) % n;
    link_t *L = sentinel_link(a, i);
    if (!L || miscache__node_down(L->node)) continue;
    *asked = miscache__mono_ms();
    st = queue_on(a, L, MISCACHE__NO_DB, 1, &cmd,
                  *asked + a->mc->opts.command_timeout_ms / 2, done,
                  (void *)(uintptr_t)i, NULL, 0, true);
    if (st != MISCACHE_OK && last)
      snprintf(last, MISCACHE_ERRMSG_SIZE, "%s", a->msg);
  }
  memcpy(a->msg, saved, sizeof saved);
  return st;
}

/* The check's next sentinel; none left: the master in use is kept until
 * the next check. */
static void check_ask(miscache_async_t *a) {
  a->check_asking = ask_sentinel(a, a->check_first, &a->check_tries,
                                 &a->check_asked_ms, check_done,
                                 NULL) == MISCACHE_OK;
}

/* The check, when one is due and none is in flight. */
static void check_start(miscache_async_t *a) {
  if (!a->sentinel || a->check_asking || a->freeing || !check_due(a)) return;
  miscache__disp_check_asked(a->mc->disp);
  a->check_first = miscache__disp_sentinel_first(a->mc->disp);
  a->check_tries = 0;
  check_ask(a);
}

/* ---- the lookup of a lost master (Sentinel) ---------------------------------
 * After a failover or a lost connection the sentinels are asked for the
 * master, then it for its ROLE, on the handle's connections, as the
 * blocking API does with blocking requests; the calls made meanwhile are
 * held and go out, in order, once it is a master (or fail with the
 * lookup). */

/* The held calls go out on the master's connection (st OK) or fail. */
static void resolve_end(miscache_async_t *a, miscache_status_t st,
                        const char *why) {
  char text[MISCACHE_ERRMSG_SIZE];
  snprintf(text, sizeof text, "%s", why ? why : "");
  a->resolving = false;
  req_t *r = a->held_head; /* (only behind Sentinel: links[0] is there) */
  link_t *L = r ? a->links[0] : NULL;
  a->held_head = a->held_tail = NULL;
  while (r) {
    req_t *next = r->next;
    r->next = NULL;
    bool sel = false;
    miscache_status_t qs =
        st != MISCACHE_OK ? st
        : a->freeing      ? MISCACHE_ERR_CANCELLED
                          : miscache__node_queue(L->node, r->held_db, r->n,
                                                 r->held_cmds, &sel);
    if (qs == MISCACHE_OK) {
      free(r->held_cmds);
      r->held_cmds = NULL;
      r->select_first = sel;
      if (L->tail) L->tail->next = r;
      else L->head = r;
      L->tail = r;
    } else {
      a->outstanding--;
      complete(a, r, qs, st != MISCACHE_OK ? text : a->mc->err);
    }
    r = next;
  }
}

static void role_done(miscache_async_t *a, void *op, miscache_status_t st,
                      miscache__reply_t **replies, size_t n,
                      const char *why) {
  (void)op, (void)n;
  if (st == MISCACHE_ERR_CANCELLED || a->freeing) return; /* (finish) */
  if (st == MISCACHE_OK) {
    st = miscache__disp_resolve_role(a->mc->disp, a->resolve_sentinel,
                                     replies[0]);
    why = a->mc->err;
    /* no master: the next call asks the sentinels again */
    if (st != MISCACHE_OK) miscache__disp_master_lost(a->mc->disp);
  }
  resolve_end(a, st, why);
}

static miscache_status_t resolve_ask(miscache_async_t *a);

static void resolve_done(miscache_async_t *a, void *op, miscache_status_t st,
                         miscache__reply_t **replies, size_t n,
                         const char *why) {
  (void)n;
  if (st == MISCACHE_ERR_CANCELLED || a->freeing) return; /* (finish) */
  size_t i = (size_t)(uintptr_t)op;
  miscache__node_t *master = NULL;
  if (st == MISCACHE_OK)
    st = miscache__disp_resolve_answer(a->mc->disp, i, replies[0],
                                       a->resolve_asked_ms, &master,
                                       a->resolve_last, sizeof a->resolve_last);
  else
    snprintf(a->resolve_last, sizeof a->resolve_last, "%s", why);
  if (st != MISCACHE_OK) {
    a->resolve_refused = a->resolve_refused || st == MISCACHE_ERR_AUTH;
    st = resolve_ask(a); /* (none left: AUTH when one refused us) */
    if (st != MISCACHE_OK) resolve_end(a, st, a->mc->err);
    return;
  }
  /* (the old node, if it moved, is freed: nothing was queued on it) */
  link_t *L = a->links[0];
  L->node = master;
  a->resolve_sentinel = i;
  static const char *const argv[] = {"ROLE"};
  static const size_t lens[] = {4};
  const miscache__cmd_t cmd = {1, argv, lens};
  char saved[sizeof a->msg];
  memcpy(saved, a->msg, sizeof saved);
  st = queue_on(a, L, MISCACHE__NO_DB, 1, &cmd,
                miscache__mono_ms() + a->mc->opts.command_timeout_ms,
                role_done, NULL, NULL, 0, true);
  memcpy(a->msg, saved, sizeof saved);
  if (st != MISCACHE_OK) resolve_end(a, st, a->mc->err);
}

/* The lookup's next sentinel; none left: not OK (the message says what
 * the last one said). */
static miscache_status_t resolve_ask(miscache_async_t *a) {
  if (ask_sentinel(a, a->resolve_first, &a->resolve_tries,
                   &a->resolve_asked_ms, resolve_done,
                   a->resolve_last) == MISCACHE_OK)
    return MISCACHE_OK;
  miscache__disp_resolve_failed(a->mc->disp, a->resolve_last);
  return a->resolve_refused ? MISCACHE_ERR_AUTH : MISCACHE_ERR_UNAVAILABLE;
}

/* Start the lookup (nothing is in flight on the master's connection). */
static miscache_status_t resolve_start(miscache_async_t *a) {
  miscache_status_t st = miscache__disp_resolve_begin(a->mc->disp);
  if (st != MISCACHE_OK) return st;
  link_t *L = a->links[0];
  if (miscache__node_fd(L->node) >= 0) { /* (a demoted master's) */
    unwatch(a, L);
    L->write_waits_read = false;
    miscache__node_async_drop(L->node);
  }
  a->resolve_first = miscache__disp_sentinel_first(a->mc->disp);
  a->resolve_tries = 0;
  a->resolve_refused = false;
  a->resolve_last[0] = 0;
  st = resolve_ask(a);
  a->resolving = st == MISCACHE_OK;
  return st;
}

/* Hold a call until the lookup ends. */
static miscache_status_t hold(miscache_async_t *a, int db, size_t n,
                              const miscache__cmd_t *cmds,
                              miscache__async_done_fn done, void *op) {
  req_t *r = calloc(1, sizeof *r + n * sizeof r->replies[0]);
  miscache__cmd_t *copy = r && n ? miscache__cmds_copy(n, cmds) : NULL;
  if (!r || (n && !copy)) {
    free(r);
    miscache__async_refuse(a, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  r->held_db = db;
  r->held_cmds = copy;
  r->n = n;
  r->deadline_ms = miscache__mono_ms() + a->mc->opts.command_timeout_ms;
  callrec_init(&r->c, n, cmds, done, op);
  a->outstanding++;
  if (a->held_tail) a->held_tail->next = r;
  else a->held_head = r;
  a->held_tail = r;
  a->msg[0] = 0;
  if (a->depth == 0) update_interest(a);
  return MISCACHE_OK;
}

miscache_status_t miscache__async_send(miscache_async_t *a, miscache_db_t db,
                                       size_t n, const miscache__cmd_t *cmds,
                                       miscache__async_done_fn done, void *op) {
  if (a->freeing) { /* (an internal step of a call completed during free) */
    miscache__async_refuse(a, "the handle is being freed");
    return MISCACHE_ERR_CANCELLED;
  }
  if (a->cluster) return cluster_send(a, n, cmds, done, op);
  link_t *L = a->links[0];
  check_start(a); /* (Sentinel: once a second) */
  if (a->sentinel && !a->resolving && !L->head &&
      miscache__disp_master_unknown(a->mc->disp)) {
    /* reconnecting: to the master the sentinels name now */
    miscache_status_t st = resolve_start(a);
    if (st != MISCACHE_OK) {
      miscache__async_refuse(a, "%s", a->mc->err);
      return st;
    }
  }
  if (a->resolving) return hold(a, a->mc->opts.db[db], n, cmds, done, op);
  miscache_status_t st =
      queue_on(a, L, a->mc->opts.db[db], n, cmds,
               miscache__mono_ms() + a->mc->opts.command_timeout_ms, done, op,
               NULL, 0, false);
  if (st == MISCACHE_OK) a->msg[0] = 0;
  return st;
}

/* ---- the loop's calls ------------------------------------------------------------ */

static void finish(miscache_async_t *a);

void miscache__async_enter(miscache_async_t *a) { a->depth++; }

void miscache__async_leave(miscache_async_t *a) {
  a->depth--;
  if (!a->freeing && a->depth == 0) update_interest(a);
  finish(a);
}

/* The connect under way on L goes on (its socket is ready for what it
 * waits for): connected, not yet, or failed (every call queued on it
 * fails). */
static void connect_progress(miscache_async_t *a, link_t *L) {
  unwatch(a, L); /* a step may close the socket for the next address */
  miscache_status_t st = miscache__node_connect_step(L->node);
  if (st != MISCACHE_OK && st != MISCACHE_MISS) fail_all(a, L, st, a->mc->err);
}

static void link_write(miscache_async_t *a, link_t *L) {
  if (miscache__node_connecting(L->node)) {
    connect_progress(a, L);
    return;
  }
  bool want_read = false;
  miscache_status_t st = miscache__node_flush(L->node, &want_read);
  L->write_waits_read = st == MISCACHE_OK && want_read;
  if (st != MISCACHE_OK) fail_all(a, L, st, a->mc->err);
}

/* The replies that have arrived on L, to their requests. */
static void take_replies(miscache_async_t *a, link_t *L,
                         miscache_status_t read_st, const char *read_err) {
  miscache_status_t st = MISCACHE_OK;
  for (;;) {
    miscache__reply_t *reply = NULL;
    st = miscache__node_take(L->node, &reply);
    if (st == MISCACHE_MISS) break;
    if (st != MISCACHE_OK) {
      fail_all(a, L, st, a->mc->err);
      return;
    }
    req_t *r = L->head;
    if (!r) { /* a reply nobody asked for: out of step */
      miscache__reply_free(reply);
      fail_all(a, L, MISCACHE_ERR_REPLY, "a reply nobody asked for");
      return;
    }
    if (a->sentinel && !L->aside &&
        miscache__reply_type(reply) == MISCACHE__R_ERROR &&
        strncmp(miscache__reply_str(reply, NULL), "READONLY", 8) == 0) {
      /* the master was demoted: nothing sent to it will land */
      char why[MISCACHE_ERRMSG_SIZE];
      snprintf(why, sizeof why,
               "redis %s: READONLY: the master was demoted (a failover); "
               "the sentinels are asked again on the next call",
               miscache__node_addr(L->node));
      miscache__reply_free(reply);
      fail_all(a, L, MISCACHE_ERR_UNAVAILABLE, why);
      return;
    }
    if (r->select_first) {
      r->select_first = false;
      bool ok = miscache__reply_type(reply) == MISCACHE__R_STATUS;
      miscache__reply_free(reply);
      if (!ok) { /* the db was refused: what follows ran elsewhere */
        fail_all(a, L, MISCACHE_ERR_SERVER,
                 "SELECT refused (is the db number within the server's "
                 "databases?)");
        return;
      }
      continue;
    }
    r->replies[r->got++] = reply;
    if (r->got < r->n) continue;
    pop(a, L);
    complete(a, r, MISCACHE_OK, NULL);
    if (a->freeing) return;
  }
  /* what arrived before a failure (a server that closed after its last
   * replies) is handed out first */
  if (read_st != MISCACHE_OK) fail_all(a, L, read_st, read_err);
}

static void link_read(miscache_async_t *a, link_t *L) {
  if (miscache__node_connecting(L->node)) {
    connect_progress(a, L);
    return;
  }
  if (L->write_waits_read) { /* what TLS waited for to go on writing */
    link_write(a, L);
    if (a->freeing || miscache__node_fd(L->node) < 0) return;
  }
  miscache_status_t read_st = miscache__node_read_now(L->node);
  char read_err[MISCACHE_ERRMSG_SIZE];
  snprintf(read_err, sizeof read_err, "%s", a->mc->err);
  take_replies(a, L, read_st, read_err);
}

/* The socket fd (every watched one for -1) is readable / writable. */
static void ready(miscache_async_t *a, int fd, bool readable) {
  if (!a || a->freeing) return;
  a->depth++; /* a callback freeing the handle: freed below, not inside */
  for (size_t i = 0; i < a->nlinks && !a->freeing; i++) {
    link_t *L = a->links[i];
    int watched = !L ? -1 : readable ? L->read_fd : L->write_fd;
    if (watched < 0 || (fd >= 0 && watched != fd)) continue;
    if (readable) link_read(a, L);
    else link_write(a, L);
    if (fd >= 0) break;
  }
  a->depth--;
  if (!a->freeing) update_interest(a);
  finish(a);
}

void miscache_async_handle_read(miscache_async_t *a) { ready(a, -1, true); }
void miscache_async_handle_write(miscache_async_t *a) { ready(a, -1, false); }

void miscache_async_handle_read_fd(miscache_async_t *a, int fd) {
  if (fd >= 0) ready(a, fd, true);
}

void miscache_async_handle_write_fd(miscache_async_t *a, int fd) {
  if (fd >= 0) ready(a, fd, false);
}

static void timed_out(const miscache_async_t *a, char *why, const char *what,
                      const char *tail) {
  snprintf(why, MISCACHE_ERRMSG_SIZE,
           "timed out: %s within the %d ms command timeout%s", what,
           a->mc->opts.command_timeout_ms, tail);
}

/* L's connect or its oldest request is past its deadline. */
static void link_timer(miscache_async_t *a, link_t *L, int64_t now) {
  int64_t conn = miscache__node_connect_deadline(L->node);
  if (conn && now >= conn) { /* before the calls' own */
    miscache_status_t st = miscache__node_connect_timed_out(L->node);
    char why[MISCACHE_ERRMSG_SIZE];
    snprintf(why, sizeof why, "%s", a->mc->err);
    fail_all(a, L, st, why);
  }
  if (!a->freeing && L->head && now >= L->head->deadline_ms) {
    char why[MISCACHE_ERRMSG_SIZE];
    timed_out(a, why, "no reply",
              " (the connection is dropped, as in the blocking API)");
    fail_all(a, L, MISCACHE_ERR_UNAVAILABLE, why);
  }
}

void miscache_async_handle_timer(miscache_async_t *a) {
  if (!a || a->freeing) return;
  a->timer_set = false;
  a->depth++;
  int64_t now = miscache__mono_ms();
  for (size_t i = 0; i < a->nlinks && !a->freeing; i++)
    if (a->links[i]) link_timer(a, a->links[i], now);
  if (!a->freeing && a->sentinel && a->links[0]->head) check_start(a);
  while (!a->freeing && a->held_head && now >= a->held_head->deadline_ms) {
    req_t *r = a->held_head; /* (the lookup goes on for the later ones) */
    a->held_head = r->next;
    if (!a->held_head) a->held_tail = NULL;
    a->outstanding--;
    char why[MISCACHE_ERRMSG_SIZE];
    timed_out(a, why, "the sentinels named no master", "");
    complete(a, r, MISCACHE_ERR_UNAVAILABLE, why);
  }
  /* the pauses that are over: those parts go out again (what their
   * callbacks add waits for the next turn) */
  delay_t *due = NULL, **pp = &a->delays;
  while (*pp) {
    delay_t *d = *pp;
    if (d->at > now) {
      pp = &d->next;
      continue;
    }
    *pp = d->next;
    d->next = due;
    due = d;
  }
  while (due) {
    delay_t *d = due;
    due = d->next;
    creq_t *cr = d->cr;
    size_t part = d->part;
    free(d);
    resend(a, cr, part);
  }
  a->depth--;
  if (!a->freeing) update_interest(a);
  finish(a);
}

void miscache__async_wait_add(miscache_async_t *a, miscache__async_wait_t *w) {
  w->prev = NULL;
  w->next = a->waits;
  if (a->waits) a->waits->prev = w;
  a->waits = w;
  a->outstanding++;
}

void miscache__async_wait_remove(miscache_async_t *a,
                                 miscache__async_wait_t *w) {
  if (w->prev) w->prev->next = w->next;
  else a->waits = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = NULL;
  a->outstanding--;
}

miscache__async_wait_t *miscache__async_waits(miscache_async_t *a) {
  return a->waits;
}

/* ---- the handle -------------------------------------------------------------------- */

/* The links and the cluster nodes the handle made (the dispatcher's own
 * node is the dispatcher's). */
static void free_links(miscache_async_t *a) {
  for (size_t i = 0; i < a->nlinks; i++) {
    link_t *L = a->links[i];
    if (L && L->owned) miscache__node_free(L->node);
    free(L);
  }
  free(a->links);
  a->links = NULL;
  a->nlinks = 0;
}

static miscache_status_t open_on(const miscache_options_t *opts,
                                 miscache_pool_t *pool, miscache_async_t **out,
                                 char *errbuf, size_t errbuf_len) {
  if (errbuf && errbuf_len) errbuf[0] = 0;
  if (!out) return MISCACHE_ERR_INVALID;
  *out = NULL;
  miscache_async_t *a = calloc(1, sizeof *a);
  if (!a) return MISCACHE_ERR_NOMEM;
  miscache_options_t o;
  miscache_status_t st = opts ? miscache__options_copy(&o, opts) : MISCACHE_OK;
  if (!opts) miscache__options_defaults(&o);
  if (st != MISCACHE_OK) {
    free(a);
    return st;
  }
  /* the handle of keys and near store; the connect is ours, below */
  o.lazy = true;
  o.set |= MISCACHE__SET_BIT(MISCACHE__SET_LAZY);
  if (pool) o.near_external = true;
  st = miscache_open(&o, &a->mc, errbuf, errbuf_len);
  miscache__options_clear(&o);
  if (st != MISCACHE_OK) {
    free(a);
    return st;
  }
  if (pool) { /* the pool's stores: one near cache, one set of pending
               * invalidations (a key under one reads as a miss here too) */
    a->mc->near = miscache__pool_near(pool);
    miscache__pending_unref(a->mc->pending);
    a->mc->pending = miscache__pool_pending(pool);
  }
  a->sentinel = miscache__disp_is_sentinel(a->mc->disp);
  a->cluster = miscache__disp_cluster(a->mc->disp);
  miscache__node_t *node = NULL;
  st = miscache__disp_async_node(a->mc->disp, &node); /* (a cluster: its map) */
  if (st == MISCACHE_OK && !a->cluster) {
    st = miscache__node_connect(node);
    size_t nl = 1 + (a->sentinel ? miscache__disp_sentinel_count(a->mc->disp)
                                  : 0); /* (the sentinels' made later) */
    a->links = calloc(nl, sizeof *a->links);
    link_t *L = a->links ? calloc(1, sizeof *L) : NULL;
    if (L) {
      *L = (link_t){.node = node, .read_fd = -1, .write_fd = -1};
      a->links[0] = L;
      a->nlinks = nl;
    } else if (st == MISCACHE_OK) {
      snprintf(a->mc->err, MISCACHE_ERRMSG_SIZE, "out of memory");
      st = MISCACHE_ERR_NOMEM;
    }
  }
  if (st != MISCACHE_OK) {
    if (errbuf && errbuf_len)
      snprintf(errbuf, errbuf_len, "%s",
               a->mc->err[0] ? a->mc->err : miscache_strerror(st));
    free_links(a);
    miscache_free(a->mc);
    free(a);
    return st;
  }
  *out = a;
  return MISCACHE_OK;
}

miscache_status_t miscache_async_open(const miscache_options_t *opts,
                                      miscache_async_t **out, char *errbuf,
                                      size_t errbuf_len) {
  return open_on(opts, NULL, out, errbuf, errbuf_len);
}

miscache_status_t miscache_async_open_pool(miscache_pool_t *pool,
                                           miscache_async_t **out,
                                           char *errbuf, size_t errbuf_len) {
  if (!pool) {
    if (out) *out = NULL;
    if (errbuf && errbuf_len) snprintf(errbuf, errbuf_len, "pool is NULL");
    return MISCACHE_ERR_INVALID;
  }
  return open_on(miscache__pool_options(pool), pool, out, errbuf, errbuf_len);
}

miscache_status_t miscache_async_attach(miscache_async_t *a,
                                        const miscache_async_loop_t *loop) {
  if (!a || !loop || !loop->add_read || !loop->del_read || !loop->add_write ||
      !loop->del_write || !loop->set_timer || a->attached)
    return MISCACHE_ERR_INVALID;
  a->loop = *loop;
  a->attached = true;
  update_interest(a);
  return MISCACHE_OK;
}

/* The real free, once no callback of the handle is running. */
static void finish(miscache_async_t *a) {
  if (!a->freeing || a->depth > 0) return;
  a->depth++; /* calls from the cancelled callbacks are refused */
  const char *why =
      "cancelled: the async handle was freed before the reply came";
  for (size_t i = 0; i < a->nlinks; i++)
    if (a->links[i]) fail_all(a, a->links[i], MISCACHE_ERR_CANCELLED, why);
  resolve_end(a, MISCACHE_ERR_CANCELLED, why); /* (the held calls) */
  while (a->delays) {
    delay_t *d = a->delays;
    a->delays = d->next;
    creq_t *cr = d->cr;
    free(d);
    part_end(a, cr, MISCACHE_ERR_CANCELLED, why);
  }
  while (a->waits) {
    miscache__async_wait_t *w = a->waits;
    miscache__async_wait_remove(a, w);
    w->cancel(a, w);
  }
  a->depth--;
  if (a->attached) {
    if (a->timer_set) a->loop.set_timer(a->loop.data, -1);
    if (a->loop.cleanup) a->loop.cleanup(a->loop.data);
  }
  free_links(a); /* (before the dispatcher their nodes count in) */
  miscache_free(a->mc);
  free(a);
}

void miscache_async_free(miscache_async_t *a) {
  if (!a || a->freeing) return;
  a->freeing = true;
  finish(a);
}

const char *miscache_async_errmsg(const miscache_async_t *a) {
  return a ? a->msg : "async handle is NULL";
}

size_t miscache_async_outstanding(const miscache_async_t *a) {
  return a ? a->outstanding : 0;
}

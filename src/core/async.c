/* The non-blocking handle (async.h) and the engine its calls are built on
 * (core.h, "the async engine"): a call queues its commands on the node's
 * output buffer and one request in a FIFO; the loop's readiness and timer
 * calls write, read and complete them in order. Replies come back in the
 * order the commands went out, so the FIFO's head owns the next reply; a
 * SELECT put in front of a request is answered first. The calls
 * themselves (what they send, how they read the replies) are in
 * ops/async_ops.c and the domain files. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/node.h"
#include "core/core.h"
#include "miscache/async.h"

typedef struct req {
  struct req *next;
  bool select_first; /* a SELECT's reply comes before this one's */
  int64_t deadline_ms;
  int64_t t0_us;          /* when it was queued: its latency starts */
  miscache__call_t call;  /* for the latency figures */
  char verb[16], key[128]; /* call's: the name, the start of the key */
  miscache__async_done_fn done;
  void *op;
  size_t n, got;                /* replies expected, in */
  miscache__reply_t *replies[]; /* n */
} req_t;

struct miscache_async {
  miscache_t *mc; /* keys, TTLs, near store; its dispatcher's node is ours */
  miscache__node_t *node; /* the dispatcher's; behind Sentinel the master */
  bool sentinel;          /* ask the dispatcher for the node on reconnect */
  char msg[MISCACHE_ERRMSG_SIZE]; /* why the last call refused to start */
  miscache_async_loop_t loop;
  bool attached;
  int read_fd, write_fd; /* what the loop watches now; -1: nothing */
  bool timer_set;
  bool write_waits_read; /* TLS: the next write needs a readable socket */
  req_t *head, *tail;
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

/* ---- completing ------------------------------------------------------------ */

static void complete(miscache_async_t *a, req_t *r, miscache_status_t st,
                     const char *why) {
  a->depth++;
  r->done(a, r->op, st, st == MISCACHE_OK ? r->replies : NULL,
          st == MISCACHE_OK ? r->n : 0, why ? why : "");
  a->depth--;
  for (size_t i = 0; i < r->got; i++) miscache__reply_free(r->replies[i]);
  free(r);
}

static req_t *pop(miscache_async_t *a) {
  req_t *r = a->head;
  if (r) {
    a->head = r->next;
    if (!a->head) a->tail = NULL;
    a->outstanding--;
  }
  return r;
}

/* ---- the loop's interest ------------------------------------------------------ */

/* Sentinel: when the sentinels are to be asked again (0: not now). */
static int64_t sentinel_check_at(const miscache_async_t *a) {
  return a->sentinel ? miscache__disp_check_at(a->mc->disp) : 0;
}

/* Watch what the state asks for: read while connected, write while bytes
 * wait, the timer at the oldest request's deadline. */
static void update_interest(miscache_async_t *a) {
  if (!a->attached) return;
  int fd = miscache__node_fd(a->node);
  int want_read = fd;
  int want_write = fd >= 0 && miscache__node_unsent(a->node) &&
                           !a->write_waits_read
                       ? fd
                       : -1;
  if (miscache__node_connecting(a->node)) { /* what the connect waits for */
    bool w = miscache__node_connect_wants_write(a->node);
    want_read = w ? -1 : fd;
    want_write = w ? fd : -1;
  }
  if (a->read_fd >= 0 && a->read_fd != want_read) {
    a->loop.del_read(a->loop.data, a->read_fd);
    a->read_fd = -1;
  }
  if (a->write_fd >= 0 && a->write_fd != want_write) {
    a->loop.del_write(a->loop.data, a->write_fd);
    a->write_fd = -1;
  }
  if (want_read >= 0 && a->read_fd < 0) {
    a->loop.add_read(a->loop.data, want_read);
    a->read_fd = want_read;
  }
  if (want_write >= 0 && a->write_fd < 0) {
    a->loop.add_write(a->loop.data, want_write);
    a->write_fd = want_write;
  }
  if (a->head) {
    int64_t at = a->head->deadline_ms;
    int64_t check = sentinel_check_at(a);
    if (check && check < at) at = check; /* (handle_timer asks) */
    int64_t conn = miscache__node_connect_deadline(a->node);
    if (conn && conn < at) at = conn;
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
static void unwatch(miscache_async_t *a) {
  if (!a->attached) return;
  if (a->read_fd >= 0) a->loop.del_read(a->loop.data, a->read_fd);
  if (a->write_fd >= 0) a->loop.del_write(a->loop.data, a->write_fd);
  a->read_fd = a->write_fd = -1;
}

/* Close the connection and what was queued on it; behind Sentinel the
 * next call asks which node is the master. */
static void drop_connection(miscache_async_t *a) {
  unwatch(a); /* before the socket closes */
  a->write_waits_read = false;
  miscache__node_async_drop(a->node);
  miscache__disp_master_lost(a->mc->disp);
}

/* Every queued request completes with st (the connection is gone or out
 * of step: later replies could not be told apart). */
static void fail_all(miscache_async_t *a, miscache_status_t st,
                     const char *why) {
  drop_connection(a);
  char text[MISCACHE_ERRMSG_SIZE];
  snprintf(text, sizeof text, "%s", why);
  /* the requests of the lost connection only: calls the callbacks make
   * now go out on a new one */
  req_t *r = a->head;
  a->head = a->tail = NULL;
  while (r) {
    req_t *next = r->next;
    a->outstanding--;
    complete(a, r, st, text);
    r = next;
  }
}

/* ---- the loop's calls ------------------------------------------------------------ */

static void finish(miscache_async_t *a);

void miscache__async_enter(miscache_async_t *a) { a->depth++; }

void miscache__async_leave(miscache_async_t *a) {
  a->depth--;
  if (!a->freeing && a->depth == 0) update_interest(a);
  finish(a);
}

/* The connect under way goes on (the socket is ready for what it waits
 * for): connected, not yet, or failed (every call queued on it fails). */
static void connect_progress(miscache_async_t *a) {
  unwatch(a); /* a step may close the socket for the next address */
  miscache_status_t st = miscache__node_connect_step(a->node);
  if (st != MISCACHE_OK && st != MISCACHE_MISS) {
    a->depth++;
    fail_all(a, st, a->mc->err);
    a->depth--;
  }
  if (!a->freeing) update_interest(a); /* connected: the write is next */
  finish(a);
}

void miscache_async_handle_write(miscache_async_t *a) {
  if (!a || a->freeing) return;
  if (miscache__node_connecting(a->node)) {
    connect_progress(a);
    return;
  }
  bool want_read = false;
  miscache_status_t st = miscache__node_flush(a->node, &want_read);
  a->write_waits_read = st == MISCACHE_OK && want_read;
  if (st != MISCACHE_OK) {
    a->depth++;
    fail_all(a, st, a->mc->err);
    a->depth--;
  }
  /* (calls the failed ones' callbacks made wait for this) */
  if (!a->freeing) update_interest(a);
  finish(a);
}

/* The replies that have arrived, to their requests. */
static void take_replies(miscache_async_t *a, miscache_status_t read_st,
                         const char *read_err) {
  miscache_status_t st = MISCACHE_OK;
  for (;;) {
    miscache__reply_t *reply = NULL;
    st = miscache__node_take(a->node, &reply);
    if (st == MISCACHE_MISS) break;
    if (st != MISCACHE_OK) {
      fail_all(a, st, a->mc->err);
      return;
    }
    req_t *r = a->head;
    if (!r) { /* a reply nobody asked for: out of step */
      miscache__reply_free(reply);
      fail_all(a, MISCACHE_ERR_REPLY, "a reply nobody asked for");
      return;
    }
    if (a->sentinel && miscache__reply_type(reply) == MISCACHE__R_ERROR &&
        strncmp(miscache__reply_str(reply, NULL), "READONLY", 8) == 0) {
      /* the master was demoted: nothing sent to it will land */
      char why[MISCACHE_ERRMSG_SIZE];
      snprintf(why, sizeof why,
               "redis %s: READONLY: the master was demoted (a failover); "
               "the sentinels are asked again on the next call",
               miscache__node_addr(a->node));
      miscache__reply_free(reply);
      fail_all(a, MISCACHE_ERR_UNAVAILABLE, why);
      return;
    }
    if (r->select_first) {
      r->select_first = false;
      bool ok = miscache__reply_type(reply) == MISCACHE__R_STATUS;
      miscache__reply_free(reply);
      if (!ok) { /* the db was refused: what follows ran elsewhere */
        fail_all(a, MISCACHE_ERR_SERVER,
                 "SELECT refused (is the db number within the server's "
                 "databases?)");
        return;
      }
      continue;
    }
    r->replies[r->got++] = reply;
    if (r->got < r->n) continue;
    pop(a);
    miscache__observe_call(a->mc, &r->call, miscache__mono_us() - r->t0_us);
    complete(a, r, MISCACHE_OK, NULL);
    if (a->freeing) return;
  }
  /* what arrived before a failure (a server that closed after its last
   * replies) is handed out first */
  if (read_st != MISCACHE_OK) fail_all(a, read_st, read_err);
}

void miscache_async_handle_read(miscache_async_t *a) {
  if (!a || a->freeing) return;
  if (miscache__node_connecting(a->node)) {
    connect_progress(a);
    return;
  }
  if (a->write_waits_read) { /* what TLS waited for to go on writing */
    a->depth++; /* a callback freeing the handle: freed below, not inside */
    miscache_async_handle_write(a);
    a->depth--;
    if (a->freeing) {
      finish(a);
      return;
    }
  }
  a->depth++;
  miscache_status_t read_st = miscache__node_read_now(a->node);
  char read_err[MISCACHE_ERRMSG_SIZE];
  snprintf(read_err, sizeof read_err, "%s", a->mc->err);
  take_replies(a, read_st, read_err);
  a->depth--;
  if (!a->freeing) update_interest(a);
  finish(a);
}

void miscache_async_handle_timer(miscache_async_t *a) {
  if (!a || a->freeing) return;
  a->timer_set = false;
  int64_t conn = miscache__node_connect_deadline(a->node);
  if (conn && miscache__mono_ms() >= conn) { /* before the calls' own */
    miscache_status_t st = miscache__node_connect_timed_out(a->node);
    char why[MISCACHE_ERRMSG_SIZE];
    snprintf(why, sizeof why, "%s", a->mc->err);
    a->depth++;
    fail_all(a, st, why);
    a->depth--;
  }
  if (!a->freeing && a->head && miscache__mono_ms() >= a->head->deadline_ms) {
    char why[MISCACHE_ERRMSG_SIZE];
    snprintf(why, sizeof why,
             "timed out: no reply within the %d ms command timeout (the "
             "connection is dropped, as in the blocking API)",
             a->mc->opts.command_timeout_ms);
    a->depth++;
    fail_all(a, MISCACHE_ERR_UNAVAILABLE, why);
    a->depth--;
  }
  if (!a->freeing && a->head && check_due(a) &&
      miscache__disp_master_moved(a->mc->disp)) {
    /* a forced failover: the old master takes writes until demoted */
    char why[MISCACHE_ERRMSG_SIZE];
    snprintf(why, sizeof why,
             "redis %s: the sentinels name another master now (a "
             "failover); the calls sent to this one are failed",
             miscache__node_addr(a->node));
    a->depth++;
    fail_all(a, MISCACHE_ERR_UNAVAILABLE, why);
    a->depth--;
  }
  if (!a->freeing) update_interest(a);
  finish(a);
}

/* ---- queueing ------------------------------------------------------------------- */

miscache_status_t miscache__async_send(miscache_async_t *a, miscache_db_t db,
                                       size_t n, const miscache__cmd_t *cmds,
                                       miscache__async_done_fn done, void *op) {
  if (a->freeing) { /* (an internal step of a call completed during free) */
    miscache__async_refuse(a, "the handle is being freed");
    return MISCACHE_ERR_CANCELLED;
  }
  req_t *r = calloc(1, sizeof *r + n * sizeof r->replies[0]);
  if (!r) {
    miscache__async_refuse(a, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  miscache_status_t st = MISCACHE_OK;
  if (a->sentinel && !a->head && miscache__node_fd(a->node) >= 0 &&
      check_due(a) && miscache__disp_master_moved(a->mc->disp))
    drop_connection(a); /* nothing in flight: leave the old master now */
  if (a->sentinel && !a->head && miscache__node_fd(a->node) < 0) {
    /* reconnecting: to the master the sentinels name now */
    miscache__node_t *master = NULL;
    unwatch(a);
    st = miscache__disp_async_node(a->mc->disp, &master);
    if (master) a->node = master; /* the old one may be gone either way */
    if (st != MISCACHE_OK) {
      free(r);
      miscache__async_refuse(a, "%s", a->mc->err);
      return st;
    }
  }
  bool sel = false;
  st = miscache__node_queue(a->node, a->mc->opts.db[db], n,
                                              cmds, &sel);
  if (st != MISCACHE_OK) {
    free(r);
    miscache__async_refuse(a, "%s", a->mc->err);
    return st;
  }
  r->select_first = sel;
  r->deadline_ms = miscache__mono_ms() + a->mc->opts.command_timeout_ms;
  r->t0_us = miscache__mono_us();
  miscache__call_info(n, cmds, &r->call);
  if (n) { /* (cmds are the caller's: copies for the completion) */
    memcpy(r->verb, r->call.verb, r->call.vlen);
    r->call.verb = r->verb;
  }
  if (r->call.key) { /* (the family of a slow call needs only its start) */
    r->call.klen = r->call.klen < sizeof r->key ? r->call.klen : sizeof r->key;
    memcpy(r->key, r->call.key, r->call.klen);
    r->call.key = r->key;
  }
  r->done = done;
  r->op = op;
  r->n = n;
  if (a->tail) a->tail->next = r;
  else a->head = r;
  a->tail = r;
  a->outstanding++;
  a->msg[0] = 0;
  /* written when the loop says the socket is writable: the calls of one
   * turn go out together */
  if (a->depth == 0) update_interest(a);
  return MISCACHE_OK;
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

static miscache_status_t open_on(const miscache_options_t *opts,
                                 miscache_pool_t *pool, miscache_async_t **out,
                                 char *errbuf, size_t errbuf_len) {
  if (errbuf && errbuf_len) errbuf[0] = 0;
  if (!out) return MISCACHE_ERR_INVALID;
  *out = NULL;
  miscache_async_t *a = calloc(1, sizeof *a);
  if (!a) return MISCACHE_ERR_NOMEM;
  a->read_fd = a->write_fd = -1;
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
  st = miscache__disp_async_node(a->mc->disp, &a->node);
  if (st == MISCACHE_OK) st = miscache__node_connect(a->node);
  if (st != MISCACHE_OK) {
    if (errbuf && errbuf_len)
      snprintf(errbuf, errbuf_len, "%s",
               a->mc->err[0] ? a->mc->err : miscache_strerror(st));
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
  fail_all(a, MISCACHE_ERR_CANCELLED,
           "cancelled: the async handle was freed before the reply came");
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

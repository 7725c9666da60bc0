/* The non-blocking handle (async.h): calls queue their command on the
 * node's output buffer and a request in a FIFO; the loop's readiness and
 * timer calls write, read and complete them in order. Replies come back in
 * the order the commands went out, so the FIFO's head is the next reply's
 * owner; a SELECT put in front of a request is answered first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/node.h"
#include "core/core.h"
#include "miscache/async.h"

typedef enum { K_GET, K_SET, K_DEL, K_EXISTS } kind_t;

typedef struct req {
  struct req *next;
  kind_t kind;
  bool select_first; /* a SELECT's reply comes before this one's */
  int64_t deadline_ms;
  void (*fn)(void);  /* the kind's callback type */
  void *userdata;
} req_t;

struct miscache_async {
  miscache_options_t opts; /* resolved */
  miscache__dispatcher_t *disp;
  miscache__node_t *node;
  char err[MISCACHE_ERRMSG_SIZE]; /* the node's messages */
  char msg[MISCACHE_ERRMSG_SIZE]; /* why the last call refused to start */
  miscache_async_loop_t loop;
  bool attached;
  int read_fd, write_fd; /* what the loop watches now; -1: nothing */
  bool timer_set;
  bool write_waits_read; /* TLS: the next write needs a readable socket */
  req_t *head, *tail;
  size_t outstanding;
  int depth;      /* inside the handle's own callbacks */
  bool freeing;   /* miscache_async_free was called */
  uint64_t rng;
};

static void set_msg(miscache_async_t *a, const char *fmt, const char *arg) {
  snprintf(a->msg, sizeof a->msg, fmt, arg);
}

/* ---- completing ------------------------------------------------------------ */

static void complete(miscache_async_t *a, req_t *r, miscache_status_t st,
                     const miscache__reply_t *reply, const char *why) {
  json_t *value = NULL;
  long long n = 0;
  char text[MISCACHE_ERRMSG_SIZE];
  snprintf(text, sizeof text, "%s", why ? why : "");
  if (st == MISCACHE_OK && miscache__reply_type(reply) == MISCACHE__R_ERROR) {
    char shown[256];
    snprintf(text, sizeof text, "server error: %s",
             miscache__reply_text(reply, shown, sizeof shown));
    st = MISCACHE_ERR_SERVER;
  } else if (st == MISCACHE_OK) {
    miscache__rtype_t t = miscache__reply_type(reply);
    switch (r->kind) {
    case K_GET:
      if (t == MISCACHE__R_NIL) {
        st = MISCACHE_MISS;
      } else if (t == MISCACHE__R_STRING) {
        size_t len;
        const char *s = miscache__reply_str(reply, &len);
        char derr[160];
        value = miscache__decode(s, len, derr, sizeof derr);
        if (!value) {
          st = MISCACHE_ERR_DECODE;
          snprintf(text, sizeof text, "cached value is not JSON: %s", derr);
        }
      } else {
        st = MISCACHE_ERR_REPLY;
      }
      break;
    case K_SET:
      if (t != MISCACHE__R_STATUS) st = MISCACHE_ERR_REPLY;
      break;
    case K_DEL:
    case K_EXISTS:
      if (t == MISCACHE__R_INTEGER) n = miscache__reply_int(reply);
      else st = MISCACHE_ERR_REPLY;
      break;
    }
    if (st == MISCACHE_ERR_REPLY)
      snprintf(text, sizeof text, "unexpected reply to %s",
               r->kind == K_GET ? "GET" : r->kind == K_SET ? "SET"
               : r->kind == K_DEL ? "UNLINK" : "EXISTS");
  }
  a->depth++;
  switch (r->kind) {
  case K_GET:
    ((miscache_async_value_fn)(void (*)(void))r->fn)(r->userdata, st, value,
                                                      text);
    break;
  case K_SET:
    ((miscache_async_done_fn)(void (*)(void))r->fn)(r->userdata, st, text);
    break;
  case K_DEL:
  case K_EXISTS:
    ((miscache_async_bool_fn)(void (*)(void))r->fn)(r->userdata, st, n > 0,
                                                     text);
    break;
  }
  a->depth--;
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
    int64_t left = a->head->deadline_ms - miscache__mono_ms();
    a->loop.set_timer(a->loop.data, left > 0 ? left : 0);
    a->timer_set = true;
  } else if (a->timer_set) {
    a->loop.set_timer(a->loop.data, -1);
    a->timer_set = false;
  }
}

/* Stop watching a socket about to close. */
static void unwatch(miscache_async_t *a) {
  if (!a->attached) return;
  if (a->read_fd >= 0) a->loop.del_read(a->loop.data, a->read_fd);
  if (a->write_fd >= 0) a->loop.del_write(a->loop.data, a->write_fd);
  a->read_fd = a->write_fd = -1;
}

/* Every outstanding call completes with st (the connection is gone or
 * out of step: later replies could not be told apart). */
static void fail_all(miscache_async_t *a, miscache_status_t st,
                     const char *why) {
  unwatch(a); /* before the socket closes */
  a->write_waits_read = false;
  miscache__node_async_drop(a->node);
  char text[MISCACHE_ERRMSG_SIZE];
  snprintf(text, sizeof text, "%s", why);
  /* the requests of the lost connection only: calls the callbacks make
   * now go out on a new one */
  req_t *r = a->head;
  a->head = a->tail = NULL;
  while (r) {
    req_t *next = r->next;
    a->outstanding--;
    complete(a, r, st, NULL, text);
    r = next;
  }
}

/* ---- the loop's calls ------------------------------------------------------------ */

static void finish(miscache_async_t *a);

void miscache_async_handle_write(miscache_async_t *a) {
  if (!a || a->freeing) return;
  bool want_read = false;
  miscache_status_t st = miscache__node_flush(a->node, &want_read);
  a->write_waits_read = st == MISCACHE_OK && want_read;
  if (st != MISCACHE_OK) {
    a->depth++;
    fail_all(a, st, a->err);
    a->depth--;
  }
  /* (calls the failed ones' callbacks made wait for this) */
  if (!a->freeing) update_interest(a);
  finish(a);
}

void miscache_async_handle_read(miscache_async_t *a) {
  if (!a || a->freeing) return;
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
  /* what arrived before a failure (a server that closed after its last
   * replies) is handed out first */
  miscache_status_t read_st = miscache__node_read_now(a->node);
  char read_err[MISCACHE_ERRMSG_SIZE];
  snprintf(read_err, sizeof read_err, "%s", a->err);
  miscache_status_t st = MISCACHE_OK;
  {
    for (;;) {
      miscache__reply_t *reply = NULL;
      st = miscache__node_take(a->node, &reply);
      if (st == MISCACHE_MISS) break;
      if (st != MISCACHE_OK) {
        fail_all(a, st, a->err);
        break;
      }
      req_t *r = a->head;
      if (!r) { /* a reply nobody asked for: out of step */
        miscache__reply_free(reply);
        fail_all(a, MISCACHE_ERR_REPLY, "a reply nobody asked for");
        break;
      }
      if (r->select_first) {
        r->select_first = false;
        bool ok = miscache__reply_type(reply) == MISCACHE__R_STATUS;
        miscache__reply_free(reply);
        if (!ok) { /* the db was refused: what follows ran elsewhere */
          fail_all(a, MISCACHE_ERR_SERVER,
                   "SELECT refused (is the db number within the server's "
                   "databases?)");
          break;
        }
        continue;
      }
      pop(a);
      complete(a, r, MISCACHE_OK, reply, NULL);
      miscache__reply_free(reply);
      if (a->freeing) break;
    }
    if (st == MISCACHE_MISS && read_st != MISCACHE_OK && !a->freeing)
      fail_all(a, read_st, read_err);
  }
  a->depth--;
  if (!a->freeing) update_interest(a);
  finish(a);
}

void miscache_async_handle_timer(miscache_async_t *a) {
  if (!a || a->freeing) return;
  a->timer_set = false;
  if (a->head && miscache__mono_ms() >= a->head->deadline_ms) {
    char why[MISCACHE_ERRMSG_SIZE];
    snprintf(why, sizeof why,
             "timed out: no reply within the %d ms command timeout (the "
             "connection is dropped, as in the blocking API)",
             a->opts.command_timeout_ms);
    a->depth++;
    fail_all(a, MISCACHE_ERR_UNAVAILABLE, why);
    a->depth--;
  }
  if (!a->freeing) update_interest(a);
  finish(a);
}

/* ---- calls ------------------------------------------------------------------------ */

static miscache_status_t submit(miscache_async_t *a, kind_t kind,
                                miscache_db_t db, const miscache__cmd_t *cmd,
                                void (*fn)(void), void *userdata) {
  req_t *r = calloc(1, sizeof *r);
  if (!r) {
    set_msg(a, "%s", "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  bool sel = false;
  miscache_status_t st = miscache__node_queue(
      a->node, a->opts.db[db], 1, cmd, &sel);
  if (st != MISCACHE_OK) {
    free(r);
    set_msg(a, "%s", a->err);
    return st;
  }
  r->kind = kind;
  r->select_first = sel;
  r->deadline_ms = miscache__mono_ms() + a->opts.command_timeout_ms;
  r->fn = fn;
  r->userdata = userdata;
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

/* Checks shared by every call; the full key into buf. */
static miscache_status_t begin(miscache_async_t *a, miscache_db_t db,
                               const char *key, bool has_fn, char **full,
                               size_t *len) {
  if (!a) return MISCACHE_ERR_INVALID;
  if (a->freeing) {
    set_msg(a, "%s", "the handle is being freed");
    return MISCACHE_ERR_CANCELLED;
  }
  if (!has_fn || !key || !key[0] || !miscache__db_valid(db)) {
    set_msg(a, "%s", "bad argument (NULL callback or key, empty key, or db "
                     "out of range)");
    return MISCACHE_ERR_INVALID;
  }
  size_t ns = strlen(a->opts.ns), kl = strlen(key);
  *full = malloc(ns + kl + 1);
  if (!*full) {
    set_msg(a, "%s", "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  memcpy(*full, a->opts.ns, ns);
  memcpy(*full + ns, key, kl + 1);
  *len = ns + kl;
  return MISCACHE_OK;
}

miscache_status_t miscache_async_get(miscache_async_t *a, miscache_db_t db,
                                     const char *key,
                                     miscache_async_value_fn fn,
                                     void *userdata) {
  char *k;
  size_t kl;
  miscache_status_t st = begin(a, db, key, fn != NULL, &k, &kl);
  if (st != MISCACHE_OK) return st;
  const char *argv[2] = {"GET", k};
  size_t lens[2] = {3, kl};
  miscache__cmd_t cmd = {2, argv, lens};
  st = submit(a, K_GET, db, &cmd, (void (*)(void))fn, userdata);
  free(k);
  return st;
}

static miscache_status_t one_key(miscache_async_t *a, kind_t kind,
                                 const char *name, miscache_db_t db,
                                 const char *key, miscache_async_bool_fn fn,
                                 void *userdata) {
  char *k;
  size_t kl;
  miscache_status_t st = begin(a, db, key, fn != NULL, &k, &kl);
  if (st != MISCACHE_OK) return st;
  const char *argv[2] = {name, k};
  size_t lens[2] = {strlen(name), kl};
  miscache__cmd_t cmd = {2, argv, lens};
  st = submit(a, kind, db, &cmd, (void (*)(void))fn, userdata);
  free(k);
  return st;
}

miscache_status_t miscache_async_delete(miscache_async_t *a, miscache_db_t db,
                                        const char *key,
                                        miscache_async_bool_fn fn,
                                        void *userdata) {
  return one_key(a, K_DEL, "UNLINK", db, key, fn, userdata);
}

miscache_status_t miscache_async_exists(miscache_async_t *a, miscache_db_t db,
                                        const char *key,
                                        miscache_async_bool_fn fn,
                                        void *userdata) {
  return one_key(a, K_EXISTS, "EXISTS", db, key, fn, userdata);
}

miscache_status_t miscache_async_set(miscache_async_t *a, miscache_db_t db,
                                     const char *key, const json_t *value,
                                     miscache_ttl_class_t cls,
                                     miscache_async_done_fn fn,
                                     void *userdata) {
  char *k;
  size_t kl;
  miscache_status_t st = begin(a, db, key, fn != NULL, &k, &kl);
  if (st != MISCACHE_OK) return st;
  if (!value || !miscache__ttl_valid(cls)) {
    free(k);
    set_msg(a, "%s", "bad argument (NULL value or TTL class out of range)");
    return MISCACHE_ERR_INVALID;
  }
  size_t vl = 0;
  char *v = miscache__encode(value, &vl);
  if (!v) {
    free(k);
    set_msg(a, "%s", "value cannot be encoded as JSON (a string that is not "
                     "UTF-8?)");
    return MISCACHE_ERR_ENCODE;
  }
  /* the class's TTL with the handle's jitter, as the blocking set draws it */
  int64_t ms = a->opts.ttl[cls] * 1000;
  if (a->opts.jitter_pct)
    ms = miscache__jittered(ms, a->opts.jitter_pct, miscache__xorshift(&a->rng));
  char ttl[24];
  size_t tl = miscache__i64toa(ttl, ms);
  const char *argv[5] = {"SET", k, v, "PX", ttl};
  size_t lens[5] = {3, kl, vl, 2, tl};
  miscache__cmd_t cmd = {5, argv, lens};
  st = submit(a, K_SET, db, &cmd, (void (*)(void))fn, userdata);
  free(v);
  free(k);
  return st;
}

/* ---- the handle -------------------------------------------------------------------- */

miscache_status_t miscache_async_open(const miscache_options_t *opts,
                                      miscache_async_t **out, char *errbuf,
                                      size_t errbuf_len) {
  if (errbuf && errbuf_len) errbuf[0] = 0;
  if (!out) return MISCACHE_ERR_INVALID;
  *out = NULL;
  miscache_async_t *a = calloc(1, sizeof *a);
  if (!a) return MISCACHE_ERR_NOMEM;
  a->read_fd = a->write_fd = -1;
  miscache_status_t st = opts ? miscache__options_copy(&a->opts, opts)
                              : MISCACHE_OK;
  if (!opts) miscache__options_defaults(&a->opts);
  if (st == MISCACHE_OK)
    st = miscache__options_resolve(&a->opts, a->err, sizeof a->err);
  if (st == MISCACHE_OK && (a->opts.ep.kind == MISCACHE__EP_SENTINEL ||
                            a->opts.ep.kind == MISCACHE__EP_CLUSTER)) {
    snprintf(a->err, sizeof a->err,
             "async handles take a standalone endpoint (redis://, rediss://, "
             "unix://) in this version; Sentinel and Cluster are not yet "
             "supported");
    st = MISCACHE_ERR_INVALID;
  }
  if (st == MISCACHE_OK)
    st = miscache__disp_new(&a->opts, a->err, sizeof a->err, &a->disp);
  if (st == MISCACHE_OK) {
    a->node = miscache__disp_standalone_node(a->disp);
    st = a->node ? miscache__node_connect(a->node) : MISCACHE_ERR_INVALID;
  }
  if (st != MISCACHE_OK) {
    if (errbuf && errbuf_len)
      snprintf(errbuf, errbuf_len, "%s", a->err[0] ? a->err : miscache_strerror(st));
    miscache__disp_free(a->disp);
    miscache__options_clear(&a->opts);
    free(a);
    return st;
  }
  a->rng = (uint64_t)(uintptr_t)a ^ (uint64_t)miscache__mono_ms() ^
           0x9E3779B97F4A7C15u;
  if (!a->rng) a->rng = 1;
  *out = a;
  return MISCACHE_OK;
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
  a->depth--;
  if (a->attached) {
    if (a->timer_set) a->loop.set_timer(a->loop.data, -1);
    if (a->loop.cleanup) a->loop.cleanup(a->loop.data);
  }
  miscache__disp_free(a->disp);
  miscache__options_clear(&a->opts);
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

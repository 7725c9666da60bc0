/*
 * One Redis node: a transport plus what the server remembers about the
 * connection (the selected db, AUTH), the pid that opened it, the RESP
 * formatting of requests, and the outage breaker.
 *
 * A SELECT travels in the same write as the command that needs it, so
 * changing db costs no extra round trip, except the first time a db number
 * is used on a connection: then SELECT goes alone, because a pipelined write
 * after a refused SELECT would land in the wrong db.
 *
 * Breaker: a failed connect opens a backoff window (backoff_min_ms, doubled
 * on each further failure up to backoff_max_ms, each window drawn between
 * half and all of it so handles do not probe in step). Inside the window
 * every call fails at once with ERR_UNAVAILABLE and no system call; the
 * first call after it is the probe. A successful connect closes it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node.h"

struct miscache__node {
  char *host; /* TCP */
  int port;
  char *path; /* unix */
  char *user;
  char *password;
  miscache__tls_t *tls;
  int connect_timeout_ms;
  bool connecting; /* AUTH or PING of a new connection: its messages name
                     the connect timeout */
  int command_timeout_ms;
  miscache__limits_t limits;
  int backoff_min_ms, backoff_max_ms;
  miscache__hook_t hook;
  bool freeing; /* its last drop is no event */
  miscache__transport_t *t;
  pid_t pid;       /* process that opened t */
  int cur_db;      /* db the connection is on; -1 unknown */
  uint64_t dbs_ok; /* bit n: SELECT n succeeded on this connection */
  char *obuf;
  size_t olen, ocap;
  size_t ooff; /* async use: bytes of obuf written so far */
  /* async use, a connect in steps: its deadline and start (us), whether
   * the reply to the new connection's AUTH or PING is still to come, and
   * how many bytes at the front of obuf hold AUTH's password */
  int64_t conn_deadline, conn_t0;
  bool prelude;
  size_t wipe_len;
  /* breaker */
  unsigned fails;      /* connects failed in a row */
  int backoff_ms;      /* the current window's nominal length */
  int64_t down_until;  /* CLOCK_MONOTONIC ms; 0: up */
  char last_fail[256]; /* why the last connect failed */
  miscache_status_t last_status;
  miscache__tstatus_t last_t; /* the last transport failure */
  uint64_t rng;
  miscache_link_stats_t *stats;
  char addr[300];
  char *err;
  size_t errlen;
};

static void node_err(miscache__node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void node_err(miscache__node_t *n, const char *fmt, ...) {
  char what[MISCACHE_ERRMSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(n->err, n->errlen, "redis %s: %s", n->addr, what);
}

miscache__node_t *miscache__node_new(const char *host, int port,
                                     const char *path,
                                     const miscache__node_conf_t *conf,
                                     miscache_link_stats_t *stats, char *err,
                                     size_t errlen) {
  miscache__node_t *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  if (!miscache__dup(&n->host, path ? NULL : host) || !miscache__dup(&n->path, path) ||
      !miscache__dup(&n->user, conf->user) ||
      !miscache__dup(&n->password, conf->password)) {
    miscache__node_free(n);
    return NULL;
  }
  n->port = port;
  n->tls = path ? NULL : conf->tls;
  n->connect_timeout_ms = conf->connect_timeout_ms;
  n->command_timeout_ms = conf->command_timeout_ms;
  n->limits = conf->limits;
  n->backoff_min_ms = conf->backoff_min_ms;
  n->backoff_max_ms = conf->backoff_max_ms;
  n->hook = conf->hook;
  n->cur_db = -1;
  n->stats = stats;
  n->err = err;
  n->errlen = errlen;
  if (path)
    snprintf(n->addr, sizeof n->addr, "unix:%s", path);
  else if (strchr(host, ':'))
    snprintf(n->addr, sizeof n->addr, "[%s]:%d", host, port);
  else
    snprintf(n->addr, sizeof n->addr, "%s:%d", host, port);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  n->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^
           (uint64_t)(uintptr_t)n ^ 0x9E3779B97F4A7C15u;
  return n;
}

void miscache__node_drop_quiet(miscache__node_t *n, bool quiet) {
  bool was = n->freeing;
  n->freeing = n->freeing || quiet;
  miscache__node_drop(n);
  n->freeing = was;
}

void miscache__node_drop(miscache__node_t *n) {
  if (n->t && !n->freeing && n->pid == getpid())
    miscache__event(&n->hook, MISCACHE_EV_DISCONNECT, n->addr, 0, 0,
                    "connection closed");
  miscache__transport_close(n->t); /* writes nothing: fork-safe */
  n->t = NULL;
  n->cur_db = -1;
  n->dbs_ok = 0;
  n->prelude = false;
}

void miscache__node_free(miscache__node_t *n) {
  if (!n) return;
  n->freeing = true;
  miscache__node_drop(n);
  free(n->host);
  free(n->path);
  free(n->user);
  miscache__secret_free(n->password);
  free(n->obuf);
  free(n);
}

const char *miscache__node_addr(const miscache__node_t *n) {
  return n->addr;
}

const char *miscache__node_host(const miscache__node_t *n) {
  return n->host ? n->host : "";
}

int miscache__node_port(const miscache__node_t *n) { return n->port; }

bool miscache__node_is(const miscache__node_t *n, const char *host,
                       int port) {
  return n->host && port == n->port && strcmp(n->host, host) == 0;
}

bool miscache__node_alive(miscache__node_t *n, bool push) {
  if (n->t && (n->pid != getpid() ||
               (!push && miscache__transport_broken(n->t))))
    miscache__node_drop(n);
  return n->t != NULL;
}

bool miscache__node_down(const miscache__node_t *n) {
  return n->down_until > miscache__mono_ms();
}

/* ---- RESP output buffer -------------------------------------------------- */

#define OBUF_KEEP (1u << 20) /* largest write buffer kept between requests */

static bool ob_reserve(miscache__node_t *n, size_t extra) {
  if (extra > SIZE_MAX / 4 - n->olen) return false; /* never wraps below */
  if (n->olen + extra <= n->ocap) return true;
  size_t cap = n->ocap ? n->ocap : 512;
  while (cap < n->olen + extra) cap *= 2;
  char *p = realloc(n->obuf, cap);
  if (!p) return false;
  n->obuf = p;
  n->ocap = cap;
  return true;
}

/* Appends "<mark><v>\r\n". */
static void ob_header(miscache__node_t *n, char mark, size_t v) {
  char tmp[24];
  int i = (int)sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  n->obuf[n->olen++] = mark;
  size_t digits = sizeof tmp - (size_t)i;
  memcpy(n->obuf + n->olen, tmp + i, digits);
  n->olen += digits;
  n->obuf[n->olen++] = '\r';
  n->obuf[n->olen++] = '\n';
}

static bool ob_command(miscache__node_t *n, int argc, const char *const *argv,
                       const size_t *lens) {
  size_t need = 24;
  for (int i = 0; i < argc; i++) {
    if (lens[i] > SIZE_MAX / 8 - need) return false;
    need += 24 + lens[i] + 2;
  }
  if (!ob_reserve(n, need)) return false;
  ob_header(n, '*', (size_t)argc);
  for (int i = 0; i < argc; i++) {
    ob_header(n, '$', lens[i]);
    memcpy(n->obuf + n->olen, argv[i], lens[i]);
    n->olen += lens[i];
    n->obuf[n->olen++] = '\r';
    n->obuf[n->olen++] = '\n';
  }
  return true;
}

static void ob_done(miscache__node_t *n) {
  n->olen = 0;
  if (n->ocap > OBUF_KEEP) { /* do not keep a huge buffer after one big write */
    free(n->obuf);
    n->obuf = NULL;
    n->ocap = 0;
  }
}

/* The write buffer could not hold a command: nothing was sent. */
static miscache_status_t nomem(miscache__node_t *n, const char *cmd) {
  n->olen = 0;
  node_err(n, "%s: out of memory formatting the request (nothing sent)", cmd);
  return MISCACHE_ERR_NOMEM;
}

/* argv/lens of "SELECT db"; num (>= 16 bytes) holds the number. */
static void select_args(int db, char *num, const char *argv[2],
                        size_t lens[2]) {
  int k = snprintf(num, 16, "%d", db);
  argv[0] = "SELECT", lens[0] = 6;
  argv[1] = num, lens[1] = (size_t)k;
}

static bool ob_select(miscache__node_t *n, int db) {
  char num[16];
  const char *argv[2];
  size_t lens[2];
  select_args(db, num, argv, lens);
  return ob_command(n, 2, argv, lens);
}

/* ---- requests -------------------------------------------------------------- */

/* timeout_ms: the budget the call had, for the message (never negative:
 * not the time that was left). */
static miscache_status_t transport_status(miscache__node_t *n,
                                          miscache__tstatus_t t,
                                          const char *cmd, int timeout_ms) {
  const char *why = n->t ? miscache__transport_errstr(n->t) : "?";
  n->last_t = t;
  switch (t) {
  case MISCACHE__T_OK: return MISCACHE_OK;
  case MISCACHE__T_TIMEOUT:
    node_err(n, "%s timed out: no complete reply within the %d ms %s "
                "timeout", cmd, timeout_ms,
             n->connecting ? "connect" : "command");
    return MISCACHE_ERR_UNAVAILABLE;
  case MISCACHE__T_PROTOCOL:
    node_err(n, "%s: %s", cmd, why); /* the reader says which */
    return MISCACHE_ERR_REPLY;
  case MISCACHE__T_TLS:
    node_err(n, "%s: %s", cmd, why);
    return MISCACHE_ERR_TLS;
  case MISCACHE__T_NOMEM:
    node_err(n, "%s: %s (the connection is dropped)", cmd, why);
    return MISCACHE_ERR_NOMEM;
  case MISCACHE__T_LOST:
    node_err(n, "%s: connection lost: %s", cmd, why[0] ? why : "closed");
    return MISCACHE_ERR_UNAVAILABLE;
  }
  return MISCACHE_ERR_UNAVAILABLE;
}

/* After the last reply of a request: whether nothing more came. Bytes
 * nobody asked for (a buggy proxy, a desynced connection) mean the replies
 * read may answer other commands: the connection is dropped (message
 * set). */
static bool in_step(miscache__node_t *n, const char *what) {
  size_t extra = miscache__transport_pending(n->t);
  if (!extra) return true;
  node_err(n, "%s: the server sent %zu byte%s more than the replies asked "
              "for: connection out of step, dropped",
           what, extra, extra == 1 ? "" : "s");
  miscache__node_drop(n);
  return false;
}

/* One command alone, for AUTH, PING and a lone SELECT. A transport failure
 * drops the connection. */
static miscache_status_t simple_command(miscache__node_t *n, int argc,
                                        const char *const *argv,
                                        const size_t *lens, int64_t deadline,
                                        int timeout_ms,
                                        miscache__reply_t **out) {
  n->olen = 0;
  if (!ob_command(n, argc, argv, lens)) return nomem(n, argv[0]);
  miscache__tstatus_t t =
      miscache__transport_write(n->t, n->obuf, n->olen, deadline);
  /* the buffer held AUTH's password: no copy of it stays in memory */
  miscache__wipe(n->obuf, n->olen);
  ob_done(n);
  if (t == MISCACHE__T_OK) t = miscache__transport_read(n->t, deadline, out);
  if (t != MISCACHE__T_OK) {
    miscache_status_t st = transport_status(n, t, argv[0], timeout_ms);
    miscache__node_drop(n);
    return st;
  }
  if (!in_step(n, argv[0])) {
    miscache__reply_free(*out);
    *out = NULL;
    return MISCACHE_ERR_REPLY;
  }
  return MISCACHE_OK;
}

/* A connect failed: open (or lengthen) the backoff window. */
static void breaker_fail(miscache__node_t *n) {
  n->stats->connect_failures++;
  if (n->fails++ == 0) {
    n->backoff_ms = n->backoff_min_ms;
    n->stats->breaker_opens++;
  } else {
    n->backoff_ms = n->backoff_ms > n->backoff_max_ms / 2 ? n->backoff_max_ms
                                                          : n->backoff_ms * 2;
  }
  int half = n->backoff_ms / 2;
  int window = n->backoff_ms - half +
               (int)(miscache__xorshift(&n->rng) % (uint64_t)(half + 1));
  n->down_until = miscache__mono_ms() + window;
  const char *why = n->err;
  size_t pre = strlen("redis ") + strlen(n->addr) + 2; /* "redis A: " */
  if (strlen(why) > pre && strncmp(why, "redis ", 6) == 0) why += pre;
  snprintf(n->last_fail, sizeof n->last_fail, "%s", why);
  miscache__event(&n->hook, MISCACHE_EV_CONNECT_FAILED, n->addr, 0, n->fails,
                  "%s", why);
  if (n->fails == 1)
    miscache__event(&n->hook, MISCACHE_EV_BREAKER_OPEN, n->addr,
                    (int64_t)window * 1000, 0,
                    "down: calls fail at once for %d ms, then a connect is "
                    "tried",
                    window);
}

static void breaker_ok(miscache__node_t *n) {
  if (n->fails) {
    n->stats->breaker_closes++;
    miscache__event(&n->hook, MISCACHE_EV_BREAKER_CLOSED, n->addr, 0, n->fails,
                    "answering again after %u failed connects", n->fails);
  }
  n->fails = 0;
  n->down_until = 0;
}

/* What a new connection sends first: AUTH; or, over TLS, a PING (a TLS
 * 1.3 server refuses a missing client certificate only after the
 * handshake, and the caller should hear it now). argc, 0 for nothing. */
static int prelude_args(const miscache__node_t *n, const char *argv[3],
                        size_t lens[3]) {
  int argc = 0;
  if (n->password) {
    argv[argc] = "AUTH", lens[argc++] = 4;
    if (n->user && n->user[0])
      argv[argc] = n->user, lens[argc++] = strlen(n->user);
    argv[argc] = n->password, lens[argc++] = strlen(n->password);
  } else if (n->tls) {
    argv[argc] = "PING", lens[argc++] = 4;
  }
  return argc;
}

/* The reply r to that (freed): OK, or ERR_AUTH / the PING's error with the
 * message set. */
static miscache_status_t prelude_reply(miscache__node_t *n,
                                       miscache__reply_t *r) {
  miscache_status_t st = MISCACHE_OK;
  if (miscache__reply_type(r) == MISCACHE__R_ERROR) {
    if (n->password) {
      char text[256];
      node_err(n, "AUTH%s%s refused: %s", n->user ? " as " : "",
               n->user ? n->user : "",
               miscache__reply_text(r, text, sizeof text));
      st = MISCACHE_ERR_AUTH;
    } else {
      st = miscache__reply_error(r, "PING", n->err, n->errlen);
    }
  }
  miscache__reply_free(r);
  return st;
}

/* A TLS connection lost right after the handshake, before the reply to
 * the first command: the alert saying why may be lost with a reset (a slow
 * client writes before it reads the alert). ERR_TLS, the message says so. */
static miscache_status_t tls_refused(miscache__node_t *n) {
  char was[MISCACHE_ERRMSG_SIZE];
  snprintf(was, sizeof was, "%s", n->err);
  snprintf(n->err, n->errlen,
           "%s (the server closed the TLS connection right after the "
           "handshake: does it require a client certificate?)",
           was);
  return MISCACHE_ERR_TLS;
}

static miscache_status_t connect_now(miscache__node_t *n) {
  int64_t deadline = miscache__mono_ms() + n->connect_timeout_ms;
  char why[MISCACHE_ERRMSG_SIZE];
  n->stats->connects++;
  miscache_status_t st =
      miscache__transport_open(n->host, n->port, n->path, n->tls, &n->limits,
                               deadline, false, &n->t, why, sizeof why);
  if (st != MISCACHE_OK) {
    node_err(n, "%s", why);
    return st;
  }
  n->pid = getpid();
  n->cur_db = 0; /* a new connection starts on db 0 */
  n->dbs_ok = 1;
  const char *argv[3];
  size_t lens[3];
  int argc = prelude_args(n, argv, lens);
  if (argc == 0) return MISCACHE_OK;
  miscache__reply_t *r = NULL;
  n->connecting = true; /* its budget is the connect timeout's */
  st = simple_command(n, argc, argv, lens, deadline, n->connect_timeout_ms, &r);
  n->connecting = false;
  if (st == MISCACHE_ERR_UNAVAILABLE && n->tls && n->last_t == MISCACHE__T_LOST)
    return tls_refused(n);
  if (st != MISCACHE_OK) return st;
  st = prelude_reply(n, r);
  if (st != MISCACHE_OK) miscache__node_drop(n);
  return st;
}

/* Inside the breaker's backoff window: fail at once (message set). */
static miscache_status_t breaker_check(miscache__node_t *n) {
  int64_t left = n->down_until ? n->down_until - miscache__mono_ms() : 0;
  if (left <= 0) return MISCACHE_OK;
  n->stats->fast_failures++;
  node_err(n, "down: %u connect%s failed in a row, next attempt in %lld "
              "ms (last: %s)",
           n->fails, n->fails == 1 ? "" : "s", (long long)left,
           n->last_fail);
  /* a refusal that waiting will not cure keeps its own status */
  return n->last_status == MISCACHE_ERR_AUTH ||
                 n->last_status == MISCACHE_ERR_TLS
             ? n->last_status
             : MISCACHE_ERR_UNAVAILABLE;
}

/* A connect (started at n->conn_t0) is done: the event, the breaker. */
static void connected(miscache__node_t *n) {
  n->conn_deadline = 0;
  miscache__event(&n->hook, MISCACHE_EV_CONNECT, n->addr,
                  miscache__mono_us() - n->conn_t0, 0, "connected%s",
                  n->tls ? " (TLS)" : "");
  breaker_ok(n);
}

/* A connect failed with st (message set): the breaker; returns st. */
static miscache_status_t connect_failed(miscache__node_t *n,
                                        miscache_status_t st) {
  n->conn_deadline = 0;
  if (st != MISCACHE_ERR_NOMEM) {
    n->last_status = st;
    breaker_fail(n);
  }
  return st;
}

miscache_status_t miscache__node_connect(miscache__node_t *n) {
  if (n->t && n->pid != getpid()) miscache__node_drop(n); /* after fork() */
  if (n->t) return MISCACHE_OK;
  miscache_status_t st = breaker_check(n);
  if (st != MISCACHE_OK) return st;
  n->conn_t0 = miscache__mono_us();
  st = connect_now(n);
  if (st == MISCACHE_OK) connected(n);
  else connect_failed(n, st);
  return st;
}

/* First use of db on this connection: SELECT alone, so nothing runs in the
 * wrong db if the server refuses the number. */
static miscache_status_t select_alone(miscache__node_t *n, int db,
                                      int64_t deadline, int timeout_ms) {
  char num[16];
  const char *argv[2];
  size_t lens[2];
  select_args(db, num, argv, lens);
  miscache__reply_t *r = NULL;
  miscache_status_t st =
      simple_command(n, 2, argv, lens, deadline, timeout_ms, &r);
  if (st != MISCACHE_OK) return st;
  if (miscache__reply_type(r) == MISCACHE__R_ERROR) {
    char what[64];
    snprintf(what, sizeof what, "SELECT %d", db);
    st = miscache__reply_error(r, what, n->err, n->errlen);
    miscache__reply_free(r);
    return st;
  }
  miscache__reply_free(r);
  n->cur_db = db;
  if (db < 64) n->dbs_ok |= UINT64_C(1) << db;
  return MISCACHE_OK;
}

miscache_status_t miscache__node_send(miscache__node_t *n, int db,
                                      size_t ncmd, const miscache__cmd_t *cmds,
                                      unsigned flags, miscache__pipe_t *p) {
  p->ncmd = ncmd;
  p->sel = false;
  p->fresh = false;
  p->resendable = false;
  p->unconnected = false;
  p->push = (flags & MISCACHE__PUSH) != 0;
  p->what = ncmd ? cmds[0].argv[0] : "";
  if (ncmd == 0) return MISCACHE_OK;
  if (miscache__mono_ms() >= p->deadline) { /* spent (a long redirection
                                               chain): send nothing */
    node_err(n, "%s timed out: the call's %d ms command timeout passed "
                "before it could be sent", p->what, n->command_timeout_ms);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  /* a child after fork() never touches its parent's connection */
  if (n->t && n->pid != getpid()) miscache__node_drop(n);
  if (n->t && !(flags & MISCACHE__PUSH) && miscache__transport_broken(n->t))
    miscache__node_drop(n);
  if (!n->t && (flags & MISCACHE__SAME_CONN)) {
    node_err(n, "%s: the connection of the transaction was lost",
             cmds[0].argv[0]);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  if (!n->t && (flags & MISCACHE__NO_CONNECT)) {
    node_err(n, "%s: not connected", cmds[0].argv[0]);
    p->unconnected = true;
    return MISCACHE_ERR_UNAVAILABLE;
  }
  if (!n->t) {
    int64_t t0 = miscache__mono_ms();
    miscache_status_t st = miscache__node_connect(n);
    if (st != MISCACHE_OK) return st;
    p->deadline += miscache__mono_ms() - t0; /* the connect has its own
                                                timeout */
    p->fresh = true;
  }
  if (db >= 0 && db != n->cur_db && !(db < 64 && (n->dbs_ok >> db) & 1u)) {
    miscache_status_t st =
        select_alone(n, db, p->deadline, n->command_timeout_ms);
    if (st != MISCACHE_OK) {
      p->resendable = !n->t && !p->fresh; /* an old connection, found lost */
      return st;
    }
  }
  p->sel = db >= 0 && db != n->cur_db;
  p->db = db;
  n->olen = 0;
  if (p->sel && !ob_select(n, db)) return nomem(n, "SELECT");
  for (size_t i = 0; i < ncmd; i++)
    if (!ob_command(n, cmds[i].argc, cmds[i].argv, cmds[i].lens))
      return nomem(n, cmds[i].argv[0]);
  miscache__tstatus_t t =
      miscache__transport_write(n->t, n->obuf, n->olen, p->deadline);
  ob_done(n);
  if (t != MISCACHE__T_OK) {
    miscache_status_t st =
        transport_status(n, t, p->what, n->command_timeout_ms);
    miscache__node_drop(n);
    p->resendable = t == MISCACHE__T_LOST && !p->fresh;
    return st;
  }
  return MISCACHE_OK;
}

miscache_status_t miscache__node_recv(miscache__node_t *n,
                                      miscache__reply_t **replies,
                                      miscache__pipe_t *p) {
  size_t ncmd = p->ncmd;
  memset(replies, 0, ncmd * sizeof *replies);
  if (ncmd == 0) return MISCACHE_OK;
  if (!n->t) { /* dropped since the send (cannot happen; kept safe) */
    node_err(n, "%s: connection lost", p->what);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  miscache__reply_t *sel_reply = NULL;
  miscache__tstatus_t t = MISCACHE__T_OK;
  if (p->sel) t = miscache__transport_read(n->t, p->deadline, &sel_reply);
  size_t got = 0;
  while (t == MISCACHE__T_OK && got < ncmd) {
    t = miscache__transport_read(n->t, p->deadline, &replies[got]);
    if (t == MISCACHE__T_OK) got++;
  }
  if (t != MISCACHE__T_OK) {
    miscache__reply_free(sel_reply);
    for (size_t j = 0; j < got; j++) miscache__reply_free(replies[j]);
    memset(replies, 0, ncmd * sizeof *replies);
    miscache_status_t st =
        transport_status(n, t, p->what, n->command_timeout_ms);
    miscache__node_drop(n);
    p->resendable = t == MISCACHE__T_LOST && !p->fresh;
    return st;
  }
  if (!p->push && !in_step(n, p->what)) {
    /* these replies may not be the answers to these commands: none goes
     * out; a fresh connection may do */
    miscache__reply_free(sel_reply);
    for (size_t j = 0; j < ncmd; j++) miscache__reply_free(replies[j]);
    memset(replies, 0, ncmd * sizeof *replies);
    p->resendable = true;
    return MISCACHE_ERR_REPLY;
  }
  if (p->sel) {
    miscache_status_t st = MISCACHE_OK;
    if (miscache__reply_type(sel_reply) == MISCACHE__R_ERROR) {
      /* Cannot happen for a db already selected once on this connection;
       * kept so a surprise never passes silently. */
      st = miscache__reply_error(sel_reply, "SELECT", n->err, n->errlen);
      for (size_t i = 0; i < ncmd; i++) miscache__reply_free(replies[i]);
      memset(replies, 0, ncmd * sizeof *replies);
      n->cur_db = -1;
    } else {
      n->cur_db = p->db;
    }
    miscache__reply_free(sel_reply);
    return st;
  }
  return MISCACHE_OK;
}

miscache_status_t miscache__node_exec(miscache__node_t *n, int db, size_t ncmd,
                                      const miscache__cmd_t *cmds,
                                      miscache__reply_t **replies,
                                      unsigned flags, int64_t deadline,
                                      miscache__pipe_t *info) {
  miscache__pipe_t p = {.deadline = deadline};
  memset(replies, 0, ncmd * sizeof *replies);
  miscache_status_t st = miscache__node_send(n, db, ncmd, cmds, flags, &p);
  if (st == MISCACHE_OK) st = miscache__node_recv(n, replies, &p);
  if (info) *info = p;
  return st;
}

miscache_status_t miscache__node_ask(miscache__node_t *n,
                                     const miscache__cmd_t *cmd,
                                     miscache__reply_t **reply,
                                     int64_t deadline) {
  miscache__pipe_t info;
  miscache_status_t st = miscache__node_exec(n, MISCACHE__NO_DB, 1, cmd, reply,
                                             0, deadline, &info);
  if (st != MISCACHE_OK && info.resendable)
    st = miscache__node_exec(n, MISCACHE__NO_DB, 1, cmd, reply, 0, deadline,
                             NULL);
  return st;
}

miscache_status_t miscache__node_poll(miscache__node_t *n, int64_t deadline,
                                      miscache__reply_t **reply) {
  *reply = NULL;
  if (n->t && n->pid != getpid()) miscache__node_drop(n);
  if (!n->t) {
    node_err(n, "push connection: not connected");
    return MISCACHE_ERR_UNAVAILABLE;
  }
  miscache__tstatus_t t = miscache__transport_read(n->t, deadline, reply);
  if (t == MISCACHE__T_OK) return MISCACHE_OK;
  if (t == MISCACHE__T_TIMEOUT) return MISCACHE_MISS;
  miscache_status_t st = transport_status(n, t, "push connection", 0);
  miscache__node_drop(n);
  return st;
}

/* ---- non-blocking use (the async handle, core/async.c) -------------------- */

int miscache__node_fd(const miscache__node_t *n) {
  return n->t && n->pid == getpid() ? miscache__transport_fd(n->t) : -1;
}

static void async_reset(miscache__node_t *n) {
  if (n->wipe_len) miscache__wipe(n->obuf, n->wipe_len); /* AUTH's password */
  n->wipe_len = 0;
  n->olen = 0;
  n->ooff = 0;
  ob_done(n);
}

miscache_status_t miscache__node_connect_start(miscache__node_t *n) {
  if (n->t) return MISCACHE_OK;
  miscache_status_t st = breaker_check(n);
  if (st != MISCACHE_OK) return st;
  n->stats->connects++;
  n->conn_t0 = miscache__mono_us();
  int64_t deadline = miscache__mono_ms() + n->connect_timeout_ms;
  char why[MISCACHE_ERRMSG_SIZE];
  st = miscache__transport_open(n->host, n->port, n->path, n->tls,
                                &n->limits, deadline, true, &n->t, why,
                                sizeof why);
  if (st != MISCACHE_OK && st != MISCACHE_MISS) {
    node_err(n, "%s", why);
    return connect_failed(n, st);
  }
  n->pid = getpid();
  n->cur_db = 0; /* a new connection starts on db 0 */
  n->dbs_ok = 1;
  n->conn_deadline = deadline;
  async_reset(n);
  const char *argv[3];
  size_t lens[3];
  int argc = prelude_args(n, argv, lens);
  if (argc && !ob_command(n, argc, argv, lens)) {
    miscache__node_async_drop(n);
    node_err(n, "connect: out of memory");
    return connect_failed(n, MISCACHE_ERR_NOMEM);
  }
  n->prelude = argc > 0;
  n->wipe_len = n->password ? n->olen : 0;
  if (st == MISCACHE_OK && !n->prelude) connected(n);
  return st;
}

miscache_status_t miscache__node_connect_step(miscache__node_t *n) {
  if (!n->t) return MISCACHE_ERR_UNAVAILABLE;
  char why[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache__transport_step(n->t, why, sizeof why);
  if (st == MISCACHE_MISS) return st;
  if (st != MISCACHE_OK) {
    node_err(n, "%s", why);
    return connect_failed(n, st);
  }
  if (!n->prelude) connected(n);
  return MISCACHE_OK;
}

bool miscache__node_connecting(const miscache__node_t *n) {
  return n->t && miscache__transport_connecting(n->t);
}

bool miscache__node_connect_wants_write(const miscache__node_t *n) {
  return n->t && miscache__transport_wants_write(n->t);
}

int64_t miscache__node_connect_deadline(const miscache__node_t *n) {
  return n->t ? n->conn_deadline : 0;
}

miscache_status_t miscache__node_connect_timed_out(miscache__node_t *n) {
  node_err(n, "connect timed out: not connected within the %d ms connect "
              "timeout%s",
           n->connect_timeout_ms,
           miscache__node_connecting(n) ? "" : " (no reply to AUTH or PING)");
  return connect_failed(n, MISCACHE_ERR_UNAVAILABLE);
}

miscache_status_t miscache__node_queue(miscache__node_t *n, int db,
                                       size_t ncmd,
                                       const miscache__cmd_t *cmds,
                                       bool *sel) {
  *sel = false;
  if (n->t && n->pid != getpid()) miscache__node_drop(n); /* after fork() */
  if (!n->t) { /* a connect in steps: the loop drives it */
    miscache_status_t st = miscache__node_connect_start(n);
    if (st != MISCACHE_OK && st != MISCACHE_MISS) return st;
  }
  size_t mark = n->olen;
  bool ok = true;
  if (db >= 0 && db != n->cur_db) ok = *sel = ob_select(n, db);
  for (size_t i = 0; ok && i < ncmd; i++)
    ok = ob_command(n, cmds[i].argc, cmds[i].argv, cmds[i].lens);
  if (!ok) { /* nothing of this request stays queued */
    n->olen = mark;
    *sel = false;
    node_err(n, "%s: out of memory formatting the request (nothing sent)",
             ncmd ? cmds[0].argv[0] : "request");
    return MISCACHE_ERR_NOMEM;
  }
  if (*sel) n->cur_db = db;
  return MISCACHE_OK;
}

bool miscache__node_unsent(const miscache__node_t *n) {
  return n->t && n->ooff < n->olen;
}

/* A failure of the async connection: the message and the status; the
 * owner stops watching the socket, then drops it (miscache__node_async_drop). */
static miscache_status_t async_fail(miscache__node_t *n, miscache__tstatus_t t,
                                    const char *what) {
  bool setting_up = n->prelude; /* the connect is not done yet */
  n->connecting = setting_up;
  miscache_status_t st = transport_status(n, t, what, n->command_timeout_ms);
  n->connecting = false;
  if (!setting_up) return st;
  if (st == MISCACHE_ERR_UNAVAILABLE && n->tls && t == MISCACHE__T_LOST)
    st = tls_refused(n);
  return connect_failed(n, st);
}

miscache_status_t miscache__node_flush(miscache__node_t *n, bool *want_read) {
  *want_read = false;
  if (!n->t || miscache__node_connecting(n)) return MISCACHE_OK;
  size_t done = 0;
  miscache__tstatus_t t = miscache__transport_write_now(
      n->t, n->obuf + n->ooff, n->olen - n->ooff, &done, want_read);
  if (t != MISCACHE__T_OK) return async_fail(n, t, "write");
  n->ooff += done;
  if (n->wipe_len && n->ooff >= n->wipe_len) { /* AUTH has gone */
    miscache__wipe(n->obuf, n->wipe_len);
    n->wipe_len = 0;
  }
  if (n->ooff == n->olen) async_reset(n);
  return MISCACHE_OK;
}

miscache_status_t miscache__node_read_now(miscache__node_t *n) {
  if (!n->t || miscache__node_connecting(n)) return MISCACHE_OK;
  miscache__tstatus_t t = miscache__transport_read_now(n->t);
  return t == MISCACHE__T_OK ? MISCACHE_OK : async_fail(n, t, "read");
}

miscache_status_t miscache__node_take(miscache__node_t *n,
                                      miscache__reply_t **out) {
  *out = NULL;
  if (!n->t) return MISCACHE_MISS;
  int k = miscache__transport_take(n->t, out);
  if (k > 0 && n->prelude) { /* the new connection's AUTH or PING */
    n->prelude = false;
    miscache_status_t st = prelude_reply(n, *out);
    *out = NULL;
    if (st != MISCACHE_OK) return connect_failed(n, st);
    connected(n);
    k = miscache__transport_take(n->t, out);
  }
  if (k > 0) return MISCACHE_OK;
  if (k == 0) return MISCACHE_MISS;
  return async_fail(n, k == -2 ? MISCACHE__T_NOMEM : MISCACHE__T_PROTOCOL,
                    "reply");
}

void miscache__node_async_drop(miscache__node_t *n) {
  miscache__node_drop(n);
  async_reset(n);
  n->prelude = false;
}

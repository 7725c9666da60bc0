/*
 * One connection to one Redis node. The only file that includes hiredis.
 *
 * hiredis connects; after that the socket is non-blocking and this file does
 * the I/O: commands are formatted here (RESP) and written with
 * send(MSG_NOSIGNAL) (a closed socket gives EPIPE, never SIGPIPE), replies
 * are read with recv() and parsed by hiredis's redisReader. Every wait is a
 * poll() bounded by one deadline per call, so the command timeout bounds the
 * whole call however slowly the server drips its reply. A connection
 * remembers the pid that opened it: a forked child drops it unused.
 * A SELECT travels in the same write as the command that needs it, so
 * changing db costs no extra round trip, except the first time a db number
 * is used on a connection: then SELECT goes alone, because a pipelined write
 * after a refused SELECT would land in the wrong db.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "internal.h"

struct miscache__conn {
  miscache__endpoint_t ep;
  int connect_timeout_ms;
  int command_timeout_ms;
  redisContext *ctx;   /* connected by hiredis; its fd and reader are ours */
  pid_t pid;           /* process that opened ctx */
  int cur_db;          /* db the connection is on; -1 unknown */
  uint64_t dbs_ok;     /* bit n: SELECT n succeeded on this connection */
  char *obuf;
  size_t olen, ocap;
  char *err;
  size_t errlen;
};

/* ---- replies ------------------------------------------------------------ */

miscache__rtype_t miscache__reply_type(const miscache__reply_t *r) {
  switch (((const redisReply *)r)->type) {
  case REDIS_REPLY_STRING: return MISCACHE__R_STRING;
  case REDIS_REPLY_ARRAY: return MISCACHE__R_ARRAY;
  case REDIS_REPLY_INTEGER: return MISCACHE__R_INTEGER;
  case REDIS_REPLY_NIL: return MISCACHE__R_NIL;
  case REDIS_REPLY_STATUS: return MISCACHE__R_STATUS;
  case REDIS_REPLY_ERROR: return MISCACHE__R_ERROR;
  default: return MISCACHE__R_OTHER;
  }
}

const char *miscache__reply_str(const miscache__reply_t *r, size_t *len) {
  const redisReply *rr = (const redisReply *)r;
  if (len) *len = rr->str ? rr->len : 0;
  return rr->str ? rr->str : "";
}

long long miscache__reply_int(const miscache__reply_t *r) {
  return ((const redisReply *)r)->integer;
}

size_t miscache__reply_count(const miscache__reply_t *r) {
  const redisReply *rr = (const redisReply *)r;
  return rr->type == REDIS_REPLY_ARRAY ? rr->elements : 0;
}

const miscache__reply_t *miscache__reply_at(const miscache__reply_t *r,
                                            size_t i) {
  const redisReply *rr = (const redisReply *)r;
  if (rr->type != REDIS_REPLY_ARRAY || i >= rr->elements) return NULL;
  return (const miscache__reply_t *)rr->element[i];
}

void miscache__reply_free(miscache__reply_t *r) {
  if (r) freeReplyObject(r);
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

miscache_status_t miscache__reply_error(const miscache__reply_t *r,
                                        const char *what, char *err,
                                        size_t errlen) {
  const char *text = miscache__reply_str(r, NULL);
  snprintf(err, errlen, "%s: %s", what, text);
  if (starts_with(text, "NOAUTH") || starts_with(text, "WRONGPASS"))
    return MISCACHE_ERR_AUTH;
  if (starts_with(text, "WRONGTYPE")) return MISCACHE_ERR_DECODE;
  if (starts_with(text, "LOADING") || starts_with(text, "BUSY") ||
      starts_with(text, "MASTERDOWN") || starts_with(text, "TRYAGAIN"))
    return MISCACHE_ERR_UNAVAILABLE;
  return MISCACHE_ERR_SERVER;
}

/* ---- connection --------------------------------------------------------- */

static void conn_err(miscache__conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_err(miscache__conn_t *c, const char *fmt, ...) {
  char what[MISCACHE_ERRMSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (c->ep.kind == MISCACHE__EP_UNIX)
    snprintf(c->err, c->errlen, "redis unix:%s: %s", c->ep.path, what);
  else
    snprintf(c->err, c->errlen, "redis %s:%d: %s", c->ep.host, c->ep.port,
             what);
}

miscache__conn_t *miscache__conn_new(const miscache__endpoint_t *ep,
                                     int connect_timeout_ms,
                                     int command_timeout_ms, char *err,
                                     size_t errlen) {
  miscache__conn_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (miscache__endpoint_copy(&c->ep, ep) != MISCACHE_OK) {
    free(c);
    return NULL;
  }
  c->connect_timeout_ms = connect_timeout_ms;
  c->command_timeout_ms = command_timeout_ms;
  c->cur_db = -1;
  c->err = err;
  c->errlen = errlen;
  return c;
}

static void conn_drop(miscache__conn_t *c) {
  /* redisFree only close()s the fd: no byte is written, so this is also
   * how a forked child lets go of its parent's connection. */
  if (c->ctx) redisFree(c->ctx);
  c->ctx = NULL;
  c->cur_db = -1;
  c->dbs_ok = 0;
}

void miscache__conn_free(miscache__conn_t *c) {
  if (!c) return;
  conn_drop(c);
  miscache__endpoint_clear(&c->ep);
  free(c->obuf);
  free(c);
}

static struct timeval ms_to_tv(int ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  return tv;
}

/* ---- RESP output buffer -------------------------------------------------- */

#define OBUF_KEEP (1u << 20) /* largest write buffer kept between requests */

static bool ob_reserve(miscache__conn_t *c, size_t extra) {
  if (extra > SIZE_MAX / 4 - c->olen) return false; /* never wraps below */
  if (c->olen + extra <= c->ocap) return true;
  size_t cap = c->ocap ? c->ocap : 512;
  while (cap < c->olen + extra) cap *= 2;
  char *p = realloc(c->obuf, cap);
  if (!p) return false;
  c->obuf = p;
  c->ocap = cap;
  return true;
}

/* Appends "<mark><n>\r\n". */
static void ob_header(miscache__conn_t *c, char mark, size_t n) {
  char tmp[24];
  int i = (int)sizeof tmp;
  do {
    tmp[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  c->obuf[c->olen++] = mark;
  size_t digits = sizeof tmp - (size_t)i;
  memcpy(c->obuf + c->olen, tmp + i, digits);
  c->olen += digits;
  c->obuf[c->olen++] = '\r';
  c->obuf[c->olen++] = '\n';
}

static bool ob_command(miscache__conn_t *c, int argc, const char *const *argv,
                       const size_t *lens) {
  size_t need = 24;
  for (int i = 0; i < argc; i++) {
    if (lens[i] > SIZE_MAX / 8 - need) return false;
    need += 24 + lens[i] + 2;
  }
  if (!ob_reserve(c, need)) return false;
  ob_header(c, '*', (size_t)argc);
  for (int i = 0; i < argc; i++) {
    ob_header(c, '$', lens[i]);
    memcpy(c->obuf + c->olen, argv[i], lens[i]);
    c->olen += lens[i];
    c->obuf[c->olen++] = '\r';
    c->obuf[c->olen++] = '\n';
  }
  return true;
}

/* The write buffer could not hold a command: nothing was sent. */
static miscache_status_t nomem(miscache__conn_t *c, const char *cmd) {
  c->olen = 0;
  conn_err(c, "%s: out of memory formatting the request (nothing sent)", cmd);
  return MISCACHE_ERR_NOMEM;
}

/* argv/lens of "SELECT db"; num (>= 16 bytes) holds the number. */
static void select_args(int db, char *num, const char *argv[2],
                        size_t lens[2]) {
  int n = snprintf(num, 16, "%d", db);
  argv[0] = "SELECT", lens[0] = 6;
  argv[1] = num, lens[1] = (size_t)n;
}

static bool ob_select(miscache__conn_t *c, int db) {
  char num[16];
  const char *argv[2];
  size_t lens[2];
  select_args(db, num, argv, lens);
  return ob_command(c, 2, argv, lens);
}

/* ---- transport ----------------------------------------------------------- */

typedef enum { T_OK, T_LOST, T_TIMEOUT, T_PROTOCOL } transport_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on the socket until the call's deadline (CLOCK_MONOTONIC
 * ms). An EINTR polls again with the time that is left, never a full new
 * timeout. T_OK when ready. */
static transport_t wait_fd(miscache__conn_t *c, short events, int64_t deadline,
                           int *err_no) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return T_TIMEOUT;
    struct pollfd p = {.fd = c->ctx->fd, .events = events};
    int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (n > 0) return T_OK; /* readable, writable, or an error/hang-up that
                               the following recv/send reports */
    if (n == 0) return T_TIMEOUT;
    if (errno != EINTR) {
      *err_no = errno;
      return T_LOST;
    }
  }
}

static transport_t send_all(miscache__conn_t *c, int64_t deadline,
                            int *err_no) {
  size_t off = 0;
  while (off < c->olen) {
    ssize_t w = send(c->ctx->fd, c->obuf + off, c->olen - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        transport_t t = wait_fd(c, POLLOUT, deadline, err_no);
        if (t != T_OK) return t;
        continue;
      }
      *err_no = errno;
      return T_LOST;
    }
    off += (size_t)w;
  }
  c->olen = 0;
  if (c->ocap > OBUF_KEEP) { /* do not keep a huge buffer after one big write */
    free(c->obuf);
    c->obuf = NULL;
    c->ocap = 0;
  }
  return T_OK;
}

/* The next reply: parsed by hiredis's reader from bytes this file reads
 * from the (non-blocking) socket, all before the call's deadline. */
static transport_t read_reply(miscache__conn_t *c, int64_t deadline,
                              redisReply **out, int *err_no) {
  redisReader *rd = c->ctx->reader;
  bool full = false; /* the last recv() filled the buffer: more is likely */
  for (;;) {
    void *r = NULL;
    if (redisReaderGetReply(rd, &r) != REDIS_OK) {
      snprintf(c->ctx->errstr, sizeof c->ctx->errstr, "%s", rd->errstr);
      return T_PROTOCOL;
    }
    if (r) {
      *out = r;
      return T_OK;
    }
    /* wait first: right after a request the reply is rarely there yet,
     * so a recv() before poll() would mostly be a wasted syscall */
    if (!full || now_ms() >= deadline) {
      transport_t t = wait_fd(c, POLLIN, deadline, err_no);
      if (t != T_OK) return t;
    }
    char buf[65536];
    ssize_t n = recv(c->ctx->fd, buf, sizeof buf, 0);
    full = n == (ssize_t)sizeof buf;
    if (n > 0) {
      if (redisReaderFeed(rd, buf, (size_t)n) != REDIS_OK) {
        snprintf(c->ctx->errstr, sizeof c->ctx->errstr, "%s", rd->errstr);
        return T_PROTOCOL;
      }
      continue;
    }
    if (n == 0) {
      snprintf(c->ctx->errstr, sizeof c->ctx->errstr,
               "server closed the connection");
      return T_LOST;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    *err_no = errno;
    return T_LOST;
  }
}

/* true when an idle connection has something to read: EOF from a server
 * that closed it (restart, CLIENT KILL, idle timeout) or stray data. Either
 * way it is not fit for the next request. */
static bool conn_looks_dead(miscache__conn_t *c) {
  struct pollfd p = {.fd = c->ctx->fd, .events = POLLIN};
  return poll(&p, 1, 0) != 0;
}

static miscache_status_t transport_status(miscache__conn_t *c, transport_t t,
                                          int err_no, const char *cmd) {
  switch (t) {
  case T_OK: return MISCACHE_OK;
  case T_TIMEOUT:
    conn_err(c, "%s timed out: no complete reply within the %d ms command "
                "timeout", cmd, c->command_timeout_ms);
    return MISCACHE_ERR_UNAVAILABLE;
  case T_PROTOCOL:
    conn_err(c, "%s: protocol error: %s", cmd,
             c->ctx ? c->ctx->errstr : "?");
    return MISCACHE_ERR_REPLY;
  case T_LOST:
    conn_err(c, "%s: connection lost: %s", cmd,
             c->ctx && c->ctx->errstr[0] ? c->ctx->errstr
                                         : strerror(err_no ? err_no : EPIPE));
    return MISCACHE_ERR_UNAVAILABLE;
  }
  return MISCACHE_ERR_UNAVAILABLE;
}

/* One command, used during connect (AUTH) and for a lone SELECT. */
static miscache_status_t simple_command(miscache__conn_t *c, int argc,
                                        const char *const *argv,
                                        const size_t *lens, int64_t deadline,
                                        redisReply **out) {
  int err_no = 0;
  c->olen = 0;
  if (!ob_command(c, argc, argv, lens)) return nomem(c, argv[0]);
  transport_t t = send_all(c, deadline, &err_no);
  if (t == T_OK) t = read_reply(c, deadline, out, &err_no);
  if (t != T_OK) {
    miscache_status_t st = transport_status(c, t, err_no, argv[0]);
    conn_drop(c);
    return st;
  }
  return MISCACHE_OK;
}

miscache_status_t miscache__conn_connect(miscache__conn_t *c) {
  if (c->ctx && c->pid != getpid()) conn_drop(c); /* inherited over fork() */
  if (c->ctx) return MISCACHE_OK;
  struct timeval ctv = ms_to_tv(c->connect_timeout_ms);
  redisContext *ctx = c->ep.kind == MISCACHE__EP_UNIX
                          ? redisConnectUnixWithTimeout(c->ep.path, ctv)
                          : redisConnectWithTimeout(c->ep.host, c->ep.port, ctv);
  if (!ctx) {
    conn_err(c, "connect: out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  if (ctx->err) {
    conn_err(c, "connect failed: %s", ctx->errstr);
    redisFree(ctx);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  /* From here on this file does the I/O: non-blocking, each wait bounded
   * by the call's deadline (see wait_fd). */
  int fl = fcntl(ctx->fd, F_GETFL);
  if (fl < 0 || fcntl(ctx->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    conn_err(c, "cannot make the socket non-blocking: %s", strerror(errno));
    redisFree(ctx);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  if (c->ep.kind == MISCACHE__EP_TCP) (void)redisEnableKeepAlive(ctx);
  c->ctx = ctx;
  c->pid = getpid();
  c->cur_db = 0; /* a new connection starts on db 0 */
  c->dbs_ok = 1;
  if (c->ep.password) {
    const char *argv[3];
    size_t lens[3];
    int argc = 0;
    argv[argc] = "AUTH";
    lens[argc++] = 4;
    if (c->ep.user && c->ep.user[0]) {
      argv[argc] = c->ep.user;
      lens[argc++] = strlen(c->ep.user);
    }
    argv[argc] = c->ep.password;
    lens[argc++] = strlen(c->ep.password);
    redisReply *r = NULL;
    miscache_status_t st = simple_command(
        c, argc, argv, lens, now_ms() + c->command_timeout_ms, &r);
    if (st != MISCACHE_OK) return st;
    if (r->type == REDIS_REPLY_ERROR) {
      conn_err(c, "AUTH%s%s refused: %s", c->ep.user ? " as " : "",
               c->ep.user ? c->ep.user : "", r->str);
      freeReplyObject(r);
      conn_drop(c);
      return MISCACHE_ERR_AUTH;
    }
    freeReplyObject(r);
  }
  return MISCACHE_OK;
}

/* First use of db on this connection: SELECT alone, so nothing runs in the
 * wrong db if the server refuses the number. */
static miscache_status_t select_alone(miscache__conn_t *c, int db,
                                      int64_t deadline) {
  char num[16];
  const char *argv[2];
  size_t lens[2];
  select_args(db, num, argv, lens);
  redisReply *r = NULL;
  miscache_status_t st = simple_command(c, 2, argv, lens, deadline, &r);
  if (st != MISCACHE_OK) return st;
  if (r->type == REDIS_REPLY_ERROR) {
    char what[64];
    snprintf(what, sizeof what, "SELECT %d", db);
    st = miscache__reply_error((miscache__reply_t *)r, what, c->err, c->errlen);
    freeReplyObject(r);
    return st;
  }
  freeReplyObject(r);
  c->cur_db = db;
  if (db < 64) c->dbs_ok |= UINT64_C(1) << db;
  return MISCACHE_OK;
}

miscache_status_t miscache__conn_exec(miscache__conn_t *c, int db, size_t n,
                                      const miscache__cmd_t *cmds,
                                      miscache__reply_t **replies,
                                      unsigned flags) {
  memset(replies, 0, n * sizeof *replies);
  if (n == 0) return MISCACHE_OK;
  /* one deadline for the whole call: every wait below gets what is left */
  int64_t deadline = now_ms() + c->command_timeout_ms;
  /* a child after fork() never touches its parent's connection */
  if (c->ctx && c->pid != getpid()) conn_drop(c);
  for (int attempt = 0;; attempt++) {
    bool fresh = false;
    if (c->ctx && conn_looks_dead(c)) conn_drop(c);
    if (!c->ctx && (flags & MISCACHE__SAME_CONN)) {
      conn_err(c, "%s: the connection of the transaction was lost",
               cmds[0].argv[0]);
      return MISCACHE_ERR_UNAVAILABLE;
    }
    if (!c->ctx) {
      miscache_status_t st = miscache__conn_connect(c);
      if (st != MISCACHE_OK) return st;
      fresh = true;
    }
    if (db >= 0 && db != c->cur_db && !(db < 64 && (c->dbs_ok >> db) & 1u)) {
      miscache_status_t st = select_alone(c, db, deadline);
      if (st == MISCACHE_OK) {
        fresh = true; /* the connection just proved alive */
      } else {
        if (!c->ctx && attempt == 0 && !fresh) continue; /* lost: retry */
        return st;
      }
    }
    bool sel = db >= 0 && db != c->cur_db;
    c->olen = 0;
    if (sel && !ob_select(c, db)) return nomem(c, "SELECT");
    for (size_t i = 0; i < n; i++)
      if (!ob_command(c, cmds[i].argc, cmds[i].argv, cmds[i].lens))
        return nomem(c, cmds[i].argv[0]);

    int err_no = 0;
    redisReply *sel_reply = NULL;
    transport_t t = send_all(c, deadline, &err_no);
    if (t == T_OK && sel) t = read_reply(c, deadline, &sel_reply, &err_no);
    size_t got = 0;
    while (t == T_OK && got < n) {
      t = read_reply(c, deadline, (redisReply **)&replies[got], &err_no);
      if (t == T_OK) got++;
    }
    if (t != T_OK) {
      if (sel_reply) freeReplyObject(sel_reply);
      for (size_t j = 0; j < got; j++) miscache__reply_free(replies[j]);
      memset(replies, 0, n * sizeof *replies);
      miscache_status_t st = transport_status(c, t, err_no, cmds[0].argv[0]);
      conn_drop(c);
      if (t == T_LOST && !fresh && attempt == 0 &&
          (flags & MISCACHE__IDEMPOTENT))
        continue;
      return st;
    }
    if (sel) {
      bool refused = sel_reply->type == REDIS_REPLY_ERROR;
      miscache_status_t st = MISCACHE_OK;
      if (refused) {
        /* Cannot happen for a db already selected once on this connection;
         * kept so a surprise never passes silently. */
        st = miscache__reply_error((miscache__reply_t *)sel_reply, "SELECT",
                                   c->err, c->errlen);
        for (size_t i = 0; i < n; i++) miscache__reply_free(replies[i]);
        memset(replies, 0, n * sizeof *replies);
        c->cur_db = -1;
      } else {
        c->cur_db = db;
      }
      freeReplyObject(sel_reply);
      return st;
    }
    return MISCACHE_OK;
  }
}

/*
 * The transport: one non-blocking socket, its table of functions (plain
 * here, TLS in tls.c) and the reply reader (reply.c) with its limits. The
 * connect is ours (getaddrinfo, a non-blocking connect() per address,
 * poll() until the deadline); hiredis is not used.
 *
 * Writes use send(MSG_NOSIGNAL): a closed socket gives EPIPE, never
 * SIGPIPE. Reads wait first (right after a request the reply is rarely
 * there yet) and read again without waiting after a full buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "reply_reader.h"
#include "transport_ops.h"

miscache__tstatus_t miscache__poll_fd(miscache__transport_t *t,
                                      int64_t deadline) {
  for (;;) {
    int64_t left = deadline - miscache__mono_ms();
    if (left <= 0) return MISCACHE__T_TIMEOUT;
    struct pollfd p = {.fd = t->fd, .events = t->want};
    int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (n > 0) return MISCACHE__T_OK; /* ready, or an error/hang-up that the
                                         next read or write reports */
    if (n == 0) return MISCACHE__T_TIMEOUT;
    if (errno != EINTR) {
      snprintf(t->errstr, sizeof t->errstr, "poll: %s", strerror(errno));
      return MISCACHE__T_LOST;
    }
  }
}

/* ---- plain sockets ------------------------------------------------------- */

static miscache_status_t plain_connect(miscache__transport_t *t,
                                       const char *host, int64_t deadline,
                                       char *err, size_t errlen) {
  (void)t, (void)host, (void)deadline, (void)err, (void)errlen;
  return MISCACHE_OK;
}

static miscache_status_t plain_begin(miscache__transport_t *t,
                                     const char *host, char *err,
                                     size_t errlen) {
  (void)t, (void)host, (void)err, (void)errlen;
  return MISCACHE_OK;
}

static ssize_t io_result(miscache__transport_t *t, ssize_t n, short want,
                         const char *what) {
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    t->want = want;
    return MISCACHE__IO_AGAIN;
  }
  snprintf(t->errstr, sizeof t->errstr, "%s: %s", what, strerror(errno));
  t->failure = MISCACHE__T_LOST;
  return MISCACHE__IO_ERROR;
}

static ssize_t plain_write(miscache__transport_t *t, const char *buf,
                           size_t len) {
  return io_result(t, send(t->fd, buf, len, MSG_NOSIGNAL), POLLOUT, "send");
}

static ssize_t plain_read(miscache__transport_t *t, char *buf, size_t len) {
  return io_result(t, recv(t->fd, buf, len, 0), POLLIN, "recv");
}

static void plain_close(miscache__transport_t *t) {
  (void)t;
}

bool miscache__fd_readable(miscache__transport_t *t) {
  struct pollfd p = {.fd = t->fd, .events = POLLIN};
  return poll(&p, 1, 0) != 0;
}

static const miscache__transport_ops_t plain_ops = {
    "tcp",      plain_connect,     plain_begin,           plain_begin,
    plain_write, plain_read,       miscache__poll_fd,     miscache__fd_readable,
    plain_close};

/* ---- connect ------------------------------------------------------------- */

/* A non-blocking connect() of fd to addr, finished before deadline. 0, or
 * an errno value (ETIMEDOUT when the deadline passed). */
static int connect_by(int fd, const struct sockaddr *addr, socklen_t len,
                      int64_t deadline) {
  if (connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS && errno != EINTR) return errno;
  for (;;) {
    int64_t left = deadline - miscache__mono_ms();
    if (left <= 0) return ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return ETIMEDOUT;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) return errno;
    return soerr;
  }
}

static void tune_tcp(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  int idle = 15, intvl = 5, cnt = 3; /* a dead peer noticed within ~30 s */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* ---- name resolution within the deadline --------------------------------
 * getaddrinfo() has no timeout of its own, and a slow resolver would hold
 * the call past its connect timeout. An address is taken as it is; a name
 * is resolved on a short-lived thread that the caller waits for until the
 * deadline, then leaves to finish alone (whoever lets go last frees it). */

typedef struct miscache__resolve {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs; /* the caller's and the thread's */
  bool done;
  int gai, sys_errno;
  int notify; /* the thread's: an eventfd it signals, then closes; -1 */
  struct addrinfo *res;
  char service[16];
  char host[]; /* copied: the caller's may be gone by the time it runs */
} resolve_t;

static const struct addrinfo tcp_hints = {.ai_family = AF_UNSPEC,
                                          .ai_socktype = SOCK_STREAM,
                                          .ai_flags = AI_NUMERICSERV};

static void resolve_unref(resolve_t *r) {
  pthread_mutex_lock(&r->mu);
  int left = --r->refs;
  pthread_mutex_unlock(&r->mu);
  if (left) return;
  if (r->res) freeaddrinfo(r->res);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static void *resolve_run(void *arg) {
  resolve_t *r = arg;
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(r->host, r->service, &tcp_hints, &res);
  int e = errno;
  pthread_mutex_lock(&r->mu);
  r->gai = gai;
  r->sys_errno = e;
  r->res = res;
  r->done = true;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (r->notify >= 0) { /* a connect in steps waits for its socket */
    uint64_t one = 1;
    ssize_t w = write(r->notify, &one, sizeof one);
    (void)w; /* an eventfd takes it (its counter is far from full) */
    close(r->notify);
  }
  resolve_unref(r);
  return NULL;
}

/* Start resolving host:service: 0 with *out (freeaddrinfo it) for an
 * address, at once; 1 with *pending for a name, resolved on a thread (it
 * signals notify when done, and closes it; -1 for none); -1 with err. */
static int resolve_begin(const char *host, const char *service, int notify,
                         struct addrinfo **out, resolve_t **pending,
                         char *err, size_t errlen) {
  *pending = NULL;
  struct addrinfo hints = tcp_hints;
  hints.ai_flags |= AI_NUMERICHOST; /* an address: no resolver, no wait */
  int gai = getaddrinfo(host, service, &hints, out);
  if (gai == 0) return 0;
  size_t hl = strlen(host);
  resolve_t *r = gai == EAI_NONAME ? calloc(1, sizeof *r + hl + 1) : NULL;
  if (!r) {
    snprintf(err, errlen, "connect failed: cannot resolve host: %s",
             gai == EAI_NONAME ? "out of memory" : gai_strerror(gai));
    return -1;
  }
  memcpy(r->host, host, hl + 1);
  snprintf(r->service, sizeof r->service, "%s", service);
  pthread_mutex_init(&r->mu, NULL);
  miscache__cond_init_monotonic(&r->cv);
  r->refs = 2;
  r->notify = notify;
  pthread_attr_t attr;
  pthread_t th;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int rc = pthread_create(&th, &attr, resolve_run, r);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    r->refs = 1;
    r->notify = -1; /* still the caller's */
    resolve_unref(r);
    snprintf(err, errlen, "connect failed: cannot start name resolution: %s",
             strerror(rc));
    return -1;
  }
  *pending = r;
  return 1;
}

/* The outcome of a finished resolution r (unref'd): 0 with *out, or -1
 * with err. */
static int resolve_end(resolve_t *r, struct addrinfo **out, char *err,
                       size_t errlen) {
  pthread_mutex_lock(&r->mu);
  int gai = r->gai, e = r->sys_errno;
  *out = gai == 0 ? r->res : NULL;
  if (*out) r->res = NULL; /* ours now */
  pthread_mutex_unlock(&r->mu);
  resolve_unref(r);
  if (gai != 0) {
    snprintf(err, errlen, "connect failed: cannot resolve host: %s",
             gai == EAI_SYSTEM ? strerror(e) : gai_strerror(gai));
    return -1;
  }
  return 0;
}

/* host:service into *out (freeaddrinfo it) before deadline: 0, or -1 with
 * err set. */
static int resolve(const char *host, const char *service, int64_t deadline,
                   struct addrinfo **out, char *err, size_t errlen) {
  resolve_t *r = NULL;
  int k = resolve_begin(host, service, -1, out, &r, err, errlen);
  if (k <= 0) return k;
  int64_t left = deadline - miscache__mono_ms();
  struct timespec until;
  miscache__deadline_after(&until, left > 0 ? left : 0);
  pthread_mutex_lock(&r->mu);
  while (!r->done)
    if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0) break;
  bool done = r->done;
  pthread_mutex_unlock(&r->mu);
  if (!done) {
    resolve_unref(r);
    snprintf(err, errlen, "connect failed: resolving the host name took "
                          "longer than the connect timeout");
    return -1;
  }
  return resolve_end(r, out, err, errlen);
}

static int open_tcp(const char *host, int port, int64_t deadline, char *err,
                    size_t errlen) {
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo *res = NULL;
  if (resolve(host, service, deadline, &res, err, errlen) != 0) return -1;
  int last = ECONNREFUSED;
  int fd = -1;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                a->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    last = connect_by(fd, a->ai_addr, a->ai_addrlen, deadline);
    if (last == 0) break;
    close(fd);
    fd = -1;
    if (last == ETIMEDOUT) break;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    if (last == ETIMEDOUT)
      snprintf(err, errlen, "connect failed: Connection timed out");
    else
      snprintf(err, errlen, "connect failed: %s", strerror(last));
    return -1;
  }
  tune_tcp(fd);
  return fd;
}

static int open_unix(const char *path, int64_t deadline, char *err,
                     size_t errlen) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    snprintf(err, errlen, "connect failed: socket path too long");
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "connect failed: %s", strerror(errno));
    return -1;
  }
  int e = connect_by(fd, (struct sockaddr *)&sa, sizeof sa, deadline);
  if (e != 0) {
    snprintf(err, errlen, "connect failed: %s",
             e == EAGAIN ? "server's listen queue is full" : strerror(e));
    close(fd);
    return -1;
  }
  return fd;
}

/* A transport not connected yet (fd -1): its reader, its layer (TLS when
 * tls and not a unix socket), a copy of host. NULL when out of memory (err
 * set). */
static miscache__transport_t *transport_new(const char *host, const char *path,
                                            miscache__tls_t *tls,
                                            const miscache__limits_t *limits,
                                            char *err, size_t errlen) {
  miscache__transport_t *t = calloc(1, sizeof *t);
  miscache__reader_t *rd = t ? miscache__reader_new(limits) : NULL;
  char *h = rd ? strdup(path || !host ? "" : host) : NULL;
  if (!h) {
    if (rd) miscache__reader_free(rd);
    free(t);
    snprintf(err, errlen, "connect: out of memory");
    return NULL;
  }
  t->reader = rd;
  t->host = h;
  t->fd = -1;
  t->ops = tls && !path ? ((const miscache__tls_head_t *)(const void *)tls)->ops
                        : &plain_ops;
  t->tls = tls;
  return t;
}

/* ---- a connect in steps (the async handle's) ------------------------------ */

/* The TCP connect is done: on to the layer's handshake. */
static miscache_status_t tcp_done(miscache__transport_t *t, char *err,
                                  size_t errlen) {
  tune_tcp(t->fd);
  freeaddrinfo(t->ai_all);
  t->ai_all = t->ai_next = NULL;
  t->stage = 2;
  miscache_status_t st = t->ops->begin(t, t->host, err, errlen);
  if (st != MISCACHE_OK) return st;
  st = t->ops->step(t, t->host, err, errlen);
  if (st == MISCACHE_OK) t->stage = 0;
  return st;
}

/* A non-blocking connect() to the next address left: MISS when under way
 * (t->fd, want POLLOUT), OK / the handshake's status when it connected at
 * once, ERR_UNAVAILABLE when no address is left (last: the errno of the
 * one before, 0 if none). */
static miscache_status_t tcp_next(miscache__transport_t *t, int last,
                                  char *err, size_t errlen) {
  while (t->ai_next) {
    struct addrinfo *a = t->ai_next;
    t->ai_next = a->ai_next;
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    a->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    t->fd = fd;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) return tcp_done(t, err, errlen);
    if (errno == EINPROGRESS || errno == EINTR) {
      t->stage = 1;
      t->want = POLLOUT;
      return MISCACHE_MISS;
    }
    last = errno;
    close(fd);
    t->fd = -1;
  }
  snprintf(err, errlen, "connect failed: %s",
           strerror(last ? last : ECONNREFUSED));
  return MISCACHE_ERR_UNAVAILABLE;
}

/* A connect in steps: host resolved. OK with t->ai_all for an address (or
 * when no eventfd could be made: resolved waiting until deadline); MISS
 * for a name, resolved on a thread: t->fd is an eventfd it signals
 * (stage 3, readable when done); else the failure. */
static miscache_status_t resolve_in_steps(miscache__transport_t *t,
                                          const char *host, int port,
                                          int64_t deadline, char *err,
                                          size_t errlen) {
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints = tcp_hints;
  hints.ai_flags |= AI_NUMERICHOST; /* an address: no thread, no eventfd */
  struct addrinfo *num = NULL;
  if (getaddrinfo(host, service, &hints, &num) == 0) {
    t->ai_all = t->ai_next = num;
    return MISCACHE_OK;
  }
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int notify = efd >= 0 ? fcntl(efd, F_DUPFD_CLOEXEC, 0) : -1;
  if (notify < 0) { /* no descriptors to spare: wait for it */
    if (efd >= 0) close(efd);
    if (resolve(host, service, deadline, &t->ai_all, err, errlen) != 0)
      return MISCACHE_ERR_UNAVAILABLE;
    t->ai_next = t->ai_all;
    return MISCACHE_OK;
  }
  int k = resolve_begin(host, service, notify, &t->ai_all, &t->resolving, err,
                        errlen);
  if (k == 1) { /* notify is the thread's now */
    t->fd = efd;
    t->stage = 3;
    t->want = POLLIN;
    return MISCACHE_MISS;
  }
  close(notify);
  close(efd);
  t->ai_next = t->ai_all;
  return k == 0 ? MISCACHE_OK : MISCACHE_ERR_UNAVAILABLE;
}

miscache_status_t miscache__transport_open(const char *host, int port,
                                           const char *path,
                                           miscache__tls_t *tls,
                                           const miscache__limits_t *limits,
                                           int64_t deadline, bool steps,
                                           miscache__transport_t **out,
                                           char *err, size_t errlen) {
  *out = NULL;
  miscache__transport_t *t = transport_new(host, path, tls, limits, err, errlen);
  if (!t) return MISCACHE_ERR_NOMEM;
  miscache_status_t st;
  if (!steps) { /* all of it now, waiting until deadline */
    t->fd = path ? open_unix(path, deadline, err, errlen)
                 : open_tcp(host, port, deadline, err, errlen);
    st = t->fd < 0 ? MISCACHE_ERR_UNAVAILABLE
                   : t->ops->connect(t, host, deadline, err, errlen);
  } else if (path) { /* a unix connect does not wait: done, or refused */
    t->fd = open_unix(path, deadline, err, errlen);
    st = t->fd < 0 ? MISCACHE_ERR_UNAVAILABLE : MISCACHE_OK;
  } else {
    st = resolve_in_steps(t, host, port, deadline, err, errlen);
    if (st == MISCACHE_OK) st = tcp_next(t, 0, err, errlen);
  }
  if (st != MISCACHE_OK && st != MISCACHE_MISS) {
    miscache__transport_close(t);
    return st;
  }
  *out = t;
  return st;
}

miscache_status_t miscache__transport_step(miscache__transport_t *t,
                                           char *err, size_t errlen) {
  if (t->stage == 3) { /* the name's resolution */
    resolve_t *r = t->resolving;
    pthread_mutex_lock(&r->mu);
    bool done = r->done;
    pthread_mutex_unlock(&r->mu);
    if (!done) return MISCACHE_MISS;
    close(t->fd); /* the eventfd (the owner stopped watching it) */
    t->fd = -1;
    t->resolving = NULL;
    if (resolve_end(r, &t->ai_all, err, errlen) != 0)
      return MISCACHE_ERR_UNAVAILABLE;
    t->ai_next = t->ai_all;
    return tcp_next(t, 0, err, errlen);
  }
  if (t->stage == 1) {
    struct pollfd p = {.fd = t->fd, .events = POLLOUT};
    if (poll(&p, 1, 0) == 0) return MISCACHE_MISS; /* not yet */
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
      soerr = errno;
    if (soerr == 0) return tcp_done(t, err, errlen);
    close(t->fd); /* (the owner stopped watching it first) */
    t->fd = -1;
    return tcp_next(t, soerr, err, errlen);
  }
  if (t->stage == 2) {
    miscache_status_t st = t->ops->step(t, t->host, err, errlen);
    if (st == MISCACHE_OK) t->stage = 0;
    return st;
  }
  return MISCACHE_OK;
}

bool miscache__transport_connecting(const miscache__transport_t *t) {
  return t->stage != 0;
}

bool miscache__transport_wants_write(const miscache__transport_t *t) {
  return t->want == POLLOUT;
}

void miscache__transport_close(miscache__transport_t *t) {
  if (!t) return;
  t->ops->close(t);
  if (t->fd >= 0) close(t->fd); /* close() writes nothing: safe after fork() */
  if (t->ai_all) freeaddrinfo(t->ai_all);
  if (t->resolving) resolve_unref(t->resolving); /* the thread ends alone */
  free(t->host);
  miscache__reader_free(t->reader);
  free(t);
}

const char *miscache__transport_errstr(const miscache__transport_t *t) {
  return t->errstr;
}

/* ---- I/O ------------------------------------------------------------------ */

miscache__tstatus_t miscache__transport_write(miscache__transport_t *t,
                                              const char *buf, size_t len,
                                              int64_t deadline) {
  size_t off = 0;
  while (off < len) {
    ssize_t w = t->ops->write(t, buf + off, len - off);
    if (w >= 0) {
      off += (size_t)w;
      continue;
    }
    if (w == MISCACHE__IO_ERROR) return t->failure;
    miscache__tstatus_t s = t->ops->wait(t, deadline);
    if (s != MISCACHE__T_OK) return s;
  }
  return MISCACHE__T_OK;
}

miscache__tstatus_t miscache__transport_read(miscache__transport_t *t,
                                             int64_t deadline,
                                             miscache__reply_t **out) {
  miscache__reader_t *rd = t->reader;
  bool full = false; /* the last read filled the space: more is likely */
  for (;;) {
    int k = miscache__reader_get(rd, out);
    if (k < 0) {
      snprintf(t->errstr, sizeof t->errstr, "%s",
               miscache__reader_errstr(rd));
      return miscache__reader_oom(rd) ? MISCACHE__T_NOMEM
                                      : MISCACHE__T_PROTOCOL;
    }
    if (k > 0) {
      miscache__reader_trim(rd);
      return MISCACHE__T_OK;
    }
    size_t avail = 0;
    char *space = miscache__reader_space(rd, &avail);
    if (!space) {
      snprintf(t->errstr, sizeof t->errstr, "%s",
               miscache__reader_errstr(rd));
      return miscache__reader_oom(rd) ? MISCACHE__T_NOMEM
                                      : MISCACHE__T_PROTOCOL;
    }
    ssize_t n = MISCACHE__IO_AGAIN;
    t->want = POLLIN;
    if (full && miscache__mono_ms() < deadline)
      n = t->ops->read(t, space, avail);
    while (n == MISCACHE__IO_AGAIN) {
      miscache__tstatus_t s = t->ops->wait(t, deadline);
      if (s != MISCACHE__T_OK) return s;
      n = t->ops->read(t, space, avail);
    }
    if (n == MISCACHE__IO_ERROR) return t->failure;
    if (n == 0) {
      snprintf(t->errstr, sizeof t->errstr, "server closed the connection");
      return MISCACHE__T_LOST;
    }
    full = (size_t)n == avail;
    miscache__reader_commit(rd, (size_t)n);
  }
}

size_t miscache__transport_pending(const miscache__transport_t *t) {
  return miscache__reader_pending(t->reader);
}

bool miscache__transport_broken(miscache__transport_t *t) {
  /* bytes the reader holds already are as much out of step as bytes in
   * the socket */
  return miscache__reader_pending(t->reader) > 0 || t->ops->broken(t);
}

/* ---- non-blocking use (the async handle) ---------------------------------- */

int miscache__transport_fd(const miscache__transport_t *t) {
  return t ? t->fd : -1;
}

miscache__tstatus_t miscache__transport_write_now(miscache__transport_t *t,
                                                  const char *buf, size_t len,
                                                  size_t *done,
                                                  bool *want_read) {
  *done = 0;
  *want_read = false;
  while (*done < len) {
    ssize_t w = t->ops->write(t, buf + *done, len - *done);
    if (w >= 0) {
      *done += (size_t)w;
      continue;
    }
    if (w == MISCACHE__IO_ERROR) return t->failure;
    *want_read = t->want == POLLIN; /* TLS: a write may wait for a read */
    break;
  }
  return MISCACHE__T_OK;
}

miscache__tstatus_t miscache__transport_read_now(miscache__transport_t *t) {
  for (;;) {
    size_t avail = 0;
    char *space = miscache__reader_space(t->reader, &avail);
    if (!space) {
      snprintf(t->errstr, sizeof t->errstr, "%s",
               miscache__reader_errstr(t->reader));
      return miscache__reader_oom(t->reader) ? MISCACHE__T_NOMEM
                                             : MISCACHE__T_PROTOCOL;
    }
    ssize_t n = t->ops->read(t, space, avail);
    if (n == MISCACHE__IO_AGAIN) return MISCACHE__T_OK;
    if (n == MISCACHE__IO_ERROR) return t->failure;
    if (n == 0) {
      snprintf(t->errstr, sizeof t->errstr, "server closed the connection");
      return MISCACHE__T_LOST;
    }
    miscache__reader_commit(t->reader, (size_t)n);
    /* TLS may hold decrypted bytes the socket no longer signals: read
     * until the layer says again */
  }
}

int miscache__transport_take(miscache__transport_t *t,
                             miscache__reply_t **out) {
  int k = miscache__reader_get(t->reader, out);
  if (k < 0)
    snprintf(t->errstr, sizeof t->errstr, "%s",
             miscache__reader_errstr(t->reader));
  if (k > 0 && miscache__reader_pending(t->reader) == 0)
    miscache__reader_trim(t->reader);
  return k < 0 ? (miscache__reader_oom(t->reader) ? -2 : -1) : k;
}

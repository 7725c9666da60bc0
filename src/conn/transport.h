/*
 * Layer 1, the transport: one socket (TCP, unix, or TLS over TCP) behind a
 * small table of functions, with the reply reader of reply.c (its limits
 * given at open) parsing replies. Every wait is bounded by the caller's deadline (CLOCK_MONOTONIC
 * ms) for the whole call. Only node.c includes this header.
 */
#ifndef MISCACHE_TRANSPORT_H
#define MISCACHE_TRANSPORT_H

#include "conn/conn.h"

/* A TLS client context (certificates loaded once), shared by the nodes of
 * one handle. ERR_TLS (file unreadable, key does not match the
 * certificate) or ERR_NOMEM, err set. */
typedef struct miscache__tls miscache__tls_t;
miscache_status_t miscache__tls_new(const miscache__tls_conf_t *conf,
                                    miscache__tls_t **out, char *err,
                                    size_t errlen);
void miscache__tls_free(miscache__tls_t *tls); /* accepts NULL */

typedef struct miscache__transport miscache__transport_t;

typedef enum {
  MISCACHE__T_OK,
  MISCACHE__T_LOST,     /* closed, reset, or a socket error */
  MISCACHE__T_TIMEOUT,  /* the deadline passed */
  MISCACHE__T_PROTOCOL, /* bytes that are not RESP */
  MISCACHE__T_TLS,      /* a TLS alert or error (e.g. client cert refused) */
  MISCACHE__T_NOMEM     /* no memory for the reply */
} miscache__tstatus_t;

/* Connect to host:port (path NULL) or to the unix socket path, then, with
 * tls, run the handshake (SNI and certificate check against host), all
 * before deadline. OK; ERR_UNAVAILABLE (resolve, refused, timeout), ERR_TLS
 * (err names the reason: expired, unknown CA, name mismatch...), ERR_NOMEM.
 * err gets the reason without the address. With steps, see below. */
miscache_status_t miscache__transport_open(const char *host, int port,
                                           const char *path,
                                           miscache__tls_t *tls,
                                           const miscache__limits_t *limits,
                                           int64_t deadline, bool steps,
                                           miscache__transport_t **out,
                                           char *err, size_t errlen);
/* Close without writing a byte (no TLS close_notify), so a forked child can
 * let go of its parent's connection. Accepts NULL. */
void miscache__transport_close(miscache__transport_t *t);
/* Write all of buf before deadline. */
miscache__tstatus_t miscache__transport_write(miscache__transport_t *t,
                                              const char *buf, size_t len,
                                              int64_t deadline);
/* The next reply (free with miscache__reply_free) before deadline. */
miscache__tstatus_t miscache__transport_read(miscache__transport_t *t,
                                             int64_t deadline,
                                             miscache__reply_t **out);
/* An idle connection that is readable (EOF from a closed server, or stray
 * bytes), or whose reader holds bytes not handed out yet, is not fit for
 * the next request. */
bool miscache__transport_broken(miscache__transport_t *t);
/* Bytes received beyond the replies read so far (see
 * miscache__reader_pending): after the last reply of a request, anything
 * but 0 means the connection is out of step. */
size_t miscache__transport_pending(const miscache__transport_t *t);
/* Non-blocking use, for the async handle: the socket (-1: none); write
 * what the socket takes now (*done bytes; *want_read: TLS waits for the
 * socket to be readable before it can write more); read everything that
 * has arrived into the reader (T_OK when nothing more is there now); take
 * the next complete reply (1), none yet (0), a protocol error or a reply
 * over a limit (-1) or no memory (-2). */
int miscache__transport_fd(const miscache__transport_t *t);
miscache__tstatus_t miscache__transport_write_now(miscache__transport_t *t,
                                                  const char *buf, size_t len,
                                                  size_t *done, bool *want_read);
miscache__tstatus_t miscache__transport_read_now(miscache__transport_t *t);
int miscache__transport_take(miscache__transport_t *t, miscache__reply_t **out);

/* With steps (the async handle's), the connect is only started (a host
 * name is still resolved within deadline, waiting; an address or a unix
 * socket never waits): OK when connected at once, MISCACHE_MISS when under
 * way (*out set: call miscache__transport_step when its socket is ready as
 * miscache__transport_wants_write says, readable otherwise), else the
 * failure as without steps. step: OK when connected, MISS not
 * yet, else the failure (the transport then is closed by its owner). A
 * step may change the socket (the next address of the name): stop
 * watching the old one before each step. */
miscache_status_t miscache__transport_step(miscache__transport_t *t,
                                           char *err, size_t errlen);
bool miscache__transport_connecting(const miscache__transport_t *t);
bool miscache__transport_wants_write(const miscache__transport_t *t);

/* Why the last write or read failed. Borrowed. */
const char *miscache__transport_errstr(const miscache__transport_t *t);

#endif /* MISCACHE_TRANSPORT_H */

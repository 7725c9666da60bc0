/*
 * Layer 2, the node: one Redis server reached through a transport, with the
 * connection's SELECT state, its AUTH, the pid that opened it (a child after
 * fork() never uses its parent's connection) and the outage breaker (after
 * a failed connect the node is "down" for a backoff window; calls fail at
 * once without touching the network, except one probe per window). Only
 * the dispatcher includes this header.
 */
#ifndef MISCACHE_NODE_H
#define MISCACHE_NODE_H

#include "transport.h"

typedef struct miscache__node_conf {
  int connect_timeout_ms;
  int command_timeout_ms; /* for messages: the budget a call had */
  miscache__limits_t limits; /* on every reply */
  int backoff_min_ms;
  int backoff_max_ms;
  const char *user;     /* copied by miscache__node_new */
  const char *password; /* copied; NULL: no AUTH */
  miscache__tls_t *tls; /* borrowed; NULL: plain */
  miscache__hook_t hook; /* connect, disconnect and breaker events */
} miscache__node_conf_t;

typedef struct miscache__node miscache__node_t;

/* miscache__node_drop, with quiet: no disconnect event (a deliberate
 * close, e.g. a stopping near-cache link). */
void miscache__node_drop_quiet(miscache__node_t *n, bool quiet);

/* A node for host:port (path NULL) or the unix socket path. Connects on
 * first use. Counters go to stats (borrowed, may be shared by nodes);
 * failures are described in err (errlen bytes, the owner's buffer). NULL
 * when out of memory. */
miscache__node_t *miscache__node_new(const char *host, int port,
                                     const char *path,
                                     const miscache__node_conf_t *conf,
                                     miscache_link_stats_t *stats, char *err,
                                     size_t errlen);
void miscache__node_free(miscache__node_t *n); /* accepts NULL */

/* Connect (and AUTH) unless connected, honouring the breaker. */
miscache_status_t miscache__node_connect(miscache__node_t *n);
/* Close the connection without writing to it. */
void miscache__node_drop(miscache__node_t *n);
/* Whether the node has a connection fit for the next request (opened by
 * this process, not closed by the server); drops one that is not. push: a
 * subscriber's connection, where bytes waiting are messages, not a sign
 * of a closed one. */
bool miscache__node_alive(miscache__node_t *n, bool push);
/* Whether the node is in a backoff window now. */
bool miscache__node_down(const miscache__node_t *n);

/* The two halves of miscache__node_exec, so that a dispatcher can write to
 * several nodes before it reads from any. Set deadline before the send;
 * the rest is filled in by it. */
typedef struct miscache__pipe {
  int64_t deadline;
  size_t ncmd;
  int db;
  bool sel, fresh;
  bool push;        /* MISCACHE__PUSH: bytes beyond the replies are normal */
  bool resendable;  /* failed on an old connection found lost, or the
                       connection was out of step: nothing of it can be
                       trusted, a fresh one may be */
  bool unconnected; /* MISCACHE__NO_CONNECT and no live connection: nothing
                       was sent */
  const char *what;
} miscache__pipe_t;
/* Send n commands in one write (after a SELECT db when db >= 0 differs from
 * the connection's), read n replies into replies[] (the caller's, free each
 * with miscache__reply_free), all before deadline (extended by the time a
 * connect took). OK when every reply was read (replies may be error
 * replies; on a request/reply connection nothing may follow the last one:
 * bytes beyond it mean the connection is out of step, and it is dropped
 * with ERR_REPLY); else a status with every replies[i] NULL, and in *info (may be
 * NULL) resendable when the connection was an old one found lost (resending
 * on a fresh one is the dispatcher's choice) or unconnected (see
 * MISCACHE__NO_CONNECT). flags: MISCACHE__SAME_CONN, MISCACHE__NO_CONNECT. */
miscache_status_t miscache__node_exec(miscache__node_t *n, int db, size_t ncmd,
                                      const miscache__cmd_t *cmds,
                                      miscache__reply_t **replies,
                                      unsigned flags, int64_t deadline,
                                      miscache__pipe_t *info);

/* One command that needs no db (a sentinel's or a cluster node's), sent
 * again once when an old connection was found lost. */
miscache_status_t miscache__node_ask(miscache__node_t *n,
                                     const miscache__cmd_t *cmd,
                                     miscache__reply_t **reply,
                                     int64_t deadline);

miscache_status_t miscache__node_send(miscache__node_t *n, int db,
                                      size_t ncmd, const miscache__cmd_t *cmds,
                                      unsigned flags, miscache__pipe_t *p);
miscache_status_t miscache__node_recv(miscache__node_t *n,
                                      miscache__reply_t **replies,
                                      miscache__pipe_t *p);

/* The next reply on a connection that receives pushes (a subscriber): OK
 * with it, MISS when none came before deadline (the connection is kept:
 * a partly read message is completed by the next call), else a status
 * (the connection is dropped). Send to it with MISCACHE__PUSH, so a
 * message waiting to be read does not count as a broken connection. */
miscache_status_t miscache__node_poll(miscache__node_t *n, int64_t deadline,
                                      miscache__reply_t **reply);

/* "host:port" or "unix:/path". Borrowed. */
const char *miscache__node_addr(const miscache__node_t *n);
bool miscache__node_is(const miscache__node_t *n, const char *host, int port);
/* The host name or IP the node was made with ("" for a unix socket). */
const char *miscache__node_host(const miscache__node_t *n);
int miscache__node_port(const miscache__node_t *n);

/* ---- non-blocking use: the async handle (core/async.c) ------------------
 * The socket (-1 when not connected). queue appends a request (a SELECT
 * first when db is not the connection's; *sel says so, and its reply comes
 * first) to the output buffer, starting a connect first when needed (see
 * below); flush writes
 * what the socket takes now (*want_read: TLS needs a readable socket
 * first); unsent: bytes wait to be written; read_now takes in what has
 * arrived; take hands out the next complete reply (OK), none yet (MISS),
 * or fails, with the message in the node's error buffer; after a failure
 * the owner stops watching the socket and calls miscache__node_async_drop. */
int miscache__node_fd(const miscache__node_t *n);
miscache_status_t miscache__node_queue(miscache__node_t *n, int db,
                                       size_t ncmd,
                                       const miscache__cmd_t *cmds, bool *sel);
miscache_status_t miscache__node_flush(miscache__node_t *n, bool *want_read);
bool miscache__node_unsent(const miscache__node_t *n);
miscache_status_t miscache__node_read_now(miscache__node_t *n);
miscache_status_t miscache__node_take(miscache__node_t *n,
                                      miscache__reply_t **out);
/* The connect in steps that queue starts when there is no connection
 * (the loop drives it; only a host name's resolution waits, within the
 * connect timeout): start gives OK (connected at once), MISCACHE_MISS (under
 * way) or the failure (the breaker counts it; inside its window a fast
 * failure). While connecting, watch the socket for writing when
 * connect_wants_write, else for reading, and call connect_step when ready:
 * OK (connected: flush what was queued), MISS (not yet: watch again, the
 * socket may have changed), or the failure. A new connection's AUTH (or
 * PING over TLS) goes first and take reads its reply (ERR_AUTH, ERR_TLS
 * when refused). connect_deadline: when the connect (and that reply) must
 * be done, 0 when it is; past it, connect_timed_out gives the status and
 * message (the owner then drops the connection). */
miscache_status_t miscache__node_connect_start(miscache__node_t *n);
miscache_status_t miscache__node_connect_step(miscache__node_t *n);
bool miscache__node_connecting(const miscache__node_t *n);
bool miscache__node_connect_wants_write(const miscache__node_t *n);
int64_t miscache__node_connect_deadline(const miscache__node_t *n);
miscache_status_t miscache__node_connect_timed_out(miscache__node_t *n);
/* Drop the connection and what was queued for it (a timeout, free). */
void miscache__node_async_drop(miscache__node_t *n);

#endif /* MISCACHE_NODE_H */

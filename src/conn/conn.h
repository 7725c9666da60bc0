/* The connection layer (src/conn): replies, transports (TCP, unix, TLS),
 * nodes, the cluster router and the dispatcher. It knows no handle: its
 * owner gives it the options and an error buffer. What it offers the
 * layers above is declared here; node.h, cluster.h, transport.h and
 * reply_reader.h are for conn's own files. Not installed. */
#ifndef MISCACHE_CONN_H
#define MISCACHE_CONN_H

#include "base/base.h"

/* ---- replies (reply.c) ---------------------------------------------------
 * node.h, cluster.h and transport.h are conn's own: nothing above sees a
 * node or a connection. */
typedef struct miscache__reply miscache__reply_t; /* opaque */
typedef enum {
  MISCACHE__R_STRING,
  MISCACHE__R_ARRAY,
  MISCACHE__R_INTEGER,
  MISCACHE__R_NIL,
  MISCACHE__R_STATUS,
  MISCACHE__R_ERROR,
  MISCACHE__R_OTHER
} miscache__rtype_t;

/* Every accessor accepts NULL (a missing element) and any shape: type
 * R_OTHER, "" and 0 for what is not there. */
miscache__rtype_t miscache__reply_type(const miscache__reply_t *r);
bool miscache__reply_is(const miscache__reply_t *r, miscache__rtype_t type);
const char *miscache__reply_str(const miscache__reply_t *r, size_t *len);
long long miscache__reply_int(const miscache__reply_t *r);
size_t miscache__reply_count(const miscache__reply_t *r);
const miscache__reply_t *miscache__reply_at(const miscache__reply_t *r,
                                            size_t i);
void miscache__reply_free(miscache__reply_t *r);
/* Replies made by the library (a split command's merged reply): an array
 * of n empty slots, an integer; take element i out of an array (its slot
 * becomes empty) and put one in. NULL when out of memory. */
miscache__reply_t *miscache__reply_new_array(size_t n);
miscache__reply_t *miscache__reply_new_int(long long v);
miscache__reply_t *miscache__reply_take(miscache__reply_t *array, size_t i);
void miscache__reply_put(miscache__reply_t *array, size_t i,
                         miscache__reply_t *e);
/* A reply's string escaped so into buf; returns buf. */
const char *miscache__reply_text(const miscache__reply_t *r, char *buf,
                                 size_t buflen);

/* Map an error reply to a status and write "what: <redis text>" to err
 * (the text escaped). */
miscache_status_t miscache__reply_error(const miscache__reply_t *r,
                                        const char *what, char *err,
                                        size_t errlen);

typedef struct miscache__cmd {
  int argc;
  const char *const *argv;
  const size_t *lens;
} miscache__cmd_t;
/* n commands copied into one block (argv strings, lengths, the commands):
 * free() it. NULL when out of memory. */
miscache__cmd_t *miscache__cmds_copy(size_t n, const miscache__cmd_t *cmds);

/* exec flags */
#define MISCACHE__IDEMPOTENT 1u /* safe to resend once on a fresh connection */
/* Only on the connection the previous call used (MULTI/EXEC after WATCH):
 * ERR_UNAVAILABLE rather than a new connection, and no replay before it. */
#define MISCACHE__SAME_CONN 2u
/* Node layer only: with no live connection, fail (nothing sent) instead of
 * connecting, so the dispatcher can first check whom it would reach. */
#define MISCACHE__NO_CONNECT 4u
/* A connection that receives pushes (the near cache's subscriber): a
 * waiting message does not make it "broken". */
#define MISCACHE__PUSH 16u
/* Cluster: commands without a key go to master i (0 .. nodes - 1, see
 * miscache__dispatch_nodes); standalone and Sentinel ignore it. */
#define MISCACHE__ON_NODE(i) (((unsigned)(i) + 1u) << 8)

/* ---- dispatcher (dispatch.c) ----------------------------------------------
 * One endpoint's router: a standalone node, the master Sentinel names, or a
 * Redis Cluster's slot map. Its messages go to the error buffer its owner
 * gave it; it keeps a pointer to the owner's options, which must outlive
 * it. */
#define MISCACHE__NO_DB (-1) /* a command that needs no SELECT (PING, INFO) */
typedef struct miscache__dispatcher miscache__dispatcher_t;
/* The dispatcher for o's endpoint (o->ep). ERR_TLS (certificate files),
 * ERR_NOMEM; message in err. */
miscache_status_t miscache__disp_new(const miscache_options_t *o, char *err,
                                     size_t errlen,
                                     miscache__dispatcher_t **out);
void miscache__disp_free(miscache__dispatcher_t *d); /* accepts NULL */
/* The node the async handle (core/async.c) uses for its non-blocking
 * calls (conn/node.h): a standalone endpoint's one node; behind Sentinel
 * the master the sentinels name, asked (blocking, within one command
 * timeout, as a connect) when none is known or after
 * miscache__disp_master_lost, at most once per backoff_min_ms (in between:
 * ERR_UNAVAILABLE at once, message set). *out is the node in use now,
 * also when the status is not OK (a lookup whose new master failed its
 * ROLE check has replaced the old node already; NULL only before the
 * first master was named, or for a cluster). Behind Sentinel *out stays
 * valid until the next call (which frees it when the master moved): call
 * it only with nothing in flight on the node. For a cluster *out is NULL:
 * the slot map is loaded (blocking, within one command timeout) and the
 * router told to keep its nodes (conn/cluster.h, the async plans). */
struct miscache__node;
struct miscache__cluster;
/* A cluster's router (NULL otherwise), for the async plans. */
struct miscache__cluster *miscache__disp_cluster(miscache__dispatcher_t *d);
/* A node for host:port configured as the data nodes are (AUTH, TLS,
 * timeouts, the breaker; the dispatcher's counters and error buffer): an
 * async cluster connection, owned by the caller (miscache__node_free). */
struct miscache__node *miscache__disp_node_new(miscache__dispatcher_t *d,
                                               const char *host, int port);
miscache_status_t miscache__disp_async_node(miscache__dispatcher_t *d,
                                            struct miscache__node **out);
/* Sentinel: the master in use was lost or demoted (READONLY); the next
 * miscache__disp_async_node asks the sentinels. No-op otherwise. */
void miscache__disp_master_lost(miscache__dispatcher_t *d);
/* Sentinel, with a master in use: when the sentinels are to be asked
 * again whether it is still the master (CLOCK_MONOTONIC ms); 0 otherwise.
 * A forced failover leaves the old master accepting writes until the
 * sentinels demote it. */
int64_t miscache__disp_check_at(const miscache__dispatcher_t *d);
/* That check, made by the async handle on connections of its own (one per
 * sentinel, asked in turn from sentinel_first: a node configured as
 * the dispatcher's sentinels, owned by the caller) with
 * "SENTINEL get-master-addr-by-name <sentinel_master>": check_asked when it is
 * sent (the next one is due a period later); check_answer with sentinel
 * i's reply (asked: when it was sent): OK, *moved when they name another
 * master (the next miscache__disp_async_node moves to it); else the
 * reply was no answer (ERR_AUTH, ERR_UNAVAILABLE; message set): ask the
 * next sentinel. */
size_t miscache__disp_sentinel_count(const miscache__dispatcher_t *d);
size_t miscache__disp_sentinel_first(const miscache__dispatcher_t *d);
const char *miscache__disp_sentinel_master(const miscache__dispatcher_t *d);
struct miscache__node *miscache__disp_sentinel_node_new(
    miscache__dispatcher_t *d, size_t i);
void miscache__disp_check_asked(miscache__dispatcher_t *d);
miscache_status_t miscache__disp_check_answer(miscache__dispatcher_t *d,
                                              size_t i,
                                              const miscache__reply_t *r,
                                              int64_t asked, bool *moved);
/* The async handle's lookup of the master after it was lost (instead of
 * the blocking one of miscache__disp_async_node), on its connections to
 * the sentinels: master_unknown says the next call needs it; resolve_begin
 * starts it (OK; ERR_UNAVAILABLE inside the pause between two lookups,
 * message set); resolve_answer takes sentinel i's reply (asked: when it
 * was sent): OK with the master in use now (*out, the dispatcher's node:
 * a new one when it moved, the old one freed), whose ROLE is to be asked
 * next; else no answer (ERR_AUTH, ERR_UNAVAILABLE, ERR_NOMEM; why in
 * last): ask the next sentinel, and with none left resolve_failed (the
 * message, from the last why). resolve_role takes the master's ROLE
 * reply: OK (the lookup is done) or ERR_UNAVAILABLE (no master: a
 * failover under way; message set). */
bool miscache__disp_master_unknown(const miscache__dispatcher_t *d);
miscache_status_t miscache__disp_resolve_begin(miscache__dispatcher_t *d);
miscache_status_t miscache__disp_resolve_answer(miscache__dispatcher_t *d,
                                                size_t i,
                                                const miscache__reply_t *r,
                                                int64_t asked,
                                                struct miscache__node **out,
                                                char *last, size_t lastlen);
miscache_status_t miscache__disp_resolve_role(miscache__dispatcher_t *d,
                                              size_t i,
                                              const miscache__reply_t *r);
void miscache__disp_resolve_failed(miscache__dispatcher_t *d,
                                   const char *last);
/* Whether the endpoint is a Sentinel one. */
bool miscache__disp_is_sentinel(const miscache__dispatcher_t *d);
/* Connect now (eager open): standalone node, Sentinel's master, or the
 * cluster's slot map. */
miscache_status_t miscache__disp_connect(miscache__dispatcher_t *d);
/* Runs n commands for logical db (or NO_DB) on the node that serves them,
 * within one command timeout. OK when every reply was read (replies may
 * be error replies; free each with miscache__reply_free); else a status
 * (message set) with every replies[i] NULL. An old connection found lost
 * is replaced and the batch sent again once when flags has IDEMPOTENT. */
miscache_status_t miscache__disp_run(miscache__dispatcher_t *d, int db,
                                     size_t n, const miscache__cmd_t *cmds,
                                     miscache__reply_t **replies,
                                     unsigned flags);
/* The same, where a cluster's command i without a key goes to master
 * on_each[i] (0 .. miscache__disp_nodes - 1; NULL: as the flags say), so
 * one batch works on every master at once. Standalone and Sentinel ignore
 * on_each. */
miscache_status_t miscache__disp_run_on(miscache__dispatcher_t *d, int db,
                                        size_t n, const miscache__cmd_t *cmds,
                                        const unsigned *on_each,
                                        miscache__reply_t **replies,
                                        unsigned flags);
/* How many nodes hold the data: the masters of a cluster (the slot map is
 * loaded if needed; 0 when it cannot be, message set), else 1. A SCAN
 * must run on each (MISCACHE__ON_NODE, or on_each). */
size_t miscache__disp_nodes(miscache__dispatcher_t *d);
/* Node objects the dispatcher holds now (a cluster's: its map's masters
 * and those in use; tests check that a reload frees the others). */
size_t miscache__disp_node_count(const miscache__dispatcher_t *d);
/* Whether it is on a Redis Cluster (db 0 only, no SELECT). */
bool miscache__disp_is_cluster(const miscache__dispatcher_t *d);
/* The master in use, as miscache_link_stats() names it ("host:port",
 * "cluster", or "" before Sentinel named one). Borrowed. */
const char *miscache__disp_master_name(const miscache__dispatcher_t *d);
/* The link counters, nodes_down counted now. */
void miscache__disp_stats(const miscache__dispatcher_t *d,
                          miscache_link_stats_t *out);
typedef struct miscache__master_addr {
  char host[256];
  int port;
} miscache__master_addr_t;
/* Redis Cluster: the slot map read again now, and its masters sorted by
 * host and port (malloc'd, *n of them). NULL (message set) when no node
 * gave a map, or not a cluster. */
miscache__master_addr_t *
miscache__disp_cluster_masters(miscache__dispatcher_t *d, size_t *n);
/* The near cache's subscriber connection (standalone or Sentinel's
 * master; ERR_INVALID on a cluster, whose near cache subscribes to each
 * master with a standalone dispatcher): send n commands without reading
 * their replies, only on the live connection (ERR_UNAVAILABLE when there
 * is none: nothing sent); read the next reply or message (MISS: none
 * within timeout_ms); close the connection. */
miscache_status_t miscache__push_send(miscache__dispatcher_t *d, size_t n,
                                      const miscache__cmd_t *cmds);
miscache_status_t miscache__push_read(miscache__dispatcher_t *d,
                                      int timeout_ms,
                                      miscache__reply_t **reply);
void miscache__push_drop(miscache__dispatcher_t *d, bool quiet);
/* Sentinel: the subscriber asks the sentinels for the master every ms
 * (not every second), and when they last named the one it is on
 * (CLOCK_MONOTONIC ms at the question, 0: never). INT64_MAX elsewhere:
 * nobody else names the master. */
void miscache__push_check_every(miscache__dispatcher_t *d, int ms);
int64_t miscache__push_vouched_ms(const miscache__dispatcher_t *d);

#endif /* MISCACHE_CONN_H */

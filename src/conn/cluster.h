/*
 * Redis Cluster routing for the dispatcher (cluster.c): the slot map, key
 * slots, splitting a batch by slot and node, redirections. dispatch.c
 * includes this header, and the async handle (core/async.c) for its
 * plans, below.
 */
#ifndef MISCACHE_CLUSTER_H
#define MISCACHE_CLUSTER_H

#include "node.h"

#define MISCACHE__SLOTS 16384

/* The cluster slot of a key (CRC16/XMODEM of the key, or of its hash tag:
 * the bytes between the first '{' and the next '}' when not empty). */
unsigned miscache__key_slot(const char *key, size_t len);

typedef struct miscache__cluster miscache__cluster_t;

/* A router over the seed nodes of ep (ep->addrs). Nodes are created with
 * conf; counters go to stats; messages to err. NULL when out of memory. */
miscache__cluster_t *miscache__cluster_new(const miscache__endpoint_t *ep,
                                           const miscache__node_conf_t *conf,
                                           miscache_link_stats_t *stats,
                                           char *err, size_t errlen);
void miscache__cluster_free(miscache__cluster_t *c); /* accepts NULL */

/* Load the slot map now (eager open). */
miscache_status_t miscache__cluster_connect(miscache__cluster_t *c,
                                            int64_t deadline);

/* Runs a batch: each command goes to the master of its key's slot; a
 * multi-key MGET, DEL, UNLINK or EXISTS whose keys span slots is split by
 * slot and its replies merged in the caller's order; commands without a
 * key go to master number on_each[i] (command i's, when on_each is not
 * NULL), else to master number on_node (>= 0), else with the batch's first
 * keyed command, else to any master. Commands for several nodes are written
 * to all of them before any is read. MOVED and ASK are followed, TRYAGAIN
 * and CLUSTERDOWN retried with a short bounded backoff, all within the
 * deadline. A transaction (MULTI) must keep all its keys in one slot.
 * Replies and statuses as for miscache__dispatch. */
miscache_status_t miscache__cluster_exec(miscache__cluster_t *c, size_t n,
                                         const miscache__cmd_t *cmds,
                                         miscache__reply_t **replies,
                                         unsigned flags, int on_node,
                                         const unsigned *on_each,
                                         int64_t deadline);

/* The number of masters that own slots now (loads the map if needed; 0
 * when it cannot be loaded, message set). */
size_t miscache__cluster_masters(miscache__cluster_t *c, int64_t deadline);

/* Nodes the router holds now (the map's masters, and those in use). */
size_t miscache__cluster_node_count(const miscache__cluster_t *c);
/* Host name (or IP) and port of master i. */
const char *miscache__cluster_master_host(miscache__cluster_t *c, size_t i,
                                          int *port);


/* ---- the async handle's calls (core/async.c) ------------------------------
 * The router of an async handle keeps every node it made (none is freed
 * by a reload), so a plan's node numbers stay valid while a call uses
 * them; its nodes ask only for slot maps: the handle sends the calls on
 * connections of its own, one per node number. */
void miscache__cluster_keep_nodes(miscache__cluster_t *c);
/* How many node numbers there are now (0 .. count - 1; the count grows). */
size_t miscache__cluster_node_slots(const miscache__cluster_t *c);
/* A stale map (after MOVED or a lost node), reloaded by the handle on one
 * of its own connections instead of a blocking CLUSTER SLOTS: map_due
 * says a load is due now (at most one per 100 ms); map_asked says it is
 * asked (the pause starts; a turn number, to ask the masters in turn:
 * map_master(c, (turn + k) % map_masters(c))); map_reply applies the
 * reply of node (OK; else the map in use is kept, message set). */
bool miscache__map_due(const miscache__cluster_t *c);
size_t miscache__map_asked(miscache__cluster_t *c);
size_t miscache__map_masters(const miscache__cluster_t *c);
unsigned miscache__map_master(const miscache__cluster_t *c, size_t i);
miscache_status_t miscache__map_reply(miscache__cluster_t *c, unsigned node,
                                      const miscache__reply_t *r);
/* Host name (or IP) and port of node number node (NULL: none). */
const char *miscache__cluster_node_host(const miscache__cluster_t *c,
                                        unsigned node, int *port);

/* One call's commands (copied) split by slot as miscache__cluster_exec
 * does, each part with the node that serves its slot (the slot map is
 * loaded first when there is none yet: a blocking CLUSTER SLOTS, within
 * deadline; a stale one is used as it is: see miscache__map_due).
 * ERR_INVALID (CROSSSLOT), ERR_NOMEM, ERR_UNAVAILABLE; message set. */
typedef struct miscache__plan miscache__plan_t;
miscache_status_t miscache__cluster_plan(miscache__cluster_t *c, size_t n,
                                         const miscache__cmd_t *cmds,
                                         int64_t deadline,
                                         miscache__plan_t **out);
size_t miscache__plan_parts(const miscache__plan_t *pl);
/* Part i: its command (the plan's), the node to send it to, and whether
 * ASKING goes first (an ASK redirection). */
const miscache__cmd_t *miscache__plan_part(const miscache__plan_t *pl,
                                           size_t i, unsigned *node,
                                           bool *asking);
/* Part i's reply (taken). true when the part must be sent again (MOVED,
 * ASK, TRYAGAIN, CLUSTERDOWN: to miscache__plan_part's node now) after
 * *wait_ms (0: at once; within deadline); false when the reply is final. */
bool miscache__plan_reply(miscache__plan_t *pl, size_t i,
                          miscache__reply_t *reply, int64_t deadline,
                          int *wait_ms);
/* A part's connection failed: the map is reloaded before the next plan
 * (a promoted replica is found so). */
void miscache__plan_lost(miscache__plan_t *pl);
/* The call's replies in its commands' order (split ones merged) once every
 * part has its final reply: OK, or a status with every reply NULL. */
miscache_status_t miscache__plan_result(miscache__plan_t *pl,
                                        miscache__reply_t **replies);
void miscache__plan_free(miscache__plan_t *pl); /* accepts NULL */

#endif /* MISCACHE_CLUSTER_H */

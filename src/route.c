/*
 * Routing: which node serves a key. Today the topology is one standalone
 * node with SELECT. Cluster and Sentinel plug in here (slot map, no SELECT)
 * without touching the code above: callers only ever ask for a key's node,
 * for the list of nodes to SCAN, and for the db number to use.
 */
#include "internal.h"

miscache__conn_t *miscache__route_key(miscache_t *mc, const char *key,
                                      size_t len) {
  (void)key;
  (void)len;
  return mc->nodes[0];
}

size_t miscache__route_nodes(const miscache_t *mc) { return mc->nnodes; }

miscache__conn_t *miscache__route_node(miscache_t *mc, size_t i) {
  return i < mc->nnodes ? mc->nodes[i] : NULL;
}

int miscache__route_db(const miscache_t *mc, miscache_db_t db) {
  return mc->opts.db[db];
}

/* cmocka fixture shared by the integration tests: one private server per
 * test program (started in group setup, stopped in group teardown) and
 * handles on it, each in a fresh key namespace. */
#ifndef MT_FIXTURE_H
#define MT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "miscache/miscache.h"
#include "server.h"

extern mt_server_t mt_srv;
extern redisContext *mt_rc; /* raw connection for checks */

/* Starts the server: a plain one, or under MT_TLS=1 a TLS port, or under
 * MT_CLUSTER=1 a 3-master Redis Cluster (mt_srv.url is then the cluster
 * URL and the raw helpers route each key to its node). */
int mt_group_setup(void **state);
/* Whether the fixture runs on a Redis Cluster (MT_CLUSTER=1). */
bool mt_is_cluster(void);
int mt_group_teardown(void **state);

/* Handle on the test server with a fresh namespace; o (may be NULL) gives
 * further options (its endpoint is replaced). Fails the test on error. */
miscache_t *mt_open(miscache_options_t *o);
/* The logical key as the library writes it: under MT_HASH_TAGS=1 the
 * company id of a company-scoped key in braces. Static buffers (4, reused
 * in turn). */
const char *mt_key(const char *logical);
/* Raw GET of the handle's namespaced key in a logical db; malloc'd string
 * or NULL when absent. */
char *mt_raw_get(miscache_t *mc, miscache_db_t db, const char *key);
/* Raw SET (EX 600) of the handle's namespaced key in a logical db. */
void mt_raw_set(miscache_t *mc, miscache_db_t db, const char *key,
                const char *value);
/* A raw command on the test connection (no arguments with spaces); fails
 * the test on an error reply. On a cluster: on every node. */
void mt_raw_cmd(const char *cmd);
/* Raw PTTL / EXISTS of the handle's namespaced key in a physical db. */
long long mt_raw_pttl(miscache_t *mc, miscache_db_t db, const char *key);
long long mt_raw_exists_in(miscache_t *mc, int physical_db, const char *key);
/* Handle on the test server in namespace ns (shared with other handles);
 * o (may be NULL, not freed) gives further options. NULL on failure, with
 * no cmocka assertion, so forked children can use it. */
miscache_t *mt_open_in(miscache_options_t *o, const char *ns);
void mt_sleep_ms(int ms);
/* CLOCK_MONOTONIC in nanoseconds (the same clock in every process). */
int64_t mt_now_ns(void);
/* End a forked child: free what it inherited from the fixture (the raw
 * connection), then _exit(code), so children end without leaks too. */
_Noreturn void mt_child_exit(int code);

#endif

#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

mt_server_t mt_srv;
redisContext *mt_rc;

static mt_cluster_t cluster;

bool mt_is_cluster(void) {
  return mt_cluster_active != NULL;
}

int mt_group_setup(void **state) {
  (void)state;
  /* MT_TLS=1: the same test program against a TLS port (CTest's *_tls);
   * MT_CLUSTER=1: against a 3-master Redis Cluster (CTest's *_cluster) */
  const char *tls = getenv("MT_TLS");
  const char *cl = getenv("MT_CLUSTER");
  if (cl && cl[0] == '1') {
    if (mt_cluster_start(&cluster, 3, false) != 0) return -1;
    mt_cluster_active = &cluster;
    mt_srv = cluster.node[0];
    snprintf(mt_srv.url, sizeof mt_srv.url, "%s", cluster.url);
    mt_srv.pid = 0; /* the cluster owns the processes */
    mt_srv.dir[0] = 0;
    mt_rc = mt_raw(&cluster.node[0], NULL);
    return mt_rc ? 0 : -1;
  }
  int rc = tls && tls[0] == '1' ? mt_server_start_tls(&mt_srv, NULL, NULL)
                                : mt_server_start(&mt_srv, NULL);
  if (rc != 0) return -1;
  mt_rc = mt_raw(&mt_srv, NULL);
  return mt_rc ? 0 : -1;
}

int mt_group_teardown(void **state) {
  (void)state;
  if (mt_rc) redisFree(mt_rc);
  mt_rc = NULL;
  mt_server_stop(&mt_srv);
  if (mt_cluster_active) mt_cluster_stop(&cluster);
  mt_cluster_active = NULL;
  return 0;
}

static miscache_t *open_in(miscache_options_t *o, const char *ns, char *err,
                           size_t errlen) {
  miscache_options_t *own = o ? o : miscache_options_new();
  miscache_t *mc = NULL;
  /* MT_HASH_TAGS=1: the hash-tagged key format (CTest's batch on a
   * cluster) */
  const char *tags = getenv("MT_HASH_TAGS");
  if (own && tags && tags[0] == '1') miscache_options_set_hash_tags(own, true);
  if (own && miscache_options_set_url(own, mt_srv.url) == MISCACHE_OK &&
      miscache_options_set_namespace(own, ns) == MISCACHE_OK)
    miscache_open(own, &mc, err, errlen);
  else
    snprintf(err, errlen, "options refused");
  if (!o) miscache_options_free(own);
  return mc;
}

miscache_t *mt_open_in(miscache_options_t *o, const char *ns) {
  char err[MISCACHE_ERRMSG_SIZE];
  return open_in(o, ns, err, sizeof err);
}

miscache_t *mt_open(miscache_options_t *o) {
  char err[MISCACHE_ERRMSG_SIZE] = "";
  miscache_t *mc = open_in(o, mt_namespace(), err, sizeof err);
  if (!mc) fail_msg("open: %s", err);
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(mc, &ls, sizeof ls), MISCACHE_OK);
  if (mt_srv.tls && strcmp(ls.transport, "tls") != 0)
    fail_msg("MT_TLS=1 but the handle uses %s", ls.transport);
  return mc;
}

/* Under MT_HASH_TAGS=1, the company id of a company-scoped key in braces,
 * as the library writes it (worked out from the public keyspace table, the
 * way another client would). */
static void tag_company(const char *key, char *out, size_t n) {
  snprintf(out, n, "%s", key);
  const char *tags = getenv("MT_HASH_TAGS");
  if (!tags || tags[0] != '1') return;
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++) {
    const miscache_key_family_t *k = miscache_key_family(f);
    size_t pl = strlen(k->prefix);
    if (strncmp(key, k->prefix, pl) != 0 || key[pl] != ':') continue;
    size_t segs = 1;
    for (const char *p = key + pl + 1; *p; p++) segs += *p == ':';
    if (segs != k->nids) continue;
    int ci = -1, i = 0;
    for (const char *p = k->ids; p; p = strchr(p, ' '), p = p ? p + 1 : p, i++)
      if (strncmp(p, "COMPANY", 7) == 0) ci = i;
    if (ci < 0) return;
    const char *seg = key + pl + 1;
    for (int j = 0; j < ci; j++) seg = strchr(seg, ':') + 1;
    const char *end = strchr(seg, ':');
    size_t sl = end ? (size_t)(end - seg) : strlen(seg);
    snprintf(out, n, "%.*s{%.*s}%s", (int)(seg - key), key, (int)sl, seg,
             end ? end : "");
    return;
  }
}

const char *mt_key(const char *logical) {
  static char buf[4][1024];
  static unsigned next;
  char *out = buf[next++ % 4];
  tag_company(logical, out, sizeof buf[0]);
  return out;
}

static void full_key(miscache_t *mc, const char *key, char *buf, size_t n) {
  char tagged[1024];
  tag_company(key, tagged, sizeof tagged);
  snprintf(buf, n, "%s%s", miscache_namespace(mc), tagged);
}

char *mt_raw_get(miscache_t *mc, miscache_db_t db, const char *key) {
  char k[2048];
  full_key(mc, key, k, sizeof k);
  redisReply *r = mt_cmd_in(mt_rc, miscache_db_number(mc, db), "GET %s", k);
  assert_non_null(r);
  char *s = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
  freeReplyObject(r);
  return s;
}

void mt_raw_set(miscache_t *mc, miscache_db_t db, const char *key,
                const char *value) {
  char k[2048];
  full_key(mc, key, k, sizeof k);
  redisReply *r = mt_cmd_in(mt_rc, miscache_db_number(mc, db),
                            "SET %s %s EX 600", k, value);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STATUS);
  freeReplyObject(r);
}

void mt_raw_cmd(const char *cmd) {
  redisReply *r = mt_cluster_active
                      ? mt_cluster_cmd(mt_cluster_active, true, cmd)
                      : redisCommand(mt_rc, cmd);
  assert_non_null(r);
  if (r->type == REDIS_REPLY_ERROR) fail_msg("%s: %s", cmd, r->str);
  freeReplyObject(r);
}

long long mt_raw_pttl(miscache_t *mc, miscache_db_t db, const char *key) {
  char k[2048];
  full_key(mc, key, k, sizeof k);
  return mt_raw_int(mt_rc, miscache_db_number(mc, db), "PTTL %s", k);
}

long long mt_raw_exists_in(miscache_t *mc, int physical_db, const char *key) {
  char k[2048];
  full_key(mc, key, k, sizeof k);
  return mt_raw_int(mt_rc, physical_db, "EXISTS %s", k);
}

_Noreturn void mt_child_exit(int code) {
  if (mt_rc) redisFree(mt_rc); /* the child's copy of the socket only */
  mt_rc = NULL;
  _exit(code);
}

int64_t mt_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void mt_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

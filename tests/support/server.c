#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A loopback port below 32768 (outside Linux's ephemeral range, so a
 * client socket can never connect to itself on it) that is free now. With
 * listen_fd the socket is kept, listening, and returned there. */
int mt_free_port(int *listen_fd) {
  static unsigned next;
  if (!next) next = (unsigned)getpid() * 7919u + (unsigned)time(NULL);
  for (int tries = 0; tries < 2000; tries++) {
    int port = 20000 + (int)(next++ % 12000u); /* 20000..31999 */
    if (port == 6379) continue;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        (!listen_fd || listen(fd, 16) == 0)) {
      if (listen_fd)
        *listen_fd = fd;
      else
        close(fd);
      return port;
    }
    close(fd);
  }
  return -1;
}

static int free_port(void) { return mt_free_port(NULL); }

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int spawn(mt_server_t *s) {
  char port[16];
  snprintf(port, sizeof port, "%d", s->port);
  char log[192];
  snprintf(log, sizeof log, "%s/redis.log", s->dir);
  const char *argv[64] = {"redis-server", "--port", port, "--bind",
                          "127.0.0.1", "--unixsocket", s->sock,
                          "--unixsocketperm", "700", "--dir", s->dir,
                          "--save", "", "--appendonly", "no",
                          "--logfile", log, "--daemonize", "no"};
  int n = 19;
  char cert[256], key[256], ca[256];
  if (s->tls) {
    snprintf(cert, sizeof cert, "%s/%s", s->dir, s->cert);
    snprintf(key, sizeof key, "%s/server.key", s->dir);
    snprintf(ca, sizeof ca, "%s/ca.crt", s->dir);
    argv[2] = "0"; /* no plain TCP port */
    const char *more[] = {"--tls-port", port, "--tls-cert-file", cert,
                          "--tls-key-file", key, "--tls-ca-cert-file", ca,
                          "--tls-auth-clients", "no"};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++)
      argv[n++] = more[i];
  }
  for (int i = 0; i < s->nextra; i++) argv[n++] = s->extra[i];
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvp("redis-server", (char *const *)argv);
    _exit(127);
  }
  s->pid = pid;
  for (int i = 0; i < 500; i++) { /* up to 5 s */
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      s->pid = 0;
      fprintf(stderr, "redis-server exited early (see %s)\n", log);
      return -1;
    }
    redisContext *c = redisConnectUnix(s->sock);
    if (c && !c->err) {
      redisReply *r = redisCommand(c, "PING");
      bool ok = r && (r->type == REDIS_REPLY_STATUS ||
                      (r->type == REDIS_REPLY_ERROR &&
                       strncmp(r->str, "NOAUTH", 6) == 0));
      if (r) freeReplyObject(r);
      redisFree(c);
      if (ok) return 0;
    } else if (c) {
      redisFree(c);
    }
    sleep_ms(10);
  }
  fprintf(stderr, "redis-server did not answer on %s\n", s->sock);
  return -1;
}

int mt_tls_certs(const char *dir) {
  char cmd[4096];
  snprintf(
      cmd, sizeof cmd,
      "set -e; cd '%s'; "
      "k='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
      "openssl req -x509 $k -days 2 -subj /CN=miscache-test-ca "
      "  -keyout ca.key -out ca.crt; "
      "openssl req -x509 $k -days 2 -subj /CN=rogue-ca "
      "  -keyout rogue-ca.key -out rogue-ca.crt; "
      "openssl req $k -subj /CN=localhost -keyout server.key -out server.csr; "
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext; "
      "printf 'subjectAltName=DNS:other.example\\n' > other.ext; "
      "sign() { openssl x509 -req -in $1 -CA ca.crt -CAkey ca.key "
      "  -CAcreateserial -days $2 -extfile $3 -out $4; }; "
      "sign server.csr 2 server.ext server.crt; "
      "sign server.csr -1 server.ext expired.crt; "
      "sign server.csr 2 other.ext other.crt; "
      "openssl req $k -subj /CN=miscache-client -keyout client.key "
      "  -out client.csr; "
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext; "
      "sign client.csr 2 client.ext client.crt; "
      "chmod 600 *.key",
      dir);
  char full[4200];
  snprintf(full, sizeof full, "(%s) >'%s/openssl.log' 2>&1", cmd, dir);
  int rc = system(full);
  if (rc != 0) fprintf(stderr, "openssl failed: see %s/openssl.log\n", dir);
  return rc == 0 ? 0 : -1;
}

static int start(mt_server_t *s, const char *const *extra, bool tls,
                 const char *cert);

int mt_server_start(mt_server_t *s, const char *const *extra) {
  return start(s, extra, false, NULL);
}

int mt_server_start_tls(mt_server_t *s, const char *cert,
                        const char *const *extra) {
  return start(s, extra, true, cert ? cert : "server.crt");
}

static int start(mt_server_t *s, const char *const *extra, bool tls,
                 const char *cert) {
  memset(s, 0, sizeof *s);
  snprintf(s->dir, sizeof s->dir, "/tmp/miscache-test-XXXXXX");
  if (!mkdtemp(s->dir)) return -1;
  s->tls = tls;
  s->cert = cert;
  if (tls && mt_tls_certs(s->dir) != 0) return -1;
  snprintf(s->sock, sizeof s->sock, "%s/redis.sock", s->dir);
  for (; extra && extra[s->nextra] && s->nextra < 16; s->nextra++)
    s->extra[s->nextra] = extra[s->nextra];
  for (int attempt = 0; attempt < 5; attempt++) {
    s->port = free_port();
    if (s->port <= 0 || s->port == 6379) continue;
    if (tls)
      snprintf(s->url, sizeof s->url, "rediss://127.0.0.1:%d?cacert=%s/ca.crt",
               s->port, s->dir);
    else
      snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
    snprintf(s->unix_url, sizeof s->unix_url, "unix://%s", s->sock);
    if (spawn(s) == 0) return 0;
  }
  return -1;
}

int mt_server_restart(mt_server_t *s) { return spawn(s); }

void mt_server_kill(mt_server_t *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
}

void mt_server_stop(mt_server_t *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    int st;
    for (int i = 0; i < 300 && waitpid(s->pid, &st, WNOHANG) == 0; i++)
      sleep_ms(10);
    mt_server_kill(s);
    s->pid = 0;
  }
  if (s->dir[0]) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", s->dir);
    s->dir[0] = 0;
  }
}

redisContext *mt_raw(const mt_server_t *s, const char *password) {
  redisContext *c = redisConnectUnix(s->sock);
  if (!c || c->err) {
    if (c) redisFree(c);
    return NULL;
  }
  if (password) {
    redisReply *r = redisCommand(c, "AUTH %s", password);
    if (r) freeReplyObject(r);
  }
  return c;
}

const mt_cluster_t *mt_cluster_active;

static redisReply *vcluster_cmd(const mt_cluster_t *c, bool all,
                                const char *fmt, va_list ap);

redisReply *mt_cmd_in(redisContext *c, int db, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = mt_vcmd_in(c, db, fmt, ap);
  va_end(ap);
  return r;
}

redisReply *mt_vcmd_in(redisContext *c, int db, const char *fmt, va_list ap) {
  if (mt_cluster_active) return vcluster_cmd(mt_cluster_active, false, fmt, ap);
  redisReply *r = redisCommand(c, "SELECT %d", db);
  if (!r) return NULL;
  freeReplyObject(r);
  return redisvCommand(c, fmt, ap);
}

long long mt_raw_int(redisContext *c, int db, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = mt_vcmd_in(c, db, fmt, ap);
  va_end(ap);
  if (!r) return LLONG_MIN;
  long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : LLONG_MIN;
  freeReplyObject(r);
  return v;
}

long long mt_info_int(redisContext *c, const char *section, const char *needle,
                      long long absent) {
  redisReply *r = redisCommand(c, "INFO %s", section);
  if (!r || r->type != REDIS_REPLY_STRING) {
    if (r) freeReplyObject(r);
    return -1;
  }
  const char *p = strstr(r->str, needle);
  long long v = p ? atoll(p + strlen(needle)) : absent;
  freeReplyObject(r);
  return v;
}

long long mt_cmdstat_calls(redisContext *c, const char *cmd) {
  char needle[64];
  snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
  if (!mt_cluster_active) return mt_info_int(c, "commandstats", needle, 0);
  long long sum = 0; /* every master of the cluster */
  for (int i = 0; i < mt_cluster_active->n; i++) {
    redisContext *n = mt_raw(&mt_cluster_active->node[i], NULL);
    if (!n) continue;
    sum += mt_info_int(n, "commandstats", needle, 0);
    redisFree(n);
  }
  return sum;
}

const char *mt_namespace(void) {
  static char buf[48];
  static unsigned n;
  snprintf(buf, sizeof buf, "t%dn%u:", (int)getpid(), ++n);
  return buf;
}

/* ---- Sentinel ------------------------------------------------------------- */

redisReply *mt_sentinel_cmd(const mt_sentinels_t *s, int i, const char *cmd) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port[i], tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  redisReply *r = redisCommand(c, cmd);
  redisFree(c);
  return r;
}

int mt_sentinel_master_port(const mt_sentinels_t *s, int i) {
  redisReply *r =
      mt_sentinel_cmd(s, i, "SENTINEL get-master-addr-by-name mymaster");
  int port = -1;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
    port = atoi(r->element[1]->str);
  if (r) freeReplyObject(r);
  return port;
}

/* A field of SENTINEL MASTER mymaster as a number; -1 if absent. */
static long long sentinel_field(const mt_sentinels_t *s, int i,
                                const char *field) {
  redisReply *r = mt_sentinel_cmd(s, i, "SENTINEL MASTER mymaster");
  long long v = -1;
  if (r && r->type == REDIS_REPLY_ARRAY)
    for (size_t k = 0; k + 1 < r->elements; k += 2)
      if (strcmp(r->element[k]->str, field) == 0)
        v = atoll(r->element[k + 1]->str);
  if (r) freeReplyObject(r);
  return v;
}

static int spawn_sentinel(mt_sentinels_t *s, int i, int quorum,
                          const char *extra_conf) {
  char conf[256], log[256];
  snprintf(conf, sizeof conf, "%s/sentinel-%d.conf", s->master.dir, i);
  snprintf(log, sizeof log, "%s/sentinel-%d.log", s->master.dir, i);
  FILE *f = fopen(conf, "w");
  if (!f) return -1;
  fprintf(f,
          "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"
          "sentinel monitor mymaster 127.0.0.1 %d %d\n"
          "sentinel down-after-milliseconds mymaster 1000\n"
          "sentinel failover-timeout mymaster 10000\n"
          "sentinel parallel-syncs mymaster 1\n%s",
          s->port[i], s->master.dir, log, s->master.port, quorum, extra_conf);
  fclose(f);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execlp("redis-server", "redis-server", conf, "--sentinel", (char *)NULL);
    _exit(127);
  }
  s->pid[i] = pid;
  for (int k = 0; k < 500; k++) {
    redisReply *r = mt_sentinel_cmd(s, i, "PING");
    bool ok = r && (r->type == REDIS_REPLY_STATUS ||
                    (r->type == REDIS_REPLY_ERROR &&
                     strncmp(r->str, "NOAUTH", 6) == 0));
    if (r) freeReplyObject(r);
    if (ok) return 0;
    sleep_ms(10);
  }
  return -1;
}

int mt_sentinels_start(mt_sentinels_t *s) {
  memset(s, 0, sizeof *s);
  if (mt_server_start(&s->master, NULL) != 0) return -1;
  snprintf(s->replicaof, sizeof s->replicaof, "%d", s->master.port);
  const char *args[] = {"--replicaof", "127.0.0.1", s->replicaof, NULL};
  if (mt_server_start(&s->replica, args) != 0) goto fail;
  int n = snprintf(s->url, sizeof s->url, "redis+sentinel://");
  for (int i = 0; i < 3; i++) {
    s->port[i] = mt_free_port(NULL);
    if (s->port[i] <= 0 || spawn_sentinel(s, i, 2, "") != 0) goto fail;
    n += snprintf(s->url + n, sizeof s->url - (size_t)n, "%s127.0.0.1:%d",
                  i ? "," : "", s->port[i]);
  }
  snprintf(s->url + n, sizeof s->url - (size_t)n, "/mymaster");
  /* sentinels find the replica (INFO) and each other (hello messages) */
  for (int k = 0; k < 1500; k++) { /* up to 15 s */
    bool ready = true;
    for (int i = 0; i < 3 && ready; i++)
      ready = sentinel_field(s, i, "num-slaves") == 1 &&
              sentinel_field(s, i, "num-other-sentinels") == 2;
    if (ready) {
      /* and the replica is in sync */
      redisContext *c = mt_raw(&s->replica, NULL);
      redisReply *r = c ? redisCommand(c, "INFO replication") : NULL;
      bool synced = r && r->type == REDIS_REPLY_STRING &&
                    strstr(r->str, "master_link_status:up");
      if (r) freeReplyObject(r);
      if (c) redisFree(c);
      if (synced) return 0;
    }
    sleep_ms(10);
  }
  fprintf(stderr, "sentinels did not get ready (logs in %s)\n", s->master.dir);
fail:
  mt_sentinels_stop(s);
  return -1;
}

int mt_sentinel_add(mt_sentinels_t *s, const char *extra_conf) {
  s->port[3] = mt_free_port(NULL);
  if (s->port[3] <= 0) return -1;
  return spawn_sentinel(s, 3, 1, extra_conf);
}

void mt_sentinels_stop(mt_sentinels_t *s) {
  for (int i = 0; i < 4; i++)
    if (s->pid[i] > 0) {
      kill(s->pid[i], SIGKILL);
      waitpid(s->pid[i], NULL, 0);
      s->pid[i] = 0;
    }
  mt_server_stop(&s->replica);
  mt_server_stop(&s->master); /* removes the dir with the sentinel files */
}

/* ---- Cluster ----------------------------------------------------------------- */

static redisReply *vcmd_on(const mt_server_t *s, const char *fmt, va_list ap) {
  redisContext *c = mt_raw(s, NULL);
  if (!c) return NULL;
  redisReply *r = redisvCommand(c, fmt, ap);
  redisFree(c);
  return r;
}

static redisReply *vcluster_cmd(const mt_cluster_t *c, bool all,
                                const char *fmt, va_list ap) {
  redisReply *last = NULL;
  for (int i = 0; i < c->n; i++) {
    if (c->node[i].pid <= 0) continue;
    va_list aq;
    va_copy(aq, ap);
    redisReply *r = vcmd_on(&c->node[i], fmt, aq);
    va_end(aq);
    if (!r) continue;
    bool redirected = r->type == REDIS_REPLY_ERROR &&
                      (!strncmp(r->str, "MOVED", 5) || !strncmp(r->str, "ASK", 3));
    if (redirected && !all) {
      freeReplyObject(r);
      continue;
    }
    if (!all) {
      if (last) freeReplyObject(last);
      return r;
    }
    if (last) freeReplyObject(last);
    last = r;
  }
  return last;
}

redisReply *mt_cluster_cmd(const mt_cluster_t *c, bool all, const char *fmt,
                           ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = vcluster_cmd(c, all, fmt, ap);
  va_end(ap);
  return r;
}

static bool cluster_ok(const mt_server_t *s) {
  redisContext *c = mt_raw(s, NULL);
  redisReply *r = c ? redisCommand(c, "CLUSTER INFO") : NULL;
  bool ok = r && r->type == REDIS_REPLY_STRING &&
            strstr(r->str, "cluster_state:ok");
  if (r) freeReplyObject(r);
  if (c) redisFree(c);
  return ok;
}

int mt_cluster_start(mt_cluster_t *c, int nmasters, bool replicas) {
  memset(c, 0, sizeof *c);
  c->n = replicas ? 2 * nmasters : nmasters;
  if (c->n > MT_CLUSTER_MAX) return -1;
  char create[2048];
  int cl = snprintf(create, sizeof create, "redis-cli --cluster create");
  int ul = snprintf(c->url, sizeof c->url, "redis+cluster://");
  for (int i = 0; i < c->n; i++) {
    int bus = mt_free_port(NULL);
    snprintf(c->args[i][0], sizeof c->args[i][0], "%d", bus);
    /* the config file goes in the node's own dir (--dir) */
    const char *extra[] = {"--cluster-enabled", "yes", "--cluster-port",
                           c->args[i][0], "--cluster-node-timeout", "1000",
                           "--cluster-config-file", "nodes.conf", NULL};
    if (mt_server_start(&c->node[i], extra) != 0) goto fail;
    cl += snprintf(create + cl, sizeof create - (size_t)cl, " 127.0.0.1:%d",
                   c->node[i].port);
    if (i < nmasters)
      ul += snprintf(c->url + ul, sizeof c->url - (size_t)ul, "%s127.0.0.1:%d",
                     i ? "," : "", c->node[i].port);
  }
  snprintf(create + cl, sizeof create - (size_t)cl,
           " --cluster-replicas %d --cluster-yes >%s/create.log 2>&1",
           replicas ? 1 : 0, c->node[0].dir);
  if (system(create) != 0) {
    fprintf(stderr, "redis-cli --cluster create failed (see %s/create.log)\n",
            c->node[0].dir);
    goto fail;
  }
  for (int k = 0; k < 2000; k++) { /* up to 20 s */
    bool ok = true;
    for (int i = 0; i < c->n && ok; i++) ok = cluster_ok(&c->node[i]);
    if (ok && replicas) {
      for (int i = nmasters; i < c->n && ok; i++) {
        redisContext *rc = mt_raw(&c->node[i], NULL);
        redisReply *r = rc ? redisCommand(rc, "INFO replication") : NULL;
        ok = r && r->type == REDIS_REPLY_STRING &&
             strstr(r->str, "master_link_status:up");
        if (r) freeReplyObject(r);
        if (rc) redisFree(rc);
      }
    }
    if (ok) return 0;
    sleep_ms(10);
  }
  fprintf(stderr, "cluster did not reach cluster_state:ok\n");
fail:
  mt_cluster_stop(c);
  return -1;
}

void mt_cluster_stop(mt_cluster_t *c) {
  for (int i = 0; i < c->n; i++) mt_server_stop(&c->node[i]);
}

int mt_cluster_owner(const mt_cluster_t *c, unsigned slot) {
  redisReply *r = NULL;
  for (int i = 0; i < c->n && !r; i++) {
    if (c->node[i].pid <= 0) continue;
    redisContext *rc = mt_raw(&c->node[i], NULL);
    if (rc) r = redisCommand(rc, "CLUSTER SLOTS");
    if (rc) redisFree(rc);
    if (r && r->type != REDIS_REPLY_ARRAY) freeReplyObject(r), r = NULL;
  }
  int port = -1;
  for (size_t i = 0; r && i < r->elements; i++) {
    redisReply *e = r->element[i];
    if ((unsigned)e->element[0]->integer <= slot &&
        slot <= (unsigned)e->element[1]->integer)
      port = (int)e->element[2]->element[1]->integer;
  }
  if (r) freeReplyObject(r);
  for (int i = 0; i < c->n; i++)
    if (c->node[i].port == port) return i;
  return -1;
}

/* A command on node s; 0 unless it failed or was refused (printed). */
static int on_node(const mt_server_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = vcmd_on(s, fmt, ap);
  va_end(ap);
  int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
  if (rc)
    fprintf(stderr, "%s on %d: %s\n", fmt, s->port, r ? r->str : "no reply");
  if (r) freeReplyObject(r);
  return rc;
}

int mt_cluster_move_slot(const mt_cluster_t *c, int a, int b, unsigned slot,
                         int pause_ms) {
  return mt_cluster_move_slot_gap(c, a, b, slot, pause_ms, -1);
}

int mt_cluster_move_slot_gap(const mt_cluster_t *c, int a, int b,
                             unsigned slot, int pause_ms, int gap_ms) {
  char ida[64] = "", idb[64] = "";
  redisReply *r = NULL;
  for (int k = 0; k < 2; k++) {
    redisContext *rc = mt_raw(&c->node[k ? b : a], NULL);
    r = rc ? redisCommand(rc, "CLUSTER MYID") : NULL;
    if (rc) redisFree(rc);
    if (!r || r->type != REDIS_REPLY_STRING) {
      if (r) freeReplyObject(r);
      return -1;
    }
    snprintf(k ? idb : ida, sizeof ida, "%s", r->str);
    freeReplyObject(r);
  }
  if (on_node(&c->node[b], "CLUSTER SETSLOT %u IMPORTING %s", slot, ida) ||
      on_node(&c->node[a], "CLUSTER SETSLOT %u MIGRATING %s", slot, idb))
    return -1;
  redisContext *rc = mt_raw(&c->node[a], NULL);
  if (!rc) return -1;
  int rv = 0;
  for (;;) {
    r = redisCommand(rc, "CLUSTER GETKEYSINSLOT %u 1", slot);
    size_t n = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    if (n) {
      redisReply *m = redisCommand(rc, "MIGRATE 127.0.0.1 %d %s 0 5000",
                                   c->node[b].port, r->element[0]->str);
      if (!m || m->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "MIGRATE: %s\n", m ? m->str : "no reply");
        rv = -1;
      }
      if (m) freeReplyObject(m);
    }
    if (r) freeReplyObject(r);
    if (!n || rv) break;
    struct timespec ts = {0, pause_ms * 1000000L};
    nanosleep(&ts, NULL);
  }
  redisFree(rc);
  if (gap_ms >= 0 && !rv) {
    rv = on_node(&c->node[a], "CLUSTER SETSLOT %u NODE %s", slot, idb);
    struct timespec ts = {gap_ms / 1000, (gap_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < c->n && !rv; i++)
    if (c->node[i].pid > 0 && (gap_ms < 0 || i != a))
      rv = on_node(&c->node[i], "CLUSTER SETSLOT %u NODE %s", slot, idb);
  return rv;
}

/* Test harness: a private redis-server per test program, on a free
 * loopback port and a unix socket in its own temp dir. The server gets
 * PR_SET_PDEATHSIG, so it dies with the test even if the test crashes. */
#ifndef MT_SERVER_H
#define MT_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

typedef struct mt_server {
  pid_t pid;
  int port;
  char dir[128];
  char sock[192];
  char url[512];     /* redis://127.0.0.1:PORT, or with TLS
                        rediss://127.0.0.1:PORT?cacert=DIR/ca.crt */
  bool tls;          /* the port speaks TLS (the unix socket stays plain) */
  const char *cert;  /* TLS: server certificate file name in dir */
  char unix_url[224]; /* unix://DIR/redis.sock */
  const char *extra[16];
  int nextra;
} mt_server_t;

/* Start a server; extra is a NULL-terminated list of further arguments
 * ("--requirepass", "x", NULL) or NULL. Returns 0 when it answers PING. */
int mt_server_start(mt_server_t *s, const char *const *extra);
/* Certificates for TLS tests, made with the openssl tool in dir (EC keys):
 * ca.crt/key, server.crt/key (localhost, 127.0.0.1, signed by ca),
 * client.crt/key (signed by ca), expired.crt (as server.crt, expired a day
 * ago), other.crt (for other.example only), rogue-ca.crt (another CA).
 * 0 on success. */
int mt_tls_certs(const char *dir);
/* Like mt_server_start, but the TCP port speaks TLS with server.crt (or
 * cert, a file name in the dir, when not NULL) and does not ask for client
 * certificates unless extra says "--tls-auth-clients", "yes". */
int mt_server_start_tls(mt_server_t *s, const char *cert,
                        const char *const *extra);
/* Start again on the same port, dir and arguments (after mt_server_kill). */
int mt_server_restart(mt_server_t *s);
/* SIGKILL and reap; keeps the dir. */
void mt_server_kill(mt_server_t *s);
/* SIGTERM, reap, remove the dir. Safe to call twice. */
void mt_server_stop(mt_server_t *s);

/* Sentinel deployment for tests: a master, a replica of it, and three
 * sentinels (redis-server --sentinel) watching it as "mymaster" with
 * down-after 1000 ms, all on loopback ports below 32768, in the master's
 * temp dir. */
typedef struct mt_sentinels {
  mt_server_t master, replica;
  pid_t pid[4]; /* [3]: an extra sentinel from mt_sentinel_add() */
  int port[4];
  char url[512]; /* redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,.../mymaster */
  char replicaof[16];
} mt_sentinels_t;
/* Starts everything and waits until each sentinel knows the replica and
 * the two other sentinels. 0 on success. */
int mt_sentinels_start(mt_sentinels_t *s);
/* Starts a fourth sentinel (index 3, not in url) watching the master with
 * quorum 1 and the further config lines extra_conf (e.g. "requirepass x\n").
 * 0 when it answers PING (or NOAUTH). */
int mt_sentinel_add(mt_sentinels_t *s, const char *extra_conf);
/* Stops the sentinels and both servers (whichever are still running). */
void mt_sentinels_stop(mt_sentinels_t *s);
/* A command to sentinel i; the reply (free it) or NULL. */
redisReply *mt_sentinel_cmd(const mt_sentinels_t *s, int i, const char *cmd);
/* Port of the master sentinel i names now; -1 if it cannot say. */
int mt_sentinel_master_port(const mt_sentinels_t *s, int i);

/* Redis Cluster for tests: nmasters masters and, with replicas, one replica
 * each, made with redis-server --cluster-enabled yes and redis-cli
 * --cluster create; bus ports chosen explicitly (cluster-port) below 32768;
 * cluster-node-timeout 1000 ms. */
#define MT_CLUSTER_MAX 6
typedef struct mt_cluster {
  mt_server_t node[MT_CLUSTER_MAX];
  int n;
  char url[512]; /* redis+cluster://127.0.0.1:P1,127.0.0.1:P2,... */
  char args[MT_CLUSTER_MAX][4][192];
} mt_cluster_t;
/* 0 when cluster_state is ok everywhere (and replicas are in sync). */
int mt_cluster_start(mt_cluster_t *c, int nmasters, bool replicas);
void mt_cluster_stop(mt_cluster_t *c);
/* Run fmt on the node that serves its key (the first whose reply is not
 * MOVED/ASK), or, with all, on every running node (last reply returned).
 * The reply (free it) or NULL. */
redisReply *mt_cluster_cmd(const mt_cluster_t *c, bool all, const char *fmt,
                           ...);
/* Index (in c) of the master serving slot, from CLUSTER SLOTS; -1 when
 * no node says. */
int mt_cluster_owner(const mt_cluster_t *c, unsigned slot);
/* Moves slot from master a to master b the way redis-cli does (IMPORTING,
 * MIGRATING, MIGRATE one key at a time with pause_ms between, SETSLOT NODE
 * on every node), so clients meet ASK while it is half moved. 0 on
 * success. */
int mt_cluster_move_slot(const mt_cluster_t *c, int a, int b, unsigned slot,
                         int pause_ms);
/* The same, but the slot's new owner is announced to the source a first
 * and to the others (b included) gap_ms later: for gap_ms a and b each
 * send the slot's commands to the other (MOVED both ways), as when an
 * operator or a tool finalizes a migration in that order. */
int mt_cluster_move_slot_gap(const mt_cluster_t *c, int a, int b,
                             unsigned slot, int pause_ms, int gap_ms);

/* A raw hiredis connection on the unix socket, for checking what the
 * library did. Authenticates with password when not NULL. */
redisContext *mt_raw(const mt_server_t *s, const char *password);
/* Integer result of a raw command (e.g. "PTTL key") in db; LLONG_MIN on
 * error. With mt_cluster_active set, c and db are ignored and the command
 * goes to the node that serves its key. */
long long mt_raw_int(redisContext *c, int db, const char *fmt, ...);
/* The number after needle (e.g. "\r\nevicted_keys:") in INFO section;
 * absent when needle is not there, -1 on error. */
long long mt_info_int(redisContext *c, const char *section, const char *needle,
                      long long absent);
/* Calls of one command from INFO commandstats ("select", "get"...). */
long long mt_cmdstat_calls(redisContext *c, const char *cmd);

/* A free loopback port below 32768; with listen_fd, a socket listening on
 * it is returned there (the caller closes it). -1 if none was found. */
int mt_free_port(int *listen_fd);

/* A fresh namespace for one test: "t<pid>n<counter>:". Static buffer
 * reused per call: copy it if you need two. */
const char *mt_namespace(void);

/* The cluster the raw helpers route to (set by the fixture under
 * MT_CLUSTER=1), or NULL. */
extern const mt_cluster_t *mt_cluster_active;
/* A raw command in db (SELECT first), or, with a cluster active, on the node
 * serving its key. The reply (free it) or NULL. */
redisReply *mt_cmd_in(redisContext *c, int db, const char *fmt, ...);
redisReply *mt_vcmd_in(redisContext *c, int db, const char *fmt, va_list ap);

#endif

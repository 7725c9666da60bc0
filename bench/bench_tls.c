/*
 * Benchmark 6: TLS cost. A typed session read over loopback TCP, the same
 * server on a plain port and on a TLS port (a throw-away CA and certificate
 * made with openssl in a temp dir; this program starts and stops its own
 * redis-server, ports below 32768):
 *   library over TLS vs library over plain TCP (goal >= 0.80)
 *   redis-benchmark --tls GET vs redis-benchmark GET (the reference's own
 *   TLS cost), and library/redis-benchmark over TLS.
 * Each measured ROUNDS times, interleaved; medians.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define N 20000
#define ROUNDS 5

static char dir[64] = "/tmp/miscache-bench-tls-XXXXXX";
static pid_t server;

static void cleanup(void) {
  if (server > 0) {
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void die(const char *what) {
  fprintf(stderr, "bench_tls: %s\n", what);
  cleanup();
  exit(3);
}

static void make_certs(void) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && k='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
           "-nodes' && "
           "openssl req -x509 $k -days 1 -subj /CN=bench-ca -keyout ca.key "
           "-out ca.crt && "
           "openssl req $k -subj /CN=localhost -keyout s.key -out s.csr && "
           "printf 'subjectAltName=IP:127.0.0.1\\n' > s.ext && "
           "openssl x509 -req -in s.csr -CA ca.crt -CAkey ca.key "
           "-CAcreateserial -days 1 -extfile s.ext -out s.crt",
           dir);
  char full[1200];
  snprintf(full, sizeof full, "(%s) >/dev/null 2>&1", cmd);
  if (system(full) != 0) die("openssl failed");
}

static void start_server(int port, int tls_port) {
  char p[16], tp[16], crt[128], key[128], ca[128];
  snprintf(p, sizeof p, "%d", port);
  snprintf(tp, sizeof tp, "%d", tls_port);
  snprintf(crt, sizeof crt, "%s/s.crt", dir);
  snprintf(key, sizeof key, "%s/s.key", dir);
  snprintf(ca, sizeof ca, "%s/ca.crt", dir);
  server = fork();
  if (server < 0) die("fork");
  if (server == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execlp("redis-server", "redis-server", "--port", p, "--tls-port", tp,
           "--bind", "127.0.0.1", "--tls-cert-file", crt, "--tls-key-file",
           key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no", "--save",
           "", "--appendonly", "no", "--dir", dir, "--logfile", "redis.log",
           (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 500; i++) {
    redisContext *c = redisConnect("127.0.0.1", port);
    bool ok = c && !c->err;
    if (c) redisFree(c);
    if (ok) return;
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  die("redis-server did not start");
}

static miscache_t *open_url(const char *url) {
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  if (miscache_open_url(url, &mc, err, sizeof err) != MISCACHE_OK) die(err);
  return mc;
}

static double reads_per_s(miscache_t *mc) {
  double t0 = now_s();
  for (int i = 0; i < N; i++) {
    miscache_session_t out;
    if (miscache_session_get(mc, 123, &out) != MISCACHE_OK) die("read");
    miscache_session_clear(&out);
  }
  return N / (now_s() - t0);
}

static double rb(const char *args) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "redis-benchmark %s --csv 2>/dev/null", args);
  FILE *p = popen(cmd, "r");
  if (!p) return 0;
  char line[512];
  double ops = 0;
  while (fgets(line, sizeof line, p))
    if (!strncmp(line, "\"GET\",\"", 7)) ops = atof(line + 7);
  pclose(p);
  return ops;
}

int main(void) {
  if (!mkdtemp(dir)) die("mkdtemp");
  make_certs();
  int port = 20000 + (int)(getpid() % 5000) * 2, tls_port = port + 1;
  start_server(port, tls_port);
  char url[256];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  miscache_t *plain = open_url(url);
  snprintf(url, sizeof url, "rediss://127.0.0.1:%d?cacert=%s/ca.crt", tls_port,
           dir);
  miscache_t *tls = open_url(url);
  miscache_session_t s = {.user_id = 123, .username = "admin", .dept_id = 1,
                          .current_company_id = 1,
                          .last_activity = "2026-11-24T10:00:00Z"};
  s.permissions = json_pack("{s:{s:b,s:b,s:b,s:b},s:{s:b,s:b,s:b,s:b}}",
                            "admin_batch", "create", 0, "read", 1, "update", 1,
                            "delete", 0, "trade_order", "create", 1, "read", 1,
                            "update", 0, "delete", 0);
  if (miscache_session_set(plain, &s) != MISCACHE_OK) die("set");
  json_decref(s.permissions);
  double p[ROUNDS], t[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    p[r] = reads_per_s(plain);
    t[r] = reads_per_s(tls);
  }
  double pm = median(p, ROUNDS), tm = median(t, ROUNDS);
  char args[512];
  snprintf(args, sizeof args, "-h 127.0.0.1 -p %d -c 1 -P 1 -n %d -d 300 -t get",
           port, 2 * N);
  double rb_plain = rb(args);
  snprintf(args, sizeof args,
           "-h 127.0.0.1 -p %d --tls --cacert %s/ca.crt -c 1 -P 1 -n %d -d 300 "
           "-t get",
           tls_port, dir, 2 * N);
  double rb_tls = rb(args);
  printf("bench_tls: typed session read over loopback TCP, %d reads x %d "
         "rounds (medians)\n", N, ROUNDS);
  printf("  library plain TCP        %10.0f reads/s\n", pm);
  printf("  library TLS              %10.0f reads/s   TLS/plain = %.3f "
         "(goal >= 0.80)\n", tm, tm / pm);
  printf("  redis-benchmark GET      %10.0f ops/s (plain), %.0f ops/s (TLS): "
         "its TLS/plain = %.3f\n", rb_plain, rb_tls,
         rb_plain > 0 ? rb_tls / rb_plain : 0);
  printf("  library TLS / redis-benchmark TLS = %.3f\n",
         rb_tls > 0 ? tm / rb_tls : 0);
  char a[64], b[96];
  snprintf(a, sizeof a, "%.0f TLS reads/s", tm);
  snprintf(b, sizeof b, "library plain TCP %.0f/s", pm);
  bench_summary("6 TLS read", a, b, tm / pm, ">= 0.80", tm / pm >= 0.80);
  snprintf(b, sizeof b, "redis-benchmark --tls GET %.0f/s", rb_tls);
  bench_summary("6 TLS read", a, b, rb_tls > 0 ? tm / rb_tls : 0, "-", -1);
  miscache_free(plain);
  miscache_free(tls);
  cleanup();
  return 0;
}

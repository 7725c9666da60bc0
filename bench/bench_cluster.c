/*
 * Benchmark 7: the same work on a 3-master Redis Cluster and on a single
 * server holding the same data (both started here by bench/cluster-up.sh on
 * loopback ports below 32768, stopped at exit), in the same run:
 *   - miscache_mget of 1,000 gift classification keys of one company;
 *   - invalidation of one company's keys out of nine
 *     (miscache_invalidate_gift_rules: its rules and classifications).
 * Each with the default key format and with the hash-tagged one (one
 * company's keys in one slot). Medians of ROUNDS; ratio = cluster / single
 * (goal <= 1.3).
 *
 * Parallelism the code uses: a batch is written to every node it touches
 * before any reply is read, so the masters work at the same time; one
 * connection per master; no threads. An invalidation SCANs the masters at
 * once: each step is one batch holding every master's SCAN and the UNLINKs
 * of the keys each master's previous SCAN found, so it should take about
 * one master's share of the single server's time (single / 3, goal <= 1.2).
 */
#include <signal.h>
#include <unistd.h>

#include "bench.h"

#define COMPANIES 9
#define PER 5000 /* classification keys per company: 45,000 in all */
#define MGET_N 1000
#define ROUNDS 7

static char dir[64] = "/tmp/miscache-bench-cluster-XXXXXX";
static bool up;

static void down(void) {
  if (!up) return;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "bash bench/cluster-down.sh '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cluster-down failed\n");
  up = false;
}

static void die(const char *what) {
  fprintf(stderr, "bench_cluster: %s\n", what);
  exit(3); /* atexit stops the servers */
}

static miscache_t *open_url(const char *url, bool tags) {
  miscache_options_t *o = miscache_options_new();
  if (!o || miscache_options_set_url(o, url) != MISCACHE_OK ||
      miscache_options_set_hash_tags(o, tags) != MISCACHE_OK ||
      miscache_options_set_command_timeout(o, 10000) != MISCACHE_OK)
    die("options");
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  if (miscache_open(o, &mc, err, sizeof err) != MISCACHE_OK) die(err);
  miscache_options_free(o);
  return mc;
}

static char (*keys)[48];
static const char **kp;

/* The logical keys of company c (the generic API takes them as written,
 * so the hash-tagged format is spelled out here as the library writes
 * it). */
static void make_keys(int c, bool tags) {
  for (int i = 0; i < PER; i++) {
    snprintf(keys[i], sizeof keys[i],
             tags ? "gift:classification:P%d:{%d}" : "gift:classification:P%d:%d",
             i, c);
    kp[i] = keys[i];
  }
}

static void seed(miscache_t *mc, int c, bool tags) {
  json_t *v = json_pack("{s:b,s:s,s:s}", "is_revenue", 0, "product_type",
                        "gift", "reason", "keyword");
  static const json_t *vals[PER];
  for (int i = 0; i < PER; i++) vals[i] = v;
  make_keys(c, tags);
  for (int off = 0; off < PER; off += 1000)
    if (miscache_mset(mc, MISCACHE_DB_GIFT, 1000, kp + off, vals + off,
                      MISCACHE_TTL_GIFT_CLASSIFICATION) != MISCACHE_OK)
      die(miscache_errmsg(mc));
  json_decref(v);
}

static double time_mget(miscache_t *mc, bool tags) {
  static json_t *out[MGET_N];
  make_keys(1, tags);
  double t0 = now_s();
  if (miscache_mget(mc, MISCACHE_DB_GIFT, MGET_N, kp, out, NULL) != MISCACHE_OK)
    die(miscache_errmsg(mc));
  double t = now_s() - t0;
  for (int i = 0; i < MGET_N; i++) {
    if (!out[i]) die("mget missed a key");
    json_decref(out[i]);
  }
  return t;
}

/* CPU seconds (user + system) process pid has used, from /proc; 0 when
 * it cannot be read. pid 0: this process. */
static double cpu_s(int pid) {
  char path[64], buf[1024];
  if (pid == 0) snprintf(path, sizeof path, "/proc/self/stat");
  else snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); /* the name may hold spaces */
  unsigned long ut = 0, st = 0;
  /* after ") ": state, then fields 4..; utime and stime are 14 and 15 */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int master_pid[3]; /* the cluster's, from the pid files */

static double masters_cpu_s(void) {
  double t = 0;
  for (int i = 0; i < 3; i++) t += cpu_s(master_pid[i]);
  return t;
}

static double cpu_masters, cpu_client; /* cluster invalidations, summed */

static double time_invalidate(miscache_t *mc, bool tags, bool cluster) {
  uint64_t n = 0;
  double m0 = cluster ? masters_cpu_s() : 0, c0 = cpu_s(0);
  double t0 = now_s();
  if (miscache_invalidate_gift_rules(mc, 3, &n) != MISCACHE_OK)
    die(miscache_errmsg(mc));
  double t = now_s() - t0;
  if (cluster) {
    cpu_masters += masters_cpu_s() - m0;
    cpu_client += cpu_s(0) - c0;
  }
  if (n != PER) die("invalidation count");
  seed(mc, 3, tags); /* back for the next round */
  return t;
}

static void run(const char *single_url, const char *cluster_url, bool tags) {
  miscache_t *s = open_url(single_url, tags), *c = open_url(cluster_url, tags);
  for (int co = 1; co <= COMPANIES; co++) {
    seed(s, co, tags);
    seed(c, co, tags);
  }
  double ms[ROUNDS], mc_[ROUNDS], is[ROUNDS], ic[ROUNDS];
  cpu_masters = cpu_client = 0;
  for (int r = 0; r < ROUNDS; r++) {
    ms[r] = time_mget(s, tags);
    mc_[r] = time_mget(c, tags);
    is[r] = time_invalidate(s, tags, false);
    ic[r] = time_invalidate(c, tags, true);
  }
  double a = median(ms, ROUNDS), b = median(mc_, ROUNDS);
  double x = median(is, ROUNDS), y = median(ic, ROUNDS);
  const char *fmt = tags ? "hash-tagged keys" : "default keys";
  printf("  %s:\n", fmt);
  printf("    mget %d keys       single %7.2f ms  cluster %7.2f ms  "
         "cluster/single = %.2f (goal <= 1.3)\n",
         MGET_N, a * 1e3, b * 1e3, b / a);
  printf("    invalidate 1 of %d single %7.2f ms  cluster %7.2f ms  "
         "cluster/single = %.2f (goal <= 1.3)\n",
         COMPANIES, x * 1e3, y * 1e3, y / x);
  /* a master holds a third of the keys: scanned at once, the cluster's
   * invalidation should take about one master's share of the single
   * server's (one after the other it took all three shares) */
  printf("    invalidate: cluster / one master's share (single / 3) = %.2f "
         "(goal <= 1.2)\n",
         y / (x / 3));
  /* the 3 masters and this process share the machine's cores: the
   * cluster's invalidation cannot beat their CPU time over the cores */
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  double bound = (cpu_masters + cpu_client) / ROUNDS /
                 (double)(cores < 4 ? cores : 4);
  printf("    invalidate: the masters used %.1f ms CPU and this process "
         "%.1f ms per run; over %ld cores that is at least %.2f ms wall, "
         "cluster / that bound = %.2f\n",
         cpu_masters / ROUNDS * 1e3, cpu_client / ROUNDS * 1e3, cores,
         bound * 1e3, bound > 0 ? y / bound : 0);
  char l[96], ref[96], name[48];
  snprintf(name, sizeof name, "7 cluster mget, %s", tags ? "tags" : "plain");
  snprintf(l, sizeof l, "cluster %.2f ms", b * 1e3);
  snprintf(ref, sizeof ref, "single node %.2f ms", a * 1e3);
  bench_summary(name, l, ref, b / a, "<= 1.3", b / a <= 1.3);
  snprintf(name, sizeof name, "7 cluster inval, %s", tags ? "tags" : "plain");
  snprintf(l, sizeof l, "cluster %.2f ms", y * 1e3);
  snprintf(ref, sizeof ref, "single node %.2f ms", x * 1e3);
  bench_summary(name, l, ref, y / x, "<= 1.3", y / x <= 1.3);
  snprintf(name, sizeof name, "7 cluster inval share, %s",
           tags ? "tags" : "plain");
  snprintf(ref, sizeof ref, "single node / 3 %.2f ms", x / 3 * 1e3);
  bench_summary(name, l, ref, y / (x / 3), "<= 1.2", y / (x / 3) <= 1.2);
  miscache_free(s);
  miscache_free(c);
}

int main(void) {
  if (!mkdtemp(dir)) die("mkdtemp");
  atexit(down);
  int base = 20000 + (int)(getpid() % 500) * 20;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "bash bench/cluster-up.sh '%s' %d", dir, base);
  up = true;
  if (system(cmd) != 0) die("cluster-up failed");
  for (int i = 0; i < 3; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/n%d.pid", dir, i + 1);
    FILE *f = fopen(path, "r");
    if (!f || fscanf(f, "%d", &master_pid[i]) != 1) die("a master's pid file");
    fclose(f);
  }
  keys = calloc(PER, sizeof *keys);
  kp = calloc(PER, sizeof *kp);
  if (!keys || !kp) die("out of memory");
  char single[64], cluster[128];
  snprintf(single, sizeof single, "redis://127.0.0.1:%d", base);
  snprintf(cluster, sizeof cluster,
           "redis+cluster://127.0.0.1:%d,127.0.0.1:%d", base + 1, base + 2);
  printf("bench_cluster: %d companies x %d classification keys, %d rounds "
         "(medians), 3 masters vs 1 server on the same 2 cores\n",
         COMPANIES, PER, ROUNDS);
  run(single, cluster, false);
  run(single, cluster, true);
  free(keys);
  free(kp);
  return 0;
}

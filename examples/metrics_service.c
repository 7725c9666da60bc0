/*
 * metrics_service: a service's observability wired to libmiscache.
 *
 *   metrics_service [--port N] [--seconds N] [--threads N]
 *
 * Configured by MISCACHE_URL alone (e.g. "...?near=on&slow_call_ms=20").
 * Worker threads answer simulated permission checks through a pool; the
 * library's events go to syslog (and to stderr: LOG_PERROR), and
 * GET /metrics on 127.0.0.1:PORT (0: any free port, printed at start)
 * serves the Prometheus text: the pool's per-category counters, its
 * latency histograms (miscache_command_duration_seconds) and the near
 * cache's figures. Stops after --seconds (default 0: on SIGINT/SIGTERM).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <miscache/miscache.h>

static atomic_bool stop;
static miscache_pool_t *pool;

static void on_signal(int sig) {
  (void)sig;
  atomic_store(&stop, true);
}

/* The event hook: any thread, so only syslog(3), which is thread-safe. */
static void to_syslog(void *ud, const miscache_event_t *ev) {
  (void)ud;
  int prio = LOG_INFO;
  switch (ev->kind) {
  case MISCACHE_EV_CONNECT_FAILED:
  case MISCACHE_EV_BREAKER_OPEN:
  case MISCACHE_EV_LOCK_LOST:
  case MISCACHE_EV_PENDING_KEPT: prio = LOG_WARNING; break;
  case MISCACHE_EV_SLOW_CALL:
  case MISCACHE_EV_NEAR_LOST:
  case MISCACHE_EV_DISCONNECT: prio = LOG_NOTICE; break;
  default: break;
  }
  if (ev->suppressed)
    syslog(prio, "cache %s %s: %s (and %llu like it not logged)",
           miscache_event_kind_name(ev->kind), ev->node, ev->message,
           (unsigned long long)ev->suppressed);
  else
    syslog(prio, "cache %s %s: %s", miscache_event_kind_name(ev->kind),
           ev->node, ev->message);
}

static miscache_status_t load_perms(void *ud, const char *key, json_t **out) {
  (void)ud;
  (void)key; /* the ERP's permission table would be read here */
  *out = json_pack("{s:{s:b,s:b},s:{s:b}}", "trade_order", "read", 1, "update",
                   0, "gift_admin", "read", 1);
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  while (!atomic_load(&stop)) {
    miscache_t *mc = NULL;
    if (miscache_pool_acquire(pool, 1000, &mc) != MISCACHE_OK) continue;
    bool allowed = false;
    int64_t user = 1 + rand_r(&seed) % 50;
    (void)miscache_permissions_check(mc, user, "trade_order",
                                     MISCACHE_PERM_READ, load_perms, NULL,
                                     &allowed, NULL);
    miscache_pool_release(pool, mc);
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

/* The Prometheus text of the pool; malloc'd. */
static char *metrics_text(size_t *len) {
  size_t cap = 16384, n = 0;
  char *t = malloc(cap);
  if (!t) return NULL;
  n += (size_t)snprintf(t + n, cap - n,
                        "# HELP miscache_reads_total Cache reads by category "
                        "and result.\n# TYPE miscache_reads_total counter\n");
  for (int c = 0; c < MISCACHE_CATEGORY_COUNT && n < cap; c++) {
    miscache_counters_t k;
    miscache_pool_counters_category(pool, (miscache_category_t)c, &k);
    const char *name = miscache_category_name((miscache_category_t)c);
    n += (size_t)snprintf(t + n, cap - n,
                          "miscache_reads_total{category=\"%s\",result=\"hit\"} %llu\n"
                          "miscache_reads_total{category=\"%s\",result=\"miss\"} %llu\n",
                          name, (unsigned long long)k.hits, name,
                          (unsigned long long)k.misses);
  }
  miscache_latency_t lat;
  miscache_pool_latency(pool, &lat, sizeof lat);
  size_t need = miscache_latency_prometheus(&lat, NULL, 0);
  if (n + need + 4096 > cap) {
    char *bigger = realloc(t, cap = n + need + 4096);
    if (!bigger) {
      free(t);
      return NULL;
    }
    t = bigger;
  }
  n += miscache_latency_prometheus(&lat, t + n, cap - n);
  miscache_t *mc = NULL;
  if (miscache_pool_acquire(pool, 100, &mc) == MISCACHE_OK) {
    miscache_near_stats_t ns;
    miscache_near_stats(mc, &ns, sizeof ns);
    n += miscache_near_prometheus(&ns, t + n, cap - n);
    miscache_pool_release(pool, mc);
  }
  *len = n < cap ? n : cap - 1;
  return t;
}

static void serve(int fd) {
  char req[1024];
  ssize_t r = recv(fd, req, sizeof req - 1, 0);
  if (r <= 0) return;
  req[r] = 0;
  const char *status = "404 Not Found";
  char *body = NULL;
  size_t blen = 0;
  if (!strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET /metrics\r", 13)) {
    body = metrics_text(&blen);
    status = body ? "200 OK" : "500 Internal Server Error";
  }
  char head[256];
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    status, blen);
  (void)!write(fd, head, (size_t)hl);
  for (size_t off = 0; body && off < blen;) {
    ssize_t w = write(fd, body + off, blen - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  free(body);
}

int main(int argc, char **argv) {
  int port = 0, seconds = 0, nthreads = 4;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) nthreads = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--port N] [--seconds N] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  if (nthreads < 1 || nthreads > 64 || port < 0 || port > 65535) return 2;
  openlog("metrics_service", LOG_PID | LOG_PERROR, LOG_USER);
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_event_hook(o, to_syslog, NULL);
  char err[MISCACHE_ERRMSG_SIZE];
  /* one handle more than workers: the /metrics page reads the near cache's
   * figures through one */
  miscache_status_t st = miscache_pool_new(o, (unsigned)nthreads + 1, &pool,
                                           err, sizeof err);
  miscache_options_free(o);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "pool: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) ||
      listen(ls, 16) || getsockname(ls, (struct sockaddr *)&a, &alen)) {
    perror("metrics_service: listen");
    miscache_pool_free(pool);
    return 1;
  }
  printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  fflush(stdout);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  pthread_t th[64];
  for (int i = 0; i < nthreads; i++)
    pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1));
  time_t end = seconds ? time(NULL) + seconds : 0;
  while (!atomic_load(&stop) && (!end || time(NULL) < end)) {
    struct pollfd p = {.fd = ls, .events = POLLIN};
    if (poll(&p, 1, 100) > 0) {
      int c = accept(ls, NULL, NULL);
      if (c >= 0) {
        serve(c);
        close(c);
      }
    }
  }
  atomic_store(&stop, true);
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  close(ls);
  miscache_pool_free(pool);
  closelog();
  return 0;
}

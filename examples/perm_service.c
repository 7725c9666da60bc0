/*
 * perm_service: an event-driven HTTP service (libevent's evhttp) that
 * answers permission checks through the async handle, never blocking its
 * loop on the cache.
 *
 *   perm_service [--port N] [--seconds N]
 *
 *   GET /check?user=7&menu=sales_report&perm=read
 *     200 {"user":7,"menu":"sales_report","perm":"read","allowed":true}
 *     400 for a bad query, 404 when the user has no permissions, 503 when
 *     neither the cache nor the permission database answered.
 *   GET /stats
 *     200 {"checks":N,"at_once":N,"db_loads":N,"failed":N}
 *   GET /metrics
 *     200 the cache handle's figures as Prometheus text: hits, misses and
 *     errors, and miscache_command_duration_seconds (miscache_async_figures)
 *
 * Configured by MISCACHE_URL alone (with "?near=on" a check whose map the
 * near cache holds is answered inside the call). The permission database
 * is simulated: it answers 2 ms after it is asked, from the loop, as an
 * asynchronous database client would. Listens on 127.0.0.1:PORT (0: any
 * free port, printed at start); stops after --seconds (0: on SIGINT or
 * SIGTERM), then prints its figures.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <miscache/adapters/libevent.h>
#include <miscache/miscache.h>

static struct event_base *base;
static miscache_async_t *cache;
static unsigned long checks, at_once, db_loads, failed;

/* ---- the simulated permission database: answers 2 ms later -------------- */

typedef struct db_req {
  struct db_req *prev, *next;
  struct event *timer;
  miscache_async_load_t *ticket;
  int64_t user;
} db_req_t;

static db_req_t *db_pending; /* answered at exit if the loop stops first */

static void db_forget(db_req_t *q) {
  if (q->prev) q->prev->next = q->next;
  else db_pending = q->next;
  if (q->next) q->next->prev = q->prev;
  event_free(q->timer);
  free(q);
}

static void db_answer(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  db_req_t *q = arg;
  miscache_async_load_t *t = q->ticket;
  int64_t u = q->user;
  db_forget(q);
  if (u <= 0 || u > 100000) { /* no such user */
    miscache_async_load_done(t, MISCACHE_MISS, NULL, NULL);
    return;
  }
  db_loads++;
  /* every user reads the sales report; even users may also update it;
   * user 1 administers the batch */
  json_t *map = json_pack("{s:{s:b,s:b,s:b,s:b},s:{s:b,s:b,s:b,s:b}}",
                          "sales_report", "create", 0, "read", 1, "update",
                          u % 2 == 0, "delete", 0, "admin_batch", "create",
                          u == 1, "read", u == 1, "update", u == 1, "delete",
                          0);
  miscache_async_load_done(t, map ? MISCACHE_OK : MISCACHE_ERR_NOMEM, map,
                           map ? NULL : "out of memory");
}

static void db_load(void *ud, const miscache_load_req_t *req,
                    miscache_async_load_t *ticket) {
  (void)ud;
  db_req_t *q = calloc(1, sizeof *q);
  struct timeval two_ms = {0, 2000};
  if (q) q->timer = evtimer_new(base, db_answer, q);
  if (!q || !q->timer || evtimer_add(q->timer, &two_ms) != 0) {
    if (q && q->timer) event_free(q->timer);
    free(q);
    miscache_async_load_done(ticket, MISCACHE_ERR_NOMEM, NULL,
                             "permission database: out of memory");
    return;
  }
  q->ticket = ticket;
  q->user = req->id;
  q->next = db_pending;
  if (db_pending) db_pending->prev = q;
  db_pending = q;
}

/* ---- HTTP ------------------------------------------------------------------- */

static void reply(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply(struct evhttp_request *req, int code, const char *fmt, ...) {
  struct evbuffer *b = evbuffer_new();
  if (b) {
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(b, fmt, ap);
    va_end(ap);
  }
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "application/json");
  evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
  if (b) evbuffer_free(b);
}

typedef struct {
  struct evhttp_request *req;
  int64_t user;
  bool answered_in_call; /* set while the call runs: a near hit */
  bool in_call;
  char menu[64], perm[8];
} check_t;

static void on_checked(void *ud, miscache_status_t st, bool allowed,
                       const char *msg) {
  check_t *c = ud;
  if (c->in_call) c->answered_in_call = true;
  if (st == MISCACHE_OK) {
    reply(c->req, 200,
          "{\"user\":%lld,\"menu\":\"%s\",\"perm\":\"%s\",\"allowed\":%s}\n",
          (long long)c->user, c->menu, c->perm, allowed ? "true" : "false");
  } else if (st == MISCACHE_MISS) {
    reply(c->req, 404, "{\"error\":\"user %lld has no permissions\"}\n",
          (long long)c->user);
  } else {
    failed++;
    /* the message is the library's: no quotes to escape in it? keep it
     * out of the JSON, log it */
    fprintf(stderr, "perm_service: check failed: %s: %s\n",
            miscache_strerror(st), msg);
    reply(c->req, 503, "{\"error\":\"%s\"}\n", miscache_strerror(st));
  }
  if (!c->in_call) free(c);
}

static bool parse_perm(const char *s, miscache_perm_t *p) {
  static const char *const names[4] = {"create", "read", "update", "delete"};
  for (int i = 0; s && i < 4; i++)
    if (strcmp(s, names[i]) == 0) {
      *p = (miscache_perm_t)i;
      return true;
    }
  return false;
}

/* A menu name: letters, digits, '_' (what goes back into the reply). */
static bool menu_ok(const char *s) {
  if (!s || !*s || strlen(s) >= 64) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
      return false;
  return true;
}

static void on_check(struct evhttp_request *req, void *arg) {
  (void)arg;
  struct evkeyvalq q;
  const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
  if (!query || evhttp_parse_query_str(query, &q) != 0) {
    reply(req, 400, "{\"error\":\"want ?user=N&menu=NAME&perm=read\"}\n");
    return;
  }
  const char *user = evhttp_find_header(&q, "user");
  const char *menu = evhttp_find_header(&q, "menu");
  const char *perm = evhttp_find_header(&q, "perm");
  char *end = NULL;
  long long u = user ? strtoll(user, &end, 10) : 0;
  miscache_perm_t p = MISCACHE_PERM_READ;
  if (!user || !*user || *end || !menu_ok(menu) || !parse_perm(perm, &p)) {
    evhttp_clear_headers(&q);
    reply(req, 400, "{\"error\":\"want ?user=N&menu=NAME&perm=read\"}\n");
    return;
  }
  check_t *c = calloc(1, sizeof *c);
  if (!c) {
    evhttp_clear_headers(&q);
    reply(req, 503, "{\"error\":\"out of memory\"}\n");
    return;
  }
  c->req = req;
  c->user = u;
  snprintf(c->menu, sizeof c->menu, "%s", menu);
  snprintf(c->perm, sizeof c->perm, "%s", perm);
  evhttp_clear_headers(&q);
  checks++;
  c->in_call = true;
  miscache_status_t st = miscache_async_permissions_check(
      cache, u, c->menu, p, db_load, NULL, on_checked, c);
  c->in_call = false;
  if (st != MISCACHE_OK) { /* refused at once: no callback */
    failed++;
    fprintf(stderr, "perm_service: %s\n", miscache_async_errmsg(cache));
    reply(req, 503, "{\"error\":\"%s\"}\n", miscache_strerror(st));
  }
  if (c->answered_in_call) at_once++;
  if (st != MISCACHE_OK || c->answered_in_call) free(c);
}

static void on_stats(struct evhttp_request *req, void *arg) {
  (void)arg;
  reply(req, 200,
        "{\"checks\":%lu,\"at_once\":%lu,\"db_loads\":%lu,\"failed\":%lu}\n",
        checks, at_once, db_loads, failed);
}

static void on_metrics(struct evhttp_request *req, void *arg) {
  (void)arg;
  const miscache_t *fig = miscache_async_figures(cache);
  miscache_counters_t c = {0};
  miscache_latency_t lat;
  miscache_counters_total(fig, &c);
  miscache_latency(fig, &lat, sizeof lat);
  size_t need = miscache_latency_prometheus(&lat, NULL, 0) + 1;
  char *text = malloc(need);
  struct evbuffer *b = evbuffer_new();
  if (!text || !b) {
    free(text);
    if (b) evbuffer_free(b);
    evhttp_send_error(req, 500, "out of memory");
    return;
  }
  miscache_latency_prometheus(&lat, text, need);
  evbuffer_add_printf(b,
                      "# TYPE miscache_calls_total counter\n"
                      "miscache_calls_total{outcome=\"hit\"} %llu\n"
                      "miscache_calls_total{outcome=\"miss\"} %llu\n"
                      "miscache_calls_total{outcome=\"error\"} %llu\n%s",
                      (unsigned long long)c.hits, (unsigned long long)c.misses,
                      (unsigned long long)c.errors, text);
  free(text);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "text/plain; version=0.0.4");
  evhttp_send_reply(req, 200, "OK", b);
  evbuffer_free(b);
}

static void on_stop(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what, (void)arg;
  event_base_loopexit(base, NULL);
}

int main(int argc, char **argv) {
  int port = 0, seconds = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: perm_service [--port N] [--seconds N]\n");
      return 2;
    }
  }
  base = event_base_new();
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_async_open(NULL, &cache, err, sizeof err);
  if (st == MISCACHE_OK) st = miscache_libevent_attach(cache, base);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "perm_service: %s: %s\n", miscache_strerror(st), err);
    return 1;
  }
  struct evhttp *http = evhttp_new(base);
  evhttp_set_cb(http, "/check", on_check, NULL);
  evhttp_set_cb(http, "/stats", on_stats, NULL);
  evhttp_set_cb(http, "/metrics", on_metrics, NULL);
  struct evhttp_bound_socket *bound =
      evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
  if (!bound) {
    fprintf(stderr, "perm_service: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sa, &sl);
  printf("listening on 127.0.0.1:%d\n", ntohs(sa.sin_port));
  fflush(stdout);
  struct event *sigint = evsignal_new(base, SIGINT, on_stop, NULL);
  struct event *sigterm = evsignal_new(base, SIGTERM, on_stop, NULL);
  evsignal_add(sigint, NULL);
  evsignal_add(sigterm, NULL);
  struct event *timer = NULL;
  if (seconds > 0) {
    struct timeval tv = {seconds, 0};
    timer = evtimer_new(base, on_stop, NULL);
    evtimer_add(timer, &tv);
  }
  event_base_dispatch(base);
  /* outstanding checks complete with ERR_CANCELLED (503), the database's
   * late answers then only free */
  miscache_async_free(cache);
  while (db_pending) {
    miscache_async_load_t *t = db_pending->ticket;
    db_forget(db_pending);
    miscache_async_load_done(t, MISCACHE_ERR_CANCELLED, NULL, NULL);
  }
  printf("perm_service: %lu checks, %lu answered inside the call (near "
         "cache), %lu permission database loads, %lu failed\n",
         checks, at_once, db_loads, failed);
  if (timer) event_free(timer);
  event_free(sigint);
  event_free(sigterm);
  evhttp_free(http);
  event_base_free(base);
  return 0;
}

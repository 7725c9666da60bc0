/* bench_async: 10,000 concurrent typed session reads through one async
 * handle on libevent (miscache_async_session_get: GET, JSON decoded into
 * the session struct, checked), all issued before the loop turns, against,
 * in the same run:
 * - hiredis 0.14 async with its own libevent adapter: the same 10,000
 *   GETs of the same key (redisAsyncCommand) with the value parsed by
 *   json_loadb in the callback (the same work: a GET and its JSON value),
 *   and with the reply's bytes only;
 * - the library's untyped miscache_async_get of the same key (the value as
 *   a JSON tree, as json_loadb gives it);
 * - redis-benchmark -c 1 -P 100 GET of a value of the same size.
 * Goal (issue 22): >= 0.8 of hiredis async's throughput for the same
 * work. Median of 9 rounds each, the programs' rounds interleaved. */
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <miscache/adapters/libevent.h>

#include "bench.h"

enum { N = 10000, ROUNDS = 9 };

static struct event_base *base;
static int done, bad;

static void on_session(void *ud, miscache_status_t st, miscache_session_t *s,
                       const char *msg) {
  (void)ud, (void)msg;
  if (st != MISCACHE_OK || s->user_id != 123) bad++;
  if (++done == N) event_base_loopbreak(base);
}

static void on_value(void *ud, miscache_status_t st, json_t *v,
                     const char *msg) {
  (void)ud, (void)msg;
  if (st != MISCACHE_OK || !json_is_object(v)) bad++;
  json_decref(v);
  if (++done == N) event_base_loopbreak(base);
}

static bool typed = true;

static double library_round(miscache_async_t *a) {
  done = 0;
  double t0 = now_s();
  for (int i = 0; i < N; i++)
    if ((typed ? miscache_async_session_get(a, 123, on_session, NULL)
               : miscache_async_get(a, MISCACHE_DB_SESSION, "session:user:123",
                                    on_value, NULL)) != MISCACHE_OK) {
      fprintf(stderr, "async call refused: %s\n", miscache_async_errmsg(a));
      exit(1);
    }
  while (done < N) event_base_dispatch(base);
  return N / (now_s() - t0);
}

static bool parse_json;

static void on_reply(redisAsyncContext *ac, void *r, void *ud) {
  (void)ac, (void)ud;
  redisReply *rep = r;
  if (!rep || rep->type != REDIS_REPLY_STRING) {
    bad++;
  } else if (parse_json) {
    json_t *v = json_loadb(rep->str, rep->len, 0, NULL);
    if (!v) bad++;
    json_decref(v);
  }
  if (++done == N) event_base_loopbreak(base);
}

static double hiredis_round(redisAsyncContext *ac, const char *key) {
  done = 0;
  double t0 = now_s();
  for (int i = 0; i < N; i++)
    redisAsyncCommand(ac, on_reply, NULL, "GET %s", key);
  while (done < N) event_base_dispatch(base);
  return N / (now_s() - t0);
}

int main(void) {
  miscache_t *mc = bench_open();
  bench_session_set(mc);
  int db = miscache_db_number(mc, MISCACHE_DB_SESSION);
  redisContext *rc = bench_raw();
  redisReply *r = redisCommand(rc, "SELECT %d", db);
  freeReplyObject(r);
  r = redisCommand(rc, "STRLEN session:user:123");
  size_t size = r && r->type == REDIS_REPLY_INTEGER ? (size_t)r->integer : 0;
  freeReplyObject(r);
  if (!size) {
    fprintf(stderr, "the session was not stored\n");
    return 1;
  }
  base = event_base_new();

  miscache_async_t *a = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  if (miscache_async_open(NULL, &a, err, sizeof err) != MISCACHE_OK ||
      miscache_libevent_attach(a, base) != MISCACHE_OK) {
    fprintf(stderr, "async open: %s\n", err);
    return 1;
  }
  redisAsyncContext *ac = redisAsyncConnectUnix(bench_socket());
  if (!ac || ac->err || redisLibeventAttach(ac, base) != REDIS_OK) {
    fprintf(stderr, "hiredis async connect failed\n");
    return 1;
  }
  redisAsyncCommand(ac, NULL, NULL, "SELECT %d", db);

  double lib[ROUNDS], libv[ROUNDS], raw[ROUNDS], rawj[ROUNDS];
  library_round(a); /* warm up both */
  hiredis_round(ac, "session:user:123");
  for (int i = 0; i < ROUNDS; i++) { /* interleaved: same conditions */
    typed = true;
    lib[i] = library_round(a);
    typed = false;
    libv[i] = library_round(a);
    parse_json = false;
    raw[i] = hiredis_round(ac, "session:user:123");
    parse_json = true;
    rawj[i] = hiredis_round(ac, "session:user:123");
  }
  miscache_async_free(a);
  redisAsyncFree(ac);
  event_base_free(base);
  if (bad) {
    fprintf(stderr, "%d reads failed\n", bad);
    return 1;
  }
  char args[128];
  snprintf(args, sizeof args, "-c 1 -P 100 -n 200000 -d %zu -t get", size);
  double rb = redis_benchmark(args, "GET");
  double l = median(lib, ROUNDS), lv = median(libv, ROUNDS),
         h = median(raw, ROUNDS), hj = median(rawj, ROUNDS);
  printf("bench_async: %d concurrent reads of one session per round, one "
         "connection, libevent, value %zu bytes, %d rounds (median)\n",
         N, size, ROUNDS);
  printf("  library async session_get (typed)  %10.0f reads/s\n", l);
  printf("  library async get (JSON value)     %10.0f reads/s\n", lv);
  printf("  hiredis async GET + json_loadb     %10.0f reads/s\n", hj);
  printf("  hiredis async GET (bytes only)     %10.0f reads/s\n", h);
  printf("  redis-benchmark -c 1 -P 100 GET    %10.0f ops/s\n", rb);
  printf("  same work (a GET and its JSON value): typed/hiredis = %.3f, "
         "get/hiredis = %.3f (target >= 0.80)\n",
         hj > 0 ? l / hj : 0, hj > 0 ? lv / hj : 0);
  printf("  against bytes only: typed/hiredis GET = %.3f, get/hiredis GET = "
         "%.3f; typed/redis-benchmark = %.3f\n",
         h > 0 ? l / h : 0, h > 0 ? lv / h : 0, rb > 0 ? l / rb : 0);
  char x[64], y[96];
  snprintf(x, sizeof x, "%.0f session reads/s", l);
  snprintf(y, sizeof y, "hiredis async GET+json_loadb %.0f/s", hj);
  bench_summary("async session reads", x, y, hj > 0 ? l / hj : 0, ">= 0.80",
                hj > 0 && l / hj >= 0.8);
  snprintf(x, sizeof x, "%.0f session reads/s", l);
  snprintf(y, sizeof y, "hiredis async GET, bytes only %.0f/s", h);
  bench_summary("async vs bytes only", x, y, h > 0 ? l / h : 0, "-", -1);
  miscache_free(mc);
  redisFree(rc);
  return 0;
}

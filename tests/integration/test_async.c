/* The async handle (async.h) through both adapters, libevent and libuv,
 * against a private server: values, TTLs, dbs and the namespace; 1,000
 * calls issued before the loop turns; a reply that never comes (the timer
 * ends the call); the server killed with 1,000 calls in flight; free with
 * calls in flight and from inside a callback. Every callback is counted:
 * each must run exactly once. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>

#include <event2/event.h>
#include <uv.h>

#include "conn/cluster.h"
#include "fake.h"
#include "fixture.h"
#include "miscache/adapters/libevent.h"
#include "miscache/adapters/libuv.h"

typedef enum { EV, UV } loop_kind_t;

typedef struct {
  loop_kind_t kind;
  struct event_base *base;
  uv_loop_t uv;
} loop_t;

static void loop_init(loop_t *l, loop_kind_t kind) {
  memset(l, 0, sizeof *l);
  l->kind = kind;
  if (kind == EV) l->base = event_base_new();
  else assert_int_equal(uv_loop_init(&l->uv), 0);
}

static void loop_attach(loop_t *l, miscache_async_t *a) {
  assert_int_equal(l->kind == EV ? miscache_libevent_attach(a, l->base)
                                 : miscache_libuv_attach(a, &l->uv),
                   MISCACHE_OK);
}

/* Turn the loop until *done reaches want or ms pass. */
static void loop_until(loop_t *l, const int *done, int want, int ms) {
  int64_t end = mt_now_ns() + (int64_t)ms * 1000000;
  while (*done < want && mt_now_ns() < end) {
    if (l->kind == EV) event_base_loop(l->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    else uv_run(&l->uv, UV_RUN_NOWAIT);
    mt_sleep_ms(1);
  }
}

static void loop_close(loop_t *l) {
  if (l->kind == EV) {
    event_base_free(l->base);
  } else {
    uv_run(&l->uv, UV_RUN_NOWAIT); /* the adapter's close callbacks */
    assert_int_equal(uv_loop_close(&l->uv), 0);
  }
}

typedef struct {
  int calls;         /* callbacks run */
  int ok, miss, other;
  miscache_status_t last;
  int order_bad;     /* a completion out of order */
  int next;          /* the index the next completion must have */
  json_t *value;
} tally_t;

typedef struct {
  tally_t *t;
  int index;
} slot_t;

static void on_value(void *ud, miscache_status_t st, json_t *v,
                     const char *msg) {
  slot_t *s = ud;
  tally_t *t = s->t;
  (void)msg;
  t->calls++;
  t->last = st;
  if (s->index != t->next++) t->order_bad++;
  if (st == MISCACHE_OK) t->ok++;
  else if (st == MISCACHE_MISS) t->miss++;
  else t->other++;
  if (v) {
    json_decref(t->value);
    t->value = v;
  }
}

static void on_done(void *ud, miscache_status_t st, const char *msg) {
  on_value(ud, st, NULL, msg);
}

static void on_bool(void *ud, miscache_status_t st, bool yes,
                    const char *msg) {
  on_value(ud, st == MISCACHE_OK && !yes ? MISCACHE_MISS : st, NULL, msg);
}

static char last_ns[80]; /* the namespace of the last handle opened */

static miscache_async_t *open_async(const char *url, int timeout_ms) {
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  snprintf(last_ns, sizeof last_ns, "%s", mt_namespace());
  assert_int_equal(miscache_options_set_namespace(o, last_ns), MISCACHE_OK);
  const char *tags = getenv("MT_HASH_TAGS"); /* the fixture's key format */
  if (tags && tags[0] == '1')
    assert_int_equal(miscache_options_set_hash_tags(o, true), MISCACHE_OK);
  if (timeout_ms)
    assert_int_equal(miscache_options_set_command_timeout(o, timeout_ms),
                     MISCACHE_OK);
  miscache_async_t *a = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_async_open(o, &a, err, sizeof err);
  if (st != MISCACHE_OK) fail_msg("async open: %s", err);
  miscache_options_free(o);
  return a;
}

/* A loop of kind with a handle on url attached to it. */
static miscache_async_t *start(loop_t *l, loop_kind_t kind, const char *url,
                               int timeout_ms) {
  loop_init(l, kind);
  miscache_async_t *a = open_async(url, timeout_ms);
  loop_attach(l, a);
  return a;
}

static void round_trip(loop_kind_t kind) {
  loop_t l;
  char url[700];
  snprintf(url, sizeof url, "%s%sdb_cache=7&ttl_permissions=77", mt_srv.url,
           strchr(mt_srv.url, '?') ? "&" : "?");
  miscache_async_t *a = start(&l, kind, url, 0);
  tally_t t = {0};
  slot_t s[5] = {{&t, 0}, {&t, 1}, {&t, 2}, {&t, 3}, {&t, 4}};
  json_t *v = json_pack("{s:{s:b}}", "sales", "read", 1);
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, "permissions:user:5",
                                      v, MISCACHE_TTL_PERMISSIONS, on_done, &s[0]),
                   MISCACHE_OK);
  json_decref(v); /* encoded at the call */
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "permissions:user:5",
                                      on_value, &s[1]), MISCACHE_OK);
  assert_int_equal(miscache_async_exists(a, MISCACHE_DB_CACHE,
                                         "permissions:user:5", on_bool, &s[2]),
                   MISCACHE_OK);
  assert_int_equal(miscache_async_delete(a, MISCACHE_DB_CACHE,
                                         "permissions:user:5", on_bool, &s[3]),
                   MISCACHE_OK);
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "permissions:user:5",
                                      on_value, &s[4]), MISCACHE_OK);
  assert_int_equal(miscache_async_outstanding(a), 5);
  loop_until(&l, &t.calls, 5, 3000);
  assert_int_equal(t.calls, 5);
  assert_int_equal(t.order_bad, 0);
  assert_int_equal(t.ok, 4);   /* set, get, exists, delete */
  assert_int_equal(t.miss, 1); /* the get after the delete */
  assert_non_null(t.value);
  assert_true(json_is_true(json_object_get(json_object_get(t.value, "sales"),
                                           "read")));
  json_decref(t.value);
  /* the URL's db and TTL, the namespace */
  t = (tally_t){0};
  v = json_true();
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, "permissions:user:6",
                                      v, MISCACHE_TTL_PERMISSIONS, on_done, &s[0]),
                   MISCACHE_OK);
  loop_until(&l, &t.calls, 1, 3000);
  assert_int_equal(t.ok, 1);
  json_decref(v);
  miscache_t *sync = NULL;
  assert_int_equal(miscache_open_url(url, &sync, NULL, 0), MISCACHE_OK);
  char key[128];
  snprintf(key, sizeof key, "%spermissions:user:6", last_ns);
  long long pttl = mt_raw_int(mt_rc, 7, "PTTL %s", key);
  assert_true(pttl > 70000 && pttl <= 77000);
  if (!mt_is_cluster()) /* (one db on a cluster) */
    assert_int_equal(mt_raw_int(mt_rc, 1, "EXISTS %s", key), 0);
  miscache_free(sync);
  /* refusals: no callback */
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "", on_value, &s[0]),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", NULL, NULL),
                   MISCACHE_ERR_INVALID);
  assert_true(miscache_async_errmsg(a)[0] != 0);
  miscache_async_free(a);
  assert_int_equal(t.calls, 1);
  loop_close(&l);
}

/* 1,000 calls before the loop turns: all answered, once each, in order. */
static void pipelined(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 0);
  enum { N = 1000 };
  static slot_t s[N];
  tally_t t = {0};
  long long before = mt_cmdstat_calls(mt_rc, "get");
  for (int i = 0; i < N; i++) {
    s[i] = (slot_t){&t, i};
    assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "nothing-here",
                                        on_value, &s[i]), MISCACHE_OK);
  }
  loop_until(&l, &t.calls, N, 5000);
  assert_int_equal(t.calls, N);
  assert_int_equal(t.miss, N);
  assert_int_equal(t.order_bad, 0);
  assert_int_equal(mt_cmdstat_calls(mt_rc, "get") - before, N);
  /* the handle's figures: N misses, N reads timed */
  const miscache_t *fig = miscache_async_figures(a);
  assert_non_null(fig);
  miscache_counters_t cnt;
  assert_int_equal(miscache_counters_total(fig, &cnt), MISCACHE_OK);
  assert_int_equal(cnt.misses, N);
  assert_int_equal(cnt.hits, 0);
  miscache_latency_t lat;
  assert_int_equal(miscache_latency(fig, &lat, sizeof lat), MISCACHE_OK);
  assert_int_equal(lat.calls[MISCACHE_CMD_READ], N);
  uint64_t in_buckets = 0;
  for (int b = 0; b < MISCACHE_LATENCY_BUCKETS; b++)
    in_buckets += lat.buckets[MISCACHE_CMD_READ][b];
  assert_int_equal(in_buckets, N);
  assert_true(lat.total_us[MISCACHE_CMD_READ] > 0);
  assert_null(miscache_async_figures(NULL));
  miscache_async_free(a);
  loop_close(&l);
}

/* A reply that never comes: the timer ends the call with ERR_UNAVAILABLE
 * after the command timeout, and the handle works again afterwards. */
static void never_answered(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 200);
  redisReply *r = redisCommand(mt_rc, "CLIENT PAUSE 1000 ALL");
  freeReplyObject(r);
  tally_t t = {0};
  slot_t s[2] = {{&t, 0}, {&t, 1}};
  int64_t t0 = mt_now_ns();
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, &s[0]),
                   MISCACHE_OK);
  loop_until(&l, &t.calls, 1, 3000);
  int64_t ms = (mt_now_ns() - t0) / 1000000;
  assert_int_equal(t.calls, 1);
  assert_int_equal(t.last, MISCACHE_ERR_UNAVAILABLE);
  assert_true(ms >= 150 && ms < 900);
  mt_sleep_ms(900); /* the pause ends */
  t.next = 1;
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, &s[1]),
                   MISCACHE_OK);
  loop_until(&l, &t.calls, 2, 3000);
  assert_int_equal(t.calls, 2);
  assert_int_equal(t.last, MISCACHE_MISS);
  miscache_async_free(a);
  loop_close(&l);
}

/* The server killed with 1,000 calls in flight: each callback once, none
 * OK after the kill; free with calls in flight: ERR_CANCELLED each. */
static void killed_and_freed(loop_kind_t kind) {
  mt_server_t s2;
  assert_int_equal(mt_server_start(&s2, NULL), 0);
  loop_t l;
  miscache_async_t *a = start(&l, kind, s2.url, 2000);
  enum { N = 1000 };
  static slot_t s[N];
  tally_t t = {0};
  for (int i = 0; i < N; i++) {
    s[i] = (slot_t){&t, i};
    assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, &s[i]),
                     MISCACHE_OK);
  }
  mt_server_kill(&s2);
  loop_until(&l, &t.calls, N, 5000);
  assert_int_equal(t.calls, N);
  assert_int_equal(t.order_bad, 0);
  assert_int_equal(t.ok, 0);
  assert_int_equal(miscache_async_outstanding(a), 0);
  /* the next call reconnects, which fails: the connect is the loop's, so
   * the failure comes through the callback (or at the call, when the
   * kernel refuses the connect() at once); then the breaker refuses calls
   * at once */
  t.next = 0;
  s[0].index = 0;
  miscache_status_t st = miscache_async_get(a, MISCACHE_DB_CACHE, "k",
                                            on_value, &s[0]);
  if (st == MISCACHE_OK) {
    loop_until(&l, &t.calls, N + 1, 3000);
    assert_int_equal(t.calls, N + 1);
    assert_int_equal(t.last, MISCACHE_ERR_UNAVAILABLE);
  } else {
    assert_int_equal(st, MISCACHE_ERR_UNAVAILABLE);
  }
  int calls = t.calls;
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value,
                                      &s[0]),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_non_null(strstr(miscache_async_errmsg(a), "down"));
  assert_int_equal(t.calls, calls);
  assert_int_equal(mt_server_restart(&s2), 0);
  mt_sleep_ms(250); /* past the breaker's window */
  t = (tally_t){0};
  for (int i = 0; i < 10; i++) {
    s[i] = (slot_t){&t, i};
    assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, &s[i]),
                     MISCACHE_OK);
  }
  miscache_async_free(a); /* before the loop ran: all cancelled */
  assert_int_equal(t.calls, 10);
  assert_int_equal(t.last, MISCACHE_ERR_CANCELLED);
  assert_int_equal(t.other, 10);
  loop_close(&l);
  mt_server_stop(&s2);
}

/* Free from inside a callback: the others are cancelled, once each. */
typedef struct {
  miscache_async_t *a;
  tally_t *t;
} freeing_t;

static void free_in_callback(void *ud, miscache_status_t st, json_t *v,
                             const char *msg) {
  freeing_t *f = ud;
  (void)st, (void)msg;
  json_decref(v);
  f->t->calls++;
  miscache_async_free(f->a);
  /* a call now is refused */
  assert_int_equal(miscache_async_get(f->a, MISCACHE_DB_CACHE, "k", on_value,
                                      NULL),
                   MISCACHE_ERR_CANCELLED);
}

static void freed_inside(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 0);
  tally_t t = {0};
  freeing_t f = {a, &t};
  slot_t s[5];
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k",
                                      free_in_callback, &f), MISCACHE_OK);
  for (int i = 0; i < 5; i++) {
    s[i] = (slot_t){&t, i};
    assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, &s[i]),
                     MISCACHE_OK);
  }
  t.next = 0;
  loop_until(&l, &t.calls, 6, 3000);
  assert_int_equal(t.calls, 6);
  assert_int_equal(t.other, 5); /* cancelled (or answered before: none) */
  assert_int_equal(t.last, MISCACHE_ERR_CANCELLED);
  loop_close(&l);
}


/* ---- the typed and cache-aside calls ---------------------------------------- */

/* The blocking peer on the async handle's namespace. */
static miscache_t *peer(void) {
  miscache_t *mc = mt_open_in(NULL, last_ns);
  assert_non_null(mc);
  return mc;
}

typedef struct {
  int calls;
  miscache_status_t st;
  miscache_session_t s; /* moved out of the callback */
  char msg[MISCACHE_ERRMSG_SIZE];
} sess_t;

static void on_session(void *ud, miscache_status_t st, miscache_session_t *s,
                       const char *msg) {
  sess_t *r = ud;
  r->calls++;
  r->st = st;
  snprintf(r->msg, sizeof r->msg, "%s", msg);
  if (s) { /* keep it: the struct moves, the callee's is zeroed */
    r->s = *s;
    memset(s, 0, sizeof *s);
  }
}

static void on_sess_done(void *ud, miscache_status_t st, const char *msg) {
  sess_t *r = ud;
  r->calls++;
  r->st = st;
  snprintf(r->msg, sizeof r->msg, "%s", msg);
}

static void typed_session(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 0);
  miscache_t *mc = peer();
  /* set through async, read through both */
  miscache_session_t s = {.user_id = 41, .username = "kim", .dept_id = 3,
                          .current_company_id = 9};
  sess_t r = {0};
  assert_int_equal(miscache_async_session_set(a, &s, on_sess_done, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.st, MISCACHE_OK);
  miscache_session_t got = {0};
  assert_int_equal(miscache_session_get(mc, 41, &got), MISCACHE_OK);
  assert_string_equal(got.username, "kim");
  assert_non_null(got.last_activity);
  miscache_session_clear(&got);
  long long pttl = mt_raw_pttl(mc, MISCACHE_DB_SESSION, "session:user:41");
  assert_true(pttl > 86000000 && pttl <= 86400000);
  r = (sess_t){0};
  assert_int_equal(miscache_async_session_get(a, 41, on_session, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.st, MISCACHE_OK);
  assert_int_equal(r.s.user_id, 41);
  assert_int_equal(r.s.dept_id, 3);
  assert_int_equal(r.s.current_company_id, 9);
  assert_string_equal(r.s.username, "kim");
  miscache_session_clear(&r.s);
  /* touch keeps what the Flask side added and restarts the TTL */
  mt_raw_set(mc, MISCACHE_DB_SESSION, "session:user:42",
             "{\"user_id\":42,\"username\":\"lee\",\"csrf\":\"x1\","
             "\"last_activity\":\"2026-01-01T00:00:00Z\"}");
  r = (sess_t){0};
  assert_int_equal(miscache_async_session_touch(a, 42, on_sess_done, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.st, MISCACHE_OK);
  char *raw = mt_raw_get(mc, MISCACHE_DB_SESSION, "session:user:42");
  assert_non_null(raw);
  json_t *obj = json_loads(raw, 0, NULL);
  free(raw);
  assert_string_equal(json_string_value(json_object_get(obj, "csrf")), "x1");
  assert_string_equal(json_string_value(json_object_get(obj, "username")), "lee");
  assert_string_not_equal(
      json_string_value(json_object_get(obj, "last_activity")),
      "2026-01-01T00:00:00Z");
  json_decref(obj);
  pttl = mt_raw_pttl(mc, MISCACHE_DB_SESSION, "session:user:42");
  assert_true(pttl > 86000000);
  /* no session: MISS; a value that is no session: not touched */
  r = (sess_t){0};
  assert_int_equal(miscache_async_session_touch(a, 43, on_sess_done, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.st, MISCACHE_MISS);
  assert_int_equal(mt_raw_exists_in(mc, 0, "session:user:43"), 0);
  mt_raw_set(mc, MISCACHE_DB_SESSION, "session:user:44", "{\"user_id\":\"x\"}");
  r = (sess_t){0};
  assert_int_equal(miscache_async_session_touch(a, 44, on_sess_done, &r),
                   MISCACHE_OK);
  assert_int_equal(miscache_async_session_get(a, 44, on_session, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 2, 3000);
  assert_int_equal(r.calls, 2);
  assert_int_equal(r.st, MISCACHE_ERR_DECODE); /* the get */
  raw = mt_raw_get(mc, MISCACHE_DB_SESSION, "session:user:44");
  assert_string_equal(raw, "{\"user_id\":\"x\"}");
  free(raw);
  assert_true(mt_raw_pttl(mc, MISCACHE_DB_SESSION, "session:user:44") <= 600000);
  miscache_free(mc);
  miscache_async_free(a);
  loop_close(&l);
}

typedef struct {
  int calls;
  miscache_status_t st;
  size_t n;
  json_t *values[4];
  miscache_status_t sts[4];
  json_t **all; /* when set: every value (taken) and status, up to all_n */
  miscache_status_t *all_sts;
  size_t all_n;
} many_t;

static void on_values(void *ud, miscache_status_t st, size_t n,
                      json_t *const values[], const miscache_status_t sts[],
                      const char *msg) {
  many_t *m = ud;
  (void)msg;
  m->calls++;
  m->st = st;
  m->n = n;
  for (size_t i = 0; i < n && i < 4; i++) {
    m->values[i] = values[i];
    m->sts[i] = sts[i];
  }
  for (size_t i = 0; m->all && i < n && i < m->all_n; i++) {
    m->all[i] = values[i];
    m->all_sts[i] = sts[i];
  }
}

static void mget_values(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 0);
  miscache_t *mc = peer();
  mt_raw_set(mc, MISCACHE_DB_CACHE, "m:1", "{\"a\":1}");
  mt_raw_set(mc, MISCACHE_DB_CACHE, "m:3", "not json");
  const char *keys[3] = {"m:1", "m:2", "m:3"};
  many_t m = {0};
  assert_int_equal(miscache_async_mget(a, MISCACHE_DB_CACHE, 3, keys, on_values,
                                       &m), MISCACHE_OK);
  assert_int_equal(miscache_async_mget(a, MISCACHE_DB_CACHE, 0, keys, on_values,
                                       &m), MISCACHE_ERR_INVALID);
  loop_until(&l, &m.calls, 1, 3000);
  assert_int_equal(m.calls, 1);
  assert_int_equal(m.st, MISCACHE_OK);
  assert_int_equal(m.n, 3);
  assert_int_equal(m.sts[0], MISCACHE_OK);
  assert_int_equal(json_integer_value(json_object_get(m.values[0], "a")), 1);
  assert_int_equal(m.sts[1], MISCACHE_MISS);
  assert_null(m.values[1]);
  assert_int_equal(m.sts[2], MISCACHE_ERR_DECODE);
  assert_null(m.values[2]);
  json_decref(m.values[0]);
  miscache_free(mc);
  miscache_async_free(a);
  loop_close(&l);
}

/* A loader that answers later (the test calls load_done), or at once. */
typedef struct {
  int asked;
  miscache_async_load_t *ticket;
  bool at_once;
  miscache_status_t answer;
  const char *json;
  miscache_load_req_t req; /* copy of the last request */
  char key[128];
} loader_t;

static void load_later(void *ud, const miscache_load_req_t *req,
                       miscache_async_load_t *t) {
  loader_t *ld = ud;
  ld->asked++;
  ld->req = *req;
  snprintf(ld->key, sizeof ld->key, "%s", req->key);
  ld->req.key = ld->key;
  if (ld->at_once)
    miscache_async_load_done(t, ld->answer,
                             ld->json ? json_loads(ld->json, 0, NULL) : NULL,
                             "db says no");
  else
    ld->ticket = t;
}

static void answer(loader_t *ld) {
  miscache_async_load_t *t = ld->ticket;
  ld->ticket = NULL;
  miscache_async_load_done(t, ld->answer,
                           ld->json ? json_loads(ld->json, 0, NULL) : NULL,
                           "db says no");
}

/* Turn the loop until the loader holds a ticket (at most 3 s). */
static void wait_ticket(loop_t *l, const loader_t *ld) {
  int none = 0;
  int64_t end = mt_now_ns() + 3000000000LL;
  while (!ld->ticket && mt_now_ns() < end) loop_until(l, &none, 1, 5);
  assert_non_null(ld->ticket);
}

typedef struct {
  int calls;
  miscache_status_t st;
  miscache_source_t src;
  json_t *v;
  char msg[MISCACHE_ERRMSG_SIZE];
} src_t;

static void on_source(void *ud, miscache_status_t st, json_t *v,
                      miscache_source_t src, const char *msg) {
  src_t *r = ud;
  r->calls++;
  r->st = st;
  r->src = src;
  json_decref(r->v);
  r->v = v;
  snprintf(r->msg, sizeof r->msg, "%s", msg);
}

static void get_or_load(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 0);
  miscache_t *mc = peer();
  loader_t ld = {.answer = MISCACHE_OK, .json = "{\"name\":\"gift\"}"};
  src_t r = {0};
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "g:1",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  /* the GET goes out, misses, the loader is asked and answers later */
  wait_ticket(&l, &ld);
  assert_int_equal(ld.asked, 1);
  assert_string_equal(ld.req.key, "g:1");
  assert_int_equal(ld.req.family, -1);
  assert_int_equal(r.calls, 0);
  assert_int_equal(miscache_async_outstanding(a), 1);
  answer(&ld);
  loop_until(&l, &r.calls, 1, 3000); /* after the store's reply */
  assert_int_equal(r.st, MISCACHE_OK);
  assert_int_equal(r.src, MISCACHE_SOURCE_LOADED);
  assert_string_equal(json_string_value(json_object_get(r.v, "name")), "gift");
  long long pttl = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "g:1");
  assert_true(pttl > 21000000 && pttl <= 21600000); /* master data: 6 h */
  /* cached now: the loader is not asked */
  r.calls = 0;
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "g:1",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.src, MISCACHE_SOURCE_CACHE);
  assert_int_equal(ld.asked, 1);
  /* a stored value that is not JSON is replaced; an answer at once */
  mt_raw_set(mc, MISCACHE_DB_CACHE, "g:2", "{broken");
  ld.at_once = true;
  r.calls = 0;
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "g:2",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.src, MISCACHE_SOURCE_LOADED);
  char *raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "g:2");
  assert_string_equal(raw, "{\"name\":\"gift\"}");
  free(raw);
  /* the loader has nothing: MISS, nothing stored; it fails: ERR_LOADER */
  ld.answer = MISCACHE_MISS;
  ld.json = NULL;
  r.calls = 0;
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "g:3",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.st, MISCACHE_MISS);
  assert_null(r.v);
  assert_int_equal(mt_raw_exists_in(mc, 0, "g:3") +
                       mt_raw_exists_in(mc, 1, "g:3"), 0);
  ld.answer = MISCACHE_ERR_UNAVAILABLE;
  r.calls = 0;
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "g:3",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.st, MISCACHE_ERR_LOADER);
  assert_non_null(strstr(r.msg, "db says no"));
  /* one flight: three calls that miss the same key while its loader works
   * ask it once, and each gets the value (its own copy) */
  ld.at_once = false;
  ld.answer = MISCACHE_OK;
  ld.json = "{\"flight\":1}";
  ld.asked = 0;
  src_t fr[3] = {{0}};
  for (int i = 0; i < 3; i++)
    assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "g:5",
                                                MISCACHE_TTL_MASTER_DATA,
                                                load_later, &ld, on_source,
                                                &fr[i]),
                     MISCACHE_OK);
  wait_ticket(&l, &ld);
  loop_until(&l, &fr[0].calls, 1, 100); /* the other two GETs answered too */
  assert_int_equal(ld.asked, 1);
  assert_int_equal(miscache_async_outstanding(a), 3);
  answer(&ld);
  loop_until(&l, &fr[2].calls, 1, 3000);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(fr[i].calls, 1);
    assert_int_equal(fr[i].st, MISCACHE_OK);
    assert_int_equal(fr[i].src, MISCACHE_SOURCE_LOADED);
    assert_int_equal(json_integer_value(json_object_get(fr[i].v, "flight")), 1);
  }
  assert_ptr_not_equal(fr[0].v, fr[1].v);
  for (int i = 0; i < 3; i++) json_decref(fr[i].v);
  /* freed while the loader works: cancelled once; the late answer only
   * frees; a call waiting on that flight is cancelled too */
  ld.at_once = false;
  ld.answer = MISCACHE_OK;
  ld.json = "{\"late\":true}";
  r.calls = 0;
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "g:4",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  src_t r2 = {0};
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "g:4",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r2),
                   MISCACHE_OK);
  wait_ticket(&l, &ld);
  loop_until(&l, &r.calls, 1, 100);
  assert_int_equal(miscache_async_outstanding(a), 2);
  miscache_async_free(a);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.st, MISCACHE_ERR_CANCELLED);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r2.st, MISCACHE_ERR_CANCELLED);
  answer(&ld);
  assert_int_equal(r.calls, 1);
  assert_int_equal(mt_raw_exists_in(mc, 1, "g:4"), 0);
  json_decref(r.v);
  miscache_free(mc);
  loop_close(&l);
}

typedef struct {
  int calls;
  miscache_status_t st;
  bool yes;
} yes_t;

static void on_yes(void *ud, miscache_status_t st, bool yes, const char *msg) {
  yes_t *y = ud;
  (void)msg;
  y->calls++;
  y->st = st;
  y->yes = yes;
}

static void permission_check(loop_kind_t kind) {
  loop_t l;
  char url[700];
  snprintf(url, sizeof url, "%s%snear=on&near_ping_ms=100", mt_srv.url,
           strchr(mt_srv.url, '?') ? "&" : "?");
  miscache_async_t *a = start(&l, kind, url, 0);
  miscache_t *mc = peer();
  loader_t ld = {.at_once = true,
                 .answer = MISCACHE_OK,
                 .json = "{\"sales\":{\"read\":true,\"update\":false}}"};
  yes_t y = {0};
  assert_int_equal(miscache_async_permissions_check(a, 7, "sales",
                                                    MISCACHE_PERM_READ,
                                                    load_later, &ld, on_yes, &y),
                   MISCACHE_OK);
  assert_int_equal(y.calls, 0); /* not cached yet: through the loop */
  loop_until(&l, &y.calls, 1, 3000);
  assert_int_equal(y.st, MISCACHE_OK);
  assert_true(y.yes);
  assert_int_equal(ld.asked, 1);
  assert_int_equal(ld.req.family, MISCACHE_KF_PERMISSIONS);
  assert_int_equal(ld.req.id, 7);
  /* stored under the library's key, with the permissions TTL */
  long long pttl = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "permissions:user:7");
  assert_true(pttl > 0);
  /* read from the server now; the near cache keeps it once it serves */
  int64_t end = mt_now_ns() + 3000000000LL;
  bool at_once = false;
  while (!at_once && mt_now_ns() < end) {
    y.calls = 0;
    assert_int_equal(miscache_async_permissions_check(a, 7, "sales",
                                                      MISCACHE_PERM_UPDATE,
                                                      load_later, &ld, on_yes,
                                                      &y),
                     MISCACHE_OK);
    at_once = y.calls == 1;
    loop_until(&l, &y.calls, 1, 3000);
    assert_int_equal(y.st, MISCACHE_OK);
    assert_false(y.yes);
  }
  assert_true(at_once); /* a near hit: answered before the call returned */
  assert_int_equal(ld.asked, 1);
  /* read your writes: a get right after this handle's set is not the near
   * entry's old value */
  tally_t t = {0};
  slot_t sl[2] = {{&t, 0}, {&t, 1}};
  json_t *nv = json_pack("{s:{s:b}}", "sales", "read", 0);
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, "permissions:user:7",
                                      nv, MISCACHE_TTL_PERMISSIONS, on_done,
                                      &sl[0]),
                   MISCACHE_OK);
  json_decref(nv);
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "permissions:user:7",
                                      on_value, &sl[1]),
                   MISCACHE_OK);
  assert_int_equal(t.calls, 0); /* not answered from the near cache */
  loop_until(&l, &t.calls, 2, 3000);
  assert_int_equal(t.ok, 2);
  assert_int_equal(t.order_bad, 0);
  assert_true(json_is_false(
      json_object_get(json_object_get(t.value, "sales"), "read")));
  json_decref(t.value);
  /* another program changes the map: the near entry goes, the new map
   * is read */
  json_t *map = json_pack("{s:{s:b,s:b}}", "sales", "read", 1, "update", 1);
  assert_int_equal(miscache_permissions_set(mc, 7, map), MISCACHE_OK);
  json_decref(map);
  end = mt_now_ns() + 3000000000LL;
  y.yes = false;
  while (!y.yes && mt_now_ns() < end) {
    y.calls = 0;
    assert_int_equal(miscache_async_permissions_check(a, 7, "sales",
                                                      MISCACHE_PERM_UPDATE,
                                                      load_later, &ld, on_yes,
                                                      &y),
                     MISCACHE_OK);
    loop_until(&l, &y.calls, 1, 3000);
  }
  assert_true(y.yes);
  /* one load for checks of one user that miss together; the leader's
   * map is gone once its check answered, each follower has its own copy */
  loader_t ld9 = {.answer = MISCACHE_OK,
                  .json = "{\"sales\":{\"read\":true}}"};
  yes_t y9[3] = {{0}};
  for (int i = 0; i < 3; i++)
    assert_int_equal(miscache_async_permissions_check(
                         a, 9, "sales", MISCACHE_PERM_READ, load_later, &ld9,
                         on_yes, &y9[i]),
                     MISCACHE_OK);
  wait_ticket(&l, &ld9);
  loop_until(&l, &y9[0].calls, 1, 100);
  assert_int_equal(ld9.asked, 1);
  answer(&ld9);
  loop_until(&l, &y9[2].calls, 1, 3000);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(y9[i].calls, 1);
    assert_int_equal(y9[i].st, MISCACHE_OK);
    assert_true(y9[i].yes);
  }
  /* a menu absent from the map denies; a bad argument is refused */
  y.calls = 0;
  assert_int_equal(miscache_async_permissions_check(a, 7, "hr",
                                                    MISCACHE_PERM_READ,
                                                    load_later, &ld, on_yes, &y),
                   MISCACHE_OK);
  loop_until(&l, &y.calls, 1, 3000);
  assert_false(y.yes);
  assert_int_equal(miscache_async_permissions_check(a, 7, NULL,
                                                    MISCACHE_PERM_READ,
                                                    load_later, &ld, on_yes, &y),
                   MISCACHE_ERR_INVALID);
  miscache_free(mc);
  miscache_async_free(a);
  loop_close(&l);
}


/* ---- a loop of the test's own: the compare-and-set of touch ----------------- */

typedef struct {
  int rfd, wfd;
  int writes_asked; /* add_write calls: one per batch to send */
} manual_t;

static void m_add_read(void *d, int fd) { ((manual_t *)d)->rfd = fd; }
static void m_del_read(void *d, int fd) {
  (void)fd;
  ((manual_t *)d)->rfd = -1;
}
static void m_add_write(void *d, int fd) {
  manual_t *m = d;
  m->wfd = fd;
  m->writes_asked++;
}
static void m_del_write(void *d, int fd) {
  (void)fd;
  ((manual_t *)d)->wfd = -1;
}
static void m_timer(void *d, int64_t ms) { (void)d, (void)ms; }

/* One turn: poll the watched socket 1 ms, hand the readiness over. */
static void m_step(miscache_async_t *a, manual_t *m) {
  struct pollfd p = {.fd = m->rfd >= 0 ? m->rfd : m->wfd, .events = 0};
  if (m->rfd >= 0) p.events |= POLLIN;
  if (m->wfd >= 0) p.events |= POLLOUT;
  if (p.fd < 0 || poll(&p, 1, 1) <= 0) return;
  if (p.revents & POLLOUT) miscache_async_handle_write(a);
  if (p.revents & (POLLIN | POLLHUP | POLLERR)) miscache_async_handle_read(a);
}

/* Another client writes the session between touch's read and its write:
 * touch reads again and writes on top of that write (nothing lost). */
static void test_touch_compare_and_set(void **state) {
  (void)state;
  miscache_async_t *a = open_async(mt_srv.url, 0);
  manual_t m = {-1, -1, 0};
  miscache_async_loop_t lp = {.data = &m,
                              .add_read = m_add_read,
                              .del_read = m_del_read,
                              .add_write = m_add_write,
                              .del_write = m_del_write,
                              .set_timer = m_timer};
  assert_int_equal(miscache_async_attach(a, &lp), MISCACHE_OK);
  miscache_t *mc = peer();
  mt_raw_set(mc, MISCACHE_DB_SESSION, "session:user:45",
             "{\"user_id\":45,\"last_activity\":\"2026-01-01T00:00:00Z\"}");
  int64_t end = mt_now_ns() + 3000000000LL;
  /* connected first (on a cluster the node's connection opens with the
   * first call to it) */
  tally_t t = {0};
  slot_t s0 = {&t, 0};
  assert_int_equal(miscache_async_exists(a, MISCACHE_DB_SESSION,
                                         "session:user:45", on_bool, &s0),
                   MISCACHE_OK);
  while (t.calls < 1 && mt_now_ns() < end) m_step(a, &m);
  assert_int_equal(t.ok, 1);
  m.writes_asked = 0;
  sess_t r = {0};
  assert_int_equal(miscache_async_session_touch(a, 45, on_sess_done, &r),
                   MISCACHE_OK);
  assert_int_equal(m.writes_asked, 1); /* the GET */
  while (m.writes_asked < 2 && mt_now_ns() < end) m_step(a, &m);
  assert_int_equal(m.writes_asked, 2); /* its compare-and-set, not sent */
  mt_raw_set(mc, MISCACHE_DB_SESSION, "session:user:45",
             "{\"user_id\":45,\"flask\":\"late\","
             "\"last_activity\":\"2026-01-01T00:00:00Z\"}");
  while (r.calls < 1 && mt_now_ns() < end) m_step(a, &m);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.st, MISCACHE_OK);
  assert_true(m.writes_asked >= 4); /* read again, written again */
  char *raw = mt_raw_get(mc, MISCACHE_DB_SESSION, "session:user:45");
  json_t *obj = json_loads(raw, 0, NULL);
  free(raw);
  assert_string_equal(json_string_value(json_object_get(obj, "flask")), "late");
  assert_string_not_equal(
      json_string_value(json_object_get(obj, "last_activity")),
      "2026-01-01T00:00:00Z");
  json_decref(obj);
  assert_true(mt_raw_pttl(mc, MISCACHE_DB_SESSION, "session:user:45") > 86000000);
  miscache_free(mc);
  miscache_async_free(a);
}


/* An async handle of a pool shares its pending invalidations: a key whose
 * delete is pending (the server refused writes) reads as a miss, and a
 * loader's value for it is not stored. */
static void test_pool_pending_shared(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_command_timeout(o, 200), MISCACHE_OK);
  assert_int_equal(miscache_options_set_url(o, mt_srv.url), MISCACHE_OK);
  snprintf(last_ns, sizeof last_ns, "%s", mt_namespace());
  assert_int_equal(miscache_options_set_namespace(o, last_ns), MISCACHE_OK);
  miscache_pool_t *pool = NULL;
  assert_int_equal(miscache_pool_new(o, 1, &pool, NULL, 0), MISCACHE_OK);
  miscache_options_free(o);
  miscache_async_t *a = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_async_open_pool(pool, &a, err, sizeof err),
                   MISCACHE_OK);
  loop_t l;
  loop_init(&l, EV);
  loop_attach(&l, a);
  miscache_t *b = NULL;
  assert_int_equal(miscache_pool_acquire(pool, 0, &b), MISCACHE_OK);
  json_t *v = json_pack("{s:i}", "x", 1);
  assert_int_equal(
      miscache_set(b, MISCACHE_DB_CACHE, "k1", v, MISCACHE_TTL_MASTER_DATA),
      MISCACHE_OK);
  json_decref(v);
  tally_t t = {0};
  slot_t sl = {&t, 0};
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k1", on_value, &sl),
                   MISCACHE_OK);
  loop_until(&l, &t.calls, 1, 3000);
  assert_int_equal(t.ok, 1); /* there before the delete */
  json_decref(t.value);
  mt_raw_cmd("CLIENT PAUSE 5000 WRITE");
  assert_int_equal(miscache_delete(b, MISCACHE_DB_CACHE, "k1", NULL),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_int_equal(miscache_pool_pending_invalidations(pool), 1);
  t = (tally_t){0};
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k1", on_value, &sl),
                   MISCACHE_OK);
  assert_int_equal(t.calls, 1); /* a miss at once: nothing asked */
  assert_int_equal(t.miss, 1);
  loader_t ld = {.at_once = true, .answer = MISCACHE_OK, .json = "{\"x\":2}"};
  src_t r = {0};
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "k1",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.src, MISCACHE_SOURCE_UNCACHED);
  assert_int_equal(json_integer_value(json_object_get(r.v, "x")), 2);
  json_decref(r.v);
  mt_raw_cmd("CLIENT UNPAUSE");
  mt_sleep_ms(150);
  assert_int_equal(miscache_ping(b), MISCACHE_OK); /* replays the delete */
  assert_int_equal(miscache_pool_pending_invalidations(pool), 0);
  assert_int_equal(mt_raw_exists_in(b, 1, "k1"), 0);
  assert_int_equal(miscache_pool_release(pool, b), MISCACHE_OK);
  miscache_async_free(a);
  loop_close(&l);
  miscache_pool_free(pool);
}


typedef struct {
  int calls;
  miscache_status_t st;
  miscache_lock_t *lock;
  char msg[MISCACHE_ERRMSG_SIZE];
} lk_t;

static void on_lock(void *ud, miscache_status_t st, miscache_lock_t *lock,
                    const char *msg) {
  lk_t *k = ud;
  k->calls++;
  k->st = st;
  k->lock = lock;
  snprintf(k->msg, sizeof k->msg, "%s", msg);
}

static void on_lk_done(void *ud, miscache_status_t st, const char *msg) {
  lk_t *k = ud;
  k->calls++;
  k->st = st;
  snprintf(k->msg, sizeof k->msg, "%s", msg);
}

/* Master lists through the async aside, and locks that exclude the
 * blocking API's. */
static void masters_and_locks(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 0);
  miscache_t *mc = peer();
  loader_t ld = {.at_once = true, .answer = MISCACHE_OK,
                 .json = "[{\"id\":1,\"name\":\"HQ\"}]"};
  src_t r = {0};
  assert_int_equal(miscache_async_master_get_or_load(
                       a, MISCACHE_MASTER_DEPARTMENTS, load_later, &ld,
                       on_source, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.st, MISCACHE_OK);
  assert_int_equal(r.src, MISCACHE_SOURCE_LOADED);
  assert_int_equal(ld.req.family, MISCACHE_KF_MASTER_DEPARTMENTS);
  json_t *got = NULL;
  assert_int_equal(miscache_master_get(mc, MISCACHE_MASTER_DEPARTMENTS, &got),
                   MISCACHE_OK);
  assert_int_equal(json_array_size(got), 1);
  json_decref(got);
  /* a cached value that is no array is replaced; a loader's that is no
   * array is refused */
  mt_raw_set(mc, MISCACHE_DB_CACHE, "master:products:category:5", "{}");
  r.calls = 0;
  assert_int_equal(miscache_async_master_products_get_or_load(
                       a, 5, load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.src, MISCACHE_SOURCE_LOADED);
  assert_int_equal(ld.req.id, 5);
  assert_true(json_is_array(r.v));
  ld.json = "{\"not\":\"an array\"}";
  r.calls = 0;
  assert_int_equal(miscache_async_master_products_get_or_load(
                       a, 6, load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  loop_until(&l, &r.calls, 1, 3000);
  assert_int_equal(r.st, MISCACHE_ERR_LOADER);
  assert_int_equal(
      mt_raw_exists_in(mc, 1, "master:products:category:6") +
          mt_raw_exists_in(mc, 0, "master:products:category:6"),
      0);
  json_decref(r.v);
  /* locks: the async one excludes the blocking one and itself */
  lk_t k = {0}, k2 = {0};
  assert_int_equal(miscache_async_lock_acquire(a, MISCACHE_DB_TEMP, "lock:job",
                                               30000, "async", "b1", on_lock,
                                               &k),
                   MISCACHE_OK);
  assert_int_equal(miscache_async_lock_acquire(a, MISCACHE_DB_TEMP, "lock:job",
                                               30000, "async2", NULL, on_lock,
                                               &k2),
                   MISCACHE_OK);
  loop_until(&l, &k2.calls, 1, 3000);
  assert_int_equal(k.st, MISCACHE_OK);
  assert_non_null(k.lock);
  assert_int_equal(k2.st, MISCACHE_ERR_LOCKED);
  assert_null(k2.lock);
  assert_non_null(strstr(k2.msg, "held by async since 20")); /* the holder */
  long long pttl = mt_raw_pttl(mc, MISCACHE_DB_TEMP, "lock:job");
  assert_true(pttl > 29000 && pttl <= 30000);
  miscache_lock_t *bl = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_TEMP, "lock:job", 1000,
                                         "blocking", NULL, &bl),
                   MISCACHE_ERR_LOCKED);
  json_t *info = NULL;
  assert_int_equal(miscache_lock_info(mc, MISCACHE_DB_TEMP, "lock:job", &info),
                   MISCACHE_OK);
  assert_string_equal(json_string_value(json_object_get(info, "token")),
                      miscache_lock_token(k.lock));
  assert_string_equal(json_string_value(json_object_get(info, "locked_by")),
                      "async");
  json_decref(info);
  k2 = (lk_t){0};
  assert_int_equal(miscache_async_lock_extend(a, k.lock, 90000, on_lk_done,
                                              &k2),
                   MISCACHE_OK);
  loop_until(&l, &k2.calls, 1, 3000);
  assert_int_equal(k2.st, MISCACHE_OK);
  assert_true(mt_raw_pttl(mc, MISCACHE_DB_TEMP, "lock:job") > 80000);
  k2 = (lk_t){0};
  assert_int_equal(miscache_async_lock_release(a, k.lock, on_lk_done, &k2),
                   MISCACHE_OK);
  loop_until(&l, &k2.calls, 1, 3000);
  assert_int_equal(k2.st, MISCACHE_OK);
  k2 = (lk_t){0};
  assert_int_equal(miscache_async_lock_extend(a, k.lock, 90000, on_lk_done,
                                              &k2),
                   MISCACHE_OK);
  loop_until(&l, &k2.calls, 1, 3000);
  assert_int_equal(k2.st, MISCACHE_ERR_NOT_OWNER);
  assert_null(mt_raw_get(mc, MISCACHE_DB_TEMP, "lock:job")); /* released */
  k2 = (lk_t){0};
  assert_int_equal(miscache_async_lock_release(a, k.lock, on_lk_done, &k2),
                   MISCACHE_OK);
  loop_until(&l, &k2.calls, 1, 3000);
  assert_int_equal(k2.st, MISCACHE_ERR_NOT_OWNER);
  miscache_lock_free(k.lock);
  /* free now: the blocking one takes it, and the async release of a lock
   * another owner holds does not remove it */
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_TEMP, "lock:job", 5000,
                                         "blocking", NULL, &bl),
                   MISCACHE_OK);
  k = (lk_t){0};
  assert_int_equal(miscache_async_lock_acquire(a, MISCACHE_DB_TEMP, "lock:job",
                                               30000, "async", NULL, on_lock,
                                               &k),
                   MISCACHE_OK);
  loop_until(&l, &k.calls, 1, 3000);
  assert_int_equal(k.st, MISCACHE_ERR_LOCKED);
  assert_int_equal(miscache_lock_release(mc, bl), MISCACHE_OK);
  miscache_lock_free(bl);
  miscache_free(mc);
  miscache_async_free(a);
  loop_close(&l);
}


typedef struct {
  int calls;
  miscache_status_t st;
  size_t n;
  char ids[4][MISCACHE_QUEUE_ID_SIZE];
} enq_t;

static void on_ids(void *ud, miscache_status_t st, size_t n,
                   const char (*ids)[MISCACHE_QUEUE_ID_SIZE], const char *msg) {
  enq_t *q = ud;
  (void)msg;
  q->calls++;
  q->st = st;
  q->n = n;
  for (size_t i = 0; i < n && i < 4; i++)
    snprintf(q->ids[i], sizeof q->ids[i], "%s", ids[i]);
}

/* Enqueued asynchronously, pulled by the blocking consumer. */
static void queue_enqueue(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 0);
  miscache_t *mc = peer();
  json_t *b[3] = {json_pack("{s:i}", "job", 1), json_pack("{s:i}", "job", 2),
                  json_pack("{s:i}", "job", 3)};
  const char *mids[3] = {"m-1", NULL, "m-3"};
  enq_t q = {0};
  assert_int_equal(miscache_async_queue_enqueue(a, "jobs", 3,
                                                (const json_t *const *)b, mids,
                                                NULL, on_ids, &q),
                   MISCACHE_OK);
  assert_int_equal(miscache_async_queue_enqueue(a, "bad name", 3,
                                                (const json_t *const *)b, mids,
                                                NULL, on_ids, &q),
                   MISCACHE_ERR_KEY);
  for (int i = 0; i < 3; i++) json_decref(b[i]); /* encoded at the call */
  loop_until(&l, &q.calls, 1, 3000);
  assert_int_equal(q.calls, 1);
  assert_int_equal(q.st, MISCACHE_OK);
  assert_int_equal(q.n, 3);
  miscache_queue_msg_t m[4];
  size_t got = 0;
  assert_int_equal(miscache_queue_pull(mc, "jobs", "workers", "w1", 4, 0, m,
                                       &got),
                   MISCACHE_OK);
  assert_int_equal(got, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_string_equal(m[i].id, q.ids[i]);
    if (mids[i]) assert_string_equal(m[i].msg_id, mids[i]);
    else assert_true(strlen(m[i].msg_id) == 36); /* a UUID was made */
    assert_int_equal(json_integer_value(json_object_get(m[i].body, "job")),
                     (json_int_t)i + 1);
    miscache_queue_msg_clear(&m[i]);
  }
  miscache_free(mc);
  miscache_async_free(a);
  loop_close(&l);
}


/* At free, the cancelled callback of one call answers the loader of
 * another: that call still completes once (with the value, not stored),
 * nothing is left queued on the freed handle. */
static loader_t *answer_in_cancel;

static void answer_on_cancel(void *ud, miscache_status_t st, json_t *v,
                             const char *msg) {
  (void)msg;
  json_decref(v);
  *(miscache_status_t *)ud = st;
  if (answer_in_cancel && answer_in_cancel->ticket) answer(answer_in_cancel);
}

static void test_loader_answered_during_free(void **state) {
  (void)state;
  loop_t l;
  miscache_async_t *a = start(&l, EV, mt_srv.url, 0);
  loader_t ld = {.answer = MISCACHE_OK, .json = "{\"late\":1}"};
  src_t r = {0};
  assert_int_equal(miscache_async_get_or_load(a, MISCACHE_DB_CACHE, "fr:1",
                                              MISCACHE_TTL_MASTER_DATA,
                                              load_later, &ld, on_source, &r),
                   MISCACHE_OK);
  wait_ticket(&l, &ld);
  miscache_status_t got = MISCACHE_OK;
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "fr:2",
                                      answer_on_cancel, &got),
                   MISCACHE_OK);
  answer_in_cancel = &ld;
  miscache_async_free(a); /* the get is cancelled first, and answers */
  answer_in_cancel = NULL;
  assert_int_equal(got, MISCACHE_ERR_CANCELLED);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.st, MISCACHE_OK);
  assert_int_equal(r.src, MISCACHE_SOURCE_UNCACHED);
  json_decref(r.v);
  loop_close(&l);
}

/* ---- a page of gift classification */

typedef struct {
  int calls;
  miscache_status_t st;
  size_t from_cache;
} page_end_t;

static void on_page(void *ud, miscache_status_t st, size_t from_cache,
                    const char *msg) {
  page_end_t *pe = ud;
  (void)msg;
  pe->calls++;
  pe->st = st;
  pe->from_cache = from_cache;
}

static miscache_gift_engine_t *page_engine(void) {
  miscache_gift_rules_t r = {.auto_classify = true, .zero_price_rule = true,
                             .exclude_from_revenue = true};
  miscache_strings_push(&r.keywords, "sample");
  miscache_strings_push(&r.master_products, "MP-1");
  miscache_gift_engine_t *e = NULL;
  assert_int_equal(miscache_gift_engine_new(&r, NULL, 0, &e), MISCACHE_OK);
  miscache_gift_rules_clear(&r);
  return e;
}

enum { PAGE_N = 7 };
static const char *page_codes[PAGE_N] = {"A1", "A2", "MP-1", "A3",
                                         "",   "A4", "A5"};
static const char *page_names[PAGE_N] = {"free pen", "sample pack", "mug",
                                         "desk", "bad", "chair", "lamp"};
static const double page_prices[PAGE_N] = {0, 10, 20, 30, 40, 50, 60};

static void page_products(miscache_gift_product_t p[PAGE_N]) {
  for (int i = 0; i < PAGE_N; i++)
    p[i] = (miscache_gift_product_t){.product_code = page_codes[i],
                                     .product_name = page_names[i],
                                     .supply_price = page_prices[i]};
}

/* The page: the cached lines read (one whose stored reason no engine
 * gives proves it), a value that is no JSON replaced, a line with no key
 * refused alone, the engine's results stored with their TTL in the gift
 * db and read back by the blocking call; then the same page freed in
 * flight is cancelled. */
static void gift_page(loop_kind_t kind) {
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 0);
  miscache_t *mc = peer();
  miscache_gift_engine_t *e = page_engine();
  miscache_gift_product_t p[PAGE_N];
  page_products(p);
  miscache_gift_classification_t c;
  assert_int_equal(miscache_gift_classify(mc, 9, e, &p[5], &c, NULL),
                   MISCACHE_OK); /* A4 cached by the blocking call */
  miscache_gift_classification_clear(&c);
  mt_raw_set(mc, MISCACHE_DB_GIFT, "gift:classification:A3:9",
             "{\"product_type\":\"REVENUE\",\"is_revenue\":true,"
             "\"classification_reason\":\"from the cache\","
             "\"revenue_impact\":30,\"classified_at\":\"x\"}");
  mt_raw_set(mc, MISCACHE_DB_GIFT, "gift:classification:A5:9", "not json");
  miscache_gift_classification_t out[PAGE_N];
  miscache_status_t sts[PAGE_N];
  page_end_t pe = {0};
  assert_int_equal(miscache_async_gift_classify_page(a, 9, e, p, 0, out, sts,
                                                     on_page, &pe),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_async_gift_classify_page(a, 9, e, p, PAGE_N, out,
                                                     sts, NULL, &pe),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_async_gift_classify_page(a, 9, e, p, PAGE_N, out,
                                                     sts, on_page, &pe),
                   MISCACHE_OK);
  assert_int_equal(pe.calls, 0);
  loop_until(&l, &pe.calls, 1, 3000);
  assert_int_equal(pe.calls, 1);
  assert_int_not_equal(sts[4], MISCACHE_OK); /* "" makes no key */
  assert_int_equal(pe.st, sts[4]);
  assert_null(out[4].product_type);
  assert_int_equal(pe.from_cache, 2); /* A4 and A3; A5's was no JSON */
  assert_string_equal(out[3].classification_reason, "from the cache");
  for (int i = 0; i < PAGE_N; i++) {
    if (i == 4) continue;
    assert_int_equal(sts[i], MISCACHE_OK);
    miscache_gift_classification_t want;
    assert_int_equal(miscache_gift_engine_classify(e, &p[i], &want),
                     MISCACHE_OK);
    assert_string_equal(out[i].product_type, want.product_type);
    assert_int_equal(out[i].is_revenue, want.is_revenue);
    if (want.gift_type) assert_string_equal(out[i].gift_type, want.gift_type);
    else assert_null(out[i].gift_type);
    miscache_gift_classification_clear(&want);
    if (i != 3 && i != 5) { /* the engine's: stored with the class's TTL */
      char key[64];
      snprintf(key, sizeof key, "gift:classification:%s:9", page_codes[i]);
      long long ttl = mt_raw_pttl(mc, MISCACHE_DB_GIFT, key);
      assert_true(ttl > 0);
      miscache_source_t src;
      assert_int_equal(miscache_gift_classify(mc, 9, e, &p[i], &c, &src),
                       MISCACHE_OK);
      assert_int_equal(src, MISCACHE_SOURCE_CACHE);
      assert_string_equal(c.product_type, out[i].product_type);
      miscache_gift_classification_clear(&c);
    }
    miscache_gift_classification_clear(&out[i]);
  }
  /* freed before the reply: cancelled, out cleared */
  pe = (page_end_t){0};
  assert_int_equal(miscache_async_gift_classify_page(a, 9, e, p, PAGE_N, out,
                                                     sts, on_page, &pe),
                   MISCACHE_OK);
  miscache_async_free(a);
  assert_int_equal(pe.calls, 1);
  assert_int_equal(pe.st, MISCACHE_ERR_CANCELLED);
  for (int i = 0; i < PAGE_N; i++) {
    assert_null(out[i].product_type);
    assert_int_equal(sts[i], MISCACHE_ERR_CANCELLED);
  }
  miscache_gift_engine_free(e);
  miscache_free(mc);
  loop_close(&l);
}

/* A page of PAGE_N good lines on a, with between(ud) run once it is
 * queued: it must come back OK with every line the engine's and none from
 * the cache. */
static void page_from_engine(loop_t *l, miscache_async_t *a,
                             void (*between)(void *), void *ud) {
  miscache_gift_engine_t *e = page_engine();
  miscache_gift_product_t p[PAGE_N];
  page_products(p);
  p[4].product_code = "A6";
  miscache_gift_classification_t out[PAGE_N];
  page_end_t pe = {0};
  assert_int_equal(miscache_async_gift_classify_page(a, 9, e, p, PAGE_N, out,
                                                     NULL, on_page, &pe),
                   MISCACHE_OK);
  if (between) between(ud);
  loop_until(l, &pe.calls, 1, 5000);
  assert_int_equal(pe.calls, 1);
  assert_int_equal(pe.st, MISCACHE_OK);
  assert_int_equal(pe.from_cache, 0);
  for (int i = 0; i < PAGE_N; i++) {
    miscache_gift_classification_t want;
    assert_int_equal(miscache_gift_engine_classify(e, &p[i], &want),
                     MISCACHE_OK);
    assert_string_equal(out[i].product_type, want.product_type);
    miscache_gift_classification_clear(&want);
    miscache_gift_classification_clear(&out[i]);
  }
  miscache_gift_engine_free(e);
}

static void kill_server(void *srv) { mt_server_kill(srv); }

/* Fail-open: the server killed with the page's MGET in flight; the engine
 * answers every line, nothing from the cache, the call OK. */
static void gift_page_fail_open(loop_kind_t kind) {
  mt_server_t s2;
  assert_int_equal(mt_server_start(&s2, NULL), 0);
  loop_t l;
  miscache_async_t *a = start(&l, kind, s2.url, 1000);
  page_from_engine(&l, a, kill_server, &s2);
  miscache_async_free(a);
  loop_close(&l);
  mt_server_stop(&s2);
}

/* ---- Sentinel */

typedef struct {
  int calls;
  miscache_status_t st;
  char msg[MISCACHE_ERRMSG_SIZE];
} msg_t;

static void on_msg(void *ud, miscache_status_t st, const char *msg) {
  msg_t *m = ud;
  m->calls++;
  m->st = st;
  snprintf(m->msg, sizeof m->msg, "%s", msg);
}

/* The value of key (namespaced as the handles') in physical db 3 of
 * server srv, read by a raw client; "" when absent. */
static void raw_get3(const mt_server_t *srv, const char *key, char *out,
                     size_t len) {
  redisContext *c = mt_raw(srv, NULL);
  assert_non_null(c);
  redisReply *r = redisCommand(c, "SELECT 3");
  freeReplyObject(r);
  r = redisCommand(c, "GET %s%s", last_ns, key);
  assert_non_null(r);
  snprintf(out, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  redisFree(c);
}

/* Set key to {"n": n} through a, retrying (each try a whole call) until
 * it lands or ms pass; the last status. */
static miscache_status_t set_until(loop_t *l, miscache_async_t *a,
                                   const char *key, int n, int ms) {
  json_t *v = json_pack("{s:i}", "n", n);
  tally_t t = {0};
  slot_t sl = {&t, 0};
  miscache_status_t st = MISCACHE_ERR_UNAVAILABLE;
  for (int64_t end = mt_now_ns() + (int64_t)ms * 1000000;
       mt_now_ns() < end;) {
    t.next = sl.index = t.calls;
    int want = t.calls + 1;
    st = miscache_async_set(a, MISCACHE_DB_CACHE, key, v, MISCACHE_TTL_TEMP_DATA,
                            on_done, &sl);
    if (st == MISCACHE_OK) {
      loop_until(l, &t.calls, want, 3000);
      assert_int_equal(t.calls, want);
      st = t.last;
      if (st == MISCACHE_OK) break;
    }
    mt_sleep_ms(50);
  }
  json_decref(v);
  return st;
}

/* Behind Sentinel: the handle finds the master and round-trips a value;
 * after SENTINEL FAILOVER its calls fail for a while (the old master's
 * connection is gone or READONLY), then reach the new master: a value
 * written then is on the former replica, read there by a raw client. */
static void sentinel_failover(loop_kind_t kind) {
  mt_sentinels_t dep;
  assert_int_equal(mt_sentinels_start(&dep), 0);
  char url[700];
  snprintf(url, sizeof url, "%s?db_cache=3", dep.url);
  loop_t l;
  miscache_async_t *a = start(&l, kind, url, 1000);
  assert_int_equal(set_until(&l, a, "sf", 1, 1000), MISCACHE_OK);
  char got[64];
  raw_get3(&dep.master, "sf", got, sizeof got);
  assert_string_equal(got, "{\"n\":1}");
  tally_t t = {0};
  slot_t sl = {&t, 0};
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "sf", on_value, &sl),
                   MISCACHE_OK);
  loop_until(&l, &t.calls, 1, 3000);
  assert_int_equal(t.last, MISCACHE_OK);
  assert_int_equal(json_integer_value(json_object_get(t.value, "n")), 1);
  json_decref(t.value);
  redisReply *r = mt_sentinel_cmd(&dep, 0, "SENTINEL FAILOVER mymaster");
  assert_non_null(r);
  assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
  freeReplyObject(r);
  for (int k = 0; k < 1000 && mt_sentinel_master_port(&dep, 0) !=
                                  dep.replica.port; k++)
    mt_sleep_ms(10);
  assert_int_equal(mt_sentinel_master_port(&dep, 0), dep.replica.port);
  /* a write in the first moments may still reach the old master (until
   * the sentinels demote it, or the handle's next check asks them); the
   * calls must move to the new one within seconds */
  bool moved = false;
  int64_t t0 = mt_now_ns();
  for (int n = 2; n < 400 && !moved; n++) {
    assert_int_equal(set_until(&l, a, "sf", n, 15000), MISCACHE_OK);
    char want[32];
    snprintf(want, sizeof want, "{\"n\":%d}", n);
    raw_get3(&dep.replica, "sf", got, sizeof got);
    moved = strcmp(got, want) == 0;
    if (!moved) mt_sleep_ms(50);
  }
  int64_t ms = (mt_now_ns() - t0) / 1000000;
  printf("# writes reached the new master %lld ms after the sentinels named "
         "it\n", (long long)ms);
  assert_true(moved);
  /* the handle asks the sentinels every second while it works (the old
   * master alone would take writes until they demote it: ~10 s here) */
  assert_true(ms < 6000);
  /* the master demoted under the handle (made a replica by hand): the
   * call that gets READONLY fails UNAVAILABLE and drops the connection;
   * the next asks the sentinels (or waits out their backoff), whose
   * master's ROLE is no master now: refused at the call; once it is a master again, calls land on it */
  char cmd[64];
  snprintf(cmd, sizeof cmd, "REPLICAOF 127.0.0.1 %d", dep.master.port);
  redisContext *c = mt_raw(&dep.replica, NULL);
  assert_non_null(c);
  r = redisCommand(c, cmd);
  freeReplyObject(r);
  json_t *v = json_pack("{s:i}", "n", -1);
  msg_t m = {0};
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, "sf", v,
                                      MISCACHE_TTL_TEMP_DATA, on_msg, &m),
                   MISCACHE_OK);
  loop_until(&l, &m.calls, 1, 3000);
  assert_int_equal(m.calls, 1);
  assert_int_equal(m.st, MISCACHE_ERR_UNAVAILABLE);
  assert_non_null(strstr(m.msg, "READONLY"));
  miscache_status_t st2 = miscache_async_set(a, MISCACHE_DB_CACHE, "sf", v,
                                             MISCACHE_TTL_TEMP_DATA, on_msg, &m);
  if (st2 == MISCACHE_OK) {
    loop_until(&l, &m.calls, 2, 3000);
    fail_msg("the call after READONLY was taken; it completed with %s: %s",
             miscache_strerror(m.st), m.msg);
  }
  /* ("lost; asking again in N ms" inside the lookup's backoff) */
  assert_non_null(strstr(miscache_async_errmsg(a), "mymaster"));
  assert_int_equal(m.calls, 1);
  /* past it, the call is taken and held while the loop asks the
   * sentinels and then the master they name for its ROLE: a replica's,
   * so it fails through its callback and nothing is written */
  mt_sleep_ms(150);
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, "sf", v,
                                      MISCACHE_TTL_TEMP_DATA, on_msg, &m),
                   MISCACHE_OK);
  assert_int_equal(m.calls, 1);
  loop_until(&l, &m.calls, 2, 3000);
  assert_int_equal(m.calls, 2);
  assert_int_equal(m.st, MISCACHE_ERR_UNAVAILABLE);
  assert_non_null(strstr(m.msg, "ROLE is"));
  raw_get3(&dep.replica, "sf", got, sizeof got);
  assert_null(strstr(got, "-1"));
  json_decref(v);
  r = redisCommand(c, "REPLICAOF NO ONE");
  freeReplyObject(r);
  redisFree(c);
  assert_int_equal(set_until(&l, a, "sf", 500, 5000), MISCACHE_OK);
  raw_get3(&dep.replica, "sf", got, sizeof got);
  assert_string_equal(got, "{\"n\":500}");
  miscache_async_free(a);
  loop_close(&l);
  mt_sentinels_stop(&dep);
}

/* ---- the connect is the loop's */

static char *no_reply(void *ud, int argc, char **argv, size_t *lens,
                      size_t *len) {
  (void)ud, (void)argc, (void)argv, (void)lens, (void)len;
  return NULL;
}

/* A reconnect never blocks the call: against a server (our fake) that
 * takes the connection but leaves AUTH unanswered, the call returns at
 * once with its callback not run, and the connect timeout ends it through
 * the loop (the blocking connect this replaced made the call itself wait
 * that long, then refused it). A wrong password comes back ERR_AUTH
 * through the callback; with AUTH answered, calls connect through the
 * loop and read the value. */
static void connect_in_loop(loop_kind_t kind) {
  mt_fake_t *f = mt_fake_start();
  assert_non_null(f);
  char url[300];
  snprintf(url, sizeof url,
           "redis://:pw@127.0.0.1:%d?connect_timeout_ms=1500&"
           "command_timeout_ms=2000&backoff_min_ms=50&backoff_max_ms=100",
           mt_fake_port(f));
  loop_t l;
  miscache_async_t *a = start(&l, kind, url, 0);
  assert_int_equal(mt_fake_connections(f), 1); /* open connects, blocking */
  tally_t t = {0};
  slot_t s = {&t, 0};
  /* GET unanswered: the call times out and the connection is dropped */
  mt_fake_on_fn(f, "GET", no_reply, NULL);
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, &s),
                   MISCACHE_OK);
  loop_until(&l, &t.calls, 1, 3000);
  assert_int_equal(t.last, MISCACHE_ERR_UNAVAILABLE);
  /* now nothing is answered (AUTH included): the next call must not wait
   * for the connect */
  mt_fake_on_fn(f, "*", no_reply, NULL);
  msg_t m = {0};
  int64_t t0 = mt_now_ns();
  assert_int_equal(miscache_async_delete(a, MISCACHE_DB_CACHE, "k", NULL, NULL),
                   MISCACHE_ERR_INVALID); /* (no callback: refused) */
  json_t *v = json_pack("{s:i}", "n", 1);
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, "k", v,
                                      MISCACHE_TTL_TEMP_DATA, on_msg, &m),
                   MISCACHE_OK);
  int64_t call_ms = (mt_now_ns() - t0) / 1000000;
  assert_int_equal(m.calls, 0);
  assert_int_equal(miscache_async_outstanding(a), 1);
  loop_until(&l, &m.calls, 1, 3000);
  assert_int_equal(m.calls, 1);
  assert_int_equal(m.st, MISCACHE_ERR_UNAVAILABLE);
  assert_non_null(strstr(m.msg, "connect timed out"));
  assert_non_null(strstr(m.msg, "AUTH"));
  assert_true(call_ms < 1000); /* the call did not sit out the connect */
  assert_true(m.calls == 1 && (mt_now_ns() - t0) / 1000000 >= 1400);
  assert_int_equal(mt_fake_connections(f), 2);
  /* a wrong password: ERR_AUTH through the callback */
  mt_fake_on_str(f, "AUTH", "-WRONGPASS invalid username-password pair\r\n");
  mt_sleep_ms(120); /* past the breaker's window */
  m = (msg_t){0};
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, "k", v,
                                      MISCACHE_TTL_TEMP_DATA, on_msg, &m),
                   MISCACHE_OK);
  loop_until(&l, &m.calls, 1, 3000);
  assert_int_equal(m.st, MISCACHE_ERR_AUTH);
  assert_non_null(strstr(m.msg, "WRONGPASS"));
  /* AUTH answered: connected through the loop, the value read */
  mt_fake_on_str(f, "AUTH", "+OK\r\n");
  mt_fake_on_str(f, "SELECT", "+OK\r\n");
  mt_fake_on_str(f, "PTTL", ":-1\r\n");
  mt_fake_on_str(f, "GET", "$7\r\n{\"n\":7}\r\n");
  mt_sleep_ms(120);
  t = (tally_t){0};
  s.index = 0;
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, &s),
                   MISCACHE_OK);
  loop_until(&l, &t.calls, 1, 3000);
  assert_int_equal(t.last, MISCACHE_OK);
  assert_int_equal(json_integer_value(json_object_get(t.value, "n")), 7);
  json_decref(t.value);
  assert_int_equal(mt_fake_connections(f), 4);
  json_decref(v);
  miscache_async_free(a);
  loop_close(&l);
  mt_fake_stop(f);
}

/* ---- AUTH and TLS */

typedef struct {
  int calls;
  miscache_status_t st;
  bool yes;
  char msg[MISCACHE_ERRMSG_SIZE];
} ymsg_t;

static void on_yes_msg(void *ud, miscache_status_t st, bool yes,
                       const char *msg) {
  ymsg_t *y = ud;
  y->calls++;
  y->st = st;
  y->yes = yes;
  snprintf(y->msg, sizeof y->msg, "%s", msg);
}

/* EXISTS k until a call ends other than with the lost connection (the
 * first after a kill finds it dead) or being refused at the call inside
 * the breaker's window; that call's status, its message in y. */
static miscache_status_t exists_through(loop_t *l, miscache_async_t *a,
                                        ymsg_t *y) {
  for (int k = 0; k < 40; k++) {
    int want = y->calls + 1;
    miscache_status_t st = miscache_async_exists(a, MISCACHE_DB_CACHE, "k",
                                                 on_yes_msg, y);
    if (st == MISCACHE_OK) {
      loop_until(l, &y->calls, want, 5000);
      assert_int_equal(y->calls, want);
      st = y->st;
      if (st != MISCACHE_ERR_UNAVAILABLE || !strstr(y->msg, "lost"))
        return st;
    }
    mt_sleep_ms(50);
  }
  return MISCACHE_ERR_UNAVAILABLE;
}

static void kill_clients(const mt_server_t *srv) {
  redisContext *c = mt_raw(srv, "sekret");
  assert_non_null(c);
  redisReply *r = redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes");
  assert_non_null(r);
  freeReplyObject(r);
  redisFree(c);
}

/* AUTH and TLS: a wrong password refused at open (ERR_AUTH, the password
 * not in the message), a certificate of an unknown CA refused at open
 * (ERR_TLS); connected, the connection killed: the reconnect the loop
 * drives (handshake and AUTH in steps) reads the value; the server's
 * certificate swapped for an expired one and the connection killed: the
 * reconnect fails ERR_TLS "expired" through the callback. */
static void auth_and_tls(loop_kind_t kind) {
  mt_server_t srv;
  const char *args[] = {"--requirepass", "sekret", NULL};
  assert_int_equal(mt_server_start_tls(&srv, NULL, args), 0);
  char url[700], err[MISCACHE_ERRMSG_SIZE];
  miscache_options_t *o = miscache_options_new();
  miscache_async_t *a = NULL;
  snprintf(url, sizeof url, "rediss://:xyzzy@localhost:%d?cacert=%s/ca.crt",
           srv.port, srv.dir);
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_async_open(o, &a, err, sizeof err),
                   MISCACHE_ERR_AUTH);
  assert_null(a);
  assert_null(strstr(err, "xyzzy"));
  snprintf(url, sizeof url,
           "rediss://:sekret@localhost:%d?cacert=%s/rogue-ca.crt", srv.port,
           srv.dir);
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_async_open(o, &a, err, sizeof err),
                   MISCACHE_ERR_TLS);
  assert_null(a);
  miscache_options_free(o);
  snprintf(url, sizeof url,
           "rediss://:sekret@localhost:%d?cacert=%s/ca.crt&backoff_min_ms=50&"
           "backoff_max_ms=100",
           srv.port, srv.dir);
  loop_t l;
  a = start(&l, kind, url, 1000);
  assert_int_equal(set_until(&l, a, "k", 3, 1000), MISCACHE_OK);
  ymsg_t y = {0};
  kill_clients(&srv);
  assert_int_equal(exists_through(&l, a, &y), MISCACHE_OK);
  assert_true(y.yes);
  /* an expired certificate from now on */
  redisContext *c = mt_raw(&srv, "sekret");
  assert_non_null(c);
  redisReply *r = redisCommand(c, "CONFIG SET tls-cert-file %s/expired.crt",
                               srv.dir);
  assert_non_null(r);
  assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
  freeReplyObject(r);
  redisFree(c);
  kill_clients(&srv);
  int before = y.calls;
  assert_int_equal(exists_through(&l, a, &y), MISCACHE_ERR_TLS);
  assert_true(y.calls > before); /* through the callback */
  assert_non_null(strstr(y.msg, "expired"));
  miscache_async_free(a);
  loop_close(&l);
  mt_server_stop(&srv);
}

/* ---- a host name resolved without waiting */

/* The test's own getaddrinfo (it interposes libc's): "slow.test" takes
 * 500 ms and is 127.0.0.1; every other name is libc's. */
typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
                      struct addrinfo **);
static gai_fn real_gai;
__attribute__((constructor)) static void find_real_gai(void) {
  void *p = dlsym(RTLD_NEXT, "getaddrinfo");
  memcpy(&real_gai, &p, sizeof p);
}
int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res) {
  if (node && strcmp(node, "slow.test") == 0) {
    if (hints && (hints->ai_flags & AI_NUMERICHOST)) return EAI_NONAME;
    mt_sleep_ms(500);
    node = "127.0.0.1";
  }
  return real_gai(node, service, hints, res);
}

/* The reconnect to a host name resolves it on a thread the loop hears
 * from: the call returns at once, its callback comes once the name is
 * resolved (500 ms) and the value read. (open resolves it waiting, within
 * the connect timeout.) */
static void name_in_loop(loop_kind_t kind) {
  mt_server_t s2;
  assert_int_equal(mt_server_start(&s2, NULL), 0);
  char url[300];
  snprintf(url, sizeof url,
           "redis://slow.test:%d?connect_timeout_ms=3000&"
           "command_timeout_ms=4000",
           s2.port);
  loop_t l;
  miscache_async_t *a = start(&l, kind, url, 0);
  assert_int_equal(set_until(&l, a, "k", 5, 1000), MISCACHE_OK);
  redisContext *c = mt_raw(&s2, NULL);
  assert_non_null(c);
  redisReply *r = redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes");
  freeReplyObject(r);
  redisFree(c);
  ymsg_t y = {0};
  assert_int_equal(miscache_async_exists(a, MISCACHE_DB_CACHE, "k", on_yes_msg,
                                         &y),
                   MISCACHE_OK); /* finds the connection dead */
  loop_until(&l, &y.calls, 1, 3000);
  assert_int_equal(y.st, MISCACHE_ERR_UNAVAILABLE);
  int64_t t0 = mt_now_ns();
  assert_int_equal(miscache_async_exists(a, MISCACHE_DB_CACHE, "k", on_yes_msg,
                                         &y),
                   MISCACHE_OK);
  int64_t call_ms = (mt_now_ns() - t0) / 1000000;
  assert_int_equal(y.calls, 1);
  loop_until(&l, &y.calls, 2, 5000);
  assert_int_equal(y.calls, 2);
  assert_int_equal(y.st, MISCACHE_OK);
  assert_true(y.yes);
  assert_true(call_ms < 300); /* (waiting for the name: 500 ms) */
  assert_true((mt_now_ns() - t0) / 1000000 >= 450);
  miscache_async_free(a);
  loop_close(&l);
  mt_server_stop(&s2);
}

/* ---- replies a real server never sends */

/* Our scripted server: an MGET reply one element short makes the page
 * fail open (the engine answers every line, nothing stored: no SET sent);
 * a lock refused while the holder's value is no JSON still says it is
 * held. */
static void hostile_replies(loop_kind_t kind) {
  mt_fake_t *f = mt_fake_start();
  assert_non_null(f);
  mt_fake_on_str(f, "MGET", "*6\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n");
  mt_fake_on_str(f, "SET", "$-1\r\n"); /* NX refused */
  mt_fake_on_str(f, "GET", "$5\r\n{oops\r\n");
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_fake_url(f), 1000);
  page_from_engine(&l, a, NULL, NULL);
  assert_int_equal(mt_fake_count(f, "SET"), 0); /* nothing stored */
  lk_t k = {0};
  assert_int_equal(miscache_async_lock_acquire(a, MISCACHE_DB_TEMP, "lock:x",
                                               1000, "me", NULL, on_lock, &k),
                   MISCACHE_OK);
  loop_until(&l, &k.calls, 1, 3000);
  assert_int_equal(k.st, MISCACHE_ERR_LOCKED);
  assert_null(k.lock);
  assert_non_null(strstr(k.msg, "held by another owner"));
  miscache_async_free(a);
  loop_close(&l);
  mt_fake_stop(f);
}

/* ---- the slow-call event */

static char slow_msg[MISCACHE_ERRMSG_SIZE];
static int slow_events;
static void on_event(void *ud, const miscache_event_t *ev) {
  (void)ud;
  if (ev->kind != MISCACHE_EV_SLOW_CALL) return;
  slow_events++;
  snprintf(slow_msg, sizeof slow_msg, "%s", ev->message);
}

/* A call that waits out a CLIENT PAUSE raises the options' slow-call
 * event, naming its command and key family, never its value. */
static void slow_call(loop_kind_t kind) {
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, mt_srv.url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_namespace(o, mt_namespace()),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_slow_call(o, 50), MISCACHE_OK);
  assert_int_equal(miscache_options_set_event_hook(o, on_event, NULL),
                   MISCACHE_OK);
  miscache_async_t *a = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_async_open(o, &a, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  loop_t l;
  loop_init(&l, kind);
  loop_attach(&l, a);
  slow_events = 0;
  redisReply *r = redisCommand(mt_rc, "CLIENT PAUSE 200 WRITE");
  freeReplyObject(r);
  json_t *v = json_pack("{s:s}", "token", "SECRET-VALUE-43");
  msg_t m = {0};
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE,
                                      "permissions:user:6", v,
                                      MISCACHE_TTL_PERMISSIONS, on_msg, &m),
                   MISCACHE_OK);
  json_decref(v);
  loop_until(&l, &m.calls, 1, 3000);
  assert_int_equal(m.st, MISCACHE_OK);
  assert_int_equal(slow_events, 1);
  assert_non_null(strstr(slow_msg, "SET permissions"));
  assert_null(strstr(slow_msg, "SECRET"));
  miscache_async_free(a);
  loop_close(&l);
}

#define BOTH(name)                                                             \
  static void test_##name##_libevent(void **state) {                          \
    (void)state;                                                               \
    name(EV);                                                                  \
  }                                                                            \
  static void test_##name##_libuv(void **state) {                             \
    (void)state;                                                               \
    name(UV);                                                                  \
  }
/* Tests of a standalone server's own (a fake server, a server the test
 * starts, kills or pauses): skipped on the cluster run. */
#define BOTH_STANDALONE(name)                                                  \
  static void test_##name##_libevent(void **state) {                          \
    (void)state;                                                               \
    if (mt_is_cluster()) skip();                                               \
    name(EV);                                                                  \
  }                                                                            \
  static void test_##name##_libuv(void **state) {                             \
    (void)state;                                                               \
    if (mt_is_cluster()) skip();                                               \
    name(UV);                                                                  \
  }
BOTH(round_trip)
BOTH(pipelined)
BOTH_STANDALONE(never_answered)
BOTH_STANDALONE(killed_and_freed)
BOTH(freed_inside)
BOTH(typed_session)
BOTH(mget_values)
BOTH(get_or_load)
BOTH(permission_check)
BOTH(masters_and_locks)
BOTH(queue_enqueue)
BOTH(gift_page)
BOTH_STANDALONE(gift_page_fail_open)
BOTH_STANDALONE(sentinel_failover)
BOTH_STANDALONE(connect_in_loop)
BOTH_STANDALONE(auth_and_tls)
BOTH_STANDALONE(name_in_loop)
BOTH_STANDALONE(hostile_replies)
BOTH_STANDALONE(slow_call)

/* A Redis Cluster none of whose seed nodes answers: open says so. */
static void test_cluster_unreachable(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, "redis+cluster://127.0.0.1:1"),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_connect_timeout(o, 300), MISCACHE_OK);
  miscache_async_t *a = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_async_open(o, &a, err, sizeof err),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_null(a);
  assert_non_null(strstr(err, "slot map"));
  miscache_options_free(o);
  miscache_async_free(NULL);
}

/* ---- Redis Cluster (the MT_CLUSTER=1 run) -------------------------------- */

typedef struct {
  int calls, ok, miss, wrong, other;
  char msg[MISCACHE_ERRMSG_SIZE];
} ctally_t;

typedef struct {
  ctally_t *t;
  int want; /* the value's "i" */
} cslot_t;

static void c_count(ctally_t *t, miscache_status_t st, const char *msg) {
  t->calls++;
  if (st == MISCACHE_OK) t->ok++;
  else if (st == MISCACHE_MISS) t->miss++;
  else {
    t->other++;
    snprintf(t->msg, sizeof t->msg, "%s: %s", miscache_strerror(st), msg);
  }
}

static void on_cset(void *ud, miscache_status_t st, const char *msg) {
  c_count(ud, st, msg);
}

static void on_cget(void *ud, miscache_status_t st, json_t *v,
                    const char *msg) {
  cslot_t *c = ud;
  c_count(c->t, st, msg);
  if (st == MISCACHE_OK &&
      json_integer_value(json_object_get(v, "i")) != c->want)
    c->t->wrong++;
  json_decref(v);
}

static unsigned slot_in(const char *ns, const char *key) {
  char full[512];
  snprintf(full, sizeof full, "%s%s", ns, key);
  return miscache__key_slot(full, strlen(full));
}

static miscache_link_stats_t link_stats_of(miscache_async_t *a) {
  miscache_link_stats_t ls;
  /* (only read: miscache_link_stats does no I/O) */
  assert_int_equal(miscache_link_stats((miscache_t *)miscache_async_figures(a),
                                       &ls, sizeof ls),
                   MISCACHE_OK);
  return ls;
}

static uint64_t redirects_of(miscache_async_t *a) {
  return link_stats_of(a).redirects;
}

/* Keys on every master through one handle: 200 SETs issued in one turn
 * (one connection per master, each pipelined), one MGET of all 300 keys
 * split by node and merged in order, values and TTLs as a raw client
 * sees them. */
static void cluster_keys(loop_kind_t kind) {
  if (!mt_is_cluster()) skip();
  enum { N = 300, SETS = N - (N + 2) / 3 };
  loop_t l;
  /* opened and freed with no call made (no connection of its own yet) */
  miscache_async_t *a = start(&l, kind, mt_srv.url, 2000);
  miscache_async_free(a);
  loop_close(&l);
  a = start(&l, kind, mt_srv.url, 2000);
  static char names[N][32];
  static const char *keys[N];
  bool on[3] = {false, false, false};
  ctally_t t = {0};
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "c:%d", i);
    keys[i] = names[i];
    int owner = mt_cluster_owner(mt_cluster_active, slot_in(last_ns, keys[i]));
    assert_true(owner >= 0 && owner < 3);
    on[owner] = true;
    if (i % 3 == 0) continue; /* a miss */
    json_t *v = json_pack("{si}", "i", i);
    assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, keys[i], v,
                                        MISCACHE_TTL_MASTER_DATA, on_cset, &t),
                     MISCACHE_OK);
    json_decref(v);
  }
  assert_true(on[0] && on[1] && on[2]);
  assert_int_equal(miscache_async_outstanding(a), SETS);
  loop_until(&l, &t.calls, SETS, 5000);
  if (t.other) fail_msg("%s", t.msg);
  assert_int_equal(t.ok, SETS);
  miscache_t *mc = peer();
  char *raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "c:299");
  assert_non_null(raw);
  assert_string_equal(raw, "{\"i\":299}");
  free(raw);
  assert_true(mt_raw_pttl(mc, MISCACHE_DB_CACHE, "c:299") > 0);
  many_t m = {0};
  static json_t *vals[N];
  static miscache_status_t sts[N];
  m.all = vals;
  m.all_sts = sts;
  m.all_n = N;
  assert_int_equal(miscache_async_mget(a, MISCACHE_DB_CACHE, N, keys,
                                       on_values, &m), MISCACHE_OK);
  loop_until(&l, &m.calls, 1, 5000);
  assert_int_equal(m.calls, 1);
  assert_int_equal(m.st, MISCACHE_OK);
  assert_int_equal(m.n, N);
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0) {
      assert_int_equal(sts[i], MISCACHE_MISS);
      assert_null(vals[i]);
      continue;
    }
    assert_int_equal(sts[i], MISCACHE_OK);
    assert_int_equal(json_integer_value(json_object_get(vals[i], "i")), i);
    json_decref(vals[i]);
  }
  assert_int_equal(miscache_async_outstanding(a), 0);
  miscache_free(mc);
  miscache_async_free(a);
  loop_close(&l);
}

typedef struct {
  int from, to;
  unsigned slot;
  atomic_int done; /* 1: moved, -1: failed */
} mover_t;

static void *mover(void *arg) {
  mover_t *mv = arg;
  int rc = mt_cluster_move_slot(mt_cluster_active, mv->from, mv->to, mv->slot,
                                10);
  atomic_store(&mv->done, rc == 0 ? 1 : -1);
  return NULL;
}

/* A slot moved while its keys are read: MIGRATING/IMPORTING (ASK, with
 * ASKING first on the target) then the new owner (MOVED); every read
 * returns its key's value, and the handle says it followed them. */
static void cluster_slot_moved(loop_kind_t kind) {
  if (!mt_is_cluster()) skip();
  enum { K = 24 };
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 2000);
  static char names[K][48];
  ctally_t t = {0};
  for (int j = 0; j < K; j++) {
    snprintf(names[j], sizeof names[j], "mv:{s%d}%d", (int)kind, j);
    json_t *v = json_pack("{si}", "i", j);
    assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, names[j], v,
                                        MISCACHE_TTL_MASTER_DATA, on_cset, &t),
                     MISCACHE_OK);
    json_decref(v);
  }
  loop_until(&l, &t.calls, K, 5000);
  if (t.other) fail_msg("%s", t.msg);
  assert_int_equal(t.ok, K);
  static mover_t mv;
  mv.slot = slot_in(last_ns, names[0]);
  assert_int_equal(slot_in(last_ns, names[K - 1]), mv.slot);
  mv.from = mt_cluster_owner(mt_cluster_active, mv.slot);
  assert_true(mv.from >= 0);
  mv.to = (mv.from + 1) % 3;
  atomic_store(&mv.done, 0);
  uint64_t before = redirects_of(a);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, mover, &mv), 0);
  ctally_t g = {0};
  static cslot_t cs[K];
  int rounds = 0, want = 0;
  while (atomic_load(&mv.done) == 0 || rounds < 2) {
    if (atomic_load(&mv.done) != 0) rounds++;
    for (int j = 0; j < K; j++) {
      cs[j] = (cslot_t){&g, j};
      assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, names[j],
                                          on_cget, &cs[j]), MISCACHE_OK);
    }
    want += K;
    loop_until(&l, &g.calls, want, 5000);
    assert_int_equal(g.calls, want);
  }
  pthread_join(th, NULL);
  assert_int_equal(atomic_load(&mv.done), 1);
  assert_int_equal(mt_cluster_owner(mt_cluster_active, mv.slot), mv.to);
  uint64_t followed = redirects_of(a) - before;
  printf("  slot %u moved %d -> %d under %d async reads: %d ok, %d wrong, "
         "%d failed; %llu MOVED/ASK followed\n",
         mv.slot, mv.from, mv.to, g.calls, g.ok, g.wrong, g.other,
         (unsigned long long)followed);
  if (g.other) fail_msg("%s", g.msg);
  assert_int_equal(g.wrong, 0);
  assert_int_equal(g.ok, want);
  assert_true(followed > 0);
  miscache_async_free(a);
  loop_close(&l);
}

static uint64_t lookups_of(miscache_async_t *a) {
  return link_stats_of(a).master_lookups;
}

/* The slot map made stale (a slot moved: one MOVED) is loaded again on
 * the handle's own connection, never by a blocking request: with every
 * node paused (CLIENT PAUSE 1500 ALL) a call returns and the loop keeps
 * turning; after the pause the call completes and the map was loaded
 * once. */
static void cluster_map_reload(loop_kind_t kind) {
  if (!mt_is_cluster()) skip();
  loop_t l;
  miscache_async_t *a = start(&l, kind, mt_srv.url, 3000);
  ctally_t t = {0};
  const char *key = kind == EV ? "rl:{ev}1" : "rl:{uv}1";
  json_t *v = json_pack("{si}", "i", 1);
  assert_int_equal(miscache_async_set(a, MISCACHE_DB_CACHE, key, v,
                                      MISCACHE_TTL_MASTER_DATA, on_cset, &t),
                   MISCACHE_OK);
  json_decref(v);
  loop_until(&l, &t.calls, 1, 3000);
  assert_int_equal(t.ok, 1);
  unsigned slot = slot_in(last_ns, key);
  int from = mt_cluster_owner(mt_cluster_active, slot);
  assert_true(from >= 0);
  assert_int_equal(mt_cluster_move_slot(mt_cluster_active, from, (from + 1) % 3,
                                        slot, 0), 0);
  uint64_t redirects = redirects_of(a);
  ctally_t g = {0};
  cslot_t c1 = {&g, 1};
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, key, on_cget, &c1),
                   MISCACHE_OK);
  loop_until(&l, &g.calls, 1, 3000);
  assert_int_equal(g.ok, 1);
  assert_int_equal(g.wrong, 0);
  assert_int_equal(redirects_of(a), redirects + 1); /* MOVED: map stale */
  mt_sleep_ms(120); /* (past the pause between two loads) */
  uint64_t lookups = lookups_of(a);
  mt_raw_cmd("CLIENT PAUSE 1500 ALL");
  int64_t paused_until = mt_now_ns() + 1500 * 1000000LL;
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, key, on_cget, &c1),
                   MISCACHE_OK);
  loop_until(&l, &g.calls, 2, 200);
  assert_int_equal(g.calls, 1); /* paused: no reply yet... */
  assert_true(mt_now_ns() < paused_until); /* ...and the loop turned */
  assert_int_equal(lookups_of(a), lookups + 1); /* the load was asked */
  loop_until(&l, &g.calls, 2, 5000);
  if (g.other) fail_msg("%s", g.msg);
  assert_int_equal(g.ok, 2);
  assert_int_equal(g.wrong, 0);
  /* the reloaded map routes the key to its new master: no redirection */
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, key, on_cget, &c1),
                   MISCACHE_OK);
  loop_until(&l, &g.calls, 3, 3000);
  assert_int_equal(g.ok, 3);
  assert_int_equal(redirects_of(a), redirects + 1);
  assert_int_equal(lookups_of(a), lookups + 1);
  miscache_async_free(a);
  loop_close(&l);
}

/* Every sentinel frozen (SIGSTOP: connections accepted, nothing
 * answered): the once-a-second check never holds the loop. Calls made for
 * 2.5 s all complete with the value, none waits anywhere near the half
 * command timeout a frozen sentinel gets, the checks were asked, and the
 * master in use is kept. */
static void sentinel_frozen(loop_kind_t kind) {
  mt_sentinels_t dep;
  assert_int_equal(mt_sentinels_start(&dep), 0);
  char url[700];
  snprintf(url, sizeof url, "%s?db_cache=3", dep.url); /* (raw_get3's) */
  loop_t l;
  miscache_async_t *a = start(&l, kind, url, 1000);
  assert_int_equal(set_until(&l, a, "fz", 1, 1000), MISCACHE_OK);
  for (int i = 0; i < 3; i++) kill(dep.pid[i], SIGSTOP);
  uint64_t lookups = link_stats_of(a).master_lookups;
  int64_t end = mt_now_ns() + 2500 * 1000000LL, worst = 0;
  int calls = 0, ok = 0;
  while (mt_now_ns() < end) {
    tally_t t = {0};
    slot_t sl = {&t, 0};
    int64_t t0 = mt_now_ns();
    assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "fz", on_value,
                                        &sl), MISCACHE_OK);
    loop_until(&l, &t.calls, 1, 3000);
    int64_t took = mt_now_ns() - t0;
    if (took > worst) worst = took;
    calls++;
    ok += t.last == MISCACHE_OK &&
          json_integer_value(json_object_get(t.value, "n")) == 1;
    json_decref(t.value);
    mt_sleep_ms(20);
  }
  uint64_t asked = link_stats_of(a).master_lookups - lookups;
  /* the master's connection lost with the sentinels still frozen: the
   * lookup of the master is the loop's too: the next call is taken at
   * once and held, the loop turns, and it fails when its deadline comes */
  kill_clients(&dep.master);
  tally_t lost = {0};
  slot_t ls = {&lost, 0};
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "fz", on_value,
                                      &ls), MISCACHE_OK);
  loop_until(&l, &lost.calls, 1, 3000);
  assert_int_equal(lost.calls, 1); /* (on the killed connection) */
  json_decref(lost.value);
  mt_sleep_ms(150); /* (past the pause between two lookups) */
  tally_t held = {0};
  slot_t hs = {&held, 0};
  int64_t t0 = mt_now_ns();
  assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "fz", on_value,
                                      &hs), MISCACHE_OK);
  int64_t returned = mt_now_ns() - t0;
  loop_until(&l, &held.calls, 1, 200);
  assert_int_equal(held.calls, 0);
  assert_true(returned < 100 * 1000000LL); /* a frozen sentinel: 500 ms */
  loop_until(&l, &held.calls, 1, 3000);
  assert_int_equal(held.calls, 1);
  assert_int_equal(held.last, MISCACHE_ERR_UNAVAILABLE);
  for (int i = 0; i < 3; i++) kill(dep.pid[i], SIGCONT);
  /* the sentinels back: the lookup finds the master, calls land again */
  assert_int_equal(set_until(&l, a, "fz", 2, 5000), MISCACHE_OK);
  char got[64];
  raw_get3(&dep.master, "fz", got, sizeof got);
  assert_string_equal(got, "{\"n\":2}");
  printf("  sentinels frozen: %d calls in 2.5 s, %d with the value, the "
         "slowest %.1f ms; %llu checks asked\n",
         calls, ok, worst / 1e6, (unsigned long long)asked);
  assert_int_equal(ok, calls);
  assert_true(asked >= 1);
  assert_true(worst < 400 * 1000000LL); /* a frozen sentinel: 500 ms each */
  miscache_async_free(a);
  loop_close(&l);
  mt_sentinels_stop(&dep);
}

/* A master of a cluster of the test's own killed with 1,000 calls in
 * flight on every master: each callback runs exactly once (the dead
 * master's calls fail, the others' are answered), then free with calls
 * in flight cancels the rest. */
static void cluster_master_killed(loop_kind_t kind) {
  if (!mt_is_cluster()) skip();
  enum { N = 1000 };
  static mt_cluster_t kc;
  assert_int_equal(mt_cluster_start(&kc, 3, false), 0);
  const mt_cluster_t *saved = mt_cluster_active;
  mt_cluster_active = &kc;
  loop_t l;
  miscache_async_t *a = start(&l, kind, kc.url, 1000);
  static char names[N][32];
  static cslot_t cs[N];
  static bool on_dead[N];
  ctally_t t = {0};
  int dead = 0;
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "k:%d", i);
    on_dead[i] = mt_cluster_owner(&kc, slot_in(last_ns, names[i])) == 0;
    dead += on_dead[i];
    cs[i] = (cslot_t){&t, i};
  }
  assert_true(dead > 100 && dead < N - 100);
  for (int i = 0; i < N; i++) /* connections to every master */
    assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, names[i],
                                        on_cget, &cs[i]), MISCACHE_OK);
  loop_until(&l, &t.calls, N, 5000);
  assert_int_equal(t.miss, N);
  memset(&t, 0, sizeof t);
  for (int i = 0; i < N; i++)
    assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, names[i],
                                        on_cget, &cs[i]), MISCACHE_OK);
  mt_server_kill(&kc.node[0]);
  loop_until(&l, &t.calls, N, 10000);
  printf("  master killed with %d async reads in flight (%d on it): %d "
         "calls back, %d answered, %d failed (last: %s)\n",
         N, dead, t.calls, t.miss + t.ok, t.other, t.msg);
  assert_int_equal(t.calls, N);
  assert_true(t.other >= 1 && t.other <= dead);
  assert_true(t.miss >= N - dead);
  assert_int_equal(miscache_async_outstanding(a), 0);
  /* the live masters still answer; free with some of those in flight */
  memset(&t, 0, sizeof t);
  int issued = 0;
  for (int i = 0; i < N; i++) {
    if (on_dead[i]) continue;
    assert_int_equal(miscache_async_get(a, MISCACHE_DB_CACHE, names[i],
                                        on_cget, &cs[i]), MISCACHE_OK);
    issued++;
  }
  loop_until(&l, &t.calls, issued / 2, 5000);
  assert_true(t.calls >= issued / 2);
  miscache_async_free(a);
  assert_int_equal(t.calls, issued);
  assert_int_equal(t.miss + t.other, issued);
  loop_close(&l);
  mt_cluster_active = saved;
  mt_cluster_stop(&kc);
}

BOTH(cluster_keys)
BOTH(cluster_slot_moved)
BOTH(cluster_map_reload)
BOTH_STANDALONE(sentinel_frozen)
BOTH(cluster_master_killed)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_unreachable),
      cmocka_unit_test(test_cluster_keys_libevent),
      cmocka_unit_test(test_cluster_keys_libuv),
      cmocka_unit_test(test_cluster_slot_moved_libevent),
      cmocka_unit_test(test_cluster_slot_moved_libuv),
      cmocka_unit_test(test_cluster_map_reload_libevent),
      cmocka_unit_test(test_cluster_map_reload_libuv),
      cmocka_unit_test(test_cluster_master_killed_libevent),
      cmocka_unit_test(test_cluster_master_killed_libuv),
      cmocka_unit_test(test_round_trip_libevent),
      cmocka_unit_test(test_round_trip_libuv),
      cmocka_unit_test(test_pipelined_libevent),
      cmocka_unit_test(test_pipelined_libuv),
      cmocka_unit_test(test_never_answered_libevent),
      cmocka_unit_test(test_never_answered_libuv),
      cmocka_unit_test(test_killed_and_freed_libevent),
      cmocka_unit_test(test_killed_and_freed_libuv),
      cmocka_unit_test(test_freed_inside_libevent),
      cmocka_unit_test(test_freed_inside_libuv),
      cmocka_unit_test(test_typed_session_libevent),
      cmocka_unit_test(test_typed_session_libuv),
      cmocka_unit_test(test_mget_values_libevent),
      cmocka_unit_test(test_mget_values_libuv),
      cmocka_unit_test(test_get_or_load_libevent),
      cmocka_unit_test(test_get_or_load_libuv),
      cmocka_unit_test(test_permission_check_libevent),
      cmocka_unit_test(test_permission_check_libuv),
      cmocka_unit_test(test_masters_and_locks_libevent),
      cmocka_unit_test(test_masters_and_locks_libuv),
      cmocka_unit_test(test_queue_enqueue_libevent),
      cmocka_unit_test(test_queue_enqueue_libuv),
      cmocka_unit_test(test_gift_page_libevent),
      cmocka_unit_test(test_gift_page_libuv),
      cmocka_unit_test(test_gift_page_fail_open_libevent),
      cmocka_unit_test(test_gift_page_fail_open_libuv),
      cmocka_unit_test(test_sentinel_failover_libevent),
      cmocka_unit_test(test_sentinel_failover_libuv),
      cmocka_unit_test(test_sentinel_frozen_libevent),
      cmocka_unit_test(test_sentinel_frozen_libuv),
      cmocka_unit_test(test_connect_in_loop_libevent),
      cmocka_unit_test(test_connect_in_loop_libuv),
      cmocka_unit_test(test_auth_and_tls_libevent),
      cmocka_unit_test(test_auth_and_tls_libuv),
      cmocka_unit_test(test_name_in_loop_libevent),
      cmocka_unit_test(test_name_in_loop_libuv),
      cmocka_unit_test(test_hostile_replies_libevent),
      cmocka_unit_test(test_hostile_replies_libuv),
      cmocka_unit_test(test_slow_call_libevent),
      cmocka_unit_test(test_slow_call_libuv),
      cmocka_unit_test(test_touch_compare_and_set),
      cmocka_unit_test(test_loader_answered_during_free),
      cmocka_unit_test(test_pool_pending_shared),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

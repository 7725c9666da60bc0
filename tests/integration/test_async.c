/* The async handle (async.h) through both adapters, libevent and libuv,
 * against a private server: values, TTLs, dbs and the namespace; 1,000
 * calls issued before the loop turns; a reply that never comes (the timer
 * ends the call); the server killed with 1,000 calls in flight; free with
 * calls in flight and from inside a callback. Every callback is counted:
 * each must run exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <uv.h>

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

static void round_trip(loop_kind_t kind) {
  loop_t l;
  loop_init(&l, kind);
  char url[700];
  snprintf(url, sizeof url, "%s%sdb_cache=7&ttl_permissions=77", mt_srv.url,
           strchr(mt_srv.url, '?') ? "&" : "?");
  miscache_async_t *a = open_async(url, 0);
  loop_attach(&l, a);
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
  loop_init(&l, kind);
  miscache_async_t *a = open_async(mt_srv.url, 0);
  loop_attach(&l, a);
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
  miscache_async_free(a);
  loop_close(&l);
}

/* A reply that never comes: the timer ends the call with ERR_UNAVAILABLE
 * after the command timeout, and the handle works again afterwards. */
static void never_answered(loop_kind_t kind) {
  loop_t l;
  loop_init(&l, kind);
  miscache_async_t *a = open_async(mt_srv.url, 200);
  loop_attach(&l, a);
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
  loop_init(&l, kind);
  miscache_async_t *a = open_async(s2.url, 2000);
  loop_attach(&l, a);
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
  /* the next call reconnects, which fails: refused at the call */
  assert_int_not_equal(miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value,
                                          &s[0]),
                       MISCACHE_OK);
  assert_int_equal(t.calls, N);
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
  loop_init(&l, kind);
  miscache_async_t *a = open_async(mt_srv.url, 0);
  loop_attach(&l, a);
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

#define BOTH(name)                                                             \
  static void test_##name##_libevent(void **state) {                          \
    (void)state;                                                               \
    name(EV);                                                                  \
  }                                                                            \
  static void test_##name##_libuv(void **state) {                             \
    (void)state;                                                               \
    name(UV);                                                                  \
  }
BOTH(round_trip)
BOTH(pipelined)
BOTH(never_answered)
BOTH(killed_and_freed)
BOTH(freed_inside)

static void test_refused_endpoints(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, "redis+cluster://127.0.0.1:1"),
                   MISCACHE_OK);
  miscache_async_t *a = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_async_open(o, &a, err, sizeof err),
                   MISCACHE_ERR_INVALID);
  assert_null(a);
  assert_non_null(strstr(err, "standalone"));
  miscache_options_free(o);
  miscache_async_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refused_endpoints),
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
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

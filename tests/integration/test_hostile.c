/* What a broken or hostile server (or a proxy in front of one)
 * may send, from the scripted fake server of tests/support/fake.c. Each
 * test failed (a crash, a shifted answer, an unbounded wait or allocation)
 * on the code before its fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "fake.h"
#include "core/core.h" /* miscache__dispatch_node_count */
#include "miscache/miscache.h"
#include "server.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A handle on the fake (or another URL) with a short command timeout. */
static miscache_t *open_url(const char *url, int timeout_ms,
                            miscache_options_t *o) {
  miscache_options_t *own = o ? NULL : miscache_options_new();
  if (!o) o = own;
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_command_timeout(o, timeout_ms),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_connect_timeout(o, timeout_ms),
                   MISCACHE_OK);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(o, &mc, err, sizeof err);
  if (st != MISCACHE_OK) fail_msg("open %s: %s", url, err);
  miscache_options_free(own);
  return mc;
}

static miscache_t *open_fake(mt_fake_t *f, int timeout_ms) {
  return open_url(mt_fake_url(f), timeout_ms, NULL);
}

/* No byte below 0x20 (nor DEL) in a message. */
static void assert_printable(const char *msg) {
  for (const char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      fail_msg("control character 0x%02x in message: %s", (unsigned char)*p,
               msg);
}

/* GET answered with the key's own name as a JSON string, so a shifted
 * answer shows: {"k":"<key>"}. With extra set, the first answer is
 * followed by the bytes of a further (unasked) reply. */
typedef struct {
  int calls;
  const char *extra;
} echo_t;

static char *echo_get(void *ud, int argc, char **argv, size_t *lens,
                      size_t *len) {
  echo_t *e = ud;
  (void)lens;
  if (argc < 2) return NULL;
  char body[256], *out = malloc(600);
  int n = snprintf(body, sizeof body, "{\"k\":\"%s\"}", argv[1]);
  int m = snprintf(out, 600, "$%d\r\n%s\r\n%s", n, body,
                   e->calls++ == 0 && e->extra ? e->extra : "");
  *len = (size_t)m;
  return out;
}

/* Reads key with mc: OK only with the key's own value. */
static miscache_status_t get_own(miscache_t *mc, const char *key) {
  json_t *v = NULL;
  miscache_status_t st = miscache_get(mc, MISCACHE_DB_CACHE, key, &v);
  if (st == MISCACHE_OK) {
    const char *k = json_string_value(json_object_get(v, "k"));
    if (!k || !strstr(k, key))
      fail_msg("get %s returned another call's answer: %s", key,
               k ? k : "(not ours)");
  }
  json_decref(v);
  return st;
}

/* ---- item 1: shifted answers --------------------------------------------- */

static void test_extra_bytes_never_shift_answers(void **state) {
  (void)state;
  mt_fake_t *f = mt_fake_start();
  echo_t e = {0, "$10\r\n{\"k\":\"xx\"}\r\n"}; /* a reply nobody asked for */
  mt_fake_on_fn(f, "GET", echo_get, &e);
  miscache_t *mc = open_fake(f, 1000);
  /* the first answer came with unasked bytes: it may fail (the connection
   * is out of step), or be resent on a fresh one, never hand out "xx" */
  miscache_status_t st = get_own(mc, "k1");
  assert_true(st == MISCACHE_OK || st == MISCACHE_ERR_REPLY);
  assert_int_equal(get_own(mc, "k2"), MISCACHE_OK);
  assert_int_equal(get_own(mc, "k3"), MISCACHE_OK);
  assert_true(mt_fake_connections(f) >= 2); /* the desynced one was dropped */

  /* bytes that come later, between two calls, are seen before the next
   * request is written */
  mt_fake_push(f, "$10\r\n{\"k\":\"yy\"}\r\n", 18);
  sleep_ms(50);
  assert_int_equal(get_own(mc, "k4"), MISCACHE_OK);
  assert_int_equal(get_own(mc, "k5"), MISCACHE_OK);
  miscache_free(mc);
  mt_fake_stop(f);
}

static void test_pipeline_extra_bytes_fail_whole_batch(void **state) {
  (void)state;
  mt_fake_t *f = mt_fake_start();
  /* MGET of two keys answered, then a stray integer */
  mt_fake_on_str(f, "MGET",
                 "*2\r\n$7\r\n{\"a\":1}\r\n$7\r\n{\"b\":2}\r\n:1\r\n");
  miscache_t *mc = open_fake(f, 1000);
  const char *keys[2] = {"a", "b"};
  json_t *vals[2] = {NULL, NULL};
  miscache_status_t sts[2];
  miscache_status_t st =
      miscache_mget(mc, MISCACHE_DB_CACHE, 2, keys, vals, sts);
  assert_int_equal(st, MISCACHE_ERR_REPLY);
  assert_null(vals[0]);
  assert_null(vals[1]);
  assert_non_null(strstr(miscache_errmsg(mc), "out of step"));
  miscache_free(mc);
  mt_fake_stop(f);
}

static void test_one_byte_writes_work(void **state) {
  (void)state;
  mt_fake_t *f = mt_fake_start();
  echo_t e = {0, NULL};
  mt_fake_on_fn(f, "GET", echo_get, &e);
  mt_fake_dribble(f, true);
  miscache_t *mc = open_fake(f, 2000);
  for (int i = 0; i < 5; i++) {
    char k[16];
    snprintf(k, sizeof k, "key%d", i);
    assert_int_equal(get_own(mc, k), MISCACHE_OK);
  }
  miscache_free(mc);
  mt_fake_stop(f);
}

/* ---- item 3: memory a server can make the library take ------------------- */

static long rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static void expect_refused(const char *reply, const char *words) {
  mt_fake_t *f = mt_fake_start();
  mt_fake_on_str(f, "GET", reply);
  miscache_t *mc = open_fake(f, 3000);
  long before = rss_kb();
  int64_t t0 = now_ms();
  json_t *v = NULL;
  miscache_status_t st = miscache_get(mc, MISCACHE_DB_CACHE, "k", &v);
  int64_t took = now_ms() - t0;
  assert_int_equal(st, MISCACHE_ERR_REPLY);
  assert_null(v);
  if (!strstr(miscache_errmsg(mc), words))
    fail_msg("message \"%s\" does not say \"%s\"", miscache_errmsg(mc), words);
  /* refused at the header: not after the 3 s timeout, nothing allocated */
  assert_true(took < 2500);
  assert_true(rss_kb() - before < 64 * 1024);
  miscache_free(mc);
  mt_fake_stop(f);
}

static void test_huge_array_header_refused(void **state) {
  (void)state;
  expect_refused("*2147483647\r\n", "over the limit");
}

static void test_huge_bulk_header_refused(void **state) {
  (void)state;
  expect_refused("$9999999999\r\n", "over the limit");
}

static void test_nested_and_bad_headers_refused(void **state) {
  (void)state;
  char deep[200] = "";
  for (int i = 0; i < 20; i++)
    strcat(deep, "*1\r\n");
  expect_refused(deep, "nested");
  expect_refused("$-5\r\n", "protocol error");
  expect_refused(":12x\r\n", "protocol error");
  expect_refused("$3\r\nabcXY", "CRLF");
  expect_refused("%1\r\n", "unexpected byte");
}

/* Many elements, each small: the whole reply's memory is bounded too. */
static char *many_elements(void *ud, int argc, char **argv, size_t *lens,
                           size_t *len) {
  (void)ud, (void)argc, (void)argv, (void)lens;
  size_t n = 300000;
  char *out = malloc(n * 4 + 32);
  size_t o = (size_t)sprintf(out, "*%zu\r\n", n);
  for (size_t i = 0; i < n; i++) {
    memcpy(out + o, ":1\r\n", 4);
    o += 4;
  }
  *len = o;
  return out;
}

static void test_limits_are_options(void **state) {
  (void)state;
  mt_fake_t *f = mt_fake_start();
  mt_fake_on_fn(f, "MGET", many_elements, NULL);
  mt_fake_on_str(f, "GET", "$2000000\r\n");
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_reply_limits(o, 0, 0, 100),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_reply_limits(o, 0, 8 << 20, 4 << 20),
                   MISCACHE_ERR_INVALID); /* reply limit below the bulk limit */
  assert_int_equal(
      miscache_options_set_reply_limits(o, 100000, 1 << 20, 4 << 20),
      MISCACHE_OK);
  miscache_t *mc = open_url(mt_fake_url(f), 2000, o);
  miscache_options_free(o);
  json_t *v = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "k", &v),
                   MISCACHE_ERR_REPLY);
  assert_non_null(strstr(miscache_errmsg(mc), "2000000 bytes over the limit"));
  const char *keys[2] = {"a", "b"};
  json_t *vals[2];
  miscache_status_t sts[2];
  assert_int_equal(miscache_mget(mc, MISCACHE_DB_CACHE, 2, keys, vals, sts),
                   MISCACHE_ERR_REPLY);
  assert_non_null(strstr(miscache_errmsg(mc), "300000 elements"));
  miscache_free(mc);
  mt_fake_stop(f);
}

/* ---- item 7: server text in messages ---------------------------------- */

static void test_server_text_escaped(void **state) {
  (void)state;
  mt_fake_t *f = mt_fake_start();
  mt_fake_on_str(f, "GET", "-ERR bad\x1b[31mred\x07\nnext line\r\n");
  miscache_t *mc = open_fake(f, 1000);
  json_t *v = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "k", &v),
                   MISCACHE_ERR_SERVER);
  assert_printable(miscache_errmsg(mc));
  assert_non_null(strstr(miscache_errmsg(mc), "bad\\x1b[31mred\\x07\\nnext"));
  miscache_free(mc);
  mt_fake_stop(f);
}

/* ---- item 8: only +OK takes a lock ------------------------------------ */

static void test_lock_needs_ok(void **state) {
  (void)state;
  mt_fake_t *f = mt_fake_start();
  mt_fake_on_str(f, "SET", "+QUEUED\r\n");
  mt_fake_on_str(f, "EVALSHA", ":1\r\n");
  miscache_t *mc = open_fake(f, 1000);
  miscache_lock_t *l = NULL;
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:x", 5000,
                                         "me", NULL, &l),
                   MISCACHE_ERR_REPLY);
  assert_null(l);
  mt_fake_on_str(f, "SET", "+OK\r\n");
  assert_int_equal(miscache_lock_acquire(mc, MISCACHE_DB_CACHE, "lock:x", 5000,
                                         "me", NULL, &l),
                   MISCACHE_OK);
  assert_non_null(l);
  miscache_lock_free(l);
  miscache_free(mc);
  mt_fake_stop(f);
}

/* ---- item 2: reply shapes that crashed the process ----------------------- */

#define SUB_OK "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n"
#define MSG_HEAD "$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"

/* A fake that plays the near cache's server: CLIENT ID, TRACKING,
 * SUBSCRIBE, and PING answered as on a subscribed connection. */
static mt_fake_t *near_fake(const char *subscribe_reply) {
  mt_fake_t *f = mt_fake_start();
  mt_fake_on_str(f, "CLIENT ID", ":7\r\n");
  mt_fake_on_str(f, "SUBSCRIBE", subscribe_reply);
  mt_fake_on_str(f, "PING", "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  mt_fake_on_str(f, "GET", "$13\r\n{\"r\":{\"x\":1}}\r\n");
  mt_fake_on_str(f, "PTTL", ":600000\r\n");
  return f;
}

static miscache_t *open_near(mt_fake_t *f, int ping_ms) {
  miscache_options_t *o = miscache_options_new();
  miscache_near_t n = {.enabled = true, .ping_ms = ping_ms};
  assert_int_equal(miscache_options_set_near_cache(o, &n), MISCACHE_OK);
  miscache_t *mc = open_url(mt_fake_url(f), 1000, o);
  miscache_options_free(o);
  return mc;
}

static bool near_connected(miscache_t *mc, int wait_ms) {
  for (int waited = 0; waited <= wait_ms; waited += 10) {
    miscache_near_stats_t st;
    miscache_near_stats(mc, &st, sizeof st);
    if (st.connected) return true;
    sleep_ms(10);
  }
  return false;
}

static void read_perm(miscache_t *mc) {
  json_t *v = NULL;
  miscache_status_t st =
      miscache_get(mc, MISCACHE_DB_CACHE, "permissions:user:1", &v);
  if (st != MISCACHE_OK)
    fail_msg("get: %s: %s", miscache_strerror(st), miscache_errmsg(mc));
  json_decref(v);
}

static void test_near_odd_pushes_flush_not_crash(void **state) {
  (void)state;
  mt_fake_t *f = near_fake(SUB_OK);
  miscache_t *mc = open_near(f, 200);
  assert_true(near_connected(mc, 3000));
  static const char *const shapes[] = {
      "*2\r\n" MSG_HEAD,                       /* no keys element */
      "*0\r\n",                                /* empty push */
      "*3\r\n" MSG_HEAD ":5\r\n",              /* keys not an array */
      "*3\r\n" MSG_HEAD "*2\r\n:5\r\n$-1\r\n", /* keys not strings */
      "*1\r\n$7\r\nmessage\r\n",               /* message alone */
      "*3\r\n:1\r\n:2\r\n:3\r\n",              /* integers */
      "$-1\r\n",
      ":1\r\n",
      "+OK\r\n",
      "*-1\r\n",
      "-ERR what\r\n"};
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    read_perm(mc); /* a miss: loaded from the fake and kept */
    long gets = mt_fake_count(f, "GET");
    read_perm(mc); /* a near hit: no GET */
    assert_int_equal(mt_fake_count(f, "GET"), gets);
    mt_fake_push(f, shapes[i], strlen(shapes[i]));
    sleep_ms(100);
    /* a malformed invalidation names nothing for sure: all goes */
    assert_true(near_connected(mc, 3000));
    read_perm(mc);
    long after = mt_fake_count(f, "GET");
    bool invalidation = strstr(shapes[i], "__redis__") != NULL;
    if (invalidation && after == gets)
      fail_msg("shape %zu: the near cache kept serving", i);
  }
  miscache_near_stats_t st;
  miscache_near_stats(mc, &st, sizeof st);
  assert_true(st.flushes >= 4);
  miscache_free(mc);
  mt_fake_stop(f);
}

static void test_near_odd_subscribe_reply(void **state) {
  (void)state;
  static const char *const replies[] = {"*1\r\n$9\r\nsubscribe\r\n", ":1\r\n",
                                        "*0\r\n", "$-1\r\n",
                                        "*3\r\n:1\r\n:1\r\n:1\r\n"};
  for (size_t i = 0; i < sizeof replies / sizeof *replies; i++) {
    mt_fake_t *f = near_fake(replies[i]);
    miscache_t *mc = open_near(f, 100);
    sleep_ms(300);
    miscache_near_stats_t st;
    miscache_near_stats(mc, &st, sizeof st);
    if (i < 4) assert_false(st.connected); /* [..] has no "subscribe" */
    read_perm(mc); /* served by the server, never a crash */
    miscache_free(mc);
    mt_fake_stop(f);
  }
}

static void test_queue_pull_odd_shapes(void **state) {
  (void)state;
  static const char *const replies[] = {
      "*0\r\n",                                           /* no stream */
      "*1\r\n*1\r\n$1\r\ns\r\n",                          /* [["s"]] */
      "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n$1\r\nx\r\n",         /* entry a string */
      "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*1\r\n$3\r\n1-1\r\n", /* [id] */
      "*1\r\n*2\r\n$1\r\ns\r\n:5\r\n", /* entries an integer */
      "*2\r\n:1\r\n:2\r\n", ":3\r\n", "+OK\r\n",
      /* fields of odd count and not strings */
      ("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*3\r\n$4\r\n"
       "body\r\n:1\r\n*0\r\n")};
  for (size_t i = 0; i < sizeof replies / sizeof *replies; i++) {
    mt_fake_t *f = mt_fake_start();
    mt_fake_on_str(f, "XREADGROUP", replies[i]);
    mt_fake_on_str(f, "EVALSHA", ":1\r\n");
    miscache_t *mc = open_fake(f, 1000);
    miscache_queue_msg_t m[4];
    size_t got = 99;
    miscache_status_t st =
        miscache_queue_pull(mc, "q", "g", "c", 4, 0, m, &got);
    assert_true(st == MISCACHE_OK || st == MISCACHE_ERR_REPLY);
    assert_true(got <= 1);
    for (size_t j = 0; j < got; j++)
      miscache_queue_msg_clear(&m[j]);
    miscache_free(mc);
    mt_fake_stop(f);
  }
}

/* ---- item 19: a near entry lives no longer than its key ------------------ */

static char *slow_get(void *ud, int argc, char **argv, size_t *lens,
                      size_t *len) {
  (void)argc, (void)argv, (void)lens;
  sleep_ms(*(int *)ud);
  return mt_fake_on_reply_copy("$13\r\n{\"r\":{\"x\":1}}\r\n", len);
}

static void test_near_ttl_counts_from_the_send(void **state) {
  (void)state;
  mt_fake_t *f = near_fake(SUB_OK);
  int delay = 300;
  mt_fake_on_fn(f, "GET", slow_get, &delay);
  mt_fake_on_str(f, "PTTL", ":400\r\n"); /* the key dies 400 ms after */
  miscache_t *mc = open_near(f, 2000);
  assert_true(near_connected(mc, 3000));
  int64_t t0 = now_ms();
  read_perm(mc);                        /* sent at t0, answered at t0 + 300 */
  sleep_ms((int)(t0 + 550 - now_ms())); /* the key is gone at t0 + 400 */
  long gets = mt_fake_count(f, "GET");
  read_perm(mc); /* must not be a near hit */
  assert_int_equal(mt_fake_count(f, "GET"), gets + 1);
  miscache_free(mc);
  mt_fake_stop(f);
}

/* ---- item 4: a SCAN that never ends ---------------------------------------
 */

typedef struct {
  const char *const *cursors; /* given in turn; NULL: counting up forever */
  int n, at;
} scan_script_t;

static char *scripted_scan(void *ud, int argc, char **argv, size_t *lens,
                           size_t *len) {
  (void)argc, (void)argv, (void)lens;
  scan_script_t *sc = ud;
  char cur[32];
  if (sc->cursors)
    snprintf(cur, sizeof cur, "%s", sc->cursors[sc->at++ % sc->n]);
  else
    snprintf(cur, sizeof cur, "%d", ++sc->at);
  char *out = malloc(64);
  *len =
      (size_t)snprintf(out, 64, "*2\r\n$%zu\r\n%s\r\n*0\r\n", strlen(cur), cur);
  return out;
}

static miscache_t *open_scan_fake(mt_fake_t *f, int scan_timeout_ms) {
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_scan_timeout(o, scan_timeout_ms),
                   MISCACHE_OK);
  miscache_t *mc = open_url(mt_fake_url(f), 1000, o);
  miscache_options_free(o);
  return mc;
}

static void test_scan_cursor_cycle_detected(void **state) {
  (void)state;
  static const char *const cycle[] = {"5", "7"};
  scan_script_t sc = {cycle, 2, 0};
  mt_fake_t *f = mt_fake_start();
  mt_fake_on_fn(f, "SCAN", scripted_scan, &sc);
  miscache_t *mc = open_scan_fake(f, 30000);
  uint64_t n = 0;
  assert_int_equal(miscache_invalidate(mc, MISCACHE_DB_CACHE, "x:*", &n),
                   MISCACHE_ERR_REPLY);
  assert_non_null(strstr(miscache_errmsg(mc), "cycle"));
  assert_int_equal(mt_fake_count(f, "SCAN"), 3); /* 5, 7, then 5 again */
  miscache_free(mc);
  mt_fake_stop(f);

  static const char *const junk[] = {"12a"};
  scan_script_t sj = {junk, 1, 0};
  f = mt_fake_start();
  mt_fake_on_fn(f, "SCAN", scripted_scan, &sj);
  mc = open_scan_fake(f, 30000);
  uint64_t count = 0;
  assert_int_equal(
      miscache_scan(mc, MISCACHE_DB_CACHE, "x:*", NULL, NULL, &count),
      MISCACHE_ERR_INVALID); /* fn NULL: refused first */
  assert_int_equal(miscache_invalidate(mc, MISCACHE_DB_CACHE, "x:*", &n),
                   MISCACHE_ERR_REPLY);
  assert_non_null(strstr(miscache_errmsg(mc), "not a number"));
  miscache_free(mc);
  mt_fake_stop(f);
}

static void test_scan_bounded_by_its_timeout(void **state) {
  (void)state;
  scan_script_t sc = {NULL, 0, 0}; /* 1, 2, 3, ... never 0 */
  mt_fake_t *f = mt_fake_start();
  mt_fake_on_fn(f, "SCAN", scripted_scan, &sc);
  miscache_t *mc = open_scan_fake(f, 300);
  int64_t t0 = now_ms();
  uint64_t n = 0;
  assert_int_equal(miscache_invalidate(mc, MISCACHE_DB_CACHE, "x:*", &n),
                   MISCACHE_ERR_UNAVAILABLE);
  int64_t took = now_ms() - t0;
  assert_non_null(strstr(miscache_errmsg(mc), "300 ms scan timeout"));
  assert_true(took >= 300);
  assert_true(took < 300 + 1000 + 1500); /* + one command timeout, slack */
  miscache_free(mc);
  mt_fake_stop(f);
}

/* ---- items 5 and 6: slot maps, ports ------------------------------------- */

/* CLUSTER SLOTS with one master per slot, each its own address (127.1.x.y
 * at the fake's port: nobody listens there, connects are refused). */
static char *many_masters(void *ud, int argc, char **argv, size_t *lens,
                          size_t *len) {
  (void)argc, (void)argv, (void)lens;
  int port = *(int *)ud;
  size_t cap = 16384 * 96 + 32, o = 0;
  char *out = malloc(cap);
  o += (size_t)sprintf(out, "*16384\r\n");
  for (int i = 0; i < 16384; i++) {
    char host[32];
    int hl = snprintf(host, sizeof host, "127.1.%d.%d", i / 256, i % 256);
    o += (size_t)sprintf(out + o,
                         "*3\r\n:%d\r\n:%d\r\n*2\r\n$%d\r\n%s\r\n:%d\r\n", i, i,
                         hl, host, port);
  }
  *len = o;
  return out;
}

static char *one_master(void *ud, int argc, char **argv, size_t *lens,
                        size_t *len) {
  (void)argc, (void)argv, (void)lens;
  char *out = malloc(128);
  *len = (size_t)snprintf(
      out, 128, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n",
      *(int *)ud);
  return out;
}

/* Digits after a minus sign: a negative time in a message. */
static void assert_no_negative_number(const char *msg) {
  for (const char *p = msg; *p; p++)
    if (*p == '-' && p[1] >= '0' && p[1] <= '9' && (p == msg || p[-1] == ' '))
      fail_msg("a negative number in: %s", msg);
}

static void test_slot_map_linear_and_freed(void **state) {
  (void)state;
  mt_fake_t *f = mt_fake_start();
  int port = mt_fake_port(f);
  mt_fake_on_fn(f, "CLUSTER SLOTS", many_masters, &port);
  mt_fake_on_str(f, "GET", "$2\r\n{}\r\n");
  char url[96];
  snprintf(url, sizeof url, "redis+cluster://127.0.0.1:%d", port);
  int64_t t0 = now_ms();
  /* 2 s: the 1.4 MB map is parsed in time under valgrind too */
  miscache_t *mc = open_url(url, 2000, NULL);
  int64_t opened = now_ms() - t0;
  assert_int_equal(miscache__dispatch_node_count(mc), 16384);
  /* the key's master refuses: the call fails within its deadline */
  json_t *v = NULL;
  t0 = now_ms();
  miscache_status_t st = miscache_get(mc, MISCACHE_DB_CACHE, "k", &v);
  int64_t took = now_ms() - t0;
  assert_int_equal(st, MISCACHE_ERR_UNAVAILABLE);
  assert_no_negative_number(miscache_errmsg(mc));
  assert_true(took < 2000 + 2000 + 1500);
  /* the map changes to one master: the 16,384 others are freed */
  mt_fake_on_fn(f, "CLUSTER SLOTS", one_master, &port);
  sleep_ms(150); /* past the pause between reloads */
  t0 = now_ms();
  for (int i = 0; i < 20; i++) {
    st = miscache_get(mc, MISCACHE_DB_CACHE, "k", &v);
    if (st == MISCACHE_OK) break;
    sleep_ms(120);
  }
  took = now_ms() - t0;
  if (st != MISCACHE_OK) fail_msg("after the new map: %s", miscache_errmsg(mc));
  json_decref(v);
  assert_int_equal(miscache__dispatch_node_count(mc), 1);
  print_message("16384-master map: open %lld ms; reload and get %lld ms\n",
                (long long)opened, (long long)took);
  miscache_free(mc);
  mt_fake_stop(f);
}

static void expect_open_refused(const char *url, const char *words) {
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  assert_int_equal(miscache_options_set_command_timeout(o, 500), MISCACHE_OK);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE] = "";
  assert_int_not_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  assert_null(mc);
  if (!strstr(err, words)) fail_msg("\"%s\" does not say \"%s\"", err, words);
  assert_printable(err);
  miscache_options_free(o);
}

static void test_ports_out_of_range_refused(void **state) {
  (void)state;
  mt_fake_t *f = mt_fake_start();
  int port = mt_fake_port(f);
  char map[256], url[96];
  /* CLUSTER SLOTS naming 65536 + port: an (int) cast made it port */
  snprintf(map, sizeof map,
           "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n",
           65536 + port);
  mt_fake_on(f, "CLUSTER SLOTS", map, strlen(map), 1);
  snprintf(url, sizeof url, "redis+cluster://127.0.0.1:%d", port);
  expect_open_refused(url, "out of range 1..65535");
  /* a host of 300 bytes */
  char host[301];
  memset(host, 'h', 300);
  host[300] = 0;
  char big[512];
  snprintf(big, sizeof big,
           "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$300\r\n%s\r\n:%d\r\n", host,
           port);
  mt_fake_on(f, "CLUSTER SLOTS", big, strlen(big), 1);
  expect_open_refused(url, "300 bytes");
  /* MOVED to 70000 + ...: refused, not followed */
  snprintf(map, sizeof map,
           "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%d\r\n",
           port);
  mt_fake_on_str(f, "CLUSTER SLOTS", map);
  snprintf(map, sizeof map, "-MOVED 12539 127.0.0.1:%d\r\n", 65536 + port);
  mt_fake_on_str(f, "GET", map);
  miscache_t *mc = open_url(url, 500, NULL);
  json_t *v = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "k", &v),
                   MISCACHE_ERR_REPLY);
  assert_non_null(strstr(miscache_errmsg(mc), "redirection not to follow"));
  assert_int_equal(mt_fake_count(f, "GET"), 1); /* never sent elsewhere */
  mt_fake_on_str(f, "GET", "-ASK 12539 127.0.0.1:0\r\n");
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "k", &v),
                   MISCACHE_ERR_REPLY);
  miscache_free(mc);
  /* a sentinel naming 65536 + port */
  snprintf(map, sizeof map, "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n%d\r\n",
           65536 + port);
  mt_fake_on_str(f, "SENTINEL", map);
  snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d/mymaster", port);
  expect_open_refused(url, "not in 1..65535");
  mt_fake_on_str(f, "SENTINEL", "*2\r\n$0\r\n\r\n$4\r\n6380\r\n");
  expect_open_refused(url, "0 bytes");
  mt_fake_stop(f);
}

/* ---- item 14: no message holds a URL's userinfo ---------------------------- */

static void test_url_secrets_never_in_messages(void **state) {
  (void)state;
  static const char *const urls[] = {
      "rediss//app:Hunter2@host", "redis:/app:Hunter2@host:6379",
      "http://app:Hunter2@host", "redis+sentinal://app:Hunter2@h:1/m",
      "redis://app:Hunter2@", "rediss://app:Hunter2@host:99999",
      "redis://app:Hunter2@host?cacert=x", "redis://:Hunter2@h/3"};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
    miscache_options_t *o = miscache_options_new();
    miscache_status_t st = miscache_options_set_url(o, urls[i]);
    assert_int_not_equal(st, MISCACHE_OK);
    const char *msg = miscache_options_errmsg(o);
    if (strstr(msg, "Hunter2") || strstr(msg, "app:"))
      fail_msg("set_url(%s) says: %s", urls[i], msg);
    miscache_options_free(o);
    /* through MISCACHE_URL: the open's message */
    setenv("MISCACHE_URL", urls[i], 1);
    miscache_t *mc = NULL;
    char err[MISCACHE_ERRMSG_SIZE] = "";
    assert_int_not_equal(miscache_open(NULL, &mc, err, sizeof err),
                         MISCACHE_OK);
    unsetenv("MISCACHE_URL");
    if (strstr(err, "Hunter2") || strstr(err, "app:"))
      fail_msg("open(MISCACHE_URL=%s) says: %s", urls[i], err);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_extra_bytes_never_shift_answers),
      cmocka_unit_test(test_pipeline_extra_bytes_fail_whole_batch),
      cmocka_unit_test(test_one_byte_writes_work),
      cmocka_unit_test(test_huge_array_header_refused),
      cmocka_unit_test(test_huge_bulk_header_refused),
      cmocka_unit_test(test_nested_and_bad_headers_refused),
      cmocka_unit_test(test_limits_are_options),
      cmocka_unit_test(test_server_text_escaped),
      cmocka_unit_test(test_lock_needs_ok),
      cmocka_unit_test(test_near_odd_pushes_flush_not_crash),
      cmocka_unit_test(test_near_odd_subscribe_reply),
      cmocka_unit_test(test_queue_pull_odd_shapes),
      cmocka_unit_test(test_near_ttl_counts_from_the_send),
      cmocka_unit_test(test_scan_cursor_cycle_detected),
      cmocka_unit_test(test_scan_bounded_by_its_timeout),
      cmocka_unit_test(test_slot_map_linear_and_freed),
      cmocka_unit_test(test_ports_out_of_range_refused),
      cmocka_unit_test(test_url_secrets_never_in_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* A malloc-failure sweep. Linked with -Wl,--wrap for malloc,
 * calloc, realloc and strdup (the library's own allocations) and with
 * jansson's allocator routed through the same counter, each scenario runs
 * again and again with its Nth allocation failing, for every N until a run
 * needs fewer. Every run must return a defined status (with a message when
 * it is an error), must not crash or leak (ASan/valgrind run this too), and
 * the same scenario must succeed once allocations work again. hiredis's own
 * reply allocations are not counted (Debian's shared libhiredis has no
 * allocator hook in 0.14). Allocations inside json_loadb are not failed
 * either: jansson 2.14's lexer ignores a failed buffer growth and then
 * writes past the buffer (jansson issue #362; the fix is not released), a
 * bug of jansson that this sweep found and the library cannot work around;
 * json_loadb is wrapped only to skip them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);

static long armed_at = -1; /* fail the allocation with this number */
static long count;
static long failures;
static int in_loadb;

json_t *__real_json_loadb(const char *buf, size_t len, size_t flags,
                          json_error_t *err);
json_t *__wrap_json_loadb(const char *buf, size_t len, size_t flags,
                          json_error_t *err) {
  in_loadb++;
  json_t *v = __real_json_loadb(buf, len, flags, err);
  in_loadb--;
  return v;
}

/* pthread_create fails while this is set (item 8: no renewal, no work) */
static int fail_threads;
int __real_pthread_create(void *t, const void *attr, void *(*fn)(void *),
                          void *arg);
int __wrap_pthread_create(void *t, const void *attr, void *(*fn)(void *),
                          void *arg) {
  return fail_threads ? 11 /* EAGAIN */
                      : __real_pthread_create(t, attr, fn, arg);
}

static bool fail_now(void) {
  if (armed_at < 0 || in_loadb) return false;
  if (++count != armed_at) return false;
  failures++;
  return true;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) {
  return fail_now() ? NULL : __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
  return fail_now() ? NULL : __real_realloc(p, n);
}
char *__wrap_strdup(const char *s) {
  return fail_now() ? NULL : __real_strdup(s);
}
static void *json_alloc(size_t n) { return __wrap_malloc(n); }

static void check(miscache_t *mc, miscache_status_t st, const char *what) {
  if ((int)st < 0 || (int)st > MISCACHE_ERR_PENDING_FULL)
    fail_msg("%s: undefined status %d", what, (int)st);
  if (st != MISCACHE_OK && st != MISCACHE_MISS && mc && !miscache_errmsg(mc)[0])
    fail_msg("%s: %s without a message", what, miscache_strerror(st));
}

static miscache_status_t load_perm(void *ud, const char *key, json_t **out) {
  (void)ud;
  (void)key;
  *out = json_pack("{s:{s:b}}", "orders", "read", 1);
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

static miscache_status_t load_cfg(void *ud, int64_t c,
                                  miscache_batch_config_t *out) {
  (void)ud;
  (void)c;
  out->page_size = 20;
  return miscache_strings_push(&out->gift_keywords, "사은품");
}

/* One scenario: representative calls of every layer. Returns how many
 * calls failed. */
static int scenario(const char *ns) {
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_options_t *o = miscache_options_new();
  if (!o) return 1;
  miscache_t *mc = NULL;
  miscache_status_t st = miscache_options_set_url(o, mt_srv.url);
  if (st == MISCACHE_OK) st = miscache_options_set_namespace(o, ns);
  if (st == MISCACHE_OK) st = miscache_open(o, &mc, err, sizeof err);
  miscache_options_free(o);
  if (st != MISCACHE_OK) {
    check(NULL, st, "open");
    return 1;
  }
  int bad = 0;
#define CALL(x)                                                                \
  do {                                                                         \
    miscache_status_t s_ = (x);                                                \
    check(mc, s_, #x);                                                         \
    bad += s_ != MISCACHE_OK;                                                  \
    if (s_ && getenv("MT_SWEEP_FROM")) /* debugging one N: say what */       \
      fprintf(stderr, "%s: %s\n", #x, miscache_errmsg(mc));                  \
  } while (0)
  miscache_session_t s = {.user_id = 5, .username = "kim"};
  CALL(miscache_session_set(mc, &s));
  miscache_session_t got;
  CALL(miscache_session_get(mc, 5, &got));
  miscache_session_clear(&got);
  CALL(miscache_session_touch(mc, 5));
  bool allowed;
  CALL(miscache_permissions_check(mc, 5, "orders", MISCACHE_PERM_READ,
                                  load_perm, NULL, &allowed, NULL));
  uint64_t removed;
  CALL(miscache_invalidate_permissions(mc, 5, &removed));
  miscache_batch_config_t cfg;
  CALL(miscache_batch_config_get_or_load(mc, 3, load_cfg, NULL, &cfg, NULL));
  miscache_batch_config_clear(&cfg);
  CALL(miscache_upload_create(mc, "u", 10));
  CALL(miscache_upload_advance(mc, "u", 2, 1));
  miscache_gift_rules_t rules = {.zero_price_rule = true};
  miscache_gift_engine_t *e = NULL;
  st = miscache_gift_engine_new(&rules, NULL, 0, &e);
  check(NULL, st, "engine");
  if (st == MISCACHE_OK) {
    miscache_gift_product_t p[3] = {
        {.product_code = "A1", .product_name = "유모차", .supply_price = 10},
        {.product_code = "A2", .product_name = "샘플", .supply_price = 0},
        {.product_code = "A3", .product_name = "x", .supply_price = 5}};
    miscache_gift_classification_t out[3];
    CALL(miscache_gift_classify_bulk(mc, 1, e, p, 3, out, NULL, NULL));
    for (int i = 0; i < 3; i++)
      miscache_gift_classification_clear(&out[i]);
  } else {
    bad++;
  }
  miscache_gift_engine_free(e);
  miscache_lock_t *l = NULL;
  CALL(miscache_batch_lock_acquire(mc, 9, "sweep", "b", &l));
  if (l) CALL(miscache_lock_release(mc, l));
  miscache_lock_free(l);
  CALL(miscache_invalidate_gift_rules(mc, 1, &removed));
#undef CALL
  miscache_free(mc);
  return bad;
}

static void test_sweep(void **state) {
  (void)state;
  json_set_alloc_funcs(json_alloc, free);
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  /* a clean run first: everything works, and it counts the allocations */
  armed_at = -1;
  assert_int_equal(scenario(ns), 0);
  long n;
  long runs = 0, failed_calls = 0;
  const char *from = getenv("MT_SWEEP_FROM"); /* to debug one N */
  bool verbose = from != NULL;
  for (n = from ? atol(from) : 1;; n++) {
    if (verbose) fprintf(stderr, "sweep: failing allocation %ld\n", n);
    count = 0;
    failures = 0;
    armed_at = n;
    failed_calls += scenario(ns);
    armed_at = -1;
    runs++;
    if (failures == 0) break; /* the scenario needs fewer than n */
    /* with allocations working again, the same calls succeed */
    if (scenario(ns) != 0)
      fail_msg("after failing allocation %ld, a clean "
               "run still fails",
               n);
  }
  print_message("malloc sweep: %ld runs, allocation 1..%ld failed in turn, "
                "%ld calls returned an error, no crash\n",
                runs, n - 1, failed_calls);
  assert_true(n > 50);
  json_set_alloc_funcs(malloc, free);
}

static int works;
static miscache_status_t work(void *ud, miscache_batch_run_t *run) {
  (void)ud;
  (void)run;
  works++;
  return MISCACHE_OK;
}

/* Item 8: when the renewal thread cannot start, the work never runs
 * unprotected: the run fails first, and says why. */
static void test_run_without_renewal_fails_first(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  fail_threads = 1;
  works = 0;
  miscache_batch_history_t h;
  miscache_status_t st =
      miscache_batch_run(mc, 4, "t", load_cfg, NULL, work, NULL, &h);
  fail_threads = 0;
  assert_int_not_equal(st, MISCACHE_OK);
  assert_int_equal(works, 0);
  assert_non_null(strstr(miscache_errmsg(mc), "renewal"));
  assert_string_equal(h.status, "failed");
  assert_true(h.errors.count >= 1);
  miscache_batch_history_clear(&h);
  miscache_batch_status_t bs;
  assert_int_equal(miscache_batch_status_get(mc, 4, &bs), MISCACHE_OK);
  assert_string_equal(bs.status, "failed");
  miscache_batch_status_clear(&bs);
  assert_int_equal(mt_raw_exists_in(mc, 4, "batch:lock:4"), 0); /* released */
  /* and with threads working again the run does its work */
  assert_int_equal(
      miscache_batch_run(mc, 4, "t", load_cfg, NULL, work, NULL, NULL),
      MISCACHE_OK);
  assert_int_equal(works, 1);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sweep),
      cmocka_unit_test(test_run_without_renewal_fails_first)};
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

/* Typed session and permissions domains, and the Python app's view. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static miscache_session_t make_session(int64_t id) {
  miscache_session_t s = {0};
  s.user_id = id;
  s.username = strdup("\xea\xb4\x80\xeb\xa6\xac\xec\x9e\x90"); /* 관리자 */
  s.dept_id = 1;
  s.current_company_id = 2;
  s.permissions = json_pack("{s:{s:b,s:b,s:b,s:b}}", "admin_batch", "create",
                            0, "read", 1, "update", 1, "delete", 0);
  return s;
}

static void test_session_round_trip(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_session_t s = make_session(123);
  assert_int_equal(miscache_session_set(mc, &s), MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(mc, 0, "session:user:123"), 1);
  long long p = mt_raw_pttl(mc, MISCACHE_DB_SESSION, "session:user:123");
  assert_true(p > 86395000 && p <= 86400000);
  miscache_session_t back;
  assert_int_equal(miscache_session_get(mc, 123, &back), MISCACHE_OK);
  assert_int_equal(back.user_id, 123);
  assert_string_equal(back.username, s.username);
  assert_int_equal(back.dept_id, 1);
  assert_int_equal(back.current_company_id, 2);
  assert_true(json_equal(back.permissions, s.permissions));
  assert_non_null(back.last_activity); /* stamped by set */
  assert_int_equal(strlen(back.last_activity), 20);
  miscache_session_clear(&back);
  assert_null(back.username);
  assert_int_equal(miscache_session_get(mc, 124, &back), MISCACHE_MISS);
  bool del = false;
  assert_int_equal(miscache_session_delete(mc, 123, &del), MISCACHE_OK);
  assert_true(del);
  assert_int_equal(miscache_session_get(mc, 123, &back), MISCACHE_MISS);
  miscache_session_clear(&s);
  miscache_free(mc);
}

static void test_session_touch(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_session_t s = make_session(7);
  s.last_activity = strdup("2001-01-01T00:00:00Z");
  assert_int_equal(miscache_session_set(mc, &s), MISCACHE_OK);
  char full[96];
  snprintf(full, sizeof full, "%ssession:user:7", miscache_namespace(mc));
  mt_raw_int(mt_rc, 0, "PEXPIRE %s 5000", full);
  assert_int_equal(miscache_session_touch(mc, 7), MISCACHE_OK);
  long long p = mt_raw_pttl(mc, MISCACHE_DB_SESSION, "session:user:7");
  assert_true(p > 86395000);
  miscache_session_t back;
  assert_int_equal(miscache_session_get(mc, 7, &back), MISCACHE_OK);
  assert_string_not_equal(back.last_activity, "2001-01-01T00:00:00Z");
  assert_int_equal(strncmp(back.last_activity, "20", 2), 0);
  assert_string_equal(back.username, s.username); /* the rest kept */
  miscache_session_clear(&back);
  assert_int_equal(miscache_session_touch(mc, 8), MISCACHE_MISS);
  miscache_session_clear(&s);
  miscache_free(mc);
}

static void test_session_wrong_shape(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  const char *bad[] = {"{\"user_id\":\"abc\"}", "[1,2]", "{\"username\":\"x\"}",
                       "{\"user_id\":1,\"dept_id\":1.5}"};
  char full[96];
  snprintf(full, sizeof full, "%ssession:user:9", miscache_namespace(mc));
  for (int i = 0; i < 4; i++) {
    freeReplyObject(mt_cmd_in(mt_rc, 0, "SET %s %s", full, bad[i]));
    miscache_session_t back;
    assert_int_equal(miscache_session_get(mc, 9, &back), MISCACHE_ERR_DECODE);
    assert_null(back.username);
    assert_non_null(strstr(miscache_errmsg(mc), "session"));
  }
  miscache_counters_t c;
  miscache_counters_get(mc, MISCACHE_DB_SESSION, &c);
  assert_int_equal(c.hits, 0);
  assert_int_equal(c.misses, 4);
  /* invalid UTF-8 in a field: not written */
  miscache_session_t s = {.user_id = 10, .username = "\xff"};
  assert_int_equal(miscache_session_set(mc, &s), MISCACHE_ERR_ENCODE);
  assert_int_equal(mt_raw_exists_in(mc, 0, "session:user:10"), 0);
  miscache_free(mc);
}

/* Where Python connects: the unix socket, or cluster:HOST:PORT. */
static const char *py_target(void) {
  static char buf[256];
  if (!mt_is_cluster()) return mt_srv.sock;
  snprintf(buf, sizeof buf, "cluster:127.0.0.1:%d", mt_srv.port);
  return buf;
}

static int run_python(const char *mode, miscache_t *mc, int user) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/interop/redis_py_session.py"
                            " %s %s %s %d",
           MT_SOURCE_DIR, mode, py_target(), miscache_namespace(mc), user);
  return system(cmd);
}

static void test_python_app_shares_sessions(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_session_t s = make_session(321);
  assert_int_equal(miscache_session_set(mc, &s), MISCACHE_OK);
  miscache_session_clear(&s);
  assert_int_equal(run_python("read", mc, 321), 0);
  assert_int_equal(run_python("write", mc, 555), 0);
  miscache_session_t back;
  assert_int_equal(miscache_session_get(mc, 555, &back), MISCACHE_OK);
  assert_int_equal(back.user_id, 555);
  assert_string_equal(back.username, "flask-user");
  assert_int_equal(back.dept_id, 3);
  assert_int_equal(back.current_company_id, 2);
  assert_string_equal(back.last_activity, "2026-11-24T09:00:00Z");
  assert_true(json_is_false(json_object_get(
      json_object_get(back.permissions, "trade_order"), "update")));
  /* C changes what it knows; the Flask-only fields stay */
  free(back.username);
  back.username = strdup("renamed-in-c");
  assert_int_equal(miscache_session_set(mc, &back), MISCACHE_OK);
  miscache_session_clear(&back);
  assert_int_equal(miscache_session_touch(mc, 555), MISCACHE_OK);
  assert_int_equal(run_python("kept", mc, 555), 0);
  miscache_free(mc);
}

static int loads;
static miscache_status_t load_perms(void *ud, const char *key, json_t **out) {
  (void)ud;
  assert_string_equal(key, "permissions:user:42");
  loads++;
  *out = json_pack("{s:{s:b,s:b,s:b,s:b},s:{s:b}}", "admin_batch", "create", 0,
                   "read", 1, "update", 1, "delete", 0, "admin_gift", "read",
                   1);
  return MISCACHE_OK;
}
static miscache_status_t load_none(void *ud, const char *key, json_t **out) {
  (void)ud;
  (void)key;
  (void)out;
  return MISCACHE_MISS;
}
static miscache_status_t load_bad(void *ud, const char *key, json_t **out) {
  (void)ud;
  (void)key;
  *out = json_pack("{s:{s:s}}", "admin_batch", "read", "yes");
  return MISCACHE_OK;
}

static void test_permissions(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  bool ok = false;
  miscache_source_t src;
  loads = 0;
  assert_int_equal(miscache_permissions_check(mc, 42, "admin_batch",
                                              MISCACHE_PERM_UPDATE, load_perms,
                                              NULL, &ok, &src),
                   MISCACHE_OK);
  assert_true(ok);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  long long p = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "permissions:user:42");
  assert_true(p > 3595000 && p <= 3600000);
  assert_int_equal(mt_raw_exists_in(mc, 1, "permissions:user:42"), 1);
  struct {
    const char *menu;
    miscache_perm_t perm;
    bool want;
  } cases[] = {{"admin_batch", MISCACHE_PERM_DELETE, false},
               {"admin_batch", MISCACHE_PERM_READ, true},
               {"admin_gift", MISCACHE_PERM_READ, true},
               {"admin_gift", MISCACHE_PERM_UPDATE, false}, /* absent */
               {"trade_order", MISCACHE_PERM_READ, false}}; /* no menu */
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(miscache_permissions_check(mc, 42, cases[i].menu,
                                                cases[i].perm, load_perms, NULL,
                                                &ok, &src),
                     MISCACHE_OK);
    assert_int_equal(ok, cases[i].want);
    assert_int_equal(src, MISCACHE_SOURCE_CACHE);
  }
  assert_int_equal(loads, 1);
  json_t *map = NULL;
  assert_int_equal(miscache_permissions_get(mc, 42, &map), MISCACHE_OK);
  assert_non_null(json_object_get(map, "admin_gift"));
  /* a change invalidates; the next check loads again */
  bool del = false;
  assert_int_equal(miscache_permissions_delete(mc, 42, &del), MISCACHE_OK);
  assert_true(del);
  assert_int_equal(miscache_permissions_check(mc, 42, "admin_batch",
                                              MISCACHE_PERM_READ, load_perms,
                                              NULL, &ok, &src),
                   MISCACHE_OK);
  assert_int_equal(loads, 2);
  assert_int_equal(miscache_permissions_set(mc, 43, map), MISCACHE_OK);
  json_decref(map);
  /* unknown user, and a loader with a wrong shape: nothing stored */
  assert_int_equal(miscache_permissions_check(mc, 44, "admin_batch",
                                              MISCACHE_PERM_READ, load_none,
                                              NULL, &ok, &src),
                   MISCACHE_MISS);
  assert_false(ok);
  assert_int_equal(miscache_permissions_check(mc, 45, "admin_batch",
                                              MISCACHE_PERM_READ, load_bad,
                                              NULL, &ok, &src),
                   MISCACHE_ERR_LOADER);
  assert_int_equal(mt_raw_exists_in(mc, 1, "permissions:user:45"), 0);
  json_t *bad = json_pack("{s:{s:i}}", "m", "read", 1);
  assert_int_equal(miscache_permissions_set(mc, 46, bad), MISCACHE_ERR_INVALID);
  assert_int_equal(mt_raw_exists_in(mc, 1, "permissions:user:46"), 0);
  json_decref(bad);
  assert_int_equal(miscache_permissions_check(mc, 42, "m", (miscache_perm_t)4,
                                              load_perms, NULL, &ok, NULL),
                   MISCACHE_ERR_INVALID);
  miscache_free(mc);
}

/* Batch status, gift classification, upload status and daily sales as the
 * Flask app reads them. */
static void test_python_reads_payloads(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_batch_status_t bs = {.status = "running",
                                .start_time = "2026-11-24T02:00:00Z",
                                .batch_id = "1-20261124T020000Z",
                                .current_step = "data_collection",
                                .progress = {.total_pages = 50,
                                             .processed_pages = 23,
                                             .total_records = 1500,
                                             .processed_records = 690,
                                             .classified_gifts = 125}};
  miscache_strings_push(&bs.errors, "page 3: timeout");
  assert_int_equal(miscache_batch_status_set(mc, 1, &bs), MISCACHE_OK);
  miscache_strings_clear(&bs.errors);
  miscache_gift_rules_t r = {.exclude_from_revenue = true};
  miscache_strings_push(&r.keywords, "\xec\x82\xac\xec\x9d\x80\xed\x92\x88");
  miscache_gift_engine_t *e = NULL;
  assert_int_equal(miscache_gift_engine_new(&r, NULL, 0, &e), MISCACHE_OK);
  miscache_gift_rules_clear(&r);
  miscache_gift_product_t p = {.product_code = "P*1",
                               .product_name =
                                   "[\xec\x82\xac\xec\x9d\x80\xed\x92\x88] x",
                               .supply_price = 10};
  miscache_gift_classification_t c;
  assert_int_equal(miscache_gift_classify(mc, 1, e, &p, &c, NULL), MISCACHE_OK);
  miscache_gift_classification_clear(&c);
  miscache_gift_engine_free(e);
  assert_int_equal(miscache_upload_create(mc, "u1", 1000), MISCACHE_OK);
  assert_int_equal(miscache_upload_advance(mc, "u1", 500, 5), MISCACHE_OK);
  miscache_daily_sales_t d = {.total_amount = 1000000, .order_count = 150,
                              .gift_stats = {.gift_order_count = 85,
                                             .gift_attachment_rate = 56.7,
                                             .total_gift_cost = 125000}};
  assert_int_equal(miscache_stats_daily_sales_set(mc, "20261124", &d),
                   MISCACHE_OK);
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 %s/tests/interop/redis_py_payloads.py %s %s",
           MT_SOURCE_DIR, py_target(), miscache_namespace(mc));
  assert_int_equal(system(cmd), 0);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session_round_trip),
      cmocka_unit_test(test_session_touch),
      cmocka_unit_test(test_session_wrong_shape),
      cmocka_unit_test(test_python_app_shares_sessions),
      cmocka_unit_test(test_permissions),
      cmocka_unit_test(test_python_reads_payloads),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

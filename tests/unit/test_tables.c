/* Status texts, db and TTL tables, options validation, jitter: no server
 * (handles are opened with lazy connect and never talk to one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "domain/domain.h"

static void test_strerror_all(void **state) {
  (void)state;
  const char *seen[32] = {0};
  int n = 0;
#define CHECK_TEXT(name, code, text)                                           \
  assert_string_equal(miscache_strerror(MISCACHE_##name), text);               \
  assert_int_equal(MISCACHE_##name, code);                                     \
  seen[n++] = text;
  MISCACHE_STATUS_MAP(CHECK_TEXT)
#undef CHECK_TEXT
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) assert_string_not_equal(seen[i], seen[j]);
  assert_int_equal(MISCACHE_OK, 0);
  assert_string_equal(miscache_strerror((miscache_status_t)999),
                      "unknown status");
}

static void test_version_and_perm_names(void **state) {
  (void)state;
  assert_string_equal(miscache_version(), MISCACHE_VERSION_STRING);
  const char *want[] = {"create", "read", "update", "delete"};
  for (int i = 0; i < 4; i++)
    assert_string_equal(miscache_perm_name((miscache_perm_t)i), want[i]);
  assert_null(miscache_perm_name((miscache_perm_t)4));
}

static void test_db_names(void **state) {
  (void)state;
  const char *names[] = {"session", "cache", "temp", "queue", "batch", "gift"};
  for (int i = 0; i < MISCACHE_DB_COUNT; i++) {
    assert_string_equal(miscache_db_name((miscache_db_t)i), names[i]);
    miscache_db_t db;
    assert_int_equal(miscache_db_from_name(names[i], &db), MISCACHE_OK);
    assert_int_equal(db, i);
  }
  assert_null(miscache_db_name((miscache_db_t)6));
  assert_null(miscache_db_name((miscache_db_t)-1));
  miscache_db_t db;
  assert_int_equal(miscache_db_from_name("nope", &db), MISCACHE_ERR_INVALID);
}

static void test_ttl_defaults(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int64_t s;
  } want[MISCACHE_TTL_CLASS_COUNT] = {
      {"session", 86400},          {"permissions", 3600},
      {"master_data", 21600},      {"statistics", 43200},
      {"temp_data", 1800},         {"lock", 300},
      {"batch_config", 86400},     {"batch_status", 3600},
      {"batch_history", 604800},   {"batch_lock", 1800},
      {"gift_rules", 21600},       {"gift_classification", 14400},
      {"gift_analytics", 28800},   {"gift_master", 21600},
      {"master_companies", 43200}, {"serial_count", 86400},
      {"excel_upload", 3600},
  };
  for (int i = 0; i < MISCACHE_TTL_CLASS_COUNT; i++) {
    miscache_ttl_class_t c = (miscache_ttl_class_t)i;
    assert_string_equal(miscache_ttl_class_name(c), want[i].name);
    assert_int_equal(miscache_ttl_default(c), want[i].s);
    miscache_ttl_class_t back;
    assert_int_equal(miscache_ttl_class_from_name(want[i].name, &back),
                     MISCACHE_OK);
    assert_int_equal(back, c);
  }
  assert_int_equal(miscache_ttl_default((miscache_ttl_class_t)17), 0);
  assert_null(miscache_ttl_class_name((miscache_ttl_class_t)17));
}

static miscache_t *open_lazy(miscache_options_t *o) {
  assert_int_equal(miscache_options_set_lazy_connect(o, true), MISCACHE_OK);
  assert_int_equal(miscache_options_set_tcp(o, "127.0.0.1", 1), MISCACHE_OK);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  return mc;
}

static void test_overrides(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_ttl(o, MISCACHE_TTL_SESSION, 60),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_db(o, MISCACHE_DB_GIFT, 9), MISCACHE_OK);
  assert_int_equal(miscache_options_set_namespace(o, "mis:"), MISCACHE_OK);
  miscache_t *mc = open_lazy(o);
  miscache_options_free(o); /* the handle keeps its own copy */
  assert_int_equal(miscache_ttl_seconds(mc, MISCACHE_TTL_SESSION), 60);
  assert_int_equal(miscache_ttl_seconds(mc, MISCACHE_TTL_LOCK), 300);
  assert_int_equal(miscache_db_number(mc, MISCACHE_DB_GIFT), 9);
  assert_int_equal(miscache_db_number(mc, MISCACHE_DB_BATCH), 4);
  assert_string_equal(miscache_namespace(mc), "mis:");
  for (int i = 0; i < 100; i++)
    assert_int_equal(miscache__ttl_ms(mc, MISCACHE_TTL_SESSION), 60000);
  miscache_free(mc);
}

static void test_option_validation(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_ttl(o, MISCACHE_TTL_SESSION, 0),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_ttl(o, (miscache_ttl_class_t)17, 5),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_db(o, (miscache_db_t)6, 1),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_db(o, MISCACHE_DB_CACHE, -1),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_ttl_jitter(o, 51), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_namespace(o, "mis*"), MISCACHE_ERR_KEY);
  assert_int_equal(miscache_options_set_namespace(o, "a b"), MISCACHE_ERR_KEY);
  assert_int_equal(miscache_options_set_connect_timeout(o, 0),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_scan(o, 0, 10), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_tcp(o, "h", 70000), MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_unix(o, ""), MISCACHE_ERR_INVALID);
  miscache_options_free(o);
}

static void test_jitter_bounds(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_ttl_jitter(o, 10), MISCACHE_OK);
  miscache_t *mc = open_lazy(o);
  miscache_options_free(o);
  int64_t lo = INT64_MAX, hi = 0;
  for (int i = 0; i < 20000; i++) {
    int64_t ms = miscache__ttl_ms(mc, MISCACHE_TTL_PERMISSIONS);
    assert_true(ms >= 3240000 && ms <= 3960000);
    if (ms < lo) lo = ms;
    if (ms > hi) hi = ms;
  }
  /* the spread is really used, on both sides */
  assert_true(lo < 3300000);
  assert_true(hi > 3900000);
  miscache_free(mc);
}

static void test_bad_env_url(void **state) {
  (void)state;
  setenv("MISCACHE_URL", "http://nope", 1);
  miscache_t *mc = (miscache_t *)1;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(NULL, &mc, err, sizeof err), MISCACHE_ERR_URL);
  assert_null(mc);
  assert_true(strstr(err, "MISCACHE_URL") != NULL);
  unsetenv("MISCACHE_URL");
  assert_int_equal(miscache_open_url("redis://h:0", &mc, err, sizeof err),
                   MISCACHE_ERR_URL);
  assert_true(strstr(err, "port") != NULL);
  assert_int_equal(miscache_open(NULL, NULL, err, sizeof err),
                   MISCACHE_ERR_INVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strerror_all),    cmocka_unit_test(test_db_names),
      cmocka_unit_test(test_version_and_perm_names),
      cmocka_unit_test(test_ttl_defaults),    cmocka_unit_test(test_overrides),
      cmocka_unit_test(test_option_validation),
      cmocka_unit_test(test_jitter_bounds),   cmocka_unit_test(test_bad_env_url),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

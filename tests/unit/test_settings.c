/* The URL as the whole configuration (no server): every settings
 * parameter reaches the option it names, a setter wins over the URL in
 * either order, bad values fail with a message that never shows the
 * password, MISCACHE_URL carries settings too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

static char text[8192];

/* The effective settings of opts (NULL: defaults) as text; fails the test
 * on an error. */
static const char *describe(const miscache_options_t *o) {
  size_t n = 0;
  miscache_status_t st = miscache_options_describe(o, text, sizeof text, &n);
  if (st != MISCACHE_OK) fail_msg("describe: %s: %s", miscache_strerror(st), text);
  assert_int_equal(n, strlen(text));
  return text;
}

/* The value of line "name=" in t, copied into out. */
static const char *value_of(const char *t, const char *name, char *out,
                            size_t size) {
  char want[80];
  snprintf(want, sizeof want, "\n%s=", name);
  const char *p = strstr(t, want);
  if (!p) fail_msg("no line %s in:\n%s", name, t);
  p += strlen(want);
  snprintf(out, size, "%.*s", (int)strcspn(p, "\n"), p);
  return out;
}

static const char *url_value(const char *url, const char *name, char *out,
                             size_t size) {
  miscache_options_t *o = miscache_options_new();
  if (miscache_options_set_url(o, url) != MISCACHE_OK)
    fail_msg("%s: %s", url, miscache_options_errmsg(o));
  value_of(describe(o), name, out, size);
  miscache_options_free(o);
  return out;
}

/* For each settings parameter: a value other than its default, given in
 * the URL, is what the effective settings show, and it lands in the
 * option field the library reads. */
static void test_every_parameter(void **state) {
  (void)state;
  unsetenv("MISCACHE_URL");
  char defaults[8192];
  miscache_options_t *d = miscache_options_new();
  assert_int_equal(miscache_options_set_url(d, "rediss://h"), MISCACHE_OK);
  snprintf(defaults, sizeof defaults, "%s", describe(d));
  miscache_options_free(d);
  int checked = 0;
  for (int s = 0; s < MISCACHE__SET_COUNT; s++) {
    const char *name = miscache__setting_name((miscache__set_t)s);
    int64_t lo, hi;
    const char *kind;
    assert_true(miscache__setting_range((miscache__set_t)s, &lo, &hi, &kind));
    char def[256], want[256], got[256], url[512];
    value_of(defaults, name, def, sizeof def);
    if (!strcmp(kind, "bool"))
      snprintf(want, sizeof want, "%s", strcmp(def, "true") ? "true" : "false");
    else if (!strcmp(kind, "namespace"))
      snprintf(want, sizeof want, "mis.v2:");
    else if (!strcmp(kind, "near"))
      snprintf(want, sizeof want, "permissions,brands,gift-rules");
    else if (!strcmp(kind, "categories"))
      snprintf(want, sizeof want, "master,gift");
    else {
      long long v = strtoll(def, NULL, 10);
      snprintf(want, sizeof want, "%lld", v + 1 <= hi ? v + 1 : v - 1);
    }
    assert_string_not_equal(want, def);
    snprintf(url, sizeof url, "rediss://h?%s=%s", name, want);
    url_value(url, name, got, sizeof got);
    if (strcmp(got, want))
      fail_msg("%s: effective %s, want %s", url, got, want);
    checked++;
  }
  assert_int_equal(checked, MISCACHE__SET_COUNT);

  /* and the fields themselves, through a resolve */
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(
      miscache_options_set_url(
          o, "redis+cluster://a:7000,b:7001?namespace=x:&hash_tags=true&"
             "db_gift=9&ttl_gift_rules=77&near=on&near_max_entries=5&"
             "command_timeout_ms=250&lease=master&pending_max=3"),
      MISCACHE_OK);
  char why[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache__options_resolve(o, why, sizeof why), MISCACHE_OK);
  assert_string_equal(o->ns, "x:");
  assert_true(o->hash_tags);
  assert_int_equal(o->db[MISCACHE_DB_GIFT], 9);
  assert_int_equal(o->db[MISCACHE_DB_CACHE], 1);
  assert_int_equal(o->ttl[MISCACHE_TTL_GIFT_RULES], 77);
  assert_true(o->near.enabled);
  assert_int_equal(o->near.families, MISCACHE__NEAR_DEFAULT);
  assert_int_equal(o->near.max_entries, 5);
  assert_int_equal(o->near.ping_ms, 100);
  assert_int_equal(o->command_timeout_ms, 250);
  assert_int_equal(o->stampede.lease_categories, 1u << MISCACHE_CAT_MASTER);
  assert_int_equal(o->pending_max, 3);
  miscache_options_free(o);
  /* what the TLS layer reads: the endpoint's */
  o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(
                       o, "rediss://h?tls_insecure_skip_verify=true"),
                   MISCACHE_OK);
  assert_int_equal(miscache__options_resolve(o, why, sizeof why), MISCACHE_OK);
  assert_true(o->ep.tls_conf.insecure_skip_verify);
  miscache_options_free(o);
  o = miscache_options_new(); /* the setter's false wins */
  assert_int_equal(miscache_options_set_tls_insecure_skip_verify(o, false),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_url(
                       o, "rediss://h?tls_insecure_skip_verify=true"),
                   MISCACHE_OK);
  assert_int_equal(miscache__options_resolve(o, why, sizeof why), MISCACHE_OK);
  assert_false(o->ep.tls_conf.insecure_skip_verify);
  miscache_options_free(o);
  o = miscache_options_new();
  assert_int_equal(
      miscache_options_set_url(
          o, "redis+cluster://a:7000,b:7001?namespace=x:&near=on&"
             "near_max_entries=5"),
      MISCACHE_OK);
  assert_int_equal(miscache__options_resolve(o, why, sizeof why), MISCACHE_OK);
  /* resolving again changes nothing */
  assert_int_equal(miscache__options_resolve(o, why, sizeof why), MISCACHE_OK);
  assert_string_equal(o->ns, "x:");
  assert_int_equal(o->near.max_entries, 5);
  miscache_options_free(o);
}

/* A setter called in code wins over the URL, whichever came first; a
 * setting the code left alone takes the URL's value. */
static void test_setter_wins(void **state) {
  (void)state;
  unsetenv("MISCACHE_URL");
  const char *url = "redis://h?namespace=url:&db_cache=7&hash_tags=true&"
                    "connect_timeout_ms=77&ttl_session=60&near=permissions&"
                    "near_ping_ms=50&backoff_max_ms=9000";
  for (int order = 0; order < 2; order++) {
    miscache_options_t *o = miscache_options_new();
    if (order == 0) assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
    assert_int_equal(miscache_options_set_namespace(o, "code:"), MISCACHE_OK);
    assert_int_equal(miscache_options_set_db(o, MISCACHE_DB_CACHE, 3),
                     MISCACHE_OK);
    assert_int_equal(miscache_options_set_hash_tags(o, false), MISCACHE_OK);
    miscache_near_t n = {.enabled = true,
                         .families = 1ull << MISCACHE_KF_MASTER_BRANDS};
    assert_int_equal(miscache_options_set_near_cache(o, &n), MISCACHE_OK);
    if (order == 1) assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
    const char *t = describe(o);
    char v[128];
    assert_string_equal(value_of(t, "namespace", v, sizeof v), "code:");
    assert_string_equal(value_of(t, "db_cache", v, sizeof v), "3");
    assert_string_equal(value_of(t, "hash_tags", v, sizeof v), "false");
    assert_string_equal(value_of(t, "near", v, sizeof v), "brands");
    /* left alone by the code: the URL's */
    assert_string_equal(value_of(t, "connect_timeout_ms", v, sizeof v), "77");
    assert_string_equal(value_of(t, "ttl_session", v, sizeof v), "60");
    assert_string_equal(value_of(t, "backoff_max_ms", v, sizeof v), "9000");
    /* a near-cache field the code's struct left 0 */
    assert_string_equal(value_of(t, "near_ping_ms", v, sizeof v), "50");
    miscache_options_free(o);
  }
  /* setters that bound each other with the URL: refused at open, named */
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, "redis://h?backoff_min_ms=8000"),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_backoff(o, 1, 5000), MISCACHE_OK);
  describe(o); /* the setter set both: fine */
  miscache_options_free(o);
  o = miscache_options_new();
  assert_int_equal(miscache_options_set_url(o, "redis://h?max_bulk=200000000"),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_reply_limits(o, 0, 0, 100000000),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_describe(o, text, sizeof text, NULL),
                   MISCACHE_ERR_INVALID);
  assert_non_null(strstr(text, "max_reply_bytes"));
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_ERR_INVALID);
  assert_null(mc);
  assert_non_null(strstr(err, "max_bulk"));
  miscache_options_free(o);
}

/* Malformed settings fail with ERR_URL and a message naming the
 * parameter, never the password. */
static void test_bad_values(void **state) {
  (void)state;
  static const char *const bad[] = {
      "namespace=a*b",          "namespace=" /* 65 bytes below */,
      "hash_tags=yes",          "hash_tags=",
      "connect_timeout_ms=0",   "connect_timeout_ms=-1",
      "connect_timeout_ms=1e3", "command_timeout_ms=99999999999999999999",
      "db_cache=1000001",       "db_cache=x",
      "near=batch-lock",        "near=permissions,,brands",
      "near=sessions",          "near=",
      "near_ping_ms=5",         "ttl_jitter_pct=51",
      "lease=nothing",          "ttl_session=0",
      "max_bulk=10",            "tls_insecure_skip_verify=true",
      "db_cache=1&db_cache=2",  "bogus=1",
      "db=1",                   "namespace",
      "scan_count=1%zz",        "ttl_nosuch=5",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char url[256];
    if (i == 1)
      snprintf(url, sizeof url, "redis://app:Hunter2@h?namespace=%065d", 0);
    else
      snprintf(url, sizeof url, "redis://app:Hunter2@h?%s", bad[i]);
    miscache_options_t *o = miscache_options_new();
    miscache_status_t st = miscache_options_set_url(o, url);
    if (st != MISCACHE_ERR_URL)
      fail_msg("%s gave %s, want ERR_URL", url, miscache_strerror(st));
    const char *m = miscache_options_errmsg(o);
    assert_true(m[0] != 0);
    if (strstr(m, "Hunter2")) fail_msg("%s: message shows the password: %s", url, m);
    miscache_options_free(o);
  }
  /* the same through miscache_url_describe and a unix socket's URL */
  assert_int_equal(miscache_url_describe("unix:///tmp/s?near=off&bogus=2",
                                         text, sizeof text, NULL),
                   MISCACHE_ERR_URL);
  assert_non_null(strstr(text, "bogus"));
  /* describe: too small a buffer says so and gives the length */
  size_t need = 0;
  assert_int_equal(miscache_url_describe("redis://h", NULL, 0, &need),
                   MISCACHE_ERR_INVALID);
  assert_true(need > 100);
  char small[16];
  assert_int_equal(miscache_url_describe("redis://h", small, sizeof small, NULL),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_int_equal(miscache_url_describe("redis://h", small, 0, NULL),
                   MISCACHE_ERR_INVALID);
}

/* MISCACHE_URL configures a program that sets no URL; its errors say where
 * they come from; the password shows as ***. */
static void test_env_url(void **state) {
  (void)state;
  setenv("MISCACHE_URL", "redis://u:Hunter2@envhost:7000?namespace=env:&db_temp=8",
         1);
  const char *t = describe(NULL);
  char v[128];
  assert_string_equal(value_of(t, "hosts", v, sizeof v), "envhost:7000");
  assert_string_equal(value_of(t, "password", v, sizeof v), "***");
  assert_string_equal(value_of(t, "namespace", v, sizeof v), "env:");
  assert_string_equal(value_of(t, "db_temp", v, sizeof v), "8");
  assert_null(strstr(t, "Hunter2"));
  /* a lazily opened handle reads the same settings */
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_lazy_connect(o, true);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  assert_string_equal(miscache_namespace(mc), "env:");
  assert_int_equal(miscache_db_number(mc, MISCACHE_DB_TEMP), 8);
  miscache_free(mc);
  miscache_options_free(o);
  setenv("MISCACHE_URL", "redis://u:Hunter2@envhost?db_temp=99999999", 1);
  assert_int_equal(miscache_options_describe(NULL, text, sizeof text, NULL),
                   MISCACHE_ERR_URL);
  assert_true(strncmp(text, "MISCACHE_URL: ", 14) == 0);
  assert_null(strstr(text, "Hunter2"));
  unsetenv("MISCACHE_URL");
  t = describe(NULL);
  assert_string_equal(value_of(t, "hosts", v, sizeof v), "127.0.0.1:6379");
  assert_string_equal(value_of(t, "password", v, sizeof v), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_parameter),
      cmocka_unit_test(test_setter_wins),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_env_url),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

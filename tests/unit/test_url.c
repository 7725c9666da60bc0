/* URL parsing: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

static char err[MISCACHE_ERRMSG_SIZE];

static miscache__endpoint_t parse_ok(const char *url) {
  miscache__endpoint_t ep;
  memset(&ep, 0, sizeof ep);
  miscache_status_t st = miscache__url_parse(url, &ep, err, sizeof err);
  if (st != MISCACHE_OK) fail_msg("%s: %s", url, err);
  return ep;
}

static void test_tcp_forms(void **state) {
  (void)state;
  miscache__endpoint_t ep = parse_ok("redis://localhost");
  assert_int_equal(ep.kind, MISCACHE__EP_TCP);
  assert_string_equal(ep.host, "localhost");
  assert_int_equal(ep.port, 6379);
  assert_null(ep.user);
  assert_null(ep.password);
  miscache__endpoint_clear(&ep);

  ep = parse_ok("redis://10.1.2.3:6380/");
  assert_string_equal(ep.host, "10.1.2.3");
  assert_int_equal(ep.port, 6380);
  miscache__endpoint_clear(&ep);

  ep = parse_ok("redis://[::1]:7000");
  assert_string_equal(ep.host, "::1");
  assert_int_equal(ep.port, 7000);
  miscache__endpoint_clear(&ep);
}

static void test_credentials(void **state) {
  (void)state;
  miscache__endpoint_t ep = parse_ok("redis://:s3cret@h:1");
  assert_null(ep.user);
  assert_string_equal(ep.password, "s3cret");
  miscache__endpoint_clear(&ep);

  ep = parse_ok("redis://app:p%40ss%3Aw@h");
  assert_string_equal(ep.user, "app");
  assert_string_equal(ep.password, "p@ss:w");
  miscache__endpoint_clear(&ep);

  /* the last @ ends the user info */
  ep = parse_ok("redis://u:a@b@host:2");
  assert_string_equal(ep.password, "a@b");
  assert_string_equal(ep.host, "host");
  miscache__endpoint_clear(&ep);

  /* an unencoded '/' or '?' in the password is still the password */
  ep = parse_ok("redis://u:a/b?c@h:3/");
  assert_string_equal(ep.password, "a/b?c");
  assert_int_equal(ep.port, 3);
  miscache__endpoint_clear(&ep);

  ep = parse_ok("redis://onlypass@h");
  assert_null(ep.user);
  assert_string_equal(ep.password, "onlypass");
  miscache__endpoint_clear(&ep);
}

static void test_tls_and_sentinel(void **state) {
  (void)state;
  miscache__endpoint_t ep = parse_ok("rediss://u:p@cache.example:6380");
  assert_int_equal(ep.kind, MISCACHE__EP_TCP);
  assert_true(ep.tls);
  assert_string_equal(ep.host, "cache.example");
  assert_int_equal(ep.port, 6380);
  assert_null(ep.tls_conf.cacert);
  miscache__endpoint_clear(&ep);

  ep = parse_ok("rediss://h?cacert=/etc/ca%20x.pem&cert=/c.pem&key=/k%40.pem");
  assert_string_equal(ep.tls_conf.cacert, "/etc/ca x.pem");
  assert_string_equal(ep.tls_conf.cert, "/c.pem");
  assert_string_equal(ep.tls_conf.key, "/k@.pem");
  assert_false(ep.tls_conf.insecure_skip_verify);
  miscache__endpoint_clear(&ep);

  ep = parse_ok("redis+sentinel://:pw@s1,s2:26380,[::1]:7/my%2Dmaster"
                "?sentinel_user=su&sentinel_password=sp");
  assert_int_equal(ep.kind, MISCACHE__EP_SENTINEL);
  assert_false(ep.tls);
  assert_string_equal(ep.password, "pw");
  assert_string_equal(ep.master, "my-master");
  assert_int_equal(ep.naddrs, 3);
  assert_string_equal(ep.addrs[0].host, "s1");
  assert_int_equal(ep.addrs[0].port, 26379);
  assert_string_equal(ep.addrs[1].host, "s2");
  assert_int_equal(ep.addrs[1].port, 26380);
  assert_string_equal(ep.addrs[2].host, "::1");
  assert_int_equal(ep.addrs[2].port, 7);
  assert_string_equal(ep.sentinel_user, "su");
  assert_string_equal(ep.sentinel_password, "sp");
  miscache__endpoint_t copy;
  assert_int_equal(miscache__endpoint_copy(&copy, &ep), MISCACHE_OK);
  assert_string_equal(copy.addrs[2].host, "::1");
  assert_string_equal(copy.master, "my-master");
  miscache__endpoint_clear(&copy);
  miscache__endpoint_clear(&ep);

  ep = parse_ok("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002/");
  assert_int_equal(ep.kind, MISCACHE__EP_CLUSTER);
  assert_string_equal(ep.password, "pw");
  assert_int_equal(ep.naddrs, 3);
  assert_int_equal(ep.addrs[0].port, 7000);
  assert_string_equal(ep.addrs[1].host, "10.0.0.2");
  assert_int_equal(ep.addrs[1].port, 6379);
  assert_string_equal(ep.addrs[2].host, "::1");
  miscache__endpoint_clear(&ep);
  ep = parse_ok("rediss+cluster://c1:7000?cacert=ca.pem");
  assert_true(ep.tls);
  assert_int_equal(ep.kind, MISCACHE__EP_CLUSTER);
  miscache__endpoint_clear(&ep);

  ep = parse_ok("rediss+sentinel://s1/m?cacert=ca.pem");
  assert_true(ep.tls);
  assert_int_equal(ep.kind, MISCACHE__EP_SENTINEL);
  assert_string_equal(ep.tls_conf.cacert, "ca.pem");
  miscache__endpoint_clear(&ep);
}

static void test_unix(void **state) {
  (void)state;
  miscache__endpoint_t ep = parse_ok("unix:///run/redis/redis.sock");
  assert_int_equal(ep.kind, MISCACHE__EP_UNIX);
  assert_string_equal(ep.path, "/run/redis/redis.sock");
  miscache__endpoint_clear(&ep);
}

static void test_rejects(void **state) {
  (void)state;
  static const char *bad[] = {
      "",
      "localhost:6379",
      "http://h",
      "rediss://h?cacert=",
      "rediss://h?cacert=a&cacert=b",
      "rediss://h?cert=c.pem",
      "rediss://h?bogus=1",
      "rediss://h?",
      "rediss://h?&",
      "redis://h?cacert=ca.pem",
      "redis://h?sentinel_password=x",
      "redis://a:1,b:2",
      "redis+sentinel://s1:26379",
      "redis+sentinel://s1:26379/",
      "redis+sentinel://s1:26379,/m",
      "redis+sentinel://s1:0/m",
      "redis+sentinel://s1/a/b",
      "redis+cluster://h/0",
      "redis+cluster://h,",
      "redis+cluster://h?sentinel_user=x",
      "redis+tls://h",
      "redis://",
      "redis://:6379",
      "redis://h:",
      "redis://h:0",
      "redis://h:65536",
      "redis://h:12a",
      "redis://h:99999999999999999999",
      "redis://h/0",
      "redis://h?db=1",
      "redis://h#x",
      "redis://[::1",
      "redis://[::1]x",
      "redis://u:@h",
      "redis://u:%zz@h",
      "redis://u:%00@h",
      "redis://h h",
      "redis://h\n",
      "unix://relative.sock",
      "unix://",
      "unix:///a?b",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    miscache__endpoint_t ep;
    memset(&ep, 0, sizeof ep);
    err[0] = 0;
    miscache_status_t st = miscache__url_parse(bad[i], &ep, err, sizeof err);
    if (st != MISCACHE_ERR_URL)
      fail_msg("\"%s\" gave status %d, want ERR_URL", bad[i], st);
    assert_true(err[0] != 0);
    assert_null(ep.host);
    assert_null(ep.password);
  }
  miscache__endpoint_t ep;
  assert_int_equal(miscache__url_parse(NULL, &ep, err, sizeof err),
                   MISCACHE_ERR_INVALID);
}

/* The public setter: a bad URL changes nothing and explains itself. */
static void test_options_set_url(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_non_null(o);
  assert_int_equal(miscache_options_set_url(o, "redis://a:1"), MISCACHE_OK);
  assert_string_equal(miscache_options_errmsg(o), "");
  assert_int_equal(miscache_options_set_url(o, "redis://b:0"),
                   MISCACHE_ERR_URL);
  assert_true(strstr(miscache_options_errmsg(o), "port") != NULL);
  assert_string_equal(o->ep.host, "a");
  assert_int_equal(o->ep.port, 1);
  assert_int_equal(miscache_options_set_url(NULL, "redis://a"),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_url(o, NULL), MISCACHE_ERR_INVALID);
  miscache_options_free(o);
  miscache_options_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tcp_forms),   cmocka_unit_test(test_credentials),
      cmocka_unit_test(test_unix),
      cmocka_unit_test(test_tls_and_sentinel),        cmocka_unit_test(test_rejects),
      cmocka_unit_test(test_options_set_url),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

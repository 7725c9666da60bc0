/* TLS against redis-server --tls-port with certificates the harness makes
 * with openssl in the server's temp dir: a round trip, a wrong CA, a name
 * mismatch, an expired certificate, a plain port, mutual TLS with and
 * without a client certificate, the insecure option, the miscache tool's
 * exit status, and a server restart in the middle of a loop. The typed
 * APIs over TLS are covered by the *_tls runs of the integration programs
 * (same code, MT_TLS=1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fixture.h"

static int group_setup(void **state) {
  (void)state;
  if (mt_server_start_tls(&mt_srv, NULL, NULL) != 0) return -1;
  mt_rc = mt_raw(&mt_srv, NULL);
  return mt_rc ? 0 : -1;
}

/* Opens url (eager connect); the status, and the message in err. */
static miscache_status_t try_open(const char *url, miscache_options_t *o,
                                  char *err, size_t errlen) {
  miscache_options_t *own = o ? o : miscache_options_new();
  assert_non_null(own);
  assert_int_equal(miscache_options_set_url(own, url), MISCACHE_OK);
  miscache_t *mc = NULL;
  err[0] = 0;
  miscache_status_t st = miscache_open(own, &mc, err, errlen);
  if (st == MISCACHE_OK) {
    /* a round trip proves the session works */
    assert_int_equal(miscache_ping(mc), MISCACHE_OK);
    miscache_free(mc);
  } else {
    assert_null(mc);
  }
  if (!o) miscache_options_free(own);
  return st;
}

static void expect_tls_error(const char *url, const char *words) {
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = try_open(url, NULL, err, sizeof err);
  printf("  %s\n    -> %s: %s\n", url, miscache_strerror(st), err);
  assert_int_equal(st, MISCACHE_ERR_TLS);
  if (!strstr(err, words)) fail_msg("\"%s\" does not say \"%s\"", err, words);
}

static void test_round_trip(void **state) {
  (void)state;
  /* 3 MB through TLS takes a while under valgrind */
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_command_timeout(o, 20000), MISCACHE_OK);
  /* and the handshake with its PING, which the connect timeout bounds */
  assert_int_equal(miscache_options_set_connect_timeout(o, 20000), MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(mc, &ls, sizeof ls), MISCACHE_OK);
  assert_string_equal(ls.transport, "tls");
  json_t *v = json_pack("{s:s,s:i}", "name", "kim", "n", 7);
  assert_int_equal(
      miscache_set(mc, MISCACHE_DB_CACHE, "master:departments", v,
                   MISCACHE_TTL_MASTER_DATA),
      MISCACHE_OK);
  /* the server has it, read over the plain unix socket */
  char *raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "master:departments");
  assert_non_null(raw);
  assert_non_null(strstr(raw, "\"kim\""));
  free(raw);
  assert_true(mt_raw_pttl(mc, MISCACHE_DB_CACHE, "master:departments") > 0);
  json_t *out = NULL;
  assert_int_equal(
      miscache_get(mc, MISCACHE_DB_CACHE, "master:departments", &out),
      MISCACHE_OK);
  assert_true(json_equal(v, out));
  json_decref(out);
  /* a large value crosses many TLS records */
  char *big = malloc(3 << 20);
  assert_non_null(big);
  memset(big, 'x', 3 << 20);
  big[(3 << 20) - 1] = 0;
  json_t *bv = json_string(big);
  free(big);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "master:brands", bv,
                                MISCACHE_TTL_MASTER_DATA),
                   MISCACHE_OK);
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "master:brands", &out),
                   MISCACHE_OK);
  assert_true(json_equal(bv, out));
  json_decref(out);
  json_decref(bv);
  json_decref(v);
  miscache_free(mc);
}

static void test_certificate_errors(void **state) {
  (void)state;
  char url[512];
  snprintf(url, sizeof url, "rediss://127.0.0.1:%d?cacert=%s/rogue-ca.crt",
           mt_srv.port, mt_srv.dir);
  expect_tls_error(url, "unknown CA");
  /* the system trust store does not know the test CA either */
  snprintf(url, sizeof url, "rediss://127.0.0.1:%d", mt_srv.port);
  expect_tls_error(url, "unknown CA");
  /* a CA file that is not there */
  snprintf(url, sizeof url, "rediss://127.0.0.1:%d?cacert=%s/nope.crt",
           mt_srv.port, mt_srv.dir);
  expect_tls_error(url, "nope.crt");

  /* servers with the wrong-name and the expired certificate */
  mt_server_t other, expired;
  assert_int_equal(mt_server_start_tls(&other, "other.crt", NULL), 0);
  snprintf(url, sizeof url, "rediss://127.0.0.1:%d?cacert=%s/ca.crt",
           other.port, other.dir);
  expect_tls_error(url, "name mismatch");
  snprintf(url, sizeof url, "rediss://localhost:%d?cacert=%s/ca.crt",
           other.port, other.dir);
  expect_tls_error(url, "name mismatch");
  mt_server_stop(&other);
  assert_int_equal(mt_server_start_tls(&expired, "expired.crt", NULL), 0);
  snprintf(url, sizeof url, "rediss://localhost:%d?cacert=%s/ca.crt",
           expired.port, expired.dir);
  expect_tls_error(url, "expired");

  /* ...and the option for throw-away certificates accepts it */
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_tls_insecure_skip_verify(o, true),
                   MISCACHE_OK);
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(try_open(url, o, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  mt_server_stop(&expired);

  /* a plain server's port spoken to with TLS */
  mt_server_t plain;
  assert_int_equal(mt_server_start(&plain, NULL), 0);
  snprintf(url, sizeof url, "rediss://127.0.0.1:%d?cacert=%s/ca.crt",
           plain.port, mt_srv.dir);
  /* Redis waits for the rest of a "command" that never comes */
  o = miscache_options_new();
  assert_int_equal(miscache_options_set_connect_timeout(o, 300), MISCACHE_OK);
  assert_int_equal(try_open(url, o, err, sizeof err), MISCACHE_ERR_UNAVAILABLE);
  printf("  %s\n    -> %s\n", url, err);
  assert_non_null(strstr(err, "TLS handshake timed out"));
  miscache_options_free(o);
  mt_server_stop(&plain);
}

static void test_mutual_tls(void **state) {
  (void)state;
  const char *args[] = {"--tls-auth-clients", "yes", NULL};
  mt_server_t s;
  assert_int_equal(mt_server_start_tls(&s, NULL, args), 0);
  char url[768];
  /* without a client certificate: refused, and the caller is told now */
  snprintf(url, sizeof url, "rediss://localhost:%d?cacert=%s/ca.crt", s.port,
           s.dir);
  expect_tls_error(url, "certificate");
  /* with one, given as URL parameters */
  snprintf(url, sizeof url,
           "rediss://localhost:%d?cacert=%s/ca.crt&cert=%s/client.crt&key=%s/"
           "client.key",
           s.port, s.dir, s.dir, s.dir);
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(try_open(url, NULL, err, sizeof err), MISCACHE_OK);
  /* and by the option setter */
  miscache_options_t *o = miscache_options_new();
  char ca[256], crt[256], key[256];
  snprintf(ca, sizeof ca, "%s/ca.crt", s.dir);
  snprintf(crt, sizeof crt, "%s/client.crt", s.dir);
  snprintf(key, sizeof key, "%s/client.key", s.dir);
  assert_int_equal(miscache_options_set_tls(o, ca, crt, key), MISCACHE_OK);
  assert_int_equal(miscache_options_set_tcp(o, "localhost", s.port),
                   MISCACHE_OK);
  miscache_t *mc = NULL;
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  miscache_free(mc);
  /* a key that does not belong to the certificate */
  assert_int_equal(miscache_options_set_tls(o, ca, crt, ca), MISCACHE_OK);
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_ERR_TLS);
  assert_non_null(strstr(err, "private key"));
  assert_int_equal(miscache_options_set_tls(o, ca, crt, NULL),
                   MISCACHE_ERR_INVALID);
  miscache_options_free(o);
  mt_server_stop(&s);
}

static void test_cli_exit_status(void **state) {
  (void)state;
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "%s --url 'rediss://127.0.0.1:%d?cacert=%s/rogue-ca.crt' stats "
           ">/dev/null 2>%s/cli.err",
           MT_CLI, mt_srv.port, mt_srv.dir, mt_srv.dir);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 3);
  snprintf(cmd, sizeof cmd, "grep -q 'unknown CA' %s/cli.err", mt_srv.dir);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "%s --url '%s' stats >/dev/null 2>&1", MT_CLI,
           mt_srv.url);
  st = system(cmd);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_restart_mid_loop(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_backoff(o, 20, 200), MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  redisFree(mt_rc);
  mt_rc = NULL;
  long ok_before = 0, ok_after = 0, failed = 0, wrong = 0;
  for (int i = 0; i < 600; i++) {
    if (i == 200) mt_server_kill(&mt_srv);
    if (i == 250) assert_int_equal(mt_server_restart(&mt_srv), 0);
    char key[32];
    snprintf(key, sizeof key, "master:dept:%d", i);
    json_t *v = json_integer(i), *out = NULL;
    miscache_status_t st =
        miscache_set(mc, MISCACHE_DB_CACHE, key, v, MISCACHE_TTL_MASTER_DATA);
    if (st == MISCACHE_OK)
      st = miscache_get(mc, MISCACHE_DB_CACHE, key, &out);
    if (st == MISCACHE_OK) {
      if (!json_equal(v, out)) wrong++;
      i < 200 ? ok_before++ : ok_after++;
    } else {
      assert_int_equal(st, MISCACHE_ERR_UNAVAILABLE);
      failed++;
      mt_sleep_ms(5);
    }
    json_decref(out);
    json_decref(v);
  }
  miscache_link_stats_t ls;
  assert_int_equal(miscache_link_stats(mc, &ls, sizeof ls), MISCACHE_OK);
  printf("  %ld ok before the restart, %ld after, %ld unavailable, %llu "
         "connects\n",
         ok_before, ok_after, failed, (unsigned long long)ls.connects);
  assert_int_equal(ok_before, 200);
  assert_int_equal(wrong, 0);
  assert_true(failed >= 50); /* calls 200..249 met a dead server */
  assert_true(ok_after > 300);
  assert_true(ls.connects >= 2);
  mt_rc = mt_raw(&mt_srv, NULL);
  assert_non_null(mt_rc);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_certificate_errors),
      cmocka_unit_test(test_mutual_tls),
      cmocka_unit_test(test_cli_exit_status),
      cmocka_unit_test(test_restart_mid_loop),
  };
  return cmocka_run_group_tests(tests, group_setup, mt_group_teardown);
}

/* The miscache binary, run for real against the test server: output and
 * exit status of each subcommand, bad URL, refused connection, bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fixture.h"

static char out[65536];

/* Runs "miscache ARGS" with MISCACHE_URL (and stdin text when given);
 * output (stdout+stderr) into out; returns the exit status. */
static int run(const char *input, const char *args) {
  char cmd[4096];
  /* input is printf's format, so its \n become newlines */
  snprintf(cmd, sizeof cmd, "%s%s%s MISCACHE_URL='%s' %s %s 2>&1",
           input ? "printf '" : "", input ? input : "", input ? "' |" : "",
           mt_srv.url, MT_CLI, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The CLI uses no namespace: keys here are written without one. */
static miscache_t *plain(void) {
  miscache_t *mc = NULL;
  assert_int_equal(miscache_open_url(mt_srv.url, &mc, NULL, 0), MISCACHE_OK);
  return mc;
}

static void test_usage_and_connection_errors(void **state) {
  (void)state;
  assert_int_equal(run(NULL, "--help"), 0);
  assert_non_null(strstr(out, "invalidate EVENT"));
  assert_int_equal(run(NULL, "get --help"), 0);
  assert_non_null(strstr(out, "gift-classification"));
  assert_int_equal(run(NULL, "frobnicate"), 2);
  assert_non_null(strstr(out, "unknown command"));
  assert_int_equal(run(NULL, ""), 2);
  assert_int_equal(run(NULL, "--url http://x stats"), 2);
  assert_non_null(strstr(out, "scheme"));
  assert_int_equal(run(NULL, "--url redis://127.0.0.1:1 stats"), 3);
  assert_non_null(strstr(out, "refused"));
  assert_int_equal(run(NULL, "get session"), 2);
  assert_int_equal(run(NULL, "get nope 1"), 2);
  assert_int_equal(run(NULL, "health abc"), 2);
  /* arguments are checked before connecting: with no server at all, a
   * usage error is still 2 */
  const char *dead = "--url redis://127.0.0.1:1 ";
  static const char *const usage_errors[] = {
      "get nosuchkind 1", "get session", "get daily-sales 2026-11-24",
      "get permissions abc", "unlock batch:lock:1", "unlock nolock:1 --force",
      "health abc", "health 1 --date 2026-11-24", "invalidate nosuch 1",
      "invalidate daily 2026-11-24", "invalidate company ten", "key session",
      "queue", "takeover"};
  for (size_t i = 0; i < sizeof usage_errors / sizeof *usage_errors; i++) {
    char args[256];
    snprintf(args, sizeof args, "%s%s", dead, usage_errors[i]);
    int rc = run(NULL, args);
    if (rc != 2) fail_msg("miscache %s: exit %d, want 2: %s", args, rc, out);
  }
  /* and a call that needs the server says so with 3 */
  assert_int_equal(run(NULL, "--url redis://127.0.0.1:1 get session 1"), 3);
  /* a mistyped scheme never prints the password */
  assert_int_equal(run(NULL, "--url rediss//app:Hunter2@host stats"), 2);
  assert_non_null(strstr(out, "scheme"));
  assert_null(strstr(out, "Hunter2"));
  assert_null(strstr(out, "app"));
}

static void test_get_and_invalidate(void **state) {
  (void)state;
  miscache_t *mc = plain();
  miscache_session_t s = {.user_id = 5, .username = "kim"};
  assert_int_equal(miscache_session_set(mc, &s), MISCACHE_OK);
  json_t *perm = json_pack("{s:{s:b}}", "m", "read", 1);
  assert_int_equal(miscache_permissions_set(mc, 5, perm), MISCACHE_OK);
  json_decref(perm);
  assert_int_equal(run(NULL, "get session 5"), 0);
  json_error_t je;
  json_t *env = json_loads(out, 0, &je);
  assert_non_null(env);
  assert_string_equal(json_string_value(json_object_get(env, "key")),
                      "session:user:5");
  assert_true(json_integer_value(json_object_get(env, "ttl_seconds")) > 86000);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(env, "value"), "user_id")),
                   5);
  json_decref(env);
  assert_int_equal(run(NULL, "get session 6"), 1);
  assert_non_null(strstr(out, "not in the cache"));

  assert_int_equal(run(NULL, "invalidate permissions 5 --dry-run"), 0);
  assert_non_null(strstr(out, "would remove permissions:user:5"));
  assert_non_null(strstr(out, "would remove 2 keys"));
  bool e = false;
  miscache_exists(mc, MISCACHE_DB_SESSION, "session:user:5", &e);
  assert_true(e);
  assert_int_equal(run(NULL, "invalidate permissions 5"), 0);
  assert_non_null(strstr(out, "removed 2 keys"));
  miscache_exists(mc, MISCACHE_DB_SESSION, "session:user:5", &e);
  assert_false(e);
  assert_int_equal(run(NULL, "invalidate daily 2026-11-24"), 2);
  assert_int_equal(run(NULL, "invalidate nope 1"), 2);
  miscache_free(mc);
}

static void test_locks(void **state) {
  (void)state;
  miscache_t *mc = plain();
  miscache_lock_t *l = NULL;
  assert_int_equal(miscache_batch_lock_acquire(mc, 3, "runner@host", "b-9", &l),
                   MISCACHE_OK);
  assert_int_equal(run(NULL, "locks"), 0);
  assert_non_null(strstr(out, "batch:lock:3"));
  assert_non_null(strstr(out, "runner@host"));
  assert_non_null(strstr(out, "b-9"));
  assert_int_equal(run(NULL, "locks 30"), 0);
  assert_null(strstr(out, "batch:lock:3"));
  assert_int_equal(run(NULL, "unlock batch:lock:3"), 2);
  bool e = false;
  miscache_exists(mc, MISCACHE_DB_BATCH, "batch:lock:3", &e);
  assert_true(e);
  assert_int_equal(run(NULL, "unlock batch:lock:3 --force"), 0);
  assert_non_null(strstr(out, "removed batch:lock:3"));
  miscache_exists(mc, MISCACHE_DB_BATCH, "batch:lock:3", &e);
  assert_false(e);
  assert_int_equal(run(NULL, "unlock batch:lock:3 --force"), 1);
  assert_int_equal(run(NULL, "unlock session:user:1 --force"), 2);
  miscache_lock_free(l);
  miscache_free(mc);
}

static void test_stats(void **state) {
  (void)state;
  assert_int_equal(run(NULL, "stats"), 0);
  assert_non_null(strstr(out, "hit rate"));
  assert_int_equal(run(NULL, "stats --json"), 0);
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  assert_non_null(j);
  assert_non_null(json_object_get(json_object_get(j, "dbs"), "gift"));
  json_decref(j);
  assert_int_equal(run(NULL, "stats --prometheus"), 0);
  /* every line is a comment or a miscache_ sample */
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
    if (line[0] != '#' && strncmp(line, "miscache_", 9) != 0)
      fail_msg("not exposition format: %s", line);
  /* the near cache's figures: zero while it is off */
  assert_int_equal(run(NULL, "stats --prometheus"), 0);
  assert_non_null(strstr(out, "\nmiscache_near_reads_total{result=\"hit\"} 0\n"));
  assert_non_null(strstr(out, "\nmiscache_near_connected 0\n"));
  /* on: the tool's handle starts its invalidation connection */
  assert_int_equal(run(NULL, "--near stats --prometheus"), 0);
  assert_non_null(strstr(out, "# TYPE miscache_near_flushes_total counter"));
  assert_int_equal(run(NULL, "stats --xml"), 2);
}

static void test_health(void **state) {
  (void)state;
  miscache_t *mc = plain();
  assert_int_equal(run(NULL, "health 40"), 4); /* missing */
  miscache_batch_config_t c = {.page_size = 30};
  miscache_batch_config_set(mc, 40, &c);
  assert_int_equal(run(NULL, "health 40"), 4); /* gift still missing */
  miscache_gift_rules_t r = {.auto_classify = true};
  miscache_gift_rules_set(mc, 40, &r);
  assert_int_equal(run(NULL, "health 40"), 1); /* batch partial */
  assert_non_null(strstr(out, "batch: partial"));
  miscache_batch_status_t s = {.status = "completed"};
  miscache_batch_status_set(mc, 40, &s);
  assert_int_equal(run(NULL, "health 40"), 0);
  assert_non_null(strstr(out, "gift:  healthy"));
  miscache_free(mc);
}

static void test_classify(void **state) {
  (void)state;
  miscache_t *mc = plain();
  const char *input = "{\"product_code\":\"X1\",\"product_name\":\"[\xec\x82\xac"
                      "\xec\x9d\x80\xed\x92\x88] a\",\"supply_price\":3000}\\n"
                      "{\"product_code\":\"X2\",\"product_name\":\"b\","
                      "\"supply_price\":100}\\n";
  assert_int_equal(run(input, "classify --company 50"), 1); /* no rules */
  assert_non_null(strstr(out, "no gift rules"));
  miscache_gift_rules_t r = {0};
  miscache_strings_push(&r.keywords, "\xec\x82\xac\xec\x9d\x80\xed\x92\x88");
  assert_int_equal(miscache_gift_rules_set(mc, 50, &r), MISCACHE_OK);
  miscache_gift_rules_clear(&r);
  assert_int_equal(run(input, "classify --company 50"), 0);
  char *second = strchr(out, '\n');
  assert_non_null(second);
  *second++ = 0;
  json_error_t je;
  json_t *a = json_loads(out, 0, &je), *b = json_loads(second, 0, &je);
  assert_string_equal(json_string_value(json_object_get(a, "product_type")),
                      "GIFT");
  assert_string_equal(json_string_value(json_object_get(b, "product_type")),
                      "REVENUE");
  json_decref(a);
  json_decref(b);
  /* the run stored them: the library now reads them from the cache */
  bool e = false;
  miscache_exists(mc, MISCACHE_DB_GIFT, "gift:classification:X1:50", &e);
  assert_true(e);
  assert_int_equal(run(NULL, "classify"), 2);
  miscache_free(mc);
}

static void test_queue(void **state) {
  (void)state;
  miscache_t *mc = plain();
  json_t *b = json_pack("{s:i}", "n", 1);
  const json_t *bs[2] = {b, b};
  assert_int_equal(miscache_queue_enqueue(mc, "cliq", 2, bs, NULL, NULL, NULL),
                   MISCACHE_OK);
  miscache_queue_msg_t m[2];
  size_t got = 0, dead = 0;
  assert_int_equal(miscache_queue_pull(mc, "cliq", "g", "c", 1, 0, m, &got),
                   MISCACHE_OK);
  assert_int_equal(miscache_queue_fail(mc, "cliq", m[0].id, "db down"),
                   MISCACHE_OK);
  miscache_queue_msg_clear(&m[0]);
  mt_sleep_ms(5);
  miscache_queue_opts_t o = {.max_deliveries = 1, .reclaim_idle_ms = 1};
  assert_int_equal(
      miscache_queue_reclaim(mc, "cliq", "g", "c", 2, &o, m, &got, &dead),
      MISCACHE_OK);
  assert_int_equal(dead, 1);
  assert_int_equal(run(NULL, "queue cliq --group=g"), 0);
  assert_non_null(strstr(out, "length         1"));
  assert_non_null(strstr(out, "dead letters   1"));
  assert_non_null(strstr(out, "consumers      1"));
  assert_int_equal(run(NULL, "queue cliq --dead"), 0);
  assert_non_null(strstr(out, "error=db down"));
  assert_non_null(strstr(out, "{\"n\":1}"));
  assert_int_equal(run(NULL, "queue 'a b'"), 2);
  /* refresh puts a request on the refresh queue */
  assert_int_equal(run(NULL, "refresh 7 --date 20261125"), 0);
  assert_non_null(strstr(out, "refresh of company 7"));
  got = 0;
  miscache_queue_msg_t rq;
  assert_int_equal(miscache_queue_pull(mc, "refresh", "svc", "s", 1, 0, &rq,
                                       &got),
                   MISCACHE_OK);
  assert_int_equal(got, 1);
  assert_string_equal(json_string_value(json_object_get(rq.body, "op")),
                      "refresh_post_batch");
  assert_int_equal(json_integer_value(json_object_get(rq.body, "company")), 7);
  miscache_queue_msg_clear(&rq);
  assert_int_equal(run(NULL, "refresh x"), 2);
  json_decref(b);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queue),
      cmocka_unit_test(test_usage_and_connection_errors),
      cmocka_unit_test(test_get_and_invalidate),
      cmocka_unit_test(test_locks),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_health),
      cmocka_unit_test(test_classify),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

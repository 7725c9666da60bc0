/* Batch config/status/history, and the batch run helper's whole flow. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"

static void today(char d[9]) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(d, 9, "%Y%m%d", &tm);
}

static int config_loads;
static miscache_status_t load_config(void *ud, int64_t company,
                                     miscache_batch_config_t *out) {
  (void)ud;
  config_loads++;
  out->batch_enabled = true;
  out->batch_hour = 2;
  out->page_size = 30;
  out->retry_count = (int64_t)company;
  out->auto_gift_classify = true;
  miscache_strings_push(&out->gift_keywords, "\xec\x82\xac\xec\x9d\x80\xed\x92\x88");
  miscache_strings_push(&out->gift_keywords, "\xeb\xac\xb4\xeb\xa3\x8c");
  out->last_updated = strdup("2026-11-24T00:00:00Z");
  return MISCACHE_OK;
}

static void test_config_status_history(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_batch_config_t c;
  miscache_source_t src;
  config_loads = 0;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(miscache_batch_config_get_or_load(mc, 3, load_config, NULL,
                                                       &c, &src),
                     MISCACHE_OK);
    assert_int_equal(src, i ? MISCACHE_SOURCE_CACHE : MISCACHE_SOURCE_LOADED);
    assert_true(c.batch_enabled);
    assert_int_equal(c.page_size, 30);
    assert_int_equal(c.retry_count, 3);
    assert_int_equal(c.gift_keywords.count, 2);
    assert_string_equal(c.gift_keywords.items[1], "\xeb\xac\xb4\xeb\xa3\x8c");
    miscache_batch_config_clear(&c);
  }
  assert_int_equal(config_loads, 1);
  assert_int_equal(mt_raw_exists_in(mc, 4, "batch:config:3"), 1);
  long long p = mt_raw_pttl(mc, MISCACHE_DB_BATCH, "batch:config:3");
  assert_true(p > 86395000 && p <= 86400000);
  /* a cached config of the wrong shape is replaced by the loader */
  json_t *bad = json_pack("{s:s}", "page_size", "thirty");
  miscache_set(mc, MISCACHE_DB_BATCH, mt_key("batch:config:3"), bad,
               MISCACHE_TTL_BATCH_CONFIG);
  json_decref(bad);
  assert_int_equal(miscache_batch_config_get(mc, 3, &c), MISCACHE_ERR_DECODE);
  assert_int_equal(
      miscache_batch_config_get_or_load(mc, 3, load_config, NULL, &c, &src),
      MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  assert_int_equal(config_loads, 2);
  miscache_batch_config_clear(&c);

  miscache_batch_status_t s = {0};
  s.status = "running";
  s.batch_id = "b1";
  s.progress.total_pages = 50;
  assert_int_equal(miscache_batch_status_set(mc, 3, &s), MISCACHE_OK);
  p = mt_raw_pttl(mc, MISCACHE_DB_BATCH, "batch:status:3");
  assert_true(p > 3595000 && p <= 3600000);
  miscache_batch_progress_t pr = {50, 23, 1500, 690, 125, {0}};
  assert_int_equal(miscache_batch_status_progress(mc, 3, &pr, "data_collection"),
                   MISCACHE_OK);
  miscache_batch_status_t back;
  assert_int_equal(miscache_batch_status_get(mc, 3, &back), MISCACHE_OK);
  assert_string_equal(back.status, "running");
  assert_string_equal(back.current_step, "data_collection");
  assert_int_equal(back.progress.processed_records, 690);
  assert_int_equal(back.progress.classified_gifts, 125);
  miscache_batch_status_clear(&back);
  assert_int_equal(miscache_batch_status_progress(mc, 4, &pr, NULL),
                   MISCACHE_MISS);

  miscache_batch_history_t h = {0};
  h.status = "completed";
  h.duration_seconds = 180;
  h.summary.gifts_identified = 125;
  assert_int_equal(miscache_batch_history_set(mc, 3, "20261124", &h),
                   MISCACHE_OK);
  p = mt_raw_pttl(mc, MISCACHE_DB_BATCH, "batch:history:3:20261124");
  assert_true(p > 604795000 && p <= 604800000);
  miscache_batch_history_t hb;
  assert_int_equal(miscache_batch_history_get(mc, 3, "20261124", &hb),
                   MISCACHE_OK);
  assert_int_equal(hb.duration_seconds, 180);
  assert_int_equal(hb.summary.gifts_identified, 125);
  miscache_batch_history_clear(&hb);
  assert_int_equal(miscache_batch_history_get(mc, 3, "2026112", &hb),
                   MISCACHE_ERR_KEY);
  miscache_free(mc);
}

typedef struct {
  int calls;
  int sleep_ms;
  miscache_t *rival; /* tries to take the lock while the work runs */
  miscache_status_t rival_st;
  long long pttl_seen;
  bool steal;        /* replace the lock with a rival's during the work */
  miscache_status_t report_st;
  miscache_status_t result;
} work_t;

static miscache_status_t work(void *ud, miscache_batch_run_t *run) {
  work_t *w = ud;
  w->calls++;
  const miscache_batch_config_t *c = miscache_batch_run_config(run);
  assert_int_equal(strncmp(miscache_batch_run_id(run), "5-", 2), 0);
  assert_int_equal(c->page_size, 30);
  miscache_batch_progress_t p = {2, 1, 60, 30, 4, {0}};
  assert_int_equal(miscache_batch_run_report(run, &p, "data_collection"),
                   MISCACHE_OK);
  miscache_batch_status_t s;
  assert_int_equal(miscache_batch_status_get(miscache_batch_run_handle(run), 5,
                                             &s),
                   MISCACHE_OK);
  assert_string_equal(s.status, "running");
  assert_int_equal(s.progress.processed_records, 30);
  miscache_batch_status_clear(&s);
  if (w->steal) {
    char full[128];
    snprintf(full, sizeof full, "%s%s",
             miscache_namespace(miscache_batch_run_handle(run)),
             mt_key("batch:lock:5"));
    freeReplyObject(
        mt_cmd_in(mt_rc, 4, "SET %s {\"token\":\"rival\"} PX 60000", full));
  }
  for (int t = 0; t < w->sleep_ms; t += 100) {
    mt_sleep_ms(100);
    if (w->rival && t == w->sleep_ms / 2) {
      miscache_lock_t *l = NULL;
      w->rival_st = miscache_batch_lock_acquire(w->rival, 5, "rival", NULL, &l);
      miscache_lock_free(l);
      w->pttl_seen = mt_raw_pttl(w->rival, MISCACHE_DB_BATCH, "batch:lock:5");
    }
  }
  p = (miscache_batch_progress_t){2, 2, 60, 60, 9, {0}};
  w->report_st = miscache_batch_run_report(run, &p, "classification");
  miscache_batch_summary_t *sum = miscache_batch_run_summary(run);
  sum->orders_processed = 20;
  sum->products_processed = 60;
  sum->gifts_identified = 9;
  sum->revenue_products = 51;
  if (w->result != MISCACHE_OK)
    miscache_batch_run_error(run, "ERP page 2: HTTP 500");
  return w->result;
}

static void test_run_success_and_refusal(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  work_t w = {0};
  miscache_batch_history_t h;
  assert_int_equal(miscache_batch_run(mc, 5, "runner-1", load_config, NULL,
                                      work, &w, &h),
                   MISCACHE_OK);
  assert_int_equal(w.calls, 1);
  assert_string_equal(h.status, "completed");
  assert_int_equal(h.total_records, 60);
  assert_int_equal(h.gift_classified, 9);
  assert_int_equal(h.summary.revenue_products, 51);
  assert_int_equal(h.errors.count, 0);
  miscache_batch_history_clear(&h);
  char d[9], hk[64];
  today(d);
  assert_int_equal(miscache_batch_history_get(mc, 5, d, &h), MISCACHE_OK);
  assert_string_equal(h.status, "completed");
  miscache_batch_history_clear(&h);
  snprintf(hk, sizeof hk, "batch:history:5:%s", d);
  assert_int_equal(mt_raw_exists_in(mc, 4, hk), 1);
  miscache_batch_status_t s;
  assert_int_equal(miscache_batch_status_get(mc, 5, &s), MISCACHE_OK);
  assert_string_equal(s.status, "completed");
  assert_non_null(s.end_time);
  assert_string_equal(s.current_step, "classification");
  miscache_batch_status_clear(&s);
  assert_int_equal(mt_raw_exists_in(mc, 4, "batch:lock:5"), 0); /* released */

  /* a second run while one holds the lock: refused, work never called */
  miscache_lock_t *held = NULL;
  assert_int_equal(miscache_batch_lock_acquire(mc, 5, "first", "x", &held),
                   MISCACHE_OK);
  work_t w2 = {0};
  miscache_batch_history_t h2;
  memset(&h2, 0x5a, sizeof h2); /* history_out is zeroed, not left as given */
  assert_int_equal(miscache_batch_run(mc, 5, "second", load_config, NULL, work,
                                      &w2, &h2),
                   MISCACHE_ERR_LOCKED);
  assert_int_equal(w2.calls, 0);
  assert_null(h2.status);
  assert_int_equal(h2.errors.count, 0);
  miscache_batch_history_clear(&h2);
  assert_non_null(strstr(miscache_errmsg(mc), "first"));
  assert_int_equal(miscache_lock_release(mc, held), MISCACHE_OK);
  miscache_lock_free(held);
  miscache_free(mc);
}

static void test_run_failure(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  work_t w = {.result = MISCACHE_ERR_UNAVAILABLE};
  miscache_batch_history_t h;
  assert_int_equal(miscache_batch_run(mc, 5, "runner", load_config, NULL, work,
                                      &w, &h),
                   MISCACHE_ERR_UNAVAILABLE);
  assert_string_equal(h.status, "failed");
  assert_int_equal(h.errors.count, 2);
  assert_string_equal(h.errors.items[0], "ERP page 2: HTTP 500");
  miscache_batch_history_clear(&h);
  miscache_batch_status_t s;
  assert_int_equal(miscache_batch_status_get(mc, 5, &s), MISCACHE_OK);
  assert_string_equal(s.status, "failed");
  miscache_batch_status_clear(&s);
  assert_int_equal(mt_raw_exists_in(mc, 4, "batch:lock:5"), 0);
  /* the work's own failure has a status of its own */
  work_t w3 = {.result = MISCACHE_ERR_WORK};
  assert_int_equal(miscache_batch_run(mc, 5, "runner", load_config, NULL, work,
                                      &w3, &h),
                   MISCACHE_ERR_WORK);
  assert_string_equal(h.status, "failed");
  assert_string_equal(h.errors.items[h.errors.count - 1],
                      "work failed: batch work callback failed");
  miscache_batch_history_clear(&h);
  assert_string_equal(miscache_strerror(MISCACHE_ERR_WORK),
                      "batch work callback failed");
  miscache_free(mc);
}

static miscache_t *open_short_lock(const char *ns) {
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_ttl(o, MISCACHE_TTL_BATCH_LOCK, 1);
  miscache_t *mc = mt_open_in(o, ns);
  assert_non_null(mc);
  miscache_options_free(o);
  return mc;
}

/* Work longer than the lock TTL: the lock is renewed, a rival is refused. */
static void test_run_renews_lock(void **state) {
  (void)state;
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  miscache_t *mc = open_short_lock(ns);
  work_t w = {.sleep_ms = 2600};
  w.rival = open_short_lock(ns);
  assert_int_equal(miscache_batch_run(mc, 5, "slow", load_config, NULL, work,
                                      &w, NULL),
                   MISCACHE_OK);
  assert_int_equal(w.rival_st, MISCACHE_ERR_LOCKED); /* at 1.3 s of a 1 s TTL */
  assert_true(w.pttl_seen > 0 && w.pttl_seen <= 1000);
  assert_int_equal(w.report_st, MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(mc, 4, "batch:lock:5"), 0);
  miscache_free(w.rival);
  miscache_free(mc);
}

/* The lock is taken away during the run: the rival's lock stays. */
static void test_run_lost_lock(void **state) {
  (void)state;
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  miscache_t *mc = open_short_lock(ns);
  work_t w = {.sleep_ms = 800, .steal = true};
  assert_int_equal(miscache_batch_run(mc, 5, "victim", load_config, NULL, work,
                                      &w, NULL),
                   MISCACHE_ERR_NOT_OWNER);
  assert_int_equal(w.report_st, MISCACHE_ERR_NOT_OWNER);
  char *raw = mt_raw_get(mc, MISCACHE_DB_BATCH, "batch:lock:5");
  assert_non_null(raw);
  assert_string_equal(raw, "{\"token\":\"rival\"}");
  free(raw);
  miscache_free(mc);
}

/* Every field of config, status and history through the server: the stored
 * JSON is exactly the documented object and reads back typed. */
static void test_every_field_round_trip(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_batch_config_t c = {true, 2, 30, 3, 30, 3, true, {0}, "2026-11-24T10:00:00Z", NULL, {0}};
  miscache_strings_push(&c.gift_keywords, "a");
  miscache_strings_push(&c.gift_keywords, "b");
  assert_int_equal(miscache_batch_config_set(mc, 8, &c), MISCACHE_OK);
  char *raw = mt_raw_get(mc, MISCACHE_DB_BATCH, "batch:config:8");
  assert_string_equal(raw, "{\"batch_enabled\":true,\"batch_hour\":2,"
                           "\"batch_minute\":30,\"api_call_interval\":3,"
                           "\"page_size\":30,\"retry_count\":3,"
                           "\"auto_gift_classify\":true,\"gift_keywords\":"
                           "[\"a\",\"b\"],\"last_updated\":"
                           "\"2026-11-24T10:00:00Z\"}");
  free(raw);
  miscache_batch_config_t cb;
  assert_int_equal(miscache_batch_config_get(mc, 8, &cb), MISCACHE_OK);
  assert_true(cb.batch_enabled && cb.auto_gift_classify);
  assert_int_equal(cb.batch_hour, 2);
  assert_int_equal(cb.batch_minute, 30);
  assert_int_equal(cb.api_call_interval, 3);
  assert_int_equal(cb.page_size, 30);
  assert_int_equal(cb.retry_count, 3);
  assert_int_equal(cb.gift_keywords.count, 2);
  assert_string_equal(cb.gift_keywords.items[1], "b");
  assert_string_equal(cb.last_updated, c.last_updated);
  miscache_batch_config_clear(&cb);
  miscache_strings_clear(&c.gift_keywords);

  miscache_batch_status_t s = {"failed", "2026-11-24T02:00:00Z",
                               "2026-11-24T02:03:00Z", "8-x", "done",
                               {1, 2, 3, 4, 5, {0}}, {0}, false, NULL, {0}};
  miscache_strings_push(&s.errors, "e1");
  assert_int_equal(miscache_batch_status_set(mc, 8, &s), MISCACHE_OK);
  raw = mt_raw_get(mc, MISCACHE_DB_BATCH, "batch:status:8");
  assert_string_equal(raw, "{\"status\":\"failed\",\"start_time\":"
                           "\"2026-11-24T02:00:00Z\",\"end_time\":"
                           "\"2026-11-24T02:03:00Z\",\"batch_id\":\"8-x\","
                           "\"current_step\":\"done\",\"progress\":{"
                           "\"total_pages\":1,\"processed_pages\":2,"
                           "\"total_records\":3,\"processed_records\":4,"
                           "\"classified_gifts\":5},\"errors\":[\"e1\"]}");
  free(raw);
  miscache_batch_status_t sb;
  assert_int_equal(miscache_batch_status_get(mc, 8, &sb), MISCACHE_OK);
  assert_string_equal(sb.end_time, s.end_time);
  assert_string_equal(sb.batch_id, "8-x");
  assert_int_equal(sb.progress.total_pages, 1);
  assert_int_equal(sb.progress.classified_gifts, 5);
  assert_string_equal(sb.errors.items[0], "e1");
  miscache_batch_status_clear(&sb);
  miscache_strings_clear(&s.errors);

  miscache_batch_history_t h = {"2026-11-24T02:00:00Z", 180, "completed", 1500,
                                125, {0}, {1, 2, 3, 4, {0}}, NULL, {0}};
  assert_int_equal(miscache_batch_history_set(mc, 8, "20261124", &h),
                   MISCACHE_OK);
  raw = mt_raw_get(mc, MISCACHE_DB_BATCH, "batch:history:8:20261124");
  assert_string_equal(raw, "{\"execution_time\":\"2026-11-24T02:00:00Z\","
                           "\"duration_seconds\":180,\"status\":"
                           "\"completed\",\"total_records\":1500,"
                           "\"gift_classified\":125,\"errors\":[],"
                           "\"summary\":{\"orders_processed\":1,"
                           "\"products_processed\":2,\"gifts_identified\":3,"
                           "\"revenue_products\":4}}");
  free(raw);
  miscache_batch_history_t hb;
  assert_int_equal(miscache_batch_history_get(mc, 8, "20261124", &hb),
                   MISCACHE_OK);
  assert_string_equal(hb.execution_time, h.execution_time);
  assert_int_equal(hb.total_records, 1500);
  assert_int_equal(hb.gift_classified, 125);
  assert_int_equal(hb.errors.count, 0);
  assert_int_equal(hb.summary.orders_processed, 1);
  assert_int_equal(hb.summary.products_processed, 2);
  assert_int_equal(hb.summary.revenue_products, 4);
  miscache_batch_history_clear(&hb);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_status_history),
      cmocka_unit_test(test_every_field_round_trip),
      cmocka_unit_test(test_run_success_and_refusal),
      cmocka_unit_test(test_run_failure),
      cmocka_unit_test(test_run_renews_lock),
      cmocka_unit_test(test_run_lost_lock),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

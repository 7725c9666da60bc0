/* The loader shape of 0.4.0 (miscache_load_fn with a miscache_load_req_t
 * and an error buffer) through every *_ex call, against a real server:
 * what each loader is asked for, its message in errmsg, typed values given
 * as JSON and decoded (or refused, never cached), refresh and batch runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

/* What the recording loader saw (copied: req is borrowed). */
typedef struct {
  int calls;
  miscache_db_t db;
  char key[256];
  int family;
  int64_t company, id;
  char date[16];
  bool had_date;
  size_t errlen;
  bool errbuf_empty;
  /* what to answer */
  miscache_status_t answer;
  const char *json;    /* the value, parsed per call */
  const char *message; /* written into errbuf when not NULL */
  bool fill_errbuf;    /* fill all of errbuf with no NUL */
} rec_t;

static miscache_status_t rec_load(void *ud, const miscache_load_req_t *req,
                                  json_t **out, char *errbuf, size_t errlen) {
  rec_t *r = ud;
  r->calls++;
  r->db = req->db;
  snprintf(r->key, sizeof r->key, "%s", req->key);
  r->family = req->family;
  r->company = req->company;
  r->id = req->id;
  r->had_date = req->date != NULL;
  snprintf(r->date, sizeof r->date, "%s", req->date ? req->date : "");
  r->errlen = errlen;
  r->errbuf_empty = errlen > 0 && errbuf[0] == '\0';
  if (r->message) snprintf(errbuf, errlen, "%s", r->message);
  if (r->fill_errbuf) memset(errbuf, 'x', errlen);
  if (r->answer != MISCACHE_OK) return r->answer;
  *out = json_loads(r->json ? r->json : "[1,2]", 0, NULL);
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

static void assert_req(const rec_t *r, miscache_db_t db, const char *key,
                       int family, int64_t company, int64_t id,
                       const char *date) {
  assert_int_equal(r->calls, 1);
  assert_int_equal(r->db, db);
  assert_string_equal(r->key, key);
  assert_int_equal(r->family, family);
  assert_int_equal(r->company, company);
  assert_int_equal(r->id, id);
  assert_int_equal(r->had_date, date != NULL);
  if (date) assert_string_equal(r->date, date);
  assert_true(r->errlen >= 128);
  assert_true(r->errbuf_empty);
}

/* The value is in the server under the key's db with a TTL near ttl_s. */
static void assert_stored(miscache_t *mc, miscache_db_t db, const char *key,
                          long long ttl_s) {
  char *raw = mt_raw_get(mc, db, key);
  assert_non_null(raw);
  free(raw);
  long long p = mt_raw_pttl(mc, db, key);
  if (p > ttl_s * 1000 || p < ttl_s * 1000 - 5000)
    fail_msg("%s: PTTL %lld, want about %lld s", key, p, ttl_s);
}

static void test_each_call_says_what_it_loads(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = NULL;
  miscache_source_t src;

  rec_t r = {.json = "{\"a\":1}"};
  assert_int_equal(miscache_get_or_load_ex(mc, MISCACHE_DB_CACHE, "k:plain",
                                           MISCACHE_TTL_MASTER_DATA, rec_load,
                                           &r, &v, &src),
                   MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  assert_int_equal(json_integer_value(json_object_get(v, "a")), 1);
  json_decref(v);
  assert_req(&r, MISCACHE_DB_CACHE, "k:plain", -1, 0, 0, NULL);
  assert_stored(mc, MISCACHE_DB_CACHE, "k:plain", 21600);
  /* the second read is the cache's */
  assert_int_equal(miscache_get_or_load_ex(mc, MISCACHE_DB_CACHE, "k:plain",
                                           MISCACHE_TTL_MASTER_DATA, rec_load,
                                           &r, &v, &src),
                   MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_CACHE);
  assert_int_equal(r.calls, 1);
  json_decref(v);

  r = (rec_t){0};
  assert_int_equal(miscache_master_get_or_load_ex(mc, MISCACHE_MASTER_BRANDS,
                                                  rec_load, &r, &v, &src),
                   MISCACHE_OK);
  json_decref(v);
  assert_req(&r, MISCACHE_DB_CACHE, "master:brands", MISCACHE_KF_MASTER_BRANDS,
             0, 0, NULL);
  assert_stored(mc, MISCACHE_DB_CACHE, "master:brands", 21600);

  r = (rec_t){0};
  assert_int_equal(
      miscache_master_products_get_or_load_ex(mc, 77, rec_load, &r, &v, &src),
      MISCACHE_OK);
  json_decref(v);
  assert_req(&r, MISCACHE_DB_CACHE, "master:products:category:77",
             MISCACHE_KF_MASTER_PRODUCTS, 0, 77, NULL);

  r = (rec_t){.json = "{\"sales\":{\"read\":true,\"write\":false}}"};
  bool allowed = false;
  assert_int_equal(miscache_permissions_check_ex(mc, 42, "sales",
                                                 MISCACHE_PERM_READ, rec_load,
                                                 &r, &allowed, &src),
                   MISCACHE_OK);
  assert_true(allowed);
  assert_req(&r, MISCACHE_DB_CACHE, "permissions:user:42",
             MISCACHE_KF_PERMISSIONS, 0, 42, NULL);
  assert_stored(mc, MISCACHE_DB_CACHE, "permissions:user:42", 3600);

  r = (rec_t){.json = "{\"total\":3}"};
  assert_int_equal(miscache_gift_analytics_get_or_load_ex(
                       mc, 9, "20261124", rec_load, &r, &v, &src),
                   MISCACHE_OK);
  json_decref(v);
  assert_req(&r, MISCACHE_DB_GIFT, mt_key("gift:analytics:9:20261124"),
             MISCACHE_KF_GIFT_ANALYTICS, 9, 0, "20261124");
  /* a malformed date never reaches the loader */
  r = (rec_t){0};
  assert_int_equal(miscache_gift_analytics_get_or_load_ex(
                       mc, 9, "2026-11-24", rec_load, &r, &v, &src),
                   MISCACHE_ERR_KEY);
  assert_int_equal(r.calls, 0);
  assert_null(v);
  miscache_free(mc);
}

static void test_loader_message_reaches_errmsg(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = NULL;
  rec_t r = {.answer = MISCACHE_ERR_UNAVAILABLE,
             .message = "ERP database: connection refused"};
  assert_int_equal(miscache_get_or_load_ex(mc, MISCACHE_DB_CACHE, "k:fail",
                                           MISCACHE_TTL_MASTER_DATA, rec_load,
                                           &r, &v, NULL),
                   MISCACHE_ERR_LOADER);
  assert_null(v);
  assert_non_null(
      strstr(miscache_errmsg(mc), "ERP database: connection refused"));
  assert_null(mt_raw_get(mc, MISCACHE_DB_CACHE, "k:fail"));
  /* a loader that fills the whole buffer with no end: no overrun */
  r = (rec_t){.answer = MISCACHE_ERR_SERVER, .fill_errbuf = true};
  assert_int_equal(miscache_get_or_load_ex(mc, MISCACHE_DB_CACHE, "k:fail",
                                           MISCACHE_TTL_MASTER_DATA, rec_load,
                                           &r, &v, NULL),
                   MISCACHE_ERR_LOADER);
  assert_non_null(strstr(miscache_errmsg(mc), "xxxx"));
  assert_true(strlen(miscache_errmsg(mc)) < MISCACHE_ERRMSG_SIZE);
  /* MISS: nothing cached, MISS returned */
  r = (rec_t){.answer = MISCACHE_MISS};
  assert_int_equal(miscache_get_or_load_ex(mc, MISCACHE_DB_CACHE, "k:none",
                                           MISCACHE_TTL_MASTER_DATA, rec_load,
                                           &r, &v, NULL),
                   MISCACHE_MISS);
  assert_null(mt_raw_get(mc, MISCACHE_DB_CACHE, "k:none"));
  /* NULL loader: ERR_INVALID */
  assert_int_equal(miscache_get_or_load_ex(mc, MISCACHE_DB_CACHE, "k:none",
                                           MISCACHE_TTL_MASTER_DATA, NULL, NULL,
                                           &v, NULL),
                   MISCACHE_ERR_INVALID);
  miscache_free(mc);
}

/* The typed calls take the stored JSON form: the same text the set call
 * writes (read back raw here) decodes into the struct. */
static void test_typed_ex_decode_the_stored_json(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  miscache_batch_config_t c = {.batch_enabled = true,
                               .batch_hour = 3,
                               .batch_minute = 30,
                               .page_size = 50};
  assert_int_equal(miscache_strings_push(&c.gift_keywords, "sample"),
                   MISCACHE_OK);
  assert_int_equal(miscache_batch_config_set(mc, 1, &c), MISCACHE_OK);
  miscache_batch_config_clear(&c);
  char *json = mt_raw_get(mc, MISCACHE_DB_BATCH, "batch:config:1");
  assert_non_null(json);

  rec_t r = {.json = json};
  miscache_batch_config_t out;
  miscache_source_t src;
  assert_int_equal(
      miscache_batch_config_get_or_load_ex(mc, 2, rec_load, &r, &out, &src),
      MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  assert_true(out.batch_enabled);
  assert_int_equal(out.batch_hour, 3);
  assert_int_equal(out.page_size, 50);
  assert_int_equal(out.gift_keywords.count, 1);
  assert_string_equal(out.gift_keywords.items[0], "sample");
  miscache_batch_config_clear(&out);
  assert_req(&r, MISCACHE_DB_BATCH, mt_key("batch:config:2"),
             MISCACHE_KF_BATCH_CONFIG, 2, 0, NULL);
  assert_int_equal(
      miscache_batch_config_get_or_load_ex(mc, 2, rec_load, &r, &out, &src),
      MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_CACHE);
  assert_int_equal(r.calls, 1);
  miscache_batch_config_clear(&out);
  free(json);

  /* a value of the wrong shape: ERR_LOADER with the reason, not cached */
  r = (rec_t){.json = "{\"batch_hour\":\"three\"}"};
  assert_int_equal(
      miscache_batch_config_get_or_load_ex(mc, 3, rec_load, &r, &out, &src),
      MISCACHE_ERR_LOADER);
  assert_non_null(strstr(miscache_errmsg(mc), "batch_hour"));
  assert_null(mt_raw_get(mc, MISCACHE_DB_BATCH, "batch:config:3"));
  r = (rec_t){.json = "[1]"};
  assert_int_equal(
      miscache_gift_rules_get_or_load_ex(mc, 3, rec_load, &r, NULL, &src),
      MISCACHE_ERR_INVALID);
  miscache_gift_rules_t rules;
  assert_int_equal(
      miscache_gift_rules_get_or_load_ex(mc, 3, rec_load, &r, &rules, &src),
      MISCACHE_ERR_LOADER);
  assert_null(mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:rules:3"));

  /* gift rules the same way */
  miscache_gift_rules_t g = {.zero_price_rule = true};
  assert_int_equal(miscache_strings_push(&g.keywords, "gift"), MISCACHE_OK);
  assert_int_equal(miscache_gift_rules_set(mc, 4, &g), MISCACHE_OK);
  miscache_gift_rules_clear(&g);
  json = mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:rules:4");
  assert_non_null(json);
  r = (rec_t){.json = json};
  assert_int_equal(
      miscache_gift_rules_get_or_load_ex(mc, 5, rec_load, &r, &rules, &src),
      MISCACHE_OK);
  assert_true(rules.zero_price_rule);
  assert_int_equal(rules.keywords.count, 1);
  assert_string_equal(rules.keywords.items[0], "gift");
  miscache_gift_rules_clear(&rules);
  assert_req(&r, MISCACHE_DB_GIFT, mt_key("gift:rules:5"),
             MISCACHE_KF_GIFT_RULES, 5, 0, NULL);
  assert_stored(mc, MISCACHE_DB_GIFT, "gift:rules:5", 21600);
  free(json);
  miscache_free(mc);
}

/* Two loaders told apart by the request's family. */
static miscache_status_t post_load(void *ud, const miscache_load_req_t *req,
                                   json_t **out, char *errbuf, size_t errlen) {
  rec_t *r = ud; /* [0] status, [1] analytics */
  rec_t *mine = req->family == MISCACHE_KF_BATCH_STATUS ? &r[0] : &r[1];
  return rec_load(mine, req, out, errbuf, errlen);
}

static void test_refresh_ex(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  rec_t r[2] = {{.json = "{\"status\":\"completed\"}"},
                {.json = "{\"total\":5}"}};
  size_t n = 0;
  assert_int_equal(miscache_refresh_post_batch_ex(mc, 6, "20261124", post_load,
                                                  post_load, r, &n),
                   MISCACHE_OK);
  assert_int_equal(n, 2);
  assert_req(&r[0], MISCACHE_DB_BATCH, mt_key("batch:status:6"),
             MISCACHE_KF_BATCH_STATUS, 6, 0, NULL);
  assert_req(&r[1], MISCACHE_DB_GIFT, mt_key("gift:analytics:6:20261124"),
             MISCACHE_KF_GIFT_ANALYTICS, 6, 0, "20261124");
  char *raw = mt_raw_get(mc, MISCACHE_DB_GIFT, "gift:analytics:6:20261124");
  assert_non_null(raw);
  assert_string_equal(raw, "{\"total\":5}");
  free(raw);

  /* an item with the new loader; its failure message is reported and the
   * old value stays */
  rec_t one = {.answer = MISCACHE_ERR_UNAVAILABLE, .message = "ERP is down"};
  miscache_refresh_item_t it = {.db = MISCACHE_DB_CACHE,
                                .key = "k:refresh",
                                .cls = MISCACHE_TTL_MASTER_DATA,
                                .load = rec_load,
                                .userdata = &one};
  mt_raw_set(mc, MISCACHE_DB_CACHE, "k:refresh", "[0]");
  assert_int_equal(miscache_refresh(mc, &it, 1, &n), MISCACHE_ERR_LOADER);
  assert_int_equal(n, 0);
  assert_non_null(strstr(miscache_errmsg(mc), "ERP is down"));
  raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "k:refresh");
  assert_string_equal(raw, "[0]");
  free(raw);
  one = (rec_t){.json = "[9]"};
  assert_int_equal(miscache_refresh(mc, &it, 1, &n), MISCACHE_OK);
  assert_int_equal(n, 1);
  assert_req(&one, MISCACHE_DB_CACHE, "k:refresh", -1, 0, 0, NULL);
  raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "k:refresh");
  assert_string_equal(raw, "[9]");
  free(raw);
  assert_stored(mc, MISCACHE_DB_CACHE, "k:refresh", 21600);
  miscache_free(mc);
}

static miscache_status_t work_sees_config(void *ud, miscache_batch_run_t *run) {
  int64_t *page_size = ud;
  *page_size = miscache_batch_run_config(run)->page_size;
  return MISCACHE_OK;
}

static void test_batch_run_ex(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  rec_t r = {.json = "{\"batch_enabled\":true,\"page_size\":70}"};
  int64_t page_size = 0;
  assert_int_equal(miscache_batch_run_ex(mc, 8, "runner", rec_load, &r,
                                         work_sees_config, &page_size, NULL),
                   MISCACHE_OK);
  assert_int_equal(page_size, 70);
  assert_req(&r, MISCACHE_DB_BATCH, mt_key("batch:config:8"),
             MISCACHE_KF_BATCH_CONFIG, 8, 0, NULL);
  assert_int_equal(miscache_batch_run_ex(mc, 8, "runner", NULL, NULL,
                                         work_sees_config, &page_size, NULL),
                   MISCACHE_ERR_INVALID);
  miscache_free(mc);
}

/* Integer ids land in the keys as their decimal text, at both ends of
 * int64_t too (the key builder formats them by hand). */
static void test_int_ids_in_keys(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  const int64_t ids[] = {0, 1, -1, 42, 1234567890123LL, INT64_MAX, INT64_MIN};
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    char num[24], k[128];
    snprintf(num, sizeof num, "%lld", (long long)ids[i]);
    json_t *map = json_pack("{s:{s:b}}", "sales", "read", 1);
    assert_int_equal(miscache_permissions_set(mc, ids[i], map), MISCACHE_OK);
    json_decref(map);
    snprintf(k, sizeof k, "permissions:user:%s", num);
    char *raw = mt_raw_get(mc, MISCACHE_DB_CACHE, k);
    if (!raw) fail_msg("no %s", k);
    free(raw);
    json_t *list = json_pack("[i]", 1);
    assert_int_equal(miscache_master_products_set(mc, ids[i], list),
                     MISCACHE_OK);
    json_decref(list);
    snprintf(k, sizeof k, "master:products:category:%s", num);
    raw = mt_raw_get(mc, MISCACHE_DB_CACHE, k);
    if (!raw) fail_msg("no %s", k);
    free(raw);
    miscache_batch_config_t c = {.page_size = 5};
    assert_int_equal(miscache_batch_config_set(mc, ids[i], &c), MISCACHE_OK);
    snprintf(k, sizeof k, "batch:config:%s", num);
    raw = mt_raw_get(mc, MISCACHE_DB_BATCH, k);
    if (!raw) fail_msg("no %s", k);
    free(raw);
  }
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_call_says_what_it_loads),
      cmocka_unit_test(test_loader_message_reaches_errmsg),
      cmocka_unit_test(test_typed_ex_decode_the_stored_json),
      cmocka_unit_test(test_refresh_ex),
      cmocka_unit_test(test_batch_run_ex),
      cmocka_unit_test(test_int_ids_in_keys),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

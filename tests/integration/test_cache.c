/* Generic operations against a real server: round trip, TTL, db placement,
 * SELECT discipline, codec failures, multi-key, cache-aside, namespace. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ops/ops.h"

static void test_round_trip_exact_bytes(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_pack("{s:i,s:s,s:i,s:{},s:s}", "user_id", 123, "username",
                        "\xEA\xB4\x80\xEB\xA6\xAC\xEC\x9E\x90", "dept_id", 1,
                        "permissions", "last_activity",
                        "2026-11-24T10:00:00Z");
  assert_int_equal(miscache_set(mc, MISCACHE_DB_SESSION, "session:user:123", v,
                                MISCACHE_TTL_SESSION),
                   MISCACHE_OK);
  /* what another language reads: compact UTF-8 JSON */
  char *raw = mt_raw_get(mc, MISCACHE_DB_SESSION, "session:user:123");
  assert_non_null(raw);
  assert_string_equal(raw, "{\"user_id\":123,\"username\":\"\xEA\xB4\x80\xEB"
                           "\xA6\xAC\xEC\x9E\x90\",\"dept_id\":1,"
                           "\"permissions\":{},\"last_activity\":"
                           "\"2026-11-24T10:00:00Z\"}");
  free(raw);
  json_t *back = NULL;
  assert_int_equal(
      miscache_get(mc, MISCACHE_DB_SESSION, "session:user:123", &back),
      MISCACHE_OK);
  assert_true(json_equal(v, back));
  json_decref(back);
  json_decref(v);
  miscache_counters_t c;
  assert_int_equal(miscache_counters_get(mc, MISCACHE_DB_SESSION, &c),
                   MISCACHE_OK);
  assert_int_equal(c.hits, 1);
  assert_int_equal(c.misses, 0);
  miscache_free(mc);
}

static void test_ttl_of_every_class(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_object();
  for (int i = 0; i < MISCACHE_TTL_CLASS_COUNT; i++) {
    char key[64];
    snprintf(key, sizeof key, "ttl:%d", i);
    assert_int_equal(
        miscache_set(mc, MISCACHE_DB_CACHE, key, v, (miscache_ttl_class_t)i),
        MISCACHE_OK);
    long long want = miscache_ttl_default((miscache_ttl_class_t)i) * 1000;
    long long pttl = mt_raw_pttl(mc, MISCACHE_DB_CACHE, key);
    if (pttl > want || pttl < want - 5000)
      fail_msg("class %s: PTTL %lld, want about %lld",
               miscache_ttl_class_name((miscache_ttl_class_t)i), pttl, want);
    int64_t via_lib = 0;
    assert_int_equal(miscache_ttl_ms(mc, MISCACHE_DB_CACHE, key, &via_lib),
                     MISCACHE_OK);
    assert_true(via_lib <= want && via_lib > want - 5000);
  }
  /* explicit TTL, and override of a class */
  assert_int_equal(
      miscache_set_ttl_ms(mc, MISCACHE_DB_TEMP, "temp:report:r1", v, 1800000),
      MISCACHE_OK);
  long long pttl = mt_raw_pttl(mc, MISCACHE_DB_TEMP, "temp:report:r1");
  assert_true(pttl <= 1800000 && pttl > 1795000);
  json_decref(v);
  miscache_free(mc);

  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_ttl(o, MISCACHE_TTL_LOCK, 7),
                   MISCACHE_OK);
  mc = mt_open(o);
  miscache_options_free(o);
  v = json_true();
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "k", v, MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  pttl = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "k");
  assert_true(pttl <= 7000 && pttl > 2000);
  json_decref(v);
  miscache_free(mc);
}

static void test_ttl_jitter_on_server(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_ttl_jitter(o, 20), MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  json_t *v = json_object();
  long long lo = LLONG_MAX, hi = 0;
  for (int i = 0; i < 200; i++) {
    char key[32];
    snprintf(key, sizeof key, "j:%d", i);
    assert_int_equal(
        miscache_set(mc, MISCACHE_DB_CACHE, key, v, MISCACHE_TTL_PERMISSIONS),
        MISCACHE_OK);
    long long p = mt_raw_pttl(mc, MISCACHE_DB_CACHE, key);
    assert_true(p <= 3600000LL * 12 / 10 && p > 3600000LL * 8 / 10 - 5000);
    if (p < lo) lo = p;
    if (p > hi) hi = p;
  }
  assert_true(hi - lo > 3600000LL / 10); /* really spread */
  json_decref(v);
  miscache_free(mc);
}

static void test_db_placement(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_pack("{s:i}", "x", 1);
  for (int db = 0; db < MISCACHE_DB_COUNT; db++) {
    char key[32];
    snprintf(key, sizeof key, "place:%d", db);
    assert_int_equal(miscache_set(mc, (miscache_db_t)db, key, v,
                                  MISCACHE_TTL_TEMP_DATA),
                     MISCACHE_OK);
    for (int phys = 0; phys < 8; phys++)
      assert_int_equal(mt_raw_exists_in(mc, phys, key), phys == db ? 1 : 0);
  }
  miscache_free(mc);

  /* overridden numbers */
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_db(o, MISCACHE_DB_CACHE, 7),
                   MISCACHE_OK);
  mc = mt_open(o);
  miscache_options_free(o);
  assert_int_equal(
      miscache_set(mc, MISCACHE_DB_CACHE, "moved", v, MISCACHE_TTL_LOCK),
      MISCACHE_OK);
  assert_int_equal(mt_raw_exists_in(mc, 7, "moved"), 1);
  assert_int_equal(mt_raw_exists_in(mc, 1, "moved"), 0);
  json_decref(v);
  miscache_free(mc);
}

static void test_select_only_on_change(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_pack("{s:s}", "a", "b");
  assert_int_equal(
      miscache_set(mc, MISCACHE_DB_GIFT, "g", v, MISCACHE_TTL_GIFT_RULES),
      MISCACHE_OK);
  redisReply *r = redisCommand(mt_rc, "CONFIG RESETSTAT");
  freeReplyObject(r);
  for (int i = 0; i < 10000; i++) {
    json_t *out = NULL;
    assert_int_equal(miscache_get(mc, MISCACHE_DB_GIFT, "g", &out),
                     MISCACHE_OK);
    json_decref(out);
  }
  long long selects = mt_cmdstat_calls(mt_rc, "select");
  long long gets = mt_cmdstat_calls(mt_rc, "get");
  assert_int_equal(gets, 10000);
  assert_true(selects <= 1);
  /* switching db sends SELECT again, once per switch */
  r = redisCommand(mt_rc, "CONFIG RESETSTAT");
  freeReplyObject(r);
  for (int i = 0; i < 10; i++) {
    json_t *out = NULL;
    miscache_get(mc, (i % 2) ? MISCACHE_DB_GIFT : MISCACHE_DB_BATCH, "g", &out);
    json_decref(out);
  }
  assert_int_equal(mt_cmdstat_calls(mt_rc, "select"), 10);
  json_decref(v);
  miscache_free(mc);
}

static void test_empty_values_are_hits(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *empties[] = {json_object(), json_array(), json_string(""),
                       json_integer(0), json_false()};
  for (size_t i = 0; i < 5; i++) {
    char key[16];
    snprintf(key, sizeof key, "e:%zu", i);
    assert_int_equal(
        miscache_set(mc, MISCACHE_DB_CACHE, key, empties[i], MISCACHE_TTL_LOCK),
        MISCACHE_OK);
    json_t *out = NULL;
    assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, key, &out),
                     MISCACHE_OK);
    assert_non_null(out);
    assert_true(json_equal(out, empties[i]));
    json_decref(out);
    json_decref(empties[i]);
  }
  miscache_counters_t c;
  miscache_counters_get(mc, MISCACHE_DB_CACHE, &c);
  assert_int_equal(c.hits, 5);
  assert_int_equal(c.misses, 0);
  miscache_free(mc);
}

static int loads;
static miscache_status_t loader_obj(void *ud, const char *key, json_t **out) {
  (void)ud;
  loads++;
  *out = json_pack("{s:s,s:i}", "key", key, "n", loads);
  return MISCACHE_OK;
}
static miscache_status_t loader_empty(void *ud, const char *key, json_t **out) {
  (void)ud;
  (void)key;
  loads++;
  *out = json_object();
  return MISCACHE_OK;
}
static miscache_status_t loader_missing(void *ud, const char *key,
                                        json_t **out) {
  (void)ud;
  (void)key;
  (void)out;
  loads++;
  return MISCACHE_MISS;
}
static miscache_status_t loader_failing(void *ud, const char *key,
                                        json_t **out) {
  (void)ud;
  (void)key;
  (void)out;
  loads++;
  return MISCACHE_ERR_UNAVAILABLE;
}

static void test_malformed_json_is_decode_and_miss(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  const char *bad[] = {"{not json", "\xff\xfe", "{\"a\":1} x", ""};
  for (size_t i = 0; i < 4; i++) {
    char key[32], full[96];
    snprintf(key, sizeof key, "bad:%zu", i);
    snprintf(full, sizeof full, "%s%s", miscache_namespace(mc), key);
    redisReply *r = redisCommand(mt_rc, "SELECT 1");
    freeReplyObject(r);
    r = redisCommand(mt_rc, "SET %s %b", full, bad[i], strlen(bad[i]));
    freeReplyObject(r);
    json_t *out = (json_t *)&out;
    assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, key, &out),
                     MISCACHE_ERR_DECODE);
    assert_null(out);
    assert_true(strstr(miscache_errmsg(mc), key) != NULL);
  }
  miscache_counters_t c;
  miscache_counters_get(mc, MISCACHE_DB_CACHE, &c);
  assert_int_equal(c.misses, 4);
  assert_int_equal(c.hits, 0);
  assert_int_equal(c.errors, 4);

  /* cache-aside replaces the bad value */
  loads = 0;
  json_t *out = NULL;
  miscache_source_t src;
  assert_int_equal(miscache_get_or_load(mc, MISCACHE_DB_CACHE, "bad:0",
                                        MISCACHE_TTL_MASTER_DATA, loader_obj,
                                        NULL, &out, &src),
                   MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  assert_int_equal(loads, 1);
  json_decref(out);
  char *raw = mt_raw_get(mc, MISCACHE_DB_CACHE, "bad:0");
  assert_string_equal(raw, "{\"key\":\"bad:0\",\"n\":1}");
  free(raw);

  /* a key holding another Redis type */
  char full[96];
  snprintf(full, sizeof full, "%shash", miscache_namespace(mc));
  redisReply *r = redisCommand(mt_rc, "HSET %s f v", full);
  freeReplyObject(r);
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "hash", &out),
                   MISCACHE_ERR_DECODE);
  assert_true(strstr(miscache_errmsg(mc), "WRONGTYPE") != NULL);
  miscache_free(mc);
}

static void test_get_or_load(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  loads = 0;
  json_t *out = NULL;
  miscache_source_t src;
  assert_int_equal(miscache_get_or_load(mc, MISCACHE_DB_CACHE,
                                        "master:departments",
                                        MISCACHE_TTL_MASTER_DATA, loader_obj,
                                        NULL, &out, &src),
                   MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_LOADED);
  assert_int_equal(loads, 1);
  json_decref(out);
  long long pttl = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "master:departments");
  assert_true(pttl > 21595000 && pttl <= 21600000);
  assert_int_equal(miscache_get_or_load(mc, MISCACHE_DB_CACHE,
                                        "master:departments",
                                        MISCACHE_TTL_MASTER_DATA, loader_obj,
                                        NULL, &out, &src),
                   MISCACHE_OK);
  assert_int_equal(src, MISCACHE_SOURCE_CACHE);
  assert_int_equal(loads, 1);
  assert_int_equal(json_integer_value(json_object_get(out, "n")), 1);
  json_decref(out);

  /* an empty object, once cached, is served from the cache */
  loads = 0;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(miscache_get_or_load(mc, MISCACHE_DB_CACHE, "empty",
                                          MISCACHE_TTL_LOCK, loader_empty,
                                          NULL, &out, &src),
                     MISCACHE_OK);
    assert_int_equal(src, i ? MISCACHE_SOURCE_CACHE : MISCACHE_SOURCE_LOADED);
    json_decref(out);
  }
  assert_int_equal(loads, 1);

  /* loader finds nothing: MISS, nothing stored */
  assert_int_equal(miscache_get_or_load(mc, MISCACHE_DB_CACHE, "none",
                                        MISCACHE_TTL_LOCK, loader_missing, NULL,
                                        &out, &src),
                   MISCACHE_MISS);
  assert_null(out);
  assert_int_equal(mt_raw_exists_in(mc, 1, "none"), 0);
  /* loader fails */
  assert_int_equal(miscache_get_or_load(mc, MISCACHE_DB_CACHE, "none",
                                        MISCACHE_TTL_LOCK, loader_failing, NULL,
                                        &out, &src),
                   MISCACHE_ERR_LOADER);
  assert_true(strstr(miscache_errmsg(mc), "loader") != NULL);
  assert_null(out);
  miscache_free(mc);
}

static void test_multi(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  enum { N = 50 };
  char keys_buf[N + 2][32];
  const char *keys[N + 2];
  json_t *vals[N];
  for (int i = 0; i < N; i++) {
    snprintf(keys_buf[i], 32, "gift:classification:P%d:1", i);
    keys[i] = keys_buf[i];
    vals[i] = json_pack("{s:s,s:i}", "product_type", "GIFT", "i", i);
  }
  assert_int_equal(miscache_mset(mc, MISCACHE_DB_GIFT, N, keys,
                                 (const json_t *const *)vals,
                                 MISCACHE_TTL_GIFT_CLASSIFICATION),
                   MISCACHE_OK);
  for (int i = 0; i < N; i++) {
    long long p = mt_raw_pttl(mc, MISCACHE_DB_GIFT, keys[i]);
    assert_true(p > 14395000 && p <= 14400000);
  }
  snprintf(keys_buf[N], 32, "gift:classification:none:1");
  keys[N] = keys_buf[N];
  snprintf(keys_buf[N + 1], 32, "broken");
  keys[N + 1] = keys_buf[N + 1];
  char full[96];
  snprintf(full, sizeof full, "%sbroken", miscache_namespace(mc));
  redisReply *r = redisCommand(mt_rc, "SELECT 5");
  freeReplyObject(r);
  r = redisCommand(mt_rc, "SET %s {{", full);
  freeReplyObject(r);

  json_t *out[N + 2];
  miscache_status_t st[N + 2];
  assert_int_equal(miscache_mget(mc, MISCACHE_DB_GIFT, N + 2, keys, out, st),
                   MISCACHE_OK);
  for (int i = 0; i < N; i++) {
    assert_int_equal(st[i], MISCACHE_OK);
    assert_true(json_equal(out[i], vals[i]));
    json_decref(out[i]);
    json_decref(vals[i]);
  }
  assert_int_equal(st[N], MISCACHE_MISS);
  assert_null(out[N]);
  assert_int_equal(st[N + 1], MISCACHE_ERR_DECODE);
  assert_null(out[N + 1]);
  miscache_counters_t c;
  miscache_counters_get(mc, MISCACHE_DB_GIFT, &c);
  assert_int_equal(c.hits, N);
  assert_int_equal(c.misses, 2);
  assert_int_equal(miscache_mget(mc, MISCACHE_DB_GIFT, 0, NULL, NULL, NULL),
                   MISCACHE_OK);
  miscache_free(mc);
}

static void test_delete_exists(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_integer(1250);
  bool b = true;
  assert_int_equal(miscache_exists(mc, MISCACHE_DB_CACHE, "d", &b), MISCACHE_OK);
  assert_false(b);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "d", v, MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  assert_int_equal(miscache_exists(mc, MISCACHE_DB_CACHE, "d", &b), MISCACHE_OK);
  assert_true(b);
  assert_int_equal(miscache_delete(mc, MISCACHE_DB_CACHE, "d", &b), MISCACHE_OK);
  assert_true(b);
  assert_int_equal(mt_raw_exists_in(mc, 1, "d"), 0);
  assert_int_equal(miscache_delete(mc, MISCACHE_DB_CACHE, "d", &b), MISCACHE_OK);
  assert_false(b);
  int64_t ttl = 0;
  assert_int_equal(miscache_ttl_ms(mc, MISCACHE_DB_CACHE, "d", &ttl),
                   MISCACHE_OK);
  assert_int_equal(ttl, -2);
  json_decref(v);
  miscache_free(mc);
}

static void test_bad_arguments(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *v = json_object();
  json_t *out = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, NULL, &out),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "", &out),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_get(mc, (miscache_db_t)6, "k", &out),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_get(mc, MISCACHE_DB_CACHE, "k", NULL),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_get(NULL, MISCACHE_DB_CACHE, "k", &out),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(
      miscache_set(mc, MISCACHE_DB_CACHE, "k", v, (miscache_ttl_class_t)99),
      MISCACHE_ERR_INVALID);
  assert_int_equal(
      miscache_set(mc, MISCACHE_DB_CACHE, "k", NULL, MISCACHE_TTL_LOCK),
      MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_set_ttl_ms(mc, MISCACHE_DB_CACHE, "k", v, 0),
                   MISCACHE_ERR_INVALID);
  const char *keys[] = {"a", NULL};
  json_t *outs[2];
  assert_int_equal(miscache_mget(mc, MISCACHE_DB_CACHE, 2, keys, outs, NULL),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_invalidate(mc, MISCACHE_DB_CACHE, "", NULL),
                   MISCACHE_ERR_KEY);
  assert_true(miscache_errmsg(mc)[0] != 0);
  /* nothing was written by any of these */
  assert_int_equal(mt_raw_exists_in(mc, 1, "k"), 0);
  json_decref(v);
  miscache_free(mc);
  miscache_free(NULL);
}

static void test_long_key_and_namespace(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  char key[MISCACHE_KEY_BUFSIZE];
  static char id[900];
  memset(id, 'x', sizeof id - 1);
  assert_int_equal(miscache_key(key, sizeof key, "temp:report", id, NULL),
                   MISCACHE_OK);
  json_t *v = json_string("long");
  assert_int_equal(miscache_set(mc, MISCACHE_DB_TEMP, key, v, MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  json_t *out = NULL;
  assert_int_equal(miscache_get(mc, MISCACHE_DB_TEMP, key, &out), MISCACHE_OK);
  assert_true(json_equal(v, out));
  json_decref(out);
  json_decref(v);
  /* the namespace really prefixes the stored key */
  char full[MISCACHE_KEY_BUFSIZE + 64];
  snprintf(full, sizeof full, "%s%s", miscache_namespace(mc), key);
  assert_int_equal(mt_raw_int(mt_rc, 2, "EXISTS %s", full), 1);
  assert_int_equal(mt_raw_int(mt_rc, 2, "EXISTS %s", key), 0);
  miscache_free(mc);
}

static void test_env_url_and_unix_socket(void **state) {
  (void)state;
  setenv("MISCACHE_URL", mt_srv.url, 1);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(NULL, &mc, err, sizeof err), MISCACHE_OK);
  assert_int_equal(miscache_ping(mc), MISCACHE_OK);
  miscache_free(mc);
  unsetenv("MISCACHE_URL");
  assert_int_equal(miscache_open_url(mt_srv.unix_url, &mc, err, sizeof err),
                   MISCACHE_OK);
  json_t *v = json_true();
  assert_int_equal(miscache_set(mc, MISCACHE_DB_QUEUE, "unix-probe", v,
                                MISCACHE_TTL_LOCK),
                   MISCACHE_OK);
  assert_int_equal(mt_raw_int(mt_rc, 3, "EXISTS unix-probe"), 1);
  json_decref(v);
  miscache_free(mc);
}

/* The URL is the whole configuration: its namespace, db map and TTLs reach
 * the server, through miscache_open_url, MISCACHE_URL and a pool alike; a
 * setter in code wins over it. */
static void test_url_settings_on_server(void **state) {
  (void)state;
  bool cl = mt_is_cluster();
  char url[1024];
  snprintf(url, sizeof url,
           "%s%snamespace=urlns:&ttl_permissions=123&db_session=%d&"
           "command_timeout_ms=3000",
           mt_srv.url, strchr(mt_srv.url, '?') ? "&" : "?", cl ? 0 : 6);
  json_t *perm = json_pack("{s:{s:b}}", "sales", "read", 1);
  json_t *v = json_true();
  for (int way = 0; way < 3; way++) {
    miscache_t *mc = NULL;
    miscache_pool_t *pool = NULL;
    char err[MISCACHE_ERRMSG_SIZE];
    if (way == 0) {
      assert_int_equal(miscache_open_url(url, &mc, err, sizeof err), MISCACHE_OK);
    } else if (way == 1) {
      setenv("MISCACHE_URL", url, 1);
      assert_int_equal(miscache_open(NULL, &mc, err, sizeof err), MISCACHE_OK);
      unsetenv("MISCACHE_URL");
    } else {
      miscache_options_t *o = miscache_options_new();
      assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
      assert_int_equal(miscache_pool_new(o, 2, &pool, err, sizeof err),
                       MISCACHE_OK);
      miscache_options_free(o);
      assert_int_equal(miscache_pool_acquire(pool, 1000, &mc), MISCACHE_OK);
    }
    assert_string_equal(miscache_namespace(mc), "urlns:");
    assert_int_equal(miscache_permissions_set(mc, 900 + way, perm), MISCACHE_OK);
    char key[64];
    snprintf(key, sizeof key, "permissions:user:%d", 900 + way);
    long long pttl = mt_raw_pttl(mc, MISCACHE_DB_CACHE, key);
    if (pttl > 123000 || pttl < 118000) fail_msg("way %d: PTTL %lld", way, pttl);
    assert_int_equal(mt_raw_exists_in(mc, 1, key), 1);
    assert_int_equal(miscache_set(mc, MISCACHE_DB_SESSION, "s", v,
                                  MISCACHE_TTL_LOCK),
                     MISCACHE_OK);
    assert_int_equal(mt_raw_exists_in(mc, cl ? 0 : 6, "s"), 1);
    if (!cl) assert_int_equal(mt_raw_exists_in(mc, 0, "s"), 0);
    if (pool) {
      miscache_pool_release(pool, mc);
      miscache_pool_free(pool);
    } else {
      miscache_free(mc);
    }
  }
  /* a setter wins */
  miscache_options_t *o = miscache_options_new();
  assert_int_equal(miscache_options_set_namespace(o, "code:"), MISCACHE_OK);
  assert_int_equal(miscache_options_set_ttl(o, MISCACHE_TTL_PERMISSIONS, 50),
                   MISCACHE_OK);
  assert_int_equal(miscache_options_set_url(o, url), MISCACHE_OK);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open(o, &mc, err, sizeof err), MISCACHE_OK);
  miscache_options_free(o);
  assert_string_equal(miscache_namespace(mc), "code:");
  assert_int_equal(miscache_permissions_set(mc, 999, perm), MISCACHE_OK);
  long long pttl = mt_raw_pttl(mc, MISCACHE_DB_CACHE, "permissions:user:999");
  assert_true(pttl <= 50000 && pttl > 45000);
  miscache_free(mc);
  json_decref(v);
  json_decref(perm);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_exact_bytes),
      cmocka_unit_test(test_ttl_of_every_class),
      cmocka_unit_test(test_ttl_jitter_on_server),
      cmocka_unit_test(test_db_placement),
      cmocka_unit_test(test_select_only_on_change),
      cmocka_unit_test(test_empty_values_are_hits),
      cmocka_unit_test(test_malformed_json_is_decode_and_miss),
      cmocka_unit_test(test_get_or_load),
      cmocka_unit_test(test_multi),
      cmocka_unit_test(test_delete_exists),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_long_key_and_namespace),
      cmocka_unit_test(test_env_url_and_unix_socket),
      cmocka_unit_test(test_url_settings_on_server),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
/* Near cache: hits answered in the process, evicted by the server's
 * invalidation messages (another client's writes, FLUSHDB), by the
 * library's own writes at once, emptied when the invalidation connection
 * is killed or the server restarts; bounded by entries, bytes and the key's
 * TTL; shared by a pool. And the stale-read test: a writer process bumps a
 * version while reader threads read through the near cache; no read that
 * starts one invalidation interval after a write was acknowledged returns
 * an older version, across CLIENT KILL and a server restart.
 * Under MT_CLUSTER=1 the same on a 3-master cluster (one invalidation
 * connection per master), the restart replaced by moving the key's slot
 * to another master and back; and a cluster with replicas of its own whose
 * master of the key is SIGKILLed mid-run. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn/cluster.h" /* miscache__key_slot */
#include "fixture.h"

#define PERM_KEY "permissions:user:1"

static miscache_near_t near_opts(int ping_ms) {
  miscache_near_t n = {.enabled = true, .ping_ms = ping_ms};
  return n;
}

static miscache_t *open_near(const miscache_near_t *n) {
  miscache_options_t *o = miscache_options_new();
  assert_non_null(o);
  assert_int_equal(miscache_options_set_near_cache(o, n), MISCACHE_OK);
  miscache_t *mc = mt_open(o);
  miscache_options_free(o);
  return mc;
}

static miscache_near_stats_t stats_of(miscache_t *mc) {
  miscache_near_stats_t s;
  assert_int_equal(miscache_near_stats(mc, &s, sizeof s), MISCACHE_OK);
  return s;
}

/* Wait (at most 5 s) until the invalidation connection is confirmed. */
static void wait_connected(miscache_t *mc) {
  for (int i = 0; i < 500 && !stats_of(mc).connected; i++) mt_sleep_ms(10);
  assert_true(stats_of(mc).connected);
}

/* The "v" member of the value at key, -1 on a miss, -2 on another error. */
static long long read_v(miscache_t *mc, const char *key) {
  json_t *v = NULL;
  miscache_status_t st = miscache_get(mc, MISCACHE_DB_CACHE, key, &v);
  if (st == MISCACHE_MISS) return -1;
  if (st != MISCACHE_OK) return -2;
  long long n = json_integer_value(json_object_get(v, "v"));
  json_decref(v);
  return n;
}

/* GET calls the server (every master of a cluster) has run. */
static long long gets_total(void) {
  if (!mt_is_cluster()) return mt_cmdstat_calls(mt_rc, "get");
  long long n = 0;
  for (int i = 0; i < mt_cluster_active->n; i++) {
    redisContext *c = mt_raw(&mt_cluster_active->node[i], NULL);
    assert_non_null(c);
    n += mt_cmdstat_calls(c, "get");
    redisFree(c);
  }
  return n;
}

static void raw_set_v(miscache_t *mc, const char *key, long long v) {
  char val[64];
  snprintf(val, sizeof val, "{\"v\":%lld}", v);
  mt_raw_set(mc, MISCACHE_DB_CACHE, key, val);
}

/* Reads key until it returns want; the milliseconds it took, or -1. */
static int until_v(miscache_t *mc, const char *key, long long want) {
  int64_t t0 = mt_now_ns();
  for (int i = 0; i < 2000; i++) {
    if (read_v(mc, key) == want) return (int)((mt_now_ns() - t0) / 1000000);
    mt_sleep_ms(1);
  }
  return -1;
}

/* Read key until a read is a near hit (the write's own invalidation may
 * refuse the first stores); it must read want each time. */
static void cache_it(miscache_t *mc, const char *key, long long want) {
  for (int i = 0; i < 200; i++) {
    uint64_t h = stats_of(mc).hits;
    assert_int_equal(read_v(mc, key), want);
    if (stats_of(mc).hits > h) return;
    mt_sleep_ms(5);
  }
  fail_msg("%s never became a near hit", key);
}

/* processed_pages of company's batch status, -1 on a miss, -2 on error;
 * *hit: whether the near cache answered. */
static long long read_pages(miscache_t *mc, int64_t company, bool *hit) {
  uint64_t h = stats_of(mc).hits;
  miscache_batch_status_t s;
  miscache_status_t st = miscache_batch_status_get(mc, company, &s);
  if (hit) *hit = stats_of(mc).hits > h;
  if (st == MISCACHE_MISS) return -1;
  if (st != MISCACHE_OK) return -2;
  long long n = s.progress.processed_pages;
  miscache_batch_status_clear(&s);
  return n;
}

/* Read until the status reads want (a stale copy may take the server's
 * message to go), then until that is a near hit. */
static void cache_pages(miscache_t *mc, int64_t company, long long want) {
  for (int i = 0; i < 2000 && read_pages(mc, company, NULL) != want; i++)
    mt_sleep_ms(1);
  for (int i = 0; i < 200; i++) {
    bool hit = false;
    assert_int_equal(read_pages(mc, company, &hit), want);
    if (hit) return;
    mt_sleep_ms(5);
  }
  fail_msg("status of %lld never became a near hit", (long long)company);
}

enum { RYW_ROUNDS = 120 };

typedef struct {
  int stale;
  int rounds;
} ryw_work_t;

/* Inside a batch run: each report (the fenced status write) is read back
 * at once through the same handle. */
static miscache_status_t ryw_work(void *ud, miscache_batch_run_t *run) {
  ryw_work_t *w = ud;
  miscache_t *mc = miscache_batch_run_handle(run);
  for (int i = 1; i <= RYW_ROUNDS; i++) {
    cache_pages(mc, 31, i - 1);
    miscache_batch_progress_t p = {.total_pages = RYW_ROUNDS,
                                   .processed_pages = i};
    assert_int_equal(miscache_batch_run_report(run, &p, "step"), MISCACHE_OK);
    if (read_pages(mc, 31, NULL) != i) w->stale++;
    w->rounds++;
  }
  return MISCACHE_OK;
}

static miscache_status_t ryw_config(void *ud, int64_t company,
                                    miscache_batch_config_t *out) {
  (void)ud;
  (void)company;
  out->batch_enabled = true;
  return MISCACHE_OK;
}

/* Every way the library writes a key evicts it from its own near cache
 * before the call returns: a read right after the write never sees the old
 * value, whatever the server's invalidation message is doing. Each path
 * runs RYW_ROUNDS times (a missing eviction reads stale in most rounds:
 * the message comes later than the next read). */
static void test_every_write_reads_its_own(void **state) {
  (void)state;
  miscache_near_t n = near_opts(0);
  n.families =
      (1ull << MISCACHE_KF_PERMISSIONS) | (1ull << MISCACHE_KF_BATCH_STATUS);
  miscache_t *mc = open_near(&n);
  wait_connected(mc);
  const char *paths[] = {"set",    "set_ttl_ms",   "mset",
                         "delete", "write_behind", "status_progress"};
  int stale[6] = {0};
  /* on a cluster the write-behind script and the batch run's fenced writes
   * span slots (they need hash-tagged keys, tested in their own files) */
  bool cluster = mt_is_cluster();
  for (int p = 0; p < 6; p++) {
    if (cluster && p == 4) continue;
    for (int i = 1; i <= RYW_ROUNDS; i++) {
      long long want = i;
      if (p < 5) {
        raw_set_v(mc, PERM_KEY, i - 1); /* another client's write: seen */
        assert_true(until_v(mc, PERM_KEY, i - 1) >=
                    0); /* once its message came */
        cache_it(mc, PERM_KEY, i - 1);
      } else if (i == 1) {
        miscache_batch_status_t s0 = {.status = "running"};
        assert_int_equal(miscache_batch_status_set(mc, 32, &s0), MISCACHE_OK);
        cache_pages(mc, 32, 0);
      } else {
        cache_pages(mc, 32, i - 1);
      }
      json_t *v = json_pack("{s:i}", "v", i);
      const char *keys[1] = {PERM_KEY};
      const json_t *vals[1] = {v};
      miscache_batch_progress_t pr = {.processed_pages = i};
      switch (p) {
      case 0:
        assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, PERM_KEY, v,
                                      MISCACHE_TTL_PERMISSIONS),
                         MISCACHE_OK);
        break;
      case 1:
        assert_int_equal(
            miscache_set_ttl_ms(mc, MISCACHE_DB_CACHE, PERM_KEY, v, 60000),
            MISCACHE_OK);
        break;
      case 2:
        assert_int_equal(miscache_mset(mc, MISCACHE_DB_CACHE, 1, keys, vals,
                                       MISCACHE_TTL_PERMISSIONS),
                         MISCACHE_OK);
        break;
      case 3:
        assert_int_equal(miscache_delete(mc, MISCACHE_DB_CACHE, PERM_KEY, NULL),
                         MISCACHE_OK);
        want = -1;
        break;
      case 4:
        assert_int_equal(miscache_write_behind(mc, MISCACHE_DB_CACHE, PERM_KEY,
                                               v, MISCACHE_TTL_PERMISSIONS,
                                               "ryw", false),
                         MISCACHE_OK);
        break;
      default:
        assert_int_equal(miscache_batch_status_progress(mc, 32, &pr, NULL),
                         MISCACHE_OK);
        break;
      }
      json_decref(v);
      long long got = p < 5 ? read_v(mc, PERM_KEY) : read_pages(mc, 32, NULL);
      if (got != want) stale[p]++;
    }
  }
  /* the fenced status writes of a batch run */
  ryw_work_t w = {0};
  miscache_batch_status_t s0 = {.status = "running"};
  assert_int_equal(miscache_batch_status_set(mc, 31, &s0), MISCACHE_OK);
  if (!cluster) {
    assert_int_equal(miscache_batch_run(mc, 31, "ryw", ryw_config, NULL,
                                        ryw_work, &w, NULL),
                     MISCACHE_OK);
    assert_int_equal(w.rounds, RYW_ROUNDS);
  }
  int bad = w.stale;
  for (int p = 0; p < 6; p++) {
    printf("  %s: %d of %d reads right after the write saw the old value\n",
           paths[p], stale[p], RYW_ROUNDS);
    bad += stale[p];
  }
  printf("  fenced status write: %d of %d\n", w.stale, RYW_ROUNDS);
  assert_int_equal(bad, 0);
  miscache_free(mc);
}

static miscache_status_t no_load(void *ud, const char *key, json_t **out) {
  (void)ud, (void)key, (void)out;
  return MISCACHE_ERR_UNAVAILABLE;
}

/* A permission check answered by the near cache's per-menu view gives the
 * map's answer for every menu and permission (absent menus, names that are
 * prefixes of others, maps of 5 and of 40 menus), is a
 * near hit, and follows a write at once. */
static void test_permission_view_matches_the_map(void **state) {
  (void)state;
  miscache_near_t n = near_opts(0);
  miscache_t *mc = open_near(&n);
  miscache_t *plain = mt_open_in(NULL, miscache_namespace(mc)); /* no near */
  assert_non_null(plain);
  wait_connected(mc);
  static const char *const perms[4] = {"create", "read", "update", "delete"};
  for (int round = 0; round < 2; round++) {
    int menus = round == 0 ? 5 : 40;
    json_t *map = json_object();
    for (int m = 0; m < menus; m++) {
      char name[32];
      snprintf(name, sizeof name, m % 3 ? "menu_%d" : "m%d", m);
      json_t *crud = json_object();
      for (int p = 0; p < 4; p++)
        if ((m + p) % 3)
          json_object_set_new(crud, perms[p], json_boolean((m * 7 + p) % 2));
      json_object_set_new(map, name, crud);
    }
    json_object_set_new(map, "abc", json_pack("{s:b}", "read", 1));
    json_object_set_new(map, "ab", json_pack("{s:b}", "read", 0));
    int64_t user = 500 + round;
    assert_int_equal(miscache_permissions_set(mc, user, map), MISCACHE_OK);
    bool a = false;
    for (int i = 0; i < 100; i++) { /* until the map is a near hit */
      uint64_t h = stats_of(mc).hits;
      assert_int_equal(miscache_permissions_check(mc, user, "m0",
                                                  MISCACHE_PERM_READ, no_load,
                                                  NULL, &a, NULL),
                       MISCACHE_OK);
      if (stats_of(mc).hits > h) break;
      mt_sleep_ms(5);
    }
    const char *extra[] = {"",   "m",          "menu_", "menu_1x",
                           "ab", "ab\xc2\xb7", "zzz"};
    int asked = 0;
    for (int m = -7; m < menus; m++) {
      char name[32];
      if (m < 0)
        snprintf(name, sizeof name, "%s", extra[m + 7]);
      else
        snprintf(name, sizeof name, m % 3 ? "menu_%d" : "m%d", m);
      for (int p = 0; p < 4; p++) {
        bool near = true, want = true;
        uint64_t h = stats_of(mc).hits;
        assert_int_equal(miscache_permissions_check(mc, user, name,
                                                    (miscache_perm_t)p, no_load,
                                                    NULL, &near, NULL),
                         MISCACHE_OK);
        assert_true(stats_of(mc).hits ==
                    h + 1); /* answered by the near cache */
        assert_int_equal(miscache_permissions_check(plain, user, name,
                                                    (miscache_perm_t)p, no_load,
                                                    NULL, &want, NULL),
                         MISCACHE_OK);
        json_t *crud = json_object_get(map, name);
        bool truth = json_is_true(json_object_get(crud, perms[p]));
        if (near != want || near != truth)
          fail_msg("%d menus, %s.%s: near %d, plain %d, map %d", menus, name,
                   perms[p], near, want, truth);
        asked++;
      }
    }
    assert_int_equal(asked, (menus + 7) * 4);
    /* a write through the library: the next check answers from it */
    for (int v = 1; v >= 0; v--) {
      json_object_set_new(map, "m0", json_pack("{s:b}", "read", v));
      assert_int_equal(miscache_permissions_set(mc, user, map), MISCACHE_OK);
      assert_int_equal(miscache_permissions_check(mc, user, "m0",
                                                  MISCACHE_PERM_READ, no_load,
                                                  NULL, &a, NULL),
                       MISCACHE_OK);
      assert_int_equal(a, v);
    }
    json_decref(map);
  }
  /* each user id's near key is its own: neighbours whose digits differ
   * only in a sign or an end answer differently, every one a near hit */
  const int64_t users[] = {1,  -1, 10, 0, 7, INT64_MAX, INT64_MIN,
                           -10, 100};
  size_t nu = sizeof users / sizeof *users;
  for (size_t u = 0; u < nu; u++) {
    json_t *m = json_pack("{s:{s:b}}", "sales", "read", (int)(u % 2));
    assert_int_equal(miscache_permissions_set(mc, users[u], m), MISCACHE_OK);
    json_decref(m);
  }
  for (int round = 0; round < 3; round++) /* misses, then near hits */
    for (size_t u = 0; u < nu; u++) {
      bool a = !(u % 2);
      assert_int_equal(miscache_permissions_check(mc, users[u], "sales",
                                                  MISCACHE_PERM_READ, no_load,
                                                  NULL, &a, NULL),
                       MISCACHE_OK);
      if (a != (bool)(u % 2))
        fail_msg("user %lld: read %d, want %d", (long long)users[u], a,
                 (int)(u % 2));
    }
  /* a stored map of the wrong shape: never answered from a view, the
   * loader's map replaces it */
  mt_raw_set(mc, MISCACHE_DB_CACHE, "permissions:user:502",
             "{\"sales\":{\"read\":\"yes\"}}");
  bool a = true;
  for (int i = 0; i < 3; i++)
    assert_int_equal(miscache_permissions_check(mc, 502, "sales",
                                                MISCACHE_PERM_READ, no_load,
                                                NULL, &a, NULL),
                     MISCACHE_ERR_LOADER);
  miscache_free(plain);
  miscache_free(mc);
}

/* A master list answered by the near cache is the stored array (a near
 * hit, the same value each time; a copy each time with copy_values), and
 * follows a write at once. */
static void test_master_view(void **state) {
  (void)state;
  for (int copy = 0; copy < 2; copy++) {
    miscache_near_t n = near_opts(0);
    n.copy_values = copy;
    miscache_t *mc = open_near(&n);
    wait_connected(mc);
    json_t *list = json_pack("[{s:i,s:s},{s:i,s:s}]", "id", 1, "code", "A",
                             "id", 2, "code", "B");
    assert_int_equal(miscache_master_set(mc, MISCACHE_MASTER_BRANDS, list),
                     MISCACHE_OK);
    json_t *first = NULL;
    for (int i = 0; i < 100; i++) { /* until a near hit */
      uint64_t h = stats_of(mc).hits;
      json_t *v = NULL;
      assert_int_equal(miscache_master_get(mc, MISCACHE_MASTER_BRANDS, &v),
                       MISCACHE_OK);
      assert_true(json_equal(v, list));
      bool hit = stats_of(mc).hits > h;
      if (hit && !first) {
        first = v;
        break;
      }
      json_decref(v);
      mt_sleep_ms(5);
    }
    assert_non_null(first);
    uint64_t h = stats_of(mc).hits;
    json_t *again = NULL;
    assert_int_equal(miscache_master_get(mc, MISCACHE_MASTER_BRANDS, &again),
                     MISCACHE_OK);
    assert_int_equal(stats_of(mc).hits, h + 1);
    assert_true(json_equal(again, list));
    if (copy)
      assert_ptr_not_equal(again, first);
    else
      assert_ptr_equal(again, first);
    json_decref(again);
    json_decref(first);
    json_t *two = json_pack("[{s:i,s:s}]", "id", 3, "code", "C");
    assert_int_equal(miscache_master_set(mc, MISCACHE_MASTER_BRANDS, two),
                     MISCACHE_OK);
    assert_int_equal(miscache_master_get(mc, MISCACHE_MASTER_BRANDS, &again),
                     MISCACHE_OK);
    assert_true(json_equal(again, two));
    json_decref(again);
    json_decref(two);
    json_decref(list);
    miscache_free(mc);
  }
}

static void test_options(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  miscache_near_t n = near_opts(0);
  n.families = 1ull << MISCACHE_KF_BATCH_LOCK; /* never a lock */
  assert_int_equal(miscache_options_set_near_cache(o, &n),
                   MISCACHE_ERR_INVALID);
  n.families = 1ull << 40;
  assert_int_equal(miscache_options_set_near_cache(o, &n),
                   MISCACHE_ERR_INVALID);
  n = near_opts(5); /* below 10 ms */
  assert_int_equal(miscache_options_set_near_cache(o, &n),
                   MISCACHE_ERR_INVALID);
  assert_int_equal(miscache_options_set_near_cache(o, NULL), MISCACHE_OK);
  miscache_options_free(o);
  /* off by default: no figures, every read goes to Redis */
  miscache_t *mc = mt_open(NULL);
  raw_set_v(mc, PERM_KEY, 1);
  assert_int_equal(read_v(mc, PERM_KEY), 1);
  assert_int_equal(read_v(mc, PERM_KEY), 1);
  miscache_near_stats_t s = stats_of(mc);
  assert_false(s.enabled);
  assert_int_equal(s.hits, 0);
  miscache_free(mc);
}

static void test_hit_and_invalidation(void **state) {
  (void)state;
  miscache_near_t n = near_opts(0);
  miscache_t *mc = open_near(&n);
  wait_connected(mc);
  raw_set_v(mc, PERM_KEY, 1);
  mt_sleep_ms(20); /* the write's own invalidation message passes by */
  assert_int_equal(read_v(mc, PERM_KEY), 1); /* miss: from Redis */
  long long gets = gets_total();
  for (int i = 0; i < 100; i++) assert_int_equal(read_v(mc, PERM_KEY), 1);
  /* no GET reached the server for those 100 reads */
  assert_int_equal(gets_total(), gets);
  miscache_near_stats_t s = stats_of(mc);
  assert_int_equal(s.hits, 100);
  assert_int_equal(s.misses, 1);
  assert_int_equal(s.entries, 1);
  assert_int_equal(s.links, mt_is_cluster() ? 3 : 1);
  /* the same figures as Prometheus text; a short buffer is cut, terminated */
  char text[4096], small[16];
  size_t need = miscache_near_prometheus(&s, text, sizeof text);
  assert_true(need > 0 && need < sizeof text);
  assert_int_equal(strlen(text), need);
  assert_non_null(
      strstr(text, "\nmiscache_near_reads_total{result=\"hit\"} 100\n"));
  assert_non_null(
      strstr(text, "\nmiscache_near_reads_total{result=\"miss\"} 1\n"));
  assert_non_null(strstr(text, "\nmiscache_near_entries 1\n"));
  assert_non_null(strstr(text, "\nmiscache_near_connected 1\n"));
  assert_int_equal(miscache_near_prometheus(&s, small, sizeof small), need);
  assert_int_equal(strlen(small), sizeof small - 1);
  /* the read counters count near hits as hits */
  miscache_counters_t c;
  miscache_counters_get(mc, MISCACHE_DB_CACHE, &c);
  assert_int_equal(c.hits, 101);

  /* another client writes: the server's message evicts it */
  raw_set_v(mc, PERM_KEY, 2);
  int ms = until_v(mc, PERM_KEY, 2);
  printf("  another client's write seen after %d ms\n", ms);
  assert_true(ms >= 0);
  assert_true(stats_of(mc).invalidations >= 1);

  /* a write through the library: read your writes at once (the write's
   * own message may evict it first: one of the two counts it) */
  cache_it(mc, PERM_KEY, 2);
  miscache_near_stats_t s0 = stats_of(mc);
  json_t *nv = json_pack("{s:i}", "v", 3);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, PERM_KEY, nv,
                                MISCACHE_TTL_PERMISSIONS),
                   MISCACHE_OK);
  json_decref(nv);
  s = stats_of(mc);
  assert_true(s.local_evictions + s.invalidations >=
              s0.local_evictions + s0.invalidations + 1);
  assert_int_equal(s.entries, 0);
  assert_int_equal(read_v(mc, PERM_KEY), 3);
  bool deleted = false;
  assert_int_equal(miscache_delete(mc, MISCACHE_DB_CACHE, PERM_KEY, &deleted),
                   MISCACHE_OK);
  assert_int_equal(read_v(mc, PERM_KEY), -1);

  /* a family that is not near-cached is always read from Redis */
  raw_set_v(mc, "session:user:1", 5);
  long long h0 = (long long)stats_of(mc).hits;
  assert_int_equal(read_v(mc, "session:user:1"), 5);
  assert_int_equal(read_v(mc, "session:user:1"), 5);
  assert_int_equal((long long)stats_of(mc).hits, h0);

  /* FLUSHDB: a null message empties the cache */
  raw_set_v(mc, PERM_KEY, 7);
  cache_it(mc, PERM_KEY, 7);
  uint64_t f0 = stats_of(mc).flushes;
  char cmd[64];
  snprintf(cmd, sizeof cmd, "SELECT %d",
           miscache_db_number(mc, MISCACHE_DB_CACHE));
  if (!mt_is_cluster()) mt_raw_cmd(cmd); /* a cluster has db 0 only */
  mt_raw_cmd("FLUSHDB");
  for (int i = 0; i < 200 && stats_of(mc).flushes == f0; i++) mt_sleep_ms(10);
  assert_true(stats_of(mc).flushes > f0);
  assert_int_equal(stats_of(mc).entries, 0);
  assert_int_equal(read_v(mc, PERM_KEY), -1);
  miscache_free(mc);
}

static void test_ttl_and_bounds(void **state) {
  (void)state;
  miscache_near_t n = near_opts(0);
  n.max_entries = 50;
  miscache_t *mc = open_near(&n);
  wait_connected(mc);
  /* the entry dies with the key's TTL */
  char full[128];
  snprintf(full, sizeof full, "%s%s", miscache_namespace(mc), PERM_KEY);
  redisReply *r = mt_cmd_in(mt_rc, miscache_db_number(mc, MISCACHE_DB_CACHE),
                            "SET %s {\"v\":9} PX 300", full);
  freeReplyObject(r);
  mt_sleep_ms(20);
  assert_int_equal(read_v(mc, PERM_KEY), 9);
  assert_int_equal(read_v(mc, PERM_KEY), 9);
  assert_int_equal(stats_of(mc).hits, 1);
  mt_sleep_ms(400);
  assert_int_equal(read_v(mc, PERM_KEY), -1);
  /* 200 keys through a cache of 50 entries */
  char k[64];
  for (int i = 0; i < 200; i++) {
    snprintf(k, sizeof k, "permissions:user:%d", 100 + i);
    raw_set_v(mc, k, i);
  }
  mt_sleep_ms(20); /* the writes' invalidation messages pass by */
  for (int i = 0; i < 200; i++) {
    snprintf(k, sizeof k, "permissions:user:%d", 100 + i);
    assert_int_equal(read_v(mc, k), i);
  }
  miscache_near_stats_t s = stats_of(mc);
  printf("  200 keys, cap 50: %llu entries, %llu evictions, %llu bytes\n",
         (unsigned long long)s.entries, (unsigned long long)s.evictions,
         (unsigned long long)s.bytes);
  assert_int_equal(s.entries, 50);
  assert_int_equal(s.evictions, 150);
  /* the most recent ones are the ones kept */
  assert_int_equal(read_v(mc, "permissions:user:299"), 199);
  uint64_t h0 = stats_of(mc).hits;
  assert_int_equal(read_v(mc, "permissions:user:299"), 199);
  assert_int_equal(stats_of(mc).hits, h0 + 1);
  miscache_free(mc);

  /* bytes: 64 KiB with 1 KiB values */
  n = near_opts(0);
  n.max_bytes = 64 * 1024;
  mc = open_near(&n);
  wait_connected(mc);
  char big[1100];
  memset(big, 'x', sizeof big);
  for (int i = 0; i < 200; i++) {
    char val[1200];
    snprintf(k, sizeof k, "permissions:user:%d", 1000 + i);
    snprintf(val, sizeof val, "{\"v\":%d,\"pad\":\"%.1000s\"}", i, big);
    mt_raw_set(mc, MISCACHE_DB_CACHE, k, val);
  }
  mt_sleep_ms(20);
  for (int i = 0; i < 200; i++) {
    snprintf(k, sizeof k, "permissions:user:%d", 1000 + i);
    assert_int_equal(read_v(mc, k), i);
  }
  s = stats_of(mc);
  printf("  200 x 1 KiB, cap 64 KiB: %llu entries, %llu bytes\n",
         (unsigned long long)s.entries, (unsigned long long)s.bytes);
  assert_true(s.bytes <= 64 * 1024);
  assert_true(s.entries >= 55 && s.entries <= 64); /* ~1,040 bytes each */
  miscache_free(mc);
}

/* Kill the near cache's invalidation connections (the pubsub clients):
 * on a cluster, on every node. How many were killed (-1: a node did not
 * answer). */
static long long kill_subscribers(const mt_cluster_t *c) {
  long long killed = 0;
  for (int i = 0; i < (c ? c->n : 1); i++) {
    if (c && c->node[i].pid <= 0) continue;
    redisContext *rc = c ? mt_raw(&c->node[i], NULL) : mt_rc;
    redisReply *r = rc ? redisCommand(rc, "CLIENT KILL TYPE pubsub") : NULL;
    killed = r && r->type == REDIS_REPLY_INTEGER && killed >= 0
                 ? killed + r->integer
                 : -1;
    if (r) freeReplyObject(r);
    if (c && rc) redisFree(rc);
  }
  return killed;
}

static void test_connection_loss(void **state) {
  (void)state;
  miscache_near_t n = near_opts(0);
  miscache_t *mc = open_near(&n);
  wait_connected(mc);
  raw_set_v(mc, PERM_KEY, 1);
  mt_sleep_ms(20);
  assert_int_equal(read_v(mc, PERM_KEY), 1);
  assert_int_equal(read_v(mc, PERM_KEY), 1);
  miscache_near_stats_t s0 = stats_of(mc);
  assert_int_equal(s0.entries, 1);
  /* kill the invalidation connection: the cache is emptied at once */
  assert_true(kill_subscribers(mt_cluster_active) >= (mt_is_cluster() ? 3 : 1));
  /* within one interval (2 pings) nothing is served from it any more */
  mt_sleep_ms(2 * 100 + 20);
  assert_false(stats_of(mc).connected && stats_of(mc).entries);
  /* a write while it is down is not missed */
  raw_set_v(mc, PERM_KEY, 2);
  assert_int_equal(read_v(mc, PERM_KEY), 2);
  wait_connected(mc);
  miscache_near_stats_t s1 = stats_of(mc);
  assert_string_equal(s1.error, ""); /* confirmed again */
  assert_true(s1.flushes > s0.flushes);
  assert_true(s1.reconnects > s0.reconnects);
  assert_int_equal(read_v(mc, PERM_KEY), 2);
  assert_int_equal(read_v(mc, PERM_KEY), 2);
  assert_true(stats_of(mc).hits > s1.hits);
  miscache_free(mc);
}

/* ---- stale reads ----------------------------------------------------------- */

#define MAXV 200000
typedef struct {
  _Atomic long long latest; /* highest acknowledged version */
  _Atomic int64_t acked[MAXV]; /* CLOCK_MONOTONIC ns of each ack */
  _Atomic int stop;
} shared_t;

static shared_t *sh;
static int64_t interval_ns;
static char full_key[128];
static int phys_db;

/* Where the writer writes: the test server, a cluster (c), or Sentinel's
 * master (sn); with wait, an acknowledgement is a SET its replica has too
 * (WAIT 1), so a failover cannot lose it. */
typedef struct {
  const mt_cluster_t *c;
  const mt_sentinels_t *sn;
  bool wait;
} target_t;

/* The server to connect to: node at of a cluster, the master the sentinels
 * name, or the test server. NULL when nobody can say. */
static const mt_server_t *node_of(const target_t *t, int at) {
  if (t->c) return &t->c->node[at];
  if (!t->sn) return &mt_srv;
  int port = mt_sentinel_master_port(t->sn, at % 3);
  return port == t->sn->master.port    ? &t->sn->master
         : port == t->sn->replica.port ? &t->sn->replica
                                       : NULL;
}

/* Where to write after reply r (NULL: no connection): on a cluster the
 * node a MOVED names, else the next node; behind Sentinel the next
 * sentinel to ask; the test server stays 0. */
static int next_node(const target_t *t, int at, const redisReply *r) {
  const mt_cluster_t *c = t->c;
  if (!c) return t->sn ? (at + 1) % 3 : 0;
  const char *colon =
      r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "MOVED", 5)
          ? strrchr(r->str, ':')
          : NULL;
  for (int i = 0; colon && i < c->n; i++)
    if (c->node[i].port == atoi(colon + 1)) return i;
  return (at + 1) % c->n;
}

/* Writer process: SET the version, record the ack time, again. On a
 * cluster it follows MOVED (and a dead master's replica); behind Sentinel
 * it goes where the sentinels say after a failed write. */
static void writer(const target_t *t) {
  signal(SIGPIPE, SIG_IGN); /* a write to a killed server: EPIPE, not death */
  const mt_cluster_t *c = t->c;
  redisContext *rc = NULL;
  int at = 0;
  pid_t parent = getppid();
  for (long long v = 1; v < MAXV && !atomic_load(&sh->stop) &&
                        getppid() == parent;) {
    if (!rc || rc->err) {
      if (rc) redisFree(rc);
      const mt_server_t *srv = node_of(t, at);
      rc = srv ? mt_raw(srv, NULL) : NULL;
      if (!rc || rc->err) {
        at = next_node(t, at, NULL);
        mt_sleep_ms(5);
        continue;
      }
    }
    redisReply *r = NULL;
    if (!c) {
      r = redisCommand(rc, "SELECT %d", phys_db);
      if (r) freeReplyObject(r);
    }
    r = redisCommand(rc, "SET %s {\"v\":%lld} EX 600", full_key, v);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (!ok) { /* try the same version again, elsewhere on a cluster */
      int to = next_node(t, at, r);
      if (r) freeReplyObject(r);
      if (to != at) { /* elsewhere: a new connection */
        redisFree(rc);
        rc = NULL;
      }
      at = to;
      mt_sleep_ms(1);
      continue;
    }
    freeReplyObject(r);
    if (t->wait) {
      r = redisCommand(rc, "WAIT 1 200");
      ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
      if (r) freeReplyObject(r);
      if (!ok) continue;
    }
    atomic_store(&sh->acked[v], mt_now_ns());
    atomic_store(&sh->latest, v);
    v++;
    mt_sleep_ms(0);
  }
  if (rc) redisFree(rc);
  mt_child_exit(0);
}

typedef struct {
  miscache_t *mc;
  long reads, stale, errors, hits;
} reader_t;

static void *reader(void *arg) {
  reader_t *r = arg;
  while (!atomic_load(&sh->stop)) {
    int64_t start = mt_now_ns();
    /* the newest version acknowledged at least one interval ago */
    long long need = atomic_load(&sh->latest);
    while (need > 0 && atomic_load(&sh->acked[need]) + interval_ns > start)
      need--;
    long long got = read_v(r->mc, PERM_KEY);
    r->reads++;
    if (got == -2) { /* an outage: let the writer and the servers run */
      r->errors++;
      mt_sleep_ms(1);
    } else if (got >= 0 && got < need) {
      r->stale++;
    }
  }
  return NULL;
}

typedef struct {
  long reads, stale, errors;
  long long latest;
  miscache_near_stats_t st;
} stale_t;

/* A fault step: "" when it did what it should, else why not (a failed
 * assertion there would leave the reader threads running on a stack that
 * is gone). */
typedef struct {
  char why[512];
} fault_t;

#define FCHECK(f, cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      if (!(f)->why[0]) snprintf((f)->why, sizeof(f)->why, __VA_ARGS__);       \
      return;                                                                  \
    }                                                                          \
  } while (0)

/* Whether the store is confirmed within 30 s. */
static bool connected_within(miscache_t *mc) {
  for (int i = 0; i < 3000 && !stats_of(mc).connected; i++)
    mt_sleep_ms(10);
  return stats_of(mc).connected;
}

/* The stale-read run: a pool of 4 readers (ping_ms 25) on url, the writer
 * process writing to target, faults() in the middle. */
static void stale_run(const char *url, const target_t *target,
                      void (*faults)(miscache_t *mc, fault_t *f),
                      stale_t *out) {
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_command_timeout(o, 500);
  miscache_options_set_backoff(o, 10, 50);
  miscache_options_set_url(o, url);
  miscache_options_set_namespace(o, mt_namespace());
  miscache_options_set_lazy_connect(o, true);
  /* the writer forks before the library starts a thread: a child of a
   * threaded process keeps the threads' memory but not the threads */
  miscache_t *probe = NULL;
  char err[256];
  assert_int_equal(miscache_open(o, &probe, err, sizeof err), MISCACHE_OK);
  snprintf(full_key, sizeof full_key, "%s%s", miscache_namespace(probe),
           PERM_KEY);
  phys_db = miscache_db_number(probe, MISCACHE_DB_CACHE);
  miscache_free(probe);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(sh != MAP_FAILED);
  memset(sh, 0, sizeof *sh);
  pid_t w = fork();
  if (w == 0) writer(target);
  miscache_near_t n = near_opts(25);
  interval_ns = 2 * 25 * 1000000LL; /* served only 2 pings long */
  miscache_options_set_near_cache(o, &n);
  miscache_options_set_lazy_connect(o, false);
  miscache_pool_t *pool = NULL;
  miscache_status_t st = miscache_pool_new(o, 4, &pool, err, sizeof err);
  miscache_options_free(o);
  reader_t rd[4] = {{0}};
  for (int i = 0; st == MISCACHE_OK && i < 4; i++)
    st = miscache_pool_acquire(pool, 0, &rd[i].mc);
  fault_t f = {""};
  if (st != MISCACHE_OK)
    snprintf(f.why, sizeof f.why, "pool: %s", err);
  else if (!connected_within(rd[0].mc))
    snprintf(f.why, sizeof f.why, "never confirmed: %s",
             stats_of(rd[0].mc).error);
  pthread_t t[4];
  int started = 0;
  while (!f.why[0] && started < 4 &&
         pthread_create(&t[started], NULL, reader, &rd[started]) == 0)
    started++;
  if (!f.why[0]) {
    mt_sleep_ms(1000);
    faults(rd[0].mc, &f);
  }
  atomic_store(&sh->stop, 1);
  memset(out, 0, sizeof *out);
  for (int i = 0; i < started; i++) {
    pthread_join(t[i], NULL);
    out->reads += rd[i].reads, out->stale += rd[i].stale;
    out->errors += rd[i].errors;
  }
  int status;
  waitpid(w, &status, 0);
  if (rd[0].mc) out->st = stats_of(rd[0].mc);
  out->latest = atomic_load(&sh->latest);
  printf("  writer acknowledged %lld versions; 4 readers: %ld reads, %llu "
         "near hits, %ld stale, %ld errors; %llu invalidations, %llu "
         "flushes, %llu reconnects, %u links\n",
         out->latest, out->reads, (unsigned long long)out->st.hits, out->stale,
         out->errors, (unsigned long long)out->st.invalidations,
         (unsigned long long)out->st.flushes,
         (unsigned long long)out->st.reconnects, (unsigned)out->st.links);
  for (int i = 0; i < 4; i++)
    if (rd[i].mc) miscache_pool_release(pool, rd[i].mc);
  miscache_pool_free(pool);
  munmap(sh, sizeof *sh);
  if (f.why[0]) fail_msg("%s", f.why);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* the writer */
}

/* Standalone: CLIENT KILL of the invalidation connection, then the server
 * killed and restarted (it comes back empty). */
static void kill_and_restart(miscache_t *mc, fault_t *f) {
  (void)mc;
  FCHECK(f, kill_subscribers(NULL) >= 1, "no invalidation connection to kill");
  mt_sleep_ms(1000);
  mt_server_kill(&mt_srv);
  mt_sleep_ms(200);
  FCHECK(f, mt_server_restart(&mt_srv) == 0, "the server did not restart");
  redisFree(mt_rc);
  mt_rc = mt_raw(&mt_srv, NULL);
  mt_sleep_ms(1500);
}

/* Cluster: CLIENT KILL on every node, then the key's slot moved to
 * another master and back (its writes come from the new owner's link). */
static void kill_and_move(miscache_t *mc, fault_t *f) {
  (void)mc;
  const mt_cluster_t *c = mt_cluster_active;
  FCHECK(f, kill_subscribers(c) >= 3,
         "not one invalidation connection per "
         "master");
  mt_sleep_ms(700);
  unsigned slot = miscache__key_slot(full_key, strlen(full_key));
  int a = mt_cluster_owner(c, slot), b = (a + 1) % c->n;
  FCHECK(f, a >= 0, "no owner of slot %u", slot);
  FCHECK(f, mt_cluster_move_slot(c, a, b, slot, 20) == 0, "slot move failed");
  FCHECK(f, mt_cluster_owner(c, slot) == b, "slot %u not moved", slot);
  mt_sleep_ms(700);
  FCHECK(f, mt_cluster_move_slot(c, b, a, slot, 20) == 0, "move back failed");
  mt_sleep_ms(700);
}

static void test_stale_reads(void **state) {
  (void)state;
  stale_t r;
  target_t t = {.c = mt_cluster_active};
  stale_run(mt_srv.url, &t, mt_is_cluster() ? kill_and_move : kill_and_restart,
            &r);
  assert_int_equal(r.stale, 0);
  assert_true(r.st.hits > 1000); /* the near cache did serve */
  /* first, after the kill, after the restart (on every master) */
  assert_true(r.st.reconnects >= (mt_is_cluster() ? 6 : 3));
  assert_true(r.st.connected);
}

/* ---- a cluster master SIGKILLed (its replica takes over) ------------------
 */

static mt_cluster_t fc; /* with replicas, for this test alone */
static atomic_llong failover_ms;

/* After a failover: restart (may be NULL) the old master, which comes back
 * as the new one's replica; then until the writer's replicated writes go
 * on (50 more than before: its WAIT 1 needs that replica) and the near
 * cache is confirmed again, on the new master. */
static void resumed(miscache_t *mc, mt_server_t *restart, long long before,
                    int64_t t0, fault_t *f) {
  FCHECK(f, !restart || mt_server_restart(restart) == 0, "no restart");
  while (atomic_load(&sh->latest) < before + 50 &&
         mt_now_ns() - t0 < 60LL * 1000000000)
    mt_sleep_ms(10);
  FCHECK(f, atomic_load(&sh->latest) >= before + 50,
         "the writer's writes did not go on (%lld, then %lld)", before,
         atomic_load(&sh->latest));
  FCHECK(f, connected_within(mc), "not confirmed again: %s",
         stats_of(mc).error);
}

static void kill_master(miscache_t *mc, fault_t *f) {
  unsigned slot = miscache__key_slot(full_key, strlen(full_key));
  int a = mt_cluster_owner(&fc, slot);
  FCHECK(f, a >= 0, "no owner of slot %u", slot);
  long long before = atomic_load(&sh->latest);
  int64_t t0 = mt_now_ns();
  mt_server_kill(&fc.node[a]);
  /* until its replica owns the slot */
  int b = -1;
  while (((b = mt_cluster_owner(&fc, slot)) < 0 || b == a) &&
         mt_now_ns() - t0 < 30LL * 1000000000)
    mt_sleep_ms(10);
  atomic_store(&failover_ms, (mt_now_ns() - t0) / 1000000);
  FCHECK(f, b >= 0 && b != a, "no failover within 30 s");
  resumed(mc, &fc.node[a], before, t0, f);
  mt_sleep_ms(1000);
}

static void test_cluster_failover(void **state) {
  (void)state;
  if (!mt_is_cluster()) skip();
  assert_int_equal(mt_cluster_start(&fc, 3, true), 0);
  const mt_cluster_t *saved = mt_cluster_active;
  mt_cluster_active = &fc;
  stale_t r;
  target_t t = {.c = &fc, .wait = true};
  stale_run(fc.url, &t, kill_master, &r);
  printf("  master SIGKILLed: its replica owned the slot after %lld ms\n",
         (long long)atomic_load(&failover_ms));
  mt_cluster_active = saved;
  mt_cluster_stop(&fc);
  assert_int_equal(r.stale, 0);
  assert_true(r.st.hits > 1000);
  assert_int_equal(r.st.links, 3);
  assert_true(r.st.reconnects >= 6); /* 3, then 3 on the new masters */
}

/* ---- Sentinel: SENTINEL FAILOVER, then the master SIGKILLed ------------- */

static mt_sentinels_t dep; /* for this test alone */

/* Until the sentinels name a master other than old and the writer's
 * replicated writes go on (the old master must come back as a replica);
 * then the near cache serves again. */
static void until_switched(miscache_t *mc, int old, mt_server_t *restart,
                           fault_t *f) {
  long long before = atomic_load(&sh->latest);
  int64_t t0 = mt_now_ns();
  int now = old;
  while ((now = mt_sentinel_master_port(&dep, 1)) == old &&
         mt_now_ns() - t0 < 30LL * 1000000000)
    mt_sleep_ms(5);
  printf("  sentinels named %d instead of %d after %lld ms\n", now, old,
         (long long)((mt_now_ns() - t0) / 1000000));
  FCHECK(f, now != old, "no failover within 30 s");
  resumed(mc, restart, before, t0, f);
  mt_sleep_ms(500);
}

static void sentinel_faults(miscache_t *mc, fault_t *f) {
  int old = mt_sentinel_master_port(&dep, 0);
  redisReply *r = mt_sentinel_cmd(&dep, 0, "SENTINEL FAILOVER mymaster");
  bool ok = r && r->type != REDIS_REPLY_ERROR;
  if (r) freeReplyObject(r);
  FCHECK(f, ok, "SENTINEL FAILOVER refused");
  until_switched(mc, old, NULL, f);
  if (f->why[0]) return;
  old = mt_sentinel_master_port(&dep, 0);
  mt_server_t *m = old == dep.master.port ? &dep.master : &dep.replica;
  mt_server_kill(m);
  until_switched(mc, old, m, f);
}

static void test_sentinel_failover(void **state) {
  (void)state;
  if (mt_is_cluster() || mt_srv.tls) skip();
  assert_int_equal(mt_sentinels_start(&dep), 0);
  stale_t r;
  target_t t = {.sn = &dep, .wait = true};
  stale_run(dep.url, &t, sentinel_faults, &r);
  mt_sentinels_stop(&dep);
  assert_int_equal(r.stale, 0);
  assert_true(r.st.hits > 1000);
  assert_true(r.st.reconnects >= 3); /* first, on each new master */
}

/* The Flask app's writes: redis-py SETs versions, each acknowledged time
 * fed to the same check as above. */
static void test_redis_py_writer(void **state) {
  (void)state;
  miscache_near_t n = near_opts(25);
  interval_ns = 2 * 25 * 1000000LL;
  reader_t rd = {.mc = open_near(&n)};
  wait_connected(rd.mc);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(sh != MAP_FAILED);
  memset(sh, 0, sizeof *sh);
  /* on a cluster through redis-py's own cluster client */
  char conn[256], cmd[1024];
  if (mt_is_cluster())
    snprintf(conn, sizeof conn,
             "from redis.cluster import RedisCluster\n"
             "r = RedisCluster(host=\"127.0.0.1\", port=%d)\n",
             mt_cluster_active->node[0].port);
  else
    snprintf(conn, sizeof conn,
             "r = redis.Redis(unix_socket_path=\"%s\", db=%d)\n", mt_srv.sock,
             miscache_db_number(rd.mc, MISCACHE_DB_CACHE));
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c '\n"
           "import redis, time\n"
           "%s"
           "for v in range(1, 301):\n"
           "    r.set(\"%s%s\", \"{\\\"v\\\": %%d}\" %% v, ex=600)\n"
           "    print(v, time.monotonic_ns(), flush=True)\n"
           "    time.sleep(0.002)\n'",
           conn, miscache_namespace(rd.mc), PERM_KEY);
  pthread_t t;
  pthread_create(&t, NULL, reader, &rd);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  long long v, ns;
  int lines = 0;
  while (fscanf(p, "%lld %lld", &v, &ns) == 2 && v > 0 && v < MAXV) {
    atomic_store(&sh->acked[v], (int64_t)ns);
    atomic_store(&sh->latest, v);
    lines++;
  }
  assert_int_equal(pclose(p), 0);
  mt_sleep_ms(100);
  atomic_store(&sh->stop, 1);
  pthread_join(t, NULL);
  miscache_near_stats_t s = stats_of(rd.mc);
  printf("  redis-py wrote %d versions; %ld reads, %llu near hits, %ld "
         "stale, %llu invalidations\n",
         lines, rd.reads, (unsigned long long)s.hits, rd.stale,
         (unsigned long long)s.invalidations);
  assert_int_equal(lines, 300);
  assert_int_equal(rd.stale, 0);
  assert_int_equal(rd.errors, 0);
  assert_true(s.invalidations >= 250);
  assert_int_equal(read_v(rd.mc, PERM_KEY), 300);
  miscache_free(rd.mc);
  munmap(sh, sizeof *sh);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_hit_and_invalidation),
      cmocka_unit_test(test_every_write_reads_its_own),
      cmocka_unit_test(test_permission_view_matches_the_map),
      cmocka_unit_test(test_master_view),
      cmocka_unit_test(test_ttl_and_bounds),
      cmocka_unit_test(test_connection_loss),
      cmocka_unit_test(test_redis_py_writer),
      cmocka_unit_test(test_stale_reads),
      cmocka_unit_test(test_cluster_failover),
      cmocka_unit_test(test_sentinel_failover),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

/* A server with a small maxmemory and allkeys-lru: the library keeps
 * writing (every write OK), evicted keys read as misses (never an error,
 * never a wrong value), and the counters say so. With noeviction, a write
 * the server refuses is ERR_SERVER carrying the OOM text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

enum { SESSIONS = 6000, NAME_LEN = 1000 };

static void fill_name(char *buf, int user) {
  int n = snprintf(buf, NAME_LEN + 1, "user-%d-", user);
  memset(buf + n, 'a' + user % 26, (size_t)(NAME_LEN - n));
  buf[NAME_LEN] = 0;
}

static void test_allkeys_lru(void **state) {
  (void)state;
  const char *args[] = {"--maxmemory", "4mb", "--maxmemory-policy",
                        "allkeys-lru", NULL};
  mt_server_t s;
  assert_int_equal(mt_server_start(&s, args), 0);
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  assert_int_equal(miscache_open_url(s.url, &mc, err, sizeof err), MISCACHE_OK);
  static char name[NAME_LEN + 1];

  /* ~6 MB of sessions into 4 MB: every write goes through */
  for (int u = 1; u <= SESSIONS; u++) {
    fill_name(name, u);
    miscache_session_t se = {.user_id = u,
                             .username = name,
                             .dept_id = u % 7,
                             .current_company_id = 1};
    assert_int_equal(miscache_session_set(mc, &se), MISCACHE_OK);
  }
  redisContext *rc = mt_raw(&s, NULL);
  assert_non_null(rc);
  long long evicted = mt_info_int(rc, "stats", "\r\nevicted_keys:", -1);

  long hits = 0, misses = 0;
  for (int u = 1; u <= SESSIONS; u++) {
    miscache_session_t back;
    miscache_status_t st = miscache_session_get(mc, u, &back);
    if (st == MISCACHE_OK) {
      hits++;
      fill_name(name, u);
      assert_string_equal(back.username, name);
      assert_int_equal(back.dept_id, u % 7);
    } else {
      assert_int_equal(st, MISCACHE_MISS);
      misses++;
    }
    miscache_session_clear(&back);
  }
  printf("  %d sessions written into maxmemory 4mb: %lld evicted by the "
         "server, %ld read back, %ld misses\n",
         SESSIONS, evicted, hits, misses);
  assert_true(evicted > 0);
  assert_true(hits > 0);
  assert_true(misses > 0);
  miscache_counters_t c;
  miscache_counters_get(mc, MISCACHE_DB_SESSION, &c);
  assert_int_equal(c.hits, hits);
  assert_int_equal(c.misses, misses);
  assert_int_equal(c.errors, 0);

  /* a miss is repaired by cache-aside like any other */
  json_t *v = json_pack("{s:s}", "brand", "REAN");
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, "master:brands", v,
                                MISCACHE_TTL_MASTER_DATA),
                   MISCACHE_OK);
  json_decref(v);

  /* noeviction: the refused write is an error status with the reason */
  redisReply *r = redisCommand(rc, "CONFIG SET maxmemory-policy noeviction");
  freeReplyObject(r);
  miscache_status_t st = MISCACHE_OK;
  for (int u = SESSIONS + 1; u <= SESSIONS + 5000 && st == MISCACHE_OK; u++) {
    fill_name(name, u);
    miscache_session_t se = {.user_id = u, .username = name};
    st = miscache_session_set(mc, &se);
  }
  assert_int_equal(st, MISCACHE_ERR_SERVER);
  assert_non_null(strstr(miscache_errmsg(mc), "OOM"));
  /* reads still work while writes are refused */
  miscache_session_t back;
  st = miscache_session_get(mc, SESSIONS, &back);
  assert_true(st == MISCACHE_OK || st == MISCACHE_MISS);
  miscache_session_clear(&back);
  redisFree(rc);
  miscache_free(mc);
  mt_server_stop(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allkeys_lru),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

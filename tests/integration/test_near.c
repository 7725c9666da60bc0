#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
/* Near cache: hits answered in the process, evicted by the server's
 * invalidation messages (another client's writes, FLUSHDB), by the
 * library's own writes at once, emptied when the invalidation connection
 * is killed or the server restarts; bounded by entries, bytes and the key's
 * TTL; shared by a pool. And the stale-read test: a writer process bumps a
 * version while reader threads read through the near cache; no read that
 * starts one invalidation interval after a write was acknowledged returns
 * an older version, across CLIENT KILL and a server restart. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

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

static void test_options(void **state) {
  (void)state;
  miscache_options_t *o = miscache_options_new();
  miscache_near_t n = near_opts(0);
  n.families = 1ull << MISCACHE_KF_BATCH_LOCK; /* never a lock */
  assert_int_equal(miscache_options_set_near_cache(o, &n), MISCACHE_ERR_INVALID);
  n.families = 1ull << 40;
  assert_int_equal(miscache_options_set_near_cache(o, &n), MISCACHE_ERR_INVALID);
  n = near_opts(5); /* below 10 ms */
  assert_int_equal(miscache_options_set_near_cache(o, &n), MISCACHE_ERR_INVALID);
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
  long long gets = mt_cmdstat_calls(mt_rc, "get");
  for (int i = 0; i < 100; i++) assert_int_equal(read_v(mc, PERM_KEY), 1);
  /* no GET reached the server for those 100 reads */
  assert_int_equal(mt_cmdstat_calls(mt_rc, "get"), gets);
  miscache_near_stats_t s = stats_of(mc);
  assert_int_equal(s.hits, 100);
  assert_int_equal(s.misses, 1);
  assert_int_equal(s.entries, 1);
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

  /* a write through the library: read your writes at once */
  json_t *nv = json_pack("{s:i}", "v", 3);
  assert_int_equal(miscache_set(mc, MISCACHE_DB_CACHE, PERM_KEY, nv,
                                MISCACHE_TTL_PERMISSIONS),
                   MISCACHE_OK);
  json_decref(nv);
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
  mt_raw_cmd(cmd);
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

/* Kill the near cache's invalidation connection (the pubsub clients). */
static void kill_subscriber(void) {
  redisReply *r = redisCommand(mt_rc, "CLIENT KILL TYPE pubsub");
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  assert_true(r->integer >= 1);
  freeReplyObject(r);
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
  kill_subscriber();
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

/* Writer process: SET the version, record the ack time, again. */
static void writer(void) {
  redisContext *c = NULL;
  pid_t parent = getppid();
  for (long long v = 1; v < MAXV && !atomic_load(&sh->stop) &&
                        getppid() == parent;) {
    if (!c || c->err) {
      if (c) redisFree(c);
      c = mt_raw(&mt_srv, NULL);
      if (!c || c->err) {
        mt_sleep_ms(5);
        continue;
      }
    }
    redisReply *r = redisCommand(c, "SELECT %d", phys_db);
    if (r) freeReplyObject(r);
    r = redisCommand(c, "SET %s {\"v\":%lld} EX 600", full_key, v);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ok) continue; /* try the same version again */
    atomic_store(&sh->acked[v], mt_now_ns());
    atomic_store(&sh->latest, v);
    v++;
    mt_sleep_ms(0);
  }
  if (c) redisFree(c);
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
    if (got == -2) r->errors++;
    else if (got >= 0 && got < need) r->stale++;
  }
  return NULL;
}

static void test_stale_reads(void **state) {
  (void)state;
  miscache_near_t n = near_opts(25);
  interval_ns = 2 * 25 * 1000000LL; /* served only 2 pings long */
  miscache_options_t *o = miscache_options_new();
  miscache_options_set_near_cache(o, &n);
  miscache_options_set_command_timeout(o, 500);
  miscache_options_set_backoff(o, 10, 50);
  miscache_options_set_url(o, mt_srv.url);
  miscache_options_set_namespace(o, mt_namespace());
  miscache_pool_t *pool = NULL;
  char err[256];
  assert_int_equal(miscache_pool_new(o, 4, &pool, err, sizeof err),
                   MISCACHE_OK);
  miscache_options_free(o);
  reader_t rd[4] = {{0}};
  for (int i = 0; i < 4; i++)
    assert_int_equal(miscache_pool_acquire(pool, 0, &rd[i].mc), MISCACHE_OK);
  wait_connected(rd[0].mc);
  snprintf(full_key, sizeof full_key, "%s%s", miscache_namespace(rd[0].mc),
           PERM_KEY);
  phys_db = miscache_db_number(rd[0].mc, MISCACHE_DB_CACHE);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(sh != MAP_FAILED);
  memset(sh, 0, sizeof *sh);
  pid_t w = fork();
  if (w == 0) writer();
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, reader, &rd[i]);
  mt_sleep_ms(1000);
  /* kill the invalidation connection */
  kill_subscriber();
  mt_sleep_ms(1000);
  /* restart the server (it comes back empty) */
  mt_server_kill(&mt_srv);
  mt_sleep_ms(200);
  assert_int_equal(mt_server_restart(&mt_srv), 0);
  redisFree(mt_rc);
  mt_rc = mt_raw(&mt_srv, NULL);
  mt_sleep_ms(1500);
  atomic_store(&sh->stop, 1);
  long reads = 0, stale = 0, errors = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    reads += rd[i].reads, stale += rd[i].stale, errors += rd[i].errors;
  }
  int status;
  waitpid(w, &status, 0);
  miscache_near_stats_t s = stats_of(rd[0].mc);
  printf("  writer acknowledged %lld versions; 4 readers: %ld reads, %llu "
         "near hits, %ld stale, %ld errors (restart); %llu invalidations, "
         "%llu flushes, %llu reconnects\n",
         atomic_load(&sh->latest), reads, (unsigned long long)s.hits, stale,
         errors, (unsigned long long)s.invalidations,
         (unsigned long long)s.flushes, (unsigned long long)s.reconnects);
  assert_int_equal(stale, 0);
  assert_true(s.hits > 1000); /* the near cache did serve */
  assert_true(s.reconnects >= 3); /* first, after the kill, after restart */
  for (int i = 0; i < 4; i++) miscache_pool_release(pool, rd[i].mc);
  miscache_pool_free(pool);
  munmap(sh, sizeof *sh);
}

/* The Flask app's writes: redis-py SETs versions, each acknowledged time
 * fed to the same check as above. */
static void test_redis_py_writer(void **state) {
  (void)state;
  if (mt_is_cluster()) skip();
  miscache_near_t n = near_opts(25);
  interval_ns = 2 * 25 * 1000000LL;
  reader_t rd = {.mc = open_near(&n)};
  wait_connected(rd.mc);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(sh != MAP_FAILED);
  memset(sh, 0, sizeof *sh);
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c '\n"
           "import redis, time\n"
           "r = redis.Redis(unix_socket_path=\"%s\", db=%d)\n"
           "for v in range(1, 301):\n"
           "    r.set(\"%s%s\", \"{\\\"v\\\": %%d}\" %% v, ex=600)\n"
           "    print(v, time.monotonic_ns(), flush=True)\n"
           "    time.sleep(0.002)\n'",
           mt_srv.sock, miscache_db_number(rd.mc, MISCACHE_DB_CACHE),
           miscache_namespace(rd.mc), PERM_KEY);
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
      cmocka_unit_test(test_ttl_and_bounds),
      cmocka_unit_test(test_connection_loss),
      cmocka_unit_test(test_redis_py_writer),
      cmocka_unit_test(test_stale_reads),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

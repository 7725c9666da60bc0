/* Work queues on Redis Streams: round trip with ids and enqueue time in
 * the queue db; a poison message ends in the dead-letter stream after
 * max_deliveries tries with its last error; a dead consumer's entries are
 * reclaimed; the length cap's trimming is counted; redis-py reads and acks
 * the entries; 100,000 messages through 4 consumer processes, one SIGKILLed
 * mid-batch (after 2,000): every message reaches the fake system of record at least
 * once, duplicates counted. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static void test_round_trip(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *b[3] = {json_pack("{s:i}", "n", 1), json_pack("{s:i}", "n", 2),
                  json_pack("{s:s}", "s", "three")};
  const char *mids[3] = {"order-1", NULL, "order-3"};
  char ids[3][MISCACHE_QUEUE_ID_SIZE];
  assert_int_equal(miscache_queue_enqueue(mc, "orders", 3,
                                          (const json_t *const *)b, mids, NULL,
                                          ids),
                   MISCACHE_OK);
  /* in the queue db (3), under queue:{orders} */
  assert_int_equal(mt_raw_int(mt_rc, 3, "XLEN %squeue:{orders}",
                              miscache_namespace(mc)),
                   3);
  miscache_queue_msg_t m[5];
  size_t got = 0;
  assert_int_equal(
      miscache_queue_pull(mc, "orders", "writers", "c1", 5, 0, m, &got),
      MISCACHE_OK);
  assert_int_equal(got, 3);
  for (size_t i = 0; i < got; i++) {
    assert_string_equal(m[i].id, ids[i]);
    assert_true(json_equal(m[i].body, b[i]));
    assert_int_equal(m[i].deliveries, 1);
    assert_true(m[i].enqueued_ms > 1700000000000LL);
  }
  assert_string_equal(m[0].msg_id, "order-1");
  assert_int_equal(strlen(m[1].msg_id), 36); /* a UUID was made */
  miscache_queue_info_t qi;
  assert_int_equal(miscache_queue_info(mc, "orders", "writers", &qi),
                   MISCACHE_OK);
  assert_int_equal(qi.length, 3);
  assert_int_equal(qi.pending, 3);
  assert_int_equal(qi.consumers, 1);
  assert_true(qi.oldest_age_ms >= 0 && qi.oldest_age_ms < 60000);
  for (size_t i = 0; i < got; i++) {
    assert_int_equal(miscache_queue_ack(mc, "orders", "writers", m[i].id),
                     MISCACHE_OK);
    miscache_queue_msg_clear(&m[i]);
  }
  assert_int_equal(miscache_queue_info(mc, "orders", "writers", &qi),
                   MISCACHE_OK);
  assert_int_equal(qi.length, 0);
  assert_int_equal(qi.pending, 0);
  /* nothing new: a pull with a short block comes back empty */
  assert_int_equal(
      miscache_queue_pull(mc, "orders", "writers", "c1", 5, 50, m, &got),
      MISCACHE_OK);
  assert_int_equal(got, 0);
  /* bad names */
  assert_int_equal(miscache_queue_enqueue(mc, "a b", 1,
                                          (const json_t *const *)b, NULL, NULL,
                                          NULL),
                   MISCACHE_ERR_KEY);
  assert_int_equal(
      miscache_queue_pull(mc, "orders", "g x", "c1", 5, 0, m, &got),
      MISCACHE_ERR_KEY);
  for (int i = 0; i < 3; i++) json_decref(b[i]);
  miscache_free(mc);
}

static miscache_status_t always_fail(void *ud, const miscache_queue_msg_t *m,
                                     char *err, size_t errlen) {
  (void)m;
  (*(int *)ud)++;
  snprintf(err, errlen, "the system of record refused it");
  return MISCACHE_ERR_LOADER;
}

static void test_poison_dead_letter(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *b = json_pack("{s:s}", "poison", "yes");
  assert_int_equal(miscache_queue_enqueue(mc, "p", 1, (const json_t *const *)&b,
                                          NULL, NULL, NULL),
                   MISCACHE_OK);
  json_decref(b);
  miscache_queue_opts_t o = {.max_deliveries = 3, .reclaim_idle_ms = 1};
  int tries = 0;
  for (int round = 0; round < 10; round++) {
    size_t h = 0;
    assert_int_equal(miscache_queue_consume(mc, "p", "g", "c1", 10, 0, &o,
                                            always_fail, &tries, &h),
                     MISCACHE_OK);
    mt_sleep_ms(5);
  }
  assert_int_equal(tries, 3); /* then it was dead-lettered, not delivered */
  miscache_queue_info_t qi;
  assert_int_equal(miscache_queue_info(mc, "p", "g", &qi), MISCACHE_OK);
  assert_int_equal(qi.dead, 1);
  assert_int_equal(qi.length, 0);
  assert_int_equal(qi.pending, 0);
  miscache_queue_msg_t d;
  char *err = NULL;
  size_t got = 0;
  assert_int_equal(miscache_queue_dead(mc, "p", 1, &d, &err, &got),
                   MISCACHE_OK);
  assert_int_equal(got, 1);
  assert_int_equal(d.deliveries, 3);
  assert_string_equal(json_string_value(json_object_get(d.body, "poison")),
                      "yes");
  assert_string_equal(err, "the system of record refused it");
  free(err);
  miscache_queue_msg_clear(&d);
  /* a body that is not JSON (written by someone else) goes there at once */
  char key[128];
  snprintf(key, sizeof key, "%squeue:{p}", miscache_namespace(mc));
  freeReplyObject(mt_cmd_in(mt_rc, 3, "XADD %s * msg_id x body {{", key));
  miscache_queue_msg_t m[2];
  assert_int_equal(miscache_queue_pull(mc, "p", "g", "c1", 2, 0, m, &got),
                   MISCACHE_OK);
  assert_int_equal(got, 0);
  assert_int_equal(miscache_queue_info(mc, "p", "g", &qi), MISCACHE_OK);
  assert_int_equal(qi.dead, 2);
  miscache_free(mc);
}

static void test_reclaim_and_trim(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *b = json_integer(7);
  const json_t *bs[1] = {b};
  assert_int_equal(miscache_queue_enqueue(mc, "r", 1, bs, NULL, NULL, NULL),
                   MISCACHE_OK);
  miscache_queue_msg_t m[2];
  size_t got = 0;
  /* consumer "dead" takes it and never acks */
  assert_int_equal(miscache_queue_pull(mc, "r", "g", "dead", 2, 0, m, &got),
                   MISCACHE_OK);
  assert_int_equal(got, 1);
  miscache_queue_msg_clear(&m[0]);
  miscache_queue_opts_t o = {.reclaim_idle_ms = 100};
  size_t dead = 0;
  assert_int_equal(
      miscache_queue_reclaim(mc, "r", "g", "alive", 2, &o, m, &got, &dead),
      MISCACHE_OK);
  assert_int_equal(got, 0); /* not idle long enough yet */
  mt_sleep_ms(150);
  assert_int_equal(
      miscache_queue_reclaim(mc, "r", "g", "alive", 2, &o, m, &got, &dead),
      MISCACHE_OK);
  assert_int_equal(got, 1);
  assert_int_equal(m[0].deliveries, 2);
  assert_int_equal(json_integer_value(m[0].body), 7);
  assert_int_equal(miscache_queue_ack(mc, "r", "g", m[0].id), MISCACHE_OK);
  miscache_queue_msg_clear(&m[0]);
  /* the cap: 3,000 messages into a queue capped near 1,000 */
  static const json_t *many[3000];
  for (int i = 0; i < 3000; i++) many[i] = b;
  miscache_queue_opts_t cap = {.maxlen = 1000};
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        miscache_queue_enqueue(mc, "capped", 1000, many, NULL, &cap, NULL),
        MISCACHE_OK);
  miscache_queue_info_t qi;
  assert_int_equal(miscache_queue_info(mc, "capped", NULL, &qi), MISCACHE_OK);
  printf("  3,000 into a queue capped at ~1,000: length %llu, trimmed %llu\n",
         (unsigned long long)qi.length, (unsigned long long)qi.trimmed);
  assert_int_equal(qi.length + qi.trimmed, 3000); /* none silently lost */
  assert_true(qi.trimmed >= 1900);
  json_decref(b);
  miscache_free(mc);
}

static void test_python_consumes(void **state) {
  (void)state;
  if (mt_is_cluster()) skip();
  miscache_t *mc = mt_open(NULL);
  json_t *b = json_pack("{s:i,s:s}", "user_id", 5, "last_activity",
                        "2026-11-25T10:00:00Z");
  const json_t *bs[1] = {b};
  assert_int_equal(
      miscache_queue_enqueue(mc, "py", 1, bs, (const char *[]){"m-5"}, NULL,
                             NULL),
      MISCACHE_OK);
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c '\n"
           "import json, redis\n"
           "r = redis.Redis(unix_socket_path=\"%s\", db=3)\n"
           "k = \"%squeue:{py}\"\n"
           "r.xgroup_create(k, \"flask\", id=\"0\", mkstream=True)\n"
           "[(_, entries)] = r.xreadgroup(\"flask\", \"w1\", {k: \">\"}, count=5)\n"
           "eid, f = entries[0]\n"
           "assert f[b\"msg_id\"] == b\"m-5\", f\n"
           "assert json.loads(f[b\"body\"])[\"user_id\"] == 5\n"
           "assert int(f[b\"enqueued_ms\"]) > 1700000000000\n"
           "r.xack(k, \"flask\", eid)\n"
           "print(\"redis-py consumed\", eid.decode())\n'",
           mt_srv.sock, miscache_namespace(mc));
  assert_int_equal(system(cmd), 0);
  miscache_queue_info_t qi;
  assert_int_equal(miscache_queue_info(mc, "py", "flask", &qi), MISCACHE_OK);
  assert_int_equal(qi.pending, 0);
  json_decref(b);
  miscache_free(mc);
}

/* ---- 100,000 messages, 4 consumer processes, one SIGKILLed --------------- */

enum { TOTAL = 100000, CONSUMERS = 4 };

typedef struct {
  FILE *record; /* the fake system of record: one line per write */
  int kill_after;
  int done;
} sink_t;

static miscache_status_t to_record(void *ud, const miscache_queue_msg_t *m,
                                   char *err, size_t errlen) {
  (void)err, (void)errlen;
  sink_t *s = ud;
  fprintf(s->record, "%lld\n",
          (long long)json_integer_value(json_object_get(m->body, "n")));
  fflush(s->record); /* written before the ack: at least once */
  if (s->kill_after && ++s->done == s->kill_after) raise(SIGKILL);
  return MISCACHE_OK;
}

static void consumer(miscache_t *parent, const char *ns, int i,
                     int kill_after, const char *dir) {
  miscache_free(parent); /* the parent's handle: closed without I/O */
  char path[256], name[16];
  snprintf(path, sizeof path, "%s/record-%d", dir, i);
  snprintf(name, sizeof name, "c%d", i);
  sink_t s = {.record = fopen(path, "a"), .kill_after = kill_after};
  miscache_t *mc = mt_open_in(NULL, ns);
  if (!mc || !s.record) mt_child_exit(2);
  miscache_queue_opts_t o = {.reclaim_idle_ms = 500};
  int idle = 0;
  while (idle < 20) {
    size_t h = 0;
    miscache_status_t st = miscache_queue_consume(
        mc, "load", "sor", name, 500, 50, &o, to_record, &s, &h);
    if (st != MISCACHE_OK) mt_child_exit(3);
    idle = h ? 0 : idle + 1;
  }
  fclose(s.record);
  miscache_free(mc);
  mt_child_exit(0);
}

static void test_many_consumers_one_killed(void **state) {
  (void)state;
  char ns[64];
  snprintf(ns, sizeof ns, "%s", mt_namespace());
  miscache_t *mc = mt_open_in(NULL, ns);
  assert_non_null(mc);
  json_t **bodies = calloc(TOTAL, sizeof *bodies);
  for (int i = 0; i < TOTAL; i++) bodies[i] = json_pack("{s:i}", "n", i);
  int64_t t0 = mt_now_ns();
  for (int off = 0; off < TOTAL; off += 1000)
    assert_int_equal(miscache_queue_enqueue(mc, "load", 1000,
                                            (const json_t *const *)bodies + off,
                                            NULL, NULL, NULL),
                     MISCACHE_OK);
  double enq = (double)(mt_now_ns() - t0) / 1e9;
  for (int i = 0; i < TOTAL; i++) json_decref(bodies[i]);
  free(bodies);
  pid_t pids[CONSUMERS];
  for (int i = 0; i < CONSUMERS; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) consumer(mc, ns, i, i == 0 ? 2000 : 0, mt_srv.dir);
  }
  int killed = 0;
  for (int i = 0; i < CONSUMERS; i++) {
    int st;
    waitpid(pids[i], &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) killed++;
    else assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  assert_int_equal(killed, 1);
  /* every message in the record at least once */
  unsigned char *seen = calloc(TOTAL, 1);
  long lines = 0, dups = 0;
  for (int i = 0; i < CONSUMERS; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/record-%d", mt_srv.dir, i);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long long n;
    while (fscanf(f, "%lld", &n) == 1) {
      assert_true(n >= 0 && n < TOTAL);
      lines++;
      if (seen[n]) dups++;
      else seen[n] = 1;
    }
    fclose(f);
  }
  long missing = 0;
  for (int i = 0; i < TOTAL; i++) missing += !seen[i];
  free(seen);
  miscache_queue_info_t qi;
  assert_int_equal(miscache_queue_info(mc, "load", "sor", &qi), MISCACHE_OK);
  printf("  %d messages enqueued in %.2f s; 4 consumers, one SIGKILLed after "
         "2,000: %ld records written, %ld missing, %ld duplicates (the killed "
         "one's unacked batch, redelivered); queue left %llu, pending %llu\n",
         TOTAL, enq, lines, missing, dups, (unsigned long long)qi.length,
         (unsigned long long)qi.pending);
  assert_int_equal(missing, 0);
  assert_int_equal(qi.pending, 0);
  assert_int_equal(qi.length, 0);
  miscache_free(mc);
}

/* Generated msg ids differ between a parent and the child it forked with
 * the same handle (the generator is reseeded in the child). */
static void test_ids_after_fork(void **state) {
  (void)state;
  miscache_t *mc = mt_open(NULL);
  json_t *b = json_integer(1);
  const json_t *bs[1] = {b};
  assert_int_equal(miscache_queue_enqueue(mc, "fk", 1, bs, NULL, NULL, NULL),
                   MISCACHE_OK);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    miscache_status_t st =
        miscache_queue_enqueue(mc, "fk", 3, (const json_t *[]){b, b, b}, NULL,
                               NULL, NULL);
    miscache_free(mc);
    json_decref(b);
    mt_child_exit(st == MISCACHE_OK ? 0 : 1);
  }
  assert_int_equal(
      miscache_queue_enqueue(mc, "fk", 3, (const json_t *[]){b, b, b}, NULL,
                             NULL, NULL),
      MISCACHE_OK);
  int status;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  miscache_queue_msg_t m[8];
  size_t got = 0;
  assert_int_equal(miscache_queue_pull(mc, "fk", "g", "c", 8, 0, m, &got),
                   MISCACHE_OK);
  assert_int_equal(got, 7);
  for (size_t i = 0; i < got; i++)
    for (size_t j = i + 1; j < got; j++)
      assert_string_not_equal(m[i].msg_id, m[j].msg_id);
  for (size_t i = 0; i < got; i++) miscache_queue_msg_clear(&m[i]);
  json_decref(b);
  miscache_free(mc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_ids_after_fork),
      cmocka_unit_test(test_poison_dead_letter),
      cmocka_unit_test(test_reclaim_and_trim),
      cmocka_unit_test(test_python_consumes),
      cmocka_unit_test(test_many_consumers_one_killed),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}

/*
 * queue_worker: a work-queue consumer (queue.h) as a service runs one.
 *
 *   queue_worker [--queue NAME] [--jobs N]
 *
 * Enqueues N report jobs (each with an idempotency id), then consumes them
 * in a loop with miscache_queue_consume(): the handler "renders" a report
 * and stores it (temp:report:<id>), failing each fourth job on its first
 * delivery to show a retry: a failed message stays pending and comes back
 * through the reclaim of a later round (here after 200 ms idle). Ends when
 * the queue is drained, printing its figures. Server: MISCACHE_URL alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <miscache/miscache.h>

typedef struct {
  miscache_t *mc;
  int done, failed_once;
} worker_t;

static miscache_status_t handle(void *ud, const miscache_queue_msg_t *msg,
                                char *errbuf, size_t errlen) {
  worker_t *w = ud;
  const char *id = json_string_value(json_object_get(msg->body, "report_id"));
  json_int_t n = json_integer_value(json_object_get(msg->body, "n"));
  if (!id) {
    snprintf(errbuf, errlen, "message without report_id");
    return MISCACHE_ERR_DECODE; /* dead-lettered after max_deliveries */
  }
  if (n % 4 == 0 && msg->deliveries == 1) {
    w->failed_once++;
    snprintf(errbuf, errlen, "renderer busy (report %s), try again", id);
    return MISCACHE_ERR_UNAVAILABLE;
  }
  json_t *report = json_pack("{s:s,s:I,s:i}", "report_id", id, "rows",
                             (json_int_t)(n * 10), "deliveries",
                             (int)msg->deliveries);
  miscache_status_t st = miscache_temp_report_set(w->mc, id, report);
  json_decref(report);
  if (st == MISCACHE_OK) w->done++;
  else snprintf(errbuf, errlen, "%s", miscache_errmsg(w->mc));
  return st;
}

int main(int argc, char **argv) {
  const char *queue = "reports";
  int jobs = 12;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--queue") && i + 1 < argc) queue = argv[++i];
    else if (!strcmp(argv[i], "--jobs") && i + 1 < argc) jobs = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--queue NAME] [--jobs N]\n", argv[0]);
      return 2;
    }
  }
  if (jobs < 1 || jobs > 10000) return 2;
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  /* the producer's side: one round trip for all jobs; the idempotency ids
   * make a resend after a lost reply harmless */
  json_t **bodies = calloc((size_t)jobs, sizeof *bodies);
  char (*ids)[32] = calloc((size_t)jobs, sizeof *ids);
  const char **idp = calloc((size_t)jobs, sizeof *idp);
  for (int i = 0; bodies && ids && idp && i < jobs; i++) {
    snprintf(ids[i], sizeof ids[i], "report-%d", i + 1);
    bodies[i] = json_pack("{s:s,s:i}", "report_id", ids[i], "n", i + 1);
    idp[i] = ids[i];
  }
  miscache_queue_opts_t qo = {.reclaim_idle_ms = 200, .max_deliveries = 3};
  st = bodies && ids && idp
           ? miscache_queue_enqueue(mc, queue, (size_t)jobs,
                                    (const json_t *const *)bodies, idp, &qo, NULL)
           : MISCACHE_ERR_NOMEM;
  for (int i = 0; bodies && i < jobs; i++) json_decref(bodies[i]);
  free(bodies);
  free(ids);
  free(idp);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "enqueue: %s (%s)\n", miscache_strerror(st),
            miscache_errmsg(mc));
    miscache_free(mc);
    return 1;
  }
  printf("enqueued %d jobs on queue %s\n", jobs, queue);
  /* the consumer's loop */
  worker_t w = {.mc = mc};
  miscache_queue_info_t info = {0};
  for (int round = 0; round < 100; round++) {
    size_t handled = 0;
    st = miscache_queue_consume(mc, queue, "renderers", "worker-1", 5, 100,
                                &qo, handle, &w, &handled);
    if (st != MISCACHE_OK) {
      fprintf(stderr, "consume: %s (%s)\n", miscache_strerror(st),
              miscache_errmsg(mc));
      break;
    }
    if (miscache_queue_info(mc, queue, "renderers", &info) == MISCACHE_OK &&
        info.pending == 0 && w.done + (int)info.dead >= jobs)
      break;
  }
  printf("rendered %d reports (%d failed once and were retried); queue: "
         "length %llu, pending %llu, dead %llu\n",
         w.done, w.failed_once, (unsigned long long)info.length,
         (unsigned long long)info.pending, (unsigned long long)info.dead);
  json_t *r = NULL;
  if (miscache_temp_report_get(mc, "report-4", &r) == MISCACHE_OK) {
    char *t = json_dumps(r, JSON_COMPACT);
    printf("temp:report:report-4 = %s\n", t ? t : "?");
    free(t);
    json_decref(r);
  }
  miscache_free(mc);
  return w.done == jobs ? 0 : 1;
}

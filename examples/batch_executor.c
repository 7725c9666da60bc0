/*
 * batch_executor: the nightly batch of one company over simulated ERP order
 * pages: lock, config, progress, bulk gift classification, history.
 *
 *   batch_executor [--company N] [--pages N] [--delay-ms N]
 *
 * A second instance started while one runs reports that the batch is
 * already running and exits with status 0. Server: MISCACHE_URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "erp_sim.h"

typedef struct {
  int pages;
  int delay_ms;
  int64_t company;
  miscache_gift_engine_t *engine;
} job_t;

static miscache_status_t load_config(void *ud, int64_t company,
                                     miscache_batch_config_t *out) {
  (void)ud;
  (void)company;
  out->batch_enabled = true;
  out->batch_hour = 2;
  out->api_call_interval = 3;
  out->page_size = 30;
  out->retry_count = 3;
  out->auto_gift_classify = true;
  return MISCACHE_OK;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static miscache_status_t work(void *ud, miscache_batch_run_t *run) {
  job_t *job = ud;
  miscache_t *mc = miscache_batch_run_handle(run);
  int size = (int)miscache_batch_run_config(run)->page_size;
  erp_line_t *lines = calloc((size_t)size, sizeof *lines);
  miscache_gift_product_t *products = calloc((size_t)size, sizeof *products);
  miscache_gift_classification_t *out = calloc((size_t)size, sizeof *out);
  if (!lines || !products || !out) {
    free(lines);
    free(products);
    free(out);
    return MISCACHE_ERR_NOMEM;
  }
  miscache_batch_progress_t p = {.total_pages = job->pages,
                                 .total_records = (int64_t)job->pages * size};
  miscache_batch_summary_t *sum = miscache_batch_run_summary(run);
  miscache_status_t st = MISCACHE_OK;
  for (int page = 1; page <= job->pages && st == MISCACHE_OK; page++) {
    int n = erp_page(job->company, page, size, lines);
    for (int i = 0; i < n; i++)
      products[i] =
          (miscache_gift_product_t){.product_code = lines[i].code,
                                    .product_name = lines[i].name,
                                    .supply_price = lines[i].supply_price};
    st = miscache_gift_classify_bulk(mc, job->company, job->engine, products,
                                     (size_t)n, out, NULL, NULL);
    if (st != MISCACHE_OK) break;
    for (int i = 0; i < n; i++) {
      if (strcmp(out[i].product_type, "GIFT") == 0) {
        p.classified_gifts++;
        sum->gifts_identified++;
      } else {
        sum->revenue_products++;
      }
      miscache_gift_classification_clear(&out[i]);
    }
    p.processed_pages = page;
    p.processed_records += n;
    sum->products_processed += n;
    sum->orders_processed += (n + 1) / 2;
    st = miscache_batch_run_report(run, &p, "classification");
    if (page % 20 == 0 || page == job->pages)
      printf("  page %d/%d: %lld lines, %lld gifts\n", page, job->pages,
             (long long)p.processed_records, (long long)p.classified_gifts);
    if (job->delay_ms) sleep_ms(job->delay_ms);
  }
  free(lines);
  free(products);
  free(out);
  return st;
}

int main(int argc, char **argv) {
  job_t job = {.pages = 100, .company = 1};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--company") == 0) job.company = atoll(argv[i + 1]);
    else if (strcmp(argv[i], "--pages") == 0) job.pages = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--delay-ms") == 0) job.delay_ms = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: %s [--company N] [--pages N] [--delay-ms N]\n",
              argv[0]);
      return 2;
    }
  }
  if (job.pages < 1 || job.delay_ms < 0) {
    fprintf(stderr, "--pages must be >= 1 and --delay-ms >= 0\n");
    return 2;
  }
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(NULL, &mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 3;
  }
  st = erp_engine(mc, job.company, &job.engine);
  if (st != MISCACHE_OK) {
    fprintf(stderr, "gift rules: %s (%s)\n", miscache_strerror(st),
            miscache_errmsg(mc));
    miscache_free(mc);
    return 1;
  }
  char host[64] = "batch_executor";
  printf("batch for company %lld: %d pages\n", (long long)job.company,
         job.pages);
  miscache_batch_history_t h;
  st = miscache_batch_run(mc, job.company, host, load_config, NULL, work, &job,
                          &h);
  int rc = 0;
  if (st == MISCACHE_ERR_LOCKED) {
    printf("batch already running: %s\n", miscache_errmsg(mc));
  } else {
    if (st != MISCACHE_OK) {
      fprintf(stderr, "batch failed: %s (%s)\n", miscache_strerror(st),
              miscache_errmsg(mc));
      rc = 1;
    }
    if (h.status) {
      printf("history: status=%s duration=%llds records=%lld gifts=%lld "
             "summary={orders:%lld products:%lld gifts:%lld revenue:%lld} "
             "errors=%zu\n",
             h.status, (long long)h.duration_seconds,
             (long long)h.total_records, (long long)h.gift_classified,
             (long long)h.summary.orders_processed,
             (long long)h.summary.products_processed,
             (long long)h.summary.gifts_identified,
             (long long)h.summary.revenue_products, h.errors.count);
    }
    miscache_batch_history_clear(&h);
  }
  miscache_gift_engine_free(job.engine);
  miscache_free(mc);
  return rc;
}

/* Batch config, status, history, lock, and the batch run helper. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "payload.h"

/* ---- payload descriptions ---------------------------------------------- */

#define CFG(m, t) MISCACHE__FIELD(miscache_batch_config_t, m, t)
static const miscache__field_t config_fields[] = {
    CFG(batch_enabled, MISCACHE__F_BOOL),
    CFG(batch_hour, MISCACHE__F_INT),
    CFG(batch_minute, MISCACHE__F_INT),
    CFG(api_call_interval, MISCACHE__F_INT),
    CFG(page_size, MISCACHE__F_INT),
    CFG(retry_count, MISCACHE__F_INT),
    CFG(auto_gift_classify, MISCACHE__F_BOOL),
    CFG(gift_keywords, MISCACHE__F_STRINGS),
    CFG(last_updated, MISCACHE__F_STRING),
};
const miscache__payload_t miscache__batch_config_payload =
    MISCACHE__PAYLOAD("batch config", miscache_batch_config_t, config_fields);

#define PRG(m) MISCACHE__FIELD(miscache_batch_progress_t, m, MISCACHE__F_INT)
static const miscache__field_t progress_fields[] = {
    PRG(total_pages), PRG(processed_pages), PRG(total_records),
    PRG(processed_records), PRG(classified_gifts)};
static const miscache__payload_t progress_payload =
    MISCACHE__PAYLOAD_NESTED("progress", progress_fields);

#define STS(m, t) MISCACHE__FIELD(miscache_batch_status_t, m, t)
static const miscache__field_t status_fields[] = {
    MISCACHE__FIELD_REQ(miscache_batch_status_t, status, MISCACHE__F_STRING),
    STS(start_time, MISCACHE__F_STRING),
    STS(end_time, MISCACHE__F_STRING),
    STS(batch_id, MISCACHE__F_STRING),
    STS(current_step, MISCACHE__F_STRING),
    MISCACHE__FIELD_OBJ(miscache_batch_status_t, progress, progress_payload),
    STS(errors, MISCACHE__F_STRINGS),
};
const miscache__payload_t miscache__batch_status_payload =
    MISCACHE__PAYLOAD("batch status", miscache_batch_status_t, status_fields);

#define SUM(m) MISCACHE__FIELD(miscache_batch_summary_t, m, MISCACHE__F_INT)
static const miscache__field_t summary_fields[] = {
    SUM(orders_processed), SUM(products_processed), SUM(gifts_identified),
    SUM(revenue_products)};
static const miscache__payload_t summary_payload =
    MISCACHE__PAYLOAD_NESTED("summary", summary_fields);

#define HIS(m, t) MISCACHE__FIELD(miscache_batch_history_t, m, t)
static const miscache__field_t history_fields[] = {
    HIS(execution_time, MISCACHE__F_STRING),
    HIS(duration_seconds, MISCACHE__F_INT),
    MISCACHE__FIELD_REQ(miscache_batch_history_t, status, MISCACHE__F_STRING),
    HIS(total_records, MISCACHE__F_INT),
    HIS(gift_classified, MISCACHE__F_INT),
    HIS(errors, MISCACHE__F_STRINGS),
    MISCACHE__FIELD_OBJ(miscache_batch_history_t, summary, summary_payload),
};
const miscache__payload_t miscache__batch_history_payload =
    MISCACHE__PAYLOAD("batch history", miscache_batch_history_t, history_fields);

void miscache_batch_config_clear(miscache_batch_config_t *c) {
  if (c) miscache__payload_clear(&miscache__batch_config_payload, c);
}
void miscache_batch_status_clear(miscache_batch_status_t *s) {
  if (s) miscache__payload_clear(&miscache__batch_status_payload, s);
}
void miscache_batch_history_clear(miscache_batch_history_t *h) {
  if (h) miscache__payload_clear(&miscache__batch_history_payload, h);
}

/* ---- keys and plain access --------------------------------------------- */

static miscache_status_t company_key(miscache_t *mc, char *key,
                                     const char *prefix, int64_t company) {
  return miscache__key_int(mc, key, MISCACHE_KEY_BUFSIZE, prefix, company);
}

static miscache_status_t put(miscache_t *mc, const char *prefix,
                             int64_t company, const miscache__payload_t *d,
                             const void *in, miscache_ttl_class_t cls) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!in) {
    miscache__set_err(mc, "%s: value is NULL", d->name);
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, prefix, company);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_set(mc, MISCACHE_DB_BATCH, key, d, in,
                             miscache__ttl_ms(mc, cls));
}

static miscache_status_t fetch(miscache_t *mc, const char *prefix,
                               int64_t company, const miscache__payload_t *d,
                               void *out, size_t size) {
  if (out) memset(out, 0, size);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "%s: out is NULL", d->name);
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, prefix, company);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_get(mc, MISCACHE_DB_BATCH, key, d, out);
}

miscache_status_t miscache_batch_config_set(miscache_t *mc, int64_t company,
                                            const miscache_batch_config_t *c) {
  return put(mc, "batch:config", company, &miscache__batch_config_payload, c,
             MISCACHE_TTL_BATCH_CONFIG);
}

miscache_status_t miscache_batch_config_get(miscache_t *mc, int64_t company,
                                            miscache_batch_config_t *out) {
  return fetch(mc, "batch:config", company, &miscache__batch_config_payload,
               out, sizeof *out);
}

miscache_status_t miscache_batch_status_set(miscache_t *mc, int64_t company,
                                            const miscache_batch_status_t *s) {
  return put(mc, "batch:status", company, &miscache__batch_status_payload, s,
             MISCACHE_TTL_BATCH_STATUS);
}

miscache_status_t miscache_batch_status_get(miscache_t *mc, int64_t company,
                                            miscache_batch_status_t *out) {
  return fetch(mc, "batch:status", company, &miscache__batch_status_payload,
               out, sizeof *out);
}

typedef struct {
  const miscache_batch_progress_t *p;
  const char *step;
} progress_change_t;

/* Sets the progress members (keeping any others in it) and the step. */
static miscache_status_t change_progress(miscache_t *mc, void *ud,
                                         json_t *obj) {
  (void)mc;
  const progress_change_t *c = ud;
  json_t *prog = json_object_get(obj, "progress");
  if (!json_is_object(prog)) {
    if (!(prog = json_object()) || json_object_set_new(obj, "progress", prog))
      return MISCACHE_ERR_NOMEM;
  }
  const struct {
    const char *name;
    int64_t v;
  } f[] = {{"total_pages", c->p->total_pages},
           {"processed_pages", c->p->processed_pages},
           {"total_records", c->p->total_records},
           {"processed_records", c->p->processed_records},
           {"classified_gifts", c->p->classified_gifts}};
  miscache_status_t st = MISCACHE_OK;
  for (size_t i = 0; i < sizeof f / sizeof *f && st == MISCACHE_OK; i++)
    st = miscache__json_set_int(prog, f[i].name, f[i].v);
  if (st == MISCACHE_OK && c->step)
    st = miscache__json_set_str(obj, "current_step", c->step);
  return st;
}

miscache_status_t miscache_batch_status_progress(
    miscache_t *mc, int64_t company, const miscache_batch_progress_t *p,
    const char *current_step) {
  if (!p) {
    if (mc) miscache__set_err(mc, "progress is NULL");
    return MISCACHE_ERR_INVALID;
  }
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, "batch:status", company);
  if (st != MISCACHE_OK) return st;
  progress_change_t c = {p, current_step};
  return miscache__typed_update(mc, MISCACHE_DB_BATCH, key,
                                &miscache__batch_status_payload,
                                miscache__ttl_ms(mc, MISCACHE_TTL_BATCH_STATUS),
                                change_progress, &c);
}

miscache_status_t miscache_batch_history_set(miscache_t *mc, int64_t company,
                                             const char *yyyymmdd,
                                             const miscache_batch_history_t *h) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__key_company_date(
      mc, key, sizeof key, "batch:history", company, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  if (!h) {
    miscache__set_err(mc, "history is NULL");
    return MISCACHE_ERR_INVALID;
  }
  return miscache__typed_set(mc, MISCACHE_DB_BATCH, key,
                             &miscache__batch_history_payload, h,
                             miscache__ttl_ms(mc, MISCACHE_TTL_BATCH_HISTORY));
}

miscache_status_t miscache_batch_history_get(miscache_t *mc, int64_t company,
                                             const char *yyyymmdd,
                                             miscache_batch_history_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__key_company_date(
      mc, key, sizeof key, "batch:history", company, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  if (!out) return MISCACHE_ERR_INVALID;
  return miscache__typed_get(mc, MISCACHE_DB_BATCH, key,
                             &miscache__batch_history_payload, out);
}

miscache_status_t miscache_batch_lock_acquire(miscache_t *mc, int64_t company,
                                              const char *locked_by,
                                              const char *batch_id,
                                              miscache_lock_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, "batch:lock", company);
  if (st != MISCACHE_OK) return st;
  return miscache_lock_acquire(mc, MISCACHE_DB_BATCH, key,
                               mc->opts.ttl[MISCACHE_TTL_BATCH_LOCK] * 1000,
                               locked_by, batch_id, out);
}

/* ---- config cache-aside ------------------------------------------------- */

typedef struct {
  miscache_batch_config_loader_fn loader;
  void *userdata;
  int64_t company;
} config_loader_t;

static miscache_status_t load_config(void *ud, void *out) {
  config_loader_t *cl = ud;
  return cl->loader(cl->userdata, cl->company, out);
}

miscache_status_t miscache_batch_config_get_or_load(
    miscache_t *mc, int64_t company, miscache_batch_config_loader_fn loader,
    void *userdata, miscache_batch_config_t *out, miscache_source_t *source) {
  if (out) memset(out, 0, sizeof *out);
  if (source) *source = MISCACHE_SOURCE_NONE;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out || !loader) {
    miscache__set_err(mc, "batch config get_or_load: out or loader is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, "batch:config", company);
  if (st != MISCACHE_OK) return st;
  config_loader_t cl = {loader, userdata, company};
  return miscache__typed_get_or_load(
      mc, MISCACHE_DB_BATCH, key, &miscache__batch_config_payload, sizeof *out,
      MISCACHE_TTL_BATCH_CONFIG, load_config, &cl, out, source);
}

/* ---- the run helper ------------------------------------------------------ */

struct miscache_batch_run {
  miscache_t *mc;
  int64_t company;
  miscache_lock_t *lock;
  miscache_batch_config_t config;
  miscache_batch_status_t status;
  miscache_batch_summary_t summary;
  char batch_id[64];
  /* lock renewal */
  miscache_t *renew_mc;
  pthread_t renew_thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  bool lost;
  int64_t ttl_ms;
};

const miscache_batch_config_t *
miscache_batch_run_config(const miscache_batch_run_t *run) {
  return run ? &run->config : NULL;
}
miscache_t *miscache_batch_run_handle(miscache_batch_run_t *run) {
  return run ? run->mc : NULL;
}
const char *miscache_batch_run_id(const miscache_batch_run_t *run) {
  return run ? run->batch_id : "";
}
miscache_batch_summary_t *miscache_batch_run_summary(miscache_batch_run_t *run) {
  return run ? &run->summary : NULL;
}

static bool run_lost(miscache_batch_run_t *run) {
  pthread_mutex_lock(&run->mu);
  bool lost = run->lost;
  pthread_mutex_unlock(&run->mu);
  return lost;
}

static miscache_status_t set_step(miscache_batch_run_t *run, const char *step) {
  char *copy = strdup(step);
  if (!copy) return MISCACHE_ERR_NOMEM;
  free(run->status.current_step);
  run->status.current_step = copy;
  return MISCACHE_OK;
}

miscache_status_t miscache_batch_run_report(miscache_batch_run_t *run,
                                            const miscache_batch_progress_t *p,
                                            const char *current_step) {
  if (!run || !p) return MISCACHE_ERR_INVALID;
  if (run_lost(run)) {
    miscache__set_err(run->mc, "batch lock of company %lld was lost",
                      (long long)run->company);
    return MISCACHE_ERR_NOT_OWNER;
  }
  run->status.progress = *p;
  if (current_step && set_step(run, current_step) != MISCACHE_OK)
    return MISCACHE_ERR_NOMEM;
  return miscache_batch_status_set(run->mc, run->company, &run->status);
}

miscache_status_t miscache_batch_run_error(miscache_batch_run_t *run,
                                           const char *message) {
  if (!run || !message) return MISCACHE_ERR_INVALID;
  return miscache_strings_push(&run->status.errors, message);
}

static void deadline_after(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Extends the lock every TTL/3 on its own connection until told to stop or
 * the lock is found lost. A transient failure is retried on the next tick. */
static void *renew_main(void *arg) {
  miscache_batch_run_t *run = arg;
  int64_t every = run->ttl_ms / 3 > 0 ? run->ttl_ms / 3 : 1;
  pthread_mutex_lock(&run->mu);
  while (!run->stop) {
    struct timespec ts;
    deadline_after(&ts, every);
    while (!run->stop &&
           pthread_cond_timedwait(&run->cv, &run->mu, &ts) == 0) {
    }
    if (run->stop) break;
    pthread_mutex_unlock(&run->mu);
    miscache_status_t st =
        miscache_lock_extend(run->renew_mc, run->lock, run->ttl_ms);
    pthread_mutex_lock(&run->mu);
    if (st == MISCACHE_ERR_NOT_OWNER) {
      run->lost = true;
      break;
    }
  }
  pthread_mutex_unlock(&run->mu);
  return NULL;
}

static void utc_now(char *iso, size_t n, char date[9]) {
  miscache__iso8601_now(iso, n);
  /* "YYYY-MM-DDT..." -> "YYYYMMDD" */
  memcpy(date, iso, 4);
  memcpy(date + 4, iso + 5, 2);
  memcpy(date + 6, iso + 8, 2);
  date[8] = 0;
}

static double mono_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

miscache_status_t miscache_batch_run(
    miscache_t *mc, int64_t company, const char *locked_by,
    miscache_batch_config_loader_fn config_loader, void *config_userdata,
    miscache_batch_work_fn work, void *work_userdata,
    miscache_batch_history_t *history_out) {
  if (history_out) memset(history_out, 0, sizeof *history_out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!config_loader || !work) {
    miscache__set_err(mc, "miscache_batch_run: loader or work is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache_batch_run_t run;
  memset(&run, 0, sizeof run);
  run.mc = mc;
  run.company = company;
  run.ttl_ms = mc->opts.ttl[MISCACHE_TTL_BATCH_LOCK] * 1000;
  char start_iso[32], date[9];
  utc_now(start_iso, sizeof start_iso, date);
  double t0 = mono_seconds();
  snprintf(run.batch_id, sizeof run.batch_id, "%lld-%.8sT%.2s%.2s%.2sZ",
           (long long)company, date, start_iso + 11, start_iso + 14,
           start_iso + 17);

  /* 1. the lock: a second run stops here */
  miscache_status_t st = miscache_batch_lock_acquire(mc, company, locked_by,
                                                     run.batch_id, &run.lock);
  if (st != MISCACHE_OK) return st;

  /* 2. config */
  st = miscache_batch_config_get_or_load(mc, company, config_loader,
                                         config_userdata, &run.config, NULL);
  /* 3. status running */
  miscache_status_t work_st = MISCACHE_OK;
  run.status.status = strdup("running");
  run.status.start_time = strdup(start_iso);
  run.status.batch_id = strdup(run.batch_id);
  run.status.current_step = strdup(st == MISCACHE_OK ? "started" : "config");
  if (!run.status.status || !run.status.start_time || !run.status.batch_id ||
      !run.status.current_step)
    st = MISCACHE_ERR_NOMEM;
  if (st == MISCACHE_OK) st = miscache_batch_status_set(mc, company, &run.status);

  /* 4. the work, with the lock renewed beside it */
  bool renewing = false;
  if (st == MISCACHE_OK) {
    pthread_mutex_init(&run.mu, NULL);
    pthread_cond_init(&run.cv, NULL);
    miscache_options_t o = mc->opts; /* shallow: open copies what it needs */
    o.lazy = true;
    if (miscache_open(&o, &run.renew_mc, NULL, 0) == MISCACHE_OK &&
        pthread_create(&run.renew_thread, NULL, renew_main, &run) == 0)
      renewing = true;
    work_st = work(work_userdata, &run);
    if (renewing) {
      pthread_mutex_lock(&run.mu);
      run.stop = true;
      pthread_cond_signal(&run.cv);
      pthread_mutex_unlock(&run.mu);
      pthread_join(run.renew_thread, NULL);
    }
    miscache_free(run.renew_mc);
    pthread_cond_destroy(&run.cv);
    pthread_mutex_destroy(&run.mu);
  } else {
    work_st = st; /* could not start: the batch failed */
    miscache_strings_push(&run.status.errors, miscache_errmsg(mc));
  }
  if (work_st != MISCACHE_OK && st == MISCACHE_OK) {
    char line[MISCACHE_ERRMSG_SIZE + 64];
    snprintf(line, sizeof line, "work failed: %s",
             miscache_strerror(work_st));
    miscache_strings_push(&run.status.errors, line);
  }

  /* 5. final status and the day's history */
  char end_iso[32], end_date[9];
  utc_now(end_iso, sizeof end_iso, end_date);
  free(run.status.status);
  run.status.status = strdup(work_st == MISCACHE_OK ? "completed" : "failed");
  run.status.end_time = strdup(end_iso);
  miscache_status_t fin = run.status.status && run.status.end_time
                              ? miscache_batch_status_set(mc, company, &run.status)
                              : MISCACHE_ERR_NOMEM;
  miscache_batch_history_t h;
  memset(&h, 0, sizeof h);
  h.execution_time = start_iso;
  h.duration_seconds = (int64_t)(mono_seconds() - t0 + 0.5);
  h.status = run.status.status;
  h.total_records = run.status.progress.total_records;
  h.gift_classified = run.status.progress.classified_gifts;
  h.errors = run.status.errors; /* borrowed for the write */
  h.summary = run.summary;
  miscache_status_t hist = miscache_batch_history_set(mc, company, date, &h);
  if (fin == MISCACHE_OK) fin = hist;

  /* 6. release, only if still ours */
  miscache_status_t rel = miscache_lock_release(mc, run.lock);
  miscache_lock_free(run.lock);

  if (history_out && h.status) {
    /* a deep copy through the codec, owned by the caller */
    char why[256];
    json_t *j = miscache__payload_encode(&miscache__batch_history_payload, &h,
                                         why, sizeof why);
    if (j)
      miscache__payload_decode(&miscache__batch_history_payload, j, history_out,
                               why, sizeof why);
    json_decref(j);
  }
  miscache_batch_config_clear(&run.config);
  miscache_batch_status_clear(&run.status);
  if (work_st != MISCACHE_OK) return work_st;
  if (rel != MISCACHE_OK || run.lost) {
    miscache__set_err(mc, "batch of company %lld: the lock was lost during "
                          "the run (released nothing)", (long long)company);
    return MISCACHE_ERR_NOT_OWNER;
  }
  return fin;
}

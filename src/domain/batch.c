/* Batch config, status, history, lock, and the batch run helper. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domain/domain.h"

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
                                     miscache_key_family_id_t f,
                                     int64_t company) {
  return miscache__kf_key_int(mc, f, key, company);
}

static miscache_status_t put(miscache_t *mc, miscache_key_family_id_t f,
                             int64_t company, const miscache__payload_t *d,
                             const void *in) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!in) {
    miscache__set_err(mc, "%s: value is NULL", d->name);
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, f, company);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_set(mc, miscache__kf_db(f), key, d, in,
                             miscache__kf_ttl_ms(mc, f));
}

static miscache_status_t fetch(miscache_t *mc, miscache_key_family_id_t f,
                               int64_t company, const miscache__payload_t *d,
                               void *out, size_t size) {
  if (out) memset(out, 0, size);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "%s: out is NULL", d->name);
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, f, company);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_get(mc, miscache__kf_db(f), key, d, out);
}

miscache_status_t miscache_batch_config_set(miscache_t *mc, int64_t company,
                                            const miscache_batch_config_t *c) {
  return put(mc, MISCACHE_KF_BATCH_CONFIG, company,
             &miscache__batch_config_payload, c);
}

miscache_status_t miscache_batch_config_get(miscache_t *mc, int64_t company,
                                            miscache_batch_config_t *out) {
  return fetch(mc, MISCACHE_KF_BATCH_CONFIG, company,
               &miscache__batch_config_payload, out, sizeof *out);
}

miscache_status_t miscache_batch_status_set(miscache_t *mc, int64_t company,
                                            const miscache_batch_status_t *s) {
  return put(mc, MISCACHE_KF_BATCH_STATUS, company,
             &miscache__batch_status_payload, s);
}

miscache_status_t miscache_batch_status_get(miscache_t *mc, int64_t company,
                                            miscache_batch_status_t *out) {
  miscache_status_t st = fetch(mc, MISCACHE_KF_BATCH_STATUS, company,
                               &miscache__batch_status_payload, out,
                               sizeof *out);
  if (st != MISCACHE_OK || !out->status || strcmp(out->status, "running"))
    return st;
  /* "running" is only true while a live holder renews the lock */
  miscache_batch_lock_state_t ls;
  bool quiet = mc->quiet;
  mc->quiet = true;
  miscache_status_t lst = miscache_batch_lock_state(mc, company, &ls);
  mc->quiet = quiet;
  if (lst == MISCACHE_OK) out->stale = !ls.held || ls.stale;
  return MISCACHE_OK;
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
  miscache_status_t st = company_key(mc, key, MISCACHE_KF_BATCH_STATUS,
                                     company);
  if (st != MISCACHE_OK) return st;
  progress_change_t c = {p, current_step};
  return miscache__typed_update(
      mc, miscache__kf_db(MISCACHE_KF_BATCH_STATUS), key,
      &miscache__batch_status_payload,
      miscache__kf_ttl_ms(mc, MISCACHE_KF_BATCH_STATUS), change_progress, &c);
}

miscache_status_t miscache_batch_history_set(miscache_t *mc, int64_t company,
                                             const char *yyyymmdd,
                                             const miscache_batch_history_t *h) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__key_company_date(
      mc, key, MISCACHE_KF_BATCH_HISTORY, company, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  if (!h) {
    miscache__set_err(mc, "history is NULL");
    return MISCACHE_ERR_INVALID;
  }
  return miscache__typed_set(
      mc, miscache__kf_db(MISCACHE_KF_BATCH_HISTORY), key,
      &miscache__batch_history_payload, h,
      miscache__kf_ttl_ms(mc, MISCACHE_KF_BATCH_HISTORY));
}

miscache_status_t miscache_batch_history_get(miscache_t *mc, int64_t company,
                                             const char *yyyymmdd,
                                             miscache_batch_history_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__key_company_date(
      mc, key, MISCACHE_KF_BATCH_HISTORY, company, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  if (!out) {
    miscache__set_err(mc, "miscache_batch_history_get: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  return miscache__typed_get(mc, miscache__kf_db(MISCACHE_KF_BATCH_HISTORY),
                             key, &miscache__batch_history_payload, out);
}

/* batch:lock:{c} and batch:fence:{c} (the counter of fencing tokens; no
 * TTL, so it only ever grows while it exists). */
static miscache_status_t lock_keys(miscache_t *mc, int64_t company,
                                   char lock[MISCACHE_KEY_BUFSIZE],
                                   char fence[MISCACHE_KEY_BUFSIZE]) {
  miscache_status_t st = company_key(mc, lock, MISCACHE_KF_BATCH_LOCK, company);
  return st == MISCACHE_OK
             ? company_key(mc, fence, MISCACHE_KF_BATCH_FENCE, company)
             : st;
}

static int64_t lock_ttl_ms(const miscache_t *mc) {
  /* no jitter: the renewal period is a third of it */
  return mc->opts.ttl[miscache_key_family(MISCACHE_KF_BATCH_LOCK)->ttl_class] *
         1000;
}

/* A holder renews every TTL/3; a heartbeat older than that (plus a second
 * for the round trip) means the holder stopped renewing. */
static int64_t renew_period_ms(const miscache_t *mc) {
  int64_t p = lock_ttl_ms(mc) / 3;
  return p > 0 ? p : 1;
}

miscache_status_t miscache_batch_lock_acquire(miscache_t *mc, int64_t company,
                                              const char *locked_by,
                                              const char *batch_id,
                                              miscache_lock_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_batch_lock_acquire: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE], fence[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = lock_keys(mc, company, key, fence);
  if (st != MISCACHE_OK) return st;
  return miscache__fenced_lock_acquire(mc, miscache__kf_db(MISCACHE_KF_BATCH_LOCK),
                                       key, fence,
                                       lock_ttl_ms(mc), locked_by, batch_id,
                                       NULL, 0, out);
}

miscache_status_t miscache_batch_lock_takeover(miscache_t *mc, int64_t company,
                                               const char *stale_token,
                                               const char *locked_by,
                                               const char *batch_id,
                                               miscache_lock_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out || !stale_token || !stale_token[0]) {
    miscache__set_err(mc, "miscache_batch_lock_takeover: out or token missing");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE], fence[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = lock_keys(mc, company, key, fence);
  if (st != MISCACHE_OK) return st;
  return miscache__fenced_lock_acquire(
      mc, miscache__kf_db(MISCACHE_KF_BATCH_LOCK), key, fence, lock_ttl_ms(mc),
      locked_by, batch_id,
      stale_token, renew_period_ms(mc) + 1000, out);
}

static void copy_str(char *dst, size_t size, const json_t *v) {
  snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

miscache_status_t miscache_batch_lock_state(miscache_t *mc, int64_t company,
                                            miscache_batch_lock_state_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_batch_lock_state: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  out->heartbeat_age_ms = -1;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, MISCACHE_KF_BATCH_LOCK, company);
  if (st != MISCACHE_OK) return st;
  miscache__fullkey_t fk;
  if ((st = miscache__fullkey(mc, key, &fk)) != MISCACHE_OK) return st;
  const char *ga[2] = {"GET", fk.ptr}, *pa[2] = {"PTTL", fk.ptr};
  const char *ta[1] = {"TIME"};
  size_t gl[2] = {3, fk.len}, pl[2] = {4, fk.len}, tl[1] = {4};
  miscache__cmd_t cmds[3] = {{2, ga, gl}, {2, pa, pl}, {1, ta, tl}};
  miscache__reply_t *r[3] = {NULL, NULL, NULL};
  st = miscache__run(mc, miscache__kf_db(MISCACHE_KF_BATCH_LOCK), 3, cmds, r,
                          MISCACHE__IDEMPOTENT);
  miscache__fullkey_done(&fk);
  if (st != MISCACHE_OK) return st;
  if (miscache__reply_type(r[0]) == MISCACHE__R_STRING &&
      miscache__reply_type(r[2]) == MISCACHE__R_ARRAY &&
      miscache__reply_count(r[2]) == 2) {
    size_t len;
    const char *v = miscache__reply_str(r[0], &len);
    json_t *obj = miscache__decode(v, len, NULL, 0);
    out->held = true;
    out->ttl_ms = miscache__reply_int(r[1]);
    int64_t now_ms =
        strtoll(miscache__reply_str(miscache__reply_at(r[2], 0), NULL), NULL,
                10) * 1000 +
        strtoll(miscache__reply_str(miscache__reply_at(r[2], 1), NULL), NULL,
                10) / 1000;
    copy_str(out->token, sizeof out->token, json_object_get(obj, "token"));
    copy_str(out->locked_by, sizeof out->locked_by,
             json_object_get(obj, "locked_by"));
    copy_str(out->batch_id, sizeof out->batch_id,
             json_object_get(obj, "batch_id"));
    copy_str(out->host, sizeof out->host, json_object_get(obj, "host"));
    out->pid = json_integer_value(json_object_get(obj, "pid"));
    out->fence = json_integer_value(json_object_get(obj, "fence"));
    json_t *hb = json_object_get(obj, "heartbeat_ms");
    if (json_is_integer(hb)) {
      out->heartbeat_age_ms = now_ms - json_integer_value(hb);
      out->stale = out->heartbeat_age_ms > renew_period_ms(mc) + 1000;
    }
    json_decref(obj);
  } else if (miscache__reply_type(r[0]) != MISCACHE__R_NIL) {
    st = miscache__unexpected(mc, miscache__kf_db(MISCACHE_KF_BATCH_LOCK), key,
                              miscache__reply_type(r[0]) == MISCACHE__R_ERROR
                                  ? r[0]
                                  : r[2],
                              "batch lock state");
  }
  for (int i = 0; i < 3; i++) miscache__reply_free(r[i]);
  return st;
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

static const miscache__company_typed_t config_typed = {
    MISCACHE_KF_BATCH_CONFIG, 0, &miscache__batch_config_payload,
    sizeof(miscache_batch_config_t), "batch config"};

/* The config cache-aside with a loader of either shape (old set: the old
 * one, given as cl; load ignored). */
static miscache_status_t config_aside(miscache_t *mc, int64_t company,
                                      miscache_load_fn load, void *userdata,
                                      config_loader_t *cl,
                                      miscache_batch_config_t *out,
                                      miscache_source_t *source) {
  miscache__company_typed_t t = config_typed;
  t.company = company;
  return miscache__company_typed_aside(
      mc, &t, load, userdata, cl && cl->loader ? load_config : NULL, cl, out,
      source);
}

miscache_status_t miscache_batch_config_get_or_load(
    miscache_t *mc, int64_t company, miscache_batch_config_loader_fn loader,
    void *userdata, miscache_batch_config_t *out, miscache_source_t *source) {
  config_loader_t cl = {loader, userdata, company};
  return config_aside(mc, company, NULL, NULL, &cl, out, source);
}

miscache_status_t miscache_batch_config_get_or_load_ex(
    miscache_t *mc, int64_t company, miscache_load_fn load, void *userdata,
    miscache_batch_config_t *out, miscache_source_t *source) {
  return config_aside(mc, company, load, userdata, NULL, out, source);
}

/* ---- the run helper ------------------------------------------------------ */

struct miscache_batch_run {
  miscache_t *mc;
  int64_t company;
  miscache_lock_t *lock;
  char fence_key[MISCACHE_KEY_BUFSIZE];
  miscache_batch_config_t config;
  miscache_batch_status_t status;
  miscache_batch_summary_t summary;
  char batch_id[64];
  /* lock renewal (mu guards what the renewal thread writes) */
  miscache_t *renew_mc;
  pthread_t renew_thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  bool lost;                /* the lock is gone or may have expired */
  int64_t expires_ms;       /* the lock surely holds until (monotonic) */
  miscache_status_t cause;  /* why it was lost: NOT_OWNER or the failure */
  char cause_msg[MISCACHE_ERRMSG_SIZE];
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

/* true (and the cause in the run's handle message) once the lock is lost,
 * or its TTL may have run out because renewals failed. */
static bool run_lost(miscache_batch_run_t *run) {
  pthread_mutex_lock(&run->mu);
  if (!run->lost && miscache__mono_ms() >= run->expires_ms) {
    run->lost = true;
    if (run->cause == MISCACHE_OK) { /* no renewal even failed: the
                                        process was stopped or starved */
      run->cause = MISCACHE_ERR_NOT_OWNER;
      snprintf(run->cause_msg, sizeof run->cause_msg,
               "the lock TTL ran out before the next renewal");
    }
  }
  bool lost = run->lost;
  if (lost)
    miscache__set_err(run->mc,
                      "batch lock of company %lld is lost or expired (%s); "
                      "the run writes nothing more",
                      (long long)run->company, run->cause_msg);
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

/* Encodes d and writes it through the fence: only while the run owns the
 * lock (or nobody newer took a fence). */
static miscache_status_t fenced_put(miscache_batch_run_t *run, const char *key,
                                    const miscache__payload_t *d,
                                    const void *in,
                                    miscache_key_family_id_t f) {
  miscache_t *mc = run->mc;
  char why[256] = "";
  json_t *v = miscache__payload_encode(d, in, why, sizeof why);
  char *val = v ? miscache__encode(v, NULL) : NULL;
  json_decref(v);
  if (!val) {
    miscache__set_err(mc, "%s: %s", key, why[0] ? why : "cannot encode");
    return MISCACHE_ERR_ENCODE;
  }
  miscache_status_t st =
      miscache__fenced_set(mc, miscache__kf_db(f), run->lock, run->fence_key,
                           key, val, miscache__kf_ttl_ms(mc, f));
  free(val);
  return st;
}

static miscache_status_t put_status(miscache_batch_run_t *run) {
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st =
      company_key(run->mc, key, MISCACHE_KF_BATCH_STATUS, run->company);
  return st == MISCACHE_OK
             ? fenced_put(run, key, &miscache__batch_status_payload,
                          &run->status, MISCACHE_KF_BATCH_STATUS)
             : st;
}

miscache_status_t miscache_batch_run_report(miscache_batch_run_t *run,
                                            const miscache_batch_progress_t *p,
                                            const char *current_step) {
  if (!run || !p) {
    if (run) miscache__set_err(run->mc, "miscache_batch_run_report: p is NULL");
    return MISCACHE_ERR_INVALID;
  }
  if (run_lost(run)) return MISCACHE_ERR_NOT_OWNER;
  run->status.progress = *p;
  if (current_step && set_step(run, current_step) != MISCACHE_OK) {
    miscache__set_err(run->mc, "out of memory for the step name");
    return MISCACHE_ERR_NOMEM;
  }
  return put_status(run);
}

miscache_status_t miscache_batch_run_error(miscache_batch_run_t *run,
                                           const char *message) {
  if (!run) return MISCACHE_ERR_INVALID;
  if (!message) {
    miscache__set_err(run->mc, "miscache_batch_run_error: message is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache_status_t st = miscache_strings_push(&run->status.errors, message);
  if (st != MISCACHE_OK) miscache__set_err(run->mc, "out of memory");
  return st;
}

/* Renews the lock (and its heartbeat) every TTL/3 on its own connection
 * until told to stop. A failed renewal is retried on the next tick while
 * the lock surely still holds; once the TTL may run out before the next
 * try, the run is lost, with the failure as its cause. */
static void *renew_main(void *arg) {
  miscache_batch_run_t *run = arg;
  int64_t every = run->ttl_ms / 3 > 0 ? run->ttl_ms / 3 : 1;
  pthread_mutex_lock(&run->mu);
  while (!run->stop && !run->lost) {
    struct timespec ts;
    miscache__deadline_after(&ts, every);
    while (!run->stop &&
           pthread_cond_timedwait(&run->cv, &run->mu, &ts) == 0) {
    }
    if (run->stop) break;
    pthread_mutex_unlock(&run->mu);
    int64_t sent = miscache__mono_ms();
    miscache_status_t st =
        miscache__lock_heartbeat(run->renew_mc, run->lock, run->ttl_ms);
    pthread_mutex_lock(&run->mu);
    if (st == MISCACHE_OK) {
      run->expires_ms = sent + run->ttl_ms;
      continue;
    }
    snprintf(run->cause_msg, sizeof run->cause_msg, "lock renewal: %s",
             miscache_errmsg(run->renew_mc));
    run->cause = st;
    if (st == MISCACHE_ERR_NOT_OWNER ||
        miscache__mono_ms() + every >= run->expires_ms)
      run->lost = true;
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

/* Starts the renewal thread on a handle of its own. */
static miscache_status_t renew_start(miscache_batch_run_t *run) {
  miscache_t *mc = run->mc;
  miscache_options_t o = mc->opts; /* shallow: open copies what it needs */
  o.lazy = true;
  char err[MISCACHE_ERRMSG_SIZE] = "";
  miscache_status_t st = miscache_open(&o, &run->renew_mc, err, sizeof err);
  if (st != MISCACHE_OK) {
    miscache__set_err(mc, "batch lock renewal could not start: %s", err);
    return st;
  }
  int rc = pthread_create(&run->renew_thread, NULL, renew_main, run);
  if (rc != 0) {
    miscache_free(run->renew_mc);
    run->renew_mc = NULL;
    miscache__set_err(mc, "batch lock renewal thread could not start: %s",
                      strerror(rc));
    return MISCACHE_ERR_NOMEM;
  }
  return MISCACHE_OK;
}

static void renew_stop(miscache_batch_run_t *run) {
  pthread_mutex_lock(&run->mu);
  run->stop = true;
  pthread_cond_signal(&run->cv);
  pthread_mutex_unlock(&run->mu);
  pthread_join(run->renew_thread, NULL);
  miscache_free(run->renew_mc);
  run->renew_mc = NULL;
}

/* Steps 3 and 4: the status "running", then the work, never unprotected
 * (no renewal, no work). config_st: how reading the config went. Returns
 * the work's status, or what kept it from starting. */
static miscache_status_t run_work(miscache_batch_run_t *run,
                                  const char *start_iso,
                                  miscache_status_t config_st,
                                  miscache_batch_work_fn work, void *ud) {
  miscache_t *mc = run->mc;
  miscache_status_t st = config_st, work_st;
  run->status.status = strdup("running");
  run->status.start_time = strdup(start_iso);
  run->status.batch_id = strdup(run->batch_id);
  run->status.current_step = strdup(st == MISCACHE_OK ? "started" : "config");
  if (!run->status.status || !run->status.start_time ||
      !run->status.batch_id || !run->status.current_step) {
    st = MISCACHE_ERR_NOMEM;
    miscache__set_err(mc, "out of memory starting the batch");
  }
  if (st == MISCACHE_OK) st = put_status(run);
  if (st == MISCACHE_OK) st = renew_start(run);
  if (st != MISCACHE_OK) { /* could not start: the batch failed */
    miscache_strings_push(&run->status.errors, miscache_errmsg(mc));
    return st;
  }
  work_st = work(ud, run);
  renew_stop(run);
  if (work_st != MISCACHE_OK) {
    char line[MISCACHE_ERRMSG_SIZE + 64];
    snprintf(line, sizeof line, "work failed: %s",
             miscache_strerror(work_st));
    miscache_strings_push(&run->status.errors, line);
  }
  return work_st;
}

/* Step 5: the final status and the day's history, through the fence (a
 * run that lost its lock to a newer one writes neither). *h: the history
 * as written, borrowing run's strings. */
static miscache_status_t write_outcome(miscache_batch_run_t *run,
                                       const char *start_iso,
                                       const char *date, int64_t t0, bool ok,
                                       miscache_batch_history_t *h) {
  char end_iso[32], end_date[9];
  utc_now(end_iso, sizeof end_iso, end_date);
  free(run->status.status);
  run->status.status = strdup(ok ? "completed" : "failed");
  run->status.end_time = strdup(end_iso);
  miscache_status_t fin = run->status.status && run->status.end_time
                              ? put_status(run)
                              : MISCACHE_ERR_NOMEM;
  memset(h, 0, sizeof *h);
  h->execution_time = (char *)start_iso;
  h->duration_seconds = (miscache__mono_ms() - t0 + 500) / 1000;
  h->status = run->status.status;
  h->total_records = run->status.progress.total_records;
  h->gift_classified = run->status.progress.classified_gifts;
  h->errors = run->status.errors; /* borrowed for the write */
  h->summary = run->summary;
  char hkey[MISCACHE_KEY_BUFSIZE];
  miscache_status_t hist =
      h->status
          ? miscache__key_company_date(run->mc, hkey, MISCACHE_KF_BATCH_HISTORY,
                                       run->company, date)
          : MISCACHE_ERR_NOMEM;
  if (hist == MISCACHE_OK)
    hist = fenced_put(run, hkey, &miscache__batch_history_payload, h,
                      MISCACHE_KF_BATCH_HISTORY);
  return fin == MISCACHE_OK ? hist : fin;
}

/* A deep copy of h through the codec, owned by the caller. */
static void copy_history(const miscache_batch_history_t *h,
                         miscache_batch_history_t *out) {
  char why[256];
  json_t *j = miscache__payload_encode(&miscache__batch_history_payload, h,
                                       why, sizeof why);
  if (j)
    miscache__payload_decode(&miscache__batch_history_payload, j, out, why,
                             sizeof why);
  json_decref(j);
}

/* The run, with a config loader of either shape (typed set: the old one,
 * load ignored). */
static miscache_status_t
batch_run(miscache_t *mc, int64_t company, const char *locked_by,
          miscache_load_fn load, void *config_userdata, config_loader_t *typed,
          miscache_batch_work_fn work, void *work_userdata,
          miscache_batch_history_t *history_out) {
  if (history_out) memset(history_out, 0, sizeof *history_out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if ((typed ? !typed->loader : !load) || !work) {
    miscache__set_err(mc, "miscache_batch_run: loader or work is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache_batch_run_t run;
  memset(&run, 0, sizeof run);
  run.mc = mc;
  run.company = company;
  run.ttl_ms = lock_ttl_ms(mc);
  char lock_key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = lock_keys(mc, company, lock_key, run.fence_key);
  if (st != MISCACHE_OK) return st;
  char start_iso[32], date[9];
  utc_now(start_iso, sizeof start_iso, date);
  int64_t t0 = miscache__mono_ms();
  snprintf(run.batch_id, sizeof run.batch_id, "%lld-%.8sT%.2s%.2s%.2sZ",
           (long long)company, date, start_iso + 11, start_iso + 14,
           start_iso + 17);

  /* 1. the lock: a second run stops here */
  st = miscache_batch_lock_acquire(mc, company, locked_by, run.batch_id,
                                   &run.lock);
  if (st != MISCACHE_OK) return st;
  run.expires_ms = t0 + run.ttl_ms;
  pthread_mutex_init(&run.mu, NULL);
  miscache__cond_init_monotonic(&run.cv);

  /* 2. config; 3. status running; 4. the work */
  st = config_aside(mc, company, load, config_userdata, typed, &run.config,
                    NULL);
  miscache_status_t work_st =
      run_work(&run, start_iso, st, work, work_userdata);
  bool lost = run_lost(&run);
  char lost_msg[MISCACHE_ERRMSG_SIZE];
  snprintf(lost_msg, sizeof lost_msg, "%s", mc->err);
  if (lost) miscache_strings_push(&run.status.errors, run.cause_msg);

  /* 5. final status and history; 6. release, only if still ours */
  miscache_batch_history_t h;
  miscache_status_t fin = write_outcome(&run, start_iso, date, t0,
                                        work_st == MISCACHE_OK && !lost, &h);
  miscache_status_t rel = miscache_lock_release(mc, run.lock);
  miscache_lock_free(run.lock);
  if (history_out && h.status) copy_history(&h, history_out);
  miscache_status_t cause = run.cause;
  miscache_batch_config_clear(&run.config);
  miscache_batch_status_clear(&run.status);
  pthread_cond_destroy(&run.cv);
  pthread_mutex_destroy(&run.mu);
  if (lost) {
    /* the real cause: NOT_OWNER when another run holds it, else the
     * renewal's own failure (timeout, NOPERM...) */
    miscache__set_err(mc, "%s", lost_msg);
    return cause;
  }
  if (work_st != MISCACHE_OK) return work_st;
  if (rel != MISCACHE_OK) {
    miscache__set_err(mc, "batch of company %lld: the lock was lost at the "
                          "end of the run (released nothing)",
                      (long long)company);
    return MISCACHE_ERR_NOT_OWNER;
  }
  return fin;
}

miscache_status_t
miscache_batch_run(miscache_t *mc, int64_t company, const char *locked_by,
                   miscache_batch_config_loader_fn config_loader,
                   void *config_userdata, miscache_batch_work_fn work,
                   void *work_userdata, miscache_batch_history_t *history_out) {
  config_loader_t cl = {config_loader, config_userdata, company};
  return batch_run(mc, company, locked_by, NULL, NULL, &cl, work, work_userdata,
                   history_out);
}

miscache_status_t
miscache_batch_run_ex(miscache_t *mc, int64_t company, const char *locked_by,
                      miscache_load_fn config_load, void *config_userdata,
                      miscache_batch_work_fn work, void *work_userdata,
                      miscache_batch_history_t *history_out) {
  return batch_run(mc, company, locked_by, config_load, config_userdata, NULL,
                   work, work_userdata, history_out);
}

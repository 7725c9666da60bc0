/*
 * libmiscache — nightly batch state in db "batch":
 *   batch:config:{company}            typed, TTL class batch_config (24 h)
 *   batch:status:{company}            typed, TTL class batch_status (1 h)
 *   batch:history:{company}:{YYYYMMDD} typed, TTL class batch_history (7 d)
 *   batch:lock:{company}              the core lock, TTL class batch_lock (30 min)
 * and miscache_batch_run(), the whole batch flow of docs/strategy.md.
 * Structs own their strings: clear them with the matching *_clear().
 * Thread rule: one thread at a time per handle (the run helper's lock
 * renewal uses a handle of its own).
 */
#ifndef MISCACHE_BATCH_H
#define MISCACHE_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cache.h"
#include "lock.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct miscache_batch_config {
  bool batch_enabled;
  int64_t batch_hour;
  int64_t batch_minute;
  int64_t api_call_interval;
  int64_t page_size;
  int64_t retry_count;
  bool auto_gift_classify;
  miscache_strings_t gift_keywords;
  char *last_updated;
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_batch_config_t;

typedef struct miscache_batch_progress {
  int64_t total_pages;
  int64_t processed_pages;
  int64_t total_records;
  int64_t processed_records;
  int64_t classified_gifts;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_batch_progress_t;

typedef struct miscache_batch_status {
  char *status; /* "running", "completed", "failed" */
  char *start_time;
  char *end_time;
  char *batch_id;
  char *current_step;
  miscache_batch_progress_t progress;
  miscache_strings_t errors;
  /* Not stored: set by miscache_batch_status_get() when status is
   * "running" but the run's lock is gone or its heartbeat is older than the
   * renewal period (its process died or hangs). */
  bool stale;
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_batch_status_t;

typedef struct miscache_batch_summary {
  int64_t orders_processed;
  int64_t products_processed;
  int64_t gifts_identified;
  int64_t revenue_products;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_batch_summary_t;

typedef struct miscache_batch_history {
  char *execution_time;
  int64_t duration_seconds;
  char *status;
  int64_t total_records;
  int64_t gift_classified;
  miscache_strings_t errors;
  miscache_batch_summary_t summary;
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_batch_history_t;

MISCACHE_EXPORT void miscache_batch_config_clear(miscache_batch_config_t *c);
MISCACHE_EXPORT void miscache_batch_status_clear(miscache_batch_status_t *s);
MISCACHE_EXPORT void miscache_batch_history_clear(miscache_batch_history_t *h);

/* Config. get: OK (clear *out), MISS, ERR_DECODE. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_config_set(miscache_t *mc, int64_t company,
                          const miscache_batch_config_t *c);
MISCACHE_EXPORT miscache_status_t
miscache_batch_config_get(miscache_t *mc, int64_t company,
                          miscache_batch_config_t *out);
/* Loads a company's config from the system of record into *out (zeroed). */
typedef miscache_status_t (*miscache_batch_config_loader_fn)(
    void *userdata, int64_t company, miscache_batch_config_t *out);
/* Cached config, else loader → store → return; fail-open like
 * miscache_get_or_load(). source optional. */
MISCACHE_EXPORT miscache_status_t miscache_batch_config_get_or_load(
    miscache_t *mc, int64_t company, miscache_batch_config_loader_fn loader,
    void *userdata, miscache_batch_config_t *out, miscache_source_t *source);
/* The same with a loader of the 0.4.0 shape (cache.h): asked for family
 * MISCACHE_KF_BATCH_CONFIG with the company, it gives the config as the JSON
 * the library stores (docs/batch.md); a value that does not decode is
 * ERR_LOADER and is not cached. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_batch_config_get_or_load_ex(
    miscache_t *mc, int64_t company, miscache_load_fn load, void *userdata,
    miscache_batch_config_t *out, miscache_source_t *source);

/* Status. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_status_set(miscache_t *mc, int64_t company,
                          const miscache_batch_status_t *s);
MISCACHE_EXPORT miscache_status_t
miscache_batch_status_get(miscache_t *mc, int64_t company,
                          miscache_batch_status_t *out);
/* Replace progress (and current_step when not NULL) of the stored status;
 * the status TTL starts again. MISS if there is no status. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_status_progress(miscache_t *mc, int64_t company,
                               const miscache_batch_progress_t *p,
                               const char *current_step);

/* History of one day. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_history_set(miscache_t *mc, int64_t company,
                           const char *yyyymmdd,
                           const miscache_batch_history_t *h);
MISCACHE_EXPORT miscache_status_t
miscache_batch_history_get(miscache_t *mc, int64_t company,
                           const char *yyyymmdd, miscache_batch_history_t *out);

/* The company's batch lock (batch:lock:{company}, TTL class batch_lock).
 * Its value holds token, locked_by, locked_at, batch_id, the holder's host
 * and pid, a fencing token "fence" (from the counter batch:fence:{company},
 * taken in the same script, so every later holder has a larger one; see
 * miscache_lock_fence) and "heartbeat_ms", the server's time at the last
 * renewal. OK, ERR_LOCKED (the message names the holder), transport
 * statuses. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_lock_acquire(miscache_t *mc, int64_t company,
                            const char *locked_by, const char *batch_id,
                            miscache_lock_t **out);

/* What the batch lock of a company says about its holder. */
typedef struct miscache_batch_lock_state {
  bool held;  /* a lock value is there */
  bool stale; /* held, but its heartbeat is older than the renewal period
                 (TTL/3) + 1 s: the holder stopped renewing */
  char token[40];
  char locked_by[128];
  char batch_id[128];
  char host[256];
  int64_t pid;
  int64_t fence;
  int64_t heartbeat_age_ms; /* server time - heartbeat; -1 if unknown */
  int64_t ttl_ms;           /* the lock's remaining TTL */
  uint64_t reserved_[4];    /* room to grow without an ABI break; keep zero */
} miscache_batch_lock_state_t;

/* Fill *out (zeroed first). OK (held false when nobody holds it),
 * ERR_INVALID, transport statuses. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_lock_state(miscache_t *mc, int64_t company,
                          miscache_batch_lock_state_t *out);

/* For operators: take over the batch lock of a holder that stopped
 * renewing. Succeeds only if the lock still holds stale_token (read it with
 * miscache_batch_lock_state) and its heartbeat is stale, or if the lock is
 * gone; the new lock gets a new, larger fence, so the old holder's later
 * status and history writes are refused. OK (*out a new lock), ERR_LOCKED
 * (another token holds it, or the holder renewed recently: it is alive),
 * ERR_INVALID, transport statuses. Never a blind delete. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_lock_takeover(miscache_t *mc, int64_t company,
                             const char *stale_token, const char *locked_by,
                             const char *batch_id, miscache_lock_t **out);

/* ---- the batch run helper ------------------------------------------------ */

typedef struct miscache_batch_run miscache_batch_run_t;

/* The caller's work. Report progress with miscache_batch_run_report(), add
 * error lines with miscache_batch_run_error(), fill the summary through
 * miscache_batch_run_summary(). Return OK, or another status to fail the
 * batch: MISCACHE_ERR_WORK (0.4.0) for a failure of the work itself (the
 * ERP could not be read, a page did not parse), or the status of a cache
 * call that failed. The status is the run's result and its text the
 * history's error line ("work failed: batch work callback failed"). */
typedef miscache_status_t (*miscache_batch_work_fn)(void *userdata,
                                                    miscache_batch_run_t *run);

/* The config the run uses. Borrowed, valid during the run. */
MISCACHE_EXPORT const miscache_batch_config_t *
miscache_batch_run_config(const miscache_batch_run_t *run);
/* The run's handle, for the work's own cache calls (same thread). */
MISCACHE_EXPORT miscache_t *miscache_batch_run_handle(miscache_batch_run_t *run);
/* The run's batch id. Borrowed, valid during the run. */
MISCACHE_EXPORT const char *miscache_batch_run_id(const miscache_batch_run_t *run);
/* Store progress and step in batch:status. ERR_NOT_OWNER when the lock was
 * lost, or when renewals failed long enough that the lock may have expired
 * (the work should stop: nothing more of this run is written), else the
 * status of the write. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_run_report(miscache_batch_run_t *run,
                          const miscache_batch_progress_t *p,
                          const char *current_step);
MISCACHE_EXPORT miscache_status_t
miscache_batch_run_error(miscache_batch_run_t *run, const char *message);
MISCACHE_EXPORT miscache_batch_summary_t *
miscache_batch_run_summary(miscache_batch_run_t *run);

/* Run the batch of docs/strategy.md for company:
 *   take batch:lock:{company} with a fencing token (ERR_LOCKED: another run
 *   holds it; nothing else happens) → config (get_or_load with
 *   config_loader) → status running → work(userdata, run), the lock and its
 *   heartbeat renewed every TTL/3 by a helper thread on its own connection
 *   (if that thread or its handle cannot start, the run fails before the
 *   work starts) → status completed or failed (+ errors) → history for the
 *   day the run started → release the lock only if still ours.
 * Every status and history write of the run goes through one script that
 * writes only while the lock holds the run's token (or, with the lock gone,
 * while no newer run took a fence): a run that was stopped past its TTL and
 * resumed after another run took over writes nothing.
 * history_out (optional) receives the history record (clear it); it is
 * zeroed first, and stays so (status NULL) when nothing was written: on
 * ERR_LOCKED (another run holds the lock: this run did nothing at all),
 * ERR_INVALID, or a failure before the lock was taken.
 * Returns OK, ERR_LOCKED, the work's status when it failed (ERR_WORK for
 * the work's own failure), ERR_NOT_OWNER
 * when another run took the lock, the renewal's own failure (ERR_SERVER
 * for NOPERM, ERR_UNAVAILABLE...) when renewals failed until the lock may
 * have expired, or the first cache failure. */
MISCACHE_EXPORT miscache_status_t miscache_batch_run(
    miscache_t *mc, int64_t company, const char *locked_by,
    miscache_batch_config_loader_fn config_loader, void *config_userdata,
    miscache_batch_work_fn work, void *work_userdata,
    miscache_batch_history_t *history_out);
/* The same with a config loader of the 0.4.0 shape (cache.h): asked for
 * family MISCACHE_KF_BATCH_CONFIG with the company, it gives the config as
 * the JSON the library stores. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t
miscache_batch_run_ex(miscache_t *mc, int64_t company, const char *locked_by,
                      miscache_load_fn config_load, void *config_userdata,
                      miscache_batch_work_fn work, void *work_userdata,
                      miscache_batch_history_t *history_out);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_BATCH_H */

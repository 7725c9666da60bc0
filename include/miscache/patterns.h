/*
 * libmiscache — the other cache patterns of docs/strategy.md, on top of the
 * generic operations and the work queues (queue.h):
 *
 *   write-through      the system of record first, then the cache
 *   write-behind       the cache and a queued change in one atomic step;
 *                      a flush worker writes the changes to the system of
 *                      record later, in batches
 *   background refresh recompute values and overwrite them in place (no
 *                      delete-then-miss window)
 *
 * docs/patterns.md shows each with an example and says which data uses
 * which. Thread rule: one thread at a time per handle.
 */
#ifndef MISCACHE_PATTERNS_H
#define MISCACHE_PATTERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cache.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes one value to the system of record. key is the logical key,
 * value borrowed. OK, or any other status for a failure (errbuf may say
 * why). */
typedef miscache_status_t (*miscache_writer_fn)(void *userdata,
                                                miscache_db_t db,
                                                const char *key,
                                                const json_t *value,
                                                char *errbuf, size_t errlen);

/* Write-through: writer first; if it fails nothing is cached and
 * MISCACHE_ERR_WRITER is returned (the writer's words in the message).
 * Then the cache: the value is stored with the class TTL, or, with
 * invalidate true, the key is deleted (the next read loads it). If that
 * cache write fails the key is deleted instead (kept as a pending
 * invalidation when the delete fails too), so the cache never holds a
 * value the system of record does not; the status of the failed cache
 * write is returned then (the system of record has the value). */
MISCACHE_EXPORT miscache_status_t
miscache_write_through(miscache_t *mc, miscache_db_t db, const char *key,
                       const json_t *value, miscache_ttl_class_t cls,
                       bool invalidate, miscache_writer_fn writer,
                       void *userdata);

/* Write-behind: stores value under key (class TTL) and appends the change
 * to work queue NAME, in one script (atomic: a crash cannot leave one
 * without the other), which also gives the change its seq (INCR of
 * queue:{NAME}:seq, in the entry's "seq" field). The queue key's type is
 * checked before anything is written: one that holds another type is
 * MISCACHE_ERR_DECODE (WRONGTYPE) with the cache left as it was. OK only
 * once Redis has both. The queued body is {"op":"set","db":"<db name>",
 * "key":"<key>","value":...,"coalesce":<bool>}; coalesce says several
 * changes of this key waiting in the queue may be written once, the latest
 * (only where the caller knows that is safe: a last-activity time, a
 * progress figure; not a counter's increments). Not on a Redis Cluster
 * (one db, and the two keys are in different slots): ERR_INVALID there. */
MISCACHE_EXPORT miscache_status_t
miscache_write_behind(miscache_t *mc, miscache_db_t db, const char *key,
                      const json_t *value, miscache_ttl_class_t cls,
                      const char *queue, bool coalesce);

/* One queued change as the flush hands it to a writer. Borrowed for the
 * call. */
typedef struct miscache_wb_change {
  miscache_db_t db;
  const char *key;      /* logical key */
  const json_t *value;  /* the value miscache_write_behind stored */
  /* The change's number: increasing per queue, given atomically with the
   * cache write, so a larger seq is a newer value. A system of record that
   * stores it can refuse an older one itself (UPDATE ... WHERE seq < ?),
   * which closes the one gap the flush cannot (see docs/patterns.md).
   * 0: an entry without one (queued by a version before 0.3.0, or by
   * another program). */
  uint64_t seq;
  uint64_t deliveries;  /* the server's delivery count of the entry */
  const char *entry_id; /* the stream entry */
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_wb_change_t;

/* A writer that is given the whole change (its seq among the rest). OK, or
 * any other status for a failure (errbuf may say why). */
typedef miscache_status_t (*miscache_wb_writer_fn)(
    void *userdata, const miscache_wb_change_t *change, char *errbuf,
    size_t errlen);

/* The flush worker's round: reclaims what dead flushers left, takes up to
 * batch queued changes (blocking up to block_ms), and writes them with
 * writer, acking what was written and keeping what failed pending for a
 * retry (dead-lettered after opts->max_deliveries).
 *
 * Order: the changes of one key are written under a per-key lease
 * (queue:{NAME}:lease:<db>:<key>, held at most opts->reclaim_idle_ms, at
 * least 5 s), in
 * seq order; a change whose seq is not above the newest one recorded as
 * written (queue:{NAME}:written, recorded after the writer returned OK and
 * while the lease was still held) is acked without a write; a coalesced
 * change is written only when no later one of its key is in the batch. So,
 * while every writer call returns within the lease, the system of record
 * never gets an older value of a key after a newer one, and once the queue
 * is drained it holds the latest value miscache_write_behind acknowledged,
 * whatever refusals, retries, reclaims, killed workers and restarts came
 * between (docs/patterns.md says what each leaves behind). A key whose
 * lease another flusher holds (after waiting at most 0.5 s per round) is
 * handed back to the next reclaim, its delivery not counted. A writer call that outlived its lease may have
 * overtaken a newer write: the round returns MISCACHE_ERR_NOT_OWNER and the
 * entry stays pending; miscache_write_behind_flush_changes gives the writer
 * each change's seq to refuse such a write itself. *written (optional):
 * writer calls that succeeded; *acked (optional): queue entries acked. */
MISCACHE_EXPORT miscache_status_t
miscache_write_behind_flush(miscache_t *mc, const char *queue,
                            const char *group, const char *consumer,
                            size_t batch, int block_ms,
                            const miscache_queue_opts_t *opts,
                            miscache_writer_fn writer, void *userdata,
                            size_t *written, size_t *acked);
/* The same round with a writer given each change's seq. Added in 0.3.0. */
MISCACHE_EXPORT miscache_status_t miscache_write_behind_flush_changes(
    miscache_t *mc, const char *queue, const char *group, const char *consumer,
    size_t batch, int block_ms, const miscache_queue_opts_t *opts,
    miscache_wb_writer_fn writer, void *userdata, size_t *written,
    size_t *acked);

/* One value to recompute. */
typedef struct miscache_refresh_item {
  miscache_db_t db;
  const char *key; /* logical key */
  miscache_ttl_class_t cls;
  miscache_loader_fn loader; /* the old shape; ignored when load is set */
  void *userdata;            /* given to either loader */
  miscache_load_fn load;     /* 0.4.0: the one loader shape (req->family
                                -1), used when not NULL */
  uint64_t reserved_[4];     /* room to grow without an ABI break; keep zero */
} miscache_refresh_item_t;

/* Background refresh: for each item, the loader's value overwrites the key
 * in place (SET with the class TTL: readers see the old value until the
 * new one, never a miss); a loader MISS deletes the key (the record is
 * gone); a loader failure leaves the old value (to expire with its TTL)
 * and is reported. *refreshed (optional): keys overwritten or deleted.
 * Returns OK, or the first failure (ERR_LOADER for a loader, the cache's
 * status otherwise) after trying every item. */
MISCACHE_EXPORT miscache_status_t
miscache_refresh(miscache_t *mc, const miscache_refresh_item_t *items,
                 size_t n, size_t *refreshed);

/* The document's refresh_post_batch_cache: after company's nightly batch,
 * its batch status and the day's gift analytics are recomputed by the
 * loaders (status_loader for batch:status:{company}, analytics_loader for
 * gift:analytics:{company}:{yyyymmdd}, both given the logical key) and
 * replaced in place instead of deleted. */
MISCACHE_EXPORT miscache_status_t
miscache_refresh_post_batch(miscache_t *mc, int64_t company,
                            const char *yyyymmdd,
                            miscache_loader_fn status_loader,
                            miscache_loader_fn analytics_loader,
                            void *userdata, size_t *refreshed);
/* The same with loaders of the 0.4.0 shape: status_load is asked for
 * family MISCACHE_KF_BATCH_STATUS with the company, analytics_load for
 * MISCACHE_KF_GIFT_ANALYTICS with the company and the date. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_refresh_post_batch_ex(
    miscache_t *mc, int64_t company, const char *yyyymmdd,
    miscache_load_fn status_load, miscache_load_fn analytics_load,
    void *userdata, size_t *refreshed);

/* Queue name the miscache tool's `refresh` command writes requests to:
 * {"op":"refresh_post_batch","company":N,"date":"YYYYMMDD"}. A service
 * with the loaders consumes it and calls miscache_refresh_post_batch. */
#define MISCACHE_REFRESH_QUEUE "refresh"

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_PATTERNS_H */

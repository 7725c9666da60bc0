/* The domain layer (src/domain): sessions, permissions, master data,
 * statistics, uploads, batches, gift classification, events, monitoring,
 * queues and patterns. Built of ops/ (and core/'s handle), never of the
 * dispatcher. Not installed. */
#ifndef MISCACHE_DOMAIN_H
#define MISCACHE_DOMAIN_H

#include "ops/ops.h"

/* ---- invalidation events as data (events.c) ----------------------------- */
typedef enum {
  MISCACHE__EV_PERMISSIONS,
  MISCACHE__EV_BATCH_CONFIG,
  MISCACHE__EV_GIFT_RULES,
  MISCACHE__EV_BRAND,
  MISCACHE__EV_COMPANY,
  MISCACHE__EV_DAILY,
  MISCACHE__EV_POST_BATCH, /* its steps once per company */
  MISCACHE__EVENT_COUNT
} miscache__event_id_t;
#define MISCACHE__EVENT_MAX_STEPS 8
typedef struct {
  miscache_key_family_id_t family;
  signed char ids[2]; /* argument index, or -1: any id ("*") */
  bool prefix_glob;   /* the pattern "<prefix>*" (ids unused) */
} miscache__event_step_t;
typedef struct {
  const char *name; /* as the tool and the Python package take it */
  const char *args; /* "COMPANY", "COMPANY... YYYYMMDD" */
  size_t nsteps;
  miscache__event_step_t steps[MISCACHE__EVENT_MAX_STEPS];
} miscache__inval_event_t;
extern const miscache__inval_event_t miscache__events[MISCACHE__EVENT_COUNT];

/* ---- the top-level payloads, one per stored value shape ------------------ */
extern const miscache__payload_t miscache__session_payload;
extern const miscache__payload_t miscache__batch_config_payload;
extern const miscache__payload_t miscache__batch_status_payload;
extern const miscache__payload_t miscache__batch_history_payload;
extern const miscache__payload_t miscache__gift_rules_payload;
extern const miscache__payload_t miscache__gift_master_payload; /* an entry */
extern const miscache__payload_t miscache__gift_class_payload;
extern const miscache__payload_t miscache__daily_sales_payload;
extern const miscache__payload_t miscache__upload_payload;

/* The gift master list as a new JSON array; NULL if out of memory or an
 * entry does not encode (why says which field, when it is a field). */
json_t *
miscache__gift_master_encode(const miscache_gift_master_entry_t *entries,
                             size_t n, char *why, size_t whylen);
/* The gift master list: a JSON array of entries. OK with *entries (free
 * with miscache_gift_master_free) and *n; ERR_DECODE (why says where) or
 * ERR_NOMEM with *entries NULL and *n 0. */
miscache_status_t
miscache__gift_master_decode(const json_t *arr,
                             miscache_gift_master_entry_t **entries, size_t *n,
                             char *why, size_t whylen);

/* ---- work queues (queue.c) ---------------------------------------------- */
/* The namespaced stream key of queue NAME ("queue:{NAME}"), the name
 * checked as the queue calls check it (ERR_KEY, message set). */
miscache_status_t miscache__queue_stream_key(miscache_t *mc, const char *name,
                                             miscache__fullkey_t *fk);

/* miscache_queue_pull / miscache_queue_reclaim that also give each
 * message's "seq" field (0 without one) in seqs[] beside out[]. */
miscache_status_t miscache__queue_pull_seq(miscache_t *mc, const char *name,
                                           const char *group,
                                           const char *consumer, size_t max,
                                           int block_ms,
                                           miscache_queue_msg_t *out,
                                           uint64_t *seqs, size_t *got);
miscache_status_t miscache__queue_reclaim_seq(
    miscache_t *mc, const char *name, const char *group, const char *consumer,
    size_t max, const miscache_queue_opts_t *opts, miscache_queue_msg_t *out,
    uint64_t *seqs, size_t *got, size_t *dead);

/* Hands entries (ids[n], delivered deliveries[i] times) back to the
 * reclaim at once: still pending with consumer, idle for idle_ms, their
 * delivery count as before this delivery (XCLAIM IDLE RETRYCOUNT), so an
 * entry put aside unprocessed is not counted towards max_deliveries. */
miscache_status_t miscache__queue_defer(miscache_t *mc, const char *name,
                                       const char *group,
                                       const char *consumer, size_t n,
                                       const char *const ids[],
                                       const uint64_t deliveries[],
                                       int64_t idle_ms);

#endif /* MISCACHE_DOMAIN_H */

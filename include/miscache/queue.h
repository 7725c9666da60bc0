/*
 * libmiscache — durable work queues on Redis Streams in the "queue" db
 * (db 3 by default). At-least-once delivery through consumer groups:
 *
 *   stream      queue:{NAME}         entries: msg_id, enqueued_ms, body (JSON)
 *   dead letter queue:{NAME}:dead    entries: the same + error, deliveries
 *   counters    queue:{NAME}:trimmed what the length cap dropped (INCRBY)
 *   last errors queue:{NAME}:errors  hash: entry id -> the last error text
 *
 * The braces are part of the key names: on a Redis Cluster the four keys of
 * a queue share a slot. NAME: letters, digits and "_-.", at most 64 bytes.
 * A consumer that dies leaves its entries pending; miscache_queue_reclaim()
 * (XAUTOCLAIM) hands them to a live consumer after an idle limit; an entry
 * delivered max_deliveries times without an ack moves to the dead-letter
 * stream with its last error instead of being delivered again. Another
 * program (the Flask app) can read and consume the same streams: the
 * fields are plain strings.
 * Thread rule: one thread at a time per handle.
 */
#ifndef MISCACHE_QUEUE_H
#define MISCACHE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MISCACHE_QUEUE_ID_SIZE 48 /* a stream entry id or msg id, with NUL */

/* One delivered message. Owned by the caller: miscache_queue_msg_clear(). */
typedef struct miscache_queue_msg {
  char id[MISCACHE_QUEUE_ID_SIZE];     /* stream entry id: ack with it */
  char msg_id[MISCACHE_QUEUE_ID_SIZE]; /* the caller's idempotency id */
  int64_t enqueued_ms;                 /* enqueue time, ms since the epoch */
  uint64_t deliveries;                 /* 1 on the first delivery */
  json_t *body;                        /* new reference */
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_queue_msg_t;
MISCACHE_EXPORT void miscache_queue_msg_clear(miscache_queue_msg_t *m);

/* Queue settings (per call, so several queues can differ). Zero-initialise
 * and set what you need: 0 fields take the defaults in brackets. */
typedef struct miscache_queue_opts {
  uint64_t maxlen;          /* approximate length cap [1,000,000] */
  uint32_t max_deliveries;  /* then dead-lettered [5] */
  int64_t reclaim_idle_ms;  /* pending longer: a dead consumer's [60,000] */
  uint64_t reserved_[4];    /* room to grow without an ABI break; keep zero */
} miscache_queue_opts_t;

/* Append n JSON messages to queue NAME in one round trip (one script, so
 * the cap's trimming is counted in queue:{NAME}:trimmed, never silent).
 * msg_ids: the callers' idempotency ids (NULL, or an entry NULL: a UUID is
 * made); ids_out (optional, n x MISCACHE_QUEUE_ID_SIZE): the stream entry
 * ids. opts may be NULL. OK, ERR_INVALID, ERR_KEY (bad name or msg id),
 * ERR_ENCODE, transport statuses. */
MISCACHE_EXPORT miscache_status_t
miscache_queue_enqueue(miscache_t *mc, const char *name, size_t n,
                       const json_t *const bodies[],
                       const char *const msg_ids[],
                       const miscache_queue_opts_t *opts,
                       char (*ids_out)[MISCACHE_QUEUE_ID_SIZE]);

/* Up to max new messages for consumer of group (the group is created at
 * the start of the stream when missing), waiting up to block_ms (0: no
 * wait) when there are none. Entries whose body is not JSON are
 * dead-lettered, not returned. *got (out) is how many out[] holds; clear
 * each with miscache_queue_msg_clear(). block_ms must be below the command
 * timeout. */
MISCACHE_EXPORT miscache_status_t
miscache_queue_pull(miscache_t *mc, const char *name, const char *group,
                    const char *consumer, size_t max, int block_ms,
                    miscache_queue_msg_t *out, size_t *got);

/* Entries pending longer than opts->reclaim_idle_ms with any consumer
 * (one that died) are claimed for consumer (XAUTOCLAIM), up to max; those
 * already delivered max_deliveries times go to the dead-letter stream with
 * their last error instead. *got as for pull; *dead (optional) counts the
 * dead-lettered ones. */
MISCACHE_EXPORT miscache_status_t
miscache_queue_reclaim(miscache_t *mc, const char *name, const char *group,
                       const char *consumer, size_t max,
                       const miscache_queue_opts_t *opts,
                       miscache_queue_msg_t *out, size_t *got, size_t *dead);

/* Done with entry id: XACK and XDEL (and its last error dropped). */
MISCACHE_EXPORT miscache_status_t miscache_queue_ack(miscache_t *mc,
                                                     const char *name,
                                                     const char *group,
                                                     const char *id);
/* Failed: keep the entry pending (it comes back through reclaim) and
 * remember why (becomes the dead letter's error). */
MISCACHE_EXPORT miscache_status_t miscache_queue_fail(miscache_t *mc,
                                                      const char *name,
                                                      const char *id,
                                                      const char *error);

/* A handler: OK acks the message; any other status is a failure (msg
 * stays pending, error text from errbuf when set). */
typedef miscache_status_t (*miscache_queue_handler_fn)(
    void *userdata, const miscache_queue_msg_t *msg, char *errbuf,
    size_t errlen);

/* One round of a consumer loop: reclaim what dead consumers left (if
 * idle long enough), then pull up to batch new messages (blocking up to
 * block_ms), hand each to handler, ack or fail it. *handled (optional):
 * messages handed over. */
MISCACHE_EXPORT miscache_status_t
miscache_queue_consume(miscache_t *mc, const char *name, const char *group,
                       const char *consumer, size_t batch, int block_ms,
                       const miscache_queue_opts_t *opts,
                       miscache_queue_handler_fn handler, void *userdata,
                       size_t *handled);

typedef struct miscache_queue_info {
  uint64_t length;        /* entries in the stream (pending ones included) */
  uint64_t pending;       /* delivered to group, not acked */
  uint64_t consumers;     /* of group */
  int64_t oldest_age_ms;  /* of the oldest entry still in the stream; -1 */
  uint64_t dead;          /* entries in the dead-letter stream */
  uint64_t trimmed;       /* entries the length cap dropped, ever */
  uint64_t reserved_[4];  /* room to grow without an ABI break; keep zero */
} miscache_queue_info_t;

/* Figures of queue NAME for group (NULL: the first group, if any). */
MISCACHE_EXPORT miscache_status_t
miscache_queue_info(miscache_t *mc, const char *name, const char *group,
                    miscache_queue_info_t *out);

/* Up to max dead letters, oldest first: out[i] as for pull (deliveries is
 * how many times it was tried); errors (optional, max strings) the last
 * error of each, malloc'd (free them). */
MISCACHE_EXPORT miscache_status_t
miscache_queue_dead(miscache_t *mc, const char *name, size_t max,
                    miscache_queue_msg_t *out, char **errors, size_t *got);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_QUEUE_H */

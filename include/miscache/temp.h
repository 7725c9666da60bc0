/*
 * libmiscache — job status in db "temp":
 *   temp:excel_upload:{id}  typed upload progress, TTL class excel_upload (1 h)
 *   temp:report:{id}        report result (JSON), TTL class temp_data (30 min)
 * Ids are strings (a UUID, say), encoded as key ids.
 * Thread rule: one thread at a time per handle. Progress updates read,
 * modify and write: one writer per upload.
 */
#ifndef MISCACHE_TEMP_H
#define MISCACHE_TEMP_H

#include <stdint.h>

#include <jansson.h>

#include "client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Upload progress; strings owned, clear with miscache_temp_upload_clear(). */
typedef struct miscache_upload {
  char *status; /* "processing", "completed", "failed" */
  int64_t total_rows;
  int64_t processed_rows;
  int64_t error_count;
  char *start_time; /* ISO-8601 UTC */
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_temp_upload_t;
typedef miscache_temp_upload_t miscache_upload_t; /* its name before 0.4 */

/* New upload: status processing, 0 processed, start_time now, TTL 1 h. */
MISCACHE_EXPORT miscache_status_t
miscache_temp_upload_create(miscache_t *mc, const char *id, int64_t total_rows);
/* Add to processed_rows and error_count; the TTL starts again. MISS if the
 * upload is unknown (expired). */
MISCACHE_EXPORT miscache_status_t
miscache_temp_upload_advance(miscache_t *mc, const char *id, int64_t processed,
                             int64_t errors);
/* Set the final status ("completed" or "failed"; any non-empty string). */
MISCACHE_EXPORT miscache_status_t
miscache_temp_upload_finish(miscache_t *mc, const char *id, const char *status);
MISCACHE_EXPORT miscache_status_t
miscache_temp_upload_get(miscache_t *mc, const char *id,
                         miscache_temp_upload_t *out);
MISCACHE_EXPORT void miscache_temp_upload_clear(miscache_temp_upload_t *u);

/* Report result (e.g. {status, file_path, download_url}). */
MISCACHE_EXPORT miscache_status_t
miscache_temp_report_set(miscache_t *mc, const char *id, const json_t *result);
MISCACHE_EXPORT miscache_status_t
miscache_temp_report_get(miscache_t *mc, const char *id, json_t **out);

/* The names before 0.4, kept: the same functions. */
MISCACHE_EXPORT miscache_status_t
miscache_upload_create(miscache_t *mc, const char *id, int64_t total_rows);
MISCACHE_EXPORT miscache_status_t miscache_upload_advance(miscache_t *mc,
                                                          const char *id,
                                                          int64_t processed,
                                                          int64_t errors);
MISCACHE_EXPORT miscache_status_t
miscache_upload_finish(miscache_t *mc, const char *id, const char *status);
MISCACHE_EXPORT miscache_status_t
miscache_upload_get(miscache_t *mc, const char *id, miscache_upload_t *out);
MISCACHE_EXPORT void miscache_upload_clear(miscache_upload_t *u);
MISCACHE_EXPORT miscache_status_t
miscache_report_set(miscache_t *mc, const char *id, const json_t *result);
MISCACHE_EXPORT miscache_status_t miscache_report_get(miscache_t *mc,
                                                      const char *id,
                                                      json_t **out);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_TEMP_H */

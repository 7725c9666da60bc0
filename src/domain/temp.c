/* Job status in db temp: excel upload progress (typed), report results. */
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

static const miscache__field_t upload_fields[] = {
    MISCACHE__FIELD_REQ(miscache_temp_upload_t, status, MISCACHE__F_STRING),
    MISCACHE__FIELD(miscache_temp_upload_t, total_rows, MISCACHE__F_INT),
    MISCACHE__FIELD(miscache_temp_upload_t, processed_rows, MISCACHE__F_INT),
    MISCACHE__FIELD(miscache_temp_upload_t, error_count, MISCACHE__F_INT),
    MISCACHE__FIELD(miscache_temp_upload_t, start_time, MISCACHE__F_STRING),
};
const miscache__payload_t miscache__upload_payload =
    MISCACHE__PAYLOAD("excel upload", miscache_temp_upload_t, upload_fields);

void miscache_temp_upload_clear(miscache_temp_upload_t *u) {
  if (u) miscache__payload_clear(&miscache__upload_payload, u);
}

static miscache_status_t id_key(miscache_t *mc, char *key,
                                miscache_key_family_id_t f, const char *id) {
  return miscache__kf_key(mc, f, key, id);
}

static miscache_status_t upload_put(miscache_t *mc, const char *key,
                                    const miscache_temp_upload_t *u) {
  return miscache__typed_set(mc, miscache__kf_db(MISCACHE_KF_EXCEL_UPLOAD), key,
                             &miscache__upload_payload, u,
                             miscache__kf_ttl_ms(mc, MISCACHE_KF_EXCEL_UPLOAD));
}

miscache_status_t miscache_temp_upload_create(miscache_t *mc, const char *id,
                                         int64_t total_rows) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = id_key(mc, key, MISCACHE_KF_EXCEL_UPLOAD, id);
  if (st != MISCACHE_OK) return st;
  char now[32];
  miscache__iso8601_now(now, sizeof now);
  miscache_temp_upload_t u = {.status = "processing",
                         .total_rows = total_rows,
                         .start_time = now};
  return upload_put(mc, key, &u);
}

miscache_status_t miscache_temp_upload_get(miscache_t *mc, const char *id,
                                      miscache_temp_upload_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "upload out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = id_key(mc, key, MISCACHE_KF_EXCEL_UPLOAD, id);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_get(mc, miscache__kf_db(MISCACHE_KF_EXCEL_UPLOAD), key,
                             &miscache__upload_payload, out);
}

typedef struct {
  int64_t processed, errors;
  const char *status;
} upload_change_t;

/* obj[name] += by, refusing a result that does not fit in int64. */
static miscache_status_t add_checked(miscache_t *mc, json_t *obj,
                                     const char *name, int64_t by) {
  if (by == 0) return MISCACHE_OK;
  int64_t cur = json_integer_value(json_object_get(obj, name)), sum;
  if (__builtin_add_overflow(cur, by, &sum)) {
    miscache__set_err(mc, "upload %s %lld + %lld overflows; not updated", name,
                      (long long)cur, (long long)by);
    return MISCACHE_ERR_INVALID;
  }
  return miscache__json_set_int(obj, name, sum);
}

static miscache_status_t change_upload(miscache_t *mc, void *ud, json_t *obj) {
  const upload_change_t *c = ud;
  miscache_status_t st = add_checked(mc, obj, "processed_rows", c->processed);
  if (st == MISCACHE_OK) st = add_checked(mc, obj, "error_count", c->errors);
  if (st == MISCACHE_OK && c->status)
    st = miscache__json_set_str(obj, "status", c->status);
  return st;
}

/* Change the stored upload in place (every other member kept), with a
 * fresh TTL; safe against concurrent writers. */
static miscache_status_t upload_update(miscache_t *mc, const char *id,
                                       int64_t processed, int64_t errors,
                                       const char *status) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = id_key(mc, key, MISCACHE_KF_EXCEL_UPLOAD, id);
  if (st != MISCACHE_OK) return st;
  upload_change_t c = {processed, errors, status};
  return miscache__typed_update(
      mc, miscache__kf_db(MISCACHE_KF_EXCEL_UPLOAD), key,
      &miscache__upload_payload,
      miscache__kf_ttl_ms(mc, MISCACHE_KF_EXCEL_UPLOAD), change_upload, &c);
}

miscache_status_t miscache_temp_upload_advance(miscache_t *mc, const char *id,
                                          int64_t processed, int64_t errors) {
  return upload_update(mc, id, processed, errors, NULL);
}

miscache_status_t miscache_temp_upload_finish(miscache_t *mc, const char *id,
                                         const char *status) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!status || !status[0]) {
    miscache__set_err(mc, "upload status is NULL or empty");
    return MISCACHE_ERR_INVALID;
  }
  return upload_update(mc, id, 0, 0, status);
}

miscache_status_t miscache_temp_report_set(miscache_t *mc, const char *id,
                                      const json_t *result) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = id_key(mc, key, MISCACHE_KF_REPORT, id);
  if (st != MISCACHE_OK) return st;
  return miscache_set_ttl_ms(mc, miscache__kf_db(MISCACHE_KF_REPORT), key,
                             result, miscache__kf_ttl_ms(mc, MISCACHE_KF_REPORT));
}

miscache_status_t miscache_temp_report_get(miscache_t *mc, const char *id,
                                      json_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = id_key(mc, key, MISCACHE_KF_REPORT, id);
  if (st != MISCACHE_OK) return st;
  return miscache_get(mc, miscache__kf_db(MISCACHE_KF_REPORT), key, out);
}

/* ---- the names before 0.4, kept for the programs that use them --------- */

miscache_status_t miscache_upload_create(miscache_t *mc, const char *id,
                                         int64_t total_rows) {
  return miscache_temp_upload_create(mc, id, total_rows);
}

miscache_status_t miscache_upload_advance(miscache_t *mc, const char *id,
                                          int64_t processed, int64_t errors) {
  return miscache_temp_upload_advance(mc, id, processed, errors);
}

miscache_status_t miscache_upload_finish(miscache_t *mc, const char *id,
                                         const char *status) {
  return miscache_temp_upload_finish(mc, id, status);
}

miscache_status_t miscache_upload_get(miscache_t *mc, const char *id,
                                      miscache_upload_t *out) {
  return miscache_temp_upload_get(mc, id, out);
}

void miscache_upload_clear(miscache_upload_t *u) {
  miscache_temp_upload_clear(u);
}

miscache_status_t miscache_report_set(miscache_t *mc, const char *id,
                                      const json_t *result) {
  return miscache_temp_report_set(mc, id, result);
}

miscache_status_t miscache_report_get(miscache_t *mc, const char *id,
                                      json_t **out) {
  return miscache_temp_report_get(mc, id, out);
}

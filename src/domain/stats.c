/* Statistics: daily sales (typed), monthly revenue, serial counters. */
#include <string.h>

#include "domain/domain.h"

static const miscache__field_t gift_stats_fields[] = {
    MISCACHE__FIELD(miscache_stats_gift_t, gift_order_count, MISCACHE__F_INT),
    MISCACHE__FIELD(miscache_stats_gift_t, gift_attachment_rate,
                    MISCACHE__F_DOUBLE),
    MISCACHE__FIELD(miscache_stats_gift_t, total_gift_cost, MISCACHE__F_DOUBLE),
};
static const miscache__payload_t gift_stats_payload =
    MISCACHE__PAYLOAD_NESTED("gift_stats", gift_stats_fields);
static const miscache__field_t daily_fields[] = {
    MISCACHE__FIELD(miscache_daily_sales_t, total_amount, MISCACHE__F_DOUBLE),
    MISCACHE__FIELD(miscache_daily_sales_t, order_count, MISCACHE__F_INT),
    MISCACHE__FIELD(miscache_daily_sales_t, brand_stats, MISCACHE__F_JSON),
    MISCACHE__FIELD(miscache_daily_sales_t, channel_stats, MISCACHE__F_JSON),
    MISCACHE__FIELD_OBJ(miscache_daily_sales_t, gift_stats, gift_stats_payload),
};
const miscache__payload_t miscache__daily_sales_payload =
    MISCACHE__PAYLOAD("daily sales", miscache_daily_sales_t, daily_fields);

void miscache_stats_daily_sales_clear(miscache_daily_sales_t *s) {
  if (s) miscache__payload_clear(&miscache__daily_sales_payload, s);
}

/* key for a dated stats entry, after checking the date */
static miscache_status_t dated_key(miscache_t *mc, char *key,
                                   miscache_key_family_id_t f,
                                   const char *date, size_t digits) {
  miscache_status_t st = miscache__check_date(mc, date, digits);
  return st == MISCACHE_OK ? miscache__kf_key(mc, f, key, date) : st;
}

miscache_status_t miscache_stats_daily_sales_set(miscache_t *mc,
                                                 const char *yyyymmdd,
                                                 const miscache_daily_sales_t *s) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!s) {
    miscache__set_err(mc, "daily sales value is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = dated_key(mc, key, MISCACHE_KF_DAILY_SALES, yyyymmdd, 8);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_set(mc, miscache__kf_db(MISCACHE_KF_DAILY_SALES), key,
                             &miscache__daily_sales_payload, s,
                             miscache__kf_ttl_ms(mc, MISCACHE_KF_DAILY_SALES));
}

miscache_status_t miscache_stats_daily_sales_get(miscache_t *mc,
                                                 const char *yyyymmdd,
                                                 miscache_daily_sales_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "daily sales out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = dated_key(mc, key, MISCACHE_KF_DAILY_SALES, yyyymmdd, 8);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_get(mc, miscache__kf_db(MISCACHE_KF_DAILY_SALES), key,
                             &miscache__daily_sales_payload, out);
}

miscache_status_t miscache_stats_monthly_revenue_set(miscache_t *mc,
                                                     const char *yyyymm,
                                                     const json_t *value) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = dated_key(mc, key, MISCACHE_KF_MONTHLY_REVENUE, yyyymm, 6);
  if (st != MISCACHE_OK) return st;
  return miscache_set_ttl_ms(mc, miscache__kf_db(MISCACHE_KF_MONTHLY_REVENUE),
                             key, value,
                             miscache__kf_ttl_ms(mc, MISCACHE_KF_MONTHLY_REVENUE));
}

miscache_status_t miscache_stats_monthly_revenue_get(miscache_t *mc,
                                                     const char *yyyymm,
                                                     json_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = dated_key(mc, key, MISCACHE_KF_MONTHLY_REVENUE, yyyymm, 6);
  if (st != MISCACHE_OK) return st;
  return miscache_get(mc, miscache__kf_db(MISCACHE_KF_MONTHLY_REVENUE), key,
                      out);
}

static miscache_status_t serial_key(miscache_t *mc, char *key,
                                    const char *brand, const char *date) {
  miscache_status_t st = miscache__check_date(mc, date, 8);
  if (st != MISCACHE_OK) return st;
  if (!brand) {
    miscache__set_err(mc, "brand is NULL");
    return MISCACHE_ERR_INVALID;
  }
  return miscache__kf_key(mc, MISCACHE_KF_SERIAL_COUNT, key, brand, date);
}

miscache_status_t miscache_stats_serial_incr(miscache_t *mc, const char *brand,
                                             const char *yyyymmdd, int64_t by,
                                             int64_t *value) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = serial_key(mc, key, brand, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  miscache__fullkey_t fk;
  if ((st = miscache__fullkey(mc, key, &fk)) != MISCACHE_OK) return st;
  char by_s[24], ttl_s[24];
  size_t by_n = (size_t)snprintf(by_s, sizeof by_s, "%lld", (long long)by);
  size_t ttl_n = (size_t)snprintf(
      ttl_s, sizeof ttl_s, "%lld",
      (long long)miscache__kf_ttl_ms(mc, MISCACHE_KF_SERIAL_COUNT));
  const char *incr[3] = {"INCRBY", fk.ptr, by_s};
  size_t incr_l[3] = {6, fk.len, by_n};
  /* PEXPIRE ... NX (Redis 7): only the first increment sets the TTL. Both
   * go in one write; INCRBY is not resent after a lost reply. */
  const char *exp[4] = {"PEXPIRE", fk.ptr, ttl_s, "NX"};
  size_t exp_l[4] = {7, fk.len, ttl_n, 2};
  miscache__cmd_t cmds[2] = {{3, incr, incr_l}, {4, exp, exp_l}};
  miscache__reply_t *r[2] = {NULL, NULL};
  st = miscache__run(mc, miscache__kf_db(MISCACHE_KF_SERIAL_COUNT), 2, cmds, r, 0);
  if (st != MISCACHE_OK) {
    miscache__count(mc, miscache__kf_db(MISCACHE_KF_SERIAL_COUNT), key, MISCACHE__ERROR);
  } else if (miscache__reply_type(r[0]) != MISCACHE__R_INTEGER) {
    st = miscache__unexpected(mc, miscache__kf_db(MISCACHE_KF_SERIAL_COUNT), key, r[0],
                              "INCRBY serial");
  } else if (miscache__reply_type(r[1]) != MISCACHE__R_INTEGER) {
    st = miscache__unexpected(mc, miscache__kf_db(MISCACHE_KF_SERIAL_COUNT), key, r[1],
                              "EXPIRE serial");
  } else if (value) {
    *value = miscache__reply_int(r[0]);
  }
  miscache__reply_free(r[0]);
  miscache__reply_free(r[1]);
  miscache__fullkey_done(&fk);
  return st;
}

miscache_status_t miscache_stats_serial_get(miscache_t *mc, const char *brand,
                                            const char *yyyymmdd,
                                            int64_t *value) {
  if (value) *value = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!value) {
    miscache__set_err(mc, "serial value out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = serial_key(mc, key, brand, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  json_t *v = NULL;
  st = miscache_get(mc, miscache__kf_db(MISCACHE_KF_SERIAL_COUNT), key, &v);
  if (st == MISCACHE_OK && !json_is_integer(v)) {
    miscache__hit_unusable(mc, miscache__kf_db(MISCACHE_KF_SERIAL_COUNT), key);
    miscache__set_err(mc, "value of %s is not an integer", key);
    st = MISCACHE_ERR_DECODE;
  } else if (st == MISCACHE_OK) {
    *value = json_integer_value(v);
  }
  json_decref(v);
  return st;
}

/* Its name before 0.4, kept for the programs that use it. */
void miscache_daily_sales_clear(miscache_daily_sales_t *s) {
  miscache_stats_daily_sales_clear(s);
}

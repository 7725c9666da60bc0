/* Typed get/set: the codec of payload.c on top of the generic operations. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "payload.h"

miscache_status_t miscache__key_int(miscache_t *mc, char *buf, size_t size,
                                    const char *prefix, int64_t id) {
  char num[24];
  snprintf(num, sizeof num, "%" PRId64, id);
  miscache_status_t st = miscache_key(buf, size, prefix, num, NULL);
  if (st != MISCACHE_OK) miscache__set_err(mc, "bad key %s:%s", prefix, num);
  return st;
}

miscache_status_t miscache__typed_get(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d,
                                      void *out) {
  json_t *v = NULL;
  miscache_status_t st = miscache_get(mc, db, key, &v);
  if (st != MISCACHE_OK) return st;
  char why[256] = "";
  st = miscache__payload_decode(d, v, out, why, sizeof why);
  json_decref(v);
  if (st == MISCACHE_ERR_DECODE) {
    /* the read was counted as a hit; a value we cannot use is a miss */
    miscache__hit_unusable(mc, db);
  }
  if (st != MISCACHE_OK) miscache__set_err(mc, "value of %s: %s", key, why);
  return st;
}

miscache_status_t miscache__typed_set(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d,
                                      const void *in, int64_t ttl_ms) {
  char why[256] = "";
  json_t *v = miscache__payload_encode(d, in, why, sizeof why);
  if (!v) {
    miscache__set_err(mc, "%s: %s", key, why);
    return MISCACHE_ERR_ENCODE;
  }
  miscache_status_t st = miscache_set_ttl_ms(mc, db, key, v, ttl_ms);
  json_decref(v);
  return st;
}

miscache_status_t miscache__check_date(miscache_t *mc, const char *s,
                                       size_t digits) {
  bool ok = s && strlen(s) == digits;
  for (size_t i = 0; ok && i < digits; i++) ok = s[i] >= '0' && s[i] <= '9';
  if (ok) {
    int month = (s[4] - '0') * 10 + (s[5] - '0');
    ok = month >= 1 && month <= 12;
    if (ok && digits == 8) {
      int day = (s[6] - '0') * 10 + (s[7] - '0');
      ok = day >= 1 && day <= 31;
    }
  }
  if (!ok) {
    miscache__set_err(mc, "date \"%.32s\" is not %s", s ? s : "(null)",
                      digits == 8 ? "YYYYMMDD" : "YYYYMM");
    return s ? MISCACHE_ERR_KEY : MISCACHE_ERR_INVALID;
  }
  return MISCACHE_OK;
}

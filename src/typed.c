/* Typed get/set: the codec of payload.c on top of the generic operations. */
#include <inttypes.h>
#include <stdlib.h>
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

miscache_status_t miscache__key_company_date(miscache_t *mc, char *buf,
                                             size_t size, const char *prefix,
                                             int64_t company,
                                             const char *date) {
  miscache_status_t st = miscache__check_date(mc, date, 8);
  if (st != MISCACHE_OK) return st;
  char num[24];
  snprintf(num, sizeof num, "%" PRId64, company);
  return miscache_key(buf, size, prefix, num, date, NULL);
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
    miscache__hit_unusable(mc, db, key);
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

typedef struct {
  miscache__typed_loader_fn loader;
  void *userdata;
  const miscache__payload_t *d;
  size_t size;
} typed_loader_t;

/* Runs the typed loader and hands get_or_load its value as JSON. */
static miscache_status_t load_typed_json(void *ud, const char *key,
                                         json_t **out) {
  (void)key;
  typed_loader_t *tl = ud;
  void *tmp = calloc(1, tl->size);
  if (!tmp) return MISCACHE_ERR_NOMEM;
  miscache_status_t st = tl->loader(tl->userdata, tmp);
  if (st == MISCACHE_OK) {
    char why[256];
    *out = miscache__payload_encode(tl->d, tmp, why, sizeof why);
    if (!*out) st = MISCACHE_ERR_ENCODE;
  }
  miscache__payload_clear(tl->d, tmp);
  free(tmp);
  return st;
}

typedef struct {
  const miscache__payload_t *d;
  void *out;
} typed_accept_t;

/* Accepts a value that decodes into the caller's struct (and keeps it). */
static miscache_status_t accept_typed(void *ud, json_t *v, char *why,
                                      size_t whylen) {
  typed_accept_t *ta = ud;
  miscache__payload_clear(ta->d, ta->out);
  return miscache__payload_decode(ta->d, v, ta->out, why, whylen);
}

miscache_status_t miscache__typed_get_or_load(
    miscache_t *mc, miscache_db_t db, const char *key,
    const miscache__payload_t *d, size_t size, miscache_ttl_class_t cls,
    miscache__typed_loader_fn loader, void *userdata, void *out,
    miscache_source_t *source) {
  typed_loader_t tl = {loader, userdata, d, size};
  typed_accept_t ta = {d, out};
  json_t *v = NULL;
  miscache_status_t st = miscache__cache_aside(
      mc, db, key, miscache__ttl_ms(mc, cls), load_typed_json, &tl,
      accept_typed, &ta, &v, source);
  json_decref(v);
  return st;
}

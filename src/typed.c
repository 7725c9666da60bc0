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
    mc->counters[db].hits--;
    mc->counters[db].misses++;
    mc->counters[db].errors++;
  }
  if (st != MISCACHE_OK) miscache__set_err(mc, "value of %s: %s", key, why);
  return st;
}

miscache_status_t miscache__typed_set(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d,
                                      const void *in,
                                      miscache_ttl_class_t cls) {
  char why[256] = "";
  json_t *v = miscache__payload_encode(d, in, why, sizeof why);
  if (!v) {
    miscache__set_err(mc, "%s: %s", key, why);
    return MISCACHE_ERR_ENCODE;
  }
  miscache_status_t st = miscache_set(mc, db, key, v, cls);
  json_decref(v);
  return st;
}

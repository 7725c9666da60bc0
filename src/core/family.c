/* Keys of the keyspace table (base/keyspace.c) on a handle: its hash-tag
 * option, its TTL jitter and its error message. */
#include <stdarg.h>
#include <stdio.h>

#include "core/core.h"

int64_t miscache__kf_ttl_ms(miscache_t *mc, miscache_key_family_id_t f) {
  return miscache__ttl_ms(mc, miscache__kf_class(f));
}

miscache_status_t miscache__kf_build(miscache_t *mc, miscache_key_family_id_t f,
                                     char *buf, bool pattern,
                                     const char *const ids[]) {
  return miscache__family_key(f, buf, pattern, ids, mc && mc->opts.hash_tags,
                              mc ? mc->err : NULL, mc ? sizeof mc->err : 0);
}

miscache_status_t miscache__kf_key(miscache_t *mc, miscache_key_family_id_t f,
                                   char *buf, ...) {
  const miscache_key_family_t *k = miscache_key_family(f);
  const char *ids[4] = {NULL, NULL, NULL, NULL};
  va_list ap;
  va_start(ap, buf);
  for (size_t i = 0; i < k->nids && i < 4; i++)
    ids[i] = va_arg(ap, const char *);
  va_end(ap);
  for (size_t i = 0; i < k->nids; i++)
    if (!ids[i]) {
      if (mc) miscache__set_err(mc, "%s: %s is NULL", k->prefix, k->ids);
      return MISCACHE_ERR_INVALID;
    }
  return miscache__kf_build(mc, f, buf, false, ids);
}

miscache_status_t miscache__kf_key_int(miscache_t *mc,
                                       miscache_key_family_id_t f, char *buf,
                                       int64_t id) {
  char num[24];
  snprintf(num, sizeof num, "%lld", (long long)id);
  return miscache__kf_key(mc, f, buf, num);
}

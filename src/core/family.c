/* Keys of the keyspace table (base/keyspace.c) on a handle: its hash-tag
 * option, its TTL jitter and its error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

int64_t miscache__kf_ttl_ms(miscache_t *mc, miscache_key_family_id_t f) {
  return miscache__ttl_ms(mc, miscache__kf_class(f));
}

miscache_status_t miscache__kf_build(miscache_t *mc, miscache_key_family_id_t f,
                                     char *buf, bool pattern,
                                     const char *const ids[]) {
  const miscache_key_family_t *k = &miscache__families[f];
  miscache_status_t st =
      pattern ? miscache_pattern_build(buf, MISCACHE_KEY_BUFSIZE, k->prefix,
                                       k->nids, ids, NULL)
              : miscache_key_build(buf, MISCACHE_KEY_BUFSIZE, k->prefix,
                                   k->nids, ids, NULL);
  if (st == MISCACHE_OK && mc && mc->opts.hash_tags)
    st = miscache__family_hash_tag(k, buf);
  if (st != MISCACHE_OK && mc) {
    char shown[80] = "";
    for (size_t i = 0; i < k->nids; i++)
      snprintf(shown + strlen(shown), sizeof shown - strlen(shown), ":%.30s",
               ids[i] ? ids[i] : "*");
    miscache__set_err(mc, "bad key %s%s (%s: an id is empty or too long)",
                      k->prefix, shown, k->ids);
  }
  return st;
}

miscache_status_t miscache__kf_key(miscache_t *mc, miscache_key_family_id_t f,
                                   char *buf, ...) {
  const miscache_key_family_t *k = &miscache__families[f];
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

/* id in decimal, ending at end (exclusive); returns where it starts. */
static char *put_int(char *end, int64_t id) {
  char *p = end;
  uint64_t u = id < 0 ? 0 - (uint64_t)id : (uint64_t)id;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (id < 0) *--p = '-';
  return p;
}

/* fk = family f's head (core.h), copied whole: the slot's 64 bytes in one
 * fixed-size move (a call to memcpy for its length cost more); the caller
 * writes what follows it and ends the key. */
static inline size_t put_head(miscache_t *mc, miscache_key_family_id_t f,
                              miscache__fullkey_t *fk) {
  _Static_assert(sizeof fk->buf >= sizeof mc->kf_head[0] + 24,
                 "a head and an id fit a full key's buffer");
  memcpy(fk->buf, mc->kf_head[f], sizeof mc->kf_head[f]);
  fk->ptr = fk->buf;
  fk->heap = NULL;
  return mc->kf_head_len[f];
}

bool miscache__fullkey_int(miscache_t *mc, miscache_key_family_id_t f,
                           int64_t id, miscache__fullkey_t *fk) {
  if (!mc->kf_head_len[f] || miscache__families[f].nids != 1) return false;
  char *d = fk->buf + put_head(mc, f, fk);
  uint64_t u = id < 0 ? 0 - (uint64_t)id : (uint64_t)id;
  size_t nd = 1;
  for (uint64_t t = u; t >= 10; t /= 10)
    nd++;
  if (id < 0) *d++ = '-';
  char *end = d + nd;
  *end = '\0';
  do { /* the digits, from the last */
    *--end = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  fk->len = (size_t)(d + nd - fk->buf);
  return true;
}

bool miscache__fullkey_fixed(miscache_t *mc, miscache_key_family_id_t f,
                             miscache__fullkey_t *fk) {
  if (!mc->kf_head_len[f] || miscache__families[f].nids != 0) return false;
  fk->len = put_head(mc, f, fk);
  fk->buf[fk->len] = '\0';
  return true;
}

miscache_status_t miscache__kf_key_int(miscache_t *mc,
                                       miscache_key_family_id_t f, char *buf,
                                       int64_t id) {
  /* by hand: snprintf cost ~700 instructions of a ~4,500 near hit */
  char num[24];
  num[sizeof num - 1] = '\0';
  char *p = put_int(num + sizeof num - 1, id);
  const miscache_key_family_t *k = &miscache__families[f];
  size_t plen = miscache__family_prefix_len[f];
  size_t nlen = (size_t)(num + sizeof num - 1 - p);
  if (k->nids != 1 || plen + 1 + nlen >= MISCACHE_KEY_BUFSIZE)
    return miscache__kf_key(mc, f, buf, p); /* (refuses what does not fit) */
  /* "prefix:digits": digits and '-' need no encoding (as miscache_key_build
   * would give them) */
  memcpy(buf, k->prefix, plen);
  buf[plen] = ':';
  memcpy(buf + plen + 1, p, nlen + 1);
  if (mc && mc->opts.hash_tags) return miscache__family_hash_tag(k, buf);
  return MISCACHE_OK;
}

/* The i-th space-separated name of a family's ids, and its length. */
static const char *id_name(const miscache_key_family_t *k, size_t i,
                           size_t *n) {
  const char *p = k->ids;
  for (; i > 0 && p; i--) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (!p) p = "";
  *n = strcspn(p, " ");
  return p;
}

miscache_status_t miscache_family_key(miscache_t *mc,
                                      miscache_key_family_id_t f,
                                      const char *const ids[], char *buf,
                                      size_t size, size_t *len_out) {
  if (len_out) *len_out = 0;
  if (buf && size) buf[0] = 0;
  const miscache_key_family_t *k = miscache_key_family(f);
  if (!k || !buf || !size || (k->nids && !ids)) return MISCACHE_ERR_INVALID;
  char canon[4][24];
  const char *use[4] = {NULL, NULL, NULL, NULL};
  for (size_t i = 0; i < k->nids && i < 4; i++) {
    size_t n;
    const char *name = id_name(k, i, &n);
    const char *kind = miscache__id_kind(name, n);
    int64_t v;
    bool ok = ids[i] != NULL;
    if (ok && !strcmp(kind, "integer")) {
      ok = miscache__parse_i64(ids[i], &v);
      if (ok) snprintf(canon[i], sizeof canon[i], "%lld", (long long)v);
      use[i] = canon[i];
    } else {
      if (ok && (!strcmp(kind, "date") || !strcmp(kind, "month")))
        ok = miscache__date_ok(ids[i], kind[0] == 'd' ? 8 : 6);
      use[i] = ids[i];
    }
    if (!ok) {
      if (mc)
        miscache__set_err(mc, "%s: %.*s \"%.40s\" is not %s", k->name, (int)n,
                          name, ids[i] ? ids[i] : "(null)",
                          !strcmp(kind, "integer") ? "a whole number"
                          : !strcmp(kind, "date")  ? "a date YYYYMMDD"
                          : !strcmp(kind, "month") ? "a month YYYYMM"
                                                   : "given");
      return ids[i] ? MISCACHE_ERR_KEY : MISCACHE_ERR_INVALID;
    }
  }
  char logical[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__kf_build(mc, f, logical, false, use);
  if (st != MISCACHE_OK) return st;
  const char *ns = mc ? mc->opts.ns : "";
  size_t len = strlen(ns) + strlen(logical);
  if (len >= size) {
    if (mc) miscache__set_err(mc, "%s: the key needs %zu bytes", k->name, len + 1);
    return MISCACHE_ERR_KEY;
  }
  snprintf(buf, size, "%s%s", ns, logical);
  if (len_out) *len_out = len;
  return MISCACHE_OK;
}

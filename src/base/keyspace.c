/* The keyspace table: the one description of every key family. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

#define F(id, nm, pfx, n, idn, dbn, ttl, pl)                                   \
  [MISCACHE_KF_##id] = {.name = nm,                                            \
                        .prefix = pfx,                                         \
                        .nids = n,                                             \
                        .ids = idn,                                            \
                        .db = MISCACHE_DB_##dbn,                               \
                        .ttl_class = ttl,                                      \
                        .payload = pl}
#define TTL(c) MISCACHE_TTL_##c
/* Every family, as F(id, name, prefix, nids, ids, db, ttl, payload). */
#define FAMILIES(F)                                                            \
  F(SESSION, "session", "session:user", 1, "USER_ID", SESSION, TTL(SESSION),   \
    "session"),                                                                \
      F(PERMISSIONS, "permissions", "permissions:user", 1, "USER_ID", CACHE,   \
        TTL(PERMISSIONS), "permissions map"),                                  \
      F(MASTER_DEPARTMENTS, "departments", "master:departments", 0, "", CACHE, \
        TTL(MASTER_DATA), "JSON array"),                                       \
      F(MASTER_BRANDS, "brands", "master:brands", 0, "", CACHE,                \
        TTL(MASTER_DATA), "JSON array"),                                       \
      F(MASTER_COMPANIES, "companies", "master:companies", 0, "", CACHE,       \
        TTL(MASTER_COMPANIES), "JSON array"),                                  \
      F(MASTER_PRODUCTS, "products", "master:products:category", 1,            \
        "CATEGORY", CACHE, TTL(MASTER_DATA), "JSON array"),                    \
      F(DAILY_SALES, "daily-sales", "stats:daily_sales", 1, "YYYYMMDD", CACHE, \
        TTL(STATISTICS), "daily sales"),                                       \
      F(MONTHLY_REVENUE, "monthly-revenue", "stats:monthly_revenue", 1,        \
        "YYYYMM", CACHE, TTL(STATISTICS), "JSON"),                             \
      F(SERIAL_COUNT, "serial", "stats:serial_count", 2, "BRAND YYYYMMDD",     \
        CACHE, TTL(SERIAL_COUNT), "integer"),                                  \
      F(EXCEL_UPLOAD, "upload", "temp:excel_upload", 1, "UPLOAD_ID", TEMP,     \
        TTL(EXCEL_UPLOAD), "excel upload"),                                    \
      F(REPORT, "report", "temp:report", 1, "REPORT_ID", TEMP, TTL(TEMP_DATA), \
        "JSON"),                                                               \
      F(BATCH_CONFIG, "batch-config", "batch:config", 1, "COMPANY", BATCH,     \
        TTL(BATCH_CONFIG), "batch config"),                                    \
      F(BATCH_STATUS, "batch-status", "batch:status", 1, "COMPANY", BATCH,     \
        TTL(BATCH_STATUS), "batch status"),                                    \
      F(BATCH_HISTORY, "batch-history", "batch:history", 2,                    \
        "COMPANY YYYYMMDD", BATCH, TTL(BATCH_HISTORY), "batch history"),       \
      F(BATCH_LOCK, "batch-lock", "batch:lock", 1, "COMPANY", BATCH,           \
        TTL(BATCH_LOCK), "lock"),                                              \
      F(BATCH_FENCE, "batch-fence", "batch:fence", 1, "COMPANY", BATCH, -1,    \
        "integer"),                                                            \
      F(GIFT_RULES, "gift-rules", "gift:rules", 1, "COMPANY", GIFT,            \
        TTL(GIFT_RULES), "gift rules"),                                        \
      F(GIFT_CLASSIFICATION, "gift-classification", "gift:classification", 2,  \
        "PRODUCT_CODE COMPANY", GIFT, TTL(GIFT_CLASSIFICATION),                \
        "gift classification"),                                                \
      F(GIFT_ANALYTICS, "gift-analytics", "gift:analytics", 2,                 \
        "COMPANY YYYYMMDD", GIFT, TTL(GIFT_ANALYTICS), "JSON"),                \
      F(GIFT_MASTER, "gift-master", "gift:master", 1, "COMPANY", GIFT,         \
        TTL(GIFT_MASTER), "gift master list"),                                 \
      F(LOCK_SERIAL, "serial-lock", "lock:serial_generation", 1, "BRAND",      \
        CACHE, TTL(LOCK), "lock"),                                             \
      F(LOCK_BATCH_PROCESS, "process-lock", "lock:batch_process", 1, "NAME",   \
        CACHE, TTL(LOCK), "lock"),                                             \
      F(LOCK_GIFT_CLASSIFICATION, "classification-lock",                       \
        "lock:gift_classification", 1, "COMPANY", CACHE, TTL(LOCK), "lock"),

const miscache_key_family_t miscache__families[MISCACHE_KEY_FAMILY_COUNT] = {
    FAMILIES(F)};

#define PREFIX_LEN(id, nm, pfx, ...) [MISCACHE_KF_##id] = sizeof(pfx) - 1
const size_t miscache__family_prefix_len[MISCACHE_KEY_FAMILY_COUNT] = {
    FAMILIES(PREFIX_LEN)};

const miscache_key_family_t *miscache_key_family(miscache_key_family_id_t id) {
  return (unsigned)id < MISCACHE_KEY_FAMILY_COUNT ? &miscache__families[id]
                                                  : NULL;
}

const miscache_key_family_t *miscache_key_family_by_name(const char *name) {
  for (int i = 0; name && i < MISCACHE_KEY_FAMILY_COUNT; i++)
    if (strcmp(miscache__families[i].name, name) == 0)
      return &miscache__families[i];
  return NULL;
}

miscache_db_t miscache__kf_db(miscache_key_family_id_t f) {
  return miscache__families[f].db;
}

miscache_ttl_class_t miscache__kf_class(miscache_key_family_id_t f) {
  return (miscache_ttl_class_t)miscache__families[f].ttl_class;
}

int miscache__family_company_index(const miscache_key_family_t *k) {
  const char *p = k->ids;
  for (int i = 0; i < (int)k->nids; i++) {
    if (strncmp(p, "COMPANY", 7) == 0 && (p[7] == ' ' || p[7] == 0)) return i;
    p = strchr(p, ' ');
    if (!p) break;
    p++;
  }
  return -1;
}

/* The last ':' in [buf, end), or NULL. */
static char *last_colon(char *buf, char *end) {
  while (end > buf)
    if (*--end == ':') return end;
  return NULL;
}

/* The hash-tagged key format: the company id of a company-scoped key is
 * written in braces ("batch:lock:{7}", "gift:classification:P-1:{7}"), so
 * all of one company's keys share a Redis Cluster slot. Ids are
 * percent-encoded and hold no ':', so the id is found by counting
 * segments from the end. */
miscache_status_t miscache__family_hash_tag(const miscache_key_family_t *k,
                                            char *buf) {
  int ci = miscache__family_company_index(k);
  if (ci < 0) return MISCACHE_OK;
  size_t len = strlen(buf);
  if (len + 2 >= MISCACHE_KEY_BUFSIZE) return MISCACHE_ERR_KEY;
  /* segment ci of the ids is followed by nids - 1 - ci more colons */
  char *end = buf + len;
  for (int after = (int)k->nids - 1 - ci; after > 0; after--) {
    end = last_colon(buf, end);
    if (!end) return MISCACHE_ERR_KEY;
  }
  char *start = last_colon(buf, end);
  if (!start) return MISCACHE_ERR_KEY;
  start++;
  memmove(end + 2, end, (size_t)(buf + len - end) + 1);
  memmove(start + 1, start, (size_t)(end - start));
  *start = '{';
  end[1] = '}';
  return MISCACHE_OK;
}

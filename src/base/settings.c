/* Deployment settings carried by the URL's query: one table names every
 * parameter, its range and the option field it fills; the URL parser
 * stores the values in the endpoint, miscache__options_apply lays them
 * under what the setters chose, and the describer prints the effective
 * settings. Pure; no I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

typedef enum {
  K_INT,  /* int field */
  K_UINT, /* unsigned field */
  K_SIZE, /* size_t field */
  K_I64,  /* int64_t field */
  K_BOOL, /* bool field: true, false, 1, 0 */
  K_NS,   /* the namespace (a string) */
  K_NEAR, /* near.enabled and near.families: on, off, or family names */
  K_CATS  /* uint32_t category bits: none, or category names */
} kind_t;

#define OFF(field) offsetof(miscache_options_t, field)
#define S(id, nm, k, lo_, hi_, field)                                          \
  [MISCACHE__SET_##id] = {nm, k, lo_, hi_, OFF(field)}

static const struct setting {
  const char *name;
  kind_t kind;
  int64_t lo, hi; /* inclusive; strings: length */
  size_t off;
} settings[MISCACHE__SET_COUNT] = {
    S(NAMESPACE, "namespace", K_NS, 0, MISCACHE__NS_MAX, ns),
    S(HASH_TAGS, "hash_tags", K_BOOL, 0, 1, hash_tags),
    S(CONNECT_TIMEOUT, "connect_timeout_ms", K_INT, 1, 3600000,
      connect_timeout_ms),
    S(COMMAND_TIMEOUT, "command_timeout_ms", K_INT, 1, 3600000,
      command_timeout_ms),
    S(DB_SESSION, "db_session", K_INT, 0, 1000000, db[MISCACHE_DB_SESSION]),
    S(DB_CACHE, "db_cache", K_INT, 0, 1000000, db[MISCACHE_DB_CACHE]),
    S(DB_TEMP, "db_temp", K_INT, 0, 1000000, db[MISCACHE_DB_TEMP]),
    S(DB_QUEUE, "db_queue", K_INT, 0, 1000000, db[MISCACHE_DB_QUEUE]),
    S(DB_BATCH, "db_batch", K_INT, 0, 1000000, db[MISCACHE_DB_BATCH]),
    S(DB_GIFT, "db_gift", K_INT, 0, 1000000, db[MISCACHE_DB_GIFT]),
    S(NEAR, "near", K_NEAR, 0, 0, near),
    S(NEAR_PING, "near_ping_ms", K_INT, 10, 60000, near.ping_ms),
    S(NEAR_MAX_ENTRIES, "near_max_entries", K_SIZE, 1, 100000000,
      near.max_entries),
    S(NEAR_MAX_BYTES, "near_max_bytes", K_SIZE, 1024, INT64_C(1) << 40,
      near.max_bytes),
    S(NEAR_COPY, "near_copy_values", K_BOOL, 0, 1, near.copy_values),
    S(BACKOFF_MIN, "backoff_min_ms", K_INT, 1, 600000, backoff_min_ms),
    S(BACKOFF_MAX, "backoff_max_ms", K_INT, 1, 600000, backoff_max_ms),
    S(SLOW_CALL, "slow_call_ms", K_INT, 0, 3600000, slow_call_ms),
    S(JITTER, "ttl_jitter_pct", K_UINT, 0, 50, jitter_pct),
    S(SCAN_COUNT, "scan_count", K_UINT, 1, 1000000, scan_count),
    S(UNLINK_BATCH, "unlink_batch", K_UINT, 1, 100000, unlink_batch),
    S(SCAN_TIMEOUT, "scan_timeout_ms", K_INT, 1, 3600000, scan_timeout_ms),
    S(PENDING_MAX, "pending_max", K_UINT, 1, 1000000, pending_max),
    S(LAZY, "lazy_connect", K_BOOL, 0, 1, lazy),
    S(MAX_ELEMENTS, "max_elements", K_SIZE, 1, INT64_C(1) << 31,
      limits.max_elements),
    S(MAX_BULK, "max_bulk", K_SIZE, 1024, INT64_C(1) << 32, limits.max_bulk),
    S(MAX_REPLY_BYTES, "max_reply_bytes", K_SIZE, 4096, INT64_C(1) << 34,
      limits.max_bytes),
    S(SINGLE_FLIGHT, "single_flight", K_BOOL, 0, 1, stampede.single_flight),
    S(STAMPEDE_WAIT, "stampede_wait_ms", K_INT, 0, 600000, stampede.wait_ms),
    S(LEASE, "lease", K_CATS, 0, 0, stampede.lease_categories),
    S(LEASE_MS, "lease_ms", K_INT, 1, 600000, stampede.lease_ms),
    S(EARLY, "early_refresh", K_CATS, 0, 0, stampede.early_categories),
    S(EARLY_MS, "early_ms", K_INT, 1, 600000, stampede.early_ms),
    S(TLS_INSECURE, "tls_insecure_skip_verify", K_BOOL, 0, 1,
      tls.insecure_skip_verify),
#define T(id, nm)                                                              \
  [MISCACHE__SET_TTL_SESSION + MISCACHE_TTL_##id] = {                          \
      "ttl_" nm, K_I64, 1, INT64_C(1) << 40, OFF(ttl[MISCACHE_TTL_##id])}
    T(SESSION, "session"),
    T(PERMISSIONS, "permissions"),
    T(MASTER_DATA, "master_data"),
    T(STATISTICS, "statistics"),
    T(TEMP_DATA, "temp_data"),
    T(LOCK, "lock"),
    T(BATCH_CONFIG, "batch_config"),
    T(BATCH_STATUS, "batch_status"),
    T(BATCH_HISTORY, "batch_history"),
    T(BATCH_LOCK, "batch_lock"),
    T(GIFT_RULES, "gift_rules"),
    T(GIFT_CLASSIFICATION, "gift_classification"),
    T(GIFT_ANALYTICS, "gift_analytics"),
    T(GIFT_MASTER, "gift_master"),
    T(MASTER_COMPANIES, "master_companies"),
    T(SERIAL_COUNT, "serial_count"),
    T(EXCEL_UPLOAD, "excel_upload"),
#undef T
};
#undef S
#undef OFF

_Static_assert(MISCACHE__SET_COUNT <= 64, "one bit per setting");

const char *miscache__setting_name(miscache__set_t s) {
  return (unsigned)s < MISCACHE__SET_COUNT ? settings[s].name : NULL;
}

bool miscache__setting_range(miscache__set_t s, int64_t *lo, int64_t *hi,
                             const char **kind) {
  static const char *const kinds[] = {"int",  "int",       "int",  "int",
                                      "bool", "namespace", "near", "categories"};
  if ((unsigned)s >= MISCACHE__SET_COUNT) return false;
  *lo = settings[s].lo;
  *hi = settings[s].hi;
  *kind = kinds[settings[s].kind];
  return true;
}

/* Whether [v, v+n) spells the literal. */
static bool is(const char *v, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(v, lit, n) == 0;
}

/* The comma-separated names in v, each looked up by name_bit (-1: not a
 * name); *bits their union. false with err set on an empty or unknown
 * name. */
static bool name_list(const char *v, const char *param,
                      int (*name_bit)(const char *, size_t), uint64_t *bits,
                      char *err, size_t errlen) {
  *bits = 0;
  for (const char *p = v;;) {
    size_t n = strcspn(p, ",");
    int b = n ? name_bit(p, n) : -1;
    if (b < 0) {
      snprintf(err, errlen, "URL parameter %s: \"%.*s\" is not a name it takes",
               param, (int)(n > 40 ? 40 : n), p);
      return false;
    }
    *bits |= UINT64_C(1) << b;
    if (!p[n]) return true;
    p += n + 1;
  }
}

static int family_bit(const char *p, size_t n) {
  for (int f = 0; f < MISCACHE_KEY_FAMILY_COUNT; f++)
    if (is(p, n, miscache__families[f].name) &&
        !((MISCACHE__NEAR_NEVER >> f) & 1))
      return f;
  return -1;
}

static int category_bit(const char *p, size_t n) {
  for (int c = 0; c < MISCACHE_CATEGORY_COUNT; c++)
    if (is(p, n, miscache_category_name((miscache_category_t)c))) return c;
  return -1;
}

/* Decimal v (no sign, no spaces) in [lo, hi]. */
static bool parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out) {
  int64_t x = 0;
  if (!*v) return false;
  for (const char *p = v; *p; p++) {
    if (*p < '0' || *p > '9') return false;
    x = x * 10 + (*p - '0');
    if (x > hi) return false;
  }
  if (x < lo) return false;
  *out = x;
  return true;
}

static bool parse_bool(const char *v, int64_t *out) {
  size_t n = strlen(v);
  if (is(v, n, "true") || is(v, n, "1")) *out = 1;
  else if (is(v, n, "false") || is(v, n, "0")) *out = 0;
  else return false;
  return true;
}

miscache_status_t miscache__setting_parse(const char *name, size_t nlen,
                                          const char *value,
                                          miscache__endpoint_t *e, char *err,
                                          size_t errlen) {
  int s = -1;
  for (int i = 0; i < MISCACHE__SET_COUNT; i++)
    if (is(name, nlen, settings[i].name)) s = i;
  if (s < 0) {
    snprintf(err, errlen,
             "unknown URL parameter \"%.*s\" (docs/configuration.md lists "
             "them all: namespace, hash_tags, connect_timeout_ms, db_cache, "
             "near, ..., cacert, sentinel_user...)",
             (int)(nlen > 64 ? 64 : nlen), name);
    return MISCACHE_ERR_URL;
  }
  const struct setting *t = &settings[s];
  if (e->set & (UINT64_C(1) << s)) {
    snprintf(err, errlen, "URL parameter \"%s\" given twice", t->name);
    return MISCACHE_ERR_URL;
  }
  if (s == MISCACHE__SET_TLS_INSECURE && !e->tls) {
    snprintf(err, errlen, "URL parameter \"%s\" needs a TLS scheme (rediss://)",
             t->name);
    return MISCACHE_ERR_URL;
  }
  int64_t v = 0;
  bool ok = true;
  uint64_t bits = 0;
  const char *want = "";
  switch (t->kind) {
  case K_NS:
    ok = miscache__ns_valid(value, strlen(value));
    want = "letters, digits and _-.: only, at most 64 bytes";
    if (ok) memcpy(e->ns, value, strlen(value) + 1);
    break;
  case K_BOOL:
    ok = parse_bool(value, &v);
    want = "true or false";
    break;
  case K_NEAR:
    if (!strcmp(value, "off")) v = 0;
    else if (!strcmp(value, "on")) v = MISCACHE__NEAR_ON;
    else if (name_list(value, t->name, family_bit, &bits, err, errlen))
      v = MISCACHE__NEAR_ON | (int64_t)bits;
    else
      return MISCACHE_ERR_URL;
    break;
  case K_CATS:
    if (!strcmp(value, "none")) v = 0;
    else if (name_list(value, t->name, category_bit, &bits, err, errlen))
      v = (int64_t)bits;
    else
      return MISCACHE_ERR_URL;
    break;
  default:
    ok = parse_int(value, t->lo, t->hi, &v);
    want = "a whole number in range";
    break;
  }
  if (!ok) {
    if (t->kind == K_BOOL || t->kind == K_NS)
      snprintf(err, errlen, "URL parameter %s=\"%.40s\": want %s", t->name,
               value, want);
    else
      snprintf(err, errlen,
               "URL parameter %s=\"%.40s\": want a whole number %lld..%lld",
               t->name, value, (long long)t->lo, (long long)t->hi);
    return MISCACHE_ERR_URL;
  }
  e->val[s] = v;
  e->set |= UINT64_C(1) << s;
  return MISCACHE_OK;
}

/* Write setting s's value v into o. */
static void put(miscache_options_t *o, int s, int64_t v,
                const miscache__endpoint_t *e) {
  char *f = (char *)o + settings[s].off;
  switch (settings[s].kind) {
  case K_INT: *(int *)(void *)f = (int)v; break;
  case K_UINT: *(unsigned *)(void *)f = (unsigned)v; break;
  case K_SIZE: *(size_t *)(void *)f = (size_t)v; break;
  case K_I64: *(int64_t *)(void *)f = v; break;
  case K_BOOL: *(bool *)f = v != 0; break;
  case K_NS: memcpy(o->ns, e->ns, sizeof o->ns); break;
  case K_NEAR:
    o->near.enabled = (v & MISCACHE__NEAR_ON) != 0;
    o->near.families = (uint64_t)v & ~(uint64_t)MISCACHE__NEAR_ON;
    break;
  case K_CATS: *(uint32_t *)(void *)f = (uint32_t)v; break;
  }
}

miscache_status_t miscache__options_apply(miscache_options_t *o,
                                          const miscache__endpoint_t *e,
                                          char *err, size_t errlen) {
  uint64_t take = e->set & ~o->set;
  for (int s = 0; s < MISCACHE__SET_COUNT; s++)
    if (take & (UINT64_C(1) << s)) put(o, s, e->val[s], e);
  /* what the near cache's setter fills in when given 0 */
  if (o->near.enabled) {
    if (!o->near.families) o->near.families = MISCACHE__NEAR_DEFAULT;
    if (!o->near.max_entries) o->near.max_entries = 10000;
    if (!o->near.max_bytes) o->near.max_bytes = (size_t)64 << 20;
    if (!o->near.ping_ms) o->near.ping_ms = 100;
  }
  const char *why = NULL;
  if (o->backoff_min_ms > o->backoff_max_ms)
    why = "backoff_min_ms is above backoff_max_ms";
  else if (o->limits.max_bytes < o->limits.max_bulk)
    why = "max_reply_bytes is below max_bulk";
  if (why) {
    snprintf(err, errlen, "settings (URL and setters together): %s", why);
    return MISCACHE_ERR_INVALID;
  }
  return MISCACHE_OK;
}

/* ---- describing ---------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t size, len; /* len: what the whole text needs */
} out_t;

#define add(o, ...) miscache__appendf((o)->buf, (o)->size, &(o)->len, __VA_ARGS__)

/* The names of the bits set in bits, comma-separated ("none_word" when
 * none). */
static void add_names(out_t *o, uint64_t bits, int count,
                      const char *(*name)(int), const char *none_word) {
  bool any = false;
  for (int i = 0; i < count; i++)
    if ((bits >> i) & 1) {
      add(o, "%s%s", any ? "," : "", name(i));
      any = true;
    }
  if (!any) add(o, "%s", none_word);
}

static const char *family_name(int f) { return miscache__families[f].name; }
static const char *category_name(int c) {
  return miscache_category_name((miscache_category_t)c);
}

static const char *const kind_names[] = {"redis", "unix", "redis+sentinel",
                                         "redis+cluster"};

static void add_endpoint(out_t *o, const miscache__endpoint_t *e) {
  const char *scheme = kind_names[e->kind];
  if (e->tls) scheme = e->kind == MISCACHE__EP_TCP ? "rediss"
                       : e->kind == MISCACHE__EP_SENTINEL ? "rediss+sentinel"
                                                         : "rediss+cluster";
  add(o, "scheme=%s\n", scheme);
  if (e->kind == MISCACHE__EP_UNIX) {
    add(o, "path=%s\n", e->path ? e->path : "");
  } else if (e->kind == MISCACHE__EP_TCP) {
    bool v6 = e->host && strchr(e->host, ':');
    add(o, "hosts=%s%s%s:%d\n", v6 ? "[" : "", e->host ? e->host : "",
        v6 ? "]" : "", e->port);
  } else {
    add(o, "hosts=");
    for (size_t i = 0; i < e->naddrs; i++) {
      bool v6 = strchr(e->addrs[i].host, ':') != NULL;
      add(o, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "", e->addrs[i].host,
          v6 ? "]" : "", e->addrs[i].port);
    }
    add(o, "\n");
  }
  if (e->kind == MISCACHE__EP_SENTINEL) add(o, "master=%s\n", e->master);
  add(o, "user=%s\n", e->user ? e->user : "");
  add(o, "password=%s\n", e->password ? "***" : "");
  if (e->kind == MISCACHE__EP_SENTINEL) {
    add(o, "sentinel_user=%s\n", e->sentinel_user ? e->sentinel_user : "");
    add(o, "sentinel_password=%s\n", e->sentinel_password ? "***" : "");
  }
  if (e->tls) {
    add(o, "cacert=%s\n", e->tls_conf.cacert ? e->tls_conf.cacert : "");
    add(o, "cert=%s\n", e->tls_conf.cert ? e->tls_conf.cert : "");
    add(o, "key=%s\n", e->tls_conf.key ? e->tls_conf.key : "");
  }
}

size_t miscache__options_describe(const miscache_options_t *o, char *buf,
                                  size_t size) {
  out_t out = {.buf = buf, .size = size};
  if (buf && size) buf[0] = 0;
  add_endpoint(&out, &o->ep);
  for (int s = 0; s < MISCACHE__SET_COUNT; s++) {
    const struct setting *t = &settings[s];
    if (s == MISCACHE__SET_TLS_INSECURE && !o->ep.tls) continue;
    const char *f = (const char *)o + t->off;
    add(&out, "%s=", t->name);
    switch (t->kind) {
    case K_INT: add(&out, "%d", *(const int *)(const void *)f); break;
    case K_UINT: add(&out, "%u", *(const unsigned *)(const void *)f); break;
    case K_SIZE: add(&out, "%zu", *(const size_t *)(const void *)f); break;
    case K_I64:
      add(&out, "%lld", (long long)*(const int64_t *)(const void *)f);
      break;
    case K_BOOL: add(&out, "%s", *(const bool *)f ? "true" : "false"); break;
    case K_NS: add(&out, "%s", o->ns); break;
    case K_NEAR:
      if (o->near.enabled)
        add_names(&out, o->near.families, MISCACHE_KEY_FAMILY_COUNT,
                  family_name, "on");
      else
        add(&out, "off");
      break;
    case K_CATS:
      add_names(&out, *(const uint32_t *)(const void *)f,
                MISCACHE_CATEGORY_COUNT, category_name, "none");
      break;
    }
    add(&out, "\n");
  }
  return out.len;
}

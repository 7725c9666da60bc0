/* Gift rules, master, the classification engine, classification through the
 * cache (single and bulk), and daily analytics. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

/* ---- payloads --------------------------------------------------------------- */

#define RUL(m, t) MISCACHE__FIELD(miscache_gift_rules_t, m, t)
static const miscache__field_t rules_fields[] = {
    RUL(auto_classify, MISCACHE__F_BOOL),
    RUL(zero_price_rule, MISCACHE__F_BOOL),
    RUL(keywords, MISCACHE__F_STRINGS),
    RUL(exclude_from_revenue, MISCACHE__F_BOOL),
    RUL(master_products, MISCACHE__F_STRINGS),
    RUL(last_updated, MISCACHE__F_STRING),
};
const miscache__payload_t miscache__gift_rules_payload =
    MISCACHE__PAYLOAD("gift rules", miscache_gift_rules_t, rules_fields);

#define MST(m, t) MISCACHE__FIELD(miscache_gift_master_entry_t, m, t)
static const miscache__field_t master_fields[] = {
    MISCACHE__FIELD_REQ(miscache_gift_master_entry_t, product_code,
                        MISCACHE__F_STRING),
    MST(product_name, MISCACHE__F_STRING),
    MST(brand_code, MISCACHE__F_STRING),
    MST(category, MISCACHE__F_STRING),
    MST(standard_cost, MISCACHE__F_DOUBLE),
    MST(is_active, MISCACHE__F_BOOL),
};
const miscache__payload_t miscache__gift_master_payload =
    MISCACHE__PAYLOAD("gift master entry", miscache_gift_master_entry_t, master_fields);

#define CLS(m, t) MISCACHE__FIELD(miscache_gift_classification_t, m, t)
static const miscache__field_t class_fields[] = {
    MISCACHE__FIELD_REQ(miscache_gift_classification_t, product_type,
                        MISCACHE__F_STRING),
    CLS(gift_type, MISCACHE__F_STRING),
    CLS(classification_reason, MISCACHE__F_STRING),
    CLS(is_revenue, MISCACHE__F_BOOL),
    CLS(revenue_impact, MISCACHE__F_DOUBLE),
    CLS(classified_at, MISCACHE__F_STRING),
};
const miscache__payload_t miscache__gift_class_payload =
    MISCACHE__PAYLOAD("gift classification", miscache_gift_classification_t, class_fields);

void miscache_gift_rules_clear(miscache_gift_rules_t *r) {
  if (r) miscache__payload_clear(&miscache__gift_rules_payload, r);
}
void miscache_gift_classification_clear(miscache_gift_classification_t *c) {
  if (c) miscache__payload_clear(&miscache__gift_class_payload, c);
}
void miscache_gift_master_free(miscache_gift_master_entry_t *entries,
                               size_t n) {
  if (!entries) return;
  for (size_t i = 0; i < n; i++)
    miscache__payload_clear(&miscache__gift_master_payload, &entries[i]);
  free(entries);
}

static miscache_status_t company_key(miscache_t *mc, char *key,
                                     miscache_key_family_id_t f,
                                     int64_t company) {
  return miscache__kf_key_int(mc, f, key, company);
}

/* ---- rules ------------------------------------------------------------------ */

miscache_status_t miscache_gift_rules_set(miscache_t *mc, int64_t company,
                                          const miscache_gift_rules_t *r) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!r) {
    miscache__set_err(mc, "miscache_gift_rules_set: rules is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, MISCACHE_KF_GIFT_RULES, company);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_set(mc, miscache__kf_db(MISCACHE_KF_GIFT_RULES), key,
                             &miscache__gift_rules_payload, r,
                             miscache__kf_ttl_ms(mc, MISCACHE_KF_GIFT_RULES));
}

miscache_status_t miscache_gift_rules_get(miscache_t *mc, int64_t company,
                                          miscache_gift_rules_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_gift_rules_get: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, MISCACHE_KF_GIFT_RULES, company);
  if (st != MISCACHE_OK) return st;
  return miscache__typed_get(mc, miscache__kf_db(MISCACHE_KF_GIFT_RULES), key,
                             &miscache__gift_rules_payload, out);
}

typedef struct {
  miscache_gift_rules_loader_fn loader;
  void *userdata;
  int64_t company;
} rules_loader_t;

static miscache_status_t load_rules(void *ud, void *out) {
  rules_loader_t *rl = ud;
  return rl->loader(rl->userdata, rl->company, out);
}

static const miscache__company_typed_t rules_typed = {
    MISCACHE_KF_GIFT_RULES, 0, &miscache__gift_rules_payload,
    sizeof(miscache_gift_rules_t), "gift rules"};

miscache_status_t miscache_gift_rules_get_or_load(
    miscache_t *mc, int64_t company, miscache_gift_rules_loader_fn loader,
    void *userdata, miscache_gift_rules_t *out, miscache_source_t *source) {
  rules_loader_t rl = {loader, userdata, company};
  miscache__company_typed_t t = rules_typed;
  t.company = company;
  return miscache__company_typed_aside(mc, &t, NULL, NULL,
                                       loader ? load_rules : NULL, &rl, out,
                                       source);
}

miscache_status_t miscache_gift_rules_get_or_load_ex(
    miscache_t *mc, int64_t company, miscache_load_fn load, void *userdata,
    miscache_gift_rules_t *out, miscache_source_t *source) {
  miscache__company_typed_t t = rules_typed;
  t.company = company;
  return miscache__company_typed_aside(mc, &t, load, userdata, NULL, NULL, out,
                                       source);
}

/* ---- gift master -------------------------------------------------------------- */

miscache_status_t
miscache_gift_master_set(miscache_t *mc, int64_t company,
                         const miscache_gift_master_entry_t *entries,
                         size_t n) {
  if (!mc) return MISCACHE_ERR_INVALID;
  if (n && !entries) {
    miscache__set_err(mc, "miscache_gift_master_set: entries is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, MISCACHE_KF_GIFT_MASTER, company);
  if (st != MISCACHE_OK) return st;
  char why[256] = "";
  json_t *arr = miscache__gift_master_encode(entries, n, why, sizeof why);
  if (!arr) {
    miscache__set_err(mc, "%s: %s", key, why[0] ? why : "out of memory");
    return MISCACHE_ERR_ENCODE;
  }
  st = miscache_set_ttl_ms(mc, miscache__kf_db(MISCACHE_KF_GIFT_MASTER), key,
                           arr, miscache__kf_ttl_ms(mc, MISCACHE_KF_GIFT_MASTER));
  json_decref(arr);
  return st;
}

miscache_status_t miscache_gift_master_get(miscache_t *mc, int64_t company,
                                           miscache_gift_master_entry_t **entries,
                                           size_t *n) {
  if (entries) *entries = NULL;
  if (n) *n = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!entries || !n) {
    miscache__set_err(mc, "miscache_gift_master_get: entries or n is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = company_key(mc, key, MISCACHE_KF_GIFT_MASTER, company);
  if (st != MISCACHE_OK) return st;
  json_t *arr = NULL;
  st = miscache_get(mc, miscache__kf_db(MISCACHE_KF_GIFT_MASTER), key, &arr);
  if (st != MISCACHE_OK) return st;
  char why[256];
  st = miscache__gift_master_decode(arr, entries, n, why, sizeof why);
  json_decref(arr);
  if (st != MISCACHE_OK) {
    if (st == MISCACHE_ERR_DECODE)
      miscache__hit_unusable(mc, miscache__kf_db(MISCACHE_KF_GIFT_MASTER), key);
    miscache__set_err(mc, "value of %s: %s", key, why);
  }
  return st;
}

json_t *
miscache__gift_master_encode(const miscache_gift_master_entry_t *entries,
                             size_t n, char *why, size_t whylen) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++) {
    json_t *e = miscache__payload_encode(&miscache__gift_master_payload,
                                         &entries[i], why, whylen);
    if (!e || json_array_append_new(arr, e)) {
      json_decref(arr);
      arr = NULL;
    }
  }
  return arr;
}

miscache_status_t
miscache__gift_master_decode(const json_t *arr,
                             miscache_gift_master_entry_t **entries, size_t *n,
                             char *why, size_t whylen) {
  *entries = NULL;
  *n = 0;
  snprintf(why, whylen, "not a JSON array");
  if (!json_is_array(arr)) return MISCACHE_ERR_DECODE;
  size_t count = json_array_size(arr);
  miscache_gift_master_entry_t *out = calloc(count ? count : 1, sizeof *out);
  if (!out) return MISCACHE_ERR_NOMEM;
  miscache_status_t st = MISCACHE_OK;
  for (size_t i = 0; st == MISCACHE_OK && i < count; i++)
    st = miscache__payload_decode(&miscache__gift_master_payload,
                                  json_array_get(arr, i), &out[i], why, whylen);
  if (st != MISCACHE_OK) {
    miscache_gift_master_free(out, count);
    return st;
  }
  *entries = out;
  *n = count;
  return MISCACHE_OK;
}

/* ---- engine ------------------------------------------------------------------- */

struct miscache_gift_engine {
  bool zero_price_rule;
  bool exclude_from_revenue;
  miscache_strings_t keywords;
  miscache_strings_t codes; /* sorted master product codes */
};

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void miscache_gift_engine_free(miscache_gift_engine_t *e) {
  if (!e) return;
  miscache_strings_clear(&e->keywords);
  miscache_strings_clear(&e->codes);
  free(e);
}

miscache_status_t miscache_gift_engine_new(
    const miscache_gift_rules_t *rules,
    const miscache_gift_master_entry_t *master, size_t n_master,
    miscache_gift_engine_t **out) {
  if (out) *out = NULL;
  if (!rules || !out || (n_master && !master)) return MISCACHE_ERR_INVALID;
  miscache_gift_engine_t *e = calloc(1, sizeof *e);
  if (!e) return MISCACHE_ERR_NOMEM;
  e->zero_price_rule = rules->zero_price_rule;
  e->exclude_from_revenue = rules->exclude_from_revenue;
  miscache_status_t st = MISCACHE_OK;
  for (size_t i = 0; st == MISCACHE_OK && i < rules->keywords.count; i++)
    if (rules->keywords.items[i] && rules->keywords.items[i][0])
      st = miscache_strings_push(&e->keywords, rules->keywords.items[i]);
  for (size_t i = 0; st == MISCACHE_OK && i < rules->master_products.count; i++)
    if (rules->master_products.items[i])
      st = miscache_strings_push(&e->codes, rules->master_products.items[i]);
  for (size_t i = 0; st == MISCACHE_OK && i < n_master; i++)
    if (master[i].is_active && master[i].product_code)
      st = miscache_strings_push(&e->codes, master[i].product_code);
  if (st != MISCACHE_OK) {
    miscache_gift_engine_free(e);
    return st;
  }
  if (e->codes.count)
    qsort(e->codes.items, e->codes.count, sizeof *e->codes.items, cmp_str);
  *out = e;
  return MISCACHE_OK;
}

/* Length of a separator at s (0 if s starts a token character). */
static size_t separator_len(const unsigned char *s) {
  if (s[0] < 0x80) {
    bool alnum = (s[0] >= '0' && s[0] <= '9') || (s[0] >= 'a' && s[0] <= 'z') ||
                 (s[0] >= 'A' && s[0] <= 'Z');
    return alnum ? 0 : 1;
  }
  static const char *const seps[] = {
      "\xe3\x80\x90", "\xe3\x80\x91", /* 【】 */
      "\xe3\x80\x8c", "\xe3\x80\x8d", /* 「」 */
      "\xe3\x80\x8e", "\xe3\x80\x8f", /* 『』 */
      "\xef\xbc\x88", "\xef\xbc\x89", /* （） */
      "\xe3\x83\xbb", "\xc2\xb7",     /* ・ · */
      "\xe3\x80\x80",                 /* ideographic space */
  };
  for (size_t i = 0; i < sizeof seps / sizeof *seps; i++) {
    size_t n = strlen(seps[i]);
    /* strncmp stops at the name's NUL: never reads past its end */
    if (strncmp((const char *)s, seps[i], n) == 0) return n;
  }
  return 0;
}

static bool token_equals(const char *tok, size_t len, const char *kw) {
  if (strlen(kw) != len) return false;
  for (size_t i = 0; i < len; i++) {
    char a = tok[i], b = kw[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

/* The first keyword that is a whole token of name, or NULL. */
static const char *keyword_in(const miscache_gift_engine_t *e,
                              const char *name) {
  const unsigned char *p = (const unsigned char *)name;
  while (*p) {
    size_t sep = separator_len(p);
    if (sep) {
      p += sep;
      continue;
    }
    const unsigned char *start = p;
    while (*p && !separator_len(p)) p++;
    for (size_t k = 0; k < e->keywords.count; k++)
      if (token_equals((const char *)start, (size_t)(p - start),
                       e->keywords.items[k]))
        return e->keywords.items[k];
  }
  return NULL;
}

static bool is_master(const miscache_gift_engine_t *e, const char *code) {
  return e->codes.count &&
         bsearch(&code, e->codes.items, e->codes.count, sizeof *e->codes.items,
                 cmp_str) != NULL;
}

miscache_status_t miscache_gift_engine_classify(
    const miscache_gift_engine_t *e, const miscache_gift_product_t *p,
    miscache_gift_classification_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!e || !p || !out || !p->product_code) return MISCACHE_ERR_INVALID;
  const char *type = NULL;
  char reason[256];
  const char *kw = NULL;
  if (is_master(e, p->product_code)) {
    type = "MASTER";
    snprintf(reason, sizeof reason, "product %s is in the gift master",
             p->product_code);
  } else if (e->zero_price_rule && p->supply_price == 0) {
    type = "ZERO_PRICE";
    snprintf(reason, sizeof reason, "supply price is 0");
  } else if (p->product_name && (kw = keyword_in(e, p->product_name))) {
    type = "KEYWORD";
    snprintf(reason, sizeof reason, "product name has the keyword \"%s\"", kw);
  } else {
    snprintf(reason, sizeof reason, "no gift rule matched");
  }
  char now[32];
  miscache__iso8601_now(now, sizeof now);
  out->product_type = strdup(type ? "GIFT" : "REVENUE");
  out->gift_type = type ? strdup(type) : NULL;
  out->classification_reason = strdup(reason);
  out->classified_at = strdup(now);
  out->is_revenue = !type || !e->exclude_from_revenue;
  out->revenue_impact = out->is_revenue ? p->supply_price : 0;
  if (!out->product_type || (type && !out->gift_type) ||
      !out->classification_reason || !out->classified_at) {
    miscache_gift_classification_clear(out);
    return MISCACHE_ERR_NOMEM;
  }
  return MISCACHE_OK;
}

/* ---- classification through the cache ----------------------------------------- */

#define CLASS_DB miscache__kf_db(MISCACHE_KF_GIFT_CLASSIFICATION)

static miscache_status_t class_key(miscache_t *mc, char *key, int64_t company,
                                   const char *code) {
  char num[24];
  miscache__i64toa(num, company);
  return miscache__kf_key(mc, MISCACHE_KF_GIFT_CLASSIFICATION, key, code, num);
}

miscache_status_t miscache_gift_classify(miscache_t *mc, int64_t company,
                                         const miscache_gift_engine_t *e,
                                         const miscache_gift_product_t *p,
                                         miscache_gift_classification_t *out,
                                         miscache_source_t *source) {
  if (out) memset(out, 0, sizeof *out);
  if (source) *source = MISCACHE_SOURCE_NONE;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!e || !p || !out) {
    miscache__set_err(mc, "miscache_gift_classify: bad argument");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = class_key(mc, key, company, p->product_code);
  if (st != MISCACHE_OK) return st;
  st = miscache__typed_get(mc, CLASS_DB, key, &miscache__gift_class_payload,
                           out);
  if (st == MISCACHE_OK) {
    if (source) *source = MISCACHE_SOURCE_CACHE;
    return st;
  }
  if (st == MISCACHE_ERR_INVALID || st == MISCACHE_ERR_NOMEM) return st;
  bool cache_ok = st == MISCACHE_MISS || st == MISCACHE_ERR_DECODE;
  st = miscache_gift_engine_classify(e, p, out);
  if (st != MISCACHE_OK) return st;
  miscache_source_t src = MISCACHE_SOURCE_UNCACHED;
  if (cache_ok &&
      miscache__typed_set(
          mc, CLASS_DB, key, &miscache__gift_class_payload, out,
          miscache__kf_ttl_ms(mc, MISCACHE_KF_GIFT_CLASSIFICATION)) ==
          MISCACHE_OK)
    src = MISCACHE_SOURCE_LOADED;
  if (source) *source = src;
  return MISCACHE_OK;
}

/* One page of bulk classification: its keys, what the MGET found, and the
 * results to store. */
typedef struct {
  size_t n, n_ok, n_new, cached;
  char (*keys)[MISCACHE_KEY_BUFSIZE];
  const char **kp;
  size_t *line; /* kp[j] is products[line[j]] */
  json_t **vals;
  miscache_status_t *sts, *own;
  miscache__direct_t *direct; /* [j]: straight into out[line[j]] */
  const char **new_keys;
  char **new_texts; /* the results to store, as JSON text */
  size_t *new_lens;
  miscache_status_t first_bad;
  size_t first_bad_line;
  char first_bad_msg[MISCACHE_ERRMSG_SIZE];
} page_t;

static void page_free(page_t *pg) {
  if (pg->vals)
    for (size_t i = 0; i < pg->n_ok; i++) json_decref(pg->vals[i]);
  if (pg->new_texts)
    for (size_t i = 0; i < pg->n_new; i++) free(pg->new_texts[i]);
  free(pg->keys);
  free(pg->kp);
  free(pg->line);
  free(pg->vals);
  free(pg->sts);
  free(pg->own);
  free(pg->direct);
  free(pg->new_keys);
  free(pg->new_texts);
  free(pg->new_lens);
  memset(pg, 0, sizeof *pg);
}

/* Allocate the page and make the keys of products[0..n): a bad line gets
 * its own status (pg->own) and the others go on. */
static miscache_status_t page_keys(miscache_t *mc, page_t *pg, int64_t company,
                                   const miscache_gift_product_t *products,
                                   size_t n,
                                   miscache_gift_classification_t *out) {
  memset(pg, 0, sizeof *pg);
  pg->n = n;
  /* calloc checks n * size for overflow */
  pg->keys = miscache__realloc_array(NULL, n, sizeof *pg->keys); /* written */
  pg->kp = calloc(n, sizeof *pg->kp);
  pg->line = calloc(n, sizeof *pg->line);
  pg->vals = calloc(n, sizeof *pg->vals);
  pg->sts = calloc(n, sizeof *pg->sts);
  pg->own = calloc(n, sizeof *pg->own);
  pg->direct = calloc(n, sizeof *pg->direct);
  pg->new_keys = calloc(n, sizeof *pg->new_keys);
  pg->new_texts = calloc(n, sizeof *pg->new_texts);
  pg->new_lens = calloc(n, sizeof *pg->new_lens);
  if (!pg->keys || !pg->kp || !pg->line || !pg->vals || !pg->sts ||
      !pg->own || !pg->direct || !pg->new_keys || !pg->new_texts ||
      !pg->new_lens) {
    page_free(pg);
    miscache__set_err(mc, "out of memory for a page of %zu products", n);
    return MISCACHE_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    pg->own[i] = class_key(mc, pg->keys[pg->n_ok], company,
                           products[i].product_code);
    if (pg->own[i] != MISCACHE_OK) {
      if (pg->first_bad == MISCACHE_OK) {
        pg->first_bad = pg->own[i];
        pg->first_bad_line = i;
        snprintf(pg->first_bad_msg, sizeof pg->first_bad_msg, "%s", mc->err);
      }
      continue;
    }
    pg->kp[pg->n_ok] = pg->keys[pg->n_ok];
    pg->direct[pg->n_ok] =
        (miscache__direct_t){&miscache__gift_class_payload, &out[i], false};
    pg->line[pg->n_ok++] = i;
  }
  return MISCACHE_OK;
}

/* After the page's MGET (cache_ok false: it failed, so the engine answers
 * every line and nothing is stored): decode what was cached, classify the
 * rest, encode those for the store. */
static miscache_status_t page_resolve(miscache_t *mc, page_t *pg,
                                      const miscache_gift_engine_t *e,
                                      const miscache_gift_product_t *products,
                                      miscache_gift_classification_t *out,
                                      bool cache_ok) {
  for (size_t j = 0; j < pg->n_ok; j++) {
    size_t i = pg->line[j];
    char why[256];
    if (cache_ok && pg->sts[j] == MISCACHE_OK &&
        (pg->direct[j].done ||
         miscache__payload_decode(&miscache__gift_class_payload, pg->vals[j],
                                  &out[i], why, sizeof why) == MISCACHE_OK)) {
      pg->cached++;
      continue;
    }
    if (cache_ok && pg->sts[j] == MISCACHE_OK)
      miscache__hit_unusable(mc, CLASS_DB, pg->keys[j]);
    miscache_status_t st = miscache_gift_engine_classify(e, &products[i], &out[i]);
    if (st != MISCACHE_OK) {
      miscache__set_err(mc, "classifying line %zu: %s", i,
                        miscache_strerror(st));
      return st;
    }
    if (!cache_ok) continue;
    bool tree = false;
    char *text = miscache__payload_encode_text(&miscache__gift_class_payload,
                                               &out[i], &pg->new_lens[pg->n_new],
                                               &tree, why, sizeof why);
    if (!text && tree) { /* not reached for engine results; kept general */
      json_t *v = miscache__payload_encode(&miscache__gift_class_payload,
                                           &out[i], why, sizeof why);
      text = v ? miscache__encode(v, &pg->new_lens[pg->n_new]) : NULL;
      json_decref(v);
    }
    if (!text) {
      miscache__set_err(mc, "encoding line %zu: %s", i, why);
      return MISCACHE_ERR_NOMEM;
    }
    pg->new_texts[pg->n_new] = text;
    pg->new_keys[pg->n_new++] = pg->keys[j];
  }
  return MISCACHE_OK;
}

/* The writes of page prev (may be NULL) and the MGET of page pg (may be
 * NULL) in one round trip. Whether pg's MGET worked. */
static bool page_round_trip(miscache_t *mc, page_t *prev, page_t *pg) {
  size_t nset = prev ? prev->n_new : 0, nget = pg ? pg->n_ok : 0;
  /* a failed store is not fatal: the next run recomputes those lines */
  miscache__sets_t sets = {
      .n = nset,
      .keys = prev ? prev->new_keys : NULL,
      .texts = prev ? (const char *const *)prev->new_texts : NULL,
      .lens = prev ? prev->new_lens : NULL,
      .cls = miscache__kf_class(MISCACHE_KF_GIFT_CLASSIFICATION)};
  miscache__gets_t gets = {.n = nget,
                           .keys = pg ? pg->kp : NULL,
                           .values = pg ? pg->vals : NULL,
                           .statuses = pg ? pg->sts : NULL,
                           .direct = pg ? pg->direct : NULL};
  miscache_status_t st = miscache__mset_mget(mc, CLASS_DB, &sets, &gets);
  return st == MISCACHE_OK;
}

/* Statuses, counts and the return value of products[0..n) classified in
 * pages; st the first fatal status (OK: none). */
static miscache_status_t classify_finish(miscache_t *mc, size_t n,
                                         miscache_gift_classification_t *out,
                                         miscache_status_t *statuses,
                                         const miscache_status_t *own,
                                         miscache_status_t st,
                                         miscache_status_t first_bad,
                                         const char *first_bad_msg,
                                         size_t first_bad_line) {
  if (st != MISCACHE_OK)
    for (size_t i = 0; i < n; i++) miscache_gift_classification_clear(&out[i]);
  if (statuses)
    for (size_t i = 0; i < n; i++)
      statuses[i] = st != MISCACHE_OK ? st : own[i];
  if (st == MISCACHE_OK && first_bad != MISCACHE_OK) {
    miscache__set_err(mc, "line %zu: %s (the other lines were classified)",
                      first_bad_line, first_bad_msg);
    return first_bad;
  }
  return st;
}

static miscache_status_t check_classify_args(
    miscache_t *mc, const char *fn, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *products, size_t n,
    miscache_gift_classification_t *out, miscache_status_t *statuses) {
  if (n > (size_t)INT32_MAX / 5) { /* before touching out[n - 1] */
    miscache__set_err(mc, "%s: %zu products is too many", fn, n);
    return MISCACHE_ERR_INVALID;
  }
  if (out) memset(out, 0, n * sizeof *out);
  if (!e || (n && (!products || !out))) {
    miscache__set_err(mc, "%s: bad argument", fn);
    if (statuses)
      for (size_t i = 0; i < n; i++) statuses[i] = MISCACHE_ERR_INVALID;
    return MISCACHE_ERR_INVALID;
  }
  return MISCACHE_OK;
}

/* products in pages of page_size (>= 1), each page's writes sent with
 * the next page's MGET. */
static miscache_status_t classify_in_pages(
    miscache_t *mc, int64_t company, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *products, size_t n, size_t page_size,
    miscache_gift_classification_t *out, miscache_status_t *statuses,
    size_t *from_cache) {
  miscache_status_t st = MISCACHE_OK;
  miscache_status_t *own = calloc(n ? n : 1, sizeof *own);
  if (!own) {
    miscache__set_err(mc, "out of memory for %zu products", n);
    if (statuses)
      for (size_t i = 0; i < n; i++) statuses[i] = MISCACHE_ERR_NOMEM;
    return MISCACHE_ERR_NOMEM;
  }
  page_t pages[2];
  memset(pages, 0, sizeof pages);
  page_t *prev = NULL;
  size_t cached = 0, first_bad_line = 0;
  miscache_status_t first_bad = MISCACHE_OK;
  char first_bad_msg[MISCACHE_ERRMSG_SIZE] = "";
  for (size_t at = 0, k = 0; st == MISCACHE_OK && at < n; at += page_size, k++) {
    size_t m = n - at < page_size ? n - at : page_size;
    page_t *pg = &pages[k % 2];
    st = page_keys(mc, pg, company, products + at, m, out + at);
    if (st != MISCACHE_OK) break;
    /* page k's MGET goes with page k - 1's writes: one round trip each */
    bool cache_ok = page_round_trip(mc, prev, pg);
    if (prev) page_free(prev);
    st = page_resolve(mc, pg, e, products + at, out + at, cache_ok);
    cached += pg->cached;
    memcpy(own + at, pg->own, m * sizeof *own);
    if (pg->first_bad != MISCACHE_OK && first_bad == MISCACHE_OK) {
      first_bad = pg->first_bad;
      first_bad_line = at + pg->first_bad_line;
      snprintf(first_bad_msg, sizeof first_bad_msg, "%s", pg->first_bad_msg);
    }
    prev = pg;
  }
  if (st == MISCACHE_OK && prev && prev->n_new)
    (void)page_round_trip(mc, prev, NULL);
  page_free(&pages[0]);
  page_free(&pages[1]);
  if (st == MISCACHE_OK && from_cache) *from_cache = cached;
  st = classify_finish(mc, n, out, statuses, own, st, first_bad, first_bad_msg,
                       first_bad_line);
  free(own);
  return st;
}

miscache_status_t miscache_gift_classify_bulk(
    miscache_t *mc, int64_t company, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *products, size_t n,
    miscache_gift_classification_t *out, miscache_status_t *statuses,
    size_t *from_cache) {
  if (from_cache) *from_cache = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache_status_t st = check_classify_args(
      mc, "miscache_gift_classify_bulk", e, products, n, out, statuses);
  if (st != MISCACHE_OK || n == 0) return st;
  /* one page: one MGET, the engine for the rest, one pipeline of writes */
  return classify_in_pages(mc, company, e, products, n, n, out, statuses,
                           from_cache);
}

miscache_status_t miscache_gift_classify_pages(
    miscache_t *mc, int64_t company, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *products, size_t n, size_t page_size,
    miscache_gift_classification_t *out, miscache_status_t *statuses,
    size_t *from_cache) {
  if (from_cache) *from_cache = 0;
  if (!mc) return MISCACHE_ERR_INVALID;
  miscache_status_t st = check_classify_args(
      mc, "miscache_gift_classify_pages", e, products, n, out, statuses);
  if (st != MISCACHE_OK) return st;
  if (page_size < 1 || page_size > 100000) {
    miscache__set_err(mc, "miscache_gift_classify_pages: page size %zu is "
                          "not 1..100000", page_size);
    return MISCACHE_ERR_INVALID;
  }
  return classify_in_pages(mc, company, e, products, n, page_size, out,
                           statuses, from_cache);
}

/* ---- a page, asynchronously (async.h) ------------------------------------- */

/* One page in flight: its MGET, then the SETs of what the engine gave. */
typedef struct {
  miscache_async_classify_fn fn;
  void *ud;
  const miscache_gift_engine_t *e;
  const miscache_gift_product_t *products;
  miscache_gift_classification_t *out;
  miscache_status_t *statuses;
  size_t n;
  page_t pg;
  miscache__mm_t mm; /* the SETs' commands, kept for their keys */
} apage_t;

static miscache__gets_t apage_gets(apage_t *op) {
  return (miscache__gets_t){.n = op->pg.n_ok,
                            .keys = op->pg.kp,
                            .values = op->pg.vals,
                            .statuses = op->pg.sts,
                            .direct = op->pg.direct};
}

/* The page's end: statuses, the callback, and op freed. st OK unless the
 * page itself failed (cancelled, out of memory, an engine error). */
static void apage_finish(miscache_async_t *a, apage_t *op,
                         miscache_status_t st, const char *why) {
  miscache_t *mc = miscache__async_mc(a);
  char msg[MISCACHE_ERRMSG_SIZE];
  snprintf(msg, sizeof msg, "%s", why ? why : "");
  size_t cached = st == MISCACHE_OK ? op->pg.cached : 0;
  st = classify_finish(mc, op->n, op->out, op->statuses, op->pg.own, st,
                       op->pg.first_bad, op->pg.first_bad_msg,
                       op->pg.first_bad_line);
  if (st != MISCACHE_OK && !msg[0]) snprintf(msg, sizeof msg, "%s", mc->err);
  miscache_async_classify_fn fn = op->fn;
  void *ud = op->ud;
  page_free(&op->pg);
  miscache__mm_free(&op->mm);
  free(op);
  fn(ud, st, cached, msg);
}

static void apage_stored(miscache_async_t *a, void *p, miscache_status_t st,
                         miscache__reply_t **r, size_t n, const char *why) {
  (void)why;
  apage_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  for (size_t i = 0; i < op->mm.nset; i++) /* the writes may have landed */
    miscache__near_evict(mc, op->mm.ss.ptrs[i], op->mm.ss.lens[i]);
  /* a failed store is not fatal: the next run recomputes those lines */
  if (st == MISCACHE_OK) {
    miscache_status_t set_st = MISCACHE_OK;
    miscache__sets_t sets = {.n = n, .keys = op->pg.new_keys, .st = &set_st};
    (void)miscache__mm_take(mc, CLASS_DB, &sets, NULL, r);
  } else if (st != MISCACHE_ERR_CANCELLED) {
    miscache__count(mc, CLASS_DB, op->pg.new_keys[0], MISCACHE__ERROR);
  }
  apage_finish(a, op, MISCACHE_OK, "");
}

static void apage_read(miscache_async_t *a, void *p, miscache_status_t st,
                       miscache__reply_t **r, size_t n, const char *why) {
  (void)n;
  apage_t *op = p;
  miscache_t *mc = miscache__async_mc(a);
  if (st == MISCACHE_ERR_CANCELLED) {
    apage_finish(a, op, st, why);
    return;
  }
  miscache__gets_t gets = apage_gets(op);
  if (st == MISCACHE_OK)
    st = miscache__mm_take(mc, CLASS_DB, NULL, &gets, r);
  else
    miscache__count(mc, CLASS_DB, op->pg.kp[0], MISCACHE__ERROR);
  /* fail-open: with the read failed the engine answers every line */
  bool cache_ok = st == MISCACHE_OK;
  st = page_resolve(mc, &op->pg, op->e, op->products, op->out, cache_ok);
  if (st != MISCACHE_OK || op->pg.n_new == 0) {
    apage_finish(a, op, st, "");
    return;
  }
  miscache__sets_t sets = {
      .n = op->pg.n_new,
      .keys = op->pg.new_keys,
      .texts = (const char *const *)op->pg.new_texts,
      .lens = op->pg.new_lens,
      .cls = miscache__kf_class(MISCACHE_KF_GIFT_CLASSIFICATION)};
  st = miscache__mm_build(mc, &sets, NULL, &op->mm);
  for (size_t i = 0; st == MISCACHE_OK && i < op->mm.nset; i++)
    miscache__near_evict(mc, op->mm.ss.ptrs[i], op->mm.ss.lens[i]);
  if (st == MISCACHE_OK)
    st = miscache__async_send(a, CLASS_DB, op->mm.ncmd, op->mm.cmds,
                              apage_stored, op);
  if (st != MISCACHE_OK) /* not stored: the results stand (UNCACHED) */
    apage_finish(a, op, MISCACHE_OK, "");
}

miscache_status_t miscache_async_gift_classify_page(
    miscache_async_t *a, int64_t company, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *products, size_t n,
    miscache_gift_classification_t *out, miscache_status_t *statuses,
    miscache_async_classify_fn fn, void *userdata) {
  miscache_status_t st = miscache__async_check(
      a, fn && e && products && out && n >= 1 && n <= 100000,
      "miscache_async_gift_classify_page");
  if (st != MISCACHE_OK) return st;
  miscache_t *mc = miscache__async_mc(a);
  memset(out, 0, n * sizeof *out);
  apage_t *op = calloc(1, sizeof *op);
  if (!op) {
    miscache__async_refuse(a, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  *op = (apage_t){.fn = fn, .ud = userdata, .e = e, .products = products,
                  .out = out, .statuses = statuses, .n = n};
  st = page_keys(mc, &op->pg, company, products, n, out);
  miscache__gets_t gets = apage_gets(op);
  if (st == MISCACHE_OK && op->pg.n_ok == 0) { /* no line makes a key */
    miscache__async_enter(a);
    apage_finish(a, op, MISCACHE_OK, "");
    miscache__async_leave(a);
    return MISCACHE_OK;
  }
  if (st == MISCACHE_OK) st = miscache__mm_build(mc, NULL, &gets, &op->mm);
  if (st != MISCACHE_OK) /* (the engine sets its own message) */
    miscache__async_refuse(a, "%s", mc->err);
  else
    st = miscache__async_send(a, CLASS_DB, op->mm.ncmd, op->mm.cmds,
                              apage_read, op);
  miscache__mm_free(&op->mm); /* the request holds its own copy */
  if (st != MISCACHE_OK) {
    page_free(&op->pg);
    free(op);
  }
  return st;
}

/* ---- analytics ----------------------------------------------------------------- */

miscache_status_t miscache_gift_analytics_set(miscache_t *mc, int64_t company,
                                              const char *yyyymmdd,
                                              const json_t *analytics) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__key_company_date(
      mc, key, MISCACHE_KF_GIFT_ANALYTICS, company, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  return miscache_set_ttl_ms(
      mc, miscache__kf_db(MISCACHE_KF_GIFT_ANALYTICS), key, analytics,
      miscache__kf_ttl_ms(mc, MISCACHE_KF_GIFT_ANALYTICS));
}

miscache_status_t miscache_gift_analytics_get(miscache_t *mc, int64_t company,
                                              const char *yyyymmdd,
                                              json_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__key_company_date(
      mc, key, MISCACHE_KF_GIFT_ANALYTICS, company, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  return miscache_get(mc, miscache__kf_db(MISCACHE_KF_GIFT_ANALYTICS), key,
                      out);
}

miscache_status_t miscache_gift_analytics_get_or_load_ex(
    miscache_t *mc, int64_t company, const char *yyyymmdd,
    miscache_load_fn load, void *userdata, json_t **out,
    miscache_source_t *source) {
  if (out) *out = NULL;
  if (source) *source = MISCACHE_SOURCE_NONE;
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = miscache__key_company_date(
      mc, key, MISCACHE_KF_GIFT_ANALYTICS, company, yyyymmdd);
  if (st != MISCACHE_OK) return st;
  if (!load) {
    miscache__set_err(mc, "gift analytics get_or_load: loader is NULL");
    return MISCACHE_ERR_INVALID;
  }
  miscache__aside_t a = {.db = miscache__kf_db(MISCACHE_KF_GIFT_ANALYTICS),
                         .key = key,
                         .ttl = MISCACHE__KF_TTL(MISCACHE_KF_GIFT_ANALYTICS),
                         .load = load,
                         .userdata = userdata,
                         .family = MISCACHE_KF_GIFT_ANALYTICS,
                         .company = company,
                         .date = yyyymmdd};
  return miscache__cache_aside(mc, &a, out, source);
}

miscache_status_t
miscache_gift_analytics_get_or_load(miscache_t *mc, int64_t company,
                                    const char *yyyymmdd,
                                    miscache_loader_fn loader, void *userdata,
                                    json_t **out, miscache_source_t *source) {
  miscache__legacy_t old = {loader, userdata};
  return miscache_gift_analytics_get_or_load_ex(
      mc, company, yyyymmdd, loader ? miscache__legacy_load : NULL, &old, out,
      source);
}

/*
 * libmiscache — gift (사은품) classification in db "gift":
 *   gift:rules:{company}                       typed rules, class gift_rules (6 h)
 *   gift:master:{company}                      array of master entries, class gift_master (6 h)
 *   gift:classification:{product_code}:{company} typed result, class gift_classification (4 h)
 *   gift:analytics:{company}:{YYYYMMDD}        JSON, class gift_analytics (8 h)
 *
 * The engine applies, in order: (1) the product is in the company's gift
 * master (active entries, plus rules.master_products) → GIFT/MASTER;
 * (2) zero_price_rule and supply price 0 → GIFT/ZERO_PRICE; (3) a keyword is
 * a whole token of the product name → GIFT/KEYWORD; else REVENUE.
 * Token rule: the name is split at white space, ASCII punctuation and the
 * CJK brackets/dots 【】「」『』（）・· and the ideographic space; a keyword
 * matches a token exactly (ASCII letters case-insensitively). So
 * "[사은품] 물티슈" and "증정품 (샘플)" are gifts, while "무료배송 유모차"
 * (free shipping) and "샘플러 세트" are not: a keyword inside a longer word
 * is not a match.
 * A gift has is_revenue = !exclude_from_revenue and revenue_impact 0 when
 * excluded (else its supply price); revenue has is_revenue true and
 * revenue_impact = supply price.
 * Thread rule: one thread at a time per handle; an engine is immutable and
 * may be shared by threads.
 */
#ifndef MISCACHE_GIFT_H
#define MISCACHE_GIFT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct miscache_gift_rules {
  bool auto_classify;
  bool zero_price_rule;
  miscache_strings_t keywords; /* UTF-8, e.g. 사은품 증정품 무료 샘플 체험 */
  bool exclude_from_revenue;
  miscache_strings_t master_products; /* product codes that are always gifts */
  char *last_updated;
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_gift_rules_t;

typedef struct miscache_gift_master_entry {
  char *product_code;
  char *product_name;
  char *brand_code;
  char *category;
  double standard_cost;
  bool is_active;
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_gift_master_entry_t;

typedef struct miscache_gift_classification {
  char *product_type;          /* "GIFT" or "REVENUE" */
  char *gift_type;             /* "MASTER", "ZERO_PRICE", "KEYWORD"; NULL for revenue */
  char *classification_reason; /* human-readable, names the rule */
  bool is_revenue;
  double revenue_impact;
  char *classified_at;         /* ISO-8601 UTC */
  /* The object as it was read, when it had members this struct does
   * not name (NULL for a new value, and for a read value without any):
   * those members are written back by the set functions, so a
   * value another program extended keeps its fields. Owned: *_clear()
   * releases it. Leave it as read, or NULL. */
  json_t *extra;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_gift_classification_t;

/* One product line to classify; strings borrowed. */
typedef struct miscache_gift_product {
  const char *product_code;
  const char *product_name;
  double supply_price;
  uint64_t reserved_[4]; /* room to grow without an ABI break; keep zero */
} miscache_gift_product_t;

MISCACHE_EXPORT void miscache_gift_rules_clear(miscache_gift_rules_t *r);
MISCACHE_EXPORT void
miscache_gift_classification_clear(miscache_gift_classification_t *c);
/* Frees n entries and the array. Accepts NULL. */
MISCACHE_EXPORT void
miscache_gift_master_free(miscache_gift_master_entry_t *entries, size_t n);

/* ---- rules ---------------------------------------------------------------- */
MISCACHE_EXPORT miscache_status_t
miscache_gift_rules_set(miscache_t *mc, int64_t company,
                        const miscache_gift_rules_t *r);
MISCACHE_EXPORT miscache_status_t
miscache_gift_rules_get(miscache_t *mc, int64_t company,
                        miscache_gift_rules_t *out);
typedef miscache_status_t (*miscache_gift_rules_loader_fn)(
    void *userdata, int64_t company, miscache_gift_rules_t *out);
MISCACHE_EXPORT miscache_status_t miscache_gift_rules_get_or_load(
    miscache_t *mc, int64_t company, miscache_gift_rules_loader_fn loader,
    void *userdata, miscache_gift_rules_t *out, miscache_source_t *source);
/* The same with a loader of the 0.4.0 shape (cache.h): asked for family
 * MISCACHE_KF_GIFT_RULES with the company, it gives the rules as the JSON
 * the library stores (docs/gift.md); a value that does not decode is
 * ERR_LOADER and is not cached. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_gift_rules_get_or_load_ex(
    miscache_t *mc, int64_t company, miscache_load_fn load, void *userdata,
    miscache_gift_rules_t *out, miscache_source_t *source);

/* ---- gift master ---------------------------------------------------------- */
MISCACHE_EXPORT miscache_status_t
miscache_gift_master_set(miscache_t *mc, int64_t company,
                         const miscache_gift_master_entry_t *entries, size_t n);
/* OK: *entries (free with miscache_gift_master_free) and *n; MISS;
 * ERR_DECODE. */
MISCACHE_EXPORT miscache_status_t
miscache_gift_master_get(miscache_t *mc, int64_t company,
                         miscache_gift_master_entry_t **entries, size_t *n);

/* ---- engine (pure, no I/O) ------------------------------------------------- */
typedef struct miscache_gift_engine miscache_gift_engine_t;

/* Compile rules and master entries (copied) into an engine. */
MISCACHE_EXPORT miscache_status_t miscache_gift_engine_new(
    const miscache_gift_rules_t *rules,
    const miscache_gift_master_entry_t *master, size_t n_master,
    miscache_gift_engine_t **out);
MISCACHE_EXPORT void miscache_gift_engine_free(miscache_gift_engine_t *e);
/* Classify one product into *out (clear it after). OK, ERR_INVALID,
 * ERR_NOMEM. Thread-safe for a shared engine. */
MISCACHE_EXPORT miscache_status_t
miscache_gift_engine_classify(const miscache_gift_engine_t *e,
                              const miscache_gift_product_t *p,
                              miscache_gift_classification_t *out);

/* ---- classification through the cache -------------------------------------- */
/* Cached result for (product_code, company), else the engine's, stored with
 * TTL class gift_classification. Fail-open: with the cache down the engine's
 * answer is returned (source UNCACHED). */
MISCACHE_EXPORT miscache_status_t miscache_gift_classify(
    miscache_t *mc, int64_t company, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *p, miscache_gift_classification_t *out,
    miscache_source_t *source);
/* A whole page: one MGET for all n, the engine for those not cached (or not
 * decodable), one pipeline to store them. out[i] for products[i] (clear
 * each). statuses (optional, n entries) gets each line's status: a line
 * whose product code cannot make a key (NULL, empty, too long) gets
 * ERR_INVALID / ERR_KEY and a zeroed out[i], and the other lines are still
 * classified. *from_cache (optional) counts the cached ones. The results
 * equal n calls of miscache_gift_classify(). Fail-open like it.
 * Returns OK when every line is classified; the status of the first bad
 * line (the message names it) when only some are; ERR_NOMEM or
 * ERR_INVALID (nothing classified) when the page itself fails. */
MISCACHE_EXPORT miscache_status_t miscache_gift_classify_bulk(
    miscache_t *mc, int64_t company, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *products, size_t n,
    miscache_gift_classification_t *out, miscache_status_t *statuses,
    size_t *from_cache);
/* n products in pages of page_size (1..100000): what n / page_size calls of
 * miscache_gift_classify_bulk give (out[i], statuses[i], *from_cache for
 * all n, the same statuses), with one round trip per page instead of two:
 * each page's writes go in the same pipeline as the next page's MGET. */
MISCACHE_EXPORT miscache_status_t miscache_gift_classify_pages(
    miscache_t *mc, int64_t company, const miscache_gift_engine_t *e,
    const miscache_gift_product_t *products, size_t n, size_t page_size,
    miscache_gift_classification_t *out, miscache_status_t *statuses,
    size_t *from_cache);
/* ---- daily analytics (open-ended JSON) ------------------------------------ */
MISCACHE_EXPORT miscache_status_t
miscache_gift_analytics_set(miscache_t *mc, int64_t company,
                            const char *yyyymmdd, const json_t *analytics);
MISCACHE_EXPORT miscache_status_t
miscache_gift_analytics_get(miscache_t *mc, int64_t company,
                            const char *yyyymmdd, json_t **out);
MISCACHE_EXPORT miscache_status_t miscache_gift_analytics_get_or_load(
    miscache_t *mc, int64_t company, const char *yyyymmdd,
    miscache_loader_fn loader, void *userdata, json_t **out,
    miscache_source_t *source);
/* The same with a loader of the 0.4.0 shape (cache.h), asked for family
 * MISCACHE_KF_GIFT_ANALYTICS with the company and the date. Added in
 * 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_gift_analytics_get_or_load_ex(
    miscache_t *mc, int64_t company, const char *yyyymmdd,
    miscache_load_fn load, void *userdata, json_t **out,
    miscache_source_t *source);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_GIFT_H */

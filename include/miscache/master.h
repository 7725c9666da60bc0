/*
 * libmiscache — master data in db "cache": master:departments,
 * master:brands, master:companies and master:products:category:{id}.
 * Values are JSON arrays (departments {id,name,sort}, brands {id,name,code},
 * companies {id,code,name}; products as the ERP gives them).
 * TTL: class master_data (6 h); companies class master_companies (12 h).
 * Ownership: json_t results are new references; inputs are borrowed.
 * Thread rule: one thread at a time per handle.
 */
#ifndef MISCACHE_MASTER_H
#define MISCACHE_MASTER_H

#include <jansson.h>

#include "cache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum miscache_master_list {
  MISCACHE_MASTER_DEPARTMENTS = 0,
  MISCACHE_MASTER_BRANDS = 1,
  MISCACHE_MASTER_COMPANIES = 2
} miscache_master_list_t;

/* Companies live twice as long as the other master lists (docs/strategy.md). */
/* The list must be a JSON array (ERR_INVALID otherwise, nothing written). */
MISCACHE_EXPORT miscache_status_t miscache_master_set(miscache_t *mc,
                                                      miscache_master_list_t l,
                                                      const json_t *list);
/* OK (*out new reference to an array; [] is a hit), MISS, ERR_DECODE (not an
 * array), transport statuses. */
MISCACHE_EXPORT miscache_status_t miscache_master_get(miscache_t *mc,
                                                      miscache_master_list_t l,
                                                      json_t **out);
/* Cache-aside as miscache_get_or_load(); the loader must give an array. */
MISCACHE_EXPORT miscache_status_t
miscache_master_get_or_load(miscache_t *mc, miscache_master_list_t l,
                            miscache_loader_fn loader, void *userdata,
                            json_t **out, miscache_source_t *source);
/* The same with a loader of the 0.4.0 shape (cache.h), asked for the
 * list's family (MISCACHE_KF_MASTER_BRANDS, ...). Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_master_get_or_load_ex(
    miscache_t *mc, miscache_master_list_t l, miscache_load_fn load,
    void *userdata, json_t **out, miscache_source_t *source);

/* Products of one category: master:products:category:{category_id}. */
MISCACHE_EXPORT miscache_status_t
miscache_master_products_set(miscache_t *mc, int64_t category_id,
                             const json_t *list);
MISCACHE_EXPORT miscache_status_t
miscache_master_products_get(miscache_t *mc, int64_t category_id, json_t **out);
MISCACHE_EXPORT miscache_status_t miscache_master_products_get_or_load(
    miscache_t *mc, int64_t category_id, miscache_loader_fn loader,
    void *userdata, json_t **out, miscache_source_t *source);
/* The same with a loader of the 0.4.0 shape, asked for family
 * MISCACHE_KF_MASTER_PRODUCTS with id = category_id. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_master_products_get_or_load_ex(
    miscache_t *mc, int64_t category_id, miscache_load_fn load, void *userdata,
    json_t **out, miscache_source_t *source);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_MASTER_H */

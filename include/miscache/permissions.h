/*
 * libmiscache — per-menu CRUD permissions: permissions:user:{user_id} in db
 * "cache", TTL class permissions (1 h). The value is the map of the strategy
 * document: {"admin_batch": {"create": false, "read": true, ...}, ...}.
 * Thread rule: one thread at a time per handle.
 */
#ifndef MISCACHE_PERMISSIONS_H
#define MISCACHE_PERMISSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum miscache_perm {
  MISCACHE_PERM_CREATE = 0,
  MISCACHE_PERM_READ = 1,
  MISCACHE_PERM_UPDATE = 2,
  MISCACHE_PERM_DELETE = 3
} miscache_perm_t;

/* "create", "read", "update", "delete"; NULL if out of range. */
MISCACHE_EXPORT const char *miscache_perm_name(miscache_perm_t perm);

/* Store the map (borrowed). Every value must be an object whose create /
 * read / update / delete members, where present, are booleans (absent means
 * false); anything else is ERR_INVALID and nothing is written. */
MISCACHE_EXPORT miscache_status_t
miscache_permissions_set(miscache_t *mc, int64_t user_id, const json_t *map);
/* Read the map: OK (*out new reference), MISS, ERR_DECODE (wrong shape). */
MISCACHE_EXPORT miscache_status_t
miscache_permissions_get(miscache_t *mc, int64_t user_id, json_t **out);
MISCACHE_EXPORT miscache_status_t
miscache_permissions_delete(miscache_t *mc, int64_t user_id, bool *deleted);

/* May user_id do perm on menu? Reads through the cache: on a miss (or a
 * cache failure, fail-open) loader(userdata, key, &map) supplies the map,
 * which is stored when the cache works. A menu absent from the map denies.
 * OK with *allowed set; MISS if the loader has no permissions for the user
 * (*allowed false); ERR_LOADER; ERR_INVALID. source (optional) as in
 * miscache_get_or_load(). */
MISCACHE_EXPORT miscache_status_t miscache_permissions_check(
    miscache_t *mc, int64_t user_id, const char *menu, miscache_perm_t perm,
    miscache_loader_fn loader, void *userdata, bool *allowed,
    miscache_source_t *source);
/* The same with a loader of the 0.4.0 shape (cache.h), asked for family
 * MISCACHE_KF_PERMISSIONS with id = user_id. Added in 0.4.0. */
MISCACHE_EXPORT miscache_status_t miscache_permissions_check_ex(
    miscache_t *mc, int64_t user_id, const char *menu, miscache_perm_t perm,
    miscache_load_fn load, void *userdata, bool *allowed,
    miscache_source_t *source);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_PERMISSIONS_H */

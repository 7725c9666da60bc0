/* Permissions: permissions:user:{id}, db cache, TTL class permissions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

static const char *const perm_names[4] = {"create", "read", "update",
                                          "delete"};

const char *miscache_perm_name(miscache_perm_t perm) {
  return (unsigned)perm < 4 ? perm_names[perm] : NULL;
}

/* The map must be {menu: {create?, read?, update?, delete?: bool}}. */
static bool map_valid(const json_t *map, char *why, size_t len) {
  if (!json_is_object(map)) {
    snprintf(why, len, "permissions are not a JSON object");
    return false;
  }
  const char *menu;
  json_t *crud;
  json_object_foreach((json_t *)map, menu, crud) {
    if (!json_is_object(crud)) {
      snprintf(why, len, "permissions of menu %s are not an object", menu);
      return false;
    }
    for (int i = 0; i < 4; i++) {
      json_t *b = json_object_get(crud, perm_names[i]);
      if (b && !json_is_boolean(b)) {
        snprintf(why, len, "%s.%s is not a boolean", menu, perm_names[i]);
        return false;
      }
    }
  }
  return true;
}

static miscache_status_t perm_key(miscache_t *mc, int64_t user_id,
                                  char key[MISCACHE_KEY_BUFSIZE]) {
  return miscache__kf_key_int(mc, MISCACHE_KF_PERMISSIONS, key, user_id);
}

miscache_status_t miscache_permissions_set(miscache_t *mc, int64_t user_id,
                                           const json_t *map) {
  if (!mc) return MISCACHE_ERR_INVALID;
  char why[256];
  if (!map_valid(map, why, sizeof why)) {
    miscache__set_err(mc, "miscache_permissions_set: %s", why);
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = perm_key(mc, user_id, key);
  if (st != MISCACHE_OK) return st;
  return miscache_set_ttl_ms(mc, miscache__kf_db(MISCACHE_KF_PERMISSIONS), key,
                             map, miscache__kf_ttl_ms(mc, MISCACHE_KF_PERMISSIONS));
}

miscache_status_t miscache_permissions_get(miscache_t *mc, int64_t user_id,
                                           json_t **out) {
  if (out) *out = NULL;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!out) {
    miscache__set_err(mc, "miscache_permissions_get: out is NULL");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = perm_key(mc, user_id, key);
  if (st != MISCACHE_OK) return st;
  json_t *v = NULL;
  st = miscache_get(mc, miscache__kf_db(MISCACHE_KF_PERMISSIONS), key, &v);
  if (st != MISCACHE_OK) return st;
  char why[256];
  if (!map_valid(v, why, sizeof why)) {
    json_decref(v);
    miscache__hit_unusable(mc, miscache__kf_db(MISCACHE_KF_PERMISSIONS), key);
    miscache__set_err(mc, "value of %s: %s", key, why);
    return MISCACHE_ERR_DECODE;
  }
  *out = v;
  return MISCACHE_OK;
}

miscache_status_t miscache_permissions_delete(miscache_t *mc, int64_t user_id,
                                              bool *deleted) {
  if (deleted) *deleted = false;
  if (!mc) return MISCACHE_ERR_INVALID;
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = perm_key(mc, user_id, key);
  if (st != MISCACHE_OK) return st;
  return miscache_delete(mc, miscache__kf_db(MISCACHE_KF_PERMISSIONS), key, deleted);
}

static miscache_status_t accept_map(void *ud, json_t *v, char *why,
                                    size_t whylen) {
  (void)ud;
  return map_valid(v, why, whylen) ? MISCACHE_OK : MISCACHE_ERR_DECODE;
}

/* ---- the near cache's form of a map: per-menu bits, sorted by name ---- */

typedef struct {
  const char *name; /* the map's own key: the entry keeps the map alive */
  size_t len;
  unsigned bits; /* 1 << perm for each true */
} perm_menu_t;

typedef struct {
  size_t n;
  perm_menu_t m[];
} perm_view_t;

static int menu_cmp(const char *a, size_t alen, const char *b, size_t blen) {
  int c = memcmp(a, b, alen < blen ? alen : blen);
  return c ? c : (alen > blen) - (alen < blen);
}

static int menu_sort(const void *a, const void *b) {
  const perm_menu_t *x = a, *y = b;
  return menu_cmp(x->name, x->len, y->name, y->len);
}

static miscache_status_t perm_view_make(const json_t *v, void **out) {
  char why[256];
  if (!map_valid(v, why, sizeof why)) return MISCACHE_ERR_DECODE;
  size_t n = json_object_size(v);
  perm_view_t *pv = malloc(sizeof *pv + n * sizeof pv->m[0]);
  if (!pv) return MISCACHE_ERR_NOMEM;
  pv->n = 0;
  for (void *it = json_object_iter((json_t *)v); it && pv->n < n;
       it = json_object_iter_next((json_t *)v, it)) {
    perm_menu_t *m = &pv->m[pv->n++];
    m->name = json_object_iter_key(it);
    m->len = json_object_iter_key_len(it);
    m->bits = 0;
    json_t *crud = json_object_iter_value(it);
    for (unsigned p = 0; p < 4; p++)
      if (json_is_true(json_object_get(crud, perm_names[p]))) m->bits |= 1u << p;
  }
  qsort(pv->m, pv->n, sizeof pv->m[0], menu_sort);
  *out = pv;
  return MISCACHE_OK;
}

typedef struct {
  const char *menu;
  size_t len;
  unsigned bit;
  bool *allowed;
} perm_ask_t;

static void perm_view_read(const void *view, void *ud) {
  const perm_view_t *pv = view;
  perm_ask_t *q = ud;
  size_t lo = 0, hi = pv->n;
  *q->allowed = false; /* a menu absent from the map denies */
  if (pv->n <= 8) { /* a few menus: the length tells most apart */
    for (size_t i = 0; i < pv->n; i++)
      if (pv->m[i].len == q->len && memcmp(pv->m[i].name, q->menu, q->len) == 0) {
        *q->allowed = (pv->m[i].bits & q->bit) != 0;
        return;
      }
    return;
  }
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = menu_cmp(q->menu, q->len, pv->m[mid].name, pv->m[mid].len);
    if (c == 0) {
      *q->allowed = (pv->m[mid].bits & q->bit) != 0;
      return;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
}

static const miscache__near_view_t perm_view = {perm_view_make, perm_view_read,
                                                free, false};

/* The near hit of both check calls, before anything else is set up:
 * true with *allowed and *source set. */
static bool check_near(miscache_t *mc, int64_t user_id, const char *menu,
                       miscache_perm_t perm, bool *allowed,
                       miscache_source_t *source) {
  if (!mc || !mc->near || !menu || !allowed || (unsigned)perm >= 4)
    return false;
  perm_ask_t q = {menu, strlen(menu), 1u << perm, allowed};
  miscache__fullkey_t fk;
  if (!miscache__fullkey_int(mc, MISCACHE_KF_PERMISSIONS, user_id, &fk) ||
      !miscache__near_view_get(mc, MISCACHE_KF_PERMISSIONS, &fk,
                               MISCACHE_CAT_PERMISSIONS, &perm_view, &q))
    return false;
  if (source) *source = MISCACHE_SOURCE_CACHE;
  return true;
}

/* The check through the cache (its near hit already tried by the caller). */
static miscache_status_t check_through(miscache_t *mc, int64_t user_id,
                                       const char *menu, miscache_perm_t perm,
                                       miscache_load_fn load, void *userdata,
                                       bool *allowed,
                                       miscache_source_t *source) {
  if (allowed) *allowed = false;
  if (source) *source = MISCACHE_SOURCE_NONE;
  if (!mc) return MISCACHE_ERR_INVALID;
  if (!menu || !allowed || !load || (unsigned)perm >= 4) {
    miscache__set_err(mc, "miscache_permissions_check: bad argument");
    return MISCACHE_ERR_INVALID;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_status_t st = perm_key(mc, user_id, key);
  if (st != MISCACHE_OK) return st;
  /* a cached map of the wrong shape is a miss that the loader replaces */
  json_t *map = NULL;
  miscache__aside_t a = {.db = miscache__kf_db(MISCACHE_KF_PERMISSIONS),
                         .key = key,
                         .ttl = MISCACHE__KF_TTL(MISCACHE_KF_PERMISSIONS),
                         .load = load,
                         .userdata = userdata,
                         .family = MISCACHE_KF_PERMISSIONS,
                         .id = user_id,
                         .accept = accept_map};
  st = miscache__cache_aside(mc, &a, &map, source);
  if (st != MISCACHE_OK) return st;
  *allowed = json_is_true(
      json_object_get(json_object_get(map, menu), perm_names[perm]));
  json_decref(map);
  return MISCACHE_OK;
}

miscache_status_t miscache_permissions_check_ex(
    miscache_t *mc, int64_t user_id, const char *menu, miscache_perm_t perm,
    miscache_load_fn load, void *userdata, bool *allowed,
    miscache_source_t *source) {
  if (load && check_near(mc, user_id, menu, perm, allowed, source))
    return MISCACHE_OK;
  return check_through(mc, user_id, menu, perm, load, userdata, allowed,
                       source);
}

miscache_status_t miscache_permissions_check(miscache_t *mc, int64_t user_id,
                                             const char *menu,
                                             miscache_perm_t perm,
                                             miscache_loader_fn loader,
                                             void *userdata, bool *allowed,
                                             miscache_source_t *source) {
  if (loader && check_near(mc, user_id, menu, perm, allowed, source))
    return MISCACHE_OK;
  miscache__legacy_t old = {loader, userdata};
  return check_through(mc, user_id, menu, perm,
                       loader ? miscache__legacy_load : NULL, &old, allowed,
                       source);
}

/* ---- async (async.h) ------------------------------------------------------ */

typedef struct {
  miscache_async_bool_fn fn;
  void *ud;
  miscache_perm_t perm;
  char menu[]; /* copied: the caller's may be gone when the reply comes */
} check_ctx_t;

static void check_fin(void *p, miscache_status_t st, json_t *map,
                      miscache_source_t source, const char *why) {
  (void)source;
  check_ctx_t *c = p;
  bool allowed = st == MISCACHE_OK &&
                 json_is_true(json_object_get(json_object_get(map, c->menu),
                                              perm_names[c->perm]));
  json_decref(map);
  c->fn(c->ud, st, allowed, why);
  free(c);
}

miscache_status_t miscache_async_permissions_check(
    miscache_async_t *a, int64_t user_id, const char *menu,
    miscache_perm_t perm, miscache_async_load_fn load, void *load_userdata,
    miscache_async_bool_fn fn, void *userdata) {
  miscache_status_t st = miscache__async_check(
      a, menu && load && fn && (unsigned)perm < 4,
      "miscache_async_permissions_check");
  if (st != MISCACHE_OK) return st;
  miscache_t *mc = miscache__async_mc(a);
  bool allowed = false;
  if (check_near(mc, user_id, menu, perm, &allowed, NULL)) {
    miscache__async_enter(a); /* answered now, without the loop */
    fn(userdata, MISCACHE_OK, allowed, "");
    miscache__async_leave(a);
    return MISCACHE_OK;
  }
  char key[MISCACHE_KEY_BUFSIZE];
  st = perm_key(mc, user_id, key);
  if (st != MISCACHE_OK) {
    miscache__async_refuse(a, "%s", mc->err);
    return st;
  }
  size_t ml = strlen(menu);
  check_ctx_t *c = malloc(sizeof *c + ml + 1);
  if (!c) {
    miscache__async_refuse(a, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  c->fn = fn;
  c->ud = userdata;
  c->perm = perm;
  memcpy(c->menu, menu, ml + 1);
  miscache__async_aside_t spec = {
      .base = {.db = miscache__kf_db(MISCACHE_KF_PERMISSIONS),
               .key = key,
               .ttl = MISCACHE__KF_TTL(MISCACHE_KF_PERMISSIONS),
               .family = MISCACHE_KF_PERMISSIONS,
               .id = user_id,
               .accept = accept_map},
      .load = load,
      .load_ud = load_userdata};
  st = miscache__async_aside(a, &spec, check_fin, c);
  if (st != MISCACHE_OK) free(c);
  return st;
}

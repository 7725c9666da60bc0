/* Master data: JSON arrays in db cache. */
#include <stdio.h>
#include <stdlib.h>

#include "domain/domain.h"

static const miscache_key_family_id_t list_families[] = {
    MISCACHE_KF_MASTER_DEPARTMENTS, MISCACHE_KF_MASTER_BRANDS,
    MISCACHE_KF_MASTER_COMPANIES};

typedef struct {
  char key[MISCACHE_KEY_BUFSIZE];
  miscache_db_t db;
  int64_t ttl; /* MISCACHE__KF_TTL: drawn when stored */
  int family;
  int64_t id; /* the category of products, else 0 */
} target_t;

static miscache_status_t list_target(miscache_t *mc, miscache_master_list_t l,
                                     target_t *t) {
  if ((unsigned)l > MISCACHE_MASTER_COMPANIES) {
    miscache__set_err(mc, "master list %d out of range", (int)l);
    return MISCACHE_ERR_INVALID;
  }
  t->db = miscache__kf_db(list_families[l]);
  t->ttl = MISCACHE__KF_TTL(list_families[l]);
  t->family = list_families[l];
  t->id = 0;
  return miscache__kf_key(mc, list_families[l], t->key);
}

static miscache_status_t products_target(miscache_t *mc, int64_t category,
                                         target_t *t) {
  t->db = miscache__kf_db(MISCACHE_KF_MASTER_PRODUCTS);
  t->ttl = MISCACHE__KF_TTL(MISCACHE_KF_MASTER_PRODUCTS);
  t->family = MISCACHE_KF_MASTER_PRODUCTS;
  t->id = category;
  return miscache__kf_key_int(mc, MISCACHE_KF_MASTER_PRODUCTS, t->key,
                              category);
}

static miscache_status_t put(miscache_t *mc, const target_t *t,
                             const json_t *list) {
  if (!json_is_array(list)) {
    miscache__set_err(mc, "%s: value must be a JSON array", t->key);
    return MISCACHE_ERR_INVALID;
  }
  return miscache_set_ttl_ms(mc, t->db, t->key, list,
                             miscache__ttl_resolve(mc, t->ttl));
}

static miscache_status_t fetch(miscache_t *mc, const target_t *t,
                               json_t **out) {
  if (out) *out = NULL;
  if (!out) {
    miscache__set_err(mc, "%s: out is NULL", t->key);
    return MISCACHE_ERR_INVALID;
  }
  json_t *v = NULL;
  miscache_status_t st = miscache_get(mc, t->db, t->key, &v);
  if (st == MISCACHE_OK && !json_is_array(v)) {
    json_decref(v);
    miscache__hit_unusable(mc, t->db, t->key);
    miscache__set_err(mc, "value of %s is not a JSON array", t->key);
    return MISCACHE_ERR_DECODE;
  }
  if (st == MISCACHE_OK) *out = v;
  return st;
}

/* Master data are JSON arrays: anything else cached is a miss, and a
 * loader value that is not an array is refused before it is cached. */
static miscache_status_t accept_array(void *ud, json_t *v, char *why,
                                      size_t whylen) {
  (void)ud;
  if (json_is_array(v)) return MISCACHE_OK;
  snprintf(why, whylen, "not a JSON array");
  return MISCACHE_ERR_DECODE;
}

static miscache_status_t through(miscache_t *mc, const target_t *t,
                                 miscache_load_fn load, void *userdata,
                                 json_t **out, miscache_source_t *source) {
  if (!load) {
    miscache__set_err(mc, "%s: loader is NULL", t->key);
    return MISCACHE_ERR_INVALID;
  }
  miscache__aside_t a = {.db = t->db,
                         .key = t->key,
                         .ttl = t->ttl,
                         .load = load,
                         .userdata = userdata,
                         .family = t->family,
                         .id = t->id,
                         .accept = accept_array};
  return miscache__cache_aside(mc, &a, out, source);
}

/* through() with a loader of the old shape. */
static miscache_status_t through_old(miscache_t *mc, const target_t *t,
                                     miscache_loader_fn loader, void *userdata,
                                     json_t **out, miscache_source_t *source) {
  miscache__legacy_t old = {loader, userdata};
  return through(mc, t, loader ? miscache__legacy_load : NULL, &old, out,
                 source);
}

#define WITH_TARGET(make, call)                                                \
  do {                                                                         \
    if (!mc) return MISCACHE_ERR_INVALID;                                      \
    target_t t;                                                                \
    miscache_status_t st_ = (make);                                            \
    if (st_ != MISCACHE_OK) return st_;                                        \
    return (call);                                                             \
  } while (0)

miscache_status_t miscache_master_set(miscache_t *mc, miscache_master_list_t l,
                                      const json_t *list) {
  WITH_TARGET(list_target(mc, l, &t), put(mc, &t, list));
}

/* The near cache's form of a list: the array itself, checked once. */
static miscache_status_t array_view_make(const json_t *v, void **view) {
  if (!json_is_array(v)) return MISCACHE_ERR_DECODE;
  *view = (void *)v; /* the entry's own: lives as long as the entry */
  return MISCACHE_OK;
}
static void array_view_read(const void *view, void *ud) {
  *(json_t **)ud = json_incref((json_t *)view);
}
static void array_view_free(void *view) { (void)view; }
static const miscache__near_view_t array_view = {
    array_view_make, array_view_read, array_view_free, true};

miscache_status_t miscache_master_get(miscache_t *mc, miscache_master_list_t l,
                                      json_t **out) {
  miscache__fullkey_t fk;
  if (mc && mc->near && out && (unsigned)l <= MISCACHE_MASTER_COMPANIES &&
      miscache__fullkey_fixed(mc, list_families[l], &fk) &&
      miscache__near_view_get(mc, list_families[l], &fk, MISCACHE_CAT_MASTER,
                              &array_view, out))
    return MISCACHE_OK;
  WITH_TARGET(list_target(mc, l, &t), fetch(mc, &t, out));
}

miscache_status_t miscache_master_get_or_load(miscache_t *mc,
                                              miscache_master_list_t l,
                                              miscache_loader_fn loader,
                                              void *userdata, json_t **out,
                                              miscache_source_t *source) {
  WITH_TARGET(list_target(mc, l, &t),
              through_old(mc, &t, loader, userdata, out, source));
}

miscache_status_t miscache_master_get_or_load_ex(miscache_t *mc,
                                                 miscache_master_list_t l,
                                                 miscache_load_fn load,
                                                 void *userdata, json_t **out,
                                                 miscache_source_t *source) {
  WITH_TARGET(list_target(mc, l, &t),
              through(mc, &t, load, userdata, out, source));
}

miscache_status_t miscache_master_products_set(miscache_t *mc,
                                               int64_t category_id,
                                               const json_t *list) {
  WITH_TARGET(products_target(mc, category_id, &t), put(mc, &t, list));
}

miscache_status_t miscache_master_products_get(miscache_t *mc,
                                               int64_t category_id,
                                               json_t **out) {
  WITH_TARGET(products_target(mc, category_id, &t), fetch(mc, &t, out));
}

miscache_status_t miscache_master_products_get_or_load(
    miscache_t *mc, int64_t category_id, miscache_loader_fn loader,
    void *userdata, json_t **out, miscache_source_t *source) {
  WITH_TARGET(products_target(mc, category_id, &t),
              through_old(mc, &t, loader, userdata, out, source));
}

miscache_status_t miscache_master_products_get_or_load_ex(
    miscache_t *mc, int64_t category_id, miscache_load_fn load, void *userdata,
    json_t **out, miscache_source_t *source) {
  WITH_TARGET(products_target(mc, category_id, &t),
              through(mc, &t, load, userdata, out, source));
}

/* ---- async (async.h) ------------------------------------------------------ */

/* The async aside of target t, once made is OK (else refused with its
 * message). */
static miscache_status_t async_through(miscache_async_t *a,
                                       miscache_status_t made,
                                       const target_t *t,
                                       miscache_async_load_fn load,
                                       void *load_ud,
                                       miscache_async_source_fn fn, void *ud) {
  if (made != MISCACHE_OK) {
    miscache__async_refuse(a, "%s", miscache__async_mc(a)->err);
    return made;
  }
  miscache__async_source_ctx_t *c = malloc(sizeof *c);
  if (!c) {
    miscache__async_refuse(a, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  c->fn = fn;
  c->ud = ud;
  miscache__async_aside_t spec = {.base = {.db = t->db,
                                           .key = t->key,
                                           .ttl = t->ttl,
                                           .family = t->family,
                                           .id = t->id,
                                           .accept = accept_array},
                                  .load = load,
                                  .load_ud = load_ud};
  miscache_status_t st =
      miscache__async_aside(a, &spec, miscache__async_source_fin, c);
  if (st != MISCACHE_OK) free(c);
  return st;
}

miscache_status_t miscache_async_master_get_or_load(
    miscache_async_t *a, miscache_master_list_t l, miscache_async_load_fn load,
    void *load_userdata, miscache_async_source_fn fn, void *userdata) {
  miscache_status_t st = miscache__async_check(
      a, load && fn, "miscache_async_master_get_or_load");
  target_t t;
  return st != MISCACHE_OK
             ? st
             : async_through(a, list_target(miscache__async_mc(a), l, &t), &t,
                             load, load_userdata, fn, userdata);
}

miscache_status_t miscache_async_master_products_get_or_load(
    miscache_async_t *a, int64_t category_id, miscache_async_load_fn load,
    void *load_userdata, miscache_async_source_fn fn, void *userdata) {
  miscache_status_t st = miscache__async_check(
      a, load && fn, "miscache_async_master_products_get_or_load");
  target_t t;
  return st != MISCACHE_OK
             ? st
             : async_through(a,
                             products_target(miscache__async_mc(a),
                                             category_id, &t),
                             &t, load, load_userdata, fn, userdata);
}

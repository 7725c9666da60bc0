/* The keyspace table as JSON (miscache_keyspace_json): every family with
 * its key parts, db, TTL and payload members, every invalidation event
 * with the keys it removes, the URL parameters and the lock scripts. Built
 * from the tables the library itself runs on, so another language's client
 * driven by it cannot drift from this one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

/* Set a new value; false (and v freed) when out of memory. */
static bool put(json_t *obj, const char *k, json_t *v) {
  return v && json_object_set_new(obj, k, v) == 0;
}

static bool push(json_t *arr, json_t *v) {
  return v && json_array_append_new(arr, v) == 0;
}

static const char *ftype_name(miscache__ftype_t t) {
  switch (t) {
  case MISCACHE__F_INT: return "integer";
  case MISCACHE__F_DOUBLE: return "number";
  case MISCACHE__F_BOOL: return "boolean";
  case MISCACHE__F_STRING: return "string";
  case MISCACHE__F_STRINGS: return "strings";
  case MISCACHE__F_OBJECT: return "object";
  case MISCACHE__F_JSON: return "any";
  }
  return "any";
}

/* [{name, type, required[, members]}] of a payload. */
static json_t *members(const miscache__payload_t *d) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    json_t *m = json_object();
    bool ok = m && put(m, "name", json_string(f->name)) &&
              put(m, "type", json_string(ftype_name(f->type))) &&
              put(m, "required", json_boolean(f->required));
    if (ok && f->type == MISCACHE__F_OBJECT)
      ok = put(m, "members", members(f->sub));
    if (!ok || !push(arr, m)) {
      if (!ok) json_decref(m);
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

/* What a stored value of family f must be for the library to use it. */
static json_t *value_shape(miscache_key_family_id_t f) {
  static const struct {
    miscache_key_family_id_t f;
    const miscache__payload_t *d;
  } typed[] = {
      {MISCACHE_KF_SESSION, &miscache__session_payload},
      {MISCACHE_KF_BATCH_CONFIG, &miscache__batch_config_payload},
      {MISCACHE_KF_BATCH_STATUS, &miscache__batch_status_payload},
      {MISCACHE_KF_BATCH_HISTORY, &miscache__batch_history_payload},
      {MISCACHE_KF_GIFT_RULES, &miscache__gift_rules_payload},
      {MISCACHE_KF_GIFT_CLASSIFICATION, &miscache__gift_class_payload},
      {MISCACHE_KF_DAILY_SALES, &miscache__daily_sales_payload},
      {MISCACHE_KF_EXCEL_UPLOAD, &miscache__upload_payload},
  };
  const char *payload = miscache__families[f].payload;
  json_t *v = json_object();
  if (!v) return NULL;
  for (size_t i = 0; i < sizeof typed / sizeof *typed; i++)
    if (typed[i].f == f) {
      if (put(v, "type", json_string("object")) &&
          put(v, "members", members(typed[i].d)))
        return v;
      json_decref(v);
      return NULL;
    }
  bool ok;
  if (f == MISCACHE_KF_GIFT_MASTER) {
    ok = put(v, "type", json_string("array")) &&
         put(v, "items", json_string("object")) &&
         put(v, "members", members(&miscache__gift_master_payload));
  } else if (f == MISCACHE_KF_PERMISSIONS) {
    json_t *flags = json_array();
    for (int p = 0; flags && p < 4; p++)
      if (!push(flags, json_string(miscache_perm_name((miscache_perm_t)p)))) {
        json_decref(flags);
        flags = NULL;
      }
    /* {menu: {create?, read?, update?, delete?: boolean}} */
    ok = put(v, "type", json_string("permissions")) && put(v, "flags", flags);
  } else if (!strcmp(payload, "JSON array")) {
    ok = put(v, "type", json_string("array"));
  } else if (!strcmp(payload, "integer")) {
    ok = put(v, "type", json_string("integer"));
  } else if (!strcmp(payload, "lock")) {
    ok = put(v, "type", json_string("lock"));
  } else {
    ok = put(v, "type", json_string("any"));
  }
  if (!ok) {
    json_decref(v);
    return NULL;
  }
  return v;
}

static json_t *id_parts(const miscache_key_family_t *k) {
  json_t *arr = json_array();
  const char *p = k->ids;
  for (size_t i = 0; arr && i < k->nids; i++) {
    size_t n = strcspn(p, " ");
    json_t *id = json_object();
    bool ok = id && put(id, "name", json_stringn(p, n)) &&
              put(id, "kind", json_string(miscache__id_kind(p, n)));
    if (!ok || !push(arr, id)) {
      if (!ok) json_decref(id);
      json_decref(arr);
      return NULL;
    }
    p += n + (p[n] == ' ');
  }
  return arr;
}

static json_t *family(miscache_key_family_id_t f) {
  const miscache_key_family_t *k = &miscache__families[f];
  json_t *o = json_object();
  int ci = miscache__family_company_index(k);
  const char *near = (MISCACHE__NEAR_NEVER >> f) & 1     ? "never"
                     : (MISCACHE__NEAR_DEFAULT >> f) & 1 ? "default"
                                                         : "allowed";
  bool ok =
      o && put(o, "name", json_string(k->name)) &&
      put(o, "prefix", json_string(k->prefix)) &&
      put(o, "ids", id_parts(k)) &&
      put(o, "db", json_string(miscache_db_name(k->db))) &&
      put(o, "db_number", json_integer(k->db)) &&
      put(o, "ttl_class",
          k->ttl_class < 0
              ? json_null()
              : json_string(miscache_ttl_class_name(
                    (miscache_ttl_class_t)k->ttl_class))) &&
      put(o, "ttl_seconds",
          k->ttl_class < 0 ? json_null()
                           : json_integer(miscache_ttl_default(
                                 (miscache_ttl_class_t)k->ttl_class))) &&
      put(o, "company_scoped", json_boolean(ci >= 0)) &&
      put(o, "company_id", ci >= 0 ? json_integer(ci) : json_null()) &&
      put(o, "category",
          json_string(miscache_category_name(miscache__category_of(k->prefix)))) &&
      put(o, "near", json_string(near)) &&
      put(o, "payload", json_string(k->payload)) &&
      put(o, "value", value_shape(f));
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* "gift:classification:*:<COMPANY>": the key or pattern a step removes,
 * with the event's argument names in angle brackets. */
static json_t *step_match(const miscache__inval_event_t *e,
                          const miscache__event_step_t *s) {
  const miscache_key_family_t *k = miscache_key_family(s->family);
  char buf[256];
  size_t n = 0;
  miscache__appendf(buf, sizeof buf, &n, "%s%s", k->prefix,
                    s->prefix_glob ? "*" : "");
  for (size_t i = 0; !s->prefix_glob && i < k->nids && i < 2; i++) {
    if (s->ids[i] < 0) {
      miscache__appendf(buf, sizeof buf, &n, ":*");
      continue;
    }
    /* the argument's name: word ids[i] of the event's args */
    const char *a = e->args;
    for (int w = 0; w < s->ids[i]; w++) a = strchr(a, ' ') + 1;
    miscache__appendf(buf, sizeof buf, &n, ":<%.*s>", (int)strcspn(a, " ."), a);
  }
  return json_string(buf);
}

static json_t *event(const miscache__inval_event_t *e) {
  json_t *o = json_object(), *args = json_array(), *steps = json_array();
  bool ok = o && args && steps;
  for (const char *a = e->args; ok && *a;) {
    size_t n = strcspn(a, " ");
    ok = push(args, json_stringn(a, n));
    a += n + (a[n] == ' ');
  }
  for (size_t i = 0; ok && i < e->nsteps; i++) {
    const miscache__event_step_t *s = &e->steps[i];
    const miscache_key_family_t *k = miscache_key_family(s->family);
    bool pattern = s->prefix_glob;
    for (size_t j = 0; j < k->nids && j < 2; j++)
      pattern = pattern || s->ids[j] < 0;
    json_t *st = json_object();
    ok = st && put(st, "family", json_string(k->name)) &&
         put(st, "db", json_string(miscache_db_name(k->db))) &&
         put(st, "match", step_match(e, s)) &&
         put(st, "pattern", json_boolean(pattern)) &&
         put(st, "prefix_glob", json_boolean(s->prefix_glob));
    if (!ok || !push(steps, st)) {
      if (!ok) json_decref(st);
      ok = false;
    }
  }
  ok = ok && put(o, "name", json_string(e->name)) && put(o, "args", args);
  args = NULL;
  ok = ok && put(o, "per_company", json_boolean(strstr(e->args, "...") != NULL)) &&
       put(o, "steps", steps);
  steps = NULL;
  if (!ok) {
    json_decref(o);
    json_decref(args);
    json_decref(steps);
    return NULL;
  }
  return o;
}

/* The URL parameters: each settings one with its kind, bounds and default
 * (as miscache_url_describe prints it), then the endpoint ones. */
static json_t *url_params(void) {
  json_t *arr = json_array();
  char text[8192];
  miscache_options_t o;
  miscache__options_defaults(&o);
  miscache__options_describe(&o, text, sizeof text);
  for (int s = 0; arr && s < MISCACHE__SET_COUNT; s++) {
    int64_t lo, hi;
    const char *kind;
    miscache__setting_range((miscache__set_t)s, &lo, &hi, &kind);
    const char *name = miscache__setting_name((miscache__set_t)s);
    char want[80];
    snprintf(want, sizeof want, "\n%s=", name);
    const char *d = strstr(text, want);
    json_t *p = json_object();
    bool ok = p && put(p, "name", json_string(name)) &&
              put(p, "kind", json_string(kind));
    if (ok && !strcmp(kind, "int"))
      ok = put(p, "min", json_integer(lo)) && put(p, "max", json_integer(hi));
    if (ok && !strcmp(kind, "namespace"))
      ok = put(p, "max", json_integer(hi));
    if (ok && d) {
      d += strlen(want);
      ok = put(p, "default", json_stringn(d, strcspn(d, "\n")));
    }
    if (ok && s == MISCACHE__SET_TLS_INSECURE)
      ok = put(p, "needs", json_string("tls")) &&
           put(p, "default", json_string("false"));
    if (!ok || !push(arr, p)) {
      if (!ok) json_decref(p);
      json_decref(arr);
      return NULL;
    }
  }
  static const char *const endpoint[][2] = {{"cacert", "tls"},
                                           {"cert", "tls"},
                                           {"key", "tls"},
                                           {"sentinel_user", "sentinel"},
                                           {"sentinel_password", "sentinel"}};
  for (size_t i = 0; arr && i < sizeof endpoint / sizeof *endpoint; i++) {
    json_t *p = json_object();
    bool ok = p && put(p, "name", json_string(endpoint[i][0])) &&
              put(p, "kind", json_string("text")) &&
              put(p, "needs", json_string(endpoint[i][1]));
    if (!ok || !push(arr, p)) {
      if (!ok) json_decref(p);
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static json_t *name_list(int n, const char *(*name)(int)) {
  json_t *arr = json_array();
  for (int i = 0; arr && i < n; i++)
    if (!push(arr, json_string(name(i)))) {
      json_decref(arr);
      return NULL;
    }
  return arr;
}
static const char *db_name(int i) { return miscache_db_name((miscache_db_t)i); }
static const char *cat_name(int i) {
  return miscache_category_name((miscache_category_t)i);
}

static json_t *ttl_classes(void) {
  json_t *arr = json_array();
  for (int i = 0; arr && i < MISCACHE_TTL_CLASS_COUNT; i++) {
    json_t *c = json_pack("{s:s,s:I}", "name",
                          miscache_ttl_class_name((miscache_ttl_class_t)i),
                          "seconds",
                          (json_int_t)miscache_ttl_default((miscache_ttl_class_t)i));
    if (!push(arr, c)) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static json_t *scripts(void) {
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "release", miscache__lua_release,
                   "extend", miscache__lua_extend, "fence_acquire",
                   miscache__lua_fence_acquire, "heartbeat",
                   miscache__lua_heartbeat, "fenced_set",
                   miscache__lua_fenced_set, "takeover", miscache__lua_takeover);
}

char *miscache_keyspace_json(void) {
  json_t *root = json_object(), *fams = json_array(), *evs = json_array();
  bool ok = root && fams && evs;
  for (int f = 0; ok && f < MISCACHE_KEY_FAMILY_COUNT; f++)
    ok = push(fams, family((miscache_key_family_id_t)f));
  for (int e = 0; ok && e < MISCACHE__EVENT_COUNT; e++)
    ok = push(evs, event(&miscache__events[e]));
  ok = ok && put(root, "format", json_integer(1)) &&
       put(root, "library_version", json_string(miscache_version())) &&
       put(root, "key_max", json_integer(MISCACHE_KEY_MAX)) &&
       put(root, "namespace_max", json_integer(MISCACHE__NS_MAX)) &&
       put(root, "databases", name_list(MISCACHE_DB_COUNT, db_name)) &&
       put(root, "categories", name_list(MISCACHE_CATEGORY_COUNT, cat_name)) &&
       put(root, "ttl_classes", ttl_classes()) &&
       put(root, "families", fams);
  fams = NULL;
  ok = ok && put(root, "events", evs);
  evs = NULL;
  ok = ok && put(root, "url_parameters", url_params()) &&
       put(root, "scripts", scripts());
  char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                  : NULL;
  json_decref(root);
  json_decref(fams);
  json_decref(evs);
  return text;
}

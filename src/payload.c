/* Table-driven encode/decode of the fixed payloads (see payload.h). */
#include "payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(st, f, T) ((T *)((char *)(st) + (f)->offset))
#define CAT(st, f, T) ((const T *)((const char *)(st) + (f)->offset))

void miscache_strings_clear(miscache_strings_t *s) {
  if (!s) return;
  for (size_t i = 0; i < s->count; i++) free(s->items[i]);
  free(s->items);
  s->items = NULL;
  s->count = 0;
}

miscache_status_t miscache_strings_push(miscache_strings_t *s,
                                        const char *value) {
  if (!s || !value) return MISCACHE_ERR_INVALID;
  char **items = miscache__realloc_array(s->items, s->count + 1, sizeof *items);
  if (!items) return MISCACHE_ERR_NOMEM;
  s->items = items;
  if (!(items[s->count] = strdup(value))) return MISCACHE_ERR_NOMEM;
  s->count++;
  return MISCACHE_OK;
}

static json_t *encode_obj(const miscache__payload_t *d, const void *st,
                          const json_t *base, char *err, size_t errlen);

static json_t *encode_field(const miscache__field_t *f, const void *st,
                            const json_t *base, char *err, size_t errlen) {
  switch (f->type) {
  case MISCACHE__F_INT: return json_integer(*CAT(st, f, int64_t));
  case MISCACHE__F_DOUBLE: return json_real(*CAT(st, f, double));
  case MISCACHE__F_BOOL: return json_boolean(*CAT(st, f, bool));
  case MISCACHE__F_STRING: {
    const char *s = *CAT(st, f, char *);
    return s ? json_string(s) : json_null();
  }
  case MISCACHE__F_STRINGS: {
    const miscache_strings_t *a = CAT(st, f, miscache_strings_t);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < a->count; i++)
      if (!a->items[i] || json_array_append_new(arr, json_string(a->items[i]))) {
        json_decref(arr);
        arr = NULL;
      }
    return arr;
  }
  case MISCACHE__F_OBJECT:
    return encode_obj(f->sub, CAT(st, f, char),
                      json_object_get(base, f->name), err, errlen);
  case MISCACHE__F_JSON: {
    json_t *v = *(json_t *const *)((const char *)st + f->offset);
    return v ? json_incref(v) : json_null();
  }
  }
  return NULL;
}

static json_t *encode_obj(const miscache__payload_t *d, const void *st,
                          const json_t *base, char *err, size_t errlen) {
  json_t *obj = json_is_object(base) ? json_deep_copy(base) : json_object();
  if (!obj) {
    snprintf(err, errlen, "out of memory encoding %s", d->name);
    return NULL;
  }
  for (size_t i = 0; i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    json_t *v = encode_field(f, st, base, err, errlen);
    if (!v || json_object_set_new(obj, f->name, v)) {
      if (f->type != MISCACHE__F_OBJECT) /* a nested object said why */
        snprintf(err, errlen, "%s.%s cannot be encoded (invalid UTF-8?)",
                 d->name, f->name);
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

static json_t **extra_of(const miscache__payload_t *d, const void *st) {
  return d->extra_offset == MISCACHE__NO_EXTRA
             ? NULL
             : (json_t **)((char *)st + d->extra_offset);
}

json_t *miscache__payload_encode(const miscache__payload_t *d, const void *st,
                                 char *err, size_t errlen) {
  json_t **extra = extra_of(d, st);
  return encode_obj(d, st, extra ? *extra : NULL, err, errlen);
}

static miscache_status_t decode_field(const miscache__payload_t *d,
                                      const miscache__field_t *f,
                                      const json_t *v, void *st, char *err,
                                      size_t errlen) {
  const char *want = NULL;
  switch (f->type) {
  case MISCACHE__F_INT:
    if (!json_is_integer(v)) {
      want = "an integer";
      break;
    }
    *AT(st, f, int64_t) = json_integer_value(v);
    return MISCACHE_OK;
  case MISCACHE__F_DOUBLE:
    if (!json_is_number(v)) {
      want = "a number";
      break;
    }
    *AT(st, f, double) = json_number_value(v);
    return MISCACHE_OK;
  case MISCACHE__F_BOOL:
    if (!json_is_boolean(v)) {
      want = "true or false";
      break;
    }
    *AT(st, f, bool) = json_is_true(v);
    return MISCACHE_OK;
  case MISCACHE__F_STRING:
    if (json_is_null(v) && f->required) {
      want = "a string (it is required, and null)";
      break;
    }
    if (json_is_null(v)) return MISCACHE_OK;
    if (!json_is_string(v)) {
      want = "a string";
      break;
    }
    return (*AT(st, f, char *) = strdup(json_string_value(v)))
               ? MISCACHE_OK
               : MISCACHE_ERR_NOMEM;
  case MISCACHE__F_STRINGS: {
    if (!json_is_array(v)) {
      want = "an array of strings";
      break;
    }
    miscache_strings_t *a = AT(st, f, miscache_strings_t);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
      if (!json_is_string(e)) {
        want = "an array of strings";
        break;
      }
      if (miscache_strings_push(a, json_string_value(e)) != MISCACHE_OK)
        return MISCACHE_ERR_NOMEM;
    }
    if (want) break;
    return MISCACHE_OK;
  }
  case MISCACHE__F_OBJECT:
    if (!json_is_object(v)) {
      want = "an object";
      break;
    }
    return miscache__payload_decode(f->sub, v, AT(st, f, char), err, errlen);
  case MISCACHE__F_JSON:
    *AT(st, f, json_t *) = json_incref((json_t *)v);
    return MISCACHE_OK;
  }
  snprintf(err, errlen, "%s.%s is not %s", d->name, f->name, want);
  return MISCACHE_ERR_DECODE;
}

miscache_status_t miscache__payload_decode(const miscache__payload_t *d,
                                           const json_t *obj, void *st,
                                           char *err, size_t errlen) {
  if (!json_is_object(obj)) {
    snprintf(err, errlen, "%s is not a JSON object", d->name);
    return MISCACHE_ERR_DECODE;
  }
  for (size_t i = 0; i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    const json_t *v = json_object_get(obj, f->name);
    miscache_status_t st2 = MISCACHE_OK;
    if (!v) {
      if (f->required) {
        snprintf(err, errlen, "%s has no field %s", d->name, f->name);
        st2 = MISCACHE_ERR_DECODE;
      }
    } else {
      st2 = decode_field(d, f, v, st, err, errlen);
    }
    if (st2 != MISCACHE_OK) {
      if (st2 == MISCACHE_ERR_NOMEM) snprintf(err, errlen, "out of memory");
      miscache__payload_clear(d, st);
      return st2;
    }
  }
  json_t **extra = extra_of(d, st);
  if (extra) *extra = json_incref((json_t *)obj);
  return MISCACHE_OK;
}

void miscache__payload_clear(const miscache__payload_t *d, void *st) {
  json_t **extra = extra_of(d, st);
  if (extra) {
    json_decref(*extra);
    *extra = NULL;
  }
  for (size_t i = 0; i < d->nfields; i++) {
    const miscache__field_t *f = &d->fields[i];
    switch (f->type) {
    case MISCACHE__F_STRING:
      free(*AT(st, f, char *));
      *AT(st, f, char *) = NULL;
      break;
    case MISCACHE__F_STRINGS: miscache_strings_clear(AT(st, f, miscache_strings_t)); break;
    case MISCACHE__F_OBJECT: miscache__payload_clear(f->sub, AT(st, f, char)); break;
    case MISCACHE__F_JSON:
      json_decref(*AT(st, f, json_t *));
      *AT(st, f, json_t *) = NULL;
      break;
    case MISCACHE__F_INT: *AT(st, f, int64_t) = 0; break;
    case MISCACHE__F_DOUBLE: *AT(st, f, double) = 0; break;
    case MISCACHE__F_BOOL: *AT(st, f, bool) = false; break;
    }
  }
}

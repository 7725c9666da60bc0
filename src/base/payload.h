/* Payload descriptions: one table per JSON payload drives both encoding and
 * decoding of its C struct, so no domain file hand-writes either. */
#ifndef MISCACHE_PAYLOAD_H
#define MISCACHE_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"

typedef enum {
  MISCACHE__F_INT,     /* int64_t */
  MISCACHE__F_DOUBLE,  /* double (accepts JSON integers too) */
  MISCACHE__F_BOOL,    /* bool */
  MISCACHE__F_STRING,  /* char *, owned, NULL <-> JSON null / absent */
  MISCACHE__F_STRINGS, /* miscache_strings_t */
  MISCACHE__F_OBJECT,  /* nested struct described by .sub */
  MISCACHE__F_JSON     /* json_t *, owned reference, any JSON value */
} miscache__ftype_t;

typedef struct miscache__payload miscache__payload_t;

typedef struct miscache__field {
  const char *name;
  miscache__ftype_t type;
  size_t offset;
  const miscache__payload_t *sub; /* F_OBJECT */
  bool required;                  /* absent -> ERR_DECODE */
} miscache__field_t;

struct miscache__payload {
  const char *name; /* for messages: "session", "batch status" */
  const miscache__field_t *fields;
  size_t nfields;
  /* offset of the struct's `json_t *extra` (the stored object as read), or
   * MISCACHE__NO_EXTRA for nested structs, whose members the parent's
   * extra keeps */
  size_t extra_offset;
  size_t size; /* sizeof the struct; 0 for nested ones */
};
#define MISCACHE__NO_EXTRA ((size_t)-1)

#define MISCACHE__FIELD(st, member, type) \
  {#member, type, offsetof(st, member), NULL, false}
#define MISCACHE__FIELD_REQ(st, member, type) \
  {#member, type, offsetof(st, member), NULL, true}
#define MISCACHE__FIELD_OBJ(st, member, desc) \
  {#member, MISCACHE__F_OBJECT, offsetof(st, member), &(desc), false}
/* A stored payload: its struct has a `json_t *extra` member. */
#define MISCACHE__PAYLOAD(pname, st, fields) \
  {pname, fields, sizeof(fields) / sizeof((fields)[0]), offsetof(st, extra), \
   sizeof(st)}
/* A nested object of a payload. */
#define MISCACHE__PAYLOAD_NESTED(pname, fields) \
  {pname, fields, sizeof(fields) / sizeof((fields)[0]), MISCACHE__NO_EXTRA, 0}

/* New JSON object for the struct: a copy of the object it was read from
 * (its extra), every member the struct names set from the struct, so the
 * members another program stored and this struct does not know are kept.
 * NULL if out of memory or a string is not valid UTF-8 (err says which). */
json_t *miscache__payload_encode(const miscache__payload_t *d, const void *st,
                                 char *err, size_t errlen);
/* Fill a zeroed struct from a JSON object; the struct's extra keeps a
 * reference to the object, for the members it does not name. Absent
 * optional fields keep their zero value; a required field that is absent or
 * null is ERR_DECODE. ERR_DECODE (err names the field) or ERR_NOMEM; on
 * failure the struct is cleared. */
miscache_status_t miscache__payload_decode(const miscache__payload_t *d,
                                           const json_t *obj, void *st,
                                           char *err, size_t errlen);
/* The fast pair (json.c, payload.c). Decode straight from the stored bytes
 * into a zeroed struct, no tree: OK (extra stays NULL) when the value is an
 * object of only members the struct names, none nested, each once and of
 * the right type, every required one there; MISCACHE_MISS otherwise (the
 * struct is cleared): the caller decodes the tree, which keeps unknown
 * members in extra and words any error. Same struct as the tree path. */
miscache_status_t miscache__payload_decode_text(const miscache__payload_t *d,
                                                const char *buf, size_t len,
                                                void *st);
/* The struct's JSON text (free() it), byte for byte what
 * miscache__encode(miscache__payload_encode(...)) writes, without a tree:
 * when the struct has no extra and no nested object. NULL with *tree true:
 * use the tree path; NULL with *tree false: not encodable (err says why,
 * as the tree path would). */
char *miscache__payload_encode_text(const miscache__payload_t *d,
                                    const void *st, size_t *len, bool *tree,
                                    char *err, size_t errlen);
/* json.c's half of the fast pair: the struct filled from the bytes, or
 * MISS with whatever it got so far left in it (payload.c clears it). */
miscache_status_t miscache__json_decode_struct(const miscache__payload_t *d,
                                               const char *buf, size_t len,
                                               void *st);
/* Free what the struct owns and zero it. */
void miscache__payload_clear(const miscache__payload_t *d, void *st);

#endif

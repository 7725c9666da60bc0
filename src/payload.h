/* Payload descriptions: one table per JSON payload drives both encoding and
 * decoding of its C struct, so no domain file hand-writes either. */
#ifndef MISCACHE_PAYLOAD_H
#define MISCACHE_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

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
/* Free what the struct owns and zero it. */
void miscache__payload_clear(const miscache__payload_t *d, void *st);

/* ---- the top-level payloads, one per stored value shape ------------------ */
extern const miscache__payload_t miscache__session_payload;
extern const miscache__payload_t miscache__batch_config_payload;
extern const miscache__payload_t miscache__batch_status_payload;
extern const miscache__payload_t miscache__batch_history_payload;
extern const miscache__payload_t miscache__gift_rules_payload;
extern const miscache__payload_t miscache__gift_master_payload; /* an entry */
extern const miscache__payload_t miscache__gift_class_payload;
extern const miscache__payload_t miscache__daily_sales_payload;
extern const miscache__payload_t miscache__upload_payload;

/* The gift master list as a new JSON array; NULL if out of memory or an
 * entry does not encode (why says which field, when it is a field). */
json_t *
miscache__gift_master_encode(const miscache_gift_master_entry_t *entries,
                             size_t n, char *why, size_t whylen);
/* The gift master list: a JSON array of entries. OK with *entries (free
 * with miscache_gift_master_free) and *n; ERR_DECODE (why says where) or
 * ERR_NOMEM with *entries NULL and *n 0. */
miscache_status_t
miscache__gift_master_decode(const json_t *arr,
                             miscache_gift_master_entry_t **entries, size_t *n,
                             char *why, size_t whylen);

/* ---- typed access shared by the domain files (typed.c) ---------------- */
/* Key "<prefix>:<company>:<YYYYMMDD>" of family f (buf of
 * MISCACHE_KEY_BUFSIZE) after checking the date (ERR_KEY if bad). */
miscache_status_t miscache__key_company_date(miscache_t *mc, char *buf,
                                             miscache_key_family_id_t f,
                                             int64_t company, const char *date);
/* Read key and decode it into a zeroed *out. A value of the wrong shape is
 * ERR_DECODE and counts as a miss, like invalid JSON. */
miscache_status_t miscache__typed_get(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d, void *out);
/* Encode *in and store it under key for ttl_ms. */
miscache_status_t miscache__typed_set(miscache_t *mc, miscache_db_t db,
                                      const char *key,
                                      const miscache__payload_t *d,
                                      const void *in, int64_t ttl_ms);
/* Changes one stored payload in place: called with the stored object (any
 * members another program added included), it changes what it must and
 * returns OK, or a status that aborts the update (nothing is written). */
typedef miscache_status_t (*miscache__modify_fn)(miscache_t *mc, void *ud,
                                                 json_t *obj);
/* Read-modify-write that is safe with concurrent writers and keeps every
 * member of the stored value: WATCH + GET, modify, then MULTI / SET PX
 * ttl_ms / EXEC on the same connection, again (at most 16 times) when
 * another client changed the key in between. The stored value must decode
 * as d (ERR_DECODE otherwise). OK, MISS (no value), ERR_DECODE, ERR_BUSY
 * (still conflicting after 16 tries), the modify function's status, or a
 * transport status. */
miscache_status_t miscache__typed_update(miscache_t *mc, miscache_db_t db,
                                         const char *key,
                                         const miscache__payload_t *d,
                                         int64_t ttl_ms, miscache__modify_fn fn,
                                         void *ud);
/* Sets obj[name] to a new integer or string; ERR_NOMEM / ERR_ENCODE. */
miscache_status_t miscache__json_set_int(json_t *obj, const char *name,
                                         int64_t v);
miscache_status_t miscache__json_set_str(json_t *obj, const char *name,
                                         const char *v);
/* Fills a zeroed struct from the system of record. */
typedef miscache_status_t (*miscache__typed_loader_fn)(void *userdata,
                                                       void *out);
/* Typed cache-aside on a key of family f (its db and TTL): cached and
 * decodable, else loader -> store -> out, with one GET. A cached value of
 * the wrong shape is a miss the loader replaces. size = sizeof *out. */
miscache_status_t miscache__typed_get_or_load(
    miscache_t *mc, miscache_key_family_id_t f, const char *key,
    const miscache__payload_t *d, size_t size,
    miscache__typed_loader_fn loader, void *userdata, void *out,
    miscache_source_t *source);
/* ERR_KEY unless s is `digits` digits (8: YYYYMMDD, 6: YYYYMM) with a
 * month 01..12 and (8 digits) a day 01..31. */
miscache_status_t miscache__check_date(miscache_t *mc, const char *s,
                                       size_t digits);

#endif

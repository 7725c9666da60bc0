/*
 * Replies: read-only accessors over hiredis's redisReply, so nothing above
 * the transport sees a hiredis type, and the mapping of error replies to
 * statuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "internal.h"

miscache__rtype_t miscache__reply_type(const miscache__reply_t *r) {
  switch (((const redisReply *)r)->type) {
  case REDIS_REPLY_STRING: return MISCACHE__R_STRING;
  case REDIS_REPLY_ARRAY: return MISCACHE__R_ARRAY;
  case REDIS_REPLY_INTEGER: return MISCACHE__R_INTEGER;
  case REDIS_REPLY_NIL: return MISCACHE__R_NIL;
  case REDIS_REPLY_STATUS: return MISCACHE__R_STATUS;
  case REDIS_REPLY_ERROR: return MISCACHE__R_ERROR;
  default: return MISCACHE__R_OTHER;
  }
}

const char *miscache__reply_str(const miscache__reply_t *r, size_t *len) {
  const redisReply *rr = (const redisReply *)r;
  if (len) *len = rr->str ? rr->len : 0;
  return rr->str ? rr->str : "";
}

long long miscache__reply_int(const miscache__reply_t *r) {
  return ((const redisReply *)r)->integer;
}

size_t miscache__reply_count(const miscache__reply_t *r) {
  const redisReply *rr = (const redisReply *)r;
  return rr->type == REDIS_REPLY_ARRAY ? rr->elements : 0;
}

const miscache__reply_t *miscache__reply_at(const miscache__reply_t *r,
                                            size_t i) {
  const redisReply *rr = (const redisReply *)r;
  if (rr->type != REDIS_REPLY_ARRAY || i >= rr->elements) return NULL;
  return (const miscache__reply_t *)rr->element[i];
}

void miscache__reply_free(miscache__reply_t *r) {
  if (r) freeReplyObject(r);
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

miscache_status_t miscache__reply_error(const miscache__reply_t *r,
                                        const char *what, char *err,
                                        size_t errlen) {
  const char *text = miscache__reply_str(r, NULL);
  snprintf(err, errlen, "%s: %s", what, text);
  if (starts_with(text, "NOAUTH") || starts_with(text, "WRONGPASS"))
    return MISCACHE_ERR_AUTH;
  if (starts_with(text, "WRONGTYPE")) return MISCACHE_ERR_DECODE;
  if (starts_with(text, "LOADING") || starts_with(text, "BUSY") ||
      starts_with(text, "MASTERDOWN") || starts_with(text, "TRYAGAIN") ||
      starts_with(text, "READONLY") || starts_with(text, "MOVED ") ||
      starts_with(text, "ASK ") || starts_with(text, "CLUSTERDOWN"))
    return MISCACHE_ERR_UNAVAILABLE;
  return MISCACHE_ERR_SERVER;
}

/* ---- replies the dispatcher puts together (Cluster: a split command) ---- */

miscache__reply_t *miscache__reply_new_array(size_t n) {
  redisReply *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->type = REDIS_REPLY_ARRAY;
  r->elements = n;
  r->element = n ? calloc(n, sizeof *r->element) : NULL;
  if (n && !r->element) {
    free(r);
    return NULL;
  }
  return (miscache__reply_t *)r;
}

miscache__reply_t *miscache__reply_new_int(long long v) {
  redisReply *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->type = REDIS_REPLY_INTEGER;
  r->integer = v;
  return (miscache__reply_t *)r;
}

miscache__reply_t *miscache__reply_take(miscache__reply_t *array, size_t i) {
  redisReply *a = (redisReply *)array;
  if (a->type != REDIS_REPLY_ARRAY || i >= a->elements) return NULL;
  redisReply *e = a->element[i];
  a->element[i] = NULL; /* freeReplyObject skips NULL elements */
  return (miscache__reply_t *)e;
}

void miscache__reply_put(miscache__reply_t *array, size_t i,
                         miscache__reply_t *e) {
  redisReply *a = (redisReply *)array;
  a->element[i] = (redisReply *)e;
}

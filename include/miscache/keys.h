/*
 * libmiscache — key and pattern builder.
 *
 * A key is "prefix:id1:id2...", where prefix is a literal such as
 * "session:user" or "gift:classification" and every id is percent-encoded:
 * bytes outside the RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~) become
 * "%XX" (upper-case hex). So ":" "*" "?" "[" "]" "\\" space and control
 * bytes never reach a key verbatim, an id can never add a segment or widen a
 * pattern, and ordinary ids (numbers, codes such as P-001, dates) are
 * unchanged. Other languages get the same key with
 * Python's urllib.parse.quote(id, safe="").
 * An empty id is rejected (MISCACHE_ERR_KEY).
 * The handle's namespace is not part of these strings: the handle adds it.
 * All functions here are pure and thread-safe.
 */
#ifndef MISCACHE_KEYS_H
#define MISCACHE_KEYS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest key (or pattern) these builders produce, without the NUL. */
#define MISCACHE_KEY_MAX 1024
/* A buffer of this size holds any built key. */
#define MISCACHE_KEY_BUFSIZE (MISCACHE_KEY_MAX + 1)

/* Build prefix + ":" + encoded ids into buf (size bytes, NUL-terminated).
 * prefix: segments of [A-Za-z0-9_-] joined by ":" (e.g. "master:brands").
 * nids may be 0. *len_out (optional) gets strlen(buf).
 * Statuses: OK; ERR_INVALID (NULL buf/prefix/ids, size 0);
 * ERR_KEY (bad prefix, NULL or empty id, result longer than size-1 or than
 * MISCACHE_KEY_MAX). On error buf holds "". */
MISCACHE_EXPORT miscache_status_t
miscache_key_build(char *buf, size_t size, const char *prefix, size_t nids,
                   const char *const ids[], size_t *len_out);

/* Same as miscache_key_build with the ids as NULL-terminated arguments:
 * miscache_key(buf, sizeof buf, "gift:classification", code, company, NULL) */
MISCACHE_EXPORT miscache_status_t miscache_key(char *buf, size_t size,
                                               const char *prefix, ...);

/* Build a SCAN MATCH pattern: like miscache_key_build, but an id that is
 * NULL becomes a "*" segment (matches any one id, including ids with ":"
 * since encoded ids contain none). Encoded ids hold no glob character, so
 * only the "*" segments match more than one key:
 * {NULL, "1"} after "gift:classification" gives "gift:classification:*:1",
 * which does not match company 10 or 11. */
MISCACHE_EXPORT miscache_status_t
miscache_pattern_build(char *buf, size_t size, const char *prefix, size_t nids,
                       const char *const ids[], size_t *len_out);

/* Encode one id (as in keys) into buf. OK, ERR_INVALID, ERR_KEY. */
MISCACHE_EXPORT miscache_status_t miscache_id_encode(char *buf, size_t size,
                                                     const char *id,
                                                     size_t *len_out);
/* Decode a key segment made by miscache_id_encode. ERR_KEY if it holds a
 * byte that encoding never emits or a bad %XX. */
MISCACHE_EXPORT miscache_status_t miscache_id_decode(char *buf, size_t size,
                                                     const char *segment,
                                                     size_t *len_out);

/* Escape glob characters (* ? [ ] \) of a literal with a backslash so it can
 * stand in a hand-written SCAN pattern. OK, ERR_INVALID, ERR_KEY (too long). */
MISCACHE_EXPORT miscache_status_t miscache_glob_escape(char *buf, size_t size,
                                                       const char *literal,
                                                       size_t *len_out);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_KEYS_H */

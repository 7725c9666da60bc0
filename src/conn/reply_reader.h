/*
 * The RESP2 reader (reply.c) behind the transport: bytes in, replies out,
 * every reply within the limits. Only reply.c and transport.c include it.
 */
#ifndef MISCACHE_REPLY_READER_H
#define MISCACHE_REPLY_READER_H

#include "conn/conn.h"

typedef struct miscache__reader miscache__reader_t;

/* A reader with these limits (NULL: the defaults). NULL if out of memory. */
miscache__reader_t *miscache__reader_new(const miscache__limits_t *lim);
void miscache__reader_free(miscache__reader_t *rd); /* accepts NULL */
/* Where the next bytes read from the socket go (*avail bytes at most);
 * NULL when out of memory or after a failure. Then commit how many came. */
char *miscache__reader_space(miscache__reader_t *rd, size_t *avail);
void miscache__reader_commit(miscache__reader_t *rd, size_t n);
/* 1 with the next complete reply in *out (the caller's), 0 when it needs
 * more bytes, -1 on a protocol error or a reply over a limit (errstr says
 * which; the reader stays failed). */
int miscache__reader_get(miscache__reader_t *rd, miscache__reply_t **out);
const char *miscache__reader_errstr(const miscache__reader_t *rd);
/* Whether that failure was out of memory (not the server's doing). */
bool miscache__reader_oom(const miscache__reader_t *rd);
/* Bytes received and not yet handed out as a reply (plus 1 when a reply
 * is partly read): 0 on a connection in step between requests. */
size_t miscache__reader_pending(const miscache__reader_t *rd);
/* Let go of a large buffer once nothing is pending. */
void miscache__reader_trim(miscache__reader_t *rd);

#endif /* MISCACHE_REPLY_READER_H */

/* A scripted RESP server of our own, for the shapes a real redis-server
 * never sends: extra bytes after a reply, odd or short arrays, huge
 * headers, replies written one byte at a time, cursors that never end.
 *
 * It runs on a thread of the test, listening on a loopback port below
 * 32768, and answers each request (an array of bulk strings, as the
 * library sends) from its rules: the newest rule whose words match the
 * request's first words wins. Without a rule: PING -> +PONG; SELECT, AUTH,
 * READONLY, CLIENT ... -> +OK; anything else -> an error reply. */
#ifndef MT_FAKE_H
#define MT_FAKE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mt_fake mt_fake_t;

/* Start on a free port (mt_fake_port). NULL on failure. */
mt_fake_t *mt_fake_start(void);
/* Stop the thread, close every connection. Accepts NULL. */
void mt_fake_stop(mt_fake_t *f);
int mt_fake_port(const mt_fake_t *f);
/* "redis://127.0.0.1:PORT" (static per fake). */
const char *mt_fake_url(const mt_fake_t *f);

/* Answer requests whose first words are match (case-insensitive, e.g.
 * "GET", "CLUSTER SLOTS"; "*" matches anything) with these bytes, as they
 * are. times: how often (0: always). */
void mt_fake_on(mt_fake_t *f, const char *match, const char *bytes, size_t len,
                int times);
/* The same with a NUL-terminated reply. */
void mt_fake_on_str(mt_fake_t *f, const char *match, const char *bytes);

/* A rule computed per request: fn gets the request (argv[0] is the
 * command) and returns a malloc'd reply of *len bytes (NULL: no reply). */
typedef char *(*mt_fake_fn)(void *ud, int argc, char **argv, size_t *lens,
                            size_t *len);
void mt_fake_on_fn(mt_fake_t *f, const char *match, mt_fake_fn fn, void *ud);

/* Write every reply one byte at a time (each byte its own send). */
void mt_fake_dribble(mt_fake_t *f, bool on);
/* Send bytes now to every open connection, unasked. */
void mt_fake_push(mt_fake_t *f, const char *bytes, size_t len);
/* Requests seen whose first words match (same rule as mt_fake_on). */
long mt_fake_count(mt_fake_t *f, const char *match);
/* Connections accepted so far. */
int mt_fake_connections(mt_fake_t *f);

/* RESP helpers for building replies: a bulk string "$<n>\r\n<s>\r\n";
 * a malloc'd copy of a reply for an mt_fake_fn (its length in *len). */
char *mt_fake_bulk(const char *s);
char *mt_fake_on_reply_copy(const char *reply, size_t *len);

#endif

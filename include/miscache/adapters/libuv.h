/*
 * libmiscache — the async handle (async.h) on a libuv loop.
 *
 *   uv_loop_t *loop = uv_default_loop();
 *   miscache_async_t *a;  miscache_async_open(NULL, &a, err, sizeof err);
 *   miscache_libuv_attach(a, loop);
 *   miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, ctx);
 *   uv_run(loop, UV_RUN_DEFAULT);
 *
 * Header only; link with libuv (pkg-config libuv). The adapter's memory
 * goes with miscache_async_free() (its libuv handles close on the loop's
 * next turn).
 */
#ifndef MISCACHE_ADAPTERS_LIBUV_H
#define MISCACHE_ADAPTERS_LIBUV_H

#include <stdbool.h>
#include <stdlib.h>

#include <uv.h>

#include "../async.h"

/* One watched socket: its poll handle (first: the handle's memory is the
 * entry's, freed once libuv has closed it). A handle on a Redis Cluster
 * watches one socket per node it talks to. */
typedef struct miscache__uv_sock {
  uv_poll_t poll;
  struct miscache__uv_sock *next;
  struct miscache__libuv *u;
  int fd, events;
} miscache__uv_sock_t;

typedef struct miscache__libuv {
  uv_loop_t *loop;
  miscache__uv_sock_t *socks;
  uv_timer_t timer;
  miscache_async_t *a;
  bool *alive; /* set while a poll callback runs: cleared by cleanup */
} miscache__libuv_t;

static void miscache__uv_free_sock(uv_handle_t *h) { free(h->data); }
static void miscache__uv_free_self(uv_handle_t *h) { free(h->data); }

static void miscache__uv_on_poll(uv_poll_t *h, int status, int events) {
  miscache__uv_sock_t *s = (miscache__uv_sock_t *)h->data;
  miscache__libuv_t *u = s->u;
  int fd = s->fd; /* (s may be closed by the read) */
  bool alive = true;
  u->alive = &alive;
  miscache_async_t *a = u->a;
  /* an error on the socket: reading says what it is */
  if (status < 0 || (events & UV_READABLE)) miscache_async_handle_read_fd(a, fd);
  if (alive && (events & UV_WRITABLE)) miscache_async_handle_write_fd(a, fd);
  if (alive) u->alive = NULL;
}
static void miscache__uv_on_timer(uv_timer_t *t) {
  miscache_async_handle_timer(((miscache__libuv_t *)t->data)->a);
}

static void miscache__uv_close_sock(miscache__uv_sock_t *s) {
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, miscache__uv_free_sock);
}
/* Watch fd for events (0: stop; its poll handle goes, the socket may close
 * and its number come back for another). */
static void miscache__uv_apply(miscache__libuv_t *u, int fd, int events) {
  miscache__uv_sock_t **pp = &u->socks;
  while (*pp && (*pp)->fd != fd) pp = &(*pp)->next;
  miscache__uv_sock_t *s = *pp;
  if (!s && !events) return;
  if (!s) {
    s = (miscache__uv_sock_t *)calloc(1, sizeof *s);
    if (!s || uv_poll_init(u->loop, &s->poll, fd) != 0) {
      free(s);
      return;
    }
    s->poll.data = s;
    s->u = u;
    s->fd = fd;
    s->next = u->socks;
    u->socks = s;
    pp = &u->socks;
  }
  s->events = events;
  if (events) {
    uv_poll_start(&s->poll, events, miscache__uv_on_poll);
    return;
  }
  *pp = s->next;
  miscache__uv_close_sock(s);
}
static int miscache__uv_events(miscache__libuv_t *u, int fd) {
  for (miscache__uv_sock_t *s = u->socks; s; s = s->next)
    if (s->fd == fd) return s->events;
  return 0;
}
static void miscache__uv_add_read(void *d, int fd) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  miscache__uv_apply(u, fd, miscache__uv_events(u, fd) | UV_READABLE);
}
static void miscache__uv_del_read(void *d, int fd) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  miscache__uv_apply(u, fd, miscache__uv_events(u, fd) & ~UV_READABLE);
}
static void miscache__uv_add_write(void *d, int fd) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  miscache__uv_apply(u, fd, miscache__uv_events(u, fd) | UV_WRITABLE);
}
static void miscache__uv_del_write(void *d, int fd) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  miscache__uv_apply(u, fd, miscache__uv_events(u, fd) & ~UV_WRITABLE);
}
static void miscache__uv_set_timer(void *d, int64_t ms) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  if (ms < 0) uv_timer_stop(&u->timer);
  else uv_timer_start(&u->timer, miscache__uv_on_timer, (uint64_t)ms, 0);
}
static void miscache__uv_cleanup(void *d) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  if (u->alive) *u->alive = false;
  while (u->socks) {
    miscache__uv_sock_t *s = u->socks;
    u->socks = s->next;
    miscache__uv_close_sock(s);
  }
  uv_timer_stop(&u->timer);
  u->timer.data = u; /* freed once libuv has closed the timer */
  uv_close((uv_handle_t *)&u->timer, miscache__uv_free_self);
}

/* Attach a to loop. OK, ERR_NOMEM, or ERR_INVALID (already attached). */
static inline miscache_status_t miscache_libuv_attach(miscache_async_t *a,
                                                      uv_loop_t *loop) {
  miscache__libuv_t *u = (miscache__libuv_t *)calloc(1, sizeof *u);
  if (!u) return MISCACHE_ERR_NOMEM;
  u->loop = loop;
  u->a = a;
  uv_timer_init(loop, &u->timer);
  u->timer.data = u;
  miscache_async_loop_t l = {.data = u,
                             .add_read = miscache__uv_add_read,
                             .del_read = miscache__uv_del_read,
                             .add_write = miscache__uv_add_write,
                             .del_write = miscache__uv_del_write,
                             .set_timer = miscache__uv_set_timer,
                             .cleanup = miscache__uv_cleanup};
  miscache_status_t st = miscache_async_attach(a, &l);
  if (st != MISCACHE_OK) miscache__uv_cleanup(u);
  return st;
}

#endif /* MISCACHE_ADAPTERS_LIBUV_H */

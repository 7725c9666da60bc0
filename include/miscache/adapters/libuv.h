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

typedef struct miscache__libuv {
  uv_loop_t *loop;
  uv_poll_t *poll; /* of fd; NULL: none */
  int fd, events;
  uv_timer_t timer;
  miscache_async_t *a;
  bool *alive; /* set while a poll callback runs: cleared by cleanup */
} miscache__libuv_t;

static void miscache__uv_free_poll(uv_handle_t *h) { free(h); }
static void miscache__uv_free_self(uv_handle_t *h) { free(h->data); }

static void miscache__uv_on_poll(uv_poll_t *h, int status, int events) {
  miscache__libuv_t *u = (miscache__libuv_t *)h->data;
  bool alive = true;
  u->alive = &alive;
  miscache_async_t *a = u->a;
  /* an error on the socket: reading says what it is */
  if (status < 0 || (events & UV_READABLE)) miscache_async_handle_read(a);
  if (alive && (events & UV_WRITABLE)) miscache_async_handle_write(a);
  if (alive) u->alive = NULL;
}
static void miscache__uv_on_timer(uv_timer_t *t) {
  miscache_async_handle_timer(((miscache__libuv_t *)t->data)->a);
}

static void miscache__uv_apply(miscache__libuv_t *u, int fd, int events) {
  if (u->poll && u->fd != fd) { /* another socket: a new poll handle */
    uv_poll_stop(u->poll);
    uv_close((uv_handle_t *)u->poll, miscache__uv_free_poll);
    u->poll = NULL;
    u->events = 0;
  }
  if (!u->poll && events) {
    u->poll = (uv_poll_t *)calloc(1, sizeof *u->poll);
    if (!u->poll || uv_poll_init(u->loop, u->poll, fd) != 0) {
      free(u->poll);
      u->poll = NULL;
      return;
    }
    u->poll->data = u;
    u->fd = fd;
  }
  if (!u->poll) return;
  u->events = events;
  if (events) uv_poll_start(u->poll, events, miscache__uv_on_poll);
  else uv_poll_stop(u->poll);
}
static void miscache__uv_add_read(void *d, int fd) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  miscache__uv_apply(u, fd, (u->fd == fd ? u->events : 0) | UV_READABLE);
}
static void miscache__uv_del_read(void *d, int fd) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  if (u->fd == fd) miscache__uv_apply(u, fd, u->events & ~UV_READABLE);
}
static void miscache__uv_add_write(void *d, int fd) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  miscache__uv_apply(u, fd, (u->fd == fd ? u->events : 0) | UV_WRITABLE);
}
static void miscache__uv_del_write(void *d, int fd) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  if (u->fd == fd) miscache__uv_apply(u, fd, u->events & ~UV_WRITABLE);
}
static void miscache__uv_set_timer(void *d, int64_t ms) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  if (ms < 0) uv_timer_stop(&u->timer);
  else uv_timer_start(&u->timer, miscache__uv_on_timer, (uint64_t)ms, 0);
}
static void miscache__uv_cleanup(void *d) {
  miscache__libuv_t *u = (miscache__libuv_t *)d;
  if (u->alive) *u->alive = false;
  if (u->poll) {
    uv_poll_stop(u->poll);
    uv_close((uv_handle_t *)u->poll, miscache__uv_free_poll);
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
  u->fd = -1;
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

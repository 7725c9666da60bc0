/*
 * libmiscache — the async handle (async.h) on a libevent loop.
 *
 *   struct event_base *base = event_base_new();
 *   miscache_async_t *a;  miscache_async_open(NULL, &a, err, sizeof err);
 *   miscache_libevent_attach(a, base);
 *   miscache_async_get(a, MISCACHE_DB_CACHE, "k", on_value, ctx);
 *   event_base_dispatch(base);
 *
 * Header only; link with libevent (pkg-config libevent). The adapter's
 * memory goes with miscache_async_free().
 */
#ifndef MISCACHE_ADAPTERS_LIBEVENT_H
#define MISCACHE_ADAPTERS_LIBEVENT_H

#include <stdlib.h>

#include <event2/event.h>

#include "../async.h"

typedef struct miscache__libevent {
  struct event_base *base;
  struct event *rev, *wev, *tev;
  int fd;
  miscache_async_t *a;
} miscache__libevent_t;

static void miscache__ev_on_read(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  miscache_async_handle_read(((miscache__libevent_t *)arg)->a);
}
static void miscache__ev_on_write(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  miscache_async_handle_write(((miscache__libevent_t *)arg)->a);
}
static void miscache__ev_on_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  miscache_async_handle_timer(((miscache__libevent_t *)arg)->a);
}

/* The read and write events of fd (made anew when the socket changed). */
static void miscache__ev_bind(miscache__libevent_t *e, int fd) {
  if (e->fd == fd) return;
  if (e->rev) event_free(e->rev);
  if (e->wev) event_free(e->wev);
  e->rev = event_new(e->base, fd, EV_READ | EV_PERSIST, miscache__ev_on_read, e);
  e->wev = event_new(e->base, fd, EV_WRITE | EV_PERSIST, miscache__ev_on_write, e);
  e->fd = fd;
}
static void miscache__ev_add_read(void *d, int fd) {
  miscache__libevent_t *e = (miscache__libevent_t *)d;
  miscache__ev_bind(e, fd);
  if (e->rev) event_add(e->rev, NULL);
}
static void miscache__ev_del_read(void *d, int fd) {
  miscache__libevent_t *e = (miscache__libevent_t *)d;
  if (e->fd == fd && e->rev) event_del(e->rev);
}
static void miscache__ev_add_write(void *d, int fd) {
  miscache__libevent_t *e = (miscache__libevent_t *)d;
  miscache__ev_bind(e, fd);
  if (e->wev) event_add(e->wev, NULL);
}
static void miscache__ev_del_write(void *d, int fd) {
  miscache__libevent_t *e = (miscache__libevent_t *)d;
  if (e->fd == fd && e->wev) event_del(e->wev);
}
static void miscache__ev_set_timer(void *d, int64_t ms) {
  miscache__libevent_t *e = (miscache__libevent_t *)d;
  if (ms < 0) {
    evtimer_del(e->tev);
    return;
  }
  struct timeval tv = {(long)(ms / 1000), (long)(ms % 1000) * 1000};
  evtimer_add(e->tev, &tv);
}
static void miscache__ev_cleanup(void *d) {
  miscache__libevent_t *e = (miscache__libevent_t *)d;
  if (e->rev) event_free(e->rev);
  if (e->wev) event_free(e->wev);
  if (e->tev) event_free(e->tev);
  free(e);
}

/* Attach a to base. OK, ERR_NOMEM, or ERR_INVALID (already attached). */
static inline miscache_status_t miscache_libevent_attach(miscache_async_t *a,
                                                         struct event_base *base) {
  miscache__libevent_t *e = (miscache__libevent_t *)calloc(1, sizeof *e);
  if (!e) return MISCACHE_ERR_NOMEM;
  e->base = base;
  e->fd = -1;
  e->a = a;
  e->tev = evtimer_new(base, miscache__ev_on_timer, e);
  if (!e->tev) {
    free(e);
    return MISCACHE_ERR_NOMEM;
  }
  miscache_async_loop_t loop = {.data = e,
                                .add_read = miscache__ev_add_read,
                                .del_read = miscache__ev_del_read,
                                .add_write = miscache__ev_add_write,
                                .del_write = miscache__ev_del_write,
                                .set_timer = miscache__ev_set_timer,
                                .cleanup = miscache__ev_cleanup};
  miscache_status_t st = miscache_async_attach(a, &loop);
  if (st != MISCACHE_OK) miscache__ev_cleanup(e);
  return st;
}

#endif /* MISCACHE_ADAPTERS_LIBEVENT_H */

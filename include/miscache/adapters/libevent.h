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

#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "../async.h"

/* The read and write events of one socket (a handle on a Redis Cluster
 * watches one per node it talks to). */
typedef struct miscache__ev_sock {
  struct miscache__ev_sock *next;
  int fd;
  struct event *rev, *wev;
  bool reading, writing;
} miscache__ev_sock_t;

typedef struct miscache__libevent {
  struct event_base *base;
  struct event *tev;
  miscache__ev_sock_t *socks;
  miscache_async_t *a;
} miscache__libevent_t;

static void miscache__ev_on_read(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  miscache_async_handle_read_fd(((miscache__libevent_t *)arg)->a, (int)fd);
}
static void miscache__ev_on_write(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  miscache_async_handle_write_fd(((miscache__libevent_t *)arg)->a, (int)fd);
}
static void miscache__ev_on_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd, (void)what;
  miscache_async_handle_timer(((miscache__libevent_t *)arg)->a);
}

/* fd's entry, made when make (NULL: none, or out of memory). */
static miscache__ev_sock_t *miscache__ev_sock(miscache__libevent_t *e, int fd,
                                              bool make) {
  for (miscache__ev_sock_t *s = e->socks; s; s = s->next)
    if (s->fd == fd) return s;
  if (!make) return NULL;
  miscache__ev_sock_t *s = (miscache__ev_sock_t *)calloc(1, sizeof *s);
  if (!s) return NULL;
  s->fd = fd;
  s->rev = event_new(e->base, fd, EV_READ | EV_PERSIST, miscache__ev_on_read, e);
  s->wev = event_new(e->base, fd, EV_WRITE | EV_PERSIST, miscache__ev_on_write, e);
  s->next = e->socks;
  e->socks = s;
  return s;
}
static void miscache__ev_sock_free(miscache__ev_sock_t *s) {
  if (s->rev) event_free(s->rev);
  if (s->wev) event_free(s->wev);
  free(s);
}
/* Nothing watched on s any more: its events go (the socket may close and
 * its number come back for another). */
static void miscache__ev_sock_idle(miscache__libevent_t *e,
                                   miscache__ev_sock_t *s) {
  if (s->reading || s->writing) return;
  for (miscache__ev_sock_t **pp = &e->socks; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  miscache__ev_sock_free(s);
}
static void miscache__ev_add_read(void *d, int fd) {
  miscache__ev_sock_t *s = miscache__ev_sock((miscache__libevent_t *)d, fd, true);
  if (s && s->rev && event_add(s->rev, NULL) == 0) s->reading = true;
}
static void miscache__ev_del_read(void *d, int fd) {
  miscache__libevent_t *e = (miscache__libevent_t *)d;
  miscache__ev_sock_t *s = miscache__ev_sock(e, fd, false);
  if (!s) return;
  if (s->rev) event_del(s->rev);
  s->reading = false;
  miscache__ev_sock_idle(e, s);
}
static void miscache__ev_add_write(void *d, int fd) {
  miscache__ev_sock_t *s = miscache__ev_sock((miscache__libevent_t *)d, fd, true);
  if (s && s->wev && event_add(s->wev, NULL) == 0) s->writing = true;
}
static void miscache__ev_del_write(void *d, int fd) {
  miscache__libevent_t *e = (miscache__libevent_t *)d;
  miscache__ev_sock_t *s = miscache__ev_sock(e, fd, false);
  if (!s) return;
  if (s->wev) event_del(s->wev);
  s->writing = false;
  miscache__ev_sock_idle(e, s);
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
  while (e->socks) {
    miscache__ev_sock_t *s = e->socks;
    e->socks = s->next;
    miscache__ev_sock_free(s);
  }
  if (e->tev) event_free(e->tev);
  free(e);
}

/* Attach a to base. OK, ERR_NOMEM, or ERR_INVALID (already attached). */
static inline miscache_status_t miscache_libevent_attach(miscache_async_t *a,
                                                         struct event_base *base) {
  miscache__libevent_t *e = (miscache__libevent_t *)calloc(1, sizeof *e);
  if (!e) return MISCACHE_ERR_NOMEM;
  e->base = base;
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

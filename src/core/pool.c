/* Thread-safe pool of handles: a mutex, a condition variable, a free list.
 * Handles are opened lazily (no connect until first used). Counters of a
 * handle are added to the pool's totals when it is released, so reading
 * them never races with a thread using a handle. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

struct miscache_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  miscache__fork_guard_t guard; /* mu and cv across fork() */
  miscache_options_t opts;
  unsigned size;
  unsigned opened;
  unsigned nfree;
  miscache_t **free_list;
  miscache_t **all; /* every handle this pool opened: only these come back */
  miscache__pending_t *pending; /* shared by all its handles */
  miscache__near_t *near;       /* shared by all its handles, or NULL */
  miscache_counters_t totals[MISCACHE_DB_COUNT];
  miscache_counters_t categories[MISCACHE_CATEGORY_COUNT];
  miscache_latency_t latency;
};

/* Opens a handle that belongs to the pool (called without the lock for a
 * slot already reserved). */
static miscache_status_t pool_open(miscache_pool_t *p, miscache_t **out,
                                   char *errbuf, size_t errbuf_len) {
  miscache_status_t st = miscache_open(&p->opts, out, errbuf, errbuf_len);
  if (st != MISCACHE_OK) return st;
  miscache__pending_unref((*out)->pending);
  (*out)->pending = miscache__pending_ref(p->pending);
  (*out)->near = miscache__near_ref(p->near);
  (*out)->pool = p;
  return MISCACHE_OK;
}

static void pool_dealloc(miscache_pool_t *p) {
  miscache__pending_unref(p->pending);
  miscache__near_unref(p->near);
  miscache__options_clear(&p->opts);
  free(p->free_list);
  free(p->all);
  free(p);
}

miscache_status_t miscache_pool_new(const miscache_options_t *opts,
                                    unsigned size, miscache_pool_t **out,
                                    char *errbuf, size_t errbuf_len) {
  if (errbuf && errbuf_len) errbuf[0] = 0;
  if (!out || size < 1 || size > 1024) {
    if (out) *out = NULL;
    if (errbuf && errbuf_len)
      snprintf(errbuf, errbuf_len, "pool size must be 1..1024");
    return MISCACHE_ERR_INVALID;
  }
  *out = NULL;
  miscache_pool_t *p = calloc(1, sizeof *p);
  if (!p) return MISCACHE_ERR_NOMEM;
  p->free_list = calloc(size, sizeof *p->free_list);
  p->all = calloc(size, sizeof *p->all);
  miscache_status_t st = MISCACHE_ERR_NOMEM;
  if (p->free_list && p->all) {
    if (opts)
      st = miscache__options_copy(&p->opts, opts);
    else {
      miscache__options_defaults(&p->opts);
      st = MISCACHE_OK;
    }
  }
  char msg[MISCACHE_ERRMSG_SIZE] = "out of memory";
  /* the URL's settings (pending_max, near...) before they are read here */
  if (st == MISCACHE_OK &&
      (st = miscache__options_resolve(&p->opts, msg, sizeof msg)) !=
          MISCACHE_OK)
    miscache__options_clear(&p->opts);
  if (st == MISCACHE_OK &&
      !(p->pending = miscache__pending_new(p->opts.pending_max))) {
    miscache__options_clear(&p->opts);
    st = MISCACHE_ERR_NOMEM;
  }
  if (st != MISCACHE_OK) {
    free(p->free_list);
    free(p->all);
    free(p);
    if (errbuf && errbuf_len) snprintf(errbuf, errbuf_len, "%s", msg);
    return st;
  }
  p->opts.lazy = true; /* and a URL's lazy_connect=false does not undo it */
  p->opts.set |= MISCACHE__SET_BIT(MISCACHE__SET_LAZY);
  p->opts.near_external = true; /* one store for all, made below */
  /* Open one handle now so a bad URL or environment is reported here. */
  miscache_t *first = NULL;
  st = pool_open(p, &first, errbuf, errbuf_len);
  if (st != MISCACHE_OK) {
    pool_dealloc(p);
    return st;
  }
  if (p->opts.near.enabled) {
    /* the first handle's options hold the endpoint it resolved */
    st = miscache__near_new(&first->opts, &p->near, first->err,
                            sizeof first->err);
    if (st != MISCACHE_OK) {
      if (errbuf && errbuf_len) snprintf(errbuf, errbuf_len, "%s", first->err);
      miscache_free(first);
      pool_dealloc(p);
      return st;
    }
    first->near = miscache__near_ref(p->near);
  }
  p->free_list[p->nfree++] = first;
  p->all[0] = first;
  p->opened = 1;
  p->size = size;
  pthread_mutex_init(&p->mu, NULL);
  miscache__cond_init_monotonic(&p->cv);
  miscache__fork_guard_add(&p->guard, &p->mu, &p->cv);
  *out = p;
  return MISCACHE_OK;
}

/* Whether h is in the free list. */
static bool is_free(const miscache_pool_t *p, const miscache_t *h) {
  for (unsigned i = 0; i < p->nfree; i++)
    if (p->free_list[i] == h) return true;
  return false;
}

void miscache_pool_free(miscache_pool_t *pool) {
  if (!pool) return;
  /* in a child after fork(), a handle a parent thread had borrowed can
   * never come back (that thread is not in the child): freed too */
  unsigned gen = miscache__fork_gen();
  for (unsigned i = 0; i < pool->size; i++) {
    miscache_t *h = pool->all[i];
    if (h && !is_free(pool, h) && h->borrow_gen != gen) miscache_free(h);
  }
  for (unsigned i = 0; i < pool->nfree; i++) miscache_free(pool->free_list[i]);
  miscache__fork_guard_remove(&pool->guard);
  pthread_cond_destroy(&pool->cv);
  pthread_mutex_destroy(&pool->mu);
  pool_dealloc(pool);
}

miscache_status_t miscache_pool_acquire(miscache_pool_t *pool, int timeout_ms,
                                        miscache_t **out) {
  if (!out) return MISCACHE_ERR_INVALID;
  *out = NULL;
  if (!pool) return MISCACHE_ERR_INVALID;
  struct timespec deadline;
  if (timeout_ms > 0) miscache__deadline_after(&deadline, timeout_ms);
  pthread_mutex_lock(&pool->mu);
  for (;;) {
    if (pool->nfree > 0) {
      *out = pool->free_list[--pool->nfree];
      (*out)->borrow_gen = miscache__fork_gen();
      pthread_mutex_unlock(&pool->mu);
      return MISCACHE_OK;
    }
    if (pool->opened < pool->size) {
      pool->opened++; /* reserve the slot, open outside the lock */
      pthread_mutex_unlock(&pool->mu);
      miscache_status_t st = pool_open(pool, out, NULL, 0);
      pthread_mutex_lock(&pool->mu);
      if (st != MISCACHE_OK) {
        pool->opened--;
        pthread_cond_signal(&pool->cv);
      } else {
        (*out)->borrow_gen = miscache__fork_gen();
        for (unsigned i = 0; i < pool->size; i++)
          if (!pool->all[i]) {
            pool->all[i] = *out;
            break;
          }
      }
      pthread_mutex_unlock(&pool->mu);
      return st;
    }
    if (timeout_ms == 0) break;
    int rc = timeout_ms < 0
                 ? pthread_cond_wait(&pool->cv, &pool->mu)
                 : pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline);
    if (rc == ETIMEDOUT && pool->nfree == 0) break;
  }
  pthread_mutex_unlock(&pool->mu);
  return MISCACHE_ERR_BUSY;
}

static void add_counters(miscache_counters_t *to, const miscache_counters_t *c,
                         size_t n) {
  for (size_t i = 0; i < n; i++) {
    to[i].hits += c[i].hits;
    to[i].misses += c[i].misses;
    to[i].errors += c[i].errors;
  }
}

miscache_status_t miscache_pool_release(miscache_pool_t *pool,
                                        miscache_t *mc) {
  if (!pool || !mc) return MISCACHE_ERR_INVALID;
  if (mc->pool != pool) return MISCACHE_ERR_INVALID; /* not one of ours */
  pthread_mutex_lock(&pool->mu);
  for (unsigned i = 0; i < pool->nfree; i++)
    if (pool->free_list[i] == mc) { /* released twice: ignore */
      pthread_mutex_unlock(&pool->mu);
      return MISCACHE_ERR_INVALID;
    }
  add_counters(pool->totals, mc->counters, MISCACHE_DB_COUNT);
  add_counters(pool->categories, mc->categories, MISCACHE_CATEGORY_COUNT);
  for (int c = 0; c < MISCACHE_CMD_CLASS_COUNT; c++) {
    for (int b = 0; b < MISCACHE_LATENCY_BUCKETS; b++)
      pool->latency.buckets[c][b] += mc->latency.buckets[c][b];
    pool->latency.calls[c] += mc->latency.calls[c];
    pool->latency.total_us[c] += mc->latency.total_us[c];
  }
  miscache_counters_reset(mc);
  /* nothing of this borrow reaches the next borrower */
  mc->err[0] = 0;
  mc->dry_run = NULL;
  mc->dry_run_userdata = NULL;
  mc->quiet = false;
  pool->free_list[pool->nfree++] = mc;
  pthread_cond_signal(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
  return MISCACHE_OK;
}

miscache_status_t miscache_pool_counters_category(miscache_pool_t *pool,
                                                  miscache_category_t cat,
                                                  miscache_counters_t *out) {
  if (!pool || !out || (unsigned)cat >= MISCACHE_CATEGORY_COUNT)
    return MISCACHE_ERR_INVALID;
  pthread_mutex_lock(&pool->mu);
  *out = pool->categories[cat];
  pthread_mutex_unlock(&pool->mu);
  return MISCACHE_OK;
}

size_t miscache_pool_pending_invalidations(const miscache_pool_t *pool) {
  return pool ? miscache__pending_count(pool->pending) : 0;
}

miscache_status_t miscache_pool_counters(miscache_pool_t *pool,
                                         miscache_db_t db,
                                         miscache_counters_t *out) {
  if (!pool || !out || !miscache__db_valid(db)) return MISCACHE_ERR_INVALID;
  pthread_mutex_lock(&pool->mu);
  *out = pool->totals[db];
  pthread_mutex_unlock(&pool->mu);
  return MISCACHE_OK;
}

miscache_status_t miscache_pool_latency(miscache_pool_t *pool,
                                        miscache_latency_t *out, size_t size) {
  if (!pool || !out) return MISCACHE_ERR_INVALID;
  pthread_mutex_lock(&pool->mu);
  memcpy(out, &pool->latency,
         size < sizeof pool->latency ? size : sizeof pool->latency);
  pthread_mutex_unlock(&pool->mu);
  return MISCACHE_OK;
}

/* For miscache_async_open_pool (async.c): read-only after miscache_pool_new,
 * so no lock. */
miscache__near_t *miscache__pool_near(miscache_pool_t *p) {
  return miscache__near_ref(p->near);
}

miscache__pending_t *miscache__pool_pending(miscache_pool_t *p) {
  return miscache__pending_ref(p->pending);
}

const miscache_options_t *miscache__pool_options(const miscache_pool_t *p) {
  return &p->opts;
}

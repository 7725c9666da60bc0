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

#include "internal.h"

struct miscache_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  miscache_options_t opts;
  unsigned size;
  unsigned opened;
  unsigned nfree;
  miscache_t **free_list;
  miscache_counters_t totals[MISCACHE_DB_COUNT];
};

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
  miscache_status_t st = MISCACHE_ERR_NOMEM;
  if (p->free_list) {
    if (opts)
      st = miscache__options_copy(&p->opts, opts);
    else {
      miscache__options_defaults(&p->opts);
      st = MISCACHE_OK;
    }
  }
  if (st != MISCACHE_OK) {
    free(p->free_list);
    free(p);
    return st;
  }
  p->opts.lazy = true;
  /* Open one handle now so a bad URL or environment is reported here. */
  miscache_t *first = NULL;
  st = miscache_open(&p->opts, &first, errbuf, errbuf_len);
  if (st != MISCACHE_OK) {
    miscache__options_clear(&p->opts);
    free(p->free_list);
    free(p);
    return st;
  }
  p->free_list[p->nfree++] = first;
  p->opened = 1;
  p->size = size;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  *out = p;
  return MISCACHE_OK;
}

void miscache_pool_free(miscache_pool_t *pool) {
  if (!pool) return;
  for (unsigned i = 0; i < pool->nfree; i++) miscache_free(pool->free_list[i]);
  free(pool->free_list);
  miscache__options_clear(&pool->opts);
  pthread_cond_destroy(&pool->cv);
  pthread_mutex_destroy(&pool->mu);
  free(pool);
}

miscache_status_t miscache_pool_acquire(miscache_pool_t *pool, int timeout_ms,
                                        miscache_t **out) {
  if (!out) return MISCACHE_ERR_INVALID;
  *out = NULL;
  if (!pool) return MISCACHE_ERR_INVALID;
  struct timespec deadline;
  if (timeout_ms > 0) {
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&pool->mu);
  for (;;) {
    if (pool->nfree > 0) {
      *out = pool->free_list[--pool->nfree];
      pthread_mutex_unlock(&pool->mu);
      return MISCACHE_OK;
    }
    if (pool->opened < pool->size) {
      pool->opened++; /* reserve the slot, open outside the lock */
      pthread_mutex_unlock(&pool->mu);
      miscache_status_t st = miscache_open(&pool->opts, out, NULL, 0);
      if (st != MISCACHE_OK) {
        pthread_mutex_lock(&pool->mu);
        pool->opened--;
        pthread_cond_signal(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
      }
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

void miscache_pool_release(miscache_pool_t *pool, miscache_t *mc) {
  if (!pool || !mc) return;
  pthread_mutex_lock(&pool->mu);
  for (unsigned i = 0; i < pool->nfree; i++)
    if (pool->free_list[i] == mc) { /* released twice: ignore */
      pthread_mutex_unlock(&pool->mu);
      return;
    }
  if (pool->nfree >= pool->opened) { /* not one of ours: never overflow */
    pthread_mutex_unlock(&pool->mu);
    return;
  }
  for (int i = 0; i < MISCACHE_DB_COUNT; i++) {
    pool->totals[i].hits += mc->counters[i].hits;
    pool->totals[i].misses += mc->counters[i].misses;
    pool->totals[i].errors += mc->counters[i].errors;
  }
  miscache_counters_reset(mc);
  mc->err[0] = 0;
  pool->free_list[pool->nfree++] = mc;
  pthread_cond_signal(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
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

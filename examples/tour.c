/*
 * The README's API tour, as a program: the README shows the text between the
 * "tour" markers, and a test checks that the two are the same and runs this
 * program against a private server. Server: MISCACHE_URL (default
 * redis://127.0.0.1:6379). Exit 0 when every step did what it says.
 */
#include <stdio.h>
#include <stdlib.h>

/* tour: begin */
#include <miscache/miscache.h>

/* The system of record for master:brands (your database query). */
static miscache_status_t load_brands(void *userdata, const char *key,
                                     json_t **out) {
  (void)userdata;
  (void)key;
  *out = json_pack("[{s:i,s:s,s:s}]", "id", 1, "name", "Rean", "code", "REAN");
  return *out ? MISCACHE_OK : MISCACHE_ERR_NOMEM;
}

int main(void) {
  miscache_options_t *o = miscache_options_new();
  if (!o) return 1;
  miscache_options_set_namespace(o, "tour:"); /* keys become tour:... */
  /* no URL set: MISCACHE_URL, else redis://127.0.0.1:6379; a URL would be
   * miscache_options_set_url(o, "redis://:secret@cache.internal:6379") */
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache_open(o, &mc, err, sizeof err);
  miscache_options_free(o); /* the handle copied what it needs */
  if (st != MISCACHE_OK) {
    fprintf(stderr, "open: %s: %s\n", miscache_strerror(st), err);
    return 1;
  }

  /* a typed session: session:user:123 in db "session", TTL 24 h */
  miscache_session_t s = {.user_id = 123, .username = "admin"};
  st = miscache_session_set(mc, &s);
  miscache_session_t got;
  if (st == MISCACHE_OK) st = miscache_session_get(mc, 123, &got);
  if (st == MISCACHE_OK) {
    printf("session of %s, last active %s\n", got.username, got.last_activity);
    miscache_session_clear(&got); /* got owns its strings */
  }

  /* any JSON under a key made from parts (ids are percent-encoded) */
  char key[MISCACHE_KEY_BUFSIZE];
  if (st == MISCACHE_OK)
    st = miscache_key(key, sizeof key, "stats:monthly_revenue", "202611", NULL);
  json_t *rev = json_pack("{s:f}", "total", 1250000.0);
  if (st == MISCACHE_OK)
    st = miscache_set(mc, MISCACHE_DB_CACHE, key, rev, MISCACHE_TTL_STATISTICS);
  json_decref(rev); /* inputs are borrowed */
  json_t *v = NULL;
  if (st == MISCACHE_OK) {
    switch (miscache_get(mc, MISCACHE_DB_CACHE, key, &v)) {
    case MISCACHE_OK: json_decref(v); break; /* v was a new reference */
    case MISCACHE_MISS: break;                /* not cached */
    default: st = MISCACHE_ERR_SERVER;        /* see miscache_errmsg(mc) */
    }
  }

  /* cache-aside: the loader on a miss (and when the server is down) */
  miscache_source_t source;
  if (st == MISCACHE_OK)
    st = miscache_master_get_or_load(mc, MISCACHE_MASTER_BRANDS, load_brands,
                                     NULL, &v, &source);
  if (st == MISCACHE_OK) {
    printf("%zu brands, from %s\n", json_array_size(v),
           source == MISCACHE_SOURCE_CACHE ? "the cache" : "the loader");
    json_decref(v);
  }

  /* an event: company 1's gift rules changed (company 10's keys stay) */
  uint64_t removed = 0;
  if (st == MISCACHE_OK) st = miscache_invalidate_gift_rules(mc, 1, &removed);

  /* the nightly batch lock of company 1, with a fencing token */
  miscache_lock_t *lock = NULL;
  if (st == MISCACHE_OK)
    st = miscache_batch_lock_acquire(mc, 1, "tour@host", "tour-1", &lock);
  if (st == MISCACHE_OK) {
    /* ... the work; miscache_batch_run() does all of this for you ... */
    st = miscache_lock_release(mc, lock); /* ERR_NOT_OWNER if it expired */
    miscache_lock_free(lock);
  }

  if (st != MISCACHE_OK)
    fprintf(stderr, "%s: %s\n", miscache_strerror(st), miscache_errmsg(mc));
  miscache_free(mc);
  return st == MISCACHE_OK ? 0 : 1;
}
/* tour: end */

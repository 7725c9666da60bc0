/* The event hook (client.h, miscache_options_set_event_hook): events are
 * built here and handed to the caller's function, identical ones at most
 * once a second per hook. No I/O. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

static const char *const kind_names[MISCACHE_EVENT_KIND_COUNT] = {
    "connect",        "connect_failed", "disconnect",      "breaker_open",
    "breaker_closed", "failover",       "slots_reloaded",  "redirect",
    "near_confirmed", "near_lost",      "pending_kept",    "pending_replayed",
    "lock_lost",      "slow_call"};

const char *miscache_event_kind_name(miscache_event_kind_t k) {
  return (unsigned)k < MISCACHE_EVENT_KIND_COUNT ? kind_names[k] : NULL;
}

/* The rate limit: one slot per recent distinct event, direct-mapped by a
 * hash of (hook, kind, node, message); a collision only lets an event
 * through early. */
#define SLOTS 256
#define WINDOW_MS 1000
static struct {
  uint64_t hash;
  int64_t last_ms;
  uint64_t suppressed;
} slots[SLOTS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static miscache__fork_guard_t slots_guard;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static void slots_init(void) {
  miscache__fork_watch();
  miscache__fork_guard_add(&slots_guard, &slots_mu, NULL);
}

static uint64_t mix(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull; /* FNV-1a */
  return h;
}

void miscache__event(const miscache__hook_t *h, miscache_event_kind_t kind,
                     const char *node, int64_t duration_us, uint64_t count,
                     const char *fmt, ...) {
  if (!h || !h->fn) return;
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!node) node = "";
  uint64_t hash = 0xCBF29CE484222325ull;
  hash = mix(hash, &h->fn, sizeof h->fn);
  hash = mix(hash, &h->userdata, sizeof h->userdata);
  hash = mix(hash, &kind, sizeof kind);
  hash = mix(hash, node, strlen(node) + 1);
  hash = mix(hash, msg, strlen(msg));
  if (!hash) hash = 1;
  pthread_once(&slots_once, slots_init);
  int64_t now = miscache__mono_ms();
  uint64_t suppressed = 0;
  pthread_mutex_lock(&slots_mu);
  unsigned i = (unsigned)(hash % SLOTS);
  if (slots[i].hash == hash && now - slots[i].last_ms < WINDOW_MS) {
    slots[i].suppressed++;
    pthread_mutex_unlock(&slots_mu);
    return;
  }
  if (slots[i].hash == hash) suppressed = slots[i].suppressed;
  slots[i].hash = hash;
  slots[i].last_ms = now;
  slots[i].suppressed = 0;
  pthread_mutex_unlock(&slots_mu);
  miscache_event_t ev = {.kind = kind,
                         .node = node,
                         .duration_us = duration_us,
                         .count = count,
                         .message = msg,
                         .suppressed = suppressed};
  h->fn(h->userdata, &ev);
}

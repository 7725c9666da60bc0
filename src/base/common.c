/* Status texts, logical db and TTL class names, version. */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdatomic.h>

#include <openssl/sha.h>

#include "base/base.h"

const char *miscache_strerror(miscache_status_t status) {
  /* No default: -Wswitch flags a status without a text. */
  switch (status) {
#define MISCACHE__STATUS_TEXT(name, code, text)                                \
  case MISCACHE_##name:                                                        \
    return text;
    MISCACHE_STATUS_MAP(MISCACHE__STATUS_TEXT)
#undef MISCACHE__STATUS_TEXT
  }
  return "unknown status";
}

static const char *const db_names[MISCACHE_DB_COUNT] = {
    "session", "cache", "temp", "queue", "batch", "gift"};

bool miscache__db_valid(miscache_db_t db) {
  return (unsigned)db < MISCACHE_DB_COUNT;
}

const char *miscache_db_name(miscache_db_t db) {
  return miscache__db_valid(db) ? db_names[db] : NULL;
}

miscache_status_t miscache_db_from_name(const char *name, miscache_db_t *out) {
  if (!name || !out) return MISCACHE_ERR_INVALID;
  for (int i = 0; i < MISCACHE_DB_COUNT; i++)
    if (strcmp(name, db_names[i]) == 0) {
      *out = (miscache_db_t)i;
      return MISCACHE_OK;
    }
  return MISCACHE_ERR_INVALID;
}

static const struct {
  const char *name;
  int64_t seconds;
} ttl_table[MISCACHE_TTL_CLASS_COUNT] = {
    [MISCACHE_TTL_SESSION] = {"session", 86400},
    [MISCACHE_TTL_PERMISSIONS] = {"permissions", 3600},
    [MISCACHE_TTL_MASTER_DATA] = {"master_data", 21600},
    [MISCACHE_TTL_STATISTICS] = {"statistics", 43200},
    [MISCACHE_TTL_TEMP_DATA] = {"temp_data", 1800},
    [MISCACHE_TTL_LOCK] = {"lock", 300},
    [MISCACHE_TTL_BATCH_CONFIG] = {"batch_config", 86400},
    [MISCACHE_TTL_BATCH_STATUS] = {"batch_status", 3600},
    [MISCACHE_TTL_BATCH_HISTORY] = {"batch_history", 604800},
    [MISCACHE_TTL_BATCH_LOCK] = {"batch_lock", 1800},
    [MISCACHE_TTL_GIFT_RULES] = {"gift_rules", 21600},
    [MISCACHE_TTL_GIFT_CLASSIFICATION] = {"gift_classification", 14400},
    [MISCACHE_TTL_GIFT_ANALYTICS] = {"gift_analytics", 28800},
    [MISCACHE_TTL_GIFT_MASTER] = {"gift_master", 21600},
    [MISCACHE_TTL_MASTER_COMPANIES] = {"master_companies", 43200},
    [MISCACHE_TTL_SERIAL_COUNT] = {"serial_count", 86400},
    [MISCACHE_TTL_EXCEL_UPLOAD] = {"excel_upload", 3600},
};

bool miscache__ttl_valid(miscache_ttl_class_t cls) {
  return (unsigned)cls < MISCACHE_TTL_CLASS_COUNT;
}

const char *miscache_ttl_class_name(miscache_ttl_class_t cls) {
  return miscache__ttl_valid(cls) ? ttl_table[cls].name : NULL;
}

int64_t miscache_ttl_default(miscache_ttl_class_t cls) {
  return miscache__ttl_valid(cls) ? ttl_table[cls].seconds : 0;
}

miscache_status_t miscache_ttl_class_from_name(const char *name,
                                               miscache_ttl_class_t *out) {
  if (!name || !out) return MISCACHE_ERR_INVALID;
  for (int i = 0; i < MISCACHE_TTL_CLASS_COUNT; i++)
    if (strcmp(name, ttl_table[i].name) == 0) {
      *out = (miscache_ttl_class_t)i;
      return MISCACHE_OK;
    }
  return MISCACHE_ERR_INVALID;
}

static const char *const category_names[MISCACHE_CATEGORY_COUNT] = {
    "session", "permissions", "master", "stats", "temp",
    "batch",   "gift",        "lock",   "other"};

const char *miscache_category_name(miscache_category_t cat) {
  return (unsigned)cat < MISCACHE_CATEGORY_COUNT ? category_names[cat] : NULL;
}

bool miscache__ns_valid(const char *ns, size_t n) {
  if (n > MISCACHE__NS_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char ch = ns[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || (ch && strchr("_-.:", ch))))
      return false;
  }
  return true;
}

int64_t miscache__jittered(int64_t ms, unsigned pct, uint64_t r) {
  int64_t span = ms * (int64_t)pct / 100; /* +-span */
  ms += (int64_t)(r % (uint64_t)(2 * span + 1)) - span;
  return ms < 1 ? 1 : ms;
}

void miscache__appendf(char *buf, size_t size, size_t *len, const char *fmt,
                       ...) {
  char scratch[1];
  bool room = buf && *len < size;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(room ? buf + *len : scratch, room ? size - *len : 0, fmt,
                    ap);
  va_end(ap);
  if (w > 0) *len += (size_t)w;
}

const char *miscache_version(void) { return MISCACHE_VERSION_STRING; }

void *miscache__realloc_array(void *p, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  size_t bytes = n * size;
  return realloc(p, bytes ? bytes : 1);
}

int64_t miscache__mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t miscache__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void miscache__cond_init_monotonic(pthread_cond_t *cv) {
  /* timed waits count on the monotonic clock: a wall-clock step does not
   * stretch or cut them */
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

void miscache__deadline_after(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

uint64_t miscache__xorshift(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Du;
}


size_t miscache__i64toa(char *buf, int64_t v) {
  char tmp[24];
  size_t n = 0;
  /* as unsigned, so INT64_MIN negates without overflow */
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  size_t len = 0;
  if (v < 0) buf[len++] = '-';
  while (n) buf[len++] = tmp[--n];
  buf[len] = 0;
  return len;
}

bool miscache__parse_port(const char *s, size_t n, int *port) {
  if (n == 0 || n > 5) return false;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  if (v < 1 || v > 65535) return false;
  *port = v;
  return true;
}

bool miscache__peer_addr_ok(const char *host, size_t hostlen, long long port,
                            char *why, size_t whylen) {
  if (port < 1 || port > 65535) {
    snprintf(why, whylen, "port %lld out of range 1..65535", port);
    return false;
  }
  if (hostlen == 0 || hostlen > 255) {
    snprintf(why, whylen, "a host name of %zu bytes (1..255)", hostlen);
    return false;
  }
  for (size_t i = 0; i < hostlen; i++) {
    unsigned char c = (unsigned char)host[i];
    if (c <= ' ' || c == 0x7f) {
      snprintf(why, whylen, "a host name with a control character or space");
      return false;
    }
  }
  return true;
}

void miscache__sha1_hex(const char *src, char out[41]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1((const unsigned char *)src, strlen(src), d);
  for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[40] = 0;
}

/* ---- fork() ------------------------------------------------------------------
 * Every mutex the library shares between threads (a pool's, a pending
 * list's, a near cache's) is registered here. Around fork() the prepare
 * handler takes them all (none is held across I/O, and none is taken while
 * holding another, so this cannot deadlock: it waits for the holders to
 * finish), so the child starts with each in a known state; the child
 * handler then releases them and makes each condition variable anew (a
 * parent thread waiting on one left state that its destroy would wait on
 * for ever). The child's generation counter moves on: handles reseed their
 * generator and drop their parent's connections. */

static pthread_mutex_t guards_mu = PTHREAD_MUTEX_INITIALIZER;
static miscache__fork_guard_t guards = {.next = &guards, .prev = &guards};
static atomic_uint fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void) {
  pthread_mutex_lock(&guards_mu);
  for (miscache__fork_guard_t *g = guards.next; g != &guards; g = g->next)
    pthread_mutex_lock(g->mu);
}

static void fork_parent(void) {
  for (miscache__fork_guard_t *g = guards.prev; g != &guards; g = g->prev)
    pthread_mutex_unlock(g->mu);
  pthread_mutex_unlock(&guards_mu);
}

static void fork_child(void) {
  atomic_fetch_add(&fork_generation, 1);
  for (miscache__fork_guard_t *g = guards.prev; g != &guards; g = g->prev) {
    pthread_mutex_unlock(g->mu);
    if (g->cv) miscache__cond_init_monotonic(g->cv);
  }
  pthread_mutex_unlock(&guards_mu);
}

static void fork_register(void) {
  (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void miscache__fork_watch(void) { pthread_once(&fork_once, fork_register); }

unsigned miscache__fork_gen(void) { return atomic_load(&fork_generation); }

void miscache__fork_guard_add(miscache__fork_guard_t *g, pthread_mutex_t *mu,
                              pthread_cond_t *cv) {
  miscache__fork_watch();
  g->mu = mu;
  g->cv = cv;
  pthread_mutex_lock(&guards_mu);
  g->next = &guards;
  g->prev = guards.prev;
  guards.prev->next = g;
  guards.prev = g;
  pthread_mutex_unlock(&guards_mu);
}

void miscache__fork_guard_remove(miscache__fork_guard_t *g) {
  if (!g->mu) return;
  pthread_mutex_lock(&guards_mu);
  g->prev->next = g->next;
  g->next->prev = g->prev;
  pthread_mutex_unlock(&guards_mu);
  g->mu = NULL;
}

size_t miscache__escape(char *dst, size_t dstlen, const char *src, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (dstlen == 0) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)src[i];
    char tmp[4];
    size_t n = 1;
    tmp[0] = (char)c;
    if (c < 0x20 || c == 0x7f || c == '\\') {
      tmp[0] = '\\';
      switch (c) {
      case '\n': tmp[1] = 'n', n = 2; break;
      case '\r': tmp[1] = 'r', n = 2; break;
      case '\t': tmp[1] = 't', n = 2; break;
      case '\\': tmp[1] = '\\', n = 2; break;
      default: tmp[1] = 'x', tmp[2] = hex[c >> 4], tmp[3] = hex[c & 15], n = 4;
      }
    }
    if (o + n >= dstlen) break;
    memcpy(dst + o, tmp, n);
    o += n;
  }
  dst[o] = 0;
  return o;
}

void miscache__iso8601_now(char *buf, size_t size) {
  /* formatted once per second per thread: bulk classification stamps
   * every result */
  static _Thread_local time_t last = (time_t)-1;
  static _Thread_local char text[32];
  time_t now = time(NULL);
  if (now != last) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    last = now;
  }
  if (size == 0) return;
  size_t n = strlen(text); /* a copy: snprintf costs ~650 instructions */
  if (n >= size) n = size - 1;
  memcpy(buf, text, n);
  buf[n] = 0;
}

/* ---- string lists (public: miscache_strings_t) ---------------------------- */

void miscache_strings_clear(miscache_strings_t *s) {
  if (!s) return;
  for (size_t i = 0; i < s->count; i++) free(s->items[i]);
  free(s->items);
  s->items = NULL;
  s->count = 0;
}

miscache_status_t miscache_strings_push(miscache_strings_t *s,
                                        const char *value) {
  if (!s || !value) return MISCACHE_ERR_INVALID;
  char **items = miscache__realloc_array(s->items, s->count + 1, sizeof *items);
  if (!items) return MISCACHE_ERR_NOMEM;
  s->items = items;
  if (!(items[s->count] = strdup(value))) return MISCACHE_ERR_NOMEM;
  s->count++;
  return MISCACHE_OK;
}

/* The scripted RESP server of fake.h: one thread, poll() over the
 * listening socket and every connection. */
#include "fake.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define MAX_CONNS 32
#define MAX_WORDS 4

typedef struct rule {
  struct rule *next;
  char *words[MAX_WORDS];
  int nwords; /* 0: "*" */
  char *bytes;
  size_t len;
  int left; /* uses left; -1: always */
  mt_fake_fn fn;
  void *ud;
} rule_t;

typedef struct {
  int fd;
  char *in;
  size_t len, cap;
} conn_t;

struct mt_fake {
  int lfd, port;
  char url[64];
  pthread_t thread;
  atomic_int stop;
  pthread_mutex_t mu; /* rules, conns, counters */
  rule_t *rules;      /* newest first */
  conn_t conns[MAX_CONNS];
  int nconns;
  int accepted;
  bool dribble;
  struct {
    char *words[MAX_WORDS];
    int n;
  } seen[4096]; /* the first words of each request, for mt_fake_count */
  long nseen;
};

static void split_words(const char *match, char **words, int *n) {
  *n = 0;
  if (strcmp(match, "*") == 0) return;
  char *copy = strdup(match);
  for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && *n < MAX_WORDS;
       w = strtok_r(NULL, " ", &save))
    words[(*n)++] = strdup(w);
  free(copy);
}

static rule_t *new_rule(const char *match, int times) {
  rule_t *r = calloc(1, sizeof *r);
  split_words(match, r->words, &r->nwords);
  r->left = times > 0 ? times : -1;
  return r;
}

static void add_rule(mt_fake_t *f, rule_t *r) {
  pthread_mutex_lock(&f->mu);
  r->next = f->rules;
  f->rules = r;
  pthread_mutex_unlock(&f->mu);
}

void mt_fake_on(mt_fake_t *f, const char *match, const char *bytes, size_t len,
                int times) {
  rule_t *r = new_rule(match, times);
  r->bytes = malloc(len ? len : 1);
  memcpy(r->bytes, bytes, len);
  r->len = len;
  add_rule(f, r);
}

void mt_fake_on_str(mt_fake_t *f, const char *match, const char *bytes) {
  mt_fake_on(f, match, bytes, strlen(bytes), 0);
}

void mt_fake_on_fn(mt_fake_t *f, const char *match, mt_fake_fn fn, void *ud) {
  rule_t *r = new_rule(match, 0);
  r->fn = fn;
  r->ud = ud;
  add_rule(f, r);
}

void mt_fake_dribble(mt_fake_t *f, bool on) {
  pthread_mutex_lock(&f->mu);
  f->dribble = on;
  pthread_mutex_unlock(&f->mu);
}

static bool words_match(char *const *words, int nwords, int argc, char **argv) {
  if (nwords > argc) return false;
  for (int i = 0; i < nwords; i++)
    if (strcasecmp(words[i], argv[i]) != 0) return false;
  return true;
}

long mt_fake_count(mt_fake_t *f, const char *match) {
  char *words[MAX_WORDS];
  int n;
  split_words(match, words, &n);
  long c = 0;
  pthread_mutex_lock(&f->mu);
  long kept = f->nseen < 4096 ? f->nseen : 4096;
  for (long i = 0; i < kept; i++)
    c += words_match(words, n, f->seen[i].n, f->seen[i].words);
  pthread_mutex_unlock(&f->mu);
  for (int i = 0; i < n; i++)
    free(words[i]);
  return c;
}

int mt_fake_connections(mt_fake_t *f) {
  pthread_mutex_lock(&f->mu);
  int n = f->accepted;
  pthread_mutex_unlock(&f->mu);
  return n;
}

char *mt_fake_bulk(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(n + 32);
  snprintf(out, n + 32, "$%zu\r\n%s\r\n", n, s);
  return out;
}

char *mt_fake_on_reply_copy(const char *reply, size_t *len) {
  *len = strlen(reply);
  return strdup(reply);
}

static void send_all(int fd, const char *p, size_t len, bool dribble) {
  size_t off = 0;
  while (off < len) {
    size_t step = dribble ? 1 : len - off;
    ssize_t w = send(fd, p + off, step, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* the client went away */
    off += (size_t)w;
    if (dribble) {
      struct timespec ts = {0, 200000}; /* 0.2 ms: each byte its own read */
      nanosleep(&ts, NULL);
    }
  }
}

void mt_fake_push(mt_fake_t *f, const char *bytes, size_t len) {
  pthread_mutex_lock(&f->mu);
  for (int i = 0; i < f->nconns; i++)
    send_all(f->conns[i].fd, bytes, len, false);
  pthread_mutex_unlock(&f->mu);
}

/* One request from c->in, if complete: argc words into argv (malloc'd).
 * Returns the bytes it took, 0 when incomplete, -1 when not RESP. */
static long parse_request(conn_t *c, int *argc, char ***argv, size_t **lens) {
  const char *p = c->in, *end = c->in + c->len;
  if (p == end) return 0;
  if (*p != '*') return -1;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (!nl) return 0;
  long n = strtol(p + 1, NULL, 10);
  if (n <= 0 || n > 1000000) return -1;
  p = nl + 1;
  char **av = calloc((size_t)n, sizeof *av);
  size_t *lv = calloc((size_t)n, sizeof *lv);
  long i = 0;
  for (; i < n; i++) {
    if (p >= end) break;
    if (*p != '$') goto bad;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break;
    long l = strtol(p + 1, NULL, 10);
    if (l < 0) goto bad;
    p = nl + 1;
    if (end - p < l + 2) break;
    av[i] = malloc((size_t)l + 1);
    memcpy(av[i], p, (size_t)l);
    av[i][l] = 0;
    lv[i] = (size_t)l;
    p += l + 2;
  }
  if (i < n) { /* incomplete */
    for (long j = 0; j < i; j++)
      free(av[j]);
    free(av);
    free(lv);
    return 0;
  }
  *argc = (int)n;
  *argv = av;
  *lens = lv;
  return (long)(p - c->in);
bad:
  for (long j = 0; j < i; j++)
    free(av[j]);
  free(av);
  free(lv);
  return -1;
}

/* The reply to one request (caller holds mu; *len bytes, malloc'd). */
static char *answer(mt_fake_t *f, int argc, char **argv, size_t *lens,
                    size_t *len) {
  long k = f->nseen++ % 4096;
  for (int i = 0; i < f->seen[k].n; i++)
    free(f->seen[k].words[i]);
  f->seen[k].n = argc < MAX_WORDS ? argc : MAX_WORDS;
  for (int i = 0; i < f->seen[k].n; i++)
    f->seen[k].words[i] = strdup(argv[i]);
  for (rule_t *r = f->rules; r; r = r->next) {
    if (r->left == 0 || !words_match(r->words, r->nwords, argc, argv)) continue;
    if (r->left > 0) r->left--;
    if (r->fn) return r->fn(r->ud, argc, argv, lens, len);
    char *out = malloc(r->len ? r->len : 1);
    memcpy(out, r->bytes, r->len);
    *len = r->len;
    return out;
  }
  static const char *const ok[] = {"SELECT", "AUTH", "READONLY", "CLIENT",
                                   "ASKING"};
  const char *text = "-ERR fake server: no rule\r\n";
  if (strcasecmp(argv[0], "PING") == 0) text = "+PONG\r\n";
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (strcasecmp(argv[0], ok[i]) == 0) text = "+OK\r\n";
  *len = strlen(text);
  return strdup(text);
}

static void close_conn(mt_fake_t *f, int i) {
  close(f->conns[i].fd);
  free(f->conns[i].in);
  f->conns[i] = f->conns[--f->nconns];
}

/* Reads what conn i sent and answers every complete request. false when
 * the connection is gone. */
static bool serve_conn(mt_fake_t *f, int i) {
  conn_t *c = &f->conns[i];
  if (c->cap - c->len < 65536) {
    c->cap = c->cap ? c->cap * 2 : 131072;
    c->in = realloc(c->in, c->cap);
  }
  ssize_t n = recv(c->fd, c->in + c->len, c->cap - c->len, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
  if (n > 0) c->len += (size_t)n;
  for (;;) {
    int argc;
    char **argv;
    size_t *lens;
    long used = parse_request(c, &argc, &argv, &lens);
    if (used < 0) return false;
    if (used == 0) return true;
    memmove(c->in, c->in + used, c->len - (size_t)used);
    c->len -= (size_t)used;
    size_t len = 0;
    char *out = answer(f, argc, argv, lens, &len);
    if (out) send_all(c->fd, out, len, f->dribble);
    free(out);
    for (int j = 0; j < argc; j++)
      free(argv[j]);
    free(argv);
    free(lens);
  }
}

static void *run(void *arg) {
  mt_fake_t *f = arg;
  while (!f->stop) {
    struct pollfd p[MAX_CONNS + 1];
    pthread_mutex_lock(&f->mu);
    int n = f->nconns;
    p[0] = (struct pollfd){.fd = f->lfd, .events = POLLIN};
    for (int i = 0; i < n; i++)
      p[i + 1] = (struct pollfd){.fd = f->conns[i].fd, .events = POLLIN};
    pthread_mutex_unlock(&f->mu);
    if (poll(p, (nfds_t)n + 1, 20) <= 0) continue;
    pthread_mutex_lock(&f->mu);
    for (int i = n - 1; i >= 0; i--)
      if (p[i + 1].revents && !serve_conn(f, i)) close_conn(f, i);
    if (p[0].revents & POLLIN) {
      int fd = accept(f->lfd, NULL, NULL);
      if (fd >= 0 && f->nconns < MAX_CONNS) {
        f->conns[f->nconns++] = (conn_t){.fd = fd};
        f->accepted++;
      } else if (fd >= 0) {
        close(fd);
      }
    }
    pthread_mutex_unlock(&f->mu);
  }
  return NULL;
}

mt_fake_t *mt_fake_start(void) {
  mt_fake_t *f = calloc(1, sizeof *f);
  f->port = mt_free_port(&f->lfd);
  if (f->port <= 0) {
    free(f);
    return NULL;
  }
  snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d", f->port);
  pthread_mutex_init(&f->mu, NULL);
  if (pthread_create(&f->thread, NULL, run, f) != 0) {
    close(f->lfd);
    free(f);
    return NULL;
  }
  return f;
}

int mt_fake_port(const mt_fake_t *f) { return f->port; }
const char *mt_fake_url(const mt_fake_t *f) { return f->url; }

void mt_fake_stop(mt_fake_t *f) {
  if (!f) return;
  f->stop = 1;
  pthread_join(f->thread, NULL);
  while (f->nconns)
    close_conn(f, 0);
  close(f->lfd);
  for (rule_t *r = f->rules, *next; r; r = next) {
    next = r->next;
    for (int i = 0; i < r->nwords; i++)
      free(r->words[i]);
    free(r->bytes);
    free(r);
  }
  for (long k = 0; k < 4096; k++)
    for (int i = 0; i < f->seen[k].n; i++)
      free(f->seen[k].words[i]);
  pthread_mutex_destroy(&f->mu);
  free(f);
}

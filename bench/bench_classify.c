/*
 * Benchmark 2: bulk classification. 100,000 products, half of them cached
 * beforehand, classified page by page (PAGE products per call) through
 * miscache_gift_classify_bulk: one MGET per page, the engine for the
 * uncached half, one pipelined write of their results.
 * Reference: redis-benchmark -c 1 -P 16 GET and SET with values of the
 * classification's size, in the same run. Target: products/s >= 0.5x of
 * redis-benchmark's ops/s, one op counted as one product.
 * Then pages of 30: miscache_gift_classify_bulk page by page
 * against miscache_gift_classify_pages (each page's writes pipelined with
 * the next page's MGET), against redis-benchmark -P 16 GET; target >= 0.8;
 * and against raw hiredis sending the same commands (MGET of each page with
 * the previous page's SET PX of the stored bytes, no JSON, no engine):
 * that ratio is the library's own cost, whatever the server's speed.
 * With libevent (BENCH_ASYNC): the same pages of 30 through one async
 * handle (miscache_async_gift_classify_page) with INFLIGHT pages in flight,
 * so the server works on the next pages while this one is classified,
 * against the same redis-benchmark round.
 */
#include "bench.h"
#ifdef BENCH_ASYNC
#include <event2/event.h>
#include <miscache/adapters/libevent.h>
#endif

#define N 100000
#define PAGE 200
#define ROUNDS 5
#define COMPANY 1

static char codes[N][16], names[N][48];
static miscache_gift_product_t products[N];
static miscache_gift_classification_t out[PAGE];

static void make_products(void) {
  for (int i = 0; i < N; i++) {
    snprintf(codes[i], sizeof codes[i], "P%06d", i);
    /* a mix the rules act on: keywords, zero price, plain revenue lines */
    snprintf(names[i], sizeof names[i], "%s %d",
             i % 10 == 0 ? "\xec\x82\xac\xec\x9d\x80\xed\x92\x88 pouch"
                         : "cushion compact",
             i);
    products[i] = (miscache_gift_product_t){
        .product_code = codes[i],
        .product_name = names[i],
        .supply_price = i % 13 == 0 ? 0.0 : 12000.0 + i};
  }
}

static miscache_gift_engine_t *make_engine(void) {
  const char *kw[] = {"\xec\x82\xac\xec\x9d\x80\xed\x92\x88", "sample"};
  miscache_gift_rules_t rules = {.auto_classify = true,
                                 .zero_price_rule = true,
                                 .keywords = {.items = (char **)kw, .count = 2},
                                 .exclude_from_revenue = true};
  miscache_gift_engine_t *e = NULL;
  if (miscache_gift_engine_new(&rules, NULL, 0, &e) != MISCACHE_OK) exit(1);
  return e;
}

/* Classifies products [from, to) with the given stride, in pages; returns
 * how many came from the cache. */
static size_t classify(miscache_t *mc, const miscache_gift_engine_t *e,
                       int stride) {
  static miscache_gift_product_t page[PAGE];
  size_t cached = 0;
  int n = 0;
  for (int i = 0; i < N; i += stride) {
    page[n++] = products[i];
    if (n == PAGE || i + stride >= N) {
      size_t c = 0;
      if (miscache_gift_classify_bulk(mc, COMPANY, e, page, (size_t)n, out,
                                      NULL, &c) != MISCACHE_OK) {
        fprintf(stderr, "classify: %s\n", miscache_errmsg(mc));
        exit(1);
      }
      for (int k = 0; k < n; k++)
        miscache_gift_classification_clear(&out[k]);
      cached += c;
      n = 0;
    }
  }
  return cached;
}

static miscache_gift_classification_t all[N];

/* All N products in pages of 30: with pipelined pages, or bulk per page.
 * Products/s. */
static double pages_of_30(miscache_t *mc, const miscache_gift_engine_t *e,
                          bool pipelined) {
  double t0 = now_s();
  for (size_t at = 0; at < N; at += pipelined ? N : 30) {
    size_t n = pipelined ? N : (N - at < 30 ? N - at : 30), c = 0;
    miscache_status_t st =
        pipelined ? miscache_gift_classify_pages(mc, COMPANY, e, products, n, 30,
                                                 all, NULL, &c)
                  : miscache_gift_classify_bulk(mc, COMPANY, e, products + at,
                                                n, all, NULL, &c);
    if (st != MISCACHE_OK) {
      fprintf(stderr, "classify: %s\n", miscache_errmsg(mc));
      exit(1);
    }
    for (size_t k = 0; k < n; k++) miscache_gift_classification_clear(&all[k]);
  }
  return N / (now_s() - t0);
}

#ifdef BENCH_ASYNC
/* ---- pages of 30 through the async handle, INFLIGHT at a time */
#define INFLIGHT 8
typedef struct {
  miscache_gift_classification_t out[30];
  size_t n;
} aslot_t;
static aslot_t aslots[INFLIGHT];
static struct event_base *abase;
static miscache_async_t *ahandle;
static const miscache_gift_engine_t *aengine;
static size_t anext, apages_left;
static int abad;

static void apage_issue(aslot_t *sl);

static void on_apage(void *ud, miscache_status_t st, size_t from_cache,
                     const char *msg) {
  aslot_t *sl = ud;
  (void)from_cache;
  if (st != MISCACHE_OK) {
    fprintf(stderr, "async page: %s\n", msg);
    abad++;
  }
  for (size_t k = 0; k < sl->n; k++)
    miscache_gift_classification_clear(&sl->out[k]);
  if (--apages_left == 0) event_base_loopbreak(abase);
  else if (anext < N) apage_issue(sl);
}

static void apage_issue(aslot_t *sl) {
  size_t at = anext;
  sl->n = N - at < 30 ? N - at : 30;
  anext += sl->n;
  if (miscache_async_gift_classify_page(ahandle, COMPANY, aengine,
                                        products + at, sl->n, sl->out, NULL,
                                        on_apage, sl) != MISCACHE_OK) {
    fprintf(stderr, "async page refused: %s\n",
            miscache_async_errmsg(ahandle));
    exit(1);
  }
}

/* All N products in pages of 30 through the async handle. Products/s. */
static double async_pages_of_30(void) {
  anext = 0;
  apages_left = (N + 29) / 30;
  double t0 = now_s();
  for (int i = 0; i < INFLIGHT && anext < N; i++) apage_issue(&aslots[i]);
  while (apages_left) event_base_dispatch(abase);
  if (abad) exit(1);
  return N / (now_s() - t0);
}
#endif

/* The reference that does the library's Redis work and nothing else, in
 * raw hiredis: N products in pages of 30, each page's MGET sent with the
 * previous page's SETs (PX, the stored classification's bytes) for the
 * keys that missed; no JSON, no engine. Products/s. */
static double raw_pages_of_30(redisContext *rc, int db, const char *value,
                              size_t vlen, const char *ns) {
  redisReply *r = redisCommand(rc, "SELECT %d", db);
  freeReplyObject(r);
  static char key[N][64];
  static size_t klen[N];
  for (int i = 0; i < N; i++)
    klen[i] = (size_t)snprintf(key[i], sizeof key[i],
                               "%sgift:classification:%s:%d", ns, codes[i],
                               COMPANY);
  int missed[30], nmissed = 0;
  double t0 = now_s();
  for (int at = 0; at <= N; at += 30) {
    for (int k = 0; k < nmissed; k++) {
      const char *av[5] = {"SET", key[missed[k]], value, "PX", "604800000"};
      size_t al[5] = {3, klen[missed[k]], vlen, 2, 9};
      redisAppendCommandArgv(rc, 5, av, al);
    }
    int m = at < N ? (N - at < 30 ? N - at : 30) : 0;
    const char *av[31];
    size_t al[31];
    av[0] = "MGET", al[0] = 4;
    for (int k = 0; k < m; k++) av[1 + k] = key[at + k], al[1 + k] = klen[at + k];
    if (m) redisAppendCommandArgv(rc, m + 1, av, al);
    for (int k = 0; k < nmissed; k++) {
      if (redisGetReply(rc, (void **)&r) != REDIS_OK) exit(3);
      freeReplyObject(r);
    }
    nmissed = 0;
    if (!m) break;
    if (redisGetReply(rc, (void **)&r) != REDIS_OK) exit(3);
    for (int k = 0; k < m; k++)
      if (r->element[k]->type == REDIS_REPLY_NIL) missed[nmissed++] = at + k;
    freeReplyObject(r);
  }
  return N / (now_s() - t0);
}

static void flush_gift_db(redisContext *rc, int db) {
  redisReply *r = redisCommand(rc, "SELECT %d", db);
  freeReplyObject(r);
  r = redisCommand(rc, "FLUSHDB");
  freeReplyObject(r);
}

int main(void) {
  miscache_t *mc = bench_open();
  redisContext *rc = bench_raw();
  int db = miscache_db_number(mc, MISCACHE_DB_GIFT);
  miscache_gift_engine_t *e = make_engine();
  make_products();

  double lib[ROUNDS];
  size_t cached = 0;
  for (int round = 0; round < ROUNDS; round++) {
    flush_gift_db(rc, db);
    classify(mc, e, 2); /* the even half is cached beforehand */
    double t0 = now_s();
    cached = classify(mc, e, 1);
    lib[round] = N / (now_s() - t0);
  }
  redisReply *r = redisCommand(rc, "STRLEN gift:classification:P000001:1");
  size_t size = (size_t)r->integer;
  freeReplyObject(r);

  /* the engine alone, for where the time goes */
  double t0 = now_s();
  for (int i = 0; i < N; i++) {
    miscache_gift_classification_t c;
    if (miscache_gift_engine_classify(e, &products[i], &c) != MISCACHE_OK)
      return 1;
    miscache_gift_classification_clear(&c);
  }
  double engine = N / (now_s() - t0);

  char args[128];
  snprintf(args, sizeof args, "-c 1 -P 16 -n %d -d %zu -t get,set", 2 * N,
           size);
  double get = redis_benchmark(args, "GET");
  double set = redis_benchmark(args, "SET");
  double l = median(lib, ROUNDS), ref = (get + set) / 2;
  printf("bench_classify: %d products, %zu of them cached, pages of %d, "
         "result %zu bytes, %d rounds (median)\n",
         N, cached, PAGE, size, ROUNDS);
  printf("  library bulk classify         %10.0f products/s\n", l);
  printf("  redis-benchmark -P 16 GET     %10.0f ops/s\n", get);
  printf("  redis-benchmark -P 16 SET     %10.0f ops/s\n", set);
  printf("  library/redis-benchmark (mean of GET, SET) = %.3f "
         "(target >= 0.50)\n",
         ref > 0 ? l / ref : 0);
  printf("  engine alone, no cache        %10.0f products/s\n", engine);
  char a[64], b[80];
  snprintf(a, sizeof a, "%.0f products/s", l);
  snprintf(b, sizeof b, "redis-benchmark -P 16 GET %.0f/s, SET %.0f/s", get,
           set);
  bench_summary("2 bulk classify", a, b, ref > 0 ? l / ref : 0, ">= 0.50",
                ref > 0 && l / ref >= 0.50);

  /* pages of 30, half cached beforehand, as above */
  /* the reference measured in every round too (its own figure moves by
   * 30% between runs on a shared VM): medians of both */
  double bulk30[ROUNDS], piped30[ROUNDS], gets[ROUNDS], raw30[ROUNDS];
#ifdef BENCH_ASYNC
  double async30[ROUNDS];
  char aerr[MISCACHE_ERRMSG_SIZE];
  abase = event_base_new();
  aengine = e;
  if (miscache_async_open(NULL, &ahandle, aerr, sizeof aerr) != MISCACHE_OK ||
      miscache_libevent_attach(ahandle, abase) != MISCACHE_OK) {
    fprintf(stderr, "async open: %s\n", aerr);
    return 1;
  }
#endif
  char value[1024];
  r = redisCommand(rc, "SELECT %d", db);
  freeReplyObject(r);
  r = redisCommand(rc, "GET gift:classification:P000001:1");
  size_t vlen = r && r->type == REDIS_REPLY_STRING && r->len < sizeof value
                    ? r->len
                    : 0;
  if (vlen) memcpy(value, r->str, vlen);
  freeReplyObject(r);
  if (!vlen) {
    fprintf(stderr, "bench_classify: no stored classification to copy\n");
    return 1;
  }
  snprintf(args, sizeof args, "-c 1 -P 16 -n %d -d %zu -t get", N, size);
  for (int round = 0; round < ROUNDS; round++) {
    flush_gift_db(rc, db);
    classify(mc, e, 2);
    bulk30[round] = pages_of_30(mc, e, false);
    flush_gift_db(rc, db);
    classify(mc, e, 2);
    piped30[round] = pages_of_30(mc, e, true);
    gets[round] = redis_benchmark(args, "GET");
    flush_gift_db(rc, db);
    classify(mc, e, 2);
    raw30[round] = raw_pages_of_30(rc, db, value, vlen, miscache_namespace(mc));
#ifdef BENCH_ASYNC
    flush_gift_db(rc, db);
    classify(mc, e, 2);
    async30[round] = async_pages_of_30();
    r = redisCommand(rc, "DBSIZE"); /* every product's result stored */
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != N) {
      fprintf(stderr, "async pages stored %lld results, not %d\n",
              r ? r->integer : -1, N);
      return 1;
    }
    freeReplyObject(r);
#endif
  }
  double b30 = median(bulk30, ROUNDS), p30 = median(piped30, ROUNDS);
  get = median(gets, ROUNDS);
  printf("  redis-benchmark -P 16 GET     %10.0f ops/s (median of %d, one "
         "per round)\n", get, ROUNDS);
  printf("  pages of 30, bulk per page    %10.0f products/s   /GET -P 16 = "
         "%.3f\n", b30, get > 0 ? b30 / get : 0);
  printf("  pages of 30, pipelined pages  %10.0f products/s   /GET -P 16 = "
         "%.3f (target >= 0.80)\n", p30, get > 0 ? p30 / get : 0);
  double raw = median(raw30, ROUNDS);
  printf("  raw hiredis, the same commands %9.0f products/s   pipelined "
         "pages / raw = %.3f\n", raw, raw > 0 ? p30 / raw : 0);
  printf("  (redis-benchmark GETs one hot key; the classification reads %d "
         "keys and writes half of them with SET PX, which costs the server "
         "more than the GETs)\n",
         N);
  snprintf(a, sizeof a, "%.0f products/s", p30);
  snprintf(b, sizeof b, "raw hiredis same commands %.0f/s", raw);
  bench_summary("2c pages of 30 vs raw", a, b, raw > 0 ? p30 / raw : 0,
                ">= 0.90", raw > 0 && p30 / raw >= 0.90);
  snprintf(a, sizeof a, "%.0f products/s", p30);
  snprintf(b, sizeof b, "redis-benchmark -P 16 GET %.0f/s", get);
  bench_summary("2b pages of 30", a, b, get > 0 ? p30 / get : 0, ">= 0.80",
                get > 0 && p30 / get >= 0.80);
#ifdef BENCH_ASYNC
  double a30 = median(async30, ROUNDS);
  printf("  async pages of 30, %d in flight %8.0f products/s   /GET -P 16 = "
         "%.3f, / pipelined pages = %.3f\n",
         INFLIGHT, a30, get > 0 ? a30 / get : 0, p30 > 0 ? a30 / p30 : 0);
  snprintf(a, sizeof a, "%.0f products/s", a30);
  bench_summary("2d async pages of 30", a, b, get > 0 ? a30 / get : 0,
                ">= 0.90", get > 0 && a30 / get >= 0.90);
  miscache_async_free(ahandle);
  event_base_free(abase);
#endif
  flush_gift_db(rc, db);
  miscache_gift_engine_free(e);
  redisFree(rc);
  miscache_free(mc);
  return 0;
}

/*
 * Instruction counts (run under callgrind by bench/callgrind.sh): MODE
 * COUNT does COUNT operations of one kind after the same set-up, so the
 * difference between COUNT and 0 divided by COUNT is the cost of one.
 *   typed   miscache_session_get of the bench_read session
 *   raw     hiredis GET of the same key + json_loadb
 *   near    miscache_permissions_check answered by the near cache
 *   near5   the same with a 5-menu map (the measure of docs/benchmarks.md)
 *   rawperm hiredis GET of the permissions key + json_loadb
 *   rawperm5 the same for the 5-menu map
 *   classify COUNT products through miscache_gift_classify_pages in pages
 *            of 30, the even half cached beforehand
 */
#include "bench.h"

static miscache_status_t no_loader(void *ud, const char *key, json_t **out) {
  (void)ud, (void)key, (void)out;
  return MISCACHE_ERR_LOADER;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr,
            "usage: bench_instr typed|raw|near|near5|rawperm|rawperm5|classify COUNT\n");
    return 2;
  }
  const char *mode = argv[1];
  long count = atol(argv[2]);
  bool near5 = !strcmp(mode, "near5");
  bool near = !strcmp(mode, "near") || near5 || !strncmp(mode, "rawperm", 7);
  /* the loop compares no strings: its own cost is the same in every mode */
  enum { TYPED, NEAR, RAW } kind = !strcmp(mode, "typed") ? TYPED
                                   : !strcmp(mode, "near") || near5 ? NEAR
                                                                    : RAW;
  int64_t user = near5 ? 43 : 42;
  const char *menu = near5 ? "inventory" : "admin_batch";
  const char *raw_key = !strcmp(mode, "raw")        ? "session:user:123"
                        : !strcmp(mode, "rawperm5") ? "permissions:user:43"
                                                    : "permissions:user:42";
  miscache_t *mc = bench_open_with(near);
  redisContext *rc = bench_raw();
  bench_session_set(mc);
  json_t *perms = bench_permissions();
  if (miscache_permissions_set(mc, 42, perms) != MISCACHE_OK) return 1;
  json_decref(perms);
  perms = bench_permissions5();
  if (miscache_permissions_set(mc, 43, perms) != MISCACHE_OK) return 1;
  json_decref(perms);
  redisReply *sel = redisCommand(
      rc, "SELECT %d",
      miscache_db_number(mc, !strcmp(mode, "raw") ? MISCACHE_DB_SESSION
                                                  : MISCACHE_DB_CACHE));
  freeReplyObject(sel);
  bool allowed;
  if (near) { /* connected, and the key cached */
    for (int i = 0; i < 1000; i++) {
      miscache_near_stats_t ns;
      miscache_near_stats(mc, &ns, sizeof ns);
      if (ns.connected) break;
      struct timespec ts = {0, 10000000L};
      nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 2; i++)
      miscache_permissions_check(mc, user, menu, MISCACHE_PERM_READ, no_loader,
                                 NULL, &allowed, NULL);
  }
  if (!strcmp(mode, "classify")) {
    static char codes[100000][16];
    static miscache_gift_product_t p[100000];
    static miscache_gift_classification_t out[100000];
    if (count > 100000) count = 100000;
    const char *kw[] = {"sample"};
    miscache_gift_rules_t rules = {.auto_classify = true, .zero_price_rule = true,
                                   .keywords = {.items = (char **)kw, .count = 1}};
    miscache_gift_engine_t *e = NULL;
    if (miscache_gift_engine_new(&rules, NULL, 0, &e) != MISCACHE_OK) return 1;
    long total = count ? count : 2;
    for (long i = 0; i < total; i++) {
      snprintf(codes[i], sizeof codes[i], "I%06ld", i);
      p[i] = (miscache_gift_product_t){
          .product_code = codes[i],
          .product_name = i % 10 ? "cushion" : "sample",
          .supply_price = i % 13 ? 12000.0 + (double)i : 0.0};
    }
    for (long i = 0; i < total; i += 2) { /* the even half cached */
      miscache_gift_classification_t c;
      miscache_gift_classify(mc, 1, e, &p[i], &c, NULL);
      miscache_gift_classification_clear(&c);
    }
    if (count &&
        miscache_gift_classify_pages(mc, 1, e, p, (size_t)count, 30, out, NULL,
                                     NULL) != MISCACHE_OK)
      return 4;
    for (long i = 0; i < count; i++) miscache_gift_classification_clear(&out[i]);
    miscache_gift_engine_free(e);
    count = 0;
  }
  for (long i = 0; i < count; i++) {
    if (kind == TYPED) {
      miscache_session_t out;
      if (miscache_session_get(mc, 123, &out) != MISCACHE_OK) return 4;
      miscache_session_clear(&out);
    } else if (kind == NEAR) {
      if (miscache_permissions_check(mc, user, menu, MISCACHE_PERM_READ,
                                     no_loader, NULL, &allowed,
                                     NULL) != MISCACHE_OK)
        return 4;
    } else {
      const char *key = raw_key;
      redisReply *r = redisCommand(rc, "GET %s", key);
      if (!r || r->type != REDIS_REPLY_STRING) return 4;
      json_error_t je;
      json_t *v = json_loadb(r->str, r->len, 0, &je);
      if (!v) return 4;
      json_decref(v);
      freeReplyObject(r);
    }
  }
  miscache_free(mc);
  redisFree(rc);
  return 0;
}

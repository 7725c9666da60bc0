/*
 * The script runner (EVALSHA, EVAL on NOSCRIPT) and the Lua scripts of
 * the batch lock (fencing, heartbeat, takeover) and of the fenced
 * status/history writes. Their SHA1 digests are compiled in; a test checks
 * each against SCRIPT LOAD.
 */
#include <stdio.h>
#include <string.h>

#include "ops/ops.h"

miscache_status_t miscache__eval_reply(miscache_t *mc, miscache_db_t db,
                                       const char *src, const char *sha,
                                       int nkeys, const char *const *keys,
                                       int nargs, const char *const *args,
                                       unsigned flags, miscache__reply_t **out) {
  enum { MAX_KEYS = 4, MAX_ARGS = 8 };
  *out = NULL;
  if (nkeys < 1 || nkeys > MAX_KEYS || nargs < 0 || nargs > MAX_ARGS) {
    miscache__set_err(mc, "script: %d keys, %d args", nkeys, nargs);
    return MISCACHE_ERR_INVALID;
  }
  miscache__fullkey_t fk[MAX_KEYS];
  const char *argv[3 + MAX_KEYS + MAX_ARGS];
  size_t lens[3 + MAX_KEYS + MAX_ARGS];
  char nk[12];
  int got = 0;
  miscache_status_t st = MISCACHE_OK;
  for (; got < nkeys && st == MISCACHE_OK; got++)
    st = miscache__fullkey(mc, keys[got], &fk[got]);
  if (st != MISCACHE_OK) got--; /* the failed one holds nothing */
  if (st == MISCACHE_OK) {
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA", lens[0] = 7;
    argv[1] = sha, lens[1] = 40;
    argv[2] = nk, lens[2] = strlen(nk);
    for (int i = 0; i < nkeys; i++)
      argv[3 + i] = fk[i].ptr, lens[3 + i] = fk[i].len;
    for (int i = 0; i < nargs; i++)
      argv[3 + nkeys + i] = args[i], lens[3 + nkeys + i] = strlen(args[i]);
    miscache__cmd_t cmd = {3 + nkeys + nargs, argv, lens};
    miscache__reply_t *r = NULL;
    st = miscache__run_key(mc, db, keys[0], &cmd, &r, flags);
    if (st == MISCACHE_OK && miscache__reply_type(r) == MISCACHE__R_ERROR &&
        strncmp(miscache__reply_str(r, NULL), "NOSCRIPT", 8) == 0) {
      /* not loaded on this server (restart, failover, SCRIPT FLUSH): EVAL
       * runs it and loads it */
      miscache__reply_free(r);
      r = NULL;
      argv[0] = "EVAL", lens[0] = 4;
      argv[1] = src, lens[1] = strlen(src);
      st = miscache__exec_key(mc, db, keys[0], &cmd, &r, flags);
    }
    if (st == MISCACHE_OK && miscache__reply_is(r, MISCACHE__R_ERROR)) {
      char what[300];
      snprintf(what, sizeof what, "script on %s", keys[0]);
      st = miscache__unexpected(mc, db, keys[0], r, what);
      miscache__reply_free(r);
      r = NULL;
    }
    *out = r;
  }
  for (int i = 0; i < got; i++) miscache__fullkey_done(&fk[i]);
  return st;
}

miscache_status_t miscache__eval(miscache_t *mc, miscache_db_t db,
                                 const char *src, const char *sha, int nkeys,
                                 const char *const *keys, int nargs,
                                 const char *const *args, unsigned flags,
                                 long long *result) {
  miscache__reply_t *r = NULL;
  miscache_status_t st = miscache__eval_reply(mc, db, src, sha, nkeys, keys,
                                              nargs, args, flags, &r);
  if (st == MISCACHE_OK && miscache__reply_is(r, MISCACHE__R_INTEGER)) {
    *result = miscache__reply_int(r);
  } else if (st == MISCACHE_OK) {
    char what[300];
    snprintf(what, sizeof what, "script on %s", keys[0]);
    st = miscache__unexpected(mc, db, keys[0], r, what);
  }
  miscache__reply_free(r);
  return st;
}


/* The lock token scripts (release, extend). */
const char miscache__lua_release[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return -1 end\n"
    "local ok, d = pcall(cjson.decode, v)\n"
    "if ok and type(d) == 'table' and d['token'] == ARGV[1] then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";
const char miscache__lua_release_sha[] =
    "395766aeab1bd54495ccf437a62f115ce65e18f6";

const char miscache__lua_extend[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return -1 end\n"
    "local ok, d = pcall(cjson.decode, v)\n"
    "if ok and type(d) == 'table' and d['token'] == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";
const char miscache__lua_extend_sha[] =
    "afa74f759005d20f772444460bdb9c3906b6a7c2";

const char miscache__lua_fence_acquire[] =
    "-- KEYS: lock, fence counter. ARGV: value without its closing brace, ttl ms\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "local f = redis.call('INCR', KEYS[2])\n"
    "local t = redis.call('TIME')\n"
    "local ms = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ',\"fence\":' .. f .. ',\"heartbeat_ms\":' .. ms .. '}', 'PX', ARGV[2])\n"
    "return f\n";
const char miscache__lua_fence_acquire_sha[] = "cdc6b9ad6b39c7e48742ad990be84b193182cd6e";

const char miscache__lua_heartbeat[] =
    "-- KEYS: lock. ARGV: token, ttl ms. Extends and stamps the server time.\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return -1 end\n"
    "local ok, d = pcall(cjson.decode, v)\n"
    "if not (ok and type(d) == 'table' and d['token'] == ARGV[1]) then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local ms = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))\n"
    "local nv = string.gsub(v, '\"heartbeat_ms\":%d+', '\"heartbeat_ms\":' .. ms, 1)\n"
    "redis.call('SET', KEYS[1], nv, 'PX', ARGV[2])\n"
    "return 1\n";
const char miscache__lua_heartbeat_sha[] = "c17bc014b28cec934bd7c469a74b0dfd066b4d85";

const char miscache__lua_fenced_set[] =
    "-- KEYS: lock, fence counter, target. ARGV: token, fence, value, ttl ms.\n"
    "-- Writes while the lock holds the token, or, with no lock, while no newer\n"
    "-- run has taken a fence.\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if v then\n"
    "  local ok, d = pcall(cjson.decode, v)\n"
    "  if not (ok and type(d) == 'table' and d['token'] == ARGV[1]) then return 0 end\n"
    "elseif redis.call('GET', KEYS[2]) ~= ARGV[2] then\n"
    "  return 0\n"
    "end\n"
    "redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])\n"
    "return 1\n";
const char miscache__lua_fenced_set_sha[] = "d15c64d4ad753e5b4b23286f2497d98be31a2709";

const char miscache__lua_takeover[] =
    "-- KEYS: lock, fence counter. ARGV: stale token, value without its closing\n"
    "-- brace, ttl ms, stale age ms. Replaces a lock whose holder stopped renewing.\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "if v then\n"
    "  local ok, d = pcall(cjson.decode, v)\n"
    "  if not (ok and type(d) == 'table' and d['token'] == ARGV[1]) then return 0 end\n"
    "  local hb = tonumber(d['heartbeat_ms']) or 0\n"
    "  if now - hb <= tonumber(ARGV[4]) then return -2 end\n"
    "end\n"
    "local f = redis.call('INCR', KEYS[2])\n"
    "redis.call('SET', KEYS[1], ARGV[2] .. ',\"fence\":' .. f .. ',\"heartbeat_ms\":' .. string.format('%d', now) .. '}', 'PX', ARGV[3])\n"
    "return f\n";
const char miscache__lua_takeover_sha[] = "e212d9ccbb3aa6973440f1045ceb49057c1770a9";


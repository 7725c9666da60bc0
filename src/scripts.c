/*
 * Lua scripts of the batch lock (fencing, heartbeat, takeover) and of the
 * fenced status/history writes. Their SHA1 digests are compiled in; a test
 * checks each against SCRIPT LOAD.
 */
#include "internal.h"

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


#!/usr/bin/env bash
# demo-steps.sh BINDIR: the examples in order, against MISCACHE_URL.
set -euo pipefail
bin=$1
echo "=== miscache_demo: the core tour (configured by the URL: namespace demo:)"
MISCACHE_URL="$MISCACHE_URL?namespace=demo:" "$bin/miscache_demo"
echo; echo "=== session_demo: login, permissions, invalidation"
"$bin/session_demo"
echo; echo "=== near_cache: permission checks from the process, invalidated by the server"
"$bin/near_cache"
echo; echo "=== batch_executor: nightly batch of company 1, with a second instance started meanwhile"
"$bin/batch_executor" --company 1 --pages 100 --delay-ms 10 &
first=$!
sleep 0.5
"$bin/batch_executor" --company 1 --pages 100
wait "$first"
echo; echo "=== gift_report: computed, then from the cache"
"$bin/gift_report" --company 1 --date "$(date -u +%Y%m%d)" --pages 100
echo; echo "=== endpoints: the same program on any URL (TLS, Sentinel, Cluster: only MISCACHE_URL differs)"
"$bin/endpoints"
echo; echo "=== queue_worker: a work-queue consumer, with a retried failure"
"$bin/queue_worker" --jobs 12
echo; echo "=== flush_worker: write-behind and its flush worker"
"$bin/flush_worker" --users 8 --updates 5
echo; echo "=== cache_monitor"
"$bin/cache_monitor" 1 2
echo; echo "=== metrics_service: events to syslog/stderr, GET /metrics (near cache on, slow calls over 5 ms)"
MISCACHE_URL="$MISCACHE_URL?near=on&slow_call_ms=5" "$bin/metrics_service" --seconds 3 >"$bin/metrics.out" 2>"$bin/metrics.err" &
svc=$!
for _ in $(seq 50); do grep -q listening "$bin/metrics.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1://p' "$bin/metrics.out")
sleep 1
python3 -c 'import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode()
print("\n".join(l for l in body.splitlines() if "_count{" in l or "permissions" in l))' "$port"
wait "$svc"
echo "events the hook logged:"; sed 's/^/  /' "$bin/metrics.err" | head -8
echo; echo "=== perm_service: an evhttp service answering permission checks through the async handle (near cache on)"
MISCACHE_URL="$MISCACHE_URL?near=on&namespace=perm-demo:" "$bin/perm_service" --seconds 4 >"$bin/perm.out" 2>"$bin/perm.err" &
svc=$!
for _ in $(seq 50); do grep -q listening "$bin/perm.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1://p' "$bin/perm.out")
python3 - "$port" <<'PY'
import json, sys, threading, urllib.error, urllib.request
port = sys.argv[1]
def get(path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
print("GET /check?user=7&menu=sales_report&perm=read  ->", *get("/check?user=7&menu=sales_report&perm=read"))
print("GET /check?user=7&menu=sales_report&perm=update ->", *get("/check?user=7&menu=sales_report&perm=update"))
print("GET /check?user=0&menu=sales_report&perm=read  ->", *get("/check?user=0&menu=sales_report&perm=read"))
print("GET /check?user=x                              ->", *get("/check?user=x"))
codes = {}
lock = threading.Lock()
def worker(k):
    for i in range(50):
        code, body = get("/check?user=%d&menu=sales_report&perm=update" % (1 + (k * 50 + i) % 20))
        with lock:
            codes[(code, body.get("allowed"))] = codes.get((code, body.get("allowed")), 0) + 1
threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("400 concurrent checks of 20 users (8 clients):", ", ".join("%d allowed=%s: %d" % (c, a, n) for (c, a), n in sorted(codes.items(), key=str)))
print("GET /stats ->", *get("/stats"))
with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10) as r:
    lines = r.read().decode().splitlines()
print("GET /metrics (the async handle's figures):")
for l in lines:
    if l.startswith("miscache_calls_total") or l.startswith("miscache_command_duration_seconds_count"):
        print("  " + l)
PY
wait "$svc"
cat "$bin/perm.out" | tail -1

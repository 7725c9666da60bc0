#!/usr/bin/env bash
# demo-steps.sh BINDIR: the examples in order, against MISCACHE_URL.
set -euo pipefail
bin=$1
echo "=== miscache_demo: the core tour"
"$bin/miscache_demo"
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
echo; echo "=== cache_monitor"
"$bin/cache_monitor" 1 2

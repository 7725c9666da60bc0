#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs them against a private
# redis-server on a unix socket, then prints a summary table (ratio =
# library / reference). Not part of the test command; about 75 s.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMISCACHE_BUILD_TESTS=OFF \
  -DMISCACHE_BUILD_EXAMPLES=OFF -DMISCACHE_BUILD_BENCH=ON >/dev/null
cmake --build build-bench -j "${JOBS:-2}" >/dev/null
echo "machine: $(nproc) cores, $(uname -m), $(redis-server --version | cut -d' ' -f3), hiredis $(dpkg-query -W -f='${Version}' libhiredis-dev)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bash scripts/with-redis.sh bash -c '
  for b in bench_read bench_classify bench_invalidate bench_lock bench_select bench_tls \
      bench_cluster bench_queue bench_patterns bench_near bench_async; do
    build-bench/bench/$b || echo "@failed|$b"; echo; done' >"$out"
grep -v '^@' "$out"
echo "summary (ratio = library / reference):"
awk -F'|' '
  $1 == "@summary" { printf "  %-20s %-24s %-46s %6s  %-9s %s\n", $2, $3, $4, $5, $6, $7 }
  $1 == "@failed"  { printf "  %s FAILED\n", $2; bad = 1 }
  END { exit bad }' "$out"

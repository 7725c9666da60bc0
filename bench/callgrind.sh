#!/usr/bin/env bash
# Instructions per operation, counted by valgrind --tool=callgrind (user
# space only: the kernel's share of a round trip is not in these figures):
# each mode of build-bench/bench/bench_instr is run with COUNT operations
# and with 0, and the difference divided by COUNT. Prints the library's
# figures next to the raw hiredis + jansson reference, as a ratio.
# Needs the bench build (bench/run.sh makes it) and valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh valgrind >/dev/null
if [[ ! -x build-bench/bench/bench_instr ]]; then
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMISCACHE_BUILD_TESTS=OFF \
    -DMISCACHE_BUILD_EXAMPLES=OFF -DMISCACHE_BUILD_BENCH=ON >/dev/null
  cmake --build build-bench -j "${JOBS:-2}" >/dev/null
fi
COUNT=${COUNT:-2000}
bash scripts/with-redis.sh bash -c '
  count() { # mode n: instructions of the whole run
    local out
    out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      build-bench/bench/bench_instr "$1" "$2" 2>&1) || {
      echo "bench_instr $1 $2 failed: $out" >&2; exit 1; }
    sed -n "s/.*Collected : \([0-9]*\).*/\1/p" <<<"$out"
  }
  per() { # mode: instructions per operation
    local a b
    a=$(count "$1" 0); b=$(count "$1" '"$COUNT"')
    echo $(( (b - a) / '"$COUNT"' ))
  }
  typed=$(per typed); raw=$(per raw); near=$(per near); rawperm=$(per rawperm)
  near5=$(per near5); rawperm5=$(per rawperm5)
  echo "callgrind, instructions per operation ('"$COUNT"' operations, user space):"
  awk -v t="$typed" -v r="$raw" -v n="$near" -v p="$rawperm" -v n5="$near5" \
    -v p5="$rawperm5" "BEGIN {
    printf \"  typed session read      %8d   raw GET + json_loadb %8d   ratio %.3f (target <= 0.5)\n\", t, r, t / r
    printf \"  permission check (near) %8d   raw GET + json_loadb %8d   ratio %.3f\n\", n, p, n / p
    printf \"  same, 5-menu map        %8d   raw GET + json_loadb %8d   ratio %.3f (target <= 600 instructions)\n\", n5, p5, n5 / p5
    printf \"@summary|instr near hit, 5 menus|%d instr|raw GET+json_loadb %d instr|%.4f|<= 600 instr|%s\n\", n5, p5, n5 / p5, (n5 <= 600 ? \"met\" : \"MISSED\")
    printf \"@summary|instr typed read|%d instr|raw GET+json_loadb %d instr|%.3f|<= 0.5|%s\n\", t, r, t / r, (t / r <= 0.5 ? \"met\" : \"MISSED\")
  }"
'

#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs the whole
# suite twice, plain and under AddressSanitizer + UndefinedBehaviorSanitizer,
# and checks the ABI of the plain build against abi/libmiscache.abi.
# Each integration test program starts and stops its own redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=${JOBS:-2}
for variant in plain asan; do
  dir=build-test-$variant
  flags=(-DMISCACHE_BUILD_TESTS=ON -DMISCACHE_BUILD_EXAMPLES=ON)
  [[ $variant == asan ]] && flags+=(-DMISCACHE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  echo "== $variant build"
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "== $variant tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs"
  if [[ $variant == plain ]]; then
    echo "== ABI check"
    bash scripts/abi-check.sh "$dir"
  fi
done

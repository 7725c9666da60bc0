#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs the whole
# suite twice, plain (gcc) and under AddressSanitizer + UndefinedBehaviorSanitizer,
# checks the ABI of the plain build against abi/libmiscache.abi and its
# object files against the layers of src/ (scripts/check-layers.py: no loop
# among the source files, no call to a higher folder), and builds
# the whole tree (tests and examples) with clang under ThreadSanitizer, with
# warnings as errors, to run the threaded tests (pool, near cache,
# stampede, events) under it. After the plain pass it builds the Debian
# packages, checks them with lintian, unpacks them into a fresh root and
# builds, links and runs programs against them (scripts/package-test.sh).
# Each integration test program starts and stops its own redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh clang libclang-rt-14-dev
jobs=${JOBS:-2}
for variant in plain asan tsan; do
  dir=build-test-$variant
  flags=(-DMISCACHE_BUILD_TESTS=ON -DMISCACHE_BUILD_EXAMPLES=ON)
  cc=()
  [[ $variant == asan ]] && flags+=(-DMISCACHE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  [[ $variant == tsan ]] && flags+=(-DMISCACHE_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug) && cc=(env CC=clang)
  echo "== $variant build"
  "${cc[@]}" cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "== $variant tests"
  if [[ $variant == tsan ]]; then
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
      ctest --test-dir "$dir" --output-on-failure -j "$jobs" \
      -R '^integration_(pool|near|stampede|observe|async)(_cluster)?$'
    continue
  fi
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs"
  if [[ $variant == plain ]]; then
    echo "== ABI check"
    bash scripts/abi-check.sh "$dir"
    echo "== layer check"
    python3 scripts/check-layers.py "$dir/CMakeFiles/miscache_objects.dir"
    echo "== Release build of the library, tool, examples and benchmarks (-O3 warnings)"
    cmake -S . -B build-test-release -DCMAKE_BUILD_TYPE=Release -DMISCACHE_BUILD_TESTS=OFF \
      -DMISCACHE_BUILD_EXAMPLES=ON -DMISCACHE_BUILD_BENCH=ON >/dev/null
    cmake --build build-test-release -j "$jobs" >/dev/null
    echo "== Debian packages: built, lintian-clean, installed and used"
    bash scripts/package-test.sh
  fi
done

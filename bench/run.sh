#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs them against a private
# redis-server on a unix socket. Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMISCACHE_BUILD_TESTS=OFF \
  -DMISCACHE_BUILD_EXAMPLES=OFF -DMISCACHE_BUILD_BENCH=ON >/dev/null
cmake --build build-bench -j "${JOBS:-2}" >/dev/null
echo "machine: $(nproc) cores, $(uname -m), $(redis-server --version | cut -d' ' -f3), hiredis $(dpkg-query -W -f='${Version}' libhiredis-dev)"
bash scripts/with-redis.sh bash -c '
  for b in bench_read bench_classify bench_lock bench_select bench_invalidate; do build-bench/bench/$b; echo; done'

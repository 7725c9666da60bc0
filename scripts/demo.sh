#!/usr/bin/env bash
# The demo command: installs what is missing, builds, starts a private
# redis-server and runs the examples end to end against it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build-demo -DMISCACHE_BUILD_TESTS=OFF -DMISCACHE_BUILD_EXAMPLES=ON >/dev/null
cmake --build build-demo -j "${JOBS:-2}" >/dev/null
bash scripts/with-redis.sh bash scripts/demo-steps.sh build-demo/examples

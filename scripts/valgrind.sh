#!/usr/bin/env bash
# Runs the whole test suite under valgrind memcheck (CTest label valgrind):
# any memory error or leak (definite, indirect or possible) fails. About
# 70 s on 2 cores; not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug -DMISCACHE_VALGRIND_TESTS=ON >/dev/null
cmake --build build-valgrind -j "${JOBS:-2}" >/dev/null
ctest --test-dir build-valgrind -L valgrind --output-on-failure -j "${JOBS:-2}"

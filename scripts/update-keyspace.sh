#!/bin/sh
# Refresh python/miscache/keyspace.json from the C library's table after a
# change to the keyspace, the events, the URL parameters or the scripts:
#   bash scripts/update-keyspace.sh [BUILD_DIR]   (default build)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cmake --build "$build" --target miscache_keyspace_json
cp "$build/keyspace.json" "$here/python/miscache/keyspace.json"
echo "python/miscache/keyspace.json updated from $build/keyspace.json"

#!/usr/bin/env bash
# with-redis.sh CMD [ARGS...]: starts a private redis-server on a unix socket
# in its own temp dir (no TCP port at all), runs CMD with MISCACHE_URL
# pointing at it, and stops the server and removes the dir afterwards, even
# when CMD fails.
set -euo pipefail
dir=$(mktemp -d /tmp/miscache-redis-XXXXXX)
pid=
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
  --dir "$dir" --save "" --appendonly no --logfile "$dir/redis.log" &
pid=$!
for _ in $(seq 1 200); do
  redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && break
  sleep 0.05
done
redis-cli -s "$dir/redis.sock" ping >/dev/null || { cat "$dir/redis.log"; exit 1; }
export MISCACHE_URL="unix://$dir/redis.sock"
"$@"

#!/usr/bin/env bash
# cluster-up.sh DIR BASE: for bench_cluster, a single redis-server on port
# BASE and a 3-master Redis Cluster on BASE+1..BASE+3 (bus ports
# BASE+11..BASE+13), loopback only, all in DIR; waits for cluster_state:ok.
# cluster-down.sh DIR stops them. Ports must be below 32768.
set -euo pipefail
dir=$1 base=$2
common=(--bind 127.0.0.1 --save "" --appendonly no --daemonize yes)
redis-server --port "$base" --dir "$dir" --pidfile "$dir/single.pid" \
  --logfile "$dir/single.log" "${common[@]}"
nodes=()
for i in 1 2 3; do
  mkdir -p "$dir/n$i"
  redis-server --port $((base + i)) --cluster-enabled yes \
    --cluster-port $((base + 10 + i)) --cluster-config-file nodes.conf \
    --cluster-node-timeout 5000 --dir "$dir/n$i" --pidfile "$dir/n$i.pid" \
    --logfile "$dir/n$i.log" "${common[@]}"
  nodes+=("127.0.0.1:$((base + i))")
done
for p in $base $((base + 1)) $((base + 2)) $((base + 3)); do
  for _ in $(seq 1 200); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
redis-cli --cluster create "${nodes[@]}" --cluster-yes >"$dir/create.log" 2>&1
for _ in $(seq 1 400); do
  ok=1
  for i in 1 2 3; do
    redis-cli -p $((base + i)) cluster info | grep -q cluster_state:ok || ok=0
  done
  ((ok)) && exit 0
  sleep 0.05
done
echo "cluster did not get ready (see $dir)" >&2
exit 1

#!/usr/bin/env bash
# cluster-down.sh DIR: stops what cluster-up.sh DIR started and removes DIR.
dir=$1
for f in "$dir"/*.pid; do
  [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null
done
sleep 0.3
for f in "$dir"/*.pid; do
  [[ -f $f ]] && kill -9 "$(cat "$f")" 2>/dev/null
done
rm -rf "$dir"
exit 0

#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/) for a fixed time and prints the
# executions of each and in total. "edges" is libFuzzer's coverage of
# instrumented code: libmiscache and the target, not the Debian jansson that
# parses the JSON (hence the JSON-token dictionaries in fuzz/*.dict).
#   scripts/fuzz.sh [TOTAL_SECONDS]   default 600, split evenly over targets
# JOBS (default 2) targets run at once. Each starts from the seed corpus in
# fuzz/corpus/<target> (copied; the repo is not changed) and keeps what it
# grows in build-fuzz/corpus/. A crash is copied to fuzz/regressions/<target>/
# (the test suite replays that dir) and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-600}
jobs=${JOBS:-2}
bash scripts/deps.sh clang libclang-rt-14-dev
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMISCACHE_BUILD_FUZZ=ON -DMISCACHE_BUILD_TESTS=OFF \
  -DMISCACHE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" >/dev/null
targets=$(cd build-fuzz/fuzz && ls fuzz_* | sed 's/^fuzz_//' | sort)
n=$(wc -w <<<"$targets")
per=$((total / n))
echo "fuzzing $n targets, $per s each, $jobs at a time ($(clang --version | head -1))"
mkdir -p build-fuzz/logs build-fuzz/artifacts

run_one() {
  local t=$1 per=$2
  mkdir -p "build-fuzz/corpus/$t"
  cp -n "fuzz/corpus/$t"/* "build-fuzz/corpus/$t/" 2>/dev/null || true
  local rc=0 dict=()
  case $t in
    payload_*) dict=(-dict=fuzz/payload.dict) ;;
    url) dict=(-dict=fuzz/url.dict) ;;
  esac
  "build-fuzz/fuzz/fuzz_$t" -max_total_time="$per" -print_final_stats=1 "${dict[@]}" \
    -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="build-fuzz/artifacts/$t-" "build-fuzz/corpus/$t" \
    >"build-fuzz/logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"build-fuzz/logs/$t.rc"
}
export -f run_one
xargs -P "$jobs" -I{} bash -c "run_one {} $per" <<<"$(tr ' ' '\n' <<<"$targets")"

printf '%-30s %14s %10s %6s %8s\n' target executions exec/s edges result
sum=0 crashed=0
for t in $targets; do
  log=build-fuzz/logs/$t.log
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  edges=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  result=ok
  if [[ $(cat "build-fuzz/logs/$t.rc") != 0 ]]; then
    result=CRASH
    crashed=1
    mkdir -p "fuzz/regressions/$t"
    for a in build-fuzz/artifacts/"$t"-*; do
      [[ -e $a ]] && cp "$a" "fuzz/regressions/$t/"
    done
    grep -m3 -E 'ERROR|property failed|SUMMARY' "$log" | sed 's/^/    /'
  fi
  printf '%-30s %14s %10s %6s %8s\n' "$t" "$execs" "$rate" "$edges" "$result"
  sum=$((sum + execs))
done
echo "total: $sum executions in $((per * n)) s of fuzzing"
if ((crashed)); then
  echo "crash inputs copied to fuzz/regressions/; logs in build-fuzz/logs/"
  exit 1
fi
echo "no crash"

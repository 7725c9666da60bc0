#!/usr/bin/env bash
# ABI check: the shared library built from this tree against the ABI recorded
# for its SOVERSION in abi/libmiscache.abi (abidw/abidiff, Debian's
# abigail-tools). Fails on any change of the exported functions or of the
# public types they use (a removed or changed function, a changed struct
# layout or enum) until it is recorded, and on a SOVERSION that differs
# from the recorded one. Added functions alone pass. Types defined outside
# the public headers (the opaque handle, options, pool, lock) are ignored
# (abi/opaque.abignore): callers only hold pointers to them.
#   scripts/abi-check.sh [BUILD_DIR]           check (default build dir: build-abi)
#   scripts/abi-check.sh --update [BUILD_DIR]  record the ABI of this build
set -euo pipefail
cd "$(dirname "$0")/.."
update=0
if [[ ${1:-} == --update ]]; then update=1; shift; fi
dir=${1:-build-abi}
command -v abidiff >/dev/null || bash scripts/deps.sh
if [[ ! -f $dir/CMakeCache.txt ]]; then
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMISCACHE_BUILD_TESTS=OFF \
    -DMISCACHE_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$dir" --target miscache -j "${JOBS:-2}" >/dev/null
lib=$(readlink -f "$dir/libmiscache.so") # not a stale older build in dir
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
baseline=abi/libmiscache.abi
current=$(mktemp)
trap 'rm -f "$current"' EXIT
abidw --headers-dir include/miscache --headers-dir "$dir/include/miscache" \
  --no-corpus-path --short-locs --out-file "$current" "$lib"
if ((update)); then
  cp "$current" "$baseline"
  chmod 644 "$baseline"
  echo "abi: recorded the ABI of $soname in $baseline"
  exit 0
fi
recorded=$(sed -n "s/.*soname='\([^']*\)'.*/\1/p" "$baseline" | head -n 1)
if [[ $recorded != "$soname" ]]; then
  echo "abi: $baseline records $recorded, the build is $soname:" \
       "run scripts/abi-check.sh --update after an intended ABI change" >&2
  exit 1
fi
set +e
abidiff --no-added-syms --suppressions abi/opaque.abignore "$baseline" "$current"
rc=$?
set -e
# abidiff: bit 1 error, bit 2 usage, bit 3 any change, bit 4 incompatible
if (( rc & 3 )); then echo "abi: abidiff failed ($rc)" >&2; exit 1; fi
if (( rc & 8 )); then
  echo "abi: incompatible change against $soname: raise MISCACHE_ABI in" \
       "CMakeLists.txt and record it with scripts/abi-check.sh --update" >&2
  exit 1
fi
# abidiff cannot tell a changed struct member from a harmless enum value
# added at the end: every change of the recorded types is a decision. A
# compatible one is recorded with --update; any other raises MISCACHE_ABI.
if (( rc & 4 )); then
  echo "abi: the public types changed against $baseline (see above): if" \
       "every change is compatible, record it with scripts/abi-check.sh" \
       "--update; else raise MISCACHE_ABI first" >&2
  exit 1
fi
echo "abi: $soname compatible with $baseline"

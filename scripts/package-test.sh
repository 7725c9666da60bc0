#!/usr/bin/env bash
# package-test.sh: builds the Debian packages (scripts/package.sh), unpacks
# them into a fresh root (dpkg -x), and there: compiles a program with
# pkg-config and one with find_package(miscache), links one statically with
# pkg-config --static, imports the Python package, and runs them and the
# tool against a private redis-server (scripts/with-redis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/package.sh
root=$(mktemp -d /tmp/miscache-root-XXXXXX)
trap 'rm -rf "$root"' EXIT
for deb in dist/*.deb; do dpkg -x "$deb" "$root/sys"; done
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
lib="$root/sys/usr/lib/$triplet"
for f in "$lib/libmiscache.so.2" "$lib/libmiscache.a" "$lib/pkgconfig/miscache.pc" \
         "$root/sys/usr/include/miscache/miscache.h" "$root/sys/usr/bin/miscache" \
         "$root/sys/usr/share/man/man3/miscache_get.3.gz" \
         "$root/sys/usr/share/man/man1/miscache.1.gz" \
         "$root/sys/usr/share/doc/libmiscache-dev/examples/demo.c" \
         "$root/sys/usr/lib/python3/dist-packages/miscache/keyspace.json"; do
  [[ -e "$f" ]] || { echo "package-test: $f is not in the packages"; exit 1; }
done
cat >"$root/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <miscache/miscache.h>
int main(void) {
  miscache_t *mc = NULL;
  char err[MISCACHE_ERRMSG_SIZE];
  if (miscache_open(NULL, &mc, err, sizeof err) != MISCACHE_OK) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  json_t *v = json_pack("{s:s}", "status", "running"), *back = NULL;
  int ok = miscache_set(mc, MISCACHE_DB_BATCH, "batch:status:7", v,
                        MISCACHE_TTL_BATCH_STATUS) == MISCACHE_OK &&
           miscache_get(mc, MISCACHE_DB_BATCH, "batch:status:7", &back) == MISCACHE_OK &&
           json_equal(v, back);
  printf("%s %s\n", miscache_version(), ok ? "round trip ok" : "round trip FAILED");
  json_decref(v);
  json_decref(back);
  miscache_free(mc);
  return ok ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$lib/pkgconfig"
# shellcheck disable=SC2046
cc -o "$root/app-pc" "$root/app.c" $(pkg-config --cflags --libs miscache)
# shellcheck disable=SC2046
cc -static -o "$root/app-static" "$root/app.c" $(pkg-config --cflags --static --libs miscache) 2>"$root/static.log" \
  || { cat "$root/static.log"; exit 1; }
if ldd "$root/app-static" >/dev/null 2>&1; then
  echo "package-test: pkg-config --static gave a dynamic link"; exit 1
fi
mkdir -p "$root/cm"
cat >"$root/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(app C)
find_package(miscache 0.4 REQUIRED)
add_executable(app-cmake ../app.c)
target_link_libraries(app-cmake PRIVATE miscache::miscache)
CM
cmake -S "$root/cm" -B "$root/cm/build" -DCMAKE_PREFIX_PATH="$root/sys/usr" >/dev/null
cmake --build "$root/cm/build" >/dev/null
export LD_LIBRARY_PATH="$lib"
run() {
  "$root/app-pc"
  "$root/app-static"
  "$root/cm/build/app-cmake"
  "$root/sys/usr/bin/miscache" get batch-status 7 | grep -q '"status": "running"'
  "$root/sys/usr/bin/miscache" --url "$MISCACHE_URL?namespace=x:" config | grep -qx 'namespace=x:'
  PYTHONPATH="$root/sys/usr/lib/python3/dist-packages" /usr/bin/python3 -c '
import miscache
c = miscache.Cache.from_url()
assert c.get("batch-status", 7) == {"status": "running"}, c.get("batch-status", 7)
print("python3-miscache reads what C wrote")'
  ldd "$root/sys/usr/bin/miscache" | grep -q "$lib/libmiscache.so.2"
}
export -f run
export root lib
bash scripts/with-redis.sh bash -c run
echo "package-test: packages installed, built against, linked (shared, static, CMake) and run"

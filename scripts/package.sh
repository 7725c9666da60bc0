#!/usr/bin/env bash
# package.sh: builds the Debian packages (libmiscache2, libmiscache-dev,
# miscache-tools, python3-miscache) with Debian's own tools
# (dpkg-buildpackage, debhelper; the debian/ directory) from a copy of the
# tree, into dist/, and runs lintian on them (errors fail the build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh debhelper dpkg-dev fakeroot lintian libjansson-dev libssl-dev
version=$(sed -n 's/^project(miscache VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
work=$(mktemp -d /tmp/miscache-pkg-XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/miscache-$version"
mkdir -p "$src"
# the tree as git sees it (tracked and new files, nothing ignored: no
# build directories, no dist/)
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$src"
(cd "$src" && dpkg-buildpackage -us -uc -b -j"${JOBS:-2}" >"$work/build.log" 2>&1) || {
  tail -40 "$work/build.log"; exit 1; }
mkdir -p dist
rm -f dist/*.deb dist/*.changes dist/*.buildinfo
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo dist/
echo "package: built $(cd dist && ls *.deb | tr '\n' ' ')"
# lintian: no error; warnings are printed for the record
lintian --fail-on error --tag-display-limit 0 dist/*.changes
echo "package: lintian reports no error"

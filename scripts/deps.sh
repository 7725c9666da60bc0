#!/usr/bin/env bash
# Installs the Debian packages libmiscache needs to build, test and run its
# demo. Run as root on Debian 12; does nothing when all are present.
# Further package names as arguments are installed too (scripts/fuzz.sh
# adds clang and libclang-rt-14-dev).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libhiredis-dev libjansson-dev libssl-dev openssl
      libcmocka-dev redis-server redis-tools python3 python3-redis abigail-tools
      libevent-dev libuv1-dev
      "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

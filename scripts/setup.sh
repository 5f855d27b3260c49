#!/usr/bin/env bash
# Installs what posbench needs to build (Debian packages, only those that are
# missing) and builds it in ./build. Used by the quickstart and test commands.
#   scripts/setup.sh [--test-deps] [--sanitizers]
# With --test-deps (the test command) a compiler warning fails the build:
# the tree must build -Wall -Wextra clean.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build_pkgs="build-essential autoconf automake libtool pkg-config libuv1-dev libsqlite3-dev
  libcurl4-openssl-dev libzmq3-dev libjansson-dev libhttp-parser-dev libcmocka-dev libopenblas-dev
  libjs-chart.js"
# chromium, chromium-driver, python3-selenium: the dashboard's browser tests.
test_pkgs="python3 python3-pytest python3-zmq python3-numpy sqlite3
  chromium chromium-driver python3-selenium"

want="$build_pkgs"
builddir=build
configure_flags=()
strict=0
for arg in "$@"; do
  case "$arg" in
    --test-deps) want="$want $test_pkgs"; strict=1 ;;
    --sanitizers) builddir=build-asan; configure_flags+=(--enable-sanitizers) ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
  echo "==> autoreconf"
  autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
mkdir -p "$builddir"
cd "$builddir"
if [ ! -f Makefile ] || [ ../configure -nt Makefile ]; then
  echo "==> configure ${configure_flags[*]:-}"
  "$root/configure" -q "${configure_flags[@]}"
fi
echo "==> make ($builddir)"
# Compiler output is kept to look for warnings (only what this make rebuilt).
log=build-warnings.log
status=0
{ make -s -j"$(nproc)" all >/dev/null && make -s -j"$(nproc)" check TESTS= >/dev/null; } \
  2>"$log" || status=$?
cat "$log" >&2
[ "$status" -eq 0 ] || exit "$status"
if [ "$strict" = 1 ] && grep -q "warning:" "$log"; then
  echo "setup.sh: compiler warnings above: the tree must build -Wall -Wextra clean" >&2
  exit 1
fi
echo "==> built in $root/$builddir"

#!/usr/bin/env bash
# Build KenLM's lmplz (ARPA estimation) and build_binary into tools/kenlm/bin, from the
# source distribution of the `kenlm` package on PyPI (its sdist carries the whole C++ tree;
# Debian has no kenlm package). Optional: without it `speech train-lm` uses its pure-Python
# Kneser-Ney estimator.
#
# Installs the missing Debian build dependencies (cmake, g++, Boost, zlib/bzip2/xz headers)
# with apt-get, as root or through sudo. Safe to re-run: does nothing when
# tools/kenlm/bin/lmplz already works (--force rebuilds). About 1.5 min on 2 cores.
# Usage: tools/install_kenlm.sh [--force] [--jobs N]
#   KENLM_VERSION (default 0.3.0) picks the sdist; PYTHON the interpreter whose pip fetches it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/tools/kenlm
version=${KENLM_VERSION:-0.3.0}
force=0
jobs=2

usage() { echo "usage: $0 [--force] [--jobs N]" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1; shift ;;
    --jobs) [ $# -ge 2 ] || usage; jobs=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "install_kenlm: unknown option '$1'" >&2; usage ;;
  esac
done
die() { echo "install_kenlm: $*" >&2; exit 1; }

# lmplz "works" when it estimates a bigram from two words (tiny text needs --discount_fallback)
lmplz_works() {
  local out
  [ -x "$1" ] || return 1
  out=$(echo "a b" | "$1" -o 2 --discount_fallback -S 64M -T "${TMPDIR:-/tmp}" 2>/dev/null) || return 1
  [[ "$out" == *'\end\'* ]]
}
if [ "$force" -eq 0 ] && lmplz_works "$dest/bin/lmplz"; then
  echo "install_kenlm: $dest/bin/lmplz works; nothing to do (--force rebuilds)"
  exit 0
fi

# --- Debian build dependencies (kenlm's CMakeLists requires all four Boost components)
packages=(cmake make g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev
          libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "apt-get not found; install the equivalents of: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    as_root=(env)
  elif command -v sudo >/dev/null; then
    as_root=(sudo env)
  else
    die "not root and no sudo; as root run: apt-get install ${missing[*]}"
  fi
  echo "install_kenlm: installing ${missing[*]}"
  "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get update -q \
    || die "apt-get update failed"
  "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
fi

# --- the sdist, through pip (only the kenlm source: --no-binary :all: would also build its
# build requirements, cmake included, from source; --no-build-isolation avoids fetching them
# when setuptools is already there)
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; else python=python3; fi
fi
"$python" -m pip --version >/dev/null 2>&1 || die "'$python -m pip' does not work; set PYTHON to a Python with pip (or run tools/install.sh first)"
mkdir -p "$dest/src"
sdist=$dest/src/kenlm-$version.tar.gz
if [ ! -s "$sdist" ]; then
  echo "install_kenlm: fetching the kenlm $version sdist"
  fetch=("$python" -m pip download --quiet --no-deps --no-binary kenlm -d "$dest/src" "kenlm==$version")
  "${fetch[@]}" --no-build-isolation 2>/dev/null || "${fetch[@]}" \
    || die "pip could not download kenlm==$version's sdist (is PyPI reachable?)"
  [ -s "$sdist" ] || die "pip did not leave $sdist; found: $(ls "$dest/src")"
fi
tar -tzf "$sdist" "kenlm-$version/lm/builder/lmplz_main.cc" >/dev/null 2>&1 \
  || die "$sdist has no lm/builder/lmplz_main.cc: this kenlm release cannot build lmplz"

# --- configure and build in a scratch directory, keep only the programs
build=$dest/build
rm -rf "$build"
mkdir -p "$build"
trap 'rm -rf "$build"' EXIT
tar -xzf "$sdist" -C "$build"
echo "install_kenlm: building lmplz and build_binary (make -j$jobs; log: $build.log)"
{
  cmake -S "$build/kenlm-$version" -B "$build/obj" -DCMAKE_BUILD_TYPE=Release \
    && nice make -C "$build/obj" -j"$jobs" lmplz build_binary
} >"$build.log" 2>&1 || { tail -n 30 "$build.log" >&2; die "the build failed; full log: $build.log"; }
mkdir -p "$dest/bin"
for prog in lmplz build_binary; do
  install -m 755 "$build/obj/bin/$prog" "$dest/bin/$prog.new"
  mv -f "$dest/bin/$prog.new" "$dest/bin/$prog"
done
lmplz_works "$dest/bin/lmplz" || die "$dest/bin/lmplz was built but does not run; see $build.log"
rm -f "$build.log"
echo "install_kenlm: ok: $dest/bin/lmplz, $dest/bin/build_binary"

#!/usr/bin/env bash
# Fast ARM dev loop: build edgebnn._engine for aarch64 on the host (Cython on
# the host, aarch64-linux-gnu-gcc 12 = the rootfs' gcc, the flags setup.py and
# the rootfs' Python use) and drop it into the Pi-like rootfs' installed
# edgebnn (made once by `arm/pi_install_test.sh arm64`), with this checkout's
# edgebnn/*.py. Seconds instead of the ~10 min of a full Pi-like reinstall;
# final figures still come from a genuine install.
#
#   usage: arm/cross_engine.sh            build + install (first run backs up
#                                         the installed package to edgebnn.orig)
#          arm/cross_engine.sh --restore  put the backup back
# Env: PICHROOT_BASE (default /tmp/pichroot), JOBS (default 2),
#      BUILD (default build/cross-aarch64).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${PICHROOT_BASE:-/tmp/pichroot}/arm64"
SITE="$ROOT/opt/edgebnn-venv/lib/python3.11/site-packages"
PKG="$SITE/edgebnn"
BUILD="${BUILD:-$REPO/build/cross-aarch64}"
CC=aarch64-linux-gnu-gcc
die() { echo "cross_engine: $*" >&2; exit 2; }
[ -d "$PKG" ] || die "no installed edgebnn at $PKG (run arm/pi_install_test.sh arm64 once)"
if [ "${1:-}" = --restore ]; then
    [ -d "$SITE/edgebnn.orig" ] || die "no backup at $SITE/edgebnn.orig"
    rm -rf "$PKG" && cp -a "$SITE/edgebnn.orig" "$PKG" && echo "restored $PKG"
    exit 0
fi
command -v "$CC" >/dev/null || die "$CC not found (apt-get install gcc-aarch64-linux-gnu)"
[ -d "$SITE/edgebnn.orig" ] || cp -a "$PKG" "$SITE/edgebnn.orig"

mkdir -p "$BUILD"
cd "$REPO"
# the directives of setup.py's cythonize call
cython -3 --directive boundscheck=False,wraparound=False,cdivision=True \
    pyx/_engine.pyx -o "$BUILD/_engine.c"
# what pip's build in the rootfs passes (its Python's flags), then setup.py's
# compile_args (aarch64: no extra)
FLAGS=(-Wsign-compare -DNDEBUG -g -fwrapv -O2 -Wall -fstack-protector-strong -Wformat
       -Werror=format-security -fPIC
       -O3 -std=gnu11 -fno-strict-aliasing -ffp-contract=off -fopenmp
       -DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION
       -Ipyx/kernels -Ipyx -I"$ROOT/usr/include/python3.11" -idirafter "$ROOT/usr/include"
       -I"$SITE/numpy/_core/include")
srcs=("$BUILD/_engine.c" pyx/plan.c pyx/kernels/*.c)
export BUILD CC
printf '%s\n' "${srcs[@]}" | xargs -P "${JOBS:-2}" -n 1 bash -c \
    'f="${@: -1}"; "$CC" "${@:1:$#-1}" -w -c "$f" -o "$BUILD/$(basename "${f%.c}").o"' \
    cc "${FLAGS[@]}"
objs=(); for f in "${srcs[@]}"; do b="$(basename "${f%.c}")"; objs+=("$BUILD/$b.o"); done
so="$BUILD/_engine.cpython-311-aarch64-linux-gnu.so"
$CC -shared -Wl,-O1 -Wl,-Bsymbolic-functions -fopenmp "${objs[@]}" -o "$so"
cp "$so" "$PKG/"
cp edgebnn/*.py "$PKG/"
rm -rf "$PKG/__pycache__"
echo "installed $so -> $PKG ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- pyx edgebnn || echo '+changes'))"

#!/usr/bin/env bash
# CI for the ARM kernels: cross-build aarch64 and armv7 (NEON) with the same
# kernel sources as the Python extension and run kernel_check under
# qemu-user, with CHECK_ALL=1: every op of edgebnn.h that is built is checked
# (one that is not is reported as skipped). Installs nothing (.ci/run
# installs the apt packages); exits non-zero if a tool is missing, a build
# fails or any check fails.
set -uo pipefail
cd "$(dirname "$0")"

need=(make aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc qemu-aarch64 qemu-arm)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
for d in /usr/aarch64-linux-gnu/lib /usr/arm-linux-gnueabihf/lib; do
    [ -d "$d" ] || missing+=("$d (libc6-dev-*-cross)")
    [ -e "$d/libgomp.so.1" ] || missing+=("$d/libgomp.so.1 (libgomp1-*-cross)")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "arm/ci.sh: missing ${missing[*]}" >&2
    echo "arm/ci.sh: needs apt packages gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf" \
         "libc6-dev-arm64-cross libc6-dev-armhf-cross libgomp1-arm64-cross" \
         "libgomp1-armhf-cross qemu-user" >&2
    exit 2
fi

status=0
for target in aarch64 armv7; do
    echo "== $target: build"
    if ! make -s "$target" CHECK_ALL=1 OPENMP=1; then
        echo "arm/ci.sh: $target build FAILED" >&2
        status=1
        continue
    fi
    case "$target" in
    aarch64) run=(qemu-aarch64 -L /usr/aarch64-linux-gnu) ;;
    armv7) run=(qemu-arm -L /usr/arm-linux-gnueabihf) ;;
    esac
    for seed in 12345 777; do
        echo "== $target: kernel_check check $seed"
        out=$("${run[@]}" "build/$target/kernel_check" check "$seed")
        rc=$?
        grep -v '^skip' <<<"$out"
        echo "($(grep -c '^skip' <<<"$out") skipped: kernels not built or ISA not runnable here)"
        if [ $rc -ne 0 ]; then
            echo "arm/ci.sh: $target checks FAILED (exit $rc)" >&2
            status=1
        fi
    done
done
[ $status -eq 0 ] && echo "arm/ci.sh: all ARM checks passed"
exit $status

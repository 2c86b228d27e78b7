#!/usr/bin/env bash
# Exact executed-instruction counts of ebnn_bgemm_neon under qemu-user (the
# armcount plugin, ../../shared/tools/armcount), for aarch64 and armv7 builds:
# per-call cost = count(2 calls) - count(1 call), reported as binary MACs per
# executed instruction.
#   usage: arm/count.sh [PLUGIN]      (default: ~/.cache/armcount/libbgcount.so)
# Counted: ebnn_bgemm_neon and its helper functions (symbols bgemm_neon_*),
# i.e. everything the call executes. Env: CPU=cortex-a72 (make option).
set -euo pipefail
cd "$(dirname "$0")"
PLUGIN="${1:-${ARMCOUNT_PLUGIN:-$HOME/.cache/armcount/libbgcount.so}}"
CPU="${CPU:-cortex-a72}"
if [ ! -f "$PLUGIN" ]; then
    echo "no armcount plugin at $PLUGIN: run ../shared/tools/armcount/setup.sh" >&2
    exit 1
fi
make -s aarch64 armv7 CPU="$CPU" >/dev/null

insns() { # arch calls m n k
    local qemu nm syms
    case "$1" in
    aarch64) qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu) nm=aarch64-linux-gnu-nm ;;
    armv7) qemu=(qemu-arm -L /usr/arm-linux-gnueabihf) nm=arm-linux-gnueabihf-nm ;;
    esac
    syms=$("$nm" "build/$1/kernel_check" | awk '$2 ~ /^[tT]$/ && $3 ~ /^(ebnn_)?bgemm_neon/ {printf ",sym=%s", $3}')
    "${qemu[@]}" -plugin "$PLUGIN$syms" -d plugin \
        "build/$1/kernel_check" count "$3" "$4" "$5" "$2" 2>&1 >/dev/null |
        awk '/^bgcount sym=/ {split($3, kv, "="); s += kv[2]} END {print s + 0}'
}

printf "%-8s %-16s %14s %14s %12s\n" arch "m x n x K" "binary MACs" "insns/call" "MACs/insn"
for arch in aarch64 armv7; do
    for shape in "196 256 2304" "784 512 4608"; do
        set -- $shape
        one=$(insns "$arch" 1 "$@")
        two=$(insns "$arch" 2 "$@")
        per=$((two - one))
        macs=$(($1 * $2 * $3))
        printf "%-8s %-16s %14d %14d %12.2f\n" "$arch" "$1x$2x$3" "$macs" "$per" \
            "$(echo "$macs / $per" | bc -l)"
    done
done

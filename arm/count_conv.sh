#!/usr/bin/env bash
# Exact executed-instruction counts of ebnn_bconv2d on the binarized
# ResNet-20's 3x3 shapes (qemu-user + the armcount plugin), for this
# checkout's kernels and optionally a baseline's: binary MACs per executed
# instruction of one call (int32 output, 1 thread), the output stage
# (rows_chunk_plain) left out. Per call = count(2 calls) - count(1 call).
#   usage: arm/count_conv.sh [aarch64|armv7] [BASE_KERNELS_DIR]
#   e.g.   mkdir /tmp/base && git archive <commit> pyx/kernels | tar -x -C /tmp/base &&
#          arm/count_conv.sh aarch64 /tmp/base/pyx/kernels
# Env: ARMCOUNT_PLUGIN (default ~/.cache/armcount/libbgcount.so).
set -euo pipefail
cd "$(dirname "$0")"
ARCH="${1:-aarch64}"
BASE="${2:-}"
PLUGIN="${ARMCOUNT_PLUGIN:-$HOME/.cache/armcount/libbgcount.so}"
[ -f "$PLUGIN" ] || { echo "no armcount plugin at $PLUGIN: run ../shared/tools/armcount/setup.sh" >&2; exit 1; }
case "$ARCH" in
aarch64) qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu) ;;
armv7) qemu=(qemu-arm -L /usr/arm-linux-gnueabihf) ;;
*) echo "arch: aarch64 or armv7" >&2; exit 2 ;;
esac
build() { make -s "$ARCH" CHECK_ALL=1 "$@" >/dev/null 2>&1 || { echo "build failed: make $ARCH $*" >&2; exit 1; }; }
build
[ -z "$BASE" ] || build KDIR="$BASE" B=build/base

# conv cost of `calls` calls: total instructions minus the output stage's
insns() { # binary calls shape...
    local bin=$1 calls=$2
    shift 2
    "${qemu[@]}" -plugin "$PLUGIN,sym=rows_chunk_plain" -d plugin "$bin" conv "$@" "$calls" 2>&1 >/dev/null |
        awk -F'[= ]' '/total_insns/ {t = $3} /sym=rows_chunk_plain/ {s = $5} END {print t - s}'
}
per_call() { echo $(($(insns "$1" 2 "${@:2}") - $(insns "$1" 1 "${@:2}"))); }

printf "%-8s %-24s %10s" arch "N HW C->OC stride pad" "bin. MACs"
[ -n "$BASE" ] && printf " %10s %9s" "base insns" "MACs/insn"
printf " %10s %9s\n" "insns" "MACs/insn"
for shape in "1 32 16 16 1 one" "1 32 16 16 1 zero" "1 32 16 32 2 one" "1 32 16 32 2 zero" \
             "1 16 32 32 1 one" "1 16 32 32 1 zero" "1 16 32 64 2 one" "1 16 32 64 2 zero" \
             "1 8 64 64 1 one" "1 8 64 64 1 zero"; do
    set -- $shape
    out=$((($2 + $5 - 1) / $5))
    macs=$((out * out * $3 * $4 * 9))
    printf "%-8s %-24s %10d" "$ARCH" "$1 $2 $3->$4 s$5 $6" "$macs"
    if [ -n "$BASE" ]; then
        b=$(per_call "build/base/$ARCH/kernel_check" $shape)
        printf " %10d %9.1f" "$b" "$(echo "$macs / $b" | bc -l)"
    fi
    a=$(per_call "build/$ARCH/kernel_check" $shape)
    printf " %10d %9.1f\n" "$a" "$(echo "$macs / $a" | bc -l)"
done

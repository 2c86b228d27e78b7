#!/usr/bin/env python3
"""Writes bconv2d_taps_a64.h: the aarch64 inline-assembly interior loops of
the tap-lane binary 3x3 conv (bconv2d_taps_neon.c). Regenerate with
    python3 pyx/kernels/gen_taps_asm.py > pyx/kernels/bconv2d_taps_a64.h

Why assembly: from intrinsics gcc 12 reassociates the byte sums over taps
into trees and hoists every tap's loads, so the accumulators spill (~6
instructions per 128-bit step instead of ~3.3).

One function per (lane bits L, vectors per filter group G, pixels per block
P, stride S). A block is P consecutive output pixels of one row, all taps
inside the image. Per kernel row ky: load the (P-1)*S+3 input words the
block reads in that row (one ld1), then per input column c broadcast the
word's low L bits (dup) and, for every (pixel p, kernel column kx) with
p*S + kx == c, XOR it with tap (ky, kx)'s G weight vectors, cnt, and add
into pixel p's accumulators (byte lanes; <= 72 after 9 taps). Each input
word is broadcast once per kernel row, not once per tap. After 3 rows each
pixel's byte sums are widened to int32 per filter and stored (st1, row
stride ldd). Weights are held in registers for the whole run when all 9*G
fit (L=16), else the 3*G vectors of a kernel row are loaded per row.
"""

VARIANTS = [(L, 2, 4, S) for L in (16, 32, 64) for S in (1, 2)]  # (L, G, P, S)


def variant(L, G, P, S):
    name = f"taps_a64_l{L}_s{S}"
    ncols = (P - 1) * S + 3
    words_per_reg = 2
    nregs_data = (ncols + words_per_reg - 1) // words_per_reg
    # all 9 taps' weights in registers if they fit beside the rest
    hold = 9 * G + P * G + nregs_data + 3 <= 32
    r = 0
    W = list(range(r, r + (9 * G if hold else 3 * G)))
    r += len(W)
    acc = [[r + p * G + g for g in range(G)] for p in range(P)]
    r += P * G
    data = list(range(r, r + nregs_data))
    r += nregs_data
    d = r
    t = [r + 1, r + 2] if r + 3 <= 32 else [r + 1, r + 1]  # two count temps if they fit
    r = t[1] + 1
    assert r <= 32, (L, G, P, S, r)
    # widening temporaries (free once the sums are done): consecutive
    nout = G * 128 // L // 4  # int32 vectors per pixel
    lane = {16: "h", 32: "s", 64: "d"}[L]
    arr = {16: "8h", 32: "4s", 64: "2d"}[L]
    per_reg = 128 // 64  # words per q register
    body = []
    emit = body.append
    if hold:
        emit("mov x9, %[wk]")
        for i in range(0, len(W), 4):
            regs = W[i:i + 4]
            emit("ld1 {" + ", ".join(f"v{x}.16b" for x in regs) + "}, [x9], #" + str(16 * len(regs)))
    emit("mov x10, %[src]")
    emit("1:")
    started = set()
    tmp_i = 0
    for ky in range(3):
        if not hold:
            emit("mov x9, %[wk]" if ky == 0 else "")
            for i in range(0, len(W), 4):
                regs = W[i:i + 4]
                emit("ld1 {" + ", ".join(f"v{x}.16b" for x in regs) + "}, [x9], #" + str(16 * len(regs)))
        # row ky's words: x10 + ky * rs
        if ky == 0:
            emit("mov x11, x10")
        else:
            emit("add x11, x11, %[rs]")
        # whole q registers with ld1, an odd last word with ldr d: never
        # a read past the block's last word (it may end the buffer)
        full = ncols // 2
        for i in range(0, full, 4):
            regs = data[i:min(i + 4, full)]
            base = "x11"
            if i:
                emit(f"add x12, x11, #{i * 16}")
                base = "x12"
            emit("ld1 {" + ", ".join(f"v{x}.2d" for x in regs) + "}, [" + base + "]")
        if ncols % 2:
            emit(f"ldr d{data[full]}, [x11, #{full * 16}]")
        for c in range(ncols):
            reg = data[c // per_reg]
            word = c % per_reg
            idx = word * (64 // L)
            emit(f"dup v{d}.{arr}, v{reg}.{lane}[{idx}]")
            for p in range(P):
                kx = c - p * S
                if not 0 <= kx < 3:
                    continue
                for g in range(G):
                    w = W[(ky * 3 + kx) * G + g] if hold else W[kx * G + g]
                    a = acc[p][g]
                    if (p, g) not in started:
                        emit(f"eor v{a}.16b, v{d}.16b, v{w}.16b")
                        emit(f"cnt v{a}.16b, v{a}.16b")
                        started.add((p, g))
                    else:
                        tt = t[tmp_i]
                        tmp_i ^= 1
                        emit(f"eor v{tt}.16b, v{d}.16b, v{w}.16b")
                        emit(f"cnt v{tt}.16b, v{tt}.16b")
                        emit(f"add v{a}.16b, v{a}.16b, v{tt}.16b")
    # widen + store: outputs into free consecutive registers starting at data[0]
    o = data[0]
    assert o + nout <= 32 or True
    for p in range(P):
        outs = [(o + k) % 32 for k in range(nout)]
        a = acc[p]
        if L == 16:
            for g in range(G):
                emit(f"uaddlp v{a[g]}.8h, v{a[g]}.16b")
                emit(f"uxtl v{outs[2 * g]}.4s, v{a[g]}.4h")
                emit(f"uxtl2 v{outs[2 * g + 1]}.4s, v{a[g]}.8h")
        elif L == 32:
            for g in range(G):
                emit(f"uaddlp v{a[g]}.8h, v{a[g]}.16b")
                emit(f"uaddlp v{outs[g]}.4s, v{a[g]}.8h")
        else:
            for g in range(0, G, 2):
                emit(f"addp v{a[g]}.16b, v{a[g]}.16b, v{a[g + 1]}.16b")
                emit(f"uaddlp v{a[g]}.8h, v{a[g]}.16b")
                emit(f"uaddlp v{outs[g // 2]}.4s, v{a[g]}.8h")
        emit("st1 {" + ", ".join(f"v{x}.4s" for x in outs) + "}, [%[dst]], %[ldd]")
    emit(f"add x10, x10, #{P * S * 8}")
    emit("subs %[n], %[n], #1")
    emit("b.ne 1b")
    used = sorted(set(W) | {x for row in acc for x in row} | set(data) | {d} | set(t)
                  | {(data[0] + k) % 32 for k in range(nout)})
    lines = [f"/* L={L} G={G} P={P} S={S}{' weights held' if hold else ''}: n blocks of {P} pixels */",
             f"static inline void {name}(const uint64_t *src, int64_t rs, const uint8_t *wk,",
             f"                                int32_t *dst, int64_t ldd, int64_t n)",
             "{",
             "    __asm__ volatile("]
    for b in body:
        if b:
            lines.append(f'        "{b}\\n\\t"')
    clob = ", ".join(f'"v{x}"' for x in used)
    lines.append("        : [dst] \"+r\"(dst), [n] \"+r\"(n)")
    lines.append("        : [src] \"r\"(src), [rs] \"r\"(rs), [wk] \"r\"(wk), [ldd] \"r\"(ldd)")
    lines.append(f'        : "x9", "x10", "x11", "x12", "cc", "memory", {clob});')
    lines.append("}")
    return "\n".join(lines)


def main():
    print("/* Generated by gen_taps_asm.py (see there); do not edit. */")
    print("#ifndef EBNN_BCONV2D_TAPS_A64_H")
    print("#define EBNN_BCONV2D_TAPS_A64_H")
    for v in VARIANTS:
        print()
        print(f"#define TAPS_A64_P_L{v[0]}_S{v[3]} {v[2]} /* pixels per block */")
        assert v[1] == 2  # bconv2d_taps_neon.c's group size
        print(variant(*v))
    print()
    print("#endif")


if __name__ == "__main__":
    main()

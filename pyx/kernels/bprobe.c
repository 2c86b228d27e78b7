/* Register-only probes (see bprobe.h). In C code, an empty asm with a "+"
 * constraint makes a value look new every iteration, so the compiler cannot
 * hoist the xor/popcount out of the loop, at no instruction cost. */
#include "bprobe.h"
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define OPAQUE_R(x) __asm__ volatile("" : "+r"(x))

#if defined(__x86_64__)
/* The probes are inline asm: the point is an exact instruction mix with every
 * operand in a register, which C with intrinsics does not guarantee (gcc
 * kept such tiles on the stack). */

/* the avx512 GEMM tile: 6 pixels x 4 groups of 8 filters = 24 zmm
 * accumulators, each step vpxorq + vpopcntq + vpaddq (the kernel's mix
 * without its loads) */
EBNN_TARGET_AVX512 static int64_t probe_avx512(int64_t iters)
{
    int64_t n = iters;
    __asm__ volatile(
        "vpxorq %%zmm0, %%zmm0, %%zmm0\n\t"
        "vpxorq %%zmm1, %%zmm1, %%zmm1\n\t"
        "vpxorq %%zmm2, %%zmm2, %%zmm2\n\t"
        "vpxorq %%zmm3, %%zmm3, %%zmm3\n\t"
        "vpxorq %%zmm4, %%zmm4, %%zmm4\n\t"
        "vpxorq %%zmm5, %%zmm5, %%zmm5\n\t"
        "vpxorq %%zmm6, %%zmm6, %%zmm6\n\t"
        "vpxorq %%zmm7, %%zmm7, %%zmm7\n\t"
        "vpxorq %%zmm8, %%zmm8, %%zmm8\n\t"
        "vpxorq %%zmm9, %%zmm9, %%zmm9\n\t"
        "vpxorq %%zmm10, %%zmm10, %%zmm10\n\t"
        "vpxorq %%zmm11, %%zmm11, %%zmm11\n\t"
        "vpxorq %%zmm12, %%zmm12, %%zmm12\n\t"
        "vpxorq %%zmm13, %%zmm13, %%zmm13\n\t"
        "vpxorq %%zmm14, %%zmm14, %%zmm14\n\t"
        "vpxorq %%zmm15, %%zmm15, %%zmm15\n\t"
        "vpxorq %%zmm16, %%zmm16, %%zmm16\n\t"
        "vpxorq %%zmm17, %%zmm17, %%zmm17\n\t"
        "vpxorq %%zmm18, %%zmm18, %%zmm18\n\t"
        "vpxorq %%zmm19, %%zmm19, %%zmm19\n\t"
        "vpxorq %%zmm20, %%zmm20, %%zmm20\n\t"
        "vpxorq %%zmm21, %%zmm21, %%zmm21\n\t"
        "vpxorq %%zmm22, %%zmm22, %%zmm22\n\t"
        "vpxorq %%zmm23, %%zmm23, %%zmm23\n\t"
        "vpternlogq $0x96, %%zmm0, %%zmm24, %%zmm24\n\t"
        "vpternlogq $0x96, %%zmm24, %%zmm25, %%zmm25\n\t"
        "vpternlogq $0x96, %%zmm25, %%zmm26, %%zmm26\n\t"
        "vpternlogq $0x96, %%zmm26, %%zmm27, %%zmm27\n\t"
        "vpternlogq $0x96, %%zmm27, %%zmm28, %%zmm28\n\t"
        "vpternlogq $0x96, %%zmm28, %%zmm29, %%zmm29\n\t"
        "1:\n\t"
        "vpxorq %%zmm24, %%zmm28, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm0, %%zmm0\n\t"
        "vpxorq %%zmm25, %%zmm28, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm1, %%zmm1\n\t"
        "vpxorq %%zmm26, %%zmm28, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm2, %%zmm2\n\t"
        "vpxorq %%zmm27, %%zmm28, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm3, %%zmm3\n\t"
        "vpxorq %%zmm24, %%zmm29, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm4, %%zmm4\n\t"
        "vpxorq %%zmm25, %%zmm29, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm5, %%zmm5\n\t"
        "vpxorq %%zmm26, %%zmm29, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm6, %%zmm6\n\t"
        "vpxorq %%zmm27, %%zmm29, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm7, %%zmm7\n\t"
        "vpxorq %%zmm24, %%zmm28, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm8, %%zmm8\n\t"
        "vpxorq %%zmm25, %%zmm28, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm9, %%zmm9\n\t"
        "vpxorq %%zmm26, %%zmm28, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm10, %%zmm10\n\t"
        "vpxorq %%zmm27, %%zmm28, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm11, %%zmm11\n\t"
        "vpxorq %%zmm24, %%zmm29, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm12, %%zmm12\n\t"
        "vpxorq %%zmm25, %%zmm29, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm13, %%zmm13\n\t"
        "vpxorq %%zmm26, %%zmm29, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm14, %%zmm14\n\t"
        "vpxorq %%zmm27, %%zmm29, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm15, %%zmm15\n\t"
        "vpxorq %%zmm24, %%zmm28, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm16, %%zmm16\n\t"
        "vpxorq %%zmm25, %%zmm28, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm17, %%zmm17\n\t"
        "vpxorq %%zmm26, %%zmm28, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm18, %%zmm18\n\t"
        "vpxorq %%zmm27, %%zmm28, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm19, %%zmm19\n\t"
        "vpxorq %%zmm24, %%zmm29, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm20, %%zmm20\n\t"
        "vpxorq %%zmm25, %%zmm29, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm21, %%zmm21\n\t"
        "vpxorq %%zmm26, %%zmm29, %%zmm30\n\t"
        "vpopcntq %%zmm30, %%zmm30\n\t"
        "vpaddq %%zmm30, %%zmm22, %%zmm22\n\t"
        "vpxorq %%zmm27, %%zmm29, %%zmm31\n\t"
        "vpopcntq %%zmm31, %%zmm31\n\t"
        "vpaddq %%zmm31, %%zmm23, %%zmm23\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "cc");
    return iters * 24 * 512;
}

/* the avx2 GEMM tile: 3 pixels x 2 groups of 4 filters, nibble lookup into
 * byte counters; the kernel's vpsadbw fold every 31 steps (about 2% more
 * instructions) is left out, so this is a slightly generous bound */
EBNN_TARGET_AVX2 static int64_t probe_avx2(int64_t iters)
{
    static const uint8_t lut[32] __attribute__((aligned(32))) = {
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};
    static const uint8_t low4[32] __attribute__((aligned(32))) = {
        15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
        15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15};
    int64_t n = iters;
    __asm__ volatile(
        "vmovdqa (%1), %%ymm10\n\t"
        "vmovdqa (%2), %%ymm11\n\t"
        "vpcmpeqb %%ymm6, %%ymm6, %%ymm6\n\t"
        "vpaddb %%ymm10, %%ymm6, %%ymm7\n\t"
        "vpxor %%ymm8, %%ymm8, %%ymm8\n\t"
        "vpaddb %%ymm11, %%ymm10, %%ymm9\n\t"
        "1:\n\t"
        "vpxor %%ymm8, %%ymm6, %%ymm12\n\t"
        "vpsrlw $4, %%ymm12, %%ymm14\n\t"
        "vpand %%ymm11, %%ymm12, %%ymm13\n\t"
        "vpand %%ymm11, %%ymm14, %%ymm14\n\t"
        "vpshufb %%ymm13, %%ymm10, %%ymm13\n\t"
        "vpshufb %%ymm14, %%ymm10, %%ymm14\n\t"
        "vpaddb %%ymm13, %%ymm0, %%ymm0\n\t"
        "vpaddb %%ymm14, %%ymm0, %%ymm0\n\t"
        "vpxor %%ymm9, %%ymm6, %%ymm12\n\t"
        "vpsrlw $4, %%ymm12, %%ymm14\n\t"
        "vpand %%ymm11, %%ymm12, %%ymm13\n\t"
        "vpand %%ymm11, %%ymm14, %%ymm14\n\t"
        "vpshufb %%ymm13, %%ymm10, %%ymm13\n\t"
        "vpshufb %%ymm14, %%ymm10, %%ymm14\n\t"
        "vpaddb %%ymm13, %%ymm1, %%ymm1\n\t"
        "vpaddb %%ymm14, %%ymm1, %%ymm1\n\t"
        "vpxor %%ymm8, %%ymm7, %%ymm12\n\t"
        "vpsrlw $4, %%ymm12, %%ymm14\n\t"
        "vpand %%ymm11, %%ymm12, %%ymm13\n\t"
        "vpand %%ymm11, %%ymm14, %%ymm14\n\t"
        "vpshufb %%ymm13, %%ymm10, %%ymm13\n\t"
        "vpshufb %%ymm14, %%ymm10, %%ymm14\n\t"
        "vpaddb %%ymm13, %%ymm2, %%ymm2\n\t"
        "vpaddb %%ymm14, %%ymm2, %%ymm2\n\t"
        "vpxor %%ymm9, %%ymm7, %%ymm12\n\t"
        "vpsrlw $4, %%ymm12, %%ymm14\n\t"
        "vpand %%ymm11, %%ymm12, %%ymm13\n\t"
        "vpand %%ymm11, %%ymm14, %%ymm14\n\t"
        "vpshufb %%ymm13, %%ymm10, %%ymm13\n\t"
        "vpshufb %%ymm14, %%ymm10, %%ymm14\n\t"
        "vpaddb %%ymm13, %%ymm3, %%ymm3\n\t"
        "vpaddb %%ymm14, %%ymm3, %%ymm3\n\t"
        "vpxor %%ymm8, %%ymm6, %%ymm12\n\t"
        "vpsrlw $4, %%ymm12, %%ymm14\n\t"
        "vpand %%ymm11, %%ymm12, %%ymm13\n\t"
        "vpand %%ymm11, %%ymm14, %%ymm14\n\t"
        "vpshufb %%ymm13, %%ymm10, %%ymm13\n\t"
        "vpshufb %%ymm14, %%ymm10, %%ymm14\n\t"
        "vpaddb %%ymm13, %%ymm4, %%ymm4\n\t"
        "vpaddb %%ymm14, %%ymm4, %%ymm4\n\t"
        "vpxor %%ymm9, %%ymm6, %%ymm12\n\t"
        "vpsrlw $4, %%ymm12, %%ymm14\n\t"
        "vpand %%ymm11, %%ymm12, %%ymm13\n\t"
        "vpand %%ymm11, %%ymm14, %%ymm14\n\t"
        "vpshufb %%ymm13, %%ymm10, %%ymm13\n\t"
        "vpshufb %%ymm14, %%ymm10, %%ymm14\n\t"
        "vpaddb %%ymm13, %%ymm5, %%ymm5\n\t"
        "vpaddb %%ymm14, %%ymm5, %%ymm5\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        : "+r"(n)
        : "r"(lut), "r"(low4)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
    return iters * 6 * 256;
}
#endif

/* the generic GEMM's operation on registers: 2 x 4 words, xor + the
 * compiler's popcount + add */
static int64_t probe_generic(int64_t iters)
{
    uint64_t a0 = 0x0123456789abcdefull, a1 = 0xfedcba9876543210ull;
    uint64_t b0 = 0x5555aaaa3333ccccull, b1 = b0 * 3, b2 = b0 * 5, b3 = b0 * 7;
    int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (int64_t it = 0; it < iters; it++) {
        OPAQUE_R(a0); OPAQUE_R(a1);
        OPAQUE_R(b0); OPAQUE_R(b1); OPAQUE_R(b2); OPAQUE_R(b3);
        s0 += __builtin_popcountll(a0 ^ b0); s1 += __builtin_popcountll(a0 ^ b1);
        s2 += __builtin_popcountll(a0 ^ b2); s3 += __builtin_popcountll(a0 ^ b3);
        s4 += __builtin_popcountll(a1 ^ b0); s5 += __builtin_popcountll(a1 ^ b1);
        s6 += __builtin_popcountll(a1 ^ b2); s7 += __builtin_popcountll(a1 ^ b3);
    }
    volatile int64_t sink = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    (void)sink;
    return iters * 8 * 64;
}

int64_t ebnn_bgemm_probe(int isa, int64_t iters)
{
    if (iters <= 0 || !ebnn_isa_supported(isa))
        return 0;
    switch (isa) {
#if defined(__x86_64__)
    case EBNN_ISA_AVX512:
        return probe_avx512(iters);
    case EBNN_ISA_AVX2:
        return probe_avx2(iters);
#endif
    case EBNN_ISA_GENERIC:
        return probe_generic(iters);
    default:
        return 0;
    }
}

int64_t ebnn_cycle_probe(int64_t iters)
{
    uint64_t x = 0;
    for (int64_t it = 0; it < iters; it++) {
        /* 8 adds, each waiting for the previous one */
        for (int k = 0; k < 8; k++) {
            x += 1;
            OPAQUE_R(x);
        }
    }
    volatile uint64_t sink = x;
    (void)sink;
    return iters * 8;
}

/* Register-only probes (see bprobe.h). An empty asm with a "+" constraint
 * makes each input look new every iteration, so the compiler cannot hoist
 * the xor/popcount out of the loop, at no instruction cost. */
#include "bprobe.h"
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define OPAQUE(x) __asm__ volatile("" : "+x"(x))
#define OPAQUE_R(x) __asm__ volatile("" : "+r"(x))

#if defined(__x86_64__)
/* the avx512 GEMM tile: 6 pixels x 4 groups of 8 filters */
EBNN_TARGET_AVX512 static int64_t probe_avx512(int64_t iters)
{
    __m512i acc[6][4], av[6], bv[4];
    for (int i = 0; i < 6; i++) {
        av[i] = _mm512_set1_epi64(0x0123456789abcdefll * (i + 1));
        for (int g = 0; g < 4; g++)
            acc[i][g] = _mm512_setzero_si512();
    }
    for (int g = 0; g < 4; g++)
        bv[g] = _mm512_set1_epi64(0x5555aaaa3333ccccll * (g + 3));
    for (int64_t it = 0; it < iters; it++) {
        for (int i = 0; i < 6; i++)
            OPAQUE(av[i]);
        for (int g = 0; g < 4; g++)
            OPAQUE(bv[g]);
        for (int i = 0; i < 6; i++)
            for (int g = 0; g < 4; g++)
                acc[i][g] = _mm512_add_epi64(acc[i][g],
                                             _mm512_popcnt_epi64(_mm512_xor_si512(av[i], bv[g])));
    }
    __m512i s = _mm512_setzero_si512();
    for (int i = 0; i < 6; i++)
        for (int g = 0; g < 4; g++)
            s = _mm512_add_epi64(s, acc[i][g]);
    volatile long long sink = _mm512_reduce_add_epi64(s);
    (void)sink;
    return iters * 24 * 512;
}

/* the avx2 GEMM tile: 3 pixels x 2 groups of 4 filters, nibble lookup,
 * byte counters folded every 31 steps */
EBNN_TARGET_AVX2 static int64_t probe_avx2(int64_t iters)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256i sum[3][2], av[3], bv[2];
    for (int i = 0; i < 3; i++) {
        av[i] = _mm256_set1_epi64x(0x0123456789abcdefll * (i + 1));
        for (int g = 0; g < 2; g++)
            sum[i][g] = _mm256_setzero_si256();
    }
    for (int g = 0; g < 2; g++)
        bv[g] = _mm256_set1_epi64x(0x5555aaaa3333ccccll * (g + 3));
    int64_t outer = iters / 31;
    for (int64_t it = 0; it < outer; it++) {
        __m256i bytes[3][2];
        for (int i = 0; i < 3; i++)
            for (int g = 0; g < 2; g++)
                bytes[i][g] = _mm256_setzero_si256();
        for (int k = 0; k < 31; k++) {
            for (int i = 0; i < 3; i++)
                OPAQUE(av[i]);
            for (int g = 0; g < 2; g++)
                OPAQUE(bv[g]);
            for (int i = 0; i < 3; i++)
                for (int g = 0; g < 2; g++) {
                    __m256i x = _mm256_xor_si256(av[i], bv[g]);
                    __m256i lo = _mm256_and_si256(x, low4);
                    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
                    bytes[i][g] = _mm256_add_epi8(
                        bytes[i][g], _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),
                                                     _mm256_shuffle_epi8(lut, hi)));
                }
        }
        for (int i = 0; i < 3; i++)
            for (int g = 0; g < 2; g++)
                sum[i][g] = _mm256_add_epi64(
                    sum[i][g], _mm256_sad_epu8(bytes[i][g], _mm256_setzero_si256()));
    }
    __m256i s = _mm256_setzero_si256();
    for (int i = 0; i < 3; i++)
        for (int g = 0; g < 2; g++)
            s = _mm256_add_epi64(s, sum[i][g]);
    volatile long long sink = _mm256_extract_epi64(s, 0);
    (void)sink;
    return outer * 31 * 6 * 256;
}
#endif

/* the generic GEMM tile: 4 x 4 words with the compiler's popcount */
static int64_t probe_generic(int64_t iters)
{
    uint64_t av[4], bv[4];
    int64_t acc[4][4] = {{0}};
    for (int i = 0; i < 4; i++) {
        av[i] = 0x0123456789abcdefull * (i + 1);
        bv[i] = 0x5555aaaa3333ccccull * (i + 3);
    }
    for (int64_t it = 0; it < iters; it++) {
        for (int i = 0; i < 4; i++) {
            OPAQUE_R(av[i]);
            OPAQUE_R(bv[i]);
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                acc[i][j] += __builtin_popcountll(av[i] ^ bv[j]);
    }
    volatile int64_t sink = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            sink += acc[i][j];
    return iters * 16 * 64;
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

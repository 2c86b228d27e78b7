/* AVX-512 popcount GEMM (VPOPCNTDQ).
 *
 * Lanes hold filters, not K: a block of up to 32 filters is copied once per
 * call into a K-major buffer (8 filters per zmm row), and each pixel word is
 * broadcast against it. Every zmm accumulator then holds 8 finished
 * (pixel, filter) sums in 64-bit lanes: no horizontal reduction and no
 * wasted tail when K is not a multiple of 512 bits. The register tile is
 * MR pixels x NG groups of 8 filters = 24 accumulators; per K word it costs
 * MR broadcasts + NG loads for MR*NG xor + popcount + add. */
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define MR 6   /* pixels per register tile          */
#define NG 4   /* zmm groups of 8 filters per tile  */
#define KC 128 /* K words per packed chunk (32 KiB) */

#define AINLINE __attribute__((always_inline)) inline

/* bp[g][k][lane] = b[(8g + lane) * ldb + k]; lanes past nf are 0.
 * 8 filters x 8 words at a time: 8 loads, an 8x8 transpose of 64-bit
 * elements (unpack, then two rounds of 128-bit lane shuffles), 8 stores. */
EBNN_TARGET_AVX512 static void pack_filters(int nf, int kc, const uint64_t *b,
                                            int64_t ldb, uint64_t *bp)
{
    const __m512i zero = _mm512_setzero_si512();
    for (int g = 0; g * 8 < nf; g++) {
        uint64_t *dst = bp + (int64_t)g * kc * 8;
        for (int k0 = 0; k0 < kc; k0 += 8) {
            int kn = kc - k0 < 8 ? kc - k0 : 8;
            __mmask8 km = (__mmask8)((1u << kn) - 1);
            __m512i r[8];
            for (int l = 0; l < 8; l++)
                r[l] = 8 * g + l < nf ? _mm512_maskz_loadu_epi64(km, b + (8 * g + l) * ldb + k0)
                                      : zero;
            __m512i lo01 = _mm512_unpacklo_epi64(r[0], r[1]), hi01 = _mm512_unpackhi_epi64(r[0], r[1]);
            __m512i lo23 = _mm512_unpacklo_epi64(r[2], r[3]), hi23 = _mm512_unpackhi_epi64(r[2], r[3]);
            __m512i lo45 = _mm512_unpacklo_epi64(r[4], r[5]), hi45 = _mm512_unpackhi_epi64(r[4], r[5]);
            __m512i lo67 = _mm512_unpacklo_epi64(r[6], r[7]), hi67 = _mm512_unpackhi_epi64(r[6], r[7]);
            /* b*: filters 0-3, c*: filters 4-7; lanes hold (k, k+4) pairs */
            __m512i b0 = _mm512_shuffle_i64x2(lo01, lo23, 0x88), b1 = _mm512_shuffle_i64x2(lo01, lo23, 0xDD);
            __m512i b2 = _mm512_shuffle_i64x2(hi01, hi23, 0x88), b3 = _mm512_shuffle_i64x2(hi01, hi23, 0xDD);
            __m512i c0 = _mm512_shuffle_i64x2(lo45, lo67, 0x88), c1 = _mm512_shuffle_i64x2(lo45, lo67, 0xDD);
            __m512i c2 = _mm512_shuffle_i64x2(hi45, hi67, 0x88), c3 = _mm512_shuffle_i64x2(hi45, hi67, 0xDD);
            __m512i out[8];
            out[0] = _mm512_shuffle_i64x2(b0, c0, 0x88);
            out[4] = _mm512_shuffle_i64x2(b0, c0, 0xDD);
            out[2] = _mm512_shuffle_i64x2(b1, c1, 0x88);
            out[6] = _mm512_shuffle_i64x2(b1, c1, 0xDD);
            out[1] = _mm512_shuffle_i64x2(b2, c2, 0x88);
            out[5] = _mm512_shuffle_i64x2(b2, c2, 0xDD);
            out[3] = _mm512_shuffle_i64x2(b3, c3, 0x88);
            out[7] = _mm512_shuffle_i64x2(b3, c3, 0xDD);
            /* unrolled: a plain loop over out[] became a rep movsq of
             * spilled registers, slow for the few words of narrow layers */
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                if (k < kn)
                    _mm512_store_si512(dst + (int64_t)(k0 + k) * 8, out[k]);
        }
    }
}

EBNN_TARGET_AVX512 static AINLINE void
tile(const int mr, const int ng, int kc, const uint64_t *a, int64_t lda,
     const uint64_t *bp, int nf, int first, int32_t *c, int64_t ldc)
{
    __m512i acc[MR][NG];
    for (int i = 0; i < mr; i++)
        for (int g = 0; g < ng; g++)
            acc[i][g] = _mm512_setzero_si512();
    for (int k = 0; k < kc; k++) {
        __m512i bv[NG];
        for (int g = 0; g < ng; g++)
            bv[g] = _mm512_loadu_si512(bp + ((int64_t)g * kc + k) * 8);
        for (int i = 0; i < mr; i++) {
            __m512i av = _mm512_set1_epi64((long long)a[i * lda + k]);
            for (int g = 0; g < ng; g++)
                acc[i][g] = _mm512_add_epi64(
                    acc[i][g], _mm512_popcnt_epi64(_mm512_xor_si512(av, bv[g])));
        }
    }
    for (int g = 0; g < ng; g++) {
        int left = nf - 8 * g;
        __mmask8 lm = left >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1);
        for (int i = 0; i < mr; i++) {
            int32_t *dst = c + i * ldc + 8 * g;
            __m256i v = _mm512_cvtepi64_epi32(acc[i][g]);
            if (!first)
                v = _mm256_add_epi32(v, _mm256_maskz_loadu_epi32(lm, dst));
            _mm256_mask_storeu_epi32(dst, lm, v);
        }
    }
}

/* one specialized copy per (mr, ng) so the tile lives in registers */
#define CASE(MRV, NGV)                                                        \
    case (MRV) * 8 + (NGV):                                                   \
        tile(MRV, NGV, kc, a, lda, bp, nf, first, c, ldc);                    \
        break;
#define CASES(MRV) CASE(MRV, 1) CASE(MRV, 2) CASE(MRV, 3) CASE(MRV, 4)

EBNN_TARGET_AVX512 static void
tile_any(int mr, int ng, int kc, const uint64_t *a, int64_t lda,
         const uint64_t *bp, int nf, int first, int32_t *c, int64_t ldc)
{
    switch (mr * 8 + ng) {
        CASES(1) CASES(2) CASES(3) CASES(4) CASES(5) CASES(6)
    }
}

/* The lane sums of 8 accumulators as one vector (lane f = the sum of
 * acc[f]'s lanes): a transpose-and-add tree, 21 instructions for 8
 * filters instead of a full horizontal reduction (~7) per filter. Integer
 * adds, so the order does not matter. */
EBNN_TARGET_AVX512 static AINLINE __m512i sum_lanes8(const __m512i *acc)
{
    /* 128-bit lane l of p[q] = (acc[2q] pair sum, acc[2q+1] pair sum) */
    __m512i p[4];
    for (int q = 0; q < 4; q++)
        p[q] = _mm512_add_epi64(_mm512_unpacklo_epi64(acc[2 * q], acc[2 * q + 1]),
                                _mm512_unpackhi_epi64(acc[2 * q], acc[2 * q + 1]));
    /* lanes (0+1, 2+3) of p[0], then of p[1]: filters 0-3; likewise 4-7 */
    __m512i lo = _mm512_add_epi64(_mm512_shuffle_i64x2(p[0], p[1], 0x88),
                                  _mm512_shuffle_i64x2(p[0], p[1], 0xDD));
    __m512i hi = _mm512_add_epi64(_mm512_shuffle_i64x2(p[2], p[3], 0x88),
                                  _mm512_shuffle_i64x2(p[2], p[3], 0xDD));
    /* lo = (f0 f1)(f0 f1)(f2 f3)(f2 f3) halves: add the two halves */
    return _mm512_add_epi64(_mm512_shuffle_i64x2(lo, hi, 0x88),
                            _mm512_shuffle_i64x2(lo, hi, 0xDD));
}

/* Few rows (dense layer, batch 1): packing filters would cost as much as
 * using them once, so run K along the lanes instead, 8 filters at a time
 * (then 4, 1 for the rest), with a masked last step and the lane sums of
 * 8 filters reduced together (sum_lanes8). */
EBNN_TARGET_AVX512 static void
few_rows(int m, int n, int kwords, const uint64_t *a, int64_t lda,
         const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    int tail = kwords % 8;
    __mmask8 tm = (__mmask8)((1u << tail) - 1);
    for (int i = 0; i < m; i++) {
        const uint64_t *ai = a + i * lda;
        int j0 = 0;
        for (; j0 + 8 <= n; j0 += 8) {
            const uint64_t *bj = b + j0 * ldb;
            __m512i acc[8];
            for (int r = 0; r < 8; r++)
                acc[r] = _mm512_setzero_si512();
            int k = 0;
            for (; k + 8 <= kwords; k += 8) {
                __m512i av = _mm512_loadu_si512(ai + k);
                for (int r = 0; r < 8; r++)
                    acc[r] = _mm512_add_epi64(acc[r], _mm512_popcnt_epi64(_mm512_xor_si512(
                                 av, _mm512_loadu_si512(bj + r * ldb + k))));
            }
            if (tail) {
                __m512i av = _mm512_maskz_loadu_epi64(tm, ai + k);
                for (int r = 0; r < 8; r++)
                    acc[r] = _mm512_add_epi64(acc[r], _mm512_popcnt_epi64(_mm512_xor_si512(
                                 av, _mm512_maskz_loadu_epi64(tm, bj + r * ldb + k))));
            }
            _mm256_storeu_si256((__m256i *)(c + i * ldc + j0),
                                _mm512_cvtepi64_epi32(sum_lanes8(acc)));
        }
        for (int j = j0; j < n; j += 4) {
            int nr = n - j < 4 ? n - j : 4;
            __m512i acc[4];
            for (int r = 0; r < 4; r++)
                acc[r] = _mm512_setzero_si512();
            int k = 0;
            for (; k + 8 <= kwords; k += 8) {
                __m512i av = _mm512_loadu_si512(ai + k);
                for (int r = 0; r < nr; r++)
                    acc[r] = _mm512_add_epi64(acc[r], _mm512_popcnt_epi64(_mm512_xor_si512(
                                 av, _mm512_loadu_si512(b + (j + r) * ldb + k))));
            }
            if (tail) {
                __m512i av = _mm512_maskz_loadu_epi64(tm, ai + k);
                for (int r = 0; r < nr; r++)
                    acc[r] = _mm512_add_epi64(acc[r], _mm512_popcnt_epi64(_mm512_xor_si512(
                                 av, _mm512_maskz_loadu_epi64(tm, b + (j + r) * ldb + k))));
            }
            for (int r = 0; r < nr; r++)
                c[i * ldc + j + r] = (int32_t)_mm512_reduce_add_epi64(acc[r]);
        }
    }
}

EBNN_TARGET_AVX512
void ebnn_bgemm_avx512(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                       const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    uint64_t bp[NG * 8 * KC] __attribute__((aligned(64)));
    if (kwords == 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[i * ldc + j] = 0;
        return;
    }
    if (m < 4) {
        few_rows(m, n, kwords, a, lda, b, ldb, c, ldc);
        return;
    }
    for (int j0 = 0; j0 < n; j0 += NG * 8) {
        int nf = n - j0 < NG * 8 ? n - j0 : NG * 8;
        int ng = (nf + 7) / 8;
        for (int k0 = 0; k0 < kwords; k0 += KC) {
            int kc = kwords - k0 < KC ? kwords - k0 : KC;
            pack_filters(nf, kc, b + j0 * ldb + k0, ldb, bp);
            for (int i0 = 0; i0 < m; i0 += MR) {
                int mr = m - i0 < MR ? m - i0 : MR;
                tile_any(mr, ng, kc, a + i0 * lda + k0, lda, bp, nf, k0 == 0,
                         c + i0 * ldc + j0, ldc);
            }
        }
    }
}
#endif

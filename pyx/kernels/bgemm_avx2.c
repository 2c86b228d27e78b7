/* AVX2 popcount GEMM: the layout of bgemm_avx512.c (lanes hold filters, 4
 * per ymm, pixel words broadcast), with the popcount done by the nibble
 * lookup (vpshufb) into byte counts. Byte counters are folded into 64-bit
 * lanes with vpsadbw every 31 K words, before a byte can overflow
 * (31 * 8 = 248). Tile: 3 pixels x 2 groups of 4 filters, which with the
 * lookup constants and temporaries fits the 16 ymm registers. */
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define MR 3
#define NG 2
#define KC 128
#define FOLD 31

#define AINLINE __attribute__((always_inline)) inline

static void pack_filters(int nf, int kc, const uint64_t *b, int64_t ldb,
                         uint64_t *bp)
{
    int groups = (nf + 3) / 4;
    for (int f = 0; f < groups * 4; f++) {
        uint64_t *dst = bp + (int64_t)(f / 4) * kc * 4 + f % 4;
        if (f < nf) {
            const uint64_t *src = b + f * ldb;
            for (int k = 0; k < kc; k++)
                dst[k * 4] = src[k];
        } else {
            for (int k = 0; k < kc; k++)
                dst[k * 4] = 0;
        }
    }
}

EBNN_TARGET_AVX2 static AINLINE void
tile(const int mr, const int ng, int kc, const uint64_t *a, int64_t lda,
     const uint64_t *bp, int nf, int first, int32_t *c, int64_t ldc)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256i sum[MR][NG];
    for (int i = 0; i < mr; i++)
        for (int g = 0; g < ng; g++)
            sum[i][g] = _mm256_setzero_si256();
    for (int k0 = 0; k0 < kc; k0 += FOLD) {
        int k1 = kc - k0 < FOLD ? kc : k0 + FOLD;
        __m256i bytes[MR][NG];
        for (int i = 0; i < mr; i++)
            for (int g = 0; g < ng; g++)
                bytes[i][g] = _mm256_setzero_si256();
        for (int k = k0; k < k1; k++) {
            __m256i bv[NG];
            for (int g = 0; g < ng; g++)
                bv[g] = _mm256_loadu_si256((const __m256i *)(bp + ((int64_t)g * kc + k) * 4));
            for (int i = 0; i < mr; i++) {
                __m256i av = _mm256_set1_epi64x((long long)a[i * lda + k]);
                for (int g = 0; g < ng; g++) {
                    __m256i x = _mm256_xor_si256(av, bv[g]);
                    __m256i lo = _mm256_and_si256(x, low4);
                    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
                    bytes[i][g] = _mm256_add_epi8(
                        bytes[i][g], _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),
                                                     _mm256_shuffle_epi8(lut, hi)));
                }
            }
        }
        for (int i = 0; i < mr; i++)
            for (int g = 0; g < ng; g++)
                sum[i][g] = _mm256_add_epi64(
                    sum[i][g], _mm256_sad_epu8(bytes[i][g], _mm256_setzero_si256()));
    }
    for (int g = 0; g < ng; g++) {
        int left = nf - 4 * g;
        for (int i = 0; i < mr; i++) {
            int32_t *dst = c + i * ldc + 4 * g;
            int64_t s[4];
            _mm256_storeu_si256((__m256i *)s, sum[i][g]);
            for (int l = 0; l < 4 && l < left; l++)
                dst[l] = (first ? 0 : dst[l]) + (int32_t)s[l];
        }
    }
}

#define CASE(MRV, NGV)                                                        \
    case (MRV) * 8 + (NGV):                                                   \
        tile(MRV, NGV, kc, a, lda, bp, nf, first, c, ldc);                    \
        break;

EBNN_TARGET_AVX2 static void
tile_any(int mr, int ng, int kc, const uint64_t *a, int64_t lda,
         const uint64_t *bp, int nf, int first, int32_t *c, int64_t ldc)
{
    switch (mr * 8 + ng) {
        CASE(1, 1) CASE(1, 2) CASE(2, 1) CASE(2, 2) CASE(3, 1) CASE(3, 2)
    }
}

/* byte popcounts of x (nibble table lookups) */
EBNN_TARGET_AVX2 static inline __attribute__((always_inline)) __m256i
byte_counts(__m256i x, __m256i lut, __m256i low4)
{
    return _mm256_add_epi8(
        _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low4)),
        _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low4)));
}

/* Few rows (dense layer, batch 1): K along the lanes, 4 words per step,
 * byte counts folded every step; the last words use scalar popcnt. Four
 * filters per pass share the row's loads, and their four lane sums come
 * out of one transpose-and-add (integer sums: any order). */
EBNN_TARGET_AVX2 static void
few_rows(int m, int n, int kwords, const uint64_t *a, int64_t lda,
         const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    for (int i = 0; i < m; i++) {
        const uint64_t *ai = a + i * lda;
        int j0 = 0;
        for (; j0 + 4 <= n; j0 += 4) {
            const uint64_t *bj = b + j0 * ldb;
            __m256i acc[4] = {zero, zero, zero, zero};
            int k = 0;
            while (k + 4 <= kwords) {
                /* byte counts (<= 8 per step) summed over up to 31 steps
                 * before they are widened */
                __m256i bytes[4] = {zero, zero, zero, zero};
                for (int step = 0; step < 31 && k + 4 <= kwords; step++, k += 4) {
                    __m256i av = _mm256_loadu_si256((const __m256i *)(ai + k));
                    for (int r = 0; r < 4; r++) {
                        __m256i x = _mm256_xor_si256(
                            av, _mm256_loadu_si256((const __m256i *)(bj + r * ldb + k)));
                        bytes[r] = _mm256_add_epi8(bytes[r], byte_counts(x, lut, low4));
                    }
                }
                for (int r = 0; r < 4; r++)
                    acc[r] = _mm256_add_epi64(acc[r], _mm256_sad_epu8(bytes[r], zero));
            }
            /* lanes (f0 f1 f0 f1) pair sums, then the two 128-bit halves */
            __m256i t0 = _mm256_add_epi64(_mm256_unpacklo_epi64(acc[0], acc[1]),
                                          _mm256_unpackhi_epi64(acc[0], acc[1]));
            __m256i t1 = _mm256_add_epi64(_mm256_unpacklo_epi64(acc[2], acc[3]),
                                          _mm256_unpackhi_epi64(acc[2], acc[3]));
            __m256i sum = _mm256_add_epi64(_mm256_permute2x128_si256(t0, t1, 0x20),
                                           _mm256_permute2x128_si256(t0, t1, 0x31));
            int64_t s4[4];
            _mm256_storeu_si256((__m256i *)s4, sum);
            for (int r = 0; r < 4; r++) {
                int64_t total = s4[r];
                for (int kk = k; kk < kwords; kk++)
                    total += __builtin_popcountll(ai[kk] ^ bj[r * ldb + kk]);
                c[i * ldc + j0 + r] = (int32_t)total;
            }
        }
        for (int j = j0; j < n; j++) {
            const uint64_t *bj = b + j * ldb;
            __m256i acc = _mm256_setzero_si256();
            int k = 0;
            for (; k + 4 <= kwords; k += 4) {
                __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(ai + k)),
                                             _mm256_loadu_si256((const __m256i *)(bj + k)));
                __m256i cnt = _mm256_add_epi8(
                    _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low4)),
                    _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low4)));
                acc = _mm256_add_epi64(acc, _mm256_sad_epu8(cnt, _mm256_setzero_si256()));
            }
            int64_t s[4];
            _mm256_storeu_si256((__m256i *)s, acc);
            int64_t total = s[0] + s[1] + s[2] + s[3];
            for (; k < kwords; k++)
                total += __builtin_popcountll(ai[k] ^ bj[k]);
            c[i * ldc + j] = (int32_t)total;
        }
    }
}

EBNN_TARGET_AVX2
void ebnn_bgemm_avx2(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                     const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    uint64_t bp[NG * 4 * KC] __attribute__((aligned(32)));
    if (kwords == 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[i * ldc + j] = 0;
        return;
    }
    if (m < 3) {
        few_rows(m, n, kwords, a, lda, b, ldb, c, ldc);
        return;
    }
    for (int j0 = 0; j0 < n; j0 += NG * 4) {
        int nf = n - j0 < NG * 4 ? n - j0 : NG * 4;
        int ng = (nf + 3) / 4;
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

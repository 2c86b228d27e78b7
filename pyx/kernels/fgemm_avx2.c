/* AVX2 float GEMM (register tiles of 6x16 accumulators, one broadcast FMA
 * per element step; n is a multiple of 16) and dot products (masked tails). */
#if defined(__x86_64__)
#include <immintrin.h>
#include "wgemm.h"

/* rows x 16 tile of c, all kq*span steps in registers; rows is a constant
 * after inlining */
EBNN_TARGET_AVX2 static inline __attribute__((always_inline)) void
tile(int rows, int kq, int span, const float *a, int64_t lda, int64_t ldk,
     const float *b, int64_t ldb, float *c, int64_t ldc)
{
    __m256 acc[6][2];
    for (int r = 0; r < rows; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int q = 0; q < kq; q++) {
        const float *aq = a + q * ldk, *bq = b + (int64_t)q * span * ldb;
        for (int p = 0; p < span; p++) {
            __m256 b0 = _mm256_loadu_ps(bq + p * ldb), b1 = _mm256_loadu_ps(bq + p * ldb + 8);
            for (int r = 0; r < rows; r++) {
                __m256 av = _mm256_broadcast_ss(aq + r * lda + p);
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm256_storeu_ps(c + r * ldc, acc[r][0]);
        _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
    }
}

EBNN_TARGET_AVX2 void ebnn_fgemm_avx2(int m, int n, int kq, int span,
                                      const float *a, int64_t lda, int64_t ldk,
                                      const float *b, int64_t ldb, float *c,
                                      int64_t ldc)
{
    for (int j = 0; j < n; j += 16)
        for (int i = 0; i < m; i += 6) {
            const float *ai = a + i * lda, *bj = b + j;
            float *ci = c + i * ldc + j;
            /* a remainder is one short tile, not rows one by one (those
             * would wait on the FMA latency) */
            switch (m - i < 6 ? m - i : 6) {
            case 1: tile(1, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            case 2: tile(2, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            case 3: tile(3, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            case 4: tile(4, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            case 5: tile(5, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            default: tile(6, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            }
        }
}

EBNN_TARGET_AVX2 static inline __m256 load_tail(const float *p, int r)
{
    if (r >= 8)
        return _mm256_loadu_ps(p);
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(r), lane));
}

EBNN_TARGET_AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* c[f] = dot(a, b_f) for nf (constant) filters */
EBNN_TARGET_AVX2 static inline __attribute__((always_inline)) void
dots(int nf, int k, const float *a, const float *b, int64_t ldb, float *c)
{
    __m256 acc[4];
    for (int f = 0; f < nf; f++)
        acc[f] = _mm256_setzero_ps();
    for (int p = 0; p < k; p += 8) {
        __m256 av = load_tail(a + p, k - p);
        for (int f = 0; f < nf; f++)
            acc[f] = _mm256_fmadd_ps(av, load_tail(b + f * ldb + p, k - p), acc[f]);
    }
    for (int f = 0; f < nf; f++)
        c[f] = hsum8(acc[f]);
}

EBNN_TARGET_AVX2 void ebnn_fdot_avx2(int m, int n, int k, const float *a,
                                     int64_t lda, const float *b, int64_t ldb,
                                     float *c, int64_t ldc)
{
    for (int i = 0; i < m; i++) {
        int j = 0;
        for (; j + 4 <= n; j += 4)
            dots(4, k, a + i * lda, b + j * ldb, ldb, c + i * ldc + j);
        for (; j < n; j++)
            dots(1, k, a + i * lda, b + j * ldb, ldb, c + i * ldc + j);
    }
}
#endif

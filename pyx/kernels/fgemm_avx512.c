/* AVX-512 float GEMM (register tiles of 6x32 / 12x16 accumulators, one
 * broadcast FMA per element step) and dot products (masked tails). */
#if defined(__x86_64__)
#include <immintrin.h>
#include "wgemm.h"

/* rows x (16*vecs) tile of c; rows and vecs are constants after inlining */
EBNN_TARGET_AVX512 static inline __attribute__((always_inline)) void
tile(int rows, int vecs, int k, const float *a, int64_t lda, const float *b,
     int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    __m512 acc[12][2];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < vecs; v++)
            acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        __m512 b0 = _mm512_loadu_ps(b + p * ldb);
        __m512 b1 = vecs > 1 ? _mm512_loadu_ps(b + p * ldb + 16) : b0;
        for (int r = 0; r < rows; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + p]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            if (vecs > 1)
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < vecs; v++)
            _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

EBNN_TARGET_AVX512 void ebnn_fgemm_avx512(int m, int n, int k, const float *a,
                                          int64_t lda, const float *b,
                                          int64_t ldb, float *c, int64_t ldc,
                                          int accumulate)
{
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        int i = 0;
        for (; i + 6 <= m; i += 6)
            tile(6, 2, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
        for (; i < m; i++)
            tile(1, 2, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
    }
    for (; j < n; j += 16) {
        int i = 0;
        for (; i + 12 <= m; i += 12)
            tile(12, 1, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
        for (; i < m; i++)
            tile(1, 1, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
    }
}

/* c[f] = dot(a, b_f) for nf (constant) filters */
EBNN_TARGET_AVX512 static inline __attribute__((always_inline)) void
dots(int nf, int k, const float *a, const float *b, int64_t ldb, float *c)
{
    __m512 acc[4];
    for (int f = 0; f < nf; f++)
        acc[f] = _mm512_setzero_ps();
    for (int p = 0; p < k; p += 16) {
        int r = k - p;
        __mmask16 lm = r >= 16 ? 0xffff : (__mmask16)((1u << r) - 1);
        __m512 av = _mm512_maskz_loadu_ps(lm, a + p);
        for (int f = 0; f < nf; f++)
            acc[f] = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(lm, b + f * ldb + p), acc[f]);
    }
    for (int f = 0; f < nf; f++)
        c[f] = _mm512_reduce_add_ps(acc[f]);
}

EBNN_TARGET_AVX512 void ebnn_fdot_avx512(int m, int n, int k, const float *a,
                                         int64_t lda, const float *b,
                                         int64_t ldb, float *c, int64_t ldc)
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

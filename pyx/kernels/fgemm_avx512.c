/* AVX-512 float GEMM (register tiles of 6x64 / 8x48 / 12x32 / 12x16
 * accumulators, one broadcast FMA per element step) and dot products (masked tails). */
#if defined(__x86_64__)
#include <immintrin.h>
#include "wgemm.h"

/* rows x (16*vecs) tile of c, all kq*span steps in registers; rows and vecs
 * are constants after inlining (at most 24 accumulators + vecs + 1 of the
 * 32 zmm registers) */
EBNN_TARGET_AVX512 static inline __attribute__((always_inline)) void
tile(int rows, int vecs, int kq, int span, const float *a, int64_t lda,
     int64_t ldk, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    __m512 acc[12][4];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < vecs; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int q = 0; q < kq; q++) {
        const float *aq = a + q * ldk, *bq = b + (int64_t)q * span * ldb;
        for (int p = 0; p < span; p++) {
            __m512 bv[4];
            for (int v = 0; v < vecs; v++)
                bv[v] = _mm512_loadu_ps(bq + p * ldb + 16 * v);
            for (int r = 0; r < rows; r++) {
                __m512 av = _mm512_set1_ps(aq[r * lda + p]);
                for (int v = 0; v < vecs; v++)
                    acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < vecs; v++)
            _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

/* full tile height for a column block of `vecs` vectors */
static const int tile_rows[5] = {0, 12, 12, 8, 6};

/* one tile of any height 1..tile_rows[vecs]: remainders run as one short
 * tile, not row by row (one-row tiles would wait on the FMA latency) */
#define CASE(R, V)                                                            \
    case R * 4 + V:                                                           \
        tile(R, V, kq, span, a, lda, ldk, b, ldb, c, ldc);                    \
        break;
#define ROWS6(V) CASE(1, V) CASE(2, V) CASE(3, V) CASE(4, V) CASE(5, V) CASE(6, V)
#define ROWS8(V) ROWS6(V) CASE(7, V) CASE(8, V)
#define ROWS12(V) ROWS8(V) CASE(9, V) CASE(10, V) CASE(11, V) CASE(12, V)

EBNN_TARGET_AVX512 static void
any_tile(int rows, int vecs, int kq, int span, const float *a, int64_t lda,
         int64_t ldk, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    switch (rows * 4 + vecs) {
        ROWS12(1) ROWS12(2) ROWS8(3) ROWS6(4)
    }
}

/* Common stems with the step counts known, so a tile's whole window
 * unrolls (LeNet 5x5 over 1 channel into 32 filters: 12x2 tiles reach ~95%
 * of the FMA peak, 75% with the loops; ResNet 3x3 over 3 channels into 16
 * filters): tiles of 4..12 rows of VECS vectors, kq kernel rows of SPAN
 * steps. Same FMAs in the same order as any_tile. */
#define FIXED_CASE(R, VECS, KQ, SPAN)                                         \
    case R:                                                                   \
        tile(R, VECS, KQ, SPAN, a, lda, ldk, b, ldb, c, ldc);                 \
        return 1;
#define FIXED_TILES(NAME, VECS, KQ, SPAN)                                     \
    EBNN_TARGET_AVX512 static int NAME(int rows, const float *a, int64_t lda, \
                                       int64_t ldk, const float *b,           \
                                       int64_t ldb, float *c, int64_t ldc)    \
    {                                                                         \
        switch (rows) {                                                       \
            FIXED_CASE(4, VECS, KQ, SPAN) FIXED_CASE(5, VECS, KQ, SPAN)       \
            FIXED_CASE(6, VECS, KQ, SPAN) FIXED_CASE(7, VECS, KQ, SPAN)       \
            FIXED_CASE(8, VECS, KQ, SPAN) FIXED_CASE(9, VECS, KQ, SPAN)       \
            FIXED_CASE(10, VECS, KQ, SPAN) FIXED_CASE(11, VECS, KQ, SPAN)     \
            FIXED_CASE(12, VECS, KQ, SPAN)                                    \
        }                                                                     \
        return 0;                                                             \
    }
FIXED_TILES(tiles_5x5x1_32, 2, 5, 5)
FIXED_TILES(tiles_3x3x3_16, 1, 3, 9)

/* one tile, by a fixed-step copy when there is one for (vecs, kq, span) */
EBNN_TARGET_AVX512 static void
one_tile(int rows, int vecs, int kq, int span, const float *a, int64_t lda,
         int64_t ldk, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    if (vecs == 2 && kq == 5 && span == 5 && tiles_5x5x1_32(rows, a, lda, ldk, b, ldb, c, ldc))
        return;
    if (vecs == 1 && kq == 3 && span == 9 && tiles_3x3x3_16(rows, a, lda, ldk, b, ldb, c, ldc))
        return;
    any_tile(rows, vecs, kq, span, a, lda, ldk, b, ldb, c, ldc);
}

EBNN_TARGET_AVX512 void ebnn_fgemm_avx512(int m, int n, int kq, int span,
                                          const float *a, int64_t lda,
                                          int64_t ldk, const float *b,
                                          int64_t ldb, float *c, int64_t ldc)
{
    for (int j = 0; j < n;) {
        int vecs = (n - j) / 16 < 4 ? (n - j) / 16 : 4;
        for (int i = 0; i < m; i += tile_rows[vecs]) {
            int rows = m - i < tile_rows[vecs] ? m - i : tile_rows[vecs];
            one_tile(rows, vecs, kq, span, a + i * lda, lda, ldk, b + j, ldb,
                     c + i * ldc + j, ldc);
        }
        j += 16 * vecs;
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

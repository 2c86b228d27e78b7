/* Portable float GEMM / dot products: small register tiles written as
 * plain arrays the compiler can keep in (baseline) vector registers. */
#include "wgemm.h"

#define GR 4  /* rows per tile */
#define GC 16 /* columns per tile (= EBNN_FGEMM_NPAD, so n is a multiple) */

void ebnn_fgemm_generic(int m, int n, int kq, int span, const float *a,
                        int64_t lda, int64_t ldk, const float *b, int64_t ldb,
                        float *c, int64_t ldc)
{
    for (int j0 = 0; j0 < n; j0 += GC)
        for (int i0 = 0; i0 < m; i0 += GR) {
            int rows = m - i0 < GR ? m - i0 : GR;
            float acc[GR][GC] = {{0}};
            for (int q = 0; q < kq; q++) {
                const float *aq = a + i0 * lda + q * ldk;
                const float *bq = b + (int64_t)q * span * ldb + j0;
                for (int p = 0; p < span; p++) {
                    const float *bp = bq + p * ldb;
                    for (int r = 0; r < rows; r++) {
                        float av = aq[r * lda + p];
                        for (int j = 0; j < GC; j++)
                            acc[r][j] += av * bp[j];
                    }
                }
            }
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < GC; j++)
                    c[(i0 + r) * ldc + j0 + j] = acc[r][j];
        }
}

void ebnn_fdot_generic(int m, int n, int k, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float *c, int64_t ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            const float *ai = a + i * lda, *bj = b + j * ldb;
            float part[8] = {0};
            int p = 0;
            for (; p + 8 <= k; p += 8)
                for (int l = 0; l < 8; l++)
                    part[l] += ai[p + l] * bj[p + l];
            for (int l = 0; p + l < k; l++)
                part[l] += ai[p + l] * bj[p + l];
            c[i * ldc + j] = ((part[0] + part[1]) + (part[2] + part[3])) +
                             ((part[4] + part[5]) + (part[6] + part[7]));
        }
}

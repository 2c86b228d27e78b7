/* Reference float GEMM / dot products: the definition, one term at a time.
 * fgemm uses fmaf so that it is the same computation as the FMA paths. */
#include <math.h>
#include "wgemm.h"

void ebnn_fgemm_ref(int m, int n, int kq, int span, const float *a,
                    int64_t lda, int64_t ldk, const float *b, int64_t ldb,
                    float *c, int64_t ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int q = 0; q < kq; q++)
                for (int p = 0; p < span; p++)
                    s = fmaf(a[i * lda + q * ldk + p], b[((int64_t)q * span + p) * ldb + j], s);
            c[i * ldc + j] = s;
        }
}

void ebnn_fdot_ref(int m, int n, int k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++)
                s += a[i * lda + p] * b[j * ldb + p];
            c[i * ldc + j] = s;
        }
}

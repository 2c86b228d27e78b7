/* Reference popcount GEMM: the contract of ebnn_bgemm_fn, literally. */
#include "internal.h"

void ebnn_bgemm_ref(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                    const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            int64_t s = 0;
            for (int k = 0; k < kwords; k++) {
                uint64_t x = a[i * lda + k] ^ b[j * ldb + k];
                while (x) { /* no builtin: obviously right, slow */
                    x &= x - 1;
                    s++;
                }
            }
            c[i * ldc + j] = (int32_t)s;
        }
}

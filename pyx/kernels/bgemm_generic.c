/* Portable popcount GEMM: a 4x4 tile of (row, column) sums kept in
 * registers, so each loaded word feeds four xor-popcounts. */
#include "internal.h"

#define TM 4
#define TN 4

static inline void tile(int mr, int nr, int kwords, const uint64_t *a,
                        int64_t lda, const uint64_t *b, int64_t ldb,
                        int32_t *c, int64_t ldc)
{
    int64_t s[TM][TN] = {{0}};
    for (int k = 0; k < kwords; k++)
        for (int i = 0; i < mr; i++) {
            uint64_t av = a[i * lda + k];
            for (int j = 0; j < nr; j++)
                s[i][j] += __builtin_popcountll(av ^ b[j * ldb + k]);
        }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[i * ldc + j] = (int32_t)s[i][j];
}

void ebnn_bgemm_generic(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                        const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    for (int i = 0; i < m; i += TM) {
        int mr = m - i < TM ? m - i : TM;
        for (int j = 0; j < n; j += TN) {
            int nr = n - j < TN ? n - j : TN;
            const uint64_t *ai = a + i * lda, *bj = b + j * ldb;
            int32_t *cij = c + i * ldc + j;
            if (mr == TM && nr == TN) /* constant bounds: fully unrolled */
                tile(TM, TN, kwords, ai, lda, bj, ldb, cij, ldc);
            else
                tile(mr, nr, kwords, ai, lda, bj, ldb, cij, ldc);
        }
    }
}

/* NEON float GEMM (6x16 register tiles on aarch64, 4x8 on armv7; n is a
 * multiple of 16) and dot products, for aarch64 and armv7 (fused
 * multiply-add where the FPU has it, i.e. aarch64 and armv7 with
 * neon-vfpv4). */
#if defined(__ARM_NEON)
#include <arm_neon.h>
#include <stddef.h>
#include <string.h>
#include "wgemm.h"

static inline float32x4_t madd(float32x4_t acc, float32x4_t a, float32x4_t b)
{
#if defined(__ARM_FEATURE_FMA)
    return vfmaq_f32(acc, a, b);
#else
    return vmlaq_f32(acc, a, b);
#endif
}

/* Tile: aarch64 has 32 q registers, so 6 rows x 16 floats (24
 * accumulators + 4 of B + 1 broadcast); armv7 has 16 (and few general
 * registers for the row addresses): 4 rows x 8 floats, which counted fewer
 * instructions per MAC under qemu than 6 x 8 (no spills). */
#if defined(__aarch64__)
#define QV 4
#define TR 6
#else
#define QV 2
#define TR 4
#endif

/* rows x (4*QV) tile of c, all kq*span steps in registers; rows is a
 * constant after inlining. Row and B addresses walk as pointers (no 64-bit
 * index products in the loop: they cost instructions on armv7). */
static inline __attribute__((always_inline)) void
tile(int rows, int kq, int span, const float *a, int64_t lda, int64_t ldk,
     const float *b, int64_t ldb, float *c, int64_t ldc)
{
    const ptrdiff_t bstep = (ptrdiff_t)ldb;
    float32x4_t acc[TR][QV];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < QV; v++)
            acc[r][v] = vdupq_n_f32(0.0f);
    const float *bp = b;
    for (int q = 0; q < kq; q++) {
        const float *ar[TR];
        for (int r = 0; r < rows; r++)
            ar[r] = a + q * ldk + r * lda;
        for (int p = 0; p < span; p++, bp += bstep) {
            float32x4_t bv[QV];
            for (int v = 0; v < QV; v++)
                bv[v] = vld1q_f32(bp + 4 * v);
            for (int r = 0; r < rows; r++) {
                float32x4_t av = vld1q_dup_f32(ar[r] + p);
                for (int v = 0; v < QV; v++)
                    acc[r][v] = madd(acc[r][v], av, bv[v]);
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < QV; v++)
            vst1q_f32(c + r * ldc + 4 * v, acc[r][v]);
}

void ebnn_fgemm_neon(int m, int n, int kq, int span, const float *a,
                     int64_t lda, int64_t ldk, const float *b, int64_t ldb,
                     float *c, int64_t ldc)
{
    for (int j = 0; j < n; j += 4 * QV)
        for (int i = 0; i < m; i += TR) {
            const float *ai = a + i * lda, *bj = b + j;
            float *ci = c + i * ldc + j;
            /* a remainder is one short tile, not rows one by one */
            switch (m - i < TR ? m - i : TR) {
            case 1: tile(1, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            case 2: tile(2, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            case 3: tile(3, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
#if TR > 4
            case 4: tile(4, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            case 5: tile(5, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
#endif
            default: tile(TR, kq, span, ai, lda, ldk, bj, ldb, ci, ldc); break;
            }
        }
}

static inline float32x4_t load_tail(const float *p, int r)
{
    if (r >= 4)
        return vld1q_f32(p);
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(tmp, p, (size_t)r * sizeof(float));
    return vld1q_f32(tmp);
}

static inline float hsum4(float32x4_t v)
{
#if defined(__aarch64__)
    return vaddvq_f32(v);
#else
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(s, s), 0);
#endif
}

/* c[f] = dot(a, b_f) for nf (constant) filters */
static inline __attribute__((always_inline)) void
dots(int nf, int k, const float *a, const float *b, int64_t ldb, float *c)
{
    float32x4_t acc[4];
    for (int f = 0; f < nf; f++)
        acc[f] = vdupq_n_f32(0.0f);
    for (int p = 0; p < k; p += 4) {
        float32x4_t av = load_tail(a + p, k - p);
        for (int f = 0; f < nf; f++)
            acc[f] = madd(acc[f], av, load_tail(b + f * ldb + p, k - p));
    }
    for (int f = 0; f < nf; f++)
        c[f] = hsum4(acc[f]);
}

void ebnn_fdot_neon(int m, int n, int k, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float *c, int64_t ldc)
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

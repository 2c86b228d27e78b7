/* NEON float GEMM (6x8 register tiles; n is a multiple of 16) and dot
 * products, for aarch64 and armv7 (fused multiply-add where the FPU has it,
 * i.e. aarch64 and armv7 with neon-vfpv4). */
#if defined(__ARM_NEON)
#include <arm_neon.h>
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

/* rows x 8 tile of c; rows is a constant after inlining */
static inline __attribute__((always_inline)) void
tile(int rows, int k, const float *a, int64_t lda, const float *b,
     int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    float32x4_t acc[6][2];
    for (int r = 0; r < rows; r++)
        if (accumulate) {
            acc[r][0] = vld1q_f32(c + r * ldc);
            acc[r][1] = vld1q_f32(c + r * ldc + 4);
        } else {
            acc[r][0] = acc[r][1] = vdupq_n_f32(0.0f);
        }
    for (int p = 0; p < k; p++) {
        float32x4_t b0 = vld1q_f32(b + p * ldb), b1 = vld1q_f32(b + p * ldb + 4);
        for (int r = 0; r < rows; r++) {
            float32x4_t av = vdupq_n_f32(a[r * lda + p]);
            acc[r][0] = madd(acc[r][0], av, b0);
            acc[r][1] = madd(acc[r][1], av, b1);
        }
    }
    for (int r = 0; r < rows; r++) {
        vst1q_f32(c + r * ldc, acc[r][0]);
        vst1q_f32(c + r * ldc + 4, acc[r][1]);
    }
}

void ebnn_fgemm_neon(int m, int n, int k, const float *a, int64_t lda,
                     const float *b, int64_t ldb, float *c, int64_t ldc,
                     int accumulate)
{
    for (int j = 0; j < n; j += 8) {
        int i = 0;
        for (; i + 6 <= m; i += 6)
            tile(6, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
        for (; i < m; i++)
            tile(1, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, accumulate);
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

/* Float pooling with TF semantics: padded positions are ignored (never
 * counted), so average pooling divides by the number of in-bounds taps.
 * Loops run along channels (NHWC) and vectorize without intrinsics; the
 * AVX2 / AVX-512 and aarch64 NEON paths (below) keep a block of channels
 * in registers over the whole window, with the same operations per
 * element. */
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* The in-bounds window of one output pixel: rows [ky0, ky1), columns
 * [kx0, kx1), and `base` = the input pixel of tap (0, 0) (may lie outside
 * the image; only in-bounds taps are read). */
typedef struct {
    int ky0, ky1, kx0, kx1;
    int64_t base;
} window;

/* pixel coordinates advance one by one (no divisions per pixel) */
typedef struct {
    int64_t n;
    int oy, ox;
} cursor;

static cursor cursor_at(const ebnn_conv_geom *g, int64_t p)
{
    cursor at = {p / ((int64_t)g->out_w * g->out_h), (int)(p / g->out_w % g->out_h),
                 (int)(p % g->out_w)};
    return at;
}

static void cursor_next(const ebnn_conv_geom *g, cursor *at)
{
    if (++at->ox < g->out_w)
        return;
    at->ox = 0;
    if (++at->oy < g->out_h)
        return;
    at->oy = 0;
    at->n++;
}

static window window_of(const ebnn_conv_geom *g, const cursor *at)
{
    int y0 = at->oy * g->stride_h - g->pad_top, x0 = at->ox * g->stride_w - g->pad_left;
    window w = {y0 < 0 ? -y0 : 0, g->in_h - y0 < g->kh ? g->in_h - y0 : g->kh,
                x0 < 0 ? -x0 : 0, g->in_w - x0 < g->kw ? g->in_w - x0 : g->kw,
                (at->n * g->in_h + y0) * g->in_w + x0};
    return w;
}

/* the max rule, x > m ? x : m (NaN in x never wins) */
static inline float max_rule(float x, float m) { return x > m ? x : m; }

enum { POOL_MAX, POOL_SUM };

/* One pass of taps t[0..n) (n constant 1..4 after inlining) over the
 * channels: o = rule(t[j], o) in tap order, starting from o, or if init
 * from t[0] (max) / 0 + t[0] (sum). Element-wise, so the compiler
 * vectorizes it, and the running value stays in a register within the
 * group instead of a store and reload per tap. */
static inline __attribute__((always_inline)) void
fold(int op, int n, int init, float *restrict o, const float *const *t, int c)
{
    const float *restrict t0 = t[0], *restrict t1 = t[n > 1 ? 1 : 0];
    const float *restrict t2 = t[n > 2 ? 2 : 0], *restrict t3 = t[n > 3 ? 3 : 0];
    for (int i = 0; i < c; i++) {
        float m;
        if (op == POOL_MAX) {
            m = init ? t0[i] : max_rule(t0[i], o[i]);
            if (n > 1)
                m = max_rule(t1[i], m);
            if (n > 2)
                m = max_rule(t2[i], m);
            if (n > 3)
                m = max_rule(t3[i], m);
        } else {
            m = (init ? 0.0f : o[i]) + t0[i];
            if (n > 1)
                m += t1[i];
            if (n > 2)
                m += t2[i];
            if (n > 3)
                m += t3[i];
        }
        o[i] = m;
    }
}

#define FOLD_CASE(OP, N)                                                      \
    case N * 2 + 1: fold(OP, N, 1, o, t, c); break;                           \
    case N * 2: fold(OP, N, 0, o, t, c); break;

static void fold_any(int op, int n, int init, float *o, const float *const *t, int c)
{
    if (op == POOL_MAX)
        switch (n * 2 + init) {
            FOLD_CASE(POOL_MAX, 1) FOLD_CASE(POOL_MAX, 2)
            FOLD_CASE(POOL_MAX, 3) FOLD_CASE(POOL_MAX, 4)
        }
    else
        switch (n * 2 + init) {
            FOLD_CASE(POOL_SUM, 1) FOLD_CASE(POOL_SUM, 2)
            FOLD_CASE(POOL_SUM, 3) FOLD_CASE(POOL_SUM, 4)
        }
}

/* One output pixel's window, channels in blocks of NV vectors held in
 * registers across all taps (NV constant after inlining). The operations
 * per element are the portable path's: max_ps(x, m) is x > m ? x : m
 * (NaN in x loses, a NaN m stays), and sums start from +0 + x0. Tail
 * lanes are masked: loaded as 0, never stored. */
#define POOL_WINDOW_BODY(VEC, NV, LOAD, STORE, MAX, ADD, DIV, ZERO, SETF, MASKS) \
    for (int c0 = 0; c0 < c; c0 += (NV) * (VEC)) {                              \
        MASKS                                                                   \
        VTYPE acc[NV];                                                          \
        for (int v = 0; v < (NV); v++)                                          \
            acc[v] = ZERO;                                                      \
        int started = 0;                                                        \
        for (int ky = w.ky0; ky < w.ky1; ky++)                                  \
            for (int kx = w.kx0; kx < w.kx1; kx++) {                            \
                const float *t = in + (w.base + (int64_t)ky * in_w + kx) * c + c0; \
                for (int v = 0; v < (NV); v++) {                                \
                    VTYPE x = LOAD(v, t + v * (VEC));                           \
                    if (op == POOL_MAX)                                         \
                        acc[v] = started ? MAX(x, acc[v]) : x;                  \
                    else                                                        \
                        acc[v] = ADD(started ? acc[v] : ZERO, x);               \
                }                                                               \
                started = 1;                                                    \
            }                                                                   \
        for (int v = 0; v < (NV); v++)                                          \
            STORE(v, o + c0 + v * (VEC),                                        \
                  op == POOL_MAX ? acc[v] : DIV(acc[v], SETF(count)));          \
    }

#if defined(__x86_64__)
#define VTYPE __m512
#define MASKS512                                                                \
    __mmask16 mk[4];                                                            \
    for (int v = 0; v < 4; v++) {                                               \
        int left = c - c0 - 16 * v;                                             \
        mk[v] = left >= 16 ? (__mmask16)0xFFFF                                  \
                           : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1); \
    }
#define LOAD512(v, p) _mm512_maskz_loadu_ps(mk[v], p)
#define STORE512(v, p, x) _mm512_mask_storeu_ps(p, mk[v], x)
EBNN_TARGET_AVX512 static inline __attribute__((always_inline)) void
window_avx512(int op, const int nv, const float *in, int in_w, window w, float *o, int c,
              float count)
{
    if (nv == 1) {
        POOL_WINDOW_BODY(16, 1, LOAD512, STORE512, _mm512_max_ps, _mm512_add_ps,
                         _mm512_div_ps, _mm512_setzero_ps(), _mm512_set1_ps, MASKS512)
    } else if (nv == 2) {
        POOL_WINDOW_BODY(16, 2, LOAD512, STORE512, _mm512_max_ps, _mm512_add_ps,
                         _mm512_div_ps, _mm512_setzero_ps(), _mm512_set1_ps, MASKS512)
    } else {
        POOL_WINDOW_BODY(16, 4, LOAD512, STORE512, _mm512_max_ps, _mm512_add_ps,
                         _mm512_div_ps, _mm512_setzero_ps(), _mm512_set1_ps, MASKS512)
    }
}
#undef VTYPE

#define VTYPE __m256
#define MASKS256                                                                \
    __m256i mk[4];                                                              \
    for (int v = 0; v < 4; v++) {                                               \
        int left = c - c0 - 8 * v;                                              \
        mk[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(left),                     \
                                   _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));  \
    }
#define LOAD256(v, p) _mm256_maskload_ps(p, mk[v])
#define STORE256(v, p, x) _mm256_maskstore_ps(p, mk[v], x)
EBNN_TARGET_AVX2 static inline __attribute__((always_inline)) void
window_avx2(int op, const int nv, const float *in, int in_w, window w, float *o, int c,
            float count)
{
    if (nv == 1) {
        POOL_WINDOW_BODY(8, 1, LOAD256, STORE256, _mm256_max_ps, _mm256_add_ps,
                         _mm256_div_ps, _mm256_setzero_ps(), _mm256_set1_ps, MASKS256)
    } else if (nv == 2) {
        POOL_WINDOW_BODY(8, 2, LOAD256, STORE256, _mm256_max_ps, _mm256_add_ps,
                         _mm256_div_ps, _mm256_setzero_ps(), _mm256_set1_ps, MASKS256)
    } else {
        POOL_WINDOW_BODY(8, 4, LOAD256, STORE256, _mm256_max_ps, _mm256_add_ps,
                         _mm256_div_ps, _mm256_setzero_ps(), _mm256_set1_ps, MASKS256)
    }
}
#undef VTYPE

/* pixels [begin, end): vectors per block = the fewest that cover c (up to
 * 4), so 32 channels run as 2 full zmm, not 4 with 2 masked off */
#define POOL_PIXELS(WINDOW, VEC)                                                \
    const int c = g->in_c;                                                      \
    const int nv = c <= (VEC) ? 1 : c <= 2 * (VEC) ? 2 : 4;                     \
    cursor at = cursor_at(g, begin);                                            \
    for (int64_t p = begin; p < end; p++, cursor_next(g, &at)) {                \
        window w = window_of(g, &at);                                           \
        float count = (float)((w.ky1 - w.ky0) * (w.kx1 - w.kx0));               \
        if (op == POOL_MAX)                                                     \
            WINDOW(POOL_MAX, nv, in, g->in_w, w, out + p * c, c, count);        \
        else                                                                    \
            WINDOW(POOL_SUM, nv, in, g->in_w, w, out + p * c, c, count);        \
    }

EBNN_TARGET_AVX512 static void pool_avx512(int op, const ebnn_conv_geom *g, const float *in,
                                           float *out, int64_t begin, int64_t end)
{
    POOL_PIXELS(window_avx512, 16)
}

EBNN_TARGET_AVX2 static void pool_avx2(int op, const ebnn_conv_geom *g, const float *in,
                                       float *out, int64_t begin, int64_t end)
{
    POOL_PIXELS(window_avx2, 8)
}
#endif

#if defined(__aarch64__)
/* aarch64 NEON: 4-float vectors without masks, so only for channel counts
 * that are multiples of 4, in blocks that divide them (16, 8 or 4
 * channels). max: x > m ? x : m as compare + select; vdivq is IEEE
 * division. armv7 keeps the portable loop: its NEON flushes denormals. */
static inline float32x4_t max_neon(float32x4_t x, float32x4_t m)
{
    return vbslq_f32(vcgtq_f32(x, m), x, m);
}
#define VTYPE float32x4_t
#define LOAD_NEON(v, p) vld1q_f32(p)
#define STORE_NEON(v, p, x) vst1q_f32(p, x)
static inline __attribute__((always_inline)) void
window_neon(int op, const int nv, const float *in, int in_w, window w, float *o, int c,
            float count)
{
    if (nv == 1) {
        POOL_WINDOW_BODY(4, 1, LOAD_NEON, STORE_NEON, max_neon, vaddq_f32, vdivq_f32,
                         vdupq_n_f32(0.0f), vdupq_n_f32, )
    } else if (nv == 2) {
        POOL_WINDOW_BODY(4, 2, LOAD_NEON, STORE_NEON, max_neon, vaddq_f32, vdivq_f32,
                         vdupq_n_f32(0.0f), vdupq_n_f32, )
    } else {
        POOL_WINDOW_BODY(4, 4, LOAD_NEON, STORE_NEON, max_neon, vaddq_f32, vdivq_f32,
                         vdupq_n_f32(0.0f), vdupq_n_f32, )
    }
}
#undef VTYPE

static void pool_neon(int op, const ebnn_conv_geom *g, const float *in, float *out,
                      int64_t begin, int64_t end)
{
    const int c = g->in_c;
    const int nv = c % 16 == 0 ? 4 : c % 8 == 0 ? 2 : 1;
    const int k22 = g->kh == 2 && g->kw == 2;
    cursor at = cursor_at(g, begin);
    for (int64_t p = begin; p < end; p++, cursor_next(g, &at)) {
        window w = window_of(g, &at);
        float count = (float)((w.ky1 - w.ky0) * (w.kx1 - w.kx0));
        if (k22 && w.ky0 == 0 && w.ky1 == 2 && w.kx0 == 0 && w.kx1 == 2) {
            /* a whole 2x2 window (ResNet's downsampling average pools):
             * constant bounds, so the taps unroll */
            window full = {0, 2, 0, 2, w.base};
            if (op == POOL_MAX)
                window_neon(POOL_MAX, nv, in, g->in_w, full, out + p * c, c, 4.0f);
            else
                window_neon(POOL_SUM, nv, in, g->in_w, full, out + p * c, c, 4.0f);
        } else if (op == POOL_MAX)
            window_neon(POOL_MAX, nv, in, g->in_w, w, out + p * c, c, count);
        else
            window_neon(POOL_SUM, nv, in, g->in_w, w, out + p * c, c, count);
    }
}
#endif

/* Taps are visited in ky, kx order, in groups of up to four per pass:
 * max: the first in-bounds tap, then o = x > o ? x : o;
 * average: ((0 + x0) + x1) + ..., then / (number of in-bounds taps). */
static void pool(int op, const ebnn_conv_geom *g, const float *in, float *out,
                 int tid, int nthreads)
{
    int64_t begin, end;
    const int c = g->in_c;
    ebnn_split((int64_t)g->n * g->out_h * g->out_w, tid, nthreads, &begin, &end);
    if (begin >= end)
        return;
#if defined(__x86_64__)
    if (ebnn_isa_get() == EBNN_ISA_AVX512) {
        pool_avx512(op, g, in, out, begin, end);
        return;
    }
    if (ebnn_isa_get() == EBNN_ISA_AVX2) {
        pool_avx2(op, g, in, out, begin, end);
        return;
    }
#endif
#if defined(__aarch64__)
    if (ebnn_isa_get() == EBNN_ISA_NEON && c % 4 == 0) {
        pool_neon(op, g, in, out, begin, end);
        return;
    }
#endif
    cursor at = cursor_at(g, begin);
    for (int64_t p = begin; p < end; p++, cursor_next(g, &at)) {
        window w = window_of(g, &at);
        float *o = out + p * c;
        const float *t[4];
        int n = 0, init = 1;
        for (int ky = w.ky0; ky < w.ky1; ky++)
            for (int kx = w.kx0; kx < w.kx1; kx++) {
                t[n++] = in + (w.base + (int64_t)ky * g->in_w + kx) * c;
                if (n == 4) {
                    fold_any(op, 4, init, o, t, c);
                    n = init = 0;
                }
            }
        if (n > 0)
            fold_any(op, n, init, o, t, c);
        if (op == POOL_SUM) {
            float count = (float)((w.ky1 - w.ky0) * (w.kx1 - w.kx0));
            for (int i = 0; i < c; i++)
                o[i] /= count;
        }
    }
}

void ebnn_maxpool_f32(const ebnn_conv_geom *g, const float *in, float *out,
                      int tid, int nthreads)
{
    pool(POOL_MAX, g, in, out, tid, nthreads);
}

void ebnn_avgpool_f32(const ebnn_conv_geom *g, const float *in, float *out,
                      int tid, int nthreads)
{
    pool(POOL_SUM, g, in, out, tid, nthreads);
}

#define GAP_CHUNK 64 /* channels per work item */

void ebnn_global_avgpool_f32(int n, int hw, int c, const float *in,
                             float *out, int tid, int nthreads)
{
    /* items are (image, channel chunk) so batch 1 still splits */
    int64_t chunks = (c + GAP_CHUNK - 1) / GAP_CHUNK, begin, end;
    ebnn_split((int64_t)n * chunks, tid, nthreads, &begin, &end);
    for (int64_t it = begin; it < end; it++) {
        int64_t b = it / chunks;
        int c0 = (int)(it % chunks) * GAP_CHUNK;
        int nc = c - c0 < GAP_CHUNK ? c - c0 : GAP_CHUNK;
        float acc[GAP_CHUNK] = {0};
        for (int64_t s = 0; s < hw; s++) {
            const float *x = in + (b * hw + s) * c + c0;
            for (int i = 0; i < nc; i++)
                acc[i] += x[i];
        }
        for (int i = 0; i < nc; i++)
            out[b * c + c0 + i] = acc[i] / (float)hw;
    }
}

/* Float pooling with TF semantics: padded positions are ignored (never
 * counted), so average pooling divides by the number of in-bounds taps.
 * Loops run along channels (NHWC) and vectorize without intrinsics. */
#include "edgebnn.h"

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

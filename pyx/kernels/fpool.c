/* Float pooling with TF semantics: padded positions are ignored (never
 * counted), so average pooling divides by the number of in-bounds taps.
 * Loops run along channels (NHWC) and vectorize without intrinsics. */
#include "edgebnn.h"

/* runs body with x pointing at each in-bounds tap of output pixel p */
#define FOR_TAPS(g, in, p, body)                                              \
    do {                                                                      \
        int ox_ = (int)((p) % (g)->out_w);                                    \
        int oy_ = (int)((p) / (g)->out_w % (g)->out_h);                       \
        int64_t n_ = (p) / ((int64_t)(g)->out_w * (g)->out_h);                \
        for (int ky_ = 0; ky_ < (g)->kh; ky_++) {                             \
            int iy_ = oy_ * (g)->stride_h - (g)->pad_top + ky_;               \
            if (iy_ < 0 || iy_ >= (g)->in_h)                                  \
                continue;                                                     \
            for (int kx_ = 0; kx_ < (g)->kw; kx_++) {                         \
                int ix_ = ox_ * (g)->stride_w - (g)->pad_left + kx_;          \
                if (ix_ < 0 || ix_ >= (g)->in_w)                              \
                    continue;                                                 \
                const float *x =                                              \
                    (in) + ((n_ * (g)->in_h + iy_) * (g)->in_w + ix_) * (g)->in_c; \
                body                                                          \
            }                                                                 \
        }                                                                     \
    } while (0)

void ebnn_maxpool_f32(const ebnn_conv_geom *g, const float *in, float *out,
                      int tid, int nthreads)
{
    int64_t begin, end;
    const int c = g->in_c;
    ebnn_split((int64_t)g->n * g->out_h * g->out_w, tid, nthreads, &begin, &end);
    for (int64_t p = begin; p < end; p++) {
        float *o = out + p * c;
        int first = 1;
        FOR_TAPS(g, in, p, {
            if (first) {
                for (int i = 0; i < c; i++)
                    o[i] = x[i];
                first = 0;
            } else {
                for (int i = 0; i < c; i++)
                    o[i] = x[i] > o[i] ? x[i] : o[i];
            }
        });
    }
}

void ebnn_avgpool_f32(const ebnn_conv_geom *g, const float *in, float *out,
                      int tid, int nthreads)
{
    int64_t begin, end;
    const int c = g->in_c;
    ebnn_split((int64_t)g->n * g->out_h * g->out_w, tid, nthreads, &begin, &end);
    for (int64_t p = begin; p < end; p++) {
        float *o = out + p * c;
        int count = 0;
        for (int i = 0; i < c; i++)
            o[i] = 0.0f;
        FOR_TAPS(g, in, p, {
            for (int i = 0; i < c; i++)
                o[i] += x[i];
            count++;
        });
        for (int i = 0; i < c; i++)
            o[i] /= (float)count;
    }
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

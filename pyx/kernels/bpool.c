/* Max pooling of bit-packed +-1 maps: the max is -1 only where every
 * in-window value is -1, so the result is the AND of the window's words.
 * Out-of-image positions are skipped (TF's same padding ignores them). */
#include "edgebnn.h"

void ebnn_maxpool_bits(const ebnn_conv_geom *g, const uint64_t *in,
                       uint64_t *out, int tid, int nthreads)
{
    int words = ebnn_words(g->in_c);
    int64_t rows = (int64_t)g->n * g->out_h, r0, r1;
    ebnn_split(rows, tid, nthreads, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->out_h;
        int oy = (int)(r % g->out_h);
        int y0 = oy * g->stride_h - g->pad_top;
        for (int ox = 0; ox < g->out_w; ox++) {
            int x0 = ox * g->stride_w - g->pad_left;
            uint64_t *o = out + (r * g->out_w + ox) * words;
            for (int i = 0; i < words; i++)
                o[i] = ~0ull;
            for (int y = y0; y < y0 + g->kh; y++) {
                if (y < 0 || y >= g->in_h)
                    continue;
                for (int x = x0; x < x0 + g->kw; x++) {
                    if (x < 0 || x >= g->in_w)
                        continue;
                    const uint64_t *src = in + ((n * g->in_h + y) * g->in_w + x) * words;
                    for (int i = 0; i < words; i++)
                        o[i] &= src[i];
                }
            }
        }
    }
}

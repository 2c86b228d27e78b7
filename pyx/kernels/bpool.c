/* Max pooling of bit-packed +-1 maps: the max is -1 only where every
 * in-window value is -1, so the result is the AND of the window's words.
 * Out-of-image positions are skipped (TF's same padding ignores them).
 * Each output word is built in a register over the window (AND-ing into
 * memory chained every tap on a store-to-load forwarding). */
#include "edgebnn.h"

void ebnn_maxpool_bits(const ebnn_conv_geom *g, const uint64_t *in,
                       uint64_t *out, int tid, int nthreads)
{
    const int words = ebnn_words(g->in_c);
    const int64_t row_words = (int64_t)g->in_w * words;
    int64_t rows = (int64_t)g->n * g->out_h, r0, r1;
    ebnn_split(rows, tid, nthreads, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->out_h;
        int oy = (int)(r % g->out_h);
        int y0 = oy * g->stride_h - g->pad_top;
        int ya = y0 < 0 ? 0 : y0, yb = y0 + g->kh < g->in_h ? y0 + g->kh : g->in_h;
        const uint64_t *img = in + n * g->in_h * row_words;
        for (int ox = 0; ox < g->out_w; ox++) {
            int x0 = ox * g->stride_w - g->pad_left;
            int xa = x0 < 0 ? 0 : x0, xb = x0 + g->kw < g->in_w ? x0 + g->kw : g->in_w;
            uint64_t *o = out + (r * g->out_w + ox) * words;
            for (int i = 0; i < words; i++) {
                uint64_t m = ~0ull;
                for (int y = ya; y < yb; y++) {
                    const uint64_t *src = img + y * row_words + i;
                    for (int x = xa; x < xb; x++)
                        m &= src[(int64_t)x * words];
                }
                o[i] = m;
            }
        }
    }
}

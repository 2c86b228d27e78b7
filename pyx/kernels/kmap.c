/* K map of the XNOR-Net binary-inputs scheme: per output pixel, the mean
 * over the conv window of A = mean_c |x|. Padded taps count as zero but the
 * divisor stays kh*kw (A convolved with a 1/(kh*kw) box, zero padding). */
#include <math.h>
#include "edgebnn.h"

/* mean |x| over c channels; eight partial sums in a fixed order */
static float mean_abs(const float *x, int c)
{
    float part[8] = {0};
    int i = 0;
    for (; i + 8 <= c; i += 8)
        for (int l = 0; l < 8; l++)
            part[l] += fabsf(x[i + l]);
    for (int l = 0; i + l < c; l++)
        part[l] += fabsf(x[i + l]);
    float s = ((part[0] + part[1]) + (part[2] + part[3])) +
              ((part[4] + part[5]) + (part[6] + part[7]));
    return s / (float)c;
}

/* A = mean |x| of the input pixels a run of output pixels needs is
 * computed once into a stack tile (not once per tap: 9x less work for 3x3),
 * then summed over each window in the same ky, kx order as before, so the
 * result is bit-identical. Windows too large for the tile take the direct
 * path. */
#define KMAP_TILE 4096 /* floats of A per call (16 KiB of stack) */

static float window_sum_direct(const ebnn_conv_geom *g, const float *in,
                               int64_t n, int oy, int ox)
{
    float s = 0.0f;
    for (int ky = 0; ky < g->kh; ky++) {
        int iy = oy * g->stride_h - g->pad_top + ky;
        if (iy < 0 || iy >= g->in_h)
            continue;
        for (int kx = 0; kx < g->kw; kx++) {
            int ix = ox * g->stride_w - g->pad_left + kx;
            if (ix >= 0 && ix < g->in_w)
                s += mean_abs(in + ((n * g->in_h + iy) * g->in_w + ix) * g->in_c, g->in_c);
        }
    }
    return s;
}

void ebnn_kmap(const ebnn_conv_geom *g, const float *in, float *out,
               int tid, int nthreads)
{
    int64_t begin, end;
    ebnn_split((int64_t)g->n * g->out_h * g->out_w, tid, nthreads, &begin, &end);
    const float taps = (float)g->kh * (float)g->kw;
    float tile[KMAP_TILE];
    /* output pixels per run: the run's input columns times kh rows must fit */
    int64_t per_px = (int64_t)g->stride_w * g->kh, fixed = (int64_t)g->kw * g->kh;
    int64_t run = fixed > KMAP_TILE ? 0 : 1 + (KMAP_TILE - fixed) / per_px;
    int64_t p = begin;
    while (p < end) {
        int ox0 = (int)(p % g->out_w), oy = (int)(p / g->out_w % g->out_h);
        int64_t n = p / ((int64_t)g->out_w * g->out_h);
        int64_t cnt = g->out_w - ox0; /* rest of this output row ... */
        if (cnt > end - p)
            cnt = end - p;              /* ... within this thread's share */
        if (run == 0) {
            for (int64_t i = 0; i < cnt; i++)
                out[p + i] = window_sum_direct(g, in, n, oy, ox0 + (int)i) / taps;
            p += cnt;
            continue;
        }
        if (cnt > run)
            cnt = run;
        /* input columns [c0, c0 + width) and rows [r0, r0 + kh) of this run */
        int c0 = ox0 * g->stride_w - g->pad_left;
        int width = (int)((cnt - 1) * g->stride_w + g->kw);
        int r0 = oy * g->stride_h - g->pad_top;
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = r0 + ky;
            for (int j = 0; j < width; j++) {
                int ix = c0 + j;
                tile[ky * width + j] =
                    (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w)
                        ? 0.0f
                        : mean_abs(in + ((n * g->in_h + iy) * g->in_w + ix) * g->in_c, g->in_c);
            }
        }
        for (int64_t i = 0; i < cnt; i++) {
            float s = 0.0f;
            int base = (int)i * g->stride_w;
            for (int ky = 0; ky < g->kh; ky++) {
                int iy = r0 + ky;
                if (iy < 0 || iy >= g->in_h)
                    continue;           /* skipped, as the direct path does */
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = c0 + base + kx;
                    if (ix >= 0 && ix < g->in_w)
                        s += tile[ky * width + base + kx];
                }
            }
            out[p + i] = s / taps;
        }
        p += cnt;
    }
}

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

void ebnn_kmap(const ebnn_conv_geom *g, const float *in, float *out,
               int tid, int nthreads)
{
    int64_t begin, end;
    ebnn_split((int64_t)g->n * g->out_h * g->out_w, tid, nthreads, &begin, &end);
    const float taps = (float)g->kh * (float)g->kw;
    for (int64_t p = begin; p < end; p++) {
        int ox = (int)(p % g->out_w), oy = (int)(p / g->out_w % g->out_h);
        int64_t n = p / ((int64_t)g->out_w * g->out_h);
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
        out[p] = s / taps;
    }
}

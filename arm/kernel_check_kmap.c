/* ebnn_kmap (the XNOR-Net K map) against its formula in the order kmap.c
 * defines, bit for bit: A = mean_c |x| as eight partial sums (channel i
 * into partial i % 8, in order) reduced as ((p0+p1)+(p2+p3))+((p4+p5)+(p6+p7))
 * and divided by c; K = the sum of the in-image A of the window in ky, kx
 * order, divided by kh*kw. NaN inputs must give NaN; everything else the
 * same bits (denormals included: only armv7's NEON would flush them, and
 * kmap.c keeps armv7 on scalar code). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgebnn.h"
#include "internal.h"
#include "kernel_check.h"

#pragma weak ebnn_kmap

static float ref_mean_abs(const float *x, int c)
{
    float part[8] = {0};
    for (int i = 0; i < c; i++)
        part[i % 8] += fabsf(x[i]);
    return (((part[0] + part[1]) + (part[2] + part[3])) +
            ((part[4] + part[5]) + (part[6] + part[7]))) / (float)c;
}

static float ref_k(const ebnn_conv_geom *g, const float *in, int n, int oy, int ox)
{
    float s = 0.0f;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            int iy = oy * g->stride_h - g->pad_top + ky, ix = ox * g->stride_w - g->pad_left + kx;
            if (iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w)
                s += ref_mean_abs(in + (((int64_t)n * g->in_h + iy) * g->in_w + ix) * g->in_c,
                                  g->in_c);
        }
    return s / (float)(g->kh * g->kw);
}

void kc_check_kmap(kc_rng *rng, int isa, int case_no)
{
    static const int chans[] = {1, 3, 7, 8, 9, 16, 17, 32, 33, 64, 65, 200};
    if (!ebnn_kmap) {
        if (case_no == 0)
            kc_skip("kmap", isa, "kernel not built");
        return;
    }
    ebnn_conv_geom g;
    int k = kc_int(rng, 1, 5), same = kc_int(rng, 0, 1), wide = case_no % 4 == 3;
    int h = kc_int(rng, k, 9), w = wide ? kc_int(rng, 40, 70) : kc_int(rng, k, 9);
    int c = chans[case_no % (int)(sizeof chans / sizeof *chans)];
    if (ebnn_conv_geom_init(&g, kc_int(rng, 1, 2), h, w, c, 1, k, k, kc_int(rng, 1, 2),
                            kc_int(rng, 1, 2), same, same ? EBNN_PAD_ZERO : EBNN_PAD_VALID)) {
        kc_result("kmap", isa, 0, "geometry rejected");
        return;
    }
    int64_t in_n = (int64_t)g.n * g.in_h * g.in_w * c, out_n = (int64_t)g.n * g.out_h * g.out_w;
    float *x = kc_alloc(in_n * 4), *got = kc_alloc(out_n * 4);
    kc_fill_floats(rng, x, in_n);
    int nthreads = 1 + case_no % 3;
    for (int t = 0; t < nthreads; t++)
        ebnn_kmap(&g, x, got, t, nthreads);
    char detail[200] = "";
    int ok = 1;
    for (int64_t p = 0; p < out_n && ok; p++) {
        int ox = (int)(p % g.out_w), oy = (int)(p / g.out_w % g.out_h), n = (int)(p / g.out_w / g.out_h);
        float want = ref_k(&g, x, n, oy, ox);
        if (isnan(want) ? !isnan(got[p]) : memcmp(&want, &got[p], 4) != 0) {
            ok = 0;
            snprintf(detail, sizeof detail,
                     "n=%d %dx%dx%d k%d s%dx%d pad=%d threads=%d: pixel %lld got %.9g want %.9g",
                     g.n, g.in_h, g.in_w, c, k, g.stride_h, g.stride_w, g.pad_mode, nthreads,
                     (long long)p, got[p], want);
        }
    }
    kc_result("kmap", isa, ok, detail);
    free(x);
    free(got);
}

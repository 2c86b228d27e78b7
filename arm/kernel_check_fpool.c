/* ebnn_maxpool_f32 / ebnn_avgpool_f32 against TF's pooling written out,
 * bit for bit (NaN: any NaN): taps in ky, kx order over the in-image
 * window only; max: the first tap, then x > m ? x : m; average:
 * ((0 + x0) + x1) + ... divided by the number of in-image taps. Channel
 * counts cover the NEON blocks (multiples of 16, 8, 4) and the counts it
 * leaves to the portable loop; inputs include +-0, NaN, infinities and
 * denormals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgebnn.h"
#include "kernel_check.h"

#pragma weak ebnn_maxpool_f32
#pragma weak ebnn_avgpool_f32

static const int pool_channels[] = {16, 32, 8, 24, 4, 12, 48, 1, 3, 17, 64, 20};
#define NPC ((int)(sizeof pool_channels / sizeof *pool_channels))

static float ref_pool(const ebnn_conv_geom *g, const float *in, int avg, int n, int oy,
                      int ox, int ch)
{
    float m = 0.0f;
    int count = 0;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            int y = oy * g->stride_h - g->pad_top + ky, x = ox * g->stride_w - g->pad_left + kx;
            if (y < 0 || y >= g->in_h || x < 0 || x >= g->in_w)
                continue;
            float v = in[(((int64_t)n * g->in_h + y) * g->in_w + x) * g->in_c + ch];
            if (avg)
                m = (count ? m : 0.0f) + v;
            else
                m = count ? (v > m ? v : m) : v;
            count++;
        }
    return avg ? m / (float)count : m;
}

void kc_check_fpool(kc_rng *rng, int isa, int case_no)
{
    int avg = case_no % 2;
    void (*fn)(const ebnn_conv_geom *, const float *, float *, int, int) =
        avg ? ebnn_avgpool_f32 : ebnn_maxpool_f32;
    const char *name = avg ? "avgpool_f32" : "maxpool_f32";
    if (!fn) {
        if (case_no < 2)
            kc_skip(name, isa, "kernel not built");
        return;
    }
    ebnn_conv_geom g;
    int same = kc_int(rng, 0, 1), k = kc_int(rng, 1, 3), s = kc_int(rng, 1, 3);
    int h = kc_int(rng, k, 9), w = kc_int(rng, k, 9), c = pool_channels[(case_no / 2) % NPC];
    if (ebnn_conv_geom_init(&g, kc_int(rng, 1, 3), h, w, c, 1, k, k, s, s, same,
                            same ? EBNN_PAD_ZERO : EBNN_PAD_VALID)) {
        kc_result(name, isa, 0, "geometry rejected");
        return;
    }
    int64_t in_n = (int64_t)g.n * h * w * c, out_n = (int64_t)g.n * g.out_h * g.out_w * c;
    float *in = kc_alloc(in_n * sizeof(float)), *got = kc_alloc(out_n * sizeof(float));
    kc_fill_floats(rng, in, in_n);
    for (int64_t i = 0; i < out_n; i++)
        got[i] = 12345.0f; /* every output must be written */
    int nthreads = 1 + case_no % 4;
    for (int t = 0; t < nthreads; t++)
        fn(&g, in, got, t, nthreads);
    char detail[200] = "";
    int ok = 1;
    for (int n = 0; n < g.n && ok; n++)
        for (int oy = 0; oy < g.out_h && ok; oy++)
            for (int ox = 0; ox < g.out_w && ok; ox++)
                for (int ch = 0; ch < c && ok; ch++) {
                    float want = ref_pool(&g, in, avg, n, oy, ox, ch);
                    float have = got[(((int64_t)n * g.out_h + oy) * g.out_w + ox) * c + ch];
                    uint32_t wb, hb;
                    memcpy(&wb, &want, 4);
                    memcpy(&hb, &have, 4);
                    if (isnan(want) ? !isnan(have) : wb != hb) {
                        ok = 0;
                        snprintf(detail, sizeof detail,
                                 "n=%d %dx%dx%d k=%d s=%d same=%d threads=%d: (%d,%d,%d,%d) "
                                 "= %a, want %a", g.n, h, w, c, k, s, same, nthreads, n, oy,
                                 ox, ch, have, want);
                    }
                }
    kc_result(name, isa, ok, detail);
    free(in);
    free(got);
}

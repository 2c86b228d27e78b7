/* Weights-only binary conv and dense (float activations x 1-bit weights):
 * geometry, zero padding (out-of-bounds taps are left out of the sum),
 * threading and the output stage; the arithmetic is in wgemm_<isa>.c. */
#include <string.h>
#include "output_stage.h"
#include "wgemm.h"

ebnn_wgemm_fn ebnn_wgemm_select(void)
{
    switch (ebnn_isa_get()) {
    case EBNN_ISA_REF:
        return ebnn_wgemm_ref;
#if defined(__x86_64__)
    case EBNN_ISA_AVX2:
        return ebnn_wgemm_avx2;
    case EBNN_ISA_AVX512:
        return ebnn_wgemm_avx512;
#endif
#if defined(__ARM_NEON)
    case EBNN_ISA_NEON:
        return ebnn_wgemm_neon;
#endif
    default:
        return ebnn_wgemm_generic;
    }
}

ebnn_wgemmt_fn ebnn_wgemmt_select(void)
{
    switch (ebnn_isa_get()) {
    case EBNN_ISA_REF:
        return ebnn_wgemmt_ref;
#if defined(__x86_64__)
    case EBNN_ISA_AVX2:
        return ebnn_wgemmt_avx2;
    case EBNN_ISA_AVX512:
        return ebnn_wgemmt_avx512;
#endif
#if defined(__ARM_NEON)
    case EBNN_ISA_NEON:
        return ebnn_wgemmt_neon;
#endif
    default:
        return ebnn_wgemmt_generic;
    }
}

void ebnn_wbits_transpose(const uint64_t *w, int out_c, int64_t taps, int c,
                          uint64_t *tw)
{
    const int fw = ebnn_words(out_c), wc = ebnn_words(c);
    memset(tw, 0, (size_t)(taps * c * fw) * sizeof(uint64_t));
    for (int f = 0; f < out_c; f++)
        for (int64_t t = 0; t < taps; t++) {
            const uint64_t *src = w + ((int64_t)f * taps + t) * wc;
            for (int i = 0; i < c; i++)
                if ((src[i >> 6] >> (i & 63)) & 1)
                    tw[(t * c + i) * fw + (f >> 6)] |= (uint64_t)1 << (f & 63);
        }
}

/* per thread: tap pointers, tap word offsets, accumulators for 2 pixels,
 * and for few-channel layers the transposed weight bits;
 * SIZE_MAX if it does not fit in size_t (32-bit hosts) */
size_t ebnn_wconv2d_scratch_bytes(const ebnn_conv_geom *g)
{
    uint64_t taps = (uint64_t)g->kh * g->kw, terms = taps;
    if (g->in_c < EBNN_WGEMMT_MAX_C)
        terms = taps * g->in_c; /* val/row entries of few_channels */
    uint64_t b = ebnn_round64(terms * sizeof(const float *)) + ebnn_round64(terms * sizeof(int64_t)) +
                 ebnn_round64(2 * (uint64_t)g->out_c * sizeof(float));
    if (g->in_c < EBNN_WGEMMT_MAX_C)
        b += ebnn_round64(taps * g->in_c * (uint64_t)ebnn_words(g->out_c) * sizeof(uint64_t));
    return b > (uint64_t)(SIZE_MAX / 2) ? SIZE_MAX : (size_t)b;
}

/* in-bounds kernel columns [k0, k1) of output column ox */
static void tap_cols(const ebnn_conv_geom *g, int ox, int *k0, int *k1)
{
    int x0 = ox * g->stride_w - g->pad_left;
    *k0 = x0 < 0 ? -x0 : 0;
    *k1 = g->in_w - x0 < g->kw ? g->in_w - x0 : g->kw;
}

/* layers with few input channels: filters in the vector lanes, from a
 * per-call transposed copy of the weight bits (still 1 bit per weight);
 * per pixel the in-bounds inputs are gathered into val/row first */
static void few_channels(const ebnn_conv_geom *g, const float *in,
                         const uint64_t *w, const ebnn_output *o, float *val,
                         int64_t *row, float *acc, uint64_t *tw,
                         int64_t begin, int64_t end)
{
    ebnn_wgemmt_fn fn = ebnn_wgemmt_select();
    const int c = g->in_c;
    ebnn_wbits_transpose(w, g->out_c, (int64_t)g->kh * g->kw, c, tw);
    for (int64_t p = begin; p < end; p++) {
        int ox = (int)(p % g->out_w), oy = (int)(p / g->out_w % g->out_h);
        int64_t n = p / ((int64_t)g->out_w * g->out_h);
        int ns = 0, k0, k1;
        tap_cols(g, ox, &k0, &k1);
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->stride_h - g->pad_top + ky;
            if (iy < 0 || iy >= g->in_h)
                continue;
            /* the in-bounds taps of a kernel row are one contiguous run */
            int ix = ox * g->stride_w - g->pad_left + k0, len = (k1 - k0) * c;
            const float *x = in + ((n * g->in_h + iy) * g->in_w + ix) * c;
            int64_t r = ((int64_t)ky * g->kw + k0) * c;
            for (int j = 0; j < len; j++) {
                val[ns + j] = x[j];
                row[ns + j] = r + j;
            }
            ns += len > 0 ? len : 0;
        }
        fn(ns, val, row, tw, ebnn_words(g->out_c), g->out_c, acc);
        ebnn_output_apply_f32(o, g->out_c, p, 0, g->out_c, acc);
    }
}

void ebnn_wconv2d(const ebnn_conv_geom *g, const float *in, const uint64_t *w,
                  const ebnn_output *o, void *scratch, int tid, int nthreads)
{
    ebnn_wgemm_fn fn = ebnn_wgemm_select();
    const int64_t taps = (int64_t)g->kh * g->kw, words = ebnn_words(g->in_c);
    const int few = g->in_c < EBNN_WGEMMT_MAX_C;
    const uint64_t terms = few ? (uint64_t)taps * g->in_c : (uint64_t)taps;
    char *mine = (char *)scratch + (size_t)tid * ebnn_wconv2d_scratch_bytes(g);
    const float **xs = (const float **)mine;
    int64_t *wtap = (int64_t *)(mine + ebnn_round64(terms * sizeof(const float *)));
    float *acc = (float *)((char *)wtap + ebnn_round64(terms * sizeof(int64_t)));
    int64_t begin, end;
    ebnn_split((int64_t)g->n * g->out_h * g->out_w, tid, nthreads, &begin, &end);
    if (begin >= end)
        return;
    if (few) {
        uint64_t *tw = (uint64_t *)((char *)acc + ebnn_round64(2 * (uint64_t)g->out_c * sizeof(float)));
        few_channels(g, in, w, o, (float *)xs, wtap, acc, tw, begin, end);
        return;
    }
    for (int64_t p = begin; p < end;) {
        int ox = (int)(p % g->out_w), oy = (int)(p / g->out_w % g->out_h);
        int64_t n = p / ((int64_t)g->out_w * g->out_h);
        int nt = 0, k0, k1;
        tap_cols(g, ox, &k0, &k1);
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->stride_h - g->pad_top + ky;
            if (iy < 0 || iy >= g->in_h)
                continue;
            for (int kx = k0; kx < k1; kx++) {
                int ix = ox * g->stride_w - g->pad_left + kx;
                xs[nt] = in + ((n * g->in_h + iy) * g->in_w + ix) * g->in_c;
                wtap[nt++] = ((int64_t)ky * g->kw + kx) * words;
            }
        }
        /* the next pixel of the row shares the weight masks if it has the
         * same in-bounds taps (interior pixels) */
        int npix = 1;
        if (p + 1 < end && ox + 1 < g->out_w) {
            int n0, n1;
            tap_cols(g, ox + 1, &n0, &n1);
            npix = n0 == k0 && n1 == k1 ? 2 : 1;
        }
        fn(npix, (int64_t)g->stride_w * g->in_c, nt, xs, wtap, g->in_c, w,
           taps * words, g->out_c, acc, g->out_c);
        ebnn_output_apply_f32_rows(o, g->out_c, p, npix, 0, g->out_c, acc, g->out_c);
        p += npix;
    }
}

#define DENSE_CHUNK 256 /* filters per stack accumulator block */

void ebnn_wdense(int batch, int in_c, int out_c, const float *in,
                 const uint64_t *w, const ebnn_output *o, int tid,
                 int nthreads)
{
    ebnn_wgemm_fn fn = ebnn_wgemm_select();
    const int64_t words = ebnn_words(in_c), zero = 0;
    /* split rows when there are enough (and always for bits or sign_out,
     * whose words must have one writer); otherwise split filters (batch 1
     * GEMV) */
    int by_rows = o->kind == EBNN_OUT_BITS || o->sign_out || batch >= nthreads;
    int64_t rb = 0, re = batch, fb = 0, fe = out_c;
    if (by_rows)
        ebnn_split(batch, tid, nthreads, &rb, &re);
    else
        ebnn_split(out_c, tid, nthreads, &fb, &fe);
    float acc[2 * DENSE_CHUNK];
    for (int64_t r = rb; r < re; r += 2) {
        const float *x = in + r * in_c;
        int npix = r + 1 < re ? 2 : 1; /* two rows share the weight masks */
        for (int64_t f = fb; f < fe; f += DENSE_CHUNK) {
            int nf = (int)(fe - f < DENSE_CHUNK ? fe - f : DENSE_CHUNK);
            fn(npix, in_c, 1, &x, &zero, in_c, w + f * words, words, nf, acc, DENSE_CHUNK);
            ebnn_output_apply_f32_rows(o, out_c, r, npix, (int)f, nf, acc, DENSE_CHUNK);
        }
    }
}

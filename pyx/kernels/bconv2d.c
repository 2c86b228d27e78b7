/* Binary convolution and dense fronts: geometry, im2col of packed words,
 * padding semantics, thread split and output stage around the per-ISA
 * popcount GEMM.
 *
 * Per thread: a block of PB output pixels is gathered (im2col) into scratch,
 * K = kh*kw*words words per pixel, padded taps as zero words (= +1 values).
 * The GEMM then gives popcounts p for FB filters at a time and
 *     dot = kh*kw*in_c - 2p                          (valid / same_one)
 *     dot -= sum over padded taps of (in_c - 2 popcount(w_tap))  (same_zero)
 * since a zero-padded tap contributes 0, not the +1 the zero words imply. */
#include <string.h>
#include "internal.h"
#include "output_stage.h"

#define FB 256 /* filters per GEMM call: a multiple of 64 (bit words) */

ebnn_bgemm_fn ebnn_bgemm_select(void)
{
    switch (ebnn_isa_get()) {
    case EBNN_ISA_REF:
        return ebnn_bgemm_ref;
#if defined(__x86_64__)
    case EBNN_ISA_AVX512:
        return ebnn_bgemm_avx512;
    case EBNN_ISA_AVX2:
        return ebnn_bgemm_avx2;
#endif
#if defined(__ARM_NEON)
    case EBNN_ISA_NEON:
        return ebnn_bgemm_neon;
#endif
    default:
        return ebnn_bgemm_generic;
    }
}

static inline size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }
static inline int imin(int a, int b) { return a < b ? a : b; }

/* pixels per im2col block: big enough to amortize the filter packing in
 * the GEMM, small enough that the block stays in L2 */
static int pixel_block(int64_t kwords)
{
    int64_t pb = 32768 / (kwords > 0 ? kwords : 1);
    return (int)(pb > 120 ? 120 : pb < 6 ? 6 : pb);
}

static int64_t conv_kwords(const ebnn_conv_geom *g)
{
    return (int64_t)g->kh * g->kw * ebnn_words(g->in_c);
}

static int direct_rows(const ebnn_conv_geom *g)
{
    /* a 1x1, stride-1, unpadded conv reads the input rows as they are */
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 &&
           g->pad_top == 0 && g->pad_left == 0;
}

size_t ebnn_bconv2d_scratch_bytes(const ebnn_conv_geom *g)
{
    int64_t kw = conv_kwords(g);
    int pb = pixel_block(kw);
    size_t s = round64((size_t)pb * imin(g->out_c, FB) * sizeof(int32_t));
    if (!direct_rows(g))
        s += round64((size_t)pb * kw * sizeof(uint64_t));
    if (g->pad_mode == EBNN_PAD_ZERO)
        s += round64((size_t)g->out_c * g->kh * g->kw * sizeof(int32_t));
    return s;
}

/* corr[f * taps + t] = in_c - 2 popcount(w_f at tap t) */
static void zero_pad_corrections(const ebnn_conv_geom *g, const uint64_t *w,
                                 int32_t *corr)
{
    int words = ebnn_words(g->in_c), taps = g->kh * g->kw;
    for (int64_t ft = 0; ft < (int64_t)g->out_c * taps; ft++) {
        const uint64_t *wt = w + ft * words;
        int pc = 0;
        for (int i = 0; i < words; i++)
            pc += __builtin_popcountll(wt[i]);
        corr[ft] = g->in_c - 2 * pc;
    }
}

/* Gather pixels [p0, p0+np) into rows of K words; returns 1 if any tap of
 * any pixel fell outside the image. */
static int im2col(const ebnn_conv_geom *g, const uint64_t *in, int64_t p0,
                  int np, uint64_t *cols)
{
    int words = ebnn_words(g->in_c), border = 0;
    int64_t kwords = conv_kwords(g);
    for (int i = 0; i < np; i++) {
        int64_t p = p0 + i;
        int ox = (int)(p % g->out_w), oy = (int)((p / g->out_w) % g->out_h);
        int64_t n = p / ((int64_t)g->out_w * g->out_h);
        int iy0 = oy * g->stride_h - g->pad_top, ix0 = ox * g->stride_w - g->pad_left;
        uint64_t *dst = cols + i * kwords;
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = iy0 + ky;
            for (int kx = 0; kx < g->kw; kx++, dst += words) {
                int ix = ix0 + kx;
                if (iy < 0 || iy >= g->in_h || ix < 0 || ix >= g->in_w) {
                    memset(dst, 0, words * sizeof(uint64_t));
                    border = 1;
                } else {
                    memcpy(dst, in + ((n * g->in_h + iy) * g->in_w + ix) * words,
                           words * sizeof(uint64_t));
                }
            }
        }
    }
    return border;
}

/* sum over the out-of-image taps of pixel p of corr[f][tap], f in [f0, f0+nf) */
static void subtract_pad_taps(const ebnn_conv_geom *g, int64_t p, const int32_t *corr,
                              int f0, int nf, int32_t *dot)
{
    int ox = (int)(p % g->out_w), oy = (int)((p / g->out_w) % g->out_h);
    int iy0 = oy * g->stride_h - g->pad_top, ix0 = ox * g->stride_w - g->pad_left;
    int taps = g->kh * g->kw;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            int iy = iy0 + ky, ix = ix0 + kx;
            if (iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w)
                continue;
            const int32_t *ct = corr + (int64_t)f0 * taps + ky * g->kw + kx;
            for (int j = 0; j < nf; j++)
                dot[j] -= ct[(int64_t)j * taps];
        }
}

/* GEMM over rows a[0..np) (pixels p0..) and filters [fa, fb), then the stage */
static void rows_times_filters(const ebnn_conv_geom *g, const uint64_t *a,
                               int64_t lda, int64_t p0, int np, int border,
                               const uint64_t *w, int fa, int fb,
                               const int32_t *corr, int32_t *acc,
                               const ebnn_output *o, ebnn_bgemm_fn gemm)
{
    int64_t kwords = conv_kwords(g);
    int32_t kreal = g->kh * g->kw * g->in_c;
    for (int f0 = fa; f0 < fb; f0 += FB) {
        int nf = imin(FB, fb - f0);
        gemm(np, nf, (int)kwords, a, lda, w + (int64_t)f0 * kwords, kwords, acc, nf);
        for (int i = 0; i < np; i++) {
            int32_t *dot = acc + (int64_t)i * nf;
            for (int j = 0; j < nf; j++)
                dot[j] = kreal - 2 * dot[j];
            if (corr && border)
                subtract_pad_taps(g, p0 + i, corr, f0, nf, dot);
            ebnn_output_apply_i32(o, g->out_c, p0 + i, f0, nf, dot);
        }
    }
}

/* Many pixels: split pixels (no two threads touch one output word).
 * Few pixels: split filters on multiples of 64. */
static void share(int64_t pixels, int out_c, int tid, int nthreads,
                  int64_t *p0, int64_t *p1, int *f0, int *f1)
{
    if (pixels >= 8 * (int64_t)nthreads || out_c <= 64) {
        ebnn_split(pixels, tid, nthreads, p0, p1);
        *f0 = 0;
        *f1 = out_c;
    } else {
        int64_t b, e;
        ebnn_split((out_c + 63) / 64, tid, nthreads, &b, &e);
        *p0 = 0;
        *p1 = pixels;
        *f0 = (int)(b * 64);
        *f1 = imin((int)(e * 64), out_c);
    }
}

void ebnn_bconv2d(const ebnn_conv_geom *g, const uint64_t *in,
                  const uint64_t *w, const ebnn_output *o, void *scratch,
                  int tid, int nthreads)
{
    int64_t pixels = (int64_t)g->n * g->out_h * g->out_w, p0, p1;
    int fa, fb;
    share(pixels, g->out_c, tid, nthreads, &p0, &p1, &fa, &fb);
    if (p1 <= p0 || fb <= fa)
        return;
    int64_t kwords = conv_kwords(g);
    int pb = pixel_block(kwords), direct = direct_rows(g);
    char *s = (char *)scratch + ebnn_bconv2d_scratch_bytes(g) * tid;
    int32_t *acc = (int32_t *)s;
    s += round64((size_t)pb * imin(g->out_c, FB) * sizeof(int32_t));
    uint64_t *cols = (uint64_t *)s;
    if (!direct)
        s += round64((size_t)pb * kwords * sizeof(uint64_t));
    int32_t *corr = NULL;
    if (g->pad_mode == EBNN_PAD_ZERO) {
        corr = (int32_t *)s;
        zero_pad_corrections(g, w, corr);
    }
    ebnn_bgemm_fn gemm = ebnn_bgemm_select();
    for (int64_t p = p0; p < p1; p += pb) {
        int np = (int)(p1 - p < pb ? p1 - p : pb);
        if (direct) {
            rows_times_filters(g, in + p * kwords, kwords, p, np, 0, w, fa, fb,
                               NULL, acc, o, gemm);
        } else {
            int border = im2col(g, in, p, np, cols);
            rows_times_filters(g, cols, kwords, p, np, border, w, fa, fb,
                               corr, acc, o, gemm);
        }
    }
}

/* ------------------------------------------------------------ dense --- */
size_t ebnn_bdense_scratch_bytes(int batch, int in_c, int out_c)
{
    (void)in_c;
    return round64((size_t)imin(batch, 120) * imin(out_c, FB) * sizeof(int32_t));
}

void ebnn_bdense(int batch, int in_c, int out_c, const uint64_t *in,
                 const uint64_t *w, const ebnn_output *o, void *scratch,
                 int tid, int nthreads)
{
    /* the 1x1 conv of a batch x 1 x 1 image */
    ebnn_conv_geom g = {.n = batch, .in_h = 1, .in_w = 1, .in_c = in_c,
                        .out_c = out_c, .kh = 1, .kw = 1, .stride_h = 1,
                        .stride_w = 1, .out_h = 1, .out_w = 1,
                        .pad_mode = EBNN_PAD_VALID};
    int64_t p0, p1;
    int fa, fb, words = ebnn_words(in_c);
    share(batch, out_c, tid, nthreads, &p0, &p1, &fa, &fb);
    if (p1 <= p0 || fb <= fa)
        return;
    int32_t *acc = (int32_t *)((char *)scratch +
                               ebnn_bdense_scratch_bytes(batch, in_c, out_c) * tid);
    ebnn_bgemm_fn gemm = ebnn_bgemm_select();
    for (int64_t p = p0; p < p1; p += 120) {
        int np = (int)(p1 - p < 120 ? p1 - p : 120);
        rows_times_filters(&g, in + p * words, words, p, np, 0, w, fa, fb, NULL,
                           acc, o, gemm);
    }
}

/* Float conv (first layers) and float dense. Conv: a zero-padded transposed
 * copy of a block of filters, then the register-tiled GEMM of
 * fgemm_<isa>.c over blocks of output pixels: border pixels through an
 * im2col copy in per-thread scratch, runs of interior pixels straight from
 * the input rows (one accumulating GEMM per kernel row). */
#include <string.h>
#include "output_stage.h"
#include "wgemm.h"

#define PIX_BLOCK 48 /* output pixels per im2col block (multiple of 6, 12) */
#define FIL_BLOCK 64 /* filters per transposed weight block */

ebnn_fgemm_fn ebnn_fgemm_select(void)
{
    switch (ebnn_isa_get()) {
    case EBNN_ISA_REF:
        return ebnn_fgemm_ref;
#if defined(__x86_64__)
    case EBNN_ISA_AVX2:
        return ebnn_fgemm_avx2;
    case EBNN_ISA_AVX512:
        return ebnn_fgemm_avx512;
#endif
#if defined(__ARM_NEON)
    case EBNN_ISA_NEON:
        return ebnn_fgemm_neon;
#endif
    default:
        return ebnn_fgemm_generic;
    }
}

ebnn_fdot_fn ebnn_fdot_select(void)
{
    switch (ebnn_isa_get()) {
    case EBNN_ISA_REF:
        return ebnn_fdot_ref;
#if defined(__x86_64__)
    case EBNN_ISA_AVX2:
        return ebnn_fdot_avx2;
    case EBNN_ISA_AVX512:
        return ebnn_fdot_avx512;
#endif
#if defined(__ARM_NEON)
    case EBNN_ISA_NEON:
        return ebnn_fdot_neon;
#endif
    default:
        return ebnn_fdot_generic;
    }
}

static uint64_t round64(uint64_t b) { return (b + 63) & ~(uint64_t)63; }

static int padded_block(int nf)
{
    return (nf + EBNN_FGEMM_NPAD - 1) / EBNN_FGEMM_NPAD * EBNN_FGEMM_NPAD;
}

/* per thread: im2col rows, transposed filter block, GEMM result block;
 * SIZE_MAX if it does not fit in size_t (32-bit hosts) */
size_t ebnn_fconv2d_scratch_bytes(const ebnn_conv_geom *g)
{
    uint64_t k = (uint64_t)g->kh * g->kw * g->in_c;
    uint64_t nb = (uint64_t)padded_block(g->out_c < FIL_BLOCK ? g->out_c : FIL_BLOCK);
    uint64_t b = round64(PIX_BLOCK * k * 4) + round64(k * nb * 4) +
                 round64(PIX_BLOCK * nb * 4);
    return b > (uint64_t)(SIZE_MAX / 2) ? SIZE_MAX : (size_t)b;
}

/* one im2col row: the kh*kw*in_c patch of output pixel p, zeros outside.
 * Per kernel row the in-bounds taps are one contiguous run of the input, so
 * it is one copy (inline: first layers copy a handful of floats per row). */
static void patch_row(const ebnn_conv_geom *g, const float *in, int64_t p,
                      float *row)
{
    int ox = (int)(p % g->out_w), oy = (int)(p / g->out_w % g->out_h);
    int64_t n = p / ((int64_t)g->out_w * g->out_h);
    const int c = g->in_c, span = g->kw * c;
    int x0 = ox * g->stride_w - g->pad_left;           /* input x of kx = 0 */
    int k0 = x0 < 0 ? -x0 : 0;                         /* first in-bounds kx */
    int k1 = g->in_w - x0 < g->kw ? g->in_w - x0 : g->kw; /* end in-bounds kx */
    for (int ky = 0; ky < g->kh; ky++, row += span) {
        int iy = oy * g->stride_h - g->pad_top + ky;
        if (iy < 0 || iy >= g->in_h || k1 <= k0) {
            for (int i = 0; i < span; i++)
                row[i] = 0.0f;
            continue;
        }
        const float *src = in + ((n * g->in_h + iy) * g->in_w + x0) * c;
        for (int i = 0; i < k0 * c; i++)
            row[i] = 0.0f;
        if ((k1 - k0) * c >= 64)
            memcpy(row + k0 * c, src + k0 * c, (size_t)(k1 - k0) * c * sizeof(float));
        else
            for (int i = k0 * c; i < k1 * c; i++)
                row[i] = src[i];
        for (int i = k1 * c; i < span; i++)
            row[i] = 0.0f;
    }
}

/* output positions whose whole window lies inside the input along one
 * axis: [lo, hi), found by scanning (no rounding puzzles) */
static void interior_range(int out, int stride, int pad, int k, int in, int *lo, int *hi)
{
    *lo = 0;
    while (*lo < out && *lo * stride - pad < 0)
        ++*lo;
    *hi = *lo;
    while (*hi < out && *hi * stride - pad + k <= in)
        ++*hi;
}

void ebnn_fconv2d(const ebnn_conv_geom *g, const float *in, const float *w,
                  const ebnn_output *o, void *scratch, int tid, int nthreads)
{
    int64_t begin, end;
    ebnn_split((int64_t)g->n * g->out_h * g->out_w, tid, nthreads, &begin, &end);
    if (begin >= end)
        return;
    ebnn_fgemm_fn gemm = ebnn_fgemm_select();
    const int c = g->in_c, k = g->kh * g->kw * c, span = g->kw * c;
    const int nbmax = padded_block(g->out_c < FIL_BLOCK ? g->out_c : FIL_BLOCK);
    char *mine = (char *)scratch + (size_t)tid * ebnn_fconv2d_scratch_bytes(g);
    float *cols = (float *)mine;
    float *wt = (float *)(mine + round64((uint64_t)PIX_BLOCK * k * 4));
    float *cbuf = (float *)((char *)wt + round64((uint64_t)k * nbmax * 4));
    int ylo, yhi, xlo, xhi;
    interior_range(g->out_h, g->stride_h, g->pad_top, g->kh, g->in_h, &ylo, &yhi);
    interior_range(g->out_w, g->stride_w, g->pad_left, g->kw, g->in_w, &xlo, &xhi);
    for (int f0 = 0; f0 < g->out_c; f0 += FIL_BLOCK) {
        int nf = g->out_c - f0 < FIL_BLOCK ? g->out_c - f0 : FIL_BLOCK;
        int np = padded_block(nf);
        for (int p = 0; p < k; p++)
            for (int j = 0; j < np; j++)
                wt[(int64_t)p * np + j] = j < nf ? w[(int64_t)(f0 + j) * k + p] : 0.0f;
        for (int64_t p0 = begin; p0 < end;) {
            int ox = (int)(p0 % g->out_w), oy = (int)(p0 / g->out_w % g->out_h);
            int64_t n = p0 / ((int64_t)g->out_w * g->out_h);
            int rows = 0;
            if (oy >= ylo && oy < yhi && ox >= xlo && ox < xhi) {
                /* a run of interior pixels of one output row reads each
                 * kernel row straight from the input (rows overlap by
                 * stride): no im2col copy, same FMA chain per element */
                int64_t left = end - p0;
                rows = xhi - ox < PIX_BLOCK ? xhi - ox : PIX_BLOCK;
                rows = left < rows ? (int)left : rows;
                const float *base = in + ((n * g->in_h + oy * g->stride_h - g->pad_top) * g->in_w +
                                          ox * g->stride_w - g->pad_left) * c;
                for (int ky = 0; ky < g->kh; ky++)
                    gemm(rows, np, span, base + (int64_t)ky * g->in_w * c,
                         (int64_t)g->stride_w * c, wt + (int64_t)ky * span * np, np, cbuf,
                         np, ky > 0);
            } else {
                /* border pixels (possibly across row ends) through im2col */
                do {
                    patch_row(g, in, p0 + rows, cols + (int64_t)rows * k);
                    rows++;
                    if (++ox == g->out_w) {
                        ox = 0;
                        oy = oy + 1 == g->out_h ? 0 : oy + 1;
                    }
                } while (rows < PIX_BLOCK && p0 + rows < end &&
                         !(oy >= ylo && oy < yhi && ox >= xlo && ox < xhi));
                gemm(rows, np, k, cols, k, wt, np, cbuf, np, 0);
            }
            for (int r = 0; r < rows; r++)
                ebnn_output_apply_f32(o, g->out_c, p0 + r, f0, nf, cbuf + (int64_t)r * np);
            p0 += rows;
        }
    }
}

#define DENSE_CHUNK 256 /* filters per stack accumulator block */

void ebnn_fdense(int batch, int in_c, int out_c, const float *in,
                 const float *w, const ebnn_output *o, int tid, int nthreads)
{
    ebnn_fdot_fn dot = ebnn_fdot_select();
    /* rows when there are enough (always for bits: one writer per word),
     * otherwise filters (batch-1 GEMV) */
    int by_rows = o->kind == EBNN_OUT_BITS || batch >= nthreads;
    int64_t rb = 0, re = batch, fb = 0, fe = out_c;
    if (by_rows)
        ebnn_split(batch, tid, nthreads, &rb, &re);
    else
        ebnn_split(out_c, tid, nthreads, &fb, &fe);
    float acc[DENSE_CHUNK];
    for (int64_t r = rb; r < re; r++)
        for (int64_t f = fb; f < fe; f += DENSE_CHUNK) {
            int nf = (int)(fe - f < DENSE_CHUNK ? fe - f : DENSE_CHUNK);
            dot(1, nf, in_c, in + r * in_c, in_c, w + f * in_c, in_c, acc, nf);
            ebnn_output_apply_f32(o, out_c, r, (int)f, nf, acc);
        }
}

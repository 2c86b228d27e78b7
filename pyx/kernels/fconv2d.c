/* Float conv (first layers) and float dense. Conv: a zero-padded transposed
 * copy of a block of filters, then per run of output pixels of one row one
 * register-tiled GEMM of fgemm_<isa>.c over all kernel rows, reading the
 * input rows in place (or a zero-padded copy of them at the borders), with
 * every accumulator in registers for the whole window. */
#include <string.h>
#include "output_stage.h"
#include "wgemm.h"

#define PIX_BLOCK 48 /* output pixels per run (multiple of the tile heights 6, 8, 12) */
#define FIL_BLOCK 64 /* filters per transposed weight block */
#define ROW_SLACK 8  /* padded-row buffer rows beyond kh: one shift per ROW_SLACK rows */

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

static int padded_block(int nf)
{
    return (nf + EBNN_FGEMM_NPAD - 1) / EBNN_FGEMM_NPAD * EBNN_FGEMM_NPAD;
}

/* input columns a run of PIX_BLOCK output pixels reads */
static uint64_t run_width(const ebnn_conv_geom *g)
{
    return (uint64_t)(PIX_BLOCK - 1) * g->stride_w + g->kw;
}

/* per thread: zero-padded input rows of one run, transposed filter block,
 * GEMM result block; SIZE_MAX if it does not fit in size_t (32-bit hosts) */
size_t ebnn_fconv2d_scratch_bytes(const ebnn_conv_geom *g)
{
    uint64_t k = (uint64_t)g->kh * g->kw * g->in_c;
    uint64_t nb = (uint64_t)padded_block(g->out_c < FIL_BLOCK ? g->out_c : FIL_BLOCK);
    uint64_t b = ebnn_round64((uint64_t)(g->kh + ROW_SLACK) * run_width(g) * g->in_c * 4) +
                 ebnn_round64(k * nb * 4) + ebnn_round64(PIX_BLOCK * nb * 4);
    return b > (uint64_t)(SIZE_MAX / 2) ? SIZE_MAX : (size_t)b;
}

/* Zero-padded input rows kept across runs: buffer row i holds input row
 * y + i (columns x0 .. x0 + width of image n, zeros outside the image),
 * rows [y, yend) filled. Consecutive output rows (full-row runs, as in the
 * stems) share kh - stride_h input rows, which are then copied once, not kh
 * times. */
typedef struct {
    int64_t n;
    int x0, width, y, yend;
} pad_rows;

/* one input row iy (maybe outside the image) as a zero-padded row */
static void fill_row(const ebnn_conv_geom *g, const float *img, int iy, int x0, int width,
                     float *row)
{
    const int c = g->in_c;
    int lo = x0 < 0 ? -x0 : 0;                                   /* first in-image column */
    int hi = g->in_w - x0 < width ? g->in_w - x0 : width;        /* end of them */
    if (iy < 0 || iy >= g->in_h || hi <= lo) {
        memset(row, 0, (size_t)width * c * sizeof(float));
        return;
    }
    memset(row, 0, (size_t)lo * c * sizeof(float));
    memcpy(row + (int64_t)lo * c, img + ((int64_t)iy * g->in_w + x0 + lo) * c,
           (size_t)(hi - lo) * c * sizeof(float));
    memset(row + (int64_t)hi * c, 0, (size_t)(width - hi) * c * sizeof(float));
}

/* The kh input rows under output pixels [ox, ox + cnt) of row oy, as one
 * block of rows `width` pixels wide starting at input column x0; returns
 * the input itself when every tap is in the image, otherwise rows of the
 * padded buffer `pad` (state st) with zeros outside it. The zeros enter
 * the FMA chains as 0 * w terms (not skipped): every pixel's chain has all
 * kh*kw*c terms, as with a zero-padded im2col row, so a skipped term can
 * never turn a -0 sum or a 0 * inf NaN into something else. */
static const float *input_rows(const ebnn_conv_geom *g, const float *in,
                               int64_t n, int oy, int ox, int cnt, float *pad,
                               pad_rows *st, int64_t *ldk)
{
    const int c = g->in_c, cap = g->kh + ROW_SLACK;
    int y0 = oy * g->stride_h - g->pad_top, x0 = ox * g->stride_w - g->pad_left;
    int width = (cnt - 1) * g->stride_w + g->kw;
    const float *img = in + n * g->in_h * (int64_t)g->in_w * c;
    if (y0 >= 0 && y0 + g->kh <= g->in_h && x0 >= 0 && x0 + width <= g->in_w) {
        *ldk = (int64_t)g->in_w * c;
        return img + ((int64_t)y0 * g->in_w + x0) * c;
    }
    const int64_t rowlen = (int64_t)width * c;
    if (st->n != n || st->x0 != x0 || st->width != width || y0 < st->y) {
        st->n = n, st->x0 = x0, st->width = width, st->y = st->yend = y0;
    } else if (y0 + g->kh > st->y + cap) {
        /* move the rows still needed (filled ones from y0 on) to the front */
        int keep = st->yend > y0 ? st->yend - y0 : 0;
        if (keep)
            memmove(pad, pad + (int64_t)(y0 - st->y) * rowlen, (size_t)(keep * rowlen) * sizeof(float));
        st->y = y0;
        st->yend = y0 + keep;
    }
    for (int iy = st->yend > y0 ? st->yend : y0; iy < y0 + g->kh; iy++)
        fill_row(g, img, iy, x0, width, pad + (int64_t)(iy - st->y) * rowlen);
    st->yend = y0 + g->kh > st->yend ? y0 + g->kh : st->yend;
    *ldk = rowlen;
    return pad + (int64_t)(y0 - st->y) * rowlen;
}

#if defined(__GNUC__) && !defined(__clang__)
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));
#define TRANSPOSE_4X4 1
#else
#define TRANSPOSE_4X4 0
#endif

/* wt[p*np + j] = w[j*k + p] for j < nf, 0 for nf <= j < np (p < k): the
 * filter block with filters in the columns. By 4x4 blocks of shuffles
 * where GCC vectors exist (this copy is 1/pixels of the conv's work, but
 * scalar it was a third of a 7x7 1x1 conv's time). */
static void transpose_filters(const float *w, int k, int nf, int np, float *wt)
{
    int j0 = 0;
#if TRANSPOSE_4X4
    const i32x4 lo = {0, 4, 1, 5}, hi = {2, 6, 3, 7}, low2 = {0, 1, 4, 5}, high2 = {2, 3, 6, 7};
    for (; j0 + 4 <= nf; j0 += 4) {
        int p = 0;
        for (; p + 4 <= k; p += 4) {
            f32x4 r[4];
            for (int i = 0; i < 4; i++)
                memcpy(&r[i], w + (int64_t)(j0 + i) * k + p, sizeof r[i]);
            f32x4 t0 = __builtin_shuffle(r[0], r[1], lo), t1 = __builtin_shuffle(r[0], r[1], hi);
            f32x4 t2 = __builtin_shuffle(r[2], r[3], lo), t3 = __builtin_shuffle(r[2], r[3], hi);
            f32x4 col[4] = {__builtin_shuffle(t0, t2, low2), __builtin_shuffle(t0, t2, high2),
                            __builtin_shuffle(t1, t3, low2), __builtin_shuffle(t1, t3, high2)};
            for (int i = 0; i < 4; i++)
                memcpy(wt + (int64_t)(p + i) * np + j0, &col[i], sizeof col[i]);
        }
        for (; p < k; p++)
            for (int i = 0; i < 4; i++)
                wt[(int64_t)p * np + j0 + i] = w[(int64_t)(j0 + i) * k + p];
    }
#endif
    for (int p = 0; p < k; p++)
        for (int j = j0; j < np; j++)
            wt[(int64_t)p * np + j] = j < nf ? w[(int64_t)j * k + p] : 0.0f;
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
    float *pad = (float *)mine;
    float *wt = (float *)(mine + ebnn_round64((uint64_t)(g->kh + ROW_SLACK) * run_width(g) * c * 4));
    float *cbuf = (float *)((char *)wt + ebnn_round64((uint64_t)k * nbmax * 4));
    for (int f0 = 0; f0 < g->out_c; f0 += FIL_BLOCK) {
        int nf = g->out_c - f0 < FIL_BLOCK ? g->out_c - f0 : FIL_BLOCK;
        int np = padded_block(nf);
        transpose_filters(w + (int64_t)f0 * k, k, nf, np, wt);
        pad_rows st = {.n = -1};
        /* runs of up to PIX_BLOCK pixels of one output row: each kernel
         * row is read straight from (a padded copy of) an input row, rows
         * overlapping by the stride, so there is no im2col copy */
        for (int64_t p0 = begin; p0 < end;) {
            int ox = (int)(p0 % g->out_w), oy = (int)(p0 / g->out_w % g->out_h);
            int64_t n = p0 / ((int64_t)g->out_w * g->out_h);
            int64_t left = end - p0;
            int cnt = g->out_w - ox < PIX_BLOCK ? g->out_w - ox : PIX_BLOCK;
            cnt = left < cnt ? (int)left : cnt;
            int64_t ldk;
            const float *rows = input_rows(g, in, n, oy, ox, cnt, pad, &st, &ldk);
            gemm(cnt, np, g->kh, span, rows, (int64_t)g->stride_w * c, ldk, wt, np, cbuf, np);
            /* the whole run at once: a fixed filter count keeps mul, bias
             * and the clamp bounds in registers across its pixels */
            ebnn_output_apply_f32_rows(o, g->out_c, p0, cnt, f0, nf, cbuf, np);
            p0 += cnt;
        }
    }
}

#define DENSE_CHUNK 256 /* filters per stack accumulator block */

void ebnn_fdense(int batch, int in_c, int out_c, const float *in,
                 const float *w, const ebnn_output *o, int tid, int nthreads)
{
    ebnn_fdot_fn dot = ebnn_fdot_select();
    /* rows when there are enough (always for bits or sign_out: one writer
     * per word), otherwise filters (batch-1 GEMV) */
    int by_rows = o->kind == EBNN_OUT_BITS || o->sign_out || batch >= nthreads;
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

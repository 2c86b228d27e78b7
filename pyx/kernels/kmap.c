/* K map of the XNOR-Net binary-inputs scheme: per output pixel, the mean
 * over the conv window of A = mean_c |x|. Padded taps count as zero but the
 * divisor stays kh*kw (A convolved with a 1/(kh*kw) box, zero padding). */
#include <math.h>
#include <string.h>
#include "edgebnn.h"

/* mean |x| over c channels: eight partial sums (partial l sums channels
 * i = l mod 8 in order), then a fixed tree. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
/* The eight partials as two NEON registers (lanes 0-3, 4-7); the tree is
 * two pairwise adds: (p0+p1, p2+p3, p4+p5, p6+p7), then (w0+w1, w2+w3).
 * The zero-filled tail adds |+0| to sums >= +0: no bit changes. (GCC's
 * 8-lane generic vectors below went through the stack here.) */
static inline __attribute__((always_inline)) float mean_abs(const float *x, int c)
{
    float32x4_t p0 = vdupq_n_f32(0.0f), p1 = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 8 <= c; i += 8) {
        p0 = vaddq_f32(p0, vabsq_f32(vld1q_f32(x + i)));
        p1 = vaddq_f32(p1, vabsq_f32(vld1q_f32(x + i + 4)));
    }
    if (i < c) {
        float tail[8] = {0};
        memcpy(tail, x + i, (size_t)(c - i) * sizeof(float));
        p0 = vaddq_f32(p0, vabsq_f32(vld1q_f32(tail)));
        p1 = vaddq_f32(p1, vabsq_f32(vld1q_f32(tail + 4)));
    }
    float32x4_t w = vpaddq_f32(p0, p1);
    float32x4_t u = vpaddq_f32(w, w);
    return (vgetq_lane_f32(u, 0) + vgetq_lane_f32(u, 1)) / (float)c;
}
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* The eight partials as one GCC vector (two SSE / NEON registers). The
 * tail is a zero-filled vector: partials past c add |+0| to sums that are
 * >= +0, which changes no bit. (Not on armv7: its NEON flushes denormals,
 * so there the scalar loop below runs.) */
typedef float f32x8 __attribute__((vector_size(32)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

static float mean_abs(const float *x, int c)
{
    const u32x8 magnitude = {0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu,
                             0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu};
    f32x8 part = {0};
    u32x8 v;
    int i = 0;
    for (; i + 8 <= c; i += 8) {
        memcpy(&v, x + i, sizeof v);
        part += (f32x8)(v & magnitude);  /* |x|: the sign bit cleared, as fabsf */
    }
    if (i < c) {
        float tail[8] = {0};
        memcpy(tail, x + i, (size_t)(c - i) * sizeof(float));
        memcpy(&v, tail, sizeof v);
        part += (f32x8)(v & magnitude);
    }
    /* the tree level by level as lane-wise adds of even and odd lanes:
     * w = (p0+p1, p2+p3, p4+p5, p6+p7), then (w0+w1, w2+w3), then the sum */
    f32x4 lo, hi;
    memcpy(&lo, &part, sizeof lo);
    memcpy(&hi, (const char *)&part + sizeof lo, sizeof hi);
    const i32x4 even = {0, 2, 4, 6}, odd = {1, 3, 5, 7};
    f32x4 w = __builtin_shuffle(lo, hi, even) + __builtin_shuffle(lo, hi, odd);
    f32x4 u = __builtin_shuffle(w, w, even) + __builtin_shuffle(w, w, odd);
    return (u[0] + u[1]) / (float)c;
}
#else
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
#endif

/* A = mean |x| of each input pixel is computed once into a stack tile of
 * kh rows (a ring: row iy sits in slot iy % kh, kept while the next output
 * row covers the same input columns, so with stride 1 each input row is
 * reduced once, not kh times), then each window is summed in the same ky,
 * kx order as the direct formula, but for a whole run of output pixels at
 * once (a vector add per tap). Out-of-image taps hold A = +0 in the tile;
 * adding +0 to a sum that is >= +0 (or NaN) changes no bit, so the result
 * is bit-identical to skipping them. Windows too large for the tile take
 * the direct path. */
#define KMAP_TILE 4096 /* floats of A (16 KiB of stack) */
#define KMAP_RUN 256   /* output pixels summed at once */
#define KMAP_MAX_KH 64 /* taller windows take the direct path */
#define KMAP_MAX_KW 64 /* wider ones sum a run at a time (below) */
/* 4 floats (NEON on aarch64, SSE on x86-64; IEEE adds and divides) */
typedef float v4f __attribute__((vector_size(16)));

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

/* A of input row iy, columns [c0, c0 + width), zeros outside the image */
static inline __attribute__((always_inline)) void
a_row_c(const ebnn_conv_geom *g, const float *in, int64_t n, int iy, int c0, int width,
        float *row, const int c)
{
    const float *src = in + ((n * g->in_h + iy) * g->in_w) * c;
    for (int j = 0; j < width; j++) {
        int ix = c0 + j;
        row[j] = ix < 0 || ix >= g->in_w ? 0.0f : mean_abs(src + (int64_t)ix * c, c);
    }
}

static inline __attribute__((always_inline)) void
a_row(const ebnn_conv_geom *g, const float *in, int64_t n, int iy, int c0, int width,
      float *row)
{
    switch (g->in_c) { /* ResNet widths as constants: mean_abs unrolls */
    case 16: a_row_c(g, in, n, iy, c0, width, row, 16); break;
    case 32: a_row_c(g, in, n, iy, c0, width, row, 32); break;
    case 64: a_row_c(g, in, n, iy, c0, width, row, 64); break;
    default: a_row_c(g, in, n, iy, c0, width, row, g->in_c);
    }
}

/* out[i] = (sum over the rows, kx of rows[r][kx + i]) / taps for i in
 * whole groups of 4, in registers; returns the outputs done */
static inline __attribute__((always_inline)) int64_t
window_sums4(const float *const *rows, int nr, const int kw, int64_t cnt, float taps,
             float *out)
{
    const v4f vtaps = {taps, taps, taps, taps};
    int64_t i = 0;
    for (; i + 4 <= cnt; i += 4) {
        v4f acc = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int r = 0; r < nr; r++)
            for (int kx = 0; kx < kw; kx++) {
                v4f t;
                memcpy(&t, rows[r] + kx + i, sizeof t);
                acc += t;
            }
        acc /= vtaps;
        memcpy(out + i, &acc, sizeof acc);
    }
    return i;
}

/* input row iy of the run's columns: from the kh-slot ring when it holds
 * it, else computed into its slot (a row serves kh output rows) */
static inline float *ring_row(const ebnn_conv_geom *g, const float *in, int64_t n, int iy,
                              int c0, int width, float *tile, int *tag)
{
    float *row = tile + (int64_t)(iy % g->kh) * width;
    if (tag[iy % g->kh] != iy) {
        a_row(g, in, n, iy, c0, width, row);
        tag[iy % g->kh] = iy;
    }
    return row;
}

void ebnn_kmap(const ebnn_conv_geom *g, const float *in, float *out,
               int tid, int nthreads)
{
    int64_t begin, end;
    ebnn_split((int64_t)g->n * g->out_h * g->out_w, tid, nthreads, &begin, &end);
    const float taps = (float)g->kh * (float)g->kw;
    const int kh = g->kh, sw = g->stride_w;
    float tile[KMAP_TILE];
    float sum[KMAP_RUN];
    /* output pixels per run: kh rows of the run's input columns must fit */
    int64_t run = 0;
    if (kh <= KMAP_MAX_KH && (int64_t)kh * g->kw <= KMAP_TILE) {
        run = 1 + (KMAP_TILE / kh - g->kw) / sw;
        run = run < KMAP_RUN ? run : KMAP_RUN;
    }
    int tag[KMAP_MAX_KH];        /* input row held by each slot */
    int64_t key_n = -1;          /* image and columns the slots are for */
    int key_c0 = 0, key_width = 0;
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
        int c0 = ox0 * sw - g->pad_left;
        int width = (int)((cnt - 1) * sw + g->kw);
        int r0 = oy * g->stride_h - g->pad_top;
        if (n != key_n || c0 != key_c0 || width != key_width) {
            for (int i = 0; i < kh; i++)
                tag[i] = -1;
            key_n = n, key_c0 = c0, key_width = width;
        }
        if (sw == 1 && g->kw <= KMAP_MAX_KW) {
            /* 4 outputs at a time, their sums in one register across the
             * window (the same additions in the same order per output) */
            const float *rows[KMAP_MAX_KH];
            int nr = 0;
            for (int ky = 0; ky < kh; ky++) {
                int iy = r0 + ky;
                if (iy < 0 || iy >= g->in_h)
                    continue;           /* skipped, as the direct path does */
                rows[nr++] = ring_row(g, in, n, iy, c0, width, tile, tag);
            }
            int64_t i = 0;
            if (g->kw == 3)
                i = window_sums4(rows, nr, 3, cnt, taps, out + p);
            else
                i = window_sums4(rows, nr, g->kw, cnt, taps, out + p);
            for (; i < cnt; i++) {
                float acc = 0.0f;
                for (int r = 0; r < nr; r++)
                    for (int kx = 0; kx < g->kw; kx++)
                        acc += rows[r][kx + i];
                out[p + i] = acc / taps;
            }
            p += cnt;
            continue;
        }
        for (int64_t i = 0; i < cnt; i++)
            sum[i] = 0.0f;
        for (int ky = 0; ky < kh; ky++) {
            int iy = r0 + ky;
            if (iy < 0 || iy >= g->in_h)
                continue;               /* skipped, as the direct path does */
            const float *row = ring_row(g, in, n, iy, c0, width, tile, tag);
            for (int kx = 0; kx < g->kw; kx++) {
                const float *restrict t = row + kx;
                if (sw == 1)
                    for (int64_t i = 0; i < cnt; i++)
                        sum[i] += t[i];
                else
                    for (int64_t i = 0; i < cnt; i++)
                        sum[i] += t[i * sw];
            }
        }
        for (int64_t i = 0; i < cnt; i++)
            out[p + i] = sum[i] / taps;
        p += cnt;
    }
}

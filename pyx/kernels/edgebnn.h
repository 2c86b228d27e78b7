/* edgebnn kernels: the framework-free math core.
 *
 * Conventions (shared with Larq Compute Engine so results compare):
 *   - activations NHWC; a binary tensor is bit-packed along channels into
 *     64-bit words, channel c -> word c/64, bit c%64 (LSB first);
 *     bit = 1 where the value is negative (so +1 -> 0); the unused high bits
 *     of the last word are 0.
 *   - binary dot over K valid bits: dot = K - 2*popcount(a XOR w).
 *   - every "dot" a kernel reports is the exact integer value of the float
 *     computation sign(x) conv sign(w) with the layer's padding semantics:
 *       EBNN_PAD_ONE   padded taps hold +1 (bits 0; free),
 *       EBNN_PAD_ZERO  padded taps hold 0 (plain TF padding="same" after sign),
 *       EBNN_PAD_VALID no padding.
 *
 * Threading: every op entry point takes (tid, nthreads) and computes only its
 * share of the output; the split is by output rows/filters, so results are
 * identical for every thread count. ebnn_run_parallel() runs an op on
 * nthreads OpenMP threads. No kernel allocates memory: callers pass scratch.
 */
#ifndef EDGEBNN_H
#define EDGEBNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- ISA --- */
typedef enum {
    EBNN_ISA_REF = 0,     /* plain reference loops: obviously right, slow     */
    EBNN_ISA_GENERIC = 1, /* portable C, __builtin_popcountll, tiled          */
    EBNN_ISA_AVX2 = 2,    /* x86-64 AVX2 (+FMA, BMI2)                         */
    EBNN_ISA_AVX512 = 3,  /* x86-64 AVX-512 F/BW/VL + VPOPCNTDQ               */
    EBNN_ISA_NEON = 4,    /* ARM NEON (aarch64, armv7 with -mfpu=neon)        */
    EBNN_ISA_COUNT = 5
} ebnn_isa;

const char *ebnn_isa_name(int isa);
int ebnn_isa_supported(int isa);   /* compiled in AND the CPU has it      */
int ebnn_isa_best(void);           /* fastest supported                   */
int ebnn_isa_get(void);            /* the one in use                      */
int ebnn_isa_set(int isa);         /* 0 on success, -1 if unsupported     */

/* ---------------------------------------------------------- bitpack --- */
static inline int ebnn_words(int channels) { return (channels + 63) / 64; }

/* rows = N*H*W; out has rows * ebnn_words(c) words. */
void ebnn_bitpack_f32(const float *x, int64_t rows, int c, uint64_t *out,
                      int tid, int nthreads);
/* bit = 1 where x < zero_point (int8: zero_point 0 means sign). */
void ebnn_bitpack_u8(const uint8_t *x, int64_t rows, int c, int zero_point,
                     uint64_t *out, int tid, int nthreads);
void ebnn_bitpack_i8(const int8_t *x, int64_t rows, int c, int zero_point,
                     uint64_t *out, int tid, int nthreads);

/* ------------------------------------------------------ conv geometry --- */
enum { EBNN_PAD_VALID = 0, EBNN_PAD_ONE = 1, EBNN_PAD_ZERO = 2 };

typedef struct {
    int n, in_h, in_w, in_c;      /* input NHWC (in_c real channels)        */
    int out_c, kh, kw;            /* filters and kernel size                */
    int stride_h, stride_w;
    int pad_top, pad_left;        /* padding before; after is implied       */
    int out_h, out_w;
    int pad_mode;                 /* EBNN_PAD_*; VALID needs pad_* == 0      */
} ebnn_conv_geom;

/* TF rules: "valid" out = (in-k)/s+1; "same" out = ceil(in/s),
 * pad_total = max((out-1)*s + k - in, 0), pad_top = pad_total/2.
 * Returns 0, or -1 if the geometry is impossible (sizes <= 0, overflow). */
int ebnn_conv_geom_init(ebnn_conv_geom *g, int n, int in_h, int in_w,
                        int in_c, int out_c, int kh, int kw, int stride_h,
                        int stride_w, int same, int pad_mode);

/* ------------------------------------------------------- output stage --- */
/* What a conv / dense does with its per-(pixel, filter) accumulator `acc`
 * (the exact integer dot for binary ops, the float sum for float ops):
 *   v = acc * (pixel_scale ? pixel_scale[pixel] : 1) * mul[f] + bias[f]
 *       (+ residual[pixel, f] if residual)
 *   EBNN_OUT_INT32  out int32 [pixels, out_c]   = acc (binary ops only)
 *   EBNN_OUT_FLOAT  out float [pixels, out_c]   = clamp(v, clamp_lo, clamp_hi)
 *   EBNN_OUT_BITS   out words [pixels, words(out_c)], bit = 1 where:
 *       thr != NULL: flip[f] ? acc > thr[f] : acc < thr[f]   (integer, exact)
 *       thr == NULL: v < 0                                   (float compare)
 * mul == NULL means 1, bias == NULL means 0. pixel = (n*out_h + y)*out_w + x.
 *
 * EBNN_OUT_FLOAT may also pack the signs of its output for a following
 * binary op in the same pass: with sign_out != NULL (words [pixels,
 * words(out_c)], the layout of EBNN_OUT_BITS) it writes, from the value y
 * stored in out (after the clamp), bit = 1 where:
 *       sign_thr != NULL: sign_flip && sign_flip[f] ? y > sign_thr[f]
 *                                                   : y < sign_thr[f]
 *       sign_thr == NULL: y < 0
 * (float compares: a NaN gives 0). A per-channel batch norm before the sign
 * becomes sign_thr / sign_flip (edgebnn/plan.py derives them exactly).
 * When the batch norm's output is needed as floats too (a K map reads it),
 * norm_out != NULL stores it, [pixels, out_c]:
 *       z = (y - norm_sub[f]) * norm_mul[f] + norm_add[f]   (in this order)
 * and sign_out (if set) then packs the signs of z instead of y. sign_out and
 * norm_out must be NULL for the other kinds. Word ownership as for
 * EBNN_OUT_BITS: kernels never split one pixel's word between threads.
 */
enum { EBNN_OUT_INT32 = 0, EBNN_OUT_FLOAT = 1, EBNN_OUT_BITS = 2 };

typedef struct {
    int kind;
    const float *mul, *bias;
    const float *pixel_scale;     /* [pixels] or NULL (the K map)            */
    const float *residual;        /* [pixels, out_c] or NULL                 */
    float clamp_lo, clamp_hi;     /* -INFINITY, INFINITY for none            */
    const int32_t *thr;           /* [out_c] or NULL                         */
    const uint8_t *flip;          /* [out_c], with thr                       */
    void *out;
    uint64_t *sign_out;           /* FLOAT: packed signs of out, or NULL     */
    const float *sign_thr;        /* [out_c] or NULL (compare with 0)        */
    const uint8_t *sign_flip;     /* [out_c] or NULL (no flips), with thr    */
    float *norm_out;              /* FLOAT: batch norm of out, or NULL       */
    const float *norm_sub, *norm_mul, *norm_add; /* [out_c] each, with it   */
} ebnn_output;

/* ------------------------------------------------------- binary conv --- */
/* in: packed [n, in_h, in_w, words(in_c)]; w: packed [out_c, kh, kw,
 * words(in_c)]. scratch: ebnn_bconv2d_scratch_bytes(g) bytes per thread,
 * 64-byte aligned; `scratch` points at the first thread's block and thread t
 * uses scratch + t * that size. */
size_t ebnn_bconv2d_scratch_bytes(const ebnn_conv_geom *g);
void ebnn_bconv2d(const ebnn_conv_geom *g, const uint64_t *in,
                  const uint64_t *w, const ebnn_output *o, void *scratch,
                  int tid, int nthreads);

/* Binary dense: in packed [batch, words(in_c)], w packed [out_c,
 * words(in_c)]: the 1x1 conv of a 1x1 image, with its own GEMV-friendly
 * tiling for small batches. */
size_t ebnn_bdense_scratch_bytes(int batch, int in_c, int out_c);
void ebnn_bdense(int batch, int in_c, int out_c, const uint64_t *in,
                 const uint64_t *w, const ebnn_output *o, void *scratch,
                 int tid, int nthreads);

/* ------------------------------------- weights-only (float x 1-bit) --- */
/* in: float [n, in_h, in_w, in_c]; w: packed [out_c, kh, kw, words(in_c)].
 * acc = sum x * sign(w) with zero padding (pad_mode ZERO or VALID); the
 * per-filter (XNOR) or scalar alpha is part of o->mul. */
size_t ebnn_wconv2d_scratch_bytes(const ebnn_conv_geom *g);
void ebnn_wconv2d(const ebnn_conv_geom *g, const float *in, const uint64_t *w,
                  const ebnn_output *o, void *scratch, int tid, int nthreads);
void ebnn_wdense(int batch, int in_c, int out_c, const float *in,
                 const uint64_t *w, const ebnn_output *o, int tid,
                 int nthreads);

/* ----------------------------------------------------- float conv --- */
/* in float NHWC, w float [out_c, kh, kw, in_c], zero padding. */
size_t ebnn_fconv2d_scratch_bytes(const ebnn_conv_geom *g);
void ebnn_fconv2d(const ebnn_conv_geom *g, const float *in, const float *w,
                  const ebnn_output *o, void *scratch, int tid, int nthreads);
void ebnn_fdense(int batch, int in_c, int out_c, const float *in,
                 const float *w /* [out_c, in_c] */, const ebnn_output *o,
                 int tid, int nthreads);

/* ------------------------------------------------------------ K map --- */
/* K[n, oy, ox] = (1/(kh*kw)) * sum over in-bounds taps of mean_c |x|;
 * geometry g as for the conv it scales (out_c unused). */
void ebnn_kmap(const ebnn_conv_geom *g, const float *in, float *out,
               int tid, int nthreads);

/* ---------------------------------------------------------- pooling --- */
/* geometry: g->in_c channels, kh x kw window, strides, TF same/valid
 * padding (padded positions are ignored, never counted). */
void ebnn_maxpool_f32(const ebnn_conv_geom *g, const float *in, float *out,
                      int tid, int nthreads);
void ebnn_avgpool_f32(const ebnn_conv_geom *g, const float *in, float *out,
                      int tid, int nthreads);
/* bit-packed: max of +-1 values is -1 only if all are -1, so bits AND. */
void ebnn_maxpool_bits(const ebnn_conv_geom *g, const uint64_t *in,
                       uint64_t *out, int tid, int nthreads);
void ebnn_global_avgpool_f32(int n, int hw, int c, const float *in,
                             float *out, int tid, int nthreads);

/* -------------------------------------------------------- threading --- */
typedef void (*ebnn_task)(void *ctx, int tid, int nthreads);
void ebnn_run_parallel(ebnn_task fn, void *ctx, int nthreads);
int ebnn_max_threads(void);

/* share [begin, end) of `total` items for thread tid of nthreads */
static inline void ebnn_split(int64_t total, int tid, int nthreads,
                              int64_t *begin, int64_t *end)
{
    int64_t q = total / nthreads, r = total % nthreads;
    *begin = tid * q + (tid < r ? tid : r);
    *end = *begin + q + (tid < r ? 1 : 0);
}

#ifdef __cplusplus
}
#endif
#endif

/* Output stage: scale/bias/residual/clamp to float, int32 passthrough, or
 * bit-packing by integer threshold / float sign.
 *
 * Two implementations of one formula:
 *  - per pixel (ebnn_output_apply_i32 and the ref ISA): each optional term
 *    is one contiguous loop over the filters, missing terms skipped; the
 *    plain formula, step by step.
 *  - rows (every other ISA): a block of pixels per call, all terms fused in
 *    one pass per element, compiled per ISA (output_rows_body.h). A missing
 *    mul is *1.0f and a missing bias or residual +(-0.0f): both are exact
 *    identities for every float including -0 and NaN (unlike +0.0f, which
 *    turns -0 into +0), so each element still sees the plain formula's IEEE
 *    operations in its order and the two are bit-identical (the tests
 *    compare every ISA with the ref ISA). */
#include <math.h>
#include <string.h>
#include "internal.h"
#include "output_stage.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* v[i] = acc*ps [*mul] [+bias] [+residual] for filters f0..f0+n; acc is
 * the integer dot ai or, when ai is NULL, the float sum af */
static void stage_values(const ebnn_output *o, int out_c, int64_t pixel, int f0, int n,
                         const int32_t *restrict ai, const float *restrict af,
                         float ps, float *restrict v)
{
    if (ai)
        for (int i = 0; i < n; i++)
            v[i] = (float)ai[i] * ps;
    else
        for (int i = 0; i < n; i++)
            v[i] = af[i] * ps;
    if (o->mul) {
        const float *restrict m = o->mul + f0;
        for (int i = 0; i < n; i++)
            v[i] *= m[i];
    }
    if (o->bias) {
        const float *restrict b = o->bias + f0;
        for (int i = 0; i < n; i++)
            v[i] += b[i];
    }
    if (o->residual) {
        const float *restrict r = o->residual + pixel * out_c + f0;
        for (int i = 0; i < n; i++)
            v[i] += r[i];
    }
}

/* compare-select (not fminf/fmaxf): vectorizes, and NaN passes unchanged */
static void clamp_all(float *restrict v, int n, float lo, float hi)
{
    for (int i = 0; i < n; i++) {
        float x = v[i] < lo ? lo : v[i];
        v[i] = x > hi ? hi : x;
    }
}

/* 64 flags (0/1 bytes) -> one word, flag b at bit b */
static inline uint64_t pack_flags(const uint8_t *flags)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* byte i of x sits at bit 8i; the multiplier moves it to bit 56 + i
     * with no two partial products overlapping (so no carries) */
    uint64_t bits = 0;
    for (int j = 0; j < 8; j++) {
        uint64_t x;
        memcpy(&x, flags + 8 * j, 8);
        bits |= ((x * 0x0102040810204080ull) >> 56) << (8 * j);
    }
    return bits;
#else
    uint64_t bits = 0;
    for (int b = 0; b < 64; b++)
        bits |= (uint64_t)flags[b] << b;
    return bits;
#endif
}

/* Merge `bits` (positions [lo, hi) of word `wi`) into one pixel's words
 * `row`; whole words are stored, partial ones read-modify-written. */
static inline void put_row_bits(uint64_t *row, int out_c, int wi, int lo, int hi,
                                uint64_t bits)
{
    int nbits = out_c - wi * 64;               /* real bits in this word */
    if (nbits > 64)
        nbits = 64;
    uint64_t valid = nbits == 64 ? ~0ull : ((1ull << nbits) - 1);
    uint64_t span = (hi - lo == 64) ? ~0ull : (((1ull << (hi - lo)) - 1) << lo);
    if ((span & valid) == valid)
        row[wi] = bits & valid;
    else
        row[wi] = ((row[wi] & ~span) | (bits & span)) & valid;
}

/* put_row_bits into the EBNN_OUT_BITS output words of `pixel` */
static inline void put_bits(const ebnn_output *o, int out_c, int64_t pixel,
                            int wi, int lo, int hi, uint64_t bits)
{
    put_row_bits((uint64_t *)o->out + pixel * ebnn_words(out_c), out_c, wi, lo, hi, bits);
}

/* norm_out: z = (y - sub) * mul + add for filters f0 .. f0+nf */
static void norm_plain(const ebnn_output *o, int f0, int nf, const float *restrict y,
                       float *restrict z)
{
    for (int i = 0; i < nf; i++)
        z[i] = (y[i] - o->norm_sub[f0 + i]) * o->norm_mul[f0 + i] + o->norm_add[f0 + i];
}

/* sign_out of one pixel from its stored floats y (filters f0 .. f0+nf):
 * the rule of edgebnn.h, one filter at a time */
static void sign_plain(const ebnn_output *o, int out_c, int64_t pixel, int f0, int nf,
                       const float *y)
{
    uint8_t neg[64];
    uint64_t *row = o->sign_out + pixel * ebnn_words(out_c);
    for (int f = f0, end = f0 + nf; f < end;) {
        int wi = f / 64, lo = f % 64;
        int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64;
        memset(neg, 0, sizeof neg);
        for (int k = f; k < wi * 64 + hi; k++) {
            float v = y[k - f0];
            if (!o->sign_thr)
                neg[k % 64] = v < 0.0f;
            else if (o->sign_flip && o->sign_flip[k])
                neg[k % 64] = v > o->sign_thr[k];
            else
                neg[k % 64] = v < o->sign_thr[k];
        }
        put_row_bits(row, out_c, wi, lo, hi, pack_flags(neg));
        f = wi * 64 + hi;
    }
}

/* gcc 12's vectorizer unrolls the loops below past n <= 64 - lo, which it
 * cannot prove, and -Wstringop-overflow then warns about stores in that dead
 * tail (the callers pass n = hi - lo with lo = f % 64 and hi <= 64; ASan
 * runs of kernel_check cover every lo/hi). Silenced here only. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
/* bit = flip ? acc > thr : acc < thr, as a select of the operands */
static void threshold_flags(const ebnn_output *o, int f, int n,
                            const int32_t *restrict acc, uint8_t *restrict neg)
{
    const int32_t *restrict thr = o->thr + f;
    if (o->flip) {
        const uint8_t *restrict flip = o->flip + f;
        for (int i = 0; i < n; i++) {
            int32_t l = flip[i] ? thr[i] : acc[i];
            int32_t r = flip[i] ? acc[i] : thr[i];
            neg[i] = l < r;
        }
    } else {
        for (int i = 0; i < n; i++)
            neg[i] = acc[i] < thr[i];
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* the per-pixel stage for the integer dot ai or (ai NULL) the float sum
 * af; thresholds apply to integer dots only */
static void apply_pixel(const ebnn_output *o, int out_c, int64_t pixel, int f0, int nf,
                        const int32_t *ai, const float *af)
{
    float ps = o->pixel_scale ? o->pixel_scale[pixel] : 1.0f;
    if (o->kind == EBNN_OUT_INT32 && ai) {
        memcpy((int32_t *)o->out + pixel * out_c + f0, ai, (size_t)nf * sizeof(int32_t));
    } else if (o->kind != EBNN_OUT_BITS) {
        /* (INT32 has no meaning for float sums; the wrappers refuse it, and
         * here it degrades to the float store rather than writing garbage) */
        float *out = (float *)o->out + pixel * out_c + f0;
        stage_values(o, out_c, pixel, f0, nf, ai, af, ps, out);
        clamp_all(out, nf, o->clamp_lo, o->clamp_hi);
        if (o->kind == EBNN_OUT_FLOAT && o->norm_out) {
            float *z = o->norm_out + pixel * out_c + f0;
            norm_plain(o, f0, nf, out, z);
            out = z;
        }
        if (o->sign_out && o->kind == EBNN_OUT_FLOAT)
            sign_plain(o, out_c, pixel, f0, nf, out);
    } else {
        uint8_t neg[64];
        float v[64];
        int f = f0, end = f0 + nf;
        while (f < end) {
            int wi = f / 64, lo = f % 64;
            int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64;
            memset(neg, 0, sizeof neg);
            if (ai && o->thr) {
                threshold_flags(o, f, hi - lo, ai + (f - f0), neg + lo);
            } else {
                stage_values(o, out_c, pixel, f, hi - lo, ai ? ai + (f - f0) : NULL,
                             ai ? NULL : af + (f - f0), ps, v);
                for (int i = 0; i < hi - lo; i++)
                    neg[lo + i] = v[i] < 0.0f;
            }
            put_bits(o, out_c, pixel, wi, lo, hi, pack_flags(neg));
            f = wi * 64 + hi;
        }
    }
}

void ebnn_output_apply_i32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const int32_t *acc)
{
    apply_pixel(o, out_c, pixel, f0, nf, acc, NULL);
}

/* ------------------------------------------------------------- rows --- */
#define ROW_CHUNK 256 /* filters per rows_chunk call: the identity arrays */
#define AINLINE __attribute__((always_inline)) inline
enum { SRC_I32 = 0, SRC_POP = 1, SRC_F32 = 2 };

static const float ones_f32[ROW_CHUNK] = {[0 ... ROW_CHUNK - 1] = 1.0f};
static const float negzero_f32[ROW_CHUNK] = {[0 ... ROW_CHUNK - 1] = -0.0f};

/* one call's accumulators: row i, filter f is acc[i * ld + f - f0] */
typedef struct {
    const ebnn_output *o;
    int out_c, src, clamp, f0;
    const int32_t *acc_i;
    const float *acc_f;
    int64_t ld;
    int32_t kreal;                 /* SRC_POP: dot = base - 2 popcount     */
    const int32_t *const *bases;   /* per row, over all filters; NULL rows */
    int fword0;                    /* word of flipbits[0] in this chunk     */
    uint64_t flipbits[ROW_CHUNK / 64 + 1];
} rows_job;

#define ROWS_SFX plain
#define ROWS_TARGET
#define ROWS_ISA 0
#include "output_rows_body.h"
#undef ROWS_SFX
#undef ROWS_TARGET
#undef ROWS_ISA
#if defined(__x86_64__)
#define ROWS_SFX avx2
#define ROWS_TARGET EBNN_TARGET_AVX2
#define ROWS_ISA 2
#include "output_rows_body.h"
#undef ROWS_SFX
#undef ROWS_TARGET
#undef ROWS_ISA
#define ROWS_SFX avx512
#define ROWS_TARGET EBNN_TARGET_AVX512
#define ROWS_ISA 3
#include "output_rows_body.h"
#undef ROWS_SFX
#undef ROWS_TARGET
#undef ROWS_ISA
#endif

/* the ref ISA: the per-pixel stage, one row at a time */
static void rows_ref(rows_job *jb, int64_t p0, int np, int f0, int nf)
{
    int32_t d[ROW_CHUNK];
    for (int i = 0; i < np; i++) {
        if (jb->src == SRC_F32) {
            apply_pixel(jb->o, jb->out_c, p0 + i, f0, nf, NULL,
                        jb->acc_f + i * jb->ld + (f0 - jb->f0));
            continue;
        }
        const int32_t *a = jb->acc_i + i * jb->ld + (f0 - jb->f0);
        if (jb->src == SRC_POP) {
            const int32_t *base = jb->bases && jb->bases[i] ? jb->bases[i] + f0 : NULL;
            for (int j = 0; j < nf; j++)
                d[j] = (base ? base[j] : jb->kreal) - 2 * a[j];
            a = d;
        }
        ebnn_output_apply_i32(jb->o, jb->out_c, p0 + i, f0, nf, a);
    }
}

typedef void (*rows_fn)(const rows_job *, int64_t, int, int, int);

static void rows_run(rows_job *jb, int64_t p0, int np, int f0, int nf)
{
    const ebnn_output *o = jb->o;
    int isa = ebnn_isa_get();
    rows_fn fn = rows_chunk_plain;
#if defined(__x86_64__)
    if (isa == EBNN_ISA_AVX512)
        fn = rows_chunk_avx512;
    else if (isa == EBNN_ISA_AVX2)
        fn = rows_chunk_avx2;
#endif
    jb->clamp = !(o->clamp_lo == -INFINITY && o->clamp_hi == INFINITY);
    /* chunks end on word boundaries, so no word is split between two */
    for (int f = f0, end = f0 + nf; f < end;) {
        int ce = (f / 64) * 64 + ROW_CHUNK;
        ce = ce < end ? ce : end;
        if (isa == EBNN_ISA_REF) {
            rows_ref(jb, p0, np, f, ce - f);
        } else {
            if (o->kind == EBNN_OUT_BITS && o->thr) {
                jb->fword0 = f / 64;
                memset(jb->flipbits, 0, sizeof jb->flipbits);
                if (o->flip)
                    for (int k = f; k < ce; k++)
                        jb->flipbits[k / 64 - jb->fword0] |= (uint64_t)(o->flip[k] != 0) << (k % 64);
            }
            fn(jb, p0, np, f, ce - f);
        }
        f = ce;
    }
}

void ebnn_output_apply_i32_rows(const ebnn_output *o, int out_c, int64_t p0, int np,
                                int f0, int nf, const int32_t *acc, int64_t ldacc)
{
    rows_job jb = {.o = o, .out_c = out_c, .src = SRC_I32, .f0 = f0, .acc_i = acc,
                   .ld = ldacc};
    rows_run(&jb, p0, np, f0, nf);
}

void ebnn_output_apply_pop_rows(const ebnn_output *o, int out_c, int64_t p0, int np,
                                int f0, int nf, const int32_t *pc, int64_t ldpc,
                                int32_t kreal, const int32_t *const *bases)
{
    rows_job jb = {.o = o, .out_c = out_c, .src = SRC_POP, .f0 = f0, .acc_i = pc,
                   .ld = ldpc, .kreal = kreal, .bases = bases};
    rows_run(&jb, p0, np, f0, nf);
}

void ebnn_output_apply_f32_rows(const ebnn_output *o, int out_c, int64_t p0, int np,
                                int f0, int nf, const float *acc, int64_t ldacc)
{
    rows_job jb = {.o = o, .out_c = out_c, .src = SRC_F32, .f0 = f0, .acc_f = acc,
                   .ld = ldacc};
    rows_run(&jb, p0, np, f0, nf);
}

/* per pixel (float kernels call it once per pixel): straight to the fused
 * per-ISA loop (no rows setup); the ref ISA takes the plain stage */
void ebnn_output_apply_f32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const float *acc)
{
    int isa = ebnn_isa_get();
    if (isa == EBNN_ISA_REF || nf > ROW_CHUNK) {
        apply_pixel(o, out_c, pixel, f0, nf, NULL, acc);
        return;
    }
    int clamp = !(o->clamp_lo == -INFINITY && o->clamp_hi == INFINITY);
#if defined(__x86_64__)
    if (isa == EBNN_ISA_AVX512) {
        pixel_f32_avx512(o, out_c, pixel, f0, nf, acc, clamp);
        return;
    }
    if (isa == EBNN_ISA_AVX2) {
        pixel_f32_avx2(o, out_c, pixel, f0, nf, acc, clamp);
        return;
    }
#endif
    pixel_f32_plain(o, out_c, pixel, f0, nf, acc, clamp);
}

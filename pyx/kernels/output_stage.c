/* Output stage: scale/bias/residual/clamp to float, int32 passthrough, or
 * bit-packing by integer threshold / float sign.
 *
 * Written for the auto-vectorizer (x86 SSE and NEON alike): the kind and
 * the optional terms are decided once per call, then each term is one
 * branch-free contiguous loop over the filters. Every element sees the same
 * IEEE operations in the same order as the plain formula (missing terms are
 * skipped, never replaced by *1 or +0, which would turn -0 into +0), so the
 * results are bit-identical to it. */
#include <string.h>
#include "output_stage.h"

/* v[i] = acc*ps [*mul] [+bias] [+residual] for filters f0..f0+n */
static void stage_values_i32(const ebnn_output *o, int out_c, int64_t pixel,
                             int f0, int n, const int32_t *restrict acc,
                             float ps, float *restrict v)
{
    for (int i = 0; i < n; i++)
        v[i] = (float)acc[i] * ps;
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

static void stage_values_f32(const ebnn_output *o, int out_c, int64_t pixel,
                             int f0, int n, const float *restrict acc,
                             float ps, float *restrict v)
{
    for (int i = 0; i < n; i++)
        v[i] = acc[i] * ps;
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

/* Merge `bits` (positions [lo, hi) of word `wi`) into the output words of
 * `pixel`; whole words are stored, partial ones read-modify-written. */
static inline void put_bits(const ebnn_output *o, int out_c, int64_t pixel,
                            int wi, int lo, int hi, uint64_t bits)
{
    uint64_t *row = (uint64_t *)o->out + pixel * ebnn_words(out_c);
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

void ebnn_output_apply_i32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const int32_t *acc)
{
    float ps = o->pixel_scale ? o->pixel_scale[pixel] : 1.0f;
    if (o->kind == EBNN_OUT_INT32) {
        memcpy((int32_t *)o->out + pixel * out_c + f0, acc, (size_t)nf * sizeof(int32_t));
    } else if (o->kind == EBNN_OUT_FLOAT) {
        float *out = (float *)o->out + pixel * out_c + f0;
        stage_values_i32(o, out_c, pixel, f0, nf, acc, ps, out);
        clamp_all(out, nf, o->clamp_lo, o->clamp_hi);
    } else {
        uint8_t neg[64];
        float v[64];
        int f = f0, end = f0 + nf;
        while (f < end) {
            int wi = f / 64, lo = f % 64;
            int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64;
            memset(neg, 0, sizeof neg);
            if (o->thr) {
                threshold_flags(o, f, hi - lo, acc + (f - f0), neg + lo);
            } else {
                stage_values_i32(o, out_c, pixel, f, hi - lo, acc + (f - f0), ps, v);
                for (int i = 0; i < hi - lo; i++)
                    neg[lo + i] = v[i] < 0.0f;
            }
            put_bits(o, out_c, pixel, wi, lo, hi, pack_flags(neg));
            f = wi * 64 + hi;
        }
    }
}

void ebnn_output_apply_f32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const float *acc)
{
    float ps = o->pixel_scale ? o->pixel_scale[pixel] : 1.0f;
    if (o->kind == EBNN_OUT_BITS) {
        uint8_t neg[64];
        float v[64];
        int f = f0, end = f0 + nf;
        while (f < end) {
            int wi = f / 64, lo = f % 64;
            int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64;
            memset(neg, 0, sizeof neg);
            stage_values_f32(o, out_c, pixel, f, hi - lo, acc + (f - f0), ps, v);
            for (int i = 0; i < hi - lo; i++)
                neg[lo + i] = v[i] < 0.0f;
            put_bits(o, out_c, pixel, wi, lo, hi, pack_flags(neg));
            f = wi * 64 + hi;
        }
    } else {
        /* INT32 has no meaning for float sums; the wrappers refuse it, and
         * here it degrades to the float store rather than writing garbage */
        float *out = (float *)o->out + pixel * out_c + f0;
        stage_values_f32(o, out_c, pixel, f0, nf, acc, ps, out);
        clamp_all(out, nf, o->clamp_lo, o->clamp_hi);
    }
}

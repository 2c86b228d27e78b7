/* Output stage: scale/bias/residual/clamp to float, int32 passthrough, or
 * bit-packing by integer threshold / float sign. */
#include "output_stage.h"

static inline float stage_value(const ebnn_output *o, int out_c, int64_t pixel,
                                int f, float acc, float ps)
{
    float v = acc * ps;
    if (o->mul)
        v *= o->mul[f];
    if (o->bias)
        v += o->bias[f];
    if (o->residual)
        v += o->residual[pixel * out_c + f];
    return v;
}

static inline float clampf(float v, float lo, float hi)
{
    /* written so NaN passes through unchanged */
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return v;
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

void ebnn_output_apply_i32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const int32_t *acc)
{
    float ps = o->pixel_scale ? o->pixel_scale[pixel] : 1.0f;
    if (o->kind == EBNN_OUT_INT32) {
        int32_t *out = (int32_t *)o->out + pixel * out_c + f0;
        for (int i = 0; i < nf; i++)
            out[i] = acc[i];
    } else if (o->kind == EBNN_OUT_FLOAT) {
        float *out = (float *)o->out + pixel * out_c + f0;
        for (int i = 0; i < nf; i++)
            out[i] = clampf(stage_value(o, out_c, pixel, f0 + i, (float)acc[i], ps),
                            o->clamp_lo, o->clamp_hi);
    } else {
        int f = f0, end = f0 + nf;
        while (f < end) {
            int wi = f / 64, lo = f % 64;
            int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64;
            uint64_t bits = 0;
            for (int b = lo; b < hi; b++) {
                int ff = wi * 64 + b;
                int32_t a = acc[ff - f0];
                int neg;
                if (o->thr) /* flip NULL: no channel flipped */
                    neg = (o->flip && o->flip[ff]) ? a > o->thr[ff] : a < o->thr[ff];
                else
                    neg = stage_value(o, out_c, pixel, ff, (float)a, ps) < 0.0f;
                bits |= (uint64_t)neg << b;
            }
            put_bits(o, out_c, pixel, wi, lo, hi, bits);
            f = wi * 64 + hi;
        }
    }
}

void ebnn_output_apply_f32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const float *acc)
{
    float ps = o->pixel_scale ? o->pixel_scale[pixel] : 1.0f;
    if (o->kind == EBNN_OUT_BITS) {
        int f = f0, end = f0 + nf;
        while (f < end) {
            int wi = f / 64, lo = f % 64;
            int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64;
            uint64_t bits = 0;
            for (int b = lo; b < hi; b++) {
                int ff = wi * 64 + b;
                bits |= (uint64_t)(stage_value(o, out_c, pixel, ff, acc[ff - f0], ps) < 0.0f) << b;
            }
            put_bits(o, out_c, pixel, wi, lo, hi, bits);
            f = wi * 64 + hi;
        }
    } else {
        /* INT32 has no meaning for float sums; the wrappers refuse it, and
         * here it degrades to the float store rather than writing garbage */
        float *out = (float *)o->out + pixel * out_c + f0;
        for (int i = 0; i < nf; i++)
            out[i] = clampf(stage_value(o, out_c, pixel, f0 + i, acc[i], ps),
                            o->clamp_lo, o->clamp_hi);
    }
}

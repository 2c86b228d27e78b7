/* TEMPORARY COPY (float-kernels branch) of the shared output stage; the
 * binary-kernels branch owns output_stage.c and the lead reconciles them. */
#include "output_stage.h"

static inline float stage_value(const ebnn_output *o, float scale,
                                const float *res, int f, float acc)
{
    float v = acc * scale * (o->mul ? o->mul[f] : 1.0f) +
              (o->bias ? o->bias[f] : 0.0f);
    return res ? v + res[f] : v;
}

void ebnn_output_apply_f32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const float *acc)
{
    float scale = o->pixel_scale ? o->pixel_scale[pixel] : 1.0f;
    const float *res = o->residual ? o->residual + pixel * out_c : NULL;
    if (o->kind == EBNN_OUT_FLOAT) {
        /* fields in locals: stores to out cannot then alias *o, and the
         * common case (no residual) is a plain loop the compiler vectorizes */
        float *out = (float *)o->out + pixel * out_c + f0;
        const float *mul = o->mul ? o->mul + f0 : NULL;
        const float *bias = o->bias ? o->bias + f0 : NULL;
        const float lo = o->clamp_lo, hi = o->clamp_hi;
        for (int i = 0; i < nf; i++) {
            float v = acc[i] * scale * (mul ? mul[i] : 1.0f) + (bias ? bias[i] : 0.0f);
            v = res ? v + res[f0 + i] : v;
            v = v < lo ? lo : v;
            out[i] = v > hi ? hi : v;
        }
    } else if (o->kind == EBNN_OUT_BITS) {
        int words = ebnn_words(out_c);
        uint64_t *out = (uint64_t *)o->out + pixel * words;
        for (int i = 0; i < nf; i++) {
            int f = f0 + i, neg;
            if (o->thr)
                neg = o->flip[f] ? acc[i] > (float)o->thr[f] : acc[i] < (float)o->thr[f];
            else
                neg = stage_value(o, scale, res, f, acc[i]) < 0.0f;
            uint64_t bit = (uint64_t)1 << (f & 63);
            out[f >> 6] = neg ? out[f >> 6] | bit : out[f >> 6] & ~bit;
        }
        if (f0 + nf == out_c && (out_c & 63))
            out[words - 1] &= ((uint64_t)1 << (out_c & 63)) - 1;
    } else { /* EBNN_OUT_INT32: exact integer accumulators of binary ops */
        int32_t *out = (int32_t *)o->out + pixel * out_c;
        for (int i = 0; i < nf; i++)
            out[f0 + i] = (int32_t)acc[i];
    }
}

/* Bit-packing of float rows with NEON: bit k of word w is set where
 * x[64w + k] < 0. The compare is an ordered less-than, so -0.0 and NaN give
 * 0 as the contract asks; the unused high bits of a row's last word are 0. */
#if defined(__ARM_NEON)
#include <arm_neon.h>
#include <string.h>

#include "internal.h"

#if defined(__aarch64__)
#define padd_u8 vpaddq_u8
#else
static inline uint8x16_t padd_u8(uint8x16_t x, uint8x16_t y)
{
    return vcombine_u8(vpadd_u8(vget_low_u8(x), vget_high_u8(x)),
                       vpadd_u8(vget_low_u8(y), vget_high_u8(y)));
}
#endif

/* 16 floats -> 16 bytes, byte i = 1 << (i % 8) where x[i] < 0, else 0 */
static inline uint8x16_t sign_bytes(const float *x)
{
    static const uint8_t weights[16] = {1, 2, 4, 8, 16, 32, 64, 128,
                                        1, 2, 4, 8, 16, 32, 64, 128};
#if defined(__aarch64__)
    /* one 4-register load, compares with 0 (ordered), three unzips of the
     * all-ones / zero masks down to bytes */
    float32x4x4_t v = vld1q_f32_x4(x);
    uint16x8_t lo = vuzp1q_u16(vreinterpretq_u16_u32(vcltzq_f32(v.val[0])),
                               vreinterpretq_u16_u32(vcltzq_f32(v.val[1])));
    uint16x8_t hi = vuzp1q_u16(vreinterpretq_u16_u32(vcltzq_f32(v.val[2])),
                               vreinterpretq_u16_u32(vcltzq_f32(v.val[3])));
    uint8x16_t mask = vuzp1q_u8(vreinterpretq_u8_u16(lo), vreinterpretq_u8_u16(hi));
#else
    const float32x4_t zero = vdupq_n_f32(0.0f);
    uint16x8_t lo = vcombine_u16(vmovn_u32(vcltq_f32(vld1q_f32(x), zero)),
                                 vmovn_u32(vcltq_f32(vld1q_f32(x + 4), zero)));
    uint16x8_t hi = vcombine_u16(vmovn_u32(vcltq_f32(vld1q_f32(x + 8), zero)),
                                 vmovn_u32(vcltq_f32(vld1q_f32(x + 12), zero)));
    uint8x16_t mask = vcombine_u8(vmovn_u16(lo), vmovn_u16(hi));
#endif
    return vandq_u8(mask, vld1q_u8(weights));
}

/* the first n <= 64 floats -> one word, bits past n are 0: each pairwise
 * add sums distinct bits, so after three levels byte b holds the 8 bits of
 * floats 8b..8b+7. Narrow rows (16 or 32 channels, ResNet's first stages)
 * touch only their own 16-float groups: no zero-filled 64-float copy. */
static inline uint64_t pack_upto64(const float *x, int n)
{
    uint8x16_t s[4];
    int g = 0;
    for (; g < n / 16; g++)
        s[g] = sign_bytes(x + 16 * g);
    if (n % 16) { /* zero padding packs to 0 bits */
        float tail[16] = {0};
        memcpy(tail, x + 16 * g, (size_t)(n % 16) * sizeof *tail);
        s[g++] = sign_bytes(tail);
    }
    for (; g < 4; g++)
        s[g] = vdupq_n_u8(0);
    uint8x16_t q = padd_u8(padd_u8(s[0], s[1]), padd_u8(s[2], s[3]));
    q = padd_u8(q, q);
    return vgetq_lane_u64(vreinterpretq_u64_u8(q), 0);
}

/* rows of c = 16 or 32 floats (a divisor of 64) are packed 64 floats at a
 * time across rows: the word's c-bit fields are the rows' words */
static void pack_narrow(const float *x, int64_t groups, const int c, uint64_t *out)
{
    const uint64_t mask = (1ull << c) - 1;
    for (int64_t g = 0; g < groups; g++, x += 64, out += 64 / c) {
        uint64_t word = pack_upto64(x, 64);
        for (int k = 0; k < 64 / c; k++)
            out[k] = (word >> (k * c)) & mask;
    }
}

void ebnn_bitpack_f32_neon(const float *x, int64_t rows, int c, uint64_t *out)
{
    int full = c / 64, rest = c % 64, words = ebnn_words(c);
    int64_t r0 = 0;
    if (c == 16 || c == 32) {
        int64_t groups = rows / (64 / c);
        if (c == 16)
            pack_narrow(x, groups, 16, out);
        else
            pack_narrow(x, groups, 32, out);
        r0 = groups * (64 / c);
    }
    for (int64_t r = r0; r < rows; r++) {
        const float *xr = x + r * c;
        uint64_t *o = out + r * words;
        for (int w = 0; w < full; w++)
            o[w] = pack_upto64(xr + 64 * w, 64);
        if (rest)
            o[full] = pack_upto64(xr + 64 * full, rest);
    }
}
#endif /* __ARM_NEON */

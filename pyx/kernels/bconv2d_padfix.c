/* Zero padding for binary convs: TF pads the +-1 input with 0, which the
 * packed words cannot hold (a zero word means +1 values), so the GEMM sees
 * +1 taps and each output pixel's dot is corrected by a per-filter base
 * vector that depends only on which taps fall outside the image (its
 * border pattern). Bases are cached per pattern; see bconv2d.h. */
#include "bconv2d.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

size_t ebnn_pad_fix_bytes(const ebnn_conv_geom *g)
{
    size_t oc = (size_t)g->out_c, taps = (size_t)g->kh * g->kw;
    return 2 * ebnn_round64(oc * taps * 4) + EBNN_PAD_FIX_SLOTS * ebnn_round64(oc * 4);
}

/* popcount of each run of `words` words: out[r] for r < rows */
static void popcount_rows_portable(const uint64_t *x, int64_t rows, int words, int32_t *out)
{
    for (int64_t r = 0; r < rows; r++) {
        int s = 0;
        for (int i = 0; i < words; i++)
            s += __builtin_popcountll(x[r * words + i]);
        out[r] = s;
    }
}

#if defined(__x86_64__)
/* same, with the popcnt instruction (every x86 ISA above generic has it;
 * the portable builtin is a table lookup in libgcc), or vectorized by the
 * compiler with vpopcntq; rows of 1, 4 and 8 words (64 / 256 / 512 channels) get
 * fixed-length loops */
static inline __attribute__((always_inline)) void
popcount_rows_fixed(const uint64_t *x, int64_t rows, int words, int32_t *out)
{
#define ROWS_OF(W)                                                            \
    for (int64_t r = 0; r < rows; r++) {                                      \
        int s = 0;                                                            \
        for (int i = 0; i < (W); i++)                                         \
            s += (int)__builtin_popcountll(x[r * (W) + i]);                   \
        out[r] = s;                                                           \
    }
    if (words == 1) { /* narrow layers (<= 64 channels): one vpopcntq per 8 */
        ROWS_OF(1)
    } else if (words == 4) {
        ROWS_OF(4)
    } else if (words == 8) {
        ROWS_OF(8)
    } else {
        ROWS_OF(words)
    }
#undef ROWS_OF
}

__attribute__((target("popcnt"))) static void
popcount_rows_x86(const uint64_t *x, int64_t rows, int words, int32_t *out)
{
    popcount_rows_fixed(x, rows, words, out);
}

EBNN_TARGET_AVX512 static void
popcount_rows_avx512(const uint64_t *x, int64_t rows, int words, int32_t *out)
{
    popcount_rows_fixed(x, rows, words, out);
}
#endif

#if defined(__ARM_NEON)
/* same with cnt on 16 bytes at a time (the portable builtin moves every word
 * to a vector register and back); byte lanes take up to 31 adds of <= 8.
 * Rows of 2, 4, 8 words (<= 512 channels) get fixed-length loops. */
static inline __attribute__((always_inline)) uint8x16_t cnt_add(uint8x16_t acc, const uint8_t *q)
{
    return vaddq_u8(acc, vcntq_u8(vld1q_u8(q)));
}

static inline __attribute__((always_inline)) int32_t hsum_u8(uint8x16_t acc)
{
#if defined(__aarch64__)
    return vaddlvq_u8(acc);
#else
    uint64x2_t t = vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(acc)));
    return (int32_t)(vgetq_lane_u64(t, 0) + vgetq_lane_u64(t, 1));
#endif
}

/* rows of an even words <= 62 */
static inline __attribute__((always_inline)) void
popcount_rows_neon_fixed(const uint64_t *x, int64_t rows, const int words, int32_t *out)
{
    const uint8_t *q = (const uint8_t *)x;
    for (int64_t r = 0; r < rows; r++, q += 8 * words) {
        uint8x16_t acc = vcntq_u8(vld1q_u8(q));
        for (int i = 2; i < words; i += 2)
            acc = cnt_add(acc, q + 8 * i);
        out[r] = hsum_u8(acc);
    }
}

static void popcount_rows_neon(const uint64_t *x, int64_t rows, int words, int32_t *out)
{
    switch (words) {
    case 2: popcount_rows_neon_fixed(x, rows, 2, out); return;
    case 4: popcount_rows_neon_fixed(x, rows, 4, out); return;
    case 8: popcount_rows_neon_fixed(x, rows, 8, out); return;
    }
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *q = (const uint8_t *)(x + r * words);
        int32_t s = 0;
        for (int i = 0; i < words;) {
            uint8x16_t acc = vdupq_n_u8(0);
            int end = words - i > 62 ? i + 62 : words;
            for (; i + 2 <= end; i += 2)
                acc = cnt_add(acc, q + 8 * i);
            if (i < end) {
                acc = vaddq_u8(acc, vcombine_u8(vcnt_u8(vld1_u8(q + 8 * i)), vdup_n_u8(0)));
                i++;
            }
            s += hsum_u8(acc);
        }
        out[r] = s;
    }
}

#if defined(__aarch64__)
/* corr[t * oc + f] = in_c - 2 popcount(w_f at tap t) straight in tap-major
 * order, 4 filters per vector (words <= 62: byte lanes hold the sums) */
static inline __attribute__((always_inline)) void
corr_neon_fixed(const uint64_t *w, int oc, int taps, const int words, int in_c, int32_t *corr)
{
    const int64_t fstride = (int64_t)taps * words;
    for (int t = 0; t < taps; t++) {
        int f = 0;
        for (; f + 4 <= oc; f += 4) {
            uint16x8_t h[4];
            for (int k = 0; k < 4; k++) {
                const uint8_t *q = (const uint8_t *)(w + (f + k) * fstride + (int64_t)t * words);
                uint8x16_t acc = vdupq_n_u8(0);
                int i = 0;
                for (; i + 2 <= words; i += 2)
                    acc = cnt_add(acc, q + 8 * i);
                if (i < words)
                    acc = vaddq_u8(acc, vcombine_u8(vcnt_u8(vld1_u8(q + 8 * i)), vdup_n_u8(0)));
                h[k] = vpaddlq_u8(acc);
            }
            uint32x4_t tot = vpaddlq_u16(vpaddq_u16(vpaddq_u16(h[0], h[1]), vpaddq_u16(h[2], h[3])));
            vst1q_s32(corr + (int64_t)t * oc + f,
                      vsubq_s32(vdupq_n_s32(in_c), vshlq_n_s32(vreinterpretq_s32_u32(tot), 1)));
        }
        for (; f < oc; f++) {
            int32_t c;
            popcount_rows_neon(w + f * fstride + (int64_t)t * words, 1, words, &c);
            corr[(int64_t)t * oc + f] = in_c - 2 * c;
        }
    }
}

static void corr_neon(const uint64_t *w, int oc, int taps, int words, int in_c,
                      int32_t *corr)
{
    switch (words) { /* constant lengths: the per-filter loops unroll */
    case 1: corr_neon_fixed(w, oc, taps, 1, in_c, corr); return;
    case 2: corr_neon_fixed(w, oc, taps, 2, in_c, corr); return;
    case 4: corr_neon_fixed(w, oc, taps, 4, in_c, corr); return;
    case 8: corr_neon_fixed(w, oc, taps, 8, in_c, corr); return;
    }
    corr_neon_fixed(w, oc, taps, words, in_c, corr);
}
#endif
#endif

void ebnn_pad_fix_init(ebnn_pad_fix *pf, const ebnn_conv_geom *g, const uint64_t *w,
                         char *s)
{
    int taps = g->kh * g->kw, oc = g->out_c;
    int64_t rows = (int64_t)oc * taps;
    pf->g = g;
    pf->corr = (int32_t *)s;
    s += ebnn_round64((size_t)rows * 4);
    int32_t *pc = (int32_t *)s;
    s += ebnn_round64((size_t)rows * 4);
#if defined(__aarch64__)
    if (ebnn_isa_get() == EBNN_ISA_NEON && ebnn_words(g->in_c) <= 62) {
        corr_neon(w, oc, taps, ebnn_words(g->in_c), g->in_c, pf->corr);
        goto bases;
    }
#endif
#if defined(__x86_64__)
    if (ebnn_isa_get() == EBNN_ISA_AVX512)
        popcount_rows_avx512(w, rows, ebnn_words(g->in_c), pc);
    else if (ebnn_isa_get() == EBNN_ISA_AVX2)
        popcount_rows_x86(w, rows, ebnn_words(g->in_c), pc);
    else
#endif
#if defined(__ARM_NEON)
    if (ebnn_isa_get() == EBNN_ISA_NEON)
        popcount_rows_neon(w, rows, ebnn_words(g->in_c), pc);
    else
#endif
        popcount_rows_portable(w, rows, ebnn_words(g->in_c), pc);
    for (int f = 0; f < oc; f++)
        for (int t = 0; t < taps; t++)
            pf->corr[(int64_t)t * oc + f] = g->in_c - 2 * pc[(int64_t)f * taps + t];
#if defined(__aarch64__)
bases:
#endif
    for (int i = 0; i < EBNN_PAD_FIX_SLOTS; i++, s += ebnn_round64((size_t)oc * 4))
        pf->base[i] = (int32_t *)s;
    pf->used = pf->next = pf->evicted = pf->last = 0;
    pf->skip_rows = 0;
}

#if defined(__x86_64__)
/* b[f] = full - sum of corr over the taps of kernel rows [ka, kb) outside
 * the in-image box key (ky0, ky1, kx0, kx1), 64 filters at a time held in
 * four zmm (the portable loop reloads and stores b once per tap); integer,
 * so the same values in any order */
EBNN_TARGET_AVX512 static void base_avx512(const ebnn_conv_geom *g, const int32_t *corr,
                                           const int key[4], int ka, int kb, int32_t full,
                                           int32_t *b)
{
    const int oc = g->out_c;
    for (int f0 = 0; f0 < oc; f0 += 64) {
        __mmask16 m[4];
        __m512i acc[4];
        for (int v = 0; v < 4; v++) {
            int left = oc - f0 - 16 * v;
            m[v] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            acc[v] = _mm512_set1_epi32(full);
        }
        for (int ky = ka; ky < kb; ky++)
            for (int kx = 0; kx < g->kw; kx++) {
                if (ky >= key[0] && ky < key[1] && kx >= key[2] && kx < key[3])
                    continue;
                const int32_t *ct = corr + (int64_t)(ky * g->kw + kx) * oc + f0;
                for (int v = 0; v < 4; v++)
                    acc[v] = _mm512_sub_epi32(acc[v], _mm512_maskz_loadu_epi32(m[v], ct + 16 * v));
            }
        for (int v = 0; v < 4; v++)
            _mm512_mask_storeu_epi32(b + f0 + 16 * v, m[v], acc[v]);
    }
}
#endif

/* base vector of output pixel (oy, ox), or NULL if all its taps are inside
 * the image */
const int32_t *ebnn_pad_fix_base(ebnn_pad_fix *pf, int oy, int ox)
{
    const ebnn_conv_geom *g = pf->g;
    int iy0 = oy * g->stride_h - g->pad_top, ix0 = ox * g->stride_w - g->pad_left;
    int key[4] = {iy0 < 0 ? -iy0 : 0, g->in_h - iy0 < g->kh ? g->in_h - iy0 : g->kh,
                  ix0 < 0 ? -ix0 : 0, g->in_w - ix0 < g->kw ? g->in_w - ix0 : g->kw};
    if (key[0] == 0 && key[1] == g->kh && key[2] == 0 && key[3] == g->kw)
        return NULL;
    /* one integer compare per cached pattern (a memcmp call each was most
     * of this function's cost on border-heavy layers such as LeNet's) */
    uint64_t packed = (uint64_t)(uint16_t)key[0] | (uint64_t)(uint16_t)key[1] << 16 |
                      (uint64_t)(uint16_t)key[2] << 32 | (uint64_t)(uint16_t)key[3] << 48;
    /* neighbouring border pixels mostly share a pattern: try the last first */
    if (pf->used && pf->key[pf->last] == packed)
        return pf->base[pf->last];
    for (int i = 0; i < pf->used; i++)
        if (pf->key[i] == packed) {
            pf->last = i;
            return pf->base[i];
        }
    int slot = pf->next;
    pf->next = (pf->next + 1) % EBNN_PAD_FIX_SLOTS;
    if (pf->used < EBNN_PAD_FIX_SLOTS)
        pf->used++;
    else
        pf->evicted = 1; /* pointers handed out earlier may now be stale */
    pf->key[slot] = packed;
    pf->last = slot;
    int32_t *restrict b = pf->base[slot], oc = g->out_c;
    int ka = 0, kb = g->kh; /* the kernel rows the GEMM reads */
    if (pf->skip_rows)
        ebnn_kept_rows(g, oy, &ka, &kb);
#if defined(__x86_64__)
    if (ebnn_isa_get() == EBNN_ISA_AVX512) {
        base_avx512(g, pf->corr, key, ka, kb, (kb - ka) * g->kw * g->in_c, b);
        return b;
    }
#endif
    for (int f = 0; f < oc; f++)
        b[f] = (kb - ka) * g->kw * g->in_c;
    for (int ky = ka; ky < kb; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            if (ky >= key[0] && ky < key[1] && kx >= key[2] && kx < key[3])
                continue;
            const int32_t *restrict ct = pf->corr + (int64_t)(ky * g->kw + kx) * oc;
            for (int f = 0; f < oc; f++)
                b[f] -= ct[f];
        }
    return b;
}

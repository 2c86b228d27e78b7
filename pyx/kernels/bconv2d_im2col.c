/* im2col for binary convs: output pixels' receptive fields gathered as
 * rows of packed words, the A operand of the popcount GEMM (bconv2d.c). */
#include "bconv2d.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* Gather pixels [p0, p0+np) into rows of K words (padded taps: 0 words).
 * A kernel row fully inside the image is one contiguous run of kw*words. */
#define IM2COL_BODY(COPY, ZERO, WORDS_K, KW_K)                                \
    const ebnn_conv_geom gl_ = *gp, *g = &gl_; /* see build_band_body in bconv2d.c */     \
    const int words = (WORDS_K) ? (WORDS_K) : ebnn_words(g->in_c);            \
    const int kwc = (KW_K) ? (KW_K) : g->kw, run = kwc * words;               \
    int ox = (int)(p0 % g->out_w), oy = (int)((p0 / g->out_w) % g->out_h);    \
    int64_t n = p0 / ((int64_t)g->out_w * g->out_h);                          \
    uint64_t *dst = cols;                                                     \
    for (int i = 0; i < np; i++) {                                            \
        int iy0 = oy * g->stride_h - g->pad_top;                              \
        int ix0 = ox * g->stride_w - g->pad_left;                             \
        int x_inside = ix0 >= 0 && ix0 + kwc <= g->in_w;                      \
        for (int ky = 0; ky < g->kh; ky++, dst += run) {                      \
            int iy = iy0 + ky;                                                \
            if (iy < 0 || iy >= g->in_h) {                                    \
                ZERO(dst, run);                                               \
                continue;                                                     \
            }                                                                 \
            const uint64_t *row = in + (n * g->in_h + iy) * g->in_w * words;  \
            if (x_inside) {                                                   \
                COPY(dst, row + (int64_t)ix0 * words, run);                   \
            } else {                                                          \
                for (int kx = 0; kx < kwc; kx++) {                            \
                    int ix = ix0 + kx;                                        \
                    if (ix >= 0 && ix < g->in_w) {                            \
                        COPY(dst + kx * words, row + (int64_t)ix * words, words); \
                    } else {                                                  \
                        ZERO(dst + kx * words, words);                        \
                    }                                                         \
                }                                                             \
            }                                                                 \
        }                                                                     \
        if (++ox == g->out_w) {                                               \
            ox = 0;                                                           \
            if (++oy == g->out_h) {                                           \
                oy = 0;                                                       \
                n++;                                                          \
            }                                                                 \
        }                                                                     \
    }

/* The gather is a plain loop, compiled for the vector width of the ISA in
 * use. (The conversion dot = base - 2 popcount is fused into the output
 * stage: ebnn_output_apply_pop_rows.) */

/* Narrow layers (1-2 words per tap, 3x3 or 5x5) get copies of a constant
 * run length, which compile to a few plain moves: the general masked /
 * looped copy costs more than the data it moves there. */
#define IM2COL_FIXED(SUFFIX, TARGET, COPY, ZERO, W, K)                        \
    TARGET static void im2col_##SUFFIX##_##W##x##K(                          \
        const ebnn_conv_geom *gp, const uint64_t *in, int64_t p0, int np,     \
        uint64_t *cols)                                                       \
    {                                                                         \
        IM2COL_BODY(COPY, ZERO, W, K)                                         \
    }
#define HELPERS(SUFFIX, TARGET, COPY, ZERO)                                   \
    IM2COL_FIXED(SUFFIX, TARGET, COPY_PLAIN, ZERO_PLAIN, 1, 3)                \
    IM2COL_FIXED(SUFFIX, TARGET, COPY_PLAIN, ZERO_PLAIN, 2, 3)                \
    IM2COL_FIXED(SUFFIX, TARGET, COPY_PLAIN, ZERO_PLAIN, 1, 5)                \
    IM2COL_FIXED(SUFFIX, TARGET, COPY_PLAIN, ZERO_PLAIN, 2, 5)                \
    TARGET static void im2col_##SUFFIX(const ebnn_conv_geom *gp, const uint64_t *in, \
                                       int64_t p0, int np, uint64_t *cols)    \
    {                                                                         \
        int words_ = ebnn_words(gp->in_c);                                    \
        if (words_ <= 2 && (gp->kw == 3 || gp->kw == 5)) {                    \
            if (gp->kw == 3)                                                  \
                (words_ == 1 ? im2col_##SUFFIX##_1x3 : im2col_##SUFFIX##_2x3)(gp, in, p0, np, cols); \
            else                                                              \
                (words_ == 1 ? im2col_##SUFFIX##_1x5 : im2col_##SUFFIX##_2x5)(gp, in, p0, np, cols); \
            return;                                                           \
        }                                                                     \
        IM2COL_BODY(COPY, ZERO, 0, 0)                                         \
    }
HELPERS(plain, , COPY_PLAIN, ZERO_PLAIN)
#if defined(__aarch64__)
HELPERS(neonw, , COPY_NEON, ZERO_NEON)
IM2COL_FIXED(neon, , COPY_NEON, ZERO_NEON, 4, 3) /* 256 channels, 3x3 */
static void im2col_neon(const ebnn_conv_geom *g, const uint64_t *in, int64_t p0, int np,
                        uint64_t *cols)
{
    if (ebnn_words(g->in_c) == 4 && g->kw == 3)
        im2col_neon_4x3(g, in, p0, np, cols);
    else
        im2col_neonw(g, in, p0, np, cols);
}
#endif
#if defined(__x86_64__)
HELPERS(avx2, EBNN_TARGET_AVX2, COPY_PLAIN, ZERO_PLAIN)
HELPERS(avx512, EBNN_TARGET_AVX512, COPY_AVX512, ZERO_AVX512)
#endif

ebnn_im2col_fn ebnn_im2col_select(void)
{
    switch (ebnn_isa_get()) {
#if defined(__x86_64__)
    case EBNN_ISA_AVX512:
        return im2col_avx512;
    case EBNN_ISA_AVX2:
        return im2col_avx2;
#endif
#if defined(__aarch64__)
    case EBNN_ISA_NEON:
        return im2col_neon;
#endif
    default:
        return im2col_plain;
    }
}

/* The parts of the binary conv front (bconv2d.c) kept in their own files:
 *   bconv2d_padfix.c  zero-padding correction: per-filter sums cached per
 *                     border pattern (dot = base - 2 popcount);
 *   bconv2d_im2col.c  the gather of packed input words into GEMM rows. */
#ifndef EDGEBNN_BCONV2D_H
#define EDGEBNN_BCONV2D_H
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#define EBNN_PAD_FIX_SLOTS 32 /* cached border patterns (3x3 stride 1: 8, 5x5: 24) */

/* Per-thread state for zero padding: corr[t * out_c + f] = in_c -
 * 2 popcount(w_f at tap t), and for recently seen border patterns (the
 * in-image tap box ky0..ky1 x kx0..kx1) base[f] = kh*kw*in_c - sum of corr
 * over the pattern's out-of-image taps, so dot = base[f] - 2 popcount. */
typedef struct {
    const ebnn_conv_geom *g;
    int32_t *corr, *base[EBNN_PAD_FIX_SLOTS];
    uint64_t key[EBNN_PAD_FIX_SLOTS]; /* in-image tap box ky0, ky1, kx0, kx1: 16 bits each */
    int used, next, evicted, last; /* last: the slot found or made last */
    int skip_rows; /* the GEMM leaves out-of-image kernel rows out (ebnn_kept_rows) */
} ebnn_pad_fix;

/* scratch bytes ebnn_pad_fix_init uses */
size_t ebnn_pad_fix_bytes(const ebnn_conv_geom *g);
/* corr of the packed weights w [out_c][kh*kw][words]; carves s */
void ebnn_pad_fix_init(ebnn_pad_fix *pf, const ebnn_conv_geom *g, const uint64_t *w, char *s);
/* base vector of output pixel (oy, ox), or NULL if all its taps are inside
 * the image; valid until EBNN_PAD_FIX_SLOTS other patterns were asked for
 * (pf->evicted says it may have happened) */
const int32_t *ebnn_pad_fix_base(ebnn_pad_fix *pf, int oy, int ox);
/* taps [k0, k1) of a k-tap window starting at input index i0 that lie
 * inside [0, n) (an empty range when none does) */
static inline void ebnn_clip_taps(int i0, int k, int n, int *k0, int *k1)
{
    *k0 = i0 < 0 ? ebnn_imin(-i0, k) : 0;
    *k1 = ebnn_imin(n - i0, k);
    if (*k1 < *k0)
        *k1 = *k0;
}

/* kernel rows [ky0, ky1) of output row oy that lie inside the image.
 * Zero padding, kernel rows wholly outside the image: they add nothing, so
 * the GEMM leaves them out (K per pixel = its in-image kernel rows: a
 * contiguous range, as a pixel row is kh runs of kwords/kh words, ky-major,
 * in every gather layout). Then base = kept taps * in_c - corr of the kept
 * out-of-image taps (their zero words count popcount(w) in the GEMM). */
static inline void ebnn_kept_rows(const ebnn_conv_geom *g, int oy, int *ky0, int *ky1)
{
    ebnn_clip_taps(oy * g->stride_h - g->pad_top, g->kh, g->in_h, ky0, ky1);
}

/* im2col of packed words: pixels [p0, p0+np) into rows of kh*kw*words
 * words (padded taps: zero words), compiled for the ISA in use */
typedef void (*ebnn_im2col_fn)(const ebnn_conv_geom *g, const uint64_t *in, int64_t p0,
                               int np, uint64_t *cols);
ebnn_im2col_fn ebnn_im2col_select(void);

/* copy / clear n words (the gathers of bconv2d_im2col.c and bconv2d.c's
 * clipped taps); the avx512 build uses masked 512-bit moves, since
 * runs are short (a 3x3 kernel row of 256 channels is 12 words) */
#define COPY_PLAIN(dst, src, n)                                               \
    for (int k_ = 0; k_ < (n); k_++)                                          \
        (dst)[k_] = (src)[k_]
#define ZERO_PLAIN(dst, n)                                                    \
    for (int k_ = 0; k_ < (n); k_++)                                          \
        (dst)[k_] = 0
#if defined(__x86_64__)
#define COPY_AVX512(dst, src, n)                                              \
    for (int k_ = 0; k_ < (n); k_ += 8) {                                     \
        __mmask8 m_ = (n) - k_ >= 8 ? 0xFF : (__mmask8)((1u << ((n) - k_)) - 1); \
        _mm512_mask_storeu_epi64((dst) + k_, m_,                              \
                                 _mm512_maskz_loadu_epi64(m_, (src) + k_));   \
    }
#define ZERO_AVX512(dst, n)                                                   \
    for (int k_ = 0; k_ < (n); k_ += 8) {                                     \
        __mmask8 m_ = (n) - k_ >= 8 ? 0xFF : (__mmask8)((1u << ((n) - k_)) - 1); \
        _mm512_mask_storeu_epi64((dst) + k_, m_, _mm512_setzero_si512());     \
    }
#endif

#if defined(__aarch64__)
/* 4 words per load / store pair (gcc's loop for COPY_PLAIN spends ~25
 * instructions per 12-word run on checks and scalar ends) */
#define COPY_NEON(dst, src, n)                                                \
    do {                                                                      \
        int k_ = 0;                                                           \
        for (; k_ + 4 <= (n); k_ += 4)                                        \
            vst1q_u64_x2((dst) + k_, vld1q_u64_x2((src) + k_));               \
        for (; k_ < (n); k_++)                                                \
            (dst)[k_] = (src)[k_];                                            \
    } while (0)
#define ZERO_NEON(dst, n)                                                     \
    do {                                                                      \
        int k_ = 0;                                                           \
        for (; k_ + 2 <= (n); k_ += 2)                                        \
            vst1q_u64((dst) + k_, vdupq_n_u64(0));                            \
        if (k_ < (n))                                                         \
            (dst)[k_] = 0;                                                    \
    } while (0)
#endif

#endif

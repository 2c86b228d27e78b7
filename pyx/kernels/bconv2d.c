/* Binary convolution and dense fronts: geometry, im2col of packed words,
 * padding semantics, thread split and output stage around the per-ISA
 * popcount GEMM.
 *
 * Per thread: a block of PB output pixels is gathered (im2col) into scratch,
 * K = kh*kw*words words per pixel, padded taps as zero words (= +1 values).
 * The GEMM then gives popcounts p for FB filters at a time and
 *     dot = kh*kw*in_c - 2p                          (valid / same_one)
 *     dot -= sum over padded taps of (in_c - 2 popcount(w_tap))  (same_zero)
 * since a zero-padded tap contributes 0, not the +1 the zero words imply
 * (the sums are cached per border pattern, see pad_fix). */
#include <string.h>
#include "internal.h"
#include "output_stage.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define FB 256 /* filters per GEMM call: a multiple of 64 (bit words) */

ebnn_bgemm_fn ebnn_bgemm_select(void)
{
    switch (ebnn_isa_get()) {
    case EBNN_ISA_REF:
        return ebnn_bgemm_ref;
#if defined(__x86_64__)
    case EBNN_ISA_AVX512:
        return ebnn_bgemm_avx512;
    case EBNN_ISA_AVX2:
        return ebnn_bgemm_avx2;
#endif
#if defined(__ARM_NEON)
    case EBNN_ISA_NEON:
        return ebnn_bgemm_neon;
#endif
    default:
        return ebnn_bgemm_generic;
    }
}

static inline size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }
static inline int imin(int a, int b) { return a < b ? a : b; }

/* pixels per im2col block: the SIMD GEMMs repack their filters on every
 * call, so a block should be large (ideally a thread's whole share), yet
 * stay near L2 size: at most 2 MiB of gathered rows, 1 MiB of sums. */
static int pixel_block(int64_t kwords, int64_t pixels)
{
    int64_t pb = 262144 / (kwords > 0 ? kwords : 1);
    if (pb > 1024)
        pb = 1024;
    if (pb < 6)
        pb = 6;
    return (int)(pb < pixels ? pb : pixels);
}

/* Dense tap packing for narrow inputs: the kw taps of a kernel row are
 * packed back to back (kw*in_c bits in dense_row_words words) instead of
 * one word each, when that saves words (in_c 16, 3x3: 1 word per kernel
 * row instead of 3; in_c 32: 2 instead of 3). Input rows are first laid out
 * as one bit stream per row (pixel x at bit (x + pad_left)*in_c, zero bits
 * in the padding), so a pixel's kernel row is a bit field of that stream;
 * the weights are repacked the same way per call (out_c*kh words, cheap).
 * Padded taps still read as zero bits (+1), and kh*kw*in_c real bits per
 * pixel remain, so dot = kreal - 2 popcount and the same_zero corrections
 * per tap are unchanged. */
static int dense_row_words(const ebnn_conv_geom *g)
{
    return (int)(((int64_t)g->kw * g->in_c + 63) / 64);
}

static int dense_taps(const ebnn_conv_geom *g)
{
    return g->in_c <= 64 && dense_row_words(g) < g->kw;
}

/* words per row stream: the padded width every tap can reach, + 1 word so
 * a two-word read at the last field stays inside */
static int64_t stream_words(const ebnn_conv_geom *g)
{
    int64_t width = (int64_t)(g->out_w - 1) * g->stride_w + g->kw;
    if (width < (int64_t)g->pad_left + g->in_w)
        width = (int64_t)g->pad_left + g->in_w;
    return (width * g->in_c + 63) / 64 + 1;
}

static int64_t conv_kwords(const ebnn_conv_geom *g)
{
    if (dense_taps(g))
        return (int64_t)g->kh * dense_row_words(g);
    return (int64_t)g->kh * g->kw * ebnn_words(g->in_c);
}

static int direct_rows(const ebnn_conv_geom *g)
{
    /* a 1x1, stride-1, unpadded conv reads the input rows as they are */
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 &&
           g->pad_top == 0 && g->pad_left == 0;
}

#define BAND_MIN_W 32 /* narrowest output rows worth a GEMM call each */

#define SLOTS 32 /* cached border patterns (3x3 stride 1: 8, 5x5: 24) */

/* Per-thread state for zero padding: corr[t * out_c + f] = in_c -
 * 2 popcount(w_f at tap t), and for recently seen border patterns (the
 * in-image tap box ky0..ky1 x kx0..kx1) base[f] = kh*kw*in_c - sum of corr
 * over the pattern's out-of-image taps, so dot = base[f] - 2 popcount. */
typedef struct {
    const ebnn_conv_geom *g;
    int32_t *corr, *base[SLOTS];
    uint64_t key[SLOTS]; /* in-image tap box ky0, ky1, kx0, kx1: 16 bits each */
    int used, next, evicted, last; /* last: the slot found or made last */
} pad_fix;

static size_t pad_fix_bytes(const ebnn_conv_geom *g)
{
    size_t oc = (size_t)g->out_c, taps = (size_t)g->kh * g->kw;
    return 2 * round64(oc * taps * 4) + SLOTS * round64(oc * 4);
}

/* Column bands (implicit GEMM) for narrow layers: instead of gathering
 * kh*kw taps per output pixel, gather once per (output column ox, padded
 * input row yp) the R words of a kernel row, band[ox][yp][R] (R =
 * dense_row_words, or kw*words without dense packing). Pixel (oy, ox)'s
 * GEMM row is then band[ox][oy*stride_h .. +kh) contiguous, and the pixels
 * of one output row are rows at a fixed stride band_h*R: the GEMM reads
 * the band directly, one call per output row. Gathered words drop kh-fold
 * for stride 1 (out-of-image rows are zero words in the band). */
static int band_h(const ebnn_conv_geom *g)
{
    return (g->out_h - 1) * g->stride_h + g->kh;
}

static int band_row_words(const ebnn_conv_geom *g)
{
    return dense_taps(g) ? dense_row_words(g) : g->kw * ebnn_words(g->in_c);
}

static int64_t band_words(const ebnn_conv_geom *g)
{
    return (int64_t)g->out_w * band_h(g) * band_row_words(g);
}

static int band_mode(const ebnn_conv_geom *g)
{
    return ebnn_words(g->in_c) <= 2 && !direct_rows(g) && g->out_w >= BAND_MIN_W;
}

size_t ebnn_bconv2d_scratch_bytes(const ebnn_conv_geom *g)
{
    int64_t kw = conv_kwords(g);
    int pb = pixel_block(kw, (int64_t)g->n * g->out_h * g->out_w);
    size_t s = round64((size_t)pb * imin(g->out_c, FB) * sizeof(int32_t));
    if (band_mode(g))
        s += round64((size_t)band_words(g) * sizeof(uint64_t));
    else if (!direct_rows(g))
        s += round64((size_t)pb * kw * sizeof(uint64_t));
    if (g->pad_mode == EBNN_PAD_ZERO)
        s += round64((size_t)pb * sizeof(int32_t *)) + pad_fix_bytes(g);
    if (dense_taps(g))
        s += round64((size_t)g->n * g->in_h * stream_words(g) * sizeof(uint64_t)) +
             round64((size_t)g->out_c * kw * sizeof(uint64_t));
    return round64(s);
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

static void pad_fix_init(pad_fix *pf, const ebnn_conv_geom *g, const uint64_t *w,
                         char *s)
{
    int taps = g->kh * g->kw, oc = g->out_c;
    int64_t rows = (int64_t)oc * taps;
    pf->g = g;
    pf->corr = (int32_t *)s;
    s += round64((size_t)rows * 4);
    int32_t *pc = (int32_t *)s;
    s += round64((size_t)rows * 4);
#if defined(__x86_64__)
    if (ebnn_isa_get() == EBNN_ISA_AVX512)
        popcount_rows_avx512(w, rows, ebnn_words(g->in_c), pc);
    else if (ebnn_isa_get() == EBNN_ISA_AVX2)
        popcount_rows_x86(w, rows, ebnn_words(g->in_c), pc);
    else
#endif
        popcount_rows_portable(w, rows, ebnn_words(g->in_c), pc);
    for (int f = 0; f < oc; f++)
        for (int t = 0; t < taps; t++)
            pf->corr[(int64_t)t * oc + f] = g->in_c - 2 * pc[(int64_t)f * taps + t];
    for (int i = 0; i < SLOTS; i++, s += round64((size_t)oc * 4))
        pf->base[i] = (int32_t *)s;
    pf->used = pf->next = pf->evicted = pf->last = 0;
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
static const int32_t *pad_fix_base(pad_fix *pf, int oy, int ox)
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
    pf->next = (pf->next + 1) % SLOTS;
    if (pf->used < SLOTS)
        pf->used++;
    else
        pf->evicted = 1; /* pointers handed out earlier may now be stale */
    pf->key[slot] = packed;
    pf->last = slot;
    int32_t *restrict b = pf->base[slot], oc = g->out_c;
#if defined(__x86_64__)
    if (ebnn_isa_get() == EBNN_ISA_AVX512) {
        base_avx512(g, pf->corr, key, 0, g->kh, g->kh * g->kw * g->in_c, b);
        return b;
    }
#endif
    for (int f = 0; f < oc; f++)
        b[f] = g->kh * g->kw * g->in_c;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++) {
            if (ky >= key[0] && ky < key[1] && kx >= key[2] && kx < key[3])
                continue;
            const int32_t *restrict ct = pf->corr + (int64_t)(ky * g->kw + kx) * oc;
            for (int f = 0; f < oc; f++)
                b[f] -= ct[f];
        }
    return b;
}

/* Gather pixels [p0, p0+np) into rows of K words (padded taps: 0 words).
 * A kernel row fully inside the image is one contiguous run of kw*words. */
/* copy / clear n words; the avx512 build uses masked 512-bit moves, since
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

#define IM2COL_BODY(COPY, ZERO, WORDS_K, KW_K)                                \
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
typedef struct {
    void (*im2col)(const ebnn_conv_geom *, const uint64_t *, int64_t, int, uint64_t *);
} conv_helpers;

/* Narrow layers (1-2 words per tap, 3x3 or 5x5) get copies of a constant
 * run length, which compile to a few plain moves: the general masked /
 * looped copy costs more than the data it moves there. */
#define IM2COL_FIXED(SUFFIX, TARGET, COPY, ZERO, W, K)                        \
    TARGET static void im2col_##SUFFIX##_##W##x##K(                          \
        const ebnn_conv_geom *g, const uint64_t *in, int64_t p0, int np,      \
        uint64_t *cols)                                                       \
    {                                                                         \
        IM2COL_BODY(COPY, ZERO, W, K)                                         \
    }
#define HELPERS(SUFFIX, TARGET, COPY, ZERO)                                   \
    IM2COL_FIXED(SUFFIX, TARGET, COPY_PLAIN, ZERO_PLAIN, 1, 3)                \
    IM2COL_FIXED(SUFFIX, TARGET, COPY_PLAIN, ZERO_PLAIN, 2, 3)                \
    IM2COL_FIXED(SUFFIX, TARGET, COPY_PLAIN, ZERO_PLAIN, 1, 5)                \
    IM2COL_FIXED(SUFFIX, TARGET, COPY_PLAIN, ZERO_PLAIN, 2, 5)                \
    TARGET static void im2col_##SUFFIX(const ebnn_conv_geom *g, const uint64_t *in, \
                                       int64_t p0, int np, uint64_t *cols)    \
    {                                                                         \
        int words_ = ebnn_words(g->in_c);                                     \
        if (words_ <= 2 && (g->kw == 3 || g->kw == 5)) {                      \
            if (g->kw == 3)                                                   \
                (words_ == 1 ? im2col_##SUFFIX##_1x3 : im2col_##SUFFIX##_2x3)(g, in, p0, np, cols); \
            else                                                              \
                (words_ == 1 ? im2col_##SUFFIX##_1x5 : im2col_##SUFFIX##_2x5)(g, in, p0, np, cols); \
            return;                                                           \
        }                                                                     \
        IM2COL_BODY(COPY, ZERO, 0, 0)                                         \
    }
HELPERS(plain, , COPY_PLAIN, ZERO_PLAIN)
#if defined(__x86_64__)
HELPERS(avx2, EBNN_TARGET_AVX2, COPY_PLAIN, ZERO_PLAIN)
HELPERS(avx512, EBNN_TARGET_AVX512, COPY_AVX512, ZERO_AVX512)
#endif

static conv_helpers helpers_select(void)
{
    switch (ebnn_isa_get()) {
#if defined(__x86_64__)
    case EBNN_ISA_AVX512:
        return (conv_helpers){im2col_avx512};
    case EBNN_ISA_AVX2:
        return (conv_helpers){im2col_avx2};
#endif
    default:
        return (conv_helpers){im2col_plain};
    }
}


/* Write `count` items of `bits` bits each (item i = the low bits of
 * src[i * stride], higher bits 0) back to back from bit `start` of dst,
 * zero bits before them and up to word `words` (exclusive). Built in a
 * register: OR-ing into memory item by item chains every item on a
 * store-to-load forwarding. */
/* words [0, words) when items never straddle a word (64 % bits == 0,
 * start % bits == 0): word j is the OR of its own `per` items, so words are
 * independent (no carry chain from item to item); PER constant after
 * inlining for the common item sizes */
static inline __attribute__((always_inline)) void
pack_aligned(uint64_t *dst, int64_t words, int64_t first, const uint64_t *src,
             int64_t stride, int count, int bits, const int per)
{
    for (int64_t j = 0; j < words; j++) {
        int64_t a = j * per - first; /* item in slot 0 of word j */
        int q0 = a < 0 ? (int)(a < -per ? per : -a) : 0;
        int qn = count - a < per ? (int)(count - a < 0 ? 0 : count - a) : per;
        uint64_t v = 0;
        for (int q = q0; q < qn; q++)
            v |= src[(a + q) * stride] << (q * bits);
        dst[j] = v;
    }
}

static void pack_run(uint64_t *dst, int64_t words, int64_t start, const uint64_t *src,
                     int64_t stride, int count, int bits)
{
    if (64 % bits == 0 && start % bits == 0) {
        const int64_t first = start / bits; /* item slot of item 0 */
        switch (64 / bits) {
        case 1:
            pack_aligned(dst, words, first, src, stride, count, bits, 1);
            break;
        case 2:
            pack_aligned(dst, words, first, src, stride, count, bits, 2);
            break;
        case 4:
            pack_aligned(dst, words, first, src, stride, count, bits, 4);
            break;
        default:
            pack_aligned(dst, words, first, src, stride, count, bits, 64 / bits);
        }
        return;
    }
    int64_t wi = start >> 6;
    for (int64_t j = 0; j < wi; j++)
        dst[j] = 0;
    uint64_t cur = 0;
    int at = (int)(start & 63);
    for (int i = 0; i < count; i++) {
        uint64_t v = src[i * stride];
        cur |= v << at;
        if (at + bits >= 64) {
            dst[wi++] = cur;
            cur = at ? v >> (64 - at) : 0; /* the item's bits past the word */
        }
        at = (at + bits) & 63;
    }
    if (wi < words)
        dst[wi++] = cur;
    for (; wi < words; wi++)
        dst[wi] = 0;
}

#if defined(__x86_64__)
/* dense_weights for in_c dividing 64 and kw <= 8 on AVX-512: a kernel row's
 * kw tap words in one zmm; item q of every output word j (tap j*per + q,
 * per = 64 / in_c) comes to lane j by one permute, shifted by q*in_c and
 * OR-ed in: the words pack_run builds */
EBNN_TARGET_AVX512 static void dense_weights_avx512(const ebnn_conv_geom *g, const uint64_t *w,
                                                    uint64_t *wd)
{
    const int rw = dense_row_words(g), kw = g->kw, per = 64 / g->in_c;
    const __mmask8 in_m = (__mmask8)((1u << kw) - 1), out_m = (__mmask8)((1u << rw) - 1);
    __m512i idx[64];
    __mmask8 ok[64];
    for (int q = 0; q < per; q++) {
        int64_t lane[8];
        ok[q] = 0;
        for (int j = 0; j < 8; j++) {
            int tap = j * per + q;
            lane[j] = tap < kw ? tap : 0;
            ok[q] |= (__mmask8)((tap < kw) << j);
        }
        idx[q] = _mm512_loadu_si512(lane);
    }
    for (int64_t r = 0; r < (int64_t)g->out_c * g->kh; r++) {
        __m512i v = _mm512_maskz_loadu_epi64(in_m, w + r * kw), acc = _mm512_setzero_si512();
        for (int q = 0; q < per; q++)
            acc = _mm512_or_si512(acc, _mm512_slli_epi64(
                                           _mm512_maskz_permutexvar_epi64(ok[q], idx[q], v),
                                           (unsigned)(q * g->in_c)));
        _mm512_mask_storeu_epi64(wd + r * rw, out_m, acc);
    }
}
#endif

/* dense weights: wd[f][ky] = the kw taps of row ky, tap kx at bit kx*in_c */
static void dense_weights(const ebnn_conv_geom *g, const uint64_t *w, uint64_t *wd)
{
    int rw = dense_row_words(g);
#if defined(__x86_64__)
    if (ebnn_isa_get() == EBNN_ISA_AVX512 && 64 % g->in_c == 0 && g->kw <= 8) {
        dense_weights_avx512(g, w, wd);
        return;
    }
#endif
    for (int64_t r = 0; r < (int64_t)g->out_c * g->kh; r++)
        pack_run(wd + r * rw, rw, 0, w + r * g->kw, 1, g->kw, g->in_c);
}

/* row streams of the input rows that output pixels [p0, p1) read */
static void dense_streams(const ebnn_conv_geom *g, const uint64_t *in, int64_t p0,
                          int64_t p1, uint64_t *streams)
{
    int64_t sw = stream_words(g), last_n = -1;
    int done = 0; /* rows [0, done) of image last_n are built */
    for (int64_t q = p0 / g->out_w; q <= (p1 - 1) / g->out_w; q++) {
        int64_t n = q / g->out_h;
        int oy = (int)(q % g->out_h), iy0 = oy * g->stride_h - g->pad_top;
        if (n != last_n)
            done = 0;
        last_n = n;
        int lo = iy0 > done ? iy0 : done, hi = imin(iy0 + g->kh, g->in_h);
        for (int iy = lo < 0 ? 0 : lo; iy < hi; iy++) {
            int64_t r = n * g->in_h + iy;
            pack_run(streams + r * sw, sw, (int64_t)g->pad_left * g->in_c,
                     in + r * g->in_w, 1, g->in_w, g->in_c);
        }
        done = hi > done ? hi : done;
    }
}

/* gather: pixel row = kh fields of kw*in_c bits (RW words each); out-of-
 * image kernel rows are zero words */
static inline __attribute__((always_inline)) void
dense_im2col_body(const ebnn_conv_geom *g, const uint64_t *streams, int64_t p0, int np,
                  uint64_t *cols, const int RW)
{
    int64_t sw = stream_words(g);
    int fbits = g->kw * g->in_c, rem = fbits - 64 * (RW - 1);
    uint64_t last = rem == 64 ? ~0ull : (1ull << rem) - 1;
    int ox = (int)(p0 % g->out_w), oy = (int)((p0 / g->out_w) % g->out_h);
    int64_t n = p0 / ((int64_t)g->out_w * g->out_h);
    uint64_t *dst = cols;
    for (int i = 0; i < np; i++) {
        int iy0 = oy * g->stride_h - g->pad_top;
        int64_t b = (int64_t)ox * g->stride_w * g->in_c;
        int sh = (int)(b & 63);
        for (int ky = 0; ky < g->kh; ky++, dst += RW) {
            int iy = iy0 + ky;
            if (iy < 0 || iy >= g->in_h) {
                for (int j = 0; j < RW; j++)
                    dst[j] = 0;
                continue;
            }
            const uint64_t *src = streams + (n * g->in_h + iy) * sw + (b >> 6);
            for (int j = 0; j < RW; j++) {
                /* (hi << 1) << (63 - sh): no shift by 64 when sh == 0 */
                uint64_t v = (src[j] >> sh) | ((src[j + 1] << 1) << (63 - sh));
                dst[j] = j == RW - 1 ? v & last : v;
            }
        }
        if (++ox == g->out_w) {
            ox = 0;
            if (++oy == g->out_h) {
                oy = 0;
                n++;
            }
        }
    }
}

#if defined(__x86_64__)
/* the same gather with a kernel row's RW <= 8 words as one zmm: two masked
 * loads (words j and j + 1 of the stream), the funnel shift, the mask of
 * the last word, one masked store; the same words as dense_im2col_body */
EBNN_TARGET_AVX512 static void dense_im2col_avx512(const ebnn_conv_geom *g,
                                                   const uint64_t *streams, int64_t p0,
                                                   int np, uint64_t *cols)
{
    const int RW = dense_row_words(g);
    const int64_t sw = stream_words(g);
    int fbits = g->kw * g->in_c, rem = fbits - 64 * (RW - 1);
    uint64_t last = rem == 64 ? ~0ull : (1ull << rem) - 1;
    const __mmask8 m = (__mmask8)((1u << RW) - 1);
    const __m512i keep = _mm512_mask_set1_epi64(_mm512_set1_epi64(-1), (__mmask8)(1u << (RW - 1)),
                                                 (long long)last);
    const __m512i zero = _mm512_setzero_si512();
    int ox = (int)(p0 % g->out_w), oy = (int)((p0 / g->out_w) % g->out_h);
    int64_t n = p0 / ((int64_t)g->out_w * g->out_h);
    uint64_t *dst = cols;
    for (int i = 0; i < np; i++) {
        int iy0 = oy * g->stride_h - g->pad_top;
        int64_t b = (int64_t)ox * g->stride_w * g->in_c;
        const __m128i sh = _mm_cvtsi32_si128((int)(b & 63)), up = _mm_cvtsi32_si128(63 - (int)(b & 63));
        for (int ky = 0; ky < g->kh; ky++, dst += RW) {
            int iy = iy0 + ky;
            if (iy < 0 || iy >= g->in_h) {
                _mm512_mask_storeu_epi64(dst, m, zero);
                continue;
            }
            const uint64_t *src = streams + (n * g->in_h + iy) * sw + (b >> 6);
            __m512i lo = _mm512_maskz_loadu_epi64(m, src), hi = _mm512_maskz_loadu_epi64(m, src + 1);
            /* (hi << 1) << (63 - sh): no shift by 64 when sh == 0 */
            __m512i v = _mm512_or_si512(_mm512_srl_epi64(lo, sh),
                                        _mm512_sll_epi64(_mm512_slli_epi64(hi, 1), up));
            _mm512_mask_storeu_epi64(dst, m, _mm512_and_si512(v, keep));
        }
        if (++ox == g->out_w) {
            ox = 0;
            if (++oy == g->out_h) {
                oy = 0;
                n++;
            }
        }
    }
}
#endif

static void dense_im2col(const ebnn_conv_geom *g, const uint64_t *streams, int64_t p0,
                         int np, uint64_t *cols)
{
#if defined(__x86_64__)
    if (ebnn_isa_get() == EBNN_ISA_AVX512 && dense_row_words(g) <= 8) {
        dense_im2col_avx512(g, streams, p0, np, cols);
        return;
    }
#endif
    switch (dense_row_words(g)) {
    case 1:
        dense_im2col_body(g, streams, p0, np, cols, 1);
        break;
    case 2:
        dense_im2col_body(g, streams, p0, np, cols, 2);
        break;
    case 3:
        dense_im2col_body(g, streams, p0, np, cols, 3);
        break;
    default:
        dense_im2col_body(g, streams, p0, np, cols, dense_row_words(g));
    }
}


/* band rows [ya, yb) of image n (see band_mode); streams: the dense row
 * streams, or NULL to copy the taps' words from the input */
static void build_band(const ebnn_conv_geom *g, const uint64_t *in, const uint64_t *streams,
                       int64_t n, int ya, int yb, uint64_t *band)
{
    const int R = band_row_words(g), bh = band_h(g), words = ebnn_words(g->in_c);
    const int64_t sw = stream_words(g);
    int fbits = g->kw * g->in_c, rem = fbits - 64 * (R - 1);
    uint64_t last = rem >= 64 ? ~0ull : (1ull << rem) - 1;
    for (int yp = ya; yp < yb; yp++) {
        int iy = yp - g->pad_top;
        int inside = iy >= 0 && iy < g->in_h;
        for (int ox = 0; ox < g->out_w; ox++) {
            uint64_t *dst = band + ((int64_t)ox * bh + yp) * R;
            if (!inside) {
                for (int j = 0; j < R; j++)
                    dst[j] = 0;
            } else if (streams) {
                int64_t b = (int64_t)ox * g->stride_w * g->in_c;
                int sh = (int)(b & 63);
                const uint64_t *src = streams + (n * g->in_h + iy) * sw + (b >> 6);
                for (int j = 0; j < R; j++) {
                    /* (hi << 1) << (63 - sh): no shift by 64 when sh == 0 */
                    uint64_t v = (src[j] >> sh) | ((src[j + 1] << 1) << (63 - sh));
                    dst[j] = j == R - 1 ? v & last : v;
                }
            } else {
                const uint64_t *row = in + (n * g->in_h + iy) * g->in_w * words;
                int ix0 = ox * g->stride_w - g->pad_left;
                for (int kx = 0; kx < g->kw; kx++) {
                    int ix = ix0 + kx;
                    for (int j = 0; j < words; j++)
                        dst[kx * words + j] = ix >= 0 && ix < g->in_w ? row[(int64_t)ix * words + j] : 0;
                }
            }
        }
    }
}

/* base vectors (zero padding) of pixels [p, p+np); 1 if all are cached
 * (else the caller looks them up per use) */
static int fill_bases(const ebnn_conv_geom *g, pad_fix *pf, int64_t p, int np,
                      const int32_t **bases)
{
    pf->evicted = 0;
    int ox = (int)(p % g->out_w), oy = (int)((p / g->out_w) % g->out_h);
    for (int i = 0; i < np; i++) {
        int iy0 = oy * g->stride_h - g->pad_top, ix0 = ox * g->stride_w - g->pad_left;
        int inside = iy0 >= 0 && iy0 + g->kh <= g->in_h && ix0 >= 0 && ix0 + g->kw <= g->in_w;
        bases[i] = inside ? NULL : pad_fix_base(pf, oy, ox);
        if (++ox == g->out_w) {
            ox = 0;
            oy = oy + 1 == g->out_h ? 0 : oy + 1;
        }
    }
    return !pf->evicted;
}

/* GEMM over rows a[0..np) (pixels p0..) and filters [fa, fb), then the
 * stage; int32 output is produced in place in the output array. */
static void rows_times_filters(const ebnn_conv_geom *g, const uint64_t *a,
                               int64_t lda, int64_t p0, int np,
                               const int32_t *const *bases, pad_fix *pf,
                               const uint64_t *w, int fa, int fb, int32_t *acc,
                               const ebnn_output *o, ebnn_bgemm_fn gemm)
{
    int64_t kwords = conv_kwords(g);
    int32_t kreal = g->kh * g->kw * g->in_c;
    int direct_out = o->kind == EBNN_OUT_INT32;
    for (int f0 = fa; f0 < fb; f0 += FB) {
        int nf = imin(FB, fb - f0);
        int32_t *c = direct_out ? (int32_t *)o->out + p0 * g->out_c + f0 : acc;
        int64_t ldc = direct_out ? g->out_c : nf;
        gemm(np, nf, (int)kwords, a, lda, w + (int64_t)f0 * kwords, kwords, c, ldc);
        if (!pf) {
            ebnn_output_apply_pop_rows(o, g->out_c, p0, np, f0, nf, c, ldc, kreal, bases);
            continue;
        }
        for (int i = 0; i < np; i++) { /* rare: more border patterns than the cache holds */
            int64_t p = p0 + i;
            const int32_t *base = pad_fix_base(pf, (int)((p / g->out_w) % g->out_h), (int)(p % g->out_w));
            ebnn_output_apply_pop_rows(o, g->out_c, p, 1, f0, nf, c + i * ldc, ldc, kreal, &base);
        }
    }
}

/* Many pixels: split pixels (no two threads touch one output word).
 * Few pixels: split filters on multiples of 64. */
static void share(int64_t pixels, int out_c, int tid, int nthreads,
                  int64_t *p0, int64_t *p1, int *f0, int *f1)
{
    if (pixels >= 8 * (int64_t)nthreads || out_c <= 64) {
        ebnn_split(pixels, tid, nthreads, p0, p1);
        *f0 = 0;
        *f1 = out_c;
    } else {
        int64_t b, e;
        ebnn_split((out_c + 63) / 64, tid, nthreads, &b, &e);
        *p0 = 0;
        *p1 = pixels;
        *f0 = (int)(b * 64);
        *f1 = imin((int)(e * 64), out_c);
    }
}

void ebnn_bconv2d(const ebnn_conv_geom *g, const uint64_t *in,
                  const uint64_t *w, const ebnn_output *o, void *scratch,
                  int tid, int nthreads)
{
    int64_t pixels = (int64_t)g->n * g->out_h * g->out_w, p0, p1;
    int fa, fb;
    share(pixels, g->out_c, tid, nthreads, &p0, &p1, &fa, &fb);
    if (p1 <= p0 || fb <= fa)
        return;
    int64_t kwords = conv_kwords(g);
    int pb = pixel_block(kwords, pixels), direct = direct_rows(g);
    char *s = (char *)scratch + ebnn_bconv2d_scratch_bytes(g) * tid;
    int32_t *acc = (int32_t *)s;
    s += round64((size_t)pb * imin(g->out_c, FB) * sizeof(int32_t));
    uint64_t *cols = (uint64_t *)s;
    int band = band_mode(g);
    if (band)
        s += round64((size_t)band_words(g) * sizeof(uint64_t));
    else if (!direct)
        s += round64((size_t)pb * kwords * sizeof(uint64_t));
    ebnn_bgemm_fn gemm = ebnn_bgemm_select();
    conv_helpers h = helpers_select();
    pad_fix pf;
    const int32_t **bases = NULL;
    if (g->pad_mode == EBNN_PAD_ZERO) {
        bases = (const int32_t **)s;
        s += round64((size_t)pb * sizeof(*bases));
        pad_fix_init(&pf, g, w, s);
        s += pad_fix_bytes(g);
    }
    const uint64_t *wg = w; /* the weights the GEMM reads */
    uint64_t *streams = NULL;
    if (dense_taps(g)) {
        streams = (uint64_t *)s;
        s += round64((size_t)g->n * g->in_h * stream_words(g) * sizeof(uint64_t));
        dense_weights(g, w, (uint64_t *)s);
        wg = (const uint64_t *)s;
        dense_streams(g, in, p0, p1, streams);
    }
    if (band) {
        const int64_t hw = (int64_t)g->out_h * g->out_w, lda = (int64_t)band_h(g) * band_row_words(g);
        int64_t built = -1;
        for (int64_t p = p0; p < p1;) {
            int64_t n = p / hw;
            int oy = (int)((p / g->out_w) % g->out_h), ox = (int)(p % g->out_w);
            int np = imin(imin((int)(p1 - p < g->out_w ? p1 - p : g->out_w), g->out_w - ox), pb);
            if (n != built) { /* the band rows this thread's pixels of image n read */
                int64_t last = (p1 < (n + 1) * hw ? p1 : (n + 1) * hw) - 1;
                int oy1 = (int)((last / g->out_w) % g->out_h);
                build_band(g, in, streams, n, oy * g->stride_h, oy1 * g->stride_h + g->kh, cols);
                built = n;
            }
            const uint64_t *a = cols + (int64_t)ox * lda + (int64_t)oy * g->stride_h * band_row_words(g);
            int cached = bases ? fill_bases(g, &pf, p, np, bases) : 0;
            rows_times_filters(g, a, lda, p, np, cached ? bases : NULL,
                               bases && !cached ? &pf : NULL, wg, fa, fb, acc, o, gemm);
            p += np;
        }
        return;
    }
    for (int64_t p = p0; p < p1; p += pb) {
        int np = (int)(p1 - p < pb ? p1 - p : pb);
        if (direct) {
            rows_times_filters(g, in + p * kwords, kwords, p, np, NULL, NULL, w,
                               fa, fb, acc, o, gemm);
        } else {
            if (streams)
                dense_im2col(g, streams, p, np, cols);
            else
                h.im2col(g, in, p, np, cols);
            /* base vectors looked up once per block, unless the block has
             * more border patterns than the cache holds: then per use */
            int cached = bases ? fill_bases(g, &pf, p, np, bases) : 0;
            rows_times_filters(g, cols, kwords, p, np, cached ? bases : NULL,
                               bases && !cached ? &pf : NULL, wg, fa, fb, acc, o, gemm);
        }
    }
}

/* ------------------------------------------------------------ dense --- */
size_t ebnn_bdense_scratch_bytes(int batch, int in_c, int out_c)
{
    (void)in_c;
    return round64((size_t)imin(batch, 120) * imin(out_c, FB) * sizeof(int32_t));
}

void ebnn_bdense(int batch, int in_c, int out_c, const uint64_t *in,
                 const uint64_t *w, const ebnn_output *o, void *scratch,
                 int tid, int nthreads)
{
    /* the 1x1 conv of a batch x 1 x 1 image */
    ebnn_conv_geom g = {.n = batch, .in_h = 1, .in_w = 1, .in_c = in_c,
                        .out_c = out_c, .kh = 1, .kw = 1, .stride_h = 1,
                        .stride_w = 1, .out_h = 1, .out_w = 1,
                        .pad_mode = EBNN_PAD_VALID};
    int64_t p0, p1;
    int fa, fb, words = ebnn_words(in_c);
    share(batch, out_c, tid, nthreads, &p0, &p1, &fa, &fb);
    if (p1 <= p0 || fb <= fa)
        return;
    int32_t *acc = (int32_t *)((char *)scratch +
                               ebnn_bdense_scratch_bytes(batch, in_c, out_c) * tid);
    ebnn_bgemm_fn gemm = ebnn_bgemm_select();
    for (int64_t p = p0; p < p1; p += 120) {
        int np = (int)(p1 - p < 120 ? p1 - p : 120);
        rows_times_filters(&g, in + p * words, words, p, np, NULL, NULL, w, fa,
                           fb, acc, o, gemm);
    }
}

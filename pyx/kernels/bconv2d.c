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
 * (the sums are cached per border pattern: bconv2d_padfix.c; the gather is
 * bconv2d_im2col.c). */
#include <string.h>
#include "bconv2d.h"
#include "output_stage.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__ARM_NEON)
#include <arm_neon.h>
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

/* Clipped taps (zero padding, plain gather): a border pixel's GEMM row
 * holds only its in-image taps -- the box ky0..ky1 x kx0..kx1, kernel row
 * after kernel row -- and is multiplied with the weights restricted to the
 * same kernel columns (a repacked copy per clipped column range), so its
 * dot is exactly kept_taps * in_c - 2 popcount: no border corrections, and
 * no popcount work on padding. Pixels are grouped by box (class); each
 * class is one GEMM over rows gathered consecutively, and the output stage
 * runs per run of consecutive pixels of one class. */
#define MAX_XR 3 /* column ranges: the full one and two clipped (3x3 pad 1) */
#define MAX_CLASSES (MAX_XR * MAX_XR)

/* the distinct clipped ranges of kernel rows / columns over the output
 * rows / columns (at most MAX_XR, else -1), full range first */
static int ranges(int out, int stride, int pad, int k, int n, int r[MAX_XR][2])
{
    int cnt = 1;
    r[0][0] = 0;
    r[0][1] = k;
    for (int o = 0; o < out; o++) {
        int a, b, i = 0;
        ebnn_clip_taps(o * stride - pad, k, n, &a, &b);
        while (i < cnt && (r[i][0] != a || r[i][1] != b))
            i++;
        if (i == cnt) {
            if (cnt == MAX_XR)
                return -1;
            r[cnt][0] = a;
            r[cnt++][1] = b;
        }
    }
    return cnt;
}

static int clip_fits(const ebnn_conv_geom *g)
{
    int r[MAX_XR][2];
    return g->pad_mode == EBNN_PAD_ZERO && !dense_taps(g) && !direct_rows(g) &&
           !band_mode(g) && ranges(g->out_w, g->stride_w, g->pad_left, g->kw, g->in_w, r) > 0 &&
           ranges(g->out_h, g->stride_h, g->pad_top, g->kh, g->in_h, r) > 0;
}

size_t ebnn_bconv2d_scratch_bytes(const ebnn_conv_geom *g)
{
    int64_t kw = conv_kwords(g);
    int pb = pixel_block(kw, (int64_t)g->n * g->out_h * g->out_w);
    size_t s = ebnn_round64((size_t)pb * ebnn_imin(g->out_c, FB) * sizeof(int32_t));
    if (band_mode(g))
        s += ebnn_round64((size_t)band_words(g) * sizeof(uint64_t));
    else if (!direct_rows(g))
        s += ebnn_round64((size_t)pb * kw * sizeof(uint64_t));
    if (g->pad_mode == EBNN_PAD_ZERO)
        s += ebnn_round64((size_t)pb * sizeof(int32_t *)) + ebnn_pad_fix_bytes(g);
    if (dense_taps(g))
        s += ebnn_round64((size_t)g->n * g->in_h * stream_words(g) * sizeof(uint64_t)) +
             ebnn_round64((size_t)g->out_c * kw * sizeof(uint64_t));
    if (clip_fits(g))
        s += (MAX_XR - 1) * ebnn_round64((size_t)g->out_c * kw * sizeof(uint64_t));
#if defined(__ARM_NEON)
    if (ebnn_bconv2d_taps_fits(g) && ebnn_bconv2d_taps_scratch_bytes(g) > s)
        s = ebnn_bconv2d_taps_scratch_bytes(g); /* either path may run (ISA set later) */
#endif
    return ebnn_round64(s);
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
        int lo = iy0 > done ? iy0 : done, hi = ebnn_imin(iy0 + g->kh, g->in_h);
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
dense_im2col_body(const ebnn_conv_geom *gp, const uint64_t *streams, int64_t p0, int np,
                  uint64_t *cols, const int RW)
{
    const ebnn_conv_geom gl = *gp, *g = &gl; /* see build_band_body */
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
static inline __attribute__((always_inline)) void
build_band_body(const ebnn_conv_geom *gp, const uint64_t *in, const uint64_t *streams,
                int64_t n, int ya, int yb, uint64_t *band, const int R)
{
    /* a local copy: the word stores may alias *gp (no strict aliasing), so
     * its fields would be reloaded after every store */
    const ebnn_conv_geom gl = *gp, *g = &gl;
    const int bh = band_h(g), words = ebnn_words(g->in_c);
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

/* row words 1 and 2 (16 / 32 channels, 3x3) as constants: the stream
 * extraction is then a few shifts per entry */
static void build_band(const ebnn_conv_geom *g, const uint64_t *in, const uint64_t *streams,
                       int64_t n, int ya, int yb, uint64_t *band)
{
    const int R = band_row_words(g);
    if (streams && R == 1)
        build_band_body(g, in, streams, n, ya, yb, band, 1);
    else if (streams && R == 2)
        build_band_body(g, in, streams, n, ya, yb, band, 2);
    else
        build_band_body(g, in, streams, n, ya, yb, band, R);
}

/* base vectors (zero padding) of pixels [p, p+np); 1 if all are cached
 * (else the caller looks them up per use) */
static int fill_bases(const ebnn_conv_geom *g, ebnn_pad_fix *pf, int64_t p, int np,
                      const int32_t **bases)
{
    pf->evicted = 0;
    int ox = (int)(p % g->out_w), oy = (int)((p / g->out_w) % g->out_h);
    /* output columns [xa, xb) have every kernel column inside the image */
    int xa = (g->pad_left + g->stride_w - 1) / g->stride_w;
    int xb = g->in_w - g->kw + g->pad_left < 0 ? 0 : (g->in_w - g->kw + g->pad_left) / g->stride_w + 1;
    xb = ebnn_imin(xb, g->out_w);
    for (int i = 0; i < np;) { /* one output row's segment at a time */
        int seg = ebnn_imin(np - i, g->out_w - ox), iy0 = oy * g->stride_h - g->pad_top;
        int a = xa, b = xb; /* inside columns of this row */
        if (iy0 < 0 || iy0 + g->kh > g->in_h)
            a = b = 0;
        for (int j = 0; j < seg; j++) {
            int x = ox + j;
            if (x >= a && x < b) { /* the inside run: no lookups */
                int e = ebnn_imin(b, ox + seg);
                for (; x < e; x++, j++)
                    bases[i + j] = NULL;
                j--;
                continue;
            }
            bases[i + j] = ebnn_pad_fix_base(pf, oy, x);
        }
        i += seg;
        ox += seg;
        if (ox == g->out_w) {
            ox = 0;
            oy = oy + 1 == g->out_h ? 0 : oy + 1;
        }
    }
    return !pf->evicted;
}

/* the GEMM of rows a[0..np) (pixels p0..) x nf filters from w; with skip,
 * one call per run of pixels with the same in-image kernel rows, over
 * those rows' words only */
static void gemm_rows(const ebnn_conv_geom *g, int skip, const uint64_t *a, int64_t lda,
                      int64_t p0, int np, const uint64_t *w, int nf, int64_t kwords,
                      int32_t *c, int64_t ldc, ebnn_bgemm_fn gemm)
{
    if (!skip) {
        gemm(np, nf, (int)kwords, a, lda, w, kwords, c, ldc);
        return;
    }
    const int64_t rw = kwords / g->kh;
    for (int i = 0; i < np;) {
        int64_t q = (p0 + i) / g->out_w;
        int ky0, ky1, n = ebnn_imin(np - i, g->out_w - (int)((p0 + i) % g->out_w));
        ebnn_kept_rows(g, (int)(q % g->out_h), &ky0, &ky1);
        /* following output rows with the same kernel rows join the run */
        for (int oy = (int)(q % g->out_h) + 1; i + n < np && oy < g->out_h; oy++) {
            int k0, k1;
            ebnn_kept_rows(g, oy, &k0, &k1);
            if (k0 != ky0 || k1 != ky1)
                break;
            n = ebnn_imin(np - i, n + g->out_w);
        }
        gemm(n, nf, (int)((ky1 - ky0) * rw), a + i * lda + ky0 * rw, lda, w + ky0 * rw,
             kwords, c + i * ldc, ldc);
        i += n;
    }
}

/* GEMM over rows a[0..np) (pixels p0..) and filters [fa, fb), then the
 * stage; int32 output is produced in place in the output array. */
static void rows_times_filters(const ebnn_conv_geom *g, const uint64_t *a,
                               int64_t lda, int64_t p0, int np,
                               const int32_t *const *bases, ebnn_pad_fix *pf,
                               const uint64_t *w, int fa, int fb, int32_t *acc,
                               const ebnn_output *o, ebnn_bgemm_fn gemm, int skip)
{
    int64_t kwords = conv_kwords(g);
    int32_t kreal = g->kh * g->kw * g->in_c;
    int direct_out = o->kind == EBNN_OUT_INT32;
    for (int f0 = fa; f0 < fb; f0 += FB) {
        int nf = ebnn_imin(FB, fb - f0);
        int32_t *c = direct_out ? (int32_t *)o->out + p0 * g->out_c + f0 : acc;
        int64_t ldc = direct_out ? g->out_c : nf;
        gemm_rows(g, skip, a, lda, p0, np, w + (int64_t)f0 * kwords, nf, kwords, c, ldc, gemm);
        if (!pf) {
            ebnn_output_apply_pop_rows(o, g->out_c, p0, np, f0, nf, c, ldc, kreal, bases);
            continue;
        }
        for (int i = 0; i < np; i++) { /* rare: more border patterns than the cache holds */
            int64_t p = p0 + i;
            const int32_t *base = ebnn_pad_fix_base(pf, (int)((p / g->out_w) % g->out_h), (int)(p % g->out_w));
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
        *f1 = ebnn_imin((int)(e * 64), out_c);
    }
}

typedef struct {
    int nx;                   /* column ranges                               */
    int x[MAX_XR][2];         /* kx0, kx1                                    */
    const uint64_t *w[MAX_XR]; /* weights [out_c][kh][kx1-kx0][words]        */
} clip_weights;

/* column-restricted weight copies of filters [fa, fb) in s */
static void clip_weights_init(const ebnn_conv_geom *g, const uint64_t *w, int fa, int fb,
                              uint64_t *s, clip_weights *cw)
{
    const int words = ebnn_words(g->in_c);
    const int64_t kwords = conv_kwords(g);
    cw->nx = ranges(g->out_w, g->stride_w, g->pad_left, g->kw, g->in_w, cw->x);
    cw->w[0] = w;
    for (int v = 1; v < cw->nx; v++, s += ebnn_round64((size_t)g->out_c * kwords * 8) / 8) {
        int nx = cw->x[v][1] - cw->x[v][0];
        const int64_t run = (int64_t)nx * words;
        for (int64_t r = (int64_t)fa * g->kh; r < (int64_t)fb * g->kh; r++)
            memcpy(s + r * run, w + (r * g->kw + cw->x[v][0]) * words, (size_t)run * 8);
        cw->w[v] = s;
    }
}

static void clip_block(const ebnn_conv_geom *gp, const uint64_t *in, int64_t p0, int np,
                       const clip_weights *cw, uint64_t *cols, int32_t *acc, int fa, int fb,
                       const ebnn_output *o, ebnn_bgemm_fn gemm)
{
    const ebnn_conv_geom gl = *gp, *g = &gl; /* see build_band_body */
    const int words = ebnn_words(g->in_c);
    const int64_t kwords = conv_kwords(g);
    int key[MAX_CLASSES][3], count[MAX_CLASSES] = {0}, start[MAX_CLASSES], ncls = 0;
    uint8_t cls[1024]; /* np <= 1024 (pixel_block) */
    int16_t pos[1024];
    int ox = (int)(p0 % g->out_w), oy = (int)((p0 / g->out_w) % g->out_h);
    int64_t n = p0 / ((int64_t)g->out_w * g->out_h);
    /* classes, and each pixel's row within its class */
    for (int i = 0; i < np; i++) {
        int ky0, ky1, kx0, kx1, xi = 0, c = 0;
        ebnn_clip_taps(oy * g->stride_h - g->pad_top, g->kh, g->in_h, &ky0, &ky1);
        ebnn_clip_taps(ox * g->stride_w - g->pad_left, g->kw, g->in_w, &kx0, &kx1);
        while (cw->x[xi][0] != kx0 || cw->x[xi][1] != kx1)
            xi++;
        while (c < ncls && (key[c][0] != ky0 || key[c][1] != ky1 || key[c][2] != xi))
            c++;
        if (c == ncls) {
            key[c][0] = ky0;
            key[c][1] = ky1;
            key[c][2] = xi;
            ncls++;
        }
        cls[i] = (uint8_t)c;
        pos[i] = (int16_t)count[c]++;
        if (++ox == g->out_w) {
            ox = 0;
            if (++oy == g->out_h) {
                oy = 0;
                n++;
            }
        }
    }
    for (int c = 0, at = 0; c < ncls; c++) {
        start[c] = at;
        at += count[c];
    }
    /* gather: kept kernel rows, each the kept columns' words (contiguous) */
    ox = (int)(p0 % g->out_w);
    oy = (int)((p0 / g->out_w) % g->out_h);
    n = p0 / ((int64_t)g->out_w * g->out_h);
    for (int i = 0; i < np; i++) {
        const int *k = key[cls[i]];
        int kx0 = cw->x[k[2]][0], run = (cw->x[k[2]][1] - kx0) * words;
        int iy0 = oy * g->stride_h - g->pad_top, ix = ox * g->stride_w - g->pad_left + kx0;
        uint64_t *dst = cols + (int64_t)(start[cls[i]] + pos[i]) * kwords;
        for (int ky = k[0]; ky < k[1]; ky++, dst += run) {
            const uint64_t *src = in + ((n * g->in_h + iy0 + ky) * g->in_w + ix) * words;
#if defined(__aarch64__)
            COPY_NEON(dst, src, run);
#else
            COPY_PLAIN(dst, src, run);
#endif
        }
        if (++ox == g->out_w) {
            ox = 0;
            if (++oy == g->out_h) {
                oy = 0;
                n++;
            }
        }
    }
    for (int f0 = fa; f0 < fb; f0 += FB) {
        int nf = ebnn_imin(FB, fb - f0);
        for (int c = 0; c < ncls; c++) {
            int nx = cw->x[key[c][2]][1] - cw->x[key[c][2]][0];
            int64_t rw = (int64_t)nx * words, ldb = g->kh * rw;
            gemm(count[c], nf, (int)((key[c][1] - key[c][0]) * rw), cols + start[c] * kwords,
                 kwords, cw->w[key[c][2]] + f0 * ldb + key[c][0] * rw, ldb,
                 acc + (int64_t)start[c] * nf, nf);
        }
        /* the stage per run of consecutive pixels of one class */
        for (int i = 0; i < np;) {
            int c = cls[i], e = i + 1;
            while (e < np && cls[e] == c)
                e++;
            int nx = cw->x[key[c][2]][1] - cw->x[key[c][2]][0];
            int32_t kreal = (key[c][1] - key[c][0]) * nx * g->in_c;
            ebnn_output_apply_pop_rows(o, g->out_c, p0 + i, e - i, f0, nf,
                                       acc + (int64_t)(start[c] + pos[i]) * nf, nf, kreal,
                                       NULL);
            i = e;
        }
    }
}

/* the clipped-tap path runs where the GEMM is the portable or NEON one
 * (the x86 GEMMs repack their filters per call, and the ref ISA stays the
 * plain reference) */
static int clip_isa(void)
{
    return ebnn_isa_get() == EBNN_ISA_NEON || ebnn_isa_get() == EBNN_ISA_GENERIC;
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
    char *s = (char *)scratch + ebnn_bconv2d_scratch_bytes(g) * tid;
#if defined(__ARM_NEON)
    /* 3x3 convs over 16 / 32 / 64 channels: the tap-lane direct kernel
     * (bconv2d_taps_neon.c) has no gathers and no half-filled GEMM steps;
     * measured cheaper for these shapes (docs/ARM.md section 8) */
    if (ebnn_isa_get() == EBNN_ISA_NEON && ebnn_bconv2d_taps_fits(g)) {
        ebnn_bconv2d_taps_neon(g, in, w, o, s, p0, p1, fa, fb);
        return;
    }
#endif
    int64_t kwords = conv_kwords(g);
    int pb = pixel_block(kwords, pixels), direct = direct_rows(g);
    int32_t *acc = (int32_t *)s;
    s += ebnn_round64((size_t)pb * ebnn_imin(g->out_c, FB) * sizeof(int32_t));
    uint64_t *cols = (uint64_t *)s;
    int band = band_mode(g);
    if (band)
        s += ebnn_round64((size_t)band_words(g) * sizeof(uint64_t));
    else if (!direct)
        s += ebnn_round64((size_t)pb * kwords * sizeof(uint64_t));
    ebnn_bgemm_fn gemm = ebnn_bgemm_select();
    if (clip_fits(g) && clip_isa()) {
        clip_weights cw;
        uint64_t *vs = (uint64_t *)(s + ebnn_round64((size_t)pb * sizeof(int32_t *)) + ebnn_pad_fix_bytes(g));
        clip_weights_init(g, w, fa, fb, vs, &cw);
        for (int64_t p = p0; p < p1; p += pb)
            clip_block(g, in, p, (int)(p1 - p < pb ? p1 - p : pb), &cw, cols, acc, fa, fb, o,
                       gemm);
        return;
    }
    ebnn_im2col_fn im2col = ebnn_im2col_select();
    ebnn_pad_fix pf;
    const int32_t **bases = NULL;
    int skip = 0; /* see ebnn_kept_rows */
    if (g->pad_mode == EBNN_PAD_ZERO) {
        bases = (const int32_t **)s;
        s += ebnn_round64((size_t)pb * sizeof(*bases));
        ebnn_pad_fix_init(&pf, g, w, s);
        s += ebnn_pad_fix_bytes(g);
        pf.skip_rows = skip = !direct;
    }
    const uint64_t *wg = w; /* the weights the GEMM reads */
    uint64_t *streams = NULL;
    if (dense_taps(g)) {
        streams = (uint64_t *)s;
        s += ebnn_round64((size_t)g->n * g->in_h * stream_words(g) * sizeof(uint64_t));
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
            int np = ebnn_imin(ebnn_imin((int)(p1 - p < g->out_w ? p1 - p : g->out_w), g->out_w - ox), pb);
            if (n != built) { /* the band rows this thread's pixels of image n read */
                int64_t last = (p1 < (n + 1) * hw ? p1 : (n + 1) * hw) - 1;
                int oy1 = (int)((last / g->out_w) % g->out_h);
                build_band(g, in, streams, n, oy * g->stride_h, oy1 * g->stride_h + g->kh, cols);
                built = n;
            }
            const uint64_t *a = cols + (int64_t)ox * lda + (int64_t)oy * g->stride_h * band_row_words(g);
            int cached = bases ? fill_bases(g, &pf, p, np, bases) : 0;
            rows_times_filters(g, a, lda, p, np, cached ? bases : NULL,
                               bases && !cached ? &pf : NULL, wg, fa, fb, acc, o, gemm,
                               skip);
            p += np;
        }
        return;
    }
    for (int64_t p = p0; p < p1; p += pb) {
        int np = (int)(p1 - p < pb ? p1 - p : pb);
        if (direct) {
            rows_times_filters(g, in + p * kwords, kwords, p, np, NULL, NULL, w,
                               fa, fb, acc, o, gemm, 0);
        } else {
            if (streams)
                dense_im2col(g, streams, p, np, cols);
            else
                im2col(g, in, p, np, cols);
            /* base vectors looked up once per block, unless the block has
             * more border patterns than the cache holds: then per use */
            int cached = bases ? fill_bases(g, &pf, p, np, bases) : 0;
            rows_times_filters(g, cols, kwords, p, np, cached ? bases : NULL,
                               bases && !cached ? &pf : NULL, wg, fa, fb, acc, o, gemm,
                               skip);
        }
    }
}

/* ------------------------------------------------------------ dense --- */
size_t ebnn_bdense_scratch_bytes(int batch, int in_c, int out_c)
{
    (void)in_c;
    return ebnn_round64((size_t)ebnn_imin(batch, 120) * ebnn_imin(out_c, FB) * sizeof(int32_t));
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
                           fb, acc, o, gemm, 0);
    }
}

/* Tap-lane direct binary 3x3 convolution for narrow inputs (NEON).
 *
 * For in_c = 16, 32 or 64 a packed input pixel is one word whose low in_c
 * bits are all real. Instead of gathering windows into GEMM rows (where a
 * 3x3x16 window fills 2.25 of 3 128-bit steps), the kernel works per tap:
 * the pixel's in_c-bit slice is broadcast to every lane (.8h / .4s / .2d),
 * XOR-ed with one vector holding that tap's bits of 128/in_c filters (lane
 * = filter), cnt.16b, and the byte counts are added over the 9 taps (a
 * byte never exceeds 9 * 8 = 72). Every 128-bit step is full and nothing is
 * gathered: input words are read where they lie. Per pixel the bytes of
 * each lane are then summed (uaddlp chain) into per-(pixel, filter)
 * popcounts, written where the GEMM path writes them, and the block goes
 * through the same output stage (dot = 9 in_c - 2 popcount).
 *
 * Padding: same_one / same_zero convs read a zero-padded copy of the input
 * rows they need (zero words = +1 values), so every window is whole and
 * every output row is one run of the inner loop. That is the same_one
 * semantics; for same_zero each tap outside the image counted
 * popcount(w_tap) where it should add nothing to the dot kept * in_c -
 * 2 popcount, so the border pixels' popcounts get + sum over their outside
 * taps of (in_c / 2 - popcount(w_tap)) (in_c even: exact), one cached
 * vector per border pattern. Valid convs read the input itself.
 *
 * Filters run in groups of G = 2 vectors (16 / 8 / 4 filters; weights
 * repacked per call from [out_c][3][3] words: tap-major, lanes = filters,
 * zero past out_c), output pixels 4 at a time. aarch64 runs the generated
 * assembly loops of bconv2d_taps_a64.h (gcc spills the intrinsics version),
 * armv7 the intrinsics loop below. */
#include "internal.h"

#if defined(__ARM_NEON)
#include <arm_neon.h>
#include <string.h>
#include "output_stage.h"
#if defined(__aarch64__)
#include "bconv2d_taps_a64.h"
#endif

#define AI static inline __attribute__((always_inline))
/* an empty asm that "changes" v: the sums over taps stay in tap order (gcc
 * would reassociate them into a tree of partial sums, keeping many count
 * vectors live at once and spilling them) */
#define OPAQUE(v) __asm__("" : "+w"(v))
#define TAPS 9
#define PIX_BLOCK 256 /* pixels per output-stage call */
#define PATTERNS 16   /* same_zero border patterns (3x3: at most 15 clipped boxes) */

/* vectors per filter group (the assembly loops are generated for 2) and
 * pixels per block of the intrinsics loop (armv7 too: measured fewer
 * instructions than 2 there, without spills in its 16 q registers) */
#define G 2
#define PBLK 4

/* filters per group */
static int group_filters(int in_c) { return G * 128 / in_c; }

int ebnn_bconv2d_taps_fits(const ebnn_conv_geom *g)
{
    return (g->in_c == 16 || g->in_c == 32 || g->in_c == 64) && g->kh == 3 && g->kw == 3 &&
           g->stride_h == g->stride_w && (g->stride_w == 1 || g->stride_w == 2);
}

static int padded_filters(const ebnn_conv_geom *g)
{
    int fg = group_filters(g->in_c);
    return (g->out_c + fg - 1) / fg * fg;
}

/* the zero-padded image every window lies in: pw words per row, ph rows */
static int pad_w(const ebnn_conv_geom *g)
{
    return ebnn_imax((g->out_w - 1) * g->stride_w + 3, g->pad_left + g->in_w);
}

static int pad_h(const ebnn_conv_geom *g)
{
    return ebnn_imax((g->out_h - 1) * g->stride_h + 3, g->pad_top + g->in_h);
}

/* scratch: repacked weights | same_zero tap corrections | popcounts of
 * PIX_BLOCK pixels | one padded image */
static size_t wk_bytes(const ebnn_conv_geom *g)
{
    return ebnn_round64((size_t)padded_filters(g) * TAPS * g->in_c / 8);
}

static size_t cz_bytes(const ebnn_conv_geom *g) /* tap corrections + pattern sums */
{
    return ebnn_round64((size_t)padded_filters(g) * (TAPS + PATTERNS) * 4);
}

static size_t acc_bytes(const ebnn_conv_geom *g)
{
    return ebnn_round64((size_t)PIX_BLOCK * padded_filters(g) * 4);
}

size_t ebnn_bconv2d_taps_scratch_bytes(const ebnn_conv_geom *g)
{
    size_t pad = g->pad_mode == EBNN_PAD_VALID ? 0 : (size_t)pad_h(g) * pad_w(g) * 8;
    return wk_bytes(g) + cz_bytes(g) + acc_bytes(g) + ebnn_round64(pad);
}

/* the pixel's in_c bits in every lane */
AI uint8x16_t bcast(const uint64_t *p, const int L)
{
    if (L == 16)
        return vreinterpretq_u8_u16(vld1q_dup_u16((const uint16_t *)p));
    if (L == 32)
        return vreinterpretq_u8_u32(vld1q_dup_u32((const uint32_t *)p));
    return vreinterpretq_u8_u64(vld1q_dup_u64(p));
}

/* pairwise byte sums of a then b (addp .16b) */
AI uint8x16_t padd8(uint8x16_t a, uint8x16_t b)
{
#if defined(__aarch64__)
    return vpaddq_u8(a, b);
#else
    return vcombine_u8(vpadd_u8(vget_low_u8(a), vget_high_u8(a)),
                       vpadd_u8(vget_low_u8(b), vget_high_u8(b)));
#endif
}

/* the per-filter sums of the byte counts of a group's G vectors (lane
 * order) as int32 */
AI void store_pops(const uint8x16_t *a, int32_t *dst, const int L)
{
    if (L == 16) {
        for (int g = 0; g < G; g++) {
            uint16x8_t h = vpaddlq_u8(a[g]);
            vst1q_s32(dst + 8 * g, vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(h))));
            vst1q_s32(dst + 8 * g + 4, vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(h))));
        }
    } else if (L == 32) {
        for (int g = 0; g < G; g++)
            vst1q_s32(dst + 4 * g, vreinterpretq_s32_u32(vpaddlq_u16(vpaddlq_u8(a[g]))));
    } else { /* two filters per vector: byte pairs first (<= 144 each) */
        for (int g = 0; g < G; g += 2)
            vst1q_s32(dst + 2 * g,
                      vreinterpretq_s32_u32(vpaddlq_u16(vpaddlq_u8(padd8(a[g], a[g + 1])))));
    }
}

/* P pixels of one output row: src = tap (0, 0) of the first, S its stride
 * in words, rs the row stride; wk the group's weights [9][G] vectors, dst
 * its popcounts (row stride ldd). The intrinsics version of the assembly
 * loops (armv7, and single pixels on aarch64). */
AI void interior(const uint64_t *src, int64_t rs, const int S, const uint8_t *wk,
                 int32_t *dst, int64_t ldd, const int L, const int P)
{
    uint8x16_t acc[PBLK][G];
#pragma GCC unroll 9
    for (int t = 0; t < TAPS; t++) {
        const uint64_t *q = src + (t / 3) * rs + t % 3;
        uint8x16_t wv[G];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++)
            wv[g] = vld1q_u8(wk + (t * G + g) * 16);
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            uint8x16_t x = bcast(q + p * S, L);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                uint8x16_t c = vcntq_u8(veorq_u8(x, wv[g]));
                acc[p][g] = t ? vaddq_u8(acc[p][g], c) : c;
                OPAQUE(acc[p][g]);
            }
        }
        /* and no hoisting of later taps' loads above this one's work */
        __asm__ __volatile__("");
    }
#pragma GCC unroll 4
    for (int p = 0; p < P; p++)
        store_pops(acc[p], dst + p * ldd, L);
}

#if defined(__aarch64__)
AI void asm_run(const uint64_t *src, int64_t rs, const uint8_t *wk, int32_t *dst, int64_t ldd,
                int64_t n, const int L, const int S)
{
    if (L == 16)
        (S == 1 ? taps_a64_l16_s1 : taps_a64_l16_s2)(src, rs * 8, wk, dst, ldd * 4, n);
    else if (L == 32)
        (S == 1 ? taps_a64_l32_s1 : taps_a64_l32_s2)(src, rs * 8, wk, dst, ldd * 4, n);
    else
        (S == 1 ? taps_a64_l64_s1 : taps_a64_l64_s2)(src, rs * 8, wk, dst, ldd * 4, n);
}
#define RUN_P 4 /* TAPS_A64_P_L*_S*: every variant is generated with 4 */
#else
#define RUN_P PBLK
#endif

/* output columns [xs, xe) of one row: row = tap (0, 0) of column 0, dst
 * the popcounts of column xs */
AI void run_row(const uint64_t *row, int64_t rs, int xs, int xe, const uint8_t *wk,
                int32_t *dst, int64_t ldd, const int L, const int S)
{
    int n = xe - xs;
    const uint64_t *src = row + (int64_t)xs * S;
    if (n >= RUN_P) {
        int nb = n / RUN_P, tail = n % RUN_P;
#if defined(__aarch64__)
        asm_run(src, rs, wk, dst, ldd, nb, L, S);
        /* the tail as one more block ending at xe (recomputes a few pixels
         * of this row: same values) */
        if (tail)
            asm_run(src + (int64_t)(n - RUN_P) * S, rs, wk, dst + (int64_t)(n - RUN_P) * ldd,
                    ldd, 1, L, S);
#else
        for (int b = 0; b < nb; b++)
            interior(src + (int64_t)b * RUN_P * S, rs, S, wk, dst + (int64_t)b * RUN_P * ldd,
                     ldd, L, PBLK);
        if (tail)
            interior(src + (int64_t)(n - RUN_P) * S, rs, S, wk,
                     dst + (int64_t)(n - RUN_P) * ldd, ldd, L, PBLK);
#endif
        return;
    }
    for (int x = 0; x < n; x++)
        interior(src + (int64_t)x * S, rs, S, wk, dst + (int64_t)x * ldd, ldd, L, 1);
}

/* weights of filters [fa, fb) into groups: wk[grp][t][v] vectors, lane k
 * of vector v = filter fa + grp * FG + v * (128 / L) + k; zero past fb
 * (L constant: each lane is one load and one store) */
AI void repack(const uint64_t *w, int fa, int fb, uint8_t *wk, const int L)
{
    const int FG = G * 128 / L, per = 128 / L;
    int ngrp = (fb - fa + FG - 1) / FG;
    memset(wk, 0, (size_t)ngrp * TAPS * G * 16);
    for (int f = fa; f < fb; f++) {
        int r = f - fa, grp = r / FG, v = r % FG / per, k = r % per;
        uint8_t *base = wk + ((size_t)grp * TAPS * G + v) * 16 + (size_t)k * L / 8;
        const uint64_t *src = w + (int64_t)f * TAPS;
        for (int t = 0; t < TAPS; t++) {
            uint8_t *d = base + (size_t)t * G * 16;
            if (L == 16)
                *(uint16_t *)d = (uint16_t)src[t];
            else if (L == 32)
                *(uint32_t *)d = (uint32_t)src[t];
            else
                *(uint64_t *)d = src[t];
        }
    }
}

/* same_zero: cz[t][f] = in_c / 2 - popcount(w_f at tap t), added to the
 * popcount for each tap outside the image (the padded zero words counted
 * popcount(w); the clipped dot is kept * in_c - 2 popcount) */
AI void zero_corrections(const uint8_t *wk, int ngrp, int32_t *cz, int64_t ld, const int L)
{
    for (int grp = 0; grp < ngrp; grp++)
        for (int t = 0; t < TAPS; t++) {
            const uint8_t *wv = wk + ((size_t)grp * TAPS + t) * G * 16;
            uint8x16_t c[G];
            for (int v = 0; v < G; v++)
                c[v] = vcntq_u8(vld1q_u8(wv + 16 * v));
            int32_t *d = cz + t * ld + grp * G * 128 / L;
            store_pops(c, d, L);
            for (int i = 0; i < G * 128 / L; i += 4)
                vst1q_s32(d + i, vsubq_s32(vdupq_n_s32(L / 2), vld1q_s32(d + i)));
        }
}

/* padded rows [ra, rb) of image n into buf (row ra first) */
static void pad_rows(const ebnn_conv_geom *g, const uint64_t *in, int64_t n, int ra, int rb,
                     uint64_t *buf)
{
    const int pw = pad_w(g), right = pw - g->pad_left - g->in_w;
    for (int r = ra; r < rb; r++, buf += pw) {
        int iy = r - g->pad_top;
        if (iy < 0 || iy >= g->in_h) {
            memset(buf, 0, (size_t)pw * 8);
            continue;
        }
        memset(buf, 0, (size_t)g->pad_left * 8);
        memcpy(buf + g->pad_left, in + (n * g->in_h + iy) * g->in_w, (size_t)g->in_w * 8);
        memset(buf + g->pad_left + g->in_w, 0, (size_t)right * 8);
    }
}

/* popcounts of pixels [p, p + np) of one image (all groups) into dst;
 * rows = tap (0, 0) of output row r0's column 0 */
AI void pixels(const ebnn_conv_geom *g, const uint64_t *rows, int64_t rs, int r0, int64_t p,
               int np, const uint8_t *wk, int ngrp, int32_t *dst, int64_t ldd, const int L,
               const int S)
{
    const int FG = G * 128 / L;
    for (int grp = 0; grp < ngrp; grp++) {
        const uint8_t *wg = wk + (size_t)grp * TAPS * G * 16;
        int ox = (int)(p % g->out_w), oy = (int)(p / g->out_w % g->out_h);
        for (int i = 0; i < np;) {
            int seg = ebnn_imin(np - i, g->out_w - ox);
            run_row(rows + (int64_t)(oy - r0) * S * rs, rs, ox, ox + seg, wg,
                    dst + (int64_t)i * ldd + grp * FG, ldd, L, S);
            i += seg;
            ox = 0;
            oy++;
        }
    }
}

/* d[f] += c[f], f < n (a multiple of 4) */
static inline void add_rows(int32_t *d, const int32_t *c, int n)
{
    int f = 0;
#if defined(__aarch64__)
    for (; f + 16 <= n; f += 16) { /* four vectors per load / store */
        int32x4x4_t a = vld1q_s32_x4(d + f), b = vld1q_s32_x4(c + f);
        for (int k = 0; k < 4; k++)
            a.val[k] = vaddq_s32(a.val[k], b.val[k]);
        vst1q_s32_x4(d + f, a);
    }
#endif
    for (; f < n; f += 4)
        vst1q_s32(d + f, vaddq_s32(vld1q_s32(d + f), vld1q_s32(c + f)));
}

/* the sums of cz over the out-of-image taps of the border patterns seen
 * (9-bit masks of the taps outside; a 3x3 kernel has at most 15 clipped
 * boxes), found by a table indexed by the mask */
typedef struct {
    int used;
    int8_t slot[512];
    int32_t *sum; /* [PATTERNS][nfp] */
} patterns;

static const int32_t *pattern(patterns *pc, unsigned out, const int32_t *cz, int nfp)
{
    if (pc->slot[out] >= 0)
        return pc->sum + (int64_t)pc->slot[out] * nfp;
    if (pc->used == PATTERNS) { /* cannot happen for 3x3; stay safe */
        memset(pc->slot, -1, sizeof pc->slot);
        pc->used = 0;
    }
    int i = pc->used++;
    int32_t *sum = pc->sum + (int64_t)i * nfp;
    pc->slot[out] = (int8_t)i;
    memset(sum, 0, (size_t)nfp * 4);
    for (unsigned m = out; m; m &= m - 1)
        add_rows(sum, cz + (int64_t)__builtin_ctz(m) * nfp, nfp);
    return sum;
}

static inline const int32_t *border_sum(patterns *pc, unsigned out, const int32_t *cz, int nfp)
{
    int k = pc->slot[out];
    return k >= 0 ? pc->sum + (int64_t)k * nfp : pattern(pc, out, cz, nfp);
}

/* the in-image part [k0, k1) of 0..2 as 3 bits */
static inline unsigned kept3(int k0, int k1)
{
    return ((7u >> k0) << k0) & (7u >> (3 - k1));
}

/* same_zero: the border pixels' popcounts + the corrections of their
 * out-of-image taps (only border rows and the border columns of the
 * others are visited) */
static void fix_border(const ebnn_conv_geom *gp, int64_t p, int np, const int32_t *cz,
                       patterns *pc, int nfp, int32_t *dst, int64_t ldd)
{
    /* locals: the stores below may alias *gp and *pc (no strict aliasing) */
    const int S = gp->stride_w, in_w = gp->in_w, in_h = gp->in_h, out_w = gp->out_w;
    const int pad_left = gp->pad_left, pad_top = gp->pad_top, out_h = gp->out_h;
    /* output columns [xa, xb) have every kernel column inside the image */
    const int xa = (pad_left + S - 1) / S;
    const int xb = ebnn_imin(in_w - 3 + pad_left < 0 ? 0 : (in_w - 3 + pad_left) / S + 1, out_w);
    int ox = (int)(p % out_w), oy = (int)(p / out_w % out_h);
    for (int i = 0; i < np;) {
        int seg = ebnn_imin(np - i, out_w - ox), iy0 = oy * S - pad_top;
        unsigned rows = kept3(ebnn_imax(-iy0, 0), ebnn_imin(in_h - iy0, 3));
        /* kept taps of the rows: bit ky*3 + kx */
        unsigned rowbits = (rows & 1 ? 7u : 0) | (rows & 2 ? 7u << 3 : 0) | (rows & 4 ? 7u << 6 : 0);
        int32_t *d = dst + (int64_t)i * ldd; /* column ox of this row */
        /* columns [a, b) have all kernel columns inside: one pattern for the
         * row (none if all its kernel rows are inside too); the others are
         * the few left / right border columns */
        int e = ox + seg, a = ebnn_imin(ebnn_imax(xa, ox), e), b = ebnn_imin(ebnn_imax(xb, a), e);
        if (rows != 7 && a < b) {
            const int32_t *c = border_sum(pc, ~rowbits & 0x1FF, cz, nfp);
            for (int x = a; x < b; x++)
                add_rows(d + (int64_t)(x - ox) * ldd, c, nfp);
        }
        for (int x = ox; x < e; x++) {
            if (x == a)
                x = b;
            if (x == e)
                break;
            int ix0 = x * S - pad_left;
            unsigned in = rowbits & (kept3(ebnn_imax(-ix0, 0), ebnn_imin(in_w - ix0, 3)) * 0x49u);
            add_rows(d + (int64_t)(x - ox) * ldd, border_sum(pc, ~in & 0x1FF, cz, nfp), nfp);
        }
        i += seg;
        ox = 0;
        oy++;
    }
}

AI void taps_body(const ebnn_conv_geom *gp, const uint64_t *in, const uint64_t *w,
                  const ebnn_output *o, char *s, int64_t p0, int64_t p1, int fa, int fb,
                  const int L, const int S)
{
    const ebnn_conv_geom gl = *gp, *g = &gl; /* locals: stores may alias *gp */
    const int FG = G * 128 / L, ngrp = (fb - fa + FG - 1) / FG, nf = fb - fa, nfp = ngrp * FG;
    const int zero = g->pad_mode == EBNN_PAD_ZERO, padded = g->pad_mode != EBNN_PAD_VALID;
    uint8_t *wk = (uint8_t *)s;
    int32_t *cz = (int32_t *)(s + wk_bytes(g));
    int32_t *acc = (int32_t *)(s + wk_bytes(g) + cz_bytes(g));
    uint64_t *buf = (uint64_t *)(s + wk_bytes(g) + cz_bytes(g) + acc_bytes(g));
    repack(w, fa, fb, wk, L);
    patterns pats = {.used = 0, .sum = cz + TAPS * (int64_t)nfp};
    if (zero)
        memset(pats.slot, -1, sizeof pats.slot);
    if (zero)
        zero_corrections(wk, ngrp, cz, nfp, L);
    /* int32 output of whole groups: popcounts straight into the output,
     * converted in place by the stage */
    const int direct = o->kind == EBNN_OUT_INT32 && nf == nfp;
    const int64_t ldd = direct ? g->out_c : nfp, hw = (int64_t)g->out_h * g->out_w;
    const int64_t rs = padded ? pad_w(g) : g->in_w;
    for (int64_t n = p0 / hw; n * hw < p1; n++) {
        int64_t pa = p0 > n * hw ? p0 : n * hw, pb = p1 < (n + 1) * hw ? p1 : (n + 1) * hw;
        int r0 = (int)(pa / g->out_w % g->out_h); /* first output row */
        const uint64_t *rows;
        if (padded) {
            int r1 = (int)((pb - 1) / g->out_w % g->out_h);
            pad_rows(g, in, n, r0 * S, r1 * S + 3, buf);
            rows = buf;
        } else {
            rows = in + (n * g->in_h + (int64_t)r0 * S) * g->in_w;
        }
        for (int64_t p = pa; p < pb; p += PIX_BLOCK) {
            int np = (int)(pb - p < PIX_BLOCK ? pb - p : PIX_BLOCK);
            int32_t *dst = direct ? (int32_t *)o->out + p * g->out_c + fa : acc;
            pixels(g, rows, rs, r0, p, np, wk, ngrp, dst, ldd, L, S);
            if (zero)
                fix_border(g, p, np, cz, &pats, nfp, dst, ldd);
            ebnn_output_apply_pop_rows(o, g->out_c, p, np, fa, nf, dst, ldd, TAPS * L, NULL);
        }
    }
}

void ebnn_bconv2d_taps_neon(const ebnn_conv_geom *g, const uint64_t *in, const uint64_t *w,
                            const ebnn_output *o, void *scratch, int64_t p0, int64_t p1,
                            int fa, int fb)
{
    char *s = (char *)scratch;
    int s2 = g->stride_w == 2;
    switch (g->in_c) {
    case 16:
        (s2 ? taps_body(g, in, w, o, s, p0, p1, fa, fb, 16, 2)
            : taps_body(g, in, w, o, s, p0, p1, fa, fb, 16, 1));
        break;
    case 32:
        (s2 ? taps_body(g, in, w, o, s, p0, p1, fa, fb, 32, 2)
            : taps_body(g, in, w, o, s, p0, p1, fa, fb, 32, 1));
        break;
    default:
        (s2 ? taps_body(g, in, w, o, s, p0, p1, fa, fb, 64, 2)
            : taps_body(g, in, w, o, s, p0, p1, fa, fb, 64, 1));
    }
}
#endif

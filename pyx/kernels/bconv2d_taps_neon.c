/* Tap-lane direct binary 3x3 convolution for narrow inputs (NEON).
 *
 * For in_c = 16, 32 or 64 a packed input pixel is one word whose low in_c
 * bits are all real. Instead of gathering windows into GEMM rows (where a
 * 3x3x16 window fills 2.25 of 3 128-bit steps), the kernel works per tap:
 * the pixel's in_c-bit slice is broadcast to every lane (ld1r .8h / .4s /
 * .2d), XOR-ed with one vector holding that tap's bits of 128/in_c filters
 * (lane = filter), cnt.16b, and the byte counts are added over the 9 taps
 * (a byte never exceeds 9 * 8 = 72). Each 128-bit step is full, and there is
 * no gather: the input words are read where they lie. Once per pixel the
 * bytes of each lane are summed (uaddlp chain) into per-(pixel, filter)
 * popcounts, written where the GEMM path writes them, and the block goes
 * through the same output stage (dot = 9 in_c - 2 popcount).
 *
 * Border pixels: same_one taps outside the image are +1 (0 bits), so they
 * add popcount(w) (cnt of the weight vector alone); same_zero taps outside
 * add nothing and are skipped, and the popcount is raised by (9 - kept) *
 * in_c / 2 so that 9 in_c - 2 popcount is the clipped dot kept * in_c -
 * 2 popcount (in_c even: exact); valid convs have no border.
 *
 * Filters run in groups of G vectors (the weights of a group, 9 * G vectors,
 * are repacked per call from [out_c][3][3] words: tap-major, lanes =
 * filters, zero past out_c); pixels of one output row run P at a time per
 * tap, so a group's weight vectors are loaded once per P pixels. */
#include "internal.h"

#if defined(__ARM_NEON)
#include <arm_neon.h>
#include <string.h>
#include "output_stage.h"

#define AI static inline __attribute__((always_inline))
#define TAPS 9
#define PIX_BLOCK 256 /* pixels per output-stage call */

/* vectors per filter group and pixels per interior block, per lane width;
 * armv7 has 16 q registers instead of 32 */
#if defined(__aarch64__)
#define G16 2
#define G32 4
#define G64 4
#define PBLK 4
#else
#define G16 2
#define G32 2
#define G64 2
#define PBLK 2
#endif

static int group_vectors(int in_c)
{
    return in_c == 16 ? G16 : in_c == 32 ? G32 : G64;
}

/* filters per group */
static int group_filters(int in_c)
{
    return group_vectors(in_c) * 128 / in_c;
}

int ebnn_bconv2d_taps_fits(const ebnn_conv_geom *g)
{
    return (g->in_c == 16 || g->in_c == 32 || g->in_c == 64) && g->kh == 3 && g->kw == 3 &&
           g->stride_h == g->stride_w && (g->stride_w == 1 || g->stride_w == 2);
}

static size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }

static int padded_filters(const ebnn_conv_geom *g)
{
    int fg = group_filters(g->in_c);
    return (g->out_c + fg - 1) / fg * fg;
}

size_t ebnn_bconv2d_taps_scratch_bytes(const ebnn_conv_geom *g)
{
    size_t wbytes = (size_t)padded_filters(g) * TAPS * g->in_c / 8;
    return round64(wbytes) + round64((size_t)PIX_BLOCK * padded_filters(g) * 4);
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

/* the popcounts of the G vectors' filters (lane order) + extra, as int32 */
AI void store_pops(const uint8x16_t *a, int32_t *dst, const int L, const int G,
                   const int adjust, int32_t extra)
{
    uint32x4_t v[2 * 4];
    int nv = 0;
    if (L == 16) {
        for (int g = 0; g < G; g++) {
            uint16x8_t h = vpaddlq_u8(a[g]);
            v[nv++] = vmovl_u16(vget_low_u16(h));
            v[nv++] = vmovl_u16(vget_high_u16(h));
        }
    } else if (L == 32) {
        for (int g = 0; g < G; g++)
            v[nv++] = vpaddlq_u16(vpaddlq_u8(a[g]));
    } else { /* two filters per vector: byte pairs first (<= 144 each) */
        for (int g = 0; g < G; g += 2)
            v[nv++] = vpaddlq_u16(vpaddlq_u8(padd8(a[g], a[g + 1])));
    }
    for (int i = 0; i < nv; i++) {
        uint32x4_t x = adjust ? vaddq_u32(v[i], vdupq_n_u32((uint32_t)extra)) : v[i];
        vst1q_s32(dst + 4 * i, vreinterpretq_s32_u32(x));
    }
}

/* P pixels of one output row, all taps inside the image: src = the top left
 * tap of the first pixel, S its stride in words, wk the group's weights
 * [9][G] vectors, dst its popcounts (row stride ldd) */
AI void interior(const uint64_t *src, int64_t in_w, const int S, const uint8_t *wk,
                 int32_t *dst, int64_t ldd, const int L, const int G, const int P)
{
    uint8x16_t acc[PBLK][4];
    for (int t = 0; t < TAPS; t++) {
        const uint64_t *q = src + (t / 3) * in_w + t % 3;
        uint8x16_t wv[4];
        for (int g = 0; g < G; g++)
            wv[g] = vld1q_u8(wk + (t * G + g) * 16);
        for (int p = 0; p < P; p++) {
            uint8x16_t x = bcast(q + p * S, L);
            for (int g = 0; g < G; g++) {
                uint8x16_t c = vcntq_u8(veorq_u8(x, wv[g]));
                acc[p][g] = t ? vaddq_u8(acc[p][g], c) : c;
            }
        }
    }
    for (int p = 0; p < P; p++)
        store_pops(acc[p], dst + p * ldd, L, G, 0, 0);
}

/* one pixel with taps outside the image: rows [ky0, ky1) x columns
 * [kx0, kx1) of the kernel are inside; img = its image, (iy0, ix0) the
 * input position of tap (0, 0) */
AI void border(const uint64_t *img, int64_t in_w, int iy0, int ix0, int ky0, int ky1,
               int kx0, int kx1, int pad_one, const uint8_t *wk, int32_t *dst, const int L,
               const int G)
{
    uint8x16_t acc[4];
    for (int g = 0; g < G; g++)
        acc[g] = vdupq_n_u8(0);
    for (int t = 0; t < TAPS; t++) {
        int ky = t / 3, kx = t % 3;
        int inside = ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1;
        if (!inside && !pad_one)
            continue;
        uint8x16_t x = inside ? bcast(img + (int64_t)(iy0 + ky) * in_w + ix0 + kx, L)
                              : vdupq_n_u8(0);
        for (int g = 0; g < G; g++)
            acc[g] = vaddq_u8(acc[g], vcntq_u8(veorq_u8(x, vld1q_u8(wk + (t * G + g) * 16))));
    }
    int kept = (ky1 - ky0) * (kx1 - kx0);
    store_pops(acc, dst, L, G, !pad_one, (TAPS - kept) * L / 2);
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* popcounts of pixels [p, p + np) x one filter group into dst (row stride
 * ldd) */
AI void group_pixels(const ebnn_conv_geom *gp, const uint64_t *in, int64_t p, int np,
                     const uint8_t *wk, int32_t *dst, int64_t ldd, const int L, const int G,
                     const int S)
{
    const ebnn_conv_geom gl = *gp, *g = &gl; /* locals: stores may alias *gp */
    const int pad_one = g->pad_mode == EBNN_PAD_ONE;
    const int64_t in_w = g->in_w;
    /* output columns [xa, xb) have every kernel column inside the image */
    const int xa = (g->pad_left + S - 1) / S;
    const int xb = imin(g->in_w - 3 + g->pad_left < 0 ? 0 : (g->in_w - 3 + g->pad_left) / S + 1,
                        g->out_w);
    int ox = (int)(p % g->out_w);
    int64_t q = p / g->out_w; /* n * out_h + oy */
    for (int i = 0; i < np;) {
        int oy = (int)(q % g->out_h), seg = imin(np - i, g->out_w - ox);
        int iy0 = oy * S - g->pad_top;
        const uint64_t *img = in + (q / g->out_h) * g->in_h * in_w;
        int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = imin(g->in_h - iy0, 3);
        int a = ox + seg, b = ox + seg; /* interior columns of this segment */
        if (ky0 == 0 && ky1 == 3 && xa < xb) {
            a = imin(imax(xa, ox), ox + seg);
            b = imax(imin(xb, ox + seg), a);
        }
        int32_t *d = dst + (int64_t)i * ldd;
        for (int x = ox; x < ox + seg; x++, d += ldd) {
            if (x == a) { /* the interior run */
                const uint64_t *s = img + (int64_t)iy0 * in_w + x * S - g->pad_left;
                for (; x + PBLK <= b; x += PBLK, s += PBLK * S, d += PBLK * ldd)
                    interior(s, in_w, S, wk, d, ldd, L, G, PBLK);
                for (; x < b; x++, s += S, d += ldd)
                    interior(s, in_w, S, wk, d, ldd, L, G, 1);
                if (x == ox + seg)
                    break;
            }
            int ix0 = x * S - g->pad_left;
            int kx0 = ix0 < 0 ? -ix0 : 0;
            border(img, in_w, iy0, ix0, ky0, imax(ky1, ky0), kx0, imax(imin(g->in_w - ix0, 3), kx0),
                   pad_one, wk, d, L, G);
        }
        i += seg;
        ox = 0;
        q++;
    }
}

/* weights of filters [fa, fb) into groups: wk[grp][t][v] vectors, lane k
 * of vector v = filter fa + grp * FG + v * (128 / L) + k */
static void repack(const ebnn_conv_geom *g, const uint64_t *w, int fa, int fb, uint8_t *wk)
{
    const int L = g->in_c, G = group_vectors(L), FG = group_filters(L), per = 128 / L;
    int ngrp = (fb - fa + FG - 1) / FG;
    memset(wk, 0, (size_t)ngrp * TAPS * G * 16);
    for (int f = fa; f < fb; f++) {
        int r = f - fa, grp = r / FG, v = r % FG / per, k = r % per;
        uint8_t *base = wk + ((size_t)grp * TAPS * G + v) * 16 + (size_t)k * L / 8;
        for (int t = 0; t < TAPS; t++)
            memcpy(base + (size_t)t * G * 16, &w[(int64_t)f * TAPS + t], L / 8);
    }
}

AI void run_groups(const ebnn_conv_geom *g, const uint64_t *in, int64_t p, int np,
                   const uint8_t *wk, int ngrp, int32_t *dst, int64_t ldd, const int L,
                   const int G)
{
    const int FG = G * 128 / L;
    for (int grp = 0; grp < ngrp; grp++) {
        const uint8_t *wg = wk + (size_t)grp * TAPS * G * 16;
        if (g->stride_w == 1)
            group_pixels(g, in, p, np, wg, dst + grp * FG, ldd, L, G, 1);
        else
            group_pixels(g, in, p, np, wg, dst + grp * FG, ldd, L, G, 2);
    }
}

void ebnn_bconv2d_taps_neon(const ebnn_conv_geom *g, const uint64_t *in, const uint64_t *w,
                            const ebnn_output *o, void *scratch, int64_t p0, int64_t p1,
                            int fa, int fb)
{
    const int L = g->in_c, FG = group_filters(L);
    const int ngrp = (fb - fa + FG - 1) / FG, nf = fb - fa;
    uint8_t *wk = (uint8_t *)scratch;
    int32_t *acc = (int32_t *)((char *)scratch +
                               round64((size_t)padded_filters(g) * TAPS * L / 8));
    repack(g, w, fa, fb, wk);
    /* int32 output of whole groups: popcounts straight into the output,
     * converted in place by the stage */
    const int direct = o->kind == EBNN_OUT_INT32 && nf == ngrp * FG;
    const int64_t ldd = direct ? g->out_c : (int64_t)ngrp * FG;
    for (int64_t p = p0; p < p1; p += PIX_BLOCK) {
        int np = (int)(p1 - p < PIX_BLOCK ? p1 - p : PIX_BLOCK);
        int32_t *dst = direct ? (int32_t *)o->out + p * g->out_c + fa : acc;
        if (L == 16)
            run_groups(g, in, p, np, wk, ngrp, dst, ldd, 16, G16);
        else if (L == 32)
            run_groups(g, in, p, np, wk, ngrp, dst, ldd, 32, G32);
        else
            run_groups(g, in, p, np, wk, ngrp, dst, ldd, 64, G64);
        ebnn_output_apply_pop_rows(o, g->out_c, p, np, fa, nf, dst, ldd, TAPS * L, NULL);
    }
}
#endif

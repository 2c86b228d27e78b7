/* NEON weights-only dot products from the packed bits (aarch64 and armv7):
 * sum x*s = total(x) - 2 * sum_{bit=1} x; each 4-bit nibble of a weight word
 * indexes a table of four lane masks that selects x before the add; with two
 * pixels each mask serves both.
 * Assumes little-endian words (every ARM Linux target we build for). */
#if defined(__ARM_NEON)
#include <arm_neon.h>
#include <string.h>
#include "wgemm.h"

#define WBLK 8 /* filters per register block for one pixel (armv7: 16 q regs) */

#define LANE(i, k) (((i) >> (k)) & 1 ? 0xffffffffu : 0u)
#define ROW(i) {LANE(i, 0), LANE(i, 1), LANE(i, 2), LANE(i, 3)}
#define ROW4(i) ROW(i), ROW(i + 1), ROW(i + 2), ROW(i + 3)
static const uint32_t nibble_masks[16][4] __attribute__((aligned(16))) = {
    ROW4(0), ROW4(4), ROW4(8), ROW4(12)};

static inline float32x4_t load_tail(const float *p, int r)
{
    if (r >= 4)
        return vld1q_f32(p);
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(tmp, p, (size_t)r * sizeof(float));
    return vld1q_f32(tmp);
}

static inline float hsum4(float32x4_t v)
{
#if defined(__aarch64__)
    return vaddvq_f32(v);
#else
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(s, s), 0);
#endif
}

/* neg[j][f] lanes += x of pixel j where the weight bit is 1, for nf
 * filters and np pixels (constants after inlining) */
static inline __attribute__((always_inline)) void
neg_sums(int np, int64_t xstep, int ntaps, const float *const *x,
         const int64_t *wtap, int c, const uint64_t *w, int64_t ldw, int nf,
         float32x4_t neg[2][WBLK])
{
    for (int j = 0; j < np; j++)
        for (int f = 0; f < nf; f++)
            neg[j][f] = vdupq_n_f32(0.0f);
    for (int t = 0; t < ntaps; t++) {
        const float *xt = x[t];
        const uint8_t *bits = (const uint8_t *)(w + wtap[t]);
        for (int i0 = 0; i0 < c; i0 += 4) {
            uint32x4_t x0 = vreinterpretq_u32_f32(load_tail(xt + i0, c - i0));
            uint32x4_t x1 = np > 1 ? vreinterpretq_u32_f32(load_tail(xt + xstep + i0, c - i0)) : x0;
            const uint8_t *b = bits + (i0 >> 3);
            int shift = i0 & 4;
            for (int f = 0; f < nf; f++) {
                uint32x4_t m = vld1q_u32(nibble_masks[(b[f * ldw * 8] >> shift) & 15]);
                neg[0][f] = vaddq_f32(neg[0][f], vreinterpretq_f32_u32(vandq_u32(x0, m)));
                if (np > 1)
                    neg[1][f] = vaddq_f32(neg[1][f], vreinterpretq_f32_u32(vandq_u32(x1, m)));
            }
        }
    }
}

static float total_of(int ntaps, const float *const *x, int64_t xoff, int c)
{
    float32x4_t tot = vdupq_n_f32(0.0f);
    for (int t = 0; t < ntaps; t++)
        for (int i0 = 0; i0 < c; i0 += 4)
            tot = vaddq_f32(tot, load_tail(x[t] + xoff + i0, c - i0));
    return hsum4(tot);
}

/* all filters for np (constant) pixels in blocks of blk filters */
static inline __attribute__((always_inline)) void
filters(int np, int blk, int64_t xstep, int ntaps, const float *const *x,
        const int64_t *wtap, int c, const uint64_t *w, int64_t ldw, int nf,
        float *acc, int64_t ldacc)
{
    float32x4_t neg[2][WBLK];
    float total[2];
    for (int j = 0; j < np; j++)
        total[j] = total_of(ntaps, x, j * xstep, c);
    int f = 0;
    for (; f + blk <= nf; f += blk) {
        neg_sums(np, xstep, ntaps, x, wtap, c, w + f * ldw, ldw, blk, neg);
        for (int j = 0; j < np; j++)
            for (int i = 0; i < blk; i++)
                acc[j * ldacc + f + i] = total[j] - 2.0f * hsum4(neg[j][i]);
    }
    for (; f < nf; f++) {
        neg_sums(np, xstep, ntaps, x, wtap, c, w + f * ldw, ldw, 1, neg);
        for (int j = 0; j < np; j++)
            acc[j * ldacc + f] = total[j] - 2.0f * hsum4(neg[j][0]);
    }
}

void ebnn_wgemm_neon(int npix, int64_t xstep, int ntaps,
                    const float *const *x, const int64_t *wtap, int c,
                    const uint64_t *w, int64_t ldw, int nf, float *acc,
                    int64_t ldacc)
{
    /* two pixels x 8 filters = 16 accumulators: fits aarch64's 32 q
     * registers; armv7 has 16, so it takes 4 filters at a time */
#if defined(__aarch64__)
    if (npix == 2)
        filters(2, WBLK, xstep, ntaps, x, wtap, c, w, ldw, nf, acc, ldacc);
#else
    if (npix == 2)
        filters(2, WBLK / 2, xstep, ntaps, x, wtap, c, w, ldw, nf, acc, ldacc);
#endif
    else
        filters(1, WBLK, 0, ntaps, x, wtap, c, w, ldw, nf, acc, ldacc);
}

/* few-channel layers: filters in lanes; nv (constant) vectors of 4
 * filters from filter f0 on; even and odd terms in separate partial sums */
static inline __attribute__((always_inline)) void
filter_lanes(int nv, int ns, const float *val, const int64_t *row,
             const uint64_t *tw, int fw, int f0, int n, float *acc)
{
    float32x4_t ev[4], od[4];
    float te = 0.0f, to = 0.0f, lane[16];
    for (int v = 0; v < nv; v++)
        ev[v] = od[v] = vdupq_n_f32(0.0f);
    const uint8_t *col = (const uint8_t *)(tw + (f0 >> 6)) + ((f0 & 63) >> 3);
    int k = 0;
    for (; k + 1 < ns; k += 2) {
        const uint8_t *m = col + row[k] * fw * 8;
        float32x4_t b = vdupq_n_f32(val[k]);
        te += val[k];
        for (int v = 0; v < nv; v++)
            ev[v] = vaddq_f32(ev[v], vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(b), vld1q_u32(nibble_masks[(m[v >> 1] >> ((v & 1) * 4)) & 15]))));
        m = col + row[k + 1] * fw * 8;
        b = vdupq_n_f32(val[k + 1]);
        to += val[k + 1];
        for (int v = 0; v < nv; v++)
            od[v] = vaddq_f32(od[v], vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(b), vld1q_u32(nibble_masks[(m[v >> 1] >> ((v & 1) * 4)) & 15]))));
    }
    if (k < ns) {
        const uint8_t *m = col + row[k] * fw * 8;
        float32x4_t b = vdupq_n_f32(val[k]);
        te += val[k];
        for (int v = 0; v < nv; v++)
            ev[v] = vaddq_f32(ev[v], vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(b), vld1q_u32(nibble_masks[(m[v >> 1] >> ((v & 1) * 4)) & 15]))));
    }
    for (int v = 0; v < nv; v++)
        vst1q_f32(lane + 4 * v, vaddq_f32(ev[v], od[v]));
    for (int l = 0; l < n; l++)
        acc[f0 + l] = (te + to) - 2.0f * lane[l];
}

void ebnn_wgemmt_neon(int ns, const float *val, const int64_t *row,
                     const uint64_t *tw, int fw, int nf, float *acc)
{
    for (int f0 = 0; f0 < nf; f0 += 16) {
        int n = nf - f0 < 16 ? nf - f0 : 16;
        switch ((n + 3) / 4) {
        case 1: filter_lanes(1, ns, val, row, tw, fw, f0, n, acc); break;
        case 2: filter_lanes(2, ns, val, row, tw, fw, f0, n, acc); break;
        case 3: filter_lanes(3, ns, val, row, tw, fw, f0, n, acc); break;
        default: filter_lanes(4, ns, val, row, tw, fw, f0, n, acc); break;
        }
    }
}
#endif

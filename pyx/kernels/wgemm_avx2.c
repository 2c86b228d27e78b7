/* AVX2 weights-only dot products from the packed bits: sum x*s =
 * total(x) - 2 * sum_{bit=1} x; each weight byte indexes a table of eight
 * lane masks (bit j -> lane j all ones) that selects x before the add; with
 * two pixels each mask serves both. */
#if defined(__x86_64__)
#include <immintrin.h>
#include "wgemm.h"

#define WBLK 8 /* filters per register block for one pixel */

#define LANE(i, k) (((i) >> (k)) & 1 ? -1 : 0)
#define ROW(i) {LANE(i, 0), LANE(i, 1), LANE(i, 2), LANE(i, 3), \
                LANE(i, 4), LANE(i, 5), LANE(i, 6), LANE(i, 7)}
#define ROW4(i) ROW(i), ROW(i + 1), ROW(i + 2), ROW(i + 3)
#define ROW16(i) ROW4(i), ROW4(i + 4), ROW4(i + 8), ROW4(i + 12)
#define ROW64(i) ROW16(i), ROW16(i + 16), ROW16(i + 32), ROW16(i + 48)
static const int32_t byte_masks[256][8] __attribute__((aligned(32))) = {
    ROW64(0), ROW64(64), ROW64(128), ROW64(192)};

EBNN_TARGET_AVX2 static inline __m256 load_tail(const float *p, int r)
{
    if (r >= 8)
        return _mm256_loadu_ps(p);
    __m256i lm = _mm256_load_si256((const __m256i *)byte_masks[(1u << r) - 1]);
    return _mm256_maskload_ps(p, lm);
}

EBNN_TARGET_AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* neg[j][f] lanes += x of pixel j where the weight bit is 1, for nf
 * filters and np pixels (constants after inlining) */
EBNN_TARGET_AVX2 static inline __attribute__((always_inline)) void
neg_sums(int np, int64_t xstep, int ntaps, const float *const *x,
         const int64_t *wtap, int c, const uint64_t *w, int64_t ldw, int nf,
         __m256 neg[2][WBLK])
{
    for (int j = 0; j < np; j++)
        for (int f = 0; f < nf; f++)
            neg[j][f] = _mm256_setzero_ps();
    for (int t = 0; t < ntaps; t++) {
        const float *xt = x[t];
        const uint8_t *bits = (const uint8_t *)(w + wtap[t]);
        for (int i0 = 0; i0 < c; i0 += 8) {
            __m256 x0 = load_tail(xt + i0, c - i0);
            __m256 x1 = np > 1 ? load_tail(xt + xstep + i0, c - i0) : x0;
            const uint8_t *b = bits + (i0 >> 3);
            for (int f = 0; f < nf; f++) {
                __m256 m = _mm256_load_ps((const float *)byte_masks[b[f * ldw * 8]]);
                neg[0][f] = _mm256_add_ps(neg[0][f], _mm256_and_ps(x0, m));
                if (np > 1)
                    neg[1][f] = _mm256_add_ps(neg[1][f], _mm256_and_ps(x1, m));
            }
        }
    }
}

EBNN_TARGET_AVX2 static float total_of(int ntaps, const float *const *x,
                                       int64_t xoff, int c)
{
    __m256 tot = _mm256_setzero_ps();
    for (int t = 0; t < ntaps; t++)
        for (int i0 = 0; i0 < c; i0 += 8)
            tot = _mm256_add_ps(tot, load_tail(x[t] + xoff + i0, c - i0));
    return hsum8(tot);
}

/* all filters for np (constant) pixels in blocks of blk filters (8 also
 * for two pixels: measured faster than 4 despite the register pressure) */
EBNN_TARGET_AVX2 static inline __attribute__((always_inline)) void
filters(int np, int blk, int64_t xstep, int ntaps, const float *const *x,
        const int64_t *wtap, int c, const uint64_t *w, int64_t ldw, int nf,
        float *acc, int64_t ldacc)
{
    __m256 neg[2][WBLK];
    float total[2];
    for (int j = 0; j < np; j++)
        total[j] = total_of(ntaps, x, j * xstep, c);
    int f = 0;
    for (; f + blk <= nf; f += blk) {
        neg_sums(np, xstep, ntaps, x, wtap, c, w + f * ldw, ldw, blk, neg);
        for (int j = 0; j < np; j++)
            for (int i = 0; i < blk; i++)
                acc[j * ldacc + f + i] = total[j] - 2.0f * hsum8(neg[j][i]);
    }
    for (; f < nf; f++) {
        neg_sums(np, xstep, ntaps, x, wtap, c, w + f * ldw, ldw, 1, neg);
        for (int j = 0; j < np; j++)
            acc[j * ldacc + f] = total[j] - 2.0f * hsum8(neg[j][0]);
    }
}

EBNN_TARGET_AVX2 void ebnn_wgemm_avx2(int npix, int64_t xstep, int ntaps,
                                     const float *const *x, const int64_t *wtap, int c,
                                     const uint64_t *w, int64_t ldw, int nf, float *acc,
                                     int64_t ldacc)
{
    if (npix == 2)
        filters(2, WBLK, xstep, ntaps, x, wtap, c, w, ldw, nf, acc, ldacc);
    else
        filters(1, WBLK, 0, ntaps, x, wtap, c, w, ldw, nf, acc, ldacc);
}

/* few-channel layers: filters in lanes; nv (constant) vectors of 8
 * filters from filter f0 on; even and odd terms in separate partial sums */
EBNN_TARGET_AVX2 static inline __attribute__((always_inline)) void
filter_lanes(int nv, int ns, const float *val, const int64_t *row,
             const uint64_t *tw, int fw, int f0, int n, float *acc)
{
    __m256 ev[4], od[4];
    float te = 0.0f, to = 0.0f, lane[32];
    for (int v = 0; v < nv; v++)
        ev[v] = od[v] = _mm256_setzero_ps();
    const uint8_t *col = (const uint8_t *)(tw + (f0 >> 6)) + ((f0 & 32) >> 3);
    int k = 0;
    for (; k + 1 < ns; k += 2) {
        const uint8_t *m = col + row[k] * fw * 8;
        __m256 b = _mm256_set1_ps(val[k]);
        te += val[k];
        for (int v = 0; v < nv; v++)
            ev[v] = _mm256_add_ps(ev[v], _mm256_and_ps(b, _mm256_load_ps((const float *)byte_masks[m[v]])));
        m = col + row[k + 1] * fw * 8;
        b = _mm256_set1_ps(val[k + 1]);
        to += val[k + 1];
        for (int v = 0; v < nv; v++)
            od[v] = _mm256_add_ps(od[v], _mm256_and_ps(b, _mm256_load_ps((const float *)byte_masks[m[v]])));
    }
    if (k < ns) {
        const uint8_t *m = col + row[k] * fw * 8;
        __m256 b = _mm256_set1_ps(val[k]);
        te += val[k];
        for (int v = 0; v < nv; v++)
            ev[v] = _mm256_add_ps(ev[v], _mm256_and_ps(b, _mm256_load_ps((const float *)byte_masks[m[v]])));
    }
    for (int v = 0; v < nv; v++)
        _mm256_storeu_ps(lane + 8 * v, _mm256_add_ps(ev[v], od[v]));
    for (int l = 0; l < n; l++)
        acc[f0 + l] = (te + to) - 2.0f * lane[l];
}

EBNN_TARGET_AVX2 void ebnn_wgemmt_avx2(int ns, const float *val, const int64_t *row,
                                      const uint64_t *tw, int fw, int nf, float *acc)
{
    for (int f0 = 0; f0 < nf; f0 += 32) {
        int n = nf - f0 < 32 ? nf - f0 : 32;
        switch ((n + 7) / 8) {
        case 1: filter_lanes(1, ns, val, row, tw, fw, f0, n, acc); break;
        case 2: filter_lanes(2, ns, val, row, tw, fw, f0, n, acc); break;
        case 3: filter_lanes(3, ns, val, row, tw, fw, f0, n, acc); break;
        default: filter_lanes(4, ns, val, row, tw, fw, f0, n, acc); break;
        }
    }
}
#endif

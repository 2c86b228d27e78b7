/* AVX-512 weights-only dot products from the packed bits: sum x*s =
 * total(x) - 2 * sum_{bit=1} x, and each 16 weight bits are directly the
 * write mask of one masked add (no unpacking of weights to float); with two
 * pixels each mask serves both. */
#if defined(__x86_64__)
#include <immintrin.h>
#include "wgemm.h"

#define WBLK 8 /* filters per register block (x2 pixels = 16 accumulators) */

EBNN_TARGET_AVX512 static inline __mmask16 lanes(int r)
{
    return r >= 16 ? 0xffff : (__mmask16)((1u << r) - 1);
}

/* neg[j][f] lanes += x of pixel j where the weight bit is 1, for nf filters
 * and np pixels (constants after inlining); lane l of chunk i0 holds
 * channel i0 + l. */
EBNN_TARGET_AVX512 static inline __attribute__((always_inline)) void
neg_sums(int np, int64_t xstep, int ntaps, const float *const *x,
         const int64_t *wtap, int c, const uint64_t *w, int64_t ldw, int nf,
         __m512 neg[2][WBLK])
{
    for (int j = 0; j < np; j++)
        for (int f = 0; f < nf; f++)
            neg[j][f] = _mm512_setzero_ps();
    for (int t = 0; t < ntaps; t++) {
        const float *xt = x[t];
        const uint16_t *bits = (const uint16_t *)(w + wtap[t]);
        for (int i0 = 0; i0 < c; i0 += 16) {
            __mmask16 lm = lanes(c - i0);
            __m512 x0 = _mm512_maskz_loadu_ps(lm, xt + i0);
            __m512 x1 = np > 1 ? _mm512_maskz_loadu_ps(lm, xt + xstep + i0) : x0;
            const uint16_t *b = bits + (i0 >> 4);
            for (int f = 0; f < nf; f++) {
                __mmask16 k = b[f * ldw * 4];
                neg[0][f] = _mm512_mask_add_ps(neg[0][f], k, neg[0][f], x0);
                if (np > 1)
                    neg[1][f] = _mm512_mask_add_ps(neg[1][f], k, neg[1][f], x1);
            }
        }
    }
}

EBNN_TARGET_AVX512 static float total_of(int ntaps, const float *const *x,
                                         int64_t xoff, int c)
{
    __m512 tot = _mm512_setzero_ps();
    for (int t = 0; t < ntaps; t++)
        for (int i0 = 0; i0 < c; i0 += 16)
            tot = _mm512_add_ps(tot, _mm512_maskz_loadu_ps(lanes(c - i0), x[t] + xoff + i0));
    return _mm512_reduce_add_ps(tot);
}

/* all filters for np (constant) pixels */
EBNN_TARGET_AVX512 static inline __attribute__((always_inline)) void
filters(int np, int64_t xstep, int ntaps, const float *const *x,
        const int64_t *wtap, int c, const uint64_t *w, int64_t ldw, int nf,
        float *acc, int64_t ldacc)
{
    __m512 neg[2][WBLK];
    float total[2];
    for (int j = 0; j < np; j++)
        total[j] = total_of(ntaps, x, j * xstep, c);
    int f = 0;
    for (; f + WBLK <= nf; f += WBLK) {
        neg_sums(np, xstep, ntaps, x, wtap, c, w + f * ldw, ldw, WBLK, neg);
        for (int j = 0; j < np; j++)
            for (int i = 0; i < WBLK; i++)
                acc[j * ldacc + f + i] = total[j] - 2.0f * _mm512_reduce_add_ps(neg[j][i]);
    }
    for (; f < nf; f++) {
        neg_sums(np, xstep, ntaps, x, wtap, c, w + f * ldw, ldw, 1, neg);
        for (int j = 0; j < np; j++)
            acc[j * ldacc + f] = total[j] - 2.0f * _mm512_reduce_add_ps(neg[j][0]);
    }
}

EBNN_TARGET_AVX512 void ebnn_wgemm_avx512(int npix, int64_t xstep, int ntaps,
                                          const float *const *x,
                                          const int64_t *wtap, int c,
                                          const uint64_t *w, int64_t ldw,
                                          int nf, float *acc, int64_t ldacc)
{
    if (npix == 2)
        filters(2, xstep, ntaps, x, wtap, c, w, ldw, nf, acc, ldacc);
    else
        filters(1, 0, ntaps, x, wtap, c, w, ldw, nf, acc, ldacc);
}

/* few-channel layers: filters in lanes; nv (constant) vectors of 16
 * filters from filter f0 on; even and odd terms in separate partial sums */
EBNN_TARGET_AVX512 static inline __attribute__((always_inline)) void
filter_lanes(int nv, int ns, const float *val, const int64_t *row,
             const uint64_t *tw, int fw, int f0, int n, float *acc)
{
    __m512 ev[4], od[4];
    float te = 0.0f, to = 0.0f, lane[64];
    for (int v = 0; v < nv; v++)
        ev[v] = od[v] = _mm512_setzero_ps();
    const uint16_t *col = (const uint16_t *)(tw + (f0 >> 6));
    int k = 0;
    for (; k + 1 < ns; k += 2) {
        const uint16_t *m = col + row[k] * fw * 4;
        __m512 b = _mm512_set1_ps(val[k]);
        te += val[k];
        for (int v = 0; v < nv; v++)
            ev[v] = _mm512_mask_add_ps(ev[v], m[v], ev[v], b);
        m = col + row[k + 1] * fw * 4;
        b = _mm512_set1_ps(val[k + 1]);
        to += val[k + 1];
        for (int v = 0; v < nv; v++)
            od[v] = _mm512_mask_add_ps(od[v], m[v], od[v], b);
    }
    if (k < ns) {
        const uint16_t *m = col + row[k] * fw * 4;
        __m512 b = _mm512_set1_ps(val[k]);
        te += val[k];
        for (int v = 0; v < nv; v++)
            ev[v] = _mm512_mask_add_ps(ev[v], m[v], ev[v], b);
    }
    for (int v = 0; v < nv; v++)
        _mm512_storeu_ps(lane + 16 * v, _mm512_add_ps(ev[v], od[v]));
    for (int l = 0; l < n; l++)
        acc[f0 + l] = (te + to) - 2.0f * lane[l];
}

EBNN_TARGET_AVX512 void ebnn_wgemmt_avx512(int ns, const float *val, const int64_t *row,
                                          const uint64_t *tw, int fw, int nf, float *acc)
{
    for (int f0 = 0; f0 < nf; f0 += 64) {
        int n = nf - f0 < 64 ? nf - f0 : 64;
        switch ((n + 15) / 16) {
        case 1: filter_lanes(1, ns, val, row, tw, fw, f0, n, acc); break;
        case 2: filter_lanes(2, ns, val, row, tw, fw, f0, n, acc); break;
        case 3: filter_lanes(3, ns, val, row, tw, fw, f0, n, acc); break;
        default: filter_lanes(4, ns, val, row, tw, fw, f0, n, acc); break;
        }
    }
}
#endif

/* AVX-512 weights-only dot products from the packed bits: sum x*s =
 * total(x) - 2 * sum_{bit=1} x, and each 16 weight bits are directly the
 * write mask of one masked add (no unpacking of weights to float). */
#if defined(__x86_64__)
#include <immintrin.h>
#include "wgemm.h"

#define WBLK 8 /* filters per register block */

/* neg[f] lanes += x where the weight bit is 1, for nf filters (a constant
 * after inlining); lane l of chunk i0 holds channel i0 + l. */
EBNN_TARGET_AVX512 static inline __attribute__((always_inline)) void
neg_sums(int ntaps, const float *const *x, const int64_t *wtap, int c,
         const uint64_t *w, int64_t ldw, int nf, __m512 *neg)
{
    for (int f = 0; f < nf; f++)
        neg[f] = _mm512_setzero_ps();
    for (int t = 0; t < ntaps; t++) {
        const float *xt = x[t];
        const uint16_t *bits = (const uint16_t *)(w + wtap[t]);
        for (int i0 = 0; i0 < c; i0 += 16) {
            int r = c - i0;
            __mmask16 lm = r >= 16 ? 0xffff : (__mmask16)((1u << r) - 1);
            __m512 xv = _mm512_maskz_loadu_ps(lm, xt + i0);
            const uint16_t *b = bits + (i0 >> 4);
            for (int f = 0; f < nf; f++)
                neg[f] = _mm512_mask_add_ps(neg[f], b[f * ldw * 4], neg[f], xv);
        }
    }
}

EBNN_TARGET_AVX512 void ebnn_wgemm_avx512(int ntaps, const float *const *x,
                                          const int64_t *wtap, int c,
                                          const uint64_t *w, int64_t ldw,
                                          int nf, float *acc)
{
    __m512 tot = _mm512_setzero_ps(), neg[WBLK];
    for (int t = 0; t < ntaps; t++)
        for (int i0 = 0; i0 < c; i0 += 16) {
            int r = c - i0;
            __mmask16 lm = r >= 16 ? 0xffff : (__mmask16)((1u << r) - 1);
            tot = _mm512_add_ps(tot, _mm512_maskz_loadu_ps(lm, x[t] + i0));
        }
    float total = _mm512_reduce_add_ps(tot);
    int f = 0;
    for (; f + WBLK <= nf; f += WBLK) {
        neg_sums(ntaps, x, wtap, c, w + f * ldw, ldw, WBLK, neg);
        for (int j = 0; j < WBLK; j++)
            acc[f + j] = total - 2.0f * _mm512_reduce_add_ps(neg[j]);
    }
    for (; f < nf; f++) {
        neg_sums(ntaps, x, wtap, c, w + f * ldw, ldw, 1, neg);
        acc[f] = total - 2.0f * _mm512_reduce_add_ps(neg[0]);
    }
}
#endif

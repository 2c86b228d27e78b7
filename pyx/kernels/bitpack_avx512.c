/* AVX-512 bit-packing: 16 compares straight into a mask register; the tail
 * of a row uses a masked load so no scalar loop is needed. */
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

/* rows of exactly 16 or 32 channels (ResNet's first stages): the rows are
 * contiguous, so four 16-float compares cover 4 (or 2) rows per step with
 * no masks and no per-row loop */
EBNN_TARGET_AVX512
static int64_t pack_narrow_rows(const float *x, int64_t rows, int c, uint64_t *out)
{
    const __m512 zero = _mm512_setzero_ps();
    int per = 64 / c; /* rows per 64 floats: 4 of 16, 2 of 32 */
    int64_t r = 0;
    for (; r + per <= rows; r += per) {
        const float *p = x + r * c;
        uint64_t m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p), zero, _CMP_LT_OQ);
        uint64_t m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 16), zero, _CMP_LT_OQ);
        uint64_t m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 32), zero, _CMP_LT_OQ);
        uint64_t m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 48), zero, _CMP_LT_OQ);
        if (c == 16) {
            out[r] = m0;
            out[r + 1] = m1;
            out[r + 2] = m2;
            out[r + 3] = m3;
        } else {
            out[r] = m0 | m1 << 16;
            out[r + 1] = m2 | m3 << 16;
        }
    }
    return r;
}

EBNN_TARGET_AVX512
void ebnn_bitpack_f32_avx512(const float *x, int64_t rows, int c, uint64_t *out)
{
    int words = ebnn_words(c);
    const __m512 zero = _mm512_setzero_ps();
    int64_t r = 0;
    if (c == 16 || c == 32)
        r = pack_narrow_rows(x, rows, c, out);
    for (; r < rows; r++) {
        const float *row = x + r * c;
        uint64_t *o = out + r * words;
        for (int w = 0; w < words; w++) {
            uint64_t bits = 0;
            int base = w * 64;
            for (int j = 0; j < 4; j++) {
                int i = base + 16 * j, left = c - i;
                if (left <= 0)
                    break;
                __mmask16 lm = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
                __m512 v = _mm512_maskz_loadu_ps(lm, row + i);
                uint64_t m = _mm512_mask_cmp_ps_mask(lm, v, zero, _CMP_LT_OQ);
                bits |= m << (16 * j);
            }
            o[w] = bits;
        }
    }
}
#endif

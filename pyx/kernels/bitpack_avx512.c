/* AVX-512 bit-packing: 16 compares straight into a mask register; the tail
 * of a row uses a masked load so no scalar loop is needed. */
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

EBNN_TARGET_AVX512
void ebnn_bitpack_f32_avx512(const float *x, int64_t rows, int c, uint64_t *out)
{
    int words = ebnn_words(c);
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
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

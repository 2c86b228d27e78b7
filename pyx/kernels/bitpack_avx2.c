/* AVX2 bit-packing: 8 compares per instruction, movemask to bits. An ordered
 * compare (not the sign bit) so -0.0 and NaN pack as +1 like the reference. */
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

EBNN_TARGET_AVX2
void ebnn_bitpack_f32_avx2(const float *x, int64_t rows, int c, uint64_t *out)
{
    int words = ebnn_words(c);
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * c;
        uint64_t *o = out + r * words;
        int i = 0;
        for (int w = 0; w < words; w++) {
            uint64_t bits = 0;
            int end = (w + 1) * 64 < c ? (w + 1) * 64 : c;
            for (; i + 8 <= end; i += 8) {
                __m256 v = _mm256_loadu_ps(row + i);
                uint64_t m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ));
                bits |= m << (i % 64);
            }
            for (; i < end; i++)
                bits |= (uint64_t)(row[i] < 0.0f) << (i % 64);
            o[w] = bits;
        }
    }
}
#endif

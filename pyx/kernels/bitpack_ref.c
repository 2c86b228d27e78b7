/* Reference bit-packing: one comparison per value. */
#include "internal.h"

void ebnn_bitpack_f32_ref(const float *x, int64_t rows, int c, uint64_t *out)
{
    int words = ebnn_words(c);
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * c;
        uint64_t *o = out + r * words;
        for (int w = 0; w < words; w++)
            o[w] = 0;
        for (int i = 0; i < c; i++)
            o[i / 64] |= (uint64_t)(row[i] < 0.0f) << (i % 64);
    }
}

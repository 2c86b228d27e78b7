/* Bit-packing front: ISA choice for float input, plain loops for 8-bit
 * (quantized) input, rows split between threads. */
#include "internal.h"

ebnn_bitpack_f32_fn ebnn_bitpack_f32_select(void)
{
    switch (ebnn_isa_get()) {
#if defined(__x86_64__)
    case EBNN_ISA_AVX512:
        return ebnn_bitpack_f32_avx512;
    case EBNN_ISA_AVX2:
        return ebnn_bitpack_f32_avx2;
#endif
#if defined(__ARM_NEON)
    case EBNN_ISA_NEON:
        return ebnn_bitpack_f32_neon;
#endif
    default:
        /* the reference loop is what the compiler vectorizes best portably */
        return ebnn_bitpack_f32_ref;
    }
}

void ebnn_bitpack_f32(const float *x, int64_t rows, int c, uint64_t *out,
                      int tid, int nthreads)
{
    int64_t r0, r1;
    ebnn_split(rows, tid, nthreads, &r0, &r1);
    if (r1 > r0)
        ebnn_bitpack_f32_select()(x + r0 * c, r1 - r0, c, out + r0 * ebnn_words(c));
}

/* One row of 8-bit values: bit = 1 where value < zero_point. */
#define PACK_ROW_8BIT(T)                                                      \
    static void pack_rows_##T(const T *x, int64_t rows, int c, int zp,        \
                              uint64_t *out)                                  \
    {                                                                         \
        int words = ebnn_words(c);                                            \
        for (int64_t r = 0; r < rows; r++) {                                  \
            const T *row = x + r * c;                                         \
            uint64_t *o = out + r * words;                                    \
            for (int w = 0; w < words; w++) {                                 \
                int end = (w + 1) * 64 < c ? 64 : c - w * 64;                 \
                uint64_t bits = 0;                                            \
                for (int b = 0; b < end; b++)                                 \
                    bits |= (uint64_t)((int)row[w * 64 + b] < zp) << b;       \
                o[w] = bits;                                                  \
            }                                                                 \
        }                                                                     \
    }
PACK_ROW_8BIT(uint8_t)
PACK_ROW_8BIT(int8_t)

void ebnn_bitpack_u8(const uint8_t *x, int64_t rows, int c, int zero_point,
                     uint64_t *out, int tid, int nthreads)
{
    int64_t r0, r1;
    ebnn_split(rows, tid, nthreads, &r0, &r1);
    if (r1 > r0)
        pack_rows_uint8_t(x + r0 * c, r1 - r0, c, zero_point, out + r0 * ebnn_words(c));
}

void ebnn_bitpack_i8(const int8_t *x, int64_t rows, int c, int zero_point,
                     uint64_t *out, int tid, int nthreads)
{
    int64_t r0, r1;
    ebnn_split(rows, tid, nthreads, &r0, &r1);
    if (r1 > r0)
        pack_rows_int8_t(x + r0 * c, r1 - r0, c, zero_point, out + r0 * ebnn_words(c));
}

/* Internal interfaces between an op's front file (which handles geometry,
 * padding, threading and the output stage) and its per-ISA inner kernels.
 * One file per op and ISA: <op>_<isa>.c, e.g. bgemm_avx512.c, bgemm_neon.c.
 * Each ISA file compiles to nothing on architectures it does not target. */
#ifndef EDGEBNN_INTERNAL_H
#define EDGEBNN_INTERNAL_H
#include "edgebnn.h"

/* x86 SIMD functions carry their target in an attribute, so one binary runs
 * on any x86-64 and the path is chosen at run time (never -march=native). */
#if defined(__x86_64__)
#define EBNN_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2,popcnt")))
#define EBNN_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx2,fma,bmi,bmi2,popcnt")))
#endif

/* Scratch sizes are rounded up to whole 64-byte cache lines (in 64-bit
 * arithmetic, so a 32-bit size_t cannot wrap while sizing). */
static inline uint64_t ebnn_round64(uint64_t bytes) { return (bytes + 63) & ~(uint64_t)63; }
static inline int ebnn_imin(int a, int b) { return a < b ? a : b; }
static inline int ebnn_imax(int a, int b) { return a > b ? a : b; }

/* Popcount GEMM, the core of binary conv and dense:
 *   c[i*ldc + j] = popcount(a_i XOR b_j) summed over `kwords` 64-bit words,
 *   a_i = a + i*lda (i < m), b_j = b + j*ldb (j < n).
 * lda/ldb in words; no alignment is promised. */
typedef void (*ebnn_bgemm_fn)(int m, int n, int kwords,
                              const uint64_t *a, int64_t lda,
                              const uint64_t *b, int64_t ldb,
                              int32_t *c, int64_t ldc);
void ebnn_bgemm_ref(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                    const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc);
void ebnn_bgemm_generic(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                        const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc);
void ebnn_bgemm_avx2(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                     const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc);
void ebnn_bgemm_avx512(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                       const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc);
void ebnn_bgemm_neon(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                     const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc);

/* Bit-packing of `rows` rows of c floats into words(c) words each
 * (bit = 1 where x < 0; -0.0 and NaN count as not negative). */
typedef void (*ebnn_bitpack_f32_fn)(const float *x, int64_t rows, int c,
                                    uint64_t *out);
void ebnn_bitpack_f32_ref(const float *x, int64_t rows, int c, uint64_t *out);
void ebnn_bitpack_f32_avx2(const float *x, int64_t rows, int c, uint64_t *out);
void ebnn_bitpack_f32_avx512(const float *x, int64_t rows, int c, uint64_t *out);
void ebnn_bitpack_f32_neon(const float *x, int64_t rows, int c, uint64_t *out);

/* Tap-lane direct 3x3 binary conv for in_c 16 / 32 / 64 (NEON builds only;
 * bconv2d_taps_neon.c): output pixels [p0, p1) x filters [fa, fb) of
 * ebnn_bconv2d, output stage included; scratch as sized per thread. */
#if defined(__ARM_NEON)
int ebnn_bconv2d_taps_fits(const ebnn_conv_geom *g);
size_t ebnn_bconv2d_taps_scratch_bytes(const ebnn_conv_geom *g);
void ebnn_bconv2d_taps_neon(const ebnn_conv_geom *g, const uint64_t *in, const uint64_t *w,
                            const ebnn_output *o, void *scratch, int64_t p0, int64_t p1,
                            int fa, int fb);
#endif

ebnn_bgemm_fn ebnn_bgemm_select(void);          /* by ebnn_isa_get() */
ebnn_bitpack_f32_fn ebnn_bitpack_f32_select(void);

#endif

/* Shared helpers of kernel_check.c and its optional op checks
 * (kernel_check_ops.c, built with EBNN_CHECK_ALL once every kernel exists). */
#ifndef KERNEL_CHECK_H
#define KERNEL_CHECK_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s;
} kc_rng;

typedef struct {
    const char *name;
    void (*run)(kc_rng *rng, int isa, int case_no);
    int cases;
} kc_check;

uint64_t kc_next(kc_rng *r);
int kc_int(kc_rng *r, int lo, int hi);
float kc_float(kc_rng *r);
void kc_fill_floats(kc_rng *rng, float *x, int64_t count);
void *kc_alloc(size_t bytes);
int kc_popcount64(uint64_t x);
void kc_result(const char *what, int isa, int ok, const char *detail);
void kc_skip(const char *what, int isa, const char *why);

#ifdef EBNN_CHECK_ALL
void kc_check_bconv2d(kc_rng *rng, int isa, int case_no);
void kc_check_bconv2d_signs(kc_rng *rng, int isa, int case_no);
void kc_check_bconv2d_taps(kc_rng *rng, int isa, int case_no);
void kc_check_bdense(kc_rng *rng, int isa, int case_no);
void kc_check_maxpool_bits(kc_rng *rng, int isa, int case_no);
void kc_check_wconv2d(kc_rng *rng, int isa, int case_no);
void kc_check_wdense(kc_rng *rng, int isa, int case_no);
void kc_check_fconv2d(kc_rng *rng, int isa, int case_no);
void kc_check_fdense(kc_rng *rng, int isa, int case_no);
void kc_check_bitpack_ops(kc_rng *rng, int isa, int case_no);
void kc_check_kmap(kc_rng *rng, int isa, int case_no);
void kc_check_fpool(kc_rng *rng, int isa, int case_no);
#define KC_CHECK_ALL_ROWS                                                  \
    {"bconv2d", kc_check_bconv2d, 60},                                     \
    {"bconv2d signs", kc_check_bconv2d_signs, 24},                         \
    {"bconv2d taps", kc_check_bconv2d_taps, 120},                          \
    {"bdense", kc_check_bdense, 36},                                       \
    {"maxpool_bits", kc_check_maxpool_bits, 30},                           \
    {"wconv2d", kc_check_wconv2d, 30},                                     \
    {"wdense", kc_check_wdense, 24},                                       \
    {"fconv2d", kc_check_fconv2d, 30},                                     \
    {"fdense", kc_check_fdense, 24},                                       \
    {"bitpack ops", kc_check_bitpack_ops, 36},                             \
    {"kmap", kc_check_kmap, 36},                                           \
    {"float pools", kc_check_fpool, 48},
#endif
#endif

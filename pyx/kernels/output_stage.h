/* The output stage of an ebnn_output (see edgebnn.h), shared by the binary
 * and float kernels: apply it to the accumulators of filters [f0, f0+nf) of
 * one output pixel.
 *
 * EBNN_OUT_BITS writes whole 64-bit words: a word only partly covered by
 * [f0, f0+nf) is read-modified-written, so two threads must never own
 * filters of the same word of the same pixel (split filters on multiples of
 * 64, or split over pixels). */
#ifndef EDGEBNN_OUTPUT_STAGE_H
#define EDGEBNN_OUTPUT_STAGE_H
#include "edgebnn.h"

/* acc[i] belongs to filter f0 + i; exact integer dot (binary ops). */
void ebnn_output_apply_i32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const int32_t *acc);
/* acc[i] belongs to filter f0 + i; float sum (float / weights-only ops).
 * EBNN_OUT_INT32 and thresholds are not defined for float accumulators:
 * the thr == NULL rule (v < 0) is used. */
void ebnn_output_apply_f32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const float *acc);

/* Rows: pixels p0 .. p0+np-1, the accumulators of pixel p0+i at
 * acc + i*ldacc (filter f0 first). One call per block of pixels; the ref
 * ISA runs the per-pixel stage above, the others a fused per-ISA pass with
 * bit-identical results. INT32 output may alias acc exactly (same rows). */
void ebnn_output_apply_i32_rows(const ebnn_output *o, int out_c, int64_t p0, int np,
                                int f0, int nf, const int32_t *acc, int64_t ldacc);
void ebnn_output_apply_f32_rows(const ebnn_output *o, int out_c, int64_t p0, int np,
                                int f0, int nf, const float *acc, int64_t ldacc);
/* Binary ops: pc holds popcounts and dot = base - 2*pc, base = bases[i][f]
 * (absolute filter index f) for rows with a base vector, else kreal
 * (bases NULL: kreal for all rows). */
void ebnn_output_apply_pop_rows(const ebnn_output *o, int out_c, int64_t p0, int np,
                                int f0, int nf, const int32_t *pc, int64_t ldpc,
                                int32_t kreal, const int32_t *const *bases);

#endif

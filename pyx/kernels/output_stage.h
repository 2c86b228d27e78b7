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

#endif

/* Output stage shared by every conv / dense front (see edgebnn.h).
 * TEMPORARY COPY in the float-kernels branch: the binary-kernels branch owns
 * this file; the lead keeps one version when merging. */
#ifndef EDGEBNN_OUTPUT_STAGE_H
#define EDGEBNN_OUTPUT_STAGE_H
#include "edgebnn.h"

/* Apply o to filters [f0, f0+nf) of output pixel `pixel`; acc[i] belongs to
 * filter f0+i. For EBNN_OUT_BITS each bit is set or cleared individually and
 * the unused high bits of the last word are cleared by the call that covers
 * the last filter, so calls may come in any filter order; callers must not
 * let two threads write the same pixel's words. */
void ebnn_output_apply_f32(const ebnn_output *o, int out_c, int64_t pixel,
                           int f0, int nf, const float *acc);

#endif

/* edgebnn execution plan: a flat list of steps prepared once per (model,
 * batch size) and run many times inside ONE OpenMP parallel region (a
 * barrier between steps), so a whole inference costs a single fork/join and
 * no Python. Glue only: every step calls a kernel of edgebnn.h or one of the
 * small elementwise loops in plan.c. Buffers are owned by the Python Plan
 * object that fills these structs. */
#ifndef EDGEBNN_PLAN_H
#define EDGEBNN_PLAN_H

#include "edgebnn.h"

enum {
    EBNN_STEP_BCONV = 0,    /* ebnn_bconv2d(g, in, w, o)                       */
    EBNN_STEP_BDENSE,       /* ebnn_bdense(batch, in_c, out_c, in, w, o)       */
    EBNN_STEP_WCONV,
    EBNN_STEP_WDENSE,
    EBNN_STEP_FCONV,
    EBNN_STEP_FDENSE,
    EBNN_STEP_BITPACK,      /* float [rows, in_c] -> packed                    */
    EBNN_STEP_KMAP,         /* ebnn_kmap(g, in, out)                           */
    EBNN_STEP_MEAN_ABS,     /* out[b] = mean |in[b, :in_c]|  (dense K)         */
    EBNN_STEP_MAXPOOL,
    EBNN_STEP_AVGPOOL,
    EBNN_STEP_MAXPOOL_BITS,
    EBNN_STEP_GLOBAL_AVGPOOL, /* batch, hw = rows, in_c                        */
    EBNN_STEP_ADD,          /* out = in + in2, count floats                    */
    EBNN_STEP_CLAMP,        /* out = min(max(in, lo), hi)                      */
    EBNN_STEP_SIGN,         /* out = in < 0 ? -1 : 1                           */
    EBNN_STEP_AFFINE,       /* out = (in - a[c]) * b[c] + d[c]  (batchnorm)    */
    EBNN_STEP_LRN,          /* across channels, radius i0, bias/alpha/beta     */
    EBNN_STEP_SOFTMAX,      /* per row of in_c                                 */
    EBNN_STEP_U8_INPUT,     /* uint8 pixels -> float: ((255-)x*scale - a[c]) / b[c] */
    EBNN_STEP_COUNT
};

typedef struct {
    int kind;
    ebnn_conv_geom g;           /* convs, pools, K map                      */
    int batch, in_c, out_c;     /* dense; rows/channels of elementwise steps */
    int64_t rows;               /* elementwise: rows of in_c values         */
    const void *in, *in2;
    const void *w;
    ebnn_output o;              /* conv/dense output stage (o.out = output) */
    void *out;                  /* output of every other step               */
    void *scratch;              /* thread t uses scratch + t*scratch_bytes  */
    size_t scratch_bytes;
    const float *a, *b, *d;     /* per-channel vectors (AFFINE, U8_INPUT)   */
    float lo, hi;               /* CLAMP bounds; LRN bias, alpha           */
    float beta;                 /* LRN exponent                             */
    int radius;                 /* LRN depth radius; U8_INPUT invert flag   */
} ebnn_step;

/* Run steps[0..nsteps) on nthreads threads (one parallel region). If
 * seconds is not NULL, seconds[i] receives step i's wall time (thread 0's
 * clock, after the barrier that ends the step). Returns 0. */
int ebnn_plan_run(const ebnn_step *steps, int nsteps, int nthreads,
                  double *seconds);

/* One step on its share (tid of nthreads); used by ebnn_plan_run. */
void ebnn_step_run(const ebnn_step *s, int tid, int nthreads);

#endif

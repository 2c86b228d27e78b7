# Declarations of the C kernel API (pyx/kernels/edgebnn.h) for Cython.
from libc.stdint cimport uint8_t, int8_t, int32_t, int64_t, uint64_t

cdef extern from "edgebnn.h" nogil:
    const char *ebnn_isa_name(int isa)
    int ebnn_isa_supported(int isa)
    int ebnn_isa_best()
    int ebnn_isa_get()
    int ebnn_isa_set(int isa)
    int EBNN_ISA_COUNT

    int ebnn_words(int channels)
    void ebnn_bitpack_f32(const float *x, int64_t rows, int c, uint64_t *out, int tid, int nthreads)
    void ebnn_bitpack_u8(const uint8_t *x, int64_t rows, int c, int zero_point, uint64_t *out, int tid, int nthreads)
    void ebnn_bitpack_i8(const int8_t *x, int64_t rows, int c, int zero_point, uint64_t *out, int tid, int nthreads)

    int EBNN_PAD_VALID, EBNN_PAD_ONE, EBNN_PAD_ZERO
    ctypedef struct ebnn_conv_geom:
        int n, in_h, in_w, in_c
        int out_c, kh, kw
        int stride_h, stride_w
        int pad_top, pad_left
        int out_h, out_w
        int pad_mode
    int ebnn_conv_geom_init(ebnn_conv_geom *g, int n, int in_h, int in_w, int in_c, int out_c,
                            int kh, int kw, int stride_h, int stride_w, int same, int pad_mode)

    int EBNN_OUT_INT32, EBNN_OUT_FLOAT, EBNN_OUT_BITS
    ctypedef struct ebnn_output:
        int kind
        const float *mul
        const float *bias
        const float *pixel_scale
        const float *residual
        float clamp_lo, clamp_hi
        const int32_t *thr
        const uint8_t *flip
        void *out
        uint64_t *sign_out
        const float *sign_thr
        const uint8_t *sign_flip
        float *norm_out
        const float *norm_sub
        const float *norm_mul
        const float *norm_add

    size_t ebnn_bconv2d_scratch_bytes(const ebnn_conv_geom *g)
    void ebnn_bconv2d(const ebnn_conv_geom *g, const uint64_t *inp, const uint64_t *w,
                      const ebnn_output *o, void *scratch, int tid, int nthreads)
    size_t ebnn_bdense_scratch_bytes(int batch, int in_c, int out_c)
    void ebnn_bdense(int batch, int in_c, int out_c, const uint64_t *inp, const uint64_t *w,
                     const ebnn_output *o, void *scratch, int tid, int nthreads)
    size_t ebnn_wconv2d_scratch_bytes(const ebnn_conv_geom *g)
    void ebnn_wconv2d(const ebnn_conv_geom *g, const float *inp, const uint64_t *w,
                      const ebnn_output *o, void *scratch, int tid, int nthreads)
    void ebnn_wdense(int batch, int in_c, int out_c, const float *inp, const uint64_t *w,
                     const ebnn_output *o, int tid, int nthreads)
    size_t ebnn_fconv2d_scratch_bytes(const ebnn_conv_geom *g)
    void ebnn_fconv2d(const ebnn_conv_geom *g, const float *inp, const float *w,
                      const ebnn_output *o, void *scratch, int tid, int nthreads)
    void ebnn_fdense(int batch, int in_c, int out_c, const float *inp, const float *w,
                     const ebnn_output *o, int tid, int nthreads)
    void ebnn_kmap(const ebnn_conv_geom *g, const float *inp, float *out, int tid, int nthreads)
    void ebnn_maxpool_f32(const ebnn_conv_geom *g, const float *inp, float *out, int tid, int nthreads)
    void ebnn_avgpool_f32(const ebnn_conv_geom *g, const float *inp, float *out, int tid, int nthreads)
    void ebnn_maxpool_bits(const ebnn_conv_geom *g, const uint64_t *inp, uint64_t *out, int tid, int nthreads)
    void ebnn_global_avgpool_f32(int n, int hw, int c, const float *inp, float *out, int tid, int nthreads)

    ctypedef void (*ebnn_task)(void *ctx, int tid, int nthreads)
    void ebnn_run_parallel(ebnn_task fn, void *ctx, int nthreads)
    int ebnn_max_threads()

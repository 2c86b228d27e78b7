/* Inner kernels of the float-side ops, one implementation per ISA:
 *   wgemm  float x 1-bit weights (weights-only binary conv / dense),
 *   fgemm  float x float with B transposed (float conv over input rows),
 *   fdot   float x float row-by-row dot products (float dense).
 * Files: wgemm_<isa>.c and fgemm_<isa>.c; x86/ARM files compile to nothing
 * elsewhere. The fronts (wconv2d.c, fconv2d.c) pick one by ebnn_isa_get(). */
#ifndef EDGEBNN_WGEMM_H
#define EDGEBNN_WGEMM_H
#include "internal.h"

/* Weights-only multi-filter dot products for npix (1 or 2) output pixels
 * that share their set of in-bounds taps:
 *   acc[j*ldacc + f] = sum_{t<ntaps} sum_{i<c} X(j,t)[i] * (bit i of W(f,t) ? -1 : +1)
 * for f < nf, j < npix, where X(j,t) = x[t] + j*xstep points at c floats
 * and W(f,t) = w + f*ldw + wtap[t] holds words(c) words. Out-of-bounds taps
 * are simply left out (zero padding); bits at positions >= c are ignored.
 * Two pixels share each weight mask (half the mask work per MAC). Every
 * (pixel, filter) sum is formed by the same operation sequence whatever
 * nf and npix are, so splitting filters or pixels between threads never
 * changes a result. */
typedef void (*ebnn_wgemm_fn)(int npix, int64_t xstep, int ntaps,
                              const float *const *x, const int64_t *wtap,
                              int c, const uint64_t *w, int64_t ldw, int nf,
                              float *acc, int64_t ldacc);
#define EBNN_WGEMM_DECL(isa)                                                  \
    void ebnn_wgemm_##isa(int npix, int64_t xstep, int ntaps,                \
                          const float *const *x, const int64_t *wtap, int c, \
                          const uint64_t *w, int64_t ldw, int nf, float *acc, \
                          int64_t ldacc);
EBNN_WGEMM_DECL(ref)
EBNN_WGEMM_DECL(generic)
EBNN_WGEMM_DECL(avx2)
EBNN_WGEMM_DECL(avx512)
EBNN_WGEMM_DECL(neon)
ebnn_wgemm_fn ebnn_wgemm_select(void);

/* Weights-only dot products for layers with few input channels (first
 * layers): filters in the vector lanes instead of channels. tw holds the
 * weight bits transposed, still 1 bit each: row r = t*c + i (tap t, channel
 * i) is a filter mask, tw[r*fw + f/64] bit f%64 = sign bit of filter f; it
 * is built per call from the packed layer by ebnn_wbits_transpose. For one
 * output pixel whose in-bounds terms are val[s] with mask rows row[s]:
 *   acc[f] = sum_{s<ns} val[s] * (bit f of row[s] ? -1 : +1),  f < nf,
 * each filter's sum formed in the same order whatever nf is (the SIMD
 * paths keep two partial sums, even and odd s, to halve the add chain). */
#define EBNN_WGEMMT_MAX_C 16 /* below this many channels the front uses it */
typedef void (*ebnn_wgemmt_fn)(int ns, const float *val, const int64_t *row,
                               const uint64_t *tw, int fw, int nf, float *acc);
#define EBNN_WGEMMT_DECL(isa)                                                 \
    void ebnn_wgemmt_##isa(int ns, const float *val, const int64_t *row,     \
                           const uint64_t *tw, int fw, int nf, float *acc);
EBNN_WGEMMT_DECL(ref)
EBNN_WGEMMT_DECL(generic)
EBNN_WGEMMT_DECL(avx2)
EBNN_WGEMMT_DECL(avx512)
EBNN_WGEMMT_DECL(neon)
ebnn_wgemmt_fn ebnn_wgemmt_select(void);
/* w packed [out_c, taps, words(c)] -> tw [taps*c, words(out_c)] */
void ebnn_wbits_transpose(const uint64_t *w, int out_c, int64_t taps, int c,
                          uint64_t *tw);

/* Float conv GEMM over a two-level K (kernel rows q, then span elements p):
 *   c[i*ldc + j] = sum_{q<kq} sum_{p<span} a[i*lda + q*ldk + p] * b[(q*span + p)*ldb + j]
 * for i < m, j < n; n is a multiple of EBNN_FGEMM_NPAD (callers pad B with
 * zero columns). a rows may overlap (lda = stride*in_c, ldk = one input
 * row): an implicit im2col of kq input rows. Every element is one chain of
 * multiply-adds from +0 in (q, p) order, whatever the tile it falls in; the
 * SIMD paths use fused multiply-add, as does the ref path (fmaf), so they
 * agree bit for bit (the generic path multiplies, then adds). kq = 1 is a
 * plain GEMM with k = span. */
#define EBNN_FGEMM_NPAD 16
typedef void (*ebnn_fgemm_fn)(int m, int n, int kq, int span, const float *a,
                              int64_t lda, int64_t ldk, const float *b,
                              int64_t ldb, float *c, int64_t ldc);
/* c[i*ldc + j] = sum_{p<k} a[i*lda + p] * b[j*ldb + p], i < m, j < n:
 * dot products along contiguous rows (dense layers, no transposed copy). */
typedef void (*ebnn_fdot_fn)(int m, int n, int k, const float *a,
                             int64_t lda, const float *b, int64_t ldb,
                             float *c, int64_t ldc);
#define EBNN_FGEMM_DECL(isa)                                                  \
    void ebnn_fgemm_##isa(int m, int n, int kq, int span, const float *a,   \
                          int64_t lda, int64_t ldk, const float *b,          \
                          int64_t ldb, float *c, int64_t ldc);               \
    void ebnn_fdot_##isa(int m, int n, int k, const float *a, int64_t lda,   \
                         const float *b, int64_t ldb, float *c, int64_t ldc);
EBNN_FGEMM_DECL(ref)
EBNN_FGEMM_DECL(generic)
EBNN_FGEMM_DECL(avx2)
EBNN_FGEMM_DECL(avx512)
EBNN_FGEMM_DECL(neon)
ebnn_fgemm_fn ebnn_fgemm_select(void);
ebnn_fdot_fn ebnn_fdot_select(void);

#endif

/* Execution plan runner and the small non-kernel steps (see plan.h). */
#include <math.h>
#include <time.h>
#include "plan.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Batch norm (x - a) * b + d over rows of c = 4k channels: per group of
 * AFFINE_GROUP channels, the group's a, b, d stay in vector registers
 * across all rows (the plain loop reloads them and pays a vector loop's
 * set-up per row: 16-64 channel rows are short). GCC vectors of 4 floats:
 * NEON on aarch64, SSE on x86-64, the same IEEE operations in the same
 * order (no contraction: -ffp-contract=off). */
typedef float v4f __attribute__((vector_size(16)));
#if defined(__aarch64__)
#define AFFINE_GROUP 32 /* 24 of 32 vector registers */
#else
#define AFFINE_GROUP 16 /* 12 of 16 */
#endif

static inline __attribute__((always_inline)) v4f load4(const float *p)
{
    v4f v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void
affine_group(const float *x, float *out, int64_t rows, int64_t c, const float *a,
             const float *b, const float *d, const int NV)
{
    v4f va[AFFINE_GROUP / 4], vb[AFFINE_GROUP / 4], vd[AFFINE_GROUP / 4];
    for (int v = 0; v < NV; v++) {
        va[v] = load4(a + 4 * v);
        vb[v] = load4(b + 4 * v);
        vd[v] = load4(d + 4 * v);
    }
    for (int64_t r = 0; r < rows; r++, x += c, out += c)
        for (int v = 0; v < NV; v++) {
            v4f y = (load4(x + 4 * v) - va[v]) * vb[v] + vd[v];
            __builtin_memcpy(out + 4 * v, &y, sizeof y);
        }
}

static void affine_rows(const float *x, float *out, int64_t rows, int64_t c, const float *a,
                        const float *b, const float *d)
{
    for (int64_t g = 0; g < c; g += AFFINE_GROUP) {
        int nv = (int)((c - g < AFFINE_GROUP ? c - g : AFFINE_GROUP) / 4);
        switch (nv) { /* constant trip counts: the vectors stay in registers */
#define NV_CASE(n) case n: affine_group(x + g, out + g, rows, c, a + g, b + g, d + g, n); break;
        NV_CASE(1) NV_CASE(2) NV_CASE(3) NV_CASE(4)
#if AFFINE_GROUP > 16
        NV_CASE(5) NV_CASE(6) NV_CASE(7) NV_CASE(8)
#endif
#undef NV_CASE
        }
    }
}


#if defined(__x86_64__)
#include <immintrin.h>
#include "internal.h"
/* mean |x| sums |x| in double, one value after the other (the order is the
 * definition). That sum is often exact: every nonzero |x| is a multiple of
 * 2^(emin-23) (emin: the smallest one's exponent, subnormals as -126), and
 * with non-negative terms every partial sum, in any order, lies below the
 * total T; if T < 2^(emin+30), all of them are integers below 2^53 times
 * 2^(emin-23): exact in double, so a vector sum in any order gives the same
 * bits as the one-by-one sum. The vector sum S itself is within a factor
 * (1 + 2^-21) of T (c < 2^31 terms), hence the test S <= 2^(emin+30) *
 * (1 - 2^-20). Returns 0 (the caller sums one by one) when it fails, and
 * for inf/NaN. (LeNet's 3136 pooled features: ~99% of inputs pass.) */
EBNN_TARGET_AVX512 static int abs_sum_exact_avx512(const float *x, int64_t c, double *sum)
{
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    __m512i hi = _mm512_setzero_si512(), lo = magnitude;
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < c; i += 16) {
        __mmask16 m = c - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c - i)) - 1);
        __m512i v = _mm512_and_si512(_mm512_maskz_loadu_epi32(m, x + i), magnitude);
        hi = _mm512_max_epu32(hi, v);
        lo = _mm512_mask_min_epu32(lo, m & _mm512_test_epi32_mask(v, v), lo, v);
        __m512 f = _mm512_castsi512_ps(v);
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(f)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
                                   _mm512_castps_pd(f), 1))));
    }
    uint32_t top = (uint32_t)_mm512_reduce_max_epu32(hi), low = (uint32_t)_mm512_reduce_min_epu32(lo);
    if (top >= 0x7f800000u || c >= ((int64_t)1 << 31))
        return 0;
    if (top == 0) {
        *sum = 0.0;
        return 1;
    }
    int emin = (int)(low >> 23 ? low >> 23 : 1) - 127;
    double s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    if (s > ldexp(1.0 - ldexp(1.0, -20), emin + 30))
        return 0;
    *sum = s;
    return 1;
}
#endif

static void elementwise(const ebnn_step *s, int tid, int nthreads)
{
    int64_t begin, end, c = s->in_c;
    ebnn_split(s->rows, tid, nthreads, &begin, &end);
    const float *restrict x = s->in, *restrict y = s->in2;
    float *restrict out = s->out;
    switch (s->kind) {
    case EBNN_STEP_ADD:
        for (int64_t i = begin * c; i < end * c; i++)
            out[i] = x[i] + y[i];
        break;
    case EBNN_STEP_CLAMP: {
        /* compare-select (not fminf/fmaxf) vectorizes and keeps NaN as NaN */
        const float lo = s->lo, hi = s->hi;
        for (int64_t i = begin * c; i < end * c; i++) {
            float v = x[i];
            out[i] = v < lo ? lo : (v > hi ? hi : v);
        }
        break;
    }
    case EBNN_STEP_SIGN:
        for (int64_t i = begin * c; i < end * c; i++)
            out[i] = x[i] < 0.0f ? -1.0f : 1.0f;
        break;
    case EBNN_STEP_AFFINE: {    /* same operation order as the numpy oracle */
        /* restrict copies of the parameters: through `s` the compiler must
         * assume a store to out may change them, and would not vectorize */
        const float *restrict a = s->a, *restrict b = s->b, *restrict d = s->d;
        if (c % 4 == 0) {
            affine_rows(x + begin * c, out + begin * c, end - begin, c, a, b, d);
            break;
        }
        for (int64_t r = begin; r < end; r++) {
            const float *restrict xr = x + r * c;
            float *restrict o = out + r * c;
            for (int64_t k = 0; k < c; k++)
                o[k] = (xr[k] - a[k]) * b[k] + d[k];
        }
        break;
    }
    case EBNN_STEP_MEAN_ABS:
        for (int64_t r = begin; r < end; r++) {
            double sum = 0.0;
#if defined(__x86_64__)
            if (!(ebnn_isa_get() == EBNN_ISA_AVX512 && abs_sum_exact_avx512(x + r * c, c, &sum)))
#endif
            {
                sum = 0.0;
                for (int64_t k = 0; k < c; k++)
                    sum += fabsf(x[r * c + k]);
            }
            out[r] = (float)(sum / (double)c);
        }
        break;
    case EBNN_STEP_SOFTMAX:
        for (int64_t r = begin; r < end; r++) {
            const float *row = x + r * c;
            float *o = out + r * c, top = row[0], sum = 0.0f;
            for (int64_t k = 1; k < c; k++)
                top = fmaxf(top, row[k]);
            for (int64_t k = 0; k < c; k++)
                sum += (o[k] = expf(row[k] - top));
            for (int64_t k = 0; k < c; k++)
                o[k] /= sum;
        }
        break;
    case EBNN_STEP_LRN:         /* rows are pixels, c channels */
        for (int64_t r = begin; r < end; r++) {
            const float *row = x + r * c;
            for (int64_t k = 0; k < c; k++) {
                float ssum = 0.0f;
                for (int64_t j = k - s->radius; j <= k + s->radius; j++)
                    if (j >= 0 && j < c)
                        ssum += row[j] * row[j];
                out[r * c + k] = row[k] / powf(s->lo + s->hi * ssum, s->beta);
            }
        }
        break;
    case EBNN_STEP_U8_INPUT: {
        const uint8_t *restrict p = s->in;
        const float *restrict a = s->a, *restrict b = s->b;
        const float scale = s->lo;
        const int invert = s->radius != 0;
        for (int64_t r = begin; r < end; r++)
            for (int64_t k = 0; k < c; k++) {
                float v = (float)p[r * c + k];
                if (invert)
                    v = 255.0f - v;
                out[r * c + k] = (v * scale - a[k]) / b[k];
            }
        break;
    }
    }
}

void ebnn_step_run(const ebnn_step *s, int tid, int nthreads)
{
    /* kernels take the first thread's scratch block and offset it by tid */
    switch (s->kind) {
    case EBNN_STEP_BCONV:
        ebnn_bconv2d(&s->g, s->in, s->w, &s->o, s->scratch, tid, nthreads);
        break;
    case EBNN_STEP_BDENSE:
        ebnn_bdense(s->batch, s->in_c, s->out_c, s->in, s->w, &s->o, s->scratch,
                    tid, nthreads);
        break;
    case EBNN_STEP_WCONV:
        ebnn_wconv2d(&s->g, s->in, s->w, &s->o, s->scratch, tid, nthreads);
        break;
    case EBNN_STEP_WDENSE:
        ebnn_wdense(s->batch, s->in_c, s->out_c, s->in, s->w, &s->o, tid, nthreads);
        break;
    case EBNN_STEP_FCONV:
        ebnn_fconv2d(&s->g, s->in, s->w, &s->o, s->scratch, tid, nthreads);
        break;
    case EBNN_STEP_FDENSE:
        ebnn_fdense(s->batch, s->in_c, s->out_c, s->in, s->w, &s->o, tid, nthreads);
        break;
    case EBNN_STEP_BITPACK:
        ebnn_bitpack_f32(s->in, s->rows, s->in_c, s->out, tid, nthreads);
        break;
    case EBNN_STEP_KMAP:
        ebnn_kmap(&s->g, s->in, s->out, tid, nthreads);
        break;
    case EBNN_STEP_MAXPOOL:
        ebnn_maxpool_f32(&s->g, s->in, s->out, tid, nthreads);
        break;
    case EBNN_STEP_AVGPOOL:
        ebnn_avgpool_f32(&s->g, s->in, s->out, tid, nthreads);
        break;
    case EBNN_STEP_MAXPOOL_BITS:
        ebnn_maxpool_bits(&s->g, s->in, s->out, tid, nthreads);
        break;
    case EBNN_STEP_GLOBAL_AVGPOOL:
        ebnn_global_avgpool_f32(s->batch, (int)s->rows, s->in_c, s->in, s->out, tid,
                                nthreads);
        break;
    default:
        elementwise(s, tid, nthreads);
    }
}

static void run_team(const ebnn_step *steps, int nsteps, int tid, int nthreads,
                     double *seconds)
{
    double t0 = seconds && tid == 0 ? now_seconds() : 0.0;
    for (int i = 0; i < nsteps; i++) {
        ebnn_step_run(&steps[i], tid, nthreads);
#ifdef _OPENMP
        if (nthreads > 1) {
#pragma omp barrier
        }
#endif
        if (seconds && tid == 0) {
            double t1 = now_seconds();
            seconds[i] = t1 - t0;
            t0 = t1;
        }
    }
}

int ebnn_plan_run(const ebnn_step *steps, int nsteps, int nthreads, double *seconds)
{
    if (nthreads <= 1) {
        run_team(steps, nsteps, 0, 1, seconds);
        return 0;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads)
    run_team(steps, nsteps, omp_get_thread_num(), omp_get_num_threads(), seconds);
#else
    for (int i = 0; i < nsteps; i++)
        for (int t = 0; t < nthreads; t++)
            ebnn_step_run(&steps[i], t, nthreads);
    if (seconds)
        for (int i = 0; i < nsteps; i++)
            seconds[i] = 0.0;
#endif
    return 0;
}

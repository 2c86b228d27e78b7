/* Standalone check + benchmark + instruction-count driver for the edgebnn C
 * kernels (no Python), built from the same kernel sources as the extension.
 *
 *   kernel_check [check] [seed]        every kernel x every ISA this build and
 *                                      CPU support vs a plain C reference
 *                                      carried here; last line "N passed, M
 *                                      failed"; exit 1 on any failure
 *   kernel_check bench [isa]           binary MACs/s of the popcount GEMMs
 *                                      196x256x2304 and 784x512x4608
 *   kernel_check count M N K CALLS [isa]
 *                                      CALLS popcount GEMM calls of one shape
 *                                      (K in bits, multiple of 64), for the
 *                                      armcount qemu plugin
 *
 * Kernels are referenced through weak symbols, so the program links with
 * whatever kernel files exist; a kernel that is not built is reported as
 * skipped, never counted as passed. */
#define _POSIX_C_SOURCE 200112L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kernel_check.h"

/* ------------------------------------------------------------ weak refs */
#pragma weak ebnn_bgemm_ref
#pragma weak ebnn_bgemm_generic
#pragma weak ebnn_bgemm_avx2
#pragma weak ebnn_bgemm_avx512
#pragma weak ebnn_bgemm_neon
#pragma weak ebnn_bitpack_f32_ref
#pragma weak ebnn_bitpack_f32_avx2
#pragma weak ebnn_bitpack_f32_avx512
#pragma weak ebnn_bitpack_f32_neon

static ebnn_bgemm_fn bgemm_of(int isa)
{
    switch (isa) {
    case EBNN_ISA_REF: return ebnn_bgemm_ref;
    case EBNN_ISA_GENERIC: return ebnn_bgemm_generic;
    case EBNN_ISA_AVX2: return ebnn_bgemm_avx2;
    case EBNN_ISA_AVX512: return ebnn_bgemm_avx512;
    case EBNN_ISA_NEON: return ebnn_bgemm_neon;
    default: return NULL;
    }
}

static ebnn_bitpack_f32_fn bitpack_of(int isa)
{
    switch (isa) {
    case EBNN_ISA_REF: return ebnn_bitpack_f32_ref;
    case EBNN_ISA_AVX2: return ebnn_bitpack_f32_avx2;
    case EBNN_ISA_AVX512: return ebnn_bitpack_f32_avx512;
    case EBNN_ISA_NEON: return ebnn_bitpack_f32_neon;
    default: return NULL;
    }
}

/* ---------------------------------------------------------------- PRNG */
uint64_t kc_next(kc_rng *r)
{
    /* splitmix64: tiny, good enough, identical on every target */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int kc_int(kc_rng *r, int lo, int hi) /* inclusive */
{
    return lo + (int)(kc_next(r) % (uint64_t)(hi - lo + 1));
}

float kc_float(kc_rng *r) /* uniform in [-1, 1) */
{
    return (float)((double)(kc_next(r) >> 11) / 4503599627370496.0 - 1.0);
}

void *kc_alloc(size_t bytes)
{
    /* 64-byte aligned, as the API asks of scratch */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

/* popcount without builtins: the reference must not share code with the
 * kernels it checks */
int kc_popcount64(uint64_t x)
{
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

/* -------------------------------------------------------- bookkeeping */
static int n_passed, n_failed, n_skipped;

void kc_result(const char *what, int isa, int ok, const char *detail)
{
    if (ok) {
        n_passed++;
    } else {
        n_failed++;
        printf("FAIL %s [%s] %s\n", what, ebnn_isa_name(isa), detail);
    }
}

void kc_skip(const char *what, int isa, const char *why)
{
    n_skipped++;
    printf("skip %s [%s]: %s\n", what, ebnn_isa_name(isa), why);
}

/* --------------------------------------------------------- bgemm check */
static void ref_bgemm(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                      const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            int32_t s = 0;
            for (int k = 0; k < kwords; k++)
                s += kc_popcount64(a[i * lda + k] ^ b[j * ldb + k]);
            c[i * ldc + j] = s;
        }
}

/* One random shape; m/n around the tile sizes, kwords 0..40 plus a long
 * one crossing the u16 accumulator blocking of the NEON kernel. Strides are
 * larger than kwords and the pointers unaligned, as the contract allows. */
static void run_bgemm_case(kc_rng *rng, int isa, int case_no, int m, int n, int kwords);

static void check_bgemm(kc_rng *rng, int isa, int case_no)
{
    int m = kc_int(rng, 1, 21), n = kc_int(rng, 1, 13);
    int kwords = case_no < 41 ? case_no : kc_int(rng, 0, 40);
    if (case_no == 41 || case_no == 42)
        kwords = 1020 * (case_no - 40) + kc_int(rng, 1, 9); /* > 1 K block */
    run_bgemm_case(rng, isa, case_no, m, n, kwords);
}

/* every m 1..25 x n 1..9 (each row/filter tile shape and edge), K cycling
 * through the loop/tail combinations */
static void check_bgemm_sweep(kc_rng *rng, int isa, int case_no)
{
    static const int kws[] = {1, 2, 3, 4, 5, 7, 8, 9, 11, 16, 17, 36};
    run_bgemm_case(rng, isa, case_no, 1 + case_no % 25, 1 + case_no / 25 % 9,
                   kws[case_no % (sizeof kws / sizeof *kws)]);
}

static void run_bgemm_case(kc_rng *rng, int isa, int case_no, int m, int n, int kwords)
{
    ebnn_bgemm_fn fn = bgemm_of(isa);
    if (!fn) {
        if (case_no == 0)
            kc_skip("bgemm", isa, "kernel not built");
        return;
    }
    int64_t lda = kwords + kc_int(rng, 0, 3), ldb = kwords + kc_int(rng, 0, 3);
    int64_t ldc = n + kc_int(rng, 0, 5);
    int density = kc_int(rng, 0, 3); /* all-zero, all-one, sparse, random */
    uint64_t *abuf = kc_alloc((m * lda + 1) * 8), *bbuf = kc_alloc((n * ldb + 1) * 8);
    uint64_t *a = abuf + (case_no & 1), *b = bbuf + ((case_no >> 1) & 1);
    for (int64_t i = 0; i < m * lda; i++) {
        uint64_t x = kc_next(rng);
        a[i] = density == 0 ? 0 : density == 1 ? ~0ull : density == 2 ? x & kc_next(rng) & kc_next(rng) : x;
    }
    for (int64_t i = 0; i < n * ldb; i++)
        b[i] = density == 1 ? 0 : kc_next(rng);
    int32_t *want = kc_alloc(m * ldc * 4), *got = kc_alloc(m * ldc * 4);
    for (int64_t i = 0; i < m * ldc; i++)
        want[i] = got[i] = -7; /* padding columns must stay untouched */
    ref_bgemm(m, n, kwords, a, lda, b, ldb, want, ldc);
    fn(m, n, kwords, a, lda, b, ldb, got, ldc);
    char detail[160] = "";
    int ok = 1;
    for (int64_t i = 0; i < m * ldc && ok; i++)
        if (want[i] != got[i]) {
            ok = 0;
            snprintf(detail, sizeof detail,
                     "m=%d n=%d kwords=%d lda=%lld ldb=%lld ldc=%lld: c[%lld] = %d, want %d",
                     m, n, kwords, (long long)lda, (long long)ldb, (long long)ldc,
                     (long long)i, got[i], want[i]);
        }
    kc_result("bgemm", isa, ok, detail);
    free(abuf); free(bbuf); free(want); free(got);
}

/* ------------------------------------------------------ bitpack check */
static void ref_bitpack(const float *x, int64_t rows, int c, uint64_t *out)
{
    int words = ebnn_words(c);
    for (int64_t r = 0; r < rows; r++)
        for (int w = 0; w < words; w++) {
            uint64_t bits = 0;
            for (int k = 0; k < 64 && w * 64 + k < c; k++)
                if (x[r * c + w * 64 + k] < 0.0f) /* false for -0.0 and NaN */
                    bits |= 1ull << k;
            out[r * words + w] = bits;
        }
}

static const int awkward_channels[] = {1, 3, 63, 64, 65, 200, 127, 128, 129, 256, 31, 33,
                                        16, 32, 15, 17, 48, 80};

/* floats with the values that trip sign tests: +-0, NaN, +-inf, denormals */
void kc_fill_floats(kc_rng *rng, float *x, int64_t count)
{
    static const float special[] = {0.0f, -0.0f, NAN, -NAN, INFINITY, -INFINITY,
                                    1e-45f, -1e-45f, -1e-38f, 1.0f, -1.0f};
    for (int64_t i = 0; i < count; i++)
        x[i] = kc_int(rng, 0, 7) == 0
                   ? special[kc_int(rng, 0, sizeof special / sizeof *special - 1)]
                   : kc_float(rng);
}

static void check_bitpack(kc_rng *rng, int isa, int case_no)
{
    ebnn_bitpack_f32_fn fn = bitpack_of(isa);
    if (!fn) {
        if (case_no == 0)
            kc_skip("bitpack_f32", isa, isa == EBNN_ISA_GENERIC
                                            ? "no per-ISA kernel for generic"
                                            : "kernel not built");
        return;
    }
    int nch = sizeof awkward_channels / sizeof *awkward_channels;
    int c = case_no < nch ? awkward_channels[case_no] : kc_int(rng, 1, 300);
    int64_t rows = kc_int(rng, 1, 9);
    int words = ebnn_words(c);
    float *xbuf = kc_alloc((rows * c + 1) * 4);
    float *x = xbuf + (case_no & 1); /* unaligned input */
    kc_fill_floats(rng, x, rows * c);
    uint64_t *want = kc_alloc(rows * words * 8), *got = kc_alloc(rows * words * 8);
    for (int64_t i = 0; i < rows * words; i++)
        got[i] = 0xA5A5A5A5A5A5A5A5ull; /* every word must be written */
    ref_bitpack(x, rows, c, want);
    fn(x, rows, c, got);
    char detail[128] = "";
    int ok = 1;
    for (int64_t i = 0; i < rows * words && ok; i++)
        if (want[i] != got[i]) {
            ok = 0;
            snprintf(detail, sizeof detail, "rows=%lld c=%d: word %lld = %016llx, want %016llx",
                     (long long)rows, c, (long long)i, (unsigned long long)got[i],
                     (unsigned long long)want[i]);
        }
    kc_result("bitpack_f32", isa, ok, detail);
    free(xbuf); free(want); free(got);
}

/* --------------------------------------------------------- the table */
/* Adding a kernel = one function + one row. Each function runs one random
 * case for one ISA (it may kc_skip); `cases` cases run per supported ISA. */
static const kc_check checks[] = {
    {"bgemm", check_bgemm, 60},
    {"bgemm sweep", check_bgemm_sweep, 225},
    {"bitpack_f32", check_bitpack, 40},
#ifdef EBNN_CHECK_ALL
    KC_CHECK_ALL_ROWS
#endif
};

static int run_checks(uint64_t seed)
{
    for (unsigned t = 0; t < sizeof checks / sizeof *checks; t++) {
        for (int isa = 0; isa < EBNN_ISA_COUNT; isa++) {
            if (!ebnn_isa_supported(isa) || ebnn_isa_set(isa) != 0) {
                kc_skip(checks[t].name, isa, "ISA not supported by this build/CPU");
                continue;
            }
            /* same seed per ISA: every ISA sees the same shapes */
            kc_rng rng = {seed ^ (0x1000003ull * (t + 1))};
            for (int i = 0; i < checks[t].cases; i++)
                checks[t].run(&rng, isa, i);
        }
    }
    if (!n_passed && !n_failed)
        printf("nothing was checked: no kernel of this build runs here\n");
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : (n_passed ? 0 : 3);
}

/* ------------------------------------------------------- bench / count */
static int isa_by_name(const char *s)
{
    for (int i = 0; i < EBNN_ISA_COUNT; i++)
        if (!strcmp(s, ebnn_isa_name(i)))
            return i;
    return -1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
    int m, n, kwords;
    uint64_t *a, *b;
    int32_t *c;
} gemm_case;

static gemm_case gemm_setup(int m, int n, int kbits)
{
    gemm_case g = {m, n, kbits / 64, NULL, NULL, NULL};
    kc_rng rng = {42};
    g.a = kc_alloc((size_t)m * g.kwords * 8);
    g.b = kc_alloc((size_t)n * g.kwords * 8);
    g.c = kc_alloc((size_t)m * n * 4);
    for (size_t i = 0; i < (size_t)m * g.kwords; i++)
        g.a[i] = kc_next(&rng);
    for (size_t i = 0; i < (size_t)n * g.kwords; i++)
        g.b[i] = kc_next(&rng);
    return g;
}

static int bench(int argc, char **argv)
{
    static const int shapes[][3] = {{196, 256, 2304}, {784, 512, 4608}};
    int only = argc > 2 ? isa_by_name(argv[2]) : -1;
    printf("%-8s %-16s %10s %12s\n", "isa", "m x n x K", "ms/call", "GMAC/s");
    for (int isa = 0; isa < EBNN_ISA_COUNT; isa++) {
        ebnn_bgemm_fn fn = bgemm_of(isa);
        if ((only >= 0 && isa != only) || !fn || !ebnn_isa_supported(isa))
            continue;
        for (unsigned s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            gemm_case g = gemm_setup(shapes[s][0], shapes[s][1], shapes[s][2]);
            fn(g.m, g.n, g.kwords, g.a, g.kwords, g.b, g.kwords, g.c, g.n); /* warm */
            int calls = 0;
            double t0 = now(), t;
            do {
                fn(g.m, g.n, g.kwords, g.a, g.kwords, g.b, g.kwords, g.c, g.n);
                calls++;
            } while ((t = now() - t0) < 0.5);
            double macs = (double)g.m * g.n * g.kwords * 64;
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%dx%d", g.m, g.n, g.kwords * 64);
            printf("%-8s %-16s %10.3f %12.2f\n", ebnn_isa_name(isa), shape,
                   1e3 * t / calls, macs * calls / t / 1e9);
            free(g.a); free(g.b); free(g.c);
        }
    }
    return 0;
}

static int count(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s count M N K CALLS [isa]\n", argv[0]);
        return 2;
    }
    int m = atoi(argv[2]), n = atoi(argv[3]), k = atoi(argv[4]), calls = atoi(argv[5]);
    int isa = argc > 6 ? isa_by_name(argv[6]) : EBNN_ISA_NEON;
    ebnn_bgemm_fn fn = isa >= 0 ? bgemm_of(isa) : NULL;
    if (m <= 0 || n <= 0 || k <= 0 || k % 64 || calls < 0 || !fn) {
        fprintf(stderr, "count: bad shape or kernel not built\n");
        return 2;
    }
    gemm_case g = gemm_setup(m, n, k);
    for (int i = 0; i < calls; i++)
        fn(g.m, g.n, g.kwords, g.a, g.kwords, g.b, g.kwords, g.c, g.n);
    /* print a checksum so the calls cannot be optimised away */
    int64_t sum = 0;
    for (int i = 0; i < m * n; i++)
        sum += g.c[i];
    printf("calls=%d sum=%lld\n", calls, (long long)sum);
    return 0;
}

#pragma weak ebnn_bconv2d
#pragma weak ebnn_bconv2d_scratch_bytes

/* CALLS ebnn_bconv2d calls of one 3x3 shape (int32 output, 1 thread) */
static int count_conv(int argc, char **argv)
{
    if (argc < 9 || !ebnn_bconv2d) {
        fprintf(stderr, "usage: %s conv N HW C OC STRIDE PAD(valid|one|zero) CALLS [isa]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[2]), hw = atoi(argv[3]), c = atoi(argv[4]), oc = atoi(argv[5]);
    int s = atoi(argv[6]), calls = atoi(argv[8]);
    int pad = !strcmp(argv[7], "one") ? EBNN_PAD_ONE : !strcmp(argv[7], "zero") ? EBNN_PAD_ZERO
                                                                               : EBNN_PAD_VALID;
    int isa = argc > 9 ? isa_by_name(argv[9]) : EBNN_ISA_NEON;
    ebnn_conv_geom g;
    if (isa < 0 || ebnn_isa_set(isa) ||
        ebnn_conv_geom_init(&g, n, hw, hw, c, oc, 3, 3, s, s, pad != EBNN_PAD_VALID, pad)) {
        fprintf(stderr, "conv: bad shape or isa\n");
        return 2;
    }
    kc_rng rng = {42};
    int64_t in_words = (int64_t)n * hw * hw * ebnn_words(c), w_words = (int64_t)oc * 9 * ebnn_words(c);
    int64_t outs = (int64_t)n * g.out_h * g.out_w * oc;
    uint64_t *in = kc_alloc(in_words * 8), *w = kc_alloc(w_words * 8);
    uint64_t mask = c % 64 ? (1ull << (c % 64)) - 1 : ~0ull;
    for (int64_t i = 0; i < in_words; i++)
        in[i] = kc_next(&rng) & mask;
    for (int64_t i = 0; i < w_words; i++)
        w[i] = kc_next(&rng) & mask;
    int32_t *out = kc_alloc(outs * 4);
    void *scratch = kc_alloc(ebnn_bconv2d_scratch_bytes(&g));
    ebnn_output o = {.kind = EBNN_OUT_INT32, .clamp_lo = -INFINITY, .clamp_hi = INFINITY,
                     .out = out};
    for (int i = 0; i < calls; i++)
        ebnn_bconv2d(&g, in, w, &o, scratch, 0, 1);
    int64_t sum = 0;
    for (int64_t i = 0; i < outs; i++)
        sum += out[i] * (i % 7 + 1);
    printf("calls=%d macs=%lld sum=%lld\n", calls, (long long)outs * 9 * c, (long long)sum);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "check";
    if (!strcmp(mode, "bench"))
        return bench(argc, argv);
    if (!strcmp(mode, "count"))
        return count(argc, argv);
    if (!strcmp(mode, "conv"))
        return count_conv(argc, argv);
    if (!strcmp(mode, "check"))
        return run_checks(argc > 2 ? strtoull(argv[2], NULL, 0) : 12345);
    fprintf(stderr, "usage: %s [check [seed] | bench [isa] | count M N K CALLS [isa]]\n", argv[0]);
    return 2;
}

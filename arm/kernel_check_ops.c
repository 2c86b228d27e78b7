/* Checks of the public binary ops (edgebnn.h) against the float semantics,
 * for kernel_check built with CHECK_ALL=1 (EBNN_CHECK_ALL): bconv2d (valid,
 * same with +1 padding, same with zero padding), bdense and maxpool_bits,
 * with every output stage (int32, float with scales/bias/residual/clamp,
 * bits by integer threshold + flip or by float sign, float + its packed
 * signs (sign_out, by zero or float threshold + flip)), run as 1..4 "threads"
 * (each tid's share called in turn: results must not depend on the split).
 * The reference works on unpacked +-1 values, never on the kernels' code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgebnn.h"
#include "kernel_check.h"

#pragma weak ebnn_bconv2d
#pragma weak ebnn_bconv2d_scratch_bytes
#pragma weak ebnn_bdense
#pragma weak ebnn_bdense_scratch_bytes
#pragma weak ebnn_maxpool_bits

static const int channels[] = {1, 3, 63, 64, 65, 200, 2, 31, 128, 129};
#define NCH ((int)(sizeof channels / sizeof *channels))

/* random +-1 values (as signs: 1 means -1) and their packing */
static uint8_t *random_signs(kc_rng *rng, int64_t count)
{
    uint8_t *s = kc_alloc(count);
    for (int64_t i = 0; i < count; i++)
        s[i] = kc_next(rng) & 1;
    return s;
}

static uint64_t *pack_signs(const uint8_t *s, int64_t rows, int c)
{
    int words = ebnn_words(c);
    uint64_t *p = kc_alloc(rows * words * 8 + 8);
    memset(p, 0, rows * words * 8);
    for (int64_t r = 0; r < rows; r++)
        for (int k = 0; k < c; k++)
            if (s[r * c + k])
                p[r * words + k / 64] |= 1ull << (k % 64);
    return p;
}

/* ---------------------------------------------------- output stages --- */
typedef struct {
    ebnn_output o;
    float *mul, *bias, *pixel_scale, *residual;
    int32_t *thr;
    uint8_t *flip;
    uint64_t *sign_out;
    float *sign_thr;
    uint8_t *sign_flip;
    float *norm_out, *norm_vec; /* norm_vec: sub, mul, add [out_c] each */
} stage;

#define STAGE_KINDS 6

/* kind 0: int32; 1: float, plain; 2: float, every term and clamps;
 * 3: bits by threshold + flip; 4: bits by float sign; 5: float, every term
 * but clamps, and sign_out (y < 0, thresholds, or thresholds + flips: the
 * Bi-Real residual stream feeding the next binary conv), half the time of a
 * batch norm of y (norm_out) */
static stage make_stage(kc_rng *rng, int kind, int64_t pixels, int out_c, int k)
{
    stage s;
    memset(&s, 0, sizeof s);
    s.o.clamp_lo = -INFINITY;
    s.o.clamp_hi = INFINITY;
    s.o.kind = kind == 0 ? EBNN_OUT_INT32 : kind <= 2 || kind == 5 ? EBNN_OUT_FLOAT : EBNN_OUT_BITS;
    if (kind == 2 || kind == 4 || kind == 5) {
        s.mul = kc_alloc(out_c * 4);
        s.bias = kc_alloc(out_c * 4);
        s.pixel_scale = kc_alloc(pixels * 4);
        for (int f = 0; f < out_c; f++) {
            s.mul[f] = 0.05f + (kc_float(rng) + 1.0f);
            s.bias[f] = kc_float(rng) * k * 0.3f;
        }
        for (int64_t p = 0; p < pixels; p++)
            s.pixel_scale[p] = 0.5f + (kc_float(rng) + 1.0f);
        s.o.mul = s.mul;
        s.o.bias = s.bias;
        s.o.pixel_scale = s.pixel_scale;
    }
    if (kind == 5) {
        int mode = kc_int(rng, 0, 2);
        s.sign_out = kc_alloc(pixels * ebnn_words(out_c) * 8);
        memset(s.sign_out, 0xA5, pixels * ebnn_words(out_c) * 8); /* stale bits must go */
        s.o.sign_out = s.sign_out;
        if (mode) {
            s.sign_thr = kc_alloc(out_c * 4);
            s.sign_flip = kc_alloc(out_c);
            for (int f = 0; f < out_c; f++) {
                s.sign_thr[f] = kc_float(rng) * k * 0.5f;
                s.sign_flip[f] = kc_next(rng) & 1;
            }
            s.sign_thr[0] = -0.0f;
            s.o.sign_thr = s.sign_thr;
            s.o.sign_flip = mode == 2 ? s.sign_flip : NULL;
        }
        if (kc_int(rng, 0, 1)) { /* a batch norm between y and the signs */
            s.norm_out = kc_alloc(pixels * out_c * 4);
            s.norm_vec = kc_alloc(3 * out_c * 4);
            for (int f = 0; f < 3 * out_c; f++)
                s.norm_vec[f] = kc_float(rng) * (f < out_c ? k * 0.3f : 2.0f);
            s.norm_vec[out_c] = 0.0f; /* a zero gamma */
            s.o.norm_out = s.norm_out;
            s.o.norm_sub = s.norm_vec;
            s.o.norm_mul = s.norm_vec + out_c;
            s.o.norm_add = s.norm_vec + 2 * out_c;
        }
    }
    if (kind == 2 || kind == 5) {
        s.residual = kc_alloc(pixels * out_c * 4);
        for (int64_t i = 0; i < pixels * out_c; i++)
            s.residual[i] = kc_float(rng) * 3.0f;
        s.o.residual = s.residual;
    }
    if (kind == 2) {
        s.o.clamp_lo = -0.5f * k;
        s.o.clamp_hi = 0.4f * k;
    }
    if (kind == 3) {
        s.thr = kc_alloc(out_c * 4);
        s.flip = kc_alloc(out_c);
        int flips = kc_int(rng, 0, 3) != 0; /* no flips 1 time in 4: its own fixed-width path */
        for (int f = 0; f < out_c; f++) {
            s.thr[f] = kc_int(rng, -k, k);
            s.flip[f] = flips ? kc_next(rng) & 1 : 0;
        }
        s.o.thr = s.thr;
        s.o.flip = flips ? s.flip : NULL;
    }
    return s;
}

static void free_stage(stage *s)
{
    free(s->mul); free(s->bias); free(s->pixel_scale); free(s->residual);
    free(s->thr); free(s->flip);
    free(s->sign_out); free(s->sign_thr); free(s->sign_flip);
    free(s->norm_out); free(s->norm_vec);
}

static size_t out_bytes(const stage *s, int64_t pixels, int out_c)
{
    return s->o.kind == EBNN_OUT_BITS ? (size_t)pixels * ebnn_words(out_c) * 8
                                      : (size_t)pixels * out_c * 4;
}

/* norm_out and sign_out of pixel p: exactly the formula / rule of
 * edgebnn.h applied to the float output y the kernel stored (so equal
 * floats give equal results on every ISA), unused bits 0 */
static int check_signs(const stage *s, int64_t p, int out_c, const float *y, char *detail,
                       size_t dlen)
{
    if (s->norm_out) {
        const float *z = s->norm_out + p * out_c;
        for (int f = 0; f < out_c; f++) {
            float want = (y[f] - s->o.norm_sub[f]) * s->o.norm_mul[f] + s->o.norm_add[f];
            if (memcmp(&want, &z[f], 4)) {
                snprintf(detail, dlen, "pixel %lld norm %d: got %.9g, want %.9g", (long long)p,
                         f, z[f], want);
                return 0;
            }
        }
        y = z;
    }
    if (!s->sign_out)
        return 1;
    const uint64_t *row = s->sign_out + p * ebnn_words(out_c);
    for (int f = 0; f < ebnn_words(out_c) * 64; f++) {
        int have = (row[f / 64] >> (f % 64)) & 1, want = 0;
        if (f < out_c && !s->o.sign_thr)
            want = y[f] < 0.0f;
        else if (f < out_c)
            want = s->o.sign_flip && s->o.sign_flip[f] ? y[f] > s->o.sign_thr[f]
                                                       : y[f] < s->o.sign_thr[f];
        if (have != want) {
            snprintf(detail, dlen, "pixel %lld sign bit %d: got %d, want %d (y %.9g)",
                     (long long)p, f, have, want, f < out_c ? y[f] : 0.0f);
            return 0;
        }
    }
    return 1;
}

/* Compare the kernel's output with the stage applied to the reference
 * accumulators. mag == NULL: acc is an exact integer dot (int32 output
 * exact, float output to a relative 1e-5). Otherwise acc is a float sum and
 * mag[i] the sum of its terms' magnitudes, which bounds the rounding a
 * kernel's summation order may add (relative 1e-5 of it). Float-sign bits
 * are not judged where v is within that rounding of 0. */
static int compare_stage(const stage *s, const double *acc, const double *mag,
                         int64_t pixels, int out_c, const void *got, char *detail,
                         size_t dlen)
{
    int words = ebnn_words(out_c);
    for (int64_t p = 0; p < pixels; p++) {
        for (int f = 0; f < out_c; f++) {
            int64_t i = p * out_c + f;
            double scale = (s->pixel_scale ? s->pixel_scale[p] : 1.0) * (s->mul ? s->mul[f] : 1.0);
            double v = acc[i] * scale + (s->bias ? s->bias[f] : 0.0) +
                       (s->residual ? s->residual[i] : 0.0);
            /* float32 rounds every intermediate of acc*scale + bias +
             * residual: bound by the terms' magnitudes, not by |v| (they
             * may cancel) */
            double terms = fabs(acc[i] * scale) + (s->bias ? fabs(s->bias[f]) : 0.0) +
                           (s->residual ? fabs(s->residual[i]) : 0.0);
            double tol = 1e-5 * (1.0 + fabs(v) + terms + (mag ? mag[i] * fabs(scale) : 0.0));
            int bad = 0;
            double want = 0, have = 0;
            if (s->o.kind == EBNN_OUT_INT32) {
                want = acc[i];
                have = ((const int32_t *)got)[i];
                bad = want != have;
            } else if (s->o.kind == EBNN_OUT_FLOAT) {
                want = v < s->o.clamp_lo ? s->o.clamp_lo : v > s->o.clamp_hi ? s->o.clamp_hi : v;
                have = ((const float *)got)[i];
                bad = !(fabs(have - want) <= tol);
            } else {
                uint64_t wbits = ((const uint64_t *)got)[p * words + f / 64];
                have = (wbits >> (f % 64)) & 1;
                if (s->thr)
                    want = s->flip[f] ? acc[i] > s->thr[f] : acc[i] < s->thr[f];
                else
                    want = v < 0;
                bad = want != have && (s->thr || fabs(v) > 10 * tol);
            }
            if (bad) {
                snprintf(detail, dlen, "pixel %lld filter %d: got %.9g, want %.9g (acc %.9g)",
                         (long long)p, f, have, want, acc[i]);
                return 0;
            }
        }
        if (s->o.kind == EBNN_OUT_BITS && out_c % 64) { /* unused bits 0 */
            uint64_t last = ((const uint64_t *)got)[p * words + words - 1];
            if (last >> (out_c % 64)) {
                snprintf(detail, dlen, "pixel %lld: unused output bits set", (long long)p);
                return 0;
            }
        }
        if ((s->o.sign_out || s->o.norm_out) && !check_signs(s, p, out_c, (const float *)got + p * out_c,
                                          detail, dlen))
            return 0;
    }
    return 1;
}

/* a random conv geometry: small odd sizes, 1x1 images, stride 2, channels
 * from the awkward list; binary ops may use +1 padding, float ops not */
static int random_geom(kc_rng *rng, ebnn_conv_geom *g, int case_no, int allow_pad_one)
{
    int same = kc_int(rng, 0, 1);
    int pad = !same ? EBNN_PAD_VALID
                    : (allow_pad_one && kc_int(rng, 0, 1)) ? EBNN_PAD_ONE : EBNN_PAD_ZERO;
    int kh = kc_int(rng, 1, 3), kw = kc_int(rng, 1, 3);
    int h = case_no % 5 == 0 ? 1 : kc_int(rng, kh, 7), w = case_no % 5 == 0 ? 1 : kc_int(rng, kw, 7);
    if (!same) { /* valid needs the kernel inside the image */
        kh = kh > h ? h : kh;
        kw = kw > w ? w : kw;
    }
    return ebnn_conv_geom_init(g, kc_int(rng, 1, 3), h, w, channels[case_no % NCH],
                               kc_int(rng, 1, 70), kh, kw, kc_int(rng, 1, 2),
                               kc_int(rng, 1, 2), same, pad);
}

/* narrow binary conv layers (bconv2d's dense-tap and column-band paths):
 * 3x3 / 5x5 kernels over 1..64 channels, rows up to 48 wide */
static int narrow_geom(kc_rng *rng, ebnn_conv_geom *g)
{
    static const int narrow[] = {1, 8, 16, 21, 32, 33, 63, 64};
    int k = kc_int(rng, 0, 1) ? 5 : 3, s = kc_int(rng, 1, 2), same = kc_int(rng, 0, 1);
    int pad = !same ? EBNN_PAD_VALID : kc_int(rng, 0, 1) ? EBNN_PAD_ONE : EBNN_PAD_ZERO;
    int n = kc_int(rng, 1, 2), h = kc_int(rng, k, k + 2), w = kc_int(rng, 30, 48) * s;
    int c = narrow[kc_int(rng, 0, 7)];
    int pick = kc_int(rng, 0, 3); /* 16 / 32 / 64 filters: the fixed-width stage */
    int out_c = pick == 0 ? 16 : pick == 1 ? 32 : pick == 2 ? 64 : kc_int(rng, 1, 40);
    return ebnn_conv_geom_init(g, n, h, w, c, out_c, k, k, s, s, same, pad);
}

static double *to_double(const int32_t *x, int64_t count)
{
    double *d = kc_alloc(count * sizeof *d);
    for (int64_t i = 0; i < count; i++)
        d[i] = x[i];
    return d;
}

/* Odd cases run the thread shares through ebnn_run_parallel (real OpenMP
 * threads in an OPENMP=1 build), even ones call each tid in turn. */
typedef struct {
    const ebnn_conv_geom *g;
    int batch, in_c, out_c;
    const uint64_t *in, *w;
    const ebnn_output *o;
    void *scratch;
} op_call;

static void bconv2d_task(void *ctx, int tid, int nthreads)
{
    const op_call *c = ctx;
    ebnn_bconv2d(c->g, c->in, c->w, c->o, c->scratch, tid, nthreads);
}

static void bdense_task(void *ctx, int tid, int nthreads)
{
    const op_call *c = ctx;
    ebnn_bdense(c->batch, c->in_c, c->out_c, c->in, c->w, c->o, c->scratch, tid, nthreads);
}

static void run_split(ebnn_task fn, op_call *call, int nthreads, int parallel)
{
    if (parallel)
        ebnn_run_parallel(fn, call, nthreads);
    else
        for (int t = 0; t < nthreads; t++)
            fn(call, t, nthreads);
}

/* Every ISA must give the ref ISA's bytes (run_checks gives each ISA the
 * same seed, and ref runs first): a hash of each case's output under ref,
 * compared for the others. Returns 1 if equal (or no ref run yet). */
#define SAME_CASES 256
static int same_as_ref(uint64_t *hashes, int isa, int case_no, const void *out, size_t bytes)
{
    const unsigned char *b = out;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    if (case_no >= SAME_CASES)
        return 1;
    if (isa == EBNN_ISA_REF) {
        hashes[case_no] = h;
        return 1;
    }
    return !hashes[case_no] || hashes[case_no] == h;
}

/* ------------------------------------------------------------ bconv2d */
static int32_t *ref_bconv2d(const ebnn_conv_geom *g, const uint8_t *xs, const uint8_t *ws)
{
    int64_t pixels = (int64_t)g->n * g->out_h * g->out_w;
    int32_t *dot = kc_alloc(pixels * g->out_c * 4);
    for (int n = 0; n < g->n; n++)
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++)
                for (int f = 0; f < g->out_c; f++) {
                    int32_t sum = 0;
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++) {
                            int y = oy * g->stride_h - g->pad_top + ky;
                            int x = ox * g->stride_w - g->pad_left + kx;
                            int inside = y >= 0 && y < g->in_h && x >= 0 && x < g->in_w;
                            if (!inside && g->pad_mode == EBNN_PAD_ZERO)
                                continue; /* 0 * w = 0 */
                            for (int c = 0; c < g->in_c; c++) {
                                int wv = ws[((f * g->kh + ky) * g->kw + kx) * g->in_c + c] ? -1 : 1;
                                int xv = inside ? (xs[((n * g->in_h + y) * g->in_w + x) * g->in_c + c] ? -1 : 1)
                                                : 1; /* EBNN_PAD_ONE */
                                sum += xv * wv;
                            }
                        }
                    dot[((n * g->out_h + oy) * g->out_w + ox) * g->out_c + f] = sum;
                }
    return dot;
}

/* The three bconv2d checks share one case runner; each keeps its own ref
 * ISA hashes. "bconv2d": random shapes (every 4th a narrow layer), every
 * stage kind; "bconv2d signs": narrow layers with stage 5 only (the
 * fixed-width sign_out / norm_out paths); "bconv2d taps": 3x3 convs over
 * 16 / 32 / 64 channels (the NEON tap-lane kernel's shapes), every stage. */
enum { CHECK_PLAIN, CHECK_SIGNS, CHECK_TAPS, BCONV_CHECKS };
static const char *const bconv_check_names[BCONV_CHECKS] = {"bconv2d", "bconv2d signs",
                                                            "bconv2d taps"};

/* taps shapes: 1x1 to 19-wide maps, odd sizes, stride 1 and 2, every
 * padding, batch 1..3, out_c 1..130 (mostly not a multiple of a filter
 * group) */
static int taps_geom(kc_rng *rng, ebnn_conv_geom *g, int case_no)
{
    static const int cs[] = {16, 32, 64};
    int same = case_no % 3 != 0, s = kc_int(rng, 1, 2);
    int pad = !same ? EBNN_PAD_VALID : case_no % 3 == 1 ? EBNN_PAD_ONE : EBNN_PAD_ZERO;
    int lo = same ? 1 : 3, h = case_no % 7 == 0 ? lo : kc_int(rng, lo, 19),
        w = case_no % 11 == 0 ? lo : kc_int(rng, lo, 19);
    int pick = kc_int(rng, 0, 3); /* 65..130: a filter split between threads on tiny maps */
    int out_c = pick == 0 ? 8 * kc_int(rng, 1, 8) : pick == 3 ? kc_int(rng, 65, 130)
                                                              : kc_int(rng, 1, 70);
    return ebnn_conv_geom_init(g, kc_int(rng, 1, 3), h, w, cs[case_no / 3 % 3], out_c, 3, 3,
                               s, s, same, pad);
}

/* one case: random signs, the stage kind, 1..4 thread shares, against the
 * float semantics and the ref ISA's bytes */
static void check_bconv2d(kc_rng *rng, int isa, int case_no, int check)
{
    const char *name = bconv_check_names[check];
    if (!ebnn_bconv2d || !ebnn_bconv2d_scratch_bytes) {
        if (case_no == 0)
            kc_skip(name, isa, "kernel not built");
        return;
    }
    ebnn_conv_geom g;
    int bad = check == CHECK_TAPS ? taps_geom(rng, &g, case_no)
              : check == CHECK_SIGNS || case_no % 4 == 3 ? narrow_geom(rng, &g)
                                                         : random_geom(rng, &g, case_no, 1);
    if (bad) {
        kc_result(name, isa, 0, "geometry rejected");
        return;
    }
    int kind = check == CHECK_SIGNS ? 5 : case_no % STAGE_KINDS;
    int64_t in_px = (int64_t)g.n * g.in_h * g.in_w, pixels = (int64_t)g.n * g.out_h * g.out_w;
    uint8_t *xs = random_signs(rng, in_px * g.in_c);
    uint8_t *ws = random_signs(rng, (int64_t)g.out_c * g.kh * g.kw * g.in_c);
    uint64_t *in = pack_signs(xs, in_px, g.in_c);
    uint64_t *wp = pack_signs(ws, (int64_t)g.out_c * g.kh * g.kw, g.in_c);
    int32_t *idot = ref_bconv2d(&g, xs, ws);
    double *dot = to_double(idot, pixels * g.out_c);
    free(idot);
    stage st = make_stage(rng, kind, pixels, g.out_c, g.kh * g.kw * g.in_c);
    int nthreads = 1 + case_no % 4;
    size_t per = ebnn_bconv2d_scratch_bytes(&g);
    void *scratch = kc_alloc(per * nthreads);
    void *out = kc_alloc(out_bytes(&st, pixels, g.out_c));
    st.o.out = out;
    op_call call = {&g, 0, 0, 0, in, wp, &st.o, scratch};
    run_split(bconv2d_task, &call, nthreads, case_no & 1);
    char detail[256] = "", why[160] = "";
    int ok = compare_stage(&st, dot, NULL, pixels, g.out_c, out, why, sizeof why);
    static uint64_t ref_hash[BCONV_CHECKS][SAME_CASES];
    if (ok && !same_as_ref(ref_hash[check], isa, case_no, out,
                           out_bytes(&st, pixels, g.out_c))) {
        ok = 0;
        snprintf(why, sizeof why, "output bytes differ from the ref ISA's");
    }
    if (!ok)
        snprintf(detail, sizeof detail,
                 "n=%d %dx%dx%d -> %d, k %dx%d s %dx%d pad=%d stage=%d threads=%d: %s",
                 g.n, g.in_h, g.in_w, g.in_c, g.out_c, g.kh, g.kw, g.stride_h, g.stride_w,
                 g.pad_mode, kind, nthreads, why);
    kc_result(name, isa, ok, detail);
    free(xs); free(ws); free(in); free(wp); free(dot); free(scratch); free(out);
    free_stage(&st);
}

void kc_check_bconv2d(kc_rng *rng, int isa, int case_no)
{
    check_bconv2d(rng, isa, case_no, CHECK_PLAIN);
}
void kc_check_bconv2d_signs(kc_rng *rng, int isa, int case_no)
{
    check_bconv2d(rng, isa, case_no, CHECK_SIGNS);
}
void kc_check_bconv2d_taps(kc_rng *rng, int isa, int case_no)
{
    check_bconv2d(rng, isa, case_no, CHECK_TAPS);
}

/* -------------------------------------------------------------- bdense */
void kc_check_bdense(kc_rng *rng, int isa, int case_no)
{
    if (!ebnn_bdense || !ebnn_bdense_scratch_bytes) {
        if (case_no == 0)
            kc_skip("bdense", isa, "kernel not built");
        return;
    }
    int batch = kc_int(rng, 1, 5), in_c = channels[case_no % NCH], out_c = kc_int(rng, 1, 140);
    uint8_t *xs = random_signs(rng, (int64_t)batch * in_c);
    uint8_t *ws = random_signs(rng, (int64_t)out_c * in_c);
    uint64_t *in = pack_signs(xs, batch, in_c), *wp = pack_signs(ws, out_c, in_c);
    double *dot = kc_alloc((int64_t)batch * out_c * sizeof *dot);
    for (int b = 0; b < batch; b++)
        for (int f = 0; f < out_c; f++) {
            int32_t sum = 0;
            for (int c = 0; c < in_c; c++)
                sum += (xs[b * in_c + c] ? -1 : 1) * (ws[f * in_c + c] ? -1 : 1);
            dot[b * out_c + f] = sum;
        }
    stage st = make_stage(rng, case_no % STAGE_KINDS, batch, out_c, in_c);
    int nthreads = 1 + case_no % 4;
    size_t per = ebnn_bdense_scratch_bytes(batch, in_c, out_c);
    void *scratch = kc_alloc(per * nthreads);
    void *out = kc_alloc(out_bytes(&st, batch, out_c));
    st.o.out = out;
    op_call call = {NULL, batch, in_c, out_c, in, wp, &st.o, scratch};
    run_split(bdense_task, &call, nthreads, case_no & 1);
    char detail[256] = "", why[160] = "";
    int ok = compare_stage(&st, dot, NULL, batch, out_c, out, why, sizeof why);
    static uint64_t ref_hash[SAME_CASES];
    if (ok && !same_as_ref(ref_hash, isa, case_no, out, out_bytes(&st, batch, out_c))) {
        ok = 0;
        snprintf(why, sizeof why, "output bytes differ from the ref ISA's");
    }
    if (!ok)
        snprintf(detail, sizeof detail, "batch=%d in_c=%d out_c=%d stage=%d threads=%d: %s",
                 batch, in_c, out_c, case_no % STAGE_KINDS, nthreads, why);
    kc_result("bdense", isa, ok, detail);
    free(xs); free(ws); free(in); free(wp); free(dot); free(scratch); free(out);
    free_stage(&st);
}

/* -------------------------------------------------------- maxpool_bits */
void kc_check_maxpool_bits(kc_rng *rng, int isa, int case_no)
{
    if (!ebnn_maxpool_bits) {
        if (case_no == 0)
            kc_skip("maxpool_bits", isa, "kernel not built");
        return;
    }
    ebnn_conv_geom g;
    int same = kc_int(rng, 0, 1), k = kc_int(rng, 1, 3), s = kc_int(rng, 1, 3);
    int h = kc_int(rng, k, 8), w = kc_int(rng, k, 8), c = channels[case_no % NCH];
    if (ebnn_conv_geom_init(&g, kc_int(rng, 1, 3), h, w, c, 1, k, k, s, s, same,
                            same ? EBNN_PAD_ONE : EBNN_PAD_VALID)) {
        kc_result("maxpool_bits", isa, 0, "geometry rejected");
        return;
    }
    int words = ebnn_words(c);
    int64_t in_px = (int64_t)g.n * h * w, out_px = (int64_t)g.n * g.out_h * g.out_w;
    uint8_t *xs = kc_alloc(in_px * c);
    for (int64_t i = 0; i < in_px * c; i++) /* mostly -1, so ANDs vary */
        xs[i] = kc_int(rng, 0, 7) != 0;
    uint64_t *in = pack_signs(xs, in_px, c);
    uint8_t *want = kc_alloc(out_px * c);
    for (int n = 0; n < g.n; n++)
        for (int oy = 0; oy < g.out_h; oy++)
            for (int ox = 0; ox < g.out_w; ox++)
                for (int ch = 0; ch < c; ch++) {
                    int all_neg = 1; /* max of +-1 over the in-image window */
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int y = oy * s - g.pad_top + ky, x = ox * s - g.pad_left + kx;
                            if (y >= 0 && y < h && x >= 0 && x < w)
                                all_neg &= xs[((n * h + y) * w + x) * c + ch];
                        }
                    want[((n * g.out_h + oy) * g.out_w + ox) * c + ch] = all_neg;
                }
    uint64_t *wantp = pack_signs(want, out_px, c);
    uint64_t *got = kc_alloc(out_px * words * 8);
    int nthreads = 1 + case_no % 4;
    for (int t = 0; t < nthreads; t++)
        ebnn_maxpool_bits(&g, in, got, t, nthreads);
    char detail[200] = "";
    int ok = 1;
    for (int64_t i = 0; i < out_px * words && ok; i++)
        if (got[i] != wantp[i]) {
            ok = 0;
            snprintf(detail, sizeof detail,
                     "n=%d %dx%dx%d k=%d s=%d same=%d threads=%d: word %lld = %016llx, want %016llx",
                     g.n, h, w, c, k, s, same, nthreads, (long long)i,
                     (unsigned long long)got[i], (unsigned long long)wantp[i]);
        }
    kc_result("maxpool_bits", isa, ok, detail);
    free(xs); free(in); free(want); free(wantp); free(got);
}

/* --------------------------------------------- float and weights-only --- */
#pragma weak ebnn_wconv2d
#pragma weak ebnn_wconv2d_scratch_bytes
#pragma weak ebnn_wdense
#pragma weak ebnn_fconv2d
#pragma weak ebnn_fconv2d_scratch_bytes
#pragma weak ebnn_fdense
#pragma weak ebnn_bitpack_f32
#pragma weak ebnn_bitpack_u8
#pragma weak ebnn_bitpack_i8

/* sum over in-image taps of x * w (zero padding), with the magnitudes */
static void ref_fconv(const ebnn_conv_geom *g, const float *x, const float *w,
                      double *acc, double *mag)
{
    for (int n = 0; n < g->n; n++)
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++)
                for (int f = 0; f < g->out_c; f++) {
                    double sum = 0, abs_sum = 0;
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++) {
                            int y = oy * g->stride_h - g->pad_top + ky;
                            int xx = ox * g->stride_w - g->pad_left + kx;
                            if (y < 0 || y >= g->in_h || xx < 0 || xx >= g->in_w)
                                continue;
                            for (int c = 0; c < g->in_c; c++) {
                                double t = (double)x[((n * g->in_h + y) * g->in_w + xx) * g->in_c + c] *
                                           w[((f * g->kh + ky) * g->kw + kx) * g->in_c + c];
                                sum += t;
                                abs_sum += fabs(t);
                            }
                        }
                    int64_t i = ((n * g->out_h + oy) * (int64_t)g->out_w + ox) * g->out_c + f;
                    acc[i] = sum;
                    mag[i] = abs_sum;
                }
}

static float *random_floats(kc_rng *rng, int64_t count)
{
    float *x = kc_alloc(count * 4);
    for (int64_t i = 0; i < count; i++)
        x[i] = kc_float(rng) * 2.0f;
    return x;
}

/* stages defined for float accumulators: float plain / full, bits by
 * sign, float with sign_out */
static int float_stage_kind(int case_no)
{
    static const int kinds[] = {1, 2, 4, 5};
    return kinds[(case_no + case_no / 4) % 4]; /* not in step with the thread count */
}

/* one conv-shaped case: weights_only selects wconv2d (packed sign weights)
 * or fconv2d (float weights); dense = the 1x1 conv of a 1x1 image */
static void check_float_op(kc_rng *rng, int isa, int case_no, int weights_only, int dense)
{
    const char *name = weights_only ? (dense ? "wdense" : "wconv2d") : (dense ? "fdense" : "fconv2d");
    int built = weights_only ? (dense ? !!ebnn_wdense : ebnn_wconv2d && ebnn_wconv2d_scratch_bytes)
                             : (dense ? !!ebnn_fdense : ebnn_fconv2d && ebnn_fconv2d_scratch_bytes);
    if (!built) {
        if (case_no == 0)
            kc_skip(name, isa, "kernel not built");
        return;
    }
    ebnn_conv_geom g;
    int err = dense ? ebnn_conv_geom_init(&g, kc_int(rng, 1, 5), 1, 1, channels[case_no % NCH],
                                          kc_int(rng, 1, 140), 1, 1, 1, 1, 0, EBNN_PAD_VALID)
                    : random_geom(rng, &g, case_no, 0);
    if (!dense && !err && kc_int(rng, 0, 1)) { /* 16 / 32 / 64 filters: the fixed-width stage */
        static const int fixed[] = {16, 32, 64};
        err = ebnn_conv_geom_init(&g, g.n, g.in_h, g.in_w, g.in_c, fixed[kc_int(rng, 0, 2)], g.kh,
                                  g.kw, g.stride_h, g.stride_w, g.pad_mode != EBNN_PAD_VALID,
                                  g.pad_mode);
    }
    if (err) {
        kc_result(name, isa, 0, "geometry rejected");
        return;
    }
    int64_t in_px = (int64_t)g.n * g.in_h * g.in_w, pixels = (int64_t)g.n * g.out_h * g.out_w;
    int64_t wcount = (int64_t)g.out_c * g.kh * g.kw * g.in_c;
    float *x = random_floats(rng, in_px * g.in_c), *wf;
    uint64_t *wp = NULL;
    if (weights_only) {
        uint8_t *ws = random_signs(rng, wcount);
        wp = pack_signs(ws, (int64_t)g.out_c * g.kh * g.kw, g.in_c);
        wf = kc_alloc(wcount * 4);
        for (int64_t i = 0; i < wcount; i++)
            wf[i] = ws[i] ? -1.0f : 1.0f;
        free(ws);
    } else {
        wf = random_floats(rng, wcount);
    }
    double *acc = kc_alloc(pixels * g.out_c * sizeof *acc), *mag = kc_alloc(pixels * g.out_c * sizeof *mag);
    ref_fconv(&g, x, wf, acc, mag);
    int kind = float_stage_kind(case_no);
    stage st = make_stage(rng, kind, pixels, g.out_c, g.kh * g.kw * g.in_c);
    int nthreads = 1 + case_no % 4;
    size_t per = dense ? 0 : weights_only ? ebnn_wconv2d_scratch_bytes(&g) : ebnn_fconv2d_scratch_bytes(&g);
    void *scratch = kc_alloc(per * nthreads);
    void *out = kc_alloc(out_bytes(&st, pixels, g.out_c));
    st.o.out = out;
    for (int t = 0; t < nthreads; t++) {
        if (weights_only && dense)
            ebnn_wdense(g.n, g.in_c, g.out_c, x, wp, &st.o, t, nthreads);
        else if (weights_only)
            ebnn_wconv2d(&g, x, wp, &st.o, scratch, t, nthreads);
        else if (dense)
            ebnn_fdense(g.n, g.in_c, g.out_c, x, wf, &st.o, t, nthreads);
        else
            ebnn_fconv2d(&g, x, wf, &st.o, scratch, t, nthreads);
    }
    char detail[256] = "", why[160] = "";
    int ok = compare_stage(&st, acc, mag, pixels, g.out_c, out, why, sizeof why);
    if (!ok)
        snprintf(detail, sizeof detail,
                 "n=%d %dx%dx%d -> %d, k %dx%d s %dx%d pad=%d stage=%d threads=%d: %s",
                 g.n, g.in_h, g.in_w, g.in_c, g.out_c, g.kh, g.kw, g.stride_h, g.stride_w,
                 g.pad_mode, kind, nthreads, why);
    kc_result(name, isa, ok, detail);
    free(x); free(wf); free(wp); free(acc); free(mag); free(scratch); free(out);
    free_stage(&st);
}

void kc_check_wconv2d(kc_rng *rng, int isa, int case_no) { check_float_op(rng, isa, case_no, 1, 0); }
void kc_check_wdense(kc_rng *rng, int isa, int case_no) { check_float_op(rng, isa, case_no, 1, 1); }
void kc_check_fconv2d(kc_rng *rng, int isa, int case_no) { check_float_op(rng, isa, case_no, 0, 0); }
void kc_check_fdense(kc_rng *rng, int isa, int case_no) { check_float_op(rng, isa, case_no, 0, 1); }

/* ------------------------------------------------- public bit-packing --- */
/* ebnn_bitpack_{f32,u8,i8}: bit = 1 where x < 0 (f32) or x < zero_point,
 * every thread split; case_no % 3 picks the type */
void kc_check_bitpack_ops(kc_rng *rng, int isa, int case_no)
{
    static const char *names[3] = {"bitpack_f32 (op)", "bitpack_u8", "bitpack_i8"};
    int type = case_no % 3;
    int built = type == 0 ? !!ebnn_bitpack_f32 : type == 1 ? !!ebnn_bitpack_u8 : !!ebnn_bitpack_i8;
    if (!built) {
        if (case_no < 3)
            kc_skip(names[type], isa, "kernel not built");
        return;
    }
    int c = channels[case_no % NCH], words = ebnn_words(c), nthreads = 1 + case_no % 4;
    int64_t rows = kc_int(rng, 1, 11);
    int zp = type == 1 ? kc_int(rng, 0, 255) : kc_int(rng, -128, 127);
    float *xf = kc_alloc(rows * c * 4);
    uint8_t *xu = kc_alloc(rows * c);
    int8_t *xi = kc_alloc(rows * c);
    kc_fill_floats(rng, xf, rows * c);
    uint8_t *neg = kc_alloc(rows * c);
    for (int64_t i = 0; i < rows * c; i++) {
        xu[i] = (uint8_t)kc_next(rng);
        xi[i] = (int8_t)kc_next(rng);
        neg[i] = type == 0 ? xf[i] < 0.0f : type == 1 ? xu[i] < zp : xi[i] < zp;
    }
    uint64_t *want = pack_signs(neg, rows, c), *got = kc_alloc(rows * words * 8);
    for (int t = 0; t < nthreads; t++) {
        if (type == 0)
            ebnn_bitpack_f32(xf, rows, c, got, t, nthreads);
        else if (type == 1)
            ebnn_bitpack_u8(xu, rows, c, zp, got, t, nthreads);
        else
            ebnn_bitpack_i8(xi, rows, c, zp, got, t, nthreads);
    }
    char detail[160] = "";
    int ok = 1;
    for (int64_t i = 0; i < rows * words && ok; i++)
        if (got[i] != want[i]) {
            ok = 0;
            snprintf(detail, sizeof detail, "rows=%lld c=%d zp=%d threads=%d: word %lld",
                     (long long)rows, c, zp, nthreads, (long long)i);
        }
    kc_result(names[type], isa, ok, detail);
    free(xf); free(xu); free(xi); free(neg); free(want); free(got);
}

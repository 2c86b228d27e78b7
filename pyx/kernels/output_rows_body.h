/* Body of the block-of-pixels output stage, included by output_stage.c once
 * per ISA with ROWS_SFX (name suffix), ROWS_TARGET (function attribute) and
 * ROWS_ISA (0 portable C, 2 AVX2, 3 AVX-512) defined. Not a header.
 *
 * One pass per element with every term fused: missing mul / bias /
 * residual are the exact identities *1.0f / +(-0.0f) (see output_stage.c),
 * so each element sees the IEEE operations of the plain formula in its
 * order. A row's loop is specialized on (accumulator source, residual) so
 * the compiler vectorizes it at the ISA's width. */
#define RCAT2(a, b) a##_##b
#define RCAT(a, b) RCAT2(a, b)
#define RF(name) RCAT(name, ROWS_SFX)

/* dot of element j: SRC_I32 acc, SRC_POP base - 2 popcount (base a vector
 * or the constant kreal), SRC_F32 a float sum */
#define ROW_DOT(j) (src == SRC_I32 ? ai[j] : vbase ? vbase[j] - 2 * ai[j] : kreal - 2 * ai[j])

/* v[j] = clamp? (acc*ps*m + b (+ r)) for one row of n filters */
ROWS_TARGET static AINLINE void
RF(values_row)(const int src, const int has_res, const int clamp, int n,
               const int32_t *restrict ai, const float *restrict af,
               const int32_t *restrict vbase, int32_t kreal, float ps,
               const float *restrict m, const float *restrict b,
               const float *restrict r, float lo, float hi, float *restrict v)
{
    for (int j = 0; j < n; j++) {
        float x = (src == SRC_F32 ? af[j] : (float)ROW_DOT(j)) * ps;
        x = x * m[j];
        x = x + b[j];
        if (has_res)
            x = x + r[j];
        if (clamp) {
            x = x < lo ? lo : x;
            x = x > hi ? hi : x;
        }
        v[j] = x;
    }
}

/* dispatch of values_row on its (runtime) specialization keys */
ROWS_TARGET static AINLINE void
RF(values_any)(int src, const int32_t *ai, const float *af, const int32_t *vbase,
               int32_t kreal, int n, float ps, const float *m, const float *b,
               const float *r, int clamp, float lo, float hi, float *v)
{
#define VROW(S, R, C) RF(values_row)(S, R, C, n, ai, af, vbase, kreal, ps, m, b, r, lo, hi, v)
    if (src == SRC_F32) {
        if (r) { if (clamp) VROW(SRC_F32, 1, 1); else VROW(SRC_F32, 1, 0); }
        else   { if (clamp) VROW(SRC_F32, 0, 1); else VROW(SRC_F32, 0, 0); }
    } else if (src == SRC_I32) {
        if (r) { if (clamp) VROW(SRC_I32, 1, 1); else VROW(SRC_I32, 1, 0); }
        else   { if (clamp) VROW(SRC_I32, 0, 1); else VROW(SRC_I32, 0, 0); }
    } else {
        if (r) { if (clamp) VROW(SRC_POP, 1, 1); else VROW(SRC_POP, 1, 0); }
        else   { if (clamp) VROW(SRC_POP, 0, 1); else VROW(SRC_POP, 0, 0); }
    }
#undef VROW
}

/* bits of v[j] < 0 for j < n (n <= 64) */
ROWS_TARGET static AINLINE uint64_t RF(neg_bits)(const float *v, int n)
{
#if ROWS_ISA == 3
    uint64_t bits = 0;
    for (int j = 0; j < n; j += 16) {
        __mmask16 lm = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(lm, v + j);
        bits |= (uint64_t)_mm512_mask_cmp_ps_mask(lm, x, _mm512_setzero_ps(), _CMP_LT_OQ) << j;
    }
    return bits;
#elif ROWS_ISA == 2
    uint64_t bits = 0;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 lt = _mm256_cmp_ps(_mm256_loadu_ps(v + j), _mm256_setzero_ps(), _CMP_LT_OQ);
        bits |= (uint64_t)(unsigned)_mm256_movemask_ps(lt) << j;
    }
    for (; j < n; j++)
        bits |= (uint64_t)(v[j] < 0.0f) << j;
    return bits;
#else
    uint8_t flags[64] = {0};
    for (int j = 0; j < n; j++)
        flags[j] = v[j] < 0.0f;
    return pack_flags(flags);
#endif
}

/* bits of (flip ? d > t : d < t) for j < n (n <= 64); flipbits has bit j
 * set where filter j flips */
ROWS_TARGET static AINLINE uint64_t RF(thr_bits)(const int32_t *d, const int32_t *t,
                                                 uint64_t flipbits, int n)
{
#if ROWS_ISA == 3
    uint64_t lt = 0, gt = 0;
    for (int j = 0; j < n; j += 16) {
        __mmask16 lm = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512i a = _mm512_maskz_loadu_epi32(lm, d + j), b = _mm512_maskz_loadu_epi32(lm, t + j);
        lt |= (uint64_t)_mm512_mask_cmplt_epi32_mask(lm, a, b) << j;
        gt |= (uint64_t)_mm512_mask_cmpgt_epi32_mask(lm, a, b) << j;
    }
    return (lt & ~flipbits) | (gt & flipbits);
#elif ROWS_ISA == 2
    uint64_t lt = 0, gt = 0;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(d + j));
        __m256i b = _mm256_loadu_si256((const __m256i *)(t + j));
        lt |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(b, a))) << j;
        gt |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b))) << j;
    }
    for (; j < n; j++) {
        lt |= (uint64_t)(d[j] < t[j]) << j;
        gt |= (uint64_t)(d[j] > t[j]) << j;
    }
    return (lt & ~flipbits) | (gt & flipbits);
#else
    uint8_t flags[64] = {0};
    for (int j = 0; j < n; j++) {
        uint8_t fl = (uint8_t)((flipbits >> j) & 1);
        flags[j] = fl ? d[j] > t[j] : d[j] < t[j];
    }
    return pack_flags(flags);
#endif
}

/* dot row (int sources) into d[0..n) */
/* (no restrict: INT32 output may be the accumulator rows themselves) */
ROWS_TARGET static AINLINE void RF(dot_row)(int src, const int32_t *ai,
                                            const int32_t *vbase, int32_t kreal,
                                            int n, int32_t *d)
{
    if (src == SRC_I32) {
        if (d != ai)
            memcpy(d, ai, (size_t)n * sizeof(*d));
    } else if (d == ai) { /* in place: one pointer, so it vectorizes */
        if (vbase)
            for (int j = 0; j < n; j++)
                d[j] = vbase[j] - 2 * d[j];
        else
            for (int j = 0; j < n; j++)
                d[j] = kreal - 2 * d[j];
    } else if (vbase)
        for (int j = 0; j < n; j++)
            d[j] = vbase[j] - 2 * ai[j];
    else
        for (int j = 0; j < n; j++)
            d[j] = kreal - 2 * ai[j];
}

/* Float output (SRC_POP popcounts or SRC_F32 float sums) over NF = 16 / 32 /
 * 64 filters (the narrow layers' and stems' whole width): a constant-length
 * row loop, so mul and bias stay in registers across the pixels and no row
 * pays loop setup. Same formula as values_row. With to_bits (float sums'
 * sign bits, thr NULL; filters f0 .. f0+NF fill word f0/64 from bit 0) the
 * unclamped value's v < 0 mask is stored as the word instead. clamp: bit 0
 * the lower bound, bit 1 the upper (an infinite bound never moves a value:
 * x < -inf and x > inf are false for every x, so it is left out). */
ROWS_TARGET static AINLINE void RF(float_fixed)(const rows_job *jb, int64_t p0, int np,
                                                int f0, const int NF, const int src,
                                                const int has_res, const int clamp,
                                                const int to_bits, const int sgn, const int nrm)
{
    const ebnn_output *o = jb->o;
    const int out_c = jb->out_c;
    const int64_t words = ebnn_words(out_c);
    const float *restrict m = o->mul ? o->mul + f0 : ones_f32;
    const float *restrict b = o->bias ? o->bias + f0 : negzero_f32;
    const float lo = o->clamp_lo, hi = o->clamp_hi;
    int32_t kv[64];
    for (int j = 0; j < NF; j++)
        kv[j] = jb->kreal;
    /* everything the rows read, in locals: the output stores could
     * alias *o and *jb, which the compiler would reload every row */
    const int64_t ld = jb->ld;
    const int32_t *const acc_i = src == SRC_POP ? jb->acc_i + (f0 - jb->f0) : NULL;
    const float *const acc_f = src == SRC_F32 ? jb->acc_f + (f0 - jb->f0) : NULL;
    const int32_t *const *const bases = src == SRC_POP ? jb->bases : NULL;
    const float *const pscale = o->pixel_scale;
    const float *const res0 = has_res ? o->residual + f0 : NULL;
    float *const out0 = (float *)o->out + f0;
    uint64_t *const word0 = (uint64_t *)o->out + f0 / 64;
    /* sign_out (sgn 1: y < 0, 2: thresholds with flips) of y or, with nrm,
     * of its batch norm z (stored too): whole words (see fixed_any) */
    uint64_t *const sword0 = sgn ? o->sign_out + f0 / 64 : NULL;
    float *const zout0 = nrm ? o->norm_out + f0 : NULL;
    const float *const st = sgn == 2 ? o->sign_thr + f0 : NULL;
    const float *const na = nrm ? o->norm_sub + f0 : NULL;
    const float *const nb = nrm ? o->norm_mul + f0 : NULL;
    const float *const nd = nrm ? o->norm_add + f0 : NULL;
    uint64_t sflip = 0;
    if (sgn == 2 && o->sign_flip)
        for (int j = 0; j < NF; j++)
            sflip |= (uint64_t)(o->sign_flip[f0 + j] != 0) << j;
#if ROWS_ISA == 3 || ROWS_ISA == 2 || (ROWS_ISA == 0 && defined(__aarch64__))
    /* explicit vectors: mul / bias / clamp bounds in registers for the
     * whole block, no per-row alias checks (same operations, same order) */
#if ROWS_ISA == 3
#define VW 16
#define VF __m512
#define VI __m512i
#define LOADI(p) _mm512_loadu_si512((const void *)(p))
#define LOADF _mm512_loadu_ps
#define STOREF _mm512_storeu_ps
#define SETF _mm512_set1_ps
#define DOT(vb, a) _mm512_sub_epi32(vb, _mm512_slli_epi32(a, 1))
#define CVT _mm512_cvtepi32_ps
#define MUL _mm512_mul_ps
#define ADD _mm512_add_ps
/* x < lo ? lo : x, then x > hi ? hi : x (a NaN stays): vmaxps(a, b) is
 * exactly a > b ? a : b and vminps(a, b) a < b ? a : b (NaN or equal
 * zeros give b), so with the bound first they are these selects */
#define LOWER(x) _mm512_max_ps(vlo, x)
#define UPPER(x) _mm512_min_ps(vhi, x)
/* bits of x < 0 (ordered: NaN -> 0), lane j at bit j */
#define NEGBITS(x) ((uint64_t)_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ))
#define SUB _mm512_sub_ps
#define LTBITS(x, t) ((uint64_t)_mm512_cmp_ps_mask(x, t, _CMP_LT_OQ))
#define GTBITS(x, t) ((uint64_t)_mm512_cmp_ps_mask(x, t, _CMP_GT_OQ))
#elif ROWS_ISA == 0 /* aarch64 NEON: IEEE float (armv7 NEON flushes denormals: not used) */
#define VW 4
#define VF float32x4_t
#define VI int32x4_t
#define LOADI(p) vld1q_s32(p)
#define LOADF vld1q_f32
#define STOREF vst1q_f32
#define SETF vdupq_n_f32
#define DOT(vb, a) vmlsq_n_s32(vb, a, 2) /* one mls: vb - 2a, exact */
#define CVT vcvtq_f32_s32
#define MUL vmulq_f32
#define ADD vaddq_f32
#define LOWER(x) vbslq_f32(vcltq_f32(x, vlo), vlo, x)
#define UPPER(x) vbslq_f32(vcgtq_f32(x, vhi), vhi, x)
#define NEGBITS(x) ((uint64_t)vaddvq_u32(vandq_u32(vcltzq_f32(x), lanebit)))
#define SUB vsubq_f32
#define LTBITS(x, t) ((uint64_t)vaddvq_u32(vandq_u32(vcltq_f32(x, t), lanebit)))
#define GTBITS(x, t) ((uint64_t)vaddvq_u32(vandq_u32(vcgtq_f32(x, t), lanebit)))
#else
#define VW 8
#define VF __m256
#define VI __m256i
#define LOADI(p) _mm256_loadu_si256((const __m256i *)(p))
#define LOADF _mm256_loadu_ps
#define STOREF _mm256_storeu_ps
#define SETF _mm256_set1_ps
#define DOT(vb, a) _mm256_sub_epi32(vb, _mm256_slli_epi32(a, 1))
#define CVT _mm256_cvtepi32_ps
#define MUL _mm256_mul_ps
#define ADD _mm256_add_ps
#define LOWER(x) _mm256_max_ps(vlo, x) /* as above */
#define UPPER(x) _mm256_min_ps(vhi, x)
#define NEGBITS(x) ((uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ)))
#define SUB _mm256_sub_ps
#define LTBITS(x, t) ((uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, t, _CMP_LT_OQ)))
#define GTBITS(x, t) ((uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, t, _CMP_GT_OQ)))
#endif
    {
        VF vm[64 / VW], vbias[64 / VW], vt[64 / VW], vna[64 / VW], vnb[64 / VW], vnd[64 / VW];
        const VF vlo = SETF(lo), vhi = SETF(hi);
#if ROWS_ISA == 0
        const uint32_t lanebit_s[4] = {1, 2, 4, 8};
        const uint32x4_t lanebit = vld1q_u32(lanebit_s);
#endif
        for (int v = 0; v < NF / VW; v++) {
            vm[v] = LOADF(m + v * VW);
            vbias[v] = LOADF(b + v * VW);
            vt[v] = vna[v] = vnb[v] = vnd[v] = SETF(0.0f);
            if (sgn == 2)
                vt[v] = LOADF(st + v * VW);
            if (nrm) {
                vna[v] = LOADF(na + v * VW);
                vnb[v] = LOADF(nb + v * VW);
                vnd[v] = LOADF(nd + v * VW);
            }
        }
        for (int i = 0; i < np; i++) {
            int64_t p = p0 + i;
            const int32_t *a = src == SRC_POP ? acc_i + i * ld : NULL;
            const float *af = src == SRC_F32 ? acc_f + i * ld : NULL;
            const int32_t *vb = bases && bases[i] ? bases[i] + f0 : kv;
            const VF ps = SETF(pscale ? pscale[p] : 1.0f);
            const float *r = has_res ? res0 + p * out_c : NULL;
            float *out = out0 + p * out_c;
            uint64_t bits = 0, sbits = 0;
            for (int v = 0; v < NF / VW; v++) {
                /* no pixel scale: the *1.0f is skipped (an identity; x
                 * comes from arithmetic, so it is never a signaling NaN) */
                VF x = src == SRC_F32 ? LOADF(af + v * VW) : CVT(DOT(LOADI(vb + v * VW), LOADI(a + v * VW)));
                if (pscale)
                    x = MUL(x, ps);
                x = MUL(x, vm[v]);
                x = ADD(x, vbias[v]);
                if (has_res)
                    x = ADD(x, LOADF(r + v * VW));
                if (to_bits) {
                    bits |= NEGBITS(x) << (v * VW);
                    continue;
                }
                if (clamp & 1)
                    x = LOWER(x);
                if (clamp & 2)
                    x = UPPER(x);
                STOREF(out + v * VW, x);
                if (nrm) {
                    x = ADD(MUL(SUB(x, vna[v]), vnb[v]), vnd[v]);
                    STOREF(zout0 + p * out_c + v * VW, x);
                }
                if (sgn == 1)
                    sbits |= NEGBITS(x) << (v * VW);
                else if (sgn == 2)
                    sbits |= ((LTBITS(x, vt[v]) & ~(sflip >> (v * VW)) & ((1ull << VW) - 1)) |
                              (GTBITS(x, vt[v]) & (sflip >> (v * VW)))) << (v * VW);
            }
            if (to_bits)
                word0[p * words] = bits;
            if (sgn)
                sword0[p * words] = sbits;
        }
    }
    return;
#undef VW
#undef VF
#undef VI
#undef LOADI
#undef LOADF
#undef STOREF
#undef SETF
#undef DOT
#undef CVT
#undef MUL
#undef ADD
#undef LOWER
#undef UPPER
#undef NEGBITS
#undef SUB
#undef LTBITS
#undef GTBITS
#endif
    for (int i = 0; i < np; i++) {
        int64_t p = p0 + i;
        const int32_t *restrict a = src == SRC_POP ? acc_i + i * ld : NULL;
        const float *restrict af = src == SRC_F32 ? acc_f + i * ld : NULL;
        const int32_t *restrict vb = bases && bases[i] ? bases[i] + f0 : kv;
        const float ps = pscale ? pscale[p] : 1.0f;
        const int scaled = pscale != NULL; /* else *1.0f: skipped, as above */
        const float *restrict r = has_res ? res0 + p * out_c : NULL;
        float *restrict out = out0 + p * out_c;
        uint64_t bits = 0, sbits = 0;
        for (int j = 0; j < NF; j++) {
            float x = src == SRC_F32 ? af[j] : (float)(vb[j] - 2 * a[j]);
            if (scaled)
                x = x * ps;
            x = x * m[j];
            x = x + b[j];
            if (has_res)
                x = x + r[j];
            if (to_bits) {
                bits |= (uint64_t)(x < 0.0f) << j;
                continue;
            }
            if (clamp & 1)
                x = x < lo ? lo : x;
            if (clamp & 2)
                x = x > hi ? hi : x;
            out[j] = x;
            if (nrm) {
                x = (x - na[j]) * nb[j] + nd[j];
                zout0[p * out_c + j] = x;
            }
            if (sgn == 1)
                sbits |= (uint64_t)(x < 0.0f) << j;
            else if (sgn == 2)
                sbits |= (uint64_t)((sflip >> j) & 1 ? x > st[j] : x < st[j]) << j;
        }
        if (to_bits)
            word0[p * words] = bits;
        if (sgn)
            sword0[p * words] = sbits;
    }
}

/* Integer-threshold bits of popcounts over NF = 16 / 32 / 64 filters that
 * fill one output word from bit 0 (f0 % 64 == 0, no other filters in it):
 * compare masks straight into the word, thresholds and flips in registers.
 * bit = flip ? d > t : d < t, d = base - 2 popcount (exact integers, so
 * NEON serves armv7 as well). */
ROWS_TARGET static AINLINE void RF(pop_thr_fixed)(const rows_job *jb, int64_t p0, int np,
                                                  int f0, const int NF, const int has_flip)
{
    const ebnn_output *o = jb->o;
    const int64_t words = ebnn_words(jb->out_c);
    const uint64_t flip = jb->flipbits[0]; /* fword0 == f0 / 64 */
    const int32_t *const thr = o->thr + f0;
    int32_t kv[64];
    for (int j = 0; j < NF; j++)
        kv[j] = jb->kreal;
#if ROWS_ISA == 3
    __m512i t[4];
    for (int v = 0; v < NF / 16; v++)
        t[v] = _mm512_loadu_si512((const void *)(thr + 16 * v));
#elif ROWS_ISA == 2
    __m256i t[8];
    for (int v = 0; v < NF / 8; v++)
        t[v] = _mm256_loadu_si256((const __m256i *)(thr + 8 * v));
#elif defined(__ARM_NEON)
    /* lane j of vector v stands for bit 4v + j: each 32-bit lane collects
     * the bits of its filter of up to 8 vectors (weights 1 << (4 (v % 8) +
     * j), disjoint), and a horizontal add of the 4 lanes gives 32 bits */
    int32x4_t t[16];
    uint32x4_t fm[16], wt[8];
    {
        const uint32_t lane_s[4] = {1, 2, 4, 8};
        const uint32x4_t lane = vld1q_u32(lane_s);
        for (int v = 0; v < NF / 4; v++) {
            t[v] = vld1q_s32(thr + 4 * v);
            fm[v] = vtstq_u32(vdupq_n_u32((uint32_t)(flip >> (4 * v)) & 15u), lane);
        }
        for (int v = 0; v < 8 && v < NF / 4; v++)
            wt[v] = vshlq_u32(lane, vdupq_n_s32(4 * v));
    }
#endif
    /* in locals: the word stores could alias *o and *jb */
    const int64_t ld = jb->ld;
    const int32_t *const acc_i = jb->acc_i + (f0 - jb->f0);
    const int32_t *const *const bases = jb->bases;
    uint64_t *const word0 = (uint64_t *)o->out + f0 / 64;
    for (int i = 0; i < np; i++) {
        const int32_t *a = acc_i + i * ld;
        const int32_t *vb = bases && bases[i] ? bases[i] + f0 : kv;
        uint64_t word;
#if ROWS_ISA == 3 || ROWS_ISA == 2
        uint64_t lt = 0, gt = 0;
#if ROWS_ISA == 3
        for (int v = 0; v < NF / 16; v++) {
            __m512i d = _mm512_sub_epi32(_mm512_loadu_si512((const void *)(vb + 16 * v)),
                                         _mm512_slli_epi32(_mm512_loadu_si512((const void *)(a + 16 * v)), 1));
            lt |= (uint64_t)_mm512_cmplt_epi32_mask(d, t[v]) << (16 * v);
            if (has_flip)
                gt |= (uint64_t)_mm512_cmpgt_epi32_mask(d, t[v]) << (16 * v);
        }
#else
        for (int v = 0; v < NF / 8; v++) {
            __m256i d = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(vb + 8 * v)),
                                         _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(a + 8 * v)), 1));
            lt |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(t[v], d))) << (8 * v);
            if (has_flip)
                gt |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(d, t[v]))) << (8 * v);
        }
#endif
        word = has_flip ? (lt & ~flip) | (gt & flip) : lt;
#elif defined(__ARM_NEON)
        word = 0;
        for (int h = 0; h < NF / 32 || (h == 0 && NF == 16); h++) {
            uint32x4_t acc = vdupq_n_u32(0);
            for (int v = 8 * h; v < 8 * h + 8 && v < NF / 4; v++) {
                int32x4_t d = vsubq_s32(vld1q_s32(vb + 4 * v), vshlq_n_s32(vld1q_s32(a + 4 * v), 1));
                uint32x4_t bit = vcltq_s32(d, t[v]);
                if (has_flip)
                    bit = vbslq_u32(fm[v], vcgtq_s32(d, t[v]), bit);
                acc = vorrq_u32(acc, vandq_u32(bit, wt[v - 8 * h]));
            }
#if defined(__aarch64__)
            uint32_t half = vaddvq_u32(acc);
#else
            uint32x2_t s2 = vpadd_u32(vget_low_u32(acc), vget_high_u32(acc));
            uint32_t half = vget_lane_u32(vpadd_u32(s2, s2), 0);
#endif
            word |= (uint64_t)half << (32 * h);
        }
#else
        word = 0;
        for (int j = 0; j < NF; j++) {
            int32_t d = vb[j] - 2 * a[j], t = thr[j];
            int bit = has_flip && ((flip >> j) & 1) ? d > t : d < t;
            word |= (uint64_t)bit << j;
        }
#endif
        word0[(p0 + i) * words] = word;
    }
}

/* 1 if handled by a fixed-width path (float_fixed, pop_thr_fixed) */
ROWS_TARGET static AINLINE int RF(fixed_any)(const rows_job *jb, int64_t p0, int np,
                                             int f0, int nf)
{
    const ebnn_output *o = jb->o;
    const int res = o->residual != NULL, src = jb->src;
    const int cl = (o->clamp_lo != -INFINITY) | (o->clamp_hi != INFINITY) << 1;
    if (nf != 16 && nf != 32 && nf != 64)
        return 0;
    /* the filters fill their output word: whole-word stores */
    const int whole_word = f0 % 64 == 0 && (nf == 64 || f0 + nf == jb->out_c);
    if (src == SRC_POP && o->kind == EBNN_OUT_BITS && o->thr) {
        if (!whole_word)
            return 0;
        const int fl = jb->flipbits[0] != 0;
#define PTF(NF) do { if (fl) RF(pop_thr_fixed)(jb, p0, np, f0, NF, 1); \
                     else RF(pop_thr_fixed)(jb, p0, np, f0, NF, 0); } while (0)
        if (nf == 16)
            PTF(16);
        else if (nf == 32)
            PTF(32);
        else
            PTF(64);
#undef PTF
        return 1;
    }
    if (src == SRC_I32)
        return 0;
    if (o->kind == EBNN_OUT_BITS) {
        /* float sums' sign bits (thresholds are not defined for them) */
        if (src != SRC_F32 || !whole_word)
            return 0;
#define FB(NF) do { if (res) RF(float_fixed)(jb, p0, np, f0, NF, SRC_F32, 1, 0, 1, 0, 0); \
                    else RF(float_fixed)(jb, p0, np, f0, NF, SRC_F32, 0, 0, 1, 0, 0); } while (0)
        if (nf == 16)
            FB(16);
        else if (nf == 32)
            FB(32);
        else
            FB(64);
#undef FB
        return 1;
    }
    if (o->kind != EBNN_OUT_FLOAT)
        return 0;
    /* sign_out / norm_out in the same pass (post 1: signs of y, 2: by
     * thresholds, 3: norm_out and the signs of z), whole sign words and no
     * clamp; other combinations: the caller's sign_rows afterwards */
    int post = 0;
    if (o->sign_out || o->norm_out) {
        if (cl || !whole_word || !o->sign_out)
            return 0;
        post = o->norm_out ? (o->sign_thr ? 0 : 3) : o->sign_thr ? 2 : 1;
        if (!post)
            return 0;
    }
#define FFR(S, NF, R) \
    do { \
        if (post == 1) RF(float_fixed)(jb, p0, np, f0, NF, S, R, 0, 0, 1, 0); \
        else if (post == 2) RF(float_fixed)(jb, p0, np, f0, NF, S, R, 0, 0, 2, 0); \
        else if (post == 3) RF(float_fixed)(jb, p0, np, f0, NF, S, R, 0, 0, 1, 1); \
        else if (cl == 0) RF(float_fixed)(jb, p0, np, f0, NF, S, R, 0, 0, 0, 0); \
        else if (cl == 1) RF(float_fixed)(jb, p0, np, f0, NF, S, R, 1, 0, 0, 0); \
        else if (cl == 2) RF(float_fixed)(jb, p0, np, f0, NF, S, R, 2, 0, 0, 0); \
        else RF(float_fixed)(jb, p0, np, f0, NF, S, R, 3, 0, 0, 0); \
    } while (0)
#define FF(S, NF) do { if (res) FFR(S, NF, 1); else FFR(S, NF, 0); } while (0)
#define FFW(S) do { if (nf == 16) FF(S, 16); else if (nf == 32) FF(S, 32); else FF(S, 64); } while (0)
    if (src == SRC_POP)
        FFW(SRC_POP);
    else
        FFW(SRC_F32);
#undef FFW
#undef FF
#undef FFR
    return 1;
}

/* The stage's values over rows i < np (pixels p0 + i) and filters [f0,
 * f0 + nf), nf <= ROW_CHUNK; 1 if sign_out / norm_out were written too (a
 * fixed-width path), 0 if they are left to sign_rows. */
ROWS_TARGET static AINLINE int RF(rows_values)(const rows_job *jb, int64_t p0, int np,
                                               int f0, int nf)
{
    if (RF(fixed_any)(jb, p0, np, f0, nf))
        return 1;
    const ebnn_output *o = jb->o;
#if ROWS_ISA == 0 && defined(__aarch64__)
    /* wider float rows: groups of 32 filters, each group's mul / bias in
     * registers across the pixels (all 256 would not fit) */
    if (o->kind == EBNN_OUT_FLOAT && jb->src != SRC_I32 && nf > 64 && nf % 32 == 0 &&
        !o->sign_out && !o->norm_out) {
        for (int g = 0; g < nf; g += 32)
            RF(fixed_any)(jb, p0, np, f0 + g, 32);
        return 1;
    }
#endif
    const int out_c = jb->out_c, src = jb->src;
    const float *m = o->mul ? o->mul + f0 : ones_f32;
    const float *b = o->bias ? o->bias + f0 : negzero_f32;
    for (int i = 0; i < np; i++) {
        int64_t p = p0 + i;
        const int32_t *ai = src == SRC_F32 ? NULL : jb->acc_i + i * jb->ld + (f0 - jb->f0);
        const float *af = src == SRC_F32 ? jb->acc_f + i * jb->ld + (f0 - jb->f0) : NULL;
        const int32_t *vbase = src == SRC_POP && jb->bases && jb->bases[i] ? jb->bases[i] + f0 : NULL;
        float ps = o->pixel_scale ? o->pixel_scale[p] : 1.0f;
        const float *r = o->residual ? o->residual + p * out_c + f0 : NULL;
        if (o->kind == EBNN_OUT_INT32 && src != SRC_F32) {
            RF(dot_row)(src, ai, vbase, jb->kreal, nf, (int32_t *)o->out + p * out_c + f0);
        } else if (o->kind != EBNN_OUT_BITS) {
            RF(values_any)(src, ai, af, vbase, jb->kreal, nf, ps, m, b, r, jb->clamp,
                           o->clamp_lo, o->clamp_hi, (float *)o->out + p * out_c + f0);
        } else {
            int32_t d[64] __attribute__((aligned(64)));
            float v[64] __attribute__((aligned(64)));
            for (int f = f0, end = f0 + nf; f < end;) {
                int wi = f / 64, lo = f % 64;
                int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64, k = f - f0, n = hi - lo;
                uint64_t bits;
                if (o->thr && src != SRC_F32) {
                    RF(dot_row)(src, ai + k, vbase ? vbase + k : NULL, jb->kreal, n, d);
                    bits = RF(thr_bits)(d, o->thr + f, jb->flipbits[wi - jb->fword0] >> lo, n);
                } else {
                    RF(values_any)(src, ai ? ai + k : NULL, af ? af + k : NULL,
                                   vbase ? vbase + k : NULL, jb->kreal, n, ps, m + k, b + k,
                                   r ? r + k : NULL, 0, 0.0f, 0.0f, v);
                    bits = RF(neg_bits)(v, n);
                }
                put_bits(o, out_c, p, wi, lo, hi, bits << lo);
                f = wi * 64 + hi;
            }
        }
    }
    return 0;
}

/* sign_out bits of stored floats y[0..n) (n <= 64), bit j: t ? (fl && fl[j]
 * ? y > t : y < t) : y < 0 (edgebnn.h) */
ROWS_TARGET static AINLINE uint64_t RF(sign_word)(const float *y, const float *t,
                                                  const uint8_t *fl, int n)
{
#if ROWS_ISA == 3
    uint64_t bits = 0;
    for (int j = 0; j < n; j += 16) {
        __mmask16 lm = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(lm, y + j);
        __m512 tv = t ? _mm512_maskz_loadu_ps(lm, t + j) : _mm512_setzero_ps();
        __mmask16 lt = _mm512_mask_cmp_ps_mask(lm, x, tv, _CMP_LT_OQ), w = lt;
        if (t && fl) {
            __m128i f8 = _mm_maskz_loadu_epi8(lm, fl + j);
            __mmask16 fm = _mm_test_epi8_mask(f8, f8);
            w = (lt & ~fm) | (_mm512_mask_cmp_ps_mask(lm, x, tv, _CMP_GT_OQ) & fm);
        }
        bits |= (uint64_t)w << j;
    }
    return bits;
#elif ROWS_ISA == 2
    uint64_t bits = 0;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_loadu_ps(y + j);
        __m256 tv = t ? _mm256_loadu_ps(t + j) : _mm256_setzero_ps();
        unsigned w = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, tv, _CMP_LT_OQ));
        if (t && fl) {
            __m128i f8 = _mm_loadl_epi64((const __m128i *)(fl + j));
            unsigned fm = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(f8, _mm_setzero_si128())) & 0xFFu;
            unsigned gt = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, tv, _CMP_GT_OQ));
            w = (w & ~fm) | (gt & fm);
        }
        bits |= (uint64_t)w << j;
    }
    for (; j < n; j++) {
        int b = t ? (fl && fl[j] ? y[j] > t[j] : y[j] < t[j]) : y[j] < 0.0f;
        bits |= (uint64_t)b << j;
    }
    return bits;
#else
    uint8_t flags[64] = {0};
    if (!t)
        for (int j = 0; j < n; j++)
            flags[j] = y[j] < 0.0f;
    else if (!fl)
        for (int j = 0; j < n; j++)
            flags[j] = y[j] < t[j];
    else
        for (int j = 0; j < n; j++) {
            float l = fl[j] ? t[j] : y[j], r = fl[j] ? y[j] : t[j];
            flags[j] = l < r;
        }
    return pack_flags(flags);
#endif
}

/* norm_out and sign_out of pixels p0 .. p0+np-1, filters [f0, f0+nf),
 * from the floats already stored in out */
ROWS_TARGET static void RF(sign_rows)(const ebnn_output *o, int out_c, int64_t p0, int np,
                                      int f0, int nf)
{
    const int64_t words = ebnn_words(out_c);
    const float *restrict na = o->norm_sub, *restrict nb = o->norm_mul, *restrict nd = o->norm_add;
    for (int i = 0; i < np; i++) {
        int64_t p = p0 + i;
        const float *y = (const float *)o->out + p * out_c;
        if (o->norm_out) { /* (the same three operations per element) */
            float *restrict z = o->norm_out + p * out_c;
            const float *restrict yr = y;
            for (int k = f0; k < f0 + nf; k++)
                z[k] = (yr[k] - na[k]) * nb[k] + nd[k];
            y = z;
        }
        if (!o->sign_out)
            continue;
        for (int f = f0, end = f0 + nf; f < end;) {
            int wi = f / 64, lo = f % 64;
            int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64;
            uint64_t bits = RF(sign_word)(y + f, o->sign_thr ? o->sign_thr + f : NULL,
                                          o->sign_flip ? o->sign_flip + f : NULL, hi - lo);
            put_row_bits(o->sign_out + p * words, out_c, wi, lo, hi, bits << lo);
            f = wi * 64 + hi;
        }
    }
}

#if ROWS_ISA == 0 && defined(__aarch64__)
/* aarch64 float output (popcounts or float sums) of NG = 16 / 32 filters,
 * no clamp: 64-byte ld1/st1 of four vectors, mul / bias (and the sign
 * thresholds) in registers across the pixels, the dot's base in a register
 * for rows without a base vector. The IEEE operations of values_row in its
 * order (no contraction). sgn: 0 no sign_out, 1 y < 0, 2 y < t, 3 with
 * flips (NG 16: the thresholds need the registers); the NG bits are stored
 * as bytes of their word, the word's first group storing all 8 bytes (the
 * bits beyond out_c: 0), so [f0, f0+NG) must start on 16 filters and the
 * caller's range cover whole words (neon_any). */
static AINLINE void RF(neon_group)(const rows_job *jb, int64_t p0, int np, int f0,
                                   const int NG, const int src, const int has_res,
                                   const int sgn, const int has_bases, const int nrm)
{
    const ebnn_output *o = jb->o;
    const int out_c = jb->out_c;
    const int64_t words = ebnn_words(out_c);
    const float *m = o->mul ? o->mul + f0 : ones_f32;
    const float *b = o->bias ? o->bias + f0 : negzero_f32;
    enum { NV = 8 }; /* vectors of the widest group */
    float32x4_t vm[NV], vb[NV], vt[NV], na[NV], nb[NV], nd[NV];
    uint32x4_t vfl[NV];
    for (int v = 0; v < NG / 4; v++) {
        vm[v] = vld1q_f32(m + 4 * v);
        vb[v] = vld1q_f32(b + 4 * v);
        na[v] = nb[v] = nd[v] = vdupq_n_f32(0.0f);
        if (nrm) {
            na[v] = vld1q_f32(o->norm_sub + f0 + 4 * v);
            nb[v] = vld1q_f32(o->norm_mul + f0 + 4 * v);
            nd[v] = vld1q_f32(o->norm_add + f0 + 4 * v);
        }
        vt[v] = vdupq_n_f32(0.0f);
        vfl[v] = vdupq_n_u32(0);
        if (sgn >= 2)
            vt[v] = vld1q_f32(o->sign_thr + f0 + 4 * v);
        if (sgn == 3) { /* lanes of flipping filters: all ones */
            uint32_t four;
            memcpy(&four, o->sign_flip + f0 + 4 * v, 4);
            uint8x8_t f8 = vreinterpret_u8_u32(vdup_n_u32(four));
            vfl[v] = vtstq_u32(vmovl_u16(vget_low_u16(vmovl_u8(f8))), vdupq_n_u32(0xFF));
        }
    }
    /* byte j of a group of 8 weighs 1 << j */
    const uint8x16_t weights = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull));
    const int32x4_t vk = vdupq_n_s32(jb->kreal);
    /* in locals, rows by pointer steps: the stores could alias *o, *jb */
    const int64_t ld = jb->ld;
    const int32_t *a_i = src == SRC_POP ? jb->acc_i + (f0 - jb->f0) : NULL;
    const float *a_f = src == SRC_F32 ? jb->acc_f + (f0 - jb->f0) : NULL;
    const int32_t *const *const bases = has_bases ? jb->bases : NULL;
    const float *const pscale = o->pixel_scale ? o->pixel_scale + p0 : NULL;
    const float *r = has_res ? o->residual + p0 * out_c + f0 : NULL;
    float *out = (float *)o->out + p0 * out_c + f0;
    float *zout = nrm ? o->norm_out + p0 * out_c + f0 : NULL;
    uint8_t *sg = sgn ? (uint8_t *)(o->sign_out + p0 * words + f0 / 64) + (f0 % 64) / 8 : NULL;
    /* the word's first group stores all its bytes (bits past out_c: 0) */
    const int word_start = f0 % 64 == 0;
    for (int i = 0; i < np; i++) {
        float32x4_t x[NV];
        /* loads: one ld1 of four vectors (64 bytes) per 16 filters */
        if (src == SRC_POP) {
            const int32_t *vbase = has_bases && bases[i] ? bases[i] + f0 : NULL;
            for (int h = 0; h < NG / 16; h++) {
                int32x4x4_t a = vld1q_s32_x4(a_i + 16 * h);
                for (int k = 0; k < 4; k++) {
                    int32x4_t base = vbase ? vld1q_s32(vbase + 16 * h + 4 * k) : vk;
                    x[4 * h + k] = vcvtq_f32_s32(vmlsq_n_s32(base, a.val[k], 2));
                }
            }
            a_i += ld;
        } else {
            for (int h = 0; h < NG / 16; h++) {
                float32x4x4_t a = vld1q_f32_x4(a_f + 16 * h);
                for (int k = 0; k < 4; k++)
                    x[4 * h + k] = a.val[k];
            }
            a_f += ld;
        }
        if (pscale) { /* else *1.0f: skipped (see float_fixed) */
            const float ps = pscale[i];
            for (int v = 0; v < NG / 4; v++)
                x[v] = vmulq_n_f32(x[v], ps);
        }
        for (int h = 0; h < NG / 16; h++) {
            float32x4x4_t res;
            if (has_res)
                res = vld1q_f32_x4(r + 16 * h);
            for (int k = 0; k < 4; k++) {
                int v = 4 * h + k;
                x[v] = vaddq_f32(vmulq_f32(x[v], vm[v]), vb[v]);
                if (has_res)
                    x[v] = vaddq_f32(x[v], res.val[k]);
                vst1q_f32(out + 4 * v, x[v]); /* (a 4-vector st1 would need moves) */
            }
        }
        r += has_res ? out_c : 0;
        out += out_c;
        if (nrm) { /* the batch norm of y, then its signs */
            for (int v = 0; v < NG / 4; v++) {
                x[v] = vaddq_f32(vmulq_f32(vsubq_f32(x[v], na[v]), nb[v]), nd[v]);
                vst1q_f32(zout + 4 * v, x[v]);
            }
            zout += out_c;
        }
        if (!sgn)
            continue;
        /* lane masks -> bytes in filter order (uzp1 keeps the low halves),
         * weighted, then pairwise sums: byte k = bits 8k .. 8k+7 */
        uint8x16_t by[NV / 4];
        for (int h = 0; h < NG / 16; h++) {
            uint32x4_t mk[4];
            for (int k = 0; k < 4; k++) {
                float32x4_t v = x[4 * h + k];
                if (sgn == 1)
                    mk[k] = vcltzq_f32(v);
                else if (sgn == 2)
                    mk[k] = vcltq_f32(v, vt[4 * h + k]);
                else
                    mk[k] = vbslq_u32(vfl[4 * h + k], vcgtq_f32(v, vt[4 * h + k]),
                                      vcltq_f32(v, vt[4 * h + k]));
            }
            uint16x8_t lo = vuzp1q_u16(vreinterpretq_u16_u32(mk[0]), vreinterpretq_u16_u32(mk[1]));
            uint16x8_t hi = vuzp1q_u16(vreinterpretq_u16_u32(mk[2]), vreinterpretq_u16_u32(mk[3]));
            by[h] = vandq_u8(vuzp1q_u8(vreinterpretq_u8_u16(lo), vreinterpretq_u8_u16(hi)), weights);
        }
        uint8x16_t sum = vpaddq_u8(by[0], NG == 32 ? by[1] : by[0]);
        sum = vpaddq_u8(sum, sum);
        sum = vpaddq_u8(sum, sum);
        uint64_t bits = NG == 32 ? vgetq_lane_u32(vreinterpretq_u32_u8(sum), 0)
                                 : vgetq_lane_u16(vreinterpretq_u16_u8(sum), 0);
        if (word_start)
            memcpy(sg, &bits, 8);
        else
            memcpy(sg, &bits, NG / 8);
        sg += words * 8;
    }
}

/* 1 if neon_group served the call (values and sign_out) */
static AINLINE int RF(neon_any)(const rows_job *jb, int64_t p0, int np, int f0, int nf)
{
    const ebnn_output *o = jb->o;
    const int src = jb->src, res = o->residual != NULL;
    if (o->kind != EBNN_OUT_FLOAT || src == SRC_I32 || nf % 16 ||
        o->clamp_lo != -INFINITY || o->clamp_hi != INFINITY)
        return 0;
    int sgn = 0;
    if (o->sign_out) {
        /* whole words only: the word's first group stores all 8 bytes, and
         * the others must be this call's (any call order stays right) */
        if (f0 % 64 || ((f0 + nf) % 64 && f0 + nf != jb->out_c))
            return 0;
        sgn = !o->sign_thr ? 1 : o->sign_flip ? 3 : 2;
    }
    const int nrm = o->norm_out != NULL;
    if (nrm && sgn > 1) /* (thresholds after a batch norm: the general path) */
        return 0;
    const int ng = !nrm && sgn <= 1 && nf % 32 == 0 ? 32 : 16;
#define NG_CALL(NG, S, R, G) \
    do { \
        if (S == SRC_POP && jb->bases) RF(neon_group)(jb, p0, np, f0 + g, NG, S, R, G, 1, NRM); \
        else RF(neon_group)(jb, p0, np, f0 + g, NG, S, R, G, 0, NRM); \
    } while (0)
#define NG_SGN(NG, S, R) \
    do { \
        if (sgn == 0) NG_CALL(NG, S, R, 0); \
        else if (sgn == 1) NG_CALL(NG, S, R, 1); \
        else if (NG == 16 && sgn == 2) NG_CALL(16, S, R, 2); \
        else if (NG == 16) NG_CALL(16, S, R, 3); \
    } while (0)
#define NG_RES(NG, S) do { if (res) NG_SGN(NG, S, 1); else NG_SGN(NG, S, 0); } while (0)
    for (int g = 0; g < nf; g += ng) {
#define NRM 0
        if (ng == 32) {
            if (src == SRC_POP) NG_RES(32, SRC_POP); else NG_RES(32, SRC_F32);
        } else if (!nrm) {
            if (src == SRC_POP) NG_RES(16, SRC_POP); else NG_RES(16, SRC_F32);
        }
#undef NRM
#define NRM 1
        else if (src == SRC_POP) NG_RES(16, SRC_POP); else NG_RES(16, SRC_F32);
#undef NRM
    }
#undef NG_RES
#undef NG_SGN
#undef NG_CALL
    return 1;
}
#endif

/* The stage over rows i < np (pixels p0 + i) and filters [f0, f0 + nf),
 * nf <= ROW_CHUNK (one chunk of rows_run). */
ROWS_TARGET static void RF(rows_chunk)(const rows_job *jb, int64_t p0, int np, int f0, int nf)
{
#if ROWS_ISA == 0 && defined(__aarch64__)
    if (RF(neon_any)(jb, p0, np, f0, nf))
        return;
#endif
    if (!RF(rows_values)(jb, p0, np, f0, nf) && (jb->o->sign_out || jb->o->norm_out) &&
        jb->o->kind == EBNN_OUT_FLOAT)
        RF(sign_rows)(jb->o, jb->out_c, p0, np, f0, nf);
}

/* one pixel of float sums, nf <= ROW_CHUNK: the per-pixel entry of the
 * float kernels, without the rows setup */
ROWS_TARGET static void RF(pixel_f32)(const ebnn_output *o, int out_c, int64_t p, int f0,
                                      int nf, const float *acc, int clamp)
{
    float ps = o->pixel_scale ? o->pixel_scale[p] : 1.0f;
    const float *m = o->mul ? o->mul + f0 : ones_f32;
    const float *b = o->bias ? o->bias + f0 : negzero_f32;
    const float *r = o->residual ? o->residual + p * out_c + f0 : NULL;
    if (o->kind != EBNN_OUT_BITS) {
        RF(values_any)(SRC_F32, NULL, acc, NULL, 0, nf, ps, m, b, r, clamp, o->clamp_lo,
                       o->clamp_hi, (float *)o->out + p * out_c + f0);
        if ((o->sign_out || o->norm_out) && o->kind == EBNN_OUT_FLOAT)
            RF(sign_rows)(o, out_c, p, 1, f0, nf);
        return;
    }
    float v[64] __attribute__((aligned(64)));
    for (int f = f0, end = f0 + nf; f < end;) {
        int wi = f / 64, lo = f % 64;
        int hi = (end - wi * 64) < 64 ? end - wi * 64 : 64, k = f - f0, n = hi - lo;
        RF(values_any)(SRC_F32, NULL, acc + k, NULL, 0, n, ps, m + k, b + k,
                       r ? r + k : NULL, 0, 0.0f, 0.0f, v);
        put_bits(o, out_c, p, wi, lo, hi, RF(neg_bits)(v, n) << lo);
        f = wi * 64 + hi;
    }
}

#undef ROW_DOT
#undef RF
#undef RCAT
#undef RCAT2

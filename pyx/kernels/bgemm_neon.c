/* Popcount GEMM with NEON (aarch64, and armv7 built with -mfpu=neon):
 *   c[i*ldc + j] = sum over kwords words of popcount(a_i ^ b_j).
 *
 * Cost model: per 128 bits of one (row, filter) pair the floor is three
 * instructions (eor, cnt, accumulate), so everything else -- loads, loop
 * control, horizontal reduction -- has to be amortised over a register tile.
 *
 * Tile: up to 8 rows x 4 filters. The 4 filters' 16 bytes-of-counts for one
 * row are folded by a pairwise-add tree into ONE vector (bytes 4f..4f+3 belong
 * to filter f) and widened into that row's u16 accumulator, so a row costs a
 * single accumulator register for four filters: 8 rows x 4 filters need only
 * 8 accumulators, leaving room to keep 4 steps (512 bits) of all 4 filters in
 * registers while the rows stream past. Accumulator lanes 2f, 2f+1 hold
 * filter f; a final pairwise add gives the four totals of a row in order.
 *
 * u16 lanes: each step adds at most 64 to a lane and a final total is at most
 * 64*kwords, so K is processed in blocks of at most KBLOCK words. */
#if defined(__ARM_NEON)
#include <arm_neon.h>

#include "internal.h"

#define TILE_ROWS 8
#define TILE_FILTERS 4
#define KBLOCK 1020 /* words; 64*KBLOCK < 65536 and a multiple of 4 */

#if defined(__aarch64__)
#define padd_u8 vpaddq_u8
#define padd_u16 vpaddq_u16
#else
/* armv7 has pairwise adds on 64-bit halves only */
static inline uint8x16_t padd_u8(uint8x16_t x, uint8x16_t y)
{
    return vcombine_u8(vpadd_u8(vget_low_u8(x), vget_high_u8(x)),
                       vpadd_u8(vget_low_u8(y), vget_high_u8(y)));
}
static inline uint16x8_t padd_u16(uint16x8_t x, uint16x8_t y)
{
    return vcombine_u16(vpadd_u16(vget_low_u16(x), vget_high_u16(x)),
                        vpadd_u16(vget_low_u16(y), vget_high_u16(y)));
}
#endif

static inline uint8x16_t load128(const uint64_t *p)
{
    return vreinterpretq_u8_u64(vld1q_u64(p));
}

/* one 64-bit word in the low half, zeros above (for odd kwords) */
static inline uint8x16_t load64(const uint64_t *p)
{
    return vreinterpretq_u8_u64(vcombine_u64(vld1_u64(p), vdup_n_u64(0)));
}

/* counts of x ^ f0..f3 folded to bytes 4f..4f+3 (each byte <= 32) */
static inline uint8x16_t fold4(uint8x16_t x, uint8x16_t f0, uint8x16_t f1,
                               uint8x16_t f2, uint8x16_t f3)
{
    uint8x16_t c0 = vcntq_u8(veorq_u8(x, f0));
    uint8x16_t c1 = vcntq_u8(veorq_u8(x, f1));
    uint8x16_t c2 = vcntq_u8(veorq_u8(x, f2));
    uint8x16_t c3 = vcntq_u8(veorq_u8(x, f3));
    return padd_u8(padd_u8(c0, c1), padd_u8(c2, c3));
}

/* Accumulate words [k0, k1) of `rows` rows against 4 filters into acc[r].
 * ROWS is a compile-time constant at every call site (always_inline), so the
 * loops over rows unroll and acc[] lives in registers. */
static inline __attribute__((always_inline)) void
block(const int ROWS, const uint64_t *const *ar, const uint64_t *const *bf,
      int k0, int k1, uint16x8_t *acc)
{
    int k = k0;
    for (; k + 8 <= k1; k += 8) { /* 4 steps of 128 bits */
        uint8x16_t b0[4], b1[4], b2[4], b3[4];
        for (int s = 0; s < 4; s++) {
            b0[s] = load128(bf[0] + k + 2 * s);
            b1[s] = load128(bf[1] + k + 2 * s);
            b2[s] = load128(bf[2] + k + 2 * s);
            b3[s] = load128(bf[3] + k + 2 * s);
        }
        for (int r = 0; r < ROWS; r++) {
            const uint64_t *p = ar[r] + k;
            for (int s = 0; s < 4; s++)
                acc[r] = vpadalq_u8(acc[r], fold4(load128(p + 2 * s), b0[s],
                                                  b1[s], b2[s], b3[s]));
        }
    }
    for (; k + 2 <= k1; k += 2) {
        uint8x16_t f0 = load128(bf[0] + k), f1 = load128(bf[1] + k);
        uint8x16_t f2 = load128(bf[2] + k), f3 = load128(bf[3] + k);
        for (int r = 0; r < ROWS; r++)
            acc[r] = vpadalq_u8(acc[r], fold4(load128(ar[r] + k), f0, f1, f2, f3));
    }
    if (k < k1) { /* odd word: zero upper halves add nothing */
        uint8x16_t f0 = load64(bf[0] + k), f1 = load64(bf[1] + k);
        uint8x16_t f2 = load64(bf[2] + k), f3 = load64(bf[3] + k);
        for (int r = 0; r < ROWS; r++)
            acc[r] = vpadalq_u8(acc[r], fold4(load64(ar[r] + k), f0, f1, f2, f3));
    }
}

/* Store (or add, for K blocks after the first) the 4 totals of each row;
 * only the first `nf` filters are real. */
static inline __attribute__((always_inline)) void
store(const int ROWS, const uint16x8_t *acc, int32_t *c, int64_t ldc, int nf,
      int add)
{
    for (int r = 0; r < ROWS; r += 2) {
        /* lanes 0-3: row r filters 0-3, lanes 4-7: row r+1 */
        uint16x8_t t = padd_u16(acc[r], r + 1 < ROWS ? acc[r + 1] : acc[r]);
        uint32x4_t rows[2] = {vmovl_u16(vget_low_u16(t)), vmovl_u16(vget_high_u16(t))};
        for (int h = 0; h < 2 && r + h < ROWS; h++) {
            int32_t *out = c + (int64_t)(r + h) * ldc;
            uint32x4_t v = rows[h];
            if (add)
                v = vaddq_u32(v, vreinterpretq_u32_s32(vld1q_s32(out)));
            if (nf == 4) {
                vst1q_s32(out, vreinterpretq_s32_u32(v));
            } else {
                int32_t tmp[4];
                vst1q_s32(tmp, vreinterpretq_s32_u32(v));
                for (int f = 0; f < nf; f++)
                    out[f] = tmp[f];
            }
        }
    }
}

static inline __attribute__((always_inline)) void
tile(const int ROWS, int i0, int j0, int n, int kwords, const uint64_t *a,
     int64_t lda, const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    const uint64_t *ar[TILE_ROWS], *bf[TILE_FILTERS];
    for (int r = 0; r < ROWS; r++)
        ar[r] = a + (int64_t)(i0 + r) * lda;
    /* missing filters of an edge tile repeat the last real one */
    int nf = n - j0 < TILE_FILTERS ? n - j0 : TILE_FILTERS;
    for (int f = 0; f < TILE_FILTERS; f++)
        bf[f] = b + (int64_t)(j0 + (f < nf ? f : nf - 1)) * ldb;
    int32_t *ct = c + (int64_t)i0 * ldc + j0;
    for (int k0 = 0; k0 < kwords || k0 == 0; k0 += KBLOCK) {
        int k1 = kwords - k0 < KBLOCK ? kwords : k0 + KBLOCK;
        uint16x8_t acc[TILE_ROWS];
        for (int r = 0; r < ROWS; r++)
            acc[r] = vdupq_n_u16(0);
        block(ROWS, ar, bf, k0, k1, acc);
        store(ROWS, acc, ct, ldc, nf, k0 > 0);
    }
}

#define ROW_CASE(R)                                                        \
    case R:                                                                \
        for (int j = 0; j < n; j += TILE_FILTERS)                          \
            tile(R, i, j, n, kwords, a, lda, b, ldb, c, ldc);              \
        break;

void ebnn_bgemm_neon(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                     const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    for (int i = 0; i < m; i += TILE_ROWS) {
        switch (m - i < TILE_ROWS ? m - i : TILE_ROWS) {
            ROW_CASE(8)
            ROW_CASE(7)
            ROW_CASE(6)
            ROW_CASE(5)
            ROW_CASE(4)
            ROW_CASE(3)
            ROW_CASE(2)
            ROW_CASE(1)
        }
    }
}

#endif /* __ARM_NEON */

/* Popcount GEMM with NEON (aarch64, and armv7 built with -mfpu=neon):
 *   c[i*ldc + j] = sum over kwords words of popcount(a_i ^ b_j).
 *
 * Cost model: per 128 bits of one (row, filter) pair the floor is three
 * instructions (eor, cnt, accumulate), so everything else -- loads, loop
 * control, horizontal reduction -- is amortised over a register tile, and
 * the inner loops are inline assembly because with every vector register
 * live the compiler spills and spends instructions on addresses.
 *
 * aarch64 (32 registers): tiles of up to 10 rows x 4 filters. The 4
 * filters' byte counts for one row are folded by a pairwise-add tree into ONE
 * vector (bytes 4f..4f+3 belong to filter f) and widened into that row's u16
 * accumulator, so a row needs one accumulator for four filters, leaving room
 * to hold 4 steps (512 bits) of the 4 filters while the rows stream past.
 * armv7 (16 registers, pairwise adds only on 64-bit halves): 2 rows x 4
 * filters with one accumulator per pair, 2 steps per load.
 *
 * u16 lanes: a final total is at most 64*kwords and is summed in u16, so K
 * is processed in blocks of at most KBLOCK words, added up in int32. */
#if defined(__ARM_NEON)
#include <arm_neon.h>
#include <stddef.h>

#include "internal.h"

#define KBLOCK 1020 /* words; 64*KBLOCK < 65536 and a multiple of 4 */

/* Everything a tile's asm needs besides its pointers, in bytes. Rows and
 * filters are read through one pointer each, advanced by the stride after
 * every load; the last load of a block advances by the "wrap" instead (back
 * to the first row/filter, one block further on), so the loops spend no
 * instruction on addresses. */
typedef struct {
    intptr_t lda, ldb, ldc;
    intptr_t al4, al2, al1, alh; /* row wraps after 4, 2, 1 steps / 1 word */
    intptr_t bl4, bl2, bl1, blh; /* filter wraps, the same blocks          */
    intptr_t bstep;              /* end of K -> next tile's first filter  */
    intptr_t cl;                 /* last output row -> next tile          */
    intptr_t kbytes;
    intptr_t iters, tail; /* 4-step blocks (armv7: 2-step); tail bits
                             aarch64: 2 = 2 steps, 1 = 1 step, 4 = a word;
                             armv7: 2 = 1 step, 1 = a word */
} a_plan;

#if defined(__aarch64__)
/* ------------------------------------------------------------ aarch64 ---
 * One asm statement runs a row tile of R <= 10 rows against nt filter tiles
 * of 4 (the compiler's own code spilled and recomputed addresses with all
 * 32 vector registers live). Registers: v0-v9 accumulators (row r in v<r>),
 * v10-v13 the current row's 4 steps, v14-v15 counts, v16-v31 the filters
 * (filter f step s in v<16+4f+s>). The last filter's eor overwrites the row
 * register it no longer needs, so two count temporaries suffice and 10 rows
 * fit. Rows and filters are each read through one pointer advanced by the
 * row stride after every load (post-index); the last load of a block
 * advances by "stride back to the first row + block width" instead, so no
 * instruction is spent on addresses. The first block of a tile writes the
 * accumulators (uaddlp) instead of adding to them, so they need no zeroing.
 */
#define A_STEP(r, A, B0, B1, B2, B3, OP)                                   \
    "eor v14.16b, v" #A ".16b, v" #B0 ".16b\n\t"                           \
    "eor v15.16b, v" #A ".16b, v" #B1 ".16b\n\t"                           \
    "cnt v14.16b, v14.16b\n\t"                                             \
    "cnt v15.16b, v15.16b\n\t"                                             \
    "addp v14.16b, v14.16b, v15.16b\n\t"                                   \
    "eor v15.16b, v" #A ".16b, v" #B2 ".16b\n\t"                           \
    "eor v" #A ".16b, v" #A ".16b, v" #B3 ".16b\n\t"                       \
    "cnt v15.16b, v15.16b\n\t"                                             \
    "cnt v" #A ".16b, v" #A ".16b\n\t"                                     \
    "addp v15.16b, v15.16b, v" #A ".16b\n\t"                               \
    "addp v14.16b, v14.16b, v15.16b\n\t"                                   \
    OP " v" #r ".8h, v14.16b\n\t"
#define A_STEP0(r, OP) A_STEP(r, 10, 16, 20, 24, 28, OP)
#define A_STEP1(r, OP) A_STEP(r, 11, 17, 21, 25, 29, OP)
#define A_STEP2(r, OP) A_STEP(r, 12, 18, 22, 26, 30, OP)
#define A_STEP3(r, OP) A_STEP(r, 13, 19, 23, 27, 31, OP)

/* one row for block kind 4, 2, 1 (steps of 128 bits) or H (one 64-bit
 * word: a 64-bit load zeroes the upper half, which then counts 0); OP is
 * the first step's accumulate (uaddlp starts the sum, uadalp adds) */
#define A_ROW4(r, inc, OP) "ld1 {v10.16b-v13.16b}, [%[pa]], %[" #inc "]\n\t" \
    A_STEP0(r, OP) A_STEP1(r, "uadalp") A_STEP2(r, "uadalp") A_STEP3(r, "uadalp")
#define A_ROW2(r, inc, OP) "ld1 {v10.16b-v11.16b}, [%[pa]], %[" #inc "]\n\t" \
    A_STEP0(r, OP) A_STEP1(r, "uadalp")
#define A_ROW1(r, inc, OP) "ld1 {v10.16b}, [%[pa]], %[" #inc "]\n\t" A_STEP0(r, OP)
#define A_ROWH(r, inc, OP) "ld1 {v10.1d}, [%[pa]], %[" #inc "]\n\t" A_STEP0(r, OP)

#define A_FILTERS(r0, r1, r2, r3, last)                                    \
    "ld1 {" r0 "}, [%[pb]], %[ldb]\n\t"                                    \
    "ld1 {" r1 "}, [%[pb]], %[ldb]\n\t"                                    \
    "ld1 {" r2 "}, [%[pb]], %[ldb]\n\t"                                    \
    "ld1 {" r3 "}, [%[pb]], %[" last "]\n\t"
#define A_FILTERS4 A_FILTERS("v16.16b-v19.16b", "v20.16b-v23.16b",         \
                             "v24.16b-v27.16b", "v28.16b-v31.16b", "bl4")
#define A_FILTERS2 A_FILTERS("v16.16b-v17.16b", "v20.16b-v21.16b",         \
                             "v24.16b-v25.16b", "v28.16b-v29.16b", "bl2")
#define A_FILTERS1 A_FILTERS("v16.16b", "v20.16b", "v24.16b", "v28.16b", "bl1")
#define A_FILTERSH A_FILTERS("v16.1d", "v20.1d", "v24.1d", "v28.1d", "blh")

/* rows 0..n-1 stepping by lda; A_ROWS_R adds row R-1 with the wrap-around */
#define A_FIRST_0(S, OP)
#define A_FIRST_1(S, OP) A_ROW##S(0, lda, OP)
#define A_FIRST_2(S, OP) A_FIRST_1(S, OP) A_ROW##S(1, lda, OP)
#define A_FIRST_3(S, OP) A_FIRST_2(S, OP) A_ROW##S(2, lda, OP)
#define A_FIRST_4(S, OP) A_FIRST_3(S, OP) A_ROW##S(3, lda, OP)
#define A_FIRST_5(S, OP) A_FIRST_4(S, OP) A_ROW##S(4, lda, OP)
#define A_FIRST_6(S, OP) A_FIRST_5(S, OP) A_ROW##S(5, lda, OP)
#define A_FIRST_7(S, OP) A_FIRST_6(S, OP) A_ROW##S(6, lda, OP)
#define A_FIRST_8(S, OP) A_FIRST_7(S, OP) A_ROW##S(7, lda, OP)
#define A_FIRST_9(S, OP) A_FIRST_8(S, OP) A_ROW##S(8, lda, OP)
#define A_ROWS_1(S, OP) A_FIRST_0(S, OP) A_ROW##S(0, al##S, OP)
#define A_ROWS_2(S, OP) A_FIRST_1(S, OP) A_ROW##S(1, al##S, OP)
#define A_ROWS_3(S, OP) A_FIRST_2(S, OP) A_ROW##S(2, al##S, OP)
#define A_ROWS_4(S, OP) A_FIRST_3(S, OP) A_ROW##S(3, al##S, OP)
#define A_ROWS_5(S, OP) A_FIRST_4(S, OP) A_ROW##S(4, al##S, OP)
#define A_ROWS_6(S, OP) A_FIRST_5(S, OP) A_ROW##S(5, al##S, OP)
#define A_ROWS_7(S, OP) A_FIRST_6(S, OP) A_ROW##S(6, al##S, OP)
#define A_ROWS_8(S, OP) A_FIRST_7(S, OP) A_ROW##S(7, al##S, OP)
#define A_ROWS_9(S, OP) A_FIRST_8(S, OP) A_ROW##S(8, al##S, OP)
#define A_ROWS_10(S, OP) A_FIRST_9(S, OP) A_ROW##S(9, al##S, OP)

#define A_ZERO_1 "movi v0.8h, #0\n\t"
#define A_ZERO_2 A_ZERO_1 "movi v1.8h, #0\n\t"
#define A_ZERO_3 A_ZERO_2 "movi v2.8h, #0\n\t"
#define A_ZERO_4 A_ZERO_3 "movi v3.8h, #0\n\t"
#define A_ZERO_5 A_ZERO_4 "movi v4.8h, #0\n\t"
#define A_ZERO_6 A_ZERO_5 "movi v5.8h, #0\n\t"
#define A_ZERO_7 A_ZERO_6 "movi v6.8h, #0\n\t"
#define A_ZERO_8 A_ZERO_7 "movi v7.8h, #0\n\t"
#define A_ZERO_9 A_ZERO_8 "movi v8.8h, #0\n\t"
#define A_ZERO_10 A_ZERO_9 "movi v9.8h, #0\n\t"

/* lanes 2f, 2f+1 of v<r> hold filter f: one pairwise widening add gives
 * row r's 4 totals as u32; the last row's store moves pc to the next tile */
#define A_OUT(r, inc)                                                      \
    "uaddlp v14.4s, v" #r ".8h\n\t"                                        \
    "st1 {v14.4s}, [%[pc]], %[" #inc "]\n\t"
#define A_OUT_1 A_OUT(0, cl)
#define A_OUT_2 A_OUT(0, ldc) A_OUT(1, cl)
#define A_OUT_3 A_OUT(0, ldc) A_OUT(1, ldc) A_OUT(2, cl)
#define A_OUT_4 A_OUT(0, ldc) A_OUT(1, ldc) A_OUT(2, ldc) A_OUT(3, cl)
#define A_OUT_5 A_OUT(0, ldc) A_OUT(1, ldc) A_OUT(2, ldc) A_OUT(3, ldc) A_OUT(4, cl)
#define A_OUT_6 A_OUT(0, ldc) A_OUT(1, ldc) A_OUT(2, ldc) A_OUT(3, ldc) \
    A_OUT(4, ldc) A_OUT(5, cl)
#define A_OUT_7 A_OUT(0, ldc) A_OUT(1, ldc) A_OUT(2, ldc) A_OUT(3, ldc) \
    A_OUT(4, ldc) A_OUT(5, ldc) A_OUT(6, cl)
#define A_OUT_8 A_OUT(0, ldc) A_OUT(1, ldc) A_OUT(2, ldc) A_OUT(3, ldc) \
    A_OUT(4, ldc) A_OUT(5, ldc) A_OUT(6, ldc) A_OUT(7, cl)
#define A_OUT_9 A_OUT(0, ldc) A_OUT(1, ldc) A_OUT(2, ldc) A_OUT(3, ldc) \
    A_OUT(4, ldc) A_OUT(5, ldc) A_OUT(6, ldc) A_OUT(7, ldc) A_OUT(8, cl)
#define A_OUT_10 A_OUT(0, ldc) A_OUT(1, ldc) A_OUT(2, ldc) A_OUT(3, ldc) \
    A_OUT(4, ldc) A_OUT(5, ldc) A_OUT(6, ldc) A_OUT(7, ldc) A_OUT(8, ldc) \
    A_OUT(9, cl)


/* Blocks run in the order: first the tail blocks (2, 1, H), then the
 * 4-step loop; whichever comes first initialises the accumulators. */
#define A_TILE(R)                                                          \
    static void bgemm_neon_tile_##R(const uint64_t *pa, const uint64_t *pb, \
                                    int32_t *pc, int nt, const a_plan *p)  \
    {                                                                      \
        const uint64_t *row;                                               \
        int it;                                                            \
        __asm__ volatile(                                                  \
            "0:\n\t"                                                       \
            "mov %[pa], %[a]\n\t"                                             \
            "mov %w[it], %w[iters]\n\t"                                    \
            "tbz %w[tail], #1, 10f\n\t"                                    \
            A_FILTERS2 A_ROWS_##R(2, "uaddlp")                             \
            "b 11f\n"                                                      \
            "10:\n\t"                                                      \
            "tbz %w[tail], #0, 12f\n\t"                                    \
            A_FILTERS1 A_ROWS_##R(1, "uaddlp")                             \
            "b 13f\n"                                                      \
            "12:\n\t"                                                      \
            "tbz %w[tail], #2, 14f\n\t"                                    \
            A_FILTERSH A_ROWS_##R(H, "uaddlp")                             \
            "b 15f\n"                                                      \
            "14:\n\t"                                                      \
            "cbz %w[it], 16f\n\t"                                          \
            A_FILTERS4 A_ROWS_##R(4, "uaddlp")                             \
            "sub %w[it], %w[it], #1\n\t"                                   \
            "b 15f\n"                                                      \
            "16:\n\t" A_ZERO_##R                                           \
            "b 20f\n"                                                      \
            "11:\n\t"                                                      \
            "tbz %w[tail], #0, 13f\n\t"                                    \
            A_FILTERS1 A_ROWS_##R(1, "uadalp")                             \
            "13:\n\t"                                                      \
            "tbz %w[tail], #2, 15f\n\t"                                    \
            A_FILTERSH A_ROWS_##R(H, "uadalp")                             \
            "15:\n\t"                                                      \
            "cbz %w[it], 20f\n"                                            \
            "1:\n\t"                                                       \
            A_FILTERS4 A_ROWS_##R(4, "uadalp")                             \
            "subs %w[it], %w[it], #1\n\t"                                  \
            "b.ne 1b\n"                                                    \
            "20:\n\t" A_OUT_##R                                            \
            "add %[pb], %[pb], %[bstep]\n\t"                               \
            "subs %w[nt], %w[nt], #1\n\t"                                  \
            "b.ne 0b\n\t"                                                  \
            : [pa] "=&r"(row), [it] "=&r"(it), [pb] "+r"(pb),              \
              [pc] "+r"(pc), [nt] "+r"(nt)                                 \
            : [a] "r"(pa), [iters] "r"(p->iters), [tail] "r"(p->tail),     \
              [lda] "r"(p->lda), [ldb] "r"(p->ldb), [ldc] "r"(p->ldc),     \
              [al4] "r"(p->al4), [al2] "r"(p->al2), [al1] "r"(p->al1),     \
              [alH] "r"(p->alh), [bl4] "r"(p->bl4), [bl2] "r"(p->bl2),     \
              [bl1] "r"(p->bl1), [blh] "r"(p->blh), [bstep] "r"(p->bstep), \
              [cl] "r"(p->cl)                                              \
            : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9",  \
              "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17",      \
              "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25",      \
              "v26", "v27", "v28", "v29", "v30", "v31", "cc", "memory");   \
    }
A_TILE(1)
A_TILE(2)
A_TILE(3)
A_TILE(4)
A_TILE(5)
A_TILE(6)
A_TILE(7)
A_TILE(8)
A_TILE(9)
A_TILE(10)

typedef void (*tile_fn)(const uint64_t *, const uint64_t *, int32_t *, int,
                        const a_plan *);
static const tile_fn tiles[11] = {
    NULL, bgemm_neon_tile_1, bgemm_neon_tile_2, bgemm_neon_tile_3,
    bgemm_neon_tile_4, bgemm_neon_tile_5, bgemm_neon_tile_6, bgemm_neon_tile_7,
    bgemm_neon_tile_8, bgemm_neon_tile_9, bgemm_neon_tile_10};
#define MAX_ROWS 10
#define ASM_ROWS(rows) (rows)
#define DIRECT_OK(rows) 1
#define STEP_WORDS 8 /* words per loop iteration */
#define TAIL_BITS(kw) (((kw) / 2 & 3) | ((kw) & 1) << 2)

#else
/* -------------------------------------------------------------- armv7 ---
 * Tiles of 2 rows x 4 filters. Registers: q0-q3 row 0 x filters 0-3, q4-q7
 * row 1 (u16 accumulators, each lane <= 16 per step), q8-q9 / q10-q11 two
 * steps of rows 0 / 1, q12-q13 two steps of the current filter, q14-q15
 * counts. One asm statement runs all nt filter tiles: zero, the 2-step loop,
 * a 1-step and a 64-bit tail, the reduction (in u16: a total is < 65536
 * within a K block) and the store. Only 14 core registers exist, so the
 * rarely needed strides are loaded from the plan when used. */
#define V_PAIR(acc, row, filt, t)                                          \
    "veor " t ", " row ", " filt "\n\t"                                     \
    "vcnt.8 " t ", " t "\n\t"                                              \
    "vpadal.u8 " acc ", " t "\n\t"
/* filter f (accumulators q<f>, acc1) over 2 steps; inc: pointer advance */
#define V_FILTER2(f, acc1, inc)                                            \
    "vld1.64 {d24-d27}, [%[pb]], %[" inc "]\n\t"                           \
    V_PAIR("q" #f, "q8", "q12", "q14") V_PAIR("q" #f, "q9", "q13", "q15")  \
    V_PAIR(acc1, "q10", "q12", "q14") V_PAIR(acc1, "q11", "q13", "q15")
#define V_FILTER1(f, acc1, inc)                                            \
    "vld1.64 {d24-d25}, [%[pb]], %[" inc "]\n\t"                           \
    V_PAIR("q" #f, "q8", "q12", "q14") V_PAIR(acc1, "q10", "q12", "q15")
/* one 64-bit word: d registers, accumulating into the low halves */
#define V_FILTERH(lo0, lo1, inc)                                           \
    "vld1.64 {d24}, [%[pb]], %[" inc "]\n\t"                               \
    V_PAIR(lo0, "d16", "d24", "d28") V_PAIR(lo1, "d20", "d24", "d30")
/* 4 u16x8 accumulators of one row -> 4 u32 totals in q12 */
#define V_REDUCE(d0, d1, d2, d3, d4, d5, d6, d7)                           \
    "vpadd.i16 d16, " d0 ", " d1 "\n\t"                                    \
    "vpadd.i16 d17, " d2 ", " d3 "\n\t"                                    \
    "vpadd.i16 d18, " d4 ", " d5 "\n\t"                                    \
    "vpadd.i16 d19, " d6 ", " d7 "\n\t"                                    \
    "vpadd.i16 d20, d16, d17\n\t"                                          \
    "vpadd.i16 d21, d18, d19\n\t"                                          \
    "vpadd.i16 d22, d20, d21\n\t"                                          \
    "vmovl.u16 q12, d22\n\t"
#define V_OFF(field) [field] "i"(offsetof(a_plan, field))

/* 2 rows (the second at pa + lda) x nt tiles of 4 filters */
static void bgemm_neon_tile_2(const uint64_t *pa, const uint64_t *pb,
                              int32_t *pc, int nt, const a_plan *p)
{
    const uint64_t *a0 = pa, *a1 = (const uint64_t *)((const char *)pa + p->lda);
    intptr_t it, left = nt; /* tiles to go: in memory, registers are scarce */
    __asm__ volatile(
        "0:\n\t"
        "vmov.i16 q0, #0\n\tvmov.i16 q1, #0\n\tvmov.i16 q2, #0\n\t"
        "vmov.i16 q3, #0\n\tvmov.i16 q4, #0\n\tvmov.i16 q5, #0\n\t"
        "vmov.i16 q6, #0\n\tvmov.i16 q7, #0\n\t"
        "ldr %[it], [%[p], %[iters]]\n\t"
        "cmp %[it], #0\n\t"
        "beq 2f\n"
        "1:\n\t"
        "vld1.64 {d16-d19}, [%[a0]]!\n\t"
        "vld1.64 {d20-d23}, [%[a1]]!\n\t"
        V_FILTER2(0, "q4", "ldb") V_FILTER2(1, "q5", "ldb")
        V_FILTER2(2, "q6", "ldb") V_FILTER2(3, "q7", "bl2")
        "subs %[it], %[it], #1\n\t"
        "bne 1b\n"
        "2:\n\t"
        "ldr %[it], [%[p], %[tail]]\n\t"
        "tst %[it], #2\n\t"
        "beq 3f\n\t"
        "ldr %[it], [%[p], %[bl1]]\n\t"
        "vld1.64 {d16-d17}, [%[a0]]!\n\t"
        "vld1.64 {d20-d21}, [%[a1]]!\n\t"
        V_FILTER1(0, "q4", "ldb") V_FILTER1(1, "q5", "ldb")
        V_FILTER1(2, "q6", "ldb") V_FILTER1(3, "q7", "it")
        "ldr %[it], [%[p], %[tail]]\n"
        "3:\n\t"
        "tst %[it], #1\n\t"
        "beq 4f\n\t"
        "ldr %[it], [%[p], %[blh]]\n\t"
        "vld1.64 {d16}, [%[a0]]!\n\t"
        "vld1.64 {d20}, [%[a1]]!\n\t"
        V_FILTERH("d0", "d8", "ldb") V_FILTERH("d2", "d10", "ldb")
        V_FILTERH("d4", "d12", "ldb") V_FILTERH("d6", "d14", "it")
        "4:\n\t"
        "ldr %[it], [%[p], %[ldc]]\n\t"
        V_REDUCE("d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7")
        "vst1.32 {d24-d25}, [%[pc]], %[it]\n\t"
        "ldr %[it], [%[p], %[cl]]\n\t"
        V_REDUCE("d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15")
        "vst1.32 {d24-d25}, [%[pc]], %[it]\n\t"
        "ldr %[it], [%[p], %[kbytes]]\n\t"
        "sub %[a0], %[a0], %[it]\n\t"
        "sub %[a1], %[a1], %[it]\n\t"
        "ldr %[it], [%[p], %[bstep]]\n\t"
        "add %[pb], %[pb], %[it]\n\t"
        "ldr %[it], [%[left]]\n\t"
        "subs %[it], %[it], #1\n\t"
        "str %[it], [%[left]]\n\t"
        "bne 0b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [pb] "+r"(pb), [pc] "+r"(pc),
          [it] "=&r"(it)
        : [p] "r"(p), [left] "r"(&left), [ldb] "r"(p->ldb), [bl2] "r"(p->bl2),
          V_OFF(iters),
          V_OFF(tail), V_OFF(bl1), V_OFF(blh), V_OFF(ldc), V_OFF(cl),
          V_OFF(kbytes), V_OFF(bstep)
        : "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10",
          "d11", "d12", "d13", "d14", "d15", "d16", "d17", "d18", "d19",
          "d20", "d21", "d22", "d23", "d24", "d25", "d26", "d27", "d28",
          "d29", "d30", "d31", "cc", "memory");
}

/* a single row: the 2-row tile reading it twice (the driver buffers it) */
static void bgemm_neon_tile_1(const uint64_t *pa, const uint64_t *pb,
                              int32_t *pc, int nt, const a_plan *p)
{
    a_plan q = *p;
    q.lda = 0;
    bgemm_neon_tile_2(pa, pb, pc, nt, &q);
}

typedef void (*tile_fn)(const uint64_t *, const uint64_t *, int32_t *, int,
                        const a_plan *);
static const tile_fn tiles[3] = {NULL, bgemm_neon_tile_1, bgemm_neon_tile_2};
#define MAX_ROWS 2
#define ASM_ROWS(rows) 2 /* always writes 2 rows: 1-row tiles are buffered */
#define DIRECT_OK(rows) ((rows) == 2)
#define STEP_WORDS 4
#define TAIL_BITS(kw) (((kw) / 2 & 1) << 1 | ((kw) & 1))
#endif

/* ------------------------------------------------- shared driver --- */
/* rows: the rows the asm processes (and writes) */
static void plan(a_plan *p, int rows, int kw, int64_t lda_words,
                 int64_t ldb_words, int64_t ldc_ints)
{
    intptr_t kbytes = (intptr_t)kw * 8, wrap_a = (rows - 1) * lda_words * 8;
    p->lda = lda_words * 8;
    p->ldb = ldb_words * 8;
    p->ldc = ldc_ints * 4;
    p->al4 = 64 - wrap_a; /* back to row 0, one block further */
    p->al2 = 32 - wrap_a;
    p->al1 = 16 - wrap_a;
    p->alh = 8 - wrap_a;
    p->bl4 = 64 - 3 * p->ldb;
    p->bl2 = 32 - 3 * p->ldb;
    p->bl1 = 16 - 3 * p->ldb;
    p->blh = 8 - 3 * p->ldb;
    p->bstep = 4 * p->ldb - kbytes; /* from the end of K to the next tile */
    p->cl = 16 - (rows - 1) * p->ldc;
    p->kbytes = kbytes;
    p->iters = kw / STEP_WORDS;
    p->tail = TAIL_BITS(kw);
}

/* Rows [i0, i0+rows) against all n filters over the K block [k0, k1). Whole
 * filter tiles of the first block go straight into c; the rest (a last
 * partial filter tile, later K blocks adding to c) through a small buffer. */
/* the direct tiles' plan, kept across the row tiles of one call (they
 * mostly share rows and K width; strides are fixed per call) */
typedef struct {
    a_plan p;
    int rows, kw;
} plan_cache;

static void bgemm_neon_rows(int rows, int i0, int n, int k0, int k1,
                            const uint64_t *a, int64_t lda, const uint64_t *b,
                            int64_t ldb, int32_t *c, int64_t ldc, int first,
                            plan_cache *pc)
{
    tile_fn fn = tiles[rows];
    const uint64_t *pa = a + (int64_t)i0 * lda + k0;
    int32_t *ct = c + (int64_t)i0 * ldc;
    a_plan p;
    int j = 0;
    if (first && n >= 4 && DIRECT_OK(rows)) {
        if (pc->rows != rows || pc->kw != k1 - k0) {
            plan(&pc->p, rows, k1 - k0, lda, ldb, ldc);
            pc->rows = rows;
            pc->kw = k1 - k0;
        }
        fn(pa, b + k0, ct, n / 4, &pc->p);
        j = n / 4 * 4;
    }
    /* buffered: 4 filters from j (shifted back to n-4 at the edge when
     * possible), or for n < 4 one filter at a time read 4 times (ldb 0) */
    int32_t tmp[MAX_ROWS * 4];
    while (j < n) {
        int j4 = j + 4 <= n ? j : n >= 4 ? n - 4 : j;
        int single = j4 + 4 > n;
        plan(&p, ASM_ROWS(rows), k1 - k0, lda, single ? 0 : ldb, 4);
        fn(pa, b + (int64_t)j4 * ldb + k0, tmp, 1, &p);
        int jn = single ? j + 1 : j4 + 4;
        for (int r = 0; r < rows; r++)
            for (int jj = j; jj < jn; jj++) {
                int32_t v = tmp[r * 4 + (jj - j4) * !single];
                ct[r * ldc + jj] = first ? v : ct[r * ldc + jj] + v;
            }
        j = jn;
    }
}

void ebnn_bgemm_neon(int m, int n, int kwords, const uint64_t *a, int64_t lda,
                     const uint64_t *b, int64_t ldb, int32_t *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    /* balanced row tiles of at most MAX_ROWS rows (196 -> 16 x 10 + 4 x 9) */
    int ntiles = (m + MAX_ROWS - 1) / MAX_ROWS;
    int base = m / ntiles, extra = m % ntiles;
    plan_cache pc = {.rows = -1};
    for (int t = 0, i = 0; t < ntiles; t++) {
        int rows = base + (t < extra);
        for (int k0 = 0; k0 < kwords || k0 == 0; k0 += KBLOCK) {
            int k1 = kwords - k0 < KBLOCK ? kwords : k0 + KBLOCK;
            bgemm_neon_rows(rows, i, n, k0, k1, a, lda, b, ldb, c, ldc, k0 == 0, &pc);
        }
        i += rows;
    }
}

#endif /* __ARM_NEON */

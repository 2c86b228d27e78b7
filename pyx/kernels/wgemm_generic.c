/* Portable weights-only dot products: the weight bit is XORed into the float
 * sign bit (x * sign(w) without a multiply or a branch), eight partial sums
 * so the compiler can keep them in vector registers. Weight words are read
 * as little-endian bytes (every target we build for). */
#include <string.h>
#include "wgemm.h"

static inline float flip_sign(float x, uint32_t bit)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u ^= bit << 31;
    memcpy(&x, &u, 4);
    return x;
}

static float one_dot(int ntaps, const float *const *x, int64_t xoff,
                     const int64_t *wtap, int c, const uint64_t *wf)
{
    float part[8] = {0};
    for (int t = 0; t < ntaps; t++) {
        const uint64_t *wt = wf + wtap[t];
        const float *xt = x[t] + xoff;
        for (int i0 = 0; i0 < c; i0 += 8) {
            uint32_t bits = (uint32_t)(wt[i0 >> 6] >> (i0 & 63)) & 0xff;
            int n = c - i0 < 8 ? c - i0 : 8;
            for (int l = 0; l < n; l++)
                part[l] += flip_sign(xt[i0 + l], (bits >> l) & 1);
        }
    }
    return ((part[0] + part[1]) + (part[2] + part[3])) +
           ((part[4] + part[5]) + (part[6] + part[7]));
}

void ebnn_wgemm_generic(int npix, int64_t xstep, int ntaps,
                        const float *const *x, const int64_t *wtap, int c,
                        const uint64_t *w, int64_t ldw, int nf, float *acc,
                        int64_t ldacc)
{
    for (int j = 0; j < npix; j++)
        for (int f = 0; f < nf; f++)
            acc[j * ldacc + f] = one_dot(ntaps, x, j * xstep, wtap, c, w + f * ldw);
}

/* eight filters at a time in a lane array (32-bit ops on one weight byte,
 * which the compiler vectorizes): the sign flip of x per filter bit */
void ebnn_wgemmt_generic(int ns, const float *val, const int64_t *row,
                         const uint64_t *tw, int fw, int nf, float *acc)
{
    for (int f0 = 0; f0 < nf; f0 += 8) {
        int n = nf - f0 < 8 ? nf - f0 : 8;
        const uint8_t *col = (const uint8_t *)(tw + (f0 >> 6)) + ((f0 & 63) >> 3);
        float lane[8] = {0};
        for (int k = 0; k < ns; k++) {
            uint32_t byte = col[row[k] * fw * 8];
            for (int l = 0; l < 8; l++)
                lane[l] += flip_sign(val[k], (byte >> l) & 1);
        }
        for (int l = 0; l < n; l++)
            acc[f0 + l] = lane[l];
    }
}

/* Portable weights-only dot products: the weight bit is XORed into the float
 * sign bit (x * sign(w) without a multiply or a branch), eight partial sums
 * so the compiler can keep them in vector registers. */
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

/* filters in a small lane array: the sign flip of x per filter bit */
void ebnn_wgemmt_generic(int ns, const float *val, const int64_t *row,
                         const uint64_t *tw, int fw, int nf, float *acc)
{
    for (int f0 = 0; f0 < nf; f0 += 64) {
        int n = nf - f0 < 64 ? nf - f0 : 64;
        float lane[64] = {0};
        for (int k = 0; k < ns; k++) {
            uint64_t word = tw[row[k] * fw + (f0 >> 6)];
            for (int l = 0; l < n; l++)
                lane[l] += flip_sign(val[k], (uint32_t)(word >> l) & 1);
        }
        for (int l = 0; l < n; l++)
            acc[f0 + l] = lane[l];
    }
}

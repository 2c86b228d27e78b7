/* Reference weights-only dot products: the definition, one term at a time. */
#include "wgemm.h"

void ebnn_wgemm_ref(int npix, int64_t xstep, int ntaps, const float *const *x,
                    const int64_t *wtap, int c, const uint64_t *w, int64_t ldw,
                    int nf, float *acc, int64_t ldacc)
{
    for (int j = 0; j < npix; j++)
        for (int f = 0; f < nf; f++) {
            float s = 0.0f;
            for (int t = 0; t < ntaps; t++) {
                const uint64_t *wt = w + f * ldw + wtap[t];
                const float *xt = x[t] + j * xstep;
                for (int i = 0; i < c; i++)
                    s += (wt[i >> 6] >> (i & 63)) & 1 ? -xt[i] : xt[i];
            }
            acc[j * ldacc + f] = s;
        }
}

void ebnn_wgemmt_ref(int ns, const float *val, const int64_t *row,
                     const uint64_t *tw, int fw, int nf, float *acc)
{
    for (int f = 0; f < nf; f++) {
        float s = 0.0f;
        for (int k = 0; k < ns; k++)
            s += (tw[row[k] * fw + (f >> 6)] >> (f & 63)) & 1 ? -val[k] : val[k];
        acc[f] = s;
    }
}

/* Convolution / pooling geometry with TensorFlow's padding rules. */
#include "edgebnn.h"

#define EBNN_DIM_MAX (1 << 24) /* any one dimension */

int ebnn_conv_geom_init(ebnn_conv_geom *g, int n, int in_h, int in_w,
                        int in_c, int out_c, int kh, int kw, int stride_h,
                        int stride_w, int same, int pad_mode)
{
    const int dims[] = {n, in_h, in_w, in_c, out_c, kh, kw, stride_h, stride_w};
    for (unsigned i = 0; i < sizeof dims / sizeof *dims; i++)
        if (dims[i] <= 0 || dims[i] > EBNN_DIM_MAX)
            return -1;
    if (pad_mode < EBNN_PAD_VALID || pad_mode > EBNN_PAD_ZERO)
        return -1;
    if (!same && pad_mode != EBNN_PAD_VALID)
        return -1;
    int oh, ow, pt = 0, pl = 0;
    if (same) {
        oh = (in_h + stride_h - 1) / stride_h;
        ow = (in_w + stride_w - 1) / stride_w;
        int ph = (oh - 1) * stride_h + kh - in_h;
        int pw = (ow - 1) * stride_w + kw - in_w;
        pt = ph > 0 ? ph / 2 : 0;
        pl = pw > 0 ? pw / 2 : 0;
    } else {
        if (kh > in_h || kw > in_w)
            return -1;
        oh = (in_h - kh) / stride_h + 1;
        ow = (in_w - kw) / stride_w + 1;
    }
    /* every product a kernel forms must fit in int64 and the per-pixel
     * reduction length in int32 */
    int64_t pixels = (int64_t)n * oh * ow;
    int64_t in_px = (int64_t)n * in_h * in_w;
    int64_t kdepth = (int64_t)kh * kw * in_c;
    if (pixels > ((int64_t)1 << 40) || in_px > ((int64_t)1 << 40) ||
        kdepth > ((int64_t)1 << 30) || pixels * out_c > ((int64_t)1 << 46) ||
        in_px * in_c > ((int64_t)1 << 46))
        return -1;
    g->n = n; g->in_h = in_h; g->in_w = in_w; g->in_c = in_c;
    g->out_c = out_c; g->kh = kh; g->kw = kw;
    g->stride_h = stride_h; g->stride_w = stride_w;
    g->pad_top = pt; g->pad_left = pl;
    g->out_h = oh; g->out_w = ow;
    g->pad_mode = same ? pad_mode : EBNN_PAD_VALID;
    return 0;
}

# Binary ops: bitpack, bconv2d, bdense, maxpool_bits, and the throughput
# probes the kernel benchmark compares against. Packed inputs and weights
# must have zero padding bits in their last word (ValueError otherwise):
# masking them silently would hide a packing bug upstream.
import time as _time

cdef extern from "bprobe.h" nogil:
    int64_t ebnn_bgemm_probe(int isa, int64_t iters)
    int64_t ebnn_cycle_probe(int64_t iters)

_INT_MAX = (1 << 31) - 1


cdef struct _PackTask:
    int kind              # 0 f32, 1 u8, 2 i8
    const void *x
    int64_t rows
    int c
    int zero_point
    uint64_t *out

cdef void _pack_task(void *ctx, int tid, int nthreads) noexcept nogil:
    cdef _PackTask *t = <_PackTask *>ctx
    if t.kind == 0:
        ebnn_bitpack_f32(<const float *>t.x, t.rows, t.c, t.out, tid, nthreads)
    elif t.kind == 1:
        ebnn_bitpack_u8(<const uint8_t *>t.x, t.rows, t.c, t.zero_point, t.out, tid, nthreads)
    else:
        ebnn_bitpack_i8(<const int8_t *>t.x, t.rows, t.c, t.zero_point, t.out, tid, nthreads)


cdef struct _ConvTask:
    const ebnn_conv_geom *g
    const uint64_t *x
    const uint64_t *w
    const ebnn_output *o
    void *scratch

cdef void _bconv_task(void *ctx, int tid, int nthreads) noexcept nogil:
    cdef _ConvTask *t = <_ConvTask *>ctx
    ebnn_bconv2d(t.g, t.x, t.w, t.o, t.scratch, tid, nthreads)

cdef void _bpool_task(void *ctx, int tid, int nthreads) noexcept nogil:
    cdef _ConvTask *t = <_ConvTask *>ctx
    ebnn_maxpool_bits(t.g, t.x, <uint64_t *>t.scratch, tid, nthreads)


cdef struct _DenseTask:
    int batch, in_c, out_c
    const uint64_t *x
    const uint64_t *w
    const ebnn_output *o
    void *scratch

cdef void _bdense_task(void *ctx, int tid, int nthreads) noexcept nogil:
    cdef _DenseTask *t = <_DenseTask *>ctx
    ebnn_bdense(t.batch, t.in_c, t.out_c, t.x, t.w, t.o, t.scratch, tid, nthreads)


def _channels(c, name):
    c = int(c)
    if not 1 <= c <= 1 << 24:
        raise ValueError(f"{name} must be in 1..2^24, got {c}")
    return c


def _check_packed(a, channels, name):
    """Packed uint64 array whose last axis holds words(channels) words with
    the unused high bits of the last word zero."""
    words = (channels + 63) // 64
    if a.shape[a.ndim - 1] != words:
        raise ValueError(f"{name} has {a.shape[a.ndim - 1]} words per row, but {channels} "
                         f"channels need {words}")
    r = channels % 64
    if r and np.any(a[..., words - 1] >> np.uint64(r)):
        raise ValueError(f"{name}: padding bits above channel {channels} in the last "
                         f"word must be 0 (pack with edgebnn bitpack)")


def bitpack(x, zero_point=None, num_threads=1):
    """Pack the last axis of x into uint64 words: bit = 1 where x < 0 (float32),
    or x < zero_point (uint8 / int8; int8 defaults to 0). Shape [..., C] ->
    [..., words(C)]."""
    cdef int nt = _threads(num_threads)
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.uint8, np.int8):
        raise ValueError("bitpack needs a float32, uint8 or int8 numpy array")
    _need(x, "x", x.dtype)
    if x.ndim < 1:
        raise ValueError("bitpack needs at least one axis (channels)")
    cdef _PackTask t
    t.kind = {np.dtype(np.float32): 0, np.dtype(np.uint8): 1, np.dtype(np.int8): 2}[x.dtype]
    if t.kind == 0:
        if zero_point not in (None, 0):
            raise ValueError("zero_point applies to uint8/int8 input only")
        zero_point = 0
    elif zero_point is None:
        if t.kind == 1:
            raise ValueError("uint8 input needs zero_point (the value meaning 0)")
        zero_point = 0
    zp = int(zero_point)
    if not -256 <= zp <= 256:
        raise ValueError(f"zero_point must be in -256..256, got {zero_point}")
    t.c = _channels(x.shape[x.ndim - 1], "channels")
    t.rows = x.size // t.c
    t.zero_point = zp
    out = np.empty(x.shape[:x.ndim - 1] + ((t.c + 63) // 64,), np.uint64)
    t.x = cnp.PyArray_DATA(x)
    t.out = <uint64_t *>cnp.PyArray_DATA(out)
    with nogil:
        ebnn_run_parallel(_pack_task, &t, nt)
    return out


def bconv2d(x_packed, in_channels, w_packed, kernel, strides=1, padding="same_one",
            out="int32", mul=None, bias=None, pixel_scale=None, residual=None,
            clamp=None, thresholds=None, flip=None, sign_bits=False,
            sign_thresholds=None, sign_flip=None, norm=None, num_threads=1):
    """Binary 2-D convolution of packed NHWC input [N,H,W,words] with packed
    weights [O,KH,KW,words]; returns [N,OH,OW,O] (int32 / float32) or
    [N,OH,OW,words(O)] (uint64, out="bits").
    With sign_bits=True (out='float' only) also returns, in the same pass,
    the packed signs of the output [.., words(O)]: bit = y < 0, or with
    float32 sign_thresholds t [O] (and uint8 sign_flip [O]) flip ? y > t :
    y < t; the result is then (output, bits).
    norm=(sub, mul, add) (float32 [O] each, out='float' only) also returns the
    batch norm (y - sub) * mul + add of the output, after the output in the
    tuple, and sign_bits then packs its signs instead.
    """
    cdef int nt = _threads(num_threads)
    c = _channels(in_channels, "in_channels")
    _need(x_packed, "x_packed", np.uint64, 4)
    _need(w_packed, "w_packed", np.uint64, 4)
    _check_packed(x_packed, c, "x_packed")
    _check_packed(w_packed, c, "w_packed")
    kernel, strides = _pair(kernel, "kernel"), _pair(strides, "strides")
    kh, kw = kernel
    if (kh, kw) != tuple(w_packed.shape[1:3]):
        raise ValueError(f"kernel {kernel} does not match w_packed shape {w_packed.shape}")
    n, h, w = x_packed.shape[:3]
    o = w_packed.shape[0]
    cdef ebnn_conv_geom g
    _geom(&g, n, h, w, c, o, kernel, strides, padding)
    pixels = g.n * g.out_h * g.out_w
    if pixels > _INT_MAX:
        raise ValueError(f"output too large: {pixels} pixels")
    cdef _Output r = _output(out, pixels, o, True, mul, bias, pixel_scale, residual,
                             clamp, thresholds, flip,
                             sign_bits, sign_thresholds, sign_flip, norm)
    buf, addr = _scratch(ebnn_bconv2d_scratch_bytes(&g), nt)
    cdef _ConvTask t
    t.g = &g
    t.x = <const uint64_t *>cnp.PyArray_DATA(x_packed)
    t.w = <const uint64_t *>cnp.PyArray_DATA(w_packed)
    t.o = &r.o
    t.scratch = <void *><size_t>addr
    with nogil:
        ebnn_run_parallel(_bconv_task, &t, nt)
    return _stage_results(r, (g.n, g.out_h, g.out_w))


def bdense(x_packed, in_features, w_packed, out="int32", mul=None, bias=None,
           pixel_scale=None, residual=None, clamp=None, thresholds=None, flip=None,
           sign_bits=False,
            sign_thresholds=None, sign_flip=None, norm=None, num_threads=1):
    """Binary dense layer: packed [B, words] x packed [O, words] -> [B, O]
    (or [B, words(O)] for out="bits").
    With sign_bits=True (out='float' only) also returns, in the same pass,
    the packed signs of the output [.., words(O)]: bit = y < 0, or with
    float32 sign_thresholds t [O] (and uint8 sign_flip [O]) flip ? y > t :
    y < t; the result is then (output, bits).
    norm=(sub, mul, add) (float32 [O] each, out='float' only) also returns the
    batch norm (y - sub) * mul + add of the output, after the output in the
    tuple, and sign_bits then packs its signs instead.
    """
    cdef int nt = _threads(num_threads)
    c = _channels(in_features, "in_features")
    _need(x_packed, "x_packed", np.uint64, 2)
    _need(w_packed, "w_packed", np.uint64, 2)
    _check_packed(x_packed, c, "x_packed")
    _check_packed(w_packed, c, "w_packed")
    batch, o = x_packed.shape[0], w_packed.shape[0]
    if batch > _INT_MAX or o > 1 << 24 or batch * o > 1 << 46:
        raise ValueError(f"dense layer too large: batch {batch}, {o} outputs")
    cdef _Output r = _output(out, batch, o, True, mul, bias, pixel_scale, residual,
                             clamp, thresholds, flip,
                             sign_bits, sign_thresholds, sign_flip, norm)
    buf, addr = _scratch(ebnn_bdense_scratch_bytes(batch, c, o), nt)
    cdef _DenseTask t
    t.batch, t.in_c, t.out_c = batch, c, o
    t.x = <const uint64_t *>cnp.PyArray_DATA(x_packed)
    t.w = <const uint64_t *>cnp.PyArray_DATA(w_packed)
    t.o = &r.o
    t.scratch = <void *><size_t>addr
    with nogil:
        ebnn_run_parallel(_bdense_task, &t, nt)
    return _stage_results(r, None)


def maxpool_bits(x_packed, channels, pool, strides=None, padding="valid", num_threads=1):
    """Max pooling of packed +-1 maps [N,H,W,words] (bitwise AND over the
    window; positions outside the image are ignored)."""
    cdef int nt = _threads(num_threads)
    c = _channels(channels, "channels")
    _need(x_packed, "x_packed", np.uint64, 4)
    _check_packed(x_packed, c, "x_packed")
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    n, h, w = x_packed.shape[:3]
    pool = _pair(pool, "pool")
    strides = pool if strides is None else _pair(strides, "strides")
    cdef ebnn_conv_geom g
    _geom(&g, n, h, w, c, 1, pool, strides, "valid" if padding == "valid" else "same_one")
    res = np.empty((g.n, g.out_h, g.out_w, (c + 63) // 64), np.uint64)
    cdef _ConvTask t
    t.g = &g
    t.x = <const uint64_t *>cnp.PyArray_DATA(x_packed)
    t.scratch = cnp.PyArray_DATA(res)
    with nogil:
        ebnn_run_parallel(_bpool_task, &t, nt)
    return res


def bgemm_probe(isa, iters):
    """Register-only xor+popcount+add loop of the ISA's GEMM tile:
    (binary MACs done, seconds)."""
    if isa not in ISA_NAMES:
        raise ValueError(f"unknown ISA {isa!r}")
    cdef int i = ISA_NAMES.index(isa)
    cdef int64_t n = int(iters), macs
    if n <= 0:
        raise ValueError("iters must be positive")
    t0 = _time.perf_counter()
    with nogil:
        macs = ebnn_bgemm_probe(i, n)
    dt = _time.perf_counter() - t0
    if macs == 0:
        raise ValueError(f"no throughput probe for ISA {isa!r} on this machine")
    return macs, dt


def cycle_probe(iters):
    """Chain of dependent adds (1 cycle each): (adds, seconds) -> clock estimate."""
    cdef int64_t n = int(iters), adds
    if n <= 0:
        raise ValueError("iters must be positive")
    t0 = _time.perf_counter()
    with nogil:
        adds = ebnn_cycle_probe(n)
    return adds, _time.perf_counter() - t0

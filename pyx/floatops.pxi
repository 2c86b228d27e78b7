# Float-side ops: weights-only binary conv/dense (float x 1-bit weights),
# float conv/dense, the K map and float pools. Every check runs before any C
# code; the kernels run with the GIL released through one task function.

cdef enum:
    _FOP_WCONV = 0
    _FOP_WDENSE = 1
    _FOP_FCONV = 2
    _FOP_FDENSE = 3
    _FOP_KMAP = 4
    _FOP_MAXPOOL = 5
    _FOP_AVGPOOL = 6
    _FOP_GAP = 7

ctypedef struct _FloatCall:
    int op
    ebnn_conv_geom g
    int batch, in_c, out_c, hw
    const float *x
    const void *w
    const ebnn_output *o
    void *scratch
    float *out


cdef void _float_task(void *ctx, int tid, int nthreads) noexcept nogil:
    cdef _FloatCall *c = <_FloatCall *>ctx
    if c.op == _FOP_WCONV:
        ebnn_wconv2d(&c.g, c.x, <const uint64_t *>c.w, c.o, c.scratch, tid, nthreads)
    elif c.op == _FOP_WDENSE:
        ebnn_wdense(c.batch, c.in_c, c.out_c, c.x, <const uint64_t *>c.w, c.o, tid, nthreads)
    elif c.op == _FOP_FCONV:
        ebnn_fconv2d(&c.g, c.x, <const float *>c.w, c.o, c.scratch, tid, nthreads)
    elif c.op == _FOP_FDENSE:
        ebnn_fdense(c.batch, c.in_c, c.out_c, c.x, <const float *>c.w, c.o, tid, nthreads)
    elif c.op == _FOP_KMAP:
        ebnn_kmap(&c.g, c.x, c.out, tid, nthreads)
    elif c.op == _FOP_MAXPOOL:
        ebnn_maxpool_f32(&c.g, c.x, c.out, tid, nthreads)
    elif c.op == _FOP_AVGPOOL:
        ebnn_avgpool_f32(&c.g, c.x, c.out, tid, nthreads)
    elif c.op == _FOP_GAP:
        ebnn_global_avgpool_f32(c.batch, c.hw, c.in_c, c.x, c.out, tid, nthreads)


cdef int _frun(_FloatCall *call, int nthreads) except -1:
    with nogil:
        ebnn_run_parallel(_float_task, call, nthreads)
    return 0


def _float_padding(padding):
    """Float convs pad with zeros: 'same_zero' (TF 'same') or 'valid'."""
    if padding not in ("same_zero", "valid"):
        raise ValueError(f"padding must be 'same_zero' or 'valid' for float inputs "
                         f"(zero padding), got {padding!r}")
    return padding


def _fkernel_of(kernel, kh, kw):
    if kernel is not None and _pair(kernel, "kernel") != (kh, kw):
        raise ValueError(f"kernel {kernel!r} does not match the weights' {kh}x{kw}")
    return kh, kw


def _fdense_dims(batch, in_c, out_c):
    for v, what in ((batch, "batch"), (in_c, "input features"), (out_c, "output features")):
        if v > (1 << 30):
            raise ValueError(f"{what} too large: {v}")


def wconv2d(x, in_channels, w_packed, kernel=None, strides=1, padding="same_zero",
            out="float", mul=None, bias=None, pixel_scale=None, residual=None,
            clamp=None, sign_bits=False,
            sign_thresholds=None, sign_flip=None, norm=None, num_threads=1):
    """Weights-only binary conv: float32 NHWC x times sign(w), w bit-packed
    uint64 [O, KH, KW, words(in_channels)]; zero padding. The XNOR-Net
    per-filter alpha (or one scalar) goes in `mul`. Bits past in_channels in
    the last word are ignored. Returns float32 [N, OH, OW, O] (out='float')
    or packed uint64 [N, OH, OW, words(O)].
    With sign_bits=True (out='float' only) also returns, in the same pass,
    the packed signs of the output [.., words(O)]: bit = y < 0, or with
    float32 sign_thresholds t [O] (and uint8 sign_flip [O]) flip ? y > t :
    y < t; the result is then (output, bits).
    norm=(sub, mul, add) (float32 [O] each, out='float' only) also returns the
    batch norm (y - sub) * mul + add of the output, after the output in the
    tuple, and sign_bits then packs its signs instead.
    """
    cdef int nt = _threads(num_threads)
    _need(x, "x", np.float32, 4)
    _need(w_packed, "w_packed", np.uint64, 4)
    n, h, wd, c = x.shape
    if in_channels != c:
        raise ValueError(f"in_channels={in_channels} but x has {c} channels")
    o_c, kh, kw, words = w_packed.shape
    if words != ebnn_words(c):
        raise ValueError(f"w_packed has {words} words per tap; {c} channels need {ebnn_words(c)}")
    kernel = _fkernel_of(kernel, kh, kw)
    cdef _FloatCall call
    _geom(&call.g, n, h, wd, c, o_c, kernel, _pair(strides, "strides"),
          _float_padding(padding))
    pixels = call.g.n * call.g.out_h * call.g.out_w
    cdef _Output r = _output(out, pixels, o_c, False, mul, bias, pixel_scale, residual,
                             clamp, None, None,
                             sign_bits, sign_thresholds, sign_flip, norm)
    keep, addr = _scratch(ebnn_wconv2d_scratch_bytes(&call.g), nt)
    call.scratch = <void *><size_t>addr
    call.op = _FOP_WCONV
    call.x = <const float *>cnp.PyArray_DATA(<cnp.ndarray>x)
    call.w = cnp.PyArray_DATA(<cnp.ndarray>w_packed)
    call.o = &r.o
    _frun(&call, nt)
    return _stage_results(r, (n, call.g.out_h, call.g.out_w))


def wdense(x, w_packed, out="float", mul=None, bias=None, pixel_scale=None,
           residual=None, clamp=None, sign_bits=False,
            sign_thresholds=None, sign_flip=None, norm=None, num_threads=1):
    """Weights-only binary dense: float32 x [B, C] times sign(w), w packed
    uint64 [O, words(C)]. Returns [B, O] float32 or [B, words(O)] uint64.
    With sign_bits=True (out='float' only) also returns, in the same pass,
    the packed signs of the output [.., words(O)]: bit = y < 0, or with
    float32 sign_thresholds t [O] (and uint8 sign_flip [O]) flip ? y > t :
    y < t; the result is then (output, bits).
    norm=(sub, mul, add) (float32 [O] each, out='float' only) also returns the
    batch norm (y - sub) * mul + add of the output, after the output in the
    tuple, and sign_bits then packs its signs instead.
    """
    cdef int nt = _threads(num_threads)
    _need(x, "x", np.float32, 2)
    _need(w_packed, "w_packed", np.uint64, 2)
    b, c = x.shape
    o_c, words = w_packed.shape
    if words != ebnn_words(c):
        raise ValueError(f"w_packed has {words} words per filter; {c} features need {ebnn_words(c)}")
    _fdense_dims(b, c, o_c)
    cdef _Output r = _output(out, b, o_c, False, mul, bias, pixel_scale, residual,
                             clamp, None, None,
                             sign_bits, sign_thresholds, sign_flip, norm)
    cdef _FloatCall call
    call.op = _FOP_WDENSE
    call.batch, call.in_c, call.out_c = b, c, o_c
    call.x = <const float *>cnp.PyArray_DATA(<cnp.ndarray>x)
    call.w = cnp.PyArray_DATA(<cnp.ndarray>w_packed)
    call.o = &r.o
    _frun(&call, nt)
    return _stage_results(r, None)


def fconv2d(x, w, kernel=None, strides=1, padding="same_zero", out="float",
            mul=None, bias=None, clamp=None, residual=None, pixel_scale=None,
            sign_bits=False,
            sign_thresholds=None, sign_flip=None, norm=None, num_threads=1):
    """Float conv (first layers): float32 NHWC x, float32 w [O, KH, KW, C],
    zero padding. Returns [N, OH, OW, O] float32 or [.., words(O)] uint64.
    With sign_bits=True (out='float' only) also returns, in the same pass,
    the packed signs of the output [.., words(O)]: bit = y < 0, or with
    float32 sign_thresholds t [O] (and uint8 sign_flip [O]) flip ? y > t :
    y < t; the result is then (output, bits).
    norm=(sub, mul, add) (float32 [O] each, out='float' only) also returns the
    batch norm (y - sub) * mul + add of the output, after the output in the
    tuple, and sign_bits then packs its signs instead.
    """
    cdef int nt = _threads(num_threads)
    _need(x, "x", np.float32, 4)
    _need(w, "w", np.float32, 4)
    n, h, wd, c = x.shape
    o_c, kh, kw, wc = w.shape
    if wc != c:
        raise ValueError(f"w has {wc} input channels but x has {c}")
    kernel = _fkernel_of(kernel, kh, kw)
    cdef _FloatCall call
    _geom(&call.g, n, h, wd, c, o_c, kernel, _pair(strides, "strides"),
          _float_padding(padding))
    pixels = call.g.n * call.g.out_h * call.g.out_w
    cdef _Output r = _output(out, pixels, o_c, False, mul, bias, pixel_scale, residual,
                             clamp, None, None,
                             sign_bits, sign_thresholds, sign_flip, norm)
    keep, addr = _scratch(ebnn_fconv2d_scratch_bytes(&call.g), nt)
    call.scratch = <void *><size_t>addr
    call.op = _FOP_FCONV
    call.x = <const float *>cnp.PyArray_DATA(<cnp.ndarray>x)
    call.w = cnp.PyArray_DATA(<cnp.ndarray>w)
    call.o = &r.o
    _frun(&call, nt)
    return _stage_results(r, (n, call.g.out_h, call.g.out_w))


def fdense(x, w, out="float", mul=None, bias=None, clamp=None, residual=None,
           pixel_scale=None, sign_bits=False,
            sign_thresholds=None, sign_flip=None, norm=None, num_threads=1):
    """Float dense: float32 x [B, C], w [O, C]. Returns [B, O] float32
    (or [B, words(O)] uint64 with out='bits').
    With sign_bits=True (out='float' only) also returns, in the same pass,
    the packed signs of the output [.., words(O)]: bit = y < 0, or with
    float32 sign_thresholds t [O] (and uint8 sign_flip [O]) flip ? y > t :
    y < t; the result is then (output, bits).
    norm=(sub, mul, add) (float32 [O] each, out='float' only) also returns the
    batch norm (y - sub) * mul + add of the output, after the output in the
    tuple, and sign_bits then packs its signs instead.
    """
    cdef int nt = _threads(num_threads)
    _need(x, "x", np.float32, 2)
    _need(w, "w", np.float32, 2)
    b, c = x.shape
    o_c, wc = w.shape
    if wc != c:
        raise ValueError(f"w has {wc} input features but x has {c}")
    _fdense_dims(b, c, o_c)
    cdef _Output r = _output(out, b, o_c, False, mul, bias, pixel_scale, residual,
                             clamp, None, None,
                             sign_bits, sign_thresholds, sign_flip, norm)
    cdef _FloatCall call
    call.op = _FOP_FDENSE
    call.batch, call.in_c, call.out_c = b, c, o_c
    call.x = <const float *>cnp.PyArray_DATA(<cnp.ndarray>x)
    call.w = cnp.PyArray_DATA(<cnp.ndarray>w)
    call.o = &r.o
    _frun(&call, nt)
    return _stage_results(r, None)


cdef object _fspatial(int op, x, window, strides, padding, int nt, bint keep_channels):
    """Shared body of the K map and the float pools."""
    _need(x, "x", np.float32, 4)
    n, h, wd, c = x.shape
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    cdef _FloatCall call
    _geom(&call.g, n, h, wd, c, 1, _pair(window, "window"), _pair(strides, "strides"),
          "valid" if padding == "valid" else "same_zero")
    res = np.empty((n, call.g.out_h, call.g.out_w) + ((c,) if keep_channels else ()),
                   np.float32)
    call.op = op
    call.x = <const float *>cnp.PyArray_DATA(<cnp.ndarray>x)
    call.out = <float *>cnp.PyArray_DATA(<cnp.ndarray>res)
    _frun(&call, nt)
    return res


def kmap(x, kernel, strides=1, padding="same_zero", num_threads=1):
    """K map for a conv over binarized x (XNOR-Net): mean |x| over channels,
    averaged over each kernel window (padded taps count as zero, divisor
    kh*kw). padding is the conv's: 'valid', or any same-geometry mode
    ('same', 'same_zero', 'same_one'). Returns float32 [N, OH, OW]."""
    cdef int nt = _threads(num_threads)
    if padding not in ("valid", "same", "same_zero", "same_one"):
        raise ValueError(f"padding must be 'valid', 'same', 'same_zero' or 'same_one', got {padding!r}")
    return _fspatial(_FOP_KMAP, x, kernel, strides,
                    "valid" if padding == "valid" else "same", nt, False)


def maxpool(x, pool, strides=None, padding="valid", num_threads=1):
    """Max pool of float32 NHWC with TF semantics (padded positions ignored);
    strides default to the pool size."""
    return _fspatial(_FOP_MAXPOOL, x, pool, pool if strides is None else strides,
                    padding, _threads(num_threads), True)


def avgpool(x, pool, strides=None, padding="valid", num_threads=1):
    """Average pool of float32 NHWC with TF semantics: the mean over the
    in-bounds positions only; strides default to the pool size."""
    return _fspatial(_FOP_AVGPOOL, x, pool, pool if strides is None else strides,
                    padding, _threads(num_threads), True)


def global_avgpool(x, num_threads=1):
    """Mean over H and W of float32 NHWC x: returns [N, C]."""
    cdef int nt = _threads(num_threads)
    _need(x, "x", np.float32, 4)
    n, h, wd, c = x.shape
    if h * wd > (1 << 30) or c > (1 << 30):
        raise ValueError(f"x too large: shape {x.shape}")
    res = np.empty((n, c), np.float32)
    cdef _FloatCall call
    call.op = _FOP_GAP
    call.batch, call.hw, call.in_c = n, h * wd, c
    call.x = <const float *>cnp.PyArray_DATA(<cnp.ndarray>x)
    call.out = <float *>cnp.PyArray_DATA(<cnp.ndarray>res)
    _frun(&call, nt)
    return res

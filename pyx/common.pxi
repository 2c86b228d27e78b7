# Argument checking and the helpers every wrapper shares: arrays are checked
# (dtype, C-contiguity, shape) and never silently cast or copied; geometry
# comes from the C rule; the output stage is built once per call.
from libc.math cimport INFINITY

_OUT_KINDS = {"int32": 0, "float": 1, "bits": 2}
_PAD_MODES = {"valid": 0, "same_one": 1, "same_zero": 2}


def _need(arr, name, dtype, ndim=None, shape=None):
    """Check an input array; return it unchanged. ValueError says what is wrong."""
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.dtype(dtype):
        raise ValueError(f"{name} must have dtype {np.dtype(dtype)}, got {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    if arr.size == 0:
        raise ValueError(f"{name} has a zero-sized dimension: shape {arr.shape}")
    return arr


cdef int _threads(num_threads) except -1:
    n = int(num_threads)
    if n < 1 or n > 256:
        raise ValueError(f"num_threads must be in 1..256, got {num_threads}")
    return n


cdef int _geom(ebnn_conv_geom *g, int n, int h, int w, int c, int out_c,
               kernel, strides, padding) except -1:
    """Fill g from Python-level conv arguments; ValueError on nonsense."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    if padding not in _PAD_MODES:
        raise ValueError(f"padding must be one of {sorted(_PAD_MODES)}, got {padding!r}")
    mode = _PAD_MODES[padding]
    for v, what in ((kh, "kernel height"), (kw, "kernel width"), (sh, "stride"),
                    (sw, "stride"), (out_c, "output channels")):
        if not (1 <= v <= 1 << 20):
            raise ValueError(f"{what} must be in 1..2^20, got {v}")
    if ebnn_conv_geom_init(g, n, h, w, c, out_c, kh, kw, sh, sw,
                           1 if mode != 0 else 0, mode) != 0:
        raise ValueError(f"impossible geometry: input {n}x{h}x{w}x{c}, kernel {kh}x{kw}, "
                         f"strides {sh}x{sw}, padding {padding}")
    return 0


cdef class _Output:
    """An ebnn_output plus the arrays it points into (kept alive here)."""
    cdef ebnn_output o
    cdef object keep
    cdef public object array
    cdef public object bits       # sign_out words, or None
    cdef public object normed     # norm_out floats, or None

    def __cinit__(self):
        self.keep = []


cdef object _stage_results(_Output r, shape):
    """A wrapper's result: the output (reshaped to shape + (-1,) if shape),
    or the tuple (output, its batch norm if norm, sign bits if sign_bits)."""
    res = [a if shape is None else a.reshape(tuple(shape) + (-1,))
           for a in (r.array, r.normed, r.bits) if a is not None]
    return res[0] if len(res) == 1 else tuple(res)


cdef _Output _output(str kind, int pixels, int out_c, bint binary_acc,
                     mul, bias, pixel_scale, residual, clamp, thresholds, flip,
                     sign_bits=False, sign_thresholds=None, sign_flip=None, norm=None):
    """Check the output-stage arguments and allocate the output array (and
    with norm, the batch norm of a float output: r.normed; with sign_bits,
    the packed signs of the output or of its batch norm: r.bits)."""
    if kind not in _OUT_KINDS:
        raise ValueError(f"out must be one of {sorted(_OUT_KINDS)}, got {kind!r}")
    cdef _Output r = _Output()
    r.o.kind = _OUT_KINDS[kind]
    r.o.mul = NULL
    r.o.bias = NULL
    r.o.pixel_scale = NULL
    r.o.residual = NULL
    r.o.thr = NULL
    r.o.flip = NULL
    r.o.sign_out = NULL
    r.o.sign_thr = NULL
    r.o.sign_flip = NULL
    r.bits = None
    r.normed = None
    r.o.norm_out = NULL
    r.o.norm_sub = NULL
    r.o.norm_mul = NULL
    r.o.norm_add = NULL
    r.o.clamp_lo = -INFINITY
    r.o.clamp_hi = INFINITY
    cdef cnp.ndarray a
    if kind == "int32" and not binary_acc:
        raise ValueError("out='int32' exists only for binary ops")
    if mul is not None:
        a = _need(mul, "mul", np.float32, 1, (out_c,)); r.keep.append(a)
        r.o.mul = <const float *>cnp.PyArray_DATA(a)
    if bias is not None:
        a = _need(bias, "bias", np.float32, 1, (out_c,)); r.keep.append(a)
        r.o.bias = <const float *>cnp.PyArray_DATA(a)
    if pixel_scale is not None:
        a = _need(pixel_scale, "pixel_scale", np.float32)
        if a.size != pixels:
            raise ValueError(f"pixel_scale must have {pixels} values (one per output pixel), got {a.size}")
        r.keep.append(a)
        r.o.pixel_scale = <const float *>cnp.PyArray_DATA(a)
    if residual is not None:
        a = _need(residual, "residual", np.float32)
        if a.size != <long>pixels * out_c:
            raise ValueError(f"residual must have {pixels}x{out_c} values, got shape {(<object>a).shape}")
        r.keep.append(a)
        r.o.residual = <const float *>cnp.PyArray_DATA(a)
    if clamp is not None:
        lo, hi = clamp
        if not lo <= hi:
            raise ValueError(f"clamp must be (lo, hi) with lo <= hi, got {clamp}")
        r.o.clamp_lo, r.o.clamp_hi = lo, hi
    if thresholds is not None:
        if kind != "bits" or not binary_acc:
            raise ValueError("thresholds apply only to out='bits' of a binary op")
        a = _need(thresholds, "thresholds", np.int32, 1, (out_c,)); r.keep.append(a)
        r.o.thr = <const int32_t *>cnp.PyArray_DATA(a)
        if flip is None:
            flip = np.zeros(out_c, np.uint8)
        a = _need(flip, "flip", np.uint8, 1, (out_c,)); r.keep.append(a)
        r.o.flip = <const uint8_t *>cnp.PyArray_DATA(a)
    elif flip is not None:
        raise ValueError("flip needs thresholds")
    if kind == "int32":
        r.array = np.empty((pixels, out_c), np.int32)
    elif kind == "float":
        r.array = np.empty((pixels, out_c), np.float32)
    else:
        r.array = np.empty((pixels, (out_c + 63) // 64), np.uint64)
    r.o.out = cnp.PyArray_DATA(<cnp.ndarray>r.array)
    if sign_bits:
        if kind != "float":
            raise ValueError(f"sign_bits needs out='float', got out={kind!r}")
        if sign_thresholds is not None:
            a = _need(sign_thresholds, "sign_thresholds", np.float32, 1, (out_c,)); r.keep.append(a)
            r.o.sign_thr = <const float *>cnp.PyArray_DATA(a)
            if sign_flip is not None:
                a = _need(sign_flip, "sign_flip", np.uint8, 1, (out_c,)); r.keep.append(a)
                r.o.sign_flip = <const uint8_t *>cnp.PyArray_DATA(a)
        elif sign_flip is not None:
            raise ValueError("sign_flip needs sign_thresholds")
        r.bits = np.empty((pixels, (out_c + 63) // 64), np.uint64)
        r.o.sign_out = <uint64_t *>cnp.PyArray_DATA(<cnp.ndarray>r.bits)
    elif sign_thresholds is not None or sign_flip is not None:
        raise ValueError("sign_thresholds / sign_flip need sign_bits=True")
    if norm is not None:
        if kind != "float":
            raise ValueError(f"norm needs out='float', got out={kind!r}")
        if not isinstance(norm, tuple) or len(norm) != 3:
            raise ValueError("norm must be a tuple (sub, mul, add) of float32 [out_c] vectors")
        vecs = [_need(v, f"norm[{i}]", np.float32, 1, (out_c,)) for i, v in enumerate(norm)]
        r.keep += vecs
        r.o.norm_sub = <const float *>cnp.PyArray_DATA(<cnp.ndarray>vecs[0])
        r.o.norm_mul = <const float *>cnp.PyArray_DATA(<cnp.ndarray>vecs[1])
        r.o.norm_add = <const float *>cnp.PyArray_DATA(<cnp.ndarray>vecs[2])
        r.normed = np.empty((pixels, out_c), np.float32)
        r.o.norm_out = <float *>cnp.PyArray_DATA(<cnp.ndarray>r.normed)
    return r


def _pair(v, name):
    """int or pair of ints -> (int, int); numpy integers welcome."""
    try:
        a, b = (v, v) if np.ndim(v) == 0 else tuple(v)
        if int(a) != a or int(b) != b:
            raise ValueError
        return int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}") from None


_SCRATCH_MAX = 1 << 34   # bytes; more means a nonsensical layer
import threading as _threading
_scratch_cache = _threading.local()   # one buffer per Python thread, reused


cdef object _scratch(size_t per_thread, int nthreads):
    """nthreads blocks of per_thread bytes, 64-byte aligned: (array, address).
    Reused between calls of the same Python thread (fresh pages cost more
    than a small layer's compute)."""
    if per_thread == <size_t>-1:   # the C size function's overflow answer
        raise ValueError("layer too large: its scratch size overflows")
    total = int(per_thread) * nthreads + 64   # Python int: cannot wrap
    if total > _SCRATCH_MAX:
        raise ValueError(f"layer too large: needs {total} bytes of scratch")
    buf = getattr(_scratch_cache, "buf", None)
    if buf is None or buf.size < total:
        buf = np.empty(total, np.uint8)
        _scratch_cache.buf = buf
    cdef size_t addr = <size_t>cnp.PyArray_DATA(buf)
    return buf, (addr + 63) & ~(<size_t>63)

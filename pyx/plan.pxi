# Compiled execution plan (pyx/plan.h): a C array of steps over buffers that
# are allocated here once, kept alive by the Plan object, and reused by every
# run(). The Python builder (edgebnn/plan.py) adds steps in graph order; each
# add checks its arrays like the wrappers do, so run() itself checks nothing
# and costs one GIL release plus one OpenMP region.
from libc.stdlib cimport realloc, free
from libc.string cimport memset

cdef extern from "plan.h" nogil:
    enum:
        EBNN_STEP_BCONV, EBNN_STEP_BDENSE, EBNN_STEP_WCONV, EBNN_STEP_WDENSE
        EBNN_STEP_FCONV, EBNN_STEP_FDENSE, EBNN_STEP_BITPACK, EBNN_STEP_KMAP
        EBNN_STEP_MEAN_ABS, EBNN_STEP_MAXPOOL, EBNN_STEP_AVGPOOL
        EBNN_STEP_MAXPOOL_BITS, EBNN_STEP_GLOBAL_AVGPOOL, EBNN_STEP_ADD
        EBNN_STEP_CLAMP, EBNN_STEP_SIGN, EBNN_STEP_AFFINE, EBNN_STEP_LRN
        EBNN_STEP_SOFTMAX, EBNN_STEP_U8_INPUT
    ctypedef struct ebnn_step:
        int kind
        ebnn_conv_geom g
        int batch, in_c, out_c
        int64_t rows
        const void *inp "in"
        const void *in2
        const void *w
        ebnn_output o
        void *out
        void *scratch
        size_t scratch_bytes
        const float *a
        const float *b
        const float *d
        float lo, hi, beta
        int radius
    int ebnn_plan_run(const ebnn_step *steps, int nsteps, int nthreads, double *seconds)

_CONV_KINDS = {"bconv": EBNN_STEP_BCONV, "wconv": EBNN_STEP_WCONV, "fconv": EBNN_STEP_FCONV}
_DENSE_KINDS = {"bdense": EBNN_STEP_BDENSE, "wdense": EBNN_STEP_WDENSE,
                "fdense": EBNN_STEP_FDENSE}
_SPATIAL_KINDS = {"kmap": EBNN_STEP_KMAP, "maxpool": EBNN_STEP_MAXPOOL,
                  "avgpool": EBNN_STEP_AVGPOOL, "maxpool_bits": EBNN_STEP_MAXPOOL_BITS}
# elementwise steps: (kind, input dtype, output values per row (0: same as in))
_ROW_KINDS = {"add": (EBNN_STEP_ADD, np.float32), "clamp": (EBNN_STEP_CLAMP, np.float32),
              "sign": (EBNN_STEP_SIGN, np.float32), "affine": (EBNN_STEP_AFFINE, np.float32),
              "lrn": (EBNN_STEP_LRN, np.float32), "softmax": (EBNN_STEP_SOFTMAX, np.float32),
              "u8_input": (EBNN_STEP_U8_INPUT, np.uint8),
              "mean_abs": (EBNN_STEP_MEAN_ABS, np.float32),
              "bitpack": (EBNN_STEP_BITPACK, np.float32)}


_STEP_NAMES = {v[0] if isinstance(v, tuple) else v: k for table in
               (_CONV_KINDS, _DENSE_KINDS, _SPATIAL_KINDS, _ROW_KINDS) for k, v in table.items()}
_STEP_NAMES[EBNN_STEP_GLOBAL_AVGPOOL] = "global_avgpool"


cdef void *_data(arr, name, dtype, Py_ssize_t count) except NULL:
    """Address of a C-contiguous array of `dtype` holding exactly count values."""
    _need(arr, name, dtype)
    if arr.size != count:
        raise ValueError(f"{name} must hold {count} values, got shape {arr.shape}")
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef class Plan:
    """Steps + buffers of one model at one batch size for up to `threads`
    threads. Not thread-safe: one caller at a time per Plan (edgebnn.Model
    keeps a pool)."""
    cdef ebnn_step *steps
    cdef int n, cap
    cdef readonly int threads
    cdef size_t scratch_need
    cdef object scratch_buf
    cdef list keep
    cdef list _names
    cdef bint sealed
    cdef bint pending       # the last step's add raised before completing
    cdef public object allocator  # (shape, dtype) -> array for step outputs, or None

    def __cinit__(self, int threads):
        if not 1 <= threads <= 256:
            raise ValueError(f"threads must be in 1..256, got {threads}")
        self.threads = threads
        self.keep = []
        self._names = []

    def __dealloc__(self):
        free(self.steps)

    def __len__(self):
        self._drop_pending()
        return self.n

    @property
    def names(self):
        """Step names, in order (each "op name (step kind)")."""
        self._drop_pending()
        return list(self._names)

    cdef _drop_pending(self):
        """Forget a step whose add raised half-way (never run a half-made step)."""
        if self.pending:
            self.n -= 1
            self._names.pop()
            self.pending = False

    cdef ebnn_step *_new(self, int kind, name) except NULL:
        if self.sealed:
            raise ValueError("plan is sealed: no more steps")
        self._drop_pending()
        cdef ebnn_step *grown
        if self.n == self.cap:
            grown = <ebnn_step *>realloc(self.steps, (2 * self.cap + 8) * sizeof(ebnn_step))
            if grown == NULL:
                raise MemoryError()
            self.steps, self.cap = grown, 2 * self.cap + 8
        cdef ebnn_step *s = &self.steps[self.n]
        memset(s, 0, sizeof(ebnn_step))
        s.kind = kind
        self.n += 1
        self.pending = True     # cleared by the add once every field is set
        self._names.append(f"{name} ({_STEP_NAMES[kind]})")
        return s

    cdef object _empty(self, shape, dtype):
        """A step's output buffer: np.empty, or from the allocator (checked)."""
        if self.allocator is None:
            return np.empty(shape, dtype)
        res = self.allocator(tuple(shape), np.dtype(dtype))
        return _need(res, "allocated output", dtype, len(shape), shape)

    cdef object _stage_out(self, _Output r):
        """Move an output stage onto an allocator buffer (if any)."""
        if self.allocator is not None:
            r.array = self._empty(r.array.shape, r.array.dtype)
            r.o.out = cnp.PyArray_DATA(<cnp.ndarray>r.array)
            if r.bits is not None:
                r.bits = self._empty(r.bits.shape, r.bits.dtype)
                r.o.sign_out = <uint64_t *>cnp.PyArray_DATA(<cnp.ndarray>r.bits)
            if r.normed is not None:
                r.normed = self._empty(r.normed.shape, r.normed.dtype)
                r.o.norm_out = <float *>cnp.PyArray_DATA(<cnp.ndarray>r.normed)
        return r

    cdef _need_scratch(self, size_t per_thread):
        per_thread = (per_thread + 63) & ~(<size_t>63)
        if per_thread * self.threads > _SCRATCH_MAX:
            raise ValueError(f"layer too large: needs {per_thread * self.threads} bytes of scratch")
        self.scratch_need = max(self.scratch_need, per_thread)

    def conv(self, kind, name, x, w, int in_c, kernel, strides, padding, out="float",
             mul=None, bias=None, pixel_scale=None, residual=None, clamp=None,
             thresholds=None, flip=None, sign_bits=False, sign_thresholds=None,
             sign_flip=None, norm=None):
        """Conv step on NHWC x ([N,H,W,words] uint64 for bconv); returns its
        output buffer [N, OH, OW, out_c or words] (with norm / sign_bits: the
        tuple (output, its batch norm, packed signs), see the kernel wrappers)."""
        if kind not in _CONV_KINDS:
            raise ValueError(f"conv kind must be one of {sorted(_CONV_KINDS)}, got {kind!r}")
        cdef ebnn_step *s = self._new(_CONV_KINDS[kind], name)
        binary = kind == "bconv"
        n, h, wd = x.shape[:3]
        o_c = w.shape[0]
        kh, kw = _pair(kernel, "kernel")
        _geom(&s.g, n, h, wd, in_c, o_c, (kh, kw), _pair(strides, "strides"), padding)
        words = (in_c + 63) // 64
        s.inp = _data(x, "x", np.uint64 if binary else np.float32,
                      n * h * wd * (words if binary else in_c))
        wtype = np.float32 if kind == "fconv" else np.uint64
        s.w = _data(w, "w", wtype, o_c * kh * kw * (in_c if kind == "fconv" else words))
        pixels = s.g.n * s.g.out_h * s.g.out_w
        cdef _Output r = self._stage_out(_output(out, pixels, o_c, binary, mul, bias,
                                                 pixel_scale, residual, clamp, thresholds, flip,
                                                 sign_bits, sign_thresholds, sign_flip, norm))
        s.o = r.o
        self.keep += [x, w, r]
        if kind == "bconv":
            self._need_scratch(ebnn_bconv2d_scratch_bytes(&s.g))
        elif kind == "wconv":
            self._need_scratch(ebnn_wconv2d_scratch_bytes(&s.g))
        else:
            self._need_scratch(ebnn_fconv2d_scratch_bytes(&s.g))
        self.pending = False
        return _stage_results(r, (s.g.n, s.g.out_h, s.g.out_w))

    def dense(self, kind, name, x, w, int in_c, out="float", mul=None, bias=None,
              pixel_scale=None, residual=None, clamp=None, thresholds=None, flip=None,
              sign_bits=False, sign_thresholds=None, sign_flip=None, norm=None):
        """Dense step on x [B, F] (packed words for bdense); returns [B, O or words]
        (with norm / sign_bits: the tuple of the kernel wrappers)."""
        if kind not in _DENSE_KINDS:
            raise ValueError(f"dense kind must be one of {sorted(_DENSE_KINDS)}, got {kind!r}")
        cdef ebnn_step *s = self._new(_DENSE_KINDS[kind], name)
        binary = kind == "bdense"
        b, o_c = x.shape[0], w.shape[0]
        words = (in_c + 63) // 64
        s.batch, s.in_c, s.out_c = b, in_c, o_c
        s.inp = _data(x, "x", np.uint64 if binary else np.float32,
                      b * (words if binary else in_c))
        s.w = _data(w, "w", np.float32 if kind == "fdense" else np.uint64,
                    o_c * (in_c if kind == "fdense" else words))
        cdef _Output r = self._stage_out(_output(out, b, o_c, binary, mul, bias, pixel_scale,
                                                 residual, clamp, thresholds, flip,
                                                 sign_bits, sign_thresholds, sign_flip, norm))
        s.o = r.o
        self.keep += [x, w, r]
        if binary:
            self._need_scratch(ebnn_bdense_scratch_bytes(b, in_c, o_c))
        self.pending = False
        return _stage_results(r, None)

    def spatial(self, kind, name, x, int channels, window, strides, padding):
        """K map (padding of the conv it scales), float pools or the bits max
        pool (padding 'valid'/'same'); returns the output buffer."""
        if kind not in _SPATIAL_KINDS:
            raise ValueError(f"spatial kind must be one of {sorted(_SPATIAL_KINDS)}, got {kind!r}")
        cdef ebnn_step *s = self._new(_SPATIAL_KINDS[kind], name)
        bits = kind == "maxpool_bits"
        n, h, wd = x.shape[:3]
        _geom(&s.g, n, h, wd, channels, 1, _pair(window, "window"), _pair(strides, "strides"),
              "valid" if padding == "valid" else ("same_one" if bits else "same_zero"))
        width = (channels + 63) // 64 if bits else channels
        s.inp = _data(x, "x", np.uint64 if bits else np.float32, n * h * wd * width)
        shape = (n, s.g.out_h, s.g.out_w) + (() if kind == "kmap" else (width,))
        res = self._empty(shape, np.uint64 if bits else np.float32)
        s.out = cnp.PyArray_DATA(<cnp.ndarray>res)
        self.keep += [x, res]
        self.pending = False
        return res

    def global_avgpool(self, name, x):
        cdef ebnn_step *s = self._new(EBNN_STEP_GLOBAL_AVGPOOL, name)
        n, h, wd, c = x.shape
        s.batch, s.rows, s.in_c = n, h * wd, c
        s.inp = _data(x, "x", np.float32, n * h * wd * c)
        res = self._empty((n, c), np.float32)
        s.out = cnp.PyArray_DATA(<cnp.ndarray>res)
        self.keep += [x, res]
        self.pending = False
        return res

    def rows(self, kind, name, x, x2=None, a=None, b=None, d=None, float lo=0, float hi=0,
             float beta=0, int radius=0):
        """Elementwise step over the rows of x's last axis (channels); returns
        a new output buffer: x's shape (float32), [N] for mean_abs, packed
        words for bitpack."""
        if kind not in _ROW_KINDS:
            raise ValueError(f"row kind must be one of {sorted(_ROW_KINDS)}, got {kind!r}")
        step_kind, dtype = _ROW_KINDS[kind]
        if kind == "mean_abs" and x.ndim != 2:
            raise ValueError(f"mean_abs needs x [batch, features], got shape {x.shape}")
        cdef ebnn_step *s = self._new(step_kind, name)
        c = x.shape[x.ndim - 1]
        s.in_c, s.rows = c, x.size // c
        s.inp = _data(x, "x", dtype, x.size)
        if kind == "add":
            s.in2 = _data(x2, "x2", np.float32, x.size)
        for vec, attr in ((a, "a"), (b, "b"), (d, "d")):
            if vec is not None:
                p = <const float *>_data(vec, attr, np.float32, c)
                if attr == "a":
                    s.a = p
                elif attr == "b":
                    s.b = p
                else:
                    s.d = p
                self.keep.append(vec)
        if kind == "affine" and (a is None or b is None or d is None) or \
                kind == "u8_input" and (a is None or b is None):
            raise ValueError(f"{kind} needs its per-channel vectors")
        s.lo, s.hi, s.beta, s.radius = lo, hi, beta, radius
        if kind == "mean_abs":
            res = self._empty((x.shape[0],), np.float32)
        elif kind == "bitpack":
            res = self._empty(x.shape[:x.ndim - 1] + ((c + 63) // 64,), np.uint64)
        else:
            res = self._empty(x.shape, np.float32)
        s.out = cnp.PyArray_DATA(<cnp.ndarray>res)
        self.keep += [x, x2, res]
        self.pending = False
        return res

    def seal(self):
        """Allocate the scratch all steps share (they run one after another)."""
        if self.sealed:
            return
        self._drop_pending()
        cdef size_t base = 0
        cdef int i
        if self.scratch_need:
            self.scratch_buf = np.empty(self.scratch_need * self.threads + 64, np.uint8)
            base = (<size_t>cnp.PyArray_DATA(<cnp.ndarray>self.scratch_buf) + 63) & ~(<size_t>63)
        for i in range(self.n):
            self.steps[i].scratch = <void *>base
            self.steps[i].scratch_bytes = self.scratch_need
        self.sealed = True

    def run(self, int nthreads=1):
        """Execute every step on nthreads (<= the threads it was built for)."""
        if not self.sealed:
            self.seal()
        if nthreads < 1 or nthreads > self.threads:
            raise ValueError(f"nthreads must be in 1..{self.threads}, got {nthreads}")
        with nogil:
            ebnn_plan_run(self.steps, self.n, nthreads, NULL)

    def profile(self, int nthreads=1):
        """Run once and return each step's own wall time in seconds (float64 [steps])."""
        if not self.sealed:
            self.seal()
        if nthreads < 1 or nthreads > self.threads:
            raise ValueError(f"nthreads must be in 1..{self.threads}, got {nthreads}")
        times = np.zeros(max(self.n, 1), np.float64)
        cdef double *t = <double *>cnp.PyArray_DATA(<cnp.ndarray>times)
        with nogil:
            ebnn_plan_run(self.steps, self.n, nthreads, t)
        return times[:self.n]

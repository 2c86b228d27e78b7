"""Binarized Keras 3 layers (XNOR-Net family) and the small helper layers
the networks use.

Schemes (argument `scheme` of BinaryConv2D / BinaryDense):

  float   y = conv(x, W) + b                                   (plain layer)
  xnor    y = conv(x, sign(W)) * A[o] + b,     A[o] = mean |W[..., o]|
  scalar  y = conv(x, sign(W)) * A + b,        A    = mean |W|  (one number)
  binary  y = conv(sign(x), sign(W)) * K[p] * A[o] + b        (k_scale=True)
          y = conv(sign(x), sign(W)) * A[o] + b               (k_scale=False)

The factors are applied in exactly that order, left to right, in float32,
so the exporter (and the C output stage v = acc * pixel_scale * mul + bias)
can reproduce the layer: acc is the convolution with the +-1 weights (for
binary inputs an exact integer), K is the "pixel scale", A the multiplier.

  sign(v) = +1 if v >= 0 else -1         (sign(0) = +1 everywhere)
  K[n, oy, ox] = (1/(kh*kw)) * sum over the in-bounds taps of the window of
                 mean_c |x[n, y, x, c]|   (padded taps count as 0; the divisor
                 is always kh*kw; same stride and padding as the conv)
  dense: K[n] = mean_c |x[n, c]|.

Padding (`padding`): "valid"; "same" = plain TF/Keras zero padding, which for
binary inputs means the padded taps are 0 AFTER sign() (the kernels correct
it exactly); "same_one" = the sign()ed input is padded with +1 (free in the
bit-packed kernels; only for binary inputs). Pad amounts follow TF "same".

Gradients: inputs use the BinaryNet straight-through estimator, d sign(x)/dx
= 1 where |x| <= input_clip, else 0. Weights use either the same clipped STE
(weight_ste="clip") or identity (weight_ste="identity"); gradients also flow
through A and K as ordinary functions of W and x. clip_weights=True keeps the
latent float weights in [-1, 1] after every update (a Keras constraint).
"""
import keras
from keras import ops

PADDINGS = ("valid", "same", "same_one")
SCHEMES = ("float", "xnor", "scalar", "binary")
WEIGHT_STES = ("clip", "identity")

_register = keras.saving.register_keras_serializable(package="edgebnn")


def sign(x):
    """sign with sign(0) = +1, in x's dtype."""
    return ops.where(x >= 0, ops.ones_like(x), -ops.ones_like(x))


def ste_sign(x, clip=1.0):
    """sign(x) forward; gradient passes where |x| <= clip (None: always).

    Written as stop_gradient(sign(x)) + (g - stop_gradient(g)) with g the
    clipped input: g - g is exactly 0, so the forward value is exactly
    sign(x), and the gradient is that of clip(x, -clip, clip).
    """
    g = x if clip is None else ops.clip(x, -clip, clip)
    return ops.stop_gradient(sign(x)) + (g - ops.stop_gradient(g))


def tf_same_pads(size, k, stride):
    """(before, after) padding of TF 'same' along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _check(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


@_register
class ClipWeights(keras.constraints.Constraint):
    """Keeps latent weights in [-limit, limit]."""

    def __init__(self, limit=1.0):
        self.limit = float(limit)

    def __call__(self, w):
        return ops.clip(w, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}


class _BinaryBase(keras.layers.Layer):
    """Shared option handling of BinaryConv2D and BinaryDense."""

    def _init_options(self, scheme, use_bias, k_scale, weight_ste,
                      clip_weights, input_clip, kernel_initializer):
        _check("scheme", scheme, SCHEMES)
        _check("weight_ste", weight_ste, WEIGHT_STES)
        if input_clip is not None and not input_clip > 0:
            raise ValueError(f"input_clip must be > 0 or None, got {input_clip}")
        self.scheme = scheme
        self.use_bias = bool(use_bias)
        self.binary_inputs = scheme == "binary"
        # K only exists with binary inputs; record the effective value.
        self.k_scale = bool(k_scale) and self.binary_inputs
        self.weight_ste = weight_ste
        self.clip_weights = bool(clip_weights)
        self.input_clip = None if input_clip is None else float(input_clip)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    @property
    def weight_scale(self):
        return {"xnor": "per_filter", "scalar": "layer",
                "binary": "per_filter"}.get(self.scheme, "none")

    def _add_kernel(self, shape):
        constraint = ClipWeights(1.0) if self.clip_weights else None
        self.kernel = self.add_weight(
            name="kernel", shape=shape, initializer=self.kernel_initializer,
            constraint=constraint, trainable=True)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(shape[-1],),
                                        initializer="zeros", trainable=True)

    def signed_kernel(self):
        """(+-1 kernel, A) for binary-weight schemes; (kernel, None) for float."""
        w = self.kernel
        if self.scheme == "float":
            return w, None
        clip = 1.0 if self.weight_ste == "clip" else None
        if self.scheme == "scalar":
            scale = ops.mean(ops.abs(w))
        else:  # per output filter: reduce every axis but the last
            scale = ops.mean(ops.abs(w), axis=tuple(range(len(w.shape) - 1)))
        return ste_sign(w, clip), scale

    def _finish(self, acc, pixel_scale, scale):
        y = acc
        if pixel_scale is not None:
            y = y * pixel_scale
        if scale is not None:
            y = y * scale
        if self.bias is not None:
            y = y + self.bias
        return y

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for derived in ("binary_inputs", "weight_scale"):  # informative only
            config.pop(derived, None)
        return cls(**config)

    def _base_config(self):
        return {
            "scheme": self.scheme,
            "use_bias": self.use_bias,
            "binary_inputs": self.binary_inputs,
            "k_scale": self.k_scale,
            "weight_scale": self.weight_scale,
            "weight_ste": self.weight_ste,
            "clip_weights": self.clip_weights,
            "input_clip": self.input_clip,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer),
        }


@_register
class BinaryConv2D(_BinaryBase):
    """2-D convolution with binarized weights (and inputs for scheme='binary').

    Order of operations (float32):
        xb  = sign(x) if binary inputs else x      (STE clipped at input_clip)
        xb  = pad(xb, +1) if padding == 'same_one'
        acc = conv(xb, sign(W), strides, padding)  (TF 'same' zero / 'valid')
        y   = acc * K * A + bias                   (each factor only if used)
    See the module docstring for A, K and the gradients.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same",
                 scheme="xnor", use_bias=False, k_scale=True,
                 weight_ste="clip", clip_weights=False, input_clip=1.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        if self.filters < 1:
            raise ValueError(f"filters must be >= 1, got {filters}")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        _check("padding", padding, PADDINGS)
        if padding == "same_one" and scheme != "binary":
            raise ValueError("padding='same_one' needs binary inputs "
                             "(scheme='binary'); use 'same' or 'valid'")
        self.padding = padding
        self._init_options(scheme, use_bias, k_scale, weight_ste,
                           clip_weights, input_clip, kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"BinaryConv2D needs NHWC input with known "
                             f"channels, got {input_shape}")
        kh, kw = self.kernel_size
        self._add_kernel((kh, kw, int(input_shape[-1]), self.filters))

    def _conv_padding(self, x):
        """Pads x with +1 for same_one and returns (x, the conv's padding)."""
        if self.padding != "same_one":
            return x, self.padding
        h, w = x.shape[1], x.shape[2]
        if h is None or w is None:
            raise ValueError("padding='same_one' needs static spatial sizes")
        ph = tf_same_pads(h, self.kernel_size[0], self.strides[0])
        pw = tf_same_pads(w, self.kernel_size[1], self.strides[1])
        return ops.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=1.0), "valid"

    def k_map(self, x):
        """K: box filter (1/(kh*kw), zero padded) of mean_c |x|."""
        kh, kw = self.kernel_size
        box = ops.ones((kh, kw, 1, 1), dtype=x.dtype) / float(kh * kw)
        pad = "same" if self.padding != "valid" else "valid"
        mean_abs = ops.mean(ops.abs(x), axis=-1, keepdims=True)
        return ops.conv(mean_abs, box, strides=self.strides, padding=pad)

    def call(self, x):
        xb = ste_sign(x, self.input_clip) if self.binary_inputs else x
        xb, pad = self._conv_padding(xb)
        w, scale = self.signed_kernel()
        acc = ops.conv(xb, w, strides=self.strides, padding=pad)
        pixel_scale = self.k_map(x) if self.k_scale else None
        return self._finish(acc, pixel_scale, scale)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        out = []
        for size, k, s in zip((h, w), self.kernel_size, self.strides):
            if size is None:
                out.append(None)
            elif self.padding == "valid":
                out.append((size - k) // s + 1)
            else:
                out.append(-(-size // s))
        return (n, out[0], out[1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(self._base_config())
        config.update({"filters": self.filters,
                       "kernel_size": self.kernel_size,
                       "strides": self.strides, "padding": self.padding})
        return config


@_register
class BinaryDense(_BinaryBase):
    """Dense layer with binarized weights (and inputs for scheme='binary').

    Order of operations (float32):
        acc = (sign(x) if binary inputs else x) @ sign(W)
        y   = acc * K * A + bias,   K[n] = mean_c |x[n, c]|
    """

    def __init__(self, units, scheme="xnor", use_bias=False, k_scale=True,
                 weight_ste="clip", clip_weights=False, input_clip=1.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        if self.units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self._init_options(scheme, use_bias, k_scale, weight_ste,
                           clip_weights, input_clip, kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"BinaryDense needs [batch, features] input, "
                             f"got {input_shape}")
        self._add_kernel((int(input_shape[-1]), self.units))

    def call(self, x):
        xb = ste_sign(x, self.input_clip) if self.binary_inputs else x
        w, scale = self.signed_kernel()
        acc = ops.matmul(xb, w)
        k = ops.mean(ops.abs(x), axis=-1, keepdims=True) if self.k_scale else None
        return self._finish(acc, k, scale)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(self._base_config())
        config["units"] = self.units
        return config


@_register
class SignActivation(keras.layers.Layer):
    """y = sign(x) (sign(0) = +1), gradient passed where |x| <= clip."""

    def __init__(self, clip=1.0, **kwargs):
        super().__init__(**kwargs)
        self.clip = None if clip is None else float(clip)

    def call(self, x):
        return ste_sign(x, self.clip)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "clip": self.clip}


@_register
class HardTanh(keras.layers.Layer):
    """y = clip(x, -1, 1)."""

    def call(self, x):
        return ops.clip(x, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape


@_register
class ChannelScale(keras.layers.Layer):
    """y = x * s[c], a learnable per-channel scale (initialised to 1)."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],),
                                     initializer="ones", trainable=True)

    def call(self, x):
        return x * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape


@_register
class ChannelZeroPad(keras.layers.Layer):
    """Appends `extra` zero channels (ResNet option-A shortcut)."""

    def __init__(self, extra, **kwargs):
        super().__init__(**kwargs)
        self.extra = int(extra)
        if self.extra < 0:
            raise ValueError(f"extra must be >= 0, got {extra}")

    def call(self, x):
        return ops.pad(x, ((0, 0), (0, 0), (0, 0), (0, self.extra)))

    def compute_output_shape(self, input_shape):
        c = input_shape[-1]
        return (*input_shape[:-1], None if c is None else c + self.extra)

    def get_config(self):
        return {**super().get_config(), "extra": self.extra}


@_register
class LRN(keras.layers.Layer):
    """Local response normalization with TensorFlow's semantics
    (tf.nn.local_response_normalization):

        sqr_sum[n, y, x, c] = sum_{d=c-r}^{c+r} x[n, y, x, d]^2  (d in range)
        out = x / (bias + alpha * sqr_sum) ** beta
    """

    def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5,
                 **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        if self.depth_radius < 0:
            raise ValueError(f"depth_radius must be >= 0, got {depth_radius}")
        self.lrn_bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, x):
        r = self.depth_radius
        c = x.shape[-1]
        sq = ops.pad(ops.square(x), ((0, 0), (0, 0), (0, 0), (r, r)))
        # Window sum along channels: 2r+1 shifted slices of the padded squares.
        sqr_sum = sq[..., 0:c]
        for d in range(1, 2 * r + 1):
            sqr_sum = sqr_sum + sq[..., d:d + c]
        return x / ops.power(self.lrn_bias + self.alpha * sqr_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius,
                "bias": self.lrn_bias, "alpha": self.alpha, "beta": self.beta}


def _pair(value, name):
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or pair, got {value}")
    return value


__all__ = ["BinaryConv2D", "BinaryDense", "SignActivation", "HardTanh",
           "ChannelScale", "ChannelZeroPad", "LRN", "ClipWeights", "sign",
           "ste_sign", "tf_same_pads", "SCHEMES", "PADDINGS"]

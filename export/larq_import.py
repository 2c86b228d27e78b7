"""Larq models (Keras 2 / tf_keras): QuantConv2D and QuantDense -> graph ops.

Importing this module adds the two layers to export.convert's table. Runs
in the Larq environment (requirements-larq.txt); needs no Larq import
itself -- quantizers are recognised by name.

Supported quantizers (forward pass only matters for inference):
  input:  None (float input), ste_sign / approx_sign / swish_sign (all sign(x),
          sign(0) = +1) -> scheme binary
  kernel: ste_sign -> binary weights, alpha none;
          magnitude_aware_sign -> binary weights with alpha[o] = mean |W[..., o]|
          (Larq multiplies it into the weights BEFORE the sum, so the Keras
          dot is a float sum: marked float_acc for the rounding bound);
          None -> float weights (only with a float input).
  pad_values 0 -> same_zero, 1 -> same_one (binary inputs only).
"""
import numpy as np

from .convert import CONVERTERS, ExportError, _conv_padding, _np, add_weighted

SIGN_INPUTS = ("ste_sign", "approx_sign", "swish_sign")
KERNELS = ("ste_sign", "magnitude_aware_sign")


def quantizer_name(q):
    """'ste_sign' for SteSign() or the function ste_sign; None for None."""
    if q is None:
        return None
    if hasattr(q, "get_config") and "name" in q.get_config():
        cls = type(q).__name__
        # SteSign -> ste_sign (class names are CamelCase of the function names)
        return "".join("_" + c.lower() if c.isupper() else c for c in cls).lstrip("_")
    return getattr(q, "__name__", type(q).__name__)


def _quant(ctx, layer, ins, conv):
    iq = quantizer_name(layer.input_quantizer)
    kq = quantizer_name(layer.kernel_quantizer)
    where = f"layer {layer.name!r} ({type(layer).__name__})"
    if iq is not None and iq not in SIGN_INPUTS:
        raise ExportError(f"{where}: input quantizer {iq!r} is not supported (supported: None, "
                          f"{', '.join(SIGN_INPUTS)})")
    if kq is not None and kq not in KERNELS:
        raise ExportError(f"{where}: kernel quantizer {kq!r} is not supported (supported: None, "
                          f"{', '.join(KERNELS)})")
    if iq is not None and kq is None:
        raise ExportError(f"{where}: binary inputs with float weights are not supported "
                          "(the format's binary scheme binarizes both)")
    binary_in = iq is not None
    kw = {"conv": conv, "bias": _np(layer.bias) if layer.use_bias else None}
    if conv:
        pad = layer.get_config()["padding"]
        pad_value = float(getattr(layer, "pad_values", 0.0))
        if pad == "same" and pad_value not in (0.0, 1.0):
            raise ExportError(f"{where}: pad_values {pad_value} is not supported (0 or 1)")
        if pad == "same" and pad_value == 1.0:
            if not binary_in:
                raise ExportError(f"{where}: pad_values=1 on a float input is not supported "
                                  "(+1 padding exists only for binary inputs)")
            pad = "same_one"
        kw["padding"] = _conv_padding(layer, pad, binary_in)
    if kq is None:
        return add_weighted(ctx, layer, ins[0], float_weights=_np(layer.kernel), **kw)
    import tensorflow as tf
    # the weights Larq really uses (a constant: its custom gradients refuse variables)
    q = _np(layer.kernel_quantizer(tf.constant(_np(layer.kernel))))
    signs = np.where(q < 0, -1.0, 1.0).astype(np.float32)
    scheme = "binary" if binary_in else "binary_weights"
    if kq == "ste_sign":
        return add_weighted(ctx, layer, ins[0], signs=signs, scheme=scheme, **kw)
    alpha = np.abs(q).reshape(-1, q.shape[-1]).max(axis=0)     # |+-alpha| = alpha exactly
    return add_weighted(ctx, layer, ins[0], signs=signs, alpha=alpha, alpha_kind="per_filter",
                        scheme=scheme, float_acc=True, **kw)


CONVERTERS["QuantConv2D"] = lambda c, l, i: _quant(c, l, i, True)
CONVERTERS["QuantDense"] = lambda c, l, i: _quant(c, l, i, False)

"""Access to the compiled engine, edgebnn._engine (required to run models:
the numpy re-implementation of the folded ops lives in tests/ as the
oracle, not in the product)."""

REQUIRED = ("Plan", "bitpack", "bconv2d", "bdense", "maxpool_bits", "wconv2d", "wdense",
            "fconv2d", "fdense", "kmap", "maxpool", "avgpool", "global_avgpool")

MISSING = ("edgebnn's compiled engine (edgebnn._engine) is not built or is out of date: "
           "run `python setup.py build_ext --inplace` (or `pip install .`) in the source tree")


def load_engine():
    """The compiled engine module, or None if it is not built (or lacks an op)."""
    try:
        from . import _engine
    except ImportError:
        return None
    return _engine if all(hasattr(_engine, f) for f in REQUIRED) else None


def require_engine():
    """The compiled engine module; ImportError with the fix if it is missing."""
    eng = load_engine()
    if eng is None:
        raise ImportError(MISSING)
    return eng

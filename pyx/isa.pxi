# ISA selection: one dispatch point in C (pyx/kernels/dispatch.c); this is
# its Python face. EDGEBNN_ISA=ref|generic|avx2|avx512|neon forces a path at
# import time.
import os as _os

ISA_NAMES = ("ref", "generic", "avx2", "avx512", "neon")


def isa_available():
    """Names of the kernel paths this build and this CPU can run."""
    return [ISA_NAMES[i] for i in range(EBNN_ISA_COUNT) if ebnn_isa_supported(i)]


def get_isa():
    """Name of the kernel path in use."""
    return ISA_NAMES[ebnn_isa_get()]


def set_isa(name):
    """Force a kernel path by name; ValueError if unknown or unsupported here."""
    if name not in ISA_NAMES:
        raise ValueError(f"unknown ISA {name!r}; choose from {', '.join(ISA_NAMES)}")
    if ebnn_isa_set(ISA_NAMES.index(name)) != 0:
        raise ValueError(f"ISA {name!r} is not supported by this build/CPU "
                         f"(available: {', '.join(isa_available())})")


def max_threads():
    """Threads OpenMP would use by default (1 in a build without OpenMP)."""
    return ebnn_max_threads()


_forced = _os.environ.get("EDGEBNN_ISA")
if _forced:
    set_isa(_forced)

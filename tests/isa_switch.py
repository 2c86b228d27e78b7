"""Run kernel code on one ISA path and put the previous one back."""
import contextlib

from edgebnn import _engine as E


@contextlib.contextmanager
def isa(name):
    old = E.get_isa()
    E.set_isa(name)
    try:
        yield
    finally:
        E.set_isa(old)

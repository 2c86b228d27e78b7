"""Generated sources in the repository are what their generator writes: a
hand edit of the output (or a generator change not regenerated) fails here."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_taps_assembly_header_is_regenerated():
    kernels = os.path.join(ROOT, "pyx", "kernels")
    if not os.path.isfile(os.path.join(kernels, "gen_taps_asm.py")):
        pytest.skip("no C sources beside these tests (an installed package's test run)")
    out = subprocess.run([sys.executable, os.path.join(kernels, "gen_taps_asm.py")],
                         check=True, capture_output=True, text=True).stdout
    with open(os.path.join(kernels, "bconv2d_taps_a64.h")) as f:
        assert f.read() == out, "run: python3 pyx/kernels/gen_taps_asm.py > pyx/kernels/bconv2d_taps_a64.h"

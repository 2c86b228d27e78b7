"""Build of the compiled engine, edgebnn._engine: Cython (pyx/) over the C
kernels (pyx/kernels/). One binary runs on any CPU of its architecture: the
x86 SIMD files carry per-function target attributes and the fast path is
chosen at run time, so no -march=native is ever used.

Environment:
  EDGEBNN_SANITIZE=1   build with ASan + UBSan (tests then need LD_PRELOAD of
                       libasan; see .ci/run)
  EDGEBNN_NO_OPENMP=1  build without OpenMP (single-threaded)
"""
import glob
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def _compiler_accepts(flag):
    """True if the C compiler used for extensions accepts `flag`."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as f:
            f.write("int main(void){return 0;}\n")
        cmd = cc + [flag, src, "-o", os.path.join(tmp, "t")]
        return subprocess.run(cmd, capture_output=True).returncode == 0


def _arch_flags():
    m = platform.machine().lower()
    if m.startswith("armv7") or m.startswith("armv8l") or m == "arm":
        # Debian armhf defaults to no NEON; Pi 2/3/4 in 32-bit mode have it.
        return ["-mfpu=neon-vfpv4", "-mfloat-abi=hard"]
    return []  # x86-64 and aarch64: SIMD chosen per function / always there


# -ffp-contract=off: no silent a*b+c fusion (ARM gcc fuses by default), so a
# float result is the same on every architecture; kernels that want FMA
# say so with intrinsics.
compile_args = ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-ffp-contract=off"] + _arch_flags()
link_args = []
if os.environ.get("EDGEBNN_NO_OPENMP") != "1" and _compiler_accepts("-fopenmp"):
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")
if os.environ.get("EDGEBNN_SANITIZE") == "1":
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
           "-fno-sanitize-recover=undefined"]
    compile_args = [a for a in compile_args if a != "-O3"] + ["-O1", "-g"] + san
    link_args += san

sources = ["pyx/_engine.pyx", "pyx/plan.c"] + sorted(glob.glob("pyx/kernels/*.c"))
engine = Extension(
    "edgebnn._engine",
    sources=sources,
    # headers hold code too (output_rows_body.h): a change must rebuild
    depends=sorted(glob.glob("pyx/kernels/*.h")) + ["pyx/plan.h"],
    include_dirs=["pyx/kernels", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(
    ext_modules=cythonize(
        [engine],
        compiler_directives={"language_level": 3, "boundscheck": False,
                             "wraparound": False, "cdivision": True},
    ),
)

# cython: language_level=3
"""edgebnn._engine: the compiled engine.

Python-facing wrappers over the C kernels in pyx/kernels/. Every wrapper
checks shapes and dtypes and raises ValueError before any C code runs, then
calls the kernel with the GIL released on `num_threads` OpenMP threads.

The wrappers are split by concern into include files:
  isa.pxi       ISA report / selection (EDGEBNN_ISA)
  common.pxi    argument checking, geometry and output-stage helpers
  binary.pxi    bitpack, bconv2d, bdense, maxpool_bits
  floatops.pxi  weights-only conv/dense, float conv/dense, K map, float pools
  plan.pxi      Plan: a compiled step list run in one OpenMP region (plan.c)
"""
cimport numpy as cnp
import numpy as np

cnp.import_array()

include "ckernels.pxi"
include "isa.pxi"
include "common.pxi"
include "binary.pxi"
include "floatops.pxi"
include "plan.pxi"

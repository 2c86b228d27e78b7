/* Throughput probes for the kernel benchmark: the GEMM inner loop's
 * instructions on registers only (no loads), so a kernel's speed can be
 * stated as a fraction of what this machine can do at all. */
#ifndef EDGEBNN_BPROBE_H
#define EDGEBNN_BPROBE_H
#include <stdint.h>

/* Runs `iters` iterations of the ISA's xor + popcount + add tile; returns
 * the binary MACs done, or 0 if there is no probe for `isa` here. */
int64_t ebnn_bgemm_probe(int isa, int64_t iters);
/* Runs a chain of dependent integer adds (one cycle each on any current
 * core); returns the number of adds, so adds / seconds estimates the clock. */
int64_t ebnn_cycle_probe(int64_t iters);

#endif

/* Threads: one OpenMP parallel region per op; without OpenMP, serial. */
#include "edgebnn.h"
#ifdef _OPENMP
#include <omp.h>
#endif

void ebnn_run_parallel(ebnn_task fn, void *ctx, int nthreads)
{
    if (nthreads <= 1) {
        fn(ctx, 0, 1);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads)
    {
        /* the runtime may give fewer threads than asked: split by the real count */
        fn(ctx, omp_get_thread_num(), omp_get_num_threads());
    }
#else
    for (int t = 0; t < nthreads; t++)
        fn(ctx, t, nthreads);
#endif
}

int ebnn_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

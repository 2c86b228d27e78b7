/* The one dispatch point: which kernel path (ISA) runs. Each op's front
 * function (bconv2d.c, wconv2d.c, ...) switches on ebnn_isa_get(). */
#include "edgebnn.h"

static int g_isa = -1; /* -1: not chosen yet -> best */

#if defined(__x86_64__) || defined(__i386__)
static int cpu_has(int isa)
{
    __builtin_cpu_init();
    switch (isa) {
    case EBNN_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("popcnt");
    case EBNN_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vpopcntdq");
    default:
        return 0;
    }
}
#endif

int ebnn_isa_supported(int isa)
{
    switch (isa) {
    case EBNN_ISA_REF:
    case EBNN_ISA_GENERIC:
        return 1;
#if defined(__x86_64__)
    case EBNN_ISA_AVX2:
    case EBNN_ISA_AVX512:
        return cpu_has(isa);
#endif
#if defined(__aarch64__) || defined(__ARM_NEON)
    case EBNN_ISA_NEON:
        return 1; /* aarch64 always; armv7 only when built with -mfpu=neon */
#endif
    default:
        return 0;
    }
}

int ebnn_isa_best(void)
{
    static const int order[] = {EBNN_ISA_AVX512, EBNN_ISA_AVX2, EBNN_ISA_NEON,
                                EBNN_ISA_GENERIC};
    for (unsigned i = 0; i < sizeof order / sizeof *order; i++)
        if (ebnn_isa_supported(order[i]))
            return order[i];
    return EBNN_ISA_GENERIC;
}

int ebnn_isa_get(void)
{
    if (g_isa < 0)
        g_isa = ebnn_isa_best();
    return g_isa;
}

int ebnn_isa_set(int isa)
{
    if (isa < 0 || isa >= EBNN_ISA_COUNT || !ebnn_isa_supported(isa))
        return -1;
    g_isa = isa;
    return 0;
}

const char *ebnn_isa_name(int isa)
{
    static const char *names[EBNN_ISA_COUNT] = {"ref", "generic", "avx2", "avx512", "neon"};
    return (isa >= 0 && isa < EBNN_ISA_COUNT) ? names[isa] : "unknown";
}

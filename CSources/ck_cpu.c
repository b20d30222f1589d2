// CPU feature detection, done once; a switch lets tests run the scalar paths on any CPU.
// Off x86-64 every feature reads 0: the kernels there have only their portable paths.
#include "ck_cpu.h"
#include "ck_internal.h"
#include <stdatomic.h>

static int detect(void) {
#if CK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int detect512(void) {
#if CK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static _Atomic int g_has = -1;
static _Atomic int g_has512 = -1;
static _Atomic int g_enabled = 1;

int ck_cpu_has_avx2_fma(void) {
    int h = atomic_load(&g_has);
    if (h < 0) { h = detect(); atomic_store(&g_has, h); }
    return h;
}

int ck_cpu_has_avx512(void) {
    int h = atomic_load(&g_has512);
    if (h < 0) { h = detect512(); atomic_store(&g_has512, h); }
    return h;
}

// This thread's override of the process-wide switch (-1: none). Pool workers take their
// caller's effective setting for the duration of each job.
static _Thread_local int t_override = -1;

int ck_cpu_simd_enabled(void) {
    int on = t_override >= 0 ? t_override : atomic_load(&g_enabled);
    return on && ck_cpu_has_avx2_fma();
}

int ck_cpu_set_simd_enabled(int enabled) { return atomic_exchange(&g_enabled, enabled ? 1 : 0); }

int ck_cpu_set_thread_simd_enabled(int setting) {
    int old = t_override;
    t_override = setting < 0 ? -1 : (setting ? 1 : 0);
    return old;
}

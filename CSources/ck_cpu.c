// CPU feature detection, done once; the process-wide SIMD level (DISTILL_SIMD or
// ck_simd_set_level); the test switch for the vector paths.
#include "ck_cpu.h"
#include "ck_internal.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int detect_best(void) {
#if CK_X86
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return CK_SIMD_SCALAR;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return CK_SIMD_AVX512;
    return CK_SIMD_AVX2;
#elif CK_NEON
    return CK_SIMD_NEON;
#else
    return CK_SIMD_SCALAR;
#endif
}

static _Atomic int g_best = -1;
static _Atomic int g_level = -1;
static _Atomic int g_env_rejected = 0;
static _Atomic int g_enabled = 1;

int ck_simd_best(void) {
    int b = atomic_load(&g_best);
    if (b < 0) { b = detect_best(); atomic_store(&g_best, b); }
    return b;
}

int ck_simd_supported(int level) {
    const int best = ck_simd_best();
    switch (level) {
    case CK_SIMD_SCALAR: return 1;
    case CK_SIMD_AVX2: return best == CK_SIMD_AVX2 || best == CK_SIMD_AVX512;
    case CK_SIMD_AVX512: return best == CK_SIMD_AVX512;
    case CK_SIMD_NEON: return best == CK_SIMD_NEON;
    default: return 0;
    }
}

const char *ck_simd_name(int level) {
    switch (level) {
    case CK_SIMD_SCALAR: return "scalar";
    case CK_SIMD_AVX2: return "avx2";
    case CK_SIMD_AVX512: return "avx512";
    case CK_SIMD_NEON: return "neon";
    default: return "unknown";
    }
}

// The level at first use: DISTILL_SIMD when it names a level this CPU has, else the best.
static int initial_level(void) {
    const char *env = getenv("DISTILL_SIMD");
    if (env && *env) {
        for (int l = CK_SIMD_SCALAR; l <= CK_SIMD_NEON; l++)
            if (strcmp(env, ck_simd_name(l)) == 0 && ck_simd_supported(l)) return l;
        atomic_store(&g_env_rejected, 1);
    }
    return ck_simd_best();
}

// This thread's override of the process-wide level (-1: none). Pool workers take their
// caller's level for the duration of each job.
static _Thread_local int t_level = -1;

int ck_simd_level(void) {
    if (t_level >= 0) return t_level;
    int l = atomic_load(&g_level);
    if (l < 0) {
        int fresh = initial_level(), expected = -1;
        l = atomic_compare_exchange_strong(&g_level, &expected, fresh) ? fresh : expected;
    }
    return l;
}

int ck_simd_cap(int level) {
    if (level < CK_SIMD_SCALAR || level > CK_SIMD_NEON) return -1;
    if (ck_simd_supported(level)) return level;
    if (level == CK_SIMD_AVX512 && ck_simd_supported(CK_SIMD_AVX2)) return CK_SIMD_AVX2;
    return CK_SIMD_SCALAR;   // avx2/avx512 without them, or the other architecture's level
}

int ck_simd_set_level(int level) {
    level = ck_simd_cap(level);
    if (level < 0) return -1;
    int old = atomic_load(&g_level);
    if (old < 0) old = initial_level();
    atomic_store(&g_level, level);
    if (level != old) ck_blas_match_level(level);
    return old;
}

int ck_simd_set_thread_level(int level) {
    if (level >= 0 && !ck_simd_supported(level)) return -2;
    const int old = t_level;
    t_level = level < 0 ? -1 : level;
    return old;
}

int ck_simd_env_rejected(void) {
    (void)ck_simd_level();
    return atomic_load(&g_env_rejected);
}

int ck_cpu_has_avx2_fma(void) { return ck_simd_supported(CK_SIMD_AVX2); }

int ck_cpu_has_avx512(void) { return ck_simd_level() == CK_SIMD_AVX512; }

// This thread's override of the process-wide switch (-1: none). Pool workers take their
// caller's effective setting for the duration of each job.
static _Thread_local int t_override = -1;

int ck_cpu_simd_enabled(void) {
    int on = t_override >= 0 ? t_override : atomic_load(&g_enabled);
    return on && ck_simd_level() != CK_SIMD_SCALAR;
}

int ck_cpu_set_simd_enabled(int enabled) { return atomic_exchange(&g_enabled, enabled ? 1 : 0); }

int ck_cpu_set_thread_simd_enabled(int setting) {
    int old = t_override;
    t_override = setting < 0 ? -1 : (setting ? 1 : 0);
    return old;
}

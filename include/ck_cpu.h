// CPU features, checked once; the process-wide SIMD level; and the test switch for the
// kernels' vector paths.
//
// Levels: scalar (portable C only), avx2 (AVX2+FMA), avx512 (AVX-512 F/BW/DQ/VL) on x86-64;
// scalar and neon (Advanced SIMD with FMA, part of every AArch64 CPU) on aarch64. The level
// starts at the best one the CPU has, capped by the environment variable DISTILL_SIMD when it
// names a level this CPU has (read once, on first use); ck_simd_set_level changes it. A kernel
// takes its vector code (written once with vector extensions, compiled for AVX2+FMA on x86-64
// and natively on aarch64) at level avx2, avx512 or neon, its AVX-512 code only at avx512, and
// its portable code at scalar. The level also picks the convolution engines, so set it before
// any work starts (not while kernels run, and not between a workspace-size query and the
// call that uses the workspace).
//
// The test switch (ck_cpu_set_simd_enabled / ck_cpu_set_thread_simd_enabled) runs a kernel's
// scalar twin of the same algorithm at the same level: same engines, same workspaces, and the
// same bits where a kernel promises them.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

enum { CK_SIMD_SCALAR = 0, CK_SIMD_AVX2 = 1, CK_SIMD_AVX512 = 2, CK_SIMD_NEON = 3 };

// 1 when this CPU can run `level` (scalar always; avx2/avx512 on x86-64 CPUs with those
// features; neon on aarch64); 0 otherwise, and for unknown values.
int ck_simd_supported(int level);

// The best level this CPU has.
int ck_simd_best(void);

// The level in force: the calling thread's override (ck_simd_set_thread_level) if any, else the
// process-wide level.
int ck_simd_level(void);

// The level a request for `level` gives on this CPU: `level` itself when the CPU has it, else
// the best level below it (x86-64: scalar < avx2 < avx512; aarch64: scalar < neon; the other
// architecture's level gives scalar); -1 for an unknown value.
int ck_simd_cap(int level);

// Sets the process-wide level to ck_simd_cap(level). Returns the previous level, or -1 (and
// changes nothing) for an unknown value.
int ck_simd_set_level(int level);

// Overrides the level for the calling thread only (-1: back to the process-wide level), e.g.
// for tests that compare levels concurrently; kernels it runs in parallel follow it on every
// pool thread. Returns the previous override (-1: none), or -2 (and changes nothing) when the
// CPU cannot run `level`.
int ck_simd_set_thread_level(int level);

// 0 when DISTILL_SIMD is unset, empty, or names a level this CPU has; otherwise 1 (the level
// then stays at the best one the CPU has and the caller may report the bad value).
int ck_simd_env_rejected(void);

// Lower-case name of a level ("scalar", "avx2", "avx512", "neon"), or "unknown".
const char *ck_simd_name(int level);

// 1 when the CPU supports AVX2 and FMA (hardware only, whatever the level).
int ck_cpu_has_avx2_fma(void);

// 1 when the level is avx512 (the AVX-512 kernels and engines may run).
int ck_cpu_has_avx512(void);

// 1 when kernels take their vector paths: the level is not scalar and the test switch is on
// (for the calling thread, see ck_cpu_set_thread_simd_enabled).
int ck_cpu_simd_enabled(void);

// Test switch: turns the vector paths on (1) or off (0) process-wide without changing the
// level or the engines. Returns the previous setting.
int ck_cpu_set_simd_enabled(int enabled);

// Overrides the test switch for the calling thread only (1 on, 0 off, -1 back to the
// process-wide setting), e.g. to compare both paths in tests that run concurrently; kernels it
// runs in parallel follow it on every pool thread. Returns the previous override (-1: none).
int ck_cpu_set_thread_simd_enabled(int setting);

#ifdef __cplusplus
}
#endif

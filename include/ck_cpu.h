// One-time CPU feature dispatch. Kernels with an AVX2+FMA code path take it when the CPU has
// both features and the path is not disabled; otherwise they run their portable scalar code.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// 1 when the CPU supports AVX2 and FMA (checked once).
int ck_cpu_has_avx2_fma(void);

// 1 when the CPU supports AVX-512 F/BW/DQ/VL and FMA (checked once). Kernels with an
// AVX-512 path take it only while ck_cpu_use_avx2() is 1 too (the one SIMD switch).
int ck_cpu_has_avx512(void);

// 1 when kernels currently take their AVX2+FMA path.
int ck_cpu_use_avx2(void);

// Enables (1) or disables (0) the AVX2+FMA paths process-wide. Enabling has no effect on a
// CPU without the features. Returns the previous setting.
int ck_cpu_set_avx2(int enabled);

// Overrides the switch for the calling thread only (1 on, 0 off, -1 back to the process-wide
// setting), e.g. to compare both paths in tests that run concurrently; kernels it runs in
// parallel follow it on every pool thread. Returns the previous override (-1: none).
int ck_cpu_set_thread_avx2(int setting);

#ifdef __cplusplus
}
#endif

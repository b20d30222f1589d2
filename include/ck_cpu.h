// CPU features, checked once, and the one switch for the kernels' SIMD paths.
//
// A kernel takes its SIMD code (AVX2+FMA, and AVX-512 where it has such code and the CPU has
// the features) while ck_cpu_simd_enabled() is 1, and its portable scalar code otherwise. The
// switch is on by default; turning it off lets tests compare both paths on any CPU. The
// direct convolutions are chosen on AVX-512 CPUs from the features alone, never from the
// switch, so turning it off runs the same algorithm in scalar code. Off x86-64 (aarch64, ...)
// the SIMD paths are not compiled: every feature reads 0 and the kernels run their portable code.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// 1 when the CPU supports AVX2 and FMA.
int ck_cpu_has_avx2_fma(void);

// 1 when the CPU supports AVX-512 F/BW/DQ/VL and FMA.
int ck_cpu_has_avx512(void);

// 1 when kernels take their SIMD paths: the switch is on (for the calling thread, see
// ck_cpu_set_thread_simd_enabled) and the CPU has AVX2+FMA. Their AVX-512 code also needs
// ck_cpu_has_avx512().
int ck_cpu_simd_enabled(void);

// Turns the SIMD paths on (1) or off (0) process-wide. On has no effect on a CPU without
// AVX2+FMA. Returns the previous setting.
int ck_cpu_set_simd_enabled(int enabled);

// Overrides the switch for the calling thread only (1 on, 0 off, -1 back to the process-wide
// setting), e.g. to compare both paths in tests that run concurrently; kernels it runs in
// parallel follow it on every pool thread. Returns the previous override (-1: none).
int ck_cpu_set_thread_simd_enabled(int setting);

#ifdef __cplusplus
}
#endif

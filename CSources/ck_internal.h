// Internal helpers shared by the kernel files (not part of the public headers).
#pragma once
#include <stdint.h>
#include <stddef.h>
#include "ck_pool.h"
#include "ck_cpu.h"

// CK_X86 is 1 on x86-64, where the kernels have AVX2 and AVX-512 paths; every intrinsic (and
// <immintrin.h>) sits behind `#if CK_X86`. CK_NEON is 1 on AArch64, where Advanced SIMD with
// fused multiply-add is part of every CPU. Vector code is written once, with Clang/GCC vector
// extensions, in CK_VEC functions: compiled for AVX2+FMA on x86-64 and for the baseline
// (Advanced SIMD) on AArch64. Elsewhere only the portable scalar code runs: the level is scalar,
// so ck_cpu_simd_enabled() is 0 and no kernel calls a CK_VEC function.
#if defined(__x86_64__) || defined(_M_X64)
#define CK_X86 1
#define CK_NEON 0
// A function compiled for AVX2+FMA regardless of the build's baseline flags. It must only
// be called after ck_cpu_simd_enabled() said yes.
#define CK_AVX2 __attribute__((target("avx2,fma")))
// The same for AVX-512 (F, BW, DQ, VL): only after ck_cpu_has_avx512() said yes.
#define CK_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#else
#define CK_X86 0
#if defined(__aarch64__) && defined(__ARM_NEON)
#define CK_NEON 1
#else
#define CK_NEON 0
#endif
// No x86 targets: a CK_AVX2 copy of a CK_BODY loop is plain code for the baseline target.
#define CK_AVX2
#define CK_AVX512
#endif
// The vector paths' functions (level avx2, avx512 or neon; see ck_cpu.h).
#define CK_VEC CK_AVX2
// Force inlining of a loop body into both the scalar and the AVX2 wrapper, so one source
// serves both code paths (the AVX2 copy is vectorized for the wider target).
#define CK_BODY static inline __attribute__((always_inline))

static inline int64_t ck_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t ck_max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t ck_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Elementwise work is cut into blocks of this many floats (a multiple of every SIMD width).
// The block size never depends on the thread count, so neither do the results.
#define CK_BLOCK 16384

// Single-threaded activation passes over one block, for fusing into other kernels
// (ck_activation.c). The backward writes dx = dy * f'(x) when accumulate is 0.
void ck_act_forward_serial(float *y, const float *x, int64_t n, int act);
void ck_act_backward_serial(float *dx, const float *dy, const float *x, const float *y, int64_t n,
                            int act, int accumulate);

// Square root without errno semantics, so loops that use it can vectorize.
#if defined(__has_builtin) && __has_builtin(__builtin_elementwise_sqrt)
#define CK_SQRTF(x) __builtin_elementwise_sqrt(x)
#else
#define CK_SQRTF(x) __builtin_sqrtf(x)
#endif

// Standard normals at Philox positions offset.. offset+n-1 on the calling thread (ck_random.c).
void ck_random_normal_serial(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset);

// Points OpenBLAS at kernels of the given SIMD level where it can (ck_gemm.c); called by the
// pool's start-up and by ck_simd_set_level, never while kernels run.
void ck_blas_match_level(int level);

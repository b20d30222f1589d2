// Machine probes for benchmarks: peak FP32 FMA throughput and a STREAM-like triad, run on
// the pool so they measure what the kernels can use.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Runs `tasks` blocks of independent FMA chains over the pool and returns the FP32 flops done
// (2 per lane per FMA), or 0 without running anything when the CPU lacks the instructions asked
// for. `avx512` 0: 8-lane chains, AVX2+FMA on x86-64 and NEON (two 4-lane registers per chain)
// on aarch64; 1: 16-lane AVX-512 chains (x86-64 CPUs with AVX-512 at level avx512 only).
// Time it from the caller.
double ck_bench_fma_flops(int avx512, int64_t tasks);

// a[i] = b[i] + s * c[i] over n floats, cut in fixed blocks over the pool (STREAM triad).
void ck_bench_triad(float *a, const float *b, const float *c, float s, int64_t n);

#ifdef __cplusplus
}
#endif

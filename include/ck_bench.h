// Machine probes for benchmarks: peak FP32 FMA throughput and a STREAM-like triad, run on
// the pool so they measure what the kernels can use.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Runs `tasks` blocks of independent FMA chains (AVX2: 8 lanes; AVX-512: 16 lanes when
// `avx512` is 1) over the pool and returns the FP32 flops done (2 per lane per FMA), or 0
// without running anything when the CPU lacks the instructions asked for. Time it from the
// caller.
double ck_bench_fma_flops(int avx512, int64_t tasks);

// a[i] = b[i] + s * c[i] over n floats, cut in fixed blocks over the pool (STREAM triad).
void ck_bench_triad(float *a, const float *b, const float *c, float s, int64_t n);

#ifdef __cplusplus
}
#endif

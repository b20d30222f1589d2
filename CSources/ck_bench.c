// Peak-FMA and triad probes. The FMA loop keeps 12 independent accumulators per thread, enough
// to cover FMA latency x throughput on current cores: 8-float vectors (AVX2 on x86-64, two NEON
// registers on aarch64) or, on x86-64, AVX-512 intrinsics.
#include "ck_bench.h"
#include "ck_internal.h"
#include "ck_simd.h"
#if CK_X86
#include <immintrin.h>
#endif

#define FMA_ITERS 200000
#define CHAINS 12

#if CK_X86 || CK_NEON
static volatile float g_sink;

CK_VEC static void fma_vec(void) {
    ck_v8f acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = (float)c * 1e-3f;
    const ck_v8f m = 0.999999f, a = 1e-7f;
    for (int i = 0; i < FMA_ITERS; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = __builtin_elementwise_fma(acc[c], m, a);
    ck_v8f s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = s + acc[c];
    g_sink = s[0];
}
#endif

#if CK_X86
__attribute__((target("avx512f"))) static void fma_avx512(void) {
    __m512 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c * 1e-3f);
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < FMA_ITERS; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
    g_sink = _mm512_reduce_add_ps(s);
}
#endif

// ctx: 1 for the AVX-512 probe (x86-64 only), 0 for the 8-float one.
static void fma_task(void *ctx, int64_t t, int64_t nt) {
    (void)ctx; (void)t; (void)nt;
#if CK_X86
    if (*(int *)ctx) fma_avx512(); else fma_vec();
#elif CK_NEON
    fma_vec();
#endif   // elsewhere never run: ck_bench_fma_flops reports 0
}

double ck_bench_fma_flops(int avx512, int64_t tasks) {
    const int vec = ck_cpu_has_avx2_fma() || ck_simd_supported(CK_SIMD_NEON);
    if (avx512 ? !ck_cpu_has_avx512() : !vec) return 0.0;
    ck_parallel_for(fma_task, &avx512, tasks);
    return (double)tasks * FMA_ITERS * CHAINS * (avx512 ? 16 : 8) * 2.0;
}

typedef struct { float *a; const float *b, *c; float s; int64_t n; } triad_job;

CK_BODY void triad_body(float *a, const float *b, const float *c, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
static void triad_scalar(float *a, const float *b, const float *c, float s, int64_t n) { triad_body(a, b, c, s, n); }
CK_VEC static void triad_vec(float *a, const float *b, const float *c, float s, int64_t n) { triad_body(a, b, c, s, n); }

static void triad_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const triad_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    if (ck_cpu_simd_enabled()) triad_vec(j->a + s, j->b + s, j->c + s, j->s, e - s);
    else triad_scalar(j->a + s, j->b + s, j->c + s, j->s, e - s);
}

void ck_bench_triad(float *a, const float *b, const float *c, float s, int64_t n) {
    triad_job j = {a, b, c, s, n};
    ck_parallel_for(triad_task, &j, ck_ceil_div(n, CK_BLOCK));
}

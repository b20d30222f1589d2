// Fused sampler step: blocks of CK_BLOCK elements; within a block, chunks of up to NOISE_CHUNK
// elements: the chunk's noise is generated into a stack buffer, then one vectorizable loop
// forms the combination.
#include "ck_sampler.h"
#include "ck_random.h"
#include "ck_internal.h"
#include "ck_simd.h"
#include <stdlib.h>

// Noise is made and used in chunks this small so that the hardware prefetchers stream the next
// inputs while the normals are computed; the chunk size never changes the bits. A multiple of
// 64: the vector normals path (16 Philox blocks at a time) starts on the 64-grid of positions.
#define NOISE_CHUNK 128

typedef struct {
    float *y;
    const float *in[CK_SAMPLER_MAX_INPUTS];
    float c[CK_SAMPLER_MAX_INPUTS];
    int k;
    float std;
    uint64_t seed, stream, offset;
    int64_t n;
} comb_job;

// y[0..m) = sum c_k in_k + std * z (z NULL: no noise). The accumulation order is fixed:
// inputs in order, then the noise, each term a product then a sum (no fma), so the scalar and
// the vector code (AVX2 on x86-64, NEON on aarch64) give the same bits. y may be one of the
// inputs (same index only).
#pragma STDC FP_CONTRACT OFF
static inline float comb_one(const float *const *in, const float *c, int k, float std, const float *z, int64_t i) {
    float acc = c[0] * in[0][i];
    for (int q = 1; q < k; q++) {
        float t = c[q] * in[q][i];
        acc = acc + t;
    }
    if (z) {
        float t = std * z[i];
        acc = acc + t;
    }
    return acc;
}
static void comb_scalar(float *y, const float *const *in, const float *c, int k, float std, const float *z, int64_t m) {
    for (int64_t i = 0; i < m; i++) y[i] = comb_one(in, c, k, std, z, i);
}
#if CK_X86 || CK_NEON
CK_VEC static void comb_vec(float *y, const float *const *in, const float *c, int k, float std, const float *z, int64_t m) {
    int64_t i = 0;
    for (; i + 8 <= m; i += 8) {
        ck_v8f acc = c[0] * ck_load8(in[0] + i);
        for (int q = 1; q < k; q++) acc = acc + c[q] * ck_load8(in[q] + i);
        if (z) acc = acc + std * ck_load8(z + i);
        ck_store8(y + i, acc);
    }
    for (; i < m; i++) y[i] = comb_one(in, c, k, std, z, i);
}
#endif

static void comb_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const comb_job *j = p;
    int64_t s0 = t * CK_BLOCK, e = ck_min64(s0 + CK_BLOCK, j->n);
    float z[NOISE_CHUNK];
    void (*comb)(float *, const float *const *, const float *, int, float, const float *, int64_t) =
        CK_PICK(comb_vec, comb_scalar);
    for (int64_t s = s0, m; s < e; s += m) {
        // chunks end at multiples of NOISE_CHUNK in noise positions, so only a block's first
        // chunk can start off the 64-grid (its head then takes the scalar normals)
        m = ck_min64(NOISE_CHUNK - (int64_t)((j->offset + (uint64_t)s) % NOISE_CHUNK), e - s);
        const float *in[CK_SAMPLER_MAX_INPUTS];
        for (int q = 0; q < j->k; q++) in[q] = j->in[q] + s;
        if (j->std != 0.0f) ck_random_normal_serial(z, m, j->seed, j->stream, j->offset + (uint64_t)s);
        const float *zp = j->std != 0.0f ? z : NULL;
        comb(j->y + s, in, j->c, j->k, j->std, zp, m);
    }
}

void ck_sampler_combine(float *y, const float *const *inputs, const float *coeffs, int ninputs,
                        float noise_std, uint64_t seed, uint64_t stream, uint64_t offset, int64_t n) {
    if (n <= 0 || ninputs < 1 || ninputs > CK_SAMPLER_MAX_INPUTS) return;
    comb_job j = {.y = y, .k = ninputs, .std = noise_std, .seed = seed, .stream = stream, .offset = offset, .n = n};
    for (int q = 0; q < ninputs; q++) { j.in[q] = inputs[q]; j.c[q] = coeffs[q]; }
    ck_parallel_for(comb_task, &j, ck_ceil_div(n, CK_BLOCK));
}

void ck_sampler_combine_ref(float *y, const float *const *inputs, const float *coeffs, int ninputs,
                            float noise_std, uint64_t seed, uint64_t stream, uint64_t offset, int64_t n) {
    float *z = noise_std != 0.0f ? malloc((size_t)(n > 0 ? n : 1) * sizeof(float)) : NULL;
    if (z) ck_random_normal(z, n, seed, stream, offset, 0.0f, 1.0f);
    for (int64_t i = 0; i < n; i++) {
        double acc = 0.0;
        for (int q = 0; q < ninputs; q++) acc += (double)coeffs[q] * inputs[q][i];
        if (z) acc += (double)noise_std * z[i];
        y[i] = (float)acc;
    }
    free(z);
}

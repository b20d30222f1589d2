// Fused sampler steps: one pass over memory computing a linear combination of the state,
// denoiser outputs and history, plus fresh Philox noise.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CK_SAMPLER_MAX_INPUTS 8

// y[i] = sum_k coeffs[k] * inputs[k][i] + noise_std * z_i, for i < n (k < ninputs <= 8).
// z_i is the standard normal at position offset + i of the Philox stream (seed, stream) (the
// same numbers ck_random_normal gives); noise_std = 0 draws nothing. y may alias any input.
void ck_sampler_combine(float *y, const float *const *inputs, const float *coeffs, int ninputs,
                        float noise_std, uint64_t seed, uint64_t stream, uint64_t offset, int64_t n);

// Naive reference (single thread; noise through ck_random_normal).
void ck_sampler_combine_ref(float *y, const float *const *inputs, const float *coeffs, int ninputs,
                            float noise_std, uint64_t seed, uint64_t stream, uint64_t offset, int64_t n);

#ifdef __cplusplus
}
#endif

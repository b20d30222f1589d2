// Layer normalization (Ba, Kiros & Hinton 2016) over the last dim.
// x, y (N, D); gamma, beta (D) or NULL (no affine); mean, rstd (N) cached for backward.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void ck_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int64_t N, int64_t D, float eps);

// Accumulates dx, dgamma, dbeta (each may be NULL).
void ck_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                           const float *x, const float *gamma, const float *mean,
                           const float *rstd, int64_t N, int64_t D);

#ifdef __cplusplus
}
#endif

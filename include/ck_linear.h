// Fused linear layer: y = act(x W^T + b).
// x (B, IN), W (OUT, IN) (PyTorch layout), b (OUT) or NULL, z and y (B, OUT).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// z = x W^T + b and y = act(z), one pass per stripe of rows (the activation runs while the
// stripe is in cache). z is kept for the backward pass; it may be NULL, or equal to y, when
// act is CK_ACT_NONE.
void ck_linear_forward(float *y, float *z, const float *x, const float *w, const float *b,
                       int64_t B, int64_t IN, int64_t OUT, int act);

// dz = dy * act'(z) (written into the workspace dz, (B, OUT); unused and may be NULL when
// act is CK_ACT_NONE), then dx += dz W, dw += dz^T x, db += sum over rows of dz.
// dx, dw, db may each be NULL (not wanted). y = act(z) may be given (tanh, sigmoid) or NULL.
void ck_linear_backward(float *dx, float *dw, float *db, float *dz, const float *dy,
                        const float *z, const float *y, const float *x, const float *w,
                        int64_t B, int64_t IN, int64_t OUT, int act);

#ifdef __cplusplus
}
#endif

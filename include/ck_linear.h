// Fused linear layer: y = act(x W^T + b).
// x (B, IN), W (OUT, IN) (PyTorch layout), b (OUT) or NULL, z and y (B, OUT).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// z = x W^T + b and y = act(z), per stripe of rows: the GEMM, then one pass adding the bias
// and applying the activation while the stripe is in cache. z is kept for the backward
// pass; it may be NULL (or equal to y) when the caller does not need it.
void ck_linear_forward(float *y, float *z, const float *x, const float *w, const float *b,
                       int64_t B, int64_t IN, int64_t OUT, int act);

// Flags for ck_linear_backward: write the gradient instead of adding to it (for a buffer
// that holds nothing yet, which saves zeroing it).
enum { CK_LINEAR_SET_DX = 1, CK_LINEAR_SET_DW = 2, CK_LINEAR_SET_DB = 4 };

// Workspace floats ck_linear_backward needs.
int64_t ck_linear_backward_workspace_floats(int64_t B, int64_t IN, int64_t OUT, int act);

// dz = dy * act'(z) (in the workspace), then dx += dz W, dw += dz^T x, db += sum over rows
// of dz, each "=" instead of "+=" when its CK_LINEAR_SET_* flag is set. dx, dw, db may each
// be NULL (not wanted). y = act(z) may be given (tanh, sigmoid reuse it) or NULL.
void ck_linear_backward(float *dx, float *dw, float *db, float *workspace, int flags,
                        const float *dy, const float *z, const float *y, const float *x,
                        const float *w, int64_t B, int64_t IN, int64_t OUT, int act);

#ifdef __cplusplus
}
#endif

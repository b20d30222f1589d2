// Activations, forward and backward. x is the pre-activation, y = f(x); both are flat
// arrays of n floats. Backward accumulates: dx += dy * f'(x).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CK_ACT_NONE = 0,     // identity
    CK_ACT_RELU = 1,     // max(x, 0)
    CK_ACT_SILU = 2,     // x * sigmoid(x)
    CK_ACT_GELU = 3,     // x * Phi(x), exact (erf) form
    CK_ACT_TANH = 4,
    CK_ACT_SIGMOID = 5,  // 1 / (1 + e^-x)
    CK_ACT_SOFTPLUS = 6, // log(1 + e^x)
} ck_act;

// y = f(x); y may alias x.
void ck_act_forward(float *y, const float *x, int64_t n, int act);
// dx += dy * f'(x). y = f(x) may be passed to save recomputation (tanh, sigmoid), or NULL.
void ck_act_backward(float *dx, const float *dy, const float *x, const float *y, int64_t n, int act);

// Naive single-threaded scalar references (libm), the oracles for the tests.
void ck_act_forward_ref(float *y, const float *x, int64_t n, int act);
void ck_act_backward_ref(float *dx, const float *dy, const float *x, int64_t n, int act);

#ifdef __cplusplus
}
#endif

// Optimizer steps, EMA and gradient scaling, each one fused pass over a parameter tensor.
// p parameters, g gradients, m/v/buf optimizer state, all n floats.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), PyTorch's formulation.
// With g' = grad_scale * g: decoupled (AdamW) p *= 1 - lr*wd; coupled (Adam) g' += wd * p;
// m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2; p -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps),
// t = step >= 1.
void ck_adam_step(float *p, float *m, float *v, const float *g, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int decoupled, int64_t step,
                  float grad_scale);

// SGD with momentum, PyTorch's formulation: g' = grad_scale*g + wd*p;
// buf = g' on the first step, else momentum*buf + (1-dampening) g'; d = nesterov ? g' +
// momentum*buf : buf (d = g' without momentum, buf unused and may be NULL); p -= lr * d.
void ck_sgd_step(float *p, float *buf, const float *g, int64_t n, float lr, float momentum,
                 float dampening, float weight_decay, int nesterov, int first_step, float grad_scale);

// ema = decay * ema + (1 - decay) * p.
void ck_ema_update(float *ema, const float *p, int64_t n, float decay);

#ifdef __cplusplus
}
#endif

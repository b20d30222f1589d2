// Fused optimizer passes; each body compiles to a scalar and a vector path.
#include "ck_optim.h"
#include "ck_internal.h"
#include <math.h>

typedef struct {
    float *p, *m, *v;
    const float *g;
    int64_t n;
    float lr, b1, b2, eps, wd, scale, step_size, inv_sqrt_bc2, momentum, dampening, decay;
    int decoupled, nesterov, first;
} opt_job;

CK_BODY void adam_body(const opt_job *j, int64_t s, int64_t e) {
    float *p = j->p, *m = j->m, *v = j->v;
    const float *g = j->g;
    float keep = j->decoupled ? 1.0f - j->lr * j->wd : 1.0f, l2 = j->decoupled ? 0.0f : j->wd;
    for (int64_t i = s; i < e; i++) {
        float gi = j->scale * g[i] + l2 * p[i];
        float mi = j->b1 * m[i] + (1.0f - j->b1) * gi;
        float vi = j->b2 * v[i] + (1.0f - j->b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = keep * p[i] - j->step_size * mi / (CK_SQRTF(vi) * j->inv_sqrt_bc2 + j->eps);
    }
}
static void adam_scalar(const opt_job *j, int64_t s, int64_t e) { adam_body(j, s, e); }
CK_VEC static void adam_vec(const opt_job *j, int64_t s, int64_t e) { adam_body(j, s, e); }

static void adam_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const opt_job *j = ctx;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    if (ck_cpu_simd_enabled()) adam_vec(j, s, e); else adam_scalar(j, s, e);
}

void ck_adam_step(float *p, float *m, float *v, const float *g, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int decoupled, int64_t step,
                  float grad_scale) {
    double bc1 = 1.0 - pow((double)beta1, (double)step), bc2 = 1.0 - pow((double)beta2, (double)step);
    opt_job j = {.p = p, .m = m, .v = v, .g = g, .n = n, .lr = lr, .b1 = beta1, .b2 = beta2,
                 .eps = eps, .wd = weight_decay, .scale = grad_scale, .decoupled = decoupled,
                 .step_size = (float)(lr / bc1), .inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2))};
    ck_parallel_for(adam_task, &j, ck_ceil_div(n, CK_BLOCK));
}

CK_BODY void sgd_body(const opt_job *j, int64_t s, int64_t e) {
    float *p = j->p, *buf = j->m;
    const float *g = j->g;
    for (int64_t i = s; i < e; i++) {
        float gi = j->scale * g[i] + j->wd * p[i];
        float d = gi;
        if (j->momentum != 0.0f) {
            float b = j->first ? gi : j->momentum * buf[i] + (1.0f - j->dampening) * gi;
            buf[i] = b;
            d = j->nesterov ? gi + j->momentum * b : b;
        }
        p[i] -= j->lr * d;
    }
}
static void sgd_scalar(const opt_job *j, int64_t s, int64_t e) { sgd_body(j, s, e); }
CK_VEC static void sgd_vec(const opt_job *j, int64_t s, int64_t e) { sgd_body(j, s, e); }

static void sgd_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const opt_job *j = ctx;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    if (ck_cpu_simd_enabled()) sgd_vec(j, s, e); else sgd_scalar(j, s, e);
}

void ck_sgd_step(float *p, float *buf, const float *g, int64_t n, float lr, float momentum,
                 float dampening, float weight_decay, int nesterov, int first_step, float grad_scale) {
    opt_job j = {.p = p, .m = buf, .g = g, .n = n, .lr = lr, .momentum = momentum,
                 .dampening = dampening, .wd = weight_decay, .nesterov = nesterov,
                 .first = first_step, .scale = grad_scale};
    ck_parallel_for(sgd_task, &j, ck_ceil_div(n, CK_BLOCK));
}

CK_BODY void ema_body(float *ema, const float *p, int64_t s, int64_t e, float decay) {
    float w = 1.0f - decay;
    for (int64_t i = s; i < e; i++) ema[i] = decay * ema[i] + w * p[i];
}
static void ema_scalar(float *a, const float *p, int64_t s, int64_t e, float d) { ema_body(a, p, s, e, d); }
CK_VEC static void ema_vec(float *a, const float *p, int64_t s, int64_t e, float d) { ema_body(a, p, s, e, d); }

static void ema_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const opt_job *j = ctx;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    if (ck_cpu_simd_enabled()) ema_vec(j->m, j->p, s, e, j->decay); else ema_scalar(j->m, j->p, s, e, j->decay);
}

void ck_ema_update(float *ema, const float *p, int64_t n, float decay) {
    opt_job j = {.m = ema, .p = (float *)p, .n = n, .decay = decay};
    ck_parallel_for(ema_task, &j, ck_ceil_div(n, CK_BLOCK));
}

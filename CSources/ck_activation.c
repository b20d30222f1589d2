// Activations: scalar reference, then the fast paths (vector code for ReLU, SiLU and sigmoid:
// AVX2+FMA on x86-64, NEON on aarch64; the others run their scalar formula, cut into blocks
// across the pool).
#include "ck_activation.h"
#include "ck_internal.h"
#include "ck_simd.h"
#include <math.h>

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

static inline float act_f(float x, int act) {
    switch (act) {
    case CK_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case CK_ACT_SILU: return x / (1.0f + expf(-x));
    case CK_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case CK_ACT_TANH: return tanhf(x);
    case CK_ACT_SIGMOID: return sigmoidf_(x);
    case CK_ACT_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    default: return x;
    }
}

// f'(x); y = f(x) when known (only tanh and sigmoid use it).
static inline float act_df(float x, float y, int have_y, int act) {
    switch (act) {
    case CK_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case CK_ACT_SILU: { float s = sigmoidf_(x); return s * (1.0f + x * (1.0f - s)); }
    case CK_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
        return cdf + x * pdf;
    }
    case CK_ACT_TANH: { float t = have_y ? y : tanhf(x); return 1.0f - t * t; }
    case CK_ACT_SIGMOID: { float s = have_y ? y : sigmoidf_(x); return s * (1.0f - s); }
    case CK_ACT_SOFTPLUS: return sigmoidf_(x);
    default: return 1.0f;
    }
}

void ck_act_forward_ref(float *y, const float *x, int64_t n, int act) {
    for (int64_t i = 0; i < n; i++) y[i] = act_f(x[i], act);
}

void ck_act_backward_ref(float *dx, const float *dy, const float *x, int64_t n, int act) {
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * act_df(x[i], 0.0f, 0, act);
}

// ---- vector paths (AVX2+FMA on x86-64, NEON on aarch64) ----

#if CK_X86 || CK_NEON
CK_VEC static int64_t fwd_vec(float *y, const float *x, int64_t n, int act) {
    int64_t i = 0;
    if (act == CK_ACT_RELU) {
        for (; i + 8 <= n; i += 8) ck_store8(y + i, ck_max8(ck_load8(x + i), 0.0f));
    } else if (act == CK_ACT_SILU) {
        for (; i + 8 <= n; i += 8) {
            ck_v8f v = ck_load8(x + i);
            ck_store8(y + i, v * ck_sigmoid8(v));
        }
    } else if (act == CK_ACT_SIGMOID) {
        for (; i + 8 <= n; i += 8) ck_store8(y + i, ck_sigmoid8(ck_load8(x + i)));
    }
    return i;   // elements done; the caller finishes the rest with the scalar formula
}

// dx = (acc ? dx : 0) + dy * f'(x).
CK_VEC static inline ck_v8f bwd_out(const float *dx, ck_v8f g, ck_v8f d, int acc) {
    return acc ? __builtin_elementwise_fma(g, d, ck_load8(dx)) : g * d;
}

CK_VEC static int64_t bwd_vec(float *dx, const float *dy, const float *x, const float *y,
                              int64_t n, int act, int acc) {
    int64_t i = 0;
    if (act == CK_ACT_RELU) {
        for (; i + 8 <= n; i += 8) {
            ck_v8f g = ck_load8(x + i) > 0.0f ? ck_load8(dy + i) : 0.0f;
            if (acc) g = ck_load8(dx + i) + g;
            ck_store8(dx + i, g);
        }
    } else if (act == CK_ACT_SILU) {
        for (; i + 8 <= n; i += 8) {
            ck_v8f v = ck_load8(x + i), s = ck_sigmoid8(v);
            ck_v8f d = s * __builtin_elementwise_fma(v, 1.0f - s, (ck_v8f)1.0f);
            ck_store8(dx + i, bwd_out(dx + i, ck_load8(dy + i), d, acc));
        }
    } else if (act == CK_ACT_SIGMOID) {
        for (; i + 8 <= n; i += 8) {
            ck_v8f s = y ? ck_load8(y + i) : ck_sigmoid8(ck_load8(x + i));
            ck_v8f d = s * (1.0f - s);
            ck_store8(dx + i, bwd_out(dx + i, ck_load8(dy + i), d, acc));
        }
    }
    return i;
}
#endif   // CK_X86 || CK_NEON

void ck_act_forward_serial(float *y, const float *x, int64_t n, int act) {
    int64_t i = 0;
#if CK_X86 || CK_NEON
    if (ck_cpu_simd_enabled()) i = fwd_vec(y, x, n, act);
#endif
    for (; i < n; i++) y[i] = act_f(x[i], act);
}

void ck_act_backward_serial(float *dx, const float *dy, const float *x, const float *y, int64_t n,
                            int act, int accumulate) {
    int64_t i = 0;
#if CK_X86 || CK_NEON
    if (ck_cpu_simd_enabled()) i = bwd_vec(dx, dy, x, y, n, act, accumulate);
#endif
    for (; i < n; i++) {
        float d = dy[i] * act_df(x[i], y ? y[i] : 0.0f, y != NULL, act);
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

typedef struct { float *out; const float *a, *b, *c; int64_t n; int act; } act_job;

static void fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    act_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    ck_act_forward_serial(j->out + s, j->a + s, e - s, j->act);
}

static void bwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    act_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    ck_act_backward_serial(j->out + s, j->a + s, j->b + s, j->c ? j->c + s : NULL, e - s, j->act, 1);
}

void ck_act_forward(float *y, const float *x, int64_t n, int act) {
    act_job j = {y, x, NULL, NULL, n, act};
    ck_parallel_for(fwd_task, &j, ck_ceil_div(n, CK_BLOCK));
}

void ck_act_backward(float *dx, const float *dy, const float *x, const float *y, int64_t n, int act) {
    act_job j = {dx, dy, x, y, n, act};
    ck_parallel_for(bwd_task, &j, ck_ceil_div(n, CK_BLOCK));
}

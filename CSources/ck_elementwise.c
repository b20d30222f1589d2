// Elementwise kernels. The broadcast binary kernels walk the output row by row (the last
// dim); each row's inner loop is specialised for contiguous / broadcast operands and is
// compiled twice from one body (scalar and vector), so both paths compute the same formula.
#include "ck_elementwise.h"
#include "ck_internal.h"
#include <math.h>
#include <string.h>

// ---- per-element formulas ----

CK_BODY float bin_f(float a, float b, int op) {
    switch (op) {
    case CK_BIN_ADD: return a + b;
    case CK_BIN_SUB: return a - b;
    case CK_BIN_MUL: return a * b;
    case CK_BIN_DIV: return a / b;
    case CK_BIN_MAX: return a >= b ? a : b;
    default: return a <= b ? a : b;
    }
}

CK_BODY float bin_da(float a, float b, int op) {
    switch (op) {
    case CK_BIN_ADD: case CK_BIN_SUB: return 1.0f;
    case CK_BIN_MUL: return b;
    case CK_BIN_DIV: return 1.0f / b;
    case CK_BIN_MAX: return a >= b ? 1.0f : 0.0f;
    default: return a <= b ? 1.0f : 0.0f;
    }
}

CK_BODY float bin_db(float a, float b, int op) {
    switch (op) {
    case CK_BIN_ADD: return 1.0f;
    case CK_BIN_SUB: return -1.0f;
    case CK_BIN_MUL: return a;
    case CK_BIN_DIV: return -a / (b * b);
    case CK_BIN_MAX: return a >= b ? 0.0f : 1.0f;
    default: return a <= b ? 0.0f : 1.0f;
    }
}

// ---- one output row (n elements), operand strides as, bs ----

// The op switch sits outside the loops so each loop body is branch-free and vectorizes.
#define ROW_LOOPS(EXPR)                                                                      \
    if (as == 1 && bs == 1) { for (int64_t i = 0; i < n; i++) { float av = a[i], bv = b[i]; y[i] = EXPR; } } \
    else if (as == 1 && bs == 0) { float bv = b[0]; for (int64_t i = 0; i < n; i++) { float av = a[i]; y[i] = EXPR; } } \
    else if (as == 0 && bs == 1) { float av = a[0]; for (int64_t i = 0; i < n; i++) { float bv = b[i]; y[i] = EXPR; } } \
    else { for (int64_t i = 0; i < n; i++) { float av = a[i * as], bv = b[i * bs]; y[i] = EXPR; } }

CK_BODY void fwd_row(float *y, const float *a, int64_t as, const float *b, int64_t bs, int64_t n, int op) {
    switch (op) {
    case CK_BIN_ADD: ROW_LOOPS(av + bv) break;
    case CK_BIN_SUB: ROW_LOOPS(av - bv) break;
    case CK_BIN_MUL: ROW_LOOPS(av * bv) break;
    case CK_BIN_DIV: ROW_LOOPS(av / bv) break;
    case CK_BIN_MAX: ROW_LOOPS(av >= bv ? av : bv) break;
    default: ROW_LOOPS(av <= bv ? av : bv) break;
    }
}

// g (=|+=) dy * d(op)/d(operand), operand picked by `which_b`.
CK_BODY void bwd_row(float *g, int acc, int which_b, const float *dy, const float *a, int64_t as,
                     const float *b, int64_t bs, int64_t n, int op) {
    if (acc) {
        if (which_b) for (int64_t i = 0; i < n; i++) g[i] += dy[i] * bin_db(a[i * as], b[i * bs], op);
        else for (int64_t i = 0; i < n; i++) g[i] += dy[i] * bin_da(a[i * as], b[i * bs], op);
    } else {
        if (which_b) for (int64_t i = 0; i < n; i++) g[i] = dy[i] * bin_db(a[i * as], b[i * bs], op);
        else for (int64_t i = 0; i < n; i++) g[i] = dy[i] * bin_da(a[i * as], b[i * bs], op);
    }
}

static void fwd_row_scalar(float *y, const float *a, int64_t as, const float *b, int64_t bs, int64_t n, int op) {
    fwd_row(y, a, as, b, bs, n, op);
}
CK_VEC static void fwd_row_vec(float *y, const float *a, int64_t as, const float *b, int64_t bs, int64_t n, int op) {
    fwd_row(y, a, as, b, bs, n, op);
}
static void bwd_row_scalar(float *g, int acc, int wb, const float *dy, const float *a, int64_t as,
                           const float *b, int64_t bs, int64_t n, int op) {
    bwd_row(g, acc, wb, dy, a, as, b, bs, n, op);
}
CK_VEC static void bwd_row_vec(float *g, int acc, int wb, const float *dy, const float *a, int64_t as,
                                 const float *b, int64_t bs, int64_t n, int op) {
    bwd_row(g, acc, wb, dy, a, as, b, bs, n, op);
}

// ---- walking the outer dims ----

typedef struct {
    float *y, *ga, *gb;
    const float *a, *b, *dy;
    int64_t shape[CK_MAX_DIMS], as[CK_MAX_DIMS], bs[CK_MAX_DIMS];
    int ndim, op, acc;
    int64_t rows, inner, rows_per_task;
} bin_job;

// Offsets of row r (an index over all dims but the last) into a and b.
static void row_offsets(const bin_job *j, int64_t r, int64_t *ao, int64_t *bo) {
    int64_t oa = 0, ob = 0;
    for (int d = j->ndim - 2; d >= 0; d--) {
        int64_t i = r % j->shape[d];
        r /= j->shape[d];
        oa += i * j->as[d];
        ob += i * j->bs[d];
    }
    *ao = oa;
    *bo = ob;
}

// Task t covers rows [r0, r1) when rows are short, or one CK_BLOCK segment of a long row.
typedef struct { int64_t r0, r1, c0, c1; } bin_span;

static bin_span bin_task_span(const bin_job *j, int64_t t) {
    if (j->inner > CK_BLOCK) {
        int64_t segs = ck_ceil_div(j->inner, CK_BLOCK), r = t / segs, c0 = (t % segs) * CK_BLOCK;
        return (bin_span){r, r + 1, c0, ck_min64(j->inner, c0 + CK_BLOCK)};
    }
    int64_t r0 = t * j->rows_per_task;
    return (bin_span){r0, ck_min64(r0 + j->rows_per_task, j->rows), 0, j->inner};
}

static int64_t bin_tasks(const bin_job *j) {
    return j->inner > CK_BLOCK ? j->rows * ck_ceil_div(j->inner, CK_BLOCK) : ck_ceil_div(j->rows, j->rows_per_task);
}

static void bin_fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const bin_job *j = p;
    bin_span sp = bin_task_span(j, t);
    int vec = ck_cpu_simd_enabled();
    int64_t ia = j->as[j->ndim - 1], ib = j->bs[j->ndim - 1], n = sp.c1 - sp.c0;
    for (int64_t r = sp.r0; r < sp.r1; r++) {
        int64_t ao, bo;
        row_offsets(j, r, &ao, &bo);
        ao += sp.c0 * ia;
        bo += sp.c0 * ib;
        float *y = j->y + r * j->inner + sp.c0;
        if (vec) fwd_row_vec(y, j->a + ao, ia, j->b + bo, ib, n, j->op);
        else fwd_row_scalar(y, j->a + ao, ia, j->b + bo, ib, n, j->op);
    }
}

static void bin_bwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const bin_job *j = p;
    bin_span sp = bin_task_span(j, t);
    int vec = ck_cpu_simd_enabled();
    int64_t ia = j->as[j->ndim - 1], ib = j->bs[j->ndim - 1], n = sp.c1 - sp.c0;
    for (int64_t r = sp.r0; r < sp.r1; r++) {
        int64_t ao, bo;
        row_offsets(j, r, &ao, &bo);
        ao += sp.c0 * ia;
        bo += sp.c0 * ib;
        int64_t o = r * j->inner + sp.c0;
        for (int wb = 0; wb < 2; wb++) {
            float *g = wb ? j->gb : j->ga;
            if (!g) continue;
            if (vec) bwd_row_vec(g + o, j->acc, wb, j->dy + o, j->a + ao, ia, j->b + bo, ib, n, j->op);
            else bwd_row_scalar(g + o, j->acc, wb, j->dy + o, j->a + ao, ia, j->b + bo, ib, n, j->op);
        }
    }
}

static void bin_setup(bin_job *j, const int64_t *astride, const int64_t *bstride,
                      const int64_t *shape, int ndim) {
    j->ndim = ndim;
    j->rows = 1;
    for (int d = 0; d < ndim; d++) {
        j->shape[d] = shape[d];
        j->as[d] = astride[d];
        j->bs[d] = bstride[d];
        if (d < ndim - 1) j->rows *= shape[d];
    }
    j->inner = shape[ndim - 1];
    j->rows_per_task = ck_max64(1, CK_BLOCK / ck_max64(1, j->inner));
}

void ck_binary_forward(float *y, const float *a, const int64_t *astride, const float *b,
                       const int64_t *bstride, const int64_t *shape, int ndim, int op) {
    bin_job j = {.y = y, .a = a, .b = b, .op = op};
    bin_setup(&j, astride, bstride, shape, ndim);
    if (j.rows * j.inner == 0) return;
    ck_parallel_for(bin_fwd_task, &j, bin_tasks(&j));
}

void ck_binary_backward(float *ga, float *gb, int accumulate, const float *dy, const float *a,
                        const int64_t *astride, const float *b, const int64_t *bstride,
                        const int64_t *shape, int ndim, int op) {
    bin_job j = {.ga = ga, .gb = gb, .a = a, .b = b, .dy = dy, .op = op, .acc = accumulate};
    bin_setup(&j, astride, bstride, shape, ndim);
    if (j.rows * j.inner == 0) return;
    ck_parallel_for(bin_bwd_task, &j, bin_tasks(&j));
}

void ck_binary_forward_ref(float *y, const float *a, const int64_t *astride, const float *b,
                           const int64_t *bstride, const int64_t *shape, int ndim, int op) {
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) total *= shape[d];
    for (int64_t k = 0; k < total; k++) {
        int64_t r = k, ao = 0, bo = 0;
        for (int d = ndim - 1; d >= 0; d--) {
            int64_t i = r % shape[d];
            r /= shape[d];
            ao += i * astride[d];
            bo += i * bstride[d];
        }
        y[k] = bin_f(a[ao], b[bo], op);
    }
}

// ---- unary math ----

CK_BODY float un_f(float x, int op) {
    switch (op) {
    case CK_UN_NEG: return -x;
    case CK_UN_EXP: return expf(x);
    case CK_UN_LOG: return logf(x);
    case CK_UN_SQRT: return sqrtf(x);
    case CK_UN_SQUARE: return x * x;
    case CK_UN_ABS: return fabsf(x);
    case CK_UN_SIN: return sinf(x);
    case CK_UN_COS: return cosf(x);
    default: return 1.0f / x;
    }
}

CK_BODY float un_df(float x, float y, int op) {
    switch (op) {
    case CK_UN_NEG: return -1.0f;
    case CK_UN_EXP: return y;
    case CK_UN_LOG: return 1.0f / x;
    case CK_UN_SQRT: return 0.5f / y;
    case CK_UN_SQUARE: return 2.0f * x;
    case CK_UN_ABS: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    case CK_UN_SIN: return cosf(x);
    case CK_UN_COS: return -sinf(x);
    default: return -y * y;
    }
}

typedef struct { float *y; const float *x, *dy, *fx; int64_t n; int op; float alpha, beta; } un_job;

static void un_fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const un_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    for (int64_t i = s; i < e; i++) j->y[i] = un_f(j->x[i], j->op);
}

static void un_bwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const un_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    for (int64_t i = s; i < e; i++) {
        float fx = j->fx ? j->fx[i] : un_f(j->x[i], j->op);
        j->y[i] += j->dy[i] * un_df(j->x[i], fx, j->op);
    }
}

void ck_unary_forward(float *y, const float *x, int64_t n, int op) {
    un_job j = {.y = y, .x = x, .n = n, .op = op};
    ck_parallel_for(un_fwd_task, &j, ck_ceil_div(n, CK_BLOCK));
}

void ck_unary_backward(float *dx, const float *dy, const float *x, const float *y, int64_t n, int op) {
    un_job j = {.y = dx, .x = x, .dy = dy, .fx = y, .n = n, .op = op};
    ck_parallel_for(un_bwd_task, &j, ck_ceil_div(n, CK_BLOCK));
}

// ---- affine, axpy, fill ----

CK_BODY void affine_body(float *y, const float *x, int64_t n, float alpha, float beta) {
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta;
}
CK_BODY void axpy_body(float *y, const float *x, int64_t n, float alpha) {
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}
static void affine_scalar(float *y, const float *x, int64_t n, float a, float b) { affine_body(y, x, n, a, b); }
CK_VEC static void affine_vec(float *y, const float *x, int64_t n, float a, float b) { affine_body(y, x, n, a, b); }
static void axpy_scalar(float *y, const float *x, int64_t n, float a) { axpy_body(y, x, n, a); }
CK_VEC static void axpy_vec(float *y, const float *x, int64_t n, float a) { axpy_body(y, x, n, a); }

static void affine_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const un_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    if (ck_cpu_simd_enabled()) affine_vec(j->y + s, j->x + s, e - s, j->alpha, j->beta);
    else affine_scalar(j->y + s, j->x + s, e - s, j->alpha, j->beta);
}

static void axpy_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const un_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    if (ck_cpu_simd_enabled()) axpy_vec(j->y + s, j->x + s, e - s, j->alpha);
    else axpy_scalar(j->y + s, j->x + s, e - s, j->alpha);
}

static void fill_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const un_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    if (j->beta == 0.0f && !signbit(j->beta)) { memset(j->y + s, 0, (size_t)(e - s) * sizeof(float)); return; }
    for (int64_t i = s; i < e; i++) j->y[i] = j->beta;
}

void ck_affine(float *y, const float *x, int64_t n, float alpha, float beta) {
    un_job j = {.y = y, .x = x, .n = n, .alpha = alpha, .beta = beta};
    ck_parallel_for(affine_task, &j, ck_ceil_div(n, CK_BLOCK));
}

void ck_axpy(float *y, const float *x, int64_t n, float alpha) {
    un_job j = {.y = y, .x = x, .n = n, .alpha = alpha};
    ck_parallel_for(axpy_task, &j, ck_ceil_div(n, CK_BLOCK));
}

void ck_fill(float *y, int64_t n, float c) {
    un_job j = {.y = y, .n = n, .beta = c};
    ck_parallel_for(fill_task, &j, ck_ceil_div(n, CK_BLOCK));
}

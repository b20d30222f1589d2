// Elementwise kernels: binary ops with broadcasting, unary math, and affine/axpy.
//
// Broadcast layout: the output is a contiguous array over an index space `shape` of `ndim`
// dims (1 <= ndim <= CK_MAX_DIMS). An input is read at sum(index[d] * stride[d]); a stride
// of 0 repeats the input along that dim (broadcasting). Strides are in elements.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CK_MAX_DIMS 8

typedef enum {
    CK_BIN_ADD = 0,
    CK_BIN_SUB = 1,
    CK_BIN_MUL = 2,
    CK_BIN_DIV = 3,
    CK_BIN_MAX = 4,   // gradient goes to a on ties
    CK_BIN_MIN = 5,   // gradient goes to a on ties
} ck_binop;

typedef enum {
    CK_UN_NEG = 0,
    CK_UN_EXP = 1,
    CK_UN_LOG = 2,
    CK_UN_SQRT = 3,
    CK_UN_SQUARE = 4,
    CK_UN_ABS = 5,     // gradient sign(x), 0 at 0
    CK_UN_SIN = 6,
    CK_UN_COS = 7,
    CK_UN_RECIP = 8,   // 1 / x
} ck_unop;

// y = a op b, broadcast as described above.
void ck_binary_forward(float *y, const float *a, const int64_t *astride, const float *b,
                       const int64_t *bstride, const int64_t *shape, int ndim, int op);

// Gradients of y = a op b in the output layout: ga (=|+=) dy * d(op)/da and gb likewise
// (either may be NULL; `accumulate` picks += over =). Summing ga over the broadcast dims is
// the caller's job (ck_reduce_sum).
void ck_binary_backward(float *ga, float *gb, int accumulate, const float *dy, const float *a,
                        const int64_t *astride, const float *b, const int64_t *bstride,
                        const int64_t *shape, int ndim, int op);

// y = f(x) over n floats (y may alias x), and dx += dy * f'(x). The backward's y = f(x) (used
// by exp, sqrt, recip) may be given, or NULL to recompute it.
void ck_unary_forward(float *y, const float *x, int64_t n, int op);
void ck_unary_backward(float *dx, const float *dy, const float *x, const float *y, int64_t n, int op);

// y = alpha * x + beta (y may alias x).
void ck_affine(float *y, const float *x, int64_t n, float alpha, float beta);
// y += alpha * x.
void ck_axpy(float *y, const float *x, int64_t n, float alpha);
// y = c.
void ck_fill(float *y, int64_t n, float c);

// Single-threaded scalar references for the broadcast binary kernels.
void ck_binary_forward_ref(float *y, const float *a, const int64_t *astride, const float *b,
                           const int64_t *bstride, const int64_t *shape, int ndim, int op);

#ifdef __cplusplus
}
#endif

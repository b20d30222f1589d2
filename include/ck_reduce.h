// Reductions over one axis. A tensor is viewed as [outer, r, inner] (r is the reduced axis)
// and reduces to [outer, inner]. Sums use fixed-size blocks and fixed lane orders, so the
// result does not depend on the thread count.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// y (=|+=) alpha * sum over r of x.
void ck_reduce_sum(float *y, const float *x, int64_t outer, int64_t r, int64_t inner, float alpha,
                   int accumulate);

// y = max over r of x.
void ck_reduce_max(float *y, const float *x, int64_t outer, int64_t r, int64_t inner);

// y = log sum exp over r (stable: shifted by the max); backward dx += dy * exp(x - y).
void ck_logsumexp_forward(float *y, const float *x, int64_t outer, int64_t r, int64_t inner);
void ck_logsumexp_backward(float *dx, const float *dy, const float *x, const float *y,
                           int64_t outer, int64_t r, int64_t inner);

// Softmax over r; backward dx += y * (dy - sum_r dy * y).
void ck_softmax_forward(float *y, const float *x, int64_t outer, int64_t r, int64_t inner);
void ck_softmax_backward(float *dx, const float *dy, const float *y, int64_t outer, int64_t r,
                         int64_t inner);

// Sum of squares in double (blocks of fixed size, summed in order): gradient norms.
double ck_sum_squares(const float *x, int64_t n);

// Naive references: sequential sums in double.
void ck_reduce_sum_ref(float *y, const float *x, int64_t outer, int64_t r, int64_t inner, float alpha);
void ck_softmax_forward_ref(float *y, const float *x, int64_t outer, int64_t r, int64_t inner);

#ifdef __cplusplus
}
#endif

// 2x resampling of NCHW images: nearest-neighbour upsampling and 2x2 average pooling.
// x (N, C, H, W) is the input of the forward in both cases; H, W are its sizes. Planes are cut
// into fixed blocks over the pool (each output element has one owner, so results do not
// depend on the thread count). Backward kernels accumulate (+=).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// upsample: x (N, C, H, W) -> y (N, C, 2H, 2W), y[n, c, 2i + a, 2j + b] = x[n, c, i, j].
void ck_upsample_nearest2x_forward(float *y, const float *x, int64_t N, int64_t C, int64_t H,
                                   int64_t W);
// dx (N, C, H, W) += sum over the 2x2 block of dy (N, C, 2H, 2W), added as
// (dy[2i, 2j] + dy[2i, 2j+1]) + (dy[2i+1, 2j] + dy[2i+1, 2j+1]).
void ck_upsample_nearest2x_backward(float *dx, const float *dy, int64_t N, int64_t C, int64_t H,
                                    int64_t W);

// avg-pool 2x2, stride 2: x (N, C, H, W) -> y (N, C, H/2, W/2) (floor: an odd last row or
// column is dropped, as PyTorch's avg_pool2d(2) does),
// y[i, j] = 0.25 * ((x[2i, 2j] + x[2i, 2j+1]) + (x[2i+1, 2j] + x[2i+1, 2j+1])).
void ck_avgpool2x_forward(float *y, const float *x, int64_t N, int64_t C, int64_t H, int64_t W);
// dx (N, C, H, W) += 0.25 * dy[i, j] on each element of block (i, j); a dropped odd last
// row/column receives nothing.
void ck_avgpool2x_backward(float *dx, const float *dy, int64_t N, int64_t C, int64_t H, int64_t W);

// Naive single-threaded references (double sums).
void ck_upsample_nearest2x_forward_ref(float *y, const float *x, int64_t N, int64_t C, int64_t H,
                                       int64_t W);
void ck_upsample_nearest2x_backward_ref(float *dx, const float *dy, int64_t N, int64_t C,
                                        int64_t H, int64_t W);
void ck_avgpool2x_forward_ref(float *y, const float *x, int64_t N, int64_t C, int64_t H, int64_t W);
void ck_avgpool2x_backward_ref(float *dx, const float *dy, int64_t N, int64_t C, int64_t H,
                               int64_t W);

#ifdef __cplusplus
}
#endif

// 2-D convolution (cross-correlation, as in PyTorch's Conv2d), square kernel, any stride and
// zero padding, no dilation, no groups.
//
//   x (N, Cin, H, W)   w (Cout, Cin, K, K)   b (Cout) or NULL   y (N, Cout, Ho, Wo)
//   Ho = (H + 2*pad - K) / stride + 1, Wo = (W + 2*pad - K) / stride + 1   (both >= 1)
//   y[n, co, oy, ox] = b[co] + sum_{ci, ky, kx} w[co, ci, ky, kx] * x[n, ci, oy*stride - pad + ky,
//                                                                        ox*stride - pad + kx]
//   (x read as 0 outside the image). All tensors float32, contiguous, NCHW.
//
// The work is cut into tiles (a band of output rows of one image, or a group of whole small
// images) whose sizes depend only on the problem sizes; each tile is im2col'ed into a scratch
// slot of the caller's workspace and multiplied by single-threaded OpenBLAS sgemm. 1x1
// stride-1 unpadded convolutions are plain GEMMs over pixels (no im2col); dx of a stride-1
// convolution is computed as a convolution of dy with the flipped kernel (no scatter). Tiles
// are grouped into at most 16 fixed chunks (one pool task each, so at most 16 threads work on
// one call); the weight/bias gradients are partial sums per chunk, added in chunk order. The
// workspace size and every result depend only on the sizes, never on the thread count
// (bit-identical for any thread count). Typical workspaces for a batch of 64 and 3x3 kernels
// are 4-16 MB forward and 5-26 MB backward; of the scratch slots, only those of the tasks
// running at a time are touched (an uninitialized allocation commits little more).
// On CPUs with AVX-512, 3x3 stride-1 padding-1 convolutions take a direct path for the
// forward and dx passes (no im2col, no GEMM; tiles of 8 channels x 48 pixels in registers):
// its forward workspace is only the repacked weights and a mask table (~Cout*Cin*36 bytes).
// Their weight gradient copies fixed chunks of images channels-last and accumulates
// outer products per tap in registers (no im2col, no GEMM). 3x3 stride-2 padding-1
// convolutions use the same passes on the input's four phase planes (even/odd rows x columns,
// copied into the workspace, about the input's size).
// Its scalar fallback (SIMD switched off) gives the same bits; the choice depends only on the
// shape and the CPU, never on the thread count.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Output side length: (in + 2*pad - k) / stride + 1, or 0 when the kernel does not fit.
int64_t ck_conv2d_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad);

// Workspace floats ck_conv2d_forward needs (0 for 1x1 stride-1 unpadded convolutions).
int64_t ck_conv2d_forward_workspace_floats(int64_t N, int64_t Cin, int64_t H, int64_t W,
                                           int64_t Cout, int64_t K, int64_t stride, int64_t pad);

// y = conv(x, w) + b. `workspace` holds ck_conv2d_forward_workspace_floats(...) floats.
void ck_conv2d_forward(float *y, const float *x, const float *w, const float *b, float *workspace,
                       int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                       int64_t stride, int64_t pad);

// Flags for ck_conv2d_backward: write the gradient instead of adding to it (for a buffer that
// holds nothing yet, which saves zeroing it).
enum { CK_CONV_SET_DX = 1, CK_CONV_SET_DW = 2, CK_CONV_SET_DB = 4 };

// Workspace floats ck_conv2d_backward needs (the most any combination of wanted gradients
// uses).
int64_t ck_conv2d_backward_workspace_floats(int64_t N, int64_t Cin, int64_t H, int64_t W,
                                            int64_t Cout, int64_t K, int64_t stride, int64_t pad);

// Given dy (N, Cout, Ho, Wo): dx (N, Cin, H, W) += d/dx, dw (Cout, Cin, K, K) += sum over the
// batch of d/dw, db (Cout) += sum over (n, oy, ox) of dy; each "=" instead of "+=" when its
// CK_CONV_SET_* flag is set. dx, dw, db may each be NULL (not wanted); x is only read when
// dw is wanted and w only when dx is. The batch sums are partial sums per fixed chunk of
// tiles, added in chunk order.
void ck_conv2d_backward(float *dx, float *dw, float *db, float *workspace, int flags,
                        const float *dy, const float *x, const float *w,
                        int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                        int64_t stride, int64_t pad);

// Naive references (single thread, double accumulation, no workspace): the test oracles.
// The backward accumulates (+=) into every non-NULL gradient.
void ck_conv2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                           int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                           int64_t stride, int64_t pad);
void ck_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int64_t N, int64_t Cin, int64_t H, int64_t W,
                            int64_t Cout, int64_t K, int64_t stride, int64_t pad);

#ifdef __cplusplus
}
#endif

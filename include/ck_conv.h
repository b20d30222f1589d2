// 2-D convolution (cross-correlation, as in PyTorch's Conv2d), square kernel, any stride and
// zero padding, no dilation, no groups.
//
//   x (N, Cin, H, W)   w (Cout, Cin, K, K)   b (Cout) or NULL   y (N, Cout, Ho, Wo)
//   Ho = (H + 2*pad - K) / stride + 1, Wo = (W + 2*pad - K) / stride + 1   (both >= 1)
//   y[n, co, oy, ox] = b[co] + sum_{ci, ky, kx} w[co, ci, ky, kx] * x[n, ci, oy*stride - pad + ky,
//                                                                        ox*stride - pad + kx]
//   (x read as 0 outside the image). All tensors float32, contiguous, NCHW.
//
// Two kinds of engine (CSources/ck_conv*.c):
//
// - Direct, for 3x3 padding-1 convolutions at stride 1 or 2 on CPUs with AVX-512: all three
//   passes run without im2col or GEMM. Stride 1, forward and dx: register tiles of 8 output
//   channels x 48 pixels, each tap reading the plane shifted and masked at the borders (dx is
//   the same pass over dy with the flipped, transposed kernel). Stride 2: output channels (32
//   per block) in the vector lanes for the forward pass, input channels (16 per block) for dx,
//   both reading their input where it lies. Weight and bias gradient, both strides: fixed
//   chunks of images copied channels-last (dy; x too, unless stride 2 with Cin >= 16, where x
//   is read in place), and outer products per tap summed in registers. The forward and dx
//   workspaces hold the repacked weights (and a small mask table); the backward workspace is
//   the larger of that and the weight gradient's (per-chunk partial sums and copies).
// - im2col + GEMM for every other shape, and every shape on other CPUs: tiles (a band of output
//   rows of one image, or a group of whole small images) are im2col'ed into a scratch slot of
//   the workspace and multiplied by single-threaded OpenBLAS sgemm. 1x1 stride-1 unpadded
//   convolutions are plain GEMMs over pixels (no im2col, no forward workspace). dx of a
//   stride-1 convolution with K > 1 and pad < K is the convolution of dy with the flipped,
//   transposed kernel, run through the forward path (no scatter); otherwise w^T dy is put back
//   by col2im, per band of input rows, so each dx element has one owner.
//
// The engine depends only on the shape and the CPU. Work is cut into tasks fixed by the sizes;
// the weight and bias gradients are partial sums per fixed chunk of images (or of tiles), added
// in chunk order. The workspace size and every result therefore depend only on the sizes and
// the CPU, never on the thread count (bit-identical for any thread count), and with the SIMD
// paths switched off (ck_cpu.h) the scalar code computes the same sums in the same order and
// gives the same bits. Of a workspace's scratch slots, only those of the tasks running at a time
// are touched, so an uninitialized allocation commits little more than that.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Output side length: (in + 2*pad - k) / stride + 1, or 0 when the kernel does not fit.
int64_t ck_conv2d_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad);

// Workspace floats ck_conv2d_forward needs (0 for 1x1 stride-1 unpadded convolutions, and when
// there is nothing to compute).
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
// uses: the dw/db pass runs first, then the dx pass reuses the whole workspace).
int64_t ck_conv2d_backward_workspace_floats(int64_t N, int64_t Cin, int64_t H, int64_t W,
                                            int64_t Cout, int64_t K, int64_t stride, int64_t pad);

// Given dy (N, Cout, Ho, Wo): dx (N, Cin, H, W) += d/dx, dw (Cout, Cin, K, K) += sum over the
// batch of d/dw, db (Cout) += sum over (n, oy, ox) of dy; each "=" instead of "+=" when its
// CK_CONV_SET_* flag is set. dx, dw, db may each be NULL (not wanted); x is only read when
// dw is wanted and w only when dx is. The batch sums are partial sums per fixed chunk of
// images (or of tiles), added in chunk order.
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

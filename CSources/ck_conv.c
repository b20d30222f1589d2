// 2-D convolution (ck_conv.h): the public entry points, the choice of engine, workspace sizes
// and the naive references. Each engine has its own file, forward and backward side by side:
//
//   ck_conv_gemm.c     im2col tiles and single-threaded OpenBLAS sgemm over the pool, for any
//                      kernel size, stride and padding: forward, dx, and dw/db.
//   ck_conv_direct.c   3x3 stride-1 pad-1 forward and dx as direct register-tiled passes
//                      (AVX-512, masked loads).
//   ck_conv_padded.c   the same passes for AVX2 and NEON, on a zero-padded copy of the input.
//   ck_conv_stride2.c  3x3 stride-2 pad-1 forward and dx, channels in the vector lanes.
//   ck_conv_wgrad.c    3x3 pad-1 dw and db at stride 1 and 2: outer products per tap over
//                      channels-last copies of fixed chunks of images.
//
// At SIMD level avx512 (ck_cpu.h), a 3x3 pad-1 convolution at stride 1 or 2 runs all three
// passes on the direct engines (no im2col, no GEMM); at avx2 and neon the stride-1 forward and
// dx passes with small planes or few output channels run on the padded engine; every other
// shape, and everything at level scalar, runs on the GEMM engine. The choice depends only on the
// shape and the level, never on the thread count or the test switch, so workspace sizes are
// fixed while the level is. Every engine cuts its work
// into tasks fixed by the sizes, and its scalar code (the SIMD paths switched off) adds in the
// same order as its SIMD code: results are bit-identical for any thread count, with or without
// SIMD.
#include "ck_conv_internal.h"
#include <string.h>

int64_t ck_conv2d_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad) {
    if (k < 1 || stride < 1 || pad < 0 || in + 2 * pad < k) return 0;
    return (in + 2 * pad - k) / stride + 1;
}

// Nothing to compute: no image, no channels, or a kernel that does not fit.
static int conv_empty(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K, int64_t s, int64_t pad) {
    return N <= 0 || Cin <= 0 || Cout <= 0 || ck_conv2d_out_size(H, K, s, pad) * ck_conv2d_out_size(W, K, s, pad) <= 0;
}

// The direct engines take 3x3 pad-1 convolutions at level avx512: all three passes at stride 1
// (direct_ok) and stride 2 (direct2_ok). At avx2 and neon the padded engine takes a stride-1
// forward or dx pass whose planes have at most 64 pixels or whose output has few channels
// (padded_ok: co is the pass's output channels), im2col + GEMM every other pass and all dw/db.
// That split is measured (AMD Zen 4 at level avx2, OpenBLAS's Haswell kernels, batch 64, best of
// 15, forward and dx): on 8x8 and 7x7 planes the padded engine (channels in the lanes) runs at
// 0.57-0.77 of the AVX2 peak and GEMM at 0.48-0.74; on 4x4 and 2x2 at 0.46-0.58 against
// 0.16-0.37; from 14x14 up GEMM leads (0.54-0.75 against the padded engine's 0.50-0.70); with one
// output channel the padded engine 0.07-0.10 against 0.04. Shape and level only
// (never the thread count or the test switch), so workspace sizes and results are fixed while
// the level is.
static int direct_ok(int64_t K, int64_t s, int64_t pad) { return K == 3 && s == 1 && pad == 1 && ck_cpu_has_avx512(); }

static int direct2_ok(int64_t K, int64_t s, int64_t pad) { return K == 3 && s == 2 && pad == 1 && ck_cpu_has_avx512(); }

static int padded_ok(int64_t K, int64_t s, int64_t pad, int64_t HW, int64_t co) {
    const int level = ck_simd_level();
    return K == 3 && s == 1 && pad == 1 && (level == CK_SIMD_AVX2 || level == CK_SIMD_NEON) && (HW <= 64 || co < DC_COB);
}

int64_t ck_conv2d_forward_workspace_floats(int64_t N, int64_t Cin, int64_t H, int64_t W,
                                           int64_t Cout, int64_t K, int64_t stride, int64_t pad) {
    if (conv_empty(N, Cin, H, W, Cout, K, stride, pad)) return 0;
    if (direct_ok(K, stride, pad)) return ck_conv_direct_floats(Cin, Cout, H * W);
    if (direct2_ok(K, stride, pad)) return ck_conv_s2_forward_floats(Cin, Cout);
    if (padded_ok(K, stride, pad, H * W, Cout)) return ck_conv_padded_floats(N, Cin, Cout, H, W);
    return ck_conv_gemm_forward_floats(N, Cin, H, W, Cout, K, stride, pad);
}

// The dw/db pass runs before the dx pass, which may reuse the whole workspace.
int64_t ck_conv2d_backward_workspace_floats(int64_t N, int64_t Cin, int64_t H, int64_t W,
                                            int64_t Cout, int64_t K, int64_t stride, int64_t pad) {
    if (conv_empty(N, Cin, H, W, Cout, K, stride, pad)) return 0;
    if (direct_ok(K, stride, pad))
        return ck_max64(ck_conv_wgrad_floats(N, Cin, H * W, Cout, H * W, 1), ck_conv_direct_floats(Cout, Cin, H * W));
    if (padded_ok(K, stride, pad, H * W, Cin))   // dx on the padded engine, dw/db on the GEMM engine
        return ck_max64(ck_conv_gemm_backward_floats(N, Cin, H, W, Cout, K, stride, pad), ck_conv_padded_floats(N, Cout, Cin, H, W));
    if (direct2_ok(K, stride, pad)) {
        const int64_t HWo = ck_conv2d_out_size(H, K, stride, pad) * ck_conv2d_out_size(W, K, stride, pad);
        return ck_max64(ck_conv_wgrad_floats(N, Cin, H * W, Cout, HWo, 2), ck_conv_s2_dx_floats(Cin, Cout));
    }
    return ck_conv_gemm_backward_floats(N, Cin, H, W, Cout, K, stride, pad);
}

void ck_conv2d_forward(float *y, const float *x, const float *w, const float *b, float *workspace,
                       int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                       int64_t stride, int64_t pad) {
    if (conv_empty(N, Cin, H, W, Cout, K, stride, pad)) {   // no input channels: y = b
        const int64_t P = ck_conv2d_out_size(H, K, stride, pad) * ck_conv2d_out_size(W, K, stride, pad);
        if (N > 0 && Cin == 0 && Cout > 0 && P > 0)
            for (int64_t i = 0; i < N * Cout; i++)
                for (int64_t q = 0; q < P; q++) y[i * P + q] = b ? b[i % Cout] : 0.0f;
        return;
    }
    if (direct_ok(K, stride, pad)) ck_conv_direct_forward(y, x, w, b, workspace, N, Cin, H, W, Cout);
    else if (direct2_ok(K, stride, pad)) ck_conv_s2_forward(y, x, w, b, workspace, N, Cin, H, W, Cout);
    else if (padded_ok(K, stride, pad, H * W, Cout)) ck_conv_padded_forward(y, x, w, b, workspace, N, Cin, H, W, Cout);
    else ck_conv_gemm_forward(y, x, w, b, workspace, N, Cin, H, W, Cout, K, stride, pad);
}

void ck_conv2d_backward(float *dx, float *dw, float *db, float *workspace, int flags,
                        const float *dy, const float *x, const float *w,
                        int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                        int64_t stride, int64_t pad) {
    if (conv_empty(N, Cin, H, W, Cout, K, stride, pad)) {   // nothing flows back; "set" buffers still need their zeros
        if (dx && (flags & CK_CONV_SET_DX) && N > 0 && Cin > 0) memset(dx, 0, (size_t)(N * Cin * H * W) * sizeof(float));
        if (dw && (flags & CK_CONV_SET_DW) && Cout > 0 && Cin > 0) memset(dw, 0, (size_t)(Cout * Cin * K * K) * sizeof(float));
        if (db && (flags & CK_CONV_SET_DB) && Cout > 0) memset(db, 0, (size_t)Cout * sizeof(float));
        return;
    }
    // dw and db first: the dx pass may then reuse the whole workspace.
    if (direct2_ok(K, stride, pad)) {
        const int64_t Ho = ck_conv2d_out_size(H, K, stride, pad), Wo = ck_conv2d_out_size(W, K, stride, pad);
        if (dw || db) ck_conv_wgrad(dw, db, workspace, flags, dy, x, N, Cin, H, W, 2, Ho, Wo, Cout);
        if (dx) ck_conv_s2_backward_dx(dx, workspace, flags, dy, w, N, Cin, H, W, Cout);
    } else if (direct_ok(K, stride, pad)) {
        if (dw || db) ck_conv_wgrad(dw, db, workspace, flags, dy, x, N, Cin, H, W, 1, H, W, Cout);
        if (dx) ck_conv_direct_backward_dx(dx, workspace, flags, dy, w, N, Cin, H, W, Cout);
    } else if (padded_ok(K, stride, pad, H * W, Cin)) {
        if (dw || db) ck_conv_gemm_backward_dwdb(dw, db, workspace, flags, dy, x, N, Cin, H, W, Cout, K, stride, pad);
        if (dx) ck_conv_padded_backward_dx(dx, workspace, flags, dy, w, N, Cin, H, W, Cout);
    } else {
        if (dw || db) ck_conv_gemm_backward_dwdb(dw, db, workspace, flags, dy, x, N, Cin, H, W, Cout, K, stride, pad);
        if (dx) ck_conv_gemm_backward_dx(dx, workspace, flags, dy, w, N, Cin, H, W, Cout, K, stride, pad);
    }
}

// ---- naive references ----

void ck_conv2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                           int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                           int64_t stride, int64_t pad) {
    int64_t Ho = ck_conv2d_out_size(H, K, stride, pad), Wo = ck_conv2d_out_size(W, K, stride, pad);
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Cout; co++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double s = b ? b[co] : 0.0;
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int64_t ky = 0; ky < K; ky++)
                            for (int64_t kx = 0; kx < K; kx++) {
                                int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)w[((co * Cin + ci) * K + ky) * K + kx] * x[((n * Cin + ci) * H + iy) * W + ix];
                            }
                    y[((n * Cout + co) * Ho + oy) * Wo + ox] = (float)s;
                }
}

void ck_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int64_t N, int64_t Cin, int64_t H, int64_t W,
                            int64_t Cout, int64_t K, int64_t stride, int64_t pad) {
    int64_t Ho = ck_conv2d_out_size(H, K, stride, pad), Wo = ck_conv2d_out_size(W, K, stride, pad);
    if (dx)
        for (int64_t n = 0; n < N; n++)
            for (int64_t ci = 0; ci < Cin; ci++)
                for (int64_t iy = 0; iy < H; iy++)
                    for (int64_t ix = 0; ix < W; ix++) {
                        double s = 0.0;
                        for (int64_t co = 0; co < Cout; co++)
                            for (int64_t ky = 0; ky < K; ky++)
                                for (int64_t kx = 0; kx < K; kx++) {
                                    int64_t ty = iy + pad - ky, tx = ix + pad - kx;
                                    if (ty < 0 || tx < 0 || ty % stride || tx % stride) continue;
                                    int64_t oy = ty / stride, ox = tx / stride;
                                    if (oy >= Ho || ox >= Wo) continue;
                                    s += (double)w[((co * Cin + ci) * K + ky) * K + kx] * dy[((n * Cout + co) * Ho + oy) * Wo + ox];
                                }
                        dx[((n * Cin + ci) * H + iy) * W + ix] += (float)s;
                    }
    if (dw)
        for (int64_t co = 0; co < Cout; co++)
            for (int64_t ci = 0; ci < Cin; ci++)
                for (int64_t ky = 0; ky < K; ky++)
                    for (int64_t kx = 0; kx < K; kx++) {
                        double s = 0.0;
                        for (int64_t n = 0; n < N; n++)
                            for (int64_t oy = 0; oy < Ho; oy++)
                                for (int64_t ox = 0; ox < Wo; ox++) {
                                    int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    s += (double)dy[((n * Cout + co) * Ho + oy) * Wo + ox] * x[((n * Cin + ci) * H + iy) * W + ix];
                                }
                        dw[((co * Cin + ci) * K + ky) * K + kx] += (float)s;
                    }
    if (db)
        for (int64_t co = 0; co < Cout; co++) {
            double s = 0.0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t q = 0; q < Ho * Wo; q++) s += dy[(n * Cout + co) * Ho * Wo + q];
            db[co] += (float)s;
        }
}

// Group normalization (Wu & He 2018), fused with the per-sample "scale-shift norm" of
// improved DDPM / ADM (Nichol & Dhariwal 2021; Dhariwal & Nichol 2021) and an activation.
//
//   x, y (N, C, HW) with HW = H*W (NCHW images); G groups of Cg = C / G consecutive channels
//   (C % G == 0). For each (n, g), over the Cg*HW values of the group:
//     mu = mean, var = biased variance, rstd = 1 / sqrt(var + eps)   (cached: mean, rstd (N, G))
//     xhat = (x - mu) * rstd
//     h    = xhat * gamma[c] + beta[c]                 gamma, beta (C); NULL = 1 and 0
//     z    = h * (1 + scale[n, c]) + shift[n, c]       scale, shift (N, C); NULL = 0
//     y    = act(z)                                     act: a ck_act value (ck_activation.h),
//                                                       CK_ACT_NONE or CK_ACT_SILU typically
//   scale, shift, dscale and dshift are read/written at [n * ss_ld + c] (ss_ld >= C): ss_ld = C
//   for (N, C) arrays; for ADM's embedding output emb (N, 2C) = [scale | shift], pass
//   scale = emb, shift = emb + C, ss_ld = 2C (and the same for their gradients).
//
// Work is cut into blocks of whole groups (each y/dx element has one owner). The parameter
// gradients are sums over n of per-(n, c) partial sums kept in the workspace, added in n
// order, so every result is bit-identical for any thread count.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Forward. y may alias x (inference: the backward needs the original x). mean, rstd (N, G)
// are written (they may be NULL when no backward will follow).
void ck_groupnorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, const float *scale, const float *shift, int64_t N,
                          int64_t C, int64_t HW, int64_t G, int64_t ss_ld, float eps, int act);

// Flags for ck_groupnorm_backward: write the gradient instead of adding to it.
enum {
    CK_GN_SET_DX = 1, CK_GN_SET_DGAMMA = 2, CK_GN_SET_DBETA = 4, CK_GN_SET_DSCALE = 8,
    CK_GN_SET_DSHIFT = 16,
};

// Workspace floats ck_groupnorm_backward needs: 2 * N * C.
int64_t ck_groupnorm_backward_workspace_floats(int64_t N, int64_t C, int64_t HW, int64_t G);

// Backward, given dy = dL/dy (N, C, HW) and the forward's inputs and caches (z is recomputed
// from x, mean, rstd). With dz = dy * act'(z), u = 1 + scale[n, c]:
//   dshift[n, c] += sum_hw dz                 dscale[n, c] += sum_hw dz * h
//   dbeta[c]     += sum_n u * sum_hw dz       dgamma[c]    += sum_n u * sum_hw dz * xhat
//   dx += rstd * (dxhat - mean_g(dxhat) - xhat * mean_g(dxhat * xhat)),  dxhat = dz * u * gamma
// (means over the Cg*HW values of the group). Each output may be NULL (not wanted); each is
// written instead of accumulated when its CK_GN_SET_* flag is set.
void ck_groupnorm_backward(float *dx, float *dgamma, float *dbeta, float *dscale, float *dshift,
                           float *workspace, int flags, const float *dy, const float *x,
                           const float *gamma, const float *beta, const float *scale,
                           const float *shift, const float *mean, const float *rstd, int64_t N,
                           int64_t C, int64_t HW, int64_t G, int64_t ss_ld, int act);

// Naive references (single thread, double arithmetic, libm activations; no workspace). The
// backward accumulates (+=) into every non-NULL output.
void ck_groupnorm_forward_ref(float *y, float *mean, float *rstd, const float *x,
                              const float *gamma, const float *beta, const float *scale,
                              const float *shift, int64_t N, int64_t C, int64_t HW, int64_t G,
                              int64_t ss_ld, float eps, int act);
void ck_groupnorm_backward_ref(float *dx, float *dgamma, float *dbeta, float *dscale,
                               float *dshift, const float *dy, const float *x, const float *gamma,
                               const float *beta, const float *scale, const float *shift,
                               const float *mean, const float *rstd, int64_t N, int64_t C,
                               int64_t HW, int64_t G, int64_t ss_ld, int act);

#ifdef __cplusplus
}
#endif

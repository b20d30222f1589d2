// Multi-head scaled dot-product self-attention, fused and tiled (FlashAttention, Dao et al.
// 2022, Algorithms 1-2; backward in the FlashAttention-2 arrangement).
//
//   q, k, v, o (B, H, T, D) contiguous; lse (B, H, T)
//   o[b, h, i] = sum_j P[i, j] v[b, h, j],  P = softmax_j(scale * q_i . k_j)   (no mask)
//   lse[b, h, i] = log sum_j exp(scale * q_i . k_j)           scale: usually 1 / sqrt(D)
//
// Forward: per block of 64 query rows, key blocks of 64 with an online softmax (running max and
// sum, output rescaled), so the T x T matrix is never formed; only lse is kept for backward.
// Backward: per (query block, key block) pair, P = exp(scale q k^T - lse) is recomputed, then
//   dv_j += P^T do_i, dP = do_i v_j^T, dS = P * (dP - Delta_i), Delta_i = rowsum(do_i * o_i),
//   dq_i += scale dS k_j, dk_j += scale dS^T q_i.
// Block products are single-threaded OpenBLAS sgemm calls; scratch lives on the stack (about
// 33 KB per task), no workspace. Tasks: forward one per (b, h, query block); backward one per
// (b, h), or, for few heads, one per (b, h, key block) for dk/dv and one per (b, h, query
// block) for dq; each output element has one owner and receives its terms in block order, so
// results are bit-identical for any thread count (and for both backward arrangements).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// o and lse are written. lse may be NULL when no backward will follow.
void ck_attention_forward(float *o, float *lse, const float *q, const float *k, const float *v,
                          int64_t B, int64_t H, int64_t T, int64_t D, float scale);

// dq, dk, dv (B, H, T, D) += the gradients of the forward's o given dout = dL/do; o and lse are
// the forward's outputs. Any of dq, dk, dv may be NULL (not wanted).
void ck_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *o, const float *lse,
                           int64_t B, int64_t H, int64_t T, int64_t D, float scale);

// Naive references (single thread, double arithmetic, no heap; for small tests: the forward
// and dq cost O(T^2 D) per head, dk/dv O(T^3 D)). The forward writes o and lse (lse may be
// NULL); the backward recomputes everything from q, k, v, dout and accumulates (+=).
void ck_attention_forward_ref(float *o, float *lse, const float *q, const float *k,
                              const float *v, int64_t B, int64_t H, int64_t T, int64_t D,
                              float scale);
void ck_attention_backward_ref(float *dq, float *dk, float *dv, const float *dout,
                               const float *q, const float *k, const float *v, int64_t B,
                               int64_t H, int64_t T, int64_t D, float scale);

#ifdef __cplusplus
}
#endif

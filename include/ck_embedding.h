// Embeddings: Fourier features of a scalar (sinusoidal / Gaussian Fourier time embeddings)
// and table lookup (class embeddings).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// t (B), freqs (H), y (B, 2H): y[b, k] = sin(t_b f_k), y[b, H + k] = cos(t_b f_k).
// Sinusoidal embeddings (Vaswani et al. 2017) use f_k = scale * 10000^(-k/H); Gaussian
// Fourier features (Tancik et al. 2020) use f_k = 2 pi w_k with w_k ~ N(0, s^2).
void ck_fourier_forward(float *y, const float *t, const float *freqs, int64_t B, int64_t H);
// dt += sum_k dy[b,k] f_k cos(t f_k) - dy[b,H+k] f_k sin(t f_k); dfreqs likewise (either NULL).
void ck_fourier_backward(float *dt, float *dfreqs, const float *dy, const float *t,
                         const float *freqs, int64_t B, int64_t H);

// table (V, D), idx (B) with 0 <= idx < V (checked by the caller), y (B, D): y[b] = table[idx[b]].
void ck_lookup_forward(float *y, const float *table, const int32_t *idx, int64_t B, int64_t D);
// dtable[idx[b]] += dy[b]; rows are summed in batch order by one task per column block.
void ck_lookup_backward(float *dtable, const float *dy, const int32_t *idx, int64_t B, int64_t D);

#ifdef __cplusplus
}
#endif

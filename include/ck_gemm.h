// Matrix products through OpenBLAS's sgemm, split over the pool.
//
// Row-major C (M x N) = alpha * op(A) op(B) + beta * C, op(A) M x K, op(B) K x N,
// op(X) = X or X^T per the trans flag (0 or 1), leading dims in elements.
// The product is cut into stripes of rows (or of columns when N > M) whose size depends
// only on (M, N, K); each stripe is one single-threaded sgemm call, so the result is the
// same for every thread count. A long K with a small output is split along K instead, into
// partial products in a caller-given workspace, added in a fixed order. OpenBLAS itself is
// kept at one thread.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// `workspace` holds ck_gemm_workspace_floats(M, N, K) floats, or is NULL (then no K split:
// the same result up to rounding, still independent of the thread count).
void ck_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
             int64_t ldc, float *workspace);

// Workspace floats ck_gemm wants for an M x N x K product (0: none).
int64_t ck_gemm_workspace_floats(int64_t M, int64_t N, int64_t K);

// `batch` independent products; matrix i starts at A + i*stride_a (same for B, C). No K split.
void ck_gemm_batched(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, int64_t stride_a, const float *B, int64_t ldb,
                     int64_t stride_b, float beta, float *C, int64_t ldc, int64_t stride_c,
                     int64_t batch);

// Naive reference (double accumulation, single thread): the test oracle.
void ck_gemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                 int64_t ldc);

// One plain cblas_sgemm call with OpenBLAS's own threading at `threads` threads (benchmark
// reference); OpenBLAS is set back to one thread afterwards.
void ck_gemm_openblas(int threads, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc);

// The OpenBLAS kernel family in use (e.g. "SkylakeX", "Haswell", "Zen").
const char *ck_blas_core_name(void);

// The stripe plan for an M x N x K product: how many stripes, and whether along rows.
void ck_gemm_plan(int64_t M, int64_t N, int64_t K, int64_t *stripes, int64_t *stripe_len,
                  int *along_rows);

#ifdef __cplusplus
}
#endif

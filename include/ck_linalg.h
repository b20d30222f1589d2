// Double-precision linear algebra for the metrics (Fréchet distance, KID): a matrix product and
// a symmetric eigen-decomposition, through the platform's BLAS and LAPACK (OpenBLAS on Linux,
// Accelerate on Apple platforms), so that Swift code needs neither library's headers.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Row-major C (M x N) = alpha * op(A) op(B) + beta * C in double, op(X) = X or X^T per the
// trans flag (0 or 1); one BLAS call on the calling thread.
void ck_dgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t lda,
              const double *B, int64_t ldb, double beta, double *C, int64_t ldc);

// Eigenvalues of the symmetric n x n row-major matrix a (its upper triangle is read), in
// ascending order into w, by LAPACK's divide-and-conquer dsyevd. With vectors = 1, a is then
// overwritten by the eigenvectors: column k (row-major) belongs to w[k]. Returns 0, or LAPACK's
// info (< 0: a bad argument; > 0: no convergence), or -100 when the workspace could not be
// allocated.
int ck_dsyevd(int vectors, int64_t n, double *a, double *w);

#ifdef __cplusplus
}
#endif

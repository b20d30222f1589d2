// Double-precision BLAS and LAPACK for the metrics (ck_linalg.h). LAPACK is called through its
// Fortran interface, which both OpenBLAS and Accelerate export: column-major, so the row-major
// matrix goes in transposed and the eigenvectors come back transposed, as LAPACKE's row-major
// wrapper does.
#include "ck_linalg.h"
#include "ck_blas.h"
#include <stdlib.h>

#if !defined(__APPLE__)
// Reference LAPACK's dsyevd, as OpenBLAS exports it (gfortran's hidden lengths of the two
// character arguments last).
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
#define CK_DSYEVD(jobz, uplo, n, a, lda, w, work, lwork, iwork, liwork, info) \
    dsyevd_(jobz, uplo, n, a, lda, w, work, lwork, iwork, liwork, info, 1, 1)
typedef int ck_lapack_int;
#else
#define CK_DSYEVD dsyevd_
typedef __LAPACK_int ck_lapack_int;
#endif

void ck_dgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t lda,
              const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

// b = a^T for n x n matrices.
static void transpose(double *b, const double *a, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) b[j * n + i] = a[i * n + j];
}

int ck_dsyevd(int vectors, int64_t n, double *a, double *w) {
    if (n <= 0) return 0;
    const char jobz = vectors ? 'V' : 'N', uplo = 'U';
    const ck_lapack_int nn = (ck_lapack_int)n, query = -1;
    ck_lapack_int info = 0, iwork_size = 0;
    double work_size = 0;
    double *at = malloc((size_t)(n * n) * sizeof(double));
    if (!at) return -100;
    transpose(at, a, n);   // the matrix in column-major order: its upper triangle is the one read
    CK_DSYEVD(&jobz, &uplo, &nn, at, &nn, w, &work_size, &query, &iwork_size, &query, &info);
    if (info == 0) {
        const ck_lapack_int lwork = (ck_lapack_int)work_size, liwork = iwork_size;
        double *work = malloc((size_t)lwork * sizeof(double));
        ck_lapack_int *iwork = malloc((size_t)liwork * sizeof(ck_lapack_int));
        if (work && iwork) CK_DSYEVD(&jobz, &uplo, &nn, at, &nn, w, work, &lwork, iwork, &liwork, &info);
        else info = -100;
        free(work);
        free(iwork);
    }
    if (info == 0 && vectors) transpose(a, at, n);
    free(at);
    return (int)info;
}

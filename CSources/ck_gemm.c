// GEMM: fixed stripes over the pool, one single-threaded OpenBLAS call per stripe.
#include "ck_gemm.h"
#include "ck_internal.h"
#include <cblas.h>

void openblas_set_num_threads(int num_threads);

void ck_blas_single_threaded(void) { openblas_set_num_threads(1); }

// At most 8 stripes, each at least 64 long and ~4 MFLOP, so a stripe's packing cost stays
// small next to its arithmetic. Depends on the sizes only.
void ck_gemm_plan(int64_t M, int64_t N, int64_t K, int64_t *stripes, int64_t *stripe_len,
                  int *along_rows) {
    int rows = M >= N;
    int64_t len = rows ? M : N;
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int64_t n = ck_min64(8, ck_min64(len / 64, (int64_t)(flops / 4e6)));
    if (n < 1) n = 1;
    int64_t sl = ck_ceil_div(len, n);
    sl = ck_ceil_div(sl, 16) * 16;
    if (sl > len) sl = len;
    *stripes = len == 0 ? 0 : ck_ceil_div(len, sl);
    *stripe_len = sl;
    *along_rows = rows;
}

typedef struct {
    int ta, tb, rows;
    int64_t M, N, K, lda, ldb, ldc, sa, sb, sc, slen, stripes;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const gemm_job *j = p;
    int64_t b = t / j->stripes, s = t % j->stripes;
    const float *A = j->A + b * j->sa, *B = j->B + b * j->sb;
    float *C = j->C + b * j->sc;
    int64_t o = s * j->slen;
    enum CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans, tb = j->tb ? CblasTrans : CblasNoTrans;
    if (j->rows) {
        int64_t m = ck_min64(j->slen, j->M - o);
        const float *As = j->ta ? A + o : A + o * j->lda;
        cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)j->N, (int)j->K, j->alpha, As, (int)j->lda,
                    B, (int)j->ldb, j->beta, C + o * j->ldc, (int)j->ldc);
    } else {
        int64_t n = ck_min64(j->slen, j->N - o);
        const float *Bs = j->tb ? B + o * j->ldb : B + o;
        cblas_sgemm(CblasRowMajor, ta, tb, (int)j->M, (int)n, (int)j->K, j->alpha, A, (int)j->lda,
                    Bs, (int)j->ldb, j->beta, C + o, (int)j->ldc);
    }
}

void ck_gemm_batched(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, int64_t stride_a, const float *B, int64_t ldb,
                     int64_t stride_b, float beta, float *C, int64_t ldc, int64_t stride_c,
                     int64_t batch) {
    if (M == 0 || N == 0 || batch == 0) return;
    gemm_job j = {.ta = trans_a, .tb = trans_b, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb,
                  .ldc = ldc, .sa = stride_a, .sb = stride_b, .sc = stride_c, .alpha = alpha,
                  .beta = beta, .A = A, .B = B, .C = C};
    ck_gemm_plan(M, N, K, &j.stripes, &j.slen, &j.rows);
    ck_parallel_for(gemm_task, &j, j.stripes * batch);
}

void ck_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
             int64_t ldc) {
    ck_gemm_batched(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

void ck_gemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                 int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++) {
                double a = trans_a ? A[k * lda + i] : A[i * lda + k];
                double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
            }
            double c = beta == 0.0f ? 0.0 : (double)beta * C[i * ldc + j];
            C[i * ldc + j] = (float)(alpha * s + c);
        }
}

void ck_gemm_openblas(int threads, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                      float beta, float *C, int64_t ldc) {
    openblas_set_num_threads(threads < 1 ? 1 : threads);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    openblas_set_num_threads(1);
}

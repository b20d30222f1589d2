// GEMM: fixed stripes over the pool, one single-threaded OpenBLAS call per stripe.
#include "ck_gemm.h"
#include "ck_internal.h"
#include "ck_blas.h"

#include <stdlib.h>
#include <string.h>

#if defined(__APPLE__)
// Accelerate has no thread-count call (VECLIB_MAXIMUM_THREADS=1, set before its first use by
// ck_blas_single_threaded, keeps each call on its thread) and no kernel choice.
#define CK_OPENBLAS 0
static void openblas_set_num_threads(int num_threads) { (void)num_threads; }
static const char *openblas_get_corename(void) { return "Accelerate"; }
#else
#define CK_OPENBLAS 1
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
// Exported by OpenBLAS builds with DYNAMIC_ARCH (Debian's); weak, so other builds still link.
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
#endif

// OpenBLAS picks its kernels from the CPU model; a model newer than the library (e.g. Intel
// family 6 model 207 for OpenBLAS 0.3.21) falls back to the SSE3 "Prescott" kernels, far
// slower than what the CPU can run. When that happens, re-select by features: SkylakeX kernels
// with AVX-512, Haswell with AVX2+FMA. And at SIMD level avx2 on an AVX-512 CPU, take the
// Haswell (AVX2) kernels too, so that a level cap holds for the matrix products as well; back
// at another level, OpenBLAS's own choice returns. Nothing changes when the user chose a core
// with OPENBLAS_CORETYPE, or when OpenBLAS cannot re-select (a build without DYNAMIC_ARCH), or
// off x86-64 (OpenBLAS's choice stands). Runs at the pool's start and when the process-wide
// level changes (ck_simd_set_level), never while kernels run.
static int g_user_core = -1;   // OPENBLAS_CORETYPE set by the user (1) or not (0); -1: not yet read
static int g_forced;           // we set OPENBLAS_CORETYPE

#if CK_X86 && CK_OPENBLAS
static void reselect_blas(const char *core) {
    if (core) setenv("OPENBLAS_CORETYPE", core, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    g_forced = core != NULL;
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    openblas_set_num_threads(1);
}
#endif

void ck_blas_match_level(int level) {
#if CK_X86 && CK_OPENBLAS
    if (g_user_core < 0) g_user_core = getenv("OPENBLAS_CORETYPE") != NULL;
    if (g_user_core || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
    if (g_forced) reselect_blas(NULL);   // OpenBLAS's own choice first
    const char *core = openblas_get_corename();
    static const char *old_cores[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
                                      "Katmai", "Coppermine", "Northwood", "Banias", "Unknown"};
    int old = 0;
    for (size_t i = 0; core && i < sizeof old_cores / sizeof *old_cores; i++) old |= strcmp(core, old_cores[i]) == 0;
    __builtin_cpu_init();
    const int has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (level == CK_SIMD_AVX2 && has512) reselect_blas("Haswell");
    else if (old && has512) reselect_blas("SkylakeX");
    else if (old && has2) reselect_blas("Haswell");
#else
    (void)level;
    (void)g_user_core;
    (void)g_forced;
#endif
}

void ck_blas_single_threaded(void) {
#if !CK_OPENBLAS
    setenv("VECLIB_MAXIMUM_THREADS", "1", 0);
#endif
    ck_blas_match_level(ck_simd_level());
    openblas_set_num_threads(1);
}

const char *ck_blas_core_name(void) {
    ck_get_num_threads();   // the pool's start-up selects the core
    return openblas_get_corename();
}

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

// A long inner dimension with a small output (e.g. a weight gradient summed over a batch)
// is split along K instead: stripes of M or N would each repack the whole other operand.
// Chunks of K go to separate partial products, added in chunk order.
static int64_t k_chunks(int64_t M, int64_t N, int64_t K) {
    if (K < 1024 || K < 4 * ck_max64(M, N) || M * N > ((int64_t)1 << 22)) return 1;
    return ck_min64(8, K / 512);
}

int64_t ck_gemm_workspace_floats(int64_t M, int64_t N, int64_t K) {
    return (k_chunks(M, N, K) - 1) * M * N;
}

typedef struct {
    int ta, tb, rows;
    int64_t M, N, K, lda, ldb, ldc, sa, sb, sc, slen, stripes, kchunk, nk;
    float alpha, beta;
    const float *A, *B;
    float *C, *ws;
} gemm_job;

static inline enum CBLAS_TRANSPOSE tr(int t) { return t ? CblasTrans : CblasNoTrans; }

static void gemm_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const gemm_job *j = p;
    int64_t b = t / j->stripes, s = t % j->stripes;
    const float *A = j->A + b * j->sa, *B = j->B + b * j->sb;
    float *C = j->C + b * j->sc;
    int64_t o = s * j->slen;
    if (j->rows) {
        int64_t m = ck_min64(j->slen, j->M - o);
        const float *As = j->ta ? A + o : A + o * j->lda;
        cblas_sgemm(CblasRowMajor, tr(j->ta), tr(j->tb), (int)m, (int)j->N, (int)j->K, j->alpha, As, (int)j->lda,
                    B, (int)j->ldb, j->beta, C + o * j->ldc, (int)j->ldc);
    } else {
        int64_t n = ck_min64(j->slen, j->N - o);
        const float *Bs = j->tb ? B + o * j->ldb : B + o;
        cblas_sgemm(CblasRowMajor, tr(j->ta), tr(j->tb), (int)j->M, (int)n, (int)j->K, j->alpha, A, (int)j->lda,
                    Bs, (int)j->ldb, j->beta, C + o, (int)j->ldc);
    }
}

// Chunk t of K: chunk 0 into C (with beta), the others into workspace slots (beta 0).
static void ksplit_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const gemm_job *j = p;
    int64_t k0 = t * j->kchunk, k = ck_min64(j->kchunk, j->K - k0);
    const float *As = j->ta ? j->A + k0 * j->lda : j->A + k0;
    const float *Bs = j->tb ? j->B + k0 : j->B + k0 * j->ldb;
    float *C = t == 0 ? j->C : j->ws + (t - 1) * j->M * j->N;
    int64_t ldc = t == 0 ? j->ldc : j->N;
    cblas_sgemm(CblasRowMajor, tr(j->ta), tr(j->tb), (int)j->M, (int)j->N, (int)k, j->alpha, As, (int)j->lda,
                Bs, (int)j->ldb, t == 0 ? j->beta : 0.0f, C, (int)ldc);
}

// C rows += the partial products, in chunk order.
static void ksum_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const gemm_job *j = p;
    for (int64_t i = t * 16; i < ck_min64(j->M, (t + 1) * 16); i++) {
        float *c = j->C + i * j->ldc;
        for (int64_t q = 1; q < j->nk; q++) {
            const float *w = j->ws + (q - 1) * j->M * j->N + i * j->N;
            for (int64_t x = 0; x < j->N; x++) c[x] += w[x];
        }
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
             int64_t ldc, float *workspace) {
    int64_t nk = k_chunks(M, N, K);
    if (nk == 1 || !workspace || M == 0 || N == 0) {
        ck_gemm_batched(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
        return;
    }
    gemm_job j = {.ta = trans_a, .tb = trans_b, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb,
                  .ldc = ldc, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C, .ws = workspace,
                  .nk = nk, .kchunk = ck_ceil_div(ck_ceil_div(K, nk), 16) * 16};
    j.nk = ck_ceil_div(K, j.kchunk);
    ck_parallel_for(ksplit_task, &j, j.nk);
    ck_parallel_for(ksum_task, &j, ck_ceil_div(M, 16));
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

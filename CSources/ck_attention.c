// Fused multi-head attention: 64 x 64 blocks, online softmax forward, recomputing backward.
// Block products go to single-threaded OpenBLAS sgemm; the softmax arithmetic runs on rows of
// a score block held on the stack (vector code with ck_exp8: AVX2+FMA on x86-64, NEON on
// aarch64; or scalar expf).
#include "ck_attention.h"
#include "ck_internal.h"
#include "ck_simd.h"
#include "ck_blas.h"
#include <math.h>
#include <string.h>

#ifndef BQ
#define BQ 64   // query rows per block
#endif
#ifndef BK
#define BK 64   // keys per block
#endif
#define SPLIT_HEADS 8   // backward: fewer (b, h) pairs than this (and several blocks): split tasks

// ---- row helpers ----

static float rowmax_scalar(const float *s, int64_t n) {
    float m = s[0];
    for (int64_t i = 1; i < n; i++) m = s[i] > m ? s[i] : m;
    return m;
}
#if CK_X86 || CK_NEON
CK_VEC static float rowmax_vec(const float *s, int64_t n) {
    int64_t i = 0;
    float m = s[0];
    if (n >= 8) {
        ck_v8f v = ck_load8(s);
        for (i = 8; i + 8 <= n; i += 8) v = ck_max8(v, ck_load8(s + i));
        m = ck_hmax8(v);
    }
    for (; i < n; i++) m = s[i] > m ? s[i] : m;
    return m;
}
#endif

static inline float fold8(const float *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// s = exp(s - m); returns the sum of the new s (8 interleaved partial sums, then the tail).
static float expsum_scalar(float *s, int64_t n, float m) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) { s[i + l] = expf(s[i + l] - m); a[l] += s[i + l]; }
    float t = fold8(a);
    for (; i < n; i++) { s[i] = expf(s[i] - m); t += s[i]; }
    return t;
}
#if CK_X86 || CK_NEON
CK_VEC static float expsum_vec(float *s, int64_t n, float m) {
    ck_v8f acc = 0.0f;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        ck_v8f e = ck_exp8(ck_load8(s + i) - m);
        ck_store8(s + i, e);
        acc = acc + e;
    }
    float a[8];
    ck_store8(a, acc);
    float t = fold8(a);
    for (; i < n; i++) { s[i] = expf(s[i] - m); t += s[i]; }
    return t;
}
#endif

// s = exp(s - m)
static void expsub_scalar(float *s, int64_t n, float m) {
    for (int64_t i = 0; i < n; i++) s[i] = expf(s[i] - m);
}
#if CK_X86 || CK_NEON
CK_VEC static void expsub_vec(float *s, int64_t n, float m) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) ck_store8(s + i, ck_exp8(ck_load8(s + i) - m));
    for (; i < n; i++) s[i] = expf(s[i] - m);
}
#endif

// dp = p * (dp - delta)
CK_BODY void ds_body(float *dp, const float *p, int64_t n, float delta) {
    for (int64_t i = 0; i < n; i++) dp[i] = p[i] * (dp[i] - delta);
}
static void ds_scalar(float *dp, const float *p, int64_t n, float delta) { ds_body(dp, p, n, delta); }
#if CK_X86 || CK_NEON
CK_VEC static void ds_vec(float *dp, const float *p, int64_t n, float delta) { ds_body(dp, p, n, delta); }
#endif

// x *= a
CK_BODY void scal_body(float *x, int64_t n, float a) {
    for (int64_t i = 0; i < n; i++) x[i] *= a;
}
static void scal_scalar(float *x, int64_t n, float a) { scal_body(x, n, a); }
#if CK_X86 || CK_NEON
CK_VEC static void scal_vec(float *x, int64_t n, float a) { scal_body(x, n, a); }
#endif

// a . b, 8 interleaved partial sums
CK_BODY float dot_body(const float *a, const float *b, int64_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    float t = fold8(s);
    for (; i < n; i++) t += a[i] * b[i];
    return t;
}
static float dot_scalar(const float *a, const float *b, int64_t n) { return dot_body(a, b, n); }
#if CK_X86 || CK_NEON
CK_VEC static float dot_vec(const float *a, const float *b, int64_t n) { return dot_body(a, b, n); }
#endif

typedef struct {
    float (*rowmax)(const float *, int64_t);
    float (*expsum)(float *, int64_t, float);
    void (*expsub)(float *, int64_t, float);
    void (*ds)(float *, const float *, int64_t, float);
    void (*scal)(float *, int64_t, float);
    float (*dot)(const float *, const float *, int64_t);
} at_ops;

static at_ops get_ops(void) {
#if CK_X86 || CK_NEON
    if (ck_cpu_simd_enabled()) return (at_ops){rowmax_vec, expsum_vec, expsub_vec, ds_vec, scal_vec, dot_vec};
#endif
    return (at_ops){rowmax_scalar, expsum_scalar, expsub_scalar, ds_scalar, scal_scalar, dot_scalar};
}

static void sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

typedef struct {
    at_ops ops;
    float *o, *lse, *dq, *dk, *dv;
    const float *q, *k, *v, *dout, *oc, *lc;
    int64_t B, H, T, D, nq, nk;   // nq, nk: query / key blocks per head
    float scale;
} at_job;

// ---- forward: task = (b, h, query block) ----

static void fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const at_job *j = p;
    const int64_t T = j->T, D = j->D, bh = t / j->nq, i0 = (t % j->nq) * BQ, br = ck_min64(BQ, T - i0);
    const float *Q = j->q + (bh * T + i0) * D, *K = j->k + bh * T * D, *V = j->v + bh * T * D;
    float *O = j->o + (bh * T + i0) * D;
    float S[BQ * BK], m[BQ], l[BQ];
    for (int64_t r = 0; r < br; r++) { m[r] = -INFINITY; l[r] = 0.0f; }
    memset(O, 0, (size_t)(br * D) * sizeof(float));
    for (int64_t j0 = 0; j0 < T; j0 += BK) {
        int64_t bc = ck_min64(BK, T - j0);
        sgemm(0, 1, br, bc, D, j->scale, Q, D, K + j0 * D, D, 0.0f, S, bc);
        for (int64_t r = 0; r < br; r++) {
            float *row = S + r * bc, mx = j->ops.rowmax(row, bc), mn = mx > m[r] ? mx : m[r];
            float alpha = m[r] == -INFINITY ? 0.0f : expf(m[r] - mn);
            float sum = j->ops.expsum(row, bc, mn);
            l[r] = l[r] * alpha + sum;
            if (j0 > 0 && alpha != 1.0f) j->ops.scal(O + r * D, D, alpha);
            m[r] = mn;
        }
        sgemm(0, 0, br, D, bc, 1.0f, S, bc, V + j0 * D, D, 1.0f, O, D);
    }
    for (int64_t r = 0; r < br; r++) {
        j->ops.scal(O + r * D, D, 1.0f / l[r]);
        if (j->lse) j->lse[bh * T + i0 + r] = m[r] + logf(l[r]);
    }
}

void ck_attention_forward(float *o, float *lse, const float *q, const float *k, const float *v,
                          int64_t B, int64_t H, int64_t T, int64_t D, float scale) {
    if (B <= 0 || H <= 0 || T <= 0) return;
    if (D <= 0) {   // empty vectors: uniform attention over nothing
        if (lse) for (int64_t i = 0; i < B * H * T; i++) lse[i] = logf((float)T);
        return;
    }
    at_job j = {.ops = get_ops(), .o = o, .lse = lse, .q = q, .k = k, .v = v, .B = B, .H = H, .T = T, .D = D,
                .nq = ck_ceil_div(T, BQ), .nk = ck_ceil_div(T, BK), .scale = scale};
    ck_parallel_for(fwd_task, &j, B * H * j.nq);
}

// ---- backward ----

// Delta[r] = do_r . o_r for the rows of query block i0.
static void block_delta(const at_job *j, int64_t bh, int64_t i0, int64_t br, float *delta) {
    const float *dO = j->dout + (bh * j->T + i0) * j->D, *O = j->oc + (bh * j->T + i0) * j->D;
    for (int64_t r = 0; r < br; r++) delta[r] = j->ops.dot(dO + r * j->D, O + r * j->D, j->D);
}

// One (query block, key block) pair of head bh; `want` selects the gradients it adds:
// 1 dq, 2 dk, 4 dv. S and dP are the caller's scratch (BQ * BK floats each).
static void pair(const at_job *j, int64_t bh, int64_t i0, int64_t j0, const float *delta, int want,
                 float *S, float *dP) {
    const int64_t T = j->T, D = j->D, br = ck_min64(BQ, T - i0), bc = ck_min64(BK, T - j0);
    const float *Q = j->q + (bh * T + i0) * D, *K = j->k + (bh * T + j0) * D, *V = j->v + (bh * T + j0) * D;
    const float *dO = j->dout + (bh * T + i0) * D, *L = j->lc + bh * T + i0;
    sgemm(0, 1, br, bc, D, j->scale, Q, D, K, D, 0.0f, S, bc);
    for (int64_t r = 0; r < br; r++) j->ops.expsub(S + r * bc, bc, L[r]);   // S = P
    if ((want & 4) && j->dv) sgemm(1, 0, bc, D, br, 1.0f, S, bc, dO, D, 1.0f, j->dv + (bh * T + j0) * D, D);
    int wq = (want & 1) && j->dq, wk = (want & 2) && j->dk;
    if (!wq && !wk) return;
    sgemm(0, 1, br, bc, D, 1.0f, dO, D, V, D, 0.0f, dP, bc);
    for (int64_t r = 0; r < br; r++) j->ops.ds(dP + r * bc, S + r * bc, bc, delta[r]);   // dP = dS
    if (wq) sgemm(0, 0, br, D, bc, j->scale, dP, bc, K, D, 1.0f, j->dq + (bh * T + i0) * D, D);
    if (wk) sgemm(1, 0, bc, D, br, j->scale, dP, bc, Q, D, 1.0f, j->dk + (bh * T + j0) * D, D);
}

// One head, everything: query blocks outer, key blocks inner.
static void bwd_head_task(void *p, int64_t bh, int64_t nt) {
    (void)nt;
    const at_job *j = p;
    float S[BQ * BK], dP[BQ * BK], delta[BQ];
    for (int64_t i0 = 0; i0 < j->T; i0 += BQ) {
        block_delta(j, bh, i0, ck_min64(BQ, j->T - i0), delta);
        for (int64_t j0 = 0; j0 < j->T; j0 += BK) pair(j, bh, i0, j0, delta, 7, S, dP);
    }
}

// Split arrangement, same arithmetic: dk, dv of one key block (query blocks in order) ...
static void bwd_kv_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const at_job *j = p;
    int64_t bh = t / j->nk, j0 = (t % j->nk) * BK;
    float S[BQ * BK], dP[BQ * BK], delta[BQ];
    for (int64_t i0 = 0; i0 < j->T; i0 += BQ) {
        block_delta(j, bh, i0, ck_min64(BQ, j->T - i0), delta);
        pair(j, bh, i0, j0, delta, 6, S, dP);
    }
}

// ... and dq of one query block (key blocks in order).
static void bwd_q_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const at_job *j = p;
    int64_t bh = t / j->nq, i0 = (t % j->nq) * BQ;
    float S[BQ * BK], dP[BQ * BK], delta[BQ];
    block_delta(j, bh, i0, ck_min64(BQ, j->T - i0), delta);
    for (int64_t j0 = 0; j0 < j->T; j0 += BK) pair(j, bh, i0, j0, delta, 1, S, dP);
}

void ck_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *o, const float *lse,
                           int64_t B, int64_t H, int64_t T, int64_t D, float scale) {
    if (B <= 0 || H <= 0 || T <= 0 || D <= 0 || (!dq && !dk && !dv)) return;
    at_job j = {.ops = get_ops(), .dq = dq, .dk = dk, .dv = dv, .dout = dout, .q = q, .k = k, .v = v, .oc = o,
                .lc = lse, .B = B, .H = H, .T = T, .D = D, .nq = ck_ceil_div(T, BQ), .nk = ck_ceil_div(T, BK),
                .scale = scale};
    if (B * H >= SPLIT_HEADS || (j.nq == 1 && j.nk == 1)) {
        ck_parallel_for(bwd_head_task, &j, B * H);
    } else {
        if (dk || dv) ck_parallel_for(bwd_kv_task, &j, B * H * j.nk);
        if (dq) ck_parallel_for(bwd_q_task, &j, B * H * j.nq);
    }
}

// ---- naive references ----

static double ref_score(const float *q, const float *k, int64_t D, double scale) {
    double s = 0.0;
    for (int64_t d = 0; d < D; d++) s += (double)q[d] * k[d];
    return scale * s;
}

// log sum_j exp(s_ij) of query row qi against the T keys K.
static double ref_lse(const float *qi, const float *K, int64_t T, int64_t D, double scale) {
    double m = -INFINITY, s = 0.0;
    for (int64_t t = 0; t < T; t++) { double x = ref_score(qi, K + t * D, D, scale); if (x > m) m = x; }
    for (int64_t t = 0; t < T; t++) s += exp(ref_score(qi, K + t * D, D, scale) - m);
    return m + log(s);
}

#define REF_DC 128   // output columns accumulated at once (double, on the stack)

void ck_attention_forward_ref(float *o, float *lse, const float *q, const float *k,
                              const float *v, int64_t B, int64_t H, int64_t T, int64_t D,
                              float scale) {
    double acc[REF_DC];
    for (int64_t bh = 0; bh < B * H; bh++) {
        const float *Q = q + bh * T * D, *K = k + bh * T * D, *V = v + bh * T * D;
        for (int64_t i = 0; i < T; i++) {
            double L = ref_lse(Q + i * D, K, T, D, scale);
            if (lse) lse[bh * T + i] = (float)L;
            for (int64_t d0 = 0; d0 < D; d0 += REF_DC) {
                int64_t nd = ck_min64(REF_DC, D - d0);
                for (int64_t d = 0; d < nd; d++) acc[d] = 0.0;
                for (int64_t t = 0; t < T; t++) {
                    double P = exp(ref_score(Q + i * D, K + t * D, D, scale) - L);
                    for (int64_t d = 0; d < nd; d++) acc[d] += P * V[t * D + d0 + d];
                }
                for (int64_t d = 0; d < nd; d++) o[(bh * T + i) * D + d0 + d] = (float)acc[d];
            }
        }
    }
}

// Delta_i = sum_j P_ij (do_i . v_j) (= do_i . o_i), given L = lse_i.
static double ref_delta(const float *qi, const float *doi, const float *K, const float *V, int64_t T, int64_t D,
                        double scale, double L) {
    double s = 0.0;
    for (int64_t t = 0; t < T; t++)
        s += exp(ref_score(qi, K + t * D, D, scale) - L) * ref_score(doi, V + t * D, D, 1.0);
    return s;
}

// dS_ij = P_ij (do_i . v_j - Delta_i), P_ij = exp(s_ij - L_i)
static double ref_ds(const float *qi, const float *doi, const float *kj, const float *vj, int64_t D, double scale,
                     double L, double Dl, double *P) {
    *P = exp(ref_score(qi, kj, D, scale) - L);
    return *P * (ref_score(doi, vj, D, 1.0) - Dl);
}

void ck_attention_backward_ref(float *dq, float *dk, float *dv, const float *dout,
                               const float *q, const float *k, const float *v, int64_t B,
                               int64_t H, int64_t T, int64_t D, float scale) {
    double a[REF_DC], b[REF_DC], P;
    for (int64_t bh = 0; bh < B * H; bh++) {
        const float *Q = q + bh * T * D, *K = k + bh * T * D, *V = v + bh * T * D, *dO = dout + bh * T * D;
        // dq_i = scale sum_j dS_ij k_j
        if (dq)
            for (int64_t i = 0; i < T; i++) {
                double L = ref_lse(Q + i * D, K, T, D, scale), Dl = ref_delta(Q + i * D, dO + i * D, K, V, T, D, scale, L);
                for (int64_t d0 = 0; d0 < D; d0 += REF_DC) {
                    int64_t nd = ck_min64(REF_DC, D - d0);
                    for (int64_t d = 0; d < nd; d++) a[d] = 0.0;
                    for (int64_t t = 0; t < T; t++) {
                        double dS = ref_ds(Q + i * D, dO + i * D, K + t * D, V + t * D, D, scale, L, Dl, &P);
                        for (int64_t d = 0; d < nd; d++) a[d] += dS * K[t * D + d0 + d];
                    }
                    for (int64_t d = 0; d < nd; d++) dq[(bh * T + i) * D + d0 + d] += (float)(scale * a[d]);
                }
            }
        // dk_j = scale sum_i dS_ij q_i, dv_j = sum_i P_ij do_i
        if (dk || dv)
            for (int64_t t = 0; t < T; t++)
                for (int64_t d0 = 0; d0 < D; d0 += REF_DC) {
                    int64_t nd = ck_min64(REF_DC, D - d0);
                    for (int64_t d = 0; d < nd; d++) a[d] = b[d] = 0.0;
                    for (int64_t i = 0; i < T; i++) {
                        double L = ref_lse(Q + i * D, K, T, D, scale), Dl = ref_delta(Q + i * D, dO + i * D, K, V, T, D, scale, L);
                        double dS = ref_ds(Q + i * D, dO + i * D, K + t * D, V + t * D, D, scale, L, Dl, &P);
                        for (int64_t d = 0; d < nd; d++) {
                            a[d] += dS * Q[i * D + d0 + d];
                            b[d] += P * dO[i * D + d0 + d];
                        }
                    }
                    for (int64_t d = 0; d < nd; d++) {
                        if (dk) dk[(bh * T + t) * D + d0 + d] += (float)(scale * a[d]);
                        if (dv) dv[(bh * T + t) * D + d0 + d] += (float)b[d];
                    }
                }
    }
}

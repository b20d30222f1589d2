// GroupNorm + scale-shift + activation. A group of one image is a contiguous block of
// Cg*HW floats; tasks take fixed blocks of whole groups. Sums run over chunks of CHUNK floats
// with 8 interleaved float partial sums, each chunk's total added into a double.
//
// Per channel c of sample n the forward is an affine map of x: z = (x - mu) * A + B with
// A = rstd * gamma * u, B = beta * u + shift, u = 1 + scale. The backward needs two sums per
// (n, c): S1 = sum dz, S2 = sum dz * xhat; everything else follows from them:
//   dshift = S1, dscale = gamma * S2 + beta * S1, dbeta = sum_n u S1, dgamma = sum_n u S2,
//   dx = rstd * (u gamma dz - m1 - xhat m2), m1 = mean_g(u gamma S1), m2 = mean_g(u gamma S2)
// (the means divide the sum over the group's channels by Cg*HW). S1, S2 go to the workspace,
// so the gamma/beta sums over n can be added in n order by a second, per-channel pass.
#include "ck_groupnorm.h"
#include "ck_activation.h"
#include "ck_internal.h"
#include "ck_simd.h"
#include <math.h>
#include <string.h>

#define CHUNK 256        // floats per partial-sum chunk, and per activation buffer
#define CH_PER_TASK 64   // channels per task of the gamma/beta pass
#define DZ_KEEP 4096     // a group's dz is kept on the stack between the two backward passes up to this size

// ---- chunk bodies: the scalar code, then the vector versions ----

static inline float fold8(const float *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// sum of x (mode 0) or of (x - mu)^2 (mode 1), n floats, chunked.
CK_BODY double stat_body(const float *x, int64_t n, float mu, int mode) {
    double tot = 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += CHUNK) {
        int64_t m = ck_min64(CHUNK, n - c0), i = 0;
        const float *p = x + c0;
        float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (mode == 0) {
            for (; i + 8 <= m; i += 8)
                for (int l = 0; l < 8; l++) a[l] += p[i + l];
        } else {
            for (; i + 8 <= m; i += 8)
                for (int l = 0; l < 8; l++) { float d = p[i + l] - mu; a[l] += d * d; }
        }
        float s = fold8(a);
        for (; i < m; i++) { float d = mode ? p[i] - mu : p[i]; s += mode ? d * d : d; }
        tot += s;
    }
    return tot;
}

// y = (x - mu) * A + B
CK_BODY void affine_body(float *y, const float *x, int64_t n, float mu, float A, float B) {
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mu) * A + B;
}

// s[0] += sum dz, s[1] += sum dz * (x - mu) * rstd, over at most CHUNK floats.
CK_BODY void bsum_body(double *s, const float *dz, const float *x, int64_t m, float mu, float rs) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int l = 0; l < 8; l++) {
            float g = dz[i + l];
            a[l] += g;
            b[l] += g * ((x[i + l] - mu) * rs);
        }
    float s1 = fold8(a), s2 = fold8(b);
    for (; i < m; i++) { s1 += dz[i]; s2 += dz[i] * ((x[i] - mu) * rs); }
    s[0] += s1;
    s[1] += s2;
}

// dx (=|+=) c1 * dz - (c2 + xhat * c3), xhat = (x - mu) * rs
CK_BODY void dx_body(float *dx, const float *dz, const float *x, int64_t n, float mu, float rs,
                     float c1, float c2, float c3, int set) {
    if (set)
        for (int64_t i = 0; i < n; i++) dx[i] = c1 * dz[i] - (c2 + ((x[i] - mu) * rs) * c3);
    else
        for (int64_t i = 0; i < n; i++) dx[i] += c1 * dz[i] - (c2 + ((x[i] - mu) * rs) * c3);
}

static double stat_scalar(const float *x, int64_t n, float mu, int mode) { return stat_body(x, n, mu, mode); }
static void affine_scalar(float *y, const float *x, int64_t n, float mu, float A, float B) { affine_body(y, x, n, mu, A, B); }
static void bsum_scalar(double *s, const float *dz, const float *x, int64_t m, float mu, float rs) { bsum_body(s, dz, x, m, mu, rs); }
static void dx_scalar(float *dx, const float *dz, const float *x, int64_t n, float mu, float rs, float c1, float c2, float c3, int set) { dx_body(dx, dz, x, n, mu, rs, c1, c2, c3, set); }

// Vector versions (AVX2+FMA on x86-64, NEON on aarch64), written out rather than left to the
// auto-vectorizer (which gcc -O2 does not apply to these loops). Same formulas; tails in scalar
// code or, where planes are short, partial vectors.
#if CK_X86 || CK_NEON
CK_VEC static double stat_vec(const float *x, int64_t n, float mu, int mode) {
    double tot = 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += CHUNK) {
        int64_t k = ck_min64(CHUNK, n - c0), i = 0;
        const float *p = x + c0;
        ck_v8f a = 0.0f;
        if (mode == 0)
            for (; i + 8 <= k; i += 8) a = a + ck_load8(p + i);
        else
            for (; i + 8 <= k; i += 8) { ck_v8f d = ck_load8(p + i) - mu; a = __builtin_elementwise_fma(d, d, a); }
        float s = ck_hsum8(a);
        for (; i < k; i++) { float d = mode ? p[i] - mu : p[i]; s += mode ? d * d : d; }
        tot += s;
    }
    return tot;
}

// (x - mu) * A + B, one rounding for the multiply-add.
CK_VEC static inline ck_v8f affine8(ck_v8f x, float mu, float A, float B) {
    return __builtin_elementwise_fma(x - mu, (ck_v8f)A, (ck_v8f)B);
}

CK_VEC static void affine_vec(float *y, const float *x, int64_t n, float mu, float A, float B) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) ck_store8(y + i, affine8(ck_load8(x + i), mu, A, B));
    for (; i < n; i++) y[i] = (x[i] - mu) * A + B;
}

// y = silu((x - mu) * A + B); the tail runs as a partial vector (planes are often short: 7x7, 8x8).
CK_VEC static void affine_silu_vec(float *y, const float *x, int64_t n, float mu, float A, float B) {
    for (int64_t i = 0; i < n; i += 8) {
        ck_v8f z = affine8(ck_load8_upto(x + i, n - i), mu, A, B);
        ck_store8_upto(y + i, z * ck_sigmoid8(z), n - i);
    }
}

// dz = dy * silu'(z), z = (x - mu) * A + B; the tail runs as a partial vector.
CK_VEC static void dz_silu_vec(float *dz, const float *dy, const float *x, int64_t n, float mu, float A, float B) {
    const ck_v8f one = 1.0f;
    for (int64_t i = 0; i < n; i += 8) {
        ck_v8f z = affine8(ck_load8_upto(x + i, n - i), mu, A, B), sg = ck_sigmoid8(z);
        ck_v8f d = sg * __builtin_elementwise_fma(z, one - sg, one);
        ck_store8_upto(dz + i, ck_load8_upto(dy + i, n - i) * d, n - i);
    }
}

CK_VEC static void bsum_vec(double *s, const float *dz, const float *x, int64_t m, float mu, float rs) {
    ck_v8f a = 0.0f, b = 0.0f;
    int64_t i = 0;
    for (; i + 8 <= m; i += 8) {
        ck_v8f g = ck_load8(dz + i), xh = (ck_load8(x + i) - mu) * rs;
        a = a + g;
        b = __builtin_elementwise_fma(g, xh, b);
    }
    float s1 = ck_hsum8(a), s2 = ck_hsum8(b);
    for (; i < m; i++) { s1 += dz[i]; s2 += dz[i] * ((x[i] - mu) * rs); }
    s[0] += s1;
    s[1] += s2;
}

CK_VEC static void dx_vec(float *dx, const float *dz, const float *x, int64_t n, float mu, float rs, float c1,
                          float c2, float c3, int set) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        ck_v8f xh = (ck_load8(x + i) - mu) * rs;
        ck_v8f g = c1 * ck_load8(dz + i);   // a separate rounding: not fused into the subtraction
        ck_v8f v = g - __builtin_elementwise_fma(xh, (ck_v8f)c3, (ck_v8f)c2);
        ck_store8(dx + i, set ? v : ck_load8(dx + i) + v);
    }
    for (; i < n; i++) {
        float v = c1 * dz[i] - (c2 + ((x[i] - mu) * rs) * c3);
        dx[i] = set ? v : dx[i] + v;
    }
}
#endif   // CK_X86 || CK_NEON

typedef struct {
    double (*stat)(const float *, int64_t, float, int);
    void (*affine)(float *, const float *, int64_t, float, float, float);
    void (*bsum)(double *, const float *, const float *, int64_t, float, float);
    void (*dx)(float *, const float *, const float *, int64_t, float, float, float, float, float, int);
    int vec;
} gn_ops;

static gn_ops get_ops(void) {
#if CK_X86 || CK_NEON
    if (ck_cpu_simd_enabled()) return (gn_ops){stat_vec, affine_vec, bsum_vec, dx_vec, 1};
#endif
    return (gn_ops){stat_scalar, affine_scalar, bsum_scalar, dx_scalar, 0};
}

typedef struct {
    gn_ops ops;
    float *y, *mean, *rstd, *dx, *dg, *db, *dsc, *dsh, *s1, *s2;
    const float *x, *g, *b, *sc, *sh, *dy, *cm, *cr;
    int64_t N, C, HW, G, Cg, ld, per_task;
    float eps;
    int act, flags;
} gn_job;

// Per-channel affine coefficients of z = (x - mu) * A + B for sample n, channel c.
static inline void coeffs(const gn_job *j, int64_t n, int64_t c, float rs, float *A, float *B, float *u) {
    float gm = j->g ? j->g[c] : 1.0f, bt = j->b ? j->b[c] : 0.0f;
    *u = 1.0f + (j->sc ? j->sc[n * j->ld + c] : 0.0f);
    *A = rs * gm * *u;
    *B = bt * *u + (j->sh ? j->sh[n * j->ld + c] : 0.0f);
}

// ---- forward ----

static void fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const gn_job *j = p;
    int64_t M = j->Cg * j->HW;
    for (int64_t q = t * j->per_task; q < ck_min64(j->N * j->G, (t + 1) * j->per_task); q++) {
        int64_t n = q / j->G, c0 = (q % j->G) * j->Cg;
        const float *x = j->x + (n * j->C + c0) * j->HW;
        float *y = j->y + (n * j->C + c0) * j->HW;
        double mu = j->ops.stat(x, M, 0.0f, 0) / (double)M;
        double var = j->ops.stat(x, M, (float)mu, 1) / (double)M;
        float m = (float)mu, rs = (float)(1.0 / sqrt(var + (double)j->eps));
        if (j->mean) j->mean[q] = m;
        if (j->rstd) j->rstd[q] = rs;
        int fused = j->act == CK_ACT_SILU && j->ops.vec;
        for (int64_t c = 0; c < j->Cg; c++) {
            float A, B, u;
            coeffs(j, n, c0 + c, rs, &A, &B, &u);
#if CK_X86 || CK_NEON
            if (fused) affine_silu_vec(y + c * j->HW, x + c * j->HW, j->HW, m, A, B);
            else
#endif
                j->ops.affine(y + c * j->HW, x + c * j->HW, j->HW, m, A, B);
        }
        if (j->act != CK_ACT_NONE && !fused) ck_act_forward_serial(y, y, M, j->act);
    }
}

static int64_t groups_per_task(int64_t Cg, int64_t HW) { return ck_max64(1, CK_BLOCK / ck_max64(1, Cg * HW)); }

void ck_groupnorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, const float *scale, const float *shift, int64_t N,
                          int64_t C, int64_t HW, int64_t G, int64_t ss_ld, float eps, int act) {
    if (N <= 0 || C <= 0 || G <= 0 || C % G) return;
    gn_job j = {.ops = get_ops(), .y = y, .mean = mean, .rstd = rstd, .x = x, .g = gamma, .b = beta, .sc = scale,
                .sh = shift, .N = N, .C = C, .HW = HW, .G = G, .Cg = C / G, .ld = ss_ld, .eps = eps, .act = act};
    if (HW <= 0) {   // empty images: statistics of nothing
        for (int64_t q = 0; q < N * G; q++) {
            if (mean) mean[q] = 0.0f;
            if (rstd) rstd[q] = 1.0f / sqrtf(eps);
        }
        return;
    }
    j.per_task = groups_per_task(j.Cg, HW);
    ck_parallel_for(fwd_task, &j, ck_ceil_div(N * G, j.per_task));
}

// ---- backward ----

// dz for floats [o, o + m) of the plane (n, c) into buf (or dy itself without activation).
static inline const float *dz_chunk(const gn_job *j, float *zb, float *dzb, const float *x, const float *dy,
                                    int64_t m, float mu, float A, float B) {
    if (j->act == CK_ACT_NONE) return dy;
#if CK_X86 || CK_NEON
    if (j->act == CK_ACT_SILU && j->ops.vec) {
        dz_silu_vec(dzb, dy, x, m, mu, A, B);
        return dzb;
    }
#endif
    j->ops.affine(zb, x, m, mu, A, B);
    ck_act_backward_serial(dzb, dy, zb, NULL, m, j->act, 0);
    return dzb;
}

static void bwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const gn_job *j = p;
    float zb[CHUNK], dzb[CHUNK], keep[DZ_KEEP];
    const int64_t HW = j->HW, M = j->Cg * HW;
    // dz of the whole group kept from the first pass when it fits (saves recomputing act')
    const int kept = j->act != CK_ACT_NONE && M <= DZ_KEEP;
    for (int64_t q = t * j->per_task; q < ck_min64(j->N * j->G, (t + 1) * j->per_task); q++) {
        int64_t n = q / j->G, c0 = (q % j->G) * j->Cg;
        float mu = j->cm[q], rs = j->cr[q];
        double m1 = 0.0, m2 = 0.0;
        for (int64_t c = c0; c < c0 + j->Cg; c++) {
            const float *x = j->x + (n * j->C + c) * HW, *dy = j->dy + (n * j->C + c) * HW;
            float A, B, u;
            coeffs(j, n, c, rs, &A, &B, &u);
            double s[2] = {0.0, 0.0};
            for (int64_t o = 0; o < HW; o += CHUNK) {
                int64_t m = ck_min64(CHUNK, HW - o);
                float *buf = kept ? keep + (c - c0) * HW + o : dzb;
                const float *dz = dz_chunk(j, zb, buf, x + o, dy + o, m, mu, A, B);
                j->ops.bsum(s, dz, x + o, m, mu, rs);
            }
            float S1 = (float)s[0], S2 = (float)s[1];
            float gm = j->g ? j->g[c] : 1.0f, bt = j->b ? j->b[c] : 0.0f;
            j->s1[n * j->C + c] = S1;
            j->s2[n * j->C + c] = S2;
            if (j->dsh) {
                float *d = j->dsh + n * j->ld + c;
                *d = (j->flags & CK_GN_SET_DSHIFT) ? S1 : *d + S1;
            }
            if (j->dsc) {
                float *d = j->dsc + n * j->ld + c, v = gm * S2 + bt * S1;
                *d = (j->flags & CK_GN_SET_DSCALE) ? v : *d + v;
            }
            m1 += (double)(u * gm) * S1;
            m2 += (double)(u * gm) * S2;
        }
        if (!j->dx) continue;
        float c2 = (float)(rs * m1 / (double)M), c3 = (float)(rs * m2 / (double)M);
        for (int64_t c = c0; c < c0 + j->Cg; c++) {
            const float *x = j->x + (n * j->C + c) * HW, *dy = j->dy + (n * j->C + c) * HW;
            float *dx = j->dx + (n * j->C + c) * HW;
            float A, B, u;
            coeffs(j, n, c, rs, &A, &B, &u);
            float c1 = rs * (u * (j->g ? j->g[c] : 1.0f));
            for (int64_t o = 0; o < HW; o += CHUNK) {
                int64_t m = ck_min64(CHUNK, HW - o);
                const float *dz = kept ? keep + (c - c0) * HW + o : dz_chunk(j, zb, dzb, x + o, dy + o, m, mu, A, B);
                j->ops.dx(dx + o, dz, x + o, m, mu, rs, c1, c2, c3, j->flags & CK_GN_SET_DX);
            }
        }
    }
}

// dgamma[c] (+)= sum_n u S2[n, c], dbeta[c] (+)= sum_n u S1[n, c], n in order.
static void param_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const gn_job *j = p;
    for (int64_t c = t * CH_PER_TASK; c < ck_min64(j->C, (t + 1) * CH_PER_TASK); c++) {
        double a = 0.0, b = 0.0;
        for (int64_t n = 0; n < j->N; n++) {
            double u = 1.0 + (j->sc ? j->sc[n * j->ld + c] : 0.0f);
            a += u * j->s2[n * j->C + c];
            b += u * j->s1[n * j->C + c];
        }
        if (j->dg) j->dg[c] = (j->flags & CK_GN_SET_DGAMMA) ? (float)a : j->dg[c] + (float)a;
        if (j->db) j->db[c] = (j->flags & CK_GN_SET_DBETA) ? (float)b : j->db[c] + (float)b;
    }
}

int64_t ck_groupnorm_backward_workspace_floats(int64_t N, int64_t C, int64_t HW, int64_t G) {
    (void)HW; (void)G;
    return 2 * N * C;
}

void ck_groupnorm_backward(float *dx, float *dgamma, float *dbeta, float *dscale, float *dshift,
                           float *workspace, int flags, const float *dy, const float *x,
                           const float *gamma, const float *beta, const float *scale,
                           const float *shift, const float *mean, const float *rstd, int64_t N,
                           int64_t C, int64_t HW, int64_t G, int64_t ss_ld, int act) {
    if (C <= 0 || G <= 0 || C % G) return;
    gn_job j = {.ops = get_ops(), .dx = dx, .dg = dgamma, .db = dbeta, .dsc = dscale, .dsh = dshift,
                .s1 = workspace, .s2 = workspace + N * C, .dy = dy, .x = x, .g = gamma, .b = beta,
                .sc = scale, .sh = shift, .cm = mean, .cr = rstd, .N = N, .C = C, .HW = HW, .G = G,
                .Cg = C / G, .ld = ss_ld, .act = act, .flags = flags};
    if (N > 0 && HW > 0) {
        j.per_task = groups_per_task(j.Cg, HW);
        ck_parallel_for(bwd_task, &j, ck_ceil_div(N * G, j.per_task));
    } else {   // nothing flows back; "set" outputs get their zeros
        if (N > 0) memset(workspace, 0, (size_t)(2 * N * C) * sizeof(float));
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                if (dshift && (flags & CK_GN_SET_DSHIFT)) dshift[n * ss_ld + c] = 0.0f;
                if (dscale && (flags & CK_GN_SET_DSCALE)) dscale[n * ss_ld + c] = 0.0f;
            }
    }
    if (dgamma || dbeta) ck_parallel_for(param_task, &j, ck_ceil_div(C, CH_PER_TASK));
}

// ---- naive references ----

static double act_f(double z, int act) {
    switch (act) {
    case CK_ACT_RELU: return z > 0 ? z : 0;
    case CK_ACT_SILU: return z / (1.0 + exp(-z));
    case CK_ACT_GELU: return 0.5 * z * (1.0 + erf(z * 0.70710678118654752));
    case CK_ACT_TANH: return tanh(z);
    case CK_ACT_SIGMOID: return 1.0 / (1.0 + exp(-z));
    case CK_ACT_SOFTPLUS: return (z > 0 ? z : 0) + log1p(exp(-fabs(z)));
    default: return z;
    }
}

static double act_df(double z, int act) {
    double s = 1.0 / (1.0 + exp(-z));
    switch (act) {
    case CK_ACT_RELU: return z > 0 ? 1 : 0;
    case CK_ACT_SILU: return s * (1.0 + z * (1.0 - s));
    case CK_ACT_GELU: return 0.5 * (1.0 + erf(z * 0.70710678118654752)) + z * 0.39894228040143268 * exp(-0.5 * z * z);
    case CK_ACT_TANH: { double t = tanh(z); return 1.0 - t * t; }
    case CK_ACT_SIGMOID: return s * (1.0 - s);
    case CK_ACT_SOFTPLUS: return s;
    default: return 1.0;
    }
}

void ck_groupnorm_forward_ref(float *y, float *mean, float *rstd, const float *x,
                              const float *gamma, const float *beta, const float *scale,
                              const float *shift, int64_t N, int64_t C, int64_t HW, int64_t G,
                              int64_t ss_ld, float eps, int act) {
    int64_t Cg = C / G, M = Cg * HW;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *xg = x + (n * C + g * Cg) * HW;
            double s = 0.0, v = 0.0;
            for (int64_t i = 0; i < M; i++) s += xg[i];
            double mu = M ? s / M : 0.0;
            for (int64_t i = 0; i < M; i++) v += (xg[i] - mu) * (xg[i] - mu);
            double rs = 1.0 / sqrt((M ? v / M : 0.0) + eps);
            if (mean) mean[n * G + g] = (float)mu;
            if (rstd) rstd[n * G + g] = (float)rs;
            for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
                double gm = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
                double u = 1.0 + (scale ? scale[n * ss_ld + c] : 0.0), sh = shift ? shift[n * ss_ld + c] : 0.0;
                for (int64_t i = 0; i < HW; i++) {
                    int64_t k = (n * C + c) * HW + i;
                    double h = (x[k] - mu) * rs * gm + bt;
                    y[k] = (float)act_f(h * u + sh, act);
                }
            }
        }
}

// Sums over the plane (n, c): S1 = sum dz, S2 = sum dz * xhat (double).
static void ref_plane_sums(double *S1, double *S2, const float *dy, const float *x, double mu, double rs,
                           double gm, double bt, double u, double sh, int64_t HW, int act) {
    *S1 = *S2 = 0.0;
    for (int64_t i = 0; i < HW; i++) {
        double xh = (x[i] - mu) * rs, dz = dy[i] * act_df((xh * gm + bt) * u + sh, act);
        *S1 += dz;
        *S2 += dz * xh;
    }
}

void ck_groupnorm_backward_ref(float *dx, float *dgamma, float *dbeta, float *dscale,
                               float *dshift, const float *dy, const float *x, const float *gamma,
                               const float *beta, const float *scale, const float *shift,
                               const float *mean, const float *rstd, int64_t N, int64_t C,
                               int64_t HW, int64_t G, int64_t ss_ld, int act) {
    int64_t Cg = C / G, M = Cg * HW;
#define GN_PAR(n, c) double gm = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0, \
        u = 1.0 + (scale ? scale[(n) * ss_ld + (c)] : 0.0), sh = shift ? shift[(n) * ss_ld + (c)] : 0.0, \
        mu = mean[(n) * G + (c) / Cg], rs = rstd[(n) * G + (c) / Cg]
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            double m1 = 0.0, m2 = 0.0;
            for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
                GN_PAR(n, c);
                int64_t o = (n * C + c) * HW;
                double S1, S2;
                ref_plane_sums(&S1, &S2, dy + o, x + o, mu, rs, gm, bt, u, sh, HW, act);
                if (dshift) dshift[n * ss_ld + c] += (float)S1;
                if (dscale) dscale[n * ss_ld + c] += (float)(gm * S2 + bt * S1);
                m1 += u * gm * S1;
                m2 += u * gm * S2;
            }
            m1 /= (double)M;
            m2 /= (double)M;
            if (dx)
                for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
                    GN_PAR(n, c);
                    for (int64_t i = 0; i < HW; i++) {
                        int64_t k = (n * C + c) * HW + i;
                        double xh = (x[k] - mu) * rs, dz = dy[k] * act_df((xh * gm + bt) * u + sh, act);
                        dx[k] += (float)(rs * (u * gm * dz - m1 - xh * m2));
                    }
                }
        }
    for (int64_t c = 0; c < C; c++) {
        double a = 0.0, b = 0.0;
        for (int64_t n = 0; n < N; n++) {
            GN_PAR(n, c);
            double S1, S2;
            ref_plane_sums(&S1, &S2, dy + (n * C + c) * HW, x + (n * C + c) * HW, mu, rs, gm, bt, u, sh, HW, act);
            a += u * S2;
            b += u * S1;
        }
        if (dgamma) dgamma[c] += (float)a;
        if (dbeta) dbeta[c] += (float)b;
    }
#undef GN_PAR
}

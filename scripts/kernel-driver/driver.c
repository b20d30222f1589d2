// Kernel driver: every CKernels family against a naive reference written here, on odd sizes, at
// 1 and 2 pool threads, with the SIMD paths on and off where the CPU has them. It is the proof
// that the portable C builds and computes right where the Swift layer cannot be cross-built
// (aarch64 under qemu-user, scripts/cross-check.sh), in the manner of ggml's test-backend-ops: a
// table of kernels x shapes, one line per case, a summary, exit status 1 on any failure. The
// tolerances are those of the Swift tests (Tests/CKernelsTests); u is one float rounding, 2^-24.
//
// Every case also checks the kernels' promise that results do not depend on the thread count
// (2 threads give the bits of 1). Last, a digest of the kernels that are bit-exact by
// construction (Philox, the sampler's combination, fixed-order sums, resampling, exact IEEE
// operations) must be the same in every configuration (SIMD on and off included) and is
// printed: cross-check.sh compares the x86-64 digest with the aarch64 one, so the portable path
// is shown to give the x86 bits there. (Built with clang: GCC ignores the kernels' `#pragma STDC
// FP_CONTRACT OFF` and, at its default -ffp-contract=fast, fuses some of those operations.)
#include "CKernels.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U 0x1p-24   // one float rounding

// ---- data: a 64-bit LCG (the Swift tests' TestRNG) and an arena freed after each case ----

static uint64_t g_rng;
static void seed(uint64_t s) { g_rng = s * 6364136223846793005ull + 1442695040888963407ull; }
static float frand(float lo, float hi) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)(g_rng >> 40) / (float)(1 << 24);
}

static void *g_arena[1024];
static int g_narena;
static void *mem(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p || g_narena == 1024) { fprintf(stderr, "out of memory\n"); exit(2); }
    return g_arena[g_narena++] = p;
}
static float *fr(int64_t n, float lo, float hi) {   // n random floats in [lo, hi)
    float *p = mem((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = frand(lo, hi);
    return p;
}
static float *fc(const float *x, int64_t n) { return memcpy(mem((size_t)n * sizeof(float)), x, (size_t)n * sizeof(float)); }
static float *fz(int64_t n) { return mem((size_t)n * sizeof(float)); }
static double *dz(int64_t n) { return mem((size_t)n * sizeof(double)); }
static double *dv(const float *x, int64_t n) {   // x as doubles
    double *d = dz(n);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static double *dabs(const float *x, int64_t n) {   // |x| as doubles
    double *d = dz(n);
    for (int64_t i = 0; i < n; i++) d[i] = fabs((double)x[i]);
    return d;
}

// ---- configurations and checks ----

// A configuration: pool threads, SIMD level (ck_cpu.h), and the test switch (0: the scalar twins
// of that level's engines).
typedef struct { int threads, level, simd; } config;
static config g_cfgs[8];
static int g_ncfg, g_cfg;

static void use_config(int c) {
    g_cfg = c;
    ck_set_num_threads(g_cfgs[c].threads);
    ck_simd_set_level(g_cfgs[c].level);
    ck_cpu_set_thread_simd_enabled(g_cfgs[c].simd);
}
// A configuration's level and switch in one number (for "same setting" checks).
static int setting(int c) { return g_cfgs[c].level * 2 + g_cfgs[c].simd; }
// Runs the statement after it once per configuration.
#define EACH_CONFIG for (int cfg_ = 0; cfg_ < g_ncfg && (use_config(cfg_), 1); cfg_++)

static const char *g_family;
static char g_case[112];
static double g_worst;
static int g_bad, g_cases, g_failed;
typedef struct { const char *what; int setting; uint64_t hash; } seen;
static seen g_seen[48];   // the first result of each output per level and switch
static int g_nseen;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}

static void case_begin(const char *family, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_case, sizeof g_case, fmt, ap);
    va_end(ap);
    g_family = family;
    g_worst = 0;
    g_bad = 0;
    g_nseen = 0;
}

static void case_end(void) {
    g_cases++;
    g_failed += g_bad != 0;
    printf("  %-10s %-56s %s  worst %.3g of tol\n", g_family, g_case, g_bad ? "FAIL" : "ok  ", g_worst);
    for (int i = 0; i < g_narena; i++) free(g_arena[i]);
    g_narena = 0;
}

static void fail(const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("    FAIL %s %s [%d thread(s), %s%s]: ", g_family, what, g_cfgs[g_cfg].threads, ck_simd_name(g_cfgs[g_cfg].level),
           g_cfgs[g_cfg].simd ? "" : ", scalar twins");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    g_bad++;
}

// got[i] against ref[i]: |got - ref| <= tol * scale[i], or with scale NULL tol * max(floor,
// max |ref|) (the image tests' error relative to the result's scale). NaN passes only against
// NaN, an infinite reference only when met exactly. Then the thread check: the output's bits
// must equal those of the first configuration with the same level and switch.
static void check(const char *what, int64_t n, const float *got, const double *ref, const double *scale, double tol,
                  double floor) {
    double norm = floor;
    if (!scale)
        for (int64_t i = 0; i < n; i++) norm = fmax(norm, fabs(ref[i]));
    double worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i], e = fabs(g - r), ratio;
        if (isnan(r) || isnan(g) || isinf(r)) ratio = (isnan(r) && isnan(g)) || g == r ? 0 : INFINITY;
        else ratio = e == 0 ? 0 : e / (tol * (scale ? scale[i] : norm));
        if (!(ratio <= worst)) { worst = ratio; at = i; }
    }
    if (worst > g_worst) g_worst = worst;
    if (!(worst <= 1)) fail(what, "element %lld is %.9g, reference %.9g: %.3g x the tolerance", (long long)at, got[at], ref[at], worst);
    uint64_t h = fnv(0xcbf29ce484222325ull, got, (size_t)n * sizeof(float));
    const int set = setting(g_cfg);
    for (int i = 0; i < g_nseen; i++)
        if (g_seen[i].setting == set && strcmp(g_seen[i].what, what) == 0) {
            if (g_seen[i].hash != h) fail(what, "not the bits of 1 thread");
            return;
        }
    if (g_nseen < 48) g_seen[g_nseen++] = (seen){what, set, h};
}

// Bit-exact outputs: tolerance 0.
static void check_exact(const char *what, int64_t n, const float *got, const float *want) {
    check(what, n, got, dv(want, n), NULL, 0x1p-1074, 1e-300);
}

// ---- activations ----

// The values: the library's naive libm reference (ck_act_forward_ref, the Swift tests' oracle);
// the derivatives in double here.
static double act_dref(double x, int act) {
    double s = 1 / (1 + exp(-x)), t = tanh(x);
    switch (act) {
    case CK_ACT_RELU: return x > 0;
    case CK_ACT_SILU: return s * (1 + x * (1 - s));
    case CK_ACT_GELU: return 0.5 * (1 + erf(x * 0.70710678118654752)) + x * 0.39894228040143268 * exp(-0.5 * x * x);
    case CK_ACT_TANH: return 1 - t * t;
    case CK_ACT_SIGMOID: return s * (1 - s);
    case CK_ACT_SOFTPLUS: return s;
    default: return 1;
    }
}

// Forward: 2e-6 relative (the AVX2 exp polynomial), 1e-30 absolute; backward, accumulating:
// 1e-5 relative, 1e-6 absolute.
static void t_activation(int act, int64_t n) {
    case_begin("activation", "act %d n %lld fwd+bwd", act, (long long)n);
    float *x = fr(n, -12, 12), *dy = fr(n, -1, 1), *dx0 = fr(n, -1, 1);
    const float extremes[] = {0, -0.0f, 1e-8f, -1e-8f, 88, -88, 100, -100, 30, -30};
    for (int i = 0; i < 10 && i < n; i++) x[i] = extremes[i];
    double *y = dz(n), *ys = dz(n), *dx = dz(n), *dxs = dz(n);
    float *yf = fz(n);
    ck_act_forward_ref(yf, x, n, act);
    for (int64_t i = 0; i < n; i++) {
        y[i] = yf[i];
        ys[i] = fabs(y[i]) + 1e-30 / 2e-6;
        dx[i] = dx0[i] + dy[i] * act_dref(x[i], act);
        dxs[i] = fabs(dx[i]) + 1e-6 / 1e-5;
    }
    EACH_CONFIG {
        float *got = fz(n), *g1 = fc(dx0, n), *g2 = fc(dx0, n);
        ck_act_forward(got, x, n, act);
        check("y", n, got, y, ys, 2e-6, 0);
        ck_act_backward(g1, dy, x, NULL, n, act);
        ck_act_backward(g2, dy, x, yf, n, act);
        check("dx", n, g1, dx, dxs, 1e-5, 0);
        check("dx given y", n, g2, dx, dxs, 1e-5, 0);
    }
    case_end();
}

// ---- elementwise: broadcast binary ops, unary math, affine/axpy ----

static double bin_ref(double a, double b, int op, int which) {   // which: 0 value, 1 d/da, 2 d/db
    switch (op) {
    case CK_BIN_ADD: return which == 0 ? a + b : 1;
    case CK_BIN_SUB: return which == 0 ? a - b : which == 1 ? 1 : -1;
    case CK_BIN_MUL: return which == 0 ? a * b : which == 1 ? b : a;
    case CK_BIN_DIV: return which == 0 ? a / b : which == 1 ? 1 / b : -a / (b * b);
    case CK_BIN_MAX: return which == 0 ? (a >= b ? a : b) : which == 1 ? a >= b : a < b;
    default: return which == 0 ? (a <= b ? a : b) : which == 1 ? a <= b : a > b;
    }
}

// y = a op b exactly rounded (1e-7 relative); gradients within 5 roundings of |start| + |term|.
static void t_binary(int op, int ndim, const int64_t *shape, const int64_t *as, const int64_t *bs) {
    int64_t n = 1, na = 1, nb = 1;
    for (int d = 0; d < ndim; d++) { n *= shape[d]; na += (shape[d] - 1) * as[d]; nb += (shape[d] - 1) * bs[d]; }
    char dims[64] = "", *e = dims;
    for (int d = 0; d < ndim; d++) e += sprintf(e, "%s%lld/%lld,%lld", d ? " x " : "", (long long)shape[d], (long long)as[d], (long long)bs[d]);
    case_begin("binary", "op %d %s fwd+bwd", op, dims);
    float *a = fr(na, -1, 1), *b = fr(nb, -1, 1), *dy = fr(n, -1, 1), *ga0 = fr(n, -1, 1), *gb0 = fr(n, -1, 1);
    for (int64_t i = 0; i < nb; i++) b[i] += b[i] >= 0 ? 0.5f : -0.5f;   // away from 0 (division)
    double *y = dz(n), *ga = dz(n), *gb = dz(n), *gas = dz(n), *gbs = dz(n);
    for (int64_t k = 0; k < n; k++) {
        int64_t r = k, ao = 0, bo = 0;
        for (int d = ndim - 1; d >= 0; d--) { ao += r % shape[d] * as[d]; bo += r % shape[d] * bs[d]; r /= shape[d]; }
        double ta = dy[k] * bin_ref(a[ao], b[bo], op, 1), tb = dy[k] * bin_ref(a[ao], b[bo], op, 2);
        y[k] = (float)bin_ref(a[ao], b[bo], op, 0);
        ga[k] = ga0[k] + ta; gas[k] = fabs(ga0[k]) + fabs(ta);
        gb[k] = gb0[k] + tb; gbs[k] = fabs(gb0[k]) + fabs(tb);
    }
    EACH_CONFIG {
        float *got = fz(n), *g1 = fc(ga0, n), *g2 = fc(gb0, n);
        ck_binary_forward(got, a, as, b, bs, shape, ndim, op);
        check("y", n, got, y, dabs(got, n), 1e-7, 0);
        ck_binary_backward(g1, g2, 1, dy, a, as, b, bs, shape, ndim, op);
        check("ga", n, g1, ga, gas, 5 * U, 0);
        check("gb", n, g2, gb, gbs, 5 * U, 0);
    }
    case_end();
}

// Unary ops: libm's float results (the same calls, so 1e-7 relative); backward 5 roundings.
static void t_unary(int op, int64_t n) {
    case_begin("unary", "op %d n %lld fwd+bwd", op, (long long)n);
    float *x = fr(n, 0.1f, 4), *dy = fr(n, -1, 1), *dx0 = fr(n, -1, 1);
    if (op == CK_UN_NEG || op == CK_UN_ABS || op == CK_UN_SIN || op == CK_UN_COS || op == CK_UN_SQUARE)
        for (int64_t i = 0; i < n; i++) x[i] = x[i] * (i % 2 ? 1 : -1);
    double *y = dz(n), *ys = dz(n), *dx = dz(n), *dxs = dz(n);
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        const float f[] = {-v, expf(v), logf(v), sqrtf(v), v * v, fabsf(v), sinf(v), cosf(v), 1.0f / v};
        const double d[] = {-1, exp(v), 1.0 / v, 0.5 / sqrt(v), 2.0 * v, (v > 0) - (v < 0), cos(v), -sin(v), -1.0 / ((double)v * v)};
        y[i] = f[op];
        ys[i] = fabs(y[i]) + 1e-30;
        dx[i] = dx0[i] + dy[i] * d[op];
        dxs[i] = fabs(dx0[i]) + fabs(dy[i] * d[op]);
    }
    EACH_CONFIG {
        float *got = fz(n), *g = fc(dx0, n);
        ck_unary_forward(got, x, n, op);
        check("y", n, got, y, ys, 1e-7, 0);
        ck_unary_backward(g, dy, x, NULL, n, op);
        check("dx", n, g, dx, dxs, 5 * U, 0);
    }
    case_end();
}

// y = a x + b and y += a x: 2 roundings of the terms' magnitudes; fill exact.
static void t_affine(int64_t n) {
    case_begin("elementwise", "affine, axpy, fill n %lld", (long long)n);
    float *x = fr(n, -1, 1), *y0 = fr(n, -1, 1), al = 0.75f, be = -0.3f;
    double *r1 = dz(n), *s1 = dz(n), *r2 = dz(n), *s2 = dz(n);
    for (int64_t i = 0; i < n; i++) {
        r1[i] = (double)al * x[i] + be; s1[i] = fabs((double)al * x[i]) + fabs(be);
        r2[i] = y0[i] + (double)al * x[i]; s2[i] = fabs(y0[i]) + fabs((double)al * x[i]);
    }
    EACH_CONFIG {
        float *a = fz(n), *b = fc(y0, n), *c = fz(n), *w = fz(n);
        ck_affine(a, x, n, al, be);
        check("affine", n, a, r1, s1, 2 * U, 0);
        ck_axpy(b, x, n, al);
        check("axpy", n, b, r2, s2, 2 * U, 0);
        ck_fill(c, n, be);
        for (int64_t i = 0; i < n; i++) w[i] = be;
        check_exact("fill", n, c, w);
    }
    case_end();
}

// ---- reductions over [outer, r, inner] ----

// Sums (alpha 0.5, accumulated onto 2) of values in [-1, 1]: 5e-4 absolute (8-lane float sums
// against double). max exact; logsumexp 2 roundings of |y| + 2 log r + 1; softmax 1e-5
// relative, 1e-7 absolute; backward passes 5 and 4 roundings of |start| + |terms|, from the
// kernel's own forward outputs. Logits in [-30, 30], one in 17 masked (-inf).
static void t_reduce(int64_t o, int64_t r, int64_t in) {
    case_begin("reduce", "%lldx%lldx%lld sum max lse softmax", (long long)o, (long long)r, (long long)in);
    const int64_t n = o * r * in, m = o * in;
    float *xs = fr(n, -1, 1), *x = fr(n, -30, 30), *dy = fr(m, -1, 1), *dyf = fr(n, -1, 1), *dx0 = fr(n, -1, 1);
    for (int64_t k = 0; k < n; k++) if (k % 17 == 5) x[k] = -INFINITY;
    double *sum = dz(m), *sums = dz(m), *mx = dz(m), *lse = dz(m), *lses = dz(m), *sm = dz(n), *sms = dz(n);
    for (int64_t l = 0; l < m; l++) {
        const int64_t base = l / in * r * in + l % in;
        if (r) x[base] = 0.5f;   // no line entirely masked
        double s = 0, M = -INFINITY, e = 0;
        for (int64_t k = 0; k < r; k++) { s += xs[base + k * in]; M = fmax(M, x[base + k * in]); }
        for (int64_t k = 0; k < r; k++) e += exp(x[base + k * in] - M);
        sum[l] = 2 + 0.5 * s;
        sums[l] = 5e-4 + 1e-6 * fabs(sum[l]);
        mx[l] = M;
        lse[l] = M == -INFINITY ? M : M + log(e);
        lses[l] = fabs(lse[l]) + 2 * log(fmax((double)r, 1)) + 1;
        for (int64_t k = 0; k < r; k++) {
            sm[base + k * in] = exp(x[base + k * in] - M) / e;
            sms[base + k * in] = sm[base + k * in] + 1e-7 / 1e-5;
        }
    }
    EACH_CONFIG {
        float *y = fz(m), *ym = fz(m), *yl = fz(m), *ys = fz(n), *dxl = fc(dx0, n), *dxs = fc(dx0, n);
        for (int64_t l = 0; l < m; l++) y[l] = 2;
        ck_reduce_sum(y, xs, o, r, in, 0.5f, 1);
        check("sum", m, y, sum, sums, 1, 0);
        ck_reduce_max(ym, x, o, r, in);
        check("max", m, ym, mx, NULL, 0x1p-1074, 1e-300);
        ck_logsumexp_forward(yl, x, o, r, in);
        check("logsumexp", m, yl, lse, lses, 2 * U, 0);
        ck_softmax_forward(ys, x, o, r, in);
        check("softmax", n, ys, sm, sms, 1e-5, 0);
        double *rl = dv(dx0, n), *rls = dabs(dx0, n), *rs = dv(dx0, n), *rss = dabs(dx0, n);
        for (int64_t l = 0; l < m; l++) {
            const int64_t base = l / in * r * in + l % in;
            double dot = 0;
            for (int64_t k = 0; k < r; k++) dot += (double)dyf[base + k * in] * ys[base + k * in];
            for (int64_t k = 0; k < r; k++) {
                const int64_t i = base + k * in;
                rls[i] += fabs(dy[l]);
                if (isfinite(yl[l])) rl[i] += dy[l] * exp((double)x[i] - yl[l]);
                rs[i] += ys[i] * (dyf[i] - dot);
                rss[i] += fabs(ys[i]) * (fabs(dyf[i]) + fabs(dot));
            }
        }
        ck_logsumexp_backward(dxl, dy, x, yl, o, r, in);
        check("logsumexp backward", n, dxl, rl, rls, 5 * U, 0);
        ck_softmax_backward(dxs, dyf, ys, o, r, in);
        check("softmax backward", n, dxs, rs, rss, 4 * U, 0);
    }
    case_end();
}

// ---- GEMM and the fused linear layer (OpenBLAS stripes over the pool) ----

// C = alpha op(A) op(B) + beta C in double; 1e-4 relative, 1e-4 absolute (1e-3 past K = 1000).
static void gemm_ref(double *c, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha, const float *A,
                     const float *B, double beta, const float *C0) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
            c[i * N + j] = alpha * s + beta * C0[i * N + j];
        }
}

static void t_gemm(int64_t M, int64_t N, int64_t K, int ta, int tb, int64_t batch) {
    case_begin("gemm", "%lldx%lldx%lld ta %d tb %d batch %lld", (long long)M, (long long)N, (long long)K, ta, tb, (long long)batch);
    float *A = fr(batch * M * K, -1, 1), *B = fr(batch * K * N, -1, 1), *C0 = fr(batch * M * N, -1, 1);
    double *ref = dz(batch * M * N), *sc = dz(batch * M * N), atol = K > 1000 ? 1e-3 : 1e-4;
    for (int64_t b = 0; b < batch; b++) gemm_ref(ref + b * M * N, ta, tb, M, N, K, 0.5, A + b * M * K, B + b * K * N, -1, C0 + b * M * N);
    for (int64_t i = 0; i < batch * M * N; i++) sc[i] = fabs(ref[i]) + atol / 1e-4;
    EACH_CONFIG {
        float *C = fc(C0, batch * M * N);
        if (batch == 1) {
            float *ws = fz(ck_gemm_workspace_floats(M, N, K));   // K split where the plan has one
            ck_gemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, -1, C, N, ws);
        } else {
            ck_gemm_batched(ta, tb, M, N, K, 0.5f, A, ta ? M : K, M * K, B, tb ? K : N, K * N, -1, C, N, M * N, batch);
        }
        check("C", batch * M * N, C, ref, sc, 1e-4, 0);
    }
    case_end();
}

// y = act(x W^T + b); backward dx += dz W, dw += dz^T x, db += sum dz, dz = dy act'(z):
// 1e-4 relative, 1e-4 absolute.
static void t_linear(int64_t B, int64_t IN, int64_t OUT, int act) {
    case_begin("linear", "B %lld IN %lld OUT %lld act %d fwd+bwd", (long long)B, (long long)IN, (long long)OUT, act);
    float *x = fr(B * IN, -1, 1), *w = fr(OUT * IN, -1, 1), *b = fr(OUT, -1, 1), *dy = fr(B * OUT, -1, 1);
    float *dx0 = fr(B * IN, -1, 1), *dw0 = fr(OUT * IN, -1, 1), *db0 = fr(OUT, -1, 1);
    float *zf = fz(B * OUT), *yf = fz(B * OUT);
    double *y = dz(B * OUT), *g = dz(B * OUT), *dx = dv(dx0, B * IN), *dw = dv(dw0, OUT * IN), *db = dv(db0, OUT);
    for (int64_t i = 0; i < B; i++)
        for (int64_t o = 0; o < OUT; o++) {
            double s = b[o];
            for (int64_t k = 0; k < IN; k++) s += (double)x[i * IN + k] * w[o * IN + k];
            zf[i * OUT + o] = (float)s;
            g[i * OUT + o] = dy[i * OUT + o] * act_dref(s, act);
            db[o] += g[i * OUT + o];
            for (int64_t k = 0; k < IN; k++) {
                dx[i * IN + k] += g[i * OUT + o] * w[o * IN + k];
                dw[o * IN + k] += g[i * OUT + o] * x[i * IN + k];
            }
        }
    double *all = dz(B * OUT + B * IN + OUT * IN + OUT), *sc = dz(B * OUT + B * IN + OUT * IN + OUT);
    memcpy(all, dx, (size_t)(B * IN) * sizeof(double));
    memcpy(all + B * IN, dw, (size_t)(OUT * IN) * sizeof(double));
    memcpy(all + B * IN + OUT * IN, db, (size_t)OUT * sizeof(double));
    for (int64_t i = 0; i < B * IN + OUT * IN + OUT; i++) sc[i] = fabs(all[i]) + 1;
    double *ysc = dz(B * OUT);
    ck_act_forward_ref(yf, zf, B * OUT, act);
    for (int64_t i = 0; i < B * OUT; i++) { y[i] = yf[i]; ysc[i] = fabs(y[i]) + 1; }
    EACH_CONFIG {
        float *yg = fz(B * OUT), *zg = fz(B * OUT), *ws = fz(ck_linear_backward_workspace_floats(B, IN, OUT, act));
        float *grads = fz(B * IN + OUT * IN + OUT);
        memcpy(grads, dx0, (size_t)(B * IN) * sizeof(float));
        memcpy(grads + B * IN, dw0, (size_t)(OUT * IN) * sizeof(float));
        memcpy(grads + B * IN + OUT * IN, db0, (size_t)OUT * sizeof(float));
        ck_linear_forward(yg, zg, x, w, b, B, IN, OUT, act);
        check("y", B * OUT, yg, y, ysc, 1e-4, 0);
        ck_linear_backward(grads, grads + B * IN, grads + B * IN + OUT * IN, ws, 0, dy, zg, yg, x, w, B, IN, OUT, act);
        check("dx dw db", B * IN + OUT * IN + OUT, grads, all, sc, 1e-4, 0);
    }
    case_end();
}

// ---- normalization ----

// LayerNorm forward within 1e-5 of 1 + |y|; backward (accumulating) within 16 roundings of
// |dx0| + rstd (|dh| + mean |dh| + |h| mean |dh h|) for dx and N + 3 roundings of |start| +
// sum |terms| for dgamma, dbeta, from the kernel's own mean and rstd.
static void t_layernorm(int64_t N, int64_t D) {
    case_begin("layernorm", "N %lld D %lld fwd+bwd", (long long)N, (long long)D);
    float *x = fr(N * D, -3, 5), *ga = fr(D, -1, 1), *be = fr(D, -1, 1), *dy = fr(N * D, -1, 1);
    float *g0 = fr(N * D + 2 * D, -1, 1);   // dx, dgamma, dbeta to accumulate onto
    double *y = dz(N * D), *ys = dz(N * D);
    for (int64_t r = 0; r < N; r++) {
        double mu = 0, var = 0;
        for (int64_t c = 0; c < D; c++) mu += x[r * D + c] / (double)D;
        for (int64_t c = 0; c < D; c++) var += (x[r * D + c] - mu) * (x[r * D + c] - mu) / (double)D;
        for (int64_t c = 0; c < D; c++) {
            y[r * D + c] = (x[r * D + c] - mu) / sqrt(var + 1e-5) * ga[c] + be[c];
            ys[r * D + c] = 1 + fabs(y[r * D + c]);
        }
    }
    EACH_CONFIG {
        float *yg = fz(N * D), *mean = fz(N), *rstd = fz(N), *g = fc(g0, N * D + 2 * D);
        ck_layernorm_forward(yg, mean, rstd, x, ga, be, N, D, 1e-5f);
        check("y", N * D, yg, y, ys, 1e-5, 0);
        double *ref = dv(g0, N * D + 2 * D), *sc = dabs(g0, N * D + 2 * D);
        for (int64_t r = 0; r < N; r++) {
            double a = 0, c = 0, aa = 0, ca = 0, rs = rstd[r];
            for (int64_t i = 0; i < D; i++) {
                double h = (x[r * D + i] - (double)mean[r]) * rs, dh = (double)dy[r * D + i] * ga[i];
                a += dh / D; c += dh * h / D; aa += fabs(dh) / D; ca += fabs(dh * h) / D;
            }
            for (int64_t i = 0; i < D; i++) {
                double h = (x[r * D + i] - (double)mean[r]) * rs, dh = (double)dy[r * D + i] * ga[i];
                ref[r * D + i] += rs * (dh - a - h * c);
                sc[r * D + i] = 16 * (sc[r * D + i] + rs * (fabs(dh) + aa + fabs(h) * ca));
                ref[N * D + i] += dy[r * D + i] * h;
                sc[N * D + i] += fabs(dy[r * D + i] * h);
                ref[N * D + D + i] += dy[r * D + i];
                sc[N * D + D + i] += fabs(dy[r * D + i]);
            }
        }
        for (int64_t i = N * D; i < N * D + 2 * D; i++) sc[i] *= (double)(N + 3);
        ck_layernorm_backward(g, g + N * D, g + N * D + D, dy, x, ga, mean, rstd, N, D);
        check("dx dgamma dbeta", N * D + 2 * D, g, ref, sc, U, 0);
    }
    case_end();
}

// GroupNorm + scale-shift + activation in double (ck_groupnorm.h's formulas): y within 3e-6,
// mean 1e-6, rstd 1e-5 of the largest reference magnitude; the gradients (accumulating, from
// the kernel's own mean and rstd) within 2e-5. scale/shift packed as (N, 2C) or as two (N, C).
static double act_dd(double z, int act) {   // the activation in double
    switch (act) {
    case CK_ACT_SILU: return z / (1 + exp(-z));
    case CK_ACT_GELU: return 0.5 * z * (1 + erf(z * 0.70710678118654752));
    default: return z;
    }
}

static void t_groupnorm(int64_t N, int64_t C, int64_t HW, int64_t G, int act, int affine, int packed) {
    case_begin("groupnorm", "N %lld C %lld HW %lld G %lld act %d%s%s", (long long)N, (long long)C, (long long)HW, (long long)G,
               act, affine ? " affine" : "", packed ? " packed" : " no scale-shift");
    const int64_t n = N * C * HW, Cg = C / G, M = Cg * HW, ld = 2 * C, ng = N + 2 * C + 2 * N * ld;
    float *x = fr(n, 1, 5), *ga = affine ? fr(C, -1, 1) : NULL, *be = affine ? fr(C, -1, 1) : NULL;
    float *emb = packed ? fr(N * ld, -0.5f, 0.5f) : NULL, *sc = emb, *sh = packed ? emb + C : NULL, *dy = fr(n, -1, 1);
    float *g0 = fr(n + ng, -1, 1);   // dx, dgamma, dbeta, demb (N, 2C) to accumulate onto
    double *y = dz(n), *mean = dz(N * G), *rstd = dz(N * G);
#define GN_PAR(nn, c) double gm = ga ? ga[c] : 1, bt = be ? be[c] : 0, u = 1 + (sc ? sc[(nn) * ld + (c)] : 0), \
                             sf = sh ? sh[(nn) * ld + (c)] : 0
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t g = 0; g < G; g++) {
            const float *xg = x + (nn * C + g * Cg) * HW;
            double s = 0, v = 0;
            for (int64_t i = 0; i < M; i++) s += xg[i];
            for (int64_t i = 0; i < M; i++) v += (xg[i] - s / M) * (xg[i] - s / M);
            mean[nn * G + g] = s / M;
            rstd[nn * G + g] = 1 / sqrt(v / M + 1e-5);
            for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
                GN_PAR(nn, c);
                for (int64_t i = 0; i < HW; i++) {
                    const int64_t k = (nn * C + c) * HW + i;
                    y[k] = act_dd(((x[k] - mean[nn * G + g]) * rstd[nn * G + g] * gm + bt) * u + sf, act);
                }
            }
        }
    EACH_CONFIG {
        float *yg = fz(n), *mg = fz(N * G), *rg = fz(N * G), *grad = fc(g0, n + ng);
        float *ws = fz(ck_groupnorm_backward_workspace_floats(N, C, HW, G));
        ck_groupnorm_forward(yg, mg, rg, x, ga, be, sc, sh, N, C, HW, G, ld, 1e-5f, act);
        check("y", n, yg, y, NULL, 3e-6, 1e-30);
        check("mean", N * G, mg, mean, NULL, 1e-6, 1e-30);
        check("rstd", N * G, rg, rstd, NULL, 1e-5, 1e-30);
        // reference gradients from the kernel's mean and rstd: dz = dy act'(z), S1 = sum dz,
        // S2 = sum dz xhat per (n, c); dx = rstd (u gamma dz - mean(u gamma S1) - xhat mean(u gamma S2))
        double *rx = dv(g0, n), *rg2 = dv(g0 + n, ng), *S1 = dz(N * C), *S2 = dz(N * C);
        for (int64_t nn = 0; nn < N; nn++)
            for (int64_t g = 0; g < G; g++) {
                const double mu = mg[nn * G + g], rs = rg[nn * G + g];
                double m1 = 0, m2 = 0;
                for (int pass = 0; pass < 2; pass++)
                    for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
                        GN_PAR(nn, c);
                        for (int64_t i = 0; i < HW; i++) {
                            const int64_t k = (nn * C + c) * HW + i;
                            const double xh = (x[k] - mu) * rs, z = (xh * gm + bt) * u + sf;
                            const double dzv = dy[k] * act_dref(z, act);
                            if (pass == 0) { S1[nn * C + c] += dzv; S2[nn * C + c] += dzv * xh; }
                            else rx[k] += rs * (u * gm * dzv - m1 - xh * m2);
                        }
                        if (pass == 0) { m1 += u * gm * S1[nn * C + c] / M; m2 += u * gm * S2[nn * C + c] / M; }
                    }
            }
        for (int64_t nn = 0; nn < N; nn++)
            for (int64_t c = 0; c < C; c++) {
                GN_PAR(nn, c);
                (void)sf;
                if (affine) {
                    rg2[c] += u * S2[nn * C + c];       // dgamma
                    rg2[C + c] += u * S1[nn * C + c];   // dbeta
                }
                if (packed) {
                    rg2[2 * C + nn * ld + c] += gm * S2[nn * C + c] + bt * S1[nn * C + c];   // dscale
                    rg2[2 * C + nn * ld + C + c] += S1[nn * C + c];                          // dshift
                }
            }
#undef GN_PAR
        float *gx = grad, *gg = grad + n, *gb = gg + C, *ge = gb + C;
        ck_groupnorm_backward(gx, ga ? gg : NULL, be ? gb : NULL, packed ? ge : NULL, packed ? ge + C : NULL, ws, 0, dy, x, ga, be,
                              sc, sh, mg, rg, N, C, HW, G, ld, act);
        check("dx", n, gx, rx, NULL, 2e-5, 1e-30);
        check("dgamma dbeta demb", ng, gg, rg2, NULL, 2e-5, 1e-30);
    }
    case_end();
}

// ---- convolution: a direct loop over the taps as the reference ----

// y = conv(x, w) + b, dx += ..., dw += ..., db += ... (then the same with the SET flags into
// garbage): within 2e-6 of the largest reference magnitude.
static void t_conv(int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t K, int64_t s, int64_t p) {
    case_begin("conv", "N%lld Cin%lld %lldx%lld Cout%lld K%lld s%lld p%lld fwd+bwd", (long long)N, (long long)Ci, (long long)H,
               (long long)W, (long long)Co, (long long)K, (long long)s, (long long)p);
    const int64_t Ho = ck_conv2d_out_size(H, K, s, p), Wo = ck_conv2d_out_size(W, K, s, p);
    const int64_t nx = N * Ci * H * W, nw = Co * Ci * K * K, ny = N * Co * Ho * Wo, ng = nx + nw + Co;
    float *x = fr(nx, -1, 1), *w = fr(nw, -0.5f, 0.5f), *b = fr(Co, -1, 1), *dy = fr(ny, -1, 1), *g0 = fr(ng, -1, 1);
    double *y = dz(ny), *gz = dz(ng), *ga = dz(ng);   // gradients from zero, and accumulated onto g0
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Co; co++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    const int64_t o = ((n * Co + co) * Ho + oy) * Wo + ox;
                    y[o] = b[co];
                    gz[nx + nw + co] += dy[o];
                    for (int64_t ci = 0; ci < Ci; ci++)
                        for (int64_t ky = 0; ky < K; ky++)
                            for (int64_t kx = 0; kx < K; kx++) {
                                const int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const int64_t xi = ((n * Ci + ci) * H + iy) * W + ix, wi = ((co * Ci + ci) * K + ky) * K + kx;
                                y[o] += (double)w[wi] * x[xi];
                                gz[xi] += (double)w[wi] * dy[o];
                                gz[nx + wi] += (double)x[xi] * dy[o];
                            }
                }
    for (int64_t i = 0; i < ng; i++) ga[i] = gz[i] + g0[i];
    EACH_CONFIG {   // the workspace sizes follow the level's engines: asked for in each configuration
        const int64_t wsf = ck_conv2d_forward_workspace_floats(N, Ci, H, W, Co, K, s, p);
        const int64_t wsb = ck_conv2d_backward_workspace_floats(N, Ci, H, W, Co, K, s, p);
        float *yg = fz(ny), *ws = fz(wsf > wsb ? wsf : wsb), *acc = fc(g0, ng), *set = fz(ng);
        for (int64_t i = 0; i < ng; i++) set[i] = 1e30f;
        ck_conv2d_forward(yg, x, w, b, ws, N, Ci, H, W, Co, K, s, p);
        check("y", ny, yg, y, NULL, 2e-6, 1e-30);
        ck_conv2d_backward(acc, acc + nx, acc + nx + nw, ws, 0, dy, x, w, N, Ci, H, W, Co, K, s, p);
        check("dx", nx, acc, ga, NULL, 2e-6, 1e-30);
        check("dw", nw, acc + nx, ga + nx, NULL, 2e-6, 1e-30);
        check("db", Co, acc + nx + nw, ga + nx + nw, NULL, 2e-6, 1e-30);
        ck_conv2d_backward(set, set + nx, set + nx + nw, ws, CK_CONV_SET_DX | CK_CONV_SET_DW | CK_CONV_SET_DB, dy, x, w, N, Ci, H, W,
                           Co, K, s, p);
        check("dx set", nx, set, gz, NULL, 2e-6, 1e-30);
        check("dw db set", nw + Co, set + nx, gz + nx, NULL, 2e-6, 1e-30);
    }
    case_end();
}

// ---- attention ----

// Per head in double: S = scale q k^T, P = softmax rows, o = P v, lse; dP = dO v^T, Delta =
// rowsum(P dP), dS = P (dP - Delta), dq = scale dS k, dk = scale dS^T q, dv = P^T dO. o within
// 3e-6 (x20 for logits in the hundreds), lse 1e-6, fresh gradients 1e-5 (x20) of max(1, |ref|).
static void t_attention(int64_t B, int64_t H, int64_t T, int64_t D, float logit) {
    case_begin("attention", "B%lld H%lld T%lld D%lld logits x%g fwd+bwd", (long long)B, (long long)H, (long long)T, (long long)D,
               logit);
    const int64_t n = B * H * T * D, nl = B * H * T;
    const float scale = 1 / sqrtf((float)D);
    const double loose = logit > 1 ? 20 : 1;
    float *q = fr(n, -logit, logit), *k = fr(n, -logit, logit), *v = fr(n, -1, 1), *dO = fr(n, -1, 1);
    double *o = dz(n), *lse = dz(nl), *gr = dz(3 * n), *P = dz(T * T), *dS = dz(T * T);
    for (int64_t bh = 0; bh < B * H; bh++) {
        const float *Q = q + bh * T * D, *K = k + bh * T * D, *V = v + bh * T * D, *G = dO + bh * T * D;
        double *dq = gr + bh * T * D, *dk = gr + n + bh * T * D, *dv = gr + 2 * n + bh * T * D;
        for (int64_t i = 0; i < T; i++) {
            double m = -INFINITY, sum = 0, delta = 0;
            for (int64_t j = 0; j < T; j++) {
                double sij = 0;
                for (int64_t d = 0; d < D; d++) sij += (double)Q[i * D + d] * K[j * D + d];
                P[i * T + j] = scale * sij;
                m = fmax(m, P[i * T + j]);
            }
            for (int64_t j = 0; j < T; j++) sum += exp(P[i * T + j] - m);
            lse[bh * T + i] = m + log(sum);
            for (int64_t j = 0; j < T; j++) {
                double dp = 0;
                P[i * T + j] = exp(P[i * T + j] - lse[bh * T + i]);
                for (int64_t d = 0; d < D; d++) dp += (double)G[i * D + d] * V[j * D + d];
                dS[i * T + j] = dp;
                delta += P[i * T + j] * dp;
                for (int64_t d = 0; d < D; d++) o[(bh * T + i) * D + d] += P[i * T + j] * V[j * D + d];
            }
            for (int64_t j = 0; j < T; j++) dS[i * T + j] = P[i * T + j] * (dS[i * T + j] - delta);
        }
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j < T; j++)
                for (int64_t d = 0; d < D; d++) {
                    dq[i * D + d] += scale * dS[i * T + j] * K[j * D + d];
                    dk[j * D + d] += scale * dS[i * T + j] * Q[i * D + d];
                    dv[j * D + d] += P[i * T + j] * G[i * D + d];
                }
    }
    EACH_CONFIG {
        float *og = fz(n), *lg = fz(nl), *g = fz(3 * n);
        ck_attention_forward(og, lg, q, k, v, B, H, T, D, scale);
        check("o", n, og, o, NULL, 3e-6 * loose, 1e-30);
        check("lse", nl, lg, lse, NULL, 1e-6, 1e-30);
        ck_attention_backward(g, g + n, g + 2 * n, dO, q, k, v, og, lg, B, H, T, D, scale);
        check("dq", n, g, gr, NULL, 1e-5 * loose, 1);
        check("dk", n, g + n, gr + n, NULL, 1e-5 * loose, 1);
        check("dv", n, g + 2 * n, gr + 2 * n, NULL, 1e-5 * loose, 1);
    }
    case_end();
}

// ---- Philox random numbers ----

// Random123's known answers; uniforms lo + (hi - lo) u24 of the documented words (2 roundings);
// normals the Box-Muller transform of the documented words in double, within 8e-7 of
// max(1, |z|), at offsets across a carry into the counter's high word.
static void t_philox(void) {
    case_begin("philox", "known answers");
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int c = 0; c < 3; c++) {
        uint32_t out[4];
        ck_philox4x32_10(out, kat[c], kat[c] + 4);
        if (memcmp(out, kat[c] + 6, sizeof out) != 0) fail("block", "vector %d: %08x %08x %08x %08x", c, out[0], out[1], out[2], out[3]);
    }
    case_end();
}

static void t_random(uint64_t offset, int64_t n) {
    case_begin("random", "offset %llu n %lld uniform+normal", (unsigned long long)offset, (long long)n);
    double *u = dz(n), *us = dz(n), *z = dz(n), *zs = dz(n);
    for (int64_t i = 0; i < n; i++) {
        const uint64_t pos = offset + (uint64_t)i, blk = pos >> 2;
        const uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), 4, 0}, key[2] = {9, 0};
        uint32_t w[4];
        ck_philox4x32_10(w, ctr, key);
        const int lane = (int)(pos & 3), pair = lane & 2;
        u[i] = -2 + 6.0 * (w[lane] >> 8) / 16777216.0;
        us[i] = 2 + 6.0 * (w[lane] >> 8) / 16777216.0;
        const double u1 = ((w[pair] >> 8) + 1) / 16777216.0, u2 = (w[pair + 1] >> 8) / 16777216.0;
        const double r = sqrt(-2 * log(u1)), a = 2 * M_PI * u2;
        z[i] = lane & 1 ? r * sin(a) : r * cos(a);
        zs[i] = fmax(1, fabs(z[i]));
    }
    EACH_CONFIG {
        float *ug = fz(n), *zg = fz(n);
        ck_random_uniform(ug, n, 9, 4, offset, -2, 4);
        check("uniform", n, ug, u, us, 2 * U, 0);
        ck_random_normal(zg, n, 9, 4, offset, 0, 1);
        check("normal", n, zg, z, zs, 8e-7, 0);
    }
    case_end();
}

// ---- optimizer steps ----

// One Adam/AdamW step against the formula in double: p, m, v each within 32 roundings of its
// terms' magnitudes (the Swift test's bound and scales).
static void t_adam(int64_t n, int64_t step, int decoupled) {
    case_begin("optim", "adam n %lld step %lld decoupled %d", (long long)n, (long long)step, decoupled);
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f, gs = 0.5f;
    float *p0 = fr(n, -1, 1), *m0 = fr(n, -0.1f, 0.1f), *v0 = fr(n, 1e-3f, 1e-2f), *g = fr(n, -1, 1);
    double *ref = dz(3 * n), *sc = dz(3 * n);
    const double bc1 = 1 - pow(b1, (double)step), bc2 = 1 - pow(b2, (double)step), keep = decoupled ? 1 - (double)lr * wd : 1;
    const double l2 = decoupled ? 0 : wd;
    for (int64_t i = 0; i < n; i++) {
        const double p = p0[i], gi = (double)gs * g[i] + l2 * p, ga = fabs((double)gs * g[i]) + fabs(l2 * p);
        const double mi = b1 * (double)m0[i] + (1 - (double)b1) * gi, ms = fabs(b1 * (double)m0[i]) + (1 - (double)b1) * ga;
        const double vi = b2 * (double)v0[i] + (1 - (double)b2) * gi * gi, vs = b2 * (double)v0[i] + (1 - (double)b2) * ga * ga;
        const double size = lr / bc1 / (sqrt(vi / bc2) + eps);
        ref[i] = keep * p - size * mi; sc[i] = fabs(keep * p) + size * ms;
        ref[n + i] = mi; sc[n + i] = ms;
        ref[2 * n + i] = vi; sc[2 * n + i] = vs;
    }
    EACH_CONFIG {
        float *s = fz(3 * n);
        memcpy(s, p0, (size_t)n * 4); memcpy(s + n, m0, (size_t)n * 4); memcpy(s + 2 * n, v0, (size_t)n * 4);
        ck_adam_step(s, s + n, s + 2 * n, g, n, lr, b1, b2, eps, wd, decoupled, step, gs);
        check("p m v", 3 * n, s, ref, sc, 32 * U, 0);
    }
    case_end();
}

// One SGD step (PyTorch's formula) in double, p and buf within 16 roundings of the terms'
// magnitudes; one EMA update within 3 roundings.
static void t_sgd_ema(int64_t n, float mom, float damp, int nesterov, int first) {
    case_begin("optim", "sgd+ema n %lld mom %g damp %g nesterov %d first %d", (long long)n, mom, damp, nesterov, first);
    const float lr = 0.1f, wd = 0.01f, gs = 0.5f, decay = first ? 0.999f : 0.75f;
    float *p0 = fr(n, -1, 1), *b0 = fr(n, -1, 1), *g = fr(n, -1, 1);
    double *ref = dz(2 * n), *sc = dz(2 * n), *er = dz(n), *es = dz(n);
    for (int64_t i = 0; i < n; i++) {
        const double p = p0[i], gi = (double)gs * g[i] + (double)wd * p, ga = fabs((double)gs * g[i]) + fabs((double)wd * p);
        double d = gi, da = ga;
        ref[n + i] = b0[i];   // unused without momentum: unchanged
        if (mom != 0) {
            ref[n + i] = first ? gi : mom * (double)b0[i] + (1 - (double)damp) * gi;
            sc[n + i] = first ? ga : fabs(mom * (double)b0[i]) + (1 - (double)damp) * ga;
            d = nesterov ? gi + mom * ref[n + i] : ref[n + i];
            da = nesterov ? ga + mom * sc[n + i] : sc[n + i];
        }
        ref[i] = p - (double)lr * d;
        sc[i] = fabs(p) + (double)lr * da;
        er[i] = decay * (double)b0[i] + (1 - (double)decay) * p;
        es[i] = fabs(decay * (double)b0[i]) + fabs((1 - (double)decay) * p);
    }
    EACH_CONFIG {
        float *s = fz(2 * n), *e = fc(b0, n);
        memcpy(s, p0, (size_t)n * 4); memcpy(s + n, b0, (size_t)n * 4);
        ck_sgd_step(s, s + n, g, n, lr, mom, damp, wd, nesterov, first, gs);
        check("p buf", 2 * n, s, ref, sc, 16 * U, 0);
        ck_ema_update(e, p0, n, decay);
        check("ema", n, e, er, es, 3 * U, 0);
    }
    case_end();
}

// ---- the fused sampler step ----

// y = sum c_k in_k + std z, z the Philox normals at the same positions: 1e-6 relative and
// absolute; y may alias input 0 (checked in the last configuration's second call).
static void t_sampler(int64_t n, int k, float std) {
    case_begin("sampler", "combine n %lld inputs %d std %g", (long long)n, k, std);
    float *in = fr(8 * n, -1, 1), *c = fr(8, -2, 2), *z = fz(n);
    const float *ins[8];
    for (int q = 0; q < 8; q++) ins[q] = in + q * n;
    ck_random_normal(z, n, 7, 3, 11, 0, 1);
    double *ref = dz(n), *sc = dz(n);
    for (int64_t i = 0; i < n; i++) {
        for (int q = 0; q < k; q++) ref[i] += (double)c[q] * ins[q][i];
        ref[i] += (double)std * z[i];
        sc[i] = fabs(ref[i]) + 1;
    }
    EACH_CONFIG {
        float *y = fz(n), *y0 = fc(ins[0], n);
        const float *alias[8];
        memcpy(alias, ins, sizeof alias);
        alias[0] = y0;
        ck_sampler_combine(y, ins, c, k, std, 7, 3, 11, n);
        check("y", n, y, ref, sc, 1e-6, 0);
        ck_sampler_combine(y0, alias, c, k, std, 7, 3, 11, n);
        check_exact("y in place", n, y0, y);
    }
    case_end();
}

// ---- embeddings ----

// Fourier features: sin, cos of the float product t f within 1e-6; backward (accumulating)
// within (H + 6) and (B + 6) roundings of |start| + sum |f| (|dy cos| + |dy' sin|), as in the
// Swift test; lookup forward and backward exact (sums of ones).
static void t_embedding(int64_t B, int64_t H) {
    case_begin("embedding", "fourier B %lld H %lld, lookup", (long long)B, (long long)H);
    float *t = fr(B, -1, 1), *f = fr(H, -3, 3), *dy = fr(2 * B * H, -1, 1), *g0 = fr(B + H, -1, 1);
    if (B > 3) { t[1] = t[0]; t[2] = 0; }   // a repeated time (copied row) and zero
    if (H > 3) { f[0] = 60; f[1] = -250; }
    double *y = dz(2 * B * H), *ys = dz(2 * B * H), *g = dv(g0, B + H), *gs = dabs(g0, B + H);
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < H; j++) {
            const float a = t[b] * f[j];
            const double cs = dy[b * 2 * H + j] * cos((double)a), sn = dy[b * 2 * H + H + j] * sin((double)a);
            y[b * 2 * H + j] = sin((double)a);
            y[b * 2 * H + H + j] = cos((double)a);
            ys[b * 2 * H + j] = ys[b * 2 * H + H + j] = 1;
            g[b] += f[j] * (cs - sn); gs[b] += fabs(f[j]) * (fabs(cs) + fabs(sn));
            g[B + j] += t[b] * (cs - sn); gs[B + j] += fabs(t[b]) * (fabs(cs) + fabs(sn));
        }
    for (int64_t i = 0; i < B + H; i++) gs[i] *= (double)((i < B ? H : B) + 6);
    const int64_t V = 5, D = 3;
    float *table = fr(V * D, -1, 1), *ones = fz(B * D), *want = fz(B * D), *dwant = fz(V * D);
    int32_t *idx = mem((size_t)B * sizeof(int32_t));
    for (int64_t b = 0; b < B; b++) {
        idx[b] = (int32_t)((b * 3 + 1) % V);
        for (int64_t d = 0; d < D; d++) { ones[b * D + d] = 1; want[b * D + d] = table[idx[b] * D + d]; dwant[idx[b] * D + d] += 1; }
    }
    EACH_CONFIG {
        float *yg = fz(2 * B * H), *gg = fc(g0, B + H), *lk = fz(B * D), *dt = fz(V * D);
        ck_fourier_forward(yg, t, f, B, H);
        check("y", 2 * B * H, yg, y, ys, 1e-6, 0);
        ck_fourier_backward(gg, gg + B, dy, t, f, B, H);
        check("dt dfreqs", B + H, gg, g, gs, U, 0);
        ck_lookup_forward(lk, table, idx, B, D);
        check_exact("lookup", B * D, lk, want);
        ck_lookup_backward(dt, ones, idx, B, D);
        check_exact("lookup backward", V * D, dt, dwant);
    }
    case_end();
}

// ---- resampling, layout, and the small families ----

// 2x nearest upsampling and 2x2 average pooling, forward and (accumulating) backward, in
// double: 2 roundings of |start| + sum |terms| (the forward of the upsampling is a copy).
static void t_resample(int64_t N, int64_t C, int64_t H, int64_t W) {
    case_begin("resample", "N%lld C%lld %lldx%lld up+avgpool fwd+bwd", (long long)N, (long long)C, (long long)H, (long long)W);
    const int64_t P = N * C, Ho = H / 2, Wo = W / 2, nu = P * 4 * H * W, np = P * Ho * Wo, nx = P * H * W;
    float *x = fr(nx, -1, 1), *dyu = fr(nu, -1, 1), *dyp = fr(np, -1, 1), *dx0 = fr(nx, -1, 1);
    double *up = dz(nu), *pool = dz(np), *pools = dz(np), *du = dv(dx0, nx), *dus = dabs(dx0, nx), *dp = dv(dx0, nx), *dps = dabs(dx0, nx);
    for (int64_t p = 0; p < P; p++)
        for (int64_t i = 0; i < 2 * H; i++)
            for (int64_t j = 0; j < 2 * W; j++) {
                const int64_t o = (p * 2 * H + i) * 2 * W + j, s = (p * H + i / 2) * W + j / 2;
                up[o] = x[s];
                du[s] += dyu[o];
                dus[s] += fabs(dyu[o]);
            }
    for (int64_t p = 0; p < P; p++)
        for (int64_t i = 0; i < 2 * Ho; i++)
            for (int64_t j = 0; j < 2 * Wo; j++) {
                const int64_t o = (p * Ho + i / 2) * Wo + j / 2, s = (p * H + i) * W + j;
                pool[o] += 0.25 * x[s];
                pools[o] += 0.25 * fabs(x[s]);
                dp[s] += 0.25 * dyp[o];
                dps[s] += 0.25 * fabs(dyp[o]);
            }
    EACH_CONFIG {
        float *u = fz(nu), *a = fz(np), *gu = fc(dx0, nx), *gp = fc(dx0, nx);
        ck_upsample_nearest2x_forward(u, x, N, C, H, W);
        check("upsample", nu, u, up, NULL, 0x1p-1074, 1e-300);
        ck_upsample_nearest2x_backward(gu, dyu, N, C, H, W);
        check("upsample backward", nx, gu, du, dus, 2 * U, 0);
        ck_avgpool2x_forward(a, x, N, C, H, W);
        check("avgpool", np, a, pool, pools, 2 * U, 0);
        ck_avgpool2x_backward(gp, dyp, N, C, H, W);
        check("avgpool backward", nx, gp, dp, dps, 2 * U, 0);
    }
    case_end();
}

// Double-precision linear algebra of the metrics: dgemm (both transposes) against a plain
// triple loop, and dsyevd on a symmetric matrix: ascending eigenvalues, A v = lambda v and
// orthonormal eigenvectors, within 1e-12 of the matrix's scale (LAPACK's own accuracy is ~n u).
static void t_linalg(int64_t n) {
    case_begin("linalg", "dgemm %lldx%lldx%lld, dsyevd %lldx%lld", (long long)n, (long long)(n + 3), (long long)(n + 1),
               (long long)n, (long long)n);
    const int64_t M = n, N = n + 3, K = n + 1;
    double *A = dz(M * K), *B = dz(K * N), *C = dz(M * N), *R = dz(M * N);
    for (int64_t i = 0; i < M * K; i++) A[i] = frand(-1, 1);
    for (int64_t i = 0; i < K * N; i++) B[i] = frand(-1, 1);
    for (int ta = 0; ta < 2; ta++) {
        // op(A) = A (M x K) or, with ta, the transpose of a K x M matrix holding the same numbers
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double r = 0;
                for (int64_t k = 0; k < K; k++) r += (ta ? A[k * M + i] : A[i * K + k]) * B[k * N + j];
                R[i * N + j] = 0.5 * r;
            }
        ck_dgemm(ta, 0, M, N, K, 0.5, A, ta ? M : K, B, N, 0, C, N);
        double worst = 0;
        for (int64_t i = 0; i < M * N; i++) worst = fmax(worst, fabs(C[i] - R[i]));
        g_worst = fmax(g_worst, worst / (1e-13 * (double)K));
        if (!(worst <= 1e-13 * (double)K)) fail("dgemm", "transpose %d: error %.3g", ta, worst);
    }
    double *S = dz(n * n), *V = dz(n * n), *w = dz(n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) S[i * n + j] = S[j * n + i] = frand(-1, 1);
    for (int64_t i = 0; i < n * n; i++) V[i] = S[i];
    const int info = ck_dsyevd(1, n, V, w);
    if (info != 0) fail("dsyevd", "info %d", info);
    double worst = 0;
    for (int64_t k = 0; k < n; k++) {
        if (k > 0 && w[k] < w[k - 1]) fail("dsyevd", "eigenvalues not ascending at %lld", (long long)k);
        for (int64_t i = 0; i < n; i++) {   // (S v_k)_i - w_k v_ik, v_k the column k
            double r = -w[k] * V[i * n + k];
            for (int64_t j = 0; j < n; j++) r += S[i * n + j] * V[j * n + k];
            worst = fmax(worst, fabs(r));
        }
        for (int64_t l = 0; l < n; l++) {   // v_k . v_l - [k == l]
            double d = k == l ? -1 : 0;
            for (int64_t i = 0; i < n; i++) d += V[i * n + k] * V[i * n + l];
            worst = fmax(worst, fabs(d));
        }
    }
    g_worst = fmax(g_worst, worst / (1e-12 * (double)n));
    if (!(worst <= 1e-12 * (double)n)) fail("dsyevd", "residual %.3g", worst);
    double *u = dz(n);
    for (int64_t i = 0; i < n * n; i++) V[i] = S[i];
    if (ck_dsyevd(0, n, V, u) != 0) fail("dsyevd", "values only: failed");
    for (int64_t k = 0; k < n; k++)
        if (fabs(u[k] - w[k]) > 1e-12 * (double)n) fail("dsyevd", "values only: %.17g, with vectors %.17g", u[k], w[k]);
    case_end();
}

// Strided copy: x (2, 3, 40) -> y = x.permute(2, 0, 1), then accumulated once more (exact).
static void t_layout(void) {
    case_begin("layout", "strided copy permute (2,3,40)->(40,2,3), accumulate");
    const int64_t shape[3] = {40, 2, 3}, ys[3] = {6, 3, 1}, xs[3] = {1, 120, 40};
    float *x = fr(240, -1, 1), *w1 = fz(240), *w2 = fz(240);
    for (int i = 0; i < 40; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++) { w1[i * 6 + j * 3 + k] = x[j * 120 + k * 40 + i]; w2[i * 6 + j * 3 + k] = 2 * x[j * 120 + k * 40 + i]; }
    EACH_CONFIG {
        float *y = fz(240);
        ck_strided_copy(y, ys, x, xs, shape, 3, 0);
        check_exact("copy", 240, y, w1);
        ck_strided_copy(y, ys, x, xs, shape, 3, 1);
        check_exact("accumulate", 240, y, w2);
    }
    case_end();
}

typedef struct { volatile double sink[64]; } spin_ctx;
static void spin_task(void *p, int64_t t, int64_t nt) {   // about a millisecond of work
    (void)nt;
    spin_ctx *c = p;
    double s = 0;
    for (int i = 0; i < 200000; i++) s += 1e-9 * i;
    c->sink[t] = s;
}

// The pool at 2 threads (the workers take part: tasks run by them), the allocator's alignment
// and zeroing, the CPU report (no AVX off x86-64), the triad probe.
static void t_misc(void) {
    case_begin("pool", "2 threads share work; alloc; cpu; triad");
    ck_set_num_threads(2);
    spin_ctx c;
    const int64_t before = ck_pool_worker_tasks();
    // the worker takes part (on a busy machine a job may end before it wakes: up to 100 tries)
    for (int tries = 0; tries < 100 && ck_pool_worker_tasks() == before; tries++) ck_parallel_for(spin_task, &c, 64);
    if (ck_get_num_threads() != 2 || ck_pool_worker_tasks() == before)
        fail("pool", "%d threads, %lld tasks by workers", ck_get_num_threads(), (long long)(ck_pool_worker_tasks() - before));
    float *a = ck_alloc_zeroed(1000);
    if (!a || (uintptr_t)a % 64 != 0 || a[249] != 0) fail("alloc", "%p", (void *)a);
    ck_free(a, 1000);
#if !defined(__x86_64__) && !defined(_M_X64)
    if (ck_cpu_has_avx2_fma() || ck_cpu_has_avx512() || ck_simd_supported(CK_SIMD_AVX2) || ck_bench_fma_flops(1, 1) != 0)
        fail("cpu", "AVX reported off x86-64");
#endif
#if defined(__aarch64__)
    if (ck_simd_best() != CK_SIMD_NEON) fail("cpu", "best level %s on aarch64, not neon", ck_simd_name(ck_simd_best()));
    if (ck_bench_fma_flops(0, 1) == 0) fail("cpu", "no 8-lane (NEON) FMA probe on aarch64");
#endif
    if (ck_simd_set_level(99) != -1 || ck_simd_supported(-1)) fail("cpu", "an unknown level was accepted");
    const int64_t n = 40003;
    float *b = fr(n, -1, 1), *cc = fr(n, -1, 1);
    double *r = dz(n), *s = dz(n);
    for (int64_t i = 0; i < n; i++) { r[i] = b[i] + 0.5 * cc[i]; s[i] = fabs(b[i]) + fabs(0.5 * cc[i]); }
    EACH_CONFIG {
        float *t = fz(n);
        ck_bench_triad(t, b, cc, 0.5f, n);
        check("triad", n, t, r, s, 2 * U, 0);
    }
    case_end();
}

// ---- the digest of the bit-exact kernels ----

// Kernels whose results are fixed by their definition (correctly rounded operations in a fixed
// order, no contraction into fmas): the same bits on every CPU and path.
static uint64_t exact_digest(void) {
    uint64_t h = 0xcbf29ce484222325ull;
    const int64_t n = 20011;
    seed(12345);
    float *x = fr(4 * n, -1, 1), *y = fz(4 * n);
    ck_random_uniform(y, n, 3, 1, 7, -1, 2);
    h = fnv(h, y, (size_t)n * 4);
    ck_random_normal(y, n, 3, 2, ((uint64_t)1 << 34) - 1003, 0.5f, 2);
    h = fnv(h, y, (size_t)n * 4);
    const float *ins[3] = {x, x + n, x + 2 * n}, c[3] = {0.5f, -1.25f, 3};
    ck_sampler_combine(y, ins, c, 3, 0.7f, 5, 6, 61, n);
    h = fnv(h, y, (size_t)n * 4);
    ck_reduce_sum(y, x, 1, 4 * n, 1, 0.5f, 0);
    ck_reduce_sum(y + 1, x, 7, 33, 65, 1, 0);
    ck_reduce_max(y + 500, x, 3, 77, 11);
    h = fnv(h, y, 600 * 4);
    const int64_t shape[2] = {n, 3}, as[2] = {3, 1}, bs[2] = {1, 0};
    for (int op = CK_BIN_ADD; op <= CK_BIN_DIV; op++) {
        ck_binary_forward(y, x, as, x + 3 * n, bs, shape, 2, op);
        h = fnv(h, y, (size_t)(3 * n) * 4);
    }
    ck_avgpool2x_forward(y, x, 3, 5, 31, 17);
    ck_upsample_nearest2x_backward(y + 3 * 5 * 15 * 8, x, 3, 5, 15, 8);
    h = fnv(h, y, (size_t)(2 * 3 * 5 * 15 * 8) * 4);
    return h;
}

// ---- main ----

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);   // one line at a time, also into a pipe
    const int x86 =
#if defined(__x86_64__) || defined(_M_X64)
        1;
#else
        0;
#endif
    const int best = ck_simd_best();
    printf("kernel driver: %s, SIMD levels:", x86 ? "x86-64" : "not x86-64");
    for (int l = CK_SIMD_SCALAR; l <= CK_SIMD_NEON; l++)
        if (ck_simd_supported(l)) printf(" %s", ck_simd_name(l));
    printf(", OpenBLAS core %s\n", ck_blas_core_name());
    // Every level the CPU has, best first, then the best level's scalar twins; each at 1 and 2
    // threads.
    const int order[4] = {CK_SIMD_AVX512, CK_SIMD_NEON, CK_SIMD_AVX2, CK_SIMD_SCALAR};
    for (int i = 0; i < 4; i++)
        if (ck_simd_supported(order[i]))
            for (int t = 1; t <= 2; t++) g_cfgs[g_ncfg++] = (config){t, order[i], 1};
    if (best != CK_SIMD_SCALAR)
        for (int t = 1; t <= 2; t++) g_cfgs[g_ncfg++] = (config){t, best, 0};
    seed(1);

    for (int act = CK_ACT_NONE; act <= CK_ACT_SOFTPLUS; act++)
        for (int64_t n = 1; n <= 16387; n = n * 17 + 3) t_activation(act, n);   // 1, 20, 343, 5834
    t_activation(CK_ACT_SILU, 40003);
    const int64_t s1[1] = {1000}, a1[1] = {1}, s2[2] = {37, 33}, a2[2] = {33, 1}, b2[2] = {0, 1}, c2[2] = {1, 0};
    const int64_t s4[4] = {3, 4, 5, 6}, a4[4] = {0, 30, 6, 1}, b4[4] = {20, 5, 1, 0}, s5[1] = {16385}, b5[1] = {0};
    for (int op = CK_BIN_ADD; op <= CK_BIN_MIN; op++) {
        t_binary(op, 1, s1, a1, a1);
        t_binary(op, 2, s2, a2, op % 2 ? b2 : c2);
        t_binary(op, 4, s4, a4, b4);
        t_binary(op, 1, s5, a1, b5);
    }
    for (int op = CK_UN_NEG; op <= CK_UN_RECIP; op++) t_unary(op, 16387);
    t_affine(1);
    t_affine(40003);

    const int64_t red[][3] = {{1, 1, 1}, {1, 100003, 1}, {7, 33, 1}, {3, 17, 65}, {5, 1, 9}, {2, 0, 3}, {130, 9, 1}, {2, 40, 70}};
    for (size_t i = 0; i < sizeof red / sizeof *red; i++) t_reduce(red[i][0], red[i][1], red[i][2]);

    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) t_gemm(7, 5, 3, ta, tb, 1);
    t_gemm(1, 1, 1, 0, 0, 1);
    t_gemm(65, 33, 17, 0, 1, 1);
    t_gemm(129, 7, 70, 1, 0, 1);
    t_gemm(8, 9, 4100, 0, 0, 1);   // split along K
    t_gemm(17, 9, 5, 1, 1, 3);
    t_linear(1, 1, 1, CK_ACT_NONE);
    t_linear(7, 5, 3, CK_ACT_SILU);
    t_linear(70, 33, 17, CK_ACT_TANH);

    t_layernorm(1, 1);
    t_layernorm(37, 70);
    t_layernorm(5, 130);
    t_groupnorm(1, 4, 1, 2, CK_ACT_SILU, 1, 1);
    t_groupnorm(2, 6, 49, 3, CK_ACT_SILU, 1, 1);
    t_groupnorm(3, 12, 784, 4, CK_ACT_SILU, 1, 0);
    t_groupnorm(2, 8, 300, 2, CK_ACT_GELU, 1, 1);
    t_groupnorm(5, 20, 7, 5, CK_ACT_NONE, 0, 0);
    t_groupnorm(2, 32, 64, 8, CK_ACT_SILU, 0, 1);

    const int64_t conv[][8] = {
        {1, 3, 1, 1, 5, 3, 1, 1}, {2, 3, 7, 7, 5, 3, 1, 1}, {3, 5, 7, 7, 6, 3, 2, 1}, {2, 7, 28, 28, 9, 3, 1, 1},
        {3, 13, 7, 7, 11, 1, 1, 0}, {2, 5, 7, 7, 4, 1, 2, 0}, {2, 3, 9, 9, 4, 5, 1, 2}, {2, 3, 8, 8, 5, 4, 2, 1},
        {2, 3, 5, 9, 4, 3, 2, 1}, {17, 3, 8, 8, 5, 3, 1, 1}, {2, 16, 8, 8, 16, 3, 1, 1}, {3, 20, 15, 13, 9, 3, 2, 1},
        {2, 3, 2, 2, 4, 3, 1, 2}, {2, 3, 10, 10, 4, 3, 3, 1}, {2, 4, 1, 6, 3, 3, 2, 1},
    };
    for (size_t i = 0; i < sizeof conv / sizeof *conv; i++)
        t_conv(conv[i][0], conv[i][1], conv[i][2], conv[i][3], conv[i][4], conv[i][5], conv[i][6], conv[i][7]);

    t_attention(1, 1, 1, 1, 1);
    t_attention(2, 3, 7, 5, 1);
    t_attention(1, 1, 65, 16, 1);
    t_attention(1, 2, 70, 8, 12);

    t_philox();
    t_random(0, 1000);
    t_random(5, 333);
    t_random(((uint64_t)1 << 34) - 700, 1500);
    for (int d = 0; d < 2; d++) {
        t_adam(1003, 1, d);
        t_adam(17, 7, d);
    }
    t_sgd_ema(1003, 0, 0, 0, 1);
    t_sgd_ema(1003, 0.9f, 0, 0, 0);
    t_sgd_ema(65, 0.9f, 0.1f, 0, 1);
    t_sgd_ema(33, 0.9f, 0, 1, 0);
    t_sampler(1, 1, 0);
    t_sampler(17, 3, 0.7f);
    t_sampler(40003, 8, 0.7f);
    t_sampler(16385, 2, 0);
    t_embedding(3, 3);
    t_embedding(70, 5);
    t_embedding(5, 130);
    t_resample(1, 1, 1, 1);
    t_resample(2, 3, 7, 9);
    t_resample(1, 2, 16, 40);
    t_linalg(1);
    t_linalg(7);
    t_linalg(70);
    t_layout();
    t_misc();

    // The digest per SIMD setting (at 1 thread, then 2): the same everywhere, and printed for
    // the cross-check to compare across machines.
    case_begin("digest", "bit-exact kernels, every configuration");
    uint64_t digest = 0;
    EACH_CONFIG {
        const uint64_t d = exact_digest();
        if (cfg_ == 0) digest = d;
        if (d != digest) fail("digest", "%016llx, not %016llx", (unsigned long long)d, (unsigned long long)digest);
    }
    case_end();
    printf("digest of the bit-exact kernels: %016llx\n", (unsigned long long)digest);
    printf("%d passed, %d failed\n", g_cases - g_failed, g_failed);
    return g_failed != 0;
}

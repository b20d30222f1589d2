// 2x nearest upsampling and 2x2 average pooling, forward and backward. Work is cut into blocks
// of rows (about CK_BLOCK output floats each) over all N*C planes. The vector (AVX2 on x86-64,
// NEON on aarch64) and scalar paths add in the same order, so they give the same bits.
#include "ck_resample.h"
#include "ck_internal.h"
#include "ck_simd.h"

typedef struct {
    float *out;
    const float *in;
    int64_t rows, H, W, Ho, Wo, per_task;   // rows: rows handed to tasks in total; H, W: input
} rs_job;

#if CK_X86 || CK_NEON
// Each lane of v twice: lanes 0..3 as x0 x0 x1 x1 x2 x2 x3 x3 (lo), lanes 4..7 likewise (hi).
CK_VEC static inline ck_v8f twice_lo(ck_v8f v) { return __builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3); }
CK_VEC static inline ck_v8f twice_hi(ck_v8f v) { return __builtin_shufflevector(v, v, 4, 4, 5, 5, 6, 6, 7, 7); }

// Pairwise sums of 16 consecutive floats, in order: s[k] = x[2k] + x[2k+1].
CK_VEC static inline ck_v8f pair_sums16(const float *x) {
    ck_v8f a = ck_load8(x), b = ck_load8(x + 8);
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14) + __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
}
#endif

// ---- upsample: one input row -> two output rows ----

static void up_row_scalar(float *y0, float *y1, const float *x, int64_t W) {
    for (int64_t j = 0; j < W; j++) y0[2 * j] = y0[2 * j + 1] = y1[2 * j] = y1[2 * j + 1] = x[j];
}
#if CK_X86 || CK_NEON
CK_VEC static void up_row_vec(float *y0, float *y1, const float *x, int64_t W) {
    int64_t j = 0;
    for (; j + 8 <= W; j += 8) {
        ck_v8f v = ck_load8(x + j), a = twice_lo(v), b = twice_hi(v);
        ck_store8(y0 + 2 * j, a);
        ck_store8(y0 + 2 * j + 8, b);
        ck_store8(y1 + 2 * j, a);
        ck_store8(y1 + 2 * j + 8, b);
    }
    for (; j < W; j++) y0[2 * j] = y0[2 * j + 1] = y1[2 * j] = y1[2 * j + 1] = x[j];
}
#endif

static void up_fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const rs_job *j = p;
    void (*row)(float *, float *, const float *, int64_t) = CK_PICK(up_row_vec, up_row_scalar);
    for (int64_t r = t * j->per_task; r < ck_min64(j->rows, (t + 1) * j->per_task); r++) {
        float *y0 = j->out + 4 * r * j->W, *y1 = y0 + 2 * j->W;   // output rows 2i, 2i+1 of the plane
        row(y0, y1, j->in + r * j->W, j->W);
    }
}

void ck_upsample_nearest2x_forward(float *y, const float *x, int64_t N, int64_t C, int64_t H,
                                   int64_t W) {
    if (N <= 0 || C <= 0 || H <= 0 || W <= 0) return;
    rs_job j = {.out = y, .in = x, .rows = N * C * H, .W = W};
    j.per_task = ck_max64(1, CK_BLOCK / (4 * W));
    ck_parallel_for(up_fwd_task, &j, ck_ceil_div(j.rows, j.per_task));
}

// dx[j] += (d0[2j] + d0[2j+1]) + (d1[2j] + d1[2j+1])
static void up_bwd_row_scalar(float *dx, const float *d0, const float *d1, int64_t W) {
    for (int64_t j = 0; j < W; j++) dx[j] += (d0[2 * j] + d0[2 * j + 1]) + (d1[2 * j] + d1[2 * j + 1]);
}
#if CK_X86 || CK_NEON
CK_VEC static void up_bwd_row_vec(float *dx, const float *d0, const float *d1, int64_t W) {
    int64_t j = 0;
    for (; j + 8 <= W; j += 8) {
        ck_v8f s = pair_sums16(d0 + 2 * j) + pair_sums16(d1 + 2 * j);
        ck_store8(dx + j, ck_load8(dx + j) + s);
    }
    up_bwd_row_scalar(dx + j, d0 + 2 * j, d1 + 2 * j, W - j);
}
#endif

static void up_bwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const rs_job *j = p;
    void (*row)(float *, const float *, const float *, int64_t) = CK_PICK(up_bwd_row_vec, up_bwd_row_scalar);
    for (int64_t r = t * j->per_task; r < ck_min64(j->rows, (t + 1) * j->per_task); r++) {
        const float *d0 = j->in + 4 * r * j->W, *d1 = d0 + 2 * j->W;
        row(j->out + r * j->W, d0, d1, j->W);
    }
}

void ck_upsample_nearest2x_backward(float *dx, const float *dy, int64_t N, int64_t C, int64_t H,
                                    int64_t W) {
    if (N <= 0 || C <= 0 || H <= 0 || W <= 0) return;
    rs_job j = {.out = dx, .in = dy, .rows = N * C * H, .W = W};
    j.per_task = ck_max64(1, CK_BLOCK / (4 * W));
    ck_parallel_for(up_bwd_task, &j, ck_ceil_div(j.rows, j.per_task));
}

// ---- avg-pool: output row (plane, i) <- input rows 2i, 2i+1 of the plane ----

static void pool_row_scalar(float *y, const float *x0, const float *x1, int64_t Wo) {
    for (int64_t j = 0; j < Wo; j++) y[j] = 0.25f * ((x0[2 * j] + x0[2 * j + 1]) + (x1[2 * j] + x1[2 * j + 1]));
}
#if CK_X86 || CK_NEON
CK_VEC static void pool_row_vec(float *y, const float *x0, const float *x1, int64_t Wo) {
    int64_t j = 0;
    for (; j + 8 <= Wo; j += 8) ck_store8(y + j, 0.25f * (pair_sums16(x0 + 2 * j) + pair_sums16(x1 + 2 * j)));
    pool_row_scalar(y + j, x0 + 2 * j, x1 + 2 * j, Wo - j);
}
#endif

static void pool_fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const rs_job *j = p;
    void (*row)(float *, const float *, const float *, int64_t) = CK_PICK(pool_row_vec, pool_row_scalar);
    for (int64_t r = t * j->per_task; r < ck_min64(j->rows, (t + 1) * j->per_task); r++) {
        int64_t plane = r / j->Ho, i = r % j->Ho;
        const float *x0 = j->in + (plane * j->H + 2 * i) * j->W, *x1 = x0 + j->W;
        row(j->out + r * j->Wo, x0, x1, j->Wo);
    }
}

void ck_avgpool2x_forward(float *y, const float *x, int64_t N, int64_t C, int64_t H, int64_t W) {
    rs_job j = {.out = y, .in = x, .H = H, .W = W, .Ho = H / 2, .Wo = W / 2};
    if (N <= 0 || C <= 0 || j.Ho <= 0 || j.Wo <= 0) return;
    j.rows = N * C * j.Ho;
    j.per_task = ck_max64(1, CK_BLOCK / (4 * j.Wo));
    ck_parallel_for(pool_fwd_task, &j, ck_ceil_div(j.rows, j.per_task));
}

// dx0[2j], dx0[2j+1], dx1[2j], dx1[2j+1] += 0.25 * dy[j]
static void pool_bwd_row_scalar(float *dx0, float *dx1, const float *dy, int64_t Wo) {
    for (int64_t j = 0; j < Wo; j++) {
        float g = 0.25f * dy[j];
        dx0[2 * j] += g; dx0[2 * j + 1] += g; dx1[2 * j] += g; dx1[2 * j + 1] += g;
    }
}
#if CK_X86 || CK_NEON
CK_VEC static void pool_bwd_row_vec(float *dx0, float *dx1, const float *dy, int64_t Wo) {
    int64_t j = 0;
    for (; j + 8 <= Wo; j += 8) {
        ck_v8f g = 0.25f * ck_load8(dy + j), a = twice_lo(g), b = twice_hi(g);
        ck_store8(dx0 + 2 * j, ck_load8(dx0 + 2 * j) + a);
        ck_store8(dx0 + 2 * j + 8, ck_load8(dx0 + 2 * j + 8) + b);
        ck_store8(dx1 + 2 * j, ck_load8(dx1 + 2 * j) + a);
        ck_store8(dx1 + 2 * j + 8, ck_load8(dx1 + 2 * j + 8) + b);
    }
    for (; j < Wo; j++) {
        float g = 0.25f * dy[j];
        dx0[2 * j] += g; dx0[2 * j + 1] += g; dx1[2 * j] += g; dx1[2 * j + 1] += g;
    }
}
#endif

static void pool_bwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const rs_job *j = p;
    void (*row)(float *, float *, const float *, int64_t) = CK_PICK(pool_bwd_row_vec, pool_bwd_row_scalar);
    for (int64_t r = t * j->per_task; r < ck_min64(j->rows, (t + 1) * j->per_task); r++) {
        int64_t plane = r / j->Ho, i = r % j->Ho;
        float *dx0 = j->out + (plane * j->H + 2 * i) * j->W, *dx1 = dx0 + j->W;
        row(dx0, dx1, j->in + r * j->Wo, j->Wo);
    }
}

void ck_avgpool2x_backward(float *dx, const float *dy, int64_t N, int64_t C, int64_t H, int64_t W) {
    rs_job j = {.out = dx, .in = dy, .H = H, .W = W, .Ho = H / 2, .Wo = W / 2};
    if (N <= 0 || C <= 0 || j.Ho <= 0 || j.Wo <= 0) return;
    j.rows = N * C * j.Ho;
    j.per_task = ck_max64(1, CK_BLOCK / (4 * j.Wo));
    ck_parallel_for(pool_bwd_task, &j, ck_ceil_div(j.rows, j.per_task));
}

// ---- naive references ----

void ck_upsample_nearest2x_forward_ref(float *y, const float *x, int64_t N, int64_t C, int64_t H,
                                       int64_t W) {
    for (int64_t p = 0; p < N * C; p++)
        for (int64_t i = 0; i < 2 * H; i++)
            for (int64_t j = 0; j < 2 * W; j++) y[(p * 2 * H + i) * 2 * W + j] = x[(p * H + i / 2) * W + j / 2];
}

void ck_upsample_nearest2x_backward_ref(float *dx, const float *dy, int64_t N, int64_t C,
                                        int64_t H, int64_t W) {
    for (int64_t p = 0; p < N * C; p++)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++) {
                double s = 0.0;
                for (int64_t a = 0; a < 2; a++)
                    for (int64_t b = 0; b < 2; b++) s += dy[(p * 2 * H + 2 * i + a) * 2 * W + 2 * j + b];
                dx[(p * H + i) * W + j] += (float)s;
            }
}

void ck_avgpool2x_forward_ref(float *y, const float *x, int64_t N, int64_t C, int64_t H, int64_t W) {
    int64_t Ho = H / 2, Wo = W / 2;
    for (int64_t p = 0; p < N * C; p++)
        for (int64_t i = 0; i < Ho; i++)
            for (int64_t j = 0; j < Wo; j++) {
                double s = 0.0;
                for (int64_t a = 0; a < 2; a++)
                    for (int64_t b = 0; b < 2; b++) s += x[(p * H + 2 * i + a) * W + 2 * j + b];
                y[(p * Ho + i) * Wo + j] = (float)(0.25 * s);
            }
}

void ck_avgpool2x_backward_ref(float *dx, const float *dy, int64_t N, int64_t C, int64_t H,
                               int64_t W) {
    int64_t Ho = H / 2, Wo = W / 2;
    for (int64_t p = 0; p < N * C; p++)
        for (int64_t i = 0; i < 2 * Ho; i++)
            for (int64_t j = 0; j < 2 * Wo; j++)
                dx[(p * H + i) * W + j] += (float)(0.25 * dy[(p * Ho + i / 2) * Wo + j / 2]);
}

// LayerNorm. Row statistics in double; dgamma/dbeta are column sums done per column block
// (each column summed over rows in order by one task), so results ignore the thread count.
#include "ck_norm.h"
#include "ck_internal.h"
#include <math.h>

#define ROWS_PER_TASK 32
#define COLS_PER_TASK 64

typedef struct {
    float *y, *mean, *rstd, *dx, *dg, *db;
    const float *x, *g, *b, *dy, *cm, *cr;
    int64_t N, D;
    float eps;
} ln_job;

static void fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const ln_job *j = p;
    for (int64_t r = t * ROWS_PER_TASK; r < ck_min64(j->N, (t + 1) * ROWS_PER_TASK); r++) {
        const float *x = j->x + r * j->D;
        float *y = j->y + r * j->D;
        double s = 0.0, ss = 0.0;
        for (int64_t i = 0; i < j->D; i++) s += x[i];
        double mu = s / (double)j->D;
        for (int64_t i = 0; i < j->D; i++) { double d = x[i] - mu; ss += d * d; }
        float m = (float)mu, rs = (float)(1.0 / sqrt(ss / (double)j->D + j->eps));
        j->mean[r] = m;
        j->rstd[r] = rs;
        for (int64_t i = 0; i < j->D; i++) {
            float h = (x[i] - m) * rs;
            y[i] = j->g ? h * j->g[i] + (j->b ? j->b[i] : 0.0f) : h + (j->b ? j->b[i] : 0.0f);
        }
    }
}

void ck_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int64_t N, int64_t D, float eps) {
    ln_job j = {.y = y, .mean = mean, .rstd = rstd, .x = x, .g = gamma, .b = beta, .N = N, .D = D, .eps = eps};
    ck_parallel_for(fwd_task, &j, ck_ceil_div(N, ROWS_PER_TASK));
}

// dx = rstd * (dh - mean(dh) - h * mean(dh * h)), dh = dy * gamma.
static void bwd_rows_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const ln_job *j = p;
    for (int64_t r = t * ROWS_PER_TASK; r < ck_min64(j->N, (t + 1) * ROWS_PER_TASK); r++) {
        const float *x = j->x + r * j->D, *dy = j->dy + r * j->D;
        float m = j->cm[r], rs = j->cr[r];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < j->D; i++) {
            float dh = dy[i] * (j->g ? j->g[i] : 1.0f), h = (x[i] - m) * rs;
            s1 += dh;
            s2 += (double)dh * h;
        }
        float a = (float)(s1 / (double)j->D), c = (float)(s2 / (double)j->D);
        float *dx = j->dx + r * j->D;
        for (int64_t i = 0; i < j->D; i++) {
            float dh = dy[i] * (j->g ? j->g[i] : 1.0f), h = (x[i] - m) * rs;
            dx[i] += rs * (dh - a - h * c);
        }
    }
}

static void bwd_cols_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const ln_job *j = p;
    int64_t c0 = t * COLS_PER_TASK, c1 = ck_min64(j->D, c0 + COLS_PER_TASK);
    float sg[COLS_PER_TASK] = {0}, sb[COLS_PER_TASK] = {0};
    for (int64_t r = 0; r < j->N; r++) {
        const float *x = j->x + r * j->D, *dy = j->dy + r * j->D;
        float m = j->cm[r], rs = j->cr[r];
        for (int64_t c = c0; c < c1; c++) {
            sg[c - c0] += dy[c] * (x[c] - m) * rs;
            sb[c - c0] += dy[c];
        }
    }
    for (int64_t c = c0; c < c1; c++) {
        if (j->dg) j->dg[c] += sg[c - c0];
        if (j->db) j->db[c] += sb[c - c0];
    }
}

void ck_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                           const float *x, const float *gamma, const float *mean,
                           const float *rstd, int64_t N, int64_t D) {
    ln_job j = {.dx = dx, .dg = dgamma, .db = dbeta, .dy = dy, .x = x, .g = gamma, .cm = mean,
                .cr = rstd, .N = N, .D = D};
    if (dx) ck_parallel_for(bwd_rows_task, &j, ck_ceil_div(N, ROWS_PER_TASK));
    if (dgamma || dbeta) ck_parallel_for(bwd_cols_task, &j, ck_ceil_div(D, COLS_PER_TASK));
}

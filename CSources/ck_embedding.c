// Fourier features and lookup tables. Sums over the batch (dfreqs, dtable) run per column
// block in batch order, so they ignore the thread count.
#include "ck_embedding.h"
#include "ck_internal.h"
#include <math.h>
#include <string.h>

#define ROWS_PER_TASK 64
#define COLS_PER_TASK 64

typedef struct {
    float *y, *dt, *df;
    const float *t, *f, *dy, *table;
    const int32_t *idx;
    int64_t B, H, D;
} emb_job;

static void fourier_fwd_task(void *p, int64_t task, int64_t nt) {
    (void)nt;
    const emb_job *j = p;
    for (int64_t b = task * ROWS_PER_TASK; b < ck_min64(j->B, (task + 1) * ROWS_PER_TASK); b++) {
        float *y = j->y + b * 2 * j->H;
        // A sampler's batch shares one t: a row whose t has the bits of the previous one is a copy.
        if (b > task * ROWS_PER_TASK && memcmp(&j->t[b], &j->t[b - 1], sizeof(float)) == 0) {
            memcpy(y, y - 2 * j->H, (size_t)(2 * j->H) * sizeof(float));
            continue;
        }
        for (int64_t k = 0; k < j->H; k++) {
            float a = j->t[b] * j->f[k];
            y[k] = sinf(a);
            y[j->H + k] = cosf(a);
        }
    }
}

void ck_fourier_forward(float *y, const float *t, const float *freqs, int64_t B, int64_t H) {
    emb_job j = {.y = y, .t = t, .f = freqs, .B = B, .H = H};
    ck_parallel_for(fourier_fwd_task, &j, ck_ceil_div(B, ROWS_PER_TASK));
}

static void fourier_dt_task(void *p, int64_t task, int64_t nt) {
    (void)nt;
    const emb_job *j = p;
    for (int64_t b = task * ROWS_PER_TASK; b < ck_min64(j->B, (task + 1) * ROWS_PER_TASK); b++) {
        const float *dy = j->dy + b * 2 * j->H;
        float s = 0.0f;
        for (int64_t k = 0; k < j->H; k++) {
            float a = j->t[b] * j->f[k];
            s += j->f[k] * (dy[k] * cosf(a) - dy[j->H + k] * sinf(a));
        }
        j->dt[b] += s;
    }
}

static void fourier_df_task(void *p, int64_t task, int64_t nt) {
    (void)nt;
    const emb_job *j = p;
    for (int64_t k = task * COLS_PER_TASK; k < ck_min64(j->H, (task + 1) * COLS_PER_TASK); k++) {
        float s = 0.0f;
        for (int64_t b = 0; b < j->B; b++) {
            const float *dy = j->dy + b * 2 * j->H;
            float a = j->t[b] * j->f[k];
            s += j->t[b] * (dy[k] * cosf(a) - dy[j->H + k] * sinf(a));
        }
        j->df[k] += s;
    }
}

void ck_fourier_backward(float *dt, float *dfreqs, const float *dy, const float *t,
                         const float *freqs, int64_t B, int64_t H) {
    emb_job j = {.dt = dt, .df = dfreqs, .dy = dy, .t = t, .f = freqs, .B = B, .H = H};
    if (dt) ck_parallel_for(fourier_dt_task, &j, ck_ceil_div(B, ROWS_PER_TASK));
    if (dfreqs) ck_parallel_for(fourier_df_task, &j, ck_ceil_div(H, COLS_PER_TASK));
}

static void lookup_fwd_task(void *p, int64_t task, int64_t nt) {
    (void)nt;
    const emb_job *j = p;
    for (int64_t b = task * ROWS_PER_TASK; b < ck_min64(j->B, (task + 1) * ROWS_PER_TASK); b++)
        memcpy(j->y + b * j->D, j->table + (int64_t)j->idx[b] * j->D, (size_t)j->D * sizeof(float));
}

void ck_lookup_forward(float *y, const float *table, const int32_t *idx, int64_t B, int64_t D) {
    emb_job j = {.y = y, .table = table, .idx = idx, .B = B, .D = D};
    ck_parallel_for(lookup_fwd_task, &j, ck_ceil_div(B, ROWS_PER_TASK));
}

static void lookup_bwd_task(void *p, int64_t task, int64_t nt) {
    (void)nt;
    const emb_job *j = p;
    int64_t c0 = task * COLS_PER_TASK, c1 = ck_min64(j->D, c0 + COLS_PER_TASK);
    for (int64_t b = 0; b < j->B; b++) {
        float *row = j->y + (int64_t)j->idx[b] * j->D;
        const float *g = j->dy + b * j->D;
        for (int64_t c = c0; c < c1; c++) row[c] += g[c];
    }
}

void ck_lookup_backward(float *dtable, const float *dy, const int32_t *idx, int64_t B, int64_t D) {
    emb_job j = {.y = dtable, .dy = dy, .idx = idx, .B = B, .D = D};
    ck_parallel_for(lookup_bwd_task, &j, ck_ceil_div(D, COLS_PER_TASK));
}

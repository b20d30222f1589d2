// Reductions. Contiguous sums (inner == 1) run in 8 interleaved lanes combined in a fixed
// order; the same body serves the scalar and vector paths, so both round identically. A full
// reduction (one output) is cut into fixed chunks whose partial sums are added in order.
#include "ck_reduce.h"
#include "ck_internal.h"
#include "ck_simd.h"
#include <math.h>

#define MAX_CHUNKS 1024
#define COLS_PER_TASK 64

CK_BODY float lanes_sum(const float *x, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += x[i + l];
    for (int l = 0; i + l < n; l++) acc[l] += x[i + l];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}
static float lanes_sum_scalar(const float *x, int64_t n) { return lanes_sum(x, n); }
CK_VEC static float lanes_sum_vec(const float *x, int64_t n) { return lanes_sum(x, n); }
static float contiguous_sum(const float *x, int64_t n) {
    return ck_cpu_simd_enabled() ? lanes_sum_vec(x, n) : lanes_sum_scalar(x, n);
}

// acc[0..w) += x rows: acc[c] = sum over k of x[k * inner + c].
CK_BODY void column_sums(float *acc, const float *x, int64_t r, int64_t inner, int64_t w) {
    for (int64_t c = 0; c < w; c++) acc[c] = 0.0f;
    for (int64_t k = 0; k < r; k++) {
        const float *row = x + k * inner;
        for (int64_t c = 0; c < w; c++) acc[c] += row[c];
    }
}
static void column_sums_scalar(float *acc, const float *x, int64_t r, int64_t inner, int64_t w) {
    column_sums(acc, x, r, inner, w);
}
CK_VEC static void column_sums_vec(float *acc, const float *x, int64_t r, int64_t inner, int64_t w) {
    column_sums(acc, x, r, inner, w);
}

typedef struct {
    float *y;
    const float *x, *dy, *aux;
    float *dx;
    int64_t outer, r, inner, chunk, col_tasks;
    float alpha;
    int acc;
    float partial[MAX_CHUNKS];
} red_job;

static void store(float *y, float v, int acc) { if (acc) *y += v; else *y = v; }

static void sum_rows_task(void *p, int64_t t, int64_t nt) {   // inner == 1, one output per task
    (void)nt;
    red_job *j = p;
    store(j->y + t, j->alpha * contiguous_sum(j->x + t * j->r, j->r), j->acc);
}

static void sum_chunk_task(void *p, int64_t t, int64_t nt) {  // one output, chunked
    (void)nt;
    red_job *j = p;
    int64_t s = t * j->chunk, e = ck_min64(s + j->chunk, j->r);
    j->partial[t] = contiguous_sum(j->x + s, e - s);
}

static void sum_cols_task(void *p, int64_t t, int64_t nt) {   // inner > 1
    (void)nt;
    red_job *j = p;
    int64_t o = t / j->col_tasks, c0 = (t % j->col_tasks) * COLS_PER_TASK;
    int64_t w = ck_min64(COLS_PER_TASK, j->inner - c0);
    float acc[COLS_PER_TASK];
    const float *x = j->x + o * j->r * j->inner + c0;
    if (ck_cpu_simd_enabled()) column_sums_vec(acc, x, j->r, j->inner, w);
    else column_sums_scalar(acc, x, j->r, j->inner, w);
    float *y = j->y + o * j->inner + c0;
    for (int64_t c = 0; c < w; c++) store(y + c, j->alpha * acc[c], j->acc);
}

void ck_reduce_sum(float *y, const float *x, int64_t outer, int64_t r, int64_t inner, float alpha,
                   int accumulate) {
    if (outer * inner == 0) return;
    red_job j = {.y = y, .x = x, .outer = outer, .r = r, .inner = inner, .alpha = alpha, .acc = accumulate};
    if (inner == 1 && outer == 1) {
        j.chunk = ck_max64(CK_BLOCK, ck_ceil_div(r, MAX_CHUNKS));
        int64_t nchunks = r == 0 ? 0 : ck_ceil_div(r, j.chunk);
        ck_parallel_for(sum_chunk_task, &j, nchunks);
        float s = 0.0f;
        for (int64_t c = 0; c < nchunks; c++) s += j.partial[c];
        store(y, alpha * s, accumulate);
    } else if (inner == 1) {
        ck_parallel_for(sum_rows_task, &j, outer);
    } else {
        j.col_tasks = ck_ceil_div(inner, COLS_PER_TASK);
        ck_parallel_for(sum_cols_task, &j, outer * j.col_tasks);
    }
}

void ck_reduce_sum_ref(float *y, const float *x, int64_t outer, int64_t r, int64_t inner, float alpha) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            double s = 0.0;
            for (int64_t k = 0; k < r; k++) s += x[(o * r + k) * inner + c];
            y[o * inner + c] = (float)(alpha * s);
        }
}

// ---- max, logsumexp, softmax: one task per block of lines (a line = one (outer, inner) pair) ----

#define LINES_PER_TASK 64

typedef void (*line_fn)(red_job *j, int64_t o, int64_t c);

static void lines_run(red_job *j, line_fn fn);

static float line_max(const float *x, int64_t r, int64_t inner) {
    float m = -INFINITY;
    for (int64_t k = 0; k < r; k++) if (x[k * inner] > m) m = x[k * inner];
    return m;
}

static void max_line(red_job *j, int64_t o, int64_t c) {
    j->y[o * j->inner + c] = line_max(j->x + o * j->r * j->inner + c, j->r, j->inner);
}

static void lse_line(red_job *j, int64_t o, int64_t c) {
    const float *x = j->x + o * j->r * j->inner + c;
    float m = line_max(x, j->r, j->inner);
    float out;
    if (isinf(m)) out = m;   // all -inf (or +inf present): the max is the answer
    else {
        double s = 0.0;
        for (int64_t k = 0; k < j->r; k++) s += expf(x[k * j->inner] - m);
        out = m + (float)log(s);
    }
    j->y[o * j->inner + c] = out;
}

static void lse_back_line(red_job *j, int64_t o, int64_t c) {
    int64_t base = o * j->r * j->inner + c;
    float g = j->dy[o * j->inner + c], l = j->aux[o * j->inner + c];
    if (isinf(l)) return;
    for (int64_t k = 0; k < j->r; k++) {
        int64_t i = base + k * j->inner;
        j->dx[i] += g * expf(j->x[i] - l);
    }
}

static void softmax_line(red_job *j, int64_t o, int64_t c) {
    int64_t base = o * j->r * j->inner + c, st = j->inner;
    const float *x = j->x + base;
    float *y = j->y + base;
    float m = line_max(x, j->r, st);
    double s = 0.0;
    for (int64_t k = 0; k < j->r; k++) { float e = expf(x[k * st] - m); y[k * st] = e; s += e; }
    float inv = (float)(1.0 / s);
    for (int64_t k = 0; k < j->r; k++) y[k * st] *= inv;
}

static void softmax_back_line(red_job *j, int64_t o, int64_t c) {
    int64_t base = o * j->r * j->inner + c, st = j->inner;
    const float *y = j->aux + base, *dy = j->dy + base;
    double dot = 0.0;
    for (int64_t k = 0; k < j->r; k++) dot += (double)dy[k * st] * y[k * st];
    float d = (float)dot;
    for (int64_t k = 0; k < j->r; k++) j->dx[base + k * st] += y[k * st] * (dy[k * st] - d);
}

typedef struct { red_job *j; line_fn fn; } lines_ctx;

static void lines_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    lines_ctx *lc = p;
    red_job *j = lc->j;
    int64_t total = j->outer * j->inner;
    for (int64_t l = t * LINES_PER_TASK; l < ck_min64(total, (t + 1) * LINES_PER_TASK); l++)
        lc->fn(j, l / j->inner, l % j->inner);
}

static void lines_run(red_job *j, line_fn fn) {
    lines_ctx lc = {j, fn};
    ck_parallel_for(lines_task, &lc, ck_ceil_div(j->outer * j->inner, LINES_PER_TASK));
}

void ck_reduce_max(float *y, const float *x, int64_t outer, int64_t r, int64_t inner) {
    red_job j = {.y = y, .x = x, .outer = outer, .r = r, .inner = inner};
    lines_run(&j, max_line);
}

void ck_logsumexp_forward(float *y, const float *x, int64_t outer, int64_t r, int64_t inner) {
    red_job j = {.y = y, .x = x, .outer = outer, .r = r, .inner = inner};
    lines_run(&j, lse_line);
}

void ck_logsumexp_backward(float *dx, const float *dy, const float *x, const float *y,
                           int64_t outer, int64_t r, int64_t inner) {
    red_job j = {.dx = dx, .dy = dy, .x = x, .aux = y, .outer = outer, .r = r, .inner = inner};
    lines_run(&j, lse_back_line);
}

void ck_softmax_forward(float *y, const float *x, int64_t outer, int64_t r, int64_t inner) {
    red_job j = {.y = y, .x = x, .outer = outer, .r = r, .inner = inner};
    lines_run(&j, softmax_line);
}

void ck_softmax_backward(float *dx, const float *dy, const float *y, int64_t outer, int64_t r,
                         int64_t inner) {
    red_job j = {.dx = dx, .dy = dy, .aux = y, .outer = outer, .r = r, .inner = inner};
    lines_run(&j, softmax_back_line);
}

void ck_softmax_forward_ref(float *y, const float *x, int64_t outer, int64_t r, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            double m = -INFINITY, s = 0.0;
            for (int64_t k = 0; k < r; k++) m = fmax(m, x[(o * r + k) * inner + c]);
            for (int64_t k = 0; k < r; k++) s += exp(x[(o * r + k) * inner + c] - m);
            for (int64_t k = 0; k < r; k++)
                y[(o * r + k) * inner + c] = (float)(exp(x[(o * r + k) * inner + c] - m) / s);
        }
}

// ---- sum of squares ----

typedef struct { const float *x; int64_t n; double partial[MAX_CHUNKS]; int64_t chunk; } sq_job;

static void sq_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    sq_job *j = p;
    int64_t s = t * j->chunk, e = ck_min64(s + j->chunk, j->n);
    double acc[4] = {0, 0, 0, 0};
    int64_t i = s;
    for (; i + 4 <= e; i += 4)
        for (int l = 0; l < 4; l++) acc[l] += (double)j->x[i + l] * j->x[i + l];
    for (int l = 0; i + l < e; l++) acc[l] += (double)j->x[i + l] * j->x[i + l];
    j->partial[t] = (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

double ck_sum_squares(const float *x, int64_t n) {
    if (n <= 0) return 0.0;
    sq_job j = {.x = x, .n = n, .chunk = ck_max64(CK_BLOCK, ck_ceil_div(n, MAX_CHUNKS))};
    int64_t nchunks = ck_ceil_div(n, j.chunk);
    ck_parallel_for(sq_task, &j, nchunks);
    double s = 0.0;
    for (int64_t c = 0; c < nchunks; c++) s += j.partial[c];
    return s;
}

// Strided copy: rows over the last dim, outer dims decoded per row.
#include "ck_layout.h"
#include "ck_elementwise.h"
#include "ck_internal.h"
#include <string.h>

typedef struct {
    float *y;
    const float *x;
    int64_t ys[CK_MAX_DIMS], xs[CK_MAX_DIMS], shape[CK_MAX_DIMS];
    int ndim, acc;
    int64_t rows, inner, rows_per_task;
} copy_job;

// Task t covers rows [r0, r1) when rows are short, or one CK_BLOCK segment of a long row.
static void copy_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const copy_job *j = p;
    int last = j->ndim - 1;
    int64_t yi = j->ys[last], xi = j->xs[last];
    int64_t r0, r1, c0 = 0, c1 = j->inner;
    if (j->inner > CK_BLOCK) {
        int64_t segs = ck_ceil_div(j->inner, CK_BLOCK);
        r0 = t / segs;
        r1 = r0 + 1;
        c0 = (t % segs) * CK_BLOCK;
        c1 = ck_min64(j->inner, c0 + CK_BLOCK);
    } else {
        r0 = t * j->rows_per_task;
        r1 = ck_min64(j->rows, r0 + j->rows_per_task);
    }
    int64_t n = c1 - c0;
    for (int64_t r = r0; r < r1; r++) {
        int64_t q = r, yo = 0, xo = 0;
        for (int d = last - 1; d >= 0; d--) {
            int64_t i = q % j->shape[d];
            q /= j->shape[d];
            yo += i * j->ys[d];
            xo += i * j->xs[d];
        }
        float *y = j->y + yo + c0 * yi;
        const float *x = j->x + xo + c0 * xi;
        if (j->acc) for (int64_t i = 0; i < n; i++) y[i * yi] += x[i * xi];
        else if (yi == 1 && xi == 1) memcpy(y, x, (size_t)n * sizeof(float));
        else for (int64_t i = 0; i < n; i++) y[i * yi] = x[i * xi];
    }
}

void ck_strided_copy(float *y, const int64_t *ystride, const float *x, const int64_t *xstride,
                     const int64_t *shape, int ndim, int accumulate) {
    copy_job j = {.y = y, .x = x, .ndim = ndim, .acc = accumulate, .rows = 1};
    for (int d = 0; d < ndim; d++) {
        j.ys[d] = ystride[d];
        j.xs[d] = xstride[d];
        j.shape[d] = shape[d];
        if (d < ndim - 1) j.rows *= shape[d];
    }
    j.inner = shape[ndim - 1];
    if (j.rows * j.inner == 0) return;
    j.rows_per_task = ck_max64(1, CK_BLOCK / ck_max64(1, j.inner));
    int64_t tasks = j.inner > CK_BLOCK ? j.rows * ck_ceil_div(j.inner, CK_BLOCK) : ck_ceil_div(j.rows, j.rows_per_task);
    ck_parallel_for(copy_task, &j, tasks);
}

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

static void copy_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const copy_job *j = p;
    int last = j->ndim - 1;
    int64_t yi = j->ys[last], xi = j->xs[last];
    for (int64_t r = t * j->rows_per_task; r < ck_min64(j->rows, (t + 1) * j->rows_per_task); r++) {
        int64_t q = r, yo = 0, xo = 0;
        for (int d = last - 1; d >= 0; d--) {
            int64_t i = q % j->shape[d];
            q /= j->shape[d];
            yo += i * j->ys[d];
            xo += i * j->xs[d];
        }
        float *y = j->y + yo;
        const float *x = j->x + xo;
        if (j->acc) for (int64_t i = 0; i < j->inner; i++) y[i * yi] += x[i * xi];
        else if (yi == 1 && xi == 1) memcpy(y, x, (size_t)j->inner * sizeof(float));
        else for (int64_t i = 0; i < j->inner; i++) y[i * yi] = x[i * xi];
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
    ck_parallel_for(copy_task, &j, ck_ceil_div(j.rows, j.rows_per_task));
}

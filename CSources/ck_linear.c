// Fused linear layer over the pool: stripes of batch rows (the GEMM plan restricted to rows).
#include "ck_linear.h"
#include "ck_activation.h"
#include "ck_gemm.h"
#include "ck_reduce.h"
#include "ck_internal.h"
#include "ck_blas.h"
#include <string.h>

typedef struct {
    float *y, *z, *dx, *dz;
    const float *x, *w, *b, *dy, *yc, *zc;
    int64_t B, IN, OUT, rows;
    int act, set_dx;
} lin_job;

// Rows per stripe: the GEMM plan for a (B x OUT x IN) product, forced along rows.
static int64_t row_stripe(int64_t B, int64_t IN, int64_t OUT) {
    int64_t n, len;
    int along_rows;
    ck_gemm_plan(B, 1, IN * OUT, &n, &len, &along_rows);   // flops 2*B*IN*OUT
    return len;
}

static void fwd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const lin_job *j = p;
    int64_t r0 = t * j->rows, m = ck_min64(j->rows, j->B - r0), n = m * j->OUT;
    float *y = j->y + r0 * j->OUT, *z = j->z ? j->z + r0 * j->OUT : y;
    // The bias goes in first and the product is added to it (beta 1): one pass fewer than
    // zeroing, multiplying and then adding the bias. (Where OpenBLAS splits a long IN into
    // blocks, the bias joins the first block's sum rather than the total.)
    if (j->b)
        for (int64_t i = 0; i < m; i++) memcpy(z + i * j->OUT, j->b, (size_t)j->OUT * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)j->OUT, (int)j->IN, 1.0f,
                j->x + r0 * j->IN, (int)j->IN, j->w, (int)j->IN, j->b ? 1.0f : 0.0f, z, (int)j->OUT);
    if (j->act != CK_ACT_NONE) ck_act_forward_serial(y, z, n, j->act);
    else if (z != y) memcpy(y, z, (size_t)n * sizeof(float));
}

void ck_linear_forward(float *y, float *z, const float *x, const float *w, const float *b,
                       int64_t B, int64_t IN, int64_t OUT, int act) {
    if (B == 0 || OUT == 0) return;
    lin_job j = {.y = y, .z = z, .x = x, .w = w, .b = b, .B = B, .IN = IN, .OUT = OUT, .act = act};
    j.rows = row_stripe(B, IN, OUT);
    ck_parallel_for(fwd_task, &j, ck_ceil_div(B, j.rows));
}

// Per stripe of rows: dz = dy * act'(z), then dx (+)= dz W.
static void bwd_rows_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const lin_job *j = p;
    int64_t r0 = t * j->rows, m = ck_min64(j->rows, j->B - r0);
    const float *g = j->dy + r0 * j->OUT;
    if (j->act != CK_ACT_NONE) {
        float *dz = j->dz + r0 * j->OUT;
        ck_act_backward_serial(dz, g, j->zc + r0 * j->OUT, j->yc ? j->yc + r0 * j->OUT : NULL,
                               m * j->OUT, j->act, 0);
        g = dz;
    }
    if (j->dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)j->IN, (int)j->OUT, 1.0f,
                    g, (int)j->OUT, j->w, (int)j->IN, j->set_dx ? 0.0f : 1.0f, j->dx + r0 * j->IN, (int)j->IN);
}

int64_t ck_linear_backward_workspace_floats(int64_t B, int64_t IN, int64_t OUT, int act) {
    return (act != CK_ACT_NONE ? B * OUT : 0) + ck_gemm_workspace_floats(OUT, IN, B);
}

void ck_linear_backward(float *dx, float *dw, float *db, float *workspace, int flags,
                        const float *dy, const float *z, const float *y, const float *x,
                        const float *w, int64_t B, int64_t IN, int64_t OUT, int act) {
    if (OUT == 0) return;
    if (B == 0) {   // nothing flows back; "set" buffers still need their zeros
        if (dx && (flags & CK_LINEAR_SET_DX)) memset(dx, 0, 0);
        if (dw && (flags & CK_LINEAR_SET_DW)) memset(dw, 0, (size_t)(OUT * IN) * sizeof(float));
        if (db && (flags & CK_LINEAR_SET_DB)) memset(db, 0, (size_t)OUT * sizeof(float));
        return;
    }
    float *dz = act != CK_ACT_NONE ? workspace : NULL;
    float *gemm_ws = workspace + (act != CK_ACT_NONE ? B * OUT : 0);
    lin_job j = {.dx = dx, .dz = dz, .dy = dy, .zc = z, .yc = y, .x = x, .w = w, .B = B, .IN = IN,
                 .OUT = OUT, .act = act, .set_dx = flags & CK_LINEAR_SET_DX};
    j.rows = row_stripe(B, IN, OUT);
    if (act != CK_ACT_NONE || dx) ck_parallel_for(bwd_rows_task, &j, ck_ceil_div(B, j.rows));
    const float *g = act != CK_ACT_NONE ? dz : dy;
    if (dw) ck_gemm(1, 0, OUT, IN, B, 1.0f, g, OUT, x, IN, (flags & CK_LINEAR_SET_DW) ? 0.0f : 1.0f, dw, IN, gemm_ws);
    if (db) ck_reduce_sum(db, g, 1, B, OUT, 1.0f, !(flags & CK_LINEAR_SET_DB));
}

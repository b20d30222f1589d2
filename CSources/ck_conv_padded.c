// 2-D convolution, 3x3 stride-1 pad-1 forward and dx at SIMD levels avx2 and neon: direct
// register-tiled passes over a zero-padded copy of the input (see ck_conv.c for when).
//
// AVX2 and NEON have no masked loads, so instead of masking the taps that fall outside the
// image (as the AVX-512 engine in ck_conv_direct.c does), the input is first copied into planes
// with a zero row above and below and a zero column at the left of every row: (H + 2) rows of
// R = W + 1 floats. Output pixel (r, c) sits at o = r*R + c of an H x R grid (c = W is the pad
// column: computed, never stored), and tap (ky, kx) of it reads the padded plane at
// o + (ky+1)*R + (kx+1): a row wrap lands on a pad column, a row above or below the image on a
// pad row, so every tap of every vector is a plain load. An output vector is 8 consecutive grid
// positions of one image (the images' grids follow each other, so a small image's last vectors
// and the next image's first share a run); a run computes PD_RV of them for PD_QV output
// channels (2 x 6 x 8: 12 accumulators, which with the inputs and two weights fit AVX2's 16
// registers). Planes of at most PD_LANES_MAX_HW pixels use a second tiling instead, with output
// channels in the lanes (below).
//
// Each output element is the AVX-512 engine's chain: per block of DC_CIB input channels,
// fma(w, x, acc) over the taps (outer) and channels (inner) from 0, the block added to y, then
// the bias; a tap outside the image reads the pad's +0.0 where the masked engine reads a masked
// +0.0. So the results are the same bits at every vector level, in the scalar twin here, and for
// any split of the work into tasks.
#include "ck_conv_internal.h"
#include "ck_simd.h"
#include <math.h>
#include <string.h>

#define PD_QV 2      // output channels per run
#define PD_RV 6      // 8-position vectors per run
#define PD_TASKS 64  // aim for at least this many tasks (channel blocks x parts of the batch)
#define PD_SLACK 16  // floats after the last plane: the last vectors' taps read up to 2R + 9 past it
#define PD_LANES_MAX_HW 64   // planes of at most this many pixels run with channels in the lanes

typedef struct {
    float *y;
    const float *xp, *wp, *b;   // padded input, packed weights (ck_conv_direct_pack), bias or NULL
    int64_t N, CI, CO, H, W, R, ncb, nparts;
    int accumulate;   // y += result (dx without its SET flag) instead of y = result + b
} pd_job;

static int64_t pd_plane(int64_t H, int64_t W) { return (H + 2) * (W + 1); }
static int64_t pd_vectors(int64_t H, int64_t W) { return ck_ceil_div(H * (W + 1), 8); }

// Floats a pass producing CO channels from CI over N images of H x W needs: packed weights, then
// the padded copy.
int64_t ck_conv_padded_floats(int64_t N, int64_t ci, int64_t co, int64_t H, int64_t W) {
    return ck_conv_direct_pack_floats(ci, co) + N * ci * pd_plane(H, W) + PD_SLACK;
}

// ---- the padded copy ----

typedef struct {
    float *xp;
    const float *x;
    int64_t planes, H, W;
} pad_job;

// Planes [t*planes/nt, ...) : pad rows and columns zero, the image rows in between.
static void pad_task(void *ctx, int64_t t, int64_t nt) {
    const pad_job *j = ctx;
    const int64_t H = j->H, W = j->W, R = W + 1;
    for (int64_t p = t * j->planes / nt; p < (t + 1) * j->planes / nt; p++) {
        float *d = j->xp + p * pd_plane(H, W);
        const float *s = j->x + p * H * W;
        memset(d, 0, (size_t)(R + 1) * sizeof(float));   // the row above, and row 1's pad column
        for (int64_t r = 0; r < H; r++) {
            memcpy(d + (r + 1) * R + 1, s + r * W, (size_t)W * sizeof(float));
            d[(r + 2) * R] = 0.0f;   // the next row's pad column (for r = H - 1: the row below's first float)
        }
        memset(d + (H + 1) * R + 1, 0, (size_t)(R - 1) * sizeof(float));   // the rest of the row below
    }
}

static void pd_pad(float *xp, const float *x, int64_t planes, int64_t H, int64_t W) {
    pad_job j = {xp, x, planes, H, W};
    ck_parallel_for(pad_task, &j, ck_min64(planes, 4 * MAX_CHUNKS));
    memset(xp + planes * pd_plane(H, W), 0, PD_SLACK * sizeof(float));
}

// ---- the passes ----

// Stores r at grid position (row, col) of output channel plane d (H x W) when it is an image
// pixel (not the pad column, not past the grid): y = r (+ old) (+ bias).
static inline void pd_put(float *d, const pd_job *j, int64_t row, int64_t col, float r, int add, const float *bias) {
    if (col >= j->W || row >= j->H) return;
    float *e = d + row * j->W + col;
    if (add) r = *e + r;
    if (bias) r = r + *bias;
    *e = r;
}

// Where global vector g (the batch's images' grids end to end, ck_ceil_div(H*R, 8) vectors
// each) lies: its image n and first grid position o.
static inline void pd_locate(const pd_job *j, int64_t g, int64_t *n, int64_t *o) {
    const int64_t per_image = pd_vectors(j->H, j->W);
    *n = g / per_image;
    *o = 8 * (g - *n * per_image);
}

#if CK_X86 || CK_NEON
// Global vectors [g0, g0 + NV) (a run may span images), output channels [q0, q0 + nq) of block
// cb (nq <= PD_QV).
CK_VEC static inline __attribute__((always_inline)) void pd_run_vec(const pd_job *j, int64_t cb, int q0, int nq,
                                                                    int64_t g0, const int NV) {
    const int64_t CI = j->CI, R = j->R, PS = pd_plane(j->H, j->W), HW = j->H * j->W;
    const float *wb = j->wp + cb * CI * 9 * DC_COB + q0;
    const float *bias = j->b && !j->accumulate ? j->b + cb * DC_COB + q0 : NULL;
    int64_t n[PD_RV], o[PD_RV], xo[PD_RV];   // vector v: image, grid position, offset in the padded copy
    for (int v = 0; v < NV; v++) {
        pd_locate(j, g0 + v, &n[v], &o[v]);
        xo[v] = n[v] * CI * PS + o[v];
    }
    for (int64_t ci0 = 0; ci0 < CI; ci0 += DC_CIB) {
        const int64_t ci1 = ck_min64(CI, ci0 + DC_CIB);
        ck_v8f acc[PD_QV][PD_RV];
        for (int q = 0; q < PD_QV; q++)
            for (int v = 0; v < NV; v++) acc[q][v] = (ck_v8f)0.0f;
        for (int k = 0; k < 9; k++) {
            const float *x = j->xp + ci0 * PS + (k / 3) * R + k % 3, *w = wb + (ci0 * 9 + k) * DC_COB;
            for (int64_t ci = ci0; ci < ci1; ci++, x += PS, w += 9 * DC_COB)
                for (int v = 0; v < NV; v++) {
                    const ck_v8f xv = ck_load8(x + xo[v]);
                    for (int q = 0; q < PD_QV; q++) acc[q][v] = __builtin_elementwise_fma((ck_v8f)w[q], xv, acc[q][v]);
                }
        }
        // The first block writes (or adds to an accumulated y), later blocks add; the bias last.
        const int add = ci0 > 0 || j->accumulate;
        const float *bq = ci1 == CI ? bias : NULL;
        for (int v = 0; v < NV; v++) {
            const int64_t row = o[v] / R, col = o[v] % R;
            for (int q = 0; q < nq; q++) {
                float *d = j->y + (n[v] * j->CO + cb * DC_COB + q0 + q) * HW;
                if (col + 8 <= j->W && row < j->H) {   // 8 pixels of one image row: one vector
                    ck_v8f r = acc[q][v];
                    if (add) r = ck_load8(d + row * j->W + col) + r;
                    if (bq) r = r + (ck_v8f)bq[q];
                    ck_store8(d + row * j->W + col, r);
                    continue;
                }
                for (int64_t l = 0, r = row, c = col; l < 8; l++, c = c + 1 == R ? (r++, 0) : c + 1)
                    pd_put(d, j, r, c, acc[q][v][l], add, bq ? bq + q : NULL);
            }
        }
    }
}
typedef void (*pd_run_fn)(const pd_job *, int64_t, int, int, int64_t);
#define PD_RUN(NV)                                                                                \
    CK_VEC static void pd_run##NV(const pd_job *j, int64_t cb, int q0, int nq, int64_t g0) {     \
        pd_run_vec(j, cb, q0, nq, g0, NV);                                                        \
    }
PD_RUN(1) PD_RUN(2) PD_RUN(3) PD_RUN(4) PD_RUN(5) PD_RUN(6)
static const pd_run_fn pd_runs[PD_RV] = {pd_run1, pd_run2, pd_run3, pd_run4, pd_run5, pd_run6};
#endif

// The scalar twin of both tilings: the chains of output channel co of image n at grid position
// o (an image pixel), one at a time.
static void pd_element(const pd_job *j, int64_t n, int64_t co, int64_t o) {
    const int64_t CI = j->CI, R = j->R, PS = pd_plane(j->H, j->W), HW = j->H * j->W;
    const float *w = j->wp + co / DC_COB * CI * 9 * DC_COB + co % DC_COB, *x = j->xp + n * CI * PS + o;
    float *d = j->y + (n * j->CO + co) * HW + o / R * j->W + o % R;
    for (int64_t ci0 = 0; ci0 < CI; ci0 += DC_CIB) {
        const int64_t ci1 = ck_min64(CI, ci0 + DC_CIB);
        float acc = 0.0f;
        for (int k = 0; k < 9; k++)
            for (int64_t ci = ci0; ci < ci1; ci++) acc = fmaf(w[(ci * 9 + k) * DC_COB], x[ci * PS + (k / 3) * R + k % 3], acc);
        float r = (ci0 > 0 || j->accumulate) ? *d + acc : acc;
        if (ci1 == CI && j->b && !j->accumulate) r = r + j->b[co];
        *d = r;
    }
}

// Vectors [g0, g0 + nv), output channels [q0, q0 + nq) of block cb, one element at a time.
static void pd_run_scalar(const pd_job *j, int64_t cb, int q0, int nq, int64_t g0, int nv) {
    for (int64_t g = g0; g < g0 + nv; g++) {
        int64_t n, o0;
        pd_locate(j, g, &n, &o0);
        for (int64_t o = o0; o < o0 + 8; o++)
            if (o % j->R < j->W && o / j->R < j->H)
                for (int q = 0; q < nq; q++) pd_element(j, n, cb * DC_COB + q0 + q, o);
    }
}

// ---- channels in the lanes (small planes) ----
//
// On small planes a vector of 8 grid positions wastes lanes on the pad column and on each
// image's last, partial vector (and its misaligned loads cost more than its work). There the
// lanes hold output channels instead: a run is PD_CP
// image pixels (any images, no pad positions) x 16 output channels (two packed weight blocks,
// whose 8 weights per tap and input channel are one aligned load), and each pixel's input is a
// broadcast scalar of the padded copy. Same chains, so the same bits.
#define PD_CP 6   // pixels per run: 6 x 2 accumulators

// Pixel P of the batch (images' pixels end to end): its image, grid position and offset in the
// padded copy.
static inline void pd_pixel(const pd_job *j, int64_t P, int64_t *n, int64_t *o, int64_t *xo) {
    const int64_t HW = j->H * j->W, p = P % HW;
    *n = P / HW;
    *o = p / j->W * j->R + p % j->W;
    *xo = *n * j->CI * pd_plane(j->H, j->W) + *o;
}

#if CK_X86 || CK_NEON
// Pixels [P0, P0 + NP) (NP <= PD_CP), output channel blocks cb and cb + 1 (TWO; else cb alone).
CK_VEC static inline __attribute__((always_inline)) void pd_lanes_vec(const pd_job *j, int64_t cb, int64_t P0, const int NP,
                                                                      const int TWO) {
    const int64_t CI = j->CI, R = j->R, PS = pd_plane(j->H, j->W), HW = j->H * j->W, blk = CI * 9 * DC_COB;
    const float *wb = j->wp + cb * blk;
    const float *bias = j->b && !j->accumulate ? j->b + cb * DC_COB : NULL;
    int64_t n[PD_CP], o[PD_CP], xo[PD_CP];
    for (int p = 0; p < NP; p++) pd_pixel(j, P0 + p, &n[p], &o[p], &xo[p]);
    for (int64_t ci0 = 0; ci0 < CI; ci0 += DC_CIB) {
        const int64_t ci1 = ck_min64(CI, ci0 + DC_CIB);
        ck_v8f acc[PD_CP][2];
        for (int p = 0; p < NP; p++) acc[p][0] = acc[p][1] = (ck_v8f)0.0f;
        for (int k = 0; k < 9; k++) {
            const float *x = j->xp + ci0 * PS + (k / 3) * R + k % 3, *w = wb + (ci0 * 9 + k) * DC_COB;
            for (int64_t ci = ci0; ci < ci1; ci++, x += PS, w += 9 * DC_COB) {
                const ck_v8f w0 = ck_load8(w), w1 = TWO ? ck_load8(w + blk) : w0;
                for (int p = 0; p < NP; p++) {
                    const ck_v8f xv = (ck_v8f)x[xo[p]];
                    acc[p][0] = __builtin_elementwise_fma(w0, xv, acc[p][0]);
                    if (TWO) acc[p][1] = __builtin_elementwise_fma(w1, xv, acc[p][1]);
                }
            }
        }
        const int add = ci0 > 0 || j->accumulate;
        const float *bq = ci1 == CI ? bias : NULL;
        const int nco = (int)ck_min64((TWO ? 2 : 1) * DC_COB, j->CO - cb * DC_COB);
        for (int p = 0; p < NP; p++) {
            float lane[2 * DC_COB];
            ck_store8(lane, acc[p][0]);
            ck_store8(lane + DC_COB, acc[p][1]);
            float *d = j->y + (n[p] * j->CO + cb * DC_COB) * HW + o[p] / R * j->W + o[p] % R;
            for (int q = 0; q < nco; q++) {
                float r = lane[q];
                if (add) r = d[q * HW] + r;
                if (bq) r = r + bq[q];
                d[q * HW] = r;
            }
        }
    }
}
typedef void (*pd_lanes_fn)(const pd_job *, int64_t, int64_t);
#define PD_LANES(NP, TWO)                                                                       \
    CK_VEC static void pd_lanes##NP##_##TWO(const pd_job *j, int64_t cb, int64_t P0) {         \
        pd_lanes_vec(j, cb, P0, NP, TWO);                                                       \
    }
PD_LANES(1, 0) PD_LANES(2, 0) PD_LANES(3, 0) PD_LANES(4, 0) PD_LANES(5, 0) PD_LANES(6, 0)
PD_LANES(1, 1) PD_LANES(2, 1) PD_LANES(3, 1) PD_LANES(4, 1) PD_LANES(5, 1) PD_LANES(6, 1)
static const pd_lanes_fn pd_lanes[2][PD_CP] = {{pd_lanes1_0, pd_lanes2_0, pd_lanes3_0, pd_lanes4_0, pd_lanes5_0, pd_lanes6_0},
                                               {pd_lanes1_1, pd_lanes2_1, pd_lanes3_1, pd_lanes4_1, pd_lanes5_1, pd_lanes6_1}};
#endif

// Pixels [P0, P0 + np), the output channels of `blocks` blocks from cb, one element at a time.
static void pd_lanes_scalar(const pd_job *j, int64_t cb, int64_t P0, int np, int blocks) {
    const int64_t nco = ck_min64(blocks * DC_COB, j->CO - cb * DC_COB);
    for (int64_t P = P0; P < P0 + np; P++) {
        int64_t n, o, xo;
        pd_pixel(j, P, &n, &o, &xo);
        for (int64_t q = 0; q < nco; q++) pd_element(j, n, cb * DC_COB + q, o);
    }
}

// Task (part of the batch's pixels, pair of channel blocks): runs of PD_CP pixels.
static void pd_lanes_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const pd_job *j = ctx;
    const int64_t pairs = ck_ceil_div(j->ncb, 2), cb = 2 * (t % pairs), part = t / pairs, total = j->N * j->H * j->W;
    const int blocks = (int)ck_min64(2, j->ncb - cb);
    const int simd = ck_cpu_simd_enabled();
    for (int64_t P = part * total / j->nparts, end = (part + 1) * total / j->nparts; P < end; P += PD_CP) {
        const int np = (int)ck_min64(PD_CP, end - P);
#if CK_X86 || CK_NEON
        if (simd) {
            pd_lanes[blocks - 1][np - 1](j, cb, P);
            continue;
        }
#endif
        pd_lanes_scalar(j, cb, P, np, blocks);
    }
    (void)simd;
}

// Task (part of the batch's vectors, block of DC_COB output channels): runs of PD_RV vectors,
// each for every PD_QV-channel slice of the block while its inputs are in cache.
static void pd_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const pd_job *j = ctx;
    const int64_t cb = t % j->ncb, part = t / j->ncb, total = j->N * pd_vectors(j->H, j->W);
    const int64_t nco = ck_min64(DC_COB, j->CO - cb * DC_COB);
    const int simd = ck_cpu_simd_enabled();
    for (int64_t g = part * total / j->nparts, end = (part + 1) * total / j->nparts; g < end; g += PD_RV) {
        const int nv = (int)ck_min64(PD_RV, end - g);
        for (int q0 = 0; q0 < nco; q0 += PD_QV) {
            const int nq = (int)ck_min64(PD_QV, nco - q0);
#if CK_X86 || CK_NEON
            if (simd) {
                pd_runs[nv - 1](j, cb, q0, nq, g);
                continue;
            }
#endif
            pd_run_scalar(j, cb, q0, nq, g, nv);
        }
    }
    (void)simd;
}

// y (N, CO, H, W) (=|+=) the pass over x (N, CI, H, W) with w's taps (forward) or its flipped
// transpose (dx); ws holds ck_conv_padded_floats(N, CI, CO, H, W) floats.
static void pd_run(float *y, const float *x, const float *w, const float *b, float *ws, int64_t N, int64_t Cin, int64_t H,
                   int64_t W, int64_t Cout, int for_dx, int accumulate) {
    const int64_t CI = for_dx ? Cout : Cin, CO = for_dx ? Cin : Cout, ncb = ck_ceil_div(CO, DC_COB);
    ck_conv_direct_pack(ws, w, Cin, Cout, for_dx);
    float *xp = ws + ck_conv_direct_pack_floats(CI, CO);
    pd_pad(xp, x, N * CI, H, W);
    pd_job j = {.y = y, .xp = xp, .wp = ws, .b = b, .N = N, .CI = CI, .CO = CO, .H = H, .W = W, .R = W + 1, .ncb = ncb,
                .accumulate = accumulate};
    if (H * W <= PD_LANES_MAX_HW) {   // small planes: channels in the lanes
        const int64_t pairs = ck_ceil_div(ncb, 2);
        j.nparts = ck_max64(1, ck_min64(ck_ceil_div(N * H * W, PD_CP), ck_ceil_div(PD_TASKS, pairs)));
        ck_parallel_for(pd_lanes_task, &j, pairs * j.nparts);
        return;
    }
    j.nparts = ck_max64(1, ck_min64(ck_ceil_div(N * pd_vectors(H, W), PD_RV), ck_ceil_div(PD_TASKS, ncb)));
    ck_parallel_for(pd_task, &j, ncb * j.nparts);
}

void ck_conv_padded_forward(float *y, const float *x, const float *w, const float *b, float *workspace, int64_t N,
                            int64_t Cin, int64_t H, int64_t W, int64_t Cout) {
    pd_run(y, x, w, b, workspace, N, Cin, H, W, Cout, 0, 0);
}

void ck_conv_padded_backward_dx(float *dx, float *workspace, int flags, const float *dy, const float *w, int64_t N,
                                int64_t Cin, int64_t H, int64_t W, int64_t Cout) {
    pd_run(dx, dy, w, NULL, workspace, N, Cin, H, W, Cout, 1, !(flags & CK_CONV_SET_DX));
}

// 2-D convolution, im2col + GEMM engine: any kernel size, stride and padding (the engine for
// every shape the direct 3x3 engines do not take). im2col tiles and single-threaded OpenBLAS
// sgemm over the pool.
//
// Tiles: a band of `rows` output rows of one image (large images), or `g` whole images (small
// images, so each GEMM has enough columns). Tile t covers image t / nb, band t % nb (g == 1)
// or images [t*g, t*g + g) (nb == 1). The tiles are split into a fixed number (<= 16) of chunks
// of consecutive tiles, one pool task per chunk. Tile sizes and chunk counts depend only on the
// problem sizes, so neither the workspace size nor any result depends on the thread count.
// A running task checks out a scratch slot (im2col buffer) of the workspace, lowest free one
// first, so the slots in use stay warm in cache; slots hold no results.
//
//   forward  per tile: col (KK x cols) = im2col(x tile), y tile = w (Cout x KK) col (+ b)
//   dw, db   per chunk of tiles: a partial sum of dw^T (KK x Cout) = sum over its tiles of
//            col dy_tile^T, kept in the workspace; the partials are added in chunk order and
//            transposed into dw. A large dw is also split by rows of dw^T (ranges of KK), which
//            needs only those rows of col: fewer partial sums, no duplicated im2col work.
//   dx       stride 1: the stride-1 convolution of dy with the flipped, transposed kernel, run
//            through the forward path (no scatter). Other strides: per band of input rows,
//            dcol = w^T dy (for the output rows that reach the band, halo included), then
//            col2im restricted to the band, so each dx element has one owner.
// KK = Cin*K*K; col row kr = (ci*K + ky)*K + kx, matching w's (Cout, Cin, K, K) layout.
// im2col has vector paths (AVX2 on x86-64, NEON on aarch64) for stride 1 with same-size output
// (3x3 pad 1, ...) and for stride 2.
#include "ck_conv_internal.h"
#include "ck_simd.h"
#include "ck_blas.h"
#include <string.h>

#define COL_CAP (1 << 18)      // floats of a tile's im2col (raised to fit MIN_TILE_PIX pixels)
#define MIN_TILE_PIX 128       // pixels a band should have at least, when the image has them
#define GROUP_PIX 192          // whole images smaller than this are grouped to about this size
#define MIN_CHUNKS 4           // chunks a pass has at least (of MAX_CHUNKS) when there are enough tiles
#define SLOTS_CAP (1 << 22)    // floats the slots of a pass aim to stay under (16 MB)
#define DW_PART_CAP (1 << 21)  // floats of dw partial sums (8 MB)
#define DW_TASKS 16            // dw pass: chunks x column splits aims at this many tasks
#define DW_MIN_PIECE 64        // narrowest column split of dw

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// ---- the plan: tiles, chunks, slots, workspace ----

typedef struct {
    int64_t N, Cin, H, W, Cout, K, s, pad, Ho, Wo, P, KK, HW;
    int pw;                     // 1x1, stride 1, no padding: a GEMM over pixels, no im2col
    int64_t rows, nb, g;        // output rows per band, bands per image, images per tile
    int64_t ntiles, cols;       // tiles; most columns a tile has (g * rows * Wo)
    int64_t tmp;                // floats of the gather buffer of a grouped tile (Cout * g * P)
    int64_t nch_f, slot_f;      // forward: chunks, floats per slot
    int64_t nch_x, slot_x;      // dx: chunks, floats per slot
    int64_t nch_a, nks, piece, slot_a;   // dw/db: chunks of tiles x column splits of width piece
} conv_plan;

typedef struct { int64_t n0, ng, oy0, oy1; } tile_t;

static tile_t tile_of(const conv_plan *p, int64_t t) {
    tile_t r;
    if (p->nb == 1) {
        r.n0 = t * p->g;
        r.ng = ck_min64(p->g, p->N - r.n0);
        r.oy0 = 0;
        r.oy1 = p->Ho;
    } else {
        r.n0 = t / p->nb;
        r.ng = 1;
        r.oy0 = (t % p->nb) * p->rows;
        r.oy1 = ck_min64(p->Ho, r.oy0 + p->rows);
    }
    return r;
}

// Input rows [iy0, iy1) owned by the band of output rows [oy0, oy1) (the bands partition
// [0, H)), and the output rows [q0, q1) whose windows reach them.
static void dx_band(const conv_plan *p, int64_t oy0, int64_t oy1, int64_t *iy0, int64_t *iy1,
                    int64_t *q0, int64_t *q1) {
    *iy0 = oy0 == 0 ? 0 : ck_min64(p->H, oy0 * p->s);
    *iy1 = oy1 == p->Ho ? p->H : ck_min64(p->H, oy1 * p->s);
    *q0 = ck_max64(0, cdiv(*iy0 + p->pad - p->K + 1, p->s));
    *q1 = ck_min64(p->Ho, fdiv(*iy1 - 1 + p->pad, p->s) + 1);
    if (*q1 < *q0) *q1 = *q0;
}

static int64_t chunks_for(int64_t ntiles, int64_t slot) {
    int64_t n = ck_min64(ntiles, MAX_CHUNKS);
    if (slot > 0) n = ck_min64(n, ck_max64(MIN_CHUNKS, SLOTS_CAP / slot));
    return ck_max64(n, 1);
}

static void make_plan(conv_plan *p, int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout,
                      int64_t K, int64_t s, int64_t pad) {
    memset(p, 0, sizeof *p);
    p->N = N; p->Cin = Cin; p->H = H; p->W = W; p->Cout = Cout; p->K = K; p->s = s; p->pad = pad;
    p->Ho = ck_conv2d_out_size(H, K, s, pad);
    p->Wo = ck_conv2d_out_size(W, K, s, pad);
    p->P = p->Ho * p->Wo;
    p->HW = H * W;
    p->KK = Cin * K * K;
    p->pw = K == 1 && s == 1 && pad == 0;
    if (N <= 0 || Cin <= 0 || Cout <= 0 || p->P <= 0) return;   // nothing to compute
    int64_t row_floats = p->KK * p->Wo;
    int64_t cap = ck_max64(COL_CAP, p->KK * MIN_TILE_PIX);
    p->rows = clamp64(cap / row_floats, 1, p->Ho);
    p->nb = ck_ceil_div(p->Ho, p->rows);
    p->rows = ck_ceil_div(p->Ho, p->nb);
    p->g = 1;
    if (p->nb == 1 && !p->pw && p->P < GROUP_PIX)
        p->g = clamp64(ck_min64(ck_ceil_div(GROUP_PIX, p->P), cap / (p->KK * p->P)), 1, N);
    p->ntiles = p->nb == 1 ? ck_ceil_div(N, p->g) : N * p->nb;
    p->cols = p->g * p->rows * p->Wo;
    p->tmp = p->g > 1 ? Cout * p->g * p->P : 0;

    // dx: the widest dcol a band needs (its own rows plus the halo).
    int64_t dcols = p->cols;
    if (p->g == 1)
        for (int64_t b = 0; b < p->nb; b++) {
            int64_t iy0, iy1, q0, q1;
            dx_band(p, b * p->rows, ck_min64(p->Ho, (b + 1) * p->rows), &iy0, &iy1, &q0, &q1);
            dcols = ck_max64(dcols, (q1 - q0) * p->Wo);
        }
    p->slot_f = p->pw ? 0 : p->KK * p->cols + p->tmp;
    p->slot_x = p->pw ? 0 : p->KK * dcols + p->tmp;
    p->nch_f = chunks_for(p->ntiles, p->slot_f);
    p->nch_x = chunks_for(p->ntiles, p->slot_x);

    // dw: chunks of tiles (partial sums), and column splits when there are few chunks.
    int64_t part = Cout * p->KK;
    p->nch_a = clamp64(ck_min64(p->ntiles, ck_min64(MAX_CHUNKS, DW_PART_CAP / part)), 1, MAX_CHUNKS);
    p->nks = 1;
    if (p->nch_a < DW_TASKS)
        p->nks = clamp64(ck_min64(ck_ceil_div(DW_TASKS, p->nch_a), p->KK / DW_MIN_PIECE), 1, DW_TASKS);
    p->piece = ck_min64(p->KK, ck_ceil_div(ck_ceil_div(p->KK, p->nks), 16) * 16);
    p->nks = ck_ceil_div(p->KK, p->piece);
    p->slot_a = p->pw ? 0 : p->piece * p->cols + p->tmp;
}

// dx of a stride-1 convolution is itself a stride-1 convolution of dy (N, Cout, Ho, Wo) with
// the flipped, transposed kernel w'[ci, co, ky, kx] = w[co, ci, K-1-ky, K-1-kx] and padding
// K-1-pad; its output is (N, Cin, H, W). Run through the forward machinery (im2col of dy,
// GEMM with the deep inner dimension Cout*K*K, result added straight into dx), it needs no
// col2im scatter and no band halo.
static int dx_gather(const conv_plan *p) {
    return p->s == 1 && p->K > 1 && p->pad <= p->K - 1;
}

static void make_dx_plan(conv_plan *t, const conv_plan *p) {
    make_plan(t, p->N, p->Cout, p->Ho, p->Wo, p->Cin, p->K, 1, p->K - 1 - p->pad);
}

// Floats of the dx pass: the flipped kernel, then the slots.
static int64_t dx_pass_floats(const conv_plan *p) {
    if (!dx_gather(p)) return p->nch_x * p->slot_x;
    conv_plan t;
    make_dx_plan(&t, p);
    return p->Cout * p->KK + t.nch_f * t.slot_f;
}

int64_t ck_conv_gemm_forward_floats(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                                    int64_t stride, int64_t pad) {
    conv_plan p;
    make_plan(&p, N, Cin, H, W, Cout, K, stride, pad);
    return p.nch_f * p.slot_f;
}

// The dw/db pass (slots, then the partial sums) runs before the dx pass, which may reuse the
// whole workspace.
int64_t ck_conv_gemm_backward_floats(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                                     int64_t stride, int64_t pad) {
    conv_plan p;
    make_plan(&p, N, Cin, H, W, Cout, K, stride, pad);
    int64_t parts = p.nch_a * Cout * p.KK + p.nch_a * Cout;   // dw^T and db partial sums
    return ck_max64(p.nch_a * p.nks * p.slot_a + parts, dx_pass_floats(&p));
}

// ---- row helpers: scalar code and vector code (AVX2 on x86-64, NEON on aarch64) that adds in
// the same order (same bits) ----

static void add_scalar(float *d, const float *s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
}
#if CK_X86 || CK_NEON
CK_VEC static void add_vec(float *d, const float *s, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) ck_store8(d + i, ck_load8(d + i) + ck_load8(s + i));
    for (; i < n; i++) d[i] += s[i];
}
#endif

static void addc_scalar(float *d, float c, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += c;
}
#if CK_X86 || CK_NEON
CK_VEC static void addc_vec(float *d, float c, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) ck_store8(d + i, ck_load8(d + i) + c);
    for (; i < n; i++) d[i] += c;
}
#endif

// Sum in a fixed order: 8 interleaved partial sums, combined pairwise, then the tail.
static inline float fold8(const float *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
static float sum_scalar(const float *x, int64_t n) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) a[l] += x[i + l];
    float s = fold8(a);
    for (; i < n; i++) s += x[i];
    return s;
}
#if CK_X86 || CK_NEON
CK_VEC static float sum_vec(const float *x, int64_t n) {
    ck_v8f v = 0.0f;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) v = v + ck_load8(x + i);
    float a[8];
    ck_store8(a, v);
    float s = fold8(a);
    for (; i < n; i++) s += x[i];
    return s;
}
#endif

// d[i] = s[2i], i < n (the scalar path of stride-2 im2col).
static void gather2_scalar(float *d, const float *s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = s[2 * i];
}

// d[2i] += s[i], i < n; `room` floats of d may be read and written back (>= 2n - 1).
static void scatter2_scalar(float *d, const float *s, int64_t n, int64_t room) {
    (void)room;
    for (int64_t i = 0; i < n; i++) d[2 * i] += s[i];
}
#if CK_X86 || CK_NEON
// 8 sources at a time into 16 floats of d (two vectors); at the end of the row only the floats
// inside `room` are read and written back.
CK_VEC static void scatter2_vec(float *d, const float *s, int64_t n, int64_t room) {
    const ck_v8i h0 = {0, 0, 1, 1, 2, 2, 3, 3}, h1 = h0 + 4;   // the source lane below each float of d
    for (int64_t i = 0; i < n; i += 8) {
        const int64_t w = room - 2 * i;
        const int r = (int)ck_min64(8, n - i);
        ck_v8f v = ck_load8_upto(s + i, r), d0 = ck_load8_upto(d + 2 * i, w), d1 = ck_load8_upto(d + 2 * i + 8, w - 8);
        // the even lanes add their source; the odd ones, and the even ones without a source,
        // keep their exact bits (-0 included)
        ck_v8f a0 = d0 + __builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3);
        ck_v8f a1 = d1 + __builtin_shufflevector(v, v, 4, 4, 5, 5, 6, 6, 7, 7);
        a0 = __builtin_shufflevector(a0, d0, 0, 9, 2, 11, 4, 13, 6, 15);
        a1 = __builtin_shufflevector(a1, d1, 0, 9, 2, 11, 4, 13, 6, 15);
        ck_store8_upto(d + 2 * i, h0 < r ? a0 : d0, w);
        ck_store8_upto(d + 2 * i + 8, h1 < r ? a1 : d1, w - 8);
    }
}
#endif

typedef struct {
    void (*add)(float *, const float *, int64_t);
    void (*addc)(float *, float, int64_t);
    float (*sum)(const float *, int64_t);
    void (*scatter2)(float *, const float *, int64_t, int64_t);
    int vec;
} row_ops;

static row_ops get_ops(void) {
#if CK_X86 || CK_NEON
    if (ck_cpu_simd_enabled()) return (row_ops){add_vec, addc_vec, sum_vec, scatter2_vec, 1};
#endif
    return (row_ops){add_scalar, addc_scalar, sum_scalar, scatter2_scalar, 0};
}

// The chunks' partial sums added in chunk order (see ck_conv_internal.h).
static void sum_partials_scalar(float *acc, int64_t stride, int64_t nparts, int64_t n) {
    for (int64_t q = 1; q < nparts; q++) {
        const float *pp = acc + q * stride;
        for (int64_t i = 0; i < n; i++) acc[i] += pp[i];
    }
}
#if CK_X86 || CK_NEON
CK_VEC static void sum_partials_vec(float *acc, int64_t stride, int64_t nparts, int64_t n) {
    for (int64_t q = 1; q < nparts; q++) add_vec(acc, acc + q * stride, n);
}
#endif
void ck_conv_sum_partials(float *acc, int64_t stride, int64_t nparts, int64_t n, int simd) {
#if CK_X86 || CK_NEON
    if (simd) {
        sum_partials_vec(acc, stride, nparts, n);
        return;
    }
#endif
    (void)simd;   // no vector loop elsewhere
    sum_partials_scalar(acc, stride, nparts, n);
}

// ---- im2col and col2im ----

// Output columns [oxa, oxb) whose input column ox*s - pad + kx is inside [0, W).
static void valid_ox(const conv_plan *p, int64_t kx, int64_t *oxa, int64_t *oxb) {
    *oxa = clamp64(cdiv(p->pad - kx, p->s), 0, p->Wo);
    *oxb = clamp64(fdiv(p->W - 1 + p->pad - kx, p->s) + 1, *oxa, p->Wo);
}

// Stride 1 with Wo == W (2*pad == K-1, e.g. 3x3 pad 1): col row (ci, ky, kx) over output rows
// [oy0, oy1) is the plane shifted by (ky - pad) rows and (kx - pad) columns. The rows that fall
// inside the image are one contiguous copy; the columns shifted in from the neighbouring rows
// (and anything outside the plane) are then zeroed, as are the rows outside the image.
static void im2col_row_same(float *d, const float *xc, int64_t ky, int64_t kx, int64_t oy0, int64_t oy1,
                            const conv_plan *p) {
    const int64_t W = p->W, H = p->H, pad = p->pad, rows = oy1 - oy0;
    int64_t ya = ck_max64(oy0, pad - ky), yb = ck_min64(oy1, H + pad - ky);
    if (yb <= ya) {
        memset(d, 0, (size_t)(rows * W) * sizeof(float));
        return;
    }
    int64_t e0 = (ya - oy0) * W, e1 = (yb - oy0) * W, S0 = (oy0 + ky - pad) * W + kx - pad;
    int64_t c0 = ck_max64(e0, -S0), c1 = ck_min64(e1, H * W - S0);   // inside the plane
    memset(d, 0, (size_t)c0 * sizeof(float));
    memcpy(d + c0, xc + c0 + S0, (size_t)(c1 - c0) * sizeof(float));
    memset(d + c1, 0, (size_t)(rows * W - c1) * sizeof(float));
    int64_t zl = ck_min64(W, pad - kx), zr = ck_min64(W, kx - pad);   // wrapped-in columns
    if (zl > 0)
        for (int64_t r = ya - oy0; r < yb - oy0; r++)
            for (int64_t o = 0; o < zl; o++) d[r * W + o] = 0.0f;
    if (zr > 0)
        for (int64_t r = ya - oy0; r < yb - oy0; r++)
            for (int64_t o = W - zr; o < W; o++) d[r * W + o] = 0.0f;
}

#if CK_X86 || CK_NEON
// Vector helpers: zeroing and copying with partial-vector tails (no library calls: small images
// have short col rows, where call overhead would dominate).
CK_VEC static inline void zero_vec(float *d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) ck_store8(d + i, 0.0f);
    if (i < n) ck_store8_upto(d + i, 0.0f, n - i);
}

CK_VEC static inline void copy_vec(float *d, const float *s, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        ck_v8f a = ck_load8(s + i), b = ck_load8(s + i + 8), c = ck_load8(s + i + 16), e = ck_load8(s + i + 24);
        ck_store8(d + i, a); ck_store8(d + i + 8, b); ck_store8(d + i + 16, c); ck_store8(d + i + 24, e);
    }
    for (; i + 8 <= n; i += 8) ck_store8(d + i, ck_load8(s + i));
    if (i < n) ck_store8_upto(d + i, ck_load8_upto(s + i, n - i), n - i);
}

// Column masks for the border zeros of the "same" stride-1 path. The column pattern of a run of
// pixels repeats every L = lcm(W, 8) floats; for each kx, tab[kx*(L+32) + j] is -1 when column
// j mod W is inside the image for that kx, else 0 (j < L + 32). A copy reads the masks of 4
// vectors at offsets r, r+8, r+16, r+24 and steps r by 32 mod L: no second pass over the
// borders, and a short dependency chain.
#define MASK_TAB_MAX 4096   // ints of the table (on the stack); wider images take the scalar path

static int64_t mask_period(int64_t W) {
    int64_t a = W, b = 8;
    while (b) { int64_t t = a % b; a = b; b = t; }
    return W / a * 8;
}

static void make_mask_tab(int32_t *tab, const conv_plan *p) {
    const int64_t W = p->W, L = mask_period(W) + 32;
    for (int64_t kx = 0; kx < p->K; kx++) {
        int64_t lo = ck_max64(0, p->pad - kx), hi = ck_min64(W, W - (kx - p->pad));
        for (int64_t j = 0, c = 0; j < L; j++, c = c + 1 == W ? 0 : c + 1) tab[kx * L + j] = c >= lo && c < hi ? -1 : 0;
    }
}

// The 8 floats v with the lanes whose mask at t is 0 cleared (+0).
CK_VEC static inline ck_v8f masked8(ck_v8f v, const int32_t *t) {
    ck_v8i m;
    __builtin_memcpy(&m, t, sizeof m);
    return (ck_v8f)((ck_v8i)v & m);
}

// d[e] = src[e] & mask of column (r0 + e) mod W, e < n; r0 < W; tab has period L.
CK_VEC static inline void copy_masked_vec(float *d, const float *src, int64_t n, const int32_t *tab, int64_t r0,
                                          int64_t L) {
    int64_t r = r0, i = 0;
    for (; i + 32 <= n; i += 32) {
        const int32_t *t = tab + r;
        ck_v8f a = masked8(ck_load8(src + i), t), b = masked8(ck_load8(src + i + 8), t + 8);
        ck_v8f c = masked8(ck_load8(src + i + 16), t + 16), e = masked8(ck_load8(src + i + 24), t + 24);
        ck_store8(d + i, a);
        ck_store8(d + i + 8, b);
        ck_store8(d + i + 16, c);
        ck_store8(d + i + 24, e);
        r += 32;
        while (r >= L) r -= L;
    }
    for (; i + 8 <= n; i += 8, r += 8) ck_store8(d + i, masked8(ck_load8(src + i), tab + r));
    if (i < n) ck_store8_upto(d + i, masked8(ck_load8_upto(src + i, n - i), tab + r), n - i);
}

CK_VEC static void im2col_row_same_vec(float *d, const float *xc, int64_t ky, int64_t kx, int64_t oy0, int64_t oy1,
                                       const conv_plan *p, const int32_t *tab) {
    const int64_t W = p->W, H = p->H, pad = p->pad, rows = oy1 - oy0;
    int64_t ya = ck_max64(oy0, pad - ky), yb = ck_min64(oy1, H + pad - ky);
    if (yb <= ya) {
        zero_vec(d, rows * W);
        return;
    }
    int64_t e0 = (ya - oy0) * W, e1 = (yb - oy0) * W, S0 = (oy0 + ky - pad) * W + kx - pad;
    int64_t c0 = ck_max64(e0, -S0), c1 = ck_min64(e1, H * W - S0);
    zero_vec(d, c0);
    // c0 is a row start (column 0), or the first in-plane column pad - kx of the first row
    if (kx == pad) copy_vec(d + c0, xc + c0 + S0, c1 - c0);
    else {
        int64_t L = mask_period(W);
        copy_masked_vec(d + c0, xc + c0 + S0, c1 - c0, tab + kx * (L + 32), c0 - e0, L);
    }
    zero_vec(d + c1, rows * W - c1);
}

// Stride 2: col row (ci, ky, kx) over output rows [oy0, oy1), one output row at a time,
// d[ox] = x[iy, 2 ox - pad + kx]. 8 outputs come from 16 consecutive inputs, of which a
// shuffle keeps the even lanes; at the image borders the 8 are gathered one by one, 0 outside.
CK_VEC static void im2col_row_s2_vec(float *d, const float *xc, int64_t ky, int64_t kx, int64_t oy0, int64_t oy1,
                                     const conv_plan *p) {
    const int64_t W = p->W, H = p->H, Wo = p->Wo, pad = p->pad;
    for (int64_t oy = oy0; oy < oy1; oy++, d += Wo) {
        int64_t iy = 2 * oy - pad + ky;
        if (iy < 0 || iy >= H) {
            zero_vec(d, Wo);
            continue;
        }
        const float *row = xc + iy * W;
        for (int64_t ox = 0; ox < Wo; ox += 8) {
            int64_t j0 = 2 * ox - pad + kx;   // input column of lane 0
            ck_v8f e = 0.0f;
            if (j0 >= 0 && j0 + 16 <= W) {
                ck_v8f a = ck_load8(row + j0), b = ck_load8(row + j0 + 8);
                e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
            } else {
                for (int l = 0; l < 8; l++)
                    if (j0 + 2 * l >= 0 && j0 + 2 * l < W) e[l] = row[j0 + 2 * l];
            }
            ck_store8_upto(d + ox, e, Wo - ox);
        }
    }
}
#endif   // CK_X86 || CK_NEON

// col rows [k0, k1) for output rows [oy0, oy1) of one image x (Cin, H, W):
// col[(kr - k0)*ldc + (oy - oy0)*Wo + ox] = x[ci, oy*s - pad + ky, ox*s - pad + kx] or 0.
static void im2col(float *col, int64_t ldc, const float *x, int64_t k0, int64_t k1, int64_t oy0,
                   int64_t oy1, const conv_plan *p, const row_ops *ops) {
    const int64_t K = p->K, s = p->s, pad = p->pad, H = p->H, W = p->W, Wo = p->Wo;
    const int same = s == 1 && Wo == W;
#if CK_X86 || CK_NEON
    const int fast = same && ops->vec && K * (mask_period(W) + 32) <= MASK_TAB_MAX;
    int32_t tab[MASK_TAB_MAX];
    if (fast) make_mask_tab(tab, p);
#else
    (void)ops;
#endif
    int64_t ci = k0 / (K * K), ky = k0 / K % K, kx = k0 % K;   // stepped along, no divisions
    for (int64_t kr = k0; kr < k1; kr++) {
        float *d = col + (kr - k0) * ldc;
        const float *xc = x + ci * p->HW;
#if CK_X86 || CK_NEON
        if (fast) {
            im2col_row_same_vec(d, xc, ky, kx, oy0, oy1, p, tab);
        } else if (s == 2 && ops->vec) {
            im2col_row_s2_vec(d, xc, ky, kx, oy0, oy1, p);
        } else
#endif
        if (same) {
            im2col_row_same(d, xc, ky, kx, oy0, oy1, p);
        } else {
            int64_t oxa, oxb;
            valid_ox(p, kx, &oxa, &oxb);
            int64_t n = oxb - oxa;
            for (int64_t oy = oy0; oy < oy1; oy++, d += Wo) {
                int64_t iy = oy * s - pad + ky;
                if (iy < 0 || iy >= H || n == 0) {
                    memset(d, 0, (size_t)Wo * sizeof(float));
                    continue;
                }
                const float *src = xc + iy * W + oxa * s - pad + kx;
                for (int64_t o = 0; o < oxa; o++) d[o] = 0.0f;
                if (s == 1) memcpy(d + oxa, src, (size_t)n * sizeof(float));
                else if (s == 2) gather2_scalar(d + oxa, src, n);
                else for (int64_t o = 0; o < n; o++) d[oxa + o] = src[o * s];
                for (int64_t o = oxb; o < Wo; o++) d[o] = 0.0f;
            }
        }
        if (++kx == K) { kx = 0; if (++ky == K) { ky = 0; ci++; } }
    }
}

// dx (one image, (Cin, H, W)) += col2im of col (KK x ldc) holding output rows [q0, q1), written
// only into input rows [iy0, iy1). Each dx element receives its terms in kr order.
static void col2im(float *dx, const float *col, int64_t ldc, int64_t q0, int64_t q1, int64_t iy0,
                   int64_t iy1, const conv_plan *p, const row_ops *ops) {
    const int64_t K = p->K, s = p->s, pad = p->pad, W = p->W, Wo = p->Wo;
    for (int64_t kr = 0; kr < p->KK; kr++) {
        int64_t ci = kr / (K * K), ky = kr / K % K, kx = kr % K, oxa, oxb;
        valid_ox(p, kx, &oxa, &oxb);
        int64_t n = oxb - oxa;
        if (n == 0) continue;
        const float *c = col + kr * ldc + oxa;
        for (int64_t oy = q0; oy < q1; oy++, c += Wo) {
            int64_t iy = oy * s - pad + ky;
            if (iy < iy0 || iy >= iy1) continue;
            float *row = dx + ci * p->HW + iy * W;
            int64_t ix0 = oxa * s - pad + kx;
            if (s == 1) ops->add(row + ix0, c, n);
            else if (s == 2) ops->scatter2(row + ix0, c, n, W - ix0);
            else for (int64_t o = 0; o < n; o++) row[ix0 + o * s] += c[o];
        }
    }
}

static void sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

typedef struct {
    conv_plan p;
    row_ops ops;
    float *y, *dx, *dw, *db, *ws, *parts, *dbp;
    const float *x, *w, *b, *dy;
    int set_dx, set_dw, set_db;
    float beta;   // forward-style pass: 0 writes y, 1 adds to it (dx of a stride-1 conv)
    _Atomic uint32_t free_slots;   // bit i set: scratch slot i is free
} conv_job;

// ---- forward ----

static void fwd_task(void *ctx, int64_t c, int64_t nt) {
    (void)nt;
    conv_job *j = ctx;
    const conv_plan *p = &j->p;
    int slot = slot_take(&j->free_slots);
    float *col = j->ws ? j->ws + slot * p->slot_f : NULL;
    for (int64_t t = c * p->ntiles / p->nch_f; t < (c + 1) * p->ntiles / p->nch_f; t++) {
        tile_t tl = tile_of(p, t);
        int64_t pt = (tl.oy1 - tl.oy0) * p->Wo, cols = tl.ng * pt;
        const float *x = j->x + tl.n0 * p->Cin * p->HW;
        float *y = j->y + tl.n0 * p->Cout * p->P + tl.oy0 * p->Wo;
        if (p->pw) {
            sgemm(0, 0, p->Cout, pt, p->Cin, j->w, p->Cin, x + tl.oy0 * p->Wo, p->P, j->beta, y, p->P);
        } else {
            for (int64_t i = 0; i < tl.ng; i++) im2col(col + i * pt, cols, x + i * p->Cin * p->HW, 0, p->KK, tl.oy0, tl.oy1, p, &j->ops);
            if (tl.ng == 1) {
                sgemm(0, 0, p->Cout, pt, p->KK, j->w, p->KK, col, pt, j->beta, y, p->P);
            } else {   // grouped images: the product lands in tmp, then moves to NCHW
                float *tmp = col + p->KK * p->cols;
                sgemm(0, 0, p->Cout, cols, p->KK, j->w, p->KK, col, cols, 0.0f, tmp, cols);
                for (int64_t i = 0; i < tl.ng; i++)
                    for (int64_t co = 0; co < p->Cout; co++) {
                        float *d = y + (i * p->Cout + co) * p->P;
                        const float *src = tmp + co * cols + i * p->P;
                        if (j->beta == 0.0f) memcpy(d, src, (size_t)p->P * sizeof(float));
                        else j->ops.add(d, src, p->P);
                    }
            }
        }
        if (j->b)
            for (int64_t i = 0; i < tl.ng; i++)
                for (int64_t co = 0; co < p->Cout; co++) j->ops.addc(y + (i * p->Cout + co) * p->P, j->b[co], pt);
    }
    slot_give(&j->free_slots, slot);
}

// The forward pass of job j (its plan made): one task per chunk of tiles.
static void run_fwd(conv_job *j) {
    slots_reset(&j->free_slots);
    ck_parallel_for(fwd_task, j, j->p.nch_f);
}

void ck_conv_gemm_forward(float *y, const float *x, const float *w, const float *b, float *workspace, int64_t N,
                          int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K, int64_t stride, int64_t pad) {
    conv_job j = {.y = y, .x = x, .w = w, .b = b, .ws = workspace, .ops = get_ops()};
    make_plan(&j.p, N, Cin, H, W, Cout, K, stride, pad);
    run_fwd(&j);
}

// ---- backward: dx ----

static void dx_task(void *ctx, int64_t c, int64_t nt) {
    (void)nt;
    conv_job *j = ctx;
    const conv_plan *p = &j->p;
    int slot = slot_take(&j->free_slots);
    float *dcol = j->ws ? j->ws + slot * p->slot_x : NULL;
    for (int64_t t = c * p->ntiles / p->nch_x; t < (c + 1) * p->ntiles / p->nch_x; t++) {
        tile_t tl = tile_of(p, t);
        const float *dy = j->dy + tl.n0 * p->Cout * p->P;
        float *dx = j->dx + tl.n0 * p->Cin * p->HW;
        if (p->pw) {   // dx band = w^T dy band (input and output pixels coincide)
            int64_t o = tl.oy0 * p->Wo, pt = (tl.oy1 - tl.oy0) * p->Wo;
            sgemm(1, 0, p->Cin, pt, p->Cout, j->w, p->Cin, dy + o, p->P, j->set_dx ? 0.0f : 1.0f, dx + o, p->HW);
        } else if (tl.ng > 1) {   // whole images: gather dy, one product, col2im per image
            int64_t cols = tl.ng * p->P;
            float *tmp = dcol + p->slot_x - p->tmp;
            for (int64_t i = 0; i < tl.ng; i++)
                for (int64_t co = 0; co < p->Cout; co++)
                    memcpy(tmp + co * cols + i * p->P, dy + (i * p->Cout + co) * p->P, (size_t)p->P * sizeof(float));
            sgemm(1, 0, p->KK, cols, p->Cout, j->w, p->KK, tmp, cols, 0.0f, dcol, cols);
            for (int64_t i = 0; i < tl.ng; i++) {
                float *dxi = dx + i * p->Cin * p->HW;
                if (j->set_dx) memset(dxi, 0, (size_t)(p->Cin * p->HW) * sizeof(float));
                col2im(dxi, dcol + i * p->P, cols, 0, p->Ho, 0, p->H, p, &j->ops);
            }
        } else {
            int64_t iy0, iy1, q0, q1;
            dx_band(p, tl.oy0, tl.oy1, &iy0, &iy1, &q0, &q1);
            if (j->set_dx)
                for (int64_t ci = 0; ci < p->Cin; ci++)
                    memset(dx + ci * p->HW + iy0 * p->W, 0, (size_t)((iy1 - iy0) * p->W) * sizeof(float));
            if (q1 > q0 && iy1 > iy0) {
                int64_t pt = (q1 - q0) * p->Wo;
                sgemm(1, 0, p->KK, pt, p->Cout, j->w, p->KK, dy + q0 * p->Wo, p->P, 0.0f, dcol, pt);
                col2im(dx, dcol, pt, q0, q1, iy0, iy1, p, &j->ops);
            }
        }
    }
    slot_give(&j->free_slots, slot);
}

void ck_conv_gemm_backward_dx(float *dx, float *workspace, int flags, const float *dy, const float *w, int64_t N,
                              int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K, int64_t stride, int64_t pad) {
    conv_job j = {.dx = dx, .dy = dy, .w = w, .ws = workspace, .ops = get_ops(), .set_dx = (flags & CK_CONV_SET_DX) != 0};
    conv_plan *p = &j.p;
    make_plan(p, N, Cin, H, W, Cout, K, stride, pad);
    if (!dx_gather(p)) {
        slots_reset(&j.free_slots);
        ck_parallel_for(dx_task, &j, p->nch_x);
        return;
    }
    float *wt = workspace;   // w'[ci, co, ky, kx] = w[co, ci, K-1-ky, K-1-kx]
    const int64_t KK2 = K * K;
    for (int64_t co = 0; co < Cout; co++)
        for (int64_t ci = 0; ci < Cin; ci++)
            for (int64_t q = 0; q < KK2; q++) wt[(ci * Cout + co) * KK2 + q] = w[(co * Cin + ci) * KK2 + KK2 - 1 - q];
    conv_job t = {.y = dx, .x = dy, .w = wt, .b = NULL, .ws = workspace + Cout * p->KK, .ops = j.ops,
                  .beta = j.set_dx ? 0.0f : 1.0f};
    make_dx_plan(&t.p, p);
    run_fwd(&t);
}

// ---- backward: dw, db ----

// Task (chunk a of tiles, column split ks): rows [k0, k1) of the chunk's partial sum of
// dw^T (KK x Cout) = sum over its tiles of col dy^T (this orientation multiplies faster than
// dy col^T when Cout is small), and (ks == 0) the chunk's db part.
static void dw_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    conv_job *j = ctx;
    const conv_plan *p = &j->p;
    int64_t a = t / p->nks, ks = t % p->nks;
    int64_t k0 = ks * p->piece, k1 = ck_min64(p->KK, k0 + p->piece);
    int slot = slot_take(&j->free_slots);
    float *col = j->ws ? j->ws + slot * p->slot_a : NULL;
    float *part = j->parts + a * p->Cout * p->KK + k0 * p->Cout;
    int first = 1;
    for (int64_t ti = a * p->ntiles / p->nch_a; ti < (a + 1) * p->ntiles / p->nch_a; ti++, first = 0) {
        tile_t tl = tile_of(p, ti);
        int64_t pt = (tl.oy1 - tl.oy0) * p->Wo, cols = tl.ng * pt;
        const float *dy = j->dy + tl.n0 * p->Cout * p->P + tl.oy0 * p->Wo;
        if (j->db && ks == 0)
            for (int64_t co = 0; co < p->Cout; co++) {
                float s = first ? 0.0f : j->dbp[a * p->Cout + co];
                for (int64_t i = 0; i < tl.ng; i++) s += j->ops.sum(dy + (i * p->Cout + co) * p->P, pt);
                j->dbp[a * p->Cout + co] = s;
            }
        if (!j->dw) continue;
        float beta = first ? 0.0f : 1.0f;
        const float *x = j->x + tl.n0 * p->Cin * p->HW;
        if (p->pw) {
            sgemm(0, 1, k1 - k0, p->Cout, pt, x + k0 * p->HW + tl.oy0 * p->Wo, p->HW, dy, p->P, beta, part, p->Cout);
            continue;
        }
        const float *dyp = dy;
        int64_t lddy = p->P;
        if (tl.ng > 1) {
            float *tmp = col + p->slot_a - p->tmp;
            for (int64_t i = 0; i < tl.ng; i++)
                for (int64_t co = 0; co < p->Cout; co++)
                    memcpy(tmp + co * cols + i * p->P, dy + (i * p->Cout + co) * p->P, (size_t)p->P * sizeof(float));
            dyp = tmp;
            lddy = cols;
        }
        for (int64_t i = 0; i < tl.ng; i++) im2col(col + i * pt, cols, x + i * p->Cin * p->HW, k0, k1, tl.oy0, tl.oy1, p, &j->ops);
        sgemm(0, 1, k1 - k0, p->Cout, cols, col, cols, dyp, lddy, beta, part, p->Cout);
    }
    slot_give(&j->free_slots, slot);
}

// Rows [k0, k1) of dw^T: partial sums of chunks 1.. added into chunk 0's, in chunk order, then
// dw[co, k] (=|+=) that total.
#define PSUM_ROWS 16

static void psum_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const conv_job *j = ctx;
    const int64_t Cout = j->p.Cout, KK = j->p.KK, k0 = t * PSUM_ROWS, k1 = ck_min64(KK, k0 + PSUM_ROWS);
    float *acc = j->parts + k0 * Cout;
    ck_conv_sum_partials(acc, Cout * KK, j->p.nch_a, (k1 - k0) * Cout, j->ops.vec);
    for (int64_t co = 0; co < Cout; co++) {
        float *d = j->dw + co * KK;
        if (j->set_dw)
            for (int64_t k = k0; k < k1; k++) d[k] = acc[(k - k0) * Cout + co];
        else
            for (int64_t k = k0; k < k1; k++) d[k] += acc[(k - k0) * Cout + co];
    }
}

void ck_conv_gemm_backward_dwdb(float *dw, float *db, float *workspace, int flags, const float *dy, const float *x,
                                int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K, int64_t stride,
                                int64_t pad) {
    conv_job j = {.dw = dw, .db = db, .dy = dy, .x = x, .ws = workspace, .ops = get_ops(),
                  .set_dw = (flags & CK_CONV_SET_DW) != 0, .set_db = (flags & CK_CONV_SET_DB) != 0};
    conv_plan *p = &j.p;
    make_plan(p, N, Cin, H, W, Cout, K, stride, pad);
    j.parts = workspace + p->nch_a * p->nks * p->slot_a;
    j.dbp = j.parts + p->nch_a * Cout * p->KK;
    slots_reset(&j.free_slots);
    ck_parallel_for(dw_task, &j, p->nch_a * p->nks);
    if (dw) ck_parallel_for(psum_task, &j, ck_ceil_div(p->KK, PSUM_ROWS));
    if (db)
        for (int64_t co = 0; co < Cout; co++) {
            float s = j.set_db ? 0.0f : db[co];
            for (int64_t a = 0; a < p->nch_a; a++) s += j.dbp[a * Cout + co];
            db[co] = s;
        }
}

// 2-D convolution: im2col tiles and single-threaded OpenBLAS sgemm over the pool.
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
// im2col has AVX2 paths for stride 1 with same-size output (3x3 pad 1, ...) and for stride 2.
//
// Direct path (3x3, stride 1, padding 1 on CPUs with AVX-512): the forward and dx passes skip
// im2col and GEMM. A plane is walked as flat vectors of 16 pixels; the input vector of tap
// (ky, kx) is the plane read at offset (ky-1)*W + (kx-1), masked to zero where that neighbour
// falls outside the image (a mask table per 16-pixel chunk and tap). A tile keeps 8 output
// channels x 3 vectors (48 pixels) in 24 registers and adds, for each tap and input channel,
// broadcast weight x masked input: y = sum over k (outer) and ci (inner) of fma, then + b.
// Each output element is one lane's fixed chain of fmas, so the scalar fallback (used when
// the SIMD paths are switched off) computes the same chain with fmaf and gives the same bits,
// and the split of tiles into tasks never matters. Small planes run as groups of consecutive
// images, pixels end to end, so vectors are whole (dc_group). dx of such a convolution is the
// same pass over dy with the flipped, transposed kernel. The weight gradient copies each chunk
// of images channels-last (at stride 2 usually only dy) and sums outer products per tap (see
// "direct 3x3 ... weight gradient" below). 3x3 stride-2 pad-1 convolutions run the forward
// pass with output channels in the vector lanes, dx with input channels in the lanes ("stride
// 2" below) and the weight gradient on every other pixel of x. Selection depends only on the
// shape and the CPU.
#include "ck_conv.h"
#include "ck_internal.h"
#include <cblas.h>
#include <math.h>
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#ifndef COL_CAP
#define COL_CAP (1 << 18)      // floats of a tile's im2col (raised to fit MIN_TILE_PIX pixels)
#endif
#define MIN_TILE_PIX 128       // pixels a band should have at least, when the image has them
#ifndef GROUP_PIX
#define GROUP_PIX 192          // whole images smaller than this are grouped to about this size
#endif
#define MAX_CHUNKS 16          // tasks (and slots) of a pass
#define MIN_CHUNKS 4           // ... at least this many when there are enough tiles
#define SLOTS_CAP (1 << 22)    // floats the slots of a pass aim to stay under (16 MB)
#define DW_PART_CAP (1 << 21)  // floats of dw partial sums (8 MB)
#define DW_TASKS 16            // dw pass: chunks x column splits aims at this many tasks
#define DW_MIN_PIECE 64        // narrowest column split of dw

static int64_t fdiv(int64_t a, int64_t b) { int64_t q = a / b; return (a % b != 0 && a < 0) ? q - 1 : q; }
static int64_t cdiv(int64_t a, int64_t b) { return -fdiv(-a, b); }
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

int64_t ck_conv2d_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad) {
    if (k < 1 || stride < 1 || pad < 0 || in + 2 * pad < k) return 0;
    return (in + 2 * pad - k) / stride + 1;
}

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

// ---- direct 3x3 stride-1 pad-1 path (forward and dx) ----

#define DC_COB 8    // output channels per tile
#define DC_NV 3     // 16-pixel vectors per tile
#define DC_TASKS 64 // aim for at least this many tasks (images x channel blocks x pixel parts)
#define DC_CIB 128  // input channels per chain: longer sums are added up block by block in y

// Shape and CPU only (never the thread count or the SIMD switch), so workspace sizes and
// results are fixed for a process.
static int direct_ok(int64_t K, int64_t s, int64_t pad) {
#ifdef CONV_NO_DIRECT
    (void)K; (void)s; (void)pad;
    return 0;
#else
    return K == 3 && s == 1 && pad == 1 && ck_cpu_has_avx512();
#endif
}

static int64_t dc_chunks(int64_t HW) { return (HW + 15) / 16; }

// Images per group. A pass walks groups of consecutive images with their pixels end to end
// (a vector may hold the end of one image and the start of the next), so a small plane fills
// whole vectors and a group has enough of them for 3-vector tiles: g*HW a multiple of 16, in a
// multiple of 3 or at least 12 vectors (7x7: 16 images, 14x14: 4, 8x8 and 4x4: 3; 28x28: 1).
// Planes under 16 pixels run one image at a time (a vector would span more than two images).
static int64_t dc_group(int64_t HW) {
    int64_t g = 1;
    while (HW >= 16 && (g * HW % 16 != 0 || (g * HW / 16 % 3 != 0 && g * HW / 16 < 12))) g++;
    return g;
}
// Floats of the mask table (uint16 per chunk of a full group and tap, rounded up).
static int64_t dc_mask_floats(int64_t HW) { return (dc_chunks(dc_group(HW) * HW) * 9 + 1) / 2 + 1; }
// Floats a direct pass producing `co` channels from `ci` needs: packed weights, then masks.
static int64_t dc_floats(int64_t ci, int64_t co, int64_t HW) {
    return ck_ceil_div(co, DC_COB) * ci * 9 * DC_COB + dc_mask_floats(HW);
}

// mt[c*9 + k], bit j: pixel P = 16c + j of a full group is in it and the tap-k neighbour
// (row + k/3 - 1, col + k%3 - 1) of its pixel P % HW is inside the image.
static void dc_masks(uint16_t *mt, int64_t H, int64_t W) {
    const int64_t HW = H * W, np = dc_group(HW) * HW;
    for (int64_t c = 0; c < dc_chunks(np); c++)
        for (int k = 0; k < 9; k++) {
            uint32_t m = 0;
            for (int j = 0; j < 16; j++) {
                int64_t p = 16 * c + j;
                if (p >= np) break;
                p %= HW;
                int64_t iy = p / W + k / 3 - 1, ix = p % W + k % 3 - 1;
                if (iy >= 0 && iy < H && ix >= 0 && ix < W) m |= 1u << j;
            }
            mt[c * 9 + k] = (uint16_t)m;
        }
}

// A direct pass's taps: tap t reads the input plane shifted by off[t] pixels, valid where tap
// mk[t] of the 3x3 mask table says so, with the weights of kernel tap wk[t].
typedef struct {
    int n;
    int64_t off[9];
    int mk[9], wk[9];
} dc_taps;

// The 9 taps of a 3x3 stride-1 pad-1 pass on W-wide planes; dx uses the flipped kernel.
static dc_taps dc_taps_s1(int64_t W, int for_dx) {
    dc_taps t = {.n = 9};
    for (int k = 0; k < 9; k++) {
        t.off[k] = (k / 3 - 1) * W + (k % 3 - 1);
        t.mk[k] = k;
        t.wk[k] = for_dx ? 8 - k : k;
    }
    return t;
}

// Packed weights wp[((cb*CI + ci)*n + t)*8 + j] = weight of output channel 8cb + j (0 beyond
// CO) at kernel tap wk[t]. Forward: w itself (CI = Cin, CO = Cout). dx: the transpose, output
// channel ci of dx and "input" channel co of dy (CI = Cout, CO = Cin).
static void dc_pack(float *wp, const float *w, int64_t Cin, int64_t Cout, int for_dx, const dc_taps *tp) {
    const int64_t CI = for_dx ? Cout : Cin, CO = for_dx ? Cin : Cout;
    for (int64_t cb = 0; cb < ck_ceil_div(CO, DC_COB); cb++)
        for (int64_t ci = 0; ci < CI; ci++)
            for (int t = 0; t < tp->n; t++)
                for (int j = 0; j < DC_COB; j++) {
                    int64_t co = cb * DC_COB + j;
                    float v = 0.0f;
                    if (co < CO) v = for_dx ? w[(ci * Cin + co) * 9 + tp->wk[t]] : w[(co * CI + ci) * 9 + tp->wk[t]];
                    wp[((cb * CI + ci) * tp->n + t) * DC_COB + j] = v;
                }
}

typedef struct {
    float *y;
    const float *x, *wp, *b;
    const uint16_t *mt;
    int64_t N, CI, CO, H, W, ncb, nparts, g;   // g: images per group (dc_group)
    int64_t x_image, y_image;   // floats from one image of x (of y) to the next
    dc_taps tp;
    int accumulate;   // y += result (dx without its SET flag) instead of y = result + b
} dc_job;

// Lanes [0, n) of a 16-lane mask (n clamped to 0..16).
static inline __mmask16 lanes(int64_t n) { return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }

// One tile: chunks [c0, c0 + NV) of a group's np pixels, output channels [0, nco) of the block.
// x: the group's first image (CI, HW); wp: the block's packed weights; y: the block's first
// output plane of that image. Vector v starts at pixel pA of image n (in x at xa[v]); its lanes
// from HW - pA on are the next image's (bit v of TWO: vector v has such lanes, read and written
// through a second masked access x_image - HW (y_image - HW) floats further).
CK_AVX512 static inline __attribute__((always_inline)) void dc_tile_avx512(const dc_job *j, float *y, const float *x,
                                                                           const float *wp, const float *b, int64_t c0,
                                                                           int64_t np, const int NV, int nco, const int TWO) {
    const int64_t HW = j->H * j->W, CI = j->CI, xnext = j->x_image - HW, ynext = j->y_image - HW;
    const float *xa[DC_NV];
    float *ya[DC_NV];
    __mmask16 lo[DC_NV], hi[DC_NV];   // lanes of image n, of image n + 1
    for (int v = 0; v < NV; v++) {
        const int64_t P0 = (c0 + v) * 16, n = P0 / HW, pA = P0 - n * HW;
        xa[v] = x + n * j->x_image + pA;
        ya[v] = y + n * j->y_image + pA;
        lo[v] = lanes(HW - pA) & lanes(np - P0);
        hi[v] = (__mmask16)(~lanes(HW - pA) & lanes(np - P0));
    }
    for (int64_t ci0 = 0; ci0 < CI; ci0 += DC_CIB) {
        const int64_t ci1 = ck_min64(CI, ci0 + DC_CIB);
        __m512 acc[DC_COB][DC_NV];   // every loop over it fully unrolled: registers, no stack copy
#pragma unroll
        for (int q = 0; q < DC_COB; q++)
#pragma unroll
            for (int v = 0; v < NV; v++) acc[q][v] = _mm512_setzero_ps();
        const int nt = j->tp.n;
        for (int k = 0; k < nt; k++) {
            __mmask16 ma[DC_NV], mb[DC_NV];
            int64_t dv[DC_NV];   // vector v reads xp + dv[v] (one pointer walks the channels)
            for (int v = 0; v < NV; v++) {
                const __mmask16 m = j->mt[(c0 + v) * 9 + j->tp.mk[k]];
                ma[v] = m & lo[v];
                mb[v] = m & hi[v];
                dv[v] = xa[v] - xa[0];
            }
            const float *xp = xa[0] + ci0 * HW + j->tp.off[k], *wk = wp + (ci0 * nt + k) * DC_COB;
            for (int64_t ci = ci0; ci < ci1; ci++, xp += HW, wk += nt * DC_COB) {
                __m512 xv[DC_NV];
                // lanes outside the image are masked: not read (the address may lie outside the plane)
                for (int v = 0; v < NV; v++) {
                    xv[v] = _mm512_maskz_loadu_ps(ma[v], xp + dv[v]);
                    if (TWO >> v & 1) xv[v] = _mm512_mask_loadu_ps(xv[v], mb[v], xp + dv[v] + xnext);
                }
                for (int q = 0; q < DC_COB; q++) {
                    __m512 wv = _mm512_set1_ps(wk[q]);
                    for (int v = 0; v < NV; v++) acc[q][v] = _mm512_fmadd_ps(wv, xv[v], acc[q][v]);
                }
            }
        }
        // The first block writes (or adds to an accumulated y), later blocks add; the bias last.
        const int add = ci0 > 0 || j->accumulate, bias = b && !j->accumulate && ci1 == CI;
#pragma unroll
        for (int v = 0; v < NV; v++)
#pragma unroll
            for (int q = 0; q < DC_COB; q++) {
                if (q >= nco) continue;
                float *d = ya[v] + q * HW;
                __m512 r = acc[q][v];
                if (add) {
                    __m512 old = _mm512_maskz_loadu_ps(lo[v], d);
                    if (TWO >> v & 1) old = _mm512_mask_loadu_ps(old, hi[v], d + ynext);
                    r = _mm512_add_ps(old, r);
                }
                if (bias) r = _mm512_add_ps(r, _mm512_set1_ps(b[q]));
                _mm512_mask_storeu_ps(d, lo[v], r);
                if (TWO >> v & 1) _mm512_mask_storeu_ps(d + ynext, hi[v], r);
            }
    }
}
typedef void (*dc_tile_fn)(const dc_job *, float *, const float *, const float *, const float *, int64_t, int64_t, int);
#define DC_TILE(NV, TWO)                                                                                                   \
    CK_AVX512 static void dc_tile##NV##_##TWO(const dc_job *j, float *y, const float *x, const float *wp, const float *b, \
                                              int64_t c0, int64_t np, int nco) {                                          \
        dc_tile_avx512(j, y, x, wp, b, c0, np, NV, nco, TWO);                                                              \
    }
DC_TILE(1, 0) DC_TILE(1, 1)
DC_TILE(2, 0) DC_TILE(2, 1) DC_TILE(2, 2) DC_TILE(2, 3)
DC_TILE(3, 0) DC_TILE(3, 1) DC_TILE(3, 2) DC_TILE(3, 3) DC_TILE(3, 4) DC_TILE(3, 5) DC_TILE(3, 6) DC_TILE(3, 7)
// [NV - 1][TWO]
static const dc_tile_fn dc_tiles[3][8] = {
    {dc_tile1_0, dc_tile1_1},
    {dc_tile2_0, dc_tile2_1, dc_tile2_2, dc_tile2_3},
    {dc_tile3_0, dc_tile3_1, dc_tile3_2, dc_tile3_3, dc_tile3_4, dc_tile3_5, dc_tile3_6, dc_tile3_7},
};

// The same chains of fmas and adds, one pixel at a time (the SIMD paths switched off).
static void dc_tile_scalar(const dc_job *j, float *y, const float *x, const float *wp, const float *b, int64_t c0,
                           int64_t np, int NV, int nco) {
    const int64_t HW = j->H * j->W, CI = j->CI;
    for (int64_t P = c0 * 16; P < ck_min64(np, (c0 + NV) * 16); P++) {
        const int64_t c = P / 16, lane = P % 16, n = P / HW, p = P % HW;
        for (int q = 0; q < nco; q++) {
            float *d = y + n * j->y_image + q * HW + p;
            for (int64_t ci0 = 0; ci0 < CI; ci0 += DC_CIB) {
                const int64_t ci1 = ck_min64(CI, ci0 + DC_CIB);
                float acc = 0.0f;
                for (int k = 0; k < j->tp.n; k++) {
                    const int valid = (j->mt[c * 9 + j->tp.mk[k]] >> lane) & 1;
                    const float *src = x + n * j->x_image + p + j->tp.off[k];
                    for (int64_t ci = ci0; ci < ci1; ci++)
                        acc = fmaf(wp[(ci * j->tp.n + k) * DC_COB + q], valid ? src[ci * HW] : 0.0f, acc);
                }
                float r = (ci0 > 0 || j->accumulate) ? *d + acc : acc;
                if (b && !j->accumulate && ci1 == CI) r = r + b[q];
                *d = r;
            }
        }
    }
}

// Tile t of a plane of nch chunks: ceil(nch / 3) tiles of 3 chunks, the last one or two of 2
// (a lone chunk only when nch == 1), so no tile runs the register-starved 1-vector kernel
// needlessly. Which chunks share a tile never changes a result.
static void dc_tile_span(int64_t t, int64_t nch, int64_t *c0, int *nv) {
    const int64_t nt = ck_ceil_div(nch, DC_NV), short_tiles = nt * DC_NV - nch, full = nt - short_tiles;
    if (nt == 1) { *c0 = 0; *nv = (int)nch; return; }
    *c0 = t < full ? DC_NV * t : DC_NV * full + (DC_NV - 1) * (t - full);
    *nv = t < full ? DC_NV : DC_NV - 1;
}

// Tiles of a group of ng images with np pixels.
static int64_t dc_tiles_of(int64_t np) { return ck_ceil_div(dc_chunks(np), DC_NV); }

// Tiles [t0, t1) of channel block cb of a group of ng images: x its input, y its output (the
// bases of its first image).
static void dc_span(const dc_job *j, float *y, const float *x, int64_t ng, int64_t cb, int64_t t0, int64_t t1) {
    const int64_t HW = j->H * j->W, np = ng * HW;
    const int nco = (int)ck_min64(DC_COB, j->CO - cb * DC_COB);
    const float *wp = j->wp + cb * j->CI * j->tp.n * DC_COB, *b = j->b ? j->b + cb * DC_COB : NULL;
    const int simd = ck_cpu_use_avx2();
    y += cb * DC_COB * HW;
    for (int64_t tile = t0; tile < t1; tile++) {
        int64_t c0;
        int nv;
        dc_tile_span(tile, dc_chunks(np), &c0, &nv);
        if (!simd) {
            dc_tile_scalar(j, y, x, wp, b, c0, np, nv, nco);
            continue;
        }
        int two = 0;   // bit v: vector v holds pixels of two images
        for (int v = 0; v < nv; v++) {
            const int64_t P0 = (c0 + v) * 16;
            two |= (P0 / HW != (ck_min64(np, P0 + 16) - 1) / HW) << v;
        }
        dc_tiles[nv - 1][two](j, y, x, wp, b, c0, np, nco);
    }
}

// Task (group of images, channel block cb, part of the tiles).
static void dc_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const dc_job *j = ctx;
    const int64_t part = t % j->nparts, cb = t / j->nparts % j->ncb, n0 = t / j->nparts / j->ncb * j->g;
    const int64_t ng = ck_min64(j->g, j->N - n0), ntiles = dc_tiles_of(ng * j->H * j->W);
    dc_span(j, j->y + n0 * j->y_image, j->x + n0 * j->x_image, ng, cb, part * ntiles / j->nparts,
            (part + 1) * ntiles / j->nparts);
}

// y (N, CO, H, W) (=|+=) a direct pass over x (N, CI, H, W) with the taps tp of w (forward) or
// of its transpose (dx), over groups of dc_group(H*W) images; its weights are packed and its
// mask table built in ws, which holds dc_floats(CI, CO, H*W) floats.
static void dc_run(float *y, const float *x, const float *w, const float *b, float *ws, int64_t N, int64_t Cin, int64_t H,
                   int64_t W, int64_t Cout, int for_dx, const dc_taps *tp, int accumulate) {
    const int64_t CI = for_dx ? Cout : Cin, CO = for_dx ? Cin : Cout, HW = H * W, g = dc_group(HW);
    const int64_t ncb = ck_ceil_div(CO, DC_COB), ntiles = dc_tiles_of(ck_min64(g, N) * HW);
    dc_pack(ws, w, Cin, Cout, for_dx, tp);
    uint16_t *mt = (uint16_t *)(ws + ncb * CI * 9 * DC_COB);
    dc_masks(mt, H, W);
    dc_job j = {.y = y, .x = x, .wp = ws, .b = b, .mt = mt, .N = N, .CI = CI, .CO = CO, .H = H, .W = W, .ncb = ncb,
                .g = g, .x_image = CI * HW, .y_image = CO * HW, .tp = *tp, .accumulate = accumulate};
    j.nparts = ck_max64(1, ck_min64(ntiles, ck_ceil_div(DC_TASKS, ck_ceil_div(N, g) * ncb)));
    ck_parallel_for(dc_task, &j, ck_ceil_div(N, g) * ncb * j.nparts);
}

// ---- direct 3x3 stride-2 pad-1 path ----
//
// Output (oy, ox) reads input rows 2oy - 1, 2oy, 2oy + 1 and the same columns. The forward and
// dx passes put channels in the vector lanes and read their input straight from memory, x at
// stride 2 (s2f_ below) and dy for the taps of each dx pixel (s2d_), so nothing is copied or
// split; the weight-gradient pass broadcasts x from where it lies too (dwd_x_in_place). Same
// CPU condition as the stride-1 path.

static int direct2_ok(int64_t K, int64_t s, int64_t pad) { return direct_ok(K, 1, 1) && s == 2 && pad == 1; }

// ---- direct 3x3 stride-2 pad-1 forward: output channels in the lanes ----
//
// A tile is a run of up to S2F_RUN output pixels of one output row and a block of 32 output
// channels (two vectors): 2 x S2F_RUN accumulators. For each input channel and tap, the two
// weight vectors are loaded once and each pixel's input, read at stride 2 straight from x,
// is broadcast into two fmas. Taps whose input row is outside the image are skipped, and so
// are the first pixel's left tap at the left edge and the last pixel's right tap past an odd
// width (their input is the zero padding). Each output element is one chain (input channel,
// then ky, then kx), so the scalar fallback gives the same bits; the accumulators are moved
// to the channel planes through a small buffer (gathered by channel), plus the bias.

#define S2F_RUN 14
#define S2F_COB 32
static int64_t s2f_floats(int64_t Cin, int64_t Cout) { return ck_ceil_div(Cout, S2F_COB) * S2F_COB * Cin * 9; }

typedef struct {
    float *y;
    const float *x, *wq, *b;
    int64_t Cin, Cout, H, W, Ho, Wo, ncb;
} s2f_job;

// Weights with L channels in the lanes: forward, wq[((cb*Cin + ci)*9 + k)*L + j] = w[co, ci, k]
// for output channel co = L*cb + j; dx, the same with the roles of ci and co swapped (blocks of
// input channels). 0 past the last channel.
static void s2_pack(float *wq, const float *w, int64_t Cin, int64_t Cout, int64_t L, int for_dx) {
    const int64_t nl = for_dx ? Cin : Cout, ni = for_dx ? Cout : Cin;
    for (int64_t cb = 0; cb < ck_ceil_div(nl, L); cb++)
        for (int64_t i = 0; i < ni; i++)
            for (int k = 0; k < 9; k++)
                for (int64_t j = 0; j < L; j++) {
                    const int64_t l = cb * L + j, co = for_dx ? i : l, ci = for_dx ? l : i;
                    wq[((cb * ni + i) * 9 + k) * L + j] = l < nl ? w[(co * Cin + ci) * 9 + k] : 0.0f;
                }
}

// A tile's accumulators buf[p*L + c] (pixels p < P, channels c < nc) into channel planes `plane`
// floats apart, pixel p of channel c at out + c*plane + p: gathered by channel 16 pixels at a
// time, plus bias[c] when there is one, written (set) or added to what is there.
CK_AVX512 static void s2_store(float *out, int64_t plane, const float *buf, int L, int64_t nc, int P, const float *bias, int set) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(L));
    for (int64_t c = 0; c < nc; c++)
        for (int p0 = 0; p0 < P; p0 += 16) {
            const __mmask16 m = lanes(P - p0);
            float *e = out + c * plane + p0;
            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, buf + p0 * L + c, 4);
            if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(bias[c]));
            if (!set) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, e), v);
            _mm512_mask_storeu_ps(e, m, v);
        }
}

// Whether pixel ox of a row reads a padding column at tap column kx.
static int s2f_pad(const s2f_job *j, int64_t ox, int kx) { return 2 * ox + kx - 1 < 0 || 2 * ox + kx - 1 >= j->W; }

// Output y of image n, row oy, pixels [ox0, ox0 + P), channel block cb.
CK_AVX512 static inline __attribute__((always_inline)) void s2f_tile512(const s2f_job *j, int64_t n, int64_t oy, int64_t ox0,
                                                                        int64_t cb, const int P) {
    const int64_t Cin = j->Cin, H = j->H, W = j->W, HWo = j->Ho * j->Wo;
    const int skip_first = s2f_pad(j, ox0, 0), skip_last = s2f_pad(j, ox0 + P - 1, 2);
    const float *xn = j->x + n * Cin * H * W, *wq = j->wq + cb * Cin * 9 * S2F_COB;
    __m512 acc[S2F_RUN][2];
#pragma unroll
    for (int p = 0; p < P; p++) acc[p][0] = acc[p][1] = _mm512_setzero_ps();
    for (int64_t ci = 0; ci < Cin; ci++)
        for (int ky = 0; ky < 3; ky++) {
            const int64_t iy = 2 * oy + ky - 1;
            if (iy < 0 || iy >= H) continue;
            const float *row = xn + (ci * H + iy) * W + 2 * ox0;
            for (int kx = 0; kx < 3; kx++) {
                const float *wk = wq + (ci * 9 + ky * 3 + kx) * S2F_COB, *src = row + kx - 1;
                const __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16);
#pragma unroll
                for (int p = 0; p < P; p++) {
                    if ((p == 0 && kx == 0 && skip_first) || (p == P - 1 && kx == 2 && skip_last)) continue;
                    const __m512 xb = _mm512_set1_ps(src[2 * p]);
                    acc[p][0] = _mm512_fmadd_ps(w0, xb, acc[p][0]);
                    acc[p][1] = _mm512_fmadd_ps(w1, xb, acc[p][1]);
                }
            }
        }
    float buf[S2F_RUN * S2F_COB] __attribute__((aligned(64)));
#pragma unroll
    for (int p = 0; p < P; p++) {
        _mm512_store_ps(buf + p * S2F_COB, acc[p][0]);
        _mm512_store_ps(buf + p * S2F_COB + 16, acc[p][1]);
    }
    s2_store(j->y + (n * j->Cout + cb * S2F_COB) * HWo + oy * j->Wo + ox0, HWo, buf, S2F_COB,
             ck_min64(S2F_COB, j->Cout - cb * S2F_COB), P, j->b ? j->b + cb * S2F_COB : NULL, 1);
}
#define S2F_TILE(P)                                                                                                        \
    CK_AVX512 static void s2f_tile##P(const s2f_job *j, int64_t n, int64_t oy, int64_t ox0, int64_t cb) {                  \
        s2f_tile512(j, n, oy, ox0, cb, P);                                                                                 \
    }
S2F_TILE(1) S2F_TILE(2) S2F_TILE(3) S2F_TILE(4) S2F_TILE(5) S2F_TILE(6) S2F_TILE(7)
S2F_TILE(8) S2F_TILE(9) S2F_TILE(10) S2F_TILE(11) S2F_TILE(12) S2F_TILE(13) S2F_TILE(14)
static void (*const s2f_tiles[S2F_RUN])(const s2f_job *, int64_t, int64_t, int64_t, int64_t) = {
    s2f_tile1, s2f_tile2, s2f_tile3, s2f_tile4, s2f_tile5, s2f_tile6, s2f_tile7,
    s2f_tile8, s2f_tile9, s2f_tile10, s2f_tile11, s2f_tile12, s2f_tile13, s2f_tile14,
};

// The same chains, one output element at a time (the SIMD paths switched off).
static void s2f_tile_scalar(const s2f_job *j, int64_t n, int64_t oy, int64_t ox0, int64_t cb, int P) {
    const int64_t Cin = j->Cin, H = j->H, W = j->W, HWo = j->Ho * j->Wo;
    for (int64_t c = 0; c < ck_min64(S2F_COB, j->Cout - cb * S2F_COB); c++)
        for (int64_t ox = ox0; ox < ox0 + P; ox++) {
            float acc = 0.0f;
            for (int64_t ci = 0; ci < Cin; ci++)
                for (int ky = 0; ky < 3; ky++) {
                    const int64_t iy = 2 * oy + ky - 1;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < 3; kx++)
                        if (!s2f_pad(j, ox, kx))
                            acc = fmaf(j->wq[((cb * Cin + ci) * 9 + ky * 3 + kx) * S2F_COB + c],
                                       j->x[((n * Cin + ci) * H + iy) * W + 2 * ox + kx - 1], acc);
                }
            j->y[(n * j->Cout + cb * S2F_COB + c) * HWo + oy * j->Wo + ox] = j->b ? acc + j->b[cb * S2F_COB + c] : acc;
        }
}

// Task (image, output row, channel block): the row's runs.
static void s2f_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const s2f_job *j = ctx;
    const int64_t cb = t % j->ncb, oy = t / j->ncb % j->Ho, n = t / j->ncb / j->Ho;
    for (int64_t ox0 = 0; ox0 < j->Wo; ox0 += S2F_RUN) {
        const int P = (int)ck_min64(S2F_RUN, j->Wo - ox0);
        if (ck_cpu_use_avx2()) s2f_tiles[P - 1](j, n, oy, ox0, cb);
        else s2f_tile_scalar(j, n, oy, ox0, cb, P);
    }
}

// ---- direct 3x3 stride-2 pad-1 dx: input channels in the lanes ----
//
// dx[ci, iy, ix] sums w[co, ci, ky, kx] dy[co, oy, ox] over the taps with 2oy + ky - 1 = iy and
// 2ox + kx - 1 = ix: an even row has the one tap row ky = 1, an odd row ky = 0 and 2; an even
// column the tap kx = 1 (ox = ix/2), an odd one kx = 0 (ox = (ix+1)/2) and kx = 2 (ox = (ix-1)/2).
// A tile is a run of up to S2D_RUN pixels of one dx row, from an even column, and a block of 16
// input channels: for each output channel and tap row, the three weight vectors are loaded
// once and each dy value of the row, broadcast, feeds the one to three pixels that read it.
// Each element is one chain (output channel, then ky, then kx); the run's last odd pixel skips
// its kx = 0 tap when that column of dy does not exist. Written straight into dx, set or added.

#define S2D_RUN 28
#define S2D_CB 16
static int64_t s2d_floats(int64_t Cin, int64_t Cout) { return ck_ceil_div(Cin, S2D_CB) * S2D_CB * Cout * 9; }

typedef struct {
    float *dx;
    const float *dy, *wq;
    int64_t Cin, Cout, H, W, Ho, Wo, ncb;
    int set;
} s2d_job;

// The tap rows (ky, oy) of dx row iy: *n of them.
static void s2d_rows(int64_t iy, int64_t Ho, int *n, int ky[2], int64_t oy[2]) {
    *n = 0;
    for (int k = 0; k < 3; k++) {
        const int64_t t = iy + 1 - k;
        if (t % 2 == 0 && t >= 0 && t / 2 < Ho) {
            ky[*n] = k;
            oy[*n] = t / 2;
            (*n)++;
        }
    }
}

// dx of image n, row iy, pixels [ix0, ix0 + P) (ix0 even), input-channel block cb.
CK_AVX512 static inline __attribute__((always_inline)) void s2d_tile512(const s2d_job *j, int64_t n, int64_t iy, int64_t ix0,
                                                                        int64_t cb, const int P) {
    const int64_t Cout = j->Cout, Ho = j->Ho, Wo = j->Wo, m0 = ix0 / 2;
    const int skip_last = P % 2 == 0 && m0 + P / 2 >= Wo;   // the last (odd) pixel's kx = 0 column
    const float *wq = j->wq + cb * Cout * 9 * S2D_CB;
    int nr, ky[2];
    int64_t oy[2];
    s2d_rows(iy, Ho, &nr, ky, oy);
    __m512 acc[S2D_RUN];
#pragma unroll
    for (int p = 0; p < P; p++) acc[p] = _mm512_setzero_ps();
    for (int64_t co = 0; co < Cout; co++)
        for (int r = 0; r < nr; r++) {
            const float *d = j->dy + ((n * Cout + co) * Ho + oy[r]) * Wo + m0, *wk = wq + (co * 9 + ky[r] * 3) * S2D_CB;
            const __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + S2D_CB), w2 = _mm512_loadu_ps(wk + 2 * S2D_CB);
#pragma unroll
            for (int p = 0; p < P; p++) {
                if (p % 2 == 0) {   // kx = 1, ox = m0 + p/2
                    acc[p] = _mm512_fmadd_ps(w1, _mm512_set1_ps(d[p / 2]), acc[p]);
                    continue;
                }
                if (!(p == P - 1 && skip_last)) acc[p] = _mm512_fmadd_ps(w0, _mm512_set1_ps(d[(p + 1) / 2]), acc[p]);   // kx = 0
                acc[p] = _mm512_fmadd_ps(w2, _mm512_set1_ps(d[p / 2]), acc[p]);   // kx = 2, ox = m0 + (p-1)/2
            }
        }
    float buf[S2D_RUN * S2D_CB] __attribute__((aligned(64)));
#pragma unroll
    for (int p = 0; p < P; p++) _mm512_store_ps(buf + p * S2D_CB, acc[p]);
    s2_store(j->dx + ((n * j->Cin + cb * S2D_CB) * j->H + iy) * j->W + ix0, j->H * j->W, buf, S2D_CB,
             ck_min64(S2D_CB, j->Cin - cb * S2D_CB), P, NULL, j->set);
}
#define S2D_TILE(P)                                                                                                        \
    CK_AVX512 static void s2d_tile##P(const s2d_job *j, int64_t n, int64_t iy, int64_t ix0, int64_t cb) {                  \
        s2d_tile512(j, n, iy, ix0, cb, P);                                                                                 \
    }
S2D_TILE(1) S2D_TILE(2) S2D_TILE(3) S2D_TILE(4) S2D_TILE(5) S2D_TILE(6) S2D_TILE(7)
S2D_TILE(8) S2D_TILE(9) S2D_TILE(10) S2D_TILE(11) S2D_TILE(12) S2D_TILE(13) S2D_TILE(14)
S2D_TILE(15) S2D_TILE(16) S2D_TILE(17) S2D_TILE(18) S2D_TILE(19) S2D_TILE(20) S2D_TILE(21)
S2D_TILE(22) S2D_TILE(23) S2D_TILE(24) S2D_TILE(25) S2D_TILE(26) S2D_TILE(27) S2D_TILE(28)
static void (*const s2d_tiles[S2D_RUN])(const s2d_job *, int64_t, int64_t, int64_t, int64_t) = {
    s2d_tile1,  s2d_tile2,  s2d_tile3,  s2d_tile4,  s2d_tile5,  s2d_tile6,  s2d_tile7,
    s2d_tile8,  s2d_tile9,  s2d_tile10, s2d_tile11, s2d_tile12, s2d_tile13, s2d_tile14,
    s2d_tile15, s2d_tile16, s2d_tile17, s2d_tile18, s2d_tile19, s2d_tile20, s2d_tile21,
    s2d_tile22, s2d_tile23, s2d_tile24, s2d_tile25, s2d_tile26, s2d_tile27, s2d_tile28,
};

// The same chains, one element at a time (the SIMD paths switched off).
static void s2d_tile_scalar(const s2d_job *j, int64_t n, int64_t iy, int64_t ix0, int64_t cb, int P) {
    const int64_t Cout = j->Cout, Ho = j->Ho, Wo = j->Wo;
    int nr, ky[2];
    int64_t oy[2];
    s2d_rows(iy, Ho, &nr, ky, oy);
    for (int64_t c = 0; c < ck_min64(S2D_CB, j->Cin - cb * S2D_CB); c++)
        for (int64_t ix = ix0; ix < ix0 + P; ix++) {
            float acc = 0.0f;
            for (int64_t co = 0; co < Cout; co++)
                for (int r = 0; r < nr; r++)
                    for (int kx = 0; kx < 3; kx++) {
                        const int64_t t = ix + 1 - kx;
                        if (t % 2 != 0 || t < 0 || t / 2 >= Wo) continue;
                        acc = fmaf(j->wq[((cb * Cout + co) * 9 + ky[r] * 3 + kx) * S2D_CB + c],
                                   j->dy[((n * Cout + co) * Ho + oy[r]) * Wo + t / 2], acc);
                    }
            float *e = j->dx + ((n * j->Cin + cb * S2D_CB + c) * j->H + iy) * j->W + ix;
            *e = j->set ? acc : *e + acc;
        }
}

// Task (image, input-channel block): every row, in runs of equal even length.
static void s2d_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const s2d_job *j = ctx;
    const int64_t cb = t % j->ncb, n = t / j->ncb, runs = ck_ceil_div(j->W, S2D_RUN);
    const int64_t len = ck_min64(S2D_RUN, ck_ceil_div(ck_ceil_div(j->W, runs), 2) * 2);
    for (int64_t iy = 0; iy < j->H; iy++)
        for (int64_t ix0 = 0; ix0 < j->W; ix0 += len) {
            const int P = (int)ck_min64(len, j->W - ix0);
            if (ck_cpu_use_avx2()) s2d_tiles[P - 1](j, n, iy, ix0, cb);
            else s2d_tile_scalar(j, n, iy, ix0, cb, P);
        }
}

// ---- direct 3x3 pad-1 weight gradient (stride 1 and 2): sizes (the kernel is below the slots) ----

#define DW_SEGMENT_PIXELS 128

// Segments: every sum runs over segments of about DW_SEGMENT_PIXELS pixels (one chain of fmas
// each) whose results are added in order, so no chain grows with the image or chunk size: G
// whole images when they are small, otherwise RS rows of one image.
static int64_t dwd_segment_images(int64_t H, int64_t W) { return ck_max64(1, DW_SEGMENT_PIXELS / (H * W)); }
static int64_t dwd_segment_rows(int64_t H, int64_t W) { return H * W >= DW_SEGMENT_PIXELS ? ck_max64(1, DW_SEGMENT_PIXELS / W) : H; }
static int64_t dwd_ci16(int64_t Cin) { return ck_ceil_div(Cin, 16) * 16; }
// Rows (broadcast channels) per register block, by 16-lane vectors per block (2 x 8 or 1 x 16
// accumulators: each vector loaded serves 8 or 16 fmas, which keeps the L2 traffic low).
static int64_t dwd_rows(int64_t vecs) { return vecs == 2 ? 8 : 16; }
static int64_t dwd_copad(int64_t Cout) { return ck_ceil_div(Cout, 16) * 16; }
// Stride 2 with at least 16 input channels (a full block of broadcast rows): x is read where it
// lies and broadcast, and dy's copy is the vector operand (x has four times dy's pixels, and its
// channels-last copy read at every other pixel leaves most of each line unused in L1; A/B in
// both orders: 28->14 +19-23%, 14->7 +13-22%, 8->4 and 7->4 the same). Otherwise x's
// channels-last copy is the vector operand and dy is broadcast.
static int dwd_x_in_place(int64_t s, int64_t Cin) { return s == 2 && Cin >= 16; }
// Chunks of whole images: as many as MAX_CHUNKS allows (small chunks balance the threads and
// keep a chunk's data in L2), each of the same number of images but the last.
static int64_t chunk_images(int64_t N) { return ck_ceil_div(N, ck_min64(N, MAX_CHUNKS)); }
static int64_t image_chunks(int64_t N) { return ck_ceil_div(N, chunk_images(N)); }
// Floats of one slot: the chunk's dy (HW output pixels per image) channels last, and its x (HWi
// pixels) when x is copied.
static int64_t dwd_slot(int64_t N, int64_t Cin, int64_t HWi, int64_t Cout, int64_t HW, int64_t s) {
    return chunk_images(N) * ((dwd_x_in_place(s, Cin) ? 0 : HWi * dwd_ci16(Cin)) + HW * dwd_copad(Cout));
}
// Floats of the pass: dw partials per chunk (9 x Cout' x Cin16), db partials, then the slots.
static int64_t dwd_floats(int64_t N, int64_t Cin, int64_t HWi, int64_t Cout, int64_t HW, int64_t s) {
    const int64_t nch = image_chunks(N), co = dwd_copad(Cout);
    return nch * (9 * co * dwd_ci16(Cin) + co) + nch * dwd_slot(N, Cin, HWi, Cout, HW, s);
}

#ifndef CONV_DX_GATHER
#define CONV_DX_GATHER 1
#endif

// dx of a stride-1 convolution is itself a stride-1 convolution of dy (N, Cout, Ho, Wo) with
// the flipped, transposed kernel w'[ci, co, ky, kx] = w[co, ci, K-1-ky, K-1-kx] and padding
// K-1-pad; its output is (N, Cin, H, W). Run through the forward machinery (im2col of dy,
// GEMM with the deep inner dimension Cout*K*K, result added straight into dx), it needs no
// col2im scatter and no band halo.
static int dx_gather(const conv_plan *p) {
    return CONV_DX_GATHER && p->s == 1 && p->K > 1 && p->pad <= p->K - 1;
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

int64_t ck_conv2d_forward_workspace_floats(int64_t N, int64_t Cin, int64_t H, int64_t W,
                                           int64_t Cout, int64_t K, int64_t stride, int64_t pad) {
    conv_plan p;
    make_plan(&p, N, Cin, H, W, Cout, K, stride, pad);
    if (p.ntiles == 0) return 0;
    if (direct_ok(K, stride, pad)) return dc_floats(Cin, Cout, H * W);
    if (direct2_ok(K, stride, pad)) return s2f_floats(Cin, Cout);   // the packed weights
    return p.nch_f * p.slot_f;
}

int64_t ck_conv2d_backward_workspace_floats(int64_t N, int64_t Cin, int64_t H, int64_t W,
                                            int64_t Cout, int64_t K, int64_t stride, int64_t pad) {
    conv_plan p;
    make_plan(&p, N, Cin, H, W, Cout, K, stride, pad);
    if (p.ntiles == 0) return 0;
    int64_t parts = p.nch_a * Cout * p.KK + p.nch_a * Cout;   // dw^T and db partial sums
    // The dw/db pass (slots, then the partial sums) runs before the dx pass, which may reuse
    // the whole workspace.
    if (direct_ok(K, stride, pad)) return ck_max64(dwd_floats(N, Cin, H * W, Cout, H * W, 1), dc_floats(Cout, Cin, H * W));
    if (direct2_ok(K, stride, pad)) return ck_max64(dwd_floats(N, Cin, H * W, Cout, p.Ho * p.Wo, 2), s2d_floats(Cin, Cout));
    return ck_max64(p.nch_a * p.nks * p.slot_a + parts, dx_pass_floats(&p));
}

// ---- row helpers: scalar code and AVX2 intrinsics that add in the same order (same bits) ----

static void add_scalar(float *d, const float *s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
}
CK_AVX2 static void add_avx2(float *d, const float *s, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_add_ps(_mm256_loadu_ps(d + i), _mm256_loadu_ps(s + i)));
    for (; i < n; i++) d[i] += s[i];
}

static void addc_scalar(float *d, float c, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += c;
}
CK_AVX2 static void addc_avx2(float *d, float c, int64_t n) {
    const __m256 v = _mm256_set1_ps(c);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_add_ps(_mm256_loadu_ps(d + i), v));
    for (; i < n; i++) d[i] += c;
}

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
CK_AVX2 static float sum_avx2(const float *x, int64_t n) {
    __m256 v = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) v = _mm256_add_ps(v, _mm256_loadu_ps(x + i));
    float a[8];
    _mm256_storeu_ps(a, v);
    float s = fold8(a);
    for (; i < n; i++) s += x[i];
    return s;
}

// d[i] = s[2i], i < n (the scalar path of stride-2 im2col).
static void gather2_scalar(float *d, const float *s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = s[2 * i];
}

// d[2i] += s[i], i < n; `room` floats of d may be read and written back (>= 2n - 1).
static void scatter2_scalar(float *d, const float *s, int64_t n, int64_t room) {
    (void)room;
    for (int64_t i = 0; i < n; i++) d[2 * i] += s[i];
}
CK_AVX2 static void scatter2_avx2(float *d, const float *s, int64_t n, int64_t room) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t i = 0; i < n; i += 8) {
        __m256 v, d0, d1;
        int full = i + 8 <= n && 2 * i + 16 <= room;
        __m256i m0 = _mm256_set1_epi32(-1), m1 = m0;
        if (full) {
            v = _mm256_loadu_ps(s + i);
            d0 = _mm256_loadu_ps(d + 2 * i);
            d1 = _mm256_loadu_ps(d + 2 * i + 8);
        } else {   // tail: only the lanes inside the row (room) are read and written back
            __m256i ms = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), iota);
            __m256i r = _mm256_set1_epi32((int)(room - 2 * i));
            m0 = _mm256_cmpgt_epi32(r, iota);
            m1 = _mm256_cmpgt_epi32(r, _mm256_add_epi32(iota, _mm256_set1_epi32(8)));
            v = _mm256_maskload_ps(s + i, ms);
            d0 = _mm256_maskload_ps(d + 2 * i, m0);
            d1 = _mm256_maskload_ps(d + 2 * i + 8, m1);
        }
        __m256 z = _mm256_setzero_ps();
        __m256 lo = _mm256_unpacklo_ps(v, z), hi = _mm256_unpackhi_ps(v, z);   // s0 0 s1 0 | s4 0 s5 0 ...
        __m256 e0 = _mm256_permute2f128_ps(lo, hi, 0x20), e1 = _mm256_permute2f128_ps(lo, hi, 0x31);
        // Only the even lanes with a source element change (the others keep their exact bits,
        // -0 included).
        if (full) {
            d0 = _mm256_blend_ps(d0, _mm256_add_ps(d0, e0), 0x55);
            d1 = _mm256_blend_ps(d1, _mm256_add_ps(d1, e1), 0x55);
        } else {
            const __m256i even = _mm256_setr_epi32(-1, 0, -1, 0, -1, 0, -1, 0);
            const __m256i h0 = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), h1 = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
            __m256i rem = _mm256_set1_epi32((int)(n - i));
            __m256i w0 = _mm256_and_si256(even, _mm256_cmpgt_epi32(rem, h0)), w1 = _mm256_and_si256(even, _mm256_cmpgt_epi32(rem, h1));
            d0 = _mm256_blendv_ps(d0, _mm256_add_ps(d0, e0), _mm256_castsi256_ps(w0));
            d1 = _mm256_blendv_ps(d1, _mm256_add_ps(d1, e1), _mm256_castsi256_ps(w1));
        }
        if (full) {
            _mm256_storeu_ps(d + 2 * i, d0);
            _mm256_storeu_ps(d + 2 * i + 8, d1);
        } else {
            _mm256_maskstore_ps(d + 2 * i, m0, d0);
            _mm256_maskstore_ps(d + 2 * i + 8, m1, d1);
        }
    }
}

typedef struct {
    void (*add)(float *, const float *, int64_t);
    void (*addc)(float *, float, int64_t);
    float (*sum)(const float *, int64_t);
    void (*scatter2)(float *, const float *, int64_t, int64_t);
    int avx;
} row_ops;

static row_ops get_ops(void) {
    if (ck_cpu_use_avx2()) return (row_ops){add_avx2, addc_avx2, sum_avx2, scatter2_avx2, 1};
    return (row_ops){add_scalar, addc_scalar, sum_scalar, scatter2_scalar, 0};
}

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

// AVX2 helpers: zeroing and copying with masked tails (no library calls: small images have
// short col rows, where call overhead would dominate).
static const int32_t k_tail_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

CK_AVX2 static inline void zero_avx2(float *d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_setzero_ps());
    if (i < n) _mm256_maskstore_ps(d + i, _mm256_loadu_si256((const __m256i *)(k_tail_mask + 8 - (n - i))), _mm256_setzero_ps());
}

CK_AVX2 static inline void copy_avx2(float *d, const float *s, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(s + i), b = _mm256_loadu_ps(s + i + 8), c = _mm256_loadu_ps(s + i + 16), e = _mm256_loadu_ps(s + i + 24);
        _mm256_storeu_ps(d + i, a); _mm256_storeu_ps(d + i + 8, b); _mm256_storeu_ps(d + i + 16, c); _mm256_storeu_ps(d + i + 24, e);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_loadu_ps(s + i));
    if (i < n) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(k_tail_mask + 8 - (n - i)));
        _mm256_maskstore_ps(d + i, m, _mm256_maskload_ps(s + i, m));
    }
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

// d[e] = src[e] & mask of column (r0 + e) mod W, e < n; r0 < W; tab has period L.
CK_AVX2 static inline void copy_masked_avx2(float *d, const float *src, int64_t n, const int32_t *tab, int64_t r0,
                                            int64_t L) {
    int64_t r = r0, i = 0;
    for (; i + 32 <= n; i += 32) {
        const int32_t *t = tab + r;
        __m256 a = _mm256_and_ps(_mm256_loadu_ps(src + i), _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)t)));
        __m256 b = _mm256_and_ps(_mm256_loadu_ps(src + i + 8), _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(t + 8))));
        __m256 c = _mm256_and_ps(_mm256_loadu_ps(src + i + 16), _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(t + 16))));
        __m256 e = _mm256_and_ps(_mm256_loadu_ps(src + i + 24), _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(t + 24))));
        _mm256_storeu_ps(d + i, a);
        _mm256_storeu_ps(d + i + 8, b);
        _mm256_storeu_ps(d + i + 16, c);
        _mm256_storeu_ps(d + i + 24, e);
        r += 32;
        while (r >= L) r -= L;
    }
    for (; i + 8 <= n; i += 8, r += 8)
        _mm256_storeu_ps(d + i, _mm256_and_ps(_mm256_loadu_ps(src + i), _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(tab + r)))));
    if (i < n) {
        __m256i t = _mm256_loadu_si256((const __m256i *)(k_tail_mask + 8 - (n - i)));
        __m256 m = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(tab + r)));
        _mm256_maskstore_ps(d + i, t, _mm256_and_ps(_mm256_maskload_ps(src + i, t), m));
    }
}

CK_AVX2 static void im2col_row_same_avx2(float *d, const float *xc, int64_t ky, int64_t kx, int64_t oy0, int64_t oy1,
                                         const conv_plan *p, const int32_t *tab) {
    const int64_t W = p->W, H = p->H, pad = p->pad, rows = oy1 - oy0;
    int64_t ya = ck_max64(oy0, pad - ky), yb = ck_min64(oy1, H + pad - ky);
    if (yb <= ya) {
        zero_avx2(d, rows * W);
        return;
    }
    int64_t e0 = (ya - oy0) * W, e1 = (yb - oy0) * W, S0 = (oy0 + ky - pad) * W + kx - pad;
    int64_t c0 = ck_max64(e0, -S0), c1 = ck_min64(e1, H * W - S0);
    zero_avx2(d, c0);
    // c0 is a row start (column 0), or the first in-plane column pad - kx of the first row
    if (kx == pad) copy_avx2(d + c0, xc + c0 + S0, c1 - c0);
    else {
        int64_t L = mask_period(W);
        copy_masked_avx2(d + c0, xc + c0 + S0, c1 - c0, tab + kx * (L + 32), c0 - e0, L);
    }
    zero_avx2(d + c1, rows * W - c1);
}

// Stride 2: col row (ci, ky, kx) over output rows [oy0, oy1), one output row at a time,
// d[ox] = x[iy, 2 ox - pad + kx]. 8 outputs come from 16 consecutive inputs: masked loads read
// 0 outside the image (which makes the border zeros), a shuffle keeps the even lanes.
CK_AVX2 static void im2col_row_s2_avx2(float *d, const float *xc, int64_t ky, int64_t kx, int64_t oy0, int64_t oy1,
                                       const conv_plan *p) {
    const int64_t W = p->W, H = p->H, Wo = p->Wo, pad = p->pad;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), Wv = _mm256_set1_epi32((int)W);
    const __m256i neg1 = _mm256_set1_epi32(-1);
    for (int64_t oy = oy0; oy < oy1; oy++, d += Wo) {
        int64_t iy = 2 * oy - pad + ky;
        if (iy < 0 || iy >= H) {
            zero_avx2(d, Wo);
            continue;
        }
        const float *row = xc + iy * W;
        for (int64_t ox = 0; ox < Wo; ox += 8) {
            int64_t j0 = 2 * ox - pad + kx;   // input column of lane 0
            __m256 a, b;
            if (j0 >= 0 && j0 + 16 <= W) {
                a = _mm256_loadu_ps(row + j0);
                b = _mm256_loadu_ps(row + j0 + 8);
            } else {
                __m256i ja = _mm256_add_epi32(_mm256_set1_epi32((int)j0), iota), jb = _mm256_add_epi32(ja, _mm256_set1_epi32(8));
                __m256i ma = _mm256_and_si256(_mm256_cmpgt_epi32(ja, neg1), _mm256_cmpgt_epi32(Wv, ja));
                __m256i mb = _mm256_and_si256(_mm256_cmpgt_epi32(jb, neg1), _mm256_cmpgt_epi32(Wv, jb));
                // lanes outside the row are masked (not read); the pointer itself may point before it
                a = _mm256_maskload_ps(row + j0, ma);
                b = _mm256_maskload_ps(row + j0 + 8, mb);
            }
            __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));   // a0 a2 b0 b2 a4 a6 b4 b6
            e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
            if (ox + 8 <= Wo) _mm256_storeu_ps(d + ox, e);
            else _mm256_maskstore_ps(d + ox, _mm256_loadu_si256((const __m256i *)(k_tail_mask + 8 - (Wo - ox))), e);
        }
    }
}

// col rows [k0, k1) for output rows [oy0, oy1) of one image x (Cin, H, W):
// col[(kr - k0)*ldc + (oy - oy0)*Wo + ox] = x[ci, oy*s - pad + ky, ox*s - pad + kx] or 0.
static void im2col(float *col, int64_t ldc, const float *x, int64_t k0, int64_t k1, int64_t oy0,
                   int64_t oy1, const conv_plan *p, const row_ops *ops) {
    const int64_t K = p->K, s = p->s, pad = p->pad, H = p->H, W = p->W, Wo = p->Wo;
    const int same = s == 1 && Wo == W, fast = same && ops->avx && K * (mask_period(W) + 32) <= MASK_TAB_MAX;
    int32_t tab[MASK_TAB_MAX];
    if (fast) make_mask_tab(tab, p);
    int64_t ci = k0 / (K * K), ky = k0 / K % K, kx = k0 % K;   // stepped along, no divisions
    for (int64_t kr = k0; kr < k1; kr++) {
        float *d = col + (kr - k0) * ldc;
        const float *xc = x + ci * p->HW;
        if (fast) {
            im2col_row_same_avx2(d, xc, ky, kx, oy0, oy1, p, tab);
        } else if (s == 2 && ops->avx) {
            im2col_row_s2_avx2(d, xc, ky, kx, oy0, oy1, p);
        } else if (same) {
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

// Scratch slots (im2col buffers) are checked out per task, lowest free index first, so the few
// tasks running at a time keep reusing the same, cache-warm slots. A slot is fully written
// before it is read, so which slot a task gets never changes a result. A pass has at most
// MAX_CHUNKS tasks and as many slots, so a free slot always exists.
static int slot_take(_Atomic uint32_t *free_slots) {
    uint32_t m = atomic_load(free_slots);
    for (;;) {
        int i = __builtin_ctz(m);
        if (atomic_compare_exchange_weak(free_slots, &m, m & ~(1u << i))) return i;
    }
}
static void slot_give(_Atomic uint32_t *free_slots, int i) { atomic_fetch_or(free_slots, 1u << i); }
static void slots_reset(_Atomic uint32_t *free_slots) { atomic_store(free_slots, 0xFFFFFFFFu); }

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

void ck_conv2d_forward(float *y, const float *x, const float *w, const float *b, float *workspace,
                       int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                       int64_t stride, int64_t pad) {
    conv_job j = {.y = y, .x = x, .w = w, .b = b, .ws = workspace, .ops = get_ops()};
    make_plan(&j.p, N, Cin, H, W, Cout, K, stride, pad);
    if (j.p.ntiles == 0) {   // no input channels: y = b
        if (N > 0 && Cin == 0 && Cout > 0 && j.p.P > 0)
            for (int64_t i = 0; i < N * Cout; i++)
                for (int64_t q = 0; q < j.p.P; q++) y[i * j.p.P + q] = b ? b[i % Cout] : 0.0f;
        return;
    }
    if (direct_ok(K, stride, pad)) {
        const dc_taps tp = dc_taps_s1(W, 0);
        dc_run(y, x, w, b, workspace, N, Cin, H, W, Cout, 0, &tp, 0);
        return;
    }
    if (direct2_ok(K, stride, pad)) {
        s2f_job sj = {.y = y, .x = x, .wq = workspace, .b = b, .Cin = Cin, .Cout = Cout, .H = H, .W = W, .Ho = j.p.Ho,
                      .Wo = j.p.Wo, .ncb = ck_ceil_div(Cout, S2F_COB)};
        s2_pack(workspace, w, Cin, Cout, S2F_COB, 0);
        ck_parallel_for(s2f_task, &sj, N * sj.Ho * sj.ncb);
        return;
    }
    slots_reset(&j.free_slots);
    ck_parallel_for(fwd_task, &j, j.p.nch_f);
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
static void psum_scalar(float *acc, const float *parts, int64_t stride, int64_t nparts, int64_t n) {
    for (int64_t q = 1; q < nparts; q++) {
        const float *pp = parts + q * stride;
        for (int64_t i = 0; i < n; i++) acc[i] += pp[i];
    }
}
CK_AVX2 static void psum_avx2(float *acc, const float *parts, int64_t stride, int64_t nparts, int64_t n) {
    for (int64_t q = 1; q < nparts; q++) add_avx2(acc, parts + q * stride, n);
}

#define PSUM_ROWS 16

static void psum_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const conv_job *j = ctx;
    const int64_t Cout = j->p.Cout, KK = j->p.KK, k0 = t * PSUM_ROWS, k1 = ck_min64(KK, k0 + PSUM_ROWS);
    float *acc = j->parts + k0 * Cout;
    if (j->ops.avx) psum_avx2(acc, acc, Cout * KK, j->p.nch_a, (k1 - k0) * Cout);
    else psum_scalar(acc, acc, Cout * KK, j->p.nch_a, (k1 - k0) * Cout);
    for (int64_t co = 0; co < Cout; co++) {
        float *d = j->dw + co * KK;
        if (j->set_dw)
            for (int64_t k = k0; k < k1; k++) d[k] = acc[(k - k0) * Cout + co];
        else
            for (int64_t k = k0; k < k1; k++) d[k] += acc[(k - k0) * Cout + co];
    }
}

// ---- direct 3x3 pad-1 weight gradient (stride 1 and 2) ----
//
// dw[co, ci, ky, kx] = sum over n, pixels (y, x) of dy[n, co, y, x] * x[n, ci, sy + ky - 1,
// sx + kx - 1] (stride s = 1 or 2) over the output pixels whose neighbour is inside the image.
// The images are cut into fixed chunks (up to MAX_CHUNKS, by the batch size only); one task per
// chunk copies its dy, and its x unless x is read in place (dwd_x_in_place), into a scratch
// slot channels last (padded with zero channels to 16). For a tap the sum is then a run of
// outer products, pixel by pixel: one operand's 16 channels in a vector (the copied x, or with
// x in place the copied dy), the other's channels broadcast one by one (dy's copy, or x where it
// lies, read at every other pixel): acc[b][a..a+15] += B[b] * A[a..a+15]. The pixels are walked image by image, row by
// row, over the rows and columns whose neighbour exists (no masks, no lane sums). Each dw
// element is one chain of fmas in that order, so the scalar fallback gives the same bits; the
// chunks' partial sums (and db's, plain sums in pixel order) are added in chunk order, so the
// thread count never matters. Every sum runs in segments of about DW_SEGMENT_PIXELS pixels added
// in order, so rounding does not grow with the image size. The segments are the outer loop, so
// one segment's rows of x and dy stay in L1 while every tap and block of channels sweeps them. A
// running task checks out the lowest free scratch slot, as the other passes do.

// One operand of the outer products: where the value of channel c at (image n, row y, column x)
// lies, p[n*img + y*row + x*px + c*ch], and whether a tap reads it at an output pixel (dy) or at
// that pixel's neighbour in the input (x: s*y + ky - 1, s*x + kx - 1).
typedef struct {
    const float *p;
    int64_t img, row, px, ch;
    int at_neighbour;
} dwd_operand;

typedef struct {
    const float *dy, *x;
    float *part, *dbpart, *slots;   // part[((chunk*9 + k)*rows + b)*lanes + a], dbpart[chunk*CoP + co]
    int64_t N, Cin, Cout, H, W, nch, nimg, Ci16, CoP, slot;   // H x W: the output grid
    int64_t Hi, Wi, s;              // x's image size and the stride
    int x_in_place;                 // dwd_x_in_place: lanes are output channels, rows input channels
    int want_dw, want_db;           // x is only read when dw is wanted
    _Atomic uint32_t free_slots;
} dwd_job;

// A segment: images [n0, n1) of a chunk, rows [ys, ye) of each; the first of its chunk writes
// its sums, later ones add theirs.
typedef struct {
    int64_t n0, n1, ys, ye;
    int first;
} dwd_seg;

// Output rows (or columns) [*a, *b) of n whose tap-k neighbour s*y + k - 1 lies in [0, ni).
static void dwd_valid(int64_t n, int64_t ni, int64_t s, int k, int64_t *a, int64_t *b) {
    *a = k == 0 ? 1 : 0;
    *b = ck_min64(n, fdiv(ni - k, s) + 1);
}
// The rows [y0, y1) of segment s and the columns [x0, x1) that tap (ky, kx) sums over.
static void dwd_span(const dwd_job *j, const dwd_seg *s, int ky, int kx, int64_t *y0, int64_t *y1, int64_t *x0, int64_t *x1) {
    dwd_valid(j->H, j->Hi, j->s, ky, y0, y1);
    dwd_valid(j->W, j->Wi, j->s, kx, x0, x1);
    *y0 = ck_max64(*y0, s->ys);
    *y1 = ck_min64(*y1, s->ye);
}
// Operand o's channel 0 for output pixel (n, y, x) and tap (ky, kx), and its step to the next x.
static inline const float *dwd_at(const dwd_operand *o, int64_t s, int64_t n, int64_t y, int64_t x, int ky, int kx) {
    return o->at_neighbour ? o->p + n * o->img + (s * y + ky - 1) * o->row + (s * x + kx - 1) * o->px
                           : o->p + n * o->img + y * o->row + x * o->px;
}
static inline int64_t dwd_step(const dwd_operand *o, int64_t s) { return o->at_neighbour ? s * o->px : o->px; }

// One segment for tap (ky, kx): rows (broadcast channels) [b0, b0 + R) x lanes (vector channels)
// [a0, a0 + 16V); writes (first segment) or adds the sums of rows b0 + skip.. to out (rows of ld
// floats). bch: the broadcast operand's channel stride (a constant 1 when it is a copy).
CK_AVX512 static inline __attribute__((always_inline)) void
dwd_sweep512(const dwd_job *j, const dwd_operand *va, const dwd_operand *vb, int64_t bch, float *out, int64_t ld,
             const dwd_seg *s, int ky, int kx, int64_t a0, int64_t b0, int skip, const int V, const int R) {
    const int64_t st = j->s, sa = dwd_step(va, st), sb = dwd_step(vb, st);
    int64_t y0, y1, x0, x1;
    dwd_span(j, s, ky, kx, &y0, &y1, &x0, &x1);
    __m512 acc[16][2];   // every loop over it fully unrolled: registers, no stack copy
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
    // the first row's first pixels, and the steps to the next row and image: no struct reads per row
    const float *qa = dwd_at(va, st, s->n0, y0, x0, ky, kx) + a0, *qb = dwd_at(vb, st, s->n0, y0, x0, ky, kx) + b0 * bch;
    const int64_t ra = va->at_neighbour ? st * va->row : va->row, rb = vb->at_neighbour ? st * vb->row : vb->row;
    const int64_t ia = va->img - (y1 - y0) * ra, ib = vb->img - (y1 - y0) * rb;
    for (int64_t n = s->n0; n < s->n1; n++, qa += ia, qb += ib)
        for (int64_t y = y0; y < y1; y++, qa += ra, qb += rb) {
            const float *pa = qa, *pb = qb;
            for (int64_t x = x0; x < x1; x++, pa += sa, pb += sb) {
                __m512 av[2];
#pragma unroll
                for (int v = 0; v < V; v++) av[v] = _mm512_loadu_ps(pa + 16 * v);
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const __m512 bv = _mm512_set1_ps(pb[r * bch]);
#pragma unroll
                    for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(bv, av[v], acc[r][v]);
                }
            }
        }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int v = 0; v < V; v++) {
            if (r < skip) continue;
            float *o = out + (b0 + r) * ld + a0 + 16 * v;
            _mm512_storeu_ps(o, s->first ? acc[r][v] : _mm512_add_ps(_mm512_loadu_ps(o), acc[r][v]));
        }
}
#define DWD_SWEEP(NAME, V, BCH)                                                                                            \
    CK_AVX512 static void NAME(const dwd_job *j, const dwd_operand *va, const dwd_operand *vb, float *out, int64_t ld,     \
                               const dwd_seg *s, int ky, int kx, int64_t a0, int64_t b0, int skip) {                       \
        dwd_sweep512(j, va, vb, BCH, out, ld, s, ky, kx, a0, b0, skip, V, (int)dwd_rows(V));                               \
    }
DWD_SWEEP(dwd_sweep_v2, 2, 1)
DWD_SWEEP(dwd_sweep_v1, 1, 1)
DWD_SWEEP(dwd_sweep_v2_strided, 2, vb->ch)
DWD_SWEEP(dwd_sweep_v1_strided, 1, vb->ch)

// The same chains of fmas, one element at a time (the SIMD paths switched off): rows [b0, b0 +
// R) x lanes [a0, a0 + 16V).
static void dwd_sweep_scalar(const dwd_job *j, const dwd_operand *va, const dwd_operand *vb, float *out, int64_t ld,
                             const dwd_seg *s, int ky, int kx, int64_t a0, int64_t b0, int64_t V, int64_t R) {
    const int64_t st = j->s;
    int64_t y0, y1, x0, x1;
    dwd_span(j, s, ky, kx, &y0, &y1, &x0, &x1);
    for (int64_t r = b0; r < b0 + R; r++)
        for (int64_t c = a0; c < a0 + 16 * V; c++) {
            float acc = 0.0f;
            for (int64_t n = s->n0; n < s->n1; n++)
                for (int64_t y = y0; y < y1; y++)
                    for (int64_t x = x0; x < x1; x++)
                        acc = fmaf(dwd_at(vb, st, n, y, x, ky, kx)[r * vb->ch], dwd_at(va, st, n, y, x, ky, kx)[c], acc);
            float *o = out + r * ld + c;
            *o = s->first ? acc : *o + acc;
        }
}

// dst[p*ld + c] = src[c*HW + p] for pixels p < HW and channels c < ld (rows c >= nc zero):
// 16 x 16 blocks, transposed in registers (a copy: the scalar loop gives the same values).
CK_AVX512 static void transpose16_avx512(float *dst, int64_t ld, const float *src, int64_t HW, int nc, int np) {
    const __mmask16 m = np == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << np) - 1);
    __m512 r[16], t[16], u[16], v[16];
    for (int c = 0; c < 16; c++) r[c] = c < nc ? _mm512_maskz_loadu_ps(m, src + c * HW) : _mm512_setzero_ps();
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {   // u[4g + q]: rows 4g..4g+3 of column 4L + q in 128-bit lane L
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int q = 0; q < 4; q++) {
        v[q] = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88);
        v[4 + q] = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xdd);
        v[8 + q] = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
        v[12 + q] = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xdd);
    }
    for (int q = 0; q < 4; q++) {   // column (pixel) q, 8 + q, 4 + q, 12 + q
        if (q < np) _mm512_storeu_ps(dst + q * ld, _mm512_shuffle_f32x4(v[q], v[8 + q], 0x88));
        if (8 + q < np) _mm512_storeu_ps(dst + (8 + q) * ld, _mm512_shuffle_f32x4(v[q], v[8 + q], 0xdd));
        if (4 + q < np) _mm512_storeu_ps(dst + (4 + q) * ld, _mm512_shuffle_f32x4(v[4 + q], v[12 + q], 0x88));
        if (12 + q < np) _mm512_storeu_ps(dst + (12 + q) * ld, _mm512_shuffle_f32x4(v[4 + q], v[12 + q], 0xdd));
    }
}

// (C', HW) planes of `nc` channels to HW rows of `ld` channels (ld a multiple of 16).
static void to_channels_last(float *dst, int64_t ld, const float *src, int64_t nc, int64_t HW, int simd) {
    for (int64_t c0 = 0; c0 < ld; c0 += 16)
        for (int64_t p0 = 0; p0 < HW; p0 += 16) {
            const int rows = (int)ck_max64(0, ck_min64(16, nc - c0)), np = (int)ck_min64(16, HW - p0);
            if (simd) {
                transpose16_avx512(dst + p0 * ld + c0, ld, src + c0 * HW + p0, HW, rows, np);
                continue;
            }
            for (int p = 0; p < np; p++)
                for (int c = 0; c < 16; c++) dst[(p0 + p) * ld + c0 + c] = c < rows ? src[(c0 + c) * HW + p0 + p] : 0.0f;
        }
}

// db over one segment: out[co] = (first segment) or += the sum of dy[p, co] over its pixels, in
// pixel order (one chain per channel; the AVX-512 code runs 16 channels' chains side by side,
// same bits).
CK_AVX512 static void dwd_db_avx512(const dwd_job *j, const float *ds, float *out, const dwd_seg *s) {
    const int64_t W = j->W, HW = j->H * W, D = j->CoP;
    for (int64_t co = 0; co < D; co += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t n = s->n0; n < s->n1; n++)
            for (int64_t p = n * HW + s->ys * W; p < n * HW + s->ye * W; p++)
                acc = _mm512_add_ps(acc, _mm512_loadu_ps(ds + p * D + co));
        _mm512_storeu_ps(out + co, s->first ? acc : _mm512_add_ps(_mm512_loadu_ps(out + co), acc));
    }
}
static void dwd_db_scalar(const dwd_job *j, const float *ds, float *out, const dwd_seg *s) {
    const int64_t W = j->W, HW = j->H * W, D = j->CoP;
    for (int64_t co = 0; co < D; co++) {
        float acc = 0.0f;
        for (int64_t n = s->n0; n < s->n1; n++)
            for (int64_t p = n * HW + s->ys * W; p < n * HW + s->ye * W; p++) acc += ds[p * D + co];
        out[co] = s->first ? acc : out[co] + acc;
    }
}

static void dwd_task(void *ctx, int64_t chunk, int64_t nt) {
    (void)nt;
    dwd_job *j = ctx;
    const int64_t HW = j->H * j->W, HWi = j->Hi * j->Wi, C = j->Ci16, D = j->CoP, inplace = j->x_in_place;
    const int64_t n0 = chunk * j->nimg, ni = ck_min64(j->N, n0 + j->nimg) - n0;
    const int slot = slot_take(&j->free_slots);
    float *ds = j->slots + slot * j->slot, *xs = ds + j->nimg * HW * D;   // the chunk's dy, then its x
    const int simd = ck_cpu_use_avx2();
    for (int64_t n = 0; n < ni; n++) {   // channels last, zero padding
        to_channels_last(ds + n * HW * D, D, j->dy + (n0 + n) * j->Cout * HW, j->Cout, HW, simd);
        if (j->want_dw && !inplace) to_channels_last(xs + n * HWi * C, C, j->x + (n0 + n) * j->Cin * HWi, j->Cin, HWi, simd);
    }
    const dwd_operand dyc = {.p = ds, .img = HW * D, .row = j->W * D, .px = D, .ch = 1, .at_neighbour = 0};
    const dwd_operand xo = inplace ? (dwd_operand){.p = j->x ? j->x + n0 * j->Cin * HWi : NULL, .img = j->Cin * HWi, .row = j->Wi, .px = 1,
                                                   .ch = HWi, .at_neighbour = 1}
                                   : (dwd_operand){.p = xs, .img = HWi * C, .row = j->Wi * C, .px = C, .ch = 1, .at_neighbour = 1};
    const dwd_operand *va = inplace ? &dyc : &xo, *vb = inplace ? &xo : &dyc;
    const int64_t lanes = inplace ? D : C, rows = inplace ? C : D, nrows = inplace ? j->Cin : D;
    const int64_t nvec = j->want_dw ? lanes / 16 : 0, G = dwd_segment_images(j->H, j->W), RS = dwd_segment_rows(j->H, j->W);
    float *dbout = j->dbpart + chunk * D;
    // segments outermost: one segment's x and dy stay in L1 while every tap and block sweeps them
    for (int64_t g = 0; g < ni; g += G)
        for (int64_t ys = 0; ys < j->H; ys += RS) {
            const dwd_seg sg = {.n0 = g, .n1 = ck_min64(ni, g + G), .ys = ys, .ye = ck_min64(j->H, ys + RS), .first = g == 0 && ys == 0};
            if (j->want_db) {
                if (simd) dwd_db_avx512(j, ds, dbout, &sg);
                else dwd_db_scalar(j, ds, dbout, &sg);
            }
            for (int64_t v0 = 0; v0 < nvec; v0 += 2) {
                const int64_t V = ck_min64(2, nvec - v0), R = dwd_rows(V);
                for (int k = 0; k < 9; k++) {
                    float *out = j->part + (chunk * 9 + k) * rows * lanes;
                    // a last block short of R rows (only when x is in place: nrows = Cin >= 16 >= R)
                    // is moved back to end at nrows and stores only its new rows
                    for (int64_t b0 = 0; b0 < nrows; b0 += R) {
                        const int64_t bb = ck_min64(b0, nrows - R);
                        const int skip = (int)(b0 - bb);
                        if (!simd) dwd_sweep_scalar(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, b0, V, R - skip);
                        else if (V == 2 && inplace) dwd_sweep_v2_strided(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, bb, skip);
                        else if (inplace) dwd_sweep_v1_strided(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, bb, skip);
                        else if (V == 2) dwd_sweep_v2(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, bb, skip);
                        else dwd_sweep_v1(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, bb, skip);
                    }
                }
            }
        }
    slot_give(&j->free_slots, slot);
}

typedef struct {
    float *dw, *part;
    int64_t Cin, Cout, lanes, rows, nlanes, nch;   // nlanes: the lanes that are channels
    int x_in_place, set_dw;
} dwd_sum_job;
#define DWD_SUM_ROWS 16

// Rows [DWD_SUM_ROWS t, ...) of the partials (output channels, or input channels when x is in
// place): for each tap one contiguous span summed over the chunks in chunk order (psum: the same
// bits with or without SIMD; spans, not single rows, so the reads stream), then moved (or added)
// into dw's layout, writing dw in order.
static void dwd_sum_task(void *ctx, int64_t t, int64_t nt) {
    (void)nt;
    const dwd_sum_job *j = ctx;
    const int64_t np = 9 * j->rows * j->lanes, nb = j->x_in_place ? j->Cin : j->Cout;
    const int64_t b0 = t * DWD_SUM_ROWS, b1 = ck_min64(nb, b0 + DWD_SUM_ROWS);
    for (int k = 0; k < 9; k++) {
        float *span = j->part + (k * j->rows + b0) * j->lanes;
        if (ck_cpu_use_avx2()) psum_avx2(span, span, np, j->nch, (b1 - b0) * j->lanes);
        else psum_scalar(span, span, np, j->nch, (b1 - b0) * j->lanes);
    }
    for (int64_t b = b0; b < b1; b++)
        for (int64_t a = 0; a < j->nlanes; a++) {
            float *e = j->dw + (j->x_in_place ? a * j->Cin + b : b * j->Cin + a) * 9;
            for (int k = 0; k < 9; k++) e[k] = (j->set_dw ? 0.0f : e[k]) + j->part[(k * j->rows + b) * j->lanes + a];
        }
}

// dw (= | +=) and db (= | +=) of a 3x3 pad-1 convolution of x (Hi x Wi images) with stride s
// (1 or 2) and an H x W output; ws holds dwd_floats(N, Cin, Hi*Wi, Cout, H*W, s).
static void dwd_run(float *dw, float *db, int set_dw, int set_db, const float *dy, const float *x, float *ws, int64_t N,
                    int64_t Cin, int64_t Hi, int64_t Wi, int64_t s, int64_t H, int64_t W, int64_t Cout) {
    const int64_t nch = image_chunks(N), C = dwd_ci16(Cin), D = dwd_copad(Cout);
    const int inplace = dwd_x_in_place(s, Cin);
    dwd_job j = {.dy = dy, .x = x, .part = ws, .dbpart = ws + nch * 9 * D * C, .N = N, .Cin = Cin, .Cout = Cout, .H = H,
                 .W = W, .nch = nch, .nimg = chunk_images(N), .Ci16 = C, .CoP = D,
                 .slot = dwd_slot(N, Cin, Hi * Wi, Cout, H * W, s), .Hi = Hi, .Wi = Wi, .s = s, .x_in_place = inplace,
                 .want_dw = dw != NULL, .want_db = db != NULL};
    j.slots = j.dbpart + nch * D;
    slots_reset(&j.free_slots);
    ck_parallel_for(dwd_task, &j, nch);
    if (dw) {   // the chunks' partials added in chunk order, then onto dw, a few rows per task
        dwd_sum_job sj = {.dw = dw, .part = j.part, .Cin = Cin, .Cout = Cout, .lanes = inplace ? D : C,
                          .rows = inplace ? C : D, .nlanes = inplace ? Cout : Cin, .nch = nch, .x_in_place = inplace,
                          .set_dw = set_dw};
        ck_parallel_for(dwd_sum_task, &sj, ck_ceil_div(inplace ? Cin : Cout, DWD_SUM_ROWS));
    }
    if (db)
        for (int64_t co = 0; co < Cout; co++) {
            float s = set_db ? 0.0f : db[co];
            for (int64_t c = 0; c < nch; c++) s += j.dbpart[c * D + co];
            db[co] = s;
        }
}

void ck_conv2d_backward(float *dx, float *dw, float *db, float *workspace, int flags,
                        const float *dy, const float *x, const float *w,
                        int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                        int64_t stride, int64_t pad) {
    conv_job j = {.dx = dx, .dw = dw, .db = db, .dy = dy, .x = x, .w = w, .ws = workspace, .ops = get_ops(),
                  .set_dx = (flags & CK_CONV_SET_DX) != 0, .set_dw = (flags & CK_CONV_SET_DW) != 0,
                  .set_db = (flags & CK_CONV_SET_DB) != 0};
    conv_plan *p = &j.p;
    make_plan(p, N, Cin, H, W, Cout, K, stride, pad);
    if (p->ntiles == 0) {   // nothing flows back; "set" buffers still need their zeros
        if (dx && j.set_dx && N > 0 && Cin > 0) memset(dx, 0, (size_t)(N * Cin * H * W) * sizeof(float));
        if (dw && j.set_dw && Cout > 0 && Cin > 0) memset(dw, 0, (size_t)(Cout * Cin * K * K) * sizeof(float));
        if (db && j.set_db && Cout > 0) memset(db, 0, (size_t)Cout * sizeof(float));
        return;
    }
    if (direct2_ok(K, stride, pad)) {
        const int64_t Ho = p->Ho, Wo = p->Wo;
        if (dw || db) dwd_run(dw, db, j.set_dw, j.set_db, dy, x, workspace, N, Cin, H, W, 2, Ho, Wo, Cout);
        if (dx) {   // after the dw pass: the workspace holds dx's packed weights now
            s2d_job dj = {.dx = dx, .dy = dy, .wq = workspace, .Cin = Cin, .Cout = Cout, .H = H, .W = W, .Ho = Ho, .Wo = Wo,
                          .ncb = ck_ceil_div(Cin, S2D_CB), .set = j.set_dx};
            s2_pack(workspace, w, Cin, Cout, S2D_CB, 1);
            ck_parallel_for(s2d_task, &dj, N * dj.ncb);
        }
        return;
    }
    if ((dw || db) && direct_ok(K, stride, pad)) {
        dwd_run(dw, db, j.set_dw, j.set_db, dy, x, workspace, N, Cin, H, W, 1, H, W, Cout);
    } else if (dw || db) {
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
    if (!dx) return;
    if (direct_ok(K, stride, pad)) {
        const dc_taps tp = dc_taps_s1(W, 1);
        dc_run(dx, dy, w, NULL, workspace, N, Cin, H, W, Cout, 1, &tp, !j.set_dx);
        return;
    }
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
    slots_reset(&t.free_slots);
    ck_parallel_for(fwd_task, &t, t.p.nch_f);
}

// ---- naive references ----

void ck_conv2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                           int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                           int64_t stride, int64_t pad) {
    int64_t Ho = ck_conv2d_out_size(H, K, stride, pad), Wo = ck_conv2d_out_size(W, K, stride, pad);
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Cout; co++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double s = b ? b[co] : 0.0;
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int64_t ky = 0; ky < K; ky++)
                            for (int64_t kx = 0; kx < K; kx++) {
                                int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)w[((co * Cin + ci) * K + ky) * K + kx] * x[((n * Cin + ci) * H + iy) * W + ix];
                            }
                    y[((n * Cout + co) * Ho + oy) * Wo + ox] = (float)s;
                }
}

void ck_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int64_t N, int64_t Cin, int64_t H, int64_t W,
                            int64_t Cout, int64_t K, int64_t stride, int64_t pad) {
    int64_t Ho = ck_conv2d_out_size(H, K, stride, pad), Wo = ck_conv2d_out_size(W, K, stride, pad);
    if (dx)
        for (int64_t n = 0; n < N; n++)
            for (int64_t ci = 0; ci < Cin; ci++)
                for (int64_t iy = 0; iy < H; iy++)
                    for (int64_t ix = 0; ix < W; ix++) {
                        double s = 0.0;
                        for (int64_t co = 0; co < Cout; co++)
                            for (int64_t ky = 0; ky < K; ky++)
                                for (int64_t kx = 0; kx < K; kx++) {
                                    int64_t ty = iy + pad - ky, tx = ix + pad - kx;
                                    if (ty < 0 || tx < 0 || ty % stride || tx % stride) continue;
                                    int64_t oy = ty / stride, ox = tx / stride;
                                    if (oy >= Ho || ox >= Wo) continue;
                                    s += (double)w[((co * Cin + ci) * K + ky) * K + kx] * dy[((n * Cout + co) * Ho + oy) * Wo + ox];
                                }
                        dx[((n * Cin + ci) * H + iy) * W + ix] += (float)s;
                    }
    if (dw)
        for (int64_t co = 0; co < Cout; co++)
            for (int64_t ci = 0; ci < Cin; ci++)
                for (int64_t ky = 0; ky < K; ky++)
                    for (int64_t kx = 0; kx < K; kx++) {
                        double s = 0.0;
                        for (int64_t n = 0; n < N; n++)
                            for (int64_t oy = 0; oy < Ho; oy++)
                                for (int64_t ox = 0; ox < Wo; ox++) {
                                    int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    s += (double)dy[((n * Cout + co) * Ho + oy) * Wo + ox] * x[((n * Cin + ci) * H + iy) * W + ix];
                                }
                        dw[((co * Cin + ci) * K + ky) * K + kx] += (float)s;
                    }
    if (db)
        for (int64_t co = 0; co < Cout; co++) {
            double s = 0.0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t q = 0; q < Ho * Wo; q++) s += dy[(n * Cout + co) * Ho * Wo + q];
            db[co] += (float)s;
        }
}

// 2-D convolution, direct 3x3 stride-1 pad-1 engine: forward and dx without im2col or GEMM
// (at SIMD level avx512, see ck_conv.c; ck_conv_padded.c is the engine of the other vector
// levels, with the same chains and this file's packed weights).
//
// A plane is walked as flat vectors of 16 pixels; the input vector of tap (ky, kx) is the plane
// read at offset (ky-1)*W + (kx-1), masked to zero where that neighbour falls outside the image
// (a mask table per 16-pixel chunk and tap). A tile keeps 8 output channels x 3 vectors (48
// pixels) in 24 registers and adds, for each tap and input channel, broadcast weight x masked
// input: y = sum over k (outer) and ci (inner) of fma, then + b (in blocks of DC_CIB input
// channels, each block's sum added to y in order). Each output element is one lane's fixed
// chain of fmas, so the scalar fallback (used when the SIMD paths are switched off) computes the
// same chain with fmaf and gives the same bits, and the split of tiles into tasks never matters.
// Small planes run as groups of consecutive images, pixels end to end, so vectors are whole
// (dc_group). dx is the same pass over dy with the flipped, transposed kernel. The weight
// gradient is in ck_conv_wgrad.c.
#include "ck_conv_internal.h"
#include <math.h>

#define DC_NV 3     // 16-pixel vectors per tile
#define DC_TASKS 64 // aim for at least this many tasks (images x channel blocks x pixel parts)

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
int64_t ck_conv_direct_floats(int64_t ci, int64_t co, int64_t HW) {
    return ck_conv_direct_pack_floats(ci, co) + dc_mask_floats(HW);
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

int64_t ck_conv_direct_pack_floats(int64_t ci, int64_t co) { return ck_ceil_div(co, DC_COB) * ci * 9 * DC_COB; }

void ck_conv_direct_pack(float *wp, const float *w, int64_t Cin, int64_t Cout, int for_dx) {
    const dc_taps tp = dc_taps_s1(1, for_dx);   // the weights do not depend on the width
    dc_pack(wp, w, Cin, Cout, for_dx, &tp);
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

#if CK_X86
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
#endif   // CK_X86

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
    const int simd = ck_cpu_simd_enabled();
    y += cb * DC_COB * HW;
    for (int64_t tile = t0; tile < t1; tile++) {
        int64_t c0;
        int nv;
        dc_tile_span(tile, dc_chunks(np), &c0, &nv);
        if (!simd) {
            dc_tile_scalar(j, y, x, wp, b, c0, np, nv, nco);
            continue;
        }
#if CK_X86
        int two = 0;   // bit v: vector v holds pixels of two images
        for (int v = 0; v < nv; v++) {
            const int64_t P0 = (c0 + v) * 16;
            two |= (P0 / HW != (ck_min64(np, P0 + 16) - 1) / HW) << v;
        }
        dc_tiles[nv - 1][two](j, y, x, wp, b, c0, np, nco);
#endif
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

void ck_conv_direct_forward(float *y, const float *x, const float *w, const float *b, float *workspace, int64_t N,
                            int64_t Cin, int64_t H, int64_t W, int64_t Cout) {
    const dc_taps tp = dc_taps_s1(W, 0);
    dc_run(y, x, w, b, workspace, N, Cin, H, W, Cout, 0, &tp, 0);
}

void ck_conv_direct_backward_dx(float *dx, float *workspace, int flags, const float *dy, const float *w, int64_t N,
                                int64_t Cin, int64_t H, int64_t W, int64_t Cout) {
    const dc_taps tp = dc_taps_s1(W, 1);
    dc_run(dx, dy, w, NULL, workspace, N, Cin, H, W, Cout, 1, &tp, !(flags & CK_CONV_SET_DX));
}

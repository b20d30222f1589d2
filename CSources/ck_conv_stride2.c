// 2-D convolution, direct 3x3 stride-2 pad-1 engine: forward and dx without im2col or GEMM
// (taken on CPUs with AVX-512, see ck_conv.c).
//
// Output (oy, ox) reads input rows 2oy - 1, 2oy, 2oy + 1 and the same columns. Both passes put
// channels in the vector lanes and read their input straight from memory, x at stride 2
// (s2f_ below) and dy for the taps of each dx pixel (s2d_), so nothing is copied or split.
// The weight gradient is in ck_conv_wgrad.c.
#include "ck_conv_internal.h"
#include <math.h>

// ---- both passes: packed weights, and a tile's store ----

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

#if CK_X86
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
#endif

// ---- forward: output channels in the lanes ----
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
// Workspace: the packed weights.
int64_t ck_conv_s2_forward_floats(int64_t Cin, int64_t Cout) { return ck_ceil_div(Cout, S2F_COB) * S2F_COB * Cin * 9; }

typedef struct {
    float *y;
    const float *x, *wq, *b;
    int64_t Cin, Cout, H, W, Ho, Wo, ncb;
} s2f_job;

// Whether pixel ox of a row reads a padding column at tap column kx.
static int s2f_pad(const s2f_job *j, int64_t ox, int kx) { return 2 * ox + kx - 1 < 0 || 2 * ox + kx - 1 >= j->W; }

#if CK_X86
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
#endif   // CK_X86

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
#if CK_X86
        if (ck_cpu_simd_enabled()) s2f_tiles[P - 1](j, n, oy, ox0, cb);
        else
#endif
            s2f_tile_scalar(j, n, oy, ox0, cb, P);
    }
}

void ck_conv_s2_forward(float *y, const float *x, const float *w, const float *b, float *workspace, int64_t N,
                        int64_t Cin, int64_t H, int64_t W, int64_t Cout) {
    s2f_job sj = {.y = y, .x = x, .wq = workspace, .b = b, .Cin = Cin, .Cout = Cout, .H = H, .W = W,
                  .Ho = ck_conv2d_out_size(H, 3, 2, 1), .Wo = ck_conv2d_out_size(W, 3, 2, 1), .ncb = ck_ceil_div(Cout, S2F_COB)};
    s2_pack(workspace, w, Cin, Cout, S2F_COB, 0);
    ck_parallel_for(s2f_task, &sj, N * sj.Ho * sj.ncb);
}

// ---- dx: input channels in the lanes ----
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
// Workspace: the packed weights.
int64_t ck_conv_s2_dx_floats(int64_t Cin, int64_t Cout) { return ck_ceil_div(Cin, S2D_CB) * S2D_CB * Cout * 9; }

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

#if CK_X86
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
#endif   // CK_X86

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
#if CK_X86
            if (ck_cpu_simd_enabled()) s2d_tiles[P - 1](j, n, iy, ix0, cb);
            else
#endif
                s2d_tile_scalar(j, n, iy, ix0, cb, P);
        }
}

void ck_conv_s2_backward_dx(float *dx, float *workspace, int flags, const float *dy, const float *w, int64_t N,
                            int64_t Cin, int64_t H, int64_t W, int64_t Cout) {
    s2d_job dj = {.dx = dx, .dy = dy, .wq = workspace, .Cin = Cin, .Cout = Cout, .H = H, .W = W,
                  .Ho = ck_conv2d_out_size(H, 3, 2, 1), .Wo = ck_conv2d_out_size(W, 3, 2, 1), .ncb = ck_ceil_div(Cin, S2D_CB),
                  .set = (flags & CK_CONV_SET_DX) != 0};
    s2_pack(workspace, w, Cin, Cout, S2D_CB, 1);
    ck_parallel_for(s2d_task, &dj, N * dj.ncb);
}

// 2-D convolution, direct 3x3 pad-1 weight and bias gradient at stride 1 and 2, without im2col
// or GEMM (taken on CPUs with AVX-512, see ck_conv.c).
//
// dw[co, ci, ky, kx] = sum over n and output pixels (y, x) of dy[n, co, y, x] *
// x[n, ci, s*y + ky - 1, s*x + kx - 1] (stride s = 1 or 2), over the output pixels whose
// neighbour is inside the image; db[co] = sum over n and output pixels of dy[n, co, y, x].
// The images are cut into fixed chunks (up to MAX_CHUNKS, by the batch size only); one task per
// chunk copies its dy, and its x unless x is read in place (dwd_x_in_place), into a scratch
// slot channels last (padded with zero channels to 16). For a tap the sum is then a run of
// outer products, pixel by pixel: one operand's 16 channels in a vector (the copied x, or with
// x in place the copied dy), the other's channels broadcast one by one (dy's copy, or x where it
// lies, read at every other pixel): acc[b][a..a+15] += B[b] * A[a..a+15]. The pixels are walked
// image by image, row by row, over the rows and columns whose neighbour exists (no masks, no
// lane sums). Each dw element is one chain of fmas in that order, so the scalar fallback gives
// the same bits; the chunks' partial sums (and db's, plain sums in pixel order) are added in
// chunk order, so the thread count never matters. Every sum runs in segments of about
// DW_SEGMENT_PIXELS pixels added in order, so rounding does not grow with the image size. The
// segments are the outer loop, so one segment's rows of x and dy stay in L1 while every tap and
// block of channels sweeps them. A running task checks out the lowest free scratch slot, as the
// other passes do.
#include "ck_conv_internal.h"
#include <math.h>

// ---- sizes ----

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
// lies and broadcast, and dy's copy is the vector operand (x has four times dy's pixels, and a
// channels-last copy of it would be read at every other pixel only). Otherwise x's
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
int64_t ck_conv_wgrad_floats(int64_t N, int64_t Cin, int64_t HWi, int64_t Cout, int64_t HW, int64_t s) {
    const int64_t nch = image_chunks(N), co = dwd_copad(Cout);
    return nch * (9 * co * dwd_ci16(Cin) + co) + nch * dwd_slot(N, Cin, HWi, Cout, HW, s);
}

// ---- the pass ----

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
#if CK_X86   // (the step is for the AVX-512 sweeps only)
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
#endif   // CK_X86

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

#if CK_X86
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
#endif

// (C', HW) planes of `nc` channels to HW rows of `ld` channels (ld a multiple of 16).
static void to_channels_last(float *dst, int64_t ld, const float *src, int64_t nc, int64_t HW, int simd) {
    for (int64_t c0 = 0; c0 < ld; c0 += 16)
        for (int64_t p0 = 0; p0 < HW; p0 += 16) {
            const int rows = (int)ck_max64(0, ck_min64(16, nc - c0)), np = (int)ck_min64(16, HW - p0);
#if CK_X86
            if (simd) {
                transpose16_avx512(dst + p0 * ld + c0, ld, src + c0 * HW + p0, HW, rows, np);
                continue;
            }
#else
            (void)simd;
#endif
            for (int p = 0; p < np; p++)
                for (int c = 0; c < 16; c++) dst[(p0 + p) * ld + c0 + c] = c < rows ? src[(c0 + c) * HW + p0 + p] : 0.0f;
        }
}

// db over one segment: out[co] = (first segment) or += the sum of dy[p, co] over its pixels, in
// pixel order (one chain per channel; the AVX-512 code runs 16 channels' chains side by side,
// same bits).
#if CK_X86
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
#endif
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
    const int simd = ck_cpu_simd_enabled();
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
#if CK_X86
                if (simd) dwd_db_avx512(j, ds, dbout, &sg);
                else
#endif
                    dwd_db_scalar(j, ds, dbout, &sg);
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
#if CK_X86
                        else if (V == 2 && inplace) dwd_sweep_v2_strided(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, bb, skip);
                        else if (inplace) dwd_sweep_v1_strided(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, bb, skip);
                        else if (V == 2) dwd_sweep_v2(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, bb, skip);
                        else dwd_sweep_v1(j, va, vb, out, lanes, &sg, k / 3, k % 3, 16 * v0, bb, skip);
#endif
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
        ck_conv_sum_partials(span, np, j->nch, (b1 - b0) * j->lanes, ck_cpu_simd_enabled());
    }
    for (int64_t b = b0; b < b1; b++)
        for (int64_t a = 0; a < j->nlanes; a++) {
            float *e = j->dw + (j->x_in_place ? a * j->Cin + b : b * j->Cin + a) * 9;
            for (int k = 0; k < 9; k++) e[k] = (j->set_dw ? 0.0f : e[k]) + j->part[(k * j->rows + b) * j->lanes + a];
        }
}

// dw (= | +=) and db (= | +=) of a 3x3 pad-1 convolution of x (Hi x Wi images) with stride s
// (1 or 2) and an H x W output; ws holds ck_conv_wgrad_floats(N, Cin, Hi*Wi, Cout, H*W, s).
void ck_conv_wgrad(float *dw, float *db, float *ws, int flags, const float *dy, const float *x, int64_t N,
                   int64_t Cin, int64_t Hi, int64_t Wi, int64_t s, int64_t H, int64_t W, int64_t Cout) {
    const int set_dw = (flags & CK_CONV_SET_DW) != 0, set_db = (flags & CK_CONV_SET_DB) != 0;
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

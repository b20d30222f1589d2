// Private to the convolution files (ck_conv*.c): what the dispatch in ck_conv.c and the
// engines share, and each engine's entry points. ck_conv.c tells which engine runs when.
#pragma once
#include "ck_conv.h"
#include "ck_internal.h"
#include <stdatomic.h>
#if CK_X86
#include <immintrin.h>
#endif

#define MAX_CHUNKS 16          // tasks (and slots) of a pass

// Floor and ceiling of a / b for any sign of a (b > 0).
static inline int64_t fdiv(int64_t a, int64_t b) { int64_t q = a / b; return (a % b != 0 && a < 0) ? q - 1 : q; }
static inline int64_t cdiv(int64_t a, int64_t b) { return -fdiv(-a, b); }

#if CK_X86
// Lanes [0, n) of a 16-lane mask (n clamped to 0..16).
static inline __mmask16 lanes(int64_t n) { return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }
#endif

// Scratch slots (im2col buffers) are checked out per task, lowest free index first, so the few
// tasks running at a time keep reusing the same, cache-warm slots. A slot is fully written
// before it is read, so which slot a task gets never changes a result. A pass has at most
// MAX_CHUNKS tasks and as many slots, so a free slot always exists.
static inline int slot_take(_Atomic uint32_t *free_slots) {
    uint32_t m = atomic_load(free_slots);
    for (;;) {
        int i = __builtin_ctz(m);
        if (atomic_compare_exchange_weak(free_slots, &m, m & ~(1u << i))) return i;
    }
}
static inline void slot_give(_Atomic uint32_t *free_slots, int i) { atomic_fetch_or(free_slots, 1u << i); }
static inline void slots_reset(_Atomic uint32_t *free_slots) { atomic_store(free_slots, 0xFFFFFFFFu); }

// acc[i] += acc[q*stride + i] for q = 1, ..., nparts - 1 in that order (i < n): the partial sums
// of chunks 1.. added into chunk 0's, in chunk order; simd picks the vector loop, same bits
// (ck_conv_gemm.c).
void ck_conv_sum_partials(float *acc, int64_t stride, int64_t nparts, int64_t n, int simd);

// Each engine: its workspace floats, then its passes, with the public functions' argument
// order and meaning (flags: the CK_CONV_SET_* bits).

// im2col + GEMM, any shape (ck_conv_gemm.c). The inputs must not be empty (N, Cin, Cout >= 1,
// an output of at least one pixel).
int64_t ck_conv_gemm_forward_floats(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                                    int64_t stride, int64_t pad);
int64_t ck_conv_gemm_backward_floats(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K,
                                     int64_t stride, int64_t pad);
void ck_conv_gemm_forward(float *y, const float *x, const float *w, const float *b, float *workspace, int64_t N,
                          int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K, int64_t stride, int64_t pad);
void ck_conv_gemm_backward_dx(float *dx, float *workspace, int flags, const float *dy, const float *w, int64_t N,
                              int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K, int64_t stride, int64_t pad);
void ck_conv_gemm_backward_dwdb(float *dw, float *db, float *workspace, int flags, const float *dy, const float *x,
                                int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t K, int64_t stride,
                                int64_t pad);

// The direct 3x3 engines' blocks: DC_COB output channels per packed weight block, and sums
// over at most DC_CIB input channels per chain (longer sums are added up block by block in y).
#define DC_COB 8
#define DC_CIB 128

// Packed weights of a 3x3 stride-1 pass: wp[((cb*CI + ci)*9 + k)*DC_COB + j] = the weight of
// output channel DC_COB*cb + j (0 beyond CO) at tap k = 3(ky+1) + (kx+1). Forward: w itself
// (CI = Cin, CO = Cout); dx: its transpose with the kernel flipped (CI = Cout, CO = Cin).
// ck_conv_direct_pack_floats(CI, CO) floats.
int64_t ck_conv_direct_pack_floats(int64_t ci, int64_t co);
void ck_conv_direct_pack(float *wp, const float *w, int64_t Cin, int64_t Cout, int for_dx);

// Direct 3x3 stride-1 pad-1 forward and dx at level avx512 (ck_conv_direct.c): a pass producing
// CO channels from CI needs ck_conv_direct_floats(CI, CO, H*W) (forward: Cin, Cout; dx: Cout, Cin).
int64_t ck_conv_direct_floats(int64_t ci, int64_t co, int64_t HW);
void ck_conv_direct_forward(float *y, const float *x, const float *w, const float *b, float *workspace, int64_t N,
                            int64_t Cin, int64_t H, int64_t W, int64_t Cout);
void ck_conv_direct_backward_dx(float *dx, float *workspace, int flags, const float *dy, const float *w, int64_t N,
                                int64_t Cin, int64_t H, int64_t W, int64_t Cout);

// The same passes at levels avx2 and neon, on a zero-padded copy of the input
// (ck_conv_padded.c): ck_conv_padded_floats(N, CI, CO, H, W) floats.
int64_t ck_conv_padded_floats(int64_t N, int64_t ci, int64_t co, int64_t H, int64_t W);
void ck_conv_padded_forward(float *y, const float *x, const float *w, const float *b, float *workspace, int64_t N,
                            int64_t Cin, int64_t H, int64_t W, int64_t Cout);
void ck_conv_padded_backward_dx(float *dx, float *workspace, int flags, const float *dy, const float *w, int64_t N,
                                int64_t Cin, int64_t H, int64_t W, int64_t Cout);

// Direct 3x3 stride-2 pad-1 forward and dx (ck_conv_stride2.c).
int64_t ck_conv_s2_forward_floats(int64_t Cin, int64_t Cout);
int64_t ck_conv_s2_dx_floats(int64_t Cin, int64_t Cout);
void ck_conv_s2_forward(float *y, const float *x, const float *w, const float *b, float *workspace, int64_t N,
                        int64_t Cin, int64_t H, int64_t W, int64_t Cout);
void ck_conv_s2_backward_dx(float *dx, float *workspace, int flags, const float *dy, const float *w, int64_t N,
                            int64_t Cin, int64_t H, int64_t W, int64_t Cout);

// Direct 3x3 pad-1 weight and bias gradient, stride s = 1 or 2 (ck_conv_wgrad.c): x has Hi x Wi
// images, dy H x W; the pass needs ck_conv_wgrad_floats(N, Cin, Hi*Wi, Cout, H*W, s).
int64_t ck_conv_wgrad_floats(int64_t N, int64_t Cin, int64_t HWi, int64_t Cout, int64_t HW, int64_t s);
void ck_conv_wgrad(float *dw, float *db, float *workspace, int flags, const float *dy, const float *x, int64_t N,
                   int64_t Cin, int64_t Hi, int64_t Wi, int64_t s, int64_t H, int64_t W, int64_t Cout);

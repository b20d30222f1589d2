// Philox-4x32-10 and the uniform / normal fills built on it.
#include "ck_random.h"
#include "ck_internal.h"
#include <math.h>
#include <string.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void ck_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

CK_BODY void block_at(uint32_t out[4], uint64_t seed, uint64_t stream, uint64_t block) {
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    ck_philox4x32_10(out, ctr, key);
}

static inline float u24(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

// ---- Box-Muller with the project's own log and sin/cos ----
// The transform uses only correctly rounded operations (+, *, fma, /, sqrt, rint, sign flips),
// so the scalar code below and the 16-block vector code after it give the same bits:
//   r = sqrt(-2 ln u1), u1 = ((w_even >> 8) + 1) 2^-24 in (0, 1]:
//     u1 = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1)/(m + 1),
//     |s| <= 0.172, by its series to s^9 (truncation < 3e-9 relative); ln u1 = e ln2 + ln m.
//   (cos, sin)(2 pi u2), u2 = (w_odd >> 8) 2^-24: t = 4 u2 (exact), q = rint(t),
//     x = (pi/2)(t - q) in [-pi/4, pi/4], Taylor polynomials to x^9 (sin) and x^10 (cos)
//     (truncation < 2e-9), then the quadrant q mod 4 swaps and negates.
// Accuracy: a few float ulps of the exact transform of the same u1, u2 (tested in Double).
#pragma STDC FP_CONTRACT OFF

#define BM_SQRT2 1.41421356237309505f
#define BM_LN2 0.693147180559945309f
#define BM_HALF_PI 1.57079632679489662f

static inline float bits_to_float(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline uint32_t float_to_bits(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

// r = sqrt(-2 ln u1) and the angle's (cos, sin) for one pair of words.
CK_BODY void box_muller(uint32_t we, uint32_t wo, float *c_out, float *s_out) {
    float u1 = (float)((we >> 8) + 1) * (1.0f / 16777216.0f);
    uint32_t b = float_to_bits(u1);
    float e = (float)((int32_t)(b >> 23) - 127);
    float m = bits_to_float((b & 0x7FFFFFu) | 0x3F800000u);
    if (m > BM_SQRT2) { m = m * 0.5f; e = e + 1.0f; }
    float f = m - 1.0f, d = m + 1.0f;
    float sv = f / d, z = sv * sv;
    float q = fmaf(fmaf(fmaf(1.0f / 9.0f, z, 1.0f / 7.0f), z, 1.0f / 5.0f), z, 1.0f / 3.0f);
    float two_s = sv + sv;
    float tz = two_s * z;
    float lnm = fmaf(tz, q, two_s);
    float ln_u1 = fmaf(e, BM_LN2, lnm);
    float v = -2.0f * ln_u1;
    float r = sqrtf(v);

    float t = (float)(wo >> 8) * (1.0f / 16777216.0f) * 4.0f;
    float qn = rintf(t);
    float x = (t - qn) * BM_HALF_PI;
    float x2 = x * x;
    float ps = fmaf(fmaf(fmaf(1.0f / 362880.0f, x2, -1.0f / 5040.0f), x2, 1.0f / 120.0f), x2, -1.0f / 6.0f);
    float x3 = x * x2;
    float sn = fmaf(x3, ps, x);
    float pc = fmaf(fmaf(fmaf(fmaf(-1.0f / 3628800.0f, x2, 1.0f / 40320.0f), x2, -1.0f / 720.0f), x2, 1.0f / 24.0f), x2, -0.5f);
    float cs = fmaf(x2, pc, 1.0f);
    int quadrant = (int)qn & 3;
    float cq = (quadrant & 1) ? sn : cs, sq = (quadrant & 1) ? cs : sn;
    if (quadrant == 1 || quadrant == 2) cq = -cq;
    if (quadrant >= 2) sq = -sq;
    *c_out = r * cq;
    *s_out = r * sq;
}

// Standard normal value of lane `lane` in a block.
CK_BODY float normal_lane(const uint32_t w[4], int lane) {
    int pair = lane & 2;
    float c, s;
    box_muller(w[pair], w[pair + 1], &c, &s);
    return (lane & 1) ? s : c;
}

CK_BODY void normal_scalar_body(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    uint32_t w[4];
    uint64_t cached = UINT64_MAX;
    for (int64_t i = 0; i < n; i++) {
        uint64_t pos = offset + (uint64_t)i, blk = pos >> 2;
        if (blk != cached) { block_at(w, seed, stream, blk); cached = blk; }
        x[i] = normal_lane(w, (int)(pos & 3));
    }
}
static void normal_portable(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    normal_scalar_body(x, n, seed, stream, offset);
}
// The same code with hardware fma (fmaf is correctly rounded either way: the same bits).
CK_AVX2 static void normal_fma(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    normal_scalar_body(x, n, seed, stream, offset);
}
static void normal_scalar(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    if (ck_cpu_has_avx2_fma()) normal_fma(x, n, seed, stream, offset);
    else normal_portable(x, n, seed, stream, offset);
}

#if CK_X86 || CK_NEON
// ---- 16 blocks at once, written once with vector extensions ----
// 64 normals from the 16 Philox blocks blk .. blk+15. Lane b of a 16-lane vector belongs to block
// blk + b, so each Philox word and each Box-Muller quantity is one vector: a zmm register in the
// AVX-512 build (level avx512), two ymm in the AVX2+FMA build (avx2), four q registers on
// aarch64 (neon). Every step is the scalar code's, operation for operation (the same +, *, fma,
// /, sqrt, rint and bit moves on each lane, in the same order), so every build gives the
// scalar bits.
typedef uint32_t u32x16 __attribute__((ext_vector_type(16)));
typedef int32_t i32x16 __attribute__((ext_vector_type(16)));   // also the lane masks of comparisons (-1 or 0)
typedef float f32x16 __attribute__((ext_vector_type(16)));
typedef uint64_t u64x8 __attribute__((ext_vector_type(8)));
typedef uint64_t u64x16 __attribute__((ext_vector_type(16)));
typedef float f32x32 __attribute__((ext_vector_type(32)));
typedef uint64_t u64x32 __attribute__((ext_vector_type(32)));

// The hi and lo halves of the 64-bit products c * m in every lane. Viewed as 8 64-bit lanes
// (little-endian: 32-bit lane 2k is the low half of lane k), the even lanes' products are
// (c & 0xFFFFFFFF) m and the odd lanes' (c >> 32) m, 32x32 -> 64-bit multiplies (vpmuludq on
// x86-64, umull on aarch64); their halves are picked back into lane order by two shuffles.
// Vectors go in and out through pointers: 512-bit values are no function arguments in the AVX2
// build (a different ABI), even always inlined.
CK_BODY void mulhilo16(const u32x16 *c, uint32_t m, u32x16 *hi, u32x16 *lo) {
    u64x8 c64 = (u64x8)*c;
    u32x16 even = (u32x16)((c64 & 0xFFFFFFFFu) * (uint64_t)m), odd = (u32x16)((c64 >> 32) * (uint64_t)m);
    *lo = __builtin_shufflevector(even, odd, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    *hi = __builtin_shufflevector(even, odd, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
}

// The scalar box_muller on 16 pairs at once. Word to float goes through int32 (the values are
// at most 2^24 there, so the same float), the branch on m > sqrt(2) becomes a select, the
// quadrant's swap a select and its negations xors of the sign bit.
CK_BODY void box_muller16(const u32x16 *we, const u32x16 *wo, f32x16 *c_out, f32x16 *s_out) {
    f32x16 u1 = __builtin_convertvector((i32x16)((*we >> 8) + 1), f32x16) * (1.0f / 16777216.0f);
    u32x16 b = (u32x16)u1;
    f32x16 e = __builtin_convertvector((i32x16)(b >> 23) - 127, f32x16);
    f32x16 m = (f32x16)((b & 0x7FFFFFu) | 0x3F800000u);
    i32x16 big = m > BM_SQRT2;
    m = big ? m * 0.5f : m;
    e = big ? e + 1.0f : e;
    f32x16 f = m - 1.0f, d = m + 1.0f;
    f32x16 sv = f / d, z = sv * sv;
    f32x16 q = __builtin_elementwise_fma((f32x16)(1.0f / 9.0f), z, (f32x16)(1.0f / 7.0f));
    q = __builtin_elementwise_fma(q, z, (f32x16)(1.0f / 5.0f));
    q = __builtin_elementwise_fma(q, z, (f32x16)(1.0f / 3.0f));
    f32x16 two_s = sv + sv;
    f32x16 tz = two_s * z;
    f32x16 lnm = __builtin_elementwise_fma(tz, q, two_s);
    f32x16 ln_u1 = __builtin_elementwise_fma(e, (f32x16)BM_LN2, lnm);
    f32x16 v = -2.0f * ln_u1;
    f32x16 r = CK_SQRTF(v);

    f32x16 t = __builtin_convertvector((i32x16)(*wo >> 8), f32x16) * (1.0f / 16777216.0f) * 4.0f;
    f32x16 qn = __builtin_elementwise_roundeven(t);
    f32x16 x = (t - qn) * BM_HALF_PI;
    f32x16 x2 = x * x;
    f32x16 ps = __builtin_elementwise_fma((f32x16)(1.0f / 362880.0f), x2, (f32x16)(-1.0f / 5040.0f));
    ps = __builtin_elementwise_fma(ps, x2, (f32x16)(1.0f / 120.0f));
    ps = __builtin_elementwise_fma(ps, x2, (f32x16)(-1.0f / 6.0f));
    f32x16 x3 = x * x2;
    f32x16 sn = __builtin_elementwise_fma(x3, ps, x);
    f32x16 pc = __builtin_elementwise_fma((f32x16)(-1.0f / 3628800.0f), x2, (f32x16)(1.0f / 40320.0f));
    pc = __builtin_elementwise_fma(pc, x2, (f32x16)(-1.0f / 720.0f));
    pc = __builtin_elementwise_fma(pc, x2, (f32x16)(1.0f / 24.0f));
    pc = __builtin_elementwise_fma(pc, x2, (f32x16)-0.5f);
    f32x16 cs = __builtin_elementwise_fma(x2, pc, (f32x16)1.0f);
    u32x16 quadrant = (u32x16)__builtin_convertvector(qn, i32x16) & 3;
    f32x16 cq = (quadrant & 1) != 0 ? sn : cs, sq = (quadrant & 1) != 0 ? cs : sn;
    // cos negated in quadrants 1 and 2 (bit 1 of quadrant + 1), sin in 2 and 3 (bit 1 of quadrant)
    cq = (f32x16)((u32x16)cq ^ ((quadrant + 1) & 2) << 30);
    sq = (f32x16)((u32x16)sq ^ (quadrant & 2) << 30);
    *c_out = r * cq;
    *s_out = r * sq;
}

// Lanes 0..15 of a then of b, interleaved: a0 b0 a1 b1 .. a15 b15.
#define ZIP16 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, \
              14, 30, 15, 31

// x[0 .. 64*count) from the 16-block groups starting at blk (the low counter word must not wrap
// within a group): one call, so the key schedule is computed once and the registers stay wide.
// The rounds are unrolled: at level avx512 that took 2^22 normals on one thread from 5.0 to
// 4.5 ms on the AMD EPYC (Zen 4) this was written on (the AVX-512 intrinsics it replaced: 4.8).
CK_BODY void normals_body(float *x, int64_t count, uint64_t seed, uint64_t stream, uint64_t blk) {
    uint32_t keys[20];   // keys[2r], keys[2r + 1]: the key words of round r
    for (int r = 0; r < 10; r++) {
        keys[2 * r] = (uint32_t)seed + (uint32_t)r * PHILOX_W0;
        keys[2 * r + 1] = (uint32_t)(seed >> 32) + (uint32_t)r * PHILOX_W1;
    }
    const u32x16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int64_t g = 0; g < count; g++, blk += 16) {
        u32x16 c0 = (uint32_t)blk + lane, c1 = (u32x16)(uint32_t)(blk >> 32);
        u32x16 c2 = (u32x16)(uint32_t)stream, c3 = (u32x16)(uint32_t)(stream >> 32);
#pragma clang loop unroll(full)
        for (int round = 0; round < 10; round++) {
            u32x16 hi0, lo0, hi1, lo1;
            mulhilo16(&c0, PHILOX_M0, &hi0, &lo0);
            mulhilo16(&c2, PHILOX_M1, &hi1, &lo1);
            c0 = hi1 ^ c1 ^ keys[2 * round];
            c1 = lo1;
            c2 = hi0 ^ c3 ^ keys[2 * round + 1];
            c3 = lo0;
        }
        f32x16 n0, n1, n2, n3;
        box_muller16(&c0, &c1, &n0, &n1);
        box_muller16(&c2, &c3, &n2, &n3);
        // Into x[4b + lane]: zip lanes 0 and 1 of the blocks into pairs, lanes 2 and 3 likewise,
        // then zip the two pair vectors as 64-bit elements.
        f32x32 p01 = __builtin_shufflevector(n0, n1, ZIP16), p23 = __builtin_shufflevector(n2, n3, ZIP16);
        u64x16 q01 = (u64x16)p01, q23 = (u64x16)p23;
        u64x32 out = __builtin_shufflevector(q01, q23, ZIP16);
        __builtin_memcpy(x + 64 * g, &out, sizeof out);
    }
}
CK_VEC static void normals_vec(float *x, int64_t count, uint64_t seed, uint64_t stream, uint64_t blk) {
    normals_body(x, count, seed, stream, blk);
}
#if CK_X86
CK_AVX512 static void normals_avx512(float *x, int64_t count, uint64_t seed, uint64_t stream, uint64_t blk) {
    normals_body(x, count, seed, stream, blk);
}
#endif
#endif   // CK_X86 || CK_NEON

// Standard normals at positions offset .. offset+n-1: scalar up to a 64-aligned position, then
// 64 at a time with the 16-block code (AVX-512 build at level avx512, CK_VEC build at avx2 and
// neon; same bits), the rest scalar. At level scalar, or with the test switch off, all scalar.
static void normal_fill(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    int64_t i = 0;
#if CK_X86 || CK_NEON
    if (ck_cpu_simd_enabled()) {
        void (*normals)(float *, int64_t, uint64_t, uint64_t, uint64_t) = normals_vec;
#if CK_X86
        if (ck_simd_level() == CK_SIMD_AVX512) normals = normals_avx512;
#endif
        int64_t head = (int64_t)((64 - (offset & 63)) & 63);
        if (head > n) head = n;
        normal_scalar(x, head, seed, stream, offset);
        i = head;
        while (i + 64 <= n) {
            // groups up to the next wrap of the low counter word, which the scalar code takes
            uint64_t blk = (offset + (uint64_t)i) >> 2;
            if ((uint32_t)blk > UINT32_MAX - 15) {
                normal_scalar(x + i, 64, seed, stream, offset + (uint64_t)i);
                i += 64;
                continue;
            }
            int64_t groups = ck_min64((n - i) / 64, (int64_t)((UINT32_MAX - 15 - (uint32_t)blk) / 16) + 1);
            normals(x + i, groups, seed, stream, blk);
            i += 64 * groups;
        }
    }
#endif
    normal_scalar(x + i, n - i, seed, stream, offset + (uint64_t)i);
}

// Standard normals at positions offset.. offset+n-1, on the calling thread (for fusing into
// other kernels; ck_internal.h).
void ck_random_normal_serial(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    normal_fill(x, n, seed, stream, offset);
}

typedef struct { float *x; int64_t n; uint64_t seed, stream, offset; float a, b; int normal; } rnd_job;

static void rnd_task(void *p, int64_t t, int64_t nt) {
    (void)nt;
    const rnd_job *j = p;
    int64_t s = t * CK_BLOCK, e = ck_min64(s + CK_BLOCK, j->n);
    if (j->normal) {
        normal_fill(j->x + s, e - s, j->seed, j->stream, j->offset + (uint64_t)s);
        if (j->a != 0.0f || j->b != 1.0f)
            for (int64_t i = s; i < e; i++) j->x[i] = j->a + j->b * j->x[i];
        return;
    }
    uint32_t w[4];
    uint64_t cached = UINT64_MAX;
    for (int64_t i = s; i < e; i++) {
        uint64_t pos = j->offset + (uint64_t)i, blk = pos >> 2;
        if (blk != cached) { block_at(w, j->seed, j->stream, blk); cached = blk; }
        j->x[i] = j->a + (j->b - j->a) * u24(w[(int)(pos & 3)]);
    }
}

void ck_random_uniform(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset,
                       float lo, float hi) {
    rnd_job j = {x, n, seed, stream, offset, lo, hi, 0};
    ck_parallel_for(rnd_task, &j, ck_ceil_div(n, CK_BLOCK));
}

void ck_random_normal(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset,
                      float mean, float std) {
    rnd_job j = {x, n, seed, stream, offset, mean, std, 1};
    ck_parallel_for(rnd_task, &j, ck_ceil_div(n, CK_BLOCK));
}

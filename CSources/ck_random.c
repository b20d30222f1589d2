// Philox-4x32-10 and the uniform / normal fills built on it.
#include "ck_random.h"
#include "ck_internal.h"
#if CK_X86
#include <immintrin.h>
#endif
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
// so the scalar code below and the AVX-512 code after it give the same bits:
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

#if CK_X86
// 32-bit lanes: hi and lo halves of c * m (m the same in every lane): the 64-bit products of
// the even and the odd lanes, their halves picked back into lane order by two permutes.
CK_AVX512 static inline void mulhilo16(__m512i c, __m512i m, __m512i *hi, __m512i *lo) {
    const __m512i pick_lo = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    const __m512i pick_hi = _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    __m512i even = _mm512_mul_epu32(c, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);
    *lo = _mm512_permutex2var_epi32(even, pick_lo, odd);
    *hi = _mm512_permutex2var_epi32(even, pick_hi, odd);
}

// The scalar box_muller on 16 pairs at once, operation for operation.
CK_AVX512 static inline void box_muller16(__m512i we, __m512i wo, __m512 *c_out, __m512 *s_out) {
    const __m512 two24 = _mm512_set1_ps(1.0f / 16777216.0f), one = _mm512_set1_ps(1.0f);
    __m512 u1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_srli_epi32(we, 8), _mm512_set1_epi32(1))), two24);
    __m512i b = _mm512_castps_si512(u1);
    __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(b, 23), _mm512_set1_epi32(127)));
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi32(0x7FFFFF)), _mm512_set1_epi32(0x3F800000)));
    __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(BM_SQRT2), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, big, e, one);
    __m512 f = _mm512_sub_ps(m, one), d = _mm512_add_ps(m, one);
    __m512 sv = _mm512_div_ps(f, d), z = _mm512_mul_ps(sv, sv);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 9.0f), z, _mm512_set1_ps(1.0f / 7.0f));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(1.0f / 5.0f));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(1.0f / 3.0f));
    __m512 two_s = _mm512_add_ps(sv, sv);
    __m512 lnm = _mm512_fmadd_ps(_mm512_mul_ps(two_s, z), q, two_s);
    __m512 ln_u1 = _mm512_fmadd_ps(e, _mm512_set1_ps(BM_LN2), lnm);
    __m512 r = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), ln_u1));

    __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(wo, 8)), two24), _mm512_set1_ps(4.0f));
    __m512 qn = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 x = _mm512_mul_ps(_mm512_sub_ps(t, qn), _mm512_set1_ps(BM_HALF_PI));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 ps = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 362880.0f), x2, _mm512_set1_ps(-1.0f / 5040.0f));
    ps = _mm512_fmadd_ps(ps, x2, _mm512_set1_ps(1.0f / 120.0f));
    ps = _mm512_fmadd_ps(ps, x2, _mm512_set1_ps(-1.0f / 6.0f));
    __m512 sn = _mm512_fmadd_ps(_mm512_mul_ps(x, x2), ps, x);
    __m512 pc = _mm512_fmadd_ps(_mm512_set1_ps(-1.0f / 3628800.0f), x2, _mm512_set1_ps(1.0f / 40320.0f));
    pc = _mm512_fmadd_ps(pc, x2, _mm512_set1_ps(-1.0f / 720.0f));
    pc = _mm512_fmadd_ps(pc, x2, _mm512_set1_ps(1.0f / 24.0f));
    pc = _mm512_fmadd_ps(pc, x2, _mm512_set1_ps(-0.5f));
    __m512 cs = _mm512_fmadd_ps(x2, pc, one);
    __m512i quadrant = _mm512_and_si512(_mm512_cvtps_epi32(qn), _mm512_set1_epi32(3));
    __mmask16 odd = _mm512_test_epi32_mask(quadrant, _mm512_set1_epi32(1));
    __mmask16 negc = _mm512_cmpeq_epi32_mask(quadrant, _mm512_set1_epi32(1)) | _mm512_cmpeq_epi32_mask(quadrant, _mm512_set1_epi32(2));
    __mmask16 negs = _mm512_cmpge_epi32_mask(quadrant, _mm512_set1_epi32(2));
    __m512 cq = _mm512_mask_blend_ps(odd, cs, sn), sq = _mm512_mask_blend_ps(odd, sn, cs);
    const __m512 sign = _mm512_set1_ps(-0.0f);
    cq = _mm512_mask_xor_ps(cq, negc, cq, sign);
    sq = _mm512_mask_xor_ps(sq, negs, sq, sign);
    *c_out = _mm512_mul_ps(r, cq);
    *s_out = _mm512_mul_ps(r, sq);
}

// 64 normals: the 16 Philox blocks blk .. blk+15 (the low counter word must not wrap); keys[2r],
// keys[2r + 1]: the key words of round r.
CK_AVX512 static inline __attribute__((always_inline)) void normal64_avx512(float *x, const uint32_t *keys, uint64_t stream,
                                                                            uint64_t blk) {
    __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)blk),
                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i c1 = _mm512_set1_epi32((int)(uint32_t)(blk >> 32));
    __m512i c2 = _mm512_set1_epi32((int)(uint32_t)stream), c3 = _mm512_set1_epi32((int)(uint32_t)(stream >> 32));
    const __m512i m0 = _mm512_set1_epi32((int)PHILOX_M0), m1 = _mm512_set1_epi32((int)PHILOX_M1);
    for (int round = 0; round < 10; round++) {
        __m512i hi0, lo0, hi1, lo1;
        mulhilo16(c0, m0, &hi0, &lo0);
        mulhilo16(c2, m1, &hi1, &lo1);
        c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)keys[2 * round]));
        c1 = lo1;
        c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)keys[2 * round + 1]));
        c3 = lo0;
    }
    __m512 n0, n1, n2, n3;
    box_muller16(c0, c1, &n0, &n1);
    box_muller16(c2, c3, &n2, &n3);
    // Interleave to x[4b + lane]: 4x4 transposes within 128-bit chunks, then across chunks.
    __m512 t0 = _mm512_unpacklo_ps(n0, n1), t1 = _mm512_unpackhi_ps(n0, n1);
    __m512 t2 = _mm512_unpacklo_ps(n2, n3), t3 = _mm512_unpackhi_ps(n2, n3);
    __m512 u0 = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
    __m512 u1 = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
    __m512 u2 = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
    __m512 u3 = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
    __m512 v0 = _mm512_shuffle_f32x4(u0, u1, 0x44), v1 = _mm512_shuffle_f32x4(u2, u3, 0x44);
    __m512 v2 = _mm512_shuffle_f32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_f32x4(u2, u3, 0xEE);
    _mm512_storeu_ps(x, _mm512_shuffle_f32x4(v0, v1, 0x88));
    _mm512_storeu_ps(x + 16, _mm512_shuffle_f32x4(v0, v1, 0xDD));
    _mm512_storeu_ps(x + 32, _mm512_shuffle_f32x4(v2, v3, 0x88));
    _mm512_storeu_ps(x + 48, _mm512_shuffle_f32x4(v2, v3, 0xDD));
}

// x[0 .. 64*count) from the 16-block groups starting at blk (low counter word not wrapping
// within a group): one call, so the key schedule is computed once and the registers stay wide.
CK_AVX512 static void normals_avx512(float *x, int64_t count, uint64_t seed, uint64_t stream, uint64_t blk) {
    uint32_t keys[20];
    for (int r = 0; r < 10; r++) {
        keys[2 * r] = (uint32_t)seed + (uint32_t)r * PHILOX_W0;
        keys[2 * r + 1] = (uint32_t)(seed >> 32) + (uint32_t)r * PHILOX_W1;
    }
    for (int64_t g = 0; g < count; g++) normal64_avx512(x + 64 * g, keys, stream, blk + 16 * (uint64_t)g);
}
#endif   // CK_X86

// Standard normals at positions offset .. offset+n-1: scalar up to a 64-aligned position, then
// 64 at a time with AVX-512 (same bits), the rest scalar. Off x86-64, all scalar.
static void normal_fill(float *x, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    int64_t i = 0;
#if CK_X86
    if (ck_cpu_simd_enabled() && ck_cpu_has_avx512()) {
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
            normals_avx512(x + i, groups, seed, stream, blk);
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

// Vector helpers for the kernels' fast paths (internal), written once with Clang vector
// extensions: an 8-float vector is one ymm register in CK_VEC code on x86-64 (AVX2+FMA) and two
// q registers on aarch64 (NEON). Every operation here is an IEEE operation (or a bit move), so
// both targets give the same bits. Empty where there is no vector path (CK_X86 and CK_NEON 0).
#pragma once
#include "ck_internal.h"

// A vector function when the kernels take their vector paths (ck_cpu_simd_enabled()), else its
// scalar twin; only the twin exists (and is named) where there is no vector path.
#if CK_X86 || CK_NEON
#define CK_PICK(vec, scalar) (ck_cpu_simd_enabled() ? (vec) : (scalar))
#else
#define CK_PICK(vec, scalar) (scalar)
#endif

#if CK_X86 || CK_NEON

typedef float ck_v8f __attribute__((ext_vector_type(8)));
typedef int32_t ck_v8i __attribute__((ext_vector_type(8)));   // also the lane masks of comparisons (-1 or 0)
typedef float ck_v4f __attribute__((ext_vector_type(4)));
typedef float ck_v2f __attribute__((ext_vector_type(2)));

// Unaligned loads and stores of 8 floats.
CK_VEC static inline ck_v8f ck_load8(const float *p) {
    ck_v8f v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
CK_VEC static inline void ck_store8(float *p, ck_v8f v) { __builtin_memcpy(p, &v, sizeof v); }

// The first min(r, 8) floats at p, the other lanes 0; nothing past them is read (tails).
CK_VEC static inline ck_v8f ck_load8_upto(const float *p, int64_t r) {
    if (r >= 8) return ck_load8(p);
    ck_v8f v = 0.0f;
    for (int64_t l = 0; l < r; l++) v[l] = p[l];
    return v;
}
// Stores the first min(r, 8) lanes of v; nothing past them is written.
CK_VEC static inline void ck_store8_upto(float *p, ck_v8f v, int64_t r) {
    if (r >= 8) ck_store8(p, v);
    else
        for (int64_t l = 0; l < r; l++) p[l] = v[l];
}

// a > b ? a : b and a < b ? a : b per lane: b when either is NaN, and b for +0 against -0 (the
// x86 maxps/minps rule, and that of the kernels' scalar code `x > m ? x : m`).
CK_VEC static inline ck_v8f ck_max8(ck_v8f a, ck_v8f b) { return a > b ? a : b; }
CK_VEC static inline ck_v8f ck_min8(ck_v8f a, ck_v8f b) { return a < b ? a : b; }

// e^x for 8 floats: x = n·ln2 + r with |r| <= ln2/2, e^r by its degree-6 Taylor polynomial
// (truncation error < 1.3e-7 relative), times 2^n built in the exponent bits. Inputs are
// clamped to [-87.3, 88.37] so 2^n stays a normal float (below: ~1e-38 instead of a denormal
// or 0; above: ~2.4e38 instead of +inf; a NaN: the lower bound, except that aarch64 takes a
// signalling NaN to the upper one — the kernels' inputs here come out of arithmetic, never
// signalling).
CK_VEC static inline ck_v8f ck_exp8(ck_v8f x) {
    x = ck_min8(ck_max8(x, -87.3f), 88.37f);
    ck_v8f n = __builtin_elementwise_roundeven(x * 1.44269504088896341f);
    ck_v8f r = __builtin_elementwise_fma(-n, (ck_v8f)0.693359375f, x);       // ln2 high part
    r = __builtin_elementwise_fma(-n, (ck_v8f)-2.12194440e-4f, r);            // ln2 low part
    ck_v8f p = 1.0f / 720.0f;
    p = __builtin_elementwise_fma(p, r, (ck_v8f)(1.0f / 120.0f));
    p = __builtin_elementwise_fma(p, r, (ck_v8f)(1.0f / 24.0f));
    p = __builtin_elementwise_fma(p, r, (ck_v8f)(1.0f / 6.0f));
    p = __builtin_elementwise_fma(p, r, (ck_v8f)0.5f);
    p = __builtin_elementwise_fma(p, r, (ck_v8f)1.0f);
    p = __builtin_elementwise_fma(p, r, (ck_v8f)1.0f);
    // n is an integer in [-126, 127]: 2^n is the float with biased exponent n + 127
    ck_v8i e = (__builtin_convertvector(n, ck_v8i) + 127) << 23;
    return p * (ck_v8f)e;
}

// 1 / (1 + e^{-x}) for 8 floats.
CK_VEC static inline ck_v8f ck_sigmoid8(ck_v8f x) { return 1.0f / (1.0f + ck_exp8(0.0f - x)); }

// Horizontal sum of 8 floats in a fixed order: ((v0+v4) + (v2+v6)) + ((v1+v5) + (v3+v7)).
CK_VEC static inline float ck_hsum8(ck_v8f v) {
    ck_v4f s = v.lo + v.hi;
    ck_v2f t = s.lo + s.hi;
    return t.x + t.y;
}

// Horizontal max of 8 floats, paired as in ck_hsum8 (each step ck_max8's rule).
CK_VEC static inline float ck_hmax8(ck_v8f v) {
    ck_v4f s = v.lo > v.hi ? v.lo : v.hi;
    ck_v2f t = s.lo > s.hi ? s.lo : s.hi;
    return t.x > t.y ? t.x : t.y;
}
#endif   // CK_X86 || CK_NEON

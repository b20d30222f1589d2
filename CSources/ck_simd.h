// AVX2+FMA vector helpers for the kernels' fast paths (internal; x86-64 only, empty elsewhere).
#pragma once
#include "ck_internal.h"
#if CK_X86
#include <immintrin.h>

// e^x for 8 floats: x = n·ln2 + r with |r| <= ln2/2, e^r by its degree-6 Taylor polynomial
// (truncation error < 1.3e-7 relative), times 2^n built in the exponent bits. Inputs are
// clamped to [-87.3, 88.37] so 2^n stays a normal float (below: ~1e-38 instead of a denormal
// or 0; above: ~2.4e38 instead of +inf).
CK_AVX2 static inline __m256 ck_exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.37f), lo = _mm256_set1_ps(-87.3f);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);       // ln2 high part
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);            // ln2 low part
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// 1 / (1 + e^{-x}) for 8 floats.
CK_AVX2 static inline __m256 ck_sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = ck_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

// Horizontal sum of 8 floats in a fixed order.
CK_AVX2 static inline float ck_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Horizontal max of 8 floats.
CK_AVX2 static inline float ck_hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif   // CK_X86

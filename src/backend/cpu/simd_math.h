/*
 * Vector math for CPU kernels: exp, sigmoid, SiLU, tanh, GELU (erf), and the fused activations of
 * epilogue.h, in three flavours: scalar (libm, the accuracy reference), AVX2+FMA (8 lanes) and
 * AVX-512 (16 lanes).
 *
 * The library is compiled for baseline x86-64, so every SIMD function carries a target attribute and
 * must only be called after runtime dispatch (kiln_cpu_isa()) picked that level. Callers that want
 * these inlined must carry the same (or a wider) target attribute themselves:
 *   KILN_TARGET_AVX512 static void my_kernel(...) { ... kiln_silu_avx512(v) ... }
 *
 * Accuracy (float, versus libm in double): exp within 2 ulp over its whole range, with overflow to
 * +inf, underflow to 0 (AVX-512: through denormals; AVX2: through denormals too, via a split 2^n), and
 * NaN propagated. sigmoid/silu/tanh within a few ulp (silu: where sigmoid(x) itself is denormal, x < -87,
 * only denormal precision); tanh switches to an odd polynomial for |x| < 0.625
 * so small inputs keep their relative accuracy (1 - 2/(e^2x + 1) would cancel). GELU uses an erfc
 * approximation with < 1.2e-7 fractional error (Numerical Recipes' Chebyshev fit): a few ulp for
 * |x| < 5, and still ~1e-5 relative in the far negative tail (float rounding of its exp argument).
 */
#ifndef KILN_BACKEND_CPU_SIMD_MATH_H
#define KILN_BACKEND_CPU_SIMD_MATH_H

#include <immintrin.h>
#include <math.h>

#include "backend/cpu/epilogue.h"

#define KILN_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define KILN_TARGET_AVX2 __attribute__((target("avx2,fma")))

/* Constants shared by all flavours. exp: x = n*ln2 + r, |r| <= ln2/2, ln2 split in two (Cody-Waite)
 * so n*ln2 is exact in the first part; e^r by Cephes' expf minimax polynomial. */
#define KILN_EXP_LOG2E 1.44269504088896341f
#define KILN_EXP_C1 0.693359375f
#define KILN_EXP_C2 (-2.12194440e-4f)
#define KILN_EXP_P0 1.9875691500e-4f
#define KILN_EXP_P1 1.3981999507e-3f
#define KILN_EXP_P2 8.3334519073e-3f
#define KILN_EXP_P3 4.1665795894e-2f
#define KILN_EXP_P4 1.6666665459e-1f
#define KILN_EXP_P5 5.0000001201e-1f
/* Beyond these, e^x is inf / 0 in float; clamping keeps n small enough for the 2^n construction. */
#define KILN_EXP_HI 89.0f
#define KILN_EXP_LO (-104.0f)
/* tanh for |x| < 0.625: x + x^3 * P(x^2) (Cephes tanhf). */
#define KILN_TANH_SMALL 0.625f
#define KILN_TANH_T0 (-5.70498872745e-3f)
#define KILN_TANH_T1 2.06390887954e-2f
#define KILN_TANH_T2 (-5.37397155531e-2f)
#define KILN_TANH_T3 1.33314422036e-1f
#define KILN_TANH_T4 (-3.33332819422e-1f)

/* ------------------------------------------------------------------------------------------------ */
/* Scalar: libm, so the fallback path is also the accuracy reference.                               */

static inline float kiln_exp_scalar(float x) { return expf(x); }
static inline float kiln_sigmoid_scalar(float x) {
  /* Written so neither tail overflows into inf/inf. */
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}
static inline float kiln_silu_scalar(float x) {
  if (x < -104.0f) return -0.0f; /* -inf * 0 would be NaN; the true value is -0 to float precision */
  return x * kiln_sigmoid_scalar(x);
}
static inline float kiln_tanh_scalar(float x) { return tanhf(x); }
static inline float kiln_gelu_scalar(float x) {
  if (x < -20.0f) return -0.0f; /* the true value underflows; avoids -inf * 0 = NaN */
  return 0.5f * x * erfcf(-x * 0.70710678118654752f);
}

static inline float kiln_act_apply_scalar(float x, kiln_act act, float alpha, float beta) {
  switch (act) {
  case KILN_ACT_NONE: return x;
  case KILN_ACT_RELU: return x > 0 ? x : 0.0f;
  case KILN_ACT_LEAKY_RELU: return x < 0 ? alpha * x : x;
  case KILN_ACT_CLIP: return x < alpha ? alpha : (x > beta ? beta : x);
  case KILN_ACT_SIGMOID: return kiln_sigmoid_scalar(x);
  case KILN_ACT_SILU: return kiln_silu_scalar(x);
  case KILN_ACT_HARDSWISH: {
    float t = x * (1.0f / 6.0f) + 0.5f;
    t = t < 0 ? 0.0f : (t > 1 ? 1.0f : t);
    return x * t;
  }
  case KILN_ACT_HARDSIGMOID: {
    float t = alpha * x + beta;
    return t < 0 ? 0.0f : (t > 1 ? 1.0f : t);
  }
  case KILN_ACT_TANH: return kiln_tanh_scalar(x);
  case KILN_ACT_GELU: return kiln_gelu_scalar(x);
  }
  return x;
}

/* ------------------------------------------------------------------------------------------------ */
/* AVX-512                                                                                           */

KILN_TARGET_AVX512 static inline __m512 kiln_exp_avx512(__m512 x) {
  /* min/max return their second operand when one is NaN: keep x second so NaN flows through. */
  x = _mm512_min_ps(_mm512_set1_ps(KILN_EXP_HI), x);
  x = _mm512_max_ps(_mm512_set1_ps(KILN_EXP_LO), x);
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(KILN_EXP_LOG2E)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(KILN_EXP_C1), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(KILN_EXP_C2), r);
  __m512 p = _mm512_set1_ps(KILN_EXP_P0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KILN_EXP_P1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KILN_EXP_P2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KILN_EXP_P3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KILN_EXP_P4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KILN_EXP_P5));
  __m512 r2 = _mm512_mul_ps(r, r);
  p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  /* scalef computes p * 2^n with correct overflow (inf), gradual underflow and NaN handling. */
  return _mm512_scalef_ps(p, n);
}

KILN_TARGET_AVX512 static inline __m512 kiln_sigmoid_avx512(__m512 x) {
  /* e = e^-|x| never overflows; sigmoid = (x >= 0 ? 1 : e) / (1 + e) is then accurate in both tails
   * (1/(1 + e^-x) alone loses the relative accuracy of tiny results for x << 0 once e^-x overflows). */
  __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
  __m512 e = kiln_exp_avx512(_mm512_or_ps(x, sign)); /* -|x| */
  __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  __m512 num = _mm512_mask_blend_ps(pos, e, _mm512_set1_ps(1.0f));
  /* 1/(1+e) with e in [0,1]: rcp14 plus one Newton step (~1 ulp) is several times cheaper than a
   * division, which dominates conv epilogues of small-K layers. The denominator is never 0 or inf. */
  __m512 den = _mm512_add_ps(_mm512_set1_ps(1.0f), e);
  __m512 rc = _mm512_rcp14_ps(den);
  rc = _mm512_fmadd_ps(rc, _mm512_fnmadd_ps(den, rc, _mm512_set1_ps(1.0f)), rc);
  return _mm512_mul_ps(num, rc);
}

KILN_TARGET_AVX512 static inline __m512 kiln_silu_avx512(__m512 x) {
  /* x * sigmoid(x). Clamp below at -104 (where the result is -0 anyway) so x = -inf does not become
   * -inf * 0 = NaN; the NaN-preserving operand order keeps NaN inputs NaN. */
  x = _mm512_max_ps(_mm512_set1_ps(KILN_EXP_LO), x);
  return _mm512_mul_ps(x, kiln_sigmoid_avx512(x));
}

KILN_TARGET_AVX512 static inline __m512 kiln_tanh_avx512(__m512 x) {
  __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
  __m512 ax = _mm512_andnot_ps(sign, x);
  /* Large |x|: 1 - 2/(e^{2|x|} + 1), inf -> 1 exactly. */
  __m512 e = kiln_exp_avx512(_mm512_add_ps(ax, ax));
  __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                             _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
  big = _mm512_or_ps(big, _mm512_and_ps(sign, x)); /* copysign */
  /* Small |x|: odd polynomial. */
  __m512 z = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(KILN_TANH_T0);
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(KILN_TANH_T1));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(KILN_TANH_T2));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(KILN_TANH_T3));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(KILN_TANH_T4));
  __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
  __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(KILN_TANH_SMALL), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(is_small, big, small);
}

/* erfc(z) for z >= 0 (Numerical Recipes erfcc, fractional error < 1.2e-7). */
KILN_TARGET_AVX512 static inline __m512 kiln_erfc_pos_avx512(__m512 z) {
  __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(0.17087277f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
  p = _mm512_fnmadd_ps(z, z, p); /* -z^2 + poly */
  return _mm512_mul_ps(t, kiln_exp_avx512(p));
}

KILN_TARGET_AVX512 static inline __m512 kiln_gelu_avx512(__m512 x) {
  /* 0.5 x erfc(-x/sqrt2): for x < 0 that is erfc(|z|) (relatively accurate in the tail), for x >= 0
   * 2 - erfc(|z|). x is clamped at -20 (gelu underflows to -0 there) so -inf does not give -inf*0. */
  x = _mm512_max_ps(_mm512_set1_ps(-20.0f), x);
  __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
  __m512 az = _mm512_mul_ps(_mm512_andnot_ps(sign, x), _mm512_set1_ps(0.70710678118654752f));
  az = _mm512_min_ps(_mm512_set1_ps(10.0f), az); /* erfc(10) = 2e-45: keeps exp's argument finite */
  __m512 c = kiln_erfc_pos_avx512(az);
  __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  c = _mm512_mask_sub_ps(c, pos, _mm512_set1_ps(2.0f), c);
  return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), c);
}

KILN_TARGET_AVX512 static inline __m512 kiln_act_apply_avx512(__m512 x, kiln_act act, float alpha, float beta) {
  switch (act) {
  case KILN_ACT_NONE: return x;
  case KILN_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
  case KILN_ACT_LEAKY_RELU: {
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(x, neg, x, _mm512_set1_ps(alpha));
  }
  case KILN_ACT_CLIP: return _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(alpha)), _mm512_set1_ps(beta));
  case KILN_ACT_SIGMOID: return kiln_sigmoid_avx512(x);
  case KILN_ACT_SILU: return kiln_silu_avx512(x);
  case KILN_ACT_HARDSWISH: {
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), _mm512_set1_ps(1.0f));
    return _mm512_mul_ps(x, t);
  }
  case KILN_ACT_HARDSIGMOID: {
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(alpha), _mm512_set1_ps(beta));
    return _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), _mm512_set1_ps(1.0f));
  }
  case KILN_ACT_TANH: return kiln_tanh_avx512(x);
  case KILN_ACT_GELU: return kiln_gelu_avx512(x);
  }
  return x;
}

/* ------------------------------------------------------------------------------------------------ */
/* AVX2 + FMA                                                                                        */

/* 2^n for integer-valued n in [-150, 130], as two factors so neither leaves the normal range: the
 * product then over/underflows (gradually) exactly like the true value. */
KILN_TARGET_AVX2 static inline __m256 kiln_scale2n_avx2(__m256 p, __m256 n) {
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  __m256i n2 = _mm256_sub_epi32(ni, n1);
  __m256i bias = _mm256_set1_epi32(127);
  __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}

KILN_TARGET_AVX2 static inline __m256 kiln_exp_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(KILN_EXP_HI), x); /* NaN-preserving operand order */
  x = _mm256_max_ps(_mm256_set1_ps(KILN_EXP_LO), x);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(KILN_EXP_LOG2E)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(KILN_EXP_C1), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(KILN_EXP_C2), r);
  __m256 p = _mm256_set1_ps(KILN_EXP_P0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KILN_EXP_P1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KILN_EXP_P2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KILN_EXP_P3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KILN_EXP_P4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KILN_EXP_P5));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  /* NaN input: p is NaN, and NaN times whatever the garbage 2^n is stays NaN. */
  return kiln_scale2n_avx2(p, n);
}

KILN_TARGET_AVX2 static inline __m256 kiln_sigmoid_avx2(__m256 x) {
  __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
  __m256 e = kiln_exp_avx2(_mm256_or_ps(x, sign)); /* see kiln_sigmoid_avx512 */
  __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  __m256 num = _mm256_blendv_ps(e, _mm256_set1_ps(1.0f), pos);
  return _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

KILN_TARGET_AVX2 static inline __m256 kiln_silu_avx2(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(KILN_EXP_LO), x); /* see kiln_silu_avx512 */
  return _mm256_mul_ps(x, kiln_sigmoid_avx2(x));
}

KILN_TARGET_AVX2 static inline __m256 kiln_tanh_avx2(__m256 x) {
  __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
  __m256 ax = _mm256_andnot_ps(sign, x);
  __m256 e = kiln_exp_avx2(_mm256_add_ps(ax, ax));
  __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                             _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
  __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(KILN_TANH_T0);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(KILN_TANH_T1));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(KILN_TANH_T2));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(KILN_TANH_T3));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(KILN_TANH_T4));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(KILN_TANH_SMALL), _CMP_LT_OQ);
  return _mm256_blendv_ps(big, small, is_small);
}

KILN_TARGET_AVX2 static inline __m256 kiln_erfc_pos_avx2(__m256 z) {
  __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(0.17087277f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
  p = _mm256_fnmadd_ps(z, z, p);
  return _mm256_mul_ps(t, kiln_exp_avx2(p));
}

KILN_TARGET_AVX2 static inline __m256 kiln_gelu_avx2(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-20.0f), x); /* see kiln_gelu_avx512 */
  __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
  __m256 az = _mm256_mul_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(0.70710678118654752f));
  az = _mm256_min_ps(_mm256_set1_ps(10.0f), az);
  __m256 c = kiln_erfc_pos_avx2(az);
  __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  c = _mm256_blendv_ps(c, _mm256_sub_ps(_mm256_set1_ps(2.0f), c), pos);
  return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), c);
}

KILN_TARGET_AVX2 static inline __m256 kiln_act_apply_avx2(__m256 x, kiln_act act, float alpha, float beta) {
  switch (act) {
  case KILN_ACT_NONE: return x;
  case KILN_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
  case KILN_ACT_LEAKY_RELU: {
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(alpha)), neg);
  }
  case KILN_ACT_CLIP: return _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(alpha)), _mm256_set1_ps(beta));
  case KILN_ACT_SIGMOID: return kiln_sigmoid_avx2(x);
  case KILN_ACT_SILU: return kiln_silu_avx2(x);
  case KILN_ACT_HARDSWISH: {
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(x, t);
  }
  case KILN_ACT_HARDSIGMOID: {
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(alpha), _mm256_set1_ps(beta));
    return _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), _mm256_set1_ps(1.0f));
  }
  case KILN_ACT_TANH: return kiln_tanh_avx2(x);
  case KILN_ACT_GELU: return kiln_gelu_avx2(x);
  }
  return x;
}

#endif

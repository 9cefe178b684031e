/* Elementwise fp32 kernels (see fast_eltwise.h). The row kernels come from fast_eltwise_isa.h,
 * instantiated for scalar, AVX2 and AVX-512; this file plans the broadcast and splits the work. */
#include "backend/cpu/fast_eltwise.h"

#include "backend/cpu/simd_math.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define EW_CODE_BASE 64

/* ---- scalar instance ---------------------------------------------------------------------------- */
static inline float s_copysign(float m, float s) { return copysignf(m, s); }
static inline float s_erfc_pos(float z) { return erfcf(z); }
#define SUF scalar
#define ATTR
#define VT float
#define VW 1
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) (x)
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VDIV(a, b) ((a) / (b))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VMIN(a, b) ((a) < (b) ? (a) : (b))
#define VSQRT(a) sqrtf(a)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VABS(a) fabsf(a)
#define VNEG(a) (-(a))
#define VEXP(a) expf(a)
#define VERFC_POS(a) s_erfc_pos(a)
#define VCOPYSIGN(m, s) s_copysign(m, s)
#define VSEL_LT(a, b, t, f) ((a) < (b) ? (t) : (f))
#define VACT(v, act, al, be) kiln_act_apply_scalar(v, act, al, be)
#include "backend/cpu/fast_eltwise_isa.h"
#undef SUF
#undef ATTR
#undef VT
#undef VW
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VMAX
#undef VMIN
#undef VSQRT
#undef VFMA
#undef VABS
#undef VNEG
#undef VEXP
#undef VERFC_POS
#undef VCOPYSIGN
#undef VSEL_LT
#undef VACT

/* ---- AVX2 instance ------------------------------------------------------------------------------- */
#define SIGN8 _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u))
#define SUF avx2
#define ATTR KILN_FAST_AVX2
#define VT __m256
#define VW 8
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSET1(x) _mm256_set1_ps(x)
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VDIV _mm256_div_ps
#define VMAX _mm256_max_ps
#define VMIN _mm256_min_ps
#define VSQRT _mm256_sqrt_ps
#define VFMA _mm256_fmadd_ps
#define VABS(a) _mm256_andnot_ps(SIGN8, a)
#define VNEG(a) _mm256_xor_ps(SIGN8, a)
#define VEXP kiln_exp_avx2
#define VERFC_POS kiln_erfc_pos_avx2
#define VCOPYSIGN(m, s) _mm256_or_ps(_mm256_andnot_ps(SIGN8, m), _mm256_and_ps(SIGN8, s))
#define VSEL_LT(a, b, t, f) _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_LT_OQ))
#define VACT kiln_act_apply_avx2
#include "backend/cpu/fast_eltwise_isa.h"
#undef SUF
#undef ATTR
#undef VT
#undef VW
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VMAX
#undef VMIN
#undef VSQRT
#undef VFMA
#undef VABS
#undef VNEG
#undef VEXP
#undef VERFC_POS
#undef VCOPYSIGN
#undef VSEL_LT
#undef VACT

/* ---- AVX-512 instance ---------------------------------------------------------------------------- */
#define SIGN16 _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u))
#define SUF avx512
#define ATTR KILN_FAST_AVX512
#define VT __m512
#define VW 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
#define VMAX _mm512_max_ps
#define VMIN _mm512_min_ps
#define VSQRT _mm512_sqrt_ps
#define VFMA _mm512_fmadd_ps
#define VABS(a) _mm512_andnot_ps(SIGN16, a)
#define VNEG(a) _mm512_xor_ps(SIGN16, a)
#define VEXP kiln_exp_avx512
#define VERFC_POS kiln_erfc_pos_avx512
#define VCOPYSIGN(m, s) _mm512_or_ps(_mm512_andnot_ps(SIGN16, m), _mm512_and_ps(SIGN16, s))
#define VSEL_LT(a, b, t, f) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), f, t)
#define VACT kiln_act_apply_avx512
#include "backend/cpu/fast_eltwise_isa.h"

/* ---- dispatch ------------------------------------------------------------------------------------- */

static void bin_row(kiln_isa isa, kiln_fast_binop op, const float *a, int64_t ai, const float *b, int64_t bi, float *y,
                    int64_t n) {
  if (isa == KILN_ISA_AVX512) bin_row_avx512(op, a, ai, b, bi, y, n);
  else if (isa == KILN_ISA_AVX2) bin_row_avx2(op, a, ai, b, bi, y, n);
  else bin_row_scalar(op, a, ai, b, bi, y, n);
}

static void un_row(kiln_isa isa, int code, float alpha, float beta, const float *x, float *y, int64_t n) {
  if (isa == KILN_ISA_AVX512) un_row_avx512(code, alpha, beta, x, y, n);
  else if (isa == KILN_ISA_AVX2) un_row_avx2(code, alpha, beta, x, y, n);
  else un_row_scalar(code, alpha, beta, x, y, n);
}

/* ---- binary: plan ----------------------------------------------------------------------------------- */

/* Element strides of an operand of rank r aligned to the output's `rank` dims: 0 on broadcast dims. */
static kiln_status operand_strides(const char *name, int32_t rank, const int64_t *dims, int32_t r, const int64_t *od,
                                   int64_t outer, int64_t *s) {
  if (r < 0 || r > rank) return kiln_error(KILN_ERR_SHAPE, "operand %s has rank %d > output rank %d", name, r, rank);
  int64_t st = 1;
  for (int32_t i = rank - 1; i >= 0; i--) {
    int32_t j = i - (rank - r); /* operand dim */
    if (j < 0) {
      s[i] = 0;
      continue;
    }
    if (od[j] != dims[i] && od[j] != 1)
      return kiln_error(KILN_ERR_SHAPE, "operand %s dim %d (%lld) does not broadcast to %lld", name, j,
                        (long long)od[j], (long long)dims[i]);
    int64_t stride = (j == 0 && outer) ? outer : st;
    s[i] = od[j] == 1 ? 0 : stride;
    st *= od[j];
  }
  return NULL;
}

kiln_status kiln_fast_binary_prepare(const kiln_fast_binary_desc *d, kiln_fast_binary_plan *p) {
  memset(p, 0, sizeof *p);
  if (d->rank < 0 || d->rank > KILN_FAST_MAX_RANK)
    return kiln_error(KILN_ERR_UNSUPPORTED, "elementwise rank %d (at most %d)", d->rank, KILN_FAST_MAX_RANK);
  if ((unsigned)d->op > KILN_FAST_POW) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "unknown binary op %d", d->op);
  int64_t sa[KILN_FAST_MAX_RANK], sb[KILN_FAST_MAX_RANK], sy[KILN_FAST_MAX_RANK];
  KILN_TRY(operand_strides("A", d->rank, d->dims, d->a_rank, d->a_dims, d->a_outer_stride, sa));
  KILN_TRY(operand_strides("B", d->rank, d->dims, d->b_rank, d->b_dims, d->b_outer_stride, sb));
  KILN_TRY(operand_strides("Y", d->rank, d->dims, d->rank, d->dims, d->y_outer_stride, sy));
  p->op = d->op;
  p->isa = kiln_fast_isa(d->isa);
  p->act = d->act;
  p->alpha = d->alpha, p->beta = d->beta;
  /* drop size-1 dims; merge a dim into its left neighbour when that is contiguous over it for all three */
  for (int32_t i = 0; i < d->rank; i++) {
    if (d->dims[i] == 0) {
      p->rank = 1, p->dims[0] = 0, p->sa[0] = p->sb[0] = p->sy[0] = 1;
      return NULL;
    }
    if (d->dims[i] == 1) continue;
    int32_t k = p->rank - 1;
    if (k >= 0 && p->sa[k] == sa[i] * d->dims[i] && p->sb[k] == sb[i] * d->dims[i] && p->sy[k] == sy[i] * d->dims[i]) {
      p->dims[k] *= d->dims[i];
      p->sa[k] = sa[i], p->sb[k] = sb[i], p->sy[k] = sy[i];
      continue;
    }
    p->dims[p->rank] = d->dims[i], p->sa[p->rank] = sa[i], p->sb[p->rank] = sb[i], p->sy[p->rank] = sy[i];
    p->rank++;
  }
  if (p->rank == 0) p->rank = 1, p->dims[0] = 1, p->sa[0] = p->sb[0] = p->sy[0] = 1;
  int32_t last = p->rank - 1;
  p->row_len = p->dims[last];
  p->rows = 1;
  for (int32_t i = 0; i < last; i++) p->rows *= p->dims[i];
  /* Work units: rows, and long rows cut in chunks (same-shape ops are one row) that stay in L1/L2
   * between the op and the fused activation. */
  p->chunk = p->row_len < 4096 ? p->row_len : 4096;
  p->units = p->rows * ((p->row_len + p->chunk - 1) / p->chunk);
  return NULL;
}

typedef struct bin_ctx {
  const kiln_fast_binary_plan *p;
  const float *a, *b;
  float *y;
} bin_ctx;

static void bin_units(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const bin_ctx *c = vctx;
  const kiln_fast_binary_plan *p = c->p;
  int32_t last = p->rank - 1;
  int64_t per_row = (p->row_len + p->chunk - 1) / p->chunk;
  int64_t ai = p->sa[last], bi = p->sb[last], yi = p->sy[last];
  int unit_strides = (ai == 0 || ai == 1) && (bi == 0 || bi == 1) && yi == 1;
  for (int64_t u = begin; u < end; u++) {
    int64_t row = u / per_row, c0 = (u % per_row) * p->chunk;
    int64_t n = p->row_len - c0 < p->chunk ? p->row_len - c0 : p->chunk;
    int64_t oa = c0 * ai, ob = c0 * bi, oy = c0 * yi, rem = row;
    for (int32_t i = last - 1; i >= 0; i--) {
      int64_t k = rem % p->dims[i];
      rem /= p->dims[i];
      oa += k * p->sa[i], ob += k * p->sb[i], oy += k * p->sy[i];
    }
    float *y = c->y + oy;
    if (unit_strides) {
      bin_row(p->isa, p->op, c->a + oa, ai, c->b + ob, bi, y, n);
      if (p->act != KILN_ACT_NONE) un_row(p->isa, (int)p->act, p->alpha, p->beta, y, y, n);
    } else { /* strided innermost dim (an outer stride on a rank-1 operand): element by element */
      for (int64_t i = 0; i < n; i++) {
        float r = 0;
        bin_row_scalar(p->op, c->a + oa + i * ai, 0, c->b + ob + i * bi, 0, &r, 1);
        y[i * yi] = kiln_act_apply_scalar(r, p->act, p->alpha, p->beta);
      }
    }
  }
}

void kiln_fast_binary_run(const kiln_fast_binary_plan *p, const float *a, const float *b, float *y,
                          kiln_threadpool *tp) {
  if (p->row_len == 0) return;
  bin_ctx c = {p, a, b, y};
  int64_t elems = p->rows * p->row_len;
  /* transcendental activations cost ~10x a memory pass: parallelize them earlier */
  int64_t weight = (p->act == KILN_ACT_NONE || p->act == KILN_ACT_RELU || p->act == KILN_ACT_CLIP) ? 12 : 64;
  kiln_threadpool *t = kiln_fast_tp_for(tp, elems * weight);
  int64_t per = p->units ? elems / p->units : 1, grain = 8192 / (per ? per : 1);
  kiln_threadpool_run(t, p->units, grain < 1 ? 1 : grain, bin_units, &c);
}

/* ---- unary ------------------------------------------------------------------------------------------ */

typedef struct un_ctx {
  const kiln_fast_unary_desc *d;
  const float *x;
  float *y;
  int code;
  int64_t chunk, per_row;
  kiln_isa isa;
} un_ctx;

static void un_units(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const un_ctx *c = vctx;
  const kiln_fast_unary_desc *d = c->d;
  int64_t xs = d->x_stride ? d->x_stride : d->inner, ys = d->y_stride ? d->y_stride : d->inner;
  for (int64_t u = begin; u < end; u++) {
    int64_t o = u / c->per_row, c0 = (u % c->per_row) * c->chunk;
    int64_t n = d->inner - c0 < c->chunk ? d->inner - c0 : c->chunk;
    un_row(c->isa, c->code, d->alpha, d->beta, c->x + o * xs + c0, c->y + o * ys + c0, n);
  }
}

void kiln_fast_unary_run(const kiln_fast_unary_desc *d, const float *x, float *y, kiln_threadpool *tp) {
  if (d->outer <= 0 || d->inner <= 0) return;
  un_ctx c = {d, x, y, d->op == KILN_FAST_UN_ACT ? (int)d->act : EW_CODE_BASE + (int)d->op, 0, 0, kiln_fast_isa(d->isa)};
  c.chunk = d->inner < 8192 ? d->inner : 8192;
  c.per_row = (d->inner + c.chunk - 1) / c.chunk;
  int64_t elems = d->outer * d->inner;
  bool cheap = (d->op == KILN_FAST_UN_ACT && (d->act == KILN_ACT_NONE || d->act == KILN_ACT_RELU ||
                                               d->act == KILN_ACT_CLIP || d->act == KILN_ACT_LEAKY_RELU)) ||
               d->op == KILN_FAST_UN_NEG || d->op == KILN_FAST_UN_ABS;
  kiln_threadpool *t = kiln_fast_tp_for(tp, elems * (cheap ? 8 : 64));
  int64_t units = d->outer * c.per_row, per = elems / units, grain = 8192 / (per ? per : 1);
  kiln_threadpool_run(t, units, grain < 1 ? 1 : grain, un_units, &c);
}

void kiln_fast_silu_run(int64_t n, const float *x, float *y, kiln_isa isa, kiln_threadpool *tp) {
  kiln_fast_unary_desc d = {.op = KILN_FAST_UN_ACT, .act = KILN_ACT_SILU, .outer = 1, .inner = n, .isa = isa};
  kiln_fast_unary_run(&d, x, y, tp);
}

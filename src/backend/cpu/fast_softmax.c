/* Softmax / LogSoftmax (see fast_softmax.h). Kernels from fast_softmax_isa.h per ISA. */
#include "backend/cpu/fast_softmax.h"

#include "backend/cpu/simd_math.h"

#include <immintrin.h>
#include <math.h>

#define SM_BLOCK 512 /* columns per block: axis 16 x 512 x 4 B = 32 KiB, inside L1 with y */

static inline float hmax1(float v) { return v; }
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
#define VMAX(a, b) ((b) > (a) ? (b) : (a))
#define VEXP expf
#define VHMAX hmax1
#define VHADD hmax1
#include "backend/cpu/fast_softmax_isa.h"
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
#undef VMAX
#undef VEXP
#undef VHMAX
#undef VHADD

KILN_FAST_AVX2 static inline float hmax8(__m256 v) {
  __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_max_ps(a, _mm_movehl_ps(a, a));
  a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}
KILN_FAST_AVX2 static inline float hadd8(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
  return _mm_cvtss_f32(a);
}
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
#define VMAX _mm256_max_ps
#define VEXP kiln_exp_avx2
#define VHMAX hmax8
#define VHADD hadd8
#include "backend/cpu/fast_softmax_isa.h"
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
#undef VMAX
#undef VEXP
#undef VHMAX
#undef VHADD

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
#define VMAX _mm512_max_ps
#define VEXP kiln_exp_avx512
#define VHMAX _mm512_reduce_max_ps
#define VHADD _mm512_reduce_add_ps
#include "backend/cpu/fast_softmax_isa.h"

typedef struct sm_ctx {
  const kiln_fast_softmax_desc *d;
  const float *x;
  float *y;
  int64_t blocks; /* column blocks per outer slice (inner > 1) */
  kiln_isa isa;
} sm_ctx;

static void sm_units(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const sm_ctx *c = vctx;
  const kiln_fast_softmax_desc *d = c->d;
  for (int64_t u = begin; u < end; u++) {
    if (d->inner == 1) {
      const float *x = c->x + u * d->axis;
      float *y = c->y + u * d->axis;
      if (c->isa == KILN_ISA_AVX512) sm_row_avx512(x, y, d->axis, d->log);
      else if (c->isa == KILN_ISA_AVX2) sm_row_avx2(x, y, d->axis, d->log);
      else sm_row_scalar(x, y, d->axis, d->log);
    } else {
      int64_t o = u / c->blocks, j0 = (u % c->blocks) * SM_BLOCK;
      int64_t nc = d->inner - j0 < SM_BLOCK ? d->inner - j0 : SM_BLOCK;
      const float *x = c->x + o * d->axis * d->inner + j0;
      float *y = c->y + o * d->axis * d->inner + j0;
      if (c->isa == KILN_ISA_AVX512) sm_cols_avx512(x, y, d->axis, d->inner, nc, d->log);
      else if (c->isa == KILN_ISA_AVX2) sm_cols_avx2(x, y, d->axis, d->inner, nc, d->log);
      else sm_cols_scalar(x, y, d->axis, d->inner, nc, d->log);
    }
  }
}

void kiln_fast_softmax_run(const kiln_fast_softmax_desc *d, const float *x, float *y, kiln_threadpool *tp) {
  if (d->outer <= 0 || d->axis <= 0 || d->inner <= 0) return;
  sm_ctx c = {d, x, y, (d->inner + SM_BLOCK - 1) / SM_BLOCK, kiln_fast_isa(d->isa)};
  int64_t units = d->inner == 1 ? d->outer : d->outer * c.blocks;
  int64_t elems = d->outer * d->axis * d->inner, per = elems / units;
  kiln_threadpool *t = kiln_fast_tp_for(tp, elems * 64); /* exp costs ~ a 64-byte memory pass per element */
  int64_t grain = 16384 / (per ? per : 1);
  kiln_threadpool_run(t, units, grain < 1 ? 1 : grain, sm_units, &c);
}

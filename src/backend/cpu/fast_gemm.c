/* Packed SGEMM (see fast_gemm.h). */
#include "backend/cpu/fast_gemm.h"

#include <immintrin.h>
#include <string.h>

#define KC 256

static int nr_of(kiln_isa isa) { return isa == KILN_ISA_AVX512 ? 32 : 16; }
static int mr_of(kiln_isa isa) { return isa == KILN_ISA_AVX512 ? 12 : isa == KILN_ISA_AVX2 ? 6 : 4; }
static int64_t nbatch(const kiln_fast_gemm_desc *d) { return d->batch > 1 ? d->batch : 1; }
static int64_t nbatch_b(const kiln_fast_gemm_desc *d) { return d->batch_stride_b ? nbatch(d) : 1; }
static int64_t npad(const kiln_fast_gemm_desc *d, int nr) { return (d->N + nr - 1) / nr * nr; }

size_t kiln_fast_gemm_packed_b_size(const kiln_fast_gemm_desc *d) {
  kiln_isa isa = kiln_fast_isa(d->isa);
  return (size_t)(nbatch_b(d) * d->K * npad(d, nr_of(isa))) * sizeof(float) + 64;
}

size_t kiln_fast_gemm_workspace_size(const kiln_fast_gemm_desc *d) { return kiln_fast_gemm_packed_b_size(d); }

/* ---- packing: packed[b][kb][panel][k][NR] ---------------------------------------------------------- */

typedef struct pack_ctx {
  const kiln_fast_gemm_desc *d;
  const float *B;
  float *P;
  int nr;
  int64_t np, nkb, ldb;
} pack_ctx;

static void pack_units(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const pack_ctx *c = vctx;
  const kiln_fast_gemm_desc *d = c->d;
  int nr = c->nr;
  int64_t Np = c->np * nr;
  for (int64_t u = begin; u < end; u++) { /* u = (batch, kb, panel) */
    int64_t jp = u % c->np, kb = (u / c->np) % c->nkb, b = u / (c->np * c->nkb);
    int64_t k0 = kb * KC, kl = d->K - k0 < KC ? d->K - k0 : KC;
    const float *B = c->B + b * d->batch_stride_b;
    float *dst = c->P + b * d->K * Np + k0 * Np + jp * nr * kl;
    int64_t n0 = jp * nr, nn = d->N - n0 < nr ? d->N - n0 : nr;
    for (int64_t k = 0; k < kl; k++) {
      float *o = dst + k * nr;
      if (!d->trans_b) {
        memcpy(o, B + (k0 + k) * c->ldb + n0, (size_t)nn * 4);
      } else {
        for (int64_t j = 0; j < nn; j++) o[j] = B[(n0 + j) * c->ldb + k0 + k];
      }
      for (int64_t j = nn; j < nr; j++) o[j] = 0; /* zero columns: the kernel always computes NR */
    }
  }
}

void kiln_fast_gemm_pack_b(const kiln_fast_gemm_desc *d, const float *B, float *packed, kiln_threadpool *tp) {
  kiln_isa isa = kiln_fast_isa(d->isa);
  pack_ctx c = {d, B, packed, nr_of(isa), 0, 0, d->ldb ? d->ldb : (d->trans_b ? d->K : d->N)};
  c.np = (d->N + c.nr - 1) / c.nr;
  c.nkb = (d->K + KC - 1) / KC;
  int64_t units = nbatch_b(d) * c.nkb * c.np;
  if (units == 0) return;
  kiln_threadpool *t = kiln_fast_tp_for(tp, 2 * nbatch_b(d) * d->K * d->N * 4);
  kiln_threadpool_run(t, units, 0, pack_units, &c);
}

/* ---- micro-kernels -----------------------------------------------------------------------------------
 * C[mr, NR] (+)= alpha * A[mr, kl] * Bp[kl, NR]; A(i, k) = a[i*ars + k*acs]. `first` K block applies beta
 * (beta == 0 never reads C). Columns >= nn are masked off. mr is a compile-time constant after inlining
 * (one specialization per row count), so the accumulators live in registers. */

#define AI __attribute__((always_inline)) inline

KILN_FAST_AVX512 static AI void uk512(const int mr, int64_t kl, const float *a, int64_t ars, int64_t acs,
                                       const float *bp, float *c, int64_t ldc, int nn, float alpha, float beta,
                                       int first) {
  __m512 acc[12][2];
  for (int i = 0; i < 12; i++)
    if (i < mr) acc[i][0] = _mm512_setzero_ps(), acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kl; k++) {
    __m512 b0 = _mm512_loadu_ps(bp + k * 32), b1 = _mm512_loadu_ps(bp + k * 32 + 16);
    const float *ak = a + k * acs;
    for (int i = 0; i < 12; i++)
      if (i < mr) {
        __m512 av = _mm512_set1_ps(ak[i * ars]);
        acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      }
  }
  __mmask16 m0 = nn >= 16 ? 0xffff : (__mmask16)((1u << nn) - 1);
  __mmask16 m1 = nn >= 32 ? 0xffff : nn <= 16 ? 0 : (__mmask16)((1u << (nn - 16)) - 1);
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < 12; i++)
    if (i < mr) {
      float *ci = c + i * ldc;
      __m512 r0 = _mm512_mul_ps(acc[i][0], va), r1 = _mm512_mul_ps(acc[i][1], va);
      if (!first) {
        r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, ci));
        r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, ci + 16));
      } else if (beta != 0) {
        r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
        r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
      }
      _mm512_mask_storeu_ps(ci, m0, r0);
      _mm512_mask_storeu_ps(ci + 16, m1, r1);
    }
}

KILN_FAST_AVX2 static AI __m256i mask8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

KILN_FAST_AVX2 static AI void uk256(const int mr, int64_t kl, const float *a, int64_t ars, int64_t acs,
                                     const float *bp, float *c, int64_t ldc, int nn, float alpha, float beta,
                                     int first) {
  __m256 acc[6][2];
  for (int i = 0; i < 6; i++)
    if (i < mr) acc[i][0] = _mm256_setzero_ps(), acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kl; k++) {
    __m256 b0 = _mm256_loadu_ps(bp + k * 16), b1 = _mm256_loadu_ps(bp + k * 16 + 8);
    const float *ak = a + k * acs;
    for (int i = 0; i < 6; i++)
      if (i < mr) {
        __m256 av = _mm256_broadcast_ss(ak + i * ars);
        acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
      }
  }
  __m256i m0 = mask8(nn), m1 = mask8(nn - 8);
  __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  for (int i = 0; i < 6; i++)
    if (i < mr) {
      float *ci = c + i * ldc;
      __m256 r0 = _mm256_mul_ps(acc[i][0], va), r1 = _mm256_mul_ps(acc[i][1], va);
      if (!first) {
        r0 = _mm256_add_ps(r0, _mm256_maskload_ps(ci, m0));
        r1 = _mm256_add_ps(r1, _mm256_maskload_ps(ci + 8, m1));
      } else if (beta != 0) {
        r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci, m0), r0);
        r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8, m1), r1);
      }
      _mm256_maskstore_ps(ci, m0, r0);
      _mm256_maskstore_ps(ci + 8, m1, r1);
    }
}

static void uk_scalar(int mr, int64_t kl, const float *a, int64_t ars, int64_t acs, const float *bp, float *c,
                      int64_t ldc, int nn, float alpha, float beta, int first) {
  float acc[4][16];
  memset(acc, 0, sizeof acc);
  for (int64_t k = 0; k < kl; k++)
    for (int i = 0; i < mr; i++) {
      float av = a[i * ars + k * acs];
      for (int j = 0; j < 16; j++) acc[i][j] += av * bp[k * 16 + j];
    }
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nn; j++) {
      float r = alpha * acc[i][j];
      float *ci = c + i * ldc + j;
      *ci = !first ? *ci + r : beta != 0 ? beta * *ci + r : r;
    }
}

KILN_FAST_AVX512 static void uk512_any(int mr, int64_t kl, const float *a, int64_t ars, int64_t acs, const float *bp,
                                       float *c, int64_t ldc, int nn, float alpha, float beta, int first) {
#define UK_CASE(m)                                                                                   \
  case m: uk512(m, kl, a, ars, acs, bp, c, ldc, nn, alpha, beta, first); break;
  switch (mr) {
    UK_CASE(1) UK_CASE(2) UK_CASE(3) UK_CASE(4) UK_CASE(5) UK_CASE(6) UK_CASE(7) UK_CASE(8) UK_CASE(9) UK_CASE(10)
    UK_CASE(11) UK_CASE(12)
  }
#undef UK_CASE
}

KILN_FAST_AVX2 static void uk256_any(int mr, int64_t kl, const float *a, int64_t ars, int64_t acs, const float *bp,
                                     float *c, int64_t ldc, int nn, float alpha, float beta, int first) {
#define UK_CASE(m)                                                                                   \
  case m: uk256(m, kl, a, ars, acs, bp, c, ldc, nn, alpha, beta, first); break;
  switch (mr) { UK_CASE(1) UK_CASE(2) UK_CASE(3) UK_CASE(4) UK_CASE(5) UK_CASE(6) }
#undef UK_CASE
}

/* ---- driver ------------------------------------------------------------------------------------------ */

#define MB_ROWS 96  /* rows of A per work unit (a multiple of 12 and 6) */
#define NB_PANELS 4 /* B panels per work unit */

typedef struct gemm_ctx {
  const kiln_fast_gemm_desc *d;
  const float *A, *P;
  float *C;
  kiln_isa isa;
  int nr, mr;
  int64_t np, nkb, mblocks, nblocks, lda, ldc, ars, acs;
} gemm_ctx;

static void gemm_units(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const gemm_ctx *c = vctx;
  const kiln_fast_gemm_desc *d = c->d;
  int64_t Np = c->np * c->nr;
  for (int64_t u = begin; u < end; u++) { /* u = (batch, n block, m block) */
    int64_t mb = u % c->mblocks, nb = (u / c->mblocks) % c->nblocks, b = u / (c->mblocks * c->nblocks);
    const float *A = c->A + b * d->batch_stride_a;
    const float *P = c->P + (d->batch_stride_b ? b : 0) * d->K * Np;
    float *C = c->C + b * d->batch_stride_c;
    int64_t m0 = mb * MB_ROWS, m1 = m0 + MB_ROWS < d->M ? m0 + MB_ROWS : d->M;
    int64_t p0 = nb * NB_PANELS, p1 = p0 + NB_PANELS < c->np ? p0 + NB_PANELS : c->np;
    for (int64_t kb = 0; kb < c->nkb; kb++) {
      int64_t k0 = kb * KC, kl = d->K - k0 < KC ? d->K - k0 : KC;
      for (int64_t jp = p0; jp < p1; jp++) {
        const float *bp = P + k0 * Np + jp * c->nr * kl;
        int64_t n0 = jp * c->nr;
        int nn = (int)(d->N - n0 < c->nr ? d->N - n0 : c->nr);
        for (int64_t i = m0; i < m1; i += c->mr) {
          int mr = (int)(m1 - i < c->mr ? m1 - i : c->mr);
          const float *a = A + i * c->ars + k0 * c->acs;
          float *cp = C + i * c->ldc + n0;
          if (c->isa == KILN_ISA_AVX512)
            uk512_any(mr, kl, a, c->ars, c->acs, bp, cp, c->ldc, nn, d->alpha, d->beta, kb == 0);
          else if (c->isa == KILN_ISA_AVX2)
            uk256_any(mr, kl, a, c->ars, c->acs, bp, cp, c->ldc, nn, d->alpha, d->beta, kb == 0);
          else uk_scalar(mr, kl, a, c->ars, c->acs, bp, cp, c->ldc, nn, d->alpha, d->beta, kb == 0);
        }
      }
    }
  }
}

void kiln_fast_gemm_run(const kiln_fast_gemm_desc *d, const float *A, const float *B, const float *packed_b, float *C,
                        void *workspace, kiln_threadpool *tp) {
  if (d->M <= 0 || d->N <= 0) return;
  int64_t nb = nbatch(d), ldc = d->ldc ? d->ldc : d->N;
  if (d->K <= 0) { /* C = beta * C */
    for (int64_t b = 0; b < nb; b++)
      for (int64_t i = 0; i < d->M; i++)
        for (int64_t j = 0; j < d->N; j++) {
          float *p = C + b * d->batch_stride_c + i * ldc + j;
          *p = d->beta != 0 ? d->beta * *p : 0.0f;
        }
    return;
  }
  if (!packed_b) {
    kiln_fast_gemm_pack_b(d, B, workspace, tp);
    packed_b = workspace;
  }
  gemm_ctx c;
  memset(&c, 0, sizeof c);
  c.d = d, c.A = A, c.P = packed_b, c.C = C;
  c.isa = kiln_fast_isa(d->isa);
  c.nr = nr_of(c.isa), c.mr = mr_of(c.isa);
  c.np = (d->N + c.nr - 1) / c.nr;
  c.nkb = (d->K + KC - 1) / KC;
  c.mblocks = (d->M + MB_ROWS - 1) / MB_ROWS;
  c.nblocks = (c.np + NB_PANELS - 1) / NB_PANELS;
  c.lda = d->lda ? d->lda : (d->trans_a ? d->M : d->K);
  c.ldc = ldc;
  c.ars = d->trans_a ? 1 : c.lda, c.acs = d->trans_a ? c.lda : 1;
  int64_t units = nb * c.mblocks * c.nblocks;
  /* parallel when the flops are worth a wake-up (~2 GFLOP/s scalar-equivalent threshold) */
  kiln_threadpool *t = (nb * d->M * d->N * d->K >= 65536) ? tp : NULL;
  kiln_threadpool_run(t, units, 1, gemm_units, &c);
}

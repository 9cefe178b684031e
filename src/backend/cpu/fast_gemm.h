/*
 * SGEMM: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major, optionally batched
 * (MatMul with batch dims: per-batch element strides; a B stride of 0 shares one B, e.g. weights).
 *
 * B is packed into NR-column panels, K-blocked (KC = 256) so one panel block (256 x NR floats)
 * stays in L1 while the micro-kernel sweeps the rows of A; A is read in place (row or column
 * order), each micro-row's k-run being sequential. Micro-kernels: AVX-512 12x32 (24 zmm
 * accumulators), AVX2 6x16, scalar 4x16. The packed layout depends on the ISA, so pack and run
 * must be given the same `isa`.
 *
 * Constant B (build time):
 *   size_t sz = kiln_fast_gemm_packed_b_size(&d);   float *pb = aligned_alloc(64, sz);
 *   kiln_fast_gemm_pack_b(&d, B, pb, tp);
 *   kiln_fast_gemm_run(&d, A, NULL, pb, C, NULL, tp);
 * B at run time: pass B, packed_b = NULL and a workspace of kiln_fast_gemm_workspace_size(&d) bytes.
 */
#ifndef KILN_BACKEND_CPU_FAST_GEMM_H
#define KILN_BACKEND_CPU_FAST_GEMM_H

#include "backend/cpu/fast_common.h"

#include <stdbool.h>

typedef struct kiln_fast_gemm_desc {
  int64_t M, N, K;
  bool trans_a, trans_b; /* op(A) = A^T: A is stored [K, M]; op(B) = B^T: B is stored [N, K] */
  int64_t lda, ldb, ldc; /* row strides in elements; 0 = dense for the stored shape */
  float alpha, beta;     /* beta == 0: C is not read (may hold NaN) */
  int64_t batch;         /* 0 or 1: one product */
  int64_t batch_stride_a, batch_stride_b, batch_stride_c; /* elements; batch_stride_b = 0 shares B */
  kiln_isa isa;
} kiln_fast_gemm_desc;

size_t kiln_fast_gemm_packed_b_size(const kiln_fast_gemm_desc *d); /* bytes, all distinct B's */
void kiln_fast_gemm_pack_b(const kiln_fast_gemm_desc *d, const float *B, float *packed, kiln_threadpool *tp);
size_t kiln_fast_gemm_workspace_size(const kiln_fast_gemm_desc *d); /* for run with packed_b == NULL */
/* packed_b != NULL: B is ignored. packed_b == NULL: B is packed into `workspace` first. */
void kiln_fast_gemm_run(const kiln_fast_gemm_desc *d, const float *A, const float *B, const float *packed_b, float *C,
                        void *workspace, kiln_threadpool *tp);

#endif

/*
 * Batched GEMM of the CUDA backend, for ONNX MatMul and Gemm:
 *
 *   y[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]        op(X) = X or X^T
 *
 * with op(A) M x K, op(B) K x N, y M x N. Two paths:
 *   - compute F32: exact fp32 (plain FMA in a shared-memory tile, no TF32), so fp32 engines stay within
 *     1e-4 of the CPU reference. A and B are fp32.
 *   - compute F16: A and B fp16, fp32 accumulation on tensor cores (mma.sync.m16n8k16); y fp16 or fp32.
 * Any M, N, K (tiles are bounds-checked, no multiple of anything is required).
 *
 * Batching follows MatMul's numpy broadcasting of the leading dims: the batch is up to
 * KILN_CUDA_GEMM_MAX_BATCH_RANK dims, and each operand has its own stride per batch dim, 0 where that
 * operand broadcasts (A [2,1,M,K] x B [1,3,K,N]: batch dims {2,3}, A strides {M*K, 0}, B {0, K*N}).
 * y is written at y + batch_index * y_batch_stride (0 = M * ldy, i.e. dense).
 *
 * cuBLASLt is not a tactic here: it needs a handle and workspace created outside the run path, and a
 * link dependency the engine does not otherwise have; MatMul/Gemm is a small share of YOLO's time, so
 * the "own or through cuBLASLt" is met by the own kernels. It can be added behind this API later.
 *
 * Asynchronous on the given stream, no allocation, no sync; errors only for bad arguments or launches.
 */
#ifndef KILN_BACKEND_CUDA_GEMM_CUDA_H
#define KILN_BACKEND_CUDA_GEMM_CUDA_H

#include "backend/cuda/cuda_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_CUDA_GEMM_MAX_BATCH_RANK 4

typedef struct kiln_cuda_gemm_desc {
  int64_t m, n, k;
  /* A is stored [M][lda] (trans_a 0) or [K][lda] (trans_a 1); B is [K][ldb] or [N][ldb] (trans_b 1).
   * Leading dims 0 = dense (K or M for A, N or K for B; ldy 0 = N). */
  int trans_a, trans_b;
  int64_t lda, ldb, ldy;
  /* Batch: batch_rank dims (0 = a single GEMM), per-operand element strides per dim (0 = broadcast). */
  int batch_rank;
  int64_t batch_dims[KILN_CUDA_GEMM_MAX_BATCH_RANK];
  int64_t a_batch_stride[KILN_CUDA_GEMM_MAX_BATCH_RANK], b_batch_stride[KILN_CUDA_GEMM_MAX_BATCH_RANK];
  int64_t c_batch_stride[KILN_CUDA_GEMM_MAX_BATCH_RANK];
  int64_t y_batch_stride; /* elements between consecutive (flattened) batch items of y; 0 = M * ldy */
  float alpha, beta;
  /* C (bias), optional (pointer NULL or beta 0 = none): element (m, n) at c[m*c_stride_m + n*c_stride_n];
   * stride 0 broadcasts (ONNX Gemm C of shape [N]: {0, 1}; [M,1]: {1, 0}; [M,N]: {N, 1}; scalar {0, 0}). */
  int64_t c_stride_m, c_stride_n;
  kiln_cuda_dtype c_dtype;
  kiln_cuda_dtype compute;   /* F32: A, B fp32, exact. F16: A, B fp16, tensor cores, fp32 accumulate */
  kiln_cuda_dtype out_dtype; /* F32 or F16 (either compute) */
} kiln_cuda_gemm_desc;

/* Checks shapes, leading dims and types (no device access). */
kiln_status kiln_cuda_gemm_validate(const kiln_cuda_gemm_desc *d);

/* Runs the GEMM: a, b, c (may be NULL), y are device pointers. y must not alias a, b or c. */
kiln_status kiln_cuda_gemm(const kiln_cuda_gemm_desc *d, const void *a, const void *b, const void *c, void *y,
                           kiln_cuda_stream stream);

/* Name of the kernel kiln_cuda_gemm runs for d ("gemm_mma.f16", "gemm_fma.f32"), for the profiler. */
const char *kiln_cuda_gemm_kernel_name(const kiln_cuda_gemm_desc *d);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Parameter records of the LINEAR "cuda.*" layers that src/build/lower_cuda_ops.c writes and
 * kernels_cuda_ops.c validates and runs: GEMM, reductions, strided copies (Slice/Expand/Tile), Gather,
 * Pad, general Resize and unary math. All their tensors are LINEAR (ONNX order); shapes and dtypes come
 * from the tensor records, and prepare checks every parameter against them, so a malformed engine cannot
 * make a launch step outside a buffer. Plain structs, zeroed before they are filled (deterministic
 * engines); changing one means a new kernel name.
 */
#ifndef KILN_BACKEND_CUDA_LAYERS_OPS_H
#define KILN_BACKEND_CUDA_LAYERS_OPS_H

#include "backend/cuda/copy_cuda.h"
#include "backend/cuda/gemm_cuda.h"
#include "backend/cuda/reduce_cuda.h"
#include "backend/cuda/resize_cuda.h"
#include "backend/cuda/unary_cuda.h"

/* "cuda.gemm": inputs A, B[, C], output Y. Leading dims and batch strides are explicit here (0 = dense
 * is resolved at build time) so prepare can bound every operand's reach. compute/out/c dtypes are F32. */
typedef struct kiln_cuda_gemm_params {
  kiln_cuda_gemm_desc desc;
} kiln_cuda_gemm_params;

/* "cuda.reduce": x viewed as [outer][len][inner], y as [outer][inner]. kind 0: reduce (op =
 * kiln_cuda_reduce_op, y the dtype of x); 1: ArgMax, 2: ArgMin (y int64, select_last). */
typedef struct kiln_cuda_reduce_params {
  int32_t kind, op, select_last, reserved;
  int64_t outer, len, inner;
} kiln_cuda_reduce_params;

/* "cuda.strided_copy": y (dense, dims = y's record) = x[src_offset + sum i_d * src_strides[d]].
 * Slice (any steps), Expand (stride 0), Tile (rank doubled: {repeat, dim} pairs). */
typedef struct kiln_cuda_strided_params {
  int32_t rank, reserved;
  int64_t dims[KILN_CUDA_COPY_MAX_RANK];
  int64_t src_offset;
  int64_t src_strides[KILN_CUDA_COPY_MAX_RANK];
} kiln_cuda_strided_params;

/* "cuda.gather": inputs x, indices (int64), output y; x as [outer][axis_len][inner]. */
typedef struct kiln_cuda_gather_params {
  int64_t outer, axis_len, inner, n_indices;
} kiln_cuda_gather_params;

/* "cuda.pad": y = Pad(x), pads per dim of x (rank = x's rank). value: the constant's bytes. */
typedef struct kiln_cuda_pad_params {
  int32_t mode, rank; /* kiln_cuda_pad_mode */
  int64_t begin[KILN_CUDA_COPY_MAX_RANK], end[KILN_CUDA_COPY_MAX_RANK];
  uint8_t value[8];
} kiln_cuda_pad_params;

/* "cuda.resize": 4-D NCHW (LINEAR) Resize of H and W. */
typedef struct kiln_cuda_resize_any_params {
  kiln_cuda_resize_desc desc;
} kiln_cuda_resize_any_params;

/* "cuda.unary": y = f(x), same shape; fp32 (op: kiln_cuda_unary_op). */
typedef struct kiln_cuda_unary_params {
  int32_t op, reserved;
  float alpha, beta;
} kiln_cuda_unary_params;

/* "cuda.select": comparison (a op b -> bool) or Where(cond, a, b) with numpy broadcasting, rank <= 6. */
typedef struct kiln_cuda_select_params {
  int32_t op, reserved; /* kiln_cuda_select_op */
} kiln_cuda_select_params;

#endif

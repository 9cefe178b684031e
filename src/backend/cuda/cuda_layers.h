/*
 * The CUDA engine's layer kernels ("cuda.*" in engine files): their parameter records, shared by the
 * lowering (src/build/lower_cuda.c), which writes them, and kernels_cuda.c, which validates them at load
 * and runs them. Most shapes, dtypes, layouts and pixel strides come from the layers' tensor records, so
 * the parameters hold only what the records cannot say. Records are plain structs with explicit padding.
 * Each kernel's prepare checks its record's size, so a record that grows (cuda.conv did, with the desc's
 * in_layout_nchw / in_dtype) makes older engines refused ("rebuild the engine"); a change that keeps the
 * size but changes the meaning needs a new kernel name (kernel_registry.c).
 */
#ifndef KILN_BACKEND_CUDA_LAYERS_H
#define KILN_BACKEND_CUDA_LAYERS_H

#include "backend/cuda/conv_cuda.h"
#include "backend/cuda/eltwise_cuda.h"
#include "backend/cuda/spatial_cuda.h"

#define KILN_CUDA_MAX_PARTS 64 /* inputs of a Concat, outputs of a Split */

typedef struct kiln_cuda_conv_params { /* "cuda.conv" */
  kiln_cuda_conv_desc desc;            /* pixel strides are re-read from the tensor records at load */
  uint64_t packed_offset, packed_size; /* the packed weights in the weights section */
} kiln_cuda_conv_params;

typedef struct kiln_cuda_pool_params { /* "cuda.maxpool" */
  kiln_cuda_pool_desc desc;
} kiln_cuda_pool_params;

typedef struct kiln_cuda_pool_chain_params { /* "cuda.maxpool_chain": n_out chained same-size MaxPools */
  kiln_cuda_pool_desc desc;                  /* one pool's window; out_pixel_stride shared by the outputs */
  int32_t n_out, reserved;
} kiln_cuda_pool_chain_params;

typedef struct kiln_cuda_resize_params { /* "cuda.resize_nearest": integer upsampling factors */
  int64_t scale_h, scale_w;
} kiln_cuda_resize_params;

typedef struct kiln_cuda_eltwise_params { /* "cuda.eltwise": y = act(a) or act(a op b) */
  int32_t op;                             /* kiln_cuda_binop, or -1 for unary */
  int32_t reserved;
  kiln_epilogue act;
} kiln_cuda_eltwise_params;

/* "cuda.pointwise": a run of elementwise ops fused into one pass (kiln_cuda_pointwise). Inputs: the program's
 * input slots 0..n_in-1, broadcast to the outputs' shape; outputs (all of one shape) take slots out_slot[k].
 * Entries past n_ops / the output count are zero. */
typedef struct kiln_cuda_pointwise_params {
  int32_t n_ops, reserved;
  kiln_cuda_pw_op ops[KILN_CUDA_PW_MAX_OPS];
  int32_t out_slot[KILN_CUDA_PW_MAX_OUT];
} kiln_cuda_pointwise_params;

typedef struct kiln_cuda_softmax_params { /* "cuda.softmax": x viewed as [outer][axis][inner] */
  int64_t outer, axis, inner;
} kiln_cuda_softmax_params;

/* "cuda.softmax_dot": inputs x [outer][axis][inner] (LINEAR float), w fp32 [axis], optional bias fp32 [1];
 * output fp32 [outer][inner] = sum_j w[j] * softmax_j(x) (+ bias). */
/* "cuda.softmax_dot_nhwc": inputs n_maps NHWC maps [N, H_k, W_k, groups*len] (float), w fp32 [len], optional
 * bias fp32 [1]; output fp32 LINEAR [N, groups, sum H_k*W_k] (YOLO's DFL read straight from the box convs). */
#define KILN_CUDA_DFL_MAX_MAPS 8
typedef struct kiln_cuda_softmax_dot_nhwc_params {
  int32_t n_maps, reserved;
  int64_t groups, len;
} kiln_cuda_softmax_dot_nhwc_params;

typedef struct kiln_cuda_softmax_dot_params {
  int64_t outer, axis, inner;
} kiln_cuda_softmax_dot_params;

typedef struct kiln_cuda_transpose_params { /* "cuda.transpose" */
  int32_t rank, reserved;
  int32_t perm[8];
} kiln_cuda_transpose_params;

/* "cuda.concat" (inputs -> one output) and "cuda.split" (one input -> outputs, each taken from `start`
 * along the axis): block copies. LINEAR tensors along any axis; NHWC tensors along the channels (axis 1). */
typedef struct kiln_cuda_parts_params {
  int32_t axis, n;
  int64_t start[KILN_CUDA_MAX_PARTS]; /* split: where each output starts along the axis */
} kiln_cuda_parts_params;

/* "cuda.convert_concat": NHWC maps [N,C,H,W] -> slices of a LINEAR [N,C,sum(H*W)] along the last axis,
 * with an activation applied on the way (YOLO's class scores: the Sigmoid after the Concat). */
typedef struct kiln_cuda_convert_concat_params {
  int32_t n, reserved;
  kiln_epilogue act;
} kiln_cuda_convert_concat_params;

#endif

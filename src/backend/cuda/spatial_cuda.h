/*
 * Spatial and reduction kernels of the CUDA backend: MaxPool 2-D and nearest Resize on NHWC tensors
 * (channel-strided views, so SPPF's pools can read and write Concat buffers in place), and Softmax
 * over one axis (a warp per row with shuffle reductions when the axis is innermost). Asynchronous on
 * the given stream, no allocation. fp32 or fp16 tensors (math in fp32).
 */
#ifndef KILN_BACKEND_CUDA_SPATIAL_CUDA_H
#define KILN_BACKEND_CUDA_SPATIAL_CUDA_H

#include "backend/cuda/cuda_types.h"
#include "backend/cuda/eltwise_cuda.h" /* kiln_cuda_nhwc_map */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_cuda_pool_desc {
  int64_t batch, channels, in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
  /* Elements between consecutive pixels (0 = channels): x and y may be channel slices. */
  int64_t in_pixel_stride, out_pixel_stride;
  kiln_cuda_dtype dtype;
} kiln_cuda_pool_desc;

/* MaxPool over the window; padding never wins (as ONNX: pads act as -inf). A window with no valid input
 * (only possible with huge pads) yields -inf. */
kiln_status kiln_cuda_maxpool2d_nhwc(const kiln_cuda_pool_desc *d, const void *x, void *y,
                                     kiln_cuda_stream stream);

/* A chain of n_out MaxPools (1 <= n_out <= KILN_CUDA_POOL_CHAIN_MAX) with the same "same-size" window
 * (d: stride 1, dilation 1, odd kernel, pad (k - 1) / 2, out size = in size), each pooling the previous
 * one's output: y[0] = pool(x), y[i] = pool(y[i - 1]), as YOLO's SPPF chains three 5x5 pools. One pass:
 * the block loads its map (one image, a group of channels) into shared memory once and runs every pool
 * there as a separable row / column max, writing each result to its own (channel-strided) y[i], whose
 * pixel stride is out_pixel_stride for all of them. kiln_cuda_maxpool_chain_supported says whether d
 * qualifies (the map must fit in shared memory); unsupported chains run as separate pools. */
#define KILN_CUDA_POOL_CHAIN_MAX 4
int kiln_cuda_maxpool_chain_supported(const kiln_cuda_pool_desc *d);
kiln_status kiln_cuda_maxpool_chain_nhwc(const kiln_cuda_pool_desc *d, int n_out, const void *x, void *const *y,
                                         kiln_cuda_stream stream);

/* The DFL of YOLO heads straight from NHWC maps of one type dt (maps[k].y_offset: the first position of map
 * k in the concatenation, maps[k].hw its pixels, pixel stride 0 = groups * len): for image b, group g and
 * position l of map k,
 *   y[(b * groups + g) * total + l] = sum_j w[j] * softmax_j(x_k[b][l - offset_k][g * len + j]) (+ *bias)
 * in fp32, with the same operations in the same order as kiln_cuda_softmax_dot (so the same results as
 * converting the maps to an fp32 [N, groups*len, total] tensor first). 1 <= n_maps <= 8. */
kiln_status kiln_cuda_softmax_dot_nhwc(const kiln_cuda_nhwc_map *maps, int n_maps, kiln_cuda_dtype dt, int64_t batch,
                                       int64_t groups, int64_t len, int64_t total, const float *w, const float *bias,
                                       float *y, kiln_cuda_stream stream);

/* Nearest-neighbour upsampling by integer factors (YOLO's Resize, scale 2): y[oh][ow] = x[oh/sh][ow/sw]
 * (ONNX nearest with asymmetric coordinates and floor rounding gives exactly this for integer scales). */
kiln_status kiln_cuda_resize_nearest_nhwc(kiln_cuda_dtype dt, int64_t batch, int64_t channels, int64_t in_h,
                                          int64_t in_w, int64_t scale_h, int64_t scale_w, const void *x,
                                          int64_t in_pixel_stride, void *y, int64_t out_pixel_stride,
                                          kiln_cuda_stream stream);

/* Softmax over the middle dim of x viewed as [outer][axis][inner] (ONNX opset >= 13 semantics: the
 * axis alone). y may equal x. */
kiln_status kiln_cuda_softmax(kiln_cuda_dtype dt, int64_t outer, int64_t axis, int64_t inner, const void *x,
                              void *y, kiln_cuda_stream stream);
/* y[o][i] = sum_j w[j] * softmax_j(x[o][j][i]) (+ *bias when bias is not NULL): a softmax over the middle
 * dim of x viewed as [outer][axis][inner] and a dot product with w[axis] along it, in one pass. y fp32
 * [outer][inner]; w (and bias) fp32 device memory. YOLOv8's DFL (Transpose + Softmax + 1x1 conv to one
 * channel) runs as this on the untransposed head output. */
kiln_status kiln_cuda_softmax_dot(kiln_cuda_dtype dt, int64_t outer, int64_t axis, int64_t inner, const void *x,
                                  const float *w, const float *bias, float *y, kiln_cuda_stream stream);

#ifdef __cplusplus
}
#endif
#endif

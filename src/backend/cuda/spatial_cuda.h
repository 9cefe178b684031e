/*
 * Spatial and reduction kernels of the CUDA backend: MaxPool 2-D and nearest Resize on NHWC tensors
 * (channel-strided views, so SPPF's pools can read and write Concat buffers in place), and Softmax
 * over one axis (a warp per row with shuffle reductions when the axis is innermost). Asynchronous on
 * the given stream, no allocation. fp32 or fp16 tensors (math in fp32).
 */
#ifndef KILN_BACKEND_CUDA_SPATIAL_CUDA_H
#define KILN_BACKEND_CUDA_SPATIAL_CUDA_H

#include "backend/cuda/cuda_types.h"

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

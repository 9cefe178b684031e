/*
 * ONNX Resize on 4-D tensors (resizing H and W; N and C keep their size), NCHW or NHWC, with arbitrary
 * (non-integer, also downscaling) scales: nearest with every nearest_mode and linear (bilinear), with
 * the coordinate_transformation_mode values half_pixel, half_pixel_symmetric, pytorch_half_pixel,
 * align_corners, asymmetric and tf_half_pixel_for_nn. (spatial_cuda.h keeps the integer-scale nearest
 * fast path YOLO uses; this is the general one.)
 *
 * Per output coordinate x_out, the source coordinate follows the ONNX spec, with scale = the Resize
 * `scales` value, or out / in when the model gives `sizes`:
 *   half_pixel            (x_out + 0.5) / scale - 0.5
 *   half_pixel_symmetric  as half_pixel, shifted by in/2 * (1 - out / (scale * in))
 *   pytorch_half_pixel    out > 1 ? (x_out + 0.5) / scale - 0.5 : 0
 *   align_corners         out > 1 ? x_out * (in - 1) / (out - 1) : 0
 *   asymmetric            x_out / scale
 *   tf_half_pixel_for_nn  (x_out + 0.5) / scale
 * nearest rounds it (round_prefer_floor: ties down, round_prefer_ceil: ties up, floor, ceil) and clamps
 * to [0, in-1]. linear takes floor(x) and floor(x)+1 with weights 1-f and f (f = x - floor(x)), the two
 * indices clamped to [0, in-1] (the ONNX reference's edge padding: outside the image the edge repeats).
 * Coordinates are computed in fp32 like ONNX Runtime's kernels. Not supported: cubic, tf_crop_and_resize
 * (roi, extrapolation_value), antialias, resizing N or C.
 *
 * NHWC takes pixel strides (elements between consecutive pixels, 0 = channels) as spatial_cuda.h does,
 * so x and y may be channel slices of wider (Concat) buffers. NCHW is dense.
 * fp32 or fp16 x and y (same type), math in fp32. Asynchronous, no allocation, no sync.
 */
#ifndef KILN_BACKEND_CUDA_RESIZE_CUDA_H
#define KILN_BACKEND_CUDA_RESIZE_CUDA_H

#include "backend/cuda/cuda_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_cuda_resize_mode { KILN_CUDA_RESIZE_NEAREST = 0, KILN_CUDA_RESIZE_LINEAR } kiln_cuda_resize_mode;

typedef enum kiln_cuda_resize_coord {
  KILN_CUDA_COORD_HALF_PIXEL = 0, /* ONNX default */
  KILN_CUDA_COORD_HALF_PIXEL_SYMMETRIC,
  KILN_CUDA_COORD_PYTORCH_HALF_PIXEL,
  KILN_CUDA_COORD_ALIGN_CORNERS,
  KILN_CUDA_COORD_ASYMMETRIC,
  KILN_CUDA_COORD_TF_HALF_PIXEL_FOR_NN,
} kiln_cuda_resize_coord;

typedef enum kiln_cuda_resize_nearest {
  KILN_CUDA_NEAREST_ROUND_PREFER_FLOOR = 0, /* ONNX default */
  KILN_CUDA_NEAREST_ROUND_PREFER_CEIL,
  KILN_CUDA_NEAREST_FLOOR,
  KILN_CUDA_NEAREST_CEIL,
} kiln_cuda_resize_nearest;

typedef struct kiln_cuda_resize_desc {
  int64_t batch, channels, in_h, in_w, out_h, out_w;
  float scale_h, scale_w; /* ONNX scales; 0 = out / in (the model gave sizes) */
  int nhwc;               /* 0: NCHW dense; 1: NHWC with the pixel strides below */
  int64_t in_pixel_stride, out_pixel_stride; /* NHWC only; 0 = channels */
  kiln_cuda_resize_mode mode;
  kiln_cuda_resize_coord coord;
  kiln_cuda_resize_nearest nearest; /* nearest mode only */
  kiln_cuda_dtype dtype;
} kiln_cuda_resize_desc;

kiln_status kiln_cuda_resize(const kiln_cuda_resize_desc *d, const void *x, void *y, kiln_cuda_stream stream);

#ifdef __cplusplus
}
#endif
#endif

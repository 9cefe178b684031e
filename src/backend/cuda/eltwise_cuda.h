/*
 * Elementwise and data-movement kernels of the CUDA backend: layout conversion with cast (used only at
 * the engine boundary: the GPU engine keeps activations NHWC inside), binary ops with numpy broadcast,
 * activations, Transpose, and the strided 2-D copy that Concat uses when its producers cannot write
 * into the Concat buffer directly. All run asynchronously on the given stream, allocate nothing and
 * return an error only for bad arguments or launch failures. Pointers are device pointers.
 * Simple, correct kernels first (one thread per element, grid-stride loops); tuned versions later.
 */
#ifndef KILN_BACKEND_CUDA_ELTWISE_CUDA_H
#define KILN_BACKEND_CUDA_ELTWISE_CUDA_H

#include "backend/cpu/epilogue.h"
#include "backend/cuda/cuda_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_CUDA_MAX_RANK 6

/* x: NCHW [n][c][hw] of xt -> y: NHWC [n][hw][y_pixel_stride] of yt (channels 0..c-1 of each pixel;
 * y_pixel_stride 0 = c). Casts fp32 <-> fp16 (round to nearest even) when the types differ. */
kiln_status kiln_cuda_nchw_to_nhwc(const void *x, kiln_cuda_dtype xt, void *y, kiln_cuda_dtype yt, int64_t n,
                                   int64_t c, int64_t hw, int64_t y_pixel_stride, kiln_cuda_stream stream);
/* The same, but every pixel's channels c..y_pixel_stride-1 are written as zeros: an input padded to 8
 * channels lets the stem convolution read whole 16-byte chunks (kiln_cuda_conv_desc.in_zero_padded). */
kiln_status kiln_cuda_nchw_to_nhwc_padded(const void *x, kiln_cuda_dtype xt, void *y, kiln_cuda_dtype yt, int64_t n,
                                          int64_t c, int64_t hw, int64_t y_pixel_stride, kiln_cuda_stream stream);
/* x: NHWC [n][hw][x_pixel_stride] -> y: NCHW [n][c][hw], with the same casts. */
kiln_status kiln_cuda_nhwc_to_nchw(const void *x, kiln_cuda_dtype xt, int64_t x_pixel_stride, void *y,
                                   kiln_cuda_dtype yt, int64_t n, int64_t c, int64_t hw, kiln_cuda_stream stream);

/* The same into rows `y_row_pitch` elements apart (0 = hw): y row (b, ch) starts at (b*c + ch)*y_row_pitch.
 * With y offset along the last axis this writes a slice of a LINEAR Concat along H*W in place. */
kiln_status kiln_cuda_nhwc_to_nchw_pitched(const void *x, kiln_cuda_dtype xt, int64_t x_pixel_stride, void *y,
                                           kiln_cuda_dtype yt, int64_t n, int64_t c, int64_t hw, int64_t y_row_pitch,
                                           kiln_cuda_stream stream);

/* The same, with an activation applied on the way (YOLO's class scores: Sigmoid after the Concat). */
kiln_status kiln_cuda_nhwc_to_nchw_act(const void *x, kiln_cuda_dtype xt, int64_t x_pixel_stride, void *y,
                                       kiln_cuda_dtype yt, int64_t n, int64_t c, int64_t hw, int64_t y_row_pitch,
                                       kiln_epilogue act, kiln_cuda_stream stream);

/* One NHWC map of kiln_cuda_nhwc_to_nchw_maps. */
typedef struct kiln_cuda_nhwc_map {
  const void *x;          /* NHWC [n][hw][x_pixel_stride]; channels 0..c-1 are read */
  int64_t hw;             /* pixels per image */
  int64_t x_pixel_stride; /* 0 = c */
  int64_t y_offset;       /* elements from y to the map's first output column */
} kiln_cuda_nhwc_map;

/* Several NHWC maps of n images and c channels, all of type xt, into one LINEAR y of type yt through an
 * activation, in one launch where it can: element (b, ch, p) of map k goes to
 *   y[b*y_image_stride + ch*y_row_pitch + y_offset_k + p]        (y_image_stride 0 = c*y_row_pitch).
 * The YOLO head's spatial Concat ([N,C,H_k*W_k] maps -> [N,C,sum]) writes its whole output this way, also
 * when that output is itself a row-strided slice of a wider tensor (y_image_stride > c*y_row_pitch).
 * 16-byte loads through a shared-memory tile when every map's pixel stride, c and pointer allow. */
kiln_status kiln_cuda_nhwc_to_nchw_maps(const kiln_cuda_nhwc_map *maps, int n_maps, kiln_cuda_dtype xt, void *y,
                                        kiln_cuda_dtype yt, int64_t n, int64_t c, int64_t y_row_pitch,
                                        int64_t y_image_stride, kiln_epilogue act, kiln_cuda_stream stream);

typedef enum kiln_cuda_binop {
  KILN_CUDA_ADD = 0, KILN_CUDA_SUB, KILN_CUDA_MUL, KILN_CUDA_DIV, KILN_CUDA_MAX, KILN_CUDA_MIN, KILN_CUDA_POW
} kiln_cuda_binop;

/* y = a op b with ONNX/numpy multidirectional broadcasting (dims right-aligned, 1 stretches). a, b and y
 * have type dt (math in fp32); y is dense with the broadcast shape. Ranks <= KILN_CUDA_MAX_RANK. */
kiln_status kiln_cuda_binary(kiln_cuda_binop op, kiln_cuda_dtype dt, const void *a, int a_rank,
                             const int64_t *a_dims, const void *b, int b_rank, const int64_t *b_dims, void *y,
                             kiln_cuda_stream stream);

/* y[i] = act(x[i]) for n elements (SiLU, sigmoid, ReLU, ... as in kiln_epilogue; residual fields ignored).
 * y may equal x. */
kiln_status kiln_cuda_activation(kiln_cuda_dtype dt, kiln_epilogue ep, int64_t n, const void *x, void *y,
                                 kiln_cuda_stream stream);

/* A LINEAR tensor for the row-strided entry points: a pointer, ONNX dims, and the elements between
 * consecutive indices of dim 0 (0 = dense). A row stride makes it a slice of a wider tensor along dims
 * 1.. (engine_format.h, row-strided views): a Concat member at batch > 1, or a Slice of one. */
typedef struct kiln_cuda_rows {
  const void *p;
  int rank;
  const int64_t *dims;
  int64_t row_stride;
} kiln_cuda_rows;

/* y = act(a op b) with numpy broadcasting (as kiln_cuda_binary), where a, b and y may be row-strided;
 * y's dims are the broadcast shape (rank max(a.rank, b.rank): y_row_stride steps that shape's dim 0). */
kiln_status kiln_cuda_binary_rows(kiln_cuda_binop op, kiln_cuda_dtype dt, kiln_cuda_rows a, kiln_cuda_rows b, void *y,
                                  int64_t y_row_stride, kiln_epilogue act, kiln_cuda_stream stream);
/* y = act(x) over `rows` rows of `len` elements, x rows x_row_stride apart, y rows y_row_stride apart
 * (0 = len: dense). */
kiln_status kiln_cuda_activation_rows(kiln_cuda_dtype dt, kiln_epilogue ep, int64_t rows, int64_t len, const void *x,
                                      int64_t x_row_stride, void *y, int64_t y_row_stride, kiln_cuda_stream stream);

/* Same-shape elementwise on channel-strided NHWC tensors (Concat slices): for every pixel p and channel
 * ch < c, y[p*y_ps + ch] = act(a[p*a_ps + ch] op b[p*b_ps + ch]); op < 0 means unary (b unused). */
kiln_status kiln_cuda_eltwise_nhwc(int op, kiln_epilogue act, kiln_cuda_dtype dt, int64_t pixels, int64_t c,
                                   const void *a, int64_t a_ps, const void *b, int64_t b_ps, void *y, int64_t y_ps,
                                   kiln_cuda_stream stream);

/* A fused chain of elementwise ops (cuda.pointwise): a small program over "slots". Slots 0..n_in-1 hold
 * the inputs (broadcast to the iteration shape), slot n_in + k the result of op k:
 *   slot[n_in + k] = act_k(slot[a_k] op_k slot[b_k])        (op_k < 0: act_k(slot[a_k]))
 * with a_k, b_k < n_in + k. Math in fp32 with IEEE-rounded +, -, *, / (never contracted into an FMA), so
 * an fp32 program gives the bytes of the same ops run one by one. */
#define KILN_CUDA_PW_MAX_IN 8
#define KILN_CUDA_PW_MAX_OPS 16
#define KILN_CUDA_PW_MAX_OUT 8
typedef struct kiln_cuda_pw_op {
  int32_t op;   /* kiln_cuda_binop, or -1: unary (the activation alone) */
  int32_t a, b; /* operand slots (b unused for unary) */
  int32_t reserved;
  kiln_epilogue act; /* applied to the result (residual fields unused) */
} kiln_cuda_pw_op;

/* Runs the program over every element of the shape dims[rank] (rank 1..KILN_CUDA_MAX_RANK): loads each
 * input once (numpy-broadcast, possibly row-strided), keeps the intermediates in registers, and stores
 * slot out_slot[k] into out[k] (all of the iteration shape, type dt; row-strided when
 * out_row_stride[k] != 0). Inputs have type dt too. Checks the program; allocates nothing. */
kiln_status kiln_cuda_pointwise(kiln_cuda_dtype dt, int rank, const int64_t *dims, int n_in, const kiln_cuda_rows *in,
                                int n_ops, const kiln_cuda_pw_op *ops, int n_out, void *const *out,
                                const int64_t *out_row_stride, const int32_t *out_slot, kiln_cuda_stream stream);

/* y = transpose(x, perm): y's dim i is x's dim perm[i]. Any element size of 1, 2, 4 or 8 bytes. */
kiln_status kiln_cuda_transpose(size_t elem_size, int rank, const int64_t *x_dims, const int32_t *perm,
                                const void *x, void *y, kiln_cuda_stream stream);

/* rows x row_bytes block copy between pitched device buffers (a kernel: 16-byte units where aligned). Concat of
 * NHWC along channels: rows = pixels, row_bytes = this input's channels * elem size, dst = buffer +
 * channel offset, dst_pitch = total channels * elem size. Concat of NCHW along axis a: rows = outer
 * (product of dims before a), row_bytes = dims[a..] * elem size. */
kiln_status kiln_cuda_copy_2d(void *dst, size_t dst_pitch, const void *src, size_t src_pitch, size_t row_bytes,
                              size_t rows, kiln_cuda_stream stream);

#ifdef __cplusplus
}
#endif
#endif

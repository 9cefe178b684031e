/*
 * General data movement of the CUDA backend, by element size only (1, 2, 4 or 8 bytes: any dtype):
 *
 * - kiln_cuda_strided_copy: dst[i] = src[src_offset + sum_d i_d * src_strides[d]] over an N-D index
 *   i (rank <= KILN_CUDA_COPY_MAX_RANK), with signed element strides. One kernel covers
 *     Slice      strides = step_d * dense_stride_d (negative steps too), offset = the start element;
 *     Split      a Slice per output (at batch > 1 the pieces are not contiguous);
 *     Expand     stride 0 on the broadcast dims;
 *     Tile       dims {r0, d0, r1, d1, ...} with stride 0 on each repeat dim r (dst dense is exactly
 *                Tile's output order), so rank-4 Tile uses rank 8;
 *     Transpose  strides permuted (eltwise_cuda.h has a dedicated one as well).
 *   dst may be strided too (dst_strides, NULL = dense), so a slice can land inside a Concat buffer.
 *   Adjacent dims that are contiguous in both src and dst are merged on the host first, so a plain
 *   Slice of rows becomes a short 2-D copy.
 * - kiln_cuda_gather: Gather along one axis with device int64 indices (constant indices are uploaded
 *   with the weights).
 * - kiln_cuda_pad: ONNX Pad (constant, edge, reflect) on a dense N-D tensor, negative pads crop.
 *
 * Asynchronous on the given stream, no allocation, no sync; errors only for bad arguments or launches.
 * Element offsets are 64-bit. src and dst must not overlap.
 */
#ifndef KILN_BACKEND_CUDA_COPY_CUDA_H
#define KILN_BACKEND_CUDA_COPY_CUDA_H

#include "backend/cuda/cuda_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_CUDA_COPY_MAX_RANK 8

/* dims: the copied (output) shape; src_strides / dst_strides in elements (dst_strides NULL = dense). */
kiln_status kiln_cuda_strided_copy(size_t elem_size, int rank, const int64_t *dims, const void *src,
                                   int64_t src_offset, const int64_t *src_strides, void *dst,
                                   const int64_t *dst_strides, kiln_cuda_stream stream);

/* x viewed as [outer][axis_len][inner], y as [outer][n_indices][inner]:
 * y[o][j][i] = x[o][idx[j] (+ axis_len if negative)][i]. Indices must lie in [-axis_len, axis_len):
 * the engine checks constant indices at build time; an out-of-range index here reads nothing and writes
 * zero bytes (a kernel cannot report an error). */
kiln_status kiln_cuda_gather(size_t elem_size, int64_t outer, int64_t axis_len, int64_t inner, const void *x,
                             const int64_t *indices, int64_t n_indices, void *y, kiln_cuda_stream stream);

typedef enum kiln_cuda_pad_mode { KILN_CUDA_PAD_CONSTANT = 0, KILN_CUDA_PAD_EDGE, KILN_CUDA_PAD_REFLECT } kiln_cuda_pad_mode;

/* y = Pad(x): x dense with in_dims, y dense with out_dims[d] = in_dims[d] + pads_begin[d] + pads_end[d]
 * (pads may be negative: crop). value: host pointer to one element (elem_size bytes) for constant mode,
 * NULL = zero bytes. Reflect needs in_dims[d] >= 2 on padded dims (as ONNX; a 1-wide dim repeats). */
kiln_status kiln_cuda_pad(size_t elem_size, kiln_cuda_pad_mode mode, int rank, const int64_t *in_dims,
                          const int64_t *pads_begin, const int64_t *pads_end, const void *value, const void *x,
                          void *y, kiln_cuda_stream stream);

#ifdef __cplusplus
}
#endif
#endif

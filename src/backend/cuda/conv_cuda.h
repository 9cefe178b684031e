/*
 * 2-D convolution on the GPU, NHWC, independent of the graph IR (shapes in, kernels out), mirroring the
 * CPU API of backend/cpu/conv_fast.h so the engine glue drives both the same way.
 *
 * Usage (build time on the host, then every run on a stream):
 *   kiln_cuda_conv_desc d = {...};
 *   KILN_TRY(kiln_cuda_conv_validate(&d));
 *   void *blob = malloc(kiln_cuda_conv_packed_size(&d));
 *   KILN_TRY(kiln_cuda_conv_pack(&d, weights, bias, blob));    // host; store blob in the engine file
 *   cudaMemcpy(dev_blob, blob, size, ...);                       // once per engine (256-byte aligned)
 *   KILN_TRY(kiln_cuda_conv_run(&d, dev_blob, x, residual, y, ws, stream)); // async, no alloc, no sync
 *
 * Paths (kiln_cuda_conv_kernel_name says which):
 *   - "conv_igemm_mma.f16.<BM>x<BN>x32.s<stages>[.sk<S>]": group 1, fp16 activations and weights, fp32
 *     accumulation on tensor cores (mma.sync m16n8k16, ldmatrix, cp.async multi-stage pipeline).
 *     Implicit GEMM: M = batch*OH*OW output pixels, N = OC, K = KH*KW*IC in (kh, kw, ic) order, so with
 *     NHWC input and IC % 8 == 0 (or in_zero_padded) every aligned 8-wide K chunk is 16 contiguous bytes
 *     of one input pixel. The tile and the split-K factor S are chosen per layer (heuristic or d->tactic).
 *   - "conv_igemm_mma.f16.64x64x32.s3.gather": the same for IC % 8 != 0: a scalar gather of A.
 *   - "conv_igemm_fma.f32": group 1, fp32 everywhere, plain FMA (no TF32): the exact path of fp32 engines.
 *   - "conv_direct.{f16,f32}": any group (depthwise, grouped): one thread per output, fp32 accumulation.
 *   - "conv_direct_nchw.{f16,f32}" (in_layout_nchw): group 1, in_c <= 4, LINEAR NCHW input (fp32/fp16),
 *     fp32 weights and accumulation; the first layer reading the network input (conv_stem_cuda.cu).
 * Every path fuses the epilogue: + bias, residual add (before or after the activation, per kiln_epilogue),
 * activation (kiln_act), and the store at a channel offset / with a channel stride into a wider tensor
 * (a Concat buffer written in place).
 */
#ifndef KILN_BACKEND_CUDA_CONV_CUDA_H
#define KILN_BACKEND_CUDA_CONV_CUDA_H

#include "backend/cpu/epilogue.h"
#include "backend/cuda/cuda_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_cuda_conv_desc {
  int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w;
  /* Top/left pads only: the output size (given) decides the rest; outside the input reads as zero. */
  int64_t pad_top, pad_left;
  int64_t dilation_h, dilation_w, group;
  /* NHWC tensors whose pixels may be wider than their channels (channel slices of bigger tensors,
   * Split/Concat views): elements between consecutive pixels; 0 means dense (in_c / out_c). The x,
   * residual and y pointers given to run() already point at the slice's first channel; out_c_offset
   * is a convenience added to y (in elements) so a Concat member can be written with the buffer base. */
  int64_t in_pixel_stride, out_pixel_stride, residual_pixel_stride;
  int64_t out_c_offset;
  /* KILN_CUDA_F16: x, weights fp16 (tensor cores), y and residual of out_dtype.
   * KILN_CUDA_F32: x, y, residual, weights fp32 (out_dtype must be F32). */
  kiln_cuda_dtype compute;
  kiln_cuda_dtype out_dtype;
  int has_bias, has_residual;
  kiln_epilogue epilogue;
  /* Input channel padding promise (fp16 tensor-core path; other paths ignore it). When set,
   * in_pixel_stride % 8 == 0 and channels in_c .. round_up(in_c, 8) - 1 of every input pixel are ZERO
   * (finite zeros, not garbage), so the kernel reads whole 8-channel (16-byte) chunks: the network input
   * written as NHWC with pixel stride 8 and channels 3..7 zero gives the IC=3 stem the 16-byte-load path.
   * The packed blob then has zero weights for the padding channels (it depends on this flag). */
  int in_zero_padded;
  /* 0: the built-in heuristic picks the tile and split-K (the normal case). 1..kiln_cuda_conv_tactic_count(d):
   * force that candidate (for tactic timing by the builder and for tests). The packed blob does not depend
   * on it; workspace_size and kernel_name do. */
  int tactic;
  /* 1: x is a LINEAR NCHW tensor [batch][in_c][in_h][in_w] of in_dtype (no pixel stride, no padding), read
   * in place by the direct stem kernel "conv_direct_nchw.{f16,f32}" (group 1, in_c <= 4; check with
   * kiln_cuda_conv_nchw_supported): the network input feeds the first conv without a conversion layer.
   * That path keeps weights and accumulation fp32 whatever `compute` is; compute F16 only lets out_dtype be
   * fp16 (fp16 engines: fp32 input, fp32 accumulation, one rounding at the store). The blob depends on it. */
  int in_layout_nchw;
  kiln_cuda_dtype in_dtype; /* with in_layout_nchw: KILN_CUDA_F32 or F16; 0 means `compute` */
} kiln_cuda_conv_desc;

kiln_status kiln_cuda_conv_validate(const kiln_cuda_conv_desc *d);

/* Whether d, with in_layout_nchw set (and no input pixel stride / padding), is a valid descriptor: group 1,
 * in_c <= 4, a window whose input tile fits in 48 KB of shared memory. For the lowering's choice. */
int kiln_cuda_conv_nchw_supported(const kiln_cuda_conv_desc *d);

/* Bytes of the packed blob (weights in the path's layout + fp32 bias), a multiple of 256. The blob holds
 * numbers only (no pointers) and depends on the shapes and d->compute only, not on the device. */
size_t kiln_cuda_conv_packed_size(const kiln_cuda_conv_desc *d);

/* Host side. weights: fp32 [out_c][in_c/group][kernel_h][kernel_w] (ONNX order); bias: [out_c] or NULL.
 * fp16 paths round the weights to fp16 here (bias stays fp32). */
kiln_status kiln_cuda_conv_pack(const kiln_cuda_conv_desc *d, const float *weights, const float *bias,
                                void *packed);

/* Device scratch run() needs (256-byte aligned pointer, this many bytes): fp32 partial sums when the chosen
 * variant splits K (small grids, e.g. the 20x20 layers at batch 1), else 0. Depends on the shapes (batch
 * included) and d->tactic. run() given a NULL workspace falls back to the unsplit variant. */
size_t kiln_cuda_conv_workspace_size(const kiln_cuda_conv_desc *d);

/* Number of forceable candidates (d->tactic = 1..count) for this descriptor; 0 when the path has a single
 * kernel (fp32, grouped, the fp16 gather for IC % 8 != 0). */
int kiln_cuda_conv_tactic_count(const kiln_cuda_conv_desc *d);

/* y = epilogue(conv(x, packed)) on `stream`, asynchronously. packed: device copy of the blob, 256-byte
 * aligned. x/y/residual: device NHWC (x NCHW with in_layout_nchw). y must not overlap x; it may alias
 * residual exactly. Allocates nothing, synchronizes nothing; returns an error only for launch failures. */
kiln_status kiln_cuda_conv_run(const kiln_cuda_conv_desc *d, const void *packed, const void *x,
                               const void *residual, void *y, void *workspace, kiln_cuda_stream stream);

/* Static name of the kernel run() uses, for profiles and tactic names. */
const char *kiln_cuda_conv_kernel_name(const kiln_cuda_conv_desc *d);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Internal to the CUDA conv API (conv_cuda.cu calls these when desc->in_layout_nchw is set): the direct
 * "stem" convolution that reads a LINEAR NCHW input (fp32 or fp16) in place and writes NHWC with the usual
 * fused epilogue. It exists so the network input needs no conversion layer before the first conv: the
 * kernel reads the 3-channel input once (the old route read it, wrote an 8-channel padded NHWC copy, and
 * read that again) and writes each output pixel's channels with 16-byte stores.
 *
 * Blob: fp32 weights [OC blocks][IC*KH*KW taps][OCB] (OCB = 8 for OC <= 8, else 16; padded channels are
 * zero), then at a 256-byte boundary the fp32 bias [OC blocks * OCB]. fp32 accumulation on every dtype:
 * fp32 engines stay exact (FFMA kernels). fp16 engines take the tensor-core kernel for YOLO's stem shape (3
 * fp32 channels, 3x3 stride 2, 16-byte aligned output): input and weights rounded to fp16 per product, as
 * in every other fp16 conv; the other shapes get fp32 input and weights and one rounding at the store.
 * Kernels, from specific to general: conv_stem_s2_mma_kernel, conv_stem_s2_kernel, conv_nchw_kernel.
 */
#ifndef KILN_BACKEND_CUDA_CONV_STEM_CUDA_H
#define KILN_BACKEND_CUDA_CONV_STEM_CUDA_H

#include "backend/cuda/conv_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The in_layout_nchw / in_dtype rules on top of kiln_cuda_conv_validate's (which calls this for every
 * descriptor: without in_layout_nchw it only checks that in_dtype is unset or equal to compute). */
kiln_status kiln_cuda_conv_nchw_check(const kiln_cuda_conv_desc *d);
size_t kiln_cuda_conv_nchw_packed_size(const kiln_cuda_conv_desc *d);
/* d already validated. */
void kiln_cuda_conv_nchw_pack(const kiln_cuda_conv_desc *d, const float *weights, const float *bias, void *packed);
kiln_status kiln_cuda_conv_nchw_run(const kiln_cuda_conv_desc *d, const void *packed, const void *x,
                                    const void *residual, void *y, kiln_cuda_stream stream);
const char *kiln_cuda_conv_nchw_name(const kiln_cuda_conv_desc *d);
/* kiln_cuda_conv_nchw_run with tiles_per_block row tiles per block (0: the launch heuristic's choice), so
 * tests reach the double-buffered multi-tile loop on small shapes. */
kiln_status kiln_cuda_conv_nchw_run_tiles(const kiln_cuda_conv_desc *d, const void *packed, const void *x,
                                          const void *residual, void *y, kiln_cuda_stream stream, int tiles_per_block);

#ifdef __cplusplus
}
#endif
#endif

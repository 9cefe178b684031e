/*
 * Fast fp32 2-D convolution for the CPU backend (AVX-512 / AVX2+FMA / scalar), independent of the
 * graph IR so the engine glue, tests and benchmarks can all drive it with plain shapes.
 *
 * Usage (build time, then every run):
 *   kiln_cpu_conv_desc d = {...};                   // shapes, strides, pads, epilogue, isa
 *   KILN_TRY(kiln_cpu_conv_validate(&d));
 *   void *packed = aligned_alloc(64, kiln_cpu_conv_packed_size(&d));
 *   KILN_TRY(kiln_cpu_conv_pack(&d, weights, bias, packed));   // store `packed` in the engine file
 *   void *ws = aligned_alloc(64, kiln_cpu_conv_workspace_size(&d, n_threads));
 *   kiln_cpu_conv_run(&d, packed, x, residual, y, ws, tp);      // no allocation, no I/O
 *
 * Algorithm (why): the input of one image is copied once into the workspace, zero-padded and, for
 * stride s > 1, split into s*s phase images (phase (a,b) holds padded pixels (s*i+a, s*j+b)). In that
 * layout every kernel tap (kh,kw) is a constant offset from the output position q = oh*QW + ow
 * (QW = phase width), so the convolution is a GEMM over K = IC/group * KH * KW whose B rows are plain
 * shifted slices of the phase images: no im2col, borders handled by the zero padding, any stride,
 * dilation, and asymmetric padding. Outputs in the QW-OW junk columns are computed and dropped by
 * masked stores. 1x1 stride-1 unpadded convs skip the copy and read the input in place (a plain GEMM).
 * On AVX-512, stride-1 same-width convs also read the input in place (q = oh*W + ow, per-tap border
 * masks), and stride-2 convs with outputs >= 16 wide and >= 64 channels per group gather each 48-
 * position tile's K x 48 panel straight from the input (two masked loads + an even-column permute
 * per tap and vector, zeros outside the image) into a per-thread panel in the workspace, then run
 * the same 8 x 48 kernel over it for every channel block: no phase-image or band copies.
 * Register blocking: 8 output channels x 48 output positions (AVX-512: 24 zmm accumulators; AVX2:
 * 4 blocks of 4 x 24). Depthwise (IC/group == OC/group == 1) has its own kernel. The epilogue (bias,
 * residual, activation) is applied in registers before the single store.
 *
 * The packed blob holds floats only (no pointers), its regions start at 64-byte multiples, and its
 * layout depends on the shapes only, not on the ISA: a blob packed once runs on every ISA level.
 */
#ifndef KILN_BACKEND_CPU_CONV_FAST_H
#define KILN_BACKEND_CPU_CONV_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/cpu_caps.h"
#include "backend/cpu/epilogue.h"
#include "backend/cpu/threadpool.h"
#include "core/status.h"

typedef struct kiln_cpu_conv_desc {
  int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w;
  /* Only the top/left pads matter: the output size (given) decides how far right/down the
   * convolution reaches, and everything outside the input reads as zero. */
  int64_t pad_top, pad_left;
  int64_t dilation_h, dilation_w, group;
  /* NCHW; inside one image the channels are contiguous planes of H*W, but consecutive images may be
   * further apart (the tensor is a channel slice of a bigger one: Split/Concat views). In elements;
   * 0 means "dense" (C*H*W of that tensor). */
  int64_t in_batch_stride, out_batch_stride, residual_batch_stride;
  int has_bias, has_residual;
  kiln_epilogue epilogue;
  /* Which code path run() uses. Must not exceed what the CPU supports (kiln_cpu_isa()).
   * KILN_ISA_AVX512_VNNI runs the AVX-512 path. */
  kiln_isa isa;
} kiln_cpu_conv_desc;

/* Checks the description (positive sizes, group divides channels, output size reachable, ...). */
kiln_status kiln_cpu_conv_validate(const kiln_cpu_conv_desc *d);

/* Bytes of the packed weights (+ bias), a multiple of 64. */
size_t kiln_cpu_conv_packed_size(const kiln_cpu_conv_desc *d);

/* weights: [out_c][in_c/group][kernel_h][kernel_w]; bias: [out_c] or NULL (then zeros).
 * packed: kiln_cpu_conv_packed_size bytes, 64-byte aligned. Validates d. */
kiln_status kiln_cpu_conv_pack(const kiln_cpu_conv_desc *d, const float *weights, const float *bias,
                               void *packed);

/* Bytes of scratch run() needs (64-byte aligned); the same for any thread count. May be 0. */
size_t kiln_cpu_conv_workspace_size(const kiln_cpu_conv_desc *d, int n_threads);

/* y = epilogue(conv(x, packed)). x, residual, y: NCHW with the batch strides of d; residual is read
 * only if d->has_residual. y must not overlap x (it may alias residual exactly). tp may be NULL.
 * Thread-safe for distinct workspaces; allocates nothing. */
void kiln_cpu_conv_run(const kiln_cpu_conv_desc *d, const void *packed, const float *x,
                       const float *residual, float *y, void *workspace, kiln_threadpool *tp);

/* The kernel run() will use, e.g. "conv1x1.avx512", "conv_igemm.avx2", "conv_dw.scalar" (static
 * string), for profiles and tactic names. */
const char *kiln_cpu_conv_kernel_name(const kiln_cpu_conv_desc *d);

#endif

/*
 * 2-D pooling, NCHW fp32: MaxPool / AveragePool with any kernel, stride, pads, dilation and
 * ceil_mode, plus GlobalAveragePool / GlobalMaxPool.
 *
 * The window is a box, so both pools are separable: each output row first reduces its kernel rows
 * into a padded temporary row (vertical pass, contiguous vector loads), then reduces along the row
 * (horizontal pass; unit stride -> shifted vector loads). Padding is -inf (max) / 0 (avg) in the
 * temporary row, so there are no edge cases in the inner loops; the average divisor is the product of
 * the per-dim counts (count_include_pad counts pads, never the ceil_mode overhang, as ONNX says).
 * SPPF's MaxPool k5 s1 p2 costs 4 + 4 vector max per 16 outputs.
 *
 *   kiln_fast_pool2d_desc d = {.N=1, .C=128, .H=20, .W=20, .kh=5, .kw=5, .sh=1, .sw=1,
 *                              .pt=2, .pl=2, .pb=2, .pr=2, .dh=1, .dw=1, .is_max=1, .isa=kiln_cpu_isa()};
 *   KILN_TRY(kiln_fast_pool2d_init(&d));     // validates, computes OH/OW
 *   kiln_fast_pool2d_run(&d, x, y, tp);
 */
#ifndef KILN_BACKEND_CPU_FAST_POOL_H
#define KILN_BACKEND_CPU_FAST_POOL_H

#include "backend/cpu/fast_common.h"
#include "core/status.h"

#include <stdbool.h>

typedef struct kiln_fast_pool2d_desc {
  int64_t N, C, H, W;
  int32_t kh, kw, sh, sw, dh, dw; /* kernel, strides, dilations (>= 1) */
  int32_t pt, pl, pb, pr;         /* pads: top, left, bottom, right */
  bool is_max;
  bool count_include_pad; /* AveragePool */
  bool ceil_mode;
  /* Batch strides in elements (0 = dense C*H*W / C*OH*OW): pooling a channel slice of a bigger buffer. */
  int64_t x_batch_stride, y_batch_stride;
  kiln_isa isa;
  int64_t OH, OW; /* set by kiln_fast_pool2d_init */
} kiln_fast_pool2d_desc;

/* Longest input row (W + pads) the run path handles (its temporary row lives on the stack). */
#define KILN_FAST_POOL_MAX_ROW 4096

kiln_status kiln_fast_pool2d_init(kiln_fast_pool2d_desc *d);
void kiln_fast_pool2d_run(const kiln_fast_pool2d_desc *d, const float *x, float *y, kiln_threadpool *tp);

/* y[p] = max or mean of x[p*size .. p*size+size) for p < planes (NCHW: planes = N*C, size = H*W). */
typedef struct kiln_fast_global_pool_desc {
  int64_t planes, size;
  bool is_max;
  kiln_isa isa;
} kiln_fast_global_pool_desc;

void kiln_fast_global_pool_run(const kiln_fast_global_pool_desc *d, const float *x, float *y, kiln_threadpool *tp);

#endif

/*
 * Softmax / LogSoftmax of a contiguous fp32 tensor over one axis, viewed as [outer, axis, inner]
 * (outer = product of the dims before the axis, inner = product after; opset >= 13 semantics; for
 * opset < 13 "flatten from axis" pass axis = product of dims from the axis on and inner = 1).
 *
 * inner == 1: each row is reduced in registers (max, exp-and-sum, scale: 3 passes over an L1 row).
 * inner > 1: a block of up to 512 inner columns is processed across the whole axis, so every load is a
 * contiguous vector and the block (axis x 512 floats) stays in L1 between the three passes. exp is
 * simd_math.h's (2 ulp). y may alias x.
 */
#ifndef KILN_BACKEND_CPU_FAST_SOFTMAX_H
#define KILN_BACKEND_CPU_FAST_SOFTMAX_H

#include "backend/cpu/fast_common.h"

#include <stdbool.h>

typedef struct kiln_fast_softmax_desc {
  int64_t outer, axis, inner;
  bool log; /* LogSoftmax */
  kiln_isa isa;
} kiln_fast_softmax_desc;

void kiln_fast_softmax_run(const kiln_fast_softmax_desc *d, const float *x, float *y, kiln_threadpool *tp);

#endif

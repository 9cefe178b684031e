/*
 * Transpose (any permutation up to rank 8) of 1/2/4/8-byte elements: out.dims[i] = in.dims[perm[i]].
 * Implemented as a strided copy (fast_copy): dims that stay adjacent are merged, size-1 dims dropped,
 * so e.g. [1,84,8400] -> [1,8400,84] becomes one blocked 2-D transpose (AVX2 8x8 register tiles for
 * 4-byte elements) and [N,C,H,W] -> [N,H,W,C] a batch of [C, H*W] transposes.
 */
#ifndef KILN_BACKEND_CPU_FAST_TRANSPOSE_H
#define KILN_BACKEND_CPU_FAST_TRANSPOSE_H

#include "backend/cpu/fast_common.h"
#include "core/status.h"

typedef struct kiln_fast_transpose_desc {
  int32_t rank;
  int64_t in_dims[KILN_FAST_MAX_RANK];
  int32_t perm[KILN_FAST_MAX_RANK];
  int32_t elem_size; /* 1, 2, 4 or 8 (other sizes work too, without the register-tile path) */
  kiln_isa isa;
} kiln_fast_transpose_desc;

/* Validates rank and perm (a permutation of 0..rank-1). */
kiln_status kiln_fast_transpose_check(const kiln_fast_transpose_desc *d);
void kiln_fast_transpose_run(const kiln_fast_transpose_desc *d, const void *src, void *dst, kiln_threadpool *tp);

#endif

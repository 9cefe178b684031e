/*
 * Strided N-D copy (Concat/Split/Slice when they cannot be views, and the engine behind
 * fast_transpose): dst[i] = src[i] for every index i of a `rank`-D block, with independent element
 * strides for source and destination. Dims whose strides line up are merged first, so a copy of
 * whole contiguous rows becomes a few memcpy calls; when the source is contiguous along a dim other
 * than the destination's contiguous one, a cache-blocked 2-D transpose is used (AVX2 8x8 in-register
 * transpose for 4-byte elements).
 *
 *   kiln_fast_copy_desc d = {.rank = 3, .dims = {C, H, W}, .elem_size = 4, .isa = kiln_cpu_isa()};
 *   // copy a [C,H,W] tensor into channels [c0, c0+C) of a [Ctot,H,W] buffer (Concat):
 *   d.src_strides = {H*W, W, 1}; d.dst_strides = {H*W, W, 1};
 *   kiln_fast_copy_run(&d, src, dst + c0*H*W, tp);
 */
#ifndef KILN_BACKEND_CPU_FAST_COPY_H
#define KILN_BACKEND_CPU_FAST_COPY_H

#include "backend/cpu/fast_common.h"

typedef struct kiln_fast_copy_desc {
  int32_t rank; /* 0..KILN_FAST_MAX_RANK; 0 copies one element */
  int64_t dims[KILN_FAST_MAX_RANK];
  int64_t src_strides[KILN_FAST_MAX_RANK]; /* in elements; may be 0 (broadcast read) */
  int64_t dst_strides[KILN_FAST_MAX_RANK]; /* in elements; destinations must not overlap */
  int32_t elem_size;                       /* bytes, any size >= 1 */
  kiln_isa isa;
} kiln_fast_copy_desc;

/* Fill dst_strides (or src_strides) with the row-major strides of dims. */
void kiln_fast_contiguous_strides(int32_t rank, const int64_t *dims, int64_t *strides);
void kiln_fast_copy_run(const kiln_fast_copy_desc *d, const void *src, void *dst, kiln_threadpool *tp);

#endif

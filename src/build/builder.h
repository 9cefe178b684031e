/* Builder internals shared by the lowering files. */
#ifndef KILN_BUILD_BUILDER_H
#define KILN_BUILD_BUILDER_H

#include "backend/cpu/cpu_caps.h"
#include "build/engine_writer.h"
#include "ir/graph.h"

typedef struct kiln_lower_ctx {
  kiln_graph *g;
  const kiln_build_config *cfg;
  kiln_engine_writer *w;
  int32_t *tensor_of; /* graph value -> engine tensor id, -1 until lowered */
  uint8_t *consumed;  /* nodes already lowered as part of a fused layer */
  kiln_isa isa;       /* best ISA of the build machine (kernels may pick lower) */
  kiln_isa max_isa_used; /* recorded as the engine's target: loading refuses CPUs without it */
} kiln_lower_ctx;

bool kiln_lower_is_graph_output(const kiln_graph *g, int32_t v);
/* A VIEW tensor for value v: tensor `base` at byte offset `off` (flattened to a non-view root). */
kiln_status kiln_lower_view(kiln_lower_ctx *lc, int32_t v, int32_t base, uint64_t off);
/* Shape-only ops, Split along an outer-1 axis and contiguous Slices become views of their (already
 * lowered) input; *done = false when the node is not one of them. */
kiln_status kiln_lower_try_view(kiln_lower_ctx *lc, const kiln_node *n, bool *done);
kiln_status kiln_lower_try_split_view(kiln_lower_ctx *lc, const kiln_node *n, bool *done);
kiln_status kiln_lower_try_slice_view(kiln_lower_ctx *lc, const kiln_node *n, bool *done);
/* A Slice with unit steps on a single axis: that axis and where the slice starts (*ok = false otherwise). */
kiln_status kiln_lower_slice_axis(kiln_lower_ctx *lc, const kiln_node *n, int32_t *axis, int64_t *start, bool *ok);
/* Graph outputs that are graph inputs or constants get a copy layer (`kernel`, `params`) into their own
 * binding, named after the output + name_suffix; float_only refuses other dtypes (the GPU copy casts). */
kiln_status kiln_lower_output_copies(kiln_lower_ctx *lc, const char *kernel, const void *params, size_t params_size,
                                     const char *name_suffix, bool float_only);
/* The CUDA lowering of the whole graph (lower_cuda.c); bindings already exist. Fills the target record. */
kiln_status kiln_lower_cuda(kiln_lower_ctx *lc, kiln_target_rec *target);
kiln_status kiln_lower_tensor_of(kiln_lower_ctx *lc, int32_t v, int32_t *out);
kiln_status kiln_lower_output(kiln_lower_ctx *lc, int32_t v, int32_t *out);
/* Try to lower node `i` (and what it fuses with) to a fast CPU kernel; *done = false leaves it to ref. */
kiln_status kiln_lower_cpu_fast(kiln_lower_ctx *lc, int32_t i, bool *done);
/* The non-convolution fast kernels (lower_cpu_ops.c). */
kiln_status kiln_lower_cpu_ops(kiln_lower_ctx *lc, int32_t i, bool *done);

#endif

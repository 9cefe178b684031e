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

kiln_status kiln_lower_tensor_of(kiln_lower_ctx *lc, int32_t v, int32_t *out);
kiln_status kiln_lower_output(kiln_lower_ctx *lc, int32_t v, int32_t *out);
/* Try to lower node `i` (and what it fuses with) to a fast CPU kernel; *done = false leaves it to ref. */
kiln_status kiln_lower_cpu_fast(kiln_lower_ctx *lc, int32_t i, bool *done);
/* The non-convolution fast kernels (lower_cpu_ops.c). */
kiln_status kiln_lower_cpu_ops(kiln_lower_ctx *lc, int32_t i, bool *done);

#endif

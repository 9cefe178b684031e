/*
 * Naive reference kernels: the ground truth every fast kernel (CPU or CUDA) is tested against, and
 * what constant folding evaluates constant subgraphs with. Simple loops over kiln_tensor views;
 * correctness and clarity over speed. One file per op family (reference/<family>.c).
 *
 * Contract: `in` has n->n_inputs entries (an omitted optional input has data == NULL and dtype
 * UNDEFINED); `out` has n->n_outputs entries whose dtype, rank, dims were set from shape inference
 * and whose data buffers are allocated by the caller (kiln_tensor_nbytes each). Kernels must fully
 * write every output element. Unsupported dtype/attribute combinations return KILN_ERR_UNSUPPORTED.
 */
#ifndef KILN_BACKEND_CPU_REFERENCE_H
#define KILN_BACKEND_CPU_REFERENCE_H

#include "ir/graph.h"

kiln_status kiln_reference_run(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out);

#define KILN_X_REF_DECL(family)                                                                      \
  kiln_status kiln_ref_##family(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out);
KILN_FAMILY_LIST(KILN_X_REF_DECL)
#undef KILN_X_REF_DECL

#endif

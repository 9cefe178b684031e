/* Single-node evaluation, shared by constant folding and the node-test checker. */
#ifndef KILN_PASSES_FOLD_H
#define KILN_PASSES_FOLD_H

#include "ir/graph.h"

bool kiln_node_inputs_constant(const kiln_graph *g, const kiln_node *n);
/* Infer the node's outputs from its (constant) inputs, evaluate it with the reference kernel, and make
 * its outputs constants. The node itself stays; the caller decides whether to drop it.
 * KILN_ERR_UNSUPPORTED: it cannot be evaluated (no kernel, non-static output, too large). */
kiln_status kiln_fold_node(kiln_graph *g, int32_t node_id);

#endif

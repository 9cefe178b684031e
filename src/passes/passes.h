/*
 * Graph passes. Each takes a graph whose nodes are parsed (and, unless noted, shape-inferred), rewrites
 * it in place, and leaves it valid: parsed, inferred, topologically sorted, compacted.
 */
#ifndef KILN_PASSES_PASSES_H
#define KILN_PASSES_PASSES_H

#include "ir/graph.h"

/* Order nodes so every node comes after the producers of its inputs (stable: keeps the model's order
 * where it is already valid). Error naming a node on a cycle. Needs no shapes. */
kiln_status kiln_pass_toposort(kiln_graph *g);
/* Evaluate nodes whose inputs are all constant with the reference kernels; their outputs become
 * constants and the nodes are removed. *folded (may be NULL) = number of nodes folded. */
kiln_status kiln_pass_fold_constants(kiln_graph *g, int *folded);
/* Remove nodes whose outputs nobody uses, and unused constants. */
kiln_status kiln_pass_cleanup(kiln_graph *g, int *removed);
/* Remove no-op nodes: Identity, Dropout (inference), Reshape/Expand/Cast/Squeeze/... to the same shape
 * and type, Concat/Sum/... of one input, Pad with zero pads, Slice of everything, Transpose identity. */
kiln_status kiln_pass_eliminate_noops(kiln_graph *g, int *removed);
/* Fold BatchNormalization (inference) into the Conv that feeds it, when the Conv has no other user. */
kiln_status kiln_pass_fuse_conv_bn(kiln_graph *g, int *fused);
/* Make the batch dimension `batch` (> 0), or dynamic (batch == 0, symbol "batch"): rewrites graph inputs
 * and every constant that carries the old batch size into a shape (Reshape targets, Expand/Tile/...),
 * then re-infers shapes. */
kiln_status kiln_pass_rebatch(kiln_graph *g, int64_t batch);

/* The default optimization pipeline used by `surgeon sanitize --fold-constants --cleanup` and the builder:
 * fold, eliminate no-ops, cleanup, toposort, repeated until nothing changes. */
kiln_status kiln_passes_simplify(kiln_graph *g);

#endif

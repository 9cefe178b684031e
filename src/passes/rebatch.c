/*
 * Re-batching: turn a model exported at a fixed batch (usually 1) into one with batch N or a dynamic
 * batch. Graph inputs get the new leading dim. Shape subgraphs are folded first (they are computed from
 * the old static shapes), which leaves the batch as a literal in constant shape tensors; each Reshape
 * target whose first element equals the old batch gets the new one (N, or for a dynamic batch 0 = "copy
 * from the input", or -1 when the input's first dim is not the batch). Shapes are then re-inferred, which
 * fails with a clear message if something else still pins the old batch.
 */
#include "passes/passes.h"

#include "core/dtype.h"
#include "ir/infer_util.h"
#include "onnx/onnx.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kiln_status patch_reshape(kiln_graph *g, kiln_node *n, int64_t old_batch, int64_t batch, int32_t batch_sym) {
  const kiln_value *sv = kiln_node_input(g, n, 1);
  if (!sv || !sv->data || sv->shape.rank != 1 || sv->shape.dims[0] < 1 || !kiln_dtype_is_int(sv->dtype)) return NULL;
  int64_t len = sv->shape.dims[0];
  if (len > KILN_MAX_RANK) return NULL;
  int64_t target[KILN_MAX_RANK];
  for (int64_t i = 0; i < len; i++) target[i] = kiln_dtype_load_i64(sv->dtype, sv->data, i);
  if (target[0] != old_batch) return NULL;
  if (batch > 0) {
    target[0] = batch;
  } else {
    const kiln_value *x = kiln_node_input(g, n, 0);
    bool has_minus1 = false;
    for (int64_t i = 1; i < len; i++) has_minus1 |= target[i] == -1;
    int64_t allowzero = 0;
    KILN_TRY(kiln_node_get_int(n, "allowzero", 0, &allowzero));
    if (!allowzero && x && x->shape.rank >= 1 && x->shape.dims[0] < 0 && x->shape.sym[0] == batch_sym)
      target[0] = 0; /* copy the (dynamic) batch from the input */
    else if (!has_minus1)
      target[0] = -1;
    else
      return kiln_error(KILN_ERR_UNSUPPORTED,
                        "cannot make the batch of Reshape '%s' dynamic: its target has -1 elsewhere and its input's "
                        "first dim is not the batch", n->name);
  }
  /* A fresh constant per Reshape: the original may be shared with nodes that must keep it. */
  char hint[256];
  snprintf(hint, sizeof hint, "%.200s_shape", n->name);
  int32_t id;
  KILN_TRY(kiln_graph_add_fresh_value(g, hint, &id));
  kiln_shape s;
  kiln_shape_init(&s, 1, &len);
  KILN_TRY(kiln_value_set_constant(g, id, KILN_DTYPE_INT64, &s, target));
  g->values[id].flags |= KILN_VALUE_INITIALIZER;
  n->inputs[1] = id;
  return NULL;
}

kiln_status kiln_pass_rebatch(kiln_graph *g, int64_t batch) {
  if (batch < 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "batch must be positive or 0 for dynamic, got %" PRId64, batch);
  if (g->n_inputs == 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "the model has no inputs to re-batch");
  int64_t old_batch = -1;
  for (int32_t k = 0; k < g->n_inputs; k++) {
    const kiln_value *v = &g->values[g->inputs[k]];
    if (v->shape.rank < 1)
      return kiln_error(KILN_ERR_UNSUPPORTED, "input '%s' has no batch dimension (rank %d)", v->name, v->shape.rank);
    if (v->shape.dims[0] >= 0) {
      if (old_batch >= 0 && old_batch != v->shape.dims[0])
        return kiln_error(KILN_ERR_UNSUPPORTED, "inputs disagree on the batch (%" PRId64 " vs %" PRId64 ")", old_batch,
                          v->shape.dims[0]);
      old_batch = v->shape.dims[0];
    }
  }
  /* Fold shape subgraphs while the old shapes are still static, then patch the literals they left. */
  int folded = 0;
  KILN_TRY(kiln_pass_fold_constants(g, &folded));
  int32_t sym = -1;
  if (batch == 0) KILN_TRY(kiln_graph_add_symbol(g, "batch", &sym));
  for (int32_t k = 0; k < g->n_inputs; k++) {
    kiln_value *v = &g->values[g->inputs[k]];
    v->shape.dims[0] = batch > 0 ? batch : KILN_DIM_DYNAMIC;
    v->shape.sym[0] = batch > 0 ? -1 : sym;
  }
  /* Reset inferred shapes of computed values so stale batch-1 shapes cannot survive. */
  for (int32_t v = 0; v < g->n_values; v++)
    if (!g->values[v].data && g->values[v].producer >= 0) kiln_shape_unknown(&g->values[v].shape);
  if (old_batch >= 0) {
    for (int32_t i = 0; i < g->n_nodes; i++) {
      kiln_node *n = &g->nodes[i];
      if (n->dead) continue;
      /* Infer as we go so a Reshape sees whether its input's first dim is the new batch. */
      if (n->op == KILN_OP_Reshape) KILN_TRY(patch_reshape(g, n, old_batch, batch, sym));
      KILN_TRY(kiln_node_infer(g, n));
    }
  }
  KILN_TRY(kiln_pass_cleanup(g, NULL));
  return kiln_error_prefix(kiln_graph_infer_shapes(g), "after re-batching: ");
}

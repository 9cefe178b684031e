/*
 * Constant folding: a node whose inputs are all constants is evaluated once, here, with the reference
 * kernels, and its outputs become constants (initializers on export). Shape subgraphs
 * (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) disappear this way.
 */
#include "passes/passes.h"

#include "backend/cpu/reference/reference.h"
#include "passes/fold.h"

#include <stdlib.h>
#include <string.h>

/* Large folded outputs would bloat the model (e.g. Expand of a constant into a huge tensor); above
 * this many bytes the node stays, as onnx-simplifier and polygraphy do by default. */
#define FOLD_MAX_OUTPUT_BYTES ((size_t)64 << 20)

bool kiln_node_inputs_constant(const kiln_graph *g, const kiln_node *n) {
  for (int32_t k = 0; k < n->n_inputs; k++)
    if (n->inputs[k] >= 0 && !g->values[n->inputs[k]].data) return false;
  return true;
}

kiln_status kiln_fold_node(kiln_graph *g, int32_t node_id) {
  kiln_node *n = &g->nodes[node_id];
  KILN_TRY(kiln_node_infer(g, n));
  /* Shape/Size/Constant may have produced their constant data during inference. */
  bool all_done = true;
  for (int32_t o = 0; o < n->n_outputs; o++)
    if (n->outputs[o] >= 0 && !g->values[n->outputs[o]].data) all_done = false;
  if (all_done) return NULL;
  kiln_tensor in[64], *out = NULL;
  if (n->n_inputs > 64) return kiln_error(KILN_ERR_UNSUPPORTED, "node '%s' has too many inputs to fold", n->name);
  for (int32_t k = 0; k < n->n_inputs; k++) {
    memset(&in[k], 0, sizeof in[k]);
    if (n->inputs[k] >= 0) kiln_value_as_tensor(&g->values[n->inputs[k]], &in[k]);
  }
  out = calloc((size_t)(n->n_outputs ? n->n_outputs : 1), sizeof(kiln_tensor));
  KILN_CHECK_ALLOC(out);
  kiln_status st = NULL;
  for (int32_t o = 0; o < n->n_outputs && !st; o++) {
    const kiln_value *v = kiln_node_output(g, n, o);
    if (!v) continue; /* omitted optional output: kernels see a NULL data pointer */
    if (!kiln_shape_is_static(&v->shape) || v->dtype == KILN_DTYPE_UNDEFINED) {
      st = kiln_error(KILN_ERR_UNSUPPORTED, "output '%s' of '%s' has no static shape", v->name, n->name);
      break;
    }
    kiln_value_as_tensor(v, &out[o]);
    size_t nb = kiln_tensor_nbytes(&out[o]);
    if (nb > FOLD_MAX_OUTPUT_BYTES) {
      st = kiln_error(KILN_ERR_UNSUPPORTED, "output '%s' is too large to fold", v->name);
      break;
    }
    out[o].data = malloc(nb ? nb : 1);
    if (!out[o].data) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory folding '%s'", n->name);
    else memset(out[o].data, 0xAB, nb ? nb : 1); /* poison: a kernel that skips elements shows up */
  }
  if (!st) st = kiln_reference_run(g, n, in, out);
  for (int32_t o = 0; o < n->n_outputs; o++) {
    if (!out[o].data) continue;
    if (st) {
      free(out[o].data);
      continue;
    }
    kiln_shape s;
    kiln_shape_init(&s, out[o].rank, out[o].dims);
    st = kiln_value_take_constant(g, n->outputs[o], out[o].dtype, &s, out[o].data);
  }
  free(out);
  return st;
}

kiln_status kiln_pass_fold_constants(kiln_graph *g, int *folded) {
  int count = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    kiln_node *n = &g->nodes[i];
    if (n->dead) continue;
    /* Shape/Size of a static tensor are known from inference alone, though their input is not constant. */
    bool outputs_known = n->n_outputs > 0;
    for (int32_t o = 0; o < n->n_outputs; o++)
      if (n->outputs[o] < 0 || !g->values[n->outputs[o]].data) outputs_known = false;
    if (outputs_known && (n->op == KILN_OP_Shape || n->op == KILN_OP_Size)) {
      n->dead = true;
      count++;
      continue;
    }
    if (!kiln_node_inputs_constant(g, n)) continue;
    kiln_status st = kiln_fold_node(g, i);
    if (st) {
      /* Not foldable (no reference kernel yet, too large, data-dependent): leave the node in place. */
      if (kiln_status_get_code(st) == KILN_ERR_UNSUPPORTED) {
        kiln_status_destroy(st);
        continue;
      }
      return st;
    }
    n->dead = true;
    count++;
  }
  if (count) {
    /* Folded outputs are constants now; mark them like initializers so export writes them as such. */
    for (int32_t v = 0; v < g->n_values; v++)
      if (g->values[v].data) g->values[v].flags |= KILN_VALUE_INITIALIZER;
    KILN_TRY(kiln_graph_compact(g));
  }
  if (folded) *folded = count;
  return NULL;
}

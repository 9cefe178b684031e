/*
 * No-op elimination: nodes that pass their first input through unchanged are removed and their
 * consumers read the input directly. A node qualifies when it is a pure pass-through by definition
 * (Identity, Dropout in inference, one-input Concat/Sum/Min/Max/Mean) or when its output provably equals
 * its input: same dtype and static shape for the shape-only ops (Reshape, Flatten, Squeeze, Unsqueeze,
 * Expand), same dtype for Cast/CastLike, an identity permutation for Transpose, and all-zero pads, unit
 * steps or unit repeats for Pad, Slice and Tile.
 */
#include "passes/passes.h"

#include <string.h>

static bool same_type_and_shape(const kiln_graph *g, const kiln_node *n) {
  const kiln_value *in = kiln_node_input(g, n, 0), *out = kiln_node_output(g, n, 0);
  return in && out && in->dtype == out->dtype && in->dtype != KILN_DTYPE_UNDEFINED &&
         kiln_shape_is_static(&in->shape) && kiln_shape_equal(&in->shape, &out->shape);
}

/* Every element of constant input i (or of ints attribute `attr` when the input is absent) equals v. */
static bool all_equal(const kiln_graph *g, const kiln_node *n, int i, const char *attr, int64_t v) {
  int64_t buf[64], cnt = 0;
  const kiln_value *x = kiln_node_input(g, n, i);
  if (x) {
    kiln_status st = kiln_value_read_ints(x, buf, 64, &cnt);
    if (st) {
      kiln_status_destroy(st);
      return false;
    }
  } else if (attr) {
    const int64_t *a;
    size_t c;
    kiln_status st = kiln_node_get_ints(n, attr, &a, &c);
    if (st || c > 64) {
      kiln_status_destroy(st);
      return false;
    }
    memcpy(buf, a, c * sizeof(int64_t));
    cnt = (int64_t)c;
  }
  for (int64_t k = 0; k < cnt; k++)
    if (buf[k] != v) return false;
  return true;
}

static bool only_first_output_used(const kiln_graph *g, const kiln_node *n) {
  for (int32_t k = 1; k < n->n_outputs; k++)
    if (n->outputs[k] >= 0 && kiln_graph_count_uses(g, n->outputs[k]) > 0) return false;
  return true;
}

static bool is_noop(const kiln_graph *g, const kiln_node *n) {
  int live_inputs = 0;
  for (int32_t k = 0; k < n->n_inputs; k++) live_inputs += n->inputs[k] >= 0;
  switch (n->op) {
  case KILN_OP_Identity: return true;
  case KILN_OP_Dropout: {
    /* inference mode: training_mode input absent or constant false */
    if (!all_equal(g, n, 2, NULL, 0)) return false;
    return only_first_output_used(g, n);
  }
  case KILN_OP_Concat: case KILN_OP_Sum: case KILN_OP_Min: case KILN_OP_Max: case KILN_OP_Mean:
    return live_inputs == 1 && same_type_and_shape(g, n);
  case KILN_OP_Reshape: case KILN_OP_Flatten: case KILN_OP_Squeeze: case KILN_OP_Unsqueeze:
  case KILN_OP_Expand:
    return same_type_and_shape(g, n);
  case KILN_OP_Cast: case KILN_OP_CastLike: {
    const kiln_value *in = kiln_node_input(g, n, 0), *out = kiln_node_output(g, n, 0);
    return in && out && in->dtype == out->dtype && in->dtype != KILN_DTYPE_UNDEFINED;
  }
  case KILN_OP_Transpose: {
    const int64_t *perm;
    size_t c;
    kiln_status st = kiln_node_get_ints(n, "perm", &perm, &c);
    if (st) {
      kiln_status_destroy(st);
      return false;
    }
    if (c == 0) return same_type_and_shape(g, n) && kiln_node_input(g, n, 0)->shape.rank <= 1;
    for (size_t k = 0; k < c; k++)
      if (perm[k] != (int64_t)k) return false;
    return true;
  }
  case KILN_OP_Pad: /* all-zero pads; opset < 11 keeps them in an attribute */
    return same_type_and_shape(g, n) && all_equal(g, n, g->opset >= 11 ? 1 : -1, "pads", 0);
  case KILN_OP_Slice: /* same shape and unit steps: it selects everything in order */
    return same_type_and_shape(g, n) && (g->opset < 10 || all_equal(g, n, 4, NULL, 1));
  case KILN_OP_Tile:
    return same_type_and_shape(g, n) && all_equal(g, n, 1, NULL, 1);
  default: return false;
  }
}

static bool is_graph_output(const kiln_graph *g, int32_t v) {
  for (int32_t k = 0; k < g->n_outputs; k++)
    if (g->outputs[k] == v) return true;
  return false;
}

static bool is_graph_input(const kiln_graph *g, int32_t v) {
  for (int32_t k = 0; k < g->n_inputs; k++)
    if (g->inputs[k] == v) return true;
  return false;
}

kiln_status kiln_pass_eliminate_noops(kiln_graph *g, int *removed) {
  int count = 0;
  kiln_graph_update_producers(g);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    kiln_node *n = &g->nodes[i];
    if (n->dead || n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1 || n->outputs[0] < 0) continue;
    if (!is_noop(g, n)) continue;
    int32_t in = n->inputs[0], out = n->outputs[0];
    if (!is_graph_output(g, out)) {
      kiln_graph_replace_uses(g, out, in);
    } else {
      /* The output name is part of the model's interface: keep it by making the input's producer
       * write it directly. Not possible when the input is itself an interface tensor or a constant. */
      int32_t p = g->values[in].producer;
      if (p < 0 || is_graph_output(g, in) || is_graph_input(g, in) || g->values[in].data) continue;
      kiln_node *pn = &g->nodes[p];
      for (int32_t k = 0; k < pn->n_outputs; k++)
        if (pn->outputs[k] == in) pn->outputs[k] = out;
      n->dead = true; /* before replace_uses, so this node's own input is not rewritten to a self-loop */
      kiln_graph_replace_uses(g, in, out);
      g->values[out].producer = p;
      g->values[in].producer = -1;
      count++;
      continue;
    }
    n->dead = true;
    count++;
  }
  if (count) KILN_TRY(kiln_graph_compact(g));
  if (removed) *removed = count;
  return NULL;
}

/* Conv epilogue matching (see fusion.h). */
#include "build/fusion.h"

#include "ir/ops/conv.h"

#include <math.h>
#include <string.h>

/* The only consumer of value v, or -1 (none, several, or v is a graph output). */
int32_t kiln_sole_consumer(const kiln_graph *g, int32_t v) {
  for (int32_t k = 0; k < g->n_outputs; k++)
    if (g->outputs[k] == v) return -1;
  int32_t found = -1;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] == v) {
        if (found >= 0 && found != i) return -1;
        if (found == i) return -1; /* read twice by the same node (e.g. Mul(x, x)) */
        found = i;
      }
  }
  return found;
}

static int uses(const kiln_graph *g, int32_t v) { return kiln_graph_count_uses(g, v); }


/* Match an activation on value v; on success extend f and return true. */
static bool match_activation(const kiln_graph *g, int32_t v, kiln_conv_fusion *f) {
  if (uses(g, v) == 2) { /* SiLU: Sigmoid(v) and Mul(v, Sigmoid(v)) */
    int32_t sig = -1, mul = -1;
    for (int32_t i = 0; i < g->n_nodes; i++) {
      const kiln_node *n = &g->nodes[i];
      for (int32_t k = 0; k < n->n_inputs; k++) {
        if (n->inputs[k] != v) continue;
        if (n->op == KILN_OP_Sigmoid) sig = i;
        else if (n->op == KILN_OP_Mul) mul = i;
      }
    }
    if (sig < 0 || mul < 0) return false;
    int32_t s = g->nodes[sig].outputs[0];
    const kiln_node *m = &g->nodes[mul];
    if (m->n_inputs != 2 || !((m->inputs[0] == v && m->inputs[1] == s) || (m->inputs[1] == v && m->inputs[0] == s)))
      return false;
    if (kiln_sole_consumer(g, s) != mul) return false;
    f->nodes[f->n_nodes++] = sig;
    f->nodes[f->n_nodes++] = mul;
    f->out = m->outputs[0];
    f->epi.act = KILN_ACT_SILU;
    return true;
  }
  int32_t c = kiln_sole_consumer(g, v);
  if (c < 0) return false;
  const kiln_node *n = &g->nodes[c];
  float a = 0, b = 0;
  kiln_act act;
  switch (n->op) {
  case KILN_OP_Relu: act = KILN_ACT_RELU; break;
  case KILN_OP_Sigmoid: act = KILN_ACT_SIGMOID; break;
  case KILN_OP_Tanh: act = KILN_ACT_TANH; break;
  case KILN_OP_HardSwish: act = KILN_ACT_HARDSWISH; break;
  case KILN_OP_LeakyRelu: {
    kiln_status st = kiln_node_get_float(n, "alpha", 0.01f, &a);
    if (st) {
      kiln_status_destroy(st);
      return false;
    }
    act = KILN_ACT_LEAKY_RELU;
    break;
  }
  case KILN_OP_Clip: {
    a = -INFINITY, b = INFINITY;
    if (g->opset < 11) {
      kiln_status st = kiln_node_get_float(n, "min", -INFINITY, &a);
      if (!st) st = kiln_node_get_float(n, "max", INFINITY, &b);
      if (st) {
        kiln_status_destroy(st);
        return false;
      }
    } else {
      for (int k = 1; k <= 2; k++) {
        const kiln_value *bv = kiln_node_input(g, n, k);
        if (!bv) continue;
        if (!bv->data || bv->dtype != KILN_DTYPE_FLOAT32 || kiln_shape_numel(&bv->shape) != 1) return false;
        *(k == 1 ? &a : &b) = *(const float *)bv->data;
      }
    }
    act = KILN_ACT_CLIP;
    break;
  }
  default: return false;
  }
  if (n->outputs[0] < 0) return false;
  f->nodes[f->n_nodes++] = c;
  f->out = n->outputs[0];
  f->epi.act = act;
  f->epi.alpha = a;
  f->epi.beta = b;
  return true;
}

/* Add(out, r) with r computed before the Conv (so it is ready when the fused layer runs). */
static void match_residual(const kiln_graph *g, int32_t conv_index, kiln_conv_fusion *f) {
  int32_t c = kiln_sole_consumer(g, f->out);
  if (c < 0) return;
  const kiln_node *n = &g->nodes[c];
  if (n->op != KILN_OP_Add || n->n_inputs != 2 || n->outputs[0] < 0) return;
  int32_t r = n->inputs[0] == f->out ? n->inputs[1] : n->inputs[0];
  const kiln_value *rv = &g->values[r], *ov = &g->values[f->out];
  if (r < 0 || rv->data || rv->dtype != KILN_DTYPE_FLOAT32 || !kiln_shape_equal(&rv->shape, &ov->shape)) return;
  if (rv->producer >= conv_index) return;
  f->nodes[f->n_nodes++] = c;
  f->residual = r;
  f->out = n->outputs[0];
}

void kiln_match_conv_epilogue(const kiln_graph *g, int32_t conv_index, kiln_conv_fusion *f) {
  memset(f, 0, sizeof *f);
  f->nodes[0] = conv_index;
  f->n_nodes = 1;
  f->out = g->nodes[conv_index].outputs[0];
  f->residual = -1;
  if (!match_activation(g, f->out, f)) f->epi.act = KILN_ACT_NONE;
  match_residual(g, conv_index, f);
}

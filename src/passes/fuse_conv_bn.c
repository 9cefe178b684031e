/*
 * Conv + BatchNormalization folding. In inference BN is y = (x - mean) * s + B with s = scale/sqrt(var+eps),
 * a per-channel affine map, so it folds into the Conv before it:
 *   W'[o] = W[o] * s[o],   b'[o] = (b[o] - mean[o]) * s[o] + B[o]
 * New constant values are made for W' and b' (the originals may be shared with other nodes).
 * Conditions: Conv weights/bias and all BN parameters are constants; the Conv output feeds only the BN;
 * the BN is in inference mode with one output.
 */
#include "passes/passes.h"

#include "core/dtype.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static kiln_status fuse_pair(kiln_graph *g, kiln_node *conv, kiln_node *bn) {
  const kiln_value *w = kiln_node_input(g, conv, 1), *b = kiln_node_input(g, conv, 2);
  const kiln_value *scale = kiln_node_input(g, bn, 1), *bias = kiln_node_input(g, bn, 2),
                   *mean = kiln_node_input(g, bn, 3), *var = kiln_node_input(g, bn, 4);
  int64_t cout = w->shape.dims[0];
  int64_t per_out = kiln_shape_numel(&w->shape) / (cout ? cout : 1);
  float eps;
  KILN_TRY(kiln_node_get_float(bn, "epsilon", 1e-5f, &eps));
  double *s = malloc(sizeof(double) * (size_t)(cout ? cout : 1));
  KILN_CHECK_ALLOC(s);
  for (int64_t o = 0; o < cout; o++)
    s[o] = kiln_dtype_load_f64(scale->dtype, scale->data, o) / sqrt(kiln_dtype_load_f64(var->dtype, var->data, o) + eps);
  size_t esize = kiln_dtype_size(w->dtype);
  void *nw = malloc(w->nbytes ? w->nbytes : 1), *nb = malloc((size_t)cout * esize + 1);
  if (!nw || !nb) {
    free(s);
    free(nw);
    free(nb);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory fusing '%s'", bn->name);
  }
  for (int64_t o = 0; o < cout; o++) {
    for (int64_t k = 0; k < per_out; k++) {
      int64_t i = o * per_out + k;
      kiln_dtype_store_f64(w->dtype, nw, i, kiln_dtype_load_f64(w->dtype, w->data, i) * s[o]);
    }
    double b0 = b ? kiln_dtype_load_f64(b->dtype, b->data, o) : 0.0;
    double v = (b0 - kiln_dtype_load_f64(mean->dtype, mean->data, o)) * s[o] + kiln_dtype_load_f64(bias->dtype, bias->data, o);
    kiln_dtype_store_f64(w->dtype, nb, o, v);
  }
  free(s);
  kiln_dtype wdt = w->dtype;
  kiln_shape wshape = w->shape, bshape;
  kiln_shape_init(&bshape, 1, &cout);
  char hint[256];
  snprintf(hint, sizeof hint, "%.200s.weight_bn", conv->name);
  int32_t wid, bid;
  kiln_status st = kiln_graph_add_fresh_value(g, hint, &wid);
  if (!st) st = kiln_value_take_constant(g, wid, wdt, &wshape, nw), nw = NULL;
  snprintf(hint, sizeof hint, "%.200s.bias_bn", conv->name);
  if (!st) st = kiln_graph_add_fresh_value(g, hint, &bid);
  if (!st) st = kiln_value_take_constant(g, bid, wdt, &bshape, nb), nb = NULL;
  free(nw);
  free(nb);
  KILN_TRY(st);
  g->values[wid].flags |= KILN_VALUE_INITIALIZER;
  g->values[bid].flags |= KILN_VALUE_INITIALIZER;
  /* (conv and bn still point into g->nodes: only the value array grew) */
  if (conv->n_inputs < 3) {
    int32_t *ins = realloc(conv->inputs, sizeof(int32_t) * 3);
    KILN_CHECK_ALLOC(ins);
    conv->inputs = ins;
    conv->n_inputs = 3;
  }
  conv->inputs[1] = wid;
  conv->inputs[2] = bid;
  conv->outputs[0] = bn->outputs[0];
  g->values[bn->outputs[0]].producer = (int32_t)(conv - g->nodes);
  bn->dead = true;
  return NULL;
}

static bool fusable(const kiln_graph *g, const kiln_node *conv, const kiln_node *bn) {
  if (conv->op != KILN_OP_Conv || conv->n_outputs != 1) return false;
  const kiln_value *w = kiln_node_input(g, conv, 1), *b = kiln_node_input(g, conv, 2);
  if (!w || !w->data || !kiln_dtype_is_float(w->dtype) || w->shape.rank < 1) return false;
  if (b && (!b->data || b->dtype != w->dtype || kiln_shape_numel(&b->shape) != w->shape.dims[0])) return false;
  for (int i = 1; i <= 4; i++) {
    const kiln_value *p = kiln_node_input(g, bn, i);
    if (!p || !p->data || !kiln_dtype_is_float(p->dtype) || kiln_shape_numel(&p->shape) != w->shape.dims[0]) return false;
  }
  for (int32_t k = 1; k < bn->n_outputs; k++) /* training-mode outputs (running mean/var) */
    if (bn->outputs[k] >= 0) return false;
  int64_t training = 0;
  kiln_status st = kiln_node_get_int(bn, "training_mode", 0, &training);
  kiln_status_destroy(st);
  if (training) return false;
  for (int32_t k = 0; k < g->n_outputs; k++)
    if (g->outputs[k] == conv->outputs[0]) return false;
  return kiln_graph_count_uses(g, conv->outputs[0]) == 1;
}

kiln_status kiln_pass_fuse_conv_bn(kiln_graph *g, int *fused) {
  int count = 0;
  kiln_graph_update_producers(g);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    kiln_node *bn = &g->nodes[i];
    if (bn->dead || bn->op != KILN_OP_BatchNormalization || bn->n_inputs < 5 || bn->inputs[0] < 0) continue;
    int32_t p = g->values[bn->inputs[0]].producer;
    if (p < 0 || g->nodes[p].dead || !fusable(g, &g->nodes[p], bn)) continue;
    KILN_TRY(fuse_pair(g, &g->nodes[p], bn));
    count++;
  }
  if (count) KILN_TRY(kiln_graph_compact(g));
  if (fused) *fused = count;
  return NULL;
}

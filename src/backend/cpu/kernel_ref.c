/*
 * The "ref" kernel: runs any op through its reference kernel. At load time it rebuilds a one-node graph
 * (inputs with the engine's dtypes/shapes, constant inputs with their data, the node's attributes),
 * parses and infers it - which validates the layer against the engine's records - and keeps it as the
 * layer's state. It is the fallback for ops without a fast kernel, so every op on the list runs.
 * Reference kernels may allocate internally; fast kernels replace them on hot paths.
 */
#include "backend/cpu/reference/reference.h"
#include "ir/infer_util.h"
#include "runtime/kernel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_state {
  kiln_graph *g;
} ref_state;

static void ref_release(void *p) {
  ref_state *s = p;
  if (!s) return;
  kiln_graph_destroy(s->g);
  free(s);
}

static kiln_status ref_build_graph(const kiln_engine_view *e, kiln_layer_rt *L, kiln_graph *g) {
  g->opset = e->opset;
  int32_t ins[64], outs[64];
  if (L->n_in > 64 || L->n_out > 64) return kiln_error(KILN_ERR_PARSE, "layer '%s' has too many tensors", L->name);
  for (int32_t k = 0; k < L->n_in + L->n_out; k++) {
    int32_t tid = k < L->n_in ? L->in[k] : L->out[k - L->n_in];
    int32_t *slot = k < L->n_in ? &ins[k] : &outs[k - L->n_in];
    if (tid < 0) {
      *slot = -1;
      continue;
    }
    const kiln_tensor_rec *t = &e->tensors[tid];
    char name[32];
    snprintf(name, sizeof name, "t%d", k);
    KILN_TRY(kiln_graph_add_value(g, name, slot));
    kiln_value *v = &g->values[*slot];
    v->dtype = (kiln_dtype)t->dtype;
    kiln_shape_init(&v->shape, (int32_t)t->rank, t->dims);
    if (k < L->n_in && t->storage == KILN_STORAGE_WEIGHT) {
      kiln_shape s = v->shape;
      KILN_TRY(kiln_value_set_constant(g, *slot, v->dtype, &s, e->weights + t->offset));
    }
  }
  int32_t nid;
  KILN_TRY(kiln_graph_add_node(g, L->name, "", L->op, ins, L->n_in, outs, L->n_out, &nid));
  kiln_node *n = &g->nodes[nid];
  KILN_TRY(kiln_attrs_deserialize(L->params, L->params_size, n));
  KILN_TRY(kiln_node_parse(g, n));
  /* Infer into scratch copies so a disagreement with the engine's records is caught, not trusted. */
  kiln_shape want[64];
  kiln_dtype want_dt[64];
  for (int32_t k = 0; k < L->n_out; k++)
    if (outs[k] >= 0) {
      want[k] = g->values[outs[k]].shape;
      want_dt[k] = g->values[outs[k]].dtype;
      kiln_shape_unknown(&g->values[outs[k]].shape);
    }
  KILN_TRY(kiln_node_infer(g, n));
  for (int32_t k = 0; k < L->n_out; k++) {
    if (outs[k] < 0) continue;
    kiln_value *v = &g->values[outs[k]];
    if (!kiln_shape_equal(&v->shape, &want[k]) || v->dtype != want_dt[k])
      return kiln_error(KILN_ERR_PARSE, "layer '%s' (%s): output %d does not match the engine's tensor record", L->name,
                        L->op, k);
    /* outputs that inference turned into constants are recomputed at run time all the same */
    free(v->data);
    v->data = NULL;
  }
  return NULL;
}

static kiln_status ref_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  ref_state *s = calloc(1, sizeof *s);
  KILN_CHECK_ALLOC(s);
  kiln_status st = kiln_graph_create(&s->g);
  if (!st) st = ref_build_graph(e, L, s->g);
  if (st) {
    ref_release(s);
    return st;
  }
  L->state = s;
  return NULL;
}

static kiln_status ref_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const ref_state *s = L->state;
  const kiln_node *n = &s->g->nodes[0];
  kiln_tensor in[64], out[64];
  for (int32_t k = 0; k < L->n_in + L->n_out; k++) {
    int32_t tid = k < L->n_in ? L->in[k] : L->out[k - L->n_in];
    kiln_tensor *t = k < L->n_in ? &in[k] : &out[k - L->n_in];
    memset(t, 0, sizeof *t);
    if (tid < 0) continue;
    const kiln_tensor_rec *r = &ex->tensors[tid];
    t->dtype = (kiln_dtype)r->dtype;
    t->rank = (int32_t)r->rank;
    memcpy(t->dims, r->dims, sizeof t->dims);
    t->data = ex->ptrs[tid];
  }
  return kiln_reference_run(s->g, n, in, out);
}

const kiln_kernel kiln_kernel_ref = {"ref", ref_prepare, ref_release, ref_run};

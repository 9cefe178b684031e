/*
 * Lowering to fast CPU kernels: pattern matching and fusion.
 *
 * Conv (2-D, fp32, constant weights) absorbs what follows it when nothing else reads the intermediate:
 *   Conv -> [activation] -> [Add residual]
 * where activation is SiLU (Sigmoid + Mul, as YOLOv5/v8/v11 export it), Relu, LeakyRelu, Sigmoid, Clip
 * (constant bounds), HardSwish or Tanh, and the residual is any same-shape fp32 tensor computed before
 * the Conv. The weights are packed once here (conv_fast.h) and stored in the engine.
 */
#include "build/builder.h"
#include "build/fusion.h"

#include "backend/cpu/conv_fast.h"
#include "ir/ops/conv.h"
#include "runtime/kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Engine parameters of a "cpu.conv" layer. */
typedef struct conv_layer_params {
  kiln_cpu_conv_desc desc;
  uint64_t packed_offset, packed_size; /* in the weights section */
} conv_layer_params;

static kiln_status lower_conv(kiln_lower_ctx *lc, int32_t i, bool *done) {
  kiln_graph *g = lc->g;
  const kiln_node *n = &g->nodes[i];
  const kiln_value *x = kiln_node_input(g, n, 0), *w = kiln_node_input(g, n, 1), *b = kiln_node_input(g, n, 2);
  const kiln_value *y = kiln_node_output(g, n, 0);
  const kiln_conv_params *p = n->params;
  if (!p || !p->resolved || p->geom.nsp != 2 || !x || !w || !y || !w->data || (b && !b->data) || x->dtype != KILN_DTYPE_FLOAT32 ||
      w->dtype != KILN_DTYPE_FLOAT32 || (b && b->dtype != KILN_DTYPE_FLOAT32) || x->shape.rank != 4 ||
      y->shape.rank != 4 || w->shape.rank != 4)
    return NULL;
  kiln_cpu_conv_desc d;
  memset(&d, 0, sizeof d);
  d.batch = x->shape.dims[0];
  d.in_c = x->shape.dims[1];
  d.in_h = x->shape.dims[2];
  d.in_w = x->shape.dims[3];
  d.out_c = y->shape.dims[1];
  d.out_h = y->shape.dims[2];
  d.out_w = y->shape.dims[3];
  d.kernel_h = w->shape.dims[2];
  d.kernel_w = w->shape.dims[3];
  d.stride_h = p->geom.strides[0];
  d.stride_w = p->geom.strides[1];
  d.pad_top = p->geom.pad_begin[0];
  d.pad_left = p->geom.pad_begin[1];
  d.dilation_h = p->geom.dilations[0];
  d.dilation_w = p->geom.dilations[1];
  d.group = p->group;
  d.has_bias = b != NULL;
  d.isa = KILN_ISA_SCALAR; /* the packed layout is ISA-independent; prepare picks the best ISA at load */
  kiln_conv_fusion f;
  kiln_match_conv_epilogue(g, i, &f);
  d.has_residual = f.residual >= 0;
  d.epilogue = f.epi;
  kiln_status vst = kiln_cpu_conv_validate(&d);
  if (vst) { /* a shape the fast kernel does not take: leave it to the reference kernel */
    kiln_status_destroy(vst);
    return NULL;
  }
  size_t psize = kiln_cpu_conv_packed_size(&d);
  void *packed = NULL;
  if (posix_memalign(&packed, 64, psize ? psize : 64) != 0) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  kiln_status st = kiln_cpu_conv_pack(&d, w->data, b ? b->data : NULL, packed);
  conv_layer_params lp;
  memset(&lp, 0, sizeof lp);
  lp.desc = d;
  lp.packed_size = psize;
  if (!st) st = kiln_ew_add_blob(lc->w, packed, psize, &lp.packed_offset);
  free(packed);
  KILN_TRY(st);
  int32_t ins[2], out;
  KILN_TRY(kiln_lower_tensor_of(lc, n->inputs[0], &ins[0]));
  int n_in = 1;
  if (f.residual >= 0) KILN_TRY(kiln_lower_tensor_of(lc, f.residual, &ins[n_in++]));
  KILN_TRY(kiln_lower_output(lc, f.out, &out));
  for (int k = 1; k < f.n_nodes; k++) lc->consumed[f.nodes[k]] = 1;
  KILN_TRY(kiln_ew_add_layer(lc->w, n->name, "cpu.conv", "Conv", ins, (uint32_t)n_in, &out, 1, &lp, sizeof lp,
                             kiln_cpu_conv_workspace_size(&d, 1), (uint64_t)kiln_node_macs(g, n)));
  *done = true;
  return NULL;
}

kiln_status kiln_lower_cpu_fast(kiln_lower_ctx *lc, int32_t i, bool *done) {
  *done = false;
  switch (lc->g->nodes[i].op) {
  case KILN_OP_Conv: return lower_conv(lc, i, done);
  default: return kiln_lower_cpu_ops(lc, i, done);
  }
}

/* ---- the "cpu.conv" kernel ----------------------------------------------------------------------- */
typedef struct conv_state {
  kiln_cpu_conv_desc desc;
  const void *packed;
} conv_state;

static kiln_status conv_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  conv_layer_params lp;
  if (L->params_size != sizeof lp || L->n_out != 1 || L->n_in < 1 || L->n_in > 2)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': malformed cpu.conv parameters", L->name);
  memcpy(&lp, L->params, sizeof lp);
  KILN_TRY(kiln_error_prefix(kiln_cpu_conv_validate(&lp.desc), "layer '%s': ", L->name));
  if (lp.packed_offset > e->weights_size || lp.packed_size > e->weights_size - lp.packed_offset ||
      lp.packed_size < kiln_cpu_conv_packed_size(&lp.desc) || lp.packed_offset % 64)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': packed weights outside the weights section", L->name);
  /* the tensors must be what the descriptor says, or run() would read out of bounds */
  const kiln_cpu_conv_desc *d = &lp.desc;
  const int64_t xd[4] = {d->batch, d->in_c, d->in_h, d->in_w}, yd[4] = {d->batch, d->out_c, d->out_h, d->out_w};
  for (int32_t k = 0; k < L->n_in + 1; k++) {
    int32_t tid = k < L->n_in ? L->in[k] : L->out[0];
    if (tid < 0) return kiln_error(KILN_ERR_PARSE, "layer '%s': missing tensor", L->name);
    const kiln_tensor_rec *t = &e->tensors[tid];
    const int64_t *want = k == 0 ? xd : yd;
    if (t->dtype != KILN_DTYPE_FLOAT32 || t->rank != 4 || memcmp(t->dims, want, sizeof xd) != 0)
      return kiln_error(KILN_ERR_PARSE, "layer '%s': tensor %d does not match the convolution", L->name, k);
  }
  if ((L->n_in == 2) != (d->has_residual != 0)) return kiln_error(KILN_ERR_PARSE, "layer '%s': residual mismatch", L->name);
  conv_state *s = malloc(sizeof *s);
  KILN_CHECK_ALLOC(s);
  s->desc = lp.desc;
  s->desc.isa = kiln_cpu_isa();
  s->packed = e->weights + lp.packed_offset;
  L->workspace = kiln_cpu_conv_workspace_size(&s->desc, 1);
  L->state = s;
  return NULL;
}

static kiln_status conv_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const conv_state *s = L->state;
  kiln_cpu_conv_run(&s->desc, s->packed, ex->ptrs[L->in[0]], L->n_in > 1 ? ex->ptrs[L->in[1]] : NULL,
                    ex->ptrs[L->out[0]], ex->workspace, ex->tp);
  return NULL;
}

const kiln_kernel kiln_kernel_cpu_conv = {"cpu.conv", conv_prepare, free, conv_run};

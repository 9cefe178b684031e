/*
 * The CUDA lowering: graph -> "cuda.*" layers (backend/cuda/cuda_layers.h).
 *
 * Layouts. Convolutions run NHWC (implicit GEMM with channels innermost), so every 4-D tensor that a
 * Conv, MaxPool or Resize produces lives NHWC, and so do the ops that only pass such tensors along:
 * channel Concats, channel Splits, activations and same-shape elementwise ops on NHWC operands. Every
 * other tensor is LINEAR (the ONNX layout): the bindings, and the ops that care about element order
 * (Reshape, Transpose, Softmax, broadcasting arithmetic). Where a value is needed in the other layout a
 * "cuda.convert" layer makes that copy once (memoized per value); a dense NHWC tensor with one channel
 * or one pixel has the same bytes as its LINEAR form and becomes a view instead.
 *
 * Precision. fp16 engines keep NHWC activations fp16 from the (converted) network input on. The LINEAR
 * tensors stay fp32, and so does any NHWC island fed from them: for YOLO that is the whole head after
 * the last convolutions, the DFL softmax and its 1x1 conv, and the box decode, which must stay fp32.
 *
 * Zero copies. Channel Concats whose members are all produced here on the GPU become one buffer that
 * the producers write into (a member is a VIEW at a channel offset with the buffer's pixel stride), C2f's
 * Split+Concat included; channel Splits of NHWC tensors are views at any batch size.
 *
 * An op without a CUDA kernel fails the build with its name (a per-layer CPU fallback is future work,
 * see docs/STATUS.md).
 */
#include "build/lower_cuda.h"

#ifndef KILN_HAVE_CUDA
/* Without nvcc there are no CUDA kernels to pack weights for or to run. */
kiln_status kiln_lower_cuda(kiln_lower_ctx *lc, kiln_target_rec *target) {
  (void)lc, (void)target;
  return kiln_error(KILN_ERR_UNSUPPORTED, "this kiln was built without CUDA (no nvcc at build time): it cannot build GPU engines");
}
#else


#include "build/conv_tactics.h"
#include "build/fusion.h"

#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_layers.h"
#include "backend/cuda/eltwise_cuda.h"
#include "backend/cuda/cuda_layers_ops.h"
#include "core/dtype.h"
#include "ir/infer_util.h"
#include "ir/ops/conv.h"
#include "ir/ops/pool.h"
#include "ir/ops/reduce.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const kiln_tensor_rec *kiln_cuda_lower_rec(cuda_lower *cl, int32_t id) { return kiln_ew_tensor(cl->lc->w, id); }
#define rec_of kiln_cuda_lower_rec

static bool is_graph_input(const kiln_graph *g, int32_t v) {
  for (int32_t k = 0; k < g->n_inputs; k++)
    if (g->inputs[k] == v) return true;
  return false;
}

static bool float_activation(const kiln_value *v) { return v && !v->data && v->dtype == KILN_DTYPE_FLOAT32; }

/* ---- activations and binary ops ------------------------------------------------------------------ */
static bool unary_act(const kiln_graph *g, const kiln_node *n, kiln_epilogue *ep) {
  memset(ep, 0, sizeof *ep);
  float a = 0, b = 0;
  kiln_status st = NULL;
  switch (n->op) {
  case KILN_OP_Relu: ep->act = KILN_ACT_RELU; break;
  case KILN_OP_Sigmoid: ep->act = KILN_ACT_SIGMOID; break;
  case KILN_OP_Tanh: ep->act = KILN_ACT_TANH; break;
  case KILN_OP_HardSwish: ep->act = KILN_ACT_HARDSWISH; break;
  case KILN_OP_LeakyRelu:
    st = kiln_node_get_float(n, "alpha", 0.01f, &a);
    ep->act = KILN_ACT_LEAKY_RELU;
    break;
  case KILN_OP_HardSigmoid:
    st = kiln_node_get_float(n, "alpha", 0.2f, &a);
    if (!st) st = kiln_node_get_float(n, "beta", 0.5f, &b);
    ep->act = KILN_ACT_HARDSIGMOID;
    break;
  case KILN_OP_Clip:
    a = -INFINITY, b = INFINITY;
    if (g->opset < 11) {
      st = kiln_node_get_float(n, "min", -INFINITY, &a);
      if (!st) st = kiln_node_get_float(n, "max", INFINITY, &b);
    } else {
      for (int k = 1; k <= 2; k++) {
        const kiln_value *bv = kiln_node_input(g, n, k);
        if (!bv) continue;
        if (!bv->data || bv->dtype != KILN_DTYPE_FLOAT32 || kiln_shape_numel(&bv->shape) != 1) return false;
        *(k == 1 ? &a : &b) = *(const float *)bv->data;
      }
    }
    ep->act = KILN_ACT_CLIP;
    break;
  default: return false;
  }
  if (st) {
    kiln_status_destroy(st);
    return false;
  }
  ep->alpha = a;
  ep->beta = b;
  return n->n_outputs >= 1 && n->outputs[0] >= 0;
}

static int binary_op(const kiln_node *n) {
  switch (n->op) {
  case KILN_OP_Add: return KILN_CUDA_ADD;
  case KILN_OP_Sub: return KILN_CUDA_SUB;
  case KILN_OP_Mul: return KILN_CUDA_MUL;
  case KILN_OP_Div: return KILN_CUDA_DIV;
  case KILN_OP_Pow: return KILN_CUDA_POW;
  case KILN_OP_Max: return n->n_inputs == 2 ? KILN_CUDA_MAX : -1;
  case KILN_OP_Min: return n->n_inputs == 2 ? KILN_CUDA_MIN : -1;
  default: return -1;
  }
}

/* Integer nearest upsampling of H and W only, in a coordinate mode where it is exactly y = x[oh / s]. */
static bool resize_factors(const kiln_graph *g, const kiln_node *n, int64_t *sh, int64_t *sw) {
  const kiln_value *x = kiln_node_input(g, n, 0), *y = kiln_node_output(g, n, 0);
  const kiln_resize_params *p = n->params;
  if (!float_activation(x) || !y || x->shape.rank != 4 || y->shape.rank != 4 || !p || p->mode != KILN_RESIZE_NEAREST ||
      p->n_axes || n->n_outputs != 1)
    return false;
  const int64_t *xd = x->shape.dims, *yd = y->shape.dims;
  if (xd[0] != yd[0] || xd[1] != yd[1] || xd[2] < 1 || xd[3] < 1 || yd[2] % xd[2] || yd[3] % xd[3]) return false;
  *sh = yd[2] / xd[2];
  *sw = yd[3] / xd[3];
  /* With an integer factor s and x = k*s + j: asymmetric + floor gives k; half-pixel coordinates land
   * at k + (j + 0.5)/s - 0.5, strictly within 0.5 of k, so any rounding gives k too. */
  bool exact = (p->coord == KILN_COORD_ASYMMETRIC && (p->nearest == KILN_NEAREST_FLOOR || p->nearest == KILN_NEAREST_SIMPLE)) ||
               ((p->coord == KILN_COORD_HALF_PIXEL || p->coord == KILN_COORD_PYTORCH_HALF_PIXEL) &&
                (p->nearest == KILN_NEAREST_ROUND_PREFER_FLOOR || p->nearest == KILN_NEAREST_ROUND_PREFER_CEIL));
  return exact;
}

/* ---- layout assignment --------------------------------------------------------------------------- */
static node_kind classify(cuda_lower *cl, const kiln_node *n) {
  const kiln_graph *g = cl->g;
  const kiln_value *x = kiln_node_input(g, n, 0), *y = kiln_node_output(g, n, 0);
  if (!float_activation(x) || !y || x->shape.rank != 4) return K_OTHER;
  switch (n->op) {
  case KILN_OP_Conv: {
    const kiln_conv_params *p = n->params;
    const kiln_value *w = kiln_node_input(g, n, 1), *b = kiln_node_input(g, n, 2);
    if (p && p->resolved && p->geom.nsp == 2 && w && w->data && w->dtype == KILN_DTYPE_FLOAT32 && w->shape.rank == 4 &&
        (!b || (b->data && b->dtype == KILN_DTYPE_FLOAT32)) && y->shape.rank == 4)
      return K_CONV;
    return K_OTHER;
  }
  case KILN_OP_MaxPool: {
    const kiln_pool_params *p = n->params;
    return p && p->resolved && p->geom.nsp == 2 && n->n_outputs == 1 && y->shape.rank == 4 ? K_POOL : K_OTHER;
  }
  case KILN_OP_Resize: case KILN_OP_Upsample: {
    int64_t sh, sw;
    return resize_factors(g, n, &sh, &sw) ? K_RESIZE : K_OTHER;
  }
  case KILN_OP_Concat: case KILN_OP_Split: {
    int64_t axis = 0;
    kiln_status st = kiln_node_get_int(n, "axis", 0, &axis);
    if (st) {
      kiln_status_destroy(st);
      return K_OTHER;
    }
    if (axis != 1 && axis != -3) return K_OTHER;
    if (n->op == KILN_OP_Split) return n->n_outputs <= KILN_CUDA_MAX_PARTS ? K_SPLIT_C : K_OTHER;
    if (n->n_inputs > KILN_CUDA_MAX_PARTS) return K_OTHER;
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (!float_activation(kiln_node_input(g, n, k))) return K_OTHER;
    return K_CONCAT_C;
  }
  default: break;
  }
  kiln_epilogue ep;
  if (n->n_inputs == 1 && unary_act(g, n, &ep)) return K_ELTWISE;
  if (n->n_inputs == 2 && binary_op(n) >= 0) {
    const kiln_value *b = kiln_node_input(g, n, 1);
    if (float_activation(b) && kiln_shape_equal(&x->shape, &b->shape) && kiln_shape_equal(&x->shape, &y->shape)) return K_ELTWISE;
  }
  return K_OTHER;
}

/* Whether value v feeds NHWC ops as fp16: NHWC values carry their own flag, the network inputs are
 * converted to fp16 in fp16 engines, and anything else computed LINEAR stays fp32. */
static bool half_source(cuda_lower *cl, int32_t v) {
  if (cl->nhwc[v]) return cl->half[v];
  return cl->fp16 && is_graph_input(cl->g, v);
}

static bool pointwise_conv(const kiln_node *n) {
  const kiln_conv_params *p = n->params;
  return p && p->resolved && p->group == 1 && p->geom.nsp == 2 && p->geom.kernel[0] == 1 && p->geom.kernel[1] == 1 &&
         p->geom.strides[0] == 1 && p->geom.strides[1] == 1 && !p->geom.pad_begin[0] && !p->geom.pad_begin[1] &&
         !p->geom.pad_end[0] && !p->geom.pad_end[1];
}

static void assign_layouts(cuda_lower *cl) {
  kiln_graph *g = cl->g;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    node_kind k = classify(cl, n);
    bool all_nhwc = true, any_nhwc = false, all_half = true;
    for (int32_t j = 0; j < n->n_inputs; j++) {
      int32_t v = n->inputs[j];
      if (v < 0 || g->values[v].data) continue;
      all_nhwc = all_nhwc && cl->nhwc[v];
      any_nhwc = any_nhwc || cl->nhwc[v];
      all_half = all_half && half_source(cl, v);
    }
    bool out_nhwc = false;
    switch (k) {
    case K_CONV:
      /* A 1x1 conv on a LINEAR tensor computed in the graph (YOLO's DFL: 16 -> 1 channels on the fp32
       * head) is a batched GEMM in place: converting to NHWC and back would cost more than the conv. */
      if (!cl->nhwc[n->inputs[0]] && !is_graph_input(g, n->inputs[0]) && pointwise_conv(n)) break;
      out_nhwc = true;
      all_half = half_source(cl, n->inputs[0]);
      break;
    case K_POOL: case K_RESIZE: out_nhwc = true; all_half = half_source(cl, n->inputs[0]); break;
    case K_CONCAT_C: out_nhwc = any_nhwc; break;
    case K_SPLIT_C: case K_ELTWISE: out_nhwc = all_nhwc && any_nhwc; break;
    default: break;
    }
    if (!out_nhwc) k = K_OTHER;
    cl->kind[i] = (uint8_t)k;
    for (int32_t j = 0; j < n->n_outputs; j++) {
      int32_t v = n->outputs[j];
      if (v < 0) continue;
      cl->nhwc[v] = out_nhwc;
      cl->half[v] = out_nhwc && all_half;
    }
  }
}

/* ---- tensors in a given layout ------------------------------------------------------------------- */
static uint32_t nhwc_dtype(cuda_lower *cl, int32_t v) { return cl->half[v] ? KILN_DTYPE_FLOAT16 : KILN_DTYPE_FLOAT32; }

static kiln_status new_tensor(cuda_lower *cl, int32_t v, const char *suffix, uint32_t dtype, uint32_t layout, int64_t ps,
                              int32_t *out) {
  const kiln_value *val = &cl->g->values[v];
  char name[300];
  snprintf(name, sizeof name, "%.256s%s", val->name, suffix);
  KILN_TRY(kiln_ew_add_tensor(cl->lc->w, name, dtype, (uint32_t)val->shape.rank, val->shape.dims, KILN_STORAGE_ARENA, -1, 0, out));
  return kiln_ew_set_layout(cl->lc->w, *out, layout, ps);
}

kiln_status kiln_cuda_lower_add_layer(cuda_lower *cl, const char *name, const char *kernel, const char *op, const int32_t *ins,
                             int n_in, const int32_t *outs, int n_out, const void *params, size_t size, uint64_t ws,
                             uint64_t macs) {
  return kiln_ew_add_layer(cl->lc->w, name, kernel, op, ins, (uint32_t)n_in, outs, (uint32_t)n_out, params, size, ws, macs);
}

static bool same_bytes_as_linear(const kiln_tensor_rec *t) {
  return t->layout == KILN_LAYOUT_NHWC && t->pixel_stride == t->dims[1] && (t->dims[1] == 1 || t->dims[2] * t->dims[3] == 1);
}

/* The tensor holding value v with this layout and dtype, converting (once per value) if needed. pad8:
 * an NHWC copy padded to 8 channels with zeros (the stem's input, so it takes 16-byte loads). */
kiln_status kiln_cuda_lower_tensor_as(cuda_lower *cl, int32_t v, uint32_t layout, uint32_t dtype, bool pad8, int32_t *out) {
  int32_t t;
  KILN_TRY(kiln_lower_tensor_of(cl->lc, v, &t)); /* constants become WEIGHT tensors here */
  const kiln_value *val = &cl->g->values[v];
  for (int pass = 0; pass < 2; pass++) {
    int32_t id = pass ? cl->alt[v] : t;
    if (id < 0) continue;
    const kiln_tensor_rec *r = rec_of(cl, id);
    bool padded = r->layout == KILN_LAYOUT_NHWC && r->pixel_stride > r->dims[1] && r->storage != KILN_STORAGE_VIEW;
    if (r->layout == layout && r->dtype == dtype && (layout == KILN_LAYOUT_LINEAR || padded == pad8)) {
      *out = id;
      return NULL;
    }
  }
  const kiln_tensor_rec *src = rec_of(cl, t);
  if (layout == KILN_LAYOUT_NHWC && (val->data || val->shape.rank != 4 ||
                                         (src->dtype != KILN_DTYPE_FLOAT32 && src->dtype != KILN_DTYPE_FLOAT16)))
    return kiln_error(KILN_ERR_UNSUPPORTED, "'%s' cannot be converted to NHWC for the GPU", val->name);
  if (layout == KILN_LAYOUT_LINEAR && src->dtype == dtype && same_bytes_as_linear(src)) {
    /* the same bytes: a LINEAR view, no copy */
    int32_t root = src->storage == KILN_STORAGE_VIEW ? src->alias_of : t;
    uint64_t off = src->storage == KILN_STORAGE_VIEW ? src->offset : 0;
    char name[300];
    snprintf(name, sizeof name, "%.256s (linear)", val->name);
    KILN_TRY(kiln_ew_add_tensor(cl->lc->w, name, dtype, (uint32_t)val->shape.rank, val->shape.dims, KILN_STORAGE_VIEW, root,
                                off, out));
    cl->alt[v] = *out;
    return NULL;
  }
  int64_t ps = layout == KILN_LAYOUT_NHWC && pad8 ? (val->shape.dims[1] + 7) / 8 * 8 : 0;
  KILN_TRY(new_tensor(cl, v, layout == KILN_LAYOUT_NHWC ? " (nhwc)" : " (linear)", dtype, layout, ps, out));
  char name[300];
  snprintf(name, sizeof name, "%.256s (to %s %s)", val->name, layout == KILN_LAYOUT_NHWC ? "NHWC" : "LINEAR",
           dtype == KILN_DTYPE_FLOAT16 ? "fp16" : "fp32");
  KILN_TRY(kiln_cuda_lower_add_layer(cl, name, "cuda.convert", "Convert", &t, 1, out, 1, NULL, 0, 0, 0));
  cl->alt[v] = *out;
  return NULL;
}

/* The tensor an NHWC-producing layer writes value v into: a Concat slice placed earlier, a new dense
 * tensor, or - for a graph output, which is LINEAR - a temporary that finish_output converts. */
static kiln_status nhwc_output(cuda_lower *cl, int32_t v, int32_t *out) {
  int32_t t = cl->lc->tensor_of[v];
  if (t >= 0 && rec_of(cl, t)->layout == KILN_LAYOUT_NHWC) {
    *out = t;
    return NULL;
  }
  int32_t fresh;
  KILN_TRY(new_tensor(cl, v, t >= 0 ? " (nhwc)" : "", nhwc_dtype(cl, v), KILN_LAYOUT_NHWC, 0, &fresh));
  if (t >= 0) cl->io_of[v] = t; /* a binding */
  cl->lc->tensor_of[v] = fresh;
  *out = fresh;
  return NULL;
}

static kiln_status finish_output(cuda_lower *cl, int32_t v) {
  int32_t io = cl->io_of[v];
  if (io < 0) return NULL;
  cl->io_of[v] = -1;
  int32_t src = cl->lc->tensor_of[v];
  char name[300];
  snprintf(name, sizeof name, "%.256s (to the output)", cl->g->values[v].name);
  KILN_TRY(kiln_cuda_lower_add_layer(cl, name, "cuda.convert", "Convert", &src, 1, &io, 1, NULL, 0, 0, 0));
  cl->alt[v] = io;
  return NULL;
}

/* A LINEAR output tensor for value v (its binding when it is a graph output). */
kiln_status kiln_cuda_lower_linear_output(cuda_lower *cl, int32_t v, int32_t *out) {
  if (cl->lc->tensor_of[v] >= 0) {
    *out = cl->lc->tensor_of[v];
    return NULL;
  }
  return kiln_lower_output(cl->lc, v, out);
}

/* ---- in-place channel Concats --------------------------------------------------------------------- */
static bool writes_strided(cuda_lower *cl, int32_t v) {
  const kiln_value *val = &cl->g->values[v];
  if (val->producer < 0) return false;
  node_kind k = (node_kind)cl->kind[val->producer];
  return k == K_CONV || k == K_POOL || k == K_RESIZE || k == K_CONCAT_C || k == K_ELTWISE;
}

/* Value v as channels of NHWC tensor `root` (a non-view), starting `off` bytes in, pixels `ps` apart. */
static kiln_status member_view(cuda_lower *cl, int32_t v, int32_t root, uint64_t off, int64_t ps) {
  const kiln_value *val = &cl->g->values[v];
  KILN_TRY(kiln_ew_add_tensor(cl->lc->w, val->name, nhwc_dtype(cl, v), 4, val->shape.dims, KILN_STORAGE_VIEW, root, off,
                              &cl->lc->tensor_of[v]));
  return kiln_ew_set_layout(cl->lc->w, cl->lc->tensor_of[v], KILN_LAYOUT_NHWC, ps);
}

static kiln_status place_concats(cuda_lower *cl) {
  kiln_graph *g = cl->g;
  kiln_lower_ctx *lc = cl->lc;
  for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
    const kiln_node *n = &g->nodes[i];
    if (cl->kind[i] != K_CONCAT_C || n->n_outputs != 1 || n->outputs[0] < 0) continue;
    int32_t out = n->outputs[0];
    if (kiln_lower_is_graph_output(g, out)) continue;
    bool ok = true;
    /* C2f: Concat(Split(t)..., more) places t itself at channel 0 */
    int32_t split_in = -1, n_split = 0;
    int32_t p0 = n->inputs[0] >= 0 ? g->values[n->inputs[0]].producer : -1;
    if (p0 >= 0 && cl->kind[p0] == K_SPLIT_C) {
      const kiln_node *sp = &g->nodes[p0];
      int32_t t = sp->inputs[0];
      bool whole = sp->n_outputs <= n->n_inputs && t >= 0 && cl->nhwc[t] && cl->half[t] == cl->half[out] &&
                   writes_strided(cl, t) && lc->tensor_of[t] < 0 && !kiln_lower_is_graph_output(g, t) &&
                   kiln_graph_count_uses(g, t) == 1;
      for (int32_t k = 0; whole && k < sp->n_outputs; k++)
        whole = sp->outputs[k] == n->inputs[k] && !kiln_lower_is_graph_output(g, sp->outputs[k]);
      if (whole) split_in = t, n_split = sp->n_outputs;
    }
    for (int32_t k = n_split; ok && k < n->n_inputs; k++) {
      int32_t v = n->inputs[k];
      ok = v >= 0 && cl->nhwc[v] && cl->half[v] == cl->half[out] && writes_strided(cl, v) && lc->tensor_of[v] < 0 &&
           !kiln_lower_is_graph_output(g, v);
      for (int32_t j = 0; ok && j < k; j++) ok = n->inputs[j] != v;
    }
    if (!ok) continue;
    int32_t root;
    uint64_t base = 0;
    int64_t ps;
    if (lc->tensor_of[out] >= 0) { /* itself a member of an outer Concat placed before */
      const kiln_tensor_rec *r = rec_of(cl, lc->tensor_of[out]);
      root = r->storage == KILN_STORAGE_VIEW ? r->alias_of : lc->tensor_of[out];
      base = r->storage == KILN_STORAGE_VIEW ? r->offset : 0;
      ps = r->pixel_stride;
    } else {
      KILN_TRY(nhwc_output(cl, out, &root));
      ps = g->values[out].shape.dims[1];
    }
    uint64_t es = kiln_dtype_size((kiln_dtype)nhwc_dtype(cl, out)), c = 0;
    if (split_in >= 0) {
      KILN_TRY(member_view(cl, split_in, root, base, ps));
      c = (uint64_t)g->values[split_in].shape.dims[1];
    }
    for (int32_t k = n_split; k < n->n_inputs; k++) {
      KILN_TRY(member_view(cl, n->inputs[k], root, base + c * es, ps));
      c += (uint64_t)g->values[n->inputs[k]].shape.dims[1];
    }
    lc->consumed[i] = 1;
  }
  return NULL;
}

/* ---- the detection head's spatial Concat ------------------------------------------------------------
 * YOLO heads flatten each scale's NHWC map ([N,C,H,W] -> [N,C,H*W]) and concatenate the scales along the
 * last axis. Converting each map to LINEAR and then copying it into the Concat would pass over the data
 * twice; cuda.convert_concat converts every map straight into its slice. The Reshapes disappear. */
static bool flattened_nhwc(cuda_lower *cl, int32_t v, const kiln_value *y, int32_t *src) {
  kiln_graph *g = cl->g;
  const kiln_value *val = &g->values[v];
  if (v < 0 || val->producer < 0 || kiln_lower_is_graph_output(g, v) || kiln_graph_count_uses(g, v) != 1) return false;
  const kiln_node *r = &g->nodes[val->producer];
  if ((r->op != KILN_OP_Reshape && r->op != KILN_OP_Flatten) || r->inputs[0] < 0) return false;
  int32_t u = r->inputs[0];
  const kiln_value *uv = &g->values[u];
  if (!cl->nhwc[u] || uv->shape.rank != 4 || val->shape.rank != 3) return false;
  const int64_t *d = uv->shape.dims;
  if (val->shape.dims[0] != d[0] || val->shape.dims[1] != d[1] || val->shape.dims[2] != d[2] * d[3] ||
      y->shape.dims[0] != d[0] || y->shape.dims[1] != d[1])
    return false;
  *src = u;
  return true;
}

static void plan_spatial_concats(cuda_lower *cl) {
  kiln_graph *g = cl->g;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    if (n->op != KILN_OP_Concat || cl->kind[i] != K_OTHER || n->n_outputs != 1 || n->n_inputs < 1 ||
        n->n_inputs > KILN_CUDA_MAX_PARTS)
      continue;
    const kiln_value *y = kiln_node_output(g, n, 0);
    int64_t axis = 0;
    kiln_status st = kiln_node_get_int(n, "axis", 0, &axis);
    if (st || !y || y->dtype != KILN_DTYPE_FLOAT32 || y->shape.rank != 3 || (axis != 2 && axis != -1)) {
      kiln_status_destroy(st);
      continue;
    }
    bool ok = true;
    for (int32_t k = 0; ok && k < n->n_inputs; k++) {
      int32_t u;
      ok = flattened_nhwc(cl, n->inputs[k], y, &u);
      for (int32_t j = 0; ok && j < k; j++) ok = n->inputs[j] != n->inputs[k];
    }
    if (!ok) continue;
    cl->spatial_concat[i] = 1;
    for (int32_t k = 0; k < n->n_inputs; k++) cl->lc->consumed[g->values[n->inputs[k]].producer] = 1;
    /* an activation that alone reads the Concat runs in the same pass */
    int32_t c = kiln_sole_consumer(g, n->outputs[0]);
    kiln_epilogue ep;
    if (c >= 0 && g->nodes[c].n_inputs == 1 && unary_act(g, &g->nodes[c], &ep) && cl->kind[c] == K_OTHER) {
      cl->concat_act[i] = c;
      cl->lc->consumed[c] = 1;
    }
  }
}

static kiln_status lower_dfl_from_maps(cuda_lower *cl, int32_t i, const int32_t *maps, bool *done);

static kiln_status lower_spatial_concat(cuda_lower *cl, int32_t i) {
  const kiln_node *n = &cl->g->nodes[i];
  const kiln_value *y = kiln_node_output(cl->g, n, 0);
  int32_t ins[KILN_CUDA_MAX_PARTS], out;
  for (int32_t k = 0; k < n->n_inputs; k++) {
    int32_t u = -1;
    flattened_nhwc(cl, n->inputs[k], y, &u);
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, u, KILN_LAYOUT_NHWC, nhwc_dtype(cl, u), false, &ins[k]));
  }
  if (cl->concat_act[i] < 0) { /* the box branch: the DFL reads the maps themselves */
    bool done = false;
    KILN_TRY(lower_dfl_from_maps(cl, i, ins, &done));
    if (done) return NULL;
  }
  kiln_cuda_convert_concat_params pp;
  memset(&pp, 0, sizeof pp);
  pp.n = n->n_inputs;
  int32_t yv = n->outputs[0];
  if (cl->concat_act[i] >= 0) {
    const kiln_node *a = &cl->g->nodes[cl->concat_act[i]];
    unary_act(cl->g, a, &pp.act);
    yv = a->outputs[0];
  }
  KILN_TRY(kiln_cuda_lower_linear_output(cl, yv, &out));
  return kiln_cuda_lower_add_layer(cl, n->name, "cuda.convert_concat", "Concat", ins, n->n_inputs, &out, 1, &pp, sizeof pp, 0, 0);
}

/* ---- in-place LINEAR Concats ------------------------------------------------------------------------
 * A Concat whose dims before the axis are all 1 (the box decode's Concats at batch 1) is contiguous
 * slices of its output: producers that write a dense LINEAR output of their own write there instead,
 * and the copy disappears (the output may be the binding itself).
 * At batch N > 1 a Concat along axis 1 (or along a later axis with only 1s between) is N rows per member:
 * member k is a row-strided view (engine_format.h) whose rows of C_k*inner elements lie C*inner apart.
 * Only kernels that step by a row stride (KILN_KERNEL_ROW_STRIDED) may write or read such a view, so
 * each member must be produced by one of them (row_strided_producer) and read by nothing else. YOLOv8's
 * output Concat (box decode [N,4,8400] + class scores [N,80,8400] -> [N,84,8400]) is written in place so. */
static bool dense_linear_producer(cuda_lower *cl, int32_t v) {
  const kiln_value *val = &cl->g->values[v];
  if (val->producer < 0 || cl->nhwc[v] || cl->spatial_concat[val->producer]) return false;
  const kiln_node *p = &cl->g->nodes[val->producer];
  switch (p->op) { /* these may lower to views of their input */
  case KILN_OP_Reshape: case KILN_OP_Flatten: case KILN_OP_Squeeze: case KILN_OP_Unsqueeze: case KILN_OP_Identity:
  case KILN_OP_Split: case KILN_OP_Slice: return false;
  default: return cl->kind[val->producer] == K_OTHER;
  }
}

/* A row-strided LINEAR view of value v: `root` (a non-view) + off bytes, rows row_stride elements apart. */
static kiln_status row_view(cuda_lower *cl, int32_t v, int32_t root, uint64_t off, int64_t row_stride) {
  const kiln_value *val = &cl->g->values[v];
  KILN_TRY(kiln_ew_add_tensor(cl->lc->w, val->name, val->dtype, (uint32_t)val->shape.rank, val->shape.dims,
                              KILN_STORAGE_VIEW, root, off, &cl->lc->tensor_of[v]));
  return kiln_ew_set_row_stride(cl->lc->w, cl->lc->tensor_of[v], row_stride);
}

/* The root tensor, byte offset and row stride (elements between dim-0 indices) of LINEAR tensor t. */
static void linear_rows_of(cuda_lower *cl, int32_t t, int32_t *root, uint64_t *off, int64_t *row_stride) {
  const kiln_tensor_rec *r = rec_of(cl, t);
  *root = r->storage == KILN_STORAGE_VIEW ? r->alias_of : t;
  *off = r->storage == KILN_STORAGE_VIEW ? r->offset : 0;
  *row_stride = r->pixel_stride ? r->pixel_stride : kiln_tensor_row_len(r);
}

/* Whether node p lowers to a LINEAR cuda.eltwise layer, alone or fused with its neighbours into a
 * cuda.pointwise (both kernels step through row-strided inputs and outputs): the conditions under which
 * lower_linear routes it to lower_pointwise_run / lower_eltwise and those succeed, so the prediction
 * cannot go wrong. */
static bool linear_eltwise(cuda_lower *cl, int32_t p) {
  const kiln_graph *g = cl->g;
  const kiln_node *n = &g->nodes[p];
  if (cl->kind[p] != K_OTHER || cl->lc->consumed[p] || n->n_outputs != 1 || n->outputs[0] < 0) return false;
  kiln_epilogue ep;
  if (!((n->n_inputs == 2 && binary_op(n) >= 0) || (n->n_inputs == 1 && unary_act(g, n, &ep)))) return false;
  for (int32_t k = -1; k < n->n_inputs; k++) {
    const kiln_value *x = k < 0 ? &g->values[n->outputs[0]] : kiln_node_input(g, n, k);
    if (!x || x->dtype != KILN_DTYPE_FLOAT32 || x->shape.rank > KILN_CUDA_MAX_RANK) return false;
  }
  return true;
}

/* Whether value v's producer lowers to a layer whose kernel writes a row-strided LINEAR output: a spatial
 * Concat (cuda.convert_concat) or the activation fused into one, or a LINEAR elementwise op. */
static bool row_strided_producer(cuda_lower *cl, int32_t v) {
  const kiln_graph *g = cl->g;
  const kiln_value *val = &g->values[v];
  int32_t p = val->producer;
  if (p < 0 || cl->nhwc[v] || val->data || val->dtype != KILN_DTYPE_FLOAT32 || val->shape.rank < 2 ||
      val->shape.rank > KILN_CUDA_MAX_RANK)
    return false;
  if (cl->spatial_concat[p]) return cl->concat_act[p] < 0; /* else it writes the activation's output */
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (cl->concat_act[i] == p) return true;
  return linear_eltwise(cl, p);
}

/* A Slice along one axis >= 1 at batch > 1 (only 1s between the batch and that axis) that only
 * elementwise layers (cuda.eltwise / cuda.pointwise) read is a row-strided view of its input, no copy: YOLOv8's split of the DFL output
 * [N,4,8400] into its two [N,2,8400] halves for the box decode (cuda.split copies before). *done = false:
 * not this case. */
static kiln_status try_row_slice_view(cuda_lower *cl, const kiln_node *n, int32_t ax, int64_t start, bool *done) {
  *done = false;
  kiln_graph *g = cl->g;
  int32_t xv = n->inputs[0], yv = n->outputs[0];
  const kiln_value *x = &g->values[xv];
  if (ax < 1 || x->data || x->shape.rank < 2 || x->dtype != KILN_DTYPE_FLOAT32 || cl->lc->tensor_of[yv] >= 0 ||
      kiln_lower_is_graph_output(g, yv) || kiln_graph_count_uses(g, yv) < 1)
    return NULL;
  for (int32_t d = 1; d < ax; d++)
    if (x->shape.dims[d] != 1) return NULL;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *c = &g->nodes[i];
    for (int32_t k = 0; k < c->n_inputs; k++)
      if (c->inputs[k] == yv && !linear_eltwise(cl, i)) return NULL;
  }
  int32_t in, root;
  uint64_t off;
  int64_t stride, inner = 1;
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, xv, KILN_LAYOUT_LINEAR, x->dtype, false, &in));
  linear_rows_of(cl, in, &root, &off, &stride);
  for (int32_t d = ax + 1; d < x->shape.rank; d++) inner *= x->shape.dims[d];
  off += (uint64_t)(start * inner) * kiln_dtype_size(x->dtype);
  KILN_TRY(row_view(cl, yv, root, off, stride));
  *done = true;
  return NULL;
}

static kiln_status place_linear_concats(cuda_lower *cl) {
  kiln_graph *g = cl->g;
  kiln_lower_ctx *lc = cl->lc;
  for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
    const kiln_node *n = &g->nodes[i];
    if (n->op != KILN_OP_Concat || cl->kind[i] != K_OTHER || cl->spatial_concat[i] || n->n_outputs != 1 ||
        n->outputs[0] < 0 || lc->consumed[i])
      continue;
    int32_t out = n->outputs[0];
    const kiln_value *y = &g->values[out];
    int64_t axis = 0;
    KILN_TRY(kiln_node_get_int(n, "axis", 0, &axis));
    if (axis < 0) axis += y->shape.rank;
    if (axis < 0 || axis >= y->shape.rank || y->dtype != KILN_DTYPE_FLOAT32) continue;
    int64_t outer = 1;
    for (int32_t d = 0; d < axis; d++) outer *= y->shape.dims[d];
    /* rows: the batch, with only 1s between it and the axis */
    bool rows = outer != 1;
    if (rows && (axis < 1 || outer != y->shape.dims[0])) continue;
    if (rows && lc->tensor_of[out] >= 0 && rec_of(cl, lc->tensor_of[out])->layout != KILN_LAYOUT_LINEAR) continue;
    bool ok = true;
    for (int32_t k = 0; ok && k < n->n_inputs; k++) {
      int32_t v = n->inputs[k];
      ok = v >= 0 && !g->values[v].data && g->values[v].dtype == KILN_DTYPE_FLOAT32 && lc->tensor_of[v] < 0 &&
           !kiln_lower_is_graph_output(g, v) &&
           (rows ? row_strided_producer(cl, v) && kiln_graph_count_uses(g, v) == 1 : dense_linear_producer(cl, v));
      for (int32_t j = 0; ok && j < k; j++) ok = n->inputs[j] != v;
    }
    if (!ok) continue;
    int32_t base;
    KILN_TRY(kiln_lower_output(lc, out, &base)); /* the binding, an outer Concat's slice, or a new tensor */
    if (!rows) {
      uint64_t off = 0;
      for (int32_t k = 0; k < n->n_inputs; k++) {
        KILN_TRY(kiln_lower_view(lc, n->inputs[k], base, off));
        off += kiln_ew_tensor(lc->w, lc->tensor_of[n->inputs[k]])->nbytes;
      }
    } else { /* member k: the next numel_k / N elements of every row of the output (itself perhaps row-strided) */
      int32_t root;
      uint64_t off;
      int64_t stride;
      linear_rows_of(cl, base, &root, &off, &stride);
      for (int32_t k = 0; k < n->n_inputs; k++) {
        const kiln_value *m = &g->values[n->inputs[k]];
        KILN_TRY(row_view(cl, n->inputs[k], root, off, stride));
        off += (uint64_t)(kiln_shape_numel(&m->shape) / outer) * kiln_dtype_size(m->dtype);
      }
    }
    lc->consumed[i] = 1;
  }
  return NULL;
}

/* ---- NHWC layers ----------------------------------------------------------------------------------- */
/* Byte offset mod 16 of a tensor's first element from its root buffer (ARENA roots are 64-byte aligned,
 * bindings cudaMalloc'd): a Concat member at an odd channel offset makes the conv kernels take their
 * narrower load/store paths, so tactic timing must see the same alignment. */
static unsigned misalign16(cuda_lower *cl, int32_t id) {
  uint64_t off = 0;
  const kiln_tensor_rec *t = rec_of(cl, id);
  for (int hops = 0; t->storage == KILN_STORAGE_VIEW && t->alias_of >= 0 && hops < 64; hops++) {
    off += t->offset;
    t = rec_of(cl, t->alias_of);
  }
  return (unsigned)(off % 16);
}

static kiln_status lower_conv(cuda_lower *cl, int32_t i) {
  kiln_graph *g = cl->g;
  const kiln_node *n = &g->nodes[i];
  const kiln_value *x = kiln_node_input(g, n, 0), *w = kiln_node_input(g, n, 1), *b = kiln_node_input(g, n, 2);
  const kiln_value *y = kiln_node_output(g, n, 0);
  const kiln_conv_params *p = n->params;
  kiln_conv_fusion f;
  kiln_match_conv_epilogue(g, i, &f);
  if (f.residual >= 0 && (!cl->nhwc[f.residual] || cl->half[f.residual] != cl->half[n->outputs[0]] ||
                          !cl->nhwc[f.out])) { /* the residual is not an NHWC tensor of our type: run the Add apart */
    f.residual = -1;
    f.n_nodes--;
    f.out = g->nodes[f.nodes[f.n_nodes - 1]].outputs[0];
    if (f.n_nodes == 1) f.epi.act = KILN_ACT_NONE;
  }
  int32_t yv = n->outputs[0];
  bool half = cl->half[yv];
  kiln_cuda_conv_desc d;
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
  d.compute = half ? KILN_CUDA_F16 : KILN_CUDA_F32;
  d.out_dtype = d.compute;
  d.has_bias = b != NULL;
  d.has_residual = f.residual >= 0;
  d.epilogue = f.epi;
  uint32_t dt = half ? KILN_DTYPE_FLOAT16 : KILN_DTYPE_FLOAT32;
  int32_t ins[2], out;
  /* The stem: a group-1 conv with few input channels on a LINEAR tensor (the network input) reads it in
   * place as NCHW (conv_direct_nchw, fp32 weights and accumulation), so no conversion layer writes and
   * re-reads an NHWC copy first. Other NHWC consumers of the value still get their own conversion. */
  bool nchw = false;
  if (!cl->nhwc[n->inputs[0]] && d.group == 1 && d.in_c <= 4) {
    KILN_TRY(kiln_lower_tensor_of(cl->lc, n->inputs[0], &ins[0]));
    const kiln_tensor_rec *xr = rec_of(cl, ins[0]);
    d.in_dtype = (kiln_cuda_dtype)xr->dtype;
    nchw = xr->layout == KILN_LAYOUT_LINEAR &&
           (xr->dtype == KILN_DTYPE_FLOAT32 || xr->dtype == KILN_DTYPE_FLOAT16) && kiln_cuda_conv_nchw_supported(&d);
    if (!nchw) d.in_dtype = (kiln_cuda_dtype)0;
  }
  /* Otherwise a stem (few input channels, fp16, straight from the network input) reads a zero-padded
   * 8-channel copy made by the input conversion, so it takes the 16-byte-load path (in_zero_padded). */
  bool pad8 = !nchw && half && d.group == 1 && d.in_c % 8 && !cl->nhwc[n->inputs[0]] && is_graph_input(g, n->inputs[0]);
  if (!nchw) KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_NHWC, dt, pad8, &ins[0]));
  int n_in = 1;
  if (f.residual >= 0) KILN_TRY(kiln_cuda_lower_tensor_as(cl, f.residual, KILN_LAYOUT_NHWC, dt, false, &ins[n_in++]));
  KILN_TRY(nhwc_output(cl, f.out, &out));
  d.in_pixel_stride = rec_of(cl, ins[0])->pixel_stride;
  d.out_pixel_stride = rec_of(cl, out)->pixel_stride;
  d.residual_pixel_stride = n_in > 1 ? rec_of(cl, ins[1])->pixel_stride : 0;
  d.in_zero_padded = pad8;
  d.in_layout_nchw = nchw;
  KILN_TRY(kiln_cuda_conv_validate(&d));
  kiln_cuda_conv_params lp;
  memset(&lp, 0, sizeof lp);
  lp.desc = d;
  lp.packed_size = kiln_cuda_conv_packed_size(&d);
  void *packed = malloc(lp.packed_size ? lp.packed_size : 1);
  KILN_CHECK_ALLOC(packed);
  kiln_status st = kiln_cuda_conv_pack(&d, w->data, b ? b->data : NULL, packed);
  if (!st) st = kiln_ew_add_blob(cl->lc->w, packed, lp.packed_size, &lp.packed_offset);
  free(packed);
  KILN_TRY(st);
  for (int k = 1; k < f.n_nodes; k++) cl->lc->consumed[f.nodes[k]] = 1;
  int32_t layer = kiln_ew_num_layers(cl->lc->w);
  KILN_TRY(kiln_cuda_lower_add_layer(cl, n->name, "cuda.conv", "Conv", ins, n_in, &out, 1, &lp, sizeof lp, kiln_cuda_conv_workspace_size(&d),
                     (uint64_t)kiln_node_macs(g, n)));
  unsigned al[3] = {misalign16(cl, ins[0]), n_in > 1 ? misalign16(cl, ins[1]) : 0, misalign16(cl, out)};
  KILN_TRY(kiln_conv_tuner_add(cl->tuner, layer, n->name, &d, al));
  return finish_output(cl, f.out);
}

static void pool_desc_of(cuda_lower *cl, const kiln_node *n, kiln_cuda_pool_desc *d) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *y = kiln_node_output(cl->g, n, 0);
  const kiln_pool_params *p = n->params;
  memset(d, 0, sizeof *d);
  d->batch = x->shape.dims[0], d->channels = x->shape.dims[1], d->in_h = x->shape.dims[2], d->in_w = x->shape.dims[3];
  d->out_h = y->shape.dims[2], d->out_w = y->shape.dims[3];
  d->kernel_h = p->geom.kernel[0], d->kernel_w = p->geom.kernel[1];
  d->stride_h = p->geom.strides[0], d->stride_w = p->geom.strides[1];
  d->pad_top = p->geom.pad_begin[0], d->pad_left = p->geom.pad_begin[1];
  d->dilation_h = p->geom.dilations[0], d->dilation_w = p->geom.dilations[1];
  d->dtype = cl->half[n->outputs[0]] ? KILN_CUDA_F16 : KILN_CUDA_F32;
}

/* SPPF: MaxPools that each pool the previous one's output with the same same-size window run as one
 * cuda.maxpool_chain layer (the map is read once; spatial_cuda.h). Starting at pool i, the chain takes
 * the one MaxPool that reads its output, as long as the windows match. Returns its length (>= 1). */
static int pool_chain(cuda_lower *cl, int32_t i, int32_t *nodes) {
  kiln_graph *g = cl->g;
  kiln_cuda_pool_desc d0, d;
  pool_desc_of(cl, &g->nodes[i], &d0);
  nodes[0] = i;
  if (!kiln_cuda_maxpool_chain_supported(&d0)) return 1;
  int len = 1;
  while (len < KILN_CUDA_POOL_CHAIN_MAX) {
    int32_t v = g->nodes[nodes[len - 1]].outputs[0], next = -1;
    for (int32_t j = 0; j < g->n_nodes; j++) {
      const kiln_node *m = &g->nodes[j];
      if (m->op != KILN_OP_MaxPool || m->n_inputs < 1 || m->inputs[0] != v) continue;
      if (next >= 0) return len; /* two pools read it: keep it simple */
      next = j;
    }
    if (next < 0 || cl->kind[next] != K_POOL || cl->lc->consumed[next] || cl->half[g->nodes[next].outputs[0]] != cl->half[v])
      return len;
    pool_desc_of(cl, &g->nodes[next], &d);
    if (memcmp(&d, &d0, sizeof d)) return len;
    nodes[len++] = next;
  }
  return len;
}

static kiln_status lower_pool(cuda_lower *cl, int32_t i) {
  const kiln_node *n = &cl->g->nodes[i];
  int32_t chain[KILN_CUDA_POOL_CHAIN_MAX];
  int len = pool_chain(cl, i, chain);
  int32_t yv = n->outputs[0];
  int32_t in, outs[KILN_CUDA_POOL_CHAIN_MAX];
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_NHWC, nhwc_dtype(cl, yv), false, &in));
  for (int k = 0; k < len; k++) KILN_TRY(nhwc_output(cl, cl->g->nodes[chain[k]].outputs[0], &outs[k]));
  /* one kernel writes every output with one pixel stride, in units of at least 4 bytes */
  const int64_t es = nhwc_dtype(cl, yv) == KILN_DTYPE_FLOAT16 ? 2 : 4;
  const kiln_tensor_rec *r0 = rec_of(cl, outs[0]), *rx = rec_of(cl, in);
  const int64_t ps0 = r0->pixel_stride ? r0->pixel_stride : r0->dims[1];
  bool ok = misalign16(cl, in) % 4 == 0 && (rx->pixel_stride ? rx->pixel_stride : rx->dims[1]) * es % 4 == 0 && ps0 * es % 4 == 0;
  for (int k = 0; ok && k < len; k++) {
    const kiln_tensor_rec *r = rec_of(cl, outs[k]);
    ok = misalign16(cl, outs[k]) % 4 == 0 && (r->pixel_stride ? r->pixel_stride : r->dims[1]) == ps0;
  }
  if (!ok) len = 1; /* the others run as pools of their own */
  if (len == 1) {
    kiln_cuda_pool_params pp;
    pool_desc_of(cl, n, &pp.desc);
    KILN_TRY(kiln_cuda_lower_add_layer(cl, n->name, "cuda.maxpool", n->op_type, &in, 1, outs, 1, &pp, sizeof pp, 0, 0));
    return finish_output(cl, yv);
  }
  kiln_cuda_pool_chain_params pp;
  memset(&pp, 0, sizeof pp);
  pool_desc_of(cl, n, &pp.desc);
  pp.n_out = len;
  char name[300];
  snprintf(name, sizeof name, "%.200s (+%d chained)", n->name, len - 1);
  KILN_TRY(kiln_cuda_lower_add_layer(cl, name, "cuda.maxpool_chain", n->op_type, &in, 1, outs, len, &pp, sizeof pp, 0, 0));
  for (int k = 0; k < len; k++) {
    if (k) cl->lc->consumed[chain[k]] = 1;
    KILN_TRY(finish_output(cl, cl->g->nodes[chain[k]].outputs[0]));
  }
  return NULL;
}

static kiln_status lower_resize(cuda_lower *cl, const kiln_node *n) {
  kiln_cuda_resize_params rp;
  memset(&rp, 0, sizeof rp);
  resize_factors(cl->g, n, &rp.scale_h, &rp.scale_w);
  int32_t yv = n->outputs[0], in, out;
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_NHWC, nhwc_dtype(cl, yv), false, &in));
  KILN_TRY(nhwc_output(cl, yv, &out));
  KILN_TRY(kiln_cuda_lower_add_layer(cl, n->name, "cuda.resize_nearest", n->op_type, &in, 1, &out, 1, &rp, sizeof rp, 0, 0));
  return finish_output(cl, yv);
}

static kiln_status lower_eltwise(cuda_lower *cl, const kiln_node *n, uint32_t layout) {
  kiln_cuda_eltwise_params ep;
  memset(&ep, 0, sizeof ep);
  ep.op = n->n_inputs == 2 ? binary_op(n) : -1;
  if (ep.op < 0 && !unary_act(cl->g, n, &ep.act))
    return kiln_error(KILN_ERR_UNSUPPORTED, "no CUDA kernel for this elementwise op");
  int32_t yv = n->outputs[0], ins[2], out;
  const kiln_value *y = &cl->g->values[yv];
  uint32_t dt = layout == KILN_LAYOUT_NHWC ? nhwc_dtype(cl, yv) : (uint32_t)y->dtype;
  if (layout == KILN_LAYOUT_LINEAR && (dt != KILN_DTYPE_FLOAT32 || (y->shape.rank > 6)))
    return kiln_error(KILN_ERR_UNSUPPORTED, "elementwise ops on the GPU take float32 tensors of rank <= 6");
  int n_in = ep.op < 0 ? 1 : 2;
  for (int k = 0; k < n_in; k++) {
    const kiln_value *v = kiln_node_input(cl->g, n, k);
    if (!v || v->dtype != KILN_DTYPE_FLOAT32) return kiln_error(KILN_ERR_UNSUPPORTED, "elementwise op on non-float32 input");
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[k], layout, dt, false, &ins[k]));
  }
  if (layout == KILN_LAYOUT_NHWC) KILN_TRY(nhwc_output(cl, yv, &out));
  else KILN_TRY(kiln_cuda_lower_linear_output(cl, yv, &out));
  KILN_TRY(kiln_cuda_lower_add_layer(cl, n->name, "cuda.eltwise", n->op_type, ins, n_in, &out, 1, &ep, sizeof ep, 0, 0));
  return finish_output(cl, yv);
}

/* Concat (cuda.concat) of NHWC channels or LINEAR tensors along any axis. */
static kiln_status lower_concat(cuda_lower *cl, const kiln_node *n, uint32_t layout) {
  const kiln_value *y = kiln_node_output(cl->g, n, 0);
  int64_t axis = 0;
  KILN_TRY(kiln_node_get_int(n, "axis", 0, &axis));
  int32_t ax;
  KILN_TRY(kiln_normalize_axis(axis, y->shape.rank, &ax));
  if (n->n_inputs > KILN_CUDA_MAX_PARTS) return kiln_error(KILN_ERR_UNSUPPORTED, "Concat of more than %d inputs", KILN_CUDA_MAX_PARTS);
  int32_t yv = n->outputs[0], ins[KILN_CUDA_MAX_PARTS], out;
  uint32_t dt = layout == KILN_LAYOUT_NHWC ? nhwc_dtype(cl, yv) : (uint32_t)y->dtype;
  if (!kiln_dtype_size((kiln_dtype)dt)) return kiln_error(KILN_ERR_UNSUPPORTED, "Concat of %s", kiln_dtype_name((kiln_dtype)dt));
  int m = 0;
  for (int32_t k = 0; k < n->n_inputs; k++) {
    const kiln_value *v = kiln_node_input(cl->g, n, k);
    if (!v || kiln_shape_numel(&v->shape) == 0) continue; /* empty inputs add nothing */
    if (v->dtype != y->dtype) return kiln_error(KILN_ERR_SHAPE, "Concat inputs of different types");
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[k], layout, dt, false, &ins[m++]));
  }
  if (layout == KILN_LAYOUT_NHWC) KILN_TRY(nhwc_output(cl, yv, &out));
  else KILN_TRY(kiln_cuda_lower_linear_output(cl, yv, &out));
  kiln_cuda_parts_params pp;
  memset(&pp, 0, sizeof pp);
  pp.axis = ax;
  pp.n = m;
  KILN_TRY(kiln_cuda_lower_add_layer(cl, n->name, "cuda.concat", "Concat", ins, m, &out, 1, &pp, sizeof pp, 0, 0));
  return finish_output(cl, yv);
}

/* Split along the channels of an NHWC tensor: views at channel offsets, at any batch size. */
static kiln_status lower_split_nhwc(cuda_lower *cl, const kiln_node *n) {
  int32_t x = n->inputs[0], in;
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, x, KILN_LAYOUT_NHWC, nhwc_dtype(cl, x), false, &in));
  const kiln_tensor_rec *r = rec_of(cl, in);
  int32_t root = r->storage == KILN_STORAGE_VIEW ? r->alias_of : in;
  uint64_t off = r->storage == KILN_STORAGE_VIEW ? r->offset : 0, es = kiln_dtype_size((kiln_dtype)r->dtype);
  int64_t ps = r->pixel_stride, c = 0;
  for (int32_t k = 0; k < n->n_outputs; k++) {
    int32_t v = n->outputs[k];
    if (v < 0) continue;
    if (kiln_lower_is_graph_output(cl->g, v)) {
      /* a binding needs its own LINEAR copy; the slice view feeds the conversion */
      int32_t io = cl->lc->tensor_of[v];
      cl->lc->tensor_of[v] = -1;
      KILN_TRY(member_view(cl, v, root, off + (uint64_t)c * es, ps));
      cl->io_of[v] = io;
      KILN_TRY(finish_output(cl, v));
    } else {
      KILN_TRY(member_view(cl, v, root, off + (uint64_t)c * es, ps));
    }
    c += cl->g->values[v].shape.dims[1];
  }
  return NULL;
}

/* ---- LINEAR layers ---------------------------------------------------------------------------------- */
/* A 1x1 conv on a LINEAR fp32 tensor as cuda.gemm: per image, Y[OC][HW] = W[OC][IC] * X[IC][HW] + b
 * (bias broadcast along the row); the activation and residual stay separate layers. */
static kiln_status lower_pointwise_gemm(cuda_lower *cl, int32_t i) {
  kiln_graph *g = cl->g;
  const kiln_node *n = &g->nodes[i];
  const kiln_value *x = kiln_node_input(g, n, 0), *w = kiln_node_input(g, n, 1), *b = kiln_node_input(g, n, 2);
  const kiln_value *y = kiln_node_output(g, n, 0);
  int64_t batch = x->shape.dims[0], ic = x->shape.dims[1], oc = y->shape.dims[1], hw = x->shape.dims[2] * x->shape.dims[3];
  kiln_cuda_gemm_params gp;
  memset(&gp, 0, sizeof gp);
  kiln_cuda_gemm_desc *d = &gp.desc;
  d->m = oc, d->n = hw, d->k = ic;
  d->batch_rank = 1;
  d->batch_dims[0] = batch;
  d->a_batch_stride[0] = 0; /* the weights, shared */
  d->b_batch_stride[0] = ic * hw;
  d->y_batch_stride = oc * hw;
  d->alpha = 1;
  d->beta = b ? 1.f : 0.f;
  d->c_stride_m = 1; /* bias[oc] along the row */
  d->c_dtype = d->compute = d->out_dtype = KILN_CUDA_F32;
  int32_t ins[3], out;
  int n_in = 2;
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[1], KILN_LAYOUT_LINEAR, KILN_DTYPE_FLOAT32, false, &ins[0]));
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_LINEAR, KILN_DTYPE_FLOAT32, false, &ins[1]));
  if (b) KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[2], KILN_LAYOUT_LINEAR, KILN_DTYPE_FLOAT32, false, &ins[n_in++]));
  KILN_TRY(kiln_cuda_lower_linear_output(cl, n->outputs[0], &out));
  KILN_TRY(kiln_cuda_gemm_validate(d));
  (void)w;
  return kiln_cuda_lower_add_layer(cl, n->name, "cuda.gemm", "Conv", ins, n_in, &out, 1, &gp, sizeof gp, 0,
                                   (uint64_t)kiln_node_macs(g, n));
}

/* YOLOv8's DFL: Transpose(perm 0,2,1,3) -> Softmax(axis 1) -> 1x1 Conv to one channel (constant weights)
 * becomes one cuda.softmax_dot on the untransposed tensor [N][G][R][A]: y[N*G][A] = sum_r w[r] *
 * softmax_r(x) (+ bias). Three memory passes (a transpose, a softmax and a skinny GEMM over 16 inputs)
 * become one. The intermediates must have no other reader and not be graph outputs. *done = false: no match. */
/* Transpose(perm 0,2,1,3) -> Softmax(axis 1) -> 1x1 Conv to one channel with a constant fp32 weight: the
 * DFL of YOLO heads. On a match, *si / *ci are the Softmax and Conv nodes. */
static kiln_status softmax_dot_match(cuda_lower *cl, int32_t i, int32_t *si_out, int32_t *ci_out, bool *ok) {
  kiln_graph *g = cl->g;
  const kiln_node *t = &g->nodes[i];
  *ok = false;
  const kiln_value *x = kiln_node_input(g, t, 0);
  if (t->op != KILN_OP_Transpose || !x || x->dtype != KILN_DTYPE_FLOAT32 || x->shape.rank != 4 || t->n_outputs != 1)
    return NULL;
  const int64_t *perm = NULL;
  size_t cnt = 0;
  if (!kiln_node_find_attr(t, "perm")) return NULL;
  KILN_TRY(kiln_node_get_ints(t, "perm", &perm, &cnt));
  if (cnt != 4 || perm[0] != 0 || perm[1] != 2 || perm[2] != 1 || perm[3] != 3) return NULL;
  int32_t si = kiln_sole_consumer(g, t->outputs[0]);
  if (si < 0 || g->nodes[si].op != KILN_OP_Softmax || cl->lc->consumed[si]) return NULL;
  const kiln_node *sm = &g->nodes[si];
  const kiln_reduce_params *sp = sm->params;
  if (!sp || sp->coerce_2d || (sp->axis != 1 && sp->axis != -3)) return NULL;
  int32_t ci = kiln_sole_consumer(g, sm->outputs[0]);
  if (ci < 0 || g->nodes[ci].op != KILN_OP_Conv || cl->lc->consumed[ci] || !pointwise_conv(&g->nodes[ci])) return NULL;
  const kiln_node *cv = &g->nodes[ci];
  const kiln_value *w = kiln_node_input(g, cv, 1), *b = kiln_node_input(g, cv, 2), *y = kiln_node_output(g, cv, 0);
  const int64_t R = x->shape.dims[2];
  if (!w || !w->data || w->dtype != KILN_DTYPE_FLOAT32 || !y || y->shape.rank != 4 || y->shape.dims[1] != 1 ||
      w->shape.rank != 4 || w->shape.dims[0] != 1 || w->shape.dims[1] != R || (b && (!b->data || b->dtype != KILN_DTYPE_FLOAT32)))
    return NULL;
  *si_out = si, *ci_out = ci, *ok = true;
  return NULL;
}

/* The DFL's weight and optional bias as LINEAR fp32 tensors, ins[at..]; returns how many. */
static kiln_status dfl_weights(cuda_lower *cl, const kiln_node *cv, int32_t *ins, int *n) {
  *n = 0;
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, cv->inputs[1], KILN_LAYOUT_LINEAR, KILN_DTYPE_FLOAT32, false, &ins[(*n)++]));
  if (kiln_node_input(cl->g, cv, 2))
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, cv->inputs[2], KILN_LAYOUT_LINEAR, KILN_DTYPE_FLOAT32, false, &ins[(*n)++]));
  return NULL;
}

static kiln_status lower_softmax_dot(cuda_lower *cl, int32_t i, bool *done) {
  kiln_graph *g = cl->g;
  const kiln_node *t = &g->nodes[i];
  int32_t si = -1, ci = -1;
  *done = false;
  KILN_TRY(softmax_dot_match(cl, i, &si, &ci, done));
  if (!*done) return NULL;
  *done = false;
  const kiln_value *x = kiln_node_input(g, t, 0);
  const kiln_node *cv = &g->nodes[ci];
  kiln_cuda_softmax_dot_params pp = {x->shape.dims[0] * x->shape.dims[1], x->shape.dims[2], x->shape.dims[3]};
  int32_t ins[3], out;
  int n_w = 0;
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, t->inputs[0], KILN_LAYOUT_LINEAR, KILN_DTYPE_FLOAT32, false, &ins[0]));
  KILN_TRY(dfl_weights(cl, cv, ins + 1, &n_w));
  KILN_TRY(kiln_cuda_lower_linear_output(cl, cv->outputs[0], &out));
  cl->lc->consumed[si] = cl->lc->consumed[ci] = 1;
  *done = true;
  return kiln_cuda_lower_add_layer(cl, cv->name, "cuda.softmax_dot", "Transpose+Softmax+Conv", ins, 1 + n_w, &out, 1, &pp,
                                   sizeof pp, 0, (uint64_t)kiln_node_macs(g, cv));
}

/* Spatial Concat i (the box maps) -> Reshape [N,C,L] -> [N,G,R,L] -> the DFL: cuda.softmax_dot_nhwc reads
 * the NHWC maps (`maps`, already lowered) directly, so neither the fp32 [N,C,L] copy (written by a
 * convert_concat, read back by softmax_dot) nor its two passes over memory exist. The maps hold the conv
 * outputs (fp16 in fp16 engines: widening to fp32 is exact, so the softmax sees the same values). */
static kiln_status lower_dfl_from_maps(cuda_lower *cl, int32_t i, const int32_t *maps, bool *done) {
  kiln_graph *g = cl->g;
  const kiln_node *n = &g->nodes[i];
  *done = false;
  const kiln_value *y = kiln_node_output(g, n, 0);
  int32_t ri = kiln_sole_consumer(g, n->outputs[0]);
  if (!y || ri < 0 || kiln_lower_is_graph_output(g, n->outputs[0]) || cl->lc->consumed[ri]) return NULL;
  const kiln_node *r = &g->nodes[ri];
  if (r->op != KILN_OP_Reshape || r->n_outputs != 1 || kiln_lower_is_graph_output(g, r->outputs[0])) return NULL;
  const kiln_value *rv = kiln_node_output(g, r, 0);
  if (!rv || rv->shape.rank != 4 || rv->shape.dims[0] != y->shape.dims[0] || rv->shape.dims[3] != y->shape.dims[2] ||
      rv->shape.dims[1] * rv->shape.dims[2] != y->shape.dims[1])
    return NULL;
  int32_t ti = kiln_sole_consumer(g, r->outputs[0]), si = -1, ci = -1;
  bool ok = false;
  if (ti < 0 || cl->lc->consumed[ti]) return NULL;
  KILN_TRY(softmax_dot_match(cl, ti, &si, &ci, &ok));
  if (!ok || n->n_inputs > KILN_CUDA_DFL_MAX_MAPS) return NULL;
  const kiln_node *cv = &g->nodes[ci];
  kiln_cuda_softmax_dot_nhwc_params pp;
  memset(&pp, 0, sizeof pp);
  pp.n_maps = n->n_inputs, pp.groups = rv->shape.dims[1], pp.len = rv->shape.dims[2];
  int32_t ins[KILN_CUDA_DFL_MAX_MAPS + 2], out;
  int n_w = 0;
  for (int k = 0; k < n->n_inputs; k++) ins[k] = maps[k];
  KILN_TRY(dfl_weights(cl, cv, ins + n->n_inputs, &n_w));
  KILN_TRY(kiln_cuda_lower_linear_output(cl, cv->outputs[0], &out));
  cl->lc->consumed[ri] = cl->lc->consumed[ti] = cl->lc->consumed[si] = cl->lc->consumed[ci] = 1;
  *done = true;
  char name[300];
  snprintf(name, sizeof name, "%.140s (+%.140s)", n->name, cv->name);
  return kiln_cuda_lower_add_layer(cl, name, "cuda.softmax_dot_nhwc", "Concat+Transpose+Softmax+Conv", ins,
                                   n->n_inputs + n_w, &out, 1, &pp, sizeof pp, 0, (uint64_t)kiln_node_macs(g, cv));
}

/* Run a builder view helper with value x's LINEAR tensor standing in for its primary one. */
typedef kiln_status (*view_fn)(kiln_lower_ctx *, const kiln_node *, bool *);
static kiln_status linear_view(cuda_lower *cl, const kiln_node *n, view_fn fn, bool *done) {
  *done = false;
  int32_t x = n->inputs[0], lin;
  if (x < 0 || cl->g->values[x].data) return NULL;
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, x, KILN_LAYOUT_LINEAR, cl->g->values[x].dtype, false, &lin));
  int32_t saved = cl->lc->tensor_of[x];
  cl->lc->tensor_of[x] = lin;
  kiln_status st = fn(cl->lc, n, done);
  cl->lc->tensor_of[x] = saved;
  return st;
}

/* Split (cuda.split) or a one-axis unit-step Slice, as block copies. */
static kiln_status lower_split_copy(cuda_lower *cl, const kiln_node *n, int32_t axis, const int64_t *starts) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0);
  int32_t in, outs[KILN_CUDA_MAX_PARTS];
  if (n->n_outputs > KILN_CUDA_MAX_PARTS) return kiln_error(KILN_ERR_UNSUPPORTED, "Split into more than %d outputs", KILN_CUDA_MAX_PARTS);
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_LINEAR, x->dtype, false, &in));
  kiln_cuda_parts_params pp;
  memset(&pp, 0, sizeof pp);
  pp.axis = axis;
  int m = 0;
  for (int32_t k = 0; k < n->n_outputs; k++) {
    if (n->outputs[k] < 0) continue;
    KILN_TRY(kiln_cuda_lower_linear_output(cl, n->outputs[k], &outs[m]));
    pp.start[m++] = starts[k];
  }
  pp.n = m;
  return kiln_cuda_lower_add_layer(cl, n->name, "cuda.split", n->op_type, &in, 1, outs, m, &pp, sizeof pp, 0, 0);
}

/* ---- fused pointwise runs -----------------------------------------------------------------------------
 * Consecutive LINEAR elementwise nodes (linear_eltwise) whose outputs have one shape become one
 * cuda.pointwise layer: each input element is loaded once, the chain runs in registers, and only values
 * that something outside the run reads are stored. YOLOv8's box decode (Sub, Add, Add, Sub, Div on
 * [N,2,8400]) was five launches of ~4 us each at batch 1. Consecutive in node (topological) order, so every
 * input of the run is produced before its first node and every reader outside it runs after its last. */
static bool read_outside(const kiln_graph *g, int32_t v, int32_t first, int32_t last) {
  if (kiln_lower_is_graph_output(g, v)) return true;
  for (int32_t k = 0; k < g->n_nodes; k++) {
    if (k >= first && k <= last) continue;
    for (int32_t j = 0; j < g->nodes[k].n_inputs; j++)
      if (g->nodes[k].inputs[j] == v) return true;
  }
  return false;
}

static kiln_status lower_pointwise_run(cuda_lower *cl, int32_t i, bool *done) {
  *done = false;
  const kiln_graph *g = cl->g;
  if (!linear_eltwise(cl, i)) return NULL;
  const kiln_shape *shape = &g->values[g->nodes[i].outputs[0]].shape;
  if (shape->rank < 1) return NULL;
  /* slots while the run grows: external input e -> e, the result of node i + k -> RESULT + k */
  enum { RESULT = 1 << 16 };
  int32_t ext[KILN_CUDA_PW_MAX_IN], n_ext = 0, last = i - 1, n_out = 0;
  kiln_cuda_pointwise_params pp;
  memset(&pp, 0, sizeof pp);
  for (int32_t j = i; j < g->n_nodes && j - i < KILN_CUDA_PW_MAX_OPS; j++) {
    const kiln_node *n = &g->nodes[j];
    if (!linear_eltwise(cl, j) || !kiln_shape_equal(&g->values[n->outputs[0]].shape, shape)) break;
    int32_t slot[2] = {0, 0}, n_ext_j = n_ext;
    bool fits = true;
    for (int32_t k = 0; k < n->n_inputs && fits; k++) {
      int32_t v = n->inputs[k], s = -1;
      for (int32_t m = i; m < j && s < 0; m++)
        if (g->nodes[m].outputs[0] == v) s = RESULT + (m - i);
      for (int32_t e = 0; e < n_ext_j && s < 0; e++)
        if (ext[e] == v) s = e;
      if (s < 0 && n_ext_j < KILN_CUDA_PW_MAX_IN) ext[n_ext_j] = v, s = n_ext_j++;
      fits = s >= 0;
      slot[k] = s;
    }
    if (!fits) break;
    kiln_cuda_pw_op *q = &pp.ops[j - i];
    q->op = n->n_inputs == 2 ? binary_op(n) : -1;
    if (q->op < 0) unary_act(g, n, &q->act);
    q->a = slot[0], q->b = q->op >= 0 ? slot[1] : 0;
    n_ext = n_ext_j;
    last = j;
  }
  int32_t n_ops = last - i + 1;
  for (int32_t m = i; m <= last; m++) n_out += read_outside(g, g->nodes[m].outputs[0], i, last);
  if (n_ops < 2 || n_out < 1 || n_out > KILN_CUDA_PW_MAX_OUT) return NULL;
  pp.n_ops = n_ops;
  for (int32_t o = 0; o < n_ops; o++) { /* results go after the inputs */
    if (pp.ops[o].a >= RESULT) pp.ops[o].a += n_ext - RESULT;
    if (pp.ops[o].b >= RESULT) pp.ops[o].b += n_ext - RESULT;
  }
  int32_t ins[KILN_CUDA_PW_MAX_IN], outs[KILN_CUDA_PW_MAX_OUT], k = 0;
  for (int32_t e = 0; e < n_ext; e++)
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, ext[e], KILN_LAYOUT_LINEAR, KILN_DTYPE_FLOAT32, false, &ins[e]));
  char op[160] = "";
  for (int32_t m = i; m <= last; m++) {
    int32_t v = g->nodes[m].outputs[0];
    if (strlen(op) + strlen(g->nodes[m].op_type) + 2 < sizeof op)
      snprintf(op + strlen(op), sizeof op - strlen(op), "%s%s", m > i ? "+" : "", g->nodes[m].op_type);
    if (!read_outside(g, v, i, last)) continue; /* lives in registers only */
    KILN_TRY(kiln_cuda_lower_linear_output(cl, v, &outs[k]));
    pp.out_slot[k++] = n_ext + (m - i);
  }
  KILN_TRY(kiln_cuda_lower_add_layer(cl, g->nodes[i].name, "cuda.pointwise", op, ins, n_ext, outs, n_out, &pp, sizeof pp, 0,
                                     0));
  for (int32_t m = i + 1; m <= last; m++) cl->lc->consumed[m] = 1;
  *done = true;
  return NULL;
}

static kiln_status lower_linear(cuda_lower *cl, int32_t i) {
  kiln_graph *g = cl->g;
  const kiln_node *n = &g->nodes[i];
  bool done = false;
  switch (n->op) {
  case KILN_OP_Reshape: case KILN_OP_Flatten: case KILN_OP_Squeeze: case KILN_OP_Unsqueeze: case KILN_OP_Identity: {
    KILN_TRY(linear_view(cl, n, kiln_lower_try_view, &done));
    if (done) return NULL;
    /* a graph output: copy the bytes into the binding */
    int32_t in, out;
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_LINEAR, g->values[n->inputs[0]].dtype, false, &in));
    KILN_TRY(kiln_cuda_lower_linear_output(cl, n->outputs[0], &out));
    return kiln_cuda_lower_add_layer(cl, n->name, "cuda.convert", n->op_type, &in, 1, &out, 1, NULL, 0, 0, 0);
  }
  case KILN_OP_Split: {
    KILN_TRY(linear_view(cl, n, kiln_lower_try_split_view, &done));
    if (done) return NULL;
    const kiln_value *x = kiln_node_input(g, n, 0);
    int64_t axis = 0, starts[KILN_CUDA_MAX_PARTS], at = 0;
    KILN_TRY(kiln_node_get_int(n, "axis", 0, &axis));
    int32_t ax;
    KILN_TRY(kiln_normalize_axis(axis, x->shape.rank, &ax));
    if (n->n_outputs > KILN_CUDA_MAX_PARTS) return kiln_error(KILN_ERR_UNSUPPORTED, "Split into too many outputs");
    for (int32_t k = 0; k < n->n_outputs; k++) {
      starts[k] = at;
      if (n->outputs[k] >= 0) at += g->values[n->outputs[k]].shape.dims[ax];
    }
    return lower_split_copy(cl, n, ax, starts);
  }
  case KILN_OP_Slice: {
    KILN_TRY(linear_view(cl, n, kiln_lower_try_slice_view, &done));
    if (done) return NULL;
    int32_t ax;
    int64_t start;
    bool ok;
    KILN_TRY(kiln_lower_slice_axis(cl->lc, n, &ax, &start, &ok));
    if (!ok) { /* steps or several sliced axes: a strided copy (lower_cuda_ops.c) */
      KILN_TRY(kiln_lower_cuda_ops(cl, i, &done));
      if (done) return NULL;
      return kiln_error(KILN_ERR_UNSUPPORTED, "this Slice has no CUDA kernel (non-constant parameters?)");
    }
    KILN_TRY(try_row_slice_view(cl, n, ax, start, &done));
    if (done) return NULL;
    return lower_split_copy(cl, n, ax, &start);
  }
  case KILN_OP_Conv:
    if (pointwise_conv(n)) return lower_pointwise_gemm(cl, i);
    break;
  case KILN_OP_Concat:
    if (cl->spatial_concat[i]) return lower_spatial_concat(cl, i);
    return lower_concat(cl, n, KILN_LAYOUT_LINEAR);
  case KILN_OP_Transpose: {
    KILN_TRY(lower_softmax_dot(cl, i, &done));
    if (done) return NULL;
    const kiln_value *x = kiln_node_input(g, n, 0);
    kiln_cuda_transpose_params tp;
    memset(&tp, 0, sizeof tp);
    tp.rank = x->shape.rank;
    if (tp.rank < 1 || tp.rank > 6) return kiln_error(KILN_ERR_UNSUPPORTED, "Transpose of rank %d on the GPU", tp.rank);
    const int64_t *perm = NULL;
    size_t cnt = 0;
    if (kiln_node_find_attr(n, "perm")) KILN_TRY(kiln_node_get_ints(n, "perm", &perm, &cnt));
    for (int32_t k = 0; k < tp.rank; k++) tp.perm[k] = perm && cnt == (size_t)tp.rank ? (int32_t)perm[k] : tp.rank - 1 - k;
    int32_t in, out;
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_LINEAR, x->dtype, false, &in));
    KILN_TRY(kiln_cuda_lower_linear_output(cl, n->outputs[0], &out));
    return kiln_cuda_lower_add_layer(cl, n->name, "cuda.transpose", "Transpose", &in, 1, &out, 1, &tp, sizeof tp, 0, 0);
  }
  case KILN_OP_Softmax: {
    const kiln_value *x = kiln_node_input(g, n, 0);
    const kiln_reduce_params *p = n->params;
    if (!p || x->dtype != KILN_DTYPE_FLOAT32 || x->shape.rank < 1) return kiln_error(KILN_ERR_UNSUPPORTED, "Softmax input");
    int32_t axis;
    KILN_TRY(kiln_normalize_axis(p->axis, x->shape.rank, &axis));
    kiln_cuda_softmax_params sp = {1, x->shape.dims[axis], 1};
    for (int32_t d = 0; d < axis; d++) sp.outer *= x->shape.dims[d];
    for (int32_t d = axis + 1; d < x->shape.rank; d++) sp.inner *= x->shape.dims[d];
    if (p->coerce_2d) sp.axis *= sp.inner, sp.inner = 1; /* before opset 13: everything from `axis` on */
    int32_t in, out;
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_LINEAR, x->dtype, false, &in));
    KILN_TRY(kiln_cuda_lower_linear_output(cl, n->outputs[0], &out));
    return kiln_cuda_lower_add_layer(cl, n->name, "cuda.softmax", "Softmax", &in, 1, &out, 1, &sp, sizeof sp, 0, 0);
  }
  default: break;
  }
  kiln_epilogue ep;
  if ((n->n_inputs == 2 && binary_op(n) >= 0) || (n->n_inputs == 1 && unary_act(g, n, &ep))) {
    KILN_TRY(lower_pointwise_run(cl, i, &done)); /* with the elementwise nodes after it, if any */
    if (done) return NULL;
    return lower_eltwise(cl, n, KILN_LAYOUT_LINEAR);
  }
  KILN_TRY(kiln_lower_cuda_ops(cl, i, &done));
  if (done) return NULL;
  return kiln_error(KILN_ERR_UNSUPPORTED, "%s has no CUDA kernel yet (GPU engines cannot fall back to the CPU so far)",
                    n->op_type);
}

/* ---- the target ------------------------------------------------------------------------------------- */
static kiln_status cuda_target(const kiln_build_config *cfg, kiln_target_rec *t) {
  memset(t, 0, sizeof *t);
  t->device = KILN_TARGET_CUDA;
#ifndef KILN_HAVE_CUDA
  (void)cfg;
  return kiln_error(KILN_ERR_UNSUPPORTED, "this kiln was built without CUDA (no nvcc at build time): it cannot build GPU engines");
#else
  if (cfg->cuda_arch) {
    if (cfg->cuda_arch < 50 || cfg->cuda_arch > 200)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "CUDA architecture %d is not a compute capability like 90", cfg->cuda_arch);
    t->cc_major = (uint32_t)(cfg->cuda_arch / 10);
    t->cc_minor = (uint32_t)(cfg->cuda_arch % 10);
    snprintf(t->device_name, sizeof t->device_name, "sm_%d", cfg->cuda_arch);
    return NULL;
  }
  if (kiln_cuda_device_count() <= cfg->cuda_device || cfg->cuda_device < 0)
    return kiln_error(KILN_ERR_DEVICE, "no CUDA device %d to build for (to build without a GPU, name its compute capability, "
                      "e.g. --cuda-arch 90)", cfg->cuda_device);
  kiln_cuda_device_info info;
  KILN_TRY(kiln_cuda_device_query(cfg->cuda_device, &info));
  t->cc_major = (uint32_t)info.cc_major;
  t->cc_minor = (uint32_t)info.cc_minor;
  t->driver_version = (uint32_t)info.driver_version;
  t->runtime_version = (uint32_t)info.runtime_version;
  snprintf(t->device_name, sizeof t->device_name, "%.63s", info.name);
  return NULL;
#endif
}

kiln_status kiln_lower_cuda(kiln_lower_ctx *lc, kiln_target_rec *target) {
  KILN_TRY(cuda_target(lc->cfg, target));
  kiln_graph *g = lc->g;
  cuda_lower cl = {lc, g, lc->cfg->precision == KILN_PRECISION_FP16, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  size_t nv = (size_t)g->n_values + 1;
  cl.kind = calloc((size_t)g->n_nodes + 1, 1);
  cl.nhwc = calloc(nv, 1);
  cl.half = calloc(nv, 1);
  cl.alt = malloc(nv * sizeof(int32_t));
  cl.io_of = malloc(nv * sizeof(int32_t));
  cl.spatial_concat = calloc((size_t)g->n_nodes + 1, 1);
  cl.concat_act = malloc(sizeof(int32_t) * ((size_t)g->n_nodes + 1));
  for (int32_t i = 0; cl.concat_act && i <= g->n_nodes; i++) cl.concat_act[i] = -1;
  kiln_status st = kiln_conv_tuner_create(lc->cfg, &cl.tuner);
  if (!st && (!cl.kind || !cl.nhwc || !cl.half || !cl.alt || !cl.io_of || !cl.spatial_concat || !cl.concat_act)) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  for (size_t v = 0; !st && v < nv; v++) cl.alt[v] = cl.io_of[v] = -1;
  if (!st) {
    assign_layouts(&cl);
    plan_spatial_concats(&cl);
    st = place_concats(&cl);
    if (!st) st = place_linear_concats(&cl);
  }
  for (int32_t i = 0; !st && i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    if (lc->consumed[i]) continue;
    switch ((node_kind)cl.kind[i]) {
    case K_CONV: st = lower_conv(&cl, i); break;
    case K_POOL: st = lower_pool(&cl, i); break;
    case K_RESIZE: st = lower_resize(&cl, n); break;
    case K_CONCAT_C: st = lower_concat(&cl, n, KILN_LAYOUT_NHWC); break;
    case K_SPLIT_C: st = lower_split_nhwc(&cl, n); break;
    case K_ELTWISE: st = lower_eltwise(&cl, n, KILN_LAYOUT_NHWC); break;
    default: st = lower_linear(&cl, i); break;
    }
    if (st) st = kiln_error_prefix(st, "building node '%s' (%s) for CUDA: ", n->name, n->op_type);
    else if (lc->cfg->verbose) fprintf(stderr, "kiln build: %-40s %-14s %s\n", n->name, n->op_type, cl.kind[i] ? "NHWC" : "");
  }
  /* Graph outputs that are inputs or constants: a copy into their own binding. */
  if (!st) st = kiln_lower_output_copies(lc, "cuda.convert", NULL, 0, "", true);
  /* Every layer is written: choose the conv kernels (timing cache, else timing on this GPU). */
  if (!st) st = kiln_error_prefix(kiln_conv_tuner_finish(cl.tuner, lc->w), "choosing conv kernels: ");
  kiln_conv_tuner_destroy(cl.tuner);
  free(cl.kind);
  free(cl.nhwc);
  free(cl.half);
  free(cl.alt);
  free(cl.io_of);
  free(cl.spatial_concat);
  free(cl.concat_act);
  return st;
}
#endif /* KILN_HAVE_CUDA */

/*
 * The builder: network -> optimized graph -> layers -> engine image.
 *
 *  1. re-batch if asked, then simplify (fold, no-ops, cleanup), fold BN into convs, simplify again;
 *     every shape must now be static
 *  2. lower nodes to layers in topological order:
 *     - shape-only ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity) become views: no layer, no copy
 *     - fusable patterns go to fast kernels (lower_cpu.c): Conv + bias + activation (+ residual add)
 *     - anything else runs through the "ref" kernel (the reference implementation)
 *  3. plan the activation arena, write the engine (engine_writer.c)
 */
#include "build/builder.h"

#include "backend/cpu/cpu_caps.h"
#include "core/dtype.h"
#include "core/file.h"
#include "onnx/onnx.h"
#include "ir/ops/shape.h"
#include "passes/passes.h"
#include "runtime/kernel.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kiln_build_config_init(kiln_build_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->device = KILN_DEVICE_CPU;
  cfg->precision = KILN_PRECISION_FP32;
}

void kiln_free(void *p) { free(p); }

bool kiln_lower_is_graph_output(const kiln_graph *g, int32_t v) {
  for (int32_t k = 0; k < g->n_outputs; k++)
    if (g->outputs[k] == v) return true;
  return false;
}

/* Tensor id for a graph value, creating a WEIGHT tensor for constants on first use. */
kiln_status kiln_lower_tensor_of(kiln_lower_ctx *lc, int32_t v, int32_t *out) {
  if (v < 0) {
    *out = -1;
    return NULL;
  }
  if (lc->tensor_of[v] >= 0) {
    *out = lc->tensor_of[v];
    return NULL;
  }
  const kiln_value *val = &lc->g->values[v];
  if (!val->data)
    return kiln_error(KILN_ERR_INTERNAL, "tensor '%s' is used before it is produced", val->name);
  KILN_TRY(kiln_ew_add_weight(lc->w, val->name, val->dtype, (uint32_t)val->shape.rank, val->shape.dims, val->data,
                              &lc->tensor_of[v]));
  *out = lc->tensor_of[v];
  return NULL;
}

/* A new ARENA tensor for a node output (graph outputs were made IO tensors up front). */
kiln_status kiln_lower_output(kiln_lower_ctx *lc, int32_t v, int32_t *out) {
  if (v < 0) {
    *out = -1;
    return NULL;
  }
  if (lc->tensor_of[v] >= 0) {
    *out = lc->tensor_of[v];
    return NULL;
  }
  const kiln_value *val = &lc->g->values[v];
  KILN_TRY(kiln_ew_add_tensor(lc->w, val->name, val->dtype, (uint32_t)val->shape.rank, val->shape.dims,
                              KILN_STORAGE_ARENA, -1, 0, &lc->tensor_of[v]));
  *out = lc->tensor_of[v];
  return NULL;
}

static kiln_status lower_ref(kiln_lower_ctx *lc, const kiln_node *n) {
  int32_t ins[64], outs[64];
  if (n->n_inputs > 64 || n->n_outputs > 64) return kiln_error(KILN_ERR_UNSUPPORTED, "node '%s' has too many tensors", n->name);
  for (int32_t k = 0; k < n->n_inputs; k++) KILN_TRY(kiln_lower_tensor_of(lc, n->inputs[k], &ins[k]));
  for (int32_t k = 0; k < n->n_outputs; k++) KILN_TRY(kiln_lower_output(lc, n->outputs[k], &outs[k]));
  uint8_t *params;
  size_t size;
  KILN_TRY(kiln_attrs_serialize(n, &params, &size));
  kiln_status st = kiln_ew_add_layer(lc->w, n->name, "ref", n->op_type, ins, (uint32_t)n->n_inputs, outs,
                                     (uint32_t)n->n_outputs, params, size, 0, (uint64_t)kiln_node_macs(lc->g, n));
  free(params);
  return st;
}

static bool is_view_op(const kiln_node *n) {
  switch (n->op) {
  case KILN_OP_Reshape: case KILN_OP_Flatten: case KILN_OP_Squeeze: case KILN_OP_Unsqueeze: case KILN_OP_Identity:
    return true;
  default: return false;
  }
}

/* Views share their input's memory. Not for graph outputs (the caller's buffer must receive the data) and
 * not for constant inputs (folding removed those). */
kiln_status kiln_lower_try_view(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  *done = false;
  if (!is_view_op(n) || n->n_outputs != 1 || n->inputs[0] < 0) return NULL;
  int32_t in = n->inputs[0], out = n->outputs[0];
  if (kiln_lower_is_graph_output(lc->g, out) || lc->g->values[in].data || lc->tensor_of[in] < 0) return NULL;
  const kiln_value *ov = &lc->g->values[out];
  int32_t base = lc->tensor_of[in];
  const kiln_tensor_rec *bt = kiln_ew_tensor(lc->w, base);
  uint64_t off = 0;
  if (bt->storage == KILN_STORAGE_VIEW) { /* point at the root so chains stay flat */
    off = bt->offset;
    base = bt->alias_of;
  }
  KILN_TRY(kiln_ew_add_tensor(lc->w, ov->name, ov->dtype, (uint32_t)ov->shape.rank, ov->shape.dims, KILN_STORAGE_VIEW,
                              base, off, &lc->tensor_of[out]));
  *done = true;
  return NULL;
}


/* A view of tensor `base` at byte offset `off`, flattened so it points at a non-view root. */
kiln_status kiln_lower_view(kiln_lower_ctx *lc, int32_t v, int32_t base, uint64_t off) {
  const kiln_tensor_rec *bt = kiln_ew_tensor(lc->w, base);
  if (bt->storage == KILN_STORAGE_VIEW) {
    off += bt->offset;
    base = bt->alias_of;
  }
  const kiln_value *val = &lc->g->values[v];
  return kiln_ew_add_tensor(lc->w, val->name, val->dtype, (uint32_t)val->shape.rank, val->shape.dims, KILN_STORAGE_VIEW,
                            base, off, &lc->tensor_of[v]);
}

/*
 * Concat elision: when a Concat's inputs are contiguous slices of its output (every dim before the axis is
 * 1, as for YOLO's channel concats at batch 1), each producer writes straight into its slice and the
 * Concat disappears. Inputs that are graph inputs/outputs, constants, produced by view ops, repeated, or
 * already placed in another concat keep the Concat as a copy. Outer concats are placed first (reverse
 * order) so nested ones chain into one buffer.
 */
static kiln_status place_concats(kiln_lower_ctx *lc) {
  kiln_graph *g = lc->g;
  for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
    const kiln_node *n = &g->nodes[i];
    if (n->op != KILN_OP_Concat || n->n_outputs != 1 || n->n_inputs < 1) continue;
    const kiln_value *out = &g->values[n->outputs[0]];
    int64_t axis = 0;
    KILN_TRY(kiln_node_get_int(n, "axis", 0, &axis));
    if (axis < 0) axis += out->shape.rank;
    if (axis < 0 || axis >= out->shape.rank) continue;
    int64_t outer = 1;
    for (int32_t d = 0; d < axis; d++) outer *= out->shape.dims[d];
    if (outer != 1) continue;
    bool ok = !kiln_lower_is_graph_output(g, n->outputs[0]) || lc->tensor_of[n->outputs[0]] >= 0;
    /* YOLO's C2f: Concat(Split(t)..., more): place t itself at the start of the buffer, so the Split
     * becomes views too and nothing is copied. */
    int32_t split_in = -1, n_split = 0;
    if (ok && n->inputs[0] >= 0 && g->values[n->inputs[0]].producer >= 0) {
      const kiln_node *sp = &g->nodes[g->values[n->inputs[0]].producer];
      int32_t t = sp->n_inputs ? sp->inputs[0] : -1;
      bool whole = sp->op == KILN_OP_Split && sp->n_outputs <= n->n_inputs && t >= 0 && !g->values[t].data &&
                   g->values[t].producer >= 0 && lc->tensor_of[t] < 0 && !kiln_lower_is_graph_output(g, t) &&
                   kiln_graph_count_uses(g, t) == 1 && !is_view_op(&g->nodes[g->values[t].producer]);
      int64_t sp_axis = -1;
      if (whole) {
        KILN_TRY(kiln_node_get_int(sp, "axis", 0, &sp_axis));
        if (sp_axis < 0) sp_axis += g->values[t].shape.rank;
      }
      whole = whole && sp_axis == axis;
      for (int32_t k = 0; whole && k < sp->n_outputs; k++)
        whole = sp->outputs[k] == n->inputs[k] && !kiln_lower_is_graph_output(g, sp->outputs[k]);
      if (whole) {
        split_in = t;
        n_split = sp->n_outputs;
      }
    }
    for (int32_t k = n_split; ok && k < n->n_inputs; k++) {
      int32_t v = n->inputs[k];
      if (v < 0 || g->values[v].data || g->values[v].producer < 0 || lc->tensor_of[v] >= 0 || kiln_lower_is_graph_output(g, v)) ok = false;
      else if (is_view_op(&g->nodes[g->values[v].producer])) ok = false;
      for (int32_t j = 0; ok && j < k; j++) ok = n->inputs[j] != v;
    }
    if (!ok) continue;
    int32_t base;
    KILN_TRY(kiln_lower_output(lc, n->outputs[0], &base));
    uint64_t off = 0;
    if (split_in >= 0) {
      KILN_TRY(kiln_lower_view(lc, split_in, base, 0)); /* the Split then lowers to views of it (try_split_view) */
      off = kiln_ew_tensor(lc->w, lc->tensor_of[split_in])->nbytes;
    }
    for (int32_t k = 0; k < n->n_inputs; k++) {
      if (k < n_split) continue;
      KILN_TRY(kiln_lower_view(lc, n->inputs[k], base, off));
      off += kiln_ew_tensor(lc->w, lc->tensor_of[n->inputs[k]])->nbytes;
    }
    lc->consumed[i] = 1;
  }
  return NULL;
}

/* Split along an axis whose outer dims are 1: the outputs are views of consecutive slices of the input. */
kiln_status kiln_lower_try_split_view(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  *done = false;
  if (n->op != KILN_OP_Split || n->inputs[0] < 0 || lc->g->values[n->inputs[0]].data) return NULL;
  int32_t in = lc->tensor_of[n->inputs[0]];
  if (in < 0) return NULL;
  const kiln_value *x = &lc->g->values[n->inputs[0]];
  int64_t axis = 0;
  KILN_TRY(kiln_node_get_int(n, "axis", 0, &axis));
  if (axis < 0) axis += x->shape.rank;
  if (axis < 0 || axis >= x->shape.rank) return NULL;
  for (int32_t d = 0; d < axis; d++)
    if (x->shape.dims[d] != 1) return NULL;
  for (int32_t k = 0; k < n->n_outputs; k++)
    if (n->outputs[k] < 0 || lc->tensor_of[n->outputs[k]] >= 0 || kiln_lower_is_graph_output(lc->g, n->outputs[k])) return NULL;
  uint64_t off = 0;
  for (int32_t k = 0; k < n->n_outputs; k++) {
    KILN_TRY(kiln_lower_view(lc, n->outputs[k], in, off));
    off += kiln_ew_tensor(lc->w, lc->tensor_of[n->outputs[k]])->nbytes;
  }
  *done = true;
  return NULL;
}


/* A Slice with unit steps whose result is one contiguous block of its input (every dim before the first
 * sliced axis is 1 and every dim after it is whole) is a view at the block's start: YOLOv8's box/class
 * split of [1,4,8400]-like heads. */
kiln_status kiln_lower_slice_axis(kiln_lower_ctx *lc, const kiln_node *n, int32_t *axis, int64_t *start, bool *ok) {
  *ok = false;
  if (n->op != KILN_OP_Slice || n->n_outputs != 1 || n->inputs[0] < 0 || n->outputs[0] < 0) return NULL;
  kiln_shape shapes[5];
  kiln_ints ints[5];
  for (int32_t k = 0; k < 5; k++) {
    const kiln_value *v = kiln_node_input(lc->g, n, k);
    if (v) {
      shapes[k] = v->shape;
      kiln_ints_from_value(v, &ints[k]);
      if (k > 0 && !ints[k].known) return NULL;
    } else {
      kiln_shape_unknown(&shapes[k]);
      memset(&ints[k], 0, sizeof ints[k]);
    }
  }
  kiln_shape_resolved r;
  kiln_shape o;
  kiln_status st = kiln_shape_resolve(lc->g, n, shapes, ints, &r, &o);
  if (st) {
    kiln_status_destroy(st);
    return NULL;
  }
  const kiln_shape *x = &shapes[0];
  int32_t first = -1;
  for (int32_t d = 0; d < x->rank; d++) {
    if (r.step[d] != 1) return NULL;
    if (o.dims[d] != x->dims[d]) {
      if (first >= 0) return NULL; /* more than one axis sliced */
      first = d;
    }
  }
  if (first < 0) first = 0;
  *axis = first;
  *start = o.dims[first] == x->dims[first] ? 0 : r.start[first];
  *ok = true;
  return NULL;
}

/* A Slice with unit steps whose result is one contiguous block of its input (every dim before the first
 * sliced axis is 1 and every dim after it is whole) is a view at the block's start: YOLOv8's box/class
 * split of [1,4,8400]-like heads. */
kiln_status kiln_lower_try_slice_view(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  *done = false;
  if (n->op != KILN_OP_Slice || n->n_outputs != 1 || n->inputs[0] < 0 || n->outputs[0] < 0) return NULL;
  int32_t in = lc->tensor_of[n->inputs[0]], out = n->outputs[0];
  if (in < 0 || lc->tensor_of[out] >= 0 || kiln_lower_is_graph_output(lc->g, out) || lc->g->values[n->inputs[0]].data) return NULL;
  int32_t first;
  int64_t start;
  bool ok;
  KILN_TRY(kiln_lower_slice_axis(lc, n, &first, &start, &ok));
  if (!ok) return NULL;
  const kiln_shape *x = &lc->g->values[n->inputs[0]].shape;
  int64_t inner = 1;
  for (int32_t d = first + 1; d < x->rank; d++) inner *= x->dims[d];
  for (int32_t d = 0; d < first; d++)
    if (x->dims[d] != 1) return NULL;
  uint64_t off = (uint64_t)(start * inner) * kiln_dtype_size(lc->g->values[n->inputs[0]].dtype);
  KILN_TRY(kiln_lower_view(lc, out, in, off));
  *done = true;
  return NULL;
}

static kiln_status optimize(kiln_graph *g, const kiln_build_config *cfg) {
  if (cfg->batch > 0) KILN_TRY(kiln_pass_rebatch(g, cfg->batch));
  KILN_TRY(kiln_passes_simplify(g));
  int fused = 0;
  KILN_TRY(kiln_pass_fuse_conv_bn(g, &fused));
  if (fused) KILN_TRY(kiln_passes_simplify(g));
  KILN_TRY(kiln_graph_infer_shapes(g));
  for (int32_t v = 0; v < g->n_values; v++) {
    const kiln_value *val = &g->values[v];
    if (kiln_shape_is_static(&val->shape) || kiln_graph_count_uses(g, v) == 0) continue;
    char buf[128];
    return kiln_error(KILN_ERR_UNSUPPORTED, "tensor '%s' has shape %s: engines need static shapes (build with --batch N)",
                      val->name, kiln_shape_format(g, &val->shape, buf, sizeof buf));
  }
  return NULL;
}

kiln_status kiln_lower_output_copies(kiln_lower_ctx *lc, const char *kernel, const void *params, size_t params_size,
                                     const char *name_suffix, bool float_only) {
  kiln_graph *g = lc->g;
  for (int32_t k = 0; k < g->n_outputs; k++) {
    int32_t v = g->outputs[k];
    const kiln_value *val = &g->values[v];
    if (!val->data && val->producer >= 0) continue;
    if (float_only && val->dtype != KILN_DTYPE_FLOAT32 && val->dtype != KILN_DTYPE_FLOAT16)
      return kiln_error(KILN_ERR_UNSUPPORTED, "output '%s' of type %s copied from an input or constant", val->name,
                        kiln_dtype_name(val->dtype));
    int32_t src, dst;
    char name[300];
    snprintf(name, sizeof name, "%.256s%s", val->name, name_suffix);
    KILN_TRY(kiln_lower_tensor_of(lc, v, &src));
    KILN_TRY(kiln_ew_add_tensor(lc->w, val->name, val->dtype, (uint32_t)val->shape.rank, val->shape.dims, KILN_STORAGE_IO,
                                -1, 0, &dst));
    KILN_TRY(kiln_ew_add_binding(lc->w, dst, 0));
    KILN_TRY(kiln_ew_add_layer(lc->w, name, kernel, "Identity", &src, 1, &dst, 1, params, params_size, 0, 0));
  }
  return NULL;
}

/* The CPU lowering: in-place Concats first, then every node in order (views, fast kernels, else ref). */
static kiln_status lower_cpu(kiln_lower_ctx *lc) {
  kiln_graph *g = lc->g;
  const kiln_build_config *cfg = lc->cfg;
  kiln_status st = NULL;
  st = place_concats(lc);
  for (int32_t i = 0; !st && i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    if (lc->consumed[i]) continue;
    bool done = false;
    st = kiln_lower_try_view(lc, n, &done);
    if (!st && !done) st = kiln_lower_try_split_view(lc, n, &done);
    if (!st && !done) st = kiln_lower_try_slice_view(lc, n, &done);
    if (!st && !done) st = kiln_lower_cpu_fast(lc, i, &done);
    if (!st && !done) st = lower_ref(lc, n);
    if (st) st = kiln_error_prefix(st, "building node '%s' (%s): ", n->name, n->op_type);
    else if (cfg->verbose)
      fprintf(stderr, "kiln build: %-40s %-14s\n", n->name, n->op_type);
  }
  if (!st) st = kiln_lower_output_copies(lc, "ref", "\0\0\0\0", 4, " (output)", false);
  return st;
}

kiln_status kiln_build(kiln_network *g, const kiln_build_config *cfg, void **engine, size_t *engine_size) {
  *engine = NULL;
  *engine_size = 0;
  kiln_build_config defaults;
  if (!cfg) {
    kiln_build_config_init(&defaults);
    cfg = &defaults;
  }
  if (cfg->device != KILN_DEVICE_CPU && cfg->device != KILN_DEVICE_CUDA)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "unknown device %d", (int)cfg->device);
  if (cfg->device == KILN_DEVICE_CPU && cfg->precision != KILN_PRECISION_FP32)
    return kiln_error(KILN_ERR_UNSUPPORTED, "CPU engines are fp32 for now (fp16 is for --device cuda; int8 comes with its issue)");
  if (cfg->device == KILN_DEVICE_CUDA && cfg->precision != KILN_PRECISION_FP32 && cfg->precision != KILN_PRECISION_FP16)
    return kiln_error(KILN_ERR_UNSUPPORTED, "CUDA engines are fp32 or fp16 for now (int8 comes with its issue)");
  if (cfg->batch < 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "batch must be positive");
  KILN_TRY(optimize(g, cfg));

  kiln_lower_ctx lc = {0};
  lc.g = g;
  lc.cfg = cfg;
  lc.isa = kiln_cpu_isa();
  lc.tensor_of = malloc(sizeof(int32_t) * ((size_t)g->n_values + 1));
  lc.consumed = calloc((size_t)g->n_nodes + 1, 1);
  KILN_CHECK_ALLOC(lc.tensor_of);
  kiln_status st = lc.consumed ? kiln_ew_create(&lc.w) : kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  for (int32_t v = 0; v < g->n_values; v++) lc.tensor_of[v] = -1;
  /* Bindings first, so inputs and outputs are IO tensors with slots in model order. */
  for (int32_t k = 0; !st && k < g->n_inputs; k++) {
    const kiln_value *val = &g->values[g->inputs[k]];
    st = kiln_ew_add_tensor(lc.w, val->name, val->dtype, (uint32_t)val->shape.rank, val->shape.dims, KILN_STORAGE_IO,
                            -1, 0, &lc.tensor_of[g->inputs[k]]);
    if (!st) st = kiln_ew_add_binding(lc.w, lc.tensor_of[g->inputs[k]], 1);
  }
  for (int32_t k = 0; !st && k < g->n_outputs; k++) {
    int32_t v = g->outputs[k];
    const kiln_value *val = &g->values[v];
    if (lc.tensor_of[v] >= 0 || val->data || val->producer < 0) continue; /* handled below with a copy layer */
    st = kiln_ew_add_tensor(lc.w, val->name, val->dtype, (uint32_t)val->shape.rank, val->shape.dims, KILN_STORAGE_IO,
                            -1, 0, &lc.tensor_of[v]);
    if (!st) st = kiln_ew_add_binding(lc.w, lc.tensor_of[v], 0);
  }
  kiln_target_rec target;
  memset(&target, 0, sizeof target);
  if (!st && cfg->device == KILN_DEVICE_CUDA) st = kiln_lower_cuda(&lc, &target);
  else if (!st) st = lower_cpu(&lc);
  if (!st && cfg->device == KILN_DEVICE_CPU) {
    target.device = KILN_TARGET_CPU;
    target.cpu_isa = (uint32_t)lc.max_isa_used;
    snprintf(target.device_name, sizeof target.device_name, "x86-64 %s", kiln_isa_name(lc.max_isa_used));
  }
  if (!st) {
    kiln_options_rec opt;
    memset(&opt, 0, sizeof opt);
    opt.precision = (uint32_t)cfg->precision;
    opt.device = (uint32_t)cfg->device;
    opt.batch = cfg->batch;
    opt.threads = (uint32_t)(cfg->threads > 0 ? cfg->threads : 0);
    opt.workspace_limit = cfg->workspace_limit;
    opt.opset = g->opset;
    st = kiln_ew_finish(lc.w, &target, &opt, engine, engine_size);
  }
  kiln_ew_destroy(lc.w);
  free(lc.tensor_of);
  free(lc.consumed);
  return st;
}

kiln_status kiln_build_to_file(kiln_network *net, const kiln_build_config *cfg, const char *path) {
  void *img;
  size_t size;
  KILN_TRY(kiln_build(net, cfg, &img, &size));
  kiln_status st = kiln_file_write_atomic(path, img, size);
  free(img);
  return st;
}

/*
 * More LINEAR ops for CUDA engines (see lower_cuda.h): each matched node becomes one "cuda.*" layer from
 * backend/cuda/kernels_cuda_ops.c (parameters in cuda_layers_ops.h):
 *   MatMul, Gemm                          -> cuda.gemm (exact fp32; MatMul's numpy batch broadcasting)
 *   Reduce* (consecutive constant axes)   -> cuda.reduce; ArgMax/ArgMin -> cuda.reduce (int64 output)
 *   Slice (any constant steps), Expand, Tile -> cuda.strided_copy (any element size)
 *   Gather (constant in-range indices, or int64 ones computed at run time) -> cuda.gather
 *   Pad (constant pads; constant/edge/reflect) -> cuda.pad
 *   Resize/Upsample (4-D, H and W, nearest/linear, all but crop-and-resize coordinates) -> cuda.resize
 *   unary math (Exp, Log, Sqrt, Erf, Round, trig, Elu, Softplus, Gelu, ...) -> cuda.unary
 *   Equal/Less/Greater/LessOrEqual/GreaterOrEqual on fp32, Where with fp32 values -> cuda.select
 * Every tensor is LINEAR; float tensors are fp32 even in fp16 engines (lower_cuda.c's rule for LINEAR
 * tensors). A node that does not fit (dtype, rank, non-constant parameters, a mode without a kernel) is
 * left undone (*done = false) before anything is added to the engine, and the build names it.
 */
#include "build/lower_cuda.h"

#ifdef KILN_HAVE_CUDA /* the CUDA lowering exists only with nvcc (lower_cuda.c) */

#include "backend/cuda/cuda_layers_ops.h"
#include "core/dtype.h"
#include "ir/infer_util.h"
#include "ir/ops/activation.h"
#include "ir/ops/index.h"
#include "ir/ops/matrix.h"
#include "ir/ops/pool.h"
#include "ir/ops/reduce.h"
#include "ir/ops/shape.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_f32(const kiln_value *v) { return v && v->dtype == KILN_DTYPE_FLOAT32 && kiln_shape_is_static(&v->shape); }

/* Element sizes the copy kernels take (any dtype of 1, 2, 4 or 8 bytes; strings have size 0). */
static bool copyable(const kiln_value *v) {
  if (!v || !kiln_shape_is_static(&v->shape)) return false;
  size_t es = kiln_dtype_size(v->dtype);
  return es == 1 || es == 2 || es == 4 || es == 8;
}

static bool ok(kiln_status st) {
  if (!st) return true;
  kiln_status_destroy(st);
  return false;
}

/* The node's only output value, static. */
static const kiln_value *out0(cuda_lower *cl, const kiln_node *n) {
  const kiln_value *y = n->n_outputs >= 1 ? kiln_node_output(cl->g, n, 0) : NULL;
  return y && kiln_shape_is_static(&y->shape) ? y : NULL;
}

/* Inputs (the listed value ids, -1 = none) as LINEAR tensors of their own dtype, the LINEAR output, and
 * one layer. Called only once the node is known to fit: this is where the engine grows. */
static kiln_status emit(cuda_lower *cl, const kiln_node *n, const char *kernel, const int32_t *vals, int n_in, const void *params,
                        size_t size, uint64_t macs, bool *done) {
  int32_t ins[4], out;
  for (int k = 0; k < n_in; k++) {
    const kiln_value *v = &cl->g->values[vals[k]];
    KILN_TRY(kiln_cuda_lower_tensor_as(cl, vals[k], KILN_LAYOUT_LINEAR, v->dtype, false, &ins[k]));
  }
  KILN_TRY(kiln_cuda_lower_linear_output(cl, n->outputs[0], &out));
  KILN_TRY(kiln_cuda_lower_add_layer(cl, n->name, kernel, n->op_type, ins, n_in, &out, 1, params, size, 0, macs));
  *done = true;
  return NULL;
}

/* ---- MatMul / Gemm ---------------------------------------------------------------------------------- */
static kiln_status lower_matmul(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *a = kiln_node_input(cl->g, n, 0), *b = kiln_node_input(cl->g, n, 1), *y = out0(cl, n);
  if (!is_f32(a) || !is_f32(b) || !y || y->dtype != KILN_DTYPE_FLOAT32) return NULL;
  int32_t ra = a->shape.rank, rb = b->shape.rank;
  if (ra < 1 || rb < 1 || ra > 6 || rb > 6) return NULL;
  const int64_t *ad = a->shape.dims, *bd = b->shape.dims;
  /* 1-D operands: A [K] is [1,K] (M dropped from y), B [K] is [K,1] (N dropped) */
  int64_t m = ra >= 2 ? ad[ra - 2] : 1, k = ad[ra - 1], kb = rb >= 2 ? bd[rb - 2] : bd[0], nn = rb >= 2 ? bd[rb - 1] : 1;
  if (k != kb) return NULL;
  int32_t na = ra >= 2 ? ra - 2 : 0, nb = rb >= 2 ? rb - 2 : 0, br = na > nb ? na : nb;
  /* batch dims right-aligned, with dense strides per operand (0 where it broadcasts) and for y */
  int64_t dims[8], as[8], bs[8], ys[8], sa = m * k, sb = k * nn, sy = m * nn;
  for (int32_t d = br - 1; d >= 0; d--) {
    int32_t ia = d - (br - na), ib = d - (br - nb);
    int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
    if (da != db && da != 1 && db != 1) return NULL;
    dims[d] = da == 1 ? db : da;
    as[d] = da == 1 ? 0 : sa;
    bs[d] = db == 1 ? 0 : sb;
    ys[d] = sy;
    sa *= da, sb *= db, sy *= dims[d];
  }
  if (sy != kiln_shape_numel(&y->shape)) return NULL;
  /* drop 1-dims, merge neighbours that are contiguous in A, B and y alike (the kernel takes 4) */
  kiln_cuda_gemm_params p;
  memset(&p, 0, sizeof p);
  kiln_cuda_gemm_desc *g = &p.desc;
  int r = 0;
  for (int32_t d = 0; d < br; d++) {
    if (dims[d] == 1) continue;
    if (r > 0 && as[d] * dims[d] == g->a_batch_stride[r - 1] && bs[d] * dims[d] == g->b_batch_stride[r - 1] &&
        ys[d] * dims[d] == g->c_batch_stride[r - 1] /* y's strides are kept here until the end */) {
      g->batch_dims[r - 1] *= dims[d];
      g->a_batch_stride[r - 1] = as[d], g->b_batch_stride[r - 1] = bs[d], g->c_batch_stride[r - 1] = ys[d];
      continue;
    }
    if (r == KILN_CUDA_GEMM_MAX_BATCH_RANK) return NULL;
    g->batch_dims[r] = dims[d], g->a_batch_stride[r] = as[d], g->b_batch_stride[r] = bs[d], g->c_batch_stride[r] = ys[d];
    r++;
  }
  /* y is dense in batch order: the kernel's y_batch_stride 0 (= M * N) is exactly that */
  for (int i = 0; i < r; i++) g->c_batch_stride[i] = 0;
  g->batch_rank = r;
  g->m = m, g->n = nn, g->k = k;
  g->lda = k, g->ldb = nn, g->ldy = nn;
  g->alpha = 1.f, g->beta = 0.f;
  g->compute = g->out_dtype = g->c_dtype = KILN_CUDA_F32;
  if (!ok(kiln_cuda_gemm_validate(g))) return NULL;
  int32_t vals[2] = {n->inputs[0], n->inputs[1]};
  return emit(cl, n, "cuda.gemm", vals, 2, &p, sizeof p, (uint64_t)(sy * k), done);
}

static kiln_status lower_gemm(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *a = kiln_node_input(cl->g, n, 0), *b = kiln_node_input(cl->g, n, 1), *c = kiln_node_input(cl->g, n, 2);
  const kiln_value *y = out0(cl, n);
  const kiln_gemm_params *gp = n->params;
  if (!gp || !is_f32(a) || !is_f32(b) || !y || y->dtype != KILN_DTYPE_FLOAT32 || a->shape.rank != 2 || b->shape.rank != 2)
    return NULL;
  kiln_cuda_gemm_params p;
  memset(&p, 0, sizeof p);
  kiln_cuda_gemm_desc *g = &p.desc;
  g->trans_a = gp->trans_a, g->trans_b = gp->trans_b;
  g->m = gp->trans_a ? a->shape.dims[1] : a->shape.dims[0];
  g->k = gp->trans_a ? a->shape.dims[0] : a->shape.dims[1];
  g->n = gp->trans_b ? b->shape.dims[0] : b->shape.dims[1];
  if ((gp->trans_b ? b->shape.dims[1] : b->shape.dims[0]) != g->k || y->shape.rank != 2 || y->shape.dims[0] != g->m ||
      y->shape.dims[1] != g->n)
    return NULL;
  g->lda = a->shape.dims[1], g->ldb = b->shape.dims[1], g->ldy = g->n;
  g->alpha = gp->alpha, g->beta = gp->beta;
  g->compute = g->out_dtype = g->c_dtype = KILN_CUDA_F32;
  bool use_c = c && gp->beta != 0.f; /* beta 0: C does not contribute (not even its NaNs) */
  if (use_c) {
    /* C broadcasts (unidirectionally) to [M, N]: strides 0 along its 1-dims */
    if (!is_f32(c) || c->shape.rank > 2) return NULL;
    int64_t c0 = c->shape.rank == 2 ? c->shape.dims[0] : 1, c1 = c->shape.rank >= 1 ? c->shape.dims[c->shape.rank - 1] : 1;
    if ((c0 != 1 && c0 != g->m) || (c1 != 1 && c1 != g->n)) return NULL;
    g->c_stride_m = c0 == 1 ? 0 : c1;
    g->c_stride_n = c1 == 1 ? 0 : 1;
  } else g->beta = 0.f;
  if (!ok(kiln_cuda_gemm_validate(g))) return NULL;
  int32_t vals[3] = {n->inputs[0], n->inputs[1], use_c ? n->inputs[2] : -1};
  return emit(cl, n, "cuda.gemm", vals, use_c ? 3 : 2, &p, sizeof p, (uint64_t)(g->m * g->n * g->k), done);
}

/* ---- reductions --------------------------------------------------------------------------------------- */
static int reduce_op(kiln_op op) {
  switch (op) {
  case KILN_OP_ReduceSum: return KILN_CUDA_REDUCE_SUM;
  case KILN_OP_ReduceMean: return KILN_CUDA_REDUCE_MEAN;
  case KILN_OP_ReduceMax: return KILN_CUDA_REDUCE_MAX;
  case KILN_OP_ReduceMin: return KILN_CUDA_REDUCE_MIN;
  case KILN_OP_ReduceProd: return KILN_CUDA_REDUCE_PROD;
  case KILN_OP_ReduceL1: return KILN_CUDA_REDUCE_L1;
  case KILN_OP_ReduceL2: return KILN_CUDA_REDUCE_L2;
  case KILN_OP_ReduceSumSquare: return KILN_CUDA_REDUCE_SUM_SQUARE;
  case KILN_OP_ReduceLogSum: return KILN_CUDA_REDUCE_LOG_SUM;
  case KILN_OP_ReduceLogSumExp: return KILN_CUDA_REDUCE_LOG_SUM_EXP;
  default: return -1;
  }
}

static kiln_status lower_reduce(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *y = out0(cl, n);
  const kiln_reduce_params *rp = n->params;
  int op = reduce_op(n->op);
  if (!rp || op < 0 || !is_f32(x) || !y || y->dtype != KILN_DTYPE_FLOAT32 || x->shape.rank > KILN_MAX_RANK) return NULL;
  int64_t axes[KILN_MAX_RANK], n_axes = rp->n_axes;
  if (rp->axes_from_input) {
    n_axes = 0;
    const kiln_value *av = kiln_node_input(cl->g, n, 1);
    if (av && (!av->data || !ok(kiln_value_read_ints(av, axes, KILN_MAX_RANK, &n_axes)))) return NULL; /* runtime axes */
  } else memcpy(axes, rp->axes, sizeof axes);
  bool mask[KILN_MAX_RANK], identity;
  if (!ok(kiln_reduce_resolve_axes(rp, x->shape.rank, axes, n_axes, mask, &identity))) return NULL;
  kiln_cuda_reduce_params p;
  memset(&p, 0, sizeof p);
  p.kind = 0, p.op = op;
  /* [outer][len][inner]: the reduced dims must be adjacent, except that 1-dims between them do not matter.
   * No reduced axis (noop_with_empty_axes) reduces every element alone, as the reference does (so
   * ReduceL1 still takes |x|). */
  int32_t first = -1, last = -1, r = x->shape.rank;
  const int64_t *xd = x->shape.dims;
  for (int32_t d = 0; d < r && !identity; d++)
    if (mask[d] && xd[d] != 1) {
      if (first < 0) first = d;
      last = d;
    }
  p.outer = p.len = p.inner = 1;
  if (first < 0) p.outer = kiln_shape_numel(&x->shape);
  else {
    for (int32_t d = first; d <= last; d++)
      if (!mask[d] && xd[d] != 1) return NULL; /* axes not consecutive: a Transpose would have to come first */
    for (int32_t d = 0; d < first; d++) p.outer *= xd[d];
    for (int32_t d = first; d <= last; d++) p.len *= xd[d];
    for (int32_t d = last + 1; d < r; d++) p.inner *= xd[d];
  }
  if (p.outer * p.inner != kiln_shape_numel(&y->shape)) return NULL;
  return emit(cl, n, "cuda.reduce", &n->inputs[0], 1, &p, sizeof p, 0, done);
}

static kiln_status lower_argreduce(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *y = out0(cl, n);
  const kiln_reduce_params *rp = n->params;
  if (!rp || !is_f32(x) || !y || y->dtype != KILN_DTYPE_INT64 || x->shape.rank < 1) return NULL;
  int32_t ax;
  if (!ok(kiln_normalize_axis(rp->axis, x->shape.rank, &ax))) return NULL;
  kiln_cuda_reduce_params p;
  memset(&p, 0, sizeof p);
  p.kind = n->op == KILN_OP_ArgMin ? 2 : 1;
  p.select_last = rp->select_last_index;
  p.outer = p.inner = 1;
  p.len = x->shape.dims[ax];
  for (int32_t d = 0; d < ax; d++) p.outer *= x->shape.dims[d];
  for (int32_t d = ax + 1; d < x->shape.rank; d++) p.inner *= x->shape.dims[d];
  if (p.len < 1 || p.outer * p.inner != kiln_shape_numel(&y->shape)) return NULL;
  return emit(cl, n, "cuda.reduce", &n->inputs[0], 1, &p, sizeof p, 0, done);
}

/* ---- Slice / Expand / Tile: one strided copy ----------------------------------------------------------- */
static void dense_strides(const kiln_shape *s, int64_t *st) {
  int64_t a = 1;
  for (int32_t d = s->rank - 1; d >= 0; d--) st[d] = a, a *= s->dims[d];
}

/* kiln_shape_resolve over constant inputs (those in `need` must be constant integers). */
static bool resolve_const(cuda_lower *cl, const kiln_node *n, unsigned need, kiln_shape_resolved *r, kiln_shape *o) {
  kiln_shape shapes[8];
  kiln_ints *ints = calloc(8, sizeof *ints);
  if (!ints || n->n_inputs > 8 || n->n_outputs != 1) {
    free(ints);
    return false;
  }
  bool good = true;
  for (int32_t k = 0; k < n->n_inputs && good; k++) {
    const kiln_value *v = kiln_node_input(cl->g, n, k);
    if (v) {
      shapes[k] = v->shape;
      kiln_ints_from_value(v, &ints[k]);
      if (k > 0 && (need >> k & 1) && !ints[k].known) good = false;
    } else kiln_shape_unknown(&shapes[k]);
  }
  good = good && ok(kiln_shape_resolve(cl->g, n, shapes, ints, r, o));
  free(ints);
  return good;
}

static kiln_status lower_slice(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *y = out0(cl, n);
  if (!copyable(x) || !y || x->shape.rank < 1 || x->shape.rank > KILN_CUDA_COPY_MAX_RANK) return NULL;
  kiln_shape_resolved r;
  kiln_shape o;
  if (!resolve_const(cl, n, 0x1e, &r, &o) || !kiln_shape_equal(&o, &y->shape)) return NULL;
  kiln_cuda_strided_params p;
  memset(&p, 0, sizeof p);
  int64_t st[KILN_MAX_RANK];
  dense_strides(&x->shape, st);
  p.rank = x->shape.rank;
  for (int32_t d = 0; d < p.rank; d++) {
    p.dims[d] = o.dims[d];
    p.src_strides[d] = r.step[d] * st[d];
    if (o.dims[d]) p.src_offset += r.start[d] * st[d]; /* an empty dim copies nothing; its start may be anywhere */
  }
  if (kiln_shape_numel(&o) == 0) p.src_offset = 0;
  return emit(cl, n, "cuda.strided_copy", &n->inputs[0], 1, &p, sizeof p, 0, done);
}

static kiln_status lower_expand(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *y = out0(cl, n);
  if (!copyable(x) || !y || y->dtype != x->dtype || y->shape.rank < 1 || y->shape.rank > KILN_CUDA_COPY_MAX_RANK ||
      x->shape.rank > y->shape.rank)
    return NULL;
  kiln_cuda_strided_params p;
  memset(&p, 0, sizeof p);
  int64_t st[KILN_MAX_RANK];
  dense_strides(&x->shape, st);
  p.rank = y->shape.rank;
  for (int32_t d = 0; d < p.rank; d++) {
    int32_t k = d - (y->shape.rank - x->shape.rank);
    int64_t xd = k >= 0 ? x->shape.dims[k] : 1;
    if (xd != 1 && xd != y->shape.dims[d]) return NULL;
    p.dims[d] = y->shape.dims[d];
    p.src_strides[d] = xd == 1 ? 0 : st[k];
  }
  return emit(cl, n, "cuda.strided_copy", &n->inputs[0], 1, &p, sizeof p, 0, done);
}

static kiln_status lower_tile(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *rv = kiln_node_input(cl->g, n, 1), *y = out0(cl, n);
  int64_t reps[KILN_MAX_RANK], nr = 0;
  if (!copyable(x) || !y || !rv || !rv->data || x->shape.rank < 1 ||
      !ok(kiln_value_read_ints(rv, reps, KILN_MAX_RANK, &nr)) || nr != x->shape.rank)
    return NULL;
  /* output order is [r0][d0][r1][d1]...: repeat dims read with stride 0; a repeat of 1 adds no dim */
  kiln_cuda_strided_params p;
  memset(&p, 0, sizeof p);
  int64_t st[KILN_MAX_RANK];
  dense_strides(&x->shape, st);
  for (int32_t d = 0; d < x->shape.rank; d++) {
    if (reps[d] < 0 || y->shape.dims[d] != reps[d] * x->shape.dims[d]) return NULL;
    if (reps[d] != 1) {
      if (p.rank == KILN_CUDA_COPY_MAX_RANK) return NULL;
      p.dims[p.rank] = reps[d], p.src_strides[p.rank++] = 0;
    }
    if (p.rank == KILN_CUDA_COPY_MAX_RANK) return NULL;
    p.dims[p.rank] = x->shape.dims[d], p.src_strides[p.rank++] = st[d];
  }
  return emit(cl, n, "cuda.strided_copy", &n->inputs[0], 1, &p, sizeof p, 0, done);
}

/* ---- Gather: constant indices, checked now and stored normalized as an int64 weight --------------------- */
static kiln_status lower_gather(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *iv = kiln_node_input(cl->g, n, 1), *y = out0(cl, n);
  const kiln_index_params *ip = n->params;
  if (!ip || !copyable(x) || !y || !iv || !kiln_shape_is_static(&iv->shape) || x->shape.rank < 1 ||
      (iv->dtype != KILN_DTYPE_INT64 && (iv->dtype != KILN_DTYPE_INT32 || !iv->data)))
    return NULL;
  int32_t ax;
  if (!ok(kiln_normalize_axis(ip->axis, x->shape.rank, &ax))) return NULL;
  kiln_cuda_gather_params p;
  memset(&p, 0, sizeof p);
  p.outer = p.inner = 1;
  p.axis_len = x->shape.dims[ax];
  for (int32_t d = 0; d < ax; d++) p.outer *= x->shape.dims[d];
  for (int32_t d = ax + 1; d < x->shape.rank; d++) p.inner *= x->shape.dims[d];
  p.n_indices = kiln_shape_numel(&iv->shape);
  if (p.n_indices < 0 || p.outer * p.n_indices * p.inner != kiln_shape_numel(&y->shape)) return NULL;
  if (!iv->data) {
    /* indices computed at run time (int64): used as they are; the kernel writes zeros for an index out
     * of range (ONNX leaves that undefined), so a bad index can never read outside x */
    int32_t vals[2] = {n->inputs[0], n->inputs[1]};
    return emit(cl, n, "cuda.gather", vals, 2, &p, sizeof p, 0, done);
  }
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(p.n_indices ? p.n_indices : 1));
  KILN_CHECK_ALLOC(idx);
  for (int64_t j = 0; j < p.n_indices; j++) {
    int64_t k = kiln_dtype_load_i64(iv->dtype, iv->data, j);
    if (k < -p.axis_len || k >= p.axis_len) {
      /* ONNX leaves out-of-range indices undefined; the reference refuses them, so leave it undone */
      free(idx);
      return NULL;
    }
    idx[j] = k < 0 ? k + p.axis_len : k;
  }
  char name[300];
  snprintf(name, sizeof name, "%.256s (indices)", n->name);
  int32_t tid, ins[2], out;
  kiln_status st = kiln_ew_add_weight(cl->lc->w, name, KILN_DTYPE_INT64, 1, &p.n_indices, idx, &tid);
  free(idx);
  KILN_TRY(st);
  KILN_TRY(kiln_cuda_lower_tensor_as(cl, n->inputs[0], KILN_LAYOUT_LINEAR, x->dtype, false, &ins[0]));
  ins[1] = tid;
  KILN_TRY(kiln_cuda_lower_linear_output(cl, n->outputs[0], &out));
  KILN_TRY(kiln_cuda_lower_add_layer(cl, n->name, "cuda.gather", n->op_type, ins, 2, &out, 1, &p, sizeof p, 0, 0));
  *done = true;
  return NULL;
}

/* ---- Pad ---------------------------------------------------------------------------------------------- */
static kiln_status lower_pad(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *y = out0(cl, n);
  const kiln_shape_params *sp = n->params;
  if (!sp || !copyable(x) || !y || x->shape.rank > KILN_CUDA_COPY_MAX_RANK) return NULL;
  kiln_cuda_pad_params p;
  memset(&p, 0, sizeof p);
  switch (sp->mode) {
  case KILN_PAD_CONSTANT: p.mode = KILN_CUDA_PAD_CONSTANT; break;
  case KILN_PAD_EDGE: p.mode = KILN_CUDA_PAD_EDGE; break;
  case KILN_PAD_REFLECT: p.mode = KILN_CUDA_PAD_REFLECT; break;
  default: return NULL; /* wrap: no kernel */
  }
  kiln_shape_resolved r;
  kiln_shape o;
  /* pads (input 1) and axes (input 3) must be constant; the value (input 2) is read below */
  if (!resolve_const(cl, n, 0x0a, &r, &o) || !kiln_shape_equal(&o, &y->shape)) return NULL;
  p.rank = x->shape.rank;
  for (int32_t d = 0; d < p.rank; d++) {
    p.begin[d] = r.pads[d], p.end[d] = r.pads[p.rank + d];
    /* reflect further than the edge is not defined by ONNX (the kernel and the reference may differ) */
    if (p.mode == KILN_CUDA_PAD_REFLECT && x->shape.dims[d] > 1 &&
        (p.begin[d] >= x->shape.dims[d] || p.end[d] >= x->shape.dims[d]))
      return NULL;
    if (p.mode != KILN_CUDA_PAD_CONSTANT && x->shape.dims[d] == 0 && y->shape.dims[d] > 0) return NULL;
  }
  size_t es = kiln_dtype_size(x->dtype);
  const kiln_value *vv = n->n_inputs > 2 ? kiln_node_input(cl->g, n, 2) : NULL;
  if (vv) {
    if (!vv->data || vv->dtype != x->dtype || kiln_shape_numel(&vv->shape) != 1) return NULL;
    memcpy(p.value, vv->data, es);
  } else if (sp->pad_value != 0) { /* opset < 11: the 'value' attribute, a float */
    if (x->dtype != KILN_DTYPE_FLOAT32) return NULL;
    float f = (float)sp->pad_value;
    memcpy(p.value, &f, 4);
  }
  return emit(cl, n, "cuda.pad", &n->inputs[0], 1, &p, sizeof p, 0, done);
}

/* ---- Resize / Upsample (NCHW LINEAR; the integer-factor NHWC ones are lower_cuda.c's) ------------------ */
static kiln_status lower_resize(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *y = out0(cl, n);
  const kiln_resize_params *rp = n->params;
  if (!rp || !is_f32(x) || !y || y->dtype != KILN_DTYPE_FLOAT32 || x->shape.rank != 4 || y->shape.rank != 4) return NULL;
  const int64_t *xd = x->shape.dims, *yd = y->shape.dims;
  if (xd[0] != yd[0] || xd[1] != yd[1]) return NULL; /* resizing N or C: no kernel */
  kiln_cuda_resize_any_params p;
  memset(&p, 0, sizeof p);
  kiln_cuda_resize_desc *d = &p.desc;
  switch (rp->mode) {
  case KILN_RESIZE_NEAREST: d->mode = KILN_CUDA_RESIZE_NEAREST; break;
  case KILN_RESIZE_LINEAR: d->mode = KILN_CUDA_RESIZE_LINEAR; break;
  default: return NULL; /* cubic */
  }
  switch (rp->coord) {
  case KILN_COORD_HALF_PIXEL: d->coord = KILN_CUDA_COORD_HALF_PIXEL; break;
  case KILN_COORD_HALF_PIXEL_SYMMETRIC: d->coord = KILN_CUDA_COORD_HALF_PIXEL_SYMMETRIC; break;
  case KILN_COORD_PYTORCH_HALF_PIXEL: d->coord = KILN_CUDA_COORD_PYTORCH_HALF_PIXEL; break;
  case KILN_COORD_ALIGN_CORNERS: d->coord = KILN_CUDA_COORD_ALIGN_CORNERS; break;
  case KILN_COORD_ASYMMETRIC: d->coord = KILN_CUDA_COORD_ASYMMETRIC; break;
  case KILN_COORD_TF_HALF_PIXEL_FOR_NN: d->coord = KILN_CUDA_COORD_TF_HALF_PIXEL_FOR_NN; break;
  default: return NULL; /* tf_crop_and_resize (roi, extrapolation) */
  }
  /* the scales of the coordinate transform, as the reference computes them (scales, or sizes with the
   * aspect-ratio policy) */
  double sc[KILN_MAX_RANK], out_scales[KILN_MAX_RANK];
  int64_t nsc = 0, sizes[KILN_MAX_RANK], nsz = 0, od[KILN_MAX_RANK];
  const kiln_value *sv = rp->scales_input >= 0 ? kiln_node_input(cl->g, n, rp->scales_input) : NULL;
  const kiln_value *zv = rp->sizes_input >= 0 ? kiln_node_input(cl->g, n, rp->sizes_input) : NULL;
  if (sv && kiln_shape_numel(&sv->shape) == 0) sv = NULL; /* Resize-11+: empty scales next to sizes */
  if (zv && kiln_shape_numel(&zv->shape) == 0) zv = NULL;
  if (sv) {
    if (!sv->data || !ok(kiln_value_read_floats(sv, sc, KILN_MAX_RANK, &nsc))) return NULL;
  } else if (zv) {
    if (!zv->data || !ok(kiln_value_read_ints(zv, sizes, KILN_MAX_RANK, &nsz))) return NULL;
  } else if (rp->n_attr_scales) {
    nsc = rp->n_attr_scales;
    for (int64_t k = 0; k < nsc; k++) sc[k] = rp->attr_scales[k];
  } else return NULL;
  if (!ok(kiln_resize_resolve(rp, 4, xd, nsc ? sc : NULL, nsc, nsz ? sizes : NULL, nsz, od, out_scales))) return NULL;
  for (int k = 0; k < 4; k++)
    if (od[k] != yd[k]) return NULL;
  d->scale_h = (float)out_scales[2], d->scale_w = (float)out_scales[3];
  switch (rp->nearest) {
  case KILN_NEAREST_ROUND_PREFER_FLOOR: d->nearest = KILN_CUDA_NEAREST_ROUND_PREFER_FLOOR; break;
  case KILN_NEAREST_ROUND_PREFER_CEIL: d->nearest = KILN_CUDA_NEAREST_ROUND_PREFER_CEIL; break;
  case KILN_NEAREST_FLOOR: d->nearest = KILN_CUDA_NEAREST_FLOOR; break;
  case KILN_NEAREST_CEIL: d->nearest = KILN_CUDA_NEAREST_CEIL; break;
  default:
    /* Upsample / Resize-10 "simple" nearest: floor when upsampling; downsampling takes floor + 1, which
     * no kernel mode matches */
    if (d->mode == KILN_CUDA_RESIZE_NEAREST && (out_scales[2] < 1 || out_scales[3] < 1)) return NULL;
    d->nearest = KILN_CUDA_NEAREST_FLOOR;
  }
  d->batch = xd[0], d->channels = xd[1], d->in_h = xd[2], d->in_w = xd[3], d->out_h = yd[2], d->out_w = yd[3];
  d->dtype = KILN_CUDA_F32;
  return emit(cl, n, "cuda.resize", &n->inputs[0], 1, &p, sizeof p, 0, done);
}

/* ---- unary math ------------------------------------------------------------------------------------------ */
static int unary_op(const kiln_node *n, float *alpha, float *beta) {
  const kiln_activation_params *ap = n->params;
  *alpha = *beta = 0.f;
  switch (n->op) {
  case KILN_OP_Exp: return KILN_CUDA_UN_EXP;
  case KILN_OP_Log: return KILN_CUDA_UN_LOG;
  case KILN_OP_Sqrt: return KILN_CUDA_UN_SQRT;
  case KILN_OP_Neg: return KILN_CUDA_UN_NEG;
  case KILN_OP_Abs: return KILN_CUDA_UN_ABS;
  case KILN_OP_Reciprocal: return KILN_CUDA_UN_RECIPROCAL;
  case KILN_OP_Erf: return KILN_CUDA_UN_ERF;
  case KILN_OP_Floor: return KILN_CUDA_UN_FLOOR;
  case KILN_OP_Ceil: return KILN_CUDA_UN_CEIL;
  case KILN_OP_Round: return KILN_CUDA_UN_ROUND;
  case KILN_OP_Sign: return KILN_CUDA_UN_SIGN;
  case KILN_OP_Sin: return KILN_CUDA_UN_SIN;
  case KILN_OP_Cos: return KILN_CUDA_UN_COS;
  case KILN_OP_Tan: return KILN_CUDA_UN_TAN;
  case KILN_OP_Asin: return KILN_CUDA_UN_ASIN;
  case KILN_OP_Acos: return KILN_CUDA_UN_ACOS;
  case KILN_OP_Atan: return KILN_CUDA_UN_ATAN;
  case KILN_OP_Sinh: return KILN_CUDA_UN_SINH;
  case KILN_OP_Cosh: return KILN_CUDA_UN_COSH;
  case KILN_OP_Asinh: return KILN_CUDA_UN_ASINH;
  case KILN_OP_Acosh: return KILN_CUDA_UN_ACOSH;
  case KILN_OP_Atanh: return KILN_CUDA_UN_ATANH;
  case KILN_OP_Softplus: return KILN_CUDA_UN_SOFTPLUS;
  case KILN_OP_Softsign: return KILN_CUDA_UN_SOFTSIGN;
  default: break;
  }
  if (!ap) return -1;
  switch (n->op) {
  case KILN_OP_Elu: *alpha = ap->alpha; return KILN_CUDA_UN_ELU;
  case KILN_OP_Selu: *alpha = ap->alpha, *beta = ap->gamma; return KILN_CUDA_UN_SELU;
  case KILN_OP_Celu: *alpha = ap->alpha; return KILN_CUDA_UN_CELU;
  case KILN_OP_ThresholdedRelu: *alpha = ap->alpha; return KILN_CUDA_UN_THRESHOLDED_RELU;
  case KILN_OP_Gelu: return ap->approximate == KILN_GELU_TANH ? KILN_CUDA_UN_GELU_TANH : KILN_CUDA_UN_GELU;
  default: return -1;
  }
}

static kiln_status lower_unary(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(cl->g, n, 0), *y = out0(cl, n);
  kiln_cuda_unary_params p;
  memset(&p, 0, sizeof p);
  p.op = unary_op(n, &p.alpha, &p.beta);
  if (p.op < 0 || !is_f32(x) || !y || y->dtype != KILN_DTYPE_FLOAT32 || kiln_shape_numel(&x->shape) != kiln_shape_numel(&y->shape))
    return NULL;
  return emit(cl, n, "cuda.unary", &n->inputs[0], 1, &p, sizeof p, 0, done);
}

/* ---- comparisons and Where ------------------------------------------------------------------------------ */
static bool broadcasts_to(const kiln_value *v, const kiln_value *y) {
  if (!v || !kiln_shape_is_static(&v->shape) || v->shape.rank > y->shape.rank) return false;
  for (int32_t d = 0; d < v->shape.rank; d++) {
    int64_t k = v->shape.dims[d], want = y->shape.dims[d + y->shape.rank - v->shape.rank];
    if (k != 1 && k != want) return false;
  }
  return true;
}

static kiln_status lower_select(cuda_lower *cl, const kiln_node *n, bool *done) {
  const kiln_value *y = out0(cl, n);
  kiln_cuda_select_params p;
  memset(&p, 0, sizeof p);
  switch (n->op) {
  case KILN_OP_Equal: p.op = KILN_CUDA_CMP_EQ; break;
  case KILN_OP_Less: p.op = KILN_CUDA_CMP_LT; break;
  case KILN_OP_Greater: p.op = KILN_CUDA_CMP_GT; break;
  case KILN_OP_LessOrEqual: p.op = KILN_CUDA_CMP_LE; break;
  case KILN_OP_GreaterOrEqual: p.op = KILN_CUDA_CMP_GE; break;
  case KILN_OP_Where: p.op = KILN_CUDA_WHERE; break;
  default: return NULL;
  }
  int w = p.op == KILN_CUDA_WHERE, n_in = w ? 3 : 2;
  if (!y || n->n_inputs != n_in || y->shape.rank > KILN_CUDA_SELECT_MAX_RANK ||
      y->dtype != (w ? KILN_DTYPE_FLOAT32 : KILN_DTYPE_BOOL))
    return NULL;
  for (int k = 0; k < n_in; k++) {
    const kiln_value *v = kiln_node_input(cl->g, n, k);
    if (!broadcasts_to(v, y) || v->dtype != (w && k == 0 ? KILN_DTYPE_BOOL : KILN_DTYPE_FLOAT32)) return NULL;
  }
  return emit(cl, n, "cuda.select", n->inputs, n_in, &p, sizeof p, 0, done);
}

kiln_status kiln_lower_cuda_ops(cuda_lower *cl, int32_t i, bool *done) {
  const kiln_node *n = &cl->g->nodes[i];
  *done = false;
  if (n->n_outputs < 1 || n->outputs[0] < 0 || n->n_inputs < 1 || n->inputs[0] < 0) return NULL;
  switch (n->op) {
  case KILN_OP_MatMul: return lower_matmul(cl, n, done);
  case KILN_OP_Gemm: return lower_gemm(cl, n, done);
  case KILN_OP_ReduceSum: case KILN_OP_ReduceMean: case KILN_OP_ReduceMax: case KILN_OP_ReduceMin: case KILN_OP_ReduceProd:
  case KILN_OP_ReduceL1: case KILN_OP_ReduceL2: case KILN_OP_ReduceSumSquare: case KILN_OP_ReduceLogSum:
  case KILN_OP_ReduceLogSumExp:
    return lower_reduce(cl, n, done);
  case KILN_OP_ArgMax: case KILN_OP_ArgMin: return lower_argreduce(cl, n, done);
  case KILN_OP_Slice: return lower_slice(cl, n, done);
  case KILN_OP_Expand: return lower_expand(cl, n, done);
  case KILN_OP_Tile: return lower_tile(cl, n, done);
  case KILN_OP_Gather: return lower_gather(cl, n, done);
  case KILN_OP_Pad: return lower_pad(cl, n, done);
  case KILN_OP_Resize: case KILN_OP_Upsample: return lower_resize(cl, n, done);
  case KILN_OP_Equal: case KILN_OP_Less: case KILN_OP_Greater: case KILN_OP_LessOrEqual: case KILN_OP_GreaterOrEqual:
  case KILN_OP_Where:
    return lower_select(cl, n, done);
  default: return lower_unary(cl, n, done);
  }
}
#endif /* KILN_HAVE_CUDA */

/*
 * Lowering of non-convolution ops to the fast CPU kernels (backend/cpu/fast_*.h), and those kernels'
 * engine glue. Each layer's parameters are the kernel's plain descriptor; prepare() checks it against
 * the engine's tensor records (so a bad engine cannot make a kernel read out of bounds), sets the ISA of
 * the machine it runs on, and precomputes what run() needs (broadcast plans, resize tables).
 * Anything a fast kernel does not cover (dtype, rank, mode) stays with the "ref" kernel.
 */
#include "build/builder.h"

#include "backend/cpu/fast_copy.h"
#include "backend/cpu/fast_eltwise.h"
#include "backend/cpu/fast_gemm.h"
#include "backend/cpu/fast_pool.h"
#include "backend/cpu/fast_resize.h"
#include "backend/cpu/fast_softmax.h"
#include "backend/cpu/fast_transpose.h"
#include "core/dtype.h"
#include "ir/infer_util.h"
#include "ir/ops/pool.h"
#include "ir/ops/reduce.h"
#include "runtime/kernel.h"

#include <stdlib.h>
#include <string.h>

/* ---- shared checks -------------------------------------------------------------------------------- */
static bool is_f32(const kiln_value *v) { return v && v->dtype == KILN_DTYPE_FLOAT32 && kiln_shape_is_static(&v->shape); }

static kiln_status check_tensor(const kiln_engine_view *e, const kiln_layer_rt *L, int32_t tid, int32_t rank,
                                const int64_t *dims) {
  if (tid < 0 || tid >= e->n_tensors) return kiln_error(KILN_ERR_PARSE, "layer '%s': missing tensor", L->name);
  const kiln_tensor_rec *t = &e->tensors[tid];
  if (t->dtype != KILN_DTYPE_FLOAT32 || (int32_t)t->rank != rank || (rank && memcmp(t->dims, dims, 8 * (size_t)rank)))
    return kiln_error(KILN_ERR_PARSE, "layer '%s': a tensor does not match the kernel's parameters", L->name);
  return NULL;
}

static kiln_status params_of(const kiln_layer_rt *L, void *dst, size_t size, int n_in, int n_out) {
  if (L->params_size != size || L->n_in != n_in || L->n_out != n_out)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': malformed %s parameters", L->name, L->kernel_name);
  memcpy(dst, L->params, size);
  return NULL;
}

static kiln_status add_layer(kiln_lower_ctx *lc, const kiln_node *n, const char *kernel, const int32_t *in_vals, int n_in,
                             const void *params, size_t size) {
  int32_t ins[8], out;
  for (int k = 0; k < n_in; k++) KILN_TRY(kiln_lower_tensor_of(lc, in_vals[k], &ins[k]));
  KILN_TRY(kiln_lower_output(lc, n->outputs[0], &out));
  return kiln_ew_add_layer(lc->w, n->name, kernel, n->op_type, ins, (uint32_t)n_in, &out, 1, params, size, 0,
                           (uint64_t)kiln_node_macs(lc->g, n));
}

/* ---- MaxPool / AveragePool ------------------------------------------------------------------------ */
static kiln_status lower_pool(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(lc->g, n, 0), *y = kiln_node_output(lc->g, n, 0);
  const kiln_pool_params *p = n->params;
  if (!is_f32(x) || !y || x->shape.rank != 4 || !p || !p->resolved || p->geom.nsp != 2 || n->n_outputs != 1) return NULL;
  kiln_fast_pool2d_desc d;
  memset(&d, 0, sizeof d);
  d.N = x->shape.dims[0], d.C = x->shape.dims[1], d.H = x->shape.dims[2], d.W = x->shape.dims[3];
  d.kh = (int32_t)p->geom.kernel[0], d.kw = (int32_t)p->geom.kernel[1];
  d.sh = (int32_t)p->geom.strides[0], d.sw = (int32_t)p->geom.strides[1];
  d.dh = (int32_t)p->geom.dilations[0], d.dw = (int32_t)p->geom.dilations[1];
  d.pt = (int32_t)p->geom.pad_begin[0], d.pl = (int32_t)p->geom.pad_begin[1];
  d.pb = (int32_t)p->geom.pad_end[0], d.pr = (int32_t)p->geom.pad_end[1];
  d.is_max = n->op == KILN_OP_MaxPool;
  d.count_include_pad = p->count_include_pad;
  d.ceil_mode = p->ceil_mode;
  kiln_status st = kiln_fast_pool2d_init(&d);
  if (st || d.OH != y->shape.dims[2] || d.OW != y->shape.dims[3]) {
    kiln_status_destroy(st);
    return NULL;
  }
  *done = true;
  return add_layer(lc, n, "cpu.pool2d", n->inputs, 1, &d, sizeof d);
}

static kiln_status pool_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  kiln_fast_pool2d_desc d;
  KILN_TRY(params_of(L, &d, sizeof d, 1, 1));
  d.isa = kiln_cpu_isa();
  d.x_batch_stride = d.y_batch_stride = 0;
  int64_t oh = d.OH, ow = d.OW;
  KILN_TRY(kiln_error_prefix(kiln_fast_pool2d_init(&d), "layer '%s': ", L->name));
  int64_t xd[4] = {d.N, d.C, d.H, d.W}, yd[4] = {d.N, d.C, oh, ow};
  if (oh != d.OH || ow != d.OW) return kiln_error(KILN_ERR_PARSE, "layer '%s': pool output size mismatch", L->name);
  KILN_TRY(check_tensor(e, L, L->in[0], 4, xd));
  KILN_TRY(check_tensor(e, L, L->out[0], 4, yd));
  kiln_fast_pool2d_desc *s = malloc(sizeof *s);
  KILN_CHECK_ALLOC(s);
  *s = d;
  L->state = s;
  return NULL;
}

static kiln_status pool_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  kiln_fast_pool2d_run(L->state, ex->ptrs[L->in[0]], ex->ptrs[L->out[0]], ex->tp);
  return NULL;
}

const kiln_kernel kiln_kernel_cpu_pool2d = {"cpu.pool2d", pool_prepare, free, pool_run};

/* ---- Resize (2-D nearest / linear on NCHW) -------------------------------------------------------- */
static kiln_status lower_resize(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(lc->g, n, 0), *y = kiln_node_output(lc->g, n, 0);
  const kiln_resize_params *p = n->params;
  if (!is_f32(x) || !y || x->shape.rank != 4 || !p || p->mode == KILN_RESIZE_CUBIC || n->n_outputs != 1) return NULL;
  if (y->shape.dims[0] != x->shape.dims[0] || y->shape.dims[1] != x->shape.dims[1]) return NULL; /* only H, W resized */
  kiln_fast_resize2d_desc d;
  memset(&d, 0, sizeof d);
  d.N = x->shape.dims[0], d.C = x->shape.dims[1], d.H = x->shape.dims[2], d.W = x->shape.dims[3];
  d.OH = y->shape.dims[2], d.OW = y->shape.dims[3];
  /* the scales the coordinate transform uses: from the scales input or attribute, else OH/H */
  double sc[KILN_MAX_RANK];
  int64_t nsc = 0;
  const kiln_value *sv = p->scales_input >= 0 ? kiln_node_input(lc->g, n, p->scales_input) : NULL;
  if (sv && sv->data) {
    kiln_status st = kiln_value_read_floats(sv, sc, KILN_MAX_RANK, &nsc);
    if (st) {
      kiln_status_destroy(st);
      return NULL;
    }
  } else if (p->n_attr_scales) {
    nsc = p->n_attr_scales;
    for (int64_t k = 0; k < nsc; k++) sc[k] = p->attr_scales[k];
  }
  if (p->n_axes) return NULL;
  d.scale_h = nsc == 4 ? sc[2] : (double)d.OH / (double)d.H;
  d.scale_w = nsc == 4 ? sc[3] : (double)d.OW / (double)d.W;
  d.mode = p->mode == KILN_RESIZE_NEAREST ? KILN_FAST_RESIZE_NEAREST : KILN_FAST_RESIZE_LINEAR;
  switch (p->coord) {
  case KILN_COORD_HALF_PIXEL: d.coord = KILN_FAST_COORD_HALF_PIXEL; break;
  case KILN_COORD_ASYMMETRIC: d.coord = KILN_FAST_COORD_ASYMMETRIC; break;
  case KILN_COORD_ALIGN_CORNERS: d.coord = KILN_FAST_COORD_ALIGN_CORNERS; break;
  case KILN_COORD_PYTORCH_HALF_PIXEL: d.coord = KILN_FAST_COORD_PYTORCH_HALF_PIXEL; break;
  case KILN_COORD_TF_HALF_PIXEL_FOR_NN: d.coord = KILN_FAST_COORD_TF_HALF_PIXEL_FOR_NN; break;
  default: return NULL;
  }
  switch (p->nearest) {
  case KILN_NEAREST_ROUND_PREFER_FLOOR: d.round = KILN_FAST_ROUND_PREFER_FLOOR; break;
  case KILN_NEAREST_ROUND_PREFER_CEIL: d.round = KILN_FAST_ROUND_PREFER_CEIL; break;
  case KILN_NEAREST_FLOOR: d.round = KILN_FAST_FLOOR; break;
  case KILN_NEAREST_CEIL: d.round = KILN_FAST_CEIL; break;
  default:
    if (d.mode == KILN_FAST_RESIZE_NEAREST) return NULL;
  }
  /* The kernel must agree with the reference exactly; only the common modes are mapped. */
  void *table = malloc(kiln_fast_resize2d_table_size(&d) + 1);
  KILN_CHECK_ALLOC(table);
  kiln_status st = kiln_fast_resize2d_build(&d, table);
  free(table);
  if (st) {
    kiln_status_destroy(st);
    return NULL;
  }
  *done = true;
  return add_layer(lc, n, "cpu.resize2d", n->inputs, 1, &d, sizeof d);
}

typedef struct resize_state {
  kiln_fast_resize2d_desc d;
  void *table;
} resize_state;

static void resize_release(void *p) {
  resize_state *s = p;
  if (s) free(s->table);
  free(s);
}

static kiln_status resize_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  kiln_fast_resize2d_desc d;
  KILN_TRY(params_of(L, &d, sizeof d, 1, 1));
  d.isa = kiln_cpu_isa();
  d.x_batch_stride = d.y_batch_stride = 0;
  int64_t xd[4] = {d.N, d.C, d.H, d.W}, yd[4] = {d.N, d.C, d.OH, d.OW};
  KILN_TRY(check_tensor(e, L, L->in[0], 4, xd));
  KILN_TRY(check_tensor(e, L, L->out[0], 4, yd));
  resize_state *s = calloc(1, sizeof *s);
  KILN_CHECK_ALLOC(s);
  s->d = d;
  s->table = malloc(kiln_fast_resize2d_table_size(&d) + 1);
  kiln_status st = s->table ? kiln_fast_resize2d_build(&d, s->table) : kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  if (st) {
    resize_release(s);
    return kiln_error_prefix(st, "layer '%s': ", L->name);
  }
  L->state = s;
  return NULL;
}

static kiln_status resize_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const resize_state *s = L->state;
  kiln_fast_resize2d_run(&s->d, s->table, ex->ptrs[L->in[0]], ex->ptrs[L->out[0]], ex->tp);
  return NULL;
}

const kiln_kernel kiln_kernel_cpu_resize2d = {"cpu.resize2d", resize_prepare, resize_release, resize_run};

/* ---- Softmax / LogSoftmax ------------------------------------------------------------------------- */
typedef struct softmax_params {
  kiln_fast_softmax_desc d;
  int32_t rank;
  int64_t dims[KILN_MAX_RANK];
} softmax_params;

static kiln_status lower_softmax(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(lc->g, n, 0);
  const kiln_reduce_params *p = n->params;
  if (!is_f32(x) || !p || x->shape.rank < 1 || n->n_outputs != 1) return NULL;
  int32_t r = x->shape.rank, axis;
  kiln_status st = kiln_normalize_axis(p->axis, r, &axis);
  if (st) {
    kiln_status_destroy(st);
    return NULL;
  }
  softmax_params sp;
  memset(&sp, 0, sizeof sp);
  sp.rank = r;
  memcpy(sp.dims, x->shape.dims, sizeof sp.dims);
  int64_t outer = 1, inner = 1;
  for (int32_t d = 0; d < axis; d++) outer *= x->shape.dims[d];
  for (int32_t d = axis + 1; d < r; d++) inner *= x->shape.dims[d];
  sp.d.outer = outer;
  sp.d.axis = x->shape.dims[axis];
  sp.d.inner = inner;
  if (p->coerce_2d) { /* before opset 13: one softmax over everything from `axis` on */
    sp.d.axis *= inner;
    sp.d.inner = 1;
  }
  sp.d.log = n->op == KILN_OP_LogSoftmax;
  *done = true;
  return add_layer(lc, n, "cpu.softmax", n->inputs, 1, &sp, sizeof sp);
}

static kiln_status softmax_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  softmax_params sp;
  KILN_TRY(params_of(L, &sp, sizeof sp, 1, 1));
  int64_t n = 1;
  if (sp.rank < 0 || sp.rank > KILN_MAX_RANK) return kiln_error(KILN_ERR_PARSE, "layer '%s': bad rank", L->name);
  for (int32_t d = 0; d < sp.rank; d++) n *= sp.dims[d];
  if (sp.d.outer < 0 || sp.d.axis < 0 || sp.d.inner < 0 || sp.d.outer * sp.d.axis * sp.d.inner != n)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': softmax sizes do not match the tensor", L->name);
  KILN_TRY(check_tensor(e, L, L->in[0], sp.rank, sp.dims));
  KILN_TRY(check_tensor(e, L, L->out[0], sp.rank, sp.dims));
  kiln_fast_softmax_desc *s = malloc(sizeof *s);
  KILN_CHECK_ALLOC(s);
  *s = sp.d;
  s->isa = kiln_cpu_isa();
  L->state = s;
  return NULL;
}

static kiln_status softmax_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  kiln_fast_softmax_run(L->state, ex->ptrs[L->in[0]], ex->ptrs[L->out[0]], ex->tp);
  return NULL;
}

const kiln_kernel kiln_kernel_cpu_softmax = {"cpu.softmax", softmax_prepare, free, softmax_run};

/* ---- binary elementwise with broadcasting ----------------------------------------------------------- */
static kiln_status lower_binary(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  const kiln_value *a = kiln_node_input(lc->g, n, 0), *b = kiln_node_input(lc->g, n, 1), *y = kiln_node_output(lc->g, n, 0);
  if (n->n_inputs != 2 || !is_f32(a) || !is_f32(b) || !is_f32(y) || y->shape.rank > KILN_FAST_MAX_RANK) return NULL;
  kiln_fast_binary_desc d;
  memset(&d, 0, sizeof d);
  switch (n->op) {
  case KILN_OP_Add: d.op = KILN_FAST_ADD; break;
  case KILN_OP_Sub: d.op = KILN_FAST_SUB; break;
  case KILN_OP_Mul: d.op = KILN_FAST_MUL; break;
  case KILN_OP_Div: d.op = KILN_FAST_DIV; break;
  case KILN_OP_Pow: d.op = KILN_FAST_POW; break;
  default: return NULL;
  }
  d.rank = y->shape.rank;
  memcpy(d.dims, y->shape.dims, sizeof(int64_t) * (size_t)d.rank);
  d.a_rank = a->shape.rank;
  memcpy(d.a_dims, a->shape.dims, sizeof(int64_t) * (size_t)d.a_rank);
  d.b_rank = b->shape.rank;
  memcpy(d.b_dims, b->shape.dims, sizeof(int64_t) * (size_t)d.b_rank);
  d.act = KILN_ACT_NONE;
  kiln_fast_binary_plan plan;
  kiln_status st = kiln_fast_binary_prepare(&d, &plan);
  if (st) {
    kiln_status_destroy(st);
    return NULL;
  }
  *done = true;
  return add_layer(lc, n, "cpu.binary", n->inputs, 2, &d, sizeof d);
}

static kiln_status binary_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  kiln_fast_binary_desc d;
  KILN_TRY(params_of(L, &d, sizeof d, 2, 1));
  if (d.rank < 0 || d.rank > KILN_FAST_MAX_RANK || d.a_rank < 0 || d.a_rank > d.rank || d.b_rank < 0 || d.b_rank > d.rank)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': bad ranks", L->name);
  d.isa = kiln_cpu_isa();
  d.a_outer_stride = d.b_outer_stride = d.y_outer_stride = 0;
  KILN_TRY(check_tensor(e, L, L->in[0], d.a_rank, d.a_dims));
  KILN_TRY(check_tensor(e, L, L->in[1], d.b_rank, d.b_dims));
  KILN_TRY(check_tensor(e, L, L->out[0], d.rank, d.dims));
  kiln_fast_binary_plan *p = malloc(sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = kiln_fast_binary_prepare(&d, p);
  if (st) {
    free(p);
    return kiln_error_prefix(st, "layer '%s': ", L->name);
  }
  L->state = p;
  return NULL;
}

static kiln_status binary_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  kiln_fast_binary_run(L->state, ex->ptrs[L->in[0]], ex->ptrs[L->in[1]], ex->ptrs[L->out[0]], ex->tp);
  return NULL;
}

const kiln_kernel kiln_kernel_cpu_binary = {"cpu.binary", binary_prepare, free, binary_run};

/* ---- unary activations (and x * sigmoid(x) as one SiLU op) ---------------------------------------- */
typedef struct unary_params {
  kiln_fast_unary_desc d;
  int32_t rank;
  int64_t dims[KILN_MAX_RANK];
} unary_params;

static kiln_status lower_unary(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(lc->g, n, 0), *y = kiln_node_output(lc->g, n, 0);
  if (!is_f32(x) || !y || n->n_outputs != 1) return NULL;
  unary_params up;
  memset(&up, 0, sizeof up);
  up.d.op = KILN_FAST_UN_ACT;
  switch (n->op) {
  case KILN_OP_Relu: up.d.act = KILN_ACT_RELU; break;
  case KILN_OP_Sigmoid: up.d.act = KILN_ACT_SIGMOID; break;
  case KILN_OP_Tanh: up.d.act = KILN_ACT_TANH; break;
  case KILN_OP_HardSwish: up.d.act = KILN_ACT_HARDSWISH; break;
  case KILN_OP_Sqrt: up.d.op = KILN_FAST_UN_SQRT; break;
  case KILN_OP_Exp: up.d.op = KILN_FAST_UN_EXP; break;
  case KILN_OP_Neg: up.d.op = KILN_FAST_UN_NEG; break;
  case KILN_OP_Abs: up.d.op = KILN_FAST_UN_ABS; break;
  case KILN_OP_Reciprocal: up.d.op = KILN_FAST_UN_RECIPROCAL; break;
  case KILN_OP_LeakyRelu: {
    up.d.act = KILN_ACT_LEAKY_RELU;
    kiln_status st = kiln_node_get_float(n, "alpha", 0.01f, &up.d.alpha);
    if (st) {
      kiln_status_destroy(st);
      return NULL;
    }
    break;
  }
  default: return NULL;
  }
  up.rank = x->shape.rank;
  memcpy(up.dims, x->shape.dims, sizeof up.dims);
  up.d.outer = 1;
  up.d.inner = kiln_shape_numel(&x->shape);
  *done = true;
  return add_layer(lc, n, "cpu.unary", n->inputs, 1, &up, sizeof up);
}

static kiln_status unary_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  unary_params up;
  KILN_TRY(params_of(L, &up, sizeof up, 1, 1));
  if (up.rank < 0 || up.rank > KILN_MAX_RANK) return kiln_error(KILN_ERR_PARSE, "layer '%s': bad rank", L->name);
  int64_t n = 1;
  for (int32_t d = 0; d < up.rank; d++) n *= up.dims[d];
  if (up.d.outer != 1 || up.d.inner != n) return kiln_error(KILN_ERR_PARSE, "layer '%s': size mismatch", L->name);
  KILN_TRY(check_tensor(e, L, L->in[0], up.rank, up.dims));
  KILN_TRY(check_tensor(e, L, L->out[0], up.rank, up.dims));
  kiln_fast_unary_desc *s = malloc(sizeof *s);
  KILN_CHECK_ALLOC(s);
  *s = up.d;
  s->x_stride = s->y_stride = 0;
  s->isa = kiln_cpu_isa();
  L->state = s;
  return NULL;
}

static kiln_status unary_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  kiln_fast_unary_run(L->state, ex->ptrs[L->in[0]], ex->ptrs[L->out[0]], ex->tp);
  return NULL;
}

const kiln_kernel kiln_kernel_cpu_unary = {"cpu.unary", unary_prepare, free, unary_run};

/* ---- Transpose -------------------------------------------------------------------------------------- */
static kiln_status lower_transpose(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  const kiln_value *x = kiln_node_input(lc->g, n, 0), *y = kiln_node_output(lc->g, n, 0);
  if (!x || !y || !kiln_shape_is_static(&x->shape) || x->shape.rank < 1 || x->shape.rank > KILN_FAST_MAX_RANK) return NULL;
  const int64_t *perm;
  size_t cnt;
  kiln_status st = kiln_node_get_ints(n, "perm", &perm, &cnt);
  if (st || cnt != (size_t)x->shape.rank) {
    kiln_status_destroy(st);
    return NULL;
  }
  kiln_fast_transpose_desc d;
  memset(&d, 0, sizeof d);
  d.rank = x->shape.rank;
  memcpy(d.in_dims, x->shape.dims, sizeof(int64_t) * (size_t)d.rank);
  for (int32_t k = 0; k < d.rank; k++) d.perm[k] = (int32_t)perm[k];
  d.elem_size = (int32_t)kiln_dtype_size(x->dtype);
  st = kiln_fast_transpose_check(&d);
  if (st) {
    kiln_status_destroy(st);
    return NULL;
  }
  *done = true;
  return add_layer(lc, n, "cpu.transpose", n->inputs, 1, &d, sizeof d);
}

static kiln_status transpose_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  kiln_fast_transpose_desc d;
  KILN_TRY(params_of(L, &d, sizeof d, 1, 1));
  KILN_TRY(kiln_error_prefix(kiln_fast_transpose_check(&d), "layer '%s': ", L->name));
  const kiln_tensor_rec *x = &e->tensors[L->in[0] >= 0 ? L->in[0] : 0], *y = &e->tensors[L->out[0] >= 0 ? L->out[0] : 0];
  if (L->in[0] < 0 || L->out[0] < 0 || (int32_t)x->rank != d.rank || (int32_t)y->rank != d.rank || x->dtype != y->dtype)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': transpose tensors mismatch", L->name);
  if ((size_t)d.elem_size != kiln_dtype_size((kiln_dtype)x->dtype))
    return kiln_error(KILN_ERR_PARSE, "layer '%s': transpose element size mismatch", L->name);
  for (int32_t k = 0; k < d.rank; k++)
    if (x->dims[k] != d.in_dims[k] || y->dims[k] != d.in_dims[d.perm[k]])
      return kiln_error(KILN_ERR_PARSE, "layer '%s': transpose tensors mismatch", L->name);
  kiln_fast_transpose_desc *s = malloc(sizeof *s);
  KILN_CHECK_ALLOC(s);
  *s = d;
  s->isa = kiln_cpu_isa();
  L->state = s;
  return NULL;
}

static kiln_status transpose_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  kiln_fast_transpose_run(L->state, ex->ptrs[L->in[0]], ex->ptrs[L->out[0]], ex->tp);
  return NULL;
}

const kiln_kernel kiln_kernel_cpu_transpose = {"cpu.transpose", transpose_prepare, free, transpose_run};


/* ---- Concat (when it could not be elided): one strided block copy per input ------------------------ */
typedef struct concat_params {
  int32_t n_inputs, elem_size;
  int32_t reserved[2]; /* zero; keeps the v1 layout of this kernel's parameters */
  int64_t outer, out_inner;  /* out viewed as [outer][out_inner] */
  int64_t inner[16];         /* input k viewed as [outer][inner[k]] */
} concat_params;

typedef struct concat_state {
  int32_t n;
  kiln_fast_copy_desc copy[16];
  size_t dst_offset[16];
} concat_state;

static kiln_status lower_concat(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  const kiln_value *y = kiln_node_output(lc->g, n, 0);
  if (!y || n->n_inputs < 1 || n->n_inputs > 16 || !kiln_shape_is_static(&y->shape) || y->shape.rank < 1) return NULL;
  int64_t axis;
  kiln_status st = kiln_node_get_int(n, "axis", 0, &axis);
  int32_t a;
  if (!st) st = kiln_normalize_axis(axis, y->shape.rank, &a);
  if (st) {
    kiln_status_destroy(st);
    return NULL;
  }
  concat_params cp;
  memset(&cp, 0, sizeof cp);
  cp.n_inputs = n->n_inputs;
  cp.elem_size = (int32_t)kiln_dtype_size(y->dtype);
  cp.outer = 1;
  for (int32_t d = 0; d < a; d++) cp.outer *= y->shape.dims[d];
  cp.out_inner = cp.outer ? kiln_shape_numel(&y->shape) / (cp.outer ? cp.outer : 1) : 0;
  for (int32_t k = 0; k < n->n_inputs; k++) {
    const kiln_value *x = kiln_node_input(lc->g, n, k);
    if (!x || x->dtype != y->dtype || !kiln_shape_is_static(&x->shape)) return NULL;
    cp.inner[k] = cp.outer ? kiln_shape_numel(&x->shape) / cp.outer : 0;
  }
  if (cp.outer == 0 || cp.elem_size == 0) return NULL;
  int32_t ins[16], out;
  for (int32_t k = 0; k < n->n_inputs; k++) KILN_TRY(kiln_lower_tensor_of(lc, n->inputs[k], &ins[k]));
  KILN_TRY(kiln_lower_output(lc, n->outputs[0], &out));
  *done = true;
  return kiln_ew_add_layer(lc->w, n->name, "cpu.concat", n->op_type, ins, (uint32_t)n->n_inputs, &out, 1, &cp, sizeof cp, 0, 0);
}

static kiln_status concat_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  concat_params cp;
  if (L->params_size != sizeof cp || L->n_out != 1) return kiln_error(KILN_ERR_PARSE, "layer '%s': malformed concat", L->name);
  memcpy(&cp, L->params, sizeof cp);
  if (cp.n_inputs != L->n_in || cp.n_inputs < 1 || cp.n_inputs > 16 || cp.outer < 1 || cp.elem_size < 1)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': malformed concat", L->name);
  int64_t sum = 0;
  for (int32_t k = 0; k < cp.n_inputs; k++) {
    if (L->in[k] < 0 || cp.inner[k] < 0 ||
        e->tensors[L->in[k]].nbytes != (uint64_t)(cp.outer * cp.inner[k] * cp.elem_size))
      return kiln_error(KILN_ERR_PARSE, "layer '%s': concat input %d does not match", L->name, k);
    sum += cp.inner[k];
  }
  if (sum != cp.out_inner || L->out[0] < 0 || e->tensors[L->out[0]].nbytes != (uint64_t)(cp.outer * sum * cp.elem_size))
    return kiln_error(KILN_ERR_PARSE, "layer '%s': concat output does not match", L->name);
  /* One strided block copy per input, described once here: input k fills columns [off, off + inner[k])
   * of the output viewed as [outer][out_inner]. */
  concat_state *s = calloc(1, sizeof *s);
  KILN_CHECK_ALLOC(s);
  s->n = cp.n_inputs;
  int64_t off = 0;
  for (int32_t k = 0; k < cp.n_inputs; k++) {
    kiln_fast_copy_desc *d = &s->copy[k];
    d->rank = 2;
    d->dims[0] = cp.outer;
    d->dims[1] = cp.inner[k];
    d->src_strides[0] = cp.inner[k];
    d->src_strides[1] = 1;
    d->dst_strides[0] = cp.out_inner;
    d->dst_strides[1] = 1;
    d->elem_size = cp.elem_size;
    d->isa = kiln_cpu_isa();
    s->dst_offset[k] = (size_t)(off * cp.elem_size);
    off += cp.inner[k];
  }
  L->state = s;
  return NULL;
}

static kiln_status concat_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const concat_state *s = L->state;
  for (int32_t k = 0; k < s->n; k++)
    kiln_fast_copy_run(&s->copy[k], ex->ptrs[L->in[k]], (uint8_t *)ex->ptrs[L->out[0]] + s->dst_offset[k], ex->tp);
  return NULL;
}

const kiln_kernel kiln_kernel_cpu_concat = {"cpu.concat", concat_prepare, free, concat_run};


/* ---- MatMul / Gemm on the packed SGEMM --------------------------------------------------------------- */
/* MatMul: A[..., M, K] x B[K, N] (B shared: A's batch dims fold into M) or equal batch dims on both.
 * Gemm: alpha * op(A) op(B) + beta * C, C broadcast into Y first. Constant B is packed at build time. */
typedef struct gemm_params {
  kiln_fast_gemm_desc d;
  int32_t pack_at_load;                /* B (input 1) is a weight: pack it once when loading */
  int32_t reserved;
  uint64_t a_bytes, b_bytes, y_bytes;
  int32_t c_input;                     /* layer input index of Gemm's C, or -1 */
  int32_t c_rank;
  int64_t c_dims[2];
} gemm_params;

static kiln_status lower_gemm(kiln_lower_ctx *lc, const kiln_node *n, bool *done) {
  kiln_graph *g = lc->g;
  const kiln_value *a = kiln_node_input(g, n, 0), *b = kiln_node_input(g, n, 1), *y = kiln_node_output(g, n, 0);
  const kiln_value *c = n->op == KILN_OP_Gemm ? kiln_node_input(g, n, 2) : NULL;
  if (!is_f32(a) || !is_f32(b) || !is_f32(y) || (c && !is_f32(c)) || n->n_outputs != 1) return NULL;
  gemm_params gp;
  memset(&gp, 0, sizeof gp);
  gp.c_input = -1;
  kiln_fast_gemm_desc *d = &gp.d;
  d->alpha = 1.0f;
  if (n->op == KILN_OP_MatMul) {
    int32_t ra = a->shape.rank, rb = b->shape.rank;
    if (ra < 2 || rb < 2) return NULL;
    d->M = a->shape.dims[ra - 2];
    d->K = a->shape.dims[ra - 1];
    d->N = b->shape.dims[rb - 1];
    if (b->shape.dims[rb - 2] != d->K) return NULL;
    if (d->M == 0 || d->K == 0 || d->N == 0) return NULL; /* empty products: leave to ref */
    int64_t batch_a = kiln_shape_numel(&a->shape) / (d->M * d->K);
    if (rb == 2) { /* one B for every row of every batch: fold A's batch into M */
      d->M *= batch_a;
      d->batch = 1;
    } else {
      if (ra != rb) return NULL;
      for (int32_t k = 0; k < ra - 2; k++)
        if (a->shape.dims[k] != b->shape.dims[k]) return NULL;
      d->batch = batch_a;
      d->batch_stride_a = d->M * d->K;
      d->batch_stride_b = d->K * d->N;
      d->batch_stride_c = d->M * d->N;
    }
  } else {
    int64_t ta = 0, tb = 0;
    float alpha = 1, beta = 1;
    kiln_status st = kiln_node_get_int(n, "transA", 0, &ta);
    if (!st) st = kiln_node_get_int(n, "transB", 0, &tb);
    if (!st) st = kiln_node_get_float(n, "alpha", 1.0f, &alpha);
    if (!st) st = kiln_node_get_float(n, "beta", 1.0f, &beta);
    if (st || a->shape.rank != 2 || b->shape.rank != 2) {
      kiln_status_destroy(st);
      return NULL;
    }
    d->trans_a = ta != 0;
    d->trans_b = tb != 0;
    d->M = ta ? a->shape.dims[1] : a->shape.dims[0];
    d->K = ta ? a->shape.dims[0] : a->shape.dims[1];
    d->N = tb ? b->shape.dims[0] : b->shape.dims[1];
    d->alpha = alpha;
    d->batch = 1;
    if (d->M == 0 || d->K == 0 || d->N == 0) return NULL;
    if (c && beta != 0.0f) {
      if (c->shape.rank > 2) return NULL;
      gp.c_rank = c->shape.rank;
      for (int32_t k = 0; k < c->shape.rank; k++) gp.c_dims[k] = c->shape.dims[k];
      d->beta = beta;
    }
  }
  if (y->shape.rank < 2 || kiln_shape_numel(&y->shape) != d->M * d->N * (d->batch ? d->batch : 1)) return NULL;
  gp.a_bytes = (uint64_t)kiln_shape_numel(&a->shape) * 4;
  gp.b_bytes = (uint64_t)kiln_shape_numel(&b->shape) * 4;
  gp.y_bytes = (uint64_t)kiln_shape_numel(&y->shape) * 4;
  int32_t ins[3], n_in = 0, out;
  KILN_TRY(kiln_lower_tensor_of(lc, n->inputs[0], &ins[n_in++]));
  /* A constant B is packed once at load time (the packed layout depends on the ISA of the machine
   * that runs the engine, so it is not stored); a computed B is packed per run into the workspace. */
  KILN_TRY(kiln_lower_tensor_of(lc, n->inputs[1], &ins[n_in++]));
  gp.pack_at_load = b->data != NULL && d->batch == 1;
  if (d->beta != 0.0f) {
    gp.c_input = n_in;
    KILN_TRY(kiln_lower_tensor_of(lc, n->inputs[2], &ins[n_in++]));
  }
  KILN_TRY(kiln_lower_output(lc, n->outputs[0], &out));
  *done = true;
  kiln_fast_gemm_desc widest = *d; /* workspace for the widest ISA, so any machine's run fits */
  widest.isa = KILN_ISA_AVX512;
  uint64_t ws = gp.pack_at_load ? 0 : kiln_fast_gemm_workspace_size(&widest);
  return kiln_ew_add_layer(lc->w, n->name, "cpu.gemm", n->op_type, ins, (uint32_t)n_in, &out, 1, &gp, sizeof gp, ws,
                           (uint64_t)kiln_node_macs(g, n));
}

typedef struct gemm_state {
  gemm_params p;
  float *packed; /* owned, or NULL */
  kiln_fast_copy_desc c_copy; /* broadcast C into Y */
} gemm_state;

static kiln_status gemm_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  gemm_params gp;
  if (L->params_size != sizeof gp || L->n_out != 1 || L->n_in < 1 || L->n_in > 3)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': malformed cpu.gemm parameters", L->name);
  memcpy(&gp, L->params, sizeof gp);
  const kiln_fast_gemm_desc *d = &gp.d;
  int64_t batch = d->batch ? d->batch : 1;
  if (d->M < 0 || d->N < 0 || d->K < 0 || batch < 1 || d->lda || d->ldb || d->ldc ||
      (uint64_t)(d->M * d->K * batch) * 4 != gp.a_bytes || (uint64_t)(d->M * d->N * batch) * 4 != gp.y_bytes)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': bad gemm sizes", L->name);
  int expect_in = 2 + (gp.c_input >= 0 ? 1 : 0);
  if (L->n_in != expect_in || (gp.c_input >= 0 && gp.c_input != 2)) return kiln_error(KILN_ERR_PARSE, "layer '%s': bad gemm inputs", L->name);
  for (int32_t k = 0; k < L->n_in; k++)
    if (L->in[k] < 0 || e->tensors[L->in[k]].dtype != KILN_DTYPE_FLOAT32)
      return kiln_error(KILN_ERR_PARSE, "layer '%s': bad gemm inputs", L->name);
  if (L->out[0] < 0 || e->tensors[L->in[0]].nbytes != gp.a_bytes || e->tensors[L->out[0]].nbytes != gp.y_bytes ||
      e->tensors[L->in[1]].nbytes != gp.b_bytes || gp.b_bytes != (uint64_t)(d->K * d->N * (d->batch_stride_b ? batch : 1)) * 4)
    return kiln_error(KILN_ERR_PARSE, "layer '%s': gemm tensors do not match", L->name);
  gemm_state *s = calloc(1, sizeof *s);
  KILN_CHECK_ALLOC(s);
  s->p = gp;
  s->p.d.isa = kiln_cpu_isa();
  const kiln_tensor_rec *bt = &e->tensors[L->in[1]];
  if (gp.pack_at_load) {
    if (bt->storage != KILN_STORAGE_WEIGHT || d->batch > 1) {
      free(s);
      return kiln_error(KILN_ERR_PARSE, "layer '%s': B must be a weight to pack", L->name);
    }
    size_t size = kiln_fast_gemm_packed_b_size(&s->p.d);
    if (posix_memalign((void **)&s->packed, 64, size + 64) != 0) {
      free(s);
      return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory packing '%s'", L->name);
    }
    kiln_fast_gemm_pack_b(&s->p.d, (const float *)(e->weights + bt->offset), s->packed, NULL);
  }
  L->workspace = gp.pack_at_load ? 0 : kiln_fast_gemm_workspace_size(&s->p.d);
  if (gp.c_input >= 0) {
    /* Y[M][N] <- C broadcast (C is [], [N], [1,N], [M,1], [M,N] ...) */
    const kiln_tensor_rec *ct = &e->tensors[L->in[gp.c_input]];
    int64_t cm = gp.c_rank == 2 ? gp.c_dims[0] : 1, cn = gp.c_rank >= 1 ? gp.c_dims[gp.c_rank - 1] : 1;
    if (gp.c_rank > 2 || (cm != 1 && cm != d->M) || (cn != 1 && cn != d->N) || ct->nbytes != (uint64_t)(cm * cn) * 4) {
      free(s);
      return kiln_error(KILN_ERR_PARSE, "layer '%s': gemm C does not broadcast", L->name);
    }
    kiln_fast_copy_desc *c = &s->c_copy;
    c->rank = 2;
    c->dims[0] = d->M;
    c->dims[1] = d->N;
    c->src_strides[0] = cm == 1 ? 0 : cn;
    c->src_strides[1] = cn == 1 ? 0 : 1;
    c->dst_strides[0] = d->N;
    c->dst_strides[1] = 1;
    c->elem_size = 4;
    c->isa = s->p.d.isa;
  }
  L->state = s;
  return NULL;
}

static kiln_status gemm_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const gemm_state *s = L->state;
  float *y = ex->ptrs[L->out[0]];
  if (s->p.c_input >= 0) kiln_fast_copy_run(&s->c_copy, ex->ptrs[L->in[s->p.c_input]], y, ex->tp);
  const float *b = s->packed ? NULL : ex->ptrs[L->in[1]];
  kiln_fast_gemm_run(&s->p.d, ex->ptrs[L->in[0]], b, s->packed, y, ex->workspace, ex->tp);
  return NULL;
}

static void gemm_release(void *p) {
  gemm_state *s = p;
  if (s) free(s->packed);
  free(s);
}

const kiln_kernel kiln_kernel_cpu_gemm = {"cpu.gemm", gemm_prepare, gemm_release, gemm_run};

/* ---- dispatch ------------------------------------------------------------------------------------- */
kiln_status kiln_lower_cpu_ops(kiln_lower_ctx *lc, int32_t i, bool *done) {
  const kiln_node *n = &lc->g->nodes[i];
  switch (n->op) {
  case KILN_OP_MaxPool: case KILN_OP_AveragePool: return lower_pool(lc, n, done);
  case KILN_OP_Resize: case KILN_OP_Upsample: return lower_resize(lc, n, done);
  case KILN_OP_Softmax: case KILN_OP_LogSoftmax: return lower_softmax(lc, n, done);
  case KILN_OP_Add: case KILN_OP_Sub: case KILN_OP_Mul: case KILN_OP_Div: case KILN_OP_Pow: return lower_binary(lc, n, done);
  case KILN_OP_Relu: case KILN_OP_Sigmoid: case KILN_OP_Tanh: case KILN_OP_HardSwish: case KILN_OP_LeakyRelu:
  case KILN_OP_Sqrt: case KILN_OP_Exp: case KILN_OP_Neg: case KILN_OP_Abs: case KILN_OP_Reciprocal:
    return lower_unary(lc, n, done);
  case KILN_OP_Transpose: return lower_transpose(lc, n, done);
  case KILN_OP_Concat: return lower_concat(lc, n, done);
  case KILN_OP_MatMul: case KILN_OP_Gemm: return lower_gemm(lc, n, done);
  default: return NULL;
  }
}

/* reduce family: parse / infer / macs for Softmax, LogSoftmax, Hardmax, ReduceX, CumSum, TopK, ArgMax,
 * ArgMin. */
#include "ir/ops/reduce.h"

#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static bool is_softmax_like(kiln_op op) {
  return op == KILN_OP_Softmax || op == KILN_OP_LogSoftmax || op == KILN_OP_Hardmax;
}

static bool is_reduce_x(kiln_op op) {
  switch (op) {
  case KILN_OP_ReduceMean: case KILN_OP_ReduceSum: case KILN_OP_ReduceMax: case KILN_OP_ReduceMin:
  case KILN_OP_ReduceProd: case KILN_OP_ReduceL1: case KILN_OP_ReduceL2: case KILN_OP_ReduceSumSquare:
  case KILN_OP_ReduceLogSum: case KILN_OP_ReduceLogSumExp: return true;
  default: return false;
  }
}

static kiln_status get_bool(const kiln_node *n, const char *name, int64_t def, bool *out) {
  int64_t v;
  KILN_TRY(kiln_node_get_int(n, name, def, &v));
  if (v != 0 && v != 1) return kiln_error(KILN_ERR_PARSE, "attribute '%s' = %" PRId64 " must be 0 or 1", name, v);
  *out = v != 0;
  return NULL;
}

kiln_status kiln_reduce_resolve_axes(const kiln_reduce_params *p, int32_t rank, const int64_t *axes, int64_t n_axes,
                                     bool mask[KILN_MAX_RANK], bool *identity) {
  memset(mask, 0, sizeof(bool) * KILN_MAX_RANK);
  *identity = false;
  if (n_axes == 0) {
    /* ONNX: empty axes reduce everything, unless noop_with_empty_axes asks for the identity. */
    if (p->noop_with_empty_axes) *identity = true;
    else
      for (int32_t d = 0; d < rank; d++) mask[d] = true;
    return NULL;
  }
  if (n_axes > rank) return kiln_error(KILN_ERR_SHAPE, "%" PRId64 " axes given for a rank-%d input", n_axes, rank);
  for (int64_t i = 0; i < n_axes; i++) {
    int32_t a;
    KILN_TRY(kiln_normalize_axis(axes[i], rank, &a));
    if (mask[a]) return kiln_error(KILN_ERR_SHAPE, "axis %" PRId64 " is given more than once", axes[i]);
    mask[a] = true;
  }
  return NULL;
}

static kiln_status parse_reduce_x(kiln_graph *g, kiln_node *n, kiln_reduce_params *p) {
  /* ReduceSum moved axes to an input in opset 13, the other reductions only in 18. */
  int64_t since = n->op == KILN_OP_ReduceSum ? 13 : 18;
  p->axes_from_input = g->opset >= since;
  KILN_TRY(kiln_check_arity(n, 1, p->axes_from_input ? 2 : 1, 1, 1));
  KILN_TRY(get_bool(n, "keepdims", 1, &p->keepdims));
  if (p->axes_from_input) {
    KILN_TRY(get_bool(n, "noop_with_empty_axes", 0, &p->noop_with_empty_axes));
    if (kiln_node_find_attr(n, "axes"))
      return kiln_error(KILN_ERR_PARSE, "attribute 'axes' is not allowed at opset %" PRId64 " (axes is an input)",
                        g->opset);
  } else {
    const int64_t *axes;
    size_t count;
    KILN_TRY(kiln_node_get_ints(n, "axes", &axes, &count));
    if (count > KILN_MAX_RANK)
      return kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'axes' has %zu entries (kiln supports rank <= %d)", count,
                        KILN_MAX_RANK);
    p->n_axes = (int32_t)count;
    for (size_t i = 0; i < count; i++) p->axes[i] = axes[i];
  }
  return NULL;
}

kiln_status kiln_reduce_parse(kiln_graph *g, kiln_node *n) {
  kiln_reduce_params *p = calloc(1, sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = NULL;
  if (is_softmax_like(n->op)) {
    st = kiln_check_arity(n, 1, 1, 1, 1);
    /* Opset 13 changed both the semantics (single axis instead of 2-D coercion) and the default. */
    p->coerce_2d = g->opset < 13;
    if (!st) st = kiln_node_get_int(n, "axis", p->coerce_2d ? 1 : -1, &p->axis);
  } else if (is_reduce_x(n->op)) {
    st = parse_reduce_x(g, n, p);
  } else if (n->op == KILN_OP_CumSum) {
    st = kiln_check_arity(n, 2, 2, 1, 1);
    if (!st) st = get_bool(n, "exclusive", 0, &p->exclusive);
    if (!st) st = get_bool(n, "reverse", 0, &p->reverse);
  } else if (n->op == KILN_OP_TopK) {
    if (g->opset < 10) {
      st = kiln_check_arity(n, 1, 1, 2, 2);
      if (!st) st = kiln_node_get_int(n, "k", -1, &p->k);
      if (!st && p->k < 0)
        st = kiln_error(KILN_ERR_PARSE, "attribute 'k' is required and must be >= 0 (got %" PRId64 ")", p->k);
    } else {
      st = kiln_check_arity(n, 2, 2, 2, 2);
      p->k = -1;
    }
    if (!st) st = kiln_node_get_int(n, "axis", -1, &p->axis);
    if (!st) st = get_bool(n, "largest", 1, &p->largest);
    if (!st) st = get_bool(n, "sorted", 1, &p->sorted);
  } else if (n->op == KILN_OP_ArgMax || n->op == KILN_OP_ArgMin) {
    st = kiln_check_arity(n, 1, 1, 1, 1);
    if (!st) st = kiln_node_get_int(n, "axis", 0, &p->axis);
    if (!st) st = get_bool(n, "keepdims", 1, &p->keepdims);
    if (!st) st = get_bool(n, "select_last_index", 0, &p->select_last_index);
  } else {
    st = kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the reduce family", n->op_type);
  }
  if (st) {
    free(p);
    return st;
  }
  kiln_node_set_params(n, p, NULL);
  return NULL;
}

static bool is_numeric(kiln_dtype dt) { return kiln_dtype_is_float(dt) || kiln_dtype_is_int(dt); }

static kiln_status check_dtype(const kiln_value *x, bool ok, const char *what) {
  if (!ok)
    return kiln_error(KILN_ERR_SHAPE, "input '%s' has dtype %s; %s", x->name, kiln_dtype_name(x->dtype), what);
  return NULL;
}

static kiln_status infer_reduce_x(kiln_graph *g, kiln_node *n, const kiln_reduce_params *p, const kiln_value *x) {
  bool minmax = n->op == KILN_OP_ReduceMax || n->op == KILN_OP_ReduceMin;
  KILN_TRY(check_dtype(x, is_numeric(x->dtype) || (minmax && x->dtype == KILN_DTYPE_BOOL),
                       "reductions need a numeric tensor"));
  int64_t axes[KILN_MAX_RANK];
  int64_t n_axes = p->n_axes;
  memcpy(axes, p->axes, sizeof axes);
  bool axes_known = true;
  if (p->axes_from_input) {
    const kiln_value *a = kiln_node_input(g, n, 1);
    n_axes = 0;
    if (a) {
      if (a->dtype != KILN_DTYPE_UNDEFINED && a->dtype != KILN_DTYPE_INT64)
        return kiln_error(KILN_ERR_SHAPE, "axes input '%s' must be int64, is %s", a->name, kiln_dtype_name(a->dtype));
      if (a->shape.rank > 1) return kiln_error(KILN_ERR_SHAPE, "axes input '%s' must be 1-D", a->name);
      if (kiln_value_is_constant(a)) KILN_TRY(kiln_value_read_ints(a, axes, KILN_MAX_RANK, &n_axes));
      else axes_known = false;
    }
  }
  kiln_shape out;
  if (x->shape.rank < 0) {
    kiln_shape_unknown(&out);
    return kiln_infer_set_output(g, n, 0, x->dtype, &out);
  }
  int32_t r = x->shape.rank;
  if (!axes_known) {
    /* Which dims go is data-dependent: with keepdims the rank survives, every dim may become 1. */
    if (p->keepdims) {
      kiln_shape_init(&out, r, NULL);
      for (int32_t d = 0; d < r; d++) out.dims[d] = KILN_DIM_DYNAMIC;
    } else {
      kiln_shape_unknown(&out);
    }
    return kiln_infer_set_output(g, n, 0, x->dtype, &out);
  }
  bool mask[KILN_MAX_RANK], identity;
  KILN_TRY(kiln_reduce_resolve_axes(p, r, axes, n_axes, mask, &identity));
  kiln_shape_init(&out, 0, NULL);
  for (int32_t d = 0; d < r; d++) {
    if (identity || !mask[d]) {
      out.dims[out.rank] = x->shape.dims[d];
      out.sym[out.rank++] = x->shape.sym[d];
    } else if (p->keepdims) {
      out.dims[out.rank++] = 1;
    }
  }
  return kiln_infer_set_output(g, n, 0, x->dtype, &out);
}

static kiln_status infer_topk(kiln_graph *g, kiln_node *n, const kiln_reduce_params *p, const kiln_value *x) {
  KILN_TRY(check_dtype(x, is_numeric(x->dtype), "TopK needs a numeric tensor"));
  int64_t k = p->k;
  if (k < 0) {
    const kiln_value *kv;
    KILN_TRY(kiln_require_input(g, n, 1, &kv));
    if (kv->dtype != KILN_DTYPE_INT64)
      return kiln_error(KILN_ERR_SHAPE, "K input '%s' must be int64, is %s", kv->name, kiln_dtype_name(kv->dtype));
    if (kiln_value_is_constant(kv)) {
      int64_t cnt;
      KILN_TRY(kiln_value_read_ints(kv, &k, 1, &cnt));
      if (cnt != 1) return kiln_error(KILN_ERR_SHAPE, "K input '%s' must hold one value", kv->name);
      if (k < 0) return kiln_error(KILN_ERR_SHAPE, "K = %" PRId64 " must be >= 0", k);
    }
  }
  kiln_shape out = x->shape;
  if (x->shape.rank >= 0) {
    int32_t a;
    KILN_TRY(kiln_normalize_axis(p->axis, x->shape.rank, &a));
    if (k >= 0 && x->shape.dims[a] >= 0 && k > x->shape.dims[a])
      return kiln_error(KILN_ERR_SHAPE, "K = %" PRId64 " exceeds the axis size %" PRId64, k, x->shape.dims[a]);
    out.dims[a] = k >= 0 ? k : KILN_DIM_DYNAMIC;
    out.sym[a] = -1;
  }
  KILN_TRY(kiln_infer_set_output(g, n, 0, x->dtype, &out));
  return kiln_infer_set_output(g, n, 1, KILN_DTYPE_INT64, &out);
}

kiln_status kiln_reduce_infer(kiln_graph *g, kiln_node *n) {
  const kiln_reduce_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  if (is_softmax_like(n->op)) {
    KILN_TRY(check_dtype(x, kiln_dtype_is_float(x->dtype), "the softmax family needs a float tensor"));
    if (x->shape.rank >= 0) {
      int32_t a;
      /* ONNX allows axis in [-r, r-1] both before and after opset 13. */
      KILN_TRY(kiln_normalize_axis(p->axis, x->shape.rank, &a));
    }
    return kiln_infer_set_output(g, n, 0, x->dtype, &x->shape);
  }
  if (is_reduce_x(n->op)) return infer_reduce_x(g, n, p, x);
  if (n->op == KILN_OP_CumSum) {
    KILN_TRY(check_dtype(x, is_numeric(x->dtype), "CumSum needs a numeric tensor"));
    const kiln_value *ax;
    KILN_TRY(kiln_require_input(g, n, 1, &ax));
    if (ax->dtype != KILN_DTYPE_INT32 && ax->dtype != KILN_DTYPE_INT64)
      return kiln_error(KILN_ERR_SHAPE, "axis input '%s' must be int32 or int64", ax->name);
    if (ax->shape.rank > 1 || (ax->shape.rank == 1 && ax->shape.dims[0] > 1))
      return kiln_error(KILN_ERR_SHAPE, "axis input '%s' must be a scalar", ax->name);
    if (kiln_value_is_constant(ax) && x->shape.rank >= 0) {
      int64_t axis, cnt;
      int32_t a;
      KILN_TRY(kiln_value_read_ints(ax, &axis, 1, &cnt));
      if (cnt != 1) return kiln_error(KILN_ERR_SHAPE, "axis input '%s' must hold one value", ax->name);
      KILN_TRY(kiln_normalize_axis(axis, x->shape.rank, &a));
    }
    return kiln_infer_set_output(g, n, 0, x->dtype, &x->shape);
  }
  if (n->op == KILN_OP_TopK) return infer_topk(g, n, p, x);
  if (n->op == KILN_OP_ArgMax || n->op == KILN_OP_ArgMin) {
    KILN_TRY(check_dtype(x, is_numeric(x->dtype), "arg-reductions need a numeric tensor"));
    kiln_shape out;
    if (x->shape.rank < 0) {
      kiln_shape_unknown(&out);
    } else {
      int32_t a;
      KILN_TRY(kiln_normalize_axis(p->axis, x->shape.rank, &a));
      kiln_shape_init(&out, 0, NULL);
      for (int32_t d = 0; d < x->shape.rank; d++) {
        if (d != a) {
          out.dims[out.rank] = x->shape.dims[d];
          out.sym[out.rank++] = x->shape.sym[d];
        } else if (p->keepdims) {
          out.dims[out.rank++] = 1;
        }
      }
    }
    return kiln_infer_set_output(g, n, 0, KILN_DTYPE_INT64, &out);
  }
  return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the reduce family", n->op_type);
}

int64_t kiln_reduce_macs(const kiln_graph *g, const kiln_node *n) { return 0; }

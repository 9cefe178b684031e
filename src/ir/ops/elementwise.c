/* elementwise family: parse / infer / macs, plus the infer helpers activation and logic share. */
#include "ir/ops/elementwise.h"

#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <stdlib.h>

/* ---- shared helpers --------------------------------------------------------------------------------- */

kiln_status kiln_ew_require_input(const kiln_graph *g, const kiln_node *n, int i, uint32_t mask,
                                  const kiln_value **out) {
  const kiln_value *v;
  KILN_TRY(kiln_require_input(g, n, i, &v));
  if (!kiln_dtype_in_mask(v->dtype, mask))
    return kiln_error(KILN_ERR_SHAPE, "input %d '%s' has dtype %s, which this op does not accept", i, v->name,
                      kiln_dtype_name(v->dtype));
  *out = v;
  return NULL;
}

kiln_status kiln_ew_broadcast_inputs(const kiln_graph *g, const kiln_node *n, int first, int count,
                                     kiln_shape *out) {
  const kiln_value *v0;
  KILN_TRY(kiln_require_input(g, n, first, &v0));
  *out = v0->shape;
  for (int i = first + 1; i < first + count; i++) {
    const kiln_value *v;
    KILN_TRY(kiln_require_input(g, n, i, &v));
    if (v->dtype != v0->dtype)
      return kiln_error(KILN_ERR_SHAPE, "inputs '%s' (%s) and '%s' (%s) must have the same dtype", v0->name,
                        kiln_dtype_name(v0->dtype), v->name, kiln_dtype_name(v->dtype));
    kiln_shape acc = *out;
    kiln_status st = kiln_infer_broadcast(&acc, &v->shape, out);
    if (st) return kiln_error_prefix(st, "inputs '%s' and '%s': ", v0->name, v->name);
  }
  return NULL;
}

kiln_status kiln_ew_check_legacy_broadcast(const kiln_graph *g, const kiln_node *n) {
  if (g->opset >= 7) return NULL; /* numpy broadcasting since opset 7; the attributes are gone */
  int64_t bc, axis;
  KILN_TRY(kiln_node_get_int(n, "broadcast", 0, &bc));
  if (bc != 0 && bc != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'broadcast' = %" PRId64 " must be 0 or 1", bc);
  if (bc == 0 || !kiln_node_find_attr(n, "axis")) return NULL; /* plain suffix broadcast = numpy's */
  KILN_TRY(kiln_node_get_int(n, "axis", 0, &axis));
  /* axis placing B at A's trailing dims is exactly what numpy does; anything else is not. */
  const kiln_value *a = kiln_node_input(g, n, 0), *b = kiln_node_input(g, n, 1);
  if (a && b && a->shape.rank >= 0 && b->shape.rank >= 0) {
    int64_t ax = axis < 0 ? axis + a->shape.rank : axis;
    if (ax == (int64_t)a->shape.rank - b->shape.rank) return NULL;
  }
  return kiln_error(KILN_ERR_UNSUPPORTED,
                    "legacy (opset < 7) broadcast with axis = %" PRId64 " is not supported", axis);
}

/* ---- per-op table ------------------------------------------------------------------------------------ */

typedef enum ew_kind { EW_UNARY, EW_BINARY, EW_VARIADIC } ew_kind;

typedef struct ew_info {
  ew_kind kind;
  uint32_t types; /* dtypes input 0 may have (the output has the same) */
} ew_info;

static bool ew_lookup(kiln_op op, ew_info *info) {
  switch (op) {
  case KILN_OP_Add: case KILN_OP_Sub: case KILN_OP_Mul: case KILN_OP_Div: case KILN_OP_Mod:
    *info = (ew_info){EW_BINARY, KILN_DTMASK_NUMERIC};
    return true;
  case KILN_OP_Pow: /* base: float, int32, int64 in ONNX; other ints are computed just as well */
    *info = (ew_info){EW_BINARY, KILN_DTMASK_NUMERIC};
    return true;
  case KILN_OP_Abs: case KILN_OP_Sign:
    *info = (ew_info){EW_UNARY, KILN_DTMASK_NUMERIC};
    return true;
  case KILN_OP_Neg:
    *info = (ew_info){EW_UNARY, KILN_DTMASK_FLOAT | KILN_DTMASK_SINT};
    return true;
  case KILN_OP_Sqrt: case KILN_OP_Exp: case KILN_OP_Log: case KILN_OP_Reciprocal: case KILN_OP_Floor:
  case KILN_OP_Ceil: case KILN_OP_Round: case KILN_OP_Sin: case KILN_OP_Cos: case KILN_OP_Tan:
  case KILN_OP_Asin: case KILN_OP_Acos: case KILN_OP_Atan: case KILN_OP_Sinh: case KILN_OP_Cosh:
  case KILN_OP_Asinh: case KILN_OP_Acosh: case KILN_OP_Atanh:
    *info = (ew_info){EW_UNARY, KILN_DTMASK_FLOAT};
    return true;
  case KILN_OP_Min: case KILN_OP_Max: case KILN_OP_Sum:
    *info = (ew_info){EW_VARIADIC, KILN_DTMASK_NUMERIC};
    return true;
  case KILN_OP_Mean: /* an integer mean would need a rounding rule ONNX does not give */
    *info = (ew_info){EW_VARIADIC, KILN_DTMASK_FLOAT};
    return true;
  default:
    return false;
  }
}

/* ---- hooks ------------------------------------------------------------------------------------------ */

kiln_status kiln_elementwise_parse(kiln_graph *g, kiln_node *n) {
  ew_info info;
  if (!ew_lookup(n->op, &info))
    return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the elementwise family", n->op_type);
  switch (info.kind) {
  case EW_UNARY: KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1)); break;
  case EW_BINARY: KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1)); break;
  case EW_VARIADIC:
    KILN_TRY(kiln_check_arity(n, 1, INT32_MAX, 1, 1));
    /* every input of a variadic op is required: an omitted one in the middle is malformed */
    for (int i = 0; i < n->n_inputs; i++)
      if (n->inputs[i] < 0) return kiln_error(KILN_ERR_PARSE, "input %d is omitted", i);
    break;
  }
  if (info.kind == EW_BINARY && g->opset < 7) {
    int64_t bc;
    KILN_TRY(kiln_node_get_int(n, "broadcast", 0, &bc));
    if (bc != 0 && bc != 1)
      return kiln_error(KILN_ERR_PARSE, "attribute 'broadcast' = %" PRId64 " must be 0 or 1", bc);
  }
  if (n->op == KILN_OP_Mod) {
    int64_t fmod;
    KILN_TRY(kiln_node_get_int(n, "fmod", 0, &fmod));
    if (fmod != 0 && fmod != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'fmod' = %" PRId64 " must be 0 or 1", fmod);
    kiln_elementwise_params *p = calloc(1, sizeof *p);
    KILN_CHECK_ALLOC(p);
    p->fmod = (int32_t)fmod;
    kiln_node_set_params(n, p, NULL);
  }
  return NULL;
}

kiln_status kiln_elementwise_infer(kiln_graph *g, kiln_node *n) {
  ew_info info;
  if (!ew_lookup(n->op, &info))
    return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the elementwise family", n->op_type);
  const kiln_value *x;
  KILN_TRY(kiln_ew_require_input(g, n, 0, info.types, &x));
  kiln_shape out;
  switch (info.kind) {
  case EW_UNARY:
    return kiln_infer_set_output(g, n, 0, x->dtype, &x->shape);
  case EW_BINARY:
    KILN_TRY(kiln_ew_check_legacy_broadcast(g, n)); /* first: its refusal explains a failed broadcast */
    if (n->op == KILN_OP_Pow) { /* the exponent may have its own (numeric) type */
      const kiln_value *y;
      KILN_TRY(kiln_ew_require_input(g, n, 1, KILN_DTMASK_NUMERIC, &y));
      kiln_status st = kiln_infer_broadcast(&x->shape, &y->shape, &out);
      if (st) return kiln_error_prefix(st, "inputs '%s' and '%s': ", x->name, y->name);
    } else {
      KILN_TRY(kiln_ew_broadcast_inputs(g, n, 0, 2, &out));
    }
    return kiln_infer_set_output(g, n, 0, x->dtype, &out);
  case EW_VARIADIC:
    KILN_TRY(kiln_ew_broadcast_inputs(g, n, 0, n->n_inputs, &out));
    return kiln_infer_set_output(g, n, 0, x->dtype, &out);
  }
  return NULL;
}

int64_t kiln_elementwise_macs(const kiln_graph *g, const kiln_node *n) { return 0; }

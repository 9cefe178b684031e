/*
 * logic family: reference kernels. Comparisons are exact: floats (any width) compare as double,
 * signed ints as int64, unsigned ints and bool as uint64. Booleans read any nonzero byte as true
 * and are written as 0/1. Where copies elements bytewise, so it serves every dtype.
 */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/logic.h"

#include <math.h>
#include <string.h>

static bool cmp_result(kiln_op op, int c, bool unordered) {
  /* c: -1 / 0 / 1 for a < b, a == b, a > b; unordered (a NaN) makes every comparison false */
  if (unordered) return false;
  switch (op) {
  case KILN_OP_Equal: return c == 0;
  case KILN_OP_Less: return c < 0;
  case KILN_OP_Greater: return c > 0;
  case KILN_OP_LessOrEqual: return c <= 0;
  case KILN_OP_GreaterOrEqual: return c >= 0;
  default: return false;
  }
}

static kiln_status ref_compare(const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  if (in[0].dtype != in[1].dtype) return kiln_error(KILN_ERR_SHAPE, "inputs have different dtypes");
  const kiln_tensor *ops[2] = {&in[0], &in[1]};
  kiln_bcast_iter it;
  KILN_TRY(kiln_bcast_iter_init(&it, out, ops, 2));
  kiln_dtype dt = in[0].dtype;
  kiln_num_class cls = kiln_num_class_of(dt);
  uint8_t *y = out->data;
  for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it)) {
    int c;
    bool unordered = false;
    if (cls == KILN_NUM_FLOAT) {
      double a = kiln_dtype_load_f64(dt, in[0].data, it.off[0]), b = kiln_dtype_load_f64(dt, in[1].data, it.off[1]);
      unordered = a != a || b != b;
      c = (a > b) - (a < b);
    } else if (cls == KILN_NUM_SIGNED) {
      int64_t a = kiln_dtype_load_i64(dt, in[0].data, it.off[0]), b = kiln_dtype_load_i64(dt, in[1].data, it.off[1]);
      c = (a > b) - (a < b);
    } else {
      uint64_t a = kiln_dtype_load_u64(dt, in[0].data, it.off[0]), b = kiln_dtype_load_u64(dt, in[1].data, it.off[1]);
      c = (a > b) - (a < b);
    }
    y[i] = cmp_result(n->op, c, unordered);
  }
  return NULL;
}

static kiln_status ref_bool_binary(const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_tensor *ops[2] = {&in[0], &in[1]};
  kiln_bcast_iter it;
  KILN_TRY(kiln_bcast_iter_init(&it, out, ops, 2));
  uint8_t *y = out->data;
  for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it)) {
    bool a = kiln_dtype_load_i64(in[0].dtype, in[0].data, it.off[0]) != 0;
    bool b = kiln_dtype_load_i64(in[1].dtype, in[1].data, it.off[1]) != 0;
    y[i] = n->op == KILN_OP_And ? (a && b) : n->op == KILN_OP_Or ? (a || b) : (a != b);
  }
  return NULL;
}

static kiln_status ref_where(const kiln_tensor *in, kiln_tensor *out) {
  if (in[1].dtype != out->dtype || in[2].dtype != out->dtype)
    return kiln_error(KILN_ERR_SHAPE, "X and Y must have the output's dtype %s", kiln_dtype_name(out->dtype));
  const kiln_tensor *ops[3] = {&in[0], &in[1], &in[2]};
  kiln_bcast_iter it;
  KILN_TRY(kiln_bcast_iter_init(&it, out, ops, 3));
  size_t es = kiln_dtype_size(out->dtype);
  if (es == 0) return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s", kiln_dtype_name(out->dtype));
  const char *x = in[1].data, *yv = in[2].data;
  char *o = out->data;
  for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it)) {
    bool c = kiln_dtype_load_i64(in[0].dtype, in[0].data, it.off[0]) != 0;
    const char *src = c ? x + (size_t)it.off[1] * es : yv + (size_t)it.off[2] * es;
    memcpy(o + (size_t)i * es, src, es);
  }
  return NULL;
}

static kiln_status ref_unary(const kiln_node *n, const kiln_tensor *x, kiln_tensor *out) {
  int64_t count = kiln_tensor_numel(out);
  if (kiln_tensor_numel(x) != count) return kiln_error(KILN_ERR_SHAPE, "input and output sizes differ");
  if (count > 0 && !x->data) return kiln_error(KILN_ERR_INTERNAL, "input has no data");
  const kiln_logic_params *p = n->params;
  if (n->op == KILN_OP_IsInf && !p) return kiln_error(KILN_ERR_INTERNAL, "IsInf was not parsed");
  uint8_t *y = out->data;
  for (int64_t i = 0; i < count; i++) {
    switch (n->op) {
    case KILN_OP_Not: y[i] = kiln_dtype_load_i64(x->dtype, x->data, i) == 0; break;
    case KILN_OP_IsNaN: y[i] = isnan(kiln_dtype_load_f64(x->dtype, x->data, i)) != 0; break;
    default: { /* IsInf */
      double v = kiln_dtype_load_f64(x->dtype, x->data, i);
      y[i] = isinf(v) && (v > 0 ? p->detect_positive : p->detect_negative);
      break;
    }
    }
  }
  return NULL;
}

kiln_status kiln_ref_logic(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  if (n->n_outputs < 1) return kiln_error(KILN_ERR_PARSE, "missing output");
  int need = n->op == KILN_OP_Where ? 3 : (n->op == KILN_OP_Not || n->op == KILN_OP_IsNaN || n->op == KILN_OP_IsInf) ? 1 : 2;
  if (n->n_inputs != need) return kiln_error(KILN_ERR_PARSE, "expects %d inputs, has %d", need, n->n_inputs);
  /* everything but Where writes one byte per element */
  if (n->op != KILN_OP_Where && out[0].dtype != KILN_DTYPE_BOOL)
    return kiln_error(KILN_ERR_SHAPE, "output must be bool, is %s", kiln_dtype_name(out[0].dtype));
  switch (n->op) {
  case KILN_OP_Equal: case KILN_OP_Less: case KILN_OP_Greater: case KILN_OP_LessOrEqual:
  case KILN_OP_GreaterOrEqual:
    return ref_compare(n, in, &out[0]);
  case KILN_OP_And: case KILN_OP_Or: case KILN_OP_Xor: return ref_bool_binary(n, in, &out[0]);
  case KILN_OP_Where: return ref_where(in, &out[0]);
  case KILN_OP_Not: case KILN_OP_IsNaN: case KILN_OP_IsInf: return ref_unary(n, &in[0], &out[0]);
  default: return kiln_error(KILN_ERR_UNSUPPORTED, "no reference kernel for '%s'", n->op_type);
  }
}

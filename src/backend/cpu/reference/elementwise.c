/*
 * elementwise family: reference kernels.
 *
 * Every op computes per element on a wide scalar: floats in double (rounded once to the output
 * dtype on store), signed ints in int64 and unsigned ints in uint64, both wrapping like numpy.
 * Broadcasting goes through the shared walker in ir/ops/elementwise.h.
 * Integer division or modulo by zero yields 0 (numpy's result; C would trap), and INT64_MIN / -1
 * wraps to INT64_MIN instead of trapping.
 */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/elementwise.h"

#include <math.h>

/* ---- scalar functions ------------------------------------------------------------------------------- */

/* Round half to even without depending on the FPU rounding mode (nearbyint would). */
static double round_half_even(double x) {
  double r = floor(x), d = x - r;
  if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;
  return r == 0.0 ? copysign(0.0, x) : r;
}

static double unary_f(kiln_op op, double x) {
  switch (op) {
  case KILN_OP_Abs: return fabs(x);
  case KILN_OP_Neg: return -x;
  case KILN_OP_Sign: return x > 0 ? 1.0 : x < 0 ? -1.0 : x; /* keeps 0 and NaN */
  case KILN_OP_Sqrt: return sqrt(x);
  case KILN_OP_Exp: return exp(x);
  case KILN_OP_Log: return log(x);
  case KILN_OP_Reciprocal: return 1.0 / x;
  case KILN_OP_Floor: return floor(x);
  case KILN_OP_Ceil: return ceil(x);
  case KILN_OP_Round: return round_half_even(x);
  case KILN_OP_Sin: return sin(x);
  case KILN_OP_Cos: return cos(x);
  case KILN_OP_Tan: return tan(x);
  case KILN_OP_Asin: return asin(x);
  case KILN_OP_Acos: return acos(x);
  case KILN_OP_Atan: return atan(x);
  case KILN_OP_Sinh: return sinh(x);
  case KILN_OP_Cosh: return cosh(x);
  case KILN_OP_Asinh: return asinh(x);
  case KILN_OP_Acosh: return acosh(x);
  case KILN_OP_Atanh: return atanh(x);
  default: return NAN;
  }
}

/* Python-style modulo: the result takes the divisor's sign. */
static double mod_f(double a, double b, int fmod_mode) {
  double r = fmod(a, b);
  if (!fmod_mode && r != 0.0 && (r < 0.0) != (b < 0.0)) r += b;
  return r;
}

static double binary_f(kiln_op op, double a, double b, int fmod_mode) {
  switch (op) {
  case KILN_OP_Add: return a + b;
  case KILN_OP_Sub: return a - b;
  case KILN_OP_Mul: return a * b;
  case KILN_OP_Div: return a / b;
  case KILN_OP_Mod: return mod_f(a, b, fmod_mode);
  default: return NAN;
  }
}

static int64_t binary_s(kiln_op op, int64_t a, int64_t b, int fmod_mode) {
  switch (op) {
  case KILN_OP_Add: return (int64_t)((uint64_t)a + (uint64_t)b);
  case KILN_OP_Sub: return (int64_t)((uint64_t)a - (uint64_t)b);
  case KILN_OP_Mul: return (int64_t)((uint64_t)a * (uint64_t)b);
  case KILN_OP_Div: /* truncates toward zero, like ONNX Runtime's integer Div */
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    return a / b;
  case KILN_OP_Mod: {
    if (b == 0) return 0;
    if (b == -1) return 0;
    int64_t r = a % b;
    if (!fmod_mode && r != 0 && (r < 0) != (b < 0)) r += b;
    return r;
  }
  default: return 0;
  }
}

static uint64_t binary_u(kiln_op op, uint64_t a, uint64_t b) {
  switch (op) {
  case KILN_OP_Add: return a + b;
  case KILN_OP_Sub: return a - b;
  case KILN_OP_Mul: return a * b;
  case KILN_OP_Div: return b ? a / b : 0;
  case KILN_OP_Mod: return b ? a % b : 0; /* fmod or not: the same for unsigned */
  default: return 0;
  }
}

/* Exact integer power by squaring, wrapping mod 2^64 (and so mod the narrower output width).
 * A negative exponent gives the truncated real result: 1, +-1 for base -1, else 0. */
static uint64_t ipow(int64_t base, bool base_signed, uint64_t e, bool negative) {
  if (negative) {
    if (base == 1) return 1;
    if (base == -1 && base_signed) return (e & 1) ? (uint64_t)-1 : 1;
    return 0;
  }
  uint64_t r = 1, b = (uint64_t)base;
  while (e) {
    if (e & 1) r *= b;
    b *= b;
    e >>= 1;
  }
  return r;
}

/* ---- kernels ---------------------------------------------------------------------------------------- */

static kiln_status check_same_dtype(const kiln_tensor *a, const kiln_tensor *out) {
  if (a->dtype != out->dtype)
    return kiln_error(KILN_ERR_SHAPE, "input dtype %s differs from output dtype %s", kiln_dtype_name(a->dtype),
                      kiln_dtype_name(out->dtype));
  return NULL;
}

static kiln_status ref_unary(const kiln_node *n, const kiln_tensor *x, kiln_tensor *y) {
  KILN_TRY(check_same_dtype(x, y));
  int64_t count = kiln_tensor_numel(y);
  if (kiln_tensor_numel(x) != count) return kiln_error(KILN_ERR_SHAPE, "input and output sizes differ");
  if (count > 0 && !x->data) return kiln_error(KILN_ERR_INTERNAL, "input has no data");
  kiln_num_class cls = kiln_num_class_of(y->dtype);
  bool int_op = n->op == KILN_OP_Abs || n->op == KILN_OP_Neg || n->op == KILN_OP_Sign;
  for (int64_t i = 0; i < count; i++) {
    if (cls == KILN_NUM_SIGNED && int_op) {
      int64_t v = kiln_dtype_load_i64(x->dtype, x->data, i);
      int64_t r = n->op == KILN_OP_Sign ? (v > 0) - (v < 0)
                  : (n->op == KILN_OP_Neg || v < 0) ? (int64_t)(0 - (uint64_t)v) /* wraps at MIN */
                                                    : v;
      kiln_dtype_store_i64(y->dtype, y->data, i, r);
    } else if (cls == KILN_NUM_UNSIGNED && int_op) {
      uint64_t v = kiln_dtype_load_u64(x->dtype, x->data, i);
      uint64_t r = n->op == KILN_OP_Sign ? (v != 0) : n->op == KILN_OP_Neg ? 0 - v : v;
      kiln_dtype_store_i64(y->dtype, y->data, i, (int64_t)r);
    } else {
      /* float ops (and, defensively, float-only ops handed ints: computed via double) */
      kiln_dtype_store_f64(y->dtype, y->data, i, unary_f(n->op, kiln_dtype_load_f64(x->dtype, x->data, i)));
    }
  }
  return NULL;
}

static kiln_status ref_pow(const kiln_tensor *in, kiln_tensor *out) {
  KILN_TRY(check_same_dtype(&in[0], out));
  const kiln_tensor *ops[2] = {&in[0], &in[1]};
  kiln_bcast_iter it;
  KILN_TRY(kiln_bcast_iter_init(&it, out, ops, 2));
  kiln_num_class bc = kiln_num_class_of(in[0].dtype), ec = kiln_num_class_of(in[1].dtype);
  for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it)) {
    int64_t ia = it.off[0], ib = it.off[1];
    if (bc != KILN_NUM_FLOAT && ec != KILN_NUM_FLOAT) {
      int64_t base = kiln_dtype_load_i64(in[0].dtype, in[0].data, ia);
      int64_t es = kiln_dtype_load_i64(in[1].dtype, in[1].data, ib);
      bool neg = ec == KILN_NUM_SIGNED && es < 0;
      kiln_dtype_store_i64(out->dtype, out->data, i, (int64_t)ipow(base, bc == KILN_NUM_SIGNED, (uint64_t)es, neg));
    } else {
      /* a float on either side: the real power, then converted (truncated for an int base, as
       * ONNX Runtime casts std::pow's result) */
      double r = pow(kiln_dtype_load_f64(in[0].dtype, in[0].data, ia), kiln_dtype_load_f64(in[1].dtype, in[1].data, ib));
      kiln_dtype_store_f64(out->dtype, out->data, i, r);
    }
  }
  return NULL;
}

static kiln_status ref_binary(const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  KILN_TRY(check_same_dtype(&in[0], out));
  KILN_TRY(check_same_dtype(&in[1], out));
  int fmod_mode = 0;
  if (n->op == KILN_OP_Mod) {
    const kiln_elementwise_params *p = n->params;
    if (!p) return kiln_error(KILN_ERR_INTERNAL, "Mod was not parsed");
    fmod_mode = p->fmod;
  }
  const kiln_tensor *ops[2] = {&in[0], &in[1]};
  kiln_bcast_iter it;
  KILN_TRY(kiln_bcast_iter_init(&it, out, ops, 2));
  kiln_dtype dt = out->dtype;
  const void *a = in[0].data, *b = in[1].data;
  switch (kiln_num_class_of(dt)) {
  case KILN_NUM_FLOAT:
    for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it))
      kiln_dtype_store_f64(dt, out->data, i,
                           binary_f(n->op, kiln_dtype_load_f64(dt, a, it.off[0]), kiln_dtype_load_f64(dt, b, it.off[1]),
                                    fmod_mode));
    break;
  case KILN_NUM_SIGNED:
    for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it))
      kiln_dtype_store_i64(dt, out->data, i,
                           binary_s(n->op, kiln_dtype_load_i64(dt, a, it.off[0]), kiln_dtype_load_i64(dt, b, it.off[1]),
                                    fmod_mode));
    break;
  case KILN_NUM_UNSIGNED:
    for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it))
      kiln_dtype_store_i64(dt, out->data, i,
                           (int64_t)binary_u(n->op, kiln_dtype_load_u64(dt, a, it.off[0]),
                                             kiln_dtype_load_u64(dt, b, it.off[1])));
    break;
  }
  return NULL;
}

/* Min / Max / Sum / Mean over any number of inputs, all broadcast to the output. The first
 * KILN_BCAST_MAX_OPERANDS inputs are walked; further ones compute their offset per element. */
static kiln_status ref_variadic(const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  int nin = n->n_inputs;
  if (nin < 1) return kiln_error(KILN_ERR_PARSE, "needs at least one input");
  const kiln_tensor *ops[KILN_BCAST_MAX_OPERANDS];
  int walked = nin < KILN_BCAST_MAX_OPERANDS ? nin : KILN_BCAST_MAX_OPERANDS;
  for (int k = 0; k < nin; k++) {
    KILN_TRY(check_same_dtype(&in[k], out));
    if (!kiln_bcast_compatible(&in[k], out))
      return kiln_error(KILN_ERR_SHAPE, "input %d does not broadcast to the output shape", k);
    if (!in[k].data && kiln_tensor_numel(out) > 0) return kiln_error(KILN_ERR_INTERNAL, "input %d has no data", k);
    if (k < walked) ops[k] = &in[k];
  }
  kiln_bcast_iter it;
  KILN_TRY(kiln_bcast_iter_init(&it, out, ops, walked));
  kiln_dtype dt = out->dtype;
  kiln_num_class cls = kiln_num_class_of(dt);
  kiln_op op = n->op;
  for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it)) {
    double af = 0;
    int64_t as = 0;
    uint64_t au = 0;
    for (int k = 0; k < nin; k++) {
      int64_t off = k < walked ? it.off[k] : kiln_bcast_offset(&it, &in[k]);
      if (cls == KILN_NUM_FLOAT) {
        double v = kiln_dtype_load_f64(dt, in[k].data, off);
        if (k == 0) af = v;
        else if (op == KILN_OP_Sum || op == KILN_OP_Mean) af += v;
        else if (af != af) continue; /* Min/Max propagate NaN, like numpy */
        else if (v != v || (op == KILN_OP_Min ? v < af : v > af)) af = v;
      } else if (cls == KILN_NUM_SIGNED) {
        int64_t v = kiln_dtype_load_i64(dt, in[k].data, off);
        if (k == 0) as = v;
        else if (op == KILN_OP_Sum || op == KILN_OP_Mean) as = (int64_t)((uint64_t)as + (uint64_t)v);
        else if (op == KILN_OP_Min ? v < as : v > as) as = v;
      } else {
        uint64_t v = kiln_dtype_load_u64(dt, in[k].data, off);
        if (k == 0) au = v;
        else if (op == KILN_OP_Sum || op == KILN_OP_Mean) au += v;
        else if (op == KILN_OP_Min ? v < au : v > au) au = v;
      }
    }
    if (cls == KILN_NUM_FLOAT) {
      if (op == KILN_OP_Mean) af /= nin;
      kiln_dtype_store_f64(dt, out->data, i, af);
    } else if (cls == KILN_NUM_SIGNED) {
      if (op == KILN_OP_Mean) as /= nin; /* not reachable through infer (float only); truncates */
      kiln_dtype_store_i64(dt, out->data, i, as);
    } else {
      if (op == KILN_OP_Mean) au /= (uint64_t)nin;
      kiln_dtype_store_i64(dt, out->data, i, (int64_t)au);
    }
  }
  return NULL;
}

kiln_status kiln_ref_elementwise(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  if (n->n_inputs < 1 || n->n_outputs < 1) return kiln_error(KILN_ERR_PARSE, "missing inputs or outputs");
  switch (n->op) {
  case KILN_OP_Add: case KILN_OP_Sub: case KILN_OP_Mul: case KILN_OP_Div: case KILN_OP_Mod:
    if (n->n_inputs != 2) return kiln_error(KILN_ERR_PARSE, "expects 2 inputs");
    return ref_binary(n, in, &out[0]);
  case KILN_OP_Pow:
    if (n->n_inputs != 2) return kiln_error(KILN_ERR_PARSE, "expects 2 inputs");
    return ref_pow(in, &out[0]);
  case KILN_OP_Min: case KILN_OP_Max: case KILN_OP_Sum: case KILN_OP_Mean:
    return ref_variadic(n, in, &out[0]);
  case KILN_OP_Sqrt: case KILN_OP_Exp: case KILN_OP_Log: case KILN_OP_Neg: case KILN_OP_Abs:
  case KILN_OP_Reciprocal: case KILN_OP_Floor: case KILN_OP_Ceil: case KILN_OP_Round: case KILN_OP_Sign:
  case KILN_OP_Sin: case KILN_OP_Cos: case KILN_OP_Tan: case KILN_OP_Asin: case KILN_OP_Acos:
  case KILN_OP_Atan: case KILN_OP_Sinh: case KILN_OP_Cosh: case KILN_OP_Asinh: case KILN_OP_Acosh:
  case KILN_OP_Atanh:
    return ref_unary(n, &in[0], &out[0]);
  default:
    return kiln_error(KILN_ERR_UNSUPPORTED, "no reference kernel for '%s'", n->op_type);
  }
}

/*
 * activation family: reference kernels. Floats compute in double and round once to the output
 * dtype; the ops ONNX also defines on integers (Relu, PRelu, Clip; Erf via double) compute in
 * int64/uint64 with wrap-around. NaN passes through every op (numpy semantics).
 */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/activation.h"
#include "ir/ops/elementwise.h"

#include <math.h>

static double sigmoid(double x) {
  /* two forms so exp never overflows into inf/inf */
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

static double act_f(kiln_op op, const kiln_activation_params *p, double x) {
  switch (op) {
  case KILN_OP_Relu: return x > 0 || x != x ? x : 0.0;
  case KILN_OP_LeakyRelu: return x < 0 ? (double)p->alpha * x : x;
  case KILN_OP_Elu: return x < 0 ? (double)p->alpha * expm1(x) : x;
  case KILN_OP_Selu: return x > 0 ? (double)p->gamma * x : (double)p->gamma * ((double)p->alpha * exp(x) - (double)p->alpha);
  case KILN_OP_Celu: {
    double a = p->alpha, neg = a * expm1(x / a);
    if (x != x) return x;
    return (x > 0 ? x : 0.0) + (neg < 0 ? neg : 0.0);
  }
  case KILN_OP_ThresholdedRelu: return x > (double)p->alpha || x != x ? x : 0.0;
  case KILN_OP_Sigmoid: return sigmoid(x);
  case KILN_OP_HardSigmoid: {
    double v = (double)p->alpha * x + (double)p->beta;
    return v < 0 ? 0.0 : v > 1 ? 1.0 : v;
  }
  case KILN_OP_HardSwish: { /* exact 1/6, not the float-rounded alpha in params */
    double v = x / 6.0 + 0.5;
    return x * (v < 0 ? 0.0 : v > 1 ? 1.0 : v);
  }
  case KILN_OP_Tanh: return tanh(x);
  case KILN_OP_Softplus: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
  case KILN_OP_Softsign: return x / (1.0 + fabs(x));
  case KILN_OP_Gelu:
    if (p->approximate == KILN_GELU_TANH) {
      const double k = 0.79788456080286535588; /* sqrt(2/pi) */
      return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
    }
    return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
  case KILN_OP_Erf: return erf(x);
  default: return NAN;
  }
}

static kiln_status check_io(const kiln_tensor *x, const kiln_tensor *y) {
  if (x->dtype != y->dtype)
    return kiln_error(KILN_ERR_SHAPE, "input dtype %s differs from output dtype %s", kiln_dtype_name(x->dtype),
                      kiln_dtype_name(y->dtype));
  int64_t count = kiln_tensor_numel(y);
  if (kiln_tensor_numel(x) != count) return kiln_error(KILN_ERR_SHAPE, "input and output sizes differ");
  if (count > 0 && !x->data) return kiln_error(KILN_ERR_INTERNAL, "input has no data");
  return NULL;
}

static kiln_status ref_prelu(const kiln_tensor *in, kiln_tensor *out) {
  KILN_TRY(check_io(&in[0], out));
  if (in[1].dtype != out->dtype) return kiln_error(KILN_ERR_SHAPE, "slope dtype differs from X's");
  const kiln_tensor *ops[2] = {&in[0], &in[1]};
  kiln_bcast_iter it;
  KILN_TRY(kiln_bcast_iter_init(&it, out, ops, 2));
  kiln_dtype dt = out->dtype;
  kiln_num_class cls = kiln_num_class_of(dt);
  for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it)) {
    if (cls == KILN_NUM_FLOAT) {
      double x = kiln_dtype_load_f64(dt, in[0].data, it.off[0]);
      double s = kiln_dtype_load_f64(dt, in[1].data, it.off[1]);
      kiln_dtype_store_f64(dt, out->data, i, x < 0 ? x * s : x);
    } else if (cls == KILN_NUM_SIGNED) {
      int64_t x = kiln_dtype_load_i64(dt, in[0].data, it.off[0]);
      int64_t s = kiln_dtype_load_i64(dt, in[1].data, it.off[1]);
      kiln_dtype_store_i64(dt, out->data, i, x < 0 ? (int64_t)((uint64_t)x * (uint64_t)s) : x);
    } else { /* unsigned X is never negative */
      kiln_dtype_store_i64(dt, out->data, i, kiln_dtype_load_i64(dt, in[0].data, it.off[0]));
    }
  }
  return NULL;
}

/* A bound input (opset >= 11): present, with data, one element, X's dtype. */
static kiln_status clip_bound(const kiln_tensor *b, kiln_dtype dt, const char *what) {
  if (b->dtype != dt) return kiln_error(KILN_ERR_SHAPE, "'%s' has dtype %s, X has %s", what, kiln_dtype_name(b->dtype), kiln_dtype_name(dt));
  if (kiln_tensor_numel(b) != 1) return kiln_error(KILN_ERR_SHAPE, "'%s' must be a scalar", what);
  return NULL;
}

static kiln_status ref_clip(const kiln_node *n, const kiln_activation_params *p, const kiln_tensor *in, kiln_tensor *out) {
  KILN_TRY(check_io(&in[0], out));
  kiln_dtype dt = out->dtype;
  const kiln_tensor *bmin = n->n_inputs > 1 && in[1].data ? &in[1] : NULL;
  const kiln_tensor *bmax = n->n_inputs > 2 && in[2].data ? &in[2] : NULL;
  if (bmin) KILN_TRY(clip_bound(bmin, dt, "min"));
  if (bmax) KILN_TRY(clip_bound(bmax, dt, "max"));
  int64_t count = kiln_tensor_numel(out);
  kiln_num_class cls = kiln_num_class_of(dt);
  /* Integer X with input bounds: compare exactly in the integer domain (int64 would lose
   * precision in double). Attribute bounds (opset < 11, float-only ops) go through double. */
  if (cls == KILN_NUM_SIGNED && !p->has_min && !p->has_max) {
    int64_t lo = bmin ? kiln_dtype_load_i64(dt, bmin->data, 0) : INT64_MIN;
    int64_t hi = bmax ? kiln_dtype_load_i64(dt, bmax->data, 0) : INT64_MAX;
    for (int64_t i = 0; i < count; i++) {
      int64_t v = kiln_dtype_load_i64(dt, in[0].data, i);
      if (v < lo) v = lo;
      if (v > hi) v = hi;
      kiln_dtype_store_i64(dt, out->data, i, v);
    }
    return NULL;
  }
  if (cls == KILN_NUM_UNSIGNED && !p->has_min && !p->has_max) {
    uint64_t lo = bmin ? kiln_dtype_load_u64(dt, bmin->data, 0) : 0;
    uint64_t hi = bmax ? kiln_dtype_load_u64(dt, bmax->data, 0) : UINT64_MAX;
    for (int64_t i = 0; i < count; i++) {
      uint64_t v = kiln_dtype_load_u64(dt, in[0].data, i);
      if (v < lo) v = lo;
      if (v > hi) v = hi;
      kiln_dtype_store_i64(dt, out->data, i, (int64_t)v);
    }
    return NULL;
  }
  double lo = -INFINITY, hi = INFINITY;
  if (p->has_min) lo = p->min;
  if (p->has_max) hi = p->max;
  if (bmin) lo = kiln_dtype_load_f64(dt, bmin->data, 0);
  if (bmax) hi = kiln_dtype_load_f64(dt, bmax->data, 0);
  for (int64_t i = 0; i < count; i++) {
    double v = kiln_dtype_load_f64(dt, in[0].data, i);
    /* min(max(x, lo), hi): with lo > hi every element becomes hi, as in ONNX/numpy; NaN stays */
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    kiln_dtype_store_f64(dt, out->data, i, v);
  }
  return NULL;
}

kiln_status kiln_ref_activation(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_activation_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  if (n->n_inputs < 1 || n->n_outputs < 1) return kiln_error(KILN_ERR_PARSE, "missing inputs or outputs");
  if (n->op == KILN_OP_PRelu) {
    if (n->n_inputs != 2) return kiln_error(KILN_ERR_PARSE, "PRelu expects 2 inputs");
    return ref_prelu(in, &out[0]);
  }
  if (n->op == KILN_OP_Clip) return ref_clip(n, p, in, &out[0]);
  const kiln_tensor *x = &in[0];
  kiln_tensor *y = &out[0];
  KILN_TRY(check_io(x, y));
  int64_t count = kiln_tensor_numel(y);
  kiln_num_class cls = kiln_num_class_of(y->dtype);
  if (n->op == KILN_OP_Relu && cls != KILN_NUM_FLOAT) { /* exact for int64 */
    for (int64_t i = 0; i < count; i++) {
      int64_t v = kiln_dtype_load_i64(x->dtype, x->data, i);
      kiln_dtype_store_i64(y->dtype, y->data, i, cls == KILN_NUM_SIGNED && v < 0 ? 0 : v);
    }
    return NULL;
  }
  for (int64_t i = 0; i < count; i++)
    kiln_dtype_store_f64(y->dtype, y->data, i, act_f(n->op, p, kiln_dtype_load_f64(x->dtype, x->data, i)));
  return NULL;
}

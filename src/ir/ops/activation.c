/* activation family: parse / infer / macs for the unary activations (Relu .. Clip). */
#include "ir/ops/activation.h"

#include "ir/infer_util.h"
#include "ir/ops/elementwise.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* dtypes input 0 (and so the output) may have. */
static uint32_t act_types(kiln_op op) {
  switch (op) {
  case KILN_OP_Relu: return KILN_DTMASK_FLOAT | KILN_DTMASK_SINT;       /* ints since opset 14 */
  case KILN_OP_PRelu: return KILN_DTMASK_FLOAT | KILN_DTMASK_SINT | KILN_DTMASK_UINT; /* opset 9+ */
  case KILN_OP_Clip: return KILN_DTMASK_NUMERIC;                          /* ints since opset 12 */
  case KILN_OP_Erf: return KILN_DTMASK_NUMERIC;                           /* all numeric since opset 9 */
  default: return KILN_DTMASK_FLOAT;
  }
}

static kiln_status get_finite_float(const kiln_node *n, const char *name, float def, float *out) {
  KILN_TRY(kiln_node_get_float(n, name, def, out));
  if (!isfinite(*out)) return kiln_error(KILN_ERR_PARSE, "attribute '%s' = %g must be finite", name, *out);
  return NULL;
}

kiln_status kiln_activation_parse(kiln_graph *g, kiln_node *n) {
  kiln_activation_params p;
  memset(&p, 0, sizeof p);
  switch (n->op) {
  case KILN_OP_PRelu:
    KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1));
    break;
  case KILN_OP_Clip:
    if (g->opset < 11) {
      KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
      /* Clip-6 defaults are the float range, so +-inf clips to +-FLT_MAX: keep that exactly. */
      float lo, hi;
      KILN_TRY(kiln_node_get_float(n, "min", -FLT_MAX, &lo));
      KILN_TRY(kiln_node_get_float(n, "max", FLT_MAX, &hi));
      if (isnan(lo) || isnan(hi)) return kiln_error(KILN_ERR_PARSE, "attributes 'min'/'max' must not be NaN");
      p.has_min = p.has_max = true;
      p.min = lo;
      p.max = hi;
    } else {
      KILN_TRY(kiln_check_arity(n, 1, 3, 1, 1));
    }
    break;
  default:
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    break;
  }
  switch (n->op) {
  case KILN_OP_LeakyRelu: KILN_TRY(get_finite_float(n, "alpha", 0.01f, &p.alpha)); break;
  case KILN_OP_Elu: KILN_TRY(get_finite_float(n, "alpha", 1.0f, &p.alpha)); break;
  case KILN_OP_ThresholdedRelu: KILN_TRY(get_finite_float(n, "alpha", 1.0f, &p.alpha)); break;
  case KILN_OP_Selu:
    KILN_TRY(get_finite_float(n, "alpha", 1.67326319217681884765625f, &p.alpha));
    KILN_TRY(get_finite_float(n, "gamma", 1.05070102214813232421875f, &p.gamma));
    break;
  case KILN_OP_Celu:
    KILN_TRY(get_finite_float(n, "alpha", 1.0f, &p.alpha));
    if (p.alpha == 0.0f) return kiln_error(KILN_ERR_PARSE, "attribute 'alpha' must not be 0 (Celu divides by it)");
    break;
  case KILN_OP_HardSigmoid:
    KILN_TRY(get_finite_float(n, "alpha", 0.2f, &p.alpha));
    KILN_TRY(get_finite_float(n, "beta", 0.5f, &p.beta));
    break;
  case KILN_OP_HardSwish: /* HardSigmoid with fixed alpha = 1/6, beta = 0.5, times x */
    p.alpha = 1.0f / 6.0f;
    p.beta = 0.5f;
    break;
  case KILN_OP_Gelu: {
    const char *a;
    KILN_TRY(kiln_node_get_string(n, "approximate", "none", &a));
    if (strcmp(a, "none") == 0) p.approximate = KILN_GELU_NONE;
    else if (strcmp(a, "tanh") == 0) p.approximate = KILN_GELU_TANH;
    else return kiln_error(KILN_ERR_PARSE, "attribute 'approximate' = '%s' is not one of none, tanh", a);
    break;
  }
  case KILN_OP_Relu: case KILN_OP_PRelu: case KILN_OP_Sigmoid: case KILN_OP_Tanh: case KILN_OP_Softplus:
  case KILN_OP_Softsign: case KILN_OP_Erf: case KILN_OP_Clip:
    break;
  default:
    return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the activation family", n->op_type);
  }
  kiln_activation_params *pp = malloc(sizeof *pp);
  KILN_CHECK_ALLOC(pp);
  *pp = p;
  kiln_node_set_params(n, pp, NULL);
  return NULL;
}

kiln_status kiln_activation_infer(kiln_graph *g, kiln_node *n) {
  const kiln_value *x;
  KILN_TRY(kiln_ew_require_input(g, n, 0, act_types(n->op), &x));
  if (n->op == KILN_OP_PRelu) {
    /* slope broadcasts to X (unidirectionally in ONNX); the numpy result must then be X's shape */
    kiln_shape out;
    KILN_TRY(kiln_ew_broadcast_inputs(g, n, 0, 2, &out));
    const kiln_value *s = kiln_node_input(g, n, 1);
    if (x->shape.rank >= 0 && out.rank > x->shape.rank)
      return kiln_error(KILN_ERR_SHAPE, "slope '%s' has a higher rank than X '%s'", s->name, x->name);
    for (int32_t d = 0; x->shape.rank >= 0 && d < out.rank; d++)
      if (x->shape.dims[d] >= 0 && out.dims[d] != x->shape.dims[d])
        return kiln_error(KILN_ERR_SHAPE, "slope '%s' does not broadcast to X '%s'", s->name, x->name);
    return kiln_infer_set_output(g, n, 0, x->dtype, &x->shape);
  }
  if (n->op == KILN_OP_Clip) {
    for (int i = 1; i < n->n_inputs && i < 3; i++) {
      const kiln_value *b = kiln_node_input(g, n, i);
      if (!b) continue;
      if (b->dtype != x->dtype)
        return kiln_error(KILN_ERR_SHAPE, "bound '%s' has dtype %s, X '%s' has %s", b->name,
                          kiln_dtype_name(b->dtype), x->name, kiln_dtype_name(x->dtype));
      /* ONNX says scalar; exporters also write shape [1]. Anything with more elements is wrong. */
      if (kiln_shape_is_static(&b->shape) && kiln_shape_numel(&b->shape) != 1)
        return kiln_error(KILN_ERR_SHAPE, "bound '%s' must be a scalar", b->name);
    }
  }
  return kiln_infer_set_output(g, n, 0, x->dtype, &x->shape);
}

int64_t kiln_activation_macs(const kiln_graph *g, const kiln_node *n) { return 0; }

kiln_status kiln_clip_bounds(const kiln_graph *g, const kiln_node *n, double *lo, double *hi, bool *known) {
  if (n->op != KILN_OP_Clip) return kiln_error(KILN_ERR_INTERNAL, "node is not a Clip");
  const kiln_activation_params *p = n->params;
  *lo = -INFINITY;
  *hi = INFINITY;
  *known = true;
  if (p && p->has_min) *lo = p->min;
  if (p && p->has_max) *hi = p->max;
  for (int i = 1; i < 3; i++) {
    const kiln_value *b = kiln_node_input(g, n, i);
    if (!b) continue;
    if (!kiln_value_is_constant(b)) {
      *known = false;
      continue;
    }
    double v;
    int64_t cnt;
    KILN_TRY(kiln_value_read_floats(b, &v, 1, &cnt));
    if (cnt != 1) return kiln_error(KILN_ERR_SHAPE, "bound '%s' must be a scalar", b->name);
    *(i == 1 ? lo : hi) = v;
  }
  return NULL;
}

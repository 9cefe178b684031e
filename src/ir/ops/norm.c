/* norm family: BatchNormalization, InstanceNormalization, LayerNormalization, LRN parse / infer / macs. */
#include "ir/ops/norm.h"

#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static kiln_status norm_parse(kiln_graph *g, kiln_node *n, kiln_norm_params *p) {
  int64_t opset = g->opset > 0 ? g->opset : 21;
  switch (n->op) {
  case KILN_OP_BatchNormalization: {
    KILN_TRY(kiln_check_arity(n, 5, 5, 1, opset >= 14 ? 3 : 5));
    KILN_TRY(kiln_node_get_float(n, "epsilon", 1e-5f, &p->epsilon));
    KILN_TRY(kiln_node_get_float(n, "momentum", 0.9f, &p->momentum));
    if (opset < 9) {
      int64_t spatial;
      KILN_TRY(kiln_node_get_int(n, "spatial", 1, &spatial));
      if (spatial != 0 && spatial != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'spatial' must be 0 or 1");
      p->per_element = spatial == 0;
    }
    int64_t tm = 0;
    if (opset >= 14) {
      KILN_TRY(kiln_node_get_int(n, "training_mode", 0, &tm));
      if (tm != 0 && tm != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'training_mode' must be 0 or 1");
    }
    p->training = tm;
    bool extra = false;
    for (int32_t i = 1; i < n->n_outputs; i++) extra |= n->outputs[i] >= 0;
    if (extra && !p->training)
      return kiln_error(KILN_ERR_UNSUPPORTED,
                        "training-mode outputs (mean/var) are not supported%s",
                        opset >= 14 ? " without training_mode = 1" : " before opset 14");
    break;
  }
  case KILN_OP_InstanceNormalization:
    KILN_TRY(kiln_check_arity(n, 3, 3, 1, 1));
    KILN_TRY(kiln_node_get_float(n, "epsilon", 1e-5f, &p->epsilon));
    break;
  case KILN_OP_LayerNormalization:
    KILN_TRY(kiln_check_arity(n, 2, 3, 1, 3));
    KILN_TRY(kiln_node_get_float(n, "epsilon", 1e-5f, &p->epsilon));
    KILN_TRY(kiln_node_get_int(n, "axis", -1, &p->axis));
    KILN_TRY(kiln_node_get_int(n, "stash_type", 1, &p->stash_type));
    if (!kiln_dtype_is_valid((int)p->stash_type) || !kiln_dtype_is_float((kiln_dtype)p->stash_type))
      return kiln_error(KILN_ERR_PARSE, "attribute 'stash_type' = %" PRId64 " is not a float type", p->stash_type);
    break;
  case KILN_OP_LRN:
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    KILN_TRY(kiln_node_get_float(n, "alpha", 1e-4f, &p->alpha));
    KILN_TRY(kiln_node_get_float(n, "beta", 0.75f, &p->beta));
    KILN_TRY(kiln_node_get_float(n, "bias", 1.0f, &p->bias));
    KILN_TRY(kiln_node_get_int(n, "size", 0, &p->size));
    if (p->size <= 0 || p->size > (INT64_C(1) << 31))
      return kiln_error(KILN_ERR_PARSE, "attribute 'size' = %" PRId64 " must be a positive integer", p->size);
    break;
  default: return kiln_error(KILN_ERR_INTERNAL, "not a norm op");
  }
  if (!isfinite(p->epsilon) || p->epsilon < 0)
    return kiln_error(KILN_ERR_PARSE, "attribute 'epsilon' = %g must be finite and >= 0", (double)p->epsilon);
  return NULL;
}

kiln_status kiln_norm_parse(kiln_graph *g, kiln_node *n) {
  kiln_norm_params *p = calloc(1, sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = norm_parse(g, n, p);
  if (st) {
    free(p);
    return st;
  }
  kiln_node_set_params(n, p, NULL);
  return NULL;
}

/* A per-channel parameter input must be float and, when its shape is known, [C]. */
static kiln_status check_channel_param(const kiln_graph *g, const kiln_node *n, int i, int64_t c, bool per_element,
                                       kiln_dtype *dt) {
  const kiln_value *v;
  KILN_TRY(kiln_require_input(g, n, i, &v));
  if (!kiln_dtype_is_float(v->dtype))
    return kiln_error(KILN_ERR_SHAPE, "input '%s' has dtype %s, expected a float type", v->name, kiln_dtype_name(v->dtype));
  if (dt) *dt = v->dtype;
  if (per_element || v->shape.rank < 0) return NULL;
  if (v->shape.rank != 1 || (c >= 0 && v->shape.dims[0] >= 0 && v->shape.dims[0] != c))
    return kiln_error(KILN_ERR_SHAPE, "input '%s' must have shape [%" PRId64 "] (one value per channel)", v->name, c);
  return NULL;
}

kiln_status kiln_norm_infer(kiln_graph *g, kiln_node *n) {
  const kiln_norm_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "not parsed");
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  if (!kiln_dtype_is_float(x->dtype))
    return kiln_error(KILN_ERR_SHAPE, "input '%s' has dtype %s, expected a float type", x->name,
                      kiln_dtype_name(x->dtype));
  int32_t rank = x->shape.rank;
  int64_t c = rank >= 2 ? x->shape.dims[1] : KILN_DIM_DYNAMIC;
  switch (n->op) {
  case KILN_OP_BatchNormalization: {
    if (rank >= 0 && rank < 2) return kiln_error(KILN_ERR_SHAPE, "input '%s' must have rank >= 2", x->name);
    kiln_dtype mdt = x->dtype;
    for (int i = 1; i < 5; i++) KILN_TRY(check_channel_param(g, n, i, c, p->per_element, i == 3 ? &mdt : NULL));
    KILN_TRY(kiln_infer_set_output(g, n, 0, x->dtype, &x->shape));
    kiln_shape cs;
    int64_t cd = c;
    kiln_shape_init(&cs, 1, &cd);
    if (rank >= 2) cs.sym[0] = x->shape.sym[1];
    KILN_TRY(kiln_infer_set_output(g, n, 1, mdt, &cs));
    return kiln_infer_set_output(g, n, 2, mdt, &cs);
  }
  case KILN_OP_InstanceNormalization:
    if (rank >= 0 && rank < 3) return kiln_error(KILN_ERR_SHAPE, "input '%s' must have rank >= 3", x->name);
    for (int i = 1; i < 3; i++) KILN_TRY(check_channel_param(g, n, i, c, false, NULL));
    return kiln_infer_set_output(g, n, 0, x->dtype, &x->shape);
  case KILN_OP_LayerNormalization: {
    KILN_TRY(kiln_infer_set_output(g, n, 0, x->dtype, &x->shape));
    kiln_shape ms;
    if (rank < 0) {
      kiln_shape_unknown(&ms);
    } else {
      int32_t axis;
      KILN_TRY(kiln_normalize_axis(p->axis, rank, &axis));
      ms = x->shape;
      for (int32_t i = axis; i < rank; i++) ms.dims[i] = 1, ms.sym[i] = -1;
      /* Scale and B broadcast (unidirectionally) to the normalized dims X[axis:]. */
      for (int i = 1; i < 3; i++) {
        const kiln_value *v = kiln_node_input(g, n, i);
        if (!v || v->shape.rank < 0) continue;
        if (v->shape.rank > rank - axis)
          return kiln_error(KILN_ERR_SHAPE, "input '%s' has rank %d, more than the %d normalized dims", v->name,
                            v->shape.rank, rank - axis);
        for (int32_t j = 0; j < v->shape.rank; j++) {
          int64_t vd = v->shape.dims[j], xd = x->shape.dims[rank - v->shape.rank + j];
          if (vd >= 0 && xd >= 0 && vd != 1 && vd != xd)
            return kiln_error(KILN_ERR_SHAPE, "input '%s' does not broadcast to the normalized dims", v->name);
        }
      }
    }
    KILN_TRY(kiln_infer_set_output(g, n, 1, (kiln_dtype)p->stash_type, &ms));
    return kiln_infer_set_output(g, n, 2, (kiln_dtype)p->stash_type, &ms);
  }
  case KILN_OP_LRN:
    if (rank >= 0 && rank < 2) return kiln_error(KILN_ERR_SHAPE, "input '%s' must have rank >= 2", x->name);
    return kiln_infer_set_output(g, n, 0, x->dtype, &x->shape);
  default: return kiln_error(KILN_ERR_INTERNAL, "not a norm op");
  }
}

int64_t kiln_norm_macs(const kiln_graph *g, const kiln_node *n) {
  (void)g;
  (void)n;
  return 0; /* normalizations are elementwise-cost ops; MACs count only products of tensors */
}

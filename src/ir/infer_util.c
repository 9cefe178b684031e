#include "ir/infer_util.h"

#include "core/dtype.h"

#include <inttypes.h>
#include <stdio.h>

kiln_status kiln_infer_set_output(kiln_graph *g, kiln_node *n, int idx, kiln_dtype dt, const kiln_shape *shape) {
  if (idx < 0 || idx >= n->n_outputs || n->outputs[idx] < 0) return NULL;
  if (shape->rank > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_UNSUPPORTED, "output %d has rank %d (kiln supports up to %d)", idx, shape->rank,
                      KILN_MAX_RANK);
  for (int32_t i = 0; i < shape->rank; i++)
    if (shape->dims[i] > KILN_MAX_ELEMENTS)
      return kiln_error(KILN_ERR_SHAPE, "output %d has an absurd dim %" PRId64, idx, shape->dims[i]);
  if (kiln_shape_is_static(shape) && kiln_shape_numel(shape) < 0)
    return kiln_error(KILN_ERR_SHAPE, "output %d has more than 2^40 elements", idx);
  kiln_value *v = &g->values[n->outputs[idx]];
  if (v->data) {
    if (v->dtype != dt || !kiln_shape_equal(&v->shape, shape))
      return kiln_error(KILN_ERR_INTERNAL, "output '%s' is constant with a different type or shape", v->name);
    return NULL;
  }
  v->dtype = dt;
  v->shape = *shape;
  return NULL;
}

kiln_status kiln_infer_broadcast(const kiln_shape *a, const kiln_shape *b, kiln_shape *out) {
  if (a->rank < 0 || b->rank < 0) {
    kiln_shape_unknown(out);
    return NULL;
  }
  int32_t r = a->rank > b->rank ? a->rank : b->rank;
  kiln_shape_init(out, r, NULL);
  for (int32_t i = 0; i < r; i++) {
    int32_t ia = i - (r - a->rank), ib = i - (r - b->rank);
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    int32_t sa = ia >= 0 ? a->sym[ia] : -1, sb = ib >= 0 ? b->sym[ib] : -1;
    if (da == db && (da >= 0 || sa == sb)) {
      out->dims[i] = da;
      out->sym[i] = sa;
    } else if (da == 1) {
      out->dims[i] = db;
      out->sym[i] = sb;
    } else if (db == 1) {
      out->dims[i] = da;
      out->sym[i] = sa;
    } else if (da < 0 && db < 0) {
      out->dims[i] = KILN_DIM_DYNAMIC;
      out->sym[i] = -1;
    } else if (da < 0 || db < 0) { /* a dynamic dim against n > 1 must be n */
      out->dims[i] = da < 0 ? db : da;
    } else {
      return kiln_error(KILN_ERR_SHAPE, "cannot broadcast dim %" PRId64 " with %" PRId64 " (axis %d)", da, db, i);
    }
  }
  return NULL;
}

kiln_status kiln_normalize_axis(int64_t axis, int32_t rank, int32_t *out) {
  if (axis < -(int64_t)rank || axis >= rank)
    return kiln_error(KILN_ERR_SHAPE, "axis %" PRId64 " is out of range for rank %d", axis, rank);
  *out = (int32_t)(axis < 0 ? axis + rank : axis);
  return NULL;
}

kiln_status kiln_check_arity(const kiln_node *n, int lo, int hi, int lo_out, int hi_out) {
  int nin = n->n_inputs;
  while (nin > lo && n->inputs[nin - 1] < 0) nin--; /* trailing omitted optionals do not count */
  if (nin < lo || nin > hi)
    return kiln_error(KILN_ERR_PARSE, "expects %d to %d inputs, has %d", lo, hi, n->n_inputs);
  for (int i = 0; i < lo; i++)
    if (n->inputs[i] < 0) return kiln_error(KILN_ERR_PARSE, "required input %d is missing", i);
  if (n->n_outputs < lo_out || n->n_outputs > hi_out)
    return kiln_error(KILN_ERR_PARSE, "expects %d to %d outputs, has %d", lo_out, hi_out, n->n_outputs);
  return NULL;
}

kiln_status kiln_require_input(const kiln_graph *g, const kiln_node *n, int i, const kiln_value **out) {
  const kiln_value *v = kiln_node_input(g, n, i);
  if (!v) return kiln_error(KILN_ERR_PARSE, "required input %d is missing", i);
  if (v->dtype == KILN_DTYPE_UNDEFINED) return kiln_error(KILN_ERR_SHAPE, "input '%s' has no known type", v->name);
  *out = v;
  return NULL;
}

kiln_status kiln_check_numel(const kiln_shape *s, int64_t *out) {
  int64_t n = kiln_shape_numel(s);
  if (n < 0) return kiln_error(KILN_ERR_SHAPE, "tensor is not static or has more than 2^40 elements");
  *out = n;
  return NULL;
}

/* source family: parse / infer / macs. */
#include "ir/ops/source.h"

#include "core/dtype.h"
#include "ir/infer_util.h"
#include "ir/ops/shape.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void free_source_params(void *pv) {
  kiln_source_params *p = pv;
  if (p) free(p->value.data);
  free(p);
}

void kiln_source_convert(kiln_dtype sdt, const void *src, kiln_dtype ddt, void *dst, int64_t n) {
  if (sdt == ddt) {
    if (n) memcpy(dst, src, (size_t)n * kiln_dtype_size(sdt));
    return;
  }
  bool sfloat = kiln_dtype_is_float(sdt), dfloat = kiln_dtype_is_float(ddt);
  for (int64_t i = 0; i < n; i++) {
    if (sdt == KILN_DTYPE_UINT64) { /* load_i64 would turn values >= 2^63 negative */
      uint64_t u = ((const uint64_t *)src)[i];
      if (dfloat) kiln_dtype_store_f64(ddt, dst, i, (double)u);
      else kiln_dtype_store_i64(ddt, dst, i, (int64_t)u);
    } else if (sfloat) {
      double v = kiln_dtype_load_f64(sdt, src, i);
      if (ddt == KILN_DTYPE_UINT64 && v >= 9223372036854775808.0 && v < 18446744073709551616.0)
        ((uint64_t *)dst)[i] = (uint64_t)v;
      else kiln_dtype_store_f64(ddt, dst, i, v); /* C conversion: truncates toward zero */
    } else {
      int64_t v = kiln_dtype_load_i64(sdt, src, i);
      if (dfloat) kiln_dtype_store_f64(ddt, dst, i, (double)v);
      else kiln_dtype_store_i64(ddt, dst, i, v);
    }
  }
}

/* Constant's value from whichever attribute carries it. */
static kiln_status parse_constant(const kiln_node *n, kiln_source_params *p) {
  const char *names[] = {"value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value",
                         "value_string", "value_strings"};
  const kiln_attr *a = NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const kiln_attr *f = kiln_node_find_attr(n, names[i]);
    if (!f) continue;
    if (a) return kiln_error(KILN_ERR_PARSE, "more than one value attribute ('%s' and '%s')", a->name, f->name);
    a = f;
  }
  if (!a) return kiln_error(KILN_ERR_PARSE, "no value attribute");
  kiln_tensor *t = &p->value;
  memset(t, 0, sizeof *t);
  if (strcmp(a->name, "value_string") == 0 || strcmp(a->name, "value_strings") == 0)
    return kiln_error(KILN_ERR_UNSUPPORTED, "string constants are not supported");
  if (a->type == KILN_ATTR_TENSOR || a->type == KILN_ATTR_SPARSE_TENSOR) {
    if (!a->tensors || a->count < 1) return kiln_error(KILN_ERR_PARSE, "attribute '%s' holds no tensor", a->name);
    if (!kiln_dtype_is_valid(a->tensors[0].dtype))
      return kiln_error(KILN_ERR_UNSUPPORTED, "constant of dtype %d is not supported", (int)a->tensors[0].dtype);
    if (a->tensors[0].rank < 0 || a->tensors[0].rank > KILN_MAX_RANK)
      return kiln_error(KILN_ERR_UNSUPPORTED, "constant rank %d is not supported", a->tensors[0].rank);
    *t = a->tensors[0];
    size_t nb = kiln_tensor_nbytes(t);
    t->data = malloc(nb ? nb : 1);
    KILN_CHECK_ALLOC(t->data);
    if (nb) {
      if (!a->tensors[0].data) return kiln_error(KILN_ERR_PARSE, "attribute '%s' has no data", a->name);
      memcpy(t->data, a->tensors[0].data, nb);
    }
  } else if (a->type == KILN_ATTR_FLOAT || a->type == KILN_ATTR_INT) {
    t->dtype = a->type == KILN_ATTR_FLOAT ? KILN_DTYPE_FLOAT32 : KILN_DTYPE_INT64;
    t->rank = 0;
    t->data = malloc(8);
    KILN_CHECK_ALLOC(t->data);
    if (a->type == KILN_ATTR_FLOAT) *(float *)t->data = a->f;
    else *(int64_t *)t->data = a->i;
  } else if (a->type == KILN_ATTR_FLOATS || a->type == KILN_ATTR_INTS) {
    bool f = a->type == KILN_ATTR_FLOATS;
    t->dtype = f ? KILN_DTYPE_FLOAT32 : KILN_DTYPE_INT64;
    t->rank = 1;
    t->dims[0] = (int64_t)a->count;
    size_t nb = a->count * (f ? sizeof(float) : sizeof(int64_t));
    t->data = malloc(nb ? nb : 1);
    KILN_CHECK_ALLOC(t->data);
    if (nb) memcpy(t->data, f ? (const void *)a->floats : (const void *)a->ints, nb);
  } else {
    return kiln_error(KILN_ERR_PARSE, "attribute '%s' has the wrong kind", a->name);
  }
  p->has_value = true;
  return NULL;
}

static kiln_status parse_params(kiln_graph *g, kiln_node *n, kiln_source_params *p) {
  switch (n->op) {
  case KILN_OP_Shape:
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    KILN_TRY(kiln_node_get_int(n, "start", 0, &p->start));
    return kiln_node_get_int(n, "end", INT64_MAX, &p->end);
  case KILN_OP_Size:
  case KILN_OP_Identity: return kiln_check_arity(n, 1, 1, 1, 1);
  case KILN_OP_Constant:
    KILN_TRY(kiln_check_arity(n, 0, 0, 1, 1));
    return parse_constant(n, p);
  case KILN_OP_ConstantOfShape: {
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    const kiln_tensor *t;
    KILN_TRY(kiln_node_get_tensor(n, "value", &t));
    memset(&p->value, 0, sizeof p->value);
    if (t) {
      if (!kiln_dtype_is_valid(t->dtype))
        return kiln_error(KILN_ERR_UNSUPPORTED, "'value' of dtype %d is not supported", (int)t->dtype);
      if (kiln_tensor_numel(t) != 1 || !t->data)
        return kiln_error(KILN_ERR_PARSE, "attribute 'value' must have exactly one element");
      p->value.dtype = t->dtype;
      p->value.rank = 0;
      p->value.data = malloc(kiln_dtype_size(t->dtype));
      KILN_CHECK_ALLOC(p->value.data);
      memcpy(p->value.data, t->data, kiln_dtype_size(t->dtype));
    } else { /* default: float32 zero */
      p->value.dtype = KILN_DTYPE_FLOAT32;
      p->value.data = calloc(1, sizeof(float));
      KILN_CHECK_ALLOC(p->value.data);
    }
    p->has_value = true;
    return NULL;
  }
  case KILN_OP_Range: return kiln_check_arity(n, 3, 3, 1, 1);
  case KILN_OP_Cast: {
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    if (!kiln_node_find_attr(n, "to")) return kiln_error(KILN_ERR_PARSE, "attribute 'to' is required");
    int64_t to;
    KILN_TRY(kiln_node_get_int(n, "to", 0, &to));
    if (to == KILN_DTYPE_STRING) return kiln_error(KILN_ERR_UNSUPPORTED, "cast to string is not supported");
    if (to < 0 || to > 64 || !kiln_dtype_is_valid((int)to))
      return kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'to' = %" PRId64 " is not a dtype kiln supports", to);
    p->to = (kiln_dtype)to;
    return NULL;
  }
  case KILN_OP_CastLike: return kiln_check_arity(n, 2, 2, 1, 1);
  case KILN_OP_Dropout: {
    if (g->opset >= 12) KILN_TRY(kiln_check_arity(n, 1, 3, 1, 2));
    else KILN_TRY(kiln_check_arity(n, 1, 1, 1, 2));
    float ratio = 0.5f;
    KILN_TRY(kiln_node_get_float(n, "ratio", 0.5f, &ratio));
    if (!(ratio >= 0 && ratio < 1)) return kiln_error(KILN_ERR_PARSE, "attribute 'ratio' = %g is not in [0, 1)", ratio);
    int64_t is_test = 1;
    KILN_TRY(kiln_node_get_int(n, "is_test", 1, &is_test)); /* opset < 7 */
    if (g->opset < 7 && is_test == 0 && kiln_node_find_attr(n, "is_test"))
      return kiln_error(KILN_ERR_UNSUPPORTED, "training-mode Dropout (is_test = 0) is not supported");
    p->mask_bool = g->opset >= 10;
    return NULL;
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the source family");
  }
}

kiln_status kiln_source_parse(kiln_graph *g, kiln_node *n) {
  kiln_source_params *p = calloc(1, sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = parse_params(g, n, p);
  if (st) {
    free_source_params(p);
    return st;
  }
  kiln_node_set_params(n, p, free_source_params);
  return NULL;
}

/* Shape's [start, end) clamped into [0, rank]. */
static void shape_range(const kiln_source_params *p, int32_t rank, int64_t *lo, int64_t *hi) {
  int64_t s = p->start, e = p->end;
  if (s < 0) s = s < -(int64_t)rank ? 0 : s + rank;
  if (e < 0) e = e < -(int64_t)rank ? 0 : e + rank;
  if (s > rank) s = rank;
  if (e > rank) e = rank;
  *lo = s;
  *hi = e > s ? e : s;
}

static kiln_status range_count(const kiln_tensor *t, int64_t *count) {
  for (int i = 0; i < 3; i++)
    if (kiln_tensor_numel(&t[i]) != 1) return kiln_error(KILN_ERR_SHAPE, "start, limit and delta must be scalars");
  kiln_dtype dt = t[0].dtype;
  if (kiln_dtype_is_float(dt)) {
    double s = kiln_dtype_load_f64(dt, t[0].data, 0), l = kiln_dtype_load_f64(dt, t[1].data, 0),
           d = kiln_dtype_load_f64(dt, t[2].data, 0);
    if (d == 0 || d != d) return kiln_error(KILN_ERR_SHAPE, "delta must be nonzero");
    double c = ceil((l - s) / d);
    if (!(c <= (double)KILN_MAX_ELEMENTS)) return kiln_error(KILN_ERR_SHAPE, "range has too many elements");
    *count = c > 0 ? (int64_t)c : 0;
  } else {
    int64_t s = kiln_dtype_load_i64(dt, t[0].data, 0), l = kiln_dtype_load_i64(dt, t[1].data, 0),
            d = kiln_dtype_load_i64(dt, t[2].data, 0);
    if (d == 0) return kiln_error(KILN_ERR_SHAPE, "delta must be nonzero");
    /* long double avoids overflow of l - s for extreme int64 values */
    long double c = ceill(((long double)l - (long double)s) / (long double)d);
    if (c > (long double)KILN_MAX_ELEMENTS) return kiln_error(KILN_ERR_SHAPE, "range has too many elements");
    *count = c > 0 ? (int64_t)c : 0;
  }
  return NULL;
}

kiln_status kiln_source_range_count(const kiln_tensor *t, int64_t *count) { return range_count(t, count); }

static bool range_dtype_ok(kiln_dtype dt) {
  return dt == KILN_DTYPE_FLOAT32 || dt == KILN_DTYPE_FLOAT64 || dt == KILN_DTYPE_INT16 || dt == KILN_DTYPE_INT32 ||
         dt == KILN_DTYPE_INT64 || dt == KILN_DTYPE_FLOAT16 || dt == KILN_DTYPE_BFLOAT16 || dt == KILN_DTYPE_INT8 ||
         dt == KILN_DTYPE_UINT8 || dt == KILN_DTYPE_UINT16 || dt == KILN_DTYPE_UINT32 || dt == KILN_DTYPE_UINT64;
}

kiln_status kiln_source_infer(kiln_graph *g, kiln_node *n) {
  const kiln_source_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  kiln_shape_clear_folded(g, n);
  kiln_shape s;
  if (n->op == KILN_OP_Constant) {
    kiln_shape_init(&s, p->value.rank, p->value.dims);
    if (n->outputs[0] < 0) return NULL;
    return kiln_value_set_constant(g, n->outputs[0], p->value.dtype, &s, p->value.data);
  }
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  switch (n->op) {
  case KILN_OP_Shape: {
    kiln_shape_init(&s, 1, NULL);
    if (x->shape.rank < 0) {
      s.dims[0] = KILN_DIM_DYNAMIC;
      return kiln_infer_set_output(g, n, 0, KILN_DTYPE_INT64, &s);
    }
    int64_t lo, hi, dims[KILN_MAX_RANK];
    shape_range(p, x->shape.rank, &lo, &hi);
    s.dims[0] = hi - lo;
    bool all = true;
    for (int64_t i = lo; i < hi; i++) {
      dims[i - lo] = x->shape.dims[i];
      all = all && dims[i - lo] >= 0;
    }
    KILN_TRY(kiln_infer_set_output(g, n, 0, KILN_DTYPE_INT64, &s));
    /* Only a fully known shape is a constant: a dynamic dim's value is not known before run time. */
    if (all && n->outputs[0] >= 0) return kiln_value_set_constant(g, n->outputs[0], KILN_DTYPE_INT64, &s, dims);
    return NULL;
  }
  case KILN_OP_Size: {
    kiln_shape_init(&s, 0, NULL);
    KILN_TRY(kiln_infer_set_output(g, n, 0, KILN_DTYPE_INT64, &s));
    int64_t ne = kiln_shape_numel(&x->shape);
    if (ne >= 0 && n->outputs[0] >= 0) return kiln_value_set_constant(g, n->outputs[0], KILN_DTYPE_INT64, &s, &ne);
    return NULL;
  }
  case KILN_OP_ConstantOfShape: {
    if (x->dtype != KILN_DTYPE_INT64 && x->dtype != KILN_DTYPE_INT32)
      return kiln_error(KILN_ERR_SHAPE, "input '%s' must be int64, is %s", x->name, kiln_dtype_name(x->dtype));
    if (x->shape.rank > 1) return kiln_error(KILN_ERR_SHAPE, "input '%s' must be 1-D", x->name);
    kiln_ints v;
    kiln_ints_from_value(x, &v);
    if (v.known) {
      if (v.n > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "output rank %" PRId64 " exceeds %d", v.n, KILN_MAX_RANK);
      for (int64_t i = 0; i < v.n; i++)
        if (v.v[i] < 0 || v.v[i] > KILN_MAX_ELEMENTS)
          return kiln_error(KILN_ERR_SHAPE, "shape entry %" PRId64 " is invalid", v.v[i]);
      kiln_shape_init(&s, (int32_t)v.n, v.v);
    } else if (x->shape.rank == 1 && x->shape.dims[0] >= 0 && x->shape.dims[0] <= KILN_MAX_RANK) {
      kiln_shape_init(&s, (int32_t)x->shape.dims[0], NULL);
      for (int32_t i = 0; i < s.rank; i++) s.dims[i] = KILN_DIM_DYNAMIC;
    } else {
      kiln_shape_unknown(&s);
    }
    KILN_TRY(kiln_infer_set_output(g, n, 0, p->value.dtype, &s));
    return kiln_shape_fold_small(g, n);
  }
  case KILN_OP_Range: {
    kiln_tensor t[3];
    bool all = true;
    for (int i = 0; i < 3; i++) {
      const kiln_value *v;
      KILN_TRY(kiln_require_input(g, n, i, &v));
      if (v->dtype != x->dtype) return kiln_error(KILN_ERR_SHAPE, "start, limit and delta must have one dtype");
      if (v->shape.rank > 1 || (v->shape.rank == 1 && v->shape.dims[0] != 1 && v->shape.dims[0] >= 0))
        return kiln_error(KILN_ERR_SHAPE, "'%s' must be a scalar", v->name);
      if (!v->data || v->shape.rank < 0) all = false;
      else kiln_value_as_tensor(v, &t[i]);
    }
    if (!range_dtype_ok(x->dtype)) return kiln_error(KILN_ERR_UNSUPPORTED, "Range of %s", kiln_dtype_name(x->dtype));
    kiln_shape_init(&s, 1, NULL);
    s.dims[0] = KILN_DIM_DYNAMIC;
    if (all) KILN_TRY(range_count(t, &s.dims[0]));
    KILN_TRY(kiln_infer_set_output(g, n, 0, x->dtype, &s));
    return kiln_shape_fold_small(g, n);
  }
  case KILN_OP_Cast:
  case KILN_OP_CastLike: {
    kiln_dtype to = p->to;
    if (n->op == KILN_OP_CastLike) {
      const kiln_value *t;
      KILN_TRY(kiln_require_input(g, n, 1, &t));
      to = t->dtype;
    }
    if (!kiln_dtype_is_valid(x->dtype) || !kiln_dtype_is_valid(to))
      return kiln_error(KILN_ERR_UNSUPPORTED, "cast between these dtypes is not supported");
    KILN_TRY(kiln_infer_set_output(g, n, 0, to, &x->shape));
    return kiln_shape_fold_small(g, n);
  }
  case KILN_OP_Identity:
    KILN_TRY(kiln_infer_set_output(g, n, 0, x->dtype, &x->shape));
    return kiln_shape_fold_small(g, n);
  case KILN_OP_Dropout: {
    const kiln_value *tm = kiln_node_input(g, n, 2);
    if (tm) {
      kiln_ints v;
      kiln_ints_from_value(tm, &v);
      const kiln_value *rv = kiln_node_input(g, n, 1);
      /* Training with ratio 0 drops nothing, so it is the same computation; any other ratio is random. */
      bool zero_ratio = rv && rv->data && kiln_shape_numel(&rv->shape) == 1 && kiln_dtype_is_float(rv->dtype) &&
                        kiln_dtype_load_f64(rv->dtype, rv->data, 0) == 0.0;
      if (v.known && v.n == 1 && v.v[0] != 0 && !zero_ratio)
        return kiln_error(KILN_ERR_UNSUPPORTED, "training-mode Dropout (training_mode = true) is not supported");
    }
    KILN_TRY(kiln_infer_set_output(g, n, 0, x->dtype, &x->shape));
    return kiln_infer_set_output(g, n, 1, p->mask_bool ? KILN_DTYPE_BOOL : x->dtype, &x->shape);
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the source family");
  }
}

int64_t kiln_source_macs(const kiln_graph *g, const kiln_node *n) { return 0; }

/* index family: parse / infer / macs. */
#include "ir/ops/index.h"

#include "core/dtype.h"
#include "ir/infer_util.h"
#include "ir/ops/shape.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static kiln_status parse_reduction(const kiln_graph *g, const kiln_node *n, int32_t *out) {
  const char *s;
  KILN_TRY(kiln_node_get_string(n, "reduction", "none", &s));
  if (strcmp(s, "none") == 0) *out = KILN_SCATTER_NONE;
  else if (strcmp(s, "add") == 0) *out = KILN_SCATTER_ADD;
  else if (strcmp(s, "mul") == 0) *out = KILN_SCATTER_MUL;
  else if (strcmp(s, "max") == 0) *out = KILN_SCATTER_MAX;
  else if (strcmp(s, "min") == 0) *out = KILN_SCATTER_MIN;
  else return kiln_error(KILN_ERR_PARSE, "attribute 'reduction' = '%s' is not one of none, add, mul, max, min", s);
  return NULL;
}

static kiln_status parse_params(kiln_graph *g, kiln_node *n, kiln_index_params *p) {
  switch (n->op) {
  case KILN_OP_Gather:
  case KILN_OP_GatherElements:
    KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1));
    return kiln_node_get_int(n, "axis", 0, &p->axis);
  case KILN_OP_GatherND:
    KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1));
    KILN_TRY(kiln_node_get_int(n, "batch_dims", 0, &p->batch_dims));
    if (p->batch_dims < 0 || p->batch_dims >= KILN_MAX_RANK)
      return kiln_error(KILN_ERR_PARSE, "attribute 'batch_dims' = %" PRId64 " is invalid", p->batch_dims);
    return NULL;
  case KILN_OP_ScatterElements:
    KILN_TRY(kiln_check_arity(n, 3, 3, 1, 1));
    KILN_TRY(kiln_node_get_int(n, "axis", 0, &p->axis));
    return parse_reduction(g, n, &p->reduction);
  case KILN_OP_ScatterND:
    KILN_TRY(kiln_check_arity(n, 3, 3, 1, 1));
    return parse_reduction(g, n, &p->reduction);
  case KILN_OP_OneHot:
    KILN_TRY(kiln_check_arity(n, 3, 3, 1, 1));
    return kiln_node_get_int(n, "axis", -1, &p->axis);
  case KILN_OP_NonZero: return kiln_check_arity(n, 1, 1, 1, 1);
  case KILN_OP_Compress:
    KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1));
    p->has_axis = kiln_node_find_attr(n, "axis") != NULL;
    return kiln_node_get_int(n, "axis", 0, &p->axis);
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the index family");
  }
}

kiln_status kiln_index_parse(kiln_graph *g, kiln_node *n) {
  kiln_index_params *p = calloc(1, sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = parse_params(g, n, p);
  if (st) {
    free(p);
    return st;
  }
  kiln_node_set_params(n, p, NULL);
  return NULL;
}

static bool known(const kiln_tensor *t) { return t->dtype != KILN_DTYPE_UNDEFINED; }

/* Number of nonzero elements of t (any dtype; -0.0 is zero, NaN is not). */
static int64_t count_nonzero(const kiln_tensor *t, int64_t limit) {
  int64_t c = 0, ne = kiln_tensor_numel(t);
  if (limit < ne) ne = limit;
  size_t es = kiln_dtype_size(t->dtype);
  for (int64_t i = 0; i < ne; i++) {
    if (kiln_dtype_is_float(t->dtype)) {
      if (kiln_dtype_load_f64(t->dtype, t->data, i) != 0.0) c++;
    } else {
      const unsigned char *b = (const unsigned char *)t->data + (size_t)i * es;
      for (size_t k = 0; k < es; k++)
        if (b[k]) {
          c++;
          break;
        }
    }
  }
  return c;
}

kiln_status kiln_index_resolve(const kiln_node *n, const kiln_shape *in, const kiln_tensor *data, kiln_shape *out) {
  const kiln_index_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  const kiln_shape *x = &in[0];
  switch (n->op) {
  case KILN_OP_Gather: {
    if (x->rank < 0 || in[1].rank < 0) {
      kiln_shape_unknown(out);
      return NULL;
    }
    int32_t a;
    if (x->rank == 0) return kiln_error(KILN_ERR_SHAPE, "cannot gather from a scalar");
    KILN_TRY(kiln_normalize_axis(p->axis, x->rank, &a));
    int32_t rank = x->rank + in[1].rank - 1;
    if (rank > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, KILN_MAX_RANK);
    kiln_shape_init(out, rank, NULL);
    int32_t j = 0;
    for (int32_t d = 0; d < a; d++, j++) out->dims[j] = x->dims[d], out->sym[j] = x->sym[d];
    for (int32_t d = 0; d < in[1].rank; d++, j++) out->dims[j] = in[1].dims[d], out->sym[j] = in[1].sym[d];
    for (int32_t d = a + 1; d < x->rank; d++, j++) out->dims[j] = x->dims[d], out->sym[j] = x->sym[d];
    return NULL;
  }
  case KILN_OP_GatherElements:
  case KILN_OP_ScatterElements: {
    const kiln_shape *idx = &in[1];
    if (x->rank >= 0 && idx->rank >= 0) {
      int32_t a;
      if (x->rank != idx->rank)
        return kiln_error(KILN_ERR_SHAPE, "data has rank %d but indices rank %d", x->rank, idx->rank);
      if (x->rank == 0) return kiln_error(KILN_ERR_SHAPE, "data must have rank >= 1");
      KILN_TRY(kiln_normalize_axis(p->axis, x->rank, &a));
      for (int32_t d = 0; d < x->rank; d++)
        if (d != a && x->dims[d] >= 0 && idx->dims[d] > x->dims[d])
          return kiln_error(KILN_ERR_SHAPE, "indices dim %d (%" PRId64 ") exceeds data's (%" PRId64 ")", d, idx->dims[d],
                            x->dims[d]);
    }
    if (n->op == KILN_OP_ScatterElements) {
      if (idx->rank >= 0 && in[2].rank >= 0) {
        bool same = idx->rank == in[2].rank;
        for (int32_t d = 0; same && d < idx->rank; d++)
          same = idx->dims[d] < 0 || in[2].dims[d] < 0 || idx->dims[d] == in[2].dims[d];
        if (!same) return kiln_error(KILN_ERR_SHAPE, "indices and updates must have the same shape");
      }
      *out = *x;
    } else {
      *out = *idx;
    }
    return NULL;
  }
  case KILN_OP_GatherND:
  case KILN_OP_ScatterND: {
    const kiln_shape *idx = &in[1];
    int64_t b = n->op == KILN_OP_GatherND ? p->batch_dims : 0;
    if (x->rank < 0 || idx->rank < 0) {
      if (n->op == KILN_OP_ScatterND) *out = *x;
      else kiln_shape_unknown(out);
      return NULL;
    }
    if (idx->rank < 1 || x->rank < 1) return kiln_error(KILN_ERR_SHAPE, "data and indices must have rank >= 1");
    if (b >= idx->rank || b >= x->rank) return kiln_error(KILN_ERR_SHAPE, "batch_dims %" PRId64 " is too large", b);
    int64_t m = idx->dims[idx->rank - 1];
    if (m < 0) {
      if (n->op == KILN_OP_ScatterND) *out = *x;
      else kiln_shape_unknown(out);
      return NULL;
    }
    if (m < 1 || m > x->rank - b)
      return kiln_error(KILN_ERR_SHAPE, "indices' last dim %" PRId64 " must be in 1..%" PRId64, m, x->rank - b);
    for (int32_t d = 0; d < b; d++)
      if (x->dims[d] >= 0 && idx->dims[d] >= 0 && x->dims[d] != idx->dims[d])
        return kiln_error(KILN_ERR_SHAPE, "batch dim %d differs between data and indices", d);
    if (n->op == KILN_OP_ScatterND) {
      /* updates: indices.shape[:-1] + data.shape[m:] */
      const kiln_shape *u = &in[2];
      if (u->rank >= 0) {
        int32_t want = idx->rank - 1 + x->rank - (int32_t)m;
        if (u->rank != want) return kiln_error(KILN_ERR_SHAPE, "updates have rank %d, expected %d", u->rank, want);
        for (int32_t d = 0; d < u->rank; d++) {
          int64_t e = d < idx->rank - 1 ? idx->dims[d] : x->dims[m + d - (idx->rank - 1)];
          if (e >= 0 && u->dims[d] >= 0 && e != u->dims[d])
            return kiln_error(KILN_ERR_SHAPE, "updates dim %d is %" PRId64 ", expected %" PRId64, d, u->dims[d], e);
        }
      }
      *out = *x;
      return NULL;
    }
    int32_t rank = idx->rank - 1 + x->rank - (int32_t)(b + m);
    if (rank > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, KILN_MAX_RANK);
    kiln_shape_init(out, rank, NULL);
    int32_t j = 0;
    for (int32_t d = 0; d < idx->rank - 1; d++, j++) out->dims[j] = idx->dims[d], out->sym[j] = idx->sym[d];
    for (int32_t d = (int32_t)(b + m); d < x->rank; d++, j++) out->dims[j] = x->dims[d], out->sym[j] = x->sym[d];
    return NULL;
  }
  case KILN_OP_OneHot: {
    if (in[1].rank > 1 || (in[1].rank == 1 && in[1].dims[0] != 1))
      return kiln_error(KILN_ERR_SHAPE, "'depth' must be a scalar");
    if (in[2].rank >= 0 && (in[2].rank != 1 || (in[2].dims[0] >= 0 && in[2].dims[0] != 2)))
      return kiln_error(KILN_ERR_SHAPE, "'values' must have two elements [off, on]");
    if (x->rank < 0) {
      kiln_shape_unknown(out);
      return NULL;
    }
    int32_t rank = x->rank + 1, a;
    if (rank > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, KILN_MAX_RANK);
    KILN_TRY(kiln_normalize_axis(p->axis, rank, &a));
    int64_t depth = KILN_DIM_DYNAMIC;
    if (known(&data[1])) {
      if (kiln_tensor_numel(&data[1]) != 1) return kiln_error(KILN_ERR_SHAPE, "'depth' must be a scalar");
      double dv = kiln_dtype_load_f64(data[1].dtype, data[1].data, 0);
      if (!(dv >= 1 && dv <= (double)KILN_MAX_ELEMENTS))
        return kiln_error(KILN_ERR_SHAPE, "'depth' = %g must be positive", dv);
      depth = (int64_t)dv;
    }
    kiln_shape_init(out, rank, NULL);
    int32_t j = 0;
    for (int32_t d = 0; d < rank; d++) {
      if (d == a) {
        out->dims[d] = depth;
      } else {
        out->dims[d] = x->dims[j];
        out->sym[d] = x->sym[j++];
      }
    }
    return NULL;
  }
  case KILN_OP_NonZero: {
    int32_t r = x->rank < 0 ? -1 : (x->rank == 0 ? 1 : x->rank);
    if (r < 0) {
      kiln_shape_dynamic(out, 2);
      return NULL;
    }
    kiln_shape_dynamic(out, 2);
    out->dims[0] = r;
    if (known(&data[0])) out->dims[1] = count_nonzero(&data[0], INT64_MAX);
    return NULL;
  }
  case KILN_OP_Compress: {
    if (in[1].rank >= 0 && in[1].rank != 1) return kiln_error(KILN_ERR_SHAPE, "condition must be 1-D");
    if (x->rank < 0 && p->has_axis) {
      kiln_shape_unknown(out);
      return NULL;
    }
    int64_t len = KILN_DIM_DYNAMIC;
    int32_t a = 0;
    if (p->has_axis) {
      KILN_TRY(kiln_normalize_axis(p->axis, x->rank, &a));
      len = x->dims[a];
      *out = *x;
    } else {
      kiln_shape_dynamic(out, 1);
      len = kiln_shape_numel(x);
    }
    int64_t cnt = KILN_DIM_DYNAMIC;
    if (known(&data[1])) {
      int64_t cl = kiln_tensor_numel(&data[1]);
      if (len >= 0) {
        cnt = count_nonzero(&data[1], len);
        if (cl > len && count_nonzero(&data[1], INT64_MAX) != cnt)
          return kiln_error(KILN_ERR_SHAPE, "condition selects past the end of the axis (%" PRId64 ")", len);
      }
    }
    out->dims[a] = cnt;
    out->sym[a] = -1;
    return NULL;
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the index family");
  }
}

static bool is_index_dtype(kiln_dtype dt) { return dt == KILN_DTYPE_INT32 || dt == KILN_DTYPE_INT64; }

kiln_status kiln_index_infer(kiln_graph *g, kiln_node *n) {
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  kiln_shape_clear_folded(g, n);
  kiln_shape in[3];
  kiln_tensor data[3];
  for (int32_t i = 0; i < 3; i++) {
    const kiln_value *v = kiln_node_input(g, n, i);
    memset(&data[i], 0, sizeof data[i]);
    if (!v || i >= n->n_inputs) {
      kiln_shape_unknown(&in[i]);
      continue;
    }
    in[i] = v->shape;
    if (v->data && v->shape.rank >= 0 && kiln_shape_is_static(&v->shape)) kiln_value_as_tensor(v, &data[i]);
  }
  const kiln_value *v1 = kiln_node_input(g, n, 1), *v2 = kiln_node_input(g, n, 2);
  kiln_dtype odt = x->dtype;
  switch (n->op) {
  case KILN_OP_Gather:
  case KILN_OP_GatherElements:
  case KILN_OP_GatherND:
  case KILN_OP_ScatterElements:
  case KILN_OP_ScatterND:
    if (v1 && v1->dtype != KILN_DTYPE_UNDEFINED && !is_index_dtype(v1->dtype))
      return kiln_error(KILN_ERR_SHAPE, "indices '%s' must be int32 or int64, are %s", v1->name, kiln_dtype_name(v1->dtype));
    if (v2 && v2->dtype != KILN_DTYPE_UNDEFINED && v2->dtype != x->dtype)
      return kiln_error(KILN_ERR_SHAPE, "updates '%s' are %s but data '%s' is %s", v2->name, kiln_dtype_name(v2->dtype),
                        x->name, kiln_dtype_name(x->dtype));
    break;
  case KILN_OP_OneHot:
    if (!v2 || v2->dtype == KILN_DTYPE_UNDEFINED) return kiln_error(KILN_ERR_SHAPE, "'values' has no known type");
    odt = v2->dtype;
    break;
  case KILN_OP_NonZero: odt = KILN_DTYPE_INT64; break;
  case KILN_OP_Compress:
    if (v1 && v1->dtype != KILN_DTYPE_UNDEFINED && v1->dtype != KILN_DTYPE_BOOL)
      return kiln_error(KILN_ERR_SHAPE, "condition '%s' must be bool, is %s", v1->name, kiln_dtype_name(v1->dtype));
    break;
  default: break;
  }
  kiln_shape out;
  KILN_TRY(kiln_index_resolve(n, in, data, &out));
  KILN_TRY(kiln_infer_set_output(g, n, 0, odt, &out));
  return kiln_shape_fold_small(g, n);
}

int64_t kiln_index_macs(const kiln_graph *g, const kiln_node *n) { return 0; }

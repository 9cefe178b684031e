/* source family: reference kernels (shape sources, constants, casts, pass-through). */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/shape.h"
#include "ir/ops/source.h"

#include <inttypes.h>
#include <string.h>

static kiln_status expect_shape(const kiln_tensor *out, int idx, int32_t rank, const int64_t *dims) {
  kiln_shape s;
  kiln_shape_init(&s, rank, dims);
  return kiln_shape_check_output(out, idx, &s);
}

kiln_status kiln_ref_source(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_source_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  if (n->op == KILN_OP_Constant) {
    if (out[0].dtype != p->value.dtype) return kiln_error(KILN_ERR_SHAPE, "output dtype differs from the constant's");
    KILN_TRY(expect_shape(&out[0], 0, p->value.rank, p->value.dims));
    size_t nb = kiln_tensor_nbytes(&p->value);
    if (nb) memcpy(out[0].data, p->value.data, nb);
    return NULL;
  }
  const kiln_tensor *x = &in[0];
  if (n->n_inputs < 1 || x->dtype == KILN_DTYPE_UNDEFINED) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "input 0 is missing");
  int64_t ne = kiln_tensor_numel(x);
  switch (n->op) {
  case KILN_OP_Shape: {
    int64_t lo = p->start, hi = p->end, r = x->rank;
    if (lo < 0) lo = lo < -r ? 0 : lo + r;
    if (hi < 0) hi = hi < -r ? 0 : hi + r;
    if (lo > r) lo = r;
    if (hi > r) hi = r;
    if (hi < lo) hi = lo;
    int64_t len = hi - lo;
    KILN_TRY(expect_shape(&out[0], 0, 1, &len));
    for (int64_t i = lo; i < hi; i++) ((int64_t *)out[0].data)[i - lo] = x->dims[i];
    return NULL;
  }
  case KILN_OP_Size:
    KILN_TRY(expect_shape(&out[0], 0, 0, NULL));
    *(int64_t *)out[0].data = ne;
    return NULL;
  case KILN_OP_ConstantOfShape: {
    kiln_ints v;
    kiln_ints_from_tensor(x, &v);
    if (!v.known || v.n > KILN_MAX_RANK) return kiln_error(KILN_ERR_SHAPE, "the shape input must be int64 with at most 8 entries");
    for (int64_t i = 0; i < v.n; i++)
      if (v.v[i] < 0) return kiln_error(KILN_ERR_SHAPE, "shape entry %" PRId64 " is negative", v.v[i]);
    KILN_TRY(expect_shape(&out[0], 0, (int32_t)v.n, v.v));
    if (out[0].dtype != p->value.dtype) return kiln_error(KILN_ERR_SHAPE, "output dtype differs from 'value'");
    size_t es = kiln_dtype_size(out[0].dtype);
    int64_t on = kiln_tensor_numel(&out[0]);
    for (int64_t i = 0; i < on; i++) memcpy((char *)out[0].data + (size_t)i * es, p->value.data, es);
    return NULL;
  }
  case KILN_OP_Range: {
    for (int i = 1; i < 3; i++)
      if (in[i].dtype != x->dtype) return kiln_error(KILN_ERR_SHAPE, "start, limit and delta must have one dtype");
    int64_t cnt;
    KILN_TRY(kiln_source_range_count(in, &cnt));
    KILN_TRY(expect_shape(&out[0], 0, 1, &cnt));
    if (kiln_dtype_is_float(x->dtype)) {
      double s = kiln_dtype_load_f64(x->dtype, x->data, 0), d = kiln_dtype_load_f64(x->dtype, in[2].data, 0);
      for (int64_t i = 0; i < cnt; i++) kiln_dtype_store_f64(x->dtype, out[0].data, i, s + (double)i * d);
    } else {
      int64_t s = kiln_dtype_load_i64(x->dtype, x->data, 0), d = kiln_dtype_load_i64(x->dtype, in[2].data, 0);
      for (int64_t i = 0; i < cnt; i++)
        kiln_dtype_store_i64(x->dtype, out[0].data, i, (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d));
    }
    return NULL;
  }
  case KILN_OP_Cast:
  case KILN_OP_CastLike:
  case KILN_OP_Identity:
  case KILN_OP_Dropout: {
    KILN_TRY(expect_shape(&out[0], 0, x->rank, x->dims));
    kiln_dtype to = x->dtype;
    if (n->op == KILN_OP_Cast) to = p->to;
    if (n->op == KILN_OP_CastLike) to = in[1].dtype;
    if (!kiln_dtype_is_valid(x->dtype) || !kiln_dtype_is_valid(to) || out[0].dtype != to)
      return kiln_error(KILN_ERR_UNSUPPORTED, "cast from %s to %s is not supported", kiln_dtype_name(x->dtype),
                        kiln_dtype_name(to));
    if (n->op == KILN_OP_Dropout && n->n_inputs > 2 && in[2].dtype != KILN_DTYPE_UNDEFINED &&
        kiln_tensor_numel(&in[2]) == 1 && kiln_dtype_load_i64(in[2].dtype, in[2].data, 0) != 0 &&
        !(in[1].dtype != KILN_DTYPE_UNDEFINED && kiln_tensor_numel(&in[1]) == 1 &&
          kiln_dtype_load_f64(in[1].dtype, in[1].data, 0) == 0.0))
      return kiln_error(KILN_ERR_UNSUPPORTED, "training-mode Dropout (training_mode = true) is not supported");
    kiln_source_convert(x->dtype, x->data, to, out[0].data, ne);
    if (n->op == KILN_OP_Dropout && n->n_outputs > 1 && n->outputs[1] >= 0) {
      /* Inference: nothing is dropped, so the mask is all true (1 in the data type before opset 10). */
      KILN_TRY(expect_shape(&out[1], 1, x->rank, x->dims));
      for (int64_t i = 0; i < ne; i++) kiln_dtype_store_i64(out[1].dtype, out[1].data, i, 1);
    }
    return NULL;
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the source family");
  }
}

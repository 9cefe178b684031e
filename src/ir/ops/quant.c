/* quant family: parse / infer / macs for QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
 * QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger. */
#include "ir/ops/quant.h"

#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static bool is_conv_op(kiln_op op) { return op == KILN_OP_QLinearConv || op == KILN_OP_ConvInteger; }
static bool is_q8(kiln_dtype dt) { return dt == KILN_DTYPE_UINT8 || dt == KILN_DTYPE_INT8; }

/* Copy an ints attribute of at most `max` entries into dst; *count = entries (0 if absent). */
static kiln_status get_ints_bounded(const kiln_node *n, const char *name, int64_t *dst, int32_t max, int32_t *count) {
  const int64_t *v;
  size_t c;
  KILN_TRY(kiln_node_get_ints(n, name, &v, &c));
  if (c > (size_t)max)
    return kiln_error(KILN_ERR_UNSUPPORTED, "attribute '%s' has %zu entries (at most %d supported)", name, c, max);
  for (size_t i = 0; i < c; i++) dst[i] = v[i];
  *count = (int32_t)c;
  return NULL;
}

static kiln_status parse_conv_attrs(const kiln_node *n, kiln_quant_params *p) {
  const char *ap;
  KILN_TRY(kiln_node_get_string(n, "auto_pad", "NOTSET", &ap));
  if (!strcmp(ap, "NOTSET")) p->auto_pad = KILN_QUANT_PAD_NOTSET;
  else if (!strcmp(ap, "SAME_UPPER")) p->auto_pad = KILN_QUANT_PAD_SAME_UPPER;
  else if (!strcmp(ap, "SAME_LOWER")) p->auto_pad = KILN_QUANT_PAD_SAME_LOWER;
  else if (!strcmp(ap, "VALID")) p->auto_pad = KILN_QUANT_PAD_VALID;
  else return kiln_error(KILN_ERR_PARSE, "attribute 'auto_pad' = '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
  KILN_TRY(kiln_node_get_int(n, "group", 1, &p->group));
  if (p->group < 1) return kiln_error(KILN_ERR_PARSE, "attribute 'group' = %" PRId64 " must be >= 1", p->group);
  KILN_TRY(get_ints_bounded(n, "kernel_shape", p->kernel_shape, KILN_QUANT_MAX_SPATIAL, &p->n_kernel));
  KILN_TRY(get_ints_bounded(n, "strides", p->strides, KILN_QUANT_MAX_SPATIAL, &p->n_strides));
  KILN_TRY(get_ints_bounded(n, "dilations", p->dilations, KILN_QUANT_MAX_SPATIAL, &p->n_dilations));
  KILN_TRY(get_ints_bounded(n, "pads", p->pads, 2 * KILN_QUANT_MAX_SPATIAL, &p->n_pads));
  for (int32_t i = 0; i < p->n_kernel; i++)
    if (p->kernel_shape[i] < 1) return kiln_error(KILN_ERR_PARSE, "attribute 'kernel_shape' has a value < 1");
  for (int32_t i = 0; i < p->n_strides; i++)
    if (p->strides[i] < 1) return kiln_error(KILN_ERR_PARSE, "attribute 'strides' has a value < 1");
  for (int32_t i = 0; i < p->n_dilations; i++)
    if (p->dilations[i] < 1) return kiln_error(KILN_ERR_PARSE, "attribute 'dilations' has a value < 1");
  for (int32_t i = 0; i < p->n_pads; i++)
    if (p->pads[i] < 0) return kiln_error(KILN_ERR_PARSE, "attribute 'pads' has a negative value");
  if (p->n_pads % 2) return kiln_error(KILN_ERR_PARSE, "attribute 'pads' must have an even number of entries");
  /* Bound every geometry value so (k - 1) * dilation + pads arithmetic cannot overflow int64. */
  const int64_t limit = INT64_C(1) << 30;
  for (int32_t i = 0; i < KILN_QUANT_MAX_SPATIAL; i++)
    if (p->kernel_shape[i] > limit || p->strides[i] > limit || p->dilations[i] > limit || p->pads[i] > limit ||
        p->pads[KILN_QUANT_MAX_SPATIAL + i] > limit)
      return kiln_error(KILN_ERR_UNSUPPORTED, "kernel_shape/strides/dilations/pads values above 2^30 are not supported");
  return NULL;
}

kiln_status kiln_quant_parse(kiln_graph *g, kiln_node *n) {
  kiln_quant_params *p = calloc(1, sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = NULL;
  switch (n->op) {
  case KILN_OP_QuantizeLinear: case KILN_OP_DequantizeLinear: {
    st = kiln_check_arity(n, 2, 3, 1, 1);
    if (!st) st = kiln_node_get_int(n, "axis", 1, &p->axis);
    int64_t bs = 0, od = 0;
    if (!st) st = kiln_node_get_int(n, "block_size", 0, &bs);
    if (!st && bs < 0) st = kiln_error(KILN_ERR_PARSE, "attribute 'block_size' = %" PRId64 " is negative", bs);
    if (!st && bs > 0) st = kiln_error(KILN_ERR_UNSUPPORTED, "blocked quantization (block_size %" PRId64 ") is not supported", bs);
    if (!st && n->op == KILN_OP_QuantizeLinear) st = kiln_node_get_int(n, "output_dtype", 0, &od);
    if (!st && od != 0 && od != KILN_DTYPE_UINT8 && od != KILN_DTYPE_INT8 && od != KILN_DTYPE_UINT16 &&
        od != KILN_DTYPE_INT16)
      st = kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'output_dtype' = %" PRId64 " is not uint8/int8/uint16/int16", od);
    p->output_dtype = (kiln_dtype)od;
    break;
  }
  case KILN_OP_DynamicQuantizeLinear: st = kiln_check_arity(n, 1, 1, 3, 3); break;
  case KILN_OP_QLinearConv:
    st = kiln_check_arity(n, 8, 9, 1, 1);
    if (!st) st = parse_conv_attrs(n, p);
    break;
  case KILN_OP_ConvInteger:
    st = kiln_check_arity(n, 2, 4, 1, 1);
    if (!st) st = parse_conv_attrs(n, p);
    break;
  case KILN_OP_QLinearMatMul: st = kiln_check_arity(n, 8, 8, 1, 1); break;
  case KILN_OP_MatMulInteger: st = kiln_check_arity(n, 2, 4, 1, 1); break;
  default: st = kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the quant family", n->op_type); break;
  }
  if (st) {
    free(p);
    return st;
  }
  kiln_node_set_params(n, p, NULL);
  return NULL;
}

kiln_status kiln_quant_conv_geometry(const kiln_quant_params *p, int32_t rank, const int64_t *xdims,
                                     const int64_t *wdims, kiln_quant_conv_geom *o) {
  int32_t ns = rank - 2;
  if (ns < 1 || ns > KILN_QUANT_MAX_SPATIAL)
    return kiln_error(KILN_ERR_SHAPE, "input rank %d is not a convolution rank (3 to %d)", rank, KILN_MAX_RANK);
  if ((p->n_kernel && p->n_kernel != ns) || (p->n_strides && p->n_strides != ns) ||
      (p->n_dilations && p->n_dilations != ns) || (p->n_pads && p->n_pads != 2 * ns))
    return kiln_error(KILN_ERR_SHAPE, "kernel_shape/strides/dilations/pads do not fit %d spatial dims", ns);
  memset(o, 0, sizeof *o);
  o->n_spatial = ns;
  for (int32_t i = 0; i < ns; i++) {
    int64_t k = p->n_kernel ? p->kernel_shape[i] : wdims[2 + i];
    if (p->n_kernel && wdims[2 + i] >= 0 && wdims[2 + i] != k)
      return kiln_error(KILN_ERR_SHAPE, "kernel_shape[%d] = %" PRId64 " but the weight has %" PRId64, i, k, wdims[2 + i]);
    int64_t s = p->n_strides ? p->strides[i] : 1, d = p->n_dilations ? p->dilations[i] : 1;
    int64_t pb = p->n_pads ? p->pads[i] : 0, pe = p->n_pads ? p->pads[ns + i] : 0;
    o->kernel[i] = k;
    o->stride[i] = s;
    o->dilation[i] = d;
    int64_t in = xdims[2 + i];
    if (k < 0 || in < 0) { /* dynamic: the output size is unknown until run time */
      o->pad_begin[i] = p->auto_pad == KILN_QUANT_PAD_NOTSET ? pb : 0;
      o->out[i] = KILN_DIM_DYNAMIC;
      continue;
    }
    if (k < 1 || k > (INT64_C(1) << 30))
      return kiln_error(KILN_ERR_SHAPE, "kernel dim %d is %" PRId64, i, k);
    int64_t ek = (k - 1) * d + 1;
    switch (p->auto_pad) {
    case KILN_QUANT_PAD_SAME_UPPER: case KILN_QUANT_PAD_SAME_LOWER: {
      int64_t out = (in + s - 1) / s;
      int64_t total = (out - 1) * s + ek - in;
      if (total < 0) total = 0;
      /* SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning */
      o->pad_begin[i] = p->auto_pad == KILN_QUANT_PAD_SAME_UPPER ? total / 2 : total - total / 2;
      o->out[i] = out;
      break;
    }
    case KILN_QUANT_PAD_VALID: pb = pe = 0; /* fall through */
    default:
      if (in + pb + pe < ek)
        return kiln_error(KILN_ERR_SHAPE, "spatial dim %d (%" PRId64 " + pads) is smaller than the kernel extent %" PRId64,
                          i, in, ek);
      o->pad_begin[i] = pb;
      o->out[i] = (in + pb + pe - ek) / s + 1;
      break;
    }
  }
  return NULL;
}

/* Per-tensor (scalar / 1 element) or per-axis (1-D of `axis_dim` elements) scale or zero point. */
static kiln_status check_qparam(const kiln_value *v, const char *what, int64_t axis_dim) {
  if (v->shape.rank < 0) return NULL;
  if (v->shape.rank > 1)
    return kiln_error(KILN_ERR_UNSUPPORTED, "%s '%s' has rank %d (blocked quantization is not supported)", what,
                      v->name, v->shape.rank);
  if (v->shape.rank == 1) {
    int64_t d = v->shape.dims[0];
    if (d >= 0 && d != 1 && axis_dim >= 0 && d != axis_dim)
      return kiln_error(KILN_ERR_SHAPE, "%s '%s' has %" PRId64 " elements, expected 1 or %" PRId64, what, v->name, d,
                        axis_dim);
  }
  return NULL;
}

static kiln_status infer_qdq(kiln_graph *g, kiln_node *n, const kiln_quant_params *p, const kiln_value *x) {
  const kiln_value *scale, *zp = kiln_node_input(g, n, 2);
  KILN_TRY(kiln_require_input(g, n, 1, &scale));
  if (!kiln_dtype_is_float(scale->dtype))
    return kiln_error(KILN_ERR_SHAPE, "scale '%s' must be a float tensor, is %s", scale->name, kiln_dtype_name(scale->dtype));
  int64_t axis_dim = KILN_DIM_DYNAMIC;
  bool per_axis = scale->shape.rank == 1 && scale->shape.dims[0] != 1;
  if (per_axis && x->shape.rank >= 0) {
    int32_t a;
    KILN_TRY(kiln_normalize_axis(p->axis, x->shape.rank, &a));
    axis_dim = x->shape.dims[a];
  }
  KILN_TRY(check_qparam(scale, "scale", axis_dim));
  if (zp) {
    KILN_TRY(check_qparam(zp, "zero point", axis_dim));
    if (zp->shape.rank >= 0 && scale->shape.rank >= 0 && kiln_shape_numel(&zp->shape) >= 0 &&
        kiln_shape_numel(&scale->shape) >= 0 && kiln_shape_numel(&zp->shape) != kiln_shape_numel(&scale->shape))
      return kiln_error(KILN_ERR_SHAPE, "zero point '%s' and scale '%s' differ in size", zp->name, scale->name);
  }
  if (n->op == KILN_OP_QuantizeLinear) {
    if (!kiln_dtype_is_float(x->dtype) && x->dtype != KILN_DTYPE_INT32)
      return kiln_error(KILN_ERR_SHAPE, "input '%s' must be float or int32, is %s", x->name, kiln_dtype_name(x->dtype));
    kiln_dtype out = p->output_dtype ? p->output_dtype : KILN_DTYPE_UINT8;
    if (zp) {
      if (zp->dtype == KILN_DTYPE_UNDEFINED) return kiln_error(KILN_ERR_SHAPE, "zero point '%s' has no known type", zp->name);
      if (p->output_dtype && zp->dtype != p->output_dtype)
        return kiln_error(KILN_ERR_SHAPE, "zero point '%s' is %s but output_dtype is %s", zp->name,
                          kiln_dtype_name(zp->dtype), kiln_dtype_name(p->output_dtype));
      out = zp->dtype;
    }
    if (out != KILN_DTYPE_UINT8 && out != KILN_DTYPE_INT8 && out != KILN_DTYPE_UINT16 && out != KILN_DTYPE_INT16)
      return kiln_error(KILN_ERR_UNSUPPORTED, "quantizing to %s is not supported", kiln_dtype_name(out));
    return kiln_infer_set_output(g, n, 0, out, &x->shape);
  }
  /* DequantizeLinear */
  if (x->dtype != KILN_DTYPE_UINT8 && x->dtype != KILN_DTYPE_INT8 && x->dtype != KILN_DTYPE_INT32 &&
      x->dtype != KILN_DTYPE_UINT16 && x->dtype != KILN_DTYPE_INT16)
    return kiln_error(KILN_ERR_UNSUPPORTED, "dequantizing %s is not supported", kiln_dtype_name(x->dtype));
  if (zp && zp->dtype != KILN_DTYPE_UNDEFINED && zp->dtype != x->dtype)
    return kiln_error(KILN_ERR_SHAPE, "zero point '%s' is %s but input '%s' is %s", zp->name, kiln_dtype_name(zp->dtype),
                      x->name, kiln_dtype_name(x->dtype));
  return kiln_infer_set_output(g, n, 0, scale->dtype, &x->shape);
}

/* numpy matmul shape rules (1-D operands promoted then squeezed, batch dims broadcast). */
static kiln_status matmul_shape(const kiln_value *a, const kiln_value *b, kiln_shape *out, int64_t *k) {
  *k = KILN_DIM_DYNAMIC;
  if (a->shape.rank < 0 || b->shape.rank < 0) {
    kiln_shape_unknown(out);
    return NULL;
  }
  int32_t ar = a->shape.rank, br = b->shape.rank;
  if (ar == 0 || br == 0) return kiln_error(KILN_ERR_SHAPE, "matmul operands must have rank >= 1");
  int64_t ka = a->shape.dims[ar - 1], kb = br == 1 ? b->shape.dims[0] : b->shape.dims[br - 2];
  if (ka >= 0 && kb >= 0 && ka != kb)
    return kiln_error(KILN_ERR_SHAPE, "inner dims differ: '%s' has %" PRId64 ", '%s' has %" PRId64, a->name, ka, b->name, kb);
  *k = ka >= 0 ? ka : kb;
  kiln_shape ab, bb, batch;
  kiln_shape_init(&ab, ar > 2 ? ar - 2 : 0, NULL);
  kiln_shape_init(&bb, br > 2 ? br - 2 : 0, NULL);
  for (int32_t i = 0; i < ab.rank; i++) ab.dims[i] = a->shape.dims[i], ab.sym[i] = a->shape.sym[i];
  for (int32_t i = 0; i < bb.rank; i++) bb.dims[i] = b->shape.dims[i], bb.sym[i] = b->shape.sym[i];
  kiln_status st = kiln_infer_broadcast(&ab, &bb, &batch);
  if (st) return kiln_error_prefix(st, "batch dims of '%s' and '%s': ", a->name, b->name);
  *out = batch;
  if (ar >= 2) out->dims[out->rank] = a->shape.dims[ar - 2], out->sym[out->rank++] = a->shape.sym[ar - 2];
  if (br >= 2) out->dims[out->rank] = b->shape.dims[br - 1], out->sym[out->rank++] = b->shape.sym[br - 1];
  return NULL;
}

static kiln_status require_dtype(const kiln_value *v, bool ok, const char *what) {
  if (!ok) return kiln_error(KILN_ERR_SHAPE, "'%s' is %s; %s", v->name, kiln_dtype_name(v->dtype), what);
  return NULL;
}

static kiln_status infer_conv(kiln_graph *g, kiln_node *n, const kiln_quant_params *p) {
  bool ql = n->op == KILN_OP_QLinearConv;
  const kiln_value *x, *w, *v;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  KILN_TRY(kiln_require_input(g, n, ql ? 3 : 1, &w));
  KILN_TRY(require_dtype(x, is_q8(x->dtype), "expected uint8 or int8"));
  KILN_TRY(require_dtype(w, is_q8(w->dtype), "expected uint8 or int8"));
  kiln_dtype out_dt = KILN_DTYPE_INT32;
  int64_t m = w->shape.rank >= 1 ? w->shape.dims[0] : KILN_DIM_DYNAMIC;
  /* zero points must match their tensor's dtype; scales are float32 */
  int xzp = 2, wzp = ql ? 5 : 3; /* x zero point is input 2 in both ops */
  if ((v = kiln_node_input(g, n, xzp)) && v->dtype != KILN_DTYPE_UNDEFINED)
    KILN_TRY(require_dtype(v, v->dtype == x->dtype, "the zero point must have the input's dtype"));
  if ((v = kiln_node_input(g, n, wzp)) && v->dtype != KILN_DTYPE_UNDEFINED) {
    KILN_TRY(require_dtype(v, v->dtype == w->dtype, "the zero point must have the weight's dtype"));
    KILN_TRY(check_qparam(v, "weight zero point", m));
  }
  if (ql) {
    static const int scale_inputs[3] = {1, 4, 6};
    for (int j = 0; j < 3; j++) {
      KILN_TRY(kiln_require_input(g, n, scale_inputs[j], &v));
      KILN_TRY(require_dtype(v, kiln_dtype_is_float(v->dtype), "scales must be float"));
    }
    KILN_TRY(kiln_require_input(g, n, 4, &v));
    KILN_TRY(check_qparam(v, "weight scale", m));
    const kiln_value *yzp;
    KILN_TRY(kiln_require_input(g, n, 7, &yzp));
    KILN_TRY(require_dtype(yzp, is_q8(yzp->dtype), "the output zero point must be uint8 or int8"));
    out_dt = yzp->dtype;
    if ((v = kiln_node_input(g, n, 8))) {
      KILN_TRY(require_dtype(v, v->dtype == KILN_DTYPE_INT32, "the bias must be int32"));
      if (v->shape.rank >= 0 && (v->shape.rank != 1 || (m >= 0 && v->shape.dims[0] >= 0 && v->shape.dims[0] != m)))
        return kiln_error(KILN_ERR_SHAPE, "bias '%s' must be 1-D with %" PRId64 " elements", v->name, m);
    }
  }
  kiln_shape out;
  if (x->shape.rank < 0 || w->shape.rank < 0) {
    kiln_shape_unknown(&out);
    return kiln_infer_set_output(g, n, 0, out_dt, &out);
  }
  int32_t r = x->shape.rank;
  if (w->shape.rank != r)
    return kiln_error(KILN_ERR_SHAPE, "input '%s' has rank %d but weight '%s' has rank %d", x->name, r, w->name,
                      w->shape.rank);
  kiln_quant_conv_geom geo;
  KILN_TRY(kiln_quant_conv_geometry(p, r, x->shape.dims, w->shape.dims, &geo));
  int64_t c = x->shape.dims[1], wc = w->shape.dims[1];
  if (c >= 0 && wc >= 0 && c != wc * p->group)
    return kiln_error(KILN_ERR_SHAPE, "input '%s' has %" PRId64 " channels, weight '%s' expects %" PRId64 " x group %" PRId64,
                      x->name, c, w->name, wc, p->group);
  if (m >= 0 && m % p->group)
    return kiln_error(KILN_ERR_SHAPE, "%" PRId64 " output channels are not divisible by group %" PRId64, m, p->group);
  kiln_shape_init(&out, r, NULL);
  out.dims[0] = x->shape.dims[0];
  out.sym[0] = x->shape.sym[0];
  out.dims[1] = m;
  for (int32_t i = 0; i < geo.n_spatial; i++) out.dims[2 + i] = geo.out[i];
  return kiln_infer_set_output(g, n, 0, out_dt, &out);
}

static kiln_status infer_matmul(kiln_graph *g, kiln_node *n) {
  bool ql = n->op == KILN_OP_QLinearMatMul;
  const kiln_value *a, *b, *v;
  KILN_TRY(kiln_require_input(g, n, 0, &a));
  KILN_TRY(kiln_require_input(g, n, ql ? 3 : 1, &b));
  KILN_TRY(require_dtype(a, is_q8(a->dtype), "expected uint8 or int8"));
  KILN_TRY(require_dtype(b, is_q8(b->dtype), "expected uint8 or int8"));
  kiln_shape out;
  int64_t k;
  KILN_TRY(matmul_shape(a, b, &out, &k));
  int64_t mdim = a->shape.rank >= 2 ? a->shape.dims[a->shape.rank - 2] : 1;
  int64_t ndim = b->shape.rank >= 2 ? b->shape.dims[b->shape.rank - 1] : 1;
  if (a->shape.rank < 0) mdim = KILN_DIM_DYNAMIC;
  if (b->shape.rank < 0) ndim = KILN_DIM_DYNAMIC;
  /* a's quantization parameters may be per row (M), b's per column (N) */
  int azp = 2, bzp = ql ? 5 : 3; /* a zero point is input 2 in both ops */
  if ((v = kiln_node_input(g, n, azp)) && v->dtype != KILN_DTYPE_UNDEFINED) {
    KILN_TRY(require_dtype(v, v->dtype == a->dtype, "the zero point must have the input's dtype"));
    KILN_TRY(check_qparam(v, "zero point of a", mdim));
  }
  if ((v = kiln_node_input(g, n, bzp)) && v->dtype != KILN_DTYPE_UNDEFINED) {
    KILN_TRY(require_dtype(v, v->dtype == b->dtype, "the zero point must have the input's dtype"));
    KILN_TRY(check_qparam(v, "zero point of b", ndim));
  }
  kiln_dtype out_dt = KILN_DTYPE_INT32;
  if (ql) {
    static const int scale_inputs[3] = {1, 4, 6};
    for (int j = 0; j < 3; j++) {
      KILN_TRY(kiln_require_input(g, n, scale_inputs[j], &v));
      KILN_TRY(require_dtype(v, kiln_dtype_is_float(v->dtype), "scales must be float"));
      KILN_TRY(check_qparam(v, "scale", j == 0 ? mdim : j == 1 ? ndim : 1));
    }
    KILN_TRY(kiln_require_input(g, n, 7, &v));
    KILN_TRY(require_dtype(v, is_q8(v->dtype), "the output zero point must be uint8 or int8"));
    out_dt = v->dtype;
  }
  return kiln_infer_set_output(g, n, 0, out_dt, &out);
}

kiln_status kiln_quant_infer(kiln_graph *g, kiln_node *n) {
  const kiln_quant_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  switch (n->op) {
  case KILN_OP_QuantizeLinear: case KILN_OP_DequantizeLinear: return infer_qdq(g, n, p, x);
  case KILN_OP_DynamicQuantizeLinear: {
    KILN_TRY(require_dtype(x, x->dtype == KILN_DTYPE_FLOAT32, "DynamicQuantizeLinear needs float32"));
    kiln_shape scalar;
    kiln_shape_init(&scalar, 0, NULL);
    KILN_TRY(kiln_infer_set_output(g, n, 0, KILN_DTYPE_UINT8, &x->shape));
    KILN_TRY(kiln_infer_set_output(g, n, 1, KILN_DTYPE_FLOAT32, &scalar));
    return kiln_infer_set_output(g, n, 2, KILN_DTYPE_UINT8, &scalar);
  }
  case KILN_OP_QLinearConv: case KILN_OP_ConvInteger: return infer_conv(g, n, p);
  case KILN_OP_QLinearMatMul: case KILN_OP_MatMulInteger: return infer_matmul(g, n);
  default: return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the quant family", n->op_type);
  }
}

int64_t kiln_quant_macs(const kiln_graph *g, const kiln_node *n) {
  const kiln_value *y = kiln_node_output(g, n, 0);
  if (!y || !kiln_shape_is_static(&y->shape)) return 0;
  int64_t out = kiln_shape_numel(&y->shape);
  if (is_conv_op(n->op)) {
    /* output elements x (Cin / group) x kernel area = output elements x prod(w dims[1:]) */
    const kiln_value *w = kiln_node_input(g, n, n->op == KILN_OP_QLinearConv ? 3 : 1);
    if (!w || !kiln_shape_is_static(&w->shape) || w->shape.rank < 2) return 0;
    int64_t per = 1;
    for (int32_t i = 1; i < w->shape.rank; i++) per *= w->shape.dims[i];
    return out * per;
  }
  if (n->op == KILN_OP_QLinearMatMul || n->op == KILN_OP_MatMulInteger) {
    const kiln_value *a = kiln_node_input(g, n, 0);
    if (!a || a->shape.rank < 1 || a->shape.dims[a->shape.rank - 1] < 0) return 0;
    return out * a->shape.dims[a->shape.rank - 1]; /* M*N*batch x K */
  }
  return 0;
}

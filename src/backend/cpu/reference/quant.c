/* quant family: reference kernels. Integer products accumulate exactly in int64 (wrapped to int32
 * where ONNX outputs int32); requantization follows ONNX Runtime / the ONNX reference: float32
 * multiplier scale_a * scale_b / scale_y, float32 product, round half to even, add the zero point,
 * saturate to the output type. */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/infer_util.h"
#include "ir/ops/quant.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void qrange(kiln_dtype dt, int64_t *lo, int64_t *hi) {
  switch (dt) {
  case KILN_DTYPE_INT8: *lo = INT8_MIN, *hi = INT8_MAX; break;
  case KILN_DTYPE_UINT16: *lo = 0, *hi = UINT16_MAX; break;
  case KILN_DTYPE_INT16: *lo = INT16_MIN, *hi = INT16_MAX; break;
  case KILN_DTYPE_INT32: *lo = INT32_MIN, *hi = INT32_MAX; break;
  default: *lo = 0, *hi = UINT8_MAX; break;
  }
}

/* Round half to even (nearbyint in the default rounding mode), add the zero point, saturate. NaN maps to
 * the zero point rather than invoking an undefined float-to-int conversion. */
static int64_t quantize_value(double v, int64_t zp, int64_t lo, int64_t hi) {
  double r = isnan(v) ? 0.0 : nearbyint(v);
  if (r < -4e18) r = -4e18;
  if (r > 4e18) r = 4e18;
  int64_t q = (int64_t)r + zp;
  return q < lo ? lo : q > hi ? hi : q;
}

/* Element i of a per-tensor (1 element) or per-axis scale / zero point; an omitted one reads as 0. */
static double qparam_f(const kiln_tensor *t, int64_t i) {
  if (!t->data) return 0;
  return kiln_dtype_load_f64(t->dtype, t->data, kiln_tensor_numel(t) == 1 ? 0 : i);
}
static int64_t qparam_i(const kiln_tensor *t, int64_t i) {
  if (!t || !t->data) return 0;
  return kiln_dtype_load_i64(t->dtype, t->data, kiln_tensor_numel(t) == 1 ? 0 : i);
}

/* Check a per-tensor/per-axis parameter has 1 or `len` elements (reference kernels never trust shapes). */
static kiln_status check_qparam(const kiln_tensor *t, int64_t len, const char *what) {
  if (!t || !t->data) return NULL;
  int64_t n = kiln_tensor_numel(t);
  if (n != 1 && n != len) return kiln_error(KILN_ERR_SHAPE, "%s has %" PRId64 " elements, expected 1 or %" PRId64, what, n, len);
  return NULL;
}

static kiln_status ref_qdq(const kiln_node *n, const kiln_quant_params *p, const kiln_tensor *in, kiln_tensor *y) {
  const kiln_tensor *x = &in[0], *scale = &in[1], *zp = n->n_inputs > 2 ? &in[2] : NULL;
  int64_t xn = kiln_tensor_numel(x), inner = 1, len = 1;
  if (kiln_tensor_numel(scale) != 1) { /* per-axis: channel of element i is (i / inner) % len */
    int32_t a;
    KILN_TRY(kiln_normalize_axis(p->axis, x->rank, &a));
    len = x->dims[a];
    for (int32_t d = a + 1; d < x->rank; d++) inner *= x->dims[d];
  }
  KILN_TRY(check_qparam(scale, len, "scale"));
  KILN_TRY(check_qparam(zp, len, "zero point"));
  if (n->op == KILN_OP_QuantizeLinear) {
    int64_t lo, hi;
    qrange(y->dtype, &lo, &hi);
    for (int64_t i = 0; i < xn; i++) {
      int64_t c = (i / inner) % len;
      double v;
      /* float inputs divide in float32 like ONNX Runtime; int32 inputs promote to double like numpy */
      if (x->dtype == KILN_DTYPE_INT32 || x->dtype == KILN_DTYPE_FLOAT64)
        v = kiln_dtype_load_f64(x->dtype, x->data, i) / qparam_f(scale, c);
      else
        v = (float)kiln_dtype_load_f64(x->dtype, x->data, i) / (float)qparam_f(scale, c);
      kiln_dtype_store_i64(y->dtype, y->data, i, quantize_value(v, qparam_i(zp, c), lo, hi));
    }
  } else {
    for (int64_t i = 0; i < xn; i++) {
      int64_t c = (i / inner) % len;
      int64_t q = kiln_dtype_load_i64(x->dtype, x->data, i) - qparam_i(zp, c);
      kiln_dtype_store_f64(y->dtype, y->data, i, (float)q * (float)qparam_f(scale, c));
    }
  }
  return NULL;
}

static kiln_status ref_dynamic_quantize(const kiln_tensor *x, kiln_tensor *out) {
  if (x->dtype != KILN_DTYPE_FLOAT32) return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(x->dtype));
  const float *xd = x->data;
  int64_t xn = kiln_tensor_numel(x);
  /* The range always includes 0 so that 0 is exactly representable (ONNX spec). */
  float mn = 0, mx = 0;
  for (int64_t i = 0; i < xn; i++) {
    if (xd[i] < mn) mn = xd[i];
    if (xd[i] > mx) mx = xd[i];
  }
  float scale = (mx - mn) / 255.0f;
  if (scale == 0) scale = 1.0f / 255.0f; /* all zeros: any scale works; avoid dividing by 0 */
  float zpf = 0.0f - mn / scale;
  zpf = zpf < 0 ? 0 : zpf > 255 ? 255 : zpf;
  int64_t zp = (int64_t)nearbyintf(zpf);
  uint8_t *y = out[0].data;
  for (int64_t i = 0; i < xn; i++) y[i] = (uint8_t)quantize_value(xd[i] / scale, zp, 0, 255);
  if (out[1].data) ((float *)out[1].data)[0] = scale;
  if (out[2].data) ((uint8_t *)out[2].data)[0] = (uint8_t)zp;
  return NULL;
}

static kiln_status check_q8(const kiln_tensor *t, const char *what) {
  if (t->dtype != KILN_DTYPE_UINT8 && t->dtype != KILN_DTYPE_INT8)
    return kiln_error(KILN_ERR_UNSUPPORTED, "%s has dtype %s (uint8 or int8 expected)", what, kiln_dtype_name(t->dtype));
  return NULL;
}

/* QLinearConv (ql) and ConvInteger: direct N-d convolution over zero-point-corrected integers.
 * Padding stands for the input zero point, so it contributes nothing. */
static kiln_status ref_conv(const kiln_node *n, const kiln_quant_params *p, const kiln_tensor *in, kiln_tensor *y) {
  bool ql = n->op == KILN_OP_QLinearConv;
  const kiln_tensor *x = &in[0], *w = &in[ql ? 3 : 1];
  const kiln_tensor *xzp = n->n_inputs > 2 ? &in[2] : NULL;
  const kiln_tensor *wzp = ql ? &in[5] : (n->n_inputs > 3 ? &in[3] : NULL);
  const kiln_tensor *bias = ql && n->n_inputs > 8 ? &in[8] : NULL;
  KILN_TRY(check_q8(x, "input"));
  KILN_TRY(check_q8(w, "weight"));
  if (x->rank != w->rank || x->rank != y->rank) return kiln_error(KILN_ERR_SHAPE, "input, weight and output ranks differ");
  kiln_quant_conv_geom geo;
  KILN_TRY(kiln_quant_conv_geometry(p, x->rank, x->dims, w->dims, &geo));
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], G = p->group;
  if (M % G || C != w->dims[1] * G) return kiln_error(KILN_ERR_SHAPE, "channels do not fit group %" PRId64, G);
  if (y->dims[0] != N || y->dims[1] != M) return kiln_error(KILN_ERR_SHAPE, "output dims do not match");
  int32_t ns = geo.n_spatial;
  int64_t out_sp = 1, in_sp = 1, k_sp = 1;
  for (int32_t i = 0; i < ns; i++) {
    if (y->dims[2 + i] != geo.out[i]) return kiln_error(KILN_ERR_SHAPE, "output spatial dims do not match");
    out_sp *= geo.out[i];
    in_sp *= x->dims[2 + i];
    k_sp *= geo.kernel[i];
  }
  KILN_TRY(check_qparam(xzp, 1, "input zero point"));
  KILN_TRY(check_qparam(wzp, M, "weight zero point"));
  if (bias && bias->data && kiln_tensor_numel(bias) != M) return kiln_error(KILN_ERR_SHAPE, "bias must have %" PRId64 " elements", M);
  int64_t lo = 0, hi = 0;
  if (ql) {
    KILN_TRY(check_qparam(&in[4], M, "weight scale"));
    KILN_TRY(check_qparam(&in[1], 1, "input scale"));
    KILN_TRY(check_qparam(&in[6], 1, "output scale"));
    KILN_TRY(check_qparam(&in[7], 1, "output zero point"));
    qrange(y->dtype, &lo, &hi);
  }
  int64_t Cg = C / G, Mg = M / G, x0 = qparam_i(xzp, 0);
  for (int64_t b = 0; b < N; b++)
    for (int64_t m = 0; m < M; m++) {
      int64_t grp = m / Mg, w0 = qparam_i(wzp, m);
      for (int64_t o = 0; o < out_sp; o++) {
        int64_t oc[KILN_QUANT_MAX_SPATIAL], rem = o;
        for (int32_t i = ns - 1; i >= 0; i--) oc[i] = rem % geo.out[i], rem /= geo.out[i];
        int64_t acc = 0;
        for (int64_t kk = 0; kk < k_sp; kk++) {
          int64_t off = 0, krem = kk;
          bool inside = true;
          int64_t kc[KILN_QUANT_MAX_SPATIAL];
          for (int32_t i = ns - 1; i >= 0; i--) kc[i] = krem % geo.kernel[i], krem /= geo.kernel[i];
          for (int32_t i = 0; i < ns && inside; i++) {
            int64_t pos = oc[i] * geo.stride[i] - geo.pad_begin[i] + kc[i] * geo.dilation[i];
            inside = pos >= 0 && pos < x->dims[2 + i];
            off = off * x->dims[2 + i] + pos;
          }
          if (!inside) continue;
          for (int64_t c = 0; c < Cg; c++) {
            int64_t xi = (b * C + grp * Cg + c) * in_sp + off;
            int64_t wi = (m * Cg + c) * k_sp + kk;
            acc += (kiln_dtype_load_i64(x->dtype, x->data, xi) - x0) * (kiln_dtype_load_i64(w->dtype, w->data, wi) - w0);
          }
        }
        int64_t yi = (b * M + m) * out_sp + o;
        if (!ql) {
          ((int32_t *)y->data)[yi] = (int32_t)(uint32_t)(uint64_t)acc; /* int32 wraps like the hardware */
          continue;
        }
        if (bias && bias->data) acc += kiln_dtype_load_i64(bias->dtype, bias->data, m);
        float mult = (float)qparam_f(&in[1], 0) * (float)qparam_f(&in[4], m) / (float)qparam_f(&in[6], 0);
        kiln_dtype_store_i64(y->dtype, y->data, yi, quantize_value((float)acc * mult, qparam_i(&in[7], 0), lo, hi));
      }
    }
  return NULL;
}

/* QLinearMatMul (ql) and MatMulInteger: numpy matmul with broadcast batch dims. */
static kiln_status ref_matmul(const kiln_node *n, const kiln_tensor *in, kiln_tensor *y) {
  bool ql = n->op == KILN_OP_QLinearMatMul;
  const kiln_tensor *a = &in[0], *b = &in[ql ? 3 : 1];
  const kiln_tensor *azp = n->n_inputs > 2 ? &in[2] : NULL;
  const kiln_tensor *bzp = ql ? &in[5] : (n->n_inputs > 3 ? &in[3] : NULL);
  KILN_TRY(check_q8(a, "a"));
  KILN_TRY(check_q8(b, "b"));
  if (a->rank < 1 || b->rank < 1) return kiln_error(KILN_ERR_SHAPE, "matmul operands must have rank >= 1");
  /* Promote 1-D operands to matrices: a [K] -> [1, K], b [K] -> [K, 1]. */
  int64_t M = a->rank >= 2 ? a->dims[a->rank - 2] : 1, K = a->dims[a->rank - 1];
  int64_t Kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0], N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
  if (K != Kb) return kiln_error(KILN_ERR_SHAPE, "inner dims differ (%" PRId64 " vs %" PRId64 ")", K, Kb);
  int32_t abr = a->rank > 2 ? a->rank - 2 : 0, bbr = b->rank > 2 ? b->rank - 2 : 0;
  int32_t obr = y->rank - (a->rank >= 2) - (b->rank >= 2);
  if (obr < 0 || obr < abr || obr < bbr) return kiln_error(KILN_ERR_SHAPE, "output rank does not fit the operands");
  int64_t batch = 1;
  for (int32_t i = 0; i < obr; i++) {
    int64_t d = y->dims[i];
    int32_t ia = i - (obr - abr), ib = i - (obr - bbr);
    if ((ia >= 0 && a->dims[ia] != 1 && a->dims[ia] != d) || (ib >= 0 && b->dims[ib] != 1 && b->dims[ib] != d))
      return kiln_error(KILN_ERR_SHAPE, "batch dims do not broadcast to the output");
    batch *= d;
  }
  if (kiln_tensor_numel(y) != batch * M * N) return kiln_error(KILN_ERR_SHAPE, "output size does not match");
  KILN_TRY(check_qparam(azp, M, "zero point of a"));
  KILN_TRY(check_qparam(bzp, N, "zero point of b"));
  int64_t lo = 0, hi = 0;
  if (ql) {
    KILN_TRY(check_qparam(&in[1], M, "scale of a"));
    KILN_TRY(check_qparam(&in[4], N, "scale of b"));
    KILN_TRY(check_qparam(&in[6], 1, "output scale"));
    KILN_TRY(check_qparam(&in[7], 1, "output zero point"));
    qrange(y->dtype, &lo, &hi);
  }
  for (int64_t bt = 0; bt < batch; bt++) {
    /* map the output batch index to a's and b's (size-1 dims broadcast) */
    int64_t rem = bt, aoff = 0, boff = 0, astr = 1, bstr = 1;
    for (int32_t i = obr - 1; i >= 0; i--) {
      int64_t c = rem % y->dims[i];
      rem /= y->dims[i];
      int32_t ia = i - (obr - abr), ib = i - (obr - bbr);
      if (ia >= 0) {
        if (a->dims[ia] != 1) aoff += c * astr;
        astr *= a->dims[ia];
      }
      if (ib >= 0) {
        if (b->dims[ib] != 1) boff += c * bstr;
        bstr *= b->dims[ib];
      }
    }
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        int64_t acc = 0, a0 = qparam_i(azp, i), b0 = qparam_i(bzp, j);
        for (int64_t k = 0; k < K; k++)
          acc += (kiln_dtype_load_i64(a->dtype, a->data, (aoff * M + i) * K + k) - a0) *
                 (kiln_dtype_load_i64(b->dtype, b->data, (boff * K + k) * N + j) - b0);
        int64_t yi = (bt * M + i) * N + j;
        if (!ql) {
          ((int32_t *)y->data)[yi] = (int32_t)(uint32_t)(uint64_t)acc;
          continue;
        }
        float mult = (float)qparam_f(&in[1], i) * (float)qparam_f(&in[4], j) / (float)qparam_f(&in[6], 0);
        kiln_dtype_store_i64(y->dtype, y->data, yi, quantize_value((float)acc * mult, qparam_i(&in[7], 0), lo, hi));
      }
  }
  return NULL;
}

kiln_status kiln_ref_quant(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_quant_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  switch (n->op) {
  case KILN_OP_QuantizeLinear: case KILN_OP_DequantizeLinear: return ref_qdq(n, p, in, &out[0]);
  case KILN_OP_DynamicQuantizeLinear: return ref_dynamic_quantize(&in[0], out);
  case KILN_OP_QLinearConv: case KILN_OP_ConvInteger: return ref_conv(n, p, in, &out[0]);
  case KILN_OP_QLinearMatMul: case KILN_OP_MatMulInteger: return ref_matmul(n, in, &out[0]);
  default: return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the quant family", n->op_type);
  }
}

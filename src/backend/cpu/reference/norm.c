/* norm family: reference kernels for BatchNormalization (inference and training mode),
 * InstanceNormalization, LayerNormalization (with Mean/InvStdDev) and LRN. Statistics in double. */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/norm.h"

#include <math.h>
#include <stdlib.h>

static inline double ld(const kiln_tensor *t, int64_t i) { return kiln_dtype_load_f64(t->dtype, t->data, i); }

static kiln_status check_float(const kiln_tensor *t) {
  if (!kiln_dtype_is_float(t->dtype) || !t->data)
    return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(t->dtype));
  return NULL;
}

static kiln_status ref_batchnorm(const kiln_norm_params *p, const kiln_tensor *in, kiln_tensor *out, int32_t n_out) {
  const kiln_tensor *X = &in[0];
  for (int i = 0; i < 5; i++) KILN_TRY(check_float(&in[i]));
  if (X->rank < 2) return kiln_error(KILN_ERR_SHAPE, "X must have rank >= 2");
  int64_t N = X->dims[0], C = X->dims[1], sp = 1;
  for (int32_t j = 2; j < X->rank; j++) sp *= X->dims[j];
  /* Parameters are per channel, or (opset < 9, spatial = 0) per element of one sample. */
  int64_t per = p->per_element ? C * sp : C;
  for (int i = 1; i < 5; i++)
    if (kiln_tensor_numel(&in[i]) != per) return kiln_error(KILN_ERR_SHAPE, "input %d must have %lld values", i, (long long)per);
  double *mean = malloc((size_t)(C > 0 ? C : 1) * sizeof(double)), *var = malloc((size_t)(C > 0 ? C : 1) * sizeof(double));
  if (!mean || !var) {
    free(mean);
    free(var);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  if (p->training) {
    /* Batch statistics over every dim but C (population variance), as the ONNX reference does. */
    double cnt = (double)(N * sp);
    for (int64_t c = 0; c < C; c++) {
      double s = 0, s2 = 0;
      for (int64_t nb = 0; nb < N; nb++)
        for (int64_t i = 0; i < sp; i++) s += ld(X, (nb * C + c) * sp + i);
      double m = cnt > 0 ? s / cnt : 0;
      for (int64_t nb = 0; nb < N; nb++)
        for (int64_t i = 0; i < sp; i++) {
          double d = ld(X, (nb * C + c) * sp + i) - m;
          s2 += d * d;
        }
      mean[c] = m;
      var[c] = cnt > 0 ? s2 / cnt : 0;
      double mom = p->momentum;
      if (n_out > 1 && out[1].data)
        kiln_dtype_store_f64(out[1].dtype, out[1].data, c, ld(&in[3], c) * mom + m * (1 - mom));
      if (n_out > 2 && out[2].data)
        kiln_dtype_store_f64(out[2].dtype, out[2].data, c, ld(&in[4], c) * mom + var[c] * (1 - mom));
    }
  }
  for (int64_t nb = 0; nb < N; nb++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < sp; i++) {
        int64_t pi = p->per_element ? c * sp + i : c;
        double m = p->training ? mean[c] : ld(&in[3], pi), v = p->training ? var[c] : ld(&in[4], pi);
        int64_t xi = (nb * C + c) * sp + i;
        double y = (ld(X, xi) - m) / sqrt(v + (double)p->epsilon) * ld(&in[1], pi) + ld(&in[2], pi);
        kiln_dtype_store_f64(out[0].dtype, out[0].data, xi, y);
      }
  free(mean);
  free(var);
  return NULL;
}

static kiln_status ref_instancenorm(const kiln_norm_params *p, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_tensor *X = &in[0];
  for (int i = 0; i < 3; i++) KILN_TRY(check_float(&in[i]));
  if (X->rank < 3) return kiln_error(KILN_ERR_SHAPE, "X must have rank >= 3");
  int64_t N = X->dims[0], C = X->dims[1], sp = 1;
  for (int32_t j = 2; j < X->rank; j++) sp *= X->dims[j];
  if (kiln_tensor_numel(&in[1]) != C || kiln_tensor_numel(&in[2]) != C)
    return kiln_error(KILN_ERR_SHAPE, "scale and B must have C values");
  for (int64_t nb = 0; nb < N; nb++)
    for (int64_t c = 0; c < C; c++) {
      int64_t base = (nb * C + c) * sp;
      double s = 0, s2 = 0;
      for (int64_t i = 0; i < sp; i++) s += ld(X, base + i);
      double m = sp ? s / (double)sp : 0;
      for (int64_t i = 0; i < sp; i++) s2 += (ld(X, base + i) - m) * (ld(X, base + i) - m);
      double inv = 1.0 / sqrt((sp ? s2 / (double)sp : 0) + (double)p->epsilon);
      double sc = ld(&in[1], c), b = ld(&in[2], c);
      for (int64_t i = 0; i < sp; i++)
        kiln_dtype_store_f64(out[0].dtype, out[0].data, base + i, (ld(X, base + i) - m) * inv * sc + b);
    }
  return NULL;
}

/* Offset into a tensor `t` broadcast (right-aligned, size-1 dims repeat) to the dims `d[0..r)`, for
 * the row-major index i over those dims. */
static int64_t bcast_offset(const kiln_tensor *t, const int64_t *d, int32_t r, int64_t i) {
  int64_t off = 0, stride = 1;
  for (int32_t j = r - 1, k = t->rank - 1; j >= 0; j--, k--) {
    int64_t c = i % d[j];
    i /= d[j];
    if (k < 0) continue;
    if (t->dims[k] != 1) off += c * stride;
    stride *= t->dims[k];
  }
  return off;
}

static kiln_status ref_layernorm(const kiln_norm_params *p, const kiln_tensor *in, int32_t n_in, kiln_tensor *out,
                                 int32_t n_out) {
  const kiln_tensor *X = &in[0], *S = &in[1], *B = n_in > 2 && in[2].data ? &in[2] : NULL;
  KILN_TRY(check_float(X));
  KILN_TRY(check_float(S));
  if (B) KILN_TRY(check_float(B));
  int64_t ax = p->axis < 0 ? p->axis + X->rank : p->axis;
  if (ax < 0 || ax >= X->rank) return kiln_error(KILN_ERR_SHAPE, "axis %lld is out of range", (long long)p->axis);
  int64_t outer = 1, inner = 1;
  for (int32_t j = 0; j < X->rank; j++) {
    if (j < ax) outer *= X->dims[j];
    else inner *= X->dims[j];
  }
  const int64_t *nd = X->dims + ax;
  int32_t nr = X->rank - (int32_t)ax;
  if (S->rank > nr || (B && B->rank > nr)) return kiln_error(KILN_ERR_SHAPE, "Scale/B have too many dims");
  for (int64_t o = 0; o < outer; o++) {
    int64_t base = o * inner;
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < inner; i++) s += ld(X, base + i);
    double m = inner ? s / (double)inner : 0;
    for (int64_t i = 0; i < inner; i++) s2 += (ld(X, base + i) - m) * (ld(X, base + i) - m);
    double inv = 1.0 / sqrt((inner ? s2 / (double)inner : 0) + (double)p->epsilon);
    if (p->stash_type == KILN_DTYPE_FLOAT32) {
      /* The statistics are stored in float32; the normalization uses those rounded values (ONNX). */
      m = (float)m;
      inv = (float)inv;
    }
    for (int64_t i = 0; i < inner; i++) {
      double y = (ld(X, base + i) - m) * inv * ld(S, bcast_offset(S, nd, nr, i));
      if (B) y += ld(B, bcast_offset(B, nd, nr, i));
      kiln_dtype_store_f64(out[0].dtype, out[0].data, base + i, y);
    }
    if (n_out > 1 && out[1].data) kiln_dtype_store_f64(out[1].dtype, out[1].data, o, m);
    if (n_out > 2 && out[2].data) kiln_dtype_store_f64(out[2].dtype, out[2].data, o, inv);
  }
  return NULL;
}

static kiln_status ref_lrn(const kiln_norm_params *p, const kiln_tensor *X, kiln_tensor *Y) {
  KILN_TRY(check_float(X));
  if (X->rank < 2) return kiln_error(KILN_ERR_SHAPE, "X must have rank >= 2");
  int64_t N = X->dims[0], C = X->dims[1], sp = 1;
  for (int32_t j = 2; j < X->rank; j++) sp *= X->dims[j];
  /* The window covers channels c - floor((size-1)/2) .. c + ceil((size-1)/2). */
  int64_t lo = (p->size - 1) / 2, hi = p->size - 1 - lo;
  for (int64_t nb = 0; nb < N; nb++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < sp; i++) {
        double sq = 0;
        for (int64_t cc = c - lo; cc <= c + hi; cc++) {
          if (cc < 0 || cc >= C) continue;
          double v = ld(X, (nb * C + cc) * sp + i);
          sq += v * v;
        }
        int64_t xi = (nb * C + c) * sp + i;
        double y = ld(X, xi) / pow((double)p->bias + (double)p->alpha / (double)p->size * sq, (double)p->beta);
        kiln_dtype_store_f64(Y->dtype, Y->data, xi, y);
      }
  return NULL;
}

kiln_status kiln_ref_norm(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  (void)g;
  const kiln_norm_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "not parsed");
  if (!kiln_dtype_is_float(out[0].dtype) || out[0].dtype != in[0].dtype)
    return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(out[0].dtype));
  if (kiln_tensor_numel(&out[0]) != kiln_tensor_numel(&in[0]))
    return kiln_error(KILN_ERR_SHAPE, "output does not match the input");
  switch (n->op) {
  case KILN_OP_BatchNormalization: return ref_batchnorm(p, in, out, n->n_outputs);
  case KILN_OP_InstanceNormalization: return ref_instancenorm(p, in, out);
  case KILN_OP_LayerNormalization: return ref_layernorm(p, in, n->n_inputs, out, n->n_outputs);
  case KILN_OP_LRN: return ref_lrn(p, &in[0], &out[0]);
  default: return kiln_error(KILN_ERR_INTERNAL, "not a norm op");
  }
}

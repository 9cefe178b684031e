/* pool family: reference kernels for MaxPool (with Indices), AveragePool, the global pools, and
 * Resize/Upsample (nearest, linear, cubic; every coordinate transformation). Values are handled as
 * double, which is exact for every dtype these ops take except 64-bit integers (not allowed here). */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static kiln_status ref_window_pool(const kiln_node *n, const kiln_tensor *X, kiln_tensor *out, int32_t n_out) {
  const kiln_pool_params *p = n->params;
  bool is_max = n->op == KILN_OP_MaxPool;
  if (!kiln_dtype_is_float(X->dtype) && !(is_max && (X->dtype == KILN_DTYPE_INT8 || X->dtype == KILN_DTYPE_UINT8)))
    return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(X->dtype));
  if (X->rank != p->w.n_kernel + 2) return kiln_error(KILN_ERR_SHAPE, "input rank does not match kernel_shape");
  kiln_window_geom gm;
  KILN_TRY(kiln_window_resolve(&p->w, X->rank - 2, X->dims + 2, p->w.kernel_shape, false, p->ceil_mode, &gm));
  int32_t nsp = gm.nsp;
  kiln_tensor *Y = &out[0], *I = n_out > 1 && out[1].data ? &out[1] : NULL;
  if (Y->rank != X->rank || Y->dtype != X->dtype) return kiln_error(KILN_ERR_SHAPE, "output does not match");
  for (int32_t j = 0; j < nsp; j++)
    if (Y->dims[j + 2] != gm.out[j]) return kiln_error(KILN_ERR_SHAPE, "output does not match");
  if (I && (I->dtype != KILN_DTYPE_INT64 || kiln_tensor_numel(I) != kiln_tensor_numel(Y)))
    return kiln_error(KILN_ERR_SHAPE, "Indices output does not match");
  int64_t planes = X->dims[0] * X->dims[1], in_sp = 1, out_sp = 1, nk = 1;
  for (int32_t j = 0; j < nsp; j++) in_sp *= gm.in[j], out_sp *= gm.out[j], nk *= gm.kernel[j];
  int64_t pos[KILN_MAX_SPATIAL], kp[KILN_MAX_SPATIAL], c[KILN_MAX_SPATIAL];
  for (int64_t pl = 0; pl < planes; pl++)
    for (int64_t o = 0; o < out_sp; o++) {
      int64_t rem = o;
      for (int32_t j = nsp - 1; j >= 0; j--) pos[j] = rem % gm.out[j], rem /= gm.out[j];
      double best = -INFINITY, sum = 0;
      int64_t best_idx = -1, count = 0;
      for (int64_t k = 0; k < nk; k++) {
        rem = k;
        for (int32_t j = nsp - 1; j >= 0; j--) kp[j] = rem % gm.kernel[j], rem /= gm.kernel[j];
        bool inside = true, in_padded = true;
        for (int32_t j = 0; j < nsp; j++) {
          c[j] = pos[j] * gm.strides[j] + kp[j] * gm.dilations[j] - gm.pad_begin[j];
          if (c[j] < 0 || c[j] >= gm.in[j]) inside = false;
          if (c[j] < -gm.pad_begin[j] || c[j] >= gm.in[j] + gm.pad_end[j]) in_padded = false;
        }
        /* count_include_pad counts pad positions but not the overhang that ceil_mode adds past them */
        if (p->count_include_pad && in_padded) count++;
        if (!inside) continue;
        int64_t off = 0;
        for (int32_t j = 0; j < nsp; j++) off = off * gm.in[j] + c[j];
        double v = kiln_dtype_load_f64(X->dtype, X->data, pl * in_sp + off);
        if (!p->count_include_pad) count++;
        sum += v;
        if (best_idx < 0 || v > best) {
          best = v;
          /* storage_order 1 numbers the spatial dims column-major (first dim fastest). */
          int64_t idx = 0;
          if (p->column_major)
            for (int32_t j = nsp - 1; j >= 0; j--) idx = idx * gm.in[j] + c[j];
          else
            idx = off;
          best_idx = pl * in_sp + idx;
        }
      }
      int64_t yi = pl * out_sp + o;
      if (is_max) {
        kiln_dtype_store_f64(Y->dtype, Y->data, yi, best);
        if (I) ((int64_t *)I->data)[yi] = best_idx < 0 ? 0 : best_idx;
      } else {
        kiln_dtype_store_f64(Y->dtype, Y->data, yi, count ? sum / (double)count : 0.0);
      }
    }
  return NULL;
}

static kiln_status ref_global_pool(const kiln_node *n, const kiln_tensor *X, kiln_tensor *Y) {
  if (!kiln_dtype_is_float(X->dtype) || Y->dtype != X->dtype)
    return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(X->dtype));
  if (X->rank < 3) return kiln_error(KILN_ERR_SHAPE, "input must have rank >= 3");
  int64_t planes = X->dims[0] * X->dims[1], sp = 1;
  for (int32_t j = 2; j < X->rank; j++) sp *= X->dims[j];
  if (kiln_tensor_numel(Y) != planes) return kiln_error(KILN_ERR_SHAPE, "output does not match");
  bool is_max = n->op == KILN_OP_GlobalMaxPool;
  for (int64_t pl = 0; pl < planes; pl++) {
    double acc = is_max ? -INFINITY : 0;
    for (int64_t i = 0; i < sp; i++) {
      double v = kiln_dtype_load_f64(X->dtype, X->data, pl * sp + i);
      if (is_max) acc = (v > acc || isnan(v)) ? v : acc;
      else acc += v;
    }
    kiln_dtype_store_f64(Y->dtype, Y->data, pl, is_max ? acc : (sp ? acc / (double)sp : 0));
  }
  return NULL;
}

/* ---- Resize ----------------------------------------------------------------------------------- */

/* Interpolation taps of one output coordinate along one dim. */
typedef struct resize_tap {
  int32_t n;       /* number of taps; 0 = outside (tf_crop_and_resize extrapolates) */
  int64_t idx[4];
  double w[4];
} resize_tap;

static double cubic_w(double a, double x) { /* Keys' cubic convolution kernel, x = |distance| */
  x = fabs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/* Follows the ONNX reference implementation (onnx/reference/ops/op_resize.py): output lengths in the
 * coordinate formulas are scale x input length as a real number, not the rounded output size. */
static void resize_taps(const kiln_resize_params *p, int64_t x, int64_t in_len, int64_t out_len, double scale,
                        double roi_start, double roi_end, resize_tap *t) {
  double out_w = scale * (double)in_len, xo = 0;
  switch (p->coord) {
  case KILN_COORD_HALF_PIXEL: xo = ((double)x + 0.5) / scale - 0.5; break;
  case KILN_COORD_HALF_PIXEL_SYMMETRIC: {
    double adj = (double)out_len / out_w, center = (double)in_len / 2;
    xo = center * (1 - adj) + ((double)x + 0.5) / scale - 0.5;
    break;
  }
  case KILN_COORD_PYTORCH_HALF_PIXEL: xo = out_w > 1 ? ((double)x + 0.5) / scale - 0.5 : -0.5; break;
  case KILN_COORD_ALIGN_CORNERS: xo = out_w == 1 ? 0 : (double)x * (double)(in_len - 1) / (out_w - 1); break;
  case KILN_COORD_ASYMMETRIC: xo = (double)x / scale; break;
  case KILN_COORD_TF_HALF_PIXEL_FOR_NN: xo = ((double)x + 0.5) / scale; break;
  case KILN_COORD_TF_CROP_AND_RESIZE:
    if (out_w == 1) xo = (roi_end - roi_start) * (double)(in_len - 1) / 2;
    else xo = (double)x * (roi_end - roi_start) * (double)(in_len - 1) / (out_w - 1);
    xo += roi_start * (double)(in_len - 1);
    if (xo < 0 || xo > (double)(in_len - 1)) {
      t->n = 0;
      return;
    }
    break;
  }
  double fl = floor(xo), r = xo - fl;
  int64_t x0 = (int64_t)fl;
  if (p->mode == KILN_RESIZE_NEAREST) {
    int64_t i = x0;
    if (r != 0) {
      switch (p->nearest) {
      case KILN_NEAREST_ROUND_PREFER_FLOOR: i = r <= 0.5 ? x0 : x0 + 1; break;
      case KILN_NEAREST_ROUND_PREFER_CEIL: i = r < 0.5 ? x0 : x0 + 1; break;
      case KILN_NEAREST_FLOOR: i = x0; break;
      case KILN_NEAREST_CEIL: i = x0 + 1; break;
      case KILN_NEAREST_SIMPLE: i = scale < 1 ? x0 + 1 : x0; break;
      }
    }
    t->n = 1;
    t->idx[0] = i < 0 ? 0 : i >= in_len ? in_len - 1 : i;
    t->w[0] = 1;
    return;
  }
  int32_t nt = p->mode == KILN_RESIZE_LINEAR ? 2 : 4;
  int64_t first = p->mode == KILN_RESIZE_LINEAR ? x0 : x0 - 1;
  double sum = 0;
  for (int32_t k = 0; k < nt; k++) {
    int64_t i = first + k;
    double w = p->mode == KILN_RESIZE_LINEAR ? (k == 0 ? 1 - r : r) : cubic_w(p->cubic_coeff_a, xo - (double)i);
    if (p->exclude_outside && (i < 0 || i >= in_len)) w = 0;
    t->idx[k] = i < 0 ? 0 : i >= in_len ? in_len - 1 : i;
    t->w[k] = w;
    sum += w;
  }
  if (p->exclude_outside && sum != 0)
    for (int32_t k = 0; k < nt; k++) t->w[k] /= sum;
  t->n = nt;
}

static kiln_status ref_resize(const kiln_node *n, const kiln_tensor *in, kiln_tensor *Y) {
  const kiln_resize_params *p = n->params;
  const kiln_tensor *X = &in[0];
  int32_t rank = X->rank;
  if (rank < 1) return kiln_error(KILN_ERR_SHAPE, "input must have rank >= 1");
  if (Y->dtype != X->dtype || Y->rank != rank) return kiln_error(KILN_ERR_SHAPE, "output does not match");
  if (X->dtype == KILN_DTYPE_INT64 || X->dtype == KILN_DTYPE_UINT64 || X->dtype == KILN_DTYPE_BOOL)
    return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(X->dtype));
  double sc[KILN_MAX_RANK], osc[KILN_MAX_RANK];
  int64_t sz[KILN_MAX_RANK], ns = 0, nz = 0, od[KILN_MAX_RANK];
  const kiln_tensor *S = p->scales_input >= 0 && p->scales_input < n->n_inputs ? &in[p->scales_input] : NULL;
  const kiln_tensor *Z = p->sizes_input >= 0 && p->sizes_input < n->n_inputs ? &in[p->sizes_input] : NULL;
  if (S && (!S->data || kiln_tensor_numel(S) == 0)) S = NULL;
  if (Z && (!Z->data || kiln_tensor_numel(Z) == 0)) Z = NULL;
  if (p->n_attr_scales) {
    for (int32_t i = 0; i < p->n_attr_scales; i++) sc[i] = p->attr_scales[i];
    ns = p->n_attr_scales;
  } else if (S) {
    ns = kiln_tensor_numel(S);
    if (ns > KILN_MAX_RANK) return kiln_error(KILN_ERR_SHAPE, "scales has too many values");
    for (int64_t i = 0; i < ns; i++) sc[i] = kiln_dtype_load_f64(S->dtype, S->data, i);
  } else if (Z) {
    nz = kiln_tensor_numel(Z);
    if (nz > KILN_MAX_RANK) return kiln_error(KILN_ERR_SHAPE, "sizes has too many values");
    for (int64_t i = 0; i < nz; i++) sz[i] = kiln_dtype_load_i64(Z->dtype, Z->data, i);
  }
  KILN_TRY(kiln_resize_resolve(p, rank, X->dims, ns ? sc : NULL, ns, ns ? NULL : sz, nz, od, osc));
  for (int32_t d = 0; d < rank; d++)
    if (Y->dims[d] != od[d]) return kiln_error(KILN_ERR_SHAPE, "output does not match");
  /* roi: [starts..., ends...] over all dims (or over `axes`); only tf_crop_and_resize reads it. */
  double rs[KILN_MAX_RANK], re[KILN_MAX_RANK];
  for (int32_t d = 0; d < rank; d++) rs[d] = 0, re[d] = 1;
  if (p->coord == KILN_COORD_TF_CROP_AND_RESIZE) {
    const kiln_tensor *R = p->roi_input >= 0 && p->roi_input < n->n_inputs ? &in[p->roi_input] : NULL;
    int32_t nax = p->n_axes ? p->n_axes : rank;
    if (!R || !R->data || kiln_tensor_numel(R) != 2 * nax)
      return kiln_error(KILN_ERR_SHAPE, "tf_crop_and_resize needs roi with %d values", 2 * nax);
    for (int32_t i = 0; i < nax; i++) {
      int32_t d = i;
      if (p->n_axes) d = (int32_t)(p->axes[i] < 0 ? p->axes[i] + rank : p->axes[i]);
      rs[d] = kiln_dtype_load_f64(R->dtype, R->data, i);
      re[d] = kiln_dtype_load_f64(R->dtype, R->data, i + nax);
    }
  }
  int64_t total_taps = 0;
  for (int32_t d = 0; d < rank; d++) total_taps += od[d];
  resize_tap *taps = malloc((size_t)(total_taps > 0 ? total_taps : 1) * sizeof *taps);
  if (!taps) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  resize_tap *td[KILN_MAX_RANK];
  int64_t off = 0;
  for (int32_t d = 0; d < rank; d++) {
    td[d] = taps + off;
    for (int64_t x = 0; x < od[d]; x++) resize_taps(p, x, X->dims[d], od[d], osc[d], rs[d], re[d], &td[d][x]);
    off += od[d];
  }
  int64_t ny = kiln_tensor_numel(Y), strides[KILN_MAX_RANK];
  int64_t s = 1;
  for (int32_t d = rank - 1; d >= 0; d--) strides[d] = s, s *= X->dims[d];
  int64_t pos[KILN_MAX_RANK], k[KILN_MAX_RANK];
  for (int64_t o = 0; o < ny; o++) {
    int64_t rem = o;
    bool outside = false;
    for (int32_t d = rank - 1; d >= 0; d--) {
      pos[d] = rem % od[d], rem /= od[d];
      if (td[d][pos[d]].n == 0) outside = true;
    }
    double acc = 0;
    if (outside) {
      acc = p->extrapolation_value;
    } else {
      /* Sum over every combination of taps (product of per-dim weights): separable interpolation. */
      for (int32_t d = 0; d < rank; d++) k[d] = 0;
      for (;;) {
        double w = 1;
        int64_t xi = 0;
        for (int32_t d = 0; d < rank; d++) {
          const resize_tap *t = &td[d][pos[d]];
          w *= t->w[k[d]];
          xi += t->idx[k[d]] * strides[d];
        }
        if (w != 0) acc += w * kiln_dtype_load_f64(X->dtype, X->data, xi);
        int32_t d = rank - 1;
        while (d >= 0 && ++k[d] == td[d][pos[d]].n) k[d--] = 0;
        if (d < 0) break;
      }
    }
    if (!kiln_dtype_is_float(Y->dtype)) acc = nearbyint(acc); /* integer outputs round to nearest */
    kiln_dtype_store_f64(Y->dtype, Y->data, o, acc);
  }
  free(taps);
  return NULL;
}

kiln_status kiln_ref_pool(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  (void)g;
  switch (n->op) {
  case KILN_OP_MaxPool:
  case KILN_OP_AveragePool:
    if (!n->params) return kiln_error(KILN_ERR_INTERNAL, "not parsed");
    return ref_window_pool(n, &in[0], out, n->n_outputs);
  case KILN_OP_GlobalAveragePool:
  case KILN_OP_GlobalMaxPool: return ref_global_pool(n, &in[0], &out[0]);
  case KILN_OP_Resize:
  case KILN_OP_Upsample:
    if (!n->params) return kiln_error(KILN_ERR_INTERNAL, "not parsed");
    return ref_resize(n, in, &out[0]);
  default: return kiln_error(KILN_ERR_INTERNAL, "not a pool op");
  }
}

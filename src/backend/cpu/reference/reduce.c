/* reduce family: reference kernels (softmax family, ReduceX, CumSum, TopK, ArgMax/ArgMin).
 * Floats are accumulated in double; integer sums/products in (wrapping) 64-bit integers so they stay
 * exact. Elements are read and written through the dtype helpers, so every dtype goes one path. */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/infer_util.h"
#include "ir/ops/reduce.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Split a tensor around `axis` into outer x len x inner (row-major). */
static void split_axis(const kiln_tensor *t, int32_t axis, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int32_t d = 0; d < axis; d++) *outer *= t->dims[d];
  for (int32_t d = axis + 1; d < t->rank; d++) *inner *= t->dims[d];
  *len = t->rank > 0 ? t->dims[axis] : 1;
}

/* Three-way compare of elements i and j of `data`, a total order: integers compare exactly (uint64
 * included), floats numerically with NaN above everything so sorts and arg-reductions are defined. */
static int elem_cmp(kiln_dtype dt, const void *data, int64_t i, int64_t j) {
  if (dt == KILN_DTYPE_UINT64) {
    uint64_t a = ((const uint64_t *)data)[i], b = ((const uint64_t *)data)[j];
    return (a > b) - (a < b);
  }
  if (kiln_dtype_is_int(dt) || dt == KILN_DTYPE_BOOL) {
    int64_t a = kiln_dtype_load_i64(dt, data, i), b = kiln_dtype_load_i64(dt, data, j);
    return (a > b) - (a < b);
  }
  double a = kiln_dtype_load_f64(dt, data, i), b = kiln_dtype_load_f64(dt, data, j);
  bool na = isnan(a), nb = isnan(b);
  if (na || nb) return (int)na - (int)nb;
  return (a > b) - (a < b);
}

static kiln_status check_float(const kiln_tensor *t) {
  if (!kiln_dtype_is_float(t->dtype))
    return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(t->dtype));
  return NULL;
}

/* ---- Softmax / LogSoftmax / Hardmax ------------------------------------------------------------------ */
static kiln_status ref_softmax(const kiln_node *n, const kiln_reduce_params *p, const kiln_tensor *x,
                               kiln_tensor *y) {
  KILN_TRY(check_float(x));
  int64_t outer, len, inner;
  int32_t a = 0;
  if (x->rank > 0) KILN_TRY(kiln_normalize_axis(p->axis, x->rank, &a));
  if (p->coerce_2d) { /* [prod(d[:axis]), prod(d[axis:])], reduce over the second */
    outer = 1;
    len = 1;
    for (int32_t d = 0; d < a; d++) outer *= x->dims[d];
    for (int32_t d = a; d < x->rank; d++) len *= x->dims[d];
    inner = 1;
  } else {
    split_axis(x, a, &outer, &len, &inner);
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      int64_t base = o * len * inner + in;
      if (len == 0) continue;
      double mx = kiln_dtype_load_f64(x->dtype, x->data, base);
      int64_t arg = 0;
      for (int64_t i = 1; i < len; i++) {
        double v = kiln_dtype_load_f64(x->dtype, x->data, base + i * inner);
        if (v > mx) mx = v, arg = i;
      }
      if (n->op == KILN_OP_Hardmax) { /* first occurrence of the maximum wins, like numpy argmax */
        for (int64_t i = 0; i < len; i++) kiln_dtype_store_f64(y->dtype, y->data, base + i * inner, i == arg);
        continue;
      }
      double sum = 0;
      for (int64_t i = 0; i < len; i++) sum += exp(kiln_dtype_load_f64(x->dtype, x->data, base + i * inner) - mx);
      double lsum = log(sum);
      for (int64_t i = 0; i < len; i++) {
        double v = kiln_dtype_load_f64(x->dtype, x->data, base + i * inner) - mx;
        kiln_dtype_store_f64(y->dtype, y->data, base + i * inner, n->op == KILN_OP_LogSoftmax ? v - lsum : exp(v) / sum);
      }
    }
  return NULL;
}

/* ---- ReduceX ----------------------------------------------------------------------------------------- */
static kiln_status ref_reduce_x(const kiln_node *n, const kiln_reduce_params *p, const kiln_tensor *in,
                                kiln_tensor *y) {
  const kiln_tensor *x = &in[0];
  int64_t axes[KILN_MAX_RANK];
  int64_t n_axes = p->n_axes;
  memcpy(axes, p->axes, sizeof axes);
  if (p->axes_from_input) {
    n_axes = 0;
    if (n->n_inputs > 1 && in[1].data) {
      int64_t cnt = kiln_tensor_numel(&in[1]);
      if (cnt > KILN_MAX_RANK) return kiln_error(KILN_ERR_SHAPE, "axes input has %" PRId64 " entries", cnt);
      for (int64_t i = 0; i < cnt; i++) axes[i] = kiln_dtype_load_i64(in[1].dtype, in[1].data, i);
      n_axes = cnt;
    }
  }
  bool mask[KILN_MAX_RANK], identity;
  KILN_TRY(kiln_reduce_resolve_axes(p, x->rank, axes, n_axes, mask, &identity));
  int64_t xn = kiln_tensor_numel(x), yn = kiln_tensor_numel(y);
  /* Output strides laid over the input's dims: a reduced dim contributes 0. */
  int64_t ostride[KILN_MAX_RANK], s = 1, expect = 1, count = 1;
  for (int32_t d = x->rank - 1; d >= 0; d--) {
    if (!identity && mask[d]) {
      ostride[d] = 0;
      count *= x->dims[d];
    } else {
      ostride[d] = s;
      s *= x->dims[d];
    }
  }
  expect = s;
  if (expect != yn) return kiln_error(KILN_ERR_SHAPE, "output has %" PRId64 " elements, expected %" PRId64, yn, expect);
  kiln_op op = n->op;
  bool is_int = kiln_dtype_is_int(x->dtype) || x->dtype == KILN_DTYPE_BOOL;
  /* Integer sums/products/min/max stay exact in 64-bit integers (wrapping like ONNX Runtime). */
  bool int_path = is_int && (op == KILN_OP_ReduceSum || op == KILN_OP_ReduceProd || op == KILN_OP_ReduceMax ||
                             op == KILN_OP_ReduceMin || op == KILN_OP_ReduceL1 || op == KILN_OP_ReduceSumSquare ||
                             op == KILN_OP_ReduceMean);
  double *acc = malloc(sizeof(double) * (size_t)(yn > 0 ? yn : 1));
  double *mx = NULL;
  uint64_t *iacc = malloc(sizeof(uint64_t) * (size_t)(yn > 0 ? yn : 1));
  if (!acc || !iacc) {
    free(acc);
    free(iacc);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  double init = 0;
  uint64_t iinit = 0;
  if (op == KILN_OP_ReduceProd) init = 1, iinit = 1;
  if (op == KILN_OP_ReduceMax) init = -INFINITY, iinit = (uint64_t)INT64_MIN;
  if (op == KILN_OP_ReduceMin) init = INFINITY, iinit = (uint64_t)INT64_MAX;
  if (op == KILN_OP_ReduceMax && x->dtype == KILN_DTYPE_UINT64) iinit = 0;
  if (op == KILN_OP_ReduceMin && x->dtype == KILN_DTYPE_UINT64) iinit = UINT64_MAX;
  for (int64_t i = 0; i < yn; i++) acc[i] = init, iacc[i] = iinit;
  if (op == KILN_OP_ReduceLogSumExp) {
    /* Subtract the per-output maximum first so exp() cannot overflow. */
    mx = malloc(sizeof(double) * (size_t)(yn > 0 ? yn : 1));
    if (!mx) {
      free(acc);
      free(iacc);
      return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int64_t i = 0; i < yn; i++) mx[i] = -INFINITY;
  }
  for (int pass = mx ? 0 : 1; pass < 2; pass++) {
    int64_t idx[KILN_MAX_RANK] = {0}, o = 0;
    for (int64_t i = 0; i < xn; i++) {
      if (int_path) {
        int64_t v = kiln_dtype_load_i64(x->dtype, x->data, i);
        uint64_t u = (uint64_t)v;
        switch (op) {
        case KILN_OP_ReduceSum: case KILN_OP_ReduceMean: iacc[o] += u; break;
        case KILN_OP_ReduceProd: iacc[o] *= u; break;
        case KILN_OP_ReduceL1: iacc[o] += v < 0 ? (uint64_t)0 - u : u; break;
        case KILN_OP_ReduceSumSquare: iacc[o] += u * u; break;
        case KILN_OP_ReduceMax:
          if (x->dtype == KILN_DTYPE_UINT64 ? u > iacc[o] : v > (int64_t)iacc[o]) iacc[o] = u;
          break;
        default: /* ReduceMin */
          if (x->dtype == KILN_DTYPE_UINT64 ? u < iacc[o] : v < (int64_t)iacc[o]) iacc[o] = u;
          break;
        }
      } else {
        double v = kiln_dtype_load_f64(x->dtype, x->data, i);
        switch (op) {
        case KILN_OP_ReduceSum: case KILN_OP_ReduceMean: case KILN_OP_ReduceLogSum: acc[o] += v; break;
        case KILN_OP_ReduceProd: acc[o] *= v; break;
        case KILN_OP_ReduceL1: acc[o] += fabs(v); break;
        case KILN_OP_ReduceL2: case KILN_OP_ReduceSumSquare: acc[o] += v * v; break;
        case KILN_OP_ReduceMax: /* NaN propagates, like numpy's max */
          if (v > acc[o] || isnan(v)) acc[o] = isnan(acc[o]) ? acc[o] : v;
          break;
        case KILN_OP_ReduceMin:
          if (v < acc[o] || isnan(v)) acc[o] = isnan(acc[o]) ? acc[o] : v;
          break;
        default: /* ReduceLogSumExp */
          if (pass == 0) {
            if (v > mx[o] || isnan(v)) mx[o] = v;
          } else if (isfinite(mx[o])) {
            acc[o] += exp(v - mx[o]);
          }
          break;
        }
      }
      /* advance the multi-index and the output offset together */
      for (int32_t d = x->rank - 1; d >= 0; d--) {
        o += ostride[d];
        if (++idx[d] < x->dims[d]) break;
        o -= ostride[d] * idx[d];
        idx[d] = 0;
      }
    }
  }
  for (int64_t i = 0; i < yn; i++) {
    if (int_path) {
      int64_t v = (int64_t)iacc[i];
      if (op == KILN_OP_ReduceMean) v = count ? v / count : 0;
      if (x->dtype == KILN_DTYPE_UINT64) ((uint64_t *)y->data)[i] = op == KILN_OP_ReduceMean && count ? iacc[i] / (uint64_t)count : iacc[i];
      else kiln_dtype_store_i64(y->dtype, y->data, i, v);
      continue;
    }
    double r = acc[i];
    switch (op) {
    case KILN_OP_ReduceMean: r = r / (double)count; break; /* empty: 0/0 = NaN, as numpy */
    case KILN_OP_ReduceL2: r = sqrt(r); break;
    case KILN_OP_ReduceLogSum: r = log(r); break;
    case KILN_OP_ReduceLogSumExp: r = isfinite(mx[i]) ? mx[i] + log(r) : mx[i]; break;
    default: break;
    }
    kiln_dtype_store_f64(y->dtype, y->data, i, r);
  }
  free(acc);
  free(iacc);
  free(mx);
  return NULL;
}

/* ---- CumSum ------------------------------------------------------------------------------------------ */
static kiln_status ref_cumsum(const kiln_reduce_params *p, const kiln_tensor *in, kiln_tensor *y) {
  const kiln_tensor *x = &in[0];
  if (!in[1].data || kiln_tensor_numel(&in[1]) != 1) return kiln_error(KILN_ERR_SHAPE, "axis input must be a scalar");
  int32_t a;
  KILN_TRY(kiln_normalize_axis(kiln_dtype_load_i64(in[1].dtype, in[1].data, 0), x->rank > 0 ? x->rank : 1, &a));
  int64_t outer, len, inner;
  split_axis(x, a, &outer, &len, &inner);
  bool is_int = kiln_dtype_is_int(x->dtype);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in_ = 0; in_ < inner; in_++) {
      double acc = 0;
      uint64_t iacc = 0;
      for (int64_t t = 0; t < len; t++) {
        int64_t i = p->reverse ? len - 1 - t : t;
        int64_t off = (o * len + i) * inner + in_;
        /* exclusive: write the running sum before adding this element */
        if (p->exclusive) {
          if (is_int) kiln_dtype_store_i64(y->dtype, y->data, off, (int64_t)iacc);
          else kiln_dtype_store_f64(y->dtype, y->data, off, acc);
        }
        if (is_int) iacc += (uint64_t)kiln_dtype_load_i64(x->dtype, x->data, off);
        else acc += kiln_dtype_load_f64(x->dtype, x->data, off);
        if (!p->exclusive) {
          if (is_int) kiln_dtype_store_i64(y->dtype, y->data, off, (int64_t)iacc);
          else kiln_dtype_store_f64(y->dtype, y->data, off, acc);
        }
      }
    }
  return NULL;
}

/* ---- TopK -------------------------------------------------------------------------------------------- */
typedef struct topk_ctx {
  kiln_dtype dt;
  const void *vals; /* the gathered slice, contiguous */
  bool largest;
} topk_ctx;

/* true when slice element i must come before j: by value, ties by lower index (ONNX's rule). */
static bool topk_before(const topk_ctx *c, int64_t i, int64_t j) {
  int r = elem_cmp(c->dt, c->vals, i, j);
  if (r != 0) return c->largest ? r > 0 : r < 0;
  return i < j;
}

/* Merge sort of the index array (the order above is total, so any correct sort gives the same result). */
static void topk_sort(const topk_ctx *c, int64_t *idx, int64_t *tmp, int64_t n) {
  if (n < 2) return;
  int64_t h = n / 2;
  topk_sort(c, idx, tmp, h);
  topk_sort(c, idx + h, tmp, n - h);
  int64_t i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = topk_before(c, idx[j], idx[i]) ? idx[j++] : idx[i++];
  while (i < h) tmp[k++] = idx[i++];
  while (j < n) tmp[k++] = idx[j++];
  memcpy(idx, tmp, sizeof(int64_t) * (size_t)n);
}

static kiln_status ref_topk(const kiln_reduce_params *p, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_tensor *x = &in[0];
  if (x->rank == 0) return kiln_error(KILN_ERR_SHAPE, "TopK needs an input of rank >= 1");
  int32_t a;
  KILN_TRY(kiln_normalize_axis(p->axis, x->rank, &a));
  int64_t k = p->k;
  if (k < 0) {
    if (!in[1].data || kiln_tensor_numel(&in[1]) != 1) return kiln_error(KILN_ERR_SHAPE, "K must be a 1-element tensor");
    k = kiln_dtype_load_i64(in[1].dtype, in[1].data, 0);
  }
  int64_t outer, len, inner;
  split_axis(x, a, &outer, &len, &inner);
  if (k < 0 || k > len) return kiln_error(KILN_ERR_SHAPE, "K = %" PRId64 " is outside [0, %" PRId64 "]", k, len);
  if (out[0].dims[a] != k || (out[1].data && out[1].dims[a] != k))
    return kiln_error(KILN_ERR_SHAPE, "outputs do not have K = %" PRId64 " along axis %d", k, a);
  size_t es = kiln_dtype_size(x->dtype);
  uint8_t *slice = malloc(es * (size_t)(len > 0 ? len : 1));
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(len > 0 ? len : 1));
  int64_t *tmp = malloc(sizeof(int64_t) * (size_t)(len > 0 ? len : 1));
  if (!slice || !idx || !tmp) {
    free(slice), free(idx), free(tmp);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  topk_ctx c = {x->dtype, slice, p->largest};
  const uint8_t *xd = x->data;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in_ = 0; in_ < inner; in_++) {
      for (int64_t i = 0; i < len; i++) {
        memcpy(slice + es * (size_t)i, xd + es * (size_t)((o * len + i) * inner + in_), es);
        idx[i] = i;
      }
      topk_sort(&c, idx, tmp, len);
      /* sorted=0 allows any order; the sorted order is one of them and keeps results reproducible */
      for (int64_t j = 0; j < k; j++) {
        int64_t off = (o * k + j) * inner + in_;
        memcpy((uint8_t *)out[0].data + es * (size_t)off, slice + es * (size_t)idx[j], es);
        if (out[1].data) ((int64_t *)out[1].data)[off] = idx[j];
      }
    }
  free(slice), free(idx), free(tmp);
  return NULL;
}

/* ---- ArgMax / ArgMin --------------------------------------------------------------------------------- */
static kiln_status ref_arg(const kiln_node *n, const kiln_reduce_params *p, const kiln_tensor *x, kiln_tensor *y) {
  int32_t a = 0;
  if (x->rank > 0) KILN_TRY(kiln_normalize_axis(p->axis, x->rank, &a));
  int64_t outer, len, inner;
  split_axis(x, a, &outer, &len, &inner);
  if (len == 0 && outer * inner > 0) return kiln_error(KILN_ERR_SHAPE, "cannot take ArgMax/ArgMin of an empty axis");
  int sign = n->op == KILN_OP_ArgMax ? 1 : -1;
  int64_t *yd = y->data;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in_ = 0; in_ < inner; in_++) {
      int64_t base = o * len * inner + in_, best = 0;
      for (int64_t i = 1; i < len; i++) {
        int r = sign * elem_cmp(x->dtype, x->data, base + i * inner, base + best * inner);
        if (r > 0 || (r == 0 && p->select_last_index)) best = i;
      }
      yd[o * inner + in_] = best;
    }
  return NULL;
}

kiln_status kiln_ref_reduce(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_reduce_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  switch (n->op) {
  case KILN_OP_Softmax: case KILN_OP_LogSoftmax: case KILN_OP_Hardmax: return ref_softmax(n, p, &in[0], &out[0]);
  case KILN_OP_ReduceMean: case KILN_OP_ReduceSum: case KILN_OP_ReduceMax: case KILN_OP_ReduceMin:
  case KILN_OP_ReduceProd: case KILN_OP_ReduceL1: case KILN_OP_ReduceL2: case KILN_OP_ReduceSumSquare:
  case KILN_OP_ReduceLogSum: case KILN_OP_ReduceLogSumExp: return ref_reduce_x(n, p, in, &out[0]);
  case KILN_OP_CumSum: return ref_cumsum(p, in, &out[0]);
  case KILN_OP_TopK: return ref_topk(p, in, out);
  case KILN_OP_ArgMax: case KILN_OP_ArgMin: return ref_arg(n, p, &in[0], &out[0]);
  default: return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the reduce family", n->op_type);
  }
}

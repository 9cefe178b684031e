/* index family: reference kernels. Gathers move elements by size; scatters with a reduction compute
 * in double (floats) or 64-bit integers (ints, wrapping like the narrower type would). Every index is
 * checked: negative ones wrap once, anything else out of range is an error, never an out-of-bounds read. */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/index.h"
#include "ir/ops/shape.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void strides_of(int32_t rank, const int64_t *dims, int64_t *st) {
  int64_t s = 1;
  for (int32_t i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s *= dims[i];
  }
}

/* Index element i of t, wrapped into [0, dim); error if outside [-dim, dim). */
static kiln_status load_index(const kiln_tensor *t, int64_t i, int64_t dim, int64_t *out) {
  int64_t v = kiln_dtype_load_i64(t->dtype, t->data, i);
  if (v < -dim || v >= dim) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "index %" PRId64 " is out of range [-%" PRId64 ", %" PRId64 ")", v, dim, dim);
  *out = v < 0 ? v + dim : v;
  return NULL;
}

/* dst[di] = reduce(dst[di], src[si]). */
static void combine(kiln_dtype dt, void *dst, int64_t di, const void *src, int64_t si, int32_t red, size_t es) {
  if (red == KILN_SCATTER_NONE) {
    memcpy((char *)dst + (size_t)di * es, (const char *)src + (size_t)si * es, es);
    return;
  }
  if (kiln_dtype_is_float(dt)) {
    double a = kiln_dtype_load_f64(dt, dst, di), b = kiln_dtype_load_f64(dt, src, si), r = a;
    switch (red) {
    case KILN_SCATTER_ADD: r = a + b; break;
    case KILN_SCATTER_MUL: r = a * b; break;
    case KILN_SCATTER_MAX: r = (b > a || b != b) ? b : a; break;
    case KILN_SCATTER_MIN: r = (b < a || b != b) ? b : a; break;
    }
    kiln_dtype_store_f64(dt, dst, di, r);
    return;
  }
  if (dt == KILN_DTYPE_BOOL) {
    uint8_t *d = (uint8_t *)dst + di;
    uint8_t b = ((const uint8_t *)src)[si] != 0;
    if (red == KILN_SCATTER_ADD || red == KILN_SCATTER_MAX) *d = *d || b;
    else *d = *d && b;
    return;
  }
  int64_t a = kiln_dtype_load_i64(dt, dst, di), b = kiln_dtype_load_i64(dt, src, si), r = a;
  bool uns = dt == KILN_DTYPE_UINT64;
  switch (red) {
  case KILN_SCATTER_ADD: r = (int64_t)((uint64_t)a + (uint64_t)b); break; /* wraps, no UB */
  case KILN_SCATTER_MUL: r = (int64_t)((uint64_t)a * (uint64_t)b); break;
  case KILN_SCATTER_MAX: r = uns ? ((uint64_t)b > (uint64_t)a ? b : a) : (b > a ? b : a); break;
  case KILN_SCATTER_MIN: r = uns ? ((uint64_t)b < (uint64_t)a ? b : a) : (b < a ? b : a); break;
  }
  kiln_dtype_store_i64(dt, dst, di, r);
}

static kiln_status ref_gather(const kiln_node *n, const kiln_index_params *p, const kiln_tensor *in, kiln_tensor *out,
                              size_t es) {
  const kiln_tensor *x = &in[0], *idx = &in[1];
  int32_t a = (int32_t)(p->axis < 0 ? p->axis + x->rank : p->axis);
  int64_t outer = 1, inner = 1, dim = x->dims[a], ni = kiln_tensor_numel(idx);
  for (int32_t d = 0; d < a; d++) outer *= x->dims[d];
  for (int32_t d = a + 1; d < x->rank; d++) inner *= x->dims[d];
  size_t chunk = (size_t)inner * es;
  char *o = out->data;
  for (int64_t i = 0; i < ni; i++) { /* validate first so a bad index leaves no partial work to trust */
    int64_t k = 0;
    KILN_TRY(load_index(idx, i, dim, &k));
  }
  for (int64_t ou = 0; ou < outer; ou++)
    for (int64_t i = 0; i < ni; i++) {
      int64_t k = 0;
      KILN_TRY(load_index(idx, i, dim, &k));
      if (chunk) memcpy(o + (size_t)(ou * ni + i) * chunk, (const char *)x->data + (size_t)(ou * dim + k) * chunk, chunk);
    }
  return NULL;
}

/* GatherElements and ScatterElements: walk every element of indices; its data position is its own
 * position with the axis coordinate replaced by the index. */
static kiln_status ref_elements(const kiln_node *n, const kiln_index_params *p, const kiln_tensor *in, kiln_tensor *out,
                                size_t es) {
  const kiln_tensor *x = &in[0], *idx = &in[1];
  int32_t rank = x->rank, a = (int32_t)(p->axis < 0 ? p->axis + rank : p->axis);
  int64_t xst[KILN_MAX_RANK], pos[KILN_MAX_RANK] = {0}, ni = kiln_tensor_numel(idx);
  strides_of(rank, x->dims, xst);
  bool scatter = n->op == KILN_OP_ScatterElements;
  if (scatter && kiln_tensor_nbytes(x)) memcpy(out->data, x->data, kiln_tensor_nbytes(x));
  for (int32_t d = 0; d < rank; d++)
    if (d != a && idx->dims[d] > x->dims[d]) return kiln_error(KILN_ERR_SHAPE, "indices are larger than data in dim %d", d);
  if (scatter) {
    bool same = in[2].rank == idx->rank;
    for (int32_t d = 0; same && d < rank; d++) same = in[2].dims[d] == idx->dims[d];
    if (!same) return kiln_error(KILN_ERR_SHAPE, "indices and updates must have the same shape");
  }
  for (int64_t i = 0; i < ni; i++) {
    int64_t k = 0, off = 0;
    KILN_TRY(load_index(idx, i, x->dims[a], &k));
    for (int32_t d = 0; d < rank; d++) off += (d == a ? k : pos[d]) * xst[d];
    if (scatter) combine(x->dtype, out->data, off, in[2].data, i, p->reduction, es);
    else memcpy((char *)out->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
    for (int32_t d = rank - 1; d >= 0; d--) {
      if (++pos[d] < idx->dims[d]) break;
      pos[d] = 0;
    }
  }
  return NULL;
}

/* GatherND and ScatterND: indices [..., m] address slices of data. */
static kiln_status ref_nd(const kiln_node *n, const kiln_index_params *p, const kiln_tensor *in, kiln_tensor *out,
                          size_t es) {
  const kiln_tensor *x = &in[0], *idx = &in[1];
  bool scatter = n->op == KILN_OP_ScatterND;
  int64_t b = scatter ? 0 : p->batch_dims, m = idx->dims[idx->rank - 1];
  int64_t xst[KILN_MAX_RANK];
  strides_of(x->rank, x->dims, xst);
  int64_t batch = 1, tuples = 1, slice = 1;
  for (int32_t d = 0; d < b; d++) batch *= x->dims[d];
  for (int32_t d = (int32_t)b; d < idx->rank - 1; d++) tuples *= idx->dims[d];
  for (int32_t d = (int32_t)(b + m); d < x->rank; d++) slice *= x->dims[d];
  int64_t batch_stride = b > 0 ? xst[b - 1] : 0; /* elements per batch entry of data */
  if (scatter && kiln_tensor_nbytes(x)) memcpy(out->data, x->data, kiln_tensor_nbytes(x));
  for (int64_t bi = 0; bi < batch; bi++)
    for (int64_t t = 0; t < tuples; t++) {
      int64_t off = bi * batch_stride, row = bi * tuples + t;
      for (int64_t j = 0; j < m; j++) {
        int64_t k = 0;
        KILN_TRY(load_index(idx, row * m + j, x->dims[b + j], &k));
        off += k * xst[b + j];
      }
      if (scatter) {
        for (int64_t e = 0; e < slice; e++) combine(x->dtype, out->data, off + e, in[2].data, row * slice + e, p->reduction, es);
      } else if (slice) {
        memcpy((char *)out->data + (size_t)(row * slice) * es, (const char *)x->data + (size_t)off * es, (size_t)slice * es);
      }
    }
  return NULL;
}

static kiln_status ref_onehot(const kiln_index_params *p, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_tensor *idx = &in[0], *vals = &in[2];
  if (kiln_tensor_numel(vals) != 2) return kiln_error(KILN_ERR_SHAPE, "'values' must have two elements");
  if (vals->dtype != out->dtype) return kiln_error(KILN_ERR_SHAPE, "'values' and output dtypes differ");
  int32_t rank = out->rank, a = (int32_t)(p->axis < 0 ? p->axis + rank : p->axis);
  int64_t depth = out->dims[a], outer = 1, inner = 1;
  for (int32_t d = 0; d < a; d++) outer *= out->dims[d];
  for (int32_t d = a + 1; d < rank; d++) inner *= out->dims[d];
  size_t es = kiln_dtype_size(out->dtype);
  const char *off = vals->data, *on = (const char *)vals->data + es;
  char *o = out->data;
  for (int64_t ou = 0; ou < outer; ou++)
    for (int64_t dd = 0; dd < depth; dd++)
      for (int64_t in_ = 0; in_ < inner; in_++) {
        /* Indices may be of any numeric type; ONNX casts them to integers. */
        int64_t k = kiln_dtype_load_i64(idx->dtype, idx->data, ou * inner + in_);
        if (k < 0) k += depth;
        memcpy(o + (size_t)((ou * depth + dd) * inner + in_) * es, k == dd ? on : off, es);
      }
  return NULL;
}

static kiln_status ref_run(const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  const kiln_index_params *p = n->params;
  size_t es = kiln_dtype_size(in[0].dtype);
  if (!es) return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(in[0].dtype));
  switch (n->op) {
  case KILN_OP_Gather:
  case KILN_OP_GatherElements:
  case KILN_OP_GatherND:
  case KILN_OP_ScatterElements:
  case KILN_OP_ScatterND:
    if (in[1].dtype != KILN_DTYPE_INT32 && in[1].dtype != KILN_DTYPE_INT64)
      return kiln_error(KILN_ERR_SHAPE, "indices must be int32 or int64");
    if (n->n_inputs > 2 && in[2].dtype != in[0].dtype) return kiln_error(KILN_ERR_SHAPE, "updates and data dtypes differ");
    if (n->op == KILN_OP_Gather) return ref_gather(n, p, in, out, es);
    if (n->op == KILN_OP_GatherND || n->op == KILN_OP_ScatterND) return ref_nd(n, p, in, out, es);
    return ref_elements(n, p, in, out, es);
  case KILN_OP_OneHot: return ref_onehot(p, in, out);
  case KILN_OP_NonZero: {
    const kiln_tensor *x = &in[0];
    int32_t r = x->rank == 0 ? 1 : x->rank;
    int64_t ne = kiln_tensor_numel(x), nnz = out->dims[1], j = 0, pos[KILN_MAX_RANK] = {0};
    int64_t *o = out->data;
    for (int64_t i = 0; i < ne; i++) {
      bool nz;
      if (kiln_dtype_is_float(x->dtype)) nz = kiln_dtype_load_f64(x->dtype, x->data, i) != 0.0;
      else {
        nz = false;
        for (size_t k = 0; k < es; k++) nz = nz || ((const unsigned char *)x->data)[(size_t)i * es + k];
      }
      if (nz) {
        if (j >= nnz) return kiln_error(KILN_ERR_SHAPE, "output is too small for the nonzeros");
        for (int32_t d = 0; d < r; d++) o[d * nnz + j] = x->rank == 0 ? 0 : pos[d];
        j++;
      }
      for (int32_t d = x->rank - 1; d >= 0; d--) {
        if (++pos[d] < x->dims[d]) break;
        pos[d] = 0;
      }
    }
    return NULL;
  }
  case KILN_OP_Compress: {
    const kiln_tensor *x = &in[0], *c = &in[1];
    if (c->dtype != KILN_DTYPE_BOOL) return kiln_error(KILN_ERR_SHAPE, "condition must be bool");
    int64_t outer = 1, inner = 1, dim, cl = kiln_tensor_numel(c);
    if (p->has_axis) {
      int32_t a = (int32_t)(p->axis < 0 ? p->axis + x->rank : p->axis);
      dim = x->dims[a];
      for (int32_t d = 0; d < a; d++) outer *= x->dims[d];
      for (int32_t d = a + 1; d < x->rank; d++) inner *= x->dims[d];
    } else {
      dim = kiln_tensor_numel(x);
    }
    const uint8_t *cd = c->data;
    size_t chunk = (size_t)inner * es;
    char *o = out->data;
    for (int64_t ou = 0; ou < outer; ou++)
      for (int64_t k = 0; k < dim && k < cl; k++)
        if (cd[k] && chunk) {
          memcpy(o, (const char *)x->data + (size_t)(ou * dim + k) * chunk, chunk);
          o += chunk;
        }
    return NULL;
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the index family");
  }
}

kiln_status kiln_ref_index(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  if (!n->params) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  kiln_shape shp[3];
  kiln_tensor data[3];
  for (int32_t i = 0; i < 3; i++) {
    memset(&data[i], 0, sizeof data[i]);
    if (i < n->n_inputs) {
      kiln_shape_from_tensor(&in[i], &shp[i]);
      data[i] = in[i];
    } else {
      kiln_shape_unknown(&shp[i]);
    }
  }
  if (in[0].dtype == KILN_DTYPE_UNDEFINED) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "input 0 is missing");
  kiln_shape exp;
  KILN_TRY(kiln_index_resolve(n, shp, data, &exp));
  KILN_TRY(kiln_shape_check_output(&out[0], 0, &exp));
  return ref_run(n, in, out);
}

/* shape family: reference kernels. They only move elements, so they work on element size and never
 * look at the dtype (except Pad's fill value). Parameters come from kiln_shape_resolve, the same
 * function shape inference uses, and the preallocated output shapes are checked against it. */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/shape.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Row-major element strides of dims. */
static void strides_of(int32_t rank, const int64_t *dims, int64_t *st) {
  int64_t s = 1;
  for (int32_t i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s *= dims[i];
  }
}

/* Copy every element of an output of `dims` from src at per-axis element strides (may be 0 or
 * negative); the one loop behind Slice, Transpose, Expand, DepthToSpace and SpaceToDepth. */
static void strided_copy(size_t es, int32_t rank, const int64_t *dims, const int64_t *strides, const char *src,
                         char *dst) {
  int64_t total = 1;
  for (int32_t a = 0; a < rank; a++) total *= dims[a];
  if (total == 0) return;
  int64_t idx[KILN_MAX_RANK] = {0}, off = 0;
  for (int64_t i = 0; i < total; i++) {
    memcpy(dst + (size_t)i * es, src + off * (int64_t)es, es);
    for (int32_t a = rank - 1; a >= 0; a--) {
      idx[a]++;
      off += strides[a];
      if (idx[a] < dims[a]) break;
      off -= strides[a] * dims[a];
      idx[a] = 0;
    }
  }
}

/* A 4-D <-> 6-D rearrangement: view the input as `vdims` (row-major), then permute by `perm`. */
static void permute_view(size_t es, int32_t rank, const int64_t *vdims, const int32_t *perm, const void *src, void *dst) {
  int64_t vst[KILN_MAX_RANK], od[KILN_MAX_RANK], ost[KILN_MAX_RANK];
  strides_of(rank, vdims, vst);
  for (int32_t i = 0; i < rank; i++) {
    od[i] = vdims[perm[i]];
    ost[i] = vst[perm[i]];
  }
  strided_copy(es, rank, od, ost, src, dst);
}

static kiln_status ref_pad(const kiln_node *n, const kiln_shape_params *p, const kiln_shape_resolved *r,
                           const kiln_tensor *in, kiln_tensor *out, size_t es) {
  const kiln_tensor *x = &in[0];
  int32_t rank = x->rank;
  /* The fill value, already in the data's dtype. */
  unsigned char fill[16] = {0};
  if (p->mode == KILN_PAD_CONSTANT) {
    if (n->n_inputs > 2 && in[2].dtype != KILN_DTYPE_UNDEFINED) {
      if (in[2].dtype != x->dtype) return kiln_error(KILN_ERR_SHAPE, "constant_value has a different dtype");
      if (kiln_tensor_numel(&in[2]) != 1) return kiln_error(KILN_ERR_SHAPE, "constant_value must have one element");
      memcpy(fill, in[2].data, es);
    } else {
      kiln_dtype_store_f64(x->dtype, fill, 0, p->pad_value);
    }
  }
  int64_t total = kiln_tensor_numel(out);
  if (total == 0) return NULL;
  for (int32_t d = 0; d < rank; d++) {
    int64_t dim = x->dims[d], b = r->pads[d], e = r->pads[rank + d];
    if (p->mode == KILN_PAD_CONSTANT || (b <= 0 && e <= 0)) continue;
    if (dim == 0) return kiln_error(KILN_ERR_SHAPE, "cannot pad an empty axis %d in this mode", d);
    if (p->mode == KILN_PAD_REFLECT && (b >= dim || e >= dim) && dim > 1)
      return kiln_error(KILN_ERR_SHAPE, "reflect pads of axis %d must be smaller than its size %" PRId64, d, dim);
  }
  int64_t xst[KILN_MAX_RANK];
  strides_of(rank, x->dims, xst);
  int64_t idx[KILN_MAX_RANK] = {0};
  const char *src = x->data;
  char *dst = out->data;
  for (int64_t i = 0; i < total; i++) {
    int64_t off = 0;
    bool outside = false;
    for (int32_t d = 0; d < rank; d++) {
      int64_t dim = x->dims[d], c = idx[d] - r->pads[d];
      if (c < 0 || c >= dim) {
        if (p->mode == KILN_PAD_CONSTANT) {
          outside = true;
          break;
        } else if (p->mode == KILN_PAD_EDGE) {
          c = c < 0 ? 0 : dim - 1;
        } else if (p->mode == KILN_PAD_WRAP) {
          c = ((c % dim) + dim) % dim;
        } else if (dim == 1) {
          c = 0;
        } else { /* reflect without repeating the edge: period 2*(dim-1) */
          int64_t per = 2 * (dim - 1);
          c = ((c % per) + per) % per;
          if (c >= dim) c = per - c;
        }
      }
      off += c * xst[d];
    }
    memcpy(dst + (size_t)i * es, outside ? (const char *)fill : src + off * (int64_t)es, es);
    for (int32_t d = rank - 1; d >= 0; d--) {
      if (++idx[d] < out->dims[d]) break;
      idx[d] = 0;
    }
  }
  return NULL;
}

static kiln_status ref_run(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out,
                           const kiln_shape_resolved *r) {
  const kiln_shape_params *p = n->params;
  const kiln_tensor *x = &in[0];
  size_t es = kiln_dtype_size(x->dtype);
  if (!es) return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(x->dtype));
  switch (n->op) {
  case KILN_OP_Reshape:
  case KILN_OP_Flatten:
  case KILN_OP_Squeeze:
  case KILN_OP_Unsqueeze:
    if (kiln_tensor_nbytes(x) != kiln_tensor_nbytes(&out[0]))
      return kiln_error(KILN_ERR_SHAPE, "input and output sizes differ");
    if (kiln_tensor_nbytes(x)) memcpy(out[0].data, x->data, kiln_tensor_nbytes(x));
    return NULL;
  case KILN_OP_Concat: {
    int32_t a = r->axis, rank = out[0].rank;
    int64_t outer = 1, inner = 1;
    for (int32_t d = 0; d < a; d++) outer *= out[0].dims[d];
    for (int32_t d = a + 1; d < rank; d++) inner *= out[0].dims[d];
    size_t row = (size_t)(out[0].dims[a] * inner) * es;
    size_t at = 0;
    for (int32_t i = 0; i < n->n_inputs; i++) {
      if (in[i].dtype != x->dtype) return kiln_error(KILN_ERR_SHAPE, "inputs have different dtypes");
      size_t chunk = (size_t)(in[i].dims[a] * inner) * es;
      for (int64_t o = 0; o < outer; o++)
        if (chunk) memcpy((char *)out[0].data + (size_t)o * row + at, (const char *)in[i].data + (size_t)o * chunk, chunk);
      at += chunk;
    }
    return NULL;
  }
  case KILN_OP_Split: {
    int32_t a = r->axis;
    int64_t outer = 1, inner = 1;
    for (int32_t d = 0; d < a; d++) outer *= x->dims[d];
    for (int32_t d = a + 1; d < x->rank; d++) inner *= x->dims[d];
    size_t row = (size_t)(x->dims[a] * inner) * es, at = 0;
    for (int32_t i = 0; i < n->n_outputs; i++) {
      size_t chunk = (size_t)(r->split[i] * inner) * es;
      if (out[i].data && chunk)
        for (int64_t o = 0; o < outer; o++)
          memcpy((char *)out[i].data + (size_t)o * chunk, (const char *)x->data + (size_t)o * row + at, chunk);
      at += chunk;
    }
    return NULL;
  }
  case KILN_OP_Slice: {
    int64_t st[KILN_MAX_RANK], ss[KILN_MAX_RANK], base = 0;
    strides_of(x->rank, x->dims, st);
    for (int32_t d = 0; d < x->rank; d++) {
      base += r->start[d] * st[d];
      ss[d] = r->step[d] * st[d];
    }
    if (kiln_tensor_numel(&out[0]) == 0) return NULL;
    strided_copy(es, out[0].rank, out[0].dims, ss, (const char *)x->data + base * (int64_t)es, out[0].data);
    return NULL;
  }
  case KILN_OP_Transpose: {
    permute_view(es, x->rank, x->dims, r->perm, x->data, out[0].data);
    return NULL;
  }
  case KILN_OP_Expand: {
    int64_t st[KILN_MAX_RANK], bs[KILN_MAX_RANK];
    strides_of(x->rank, x->dims, st);
    int32_t off = out[0].rank - x->rank;
    for (int32_t d = 0; d < out[0].rank; d++) {
      int32_t j = d - off;
      bs[d] = (j < 0 || x->dims[j] == 1) ? 0 : st[j];
    }
    strided_copy(es, out[0].rank, out[0].dims, bs, x->data, out[0].data);
    return NULL;
  }
  case KILN_OP_Tile: {
    int64_t total = kiln_tensor_numel(&out[0]), st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    strides_of(x->rank, x->dims, st);
    for (int64_t i = 0; i < total; i++) {
      int64_t off = 0;
      for (int32_t d = 0; d < x->rank; d++) off += (idx[d] % x->dims[d]) * st[d];
      memcpy((char *)out[0].data + (size_t)i * es, (const char *)x->data + off * (int64_t)es, es);
      for (int32_t d = x->rank - 1; d >= 0; d--) {
        if (++idx[d] < out[0].dims[d]) break;
        idx[d] = 0;
      }
    }
    return NULL;
  }
  case KILN_OP_Pad: return ref_pad(n, p, r, in, out, es);
  case KILN_OP_DepthToSpace: {
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], b = p->blocksize;
    if (p->mode == KILN_D2S_DCR) {
      int64_t v[6] = {N, b, b, C / (b * b), H, W};
      int32_t perm[6] = {0, 3, 4, 1, 5, 2};
      permute_view(es, 6, v, perm, x->data, out[0].data);
    } else {
      int64_t v[6] = {N, C / (b * b), b, b, H, W};
      int32_t perm[6] = {0, 1, 4, 2, 5, 3};
      permute_view(es, 6, v, perm, x->data, out[0].data);
    }
    return NULL;
  }
  case KILN_OP_SpaceToDepth: {
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], b = p->blocksize;
    int64_t v[6] = {N, C, H / b, b, W / b, b};
    int32_t perm[6] = {0, 3, 5, 1, 2, 4};
    permute_view(es, 6, v, perm, x->data, out[0].data);
    return NULL;
  }
  case KILN_OP_Trilu: {
    int64_t k = 0;
    if (n->n_inputs > 1 && in[1].dtype != KILN_DTYPE_UNDEFINED) {
      if (!kiln_dtype_is_int(in[1].dtype) || kiln_tensor_numel(&in[1]) != 1)
        return kiln_error(KILN_ERR_SHAPE, "'k' must be an integer scalar");
      k = kiln_dtype_load_i64(in[1].dtype, in[1].data, 0);
    }
    int64_t M = x->dims[x->rank - 2], N = x->dims[x->rank - 1], batch = 1;
    for (int32_t d = 0; d < x->rank - 2; d++) batch *= x->dims[d];
    const char *s = x->data;
    char *o = out[0].data;
    for (int64_t bi = 0; bi < batch; bi++)
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
          size_t at = (size_t)((bi * M + i) * N + j) * es;
          /* j - i compared with k without overflow: k may be any int64 */
          bool keep = p->upper ? ((double)j - (double)i >= (double)k) : ((double)j - (double)i <= (double)k);
          if (keep) memcpy(o + at, s + at, es);
          else memset(o + at, 0, es); /* all-zero bytes are 0 in every dtype kiln holds */
        }
    return NULL;
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the shape family");
  }
}

kiln_status kiln_ref_shape(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  int32_t nin = n->n_inputs, nout = n->n_outputs, nints = nin < 5 ? 5 : nin;
  if (nin < 1 || in[0].dtype == KILN_DTYPE_UNDEFINED) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "input 0 is missing");
  kiln_shape *shp = malloc(sizeof(kiln_shape) * (size_t)nin);
  kiln_ints *ints = malloc(sizeof(kiln_ints) * (size_t)nints);
  kiln_shape *exp = malloc(sizeof(kiln_shape) * (size_t)nout);
  kiln_shape_resolved *r = malloc(sizeof *r);
  kiln_status st = NULL;
  if (!shp || !ints || !exp || !r) {
    st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (int32_t i = 0; i < nints; i++) ints[i].known = false, ints[i].n = 0;
  for (int32_t i = 0; i < nin; i++) {
    kiln_shape_from_tensor(&in[i], &shp[i]);
    if (i > 0 && in[i].dtype != KILN_DTYPE_UNDEFINED && n->op != KILN_OP_Concat && !(n->op == KILN_OP_Pad && i == 2)) {
      if (!kiln_dtype_is_int(in[i].dtype)) {
        st = kiln_error(KILN_ERR_SHAPE, "input %d must be an integer tensor", i);
        goto done;
      }
      kiln_ints_from_tensor(&in[i], &ints[i]);
      if (!ints[i].known) {
        st = kiln_error(KILN_ERR_UNSUPPORTED, "input %d has more than %d elements", i, KILN_INTS_MAX);
        goto done;
      }
    }
  }
  st = kiln_shape_resolve(g, n, shp, ints, r, exp);
  for (int32_t i = 0; !st && i < nout; i++)
    if (out[i].data) st = kiln_shape_check_output(&out[i], i, &exp[i]);
  if (!st) st = ref_run(g, n, in, out, r);
done:
  free(shp);
  free(ints);
  free(exp);
  free(r);
  return st;
}

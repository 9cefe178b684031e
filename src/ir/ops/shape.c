/* shape family: parse / infer / macs, plus the integer-input helpers the index and source families share. */
#include "ir/ops/shape.h"

#include "backend/cpu/reference/reference.h"
#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ------------------------------------------------------------------------------ */
void kiln_ints_from_value(const kiln_value *v, kiln_ints *out) {
  out->known = false;
  out->n = 0;
  if (!v || !v->data || !(kiln_dtype_is_int(v->dtype) || v->dtype == KILN_DTYPE_BOOL)) return;
  int64_t n = kiln_shape_numel(&v->shape);
  if (n < 0 || n > KILN_INTS_MAX) return;
  for (int64_t i = 0; i < n; i++) out->v[i] = kiln_dtype_load_i64(v->dtype, v->data, i);
  out->n = n;
  out->known = true;
}

void kiln_ints_from_tensor(const kiln_tensor *t, kiln_ints *out) {
  out->known = false;
  out->n = 0;
  if (!t || !(kiln_dtype_is_int(t->dtype) || t->dtype == KILN_DTYPE_BOOL)) return;
  int64_t n = kiln_tensor_numel(t);
  if (n < 0 || n > KILN_INTS_MAX || (n > 0 && !t->data)) return;
  for (int64_t i = 0; i < n; i++) out->v[i] = kiln_dtype_load_i64(t->dtype, t->data, i);
  out->n = n;
  out->known = true;
}

void kiln_shape_from_tensor(const kiln_tensor *t, kiln_shape *out) {
  if (!t || t->dtype == KILN_DTYPE_UNDEFINED) {
    kiln_shape_unknown(out);
    return;
  }
  kiln_shape_init(out, t->rank, t->dims);
}

kiln_status kiln_shape_check_output(const kiln_tensor *out, int idx, const kiln_shape *expect) {
  bool ok = expect->rank == out->rank;
  for (int32_t i = 0; ok && i < out->rank; i++) ok = expect->dims[i] == out->dims[i];
  if (!ok)
    return kiln_error(KILN_ERR_SHAPE, "output %d was allocated with a shape that differs from the one its inputs give",
                      idx);
  return NULL;
}

void kiln_shape_clear_folded(kiln_graph *g, const kiln_node *n) {
  for (int32_t i = 0; i < n->n_outputs; i++) {
    if (n->outputs[i] < 0) continue;
    kiln_value *v = &g->values[n->outputs[i]];
    /* Values folded by the constant-folding pass lose their producer; ours still have it. */
    if (v->data && !(v->flags & KILN_VALUE_INITIALIZER)) {
      free(v->data);
      v->data = NULL;
      v->nbytes = 0;
    }
  }
}

kiln_status kiln_shape_fold_small(kiln_graph *g, const kiln_node *n) {
  enum { MAX_IO = 16 };
  if (n->n_inputs > MAX_IO || n->n_outputs > MAX_IO || n->n_outputs < 1) return NULL;
  kiln_tensor in[MAX_IO], out[MAX_IO];
  for (int32_t i = 0; i < n->n_inputs; i++) {
    const kiln_value *v = kiln_node_input(g, n, i);
    memset(&in[i], 0, sizeof in[i]);
    if (!v) continue;
    if (!v->data || v->shape.rank < 0) return NULL;
    kiln_value_as_tensor(v, &in[i]);
  }
  for (int32_t i = 0; i < n->n_outputs; i++) {
    const kiln_value *v = kiln_node_output(g, n, i);
    memset(&out[i], 0, sizeof out[i]);
    if (!v) continue;
    int64_t ne = kiln_shape_numel(&v->shape);
    if (ne < 0 || ne > KILN_INTS_MAX || !kiln_dtype_is_valid(v->dtype)) return NULL;
    kiln_value_as_tensor(v, &out[i]);
  }
  kiln_status st = NULL;
  int32_t done = 0;
  for (; done < n->n_outputs; done++) {
    if (n->outputs[done] < 0) continue;
    out[done].data = malloc(kiln_tensor_nbytes(&out[done]) + 1);
    if (!out[done].data) {
      st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory folding a shape tensor");
      break;
    }
  }
  if (!st) st = kiln_reference_run(g, n, in, out);
  for (int32_t i = 0; i < n->n_outputs; i++) {
    if (n->outputs[i] < 0 || !out[i].data) continue;
    if (!st) {
      kiln_value *v = &g->values[n->outputs[i]];
      kiln_shape s = v->shape;
      st = kiln_value_take_constant(g, n->outputs[i], v->dtype, &s, out[i].data);
    } else {
      free(out[i].data);
    }
  }
  return st;
}

/* ---- parse --------------------------------------------------------------------------------------- */
static kiln_status ints_from_attr(const kiln_node *n, const char *name, kiln_ints *out) {
  const int64_t *v;
  size_t cnt;
  out->known = false;
  out->n = 0;
  KILN_TRY(kiln_node_get_ints(n, name, &v, &cnt));
  if (!kiln_node_find_attr(n, name)) return NULL;
  if (cnt > KILN_INTS_MAX)
    return kiln_error(KILN_ERR_UNSUPPORTED, "attribute '%s' has %zu entries (kiln supports %d)", name, cnt,
                      KILN_INTS_MAX);
  for (size_t i = 0; i < cnt; i++) out->v[i] = v[i];
  out->n = (int64_t)cnt;
  out->known = true;
  return NULL;
}

static kiln_status parse_params(kiln_graph *g, kiln_node *n, kiln_shape_params *p) {
  int64_t op = g->opset;
  switch (n->op) {
  case KILN_OP_Concat:
    KILN_TRY(kiln_check_arity(n, 1, 1 << 20, 1, 1));
    if (!kiln_node_find_attr(n, "axis")) return kiln_error(KILN_ERR_PARSE, "attribute 'axis' is required");
    return kiln_node_get_int(n, "axis", 0, &p->axis);
  case KILN_OP_Split:
    if (op >= 13) KILN_TRY(kiln_check_arity(n, 1, 2, 1, KILN_INTS_MAX));
    else KILN_TRY(kiln_check_arity(n, 1, 1, 1, KILN_INTS_MAX));
    KILN_TRY(kiln_node_get_int(n, "axis", 0, &p->axis));
    if (op < 13) KILN_TRY(ints_from_attr(n, "split", &p->a));
    if (op >= 18) {
      KILN_TRY(kiln_node_get_int(n, "num_outputs", 0, &p->num_outputs));
      if (kiln_node_find_attr(n, "num_outputs") && p->num_outputs != n->n_outputs)
        return kiln_error(KILN_ERR_PARSE, "attribute 'num_outputs' = %" PRId64 " but the node has %d outputs",
                          p->num_outputs, n->n_outputs);
    }
    return NULL;
  case KILN_OP_Slice:
    if (op < 10) {
      KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
      KILN_TRY(ints_from_attr(n, "starts", &p->a));
      KILN_TRY(ints_from_attr(n, "ends", &p->b));
      KILN_TRY(ints_from_attr(n, "axes", &p->c));
      if (!p->a.known || !p->b.known)
        return kiln_error(KILN_ERR_PARSE, "attributes 'starts' and 'ends' are required");
      if (p->a.n != p->b.n || (p->c.known && p->c.n != p->a.n))
        return kiln_error(KILN_ERR_PARSE, "'starts', 'ends' and 'axes' must have the same length");
      return NULL;
    }
    return kiln_check_arity(n, 3, 5, 1, 1);
  case KILN_OP_Reshape: {
    KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1));
    int64_t az = 0;
    KILN_TRY(kiln_node_get_int(n, "allowzero", 0, &az));
    if (az != 0 && az != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'allowzero' = %" PRId64 " is not 0 or 1", az);
    p->allowzero = az == 1;
    return NULL;
  }
  case KILN_OP_Flatten:
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    return kiln_node_get_int(n, "axis", 1, &p->axis);
  case KILN_OP_Squeeze:
  case KILN_OP_Unsqueeze:
    if (op >= 13) {
      KILN_TRY(kiln_check_arity(n, n->op == KILN_OP_Unsqueeze ? 2 : 1, 2, 1, 1));
      return NULL;
    }
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    KILN_TRY(ints_from_attr(n, "axes", &p->a));
    if (n->op == KILN_OP_Unsqueeze && !p->a.known) return kiln_error(KILN_ERR_PARSE, "attribute 'axes' is required");
    return NULL;
  case KILN_OP_Transpose:
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    return ints_from_attr(n, "perm", &p->a);
  case KILN_OP_Expand:
  case KILN_OP_Tile:
    return kiln_check_arity(n, 2, 2, 1, 1);
  case KILN_OP_Pad: {
    const char *mode;
    KILN_TRY(kiln_node_get_string(n, "mode", "constant", &mode));
    if (strcmp(mode, "constant") == 0) p->mode = KILN_PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0) p->mode = KILN_PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0) p->mode = KILN_PAD_EDGE;
    else if (strcmp(mode, "wrap") == 0 && op >= 19) p->mode = KILN_PAD_WRAP;
    else return kiln_error(KILN_ERR_PARSE, "attribute 'mode' = '%s' is not one of constant, reflect, edge", mode);
    if (op < 11) {
      KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
      KILN_TRY(ints_from_attr(n, "pads", &p->a));
      if (!p->a.known) KILN_TRY(ints_from_attr(n, "paddings", &p->a)); /* opset 1 spelling */
      if (!p->a.known) return kiln_error(KILN_ERR_PARSE, "attribute 'pads' is required");
      float v = 0;
      KILN_TRY(kiln_node_get_float(n, "value", 0.0f, &v));
      p->pad_value = v;
      return NULL;
    }
    return kiln_check_arity(n, 2, op >= 18 ? 4 : 3, 1, 1);
  }
  case KILN_OP_DepthToSpace:
  case KILN_OP_SpaceToDepth: {
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    if (!kiln_node_find_attr(n, "blocksize")) return kiln_error(KILN_ERR_PARSE, "attribute 'blocksize' is required");
    KILN_TRY(kiln_node_get_int(n, "blocksize", 0, &p->blocksize));
    if (p->blocksize < 1 || p->blocksize > (1 << 16))
      return kiln_error(KILN_ERR_PARSE, "attribute 'blocksize' = %" PRId64 " must be positive", p->blocksize);
    if (n->op == KILN_OP_DepthToSpace) {
      const char *mode;
      KILN_TRY(kiln_node_get_string(n, "mode", "DCR", &mode));
      if (strcmp(mode, "DCR") == 0) p->mode = KILN_D2S_DCR;
      else if (strcmp(mode, "CRD") == 0) p->mode = KILN_D2S_CRD;
      else return kiln_error(KILN_ERR_PARSE, "attribute 'mode' = '%s' is not one of DCR, CRD", mode);
    }
    return NULL;
  }
  case KILN_OP_Trilu: {
    KILN_TRY(kiln_check_arity(n, 1, 2, 1, 1));
    int64_t up = 1;
    KILN_TRY(kiln_node_get_int(n, "upper", 1, &up));
    if (up != 0 && up != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'upper' = %" PRId64 " is not 0 or 1", up);
    p->upper = up == 1;
    return NULL;
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the shape family");
  }
}

kiln_status kiln_shape_parse(kiln_graph *g, kiln_node *n) {
  kiln_shape_params *p = calloc(1, sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = parse_params(g, n, p);
  if (st) {
    free(p);
    return st;
  }
  kiln_node_set_params(n, p, NULL);
  return NULL;
}

/* ---- resolve: output shapes from input shapes and integer data --------------------------------- */
static int64_t sat_add(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
  return a + b;
}

/* Normalize a list of axes (for rank `rank`) into a bitmask; duplicates and out-of-range are errors. */
static kiln_status axes_mask(const kiln_ints *axes, int32_t rank, uint32_t *mask, int32_t *norm) {
  *mask = 0;
  for (int64_t i = 0; i < axes->n; i++) {
    int32_t a;
    KILN_TRY(kiln_normalize_axis(axes->v[i], rank, &a));
    if (*mask & (1u << a)) return kiln_error(KILN_ERR_SHAPE, "axis %" PRId64 " is given twice", axes->v[i]);
    *mask |= 1u << a;
    if (norm) norm[i] = a;
  }
  return NULL;
}

static kiln_status resolve_concat(const kiln_node *n, const kiln_shape_params *p, const kiln_shape *in,
                                  kiln_shape_resolved *r, kiln_shape *out) {
  int32_t rank = -1;
  for (int32_t i = 0; i < n->n_inputs; i++) {
    if (n->inputs[i] < 0) return kiln_error(KILN_ERR_PARSE, "input %d is missing", i);
    if (in[i].rank < 0) continue;
    if (rank >= 0 && in[i].rank != rank)
      return kiln_error(KILN_ERR_SHAPE, "inputs have different ranks (%d and %d)", rank, in[i].rank);
    rank = in[i].rank;
  }
  if (rank < 0) {
    kiln_shape_unknown(out);
    return NULL;
  }
  if (rank == 0) return kiln_error(KILN_ERR_SHAPE, "cannot concatenate scalars");
  KILN_TRY(kiln_normalize_axis(p->axis, rank, &r->axis));
  kiln_shape_dynamic(out, rank);
  int64_t sum = 0;
  bool sum_known = true;
  for (int32_t d = 0; d < rank; d++) {
    for (int32_t i = 0; i < n->n_inputs; i++) {
      if (in[i].rank < 0) {
        if (d == r->axis) sum_known = false;
        continue;
      }
      int64_t v = in[i].dims[d];
      if (d == r->axis) {
        if (v < 0) sum_known = false;
        else sum += v;
      } else if (v >= 0) {
        if (out->dims[d] >= 0 && out->dims[d] != v)
          return kiln_error(KILN_ERR_SHAPE, "inputs differ in dim %d (%" PRId64 " vs %" PRId64 ")", d, out->dims[d], v);
        out->dims[d] = v;
        out->sym[d] = -1;
      } else if (out->dims[d] < 0 && out->sym[d] < 0) {
        out->sym[d] = in[i].sym[d];
      }
    }
  }
  out->dims[r->axis] = sum_known ? sum : KILN_DIM_DYNAMIC;
  if (!sum_known) out->sym[r->axis] = -1;
  return NULL;
}

static kiln_status resolve_split(const kiln_graph *g, const kiln_node *n, const kiln_shape_params *p,
                                 const kiln_shape *in, const kiln_ints *ints, kiln_shape_resolved *r, kiln_shape *out) {
  int32_t nout = n->n_outputs;
  if (in[0].rank < 0) {
    for (int32_t i = 0; i < nout; i++) kiln_shape_unknown(&out[i]);
    return NULL;
  }
  KILN_TRY(kiln_normalize_axis(p->axis, in[0].rank, &r->axis));
  int64_t dim = in[0].dims[r->axis];
  const kiln_ints *sizes = NULL;
  bool sizes_unknown = false;
  if (g->opset < 13) {
    if (p->a.known) sizes = &p->a;
  } else if (n->n_inputs > 1 && n->inputs[1] >= 0) {
    if (ints[1].known) sizes = &ints[1];
    else sizes_unknown = true;
  }
  if (sizes) {
    if (sizes->n != nout)
      return kiln_error(KILN_ERR_SHAPE, "'split' has %" PRId64 " entries for %d outputs", sizes->n, nout);
    int64_t sum = 0;
    for (int32_t i = 0; i < nout; i++) {
      if (sizes->v[i] < 0 || sizes->v[i] > KILN_MAX_ELEMENTS)
        return kiln_error(KILN_ERR_SHAPE, "'split' entry %" PRId64 " is negative", sizes->v[i]);
      r->split[i] = sizes->v[i];
      sum += sizes->v[i];
    }
    if (dim >= 0 && sum != dim)
      return kiln_error(KILN_ERR_SHAPE, "'split' sums to %" PRId64 " but the axis has %" PRId64, sum, dim);
  } else if (!sizes_unknown && dim >= 0) {
    /* Equal parts; opset 18 allows the last one to be smaller (ceil-sized chunks). */
    int64_t chunk = (dim + nout - 1) / nout;
    if (g->opset < 18 && dim % nout != 0)
      return kiln_error(KILN_ERR_SHAPE, "axis of size %" PRId64 " cannot be split into %d equal parts", dim, nout);
    int64_t left = dim;
    for (int32_t i = 0; i < nout; i++) {
      r->split[i] = left < chunk ? left : chunk;
      left -= r->split[i];
    }
  } else {
    sizes_unknown = true;
  }
  for (int32_t i = 0; i < nout; i++) {
    out[i] = in[0];
    out[i].dims[r->axis] = sizes_unknown ? KILN_DIM_DYNAMIC : r->split[i];
    out[i].sym[r->axis] = -1;
  }
  return NULL;
}

/* Clamp one Slice axis the way ONNX does; count < 0 never happens. */
static void slice_axis(int64_t d, int64_t s, int64_t e, int64_t step, int64_t *start, int64_t *count) {
  if (s < 0) s = sat_add(s, d);
  if (e < 0) e = sat_add(e, d);
  if (step > 0) {
    s = s < 0 ? 0 : (s > d ? d : s);
    e = e < 0 ? 0 : (e > d ? d : e);
    *start = s;
    *count = e > s ? (e - s - 1) / step + 1 : 0;
  } else {
    s = s < 0 ? 0 : (s > d - 1 ? d - 1 : s);
    e = e < -1 ? -1 : (e > d - 1 ? d - 1 : e);
    *start = s;
    /* step < 0: -step fits since step > INT64_MIN is checked by the caller */
    *count = s > e ? (s - e - 1) / (-step) + 1 : 0;
  }
}

static kiln_status resolve_slice(const kiln_graph *g, const kiln_node *n, const kiln_shape_params *p,
                                 const kiln_shape *in, const kiln_ints *ints, kiln_shape_resolved *r, kiln_shape *out) {
  int32_t rank = in[0].rank;
  for (int32_t i = 0; i < KILN_MAX_RANK; i++) {
    r->start[i] = 0;
    r->step[i] = 1;
  }
  if (rank < 0) {
    kiln_shape_unknown(out);
    return NULL;
  }
  const kiln_ints *starts, *ends, *axes = NULL, *steps = NULL;
  if (g->opset < 10) {
    starts = &p->a;
    ends = &p->b;
    if (p->c.known) axes = &p->c;
  } else {
    starts = &ints[1];
    ends = &ints[2];
    if (n->n_inputs > 3 && n->inputs[3] >= 0) axes = &ints[3];
    if (n->n_inputs > 4 && n->inputs[4] >= 0) steps = &ints[4];
  }
  *out = in[0];
  bool all_known = starts->known && ends->known && (!axes || axes->known) && (!steps || steps->known);
  if (!all_known) {
    /* Which axes are sliced is known only if 'axes' is; otherwise any dim may change. */
    uint32_t mask = 0xffu;
    if (axes && axes->known) {
      if (axes_mask(axes, rank, &mask, NULL)) mask = 0xffu;
    } else if (!axes && starts->known) {
      mask = 0;
      for (int64_t i = 0; i < starts->n && i < rank; i++) mask |= 1u << i;
    }
    for (int32_t d = 0; d < rank; d++)
      if (mask & (1u << d)) {
        out->dims[d] = KILN_DIM_DYNAMIC;
        out->sym[d] = -1;
      }
    return NULL;
  }
  int64_t k = starts->n;
  if (ends->n != k || (axes && axes->n != k) || (steps && steps->n != k))
    return kiln_error(KILN_ERR_SHAPE, "'starts', 'ends', 'axes' and 'steps' must have the same length");
  if (k > rank) return kiln_error(KILN_ERR_SHAPE, "slices %" PRId64 " axes of a rank-%d tensor", k, rank);
  int32_t ax[KILN_INTS_MAX];
  uint32_t mask;
  if (axes) KILN_TRY(axes_mask(axes, rank, &mask, ax));
  else
    for (int64_t i = 0; i < k; i++) ax[i] = (int32_t)i;
  for (int64_t i = 0; i < k; i++) {
    int64_t step = steps ? steps->v[i] : 1;
    if (step == 0 || step == INT64_MIN) return kiln_error(KILN_ERR_SHAPE, "'steps' entry %" PRId64 " is invalid", step);
    int32_t a = ax[i];
    r->step[a] = step;
    int64_t d = in[0].dims[a];
    if (d < 0) {
      /* x[0:BIG] on a dynamic dim keeps it (and its symbol): exporters write that for "the whole axis". */
      bool whole = step == 1 && starts->v[i] == 0 && ends->v[i] >= INT32_MAX;
      if (!whole) {
        out->dims[a] = KILN_DIM_DYNAMIC;
        out->sym[a] = -1;
      }
      continue;
    }
    int64_t cnt;
    slice_axis(d, starts->v[i], ends->v[i], step, &r->start[a], &cnt);
    out->dims[a] = cnt;
  }
  return NULL;
}

/* The -1 of a Reshape whose input has dynamic dims can still be static when every dynamic input dim
 * reappears in the target (copied by a 0 entry or named by the same symbol): they cancel, e.g.
 * [batch,144,80,80] -> [0,144,-1] gives -1 = 6400. This is what keeps re-batched models static past
 * the batch. Leaves the dim dynamic when they do not cancel. */
static void reshape_cancel_dynamic(const kiln_ints *t, const kiln_shape_params *p, const kiln_shape *in, int32_t infer_at,
                                   kiln_shape *out) {
  bool used[KILN_MAX_RANK] = {false};
  int64_t in_known = 1, t_known = 1;
  for (int32_t i = 0; i < out->rank; i++) {
    if (i == infer_at) continue;
    if (out->dims[i] >= 0) {
      if (out->dims[i] == 0 || t_known > KILN_MAX_ELEMENTS / out->dims[i]) return;
      t_known *= out->dims[i];
      continue;
    }
    int32_t j = -1;
    if (t->v[i] == 0 && !p->allowzero && i < in->rank) j = i;
    else if (out->sym[i] >= 0)
      for (int32_t k = 0; k < in->rank && j < 0; k++)
        if (in->dims[k] < 0 && in->sym[k] == out->sym[i] && !used[k]) j = k;
    if (j < 0 || used[j]) return;
    used[j] = true;
  }
  for (int32_t k = 0; k < in->rank; k++) {
    if (in->dims[k] < 0) {
      if (!used[k]) return;
      continue;
    }
    if (in->dims[k] == 0 || in_known > KILN_MAX_ELEMENTS / in->dims[k]) return;
    in_known *= in->dims[k];
  }
  if (in_known % t_known == 0) out->dims[infer_at] = in_known / t_known;
}

static kiln_status resolve_reshape(const kiln_node *n, const kiln_shape_params *p, const kiln_shape *in,
                                   const kiln_ints *ints, kiln_shape *out) {
  const kiln_ints *t = &ints[1];
  if (!t->known) {
    if (in[1].rank == 1 && in[1].dims[0] >= 0 && in[1].dims[0] <= KILN_MAX_RANK) kiln_shape_dynamic(out, (int32_t)in[1].dims[0]);
    else if (in[1].rank == 1 && in[1].dims[0] > KILN_MAX_RANK)
      return kiln_error(KILN_ERR_UNSUPPORTED, "target rank %" PRId64 " exceeds %d", in[1].dims[0], KILN_MAX_RANK);
    else kiln_shape_unknown(out);
    return NULL;
  }
  if (in[1].rank > 1) return kiln_error(KILN_ERR_SHAPE, "the target shape must be 1-D");
  if (t->n > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_UNSUPPORTED, "target rank %" PRId64 " exceeds %d", t->n, KILN_MAX_RANK);
  int32_t rank = (int32_t)t->n;
  kiln_shape_dynamic(out, rank);
  int32_t infer_at = -1;
  bool has_zero = false;
  int64_t known_prod = 1;
  bool prod_known = true;
  for (int32_t i = 0; i < rank; i++) {
    int64_t v = t->v[i];
    if (v == -1) {
      if (infer_at >= 0) return kiln_error(KILN_ERR_SHAPE, "the target shape has more than one -1");
      infer_at = i;
      continue;
    }
    if (v < -1) return kiln_error(KILN_ERR_SHAPE, "the target shape has an invalid entry %" PRId64, v);
    if (v == 0 && !p->allowzero) {
      if (in[0].rank < 0) {
        prod_known = false;
        continue;
      }
      if (i >= in[0].rank)
        return kiln_error(KILN_ERR_SHAPE, "target entry %d is 0 (copy) but the input has rank %d", i, in[0].rank);
      out->dims[i] = in[0].dims[i];
      out->sym[i] = in[0].sym[i];
    } else {
      if (v == 0) has_zero = true;
      if (v > KILN_MAX_ELEMENTS) return kiln_error(KILN_ERR_SHAPE, "target entry %" PRId64 " is absurd", v);
      out->dims[i] = v;
    }
    if (out->dims[i] < 0) prod_known = false;
    else if (prod_known) {
      if (out->dims[i] && known_prod > KILN_MAX_ELEMENTS / out->dims[i])
        return kiln_error(KILN_ERR_SHAPE, "the target shape has too many elements");
      known_prod *= out->dims[i];
    }
  }
  if (has_zero && infer_at >= 0) return kiln_error(KILN_ERR_SHAPE, "allowzero target has both 0 and -1");
  int64_t total = kiln_shape_numel(&in[0]);
  if (infer_at >= 0) {
    if (total >= 0 && prod_known) {
      if (known_prod == 0 || total % known_prod != 0)
        return kiln_error(KILN_ERR_SHAPE, "cannot reshape %" PRId64 " elements: the other dims give %" PRId64, total,
                          known_prod);
      out->dims[infer_at] = total / known_prod;
    } else if (in[0].rank >= 0) {
      reshape_cancel_dynamic(t, p, &in[0], infer_at, out);
    }
  } else if (total >= 0 && prod_known && total != known_prod) {
    return kiln_error(KILN_ERR_SHAPE, "cannot reshape %" PRId64 " elements into %" PRId64, total, known_prod);
  }
  return NULL;
}

/* Product of dims [lo, hi); -1 if any is dynamic. */
static int64_t dims_prod(const kiln_shape *s, int32_t lo, int32_t hi) {
  int64_t p = 1;
  for (int32_t i = lo; i < hi; i++) {
    if (s->dims[i] < 0) return -1;
    p *= s->dims[i];
  }
  return p;
}

static kiln_status resolve_squeeze(const kiln_graph *g, const kiln_node *n, const kiln_shape_params *p,
                                   const kiln_shape *in, const kiln_ints *ints, kiln_shape *out) {
  const kiln_ints *axes = NULL;
  if (g->opset < 13) {
    if (p->a.known) axes = &p->a;
  } else if (n->n_inputs > 1 && n->inputs[1] >= 0) {
    if (!ints[1].known) {
      if (n->op == KILN_OP_Unsqueeze && in[0].rank >= 0 && in[1].rank == 1 && in[1].dims[0] >= 0 &&
          in[0].rank + in[1].dims[0] <= KILN_MAX_RANK)
        kiln_shape_dynamic(out, in[0].rank + (int32_t)in[1].dims[0]);
      else kiln_shape_unknown(out);
      return NULL;
    }
    axes = &ints[1];
  }
  if (in[0].rank < 0) {
    kiln_shape_unknown(out);
    return NULL;
  }
  int32_t rank = in[0].rank;
  uint32_t mask = 0;
  if (n->op == KILN_OP_Squeeze) {
    if (!axes) {
      for (int32_t d = 0; d < rank; d++) {
        if (in[0].dims[d] < 0) { /* could be 1: the result's rank is not known */
          kiln_shape_unknown(out);
          return NULL;
        }
        if (in[0].dims[d] == 1) mask |= 1u << d;
      }
    } else {
      KILN_TRY(axes_mask(axes, rank, &mask, NULL));
      for (int32_t d = 0; d < rank; d++)
        if ((mask & (1u << d)) && in[0].dims[d] != 1 && in[0].dims[d] >= 0)
          return kiln_error(KILN_ERR_SHAPE, "cannot squeeze axis %d of size %" PRId64, d, in[0].dims[d]);
    }
    kiln_shape_init(out, 0, NULL);
    for (int32_t d = 0; d < rank; d++) {
      if (mask & (1u << d)) continue;
      out->dims[out->rank] = in[0].dims[d];
      out->sym[out->rank++] = in[0].sym[d];
    }
    return NULL;
  }
  if (!axes) return kiln_error(KILN_ERR_PARSE, "'axes' is required");
  int64_t orank = rank + axes->n;
  if (orank > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_UNSUPPORTED, "output rank %" PRId64 " exceeds %d", orank, KILN_MAX_RANK);
  KILN_TRY(axes_mask(axes, (int32_t)orank, &mask, NULL));
  kiln_shape_init(out, (int32_t)orank, NULL);
  int32_t j = 0;
  for (int32_t d = 0; d < orank; d++) {
    if (mask & (1u << d)) {
      out->dims[d] = 1;
    } else {
      out->dims[d] = in[0].dims[j];
      out->sym[d] = in[0].sym[j++];
    }
  }
  return NULL;
}

static kiln_status resolve_pad(const kiln_graph *g, const kiln_node *n, const kiln_shape_params *p,
                               const kiln_shape *in, const kiln_ints *ints, kiln_shape_resolved *r, kiln_shape *out) {
  int32_t rank = in[0].rank;
  if (rank < 0) {
    kiln_shape_unknown(out);
    return NULL;
  }
  const kiln_ints *pads = g->opset < 11 ? &p->a : &ints[1];
  const kiln_ints *axes = NULL;
  if (g->opset >= 18 && n->n_inputs > 3 && n->inputs[3] >= 0) axes = &ints[3];
  if (!pads->known || (axes && !axes->known)) {
    kiln_shape_dynamic(out, rank);
    return NULL;
  }
  int32_t ax[KILN_INTS_MAX];
  int64_t na = rank;
  if (axes) {
    uint32_t mask;
    KILN_TRY(axes_mask(axes, rank, &mask, ax));
    na = axes->n;
  } else {
    for (int32_t i = 0; i < rank; i++) ax[i] = i;
  }
  if (pads->n != 2 * na)
    return kiln_error(KILN_ERR_SHAPE, "'pads' has %" PRId64 " entries, expected %" PRId64, pads->n, 2 * na);
  memset(r->pads, 0, sizeof r->pads);
  for (int64_t i = 0; i < na; i++) {
    r->pads[ax[i]] = pads->v[i];
    r->pads[rank + ax[i]] = pads->v[na + i];
  }
  *out = in[0];
  for (int32_t d = 0; d < rank; d++) {
    int64_t b = r->pads[d], e = r->pads[rank + d];
    if (b < -KILN_MAX_ELEMENTS || b > KILN_MAX_ELEMENTS || e < -KILN_MAX_ELEMENTS || e > KILN_MAX_ELEMENTS)
      return kiln_error(KILN_ERR_SHAPE, "pad of axis %d is absurd", d);
    if (b == 0 && e == 0) continue;
    out->sym[d] = -1;
    if (in[0].dims[d] < 0) continue;
    int64_t o = in[0].dims[d] + b + e;
    if (o < 0) return kiln_error(KILN_ERR_SHAPE, "pads make axis %d negative", d);
    out->dims[d] = o;
  }
  return NULL;
}

kiln_status kiln_shape_resolve(const kiln_graph *g, const kiln_node *n, const kiln_shape *in, const kiln_ints *ints,
                               kiln_shape_resolved *r, kiln_shape *out) {
  const kiln_shape_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  memset(r, 0, sizeof *r);
  switch (n->op) {
  case KILN_OP_Concat: return resolve_concat(n, p, in, r, out);
  case KILN_OP_Split: return resolve_split(g, n, p, in, ints, r, out);
  case KILN_OP_Slice: return resolve_slice(g, n, p, in, ints, r, out);
  case KILN_OP_Reshape: return resolve_reshape(n, p, in, ints, out);
  case KILN_OP_Flatten: {
    if (in[0].rank < 0) {
      kiln_shape_dynamic(out, 2);
      return NULL;
    }
    int32_t a;
    if (p->axis < -(int64_t)in[0].rank || p->axis > in[0].rank)
      return kiln_error(KILN_ERR_SHAPE, "axis %" PRId64 " is out of range for rank %d", p->axis, in[0].rank);
    a = (int32_t)(p->axis < 0 ? p->axis + in[0].rank : p->axis);
    r->axis = a;
    kiln_shape_dynamic(out, 2);
    out->dims[0] = dims_prod(&in[0], 0, a);
    out->dims[1] = dims_prod(&in[0], a, in[0].rank);
    if (a == 1) out->sym[0] = in[0].sym[0];
    if (a == in[0].rank - 1) out->sym[1] = in[0].sym[a];
    return NULL;
  }
  case KILN_OP_Squeeze:
  case KILN_OP_Unsqueeze: return resolve_squeeze(g, n, p, in, ints, out);
  case KILN_OP_Transpose: {
    int32_t rank = in[0].rank;
    if (rank < 0) {
      if (p->a.known && p->a.n <= KILN_MAX_RANK) kiln_shape_dynamic(out, (int32_t)p->a.n);
      else kiln_shape_unknown(out);
      return NULL;
    }
    if (p->a.known) {
      if (p->a.n != rank) return kiln_error(KILN_ERR_SHAPE, "'perm' has %" PRId64 " entries for rank %d", p->a.n, rank);
      uint32_t mask = 0;
      for (int32_t i = 0; i < rank; i++) {
        if (p->a.v[i] < 0 || p->a.v[i] >= rank || (mask & (1u << p->a.v[i])))
          return kiln_error(KILN_ERR_SHAPE, "'perm' is not a permutation of 0..%d", rank - 1);
        mask |= 1u << p->a.v[i];
        r->perm[i] = (int32_t)p->a.v[i];
      }
    } else {
      for (int32_t i = 0; i < rank; i++) r->perm[i] = rank - 1 - i;
    }
    kiln_shape_init(out, rank, NULL);
    for (int32_t i = 0; i < rank; i++) {
      out->dims[i] = in[0].dims[r->perm[i]];
      out->sym[i] = in[0].sym[r->perm[i]];
    }
    return NULL;
  }
  case KILN_OP_Expand: {
    if (!ints[1].known) {
      if (in[1].rank == 1 && in[1].dims[0] >= 0 && in[0].rank >= 0) {
        int64_t rk = in[1].dims[0] > in[0].rank ? in[1].dims[0] : in[0].rank;
        if (rk > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "rank %" PRId64 " exceeds %d", rk, KILN_MAX_RANK);
        kiln_shape_dynamic(out, (int32_t)rk);
      } else {
        kiln_shape_unknown(out);
      }
      return NULL;
    }
    if (ints[1].n > KILN_MAX_RANK)
      return kiln_error(KILN_ERR_UNSUPPORTED, "rank %" PRId64 " exceeds %d", ints[1].n, KILN_MAX_RANK);
    kiln_shape t;
    kiln_shape_init(&t, (int32_t)ints[1].n, ints[1].v);
    for (int32_t i = 0; i < t.rank; i++)
      if (t.dims[i] < 0 || t.dims[i] > KILN_MAX_ELEMENTS)
        return kiln_error(KILN_ERR_SHAPE, "the target shape has an invalid entry %" PRId64, t.dims[i]);
    return kiln_infer_broadcast(&in[0], &t, out);
  }
  case KILN_OP_Tile: {
    int32_t rank = in[0].rank;
    if (rank < 0) {
      kiln_shape_unknown(out);
      return NULL;
    }
    *out = in[0];
    if (!ints[1].known) {
      kiln_shape_dynamic(out, rank);
      return NULL;
    }
    if (ints[1].n != rank)
      return kiln_error(KILN_ERR_SHAPE, "'repeats' has %" PRId64 " entries for rank %d", ints[1].n, rank);
    for (int32_t d = 0; d < rank; d++) {
      int64_t rep = ints[1].v[d];
      if (rep < 0 || rep > KILN_MAX_ELEMENTS) return kiln_error(KILN_ERR_SHAPE, "'repeats' entry %" PRId64 " is invalid", rep);
      if (rep == 1) continue;
      out->sym[d] = -1;
      if (out->dims[d] < 0) continue;
      if (out->dims[d] && rep > KILN_MAX_ELEMENTS / out->dims[d]) return kiln_error(KILN_ERR_SHAPE, "tile is too large");
      out->dims[d] *= rep;
    }
    return NULL;
  }
  case KILN_OP_Pad: return resolve_pad(g, n, p, in, ints, r, out);
  case KILN_OP_DepthToSpace:
  case KILN_OP_SpaceToDepth: {
    if (in[0].rank < 0) {
      kiln_shape_dynamic(out, 4);
      return NULL;
    }
    if (in[0].rank != 4) return kiln_error(KILN_ERR_SHAPE, "input must be 4-D, is %d-D", in[0].rank);
    int64_t b = p->blocksize;
    *out = in[0];
    for (int32_t d = 1; d < 4; d++) out->sym[d] = -1;
    const int64_t *id = in[0].dims;
    if (n->op == KILN_OP_DepthToSpace) {
      if (id[1] >= 0 && id[1] % (b * b) != 0)
        return kiln_error(KILN_ERR_SHAPE, "channels %" PRId64 " are not divisible by blocksize^2 = %" PRId64, id[1], b * b);
      out->dims[1] = id[1] < 0 ? -1 : id[1] / (b * b);
      out->dims[2] = id[2] < 0 ? -1 : id[2] * b;
      out->dims[3] = id[3] < 0 ? -1 : id[3] * b;
    } else {
      if ((id[2] >= 0 && id[2] % b) || (id[3] >= 0 && id[3] % b))
        return kiln_error(KILN_ERR_SHAPE, "height and width must be divisible by blocksize %" PRId64, b);
      out->dims[1] = id[1] < 0 ? -1 : id[1] * b * b;
      out->dims[2] = id[2] < 0 ? -1 : id[2] / b;
      out->dims[3] = id[3] < 0 ? -1 : id[3] / b;
    }
    return NULL;
  }
  case KILN_OP_Trilu:
    if (in[0].rank >= 0 && in[0].rank < 2) return kiln_error(KILN_ERR_SHAPE, "input must have rank >= 2");
    if (n->n_inputs > 1 && n->inputs[1] >= 0 && in[1].rank > 0 && kiln_shape_numel(&in[1]) != 1)
      return kiln_error(KILN_ERR_SHAPE, "'k' must be a scalar");
    *out = in[0];
    return NULL;
  default: return kiln_error(KILN_ERR_INTERNAL, "op is not in the shape family");
  }
}

/* ---- infer --------------------------------------------------------------------------------------- */
static bool int_input_ok(kiln_dtype dt) { return dt == KILN_DTYPE_INT64 || dt == KILN_DTYPE_INT32; }

kiln_status kiln_shape_infer(kiln_graph *g, kiln_node *n) {
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  kiln_shape_clear_folded(g, n);
  int32_t nin = n->n_inputs, nout = n->n_outputs;
  kiln_shape *in = malloc(sizeof(kiln_shape) * (size_t)nin);
  kiln_ints *ints = malloc(sizeof(kiln_ints) * (size_t)(nin < 5 ? 5 : nin));
  kiln_shape *out = malloc(sizeof(kiln_shape) * (size_t)nout);
  kiln_shape_resolved *r = malloc(sizeof *r);
  kiln_status st = NULL;
  if (!in || !ints || !out || !r) {
    st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory inferring shapes");
    goto done;
  }
  for (int32_t i = 0; i < (nin < 5 ? 5 : nin); i++) ints[i].known = false, ints[i].n = 0;
  for (int32_t i = 0; i < nin; i++) {
    const kiln_value *v = kiln_node_input(g, n, i);
    if (!v) {
      kiln_shape_unknown(&in[i]);
      continue;
    }
    in[i] = v->shape;
    /* Inputs after the data input are integer parameters (except Pad's constant value, Concat data). */
    if (i > 0 && n->op != KILN_OP_Concat && !(n->op == KILN_OP_Pad && i == 2)) {
      if (v->dtype != KILN_DTYPE_UNDEFINED && !int_input_ok(v->dtype)) {
        st = kiln_error(KILN_ERR_SHAPE, "input %d ('%s') must be int64 or int32, is %s", i, v->name,
                        kiln_dtype_name(v->dtype));
        goto done;
      }
      kiln_ints_from_value(v, &ints[i]);
    }
  }
  if (n->op == KILN_OP_Concat) {
    for (int32_t i = 1; i < nin; i++) {
      const kiln_value *v = kiln_node_input(g, n, i);
      if (v && v->dtype != KILN_DTYPE_UNDEFINED && v->dtype != x->dtype) {
        st = kiln_error(KILN_ERR_SHAPE, "input '%s' is %s but '%s' is %s", v->name, kiln_dtype_name(v->dtype),
                        x->name, kiln_dtype_name(x->dtype));
        goto done;
      }
    }
  }
  if (n->op == KILN_OP_Pad && nin > 2) {
    const kiln_value *v = kiln_node_input(g, n, 2);
    if (v && v->dtype != KILN_DTYPE_UNDEFINED && v->dtype != x->dtype) {
      st = kiln_error(KILN_ERR_SHAPE, "constant_value is %s but the data is %s", kiln_dtype_name(v->dtype),
                      kiln_dtype_name(x->dtype));
      goto done;
    }
  }
  st = kiln_shape_resolve(g, n, in, ints, r, out);
  for (int32_t i = 0; !st && i < nout; i++) st = kiln_infer_set_output(g, n, i, x->dtype, &out[i]);
  if (!st) st = kiln_shape_fold_small(g, n);
done:
  free(in);
  free(ints);
  free(out);
  free(r);
  return st;
}

int64_t kiln_shape_macs(const kiln_graph *g, const kiln_node *n) { return 0; }

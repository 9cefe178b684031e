/* pool family: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Resize, Upsample
 * parse / infer / macs. */
#include "ir/ops/pool.h"

#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void set_params(kiln_node *n, void *p) {
  kiln_node_set_params(n, p, NULL);
}

/* ---- MaxPool / AveragePool ------------------------------------------------------------------------ */

static kiln_status pool_parse(kiln_graph *g, kiln_node *n, kiln_pool_params *p) {
  bool is_max = n->op == KILN_OP_MaxPool;
  KILN_TRY(kiln_check_arity(n, 1, 1, 1, is_max ? 2 : 1));
  KILN_TRY(kiln_window_attrs_parse(n, false, &p->w));
  if (!p->w.n_kernel) return kiln_error(KILN_ERR_PARSE, "attribute 'kernel_shape' is required");
  int64_t ceil_mode, cip = 0, so = 0;
  KILN_TRY(kiln_node_get_int(n, "ceil_mode", 0, &ceil_mode));
  if (ceil_mode != 0 && ceil_mode != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'ceil_mode' must be 0 or 1");
  if (is_max) {
    KILN_TRY(kiln_node_get_int(n, "storage_order", 0, &so));
    if (so != 0 && so != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'storage_order' must be 0 or 1");
  } else {
    KILN_TRY(kiln_node_get_int(n, "count_include_pad", 0, &cip));
    if (cip != 0 && cip != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'count_include_pad' must be 0 or 1");
    /* AveragePool gained dilations in opset 19; before that the attribute did not exist. */
  }
  p->ceil_mode = ceil_mode;
  p->count_include_pad = cip;
  p->column_major = so;
  (void)g;
  return NULL;
}

static bool pool_dtype_ok(const kiln_node *n, kiln_dtype dt) {
  if (kiln_dtype_is_float(dt)) return true;
  return n->op == KILN_OP_MaxPool && (dt == KILN_DTYPE_INT8 || dt == KILN_DTYPE_UINT8);
}

static kiln_status pool_infer(kiln_graph *g, kiln_node *n) {
  kiln_pool_params *p = n->params;
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  if (!pool_dtype_ok(n, x->dtype))
    return kiln_error(KILN_ERR_SHAPE, "input '%s' has dtype %s, which %s does not take", x->name,
                      kiln_dtype_name(x->dtype), n->op_type);
  kiln_shape out;
  if (x->shape.rank < 0) {
    /* The kernel_shape attribute tells the rank. */
    kiln_shape_init(&out, p->w.n_kernel + 2, NULL);
    for (int32_t i = 0; i < out.rank; i++) out.dims[i] = KILN_DIM_DYNAMIC;
  } else {
    int32_t rank = x->shape.rank;
    if (rank != p->w.n_kernel + 2)
      return kiln_error(KILN_ERR_SHAPE, "input '%s' has rank %d but kernel_shape has %d dims", x->name, rank,
                        p->w.n_kernel);
    KILN_TRY(kiln_window_resolve(&p->w, rank - 2, x->shape.dims + 2, p->w.kernel_shape, false, p->ceil_mode, &p->geom));
    p->resolved = kiln_shape_is_static(&x->shape);
    out = x->shape;
    for (int32_t i = 0; i < rank - 2; i++) {
      out.dims[i + 2] = p->geom.out[i];
      if (p->geom.out[i] < 0) out.sym[i + 2] = -1;
    }
    for (int32_t i = 0; i < rank - 2; i++)
      if (out.dims[i + 2] >= 0) out.sym[i + 2] = -1;
  }
  KILN_TRY(kiln_infer_set_output(g, n, 0, x->dtype, &out));
  return kiln_infer_set_output(g, n, 1, KILN_DTYPE_INT64, &out);
}

/* ---- Global pools ------------------------------------------------------------------------------- */

static kiln_status global_infer(kiln_graph *g, kiln_node *n) {
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  if (!kiln_dtype_is_float(x->dtype))
    return kiln_error(KILN_ERR_SHAPE, "input '%s' has dtype %s, expected a float type", x->name,
                      kiln_dtype_name(x->dtype));
  kiln_shape out;
  if (x->shape.rank < 0) {
    kiln_shape_unknown(&out);
  } else {
    if (x->shape.rank < 3) return kiln_error(KILN_ERR_SHAPE, "input '%s' must have rank >= 3", x->name);
    out = x->shape;
    for (int32_t i = 2; i < out.rank; i++) out.dims[i] = 1, out.sym[i] = -1;
  }
  return kiln_infer_set_output(g, n, 0, x->dtype, &out);
}

/* ---- Resize / Upsample -------------------------------------------------------------------------- */

static kiln_status pick(const char *attr, const char *s, const char *const *names, int count, int *out) {
  for (int i = 0; i < count; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return NULL;
    }
  char list[256] = "";
  for (int i = 0; i < count; i++) {
    strcat(list, names[i]);
    if (i + 1 < count) strcat(list, ", ");
  }
  return kiln_error(KILN_ERR_PARSE, "attribute '%s' = '%s' is not one of %s", attr, s, list);
}

static kiln_status resize_parse(kiln_graph *g, kiln_node *n, kiln_resize_params *p) {
  int64_t opset = g->opset > 0 ? g->opset : 21;
  bool upsample = n->op == KILN_OP_Upsample;
  p->roi_input = p->scales_input = p->sizes_input = -1;
  const char *s;
  KILN_TRY(kiln_node_get_string(n, "mode", "nearest", &s));
  static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear"};
  int m = 0;
  KILN_TRY(pick("mode", s, modes, upsample || opset < 11 ? 2 + 2 * upsample : 3, &m));
  /* Upsample-7 spelled linear as "bilinear" in some exporters; it means the same. */
  p->mode = m == 3 ? KILN_RESIZE_LINEAR : (kiln_resize_mode)m;
  if (upsample && m == 2) return kiln_error(KILN_ERR_PARSE, "attribute 'mode' = 'cubic' is not allowed for Upsample");
  if (upsample || opset < 11) {
    /* Upsample and Resize-10 map output to input coordinates asymmetrically (x / scale). */
    p->coord = KILN_COORD_ASYMMETRIC;
    p->nearest = KILN_NEAREST_SIMPLE;
    p->cubic_coeff_a = -0.75f;
    if (upsample && opset < 9) {
      KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
      const float *sc;
      size_t cnt;
      KILN_TRY(kiln_node_get_floats(n, "scales", &sc, &cnt));
      if (!cnt) return kiln_error(KILN_ERR_PARSE, "attribute 'scales' is required");
      if (cnt > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'scales' has too many values");
      for (size_t i = 0; i < cnt; i++) {
        if (!(sc[i] > 0) || !isfinite(sc[i]))
          return kiln_error(KILN_ERR_PARSE, "attribute 'scales' has a bad value %g", (double)sc[i]);
        p->attr_scales[i] = sc[i];
      }
      p->n_attr_scales = (int32_t)cnt;
    } else {
      KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1));
      p->scales_input = 1;
    }
    return NULL;
  }
  KILN_TRY(kiln_check_arity(n, opset >= 13 ? 1 : 2, 4, 1, 1));
  p->roi_input = 1, p->scales_input = 2, p->sizes_input = 3;
  static const char *const coords[] = {"half_pixel",   "half_pixel_symmetric", "pytorch_half_pixel",
                                       "align_corners", "asymmetric",           "tf_half_pixel_for_nn",
                                       "tf_crop_and_resize"};
  static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  static const char *const policies[] = {"stretch", "not_larger", "not_smaller"};
  int v = 0;
  KILN_TRY(kiln_node_get_string(n, "coordinate_transformation_mode", "half_pixel", &s));
  KILN_TRY(pick("coordinate_transformation_mode", s, coords, 7, &v));
  p->coord = (kiln_resize_coord)v;
  KILN_TRY(kiln_node_get_string(n, "nearest_mode", "round_prefer_floor", &s));
  KILN_TRY(pick("nearest_mode", s, nearests, 4, &v));
  p->nearest = (kiln_resize_nearest)v;
  KILN_TRY(kiln_node_get_string(n, "keep_aspect_ratio_policy", "stretch", &s));
  KILN_TRY(pick("keep_aspect_ratio_policy", s, policies, 3, &v));
  p->policy = (kiln_resize_policy)v;
  KILN_TRY(kiln_node_get_float(n, "cubic_coeff_a", -0.75f, &p->cubic_coeff_a));
  int64_t eo, aa;
  KILN_TRY(kiln_node_get_int(n, "exclude_outside", 0, &eo));
  if (eo != 0 && eo != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'exclude_outside' must be 0 or 1");
  p->exclude_outside = eo;
  KILN_TRY(kiln_node_get_float(n, "extrapolation_value", 0.0f, &p->extrapolation_value));
  KILN_TRY(kiln_node_get_int(n, "antialias", 0, &aa));
  if (aa != 0) return kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'antialias' = %" PRId64 " is not supported", aa);
  const int64_t *axes;
  size_t na;
  KILN_TRY(kiln_node_get_ints(n, "axes", &axes, &na));
  if (na > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'axes' has too many values");
  for (size_t i = 0; i < na; i++) p->axes[i] = axes[i];
  p->n_axes = (int32_t)na;
  return NULL;
}

/* Is input i present with at least one element (an empty tensor stands for "absent" in Resize-11)? */
static const kiln_value *present(const kiln_graph *g, const kiln_node *n, int i) {
  if (i < 0) return NULL;
  const kiln_value *v = kiln_node_input(g, n, i);
  if (!v) return NULL;
  if (v->shape.rank >= 0 && kiln_shape_is_static(&v->shape) && kiln_shape_numel(&v->shape) == 0) return NULL;
  return v;
}

static kiln_status resize_resolve(const kiln_resize_params *p, int32_t rank, const int64_t *in, const double *scales,
                                  int64_t n_scales, const int64_t *sizes, int64_t n_sizes, int64_t *out_dims,
                                  double *out_scales);

kiln_status kiln_resize_resolve(const kiln_resize_params *p, int32_t rank, const int64_t *in, const double *scales,
                                int64_t n_scales, const int64_t *sizes, int64_t n_sizes, int64_t *out_dims,
                                double *out_scales) {
  KILN_TRY(resize_resolve(p, rank, in, scales, n_scales, sizes, n_sizes, out_dims, out_scales));
  /* Nothing to interpolate from: an empty input dim can only give an empty output dim. */
  for (int32_t d = 0; d < rank; d++)
    if (in[d] == 0 && out_dims[d] != 0)
      return kiln_error(KILN_ERR_SHAPE, "dim %d is empty in the input but not in the output", d);
  return NULL;
}

static kiln_status resize_resolve(const kiln_resize_params *p, int32_t rank, const int64_t *in, const double *scales,
                                  int64_t n_scales, const int64_t *sizes, int64_t n_sizes, int64_t *out_dims,
                                  double *out_scales) {
  /* Which dims the scales/sizes cover: every dim, or the axes attribute's. */
  int32_t ax[KILN_MAX_RANK], nax = p->n_axes ? p->n_axes : rank;
  bool seen[KILN_MAX_RANK] = {false};
  for (int32_t i = 0; i < nax; i++) {
    if (p->n_axes) {
      KILN_TRY(kiln_normalize_axis(p->axes[i], rank, &ax[i]));
      if (seen[ax[i]]) return kiln_error(KILN_ERR_PARSE, "attribute 'axes' repeats axis %d", ax[i]);
      seen[ax[i]] = true;
    } else {
      ax[i] = i;
    }
  }
  for (int32_t d = 0; d < rank; d++) out_dims[d] = in[d], out_scales[d] = 1.0;
  if (scales) {
    if (n_scales != nax)
      return kiln_error(KILN_ERR_SHAPE, "scales has %" PRId64 " values, expected %d", n_scales, nax);
    for (int32_t i = 0; i < nax; i++) {
      double s = scales[i];
      if (!(s > 0) || !isfinite(s)) return kiln_error(KILN_ERR_SHAPE, "scale %g is not positive", s);
      double o = floor((double)in[ax[i]] * s);
      if (o > (double)KILN_MAX_ELEMENTS) return kiln_error(KILN_ERR_SHAPE, "scale %g makes an absurd output", s);
      out_dims[ax[i]] = (int64_t)o;
      out_scales[ax[i]] = s;
    }
    return NULL;
  }
  if (!sizes) return kiln_error(KILN_ERR_SHAPE, "neither scales nor sizes is given");
  if (n_sizes != nax) return kiln_error(KILN_ERR_SHAPE, "sizes has %" PRId64 " values, expected %d", n_sizes, nax);
  for (int32_t i = 0; i < nax; i++)
    if (sizes[i] < 0 || sizes[i] > KILN_MAX_ELEMENTS)
      return kiln_error(KILN_ERR_SHAPE, "sizes has a bad value %" PRId64, sizes[i]);
  if (p->policy == KILN_ASPECT_STRETCH) {
    for (int32_t i = 0; i < nax; i++) {
      out_dims[ax[i]] = sizes[i];
      out_scales[ax[i]] = in[ax[i]] > 0 ? (double)sizes[i] / (double)in[ax[i]] : 1.0;
    }
    return NULL;
  }
  /* keep_aspect_ratio_policy: one common scale, then the sizes follow from it (rounded). */
  double s = p->policy == KILN_ASPECT_NOT_LARGER ? INFINITY : 0;
  for (int32_t i = 0; i < nax; i++) {
    if (in[ax[i]] <= 0) continue;
    double r = (double)sizes[i] / (double)in[ax[i]];
    s = p->policy == KILN_ASPECT_NOT_LARGER ? fmin(s, r) : fmax(s, r);
  }
  if (!isfinite(s) || s <= 0) s = 1;
  for (int32_t i = 0; i < nax; i++) {
    out_dims[ax[i]] = (int64_t)floor((double)in[ax[i]] * s + 0.5);
    out_scales[ax[i]] = s;
  }
  return NULL;
}

static kiln_status resize_infer(kiln_graph *g, kiln_node *n) {
  const kiln_resize_params *p = n->params;
  const kiln_value *x;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  kiln_shape out;
  if (x->shape.rank < 0) {
    kiln_shape_unknown(&out);
    return kiln_infer_set_output(g, n, 0, x->dtype, &out);
  }
  int32_t rank = x->shape.rank;
  if (rank == 0) return kiln_error(KILN_ERR_SHAPE, "input '%s' must have rank >= 1", x->name);
  const kiln_value *sv = present(g, n, p->scales_input), *zv = present(g, n, p->sizes_input);
  if (sv && zv) return kiln_error(KILN_ERR_PARSE, "only one of scales and sizes may be given");
  if (!sv && !zv && !p->n_attr_scales) return kiln_error(KILN_ERR_PARSE, "one of scales and sizes is required");
  if (sv && !kiln_dtype_is_float(sv->dtype)) return kiln_error(KILN_ERR_SHAPE, "scales must be a float tensor");
  if (zv && zv->dtype != KILN_DTYPE_INT64) return kiln_error(KILN_ERR_SHAPE, "sizes must be an int64 tensor");
  out = x->shape;
  double sc[KILN_MAX_RANK], osc[KILN_MAX_RANK];
  int64_t sz[KILN_MAX_RANK], ns = 0, nz = 0;
  bool have = false;
  if (p->n_attr_scales) {
    for (int32_t i = 0; i < p->n_attr_scales; i++) sc[i] = p->attr_scales[i];
    ns = p->n_attr_scales;
    have = true;
  } else if (sv && kiln_value_is_constant(sv)) {
    KILN_TRY(kiln_value_read_floats(sv, sc, KILN_MAX_RANK, &ns));
    have = true;
  } else if (zv && kiln_value_is_constant(zv)) {
    KILN_TRY(kiln_value_read_ints(zv, sz, KILN_MAX_RANK, &nz));
    have = true;
  }
  if (!have) {
    /* Data-dependent: the covered dims are unknown; uncovered ones (axes) pass through. */
    for (int32_t d = 0; d < rank; d++) {
      bool covered = !p->n_axes;
      for (int32_t i = 0; i < p->n_axes; i++) covered |= p->axes[i] == d || p->axes[i] + rank == d;
      if (covered) out.dims[d] = KILN_DIM_DYNAMIC, out.sym[d] = -1;
    }
    return kiln_infer_set_output(g, n, 0, x->dtype, &out);
  }
  int64_t in[KILN_MAX_RANK], od[KILN_MAX_RANK];
  for (int32_t d = 0; d < rank; d++) in[d] = x->shape.dims[d] >= 0 ? x->shape.dims[d] : 1;
  KILN_TRY(kiln_resize_resolve(p, rank, in, ns ? sc : NULL, ns, ns ? NULL : sz, nz, od, osc));
  bool covered[KILN_MAX_RANK], any_dyn = false;
  for (int32_t d = 0; d < rank; d++) {
    covered[d] = !p->n_axes;
    for (int32_t i = 0; i < p->n_axes; i++) covered[d] |= p->axes[i] == d || p->axes[i] + rank == d;
    any_dyn |= covered[d] && x->shape.dims[d] < 0;
  }
  for (int32_t d = 0; d < rank; d++) {
    if (!covered[d]) continue;
    if (x->shape.dims[d] >= 0 && !(any_dyn && !ns && p->policy != KILN_ASPECT_STRETCH)) {
      out.dims[d] = od[d];
      if (od[d] != in[d]) out.sym[d] = -1;
    } else if (ns && osc[d] == 1.0) {
      /* a dynamic dim scaled by 1 passes through with its symbol */
    } else if (!ns && p->policy == KILN_ASPECT_STRETCH) {
      out.dims[d] = od[d], out.sym[d] = -1;
    } else {
      out.dims[d] = KILN_DIM_DYNAMIC, out.sym[d] = -1;
    }
  }
  return kiln_infer_set_output(g, n, 0, x->dtype, &out);
}

/* ---- hooks -------------------------------------------------------------------------------------- */

kiln_status kiln_pool_parse(kiln_graph *g, kiln_node *n) {
  switch (n->op) {
  case KILN_OP_MaxPool:
  case KILN_OP_AveragePool: {
    kiln_pool_params *p = calloc(1, sizeof *p);
    KILN_CHECK_ALLOC(p);
    kiln_status st = pool_parse(g, n, p);
    if (st) {
      free(p);
      return st;
    }
    set_params(n, p);
    return NULL;
  }
  case KILN_OP_GlobalAveragePool:
  case KILN_OP_GlobalMaxPool:
    KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1));
    set_params(n, NULL);
    return NULL;
  case KILN_OP_Resize:
  case KILN_OP_Upsample: {
    kiln_resize_params *p = calloc(1, sizeof *p);
    KILN_CHECK_ALLOC(p);
    kiln_status st = resize_parse(g, n, p);
    if (st) {
      free(p);
      return st;
    }
    set_params(n, p);
    return NULL;
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "not a pool op");
  }
}

kiln_status kiln_pool_infer(kiln_graph *g, kiln_node *n) {
  if (!n->params && (n->op == KILN_OP_MaxPool || n->op == KILN_OP_AveragePool || n->op == KILN_OP_Resize ||
                     n->op == KILN_OP_Upsample))
    return kiln_error(KILN_ERR_INTERNAL, "not parsed");
  switch (n->op) {
  case KILN_OP_MaxPool:
  case KILN_OP_AveragePool: return pool_infer(g, n);
  case KILN_OP_GlobalAveragePool:
  case KILN_OP_GlobalMaxPool: return global_infer(g, n);
  case KILN_OP_Resize:
  case KILN_OP_Upsample: return resize_infer(g, n);
  default: return kiln_error(KILN_ERR_INTERNAL, "not a pool op");
  }
}

int64_t kiln_pool_macs(const kiln_graph *g, const kiln_node *n) {
  (void)g;
  (void)n;
  return 0; /* pooling and resampling do no multiply-accumulates worth counting */
}

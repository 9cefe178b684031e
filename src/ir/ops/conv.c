/* conv family: Conv and ConvTranspose parse / infer / macs, plus the window geometry (padding rules)
 * that the pool family reuses. */
#include "ir/ops/conv.h"

#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static kiln_status read_list(const kiln_node *n, const char *name, int64_t *dst, int32_t max, int32_t *count) {
  const int64_t *v;
  size_t c;
  KILN_TRY(kiln_node_get_ints(n, name, &v, &c));
  if (c > (size_t)max)
    return kiln_error(KILN_ERR_UNSUPPORTED, "attribute '%s' has %zu values (kiln supports up to %d spatial dims)",
                      name, c, max / (strcmp(name, "pads") == 0 ? 2 : 1));
  for (size_t i = 0; i < c; i++) dst[i] = v[i];
  *count = (int32_t)c;
  return NULL;
}

kiln_status kiln_window_attrs_parse(const kiln_node *n, bool transpose, kiln_window_attrs *w) {
  memset(w, 0, sizeof *w);
  const char *ap;
  KILN_TRY(kiln_node_get_string(n, "auto_pad", "NOTSET", &ap));
  if (strcmp(ap, "NOTSET") == 0) w->auto_pad = KILN_AUTO_PAD_NOTSET;
  else if (strcmp(ap, "SAME_UPPER") == 0) w->auto_pad = KILN_AUTO_PAD_SAME_UPPER;
  else if (strcmp(ap, "SAME_LOWER") == 0) w->auto_pad = KILN_AUTO_PAD_SAME_LOWER;
  else if (strcmp(ap, "VALID") == 0) w->auto_pad = KILN_AUTO_PAD_VALID;
  else
    return kiln_error(KILN_ERR_PARSE, "attribute 'auto_pad' = '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                      ap);
  KILN_TRY(read_list(n, "kernel_shape", w->kernel_shape, KILN_MAX_SPATIAL, &w->n_kernel));
  KILN_TRY(read_list(n, "strides", w->strides, KILN_MAX_SPATIAL, &w->n_strides));
  KILN_TRY(read_list(n, "dilations", w->dilations, KILN_MAX_SPATIAL, &w->n_dilations));
  KILN_TRY(read_list(n, "pads", w->pads, 2 * KILN_MAX_SPATIAL, &w->n_pads));
  if (transpose) {
    KILN_TRY(read_list(n, "output_padding", w->output_padding, KILN_MAX_SPATIAL, &w->n_output_padding));
    KILN_TRY(read_list(n, "output_shape", w->output_shape, KILN_MAX_RANK, &w->n_output_shape));
  }
  for (int32_t i = 0; i < w->n_kernel; i++)
    if (w->kernel_shape[i] <= 0 || w->kernel_shape[i] > (INT64_C(1) << 31))
      return kiln_error(KILN_ERR_PARSE, "attribute 'kernel_shape' has a bad value %" PRId64, w->kernel_shape[i]);
  for (int32_t i = 0; i < w->n_strides; i++)
    if (w->strides[i] <= 0 || w->strides[i] > (INT64_C(1) << 31))
      return kiln_error(KILN_ERR_PARSE, "attribute 'strides' has a bad value %" PRId64, w->strides[i]);
  for (int32_t i = 0; i < w->n_dilations; i++)
    if (w->dilations[i] <= 0 || w->dilations[i] > (INT64_C(1) << 31))
      return kiln_error(KILN_ERR_PARSE, "attribute 'dilations' has a bad value %" PRId64, w->dilations[i]);
  if (w->n_pads % 2)
    return kiln_error(KILN_ERR_PARSE, "attribute 'pads' has an odd number of values (%d)", w->n_pads);
  for (int32_t i = 0; i < w->n_pads; i++)
    if (w->pads[i] < 0 || w->pads[i] > (INT64_C(1) << 31))
      return kiln_error(KILN_ERR_PARSE, "attribute 'pads' has a bad value %" PRId64, w->pads[i]);
  for (int32_t i = 0; i < w->n_output_padding; i++)
    if (w->output_padding[i] < 0 || w->output_padding[i] > (INT64_C(1) << 31))
      return kiln_error(KILN_ERR_PARSE, "attribute 'output_padding' has a bad value %" PRId64, w->output_padding[i]);
  for (int32_t i = 0; i < w->n_output_shape; i++)
    if (w->output_shape[i] < 0 || w->output_shape[i] > (INT64_C(1) << 40))
      return kiln_error(KILN_ERR_PARSE, "attribute 'output_shape' has a bad value %" PRId64, w->output_shape[i]);
  /* Every list that is given must agree on the number of spatial dims. */
  int32_t nsp = w->n_kernel ? w->n_kernel : -1;
  const int32_t counts[] = {w->n_strides, w->n_dilations, w->n_pads / 2, w->n_output_padding};
  for (int i = 0; i < 4; i++) {
    if (!counts[i]) continue;
    if (nsp >= 0 && counts[i] != nsp)
      return kiln_error(KILN_ERR_PARSE, "window attributes disagree on the number of spatial dims (%d vs %d)", nsp,
                        counts[i]);
    nsp = counts[i];
  }
  return NULL;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -ceil_div(-a, b); }

kiln_status kiln_window_resolve(const kiln_window_attrs *w, int32_t nsp, const int64_t *in, const int64_t *kernel,
                                bool transpose, bool ceil_mode, kiln_window_geom *g) {
  if (nsp < 1 || nsp > KILN_MAX_SPATIAL)
    return kiln_error(KILN_ERR_UNSUPPORTED, "%d spatial dims (kiln supports 1 to %d)", nsp, KILN_MAX_SPATIAL);
  if ((w->n_kernel && w->n_kernel != nsp) || (w->n_strides && w->n_strides != nsp) ||
      (w->n_dilations && w->n_dilations != nsp) || (w->n_pads && w->n_pads != 2 * nsp) ||
      (w->n_output_padding && w->n_output_padding != nsp))
    return kiln_error(KILN_ERR_SHAPE, "window attributes do not match the input's %d spatial dims", nsp);
  /* output_shape lists the spatial dims; some exporters write the full [N, C, spatial...] instead. */
  int32_t os_skip = w->n_output_shape == nsp + 2 ? 2 : 0;
  if (w->n_output_shape && w->n_output_shape != nsp + os_skip)
    return kiln_error(KILN_ERR_SHAPE, "attribute 'output_shape' has %d values, the input has %d spatial dims",
                      w->n_output_shape, nsp);
  memset(g, 0, sizeof *g);
  g->nsp = nsp;
  for (int32_t i = 0; i < nsp; i++) {
    int64_t k = kernel[i], s = w->n_strides ? w->strides[i] : 1, d = w->n_dilations ? w->dilations[i] : 1;
    int64_t x = in[i];
    g->in[i] = x;
    g->kernel[i] = k;
    g->strides[i] = s;
    g->dilations[i] = d;
    int64_t pb = w->n_pads ? w->pads[i] : 0, pe = w->n_pads ? w->pads[i + nsp] : 0;
    if (w->auto_pad != KILN_AUTO_PAD_NOTSET) pb = pe = 0; /* auto_pad overrides explicit pads */
    bool known = x >= 0 && k >= 0;
    int64_t dk = known ? (k - 1) * d + 1 : 0;
    int64_t out = KILN_DIM_DYNAMIC;
    if (!transpose) {
      switch (w->auto_pad) {
      case KILN_AUTO_PAD_SAME_UPPER:
      case KILN_AUTO_PAD_SAME_LOWER:
        if (x >= 0) out = ceil_div(x, s);
        if (known) {
          int64_t total = (out - 1) * s + dk - x;
          if (total < 0) total = 0;
          /* SAME_UPPER puts the odd padding element at the end, SAME_LOWER at the beginning. */
          if (w->auto_pad == KILN_AUTO_PAD_SAME_UPPER) pb = total / 2, pe = total - pb;
          else pe = total / 2, pb = total - pe;
        }
        break;
      case KILN_AUTO_PAD_VALID:
      case KILN_AUTO_PAD_NOTSET:
        if (!known) break;
        if (x + pb + pe < dk)
          return kiln_error(KILN_ERR_SHAPE,
                            "spatial dim %d: the (dilated) kernel %" PRId64 " is larger than the padded input %" PRId64,
                            i, dk, x + pb + pe);
        if (ceil_mode) {
          out = ceil_div(x + pb + pe - dk, s) + 1;
          /* The last window must start inside the input or the begin padding (PyTorch/ORT rule). */
          if ((out - 1) * s >= x + pb) out--;
        } else {
          out = floor_div(x + pb + pe - dk, s) + 1;
        }
        break;
      }
    } else {
      int64_t op = w->n_output_padding ? w->output_padding[i] : 0;
      int64_t full = known ? s * (x - 1) + op + dk : KILN_DIM_DYNAMIC;
      bool from_total = false;
      if (w->n_output_shape) {
        out = w->output_shape[i + os_skip];
        from_total = true;
      } else if (w->auto_pad == KILN_AUTO_PAD_SAME_UPPER || w->auto_pad == KILN_AUTO_PAD_SAME_LOWER) {
        out = x >= 0 ? x * s : KILN_DIM_DYNAMIC;
        from_total = true;
      } else if (known) {
        out = full - pb - pe;
      }
      if (from_total && known && out >= 0) {
        /* A requested output larger than the full transposed output is not cropped: the extra tail
         * positions receive no contributions (bias only), as in ONNX Runtime. */
        int64_t total = full - out;
        if (total < 0) total = 0;
        /* Matches ONNX Runtime and the ONNX reference: SAME_UPPER puts the extra crop at the end. */
        if (w->auto_pad == KILN_AUTO_PAD_SAME_UPPER) pb = total / 2, pe = total - pb;
        else pe = total / 2, pb = total - pe;
      }
      if (known && out < 1 && !w->n_output_shape)
        return kiln_error(KILN_ERR_SHAPE, "spatial dim %d: pads leave an empty output", i);
    }
    if (out != KILN_DIM_DYNAMIC && out < 0) return kiln_error(KILN_ERR_SHAPE, "spatial dim %d: negative output size", i);
    g->out[i] = out;
    g->pad_begin[i] = pb;
    g->pad_end[i] = pe;
  }
  return NULL;
}

kiln_status kiln_conv_resolve(const kiln_node *n, const kiln_conv_params *p, int32_t rank, const int64_t *x_dims,
                              const int64_t *w_dims, kiln_conv_params *out) {
  bool transpose = n->op == KILN_OP_ConvTranspose;
  if (rank < 3) return kiln_error(KILN_ERR_SHAPE, "input X must have rank >= 3 (N, C, spatial...), has %d", rank);
  if (rank > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "rank %d exceeds %d", rank, KILN_MAX_RANK);
  *out = *p;
  int32_t nsp = rank - 2;
  int64_t c = x_dims[1], g = p->group;
  int64_t kernel[KILN_MAX_SPATIAL];
  for (int32_t i = 0; i < nsp; i++) {
    kernel[i] = p->w.n_kernel ? p->w.kernel_shape[i] : w_dims[i + 2];
    if (kernel[i] == 0) return kiln_error(KILN_ERR_SHAPE, "W has an empty kernel dim %d", i);
    if (p->w.n_kernel && p->w.n_kernel == nsp && w_dims[i + 2] >= 0 && w_dims[i + 2] != kernel[i])
      return kiln_error(KILN_ERR_SHAPE, "kernel_shape[%d] = %" PRId64 " but W has %" PRId64, i, kernel[i], w_dims[i + 2]);
  }
  int64_t cin_per_group = w_dims[1], wout = w_dims[0];
  if (!transpose) {
    if (c >= 0 && cin_per_group >= 0 && c != cin_per_group * g)
      return kiln_error(KILN_ERR_SHAPE, "X has %" PRId64 " channels but W expects %" PRId64 " x group %" PRId64, c,
                        cin_per_group, g);
    if (wout >= 0 && wout % g)
      return kiln_error(KILN_ERR_SHAPE, "W's %" PRId64 " output channels are not divisible by group %" PRId64, wout, g);
    out->out_channels = wout;
  } else {
    if (c >= 0 && wout >= 0 && c != wout)
      return kiln_error(KILN_ERR_SHAPE, "X has %" PRId64 " channels but W has %" PRId64, c, wout);
    if (c >= 0 && c % g)
      return kiln_error(KILN_ERR_SHAPE, "X's %" PRId64 " channels are not divisible by group %" PRId64, c, g);
    out->out_channels = cin_per_group >= 0 ? cin_per_group * g : KILN_DIM_DYNAMIC;
  }
  out->batch = x_dims[0];
  out->in_channels = c;
  KILN_TRY(kiln_window_resolve(&p->w, nsp, x_dims + 2, kernel, transpose, false, &out->geom));
  out->resolved = out->batch >= 0 && c >= 0 && out->out_channels >= 0;
  for (int32_t i = 0; i < nsp && out->resolved; i++)
    if (out->geom.in[i] < 0 || out->geom.out[i] < 0 || out->geom.kernel[i] < 0) out->resolved = false;
  return NULL;
}

kiln_status kiln_conv_parse(kiln_graph *g, kiln_node *n) {
  (void)g;
  bool transpose = n->op == KILN_OP_ConvTranspose;
  KILN_TRY(kiln_check_arity(n, 2, 3, 1, 1));
  kiln_conv_params *p = calloc(1, sizeof *p);
  KILN_CHECK_ALLOC(p);
  kiln_status st = kiln_window_attrs_parse(n, transpose, &p->w);
  if (!st) st = kiln_node_get_int(n, "group", 1, &p->group);
  if (!st && (p->group < 1 || p->group > (INT64_C(1) << 31)))
    st = kiln_error(KILN_ERR_PARSE, "attribute 'group' = %" PRId64 " must be >= 1", p->group);
  if (st) {
    free(p);
    return st;
  }
  kiln_node_set_params(n, p, NULL);
  return NULL;
}

kiln_status kiln_conv_infer(kiln_graph *g, kiln_node *n) {
  kiln_conv_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "not parsed");
  const kiln_value *x, *w;
  KILN_TRY(kiln_require_input(g, n, 0, &x));
  KILN_TRY(kiln_require_input(g, n, 1, &w));
  if (!kiln_dtype_is_float(x->dtype))
    return kiln_error(KILN_ERR_SHAPE, "input '%s' has dtype %s, expected a float type", x->name,
                      kiln_dtype_name(x->dtype));
  if (w->dtype != x->dtype)
    return kiln_error(KILN_ERR_SHAPE, "W '%s' (%s) and X '%s' (%s) differ in dtype", w->name, kiln_dtype_name(w->dtype),
                      x->name, kiln_dtype_name(x->dtype));
  const kiln_value *b = kiln_node_input(g, n, 2);
  if (b && b->dtype != KILN_DTYPE_UNDEFINED && b->dtype != x->dtype)
    return kiln_error(KILN_ERR_SHAPE, "bias '%s' has dtype %s, X has %s", b->name, kiln_dtype_name(b->dtype),
                      kiln_dtype_name(x->dtype));
  int32_t rank = x->shape.rank >= 0 ? x->shape.rank : w->shape.rank;
  kiln_shape out;
  if (rank < 0) {
    kiln_shape_unknown(&out);
    return kiln_infer_set_output(g, n, 0, x->dtype, &out);
  }
  if (x->shape.rank >= 0 && w->shape.rank >= 0 && x->shape.rank != w->shape.rank)
    return kiln_error(KILN_ERR_SHAPE, "X '%s' has rank %d but W '%s' has rank %d", x->name, x->shape.rank, w->name,
                      w->shape.rank);
  if (rank < 3 || rank > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_SHAPE, "X must have rank 3 to %d, has %d", KILN_MAX_RANK, rank);
  int64_t xd[KILN_MAX_RANK], wd[KILN_MAX_RANK];
  for (int32_t i = 0; i < rank; i++) {
    xd[i] = x->shape.rank >= 0 ? x->shape.dims[i] : KILN_DIM_DYNAMIC;
    wd[i] = w->shape.rank >= 0 ? w->shape.dims[i] : KILN_DIM_DYNAMIC;
  }
  kiln_conv_params r;
  KILN_TRY(kiln_conv_resolve(n, p, rank, xd, wd, &r));
  if (b && b->shape.rank >= 0) {
    if (b->shape.rank != 1 || (b->shape.dims[0] >= 0 && r.out_channels >= 0 && b->shape.dims[0] != r.out_channels))
      return kiln_error(KILN_ERR_SHAPE, "bias '%s' must have shape [%" PRId64 "]", b->name, r.out_channels);
  }
  *p = r;
  kiln_shape_init(&out, rank, NULL);
  out.dims[0] = xd[0];
  out.sym[0] = x->shape.rank >= 0 ? x->shape.sym[0] : -1;
  out.dims[1] = r.out_channels;
  for (int32_t i = 0; i < rank - 2; i++) {
    out.dims[i + 2] = r.geom.out[i];
    /* A spatial dim passes through unchanged (keep its symbol) only for a 1x1, stride-1, unpadded window. */
    if (r.geom.out[i] < 0 && x->shape.rank >= 0 && r.geom.kernel[i] == 1 && r.geom.strides[i] == 1 &&
        r.geom.pad_begin[i] == 0 && r.geom.pad_end[i] == 0 && n->op == KILN_OP_Conv)
      out.sym[i + 2] = x->shape.sym[i + 2];
  }
  return kiln_infer_set_output(g, n, 0, x->dtype, &out);
}

int64_t kiln_conv_macs(const kiln_graph *g, const kiln_node *n) {
  const kiln_value *x = kiln_node_input(g, n, 0), *w = kiln_node_input(g, n, 1), *y = kiln_node_output(g, n, 0);
  if (!x || !w || !y) return 0;
  int64_t wn = kiln_shape_numel(&w->shape);
  if (wn <= 0 || w->shape.dims[0] <= 0) return 0;
  /* W[1] x prod(kernel) is (Cin/group) x kernel area for Conv and (Cout/group) x kernel area for ConvTranspose. */
  int64_t per = wn / w->shape.dims[0];
  int64_t elems = kiln_shape_numel(n->op == KILN_OP_Conv ? &y->shape : &x->shape);
  if (elems < 0) return 0;
  return elems * per;
}

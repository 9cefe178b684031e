/*
 * The "cuda.*" layer kernels of CUDA engines: load-time validation (prepare) against the tensor records,
 * then run = one or a few asynchronous launches on the context's stream through the kernel APIs of this
 * folder. Nothing here allocates or synchronizes at run time. A prepare that finds parameters which do
 * not match the tensors refuses the engine: a launch is never given extents its buffers do not have.
 */
#ifdef KILN_HAVE_CUDA
#include "backend/cuda/cuda_layers.h"
#include "backend/cuda/eltwise_cuda.h"
#include "backend/cuda/kernel_checks.h"
#include "core/dtype.h"
#include "runtime/kernel.h"

#include <stdlib.h>
#include <string.h>

static int is_float_t(const kiln_tensor_rec *t) { return t->dtype == KILN_DTYPE_FLOAT32 || t->dtype == KILN_DTYPE_FLOAT16; }

/* Elementwise layers may run in place (y == a) */
static kiln_status take_params(kiln_layer_rt *L, size_t size, int n_in_min, int n_in_max, int n_out_min, int n_out_max) {
  return take_params_checked(L, size, n_in_min, n_in_max, n_out_min, n_out_max, 1);
}

static int dims_are(const kiln_tensor_rec *t, int64_t n, int64_t c, int64_t h, int64_t w) {
  return t->rank == 4 && t->dims[0] == n && t->dims[1] == c && t->dims[2] == h && t->dims[3] == w;
}


/* ---- cuda.convert: layout and/or dtype change, everything from the two tensor records ----------- */
static kiln_status convert_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, 0, 1, 1, 1, 1));
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (!is_float_t(x) || !is_float_t(y) || numel(x) != numel(y))
    return bad_layer(L, "convert between tensors of different sizes or non-float types");
  if ((x->layout == KILN_LAYOUT_NHWC || y->layout == KILN_LAYOUT_NHWC) &&
      (x->rank != 4 || y->rank != 4 || memcmp(x->dims, y->dims, sizeof(int64_t) * 4)))
    return bad_layer(L, "layout conversion between tensors of different shapes");
  if ((x->layout == KILN_LAYOUT_NHWC) == (y->layout == KILN_LAYOUT_NHWC) && x->layout == KILN_LAYOUT_NHWC &&
      x->dtype != y->dtype)
    return bad_layer(L, "NHWC to NHWC conversion with a type change");
  return NULL;
}

static kiln_status convert_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_tensor_rec *x = &ex->tensors[L->in[0]], *y = &ex->tensors[L->out[0]];
  const void *xp = ex->ptrs[L->in[0]];
  void *yp = ex->ptrs[L->out[0]];
  kiln_cuda_dtype xt = (kiln_cuda_dtype)x->dtype, yt = (kiln_cuda_dtype)y->dtype;
  if (x->layout == KILN_LAYOUT_LINEAR && y->layout == KILN_LAYOUT_NHWC) {
    /* a dense tensor wider than its channels is padded for the stem (zeros); a slice is left alone */
    if (y->storage != KILN_STORAGE_VIEW && y->pixel_stride > y->dims[1])
      return kiln_cuda_nchw_to_nhwc_padded(xp, xt, yp, yt, x->dims[0], x->dims[1], x->dims[2] * x->dims[3], y->pixel_stride,
                                           ex->stream);
    return kiln_cuda_nchw_to_nhwc(xp, xt, yp, yt, x->dims[0], x->dims[1], x->dims[2] * x->dims[3], y->pixel_stride,
                                  ex->stream);
  }
  if (x->layout == KILN_LAYOUT_NHWC && y->layout == KILN_LAYOUT_LINEAR)
    return kiln_cuda_nhwc_to_nchw(xp, xt, x->pixel_stride, yp, yt, x->dims[0], x->dims[1], x->dims[2] * x->dims[3],
                                  ex->stream);
  if (x->layout == KILN_LAYOUT_NHWC) /* same type, different pixel strides */
    return kiln_cuda_eltwise_nhwc(-1, (kiln_epilogue){KILN_ACT_NONE, 0, 0, 0}, xt, x->dims[0] * x->dims[2] * x->dims[3],
                                  x->dims[1], xp, x->pixel_stride, NULL, 0, yp, y->pixel_stride, ex->stream);
  /* LINEAR -> LINEAR cast: a 1-channel "layout change" is a plain element-wise copy with the cast */
  return kiln_cuda_nchw_to_nhwc(xp, xt, yp, yt, numel(x), 1, 1, 1, ex->stream);
}

/* ---- cuda.conv ------------------------------------------------------------------------------------ */
typedef struct conv_state {
  kiln_cuda_conv_desc desc;
  const void *packed; /* device */
} conv_state;

static kiln_status conv_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  kiln_cuda_conv_params p;
  /* the record grew with in_layout_nchw / in_dtype: an engine of an older kiln is refused by its size */
  if (L->params_size != sizeof p)
    return kiln_error(KILN_ERR_PARSE, "invalid engine file: layer '%s' (cuda.conv): parameters of %zu bytes, this kiln "
                      "reads %zu (built by another kiln version?): rebuild the engine", L->name, L->params_size, sizeof p);
  if (L->n_in < 1 || L->n_in > 2 || L->n_out != 1 || L->in[0] < 0 || L->out[0] < 0 ||
      (L->n_in == 2 && L->in[1] < 0))
    return bad_layer(L, "malformed parameters");
  memcpy(&p, L->params, sizeof p);
  kiln_cuda_conv_desc *d = &p.desc;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]), *r = L->n_in == 2 ? tensor(e, L->in[1]) : NULL;
  /* the stem path (in_layout_nchw) reads the LINEAR network input in place */
  kiln_cuda_dtype xt = d->in_layout_nchw && d->in_dtype ? d->in_dtype : d->compute, yt = d->out_dtype;
  if (x->layout != (d->in_layout_nchw ? KILN_LAYOUT_LINEAR : KILN_LAYOUT_NHWC) || y->layout != KILN_LAYOUT_NHWC ||
      (r && r->layout != KILN_LAYOUT_NHWC) ||
      !dims_are(x, d->batch, d->in_c, d->in_h, d->in_w) || !dims_are(y, d->batch, d->out_c, d->out_h, d->out_w) ||
      (r && !dims_are(r, d->batch, d->out_c, d->out_h, d->out_w)) || x->dtype != (uint32_t)xt || y->dtype != (uint32_t)yt ||
      (r && r->dtype != (uint32_t)yt) || (L->n_in == 2) != (d->has_residual != 0) || d->out_c_offset != 0)
    return bad_layer(L, "tensors do not match the convolution");
  /* the records are the truth about strides; an engine cannot make the kernel step outside a tensor */
  d->in_pixel_stride = x->pixel_stride;
  d->out_pixel_stride = y->pixel_stride;
  d->residual_pixel_stride = r ? r->pixel_stride : 0;
  if (d->in_zero_padded && (x->storage == KILN_STORAGE_VIEW || x->pixel_stride % 8))
    return bad_layer(L, "zero-padded input that is not a dense padded tensor");
  KILN_TRY(kiln_error_prefix(kiln_cuda_conv_validate(d), "layer '%s': ", L->name));
  if (p.packed_offset > e->weights_size || p.packed_size > e->weights_size - p.packed_offset ||
      p.packed_size < kiln_cuda_conv_packed_size(d) || p.packed_offset % 64)
    return bad_layer(L, "packed weights outside the weights section");
  conv_state *s = malloc(sizeof *s);
  KILN_CHECK_ALLOC(s);
  s->desc = *d;
  s->packed = e->device_weights + p.packed_offset;
  L->workspace = kiln_cuda_conv_workspace_size(d);
  L->state = s;
  return NULL;
}

static kiln_status conv_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const conv_state *s = L->state;
  return kiln_cuda_conv_run(&s->desc, s->packed, ex->ptrs[L->in[0]], L->n_in > 1 ? ex->ptrs[L->in[1]] : NULL,
                            ex->ptrs[L->out[0]], ex->workspace, ex->stream);
}

/* ---- cuda.maxpool / cuda.resize_nearest (NHWC, channel-strided) ----------------------------------- */
static kiln_status pool_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_pool_params), 1, 1, 1, 1));
  kiln_cuda_pool_desc *d = &((kiln_cuda_pool_params *)L->state)->desc;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (x->layout != KILN_LAYOUT_NHWC || y->layout != KILN_LAYOUT_NHWC || x->dtype != (uint32_t)d->dtype ||
      y->dtype != x->dtype || !dims_are(x, d->batch, d->channels, d->in_h, d->in_w) ||
      !dims_are(y, d->batch, d->channels, d->out_h, d->out_w) || d->kernel_h < 1 || d->kernel_w < 1 || d->stride_h < 1 ||
      d->stride_w < 1 || d->dilation_h < 1 || d->dilation_w < 1)
    return bad_layer(L, "tensors do not match the pooling");
  d->in_pixel_stride = x->pixel_stride;
  d->out_pixel_stride = y->pixel_stride;
  return NULL;
}

static kiln_status pool_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  return kiln_cuda_maxpool2d_nhwc(&((const kiln_cuda_pool_params *)L->state)->desc, ex->ptrs[L->in[0]], ex->ptrs[L->out[0]],
                                  ex->stream);
}

/* cuda.maxpool_chain: input x, outputs y[0..n_out) (SPPF's three pools; see spatial_cuda.h). */
static kiln_status pool_chain_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_pool_chain_params), 1, 1, 1, KILN_CUDA_POOL_CHAIN_MAX));
  kiln_cuda_pool_chain_params *p = L->state;
  kiln_cuda_pool_desc *d = &p->desc;
  if (p->n_out != L->n_out) return bad_layer(L, "the pool chain's output count does not match its outputs");
  const kiln_tensor_rec *x = tensor(e, L->in[0]);
  if (x->layout != KILN_LAYOUT_NHWC || x->dtype != (uint32_t)d->dtype || !dims_are(x, d->batch, d->channels, d->in_h, d->in_w))
    return bad_layer(L, "the input does not match the pool chain");
  d->in_pixel_stride = x->pixel_stride;
  for (int i = 0; i < L->n_out; i++) {
    const kiln_tensor_rec *y = tensor(e, L->out[i]);
    if (y->layout != KILN_LAYOUT_NHWC || y->dtype != x->dtype || !dims_are(y, d->batch, d->channels, d->out_h, d->out_w))
      return bad_layer(L, "an output does not match the pool chain");
    int64_t ps = y->pixel_stride ? y->pixel_stride : d->channels;
    if (i == 0) d->out_pixel_stride = ps;
    else if (ps != d->out_pixel_stride)
      return bad_layer(L, "the pool chain's outputs have different pixel strides");
  }
  if (!kiln_cuda_maxpool_chain_supported(d)) return bad_layer(L, "the pool chain's window cannot run as one kernel");
  return NULL;
}

static kiln_status pool_chain_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_pool_chain_params *p = L->state;
  void *y[KILN_CUDA_POOL_CHAIN_MAX];
  for (int i = 0; i < L->n_out; i++) y[i] = ex->ptrs[L->out[i]];
  return kiln_cuda_maxpool_chain_nhwc(&p->desc, L->n_out, ex->ptrs[L->in[0]], y, ex->stream);
}

static kiln_status resize_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_resize_params), 1, 1, 1, 1));
  const kiln_cuda_resize_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (x->layout != KILN_LAYOUT_NHWC || y->layout != KILN_LAYOUT_NHWC || x->dtype != y->dtype || !is_float_t(x) ||
      p->scale_h < 1 || p->scale_w < 1 || p->scale_h > 1024 || p->scale_w > 1024 ||
      !dims_are(y, x->dims[0], x->dims[1], x->dims[2] * p->scale_h, x->dims[3] * p->scale_w))
    return bad_layer(L, "tensors do not match the resize");
  return NULL;
}

static kiln_status resize_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_resize_params *p = L->state;
  const kiln_tensor_rec *x = &ex->tensors[L->in[0]], *y = &ex->tensors[L->out[0]];
  return kiln_cuda_resize_nearest_nhwc((kiln_cuda_dtype)x->dtype, x->dims[0], x->dims[1], x->dims[2], x->dims[3], p->scale_h,
                                       p->scale_w, ex->ptrs[L->in[0]], x->pixel_stride, ex->ptrs[L->out[0]], y->pixel_stride,
                                       ex->stream);
}

/* ---- cuda.eltwise: NHWC same-shape (strided), or LINEAR with numpy broadcasting ------------------- */
static kiln_status eltwise_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_eltwise_params), 1, 2, 1, 1));
  const kiln_cuda_eltwise_params *p = L->state;
  const kiln_tensor_rec *a = tensor(e, L->in[0]), *b = L->n_in > 1 ? tensor(e, L->in[1]) : NULL, *y = tensor(e, L->out[0]);
  if ((p->op < 0) != (b == NULL) || p->op > KILN_CUDA_POW || !is_float_t(y) || a->dtype != y->dtype ||
      (b && b->dtype != y->dtype) || p->act.act > KILN_ACT_GELU)
    return bad_layer(L, "malformed elementwise layer");
  if (y->layout == KILN_LAYOUT_NHWC) {
    if (a->layout != KILN_LAYOUT_NHWC || (b && b->layout != KILN_LAYOUT_NHWC) || memcmp(a->dims, y->dims, sizeof a->dims) ||
        (b && memcmp(b->dims, y->dims, sizeof b->dims)))
      return bad_layer(L, "NHWC elementwise operands of different shapes");
    return NULL;
  }
  if (a->layout != KILN_LAYOUT_LINEAR || (b && b->layout != KILN_LAYOUT_LINEAR) || a->rank > KILN_CUDA_MAX_RANK ||
      (b && b->rank > KILN_CUDA_MAX_RANK) || y->rank > KILN_CUDA_MAX_RANK)
    return bad_layer(L, "unsupported elementwise operands");
  if (!b && numel(a) != numel(y)) return bad_layer(L, "unary operand of the wrong size");
  /* row-strided operands (the loader checked their strides): a unary op walks a and y row by row */
  if (!b && (kiln_tensor_row_strided(a) || kiln_tensor_row_strided(y)) &&
      (a->rank < 1 || y->rank < 1 || a->dims[0] != y->dims[0] || kiln_tensor_row_len(a) != kiln_tensor_row_len(y)))
    return bad_layer(L, "row-strided unary operands of different rows");
  if (b) { /* the broadcast shape of a and b must be y's, or the kernel would write past y */
    uint32_t r = y->rank;
    if (a->rank > r || b->rank > r) return bad_layer(L, "operands of a higher rank than the result");
    for (uint32_t d = 0; d < r; d++) {
      int64_t da = d + a->rank >= r ? a->dims[d + a->rank - r] : 1, db = d + b->rank >= r ? b->dims[d + b->rank - r] : 1;
      int64_t want = da == 1 ? db : da;
      if ((da != 1 && db != 1 && da != db) || want != y->dims[d]) return bad_layer(L, "operands do not broadcast to the result");
    }
  }
  return NULL;
}

/* A LINEAR tensor's row stride for the kernels (0 = dense). One row: nothing to step over (and y's dim 0
 * may then be a leading 1 the broadcast shape of lower-rank operands does not have). */
static int64_t row_stride(const kiln_tensor_rec *t) { return t->rank && t->dims[0] > 1 ? t->pixel_stride : 0; }

static kiln_status eltwise_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_eltwise_params *p = L->state;
  const kiln_tensor_rec *a = &ex->tensors[L->in[0]], *y = &ex->tensors[L->out[0]];
  const kiln_tensor_rec *b = L->n_in > 1 ? &ex->tensors[L->in[1]] : NULL;
  kiln_cuda_dtype dt = (kiln_cuda_dtype)y->dtype;
  if (y->layout == KILN_LAYOUT_NHWC)
    return kiln_cuda_eltwise_nhwc(p->op, p->act, dt, y->dims[0] * y->dims[2] * y->dims[3], y->dims[1], ex->ptrs[L->in[0]],
                                  a->pixel_stride, b ? ex->ptrs[L->in[1]] : NULL, b ? b->pixel_stride : 0,
                                  ex->ptrs[L->out[0]], y->pixel_stride, ex->stream);
  if (!b) {
    if (!kiln_tensor_row_strided(a) && !kiln_tensor_row_strided(y))
      return kiln_cuda_activation(dt, p->act, numel(y), ex->ptrs[L->in[0]], ex->ptrs[L->out[0]], ex->stream);
    return kiln_cuda_activation_rows(dt, p->act, y->dims[0], kiln_tensor_row_len(y), ex->ptrs[L->in[0]], row_stride(a),
                                     ex->ptrs[L->out[0]], row_stride(y), ex->stream);
  }
  kiln_cuda_rows ra = {ex->ptrs[L->in[0]], (int)a->rank, a->dims, row_stride(a)};
  kiln_cuda_rows rb = {ex->ptrs[L->in[1]], (int)b->rank, b->dims, row_stride(b)};
  return kiln_cuda_binary_rows((kiln_cuda_binop)p->op, dt, ra, rb, ex->ptrs[L->out[0]], row_stride(y), p->act, ex->stream);
}

/* ---- cuda.pointwise: a fused run of LINEAR elementwise ops ------------------------------------------ */
static kiln_status pointwise_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_pointwise_params), 1, KILN_CUDA_PW_MAX_IN, 1, KILN_CUDA_PW_MAX_OUT));
  const kiln_cuda_pointwise_params *p = L->state;
  const kiln_tensor_rec *y = tensor(e, L->out[0]);
  if (p->n_ops < 1 || p->n_ops > KILN_CUDA_PW_MAX_OPS || y->layout != KILN_LAYOUT_LINEAR || !is_float_t(y) || y->rank < 1 ||
      y->rank > KILN_CUDA_MAX_RANK)
    return bad_layer(L, "malformed pointwise program");
  int32_t slots = L->n_in + p->n_ops;
  for (int32_t o = 0; o < p->n_ops; o++) { /* every operand computed before it is read */
    const kiln_cuda_pw_op *q = &p->ops[o];
    if (q->op < -1 || q->op > KILN_CUDA_POW || q->a < 0 || q->a >= L->n_in + o ||
        (q->op >= 0 && (q->b < 0 || q->b >= L->n_in + o)) || (int)q->act.act < 0 || q->act.act > KILN_ACT_GELU)
      return bad_layer(L, "pointwise op reads a slot not computed yet, or is unknown");
  }
  for (int32_t k = 0; k < L->n_out; k++) {
    const kiln_tensor_rec *o = tensor(e, L->out[k]);
    if (p->out_slot[k] < 0 || p->out_slot[k] >= slots || o->layout != KILN_LAYOUT_LINEAR || o->dtype != y->dtype ||
        o->rank != y->rank || memcmp(o->dims, y->dims, sizeof(int64_t) * y->rank))
      return bad_layer(L, "pointwise outputs of different shapes or types, or a bad output slot");
    for (int32_t j = 0; j < L->n_in; j++)
      if (L->in[j] == L->out[k]) return bad_layer(L, "pointwise output aliases an input");
    for (int32_t j = 0; j < k; j++)
      if (L->out[j] == L->out[k]) return bad_layer(L, "pointwise output written twice");
  }
  for (int32_t j = 0; j < L->n_in; j++) { /* inputs broadcast to the outputs' shape */
    const kiln_tensor_rec *x = tensor(e, L->in[j]);
    if (x->layout != KILN_LAYOUT_LINEAR || x->dtype != y->dtype || x->rank > y->rank)
      return bad_layer(L, "pointwise input of another type or a higher rank");
    for (uint32_t d = 0; d < x->rank; d++) {
      int64_t xd = x->dims[d], yd = y->dims[d + y->rank - x->rank];
      if (xd != 1 && xd != yd) return bad_layer(L, "pointwise input does not broadcast to the outputs");
    }
  }
  return NULL;
}

static kiln_status pointwise_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_pointwise_params *p = L->state;
  const kiln_tensor_rec *y = &ex->tensors[L->out[0]];
  kiln_cuda_rows in[KILN_CUDA_PW_MAX_IN];
  void *out[KILN_CUDA_PW_MAX_OUT];
  int64_t rs[KILN_CUDA_PW_MAX_OUT];
  for (int32_t j = 0; j < L->n_in; j++) {
    const kiln_tensor_rec *x = &ex->tensors[L->in[j]];
    in[j] = (kiln_cuda_rows){ex->ptrs[L->in[j]], (int)x->rank, x->dims, row_stride(x)};
  }
  for (int32_t k = 0; k < L->n_out; k++) {
    out[k] = ex->ptrs[L->out[k]];
    rs[k] = row_stride(&ex->tensors[L->out[k]]);
  }
  return kiln_cuda_pointwise((kiln_cuda_dtype)y->dtype, (int)y->rank, y->dims, L->n_in, in, p->n_ops, p->ops, L->n_out, out,
                             rs, p->out_slot, ex->stream);
}

/* ---- cuda.softmax / cuda.transpose (LINEAR) ------------------------------------------------------- */
static kiln_status softmax_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_softmax_params), 1, 1, 1, 1));
  const kiln_cuda_softmax_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (x->layout || y->layout || !is_float_t(x) || x->dtype != y->dtype || p->outer < 0 || p->axis < 1 || p->inner < 1 ||
      p->outer * p->axis * p->inner != numel(x) || numel(x) != numel(y))
    return bad_layer(L, "tensors do not match the softmax");
  return NULL;
}

static kiln_status softmax_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_softmax_params *p = L->state;
  return kiln_cuda_softmax((kiln_cuda_dtype)ex->tensors[L->in[0]].dtype, p->outer, p->axis, p->inner, ex->ptrs[L->in[0]],
                           ex->ptrs[L->out[0]], ex->stream);
}

/* cuda.softmax_dot: x, w[axis], optional bias[1] -> fp32 y[outer][inner] */
static kiln_status softmax_dot_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_softmax_dot_params), 2, 3, 1, 1));
  const kiln_cuda_softmax_dot_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *w = tensor(e, L->in[1]), *y = tensor(e, L->out[0]);
  const kiln_tensor_rec *b = L->n_in > 2 ? tensor(e, L->in[2]) : NULL;
  if (x->layout || y->layout || !is_float_t(x) || y->dtype != KILN_DTYPE_FLOAT32 || w->dtype != KILN_DTYPE_FLOAT32 ||
      p->outer < 0 || p->axis < 1 || p->inner < 1 || p->outer * p->axis * p->inner != numel(x) ||
      p->outer * p->inner != numel(y) || numel(w) != p->axis || (b && (b->dtype != KILN_DTYPE_FLOAT32 || numel(b) != 1)))
    return bad_layer(L, "tensors do not match the softmax + dot product");
  return NULL;
}

/* cuda.softmax_dot_nhwc: n_maps NHWC maps, w[len], optional bias[1] -> fp32 y [N, groups, sum of map pixels] */
static kiln_status softmax_dot_nhwc_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_softmax_dot_nhwc_params), 2, KILN_CUDA_DFL_MAX_MAPS + 2, 1, 1));
  const kiln_cuda_softmax_dot_nhwc_params *p = L->state;
  if (p->n_maps < 1 || p->n_maps > KILN_CUDA_DFL_MAX_MAPS || (L->n_in != p->n_maps + 1 && L->n_in != p->n_maps + 2) ||
      p->groups < 1 || p->len < 1 || p->groups > INT32_MAX || p->len > INT32_MAX)
    return bad_layer(L, "malformed DFL over NHWC maps");
  const kiln_tensor_rec *y = tensor(e, L->out[0]), *w = tensor(e, L->in[p->n_maps]);
  const kiln_tensor_rec *b = L->n_in > p->n_maps + 1 ? tensor(e, L->in[p->n_maps + 1]) : NULL;
  const kiln_tensor_rec *x0 = tensor(e, L->in[0]);
  int64_t total = 0;
  for (int32_t k = 0; k < p->n_maps; k++) {
    const kiln_tensor_rec *x = tensor(e, L->in[k]);
    if (x->layout != KILN_LAYOUT_NHWC || !is_float_t(x) || x->dtype != x0->dtype || x->rank != 4 ||
        x->dims[0] != x0->dims[0] || x->dims[1] != p->groups * p->len)
      return bad_layer(L, "a map does not match the DFL");
    total += x->dims[2] * x->dims[3];
  }
  if (y->layout || y->dtype != KILN_DTYPE_FLOAT32 || y->pixel_stride || numel(y) != x0->dims[0] * p->groups * total ||
      w->dtype != KILN_DTYPE_FLOAT32 || numel(w) != p->len || (b && (b->dtype != KILN_DTYPE_FLOAT32 || numel(b) != 1)))
    return bad_layer(L, "tensors do not match the DFL over NHWC maps");
  return NULL;
}

static kiln_status softmax_dot_nhwc_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_softmax_dot_nhwc_params *p = L->state;
  kiln_cuda_nhwc_map maps[KILN_CUDA_DFL_MAX_MAPS];
  int64_t at = 0;
  for (int32_t k = 0; k < p->n_maps; k++) {
    const kiln_tensor_rec *x = &ex->tensors[L->in[k]];
    maps[k] = (kiln_cuda_nhwc_map){ex->ptrs[L->in[k]], x->dims[2] * x->dims[3], x->pixel_stride, at};
    at += maps[k].hw;
  }
  return kiln_cuda_softmax_dot_nhwc(maps, p->n_maps, (kiln_cuda_dtype)ex->tensors[L->in[0]].dtype, ex->tensors[L->in[0]].dims[0],
                                    p->groups, p->len, at, ex->ptrs[L->in[p->n_maps]],
                                    L->n_in > p->n_maps + 1 ? ex->ptrs[L->in[p->n_maps + 1]] : NULL, ex->ptrs[L->out[0]],
                                    ex->stream);
}

static kiln_status softmax_dot_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_softmax_dot_params *p = L->state;
  return kiln_cuda_softmax_dot((kiln_cuda_dtype)ex->tensors[L->in[0]].dtype, p->outer, p->axis, p->inner, ex->ptrs[L->in[0]],
                               ex->ptrs[L->in[1]], L->n_in > 2 ? ex->ptrs[L->in[2]] : NULL, ex->ptrs[L->out[0]], ex->stream);
}

static kiln_status transpose_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_transpose_params), 1, 1, 1, 1));
  const kiln_cuda_transpose_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (x->layout || y->layout || x->dtype != y->dtype || p->rank != (int32_t)x->rank || y->rank != x->rank || p->rank < 1 ||
      p->rank > KILN_CUDA_MAX_RANK)
    return bad_layer(L, "tensors do not match the transpose");
  unsigned seen = 0;
  for (int32_t d = 0; d < p->rank; d++) {
    if (p->perm[d] < 0 || p->perm[d] >= p->rank || (seen >> p->perm[d] & 1) || y->dims[d] != x->dims[p->perm[d]])
      return bad_layer(L, "bad permutation");
    seen |= 1u << p->perm[d];
  }
  return NULL;
}

static kiln_status transpose_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_transpose_params *p = L->state;
  const kiln_tensor_rec *x = &ex->tensors[L->in[0]];
  return kiln_cuda_transpose(kiln_dtype_size((kiln_dtype)x->dtype), p->rank, x->dims, p->perm, ex->ptrs[L->in[0]],
                             ex->ptrs[L->out[0]], ex->stream);
}

/* ---- cuda.concat / cuda.split: pitched block copies ----------------------------------------------- */
/* A tensor seen along `axis` as rows x (extent along the axis) x inner: bytes per unit along the axis,
 * bytes between rows. NHWC: rows are pixels and the axis is the channel. */
typedef struct axis_geom {
  int64_t rows, extent;
  size_t unit, pitch;
} axis_geom;

static int geom_of(const kiln_tensor_rec *t, int32_t axis, axis_geom *g) {
  size_t es = kiln_dtype_size((kiln_dtype)t->dtype);
  if (axis < 0 || (uint32_t)axis >= t->rank || !es) return 0;
  if (t->layout == KILN_LAYOUT_NHWC) {
    if (axis != 1) return 0;
    g->rows = t->dims[0] * t->dims[2] * t->dims[3];
    g->extent = t->dims[1];
    g->unit = es;
    g->pitch = (size_t)t->pixel_stride * es;
    return 1;
  }
  int64_t outer = 1, inner = 1;
  for (int32_t d = 0; d < axis; d++) outer *= t->dims[d];
  for (uint32_t d = (uint32_t)axis + 1; d < t->rank; d++) inner *= t->dims[d];
  g->rows = outer;
  g->extent = t->dims[axis];
  g->unit = (size_t)inner * es;
  g->pitch = (size_t)t->dims[axis] * g->unit;
  return 1;
}

/* Same rank/dims except along axis, same rows and unit. */
static int parts_match(const kiln_tensor_rec *whole, const kiln_tensor_rec *part, int32_t axis) {
  if (whole->rank != part->rank || whole->dtype != part->dtype || whole->layout != part->layout) return 0;
  for (uint32_t d = 0; d < whole->rank; d++)
    if ((int32_t)d != axis && whole->dims[d] != part->dims[d]) return 0;
  return 1;
}

static kiln_status parts_prepare(const kiln_engine_view *e, kiln_layer_rt *L, int is_concat) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_parts_params), 1, is_concat ? KILN_CUDA_MAX_PARTS : 1, 1,
                       is_concat ? 1 : KILN_CUDA_MAX_PARTS));
  const kiln_cuda_parts_params *p = L->state;
  const kiln_tensor_rec *whole = tensor(e, is_concat ? L->out[0] : L->in[0]);
  int32_t n = is_concat ? L->n_in : L->n_out;
  axis_geom gw;
  if (p->n != n || !geom_of(whole, p->axis, &gw)) return bad_layer(L, "malformed block copy");
  int64_t at = 0;
  for (int32_t k = 0; k < n; k++) {
    const kiln_tensor_rec *part = tensor(e, is_concat ? L->in[k] : L->out[k]);
    axis_geom gp;
    if (!parts_match(whole, part, p->axis) || !geom_of(part, p->axis, &gp)) return bad_layer(L, "parts do not match");
    int64_t start = is_concat ? at : p->start[k];
    if (start < 0 || gp.extent > gw.extent - start) return bad_layer(L, "part outside the whole tensor");
    at += gp.extent;
  }
  if (is_concat && at != gw.extent) return bad_layer(L, "parts do not fill the concatenation");
  return NULL;
}

static kiln_status parts_run(const kiln_layer_rt *L, const kiln_exec *ex, int is_concat) {
  const kiln_cuda_parts_params *p = L->state;
  int32_t wid = is_concat ? L->out[0] : L->in[0];
  axis_geom gw = {0}, gp = {0};
  geom_of(&ex->tensors[wid], p->axis, &gw); /* checked at prepare */
  int32_t n = is_concat ? L->n_in : L->n_out;
  int64_t at = 0;
  for (int32_t k = 0; k < n; k++) {
    int32_t pid = is_concat ? L->in[k] : L->out[k];
    geom_of(&ex->tensors[pid], p->axis, &gp);
    int64_t start = is_concat ? at : p->start[k];
    uint8_t *w = (uint8_t *)ex->ptrs[wid] + (size_t)start * gw.unit;
    uint8_t *part = ex->ptrs[pid];
    size_t bytes = (size_t)gp.extent * gp.unit;
    if (is_concat) KILN_TRY(kiln_cuda_copy_2d(w, gw.pitch, part, gp.pitch, bytes, (size_t)gp.rows, ex->stream));
    else KILN_TRY(kiln_cuda_copy_2d(part, gp.pitch, w, gw.pitch, bytes, (size_t)gp.rows, ex->stream));
    at += gp.extent;
  }
  return NULL;
}

static kiln_status concat_prepare(const kiln_engine_view *e, kiln_layer_rt *L) { return parts_prepare(e, L, 1); }
static kiln_status split_prepare(const kiln_engine_view *e, kiln_layer_rt *L) { return parts_prepare(e, L, 0); }
static kiln_status concat_run(const kiln_layer_rt *L, const kiln_exec *ex) { return parts_run(L, ex, 1); }
static kiln_status split_run(const kiln_layer_rt *L, const kiln_exec *ex) { return parts_run(L, ex, 0); }

/* ---- cuda.convert_concat: NHWC maps [N,C,H,W] -> slices of a LINEAR [N,C,sum(H*W)] ---------------- */
/* The output may be row-strided (its images pixel_stride elements apart): a member of the output Concat
 * along the channels at batch > 1, written in place. */
static kiln_status convert_concat_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_convert_concat_params), 1, KILN_CUDA_MAX_PARTS, 1, 1));
  const kiln_cuda_convert_concat_params *p = L->state;
  const kiln_tensor_rec *y = tensor(e, L->out[0]);
  if (p->n != L->n_in || y->rank != 3 || y->layout != KILN_LAYOUT_LINEAR || !is_float_t(y) || p->act.act > KILN_ACT_GELU)
    return bad_layer(L, "malformed spatial concat");
  int64_t at = 0;
  for (int32_t k = 0; k < L->n_in; k++) {
    const kiln_tensor_rec *x = tensor(e, L->in[k]);
    if (x->layout != KILN_LAYOUT_NHWC || !is_float_t(x) || x->dims[0] != y->dims[0] || x->dims[1] != y->dims[1])
      return bad_layer(L, "input does not match the spatial concat");
    at += x->dims[2] * x->dims[3];
  }
  if (at != y->dims[2]) return bad_layer(L, "inputs do not fill the spatial concat");
  return NULL;
}

static kiln_status convert_concat_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_convert_concat_params *p = L->state;
  const kiln_tensor_rec *y = &ex->tensors[L->out[0]];
  kiln_cuda_nhwc_map maps[KILN_CUDA_MAX_PARTS];
  int64_t at = 0;
  /* one launch per run of inputs of one type (all of them, in practice) */
  for (int32_t k0 = 0; k0 < L->n_in;) {
    uint32_t dt = ex->tensors[L->in[k0]].dtype;
    int m = 0;
    for (; k0 + m < L->n_in && ex->tensors[L->in[k0 + m]].dtype == dt; m++) {
      const kiln_tensor_rec *x = &ex->tensors[L->in[k0 + m]];
      maps[m] = (kiln_cuda_nhwc_map){ex->ptrs[L->in[k0 + m]], x->dims[2] * x->dims[3], x->pixel_stride, at};
      at += maps[m].hw;
    }
    KILN_TRY(kiln_cuda_nhwc_to_nchw_maps(maps, m, (kiln_cuda_dtype)dt, ex->ptrs[L->out[0]], (kiln_cuda_dtype)y->dtype,
                                         y->dims[0], y->dims[1], y->dims[2], y->pixel_stride, p->act, ex->stream));
    k0 += m;
  }
  return NULL;
}

const kiln_kernel kiln_kernel_cuda_convert_concat = {"cuda.convert_concat", convert_concat_prepare, free, convert_concat_run,
                                                     NULL, KILN_KERNEL_ROW_STRIDED};
const kiln_kernel kiln_kernel_cuda_convert = {"cuda.convert", convert_prepare, free, convert_run};
static const char *conv_variant(const kiln_layer_rt *L) { return kiln_cuda_conv_kernel_name(&((const conv_state *)L->state)->desc); }

const kiln_kernel kiln_kernel_cuda_conv = {"cuda.conv", conv_prepare, free, conv_run, conv_variant};
const kiln_kernel kiln_kernel_cuda_maxpool = {"cuda.maxpool", pool_prepare, free, pool_run};
const kiln_kernel kiln_kernel_cuda_maxpool_chain = {"cuda.maxpool_chain", pool_chain_prepare, free, pool_chain_run};
const kiln_kernel kiln_kernel_cuda_resize_nearest = {"cuda.resize_nearest", resize_prepare, free, resize_run};
const kiln_kernel kiln_kernel_cuda_eltwise = {"cuda.eltwise", eltwise_prepare, free, eltwise_run, NULL, KILN_KERNEL_ROW_STRIDED};
const kiln_kernel kiln_kernel_cuda_pointwise = {"cuda.pointwise", pointwise_prepare, free, pointwise_run, NULL,
                                                KILN_KERNEL_ROW_STRIDED};
const kiln_kernel kiln_kernel_cuda_softmax = {"cuda.softmax", softmax_prepare, free, softmax_run};
const kiln_kernel kiln_kernel_cuda_softmax_dot = {"cuda.softmax_dot", softmax_dot_prepare, free, softmax_dot_run};
const kiln_kernel kiln_kernel_cuda_softmax_dot_nhwc = {"cuda.softmax_dot_nhwc", softmax_dot_nhwc_prepare, free,
                                                       softmax_dot_nhwc_run};
const kiln_kernel kiln_kernel_cuda_transpose = {"cuda.transpose", transpose_prepare, free, transpose_run};
const kiln_kernel kiln_kernel_cuda_concat = {"cuda.concat", concat_prepare, free, concat_run};
const kiln_kernel kiln_kernel_cuda_split = {"cuda.split", split_prepare, free, split_run};
#endif

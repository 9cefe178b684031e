/*
 * The LINEAR "cuda.*" layer kernels that lower_cuda_ops.c emits (parameters in cuda_layers_ops.h):
 * cuda.gemm, cuda.reduce, cuda.strided_copy, cuda.gather, cuda.pad, cuda.resize, cuda.unary, cuda.select.
 * As in kernels_cuda.c: prepare validates the parameters against the tensor records once at load (an
 * engine whose parameters would let a launch reach outside a tensor is refused), run only enqueues on
 * ex->stream (no allocation, no sync).
 */
#ifdef KILN_HAVE_CUDA
#include "backend/cuda/cuda_layers_ops.h"
#include "backend/cuda/kernel_checks.h"
#include "core/dtype.h"
#include "runtime/kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sizes above this are refused outright: it keeps every product below int64 overflow in the checks. */
#define BIG ((int64_t)1 << 40)

/* The kernels here never run in place. */
static kiln_status take_params(kiln_layer_rt *L, size_t size, int n_in_min, int n_in_max, int n_out_min, int n_out_max) {
  return take_params_checked(L, size, n_in_min, n_in_max, n_out_min, n_out_max, 0);
}

static int linear_is(const kiln_tensor_rec *t, uint32_t dtype) { return t->layout == KILN_LAYOUT_LINEAR && t->dtype == dtype; }
static int linear_f32(const kiln_tensor_rec *t) { return linear_is(t, KILN_DTYPE_FLOAT32); }

/* a * b with both in [0, BIG), or -1. */
static int64_t mul_ok(int64_t a, int64_t b) {
  if (a < 0 || b < 0 || a >= BIG || b >= BIG) return -1;
  if (a && b > INT64_MAX / a) return -1;
  return a * b;
}

/* ---- cuda.gemm -------------------------------------------------------------------------------------- */
/* 1 + the largest element index an operand stored as `rows` x `cols` with leading dim ld, batched with
 * strides bs over the desc's batch dims, is read at; 0 if it is not read; -1 if something is off. */
static int64_t gemm_reach(const kiln_cuda_gemm_desc *d, int64_t rows, int64_t cols, int64_t rs, int64_t cs, const int64_t *bs) {
  if (!rows || !cols) return 0;
  int64_t r = mul_ok(rows - 1, rs), c = mul_ok(cols - 1, cs);
  if (r < 0 || c < 0) return -1;
  int64_t reach = r + c + 1;
  for (int i = 0; i < d->batch_rank; i++) {
    if (!d->batch_dims[i]) return 0;
    int64_t t = mul_ok(d->batch_dims[i] - 1, bs ? bs[i] : 0);
    if (t < 0 || reach > BIG) return -1;
    reach += t;
  }
  return reach;
}

static kiln_status gemm_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_gemm_params), 2, 3, 1, 1));
  kiln_cuda_gemm_desc *d = &((kiln_cuda_gemm_params *)L->state)->desc;
  const kiln_tensor_rec *a = tensor(e, L->in[0]), *b = tensor(e, L->in[1]), *c = L->n_in > 2 ? tensor(e, L->in[2]) : NULL;
  const kiln_tensor_rec *y = tensor(e, L->out[0]);
  if (d->compute != KILN_CUDA_F32 || d->out_dtype != KILN_CUDA_F32 || d->c_dtype != KILN_CUDA_F32 || !linear_f32(a) ||
      !linear_f32(b) || !linear_f32(y) || (c && !linear_f32(c)) || !isfinite(d->alpha) || !isfinite(d->beta))
    return bad_layer(L, "GEMM operands must be LINEAR float32");
  KILN_TRY(kiln_error_prefix(kiln_cuda_gemm_validate(d), "layer '%s': ", L->name));
  if (d->m >= BIG || d->n >= BIG || d->k >= BIG || d->c_stride_m < 0 || d->c_stride_n < 0) return bad_layer(L, "bad GEMM extents");
  for (int i = 0; i < d->batch_rank; i++)
    if (d->a_batch_stride[i] < 0 || d->b_batch_stride[i] < 0 || d->c_batch_stride[i] < 0 || d->batch_dims[i] >= BIG)
      return bad_layer(L, "bad GEMM batch strides");
  int64_t lda = d->lda ? d->lda : (d->trans_a ? d->m : d->k), ldb = d->ldb ? d->ldb : (d->trans_b ? d->k : d->n);
  int64_t ldy = d->ldy ? d->ldy : d->n;
  /* op(A) is M x K: A stored [M][lda] or, transposed, [K][lda]; likewise B */
  int64_t ra = d->trans_a ? gemm_reach(d, d->k, d->m, lda, 1, d->a_batch_stride) : gemm_reach(d, d->m, d->k, lda, 1, d->a_batch_stride);
  int64_t rb = d->trans_b ? gemm_reach(d, d->n, d->k, ldb, 1, d->b_batch_stride) : gemm_reach(d, d->k, d->n, ldb, 1, d->b_batch_stride);
  if (!d->n || !d->m) ra = rb = 0; /* nothing computed, nothing read */
  int64_t batch = 1;
  for (int i = 0; i < d->batch_rank; i++) batch = mul_ok(batch, d->batch_dims[i]);
  int64_t ybs = d->y_batch_stride ? d->y_batch_stride : mul_ok(d->m, ldy);
  int64_t ry = 0;
  if (batch > 0 && d->m && d->n) {
    int64_t t = mul_ok(batch - 1, ybs), r = mul_ok(d->m - 1, ldy);
    ry = t < 0 || r < 0 || batch < 0 ? -1 : t + r + d->n;
  }
  int64_t rc = c && d->beta != 0.f && d->m && d->n ? gemm_reach(d, d->m, d->n, d->c_stride_m, d->c_stride_n, d->c_batch_stride) : 0;
  if (ra < 0 || rb < 0 || ry < 0 || rc < 0 || batch < 0 || ra > numel(a) || rb > numel(b) || ry > numel(y) ||
      (c && rc > numel(c)))
    return bad_layer(L, "GEMM reaches outside its tensors");
  return NULL;
}

static kiln_status gemm_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_gemm_params *p = L->state;
  return kiln_cuda_gemm(&p->desc, ex->ptrs[L->in[0]], ex->ptrs[L->in[1]], L->n_in > 2 ? ex->ptrs[L->in[2]] : NULL,
                        ex->ptrs[L->out[0]], ex->stream);
}

/* ---- cuda.reduce ------------------------------------------------------------------------------------ */
static kiln_status reduce_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_reduce_params), 1, 1, 1, 1));
  const kiln_cuda_reduce_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  int64_t oi = mul_ok(p->outer, p->inner), all = mul_ok(oi, p->len);
  if (p->kind < 0 || p->kind > 2 || (p->kind == 0 && (p->op < 0 || p->op > KILN_CUDA_REDUCE_LOG_SUM_EXP)) || oi < 0 ||
      all < 0 || !linear_f32(x) || all != numel(x) || oi != numel(y))
    return bad_layer(L, "tensors do not match the reduction");
  if (p->kind == 0 ? !linear_f32(y) : (!linear_is(y, KILN_DTYPE_INT64) || p->len < 1))
    return bad_layer(L, "bad reduction output");
  return NULL;
}

static kiln_status reduce_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_reduce_params *p = L->state;
  if (p->kind == 0)
    return kiln_cuda_reduce((kiln_cuda_reduce_op)p->op, KILN_CUDA_F32, p->outer, p->len, p->inner, ex->ptrs[L->in[0]],
                            ex->ptrs[L->out[0]], ex->stream);
  return kiln_cuda_argreduce(p->kind == 2, p->select_last, KILN_CUDA_F32, p->outer, p->len, p->inner, ex->ptrs[L->in[0]],
                             ex->ptrs[L->out[0]], ex->stream);
}

/* ---- cuda.strided_copy ------------------------------------------------------------------------------ */
static int elem_ok(const kiln_tensor_rec *t) {
  size_t es = kiln_dtype_size((kiln_dtype)t->dtype);
  return t->layout == KILN_LAYOUT_LINEAR && (es == 1 || es == 2 || es == 4 || es == 8);
}

static kiln_status strided_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_strided_params), 1, 1, 1, 1));
  const kiln_cuda_strided_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (!elem_ok(x) || x->dtype != y->dtype || y->layout != KILN_LAYOUT_LINEAR || p->rank < 1 || p->rank > KILN_CUDA_COPY_MAX_RANK)
    return bad_layer(L, "malformed strided copy");
  /* the lowest and highest source element any index reaches must lie inside x */
  int64_t total = 1, lo = p->src_offset, hi = p->src_offset;
  if (lo < 0 || lo >= BIG) return bad_layer(L, "bad source offset");
  for (int32_t d = 0; d < p->rank; d++) {
    total = mul_ok(total, p->dims[d]);
    int64_t s = p->src_strides[d], t = p->dims[d] ? mul_ok(p->dims[d] - 1, s < 0 ? -s : s) : 0;
    if (total < 0 || t < 0 || s <= -BIG || s >= BIG) return bad_layer(L, "bad strided copy extents");
    if (s < 0) lo -= t;
    else hi += t;
  }
  if (total != numel(y)) return bad_layer(L, "strided copy does not fill its output");
  if (total && (lo < 0 || hi >= numel(x))) return bad_layer(L, "strided copy reads outside its input");
  return NULL;
}

static kiln_status strided_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_strided_params *p = L->state;
  return kiln_cuda_strided_copy(kiln_dtype_size((kiln_dtype)ex->tensors[L->in[0]].dtype), p->rank, p->dims, ex->ptrs[L->in[0]],
                                p->src_offset, p->src_strides, ex->ptrs[L->out[0]], NULL, ex->stream);
}

/* ---- cuda.gather ------------------------------------------------------------------------------------ */
static kiln_status gather_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_gather_params), 2, 2, 1, 1));
  const kiln_cuda_gather_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *ix = tensor(e, L->in[1]), *y = tensor(e, L->out[0]);
  int64_t oi = mul_ok(p->outer, p->inner), xn = mul_ok(oi, p->axis_len), yn = mul_ok(oi, p->n_indices);
  if (!elem_ok(x) || x->dtype != y->dtype || y->layout != KILN_LAYOUT_LINEAR || !linear_is(ix, KILN_DTYPE_INT64) || oi < 0 ||
      xn < 0 || yn < 0 || xn != numel(x) || yn != numel(y) || p->n_indices != numel(ix))
    return bad_layer(L, "tensors do not match the gather");
  /* constant indices are checked here as well as at build time (the kernel zero-fills bad ones anyway) */
  if (ix->storage == KILN_STORAGE_WEIGHT && e->weights) {
    if (ix->offset > e->weights_size || ix->nbytes > e->weights_size - ix->offset) return bad_layer(L, "indices outside the weights");
    for (int64_t j = 0; j < p->n_indices; j++) {
      int64_t k;
      memcpy(&k, e->weights + ix->offset + (size_t)j * 8, 8);
      if (k < -p->axis_len || k >= p->axis_len) return bad_layer(L, "gather index out of range");
    }
  }
  return NULL;
}

static kiln_status gather_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_gather_params *p = L->state;
  return kiln_cuda_gather(kiln_dtype_size((kiln_dtype)ex->tensors[L->in[0]].dtype), p->outer, p->axis_len, p->inner,
                          ex->ptrs[L->in[0]], ex->ptrs[L->in[1]], p->n_indices, ex->ptrs[L->out[0]], ex->stream);
}

/* ---- cuda.pad --------------------------------------------------------------------------------------- */
static kiln_status pad_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_pad_params), 1, 1, 1, 1));
  const kiln_cuda_pad_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (!elem_ok(x) || x->dtype != y->dtype || y->layout != KILN_LAYOUT_LINEAR || p->mode < 0 || p->mode > KILN_CUDA_PAD_REFLECT ||
      p->rank != (int32_t)x->rank || y->rank != x->rank || p->rank > KILN_CUDA_COPY_MAX_RANK)
    return bad_layer(L, "malformed pad");
  for (int32_t d = 0; d < p->rank; d++) {
    if (p->begin[d] <= -BIG || p->begin[d] >= BIG || p->end[d] <= -BIG || p->end[d] >= BIG ||
        x->dims[d] + p->begin[d] + p->end[d] != y->dims[d])
      return bad_layer(L, "pads do not match the tensors");
    if (p->mode != KILN_CUDA_PAD_CONSTANT && x->dims[d] == 0 && y->dims[d] > 0) return bad_layer(L, "edge/reflect pad of an empty dim");
  }
  return NULL;
}

static kiln_status pad_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_pad_params *p = L->state;
  const kiln_tensor_rec *x = &ex->tensors[L->in[0]];
  return kiln_cuda_pad(kiln_dtype_size((kiln_dtype)x->dtype), (kiln_cuda_pad_mode)p->mode, p->rank, x->dims, p->begin, p->end,
                       p->value, ex->ptrs[L->in[0]], ex->ptrs[L->out[0]], ex->stream);
}

/* ---- cuda.resize (NCHW, any scale) ------------------------------------------------------------------ */
static kiln_status resize_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_resize_any_params), 1, 1, 1, 1));
  const kiln_cuda_resize_desc *d = &((const kiln_cuda_resize_any_params *)L->state)->desc;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (d->nhwc || d->dtype != KILN_CUDA_F32 || !linear_f32(x) || !linear_f32(y) || x->rank != 4 || y->rank != 4 ||
      x->dims[0] != d->batch || x->dims[1] != d->channels || x->dims[2] != d->in_h || x->dims[3] != d->in_w ||
      y->dims[0] != d->batch || y->dims[1] != d->channels || y->dims[2] != d->out_h || y->dims[3] != d->out_w ||
      (int)d->mode < 0 || d->mode > KILN_CUDA_RESIZE_LINEAR || (int)d->coord < 0 || d->coord > KILN_CUDA_COORD_TF_HALF_PIXEL_FOR_NN ||
      (int)d->nearest < 0 || d->nearest > KILN_CUDA_NEAREST_CEIL || !(d->scale_h >= 0) || !(d->scale_w >= 0) ||
      !isfinite(d->scale_h) || !isfinite(d->scale_w) || ((d->out_h || d->out_w) && (d->in_h < 1 || d->in_w < 1)))
    return bad_layer(L, "tensors do not match the resize");
  return NULL;
}

static kiln_status resize_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  return kiln_cuda_resize(&((const kiln_cuda_resize_any_params *)L->state)->desc, ex->ptrs[L->in[0]], ex->ptrs[L->out[0]],
                          ex->stream);
}

/* ---- cuda.unary ------------------------------------------------------------------------------------- */
static kiln_status unary_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_unary_params), 1, 1, 1, 1));
  const kiln_cuda_unary_params *p = L->state;
  const kiln_tensor_rec *x = tensor(e, L->in[0]), *y = tensor(e, L->out[0]);
  if (p->op < 0 || p->op >= KILN_CUDA_UN_COUNT || !linear_f32(x) || !linear_f32(y) || numel(x) != numel(y))
    return bad_layer(L, "tensors do not match the unary op");
  return NULL;
}

static kiln_status unary_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_unary_params *p = L->state;
  return kiln_cuda_unary((kiln_cuda_unary_op)p->op, p->alpha, p->beta, numel(&ex->tensors[L->in[0]]), ex->ptrs[L->in[0]],
                         ex->ptrs[L->out[0]], ex->stream);
}

/* ---- cuda.select: comparisons and Where with broadcasting ------------------------------------------- */
static int broadcasts_to(const kiln_tensor_rec *t, const kiln_tensor_rec *y) {
  if (t->rank > y->rank) return 0;
  for (uint32_t d = 0; d < t->rank; d++) {
    int64_t n = t->dims[d], want = y->dims[d + y->rank - t->rank];
    if (n != 1 && n != want) return 0;
  }
  return 1;
}

static kiln_status select_prepare(const kiln_engine_view *e, kiln_layer_rt *L) {
  KILN_TRY(take_params(L, sizeof(kiln_cuda_select_params), 2, 3, 1, 1));
  const kiln_cuda_select_params *p = L->state;
  int where = p->op == KILN_CUDA_WHERE;
  if (p->op < 0 || p->op >= KILN_CUDA_SELECT_COUNT || L->n_in != (where ? 3 : 2)) return bad_layer(L, "malformed select");
  const kiln_tensor_rec *c = where ? tensor(e, L->in[0]) : NULL, *a = tensor(e, L->in[where]), *b = tensor(e, L->in[where + 1]);
  const kiln_tensor_rec *y = tensor(e, L->out[0]);
  if (!linear_f32(a) || !linear_f32(b) || (c && !linear_is(c, KILN_DTYPE_BOOL)) ||
      !linear_is(y, where ? KILN_DTYPE_FLOAT32 : KILN_DTYPE_BOOL) || y->rank > KILN_CUDA_SELECT_MAX_RANK ||
      !broadcasts_to(a, y) || !broadcasts_to(b, y) || (c && !broadcasts_to(c, y)))
    return bad_layer(L, "operands do not broadcast to the result");
  return NULL;
}

static kiln_status select_run(const kiln_layer_rt *L, const kiln_exec *ex) {
  const kiln_cuda_select_params *p = L->state;
  int w = p->op == KILN_CUDA_WHERE;
  const kiln_tensor_rec *c = w ? &ex->tensors[L->in[0]] : NULL, *a = &ex->tensors[L->in[w]], *b = &ex->tensors[L->in[w + 1]];
  const kiln_tensor_rec *y = &ex->tensors[L->out[0]];
  return kiln_cuda_select((kiln_cuda_select_op)p->op, (int)y->rank, y->dims, c ? ex->ptrs[L->in[0]] : NULL, c ? (int)c->rank : 0,
                          c ? c->dims : NULL, ex->ptrs[L->in[w]], (int)a->rank, a->dims, ex->ptrs[L->in[w + 1]], (int)b->rank,
                          b->dims, ex->ptrs[L->out[0]], ex->stream);
}

const kiln_kernel kiln_kernel_cuda_gemm = {"cuda.gemm", gemm_prepare, free, gemm_run};
const kiln_kernel kiln_kernel_cuda_reduce = {"cuda.reduce", reduce_prepare, free, reduce_run};
const kiln_kernel kiln_kernel_cuda_strided_copy = {"cuda.strided_copy", strided_prepare, free, strided_run};
const kiln_kernel kiln_kernel_cuda_gather = {"cuda.gather", gather_prepare, free, gather_run};
const kiln_kernel kiln_kernel_cuda_pad = {"cuda.pad", pad_prepare, free, pad_run};
const kiln_kernel kiln_kernel_cuda_resize = {"cuda.resize", resize_prepare, free, resize_run};
const kiln_kernel kiln_kernel_cuda_unary = {"cuda.unary", unary_prepare, free, unary_run};
const kiln_kernel kiln_kernel_cuda_select = {"cuda.select", select_prepare, free, select_run};
#endif

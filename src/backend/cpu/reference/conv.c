/* conv family: reference kernels for Conv and ConvTranspose (any rank, group, dilation, padding).
 * Computes in double so the result is the correctly rounded ground truth for float16/32/64. */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/conv.h"

#include <stdlib.h>
#include <string.h>

/* Widen a tensor to a malloc'd double array (NULL on OOM; a 1-element buffer for empty tensors). */
static double *widen(const kiln_tensor *t, int64_t count) {
  double *d = malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
  if (!d) return NULL;
  for (int64_t i = 0; i < count; i++) d[i] = kiln_dtype_load_f64(t->dtype, t->data, i);
  return d;
}

/* Fill coords[k*nsp + j] with the j-th coordinate of kernel position k (row-major). */
static void kernel_coords(const kiln_window_geom *gm, int64_t nk, int64_t *coords) {
  for (int64_t k = 0; k < nk; k++) {
    int64_t r = k;
    for (int32_t j = gm->nsp - 1; j >= 0; j--) {
      coords[k * gm->nsp + j] = r % gm->kernel[j];
      r /= gm->kernel[j];
    }
  }
}

static kiln_status run_conv(const kiln_conv_params *r, bool transpose, const double *x, const double *w,
                            const double *b, double *y) {
  const kiln_window_geom *gm = &r->geom;
  int32_t nsp = gm->nsp;
  int64_t in_sp = 1, out_sp = 1, nk = 1;
  for (int32_t j = 0; j < nsp; j++) in_sp *= gm->in[j], out_sp *= gm->out[j], nk *= gm->kernel[j];
  int64_t G = r->group, C = r->in_channels, M = r->out_channels, Cg = C / G, Mg = M / G;
  int64_t *kc = malloc((size_t)(nk > 0 ? nk : 1) * (size_t)nsp * sizeof(int64_t));
  if (!kc) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  kernel_coords(gm, nk, kc);
  if (!transpose) {
    /* W: [M, Cg, k...]; y[n, m, o] = b[m] + sum_{ic, k} x[n, g*Cg+ic, o*s + k*d - pb] * w[m, ic, k].
     * Loop order puts the last output dim innermost so a whole model (YOLOv8n) stays tractable. */
    int32_t L = nsp - 1;
    int64_t out_last = gm->out[L], in_last = gm->in[L], outer = out_last ? out_sp / out_last : 0;
    for (int64_t nb = 0; nb < r->batch; nb++)
      for (int64_t m = 0; m < M; m++) {
        int64_t g = m / Mg;
        double *yb = y + (nb * M + m) * out_sp;
        for (int64_t o = 0; o < out_sp; o++) yb[o] = b ? b[m] : 0.0;
        for (int64_t ic = 0; ic < Cg; ic++) {
          const double *xc = x + (nb * C + g * Cg + ic) * in_sp;
          for (int64_t k = 0; k < nk; k++) {
            double wv = w[(m * Cg + ic) * nk + k];
            const int64_t *kk = kc + k * nsp;
            for (int64_t oo = 0; oo < outer; oo++) {
              /* input row for the outer output coords; skip rows that fall in the padding */
              int64_t rem = oo, row = 0, mul = 1;
              bool inside = true;
              for (int32_t j = L - 1; j >= 0; j--) {
                int64_t p = rem % gm->out[j];
                rem /= gm->out[j];
                int64_t c = p * gm->strides[j] + kk[j] * gm->dilations[j] - gm->pad_begin[j];
                if (c < 0 || c >= gm->in[j]) {
                  inside = false;
                  break;
                }
                row += c * mul;
                mul *= gm->in[j];
              }
              if (!inside) continue;
              const double *xr = xc + row * in_last;
              double *yr = yb + oo * out_last;
              int64_t off = kk[L] * gm->dilations[L] - gm->pad_begin[L], st = gm->strides[L];
              for (int64_t ol = 0; ol < out_last; ol++) {
                int64_t c = ol * st + off;
                if (c >= 0 && c < in_last) yr[ol] += wv * xr[c];
              }
            }
          }
        }
      }
  } else {
    /* W: [C, Mg, k...]; every input element scatters into y at i*s + k*d - pb (the crop). */
    int64_t pos[KILN_MAX_SPATIAL];
    for (int64_t nb = 0; nb < r->batch; nb++)
      for (int64_t m = 0; m < M; m++)
        for (int64_t o = 0; o < out_sp; o++) y[(nb * M + m) * out_sp + o] = b ? b[m] : 0.0;
    for (int64_t nb = 0; nb < r->batch; nb++)
      for (int64_t c = 0; c < C; c++) {
        int64_t g = c / Cg;
        for (int64_t i = 0; i < in_sp; i++) {
          int64_t rem = i;
          for (int32_t j = nsp - 1; j >= 0; j--) pos[j] = rem % gm->in[j], rem /= gm->in[j];
          double xv = x[(nb * C + c) * in_sp + i];
          for (int64_t k = 0; k < nk; k++) {
            int64_t off = 0;
            bool inside = true;
            for (int32_t j = 0; j < nsp; j++) {
              int64_t oc = pos[j] * gm->strides[j] + kc[k * nsp + j] * gm->dilations[j] - gm->pad_begin[j];
              if (oc < 0 || oc >= gm->out[j]) {
                inside = false;
                break;
              }
              off = off * gm->out[j] + oc;
            }
            if (!inside) continue;
            for (int64_t mo = 0; mo < Mg; mo++)
              y[(nb * M + g * Mg + mo) * out_sp + off] += xv * w[(c * Mg + mo) * nk + k];
          }
        }
      }
  }
  free(kc);
  return NULL;
}

kiln_status kiln_ref_conv(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  (void)g;
  const kiln_conv_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "not parsed");
  bool transpose = n->op == KILN_OP_ConvTranspose;
  const kiln_tensor *X = &in[0], *W = &in[1], *B = n->n_inputs > 2 && in[2].data ? &in[2] : NULL;
  if (!kiln_dtype_is_float(X->dtype) || W->dtype != X->dtype || out[0].dtype != X->dtype ||
      (B && B->dtype != X->dtype))
    return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(X->dtype));
  if (X->rank != W->rank || X->rank < 3 || X->rank > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_SHAPE, "X and W must have the same rank >= 3");
  kiln_conv_params r;
  KILN_TRY(kiln_conv_resolve(n, p, X->rank, X->dims, W->dims, &r));
  if (!r.resolved) return kiln_error(KILN_ERR_SHAPE, "shapes are not static");
  if (out[0].rank != X->rank || out[0].dims[0] != r.batch || out[0].dims[1] != r.out_channels)
    return kiln_error(KILN_ERR_SHAPE, "output shape does not match the inputs");
  for (int32_t j = 0; j < r.geom.nsp; j++)
    if (out[0].dims[j + 2] != r.geom.out[j]) return kiln_error(KILN_ERR_SHAPE, "output shape does not match the inputs");
  if (B && (B->rank != 1 || B->dims[0] != r.out_channels))
    return kiln_error(KILN_ERR_SHAPE, "bias must have shape [%lld]", (long long)r.out_channels);
  int64_t nx = kiln_tensor_numel(X), nw = kiln_tensor_numel(W), ny = kiln_tensor_numel(&out[0]);
  double *x = widen(X, nx), *w = widen(W, nw), *b = B ? widen(B, B->dims[0]) : NULL;
  double *y = malloc((size_t)(ny > 0 ? ny : 1) * sizeof(double));
  kiln_status st = NULL;
  if (!x || !w || !y || (B && !b)) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  if (!st) st = run_conv(&r, transpose, x, w, b, y);
  if (!st)
    for (int64_t i = 0; i < ny; i++) kiln_dtype_store_f64(out[0].dtype, out[0].data, i, y[i]);
  free(x);
  free(w);
  free(b);
  free(y);
  return st;
}

/* Load-time checks shared by the "cuda.*" layer kernels (kernels_cuda.c, kernels_cuda_ops.c): every
 * prepare validates its parameter blob and tensor ids before it trusts them, and names the layer. */
#ifndef KILN_BACKEND_CUDA_KERNEL_CHECKS_H
#define KILN_BACKEND_CUDA_KERNEL_CHECKS_H

#include "runtime/kernel.h"

#include <stdlib.h>
#include <string.h>

static inline kiln_status bad_layer(const kiln_layer_rt *L, const char *what) {
  return kiln_error(KILN_ERR_PARSE, "invalid engine file: layer '%s' (%s): %s", L->name, L->kernel_name, what);
}

static inline const kiln_tensor_rec *tensor(const kiln_engine_view *e, int32_t id) {
  return id >= 0 && id < e->n_tensors ? &e->tensors[id] : NULL;
}

static inline int64_t numel(const kiln_tensor_rec *t) {
  int64_t n = 1;
  for (uint32_t d = 0; d < t->rank; d++) n *= t->dims[d];
  return n;
}

/* A params blob of exactly `size` bytes, input/output counts in range, no omitted tensor, and (unless
 * may_alias) no input that is also the output; copied into a fresh L->state. */
static inline kiln_status take_params_checked(kiln_layer_rt *L, size_t size, int n_in_min, int n_in_max, int n_out_min,
                                              int n_out_max, int may_alias) {
  if (L->params_size != size || L->n_in < n_in_min || L->n_in > n_in_max || L->n_out < n_out_min || L->n_out > n_out_max)
    return bad_layer(L, "malformed parameters");
  for (int32_t k = 0; k < L->n_in; k++)
    if (L->in[k] < 0) return bad_layer(L, "missing input");
  for (int32_t k = 0; k < L->n_out; k++)
    if (L->out[k] < 0) return bad_layer(L, "missing output");
  for (int32_t k = 0; !may_alias && k < L->n_in; k++)
    if (L->in[k] == L->out[0]) return bad_layer(L, "output aliases an input");
  void *s = malloc(size ? size : 1);
  KILN_CHECK_ALLOC(s);
  memcpy(s, L->params, size);
  L->state = s;
  return NULL;
}

#endif

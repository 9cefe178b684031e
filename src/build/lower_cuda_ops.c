/*
 * More LINEAR ops for CUDA engines (see lower_cuda.h): each matched node becomes one "cuda.*" layer
 * from backend/cuda/kernels_cuda_ops.c. Nothing is matched yet.
 */
#include "build/lower_cuda.h"

kiln_status kiln_lower_cuda_ops(cuda_lower *cl, int32_t i, bool *done) {
  (void)cl, (void)i;
  *done = false;
  return NULL;
}

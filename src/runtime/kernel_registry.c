/* Kernel names -> implementations. Names are part of the engine format: never reuse one for a kernel
 * with different parameters; give the new one a new name. */
#include "runtime/kernel.h"

#include <string.h>

static const kiln_kernel *const kernels[] = {
    &kiln_kernel_ref,
    &kiln_kernel_cpu_conv,
    &kiln_kernel_cpu_pool2d,
    &kiln_kernel_cpu_resize2d,
    &kiln_kernel_cpu_softmax,
    &kiln_kernel_cpu_binary,
    &kiln_kernel_cpu_unary,
    &kiln_kernel_cpu_transpose,
    &kiln_kernel_cpu_concat,
    &kiln_kernel_cpu_gemm,
#ifdef KILN_HAVE_CUDA
    &kiln_kernel_cuda_convert,
    &kiln_kernel_cuda_convert_concat,
    &kiln_kernel_cuda_conv,
    &kiln_kernel_cuda_maxpool,
    &kiln_kernel_cuda_maxpool_chain,
    &kiln_kernel_cuda_resize_nearest,
    &kiln_kernel_cuda_eltwise,
    &kiln_kernel_cuda_pointwise,
    &kiln_kernel_cuda_softmax,
    &kiln_kernel_cuda_softmax_dot,
    &kiln_kernel_cuda_softmax_dot_nhwc,
    &kiln_kernel_cuda_transpose,
    &kiln_kernel_cuda_concat,
    &kiln_kernel_cuda_split,
#endif
#ifdef KILN_HAVE_CUDA /* LINEAR ops (backend/cuda/kernels_cuda_ops.c) */
    &kiln_kernel_cuda_gemm,
    &kiln_kernel_cuda_reduce,
    &kiln_kernel_cuda_strided_copy,
    &kiln_kernel_cuda_gather,
    &kiln_kernel_cuda_pad,
    &kiln_kernel_cuda_resize,
    &kiln_kernel_cuda_unary,
    &kiln_kernel_cuda_select,
#endif
};

const kiln_kernel *kiln_kernel_find(const char *name) {
  for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
    if (!strcmp(kernels[i]->name, name)) return kernels[i];
  return NULL;
}

/*
 * CUDA error checking for the CUDA backend: every runtime call goes through KILN_CUDA_TRY, which turns
 * a failure into a kiln_status (KILN_ERR_DEVICE) naming the call, the CUDA error, file and line, so a
 * user sees "conv_cuda.cu:312: cudaMemcpyAsync(...) failed: invalid argument" instead of a bare code.
 *
 * Include only from .cu files or from C files compiled with KILN_HAVE_CUDA (it needs cuda_runtime.h).
 * Kernel launches: call KILN_CUDA_LAUNCH_CHECK() right after <<<...>>>; it reads cudaGetLastError(),
 * which reports launch-configuration errors without synchronizing (asynchronous faults surface at the
 * next synchronizing call, which the caller checks the same way).
 */
#ifndef KILN_BACKEND_CUDA_CHECK_H
#define KILN_BACKEND_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "backend/cuda/cuda_types.h"

#ifdef __cplusplus
extern "C" {
#endif
#include "core/status.h"
#ifdef __cplusplus
}
#endif


#define KILN_CUDA_TRY(call)                                                                          \
  do {                                                                                               \
    cudaError_t kiln_cuda_e_ = (call);                                                               \
    if (kiln_cuda_e_ != cudaSuccess)                                                                 \
      return kiln_error(KILN_ERR_DEVICE, "%s:%d: %s failed: %s (%s)", __FILE__, __LINE__, #call,     \
                        cudaGetErrorString(kiln_cuda_e_), cudaGetErrorName(kiln_cuda_e_));           \
  } while (0)

#define KILN_CUDA_LAUNCH_CHECK()                                                                     \
  do {                                                                                               \
    cudaError_t kiln_cuda_e_ = cudaGetLastError();                                                   \
    if (kiln_cuda_e_ != cudaSuccess)                                                                 \
      return kiln_error(KILN_ERR_DEVICE, "%s:%d: kernel launch failed: %s (%s)", __FILE__, __LINE__, \
                        cudaGetErrorString(kiln_cuda_e_), cudaGetErrorName(kiln_cuda_e_));           \
  } while (0)

#endif

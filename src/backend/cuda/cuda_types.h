/* Types shared by the CUDA kernel headers. Plain C, no cuda_runtime.h: the engine's C code can include
 * the kernel APIs and pass a cudaStream_t (the same type as kiln_cuda_stream: struct CUstream_st *). */
#ifndef KILN_BACKEND_CUDA_TYPES_H
#define KILN_BACKEND_CUDA_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "core/status.h" /* its declarations carry no C++ linkage guard of their own */
#ifdef __cplusplus
}
#endif

typedef struct CUstream_st *kiln_cuda_stream;

/* Element types of CUDA kernel tensors; the values are kiln_dtype's (ONNX numbering). Only fp32 and
 * fp16 activations exist on the GPU so far (int8 comes with its own kernels). */
typedef enum kiln_cuda_dtype {
  KILN_CUDA_F32 = 1,  /* KILN_DTYPE_FLOAT32 */
  KILN_CUDA_F16 = 10, /* KILN_DTYPE_FLOAT16 */
} kiln_cuda_dtype;

#endif

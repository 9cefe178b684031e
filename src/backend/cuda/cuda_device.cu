// CUDA device discovery: the CUDA backend's entry point for picking and describing a GPU.
extern "C" {
#include "backend/cuda/cuda_device.h"
}
#include <cuda_runtime.h>
#include <string.h>

extern "C" int kiln_cuda_device_count(void) {
  int n = 0;
  // No driver or no GPU (CI, CPU-only machines) is not an error here: it means "no CUDA devices".
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

extern "C" kiln_status kiln_cuda_device_query(int index, kiln_cuda_device_info *out) {
  memset(out, 0, sizeof *out);
  cudaDeviceProp p;
  cudaError_t e = cudaGetDeviceProperties(&p, index);
  if (e != cudaSuccess)
    return kiln_error(KILN_ERR_DEVICE, "CUDA device %d: %s (%s:%d)", index, cudaGetErrorString(e), __FILE__, __LINE__);
  out->index = index;
  out->cc_major = p.major;
  out->cc_minor = p.minor;
  out->sm_count = p.multiProcessorCount;
  out->total_memory = p.totalGlobalMem;
  cudaDriverGetVersion(&out->driver_version);
  cudaRuntimeGetVersion(&out->runtime_version);
  size_t len = strnlen(p.name, sizeof p.name);
  if (len >= sizeof out->name) len = sizeof out->name - 1;
  memcpy(out->name, p.name, len);
  return NULL;
}

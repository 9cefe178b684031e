/* Without CUDA (no nvcc at build time) the device queries report no devices. */
#include "backend/cuda/cuda_device.h"

#ifndef KILN_HAVE_CUDA
#include <string.h>
int kiln_cuda_device_count(void) { return 0; }
kiln_status kiln_cuda_device_query(int index, kiln_cuda_device_info *out) {
  memset(out, 0, sizeof *out);
  return kiln_error(KILN_ERR_DEVICE, "kiln was built without CUDA support (no nvcc found at build time)");
}
#endif

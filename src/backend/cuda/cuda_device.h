/* CUDA device discovery. Compiled only when nvcc is found; kiln_cuda_available() is always defined. */
#ifndef KILN_BACKEND_CUDA_DEVICE_H
#define KILN_BACKEND_CUDA_DEVICE_H

#include "core/status.h"

typedef struct kiln_cuda_device_info {
  int index;
  int cc_major, cc_minor;   /* compute capability */
  int sm_count;
  size_t total_memory;
  int driver_version, runtime_version;
  char name[256];
} kiln_cuda_device_info;

/* Number of usable CUDA devices; 0 when kiln was built without CUDA, or no driver/GPU is present. */
int kiln_cuda_device_count(void);
kiln_status kiln_cuda_device_query(int index, kiln_cuda_device_info *out);

#endif

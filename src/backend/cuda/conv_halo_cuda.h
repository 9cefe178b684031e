// Internal (C++/CUDA only) interface between conv_cuda.cu, which owns the conv API, the tactic list and the
// choice, and conv_halo_cuda.cu, the halo-tile kernel for small-kernel convs (3x3 stride 1 / 2).
// Eligible layers (conv_cuda.cu decides): group 1, fp16 compute, input channels (after in_zero_padded
// rounding) a multiple of 16, input pixel stride a multiple of 8 with a 16-byte aligned base, kernel at
// most 3x3 and not 1x1, and a halo stage that fits in shared memory.
#ifndef KILN_BACKEND_CUDA_CONV_HALO_CUDA_H
#define KILN_BACKEND_CUDA_CONV_HALO_CUDA_H

#include "backend/cuda/conv_mma.cuh"

#include <cuda_runtime.h>
#include <stddef.h>

namespace kiln_conv {

// Output tile of one block (TH x TW pixels of one image, TH * TW <= the config's BM), the input window it
// reads (HH x HW pixels), and the tile counts per image.
struct HaloGeo {
  int TH, TW, HH, HW, tiles_h, tiles_w;
};

int halo_config_count();
int halo_config_bn(int cfg);
int halo_config_bm(int cfg);
int halo_config_ck(int cfg); // input channels per shared-memory chunk (16 or 32)
HaloGeo halo_geometry(int cfg, int oh, int ow, int kh, int kw, int sh, int sw, int dh, int dw);
// The shared memory the launch needs fits smem_limit (bytes) and IC is a multiple of the config's chunk.
bool halo_fits(int cfg, const HaloGeo &g, int kk, int ic, size_t smem_limit);
const char *halo_name(int cfg);
// p as conv_cuda.cu fills it (p.IC = the K channel extent, p.wrows = packed weight rows). Async on s.
cudaError_t halo_launch(int cfg, const ConvP &p, const HaloGeo &g, const __half *x, const __half *w,
                        const float *bias, const void *res, void *y, bool f16out, cudaStream_t s);

// Raises a kernel's dynamic shared-memory limit when a launch needs more than 48 KB (conv_cuda.cu).
cudaError_t ensure_smem(const void *fn, int bytes);

} // namespace kiln_conv
#endif

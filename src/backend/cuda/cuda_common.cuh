// Device helpers shared by the CUDA kernel files (.cu only): activations mirroring kiln_act exactly as
// the CPU epilogue defines them, and fp16/fp32 load/store by template so one kernel body serves both.
#ifndef KILN_BACKEND_CUDA_COMMON_CUH
#define KILN_BACKEND_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <stdint.h>

#include "backend/cpu/epilogue.h"
#include "backend/cuda/cuda_check.h"

// Activation in fp32 (fp16 outputs are rounded once, after the whole epilogue). expf/erff/tanhf, not the
// fast intrinsics: the fp32 engines are held to 1e-4 against the CPU reference.
// The common activations are inline; the rest is one out-of-line function. Kernels call this once per
// element of unrolled loops, and inlining the whole switch there made most of their code dead switch
// arms: the executed path no longer fit the instruction caches (the conv kernels ran 17% faster at
// batch 32 once their epilogue did this, see conv_mma.cuh).
static __device__ __noinline__ float kiln_cuda_act_rare(float v, int act, float alpha, float beta) {
  switch (act) {
  case KILN_ACT_LEAKY_RELU: return v < 0.f ? alpha * v : v;
  case KILN_ACT_CLIP: return fminf(fmaxf(v, alpha), beta);
  case KILN_ACT_HARDSWISH: return v * fminf(fmaxf(v / 6.f + 0.5f, 0.f), 1.f);
  case KILN_ACT_HARDSIGMOID: return fminf(fmaxf(alpha * v + beta, 0.f), 1.f);
  case KILN_ACT_TANH: return tanhf(v);
  case KILN_ACT_GELU: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  default: return v;
  }
}
__device__ __forceinline__ float kiln_cuda_act(float v, int act, float alpha, float beta) {
  if (act == KILN_ACT_NONE) return v;
  if (act == KILN_ACT_SILU) return v / (1.f + expf(-v));
  if (act == KILN_ACT_SIGMOID) return 1.f / (1.f + expf(-v));
  if (act == KILN_ACT_RELU) return v > 0.f ? v : 0.f;
  return kiln_cuda_act_rare(v, act, alpha, beta);
}

__device__ __forceinline__ float kiln_ld(const float *p) { return *p; }
__device__ __forceinline__ float kiln_ld(const __half *p) { return __half2float(*p); }
__device__ __forceinline__ void kiln_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void kiln_st(__half *p, float v) { *p = __float2half_rn(v); }

static inline unsigned kiln_cuda_blocks(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  return (unsigned)(b < 1 ? 1 : (b > 0x7fffffff ? 0x7fffffff : b));
}

#endif

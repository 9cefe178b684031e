// Device-side pieces shared by the tensor-core conv kernels (conv_cuda.cu: the im2col implicit GEMM;
// conv_halo_cuda.cu: the halo-tile 3x3 kernel): the kernel parameter record, mma/ldmatrix/cp.async
// wrappers and the fused epilogue stores. Included by .cu files only; everything is internal linkage.
#ifndef KILN_BACKEND_CUDA_CONV_MMA_CUH
#define KILN_BACKEND_CUDA_CONV_MMA_CUH

#include "backend/cuda/cuda_common.cuh"

namespace kiln_conv {

// Kernel parameters by value: 32-bit sizes (checked in validate) keep index math cheap; pixel offsets
// are formed in 64 bits because batch*H*W*C can pass 2^31 for large batches.
struct ConvP {
  int N, IC, IH, IW, OC, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, G;
  int K, Kp, M;
  long long in_ps, out_ps, res_ps;
  int act, has_res, res_before;
  int pair; // y (and residual) allow aligned 2-channel stores / loads
  int vec8; // y (and residual) allow 16-byte aligned 8-channel stores / loads (staged epilogue)
  int wrows; // rows (output channels, padded) of the packed fp16 weights
  float alpha, beta;
};


__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, const uint32_t *b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void ldsm_x4(uint32_t *r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// B (weights): .cg, streamed through L2. A (activations): .ca, so the taps of a 3x3 window that
// neighbouring output pixels of one block share are served by L1 instead of L2.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_async16_ca(uint32_t dst, const void *src, bool ok) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// fp16-compute epilogues use the fast exp / divide intrinsics for SiLU and sigmoid (relative error ~1e-6,
// far below fp16 rounding; saturates correctly: v -> -inf gives 0). The exact fp32 path keeps expf.
// kiln_cuda_act keeps the rare activations out of line: inlined at every output of the unrolled
// epilogues, its whole switch made the kernels' executed path overflow the instruction caches.
template <bool FAST> __device__ __forceinline__ float conv_act(float v, int act, float alpha, float beta) {
  if (act == KILN_ACT_SILU) return FAST ? __fdividef(v, 1.f + __expf(-v)) : v / (1.f + expf(-v));
  if (act == KILN_ACT_NONE) return v;
  if (act == KILN_ACT_SIGMOID) return FAST ? __fdividef(1.f, 1.f + __expf(-v)) : 1.f / (1.f + expf(-v));
  if (act == KILN_ACT_RELU) return v > 0.f ? v : 0.f;
  return kiln_cuda_act(v, act, alpha, beta);
}

template <typename OutT, bool FAST = false>
__device__ __forceinline__ void conv_store(const ConvP &p, const float *bias, const OutT *res, OutT *y, int m,
                                           int oc, float v) {
  v += bias[oc];
  float r = 0.f;
  if (p.has_res) r = kiln_ld(res + (long long)m * p.res_ps + oc);
  if (p.res_before) v += r;
  v = conv_act<FAST>(v, p.act, p.alpha, p.beta);
  if (!p.res_before) v += r;
  kiln_st(y + (long long)m * p.out_ps + oc, v);
}

__device__ __forceinline__ void st2(__half *p, float a, float b) {
  *reinterpret_cast<__half2 *>(p) = __floats2half2_rn(a, b);
}
__device__ __forceinline__ void st2(float *p, float a, float b) { *reinterpret_cast<float2 *>(p) = make_float2(a, b); }
__device__ __forceinline__ float2 ld2(const __half *p) { return __half22float2(*reinterpret_cast<const __half2 *>(p)); }
__device__ __forceinline__ float2 ld2(const float *p) { return *reinterpret_cast<const float2 *>(p); }

// Channels oc and oc+1 of pixel m (oc even). p.pair says y/residual allow 2-element stores/loads.
template <typename OutT>
__device__ __forceinline__ void conv_store2(const ConvP &p, const float *bias, const OutT *res, OutT *y, int m,
                                            int oc, float v0, float v1) {
  if (oc + 1 < p.OC && p.pair) {
    v0 += bias[oc], v1 += bias[oc + 1];
    float2 r = make_float2(0.f, 0.f);
    if (p.has_res) r = ld2(res + (long long)m * p.res_ps + oc);
    if (p.res_before) v0 += r.x, v1 += r.y;
    v0 = conv_act<true>(v0, p.act, p.alpha, p.beta), v1 = conv_act<true>(v1, p.act, p.alpha, p.beta);
    if (!p.res_before) v0 += r.x, v1 += r.y;
    st2(y + (long long)m * p.out_ps + oc, v0, v1);
  } else {
    if (oc < p.OC) conv_store<OutT, true>(p, bias, res, y, m, oc, v0);
    if (oc + 1 < p.OC) conv_store<OutT, true>(p, bias, res, y, m, oc + 1, v1);
  }
}

// 8 channels oc..oc+7 of pixel m (oc % 8 == 0, oc + 8 <= OC, p.vec8): bias, residual and output in
// 16-byte accesses (fp16: one uint4, fp32: two float4).
__device__ __forceinline__ void ld8(const __half *p, float *r) {
  uint4 u = *reinterpret_cast<const uint4 *>(p);
  const __half2 *h = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
  for (int j = 0; j < 4; j++) {
    float2 f = __half22float2(h[j]);
    r[2 * j] = f.x, r[2 * j + 1] = f.y;
  }
}
__device__ __forceinline__ void ld8(const float *p, float *r) {
  float4 a = *reinterpret_cast<const float4 *>(p), b = *reinterpret_cast<const float4 *>(p + 4);
  r[0] = a.x, r[1] = a.y, r[2] = a.z, r[3] = a.w, r[4] = b.x, r[5] = b.y, r[6] = b.z, r[7] = b.w;
}
__device__ __forceinline__ void st8(__half *p, const float *v) {
  uint4 u;
  __half2 *h = reinterpret_cast<__half2 *>(&u);
#pragma unroll
  for (int j = 0; j < 4; j++) h[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
  *reinterpret_cast<uint4 *>(p) = u;
}
__device__ __forceinline__ void st8(float *p, const float *v) {
  *reinterpret_cast<float4 *>(p) = make_float4(v[0], v[1], v[2], v[3]);
  *reinterpret_cast<float4 *>(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
}
template <typename OutT>
__device__ __forceinline__ void conv_store8(const ConvP &p, const float *bias, const OutT *res, OutT *y, int m,
                                            int oc, float *v) {
  float b[8], r[8];
  ld8(bias + oc, b);
  if (p.has_res) ld8(res + (long long)m * p.res_ps + oc, r);
  else {
#pragma unroll
    for (int j = 0; j < 8; j++) r[j] = 0.f;
  }
#pragma unroll
  for (int j = 0; j < 8; j++) {
    float t = v[j] + b[j];
    if (p.res_before) t += r[j];
    t = conv_act<true>(t, p.act, p.alpha, p.beta);
    if (!p.res_before) t += r[j];
    v[j] = t;
  }
  st8(y + (long long)m * p.out_ps + oc, v);
}

// The staged epilogue's second half, per 8 channels oc.. of pixel m read back from the fp32 tile (v):
// the fused epilogue and one 16-byte store when vec allows it and all 8 channels exist, else channel by
// channel. OUT: 0 = fp16 output, 1 = fp32 (y_ and res_ of that type).
template <int OUT>
__device__ __forceinline__ void store_staged8(const ConvP &p, const float *bias, const void *res_, void *y_, int m, int oc,
                                              float *v, bool vec) {
  if (vec && oc + 8 <= p.OC) {
    if (OUT == 0) conv_store8(p, bias, (const __half *)res_, (__half *)y_, m, oc, v);
    else conv_store8(p, bias, (const float *)res_, (float *)y_, m, oc, v);
  } else {
#pragma unroll
    for (int j = 0; j < 8; j++)
      if (oc + j < p.OC) {
        if (OUT == 0) conv_store<__half, true>(p, bias, (const __half *)res_, (__half *)y_, m, oc + j, v[j]);
        else conv_store<float, true>(p, bias, (const float *)res_, (float *)y_, m, oc + j, v[j]);
      }
  }
}

// Staged epilogue row stride (floats): BN + 8 makes the fragment float2 writes of a half warp hit 32
// distinct banks.
template <int BM, int BN> constexpr int stage_out_bytes() { return BM * (BN + 8) * 4; }

// The staged epilogue's first half: a warp's m16n8 accumulator fragments (rows wm + mi*16 + g (+8),
// columns wn + ni*8 + t4*2 (+1)) into the fp32 tile cs with row stride SN. The caller synchronizes
// before (stages still being read) and after (other threads read these rows).
template <int MI, int NI>
__device__ __forceinline__ void stage_acc(float *cs, int SN, const float (&acc)[MI][NI][4], int wm, int wn, int g,
                                          int t4) {
#pragma unroll
  for (int mi = 0; mi < MI; mi++)
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
      for (int ni = 0; ni < NI; ni++)
        *reinterpret_cast<float2 *>(cs + (wm + mi * 16 + g + 8 * h) * SN + wn + ni * 8 + t4 * 2) =
            make_float2(acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1]);
}

} // namespace kiln_conv
#endif

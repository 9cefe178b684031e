// 2-D convolution kernels (NHWC) for the CUDA backend; see conv_cuda.h for the API and the paths.
#include "backend/cuda/conv_cuda.h"
#include "backend/cuda/cuda_common.cuh"

#include <stdlib.h>
#include <string.h>

namespace {

// Kernel parameters by value: 32-bit sizes (checked in validate) keep index math cheap; pixel offsets
// are formed in 64 bits because batch*H*W*C can pass 2^31 for large batches.
struct ConvP {
  int N, IC, IH, IW, OC, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, G;
  int K, Kp, M;
  long long in_ps, out_ps, res_ps;
  int act, has_res, res_before;
  float alpha, beta;
};

// ---- tensor-core implicit GEMM (fp16 in, fp32 accumulate) -----------------------------------------
// Block tile 64 pixels x 64 output channels x 32 K, 4 warps in 2x2, each warp 32x32 = 2x4 mma tiles.
// Shared rows are K-contiguous (A: [pixel][k], B: [oc][k]) so every mma fragment is one 32-bit load;
// the row stride of 40 halves (20 words) puts the 8 rows a fragment load touches on distinct banks and
// keeps 16-byte row alignment for the vector stores. The next K tile is fetched into registers while
// the current one is multiplied (one shared buffer, two barriers per tile): simple, and enough to keep
// the memory system busy at YOLO's small channel counts. Speed work (cp.async stages, wgmma) comes later.
constexpr int MBM = 64, MBN = 64, MBK = 32, MPAD = 40;

__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, const uint32_t *b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <typename OutT>
__device__ __forceinline__ void conv_store(const ConvP &p, const float *bias, const OutT *res, OutT *y, int m,
                                           int oc, float v) {
  v += bias[oc];
  float r = 0.f;
  if (p.has_res) r = kiln_ld(res + (long long)m * p.res_ps + oc);
  if (p.res_before) v += r;
  v = kiln_cuda_act(v, p.act, p.alpha, p.beta);
  if (!p.res_before) v += r;
  kiln_st(y + (long long)m * p.out_ps + oc, v);
}

template <bool VEC, typename OutT>
__global__ void __launch_bounds__(128) conv_mma_kernel(ConvP p, const __half *__restrict__ x,
                                                       const __half *__restrict__ w,
                                                       const float *__restrict__ bias, const OutT *res,
                                                       OutT *y) {
  __shared__ __align__(16) __half As[MBM * MPAD];
  __shared__ __align__(16) __half Bs[MBN * MPAD];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int m0 = blockIdx.x * MBM, n0 = blockIdx.y * MBN;
  const int nk = p.Kp / MBK;

  // Vector loader: rows (tid>>2) and (tid>>2)+32, 8-half chunk (tid&3) of the K tile, for A and B.
  const int lrow = tid >> 2, lchunk = tid & 3;
  long long img[2];
  int ih0[2], iw0[2];
  bool mval[2];
  // Scalar loader: K column (tid&31), rows (tid>>5) + 4*i.
  const int scol = tid & 31, srow = tid >> 5;
  if (VEC) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
      int m = m0 + lrow + 32 * i;
      mval[i] = m < p.M;
      int mm = mval[i] ? m : 0;
      int ow = mm % p.OW, t = mm / p.OW, oh = t % p.OH, n = t / p.OH;
      img[i] = (long long)n * p.IH * p.IW;
      ih0[i] = oh * p.SH - p.PT;
      iw0[i] = ow * p.SW - p.PL;
    }
  }
  uint4 ra[2], rb[2];
  __half rs[16];

  auto load = [&](int kt) {
    const int kbase = kt * MBK;
#pragma unroll
    for (int i = 0; i < 2; i++)
      rb[i] = *reinterpret_cast<const uint4 *>(w + (long long)(n0 + lrow + 32 * i) * p.Kp + kbase + lchunk * 8);
    if (VEC) {
      int k = kbase + lchunk * 8;
      int tap = k / p.IC, ic = k - tap * p.IC, kh = tap / p.KW, kw = tap - kh * p.KW;
#pragma unroll
      for (int i = 0; i < 2; i++) {
        int ih = ih0[i] + kh * p.DH, iw = iw0[i] + kw * p.DW;
        if (k < p.K && mval[i] && ih >= 0 && ih < p.IH && iw >= 0 && iw < p.IW)
          ra[i] = *reinterpret_cast<const uint4 *>(x + (img[i] + (long long)ih * p.IW + iw) * p.in_ps + ic);
        else
          ra[i] = make_uint4(0, 0, 0, 0);
      }
    } else {
      int k = kbase + scol;
      int tap = k / p.IC, ic = k - tap * p.IC, kh = tap / p.KW, kw = tap - kh * p.KW;
#pragma unroll
      for (int i = 0; i < 16; i++) {
        int m = m0 + srow + 4 * i;
        __half v = __float2half(0.f);
        if (k < p.K && m < p.M) {
          int ow = m % p.OW, t = m / p.OW, oh = t % p.OH, n = t / p.OH;
          int ih = oh * p.SH - p.PT + kh * p.DH, iw = ow * p.SW - p.PL + kw * p.DW;
          if (ih >= 0 && ih < p.IH && iw >= 0 && iw < p.IW)
            v = x[((long long)n * p.IH * p.IW + (long long)ih * p.IW + iw) * p.in_ps + ic];
        }
        rs[i] = v;
      }
    }
  };
  auto store = [&]() {
#pragma unroll
    for (int i = 0; i < 2; i++)
      *reinterpret_cast<uint4 *>(&Bs[(lrow + 32 * i) * MPAD + lchunk * 8]) = rb[i];
    if (VEC) {
#pragma unroll
      for (int i = 0; i < 2; i++) *reinterpret_cast<uint4 *>(&As[(lrow + 32 * i) * MPAD + lchunk * 8]) = ra[i];
    } else {
#pragma unroll
      for (int i = 0; i < 16; i++) As[(srow + 4 * i) * MPAD + scol] = rs[i];
    }
  };

  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  load(0);
  store();
  __syncthreads();
  for (int kt = 0; kt < nk; kt++) {
    if (kt + 1 < nk) load(kt + 1);
#pragma unroll
    for (int kk = 0; kk < MBK; kk += 16) {
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int mi = 0; mi < 2; mi++) {
        const __half *r0 = &As[(wm + mi * 16 + g) * MPAD + kk + t4 * 2];
        const __half *r8 = r0 + 8 * MPAD;
        a[mi][0] = *reinterpret_cast<const uint32_t *>(r0);
        a[mi][1] = *reinterpret_cast<const uint32_t *>(r8);
        a[mi][2] = *reinterpret_cast<const uint32_t *>(r0 + 8);
        a[mi][3] = *reinterpret_cast<const uint32_t *>(r8 + 8);
      }
#pragma unroll
      for (int ni = 0; ni < 4; ni++) {
        const __half *c0 = &Bs[(wn + ni * 8 + g) * MPAD + kk + t4 * 2];
        b[ni][0] = *reinterpret_cast<const uint32_t *>(c0);
        b[ni][1] = *reinterpret_cast<const uint32_t *>(c0 + 8);
      }
#pragma unroll
      for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++) mma16816(acc[mi][ni], a[mi], b[ni]);
    }
    if (kt + 1 < nk) {
      __syncthreads();
      store();
      __syncthreads();
    }
  }

#pragma unroll
  for (int mi = 0; mi < 2; mi++)
#pragma unroll
    for (int ni = 0; ni < 4; ni++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        int m = m0 + wm + mi * 16 + g + 8 * h;
        if (m >= p.M) continue;
#pragma unroll
        for (int j = 0; j < 2; j++) {
          int oc = n0 + wn + ni * 8 + t4 * 2 + j;
          if (oc < p.OC) conv_store(p, bias, res, y, m, oc, acc[mi][ni][2 * h + j]);
        }
      }
}

// ---- exact fp32 implicit GEMM (plain FMA, no TF32) --------------------------------------------------
// 64 pixels x 64 channels x 16 K per block, 256 threads with 4x4 outputs each (rows ty+16i, channels
// tx+16j so the stores of a warp are consecutive channels). Weights are packed [Kp][OCp] so the B tile
// loads are coalesced; A is gathered with one K column per thread (consecutive input channels).
constexpr int FBM = 64, FBN = 64, FBK = 16;

__global__ void __launch_bounds__(256) conv_fma_kernel(ConvP p, const float *__restrict__ x,
                                                       const float *__restrict__ w,
                                                       const float *__restrict__ bias, const float *res,
                                                       float *y, int OCp) {
  __shared__ float As[FBK][FBM + 4];
  __shared__ float Bs[FBK][FBN];
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int m0 = blockIdx.x * FBM, n0 = blockIdx.y * FBN;
  const int nk = p.Kp / FBK;
  const int acol = tid & 15, arow = tid >> 4;  // A: K column, rows arow + 16*i
  const int bcol = tid & 63, brow = tid >> 6;  // B: channel column, K rows brow + 4*i
  long long img[4];
  int ih0[4], iw0[4];
  bool mval[4];
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int m = m0 + arow + 16 * i;
    mval[i] = m < p.M;
    int mm = mval[i] ? m : 0;
    int ow = mm % p.OW, t = mm / p.OW, oh = t % p.OH, n = t / p.OH;
    img[i] = (long long)n * p.IH * p.IW;
    ih0[i] = oh * p.SH - p.PT;
    iw0[i] = ow * p.SW - p.PL;
  }
  float ra[4], rb[4];
  auto load = [&](int kt) {
    int k = kt * FBK + acol;
    int tap = k / p.IC, ic = k - tap * p.IC, kh = tap / p.KW, kw = tap - kh * p.KW;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int ih = ih0[i] + kh * p.DH, iw = iw0[i] + kw * p.DW;
      ra[i] = (k < p.K && mval[i] && ih >= 0 && ih < p.IH && iw >= 0 && iw < p.IW)
                  ? x[(img[i] + (long long)ih * p.IW + iw) * p.in_ps + ic]
                  : 0.f;
    }
#pragma unroll
    for (int i = 0; i < 4; i++) rb[i] = w[(long long)(kt * FBK + brow + 4 * i) * OCp + n0 + bcol];
  };
  auto store = [&]() {
#pragma unroll
    for (int i = 0; i < 4; i++) As[acol][arow + 16 * i] = ra[i];
#pragma unroll
    for (int i = 0; i < 4; i++) Bs[brow + 4 * i][bcol] = rb[i];
  };
  float acc[4][4] = {};
  load(0);
  store();
  __syncthreads();
  for (int kt = 0; kt < nk; kt++) {
    if (kt + 1 < nk) load(kt + 1);
#pragma unroll
    for (int k = 0; k < FBK; k++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (kt + 1 < nk) {
      __syncthreads();
      store();
      __syncthreads();
    }
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int m = m0 + ty + 16 * i;
    if (m >= p.M) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int oc = n0 + tx + 16 * j;
      if (oc < p.OC) conv_store(p, bias, res, y, m, oc, acc[i][j]);
    }
  }
}

// ---- direct convolution for any group (depthwise, grouped) ------------------------------------------
// One thread per output element, channel fastest so a warp's loads (depthwise: the same channels) and
// stores are coalesced. Weights fp32 [OC][KH][KW][IC/G]. Correct first; a tiled depthwise kernel later.
template <typename InT, typename OutT>
__global__ void conv_direct_kernel(ConvP p, const InT *__restrict__ x, const float *__restrict__ w,
                                   const float *__restrict__ bias, const OutT *res, OutT *y) {
  const int icg = p.IC / p.G, ocg = p.OC / p.G;
  const long long total = (long long)p.M * p.OC;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    int oc = (int)(idx % p.OC);
    int m = (int)(idx / p.OC);
    int ow = m % p.OW, t = m / p.OW, oh = t % p.OH, n = t / p.OH;
    int c0 = (oc / ocg) * icg;
    const float *wp = w + (long long)oc * p.KH * p.KW * icg;
    float acc = 0.f;
    for (int kh = 0; kh < p.KH; kh++) {
      int ih = oh * p.SH - p.PT + kh * p.DH;
      if (ih < 0 || ih >= p.IH) continue;
      for (int kw = 0; kw < p.KW; kw++) {
        int iw = ow * p.SW - p.PL + kw * p.DW;
        if (iw < 0 || iw >= p.IW) continue;
        const InT *xp = x + ((long long)n * p.IH * p.IW + (long long)ih * p.IW + iw) * p.in_ps + c0;
        const float *wt = wp + (kh * p.KW + kw) * icg;
        for (int c = 0; c < icg; c++) acc = fmaf(kiln_ld(xp + c), wt[c], acc);
      }
    }
    conv_store(p, bias, res, y, m, oc, acc);
  }
}

// ---- host side -----------------------------------------------------------------------------------
enum Path { PATH_MMA, PATH_FMA, PATH_DIRECT };

size_t align256(size_t v) { return (v + 255) & ~(size_t)255; }
int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

Path path_of(const kiln_cuda_conv_desc *d) {
  if (d->group != 1) return PATH_DIRECT;
  return d->compute == KILN_CUDA_F16 ? PATH_MMA : PATH_FMA;
}

struct Layout {
  int64_t K, Kp, OCp;
  size_t w_bytes, bias_off, total;
};

Layout layout_of(const kiln_cuda_conv_desc *d) {
  Layout L;
  L.K = d->kernel_h * d->kernel_w * (d->in_c / (d->group > 0 ? d->group : 1));
  switch (path_of(d)) {
  case PATH_MMA:
    L.Kp = round_up(L.K, MBK), L.OCp = round_up(d->out_c, MBN), L.w_bytes = (size_t)(L.Kp * L.OCp) * 2;
    break;
  case PATH_FMA:
    L.Kp = round_up(L.K, FBK), L.OCp = round_up(d->out_c, FBN), L.w_bytes = (size_t)(L.Kp * L.OCp) * 4;
    break;
  default:
    L.Kp = L.K, L.OCp = d->out_c, L.w_bytes = (size_t)(L.K * d->out_c) * 4;
    break;
  }
  L.bias_off = align256(L.w_bytes);
  L.total = align256(L.bias_off + (size_t)L.OCp * 4);
  return L;
}

// Round-to-nearest-even fp32 -> fp16 on the host (no dependence on host-side cuda_fp16 support).
uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); // rounds to >= 65520: inf
  if (absx < 0x38800000u) {                                  // subnormal or zero in fp16
    float a;
    memcpy(&a, &absx, 4);
    return (uint16_t)(sign | (uint32_t)__builtin_lrintf(a * 16777216.0f)); // units of 2^-24, RNE
  }
  uint32_t mant = absx & 0x7fffffu, exp = (absx >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

} // namespace

extern "C" kiln_status kiln_cuda_conv_validate(const kiln_cuda_conv_desc *d) {
  if (!d) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda conv: NULL descriptor");
  const int64_t lim = 0x7fffffff;
  if (d->batch <= 0 || d->in_c <= 0 || d->in_h <= 0 || d->in_w <= 0 || d->out_c <= 0 || d->out_h <= 0 ||
      d->out_w <= 0 || d->kernel_h <= 0 || d->kernel_w <= 0 || d->stride_h <= 0 || d->stride_w <= 0 ||
      d->dilation_h <= 0 || d->dilation_w <= 0 || d->group <= 0 || d->pad_top < 0 || d->pad_left < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda conv: sizes, strides, dilations and group must be positive");
  if (d->in_c % d->group || d->out_c % d->group)
    return kiln_error(KILN_ERR_SHAPE, "cuda conv: group %lld does not divide channels %lld -> %lld",
                      (long long)d->group, (long long)d->in_c, (long long)d->out_c);
  if (d->compute != KILN_CUDA_F16 && d->compute != KILN_CUDA_F32)
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: compute type must be fp16 or fp32");
  if (d->out_dtype != KILN_CUDA_F16 && d->out_dtype != KILN_CUDA_F32)
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: output type must be fp16 or fp32");
  if (d->compute == KILN_CUDA_F32 && d->out_dtype != KILN_CUDA_F32)
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: the fp32 path writes fp32 only");
  if (d->in_pixel_stride && d->in_pixel_stride < d->in_c)
    return kiln_error(KILN_ERR_SHAPE, "cuda conv: input pixel stride below its channels");
  if (d->out_pixel_stride && d->out_pixel_stride < d->out_c_offset + d->out_c)
    return kiln_error(KILN_ERR_SHAPE, "cuda conv: output pixel stride below offset + channels");
  if (d->residual_pixel_stride && d->residual_pixel_stride < d->out_c)
    return kiln_error(KILN_ERR_SHAPE, "cuda conv: residual pixel stride below its channels");
  if (d->out_c_offset < 0) return kiln_error(KILN_ERR_SHAPE, "cuda conv: negative output channel offset");
  // 32-bit kernel arithmetic: pixel counts, K and per-image extents must fit (element offsets are 64-bit).
  if (d->batch * d->out_h * d->out_w > lim || d->batch * d->in_h * d->in_w > lim ||
      d->kernel_h * d->kernel_w * d->in_c > lim || d->out_c > lim / 4)
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: tensor too large for 32-bit indexing");
  return NULL;
}

extern "C" size_t kiln_cuda_conv_packed_size(const kiln_cuda_conv_desc *d) { return layout_of(d).total; }

extern "C" size_t kiln_cuda_conv_workspace_size(const kiln_cuda_conv_desc *d) {
  (void)d;
  return 0;
}

extern "C" kiln_status kiln_cuda_conv_pack(const kiln_cuda_conv_desc *d, const float *weights, const float *bias,
                                           void *packed) {
  KILN_TRY(kiln_cuda_conv_validate(d));
  Layout L = layout_of(d);
  memset(packed, 0, L.total); // padding rows/columns must be zeros: they take part in the GEMM
  const int64_t icg = d->in_c / d->group, KH = d->kernel_h, KW = d->kernel_w;
  for (int64_t oc = 0; oc < d->out_c; oc++)
    for (int64_t c = 0; c < icg; c++)
      for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw++) {
          float v = weights[((oc * icg + c) * KH + kh) * KW + kw];
          int64_t k = (kh * KW + kw) * icg + c; // (kh, kw, ic): matches NHWC pixels
          switch (path_of(d)) {
          case PATH_MMA: ((uint16_t *)packed)[oc * L.Kp + k] = f32_to_f16(v); break;
          case PATH_FMA: ((float *)packed)[k * L.OCp + oc] = v; break;
          default: ((float *)packed)[oc * L.K + k] = v; break;
          }
        }
  float *b = (float *)((char *)packed + L.bias_off);
  if (bias && d->has_bias) memcpy(b, bias, (size_t)d->out_c * sizeof(float));
  return NULL;
}

extern "C" const char *kiln_cuda_conv_kernel_name(const kiln_cuda_conv_desc *d) {
  switch (path_of(d)) {
  case PATH_MMA: return d->in_c % 8 == 0 ? "conv_igemm_mma.f16.vec8" : "conv_igemm_mma.f16";
  case PATH_FMA: return "conv_igemm_fma.f32";
  default: return d->compute == KILN_CUDA_F16 ? "conv_direct.f16" : "conv_direct.f32";
  }
}

extern "C" kiln_status kiln_cuda_conv_run(const kiln_cuda_conv_desc *d, const void *packed, const void *x,
                                          const void *residual, void *y, void *workspace,
                                          kiln_cuda_stream stream) {
  (void)workspace;
  Layout L = layout_of(d);
  ConvP p;
  p.N = (int)d->batch, p.IC = (int)d->in_c, p.IH = (int)d->in_h, p.IW = (int)d->in_w;
  p.OC = (int)d->out_c, p.OH = (int)d->out_h, p.OW = (int)d->out_w;
  p.KH = (int)d->kernel_h, p.KW = (int)d->kernel_w, p.SH = (int)d->stride_h, p.SW = (int)d->stride_w;
  p.PT = (int)d->pad_top, p.PL = (int)d->pad_left, p.DH = (int)d->dilation_h, p.DW = (int)d->dilation_w;
  p.G = (int)d->group;
  p.K = (int)L.K, p.Kp = (int)L.Kp, p.M = p.N * p.OH * p.OW;
  p.in_ps = d->in_pixel_stride ? d->in_pixel_stride : d->in_c;
  p.out_ps = d->out_pixel_stride ? d->out_pixel_stride : d->out_c_offset + d->out_c;
  p.res_ps = d->residual_pixel_stride ? d->residual_pixel_stride : d->out_c;
  p.act = (int)d->epilogue.act, p.alpha = d->epilogue.alpha, p.beta = d->epilogue.beta;
  p.has_res = d->has_residual && residual, p.res_before = p.has_res && d->epilogue.residual_before_act;
  const float *bias = (const float *)((const char *)packed + L.bias_off);
  const bool f16out = d->out_dtype == KILN_CUDA_F16;
  const size_t osz = f16out ? 2 : 4;
  char *yo = (char *)y + d->out_c_offset * osz;
  cudaStream_t s = (cudaStream_t)stream;

  switch (path_of(d)) {
  case PATH_MMA: {
    dim3 grid((unsigned)((p.M + MBM - 1) / MBM), (unsigned)(L.OCp / MBN));
    const __half *xh = (const __half *)x, *wh = (const __half *)packed;
    bool vec = p.IC % 8 == 0 && p.in_ps % 8 == 0 && ((uintptr_t)x & 15) == 0;
    if (vec && f16out)
      conv_mma_kernel<true, __half><<<grid, 128, 0, s>>>(p, xh, wh, bias, (const __half *)residual, (__half *)yo);
    else if (vec)
      conv_mma_kernel<true, float><<<grid, 128, 0, s>>>(p, xh, wh, bias, (const float *)residual, (float *)yo);
    else if (f16out)
      conv_mma_kernel<false, __half><<<grid, 128, 0, s>>>(p, xh, wh, bias, (const __half *)residual, (__half *)yo);
    else
      conv_mma_kernel<false, float><<<grid, 128, 0, s>>>(p, xh, wh, bias, (const float *)residual, (float *)yo);
    break;
  }
  case PATH_FMA: {
    dim3 grid((unsigned)((p.M + FBM - 1) / FBM), (unsigned)(L.OCp / FBN));
    conv_fma_kernel<<<grid, 256, 0, s>>>(p, (const float *)x, (const float *)packed, bias, (const float *)residual,
                                         (float *)yo, (int)L.OCp);
    break;
  }
  default: {
    unsigned blocks = kiln_cuda_blocks((int64_t)p.M * p.OC, 256);
    if (blocks > 65536u * 8) blocks = 65536u * 8; // grid-stride loop covers the rest
    const float *w = (const float *)packed;
    if (d->compute == KILN_CUDA_F32)
      conv_direct_kernel<float, float><<<blocks, 256, 0, s>>>(p, (const float *)x, w, bias, (const float *)residual,
                                                              (float *)yo);
    else if (f16out)
      conv_direct_kernel<__half, __half><<<blocks, 256, 0, s>>>(p, (const __half *)x, w, bias,
                                                                (const __half *)residual, (__half *)yo);
    else
      conv_direct_kernel<__half, float><<<blocks, 256, 0, s>>>(p, (const __half *)x, w, bias,
                                                               (const float *)residual, (float *)yo);
    break;
  }
  }
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

// 2-D convolution kernels (NHWC) for the CUDA backend; see conv_cuda.h for the API and the paths.
#include "backend/cuda/conv_cuda.h"
#include "backend/cuda/conv_halo_cuda.h"
#include "backend/cuda/conv_stem_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

namespace {
using namespace kiln_conv;

// ---- tensor-core implicit GEMM (fp16 in, fp32 accumulate) -----------------------------------------
// M = pixels, N = OC, K = (kh, kw, ic). Block tile BM x BN x 32, warps of WM x WN (mma.sync m16n8k16).
// Shared rows are K-contiguous (A: [pixel][k], B: [oc][k]) with a row stride of 40 halves (80 bytes): the
// 8 rows an ldmatrix phase reads land on 8 distinct 16-byte bank groups, so ldmatrix.x4 is conflict-free
// and cp.async keeps 16-byte alignment. ST stages of cp.async (zero-fill for padding / out-of-image taps)
// keep ST-1 K tiles in flight. The gather variant (IC % 8 != 0 without in_zero_padded) loads A element
// by element into the stage (synchronous) and is only kept for odd inputs.
// Split-K (gridDim.z > 1): each z slice accumulates a contiguous range of K tiles and writes fp32 partial
// sums to the workspace; conv_splitk_reduce adds the slices in a fixed order and runs the epilogue.
constexpr int MBK = 32, MPAD = 40;
constexpr int OC_ALIGN = 128; // packed weights: OC padded to the widest BN, so B loads need no bounds

// OUT: 0 = fp16 y, 1 = fp32 y, 2 = fp32 partial sums to ws[z][M][OC] (split-K).
template <int BM, int BN, int WM, int WN, int ST, bool VEC, int OUT>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32)
    conv_mma_kernel(ConvP p, const __half *__restrict__ x, const __half *__restrict__ w,
                    const float *__restrict__ bias, const void *res_, void *y_, float *ws) {
  constexpr int WGM = BM / WM, WGN = BN / WN, T = WGM * WGN * 32;
  constexpr int MI = WM / 16, NI = WN / 8;
  constexpr int STAGE = (BM + BN) * MPAD; // halves
  static_assert(NI % 2 == 0 && MI >= 1, "warp tile");
  static_assert((BM * 4) % T == 0, "A loader");
  constexpr int A_IT = BM * 4 / T;
  constexpr int B_IT = (BN * 4 + T - 1) / T;
  extern __shared__ __align__(16) __half smem[];
  const uint32_t sbase = (uint32_t)__cvta_generic_to_shared(smem);

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int nk_all = p.Kp / MBK;
  const int kt0 = (int)((long long)blockIdx.z * nk_all / gridDim.z);
  const int kt1 = (int)((long long)(blockIdx.z + 1) * nk_all / gridDim.z);
  const int nk = kt1 - kt0;

  // A rows this thread loads: (tid>>2) + i*(T/4), 16-byte chunk (tid&3) of the 32-wide K tile.
  const int lchunk = tid & 3;
  // Per row: the element offset of (n, ih0, iw0) and ih0 / iw0 (rows past M get ih0 = -2^30: always
  // out of bounds). The K position of this thread's chunk advances by 32 per load() call (calls come in
  // K order), so (ic, kw, kh) are stepped instead of divided.
  long long rowoff[A_IT];
  int ih0[A_IT], iw0[A_IT];
  int a_ic = 0, a_kw = 0, a_kh = 0, a_k = 0;
  if (VEC) {
#pragma unroll
    for (int i = 0; i < A_IT; i++) {
      int m = m0 + (tid >> 2) + i * (T / 4);
      bool ok = m < p.M;
      int mm = ok ? m : 0;
      int ow = mm % p.OW, t = mm / p.OW, oh = t % p.OH, n = t / p.OH;
      ih0[i] = ok ? oh * p.SH - p.PT : -(1 << 30);
      iw0[i] = ow * p.SW - p.PL;
      rowoff[i] = ((long long)n * p.IH * p.IW + (long long)ih0[i] * p.IW + iw0[i]) * p.in_ps;
    }
    a_k = kt0 * MBK + lchunk * 8;
    int tap = a_k / p.IC;
    a_ic = a_k - tap * p.IC, a_kh = tap / p.KW, a_kw = tap - a_kh * p.KW;
  }
  const __half *wrow[B_IT];
#pragma unroll
  for (int i = 0; i < B_IT; i++) {
    int c = tid + i * T;
    wrow[i] = w + (long long)(n0 + (c >> 2)) * p.Kp + (c & 3) * 8;
  }

  auto load = [&](int kt, int stage) {
    const uint32_t sa = sbase + stage * STAGE * 2, sb = sa + BM * MPAD * 2;
    const int kbase = kt * MBK;
#pragma unroll
    for (int i = 0; i < B_IT; i++) {
      int c = tid + i * T;
      if (BN * 4 % T == 0 || c < BN * 4)
        cp_async16(sb + ((c >> 2) * MPAD + (c & 3) * 8) * 2, wrow[i] + kbase, true);
    }
    if (VEC) {
      const int dih = a_kh * p.DH, diw = a_kw * p.DW;
      const int off = (dih * p.IW + diw) * (int)p.in_ps + a_ic;
      const bool kok = a_k < p.K;
#pragma unroll
      for (int i = 0; i < A_IT; i++) {
        bool ok = kok && (unsigned)(ih0[i] + dih) < (unsigned)p.IH && (unsigned)(iw0[i] + diw) < (unsigned)p.IW;
        const __half *src = ok ? x + rowoff[i] + off : x;
        cp_async16_ca(sa + (((tid >> 2) + i * (T / 4)) * MPAD + lchunk * 8) * 2, src, ok);
      }
      a_k += MBK, a_ic += MBK;
      while (a_ic >= p.IC) {
        a_ic -= p.IC;
        if (++a_kw == p.KW) a_kw = 0, a_kh++;
      }
    } else {
      __half *As = smem + stage * STAGE;
      int k = kbase + (tid & 31);
      int tap = k / p.IC, ic = k - tap * p.IC, kh = tap / p.KW, kw = tap - kh * p.KW;
#pragma unroll 4
      for (int r = tid >> 5; r < BM; r += T / 32) {
        int m = m0 + r;
        __half v = __float2half(0.f);
        if (k < p.K && m < p.M) {
          int ow = m % p.OW, t = m / p.OW, oh = t % p.OH, n = t / p.OH;
          int ih = oh * p.SH - p.PT + kh * p.DH, iw = ow * p.SW - p.PL + kw * p.DW;
          if (ih >= 0 && ih < p.IH && iw >= 0 && iw < p.IW)
            v = x[((long long)n * p.IH * p.IW + (long long)ih * p.IW + iw) * p.in_ps + ic];
        }
        As[r * MPAD + (tid & 31)] = v;
      }
    }
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < NI; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

  const int wm = (warp / WGN) * WM, wn = (warp % WGN) * WN;
#pragma unroll
  for (int s = 0; s < ST - 1; s++) {
    if (s < nk) load(kt0 + s, s);
    cp_async_commit();
  }
  // ldmatrix lane addresses (bytes, relative to the stage): A rows wm + mi*16 + (lane&15), K half lane>>4;
  // B rows wn + nj*16 + (lane>>4)*8 + (lane&7), K half (lane>>3)&1.
  const uint32_t a_off = ((wm + (lane & 15)) * MPAD + (lane >> 4) * 8) * 2;
  const uint32_t b_off = (BM * MPAD + (wn + (lane >> 4) * 8 + (lane & 7)) * MPAD + ((lane >> 3) & 1) * 8) * 2;
  for (int kt = 0; kt < nk; kt++) {
    cp_async_wait<ST - 2>();
    __syncthreads();
    {
      int nxt = kt + ST - 1;
      if (nxt < nk) load(kt0 + nxt, nxt % ST);
      cp_async_commit();
    }
    const uint32_t st = sbase + (kt % ST) * STAGE * 2;
    // Both 16-wide K halves' fragments are loaded before the first mma so ldmatrix latency overlaps.
    uint32_t a[2][MI][4], b[2][NI][2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
#pragma unroll
      for (int mi = 0; mi < MI; mi++) ldsm_x4(a[h][mi], st + a_off + (mi * 16 * MPAD + h * 16) * 2);
#pragma unroll
      for (int nj = 0; nj < NI / 2; nj++) {
        uint32_t r[4];
        ldsm_x4(r, st + b_off + (nj * 16 * MPAD + h * 16) * 2);
        b[h][2 * nj][0] = r[0], b[h][2 * nj][1] = r[1], b[h][2 * nj + 1][0] = r[2], b[h][2 * nj + 1][1] = r[3];
      }
    }
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
      for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < NI; ni++) mma16816(acc[mi][ni], a[h][mi], b[h][ni]);
  }
  cp_async_wait<0>();

  if (OUT != 2 && p.vec8) {
    // Staged epilogue: the fp32 accumulators go through shared memory (the pipeline stages are free now),
    // then each thread finishes 8 consecutive channels of one pixel with 16-byte residual loads and
    // 16-byte stores; consecutive threads cover consecutive chunks of a row, then consecutive rows.
    constexpr int SN = BN + 8, CPR = BN / 8;
    float *cs = reinterpret_cast<float *>(smem);
    __syncthreads(); // every warp is done reading the last stage
    stage_acc(cs, SN, acc, wm, wn, g, t4);
    __syncthreads();
#pragma unroll 2
    for (int idx = tid; idx < BM * CPR; idx += T) {
      const int r = idx / CPR, cc = idx % CPR;
      const int m = m0 + r, oc = n0 + cc * 8;
      if (m >= p.M || oc >= p.OC) continue;
      float v[8];
      ld8(cs + r * SN + cc * 8, v);
      store_staged8<OUT>(p, bias, res_, y_, m, oc, v, true);
    }
    return;
  }

#pragma unroll
  for (int mi = 0; mi < MI; mi++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int m = m0 + wm + mi * 16 + g + 8 * h;
      if (m >= p.M) continue;
#pragma unroll
      for (int ni = 0; ni < NI; ni++) {
        int oc = n0 + wn + ni * 8 + t4 * 2;
        if (oc >= p.OC) continue;
        float v0 = acc[mi][ni][2 * h], v1 = acc[mi][ni][2 * h + 1];
        if (OUT == 2) {
          float *o = ws + ((long long)blockIdx.z * p.M + m) * p.OC + oc;
          if (oc + 1 < p.OC && (p.OC & 1) == 0) *reinterpret_cast<float2 *>(o) = make_float2(v0, v1);
          else {
            o[0] = v0;
            if (oc + 1 < p.OC) o[1] = v1;
          }
        } else if (OUT == 0) {
          conv_store2(p, bias, (const __half *)res_, (__half *)y_, m, oc, v0, v1);
        } else {
          conv_store2(p, bias, (const float *)res_, (float *)y_, m, oc, v0, v1);
        }
      }
    }
}

// Split-K epilogue: y = epilogue(sum over the S slices of ws[z][M][OC]), slices added in order.
template <typename OutT>
__global__ void conv_splitk_reduce(ConvP p, int S, const float *__restrict__ ws, const float *__restrict__ bias,
                                   const OutT *res, OutT *y) {
  const long long total = (long long)p.M * p.OC, slice = total;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    float v = ws[idx];
    for (int z = 1; z < S; z++) v += ws[z * slice + idx];
    int m = (int)(idx / p.OC), oc = (int)(idx - (long long)m * p.OC);
    conv_store<OutT, true>(p, bias, res, y, m, oc, v);
  }
}

// The same with 8 channels per thread (OC % 8 == 0, p.vec8, 16-byte aligned workspace): 16-byte loads of
// every slice, 16-byte residual loads and output stores.
template <typename OutT>
__global__ void conv_splitk_reduce8(ConvP p, int S, const float *__restrict__ ws, const float *__restrict__ bias,
                                    const OutT *res, OutT *y) {
  const int cpr = p.OC / 8;
  const long long total = (long long)p.M * cpr, slice = (long long)p.M * p.OC;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)gridDim.x * blockDim.x) {
    int m = (int)(idx / cpr), oc = (int)(idx - (long long)m * cpr) * 8;
    const float *src = ws + (long long)m * p.OC + oc;
    float v[8], t[8];
    ld8(src, v);
    for (int z = 1; z < S; z++) {
      ld8(src + z * slice, t);
#pragma unroll
      for (int j = 0; j < 8; j++) v[j] += t[j];
    }
    conv_store8(p, bias, res, y, m, oc, v);
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
enum Path { PATH_MMA, PATH_FMA, PATH_DIRECT, PATH_NCHW };

size_t align256(size_t v) { return (v + 255) & ~(size_t)255; }
int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

Path path_of(const kiln_cuda_conv_desc *d) {
  if (d->in_layout_nchw) return PATH_NCHW; // conv_stem_cuda.cu: the API functions below hand it over
  if (d->group != 1) return PATH_DIRECT;
  return d->compute == KILN_CUDA_F16 ? PATH_MMA : PATH_FMA;
}

// Input channels the MMA path's K runs over: padded to 8 when the caller guarantees zeros there.
int64_t mma_ic(const kiln_cuda_conv_desc *d) { return d->in_zero_padded ? round_up(d->in_c, 8) : d->in_c; }
int64_t in_ps_of(const kiln_cuda_conv_desc *d) { return d->in_pixel_stride ? d->in_pixel_stride : d->in_c; }
bool mma_vec(const kiln_cuda_conv_desc *d) { return mma_ic(d) % 8 == 0 && in_ps_of(d) % 8 == 0; }

typedef void (*MmaFn)(ConvP, const __half *, const __half *, const float *, const void *, void *, float *);
struct TileCfg {
  int bm, bn, threads, stages, occ; // occ: blocks per SM (estimate from shared memory / registers)
  MmaFn fn[3];                      // OUT = 0 (fp16 y), 1 (fp32 y), 2 (split-K partials)
  const char *names[6];
};
#define KILN_TILE(BM, BN, WM, WN, ST, OCC)                                                             \
  {BM, BN, (BM / WM) * (BN / WN) * 32, ST, OCC,                                                        \
   {conv_mma_kernel<BM, BN, WM, WN, ST, true, 0>, conv_mma_kernel<BM, BN, WM, WN, ST, true, 1>,          \
    conv_mma_kernel<BM, BN, WM, WN, ST, true, 2>},                                                      \
   {"conv_igemm_mma.f16." #BM "x" #BN "x32.s" #ST, "conv_igemm_mma.f16." #BM "x" #BN "x32.s" #ST ".sk2",   \
    "conv_igemm_mma.f16." #BM "x" #BN "x32.s" #ST ".sk3", "conv_igemm_mma.f16." #BM "x" #BN "x32.s" #ST ".sk4", \
    "conv_igemm_mma.f16." #BM "x" #BN "x32.s" #ST ".sk6", "conv_igemm_mma.f16." #BM "x" #BN "x32.s" #ST ".sk8"}}
const TileCfg kTiles[] = {
    KILN_TILE(128, 128, 64, 32, 3, 2), KILN_TILE(128, 64, 64, 32, 4, 3), KILN_TILE(64, 64, 32, 32, 4, 5),
    KILN_TILE(128, 32, 32, 32, 4, 4),  KILN_TILE(64, 32, 32, 16, 4, 7), KILN_TILE(128, 16, 32, 16, 4, 4),
    KILN_TILE(256, 64, 64, 32, 3, 2),  KILN_TILE(64, 16, 16, 16, 4, 8),
    // 3-stage variants of the narrow tiles: 34.5 / 38.4 / 23 KB of stages instead of 46 / 51 / 31 KB, so
    // 6 / 5 / 9 blocks fit per SM (ncu: the 4-stage 128x16 ran at 25% occupancy, stalled on
    // ldmatrix / mma dependencies that more warps would hide).
    KILN_TILE(128, 16, 32, 16, 3, 6),  KILN_TILE(128, 32, 32, 32, 3, 5), KILN_TILE(64, 32, 32, 16, 3, 9),
};
#undef KILN_TILE
constexpr int NTILES = sizeof kTiles / sizeof kTiles[0];
constexpr int kSplits[] = {1, 2, 3, 4, 6, 8};
constexpr int NSPLITS = 6;
constexpr int GATHER_BM = 64, GATHER_BN = 64, GATHER_ST = 3;
const MmaFn kGather[2] = {conv_mma_kernel<64, 64, 32, 32, GATHER_ST, false, 0>,
                          conv_mma_kernel<64, 64, 32, 32, GATHER_ST, false, 1>};
// Dynamic shared memory of a launch: the pipeline stages a block can use (a block never runs more than
// nk K tiles, so stages past nk stay empty: short-K 1x1 layers fit more blocks per SM), and at least the
// staged epilogue's BM x (BN + 8) fp32 tile unless the launch writes split-K partials.
int smem_of(int bm, int bn, int st, int nk = 1 << 30, bool staged = true) {
  int used = st < nk ? st : (nk > 0 ? nk : 1);
  int b = (bm + bn) * MPAD * 2 * used, e = bm * (bn + 8) * 4;
  return staged && e > b ? e : b;
}

struct Choice {
  int tile;  // index into kTiles, -1: gather kernel (or the halo kernel when halo >= 0)
  int split; // K slices (1: no split-K)
  int halo;  // index of the halo-tile kernel config (conv_halo_cuda.cu), -1: im2col kernel
};

// Shared memory a block may use on sm_80 / sm_90 (227 KB); the halo kernel's stages must fit.
constexpr size_t SMEM_LIMIT = 227 * 1024;

HaloGeo halo_geo(const kiln_cuda_conv_desc *d, int cfg) {
  return halo_geometry(cfg, (int)d->out_h, (int)d->out_w, (int)d->kernel_h, (int)d->kernel_w, (int)d->stride_h,
                       (int)d->stride_w, (int)d->dilation_h, (int)d->dilation_w);
}

// The halo kernel takes small-kernel (at most 3x3, not 1x1, stride <= 2) group-1 fp16 convs whose K
// channel extent is a multiple of 16, when config cfg's stages fit in shared memory.
bool halo_ok(const kiln_cuda_conv_desc *d, int cfg) {
  if (path_of(d) != PATH_MMA || !mma_vec(d) || mma_ic(d) % 16) return false;
  if (d->out_h <= 0 || d->out_w <= 0 || d->kernel_h <= 0 || d->kernel_w <= 0 || d->stride_h <= 0 ||
      d->stride_w <= 0 || d->dilation_h <= 0 || d->dilation_w <= 0)
    return false; // not a validated descriptor
  if (d->kernel_h > 3 || d->kernel_w > 3 || d->kernel_h * d->kernel_w == 1) return false;
  if (d->stride_h > 2 || d->stride_w > 2 || d->dilation_h > 2 || d->dilation_w > 2) return false;
  // 32-bit offsets inside one image and inside the packed weights
  if (d->in_h * d->in_w * in_ps_of(d) >= ((int64_t)1 << 31) ||
      round_up(d->out_c, OC_ALIGN) * round_up(d->kernel_h * d->kernel_w * mma_ic(d), MBK) >= ((int64_t)1 << 31))
    return false;
  return halo_fits(cfg, halo_geo(d, cfg), (int)(d->kernel_h * d->kernel_w), (int)mma_ic(d), SMEM_LIMIT);
}

int tile_index(int bm, int bn, int stages = 0) {
  for (int t = 0; t < NTILES; t++)
    if (kTiles[t].bm == bm && kTiles[t].bn == bn && (!stages || kTiles[t].stages == stages)) return t;
  return 2; // 64x64
}

// Default tile / split-K choice from the shapes, fitted to a sweep of every candidate over YOLOv8n's conv
// layers at batch 1 and 32 on an H100 with the staged epilogue (docs/CUDA.md). Deterministic (no device
// query), so the engine's workspace plan and the kernel names are the same on every run.
// - Few output tiles (fewer 64x64 tiles than SMs: batch 1 at 40x40 and below): 64-row tiles; short K
//   (1x1 up to 16 K tiles, 3x3 up to 9) runs unsplit on 16-wide N tiles; long-K 3x3 uses 64x32 with K
//   split so each block runs <= 9 K tiles (at least 4 slices from 16 K tiles on).
// - Otherwise: short K: the N tile from OC (16 / 32 / 64 / 128, 32 for OC not a multiple of 64), 128 or
//   256 rows where K or the 3x3 taps give enough work per block; long-K 1x1: 128x128; 3x3: 256x64 for
//   OC 64 on large maps, 128x128 for OC > 64 with a split of 2 only where the grid is small (or OC
//   wastes part of the 128-wide tile).
// The halo config the heuristic uses for a layer, -1 for none. Fitted to the H100 sweep over YOLOv8n's 3x3
// layers at batch 32 (docs/CUDA.md): the halo kernel won for OC 32 (8 warps on 128x32), for OC 64 on
// maps of 80x80 and more, and for OC not a multiple of 64 (the P3-P5 class convs, OC 80: 128x80 with
// 16-channel chunks); the im2col kernel kept OC 16 and OC 64 on smaller maps.
int halo_pick(const kiln_cuda_conv_desc *d) {
  const int64_t N = d->out_c;
  const bool c32 = mma_ic(d) % 32 == 0, big = d->out_h * d->out_w >= 80 * 80;
  const char *want = NULL;
  if (N > 16 && N <= 32) want = c32 ? "conv_halo_mma.f16.128x32.w8.c32" : "conv_halo_mma.f16.128x32.w8.c16";
  else if (N == 64 && big && d->stride_h == 1)
    want = c32 ? "conv_halo_mma.f16.128x32.w8.c32" : "conv_halo_mma.f16.128x32.w8.c16";
  else if (N == 64 && big) want = c32 ? "conv_halo_mma.f16.128x64.w8n.c32" : "conv_halo_mma.f16.128x64.w8n.c16";
  else if (N > 64 && N <= 128 && N % 64) want = "conv_halo_mma.f16.128x80.w8.c16";
  if (!want) return -1;
  for (int cfg = 0; cfg < halo_config_count(); cfg++)
    if (!strcmp(halo_name(cfg), want)) return halo_ok(d, cfg) ? cfg : -1;
  return -1;
}

Choice choose(const kiln_cuda_conv_desc *d) {
  Choice c = {-1, 1, -1};
  if (path_of(d) != PATH_MMA || !mma_vec(d)) return c;
  const int64_t M = d->batch * d->out_h * d->out_w, N = d->out_c;
  const int nk = (int)(round_up(d->kernel_h * d->kernel_w * mma_ic(d), MBK) / MBK);
  if (d->tactic > 0 && d->tactic <= NTILES * NSPLITS) {
    c.tile = (d->tactic - 1) / NSPLITS;
    c.split = kSplits[(d->tactic - 1) % NSPLITS];
    if (c.split > nk) c.split = nk;
    return c;
  }
  if (d->tactic > NTILES * NSPLITS) { // halo configs follow the im2col candidates (validate checked it)
    int k = d->tactic - NTILES * NSPLITS;
    for (int cfg = 0; cfg < halo_config_count(); cfg++)
      if (halo_ok(d, cfg) && --k == 0) {
        c.halo = cfg;
        return c;
      }
  }
  {
    // Halo kernel where the grid fills the GPU at least twice (see halo_pick).
    int cfg = halo_pick(d);
    if (cfg >= 0) {
      HaloGeo g = halo_geo(d, cfg);
      int64_t blocks = d->batch * g.tiles_h * g.tiles_w * ((N + halo_config_bn(cfg) - 1) / halo_config_bn(cfg));
      if (blocks >= 2 * 132) {
        c.halo = cfg;
        return c;
      }
    }
  }
  auto tiles = [&](int bm, int bn) { return ((M + bm - 1) / bm) * ((N + bn - 1) / bn); };
  const int kk = (int)(d->kernel_h * d->kernel_w);
  int bm, bn, S = 1;
  if (tiles(64, 64) < 132) {
    bm = 64;
    if (kk == 1 ? nk <= 16 : nk <= 9) { // short K: narrow tiles, no split
      bn = kk == 1 || N <= 32 ? 16 : 32;
    } else { // long-K 3x3: split until each block runs <= 9 K tiles, at least 4 slices from 16 K tiles
      bn = 32;
      for (int i = 0; i < NSPLITS; i++) {
        S = kSplits[i];
        if ((nk + S - 1) / S <= 9 && (nk < 16 || S >= 4)) break;
      }
    }
  } else if (nk <= 8 || (kk == 1 && nk <= 12 && N < 128)) { // 1x1-like, short K
    if (N <= 16) bm = 128, bn = 16;
    else if (N <= 32) bm = kk > 1 ? 128 : 64, bn = 32;
    else if (N <= 64) bn = 64, bm = nk >= 4 ? 256 : 64;
    else if (N % 64) bm = 128, bn = 32;
    else bm = 128, bn = 128;
  } else if (kk == 1) { // 1x1 with long K, OC >= 128
    bm = 128, bn = 128;
  } else if (N <= 16) {
    bm = 128, bn = 16;
  } else if (N <= 32) {
    bm = 64, bn = 32;
  } else if (N <= 64) {
    if (M >= 40000) bm = 256, bn = 64;
    else bm = 128, bn = 64, S = 2;
  } else {
    bm = 128, bn = 128;
    int64_t t = tiles(128, 128);
    S = t < 150 || (N % 128 && t < 1000) ? 2 : 1;
  }
  // Short-K 3x3 layers on narrow 128-row tiles: the 3-stage variant (more blocks per SM) won the batch-32
  // sweep (/model.1 153 -> 127 us, the 16-channel C2f 3x3 92 -> 85 us); the padded 8-channel stem did not.
  const bool s3 = kk > 1 && nk <= 8 && mma_ic(d) >= 16 && bm == 128 && bn <= 32;
  c.tile = tile_index(bm, bn, s3 ? 3 : 0);
  c.split = S > nk ? nk : S;
  return c;
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
    L.K = d->kernel_h * d->kernel_w * mma_ic(d);
    L.Kp = round_up(L.K, MBK), L.OCp = round_up(d->out_c, OC_ALIGN), L.w_bytes = (size_t)(L.Kp * L.OCp) * 2;
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

namespace kiln_conv {
// Kernels with more than 48 KB of dynamic shared memory need an opt-in, once per kernel and device.
// Host-only bookkeeping (no allocation, no stream work), so it is legal during graph capture.
// The launch size varies per layer (stages used, staged epilogue), so each kernel remembers the largest
// size set so far and raises it when a launch needs more.
cudaError_t ensure_smem(const void *fn, int bytes) {
  static const void *done[256];
  static int done_bytes[256];
  static int ndone;
  if (bytes <= 48 * 1024) return cudaSuccess;
  int i = 0;
  while (i < ndone && done[i] != (const void *)fn) i++;
  if (i < ndone && done_bytes[i] >= bytes) return cudaSuccess;
  cudaError_t e = cudaFuncSetAttribute((const void *)fn, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (e != cudaSuccess) return e;
  if (i < ndone) done_bytes[i] = bytes;
  else if (ndone < 256) done[ndone] = (const void *)fn, done_bytes[ndone++] = bytes;
  return e;
}

} // namespace kiln_conv

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
  if (d->in_zero_padded && (d->in_pixel_stride <= 0 || d->in_pixel_stride % 8))
    return kiln_error(KILN_ERR_SHAPE, "cuda conv: in_zero_padded needs an input pixel stride that is a multiple of 8");
  if (d->tactic < 0 || d->tactic > kiln_cuda_conv_tactic_count(d))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda conv: tactic %d out of range", d->tactic);
  if (d->out_pixel_stride && d->out_pixel_stride < d->out_c_offset + d->out_c)
    return kiln_error(KILN_ERR_SHAPE, "cuda conv: output pixel stride below offset + channels");
  if (d->residual_pixel_stride && d->residual_pixel_stride < d->out_c)
    return kiln_error(KILN_ERR_SHAPE, "cuda conv: residual pixel stride below its channels");
  if (d->out_c_offset < 0) return kiln_error(KILN_ERR_SHAPE, "cuda conv: negative output channel offset");
  // 32-bit kernel arithmetic: pixel counts, K and per-image extents must fit (element offsets are 64-bit).
  if (d->batch * d->out_h * d->out_w > lim || d->batch * d->in_h * d->in_w > lim ||
      d->kernel_h * d->kernel_w * (d->in_c + 8) > lim || d->out_c > lim / 4 ||
      (d->kernel_h * d->dilation_h + 1) * d->in_w * (d->in_pixel_stride ? d->in_pixel_stride : d->in_c) > lim)
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: tensor too large for 32-bit indexing");
  return kiln_cuda_conv_nchw_check(d); // in_layout_nchw / in_dtype rules
}

extern "C" int kiln_cuda_conv_tactic_count(const kiln_cuda_conv_desc *d) {
  if (!d || path_of(d) != PATH_MMA || !mma_vec(d)) return 0;
  int n = NTILES * NSPLITS;
  for (int cfg = 0; cfg < halo_config_count(); cfg++) n += halo_ok(d, cfg);
  return n;
}

extern "C" size_t kiln_cuda_conv_packed_size(const kiln_cuda_conv_desc *d) {
  return path_of(d) == PATH_NCHW ? kiln_cuda_conv_nchw_packed_size(d) : layout_of(d).total;
}

extern "C" size_t kiln_cuda_conv_workspace_size(const kiln_cuda_conv_desc *d) {
  Choice c = choose(d);
  if (c.halo >= 0 || c.tile < 0 || c.split <= 1) return 0;
  return align256((size_t)c.split * (size_t)(d->batch * d->out_h * d->out_w) * (size_t)d->out_c * sizeof(float));
}

extern "C" kiln_status kiln_cuda_conv_pack(const kiln_cuda_conv_desc *d, const float *weights, const float *bias,
                                           void *packed) {
  KILN_TRY(kiln_cuda_conv_validate(d));
  if (path_of(d) == PATH_NCHW) {
    kiln_cuda_conv_nchw_pack(d, weights, bias, packed);
    return NULL;
  }
  Layout L = layout_of(d);
  memset(packed, 0, L.total); // padding rows/columns must be zeros: they take part in the GEMM
  const int64_t icg = d->in_c / d->group, KH = d->kernel_h, KW = d->kernel_w;
  const int64_t ick = path_of(d) == PATH_MMA ? mma_ic(d) : icg; // K's channel extent (padded: zero weights)
  for (int64_t oc = 0; oc < d->out_c; oc++)
    for (int64_t c = 0; c < icg; c++)
      for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw++) {
          float v = weights[((oc * icg + c) * KH + kh) * KW + kw];
          int64_t k = (kh * KW + kw) * ick + c; // (kh, kw, ic): matches NHWC pixels
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
  case PATH_MMA: {
    Choice c = choose(d);
    if (c.halo >= 0) return halo_name(c.halo);
    if (c.tile < 0) return "conv_igemm_mma.f16.64x64x32.s3.gather";
    int s = 0;
    while (s < NSPLITS - 1 && kSplits[s] != c.split) s++;
    return kTiles[c.tile].names[s];
  }
  case PATH_FMA: return "conv_igemm_fma.f32";
  case PATH_NCHW: return kiln_cuda_conv_nchw_name(d);
  default: return d->compute == KILN_CUDA_F16 ? "conv_direct.f16" : "conv_direct.f32";
  }
}

extern "C" kiln_status kiln_cuda_conv_run(const kiln_cuda_conv_desc *d, const void *packed, const void *x,
                                          const void *residual, void *y, void *workspace,
                                          kiln_cuda_stream stream) {
  if (path_of(d) == PATH_NCHW) return kiln_cuda_conv_nchw_run(d, packed, x, residual, y, stream);
  Layout L = layout_of(d);
  ConvP p;
  p.N = (int)d->batch, p.IC = (int)d->in_c, p.IH = (int)d->in_h, p.IW = (int)d->in_w;
  p.OC = (int)d->out_c, p.OH = (int)d->out_h, p.OW = (int)d->out_w;
  p.KH = (int)d->kernel_h, p.KW = (int)d->kernel_w, p.SH = (int)d->stride_h, p.SW = (int)d->stride_w;
  p.PT = (int)d->pad_top, p.PL = (int)d->pad_left, p.DH = (int)d->dilation_h, p.DW = (int)d->dilation_w;
  p.G = (int)d->group;
  p.K = (int)L.K, p.Kp = (int)L.Kp, p.M = p.N * p.OH * p.OW;
  p.in_ps = in_ps_of(d);
  p.out_ps = d->out_pixel_stride ? d->out_pixel_stride : d->out_c_offset + d->out_c;
  p.res_ps = d->residual_pixel_stride ? d->residual_pixel_stride : d->out_c;
  p.act = (int)d->epilogue.act, p.alpha = d->epilogue.alpha, p.beta = d->epilogue.beta;
  p.has_res = d->has_residual && residual, p.res_before = p.has_res && d->epilogue.residual_before_act;
  const float *bias = (const float *)((const char *)packed + L.bias_off);
  const bool f16out = d->out_dtype == KILN_CUDA_F16;
  const size_t osz = f16out ? 2 : 4;
  char *yo = (char *)y + d->out_c_offset * osz;
  p.pair = p.out_ps % 2 == 0 && ((uintptr_t)yo % (2 * osz)) == 0 &&
           (!p.has_res || (p.res_ps % 2 == 0 && ((uintptr_t)residual % (2 * osz)) == 0));
  p.vec8 = p.out_ps % 8 == 0 && ((uintptr_t)yo % 16) == 0 && ((uintptr_t)bias % 16) == 0 &&
           (!p.has_res || (p.res_ps % 8 == 0 && ((uintptr_t)residual % 16) == 0));
  /* The staged epilogue pays off where the grid fills the GPU (batch 32: -22% conv time); on small grids
   * (batch 1) its extra shared-memory pass cost more than it saved: YOLOv8n at batch 1 measured 0.532 ms
   * with it everywhere and 0.511 ms with it only on grids of >= 132 64x64 tiles (H100, CUDA graph). */
  const int vec8_ok = p.vec8; // the halo kernel always stages its epilogue; 16-byte stores where allowed
  if (((p.M + 63) / 64) * ((p.OC + 63) / 64) < 132) p.vec8 = 0;
  cudaStream_t s = (cudaStream_t)stream;

  switch (path_of(d)) {
  case PATH_MMA: {
    p.IC = (int)mma_ic(d);
    const __half *xh = (const __half *)x, *wh = (const __half *)packed;
    Choice c = choose(d);
    if ((c.tile >= 0 || c.halo >= 0) && ((uintptr_t)x & 15) != 0) c.tile = c.halo = -1, c.split = 1; // unaligned base: gather
    p.wrows = (int)L.OCp;
    if (c.halo >= 0) {
      p.vec8 = vec8_ok;
      KILN_CUDA_TRY(halo_launch(c.halo, p, halo_geo(d, c.halo), xh, wh, bias, residual, yo, f16out, s));
      break;
    }
    if (c.tile < 0) {
      dim3 grid((unsigned)((p.M + GATHER_BM - 1) / GATHER_BM), (unsigned)((p.OC + GATHER_BN - 1) / GATHER_BN));
      MmaFn fn = kGather[f16out ? 0 : 1];
      int sm = smem_of(GATHER_BM, GATHER_BN, GATHER_ST);
      KILN_CUDA_TRY(ensure_smem((const void *)fn, sm));
      fn<<<grid, 128, sm, s>>>(p, xh, wh, bias, residual, yo, NULL);
      break;
    }
    const TileCfg &t = kTiles[c.tile];
    int S = c.split;
    if (S > 1 && !workspace) S = 1; // defensive: no scratch given, run unsplit
    dim3 grid((unsigned)((p.M + t.bm - 1) / t.bm), (unsigned)((p.OC + t.bn - 1) / t.bn), (unsigned)S);
    const int nk_all = p.Kp / MBK;
    int sm = smem_of(t.bm, t.bn, t.stages, (nk_all + S - 1) / S, S == 1);
    MmaFn fn = t.fn[S > 1 ? 2 : (f16out ? 0 : 1)];
    KILN_CUDA_TRY(ensure_smem((const void *)fn, sm));
    fn<<<grid, t.threads, sm, s>>>(p, xh, wh, bias, residual, yo, (float *)workspace);
    if (S > 1) {
      KILN_CUDA_LAUNCH_CHECK();
      unsigned blocks = kiln_cuda_blocks((int64_t)p.M * p.OC, 256);
      if (blocks > 65536u * 8) blocks = 65536u * 8;
      if (p.vec8 && p.OC % 8 == 0 && ((uintptr_t)workspace % 16) == 0) {
        unsigned b8 = kiln_cuda_blocks((int64_t)p.M * (p.OC / 8), 256);
        if (b8 > 65536u * 8) b8 = 65536u * 8;
        if (f16out)
          conv_splitk_reduce8<__half><<<b8, 256, 0, s>>>(p, S, (const float *)workspace, bias,
                                                         (const __half *)residual, (__half *)yo);
        else
          conv_splitk_reduce8<float><<<b8, 256, 0, s>>>(p, S, (const float *)workspace, bias,
                                                        (const float *)residual, (float *)yo);
      } else if (f16out)
        conv_splitk_reduce<__half><<<blocks, 256, 0, s>>>(p, S, (const float *)workspace, bias,
                                                          (const __half *)residual, (__half *)yo);
      else
        conv_splitk_reduce<float><<<blocks, 256, 0, s>>>(p, S, (const float *)workspace, bias,
                                                         (const float *)residual, (float *)yo);
    }
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

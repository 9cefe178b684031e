// Halo-tile tensor-core convolution (fp16 in, fp32 accumulate) for small-kernel convs (3x3, stride 1 or 2)
// in NHWC. See conv_halo_cuda.h for when conv_cuda.cu picks it.
//
// Why a second kernel: the im2col implicit GEMM (conv_cuda.cu) copies every input pixel into shared memory
// once per tap, 9 times for a 3x3, with one cp.async and its address arithmetic per 16 bytes. On YOLO's
// 16..128-channel 3x3 layers that loader, not the tensor cores, bounds the kernel (ncu: ALU the busiest
// pipe). Here a block owns a TH x TW tile of output pixels of one image. For each chunk of CK input
// channels it copies the input window the tile needs (the halo: ((TH-1)*SH + KH) x ((TW-1)*SW + KW)
// pixels) and the chunk's weights of every tap into shared memory, once; the taps then only move the
// ldmatrix row addresses (each lane points at its own output pixel's input pixel, shifted by the tap).
// Two stages double-buffer the channel chunks.
//
// Shared layout per stage, rows of PITCH = CK + 8 halves (16 bytes of padding: 8 consecutive pixels or
// output channels that one ldmatrix phase reads fall on 8 distinct 16-byte bank groups for CK = 16 / 32):
//   halo    [HH * HW pixels][PITCH]            channels c0 .. c0+CK-1 of each window pixel (zeros outside)
//   weights [KH*KW taps][BN out channels][PITCH]  from the packed blob [OCp][Kp], K = (kh, kw, ic)
// The epilogue stages the fp32 accumulators through shared memory and stores 8 channels per thread, as
// the im2col kernel's staged epilogue does.
#include "backend/cuda/conv_halo_cuda.h"

#include <stdio.h>

namespace kiln_conv {
namespace {

template <int WGM, int WGN, int MI, int NI, int CK, int OUT>
__global__ void __launch_bounds__(WGM *WGN * 32)
    conv_halo_kernel(ConvP p, HaloGeo g, const __half *__restrict__ x, const __half *__restrict__ w,
                     const float *__restrict__ bias, const void *res_, void *y_) {
  constexpr int T = WGM * WGN * 32, BN = WGN * NI * 8;
  constexpr int PITCH = CK + 8, CPP = CK / 8;
  static_assert(NI % 2 == 0, "B fragments are loaded in pairs");
  extern __shared__ __align__(16) __half smem[];
  const uint32_t sbase = (uint32_t)__cvta_generic_to_shared(smem);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, t4 = lane & 3;
  const int KK = p.KH * p.KW, halo_px = g.HH * g.HW;
  const int stage_bytes = (halo_px + KK * BN) * PITCH * 2;

  // Block -> (image, tile row, tile column); blockIdx.y -> output channel block.
  const int tiles_img = g.tiles_h * g.tiles_w;
  const int n = blockIdx.x / tiles_img, tr = blockIdx.x - n * tiles_img;
  const int oh0 = (tr / g.tiles_w) * g.TH, ow0 = (tr % g.tiles_w) * g.TW;
  const int ih0 = oh0 * p.SH - p.PT, iw0 = ow0 * p.SW - p.PL;
  const int n0 = blockIdx.y * BN;
  const __half *ximg = x + (long long)n * p.IH * p.IW * p.in_ps;
  const int nch = p.IC / CK;

  // Halo chunks: thread tid copies 16-byte chunk (tid % CPP) of window pixels tid / CPP + i * (T / CPP);
  // the pixel's (row, column) is stepped, not divided, and offsets stay 32-bit (halo_ok checks that one
  // image and the packed weights index below 2^31).
  constexpr int PS = T / CPP;
  static_assert(T % CPP == 0, "halo loader");
  const int lch = tid % CPP, px0 = tid / CPP;
  const int hy0 = px0 / g.HW, hx0 = px0 - hy0 * g.HW, sty = PS / g.HW, stx = PS - sty * g.HW;
  auto load = [&](int c, int stage) {
    const uint32_t sh = sbase + stage * stage_bytes, sw = sh + halo_px * PITCH * 2;
    const int c0 = c * CK + lch * 8;
    int hy = hy0, hx = hx0;
    for (int px = px0; px < halo_px; px += PS) {
      const int ih = ih0 + hy, iw = iw0 + hx;
      const bool ok = (unsigned)ih < (unsigned)p.IH && (unsigned)iw < (unsigned)p.IW;
      const __half *src = ok ? ximg + ((ih * p.IW + iw) * (int)p.in_ps + c0) : x;
      cp_async16(sh + (px * PITCH + lch * 8) * 2, src, ok);
      hx += stx, hy += sty;
      if (hx >= g.HW) hx -= g.HW, hy++;
    }
    for (int idx = tid; idx < KK * BN * CPP; idx += T) {
      const int row = idx / CPP, ch = idx - row * CPP;
      const int tap = row / BN, oc = row - tap * BN;
      const bool ok = n0 + oc < p.wrows;
      const __half *src = ok ? w + ((n0 + oc) * p.Kp + tap * p.IC + c * CK + ch * 8) : w;
      cp_async16(sw + (row * PITCH + ch * 8) * 2, src, ok);
    }
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; i++)
#pragma unroll
    for (int j = 0; j < NI; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

  const int wm = (warp / WGN) * MI * 16, wn = (warp % WGN) * NI * 8;
  const int tile_px = g.TH * g.TW;
  // A: the lane's ldmatrix row is output pixel row = wm + mi*16 + (lane & 15) of the tile; its input pixel
  // for tap (0, 0) sits at halo (ty*SH, tx*SW). Rows past the tile read pixel 0 and are never stored.
  uint32_t a_pix[MI];
#pragma unroll
  for (int mi = 0; mi < MI; mi++) {
    int row = wm + mi * 16 + (lane & 15);
    if (row >= tile_px) row = 0;
    const int ty = row / g.TW, tx = row - ty * g.TW;
    a_pix[mi] = ((ty * p.SH * g.HW + tx * p.SW) * PITCH + (lane >> 4) * 8) * 2;
  }
  const uint32_t b_off = ((wn + (lane >> 4) * 8 + (lane & 7)) * PITCH + ((lane >> 3) & 1) * 8) * 2;
  const uint32_t a_dx = p.DW * PITCH * 2, a_dy = (uint32_t)((p.DH * g.HW - p.KW * p.DW) * PITCH * 2);

  load(0, 0);
  cp_async_commit();
  for (int c = 0; c < nch; c++) {
    if (c + 1 < nch) load(c + 1, (c + 1) & 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const uint32_t sh = sbase + (c & 1) * stage_bytes, sw = sh + halo_px * PITCH * 2;
    // Taps in (ky, kx) order: the window start steps by a_dx per tap and by a_dy after a row of taps, the
    // weights by one [BN][PITCH] block (no divisions in the loop: SASS showed ~70 instructions per tap
    // around 3 ldmatrix + 4 mma when the tap was split by division).
    uint32_t a_tap = sh, b_tap = sw + b_off;
    for (int ky = 0; ky < p.KH; ky++, a_tap += a_dy)
      for (int kx = 0; kx < p.KW; kx++, a_tap += a_dx, b_tap += BN * PITCH * 2) {
#pragma unroll
      for (int kk = 0; kk < CK / 16; kk++) {
        uint32_t a[MI][4], b[NI][2];
#pragma unroll
        for (int mi = 0; mi < MI; mi++) ldsm_x4(a[mi], a_tap + a_pix[mi] + kk * 32);
#pragma unroll
        for (int nj = 0; nj < NI / 2; nj++) {
          uint32_t r[4];
          ldsm_x4(r, b_tap + nj * 16 * PITCH * 2 + kk * 32);
          b[2 * nj][0] = r[0], b[2 * nj][1] = r[1], b[2 * nj + 1][0] = r[2], b[2 * nj + 1][1] = r[3];
        }
#pragma unroll
        for (int mi = 0; mi < MI; mi++)
#pragma unroll
          for (int ni = 0; ni < NI; ni++) mma16816(acc[mi][ni], a[mi], b[ni]);
      }
    }
    __syncthreads(); // the next iteration's prefetch overwrites this stage
  }

  // Staged epilogue (the stages are free now): accumulators -> smem -> 8 channels of one pixel per thread.
  constexpr int SN = BN + 8, CPR = BN / 8;
  float *cs = reinterpret_cast<float *>(smem);
  stage_acc(cs, SN, acc, wm, wn, gq, t4); // the loop's last __syncthreads ordered the stage reads
  __syncthreads();
  for (int idx = tid; idx < tile_px * CPR; idx += T) {
    const int r = idx / CPR, cc = idx - r * CPR;
    const int ty = r / g.TW, tx = r - ty * g.TW;
    const int oh = oh0 + ty, ow = ow0 + tx, oc = n0 + cc * 8;
    if (oh >= p.OH || ow >= p.OW || oc >= p.OC) continue;
    const int m = (n * p.OH + oh) * p.OW + ow;
    float v[8];
    ld8(cs + r * SN + cc * 8, v);
    store_staged8<OUT>(p, bias, res_, y_, m, oc, v, p.vec8);
  }
}

typedef void (*HaloFn)(ConvP, HaloGeo, const __half *, const __half *, const float *, const void *, void *);
struct HaloCfg {
  int bm, bn, threads, ck;
  HaloFn fn[2]; // fp16 y / fp32 y
  const char *name;
};
#define KILN_HALO(WGM, WGN, MI, NI, CK, NAME)                                                            \
  {WGM * MI * 16, WGN * NI * 8, WGM * WGN * 32, CK,                                                      \
   {conv_halo_kernel<WGM, WGN, MI, NI, CK, 0>, conv_halo_kernel<WGM, WGN, MI, NI, CK, 1>},                \
   "conv_halo_mma.f16." NAME ".c" #CK}
#define KILN_HALO2(WGM, WGN, MI, NI, NAME) KILN_HALO(WGM, WGN, MI, NI, 16, NAME), KILN_HALO(WGM, WGN, MI, NI, 32, NAME)
// 128 output pixels x {16, 32, 64, 80, 128} channels with 4 or 8 warps, and 64 x 64 for small grids; each
// with 16- and 32-channel chunks (16 halves the stage, so wide-N configs keep more blocks per SM).
const HaloCfg kHalo[] = {
    KILN_HALO2(4, 1, 2, 2, "128x16.w4"), KILN_HALO2(4, 1, 2, 4, "128x32.w4"),  KILN_HALO2(8, 1, 1, 4, "128x32.w8"),
    KILN_HALO2(4, 2, 2, 4, "128x64.w8"), KILN_HALO2(8, 1, 1, 8, "128x64.w8n"), KILN_HALO2(4, 1, 2, 10, "128x80.w4"),
    KILN_HALO2(8, 1, 1, 10, "128x80.w8"), KILN_HALO2(4, 2, 2, 8, "128x128.w8"), KILN_HALO2(2, 2, 2, 4, "64x64.w4"),
};
#undef KILN_HALO2
#undef KILN_HALO

size_t smem_bytes(const HaloCfg &c, const HaloGeo &g, int kk, int ic) {
  const int nch = ic / c.ck;
  const size_t stage = (size_t)(g.HH * g.HW + kk * c.bn) * (c.ck + 8) * 2;
  const size_t pipe = stage * (nch > 1 ? 2 : 1), epi = (size_t)c.bm * (c.bn + 8) * 4;
  return pipe > epi ? pipe : epi;
}

} // namespace

int halo_config_count() { return (int)(sizeof kHalo / sizeof kHalo[0]); }
int halo_config_bn(int cfg) { return kHalo[cfg].bn; }
int halo_config_bm(int cfg) { return kHalo[cfg].bm; }
int halo_config_ck(int cfg) { return kHalo[cfg].ck; }

HaloGeo halo_geometry(int cfg, int oh, int ow, int kh, int kw, int sh, int sw, int dh, int dw) {
  // The TH x TW tile (TH * TW <= BM) with the fewest computed-but-unused pixels; ties go to the smaller
  // halo (less input re-read at tile borders).
  const int bm = kHalo[cfg].bm;
  const int tws[] = {ow, 64, 40, 32, 20, 16, 10, 8, 4};
  HaloGeo best = {0, 0, 0, 0, 0, 0};
  long long best_waste = -1, best_halo = 0;
  for (int tw : tws) {
    if (tw < 1 || tw > ow || tw > bm) continue;
    int th = bm / tw;
    if (th > oh) th = oh;
    const long long tiles = (long long)((oh + th - 1) / th) * ((ow + tw - 1) / tw);
    const long long waste = tiles * bm - (long long)oh * ow;
    const long long halo = tiles * (long long)((th - 1) * sh + (kh - 1) * dh + 1) * ((tw - 1) * sw + (kw - 1) * dw + 1);
    if (best_waste < 0 || waste < best_waste || (waste == best_waste && halo < best_halo)) {
      best_waste = waste, best_halo = halo;
      best.TH = th, best.TW = tw;
    }
  }
  best.HH = (best.TH - 1) * sh + (kh - 1) * dh + 1;
  best.HW = (best.TW - 1) * sw + (kw - 1) * dw + 1;
  best.tiles_h = (oh + best.TH - 1) / best.TH;
  best.tiles_w = (ow + best.TW - 1) / best.TW;
  return best;
}

bool halo_fits(int cfg, const HaloGeo &g, int kk, int ic, size_t smem_limit) {
  return ic % kHalo[cfg].ck == 0 && smem_bytes(kHalo[cfg], g, kk, ic) <= smem_limit;
}

const char *halo_name(int cfg) { return kHalo[cfg].name; }

cudaError_t halo_launch(int cfg, const ConvP &p, const HaloGeo &g, const __half *x, const __half *w,
                        const float *bias, const void *res, void *y, bool f16out, cudaStream_t s) {
  const HaloCfg &c = kHalo[cfg];
  const HaloFn fn = c.fn[f16out ? 0 : 1];
  const int sm = (int)smem_bytes(c, g, p.KH * p.KW, p.IC);
  cudaError_t e = ensure_smem((const void *)fn, sm);
  if (e != cudaSuccess) return e;
  dim3 grid((unsigned)(p.N * g.tiles_h * g.tiles_w), (unsigned)((p.OC + c.bn - 1) / c.bn));
  fn<<<grid, c.threads, sm, s>>>(p, g, x, w, bias, res, y);
  return cudaGetLastError();
}

} // namespace kiln_conv
